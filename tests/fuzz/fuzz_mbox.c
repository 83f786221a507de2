/* SPDX-License-Identifier: MIT */
/* fuzz_mbox.c - libFuzzer target: mbox splitting, detection, separators. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../ingest/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct total {
    const uint8_t *base;
    size_t size, data, raw;
} total;

static void on_msg(void *ctx, const uint8_t *d, size_t len, const uint8_t *raw, size_t raw_len,
                   const uint8_t *from, size_t from_len)
{
    total *t = ctx;
    /* raw must lie inside the input; unquoting only ever removes bytes */
    if (raw < t->base || raw + raw_len > t->base + t->size || len > raw_len)
        __builtin_trap();
    if (len) {
        volatile uint8_t touch = d[0] ^ d[len - 1]; /* both ends, for ASan */
        (void)touch;
    }
    if (from_len && mv_mbox_is_separator(from, from_len))
        t->data += 0; /* exercised on the separator text, result unused */
    t->data += len;
    t->raw += raw_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    total t = {data, size, 0, 0};
    (void)mv_detect_kind(data, size);
    (void)mv_mbox_is_separator(data, size);
    mv_mbox_split(data, size, on_msg, &t);
    if (t.raw > size)
        __builtin_trap();
    return 0;
}
