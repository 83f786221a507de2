/* SPDX-License-Identifier: MIT */
/* log.c - the integrity log: an append-only Merkle tree (RFC 6962 hashing,
 * lib/merkle.h) with a leaf for every message, copy, attribute record and
 * audit record, written in the same RocksDB batch as the record itself;
 * signed tree heads (C2SP checkpoint notes, lib/note.h); inclusion proofs;
 * and `verify`, which recomputes all of it from the records
 * (docs/integrity.md).
 *
 * Layout, in the "log" column family:
 *   'l' | be64 index            → the leaf (below)
 *   'n' | u8 level | be64 index → hash of the perfect subtree, for levels of
 *                                  NODE_MIN_LEVEL and up (below, recomputed
 *                                  from at most 8 leaves; archives written
 *                                  before kept every level, now unread)
 *   'r' | u8 type | record key  → be64 leaf index (which leaf stands for a record)
 *   'h' | be64 number           → a signed tree head, as its note text
 * and in the default family "log_frontier" (the tree's right edge),
 * "log_heads", "clock_hwm", "log_state".
 *
 * A leaf: u8 version 1 | u8 type | be64 time (µs) | u8 key length | record
 * key | 32-byte digest.  The digest of a message, copy or attribute record
 * is SHA-256 over a label, the type, the message's salt, the key and the
 * record's plaintext (which holds the SHA-256 of the bytes it describes);
 * the salt is random, sealed under the message's bucket key ("salt"
 * family), so once the bucket is shredded nobody can confirm a guess of the
 * content from the public leaf.  An audit record's digest is an HMAC under
 * a key derived from the root secret.  Leaves hold no content, address or
 * name: types, serials, times and digests. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "../lib/digest.h"
#include "../lib/rand.h"
#include "../lib/log.h"
#include "../lib/note.h"
#include "../lib/util.h"
#include "seal.h"
#include "store_int.h"

#define LEAF_VERSION 1
#define LEAF_MAX 80        /* 2 + 8 + 1 + 16 + 32, rounded */
#define UPGRADE_BATCH 256u /* messages per batch while old records get leaves */
#define LOG_STATE_DONE 1u
/* Subtrees of 1 to 8 leaves are not stored: they were 15 of every 16 node
 * keys, almost two per leaf, in the committer's one write batch (a
 * quarter of an imported message's keys).  A proof recomputes each from
 * its leaves, at most 8 reads. */
#define NODE_MIN_LEVEL 4u

static const char leaf_label[] = "mailvault/v1/leaf";

/* ---- keys ------------------------------------------------------------------ */

static void node_key(uint8_t k[10], unsigned level, uint64_t index)
{
    k[0] = 'n';
    k[1] = (uint8_t)level;
    mv_be64_put(k + 2, index);
}

static void leaf_key(uint8_t k[9], uint64_t index)
{
    k[0] = 'l';
    mv_be64_put(k + 1, index);
}

static size_t rec_key(uint8_t k[18], int type, const uint8_t *rkey, size_t rkl)
{
    k[0] = 'r';
    k[1] = (uint8_t)type;
    memcpy(k + 2, rkey, rkl);
    return 2 + rkl;
}

static void head_key(uint8_t k[9], uint64_t no)
{
    k[0] = 'h';
    mv_be64_put(k + 1, no);
}

static mv_status get_u64(mv_store *s, const char *name, uint64_t *v, mv_err *err)
{
    mv_buf b = MV_BUF_INIT;
    mv_status st = mv_st_get(s, CF_DEFAULT, name, strlen(name), &b, err);
    *v = 0;
    if (!st && b.len == 8)
        *v = mv_be64_get(b.data);
    else if (!st)
        st = mv_err_set(err, MV_EMALFORMED, "store counter %s is damaged", name);
    mv_buf_free(&b);
    return st;
}

static void put_u64(rocksdb_writebatch_t *b, mv_store *s, const char *name, uint64_t v)
{
    uint8_t k[8];
    mv_be64_put(k, v);
    rocksdb_writebatch_put_cf(b, s->cf[CF_DEFAULT], name, strlen(name), (const char *)k, 8);
}

/* ---- leaves ------------------------------------------------------------------ */

mv_status mv_ilog_salt_new(mv_store *s, rocksdb_writebatch_t *b, const char *bucket,
                           uint64_t serial, uint8_t salt[32], mv_buf *tmp, mv_err *err)
{
    uint8_t key[8];
    if (!mv_rand_bytes(salt, 32))
        return mv_err_openssl(err, "drawing a log salt");
    mv_be64_put(key, serial);
    mv_buf plain = {salt, 32, 32};
    return mv_st_seal_put(s, b, CF_SALT, MV_FAM_SALT, bucket, key, 8, &plain, tmp, err);
}

mv_status mv_ilog_salt(mv_store *s, uint64_t serial, uint8_t salt[32], mv_err *err)
{
    uint8_t key[8];
    mv_buf v = MV_BUF_INIT, plain = MV_BUF_INIT;
    mv_be64_put(key, serial);
    mv_status st = mv_st_get(s, CF_SALT, key, 8, &v, err);
    if (!st && !(st = mv_open_record(s->keys, MV_FAM_SALT, key, 8, v.data, v.len, &plain, err))) {
        if (plain.len == 32)
            memcpy(salt, plain.data, 32);
        else
            st = mv_err_set(err, MV_EMALFORMED, "the log salt of message %llu is damaged",
                            (unsigned long long)serial);
    }
    mv_buf_free(&v);
    mv_buf_wipe(&plain);
    return st;
}

static void leaf_digest(mv_store *s, int type, const uint8_t *rkey, size_t rkl, const uint8_t *salt,
                        const uint8_t *plain, size_t n, uint8_t out[32])
{
    uint8_t t = (uint8_t)type;
    if (!salt) {
        mv_buf in = MV_BUF_INIT;
        mv_buf_append_byte(&in, t);
        mv_buf_append(&in, rkey, rkl);
        mv_keys_mac2(s->keys, MV_DERIVE_LOG_MAC, in.data, in.len, plain, n, out);
        mv_buf_free(&in);
        return;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    mv_assert(md && EVP_DigestInit_ex(md, mv_md_sha256(), NULL));
    EVP_DigestUpdate(md, leaf_label, sizeof leaf_label);
    EVP_DigestUpdate(md, &t, 1);
    EVP_DigestUpdate(md, salt, 32);
    EVP_DigestUpdate(md, rkey, rkl);
    EVP_DigestUpdate(md, plain, n);
    mv_assert(EVP_DigestFinal_ex(md, out, NULL));
    EVP_MD_CTX_free(md);
}

static size_t leaf_encode(uint8_t out[LEAF_MAX], int type, const uint8_t *rkey, size_t rkl,
                          int64_t time_us, const uint8_t digest[32])
{
    out[0] = LEAF_VERSION;
    out[1] = (uint8_t)type;
    mv_be64_put(out + 2, (uint64_t)time_us);
    out[10] = (uint8_t)rkl;
    memcpy(out + 11, rkey, rkl);
    memcpy(out + 11 + rkl, digest, 32);
    return 11 + rkl + 32;
}

typedef struct leaf {
    int type;
    int64_t time_us;
    const uint8_t *rkey;
    size_t rkl;
    const uint8_t *digest;
} leaf;

static int leaf_decode(const uint8_t *p, size_t n, leaf *l)
{
    if (n < 11 || p[0] != LEAF_VERSION)
        return -1;
    l->type = p[1];
    l->time_us = (int64_t)mv_be64_get(p + 2);
    l->rkl = p[10];
    if (n != 11 + l->rkl + 32 || l->rkl > 16)
        return -1;
    l->rkey = p + 11;
    l->digest = p + 11 + l->rkl;
    switch (l->type) {
    case MV_LEAF_MESSAGE:
    case MV_LEAF_AUDIT:
    case MV_LEAF_POLICY:
    case MV_LEAF_TOMBSTONE:
    case MV_LEAF_HOLD:
        return l->rkl == 8 ? 0 : -1;
    case MV_LEAF_COPY:
    case MV_LEAF_ATTR:
        return l->rkl == 12 ? 0 : -1;
    default:
        return -1;
    }
}

void mv_ilog_add(mv_store *s, mv_ilog_batch *lb, int type, const uint8_t *rkey, size_t rkl,
                 int64_t time_us, const uint8_t *salt, const uint8_t *plain, size_t n)
{
    uint8_t d[32], enc[LEAF_MAX];
    mv_assert(rkl <= 16);
    leaf_digest(s, type, rkey, rkl, salt, plain, n, d);
    size_t el = leaf_encode(enc, type, rkey, rkl, time_us, d);
    mv_buf_put_u8(&lb->leaves, (uint8_t)el);
    mv_buf_append(&lb->leaves, enc, el);
    lb->n++;
}

static void public_digest(int type, const uint8_t *rkey, size_t rkl, const uint8_t *rec, size_t n,
                          uint8_t out[32])
{
    uint8_t t = (uint8_t)type;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    mv_assert(md && EVP_DigestInit_ex(md, mv_md_sha256(), NULL));
    EVP_DigestUpdate(md, leaf_label, sizeof leaf_label);
    EVP_DigestUpdate(md, &t, 1);
    EVP_DigestUpdate(md, rkey, rkl);
    EVP_DigestUpdate(md, rec, n);
    mv_assert(EVP_DigestFinal_ex(md, out, NULL));
    EVP_MD_CTX_free(md);
}

void mv_ilog_add_public(mv_store *s, mv_ilog_batch *lb, int type, const uint8_t *rkey, size_t rkl,
                        int64_t time_us, const uint8_t *rec, size_t n)
{
    (void)s;
    uint8_t d[32], enc[LEAF_MAX];
    public_digest(type, rkey, rkl, rec, n, d);
    size_t el = leaf_encode(enc, type, rkey, rkl, time_us, d);
    mv_buf_put_u8(&lb->leaves, (uint8_t)el);
    mv_buf_append(&lb->leaves, enc, el);
    lb->n++;
}

mv_status mv_ilog_clock_confirmed(mv_store *s, mv_err *err)
{
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_cf(b, s->cf[CF_DEFAULT], "clock_jump", 10);
    pthread_mutex_lock(&s->log_mu);
    /* the confirmed time is the new mark: what comes next is measured from it */
    int64_t now = mv_now_us();
    if (now > s->clock_hwm_us)
        put_u64(b, s, "clock_hwm", (uint64_t)now);
    mv_status st = mv_st_write(s, b, 1, err);
    if (!st) {
        s->clock_jump_from_us = 0;
        if (now > s->clock_hwm_us)
            s->clock_hwm_us = now;
    }
    pthread_mutex_unlock(&s->log_mu);
    rocksdb_writebatch_destroy(b);
    return st;
}

void mv_ilog_batch_free(mv_ilog_batch *lb)
{
    mv_buf_free(&lb->leaves);
    lb->n = 0;
}

typedef struct node_sink {
    mv_store *s;
    rocksdb_writebatch_t *b;
} node_sink;

static void put_node(void *ctx, unsigned level, uint64_t index, const uint8_t h[32])
{
    node_sink *ns = ctx;
    uint8_t k[10];
    if (level < NODE_MIN_LEVEL)
        return;
    node_key(k, level, index);
    rocksdb_writebatch_put_cf(ns->b, ns->s->cf[CF_LOG], (const char *)k, sizeof k, (const char *)h,
                              32);
}

/* type_class - a leaf type as a bit number: 1..31 as themselves, any
 * other (no leaf has one today) as 0. */
static unsigned type_class(int type)
{
    return type > 0 && type < 32 ? (unsigned)type : 0u;
}

mv_status mv_ilog_write(mv_store *s, rocksdb_writebatch_t *b, mv_ilog_batch *lb, int sync,
                        mv_err *err)
{
    pthread_mutex_lock(&s->log_mu);
    /* On a copy: a batch that fails to write leaves the edge as it was. */
    mv_merkle_frontier f = s->log_front;
    int64_t hwm = s->clock_hwm_us, now = mv_now_us();
    node_sink ns = {s, b};
    /* The family's memtable inserts a key quickly next to the one before
     * and searches from the top otherwise: the leaves go in first, in
     * order, then the record index of each type of record in turn
     * (interleaved, every key would have been a full search). */
    uint32_t types = 0; /* leaf types present, a bit each */
    for (size_t off = 0; off < lb->leaves.len;) {
        size_t el = lb->leaves.data[off];
        const uint8_t *enc = lb->leaves.data + off + 1;
        leaf l;
        mv_assert(leaf_decode(enc, el, &l) == 0);
        uint8_t k[9], h[32];
        leaf_key(k, f.size);
        rocksdb_writebatch_put_cf(b, s->cf[CF_LOG], (const char *)k, 9, (const char *)enc, el);
        mv_merkle_leaf_hash(enc, el, h);
        mv_merkle_frontier_append(&f, h, put_node, &ns);
        types |= 1u << type_class(l.type);
        off += 1 + el;
    }
    for (unsigned t = 0; types >> t; t++) {
        if (!(types >> t & 1))
            continue;
        uint64_t index = s->log_front.size;
        for (size_t off = 0; off < lb->leaves.len; index++) {
            size_t el = lb->leaves.data[off];
            const uint8_t *enc = lb->leaves.data + off + 1;
            off += 1 + el;
            leaf l;
            mv_assert(leaf_decode(enc, el, &l) == 0);
            if (type_class(l.type) != t)
                continue;
            uint8_t k[18], idx[8];
            size_t kl = rec_key(k, l.type, l.rkey, l.rkl);
            mv_be64_put(idx, index);
            rocksdb_writebatch_put_cf(b, s->cf[CF_LOG], (const char *)k, kl, (const char *)idx, 8);
        }
    }
    mv_buf fe = MV_BUF_INIT;
    mv_merkle_frontier_encode(&f, &fe);
    rocksdb_writebatch_put_cf(b, s->cf[CF_DEFAULT], "log_frontier", 12, (const char *)fe.data,
                              fe.len);
    mv_buf_free(&fe);
    /* The time high-water mark: what purge compares the clock with.  A
     * clock far ahead of it is doubted until an admin confirms it (purge
     * --confirm-clock): the records still get the time it says. */
    int64_t jump = s->clock_jump_from_us;
    if (hwm && !jump && now > hwm + MV_CLOCK_JUMP_US) {
        jump = hwm;
        put_u64(b, s, "clock_jump", (uint64_t)jump);
    }
    if (now > hwm) {
        hwm = now;
        put_u64(b, s, "clock_hwm", (uint64_t)hwm);
    }
    mv_status st = mv_st_write(s, b, sync, err);
    if (!st) {
        s->log_front = f;
        s->clock_hwm_us = hwm;
        s->clock_jump_from_us = jump;
    }
    pthread_mutex_unlock(&s->log_mu);
    mv_buf_reset(&lb->leaves);
    lb->n = 0;
    return st;
}

void mv_ilog_create(mv_store *s, rocksdb_writebatch_t *b)
{
    mv_merkle_frontier_init(&s->log_front);
    mv_buf fe = MV_BUF_INIT;
    mv_merkle_frontier_encode(&s->log_front, &fe);
    rocksdb_writebatch_put_cf(b, s->cf[CF_DEFAULT], "log_frontier", 12, (const char *)fe.data,
                              fe.len);
    mv_buf_free(&fe);
    put_u64(b, s, "log_state", LOG_STATE_DONE);
}

/* ---- giving older records their leaves ------------------------------------- */

static int has_leaf(mv_store *s, int type, const uint8_t *rkey, size_t rkl, mv_status *st,
                    mv_err *err)
{
    uint8_t k[18];
    mv_buf v = MV_BUF_INIT;
    size_t kl = rec_key(k, type, rkey, rkl);
    *st = mv_st_get(s, CF_LOG, k, kl, &v, err);
    mv_buf_free(&v);
    if (*st == MV_ENOTFOUND) {
        *st = MV_OK;
        return 0;
    }
    return !*st;
}

/* open_at - the plaintext of the sealed record at (cf, key). */
static mv_status open_at(mv_store *s, int cf, int fam, const uint8_t *key, size_t kl, mv_buf *plain,
                         mv_err *err)
{
    mv_buf v = MV_BUF_INIT;
    mv_buf_reset(plain); /* mv_open_record appends */
    mv_status st = mv_st_get(s, cf, key, kl, &v, err);
    if (!st)
        st = mv_open_record(s->keys, fam, key, kl, v.data, v.len, plain, err);
    mv_buf_free(&v);
    return st;
}

/* msg_received - the receipt time and bucket in a message record's plaintext. */
static int msg_fields(const mv_buf *plain, int64_t *received_us, char *bucket, size_t bn)
{
    mv_rd r;
    mv_rd_init(&r, plain->data, plain->len);
    uint8_t ver = mv_rd_u8(&r);
    (void)mv_rd_u64(&r);
    size_t bl;
    const uint8_t *bp = mv_rd_lp(&r, &bl);
    *received_us = (int64_t)mv_rd_u64(&r);
    if (r.bad || ver != 1 || !bp || bl >= bn)
        return -1;
    memcpy(bucket, bp, bl);
    bucket[bl] = 0;
    return 0;
}

/* prefixed - every record of cf whose key starts with serial, through fn. */
typedef mv_status (*rec_fn)(void *ctx, const uint8_t *k, size_t kl, mv_err *err);
static mv_status each_of_serial(mv_store *s, int cf, uint64_t serial, rec_fn fn, void *ctx,
                                mv_err *err)
{
    uint8_t pre[8];
    mv_be64_put(pre, serial);
    mv_status st = MV_OK;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[cf]);
    for (rocksdb_iter_seek(it, (const char *)pre, 8); rocksdb_iter_valid(it) && !st;
         rocksdb_iter_next(it)) {
        size_t kl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl < 8 || memcmp(k, pre, 8) != 0)
            break;
        st = fn(ctx, k, kl, err);
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    if (e && !st)
        st = mv_st_rocks_err(err, e, "reading records");
    else
        rocksdb_free(e);
    return st;
}

typedef struct upgrade {
    mv_store *s;
    mv_ilog_batch lb;
    uint8_t salt[32];
    int64_t received_us;
    mv_buf plain;
    int cf, fam, type;
} upgrade;

static mv_status upgrade_rec(void *ctx, const uint8_t *k, size_t kl, mv_err *err)
{
    upgrade *u = ctx;
    mv_status st;
    if (kl != 12)
        return mv_err_set(err, MV_EMALFORMED, "a record key of the wrong length");
    if (has_leaf(u->s, u->type, k, kl, &st, err) || st)
        return st;
    if ((st = open_at(u->s, u->cf, u->fam, k, kl, &u->plain, err)))
        return st;
    mv_ilog_add(u->s, &u->lb, u->type, k, kl,
                u->type == MV_LEAF_COPY ? u->received_us : mv_now_us(), u->salt, u->plain.data,
                u->plain.len);
    return MV_OK;
}

static mv_status upgrade_message(mv_store *s, upgrade *u, rocksdb_writebatch_t *b, uint64_t serial,
                                 mv_buf *tmp, mv_err *err)
{
    uint8_t key[8];
    char bucket[32];
    mv_be64_put(key, serial);
    mv_status st;
    int done = has_leaf(s, MV_LEAF_MESSAGE, key, 8, &st, err);
    if (st || (st = open_at(s, CF_MSG, MV_FAM_MSG, key, 8, &u->plain, err)))
        return st;
    if (msg_fields(&u->plain, &u->received_us, bucket, sizeof bucket) < 0)
        return mv_err_set(err, MV_EMALFORMED, "message record %llu is damaged",
                          (unsigned long long)serial);
    st = mv_ilog_salt(s, serial, u->salt, err);
    if (st == MV_ENOTFOUND)
        st = mv_ilog_salt_new(s, b, bucket, serial, u->salt, tmp, err);
    if (st)
        return st;
    if (!done)
        mv_ilog_add(s, &u->lb, MV_LEAF_MESSAGE, key, 8, u->received_us, u->salt, u->plain.data,
                    u->plain.len);
    u->cf = CF_COPY, u->fam = MV_FAM_COPY, u->type = MV_LEAF_COPY;
    if ((st = each_of_serial(s, CF_COPY, serial, upgrade_rec, u, err)))
        return st;
    u->cf = CF_ATTR, u->fam = MV_FAM_ATTR, u->type = MV_LEAF_ATTR;
    return each_of_serial(s, CF_ATTR, serial, upgrade_rec, u, err);
}

/* upgrade - leaves for every record written before the log existed:
 * message by message (its copies and attributes after it), then the audit
 * trail.  Records that already have a leaf (an upgrade cut short) are
 * skipped, so it resumes where it stopped. */
static mv_status upgrade_log(mv_store *s, mv_err *err)
{
    upgrade u = {.s = s};
    mv_buf tmp = MV_BUF_INIT;
    mv_status st = MV_OK;
    uint64_t last = s->last_serial, audits = s->next_audit;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    mv_log_info("giving %llu messages and %llu audit records their integrity-log leaves",
                (unsigned long long)last, (unsigned long long)audits);
    for (uint64_t serial = 1; serial <= last && !st; serial++) {
        st = upgrade_message(s, &u, b, serial, &tmp, err);
        if (st == MV_ENOTFOUND) /* a gap is for verify to report, not for open */
            st = MV_OK;
        if (!st && (serial % UPGRADE_BATCH == 0 || serial == last))
            st = mv_ilog_write(s, b, &u.lb, 0, err), rocksdb_writebatch_clear(b);
    }
    for (uint64_t seq = 1; seq <= audits && !st; seq++) {
        uint8_t key[8];
        mv_be64_put(key, seq);
        if (has_leaf(s, MV_LEAF_AUDIT, key, 8, &st, err) || st)
            continue;
        st = open_at(s, CF_AUDIT, MV_FAM_AUDIT, key, 8, &u.plain, err);
        if (st == MV_ENOTFOUND) {
            st = MV_OK;
            continue;
        }
        if (st)
            break;
        mv_rd r;
        mv_rd_init(&r, u.plain.data, u.plain.len);
        (void)mv_rd_u8(&r);
        int64_t t = (int64_t)mv_rd_u64(&r);
        mv_ilog_add(s, &u.lb, MV_LEAF_AUDIT, key, 8, r.bad ? 0 : t, NULL, u.plain.data,
                    u.plain.len);
        if (u.lb.n >= 1024)
            st = mv_ilog_write(s, b, &u.lb, 0, err), rocksdb_writebatch_clear(b);
    }
    if (!st) {
        put_u64(b, s, "log_state", LOG_STATE_DONE);
        st = mv_ilog_write(s, b, &u.lb, 1, err);
    }
    rocksdb_writebatch_destroy(b);
    mv_ilog_batch_free(&u.lb);
    mv_buf_wipe(&u.plain);
    mv_buf_free(&tmp);
    OPENSSL_cleanse(u.salt, sizeof u.salt);
    return st;
}

mv_status mv_ilog_load(mv_store *s, mv_err *err)
{
    mv_buf b = MV_BUF_INIT;
    uint64_t state = 0, hwm = 0;
    mv_status st = mv_st_get(s, CF_DEFAULT, "log_frontier", 12, &b, err);
    if (st == MV_ENOTFOUND) {
        mv_merkle_frontier_init(&s->log_front);
        st = MV_OK;
    } else if (!st) {
        st = mv_merkle_frontier_decode(b.data, b.len, &s->log_front, err);
    }
    mv_buf_free(&b);
    if (st)
        return mv_err_prefix(err, "the integrity log's state: "), st;
    st = get_u64(s, "log_state", &state, err);
    if (st == MV_ENOTFOUND)
        st = MV_OK;
    if (!st && (st = get_u64(s, "clock_hwm", &hwm, err)) == MV_ENOTFOUND)
        st = MV_OK;
    if (!st && (st = get_u64(s, "log_heads", &s->log_heads, err)) == MV_ENOTFOUND)
        st = MV_OK;
    uint64_t jump = 0;
    if (!st && (st = get_u64(s, "clock_jump", &jump, err)) == MV_ENOTFOUND)
        st = MV_OK;
    s->clock_jump_from_us = (int64_t)jump;
    if (st)
        return st;
    s->clock_hwm_us = (int64_t)hwm;
    if (state != LOG_STATE_DONE)
        st = upgrade_log(s, err);
    return st;
}

/* ---- signed tree heads ------------------------------------------------------ */

/* parse_time - the time of a head's "time" line (mv_fmt_time's form); 0 if bad. */
static int64_t parse_time(const char *p)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(p, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end)
        return 0;
    return (int64_t)timegm(&tm);
}

static void origin_of(mv_store *s, char out[MV_LOG_ORIGIN_MAX])
{
    char hex[2 * MV_ARCHIVE_ID_LEN + 1];
    mv_hex(mv_store_archive_id(s), MV_ARCHIVE_ID_LEN, hex);
    snprintf(out, MV_LOG_ORIGIN_MAX, "mailvault/%s", hex);
}

void mv_store_log_state(mv_store *s, mv_log_state *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->log_mu);
    out->leaves = s->log_front.size;
    mv_merkle_frontier_root(&s->log_front, out->root);
    out->heads = s->log_heads;
    out->clock_hwm_us = s->clock_hwm_us;
    pthread_mutex_unlock(&s->log_mu);
    origin_of(s, out->origin);
    mv_keys_signing_public(s->keys, out->pub);
}

/* parse_head - a note kept by this archive (or given by an auditor),
 * checked against the archive's key. */
static mv_status parse_head(mv_store *s, const uint8_t *p, size_t n, mv_checkpoint *c, mv_err *err)
{
    char origin[MV_LOG_ORIGIN_MAX];
    uint8_t pub[32];
    origin_of(s, origin);
    mv_keys_signing_public(s->keys, pub);
    mv_status st = mv_note_parse_checkpoint(p, n, origin, pub, c, err);
    if (!st && strcmp(c->origin, origin) != 0) {
        mv_checkpoint_clear(c);
        st = mv_err_set(err, MV_ECRYPTO, "the tree head is another log's (%.80s)", c->origin);
    }
    return st;
}

static mv_status latest_head(mv_store *s, mv_buf *note, mv_err *err)
{
    uint8_t k[9];
    head_key(k, s->log_heads);
    return mv_st_get(s, CF_LOG, k, 9, note, err);
}

/* sign_head_locked - sign the tree as it stands (log_mu held), keep it,
 * and put its note into out. */
static mv_status sign_head_locked(mv_store *s, mv_buf *out, mv_err *err)
{
    mv_checkpoint c = {0};
    char when[32], line[64];
    origin_of(s, c.origin);
    c.size = s->log_front.size;
    mv_merkle_frontier_root(&s->log_front, c.root);
    mv_fmt_time(mv_now(), when, sizeof when);
    snprintf(line, sizeof line, "time %s", when);
    char *ext[1] = {line};
    c.ext = ext;
    c.n_ext = 1;
    mv_buf_reset(out);
    mv_checkpoint_body(&c, out);
    uint8_t sig[64], pub[32];
    mv_status st = mv_keys_sign(s->keys, out->data, out->len, sig, err);
    if (st)
        return st;
    mv_keys_signing_public(s->keys, pub);
    mv_note_add_signature(out, c.origin, pub, sig);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    uint8_t k[9];
    head_key(k, s->log_heads + 1);
    rocksdb_writebatch_put_cf(b, s->cf[CF_LOG], (const char *)k, 9, (const char *)out->data,
                              out->len);
    put_u64(b, s, "log_heads", s->log_heads + 1);
    st = mv_st_write(s, b, 1, err);
    rocksdb_writebatch_destroy(b);
    if (!st)
        s->log_heads++;
    return st;
}

mv_status mv_store_checkpoint(mv_store *s, int fresh, mv_buf *out, mv_err *err)
{
    pthread_mutex_lock(&s->log_mu);
    mv_status st = MV_ENOTFOUND;
    if (!fresh && s->log_heads) {
        /* The latest head still covers every leaf: no new signature. */
        mv_checkpoint c = {0};
        st = latest_head(s, out, err);
        if (!st)
            st = parse_head(s, out->data, out->len, &c, err);
        if (!st && c.size != s->log_front.size)
            st = MV_ENOTFOUND;
        mv_checkpoint_clear(&c);
    }
    if (st)
        st = sign_head_locked(s, out, err);
    pthread_mutex_unlock(&s->log_mu);
    return st;
}

mv_status mv_store_checkpoint_due(mv_store *s, int64_t interval_s, int *signed_one, mv_err *err)
{
    *signed_one = 0;
    mv_buf note = MV_BUF_INIT;
    mv_status st = MV_OK;
    pthread_mutex_lock(&s->log_mu);
    mv_checkpoint c = {0};
    int due = 1;
    if (s->log_heads && !(st = latest_head(s, &note, err)) &&
        !(st = parse_head(s, note.data, note.len, &c, err))) {
        int64_t t = 0;
        for (size_t i = 0; i < c.n_ext; i++)
            if (strncmp(c.ext[i], "time ", 5) == 0)
                t = parse_time(c.ext[i] + 5);
        due = c.size != s->log_front.size && (t <= 0 || mv_now() - t >= interval_s);
    }
    mv_checkpoint_clear(&c);
    if (!st && due && s->log_front.size) {
        st = sign_head_locked(s, &note, err);
        *signed_one = !st;
    }
    pthread_mutex_unlock(&s->log_mu);
    mv_buf_free(&note);
    return st;
}

/* ---- proofs ------------------------------------------------------------------ */

/* low_node - the hash of a subtree below NODE_MIN_LEVEL, from its leaves. */
static mv_status low_node(mv_store *s, unsigned level, uint64_t index, uint8_t out[32],
                          mv_err *err)
{
    uint8_t h[1u << (NODE_MIN_LEVEL - 1)][32], k[9];
    size_t n = (size_t)1 << level, got = 0;
    uint64_t first = index << level;
    mv_status st = MV_OK;
    leaf_key(k, first);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_LOG]);
    for (rocksdb_iter_seek(it, (const char *)k, sizeof k); got < n && rocksdb_iter_valid(it);
         rocksdb_iter_next(it), got++) {
        size_t kl, vl;
        const uint8_t *ik = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl != sizeof k || ik[0] != 'l' || mv_be64_get(ik + 1) != first + got)
            break;
        const char *v = rocksdb_iter_value(it, &vl);
        mv_merkle_leaf_hash(v, vl, h[got]);
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    if (e)
        return mv_st_rocks_err(err, e, "reading the integrity log");
    if (got < n)
        return mv_err_set(err, MV_EMALFORMED,
                          "the integrity log lacks its leaf %llu: run mailvault verify",
                          (unsigned long long)(first + got));
    for (; n > 1; n /= 2)
        for (size_t i = 0; i < n / 2; i++)
            mv_merkle_node_hash(h[2 * i], h[2 * i + 1], h[i]);
    memcpy(out, h[0], 32);
    return st;
}

static mv_status get_node(void *ctx, unsigned level, uint64_t index, uint8_t out[32], mv_err *err)
{
    mv_store *s = ctx;
    uint8_t k[10];
    mv_buf v = MV_BUF_INIT;
    if (level < NODE_MIN_LEVEL)
        return low_node(s, level, index, out, err);
    if (level < 64) {
        pthread_mutex_lock(&s->log_mu);
        int hit = s->node_cache[level].ok && s->node_cache[level].index == index;
        if (hit)
            memcpy(out, s->node_cache[level].h, 32);
        pthread_mutex_unlock(&s->log_mu);
        if (hit)
            return MV_OK;
    }
    node_key(k, level, index);
    mv_status st = mv_st_get(s, CF_LOG, k, sizeof k, &v, err);
    if (st == MV_ENOTFOUND || (!st && v.len != 32))
        st = mv_err_set(err, MV_EMALFORMED,
                        "the integrity log lacks its node (%u, %llu): run mailvault verify", level,
                        (unsigned long long)index);
    else if (!st) {
        memcpy(out, v.data, 32);
        if (level < 64) {
            pthread_mutex_lock(&s->log_mu);
            s->node_cache[level].index = index;
            memcpy(s->node_cache[level].h, out, 32);
            s->node_cache[level].ok = 1;
            pthread_mutex_unlock(&s->log_mu);
        }
    }
    mv_buf_free(&v);
    return st;
}

static void b64_line(mv_buf *out, const char *label, const uint8_t *p, size_t n)
{
    char enc[4 * ((LEAF_MAX + 2) / 3) + 1];
    mv_assert(n <= LEAF_MAX);
    EVP_EncodeBlock((unsigned char *)enc, p, (int)n);
    mv_buf_printf(out, "%s %s\n", label, enc);
}

/* b64_dec - decode exactly; -1 unless it is canonical base64 of at most max bytes. */
static ssize_t b64_dec(const char *in, uint8_t *out, size_t max)
{
    size_t l = strlen(in);
    if (l == 0 || l % 4 || l / 4 * 3 > max + 2)
        return -1;
    uint8_t tmp[3 * ((LEAF_MAX + 2) / 3) + 3];
    if (l / 4 * 3 > sizeof tmp)
        return -1;
    int r = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)l);
    if (r < 0)
        return -1;
    size_t pad = (in[l - 1] == '=') + (in[l - 2] == '=');
    size_t n = (size_t)r - pad;
    if (n > max)
        return -1;
    memcpy(out, tmp, n);
    return (ssize_t)n;
}

mv_status mv_store_proof(mv_store *s, uint64_t serial, const uint8_t *head, size_t hn, mv_buf *out,
                         mv_err *err)
{
    uint8_t rk[8], k[18];
    mv_buf v = MV_BUF_INIT, note = MV_BUF_INIT, leafv = MV_BUF_INIT;
    mv_checkpoint c = {0};
    mv_be64_put(rk, serial);
    size_t kl = rec_key(k, MV_LEAF_MESSAGE, rk, 8);
    mv_status st = mv_st_get(s, CF_LOG, k, kl, &v, err);
    if (st == MV_ENOTFOUND)
        st = mv_err_set(err, MV_ENOTFOUND, "message %llu has no leaf in the integrity log",
                        (unsigned long long)serial);
    if (st || v.len != 8) {
        if (!st)
            st = mv_err_set(err, MV_EMALFORMED, "the log's entry for message %llu is damaged",
                            (unsigned long long)serial);
        goto out;
    }
    uint64_t index = mv_be64_get(v.data);
    uint8_t hsha[32];
    int known = 0;
    if (head) {
        /* checked once: the signature and the log's root at its size */
        mv_sha256(head, hn, hsha);
        pthread_mutex_lock(&s->log_mu);
        known = s->proof_head_ok && !memcmp(hsha, s->proof_head_sha, 32);
        if (known)
            c.size = s->proof_head_size;
        pthread_mutex_unlock(&s->log_mu);
    }
    if (head && known) {
        if (index >= c.size) {
            st = mv_err_set(err, MV_ENOTFOUND,
                            "message %llu entered the log after the tree head given (leaf %llu, "
                            "head size %llu)", (unsigned long long)serial,
                            (unsigned long long)index, (unsigned long long)c.size);
            goto out;
        }
        mv_buf_append(&note, head, hn);
    } else if (head) {
        if ((st = parse_head(s, head, hn, &c, err)))
            goto out;
        uint8_t root[32];
        pthread_mutex_lock(&s->log_mu);
        uint64_t have = s->log_front.size;
        pthread_mutex_unlock(&s->log_mu);
        if (c.size > have) {
            st = mv_err_set(err, MV_ECRYPTO,
                            "the tree head given covers %llu leaves, the archive's log only %llu:"
                            " the log was truncated or the archive rolled back",
                            (unsigned long long)c.size, (unsigned long long)have);
            goto out;
        }
        if ((st = mv_merkle_root_at(c.size, get_node, s, root, err)))
            goto out;
        if (CRYPTO_memcmp(root, c.root, 32) != 0) {
            st = mv_err_set(err, MV_ECRYPTO,
                            "the archive's tree at size %llu is not the tree head given: its "
                            "history was rewritten",
                            (unsigned long long)c.size);
            goto out;
        }
        if (index >= c.size) {
            st = mv_err_set(err, MV_ENOTFOUND,
                            "message %llu entered the log after the tree head given (leaf %llu, "
                            "head size %llu)",
                            (unsigned long long)serial, (unsigned long long)index,
                            (unsigned long long)c.size);
            goto out;
        }
        mv_buf_append(&note, head, hn);
        pthread_mutex_lock(&s->log_mu);
        memcpy(s->proof_head_sha, hsha, 32);
        s->proof_head_size = c.size;
        s->proof_head_ok = 1;
        pthread_mutex_unlock(&s->log_mu);
    } else {
        if ((st = mv_store_checkpoint(s, 0, &note, err)) ||
            (st = parse_head(s, note.data, note.len, &c, err)))
            goto out;
    }
    uint8_t path[MV_MERKLE_MAX_PROOF][32], lk[9];
    size_t np = 0;
    leaf_key(lk, index);
    if ((st = mv_merkle_inclusion_proof(index, c.size, get_node, s, path, &np, err)) ||
        (st = mv_st_get(s, CF_LOG, lk, 9, &leafv, err)))
        goto out;
    uint8_t pub[32];
    mv_keys_signing_public(s->keys, pub);
    mv_buf_reset(out);
    mv_buf_printf(out, "mailvault inclusion proof v1\nserial %llu\nindex %llu\n",
                  (unsigned long long)serial, (unsigned long long)index);
    b64_line(out, "leaf", leafv.data, leafv.len);
    for (size_t i = 0; i < np; i++)
        b64_line(out, "node", path[i], 32);
    b64_line(out, "key", pub, 32);
    mv_buf_append_byte(out, '\n');
    mv_buf_append(out, note.data, note.len);
out:
    mv_checkpoint_clear(&c);
    mv_buf_free(&v);
    mv_buf_free(&note);
    mv_buf_free(&leafv);
    return st;
}

mv_status mv_proof_check(const uint8_t *p, size_t n, const uint8_t *head, size_t hn,
                         const uint8_t *want_pub, mv_proof_info *out, mv_err *err)
{
    memset(out, 0, sizeof *out);
    if (n > MV_PROOF_MAX_BYTES)
        return mv_err_set(err, MV_ELIMIT, "a proof is at most %u bytes", MV_PROOF_MAX_BYTES);
    uint8_t path[MV_MERKLE_MAX_PROOF][32], leafb[LEAF_MAX], pub[32];
    size_t np = 0, ll = 0, at = 0;
    int have_pub = 0, have_leaf = 0, line_no = 0, have_serial = 0, have_index = 0;
    char line[256];
    mv_checkpoint c = {0}, h = {0};
    mv_status st = MV_OK;
    /* the header lines, up to the blank line before the note */
    for (;;) {
        const uint8_t *nl = memchr(p + at, '\n', n - at);
        if (!nl)
            return mv_err_set(err, MV_EMALFORMED, "the proof ends before its tree head");
        size_t len = (size_t)(nl - (p + at));
        line_no++;
        if (len >= sizeof line)
            return mv_err_set(err, MV_EMALFORMED, "line %d of the proof is too long", line_no);
        memcpy(line, p + at, len);
        line[len] = 0;
        at += len + 1;
        if (len == 0)
            break;
        char *sp = strchr(line, ' ');
        const char *val = sp ? sp + 1 : "";
        if (sp)
            *sp = 0;
        if (line_no == 1) {
            if (strcmp(line, "mailvault") != 0 || strcmp(val, "inclusion proof v1") != 0)
                return mv_err_set(err, MV_EMALFORMED, "not a mailvault inclusion proof (v1)");
        } else if (strcmp(line, "serial") == 0 || strcmp(line, "index") == 0) {
            char *end;
            if (!*val || *val == '-' || *val == '+')
                return mv_err_set(err, MV_EMALFORMED, "line %d: a bad number", line_no);
            errno = 0;
            unsigned long long v = strtoull(val, &end, 10);
            if (*end || errno)
                return mv_err_set(err, MV_EMALFORMED, "line %d: a bad number", line_no);
            if (line[0] == 's')
                out->serial = v, have_serial = 1;
            else
                out->index = v, have_index = 1;
        } else if (strcmp(line, "leaf") == 0 && !have_leaf) {
            ssize_t r = b64_dec(val, leafb, sizeof leafb);
            if (r < 0)
                return mv_err_set(err, MV_EMALFORMED, "line %d: a bad leaf", line_no);
            ll = (size_t)r;
            have_leaf = 1;
        } else if (strcmp(line, "node") == 0) {
            if (np == MV_MERKLE_MAX_PROOF || b64_dec(val, path[np], 32) != 32)
                return mv_err_set(err, MV_EMALFORMED, "line %d: a bad proof node", line_no);
            np++;
        } else if (strcmp(line, "key") == 0 && !have_pub) {
            if (b64_dec(val, pub, 32) != 32)
                return mv_err_set(err, MV_EMALFORMED, "line %d: a bad key", line_no);
            have_pub = 1;
        } else {
            return mv_err_set(err, MV_EMALFORMED, "line %d of the proof is not understood",
                              line_no);
        }
    }
    if (!have_serial || !have_index || !have_leaf || !have_pub)
        return mv_err_set(err, MV_EMALFORMED, "the proof lacks its serial, index, leaf or key");
    if (want_pub && CRYPTO_memcmp(want_pub, pub, 32) != 0)
        return mv_err_set(err, MV_ECRYPTO, "the proof's key is not the key given");
    memcpy(out->pub, pub, 32);
    /* The note names its log; its signature must be by that name and key. */
    const uint8_t *np0 = p + at;
    const uint8_t *nl = memchr(np0, '\n', n - at);
    size_t ol = nl ? (size_t)(nl - np0) : 0;
    if (!nl || ol == 0 || ol >= sizeof out->origin)
        return mv_err_set(err, MV_EMALFORMED, "the proof's tree head has no origin line");
    memcpy(out->origin, np0, ol);
    out->origin[ol] = 0;
    if ((st = mv_note_parse_checkpoint(np0, n - at, out->origin, pub, &c, err))) {
        mv_err_prefix(err, "the proof's tree head: ");
        goto done;
    }
    out->size = c.size;
    leaf l;
    if (leaf_decode(leafb, ll, &l) < 0 || l.type != MV_LEAF_MESSAGE ||
        mv_be64_get(l.rkey) != out->serial) {
        st = mv_err_set(err, MV_ECRYPTO, "the proof's leaf is not message %llu's",
                        (unsigned long long)out->serial);
        goto done;
    }
    out->received_us = l.time_us;
    uint8_t lh[32];
    mv_merkle_leaf_hash(leafb, ll, lh);
    if (!mv_merkle_verify_inclusion(out->index, c.size, lh, (const uint8_t(*)[32])path, np,
                                    c.root)) {
        st = mv_err_set(err, MV_ECRYPTO,
                        "the inclusion proof does not lead to the tree head's root");
        goto done;
    }
    if (head) {
        if ((st = mv_note_parse_checkpoint(head, hn, out->origin, pub, &h, err))) {
            mv_err_prefix(err, "the tree head given: ");
            goto done;
        }
        if (h.size != c.size) {
            st = mv_err_set(err, MV_ECRYPTO,
                            "the proof was made against tree size %llu, the head given has "
                            "size %llu: make it with `mailvault proof %llu --head FILE`",
                            (unsigned long long)c.size, (unsigned long long)h.size,
                            (unsigned long long)out->serial);
            goto done;
        }
        if (CRYPTO_memcmp(h.root, c.root, 32) != 0) {
            st = mv_err_set(err, MV_ECRYPTO,
                            "the head given and the proof's head have one size and two roots: "
                            "the log was forked or rewritten");
            goto done;
        }
        out->against_head = 1;
    }
done:
    mv_checkpoint_clear(&c);
    mv_checkpoint_clear(&h);
    return st;
}

/* ---- verify ------------------------------------------------------------------ */

typedef struct head_ref {
    uint64_t no, size;
    uint8_t root[32];
} head_ref;

typedef struct vctx {
    mv_store *s;
    const mv_verify_opts *o;
    mv_verify_result *r;
    head_ref *heads;
    size_t nheads, next_head;
    uint64_t salt_serial;
    uint8_t salt[32];
    int salt_ok;
    mv_buf plain, v;
    uint64_t last_serial; /* of the last message leaf */
    int node_bad;
    rocksdb_iterator_t *lvl[64]; /* one per tree level: stored nodes come in order */
    uint64_t blob_serial;        /* the last message whose blob verified, and its id: */
    uint8_t blob_id[32];         /* a copy with the same bytes is not read twice */
    /* shared by the leaf walker and the record workers (each a vctx of its
     * own, with its own buffers, caches and counters in r) */
    pthread_mutex_t *mu;
    uint64_t *failures;
    /* A worker's failures wait here for the calling thread, which hands
     * them to o->fail (the caller's output may be bound to its thread). */
    int worker;
    mv_buf *pending;
    const uint64_t *tomb; /* purged serials, sorted (read-only while workers run) */
    size_t ntomb;
    /* a worker's leaves come mostly in key order: records are read by
     * walking one iterator per column family, not a lookup each */
    rocksdb_iterator_t *cur[CF_COUNT];
} vctx;

static void fail(vctx *c, uint64_t serial, const char *fmt, ...) MV_PRINTF(3, 4);
static void fail(vctx *c, uint64_t serial, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(c->mu);
    (*c->failures)++;
    if (c->worker) {
        mv_buf_put_u64(c->pending, serial);
        mv_buf_put_str(c->pending, msg);
    }
    pthread_mutex_unlock(c->mu);
    if (!c->worker && c->o->fail)
        c->o->fail(c->o->ctx, serial, msg);
}

/* flush_fails - hand the workers' failures to o->fail (calling thread). */
static void flush_fails(vctx *c)
{
    mv_buf b = MV_BUF_INIT;
    pthread_mutex_lock(c->mu);
    if (c->pending->len) {
        b = *c->pending;
        *c->pending = (mv_buf)MV_BUF_INIT;
    }
    pthread_mutex_unlock(c->mu);
    mv_rd r;
    mv_rd_init(&r, b.data, b.len);
    while (r.left && !r.bad) {
        uint64_t serial = mv_rd_u64(&r);
        char *msg = mv_rd_str(&r);
        if (msg && c->o->fail)
            c->o->fail(c->o->ctx, serial, msg);
        free(msg);
    }
    mv_buf_free(&b);
}

static mv_status discard(void *ctx, const uint8_t *p, size_t n, mv_err *err)
{
    (void)p, (void)err;
    *(uint64_t *)ctx += n;
    return MV_OK;
}

static mv_status load_heads(vctx *c, mv_err *err)
{
    mv_store *s = c->s;
    uint8_t k0[9];
    head_key(k0, 0);
    mv_status st = MV_OK;
    size_t cap = 0;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_LOG]);
    for (rocksdb_iter_seek(it, (const char *)k0, 9); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl != 9 || k[0] != 'h')
            break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        uint64_t no = mv_be64_get(k + 1);
        mv_checkpoint h = {0};
        mv_err e = {0};
        c->r->heads++;
        if (parse_head(s, v, vl, &h, &e)) {
            fail(c, 0, "signed tree head %llu does not verify: %s", (unsigned long long)no, e.msg);
            continue;
        }
        if (c->nheads == cap) {
            cap = cap ? cap * 2 : 64;
            c->heads = mv_xrealloc(c->heads, cap * sizeof *c->heads);
        }
        head_ref *hr = &c->heads[c->nheads++];
        hr->no = no;
        hr->size = h.size;
        memcpy(hr->root, h.root, 32);
        mv_checkpoint_clear(&h);
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    if (e)
        st = mv_st_rocks_err(err, e, "reading tree heads");
    return st;
}

static int cmp_head(const void *a, const void *b)
{
    const head_ref *x = a, *y = b;
    return x->size < y->size ? -1 : x->size > y->size ? 1 : x->no < y->no ? -1 : x->no > y->no;
}

static void check_node(void *ctx, unsigned level, uint64_t index, const uint8_t h[32])
{
    vctx *c = ctx;
    uint8_t k[10];
    if (level < NODE_MIN_LEVEL || level >= 64) /* below: not stored (get_node) */
        return;
    node_key(k, level, index);
    /* The nodes of a level are emitted in index order: walk them with one
     * iterator per level rather than a lookup each. */
    rocksdb_iterator_t *it = c->lvl[level];
    size_t kl = 0, vl = 0;
    const char *ik = NULL;
    if (!it) {
        it = c->lvl[level] = rocksdb_create_iterator_cf(c->s->db, c->s->ro, c->s->cf[CF_LOG]);
        rocksdb_iter_seek(it, (const char *)k, sizeof k);
    } else {
        rocksdb_iter_next(it);
        if (rocksdb_iter_valid(it))
            ik = rocksdb_iter_key(it, &kl);
        if (!ik || kl != sizeof k || memcmp(ik, k, sizeof k) != 0)
            rocksdb_iter_seek(it, (const char *)k, sizeof k);
    }
    int found = 0, same = 0;
    if (rocksdb_iter_valid(it)) {
        ik = rocksdb_iter_key(it, &kl);
        if (kl == sizeof k && memcmp(ik, k, sizeof k) == 0) {
            const char *v = rocksdb_iter_value(it, &vl);
            found = 1;
            same = vl == 32 && CRYPTO_memcmp(v, h, 32) == 0;
        }
    }
    if (!same && c->node_bad++ < 10)
        fail(c, 0, "integrity log node (%u, %llu) is %s", level, (unsigned long long)index,
             found ? "not the hash of its leaves" : "missing");
}

/* record_digest - recompute the digest a leaf claims from its record. */
/* cursor_get - the value at key in cf through the worker's iterator:
 * a few steps forward when the key is near, a seek otherwise. */
static mv_status cursor_get(vctx *c, int cf, const uint8_t *key, size_t kl, mv_buf *out,
                            mv_err *err)
{
    rocksdb_iterator_t *it = c->cur[cf];
    size_t ckl = 0;
    const char *ck = NULL;
    int cmp = 1;
    if (!it) {
        it = c->cur[cf] = rocksdb_create_iterator_cf(c->s->db, c->s->ro, c->s->cf[cf]);
        rocksdb_iter_seek(it, (const char *)key, kl);
    } else {
        for (int steps = 0;; steps++) {
            if (!rocksdb_iter_valid(it)) {
                rocksdb_iter_seek(it, (const char *)key, kl);
                break;
            }
            ck = rocksdb_iter_key(it, &ckl);
            size_t m = ckl < kl ? ckl : kl;
            cmp = memcmp(ck, key, m);
            if (!cmp)
                cmp = ckl < kl ? -1 : ckl > kl;
            if (cmp >= 0 && steps == 0 && cmp > 0) {
                rocksdb_iter_seek(it, (const char *)key, kl); /* behind us */
                break;
            }
            if (cmp >= 0)
                break;
            if (steps == 4) {
                rocksdb_iter_seek(it, (const char *)key, kl);
                break;
            }
            rocksdb_iter_next(it);
        }
    }
    mv_buf_reset(out);
    if (rocksdb_iter_valid(it)) {
        ck = rocksdb_iter_key(it, &ckl);
        if (ckl == kl && memcmp(ck, key, kl) == 0) {
            size_t vl;
            const char *v = rocksdb_iter_value(it, &vl);
            mv_buf_append(out, v, vl);
            return MV_OK;
        }
        return MV_ENOTFOUND;
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    return e ? mv_st_rocks_err(err, e, "reading records") : MV_ENOTFOUND;
}

static mv_status cursor_open(vctx *c, int cf, int fam, const uint8_t *key, size_t kl,
                             mv_err *err)
{
    mv_status st = cursor_get(c, cf, key, kl, &c->v, err);
    mv_buf_reset(&c->plain);
    if (!st)
        st = mv_open_record(c->s->keys, fam, key, kl, c->v.data, c->v.len, &c->plain, err);
    return st;
}

static mv_status record_digest(vctx *c, const leaf *l, uint64_t serial, uint8_t d[32], mv_err *err)
{
    mv_store *s = c->s;
    static const struct {
        int type, cf, fam;
    } map[] = {{MV_LEAF_MESSAGE, CF_MSG, MV_FAM_MSG},
               {MV_LEAF_COPY, CF_COPY, MV_FAM_COPY},
               {MV_LEAF_ATTR, CF_ATTR, MV_FAM_ATTR},
               {MV_LEAF_AUDIT, CF_AUDIT, MV_FAM_AUDIT},
               {MV_LEAF_POLICY, CF_POLICY, MV_FAM_META},
               {MV_LEAF_HOLD, CF_HOLD, MV_FAM_META}};
    size_t i = 0;
    while (map[i].type != l->type)
        i++;
    mv_status st = cursor_open(c, map[i].cf, map[i].fam, l->rkey, l->rkl, err);
    if (st)
        return st;
    if (l->type == MV_LEAF_AUDIT || l->type == MV_LEAF_POLICY || l->type == MV_LEAF_HOLD) {
        leaf_digest(s, l->type, l->rkey, l->rkl, NULL, c->plain.data, c->plain.len, d);
        return MV_OK;
    }
    if (!c->salt_ok || c->salt_serial != serial) {
        uint8_t sk[8];
        mv_buf sp = MV_BUF_INIT;
        c->salt_ok = 0;
        mv_be64_put(sk, serial);
        st = cursor_get(c, CF_SALT, sk, 8, &c->v, err);
        if (!st)
            st = mv_open_record(s->keys, MV_FAM_SALT, sk, 8, c->v.data, c->v.len, &sp, err);
        if (!st && sp.len != 32)
            st = mv_err_set(err, MV_EMALFORMED, "its log salt is damaged");
        if (!st)
            memcpy(c->salt, sp.data, 32);
        mv_buf_wipe(&sp);
        if (st) {
            if (st == MV_ENOTFOUND)
                st = mv_err_set(err, MV_ENOTFOUND, "its log salt is missing");
            return st;
        }
        c->salt_ok = 1;
        c->salt_serial = serial;
    }
    leaf_digest(s, l->type, l->rkey, l->rkl, c->salt, c->plain.data, c->plain.len, d);
    return MV_OK;
}

/* continuity - message leaves come in serial order, one per serial (the
 * committer gives serials in the order of its batches); a gap is a
 * message gone. */
static void continuity(vctx *c, uint64_t index, const uint8_t *p, size_t n)
{
    leaf l;
    if (leaf_decode(p, n, &l) < 0) {
        fail(c, 0, "leaf %llu of the integrity log does not parse", (unsigned long long)index);
        return;
    }
    if (l.type != MV_LEAF_MESSAGE)
        return;
    uint64_t serial = mv_be64_get(l.rkey);
    if (serial != c->last_serial + 1) {
        if (serial > c->last_serial + 1)
            fail(c, c->last_serial + 1,
                 "serials %llu to %llu are missing from the log "
                 "(no tombstone stands for them)",
                 (unsigned long long)(c->last_serial + 1), (unsigned long long)(serial - 1));
        else
            fail(c, serial, "message %llu appears in the log twice or out of order",
                 (unsigned long long)serial);
    }
    if (serial > c->last_serial)
        c->last_serial = serial;
}

static int cmp_serial(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* load_tombs - the serials purged, from the tombstones ('t' keys, in order). */
static mv_status load_tombs(vctx *c, uint64_t **out, size_t *n, mv_err *err)
{
    mv_store *s = c->s;
    uint8_t k0[9] = {'t'};
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_LOG]);
    for (rocksdb_iter_seek(it, (const char *)k0, 9); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl != 9 || k[0] != 't')
            break;
        if (*n == cap)
            *out = mv_xrealloc(*out, (cap = cap ? cap * 2 : 256) * sizeof **out);
        (*out)[(*n)++] = mv_be64_get(k + 1);
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    return e ? mv_st_rocks_err(err, e, "reading tombstones") : MV_OK;
}

/* check_tombstone - the signed record a 'T' leaf stands for. */
static void check_tombstone(vctx *c, const leaf *l, uint64_t serial)
{
    mv_store *s = c->s;
    uint8_t k[9], d[32], pub[32];
    k[0] = 't';
    mv_be64_put(k + 1, serial);
    mv_err e = {0};
    mv_buf rec = MV_BUF_INIT;
    mv_status st = mv_st_get(s, CF_LOG, k, 9, &rec, &e);
    if (st) {
        fail(c, serial, "the tombstone of message %llu is missing", (unsigned long long)serial);
        goto out;
    }
    public_digest(l->type, l->rkey, l->rkl, rec.data, rec.len, d);
    if (CRYPTO_memcmp(d, l->digest, 32) != 0 || rec.len < 64 + 17 ||
        mv_be64_get(rec.data + 1) != serial) {
        fail(c, serial, "the tombstone of message %llu is not the one logged", (unsigned long long)serial);
        goto out;
    }
    mv_buf in = MV_BUF_INIT;
    mv_buf_append(&in, "mailvault/v1/tombstone", sizeof "mailvault/v1/tombstone");
    mv_buf_append(&in, rec.data, rec.len - 64);
    mv_keys_signing_public(s->keys, pub);
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = pk && md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) > 0 &&
             EVP_DigestVerify(md, rec.data + rec.len - 64, 64, in.data, in.len) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    mv_buf_free(&in);
    if (!ok)
        fail(c, serial, "the tombstone of message %llu is not signed by this archive",
             (unsigned long long)serial);
out:
    mv_buf_free(&rec);
}

/* verify_record - the record a leaf stands for, and the bytes it names. */
static void verify_record(vctx *c, uint64_t index, const uint8_t *p, size_t n)
{
    (void)index;
    mv_store *s = c->s;
    leaf l;
    if (leaf_decode(p, n, &l) < 0)
        return; /* said by continuity() */
    uint64_t serial = mv_be64_get(l.rkey);
    if (l.type == MV_LEAF_TOMBSTONE) {
        check_tombstone(c, &l, serial);
        return;
    }
    if (l.type != MV_LEAF_AUDIT && l.type != MV_LEAF_POLICY && l.type != MV_LEAF_HOLD &&
        c->ntomb && bsearch(&serial, c->tomb, c->ntomb, sizeof *c->tomb, cmp_serial)) {
        /* purged: its records are gone, its tombstone stands for it */
        if (l.type == MV_LEAF_MESSAGE)
            c->r->purged++;
        return;
    }
    int global = l.type == MV_LEAF_AUDIT || l.type == MV_LEAF_POLICY || l.type == MV_LEAF_HOLD;
    uint64_t who = global ? 0 : serial;
    const char *what = l.type == MV_LEAF_MESSAGE ? "message record"
                       : l.type == MV_LEAF_COPY  ? "copy record"
                       : l.type == MV_LEAF_ATTR  ? "attribute record"
                                                 : "audit record";
    char rid[48];
    if (global)
        snprintf(rid, sizeof rid, "%s %llu",
                 l.type == MV_LEAF_AUDIT    ? "audit record"
                 : l.type == MV_LEAF_POLICY ? "retention policy version"
                                            : "hold record",
                 (unsigned long long)serial);
    else if (l.type == MV_LEAF_MESSAGE)
        snprintf(rid, sizeof rid, "message record");
    else
        snprintf(rid, sizeof rid, "%s %u", what, mv_be32_get(l.rkey + 8) & 0x7fffffffu);
    mv_err e = {0};
    mv_status st;
    uint8_t d[32];
    memset(&e, 0, sizeof e);
    st = record_digest(c, &l, serial, d, &e);
    if (st == MV_ENOTFOUND && !strstr(e.msg, "salt")) {
        fail(c, who, "%s is missing", rid);
        return;
    }
    if (st) {
        fail(c, who, "%s: %s", rid, e.msg);
        return;
    }
    if (CRYPTO_memcmp(d, l.digest, 32) != 0) {
        fail(c, who, "%s is not the record the integrity log holds (altered or replaced)", rid);
        return;
    }
    /* the bytes the record describes */
    memset(&e, 0, sizeof e);
    uint8_t bid[32], sha[32];
    switch (l.type) {
    case MV_LEAF_MESSAGE:
    case MV_LEAF_COPY:
        if (mv_st_blob_of(l.type == MV_LEAF_MESSAGE ? MV_FAM_MSG : MV_FAM_COPY, c->plain.data,
                          c->plain.len, bid, sha) < 0) {
            st = mv_err_set(&e, MV_EMALFORMED, "%s does not parse", rid);
            break;
        }
        if (l.type == MV_LEAF_COPY && c->blob_serial == serial && !memcmp(bid, c->blob_id, 32))
            break; /* the message's own bytes, verified with it */
        st = mv_st_check_blob(s, bid, sha, &c->r->bytes, &e);
        if (!st && l.type == MV_LEAF_MESSAGE)
            c->blob_serial = serial, memcpy(c->blob_id, bid, 32);
        else if (st)
            mv_err_prefix(&e,
                          "%s bytes: ", l.type == MV_LEAF_MESSAGE ? "the message's" : "the copy's");
        break;
    case MV_LEAF_ATTR:
        if (mv_be32_get(l.rkey + 8) & 0x80000000u) {
            uint64_t skip = 0;
            st = mv_store_read_decrypted(s, serial, discard, &skip, &e);
            if (st == MV_ENOTFOUND) /* a decryption that failed: no plaintext to read */
                st = MV_OK;
        }
        break;
    default:
        break;
    }
    if (st) {
        fail(c, who, "%s", e.msg);
        return;
    }
    /* what verified in full */
    if (l.type == MV_LEAF_MESSAGE)
        c->r->messages++;
    else if (l.type == MV_LEAF_COPY)
        c->r->copies++;
    else if (l.type == MV_LEAF_ATTR)
        c->r->attributes++;
    else
        c->r->audits++;
}

/* ---- the record workers: leaves are handed over in batches ------------ */

#define VBATCH 256u
#define VQUEUE 8u /* batches in flight: bounds verify's memory */
#define VWORKERS_MAX 8u

typedef struct vbatch {
    size_t n;
    uint64_t index[VBATCH];
    uint8_t len[VBATCH];
    uint8_t leaf[VBATCH][LEAF_MAX];
} vbatch;

typedef struct vqueue {
    pthread_mutex_t mu;
    pthread_cond_t can_put, can_get;
    vbatch *q[VQUEUE];
    size_t head, n;
    int done;
} vqueue;

typedef struct vworker {
    vctx c;
    vqueue *q;
    mv_verify_result r;
    pthread_t t;
} vworker;

static void vq_put(vqueue *q, vbatch *b)
{
    pthread_mutex_lock(&q->mu);
    while (q->n == VQUEUE)
        pthread_cond_wait(&q->can_put, &q->mu);
    q->q[(q->head + q->n++) % VQUEUE] = b;
    pthread_cond_signal(&q->can_get);
    pthread_mutex_unlock(&q->mu);
}

static vbatch *vq_get(vqueue *q)
{
    pthread_mutex_lock(&q->mu);
    while (!q->n && !q->done)
        pthread_cond_wait(&q->can_get, &q->mu);
    vbatch *b = NULL;
    if (q->n) {
        b = q->q[q->head];
        q->head = (q->head + 1) % VQUEUE;
        q->n--;
        pthread_cond_signal(&q->can_put);
    }
    pthread_mutex_unlock(&q->mu);
    return b;
}

static void *vworker_main(void *arg)
{
    vworker *w = arg;
    vbatch *b;
    while ((b = vq_get(w->q))) {
        for (size_t i = 0; i < b->n; i++)
            verify_record(&w->c, b->index[i], b->leaf[i], b->len[i]);
        free(b);
    }
    return NULL;
}

static unsigned vworkers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : n > (long)VWORKERS_MAX ? VWORKERS_MAX : (unsigned)n;
}

/* unlogged - walk the records of cf beside the log's index of them
 * ('r' keys, in the same order): a record no leaf stands for was written
 * behind the log's back; an index entry pointing past the log is damage.
 * (A leaf whose record is gone was reported by the leaf pass.) */
static mv_status unlogged(vctx *c, int cf, int type, const char *what, uint64_t leaves, mv_err *err)
{
    mv_store *s = c->s;
    unsigned shown = 0;
    uint8_t pre[2] = {'r', (uint8_t)type};
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[cf]);
    rocksdb_iterator_t *ri = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_LOG]);
    rocksdb_iter_seek_to_first(it);
    rocksdb_iter_seek(ri, (const char *)pre, 2);
    while (rocksdb_iter_valid(it)) {
        size_t kl, rkl = 0, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        const uint8_t *rk = NULL;
        if (rocksdb_iter_valid(ri)) {
            rk = (const uint8_t *)rocksdb_iter_key(ri, &rkl);
            if (rkl < 2 || memcmp(rk, pre, 2) != 0)
                rk = NULL;
        }
        int cmp = 1; /* record < index entry: the record has no leaf */
        if (rk) {
            size_t m = kl < rkl - 2 ? kl : rkl - 2;
            cmp = memcmp(k, rk + 2, m);
            if (!cmp)
                cmp = kl < rkl - 2 ? -1 : kl > rkl - 2;
            cmp = cmp < 0 ? 1 : cmp > 0 ? -1 : 0;
        }
        if (cmp == 0) {
            const uint8_t *v = (const uint8_t *)rocksdb_iter_value(ri, &vl);
            if ((vl != 8 || mv_be64_get(v) >= leaves) && shown++ < 100)
                fail(c, type == MV_LEAF_AUDIT || type == MV_LEAF_POLICY || type == MV_LEAF_HOLD ? 0 : mv_be64_get(k),
                     "the log's index of %s %llu is damaged", what,
                     (unsigned long long)mv_be64_get(k));
            rocksdb_iter_next(it);
            rocksdb_iter_next(ri);
        } else if (cmp > 0) {
            if ((kl == 8 || kl == 12) && shown++ < 100)
                fail(c, type == MV_LEAF_AUDIT || type == MV_LEAF_POLICY || type == MV_LEAF_HOLD ? 0 : mv_be64_get(k),
                     "%s %llu%s has no leaf in the integrity log (written behind its back)", what,
                     (unsigned long long)mv_be64_get(k), kl == 12 ? "/…" : "");
            rocksdb_iter_next(it);
        } else {
            rocksdb_iter_next(ri);
        }
    }
    char *e = NULL, *e2 = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_get_error(ri, &e2);
    rocksdb_iter_destroy(it);
    rocksdb_iter_destroy(ri);
    rocksdb_free(e2);
    return e ? mv_st_rocks_err(err, e, "reading records") : MV_OK;
}

mv_status mv_store_verify(mv_store *s, const mv_verify_opts *o, mv_verify_result *r, mv_err *err)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    mv_buf pending = MV_BUF_INIT;
    vctx c = {.s = s, .o = o, .r = r, .mu = &mu, .failures = &r->failures, .pending = &pending};
    mv_checkpoint kept = {0};
    int have_kept = 0;
    uint64_t *tomb = NULL;
    size_t ntomb = 0;
    mv_status st = load_heads(&c, err);
    if (!st)
        st = load_tombs(&c, &tomb, &ntomb, err);
    c.tomb = tomb;
    c.ntomb = ntomb;
    if (!st && o->checkpoint) {
        mv_err e = {0};
        if (parse_head(s, o->checkpoint, o->checkpoint_len, &kept, &e))
            fail(&c, 0, "the checkpoint given is not a tree head signed by this archive: %s",
                 e.msg);
        else
            have_kept = 1, r->checkpoint_size = kept.size;
    }
    if (st)
        goto out;
    if (c.nheads)
        qsort(c.heads, c.nheads, sizeof *c.heads, cmp_head);
    pthread_mutex_lock(&s->log_mu);
    mv_merkle_frontier edge = s->log_front;
    pthread_mutex_unlock(&s->log_mu);
    uint64_t total = edge.size;
    mv_merkle_frontier f;
    mv_merkle_frontier_init(&f);
    uint8_t k0[9];
    leaf_key(k0, 0);
    /* Records and their bytes are checked by workers, leaves walked and
     * the tree recomputed here. */
    vqueue q = {.head = 0};
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.can_put, NULL);
    pthread_cond_init(&q.can_get, NULL);
    unsigned nw = vworkers();
    vworker *ws = mv_xcalloc(nw, sizeof *ws);
    for (unsigned i = 0; i < nw; i++) {
        ws[i].c = (vctx){.s = s,
                         .o = o,
                         .r = &ws[i].r,
                         .mu = c.mu,
                         .failures = c.failures,
                         .worker = 1,
                         .pending = c.pending,
                         .tomb = tomb,
                         .ntomb = ntomb};
        ws[i].q = &q;
    }
    unsigned started = 0; /* none: the records are checked here, in turn */
    while (started < nw && pthread_create(&ws[started].t, NULL, vworker_main, &ws[started]) == 0)
        started++;
    vbatch *batch = NULL;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_LOG]);
    for (rocksdb_iter_seek(it, (const char *)k0, 9); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl != 9 || k[0] != 'l')
            break;
        uint64_t index = mv_be64_get(k + 1);
        if (index >= total) /* appended since verify began */
            break;
        if (index != f.size) {
            fail(&c, 0, "integrity log leaves %llu to %llu are missing", (unsigned long long)f.size,
                 (unsigned long long)(index - 1));
            break; /* the tree beyond a hole cannot be recomputed */
        }
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        uint8_t h[32], root[32];
        mv_merkle_leaf_hash(v, vl, h);
        mv_merkle_frontier_append(&f, h, check_node, &c);
        continuity(&c, index, v, vl);
        if (!started) {
            verify_record(&c, index, v, vl);
        } else {
            if (!batch)
                batch = mv_xmalloc(sizeof *batch), batch->n = 0;
            batch->index[batch->n] = index;
            batch->len[batch->n] = (uint8_t)(vl <= LEAF_MAX ? vl : 0);
            memcpy(batch->leaf[batch->n], v, vl <= LEAF_MAX ? vl : 0);
            if (++batch->n == VBATCH) {
                vq_put(&q, batch), batch = NULL;
                flush_fails(&c);
            }
        }
        r->leaves++;
        while (c.next_head < c.nheads && c.heads[c.next_head].size <= f.size) {
            head_ref *hr = &c.heads[c.next_head++];
            if (hr->size != f.size)
                continue; /* a head at size 0: empty root, checked below */
            mv_merkle_frontier_root(&f, root);
            if (CRYPTO_memcmp(root, hr->root, 32) != 0)
                fail(&c, 0,
                     "signed tree head %llu (size %llu) does not match the log: the "
                     "log was altered after it was signed",
                     (unsigned long long)hr->no, (unsigned long long)hr->size);
        }
        if (have_kept && kept.size == f.size) {
            mv_merkle_frontier_root(&f, root);
            r->checkpoint_checked = 1;
            if (CRYPTO_memcmp(root, kept.root, 32) != 0)
                fail(&c, 0,
                     "the archive's tree at size %llu is not the checkpoint given: its "
                     "history was rewritten (or the archive rolled back and refilled)",
                     (unsigned long long)kept.size);
        }
        if (o->progress && (r->leaves & 1023) == 0)
            o->progress(o->ctx, r->leaves, total);
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    if (batch)
        vq_put(&q, batch);
    pthread_mutex_lock(&q.mu);
    q.done = 1;
    pthread_cond_broadcast(&q.can_get);
    pthread_mutex_unlock(&q.mu);
    for (unsigned i = 0; i < nw; i++) {
        if (i < started)
            pthread_join(ws[i].t, NULL);
        r->messages += ws[i].r.messages;
        r->copies += ws[i].r.copies;
        r->attributes += ws[i].r.attributes;
        r->audits += ws[i].r.audits;
        r->purged += ws[i].r.purged;
        r->bytes += ws[i].r.bytes;
        mv_buf_wipe(&ws[i].c.plain);
        mv_buf_free(&ws[i].c.v);
        for (int k = 0; k < CF_COUNT; k++)
            if (ws[i].c.cur[k])
                rocksdb_iter_destroy(ws[i].c.cur[k]);
        OPENSSL_cleanse(ws[i].c.salt, sizeof ws[i].c.salt);
    }
    free(ws);
    flush_fails(&c);
    pthread_mutex_destroy(&q.mu);
    pthread_cond_destroy(&q.can_put);
    pthread_cond_destroy(&q.can_get);
    if (e) {
        st = mv_st_rocks_err(err, e, "reading the integrity log");
        goto out;
    }
    if (f.size < total)
        fail(&c, 0,
             "the integrity log has %llu leaves where its state says %llu: its tail is "
             "missing",
             (unsigned long long)f.size, (unsigned long long)total);
    else {
        uint8_t a[32], b[32];
        mv_merkle_frontier_root(&f, a);
        mv_merkle_frontier_root(&edge, b);
        if (CRYPTO_memcmp(a, b, 32) != 0)
            fail(&c, 0, "the integrity log's stored right edge is not its leaves' tree");
    }
    for (; c.next_head < c.nheads; c.next_head++)
        if (c.heads[c.next_head].size > f.size)
            fail(&c, 0,
                 "signed tree head %llu covers %llu leaves, the log has %llu: its tail "
                 "was cut",
                 (unsigned long long)c.heads[c.next_head].no,
                 (unsigned long long)c.heads[c.next_head].size, (unsigned long long)f.size);
    if (have_kept && kept.size > f.size)
        fail(&c, 0,
             "the checkpoint given covers %llu leaves, the archive's log only %llu: the "
             "log was truncated or the archive rolled back to an older copy",
             (unsigned long long)kept.size, (unsigned long long)f.size);
    else if (have_kept && kept.size == 0)
        r->checkpoint_checked = 1;
    uint64_t last = mv_store_last_serial(s);
    if (c.last_serial < last)
        fail(&c, c.last_serial + 1, "messages %llu to %llu have no leaf in the integrity log",
             (unsigned long long)(c.last_serial + 1), (unsigned long long)last);
    if ((st = unlogged(&c, CF_MSG, MV_LEAF_MESSAGE, "message", f.size, err)) ||
        (st = unlogged(&c, CF_COPY, MV_LEAF_COPY, "copy of message", f.size, err)) ||
        (st = unlogged(&c, CF_ATTR, MV_LEAF_ATTR, "attribute of message", f.size, err)) ||
        (st = unlogged(&c, CF_AUDIT, MV_LEAF_AUDIT, "audit record", f.size, err)) ||
        (st = unlogged(&c, CF_POLICY, MV_LEAF_POLICY, "retention policy version", f.size, err)) ||
        (st = unlogged(&c, CF_HOLD, MV_LEAF_HOLD, "hold record", f.size, err)))
        goto out;
    if (o->progress)
        o->progress(o->ctx, r->leaves, total);
out:
    for (int i = 0; i < 64; i++)
        if (c.lvl[i])
            rocksdb_iter_destroy(c.lvl[i]);
    for (int k = 0; k < CF_COUNT; k++)
        if (c.cur[k])
            rocksdb_iter_destroy(c.cur[k]);
    mv_checkpoint_clear(&kept);
    mv_buf_free(&pending);
    free(tomb);
    free(c.heads);
    mv_buf_wipe(&c.plain);
    mv_buf_free(&c.v);
    OPENSSL_cleanse(c.salt, sizeof c.salt);
    return st;
}

mv_status mv_store_tombstone(mv_store *s, uint64_t serial, mv_tombstone *t, mv_err *err)
{
    uint8_t k[9];
    k[0] = 't';
    mv_be64_put(k + 1, serial);
    mv_buf rec = MV_BUF_INIT;
    memset(t, 0, sizeof *t);
    mv_status st = mv_st_get(s, CF_LOG, k, 9, &rec, err);
    if (!st) {
        mv_rd r;
        mv_rd_init(&r, rec.data, rec.len);
        (void)mv_rd_u8(&r);
        t->serial = mv_rd_u64(&r);
        t->purged = (int64_t)(mv_rd_u64(&r) / 1000000);
        size_t bl;
        const uint8_t *b = mv_rd_lp(&r, &bl);
        t->expiry = (int64_t)mv_rd_u64(&r);
        if (r.bad || !b || bl >= sizeof t->bucket)
            st = mv_err_set(err, MV_EMALFORMED, "the tombstone of message %llu is damaged",
                            (unsigned long long)serial);
        else
            memcpy(t->bucket, b, bl), t->bucket[bl] = 0;
    }
    mv_buf_free(&rec);
    return st;
}
