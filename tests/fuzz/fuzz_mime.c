/* SPDX-License-Identifier: MIT */
/* fuzz_mime.c - libFuzzer target: mv_mime_summarize over arbitrary bytes,
 * with small limits so the limit paths are reached too; the summary made
 * with trace fields skipped must equal the one made from every field. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../ingest/mime.h"
#include "mime_same.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mv_mime_limits lim;
    mv_mime_limits_default(&lim);
    /* the first byte picks tight limits half of the time */
    if (size > 0 && (data[0] & 1)) {
        lim.max_depth = 4;
        lim.max_parts = 8;
        lim.max_header_bytes = 512;
        lim.max_names = 2;
        lim.max_parse_bytes = 8192;
    }
    mv_msginfo *m = NULL;
    if (mv_mime_summarize(data, size, &lim, &m, NULL) != MV_OK)
        __builtin_trap();
    char names[512];
    mv_defects_str(m->meta.defects, names, sizeof names);
    if (m->meta.header_bytes + m->body_bytes != size || m->meta.n_names > m->meta.n_attachments)
        __builtin_trap();
    for (size_t i = 1; i < m->n_recipients; i++)
        if (strcmp(m->recipients[i - 1], m->recipients[i]) >= 0)
            __builtin_trap(); /* sorted and unique */
    mv_msginfo *every = NULL;
    lim.every_field = 1;
    if (mv_mime_summarize(data, size, &lim, &every, NULL) != MV_OK || !mv_mime_same(m, every))
        __builtin_trap();
    mv_msginfo_free(every);
    mv_msginfo_free(m);
    return 0;
}
