/* SPDX-License-Identifier: MIT */
/* comply.c - retention rules evaluated on a new message (comply.h).
 *
 * The rules in force are held as an immutable snapshot with a reference
 * count: a worker takes the current one, evaluates, and drops it; a
 * policy change (a new version in the store) makes the next caller load a
 * new snapshot.  Matching:
 *   domain      the sender's or any recipient's domain (header or
 *               envelope) is one of the rule's, or a subdomain of one;
 *   custodian   one of the custodian's addresses takes part (same places);
 *   query       the search language on the message itself (search/match.h,
 *               once available: until then a policy with a query rule is
 *               refused by `policy set`, so none is ever skipped here). */
#include "comply.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/util.h"

#define SNAPSHOT_TTL_S 10.0 /* custodians have no version: re-read this often */

typedef struct snapshot {
    int refs;
    uint64_t version;
    double loaded; /* mv_mono() */
    mv_policy pol;
    mv_custodian *cu;
    size_t ncu;
} snapshot;

struct mv_comply {
    mv_store *s;
    pthread_mutex_t mu;
    snapshot *cur;
};

static void snap_drop(snapshot *sn)
{
    if (!sn || --sn->refs > 0)
        return;
    mv_policy_clear(&sn->pol);
    for (size_t i = 0; i < sn->ncu; i++)
        mv_custodian_clear(&sn->cu[i]);
    free(sn->cu);
    free(sn);
}

static mv_status snap_load(mv_store *s, snapshot **out, mv_err *err)
{
    snapshot *sn = mv_xcalloc(1, sizeof *sn);
    sn->refs = 1;
    sn->version = mv_store_policy_version(s);
    sn->loaded = mv_mono();
    mv_status st = mv_store_policy(s, &sn->pol, err);
    if (!st)
        st = mv_store_custodians(s, &sn->cu, &sn->ncu, err);
    if (st) {
        snap_drop(sn);
        return st;
    }
    *out = sn;
    return MV_OK;
}

mv_status mv_comply_new(mv_store *s, mv_comply **out, mv_err *err)
{
    mv_comply *c = mv_xcalloc(1, sizeof *c);
    c->s = s;
    pthread_mutex_init(&c->mu, NULL);
    mv_status st = snap_load(s, &c->cur, err);
    if (st) {
        pthread_mutex_destroy(&c->mu);
        free(c);
        return st;
    }
    *out = c;
    return MV_OK;
}

void mv_comply_free(mv_comply *c)
{
    if (!c)
        return;
    snap_drop(c->cur);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* take - the current snapshot, reloaded when the policy changed. */
static mv_status take(mv_comply *c, snapshot **out, mv_err *err)
{
    mv_status st = MV_OK;
    pthread_mutex_lock(&c->mu);
    if (c->cur->version != mv_store_policy_version(c->s) ||
        mv_mono() - c->cur->loaded > SNAPSHOT_TTL_S) {
        snapshot *sn = NULL;
        if (!(st = snap_load(c->s, &sn, err))) {
            snap_drop(c->cur);
            c->cur = sn;
        }
    }
    if (!st) {
        c->cur->refs++;
        *out = c->cur;
    }
    pthread_mutex_unlock(&c->mu);
    return st;
}

static void release(mv_comply *c, snapshot *sn)
{
    pthread_mutex_lock(&c->mu);
    snap_drop(sn);
    pthread_mutex_unlock(&c->mu);
}

static int local_ch(int ch)
{
    return isalnum(ch) || (ch && strchr("._%+-=!#$&'*/?^`{|}~", ch));
}

static int domain_ch(int ch)
{
    return isalnum(ch) || ch == '.' || ch == '-';
}

void mv_comply_addresses(const char *hdr, char ***v, size_t *n)
{
    if (!hdr)
        return;
    for (const char *at = strchr(hdr, '@'); at; at = strchr(at + 1, '@')) {
        const char *a = at, *b = at + 1;
        while (a > hdr && local_ch((unsigned char)a[-1]))
            a--;
        while (domain_ch((unsigned char)*b))
            b++;
        while (b > at + 1 && b[-1] == '.')
            b--;
        if (a == at || b == at + 1)
            continue;
        char *addr = mv_xstrndup(a, (size_t)(b - a));
        for (char *p = addr; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        *v = mv_xrealloc(*v, (*n + 1) * sizeof **v);
        (*v)[(*n)++] = addr;
    }
}

/* domain_in - d is one of the comma-separated domains, or a subdomain of one. */
static int domain_in(const char *d, const char *list)
{
    size_t dl = strlen(d);
    for (const char *p = list; *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        size_t l = (size_t)(e - p);
        if (l && dl >= l && strncasecmp(d + dl - l, p, l) == 0 && (dl == l || d[dl - l - 1] == '.'))
            return 1;
        p = e;
    }
    return 0;
}

mv_status mv_comply_decide(mv_comply *c, const mv_msgmeta *meta, const mv_arrival *arr,
                           const uint8_t *bytes, size_t n, mv_retention *out, mv_err *err)
{
    (void)bytes, (void)n;
    snapshot *sn = NULL;
    mv_status st = take(c, &sn, err);
    if (st)
        return st;
    char **addr = NULL;
    size_t na = 0;
    mv_comply_addresses(meta->from_addr ? meta->from_addr : meta->from, &addr, &na);
    mv_comply_addresses(meta->to, &addr, &na);
    mv_comply_addresses(meta->cc, &addr, &na);
    mv_comply_addresses(meta->bcc, &addr, &na);
    if (arr) {
        mv_comply_addresses(arr->mail_from, &addr, &na);
        for (size_t i = 0; i < arr->n_rcpt; i++)
            mv_comply_addresses(arr->rcpt[i], &addr, &na);
    }
    const mv_policy_rule *hit = &sn->pol.rules[sn->pol.n - 1];
    for (size_t r = 0; r + 1 < sn->pol.n && hit == &sn->pol.rules[sn->pol.n - 1]; r++) {
        const mv_policy_rule *rule = &sn->pol.rules[r];
        int m = 0;
        if (rule->kind == MV_RULE_DOMAIN) {
            for (size_t i = 0; i < na && !m; i++)
                m = domain_in(strchr(addr[i], '@') + 1, rule->match);
        } else if (rule->kind == MV_RULE_CUSTODIAN) {
            for (size_t k = 0; k < sn->ncu && !m; k++) {
                if (strcasecmp(sn->cu[k].name, rule->match) != 0)
                    continue;
                for (size_t j = 0; j < sn->cu[k].n_addresses && !m; j++)
                    for (size_t i = 0; i < na && !m; i++)
                        m = strcmp(addr[i], sn->cu[k].addresses[j]) == 0;
            }
        }
        if (m)
            hit = rule;
    }
    snprintf(out->cls, sizeof out->cls, "%s", hit->name);
    out->keep_days = hit->keep_days;
    for (size_t i = 0; i < na; i++)
        free(addr[i]);
    free(addr);
    release(c, sn);
    return MV_OK;
}
