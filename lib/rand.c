/* SPDX-License-Identifier: MIT */
/* rand.c - per-thread pools of DRBG output (see rand.h). */
#include "rand.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

static __thread unsigned char pool[MV_RAND_POOL];
static __thread size_t avail;        /* bytes not yet handed out, at the pool's end */
static __thread unsigned long owner; /* the fork generation that filled it */

/* Bumped in every child a fork makes: a pool filled before the fork is
 * then not its own.  (getpid() is a system call since glibc 2.25: asked
 * on every draw it cost more than the draw.) */
static unsigned long fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void in_child(void)
{
    __atomic_add_fetch(&fork_gen, 1, __ATOMIC_RELAXED);
}

static void watch_forks(void)
{
    /* cannot fail short of ENOMEM; then a child, if one is ever made,
     * would share the parent's pool: abort rather than risk that */
    if (pthread_atfork(NULL, NULL, in_child) != 0)
        abort();
}

int mv_rand_bytes(void *out, size_t n)
{
    unsigned char *o = out;
    pthread_once(&fork_once, watch_forks);
    unsigned long gen = __atomic_load_n(&fork_gen, __ATOMIC_RELAXED);
    if (avail && owner != gen) {
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
            owner = gen;
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
