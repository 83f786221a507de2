/* SPDX-License-Identifier: MIT */
/* buf.h - growable byte buffer.  Fields are read-only for callers.
 * Memory is owned by the buffer; mv_buf_free releases it.  Appends abort on
 * out-of-memory (mv_xrealloc).  The data is always followed by a NUL byte
 * that is not counted in len, so text can be passed to C string functions;
 * binary content may hold NULs of its own. */
#ifndef MV_LIB_BUF_H
#define MV_LIB_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct mv_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} mv_buf;

#define MV_BUF_INIT {NULL, 0, 0}

void mv_buf_reserve(mv_buf *b, size_t extra);
void mv_buf_append(mv_buf *b, const void *p, size_t n);
void mv_buf_append_str(mv_buf *b, const char *s);
void mv_buf_append_byte(mv_buf *b, uint8_t c);
void mv_buf_printf(mv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mv_buf_put_u8(mv_buf *b, uint8_t v);
void mv_buf_put_u32(mv_buf *b, uint32_t v); /* big-endian */
void mv_buf_put_u64(mv_buf *b, uint64_t v); /* big-endian */
/* length-prefixed (u32 BE) bytes / string */
void mv_buf_put_lp(mv_buf *b, const void *p, size_t n);
void mv_buf_put_str(mv_buf *b, const char *s); /* NULL is written as an empty string */
void mv_buf_reset(mv_buf *b);                  /* len = 0, keeps memory */
/* mv_buf_wipe - zero the contents (for secrets) then free. */
void mv_buf_wipe(mv_buf *b);
void mv_buf_free(mv_buf *b);
/* mv_buf_steal - hand the data (NUL-terminated) to the caller, reset b. */
uint8_t *mv_buf_steal(mv_buf *b, size_t *len);

/* A bounded reader over borrowed bytes, for decoding our own records.
 * Every get fails (returns 0) once the input is short; `bad` then stays set,
 * so a decoder can read all fields and check once at the end. */
typedef struct mv_rd {
    const uint8_t *p;
    size_t left;
    int bad;
} mv_rd;

void mv_rd_init(mv_rd *r, const void *p, size_t n);
uint8_t mv_rd_u8(mv_rd *r);
uint32_t mv_rd_u32(mv_rd *r);
uint64_t mv_rd_u64(mv_rd *r);
/* mv_rd_lp - borrow a length-prefixed field; *n gets its length. */
const uint8_t *mv_rd_lp(mv_rd *r, size_t *n);
/* mv_rd_str - copy a length-prefixed field as a new NUL-terminated string
 * (caller frees); NULL when the input is short. */
char *mv_rd_str(mv_rd *r);
const uint8_t *mv_rd_bytes(mv_rd *r, size_t n);

static inline void mv_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void mv_be64_put(uint8_t *p, uint64_t v)
{
    mv_be32_put(p, (uint32_t)(v >> 32));
    mv_be32_put(p + 4, (uint32_t)v);
}
static inline uint32_t mv_be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t mv_be64_get(const uint8_t *p)
{
    return ((uint64_t)mv_be32_get(p) << 32) | mv_be32_get(p + 4);
}

/* mv_bits_str - the names of the set bits, comma-separated, into out (n
 * bytes; cut at a name that does not fit); bits without a name are
 * written as PREFIX and the bit number.  Returns out. */
char *mv_bits_str(uint32_t bits, const char *const *names, size_t n_names, const char *prefix,
                  char *out, size_t n);

/* hex helpers: out must hold 2*n+1 bytes */
void mv_hex(const uint8_t *in, size_t n, char *out);
int mv_unhex(const char *in, uint8_t *out, size_t n); /* 0 ok, -1 bad */
/* mv_b64_val - the value of a standard base64 letter (RFC 4648), -1 for
 * any other byte.  A table lookup, inline: decoders call it per byte. */
extern const int8_t mv_b64_tab[256];
static inline int mv_b64_val(uint8_t c)
{
    return mv_b64_tab[c];
}

#endif
