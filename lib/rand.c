/* SPDX-License-Identifier: MIT */
/* rand.c - per-thread pools of DRBG output (see rand.h). */
#include "rand.h"

#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

static __thread unsigned char pool[MV_RAND_POOL];
static __thread size_t avail; /* bytes not yet handed out, at the pool's end */
static __thread pid_t owner;

int mv_rand_bytes(void *out, size_t n)
{
    unsigned char *o = out;
    if (avail && owner != getpid()) {
        OPENSSL_cleanse(pool, sizeof pool);
        avail = 0;
    }
    /* a large request gains nothing from the pool */
    if (n > MV_RAND_POOL / 4) {
        if (RAND_bytes(o, (int)n) == 1)
            return 1;
        OPENSSL_cleanse(o, n);
        return 0;
    }
    while (n) {
        if (!avail) {
            if (RAND_bytes(pool, (int)sizeof pool) != 1) {
                OPENSSL_cleanse(out, (size_t)(o - (unsigned char *)out) + n);
                return 0;
            }
            avail = sizeof pool;
            owner = getpid();
        }
        size_t take = n < avail ? n : avail;
        unsigned char *from = pool + sizeof pool - avail;
        memcpy(o, from, take);
        OPENSSL_cleanse(from, take);
        avail -= take;
        o += take;
        n -= take;
    }
    return 1;
}
