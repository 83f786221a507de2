/* SPDX-License-Identifier: MIT */
/* cmd_import.c - `mailvault import PATH...`. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../ingest/import.h"
#include "../lib/log.h"
#include "../lib/util.h"
#include "cli.h"

#define IMPORT_INDEX_INTERVAL_MS 100
#define IMPORT_COMPACT_MIN 1000 /* new messages in a first load worth compacting */

static void help(void)
{
    fprintf(cli_out, "usage: mailvault import [--workers N] [--quiet] [--no-index] [--format json]\n"
           "                        [--forget-unresolved REASON] PATH...\n\n"
           "Archive every message under the paths: mbox files (mboxo and mboxrd), Maildir\n"
           "folders (cur/ and new/), single message files (.eml, and Apple Mail's .emlx),\n"
           "and directories of any of these, recursively.  Files are recognised by content, not by name; files that are not\n"
           "mail are skipped and counted.  Importing the same file again adds nothing; an\n"
           "interrupted import run again loses and doubles nothing.\n"
           "The search index is brought up to date before the command ends (through a\n"
           "running daemon, by its indexer); --no-index leaves that to the next search,\n"
           "reindex or serve.\n"
           "Arrivals an interrupted import spooled by reference are read back from their\n"
           "files first; those whose file is gone or changed stay in the spool, unless\n"
           "--forget-unresolved REASON drops them: each is named, with the reason, in\n"
           "the audit record (they were never reported imported).\n"
           "Exit status: 0, or 1 when some messages could not be read or processed.\n");
}

typedef struct import_args {
    mv_import_opts o;
    int no_index;
    const char *forget_reason;
} import_args;

/* on_forget - an arrival dropped from the spool, on the audit record. */
static void on_forget(void *ctx, const char *origin, const uint8_t sha256[32])
{
    char hex[65];
    mv_hex(sha256, 32, hex);
    cli_detail(ctx, "forgot=%s sha256=%s;", origin ? origin : "?", hex);
}

static int import_opt(void *ctx, int opt, const char *arg)
{
    import_args *a = ctx;
    mv_import_opts *o = &a->o;
    uint64_t n;
    if (opt == 'n') {
        a->no_index = 1;
        return 0;
    }
    if (opt == 'w') {
        if (cli_parse_u64(arg, &n) || n == 0 || n > 256)
            return cli_usage_error("import", "--workers must be 1..256"), -1;
        o->workers = (unsigned)n;
        return 0;
    }
    if (opt == 'q') {
        o->quiet = 1;
        return 0;
    }
    if (opt == 'f') {
        if (!arg[strspn(arg, " \t")])
            return cli_usage_error("import", "--forget-unresolved needs a reason"), -1;
        o->forget_unresolved = 1;
        a->forget_reason = arg;
        return 0;
    }
    return -1;
}

int cmd_import(int argc, char **argv)
{
    mv_cli c;
    import_args a = {{0}, 0, NULL};
    mv_import_opts o;
    static const struct option opts[] = {{"workers", required_argument, NULL, 'w'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"no-index", no_argument, NULL, 'n'},
                                         {"forget-unresolved", required_argument, NULL, 'f'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "import");
    int rc = cli_getopt(&c, argc, argv, opts, import_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    o = a.o;
    if (c.argi >= argc)
        return cli_usage_error("import", "give at least one PATH");
    o.progress = !cli_in_daemon && cli_err == mv_stderr() && isatty(STDERR_FILENO);
    mv_err err = {0};
    mv_store *s = NULL;
    /* The walk of the paths (directory listings) runs while the store opens:
     * the two took ~25 ms each, one after the other. */
    o.walk = mv_import_walk_start(argv + c.argi, (size_t)(argc - c.argi));
    mv_status st = cli_open(&c, &s, &err);
    if (!st)
        st = cli_require(&c, s, MV_USER_ADMIN, &err);
    if (st) {
        mv_import_walk_free(o.walk);
        return cli_finish(&c, s, st, &err);
    }
    for (int i = c.argi; i < argc; i++)
        cli_detail(&c, "%s", argv[i]);
    if (a.forget_reason) {
        cli_detail(&c, "--forget-unresolved reason=\"%s\":", a.forget_reason);
        o.on_forget = on_forget;
        o.forget_ctx = &c;
    }
    mv_import_result r;
    /* Without a daemon, this process indexes what it archives: on a
     * thread of its own while the import runs (both cores busy), and the
     * rest once it ends. */
    int index_here = !a.no_index && !cli_in_daemon;
    /* A first bulk load is compacted at the end (see below). */
    int fresh = index_here && mv_index_lag_of(s) == mv_store_last_change(s);
    int bg_index = index_here && cli_indexer_start(s, IMPORT_INDEX_INTERVAL_MS, NULL) == MV_OK;
    st = mv_import(s, argv + c.argi, (size_t)(argc - c.argi), &o, &r, &err);
    if (bg_index)
        cli_indexer_stop();
    double rate = r.seconds > 0 ? (double)r.found / r.seconds : 0;
    /* Searchable before the command ends: without a daemon nobody else
     * would index what was archived. */
    double isecs = 0;
    int indexed = 0;
    if (!st && !a.no_index && !cli_in_daemon) {
        int64_t t0 = mv_now_us();
        mv_index *ix = NULL;
        if (!(st = cli_index_get(&c, s, o.progress, &ix, &err)))
            indexed = 1;
        cli_index_put(ix);
        /* The index was built here from nothing in commits of a few
         * thousand documents: written once more in order it takes about
         * half the space (measured), for the cost of one sequential copy. */
        if (!st && fresh && r.imported >= IMPORT_COMPACT_MIN)
            st = mv_index_compact(s, &err);
        isecs = (double)(mv_now_us() - t0) / 1e6;
    }
    /* A signed tree head over what this import archived (in the daemon
     * its own timer does it). */
    if (!cli_in_daemon && (r.imported || r.duplicates || r.replayed)) {
        int signed_one;
        mv_err herr = {0};
        if (mv_store_checkpoint_due(s, 0, &signed_one, &herr))
            fprintf(cli_err, "mailvault import: warning: cannot sign a tree head: %s\n",
                    herr.msg);
    }
    /* A failure before any mail was read (a path that does not exist)
     * gets its error alone, not a summary of zeros. */
    int worked = st == MV_OK || r.found || r.replayed;
    if (worked && c.json) {
        fprintf(cli_out, "{");
        json_kv_u64(cli_out, "found", r.found, 0);
        json_kv_u64(cli_out, "imported", r.imported, 1);
        json_kv_u64(cli_out, "duplicates", r.duplicates, 1);
        json_kv_u64(cli_out, "already_imported", r.already, 1);
        json_kv_u64(cli_out, "replayed_from_spool", r.replayed, 1);
        json_kv_u64(cli_out, "spooled_unresolved", r.unresolved, 1);
        json_kv_u64(cli_out, "forgotten_unresolved", r.forgotten, 1);
        json_kv_u64(cli_out, "defective", r.defective, 1);
        json_kv_u64(cli_out, "failed", r.failed, 1);
        json_kv_u64(cli_out, "skipped_files", r.skipped_files, 1);
        json_kv_u64(cli_out, "bytes", r.bytes, 1);
        json_kv_u64(cli_out, "stored_bytes", r.stored_bytes, 1);
        fprintf(cli_out, ",\"seconds\":%.3f,\"messages_per_second\":%.1f", r.seconds, rate);
        if (indexed)
            fprintf(cli_out, ",\"index_seconds\":%.3f", isecs);
        fprintf(cli_out, "}\n");
    } else if (worked) {
        fprintf(cli_out, "imported %llu new message%s, %llu duplicate%s merged as copies, "
               "%llu already imported",
               (unsigned long long)r.imported, r.imported == 1 ? "" : "s",
               (unsigned long long)r.duplicates, r.duplicates == 1 ? "" : "s",
               (unsigned long long)r.already);
        if (r.replayed)
            fprintf(cli_out, ", %llu resumed from an interrupted run", (unsigned long long)r.replayed);
        if (r.forgotten)
            fprintf(cli_out, ", %llu spooled by an interrupted run forgotten (file gone; see "
                    "the audit log)", (unsigned long long)r.forgotten);
        fprintf(cli_out, "\n  defects recorded: %llu   failed: %llu   files skipped (not mail): %llu\n"
               "  bytes: %llu   stored: %llu   %.1f s (%.0f messages/s)\n",
               (unsigned long long)r.defective, (unsigned long long)r.failed,
               (unsigned long long)r.skipped_files, (unsigned long long)r.bytes,
               (unsigned long long)r.stored_bytes, r.seconds, rate);
        if (indexed)
            fprintf(cli_out, "  searchable: index brought up to date in %.1f s\n", isecs);
    }
    cli_detail(&c, "-> new=%llu copies=%llu already=%llu failed=%llu forgotten=%llu",
               (unsigned long long)r.imported, (unsigned long long)r.duplicates,
               (unsigned long long)r.already, (unsigned long long)r.failed,
               (unsigned long long)r.forgotten);
    rc = cli_finish(&c, s, st, &err);
    return rc == EXIT_OK && r.failed ? EXIT_PARTIAL : rc;
}
