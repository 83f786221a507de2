/* SPDX-License-Identifier: MIT */
/* rand.h - random bytes for keys, salts and ids, drawn in blocks.
 *
 * Every message takes several fresh 32-byte keys (a DEK per blob and per
 * record, a log salt).  One RAND_bytes call costs about 3 us whatever its
 * length, most of it fixed overhead, which was 2.5% of an import's CPU;
 * so each thread draws MV_RAND_POOL bytes at a time from OpenSSL's DRBG
 * and hands them out in order.
 *
 * Why this is as good as calling RAND_bytes each time: the bytes are the
 * DRBG's output, each is handed out once and wiped in the pool as it
 * goes, and the pool is per thread (no lock, no sharing).  A process that
 * forks after filling a pool would hand the same bytes out twice, so the
 * pool remembers the fork generation it was filled in (a counter every
 * child bumps, through pthread_atfork) and is thrown away in a child.  What is
 * left in a pool when its thread ends was never handed out: it keys
 * nothing. */
#ifndef MV_LIB_RAND_H
#define MV_LIB_RAND_H

#include <stddef.h>

#define MV_RAND_POOL 1024

/* mv_rand_bytes - fill out[0..n) with random bytes.  Returns 1, or 0 when
 * OpenSSL's DRBG fails (its error queue says why); out is then wiped. */
int mv_rand_bytes(void *out, size_t n);

#endif
