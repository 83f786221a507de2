/* SPDX-License-Identifier: MIT */
/* cmd_policy.c - `mailvault policy`: the retention rules (docs/retention.md).
 * Every change is a new version of the whole rule list, kept, logged in the
 * integrity log and audited. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"
#include "../search/match.h"
#include "cli.h"

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault policy list [--format json]\n"
            "       mailvault policy set NAME --keep N(d|y)|forever\n"
            "                            (--domain D[,D...] | --custodian NAME | --query Q)\n"
            "                            [--before RULE]\n"
            "       mailvault policy default --keep N(d|y)|forever\n"
            "       mailvault policy remove NAME\n\n"
            "Retention rules, in order: the first that matches a new message gives its\n"
            "class and how long it is kept, counted from its trusted receipt time; the\n"
            "default rule, last, takes the rest.  --domain matches the sender's or any\n"
            "recipient's domain (header or envelope) and its subdomains; --custodian any\n"
            "address of that custodian; --query the search language (docs/search.md),\n"
            "evaluated on the message itself as it arrives.  A rule kept longer later\n"
            "extends the mail it\n"
            "already holds; kept shorter, it applies to new mail only: retention of\n"
            "archived mail is never shortened.  1y is 365.25 days, rounded up.\n"
            "Needs the role admin; audited; each version is a leaf of the integrity log.\n");
}

/* parse_keep - "90d", "7y", "forever". */
static int parse_keep(const char *a, uint32_t *days)
{
    if (strcmp(a, "forever") == 0) {
        *days = MV_KEEP_FOREVER;
        return 0;
    }
    char *end;
    if (*a < '1' || *a > '9')
        return -1;
    unsigned long v = strtoul(a, &end, 10);
    if (v == 0 || v > MV_KEEP_DAYS_MAX || (end[0] != 'd' && end[0] != 'y') || end[1])
        return -1;
    uint64_t d = end[0] == 'd' ? v : (v * 36525 + 99) / 100;
    if (d == 0 || d > MV_KEEP_DAYS_MAX)
        return -1;
    *days = (uint32_t)d;
    return 0;
}

static void keep_str(uint32_t days, char *out, size_t n)
{
    if (days == MV_KEEP_FOREVER)
        snprintf(out, n, "forever");
    else if (days % 36525 == 0 || (days * 100ull) % 36525 < 100)
        snprintf(out, n, "%uy (%u days)", (unsigned)((days * 100ull) / 36525), days);
    else
        snprintf(out, n, "%u days", days);
}

static const char *kind_name(mv_rule_kind k)
{
    return k == MV_RULE_DOMAIN      ? "domain"
           : k == MV_RULE_CUSTODIAN ? "custodian"
           : k == MV_RULE_QUERY     ? "query"
                                    : "default";
}

typedef struct policy_args {
    const char *keep, *domain, *custodian, *query, *before;
} policy_args;

static int policy_opt(void *ctx, int opt, const char *arg)
{
    policy_args *a = ctx;
    switch (opt) {
    case 'k':
        a->keep = arg;
        return 0;
    case 'd':
        a->domain = arg;
        return 0;
    case 'c':
        a->custodian = arg;
        return 0;
    case 'b':
        a->before = arg;
        return 0;
    case 'q':
        a->query = arg;
        return 0;
    default:
        return -1;
    }
}

static void list(mv_cli *c, const mv_policy *p)
{
    char when[32] = "", keep[48];
    if (p->version)
        mv_fmt_time(p->changed_us / 1000000, when, sizeof when);
    if (c->json) {
        fprintf(cli_out, "{");
        json_kv_u64(cli_out, "version", p->version, 0);
        json_kv_str(cli_out, "changed", when, 1);
        json_kv_str(cli_out, "by", p->by ? p->by : "", 1);
        fprintf(cli_out, ",\"rules\":[");
        for (size_t i = 0; i < p->n; i++) {
            const mv_policy_rule *r = &p->rules[i];
            fprintf(cli_out, "%s{", i ? "," : "");
            json_kv_str(cli_out, "name", r->name, 0);
            json_kv_str(cli_out, "kind", kind_name(r->kind), 1);
            json_kv_str(cli_out, "match", r->match ? r->match : "", 1);
            if (r->keep_days == MV_KEEP_FOREVER)
                fprintf(cli_out, ",\"keep_days\":null,\"forever\":true");
            else
                fprintf(cli_out, ",\"keep_days\":%u,\"forever\":false", r->keep_days);
            fprintf(cli_out, "}");
        }
        fprintf(cli_out, "]}\n");
        return;
    }
    if (p->version)
        fprintf(cli_out, "retention policy version %llu, set %s by %s\n",
                (unsigned long long)p->version, when, p->by ? p->by : "?");
    else
        fprintf(cli_out, "no retention policy set: the archive's default retention applies\n");
    for (size_t i = 0; i < p->n; i++) {
        const mv_policy_rule *r = &p->rules[i];
        keep_str(r->keep_days, keep, sizeof keep);
        fprintf(cli_out, "%2zu. %-16s keep %-22s %s", i + 1, r->name, keep, kind_name(r->kind));
        if (r->match) {
            fputc(' ', cli_out);
            text_safe(cli_out, r->match);
        }
        fputc('\n', cli_out);
    }
}

int cmd_policy(int argc, char **argv)
{
    mv_cli c;
    policy_args a = {0};
    static const struct option opts[] = {{"keep", required_argument, NULL, 'k'},
                                         {"domain", required_argument, NULL, 'd'},
                                         {"custodian", required_argument, NULL, 'c'},
                                         {"before", required_argument, NULL, 'b'},
                                         {"query", required_argument, NULL, 'q'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "policy");
    int rc = cli_getopt(&c, argc, argv, opts, policy_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    const char *sub = c.argi < argc ? argv[c.argi] : "list";
    const char *name = c.argi + 1 < argc ? argv[c.argi + 1] : NULL;
    int is_list = strcmp(sub, "list") == 0, is_set = strcmp(sub, "set") == 0,
        is_def = strcmp(sub, "default") == 0, is_rm = strcmp(sub, "remove") == 0;
    if (!is_list && !is_set && !is_def && !is_rm)
        return cli_usage_error("policy", "unknown subcommand '%s' (list, set, default, remove)", sub);
    int want_args = (is_set || is_rm) ? 2 : 1;
    if (argc - c.argi > want_args)
        return cli_usage_error("policy", "unexpected argument '%s'", argv[c.argi + want_args]);
    if ((is_set || is_rm) && !name)
        return cli_usage_error("policy", "%s needs the rule's name", sub);
    uint32_t keep = 0;
    if ((is_set || is_def) && (!a.keep || parse_keep(a.keep, &keep) < 0))
        return cli_usage_error("policy", "--keep is N days (90d), N years (7y) or forever");
    if (is_set && !!a.domain + !!a.custodian + !!a.query != 1)
        return cli_usage_error("policy", "set needs one of --domain, --custodian or --query");
    if (is_set && !mv_class_name_ok(name))
        return cli_usage_error("policy", "a rule's name is 1 to 16 of a-z 0-9 _ -");
    if (is_set && strcmp(name, "default") == 0)
        return cli_usage_error("policy", "the default rule is changed with `policy default`");
    mv_err err = {0};
    mv_store *s = NULL;
    mv_policy p;
    memset(&p, 0, sizeof p);
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    if ((st = cli_require(&c, s, is_list ? MV_USER_ADMIN | MV_USER_AUDITOR | MV_USER_LEGAL
                                         : MV_USER_ADMIN,
                          &err)) ||
        (st = mv_store_policy(s, &p, &err)))
        goto out;
    if (is_list) {
        list(&c, &p);
        goto out;
    }
    size_t at = p.n; /* the rule's index, p.n if absent */
    for (size_t i = 0; name && i < p.n; i++)
        if (strcmp(p.rules[i].name, name) == 0)
            at = i;
    if (is_def) {
        p.rules[p.n - 1].keep_days = keep;
    } else if (is_rm) {
        if (at == p.n || at == p.n - 1) {
            st = mv_err_set(&err, at == p.n ? MV_ENOTFOUND : MV_EUSAGE,
                            at == p.n ? "no rule named %s" : "the default rule stays (%s)", name);
            goto out;
        }
        free(p.rules[at].match);
        memmove(&p.rules[at], &p.rules[at + 1], (p.n - at - 1) * sizeof *p.rules);
        p.n--;
    } else {
        if (a.query) { /* refused now rather than skipped for every message */
            mv_matcher *m = NULL;
            mv_mquery *q = NULL;
            if (!(st = mv_matcher_new(s, NULL, &m, &err)))
                st = mv_matcher_compile(m, a.query, &q, &err);
            mv_mquery_free(q);
            mv_matcher_free(m);
            if (st)
                goto out;
        }
        mv_policy_rule r = {.keep_days = keep,
                            .kind = a.domain      ? MV_RULE_DOMAIN
                                    : a.custodian ? MV_RULE_CUSTODIAN
                                                  : MV_RULE_QUERY,
                            .match = mv_xstrdup(a.domain      ? a.domain
                                                : a.custodian ? a.custodian
                                                              : a.query)};
        snprintf(r.name, sizeof r.name, "%s", name);
        if (at < p.n) {
            free(p.rules[at].match);
            memmove(&p.rules[at], &p.rules[at + 1], (p.n - at - 1) * sizeof *p.rules);
            p.n--;
        }
        size_t pos = p.n - 1; /* before the default */
        for (size_t i = 0; a.before && i < p.n; i++)
            if (strcmp(p.rules[i].name, a.before) == 0)
                pos = i;
        if (a.before && strcmp(p.rules[pos].name, a.before) != 0) {
            free(r.match);
            st = mv_err_set(&err, MV_ENOTFOUND, "no rule named %s", a.before);
            goto out;
        }
        p.rules = mv_xrealloc(p.rules, (p.n + 1) * sizeof *p.rules);
        memmove(&p.rules[pos + 1], &p.rules[pos], (p.n - pos) * sizeof *p.rules);
        p.rules[pos] = r;
        p.n++;
    }
    unsigned extended = 0;
    if ((st = mv_store_policy_put(s, &p, c.user, &extended, &err)))
        goto out;
    mv_policy_clear(&p);
    if ((st = mv_store_policy(s, &p, &err)))
        goto out;
    list(&c, &p);
    if (extended && !c.json)
        fprintf(cli_out, "%u bucket%s of archived mail now kept longer\n", extended,
                extended == 1 ? "" : "s");
    cli_detail(&c, "%s %s -> version %llu, %u buckets extended", sub, name ? name : "",
               (unsigned long long)p.version, extended);
out:
    mv_policy_clear(&p);
    return cli_finish(&c, s, st, &err);
}
