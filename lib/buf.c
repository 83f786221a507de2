/* SPDX-License-Identifier: MIT */
/* buf.c - growable buffers and a bounded record reader. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "err.h"

void mv_buf_reserve(mv_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        mv_assert_fail("buffer size overflow", __FILE__, __LINE__);
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = mv_xrealloc(b->data, cap);
    b->cap = cap;
}

void mv_buf_append(mv_buf *b, const void *p, size_t n)
{
    mv_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void mv_buf_append_str(mv_buf *b, const char *s)
{
    mv_buf_append(b, s, strlen(s));
}

void mv_buf_append_byte(mv_buf *b, uint8_t c)
{
    mv_buf_append(b, &c, 1);
}

void mv_buf_printf(mv_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    mv_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void mv_buf_put_u8(mv_buf *b, uint8_t v)
{
    mv_buf_append(b, &v, 1);
}

void mv_buf_put_u32(mv_buf *b, uint32_t v)
{
    uint8_t t[4];
    mv_be32_put(t, v);
    mv_buf_append(b, t, 4);
}

void mv_buf_put_u64(mv_buf *b, uint64_t v)
{
    uint8_t t[8];
    mv_be64_put(t, v);
    mv_buf_append(b, t, 8);
}

void mv_buf_put_lp(mv_buf *b, const void *p, size_t n)
{
    mv_assert(n <= UINT32_MAX);
    mv_buf_put_u32(b, (uint32_t)n);
    mv_buf_append(b, p, n);
}

void mv_buf_put_str(mv_buf *b, const char *s)
{
    mv_buf_put_lp(b, s ? s : "", s ? strlen(s) : 0);
}

void mv_buf_reset(mv_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void mv_buf_wipe(mv_buf *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->cap);
    mv_buf_free(b);
}

void mv_buf_free(mv_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

uint8_t *mv_buf_steal(mv_buf *b, size_t *len)
{
    if (!b->data)
        mv_buf_reserve(b, 0), b->data[0] = '\0';
    uint8_t *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void mv_rd_init(mv_rd *r, const void *p, size_t n)
{
    r->p = p;
    r->left = n;
    r->bad = 0;
}

const uint8_t *mv_rd_bytes(mv_rd *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint8_t mv_rd_u8(mv_rd *r)
{
    const uint8_t *p = mv_rd_bytes(r, 1);
    return p ? p[0] : 0;
}

uint32_t mv_rd_u32(mv_rd *r)
{
    const uint8_t *p = mv_rd_bytes(r, 4);
    return p ? mv_be32_get(p) : 0;
}

uint64_t mv_rd_u64(mv_rd *r)
{
    const uint8_t *p = mv_rd_bytes(r, 8);
    return p ? mv_be64_get(p) : 0;
}

const uint8_t *mv_rd_lp(mv_rd *r, size_t *n)
{
    uint32_t len = mv_rd_u32(r);
    const uint8_t *p = mv_rd_bytes(r, len);
    *n = p ? len : 0;
    return p;
}

char *mv_rd_str(mv_rd *r)
{
    size_t n;
    const uint8_t *p = mv_rd_lp(r, &n);
    if (!p)
        return NULL;
    return mv_xstrndup((const char *)p, n);
}

void mv_hex(const uint8_t *in, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mv_unhex(const char *in, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int h = hexval((unsigned char)in[2 * i]);
        if (h < 0)
            return -1;
        int l = hexval((unsigned char)in[2 * i + 1]);
        if (l < 0)
            return -1;
        out[i] = (uint8_t)(h << 4 | l);
    }
    return in[2 * n] == '\0' ? 0 : -1;
}

char *mv_bits_str(uint32_t bits, const char *const *names, size_t n_names, const char *prefix,
                  char *out, size_t n)
{
    size_t len = 0;
    if (!out || n == 0)
        return out;
    out[0] = '\0';
    for (unsigned bit = 0; bit < 32; bit++) {
        if (!(bits & (1u << bit)))
            continue;
        char unknown[48];
        const char *name = unknown;
        if (bit < n_names)
            name = names[bit];
        else
            snprintf(unknown, sizeof unknown, "%s%u", prefix, bit);
        int w = snprintf(out + len, n - len, "%s%s", len ? "," : "", name);
        if (w < 0 || (size_t)w >= n - len) {
            out[len] = '\0'; /* a name that does not fit is left out whole */
            break;
        }
        len += (size_t)w;
    }
    return out;
}

/* RFC 4648 section 4's alphabet; -1 for every other byte. */
const int8_t mv_b64_tab[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};
