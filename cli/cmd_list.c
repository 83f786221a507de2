/* SPDX-License-Identifier: MIT */
/* cmd_list.c - `mailvault list`: one line per message, in serial order. */
#include <getopt.h>
#include <stdlib.h>

#include "../lib/util.h"
#include "cli.h"

static void help(void)
{
    printf("usage: mailvault list [--limit N] [--start SERIAL] [--format json]\n\n"
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
    if (optind < argc)
        return cli_usage_error("list", "unexpected argument '%s'", argv[optind]);
    mv_err err = {0};
    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    cli_detail(&c, "start=%llu limit=%llu", (unsigned long long)a.start, (unsigned long long)a.limit);
    uint64_t last = mv_store_last_serial(s), shown = 0;
    if (c.json)
        printf("[");
    for (uint64_t serial = a.start ? a.start : 1; serial <= last; serial++) {
        if (a.limit && shown >= a.limit)
            break;
        mv_message *m = NULL;
        if ((st = mv_store_message(s, serial, &m, &err)))
            break;
        char when[32];
        mv_fmt_time(m->received_us / 1000000, when, sizeof when);
        if (c.json) {
            printf("%s{", shown ? "," : "");
            json_kv_u64(stdout, "serial", serial, 0);
            json_kv_str(stdout, "received", when, 1);
            json_kv_u64(stdout, "copies", m->n_copies, 1);
            json_kv_u64(stdout, "size", m->size, 1);
            char hex[65];
            mv_hex(m->meta.sha256, 32, hex);
            json_kv_str(stdout, "sha256", hex, 1);
            json_kv_str(stdout, "message_id", m->meta.message_id, 1);
            json_kv_str(stdout, "from", m->meta.from, 1);
            json_kv_str(stdout, "subject", m->meta.subject, 1);
            printf("}");
        } else {
            printf("%8llu  %s  %2u  %8llu  ", (unsigned long long)serial, when, m->n_copies,
                   (unsigned long long)m->size);
            text_safe(stdout, m->meta.from ? m->meta.from : "(no sender)");
            printf("  |  ");
            text_safe(stdout, m->meta.subject ? m->meta.subject : "(no subject)");
            printf("\n");
        }
        shown++;
        mv_message_free(m);
    }
    if (c.json)
        printf("]\n");
    return cli_finish(&c, s, st, &err);
}
