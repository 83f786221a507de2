/* SPDX-License-Identifier: MIT */
/* cmd_reindex.c - `mailvault reindex`: rebuild the search index from the
 * store alone (a new index is built beside the old one and replaces it
 * when complete).  Runs without a daemon: the daemon's indexer is the
 * index's one writer while it runs. */
#include <getopt.h>
#include <stdlib.h>
#include <time.h>

#include "../lib/util.h"
#include "cli.h"

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault reindex [--reextract] [--threads N] [--format json]\n\n"
            "Rebuild the search index from the store alone, with a progress bar on a\n"
            "terminal.  The old index answers searches until the new one is complete.\n"
            "  --reextract   make every message's text anew (after an upgrade of the\n"
            "                extraction), instead of reusing the stored text\n"
            "  --threads N   extraction threads (default: one per CPU)\n"
            "Needs the role admin.\n");
}

typedef struct reindex_args {
    int reextract;
    uint64_t threads;
} reindex_args;

static int reindex_opt(void *ctx, int opt, const char *arg)
{
    reindex_args *a = ctx;
    if (opt == 'r')
        return a->reextract = 1, 0;
    if (opt == 't' && !cli_parse_u64(arg, &a->threads) && a->threads >= 1 && a->threads <= 64)
        return 0;
    return cli_usage_error("reindex", "--threads is a number from 1 to 64"), -1;
}

typedef struct bar {
    struct mv_progress *pg;
    int tried;
} bar;

static void progress(void *ctx, uint64_t done, uint64_t total)
{
    bar *b = ctx;
    if (!b->tried) {
        b->pg = cli_progress_new("reindexing", total);
        b->tried = 1;
    }
    mv_progress_update(b->pg, done, 0);
}

int cmd_reindex(int argc, char **argv)
{
    mv_cli c;
    reindex_args a = {0, 0};
    static const struct option opts[] = {{"reextract", no_argument, NULL, 'r'},
                                         {"threads", required_argument, NULL, 't'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "reindex");
    int rc = cli_getopt(&c, argc, argv, opts, reindex_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi < argc)
        return cli_usage_error("reindex", "unexpected argument '%s'", argv[c.argi]);
    mv_err err = {0};
    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    cli_detail(&c, "%s", a.reextract ? "reextract" : "");
    if ((st = cli_require(&c, s, MV_USER_ADMIN, &err)))
        return cli_finish(&c, s, st, &err);
    mv_index_opts o = {.threads = (unsigned)a.threads};
    mv_index_stats stats = {0};
    bar b = {NULL, 0};
    int64_t t0 = mv_now_us();
    st = mv_index_rebuild(s, &o, a.reextract, progress, &b, &stats, &err);
    mv_progress_free(b.pg);
    double secs = (double)(mv_now_us() - t0) / 1e6;
    if (!st) {
        if (c.json) {
            fprintf(cli_out, "{");
            json_kv_u64(cli_out, "changes", stats.changes, 0);
            json_kv_u64(cli_out, "documents", stats.documents, 1);
            json_kv_u64(cli_out, "extracted", stats.extracted, 1);
            json_kv_u64(cli_out, "unreadable", stats.failed, 1);
            fprintf(cli_out, ",\"seconds\":%.3f}\n", secs);
        } else {
            fprintf(cli_out, "reindexed %llu message%s (%llu text%s extracted anew) in %.1f s\n",
                    (unsigned long long)stats.documents, stats.documents == 1 ? "" : "s",
                    (unsigned long long)stats.extracted, stats.extracted == 1 ? "" : "s",
                    secs);
            if (stats.failed)
                fprintf(cli_out, "%llu message(s) indexed without their text (first: %llu): "
                                 "their bytes could not be read; run mailvault verify\n",
                        (unsigned long long)stats.failed,
                        (unsigned long long)stats.first_failed);
        }
        cli_detail(&c, " -> %llu documents", (unsigned long long)stats.documents);
    }
    rc = cli_finish(&c, s, st, &err);
    return rc == EXIT_OK && stats.failed ? EXIT_PARTIAL : rc;
}
