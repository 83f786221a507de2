/* SPDX-License-Identifier: MIT */
/* cmd_report.c - `mailvault report`: what auditors ask for (docs/retention.md):
 * retention by class, legal holds, and who searched, viewed and exported
 * what.  Reads no mail content. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/util.h"
#include "cli.h"

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault report retention [--format json]\n"
            "       mailvault report holds [--format json]\n"
            "       mailvault report audit [--since DATE] [--format json]\n\n"
            "retention: for each retention class, its rule, messages archived and purged,\n"
            "           held, and its buckets' expiry (the oldest and the next ones).\n"
            "holds:     every legal hold, active or released, with who, when and why.\n"
            "audit:     every command that read or changed the archive since DATE\n"
            "           (YYYY-MM-DD or an RFC 3339 time, UTC): who searched, viewed,\n"
            "           exported, held, purged what.\n"
            "Needs the role auditor, legal or admin; audited.\n");
}

/* ---- retention -------------------------------------------------------------- */

typedef struct cls_row {
    char name[MV_CLASS_MAX];
    uint64_t buckets, messages, held, purged;
    int64_t first_expiry, next_expiry; /* of buckets still holding mail */
} cls_row;

typedef struct ret_ctx {
    mv_store *s;
    cls_row *rows;
    size_t n;
    int64_t now;
} ret_ctx;

static cls_row *row_for(ret_ctx *x, const char *bucket)
{
    const char *slash = strchr(bucket, '/');
    size_t l = slash ? (size_t)(slash - bucket) : strlen(bucket); /* a bucket, or a class */
    if (l == 0 || l >= MV_CLASS_MAX)
        return NULL;
    for (size_t i = 0; i < x->n; i++)
        if (strlen(x->rows[i].name) == l && memcmp(x->rows[i].name, bucket, l) == 0)
            return &x->rows[i];
    x->rows = mv_xrealloc(x->rows, (x->n + 1) * sizeof *x->rows);
    cls_row *r = &x->rows[x->n++];
    memset(r, 0, sizeof *r);
    memcpy(r->name, bucket, l);
    r->first_expiry = r->next_expiry = INT64_MAX;
    return r;
}

static int is_bucket(const char *name)
{
    return strncmp(name, "hold/", 5) != 0 && strchr(name, '/') != NULL;
}

static void on_bucket(void *ctx, const char *name)
{
    ret_ctx *x = ctx;
    if (!is_bucket(name))
        return;
    cls_row *r = row_for(x, name);
    if (!r)
        return;
    r->buckets++;
    int64_t e = mv_store_bucket_expiry(x->s, name);
    if (e < r->first_expiry)
        r->first_expiry = e;
    if (e > x->now && e < r->next_expiry)
        r->next_expiry = e;
}

static void on_message(void *ctx, uint64_t serial, const char *kek_name)
{
    ret_ctx *x = ctx;
    (void)serial;
    if (!kek_name)
        return;
    cls_row *r = is_bucket(kek_name) ? row_for(x, kek_name) : row_for(x, "held/");
    if (r)
        r->messages++;
}

static void on_tomb(void *ctx, const mv_tombstone *t)
{
    ret_ctx *x = ctx;
    cls_row *r = row_for(x, t->bucket);
    if (r)
        r->purged++;
}

static void when_str(int64_t t, char *out, size_t n)
{
    if (t == INT64_MAX)
        snprintf(out, n, "never");
    else
        mv_fmt_time(t, out, n);
}

static mv_status report_retention(mv_cli *c, mv_store *s, mv_err *err)
{
    mv_policy p;
    ret_ctx x = {s, NULL, 0, mv_now()};
    mv_status st = mv_store_policy(s, &p, err);
    if (st)
        return st;
    for (size_t i = 0; i < p.n; i++) /* every class of the policy, in its order */
        (void)row_for(&x, p.rules[i].name);
    mv_store_buckets(s, on_bucket, &x);
    if (!(st = mv_store_message_keks(s, on_message, &x, err)))
        st = mv_store_tombstones(s, on_tomb, &x, err);
    if (st)
        goto out;
    char fe[32], ne[32];
    if (c->json)
        fprintf(cli_out, "{\"policy_version\":%llu,\"classes\":[", (unsigned long long)p.version);
    else
        fprintf(cli_out, "%-16s %-10s %10s %8s %10s  %-20s  %s\n", "class", "keep", "messages",
                "buckets", "purged", "oldest bucket ends", "next expiry");
    for (size_t i = 0; i < x.n; i++) {
        cls_row *r = &x.rows[i];
        const mv_policy_rule *rule = NULL;
        for (size_t k = 0; k < p.n; k++)
            if (strcmp(p.rules[k].name, r->name) == 0)
                rule = &p.rules[k];
        char keep[24];
        if (!rule)
            snprintf(keep, sizeof keep, strcmp(r->name, "held") == 0 ? "(held)" : "(old rule)");
        else if (rule->keep_days == MV_KEEP_FOREVER)
            snprintf(keep, sizeof keep, "forever");
        else
            snprintf(keep, sizeof keep, "%ud", rule->keep_days);
        when_str(r->first_expiry, fe, sizeof fe);
        when_str(r->next_expiry, ne, sizeof ne);
        if (c->json) {
            fprintf(cli_out, "%s{", i ? "," : "");
            json_kv_str(cli_out, "class", r->name, 0);
            json_kv_str(cli_out, "keep", keep, 1);
            json_kv_u64(cli_out, "messages", r->messages, 1);
            json_kv_u64(cli_out, "buckets", r->buckets, 1);
            json_kv_u64(cli_out, "purged", r->purged, 1);
            json_kv_str(cli_out, "oldest_bucket_ends", fe, 1);
            json_kv_str(cli_out, "next_expiry", ne, 1);
            fprintf(cli_out, "}");
        } else {
            fprintf(cli_out, "%-16s %-10s %10llu %8llu %10llu  %-20s  %s\n", r->name, keep,
                    (unsigned long long)r->messages, (unsigned long long)r->buckets,
                    (unsigned long long)r->purged, fe, ne);
        }
    }
    if (c->json)
        fprintf(cli_out, "]}\n");
out:
    free(x.rows);
    mv_policy_clear(&p);
    return st;
}

/* ---- audit ------------------------------------------------------------------- */

typedef struct audit_ctx {
    mv_cli *c;
    int64_t since_us;
    uint64_t shown;
} audit_ctx;

static void on_audit(void *ctx, const mv_audit_rec *r)
{
    audit_ctx *a = ctx;
    if (r->time_us < a->since_us)
        return;
    char when[32];
    mv_fmt_time(r->time_us / 1000000, when, sizeof when);
    if (a->c->json) {
        fprintf(cli_out, "%s{", a->shown ? "," : "");
        json_kv_u64(cli_out, "seq", r->seq, 0);
        json_kv_str(cli_out, "time", when, 1);
        json_kv_str(cli_out, "user", r->user, 1);
        json_kv_str(cli_out, "command", r->command, 1);
        json_kv_str(cli_out, "detail", r->detail, 1);
        json_kv_str(cli_out, "result", r->result, 1);
        fprintf(cli_out, "}");
    } else {
        fprintf(cli_out, "%s  %-10s %-14s ", when, r->user, r->command);
        text_safe(cli_out, r->detail);
        fprintf(cli_out, "  [%s]\n", r->result);
    }
    a->shown++;
}

static int parse_since(const char *p, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(p, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end) {
        memset(&tm, 0, sizeof tm);
        end = strptime(p, "%Y-%m-%d", &tm);
        if (!end || *end)
            return -1;
    }
    *out = (int64_t)timegm(&tm) * 1000000;
    return 0;
}

static int report_opt(void *ctx, int opt, const char *arg)
{
    if (opt != 's')
        return -1;
    *(const char **)ctx = arg;
    return 0;
}

int cmd_report(int argc, char **argv)
{
    mv_cli c;
    const char *since = NULL;
    static const struct option opts[] = {{"since", required_argument, NULL, 's'}, {0, 0, 0, 0}};
    cli_init(&c, "report");
    int rc = cli_getopt(&c, argc, argv, opts, report_opt, &since, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi + 1 != argc)
        return cli_usage_error("report", "give one report: retention, holds or audit");
    const char *what = argv[c.argi];
    int64_t since_us = 0;
    if (strcmp(what, "retention") && strcmp(what, "holds") && strcmp(what, "audit"))
        return cli_usage_error("report", "unknown report '%s' (retention, holds, audit)", what);
    if (since && (strcmp(what, "audit") != 0 || parse_since(since, &since_us) < 0))
        return cli_usage_error("report", "--since is YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, with "
                                         "report audit");
    mv_err err = {0};
    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    if ((st = cli_require(&c, s, MV_USER_AUDITOR | MV_USER_LEGAL | MV_USER_ADMIN, &err)))
        goto out;
    if (strcmp(what, "retention") == 0) {
        st = report_retention(&c, s, &err);
    } else if (strcmp(what, "holds") == 0) {
        mv_hold *h = NULL;
        size_t n = 0;
        if (!(st = mv_store_holds(s, &h, &n, &err))) {
            cli_print_holds(&c, h, n);
            for (size_t i = 0; i < n; i++)
                mv_hold_clear(&h[i]);
            free(h);
        }
    } else {
        audit_ctx a = {&c, since_us, 0};
        if (c.json)
            fprintf(cli_out, "[");
        st = mv_store_audit_list(s, 0, on_audit, &a, &err);
        if (c.json)
            fprintf(cli_out, "]\n");
        else if (!st && !a.shown)
            fprintf(cli_out, "no audit record since %s\n", since ? since : "the start");
    }
    cli_detail(&c, "%s%s%s", what, since ? " since " : "", since ? since : "");
out:
    return cli_finish(&c, s, st, &err);
}
