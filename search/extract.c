/* SPDX-License-Identifier: MIT */
/* extract.c - the searchable text of one message: headers, body, attachment
 * names and text (any text type, HTML, PDF through poppler-glib, OOXML and ODF
 * through libarchive), as a flat list of sections (extract.h).
 *
 * One GMime parse per message; every part's content is read once through a
 * bounded decoder.  All text passes through one sanitiser (tb_put) that
 * leaves valid UTF-8 without NUL, so the index, snippets and export never
 * see bytes they cannot print.
 *
 * Where nested text goes: an attached message (message/rfc822, or a .eml
 * file) is one attachment part k; its headers, its body and the text of its
 * own attachments are written into the ATTACH_TEXT of k, while those inner
 * attachments still get their own part numbers with FILENAME and MIMETYPE
 * sections (so the numbering matches export's child documents).  A message
 * attached inside an attached message collects its own text the same way.
 *
 * LIMITS (extract.h, docs/limits.md): bytes decoded per part, text per part
 * and per message, PDF pages, message nesting, sections, archive members.
 * The multipart nesting walked inside one parse is bounded by GMime's own
 * nesting limit and by MAX_MIME_NESTING here.  Nothing is bounded by time.
 *
 * Thread safety: every call has its own parser options, scratch buffers and
 * poppler/libarchive objects; GMime's shared tables are set up once
 * (pthread_once) and are locked internally.
 *
 * Hygiene: every buffer of ours that held content is wiped before it is
 * freed or moved (sbuf), and GMime parses the caller's bytes in place, so
 * no copy of the message is left behind by us.  Copies GMime, iconv,
 * poppler and libarchive make internally are out of reach and not wiped. */
#include "extract.h"

#include <dlfcn.h>
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <gmime/gmime.h>
#include <poppler.h>

#include "../lib/charset.h"

#define DEF_MAX_TEXT ((size_t)4 << 20)
#define DEF_MAX_PART_TEXT ((size_t)1 << 20)
#define DEF_MAX_PART_INPUT ((size_t)32 << 20)
#define DEF_MAX_PDF_PAGES 200u
#define DEF_MAX_DEPTH 8u
#define DEF_MAX_SECTIONS 20000u
#define DEF_MAX_MEMBERS 2000u

/* Multipart levels walked within one parsed message.  GMime stops deeper
 * nesting itself (GMIME_CRIT_NESTING_OVERFLOW); this bounds our own
 * recursion independently of the GMime version. */
#define MAX_MIME_NESTING 128u
/* Hostile nesting makes GMime compare every line starting "--" with every
 * open boundary (up to its nesting limit, 1024): a few MB of nested
 * multiparts cost seconds of CPU.  Messages of PRESCAN_MIN bytes or more
 * are scanned first, and when (lines starting "--") x (boundary
 * parameters, at most GMIME_NESTING) exceeds MAX_BOUNDARY_WORK only the
 * header block is parsed.  Below PRESCAN_MIN the worst case is cheap. */
#define PRESCAN_MIN ((size_t)32 << 10)
#define MAX_BOUNDARY_WORK ((uint64_t)1 << 24)
#define GMIME_NESTING 1024u
/* Address groups inside groups (not in RFC 5322, but a parser may build them). */
#define MAX_GROUP_NESTING 4u
/* Bytes read from a decoder per call. */
#define READ_CHUNK 32768u

#define ENCODING_VERSION 1u
#define KNOWN_FLAGS                                                                            \
    (MV_XF_TRUNCATED | MV_XF_PDF_FAILED | MV_XF_OFFICE_FAILED | MV_XF_TOO_DEEP | MV_XF_MALFORMED | \
     MV_XF_SIGNED)

/* ---- buffers that wipe what they held --------------------------------------- */

/* A byte buffer for content: growth copies and wipes the old block, and
 * `used` (high-water mark) says how much to wipe at the end, so nothing we
 * wrote is left behind in freed memory.  p[len] is always NUL once grown. */
typedef struct sbuf {
    char *p;
    size_t len, cap, used;
} sbuf;

static void wipe_free(void *p, size_t n)
{
    if (!p)
        return;
    explicit_bzero(p, n);
    free(p);
}

static void sb_mark(sbuf *b)
{
    if (b->len + 1 > b->used)
        b->used = b->len + 1;
}

/* sb_dirty - bytes of the block that may hold content: up to the
 * high-water mark, or to len when a writer has not marked yet. */
static size_t sb_dirty(const sbuf *b)
{
    size_t d = b->len + 1 > b->used ? b->len + 1 : b->used;
    return d < b->cap ? d : b->cap;
}

static void sb_grow(sbuf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len)
        mv_assert_fail("buffer size overflow", __FILE__, __LINE__);
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *n = mv_xmalloc(cap);
    if (b->len)
        memcpy(n, b->p, b->len);
    wipe_free(b->p, sb_dirty(b));
    b->p = n;
    b->cap = cap;
    b->used = b->len;
    b->p[b->len] = '\0';
    sb_mark(b);
}

static void sb_add(sbuf *b, const void *p, size_t n)
{
    sb_grow(b, n);
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    sb_mark(b);
}

static void sb_reset(sbuf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

static void sb_free(sbuf *b)
{
    wipe_free(b->p, sb_dirty(b));
    memset(b, 0, sizeof *b);
}

/* ---- UTF-8 ---------------------------------------------------------------- */

/* utf8_seq - length (2..4) of the well-formed multi-byte sequence at p,
 * 0 when it is not one (overlong, surrogate, past U+10FFFF, cut short). */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

/* utf8_valid - p[0..n) is well-formed UTF-8 (NUL allowed). */
static int utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint64_t w;
        if (n - i >= 8 && (memcpy(&w, p + i, 8), (w & 0x8080808080808080ull) == 0)) {
            i += 8;
            continue;
        }
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

static size_t utf8_put(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* ---- text builders ---------------------------------------------------------- */

/* Text for one section, capped at max bytes: once a piece does not fit it
 * is cut at a character boundary, `full` is set and MV_XF_TRUNCATED is
 * recorded; later pieces are dropped. */
typedef struct tbuf {
    sbuf b;
    size_t max;
    int full;
    uint32_t *flags;
} tbuf;

static void tb_init(tbuf *t, size_t max, uint32_t *flags)
{
    memset(t, 0, sizeof *t);
    t->max = max;
    t->flags = flags;
}

/* tb_raw - append p[0..n), already clean UTF-8. */
static void tb_raw(tbuf *t, const void *pv, size_t n)
{
    const uint8_t *p = pv;
    if (t->full || n == 0)
        return;
    size_t room = t->max - t->b.len;
    if (n > room) {
        size_t k = room;
        while (k > 0 && (p[k] & 0xC0) == 0x80)
            k--;
        n = k;
        t->full = 1;
        *t->flags |= MV_XF_TRUNCATED;
    }
    sb_add(&t->b, p, n);
}

/* Byte classes for tb_put: 0 printable ASCII, TAB, LF; 1 starts a
 * multi-byte sequence (or is invalid); 2 a control character to rewrite. */
static const uint8_t byte_class[256] = {
    2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* tb_put - append arbitrary bytes as clean text: invalid UTF-8 and NUL
 * become U+FFFD, CR and CRLF become LF, FF/VT a newline, other control
 * characters a space. */
static void tb_put(tbuf *t, const void *pv, size_t n)
{
    const uint8_t *p = pv;
    size_t i = 0;
    while (i < n && !t->full) {
        size_t j = i;
        while (j < n) {
            /* eight printable ASCII bytes at a time: no byte >= 0x80,
             * none below 0x20, none equal to 0x7F */
            while (n - j >= 8) {
                uint64_t w;
                memcpy(&w, p + j, 8);
                uint64_t d = w ^ 0x7F7F7F7F7F7F7F7Full;
                if ((w | ((w - 0x2020202020202020ull) & ~w) |
                     ((d - 0x0101010101010101ull) & ~d)) & 0x8080808080808080ull)
                    break;
                j += 8;
            }
            if (j >= n)
                break;
            uint8_t cl = byte_class[p[j]];
            if (cl == 0) {
                j++;
                continue;
            }
            size_t k = cl == 1 ? utf8_seq(p + j, n - j) : 0;
            if (!k)
                break;
            j += k;
        }
        if (j > i)
            tb_raw(t, p + i, j - i);
        if (j >= n)
            break;
        uint8_t c = p[j++];
        if (c == '\r') {
            if (j < n && p[j] == '\n')
                j++;
            tb_raw(t, "\n", 1);
        } else if (c == '\f' || c == '\v') {
            tb_raw(t, "\n", 1);
        } else if (c != 0 && c < 0x80) {
            tb_raw(t, " ", 1);
        } else {
            tb_raw(t, REPLACEMENT, 3);
        }
        i = j;
    }
}

static void tb_free(tbuf *t)
{
    sb_free(&t->b);
}

/* ---- per-call state ------------------------------------------------------ */

typedef struct xc {
    mv_extract_limits lim;
    mv_extract *x;
    size_t cap_s;        /* allocated entries of x->s */
    size_t total;        /* text bytes kept in sections */
    GMimeParserOptions *opts;
    GHashTable *refs;    /* REF ids added, once there are many (borrowed section text) */
    size_t first_ref;    /* REF sections start at or after this index */
    unsigned n_refs;
    sbuf raw;            /* a part's decoded content */
    sbuf conv;           /* the same in UTF-8 */
    /* mv_extract_attachments only; with it_fn NULL (mv_extract_message)
     * none of these is used and the walk is what it always was */
    mv_attachment_fn it_fn;
    void *it_ctx;
    mv_err *it_err;
    mv_status it_st;        /* the callback's first failure: the walk stops */
    size_t it_max;          /* content bytes handed over whole */
    uint32_t it_count;      /* attachments handed over */
    uint32_t it_container;  /* the attached message being walked (0: the message) */
    const uint8_t *it_buf;  /* the bytes of the parse being walked (header */
    size_t it_len;          /* offsets and leaf contents point into them) */
    const char **it_bounds; /* boundaries of the multiparts open around the walk */
    size_t it_nb, it_cap;
    size_t it_base;         /* the first of them that belongs to the current parse */
    sbuf it_data;           /* an attachment's decoded content */
} xc;

static size_t dflt(size_t v, size_t d)
{
    return v ? v : d;
}

static void limits_fill(mv_extract_limits *l, const mv_extract_limits *in)
{
    mv_extract_limits z;
    memset(&z, 0, sizeof z);
    if (!in)
        in = &z;
    l->max_text = dflt(in->max_text, DEF_MAX_TEXT);
    l->max_part_text = dflt(in->max_part_text, DEF_MAX_PART_TEXT);
    l->max_part_input = dflt(in->max_part_input, DEF_MAX_PART_INPUT);
    l->max_pdf_pages = in->max_pdf_pages ? in->max_pdf_pages : DEF_MAX_PDF_PAGES;
    l->max_depth = in->max_depth ? in->max_depth : DEF_MAX_DEPTH;
    l->max_sections = in->max_sections ? in->max_sections : DEF_MAX_SECTIONS;
    l->max_members = in->max_members ? in->max_members : DEF_MAX_MEMBERS;
}

/* part_budget - text one more part may keep: the per-part limit, or what
 * is left of the message's, whichever is less. */
static size_t part_budget(const xc *c)
{
    size_t left = c->total < c->lim.max_text ? c->lim.max_text - c->total : 0;
    return left < c->lim.max_part_text ? left : c->lim.max_part_text;
}

/* section_take - add a section holding t's text (taken over; t is left
 * empty).  Empty text adds nothing; past max_sections the text is dropped
 * and the message marked truncated.  Returns the stored text or NULL. */
static const char *section_take(xc *c, mv_xs_kind kind, mv_xs_role role, uint32_t part, tbuf *t)
{
    mv_extract *x = c->x;
    if (t->b.len == 0) {
        tb_free(t);
        return NULL;
    }
    size_t left = c->total < c->lim.max_text ? c->lim.max_text - c->total : 0;
    if (x->n >= c->lim.max_sections || left == 0) {
        x->flags |= MV_XF_TRUNCATED;
        tb_free(t);
        return NULL;
    }
    if (t->b.len > left) {
        /* a caller's budget predates sections added since: cut here */
        size_t k = left;
        while (k > 0 && ((uint8_t)t->b.p[k] & 0xC0) == 0x80)
            k--;
        t->b.len = k;
        t->b.p[k] = '\0';
        x->flags |= MV_XF_TRUNCATED;
        if (k == 0) {
            tb_free(t);
            return NULL;
        }
    }
    if (x->n == c->cap_s) {
        size_t cap = c->cap_s ? c->cap_s * 2 : 16;
        x->s = mv_xrealloc(x->s, cap * sizeof *x->s);
        c->cap_s = cap;
    }
    mv_xsection *s = &x->s[x->n++];
    s->kind = (uint8_t)kind;
    s->role = (uint8_t)role;
    s->part = part;
    s->len = t->b.len;
    if (t->b.cap > t->b.len + 1 + 4096) {
        /* give back a large unused tail (wiping the old block) */
        char *n = mv_xmalloc(t->b.len + 1);
        memcpy(n, t->b.p, t->b.len + 1);
        wipe_free(t->b.p, sb_dirty(&t->b));
        s->text = n;
    } else {
        /* bytes past len were never written, or held text that is wiped
         * with the section: mv_extract_free wipes len + 1 only, so clear
         * any such tail now */
        size_t dirty = sb_dirty(&t->b);
        if (dirty > t->b.len + 1)
            explicit_bzero(t->b.p + t->b.len + 1, dirty - t->b.len - 1);
        s->text = t->b.p;
    }
    memset(&t->b, 0, sizeof t->b);
    c->total += s->len;
    return s->text;
}

/* section_text - a section from a short piece of text (header fields). */
static const char *section_text(xc *c, mv_xs_kind kind, mv_xs_role role, uint32_t part,
                                const char *s, size_t n)
{
    tbuf t;
    tb_init(&t, part_budget(c), &c->x->flags);
    tb_put(&t, s, n);
    return section_take(c, kind, role, part, &t);
}

/* ---- encoding ------------------------------------------------------------ */

void mv_extract_encode(const mv_extract *x, mv_buf *out)
{
    mv_buf_put_u8(out, ENCODING_VERSION);
    mv_buf_put_u64(out, (uint64_t)x->date);
    mv_buf_put_u64(out, x->size);
    mv_buf_put_u32(out, x->n_attachments);
    mv_buf_put_u32(out, x->flags);
    mv_assert(x->n <= UINT32_MAX);
    mv_buf_put_u32(out, (uint32_t)x->n);
    for (size_t i = 0; i < x->n; i++) {
        const mv_xsection *s = &x->s[i];
        mv_buf_put_u8(out, s->kind);
        mv_buf_put_u8(out, s->role);
        mv_buf_put_u32(out, s->part);
        mv_buf_put_lp(out, s->text, s->len);
    }
}

/* The smallest encoded section: kind, role, part, an empty text. */
#define MIN_SECTION_BYTES (1 + 1 + 4 + 4)

mv_status mv_extract_decode(const uint8_t *p, size_t n, mv_extract **out, mv_err *err)
{
    *out = NULL;
    mv_rd r;
    mv_rd_init(&r, p, n);
    if (mv_rd_u8(&r) != ENCODING_VERSION || r.bad)
        return mv_err_set(err, MV_EMALFORMED, "extract: unknown encoding version");
    mv_extract *x = mv_xcalloc(1, sizeof *x);
    x->date = (int64_t)mv_rd_u64(&r);
    x->size = mv_rd_u64(&r);
    x->n_attachments = mv_rd_u32(&r);
    x->flags = mv_rd_u32(&r);
    uint32_t ns = mv_rd_u32(&r);
    const char *why = NULL;
    if (r.bad)
        why = "short header";
    else if (x->flags & ~(uint32_t)KNOWN_FLAGS)
        why = "unknown flags";
    else if (ns > r.left / MIN_SECTION_BYTES) /* never trust a count for allocation */
        why = "section count exceeds the record";
    if (!why && ns) {
        x->s = mv_xcalloc(ns, sizeof *x->s);
        for (uint32_t i = 0; i < ns && !why; i++) {
            mv_xsection *s = &x->s[i];
            s->kind = mv_rd_u8(&r);
            s->role = mv_rd_u8(&r);
            s->part = mv_rd_u32(&r);
            size_t len = 0;
            const uint8_t *t = mv_rd_lp(&r, &len);
            if (r.bad || !t) {
                why = "section cut short";
                break;
            }
            if (s->kind < MV_XS_ADDR || s->kind > MV_XS_REF)
                why = "unknown section kind";
            else if (s->role > MV_XR_BCC ||
                     (s->role && s->kind != MV_XS_ADDR && s->kind != MV_XS_NAME))
                why = "bad section role";
            else if (s->part > x->n_attachments)
                why = "section part beyond the attachments";
            else if (len == 0 || memchr(t, 0, len) || !utf8_valid(t, len))
                why = "section text is empty or not clean UTF-8";
            if (why)
                break;
            s->text = mv_xstrndup((const char *)t, len);
            s->len = len;
            x->n = i + 1;
        }
    }
    if (!why && r.left != 0)
        why = "trailing bytes";
    if (why) {
        mv_extract_free(x);
        return mv_err_set(err, MV_EMALFORMED, "extract: %s", why);
    }
    *out = x;
    return MV_OK;
}

void mv_extract_free(mv_extract *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->n; i++)
        wipe_free(x->s[i].text, x->s[i].len + 1);
    free(x->s);
    free(x);
}

/* ---- markup to text ------------------------------------------------------ */

/* Whitespace folding over a tbuf: runs of blanks become one space, line
 * breaks asked for by markup become one or two newlines, nothing leads or
 * trails. */
typedef struct wsw {
    tbuf *t;
    uint8_t space, nl, any;
} wsw;

static int is_blank(uint8_t c)
{
    return c == ' ' || (c >= '\t' && c <= '\r'); /* SP, TAB, LF, VT, FF, CR */
}

static int is_alpha(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static void ws_word(wsw *w, const void *p, size_t n)
{
    if (w->any) {
        if (w->nl)
            tb_raw(w->t, "\n\n", w->nl);
        else if (w->space)
            tb_raw(w->t, " ", 1);
    }
    w->space = w->nl = 0;
    tb_put(w->t, p, n);
    w->any = 1;
}

/* ws_text - text with its blanks folded; words joined by single spaces
 * (most text) go out as one piece. */
static void ws_text(wsw *w, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (is_blank(p[i])) {
            w->space = 1;
            i++;
            continue;
        }
        size_t s = i;
        while (i < n && (!is_blank(p[i]) ||
                         (p[i] == ' ' && i + 1 < n && !is_blank(p[i + 1]))))
            i++;
        ws_word(w, p + s, i - s);
    }
}

static void ws_break(wsw *w, uint8_t lines)
{
    if (w->nl < lines)
        w->nl = lines;
}

/* Windows-1252 0x80..0x9F; the five holes keep their Latin-1 (C1) value. */
static const uint16_t cp1252_c1[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

/* HTML 4 Latin-1 entity names, U+00A0 .. U+00FF in order. */
static const char *const latin1_names[96] = {
    "nbsp",   "iexcl", "cent",   "pound",  "curren", "yen",    "brvbar", "sect",
    "uml",    "copy",  "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",
    "deg",    "plusmn", "sup2",  "sup3",   "acute",  "micro",  "para",   "middot",
    "cedil",  "sup1",  "ordm",   "raquo",  "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml",   "Aring",  "AElig",  "Ccedil",
    "Egrave", "Eacute", "Ecirc", "Euml",   "Igrave", "Iacute", "Icirc",  "Iuml",
    "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc", "Otilde", "Ouml",   "times",
    "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml",   "Yacute", "THORN",  "szlig",
    "agrave", "aacute", "acirc", "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc", "euml",   "igrave", "iacute", "icirc",  "iuml",
    "eth",    "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml",   "divide",
    "oslash", "ugrave", "uacute", "ucirc", "uuml",   "yacute", "thorn",  "yuml",
};

static const struct {
    const char *name;
    uint32_t cp;
} other_entities[] = {
    {"amp", '&'},       {"lt", '<'},        {"gt", '>'},        {"quot", '"'},
    {"apos", '\''},     {"euro", 0x20AC},   {"ndash", 0x2013},  {"mdash", 0x2014},
    {"lsquo", 0x2018},  {"rsquo", 0x2019},  {"sbquo", 0x201A},  {"ldquo", 0x201C},
    {"rdquo", 0x201D},  {"bdquo", 0x201E},  {"hellip", 0x2026}, {"bull", 0x2022},
    {"trade", 0x2122},  {"dagger", 0x2020}, {"Dagger", 0x2021}, {"permil", 0x2030},
    {"lsaquo", 0x2039}, {"rsaquo", 0x203A}, {"ensp", 0x2002},   {"emsp", 0x2003},
    {"thinsp", 0x2009}, {"zwnj", 0x200C},   {"zwj", 0x200D},    {"lrm", 0x200E},
    {"rlm", 0x200F},    {"OElig", 0x0152},  {"oelig", 0x0153},  {"Scaron", 0x0160},
    {"scaron", 0x0161}, {"Yuml", 0x0178},   {"fnof", 0x0192},   {"circ", 0x02C6},
    {"tilde", 0x02DC},  {"larr", 0x2190},   {"rarr", 0x2192},   {"uarr", 0x2191},
    {"darr", 0x2193},   {"minus", 0x2212},  {"prime", 0x2032},  {"infin", 0x221E},
};

/* All named entities we know, sorted by name once (init_tables). */
typedef struct entity_def {
    char name[8];
    uint32_t cp;
} entity_def;

#define N_ENTITIES (96 + sizeof other_entities / sizeof other_entities[0])
static entity_def entities[N_ENTITIES];

static int cmp_entity(const void *a, const void *b)
{
    return strcmp(((const entity_def *)a)->name, ((const entity_def *)b)->name);
}

/* entity_lookup - code point of a named entity, 0 when unknown. */
static uint32_t entity_lookup(const uint8_t *s, size_t n)
{
    entity_def key = {{0}, 0};
    if (n == 0 || n >= sizeof key.name)
        return 0;
    memcpy(key.name, s, n);
    key.name[n] = '\0';
    const entity_def *e = bsearch(&key, entities, N_ENTITIES, sizeof *entities, cmp_entity);
    return e ? e->cp : 0;
}

static void ws_cp(wsw *w, uint32_t cp)
{
    if (cp == 0xA0 || cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') {
        w->space = 1;
        return;
    }
    if (cp == 0xAD || cp == 0x200B || cp == 0x200C || cp == 0x200D || cp == 0xFEFF)
        return; /* soft hyphen and zero-width marks would split words */
    uint8_t u[4];
    ws_word(w, u, utf8_put(cp, u));
}

/* entity - decode the reference at p[j] == '&'; returns the index after it.
 * What is not a reference stays literal text. */
static size_t entity(wsw *w, const uint8_t *p, size_t n, size_t j)
{
    size_t k = j + 1;
    if (k < n && p[k] == '#') {
        k++;
        int hex = k < n && (p[k] == 'x' || p[k] == 'X');
        if (hex)
            k++;
        size_t d0 = k;
        uint32_t v = 0;
        int big = 0;
        for (; k < n; k++) {
            int d;
            if (is_digit(p[k]))
                d = p[k] - '0';
            else if (hex && lower(p[k]) >= 'a' && lower(p[k]) <= 'f')
                d = lower(p[k]) - 'a' + 10;
            else
                break;
            if (v > 0x10FFFF)
                big = 1; /* keep consuming, value is bad already */
            else
                v = v * (hex ? 16u : 10u) + (uint32_t)d;
        }
        if (k == d0) {
            ws_word(w, "&", 1);
            return j + 1;
        }
        if (k < n && p[k] == ';')
            k++;
        if (big || v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            v = 0xFFFD;
        else if (v >= 0x80 && v <= 0x9F)
            v = cp1252_c1[v - 0x80]; /* what every browser does */
        ws_cp(w, v);
        return k;
    }
    size_t s = k;
    while (k < n && k - s < 16 && (is_alpha(p[k]) || is_digit(p[k])))
        k++;
    uint32_t cp = k > s ? entity_lookup(p + s, k - s) : 0;
    if (cp && k < n && p[k] == ';') {
        ws_cp(w, cp);
        return k + 1;
    }
    /* the few legacy names browsers accept without ';' */
    if (cp && (cp == '&' || cp == '<' || cp == '>' || cp == '"' || cp == 0xA0) &&
        (k >= n || !(is_alpha(p[k]) || is_digit(p[k])))) {
        ws_cp(w, cp);
        return k;
    }
    ws_word(w, "&", 1);
    return j + 1;
}

/* find_ci - first index >= from where needle (lower case) starts, ignoring
 * ASCII case; n when absent.  Linear: needles are short and start with a
 * byte that is searched with memchr. */
static size_t find_ci(const uint8_t *p, size_t n, size_t from, const char *needle)
{
    size_t nl = strlen(needle);
    while (from < n) {
        const uint8_t *q = memchr(p + from, needle[0], n - from);
        if (!q)
            return n;
        size_t i = (size_t)(q - p);
        if (n - i >= nl) {
            size_t k = 1;
            while (k < nl && lower(p[i + k]) == needle[k])
                k++;
            if (k == nl)
                return i;
        } else {
            return n;
        }
        from = i + 1;
    }
    return n;
}

/* tag_end - index after the '>' closing a tag whose name ends at k; quoted
 * attribute values may hold '>'.  n when the tag never closes. */
static size_t tag_end(const uint8_t *p, size_t n, size_t k)
{
    while (k < n) {
        uint8_t c = p[k];
        if (c == '>')
            return k + 1;
        if (c == '=') {
            k++;
            while (k < n && is_blank(p[k]))
                k++;
            if (k < n && (p[k] == '"' || p[k] == '\'')) {
                const uint8_t *q = memchr(p + k + 1, p[k], n - k - 1);
                if (!q)
                    return n;
                k = (size_t)(q - p) + 1;
            }
            continue;
        }
        k++;
    }
    return n;
}

/* What an HTML tag does to the text around it. */
enum tag_effect {
    TAG_SPACE, /* unknown tags: a word break */
    TAG_NONE,  /* inline markup: nothing, so "<b>Im</b>portant" stays one word */
    TAG_LINE,  /* a line break */
    TAG_PARA,  /* a blank line */
    TAG_RAW,   /* script, style: their content is not text */
};

typedef struct tag_def {
    char name[12];
    uint8_t effect;
} tag_def;

static tag_def tag_defs[] = {
    {"p", TAG_PARA},       {"h1", TAG_PARA},       {"h2", TAG_PARA},
    {"h3", TAG_PARA},      {"h4", TAG_PARA},       {"h5", TAG_PARA},
    {"h6", TAG_PARA},      {"ul", TAG_PARA},       {"ol", TAG_PARA},
    {"blockquote", TAG_PARA}, {"pre", TAG_PARA},   {"table", TAG_PARA},
    {"br", TAG_LINE},      {"div", TAG_LINE},      {"tr", TAG_LINE},
    {"li", TAG_LINE},      {"dt", TAG_LINE},       {"dd", TAG_LINE},
    {"hr", TAG_LINE},      {"title", TAG_LINE},    {"section", TAG_LINE},
    {"article", TAG_LINE}, {"header", TAG_LINE},   {"footer", TAG_LINE},
    {"nav", TAG_LINE},     {"form", TAG_LINE},     {"dl", TAG_LINE},
    {"center", TAG_LINE},  {"address", TAG_LINE},  {"option", TAG_LINE},
    {"caption", TAG_LINE}, {"fieldset", TAG_LINE}, {"legend", TAG_LINE},
    {"figure", TAG_LINE},  {"figcaption", TAG_LINE}, {"main", TAG_LINE},
    {"aside", TAG_LINE},   {"tbody", TAG_LINE},    {"thead", TAG_LINE},
    {"tfoot", TAG_LINE},   {"body", TAG_LINE},     {"html", TAG_LINE},
    {"a", TAG_NONE},       {"b", TAG_NONE},        {"i", TAG_NONE},
    {"u", TAG_NONE},       {"em", TAG_NONE},       {"strong", TAG_NONE},
    {"span", TAG_NONE},    {"font", TAG_NONE},     {"small", TAG_NONE},
    {"big", TAG_NONE},     {"sub", TAG_NONE},      {"sup", TAG_NONE},
    {"s", TAG_NONE},       {"strike", TAG_NONE},   {"code", TAG_NONE},
    {"tt", TAG_NONE},      {"abbr", TAG_NONE},     {"mark", TAG_NONE},
    {"q", TAG_NONE},       {"cite", TAG_NONE},     {"del", TAG_NONE},
    {"ins", TAG_NONE},     {"label", TAG_NONE},    {"var", TAG_NONE},
    {"kbd", TAG_NONE},     {"samp", TAG_NONE},     {"bdi", TAG_NONE},
    {"bdo", TAG_NONE},     {"wbr", TAG_NONE},      {"nobr", TAG_NONE},
    {"o:p", TAG_NONE},     {"script", TAG_RAW},    {"style", TAG_RAW},
};

static int cmp_tag(const void *a, const void *b)
{
    return strcmp(((const tag_def *)a)->name, ((const tag_def *)b)->name);
}

static enum tag_effect tag_effect(const uint8_t *s, size_t n)
{
    tag_def key = {{0}, 0};
    if (n == 0 || n >= sizeof key.name)
        return TAG_SPACE;
    for (size_t i = 0; i < n; i++)
        key.name[i] = (char)lower(s[i]);
    key.name[n] = '\0';
    const tag_def *t = bsearch(&key, tag_defs, sizeof tag_defs / sizeof tag_defs[0],
                               sizeof *tag_defs, cmp_tag);
    return t ? (enum tag_effect)t->effect : TAG_SPACE;
}

/* init_tables - sort the lookup tables (once, before any extraction). */
static void init_tables(void)
{
    size_t k = 0;
    for (size_t i = 0; i < 96; i++, k++) {
        memcpy(entities[k].name, latin1_names[i], strlen(latin1_names[i]) + 1);
        entities[k].cp = 0xA0 + (uint32_t)i;
    }
    for (size_t i = 0; i < sizeof other_entities / sizeof other_entities[0]; i++, k++) {
        memcpy(entities[k].name, other_entities[i].name, strlen(other_entities[i].name) + 1);
        entities[k].cp = other_entities[i].cp;
    }
    qsort(entities, N_ENTITIES, sizeof *entities, cmp_entity);
    qsort(tag_defs, sizeof tag_defs / sizeof tag_defs[0], sizeof *tag_defs, cmp_tag);
}

/* html_tag - handle the markup at p[j] == '<'; returns the index after it. */
static size_t html_tag(wsw *w, const uint8_t *p, size_t n, size_t j)
{
    size_t k = j + 1;
    if (k < n && p[k] == '!') {
        if (n - k >= 3 && p[k + 1] == '-' && p[k + 2] == '-') {
            const uint8_t *e = memmem(p + k + 3, n - k - 3, "-->", 3);
            return e ? (size_t)(e - p) + 3 : n;
        }
        const uint8_t *e = memchr(p + k, '>', n - k);
        return e ? (size_t)(e - p) + 1 : n;
    }
    if (k < n && p[k] == '?') {
        const uint8_t *e = memchr(p + k, '>', n - k);
        return e ? (size_t)(e - p) + 1 : n;
    }
    int end = k < n && p[k] == '/';
    if (end)
        k++;
    if (k >= n || !is_alpha(p[k])) {
        ws_word(w, "<", 1);
        return j + 1;
    }
    size_t ns = k;
    while (k < n && (is_alpha(p[k]) || is_digit(p[k]) || p[k] == ':' || p[k] == '-'))
        k++;
    const uint8_t *name = p + ns;
    size_t nlen = k - ns;
    size_t after = tag_end(p, n, k);
    switch (tag_effect(name, nlen)) {
    case TAG_RAW:
        if (!end) {
            /* raw text up to the matching end tag is not text */
            const char *close = lower(name[1]) == 'c' ? "</script" : "</style";
            size_t e = find_ci(p, n, after, close);
            if (e >= n)
                return n;
            const uint8_t *gt = memchr(p + e, '>', n - e);
            return gt ? (size_t)(gt - p) + 1 : n;
        }
        w->space = 1;
        break;
    case TAG_PARA:
        ws_break(w, 2);
        break;
    case TAG_LINE:
        ws_break(w, 1);
        break;
    case TAG_NONE:
        break;
    case TAG_SPACE:
        w->space = 1;
        break;
    }
    return after;
}

/* html_to_text - reduce HTML to text: no recursion, every index checked
 * against n, linear in n. */
static void html_to_text(const uint8_t *p, size_t n, tbuf *t)
{
    wsw w = {t, 0, 0, 0};
    size_t i = 0;
    while (i < n && !t->full) {
        size_t j = i;
        while (j < n && p[j] != '<' && p[j] != '&')
            j++;
        if (j > i)
            ws_text(&w, p + i, j - i);
        if (j >= n)
            break;
        i = p[j] == '&' ? entity(&w, p, n, j) : html_tag(&w, p, n, j);
    }
}

/* What an office XML member is, for which elements hold its text. */
enum xml_kind {
    XK_ALL,   /* every text node (ODF content.xml) */
    XK_WORD,  /* DOCX: w:t, w:delText (and a:t of drawings) */
    XK_SLIDE, /* PPTX: a:t */
    XK_SST,   /* XLSX shared strings: t */
    XK_SHEET, /* XLSX worksheet: v of cells that are not shared-string indexes, inline t */
};

static const char *const xk_word[] = {"t", "delText", NULL};
static const char *const xk_t[] = {"t", NULL};
static const char *const xk_sheet[] = {"v", "t", NULL};
/* end tags that end a line / a cell, by local name */
static const char *const xml_line_end[] = {"p", "h", "row", "si", "table-row", "list-item", "tr",
                                           NULL};
static const char *const xml_cell_end[] = {"c", "tc", "table-cell", NULL};
static const char *const xml_line_empty[] = {"br", "cr", "line-break", NULL};
static const char *const xml_space_empty[] = {"tab", "s", NULL};

static int name_is(const uint8_t *s, size_t n, const char *const *set)
{
    for (; *set; set++)
        if (strlen(*set) == n && !memcmp(*set, s, n))
            return 1;
    return 0;
}

/* attr_is - the tag text p[0..n) has attribute `name` equal to `val`. */
static int attr_is(const uint8_t *p, size_t n, const char *name, const char *val)
{
    size_t nl = strlen(name), vl = strlen(val);
    size_t i = 0;
    while (i < n) {
        /* an attribute name starts after a blank */
        if (is_blank(p[i]) && i + 1 + nl < n && !memcmp(p + i + 1, name, nl)) {
            size_t k = i + 1 + nl;
            while (k < n && is_blank(p[k]))
                k++;
            if (k < n && p[k] == '=') {
                k++;
                while (k < n && is_blank(p[k]))
                    k++;
                if (k < n && (p[k] == '"' || p[k] == '\''))
                    return n - k - 1 >= vl + 1 && !memcmp(p + k + 1, val, vl) &&
                           p[k + 1 + vl] == p[k];
            }
        }
        if (p[i] == '"' || p[i] == '\'') {
            const uint8_t *q = memchr(p + i + 1, p[i], n - i - 1);
            if (!q)
                return 0;
            i = (size_t)(q - p);
        }
        i++;
    }
    return 0;
}

/* xml_to_text - text of an office XML member: tags vanish (runs of one
 * word are split across tags), paragraph/row ends become newlines, cells
 * and tabs spaces, entities and CDATA are decoded.  No recursion, linear. */
static void xml_to_text(const uint8_t *p, size_t n, enum xml_kind kind, tbuf *t)
{
    const char *const *keep = kind == XK_WORD    ? xk_word
                              : kind == XK_SLIDE || kind == XK_SST ? xk_t
                              : kind == XK_SHEET ? xk_sheet
                                                 : NULL;
    wsw w = {t, 0, 0, 0};
    size_t inside = 0; /* open elements whose text is kept */
    int cell_s = 0;    /* the current cell's value is a shared-string index */
    int vskip = 0;     /* inside such a value */
    size_t i = 0;
    while (i < n && !t->full) {
        size_t j = i;
        while (j < n && p[j] != '<' && p[j] != '&')
            j++;
        int on = (!keep || inside > 0) && !vskip;
        if (j > i && on)
            ws_text(&w, p + i, j - i);
        if (j >= n)
            break;
        if (p[j] == '&') {
            if (on) {
                i = entity(&w, p, n, j);
            } else {
                const uint8_t *sc = memchr(p + j, ';', n - j < 16 ? n - j : 16);
                i = sc ? (size_t)(sc - p) + 1 : j + 1;
            }
            continue;
        }
        size_t k = j + 1;
        if (n - k >= 8 && !memcmp(p + k, "![CDATA[", 8)) {
            const uint8_t *e = memmem(p + k + 8, n - k - 8, "]]>", 3);
            size_t end = e ? (size_t)(e - p) : n;
            if (on)
                ws_text(&w, p + k + 8, end - k - 8);
            i = e ? end + 3 : n;
            continue;
        }
        if (n - k >= 3 && !memcmp(p + k, "!--", 3)) {
            const uint8_t *e = memmem(p + k + 3, n - k - 3, "-->", 3);
            i = e ? (size_t)(e - p) + 3 : n;
            continue;
        }
        if (k < n && (p[k] == '?' || p[k] == '!')) {
            const uint8_t *e = memchr(p + k, '>', n - k);
            i = e ? (size_t)(e - p) + 1 : n;
            continue;
        }
        int end = k < n && p[k] == '/';
        if (end)
            k++;
        size_t local = k;
        while (k < n && !is_blank(p[k]) && p[k] != '/' && p[k] != '>') {
            if (p[k] == ':')
                local = k + 1;
            k++;
        }
        const uint8_t *name = p + local;
        size_t nlen = k - local;
        size_t after = tag_end(p, n, k);
        int empty = !end && after >= 2 && after <= n && p[after - 1] == '>' && p[after - 2] == '/';
        if (end) {
            if (keep && name_is(name, nlen, keep)) {
                if (vskip && nlen == 1 && name[0] == 'v')
                    vskip = 0;
                else if (inside > 0)
                    inside--;
            }
            if (name_is(name, nlen, xml_line_end))
                ws_break(&w, 1);
            else if (name_is(name, nlen, xml_cell_end))
                w.space = 1;
        } else {
            if (kind == XK_SHEET && nlen == 1 && name[0] == 'c')
                cell_s = attr_is(p + k, after - k, "t", "s");
            if (keep && !empty && name_is(name, nlen, keep)) {
                if (kind == XK_SHEET && cell_s && nlen == 1 && name[0] == 'v')
                    vskip = 1;
                else
                    inside++;
            }
            if (name_is(name, nlen, xml_line_empty) || (empty && name_is(name, nlen, xml_line_end)))
                ws_break(&w, 1);
            else if (name_is(name, nlen, xml_space_empty))
                w.space = 1;
        }
        i = after;
    }
}

/* ---- charsets ------------------------------------------------------------ */

static void sb_cp1252(sbuf *out, const uint8_t *p, size_t n)
{
    sb_reset(out);
    sb_grow(out, n + n / 2);
    for (size_t i = 0; i < n; i++) {
        uint8_t u[4];
        uint32_t cp = p[i] >= 0x80 && p[i] <= 0x9F ? cp1252_c1[p[i] - 0x80] : p[i];
        if (cp < 0x80) {
            sb_grow(out, 1);
            out->p[out->len++] = (char)cp;
        } else {
            sb_add(out, u, utf8_put(cp, u));
        }
    }
    sb_grow(out, 0);
    out->p[out->len] = '\0';
    sb_mark(out);
}

static int cs_is(const char *cs, const char *const *names)
{
    for (; *names; names++)
        if (!g_ascii_strcasecmp(cs, *names))
            return 1;
    return 0;
}

/* to_utf8 - p[0..n) in UTF-8: as it is when it claims UTF-8 or ASCII (or
 * nothing) and is well-formed, through our own table for Latin-1 and
 * Windows-1252, through iconv for the rest.  Bytes iconv rejects become
 * U+FFFD; a charset nobody knows is read as Windows-1252 unless the bytes
 * are UTF-8.  Output is bounded by max_part_input. */
static void to_utf8(xc *c, const char *charset, const uint8_t *p, size_t n, const uint8_t **up,
                    size_t *un)
{
    static const char *const utf8[] = {"utf-8", "utf8", NULL};
    static const char *const ascii[] = {"us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", NULL};
    static const char *const latin1[] = {"iso-8859-1", "iso8859-1", "latin1",  "l1",
                                         "windows-1252", "cp1252", "x-cp1252", "iso_8859-1",
                                         "iso-ir-100", "cp819", NULL};
    *up = p;
    *un = n;
    const char *cs = charset;
    while (cs && is_blank((uint8_t)*cs))
        cs++;
    if (!cs || !*cs || cs_is(cs, utf8) || cs_is(cs, ascii)) {
        if (cs && cs_is(cs, utf8))
            return; /* claimed UTF-8: bad bytes become U+FFFD later */
        if (utf8_valid(p, n))
            return;
        sb_cp1252(&c->conv, p, n);
        goto done;
    }
    if (cs_is(cs, latin1)) {
        sb_cp1252(&c->conv, p, n);
        goto done;
    }
    const char *name = g_mime_charset_iconv_name(cs);
    /* asked first so that the converter stays loaded (lib/charset.h) */
    iconv_t cd = mv_iconv_usable(g_mime_charset_iconv_name("UTF-8"), name ? name : cs)
                     ? g_mime_iconv_open("UTF-8", name ? name : cs)
                     : (iconv_t)-1;
    if (cd == (iconv_t)-1) {
        if (utf8_valid(p, n))
            return;
        sb_cp1252(&c->conv, p, n);
        goto done;
    }
    sbuf *o = &c->conv;
    sb_reset(o);
    sb_grow(o, n + n / 2 + 16);
    char *in = (char *)(uintptr_t)p;
    size_t inleft = n;
    int flushing = 0; /* input consumed: one more call ends a shift state */
    for (;;) {
        if (o->len > c->lim.max_part_input) {
            c->x->flags |= MV_XF_TRUNCATED;
            break;
        }
        if (o->cap - o->len < 32)
            sb_grow(o, o->cap);
        char *out = o->p + o->len;
        size_t outleft = o->cap - o->len - 1, before = outleft;
        size_t r = inleft ? iconv(cd, &in, &inleft, &out, &outleft)
                          : iconv(cd, NULL, NULL, &out, &outleft);
        int e = errno;
        o->len += before - outleft;
        sb_mark(o);
        if (r != (size_t)-1) {
            if (inleft == 0 && flushing)
                break;
            if (inleft == 0)
                flushing = 1;
            continue;
        }
        if (e == E2BIG) {
            sb_grow(o, o->cap);
            continue;
        }
        if (flushing)
            break;
        sb_add(o, REPLACEMENT, 3);
        if (e == EILSEQ && inleft > 0) {
            in++;
            inleft--;
            continue;
        }
        break; /* EINVAL: cut inside a character at the end */
    }
    g_mime_iconv_close(cd);
    o->p[o->len] = '\0';
done:
    *up = (const uint8_t *)c->conv.p;
    *un = c->conv.len;
}

/* ---- reading parts ------------------------------------------------------- */

/* mem_view - the bytes behind a GMime memory (sub)stream, borrowed: the
 * parser keeps leaf content as substreams of our copy of the message, so
 * content that needs no decoding is read in place. */
static int mem_view(GMimeStream *s, const uint8_t **p, size_t *n)
{
    if (!GMIME_IS_STREAM_MEM(s))
        return 0;
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
    if (!ba)
        return 0;
    gint64 start = s->bound_start, end = s->bound_end == -1 ? (gint64)ba->len : s->bound_end;
    if (start < 0 || end < start || end > (gint64)ba->len)
        return 0;
    *p = ba->data ? ba->data + start : (const uint8_t *)"";
    *n = (size_t)(end - start);
    return 1;
}

/* read_stream - the general path: decode through a GMime filter, reading at
 * most max bytes. */
static void read_stream(xc *c, GMimeStream *src, GMimeContentEncoding enc, sbuf *out)
{
    GMimeStream *rd = src, *fs = NULL;
    if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
        enc == GMIME_CONTENT_ENCODING_UUENCODE) {
        fs = g_mime_stream_filter_new(src);
        GMimeFilter *f = g_mime_filter_basic_new(enc, FALSE);
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(fs), f);
        g_object_unref(f);
        rd = fs;
    }
    g_mime_stream_reset(src);
    size_t max = c->lim.max_part_input;
    for (;;) {
        char probe;
        if (out->len >= max) {
            if (g_mime_stream_read(rd, &probe, 1) > 0)
                c->x->flags |= MV_XF_TRUNCATED;
            break;
        }
        size_t want = max - out->len < READ_CHUNK ? max - out->len : READ_CHUNK;
        sb_grow(out, want);
        ssize_t r = g_mime_stream_read(rd, out->p + out->len, want);
        if (r <= 0)
            break;
        out->len += (size_t)r;
        out->p[out->len] = '\0';
        sb_mark(out);
    }
    if (fs)
        g_object_unref(fs);
    g_mime_stream_reset(src);
}

/* part_view - a leaf's content with its transfer encoding undone, at most
 * max_part_input bytes (MV_XF_TRUNCATED when there was more): borrowed from
 * the parsed copy when it needs no decoding, else decoded into c->raw.
 * Valid until the next call or until the message is released. */
static void part_view(xc *c, GMimePart *part, const uint8_t **vp, size_t *vn)
{
    *vp = (const uint8_t *)"";
    *vn = 0;
    sb_reset(&c->raw);
    GMimeDataWrapper *dw = g_mime_part_get_content(part);
    GMimeStream *src = dw ? g_mime_data_wrapper_get_stream(dw) : NULL;
    if (!src)
        return;
    GMimeContentEncoding enc = g_mime_data_wrapper_get_encoding(dw);
    size_t max = c->lim.max_part_input;
    const uint8_t *rp;
    size_t rn;
    if (enc == GMIME_CONTENT_ENCODING_UUENCODE || !mem_view(src, &rp, &rn)) {
        read_stream(c, src, enc, &c->raw);
    } else if (enc != GMIME_CONTENT_ENCODING_BASE64 &&
               enc != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
        if (rn > max) {
            rn = max;
            c->x->flags |= MV_XF_TRUNCATED;
        }
        *vp = rp;
        *vn = rn;
        return;
    } else {
        /* decode in steps so a huge part stops at the limit */
        GMimeEncoding st;
        g_mime_encoding_init_decode(&st, enc);
        sbuf *o = &c->raw;
        for (size_t i = 0; i < rn && o->len <= max;) {
            size_t chunk = rn - i < READ_CHUNK ? rn - i : READ_CHUNK;
            sb_grow(o, g_mime_encoding_outlen(&st, chunk) + 4);
            o->len += g_mime_encoding_step(&st, (const char *)rp + i, chunk, o->p + o->len);
            sb_mark(o);
            i += chunk;
        }
        if (o->len > max) {
            o->len = max;
            c->x->flags |= MV_XF_TRUNCATED;
        }
        if (o->p)
            o->p[o->len] = '\0';
    }
    if (c->raw.p) {
        *vp = (const uint8_t *)c->raw.p;
        *vn = c->raw.len;
    }
}

/* ---- PDF ----------------------------------------------------------------- */

/* poppler-glib is loaded when the first PDF is met, not linked: with its
 * dependencies (cairo, NSS, X11 ...) it doubled the libraries every
 * command loads at start, which most commands never use. */
#define POPPLER_SONAME "libpoppler-glib.so.8"

static struct {
    PopplerDocument *(*doc_new)(GBytes *, const char *, GError **);
    int (*n_pages)(PopplerDocument *);
    PopplerPage *(*get_page)(PopplerDocument *, int);
    char *(*page_text)(PopplerPage *);
} pop;
static int pop_ok;
static pthread_once_t pop_once = PTHREAD_ONCE_INIT;

static void pop_load(void)
{
    void *h = dlopen(POPPLER_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        h = dlopen("libpoppler-glib.so", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    *(void **)&pop.doc_new = dlsym(h, "poppler_document_new_from_bytes");
    *(void **)&pop.n_pages = dlsym(h, "poppler_document_get_n_pages");
    *(void **)&pop.get_page = dlsym(h, "poppler_document_get_page");
    *(void **)&pop.page_text = dlsym(h, "poppler_page_get_text");
    pop_ok = pop.doc_new && pop.n_pages && pop.get_page && pop.page_text;
}

/* pdf_text - text of the PDF p[0..n), up to max_pdf_pages pages.  The bytes
 * are lent to poppler, which does not outlive this call.  Without
 * poppler-glib on the machine the PDF counts as unreadable. */
static void pdf_text(xc *c, const uint8_t *p, size_t n, tbuf *t)
{
    pthread_once(&pop_once, pop_load);
    if (!pop_ok) {
        c->x->flags |= MV_XF_PDF_FAILED;
        return;
    }
    GBytes *bytes = g_bytes_new_static(p, n);
    GError *gerr = NULL;
    PopplerDocument *doc = pop.doc_new(bytes, NULL, &gerr);
    if (!doc) {
        /* encrypted, damaged, or not a PDF */
        c->x->flags |= MV_XF_PDF_FAILED;
        g_clear_error(&gerr);
        g_bytes_unref(bytes);
        return;
    }
    int pages = pop.n_pages(doc);
    if (pages > 0 && (unsigned)pages > c->lim.max_pdf_pages) {
        c->x->flags |= MV_XF_TRUNCATED;
        pages = (int)c->lim.max_pdf_pages;
    }
    size_t start = t->b.len;
    for (int i = 0; i < pages && !t->full; i++) {
        PopplerPage *pg = pop.get_page(doc, i);
        if (!pg)
            continue;
        char *s = pop.page_text(pg);
        if (s && *s) {
            size_t len = strlen(s);
            if (t->b.len > start)
                tb_raw(t, "\n\n", 2);
            tb_put(t, s, len);
            explicit_bzero(s, len);
        }
        g_free(s);
        g_object_unref(pg);
    }
    g_object_unref(doc);
    g_bytes_unref(bytes);
}

/* ---- office documents ---------------------------------------------------- */

/* member_kind - which members of an OOXML or ODF package hold text, and in
 * what order they are joined (rank, then the number in the name). */
static int member_kind(const char *name, int *rank, uint32_t *num, enum xml_kind *kind)
{
    static const struct {
        const char *prefix; /* "" numbered: prefix N ".xml" */
        int numbered, rank;
        enum xml_kind kind;
    } m[] = {
        {"word/document.xml", 0, 0, XK_WORD},
        {"word/header", 1, 1, XK_WORD},
        {"word/footer", 1, 2, XK_WORD},
        {"word/footnotes.xml", 0, 3, XK_WORD},
        {"word/endnotes.xml", 0, 4, XK_WORD},
        {"word/comments.xml", 0, 5, XK_WORD},
        {"xl/sharedStrings.xml", 0, 10, XK_SST},
        {"xl/worksheets/sheet", 1, 11, XK_SHEET},
        {"ppt/slides/slide", 1, 20, XK_SLIDE},
        {"ppt/notesSlides/notesSlide", 1, 21, XK_SLIDE},
        {"content.xml", 0, 30, XK_ALL},
    };
    if (!name)
        return 0;
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        size_t pl = strlen(m[i].prefix);
        if (g_ascii_strncasecmp(name, m[i].prefix, pl))
            continue;
        const char *q = name + pl;
        uint32_t v = 0;
        if (m[i].numbered) {
            size_t d = 0;
            while (d < 9 && is_digit((uint8_t)q[d])) {
                v = v * 10 + (uint32_t)(q[d] - '0');
                d++;
            }
            if (d == 0 || g_ascii_strcasecmp(q + d, ".xml"))
                continue;
        } else if (*q) {
            continue;
        }
        *rank = m[i].rank;
        *num = v;
        *kind = m[i].kind;
        return 1;
    }
    return 0;
}

typedef struct omember {
    int rank;
    uint32_t num;
    uint32_t seq; /* archive order, for a stable sort */
    tbuf text;
} omember;

static int cmp_member(const void *a, const void *b)
{
    const omember *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    if (x->num != y->num)
        return x->num < y->num ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* office_text - text of an OOXML (docx, xlsx, pptx) or ODF (odt, ods, odp)
 * package p[0..n).  Each member is decompressed to at most max_part_input
 * bytes, and all of them together too (a zip bomb costs that much and no
 * more); at most max_members entries are looked at. */
static void office_text(xc *c, const uint8_t *p, size_t n, tbuf *t)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_zip(a);
    omember *mem = NULL;
    size_t nmem = 0, capm = 0, kept = 0;
    size_t room = t->full ? 0 : t->max - t->b.len; /* text this package may add */
    size_t budget = c->lim.max_part_input; /* decompressed bytes, all members */
    unsigned seen = 0;
    int failed = 0, full = 0;
    sbuf data = {0};
    if (archive_read_open_memory(a, p, n) != ARCHIVE_OK) {
        failed = 1;
        goto out;
    }
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            failed = 1;
            break;
        }
        if (++seen > c->lim.max_members) {
            c->x->flags |= MV_XF_TRUNCATED;
            break;
        }
        int rank;
        uint32_t num;
        enum xml_kind kind;
        if (!member_kind(archive_entry_pathname(e), &rank, &num, &kind))
            continue;
        if (kept >= room || budget == 0) {
            c->x->flags |= MV_XF_TRUNCATED;
            full = 1;
            break;
        }
        sb_reset(&data);
        size_t cap = budget < c->lim.max_part_input ? budget : c->lim.max_part_input;
        for (;;) {
            if (data.len >= cap) {
                char probe;
                if (archive_read_data(a, &probe, 1) > 0)
                    c->x->flags |= MV_XF_TRUNCATED;
                break;
            }
            size_t want = cap - data.len < READ_CHUNK ? cap - data.len : READ_CHUNK;
            sb_grow(&data, want);
            la_ssize_t got = archive_read_data(a, data.p + data.len, want);
            if (got < 0) {
                failed = 1; /* encrypted member, bad CRC, damaged stream */
                break;
            }
            if (got == 0)
                break;
            data.len += (size_t)got;
            sb_mark(&data);
        }
        budget -= data.len;
        if (nmem == capm) {
            capm = capm ? capm * 2 : 8;
            mem = mv_xrealloc(mem, capm * sizeof *mem);
        }
        omember *m = &mem[nmem++];
        m->rank = rank;
        m->num = num;
        m->seq = (uint32_t)nmem;
        tb_init(&m->text, room - kept, &c->x->flags);
        xml_to_text(data.p ? (const uint8_t *)data.p : (const uint8_t *)"", data.len, kind,
                    &m->text);
        kept += m->text.b.len;
    }
    if (nmem == 0 && !full)
        failed = 1; /* not a document we know, or nothing readable in it */
    if (nmem > 1)
        qsort(mem, nmem, sizeof *mem, cmp_member);
    size_t start = t->b.len;
    for (size_t i = 0; i < nmem; i++) {
        if (mem[i].text.b.len) {
            if (t->b.len > start)
                tb_raw(t, "\n", 1);
            tb_raw(t, mem[i].text.b.p, mem[i].text.b.len);
        }
        tb_free(&mem[i].text);
    }
out:
    if (failed)
        c->x->flags |= MV_XF_OFFICE_FAILED;
    free(mem);
    sb_free(&data);
    archive_read_free(a);
}

/* ---- the MIME walk ------------------------------------------------------- */

enum akind { AK_NONE, AK_TEXT, AK_HTML, AK_PDF, AK_OFFICE, AK_EML };

static int has_ext(const char *fname, const char *ext)
{
    if (!fname)
        return 0;
    size_t n = strlen(fname), e = strlen(ext);
    return n > e && !g_ascii_strcasecmp(fname + n - e, ext);
}

static int is_any(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (!g_ascii_strcasecmp(s, *set))
            return 1;
    return 0;
}

/* attach_kind - how an attachment's text is read: by media type, and for
 * generic application types by the file name's extension. */
static enum akind attach_kind(const char *type, const char *sub, const char *fname)
{
    static const char *const office_ext[] = {".docx", ".docm", ".dotx", ".dotm", ".xlsx",
                                             ".xlsm", ".xltx", ".xltm", ".pptx", ".pptm",
                                             ".potx", ".ppsx", ".ppsm", ".odt",  ".ods",
                                             ".odp",  ".ott",  ".ots",  ".otp",  NULL};
    if (!g_ascii_strcasecmp(type, "text"))
        return !g_ascii_strcasecmp(sub, "html") ? AK_HTML : AK_TEXT;
    if (!g_ascii_strcasecmp(type, "message")) {
        if (is_any(sub, (const char *const[]){"rfc822", "global", NULL}))
            return AK_EML;
        if (is_any(sub, (const char *const[]){"delivery-status", "disposition-notification",
                                              "global-delivery-status",
                                              "global-disposition-notification", NULL}))
            return AK_TEXT;
        return AK_NONE;
    }
    if (g_ascii_strcasecmp(type, "application"))
        return AK_NONE;
    if (is_any(sub, (const char *const[]){"pdf", "x-pdf", "acrobat", NULL}))
        return AK_PDF;
    if (!g_ascii_strcasecmp(sub, "xhtml+xml"))
        return AK_HTML;
    if (is_any(sub, (const char *const[]){"json", "xml", "csv", "x-csv", NULL}))
        return AK_TEXT;
    if (!g_ascii_strncasecmp(sub, "vnd.openxmlformats-officedocument.", 34) ||
        !g_ascii_strncasecmp(sub, "vnd.oasis.opendocument.", 23) ||
        (!g_ascii_strncasecmp(sub, "vnd.ms-", 7) && has_ext(sub, ".macroenabled.12")))
        return AK_OFFICE;
    if (has_ext(fname, ".pdf"))
        return AK_PDF;
    for (size_t i = 0; office_ext[i]; i++)
        if (has_ext(fname, office_ext[i]))
            return AK_OFFICE;
    if (has_ext(fname, ".eml"))
        return AK_EML;
    if (has_ext(fname, ".htm") || has_ext(fname, ".html"))
        return AK_HTML;
    if (has_ext(fname, ".txt") || has_ext(fname, ".csv"))
        return AK_TEXT;
    return AK_NONE;
}

static void lower_ascii(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s[i] = (char)lower((uint8_t)s[i]);
}

/* trimmed - s without leading and trailing blanks. */
static const char *trimmed(const char *s, size_t *n)
{
    size_t len = s ? strlen(s) : 0;
    while (len && is_blank((uint8_t)*s))
        s++, len--;
    while (len && is_blank((uint8_t)s[len - 1]))
        len--;
    *n = len;
    return s;
}

static const char *section_str(xc *c, mv_xs_kind kind, mv_xs_role role, uint32_t part,
                               const char *s)
{
    size_t n;
    s = trimmed(s, &n);
    return n ? section_text(c, kind, role, part, s, n) : NULL;
}

/* add_addr - an addr-spec, lower-cased (Unicode-aware when not ASCII). */
static void add_addr(xc *c, mv_xs_role role, const char *addr)
{
    size_t n;
    addr = trimmed(addr, &n);
    if (!n)
        return;
    tbuf t;
    tb_init(&t, part_budget(c), &c->x->flags);
    tb_put(&t, addr, n);
    int ascii = 1;
    for (size_t i = 0; i < t.b.len; i++)
        ascii &= (uint8_t)t.b.p[i] < 0x80;
    if (ascii) {
        lower_ascii(t.b.p, t.b.len);
    } else if (t.b.len) {
        gchar *d = g_utf8_strdown(t.b.p, (gssize)t.b.len);
        size_t dl = strlen(d);
        sb_reset(&t.b);
        t.full = 0;
        tb_raw(&t, d, dl);
        explicit_bzero(d, dl);
        g_free(d);
    }
    section_take(c, MV_XS_ADDR, role, 0, &t);
}

static void add_addrs(xc *c, InternetAddressList *l, mv_xs_role role, unsigned gdepth)
{
    int n = l ? internet_address_list_length(l) : 0;
    for (int i = 0; i < n; i++) {
        InternetAddress *ia = internet_address_list_get_address(l, i);
        if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            /* a group's members are the recipients; its name is a label */
            if (gdepth < MAX_GROUP_NESTING)
                add_addrs(c, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
                          role, gdepth + 1);
            else
                c->x->flags |= MV_XF_TOO_DEEP;
            continue;
        }
        if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
            continue;
        section_str(c, MV_XS_NAME, role, 0, internet_address_get_name(ia));
        add_addr(c, role, internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
    }
}

/* ref_seen - whether id is already a REF section: a scan over the first
 * REF_SCAN of them, a hash table once there are more (hostile References
 * headers may hold thousands). */
#define REF_SCAN 16u

static int ref_seen(xc *c, const char *id)
{
    if (c->refs)
        return g_hash_table_contains(c->refs, id);
    for (size_t i = c->first_ref; i < c->x->n; i++)
        if (c->x->s[i].kind == MV_XS_REF && !strcmp(c->x->s[i].text, id))
            return 1;
    return 0;
}

static void ref_add(xc *c, const char *text)
{
    if (!c->refs && ++c->n_refs > REF_SCAN) {
        c->refs = g_hash_table_new(g_str_hash, g_str_equal);
        for (size_t i = c->first_ref; i < c->x->n; i++)
            if (c->x->s[i].kind == MV_XS_REF)
                g_hash_table_add(c->refs, c->x->s[i].text);
    }
    if (c->refs)
        g_hash_table_add(c->refs, (gpointer)(uintptr_t)text);
}

static void add_refs(xc *c, const char *raw)
{
    if (!raw)
        return;
    GMimeReferences *r = g_mime_references_parse(c->opts, raw);
    if (!r)
        return;
    int n = g_mime_references_length(r);
    for (int i = 0; i < n; i++) {
        const char *id = g_mime_references_get_message_id(r, i);
        /* In-Reply-To is normally repeated in References */
        if (!id || !*id || ref_seen(c, id))
            continue;
        const char *s = section_str(c, MV_XS_REF, MV_XR_NONE, 0, id);
        if (s)
            ref_add(c, s);
    }
    g_mime_references_free(r);
}

static void top_headers(xc *c, GMimeMessage *m)
{
    static const struct {
        GMimeAddressType type;
        mv_xs_role role;
    } fields[] = {
        {GMIME_ADDRESS_TYPE_FROM, MV_XR_FROM},
        {GMIME_ADDRESS_TYPE_TO, MV_XR_TO},
        {GMIME_ADDRESS_TYPE_CC, MV_XR_CC},
        {GMIME_ADDRESS_TYPE_BCC, MV_XR_BCC},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        add_addrs(c, g_mime_message_get_addresses(m, fields[i].type), fields[i].role, 0);
    section_str(c, MV_XS_SUBJECT, MV_XR_NONE, 0, g_mime_message_get_subject(m));
    GMimeObject *obj = GMIME_OBJECT(m);
    const char *id = g_mime_message_get_message_id(m);
    if (id && *id) {
        section_str(c, MV_XS_MSGID, MV_XR_NONE, 0, id);
    } else if ((id = g_mime_object_get_header(obj, "Message-ID")) != NULL) {
        /* GMime found no msg-id in it: keep what is written, minus <> */
        size_t n;
        const char *s = trimmed(id, &n);
        if (n && s[0] == '<')
            s++, n--;
        if (n && s[n - 1] == '>')
            n--;
        if (n)
            section_text(c, MV_XS_MSGID, MV_XR_NONE, 0, s, n);
    }
    c->first_ref = c->x->n;
    add_refs(c, g_mime_object_get_header(obj, "In-Reply-To"));
    add_refs(c, g_mime_object_get_header(obj, "References"));
    GDateTime *d = g_mime_message_get_date(m);
    c->x->date = d ? g_date_time_to_unix(d) : INT64_MIN;
}

static const char *obj_filename(GMimeObject *obj)
{
    if (GMIME_IS_PART(obj))
        return g_mime_part_get_filename(GMIME_PART(obj));
    const char *f = g_mime_object_get_content_disposition_parameter(obj, "filename");
    return f ? f : g_mime_object_get_content_type_parameter(obj, "name");
}

static void obj_type(GMimeObject *obj, const char **type, const char **sub)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    *type = ct ? g_mime_content_type_get_media_type(ct) : NULL;
    *sub = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
    if (!*type || !**type)
        *type = "application";
    if (!*sub || !**sub)
        *sub = "octet-stream";
}

/* new_attachment - number the next attachment part and add its name and
 * media type. */
static uint32_t new_attachment(xc *c, GMimeObject *obj)
{
    const char *type, *sub;
    obj_type(obj, &type, &sub);
    if (c->x->n_attachments == UINT32_MAX)
        mv_assert_fail("attachment count overflow", __FILE__, __LINE__);
    uint32_t k = ++c->x->n_attachments;
    section_str(c, MV_XS_FILENAME, MV_XR_NONE, k, obj_filename(obj));
    tbuf t;
    tb_init(&t, part_budget(c), &c->x->flags);
    tb_put(&t, type, strlen(type));
    tb_raw(&t, "/", 1);
    tb_put(&t, sub, strlen(sub));
    if (t.b.p)
        lower_ascii(t.b.p, t.b.len);
    section_take(c, MV_XS_MIMETYPE, MV_XR_NONE, k, &t);
    return k;
}

/* leaf_is_attachment - a file name, Content-Disposition: attachment, or
 * content that is not text. */
static int leaf_is_attachment(GMimePart *part)
{
    const char *type, *sub;
    obj_type(GMIME_OBJECT(part), &type, &sub);
    const char *f = g_mime_part_get_filename(part);
    const char *disp = g_mime_object_get_disposition(GMIME_OBJECT(part));
    return (f && *f) || (disp && !g_ascii_strcasecmp(disp, "attachment")) ||
           g_ascii_strcasecmp(type, "text");
}

static int is_inline_text(GMimeObject *o, const char *sub)
{
    if (!GMIME_IS_PART(o) || leaf_is_attachment(GMIME_PART(o)))
        return 0;
    const char *t, *s;
    obj_type(o, &t, &s);
    return !g_ascii_strcasecmp(s, sub);
}

/* pick_alternative - the one alternative whose text is the body: plain
 * text first (directly, or first in a multipart), then HTML, then the first
 * multipart; -1 (all) when none of these is there. */
static int pick_alternative(GMimeMultipart *mp)
{
    int n = g_mime_multipart_get_count(mp), html = -1, multi = -1;
    for (int i = 0; i < n; i++) {
        GMimeObject *o = g_mime_multipart_get_part(mp, i);
        if (!o)
            continue;
        if (GMIME_IS_MULTIPART(o)) {
            GMimeObject *f = o;
            for (unsigned d = 0; d < 16 && f && GMIME_IS_MULTIPART(f); d++)
                f = g_mime_multipart_get_count(GMIME_MULTIPART(f)) > 0
                        ? g_mime_multipart_get_part(GMIME_MULTIPART(f), 0)
                        : NULL;
            if (f && is_inline_text(f, "plain"))
                return i;
            if (multi < 0)
                multi = i;
        } else if (is_inline_text(o, "plain")) {
            return i;
        } else if (html < 0 && is_inline_text(o, "html")) {
            html = i;
        }
    }
    return html >= 0 ? html : multi;
}

/* text_into - a text part's content, in UTF-8, HTML reduced, into t. */
static void text_into(xc *c, GMimePart *part, int html, tbuf *t)
{
    if (t->full || t->b.len >= t->max) {
        c->x->flags |= MV_XF_TRUNCATED;
        return;
    }
    const uint8_t *v, *u;
    size_t vn, un;
    part_view(c, part, &v, &vn);
    to_utf8(c, g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset"), v, vn,
            &u, &un);
    /* one allocation for the usual case, text about as long as its input */
    size_t room = t->max - t->b.len;
    sb_grow(&t->b, un < room ? un : room);
    if (html)
        html_to_text(u, un, t);
    else
        tb_put(t, u, un);
}

/* acc_open / acc_close - a blank line between pieces of one part's text,
 * taken back when the piece added nothing. */
static size_t acc_open(tbuf *t)
{
    size_t mark = t->b.len;
    if (mark)
        tb_raw(t, "\n\n", t->b.p[mark - 1] == '\n' ? 1 : 2);
    return mark;
}

static void acc_close(tbuf *t, size_t mark, size_t before)
{
    if (t->b.len == before && t->b.p) {
        t->b.len = mark;
        t->b.p[mark] = '\0';
    }
}

static void walk(xc *c, GMimeObject *obj, unsigned depth, unsigned nest, tbuf *acc, int text_ok);

static GMimeMessage *parse_bytes(xc *c, const void *p, size_t n, GByteArray **keep);
static void release_bytes(GByteArray *ba);

static void header_line(tbuf *t, const char *label, const char *v)
{
    size_t n;
    v = trimmed(v, &n);
    if (!n)
        return;
    tb_raw(t, label, strlen(label));
    tb_put(t, v, n);
    tb_raw(t, "\n", 1);
}

static void addr_line(tbuf *t, const char *label, InternetAddressList *l)
{
    if (!l || internet_address_list_length(l) == 0)
        return;
    char *s = internet_address_list_to_string(l, NULL, FALSE);
    if (!s)
        return;
    header_line(t, label, s);
    explicit_bzero(s, strlen(s));
    g_free(s);
}

/* nested - an attached message, part k: its headers as lines, then its
 * body and its attachments' text, all in the ATTACH_TEXT of k. */
static void nested(xc *c, GMimeMessage *m, uint32_t k, unsigned depth, unsigned nest)
{
    if (depth > c->lim.max_depth) {
        c->x->flags |= MV_XF_TOO_DEEP;
        return;
    }
    tbuf t;
    tb_init(&t, part_budget(c), &c->x->flags);
    addr_line(&t, "From: ", g_mime_message_get_addresses(m, GMIME_ADDRESS_TYPE_FROM));
    addr_line(&t, "To: ", g_mime_message_get_addresses(m, GMIME_ADDRESS_TYPE_TO));
    addr_line(&t, "Cc: ", g_mime_message_get_addresses(m, GMIME_ADDRESS_TYPE_CC));
    header_line(&t, "Subject: ", g_mime_message_get_subject(m));
    header_line(&t, "Date: ", g_mime_object_get_header(GMIME_OBJECT(m), "Date"));
    GMimeObject *body = g_mime_message_get_mime_part(m);
    uint32_t container = c->it_container;
    c->it_container = k;
    if (body)
        walk(c, body, depth, nest + 1, &t, 1);
    c->it_container = container;
    section_take(c, MV_XS_ATTACH_TEXT, MV_XR_NONE, k, &t);
}

/* eml - an attached message GMime left as a leaf (a .eml file, or an
 * encoded message/rfc822): parse its decoded bytes; if that finds no
 * message, its bytes are read as text. */
static void eml(xc *c, GMimePart *part, uint32_t k, unsigned depth, tbuf *acc)
{
    if (depth + 1 > c->lim.max_depth) {
        c->x->flags |= MV_XF_TOO_DEEP;
        return;
    }
    const uint8_t *v;
    size_t vn;
    part_view(c, part, &v, &vn);
    /* the inner message is parsed in place: when its bytes are our decoded
     * copy, they leave the scratch buffer that reading its parts reuses */
    sbuf held = {0};
    if (c->raw.p && v == (const uint8_t *)c->raw.p) {
        held = c->raw;
        memset(&c->raw, 0, sizeof c->raw);
    }
    GByteArray *ba = NULL;
    GMimeMessage *m = parse_bytes(c, v, vn, &ba);
    if (m && g_mime_header_list_get_count(g_mime_object_get_header_list(GMIME_OBJECT(m))) > 0) {
        /* a parse of its own: header offsets count from v, and the
         * multiparts around the attachment are not open in it */
        const uint8_t *buf = c->it_buf;
        size_t len = c->it_len, base = c->it_base;
        c->it_buf = v;
        c->it_len = vn;
        c->it_base = c->it_nb;
        nested(c, m, k, depth + 1, 0);
        c->it_buf = buf;
        c->it_len = len;
        c->it_base = base;
    } else if (!c->it_fn) {
        tbuf own, *t = acc;
        if (!acc) {
            tb_init(&own, part_budget(c), &c->x->flags);
            t = &own;
        }
        size_t mark = acc_open(t), before = t->b.len;
        const uint8_t *u;
        size_t un;
        to_utf8(c, NULL, v, vn, &u, &un);
        tb_put(t, u, un);
        acc_close(t, mark, before);
        if (!acc)
            section_take(c, MV_XS_ATTACH_TEXT, MV_XR_NONE, k, &own);
    }
    if (m)
        g_object_unref(m);
    release_bytes(ba);
    sb_free(&held);
}

/* crypto_control - a signature, the version part of PGP/MIME, or an S/MIME
 * container that stayed encrypted: the message's protection, not an
 * attachment anyone sent (S/MIME parts even carry file names, smime.p7s
 * and smime.p7m); is:signed and is:encrypted say what they are. */
static int crypto_control(const char *type, const char *sub)
{
    static const char *const subs[] = {"pgp-signature",   "pkcs7-signature", "x-pkcs7-signature",
                                       "pgp-encrypted",   "pkcs7-mime",      "x-pkcs7-mime"};
    if (g_ascii_strcasecmp(type, "application") != 0)
        return 0;
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++)
        if (!g_ascii_strcasecmp(sub, subs[i]))
            return 1;
    return 0;
}

/* ---- handing attachments over (mv_extract_attachments) ------------------- */

static size_t header_block(const uint8_t *p, size_t n);

/* it_push - the boundary of a multipart entered (walk drops it again when
 * it leaves): an attached message's bytes, and a leaf's, end at the first
 * delimiter line of any multipart open around them. */
static void it_push(xc *c, const char *boundary)
{
    if (c->it_nb == c->it_cap) {
        c->it_cap = c->it_cap ? c->it_cap * 2 : 16;
        c->it_bounds = mv_xrealloc(c->it_bounds, c->it_cap * sizeof *c->it_bounds);
    }
    c->it_bounds[c->it_nb++] = boundary;
}

/* is_boundary - the line at p[0..n) is a delimiter of an open multipart,
 * as GMime tells them: "--", the boundary, maybe "--", then only blanks. */
static int is_boundary(const xc *c, const uint8_t *p, size_t n)
{
    if (n < 2 || p[0] != '-' || p[1] != '-')
        return 0;
    for (size_t i = c->it_nb; i-- > c->it_base;) {
        const char *b = c->it_bounds[i];
        size_t bl = b ? strlen(b) : 0;
        if (!bl || n - 2 < bl || memcmp(p + 2, b, bl))
            continue;
        size_t k = 2 + bl;
        if (n - k >= 2 && p[k] == '-' && p[k + 1] == '-')
            k += 2;
        while (k < n && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r'))
            k++;
        if (k == n)
            return 1;
    }
    return 0;
}

/* body_end - where the content that starts at start ends: before the line
 * break in front of the first delimiter of an open multipart, or at the
 * end of the bytes. */
static size_t body_end(const xc *c, size_t start)
{
    const uint8_t *p = c->it_buf;
    size_t n = c->it_len, line = start;
    while (line < n) {
        const uint8_t *nl = memchr(p + line, '\n', n - line);
        size_t next = nl ? (size_t)(nl - p) + 1 : n;
        if (is_boundary(c, p + line, (nl ? (size_t)(nl - p) : n) - line)) {
            size_t end = line;
            if (end > start && p[end - 1] == '\n') {
                end--;
                if (end > start && p[end - 1] == '\r')
                    end--;
            }
            return end;
        }
        line = next;
    }
    return n;
}

/* clean_text - s (GMime's decoded header text) as clean UTF-8, trimmed and
 * bounded, into out; returns out or NULL when nothing is left. */
static const char *clean_text(xc *c, const char *s, sbuf *out)
{
    size_t n;
    s = trimmed(s, &n);
    tbuf t;
    tb_init(&t, MV_ATTACH_NAME_MAX, &c->x->flags);
    tb_put(&t, s, n);
    sb_reset(out);
    if (t.b.len)
        sb_add(out, t.b.p, t.b.len);
    tb_free(&t);
    return out->len ? out->p : NULL;
}

/* type_ext - a file name extension for a media type (lower case). */
static const char *type_ext(const char *mt)
{
    static const char *const map[][2] = {
        {"application/pdf", "pdf"},        {"message/rfc822", "eml"},
        {"message/global", "eml"},         {"text/plain", "txt"},
        {"text/html", "html"},             {"text/csv", "csv"},
        {"text/calendar", "ics"},          {"text/xml", "xml"},
        {"application/xml", "xml"},        {"application/json", "json"},
        {"image/jpeg", "jpg"},             {"image/png", "png"},
        {"image/gif", "gif"},              {"image/tiff", "tif"},
        {"application/zip", "zip"},        {"application/msword", "doc"},
        {"application/vnd.ms-excel", "xls"}, {"application/vnd.ms-powerpoint", "ppt"},
        {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
        {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
        {"application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"},
        {"application/vnd.oasis.opendocument.text", "odt"},
        {"application/vnd.oasis.opendocument.spreadsheet", "ods"},
        {"application/vnd.oasis.opendocument.presentation", "odp"},
        {"message/delivery-status", "txt"},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(mt, map[i][0]))
            return map[i][1];
    return "bin";
}

/* name_ext - the extension of a file name when it is a plain one (1 to 10
 * ASCII letters or digits after the last dot), lower-cased into out. */
static int name_ext(const char *name, char out[11])
{
    const char *dot = name ? strrchr(name, '.') : NULL;
    if (!dot || dot == name)
        return 0;
    size_t n = strlen(dot + 1);
    if (n < 1 || n > 10)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = dot[1 + i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
            return 0;
        out[i] = (char)lower((uint8_t)ch);
    }
    out[n] = '\0';
    return 1;
}

/* it_emit - hand attachment k of obj over, with data[0..len) (NULL when
 * over the limit) of size bytes. */
static void it_emit(xc *c, GMimeObject *obj, uint32_t k, int is_message, const uint8_t *data,
                    size_t len, uint64_t size)
{
    if (c->it_st)
        return;
    const char *type, *sub;
    obj_type(obj, &type, &sub);
    sbuf fname = {0}, mtype = {0}, name = {0};
    char *t = g_strdup_printf("%s/%s", type, sub);
    const char *mt = clean_text(c, t, &mtype);
    g_free(t);
    if (mt)
        lower_ascii(mtype.p, mtype.len);
    else
        mt = "application/octet-stream";
    const char *fn = clean_text(c, obj_filename(obj), &fname);
    char ext[11];
    if (!name_ext(fn, ext)) {
        const char *e = type_ext(mt);
        memcpy(ext, e, strlen(e) + 1);
    }
    if (fn) {
        sb_add(&name, fn, fname.len);
    } else {
        char made[48];
        int l = snprintf(made, sizeof made, "attachment-%u.%s", k, ext);
        sb_add(&name, made, (size_t)l);
    }
    mv_attachment a = {k, c->it_container, fn, name.p, ext, mt, is_message,
                       data, data ? len : 0, size};
    c->it_count++;
    c->it_st = c->it_fn(c->it_ctx, &a, c->it_err);
    sb_free(&fname);
    sb_free(&mtype);
    sb_free(&name);
}

/* it_leaf - a leaf attachment's content, transfer encoding undone: kept
 * up to it_max bytes, counted past them (never held whole). */
static void it_leaf(xc *c, GMimePart *part, uint32_t k, int is_message)
{
    GMimeDataWrapper *dw = g_mime_part_get_content(part);
    GMimeStream *src = dw ? g_mime_data_wrapper_get_stream(dw) : NULL;
    if (!src) {
        it_emit(c, GMIME_OBJECT(part), k, is_message, (const uint8_t *)"", 0, 0);
        return;
    }
    GMimeContentEncoding enc = g_mime_data_wrapper_get_encoding(dw);
    int coded = enc == GMIME_CONTENT_ENCODING_BASE64 ||
                enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
                enc == GMIME_CONTENT_ENCODING_UUENCODE;
    const uint8_t *rp;
    size_t rn;
    int mem = mem_view(src, &rp, &rn);
    if (mem && c->it_buf && rp >= c->it_buf && rp <= c->it_buf + c->it_len) {
        /* the end found again: GMime cuts two bytes before a delimiter in
         * a message of CRLF lines even where a line ends in LF alone */
        size_t start = (size_t)(rp - c->it_buf);
        rn = body_end(c, start) - start;
    }
    if (!coded && mem) {
        it_emit(c, GMIME_OBJECT(part), k, is_message, rn <= c->it_max ? rp : NULL, rn, rn);
        return;
    }
    sbuf *o = &c->it_data;
    sb_reset(o);
    if (mem && enc != GMIME_CONTENT_ENCODING_UUENCODE) {
        /* decoded in steps, as part_view does (GMime's decoding stream
         * filter loses the last base64 quantum when no padding ends it);
         * past the limit only counted, in a chunk-sized spill buffer */
        GMimeEncoding st;
        g_mime_encoding_init_decode(&st, enc);
        uint64_t size = 0;
        int over = 0;
        char *spill = NULL;
        for (size_t i = 0; i <= rn; i += READ_CHUNK) {
            size_t chunk = rn - i < READ_CHUNK ? rn - i : READ_CHUNK, w;
            int last = i + chunk >= rn;
            size_t need = g_mime_encoding_outlen(&st, chunk) + 8;
            if (!over) {
                sb_grow(o, need);
                w = last ? g_mime_encoding_flush(&st, (const char *)rp + i, chunk, o->p + o->len)
                         : g_mime_encoding_step(&st, (const char *)rp + i, chunk, o->p + o->len);
                o->len += w;
                o->p[o->len] = '\0';
                sb_mark(o);
            } else {
                if (!spill)
                    spill = mv_xmalloc(g_mime_encoding_outlen(&st, READ_CHUNK) + 8);
                w = last ? g_mime_encoding_flush(&st, (const char *)rp + i, chunk, spill)
                         : g_mime_encoding_step(&st, (const char *)rp + i, chunk, spill);
            }
            size += w;
            if (!over && size > c->it_max) {
                over = 1;
                explicit_bzero(o->p, sb_dirty(o));
                sb_reset(o);
            }
            if (last)
                break;
        }
        it_emit(c, GMIME_OBJECT(part), k, is_message,
                over ? NULL : o->p ? (const uint8_t *)o->p : (const uint8_t *)"", over ? 0 : o->len,
                size);
        if (spill)
            wipe_free(spill, g_mime_encoding_outlen(&st, READ_CHUNK) + 8);
        sb_reset(o);
        return;
    }
    GMimeStream *rd = src, *fs = NULL;
    if (coded) {
        fs = g_mime_stream_filter_new(src);
        GMimeFilter *f = g_mime_filter_basic_new(enc, FALSE);
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(fs), f);
        g_object_unref(f);
        rd = fs;
    }
    g_mime_stream_reset(src);
    uint64_t size = 0;
    int over = 0;
    char *spill = NULL;
    for (;;) {
        char *dst;
        if (!over) {
            sb_grow(o, READ_CHUNK);
            dst = o->p + o->len;
        } else {
            if (!spill)
                spill = mv_xmalloc(READ_CHUNK);
            dst = spill;
        }
        ssize_t r = g_mime_stream_read(rd, dst, READ_CHUNK);
        if (r <= 0)
            break;
        size += (uint64_t)r;
        if (over)
            continue;
        o->len += (size_t)r;
        o->p[o->len] = '\0';
        sb_mark(o);
        if (size > c->it_max) {
            /* past the limit: only the size is wanted now */
            over = 1;
            explicit_bzero(o->p, sb_dirty(o));
            sb_reset(o);
        }
    }
    if (fs)
        g_object_unref(fs);
    g_mime_stream_reset(src);
    it_emit(c, GMIME_OBJECT(part), k, is_message,
            over ? NULL : o->p ? (const uint8_t *)o->p : (const uint8_t *)"", over ? 0 : o->len,
            size);
    if (spill)
        wipe_free(spill, READ_CHUNK);
    sb_reset(o);
}

/* it_message - an attached message GMime parsed (message/rfc822 not
 * transfer-encoded): its bytes exactly as they stand in the parent, from
 * after the part's header block to the delimiter that ends the part.
 * Without headers of its own to find its start by (a part in a digest),
 * it starts at its message's first header; with neither, it is written
 * out by GMime (an empty or header-less message, nothing to lose). */
static void it_message(xc *c, GMimeObject *obj, GMimeMessage *m, uint32_t k)
{
    const uint8_t *p = c->it_buf;
    size_t n = c->it_len, start = SIZE_MAX;
    GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
    if (p && hl && g_mime_header_list_get_count(hl) > 0) {
        gint64 off = g_mime_header_get_offset(g_mime_header_list_get_header_at(hl, 0));
        if (off >= 0 && (uint64_t)off <= n)
            start = (size_t)off + header_block(p + off, n - (size_t)off);
    }
    hl = m ? g_mime_object_get_header_list(GMIME_OBJECT(m)) : NULL;
    if (p && start == SIZE_MAX && hl && g_mime_header_list_get_count(hl) > 0) {
        gint64 off = g_mime_header_get_offset(g_mime_header_list_get_header_at(hl, 0));
        if (off >= 0 && (uint64_t)off <= n)
            start = (size_t)off;
    }
    if (start != SIZE_MAX) {
        size_t end = body_end(c, start), len = end - start;
        it_emit(c, obj, k, 1, len <= c->it_max ? p + start : NULL, len, len);
        return;
    }
    sb_reset(&c->it_data);
    if (m) {
        GMimeStream *ms = g_mime_stream_mem_new();
        g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, ms);
        GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
        if (ba && ba->len <= c->it_max)
            sb_add(&c->it_data, ba->data, ba->len);
        size_t len = ba ? ba->len : 0;
        it_emit(c, obj, k, 1, ba && ba->len <= c->it_max ? (const uint8_t *)c->it_data.p : NULL,
                len, len);
        if (ba)
            explicit_bzero(ba->data, ba->len);
        g_object_unref(ms);
    } else {
        it_emit(c, obj, k, 1, (const uint8_t *)"", 0, 0);
    }
    sb_reset(&c->it_data);
}

static void leaf(xc *c, GMimePart *part, unsigned depth, tbuf *acc, int text_ok)
{
    GMimeObject *obj = GMIME_OBJECT(part);
    const char *type, *sub;
    obj_type(obj, &type, &sub);
    if (crypto_control(type, sub)) {
        /* is:signed finds mail signed in the clear too, not only what
         * escrow decryption verified */
        if (strstr(sub, "signature"))
            c->x->flags |= MV_XF_SIGNED;
        return;
    }
    if (!leaf_is_attachment(part)) {
        if (!text_ok || c->it_fn)
            return;
        int html = !g_ascii_strcasecmp(sub, "html");
        if (acc) {
            size_t mark = acc_open(acc), before = acc->b.len;
            text_into(c, part, html, acc);
            acc_close(acc, mark, before);
            return;
        }
        tbuf t;
        tb_init(&t, part_budget(c), &c->x->flags);
        text_into(c, part, html, &t);
        section_take(c, MV_XS_BODY, MV_XR_NONE, 0, &t);
        return;
    }
    uint32_t k = new_attachment(c, obj);
    enum akind ak = attach_kind(type, sub, g_mime_part_get_filename(part));
    if (c->it_fn) {
        /* handed over, and for an attached message its own attachments
         * numbered and handed over after it; no text */
        it_leaf(c, part, k, ak == AK_EML);
        if (ak == AK_EML && !c->it_st)
            eml(c, part, k, depth, acc);
        return;
    }
    if (ak == AK_NONE)
        return;
    if (ak == AK_EML) {
        eml(c, part, k, depth, acc);
        return;
    }
    tbuf own, *t = acc;
    if (!acc) {
        tb_init(&own, part_budget(c), &c->x->flags);
        t = &own;
    }
    size_t mark = acc_open(t), before = t->b.len;
    if (t->full || t->b.len >= t->max) {
        c->x->flags |= MV_XF_TRUNCATED;
    } else if (ak == AK_TEXT || ak == AK_HTML) {
        text_into(c, part, ak == AK_HTML, t);
    } else {
        const uint8_t *v;
        size_t vn;
        part_view(c, part, &v, &vn);
        if (ak == AK_PDF)
            pdf_text(c, v, vn, t);
        else
            office_text(c, v, vn, t);
    }
    acc_close(t, mark, before);
    if (!acc)
        section_take(c, MV_XS_ATTACH_TEXT, MV_XR_NONE, k, &own);
}

/* walk - one MIME object.  depth counts attached messages (max_depth),
 * nest the multipart levels of this parse; acc is the text of the attached
 * message being read (NULL at the top); text_ok is false in alternatives
 * not chosen as the body, whose attachments are still counted. */
static void walk(xc *c, GMimeObject *obj, unsigned depth, unsigned nest, tbuf *acc, int text_ok)
{
    if (GMIME_IS_MULTIPART(obj)) {
        if (nest >= MAX_MIME_NESTING) {
            c->x->flags |= MV_XF_TOO_DEEP;
            return;
        }
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        const char *type, *sub;
        obj_type(obj, &type, &sub);
        int chosen = text_ok && !g_ascii_strcasecmp(sub, "alternative") ? pick_alternative(mp) : -1;
        int n = g_mime_multipart_get_count(mp);
        if (c->it_fn)
            /* (not g_mime_multipart_get_boundary, which makes one up when
             * there is none, re-encoding the header: see mime.c) */
            it_push(c, g_mime_object_get_content_type_parameter(obj, "boundary"));
        for (int i = 0; i < n && !c->it_st; i++) {
            GMimeObject *ch = g_mime_multipart_get_part(mp, i);
            if (ch)
                walk(c, ch, depth, nest + 1, acc, text_ok && (chosen < 0 || chosen == i));
        }
        if (c->it_fn)
            c->it_nb--;
        return;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        uint32_t k = new_attachment(c, obj);
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (c->it_fn)
            it_message(c, obj, m, k);
        if (m && !c->it_st)
            nested(c, m, k, depth + 1, nest);
        return;
    }
    if (GMIME_IS_PART(obj))
        leaf(c, GMIME_PART(obj), depth, acc, text_ok);
}

/* ---- entry points -------------------------------------------------------- */

static void on_warning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer ud)
{
    (void)offset;
    (void)item;
    uint32_t *flags = ud;
    switch (code) {
    case GMIME_CRIT_NESTING_OVERFLOW:
        *flags |= MV_XF_TOO_DEEP | MV_XF_MALFORMED;
        break;
    case GMIME_WARN_MALFORMED_MULTIPART:
    case GMIME_WARN_TRUNCATED_MESSAGE:
    case GMIME_WARN_MALFORMED_MESSAGE:
    case GMIME_CRIT_INVALID_HEADER_NAME:
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
    case GMIME_WARN_INVALID_CONTENT_TYPE:
    case GMIME_WARN_PART_WITHOUT_CONTENT:
        *flags |= MV_XF_MALFORMED;
        break;
    default:
        break; /* header cosmetics: duplicates, raw 8-bit, bad encoded-words */
    }
}

/* boundary_work - the estimate of GMime's boundary comparisons above. */
static uint64_t boundary_work(const uint8_t *p, size_t n)
{
    uint64_t dash = n >= 2 && p[0] == '-' && p[1] == '-', params = 0;
    const uint8_t *end = p + n;
    for (const uint8_t *q = p; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
        if (end - q > 2 && q[1] == '-' && q[2] == '-')
            dash++;
    /* parameter names are case-insensitive: look from both first letters */
    for (const char *c = "bB"; *c; c++)
        for (const uint8_t *q = p; (q = memchr(q, *c, (size_t)(end - q))) != NULL; q++)
            if (end - q >= 8 && !g_ascii_strncasecmp((const char *)q, "boundary", 8))
                params++;
    return dash * (params < GMIME_NESTING ? params : GMIME_NESTING);
}

/* header_block - length of p[0..n) up to and including the blank line
 * that ends the header block (all of it when there is none). */
static size_t header_block(const uint8_t *p, size_t n)
{
    for (const uint8_t *q = p; (q = memchr(q, '\n', (size_t)(p + n - q))) != NULL; q++) {
        const uint8_t *r = q + 1;
        if (r < p + n && *r == '\r')
            r++;
        if (r < p + n && *r == '\n')
            return (size_t)(r - p) + 1;
    }
    return n;
}

/* parse_bytes - GMime over p[0..n) without copying it: the bytes are lent
 * to a GByteArray (GMime's memory stream wants one) that the stream does
 * not own, and are taken back by release_bytes once the message is gone.
 * GMime only reads a memory stream it parses, so the const is kept. */
static GMimeMessage *parse_bytes(xc *c, const void *p, size_t n, GByteArray **keep)
{
    *keep = NULL;
    if (n > G_MAXUINT) {
        c->x->flags |= MV_XF_MALFORMED | MV_XF_TRUNCATED;
        return NULL;
    }
    GByteArray *ba = g_byte_array_new_take((guint8 *)(uintptr_t)(n ? p : ""), n);
    GMimeStream *s = g_mime_stream_mem_new_with_byte_array(ba);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(s), FALSE);
    GMimeParser *ps = g_mime_parser_new_with_stream(s);
    g_mime_parser_set_format(ps, GMIME_FORMAT_MESSAGE);
    /* Content-Length is the sender's claim, never trusted */
    g_mime_parser_set_respect_content_length(ps, FALSE);
    GMimeMessage *m = g_mime_parser_construct_message(ps, c->opts);
    g_object_unref(ps);
    g_object_unref(s);
    *keep = ba;
    return m;
}

/* release_bytes - after the message is released: take the lent bytes back
 * (they are the caller's) and free only the array. */
static void release_bytes(GByteArray *ba)
{
    if (!ba)
        return;
    gsize len;
    (void)g_byte_array_steal(ba, &len);
    g_byte_array_free(ba, TRUE);
}

static void quiet_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer ud)
{
    /* poppler's complaints about damaged PDFs may quote their content,
     * and a library does not print; the flag says what failed */
    (void)domain;
    (void)level;
    (void)msg;
    (void)ud;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libs(void)
{
    init_tables();
    g_mime_init();
    g_log_set_handler("Poppler", G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION,
                      quiet_log, NULL);
}

/* xc_init / xc_run / xc_done - one call: the parser's options, the parse
 * (or, for hostile nesting, the header block only) and the walk; shared
 * by mv_extract_message and mv_extract_attachments so both see the same
 * parts. */
static void xc_init(xc *c, const mv_extract_limits *lim, size_t n)
{
    static const char *fallback[] = {"UTF-8", "windows-1252", NULL};
    pthread_once(&init_once, init_libs);
    memset(c, 0, sizeof *c);
    limits_fill(&c->lim, lim);
    mv_extract *x = mv_xcalloc(1, sizeof *x);
    x->date = INT64_MIN;
    x->size = n;
    c->x = x;
    c->opts = g_mime_parser_options_new();
    g_mime_parser_options_set_warning_callback(c->opts, on_warning, &x->flags);
    g_mime_parser_options_set_fallback_charsets(c->opts, fallback);
}

static void xc_run(xc *c, const uint8_t *p, size_t n)
{
    mv_extract *x = c->x;
    GByteArray *ba = NULL;
    size_t parse_len = p ? n : 0;
    if (parse_len >= PRESCAN_MIN && boundary_work(p, parse_len) > MAX_BOUNDARY_WORK) {
        parse_len = header_block(p, parse_len);
        x->flags |= MV_XF_MALFORMED | MV_XF_TRUNCATED | MV_XF_TOO_DEEP;
    }
    c->it_buf = p;
    c->it_len = parse_len;
    GMimeMessage *m = parse_bytes(c, p ? (const void *)p : "", parse_len, &ba);
    if (!m ||
        g_mime_header_list_get_count(g_mime_object_get_header_list(GMIME_OBJECT(m))) == 0)
        x->flags |= MV_XF_MALFORMED;
    if (m) {
        if (!c->it_fn)
            top_headers(c, m);
        GMimeObject *body = g_mime_message_get_mime_part(m);
        if (body)
            walk(c, body, 0, 0, NULL, 1);
        g_object_unref(m);
    }
    release_bytes(ba);
}

static void xc_done(xc *c)
{
    if (c->refs)
        g_hash_table_destroy(c->refs);
    g_mime_parser_options_free(c->opts);
    sb_free(&c->raw);
    sb_free(&c->conv);
    sb_free(&c->it_data);
    free(c->it_bounds);
}

mv_status mv_extract_message(const uint8_t *p, size_t n, const mv_extract_limits *lim,
                             mv_extract **out, mv_err *err)
{
    (void)err;
    xc c;
    xc_init(&c, lim, n);
    xc_run(&c, p, n);
    xc_done(&c);
    *out = c.x;
    return MV_OK;
}

mv_status mv_extract_attachments(const uint8_t *p, size_t n, const mv_extract_limits *lim,
                                 size_t max_bytes, mv_attachment_fn fn, void *ctx,
                                 uint32_t *count, mv_err *err)
{
    xc c;
    xc_init(&c, lim, n);
    c.it_fn = fn;
    c.it_ctx = ctx;
    c.it_err = err;
    c.it_max = max_bytes ? max_bytes : MV_ATTACH_MAX_BYTES;
    xc_run(&c, p, n);
    xc_done(&c);
    /* the sections made on the way (names, types) were the walk's
     * bookkeeping, not a result */
    mv_extract_free(c.x);
    if (count)
        *count = c.it_count;
    return c.it_st;
}
