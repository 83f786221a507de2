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
