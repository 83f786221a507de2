/* SPDX-License-Identifier: MIT */
/* rawmime.h - scanning raw MIME bytes: header blocks, fields, Content-Type,
 * multipart delimiters and the two transfer decodings.
 *
 * PRIVATE TO ingest/: journal.c, pgp.c and mime.c include it; no other
 * module may.  It exists because the first two must keep every byte of the
 * input that they do not replace, and GMime re-serialises what it parses,
 * so they scan the bytes themselves; one scanner keeps them in agreement.
 * mime.c uses it to find the header fields of a one-part message whose
 * summary it makes without building GMime's objects (mime.c, "the direct
 * path").
 *
 * Everything here is a pure function over caller-owned bytes: no I/O, no
 * global state, safe from several threads.  Nothing fails on hostile
 * input: unreadable parts come back empty, and the decoders report damage
 * through *bad and a reached output limit through *cut.  Every loop is
 * bounded by the input length or by the named limits below; the work is
 * linear in the input.  Allocation aborts (mv_xmalloc), so nothing returns
 * an allocation error. */
#ifndef MV_INGEST_RAWMIME_H
#define MV_INGEST_RAWMIME_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"

#define MV_RM_MAX_BOUNDARY 256 /* RFC 2046 says 70; be liberal, but bounded */
#define MV_RM_MAX_TOKEN 64     /* media type, subtype, charset, protocol, CTE */

/* ---- bytes -------------------------------------------------------------- */

static inline int mv_rm_is_wsp(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* mv_rm_lc - ASCII lower case; other bytes unchanged (no locale). */
static inline uint8_t mv_rm_lc(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* mv_rm_ieq - bytes p[0..n) equal the C string s, ignoring ASCII case. */
int mv_rm_ieq(const uint8_t *p, size_t n, const char *s);

/* mv_rm_iprefix - bytes p[0..n) start with s, ignoring ASCII case. */
int mv_rm_iprefix(const uint8_t *p, size_t n, const char *s);

/* ---- header blocks ------------------------------------------------------ */

/* A header block inside p (borrowed, not owned): fields in [0, hlen), body
 * from body_off.  complete: an empty line ended it; over: max was reached
 * first. */
typedef struct mv_rm_hblock {
    const uint8_t *p;
    size_t hlen;
    size_t body_off;
    int complete;
    int over;
} mv_rm_hblock;

/* mv_rm_scan_headers - find the end of the header block at p[0..n),
 * reading at most max bytes.  Without an empty line the whole (bounded)
 * input is header and there is no body (body_off = n).  hb borrows p. */
void mv_rm_scan_headers(const uint8_t *p, size_t n, size_t max, mv_rm_hblock *hb);

/* mv_rm_next_line - the next logical line of hb from *pos (start at 0): its
 * whole range [*fs, *fe) with continuation lines and line end, the field
 * name and the raw (still folded) value, all pointing into hb->p.  Lines
 * that are not fields come back with *nlen 0, so a copy can keep them.
 * Returns 0 at the end. */
int mv_rm_next_line(const mv_rm_hblock *hb, size_t *pos, size_t *fs, size_t *fe,
                    const uint8_t **name, size_t *nlen, const uint8_t **val, size_t *vlen);

/* mv_rm_next_field - as mv_rm_next_line, but only fields (*nlen > 0);
 * lines that are not fields are skipped.  Returns 0 at the end. */
int mv_rm_next_field(const mv_rm_hblock *hb, size_t *pos, const uint8_t **name, size_t *nlen,
                     const uint8_t **val, size_t *vlen);

/* mv_rm_unfold - v[0..n) without CR and LF, blanks trimmed, as a new
 * NUL-terminated string owned by the caller (free()); *len, if not NULL,
 * gets its length.  Never NULL. */
char *mv_rm_unfold(const uint8_t *v, size_t n, size_t *len);

/* ---- Content-Type and friends ------------------------------------------- */

enum {
    MV_RM_CTE_NONE = 0, /* no Content-Transfer-Encoding, or an empty one */
    MV_RM_CTE_7BIT,
    MV_RM_CTE_8BIT,
    MV_RM_CTE_BINARY,
    MV_RM_CTE_BASE64,
    MV_RM_CTE_QP,
    MV_RM_CTE_OTHER
};

/* A parsed Content-Type.  Tokens are lower-cased and cut at
 * MV_RM_MAX_TOKEN - 1 bytes. */
typedef struct mv_rm_ctype {
    char type[MV_RM_MAX_TOKEN];
    char sub[MV_RM_MAX_TOKEN];
    char charset[MV_RM_MAX_TOKEN];  /* name characters only; "?" when it held others */
    char protocol[MV_RM_MAX_TOKEN]; /* lower-cased; a value too long is left empty */
    char boundary[MV_RM_MAX_BOUNDARY + 1];
    size_t blen;
    char delim[MV_RM_MAX_BOUNDARY + 4]; /* LF "--" boundary, what the scan looks for */
    size_t dlen;
    int has_boundary; /* the first usable boundary parameter is in boundary / delim */
    int bad_boundary; /* a boundary parameter, empty or over MV_RM_MAX_BOUNDARY, came
                       * before any usable one (callers that take only the first
                       * boundary parameter treat this as no boundary) */
} mv_rm_ctype;

/* mv_rm_parse_ctype - type, subtype and parameters of an unfolded value s
 * (NUL-terminated).  Unparseable parts leave their fields empty. */
void mv_rm_parse_ctype(const char *s, mv_rm_ctype *ct);

/* mv_rm_parse_cte - an unfolded Content-Transfer-Encoding value as
 * MV_RM_CTE_*. */
int mv_rm_parse_cte(const char *s);

/* The fields of one entity that the scanners need. */
typedef struct mv_rm_entity {
    mv_rm_ctype ct;
    int has_ct;     /* a Content-Type with a media type */
    int cte;        /* MV_RM_CTE_* */
    int attachment; /* Content-Disposition: attachment */
} mv_rm_entity;

/* mv_rm_read_entity - the first Content-Type, Content-Transfer-Encoding and
 * Content-Disposition of hb. */
void mv_rm_read_entity(const mv_rm_hblock *hb, mv_rm_entity *e);

/* ---- transfer decodings ------------------------------------------------- */

/* Flags of mv_rm_b64_decode. */
enum {
    /* '=' is skipped wherever it stands and the bits run on across it; a
     * short last group is not damage.  What pgp.c has always done, kept so
     * reprocessing decrypts exactly as before. */
    MV_RM_B64_IGNORE_PAD = 1u << 0,
};

/* mv_rm_b64_decode - lenient base64 of s[0..n) appended to out, stopping
 * when out->len reaches max (then *cut = 1).  Junk bytes are skipped and
 * set *bad; without MV_RM_B64_IGNORE_PAD so do data after padding (decoding
 * restarts there: concatenated encodings) and a last group of one
 * character.  *bad and *cut are only ever set, never cleared. */
void mv_rm_b64_decode(const uint8_t *s, size_t n, size_t max, unsigned flags, mv_buf *out, int *bad,
                      int *cut);

/* mv_rm_qp_decode - quoted-printable of s[0..n) appended to out, stopping
 * when out->len reaches max (then *cut = 1).  Line ends are kept as they
 * came; blanks before a line end are transport padding and go (RFC 2045
 * 6.7).  A stray '=' is kept and sets *bad. */
void mv_rm_qp_decode(const uint8_t *s, size_t n, size_t max, mv_buf *out, int *bad, int *cut);

/* ---- multipart delimiters ----------------------------------------------- */

/* mv_rm_find_delim - the next delimiter line of ct (which must have a
 * boundary) in p[from, end), at a line start or at base (the start of the
 * multipart body).  Returns the offset of its "--", or end when there is
 * none; *next gets the offset after the delimiter line, *close whether it is
 * the close delimiter.  Linear: the search is for LF "--" boundary, and a
 * boundary holds no LF, so matches never overlap. */
size_t mv_rm_find_delim(const uint8_t *p, size_t base, size_t from, size_t end,
                        const mv_rm_ctype *ct, size_t *next, int *close);

/* mv_rm_content_end - where the content starting at start before a
 * delimiter at `at` ends: the CRLF (or LF) before it belongs to the
 * delimiter (RFC 2046 5.1.1). */
size_t mv_rm_content_end(const uint8_t *p, size_t start, size_t at);

#endif
