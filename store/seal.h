/* SPDX-License-Identifier: MIT */
/* seal.h - private to store/: the sealed forms of records and blobs.
 *
 * Record value:  u8 'R' | u8 version 1 | u32 KEK no | 40-byte wrapped DEK |
 *                ciphertext | 16-byte GCM tag
 *   AAD = "mailvault-record-v1" | u8 family | the RocksDB key, so a record
 *   cannot be moved to another key or family undetected.  The KEK number
 *   is outside the AAD on purpose: rotation rewraps the DEK and changes it
 *   without touching the ciphertext.
 *   Nonce: zero.  The DEK is fresh for this one record (a record is never
 *   re-sealed under the same DEK), so (key, nonce) never repeats.
 *
 * Blob: RocksDB keys blob-id(32) | u32 part.  Part 0 is the header:
 *   u8 'B' | u8 version 1 | u32 KEK no | 40-byte wrapped DEK | u64 length |
 *   u32 chunk count | u32 chunk size | u32 dictionary id | u8 inline,
 *   followed, when inline (one chunk), by that chunk.
 *   Parts 1..n hold chunk 0..n-1 when not inline.  Chunk:
 *   u8 flags (1 = zstd) | ciphertext | 16-byte tag, with
 *   nonce = u64 chunk index (BE) | 4 zero bytes, and
 *   AAD = "mailvault-blob-v1" | blob id | u32 index | u8 final | u8 flags | u32 dict id.
 *   The DEK belongs to this blob alone and the index differs per chunk, so
 *   no nonce repeats; the final flag in the AAD catches a cut tail, the
 *   index catches reordering, the blob id catches chunks moved between blobs.
 *
 * Memory: sealing and opening work chunk by chunk (64 KiB). */
#ifndef MV_STORE_SEAL_H
#define MV_STORE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"
#include "../lib/err.h"
#include "keys.h"

#define MV_CHUNK 65536
#define MV_BLOBKEY_LEN 36

enum { MV_FAM_MSG = 1, MV_FAM_COPY, MV_FAM_ATTR, MV_FAM_AUDIT, MV_FAM_SPOOL, MV_FAM_META,
       MV_FAM_DICT, MV_FAM_TEXT, MV_FAM_SALT };

/* A compression dictionary for sealing: zstd's prepared form and the
 * number under which it is stored (0 = none). */
typedef struct mv_zdict {
    uint32_t no;
    const void *cdict; /* ZSTD_CDict * */
} mv_zdict;

MV_NODISCARD mv_status mv_seal_record(mv_keys *k, uint32_t kek_no, int family, const void *key,
                                      size_t keylen, const void *plain, size_t n, mv_buf *out,
                                      mv_err *err);
/* mv_open_record - authenticate and decrypt; plain is appended to. */
MV_NODISCARD mv_status mv_open_record(mv_keys *k, int family, const void *key, size_t keylen,
                                      const uint8_t *val, size_t vlen, mv_buf *plain,
                                      mv_err *err);
/* The KEK number in a record or blob header (0 when it is not one). */
uint32_t mv_sealed_kek(const uint8_t *val, size_t vlen);
/* mv_sealed_rewrap - copy val to out with its DEK rewrapped under to. */
MV_NODISCARD mv_status mv_sealed_rewrap(mv_keys *k, const uint8_t *val, size_t vlen, uint32_t to,
                                        mv_buf *out, mv_err *err);

/* Called for each (key, value) a sealed blob consists of: chunk parts
 * first, header (part 0) last, so that a header is never stored before the
 * chunks it announces. */
typedef mv_status (*mv_emit_fn)(void *ctx, const uint8_t *key, size_t keylen, const uint8_t *val,
                                size_t vlen, int is_header, mv_err *err);

/* mv_seal_blob - compress (zstd at level, with dict when given: its
 * number goes into the header and every chunk's AAD) and seal p[0..n) as
 * blob id.  level 0 stores without compression. */
MV_NODISCARD mv_status mv_seal_blob(mv_keys *k, uint32_t kek_no, const uint8_t id[32],
                                    const uint8_t *p, size_t n, int level, const mv_zdict *dict,
                                    mv_emit_fn emit, void *ctx, mv_err *err);

/* Fetches the value of part `part` of blob id into out (reset first).
 * MV_ENOTFOUND when absent. */
typedef mv_status (*mv_fetch_fn)(void *ctx, const uint8_t key[MV_BLOBKEY_LEN], mv_buf *out,
                                 mv_err *err);
/* Receives plaintext pieces in order. */
typedef mv_status (*mv_sink_fn)(void *ctx, const uint8_t *p, size_t n, mv_err *err);

/* Finds the zstd decompression dictionary (ZSTD_DDict *) number no;
 * NULL when it cannot be had (error in err). */
typedef const void *(*mv_ddict_fn)(void *ctx, uint32_t no, mv_err *err);

/* mv_open_blob - stream a blob's plaintext to sink, chunk by chunk.
 * @retval MV_ENOTFOUND  no such blob
 * @retval MV_ECRYPTO    a chunk failed authentication, or the blob is cut short
 * @retval MV_EMALFORMED the header or a chunk does not parse */
MV_NODISCARD mv_status mv_open_blob(mv_keys *k, const uint8_t id[32], mv_fetch_fn fetch,
                                    void *fctx, mv_ddict_fn ddict, void *dctx, mv_sink_fn sink,
                                    void *sctx, mv_err *err);

void mv_blob_key(const uint8_t id[32], uint32_t part, uint8_t key[MV_BLOBKEY_LEN]);

#endif
