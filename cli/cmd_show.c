/* SPDX-License-Identifier: MIT */
/* cmd_show.c - `mailvault show SERIAL [--raw] [--copy N]`. */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "../ingest/decrypt.h"
#include "../ingest/mime.h"
#include "../lib/util.h"
#include "cli.h"

static void help(void)
{
    fprintf(cli_out, "usage: mailvault show SERIAL [--raw [--copy N] | --decrypted] [--format json]\n\n"
           "Without --raw: the message's header summary, digests, defects, its encryption\n"
           "(scheme, the escrow key that opened it, the signature status) and every copy\n"
           "(each arrival with its envelope).\n"
           "  --decrypted      the decrypted form of an encrypted message (docs/decryption.md),\n"
           "                   verified against its own recorded SHA-256\n"
           "  --raw            the message's exact bytes, as received (verified against\n"
           "                   their recorded SHA-256 while they are written)\n"
           "  --copy N --raw   the bytes that arrival N itself carried\n");
}

typedef struct show_args {
    int raw, decrypted;
    uint64_t copy;
} show_args;

static int show_opt(void *ctx, int opt, const char *arg)
{
    show_args *a = ctx;
    if (opt == 'r') {
        a->raw = 1;
        return 0;
    }
    if (opt == 'd') {
        a->decrypted = 1;
        return 0;
    }
    if (opt == 'c' && !cli_parse_u64(arg, &a->copy) && a->copy > 0 && a->copy < UINT32_MAX)
        return 0;
    return cli_usage_error("show", "bad --copy '%s'", arg), -1;
}

static mv_status write_out(void *ctx, const uint8_t *p, size_t n, mv_err *err)
{
    (void)ctx;
    if (fwrite(p, 1, n, cli_out) != n)
        return mv_err_sys(err, "writing to standard output");
    return MV_OK;
}

static void line(const char *k, const char *v)
{
    fprintf(cli_out, "%-13s", k);
    text_safe(cli_out, v ? v : "");
    fprintf(cli_out, "\n");
}

/* The message's decryption record while show prints it (per thread: the
 * daemon runs several requests at once). */
static __thread const mv_decryption *g_dec;

/* dec_text - the encryption lines of `show`. */
static void dec_text(const mv_decryption *d)
{
    char t[32], hex[65];
    if (!d)
        return;
    if (d->scheme) {
        fprintf(cli_out, "%-13s%s (%s, %s)\n", "encryption:", d->scheme,
                d->content_alg ? d->content_alg : "?", d->key_alg ? d->key_alg : "?");
        if (d->decrypted) {
            mv_hex(d->sha256, 32, hex);
            fprintf(cli_out, "%-13sby escrow key #%u; %llu bytes, sha256 %s (show --decrypted)\n",
                    "decrypted:", d->key_id, (unsigned long long)d->size, hex);
        } else {
            fprintf(cli_out, "%-13sno: ", "decrypted:");
            text_safe(cli_out, d->failure ? d->failure : "unknown reason");
            fprintf(cli_out, "\n");
        }
        for (size_t i = 0; i < d->n_recipients; i++) {
            fprintf(cli_out, "%-13s", i ? "" : "recipients:");
            text_safe(cli_out, d->recipients[i]);
            fprintf(cli_out, "\n");
        }
    }
    if (d->sig) {
        fprintf(cli_out, "%-13s%s", "signature:", mv_sig_status_name((mv_sig_status)d->sig));
        if (d->signer) {
            fprintf(cli_out, ", signer ");
            text_safe(cli_out, d->signer);
        }
        if (d->signing_time != INT64_MIN)
            fprintf(cli_out, ", signed %s", mv_fmt_time(d->signing_time, t, sizeof t));
        if (d->sig_detail) {
            fprintf(cli_out, " (");
            text_safe(cli_out, d->sig_detail);
            fprintf(cli_out, ")");
        }
        fprintf(cli_out, "\n");
    }
}

static void dec_json(const mv_decryption *d)
{
    char t[32], hex[65];
    fprintf(cli_out, ",\"decryption\":");
    if (!d) {
        fprintf(cli_out, "null");
        return;
    }
    fprintf(cli_out, "{\"decrypted\":%s", d->decrypted ? "true" : "false");
    json_kv_str(cli_out, "scheme", d->scheme, 1);
    json_kv_str(cli_out, "content_alg", d->content_alg, 1);
    json_kv_str(cli_out, "key_alg", d->key_alg, 1);
    json_kv_u64(cli_out, "escrow_key", d->key_id, 1);
    json_kv_str(cli_out, "failure", d->failure, 1);
    fprintf(cli_out, ",\"recipients\":[");
    for (size_t i = 0; i < d->n_recipients; i++) {
        fprintf(cli_out, i ? "," : "");
        json_str(cli_out, d->recipients[i]);
    }
    fprintf(cli_out, "]");
    json_kv_str(cli_out, "signature", mv_sig_status_name((mv_sig_status)d->sig), 1);
    json_kv_str(cli_out, "signer", d->signer, 1);
    json_kv_str(cli_out, "signing_time",
                d->signing_time != INT64_MIN ? mv_fmt_time(d->signing_time, t, sizeof t) : NULL, 1);
    json_kv_str(cli_out, "signature_detail", d->sig_detail, 1);
    json_kv_u64(cli_out, "size", d->size, 1);
    mv_hex(d->sha256, 32, hex);
    json_kv_str(cli_out, "sha256", d->decrypted ? hex : NULL, 1);
    fprintf(cli_out, "}");
}

static void show_text(const mv_message *m, mv_copy **cs, size_t nc)
{
    char hex[65], t[32], d[256];
    const mv_msgmeta *x = &m->meta;
    fprintf(cli_out, "%-13s%llu\n", "serial:", (unsigned long long)m->serial);
    fprintf(cli_out, "%-13s%s\n", "received:", mv_fmt_time(m->received_us / 1000000, t, sizeof t));
    fprintf(cli_out, "%-13s%s\n", "bucket:", m->bucket);
    fprintf(cli_out, "%-13s%llu bytes (header %llu)\n", "size:", (unsigned long long)m->size,
           (unsigned long long)x->header_bytes);
    mv_hex(x->sha256, 32, hex);
    fprintf(cli_out, "%-13s%s\n", "sha256:", hex);
    mv_hex(x->dedup, 32, hex);
    fprintf(cli_out, "%-13s%s\n", "dedup:", hex);
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
    fprintf(cli_out, "%-13s%u", "attachments:", x->n_attachments);
    for (size_t i = 0; i < x->n_names; i++) {
        fprintf(cli_out, i ? ", " : " (");
        text_safe(cli_out, x->attachments[i]);
    }
    fprintf(cli_out, "%s\n", x->n_names ? ")" : "");
    fprintf(cli_out, "%-13s%u\n", "parts:", x->n_parts);
    fprintf(cli_out, "%-13s%s\n", "defects:", x->defects ? mv_defects_str(x->defects, d, sizeof d) : "none");
    dec_text(g_dec);
    fprintf(cli_out, "%-13s%zu\n", "copies:", nc);
    for (size_t i = 0; i < nc; i++) {
        const mv_copy *c = cs[i];
        mv_hex(c->sha256, 32, hex);
        fprintf(cli_out, "copy %u:\n", c->no);
        fprintf(cli_out, "  %-16s%s\n", "received:", mv_fmt_time(c->received_us / 1000000, t, sizeof t));
        fprintf(cli_out, "  %-16s%s\n", "source:", c->source);
        fprintf(cli_out, "  %-16s", "origin:");
        text_safe(cli_out, c->origin ? c->origin : "");
        fprintf(cli_out, "\n  %-16s%llu bytes, sha256 %s\n", "bytes:", (unsigned long long)c->size, hex);
        mv_hex(c->message_sha256, 32, hex);
        fprintf(cli_out, "  %-16s%s\n", "message:", hex);
        fprintf(cli_out, "  %-16s", "envelope from:");
        text_safe(cli_out, c->mail_from ? c->mail_from : "(none)");
        fprintf(cli_out, "\n  %-16s", "envelope to:");
        for (size_t j = 0; j < c->n_rcpt; j++) {
            fprintf(cli_out, j ? ", " : "");
            text_safe(cli_out, c->rcpt[j]);
        }
        fprintf(cli_out, "%s\n", c->n_rcpt ? "" : "(none)");
        if (c->facts) {
            fprintf(cli_out, "  %-16s", "facts:");
            text_safe(cli_out, c->facts);
            fprintf(cli_out, "\n");
        }
        if (c->note) {
            fprintf(cli_out, "  %-16s", "note:");
            text_safe(cli_out, c->note);
            fprintf(cli_out, "\n");
        }
    }
}

static void show_json(const mv_message *m, mv_copy **cs, size_t nc)
{
    char hex[65], t[32], d[256];
    const mv_msgmeta *x = &m->meta;
    fprintf(cli_out, "{");
    json_kv_u64(cli_out, "serial", m->serial, 0);
    json_kv_str(cli_out, "received", mv_fmt_time(m->received_us / 1000000, t, sizeof t), 1);
    json_kv_str(cli_out, "bucket", m->bucket, 1);
    json_kv_u64(cli_out, "size", m->size, 1);
    json_kv_u64(cli_out, "header_bytes", x->header_bytes, 1);
    mv_hex(x->sha256, 32, hex);
    json_kv_str(cli_out, "sha256", hex, 1);
    mv_hex(x->dedup, 32, hex);
    json_kv_str(cli_out, "dedup", hex, 1);
    json_kv_str(cli_out, "from", x->from, 1);
    json_kv_str(cli_out, "from_address", x->from_addr, 1);
    json_kv_str(cli_out, "to", x->to, 1);
    json_kv_str(cli_out, "cc", x->cc, 1);
    json_kv_str(cli_out, "bcc", x->bcc, 1);
    json_kv_str(cli_out, "subject", x->subject, 1);
    json_kv_str(cli_out, "date", x->date, 1);
    if (x->date_t != INT64_MIN)
        json_kv_str(cli_out, "date_utc", mv_fmt_time(x->date_t, t, sizeof t), 1);
    json_kv_str(cli_out, "message_id", x->message_id, 1);
    json_kv_str(cli_out, "in_reply_to", x->in_reply_to, 1);
    json_kv_u64(cli_out, "attachments", x->n_attachments, 1);
    fprintf(cli_out, ",\"attachment_names\":[");
    for (size_t i = 0; i < x->n_names; i++) {
        fprintf(cli_out, i ? "," : "");
        json_str(cli_out, x->attachments[i]);
    }
    fprintf(cli_out, "]");
    json_kv_u64(cli_out, "parts", x->n_parts, 1);
    json_kv_str(cli_out, "defects", x->defects ? mv_defects_str(x->defects, d, sizeof d) : "", 1);
    dec_json(g_dec);
    fprintf(cli_out, ",\"copies\":[");
    for (size_t i = 0; i < nc; i++) {
        const mv_copy *c = cs[i];
        fprintf(cli_out, "%s{", i ? "," : "");
        json_kv_u64(cli_out, "copy", c->no, 0);
        json_kv_str(cli_out, "received", mv_fmt_time(c->received_us / 1000000, t, sizeof t), 1);
        json_kv_str(cli_out, "source", c->source, 1);
        json_kv_str(cli_out, "origin", c->origin, 1);
        json_kv_u64(cli_out, "size", c->size, 1);
        mv_hex(c->sha256, 32, hex);
        json_kv_str(cli_out, "sha256", hex, 1);
        mv_hex(c->message_sha256, 32, hex);
        json_kv_str(cli_out, "message_sha256", hex, 1);
        json_kv_str(cli_out, "envelope_from", c->mail_from, 1);
        fprintf(cli_out, ",\"envelope_to\":[");
        for (size_t j = 0; j < c->n_rcpt; j++) {
            fprintf(cli_out, j ? "," : "");
            json_str(cli_out, c->rcpt[j]);
        }
        fprintf(cli_out, "]");
        json_kv_str(cli_out, "facts", c->facts, 1);
        json_kv_str(cli_out, "note", c->note, 1);
        fprintf(cli_out, "}");
    }
    fprintf(cli_out, "]}\n");
}

int cmd_show(int argc, char **argv)
{
    mv_cli c;
    show_args a = {0};
    uint64_t serial;
    static const struct option opts[] = {{"raw", no_argument, NULL, 'r'},
                                         {"decrypted", no_argument, NULL, 'd'},
                                         {"copy", required_argument, NULL, 'c'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "show");
    int rc = cli_getopt(&c, argc, argv, opts, show_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi + 1 != argc || cli_parse_u64(argv[c.argi], &serial) || serial == 0)
        return cli_usage_error("show", "give one SERIAL (a positive number)");
    if (a.copy && !a.raw)
        return cli_usage_error("show", "--copy N goes with --raw");
    if (a.decrypted && a.raw)
        return cli_usage_error("show", "give --raw or --decrypted, not both");
    mv_err err = {0};
    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    cli_detail(&c, "serial=%llu%s%s copy=%llu", (unsigned long long)serial, a.raw ? " raw" : "",
               a.decrypted ? " decrypted" : "", (unsigned long long)a.copy);
    if ((st = cli_require(&c, s, MV_USER_OFFICER, &err)))
        return cli_finish(&c, s, st, &err);
    if (a.raw || a.decrypted) {
        st = a.raw ? mv_store_read(s, serial, (uint32_t)a.copy, write_out, NULL, &err)
                   : mv_store_read_decrypted(s, serial, write_out, NULL, &err);
        if (fflush(cli_out) != 0 && !st)
            st = mv_err_sys(&err, "writing to standard output");
    } else {
        mv_message *m = NULL;
        mv_copy **cs = NULL;
        size_t nc = 0;
        mv_decryption *dec = NULL;
        if (!(st = mv_store_message(s, serial, &m, &err)) &&
            !(st = mv_store_copies(s, serial, &cs, &nc, &err))) {
            mv_err derr = {0};
            mv_status ds = mv_store_decryption(s, serial, &dec, &derr);
            if (ds && ds != MV_ENOTFOUND) {
                st = ds;
                err = derr;
            }
        }
        if (!st) {
            g_dec = dec;
            if (c.json)
                show_json(m, cs, nc);
            else
                show_text(m, cs, nc);
            g_dec = NULL;
        }
        mv_decryption_free(dec);
        mv_copies_free(cs, nc);
        mv_message_free(m);
    }
    return cli_finish(&c, s, st, &err);
}
