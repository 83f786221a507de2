/* SPDX-License-Identifier: MIT */
/* rawmime.c - scanning raw MIME bytes (see rawmime.h; private to ingest/).
 *
 * Byte-exact on purpose: offsets returned here are used to cut the input
 * into pieces that are written back unchanged (journal unwrapping, PGP
 * entity replacement), so nothing here normalises line ends or copies.
 *
 * LIMITS: header blocks stop at the caller's max; tokens at
 * MV_RM_MAX_TOKEN, boundaries at MV_RM_MAX_BOUNDARY; decoders at the
 * caller's max output; comments nest only as deep as the value is long. */
#include "rawmime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/err.h"

/* ---- bytes -------------------------------------------------------------- */

int mv_rm_ieq(const uint8_t *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    if (n != k)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (mv_rm_lc(p[i]) != mv_rm_lc((uint8_t)s[i]))
            return 0;
    return 1;
}

int mv_rm_iprefix(const uint8_t *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    return n >= k && mv_rm_ieq(p, k, s);
}

/* ---- header blocks ------------------------------------------------------ */

void mv_rm_scan_headers(const uint8_t *p, size_t n, size_t max, mv_rm_hblock *hb)
{
    size_t lim = n < max ? n : max;
    size_t i = 0;
    hb->p = p;
    hb->complete = 0;
    hb->over = 0;
    while (i < lim) {
        const uint8_t *lf = memchr(p + i, '\n', lim - i);
        size_t eol = lf ? (size_t)(lf - p) : lim;
        size_t len = eol - i;
        if (len > 0 && p[eol - 1] == '\r')
            len--;
        if (len == 0 && lf) {
            hb->hlen = i;
            hb->body_off = eol + 1;
            hb->complete = 1;
            return;
        }
        if (!lf)
            break;
        i = eol + 1;
    }
    if (lim < n) {
        hb->over = 1;
        hb->hlen = lim;
        hb->body_off = n;
        return;
    }
    hb->hlen = n;
    hb->body_off = n;
}

int mv_rm_next_line(const mv_rm_hblock *hb, size_t *pos, size_t *fs, size_t *fe,
                    const uint8_t **name, size_t *nlen, const uint8_t **val, size_t *vlen)
{
    const uint8_t *p = hb->p;
    size_t end = hb->hlen;
    if (*pos >= end)
        return 0;
    size_t s = *pos;
    const uint8_t *lf = memchr(p + s, '\n', end - s);
    size_t eol = lf ? (size_t)(lf - p) + 1 : end;
    size_t e = eol;
    while (e < end && mv_rm_is_wsp(p[e])) { /* the continuation lines */
        const uint8_t *lf2 = memchr(p + e, '\n', end - e);
        e = lf2 ? (size_t)(lf2 - p) + 1 : end;
    }
    *pos = e;
    *fs = s;
    *fe = e;
    *nlen = 0;
    *name = p + s;
    *val = p + s;
    *vlen = 0;
    if (mv_rm_is_wsp(p[s]))
        return 1; /* a continuation with no field before it */
    const uint8_t *colon = memchr(p + s, ':', eol - s);
    if (!colon)
        return 1;
    size_t nl = (size_t)(colon - (p + s));
    while (nl > 0 && mv_rm_is_wsp(p[s + nl - 1]))
        nl--; /* obsolete syntax: blanks before the colon */
    for (size_t k = 0; k < nl; k++)
        if (p[s + k] <= ' ' || p[s + k] >= 0x7f)
            return 1;
    *nlen = nl;
    *val = colon + 1;
    *vlen = e - (size_t)(colon + 1 - p);
    return 1;
}

int mv_rm_next_field(const mv_rm_hblock *hb, size_t *pos, const uint8_t **name, size_t *nlen,
                     const uint8_t **val, size_t *vlen)
{
    size_t fs, fe;
    while (mv_rm_next_line(hb, pos, &fs, &fe, name, nlen, val, vlen))
        if (*nlen > 0)
            return 1;
    return 0;
}

char *mv_rm_unfold(const uint8_t *v, size_t n, size_t *len)
{
    char *out = mv_xmalloc(n + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] != '\r' && v[i] != '\n')
            out[w++] = (char)v[i];
    size_t s = 0;
    while (s < w && mv_rm_is_wsp((uint8_t)out[s]))
        s++;
    while (w > s && mv_rm_is_wsp((uint8_t)out[w - 1]))
        w--;
    memmove(out, out + s, w - s);
    w -= s;
    out[w] = '\0';
    if (len)
        *len = w;
    return out;
}

/* ---- Content-Type and friends ------------------------------------------- */

/* skip_cfws - blanks and (nested, bounded by n) comments. */
static void skip_cfws(const char *s, size_t n, size_t *i)
{
    for (;;) {
        while (*i < n && mv_rm_is_wsp((uint8_t)s[*i]))
            (*i)++;
        if (*i < n && s[*i] == '(') {
            int depth = 0;
            while (*i < n) {
                char c = s[*i];
                if (c == '\\' && *i + 1 < n) {
                    *i += 2;
                    continue;
                }
                (*i)++;
                if (c == '(')
                    depth++;
                else if (c == ')' && --depth == 0)
                    break;
            }
            continue;
        }
        return;
    }
}

static int is_tspecial(char c)
{
    return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* read_token - an RFC 2045 token, lower-cased into out (cut at cap-1);
 * returns its length in the input. */
static size_t read_token(const char *s, size_t n, size_t *i, char *out, size_t cap)
{
    size_t start = *i, w = 0;
    while (*i < n && (uint8_t)s[*i] > ' ' && (uint8_t)s[*i] < 0x7f && !is_tspecial(s[*i])) {
        if (w + 1 < cap)
            out[w++] = (char)mv_rm_lc((uint8_t)s[*i]);
        (*i)++;
    }
    if (cap)
        out[w] = '\0';
    return *i - start;
}

/* set_boundary - the boundary parameter value val (vlen bytes in the
 * input, of which val holds the first ones). */
static void set_boundary(mv_rm_ctype *ct, const char *val, size_t vlen)
{
    if (ct->has_boundary)
        return; /* the first usable one counts */
    if (vlen == 0 || vlen > MV_RM_MAX_BOUNDARY) {
        ct->bad_boundary = 1;
        return;
    }
    memcpy(ct->boundary, val, vlen);
    ct->boundary[vlen] = '\0';
    ct->blen = vlen;
    ct->has_boundary = 1;
    memcpy(ct->delim, "\n--", 3);
    memcpy(ct->delim + 3, val, vlen);
    ct->dlen = vlen + 3;
}

/* set_charset - only name characters reach iconv; anything else is "?"
 * (unknown). */
static void set_charset(mv_rm_ctype *ct, const char *val, size_t vlen)
{
    if (ct->charset[0])
        return;
    size_t k = 0;
    for (; k + 1 < sizeof ct->charset && val[k]; k++) {
        char c = (char)mv_rm_lc((uint8_t)val[k]);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-_.:", c)))
            break;
        ct->charset[k] = c;
    }
    ct->charset[k] = '\0';
    if (val[k] || (vlen > 0 && k == 0))
        memcpy(ct->charset, "?", 2);
}

void mv_rm_parse_ctype(const char *s, mv_rm_ctype *ct)
{
    size_t n = strlen(s), i = 0;
    memset(ct, 0, sizeof *ct);
    skip_cfws(s, n, &i);
    read_token(s, n, &i, ct->type, sizeof ct->type);
    skip_cfws(s, n, &i);
    if (i < n && s[i] == '/') {
        i++;
        skip_cfws(s, n, &i);
        read_token(s, n, &i, ct->sub, sizeof ct->sub);
    }
    /* parameters; anything unreadable skips to the next ';' */
    while (i < n) {
        while (i < n && s[i] != ';')
            i++;
        if (i >= n)
            break;
        i++;
        skip_cfws(s, n, &i);
        char name[MV_RM_MAX_TOKEN];
        read_token(s, n, &i, name, sizeof name);
        skip_cfws(s, n, &i);
        if (i >= n || s[i] != '=')
            continue;
        i++;
        skip_cfws(s, n, &i);
        char val[MV_RM_MAX_BOUNDARY + 2];
        size_t w = 0, vlen = 0;
        if (i < n && s[i] == '"') {
            i++;
            while (i < n && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < n)
                    i++;
                if (w + 1 < sizeof val)
                    val[w++] = s[i];
                vlen++;
                i++;
            }
            if (i < n)
                i++;
        } else {
            /* liberal: a token, but real boundaries hold tspecials too */
            while (i < n && s[i] != ';' && !mv_rm_is_wsp((uint8_t)s[i])) {
                if (w + 1 < sizeof val)
                    val[w++] = s[i];
                vlen++;
                i++;
            }
        }
        val[w] = '\0';
        if (strcmp(name, "boundary") == 0) {
            set_boundary(ct, val, vlen);
        } else if (strcmp(name, "charset") == 0) {
            set_charset(ct, val, vlen);
        } else if (strcmp(name, "protocol") == 0 && !ct->protocol[0] && vlen < MV_RM_MAX_TOKEN) {
            for (size_t k = 0; k <= vlen; k++)
                ct->protocol[k] = (char)mv_rm_lc((uint8_t)val[k]);
        }
    }
}

int mv_rm_parse_cte(const char *s)
{
    char tok[MV_RM_MAX_TOKEN];
    size_t i = 0, n = strlen(s);
    skip_cfws(s, n, &i);
    read_token(s, n, &i, tok, sizeof tok);
    if (!tok[0])
        return MV_RM_CTE_NONE;
    if (strcmp(tok, "7bit") == 0)
        return MV_RM_CTE_7BIT;
    if (strcmp(tok, "8bit") == 0)
        return MV_RM_CTE_8BIT;
    if (strcmp(tok, "binary") == 0)
        return MV_RM_CTE_BINARY;
    if (strcmp(tok, "base64") == 0)
        return MV_RM_CTE_BASE64;
    if (strcmp(tok, "quoted-printable") == 0)
        return MV_RM_CTE_QP;
    return MV_RM_CTE_OTHER;
}

void mv_rm_read_entity(const mv_rm_hblock *hb, mv_rm_entity *e)
{
    size_t pos = 0, nl, vl;
    const uint8_t *name, *val;
    int got_cte = 0, got_cd = 0;
    memset(e, 0, sizeof *e);
    while (mv_rm_next_field(hb, &pos, &name, &nl, &val, &vl)) {
        if (!e->has_ct && mv_rm_ieq(name, nl, "content-type")) {
            char *v = mv_rm_unfold(val, vl, NULL);
            mv_rm_parse_ctype(v, &e->ct);
            free(v);
            e->has_ct = e->ct.type[0] != '\0';
        } else if (!got_cte && mv_rm_ieq(name, nl, "content-transfer-encoding")) {
            char *v = mv_rm_unfold(val, vl, NULL);
            e->cte = mv_rm_parse_cte(v);
            free(v);
            got_cte = 1;
        } else if (!got_cd && mv_rm_ieq(name, nl, "content-disposition")) {
            char *v = mv_rm_unfold(val, vl, NULL);
            e->attachment = strncasecmp(v, "attachment", 10) == 0;
            free(v);
            got_cd = 1;
        }
    }
}

/* ---- transfer decodings ------------------------------------------------- */

void mv_rm_b64_decode(const uint8_t *s, size_t n, size_t max, unsigned flags, mv_buf *out, int *bad,
                      int *cut)
{
    int strict_pad = !(flags & MV_RM_B64_IGNORE_PAD);
    uint32_t acc = 0;
    int bits = 0, pad = 0, groups = 0;
    /* decoded bytes are staged and appended in blocks: every message's
     * text parts pass through here (OpenPGP detection), so byte-wise
     * appends showed in import profiles */
    uint8_t stage[4096];
    size_t sl = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        int v = mv_b64_val(c);
        if (v < 0) { /* the letters first: they are nearly every byte */
            if (c == '=') {
                if (strict_pad)
                    pad++;
            } else if (!(c == '\r' || c == '\n' || mv_rm_is_wsp(c))) {
                *bad = 1;
            }
            continue;
        }
        if (pad) {
            /* data after padding: concatenated encodings, decode on */
            *bad = 1;
            pad = 0;
            acc = 0;
            bits = 0;
            groups = 0;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        groups++;
        if (bits >= 8) {
            bits -= 8;
            if (out->len + sl >= max) {
                if (sl)
                    mv_buf_append(out, stage, sl);
                *cut = 1;
                return;
            }
            stage[sl++] = (uint8_t)(acc >> bits);
            if (sl == sizeof stage) {
                mv_buf_append(out, stage, sl);
                sl = 0;
            }
            acc &= (1u << bits) - 1;
        }
    }
    if (sl)
        mv_buf_append(out, stage, sl);
    if (strict_pad && groups % 4 == 1)
        *bad = 1; /* six bits cannot make a byte */
}

static int hexv(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = mv_rm_lc(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The decoded form is never longer than the input, so it is written in
 * place into room reserved once: an append call a word (and one a space,
 * and one an escape) cost more than the decoding itself. */
void mv_rm_qp_decode(const uint8_t *s, size_t n, size_t max, mv_buf *out, int *bad, int *cut)
{
    if (out->len >= max) {
        if (n)
            *cut = 1;
        return;
    }
    size_t room = max - out->len, i = 0;
    mv_buf_reserve(out, n < room ? n : room);
    uint8_t *o = out->data + out->len;
    size_t w = 0; /* bytes written; never more than room, nor than i */
    while (i < n) {
        if (w >= room) {
            *cut = 1;
            break;
        }
        uint8_t c = s[i];
        if (c == '=') {
            int hi, lo;
            if (i + 2 < n && (hi = hexv(s[i + 1])) >= 0 && (lo = hexv(s[i + 2])) >= 0) {
                o[w++] = (uint8_t)(hi << 4 | lo);
                i += 3;
                continue;
            }
            /* soft line break, possibly with blanks before it */
            size_t k = i + 1;
            while (k < n && mv_rm_is_wsp(s[k]))
                k++;
            if (k < n && s[k] == '\n') {
                i = k + 1;
                continue;
            }
            if (k + 1 < n && s[k] == '\r' && s[k + 1] == '\n') {
                i = k + 2;
                continue;
            }
            if (k == n) {
                i = n; /* soft break at the very end */
                continue;
            }
            *bad = 1;
            o[w++] = c;
            i++;
            continue;
        }
        /* A run up to the next '=' or line feed, the feed included: only
         * the blanks at its end can go, the rest is copied at once. */
        size_t k = i;
        while (k < n && s[k] != '=' && s[k] != '\n')
            k++;
        size_t t = k, kend = k; /* the line end, kept: [t, kend) */
        int eol = k == n || s[k] == '\n'; /* else '=': blanks before it stay */
        if (k < n && s[k] == '\n') {
            kend = k + 1;
            if (k > i && s[k - 1] == '\r')
                t = k - 1;
        }
        size_t e = t; /* blanks before the line end (or the input's end) go */
        if (eol)
            while (e > i && mv_rm_is_wsp(s[e - 1]))
                e--;
        size_t len = e - i, take = len < room - w ? len : room - w;
        memcpy(o + w, s + i, take);
        w += take;
        if (take < len) {
            *cut = 1;
            break;
        }
        if (e < t && w >= room) {
            *cut = 1; /* (blanks dropped, with input left) */
            break;
        }
        len = kend - t;
        take = len < room - w ? len : room - w;
        memcpy(o + w, s + t, take);
        w += take;
        if (take < len) {
            *cut = 1;
            break;
        }
        i = kend;
    }
    out->len += w;
    out->data[out->len] = '\0';
}

/* ---- multipart delimiters ----------------------------------------------- */

/* delim_at - is there a delimiter line of ct at p[at] ("--b" already
 * matched)?  Sets *next past its line end and *close for "--b--". */
static int delim_at(const uint8_t *p, size_t at, size_t end, const mv_rm_ctype *ct, size_t *next,
                    int *close)
{
    size_t k = at + 2 + ct->blen;
    if (k + 2 <= end && p[k] == '-' && p[k + 1] == '-') {
        const uint8_t *lf = memchr(p + k, '\n', end - k);
        *next = lf ? (size_t)(lf - p) + 1 : end;
        *close = 1;
        return 1;
    }
    while (k < end && mv_rm_is_wsp(p[k]))
        k++; /* transport padding */
    if (k == end || p[k] == '\n') {
        *next = k == end ? end : k + 1;
    } else if (p[k] == '\r' && (k + 1 == end || p[k + 1] == '\n')) {
        *next = k + 1 == end ? end : k + 2;
    } else {
        return 0; /* "--boundary-more": another boundary, or text */
    }
    *close = 0;
    return 1;
}

size_t mv_rm_find_delim(const uint8_t *p, size_t base, size_t from, size_t end,
                        const mv_rm_ctype *ct, size_t *next, int *close)
{
    if (from == base && end - from >= ct->dlen - 1 &&
        memcmp(p + from, ct->delim + 1, ct->dlen - 1) == 0 &&
        delim_at(p, from, end, ct, next, close))
        return from;
    size_t i = from > base ? from - 1 : from; /* the LF that ended the last line */
    while (i < end && end - i >= ct->dlen) {
        const uint8_t *h = memmem(p + i, end - i, ct->delim, ct->dlen);
        if (!h)
            return end;
        size_t at = (size_t)(h - p) + 1;
        if (delim_at(p, at, end, ct, next, close))
            return at;
        i = at;
    }
    return end;
}

size_t mv_rm_content_end(const uint8_t *p, size_t start, size_t at)
{
    size_t e = at;
    if (e > start && p[e - 1] == '\n') {
        e--;
        if (e > start && p[e - 1] == '\r')
            e--;
    }
    return e;
}
