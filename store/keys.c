/* SPDX-License-Identifier: MIT */
/* keys.c - the keystore, key derivation, key wrapping, AEAD.
 *
 * Only this file (and later ingest/escrow.c) holds key bytes.  Root secret,
 * derived keys and unwrapped KEKs live in mv_secret (locked, undumpable,
 * wiped).  DEKs pass through caller stack buffers for one seal or open and
 * are wiped by the caller.
 *
 * Nonces: AES-KWP is deterministic and needs none.  Every GCM key used here
 * is a DEK created fresh for one object (seal.c): a record is sealed once
 * under its own DEK with a fixed nonce, a blob's chunks use the chunk
 * counter as nonce under the blob's own DEK.  A (key, nonce) pair therefore
 * never repeats without a random-nonce birthday bound to track. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "../lib/digest.h"
#include "../lib/rand.h"
#include "../lib/util.h"

#define KS_MAGIC "MVKS"
#define KS_VERSION 1
#define KDF_KEYFILE 1
#define KDF_SCRYPT 2
#define SCRYPT_DEFAULT_N (1u << 17)
#define SCRYPT_R 8
#define SCRYPT_P 1
#define KS_MAX_BYTES (16u << 20)

typedef struct kek {
    uint32_t no;
    char *name;
    uint32_t version;
    int64_t created;
    int active;
    uint8_t wrapped[MV_WRAPPED_LEN];
    mv_secret *key; /* unwrapped lazily */
} kek;

struct mv_keys {
    uint64_t inst; /* unique per open keystore in this process: names its KEKs in caches */
    char *path;
    pthread_mutex_t mu;
    uint8_t kdf;
    uint64_t n;
    uint32_t r, p;
    uint8_t salt[16];
    uint8_t archive_id[MV_ARCHIVE_ID_LEN];
    int64_t created;
    uint8_t root_wrapped[MV_WRAPPED_LEN];
    mv_secret *root;
    mv_secret *derived[MV_DERIVE_COUNT];
    uint8_t sign_wrapped[MV_WRAPPED_LEN];
    uint8_t sign_pub[32];
    kek *keks;
    size_t nkeks;
    uint32_t next_no;
};

static const char *const derive_info[MV_DERIVE_COUNT] = {
    [MV_DERIVE_KEYSTORE_MAC] = "mailvault/v1/keystore-mac",
    [MV_DERIVE_KEK_WRAP] = "mailvault/v1/kek-wrap",
    [MV_DERIVE_BLOB_ID] = "mailvault/v1/blob-id",
    [MV_DERIVE_DEDUP_ID] = "mailvault/v1/dedup-id",
    [MV_DERIVE_COPY_ID] = "mailvault/v1/copy-id",
    [MV_DERIVE_INDEX_PRF] = "mailvault/v1/index-prf",
    [MV_DERIVE_LOG_MAC] = "mailvault/v1/log-mac",
};

/* ---- primitives ---------------------------------------------------------- */

static EVP_CIPHER *cipher_kwp, *cipher_kwp192, *cipher_gcm;
static pthread_once_t cipher_once = PTHREAD_ONCE_INIT;

static void fetch_ciphers(void)
{
    /* Fetch once: an implicit fetch per call costs more than the AES work
     * on small records. */
    cipher_kwp = EVP_CIPHER_fetch(NULL, "AES-256-WRAP-PAD", NULL);
    /* Only for the RFC 5649 known-answer tests, whose KEK is 192 bits. */
    cipher_kwp192 = EVP_CIPHER_fetch(NULL, "AES-192-WRAP-PAD", NULL);
    cipher_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static mv_status need_ciphers(mv_err *err)
{
    pthread_once(&cipher_once, fetch_ciphers);
    if (!cipher_kwp || !cipher_gcm)
        return mv_err_openssl(err, "fetching AES-256-WRAP-PAD / AES-256-GCM");
    return MV_OK;
}

static mv_status kwp(int enc, const uint8_t *kek_bytes, size_t keklen, const uint8_t *in, size_t n,
                     uint8_t *out, size_t *outlen, mv_err *err)
{
    mv_status st = need_ciphers(err);
    if (st)
        return st;
    const EVP_CIPHER *ciph = keklen == 32 ? cipher_kwp : keklen == 24 ? cipher_kwp192 : NULL;
    if (!ciph)
        return mv_err_set(err, MV_EINTERNAL, "KWP key must be 32 (or 24) bytes");
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    if (!c)
        return mv_err_openssl(err, "EVP_CIPHER_CTX_new");
    EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (!EVP_CipherInit_ex2(c, ciph, kek_bytes, NULL, enc, NULL) ||
        !EVP_CipherUpdate(c, out, &l1, in, (int)n) || !EVP_CipherFinal_ex(c, out + l1, &l2)) {
        EVP_CIPHER_CTX_free(c);
        if (enc)
            return mv_err_openssl(err, "AES-KWP wrap");
        ERR_clear_error(); /* an unwrap failure is an answer, not a fault */
        return mv_err_set(err, MV_ECRYPTO, "key unwrap failed: wrong key or damaged data");
    }
    EVP_CIPHER_CTX_free(c);
    *outlen = (size_t)(l1 + l2);
    return MV_OK;
}

mv_status mv_kwp_wrap(const uint8_t *k, size_t kl, const uint8_t *in, size_t n, uint8_t *out,
                      size_t *outlen, mv_err *err)
{
    return kwp(1, k, kl, in, n, out, outlen, err);
}

mv_status mv_kwp_unwrap(const uint8_t *k, size_t kl, const uint8_t *in, size_t n, uint8_t *out,
                        size_t *outlen, mv_err *err)
{
    return kwp(0, k, kl, in, n, out, outlen, err);
}

/* One cipher context per thread: GCM runs for every record and chunk. */
static pthread_key_t gcm_tls;
static pthread_once_t gcm_tls_once = PTHREAD_ONCE_INIT;
static void gcm_ctx_free(void *p)
{
    EVP_CIPHER_CTX_free(p);
}
static void gcm_tls_init(void)
{
    pthread_key_create(&gcm_tls, gcm_ctx_free);
}
static EVP_CIPHER_CTX *gcm_ctx(void)
{
    pthread_once(&gcm_tls_once, gcm_tls_init);
    EVP_CIPHER_CTX *c = pthread_getspecific(gcm_tls);
    if (!c) {
        c = EVP_CIPHER_CTX_new();
        if (!c)
            return NULL;
        pthread_setspecific(gcm_tls, c);
    }
    return c;
}

mv_status mv_gcm_seal(const uint8_t key[32], const uint8_t nonce[12], const void *aad,
                      size_t aadlen, const void *in, size_t n, uint8_t *out, uint8_t tag[16],
                      mv_err *err)
{
    mv_status st = need_ciphers(err);
    if (st)
        return st;
    EVP_CIPHER_CTX *c = gcm_ctx();
    int l = 0;
    if (!c || n > INT32_MAX || aadlen > INT32_MAX)
        return mv_err_set(err, MV_EINTERNAL, "GCM context or size");
    if (!EVP_EncryptInit_ex2(c, cipher_gcm, key, nonce, NULL) ||
        (aadlen && !EVP_EncryptUpdate(c, NULL, &l, aad, (int)aadlen)) ||
        (n && !EVP_EncryptUpdate(c, out, &l, in, (int)n)) || !EVP_EncryptFinal_ex(c, out + l, &l) ||
        !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag))
        return mv_err_openssl(err, "AES-256-GCM seal");
    return MV_OK;
}

mv_status mv_gcm_open(const uint8_t key[32], const uint8_t nonce[12], const void *aad,
                      size_t aadlen, const void *in, size_t n, const uint8_t tag[16], uint8_t *out,
                      mv_err *err)
{
    mv_status st = need_ciphers(err);
    if (st)
        return st;
    EVP_CIPHER_CTX *c = gcm_ctx();
    int l = 0;
    if (!c || n > INT32_MAX || aadlen > INT32_MAX)
        return mv_err_set(err, MV_EINTERNAL, "GCM context or size");
    if (!EVP_DecryptInit_ex2(c, cipher_gcm, key, nonce, NULL) ||
        (aadlen && !EVP_DecryptUpdate(c, NULL, &l, aad, (int)aadlen)) ||
        (n && !EVP_DecryptUpdate(c, out, &l, in, (int)n)) ||
        !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag))
        return mv_err_openssl(err, "AES-256-GCM open");
    if (EVP_DecryptFinal_ex(c, out + l, &l) <= 0) {
        ERR_clear_error();
        OPENSSL_cleanse(out, n);
        return mv_err_set(err, MV_ECRYPTO,
                          "authentication failed: stored data was altered or damaged");
    }
    return MV_OK;
}

static mv_status hkdf(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
                      const char *info, uint8_t *out, size_t outlen, mv_err *err)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *c = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!c)
        return mv_err_openssl(err, "HKDF");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikmlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(c, out, outlen, params);
    EVP_KDF_CTX_free(c);
    return ok > 0 ? MV_OK : mv_err_openssl(err, "HKDF derive");
}

static mv_status scrypt(const char *pass, size_t passlen, const uint8_t salt[16], uint64_t n,
                        uint32_t r, uint32_t p, uint8_t out[32], mv_err *err)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *c = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!c)
        return mv_err_openssl(err, "scrypt");
    uint64_t maxmem = 129 * n * r * p + (64u << 20); /* default cap is 32 MiB: too small */
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pass, passlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, 16),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(c, out, 32, params);
    EVP_KDF_CTX_free(c);
    return ok > 0 ? MV_OK : mv_err_openssl(err, "scrypt derive");
}

static void hmac256(const uint8_t *key, const void *a, size_t an, const void *b, size_t bn,
                    uint8_t out[32])
{
    /* Two-part HMAC without a heap context: SHA-256 of (ipad||a||b), then
     * of (opad||inner).  Done by hand because HMAC() takes one buffer and
     * callers hash (bucket, digest) pairs on the hot path. */
    uint8_t pad[64], inner[32];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    mv_assert(c);
    for (int i = 0; i < 64; i++)
        pad[i] = (uint8_t)((i < 32 ? key[i] : 0) ^ 0x36);
    mv_assert(EVP_DigestInit_ex(c, mv_md_sha256(), NULL) && EVP_DigestUpdate(c, pad, 64) &&
              EVP_DigestUpdate(c, a, an) && (!bn || EVP_DigestUpdate(c, b, bn)) &&
              EVP_DigestFinal_ex(c, inner, NULL));
    for (int i = 0; i < 64; i++)
        pad[i] = (uint8_t)((i < 32 ? key[i] : 0) ^ 0x5c);
    mv_assert(EVP_DigestInit_ex(c, mv_md_sha256(), NULL) && EVP_DigestUpdate(c, pad, 64) &&
              EVP_DigestUpdate(c, inner, 32) && EVP_DigestFinal_ex(c, out, NULL));
    EVP_MD_CTX_free(c);
    OPENSSL_cleanse(pad, sizeof pad);
}

/* ---- PRF handles ----------------------------------------------------------- */

struct mv_prf {
    EVP_MD_CTX *inner, *outer; /* SHA-256 after absorbing ipad / opad */
};

static pthread_key_t prf_tls;
static pthread_once_t prf_once = PTHREAD_ONCE_INIT;

static void prf_tls_free(void *c)
{
    EVP_MD_CTX_free(c);
}

static void prf_tls_init(void)
{
    mv_assert(pthread_key_create(&prf_tls, prf_tls_free) == 0);
}

mv_prf *mv_keys_prf_new(mv_keys *k, mv_derive purpose)
{
    const uint8_t *key = k->derived[purpose]->p;
    mv_prf *p = mv_xcalloc(1, sizeof *p);
    uint8_t pad[64];
    p->inner = EVP_MD_CTX_new();
    p->outer = EVP_MD_CTX_new();
    mv_assert(p->inner && p->outer);
    for (int i = 0; i < 64; i++)
        pad[i] = (uint8_t)((i < 32 ? key[i] : 0) ^ 0x36);
    mv_assert(EVP_DigestInit_ex(p->inner, mv_md_sha256(), NULL) &&
              EVP_DigestUpdate(p->inner, pad, 64));
    for (int i = 0; i < 64; i++)
        pad[i] = (uint8_t)((i < 32 ? key[i] : 0) ^ 0x5c);
    mv_assert(EVP_DigestInit_ex(p->outer, mv_md_sha256(), NULL) &&
              EVP_DigestUpdate(p->outer, pad, 64));
    OPENSSL_cleanse(pad, sizeof pad);
    return p;
}

void mv_prf_eval(const mv_prf *p, const void *in, size_t n, uint8_t out[32])
{
    pthread_once(&prf_once, prf_tls_init);
    EVP_MD_CTX *c = pthread_getspecific(prf_tls);
    if (!c) {
        mv_assert((c = EVP_MD_CTX_new()) != NULL);
        mv_assert(pthread_setspecific(prf_tls, c) == 0);
    }
    uint8_t inner[32];
    mv_assert(EVP_MD_CTX_copy_ex(c, p->inner) && EVP_DigestUpdate(c, in, n) &&
              EVP_DigestFinal_ex(c, inner, NULL));
    mv_assert(EVP_MD_CTX_copy_ex(c, p->outer) && EVP_DigestUpdate(c, inner, 32) &&
              EVP_DigestFinal_ex(c, out, NULL));
    OPENSSL_cleanse(inner, sizeof inner);
}

void mv_prf_free(mv_prf *p)
{
    if (!p)
        return;
    EVP_MD_CTX_free(p->inner);
    EVP_MD_CTX_free(p->outer);
    free(p);
}

/* ---- AES-KWP on AES-NI ----------------------------------------------------
 *
 * OpenSSL 3.0's AES-WRAP-PAD runs the table-based AES_encrypt and expands
 * the key on every call; wrapping a DEK for every record made it a tenth of
 * the ingest CPU.  This is RFC 5649 (for the 32-byte keys we wrap, n = 4
 * semiblocks, so the RFC 3394 W function) over AES-256-ECB contexts that
 * each thread keeps per KEK.  It is checked in the unit tests against
 * OpenSSL's implementation and against the RFC's own vectors. */

#define KWP_CACHE 8

typedef struct kwp_ctx {
    uint64_t inst;
    uint32_t no;
    EVP_CIPHER_CTX *enc, *dec;
} kwp_ctx;

typedef struct kwp_cache {
    kwp_ctx e[KWP_CACHE];
    unsigned next;
} kwp_cache;

static pthread_key_t kwp_tls;
static pthread_once_t kwp_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *cipher_ecb;

static void kwp_cache_free(void *p)
{
    kwp_cache *c = p;
    for (unsigned i = 0; i < KWP_CACHE; i++) {
        EVP_CIPHER_CTX_free(c->e[i].enc);
        EVP_CIPHER_CTX_free(c->e[i].dec);
    }
    free(c);
}

static void kwp_init(void)
{
    pthread_key_create(&kwp_tls, kwp_cache_free);
    cipher_ecb = EVP_CIPHER_fetch(NULL, "AES-256-ECB", NULL);
}

/* kwp_ctx_for - this thread's ECB contexts for KEK (inst, no), made from
 * key on first use.  Numbers are never reused within a keystore and inst
 * never within the process, so an entry can never hold a stale key. */
static kwp_ctx *kwp_ctx_for(uint64_t inst, uint32_t no, const uint8_t *key)
{
    pthread_once(&kwp_once, kwp_init);
    if (!cipher_ecb)
        return NULL;
    kwp_cache *c = pthread_getspecific(kwp_tls);
    if (!c) {
        c = mv_xcalloc(1, sizeof *c);
        pthread_setspecific(kwp_tls, c);
    }
    for (unsigned i = 0; i < KWP_CACHE; i++)
        if (c->e[i].enc && c->e[i].inst == inst && c->e[i].no == no)
            return &c->e[i];
    kwp_ctx *e = &c->e[c->next++ % KWP_CACHE];
    EVP_CIPHER_CTX_free(e->enc);
    EVP_CIPHER_CTX_free(e->dec);
    e->enc = EVP_CIPHER_CTX_new();
    e->dec = EVP_CIPHER_CTX_new();
    if (!e->enc || !e->dec || !EVP_EncryptInit_ex2(e->enc, cipher_ecb, key, NULL, NULL) ||
        !EVP_DecryptInit_ex2(e->dec, cipher_ecb, key, NULL, NULL) ||
        !EVP_CIPHER_CTX_set_padding(e->enc, 0) || !EVP_CIPHER_CTX_set_padding(e->dec, 0)) {
        EVP_CIPHER_CTX_free(e->enc);
        EVP_CIPHER_CTX_free(e->dec);
        e->enc = e->dec = NULL;
        ERR_clear_error();
        return NULL;
    }
    e->inst = inst;
    e->no = no;
    return e;
}

static int aes_block(EVP_CIPHER_CTX *c, uint8_t b[16])
{
    int l = 0;
    return EVP_CipherUpdate(c, b, &l, b, 16) && l == 16;
}

/* kwp_wrap32 - RFC 5649 wrap of a 32-byte key (AIV A65959A6 || 00000020). */
static int kwp_wrap32(EVP_CIPHER_CTX *enc, const uint8_t in[32], uint8_t out[40])
{
    uint8_t a[8] = {0xa6, 0x59, 0x59, 0xa6, 0, 0, 0, 32}, r[4][8], b[16];
    memcpy(r, in, 32);
    for (unsigned j = 0; j < 6; j++)
        for (unsigned i = 0; i < 4; i++) {
            memcpy(b, a, 8);
            memcpy(b + 8, r[i], 8);
            if (!aes_block(enc, b))
                return 0;
            uint64_t t = (uint64_t)4 * j + i + 1;
            memcpy(a, b, 8);
            for (int x = 7; x >= 0 && t; x--, t >>= 8)
                a[x] ^= (uint8_t)t;
            memcpy(r[i], b + 8, 8);
        }
    memcpy(out, a, 8);
    memcpy(out + 8, r, 32);
    OPENSSL_cleanse(r, sizeof r);
    OPENSSL_cleanse(b, sizeof b);
    return 1;
}

/* kwp_unwrap32 - inverse; 0 unless the integrity check value is right. */
static int kwp_unwrap32(EVP_CIPHER_CTX *dec, const uint8_t in[40], uint8_t out[32])
{
    static const uint8_t aiv[8] = {0xa6, 0x59, 0x59, 0xa6, 0, 0, 0, 32};
    uint8_t a[8], r[4][8], b[16];
    memcpy(a, in, 8);
    memcpy(r, in + 8, 32);
    for (int j = 5; j >= 0; j--)
        for (int i = 3; i >= 0; i--) {
            uint64_t t = (uint64_t)4 * (unsigned)j + (unsigned)i + 1;
            for (int x = 7; x >= 0 && t; x--, t >>= 8)
                a[x] ^= (uint8_t)t;
            memcpy(b, a, 8);
            memcpy(b + 8, r[i], 8);
            if (!aes_block(dec, b))
                return 0;
            memcpy(a, b, 8);
            memcpy(r[i], b + 8, 8);
        }
    int ok = CRYPTO_memcmp(a, aiv, 8) == 0;
    if (ok)
        memcpy(out, r, 32);
    OPENSSL_cleanse(r, sizeof r);
    OPENSSL_cleanse(b, sizeof b);
    return ok;
}

mv_status mv_kwp_fast_selftest(const uint8_t key[32], const uint8_t in[32], uint8_t out[40],
                               mv_err *err)
{
    static _Atomic uint64_t test_inst = UINT64_MAX / 2;
    kwp_ctx *c = kwp_ctx_for(test_inst++, 0, key);
    uint8_t back[32];
    if (!c || !kwp_wrap32(c->enc, in, out) || !kwp_unwrap32(c->dec, out, back) ||
        memcmp(back, in, 32) != 0)
        return mv_err_set(err, MV_ECRYPTO, "fast KWP self-test failed");
    return MV_OK;
}

/* ---- master key ---------------------------------------------------------- */

static mv_status check_secret_file(const char *path, const char *what, mv_err *err)
{
    struct stat stb;
    if (stat(path, &stb) < 0) {
        if (errno == ENOENT)
            return mv_err_set(err, MV_ENOTFOUND, "%s %s does not exist", what, path);
        return mv_err_sys(err, "%s %s", what, path);
    }
    if (!S_ISREG(stb.st_mode))
        return mv_err_set(err, MV_ENOKEY, "%s %s is not a regular file", what, path);
    if (stb.st_mode & (S_IROTH | S_IWOTH))
        return mv_err_set(err, MV_EPERM,
                          "%s %s is accessible by other users (mode %03o); run: chmod 600 %s",
                          what, path, (unsigned)(stb.st_mode & 0777), path);
    return MV_OK;
}

/* master_key - turn the key source into the 32-byte master key. */
static mv_status master_key(const mv_keysrc *src, uint8_t kdf, uint64_t n, uint32_t r, uint32_t p,
                            const uint8_t salt[16], mv_secret **out, mv_err *err)
{
    mv_buf b = MV_BUF_INIT;
    mv_status st;
    *out = NULL;
    if (!src || (!!src->key_file == !!src->passphrase_file))
        return mv_err_set(err, MV_EUSAGE,
                          "give exactly one of --key-file or --passphrase-file "
                          "(or MAILVAULT_KEY_FILE / MAILVAULT_PASSPHRASE_FILE)");
    const char *path = src->key_file ? src->key_file : src->passphrase_file;
    const char *what = src->key_file ? "key file" : "passphrase file";
    if ((st = check_secret_file(path, what, err)) != MV_OK)
        return st;
    if ((st = mv_read_file(path, 4096, &b, err)) != MV_OK)
        goto out;
    if (src->key_file) {
        if (kdf != KDF_KEYFILE) {
            st = mv_err_set(err, MV_ENOKEY, "this archive is unlocked with a passphrase, not a key file");
            goto out;
        }
        mv_secret *k = mv_secret_new(32);
        size_t len = b.len;
        if (len == 32) {
            memcpy(k->p, b.data, 32);
        } else {
            while (len && (b.data[len - 1] == '\n' || b.data[len - 1] == '\r'))
                len--;
            char hex[65];
            if (len != 64) {
                mv_secret_free(k);
                st = mv_err_set(err, MV_ENOKEY,
                                "key file %s must hold 32 bytes (or 64 hex digits); it holds %zu",
                                path, b.len);
                goto out;
            }
            memcpy(hex, b.data, 64);
            hex[64] = '\0';
            if (mv_unhex(hex, k->p, 32) < 0) {
                mv_secret_free(k);
                st = mv_err_set(err, MV_ENOKEY, "key file %s: not 64 hex digits", path);
                goto out;
            }
        }
        *out = k;
    } else {
        if (kdf != KDF_SCRYPT) {
            st = mv_err_set(err, MV_ENOKEY, "this archive is unlocked with a key file, not a passphrase");
            goto out;
        }
        size_t len = b.len;
        if (len && b.data[len - 1] == '\n')
            len--;
        if (len && b.data[len - 1] == '\r')
            len--;
        if (len < 8) {
            st = mv_err_set(err, MV_ENOKEY, "passphrase in %s is shorter than 8 characters", path);
            goto out;
        }
        mv_secret *k = mv_secret_new(32);
        if ((st = scrypt((const char *)b.data, len, salt, n, r, p, k->p, err)) != MV_OK) {
            mv_secret_free(k);
            goto out;
        }
        *out = k;
    }
    st = MV_OK;
out:
    mv_buf_wipe(&b);
    return st;
}

/* ---- keystore file ------------------------------------------------------- */

static mv_status derive_all(mv_keys *k, mv_err *err)
{
    for (int i = 0; i < MV_DERIVE_COUNT; i++) {
        k->derived[i] = mv_secret_new(32);
        mv_status st = hkdf(k->root->p, 32, k->archive_id, sizeof k->archive_id, derive_info[i],
                            k->derived[i]->p, 32, err);
        if (st)
            return st;
    }
    return MV_OK;
}

static void encode(const mv_keys *k, mv_buf *out)
{
    mv_buf body = MV_BUF_INIT;
    mv_buf_put_u64(&body, (uint64_t)k->created);
    mv_buf_put_lp(&body, k->sign_wrapped, MV_WRAPPED_LEN);
    mv_buf_append(&body, k->sign_pub, 32);
    mv_buf_put_u32(&body, k->next_no);
    mv_buf_put_u32(&body, (uint32_t)k->nkeks);
    for (size_t i = 0; i < k->nkeks; i++) {
        const kek *e = &k->keks[i];
        mv_buf_put_u32(&body, e->no);
        mv_buf_put_str(&body, e->name);
        mv_buf_put_u32(&body, e->version);
        mv_buf_put_u64(&body, (uint64_t)e->created);
        mv_buf_put_u8(&body, (uint8_t)e->active);
        mv_buf_put_lp(&body, e->wrapped, MV_WRAPPED_LEN);
    }
    mv_buf_append(out, KS_MAGIC, 4);
    mv_buf_put_u32(out, KS_VERSION);
    mv_buf_put_u8(out, k->kdf);
    mv_buf_put_u64(out, k->n);
    mv_buf_put_u32(out, k->r);
    mv_buf_put_u32(out, k->p);
    mv_buf_append(out, k->salt, 16);
    mv_buf_append(out, k->archive_id, MV_ARCHIVE_ID_LEN);
    mv_buf_put_lp(out, k->root_wrapped, MV_WRAPPED_LEN);
    mv_buf_put_lp(out, body.data, body.len);
    mv_buf_free(&body);
    uint8_t mac[32];
    hmac256(k->derived[MV_DERIVE_KEYSTORE_MAC]->p, out->data, out->len, NULL, 0, mac);
    mv_buf_append(out, mac, 32);
}

/* save - rewrite the keystore atomically; callers hold mu (or own k alone). */
static mv_status save(mv_keys *k, mv_err *err)
{
    mv_buf b = MV_BUF_INIT;
    encode(k, &b);
    mv_status st = mv_write_file_atomic(k->path, b.data, b.len, 0600, err);
    mv_buf_free(&b);
    if (st)
        mv_err_prefix(err, "writing keystore: ");
    return st;
}

static void keys_free_keks(mv_keys *k)
{
    for (size_t i = 0; i < k->nkeks; i++) {
        free(k->keks[i].name);
        mv_secret_free(k->keks[i].key);
    }
    free(k->keks);
    k->keks = NULL;
    k->nkeks = 0;
}

void mv_keys_free(mv_keys *k)
{
    if (!k)
        return;
    keys_free_keks(k);
    mv_secret_free(k->root);
    for (int i = 0; i < MV_DERIVE_COUNT; i++)
        mv_secret_free(k->derived[i]);
    pthread_mutex_destroy(&k->mu);
    free(k->path);
    free(k);
}

static mv_keys *keys_alloc(const char *path)
{
    static _Atomic uint64_t next_inst = 1;
    mv_keys *k = mv_xcalloc(1, sizeof *k);
    k->inst = next_inst++;
    k->path = mv_xstrdup(path);
    pthread_mutex_init(&k->mu, NULL);
    return k;
}

static mv_status wrap_root(mv_keys *k, const mv_keysrc *src, const mv_kdf_params *kp, mv_err *err)
{
    mv_secret *mk = NULL;
    size_t wl = 0;
    k->kdf = src->key_file ? KDF_KEYFILE : KDF_SCRYPT;
    k->n = k->kdf == KDF_SCRYPT ? (kp && kp->scrypt_n ? kp->scrypt_n : SCRYPT_DEFAULT_N) : 0;
    k->r = k->kdf == KDF_SCRYPT ? SCRYPT_R : 0;
    k->p = k->kdf == KDF_SCRYPT ? SCRYPT_P : 0;
    if (k->n & (k->n - 1))
        return mv_err_set(err, MV_EUSAGE, "scrypt N must be a power of two");
    if (RAND_bytes(k->salt, 16) != 1)
        return mv_err_openssl(err, "RAND_bytes");
    mv_status st = master_key(src, k->kdf, k->n, k->r, k->p, k->salt, &mk, err);
    if (st)
        return st;
    st = mv_kwp_wrap(mk->p, 32, k->root->p, 32, k->root_wrapped, &wl, err);
    mv_secret_free(mk);
    if (!st && wl != MV_WRAPPED_LEN)
        st = mv_err_set(err, MV_EINTERNAL, "unexpected wrap length %zu", wl);
    return st;
}

mv_status mv_keys_create(const char *path, const mv_keysrc *src, const mv_kdf_params *kp,
                         mv_keys **out, mv_err *err)
{
    mv_status st;
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *pc = NULL;
    *out = NULL;
    if (access(path, F_OK) == 0)
        return mv_err_set(err, MV_EEXIST, "%s already exists", path);
    mv_keys *k = keys_alloc(path);
    k->root = mv_secret_new(32);
    k->created = mv_now();
    k->next_no = 1;
    if (RAND_bytes(k->root->p, 32) != 1 || RAND_bytes(k->archive_id, sizeof k->archive_id) != 1) {
        st = mv_err_openssl(err, "RAND_bytes");
        goto out;
    }
    if ((st = wrap_root(k, src, kp, err)) || (st = derive_all(k, err)))
        goto out;
    /* The Ed25519 signing key for tree heads and export custody records. */
    pc = EVP_PKEY_CTX_new_from_name(NULL, "ED25519", NULL);
    if (!pc || EVP_PKEY_keygen_init(pc) <= 0 || EVP_PKEY_keygen(pc, &pk) <= 0) {
        st = mv_err_openssl(err, "Ed25519 keygen");
        goto out;
    }
    mv_secret *priv = mv_secret_new(32);
    size_t l = 32, pl = 32, wl = 0;
    if (EVP_PKEY_get_raw_private_key(pk, priv->p, &l) <= 0 ||
        EVP_PKEY_get_raw_public_key(pk, k->sign_pub, &pl) <= 0) {
        mv_secret_free(priv);
        st = mv_err_openssl(err, "Ed25519 export");
        goto out;
    }
    st = mv_kwp_wrap(k->derived[MV_DERIVE_KEK_WRAP]->p, 32, priv->p, 32, k->sign_wrapped, &wl, err);
    mv_secret_free(priv);
    if (st || (st = save(k, err)))
        goto out;
    *out = k;
    k = NULL;
out:
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(pc);
    mv_keys_free(k);
    return st;
}

static mv_status decode(mv_keys *k, const uint8_t *p, size_t n, const mv_keysrc *src, mv_err *err)
{
    mv_rd r;
    mv_status st;
    mv_secret *mk = NULL;
    size_t wl, bl, ol = 0;
    if (n < 4 + 32 || memcmp(p, KS_MAGIC, 4) != 0)
        return mv_err_set(err, MV_EMALFORMED, "%s is not a mailvault keystore", k->path);
    mv_rd_init(&r, p + 4, n - 4 - 32);
    uint32_t ver = mv_rd_u32(&r);
    k->kdf = mv_rd_u8(&r);
    k->n = mv_rd_u64(&r);
    k->r = mv_rd_u32(&r);
    k->p = mv_rd_u32(&r);
    const uint8_t *salt = mv_rd_bytes(&r, 16);
    const uint8_t *aid = mv_rd_bytes(&r, MV_ARCHIVE_ID_LEN);
    const uint8_t *w = mv_rd_lp(&r, &wl);
    const uint8_t *body = mv_rd_lp(&r, &bl);
    if (r.bad || r.left || ver != KS_VERSION || wl != MV_WRAPPED_LEN ||
        (k->kdf != KDF_KEYFILE && k->kdf != KDF_SCRYPT) ||
        (k->kdf == KDF_SCRYPT && (k->n < 2 || k->n > (1ull << 24) || k->r != SCRYPT_R || k->p != SCRYPT_P)))
        return mv_err_set(err, MV_EMALFORMED, "keystore %s is damaged (header)", k->path);
    memcpy(k->salt, salt, 16);
    memcpy(k->archive_id, aid, MV_ARCHIVE_ID_LEN);
    memcpy(k->root_wrapped, w, MV_WRAPPED_LEN);
    if ((st = master_key(src, k->kdf, k->n, k->r, k->p, k->salt, &mk, err)) != MV_OK)
        return st;
    k->root = mv_secret_new(32);
    st = mv_kwp_unwrap(mk->p, 32, k->root_wrapped, MV_WRAPPED_LEN, k->root->p, &ol, err);
    mv_secret_free(mk);
    if (st || ol != 32)
        return mv_err_set(err, MV_ENOKEY, "wrong key or passphrase for this archive");
    if ((st = derive_all(k, err)) != MV_OK)
        return st;
    uint8_t mac[32];
    hmac256(k->derived[MV_DERIVE_KEYSTORE_MAC]->p, p, n - 32, NULL, 0, mac);
    if (CRYPTO_memcmp(mac, p + n - 32, 32) != 0)
        return mv_err_set(err, MV_ENOKEY,
                          "keystore %s failed its integrity check: wrong key, or the file was altered",
                          k->path);
    /* Only now, authenticated, is the body parsed. */
    mv_rd_init(&r, body, bl);
    k->created = (int64_t)mv_rd_u64(&r);
    const uint8_t *sw = mv_rd_lp(&r, &wl);
    const uint8_t *spub = mv_rd_bytes(&r, 32);
    k->next_no = mv_rd_u32(&r);
    uint32_t cnt = mv_rd_u32(&r);
    if (r.bad || wl != MV_WRAPPED_LEN || cnt > 1000000)
        return mv_err_set(err, MV_EMALFORMED, "keystore %s is damaged (body)", k->path);
    memcpy(k->sign_wrapped, sw, MV_WRAPPED_LEN);
    memcpy(k->sign_pub, spub, 32);
    k->keks = mv_xcalloc(cnt ? cnt : 1, sizeof *k->keks);
    for (uint32_t i = 0; i < cnt; i++) {
        kek *e = &k->keks[k->nkeks];
        e->no = mv_rd_u32(&r);
        e->name = mv_rd_str(&r);
        e->version = mv_rd_u32(&r);
        e->created = (int64_t)mv_rd_u64(&r);
        e->active = mv_rd_u8(&r);
        const uint8_t *ew = mv_rd_lp(&r, &wl);
        if (!e->name)
            break;
        k->nkeks++;
        if (r.bad || wl != MV_WRAPPED_LEN)
            break;
        memcpy(e->wrapped, ew, MV_WRAPPED_LEN);
    }
    if (r.bad || r.left)
        return mv_err_set(err, MV_EMALFORMED, "keystore %s is damaged (KEK table)", k->path);
    return MV_OK;
}

mv_status mv_keys_open(const char *path, const mv_keysrc *src, mv_keys **out, mv_err *err)
{
    mv_buf b = MV_BUF_INIT;
    *out = NULL;
    mv_keys *k = keys_alloc(path);
    mv_status st = mv_read_file(path, KS_MAX_BYTES, &b, err);
    if (st == MV_ENOTFOUND)
        st = mv_err_set(err, MV_ENOTFOUND, "no keystore at %s: is this an archive? (mailvault init)", path);
    if (!st)
        st = decode(k, b.data, b.len, src, err);
    mv_buf_free(&b);
    if (st) {
        mv_keys_free(k);
        return st;
    }
    *out = k;
    return MV_OK;
}

const uint8_t *mv_keys_archive_id(const mv_keys *k)
{
    return k->archive_id;
}

void mv_keys_mac(mv_keys *k, mv_derive purpose, const void *p, size_t n, uint8_t out[32])
{
    hmac256(k->derived[purpose]->p, p, n, NULL, 0, out);
}

void mv_keys_mac2(mv_keys *k, mv_derive purpose, const void *a, size_t an, const void *b, size_t bn,
                  uint8_t out[32])
{
    hmac256(k->derived[purpose]->p, a, an, b, bn, out);
}

/* ---- KEKs ---------------------------------------------------------------- */

static kek *find_no(mv_keys *k, uint32_t no)
{
    for (size_t i = 0; i < k->nkeks; i++)
        if (k->keks[i].no == no)
            return &k->keks[i];
    return NULL;
}

static kek *find_active(mv_keys *k, const char *name)
{
    for (size_t i = 0; i < k->nkeks; i++)
        if (k->keks[i].active && strcmp(k->keks[i].name, name) == 0)
            return &k->keks[i];
    return NULL;
}

/* add_kek - a new random KEK version for name; caller holds mu and saves. */
static mv_status add_kek(mv_keys *k, const char *name, uint32_t version, uint32_t *no, mv_err *err)
{
    mv_secret *key = mv_secret_new(32);
    uint8_t w[MV_WRAPPED_LEN];
    size_t wl = 0;
    if (RAND_bytes(key->p, 32) != 1) {
        mv_secret_free(key);
        return mv_err_openssl(err, "RAND_bytes");
    }
    mv_status st = mv_kwp_wrap(k->derived[MV_DERIVE_KEK_WRAP]->p, 32, key->p, 32, w, &wl, err);
    if (st) {
        mv_secret_free(key);
        return st;
    }
    k->keks = mv_xrealloc(k->keks, (k->nkeks + 1) * sizeof *k->keks);
    kek *e = &k->keks[k->nkeks++];
    memset(e, 0, sizeof *e);
    e->no = k->next_no++;
    e->name = mv_xstrdup(name);
    e->version = version;
    e->created = mv_now();
    e->active = 1;
    memcpy(e->wrapped, w, MV_WRAPPED_LEN);
    e->key = key;
    *no = e->no;
    return MV_OK;
}

mv_status mv_keys_active_kek(mv_keys *k, const char *name, uint32_t *kek_no, mv_err *err)
{
    mv_status st = MV_OK;
    pthread_mutex_lock(&k->mu);
    kek *e = find_active(k, name);
    if (e) {
        *kek_no = e->no;
    } else {
        /* Durable before first use: a DEK wrapped under a KEK the keystore
         * lost would be unreadable forever. */
        size_t before = k->nkeks;
        uint32_t next = k->next_no;
        st = add_kek(k, name, 1, kek_no, err);
        if (!st && (st = save(k, err)) != MV_OK) {
            free(k->keks[before].name);
            mv_secret_free(k->keks[before].key);
            k->nkeks = before;
            k->next_no = next;
        }
    }
    pthread_mutex_unlock(&k->mu);
    return st;
}

/* kek_key - the unwrapped key of KEK no; caller holds mu. */
static mv_status kek_key(mv_keys *k, uint32_t no, const uint8_t **key, mv_err *err)
{
    kek *e = find_no(k, no);
    if (!e)
        return mv_err_set(err, MV_ENOKEY, "key-encryption key #%u is not in the keystore "
                          "(destroyed by a purge, or the keystore is not this archive's)", no);
    if (!e->key) {
        size_t ol = 0;
        mv_secret *s = mv_secret_new(32);
        mv_status st = mv_kwp_unwrap(k->derived[MV_DERIVE_KEK_WRAP]->p, 32, e->wrapped,
                                     MV_WRAPPED_LEN, s->p, &ol, err);
        if (st || ol != 32) {
            mv_secret_free(s);
            return mv_err_set(err, MV_ENOKEY, "key-encryption key #%u does not unwrap", no);
        }
        e->key = s;
    }
    *key = e->key->p;
    return MV_OK;
}

/* kek_ctx - this thread's KWP contexts for KEK no (NULL: use OpenSSL's). */
static kwp_ctx *kek_ctx(mv_keys *k, uint32_t no, mv_err *err, mv_status *st)
{
    const uint8_t *kk = NULL;
    pthread_mutex_lock(&k->mu);
    *st = kek_key(k, no, &kk, err);
    /* A KEK's bytes are never freed while the keystore is open (retired
     * ones are dropped only by mv_keys_drop_retired, single-threaded), so
     * the pointer may be used outside the lock. */
    pthread_mutex_unlock(&k->mu);
    return *st ? NULL : kwp_ctx_for(k->inst, no, kk);
}

mv_status mv_keys_wrap_new_dek(mv_keys *k, uint32_t kek_no, uint8_t dek[32],
                               uint8_t wrapped[MV_WRAPPED_LEN], mv_err *err)
{
    mv_status st;
    if (!mv_rand_bytes(dek, 32))
        return mv_err_openssl(err, "RAND_bytes");
    kwp_ctx *c = kek_ctx(k, kek_no, err, &st);
    if (st)
        return st;
    if (!c || !kwp_wrap32(c->enc, dek, wrapped))
        return mv_err_openssl(err, "AES-KWP wrap");
    return MV_OK;
}

mv_status mv_keys_unwrap_dek(mv_keys *k, uint32_t kek_no, const uint8_t *wrapped, size_t wlen,
                             uint8_t dek[32], mv_err *err)
{
    mv_status st;
    if (wlen != MV_WRAPPED_LEN)
        return mv_err_set(err, MV_EMALFORMED, "wrapped key has length %zu", wlen);
    kwp_ctx *c = kek_ctx(k, kek_no, err, &st);
    if (st)
        return st;
    if (!c || !kwp_unwrap32(c->dec, wrapped, dek))
        return mv_err_set(err, MV_ECRYPTO, "data key does not unwrap under key #%u: "
                          "the stored value was altered or damaged", kek_no);
    return MV_OK;
}

mv_status mv_keys_rewrap_dek(mv_keys *k, uint32_t from, uint32_t to, const uint8_t *wrapped,
                             size_t wlen, uint8_t out[MV_WRAPPED_LEN], mv_err *err)
{
    uint8_t dek[32];
    mv_status st = mv_keys_unwrap_dek(k, from, wrapped, wlen, dek, err);
    if (st)
        return st;
    kwp_ctx *c = kek_ctx(k, to, err, &st);
    if (!st && (!c || !kwp_wrap32(c->enc, dek, out)))
        st = mv_err_openssl(err, "AES-KWP wrap");
    OPENSSL_cleanse(dek, sizeof dek);
    return st;
}

void mv_keys_list(mv_keys *k, mv_kek_fn fn, void *ctx)
{
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->nkeks; i++) {
        mv_kek_info ki = {k->keks[i].no, k->keks[i].name, k->keks[i].version,
                          k->keks[i].created, k->keks[i].active};
        fn(ctx, &ki);
    }
    pthread_mutex_unlock(&k->mu);
}

const char *mv_keys_kdf_name(const mv_keys *k)
{
    return k->kdf == KDF_SCRYPT ? "passphrase (scrypt)" : "key file";
}

int64_t mv_keys_created(const mv_keys *k)
{
    return k->created;
}

const char *mv_keys_kek_name(mv_keys *k, uint32_t no)
{
    pthread_mutex_lock(&k->mu);
    kek *e = find_no(k, no);
    pthread_mutex_unlock(&k->mu);
    return e ? e->name : NULL;
}

mv_status mv_keys_rotate(mv_keys *k, unsigned *rotated, mv_err *err)
{
    mv_status st = MV_OK;
    unsigned n = 0;
    pthread_mutex_lock(&k->mu);
    size_t count = k->nkeks;
    for (size_t i = 0; i < count && !st; i++) {
        if (!k->keks[i].active)
            continue;
        char *name = mv_xstrdup(k->keks[i].name);
        uint32_t ver = k->keks[i].version + 1, no;
        k->keks[i].active = 0;
        st = add_kek(k, name, ver, &no, err); /* may move k->keks */
        free(name);
        n++;
    }
    if (!st)
        st = save(k, err);
    pthread_mutex_unlock(&k->mu);
    *rotated = n;
    return st;
}

mv_status mv_keys_active_for(mv_keys *k, uint32_t kek_no, uint32_t *active, mv_err *err)
{
    mv_status st = MV_OK;
    pthread_mutex_lock(&k->mu);
    kek *e = find_no(k, kek_no);
    kek *a = e ? find_active(k, e->name) : NULL;
    if (a)
        *active = a->no;
    else
        st = mv_err_set(err, MV_ENOKEY, "no active key for key #%u", kek_no);
    pthread_mutex_unlock(&k->mu);
    return st;
}

/* drop_keks - remove from the keystore, durably, every KEK gone() picks,
 * and wipe them; *n counts them.  The file is rewritten first: if that
 * fails, they are all kept (the file still lists them). */
static mv_status drop_keks(mv_keys *k, int (*gone)(const kek *e, const void *ctx), const void *ctx,
                           unsigned *n, mv_err *err)
{
    pthread_mutex_lock(&k->mu);
    size_t j = 0, nold = 0;
    kek *old = mv_xcalloc(k->nkeks ? k->nkeks : 1, sizeof *old);
    for (size_t i = 0; i < k->nkeks; i++) {
        if (gone(&k->keks[i], ctx))
            old[nold++] = k->keks[i];
        else
            k->keks[j++] = k->keks[i];
    }
    k->nkeks = j;
    mv_status st = nold ? save(k, err) : MV_OK;
    if (st) {
        for (size_t i = 0; i < nold; i++)
            k->keks[k->nkeks++] = old[i];
    } else {
        /* mv_secret_free cleanses: nothing sealed under them opens again,
         * in this store or in any backup of it */
        for (size_t i = 0; i < nold; i++) {
            free(old[i].name);
            mv_secret_free(old[i].key);
        }
    }
    free(old);
    pthread_mutex_unlock(&k->mu);
    *n = st ? 0 : (unsigned)nold;
    return st;
}

static int retired(const kek *e, const void *ctx)
{
    (void)ctx;
    return !e->active;
}

static int named(const kek *e, const void *ctx)
{
    return strcmp(e->name, (const char *)ctx) == 0;
}

mv_status mv_keys_drop_retired(mv_keys *k, unsigned *dropped, mv_err *err)
{
    return drop_keks(k, retired, NULL, dropped, err);
}

mv_status mv_keys_destroy(mv_keys *k, const char *name, unsigned *destroyed, mv_err *err)
{
    return drop_keks(k, named, name, destroyed, err);
}

mv_status mv_keys_rewrap_master(mv_keys *k, const mv_keysrc *src, const mv_kdf_params *kp,
                                mv_err *err)
{
    pthread_mutex_lock(&k->mu);
    uint8_t saved[MV_WRAPPED_LEN + 16], kdf = k->kdf;
    uint64_t n = k->n;
    uint32_t r = k->r, p = k->p;
    memcpy(saved, k->root_wrapped, MV_WRAPPED_LEN);
    memcpy(saved + MV_WRAPPED_LEN, k->salt, 16);
    mv_status st = wrap_root(k, src, kp, err);
    if (!st)
        st = save(k, err);
    if (st) {
        memcpy(k->root_wrapped, saved, MV_WRAPPED_LEN);
        memcpy(k->salt, saved + MV_WRAPPED_LEN, 16);
        k->kdf = kdf, k->n = n, k->r = r, k->p = p;
    }
    pthread_mutex_unlock(&k->mu);
    return st;
}

void mv_keys_signing_public(mv_keys *k, uint8_t pub[32])
{
    memcpy(pub, k->sign_pub, 32);
}

mv_status mv_keys_sign(mv_keys *k, const void *msg, size_t n, uint8_t sig[64], mv_err *err)
{
    mv_secret *priv = mv_secret_new(32);
    size_t l = 0, sl = 64;
    EVP_PKEY *pk = NULL;
    EVP_MD_CTX *c = NULL;
    mv_status st = mv_kwp_unwrap(k->derived[MV_DERIVE_KEK_WRAP]->p, 32, k->sign_wrapped,
                                 MV_WRAPPED_LEN, priv->p, &l, err);
    if (!st && l != 32)
        st = mv_err_set(err, MV_EMALFORMED, "the signing key in the keystore is damaged");
    if (!st && (!(pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv->p, 32)) ||
                !(c = EVP_MD_CTX_new()) || EVP_DigestSignInit(c, NULL, NULL, NULL, pk) <= 0 ||
                EVP_DigestSign(c, sig, &sl, msg, n) <= 0 || sl != 64))
        st = mv_err_openssl(err, "Ed25519 signing");
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(pk);
    mv_secret_free(priv);
    return st;
}
