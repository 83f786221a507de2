/* SPDX-License-Identifier: MIT */
/* hold.c - legal holds (docs/retention.md).
 *
 * A matter's history is a sequence of sealed records in the "hold" family
 * (key: a global sequence number), each with a leaf in the integrity log:
 * created (with its criteria and reason), members added, released (with
 * who and why).  Membership is recorded per message twice over:
 *   - an attribute record of the message (sealed in the message's bucket,
 *     with its leaf), "held by MATTER" or "released from MATTER": evidence;
 *   - keys in the "held" family, 'm' | matter id | serial and 's' | serial |
 *     matter id, empty values: what purge and the indexer look up.
 * The matter id is a keyed hash of the matter's lower-cased name (no name
 * in clear in the key).
 *
 * A held message is never purged.  When its bucket expires, purge first
 * moves it out: the DEK of each of its records and blobs is rewrapped under
 * the matter's own KEK ("hold/ID"), and the bucket's compression
 * dictionary is copied under that KEK, so destroying the bucket's key
 * leaves it readable.  A release lets it go: a message no other matter
 * holds whose bucket is gone is moved under "expired/YYYY-MM" (this month),
 * which the next purge destroys, with a tombstone. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "../lib/util.h"
#include "seal.h"
#include "store_int.h"

#define HOLD_RECORD_VERSION 1
#define ATTR_HOLD_BASE 0x40000000u /* attribute keys of hold and release records */
#define ATTR_HOLD 3
#define ATTR_RELEASE 4
#define HOLD_BATCH 512u
enum { HOLD_CREATE = 1, HOLD_ADD = 2, HOLD_RELEASE = 3 };

void mv_hold_clear(mv_hold *h)
{
    if (!h)
        return;
    free(h->matter);
    free(h->query);
    free(h->custodian);
    free(h->reason);
    free(h->by);
    free(h->released_by);
    free(h->release_reason);
    memset(h, 0, sizeof *h);
}

int mv_matter_name_ok(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > MV_MATTER_MAX)
        return 0;
    for (const unsigned char *p = (const unsigned char *)m; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* matter_id - 8 bytes of a keyed hash of the lower-cased name. */
static void matter_id(mv_store *s, const char *name, uint8_t id[8])
{
    char low[MV_MATTER_MAX + 1];
    size_t n = strlen(name);
    if (n > MV_MATTER_MAX)
        n = MV_MATTER_MAX;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    uint8_t h[32];
    mv_keys_mac2(s->keys, MV_DERIVE_LOG_MAC, "matter", 7, low, n, h);
    memcpy(id, h, 8);
}

static void hold_kek_name(const uint8_t id[8], char *out, size_t n)
{
    char hex[17];
    mv_hex(id, 8, hex);
    snprintf(out, n, "hold/%s", hex);
}

/* ---- matter records ---------------------------------------------------------- */

static void hold_encode(mv_buf *b, int action, const mv_hold *h, int64_t now, uint64_t count)
{
    mv_buf_put_u8(b, HOLD_RECORD_VERSION);
    mv_buf_put_u8(b, (uint8_t)action);
    mv_buf_put_u64(b, (uint64_t)now);
    mv_buf_put_str(b, h->matter);
    mv_buf_put_str(b, h->query);
    mv_buf_put_str(b, h->custodian);
    mv_buf_put_str(b, action == HOLD_RELEASE ? h->release_reason : h->reason);
    mv_buf_put_str(b, action == HOLD_RELEASE ? h->released_by : h->by);
    mv_buf_put_u64(b, count);
}

/* put_hold_record - the next record of the matter history, into b and lb. */
static mv_status put_hold_record(mv_store *s, rocksdb_writebatch_t *b, mv_ilog_batch *lb,
                                 int action, const mv_hold *h, int64_t now, uint64_t count,
                                 uint64_t *seq, mv_err *err)
{
    mv_buf rec = MV_BUF_INIT, tmp = MV_BUF_INIT;
    uint8_t key[8];
    mv_be64_put(key, ++*seq);
    hold_encode(&rec, action, h, now, count);
    mv_status st = mv_st_seal_put(s, b, CF_HOLD, MV_FAM_META, "holds", key, 8, &rec, &tmp, err);
    if (!st) {
        mv_ilog_add_keyed(s, lb, MV_LEAF_HOLD, key, 8, now, rec.data, rec.len);
        uint8_t v[8];
        mv_be64_put(v, *seq);
        rocksdb_writebatch_put_cf(b, s->cf[CF_DEFAULT], "hold_seq", 8, (const char *)v, 8);
    }
    mv_buf_wipe(&rec);
    mv_buf_free(&tmp);
    return st;
}

static mv_status hold_seq(mv_store *s, uint64_t *seq, mv_err *err)
{
    mv_buf v = MV_BUF_INIT;
    mv_status st = mv_st_get(s, CF_DEFAULT, "hold_seq", 8, &v, err);
    *seq = 0;
    if (st == MV_ENOTFOUND)
        st = MV_OK;
    else if (!st && v.len == 8)
        *seq = mv_be64_get(v.data);
    else if (!st)
        st = mv_err_set(err, MV_EMALFORMED, "the hold counter is damaged");
    mv_buf_free(&v);
    return st;
}

mv_status mv_store_holds(mv_store *s, mv_hold **out, size_t *n, mv_err *err)
{
    *out = NULL;
    *n = 0;
    mv_status st = MV_OK;
    mv_buf plain = MV_BUF_INIT;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_HOLD]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it) && !st; rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        mv_buf_reset(&plain);
        if (kl != 8 || (st = mv_open_record(s->keys, MV_FAM_META, k, 8, v, vl, &plain, err)))
            break;
        mv_rd r;
        mv_rd_init(&r, plain.data, plain.len);
        uint8_t ver = mv_rd_u8(&r), action = mv_rd_u8(&r);
        int64_t t = (int64_t)mv_rd_u64(&r);
        char *matter = mv_rd_str(&r), *query = mv_rd_str(&r), *cust = mv_rd_str(&r),
             *reason = mv_rd_str(&r), *by = mv_rd_str(&r);
        uint64_t count = mv_rd_u64(&r);
        if (ver != HOLD_RECORD_VERSION || r.bad || !matter) {
            free(matter), free(query), free(cust), free(reason), free(by);
            st = mv_err_set(err, MV_EMALFORMED, "hold record %llu is damaged",
                            (unsigned long long)mv_be64_get(k));
            break;
        }
        mv_hold *h = NULL;
        for (size_t i = 0; i < *n && !h; i++)
            if (strcasecmp((*out)[i].matter, matter) == 0 && !(*out)[i].released)
                h = &(*out)[i];
        if (action == HOLD_CREATE || !h) {
            *out = mv_xrealloc(*out, (*n + 1) * sizeof **out);
            h = &(*out)[(*n)++];
            memset(h, 0, sizeof *h);
            h->matter = matter, matter = NULL;
            h->query = query && *query ? query : NULL, query = h->query ? NULL : query;
            h->custodian = cust && *cust ? cust : NULL, cust = h->custodian ? NULL : cust;
            h->reason = reason, reason = NULL;
            h->by = by, by = NULL;
            h->created = t / 1000000;
        }
        if (action == HOLD_RELEASE) {
            h->released = 1;
            h->released_at = t / 1000000;
            free(h->released_by), h->released_by = by, by = NULL;
            free(h->release_reason), h->release_reason = reason, reason = NULL;
        }
        h->members += action == HOLD_RELEASE ? 0 : count;
        free(matter), free(query), free(cust), free(reason), free(by);
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    if (e && !st)
        st = mv_st_rocks_err(err, e, "reading holds");
    else
        rocksdb_free(e);
    mv_buf_wipe(&plain);
    if (st) {
        for (size_t i = 0; i < *n; i++)
            mv_hold_clear(&(*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return st;
}

/* ---- membership -------------------------------------------------------------- */

static void held_keys(uint64_t serial, const uint8_t id[8], uint8_t m[17], uint8_t sk[17])
{
    m[0] = 'm';
    memcpy(m + 1, id, 8);
    mv_be64_put(m + 9, serial);
    sk[0] = 's';
    mv_be64_put(sk + 1, serial);
    memcpy(sk + 9, id, 8);
}

int mv_store_is_held(mv_store *s, uint64_t serial)
{
    uint8_t pre[9];
    pre[0] = 's';
    mv_be64_put(pre + 1, serial);
    int held = 0;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_HELD]);
    rocksdb_iter_seek(it, (const char *)pre, 9);
    if (rocksdb_iter_valid(it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        held = kl == 17 && memcmp(k, pre, 9) == 0;
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    /* a store that cannot be read holds everything: purge must not guess */
    if (e) {
        rocksdb_free(e);
        return 1;
    }
    return held;
}

/* record_kek - the name of the KEK a message's record is sealed under now
 * (its bucket, or the matter it was moved to). */
static mv_status record_kek(mv_store *s, uint64_t serial, char *out, size_t n, mv_err *err)
{
    uint8_t key[8];
    mv_be64_put(key, serial);
    mv_buf v = MV_BUF_INIT;
    mv_status st = mv_st_get(s, CF_MSG, key, 8, &v, err);
    if (st == MV_ENOTFOUND)
        st = mv_err_set(err, MV_ENOTFOUND, "no message with serial %llu", (unsigned long long)serial);
    if (!st) {
        const char *name = mv_keys_kek_name(s->keys, mv_sealed_kek(v.data, v.len));
        if (!name)
            st = mv_err_set(err, MV_ENOKEY, "message %llu: its key is gone",
                            (unsigned long long)serial);
        else
            snprintf(out, n, "%s", name);
    }
    mv_buf_free(&v);
    return st;
}

/* next_hold_attr - the next attribute number of serial's hold records. */
static mv_status next_hold_attr(mv_store *s, uint64_t serial, uint32_t *no, mv_err *err)
{
    uint8_t hi[12];
    mv_be64_put(hi, serial);
    mv_be32_put(hi + 8, ATTR_HOLD_BASE | 0x3fffffffu);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_ATTR]);
    rocksdb_iter_seek_for_prev(it, (const char *)hi, sizeof hi);
    *no = 1;
    if (rocksdb_iter_valid(it)) {
        size_t kl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        uint32_t a = kl == 12 ? mv_be32_get(k + 8) : 0;
        if (kl == 12 && memcmp(k, hi, 8) == 0 && (a & 0xc0000000u) == ATTR_HOLD_BASE)
            *no = (a & 0x3fffffffu) + 1;
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    return e ? mv_st_rocks_err(err, e, "reading attributes") : MV_OK;
}

/* member_change - one message enters (ATTR_HOLD) or leaves (ATTR_RELEASE)
 * a matter: its attribute record with its leaf, the lookup keys, and a
 * change for the index. */
static mv_status member_write(mv_store *s, rocksdb_writebatch_t *b, mv_ilog_batch *lb,
                              uint64_t serial, const char *kek, const uint8_t salt[32], uint32_t no,
                              const uint8_t id[8], const char *matter, const char *by, int kind,
                              int64_t now, uint64_t *change, mv_buf *rec, mv_buf *tmp, mv_err *err);

static mv_status member_change(mv_store *s, rocksdb_writebatch_t *b, mv_ilog_batch *lb,
                               uint64_t serial, const uint8_t id[8], const char *matter,
                               const char *by, int kind, int64_t now, uint64_t *change,
                               mv_buf *rec, mv_buf *tmp, mv_err *err)
{
    char kek[48];
    uint8_t salt[32];
    uint32_t no;
    mv_status st = record_kek(s, serial, kek, sizeof kek, err);
    if (!st)
        st = mv_ilog_salt(s, serial, salt, err);
    if (!st)
        st = next_hold_attr(s, serial, &no, err);
    if (!st)
        st = member_write(s, b, lb, serial, kek, salt, no, id, matter, by, kind, now, change, rec,
                          tmp, err);
    OPENSSL_cleanse(salt, sizeof salt);
    return st;
}

mv_status mv_hold_member_new(mv_store *s, rocksdb_writebatch_t *b, mv_ilog_batch *lb,
                             uint64_t serial, const char *bucket, const uint8_t salt[32],
                             uint32_t no, const char *matter, int64_t now, uint64_t *change,
                             mv_buf *rec, mv_buf *tmp, mv_err *err)
{
    uint8_t id[8];
    matter_id(s, matter, id);
    return member_write(s, b, lb, serial, bucket, salt, no, id, matter, "pipeline", ATTR_HOLD, now,
                        change, rec, tmp, err);
}

static mv_status member_write(mv_store *s, rocksdb_writebatch_t *b, mv_ilog_batch *lb,
                              uint64_t serial, const char *kek, const uint8_t salt[32], uint32_t no,
                              const uint8_t id[8], const char *matter, const char *by, int kind,
                              int64_t now, uint64_t *change, mv_buf *rec, mv_buf *tmp, mv_err *err)
{
    uint8_t ak[12], m[17], sk[17];
    mv_status st;
    mv_be64_put(ak, serial);
    mv_be32_put(ak + 8, ATTR_HOLD_BASE | no);
    mv_buf_reset(rec);
    mv_buf_put_u8(rec, 1);
    mv_buf_put_u8(rec, (uint8_t)kind);
    mv_buf_put_u64(rec, (uint64_t)now);
    mv_buf_put_str(rec, matter);
    mv_buf_put_str(rec, by);
    if ((st = mv_st_seal_put(s, b, CF_ATTR, MV_FAM_ATTR, kek, ak, 12, rec, tmp, err)))
        return st;
    mv_ilog_add(s, lb, MV_LEAF_ATTR, ak, 12, now, salt, rec->data, rec->len);
    held_keys(serial, id, m, sk);
    if (kind == ATTR_HOLD) {
        rocksdb_writebatch_put_cf(b, s->cf[CF_HELD], (const char *)m, 17, "", 0);
        rocksdb_writebatch_put_cf(b, s->cf[CF_HELD], (const char *)sk, 17, "", 0);
    } else {
        rocksdb_writebatch_delete_cf(b, s->cf[CF_HELD], (const char *)m, 17);
        rocksdb_writebatch_delete_cf(b, s->cf[CF_HELD], (const char *)sk, 17);
    }
    uint8_t ck[8], cv[13];
    mv_be64_put(ck, ++*change);
    cv[0] = MV_CHANGE_HOLD;
    mv_be64_put(cv + 1, serial);
    mv_be32_put(cv + 9, 0);
    rocksdb_writebatch_put_cf(b, s->cf[CF_CHANGES], (const char *)ck, 8, (const char *)cv, 13);
    return MV_OK;
}

/* flush - write a batch of member changes with the change counter. */
static mv_status flush(mv_store *s, rocksdb_writebatch_t *b, mv_ilog_batch *lb, uint64_t change,
                       mv_err *err)
{
    uint8_t cv[8];
    mv_be64_put(cv, change);
    rocksdb_writebatch_put_cf(b, s->cf[CF_DEFAULT], "change", 6, (const char *)cv, 8);
    mv_status st = mv_ilog_write(s, b, lb, 1, err);
    if (!st)
        __atomic_store_n(&s->last_change, change, __ATOMIC_RELEASE);
    rocksdb_writebatch_clear(b);
    return st;
}

mv_status mv_store_hold_create(mv_store *s, const mv_hold *h, const uint64_t *serials, size_t n,
                               uint64_t *held, mv_err *err)
{
    *held = 0;
    if (!mv_matter_name_ok(h->matter))
        return mv_err_set(err, MV_EUSAGE, "a matter is named by 1 to %u printable bytes",
                          MV_MATTER_MAX);
    mv_hold *all = NULL;
    size_t na = 0;
    mv_status st = mv_store_holds(s, &all, &na, err);
    for (size_t i = 0; !st && i < na; i++)
        if (!all[i].released && strcasecmp(all[i].matter, h->matter) == 0)
            st = mv_err_set(err, MV_EEXIST, "matter '%s' already holds mail (hold release it "
                                            "first, or name the new matter otherwise)",
                            h->matter);
    for (size_t i = 0; i < na; i++)
        mv_hold_clear(&all[i]);
    free(all);
    if (st)
        return st;
    uint8_t id[8];
    matter_id(s, h->matter, id);
    int64_t now = mv_now_us();
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    mv_ilog_batch lb = {0};
    mv_buf rec = MV_BUF_INIT, tmp = MV_BUF_INIT;
    uint64_t seq;
    pthread_mutex_lock(&s->change_mu);
    uint64_t change = s->last_change;
    if (!(st = hold_seq(s, &seq, err)))
        st = put_hold_record(s, b, &lb, HOLD_CREATE, h, now, n, &seq, err);
    for (size_t i = 0; i < n && !st; i++) {
        st = member_change(s, b, &lb, serials[i], id, h->matter, h->by, ATTR_HOLD, now, &change,
                           &rec, &tmp, err);
        if (st == MV_ENOTFOUND) /* purged since the search: nothing to hold */
            st = MV_OK;
        else if (!st)
            (*held)++;
        if (!st && lb.n >= HOLD_BATCH)
            st = flush(s, b, &lb, change, err);
    }
    if (!st)
        st = flush(s, b, &lb, change, err);
    pthread_mutex_unlock(&s->change_mu);
    mv_ilog_batch_free(&lb);
    rocksdb_writebatch_destroy(b);
    mv_buf_wipe(&rec);
    mv_buf_free(&tmp);
    return st;
}

mv_status mv_store_hold_add(mv_store *s, const char *matter, const char *by, uint64_t serial,
                            mv_err *err)
{
    uint8_t id[8];
    matter_id(s, matter, id);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    mv_ilog_batch lb = {0};
    mv_buf rec = MV_BUF_INIT, tmp = MV_BUF_INIT;
    pthread_mutex_lock(&s->change_mu);
    uint64_t change = s->last_change;
    mv_status st = member_change(s, b, &lb, serial, id, matter, by, ATTR_HOLD, mv_now_us(),
                                 &change, &rec, &tmp, err);
    if (!st)
        st = flush(s, b, &lb, change, err);
    pthread_mutex_unlock(&s->change_mu);
    mv_ilog_batch_free(&lb);
    rocksdb_writebatch_destroy(b);
    mv_buf_wipe(&rec);
    mv_buf_free(&tmp);
    return st;
}

/* members - the serials a matter holds ('m' keys). */
static mv_status members(mv_store *s, const uint8_t id[8], uint64_t **out, size_t *n, mv_err *err)
{
    uint8_t pre[9];
    pre[0] = 'm';
    memcpy(pre + 1, id, 8);
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_HELD]);
    for (rocksdb_iter_seek(it, (const char *)pre, 9); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl != 17 || memcmp(k, pre, 9) != 0)
            break;
        if (*n == cap)
            *out = mv_xrealloc(*out, (cap = cap ? cap * 2 : 256) * sizeof **out);
        (*out)[(*n)++] = mv_be64_get(k + 9);
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    return e ? mv_st_rocks_err(err, e, "reading holds") : MV_OK;
}

mv_status mv_store_holds_of(mv_store *s, uint64_t serial, char ***names, size_t *n, mv_err *err)
{
    *names = NULL;
    *n = 0;
    uint8_t pre[9];
    pre[0] = 's';
    mv_be64_put(pre + 1, serial);
    uint8_t ids[16][8];
    size_t nid = 0;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_HELD]);
    for (rocksdb_iter_seek(it, (const char *)pre, 9); rocksdb_iter_valid(it) && nid < 16;
         rocksdb_iter_next(it)) {
        size_t kl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl != 17 || memcmp(k, pre, 9) != 0)
            break;
        memcpy(ids[nid++], k + 9, 8);
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    if (e)
        return mv_st_rocks_err(err, e, "reading holds");
    if (!nid)
        return MV_OK;
    mv_hold *all = NULL;
    size_t na = 0;
    mv_status st = mv_store_holds(s, &all, &na, err);
    for (size_t i = 0; !st && i < na; i++) {
        if (all[i].released)
            continue;
        uint8_t id[8];
        matter_id(s, all[i].matter, id);
        for (size_t j = 0; j < nid; j++)
            if (memcmp(id, ids[j], 8) == 0) {
                *names = mv_xrealloc(*names, (*n + 1) * sizeof **names);
                (*names)[(*n)++] = mv_xstrdup(all[i].matter);
                break;
            }
    }
    for (size_t i = 0; i < na; i++)
        mv_hold_clear(&all[i]);
    free(all);
    return st;
}

/* ---- moving a message's keys ---------------------------------------------------- */

/* rewrap_prefix - every sealed value of cf under key prefix pre, rewrapped
 * under KEK `to` (blob parts: only part 0 carries the key). */
static mv_status rewrap_prefix(mv_store *s, rocksdb_writebatch_t *b, int cf, const uint8_t *pre,
                               size_t pl, uint32_t to, mv_err *err)
{
    mv_status st = MV_OK;
    mv_buf out = MV_BUF_INIT;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[cf]);
    for (rocksdb_iter_seek(it, (const char *)pre, pl); rocksdb_iter_valid(it) && !st;
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl < pl || memcmp(k, pre, pl) != 0)
            break;
        if (cf == CF_BLOB && (kl != MV_BLOBKEY_LEN || mv_be32_get(k + 32) != 0))
            continue;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        if (mv_sealed_kek(v, vl) == to)
            continue;
        mv_buf_reset(&out);
        if (!(st = mv_sealed_rewrap(s->keys, v, vl, to, &out, err)))
            rocksdb_writebatch_put_cf(b, s->cf[cf], (const char *)k, kl, (const char *)out.data,
                                      out.len);
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    mv_buf_free(&out);
    if (e && !st)
        st = mv_st_rocks_err(err, e, "rewrapping");
    else
        rocksdb_free(e);
    return st;
}

/* move_message - every key of serial's records and blobs under KEK `to`. */
static mv_status move_message(mv_store *s, rocksdb_writebatch_t *b, uint64_t serial, uint32_t to,
                              mv_err *err)
{
    uint8_t key[8];
    mv_be64_put(key, serial);
    mv_message *m = NULL;
    mv_copy **cs = NULL;
    size_t nc = 0;
    mv_decryption *d = NULL;
    mv_status st = mv_store_message(s, serial, &m, err);
    if (!st)
        st = mv_store_copies(s, serial, &cs, &nc, err);
    if (!st && (st = mv_store_decryption(s, serial, &d, err)) == MV_ENOTFOUND)
        st = MV_OK;
    if (!st)
        st = rewrap_prefix(s, b, CF_BLOB, m->blob, 32, to, err);
    for (size_t i = 0; i < nc && !st; i++)
        st = rewrap_prefix(s, b, CF_BLOB, cs[i]->blob, 32, to, err);
    if (!st && d)
        st = rewrap_prefix(s, b, CF_BLOB, d->blob, 32, to, err);
    static const int cfs[] = {CF_COPY, CF_ATTR, CF_MSG, CF_SALT, CF_TEXT};
    for (size_t i = 0; i < sizeof cfs / sizeof *cfs && !st; i++)
        st = rewrap_prefix(s, b, cfs[i], key, 8, to, err);
    mv_message_free(m);
    mv_copies_free(cs, nc);
    mv_decryption_free(d);
    return st;
}

/* keep_dict - the bucket's compression dictionary, sealed again under
 * `to` beside the original (key: number | the KEK's number), so blobs
 * compressed with it still open once the bucket's key is gone. */
static mv_status keep_dict(mv_store *s, rocksdb_writebatch_t *b, const char *bucket, uint32_t to,
                           mv_err *err)
{
    char mk[64];
    snprintf(mk, sizeof mk, "dict/%s", bucket);
    mv_buf v = MV_BUF_INIT, plain = MV_BUF_INIT, out = MV_BUF_INIT;
    mv_status st = mv_st_get(s, CF_DEFAULT, mk, strlen(mk), &v, err);
    if (st == MV_ENOTFOUND || (!st && v.len != 4)) { /* no dictionary trained */
        mv_buf_free(&v);
        return MV_OK;
    }
    uint8_t key[4], copy[8];
    memcpy(key, v.data, 4);
    memcpy(copy, key, 4);
    mv_be32_put(copy + 4, to);
    if (!st)
        st = mv_st_get(s, CF_DICT, key, 4, &v, err);
    if (!st)
        st = mv_open_record(s->keys, MV_FAM_DICT, key, 4, v.data, v.len, &plain, err);
    if (!st)
        st = mv_seal_record(s->keys, to, MV_FAM_DICT, copy, 8, plain.data, plain.len, &out, err);
    if (!st)
        rocksdb_writebatch_put_cf(b, s->cf[CF_DICT], (const char *)copy, 8, (const char *)out.data,
                                  out.len);
    mv_buf_free(&v);
    mv_buf_wipe(&plain);
    mv_buf_free(&out);
    return st;
}

mv_status mv_store_move_held(mv_store *s, const char *bucket, mv_err *err)
{
    mv_hold *all = NULL;
    size_t na = 0;
    mv_status st = mv_store_holds(s, &all, &na, err);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    for (size_t i = 0; i < na && !st; i++) {
        if (all[i].released)
            continue;
        uint8_t id[8];
        char kname[48], cur[48];
        uint32_t to;
        uint64_t *v = NULL;
        size_t n = 0;
        matter_id(s, all[i].matter, id);
        hold_kek_name(id, kname, sizeof kname);
        if ((st = members(s, id, &v, &n, err)) ||
            (st = mv_keys_active_kek(s->keys, kname, &to, err))) {
            free(v);
            break;
        }
        int dict_kept = 0;
        for (size_t j = 0; j < n && !st; j++) {
            st = record_kek(s, v[j], cur, sizeof cur, err);
            if (st == MV_ENOTFOUND) {
                st = MV_OK;
                continue;
            }
            if (st || strcmp(cur, bucket) != 0)
                continue; /* not in the expiring bucket (or moved already) */
            if (!dict_kept && !(st = keep_dict(s, b, bucket, to, err)))
                dict_kept = 1;
            if (!st)
                st = move_message(s, b, v[j], to, err);
            if (!st && rocksdb_writebatch_count(b) > 10000) {
                st = mv_st_write(s, b, 1, err);
                rocksdb_writebatch_clear(b);
            }
        }
        free(v);
    }
    if (!st)
        st = mv_st_write(s, b, 1, err);
    rocksdb_writebatch_destroy(b);
    for (size_t i = 0; i < na; i++)
        mv_hold_clear(&all[i]);
    free(all);
    return st;
}

mv_status mv_store_hold_release(mv_store *s, const char *matter, const char *reason,
                                const char *by, uint64_t *released, mv_err *err)
{
    *released = 0;
    mv_hold *all = NULL, *h = NULL;
    size_t na = 0;
    mv_status st = mv_store_holds(s, &all, &na, err);
    for (size_t i = 0; !st && i < na && !h; i++)
        if (!all[i].released && strcasecmp(all[i].matter, matter) == 0)
            h = &all[i];
    if (!st && !h)
        st = mv_err_set(err, MV_ENOTFOUND, "no active hold named '%s'", matter);
    uint64_t *v = NULL;
    size_t n = 0;
    uint8_t id[8];
    if (!st) {
        matter_id(s, h->matter, id);
        st = members(s, id, &v, &n, err);
    }
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    mv_ilog_batch lb = {0};
    mv_buf rec = MV_BUF_INIT, tmp = MV_BUF_INIT;
    int64_t now = mv_now_us();
    char kname[48];
    if (!st)
        hold_kek_name(id, kname, sizeof kname);
    pthread_mutex_lock(&s->change_mu);
    uint64_t change = s->last_change, seq = 0;
    if (!st) {
        free(h->release_reason), h->release_reason = mv_xstrdup(reason);
        free(h->released_by), h->released_by = mv_xstrdup(by);
        if (!(st = hold_seq(s, &seq, err)))
            st = put_hold_record(s, b, &lb, HOLD_RELEASE, h, now, n, &seq, err);
    }
    for (size_t i = 0; i < n && !st; i++) {
        char cur[48];
        st = member_change(s, b, &lb, v[i], id, h->matter, by, ATTR_RELEASE, now, &change, &rec,
                           &tmp, err);
        if (st == MV_ENOTFOUND) {
            st = MV_OK;
            continue;
        }
        (*released)++;
        /* Moved under this matter's key when its bucket expired: under
         * another matter still holding it, or into this month's "expired"
         * bucket, which the next purge destroys. */
        if (!st && !(st = record_kek(s, v[i], cur, sizeof cur, err)) && strcmp(cur, kname) == 0) {
            char **others = NULL;
            size_t no = 0;
            char dest[48];
            uint32_t to;
            /* the 's' key of this matter is deleted in this very batch */
            st = mv_store_holds_of(s, v[i], &others, &no, err);
            const char *other = NULL;
            for (size_t k = 0; k < no && !other; k++)
                if (strcasecmp(others[k], h->matter) != 0)
                    other = others[k];
            if (other) {
                uint8_t oid[8];
                matter_id(s, other, oid);
                hold_kek_name(oid, dest, sizeof dest);
            } else {
                /* last month: expired already, so the next purge takes it */
                time_t t = (time_t)(now / 1000000);
                struct tm tm;
                gmtime_r(&t, &tm);
                int y = tm.tm_year + 1900, mo = tm.tm_mon; /* mo: last month, 1-based */
                if (mo == 0)
                    y--, mo = 12;
                snprintf(dest, sizeof dest, "expired/%04d-%02d", y, mo);
            }
            if (!st && !(st = mv_keys_active_kek(s->keys, dest, &to, err)))
                st = move_message(s, b, v[i], to, err);
            for (size_t k = 0; k < no; k++)
                free(others[k]);
            free(others);
        }
        if (!st && lb.n >= HOLD_BATCH)
            st = flush(s, b, &lb, change, err);
    }
    if (!st)
        st = flush(s, b, &lb, change, err);
    pthread_mutex_unlock(&s->change_mu);
    mv_ilog_batch_free(&lb);
    rocksdb_writebatch_destroy(b);
    mv_buf_wipe(&rec);
    mv_buf_free(&tmp);
    free(v);
    for (size_t i = 0; i < na; i++)
        mv_hold_clear(&all[i]);
    free(all);
    return st;
}
