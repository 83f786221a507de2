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
 *   query       the search language on the message itself (search/match.h:
 *               the index's own terms, built for this one message).
 * Active legal holds are evaluated the same way (custodian and query, both
 * when both are given): a new message they match is held from its commit.
 * A query that cannot be evaluated (its custodian removed since) makes a
 * hold take the message (holding too much is safe) and a retention rule
 * pass it on to the next (said in the log). */
#include "comply.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/log.h"
#include "../lib/util.h"
#include "../search/match.h"
#include "../search/xap.h"

typedef struct chold {
    char *matter;
    char *custodian; /* NULL: any */
    mv_mquery *q;    /* NULL: no query */
} chold;

#define SNAPSHOT_TTL_S 10.0 /* custodians have no version: re-read this often */

typedef struct snapshot {
    int refs;
    uint64_t version;
    double loaded; /* mv_mono() */
    mv_policy pol;
    mv_mquery **rq; /* compiled query of each rule (NULL for others) */
    mv_custodian *cu;
    size_t ncu;
    chold *holds;
    size_t nholds;
} snapshot;

struct mv_comply {
    mv_store *s;
    mv_matcher *m;
    pthread_mutex_t mu;
    snapshot *cur;
};

static void snap_drop(snapshot *sn)
{
    if (!sn || --sn->refs > 0)
        return;
    for (size_t i = 0; sn->rq && i < sn->pol.n; i++)
        mv_mquery_free(sn->rq[i]);
    free(sn->rq);
    for (size_t i = 0; i < sn->nholds; i++) {
        free(sn->holds[i].matter);
        free(sn->holds[i].custodian);
        mv_mquery_free(sn->holds[i].q);
    }
    free(sn->holds);
    mv_policy_clear(&sn->pol);
    for (size_t i = 0; i < sn->ncu; i++)
        mv_custodian_clear(&sn->cu[i]);
    free(sn->cu);
    free(sn);
}

/* compile - a rule's or a hold's query.  The log names it by position
 * only: a matter's name, a query and the parser's message (which may quote
 * it, or name a custodian) are content, and the log is plaintext. */
static mv_mquery *compile(mv_matcher *m, const char *q, const char *what, size_t no)
{
    mv_mquery *mq = NULL;
    mv_err e = {0};
    mv_status st = mv_matcher_compile(m, q, &mq, &e);
    if (st != MV_OK) {
        mv_log_warn("%s %zu: its query cannot be evaluated (%s); `mailvault %s` shows it", what,
                    no, mv_status_str(st), what[0] == 'l' ? "hold list" : "policy list");
        return NULL;
    }
    return mq;
}

static mv_status snap_load(mv_store *s, mv_matcher *m, snapshot **out, mv_err *err)
{
    snapshot *sn = mv_xcalloc(1, sizeof *sn);
    sn->refs = 1;
    sn->version = mv_store_policy_version(s);
    sn->loaded = mv_mono();
    mv_hold *h = NULL;
    size_t nh = 0;
    mv_status st = mv_store_policy(s, &sn->pol, err);
    if (!st)
        st = mv_store_custodians(s, &sn->cu, &sn->ncu, err);
    if (!st)
        st = mv_store_holds(s, &h, &nh, err);
    if (st) {
        snap_drop(sn);
        return st;
    }
    mv_matcher_refresh(m);
    sn->rq = mv_xcalloc(sn->pol.n, sizeof *sn->rq);
    for (size_t i = 0; i < sn->pol.n; i++)
        if (sn->pol.rules[i].kind == MV_RULE_QUERY)
            sn->rq[i] = compile(m, sn->pol.rules[i].match, "retention rule", i + 1);
    sn->holds = mv_xcalloc(nh ? nh : 1, sizeof *sn->holds);
    for (size_t i = 0; i < nh; i++) {
        if (!h[i].released) {
            chold *c = &sn->holds[sn->nholds++];
            c->matter = h[i].matter, h[i].matter = NULL;
            c->custodian = h[i].custodian, h[i].custodian = NULL;
            c->q = h[i].query ? compile(m, h[i].query, "legal hold", i + 1) : NULL;
            if (h[i].query && !c->q)
                c->custodian = c->custodian ? c->custodian : mv_xstrdup("*"); /* see decide */
        }
        mv_hold_clear(&h[i]);
    }
    free(h);
    *out = sn;
    return MV_OK;
}

mv_status mv_comply_new(mv_store *s, mv_comply **out, mv_err *err)
{
    mv_comply *c = mv_xcalloc(1, sizeof *c);
    c->s = s;
    pthread_mutex_init(&c->mu, NULL);
    mv_status st = mv_matcher_new(s, NULL, &c->m, err);
    if (!st)
        st = snap_load(s, c->m, &c->cur, err);
    if (st) {
        mv_matcher_free(c->m);
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
    mv_matcher_free(c->m);
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
        if (!(st = snap_load(c->s, c->m, &sn, err))) {
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

/* custodian_takes_part - one of the custodian's addresses is among addr. */
static int custodian_takes_part(const snapshot *sn, const char *name, char *const *addr, size_t na)
{
    for (size_t k = 0; k < sn->ncu; k++) {
        if (strcasecmp(sn->cu[k].name, name) != 0)
            continue;
        for (size_t j = 0; j < sn->cu[k].n_addresses; j++)
            for (size_t i = 0; i < na; i++)
                if (strcmp(addr[i], sn->cu[k].addresses[j]) == 0)
                    return 1;
    }
    return 0;
}

mv_status mv_comply_decide(mv_comply *c, const mv_msgmeta *meta, const mv_arrival *arr,
                           const uint8_t *bytes, size_t n, unsigned flags, mv_retention *out,
                           char ***holds, size_t *n_holds, mv_err *err)
{
    *holds = NULL;
    *n_holds = 0;
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
    /* every query (rules, then holds) in one evaluation: one document */
    const mv_mquery **qs = mv_xcalloc(sn->pol.n + sn->nholds + 1, sizeof *qs);
    size_t nq = 0;
    size_t *rule_q = mv_xcalloc(sn->pol.n + 1, sizeof *rule_q), *hold_q = mv_xcalloc(sn->nholds + 1, sizeof *hold_q);
    for (size_t r = 0; r < sn->pol.n; r++)
        rule_q[r] = sn->rq[r] ? (qs[nq] = sn->rq[r], nq++) : SIZE_MAX;
    for (size_t h = 0; h < sn->nholds; h++)
        hold_q[h] = sn->holds[h].q ? (qs[nq] = sn->holds[h].q, nq++) : SIZE_MAX;
    int *hits = mv_xcalloc(nq + 1, sizeof *hits);
    if (nq) {
        mv_match_msg mm = {.bytes = bytes,
                           .n = n,
                           .env = arr ? (const char *const *)arr->rcpt : NULL,
                           .n_env = arr ? arr->n_rcpt : 0,
                           .received = arr ? arr->received_us / 1000000 : mv_now(),
                           .flags = flags,
                           .meta = meta};
        mv_err e = {0};
        mv_status es = mv_matcher_eval(c->m, (const mv_mquery *const *)qs, nq, &mm, hits, &e);
        if (es != MV_OK) /* e.msg may name a custodian: not for the plaintext log */
            mv_log_warn("retention and holds: a query could not be evaluated (%s)",
                        mv_status_str(es));
    }
    const mv_policy_rule *hit = &sn->pol.rules[sn->pol.n - 1];
    for (size_t r = 0; r + 1 < sn->pol.n && hit == &sn->pol.rules[sn->pol.n - 1]; r++) {
        const mv_policy_rule *rule = &sn->pol.rules[r];
        int m = 0;
        if (rule->kind == MV_RULE_DOMAIN) {
            for (size_t i = 0; i < na && !m; i++)
                m = domain_in(strchr(addr[i], '@') + 1, rule->match);
        } else if (rule->kind == MV_RULE_CUSTODIAN) {
            m = custodian_takes_part(sn, rule->match, addr, na);
        } else if (rule->kind == MV_RULE_QUERY) {
            m = rule_q[r] != SIZE_MAX && hits[rule_q[r]] == 1;
        }
        if (m)
            hit = rule;
    }
    snprintf(out->cls, sizeof out->cls, "%s", hit->name);
    out->keep_days = hit->keep_days;
    for (size_t h = 0; h < sn->nholds; h++) {
        const chold *ch = &sn->holds[h];
        /* "*": a query that cannot be evaluated: held, to be safe */
        int take_it = ch->custodian && strcmp(ch->custodian, "*") == 0;
        if (!take_it) {
            int q_ok = hold_q[h] == SIZE_MAX || hits[hold_q[h]] != 0; /* -1: held, to be safe */
            int c_ok = !ch->custodian || custodian_takes_part(sn, ch->custodian, addr, na);
            take_it = q_ok && c_ok;
        }
        if (take_it) {
            *holds = mv_xrealloc(*holds, (*n_holds + 1) * sizeof **holds);
            (*holds)[(*n_holds)++] = mv_xstrdup(ch->matter);
        }
    }
    free(qs);
    free(rule_q);
    free(hold_q);
    free(hits);
    for (size_t i = 0; i < na; i++)
        free(addr[i]);
    free(addr);
    release(c, sn);
    return MV_OK;
}
