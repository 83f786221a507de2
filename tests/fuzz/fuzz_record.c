/* SPDX-License-Identifier: MIT */
/* fuzz_record.c - libFuzzer target: our own stored formats are untrusted
 * input too.  The first byte picks a sealed record, a sealed blob (part 0
 * = the input, later parts = slices of it) or a whole keystore file; each
 * must be refused cleanly unless authentic. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/util.h"
#include "../../store/keys.h"
#include "../../store/seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mv_keys *keys;
static char dir[64], kpath[96], fpath[96];
static mv_keysrc src;

static void cleanup(void)
{
    char path[128];
    mv_keys_free(keys);
    unlink(kpath);
    unlink(fpath);
    snprintf(path, sizeof path, "%s/ks", dir);
    unlink(path);
    rmdir(dir);
}

static void setup(void)
{
    mv_err err;
    uint8_t k[32] = {1};
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/mvfuzz.XXXXXX", t && *t && strlen(t) < 40 ? t : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(kpath, sizeof kpath, "%s/key", dir);
    snprintf(fpath, sizeof fpath, "%s/keys.fuzz", dir);
    src.key_file = kpath;
    if (mv_write_file_atomic(kpath, k, 32, 0600, &err) ||
        mv_keys_create(fpath, &src, NULL, &keys, &err))
        abort();
    atexit(cleanup);
}

typedef struct in {
    const uint8_t *p;
    size_t n;
} in;

static mv_status fetch(void *ctx, const uint8_t key[MV_BLOBKEY_LEN], mv_buf *out, mv_err *err)
{
    (void)err;
    in *i = ctx;
    uint32_t part = mv_be32_get(key + 32);
    size_t off = part ? (part * 977u) % (i->n + 1) : 0;
    mv_buf_reset(out);
    mv_buf_append(out, i->p + off, i->n - off);
    return part > 3 ? MV_ENOTFOUND : MV_OK;
}

static mv_status sink(void *ctx, const uint8_t *p, size_t n, mv_err *err)
{
    (void)ctx, (void)p, (void)n, (void)err;
    return MV_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys)
        setup();
    if (size < 1)
        return 0;
    mv_err err;
    mv_buf out = MV_BUF_INIT;
    in i = {data + 1, size - 1};
    uint8_t id[32] = {0};
    switch (data[0] % 3) {
    case 0:
        if (mv_open_record(keys, MV_FAM_MSG, "k", 1, i.p, i.n, &out, &err) == MV_OK)
            __builtin_trap(); /* forging a GCM tag by chance: never */
        break;
    case 1:
        if (mv_open_blob(keys, id, fetch, &i, NULL, NULL, sink, NULL, &err) == MV_OK && i.n)
            __builtin_trap();
        break;
    default: {
        mv_keys *k = NULL;
        char path[128];
        snprintf(path, sizeof path, "%s/ks", dir);
        if (mv_write_file_atomic(path, i.p, i.n, 0600, &err) == MV_OK &&
            mv_keys_open(path, &src, &k, &err) == MV_OK)
            __builtin_trap(); /* a keystore that is not ours never opens */
        mv_keys_free(k);
        break;
    }
    }
    mv_buf_free(&out);
    return 0;
}
