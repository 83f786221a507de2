/* SPDX-License-Identifier: MIT */
/* cmd_list.c - `mailvault list`: one line per message, in serial order. */
#include <getopt.h>
#include <stdlib.h>

#include "../lib/util.h"
#include "cli.h"

static void help(void)
{
    fprintf(cli_out, "usage: mailvault list [--limit N] [--start SERIAL] [--format json]\n\n"
           "One line per archived message, in serial order: serial, receipt time,\n"
           "copies, size, sender and subject.\n");
}

typedef struct list_args {
    uint64_t limit, start;
} list_args;

static int list_opt(void *ctx, int opt, const char *arg)
{
    list_args *a = ctx;
    if (opt == 'l' && !cli_parse_u64(arg, &a->limit))
        return 0;
    if (opt == 's' && !cli_parse_u64(arg, &a->start))
        return 0;
    return cli_usage_error("list", "bad number '%s'", arg), -1;
}

int cmd_list(int argc, char **argv)
{
    mv_cli c;
    list_args a = {0, 1};
    static const struct option opts[] = {{"limit", required_argument, NULL, 'l'},
                                         {"start", required_argument, NULL, 's'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "list");
    int rc = cli_getopt(&c, argc, argv, opts, list_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi < argc)
        return cli_usage_error("list", "unexpected argument '%s'", argv[c.argi]);
    mv_err err = {0};
    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    cli_detail(&c, "start=%llu limit=%llu", (unsigned long long)a.start, (unsigned long long)a.limit);
    if ((st = cli_require(&c, s, MV_USER_OFFICER, &err)))
        return cli_finish(&c, s, st, &err);
    uint64_t last = mv_store_last_serial(s), shown = 0;
    if (c.json)
        fprintf(cli_out, "[");
    for (uint64_t serial = a.start ? a.start : 1; serial <= last; serial++) {
        if (a.limit && shown >= a.limit)
            break;
        mv_message *m = NULL;
        if ((st = mv_store_message(s, serial, &m, &err))) {
            mv_tombstone t;
            if (st == MV_ENOTFOUND && mv_store_tombstone(s, serial, &t, NULL) == MV_OK) {
                st = MV_OK; /* purged: its tombstone stands for it (verify, report) */
                continue;
            }
            break;
        }
        char when[32];
        mv_fmt_time(m->received_us / 1000000, when, sizeof when);
        if (c.json) {
            fprintf(cli_out, "%s{", shown ? "," : "");
            json_kv_u64(cli_out, "serial", serial, 0);
            json_kv_str(cli_out, "received", when, 1);
            json_kv_u64(cli_out, "copies", m->n_copies, 1);
            json_kv_u64(cli_out, "size", m->size, 1);
            char hex[65];
            mv_hex(m->meta.sha256, 32, hex);
            json_kv_str(cli_out, "sha256", hex, 1);
            json_kv_str(cli_out, "message_id", m->meta.message_id, 1);
            json_kv_str(cli_out, "from", m->meta.from, 1);
            json_kv_str(cli_out, "subject", m->meta.subject, 1);
            fprintf(cli_out, "}");
        } else {
            fprintf(cli_out, "%8llu  %s  %2u  %8llu  ", (unsigned long long)serial, when, m->n_copies,
                   (unsigned long long)m->size);
            text_safe(cli_out, m->meta.from ? m->meta.from : "(no sender)");
            fprintf(cli_out, "  |  ");
            text_safe(cli_out, m->meta.subject ? m->meta.subject : "(no subject)");
            fprintf(cli_out, "\n");
        }
        shown++;
        mv_message_free(m);
    }
    if (c.json)
        fprintf(cli_out, "]\n");
    return cli_finish(&c, s, st, &err);
}
