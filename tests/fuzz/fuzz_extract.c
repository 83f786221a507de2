/* SPDX-License-Identifier: MIT */
/* fuzz_extract.c - libFuzzer target: mv_extract_message over arbitrary
 * bytes (with tight limits half of the time, so the limit paths are
 * reached), then encode, decode, compare, free. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../search/extract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mv_extract_limits lim;
    memset(&lim, 0, sizeof lim); /* zero fields take the defaults */
    if (size > 0 && (data[0] & 1)) {
        lim.max_text = 4096;
        lim.max_part_text = 512;
        lim.max_part_input = 8192;
        lim.max_pdf_pages = 2;
        lim.max_depth = 2;
        lim.max_sections = 32;
        lim.max_members = 4;
    }
    size_t max_text = lim.max_text ? lim.max_text : (size_t)4 << 20;
    size_t max_sections = lim.max_sections ? lim.max_sections : 20000;
    mv_extract *x = NULL;
    if (mv_extract_message(data, size, &lim, &x, NULL) != MV_OK || !x || x->size != size ||
        x->n > max_sections)
        __builtin_trap();
    size_t total = 0;
    for (size_t i = 0; i < x->n; i++) {
        const mv_xsection *s = &x->s[i];
        if (s->len == 0 || strlen(s->text) != s->len || s->part > x->n_attachments)
            __builtin_trap();
        total += s->len;
    }
    if (total > max_text)
        __builtin_trap();
    mv_buf b = MV_BUF_INIT;
    mv_extract_encode(x, &b);
    mv_extract *y = NULL;
    if (mv_extract_decode(b.data, b.len, &y, NULL) != MV_OK || y->n != x->n ||
        y->date != x->date || y->size != x->size || y->flags != x->flags ||
        y->n_attachments != x->n_attachments)
        __builtin_trap();
    for (size_t i = 0; i < x->n; i++)
        if (x->s[i].kind != y->s[i].kind || x->s[i].role != y->s[i].role ||
            x->s[i].part != y->s[i].part || x->s[i].len != y->s[i].len ||
            memcmp(x->s[i].text, y->s[i].text, x->s[i].len))
            __builtin_trap();
    /* a record cut short never decodes */
    mv_extract *z = NULL;
    if (b.len > 0 && mv_extract_decode(b.data, b.len - 1, &z, NULL) == MV_OK)
        __builtin_trap();
    mv_buf_free(&b);
    mv_extract_free(y);
    mv_extract_free(x);
    return 0;
}
