/* SPDX-License-Identifier: MIT */
/* query.c - the query language of `mailvault search` (docs/search.md):
 * a hand-written recursive-descent parser over the grammar in query.h.
 *
 * The query is checked whole before parsing: length (max_len), then UTF-8
 * and control characters, so the lexer can trust every byte it looks at.
 * The parser then lexes on demand (lex looks, take consumes) and builds the tree while
 * normalising it: AND inside AND and OR inside OR are flattened as they
 * are added, a one-child AND/OR is never made, NOT NOT x is x.
 *
 * LIMITS: every '(' (a group or a field's group) and every NOT or '-'
 * costs one level of max_depth, and they are the only places the parser
 * recurses, so the C stack used is proportional to max_depth, which is
 * itself capped at Q_DEPTH_CAP whatever the caller asks.  Every node made
 * counts against max_nodes.  Work is linear in the query's length.
 *
 * Errors: the first one wins (later failures while unwinding are ignored);
 * messages say "at column N: why", N counted in characters. */
#include "query.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"

#define Q_DEF_MAX_LEN 16384
#define Q_DEF_MAX_DEPTH 64
#define Q_DEF_MAX_NODES 4096
/* The parser recurses a few frames per level: whatever the caller asks,
 * no more levels than this, so a query can never exhaust a thread's stack
 * (and 256 is far past anything a person writes). */
#define Q_DEPTH_CAP 256
/* A wildcard must have this many characters before the '*', so it cannot
 * expand to a large part of the vocabulary. */
#define Q_MIN_PREFIX 3
/* Characters of the user's text quoted in an error message. */
#define Q_SNIP_CHARS 32

/* ---- fields -------------------------------------------------------------- */

enum { FK_TEXT, FK_DATE, FK_SIZE, FK_HAS, FK_IS };
enum {
    FF_LITERAL = 1, /* the value is taken whole: no wildcard, <> stripped (msgid) */
    FF_NOWILD = 2,  /* values matched whole by the index: a wildcard is an error */
};

typedef struct qfield {
    const char *name;
    uint8_t kind;  /* FK_* */
    uint8_t field; /* mv_qfield for FK_TEXT */
    uint8_t flags; /* FF_* */
} qfield;

/* In the order the error message for an unknown field lists them. */
static const qfield fields[] = {
    {"from", FK_TEXT, MV_QF_FROM, 0},
    {"to", FK_TEXT, MV_QF_TO, 0},
    {"cc", FK_TEXT, MV_QF_CC, 0},
    {"bcc", FK_TEXT, MV_QF_BCC, 0},
    {"participant", FK_TEXT, MV_QF_PARTICIPANT, 0},
    {"subject", FK_TEXT, MV_QF_SUBJECT, 0},
    {"body", FK_TEXT, MV_QF_BODY, 0},
    {"attachment", FK_TEXT, MV_QF_ATTACHMENT, 0},
    {"filename", FK_TEXT, MV_QF_FILENAME, 0},
    {"msgid", FK_TEXT, MV_QF_MSGID, FF_LITERAL},
    {"domain", FK_TEXT, MV_QF_DOMAIN, FF_NOWILD},
    {"custodian", FK_TEXT, MV_QF_CUSTODIAN, FF_NOWILD},
    {"date", FK_DATE, 0, 0},
    {"size", FK_SIZE, 0, 0},
    {"has", FK_HAS, 0, 0},
    {"is", FK_IS, 0, 0},
    {"hold", FK_TEXT, MV_QF_HOLD, FF_NOWILD},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])
#define FIELD_LIST                                                                              \
    "from, to, cc, bcc, participant, subject, body, attachment, filename, msgid, domain, "     \
    "custodian, date, size, has, is, hold"

static const char *const field_names[] = {
    [MV_QF_ANY] = "any",
    [MV_QF_FROM] = "from",
    [MV_QF_TO] = "to",
    [MV_QF_CC] = "cc",
    [MV_QF_BCC] = "bcc",
    [MV_QF_PARTICIPANT] = "participant",
    [MV_QF_SUBJECT] = "subject",
    [MV_QF_BODY] = "body",
    [MV_QF_ATTACHMENT] = "attachment",
    [MV_QF_FILENAME] = "filename",
    [MV_QF_MSGID] = "msgid",
    [MV_QF_DOMAIN] = "domain",
    [MV_QF_CUSTODIAN] = "custodian",
    [MV_QF_HOLD] = "hold",
};

const char *mv_query_field_name(unsigned field)
{
    if (field >= sizeof field_names / sizeof field_names[0] || !field_names[field])
        return "?";
    return field_names[field];
}

static const char *const is_values[] = {"encrypted", "decrypted", "undecryptable", "signed",
                                        "held"};
#define IS_LIST "encrypted, decrypted, undecryptable, signed, held"

/* ---- characters ---------------------------------------------------------- */

/* utf8_at - length of the valid UTF-8 sequence at s[0..n) (0 when invalid:
 * truncated, overlong, surrogate, past U+10FFFF); its code point in *cp. */
static size_t utf8_at(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static int is_ascii_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* space_len - bytes of the white-space character at q[i], 0 if none.
 * Besides ASCII, the Unicode spaces (no-break, ideographic ...) that
 * text pasted from documents brings. */
static size_t space_len(const char *q, size_t i, size_t len)
{
    const unsigned char *s = (const unsigned char *)q + i;
    if (i >= len)
        return 0;
    if (is_ascii_space(s[0]))
        return 1;
    if (s[0] < 0x80)
        return 0;
    uint32_t cp;
    size_t l = utf8_at(s, len - i, &cp);
    if (cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
        cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)
        return l;
    return 0;
}

/* quote_len - bytes of the quotation mark at q[i], 0 if none: '"' and the
 * typographic “ ” that word processors put in pasted text. */
static size_t quote_len(const char *q, size_t i, size_t len)
{
    const unsigned char *s = (const unsigned char *)q + i;
    if (i >= len)
        return 0;
    if (s[0] == '"')
        return 1;
    if (len - i >= 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0x9C || s[2] == 0x9D))
        return 3;
    return 0;
}

/* is_stop - does a word end before q[i]? */
static int is_stop(const char *q, size_t i, size_t len)
{
    return i >= len || q[i] == '(' || q[i] == ')' || space_len(q, i, len) ||
           quote_len(q, i, len);
}

static size_t count_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* lower_cp - simple lower-case mapping for the scripts a European or
 * Asian archive meets (Latin, Greek, Cyrillic, Armenian, full-width
 * Latin); others are unchanged (CJK has no case). */
static uint32_t lower_cp(uint32_t c)
{
    if (c < 0x80)
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    if (c == 0x130)
        return 'i';
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
        return c % 2 == 0 ? c + 1 : c;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
        return c % 2 == 1 ? c + 1 : c;
    if (c == 0x178)
        return 0xFF;
    if (c == 0x386)
        return 0x3AC;
    if (c >= 0x388 && c <= 0x38A)
        return c + 37;
    if (c == 0x38C)
        return 0x3CC;
    if (c == 0x38E || c == 0x38F)
        return c + 63;
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 32;
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F))
        return c % 2 == 0 ? c + 1 : c;
    if (c == 0x4C0)
        return 0x4CF;
    if (c >= 0x4C1 && c <= 0x4CE)
        return c % 2 == 1 ? c + 1 : c;
    if (c >= 0x531 && c <= 0x556)
        return c + 48;
    if ((c >= 0x1E00 && c <= 0x1E95) || (c >= 0x1EA0 && c <= 0x1EFF))
        return c % 2 == 0 ? c + 1 : c;
    if (c >= 0xFF21 && c <= 0xFF3A)
        return c + 32;
    return c;
}

static void put_utf8(mv_buf *b, uint32_t c)
{
    if (c < 0x80) {
        mv_buf_append_byte(b, (uint8_t)c);
    } else if (c < 0x800) {
        mv_buf_append_byte(b, (uint8_t)(0xC0 | (c >> 6)));
        mv_buf_append_byte(b, (uint8_t)(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        mv_buf_append_byte(b, (uint8_t)(0xE0 | (c >> 12)));
        mv_buf_append_byte(b, (uint8_t)(0x80 | ((c >> 6) & 0x3F)));
        mv_buf_append_byte(b, (uint8_t)(0x80 | (c & 0x3F)));
    } else {
        mv_buf_append_byte(b, (uint8_t)(0xF0 | (c >> 18)));
        mv_buf_append_byte(b, (uint8_t)(0x80 | ((c >> 12) & 0x3F)));
        mv_buf_append_byte(b, (uint8_t)(0x80 | ((c >> 6) & 0x3F)));
        mv_buf_append_byte(b, (uint8_t)(0x80 | (c & 0x3F)));
    }
}

/* lower_dup - s[0..n) (valid UTF-8) lower-cased, as a new string. */
static char *lower_dup(const char *s, size_t n)
{
    mv_buf b = MV_BUF_INIT;
    mv_buf_reserve(&b, n + 1);
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = utf8_at((const unsigned char *)s + i, n - i, &cp);
        if (l == 0) { /* cannot happen on checked input; keep the byte */
            mv_buf_append_byte(&b, (uint8_t)s[i++]);
            continue;
        }
        put_utf8(&b, lower_cp(cp));
        i += l;
    }
    return (char *)mv_buf_steal(&b, NULL);
}

/* snip - s[0..n) for an error message: at most Q_SNIP_CHARS characters,
 * cut on a character boundary, "..." when cut.  The query was checked to
 * hold no control characters, so what is quoted cannot drive a terminal. */
static const char *snip(const char *s, size_t n, char *out, size_t outn)
{
    size_t i = 0, chars = 0;
    while (i < n && chars < Q_SNIP_CHARS) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        chars++;
    }
    snprintf(out, outn, "%.*s%s", (int)i, s, i < n ? "..." : "");
    return out;
}

/* ---- parser state, errors, nodes ----------------------------------------- */

typedef struct qp {
    const char *q;
    size_t len;
    size_t pos; /* next byte to lex */
    unsigned max_depth, max_nodes;
    unsigned depth, nodes;
    mv_status st; /* the first error */
    mv_err *err;
} qp;

static void *fail(qp *p, mv_status st, size_t off, const char *fmt, ...) MV_PRINTF(4, 5);

static void *fail(qp *p, mv_status st, size_t off, const char *fmt, ...)
{
    if (p->st != MV_OK)
        return NULL;
    char why[224];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (off > p->len)
        off = p->len;
    p->st = mv_err_set(p->err, st, "at column %zu: %s", count_chars(p->q, off) + 1, why);
    return NULL;
}

static mv_qnode *new_node(qp *p, int kind, size_t pos)
{
    if (p->nodes >= p->max_nodes)
        return fail(p, MV_ELIMIT, pos, "the query has more than max_nodes (%u) terms",
                    p->max_nodes);
    p->nodes++;
    mv_qnode *n = mv_xcalloc(1, sizeof *n);
    n->kind = (uint8_t)kind;
    n->pos = pos > UINT32_MAX ? UINT32_MAX : (uint32_t)pos;
    return n;
}

void mv_query_free(mv_qnode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        mv_query_free(n->kids[i]);
    free(n->kids);
    free(n->text);
    free(n);
}

static void push_kid(mv_qnode *n, mv_qnode *kid)
{
    /* grows by doubling: capacity is the next power of two >= n_kids */
    size_t k = n->n_kids;
    if (k == 0 || (k & (k - 1)) == 0)
        n->kids = mv_xrealloc(n->kids, (k ? 2 * k : 1) * sizeof *n->kids);
    n->kids[n->n_kids++] = kid;
}

/* add_kid - append kid to an AND or OR, flattening a kid of the same kind
 * into its parent (takes kid). */
static void add_kid(mv_qnode *n, mv_qnode *kid)
{
    if (kid->kind != n->kind) {
        push_kid(n, kid);
        return;
    }
    for (size_t i = 0; i < kid->n_kids; i++)
        push_kid(n, kid->kids[i]);
    kid->n_kids = 0;
    mv_query_free(kid);
}

/* make_not - NOT kid, where NOT NOT x is x (takes kid). */
static mv_qnode *make_not(qp *p, mv_qnode *kid, size_t pos)
{
    if (kid->kind == MV_Q_NOT) {
        mv_qnode *x = kid->kids[0];
        kid->n_kids = 0;
        mv_query_free(kid);
        return x;
    }
    mv_qnode *n = new_node(p, MV_Q_NOT, pos);
    if (!n) {
        mv_query_free(kid);
        return NULL;
    }
    push_kid(n, kid);
    return n;
}

/* ---- lexer --------------------------------------------------------------- */

typedef enum {
    T_ERR,
    T_EOF,
    T_LP,
    T_RP,
    T_PHRASE,
    T_WORD,
    T_AND,
    T_OR,
    T_NOT,
    T_MINUS,
    T_FIELD,
} ttype;

typedef struct tok {
    ttype t;
    size_t start, end; /* bytes of the token; T_FIELD ends after the ':' */
    size_t vs, ve;     /* T_PHRASE: the text between the quotes */
    const qfield *f;   /* T_FIELD */
} tok;

static const qfield *find_field(const char *s, size_t n)
{
    char low[16];
    if (n >= sizeof low)
        return NULL;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    for (size_t i = 0; i < N_FIELDS; i++)
        if (strlen(fields[i].name) == n && memcmp(fields[i].name, low, n) == 0)
            return &fields[i];
    return NULL;
}

/* is_ident - a plain identifier: an ASCII letter, then letters, digits,
 * '_' or '-'.  Only such a word before ':' claims to be a field. */
static int is_ident(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* distance - edits (insert, delete, change, swap two neighbours) between
 * two short ASCII strings, case-insensitive, for "did you mean";
 * anything longer than the table counts as far. */
static unsigned distance(const char *a, size_t na, const char *b)
{
    size_t nb = strlen(b);
    unsigned d[24][24];
    if (na >= 24 || nb >= 24)
        return 99;
    for (size_t i = 0; i <= na; i++)
        d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= nb; j++)
        d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= na; i++) {
        for (size_t j = 1; j <= nb; j++) {
            char ca = (char)(a[i - 1] >= 'A' && a[i - 1] <= 'Z' ? a[i - 1] + 32 : a[i - 1]);
            char pa = i > 1 ? (char)(a[i - 2] >= 'A' && a[i - 2] <= 'Z' ? a[i - 2] + 32 : a[i - 2])
                            : 0;
            unsigned best = d[i - 1][j - 1] + (ca != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == b[j - 2] && pa == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[na][nb];
}

static void unknown_field(qp *p, size_t s, size_t n)
{
    char name[64];
    snip(p->q + s, n, name, sizeof name);
    const char *best = NULL;
    /* suggest only a near miss: one edit for short names, two for longer */
    unsigned bd = n <= 4 ? 2 : 3;
    for (size_t i = 0; i < N_FIELDS; i++) {
        unsigned d = distance(p->q + s, n, fields[i].name);
        if (d < bd)
            bd = d, best = fields[i].name;
    }
    if (best)
        fail(p, MV_EMALFORMED, s, "unknown field '%s', did you mean '%s'? (fields: " FIELD_LIST ")",
             name, best);
    else
        fail(p, MV_EMALFORMED, s, "unknown field '%s' (fields: " FIELD_LIST ")", name);
}

/* lex - the token at p->pos (after white space), without taking it. */
static tok lex(qp *p)
{
    const char *q = p->q;
    size_t len = p->len, i = p->pos, l;
    tok t = {0};
    while ((l = space_len(q, i, len)) != 0)
        i += l;
    t.start = i;
    if (i >= len) {
        t.t = T_EOF;
        t.end = i;
        return t;
    }
    if (q[i] == '(' || q[i] == ')') {
        t.t = q[i] == '(' ? T_LP : T_RP;
        t.end = i + 1;
        return t;
    }
    if ((l = quote_len(q, i, len)) != 0) {
        size_t j = i + l, cl;
        while (j < len && (cl = quote_len(q, j, len)) == 0)
            j++;
        if (j >= len) {
            t.t = T_ERR;
            fail(p, MV_EMALFORMED, i, "unterminated quote: no closing '\"'");
            return t;
        }
        t.t = T_PHRASE;
        t.vs = i + l;
        t.ve = j;
        t.end = j + cl;
        return t;
    }
    if (q[i] == '-') {
        if (i + 1 >= len || q[i + 1] == ')' || space_len(q, i + 1, len)) {
            t.t = T_ERR;
            fail(p, MV_EMALFORMED, i,
                 "'-' must be followed directly by what it excludes (-draft, -from:bob)");
            return t;
        }
        t.t = T_MINUS;
        t.end = i + 1;
        return t;
    }
    size_t e = i;
    while (!is_stop(q, e, len))
        e++;
    t.end = e;
    if (e - i == 3 && memcmp(q + i, "AND", 3) == 0)
        t.t = T_AND;
    else if (e - i == 2 && memcmp(q + i, "OR", 2) == 0)
        t.t = T_OR;
    else if (e - i == 3 && memcmp(q + i, "NOT", 3) == 0)
        t.t = T_NOT;
    else
        t.t = T_WORD;
    if (t.t != T_WORD)
        return t;
    const char *colon = memchr(q + i, ':', e - i);
    if (!colon)
        return t;
    size_t c = (size_t)(colon - q);
    if (!is_ident(q + i, c - i))
        return t; /* 10:30, :-) ... are words */
    t.f = find_field(q + i, c - i);
    if (t.f) {
        t.t = T_FIELD;
        t.end = c + 1;
        return t;
    }
    if (e - c >= 3 && q[c + 1] == '/' && q[c + 2] == '/')
        return t; /* a URL: https://example.com/x is a word */
    t.t = T_ERR;
    unknown_field(p, i, c - i);
    return t;
}

static void take(qp *p, const tok *t)
{
    p->pos = t->end;
}

static int starts_term(ttype t)
{
    return t == T_LP || t == T_PHRASE || t == T_WORD || t == T_NOT || t == T_MINUS ||
           t == T_FIELD;
}

/* ---- leaves -------------------------------------------------------------- */

/* leaf - a text node of field f (NULL: free text) at byte at; takes text. */
static mv_qnode *leaf(qp *p, int kind, const qfield *f, size_t at, char *text)
{
    mv_qnode *n = new_node(p, kind, at);
    if (!n) {
        free(text);
        return NULL;
    }
    n->field = (uint8_t)(f ? f->field : MV_QF_ANY);
    n->text = text;
    return n;
}

/* msgid_leaf - s[0..n) as a message id, matched whole ('*' and all); the
 * angle brackets are optional and stripped.  at: where it starts. */
static mv_qnode *msgid_leaf(qp *p, const qfield *f, const char *s, size_t n, size_t at)
{
    char sn[160];
    int lt = n > 0 && s[0] == '<', gt = n > 0 && s[n - 1] == '>';
    if (lt != gt || (lt && n == 1))
        return fail(p, MV_EMALFORMED, at, "unbalanced '<' '>' around the message id '%s'",
                    snip(s, n, sn, sizeof sn));
    if (lt)
        s++, n -= 2;
    if (n == 0)
        return fail(p, MV_EMALFORMED, at, "empty message id <>");
    if (memchr(s, ' ', n))
        return fail(p, MV_EMALFORMED, at, "a message id has no spaces");
    return leaf(p, MV_Q_WORD, f, at, mv_xstrndup(s, n));
}

/* text_leaf - the word q[s..e) as a node of field f (NULL: free text),
 * applying the wildcard rules. */
static mv_qnode *text_leaf(qp *p, size_t s, size_t e, const qfield *f)
{
    const char *q = p->q;
    char sn[160];
    if (f && (f->flags & FF_LITERAL))
        return msgid_leaf(p, f, q + s, e - s, s);
    const char *star = memchr(q + s, '*', e - s);
    if (!star)
        return leaf(p, MV_Q_WORD, f, s, mv_xstrndup(q + s, e - s));
    size_t at = (size_t)(star - q);
    if (e - s == 1)
        return fail(p, MV_EMALFORMED, at,
                    "'*' alone means every message and must be the whole query");
    if (at != e - 1)
        return fail(p, MV_EMALFORMED, at,
                    "'*' is allowed only at the end of a word (a wildcard: invoic*)");
    if (f && (f->flags & FF_NOWILD))
        return fail(p, MV_EMALFORMED, at,
                    "wildcards are not allowed in %s: (it matches whole values)", f->name);
    if (count_chars(q + s, at - s) < Q_MIN_PREFIX)
        return fail(p, MV_EMALFORMED, s,
                    "a wildcard needs at least %d characters before '*' ('%s')", Q_MIN_PREFIX,
                    snip(q + s, e - s, sn, sizeof sn));
    return leaf(p, MV_Q_PREFIX, f, s, lower_dup(q + s, at - s));
}

/* phrase_leaf - the phrase token t: its words joined by single spaces,
 * as typed otherwise ('*' inside quotes is no wildcard). */
static mv_qnode *phrase_leaf(qp *p, const tok *t, const qfield *f)
{
    mv_buf b = MV_BUF_INIT;
    size_t i = t->vs, l;
    while (i < t->ve) {
        if ((l = space_len(p->q, i, t->ve)) != 0) {
            i += l;
            continue;
        }
        size_t w = i;
        while (i < t->ve && !space_len(p->q, i, t->ve))
            i++;
        if (b.len)
            mv_buf_append_byte(&b, ' ');
        mv_buf_append(&b, p->q + w, i - w);
    }
    if (b.len == 0) {
        mv_buf_free(&b);
        return fail(p, MV_EMALFORMED, t->start, "empty phrase \"\"");
    }
    if (f && (f->flags & FF_LITERAL)) {
        mv_qnode *n = msgid_leaf(p, f, (const char *)b.data, b.len, t->start);
        mv_buf_free(&b);
        return n;
    }
    return leaf(p, MV_Q_PHRASE, f, t->start, (char *)mv_buf_steal(&b, NULL));
}

/* ---- dates --------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's algorithm: proleptic Gregorian, no libc, no locale */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int is_leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(unsigned y, unsigned m)
{
    static const unsigned md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : md[m - 1];
}

static const char *const month_names[12] = {"January", "February", "March",     "April",
                                            "May",     "June",     "July",      "August",
                                            "September", "October", "November", "December"};

/* digits - n decimal digits from q[*i..e) with at least min; -1 if none */
static long digits(const char *q, size_t *i, size_t e, unsigned min, unsigned max)
{
    long v = 0;
    unsigned n = 0;
    while (*i < e && q[*i] >= '0' && q[*i] <= '9' && n < max) {
        v = v * 10 + (q[*i] - '0');
        (*i)++, n++;
    }
    return n < min ? -1 : v;
}

#define DATE_FORMS "YYYY, YYYY-MM or YYYY-MM-DD (2024, 2024-03, 2024-03-05)"

/* parse_day - the date q[s..e) as the period it names: *lo its first
 * second, *hi its last (UTC). */
static int parse_day(qp *p, size_t s, size_t e, int64_t *lo, int64_t *hi)
{
    const char *q = p->q;
    char sn[160];
    size_t i = s, ms = s, ds = s;
    long y, m = 1, d = 1;
    int has_m = 0, has_d = 0;
    y = digits(q, &i, e, 4, 4);
    if (y >= 0 && i < e && q[i] == '-') {
        ms = ++i;
        has_m = 1;
        m = digits(q, &i, e, 1, 2);
        if (m >= 0 && i < e && q[i] == '-') {
            ds = ++i;
            has_d = 1;
            d = digits(q, &i, e, 1, 2);
        }
    }
    if (y < 0 || m < 0 || d < 0 || i != e) {
        fail(p, MV_EMALFORMED, s, "date: expects %s, not '%s'", DATE_FORMS,
             snip(q + s, e - s, sn, sizeof sn));
        return -1;
    }
    if (y == 0) {
        fail(p, MV_EMALFORMED, s, "no year 0000: years are 0001 to 9999");
        return -1;
    }
    if (m < 1 || m > 12) {
        fail(p, MV_EMALFORMED, ms, "no month %ld: months are 1 to 12", m);
        return -1;
    }
    unsigned md = month_days((unsigned)y, (unsigned)m);
    if (d < 1 || (unsigned long)d > md) {
        fail(p, MV_EMALFORMED, ds, "no day %ld in %s %ld (it has %u days)", d,
             month_names[m - 1], y, md);
        return -1;
    }
    if (!has_m) {
        *lo = days_from_civil(y, 1, 1) * 86400;
        *hi = days_from_civil(y + 1, 1, 1) * 86400 - 1;
    } else if (!has_d) {
        *lo = days_from_civil(y, (unsigned)m, 1) * 86400;
        *hi = (m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, (unsigned)m + 1, 1)) *
                  86400 -
              1;
    } else {
        *lo = days_from_civil(y, (unsigned)m, (unsigned)d) * 86400;
        *hi = *lo + 86399;
    }
    return 0;
}

/* find_dots - offset of ".." in q[s..e), or e */
static size_t find_dots(const char *q, size_t s, size_t e)
{
    for (size_t i = s; i + 1 < e; i++)
        if (q[i] == '.' && q[i + 1] == '.')
            return i;
    return e;
}

/* cmp_op - a leading > >= < <= : 1 2 3 4, with its length; 0 if none */
static int cmp_op(const char *q, size_t s, size_t e, size_t *n)
{
    if (s >= e || (q[s] != '>' && q[s] != '<'))
        return 0;
    int eq = s + 1 < e && q[s + 1] == '=';
    *n = eq ? 2 : 1;
    return (q[s] == '>' ? 1 : 3) + eq;
}

static mv_qnode *date_leaf(qp *p, size_t s, size_t e)
{
    int64_t lo = INT64_MIN, hi = INT64_MAX, a, b;
    size_t n;
    int op = cmp_op(p->q, s, e, &n);
    if (op) {
        if (s + n == e)
            return fail(p, MV_EMALFORMED, s, "date: a comparison needs a date (date:>=2024-01-01)");
        if (parse_day(p, s + n, e, &a, &b) < 0)
            return NULL;
        if (op == 1) /* after the whole period */
            lo = b + 1;
        else if (op == 2)
            lo = a;
        else if (op == 3) /* before it */
            hi = a - 1;
        else
            hi = b;
    } else {
        size_t dd = find_dots(p->q, s, e);
        if (dd == e) {
            if (parse_day(p, s, e, &lo, &hi) < 0)
                return NULL;
        } else {
            if (dd == s && dd + 2 == e)
                return fail(p, MV_EMALFORMED, s, "date: a range needs at least one end (2024-01..)");
            if (dd > s && parse_day(p, s, dd, &lo, &b) < 0)
                return NULL;
            if (dd + 2 < e && parse_day(p, dd + 2, e, &a, &hi) < 0)
                return NULL;
            if (lo > hi)
                return fail(p, MV_EMALFORMED, s, "date: the range ends before it starts");
        }
    }
    mv_qnode *node = new_node(p, MV_Q_DATE, s);
    if (node)
        node->lo = lo, node->hi = hi;
    return node;
}

/* ---- sizes --------------------------------------------------------------- */

#define SIZE_FORMS "a number of bytes with an optional unit K, M or G (5000, 10K, 1.5MB)"

/* parse_bytes - q[s..e) as a size in bytes: digits, an optional fraction
 * when a unit follows, a unit K M G (1024-based, any case) with an
 * optional "B" or "iB", or a bare "B". */
static int parse_bytes(qp *p, size_t s, size_t e, uint64_t *out)
{
    const char *q = p->q;
    char sn[160];
    size_t i = s;
    uint64_t v = 0, frac = 0, scale = 1;
    if (i >= e || q[i] < '0' || q[i] > '9')
        goto bad;
    for (; i < e && q[i] >= '0' && q[i] <= '9'; i++) {
        unsigned dgt = (unsigned)(q[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10)
            goto big;
        v = v * 10 + dgt;
    }
    size_t dot = e;
    if (i < e && q[i] == '.') {
        dot = i++;
        if (i >= e || q[i] < '0' || q[i] > '9')
            goto bad;
        for (; i < e && q[i] >= '0' && q[i] <= '9'; i++) {
            if (scale >= 1000000000)
                continue; /* finer than a billionth of a unit does not change the bytes */
            frac = frac * 10 + (unsigned)(q[i] - '0');
            scale *= 10;
        }
    }
    uint64_t mult = 1;
    if (i < e) {
        char u = (char)(q[i] >= 'a' && q[i] <= 'z' ? q[i] - 32 : q[i]);
        if (u == 'K')
            mult = 1024;
        else if (u == 'M')
            mult = 1024 * 1024;
        else if (u == 'G')
            mult = 1024 * 1024 * 1024;
        else if (u != 'B')
            goto bad;
        i++;
        if (mult != 1) {
            if (i < e && (q[i] == 'i' || q[i] == 'I') && i + 1 < e &&
                (q[i + 1] == 'b' || q[i + 1] == 'B'))
                i += 2;
            else if (i < e && (q[i] == 'b' || q[i] == 'B'))
                i++;
        }
        if (i != e)
            goto bad;
    }
    if (dot != e && mult == 1) {
        fail(p, MV_EMALFORMED, dot, "size: bytes are a whole number (or give a unit: 1.5M)");
        return -1;
    }
    if (v > UINT64_MAX / mult)
        goto big;
    v *= mult;
    /* frac < 10^9 and mult <= 2^30: the product fits */
    uint64_t extra = frac * mult / scale;
    if (v > UINT64_MAX - extra)
        goto big;
    *out = v + extra;
    return 0;
bad:
    fail(p, MV_EMALFORMED, s, "size: expects %s, not '%s'", SIZE_FORMS,
         snip(q + s, e - s, sn, sizeof sn));
    return -1;
big:
    fail(p, MV_EMALFORMED, s, "size: '%s' is too large", snip(q + s, e - s, sn, sizeof sn));
    return -1;
}

static mv_qnode *size_leaf(qp *p, size_t s, size_t e)
{
    uint64_t lo = 0, hi = UINT64_MAX, v;
    size_t n;
    int op = cmp_op(p->q, s, e, &n);
    if (op) {
        if (s + n == e)
            return fail(p, MV_EMALFORMED, s, "size: a comparison needs a size (size:>1M)");
        if (parse_bytes(p, s + n, e, &v) < 0)
            return NULL;
        if (op == 1) {
            if (v == UINT64_MAX)
                return fail(p, MV_EMALFORMED, s, "size: nothing is larger than that");
            lo = v + 1;
        } else if (op == 2) {
            lo = v;
        } else if (op == 3) {
            if (v == 0)
                return fail(p, MV_EMALFORMED, s, "size:<0 matches nothing");
            hi = v - 1;
        } else {
            hi = v;
        }
    } else {
        size_t dd = find_dots(p->q, s, e);
        if (dd == e) {
            if (parse_bytes(p, s, e, &v) < 0)
                return NULL;
            lo = hi = v;
        } else {
            if (dd == s && dd + 2 == e)
                return fail(p, MV_EMALFORMED, s, "size: a range needs at least one end (1M..)");
            if (dd > s && parse_bytes(p, s, dd, &lo) < 0)
                return NULL;
            if (dd + 2 < e && parse_bytes(p, dd + 2, e, &hi) < 0)
                return NULL;
            if (lo > hi)
                return fail(p, MV_EMALFORMED, s, "size: the range ends before it starts");
        }
    }
    mv_qnode *node = new_node(p, MV_Q_SIZE, s);
    if (node)
        node->slo = lo, node->shi = hi;
    return node;
}

/* ---- has: is: ------------------------------------------------------------ */

static int word_is(const char *s, size_t n, const char *w)
{
    if (strlen(w) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
        if (c != w[i])
            return 0;
    }
    return 1;
}

static mv_qnode *flag_leaf(qp *p, const qfield *f, size_t s, size_t e)
{
    char sn[160];
    const char *hit = NULL;
    if (f->kind == FK_HAS) {
        if (word_is(p->q + s, e - s, "attachment"))
            hit = "attachment";
        else
            return fail(p, MV_EMALFORMED, s, "unknown value '%s' for has: (allowed: attachment)",
                        snip(p->q + s, e - s, sn, sizeof sn));
    } else {
        for (size_t i = 0; i < sizeof is_values / sizeof is_values[0]; i++)
            if (word_is(p->q + s, e - s, is_values[i]))
                hit = is_values[i];
        if (!hit)
            return fail(p, MV_EMALFORMED, s, "unknown value '%s' for is: (allowed: " IS_LIST ")",
                        snip(p->q + s, e - s, sn, sizeof sn));
    }
    mv_qnode *n = new_node(p, f->kind == FK_HAS ? MV_Q_HAS : MV_Q_IS, s);
    if (n)
        n->text = mv_xstrdup(hit);
    return n;
}

/* ---- grammar ------------------------------------------------------------- */

/* The field a group applies to its leaves (NULL outside field groups). */
typedef struct gctx {
    const qfield *f;
    size_t at; /* where the field's name starts */
} gctx;

static mv_qnode *parse_or(qp *p, const gctx *g);

/* group - "(" or ")" from the '(' token lp; g for a field's group. */
static mv_qnode *group(qp *p, const tok *lp, const gctx *g)
{
    if (p->depth >= p->max_depth)
        return fail(p, MV_ELIMIT, lp->start, "the query nests deeper than max_depth (%u)",
                    p->max_depth);
    take(p, lp);
    tok t = lex(p);
    if (t.t == T_RP)
        return fail(p, MV_EMALFORMED, lp->start, "empty parentheses ()");
    if (t.t == T_EOF)
        return fail(p, MV_EMALFORMED, lp->start, "unbalanced '(': no ')' closes it");
    p->depth++;
    mv_qnode *n = parse_or(p, g);
    p->depth--;
    if (!n)
        return NULL;
    t = lex(p);
    if (t.t != T_RP) {
        mv_query_free(n);
        return fail(p, MV_EMALFORMED, lp->start, "unbalanced '(': no ')' closes it");
    }
    take(p, &t);
    return n;
}

/* at_field - a field's one-value node starts where the field's name does
 * (the index's messages about it point there). */
static mv_qnode *at_field(mv_qnode *n, const tok *ft)
{
    if (n)
        n->pos = ft->start > UINT32_MAX ? UINT32_MAX : (uint32_t)ft->start;
    return n;
}

/* field_value - the value after "name:" of the field token ft. */
static mv_qnode *field_value(qp *p, const tok *ft)
{
    const qfield *f = ft->f;
    const char *q = p->q;
    size_t v = ft->end, e = v;
    take(p, ft);
    if (v >= p->len || q[v] == ')' || space_len(q, v, p->len))
        return fail(p, MV_EMALFORMED, ft->start, "%s: needs a value right after the ':'",
                    f->name);
    if (q[v] == '(' || quote_len(q, v, p->len)) {
        tok t = lex(p); /* at v: no space to skip */
        if (t.t == T_ERR)
            return NULL;
        if (f->kind != FK_TEXT)
            return fail(p, MV_EMALFORMED, v, "%s: takes one plain value, not a %s", f->name,
                        t.t == T_LP ? "group" : "phrase");
        if (t.t == T_PHRASE) {
            take(p, &t);
            return at_field(phrase_leaf(p, &t, f), ft);
        }
        gctx g = {f, ft->start};
        return group(p, &t, &g);
    }
    if (f->kind == FK_TEXT && !(f->flags & FF_LITERAL) && q[v] == '-')
        /* the index would drop the '-' and find the very word meant to be excluded */
        return fail(p, MV_EMALFORMED, v, "'-' after %s: write -%s:word to exclude a word",
                    f->name, f->name);
    while (!is_stop(q, e, p->len))
        e++;
    p->pos = e;
    switch (f->kind) {
    case FK_TEXT:
        return at_field(text_leaf(p, v, e, f), ft);
    case FK_DATE:
        return at_field(date_leaf(p, v, e), ft);
    case FK_SIZE:
        return at_field(size_leaf(p, v, e), ft);
    default:
        return at_field(flag_leaf(p, f, v, e), ft);
    }
}

static mv_qnode *parse_unary(qp *p, const gctx *g);

static mv_qnode *parse_primary(qp *p, const gctx *g)
{
    tok t = lex(p);
    switch (t.t) {
    case T_ERR:
        return NULL;
    case T_EOF:
        return fail(p, MV_EMALFORMED, 0, "empty query");
    case T_RP:
        return fail(p, MV_EMALFORMED, t.start, "unbalanced ')': no '(' opens it");
    case T_AND:
    case T_OR:
        return fail(p, MV_EMALFORMED, t.start, "%s needs a term before it",
                    t.t == T_AND ? "AND" : "OR");
    case T_LP:
        return group(p, &t, g);
    case T_PHRASE:
        take(p, &t);
        return phrase_leaf(p, &t, g ? g->f : NULL);
    case T_WORD:
        take(p, &t);
        return text_leaf(p, t.start, t.end, g ? g->f : NULL);
    case T_FIELD:
        if (g) {
            char sn[64];
            return fail(p, MV_EMALFORMED, t.start,
                        "'%s:' inside %s:( ): a group takes one field; put %s: outside the "
                        "parentheses",
                        snip(p->q + t.start, t.end - 1 - t.start, sn, sizeof sn), g->f->name,
                        t.f->name);
        }
        return field_value(p, &t);
    default: /* NOT and '-' are parse_unary's */
        return parse_unary(p, g);
    }
}

static mv_qnode *parse_unary(qp *p, const gctx *g)
{
    tok t = lex(p);
    if (t.t != T_NOT && t.t != T_MINUS)
        return parse_primary(p, g);
    if (p->depth >= p->max_depth)
        return fail(p, MV_ELIMIT, t.start, "the query nests deeper than max_depth (%u)",
                    p->max_depth);
    take(p, &t);
    tok nt = lex(p);
    if (nt.t == T_ERR)
        return NULL;
    if (!starts_term(nt.t))
        return fail(p, MV_EMALFORMED, t.start, "%s needs a term after it",
                    t.t == T_NOT ? "NOT" : "'-'");
    p->depth++;
    mv_qnode *kid = parse_unary(p, g);
    p->depth--;
    if (!kid)
        return NULL;
    return make_not(p, kid, t.start);
}

/* list - the AND (or OR) of first and the terms that follow. */
static mv_qnode *parse_and(qp *p, const gctx *g)
{
    mv_qnode *first = parse_unary(p, g), *all = NULL;
    if (!first)
        return NULL;
    for (;;) {
        tok t = lex(p);
        if (t.t == T_AND) {
            take(p, &t);
            tok nt = lex(p);
            if (nt.t == T_ERR)
                break;
            if (!starts_term(nt.t)) {
                fail(p, MV_EMALFORMED, t.start, "AND needs a term after it");
                break;
            }
        } else if (!starts_term(t.t)) {
            break; /* OR, ')', the end, or an error already recorded */
        }
        mv_qnode *kid = parse_unary(p, g);
        if (!kid)
            break;
        if (!all) {
            all = new_node(p, MV_Q_AND, first->pos);
            if (!all) {
                mv_query_free(kid);
                break;
            }
            add_kid(all, first);
            first = NULL;
        }
        add_kid(all, kid);
    }
    if (p->st != MV_OK) {
        mv_query_free(first);
        mv_query_free(all);
        return NULL;
    }
    return all ? all : first;
}

static mv_qnode *parse_or(qp *p, const gctx *g)
{
    mv_qnode *first = parse_and(p, g), *any = NULL;
    if (!first)
        return NULL;
    for (;;) {
        tok t = lex(p);
        if (t.t != T_OR)
            break;
        take(p, &t);
        tok nt = lex(p);
        if (nt.t == T_ERR)
            break;
        if (!starts_term(nt.t)) {
            fail(p, MV_EMALFORMED, t.start, "OR needs a term after it");
            break;
        }
        mv_qnode *kid = parse_and(p, g);
        if (!kid)
            break;
        if (!any) {
            any = new_node(p, MV_Q_OR, first->pos);
            if (!any) {
                mv_query_free(kid);
                break;
            }
            add_kid(any, first);
            first = NULL;
        }
        add_kid(any, kid);
    }
    if (p->st != MV_OK) {
        mv_query_free(first);
        mv_query_free(any);
        return NULL;
    }
    return any ? any : first;
}

/* check_text - the whole query is UTF-8 without control characters
 * (tab and line ends count as spaces); fails at the first offender. */
static int check_text(qp *p)
{
    const unsigned char *s = (const unsigned char *)p->q;
    size_t i = 0;
    while (i < p->len) {
        uint32_t cp;
        size_t l = utf8_at(s + i, p->len - i, &cp);
        if (l == 0) {
            fail(p, MV_EMALFORMED, i, "invalid UTF-8 (byte 0x%02X)", s[i]);
            return -1;
        }
        if ((cp < 0x20 && !is_ascii_space((unsigned char)cp)) || (cp >= 0x7F && cp <= 0x9F)) {
            fail(p, MV_EMALFORMED, i, "control character U+%04X", (unsigned)cp);
            return -1;
        }
        i += l;
    }
    return 0;
}

mv_status mv_query_parse(const char *q, const mv_query_limits *lim, mv_qnode **out, mv_err *err)
{
    mv_assert(out);
    *out = NULL;
    size_t max_len = lim && lim->max_len ? lim->max_len : Q_DEF_MAX_LEN;
    qp p = {0};
    p.err = err;
    p.q = q ? q : "";
    p.max_depth = lim && lim->max_depth ? lim->max_depth : Q_DEF_MAX_DEPTH;
    if (p.max_depth > Q_DEPTH_CAP)
        p.max_depth = Q_DEPTH_CAP;
    p.max_nodes = lim && lim->max_nodes ? lim->max_nodes : Q_DEF_MAX_NODES;
    /* never read past max_len + 1 bytes of a huge input */
    p.len = strnlen(p.q, max_len < SIZE_MAX ? max_len + 1 : max_len);
    if (p.len > max_len)
        return mv_err_set(err, MV_ELIMIT, "the query is longer than max_len (%zu bytes)", max_len);
    if (check_text(&p) < 0)
        return p.st;

    /* "*" alone: every message */
    size_t a = 0, b = p.len, l;
    while ((l = space_len(p.q, a, p.len)) != 0)
        a += l;
    while (b > a) {
        size_t c = b - 1;
        while (c > a && ((unsigned char)p.q[c] & 0xC0) == 0x80)
            c--;
        if (!space_len(p.q, c, p.len))
            break;
        b = c;
    }
    if (b - a == 1 && p.q[a] == '*') {
        *out = new_node(&p, MV_Q_ALL, a);
        return MV_OK;
    }

    mv_qnode *n = parse_or(&p, NULL);
    if (n && p.st == MV_OK) {
        tok t = lex(&p);
        if (t.t == T_RP)
            fail(&p, MV_EMALFORMED, t.start, "unbalanced ')': no '(' opens it");
        else if (t.t != T_EOF)
            fail(&p, MV_EMALFORMED, t.start, "unexpected text"); /* the grammar leaves none */
    }
    if (p.st != MV_OK) {
        mv_query_free(n);
        return p.st;
    }
    *out = n;
    return MV_OK;
}

/* ---- dump ---------------------------------------------------------------- */

static const char *const kind_names[] = {
    [MV_Q_AND] = "and",       [MV_Q_OR] = "or",         [MV_Q_NOT] = "not",
    [MV_Q_ALL] = "all",       [MV_Q_WORD] = "word",     [MV_Q_PHRASE] = "phrase",
    [MV_Q_PREFIX] = "prefix", [MV_Q_DATE] = "date",     [MV_Q_SIZE] = "size",
    [MV_Q_HAS] = "has",       [MV_Q_IS] = "is",
};

static void dump_str(mv_buf *b, const char *s)
{
    mv_buf_append_byte(b, '"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            mv_buf_append_byte(b, '\\');
            mv_buf_append_byte(b, c);
        } else if (c < 0x20 || c == 0x7F) {
            mv_buf_printf(b, "\\x%02x", c); /* not from the parser; keeps the form one line */
        } else {
            mv_buf_append_byte(b, c);
        }
    }
    mv_buf_append_byte(b, '"');
}

static void dump_node(mv_buf *b, const mv_qnode *n)
{
    const char *k = n->kind < sizeof kind_names / sizeof kind_names[0] && kind_names[n->kind]
                        ? kind_names[n->kind]
                        : "?";
    mv_buf_printf(b, "(%s", k);
    switch (n->kind) {
    case MV_Q_WORD:
    case MV_Q_PHRASE:
    case MV_Q_PREFIX:
        mv_buf_printf(b, " %s ", mv_query_field_name(n->field));
        dump_str(b, n->text);
        break;
    case MV_Q_HAS:
    case MV_Q_IS:
        mv_buf_append_byte(b, ' ');
        dump_str(b, n->text);
        break;
    case MV_Q_DATE:
        if (n->lo == INT64_MIN)
            mv_buf_append_str(b, " -inf");
        else
            mv_buf_printf(b, " %lld", (long long)n->lo);
        if (n->hi == INT64_MAX)
            mv_buf_append_str(b, " inf");
        else
            mv_buf_printf(b, " %lld", (long long)n->hi);
        break;
    case MV_Q_SIZE:
        mv_buf_printf(b, " %llu", (unsigned long long)n->slo);
        if (n->shi == UINT64_MAX)
            mv_buf_append_str(b, " inf");
        else
            mv_buf_printf(b, " %llu", (unsigned long long)n->shi);
        break;
    default:
        break;
    }
    for (size_t i = 0; i < n->n_kids; i++) {
        mv_buf_append_byte(b, ' ');
        dump_node(b, n->kids[i]);
    }
    mv_buf_append_byte(b, ')');
}

char *mv_query_dump(const mv_qnode *n)
{
    mv_buf b = MV_BUF_INIT;
    if (n)
        dump_node(&b, n);
    else
        mv_buf_append_str(&b, "()");
    return (char *)mv_buf_steal(&b, NULL);
}
