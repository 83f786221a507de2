/* SPDX-License-Identifier: MIT */
/* cmd_audit.c - `mailvault audit`: read the encrypted audit trail. */
#include <getopt.h>

#include "../lib/util.h"
#include "cli.h"

static void help(void)
{
    fprintf(cli_out, "usage: mailvault audit [--limit N] [--format json]\n\n"
           "The audit trail: one record for every command that read or changed the\n"
           "archive (who, when, what, result), oldest first; --limit N shows the last N.\n"
           "Reading it is itself audited.\n");
}

static int audit_opt(void *ctx, int opt, const char *arg)
{
    if (opt == 'l' && !cli_parse_u64(arg, ctx))
        return 0;
    return cli_usage_error("audit", "bad --limit '%s'", arg), -1;
}

typedef struct out {
    int json, n;
} out;

static void print_rec(void *ctx, const mv_audit_rec *r)
{
    out *o = ctx;
    char t[32];
    mv_fmt_time(r->time_us / 1000000, t, sizeof t);
    if (o->json) {
        fprintf(cli_out, "%s{", o->n++ ? "," : "");
        json_kv_u64(cli_out, "seq", r->seq, 0);
        json_kv_str(cli_out, "time", t, 1);
        json_kv_str(cli_out, "user", r->user, 1);
        json_kv_str(cli_out, "command", r->command, 1);
        json_kv_str(cli_out, "detail", r->detail, 1);
        json_kv_str(cli_out, "result", r->result, 1);
        json_kv_u64(cli_out, "status", (uint64_t)r->status, 1);
        fprintf(cli_out, "}");
    } else {
        fprintf(cli_out, "%6llu  %s  %-10s %-8s ", (unsigned long long)r->seq, t, r->user, r->command);
        text_safe(cli_out, r->detail);
        fprintf(cli_out, "  => ");
        text_safe(cli_out, r->result);
        fprintf(cli_out, "\n");
    }
}

int cmd_audit(int argc, char **argv)
{
    mv_cli c;
    uint64_t limit = 0;
    static const struct option opts[] = {{"limit", required_argument, NULL, 'l'}, {0, 0, 0, 0}};
    cli_init(&c, "audit");
    int rc = cli_getopt(&c, argc, argv, opts, audit_opt, &limit, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi < argc)
        return cli_usage_error("audit", "unexpected argument '%s'", argv[c.argi]);
    mv_err err = {0};
    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    if ((st = cli_require(&c, s, MV_USER_AUDITOR | MV_USER_ADMIN, &err)))
        return cli_finish(&c, s, st, &err);
    out o = {c.json, 0};
    if (c.json)
        fprintf(cli_out, "[");
    st = mv_store_audit_list(s, limit, print_rec, &o, &err);
    if (c.json)
        fprintf(cli_out, "]\n");
    return cli_finish(&c, s, st, &err);
}
