/* SPDX-License-Identifier: MIT */
/* cmd_stats.c - `mailvault stats`. */
#include <getopt.h>

#include "cli.h"

static void help(void)
{
    fprintf(cli_out, "usage: mailvault stats [--format json]\n\n"
           "messages, copies, raw bytes (every arrival), stored bytes (sealed blobs after\n"
           "dedup and compression), their ratio, and the size of the store on disk.\n");
}

int cmd_stats(int argc, char **argv)
{
    mv_cli c;
    cli_init(&c, "stats");
    int rc = cli_getopt(&c, argc, argv, NULL, cli_no_opt, NULL, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi < argc)
        return cli_usage_error("stats", "unexpected argument '%s'", argv[c.argi]);
    mv_err err = {0};
    mv_store *s = NULL;
    mv_stats t;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    if ((st = cli_require(&c, s, MV_USER_ALL, &err)))
        return cli_finish(&c, s, st, &err);
    if (!(st = mv_store_stats(s, &t, &err))) {
        double ratio = t.raw_bytes ? (double)t.stored_bytes / (double)t.raw_bytes : 0;
        if (c.json) {
            fprintf(cli_out, "{");
            json_kv_u64(cli_out, "messages", t.messages, 0);
            json_kv_u64(cli_out, "copies", t.copies, 1);
            json_kv_u64(cli_out, "message_bytes", t.message_bytes, 1);
            json_kv_u64(cli_out, "raw_bytes", t.raw_bytes, 1);
            json_kv_u64(cli_out, "stored_bytes", t.stored_bytes, 1);
            json_kv_u64(cli_out, "blobs", t.blobs, 1);
            json_kv_u64(cli_out, "disk_bytes", t.disk_bytes, 1);
            json_kv_u64(cli_out, "spool", t.spool, 1);
            json_kv_u64(cli_out, "dictionaries", t.dictionaries, 1);
            fprintf(cli_out, ",\"ratio\":%.4f}\n", ratio);
        } else {
            fprintf(cli_out, "messages:      %llu\ncopies:        %llu\nmessage bytes: %llu\n"
                   "raw bytes:     %llu\nstored bytes:  %llu\nratio:         %.1f%%\n"
                   "blobs:         %llu\ndictionaries:  %llu\ndisk:          %llu\nspool: %llu\n",
                   (unsigned long long)t.messages, (unsigned long long)t.copies,
                   (unsigned long long)t.message_bytes, (unsigned long long)t.raw_bytes,
                   (unsigned long long)t.stored_bytes, ratio * 100, (unsigned long long)t.blobs,
                   (unsigned long long)t.dictionaries, (unsigned long long)t.disk_bytes, (unsigned long long)t.spool);
        }
    }
    return cli_finish(&c, s, st, &err);
}
