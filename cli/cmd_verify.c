/* SPDX-License-Identifier: MIT */
/* cmd_verify.c - `mailvault verify`: the auditor's check of the whole
 * archive against its integrity log (store/log.c does the work): every
 * leaf recomputed from its record, every message and copy decrypted and
 * hashed against its SHA-256, the tree, every signed head, serial
 * continuity, records written behind the log's back, and, given a tree
 * head the auditor kept, that the log still extends it. */
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../lib/util.h"
#include "cli.h"

#define CHECKPOINT_MAX 65536u

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault verify [--from-checkpoint FILE] [--format json]\n\n"
            "Recomputes the archive's integrity log from its records: each message, copy,\n"
            "attribute and audit record against its leaf (decrypting every message and\n"
            "copy and recomputing its SHA-256), the Merkle tree, each signed tree head,\n"
            "and serial continuity.  Failures are reported by serial.\n"
            "--from-checkpoint FILE: a tree head kept outside the archive (`mailvault\n"
            "checkpoint`); the log must still extend it.  Without one, a rollback of the\n"
            "whole archive to an older copy, or a cut tail, cannot be detected.\n"
            "Exits 0 when everything verifies, 65 on any failure.  Needs the role auditor\n"
            "or admin (reads no mail content out); audited.\n");
}

typedef struct verify_args {
    const char *file, *text;
} verify_args;

static int verify_opt(void *ctx, int opt, const char *arg)
{
    verify_args *a = ctx;
    if (opt == 'c')
        a->file = arg;
    else if (opt == 'T')
        a->text = arg;
    else
        return -1;
    return 0;
}

typedef struct vout {
    mv_cli *c;
    uint64_t shown;
    mv_progress *prog;
} vout;

static void on_fail(void *ctx, uint64_t serial, const char *what)
{
    vout *v = ctx;
    if (v->c->json) {
        fprintf(cli_out, "%s{", v->shown ? "," : "");
        json_kv_u64(cli_out, "serial", serial, 0);
        json_kv_str(cli_out, "error", what, 1);
        fprintf(cli_out, "}");
    } else if (serial) {
        fprintf(cli_out, "FAILED serial %llu: ", (unsigned long long)serial);
        text_safe(cli_out, what);
        fputc('\n', cli_out);
    } else {
        fprintf(cli_out, "FAILED: ");
        text_safe(cli_out, what);
        fputc('\n', cli_out);
    }
    v->shown++;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    vout *v = ctx;
    mv_progress_set_total(v->prog, total);
    mv_progress_update(v->prog, done, done);
}

static mv_status read_checkpoint(const char *path, mv_buf *out, mv_err *err)
{
    if (cli_in_daemon)
        return mv_err_set(err, MV_EUSAGE, "the daemon reads no file a client names");
    return cli_read_small(path, CHECKPOINT_MAX, out, err);
}

int cmd_verify(int argc, char **argv)
{
    mv_cli c;
    verify_args va = {NULL, NULL};
    static const struct option opts[] = {{"from-checkpoint", required_argument, NULL, 'c'},
                                         {"checkpoint-text", required_argument, NULL, 'T'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "verify");
    int rc = cli_getopt(&c, argc, argv, opts, verify_opt, &va, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi < argc)
        return cli_usage_error("verify", "unexpected argument '%s'", argv[c.argi]);
    mv_err err = {0};
    mv_store *s = NULL;
    mv_buf cp = MV_BUF_INIT;
    mv_status st = MV_OK;
    if (va.text)
        mv_buf_append(&cp, va.text, strlen(va.text));
    else if (va.file && (st = read_checkpoint(va.file, &cp, &err)))
        return cli_finish(&c, NULL, st, &err);
    if ((st = cli_open(&c, &s, &err))) {
        mv_buf_free(&cp);
        return cli_finish(&c, NULL, st, &err);
    }
    if ((st = cli_require(&c, s, MV_USER_AUDITOR | MV_USER_ADMIN, &err)))
        goto out;
    vout v = {&c, 0, cli_progress_new("verifying", 0)};
    mv_verify_opts o = {cp.len ? cp.data : NULL, cp.len, on_fail, on_progress, &v};
    mv_verify_result r;
    if (c.json)
        fprintf(cli_out, "{\"failures\":[");
    double t0 = mv_mono();
    st = mv_store_verify(s, &o, &r, &err);
    double secs = mv_mono() - t0;
    mv_progress_free(v.prog);
    mv_log_state ls;
    mv_store_log_state(s, &ls);
    char root[48], fpr[65];
    uint8_t h[32];
    unsigned hl = 32;
    EVP_EncodeBlock((unsigned char *)root, ls.root, 32);
    mv_assert(EVP_Digest(ls.pub, 32, h, &hl, EVP_sha256(), NULL));
    mv_hex(h, 32, fpr);
    int ok = !st && r.failures == 0;
    if (c.json) {
        fprintf(cli_out, "]");
        json_kv_str(cli_out, "result", ok ? "OK" : "FAILED", 1);
        json_kv_str(cli_out, "origin", ls.origin, 1);
        json_kv_u64(cli_out, "leaves", r.leaves, 1);
        json_kv_str(cli_out, "root", root, 1);
        json_kv_u64(cli_out, "signed_heads", r.heads, 1);
        json_kv_u64(cli_out, "messages", r.messages, 1);
        json_kv_u64(cli_out, "last_serial", mv_store_last_serial(s), 1);
        json_kv_u64(cli_out, "copies", r.copies, 1);
        /* the names of the first verify, which scripts read */
        json_kv_u64(cli_out, "messages_ok", r.messages, 1);
        json_kv_u64(cli_out, "copies_ok", r.copies, 1);
        json_kv_u64(cli_out, "attributes", r.attributes, 1);
        json_kv_u64(cli_out, "audit_records", r.audits, 1);
        json_kv_u64(cli_out, "purged", r.purged, 1);
        json_kv_u64(cli_out, "bytes", r.bytes, 1);
        json_kv_u64(cli_out, "failed", r.failures, 1);
        json_kv_str(cli_out, "signing_key_fingerprint", fpr, 1);
        fprintf(cli_out, ",\"seconds\":%.3f,\"checkpoint\":", secs);
        if (cp.len)
            fprintf(cli_out, "{\"size\":%llu,\"checked\":%s}", (unsigned long long)r.checkpoint_size,
                    r.checkpoint_checked ? "true" : "false");
        else
            fprintf(cli_out, "null");
        fprintf(cli_out, ",\"rollback_detectable\":%s}\n", cp.len ? "true" : "false");
    } else if (!st) {
        fprintf(cli_out,
                "integrity log %s: %llu leaves, root %s, %llu signed tree head%s\n"
                "  signing key fingerprint %s\n"
                "verified: %llu messages (serials 1 to %llu), %llu copies, %llu attribute "
                "records, %llu audit records; %llu bytes decrypted and hashed in %.1f s\n"
                "purged: %llu messages, each with its signed tombstone\n",
                ls.origin, (unsigned long long)r.leaves, root, (unsigned long long)r.heads,
                r.heads == 1 ? "" : "s", fpr, (unsigned long long)r.messages,
                (unsigned long long)mv_store_last_serial(s), (unsigned long long)r.copies,
                (unsigned long long)r.attributes, (unsigned long long)r.audits,
                (unsigned long long)r.bytes, secs, (unsigned long long)r.purged);
        if (cp.len)
            fprintf(cli_out, "checkpoint given: %llu leaves; %s\n",
                    (unsigned long long)r.checkpoint_size,
                    r.checkpoint_checked && !r.failures
                        ? "the log still extends it (no rollback, no cut tail, no rewrite)"
                        : "see the failures above");
        else
            fprintf(cli_out, "no checkpoint given: a rollback of the whole archive to an older "
                             "copy, or a cut tail, cannot be detected without a tree head kept "
                             "outside the archive (--from-checkpoint)\n");
        fprintf(cli_out, "result: %s", ok ? "OK\n" : "FAILED");
        if (!ok)
            fprintf(cli_out, " (%llu failure%s)\n", (unsigned long long)r.failures,
                    r.failures == 1 ? "" : "s");
    }
    cli_detail(&c, "leaves=%llu messages=%llu failed=%llu checkpoint=%s",
               (unsigned long long)r.leaves, (unsigned long long)r.messages,
               (unsigned long long)r.failures, cp.len ? "given" : "none");
    if (!st && r.failures)
        st = mv_err_set(&err, MV_ECRYPTO, "%llu verification failure%s",
                        (unsigned long long)r.failures, r.failures == 1 ? "" : "s");
out:
    mv_buf_free(&cp);
    return cli_finish(&c, s, st, &err);
}
