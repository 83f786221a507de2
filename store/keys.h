/* SPDX-License-Identifier: MIT */
/* keys.h - private to store/: the keystore and every operation on key bytes.
 *
 * The keystore is ARCHIVE/keys, one small file kept apart from the data so
 * that data backups never contain the keys that open them.  Its layout:
 *
 *   "MVKS" u32 version
 *   u8 kdf (1 key file, 2 scrypt) u64 N u32 r u32 p, 16-byte salt
 *   16-byte archive id
 *   lp wrapped root secret       AES-256-KWP under the master key
 *   lp body                      the KEK table, see keys.c
 *   32-byte HMAC-SHA256          over everything above, key HKDF(root, "keystore-mac")
 *
 * A wrong master key fails the KWP integrity check of the root wrap (and,
 * should that pass by chance, the MAC): it is detected before the store is
 * opened, so nothing is read or written under a wrong key.
 *
 * Thread safety: a mv_keys may be used from several threads; lookups and
 * KEK creation take an internal mutex. */
#ifndef MV_STORE_KEYS_H
#define MV_STORE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"
#include "../lib/err.h"
#include "../lib/secret.h"
#include "store.h"

typedef struct mv_keys mv_keys;

#define MV_KEY_LEN 32
#define MV_WRAPPED_LEN 40 /* AES-KWP of a 32-byte key */
#define MV_ARCHIVE_ID_LEN 16

/* Purposes of keys derived from the root secret with HKDF. */
typedef enum {
    MV_DERIVE_KEYSTORE_MAC,
    MV_DERIVE_KEK_WRAP,
    MV_DERIVE_BLOB_ID,
    MV_DERIVE_DEDUP_ID,
    MV_DERIVE_COPY_ID,
    MV_DERIVE_INDEX_PRF,
    MV_DERIVE_LOG_MAC,
    MV_DERIVE_COUNT
} mv_derive;

typedef struct mv_kdf_params {
    uint64_t scrypt_n; /* 0 = default 2^17 */
} mv_kdf_params;


/* mv_keys_create - new root secret, archive id, signing key; written to path
 * (which must not exist).  *out on success. */
MV_NODISCARD mv_status mv_keys_create(const char *path, const mv_keysrc *src,
                                      const mv_kdf_params *kp, mv_keys **out, mv_err *err);
/* mv_keys_open - read and unlock.
 * @retval MV_ENOKEY   wrong key or passphrase, or an unusable key file
 * @retval MV_EPERM    key file readable by others
 * @retval MV_ENOTFOUND keystore or key file missing
 * @retval MV_EMALFORMED keystore damaged (MAC or format) */
MV_NODISCARD mv_status mv_keys_open(const char *path, const mv_keysrc *src, mv_keys **out,
                                    mv_err *err);
void mv_keys_free(mv_keys *k);

const uint8_t *mv_keys_archive_id(const mv_keys *k);
/* Derived keys stay inside keys.c: callers get MACs computed for them. */
void mv_keys_mac(mv_keys *k, mv_derive purpose, const void *p, size_t n, uint8_t out[32]);
void mv_keys_mac2(mv_keys *k, mv_derive purpose, const void *a, size_t an, const void *b,
                  size_t bn, uint8_t out[32]);

/* A keyed hash as an opaque handle (the search index's term hashing):
 * HMAC-SHA256 under a derived key, with the key's pad states computed
 * once, so one evaluation costs two SHA-256 blocks for a short input.
 * The handle holds hash states, never the key bytes; mv_prf_eval is
 * thread-safe.  Owned by the caller (mv_prf_free), independent of k. */
typedef struct mv_prf mv_prf;
mv_prf *mv_keys_prf_new(mv_keys *k, mv_derive purpose);
void mv_prf_eval(const mv_prf *p, const void *in, size_t n, uint8_t out[32]);
void mv_prf_free(mv_prf *p);

/* mv_keys_active_kek - number of the active KEK for a named key (a shred
 * bucket "default/2033-11", or "spool", "audit"); created and made durable
 * in the keystore first when missing. */
MV_NODISCARD mv_status mv_keys_active_kek(mv_keys *k, const char *name, uint32_t *kek_no,
                                          mv_err *err);
/* mv_keys_wrap_new_dek - a fresh random DEK (into dek, locked by the
 * caller's care: it is wiped by the caller) and its wrap under KEK kek_no. */
MV_NODISCARD mv_status mv_keys_wrap_new_dek(mv_keys *k, uint32_t kek_no, uint8_t dek[32],
                                            uint8_t wrapped[MV_WRAPPED_LEN], mv_err *err);
MV_NODISCARD mv_status mv_keys_unwrap_dek(mv_keys *k, uint32_t kek_no,
                                          const uint8_t *wrapped, size_t wlen, uint8_t dek[32],
                                          mv_err *err);
/* mv_keys_rewrap_dek - unwrap under from, wrap under to (for rotation). */
MV_NODISCARD mv_status mv_keys_rewrap_dek(mv_keys *k, uint32_t from, uint32_t to,
                                          const uint8_t *wrapped, size_t wlen,
                                          uint8_t out[MV_WRAPPED_LEN], mv_err *err);

/* Listing, rotation, master rewrap. */
typedef struct mv_kek_info {
    uint32_t no;
    const char *name;
    uint32_t version;
    int64_t created;
    int active;
} mv_kek_info;
typedef void (*mv_kek_fn)(void *ctx, const mv_kek_info *ki);
void mv_keys_list(mv_keys *k, mv_kek_fn fn, void *ctx);
const char *mv_keys_kdf_name(const mv_keys *k);
int64_t mv_keys_created(const mv_keys *k);
/* mv_keys_kek_name - the name of KEK no (borrowed), NULL if unknown. */
const char *mv_keys_kek_name(mv_keys *k, uint32_t no);
/* mv_keys_rotate - a new version for every active KEK; old ones retired. */
MV_NODISCARD mv_status mv_keys_rotate(mv_keys *k, unsigned *rotated, mv_err *err);
/* mv_keys_active_for - the active KEK with the same name as kek_no. */
MV_NODISCARD mv_status mv_keys_active_for(mv_keys *k, uint32_t kek_no, uint32_t *active,
                                          mv_err *err);
/* mv_keys_drop_retired - forget retired KEKs (after every DEK was rewrapped). */
MV_NODISCARD mv_status mv_keys_drop_retired(mv_keys *k, unsigned *dropped, mv_err *err);
/* mv_keys_destroy - remove every KEK named name (all its versions) from the
 * keystore, durably, and wipe them: crypto-shredding of a bucket.  Only
 * single-threaded use of the store (purge runs in a process of its own).
 * *destroyed counts them (0: none had that name). */
MV_NODISCARD mv_status mv_keys_destroy(mv_keys *k, const char *name, unsigned *destroyed,
                                       mv_err *err);
/* mv_keys_rewrap_master - wrap the root secret under a new master key. */
MV_NODISCARD mv_status mv_keys_rewrap_master(mv_keys *k, const mv_keysrc *src,
                                             const mv_kdf_params *kp, mv_err *err);

/* The Ed25519 signing key: its public key and fingerprint (SHA-256 of the
 * raw public key, hex). */
void mv_keys_signing_public(mv_keys *k, uint8_t pub[32]);
/* mv_keys_sign - Ed25519 signature of msg with the archive's signing key
 * (unwrapped for the call only). */
MV_NODISCARD mv_status mv_keys_sign(mv_keys *k, const void *msg, size_t n, uint8_t sig[64],
                                    mv_err *err);

/* AEAD with a key given by the caller (used by seal.c with unwrapped DEKs). */
MV_NODISCARD mv_status mv_gcm_seal(const uint8_t key[32], const uint8_t nonce[12],
                                   const void *aad, size_t aadlen, const void *in, size_t n,
                                   uint8_t *out, uint8_t tag[16], mv_err *err);
MV_NODISCARD mv_status mv_gcm_open(const uint8_t key[32], const uint8_t nonce[12],
                                   const void *aad, size_t aadlen, const void *in, size_t n,
                                   const uint8_t tag[16], uint8_t *out, mv_err *err);

/* mv_kwp_fast_selftest - the AES-NI KWP used for DEKs: wrap in with key
 * into out and unwrap it again (for the unit tests' cross-check against
 * OpenSSL's AES-WRAP-PAD). */
MV_NODISCARD mv_status mv_kwp_fast_selftest(const uint8_t key[32], const uint8_t in[32],
                                            uint8_t out[40], mv_err *err);

/* Test hooks: RFC 5649 known-answer checks use these. */
MV_NODISCARD mv_status mv_kwp_wrap(const uint8_t *kek, size_t keklen, const uint8_t *in,
                                   size_t n, uint8_t *out, size_t *outlen, mv_err *err);
MV_NODISCARD mv_status mv_kwp_unwrap(const uint8_t *kek, size_t keklen, const uint8_t *in,
                                     size_t n, uint8_t *out, size_t *outlen, mv_err *err);

#endif
