/* SPDX-License-Identifier: MIT */
/* seal.c - envelope encryption of records and chunked blobs (see seal.h). */
#include "seal.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_c_forceAttachDict */
#include <zstd.h>

#define REC_HDR (1 + 1 + 4 + MV_WRAPPED_LEN)
#define BLOB_HDR (1 + 1 + 4 + MV_WRAPPED_LEN + 8 + 4 + 4 + 4 + 1)
#define MAX_CHUNKS (1u << 24) /* 1 TiB at 64 KiB: far past any message limit */

static const char rec_aad_tag[] = "mailvault-record-v1";
static const char blob_aad_tag[] = "mailvault-blob-v1";

static void rec_aad(mv_buf *a, int family, const void *key, size_t keylen)
{
    mv_buf_append(a, rec_aad_tag, sizeof rec_aad_tag - 1);
    mv_buf_put_u8(a, (uint8_t)family);
    mv_buf_append(a, key, keylen);
}

mv_status mv_seal_record(mv_keys *k, uint32_t kek_no, int family, const void *key, size_t keylen,
                         const void *plain, size_t n, mv_buf *out, mv_err *err)
{
    uint8_t dek[32], w[MV_WRAPPED_LEN], nonce[12] = {0};
    mv_buf aad = MV_BUF_INIT;
    mv_status st = mv_keys_wrap_new_dek(k, kek_no, dek, w, err);
    if (st)
        goto out;
    mv_buf_put_u8(out, 'R');
    mv_buf_put_u8(out, 1);
    mv_buf_put_u32(out, kek_no);
    mv_buf_append(out, w, sizeof w);
    mv_buf_reserve(out, n + 16);
    rec_aad(&aad, family, key, keylen);
    st = mv_gcm_seal(dek, nonce, aad.data, aad.len, plain, n, out->data + out->len,
                     out->data + out->len + n, err);
    if (!st)
        out->len += n + 16;
out:
    OPENSSL_cleanse(dek, sizeof dek);
    mv_buf_free(&aad);
    return st;
}

mv_status mv_open_record(mv_keys *k, int family, const void *key, size_t keylen,
                         const uint8_t *val, size_t vlen, mv_buf *plain, mv_err *err)
{
    uint8_t dek[32], nonce[12] = {0};
    mv_buf aad = MV_BUF_INIT;
    if (vlen < REC_HDR + 16 || val[0] != 'R' || val[1] != 1)
        return mv_err_set(err, MV_EMALFORMED, "stored record is damaged (bad header)");
    mv_status st = mv_keys_unwrap_dek(k, mv_be32_get(val + 2), val + 6, MV_WRAPPED_LEN, dek, err);
    if (st)
        return st;
    size_t n = vlen - REC_HDR - 16;
    mv_buf_reserve(plain, n);
    rec_aad(&aad, family, key, keylen);
    st = mv_gcm_open(dek, nonce, aad.data, aad.len, val + REC_HDR, n, val + vlen - 16,
                     plain->data + plain->len, err);
    if (!st) {
        plain->len += n;
        plain->data[plain->len] = '\0';
    }
    OPENSSL_cleanse(dek, sizeof dek);
    mv_buf_free(&aad);
    return st;
}

uint32_t mv_sealed_kek(const uint8_t *val, size_t vlen)
{
    if (vlen < REC_HDR || (val[0] != 'R' && val[0] != 'B') || val[1] != 1)
        return 0;
    return mv_be32_get(val + 2);
}

mv_status mv_sealed_rewrap(mv_keys *k, const uint8_t *val, size_t vlen, uint32_t to, mv_buf *out,
                           mv_err *err)
{
    uint8_t w[MV_WRAPPED_LEN];
    uint32_t from = mv_sealed_kek(val, vlen);
    if (!from)
        return mv_err_set(err, MV_EMALFORMED, "not a sealed value");
    mv_status st = mv_keys_rewrap_dek(k, from, to, val + 6, MV_WRAPPED_LEN, w, err);
    if (st)
        return st;
    mv_buf_append(out, val, 2);
    mv_buf_put_u32(out, to);
    mv_buf_append(out, w, sizeof w);
    mv_buf_append(out, val + REC_HDR, vlen - REC_HDR);
    return MV_OK;
}

void mv_blob_key(const uint8_t id[32], uint32_t part, uint8_t key[MV_BLOBKEY_LEN])
{
    memcpy(key, id, 32);
    mv_be32_put(key + 32, part);
}

static void chunk_aad(uint8_t *a, const uint8_t id[32], uint32_t idx, int final, uint8_t flags,
                      uint32_t dict)
{
    memcpy(a, blob_aad_tag, sizeof blob_aad_tag - 1);
    a += sizeof blob_aad_tag - 1;
    memcpy(a, id, 32);
    mv_be32_put(a + 32, idx);
    a[36] = (uint8_t)final;
    a[37] = flags;
    mv_be32_put(a + 38, dict);
}
#define CHUNK_AAD_LEN (sizeof blob_aad_tag - 1 + 42)

static pthread_key_t zc_tls, zd_tls;
static pthread_once_t z_once = PTHREAD_ONCE_INIT;
static void zc_free(void *p)
{
    ZSTD_freeCCtx(p);
}
static void zd_free(void *p)
{
    ZSTD_freeDCtx(p);
}
static void z_init(void)
{
    pthread_key_create(&zc_tls, zc_free);
    pthread_key_create(&zd_tls, zd_free);
}
static ZSTD_CCtx *cctx(void)
{
    pthread_once(&z_once, z_init);
    ZSTD_CCtx *c = pthread_getspecific(zc_tls);
    if (!c) {
        c = ZSTD_createCCtx();
        mv_assert(c);
        pthread_setspecific(zc_tls, c);
    }
    return c;
}
static ZSTD_DCtx *dctx(void)
{
    pthread_once(&z_once, z_init);
    ZSTD_DCtx *c = pthread_getspecific(zd_tls);
    if (!c) {
        c = ZSTD_createDCtx();
        mv_assert(c);
        pthread_setspecific(zd_tls, c);
    }
    return c;
}

/* seal_chunk - append flags|ciphertext|tag of one chunk to out. */
static mv_status seal_chunk(const uint8_t dek[32], const uint8_t id[32], uint32_t idx, int final,
                            const uint8_t *p, size_t n, int level, const mv_zdict *dict,
                            mv_buf *z, mv_buf *out, mv_err *err)
{
    uint8_t flags = 0, nonce[12] = {0}, aad[CHUNK_AAD_LEN];
    const uint8_t *src = p;
    size_t sn = n;
    uint32_t dict_no = 0;
    if (level > 0 && n > 64) {
        size_t bound = ZSTD_compressBound(n), r;
        mv_buf_reset(z);
        mv_buf_reserve(z, bound);
        if (dict && dict->cdict) {
            /* Attached, never copied: a message over zstd's cut-off (8 KiB
             * at this level) would otherwise have the dictionary's tables
             * copied into the context, per message.  The output is the
             * same as ZSTD_compress_usingCDict's (content size and
             * dictionary id in the frame, no checksum). */
            ZSTD_CCtx *c = cctx();
            if (ZSTD_isError(ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters)) ||
                ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_forceAttachDict,
                                                    ZSTD_dictForceAttach)) ||
                ZSTD_isError(ZSTD_CCtx_refCDict(c, dict->cdict)))
                r = ZSTD_compress_usingCDict(c, z->data, bound, p, n, dict->cdict);
            else
                r = ZSTD_compress2(c, z->data, bound, p, n);
        } else
            r = ZSTD_compressCCtx(cctx(), z->data, bound, p, n, level);
        if (!ZSTD_isError(r) && r < n) {
            flags = 1;
            src = z->data;
            sn = r;
            dict_no = dict && dict->cdict ? dict->no : 0;
        }
    }
    mv_be64_put(nonce, idx);
    chunk_aad(aad, id, idx, final, flags, dict_no);
    mv_buf_put_u8(out, flags);
    mv_buf_reserve(out, sn + 16);
    mv_status st = mv_gcm_seal(dek, nonce, aad, sizeof aad, src, sn, out->data + out->len,
                               out->data + out->len + sn, err);
    if (!st)
        out->len += sn + 16;
    return st;
}

mv_status mv_seal_blob(mv_keys *k, uint32_t kek_no, const uint8_t id[32], const uint8_t *p,
                       size_t n, int level, const mv_zdict *dict, mv_emit_fn emit, void *ctx,
                       mv_err *err)
{
    uint8_t dek[32], w[MV_WRAPPED_LEN], key[MV_BLOBKEY_LEN];
    mv_buf z = MV_BUF_INIT, v = MV_BUF_INIT, hdr = MV_BUF_INIT;
    size_t nchunks = n ? (n + MV_CHUNK - 1) / MV_CHUNK : 1;
    if (nchunks > MAX_CHUNKS)
        return mv_err_set(err, MV_ELIMIT, "blob of %zu bytes is too large", n);
    mv_status st = mv_keys_wrap_new_dek(k, kek_no, dek, w, err);
    if (st)
        goto out;
    mv_buf_put_u8(&hdr, 'B');
    mv_buf_put_u8(&hdr, 1);
    mv_buf_put_u32(&hdr, kek_no);
    mv_buf_append(&hdr, w, sizeof w);
    mv_buf_put_u64(&hdr, n);
    mv_buf_put_u32(&hdr, (uint32_t)nchunks);
    mv_buf_put_u32(&hdr, MV_CHUNK);
    /* The blob's dictionary; a chunk that did not compress records 0 in
     * its own AAD and is read without it. */
    mv_buf_put_u32(&hdr, dict && dict->cdict && level > 0 ? dict->no : 0);
    mv_buf_put_u8(&hdr, nchunks == 1);
    if (nchunks == 1) {
        st = seal_chunk(dek, id, 0, 1, p, n, level, dict, &z, &hdr, err);
    } else {
        for (size_t i = 0; i < nchunks && !st; i++) {
            size_t off = i * MV_CHUNK, len = n - off < MV_CHUNK ? n - off : MV_CHUNK;
            mv_buf_reset(&v);
            st = seal_chunk(dek, id, (uint32_t)i, i + 1 == nchunks, p + off, len, level, dict, &z,
                            &v, err);
            if (!st) {
                mv_blob_key(id, (uint32_t)i + 1, key);
                st = emit(ctx, key, sizeof key, v.data, v.len, 0, err);
            }
        }
    }
    if (!st) {
        mv_blob_key(id, 0, key);
        st = emit(ctx, key, sizeof key, hdr.data, hdr.len, 1, err);
    }
out:
    OPENSSL_cleanse(dek, sizeof dek);
    mv_buf_free(&z);
    mv_buf_free(&v);
    mv_buf_free(&hdr);
    return st;
}

static mv_status open_chunk(const uint8_t dek[32], const uint8_t id[32], uint32_t idx, int final,
                            uint32_t dict_no, const void *ddict, const uint8_t *c, size_t cn,
                            mv_buf *tmp, mv_buf *plain, mv_err *err)
{
    uint8_t nonce[12] = {0}, aad[CHUNK_AAD_LEN];
    if (cn < 1 + 16 || c[0] > 1)
        return mv_err_set(err, MV_EMALFORMED, "stored chunk %u is damaged", idx);
    uint8_t flags = c[0];
    size_t n = cn - 1 - 16;
    /* An uncompressed chunk was sealed with dictionary 0 in its AAD. */
    uint32_t used = flags ? dict_no : 0;
    mv_be64_put(nonce, idx);
    chunk_aad(aad, id, idx, final, flags, used);
    mv_buf_reset(tmp);
    mv_buf_reserve(tmp, n);
    mv_status st = mv_gcm_open(dek, nonce, aad, sizeof aad, c + 1, n, c + cn - 16, tmp->data, err);
    if (st) {
        mv_err_prefix(err, "blob chunk %u: ", idx);
        return st;
    }
    tmp->len = n;
    mv_buf_reset(plain);
    if (!flags) {
        mv_buf_append(plain, tmp->data, n);
        return MV_OK;
    }
    unsigned long long sz = ZSTD_getFrameContentSize(tmp->data, n);
    if (sz == ZSTD_CONTENTSIZE_ERROR || sz == ZSTD_CONTENTSIZE_UNKNOWN || sz > MV_CHUNK)
        return mv_err_set(err, MV_EMALFORMED, "blob chunk %u: bad compressed frame", idx);
    mv_buf_reserve(plain, (size_t)sz);
    size_t r = used ? ZSTD_decompress_usingDDict(dctx(), plain->data, (size_t)sz, tmp->data, n, ddict)
                    : ZSTD_decompressDCtx(dctx(), plain->data, (size_t)sz, tmp->data, n);
    if (ZSTD_isError(r) || r != sz)
        return mv_err_set(err, MV_EMALFORMED, "blob chunk %u: decompression failed", idx);
    plain->len = r;
    return MV_OK;
}

mv_status mv_open_blob(mv_keys *k, const uint8_t id[32], mv_fetch_fn fetch, void *fctx,
                       mv_ddict_fn ddict_fn, void *dctx_arg, mv_sink_fn sink, void *sctx,
                       mv_err *err)
{
    uint8_t key[MV_BLOBKEY_LEN], dek[32];
    mv_buf hv = MV_BUF_INIT, cv = MV_BUF_INIT, tmp = MV_BUF_INIT, plain = MV_BUF_INIT;
    mv_blob_key(id, 0, key);
    mv_status st = fetch(fctx, key, &hv, err);
    if (st)
        goto out;
    mv_rd r;
    mv_rd_init(&r, hv.data, hv.len);
    uint8_t magic = mv_rd_u8(&r), ver = mv_rd_u8(&r);
    uint32_t kek_no = mv_rd_u32(&r);
    const uint8_t *w = mv_rd_bytes(&r, MV_WRAPPED_LEN);
    uint64_t total = mv_rd_u64(&r);
    uint32_t nchunks = mv_rd_u32(&r), csize = mv_rd_u32(&r), dict = mv_rd_u32(&r);
    uint8_t inl = mv_rd_u8(&r);
    if (r.bad || magic != 'B' || ver != 1 || csize != MV_CHUNK || nchunks == 0 ||
        nchunks > MAX_CHUNKS || (inl && nchunks != 1) ||
        total > (uint64_t)nchunks * MV_CHUNK) {
        st = mv_err_set(err, MV_EMALFORMED, "stored blob header is damaged");
        goto out;
    }
    const void *ddict = NULL;
    if (dict && (!ddict_fn || !(ddict = ddict_fn(dctx_arg, dict, err)))) {
        if (!ddict_fn)
            mv_err_set(err, MV_EMALFORMED, "blob needs compression dictionary %u", dict);
        st = err ? err->code : MV_EMALFORMED;
        if (!st)
            st = MV_EMALFORMED;
        goto out;
    }
    if ((st = mv_keys_unwrap_dek(k, kek_no, w, MV_WRAPPED_LEN, dek, err)))
        goto out;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < nchunks; i++) {
        const uint8_t *c;
        size_t cn;
        if (inl) {
            c = r.p;
            cn = r.left;
        } else {
            mv_blob_key(id, i + 1, key);
            if ((st = fetch(fctx, key, &cv, err))) {
                if (st == MV_ENOTFOUND)
                    st = mv_err_set(err, MV_ECRYPTO, "blob is missing chunk %u of %u", i, nchunks);
                goto out;
            }
            c = cv.data;
            cn = cv.len;
        }
        if ((st = open_chunk(dek, id, i, i + 1 == nchunks, dict, ddict, c, cn, &tmp, &plain, err)))
            goto out;
        if (i + 1 < nchunks && plain.len != MV_CHUNK) {
            st = mv_err_set(err, MV_EMALFORMED, "blob chunk %u has the wrong size", i);
            goto out;
        }
        seen += plain.len;
        if ((st = sink(sctx, plain.data, plain.len, err)))
            goto out;
    }
    if (seen != total)
        st = mv_err_set(err, MV_ECRYPTO, "blob length %llu does not match its header (%llu)",
                        (unsigned long long)seen, (unsigned long long)total);
out:
    OPENSSL_cleanse(dek, sizeof dek);
    if (plain.data)
        OPENSSL_cleanse(plain.data, plain.cap);
    if (tmp.data)
        OPENSSL_cleanse(tmp.data, tmp.cap);
    mv_buf_free(&hv);
    mv_buf_free(&cv);
    mv_buf_free(&tmp);
    mv_buf_free(&plain);
    return st;
}
