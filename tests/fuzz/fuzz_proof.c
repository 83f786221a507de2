/* SPDX-License-Identifier: MIT */
/* fuzz_proof.c - libFuzzer target: inclusion-proof files (store/log.c
 * mv_proof_check), checked without an archive, alone and against a kept
 * tree head (the input split at its first NUL).  Whatever the bytes, the
 * answer is a status, never a crash; a proof accepted has a leaf index
 * inside its tree. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mv_proof_info pi;
    mv_status st = mv_proof_check(data, size, NULL, 0, NULL, &pi, NULL);
    if (st == MV_OK && pi.index >= pi.size)
        __builtin_trap();
    const uint8_t *nul = memchr(data, 0, size);
    if (nul) {
        size_t pl = (size_t)(nul - data);
        st = mv_proof_check(data, pl, nul + 1, size - pl - 1, NULL, &pi, NULL);
        if (st == MV_OK && (!pi.against_head || pi.index >= pi.size))
            __builtin_trap();
    }
    return 0;
}
