/* SPDX-License-Identifier: MIT */
/* smtp.c - the SMTP/LMTP protocol engine: command parser, transaction
 * state, DATA and BDAT readers, reply queue.  No I/O (see smtp.h).
 *
 * The byte readers are written as explicit state machines whose state
 * survives between feeds, so the outcome never depends on where the
 * daemon's reads happened to cut the stream (inside CRLF.CRLF, inside a
 * command, inside a BDAT chunk).
 *
 * LIMITS: a command line is buffered up to max_command_line; message
 * data up to max_message_bytes (+1 for the NUL); pending output up to
 * MV_SMTP_OUTPUT_MAX plus one command's reply; recipients up to
 * max_recipients, each at most MV_SMTP_PATH_MAX. */
#include "smtp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/buf.h"

#define DEF_MAX_MESSAGE ((uint64_t)100 << 20)
#define DEF_MAX_RCPT 1000u
#define DEF_MAX_LINE 4096u
#define DEF_MAX_ERRORS 20u
/* Compact the output buffer once this much of its head was sent. */
#define OUT_COMPACT (MV_SMTP_OUTPUT_MAX / 2)

enum state { ST_CMD, ST_DATA, ST_BDAT };

/* Where the DATA reader stands.  BOL: just after CRLF (a '.' here is
 * stuffing or the end); DOT: CRLF "."; DOTCR: CRLF "." CR; MID: inside a
 * line; CR: a CR was stored and may yet prove bare. */
enum dstate { D_BOL, D_DOT, D_DOTCR, D_MID, D_CR };

/* A reply decided when a BDAT command arrives but sent only after its
 * chunk has been read, to stay in sync. */
typedef struct reply_spec {
    int code;
    const char *enh;
    const char *text;
} reply_spec;

static const reply_spec R_NEED_MAIL = {503, "5.5.1", "Error: need MAIL command"};
static const reply_spec R_NEED_RCPT = {503, "5.5.1", "Error: need RCPT command"};
static const reply_spec R_NO_RCPT = {554, "5.5.1", "Error: no valid recipients"};
static const reply_spec R_TOO_BIG = {552, "5.3.4", "Error: message size exceeds fixed limit"};

struct mv_smtp {
    mv_smtp_proto proto;
    char *host;
    int tls_offer, tls_required, tls_active;
    mv_smtp_limits lim;

    enum state st;
    enum mv_smtp_event ev;
    int greeted;
    char *helo;

    /* the command line being read */
    uint8_t *line;
    size_t line_len, line_cap;
    int discarding; /* over max_command_line: dropping bytes up to the LF */

    /* the transaction */
    int in_mail;
    char *mail_from;
    char **rcpt;
    size_t n_rcpt, rcpt_cap;
    unsigned rcpt_tries; /* RCPT commands after MAIL, good or bad */
    uint64_t declared_size;
    int body_8bit, body_binary, smtputf8, used_bdat;
    const reply_spec *bdat_err; /* the transaction failed during BDAT */

    /* message data */
    uint8_t *data;
    size_t len, cap;
    int oversize;
    int bare_lf, bare_cr;
    enum dstate ds;
    int bdat_prev_cr; /* the last BDAT byte was CR (a CRLF may span chunks) */

    /* the BDAT chunk being read */
    uint64_t chunk_left, chunk_size;
    int chunk_last;
    const reply_spec *chunk_err;

    /* the message waiting for the daemon's answer */
    mv_smtp_txn view;
    size_t answered;

    mv_buf out;
    size_t out_off;
    mv_smtp_counters cnt;
};

/* ---- replies ----------------------------------------------------------- */

static size_t out_pending(const mv_smtp *s)
{
    return s->out.len - s->out_off;
}

/* put_text - append text as reply text: printable ASCII only, bounded. */
static void put_text(mv_smtp *s, const char *t, size_t room)
{
    for (size_t i = 0; i < room && t[i]; i++) {
        uint8_t c = (uint8_t)t[i];
        mv_buf_append_byte(&s->out, (c < 0x20 || c >= 0x7f) ? '?' : c);
    }
}

/* reply_line - "code[-| ][enh ]text CRLF", text formatted then cleaned. */
static void reply_line(mv_smtp *s, int code, int more, const char *enh, const char *fmt, ...)
    MV_PRINTF(5, 6);
static void reply_line(mv_smtp *s, int code, int more, const char *enh, const char *fmt, ...)
{
    char text[MV_SMTP_REPLY_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    size_t start = s->out.len;
    mv_buf_printf(&s->out, "%03d%c", code, more ? '-' : ' ');
    if (enh) {
        put_text(s, enh, 16);
        mv_buf_append_byte(&s->out, ' ');
    }
    size_t used = s->out.len - start;
    put_text(s, text, MV_SMTP_REPLY_MAX - 2 - used);
    mv_buf_append(&s->out, "\r\n", 2);
}

#define REPLY(s, code, enh, ...) reply_line(s, code, 0, enh, __VA_ARGS__)

/* reply_err - a reply that counts toward max_errors. */
static void reply_err(mv_smtp *s, int code, const char *enh, const char *text)
{
    s->cnt.errors++;
    REPLY(s, code, enh, "%s", text);
}

static void close_with(mv_smtp *s, const char *enh, const char *what)
{
    if (s->ev == MV_SMTP_EV_CLOSE)
        return;
    REPLY(s, 421, enh, "%s %s", s->host, what);
    s->ev = MV_SMTP_EV_CLOSE;
}

/* ---- transaction ------------------------------------------------------- */

static void data_free(mv_smtp *s)
{
    free(s->data);
    s->data = NULL;
    s->len = s->cap = 0;
}

static void txn_reset(mv_smtp *s)
{
    s->in_mail = 0;
    free(s->mail_from);
    s->mail_from = NULL;
    for (size_t i = 0; i < s->n_rcpt; i++)
        free(s->rcpt[i]);
    s->n_rcpt = 0;
    s->rcpt_tries = 0;
    s->declared_size = 0;
    s->body_8bit = s->body_binary = s->smtputf8 = s->used_bdat = 0;
    s->bdat_err = NULL;
    data_free(s);
    s->oversize = 0;
    s->bare_lf = s->bare_cr = 0;
    s->bdat_prev_cr = 0;
    s->answered = 0;
    memset(&s->view, 0, sizeof s->view);
}

/* store - keep message bytes; past max_message_bytes nothing more is kept
 * (and what was kept is dropped: the message will be refused anyway). */
static void store(mv_smtp *s, const uint8_t *p, size_t n)
{
    s->cnt.bytes += n;
    if (s->oversize || n == 0)
        return;
    if (n > s->lim.max_message_bytes - s->len) {
        s->oversize = 1;
        data_free(s);
        return;
    }
    if (s->len + n + 1 > s->cap) {
        /* double, but never past the limit: memory stays max + 1 */
        size_t need = s->len + n + 1, cap = s->cap ? s->cap : 4096;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        if (cap > s->lim.max_message_bytes + 1)
            cap = (size_t)s->lim.max_message_bytes + 1;
        if (cap < need)
            cap = need;
        s->data = mv_xrealloc(s->data, cap);
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
}

/* message_ready - the data is complete: raise the event, or answer 552. */
static void message_ready(mv_smtp *s)
{
    s->st = ST_CMD;
    if (s->oversize) {
        if (s->proto == MV_LMTP)
            for (size_t i = 0; i < s->n_rcpt; i++)
                REPLY(s, R_TOO_BIG.code, R_TOO_BIG.enh, "<%s> %s", s->rcpt[i], R_TOO_BIG.text);
        else
            REPLY(s, R_TOO_BIG.code, R_TOO_BIG.enh, "%s", R_TOO_BIG.text);
        txn_reset(s);
        return;
    }
    if (!s->data) /* an empty message still gets a NUL-terminated buffer */
        s->data = mv_xcalloc(1, 1), s->cap = 1;
    s->data[s->len] = '\0';
    s->cnt.messages++;
    s->view.helo = s->helo ? s->helo : "";
    s->view.mail_from = s->mail_from;
    s->view.rcpt = s->rcpt;
    s->view.n_rcpt = s->n_rcpt;
    s->view.declared_size = s->declared_size;
    s->view.body_8bit = s->body_8bit;
    s->view.body_binary = s->body_binary;
    s->view.smtputf8 = s->smtputf8;
    s->view.used_bdat = s->used_bdat;
    s->view.bare_lf = s->bare_lf;
    s->view.bare_cr = s->bare_cr;
    s->view.data = s->data;
    s->view.len = s->len;
    s->answered = 0;
    s->ev = MV_SMTP_EV_MESSAGE;
}

/* ---- address and parameter syntax -------------------------------------- */

static int is_alnum(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_sp(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* is_atext - RFC 5322 atext; UTF-8 bytes are checked as a whole later. */
static int is_atext(uint8_t c)
{
    return is_alnum(c) || c >= 0x80 || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* utf8_ok - well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static int utf8_ok(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* domain_ok - a domain (LDH labels, or U-labels in UTF-8) or an address
 * literal "[...]" (RFC 5321 4.1.2/4.1.3, dcontent checked loosely). */
static int domain_ok(const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (p[0] == '[') {
        if (n < 3 || p[n - 1] != ']')
            return 0;
        for (size_t i = 1; i < n - 1; i++)
            if (p[i] < 33 || p[i] > 126 || p[i] == '[' || p[i] == ']' || p[i] == '\\')
                return 0;
        return 1;
    }
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (is_alnum(p[i]) || p[i] == '-' || p[i] == '_' || p[i] >= 0x80) {
            label++; /* '_' is not LDH, but real MTAs send it in host names */
        } else {
            return 0;
        }
    }
    return label > 0;
}

/* mailbox_ok - Local-part "@" Domain; the local part is a dot-string
 * (dots anywhere: some carriers really send "a..b") or a quoted string.
 * "postmaster" alone is a legal forward-path (RFC 5321 4.1.1.3). */
static int mailbox_ok(const uint8_t *p, size_t n, int allow_postmaster)
{
    size_t i = 0;
    if (n > 0 && p[0] == '"') {
        for (i = 1; i < n && p[i] != '"'; i++) {
            if (p[i] == '\\') {
                if (++i >= n || p[i] < 32 || p[i] > 126)
                    return 0;
            } else if (p[i] < 32 || p[i] == 127) {
                return 0;
            }
        }
        if (i >= n)
            return 0;
        i++; /* the closing quote */
    } else {
        while (i < n && (is_atext(p[i]) || p[i] == '.'))
            i++;
        if (i == 0)
            return 0;
    }
    if (i == n)
        return allow_postmaster && n == 10 && strncasecmp((const char *)p, "postmaster", 10) == 0;
    if (p[i] != '@')
        return 0;
    return domain_ok(p + i + 1, n - i - 1);
}

enum path_result { PATH_OK, PATH_NULL, PATH_SYNTAX, PATH_LONG };

/* parse_path - a path at p[0..n): "<" [A-d-l ":"] Mailbox ">", or "<>",
 * or (being liberal, as Postfix is by default) a bare mailbox without
 * brackets.  On PATH_OK/PATH_NULL, *box and *box_len give the mailbox without
 * brackets and source route, *end the offset just past the path. */
static enum path_result parse_path(const uint8_t *p, size_t n, int allow_postmaster,
                                   const uint8_t **box, size_t *box_len, size_t *end)
{
    size_t close;
    const uint8_t *in;
    size_t in_len;
    if (n > 0 && p[0] == '<') {
        int quoted = 0;
        for (close = 1; close < n; close++) {
            if (quoted && p[close] == '\\' && close + 1 < n)
                close++;
            else if (p[close] == '"')
                quoted = !quoted;
            else if (!quoted && (p[close] == '>' || p[close] == '<'))
                break;
        }
        if (close >= n || p[close] != '>')
            return close > MV_SMTP_PATH_MAX ? PATH_LONG : PATH_SYNTAX;
        if (close + 1 > MV_SMTP_PATH_MAX)
            return PATH_LONG;
        in = p + 1;
        in_len = close - 1;
        *end = close + 1;
    } else {
        for (close = 0; close < n && !is_sp(p[close]); close++)
            if (p[close] == '<' || p[close] == '>')
                return PATH_SYNTAX;
        if (close == 0)
            return PATH_SYNTAX;
        if (close + 2 > MV_SMTP_PATH_MAX)
            return PATH_LONG;
        in = p;
        in_len = close;
        *end = close;
    }
    if (in_len == 0) {
        *box = in;
        *box_len = 0;
        return p[0] == '<' ? PATH_NULL : PATH_SYNTAX;
    }
    if (in[0] == '@') { /* source route: "@a,@b:" - checked, then dropped */
        const uint8_t *colon = memchr(in, ':', in_len);
        if (!colon)
            return PATH_SYNTAX;
        size_t rl = (size_t)(colon - in), k = 0;
        while (k < rl) {
            if (in[k] != '@')
                return PATH_SYNTAX;
            size_t e = k + 1;
            while (e < rl && in[e] != ',')
                e++;
            if (!domain_ok(in + k + 1, e - k - 1))
                return PATH_SYNTAX;
            k = e + 1;
            if (e < rl && k >= rl)
                return PATH_SYNTAX; /* a trailing comma */
        }
        in_len -= rl + 1;
        in = colon + 1;
    }
    if (!mailbox_ok(in, in_len, allow_postmaster) || !utf8_ok(in, in_len))
        return PATH_SYNTAX;
    *box = in;
    *box_len = in_len;
    return PATH_OK;
}

static int has_8bit(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80)
            return 1;
    return 0;
}

/* A parsed esmtp-param: keyword and optional value (RFC 5321 4.1.2, with
 * RFC 6531's UTF-8 values). */
typedef struct param {
    const uint8_t *kw, *val;
    size_t kw_len, val_len;
    int has_val;
} param;

/* next_param - the parameter at *pos in p[0..n), skipping blanks; 1 with
 * *pr filled, 0 at the end, -1 when malformed. */
static int next_param(const uint8_t *p, size_t n, size_t *pos, param *pr)
{
    size_t i = *pos;
    while (i < n && is_sp(p[i]))
        i++;
    if (i == n)
        return 0;
    size_t k = i;
    if (!is_alnum(p[k]))
        return -1;
    while (k < n && (is_alnum(p[k]) || p[k] == '-'))
        k++;
    pr->kw = p + i;
    pr->kw_len = k - i;
    pr->has_val = 0;
    pr->val = NULL;
    pr->val_len = 0;
    if (k < n && p[k] == '=') {
        size_t v = ++k;
        while (k < n && !is_sp(p[k])) {
            if (p[k] < 33 || p[k] == '=' || p[k] == 127)
                return -1;
            k++;
        }
        if (k == v || !utf8_ok(p + v, k - v))
            return -1;
        pr->has_val = 1;
        pr->val = p + v;
        pr->val_len = k - v;
    }
    if (k < n && !is_sp(p[k]))
        return -1;
    *pos = k;
    return 1;
}

static int word_is(const uint8_t *p, size_t n, const char *w)
{
    return n == strlen(w) && strncasecmp((const char *)p, w, n) == 0;
}

/* parse_u64 - all digits, no overflow; 1 ok, 0 not a number, -1 overflow. */
static int parse_u64(const uint8_t *p, size_t n, uint64_t *v)
{
    if (n == 0)
        return 0;
    uint64_t r = 0;
    int over = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        unsigned d = (unsigned)(p[i] - '0');
        if (r > (UINT64_MAX - d) / 10)
            over = 1;
        else
            r = r * 10 + d;
    }
    *v = r;
    return over ? -1 : 1;
}

/* ---- commands ---------------------------------------------------------- */

/* skip_prefix - args start with "FROM:" / "TO:" (any case); returns the
 * offset after it and the blanks some clients put there, or 0. */
static size_t skip_prefix(const uint8_t *a, size_t n, const char *pre)
{
    size_t pl = strlen(pre);
    if (n < pl || strncasecmp((const char *)a, pre, pl) != 0)
        return 0;
    while (pl < n && is_sp(a[pl]))
        pl++;
    return pl;
}

static void cmd_helo(mv_smtp *s, const uint8_t *a, size_t n, int kind)
{
    static const char *names[] = {"HELO", "EHLO", "LHLO"};
    if (s->proto == MV_LMTP && kind != 2) {
        reply_err(s, 500, "5.5.1", "Error: this is LMTP, use LHLO");
        return;
    }
    if (s->proto == MV_SMTP && kind == 2) {
        reply_err(s, 500, "5.5.2", "Error: command not recognized");
        return;
    }
    if (n == 0) {
        s->cnt.errors++;
        REPLY(s, 501, "5.5.4", "Syntax: %s hostname", names[kind]);
        return;
    }
    if (n > MV_SMTP_HELO_MAX) {
        reply_err(s, 501, "5.5.4", "Error: hostname too long");
        return;
    }
    txn_reset(s);
    free(s->helo);
    s->helo = mv_xstrndup((const char *)a, n);
    s->greeted = 1;
    if (kind == 0) {
        REPLY(s, 250, NULL, "%s", s->host);
        return;
    }
    reply_line(s, 250, 1, NULL, "%s", s->host);
    reply_line(s, 250, 1, NULL, "PIPELINING");
    reply_line(s, 250, 1, NULL, "SIZE %llu", (unsigned long long)s->lim.max_message_bytes);
    reply_line(s, 250, 1, NULL, "8BITMIME");
    reply_line(s, 250, 1, NULL, "ENHANCEDSTATUSCODES");
    if (s->tls_offer && !s->tls_active)
        reply_line(s, 250, 1, NULL, "STARTTLS");
    reply_line(s, 250, 1, NULL, "SMTPUTF8");
    reply_line(s, 250, 0, NULL, "CHUNKING");
}

static void cmd_mail(mv_smtp *s, const uint8_t *a, size_t n)
{
    if (!s->greeted) {
        reply_err(s, 503, "5.5.1",
                  s->proto == MV_LMTP ? "Error: send LHLO first" : "Error: send HELO/EHLO first");
        return;
    }
    if (s->tls_required && !s->tls_active) {
        reply_err(s, 530, "5.7.0", "Must issue a STARTTLS command first");
        return;
    }
    if (s->in_mail) {
        reply_err(s, 503, "5.5.1", "Error: nested MAIL command");
        return;
    }
    size_t off = skip_prefix(a, n, "FROM:");
    if (off == 0) {
        reply_err(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
        return;
    }
    const uint8_t *box;
    size_t box_len, end;
    switch (parse_path(a + off, n - off, 0, &box, &box_len, &end)) {
    case PATH_SYNTAX:
        reply_err(s, 501, "5.1.7", "Error: bad sender address syntax");
        return;
    case PATH_LONG:
        reply_err(s, 501, "5.1.7", "Error: sender address too long");
        return;
    default:
        break;
    }
    end += off;
    if (end < n && !is_sp(a[end])) {
        reply_err(s, 501, "5.1.7", "Error: bad sender address syntax");
        return;
    }
    uint64_t size = 0;
    int b8 = 0, bbin = 0, utf8 = 0, too_big = 0, r;
    param pr;
    while ((r = next_param(a, n, &end, &pr)) == 1) {
        if (word_is(pr.kw, pr.kw_len, "SIZE")) {
            int k = pr.has_val ? parse_u64(pr.val, pr.val_len, &size) : 0;
            if (k == 0) {
                reply_err(s, 501, "5.5.4", "Syntax: SIZE=number");
                return;
            }
            if (k < 0 || size > s->lim.max_message_bytes)
                too_big = 1;
        } else if (word_is(pr.kw, pr.kw_len, "BODY")) {
            b8 = bbin = 0;
            if (pr.has_val && word_is(pr.val, pr.val_len, "8BITMIME"))
                b8 = 1;
            else if (pr.has_val && word_is(pr.val, pr.val_len, "BINARYMIME"))
                bbin = 1;
            else if (!pr.has_val || !word_is(pr.val, pr.val_len, "7BIT")) {
                reply_err(s, 501, "5.5.4", "Syntax: BODY=7BIT|8BITMIME|BINARYMIME");
                return;
            }
        } else if (word_is(pr.kw, pr.kw_len, "SMTPUTF8")) {
            if (pr.has_val) {
                reply_err(s, 501, "5.5.4", "Syntax: SMTPUTF8 takes no value");
                return;
            }
            utf8 = 1;
        }
        /* AUTH=, RET=, ENVID= and the unknown: well-formed, so ignored */
    }
    if (r < 0) {
        reply_err(s, 501, "5.5.4", "Error: malformed MAIL parameter");
        return;
    }
    if (too_big) {
        REPLY(s, R_TOO_BIG.code, R_TOO_BIG.enh, "%s", R_TOO_BIG.text);
        return;
    }
    if (!utf8 && has_8bit(box, box_len)) {
        reply_err(s, 553, "5.6.7", "Error: non-ASCII address requires SMTPUTF8");
        return;
    }
    txn_reset(s);
    s->in_mail = 1;
    s->mail_from = mv_xstrndup((const char *)box, box_len);
    s->declared_size = size;
    s->body_8bit = b8;
    s->body_binary = bbin;
    s->smtputf8 = utf8;
    REPLY(s, 250, "2.1.0", "Ok");
}

static void cmd_rcpt(mv_smtp *s, const uint8_t *a, size_t n)
{
    if (!s->in_mail) {
        reply_err(s, 503, "5.5.1", "Error: need MAIL command");
        return;
    }
    s->rcpt_tries++;
    size_t off = skip_prefix(a, n, "TO:");
    if (off == 0) {
        reply_err(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
        return;
    }
    const uint8_t *box;
    size_t box_len, end;
    enum path_result pr_res = parse_path(a + off, n - off, 1, &box, &box_len, &end);
    end += off;
    if (pr_res == PATH_LONG) {
        reply_err(s, 501, "5.1.3", "Error: recipient address too long");
        return;
    }
    if (pr_res != PATH_OK || (end < n && !is_sp(a[end]))) {
        reply_err(s, 501, "5.1.3", "Error: bad recipient address syntax");
        return;
    }
    int r;
    param pr;
    while ((r = next_param(a, n, &end, &pr)) == 1)
        ; /* NOTIFY=, ORCPT= and others: tolerated, not used */
    if (r < 0) {
        reply_err(s, 501, "5.5.4", "Error: malformed RCPT parameter");
        return;
    }
    if (!s->smtputf8 && has_8bit(box, box_len)) {
        reply_err(s, 553, "5.6.7", "Error: non-ASCII address requires SMTPUTF8");
        return;
    }
    if (s->n_rcpt >= s->lim.max_recipients) {
        REPLY(s, 452, "4.5.3", "Error: too many recipients");
        return;
    }
    if (s->n_rcpt == s->rcpt_cap) {
        s->rcpt_cap = s->rcpt_cap ? s->rcpt_cap * 2 : 8;
        s->rcpt = mv_xrealloc(s->rcpt, s->rcpt_cap * sizeof *s->rcpt);
    }
    s->rcpt[s->n_rcpt++] = mv_xstrndup((const char *)box, box_len);
    REPLY(s, 250, "2.1.5", "Ok");
}

/* txn_check - what DATA or BDAT would be refused with (NULL: nothing). */
static const reply_spec *txn_check(const mv_smtp *s)
{
    if (!s->in_mail)
        return &R_NEED_MAIL;
    if (s->rcpt_tries == 0)
        return &R_NEED_RCPT;
    if (s->n_rcpt == 0) /* RFC 2920 3.1 / 5321 3.3: all RCPTs failed in a pipeline */
        return &R_NO_RCPT;
    return NULL;
}

static void cmd_data(mv_smtp *s, const uint8_t *a, size_t n)
{
    (void)a;
    if (n) {
        reply_err(s, 501, "5.5.4", "Syntax: DATA");
        return;
    }
    const reply_spec *e = txn_check(s);
    if (e) {
        if (e->code == 503)
            s->cnt.errors++;
        REPLY(s, e->code, e->enh, "%s", e->text);
        return;
    }
    if (s->body_binary) {
        reply_err(s, 503, "5.5.1", "Error: BODY=BINARYMIME requires BDAT");
        return;
    }
    if (s->used_bdat) {
        reply_err(s, 503, "5.5.1", "Error: DATA cannot follow BDAT");
        return;
    }
    REPLY(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
    s->st = ST_DATA;
    s->ds = D_BOL; /* the CRLF ending DATA is the first CRLF of CRLF.CRLF */
}

/* reply_spec_out - a refusal after a message's data: one line per
 * recipient for LMTP (RFC 2033), else one. */
static void reply_spec_out(mv_smtp *s, const reply_spec *e, int per_rcpt)
{
    if (per_rcpt && s->proto == MV_LMTP && s->n_rcpt > 0) {
        for (size_t i = 0; i < s->n_rcpt; i++)
            REPLY(s, e->code, e->enh, "<%s> %s", s->rcpt[i], e->text);
    } else {
        REPLY(s, e->code, e->enh, "%s", e->text);
    }
}

/* chunk_done - the announced octets of a BDAT chunk are all read. */
static void chunk_done(mv_smtp *s)
{
    s->st = ST_CMD;
    if (s->chunk_err) {
        reply_spec_out(s, s->chunk_err, s->chunk_last);
        if (s->chunk_last)
            txn_reset(s);
        return;
    }
    if (!s->chunk_last) {
        REPLY(s, 250, "2.0.0", "%llu octets received", (unsigned long long)s->chunk_size);
        return;
    }
    if (s->bdat_prev_cr)
        s->bare_cr++; /* the message ended on a CR */
    s->bdat_prev_cr = 0;
    message_ready(s);
}

static void cmd_bdat(mv_smtp *s, const uint8_t *a, size_t n)
{
    size_t k = 0;
    while (k < n && !is_sp(a[k]))
        k++;
    uint64_t size = 0;
    int num = parse_u64(a, k, &size);
    size_t rest = k;
    while (rest < n && is_sp(a[rest]))
        rest++;
    int last = 0;
    if (rest < n) {
        last = word_is(a + rest, n - rest, "LAST");
        if (!last || rest == k)
            num = 0;
    }
    if (num == 0) {
        /* the chunk's end is unknown, so the stream cannot be resynchronized:
         * reading its bytes as commands would execute message content */
        s->cnt.errors++;
        REPLY(s, 501, "5.5.4", "Syntax: BDAT chunk-size [LAST]; closing");
        s->ev = MV_SMTP_EV_CLOSE;
        return;
    }
    if (num < 0 || size > s->lim.max_message_bytes) {
        /* rather than read gigabytes only to refuse them */
        REPLY(s, R_TOO_BIG.code, R_TOO_BIG.enh, "%s; closing", R_TOO_BIG.text);
        s->ev = MV_SMTP_EV_CLOSE;
        return;
    }
    const reply_spec *e = txn_check(s);
    if (!e && s->bdat_err)
        e = s->bdat_err;
    if (!e && size > s->lim.max_message_bytes - s->len)
        e = s->bdat_err = &R_TOO_BIG;
    if (e && e->code == 503)
        s->cnt.errors++;
    if (!e)
        s->used_bdat = 1;
    s->chunk_err = e;
    s->chunk_last = last;
    s->chunk_size = s->chunk_left = size;
    s->st = ST_BDAT;
    if (size == 0)
        chunk_done(s);
}

static void cmd_starttls(mv_smtp *s, const uint8_t *a, size_t n)
{
    (void)a;
    if (!s->tls_offer) {
        reply_err(s, 502, "5.5.1", "Error: command not implemented");
        return;
    }
    if (s->tls_active) {
        reply_err(s, 503, "5.5.1", "Error: TLS already active");
        return;
    }
    if (n) {
        reply_err(s, 501, "5.5.4", "Syntax: STARTTLS");
        return;
    }
    if (s->in_mail) {
        reply_err(s, 503, "5.5.1", "Error: MAIL transaction in progress");
        return;
    }
    REPLY(s, 220, "2.0.0", "Ready to start TLS");
    s->ev = MV_SMTP_EV_STARTTLS;
}

/* process_line - one command line, terminator removed. */
static void process_line(mv_smtp *s, const uint8_t *l, size_t n)
{
    s->cnt.commands++;
    if (s->cnt.errors >= s->lim.max_errors) {
        close_with(s, "4.7.0", "Error: too many errors");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if ((l[i] < 0x20 && l[i] != '\t') || l[i] == 0x7f) {
            reply_err(s, 500, "5.5.2", "Error: bad character in command");
            return;
        }
    while (n > 0 && is_sp(l[n - 1]))
        n--;
    size_t vl = 0;
    while (vl < n && !is_sp(l[vl]))
        vl++;
    size_t ao = vl;
    while (ao < n && is_sp(l[ao]))
        ao++;
    const uint8_t *a = l + ao;
    size_t an = n - ao;

    if (word_is(l, vl, "EHLO"))
        cmd_helo(s, a, an, 1);
    else if (word_is(l, vl, "HELO"))
        cmd_helo(s, a, an, 0);
    else if (word_is(l, vl, "LHLO"))
        cmd_helo(s, a, an, 2);
    else if (word_is(l, vl, "MAIL"))
        cmd_mail(s, a, an);
    else if (word_is(l, vl, "RCPT"))
        cmd_rcpt(s, a, an);
    else if (word_is(l, vl, "DATA"))
        cmd_data(s, a, an);
    else if (word_is(l, vl, "BDAT"))
        cmd_bdat(s, a, an);
    else if (word_is(l, vl, "RSET")) {
        if (an) {
            reply_err(s, 501, "5.5.4", "Syntax: RSET");
            return;
        }
        txn_reset(s);
        REPLY(s, 250, "2.0.0", "Ok");
    } else if (word_is(l, vl, "NOOP")) {
        REPLY(s, 250, "2.0.0", "Ok");
    } else if (word_is(l, vl, "QUIT")) {
        REPLY(s, 221, "2.0.0", "Bye");
        s->ev = MV_SMTP_EV_CLOSE;
    } else if (word_is(l, vl, "VRFY")) {
        if (!an)
            reply_err(s, 501, "5.5.4", "Syntax: VRFY address");
        else
            REPLY(s, 252, "2.0.0", "Cannot VRFY user, but will accept message and attempt "
                                   "delivery");
    } else if (word_is(l, vl, "HELP")) {
        REPLY(s, 214, "2.0.0", "Commands: %s MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP%s",
              s->proto == MV_LMTP ? "LHLO" : "EHLO HELO",
              s->tls_offer && !s->tls_active ? " STARTTLS" : "");
    } else if (word_is(l, vl, "STARTTLS")) {
        cmd_starttls(s, a, an);
    } else if (word_is(l, vl, "EXPN")) {
        reply_err(s, 502, "5.5.1", "Error: command not implemented");
    } else {
        reply_err(s, 500, "5.5.2", "Error: command not recognized");
    }
}

/* ---- byte readers ------------------------------------------------------ */

/* feed_cmd - bytes of command lines; returns bytes consumed.  Stops after
 * each complete line so the caller sees state changes at once. */
static size_t feed_cmd(mv_smtp *s, const uint8_t *p, size_t n)
{
    const uint8_t *lf = memchr(p, '\n', n);
    size_t take = lf ? (size_t)(lf - p) : n; /* bytes before the LF */
    if (!s->discarding) {
        size_t room = s->lim.max_command_line - 1 - s->line_len; /* keep 1 for the LF */
        if (take > room) {
            s->discarding = 1;
            s->line_len = 0;
        } else {
            if (s->line_len + take > s->line_cap) {
                size_t cap = s->line_cap;
                while (cap < s->line_len + take)
                    cap *= 2;
                if (cap > s->lim.max_command_line)
                    cap = s->lim.max_command_line;
                s->line = mv_xrealloc(s->line, cap);
                s->line_cap = cap;
            }
            memcpy(s->line + s->line_len, p, take);
            s->line_len += take;
        }
    }
    if (!lf)
        return n;
    if (s->discarding) {
        s->discarding = 0;
        s->cnt.commands++;
        if (s->cnt.errors >= s->lim.max_errors)
            close_with(s, "4.7.0", "Error: too many errors");
        else
            reply_err(s, 500, "5.5.2", "Error: command line too long");
    } else {
        size_t len = s->line_len;
        if (len > 0 && s->line[len - 1] == '\r')
            len--;
        s->line_len = 0;
        process_line(s, s->line, len);
    }
    return take + 1;
}

/* feed_data - DATA content: CRLF-delimited lines, dot-unstuffed, ended
 * only by CRLF "." CRLF.  Returns bytes consumed. */
static size_t feed_data(mv_smtp *s, const uint8_t *p, size_t n)
{
    static const uint8_t cr = '\r';
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        switch (s->ds) {
        case D_BOL:
            if (c == '.') {
                s->ds = D_DOT; /* dropped: stuffing, or the end */
                i++;
                continue;
            }
            break;
        case D_DOT:
            if (c == '\r') {
                s->ds = D_DOTCR;
                i++;
                continue;
            }
            break; /* ".x": the dot was stuffing */
        case D_DOTCR:
            if (c == '\n') {
                message_ready(s);
                return i + 1;
            }
            store(s, &cr, 1); /* ".CRx": a bare CR on a stuffed line */
            s->bare_cr++;
            break;
        case D_CR:
            if (c == '\n') {
                store(s, &c, 1);
                s->ds = D_BOL;
                i++;
                continue;
            }
            s->bare_cr++;
            break;
        case D_MID:
            break;
        }
        /* inside a line */
        s->ds = D_MID;
        if (c == '\r') {
            store(s, &c, 1);
            s->ds = D_CR;
            i++;
        } else if (c == '\n') {
            store(s, &c, 1); /* never a line end in data */
            s->bare_lf++;
            i++;
        } else {
            size_t j = i + 1;
            while (j < n && p[j] != '\r' && p[j] != '\n')
                j++;
            store(s, p + i, j - i);
            i = j;
        }
    }
    return n;
}

/* feed_bdat - exactly chunk_left octets, kept as they are. */
static size_t feed_bdat(mv_smtp *s, const uint8_t *p, size_t n)
{
    size_t take = n;
    if (take > s->chunk_left)
        take = (size_t)s->chunk_left;
    if (!s->chunk_err) {
        for (size_t i = 0; i < take; i++) {
            if (s->bdat_prev_cr && p[i] != '\n')
                s->bare_cr++;
            if (p[i] == '\n' && !s->bdat_prev_cr)
                s->bare_lf++;
            s->bdat_prev_cr = p[i] == '\r';
        }
        store(s, p, take);
    }
    s->chunk_left -= take;
    if (s->chunk_left == 0)
        chunk_done(s);
    return take;
}

/* ---- public ------------------------------------------------------------ */

void mv_smtp_limits_default(mv_smtp_limits *l)
{
    l->max_message_bytes = DEF_MAX_MESSAGE;
    l->max_recipients = DEF_MAX_RCPT;
    l->max_command_line = DEF_MAX_LINE;
    l->max_errors = DEF_MAX_ERRORS;
}

mv_smtp *mv_smtp_new(const mv_smtp_opts *o)
{
    mv_smtp *s = mv_xcalloc(1, sizeof *s);
    mv_smtp_limits def;
    mv_smtp_limits_default(&def);
    s->proto = o->proto == MV_LMTP ? MV_LMTP : MV_SMTP;
    s->tls_offer = o->tls_offer != 0;
    s->tls_required = o->tls_required != 0;
    s->lim = o->lim;
    if (!s->lim.max_message_bytes)
        s->lim.max_message_bytes = def.max_message_bytes;
    if (s->lim.max_message_bytes > SIZE_MAX / 2)
        s->lim.max_message_bytes = SIZE_MAX / 2;
    if (!s->lim.max_recipients)
        s->lim.max_recipients = def.max_recipients;
    if (!s->lim.max_command_line)
        s->lim.max_command_line = def.max_command_line;
    if (s->lim.max_command_line < MV_SMTP_COMMAND_LINE_MIN)
        s->lim.max_command_line = MV_SMTP_COMMAND_LINE_MIN;
    if (!s->lim.max_errors)
        s->lim.max_errors = def.max_errors;
    s->line_cap = 256; /* grows up to max_command_line */
    s->line = mv_xmalloc(s->line_cap);

    const char *h = o->hostname && *o->hostname ? o->hostname : "localhost";
    size_t hl = strnlen(h, MV_SMTP_HELO_MAX);
    s->host = mv_xstrndup(h, hl);
    for (size_t i = 0; i < hl; i++)
        if ((uint8_t)s->host[i] <= 0x20 || (uint8_t)s->host[i] >= 0x7f)
            s->host[i] = '?';
    REPLY(s, 220, NULL, "%s %s ready", s->host, s->proto == MV_LMTP ? "LMTP" : "ESMTP");
    return s;
}

void mv_smtp_free(mv_smtp *s)
{
    if (!s)
        return;
    txn_reset(s);
    free(s->rcpt);
    free(s->helo);
    free(s->host);
    free(s->line);
    mv_buf_free(&s->out);
    free(s);
}

size_t mv_smtp_feed(mv_smtp *s, const uint8_t *p, size_t n)
{
    size_t used = 0;
    while (used < n && s->ev == MV_SMTP_EV_NONE) {
        switch (s->st) {
        case ST_CMD:
            if (out_pending(s) > MV_SMTP_OUTPUT_MAX)
                return used;
            used += feed_cmd(s, p + used, n - used);
            break;
        case ST_DATA:
            used += feed_data(s, p + used, n - used);
            break;
        case ST_BDAT:
            used += feed_bdat(s, p + used, n - used);
            break;
        }
    }
    return used;
}

int mv_smtp_in_data(const mv_smtp *s)
{
    return s->st != ST_CMD || (s->in_mail && s->used_bdat);
}

enum mv_smtp_event mv_smtp_event(const mv_smtp *s)
{
    return s->ev;
}

const uint8_t *mv_smtp_output(const mv_smtp *s, size_t *n)
{
    *n = out_pending(s);
    return s->out.data ? s->out.data + s->out_off : (const uint8_t *)"";
}

void mv_smtp_output_consumed(mv_smtp *s, size_t n)
{
    if (n >= out_pending(s)) {
        s->out.len = s->out_off = 0;
        return;
    }
    s->out_off += n;
    if (s->out_off >= OUT_COMPACT) {
        memmove(s->out.data, s->out.data + s->out_off, out_pending(s));
        s->out.len -= s->out_off;
        s->out_off = 0;
    }
}

const mv_smtp_txn *mv_smtp_message(const mv_smtp *s)
{
    return s->ev == MV_SMTP_EV_MESSAGE ? &s->view : NULL;
}

uint8_t *mv_smtp_take_data(mv_smtp *s, size_t *len)
{
    *len = 0;
    if (s->ev != MV_SMTP_EV_MESSAGE || !s->data)
        return NULL;
    uint8_t *d = s->data;
    *len = s->len;
    s->data = NULL;
    s->len = s->cap = 0;
    s->view.data = NULL;
    s->view.len = 0;
    return d;
}

/* fix_code - a daemon-supplied code and enhanced code made sendable. */
static void fix_code(int *code, const char **enh, char *buf, size_t n)
{
    if (*code < 200 || *code > 599 || (*code >= 300 && *code < 400)) {
        *code = 451;
        *enh = "4.3.0";
        return;
    }
    const char *e = *enh;
    char cls = (char)('0' + *code / 100);
    int ok = e && e[0] == cls && e[1] == '.';
    if (ok) { /* class "." 1*3digit "." 1*3digit */
        size_t i = 2, d = 0;
        for (; e[i] >= '0' && e[i] <= '9'; i++)
            d++;
        ok = d >= 1 && d <= 3 && e[i] == '.';
        d = 0;
        for (i++; ok && e[i] >= '0' && e[i] <= '9'; i++)
            d++;
        ok = ok && d >= 1 && d <= 3 && e[i] == '\0';
    }
    if (!ok) {
        snprintf(buf, n, "%c.0.0", cls);
        *enh = buf;
    }
}

void mv_smtp_reply_rcpt(mv_smtp *s, int code, const char *enh, const char *text)
{
    if (s->ev != MV_SMTP_EV_MESSAGE)
        return;
    char eb[8];
    fix_code(&code, &enh, eb, sizeof eb);
    if (!text)
        text = code < 300 ? "Ok" : "Error";
    if (s->proto == MV_LMTP)
        REPLY(s, code, enh, "<%s> %s", s->rcpt[s->answered], text);
    else
        REPLY(s, code, enh, "%s", text);
    s->answered++;
    if (s->proto == MV_SMTP || s->answered >= s->n_rcpt) {
        txn_reset(s);
        s->ev = MV_SMTP_EV_NONE;
    }
}

void mv_smtp_reply_accept(mv_smtp *s, const char *queue_id)
{
    char text[MV_SMTP_REPLY_MAX];
    while (s->ev == MV_SMTP_EV_MESSAGE) {
        int id = queue_id && *queue_id;
        if (s->proto == MV_LMTP) {
            snprintf(text, sizeof text, "Ok%s%s", id ? ": " : "", id ? queue_id : "");
            mv_smtp_reply_rcpt(s, 250, "2.1.5", text);
        } else {
            snprintf(text, sizeof text, "Ok: queued%s%s", id ? " as " : "", id ? queue_id : "");
            mv_smtp_reply_rcpt(s, 250, "2.0.0", text);
        }
    }
}

void mv_smtp_reply_tempfail(mv_smtp *s, const char *text)
{
    if (!text)
        text = "Error: could not store the message, try again later";
    while (s->ev == MV_SMTP_EV_MESSAGE)
        mv_smtp_reply_rcpt(s, 451, "4.3.0", text);
}

void mv_smtp_reply_reject(mv_smtp *s, int code, const char *enh, const char *text)
{
    if (code < 400)
        code = 0; /* fix_code turns it into 451 4.3.0 */
    while (s->ev == MV_SMTP_EV_MESSAGE)
        mv_smtp_reply_rcpt(s, code, enh, text);
}

void mv_smtp_tls_started(mv_smtp *s)
{
    if (s->ev != MV_SMTP_EV_STARTTLS)
        return;
    txn_reset(s);
    free(s->helo);
    s->helo = NULL;
    s->greeted = 0;
    s->tls_active = 1;
    s->line_len = 0;
    s->discarding = 0;
    s->out.len = s->out_off = 0;
    s->st = ST_CMD;
    s->ev = MV_SMTP_EV_NONE;
}

void mv_smtp_timeout(mv_smtp *s)
{
    close_with(s, "4.4.2", "Error: timeout exceeded");
}

void mv_smtp_shutdown(mv_smtp *s)
{
    close_with(s, "4.3.2", "Service shutting down");
}

void mv_smtp_counters_get(const mv_smtp *s, mv_smtp_counters *c)
{
    *c = s->cnt;
}
