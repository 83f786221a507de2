/* SPDX-License-Identifier: MIT */
/* cmd_show.c - `mailvault show SERIAL [--raw] [--copy N]`. */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "../ingest/mime.h"
#include "../lib/util.h"
#include "cli.h"

static void help(void)
{
    printf("usage: mailvault show SERIAL [--raw] [--copy N] [--format json]\n\n"
           "Without --raw: the message's header summary, digests, defects and every copy\n"
           "(each arrival with its envelope).\n"
           "  --raw            the message's exact bytes, as received (verified against\n"
           "                   their recorded SHA-256 while they are written)\n"
           "  --copy N --raw   the bytes that arrival N itself carried\n");
}

typedef struct show_args {
    int raw;
    uint64_t copy;
} show_args;

static int show_opt(void *ctx, int opt, const char *arg)
{
    show_args *a = ctx;
    if (opt == 'r') {
        a->raw = 1;
        return 0;
    }
    if (opt == 'c' && !cli_parse_u64(arg, &a->copy) && a->copy > 0 && a->copy < UINT32_MAX)
        return 0;
    return cli_usage_error("show", "bad --copy '%s'", arg), -1;
}

static mv_status write_out(void *ctx, const uint8_t *p, size_t n, mv_err *err)
{
    (void)ctx;
    if (fwrite(p, 1, n, stdout) != n)
        return mv_err_sys(err, "writing to standard output");
    return MV_OK;
}

static void line(const char *k, const char *v)
{
    printf("%-13s", k);
    text_safe(stdout, v ? v : "");
    printf("\n");
}

static void show_text(const mv_message *m, mv_copy **cs, size_t nc)
{
    char hex[65], t[32], d[256];
    const mv_msgmeta *x = &m->meta;
    printf("%-13s%llu\n", "serial:", (unsigned long long)m->serial);
    printf("%-13s%s\n", "received:", mv_fmt_time(m->received_us / 1000000, t, sizeof t));
    printf("%-13s%s\n", "bucket:", m->bucket);
    printf("%-13s%llu bytes (header %llu)\n", "size:", (unsigned long long)m->size,
           (unsigned long long)x->header_bytes);
    mv_hex(x->sha256, 32, hex);
    printf("%-13s%s\n", "sha256:", hex);
    mv_hex(x->dedup, 32, hex);
    printf("%-13s%s\n", "dedup:", hex);
    line("from:", x->from);
    line("to:", x->to);
    line("cc:", x->cc);
    if (x->bcc)
        line("bcc:", x->bcc);
    line("subject:", x->subject);
    line("date:", x->date);
    line("message-id:", x->message_id);
    if (x->in_reply_to)
        line("in-reply-to:", x->in_reply_to);
    printf("%-13s%u", "attachments:", x->n_attachments);
    for (size_t i = 0; i < x->n_names; i++) {
        printf(i ? ", " : " (");
        text_safe(stdout, x->attachments[i]);
    }
    printf("%s\n", x->n_names ? ")" : "");
    printf("%-13s%u\n", "parts:", x->n_parts);
    printf("%-13s%s\n", "defects:", x->defects ? mv_defects_str(x->defects, d, sizeof d) : "none");
    printf("%-13s%zu\n", "copies:", nc);
    for (size_t i = 0; i < nc; i++) {
        const mv_copy *c = cs[i];
        mv_hex(c->sha256, 32, hex);
        printf("copy %u:\n", c->no);
        printf("  %-16s%s\n", "received:", mv_fmt_time(c->received_us / 1000000, t, sizeof t));
        printf("  %-16s%s\n", "source:", c->source);
        printf("  %-16s", "origin:");
        text_safe(stdout, c->origin ? c->origin : "");
        printf("\n  %-16s%llu bytes, sha256 %s\n", "bytes:", (unsigned long long)c->size, hex);
        mv_hex(c->message_sha256, 32, hex);
        printf("  %-16s%s\n", "message:", hex);
        printf("  %-16s", "envelope from:");
        text_safe(stdout, c->mail_from ? c->mail_from : "(none)");
        printf("\n  %-16s", "envelope to:");
        for (size_t j = 0; j < c->n_rcpt; j++) {
            printf(j ? ", " : "");
            text_safe(stdout, c->rcpt[j]);
        }
        printf("%s\n", c->n_rcpt ? "" : "(none)");
        if (c->facts) {
            printf("  %-16s", "facts:");
            text_safe(stdout, c->facts);
            printf("\n");
        }
        if (c->note) {
            printf("  %-16s", "note:");
            text_safe(stdout, c->note);
            printf("\n");
        }
    }
}

static void show_json(const mv_message *m, mv_copy **cs, size_t nc)
{
    char hex[65], t[32], d[256];
    const mv_msgmeta *x = &m->meta;
    printf("{");
    json_kv_u64(stdout, "serial", m->serial, 0);
    json_kv_str(stdout, "received", mv_fmt_time(m->received_us / 1000000, t, sizeof t), 1);
    json_kv_str(stdout, "bucket", m->bucket, 1);
    json_kv_u64(stdout, "size", m->size, 1);
    json_kv_u64(stdout, "header_bytes", x->header_bytes, 1);
    mv_hex(x->sha256, 32, hex);
    json_kv_str(stdout, "sha256", hex, 1);
    mv_hex(x->dedup, 32, hex);
    json_kv_str(stdout, "dedup", hex, 1);
    json_kv_str(stdout, "from", x->from, 1);
    json_kv_str(stdout, "from_address", x->from_addr, 1);
    json_kv_str(stdout, "to", x->to, 1);
    json_kv_str(stdout, "cc", x->cc, 1);
    json_kv_str(stdout, "bcc", x->bcc, 1);
    json_kv_str(stdout, "subject", x->subject, 1);
    json_kv_str(stdout, "date", x->date, 1);
    if (x->date_t != INT64_MIN)
        json_kv_str(stdout, "date_utc", mv_fmt_time(x->date_t, t, sizeof t), 1);
    json_kv_str(stdout, "message_id", x->message_id, 1);
    json_kv_str(stdout, "in_reply_to", x->in_reply_to, 1);
    json_kv_u64(stdout, "attachments", x->n_attachments, 1);
    printf(",\"attachment_names\":[");
    for (size_t i = 0; i < x->n_names; i++) {
        printf(i ? "," : "");
        json_str(stdout, x->attachments[i]);
    }
    printf("]");
    json_kv_u64(stdout, "parts", x->n_parts, 1);
    json_kv_str(stdout, "defects", x->defects ? mv_defects_str(x->defects, d, sizeof d) : "", 1);
    printf(",\"copies\":[");
    for (size_t i = 0; i < nc; i++) {
        const mv_copy *c = cs[i];
        printf("%s{", i ? "," : "");
        json_kv_u64(stdout, "copy", c->no, 0);
        json_kv_str(stdout, "received", mv_fmt_time(c->received_us / 1000000, t, sizeof t), 1);
        json_kv_str(stdout, "source", c->source, 1);
        json_kv_str(stdout, "origin", c->origin, 1);
        json_kv_u64(stdout, "size", c->size, 1);
        mv_hex(c->sha256, 32, hex);
        json_kv_str(stdout, "sha256", hex, 1);
        mv_hex(c->message_sha256, 32, hex);
        json_kv_str(stdout, "message_sha256", hex, 1);
        json_kv_str(stdout, "envelope_from", c->mail_from, 1);
        printf(",\"envelope_to\":[");
        for (size_t j = 0; j < c->n_rcpt; j++) {
            printf(j ? "," : "");
            json_str(stdout, c->rcpt[j]);
        }
        printf("]");
        json_kv_str(stdout, "facts", c->facts, 1);
        json_kv_str(stdout, "note", c->note, 1);
        printf("}");
    }
    printf("]}\n");
}

int cmd_show(int argc, char **argv)
{
    mv_cli c;
    show_args a = {0, 0};
    uint64_t serial;
    static const struct option opts[] = {{"raw", no_argument, NULL, 'r'},
                                         {"copy", required_argument, NULL, 'c'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "show");
    int rc = cli_getopt(&c, argc, argv, opts, show_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (optind + 1 != argc || cli_parse_u64(argv[optind], &serial) || serial == 0)
        return cli_usage_error("show", "give one SERIAL (a positive number)");
    if (a.copy && !a.raw)
        return cli_usage_error("show", "--copy N goes with --raw");
    mv_err err = {0};
    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    cli_detail(&c, "serial=%llu%s copy=%llu", (unsigned long long)serial, a.raw ? " raw" : "",
               (unsigned long long)a.copy);
    if (a.raw) {
        st = mv_store_read(s, serial, (uint32_t)a.copy, write_out, NULL, &err);
        if (fflush(stdout) != 0 && !st)
            st = mv_err_sys(&err, "writing to standard output");
    } else {
        mv_message *m = NULL;
        mv_copy **cs = NULL;
        size_t nc = 0;
        if (!(st = mv_store_message(s, serial, &m, &err)) &&
            !(st = mv_store_copies(s, serial, &cs, &nc, &err))) {
            if (c.json)
                show_json(m, cs, nc);
            else
                show_text(m, cs, nc);
        }
        mv_copies_free(cs, nc);
        mv_message_free(m);
    }
    return cli_finish(&c, s, st, &err);
}
