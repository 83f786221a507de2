/* SPDX-License-Identifier: MIT */
/* secret.h - memory for key material: mlocked, excluded from core dumps,
 * wiped with OPENSSL_cleanse when freed.  Only store/keys and (later)
 * ingest/escrow hold secrets. */
#ifndef MV_LIB_SECRET_H
#define MV_LIB_SECRET_H

#include <stddef.h>
#include <stdint.h>

typedef struct mv_secret {
    uint8_t *p;
    size_t len;
} mv_secret;

/* mv_secret_new - allocate len bytes of locked memory (zeroed); aborts on
 * out-of-memory.  mlock failure (RLIMIT_MEMLOCK) is tolerated: the memory is
 * still wiped and excluded from core dumps. */
mv_secret *mv_secret_new(size_t len);
mv_secret *mv_secret_dup(const uint8_t *p, size_t len);
void mv_secret_free(mv_secret *s); /* NULL ok */
/* mv_secure_process - no core dumps, no ptrace by other users. */
void mv_secure_process(void);

#endif
