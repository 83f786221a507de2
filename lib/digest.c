/* SPDX-License-Identifier: MIT */
/* digest.c - SHA-256 with one fetch per process. */
#include "digest.h"

#include <pthread.h>

#include "err.h"

static EVP_MD *md;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fetch(void)
{
    md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *mv_md_sha256(void)
{
    pthread_once(&once, fetch);
    if (!md)
        mv_assert_fail("EVP_MD_fetch(SHA256)", __FILE__, __LINE__);
    return md;
}

void mv_sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned int l = 32;
    if (!EVP_Digest(p, n, out, &l, mv_md_sha256(), NULL))
        mv_assert_fail("EVP_Digest(SHA256)", __FILE__, __LINE__);
}
