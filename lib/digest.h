/* SPDX-License-Identifier: MIT */
/* digest.h - SHA-256 through a digest fetched once per process.
 *
 * OpenSSL 3.0 resolves EVP_sha256() anew at every init through a global
 * method store guarded by a lock; on the ingest hot path, with several
 * threads hashing every message a few times, that lock serialised the
 * pipeline.  Everything hashes through here instead. */
#ifndef MV_LIB_DIGEST_H
#define MV_LIB_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* mv_md_sha256 - the fetched SHA-256 (never NULL: aborts if unavailable). */
const EVP_MD *mv_md_sha256(void);
/* mv_sha256 - one-shot digest. */
void mv_sha256(const void *p, size_t n, uint8_t out[32]);

#endif
