/* SPDX-License-Identifier: MIT */
/* journal.c - unwrap Exchange / Microsoft 365 journal reports, decode
 * Postfix sub-address recipients, read X-Gm-Original-To (docs/journal.md).
 *
 * The MIME structure of a report is found by our own scan of the raw
 * bytes (rawmime.c), not by GMime: the attached original must come out
 * byte-exact (RFC 2046: the line break before a delimiter belongs to the
 * delimiter) and GMime re-serialises what it parses.  The scan only splits
 * multiparts and reads part headers; it never descends into the original.
 * GLib is used for charset conversion of the report text only.
 *
 * LIMITS (mv_journal_limits): every header block is read up to
 * max_header_bytes, multiparts are split down to max_depth, at most
 * max_parts parts are examined, the report text is decoded up to
 * max_body_bytes, max_rcpt recipients are kept and an address is at most
 * max_addr_bytes.  Part ranges at one depth are disjoint, so the work is
 * linear in the input times the depth; memory is the decoded text, the
 * recipients, and the decoded original when it came base64 / QP. */
#include "journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <glib.h>

#include "../lib/buf.h"
#include "rawmime.h"

#define MAX_TEXT_CANDIDATES 8 /* text/plain parts tried as the report text */
#define MAX_FIELD_BYTES 65536 /* Subject / Message-ID kept at most (cut at a character) */
#define DEPTH_CAP 64          /* whatever max_depth says, recursion stays shallow */

void mv_journal_limits_default(mv_journal_limits *l)
{
    l->max_rcpt = 100000;
    l->max_body_bytes = (size_t)16 << 20;
    l->max_depth = 8;
    l->max_parts = 10000;
    l->max_header_bytes = (size_t)1 << 20;
    l->max_addr_bytes = 2048;
}

/* ---- names ------------------------------------------------------------- */

static const char *const kind_names[] = {"plain", "exchange-journal", "postfix-bcc",
                                         "google-routing"};

const char *mv_source_kind_name(mv_source_kind k)
{
    if ((unsigned)k >= sizeof kind_names / sizeof kind_names[0])
        return "unknown";
    return kind_names[k];
}

int mv_source_kind_parse(const char *s, mv_source_kind *out)
{
    if (!s)
        return -1;
    for (unsigned i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (mv_source_kind)i;
            return 0;
        }
    return -1;
}

static const char *const role_names[] = {"rcpt", "to", "cc", "bcc", "recipient", "decoded",
                                         "original-to"};
#define N_ROLES (sizeof role_names / sizeof role_names[0])

const char *mv_rcpt_role_name(mv_rcpt_role role)
{
    if ((unsigned)role >= N_ROLES)
        return NULL;
    return role_names[role];
}

static const char *const jdef_names[] = {
    "journal-no-original", "journal-tnef",          "journal-bad-body", "journal-truncated",
    "journal-bad-encoding", "journal-no-end-boundary", "journal-limit",
};

char *mv_journal_defects_str(uint32_t defects, char *out, size_t n)
{
    return mv_bits_str(defects, jdef_names, sizeof jdef_names / sizeof jdef_names[0], "journal-bit",
                       out, n);
}

/* ---- small byte helpers ------------------------------------------------ */

static void trim(const uint8_t **p, size_t *n)
{
    while (*n > 0 && (mv_rm_is_wsp(**p) || **p == '\r' || **p == '\n')) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && (mv_rm_is_wsp((*p)[*n - 1]) || (*p)[*n - 1] == '\r' || (*p)[*n - 1] == '\n'))
        (*n)--;
}

static int is_ctl(uint8_t c)
{
    return c < 0x20 || c == 0x7f;
}

/* field_ok - may s appear inside "<...>" of the text form? */
static int field_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (const uint8_t *q = (const uint8_t *)s; *q; q++)
        if (is_ctl(*q) || *q == '<' || *q == '>')
            return 0;
    return 1;
}

/* ---- addresses --------------------------------------------------------- */

/* next_item - the next item of a list from *pos: split on ',' or ';' that
 * are outside quotes and angle brackets.  Returns 0 at the end. */
static int next_item(const uint8_t *s, size_t n, size_t *pos, const uint8_t **it, size_t *ilen)
{
    if (*pos >= n)
        return 0;
    size_t i = *pos;
    int quote = 0, angle = 0;
    for (; i < n; i++) {
        uint8_t c = s[i];
        if (quote) {
            if (c == '\\' && i + 1 < n)
                i++;
            else if (c == '"')
                quote = 0;
            continue;
        }
        if (c == '"')
            quote = 1;
        else if (c == '<')
            angle = 1;
        else if (c == '>')
            angle = 0;
        else if ((c == ',' || c == ';') && !angle)
            break;
    }
    *it = s + *pos;
    *ilen = i - *pos;
    *pos = i < n ? i + 1 : n;
    return 1;
}

/* norm_addr - the address in an item ("a@x", "<a@x>", "Name <a@x>"),
 * malloc'd, or NULL when it is not one we can keep: empty, over max, a
 * control byte, a stray '<' or '>', blanks outside a quoted local part, or
 * not UTF-8. */
static char *norm_addr(const uint8_t *s, size_t n, size_t max)
{
    trim(&s, &n);
    int quote = 0;
    for (size_t i = 0; i < n; i++) {
        if (quote) {
            if (s[i] == '\\' && i + 1 < n)
                i++;
            else if (s[i] == '"')
                quote = 0;
            continue;
        }
        if (s[i] == '"') {
            quote = 1;
        } else if (s[i] == '<') {
            const uint8_t *gt = memchr(s + i + 1, '>', n - i - 1);
            if (!gt)
                return NULL;
            size_t after = (size_t)(gt - s) + 1;
            /* nothing but blanks may follow the closing '>' */
            for (size_t k = after; k < n; k++)
                if (!mv_rm_is_wsp(s[k]))
                    return NULL;
            n = (size_t)(gt - (s + i + 1));
            s = s + i + 1;
            trim(&s, &n);
            break;
        }
    }
    if (n == 0 || n > max)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (is_ctl(s[i]) || s[i] == '<' || s[i] == '>')
            return NULL; /* escaped or not: the text form cannot carry it */
    quote = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (quote) {
            if (c == '\\' && i + 1 < n)
                i++;
            else if (c == '"')
                quote = 0;
            continue;
        }
        if (c == '"')
            quote = 1;
        else if (mv_rm_is_wsp(c))
            return NULL;
    }
    if (quote || !g_utf8_validate((const char *)s, (gssize)n, NULL))
        return NULL;
    return mv_xstrndup((const char *)s, n);
}

/* ---- the text form of a recipient -------------------------------------- */

char *mv_env_rcpt_format(const mv_env_rcpt *r)
{
    if (!r)
        return NULL;
    const char *role = mv_rcpt_role_name(r->role);
    if (!role || !field_ok(r->addr))
        return NULL;
    if ((r->expanded && !field_ok(r->expanded)) || (r->forwarded && !field_ok(r->forwarded)))
        return NULL;
    mv_buf b = MV_BUF_INIT;
    mv_buf_printf(&b, "%s <%s>", role, r->addr);
    if (r->expanded)
        mv_buf_printf(&b, " expanded <%s>", r->expanded);
    if (r->forwarded)
        mv_buf_printf(&b, " forwarded <%s>", r->forwarded);
    return (char *)mv_buf_steal(&b, NULL);
}

/* take_angle - at s: "<" FIELD ">", FIELD as field_ok allows; the copy in
 * *out, and the position after '>' returned; NULL if not there. */
static const char *take_angle(const char *s, char **out)
{
    if (*s != '<')
        return NULL;
    const char *e = s + 1;
    while (*e && *e != '>' && *e != '<' && !is_ctl((uint8_t)*e))
        e++;
    if (*e != '>' || e == s + 1)
        return NULL;
    *out = mv_xstrndup(s + 1, (size_t)(e - s - 1));
    return e + 1;
}

int mv_env_rcpt_parse(const char *s, mv_env_rcpt *out)
{
    mv_env_rcpt r = {0};
    memset(out, 0, sizeof *out);
    if (!s)
        return -1;
    const char *sp = strchr(s, ' ');
    if (!sp)
        return -1;
    size_t rl = (size_t)(sp - s);
    int role = -1;
    for (unsigned i = 0; i < N_ROLES; i++)
        if (strlen(role_names[i]) == rl && memcmp(s, role_names[i], rl) == 0)
            role = (int)i;
    if (role < 0)
        return -1;
    r.role = (mv_rcpt_role)role;
    const char *q = take_angle(sp + 1, &r.addr);
    if (!q)
        goto bad;
    if (strncmp(q, " expanded ", 10) == 0) {
        q = take_angle(q + 10, &r.expanded);
        if (!q)
            goto bad;
    }
    if (strncmp(q, " forwarded ", 11) == 0) {
        q = take_angle(q + 11, &r.forwarded);
        if (!q)
            goto bad;
    }
    if (*q)
        goto bad;
    *out = r;
    return 0;
bad:
    mv_env_rcpt_clear(&r);
    return -1;
}

void mv_env_rcpt_clear(mv_env_rcpt *r)
{
    if (!r)
        return;
    free(r->addr);
    free(r->expanded);
    free(r->forwarded);
    memset(r, 0, sizeof *r);
}

/* ---- detection --------------------------------------------------------- */

/* marker_generation - 2007, 2003, 1, or 0 for the header block. */
static int marker_generation(const mv_rm_hblock *hb)
{
    size_t pos = 0, nl, vl;
    const uint8_t *name, *val;
    int gen = 0;
    while (mv_rm_next_field(hb, &pos, &name, &nl, &val, &vl)) {
        if (mv_rm_ieq(name, nl, "x-ms-journal-report"))
            return 2007; /* presence; the value is normally empty */
        if (mv_rm_ieq(name, nl, "content-identifier") || mv_rm_ieq(name, nl, "content-identifer")) {
            const uint8_t *v = val;
            size_t n = vl;
            trim(&v, &n);
            if (mv_rm_ieq(v, n, "exjournalreport"))
                gen = 2003;
        } else if (gen == 0 && mv_rm_ieq(name, nl, "x-wm-journal-report")) {
            gen = 1;
        }
    }
    return gen;
}

int mv_journal_detect(const uint8_t *p, size_t n)
{
    if (!p)
        return 0;
    mv_rm_hblock hb;
    mv_rm_scan_headers(p, n, MV_JOURNAL_DETECT_HEADER_BYTES, &hb);
    return marker_generation(&hb) != 0;
}

/* ---- the MIME walk ----------------------------------------------------- */

enum { LEAF_TEXT, LEAF_ORIGINAL, LEAF_TNEF };

typedef struct leaf {
    size_t start, end; /* content bytes in the input */
    int cte;
    int attachment;
    int container; /* serial number of the multipart holding it (-1: top level) */
    int unterminated;
    char charset[MV_RM_MAX_TOKEN];
} leaf;

typedef struct walk {
    const uint8_t *p;
    mv_journal_limits lim;
    unsigned parts;
    int containers;
    uint32_t defects;
    int have_original, have_tnef;
    leaf original, tnef;
    leaf text[MAX_TEXT_CANDIDATES];
    size_t n_text;
} walk;

static void walk_entity(walk *w, size_t s, size_t e, unsigned depth, int container,
                        int unterminated);

static void walk_multipart(walk *w, const mv_rm_entity *ent, size_t body, size_t e, unsigned depth)
{
    const uint8_t *p = w->p;
    int me = w->containers++;
    size_t next = 0;
    int close = 0;
    size_t at = mv_rm_find_delim(p, body, body, e, &ent->ct, &next, &close);
    if (at == e) {
        w->defects |= MV_JDEF_BAD_BODY; /* a multipart without a single delimiter */
        return;
    }
    while (!close) {
        size_t start = next;
        size_t nnext = 0;
        int nclose = 0;
        size_t nat = mv_rm_find_delim(p, body, start, e, &ent->ct, &nnext, &nclose);
        if (nat == e) {
            walk_entity(w, start, e, depth + 1, me, 1);
            return;
        }
        walk_entity(w, start, mv_rm_content_end(p, start, nat), depth + 1, me, 0);
        if (w->parts > w->lim.max_parts)
            return;
        next = nnext;
        close = nclose;
    }
}

static void keep_leaf(leaf *dst, const mv_rm_entity *ent, size_t body, size_t e, int container,
                      int unterminated)
{
    dst->start = body;
    dst->end = e;
    dst->cte = ent->cte;
    dst->attachment = ent->attachment;
    dst->container = container;
    dst->unterminated = unterminated;
    memcpy(dst->charset, ent->ct.charset, sizeof dst->charset);
}

/* walk_entity - classify the entity p[s..e): split multiparts, remember the
 * original, a TNEF part and the text/plain candidates. */
static void walk_entity(walk *w, size_t s, size_t e, unsigned depth, int container,
                        int unterminated)
{
    if (++w->parts > w->lim.max_parts) {
        w->defects |= MV_JDEF_LIMIT;
        return;
    }
    mv_rm_hblock hb;
    mv_rm_scan_headers(w->p + s, e - s, w->lim.max_header_bytes, &hb);
    if (hb.over) {
        w->defects |= MV_JDEF_LIMIT;
        return;
    }
    mv_rm_entity ent;
    mv_rm_read_entity(&hb, &ent);
    /* a journal report is split by its first boundary parameter or not at
     * all: a bad first one is not passed over for a later one */
    if (ent.ct.bad_boundary)
        ent.ct.has_boundary = 0;
    size_t body = s + hb.body_off;
    const char *t = ent.has_ct ? ent.ct.type : "text";
    const char *st = ent.has_ct ? ent.ct.sub : "plain";
    if (strcmp(t, "multipart") == 0) {
        if (!ent.ct.has_boundary) {
            w->defects |= MV_JDEF_BAD_BODY;
            return;
        }
        if (depth >= w->lim.max_depth) {
            w->defects |= MV_JDEF_LIMIT;
            return;
        }
        walk_multipart(w, &ent, body, e, depth);
        return;
    }
    if (strcmp(t, "message") == 0 && (strcmp(st, "rfc822") == 0 || strcmp(st, "global") == 0)) {
        if (!w->have_original && hb.complete && body < e) {
            keep_leaf(&w->original, &ent, body, e, container, unterminated);
            w->have_original = 1;
        }
        return;
    }
    if (strcmp(t, "application") == 0 &&
        (strcmp(st, "ms-tnef") == 0 || strcmp(st, "vnd.ms-tnef") == 0)) {
        if (!w->have_tnef) {
            keep_leaf(&w->tnef, &ent, body, e, container, unterminated);
            w->have_tnef = 1;
        }
        return;
    }
    if (strcmp(t, "text") == 0 && strcmp(st, "plain") == 0 && w->n_text < MAX_TEXT_CANDIDATES)
        keep_leaf(&w->text[w->n_text++], &ent, body, e, container, unterminated);
}

/* ---- the report text --------------------------------------------------- */

/* The envelope read from one text part. */
typedef struct envtext {
    char *sender, *on_behalf_of, *message_id, *subject;
    mv_env_rcpt *rcpt;
    size_t n_rcpt, cap;
    uint32_t defects;
    int recognised; /* fields that belong to a report */
} envtext;

static void envtext_free(envtext *t)
{
    free(t->sender);
    free(t->on_behalf_of);
    free(t->message_id);
    free(t->subject);
    for (size_t i = 0; i < t->n_rcpt; i++)
        mv_env_rcpt_clear(&t->rcpt[i]);
    free(t->rcpt);
    memset(t, 0, sizeof *t);
}

static int is_utf8_name(const char *cs)
{
    return !cs[0] || strcmp(cs, "utf-8") == 0 || strcmp(cs, "utf8") == 0 ||
           strcmp(cs, "us-ascii") == 0 || strcmp(cs, "ascii") == 0 ||
           strcmp(cs, "unicode-1-1-utf-8") == 0;
}

/* to_utf8 - text in charset cs as a new NUL-terminated UTF-8 string
 * (malloc'd).  Undeclared or ASCII text that is not UTF-8 is taken as
 * windows-1252, which is what Exchange writes raw subjects in. */
static char *to_utf8(const uint8_t *s, size_t n, const char *cs, size_t *outlen, uint32_t *defects)
{
    const char *from = NULL;
    if (is_utf8_name(cs)) {
        if (g_utf8_validate((const char *)s, (gssize)n, NULL)) {
            *outlen = n;
            return mv_xstrndup((const char *)s, n);
        }
        *defects |= MV_JDEF_BAD_ENCODING;
        if (strncmp(cs, "utf", 3) == 0 || strncmp(cs, "unicode", 7) == 0)
            from = NULL; /* declared UTF-8 but is not: repair below */
        else
            from = "WINDOWS-1252";
    } else {
        from = cs;
    }
    if (from) {
        gsize rd = 0, wr = 0;
        GError *ge = NULL;
        gchar *c = g_convert((const gchar *)s, (gssize)n, "UTF-8", from, &rd, &wr, &ge);
        if (c && rd == n) {
            char *r = mv_xmalloc(wr + 1);
            memcpy(r, c, wr);
            r[wr] = '\0';
            g_free(c);
            *outlen = wr;
            return r;
        }
        g_free(c);
        if (ge)
            g_error_free(ge);
        *defects |= MV_JDEF_BAD_ENCODING;
    }
    gchar *v = g_utf8_make_valid((const gchar *)s, (gssize)n);
    size_t len = strlen(v); /* make_valid turns NUL into U+FFFD, so this is the length */
    char *r = mv_xstrndup(v, len);
    g_free(v);
    *outlen = len;
    return r;
}

/* decode_text - a leaf's content as UTF-8 text (malloc'd). */
static char *decode_text(const walk *w, const leaf *l, size_t *outlen, uint32_t *defects)
{
    const uint8_t *s = w->p + l->start;
    size_t n = l->end - l->start, max = w->lim.max_body_bytes;
    mv_buf b = MV_BUF_INIT;
    int bad = 0, cut = 0;
    if (l->cte == MV_RM_CTE_BASE64) {
        mv_rm_b64_decode(s, n, max, 0, &b, &bad, &cut);
    } else if (l->cte == MV_RM_CTE_QP) {
        mv_rm_qp_decode(s, n, max, &b, &bad, &cut);
    } else {
        cut = n > max;
        mv_buf_append(&b, s, cut ? max : n);
    }
    if (bad)
        *defects |= MV_JDEF_BAD_ENCODING;
    if (cut)
        *defects |= MV_JDEF_TRUNCATED;
    char *t = to_utf8(b.data ? b.data : (const uint8_t *)"", b.len, l->charset, outlen, defects);
    mv_buf_free(&b);
    return t;
}

/* keep_text - a Subject / Message-ID value: control bytes become '?',
 * cut at MAX_FIELD_BYTES on a character boundary. */
static char *keep_text(const uint8_t *v, size_t n, uint32_t *defects)
{
    trim(&v, &n);
    if (n == 0)
        return NULL;
    if (n > MAX_FIELD_BYTES) {
        n = MAX_FIELD_BYTES;
        while (n > 0 && (v[n] & 0xc0) == 0x80)
            n--;
        *defects |= MV_JDEF_BAD_BODY;
    }
    char *r = mv_xstrndup((const char *)v, n);
    for (char *q = r; *q; q++)
        if (is_ctl((uint8_t)*q) && *q != '\t')
            *q = '?';
    return r;
}

/* add_rcpt - append a recipient (takes addr); NULL when max_rcpt is full. */
static mv_env_rcpt *add_rcpt(envtext *t, const mv_journal_limits *lim, mv_rcpt_role role,
                             char *addr)
{
    if (t->n_rcpt >= lim->max_rcpt) {
        t->defects |= MV_JDEF_TRUNCATED;
        free(addr);
        return NULL;
    }
    if (t->n_rcpt == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        if (t->cap > lim->max_rcpt)
            t->cap = lim->max_rcpt;
        t->rcpt = mv_xrealloc(t->rcpt, t->cap * sizeof *t->rcpt);
    }
    mv_env_rcpt *r = &t->rcpt[t->n_rcpt++];
    memset(r, 0, sizeof *r);
    r->role = role;
    r->addr = addr;
    return r;
}

/* split_name - "Name: rest" at the start of an item; returns 1 with the
 * name and rest ranges. */
static int split_name(const uint8_t *s, size_t n, const uint8_t **name, size_t *nlen,
                      const uint8_t **rest, size_t *rlen)
{
    trim(&s, &n);
    const uint8_t *colon = memchr(s, ':', n);
    if (!colon || colon == s)
        return 0;
    size_t nl = (size_t)(colon - s);
    while (nl > 0 && mv_rm_is_wsp(s[nl - 1]))
        nl--;
    for (size_t k = 0; k < nl; k++)
        if (s[k] <= ' ' || s[k] >= 0x7f)
            return 0;
    *name = s;
    *nlen = nl;
    *rest = colon + 1;
    *rlen = n - (size_t)(colon + 1 - s);
    return 1;
}

static int role_of(const uint8_t *name, size_t nl, mv_rcpt_role *role)
{
    if (mv_rm_ieq(name, nl, "to"))
        *role = MV_ROLE_TO;
    else if (mv_rm_ieq(name, nl, "cc"))
        *role = MV_ROLE_CC;
    else if (mv_rm_ieq(name, nl, "bcc"))
        *role = MV_ROLE_BCC;
    else if (mv_rm_ieq(name, nl, "recipient") || mv_rm_ieq(name, nl, "recipients"))
        *role = MV_ROLE_RECIPIENT;
    else
        return 0;
    return 1;
}

/* set_redirect - an Expanded / Forwarded value for the last recipient. */
static void set_redirect(envtext *t, const mv_journal_limits *lim, mv_env_rcpt *last,
                         const uint8_t *name, size_t nl, const uint8_t *v, size_t vl)
{
    char *a = norm_addr(v, vl, lim->max_addr_bytes);
    if (!a || !last) {
        t->defects |= MV_JDEF_BAD_BODY;
        free(a);
        return;
    }
    char **slot = mv_rm_ieq(name, nl, "expanded") ? &last->expanded : &last->forwarded;
    if (*slot) {
        t->defects |= MV_JDEF_BAD_BODY; /* two of a kind: the first stays */
        free(a);
        return;
    }
    *slot = a;
}

/* recipient_line - "To: a[, Expanded: dl][, Forwarded: u]" and the lenient
 * forms: several addresses, the 2003 "Recipients: a, b, c" list, field
 * names inside the list. */
static void recipient_line(envtext *t, const mv_journal_limits *lim, mv_rcpt_role role,
                           const uint8_t *v, size_t vl, mv_env_rcpt **lastp)
{
    size_t pos = 0, il;
    const uint8_t *it;
    mv_env_rcpt *last = NULL;
    int dropped = 0, any = 0;
    while (next_item(v, vl, &pos, &it, &il)) {
        const uint8_t *name, *rest;
        size_t nl, rl;
        const uint8_t *ti = it;
        size_t tl = il;
        trim(&ti, &tl);
        if (tl == 0)
            continue;
        mv_rcpt_role r = role;
        if (split_name(ti, tl, &name, &nl, &rest, &rl) &&
            (mv_rm_ieq(name, nl, "expanded") || mv_rm_ieq(name, nl, "forwarded"))) {
            if (!dropped)
                set_redirect(t, lim, last, name, nl, rest, rl);
            continue;
        }
        if (split_name(ti, tl, &name, &nl, &rest, &rl) && role_of(name, nl, &r)) {
            ti = rest;
            tl = rl;
        }
        char *a = norm_addr(ti, tl, lim->max_addr_bytes);
        if (!a) {
            t->defects |= MV_JDEF_BAD_BODY;
            last = NULL;
            dropped = 1;
            continue;
        }
        any = 1;
        last = add_rcpt(t, lim, r, a);
        dropped = last == NULL;
    }
    if (!any && !dropped)
        t->defects |= MV_JDEF_BAD_BODY; /* "To:" with nothing after it */
    *lastp = last;
}

/* set_once - the first value of a single-valued field wins. */
static void set_once(envtext *t, char **slot, char *v)
{
    if (!v) {
        return;
    }
    if (*slot) {
        t->defects |= MV_JDEF_BAD_BODY;
        free(v);
        return;
    }
    *slot = v;
}

/* one_line - one logical (unfolded) line of the report text. */
static void one_line(envtext *t, const mv_journal_limits *lim, const uint8_t *s, size_t n,
                     mv_env_rcpt **last)
{
    const uint8_t *name, *v;
    size_t nl, vl;
    trim(&s, &n);
    if (n == 0)
        return;
    if (!split_name(s, n, &name, &nl, &v, &vl)) {
        t->defects |= MV_JDEF_BAD_BODY;
        *last = NULL;
        return;
    }
    mv_rcpt_role role;
    if (role_of(name, nl, &role)) {
        t->recognised++;
        recipient_line(t, lim, role, v, vl, last);
        return;
    }
    if (mv_rm_ieq(name, nl, "expanded") || mv_rm_ieq(name, nl, "forwarded")) {
        /* a redirection wrapped onto a line of its own */
        if (*last)
            set_redirect(t, lim, *last, name, nl, v, vl);
        else if (!(t->defects & MV_JDEF_TRUNCATED))
            t->defects |= MV_JDEF_BAD_BODY; /* not when it followed a dropped recipient */
        return;
    }
    *last = NULL;
    if (mv_rm_ieq(name, nl, "sender") || mv_rm_ieq(name, nl, "on-behalf-of")) {
        t->recognised++;
        char **slot = mv_rm_ieq(name, nl, "sender") ? &t->sender : &t->on_behalf_of;
        const uint8_t *tv = v;
        size_t tl = vl;
        trim(&tv, &tl);
        if (tl == 0 || (tl == 2 && tv[0] == '<' && tv[1] == '>'))
            return; /* an empty Sender (null reverse path) is no damage */
        char *a = norm_addr(tv, tl, lim->max_addr_bytes);
        if (!a)
            t->defects |= MV_JDEF_BAD_BODY;
        set_once(t, slot, a);
    } else if (mv_rm_ieq(name, nl, "subject")) {
        t->recognised++;
        set_once(t, &t->subject, keep_text(v, vl, &t->defects));
    } else if (mv_rm_ieq(name, nl, "message-id")) {
        t->recognised++;
        set_once(t, &t->message_id, keep_text(v, vl, &t->defects));
    }
    /* other "Name: value" lines are not ours to judge */
}

/* parse_text - every logical line of UTF-8 text s[0..n). */
static void parse_text(envtext *t, const mv_journal_limits *lim, const char *text, size_t n)
{
    const uint8_t *s = (const uint8_t *)text;
    mv_buf line = MV_BUF_INIT;
    mv_env_rcpt *last = NULL;
    size_t i = 0;
    if (n >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf)
        i = 3; /* a byte order mark */
    while (i < n) {
        /* one physical line: LF, CRLF or a lone CR ends it */
        size_t e = i;
        while (e < n && s[e] != '\n' && s[e] != '\r')
            e++;
        size_t next = e;
        if (next < n && s[next] == '\r')
            next++;
        if (next < n && s[next] == '\n' && (next == e || s[e] == '\r'))
            next++;
        else if (next == e && next < n)
            next++;
        int cont = line.len > 0 && e > i && mv_rm_is_wsp(s[i]);
        if (!cont && line.len > 0) {
            one_line(t, lim, line.data, line.len, &last);
            mv_buf_reset(&line);
        }
        if (cont || e > i)
            mv_buf_append(&line, s + i, e - i);
        i = next;
    }
    if (line.len > 0)
        one_line(t, lim, line.data, line.len, &last);
    mv_buf_free(&line);
}

/* ---- mv_journal_parse -------------------------------------------------- */

static void normalise_limits(const mv_journal_limits *in, mv_journal_limits *out)
{
    mv_journal_limits d;
    mv_journal_limits_default(&d);
    *out = in ? *in : d;
    if (!out->max_rcpt)
        out->max_rcpt = d.max_rcpt;
    if (!out->max_body_bytes)
        out->max_body_bytes = d.max_body_bytes;
    if (!out->max_depth)
        out->max_depth = d.max_depth;
    if (out->max_depth > DEPTH_CAP)
        out->max_depth = DEPTH_CAP;
    if (!out->max_parts)
        out->max_parts = d.max_parts;
    if (!out->max_header_bytes)
        out->max_header_bytes = d.max_header_bytes;
    if (!out->max_addr_bytes)
        out->max_addr_bytes = d.max_addr_bytes;
}

/* choose_text - read the candidate text parts in order of preference (in
 * the original's container first, inline before attachments) and keep
 * the first that holds report fields; else the first one read. */
static void choose_text(const walk *w, envtext *best)
{
    int order[MAX_TEXT_CANDIDATES];
    size_t n = 0;
    for (int pass = 0; pass < 4; pass++)
        for (size_t i = 0; i < w->n_text; i++) {
            const leaf *l = &w->text[i];
            int same = w->have_original && l->container == w->original.container;
            int want_same = pass < 2, want_inline = pass % 2 == 0;
            if (same == want_same && (!l->attachment) == want_inline)
                order[n++] = (int)i;
        }
    memset(best, 0, sizeof *best);
    int have = 0;
    for (size_t k = 0; k < n; k++) {
        envtext t = {0};
        size_t len = 0;
        char *text = decode_text(w, &w->text[order[k]], &len, &t.defects);
        parse_text(&t, &w->lim, text, len);
        free(text);
        if (t.recognised) {
            if (have)
                envtext_free(best);
            *best = t;
            return;
        }
        if (!have) {
            *best = t;
            have = 1;
        } else {
            envtext_free(&t);
        }
    }
}

static mv_status take_original(walk *w, mv_journal *out)
{
    const leaf *o = &w->original;
    const uint8_t *s = w->p + o->start;
    size_t n = o->end - o->start;
    if (o->unterminated)
        out->defects |= MV_JDEF_NO_END_BOUNDARY;
    if (o->cte == MV_RM_CTE_BASE64 || o->cte == MV_RM_CTE_QP) {
        mv_buf b = MV_BUF_INIT;
        int bad = 0, cut = 0;
        if (o->cte == MV_RM_CTE_BASE64)
            mv_rm_b64_decode(s, n, n, 0, &b, &bad, &cut);
        else
            mv_rm_qp_decode(s, n, n, &b, &bad, &cut);
        if (bad || cut)
            out->defects |= MV_JDEF_BAD_ENCODING;
        if (b.len == 0) {
            mv_buf_free(&b);
            out->defects |= MV_JDEF_NO_ORIGINAL;
            return MV_OK;
        }
        out->inner_owned = mv_buf_steal(&b, &out->inner_len);
        out->inner = out->inner_owned;
        return MV_OK;
    }
    if (o->cte == MV_RM_CTE_OTHER)
        out->defects |= MV_JDEF_BAD_ENCODING; /* an encoding we cannot undo: kept as it came */
    out->inner = s;
    out->inner_len = n;
    return MV_OK;
}

mv_status mv_journal_parse(const uint8_t *p, size_t n, const mv_journal_limits *lim,
                           mv_journal *out, mv_err *err)
{
    memset(out, 0, sizeof *out);
    if (!p && n)
        return mv_err_set(err, MV_EMALFORMED, "journal: no input");
    if (!p)
        p = (const uint8_t *)"";
    walk *w = mv_xcalloc(1, sizeof *w);
    w->p = p;
    normalise_limits(lim, &w->lim);

    /* the same bound as mv_journal_detect, so that the two always agree */
    mv_rm_hblock hb;
    mv_rm_scan_headers(p, n, MV_JOURNAL_DETECT_HEADER_BYTES, &hb);
    int gen = marker_generation(&hb);
    if (!gen) {
        free(w);
        return mv_err_set(err, MV_EMALFORMED, "not a journal report (no journal-report marker)");
    }
    out->generation = gen;
    walk_entity(w, 0, n, 0, -1, 0);
    out->defects |= w->defects;

    envtext t;
    choose_text(w, &t);
    if (w->n_text == 0 || !t.recognised)
        out->defects |= MV_JDEF_BAD_BODY;
    out->defects |= t.defects;
    out->sender = t.sender;
    out->on_behalf_of = t.on_behalf_of;
    out->message_id = t.message_id;
    out->subject = t.subject;
    out->rcpt = t.rcpt;
    out->n_rcpt = t.n_rcpt;

    if (w->have_original) {
        mv_status st = take_original(w, out);
        if (st != MV_OK) {
            free(w);
            mv_journal_free(out);
            return st;
        }
    } else {
        out->defects |= MV_JDEF_NO_ORIGINAL;
        if (w->have_tnef)
            out->defects |= MV_JDEF_TNEF;
    }
    free(w);
    return MV_OK;
}

void mv_journal_free(mv_journal *j)
{
    if (!j)
        return;
    free(j->sender);
    free(j->on_behalf_of);
    free(j->message_id);
    free(j->subject);
    for (size_t i = 0; i < j->n_rcpt; i++)
        mv_env_rcpt_clear(&j->rcpt[i]);
    free(j->rcpt);
    free(j->inner_owned);
    memset(j, 0, sizeof *j);
}

/* ---- Postfix sub-addresses --------------------------------------------- */

static int is_atext(uint8_t c)
{
    if (c >= 0x80)
        return 1; /* RFC 6531 UTF8-non-ascii */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int is_dot_atom(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.')
                return 0;
        } else if (!is_atext((uint8_t)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int is_domain(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (s[0] == '[') {
        if (n < 3 || s[n - 1] != ']')
            return 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (s[i] == '[' || s[i] == ']' || s[i] == '\\' || (uint8_t)s[i] <= ' ')
                return 0;
        return 1;
    }
    if (s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c == '.') {
            if (i + 1 < n && s[i + 1] == '.')
                return 0;
        } else if (!(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return 0;
        }
    }
    return 1;
}

char *mv_subaddr_decode(const char *rcpt, const char *base_local, char delim)
{
    if (!rcpt || !base_local || !delim)
        return NULL;
    size_t n = strlen(rcpt);
    mv_journal_limits d;
    mv_journal_limits_default(&d);
    if (n > d.max_addr_bytes)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (is_ctl((uint8_t)rcpt[i]))
            return NULL;
    if (!g_utf8_validate(rcpt, (gssize)n, NULL))
        return NULL;
    if (n >= 2 && rcpt[0] == '<' && rcpt[n - 1] == '>') {
        rcpt++;
        n -= 2;
    }
    const char *at = NULL;
    for (size_t i = n; i > 0; i--)
        if (rcpt[i - 1] == '@') {
            at = rcpt + i - 1;
            break;
        }
    if (!at || at == rcpt || (size_t)(at - rcpt) + 1 >= n)
        return NULL;
    if (!is_domain(at + 1, n - (size_t)(at - rcpt) - 1))
        return NULL; /* the archive's own domain must be a domain too */

    /* the local part, unquoted */
    size_t ll = (size_t)(at - rcpt);
    char *local = mv_xmalloc(ll + 1);
    size_t w = 0;
    char *res = NULL;
    if (rcpt[0] == '"') {
        if (ll < 2 || rcpt[ll - 1] != '"')
            goto out;
        for (size_t i = 1; i + 1 < ll; i++) {
            char c = rcpt[i];
            if (c == '\\') {
                if (i + 2 >= ll)
                    goto out; /* a backslash escaping the closing quote */
                c = rcpt[++i];
            } else if (c == '"') {
                goto out;
            }
            local[w++] = c;
        }
    } else {
        for (size_t i = 0; i < ll; i++) {
            if (rcpt[i] == '"' || rcpt[i] == '\\' || mv_rm_is_wsp((uint8_t)rcpt[i]))
                goto out;
            local[w++] = rcpt[i];
        }
    }
    local[w] = '\0';

    size_t bl = strlen(base_local);
    if (w <= bl + 1 || strncasecmp(local, base_local, bl) != 0 || local[bl] != delim)
        goto out;
    const char *ext = local + bl + 1;
    const char *eq = strrchr(ext, '=');
    if (!eq || eq == ext || eq[1] == '\0')
        goto out;
    size_t ul = (size_t)(eq - ext);
    const char *dom = eq + 1;
    if (!is_domain(dom, strlen(dom)))
        goto out;
    for (size_t i = 0; i < ul; i++)
        if (ext[i] == '<' || ext[i] == '>')
            goto out; /* cannot be kept in the text form */
    mv_buf b = MV_BUF_INIT;
    if (is_dot_atom(ext, ul)) {
        mv_buf_append(&b, ext, ul);
    } else {
        mv_buf_append_byte(&b, '"');
        for (size_t i = 0; i < ul; i++) {
            if (ext[i] == '"' || ext[i] == '\\')
                mv_buf_append_byte(&b, '\\');
            mv_buf_append_byte(&b, (uint8_t)ext[i]);
        }
        mv_buf_append_byte(&b, '"');
    }
    mv_buf_append_byte(&b, '@');
    mv_buf_append_str(&b, dom);
    res = (char *)mv_buf_steal(&b, NULL);
out:
    free(local);
    return res;
}

/* ---- Google X-Gm-Original-To ------------------------------------------- */

void mv_gm_addrs_free(char **addrs, size_t n)
{
    if (!addrs)
        return;
    for (size_t i = 0; i < n; i++)
        free(addrs[i]);
    free(addrs);
}

mv_status mv_gm_original_to(const uint8_t *p, size_t n, char ***addrs, size_t *n_addrs,
                            mv_err *err)
{
    *addrs = NULL;
    *n_addrs = 0;
    if (!p)
        return MV_OK;
    mv_journal_limits d;
    mv_journal_limits_default(&d);
    mv_rm_hblock hb;
    mv_rm_scan_headers(p, n, MV_JOURNAL_DETECT_HEADER_BYTES, &hb);
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    size_t pos = 0, nl, vl;
    const uint8_t *name, *val;
    /* lower-cased addresses seen, for the duplicate test (keys owned) */
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    mv_status st = MV_OK;
    while (st == MV_OK && mv_rm_next_field(&hb, &pos, &name, &nl, &val, &vl)) {
        if (!mv_rm_ieq(name, nl, "x-gm-original-to"))
            continue;
        size_t ul;
        char *u = mv_rm_unfold(val, vl, &ul);
        size_t ip = 0, il;
        const uint8_t *it;
        while (next_item((const uint8_t *)u, ul, &ip, &it, &il)) {
            char *a = norm_addr(it, il, d.max_addr_bytes);
            if (!a)
                continue;
            gchar *key = g_ascii_strdown(a, -1);
            if (g_hash_table_contains(seen, key)) {
                g_free(key);
                free(a);
                continue;
            }
            g_hash_table_add(seen, key);
            if (cnt == MV_GM_MAX_ADDRS) {
                free(a);
                st = mv_err_set(err, MV_ELIMIT, "X-Gm-Original-To: more than %d addresses",
                                MV_GM_MAX_ADDRS);
                break;
            }
            if (cnt == cap) {
                cap = cap ? cap * 2 : 4;
                v = mv_xrealloc(v, cap * sizeof *v);
            }
            v[cnt++] = a;
        }
        free(u);
    }
    g_hash_table_destroy(seen);
    if (st != MV_OK) {
        mv_gm_addrs_free(v, cnt);
        return st;
    }
    *addrs = v;
    *n_addrs = cnt;
    return MV_OK;
}
