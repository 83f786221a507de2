/* SPDX-License-Identifier: MIT */
/* cmd_reprocess.c - `mailvault reprocess [SERIAL...]`: decrypt archived
 * messages that could not be decrypted when they arrived (typically: the
 * escrowed key was added later).  No new message is created: each
 * decryption is an attribute record of its message, with the decrypted
 * form as a second blob; the change log carries it to the index. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "../ingest/escrow.h"
#include "../lib/util.h"
#include "cli.h"

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault reprocess [SERIAL...] [--format json]\n\n"
            "Decrypt, with the escrowed keys the archive holds now, the encrypted messages\n"
            "that are not decrypted yet: the given serials, or every message.  Messages\n"
            "already decrypted are left as they are.  Needs the admin role.\n");
}

typedef struct rp_stats {
    uint64_t seen, encrypted, decrypted, still, already;
} rp_stats;

static mv_status collect(void *ctx, const uint8_t *p, size_t n, mv_err *err)
{
    (void)err;
    mv_buf_append(ctx, p, n);
    return MV_OK;
}

/* one - reprocess one message; MV_ENOTFOUND when no such serial. */
static mv_status one(mv_store *s, const mv_escrow *esc, uint64_t serial, rp_stats *rs, mv_err *err)
{
    mv_decryption *old = NULL;
    mv_err derr = {0};
    mv_status st = mv_store_decryption(s, serial, &old, &derr);
    if (st && st != MV_ENOTFOUND) {
        *err = derr;
        return st;
    }
    int had = old != NULL, done = old && old->decrypted;
    mv_decryption_free(old);
    rs->seen++;
    if (done) {
        rs->encrypted++;
        rs->already++;
        return MV_OK;
    }
    mv_buf bytes = MV_BUF_INIT;
    if ((st = mv_store_read(s, serial, 0, collect, &bytes, err))) {
        mv_buf_wipe(&bytes);
        mv_tombstone t;
        if (st == MV_ENOTFOUND && !had && mv_store_tombstone(s, serial, &t, NULL) == MV_OK) {
            rs->seen--; /* purged: nothing left to decrypt */
            return MV_OK;
        }
        return st;
    }
    if (!mv_escrow_detect(bytes.data, bytes.len)) {
        mv_buf_wipe(&bytes);
        return MV_OK;
    }
    mv_decrypt_limits dl;
    mv_decrypt_limits_default(&dl);
    mv_decrypt_result r;
    st = mv_escrow_decrypt(esc, bytes.data, bytes.len, &dl, &r, err);
    mv_buf_wipe(&bytes);
    if (st) {
        mv_decrypt_result_free(&r);
        return st;
    }
    if (r.encrypted || r.sig != MV_SIG_NONE) {
        if (r.encrypted)
            rs->encrypted++;
        /* a record is added when something changed: decrypted now, or the
         * message never had one */
        if (r.decrypted || !had) {
            mv_decryption d;
            mv_decryption_from_result(&d, &r);
            st = mv_store_add_decryption(s, serial, &d, r.out, r.out_len, err);
        }
        if (!st && r.decrypted)
            rs->decrypted++;
        else if (!st && r.encrypted)
            rs->still++;
    }
    mv_decrypt_result_free(&r);
    return st;
}

int cmd_reprocess(int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_OPTS, {NULL, 0, NULL, 0}};
    mv_cli c;
    cli_init(&c, "reprocess");
    int rc = cli_getopt(&c, argc, argv, opts, cli_no_opt, NULL, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    for (int i = c.argi; i < argc; i++) {
        uint64_t v;
        if (cli_parse_u64(argv[i], &v) || !v)
            return cli_usage_error("reprocess", "'%s' is not a serial", argv[i]);
    }
    mv_err err = {0};
    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    if ((st = cli_require(&c, s, MV_USER_ADMIN, &err)))
        return cli_finish(&c, s, st, &err);
    mv_escrow *esc = NULL;
    rp_stats rs = {0};
    if (!(st = mv_escrow_load(s, &esc, &err))) {
        if (c.argi < argc) {
            for (int i = c.argi; i < argc && !st; i++) {
                uint64_t v = 0;
                (void)cli_parse_u64(argv[i], &v);
                st = one(s, esc, v, &rs, &err);
            }
        } else {
            uint64_t last = mv_store_last_serial(s);
            mv_progress *pg = cli_progress_new("reprocessing", last);
            for (uint64_t v = 1; v <= last && !st; v++) {
                st = one(s, esc, v, &rs, &err);
                if (pg && (v & 63) == 0)
                    mv_progress_update(pg, v, 0);
            }
            mv_progress_free(pg);
        }
    }
    mv_escrow_free(esc);
    cli_detail(&c, "messages=%llu encrypted=%llu decrypted=%llu", (unsigned long long)rs.seen,
               (unsigned long long)rs.encrypted, (unsigned long long)rs.decrypted);
    if (!st) {
        if (c.json) {
            fprintf(cli_out, "{");
            json_kv_u64(cli_out, "messages", rs.seen, 0);
            json_kv_u64(cli_out, "encrypted", rs.encrypted, 1);
            json_kv_u64(cli_out, "decrypted_now", rs.decrypted, 1);
            json_kv_u64(cli_out, "already_decrypted", rs.already, 1);
            json_kv_u64(cli_out, "still_encrypted", rs.still, 1);
            fprintf(cli_out, "}\n");
        } else {
            fprintf(cli_out, "%llu messages looked at, %llu encrypted: %llu decrypted now, %llu "
                             "already decrypted, %llu still without a key\n",
                    (unsigned long long)rs.seen, (unsigned long long)rs.encrypted,
                    (unsigned long long)rs.decrypted, (unsigned long long)rs.already,
                    (unsigned long long)rs.still);
        }
    }
    return cli_finish(&c, s, st, &err);
}
