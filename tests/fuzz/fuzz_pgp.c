/* SPDX-License-Identifier: MIT */
/* fuzz_pgp.c - libFuzzer target: mv_pgp_detect and mv_pgp_decrypt over
 * arbitrary bytes, with one embedded escrowed test key (Ed25519 + cv25519,
 * no passphrase, made with gpg for the fuzzer only) and tight limits, so
 * the PGP/MIME, inline, signature, hidden-recipient and limit paths are
 * all reachable.  Seeds in tests/fuzz/corpus/pgp/ are encrypted to it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../ingest/pgp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_key[] =
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\n"
    "\n"
    "lFgEawlkcxYJKwYBBAHaRw8BAQdAVG8KwbGaNByWQ82vByFSTLXRloM6nhCiKoTd\n"
    "M5TZpoMAAQDB/qsv4PUAmT9sKr6FemscF3EOphC8kqJXd7PSdop4gA+otB5GdXp6\n"
    "IEVzY3JvdyA8ZnV6ekBleGFtcGxlLm9yZz6IkAQTFggAOBYhBL9rO3kmuX4Ne/zl\n"
    "VULcx+PtevoJBQJrCWRzAhsDBQsJCAcCBhUKCQgLAgQWAgMBAh4BAheAAAoJEELc\n"
    "x+PtevoJiwQBAK6nyp/jWgxPUgq6bGlmq91KdTuU6FNFWe7Pere8HdEMAPsH1ab3\n"
    "60fXDy0k339OI5w8gwPbHvYNr5vmWyl3VV35DpxdBGsJZHMSCisGAQQBl1UBBQEB\n"
    "B0CftQNEEJxoUD8duXwduSMpHmgcEHDSMDZAe5lVOBb8PAMBCAcAAP9LPm7kpYXo\n"
    "LpDkK5anwvdZt8C8ehVNDh+G4PKGHRhsOBD7iHgEGBYIACAWIQS/azt5Jrl+DXv8\n"
    "5VVC3Mfj7Xr6CQUCawlkcwIbDAAKCRBC3Mfj7Xr6CYnuAQDgiXtkppkYDgNtOUjK\n"
    "TVrcagj4lxw8SOhK12+Ju6OZfgD9H4qSRIyuNxMxBLmcUT5R5uuhidox8LBDOgYL\n"
    "p+05Xw8=\n"
    "=Poqz\n"
    "-----END PGP PRIVATE KEY BLOCK-----\n";

static mv_pgp_keyring *keyring(void)
{
    static mv_pgp_keyring *kr;
    if (!kr) {
        kr = mv_pgp_keyring_new(NULL);
        if (!kr || mv_pgp_keyring_add(kr, 1, (const uint8_t *)fuzz_key, sizeof fuzz_key - 1,
                                      NULL, NULL) != MV_OK)
            __builtin_trap();
    }
    return kr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mv_decrypt_limits lim;
    mv_decrypt_limits_default(&lim);
    lim.max_output = 1 << 16;
    lim.max_depth = 4;
    lim.max_layers = 2;
    (void)mv_pgp_detect(data, size);
    mv_decrypt_result r;
    if (mv_pgp_decrypt(keyring(), data, size, &lim, &r, NULL) != MV_OK)
        __builtin_trap();
    if (r.decrypted != (r.out != NULL) || (r.decrypted && (!r.encrypted || r.failure)) ||
        (r.encrypted && !r.decrypted && !r.failure) || (r.key_id != 0 && r.key_id != 1) ||
        r.n_recipients > MV_PGP_MAX_RECIPIENTS)
        __builtin_trap();
    for (size_t i = 0; i < r.n_recipients; i++)
        if (strncmp(r.recipients[i], "pgp=", 4) != 0 || strlen(r.recipients[i]) != 20)
            __builtin_trap();
    mv_decrypt_result_free(&r);
    return 0;
}
