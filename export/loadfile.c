/* SPDX-License-Identifier: MIT */
/* loadfile.c - the records of review-platform load files: Concordance DAT
 * (STANDARDS.md 5.6), CSV (RFC 4180) and EDRM XML 1.2 (5.5), one document
 * at a time, so a load file streams like the natives do. */
#include "loadfile.h"

#include <string.h>

/* utf8_next - length of the UTF-8 sequence at p (1 for a bad byte). */
static size_t utf8_len(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (n > left)
        return 1;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 1;
    return n;
}

void mv_lf_begin(mv_lf_kind kind, mv_buf *out)
{
    if (kind == MV_LF_DAT || kind == MV_LF_CSV)
        mv_buf_append(out, "\xEF\xBB\xBF", 3); /* platforms detect UTF-8 by its BOM only */
}

void mv_lf_field(mv_lf_kind kind, const char *v, int first, mv_buf *out)
{
    const unsigned char *p = (const unsigned char *)(v ? v : "");
    size_t n = strlen((const char *)p);
    if (kind == MV_LF_DAT) {
        if (!first)
            mv_buf_append_byte(out, 0x14);
        mv_buf_append(out, "\xC3\xBE", 2);
        for (size_t i = 0; i < n;) {
            size_t l = utf8_len(p + i, n - i);
            if (l == 2 && p[i] == 0xC3 && p[i + 1] == 0xBE)
                /* the quote character cannot be escaped in a DAT: þ in a
                 * value becomes U+FFFD (the CSV and EDRM keep it) */
                mv_buf_append(out, "\xEF\xBF\xBD", 3);
            else if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') {
                mv_buf_append(out, "\xC2\xAE", 2);
                l = 2;
            } else if (p[i] == '\r' || p[i] == '\n')
                mv_buf_append(out, "\xC2\xAE", 2);
            else if (p[i] == 0x14)
                mv_buf_append_byte(out, ' ');
            else if (l == 1 && p[i] >= 0x80)
                mv_buf_append(out, "\xEF\xBF\xBD", 3);
            else
                mv_buf_append(out, p + i, l);
            i += l;
        }
        mv_buf_append(out, "\xC3\xBE", 2);
    } else if (kind == MV_LF_CSV) {
        if (!first)
            mv_buf_append_byte(out, ',');
        mv_buf_append_byte(out, '"');
        for (size_t i = 0; i < n; i++) {
            if (p[i] == '"')
                mv_buf_append_byte(out, '"');
            mv_buf_append_byte(out, p[i]);
        }
        mv_buf_append_byte(out, '"');
    }
}

void mv_lf_end_record(mv_lf_kind kind, mv_buf *out)
{
    if (kind == MV_LF_DAT || kind == MV_LF_CSV)
        mv_buf_append(out, "\r\n", 2);
}

void mv_xml_text(const char *v, mv_buf *out)
{
    const unsigned char *p = (const unsigned char *)(v ? v : "");
    size_t n = strlen((const char *)p);
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(p + i, n - i);
        unsigned char c = p[i];
        if (c == '&')
            mv_buf_append_str(out, "&amp;");
        else if (c == '<')
            mv_buf_append_str(out, "&lt;");
        else if (c == '>')
            mv_buf_append_str(out, "&gt;");
        else if (c == '"')
            mv_buf_append_str(out, "&quot;");
        else if (c == '\n' || c == '\r' || c == '\t')
            mv_buf_printf(out, "&#%d;", c);
        else if (c < 0x20 || c == 0x7f || (l == 1 && c >= 0x80))
            /* XML 1.0 cannot carry it, even escaped */
            mv_buf_append(out, "\xEF\xBF\xBD", 3);
        else if (l == 3 && c == 0xEF && p[i + 1] == 0xBF && (p[i + 2] == 0xBE || p[i + 2] == 0xBF))
            mv_buf_append(out, "\xEF\xBF\xBD", 3); /* U+FFFE, U+FFFF: not characters */
        else
            mv_buf_append(out, p + i, l);
        i += l;
    }
}
