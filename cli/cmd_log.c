/* SPDX-License-Identifier: MIT */
/* cmd_log.c - the integrity log's commands (docs/integrity.md):
 * `checkpoint` signs and prints a tree head for an auditor to keep outside
 * the archive, `proof SERIAL` prints a message's inclusion proof, and
 * `verify-proof FILE` checks one without the archive. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "../lib/util.h"
#include "cli.h"

#define HEAD_MAX 65536u /* a tree head note an auditor hands us */

/* head_arg - a tree head given as a file (--head FILE) or, through the
 * daemon's socket, as its text (the client reads the file: the daemon
 * never opens a file a client names). */
static mv_status head_arg(const char *file, const char *text, mv_buf *out, mv_err *err)
{
    if (text) {
        size_t l = strlen(text);
        if (l > HEAD_MAX)
            return mv_err_set(err, MV_ELIMIT, "a tree head is at most %u bytes", HEAD_MAX);
        mv_buf_reset(out);
        mv_buf_append(out, text, l);
        return MV_OK;
    }
    if (cli_in_daemon)
        return mv_err_set(err, MV_EUSAGE, "the daemon reads no file a client names");
    return cli_read_small(file, HEAD_MAX, out, err);
}

static void b64(const uint8_t *p, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

/* ---- checkpoint ------------------------------------------------------------- */

static void checkpoint_help(void)
{
    fprintf(cli_out,
            "usage: mailvault checkpoint [--fresh] [--format json]\n\n"
            "Prints a signed tree head of the archive's integrity log: a C2SP checkpoint\n"
            "note (origin, number of leaves, root, time) signed with the archive's Ed25519\n"
            "key.  Keep it outside the archive: `mailvault verify --from-checkpoint FILE`\n"
            "later proves that the log still extends it (no rollback, no cut tail).\n"
            "The latest head is reused while no leaf came since; --fresh signs anew.\n"
            "Needs the role auditor or admin; audited.\n");
}

static int checkpoint_opt(void *ctx, int opt, const char *arg)
{
    (void)arg;
    if (opt != 'f')
        return -1;
    *(int *)ctx = 1;
    return 0;
}

int cmd_checkpoint(int argc, char **argv)
{
    mv_cli c;
    int fresh = 0;
    static const struct option opts[] = {{"fresh", no_argument, NULL, 'f'}, {0, 0, 0, 0}};
    cli_init(&c, "checkpoint");
    int rc = cli_getopt(&c, argc, argv, opts, checkpoint_opt, &fresh, checkpoint_help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi < argc)
        return cli_usage_error("checkpoint", "unexpected argument '%s'", argv[c.argi]);
    mv_err err = {0};
    mv_store *s = NULL;
    mv_buf note = MV_BUF_INIT;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    if ((st = cli_require(&c, s, MV_USER_AUDITOR | MV_USER_ADMIN, &err)) ||
        (st = mv_store_checkpoint(s, fresh, &note, &err)))
        goto out;
    mv_log_state ls;
    mv_store_log_state(s, &ls);
    /* The head's own size: leaves may have come since it was signed. */
    unsigned long long size = 0;
    const char *nl = memchr(note.data, '\n', note.len);
    if (nl)
        size = strtoull(nl + 1, NULL, 10);
    if (c.json) {
        char root[64] = "";
        const char *l2 = nl ? memchr(nl + 1, '\n', note.len - (size_t)(nl + 1 - (char *)note.data))
                            : NULL;
        const char *l3 = l2 ? memchr(l2 + 1, '\n', note.len - (size_t)(l2 + 1 - (char *)note.data))
                            : NULL;
        if (l2 && l3 && l3 - l2 - 1 < (long)sizeof root)
            memcpy(root, l2 + 1, (size_t)(l3 - l2 - 1));
        mv_buf_append_byte(&note, 0);
        fprintf(cli_out, "{");
        json_kv_str(cli_out, "origin", ls.origin, 0);
        json_kv_u64(cli_out, "size", size, 1);
        json_kv_str(cli_out, "root", root, 1);
        json_kv_str(cli_out, "note", (const char *)note.data, 1);
        fprintf(cli_out, "}\n");
    } else {
        fwrite(note.data, 1, note.len, cli_out);
    }
    cli_detail(&c, "size=%llu", size);
out:
    mv_buf_free(&note);
    return cli_finish(&c, s, st, &err);
}

/* ---- proof ------------------------------------------------------------------- */

static void proof_help(void)
{
    fprintf(cli_out,
            "usage: mailvault proof SERIAL [--head FILE] [--format json]\n\n"
            "Prints the inclusion proof of message SERIAL in the integrity log: its leaf\n"
            "(serial, trusted receipt time, salted digest), the path to the root, the\n"
            "archive's public key, and the signed tree head it leads to.  With --head, the\n"
            "proof is made against a tree head you kept (the archive first checks that its\n"
            "log still has that head's root at that size).  Check a proof with\n"
            "`mailvault verify-proof FILE` or with openssl (docs/integrity.md).\n"
            "Needs the role auditor, legal or admin; audited.\n");
}

typedef struct proof_args {
    const char *head, *head_text;
} proof_args;

static int proof_opt(void *ctx, int opt, const char *arg)
{
    proof_args *a = ctx;
    if (opt == 'H')
        a->head = arg;
    else if (opt == 'T')
        a->head_text = arg;
    else
        return -1;
    return 0;
}

int cmd_proof(int argc, char **argv)
{
    mv_cli c;
    proof_args pa = {NULL, NULL};
    static const struct option opts[] = {{"head", required_argument, NULL, 'H'},
                                         {"head-text", required_argument, NULL, 'T'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "proof");
    int rc = cli_getopt(&c, argc, argv, opts, proof_opt, &pa, proof_help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    uint64_t serial;
    if (c.argi + 1 != argc || cli_parse_u64(argv[c.argi], &serial) || !serial)
        return cli_usage_error("proof", "give one message serial");
    mv_err err = {0};
    mv_store *s = NULL;
    mv_buf head = MV_BUF_INIT, out = MV_BUF_INIT;
    mv_status st = MV_OK;
    if ((pa.head || pa.head_text) && (st = head_arg(pa.head, pa.head_text, &head, &err)))
        return cli_finish(&c, NULL, st, &err);
    if ((st = cli_open(&c, &s, &err)))
        goto out;
    if ((st = cli_require(&c, s, MV_USER_AUDITOR | MV_USER_LEGAL | MV_USER_ADMIN, &err)) ||
        (st = mv_store_proof(s, serial, head.len ? head.data : NULL, head.len, &out, &err)))
        goto out;
    if (c.json) {
        mv_buf_append_byte(&out, 0);
        fprintf(cli_out, "{");
        json_kv_u64(cli_out, "serial", serial, 0);
        json_kv_str(cli_out, "proof", (const char *)out.data, 1);
        fprintf(cli_out, "}\n");
    } else {
        fwrite(out.data, 1, out.len, cli_out);
    }
    cli_detail(&c, "serial=%llu%s", (unsigned long long)serial, head.len ? " against a kept head" : "");
out:
    mv_buf_free(&head);
    mv_buf_free(&out);
    return cli_finish(&c, s, st, &err);
}

/* ---- verify-proof ------------------------------------------------------------ */

static void verify_proof_help(void)
{
    fprintf(cli_out,
            "usage: mailvault verify-proof FILE [--head STH] [--fingerprint SHA256]\n"
            "                              [--format json]\n\n"
            "Checks an inclusion proof made by `mailvault proof` without the archive: the\n"
            "tree head's Ed25519 signature, that the leaf is the message's, and that the\n"
            "path leads from it to the head's root.  --head: a tree head you kept; the\n"
            "proof must be made against it.  --fingerprint: the SHA-256 of the archive's\n"
            "public key as its owners published it (`mailvault keys signing`); without it\n"
            "the key inside the proof is taken on trust, and the report says so.\n"
            "Exits 0 when the proof holds, 65 when it does not.\n");
}

typedef struct vp_args {
    const char *head, *fpr;
} vp_args;

static int vp_opt(void *ctx, int opt, const char *arg)
{
    vp_args *a = ctx;
    uint8_t tmp[32];
    switch (opt) {
    case 'H':
        a->head = arg;
        return 0;
    case 'f':
        if (strlen(arg) != 64 || mv_unhex(arg, tmp, 32))
            return cli_usage_error("verify-proof", "--fingerprint is 64 hexadecimal digits"), -1;
        a->fpr = arg;
        return 0;
    default:
        return -1;
    }
}

int cmd_verify_proof(int argc, char **argv)
{
    mv_cli c;
    vp_args va = {NULL, NULL};
    static const struct option opts[] = {{"head", required_argument, NULL, 'H'},
                                         {"fingerprint", required_argument, NULL, 'f'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "verify-proof");
    int rc = cli_getopt(&c, argc, argv, opts, vp_opt, &va, verify_proof_help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi + 1 != argc)
        return cli_usage_error("verify-proof", "give the proof file");
    mv_err err = {0};
    mv_buf proof = MV_BUF_INIT, head = MV_BUF_INIT;
    mv_proof_info pi;
    memset(&pi, 0, sizeof pi);
    mv_status st = cli_read_small(argv[c.argi], MV_PROOF_MAX_BYTES, &proof, &err);
    if (!st && va.head)
        st = cli_read_small(va.head, HEAD_MAX, &head, &err);
    if (st)
        goto out;
    uint8_t want[32], h[32];
    char fpr[65];
    if (va.fpr)
        mv_assert(mv_unhex(va.fpr, want, 32) == 0);
    st = mv_proof_check(proof.data, proof.len, va.head ? head.data : NULL, head.len, NULL, &pi,
                        &err);
    unsigned hl = 32;
    mv_assert(EVP_Digest(pi.pub, 32, h, &hl, EVP_sha256(), NULL));
    mv_hex(h, 32, fpr);
    if (!st && va.fpr && CRYPTO_memcmp(h, want, 32) != 0)
        st = mv_err_set(&err, MV_ECRYPTO,
                        "the proof is signed by key %s, not by the fingerprint given", fpr);
    char when[32] = "";
    if (pi.received_us)
        mv_fmt_time(pi.received_us / 1000000, when, sizeof when);
    if (c.json) {
        char pub[48];
        b64(pi.pub, 32, pub);
        fprintf(cli_out, "{");
        json_kv_str(cli_out, "result", st ? "FAILED" : "OK", 0);
        if (st)
            json_kv_str(cli_out, "error", err.msg, 1);
        json_kv_u64(cli_out, "serial", pi.serial, 1);
        json_kv_u64(cli_out, "leaf_index", pi.index, 1);
        json_kv_u64(cli_out, "tree_size", pi.size, 1);
        json_kv_str(cli_out, "received", when, 1);
        json_kv_str(cli_out, "origin", pi.origin, 1);
        json_kv_str(cli_out, "key_fingerprint", fpr, 1);
        fprintf(cli_out, ",\"key_checked\":%s,\"against_kept_head\":%s}\n",
                va.fpr ? "true" : "false", pi.against_head ? "true" : "false");
        if (st)
            st = MV_ECRYPTO, err.msg[0] = 0; /* said in the JSON */
    } else if (!st) {
        fprintf(cli_out,
                "OK: message %llu (received %s) is leaf %llu of the log %s of %llu leaves\n"
                "  tree head signed by key %s%s\n%s",
                (unsigned long long)pi.serial, when, (unsigned long long)pi.index, pi.origin,
                (unsigned long long)pi.size, fpr,
                va.fpr ? " (the fingerprint given)"
                       : "\n  (not checked against a published fingerprint: give --fingerprint)",
                pi.against_head ? "  and it is the tree head you kept\n" : "");
    }
out:
    mv_buf_free(&proof);
    mv_buf_free(&head);
    if (st && err.msg[0])
        fprintf(cli_err, "mailvault verify-proof: %s\n", err.msg);
    cli_free(&c);
    return st ? (st == MV_EUSAGE ? EXIT_USAGE : st == MV_ENOTFOUND || st == MV_EIO ? EXIT_NOINPUT
                                                                                 : EXIT_DATAERR)
              : EXIT_OK;
}
