/* SPDX-License-Identifier: MIT */
/* secret.c - locked, undumpable, wiped memory for keys. */
#include "secret.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <openssl/crypto.h>

#include "err.h"

/* Each secret gets its own page-aligned mapping: mlock and MADV_DONTDUMP
 * work on pages, and keys are few (a handful per process), so the waste
 * does not matter while the isolation does. */
mv_secret *mv_secret_new(size_t len)
{
    mv_secret *s = mv_xmalloc(sizeof *s);
    size_t sz = len ? len : 1;
    void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        mv_assert_fail("mmap for secret", __FILE__, __LINE__);
    (void)mlock(p, sz); /* best effort: RLIMIT_MEMLOCK may be small */
    (void)madvise(p, sz, MADV_DONTDUMP);
    s->p = p;
    s->len = len;
    return s;
}

mv_secret *mv_secret_dup(const uint8_t *p, size_t len)
{
    mv_secret *s = mv_secret_new(len);
    memcpy(s->p, p, len);
    return s;
}

void mv_secret_free(mv_secret *s)
{
    if (!s)
        return;
    size_t sz = s->len ? s->len : 1;
    OPENSSL_cleanse(s->p, sz);
    munlock(s->p, sz);
    munmap(s->p, sz);
    free(s);
}

/* OpenSSL's secure heap: with it, the private parts of keys OpenSSL holds
 * (escrowed RSA/EC keys: BN_secure_new) live in locked, undumpable memory
 * instead of the ordinary heap.  16 MiB holds thousands of escrow keys;
 * when RLIMIT_MEMLOCK is smaller the heap still works, unlocked. */
#define MV_SECURE_HEAP (16u << 20)

void mv_secure_process(void)
{
    struct rlimit rl = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &rl);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (!CRYPTO_secure_malloc_initialized())
        (void)CRYPTO_secure_malloc_init(MV_SECURE_HEAP, 32);
}
