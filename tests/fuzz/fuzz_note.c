/* SPDX-License-Identifier: MIT */
/* fuzz_note.c - libFuzzer target: signed checkpoints (lib/note.h) checked
 * against one fixed Ed25519 key, the checkpoint body parser alone, and the
 * Merkle frontier decoder (lib/merkle.h), all over the same bytes.  The key
 * is a test key (its seed is below, on purpose) so that corpus entries can
 * carry valid signatures and reach the accepting paths. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "../../lib/merkle.h"
#include "../../lib/note.h"

#define NAME "fuzz.example/log"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t seed[32] = "mailvault fuzz_note test key 01"; /* 31 chars + NUL */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t pub[32];
    static int ready;
    if (!ready) {
        size_t l = sizeof pub;
        EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
        if (!pk || EVP_PKEY_get_raw_public_key(pk, pub, &l) != 1)
            __builtin_trap();
        EVP_PKEY_free(pk);
        ready = 1;
    }
    mv_checkpoint c;
    mv_buf b = MV_BUF_INIT;
    size_t tl = 0;
    mv_status st = mv_note_parse_checkpoint(data, size, NAME, pub, &c, NULL);
    if (st == MV_OK) {
        /* the signed text is exactly the body the checkpoint formats to */
        mv_checkpoint_body(&c, &b);
        if (mv_note_verify(data, size, NAME, pub, &tl, NULL) != MV_OK || tl != b.len ||
            memcmp(b.data, data, tl) != 0)
            __builtin_trap();
        mv_checkpoint_clear(&c);
    } else if ((st != MV_EMALFORMED && st != MV_ECRYPTO && st != MV_ELIMIT) || c.ext) {
        __builtin_trap();
    }
    /* the body parser is strict enough that what it accepts re-formats byte for byte */
    mv_buf_reset(&b);
    if (mv_checkpoint_parse_body(data, size, &c, NULL) == MV_OK) {
        mv_checkpoint_body(&c, &b);
        if (b.len != size || memcmp(b.data, data, size) != 0)
            __builtin_trap();
        mv_checkpoint_clear(&c);
    }
    mv_merkle_frontier f;
    mv_buf_reset(&b);
    if (mv_merkle_frontier_decode(data, size, &f, NULL) == MV_OK) {
        mv_merkle_frontier_encode(&f, &b);
        uint8_t root[32];
        mv_merkle_frontier_root(&f, root);
        if (b.len != size || memcmp(b.data, data, size) != 0)
            __builtin_trap();
    }
    mv_buf_free(&b);
    return 0;
}
