/* SPDX-License-Identifier: MIT */
/* compliance.c - retention policy versions and bucket expiry
 * (docs/retention.md).
 *
 * A policy version is one sealed record in the "policy" family, keyed by
 * its version number (big-endian), never rewritten: the rules in force at
 * any time stay readable for an auditor.  Each version has a leaf in the
 * integrity log.  Extending a class's retention writes, for each of its
 * buckets, the bucket's new last month ("bucket_ext/BUCKET" in the default
 * family): the bucket's key simply lives longer, nothing is rewrapped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/util.h"
#include "seal.h"
#include "store_int.h"

#define POLICY_RECORD_VERSION 1

int mv_class_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= MV_CLASS_MAX)
        return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return 0;
    return 1;
}

void mv_policy_clear(mv_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->rules[i].match);
    free(p->rules);
    free(p->by);
    memset(p, 0, sizeof *p);
}

static void policy_encode(const mv_policy *p, int64_t when, const char *by, mv_buf *out)
{
    mv_buf_put_u8(out, POLICY_RECORD_VERSION);
    mv_buf_put_u64(out, (uint64_t)when);
    mv_buf_put_str(out, by);
    mv_buf_put_u32(out, (uint32_t)p->n);
    for (size_t i = 0; i < p->n; i++) {
        mv_buf_put_str(out, p->rules[i].name);
        mv_buf_put_u32(out, p->rules[i].keep_days);
        mv_buf_put_u8(out, (uint8_t)p->rules[i].kind);
        mv_buf_put_str(out, p->rules[i].match);
    }
}

static int policy_decode(const uint8_t *d, size_t n, mv_policy *p)
{
    mv_rd r;
    mv_rd_init(&r, d, n);
    if (mv_rd_u8(&r) != POLICY_RECORD_VERSION)
        return -1;
    p->changed_us = (int64_t)mv_rd_u64(&r);
    p->by = mv_rd_str(&r);
    uint32_t cnt = mv_rd_u32(&r);
    if (r.bad || cnt == 0 || cnt > MV_POLICY_RULES_MAX)
        return -1;
    p->rules = mv_xcalloc(cnt, sizeof *p->rules);
    for (uint32_t i = 0; i < cnt && !r.bad; i++) {
        char *name = mv_rd_str(&r);
        mv_policy_rule *rule = &p->rules[p->n++];
        if (!name || !mv_class_name_ok(name)) {
            free(name);
            return -1;
        }
        snprintf(rule->name, sizeof rule->name, "%s", name);
        free(name);
        rule->keep_days = mv_rd_u32(&r);
        rule->kind = (mv_rule_kind)mv_rd_u8(&r);
        rule->match = mv_rd_str(&r);
        if (rule->match && !*rule->match)
            free(rule->match), rule->match = NULL;
    }
    return r.bad || r.left ? -1 : 0;
}

mv_status mv_policy_load(mv_store *s, mv_err *err)
{
    (void)err;
    uint64_t v = 0;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_POLICY]);
    rocksdb_iter_seek_to_last(it);
    if (rocksdb_iter_valid(it)) {
        size_t kl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl == 8)
            v = mv_be64_get(k);
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    if (e)
        return mv_st_rocks_err(err, e, "reading the retention policy");
    s->policy_version = v;
    return MV_OK;
}

uint64_t mv_store_policy_version(mv_store *s)
{
    return __atomic_load_n(&s->policy_version, __ATOMIC_ACQUIRE);
}

mv_status mv_store_policy(mv_store *s, mv_policy *p, mv_err *err)
{
    memset(p, 0, sizeof *p);
    uint64_t v = mv_store_policy_version(s);
    if (!v) {
        p->rules = mv_xcalloc(1, sizeof *p->rules);
        p->n = 1;
        snprintf(p->rules[0].name, sizeof p->rules[0].name, "default");
        p->rules[0].keep_days = s->retention_days;
        p->rules[0].kind = MV_RULE_DEFAULT;
        return MV_OK;
    }
    uint8_t key[8];
    mv_be64_put(key, v);
    mv_buf val = MV_BUF_INIT, plain = MV_BUF_INIT;
    mv_status st = mv_st_get(s, CF_POLICY, key, 8, &val, err);
    if (!st)
        st = mv_open_record(s->keys, MV_FAM_META, key, 8, val.data, val.len, &plain, err);
    if (!st && policy_decode(plain.data, plain.len, p) < 0) {
        mv_policy_clear(p);
        st = mv_err_set(err, MV_EMALFORMED, "retention policy version %llu is damaged",
                        (unsigned long long)v);
    }
    if (!st)
        p->version = v;
    mv_buf_free(&val);
    mv_buf_wipe(&plain);
    return st;
}

/* policy_check - the shape every version must have. */
static mv_status policy_check(const mv_policy *p, mv_err *err)
{
    if (p->n == 0 || p->n > MV_POLICY_RULES_MAX)
        return mv_err_set(err, MV_EUSAGE, "a policy has 1 to %u rules", MV_POLICY_RULES_MAX);
    for (size_t i = 0; i < p->n; i++) {
        const mv_policy_rule *r = &p->rules[i];
        if (!mv_class_name_ok(r->name))
            return mv_err_set(err, MV_EUSAGE, "'%s' is not a rule name ([a-z0-9_-], 1 to 16)",
                              r->name);
        if (r->keep_days != MV_KEEP_FOREVER && (r->keep_days == 0 || r->keep_days > MV_KEEP_DAYS_MAX))
            return mv_err_set(err, MV_EUSAGE, "rule %s: keep 1 day to 100 years, or forever",
                              r->name);
        if ((r->kind == MV_RULE_DEFAULT) != (i + 1 == p->n))
            return mv_err_set(err, MV_EUSAGE, "the default rule, and only it, comes last");
        if (r->kind != MV_RULE_DEFAULT &&
            (!r->match || !*r->match || strlen(r->match) > MV_RULE_MATCH_MAX))
            return mv_err_set(err, MV_EUSAGE, "rule %s matches nothing", r->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->rules[j].name, r->name) == 0)
                return mv_err_set(err, MV_EUSAGE, "two rules are named %s", r->name);
    }
    return MV_OK;
}

/* ---- bucket expiry ----------------------------------------------------------- */

/* parse_month - "YYYY-MM" → months since year 0; -1 if not one. */
static long parse_month(const char *p)
{
    if (strlen(p) != 7 || p[4] != '-')
        return -1;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (p[i] < '0' || p[i] > '9'))
            return -1;
    long y = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    long m = (p[5] - '0') * 10 + (p[6] - '0');
    return m < 1 || m > 12 ? -1 : y * 12 + (m - 1);
}

/* month_start - UTC seconds of the first instant of month number mo. */
static int64_t month_start(long mo)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = (int)(mo / 12) - 1900;
    tm.tm_mon = (int)(mo % 12);
    tm.tm_mday = 1;
    return (int64_t)timegm(&tm);
}

static void ext_key(const char *bucket, char *out, size_t n)
{
    snprintf(out, n, "bucket_ext/%s", bucket);
}

/* bucket_last_month - the bucket's last month as extended (-2: forever,
 * -1: not a dated bucket). */
static long bucket_last_month(mv_store *s, const char *bucket)
{
    const char *slash = strchr(bucket, '/');
    if (!slash)
        return -1;
    long mo = strcmp(slash + 1, "forever") == 0 ? -2 : parse_month(slash + 1);
    if (mo == -1)
        return -1;
    char k[64];
    mv_buf v = MV_BUF_INIT;
    mv_err e = {0};
    ext_key(bucket, k, sizeof k);
    if (mo != -2 && mv_st_get(s, CF_DEFAULT, k, strlen(k), &v, &e) == MV_OK) {
        mv_buf_append_byte(&v, 0);
        long x = strcmp((char *)v.data, "forever") == 0 ? -2 : parse_month((char *)v.data);
        if (x == -2 || x > mo)
            mo = x;
    }
    mv_buf_free(&v);
    return mo;
}

int64_t mv_store_bucket_expiry(mv_store *s, const char *bucket)
{
    long mo = bucket_last_month(s, bucket);
    return mo < 0 ? INT64_MAX : month_start(mo + 1);
}

typedef struct class_buckets {
    const char *cls;
    char **names;
    size_t n;
} class_buckets;

static void collect_bucket(void *ctx, const mv_kek_info *ki)
{
    class_buckets *cb = ctx;
    size_t l = strlen(cb->cls);
    if (strncmp(ki->name, cb->cls, l) != 0 || ki->name[l] != '/')
        return;
    for (size_t i = 0; i < cb->n; i++)
        if (strcmp(cb->names[i], ki->name) == 0)
            return; /* rotated: several KEKs, one bucket */
    cb->names = mv_xrealloc(cb->names, (cb->n + 1) * sizeof *cb->names);
    cb->names[cb->n++] = mv_xstrdup(ki->name);
}

/* extend_class - a class's retention grew by delta days (or became
 * forever): each of its dated buckets' last month moves on as far. */
static void extend_class(mv_store *s, rocksdb_writebatch_t *b, const char *cls, uint32_t delta,
                         int forever, unsigned *extended)
{
    class_buckets cb = {cls, NULL, 0};
    mv_keys_list(s->keys, collect_bucket, &cb);
    for (size_t i = 0; i < cb.n; i++) {
        long mo = bucket_last_month(s, cb.names[i]);
        if (mo < 0)
            continue;
        char k[64], v[32];
        ext_key(cb.names[i], k, sizeof k);
        if (forever) {
            snprintf(v, sizeof v, "forever");
        } else {
            /* the bucket's latest message expires by the end of mo */
            time_t t = (time_t)(month_start(mo + 1) - 1 + (int64_t)delta * 86400);
            struct tm tm;
            gmtime_r(&t, &tm);
            snprintf(v, sizeof v, "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
        }
        rocksdb_writebatch_put_cf(b, s->cf[CF_DEFAULT], k, strlen(k), v, strlen(v));
        (*extended)++;
    }
    for (size_t i = 0; i < cb.n; i++)
        free(cb.names[i]);
    free(cb.names);
}

mv_status mv_store_policy_put(mv_store *s, const mv_policy *p, const char *by, unsigned *extended,
                              mv_err *err)
{
    *extended = 0;
    mv_status st = policy_check(p, err);
    if (st)
        return st;
    mv_policy old;
    if ((st = mv_store_policy(s, &old, err)))
        return st;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    /* Never shorter for what is archived: a class kept longer now extends
     * its buckets; kept shorter, it applies to new mail only. */
    for (size_t i = 0; i < p->n; i++)
        for (size_t j = 0; j < old.n; j++) {
            const mv_policy_rule *nr = &p->rules[i], *or = &old.rules[j];
            if (strcmp(nr->name, or->name) != 0 || or->keep_days == MV_KEEP_FOREVER ||
                nr->keep_days <= or->keep_days)
                continue;
            extend_class(s, b, nr->name,
                         nr->keep_days == MV_KEEP_FOREVER ? 0 : nr->keep_days - or->keep_days,
                         nr->keep_days == MV_KEEP_FOREVER, extended);
        }
    mv_buf rec = MV_BUF_INIT, tmp = MV_BUF_INIT;
    uint64_t v = mv_store_policy_version(s) + 1;
    uint8_t key[8];
    mv_be64_put(key, v);
    int64_t now = mv_now_us();
    policy_encode(p, now, by, &rec);
    mv_ilog_batch lb = {0};
    if (!(st = mv_st_seal_put(s, b, CF_POLICY, MV_FAM_META, "policy", key, 8, &rec, &tmp, err))) {
        mv_ilog_add_keyed(s, &lb, MV_LEAF_POLICY, key, 8, now, rec.data, rec.len);
        st = mv_ilog_write(s, b, &lb, 1, err);
    }
    if (!st)
        __atomic_store_n(&s->policy_version, v, __ATOMIC_RELEASE);
    mv_ilog_batch_free(&lb);
    rocksdb_writebatch_destroy(b);
    mv_buf_free(&rec);
    mv_buf_free(&tmp);
    mv_policy_clear(&old);
    return st;
}

/* ---- purge ------------------------------------------------------------------- */

#define PURGE_BATCH 256u
#define CLOCK_BEHIND_SLACK_US (300ll * 1000000) /* a clock this far behind the latest record is wrong */
#define TOMBSTONE_VERSION 1
static const char tomb_label[] = "mailvault/v1/tombstone";

void mv_purge_result_free(mv_purge_result *r)
{
    if (!r)
        return;
    free(r->b);
    memset(r, 0, sizeof *r);
}

typedef struct expired {
    mv_store *s;
    int64_t now;
    mv_purge_result *r;
} expired;

static void find_expired(void *ctx, const mv_kek_info *ki)
{
    expired *x = ctx;
    int64_t exp = mv_store_bucket_expiry(x->s, ki->name);
    if (exp == INT64_MAX || exp > x->now)
        return;
    for (size_t i = 0; i < x->r->n; i++)
        if (strcmp(x->r->b[i].name, ki->name) == 0)
            return;
    x->r->b = mv_xrealloc(x->r->b, (x->r->n + 1) * sizeof *x->r->b);
    mv_purge_bucket *b = &x->r->b[x->r->n++];
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", ki->name);
    b->expiry = exp;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* delete_prefix - every key of cf starting with pre, into b. */
static mv_status delete_prefix(mv_store *s, rocksdb_writebatch_t *b, int cf, const uint8_t *pre,
                               size_t pl, mv_err *err)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[cf]);
    for (rocksdb_iter_seek(it, (const char *)pre, pl); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < pl || memcmp(k, pre, pl) != 0)
            break;
        rocksdb_writebatch_delete_cf(b, s->cf[cf], k, kl);
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    return e ? mv_st_rocks_err(err, e, "purging") : MV_OK;
}

/* delete_blob - a purged message's blob, unless it was moved out of the
 * bucket (shared with a held message). */
static mv_status delete_blob(mv_store *s, rocksdb_writebatch_t *b, const uint8_t id[32],
                             const char *bucket, mv_err *err)
{
    uint8_t k0[MV_BLOBKEY_LEN];
    mv_blob_key(id, 0, k0);
    mv_buf v = MV_BUF_INIT;
    mv_status st = mv_st_get(s, CF_BLOB, k0, sizeof k0, &v, err);
    if (st == MV_ENOTFOUND) {
        mv_buf_free(&v);
        return MV_OK;
    }
    const char *name = st ? NULL : mv_keys_kek_name(s->keys, mv_sealed_kek(v.data, v.len));
    mv_buf_free(&v);
    if (st || !name || strcmp(name, bucket) != 0)
        return st;
    return delete_prefix(s, b, CF_BLOB, id, 32, err);
}

/* tombstone - the signed record that stands for a purged message, and its
 * leaf (public digest: an auditor checks it without any key of ours). */
static mv_status tombstone(mv_store *s, rocksdb_writebatch_t *b, mv_ilog_batch *lb, uint64_t serial,
                           const mv_purge_bucket *pb, int64_t now_us, mv_err *err)
{
    mv_buf rec = MV_BUF_INIT;
    mv_buf_put_u8(&rec, TOMBSTONE_VERSION);
    mv_buf_put_u64(&rec, serial);
    mv_buf_put_u64(&rec, (uint64_t)now_us);
    mv_buf_put_str(&rec, pb->name);
    mv_buf_put_u64(&rec, (uint64_t)pb->expiry);
    mv_buf sig_in = MV_BUF_INIT;
    mv_buf_append(&sig_in, tomb_label, sizeof tomb_label);
    mv_buf_append(&sig_in, rec.data, rec.len);
    uint8_t sig[64];
    mv_status st = mv_keys_sign(s->keys, sig_in.data, sig_in.len, sig, err);
    mv_buf_free(&sig_in);
    if (!st) {
        mv_buf_append(&rec, sig, 64);
        uint8_t k[9], rk[8];
        k[0] = 't';
        mv_be64_put(k + 1, serial);
        mv_be64_put(rk, serial);
        rocksdb_writebatch_put_cf(b, s->cf[CF_LOG], (const char *)k, 9, (const char *)rec.data,
                                  rec.len);
        mv_ilog_add_public(s, lb, MV_LEAF_TOMBSTONE, rk, 8, now_us, rec.data, rec.len);
    }
    mv_buf_free(&rec);
    return st;
}

/* purge_message - everything of one message out of the store, and its
 * tombstone in its place. */
static mv_status purge_message(mv_store *s, rocksdb_writebatch_t *b, mv_ilog_batch *lb,
                               uint64_t serial, const mv_purge_bucket *pb, int64_t now_us,
                               uint64_t *change, mv_err *err)
{
    mv_message *m = NULL;
    mv_copy **cs = NULL;
    size_t nc = 0;
    mv_decryption *d = NULL;
    uint8_t key[8];
    mv_be64_put(key, serial);
    mv_status st = mv_store_message(s, serial, &m, err);
    if (!st)
        st = mv_store_copies(s, serial, &cs, &nc, err);
    if (!st && (st = mv_store_decryption(s, serial, &d, err)) == MV_ENOTFOUND)
        st = MV_OK;
    if (st)
        goto out;
    /* a later identical message must not merge into a purged serial */
    uint8_t dkey[32];
    mv_keys_mac(s->keys, MV_DERIVE_DEDUP_ID, m->meta.dedup, 32, dkey);
    rocksdb_writebatch_delete_cf(b, s->cf[CF_DEDUP], (const char *)dkey, 32);
    /* Blobs are content-addressed within the bucket, which is purged as a
     * whole; a blob a held message shares was moved out with it (its key
     * is no longer the bucket's) and stays. */
    if ((st = delete_blob(s, b, m->blob, pb->name, err)))
        goto out;
    for (size_t i = 0; i < nc && !st; i++)
        st = delete_blob(s, b, cs[i]->blob, pb->name, err);
    if (!st && d)
        st = delete_blob(s, b, d->blob, pb->name, err);
    if (!st)
        st = delete_prefix(s, b, CF_COPY, key, 8, err);
    if (!st)
        st = delete_prefix(s, b, CF_ATTR, key, 8, err);
    if (st)
        goto out;
    rocksdb_writebatch_delete_cf(b, s->cf[CF_MSG], (const char *)key, 8);
    rocksdb_writebatch_delete_cf(b, s->cf[CF_SALT], (const char *)key, 8);
    rocksdb_writebatch_delete_cf(b, s->cf[CF_TEXT], (const char *)key, 8);
    /* the index drops the document when it reads this change */
    uint8_t ck[8], cv[13];
    mv_be64_put(ck, ++*change);
    cv[0] = MV_CHANGE_PURGE;
    mv_be64_put(cv + 1, serial);
    mv_be32_put(cv + 9, 0);
    rocksdb_writebatch_put_cf(b, s->cf[CF_CHANGES], (const char *)ck, 8, (const char *)cv, 13);
    st = tombstone(s, b, lb, serial, pb, now_us, err);
out:
    mv_message_free(m);
    mv_copies_free(cs, nc);
    mv_decryption_free(d);
    return st;
}

/* forget_copy_ids - re-importing a purged message's file archives it anew. */
static mv_status forget_copy_ids(mv_store *s, const uint64_t *purged, size_t n, mv_err *err)
{
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_COPYID]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        if (vl != 13 || v[0] != 2)
            continue;
        uint64_t serial = mv_be64_get(v + 1);
        if (bsearch(&serial, purged, n, sizeof *purged, cmp_u64))
            rocksdb_writebatch_delete_cf(b, s->cf[CF_COPYID], k, kl);
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    mv_status st = e ? mv_st_rocks_err(err, e, "purging") : mv_st_write(s, b, 1, err);
    rocksdb_writebatch_destroy(b);
    return st;
}

mv_status mv_store_purge(mv_store *s, const mv_purge_opts *o, mv_purge_result *r, mv_err *err)
{
    memset(r, 0, sizeof *r);
    int64_t now_us = mv_now_us();
    r->now = now_us / 1000000;
    pthread_mutex_lock(&s->log_mu);
    int64_t hwm = s->clock_hwm_us;
    int64_t jump_from = s->clock_jump_from_us;
    pthread_mutex_unlock(&s->log_mu);
    r->hwm = hwm / 1000000;
    /* The clock decides what is destroyed: it must be believed. */
    if (!o->confirm_clock && hwm && now_us + CLOCK_BEHIND_SLACK_US < hwm)
        return mv_err_set(err, MV_ETEMP,
                          "the clock is behind the archive's latest record by %lld s: purge "
                          "waits for a right clock (or --confirm-clock)",
                          (long long)((hwm - now_us) / 1000000));
    if (!o->confirm_clock && (jump_from || (hwm && now_us > hwm + MV_CLOCK_JUMP_US)))
        return mv_err_set(err, MV_ETEMP,
                          "the clock moved far ahead of the archive's records (%lld days): if "
                          "the time is right, an admin confirms with --confirm-clock",
                          (long long)((now_us - (jump_from ? jump_from : hwm)) / 86400000000ll));
    expired x = {s, r->now, r};
    mv_keys_list(s->keys, find_expired, &x);
    if (!r->n)
        goto clock;
    /* Which messages sit in an expired bucket: the KEK number at the head
     * of each sealed message record names its bucket, no decryption. */
    uint64_t *victims = NULL;
    size_t nv = 0, cap = 0;
    size_t *vb = NULL; /* the bucket of each victim */
    mv_status st = MV_OK;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_MSG]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        const char *name = kl == 8 ? mv_keys_kek_name(s->keys, mv_sealed_kek(v, vl)) : NULL;
        if (!name)
            continue;
        for (size_t i = 0; i < r->n; i++)
            if (strcmp(r->b[i].name, name) == 0) {
                r->b[i].messages++;
                uint64_t serial = mv_be64_get(k);
                if (mv_store_is_held(s, serial)) {
                    r->b[i].held++;
                    r->held++;
                    break;
                }
                if (nv == cap) {
                    cap = cap ? cap * 2 : 256;
                    victims = mv_xrealloc(victims, cap * sizeof *victims);
                    vb = mv_xrealloc(vb, cap * sizeof *vb);
                }
                victims[nv] = serial;
                vb[nv++] = i;
                break;
            }
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    if (e)
        st = mv_st_rocks_err(err, e, "reading messages");
    if (st || o->dry_run) {
        for (size_t i = 0; !st && i < nv; i++)
            r->b[vb[i]].purged++, r->purged++;
        goto done;
    }
    /* Held mail is moved out of its bucket before the bucket's key goes. */
    for (size_t i = 0; i < r->n && !st; i++)
        if (r->b[i].held)
            st = mv_store_move_held(s, r->b[i].name, err);
    /* Tombstones and deletions first, synced; the keys last: a purge cut
     * short is finished by the next (tombstoned messages are gone). */
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    mv_ilog_batch lb = {0};
    pthread_mutex_lock(&s->change_mu);
    uint64_t change = s->last_change;
    for (size_t i = 0; i < nv && !st; i++) {
        if ((st = purge_message(s, b, &lb, victims[i], &r->b[vb[i]], now_us, &change, err)))
            break;
        r->b[vb[i]].purged++, r->purged++;
        if (lb.n >= PURGE_BATCH || i + 1 == nv) {
            uint8_t cv[8];
            mv_be64_put(cv, change);
            rocksdb_writebatch_put_cf(b, s->cf[CF_DEFAULT], "change", 6, (const char *)cv, 8);
            if (!(st = mv_ilog_write(s, b, &lb, 1, err)))
                __atomic_store_n(&s->last_change, change, __ATOMIC_RELEASE);
            rocksdb_writebatch_clear(b);
        }
    }
    pthread_mutex_unlock(&s->change_mu);
    mv_ilog_batch_free(&lb);
    rocksdb_writebatch_destroy(b);
    if (!st && nv) {
        qsort(victims, nv, sizeof *victims, cmp_u64);
        st = forget_copy_ids(s, victims, nv, err);
    }
    for (size_t i = 0; i < r->n && !st; i++) {
        unsigned destroyed;
        if ((st = mv_keys_destroy(s->keys, r->b[i].name, &destroyed, err)))
            break;
        /* the bucket's compression dictionary went with its key */
        char mk[64];
        snprintf(mk, sizeof mk, "dict/%s", r->b[i].name);
        rocksdb_writebatch_t *db = rocksdb_writebatch_create();
        rocksdb_writebatch_delete_cf(db, s->cf[CF_DEFAULT], mk, strlen(mk));
        st = mv_st_write(s, db, 1, err);
        rocksdb_writebatch_destroy(db);
    }
done:
    free(victims);
    free(vb);
    if (st)
        return st;
clock:
    /* the admin's word on the clock holds for what comes next */
    if (o->confirm_clock)
        return mv_ilog_clock_confirmed(s, err);
    return MV_OK;
}

/* ---- for reports --------------------------------------------------------------- */

typedef struct bucket_names {
    char **v;
    size_t n;
} bucket_names;

static void collect_name(void *ctx, const mv_kek_info *ki)
{
    bucket_names *b = ctx;
    if (!strchr(ki->name, '/'))
        return;
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->v[i], ki->name) == 0)
            return;
    b->v = mv_xrealloc(b->v, (b->n + 1) * sizeof *b->v);
    b->v[b->n++] = mv_xstrdup(ki->name);
}

void mv_store_buckets(mv_store *s, void (*fn)(void *ctx, const char *bucket), void *ctx)
{
    bucket_names b = {NULL, 0};
    mv_keys_list(s->keys, collect_name, &b);
    for (size_t i = 0; i < b.n; i++) {
        fn(ctx, b.v[i]);
        free(b.v[i]);
    }
    free(b.v);
}

mv_status mv_store_message_keks(mv_store *s,
                                void (*fn)(void *ctx, uint64_t serial, const char *kek_name),
                                void *ctx, mv_err *err)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_MSG]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        if (kl == 8)
            fn(ctx, mv_be64_get(k), mv_keys_kek_name(s->keys, mv_sealed_kek(v, vl)));
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    return e ? mv_st_rocks_err(err, e, "reading messages") : MV_OK;
}

mv_status mv_store_tombstones(mv_store *s, void (*fn)(void *ctx, const struct mv_tombstone *t),
                              void *ctx, mv_err *err)
{
    uint8_t k0[9] = {'t'};
    mv_status st = MV_OK;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_LOG]);
    for (rocksdb_iter_seek(it, (const char *)k0, 9); rocksdb_iter_valid(it) && !st;
         rocksdb_iter_next(it)) {
        size_t kl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl != 9 || k[0] != 't')
            break;
        mv_tombstone t;
        if (!(st = mv_store_tombstone(s, mv_be64_get(k + 1), &t, err)))
            fn(ctx, &t);
    }
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    if (e && !st)
        st = mv_st_rocks_err(err, e, "reading tombstones");
    else
        rocksdb_free(e);
    return st;
}
