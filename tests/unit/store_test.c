/* SPDX-License-Identifier: MIT */
/* store_test.c - keys, sealing and the store, against real OpenSSL and
 * RocksDB in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "../../lib/util.h"
#include "../../store/keys.h"
#include "../../store/seal.h"
#include "../../store/store.h"
#include "../../store/store_int.h" /* the spool family, to plant orphan parts */

#define TMPDIR_NAME "mvstore"
#include "tmpdir.h"

static char *path(const char *name)
{
    return mv_xasprintf("%s/%s", tmpdir, name);
}

static void write_key(const char *p, uint8_t fill, mode_t mode)
{
    uint8_t k[32];
    memset(k, fill, sizeof k);
    mv_err err;
    unlink(p);
    assert_int_equal(mv_write_file_atomic(p, k, 32, mode, &err), MV_OK);
    chmod(p, mode);
}

static void hexbytes(const char *hex, uint8_t *out, size_t n)
{
    char *h = mv_xstrndup(hex, 2 * n);
    assert_int_equal(mv_unhex(h, out, n), 0);
    free(h);
}

/* RFC 5649 section 6: the two published AES-192 KWP vectors. */
static void test_kwp_rfc5649(void **state)
{
    (void)state;
    uint8_t kek[24], in[20], want[32], out[40], back[40];
    size_t ol, bl;
    mv_err err;
    hexbytes("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", kek, 24);
    hexbytes("c37b7e6492584340bed12207808941155068f738", in, 20);
    hexbytes("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a", want, 32);
    assert_int_equal(mv_kwp_wrap(kek, 24, in, 20, out, &ol, &err), MV_OK);
    assert_int_equal(ol, 32);
    assert_memory_equal(out, want, 32);
    assert_int_equal(mv_kwp_unwrap(kek, 24, out, ol, back, &bl, &err), MV_OK);
    assert_int_equal(bl, 20);
    assert_memory_equal(back, in, 20);
    hexbytes("466f7250617369", in, 7);
    hexbytes("afbeb0f07dfbf5419200f2ccb50bb24f", want, 16);
    assert_int_equal(mv_kwp_wrap(kek, 24, in, 7, out, &ol, &err), MV_OK);
    assert_int_equal(ol, 16);
    assert_memory_equal(out, want, 16);
    out[3] ^= 1;
    assert_int_equal(mv_kwp_unwrap(kek, 24, out, ol, back, &bl, &err), MV_ECRYPTO);
}

/* The AES-NI KWP used for every DEK gives OpenSSL's AES-256-WRAP-PAD
 * bytes, for many random keys. */
static void test_kwp_fast_matches_openssl(void **state)
{
    (void)state;
    mv_err err;
    for (int i = 0; i < 200; i++) {
        uint8_t kek[32], dek[32], a[40], b[40], back[40];
        size_t bl, ul;
        for (int j = 0; j < 32; j++) {
            kek[j] = (uint8_t)(i * 31 + j * 7 + (i >> 3));
            dek[j] = (uint8_t)(i * 17 + j * 13 + 5);
        }
        assert_int_equal(mv_kwp_fast_selftest(kek, dek, a, &err), MV_OK);
        assert_int_equal(mv_kwp_wrap(kek, 32, dek, 32, b, &bl, &err), MV_OK);
        assert_int_equal(bl, 40);
        assert_memory_equal(a, b, 40);
        assert_int_equal(mv_kwp_unwrap(kek, 32, a, 40, back, &ul, &err), MV_OK);
        assert_memory_equal(back, dek, 32);
    }
}

static mv_keys *new_keys(const char *name)
{
    char *kf = path("key"), *ks = path(name);
    write_key(kf, 7, 0600);
    mv_keysrc src = {kf, NULL};
    mv_keys *k = NULL;
    mv_err err;
    assert_int_equal(mv_keys_create(ks, &src, NULL, &k, &err), MV_OK);
    free(kf);
    free(ks);
    return k;
}

static void test_keystore_unlock(void **state)
{
    (void)state;
    mv_keys *k = new_keys("ks1");
    uint32_t no;
    mv_err err;
    assert_int_equal(mv_keys_active_kek(k, "default/2030-01", &no, &err), MV_OK);
    mv_keys_free(k);
    char *kf = path("key"), *bad = path("badkey"), *ks = path("ks1"), *open_ = path("openkey"),
         *missing = path("nokey");
    mv_keysrc good = {kf, NULL}, wrong = {bad, NULL}, world = {open_, NULL}, none = {missing, NULL};
    write_key(bad, 8, 0600);
    write_key(open_, 7, 0644);
    assert_int_equal(mv_keys_open(ks, &wrong, &k, &err), MV_ENOKEY);
    assert_null(k);
    assert_int_equal(mv_keys_open(ks, &world, &k, &err), MV_EPERM);
    assert_int_equal(mv_keys_open(ks, &none, &k, &err), MV_ENOTFOUND);
    assert_int_equal(mv_keys_open(ks, &good, &k, &err), MV_OK);
    mv_kek_info seen = {0};
    uint32_t again;
    assert_int_equal(mv_keys_active_kek(k, "default/2030-01", &again, &err), MV_OK);
    assert_int_equal(again, no); /* the KEK was durable */
    (void)seen;
    mv_keys_free(k);
    /* One flipped bit anywhere in the keystore: refused. */
    mv_buf b = MV_BUF_INIT;
    assert_int_equal(mv_read_file(ks, 1 << 20, &b, &err), MV_OK);
    for (size_t off = 4; off < b.len; off += b.len / 7 + 1) {
        b.data[off] ^= 0x10;
        assert_int_equal(mv_write_file_atomic(ks, b.data, b.len, 0600, &err), MV_OK);
        assert_int_not_equal(mv_keys_open(ks, &good, &k, &err), MV_OK);
        assert_null(k);
        b.data[off] ^= 0x10;
    }
    mv_buf_free(&b);
    free(kf), free(bad), free(ks), free(open_), free(missing);
}

static void test_record_seal(void **state)
{
    (void)state;
    mv_keys *k = new_keys("ks2");
    uint32_t kek;
    mv_err err;
    mv_buf v = MV_BUF_INIT, p = MV_BUF_INIT;
    const char msg[] = "Subject: secret canary";
    assert_int_equal(mv_keys_active_kek(k, "b", &kek, &err), MV_OK);
    assert_int_equal(mv_seal_record(k, kek, MV_FAM_MSG, "key1", 4, msg, sizeof msg, &v, &err), MV_OK);
    assert_null(memmem(v.data, v.len, "canary", 6));
    assert_int_equal(mv_open_record(k, MV_FAM_MSG, "key1", 4, v.data, v.len, &p, &err), MV_OK);
    assert_memory_equal(p.data, msg, sizeof msg);
    /* Moved to another key or family: refused. */
    mv_buf_reset(&p);
    assert_int_equal(mv_open_record(k, MV_FAM_MSG, "key2", 4, v.data, v.len, &p, &err), MV_ECRYPTO);
    assert_int_equal(mv_open_record(k, MV_FAM_COPY, "key1", 4, v.data, v.len, &p, &err), MV_ECRYPTO);
    /* Every single bit flip: refused, never wrong data. */
    for (size_t i = 0; i < v.len * 8; i += 3) {
        v.data[i / 8] ^= (uint8_t)(1u << (i % 8));
        mv_buf_reset(&p);
        assert_int_not_equal(mv_open_record(k, MV_FAM_MSG, "key1", 4, v.data, v.len, &p, &err), MV_OK);
        v.data[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    /* Truncation: refused. */
    assert_int_not_equal(mv_open_record(k, MV_FAM_MSG, "key1", 4, v.data, v.len - 1, &p, &err), MV_OK);
    /* Rewrap under a new KEK keeps the ciphertext and still opens. */
    unsigned rot;
    uint32_t act;
    mv_buf w = MV_BUF_INIT;
    assert_int_equal(mv_keys_rotate(k, &rot, &err), MV_OK);
    assert_int_equal(mv_keys_active_for(k, kek, &act, &err), MV_OK);
    assert_int_not_equal(act, kek);
    assert_int_equal(mv_sealed_rewrap(k, v.data, v.len, act, &w, &err), MV_OK);
    assert_int_equal(mv_sealed_kek(w.data, w.len), act);
    mv_buf_reset(&p);
    assert_int_equal(mv_open_record(k, MV_FAM_MSG, "key1", 4, w.data, w.len, &p, &err), MV_OK);
    mv_buf_free(&v), mv_buf_free(&p), mv_buf_free(&w);
    mv_keys_free(k);
}

typedef struct parts {
    uint8_t keys[16][MV_BLOBKEY_LEN];
    mv_buf vals[16];
    int n;
} parts;

static mv_status collect(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl,
                         int hdr, mv_err *err)
{
    (void)hdr, (void)err;
    parts *p = ctx;
    assert_true(p->n < 16 && kl == MV_BLOBKEY_LEN);
    memcpy(p->keys[p->n], key, kl);
    mv_buf_append(&p->vals[p->n++], val, vl);
    return MV_OK;
}

static mv_status fetch(void *ctx, const uint8_t key[MV_BLOBKEY_LEN], mv_buf *out, mv_err *err)
{
    (void)err;
    parts *p = ctx;
    for (int i = 0; i < p->n; i++)
        if (memcmp(p->keys[i], key, MV_BLOBKEY_LEN) == 0) {
            mv_buf_reset(out);
            mv_buf_append(out, p->vals[i].data, p->vals[i].len);
            return MV_OK;
        }
    return MV_ENOTFOUND;
}

static mv_status sink(void *ctx, const uint8_t *p, size_t n, mv_err *err)
{
    (void)err;
    mv_buf_append(ctx, p, n);
    return MV_OK;
}

static void test_blob_chunks(void **state)
{
    (void)state;
    mv_keys *k = new_keys("ks3");
    uint32_t kek;
    mv_err err;
    uint8_t id[32] = {1, 2, 3};
    size_t n = 3 * MV_CHUNK + 1234;
    uint8_t *data = mv_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 9));
    parts p;
    memset(&p, 0, sizeof p);
    assert_int_equal(mv_keys_active_kek(k, "b", &kek, &err), MV_OK);
    assert_int_equal(mv_seal_blob(k, kek, id, data, n, 3, NULL, collect, &p, &err), MV_OK);
    assert_int_equal(p.n, 5); /* 4 chunks, then the header */
    mv_buf out = MV_BUF_INIT;
    assert_int_equal(mv_open_blob(k, id, fetch, &p, NULL, NULL, sink, &out, &err), MV_OK);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, data, n);
    /* The last chunk gone: a cut tail is detected. */
    p.n = 5;
    uint8_t saved[MV_BLOBKEY_LEN];
    memcpy(saved, p.keys[3], MV_BLOBKEY_LEN);
    memset(p.keys[3], 0xff, MV_BLOBKEY_LEN);
    mv_buf_reset(&out);
    assert_int_equal(mv_open_blob(k, id, fetch, &p, NULL, NULL, sink, &out, &err), MV_ECRYPTO);
    memcpy(p.keys[3], saved, MV_BLOBKEY_LEN);
    /* Two chunks swapped: detected. */
    mv_buf tmp = p.vals[0];
    p.vals[0] = p.vals[1];
    p.vals[1] = tmp;
    mv_buf_reset(&out);
    assert_int_equal(mv_open_blob(k, id, fetch, &p, NULL, NULL, sink, &out, &err), MV_ECRYPTO);
    tmp = p.vals[0], p.vals[0] = p.vals[1], p.vals[1] = tmp;
    /* Another blob id: detected. */
    uint8_t other[32] = {9};
    for (int i = 0; i < p.n; i++)
        memcpy(p.keys[i], other, 32);
    mv_buf_reset(&out);
    assert_int_equal(mv_open_blob(k, other, fetch, &p, NULL, NULL, sink, &out, &err), MV_ECRYPTO);
    for (int i = 0; i < p.n; i++)
        mv_buf_free(&p.vals[i]);
    mv_buf_free(&out);
    free(data);
    mv_keys_free(k);
}

static mv_status collect_bytes(void *ctx, const uint8_t *p, size_t n, mv_err *err)
{
    (void)err;
    mv_buf_append(ctx, p, n);
    return MV_OK;
}

static void spool_and_commit(mv_store *s, const char *msg, const char *ident, const uint8_t dedup[32],
                             mv_commit_result *r)
{
    mv_err err;
    mv_spool_item it;
    memset(&it, 0, sizeof it);
    it.arr.received_us = mv_now_us();
    it.arr.source = "import";
    it.arr.origin = ident;
    mv_store_copy_id(s, ident, strlen(ident), it.arr.copy_id);
    it.arr.has_copy_id = 1;
    it.data = (const uint8_t *)msg;
    it.len = strlen(msg);
    assert_int_equal(mv_spool_add(s, &it, 1, &err), MV_OK);
    mv_msgmeta m;
    memset(&m, 0, sizeof m);
    m.subject = "s";
    m.date_t = INT64_MIN;
    unsigned int l = 32;
    assert_true(EVP_Digest(msg, strlen(msg), m.sha256, &l, EVP_sha256(), NULL));
    memcpy(m.dedup, dedup, 32);
    mv_prepared *p = NULL;
    assert_int_equal(mv_store_prepare(s, &it, &m, NULL, 0, &p, &err), MV_OK);
    assert_int_equal(mv_store_commit(s, &p, 1, r, &err), MV_OK);
}

static void test_store_dedup_and_reimport(void **state)
{
    (void)state;
    char *dir = path("archive"), *kf = path("key");
    write_key(kf, 7, 0600);
    mv_keysrc src = {kf, NULL};
    mv_err err;
    mv_store *s = NULL;
    assert_int_equal(mv_store_create(dir, &src, NULL, &err), MV_OK);
    assert_int_equal(mv_store_create(dir, &src, NULL, &err), MV_EEXIST);
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    uint8_t d1[32] = {1}, d2[32] = {2};
    mv_commit_result r;
    spool_and_commit(s, "Subject: one\n\nbody", "a", d1, &r);
    assert_int_equal(r.kind, MV_COMMIT_NEW);
    assert_int_equal(r.serial, 1);
    spool_and_commit(s, "Received: x\nSubject: one\n\nbody", "b", d1, &r);
    assert_int_equal(r.kind, MV_COMMIT_MERGED);
    assert_int_equal(r.serial, 1);
    assert_int_equal(r.copy, 2);
    spool_and_commit(s, "Subject: one\n\nbody", "a", d1, &r);
    assert_int_equal(r.kind, MV_COMMIT_ALREADY);
    spool_and_commit(s, "Subject: two\n\nbody", "c", d2, &r);
    assert_int_equal(r.kind, MV_COMMIT_NEW);
    assert_int_equal(r.serial, 2);
    mv_buf b = MV_BUF_INIT;
    assert_int_equal(mv_store_read(s, 1, 0, collect_bytes, &b, &err), MV_OK);
    assert_string_equal((char *)b.data, "Subject: one\n\nbody");
    mv_buf_reset(&b);
    assert_int_equal(mv_store_read(s, 1, 2, collect_bytes, &b, &err), MV_OK);
    assert_string_equal((char *)b.data, "Received: x\nSubject: one\n\nbody");
    mv_buf_reset(&b);
    assert_int_equal(mv_store_read(s, 1, 3, collect_bytes, &b, &err), MV_ENOTFOUND);
    assert_int_equal(mv_store_read(s, 3, 0, collect_bytes, &b, &err), MV_ENOTFOUND);
    assert_int_equal(mv_spool_count(s), 0);
    mv_store_close(s);
    /* A second process would be refused while this one has it open. */
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    mv_store *s2 = NULL;
    assert_int_equal(mv_store_open(dir, &src, &s2, &err), MV_ETEMP);
    assert_int_equal(mv_store_last_serial(s), 2);
    mv_store_close(s);
    mv_buf_free(&b);
    free(dir);
    free(kf);
}

/* fresh_store - a new archive at dir with a key file of byte fill, open. */
static mv_store *fresh_store(const char *dir, const char *kf, int fill)
{
    write_key(kf, fill, 0600);
    mv_keysrc src = {kf, NULL};
    mv_err err;
    mv_store *s = NULL;
    assert_int_equal(mv_store_create(dir, &src, NULL, &err), MV_OK);
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    return s;
}

typedef struct seen_spool {
    size_t n, n_ref;
    uint64_t seq[4];
    uint8_t sha[4][32];
    size_t len[4];
    int has_data[4];
    char origin[4][16];
} seen_spool;

static mv_status see_spool(void *ctx, const mv_spool_item *it, mv_err *err)
{
    (void)err;
    seen_spool *v = ctx;
    if (v->n < 4) {
        v->seq[v->n] = it->seq;
        v->len[v->n] = it->len;
        v->has_data[v->n] = it->data != NULL;
        snprintf(v->origin[v->n], sizeof v->origin[v->n], "%s", it->arr.origin);
        if (it->ref_sha256) {
            memcpy(v->sha[v->n], it->ref_sha256, 32);
            v->n_ref++;
        }
    }
    v->n++;
    return MV_OK;
}

/* spool_pair - spool two arrivals from an import: the first by reference
 * (its file is the durable copy: the spool keeps only its digest, sha), the
 * second with its bytes; with copy_ids, each with the copy id of its origin. */
static void spool_pair(mv_store *s, mv_spool_item it[2], const char *m1, const char *m2,
                       uint8_t sha[32], int copy_ids)
{
    mv_err err;
    unsigned int l = 32;
    assert_true(EVP_Digest(m1, strlen(m1), sha, &l, EVP_sha256(), NULL));
    memset(it, 0, 2 * sizeof *it);
    for (int i = 0; i < 2; i++) {
        it[i].arr.received_us = 1000 + i;
        it[i].arr.source = "import";
        it[i].arr.origin = i ? "file:/b" : "file:/a";
        it[i].data = (const uint8_t *)(i ? m2 : m1);
        it[i].len = strlen(i ? m2 : m1);
        if (copy_ids) {
            mv_store_copy_id(s, it[i].arr.origin, strlen(it[i].arr.origin), it[i].arr.copy_id);
            it[i].arr.has_copy_id = 1;
        }
    }
    it[0].ref_sha256 = sha;
    assert_int_equal(mv_spool_add(s, it, 2, &err), MV_OK);
}

/* An arrival spooled by reference whose file is gone for good can be
 * forgotten, with its copy-id marker (so the file, once back, imports
 * anew); one spooled with its own bytes never can; all or nothing. */
static void test_spool_forget(void **state)
{
    (void)state;
    char *dir = path("archive-forget"), *kf = path("key-forget");
    mv_keysrc src = {kf, NULL};
    mv_err err;
    mv_store *s = fresh_store(dir, kf, 9);
    uint8_t sha[32];
    mv_spool_item it[2];
    spool_pair(s, it, "Subject: gone\n\nbody one", "Subject: with bytes\n\nbody two", sha, 1);
    mv_copyid_state cs;
    assert_int_equal(mv_store_copy_id_state(s, it[0].arr.copy_id, &cs, &err), MV_OK);
    assert_int_equal(cs, MV_COPYID_SPOOLED);
    /* the entry with bytes is refused, and the batch with it: nothing goes */
    uint64_t both[2] = {it[0].seq, it[1].seq}, none = it[1].seq + 100;
    assert_int_equal(mv_spool_forget(s, both, 2, &err), MV_EUSAGE);
    assert_int_equal(mv_spool_forget(s, &none, 1, &err), MV_ENOTFOUND);
    assert_int_equal(mv_spool_count(s), 2);
    assert_int_equal(mv_spool_forget(s, both, 1, &err), MV_OK);
    assert_int_equal(mv_spool_count(s), 1);
    assert_int_equal(mv_store_copy_id_state(s, it[0].arr.copy_id, &cs, &err), MV_OK);
    assert_int_equal(cs, MV_COPYID_NEW);
    assert_int_equal(mv_store_copy_id_state(s, it[1].arr.copy_id, &cs, &err), MV_OK);
    assert_int_equal(cs, MV_COPYID_SPOOLED);
    /* and so it stays after a reopen */
    mv_store_close(s);
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    assert_int_equal(mv_spool_count(s), 1);
    seen_spool v;
    memset(&v, 0, sizeof v);
    assert_int_equal(mv_spool_replay(s, see_spool, &v, &err), MV_OK);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.n_ref, 0);
    assert_string_equal(v.origin[0], "file:/b");
    mv_store_close(s);
    free(dir);
    free(kf);
}

/* commit_spooled - prepare and commit a spooled arrival (it->seq set) as a
 * new message whose dedup digest starts with dedup_byte; its serial. */
static uint64_t commit_spooled(mv_store *s, const mv_spool_item *it, int dedup_byte)
{
    mv_err err;
    mv_msgmeta m;
    memset(&m, 0, sizeof m);
    m.date_t = INT64_MIN;
    unsigned int l = 32;
    assert_true(EVP_Digest(it->data, it->len, m.sha256, &l, EVP_sha256(), NULL));
    m.dedup[0] = (uint8_t)dedup_byte;
    mv_prepared *p = NULL;
    mv_commit_result r;
    assert_int_equal(mv_store_prepare(s, it, &m, NULL, 0, &p, &err), MV_OK);
    assert_int_equal(mv_store_commit(s, &p, 1, &r, &err), MV_OK);
    assert_int_equal(r.kind, MV_COMMIT_NEW);
    return r.serial;
}

/* An arrival spooled by reference (imports: the file is the durable copy)
 * keeps its digest and no bytes; it survives a reopen; its commit removes
 * it; an arrival spooled with its bytes beside it is unchanged. */
static void test_spool_by_reference(void **state)
{
    (void)state;
    char *dir = path("archive-ref"), *kf = path("key-ref");
    mv_keysrc src = {kf, NULL};
    mv_err err;
    mv_store *s = fresh_store(dir, kf, 9);
    const char *m1 = "Subject: by reference\n\nbody one";
    uint8_t sha[32];
    mv_spool_item it[2];
    spool_pair(s, it, m1, "Subject: with bytes\n\nbody two", sha, 0);
    mv_store_close(s);
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    assert_int_equal(mv_spool_count(s), 2);
    seen_spool v;
    memset(&v, 0, sizeof v);
    assert_int_equal(mv_spool_replay(s, see_spool, &v, &err), MV_OK);
    assert_int_equal(v.n, 2);
    assert_int_equal(v.n_ref, 1);
    assert_string_equal(v.origin[0], "file:/a");
    assert_false(v.has_data[0]); /* no bytes in the spool */
    assert_int_equal(v.len[0], strlen(m1));
    assert_memory_equal(v.sha[0], sha, 32);
    assert_true(v.has_data[1]);
    /* The importer reads the bytes back and commits under the spool number
     * (their digest is the one the spool kept). */
    it[0].seq = v.seq[0];
    uint64_t serial = commit_spooled(s, &it[0], 7);
    mv_buf b = MV_BUF_INIT;
    assert_int_equal(mv_store_read(s, serial, 0, collect_bytes, &b, &err), MV_OK);
    assert_int_equal(b.len, strlen(m1));
    assert_memory_equal(b.data, m1, b.len);
    memset(&v, 0, sizeof v);
    assert_int_equal(mv_spool_replay(s, see_spool, &v, &err), MV_OK);
    assert_int_equal(v.n, 1); /* only the arrival with bytes is left */
    assert_int_equal(v.n_ref, 0);
    mv_buf_free(&b);
    mv_store_close(s);
    free(dir);
    free(kf);
}

/* The spool is read from its low-water mark, past the tombstones of what
 * was archived: the mark moves only when nothing is spooled, and whatever
 * is spooled later, records and byte parts, is found above it. */
static void test_spool_low_mark(void **state)
{
    (void)state;
    char *dir = path("archive-low"), *kf = path("key-low");
    mv_keysrc src = {kf, NULL};
    mv_err err;
    mv_store *s = fresh_store(dir, kf, 9);
    uint8_t sha[32];
    mv_spool_item it[2];
    seen_spool v;
    spool_pair(s, it, "Subject: a\n\none", "Subject: b\n\ntwo", sha, 0);
    commit_spooled(s, &it[0], 1);
    mv_store_close(s); /* one still spooled: no mark */
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    assert_int_equal(mv_spool_count(s), 1);
    memset(&v, 0, sizeof v);
    assert_int_equal(mv_spool_replay(s, see_spool, &v, &err), MV_OK);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.seq[0], it[1].seq);
    assert_true(v.has_data[0]);
    commit_spooled(s, &it[1], 2);
    assert_int_equal(mv_spool_count(s), 0);
    mv_store_close(s); /* the mark: past both */
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    assert_int_equal(mv_spool_count(s), 0);
    memset(&v, 0, sizeof v);
    assert_int_equal(mv_spool_replay(s, see_spool, &v, &err), MV_OK);
    assert_int_equal(v.n, 0);
    /* byte parts whose envelope never came (a crash between them), above
     * the mark, as delivered and raw: removed when the archive opens */
    uint8_t orphan[2][MV_BLOBKEY_LEN];
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    for (int raw = 0; raw < 2; raw++) {
        memset(orphan[raw], 0, sizeof orphan[raw]);
        orphan[raw][23] = (uint8_t)raw;
        orphan[raw][31] = 9; /* sequence 9, part 0 */
        rocksdb_writebatch_put_cf(b, s->cf[CF_SPOOL], (const char *)orphan[raw], MV_BLOBKEY_LEN,
                                  "x", 1);
    }
    assert_int_equal(mv_st_write(s, b, 1, &err), MV_OK);
    rocksdb_writebatch_destroy(b);
    mv_store_close(s);
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    for (int raw = 0; raw < 2; raw++) {
        char *e = NULL;
        size_t vl = 0;
        char *val = rocksdb_get_cf(s->db, s->ro, s->cf[CF_SPOOL], (const char *)orphan[raw],
                                   MV_BLOBKEY_LEN, &vl, &e);
        assert_null(e);
        assert_null(val);
    }
    /* spooled after the mark, left over a reopen: both found, bytes too */
    spool_pair(s, it, "Subject: c\n\nthree", "Subject: d\n\nfour", sha, 0);
    assert_true(it[0].seq > 2);
    mv_store_close(s);
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    assert_int_equal(mv_spool_count(s), 2);
    memset(&v, 0, sizeof v);
    assert_int_equal(mv_spool_replay(s, see_spool, &v, &err), MV_OK);
    assert_int_equal(v.n, 2);
    assert_int_equal(v.seq[0], it[0].seq);
    assert_int_equal(v.seq[1], it[1].seq);
    assert_true(v.has_data[1]);
    assert_int_equal(v.len[1], strlen("Subject: d\n\nfour"));
    commit_spooled(s, &it[0], 3);
    commit_spooled(s, &it[1], 4);
    mv_store_close(s);
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    assert_int_equal(mv_spool_count(s), 0);
    assert_int_equal(mv_store_last_serial(s), 4);
    mv_store_close(s);
    free(dir);
    free(kf);
}

/* The bucket's compression dictionary: trained after the samples, stored,
 * used for later blobs, found again by a new process. */
static void test_store_dictionary(void **state)
{
    (void)state;
    char *dir = path("dictarchive"), *kf = path("key");
    write_key(kf, 7, 0600);
    mv_keysrc src = {kf, NULL};
    mv_err err;
    mv_store *s = NULL;
    assert_int_equal(mv_store_create(dir, &src, NULL, &err), MV_OK);
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    mv_store_set_dict_samples(s, 8);
    char msgs[40][600];
    mv_commit_result r;
    for (int i = 0; i < 40; i++) {
        char ident[16];
        uint8_t d[32] = {0};
        snprintf(msgs[i], sizeof msgs[i],
                 "From: sender%d@example.com\nTo: team@example.org\nSubject: weekly report %d\n"
                 "Message-ID: <m%d@example.com>\n\nHello team,\nthe weekly report number %d is "
                 "attached. Figures are up on last week; please review before the meeting on "
                 "Thursday.\nRegards,\nsender %d\n", i, i, i, i, i);
        snprintf(ident, sizeof ident, "d%d", i);
        d[0] = (uint8_t)i;
        d[1] = 0xdd;
        spool_and_commit(s, msgs[i], ident, d, &r);
        assert_int_equal(r.kind, MV_COMMIT_NEW);
    }
    mv_stats st;
    assert_int_equal(mv_store_stats(s, &st, &err), MV_OK);
    assert_int_equal(st.dictionaries, 1);
    mv_store_close(s);
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    mv_buf b = MV_BUF_INIT;
    for (int i = 0; i < 40; i++) {
        mv_buf_reset(&b);
        assert_int_equal(mv_store_read(s, (uint64_t)i + 1, 0, collect_bytes, &b, &err), MV_OK);
        assert_string_equal((char *)b.data, msgs[i]);
    }
    mv_store_close(s);
    mv_buf_free(&b);
    free(dir);
    free(kf);
}


static mv_status count_escrow(void *ctx, const mv_escrow_rec *e, const uint8_t *m, size_t n,
                              mv_err *err)
{
    (void)err;
    size_t *c = ctx;
    assert_true(e->id > 0);
    assert_string_equal(e->kind, "x509");
    if (m)
        assert_int_equal(n, e->material_bytes);
    (*c)++;
    return MV_OK;
}

/* The escrow keyring: material sealed (nowhere in the clear on disk),
 * ids never reused, and it survives a rotation that destroys old KEKs. */
static void test_store_escrow(void **state)
{
    (void)state;
    char *dir = path("escrow"), *kf = path("ekey");
    mv_keysrc src = {kf, NULL};
    mv_err err;
    mv_store *s = fresh_store(dir, kf, 9);
    static const char secret[] = "-----ESCROWCANARYPRIVATEKEYMATERIAL-----";
    uint32_t a = 0, b = 0;
    assert_int_equal(mv_store_escrow_add(s, "x509", "CN=Alice", (const uint8_t *)secret,
                                         sizeof secret, "root", &a, &err), MV_OK);
    assert_int_equal(mv_store_escrow_add(s, "x509", "CN=Bob", (const uint8_t *)"k2", 2, "root", &b,
                                         &err), MV_OK);
    assert_int_equal(a, 1);
    assert_int_equal(b, 2);
    mv_escrow_rec e;
    mv_buf m = MV_BUF_INIT;
    assert_int_equal(mv_store_escrow_get(s, a, &e, &m, &err), MV_OK);
    assert_string_equal(e.description, "CN=Alice");
    assert_int_equal(m.len, sizeof secret);
    assert_memory_equal(m.data, secret, sizeof secret);
    mv_escrow_rec_clear(&e);
    mv_buf_wipe(&m);
    unsigned rotated;
    uint64_t rewrapped;
    assert_int_equal(mv_store_keys_rotate(s, 1, &rotated, &rewrapped, &err), MV_OK);
    assert_int_equal(mv_store_escrow_remove(s, b, &err), MV_OK);
    assert_int_equal(mv_store_escrow_remove(s, b, &err), MV_ENOTFOUND);
    mv_store_close(s);
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    size_t n = 0;
    assert_int_equal(mv_store_escrow_list(s, count_escrow, &n, 1, &err), MV_OK);
    assert_int_equal(n, 1);
    uint32_t c = 0;
    assert_int_equal(mv_store_escrow_add(s, "x509", "CN=Carol", (const uint8_t *)"k3", 2, "root", &c,
                                         &err), MV_OK);
    assert_int_equal(c, 3); /* never reused */
    assert_int_equal(mv_store_escrow_get(s, a, &e, &m, &err), MV_OK);
    assert_memory_equal(m.data, secret, sizeof secret);
    mv_escrow_rec_clear(&e);
    mv_buf_wipe(&m);
    mv_store_close(s);
    char *cmd = mv_xasprintf("grep -rqa ESCROWCANARY '%s'", dir);
    assert_int_not_equal(system(cmd), 0);
    free(cmd);
    free(dir);
    free(kf);
}


/* What the search index needs from the store: the change sequence, the
 * sealed text, the vocabulary by prefix, custodians, and a PRF that is
 * the same across processes and a keys rewrap. */
static void test_store_search_support(void **state)
{
    (void)state;
    char *dir = path("search"), *kf = path("skey");
    write_key(kf, 11, 0600);
    mv_keysrc src = {kf, NULL};
    mv_err err;
    mv_store *s = NULL;
    assert_int_equal(mv_store_create(dir, &src, NULL, &err), MV_OK);
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    uint8_t d1[32] = {1}, d2[32] = {2};
    mv_commit_result r;
    spool_and_commit(s, "Subject: one\n\nbody", "a", d1, &r);
    spool_and_commit(s, "Received: x\nSubject: one\n\nbody", "b", d1, &r);
    spool_and_commit(s, "Subject: two\n\nbody", "c", d2, &r);
    assert_int_equal(mv_store_last_change(s), 3);
    mv_change ch[8];
    size_t n = 0;
    assert_int_equal(mv_store_changes(s, 0, ch, 8, &n, &err), MV_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ch[0].kind, MV_CHANGE_MESSAGE);
    assert_int_equal(ch[1].kind, MV_CHANGE_COPY);
    assert_int_equal(ch[1].serial, 1);
    assert_int_equal(ch[1].copy, 2);
    assert_int_equal(ch[2].serial, 2);
    assert_int_equal(mv_store_changes(s, 2, ch, 8, &n, &err), MV_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ch[0].seq, 3);
    assert_int_equal(mv_store_changes(s, 0, ch, 2, &n, &err), MV_OK);
    assert_int_equal(n, 2);

    static const char text[] = "TEXTCANARYWORD extracted";
    mv_buf b = MV_BUF_INIT;
    assert_int_equal(mv_store_text(s, 1, &b, &err), MV_ENOTFOUND);
    assert_int_equal(mv_store_put_text(s, 9, (const uint8_t *)text, sizeof text, &err),
                     MV_ENOTFOUND);
    assert_int_equal(mv_store_put_text(s, 1, (const uint8_t *)text, sizeof text, &err), MV_OK);
    assert_int_equal(mv_store_text(s, 1, &b, &err), MV_OK);
    assert_int_equal(b.len, sizeof text);
    assert_memory_equal(b.data, text, sizeof text);

    const char *words[] = {"invoice", "invoices", "invoicing", "invent", "in", "VOCABCANARY",
                           "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"};
    assert_int_equal(mv_store_vocab_add(s, words, 7, &err), MV_OK);
    assert_int_equal(mv_store_vocab_add(s, words, 2, &err), MV_OK); /* again: harmless */
    char **w = NULL;
    assert_int_equal(mv_store_vocab_prefix(s, "invoic", 10, &w, &n, &err), MV_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_memory_equal(w[i], "invoic", 6);
        free(w[i]);
    }
    free(w);
    assert_int_equal(mv_store_vocab_prefix(s, "inv", 2, &w, &n, &err), MV_ELIMIT);
    assert_int_equal(mv_store_vocab_prefix(s, "in", 10, &w, &n, &err), MV_EUSAGE);
    assert_int_equal(mv_store_vocab_prefix(s, "\xd0\xbf\xd1\x80\xd0\xb8", 10, &w, &n, &err),
                     MV_OK);
    assert_int_equal(n, 1);
    free(w[0]);
    free(w);

    char *addrs[] = {"jane@example.com", "jdoe@example.org"}, *alias[] = {"J. Doe"};
    mv_custodian c = {"Jane Doe", "Legal", addrs, 2, alias, 1};
    assert_int_equal(mv_store_custodian_put(s, &c, &err), MV_OK);
    c.name = "jane doe"; /* same person, other case: replaces */
    assert_int_equal(mv_store_custodian_put(s, &c, &err), MV_OK);
    mv_custodian *v = NULL;
    assert_int_equal(mv_store_custodians(s, &v, &n, &err), MV_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].name, "jane doe");
    assert_int_equal(v[0].n_addresses, 2);
    assert_string_equal(v[0].aliases[0], "J. Doe");
    mv_custodian_clear(&v[0]);
    free(v);
    assert_int_equal(mv_store_custodian_remove(s, "JANE DOE", &err), MV_OK);
    assert_int_equal(mv_store_custodian_remove(s, "Jane Doe", &err), MV_ENOTFOUND);

    uint8_t h1[32], h2[32];
    mv_prf_eval(mv_store_index_prf(s), "wword", 5, h1);
    mv_store_close(s);
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    mv_prf_eval(mv_store_index_prf(s), "wword", 5, h2);
    assert_memory_equal(h1, h2, 32);
    assert_int_equal(mv_store_text(s, 1, &b, &err), MV_OK);
    mv_store_close(s);
    mv_buf_wipe(&b);
    char *cmd = mv_xasprintf("grep -rqai -e TEXTCANARY -e VOCABCANARY -e invoic '%s'", dir);
    assert_int_not_equal(system(cmd), 0);
    free(cmd);
    free(dir);
    free(kf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kwp_rfc5649),
        cmocka_unit_test(test_kwp_fast_matches_openssl),
        cmocka_unit_test(test_keystore_unlock),
        cmocka_unit_test(test_record_seal),
        cmocka_unit_test(test_blob_chunks),
        cmocka_unit_test(test_store_dedup_and_reimport),
        cmocka_unit_test(test_spool_by_reference),
        cmocka_unit_test(test_spool_low_mark),
        cmocka_unit_test(test_spool_forget),
        cmocka_unit_test(test_store_dictionary),
        cmocka_unit_test(test_store_escrow),
        cmocka_unit_test(test_store_search_support),
    };
    return cmocka_run_group_tests_name("store", tests, setup_dir, teardown_dir);
}
