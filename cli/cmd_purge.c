/* SPDX-License-Identifier: MIT */
/* cmd_purge.c - `mailvault purge`: crypto-shred every shred bucket past its
 * retention (store/compliance.c; docs/retention.md).  The only command that
 * removes archived mail. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../lib/util.h"
#include "../search/search.h"
#include "cli.h"

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault purge [--dry-run] [--confirm-clock] [--format json]\n\n"
            "Destroys the keys of every shred bucket whose retention has ended: the mail\n"
            "in it, its metadata and extracted text become unreadable here and in every\n"
            "backup of the data.  Mail under a legal hold is moved out first and kept.\n"
            "Each purged message leaves a signed tombstone in the integrity log, which\n"
            "`mailvault verify` checks.  --dry-run counts what would go.\n"
            "The search index is brought up to date first.  Refused while the clock runs\n"
            "behind the archive's latest record, or after it jumped far ahead of it, until\n"
            "an admin who checked the time says so with --confirm-clock.\n"
            "Needs the role admin; runs in its own process (stop the daemon); audited.\n");
}

typedef struct purge_args {
    int dry, confirm;
} purge_args;

static int purge_opt(void *ctx, int opt, const char *arg)
{
    (void)arg;
    purge_args *a = ctx;
    if (opt == 'n')
        a->dry = 1;
    else if (opt == 'c')
        a->confirm = 1;
    else
        return -1;
    return 0;
}

int cmd_purge(int argc, char **argv)
{
    mv_cli c;
    purge_args a = {0, 0};
    static const struct option opts[] = {{"dry-run", no_argument, NULL, 'n'},
                                         {"confirm-clock", no_argument, NULL, 'c'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "purge");
    int rc = cli_getopt(&c, argc, argv, opts, purge_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi < argc)
        return cli_usage_error("purge", "unexpected argument '%s'", argv[c.argi]);
    mv_err err = {0};
    mv_store *s = NULL;
    mv_index *ix = NULL;
    mv_purge_result r = {0};
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    if ((st = cli_require(&c, s, MV_USER_ADMIN, &err)))
        goto out;
    /* what the index knows must be all there is before anything goes */
    if ((st = cli_index_get(&c, s, 1, &ix, &err))) {
        mv_err_prefix(&err, "purge waits for the search index: ");
        goto out;
    }
    cli_index_put(ix);
    ix = NULL;
    mv_purge_opts o = {a.dry, a.confirm};
    if ((st = mv_store_purge(s, &o, &r, &err)))
        goto out;
    if (!a.dry && r.purged)
        cli_index_kick_or_update(&c, s);
    char when[32];
    if (c.json) {
        fprintf(cli_out, "{\"dry_run\":%s", a.dry ? "true" : "false");
        json_kv_u64(cli_out, "purged", r.purged, 1);
        json_kv_u64(cli_out, "held", r.held, 1);
        fprintf(cli_out, ",\"buckets\":[");
        for (size_t i = 0; i < r.n; i++) {
            mv_fmt_time(r.b[i].expiry, when, sizeof when);
            fprintf(cli_out, "%s{", i ? "," : "");
            json_kv_str(cli_out, "bucket", r.b[i].name, 0);
            json_kv_str(cli_out, "expired", when, 1);
            json_kv_u64(cli_out, "messages", r.b[i].messages, 1);
            json_kv_u64(cli_out, "held", r.b[i].held, 1);
            json_kv_u64(cli_out, "purged", r.b[i].purged, 1);
            fprintf(cli_out, "}");
        }
        fprintf(cli_out, "]}\n");
    } else {
        for (size_t i = 0; i < r.n; i++) {
            mv_fmt_time(r.b[i].expiry, when, sizeof when);
            fprintf(cli_out, "bucket %-24s expired %s: %llu message%s, %llu held, %llu %s\n",
                    r.b[i].name, when, (unsigned long long)r.b[i].messages,
                    r.b[i].messages == 1 ? "" : "s", (unsigned long long)r.b[i].held,
                    (unsigned long long)r.b[i].purged, a.dry ? "would be purged" : "purged");
        }
        fprintf(cli_out, "%s%llu message%s %s, %llu kept under legal hold\n",
                r.n ? "" : "no bucket has expired: ", (unsigned long long)r.purged,
                r.purged == 1 ? "" : "s", a.dry ? "would be purged" : "purged",
                (unsigned long long)r.held);
    }
    cli_detail(&c, "%spurged=%llu held=%llu buckets=%zu%s", a.dry ? "dry-run " : "",
               (unsigned long long)r.purged, (unsigned long long)r.held, r.n,
               a.confirm ? " clock confirmed" : "");
out:
    cli_index_put(ix);
    mv_purge_result_free(&r);
    return cli_finish(&c, s, st, &err);
}
