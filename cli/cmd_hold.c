/* SPDX-License-Identifier: MIT */
/* cmd_hold.c - `mailvault hold`: legal holds (docs/retention.md).  A hold
 * takes the mail its query finds once the index has caught up, and new
 * mail matching it as it arrives; held mail is never purged. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"
#include "../search/search.h"
#include "cli.h"

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault hold create MATTER (--query Q | --custodian NAME | both)\n"
            "                            --reason TEXT\n"
            "       mailvault hold list [--format json]\n"
            "       mailvault hold release MATTER --reason TEXT\n\n"
            "A legal hold keeps the mail of a matter from any purge.  create takes every\n"
            "archived message the query (docs/search.md) finds, of the custodian's when\n"
            "--custodian is given (both: the messages of the custodian the query finds),\n"
            "once the search index has caught up, and new mail matching it as it\n"
            "arrives.  Search it with hold:MATTER or is:held.  release lets the mail go:\n"
            "what is past its retention is purged by the next purge.  create and\n"
            "release need the role legal and a reason; both are audited and logged in\n"
            "the integrity log, and each message records when it was held and released.\n");
}

typedef struct hold_args {
    const char *query, *custodian, *reason;
} hold_args;

static int hold_opt(void *ctx, int opt, const char *arg)
{
    hold_args *a = ctx;
    switch (opt) {
    case 'q':
        a->query = arg;
        return 0;
    case 'c':
        a->custodian = arg;
        return 0;
    case 'r':
        a->reason = arg;
        return 0;
    default:
        return -1;
    }
}

void cli_print_holds(mv_cli *c, const mv_hold *h, size_t n)
{
    char t1[32], t2[32];
    if (c->json)
        fprintf(cli_out, "[");
    for (size_t i = 0; i < n; i++) {
        mv_fmt_time(h[i].created, t1, sizeof t1);
        if (h[i].released)
            mv_fmt_time(h[i].released_at, t2, sizeof t2);
        if (c->json) {
            fprintf(cli_out, "%s{", i ? "," : "");
            json_kv_str(cli_out, "matter", h[i].matter, 0);
            json_kv_str(cli_out, "state", h[i].released ? "released" : "active", 1);
            json_kv_str(cli_out, "query", h[i].query ? h[i].query : "", 1);
            json_kv_str(cli_out, "custodian", h[i].custodian ? h[i].custodian : "", 1);
            json_kv_str(cli_out, "created", t1, 1);
            json_kv_str(cli_out, "by", h[i].by ? h[i].by : "", 1);
            json_kv_str(cli_out, "reason", h[i].reason ? h[i].reason : "", 1);
            json_kv_u64(cli_out, "messages", h[i].members, 1);
            if (h[i].released) {
                json_kv_str(cli_out, "released", t2, 1);
                json_kv_str(cli_out, "released_by", h[i].released_by ? h[i].released_by : "", 1);
                json_kv_str(cli_out, "release_reason",
                            h[i].release_reason ? h[i].release_reason : "", 1);
            }
            fprintf(cli_out, "}");
            continue;
        }
        fprintf(cli_out, "%s  ", h[i].released ? "released" : "active  ");
        text_safe(cli_out, h[i].matter);
        fprintf(cli_out, "\n  created %s by %s, %llu message%s\n  reason: ", t1,
                h[i].by ? h[i].by : "?", (unsigned long long)h[i].members,
                h[i].members == 1 ? "" : "s");
        text_safe(cli_out, h[i].reason ? h[i].reason : "");
        if (h[i].query) {
            fprintf(cli_out, "\n  query: ");
            text_safe(cli_out, h[i].query);
        }
        if (h[i].custodian) {
            fprintf(cli_out, "\n  custodian: ");
            text_safe(cli_out, h[i].custodian);
        }
        if (h[i].released) {
            fprintf(cli_out, "\n  released %s by %s: ", t2, h[i].released_by ? h[i].released_by : "?");
            text_safe(cli_out, h[i].release_reason ? h[i].release_reason : "");
        }
        fputc('\n', cli_out);
    }
    if (c->json)
        fprintf(cli_out, "]\n");
    else if (!n)
        fprintf(cli_out, "no legal hold\n");
}

/* criteria - the search the hold runs: the query, the custodian, or the
 * custodian's messages the query finds. */
static char *criteria(const hold_args *a)
{
    mv_buf q = MV_BUF_INIT;
    if (a->custodian) {
        mv_buf_append_str(&q, "custodian:\"");
        for (const char *p = a->custodian; *p; p++)
            if (*p != '"')
                mv_buf_append_byte(&q, (uint8_t)*p);
        mv_buf_append_str(&q, "\"");
    }
    if (a->query)
        mv_buf_printf(&q, "%s(%s)", a->custodian ? " AND " : "", a->query);
    mv_buf_append_byte(&q, 0);
    return (char *)mv_buf_steal(&q, NULL);
}

int cmd_hold(int argc, char **argv)
{
    mv_cli c;
    hold_args a = {0};
    static const struct option opts[] = {{"query", required_argument, NULL, 'q'},
                                         {"custodian", required_argument, NULL, 'c'},
                                         {"reason", required_argument, NULL, 'r'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "hold");
    int rc = cli_getopt(&c, argc, argv, opts, hold_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    const char *sub = c.argi < argc ? argv[c.argi] : "list";
    const char *matter = c.argi + 1 < argc ? argv[c.argi + 1] : NULL;
    int is_list = strcmp(sub, "list") == 0, is_create = strcmp(sub, "create") == 0,
        is_release = strcmp(sub, "release") == 0;
    if (!is_list && !is_create && !is_release)
        return cli_usage_error("hold", "unknown subcommand '%s' (create, list, release)", sub);
    if (argc - c.argi > (is_list ? 1 : 2))
        return cli_usage_error("hold", "unexpected argument '%s'", argv[c.argi + (is_list ? 1 : 2)]);
    if (!is_list && (!matter || !mv_matter_name_ok(matter)))
        return cli_usage_error("hold", "%s needs the matter's name (1 to %u printable bytes)", sub,
                               MV_MATTER_MAX);
    if (!is_list && (!a.reason || !*a.reason))
        return cli_usage_error("hold", "%s needs --reason", sub);
    if (is_create && !a.query && !a.custodian)
        return cli_usage_error("hold", "create needs --query, --custodian or both");
    mv_err err = {0};
    mv_store *s = NULL;
    mv_index *ix = NULL;
    mv_hold *all = NULL;
    size_t na = 0;
    char *q = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    if ((st = cli_require(&c, s, is_list ? MV_USER_LEGAL | MV_USER_AUDITOR | MV_USER_ADMIN
                                         : MV_USER_LEGAL,
                          &err)))
        goto out;
    if (is_list) {
        if (!(st = mv_store_holds(s, &all, &na, &err)))
            cli_print_holds(&c, all, na);
        goto out;
    }
    if (is_release) {
        uint64_t released = 0;
        if ((st = mv_store_hold_release(s, matter, a.reason, c.user, &released, &err)))
            goto out;
        cli_index_kick_or_update(&c, s);
        if (c.json)
            fprintf(cli_out, "{\"matter\":"), json_str(cli_out, matter),
                fprintf(cli_out, ",\"released\":%llu}\n", (unsigned long long)released);
        else
            fprintf(cli_out, "released %llu message%s from ", (unsigned long long)released,
                    released == 1 ? "" : "s"),
                text_safe(cli_out, matter), fputc('\n', cli_out);
        cli_detail(&c, "release matter=%s messages=%llu reason=%s", matter,
                   (unsigned long long)released, a.reason);
        goto out;
    }
    /* create: the index first catches up, so "existing mail" is all of it */
    q = criteria(&a);
    mv_search_opts so = {0, UINT64_MAX, MV_SORT_DATE_ASC, 0, NULL, NULL};
    mv_search_result r = {0};
    if ((st = cli_index_current(&c, s, &ix, &err)) || (st = mv_index_search(ix, q, &so, &r, &err)))
        goto out;
    uint64_t *v = mv_xcalloc(r.n ? r.n : 1, sizeof *v);
    for (size_t i = 0; i < r.n; i++)
        v[i] = r.rows[i].serial;
    size_t nv = r.n;
    mv_search_result_free(&r);
    cli_index_put(ix);
    ix = NULL;
    mv_hold h = {.matter = (char *)matter,
                 .query = (char *)a.query,
                 .custodian = (char *)a.custodian,
                 .reason = (char *)a.reason,
                 .by = (char *)c.user};
    uint64_t held = 0;
    st = mv_store_hold_create(s, &h, v, nv, &held, &err);
    free(v);
    if (st)
        goto out;
    cli_index_kick_or_update(&c, s);
    if (c.json)
        fprintf(cli_out, "{\"matter\":"), json_str(cli_out, matter),
            fprintf(cli_out, ",\"held\":%llu}\n", (unsigned long long)held);
    else
        fprintf(cli_out, "matter "), text_safe(cli_out, matter),
            fprintf(cli_out, " holds %llu message%s; new mail matching it is held as it arrives\n",
                    (unsigned long long)held, held == 1 ? "" : "s");
    cli_detail(&c, "create matter=%s query=%s custodian=%s messages=%llu reason=%s", matter,
               a.query ? a.query : "", a.custodian ? a.custodian : "", (unsigned long long)held,
               a.reason);
out:
    cli_index_put(ix);
    free(q);
    for (size_t i = 0; i < na; i++)
        mv_hold_clear(&all[i]);
    free(all);
    return cli_finish(&c, s, st, &err);
}
