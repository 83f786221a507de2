/* SPDX-License-Identifier: MIT */
/* mime.c - summarise one message through GMime: decoded headers, parts,
 * defects, the content hash and the dedup digest (docs/dedup.md).
 *
 * Thread safety: every call builds its own GMimeParserOptions and
 * GMimeFormatOptions and touches no mutable global state of ours (each
 * thread keeps a cache of parsed field values of its own, released when
 * it ends: "parsed MIME field values"); GMime's shared state (charset
 * tables, iconv cache) is initialised once by g_mime_init and is
 * internally locked.
 *
 * LIMITS: the raw bytes are scanned before GMime sees them, so a header
 * block over max_header_bytes, a message over max_parse_bytes or one with
 * more boundary-like lines than max_parts is never given whole to GMime
 * (GMime builds every part in memory before we can count them).  Only its
 * header block is parsed and the defect MV_DEFECT_NOT_PARSED is set. */
#include "mime.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <openssl/evp.h>

#include "../lib/buf.h"
#include "../lib/charset.h"
#include "../lib/digest.h"
#include "rawmime.h"

#define DEDUP_TAG "mailvault-dedup-v1"
#define DEDUP_RAW_TAG "mailvault-dedup-raw-v1"
#define MAX_LINE 998 /* RFC 5322 2.1.1 */

void mv_mime_limits_default(mv_mime_limits *l)
{
    l->max_depth = 64;
    l->max_parts = 10000;
    l->max_header_bytes = (size_t)1 << 20;
    l->max_names = 1000;
    l->max_parse_bytes = (size_t)256 << 20;
    l->every_field = 0;
}

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_init_once(void)
{
    g_mime_init();
}

void mv_mime_init(void)
{
    pthread_once(&gmime_once, gmime_init_once);
}

/* A growable array of malloc'd strings. */
typedef struct strvec {
    char **v;
    size_t n, cap;
} strvec;

static void strvec_push(strvec *s, char *str)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->v = mv_xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = str;
}

static void strvec_free(strvec *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* strvec_sort_unique - sort bytewise and drop repeats. */
static void strvec_sort_unique(strvec *s)
{
    if (s->n < 2)
        return;
    qsort(s->v, s->n, sizeof *s->v, cmp_str);
    size_t w = 1;
    for (size_t i = 1; i < s->n; i++) {
        if (strcmp(s->v[i], s->v[w - 1]) == 0)
            free(s->v[i]);
        else
            s->v[w++] = s->v[i];
    }
    s->n = w;
}

/* Per-call state of one summary. */
typedef struct walk {
    mv_mime_limits lim;
    mv_msginfo *mi;
    GMimeFormatOptions *fmt;
    EVP_MD_CTX *body; /* body hash: every body text part, length-prefixed */
    strvec content;   /* hex SHA-256 of every other leaf and attached message */
    strvec names;     /* attachment names kept */
    mv_buf tmp;       /* scratch for decoding */
    mv_buf norm;      /* scratch for normalising */
    unsigned nodes;   /* objects walked, for max_parts */
    uint32_t warned;  /* defect bits from GMime's warnings (on_warning) */
} walk;

static void sha256_hex(const void *p, size_t n, char out[65])
{
    uint8_t md[32];
    unsigned len = 0;
    /* EVP_Digest cannot fail for SHA-256 short of an OpenSSL bug */
    if (!EVP_Digest(p, n, md, &len, mv_md_sha256(), NULL))
        mv_assert_fail("EVP_Digest", __FILE__, __LINE__);
    mv_hex(md, 32, out);
}

static void ascii_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* dup_g - copy a GLib string into malloc'd memory (callers free() it) and
 * release the original. */
static char *dup_g(char *g)
{
    if (!g)
        return NULL;
    char *s = mv_xstrdup(g);
    g_free(g);
    return s;
}

static void on_warning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer user)
{
    (void)offset;
    (void)item;
    uint32_t *d = user;
    switch (code) {
    case GMIME_WARN_DUPLICATED_HEADER:
    case GMIME_CRIT_CONFLICTING_HEADER:
        *d |= MV_DEFECT_DUP_HEADER;
        break;
    case GMIME_WARN_UNENCODED_8BIT_HEADER:
        *d |= MV_DEFECT_8BIT_HEADER;
        break;
    case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE:
        *d |= MV_DEFECT_BAD_ENCODING;
        break;
    case GMIME_WARN_MALFORMED_MULTIPART:
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
    case GMIME_WARN_PART_WITHOUT_CONTENT:
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
        *d |= MV_DEFECT_BAD_BOUNDARY;
        break;
    case GMIME_CRIT_NESTING_OVERFLOW:
        *d |= MV_DEFECT_DEPTH_LIMIT;
        break;
    default:
        /* the rest (invalid parameters, address lists, header names, a
         * message that ends inside its header block) are visible in the
         * summary itself; no bit of their own */
        break;
    }
}

/* Raw-byte facts found by one pass over the message. */
typedef struct rawscan {
    size_t header_bytes; /* offset of the body */
    size_t header_end;   /* end of the last header line (before the blank line) */
    size_t boundaries;   /* lines starting with "--": an upper bound on MIME parts */
    uint32_t defects;
} rawscan;

/* any_high - does p[0..n) hold a byte with the high bit set?  Eight bytes
 * at a time: a test a byte over every header line showed in profiles. */
static int any_high(const uint8_t *p, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= p[i];
    return (acc & 0x8080808080808080ull) != 0;
}

/* scan_raw - line endings, NULs, 8-bit header bytes, long lines and where
 * the header block ends. */
static void scan_raw(const uint8_t *p, size_t n, rawscan *r)
{
    size_t crlf = 0, lf = 0, i = 0;
    memset(r, 0, sizeof *r);
    r->header_bytes = n;
    r->header_end = n;
    /* NUL and bare CR over the whole buffer, not per line (two calls a
     * line were a third of this pass): a NUL is content wherever it is,
     * and a CR is bare unless an LF follows it. */
    if (memchr(p, '\0', n))
        r->defects |= MV_DEFECT_NUL;
    for (const uint8_t *cr = memchr(p, '\r', n); cr;) {
        size_t at = (size_t)(cr - p) + 1; /* just after the CR */
        if (at == n || p[at] != '\n') {
            r->defects |= MV_DEFECT_BARE_CR;
            break;
        }
        cr = memchr(p + at, '\r', n - at);
    }
    int in_header = 1;
    while (i < n) {
        const uint8_t *nl = memchr(p + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - p) : n; /* index of LF or n */
        size_t cont = end;                      /* end of the line's content */
        if (nl) {
            if (end > i && p[end - 1] == '\r') {
                crlf++;
                cont = end - 1;
            } else {
                lf++;
            }
        }
        if (cont - i > MAX_LINE)
            r->defects |= MV_DEFECT_LONG_LINE;
        if (cont - i >= 2 && p[i] == '-' && p[i + 1] == '-')
            r->boundaries++;
        if (in_header && cont == i && nl) {
            /* the blank line ends the header block */
            in_header = 0;
            r->header_end = i;
            r->header_bytes = end + 1;
        }
        i = nl ? end + 1 : n;
    }
    /* 8-bit bytes in the header lines: line ends are never 8-bit, so the
     * whole block is tested at once (all of it when no blank line ends it) */
    if (any_high(p, r->header_end))
        r->defects |= MV_DEFECT_8BIT_HEADER;
    if (crlf && lf)
        r->defects |= MV_DEFECT_BARE_LF;
}

/* trim_ws - bounds of s without surrounding ASCII whitespace. */
static void trim_ws(const char **s, size_t *n)
{
    const char *a = *s;
    size_t len = *n;
    while (len && isspace((unsigned char)a[0]))
        a++, len--;
    while (len && isspace((unsigned char)a[len - 1]))
        len--;
    *s = a;
    *n = len;
}

/* collect_addrs - add the lower-cased addr-specs of list to v, expanding
 * groups (depth-bounded: GMime accepts nested groups). */
static void collect_addrs(InternetAddressList *list, strvec *v, int depth)
{
    if (!list || depth > 8)
        return;
    int len = internet_address_list_length(list);
    for (int i = 0; i < len; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            const char *a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
            if (a && *a) {
                char *s = mv_xstrdup(a);
                ascii_lower(s);
                strvec_push(v, s);
            }
        } else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            collect_addrs(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), v,
                          depth + 1);
        }
    }
}

/* first_mailbox - first addr-spec in list, groups expanded. */
static const char *first_mailbox(InternetAddressList *list, int depth)
{
    if (!list || depth > 8)
        return NULL;
    int len = internet_address_list_length(list);
    for (int i = 0; i < len; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            const char *a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
            if (a && *a)
                return a;
        } else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            const char *a = first_mailbox(
                internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), depth + 1);
            if (a)
                return a;
        }
    }
    return NULL;
}

/* format_addrs - "Name <addr>, addr, Group: a, b;" in UTF-8.  Our own,
 * because internet_address_list_to_string converts every domain through
 * IDNA, which was a tenth of the whole summary's time. */
static void format_addrs(InternetAddressList *list, mv_buf *b, int depth)
{
    int len = internet_address_list_length(list);
    for (int i = 0; i < len; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        const char *name = internet_address_get_name(ia);
        if (b->len && b->data[b->len - 1] != ' ')
            mv_buf_append_str(b, ", ");
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            const char *a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
            /* (appends, not a format: every message's From and To pass here) */
            if (name && *name) {
                mv_buf_append_str(b, name);
                mv_buf_append(b, " <", 2);
                mv_buf_append_str(b, a ? a : "");
                mv_buf_append_byte(b, '>');
            } else {
                mv_buf_append_str(b, a ? a : "");
            }
        } else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            mv_buf_append_str(b, name ? name : "");
            mv_buf_append(b, ": ", 2);
            if (depth < 8)
                format_addrs(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), b,
                             depth + 1);
            while (b->len && (b->data[b->len - 1] == ' ' || b->data[b->len - 1] == ','))
                b->data[--b->len] = '\0';
            mv_buf_append_byte(b, ';');
        }
    }
}

/* addr_display - the display form of a present address field: its parsed
 * list, or when that holds no address, its value as
 * g_mime_header_get_value gives it, run through the decoder once more
 * (what has always been stored for such a field). */
static char *addr_display(GMimeParserOptions *opts, InternetAddressList *list, const char *value)
{
    if (list && internet_address_list_length(list) > 0) {
        mv_buf b = MV_BUF_INIT;
        format_addrs(list, &b, 0);
        mv_buf_append(&b, "", 0);
        return (char *)mv_buf_steal(&b, NULL);
    }
    return dup_g(g_mime_utils_header_decode_text(opts, value ? value : ""));
}

/* addr_field - the decoded display form of an address header: from the
 * parsed list, or the decoded text when GMime found no address in it. */
static char *addr_field(GMimeMessage *msg, GMimeParserOptions *opts, const char *name,
                        InternetAddressList *list)
{
    /* presence only: get_value would decode the text, which is wasted
     * work for the usual header GMime has already parsed into a list */
    if (!g_mime_header_list_contains(g_mime_object_get_header_list(GMIME_OBJECT(msg)), name))
        return NULL;
    if (list && internet_address_list_length(list) > 0)
        return addr_display(opts, list, NULL);
    return addr_display(opts, NULL, g_mime_object_get_header(GMIME_OBJECT(msg), name));
}

/* normalise_text - the body normalisation of docs/dedup.md: CRLF -> LF,
 * trailing SP/HT of each line removed, trailing empty lines removed. */
static void normalise_text(const uint8_t *p, size_t n, mv_buf *out)
{
    size_t i = 0, keep = 0; /* keep = out length up to the last non-empty line */
    mv_buf_reset(out);
    if (!n) {
        if (out->data)
            out->data[0] = '\0';
        return;
    }
    /* Written in place (two append calls a line showed in profiles): a
     * line's LF (or CRLF) pays for the LF put before the next one, so the
     * result is never longer than the input. */
    mv_buf_reserve(out, n);
    uint8_t *o = out->data;
    size_t w = 0;
    while (i < n) {
        const uint8_t *nl = memchr(p + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - p) : n;
        size_t cont = end;
        if (nl && cont > i && p[cont - 1] == '\r')
            cont--;
        while (cont > i && (p[cont - 1] == ' ' || p[cont - 1] == '\t'))
            cont--;
        if (w)
            o[w++] = '\n';
        memcpy(o + w, p + i, cont - i);
        w += cont - i;
        if (cont > i)
            keep = w;
        i = nl ? end + 1 : n;
    }
    out->len = keep;
    o[keep] = '\0';
}

/* crlf_to_lf - copy with every CRLF turned into LF. */
static void crlf_to_lf(const uint8_t *p, size_t n, mv_buf *out)
{
    mv_buf_reset(out);
    mv_buf_reserve(out, n);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
            continue;
        out->data[w++] = p[i];
    }
    out->len = w;
    out->data[w] = '\0';
}

/* encoded_ok - look at a part's transfer-encoded bytes for characters
 * the decoder silently drops (base64) or escapes that mean nothing (QP). */
static int encoded_ok(GMimeContentEncoding enc, const uint8_t *p, size_t n)
{
    if (enc == GMIME_CONTENT_ENCODING_BASE64) {
        for (size_t i = 0; i < n; i++) {
            uint8_t c = p[i];
            if (mv_b64_val(c) < 0 && !(c == '=' || c == '\r' || c == '\n' || c == ' ' || c == '\t'))
                return 0;
        }
    } else if (enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
        for (size_t i = 0; i < n; i++) {
            if (p[i] != '=')
                continue;
            if (i + 2 < n && isxdigit(p[i + 1]) && isxdigit(p[i + 2]))
                continue;
            /* a soft line break: '=' then optional blanks then the line end */
            size_t k = i + 1;
            while (k < n && (p[k] == ' ' || p[k] == '\t'))
                k++;
            if (k == n || p[k] == '\n' || (p[k] == '\r' && k + 1 < n && p[k + 1] == '\n'))
                continue;
            return 0;
        }
    }
    return 1;
}

/* stream_bytes - the whole of a GMime stream into out (reset first). */
static void stream_bytes(GMimeStream *s, mv_buf *out)
{
    mv_buf_reset(out);
    if (!s)
        return;
    if (g_mime_stream_reset(s) < 0)
        return;
    for (;;) {
        mv_buf_reserve(out, 8192);
        ssize_t r = g_mime_stream_read(s, (char *)out->data + out->len, 8192);
        if (r <= 0)
            break;
        out->len += (size_t)r;
    }
    out->data[out->len] = '\0';
    g_mime_stream_reset(s);
}

/* decode_part - a leaf's content with the transfer encoding undone. */
static void decode_part(walk *w, GMimePart *part, mv_buf *out)
{
    mv_buf_reset(out);
    GMimeDataWrapper *dw = g_mime_part_get_content(part);
    if (!dw)
        return;
    GMimeContentEncoding enc = g_mime_data_wrapper_get_encoding(dw);
    if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
        stream_bytes(g_mime_data_wrapper_get_stream(dw), out);
        if (!encoded_ok(enc, out->data, out->len))
            w->mi->meta.defects |= MV_DEFECT_BAD_ENCODING;
    }
    GByteArray *ba = g_byte_array_new();
    GMimeStream *ms = g_mime_stream_mem_new_with_byte_array(ba); /* owns ba */
    if (g_mime_data_wrapper_write_to_stream(dw, ms) < 0)
        w->mi->meta.defects |= MV_DEFECT_BAD_ENCODING;
    mv_buf_reset(out);
    mv_buf_append(out, ba->data, ba->len);
    g_object_unref(ms);
}

/* check_charset - a body part whose charset (cs, NULL when it has none)
 * nobody can convert, or that claims UTF-8 and is not, cannot be read as
 * text. */
static void check_charset(walk *w, const char *cs, const uint8_t *p, size_t n)
{
    if (!cs)
        return;
    const char *canon = g_mime_charset_canon_name(cs);
    if (!canon)
        canon = cs;
    if (!g_ascii_strcasecmp(canon, "utf-8")) {
        if (!g_utf8_validate((const char *)p, (gssize)n, NULL))
            w->mi->meta.defects |= MV_DEFECT_BAD_ENCODING;
        return;
    }
    if (!g_ascii_strcasecmp(canon, "us-ascii") || !g_ascii_strcasecmp(canon, "iso-8859-1"))
        return;
    /* what g_mime_iconv_open would try, answered once per charset */
    const char *name = g_mime_charset_iconv_name(cs);
    if (!mv_iconv_usable(g_mime_charset_iconv_name("UTF-8"), name ? name : cs))
        w->mi->meta.defects |= MV_DEFECT_BAD_ENCODING;
}

static void keep_name(walk *w, const char *name)
{
    if (name && *name && w->names.n < w->lim.max_names)
        strvec_push(&w->names, mv_xstrdup(name));
}

static void add_content_hash(walk *w, const void *p, size_t n)
{
    char hex[65];
    sha256_hex(p, n, hex);
    strvec_push(&w->content, mv_xstrdup(hex));
}

/* is_plain_or_html - body text types: only these make up the body hash. */
static int is_plain_or_html(GMimeContentType *ct)
{
    return ct && (g_mime_content_type_is_type(ct, "text", "plain") ||
                  g_mime_content_type_is_type(ct, "text", "html"));
}

static void walk_object(walk *w, GMimeObject *obj, unsigned depth, int attached);

/* hash_body_text - one body text part into the body hash, normalised and
 * length-prefixed. */
static void hash_body_text(walk *w, const uint8_t *p, size_t n)
{
    normalise_text(p, n, &w->norm);
    uint8_t len[4];
    mv_assert(w->norm.len <= UINT32_MAX);
    mv_be32_put(len, (uint32_t)w->norm.len);
    if (!EVP_DigestUpdate(w->body, len, 4) ||
        (w->norm.len && !EVP_DigestUpdate(w->body, w->norm.data, w->norm.len)))
        mv_assert_fail("EVP_DigestUpdate", __FILE__, __LINE__);
}

/* leaf_count - count one leaf part: an attachment when its disposition
 * says so, or when it is not text and has a file name.  Returns whether it
 * is body text. */
static int leaf_count(walk *w, GMimeContentType *ct, const char *fname, int disp_attachment)
{
    int is_text = ct && g_mime_content_type_is_type(ct, "text", "*");
    int is_att = disp_attachment || (!is_text && fname && *fname);
    w->mi->meta.n_parts++;
    if (is_att) {
        w->mi->meta.n_attachments++;
        keep_name(w, fname);
    }
    return !is_att && is_plain_or_html(ct);
}

/* leaf_hash - a leaf's decoded content p[0..n) into the dedup digest:
 * body text into the body hash, anything else as a content hash. */
static void leaf_hash(walk *w, int is_body, const char *charset, GMimeContentEncoding enc,
                      const uint8_t *p, size_t n)
{
    if (is_body) {
        check_charset(w, charset, p, n);
        hash_body_text(w, p, n);
        return;
    }
    /* Line ends of content sent as text (7bit, 8bit, binary, QP) belong to
     * the transport, so CRLF and LF copies must hash alike; base64 and
     * uuencode carry the exact bytes. */
    if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_UUENCODE) {
        add_content_hash(w, p, n);
    } else {
        crlf_to_lf(p, n, &w->norm);
        add_content_hash(w, w->norm.data, w->norm.len);
    }
}

/* walk_leaf - classify one leaf part: body text, attachment or other
 * content; hash it for the dedup digest unless it sits inside an attached
 * message (whose own hash covers it). */
static void walk_leaf(walk *w, GMimePart *part, int attached)
{
    GMimeObject *obj = GMIME_OBJECT(part);
    int is_body = leaf_count(w, g_mime_object_get_content_type(obj), g_mime_part_get_filename(part),
                             g_mime_part_is_attachment(part));
    if (attached)
        return;
    decode_part(w, part, &w->tmp);
    leaf_hash(w, is_body, g_mime_object_get_content_type_parameter(obj, "charset"),
              g_mime_part_get_content_encoding(part),
              w->tmp.data ? w->tmp.data : (const uint8_t *)"", w->tmp.len);
}

/* walk_message_part - an attached message: one attachment, hashed as
 * GMime writes it back out (CRLF -> LF), and walked for its own parts. */
static void walk_message_part(walk *w, GMimeMessagePart *mp, unsigned depth, int attached)
{
    GMimeObject *obj = GMIME_OBJECT(mp);
    GMimeMessage *inner = g_mime_message_part_get_message(mp);
    w->mi->meta.n_attachments++;
    const char *name = g_mime_object_get_content_disposition_parameter(obj, "filename");
    if (!name)
        name = g_mime_object_get_content_type_parameter(obj, "name");
    keep_name(w, name);
    if (!attached) {
        GByteArray *ba = g_byte_array_new();
        GMimeStream *ms = g_mime_stream_mem_new_with_byte_array(ba);
        if (inner)
            g_mime_object_write_to_stream(GMIME_OBJECT(inner), w->fmt, ms);
        crlf_to_lf(ba->data ? ba->data : (const uint8_t *)"", ba->len, &w->norm);
        add_content_hash(w, w->norm.data, w->norm.len);
        g_object_unref(ms);
    }
    if (inner) {
        GMimeObject *body = g_mime_message_get_mime_part(inner);
        if (body)
            walk_object(w, body, depth + 1, 1);
    }
}

static void walk_object(walk *w, GMimeObject *obj, unsigned depth, int attached)
{
    if (depth > w->lim.max_depth) {
        w->mi->meta.defects |= MV_DEFECT_DEPTH_LIMIT;
        return;
    }
    if (w->nodes >= w->lim.max_parts) {
        w->mi->meta.defects |= MV_DEFECT_PARTS_LIMIT;
        return;
    }
    w->nodes++;
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        /* (the parameter read, not g_mime_multipart_get_boundary: that one
         * makes a boundary up when there is none and re-encodes the header
         * with it, which some hostile parameter lists make run away) */
        if (!g_mime_object_get_content_type_parameter(obj, "boundary") ||
            !mp->write_end_boundary)
            w->mi->meta.defects |= MV_DEFECT_BAD_BOUNDARY;
        int count = g_mime_multipart_get_count(mp);
        const char *pro = g_mime_multipart_get_prologue(mp);
        if (count == 0 && pro && !attached) {
            /* No part was found (no boundary, or it never occurs): GMime left
             * the whole content in the prologue, and it must still count. */
            w->mi->meta.defects |= MV_DEFECT_BAD_BOUNDARY;
            hash_body_text(w, (const uint8_t *)pro, strlen(pro));
        }
        for (int i = 0; i < count; i++)
            walk_object(w, g_mime_multipart_get_part(mp, i), depth + 1, attached);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        walk_message_part(w, GMIME_MESSAGE_PART(obj), depth, attached);
    } else if (GMIME_IS_PART(obj)) {
        walk_leaf(w, GMIME_PART(obj), attached);
    }
}

/* normalise_subject - NFC, whitespace trimmed and collapsed (docs/dedup.md). */
static void normalise_subject(const char *s, mv_buf *out)
{
    mv_buf_reset(out);
    if (!s)
        return;
    char *nfc = NULL;
    const char *c8 = s;
    while (*c8 && !((unsigned char)*c8 & 0x80))
        c8++;
    /* ASCII is its own NFC; normalising it costs allocations */
    if (*c8 && g_utf8_validate(s, -1, NULL))
        nfc = g_utf8_normalize(s, -1, G_NORMALIZE_NFC);
    const char *src = nfc ? nfc : s;
    int space = 0;
    for (const char *c = src; *c; c++) {
        if (isspace((unsigned char)*c)) {
            space = 1;
            continue;
        }
        if (space && out->len)
            mv_buf_append_byte(out, ' ');
        space = 0;
        mv_buf_append_byte(out, (uint8_t)*c);
    }
    g_free(nfc);
}

static void put_lp(EVP_MD_CTX *md, const void *p, size_t n)
{
    uint8_t len[4];
    mv_be32_put(len, (uint32_t)n);
    if (!EVP_DigestUpdate(md, len, 4) || (n && !EVP_DigestUpdate(md, p, n)))
        mv_assert_fail("EVP_DigestUpdate", __FILE__, __LINE__);
}

static void put_str(EVP_MD_CTX *md, const char *s)
{
    put_lp(md, s ? s : "", s ? strlen(s) : 0);
}

static void digest_final(EVP_MD_CTX *md, uint8_t out[32])
{
    unsigned len = 0;
    if (!EVP_DigestFinal_ex(md, out, &len))
        mv_assert_fail("EVP_DigestFinal_ex", __FILE__, __LINE__);
}

static void dedup_raw(const uint8_t *p, size_t n, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, mv_md_sha256(), NULL))
        mv_assert_fail("EVP_DigestInit_ex", __FILE__, __LINE__);
    put_lp(md, DEDUP_RAW_TAG, strlen(DEDUP_RAW_TAG));
    /* a message over 4 GiB cannot occur (source limit 512 MiB); the length
     * is still written as the 64-bit-safe low word plus the bytes */
    put_lp(md, p, n > UINT32_MAX ? UINT32_MAX : n);
    digest_final(md, out);
    EVP_MD_CTX_free(md);
}

/* dedup_fields - the dedup digest of a parsed message (docs/dedup.md). */
static void dedup_fields(walk *w, const char *raw_date)
{
    mv_msginfo *mi = w->mi;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, mv_md_sha256(), NULL))
        mv_assert_fail("EVP_DigestInit_ex", __FILE__, __LINE__);
    mv_buf b = MV_BUF_INIT;

    put_str(md, DEDUP_TAG);
    char *mid = mi->meta.message_id ? mv_xstrdup(mi->meta.message_id) : NULL;
    if (mid)
        ascii_lower(mid);
    put_str(md, mid);
    free(mid);

    if (mi->meta.date_t != INT64_MIN) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)mi->meta.date_t);
        put_str(md, num);
        put_str(md, "");
    } else {
        put_str(md, "");
        /* unfolded: folding is a transport change, not a different date */
        mv_buf_reset(&b);
        for (const char *c = raw_date ? raw_date : ""; *c; c++)
            if (*c != '\r' && *c != '\n')
                mv_buf_append_byte(&b, (uint8_t)*c);
        const char *s = b.data ? (const char *)b.data : "";
        size_t n = b.len;
        trim_ws(&s, &n);
        put_lp(md, s, n);
    }

    put_str(md, mi->meta.from_addr);

    mv_buf_reset(&b);
    for (size_t i = 0; i < mi->n_recipients; i++) {
        if (i)
            mv_buf_append_byte(&b, '\n');
        mv_buf_append_str(&b, mi->recipients[i]);
    }
    put_lp(md, b.data, b.len);

    normalise_subject(mi->meta.subject, &b);
    put_lp(md, b.data, b.len);

    uint8_t body[32];
    char hex[65];
    digest_final(w->body, body);
    mv_hex(body, 32, hex);
    put_str(md, hex);

    strvec_sort_unique(&w->content);
    mv_buf_reset(&b);
    for (size_t i = 0; i < w->content.n; i++) {
        if (i)
            mv_buf_append_byte(&b, '\n');
        mv_buf_append_str(&b, w->content.v[i]);
    }
    put_lp(md, b.data, b.len);

    digest_final(md, mi->meta.dedup);
    EVP_MD_CTX_free(md);
    mv_buf_free(&b);
}

/* set_date - the Date field's decoded value v (present: the field is
 * there) and what GMime's date parser made of it (dt, NULL: nothing). */
static void set_date(mv_msginfo *mi, int present, const char *v, GDateTime *dt)
{
    mi->meta.date_t = INT64_MIN;
    if (!present) {
        mi->meta.defects |= MV_DEFECT_NO_DATE;
        return;
    }
    mi->meta.date = mv_xstrdup(v ? v : "");
    const char *s = mi->meta.date;
    size_t n = strlen(s);
    trim_ws(&s, &n);
    if (dt)
        mi->meta.date_t = g_date_time_to_unix(dt);
    else
        mi->meta.defects |= n ? MV_DEFECT_BAD_DATE : MV_DEFECT_NO_DATE;
}

/* set_message_id - GMime's reading of the Message-ID (mid), or, when it
 * has none (an id without '@'), what was written (value: the decoded
 * field, NULL when absent). */
static void set_message_id(mv_msginfo *mi, const char *mid, const char *value)
{
    if (mid && *mid) {
        mi->meta.message_id = mv_xstrdup(mid);
        return;
    }
    const char *s = value ? value : "";
    size_t n = strlen(s);
    trim_ws(&s, &n);
    if (n >= 2 && s[0] == '<' && s[n - 1] == '>')
        s++, n -= 2;
    if (n)
        mi->meta.message_id = mv_xstrndup(s, n);
    else
        mi->meta.defects |= MV_DEFECT_NO_MSGID;
}

/* fill_headers - the decoded header fields of a parsed message. */
static void fill_headers(walk *w, GMimeMessage *msg, GMimeParserOptions *opts,
                         const char **raw_date)
{
    mv_msginfo *mi = w->mi;
    GMimeObject *obj = GMIME_OBJECT(msg);

    InternetAddressList *from = g_mime_message_get_from(msg);
    mi->meta.from = addr_field(msg, opts, "From", from);
    const char *fa = first_mailbox(from, 0);
    if (fa) {
        mi->meta.from_addr = mv_xstrdup(fa);
        ascii_lower(mi->meta.from_addr);
    } else {
        mi->meta.defects |= MV_DEFECT_NO_FROM;
    }
    InternetAddressList *to = g_mime_message_get_to(msg);
    InternetAddressList *cc = g_mime_message_get_cc(msg);
    mi->meta.to = addr_field(msg, opts, "To", to);
    mi->meta.cc = addr_field(msg, opts, "Cc", cc);
    mi->meta.bcc = addr_field(msg, opts, "Bcc", g_mime_message_get_bcc(msg));

    strvec r = {0};
    collect_addrs(to, &r, 0);
    collect_addrs(cc, &r, 0);
    strvec_sort_unique(&r);
    mi->recipients = r.v;
    mi->n_recipients = r.n;

    const char *subj = g_mime_message_get_subject(msg);
    if (subj)
        mi->meta.subject = mv_xstrdup(subj);

    GMimeHeader *dh = g_mime_header_list_get_header(g_mime_object_get_header_list(obj), "Date");
    if (dh)
        *raw_date = g_mime_header_get_raw_value(dh);
    set_date(mi, dh != NULL, dh ? g_mime_header_get_value(dh) : NULL, g_mime_message_get_date(msg));
    set_message_id(mi, g_mime_message_get_message_id(msg),
                   g_mime_object_get_header(obj, "Message-ID"));
    const char *irt = g_mime_object_get_header(obj, "In-Reply-To");
    if (irt)
        mi->meta.in_reply_to = dup_g(g_mime_utils_decode_message_id(irt));
}

/* Top-level fields that GMime must see: the ones we read (the addresses,
 * Subject, Date, ids), every field GMime itself checks for repeats (RFC
 * 5322 3.6: the conflict and duplicate warnings become defect bits), and
 * every MIME field.  Sorted for bsearch; compared without case. */
static const char *const needed_fields[] = {
    "bcc",          "cc",         "date",     "from",   "in-reply-to", "message-id",
    "mime-version", "references", "reply-to", "sender", "subject",     "to",
};

static int cmp_field(const void *key, const void *elem)
{
    return g_ascii_strcasecmp(key, *(const char *const *)elem);
}

/* plain_field - the length of the field name when line p[0..n) starts
 * with one made only of printable ASCII other than ':' and followed at
 * once by ':' (GMime accepts every such line as a field), else 0. */
static size_t plain_field(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && i < 64 && p[i] > 0x20 && p[i] < 0x7f && p[i] != ':')
        i++;
    return i && i < n && p[i] == ':' ? i : 0;
}

static int needed(const uint8_t *name, size_t len)
{
    char k[65];
    if (len >= 8 && !g_ascii_strncasecmp((const char *)name, "content-", 8))
        return 1;
    memcpy(k, name, len);
    k[len] = '\0';
    return bsearch(k, needed_fields, sizeof needed_fields / sizeof needed_fields[0],
                   sizeof needed_fields[0], cmp_field) != NULL;
}

/* has_encoded_word - "=?" in v[0..n): GMime's RFC 2047 decoder looks at it. */
static int has_encoded_word(const uint8_t *v, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (v[i] == '=' && v[i + 1] == '?')
            return 1;
    return 0;
}

/* field_end - the end of the field starting at p[i]: after its last
 * continuation line, at most end. */
static size_t field_end(const uint8_t *p, size_t i, size_t end)
{
    do {
        const uint8_t *nl = memchr(p + i, '\n', end - i);
        i = nl ? (size_t)(nl - p) + 1 : end;
    } while (i < end && (p[i] == ' ' || p[i] == '\t'));
    return i;
}

/* filtered_copy - the message's bytes for GMime, without the top-level
 * fields we never read (Received, DKIM-Signature, X-...: on real mail
 * most of the header block).  GMime builds an object per field, and that
 * was the larger part of its time.  The result is the same summary:
 *  - only lines GMime takes as well-formed fields are dropped, with their
 *    continuation lines; anything odd is kept where it was;
 *  - nothing is dropped before the first kept field, so GMime's rule for
 *    a message's first line (a bad one means no message) sees the same
 *    line; nor before the first field other than Content-* (GMime files
 *    those under the body part, and a message with no other field is
 *    taken here as no message at all: see parse);
 *  - only a complete header block (ended by an empty line) is filtered,
 *    and the body follows unchanged;
 *  - the defect bits a dropped field could raise through GMime come from
 *    our own scan of the raw bytes (8-bit bytes), or the field is not
 *    dropped: GMime runs every field's value through its RFC 2047 decoder,
 *    whose complaints are defects, so a field with "=?" in it stays.
 * tests/unit/mime_test.c and fuzz_mime compare both ways. */
#define PARSER_BLOCK 4096u /* GMime's parser's read size (SCAN_BUF) */
static GByteArray *filtered_copy(const uint8_t *p, size_t n, size_t header_bytes)
{
    GByteArray *ba = g_byte_array_sized_new((guint)n);
    size_t i = 0, copied = 0, dropped = 0;
    int kept_one = 0, kept_other = 0, dropping = 0;
    while (i < header_bytes) {
        const uint8_t *nl = memchr(p + i, '\n', header_bytes - i);
        size_t end = nl ? (size_t)(nl - p) + 1 : header_bytes;
        size_t len = end - i;
        if (len == 1 || (len == 2 && p[i] == '\r'))
            break; /* the empty line: the body starts */
        int cont = p[i] == ' ' || p[i] == '\t';
        if (!cont) {
            size_t fl = plain_field(p + i, len);
            int content = fl >= 8 && !g_ascii_strncasecmp((const char *)p + i, "content-", 8);
            dropping = kept_one && kept_other && fl && !needed(p + i, fl) &&
                       !has_encoded_word(p + i, field_end(p, i, header_bytes) - i);
            kept_one |= fl && !dropping;
            kept_other |= fl && !dropping && !content;
        }
        if (dropping) {
            g_byte_array_append(ba, p + copied, (guint)(i - copied));
            dropped += end - i;
            copied = end;
        }
        i = end;
    }
    if (dropped && i < header_bytes) {
        /* The body at the offset it has in the whole: GMime's parser reads
         * in blocks of 4 KiB, and how it reads some broken multiparts
         * depends on where a block ends (found by fuzz_mime: a part's
         * Content-Type lost at one offset and not at another).  A field of
         * our own, which the summary never reads, takes the place of what
         * was dropped, modulo that block size. */
        static const char pad_name[] = "X-Mailvault-Pad: ";
        size_t eol = p[i] == '\r' ? 2 : 1, min = sizeof pad_name - 1 + 1 + eol;
        size_t pad = dropped % PARSER_BLOCK;
        if (pad < min)
            pad += PARSER_BLOCK;
        g_byte_array_append(ba, p + copied, (guint)(i - copied));
        g_byte_array_append(ba, (const guint8 *)pad_name, (guint)(sizeof pad_name - 1));
        size_t fill = pad - (sizeof pad_name - 1) - eol, at = ba->len;
        g_byte_array_set_size(ba, (guint)(at + fill));
        memset(ba->data + at, 'x', fill);
        g_byte_array_append(ba, (const guint8 *)"\r\n" + (2 - eol), (guint)eol);
        copied = i;
    }
    g_byte_array_append(ba, p + copied, (guint)(n - copied));
    return ba;
}

/* parse - run GMime over p[0..n); NULL when it finds no message at all.
 * header_bytes: where the body starts (after the empty line), or 0 when
 * GMime must see every field. */
static GMimeMessage *parse(const uint8_t *p, size_t n, size_t header_bytes,
                           GMimeParserOptions *opts)
{
    GMimeStream *stream =
        header_bytes && header_bytes <= n
            ? g_mime_stream_mem_new_with_byte_array(filtered_copy(p, n, header_bytes))
            : g_mime_stream_mem_new_with_buffer((const char *)p, n);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    /* Content-Length is attacker-controlled and never trusted (STANDARDS 5.1) */
    g_mime_parser_set_respect_content_length(parser, FALSE);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, opts);
    g_object_unref(parser);
    g_object_unref(stream);
    if (msg &&
        g_mime_header_list_get_count(g_mime_object_get_header_list(GMIME_OBJECT(msg))) == 0) {
        g_object_unref(msg);
        msg = NULL;
    }
    return msg;
}

/* ---- parsed field values, kept per thread -----------------------------------
 *
 * A leaf's Content-Type and Content-Disposition values repeat from message
 * to message ("text/plain; charset=utf-8", "inline"), and so do address
 * fields (a correspondent's From, a team's To), and GMime's parsers build
 * two objects and more for each, which cost more than the parse.  A
 * worker keeps what GMime made of the last values it met (TCACHE_SLOTS a
 * kind, by the raw value, with the complaints GMime's parser made of it):
 * its parsers are functions of the value and the options, which are the
 * same for every message (a warning callback and GMime's defaults), so the
 * kept object is the one GMime would make again.  The objects are only
 * read, and only by the thread that keeps them; a thread's are released
 * when it ends. */
#define TCACHE_SLOTS 128
/* longer values are not kept: file names, mostly, and long lists */
static const size_t tc_max_key[] = {160, 160, 400};

enum { TC_CTYPE, TC_DISP, TC_ADDR, TC_KINDS };

typedef struct tc_ent {
    char *key;       /* the raw value */
    GObject *obj;    /* one reference, the cache's */
    uint32_t warned; /* defect bits GMime's parser reported for it */
    uint32_t missed; /* hash of the last value not found here */
} tc_ent;

typedef struct tcache {
    tc_ent e[TC_KINDS][TCACHE_SLOTS];
    GMimeContentType *plain; /* what a part without Content-Type gets */
} tcache;

static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;

static void tc_free(void *arg)
{
    tcache *c = arg;
    for (int k = 0; k < TC_KINDS; k++)
        for (int i = 0; i < TCACHE_SLOTS; i++)
            if (c->e[k][i].key) {
                free(c->e[k][i].key);
                g_object_unref(c->e[k][i].obj);
            }
    if (c->plain)
        g_object_unref(c->plain);
    free(c);
}

static void tc_init(void)
{
    mv_assert(pthread_key_create(&tc_key, tc_free) == 0);
}

static tcache *tc_get(void)
{
    pthread_once(&tc_once, tc_init);
    tcache *c = pthread_getspecific(tc_key);
    if (!c) {
        c = mv_xcalloc(1, sizeof *c);
        mv_assert(pthread_setspecific(tc_key, c) == 0);
    }
    return c;
}

static uint32_t tc_hash(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *k = (const unsigned char *)key; *k; k++)
        h = (h ^ *k) * 16777619u;
    return h;
}

/* tc_lookup - a new reference to the object kept for key, its complaints
 * added to *warned; NULL when none is kept. */
static void *tc_lookup(int kind, const char *key, uint32_t *warned)
{
    tc_ent *e = &tc_get()->e[kind][tc_hash(key) % TCACHE_SLOTS];
    if (!e->key || strcmp(e->key, key))
        return NULL;
    *warned |= e->warned;
    return g_object_ref(e->obj);
}

/* tc_keep - keep obj (a reference of its own) for key, in place of what
 * its slot held, when key was the last value its slot missed: a value met
 * once (a boundary, a file name, most senders of a spam run) is not worth
 * keeping, and would push out one that is. */
static void tc_keep(int kind, const char *key, void *obj, uint32_t warned)
{
    if (strlen(key) > tc_max_key[kind])
        return;
    uint32_t h = tc_hash(key);
    tc_ent *e = &tc_get()->e[kind][h % TCACHE_SLOTS];
    if (e->missed != h) {
        e->missed = h;
        return;
    }
    if (e->key) {
        free(e->key);
        g_object_unref(e->obj);
    }
    e->key = mv_xstrdup(key);
    e->obj = g_object_ref(obj);
    e->warned = warned;
}

/* ---- the direct path -------------------------------------------------------
 *
 * Most mail is one part of text, or a multipart of a few such parts.  For
 * it, GMime's parser builds thirty objects and more (the message, six
 * address lists, an object per header field, every part with its content
 * type, parameters, data wrapper and streams) and frees them again, which
 * cost more than everything else in the summary.  What we keep from them
 * is what GMime's own parsers make of a handful of fields.  So for such a
 * message those same parsers (the address-list parser, the RFC 2047
 * decoder, the date and Message-ID parsers, the Content-Type and
 * Content-Disposition parsers, the transfer decoders) are called here
 * directly, on the exact values GMime's parser would hand them (the bytes
 * after the colon, unfolded where GMime unfolds), and nothing else is
 * built.
 *
 * Only a message GMime's parser would read exactly as we do takes this
 * path:
 *  - header blocks of plain fields only (name, then the colon at once),
 *    with no field repeated that GMime checks for repeats, and at least
 *    one top-level field that is not a MIME field (direct_headers);
 *  - no 8-bit byte, NUL or bare CR in a header block, no encoded word in a
 *    MIME field (GMime's objects read encoded words in parameters otherwise
 *    than its public parsers do), nor in References; every other field
 *    with "=?" in it goes through the RFC 2047 decoder, as GMime sends
 *    every field, for the same complaints (defects);
 *  - a top part that is a leaf (not an attached message, not uuencoded), or a
 *    multipart/mixed, alternative or related of such leaves and of such
 *    multiparts (DIRECT_MAX_NEST deep), each with one boundary both parsers
 *    agree on and none a prefix of another around it, a close delimiter,
 *    no more objects than max_parts nor deeper than max_depth, content in
 *    every part, and one kind of line end throughout (direct_multipart,
 *    direct_part).
 * Everything else goes the whole way through GMime.  The summary is the
 * same either way: tests/unit/mime_test.c and fuzz_mime compare it field by
 * field with the one GMime makes (every_field), and so can
 * `build/replay/fuzz_mime` over any collection (docs/import.md). */

/* clang-format off */
enum {
    DF_FROM, DF_TO, DF_CC, DF_BCC, DF_SENDER, DF_REPLY_TO, /* address lists, in this order */
    DF_SUBJECT, DF_DATE, DF_MSGID, DF_IRT, DF_REFERENCES,
    DF_CTYPE, DF_CTE, DF_CDISP,
    DF_COUNT
};

/* Lower case, as compared without case. */
static const char *const direct_names[DF_COUNT] = {
    "from",    "to",   "cc",         "bcc",         "sender",     "reply-to",
    "subject", "date", "message-id", "in-reply-to", "references",
    "content-type", "content-transfer-encoding", "content-disposition",
};
/* clang-format on */

static int direct_field(const uint8_t *name, size_t n)
{
    /* (every field of every header block is looked up here) */
    static const uint8_t len[DF_COUNT] = {4, 2, 2, 3, 6, 8, 7, 4, 10, 11, 10, 12, 25, 19};
    for (int k = 0; k < DF_COUNT; k++)
        if (len[k] == n &&
            !g_ascii_strncasecmp((const char *)name, direct_names[k], n))
            return k;
    return -1;
}

/* header_value - what g_mime_header_get_value makes of a raw value: unfolded
 * and decoded (g_free() it). */
static char *header_value(GMimeParserOptions *opts, const char *raw)
{
    char *u = g_mime_utils_header_unfold(raw);
    /* ASCII without "=?": the RFC 2047 decoder gives it back as it is (so
     * it did for all 255,000 such fields of 17,658 files and 2 million random
     * strings) and has nothing to complain of */
    const unsigned char *c = (const unsigned char *)u;
    while (*c && *c < 0x80 && !(c[0] == '=' && c[1] == '?'))
        c++;
    if (!*c)
        return u;
    char *v = g_mime_utils_header_decode_text(opts, u);
    g_free(u);
    return v;
}

/* A few field names, told apart without case, to find repeats. */
#define NAMESET_MAX 16
typedef struct nameset {
    const uint8_t *name[NAMESET_MAX];
    size_t len[NAMESET_MAX];
    size_t n;
} nameset;

/* nameset_add - 1 when name[0..len) is new to s (and now in it); 0 when it
 * is there already or s is full (either way the caller gives up). */
static int nameset_add(nameset *s, const uint8_t *name, size_t len)
{
    if (s->n == NAMESET_MAX)
        return 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->len[i] == len &&
            !g_ascii_strncasecmp((const char *)s->name[i], (const char *)name, len))
            return 0;
    s->name[s->n] = name;
    s->len[s->n++] = len;
    return 1;
}

/* decode_for_warnings - GMime runs every field's value through its RFC 2047
 * decoder, whose complaints are defects (on_warning): so does the direct
 * path, for a field with "=?" in it. */
static void decode_for_warnings(GMimeParserOptions *opts, const uint8_t *val, size_t vlen)
{
    char *raw = g_strndup((const char *)val, vlen);
    g_free(header_value(opts, raw));
    g_free(raw);
}

/* direct_headers - the raw values (NUL-terminated g_malloc'd copies, NULL
 * when absent) of the fields in direct_names, when the header block
 * p[0..header_end) is one the direct path may take; 0 otherwise (f then
 * holds what was copied so far, for the caller to free). */
static int direct_headers(GMimeParserOptions *opts, const uint8_t *p, size_t header_end,
                          size_t header_bytes, char *f[DF_COUNT])
{
    mv_rm_hblock hb = {.p = p, .hlen = header_end, .body_off = header_bytes, .complete = 1};
    nameset other = {0};
    size_t pos = 0, fs, fe, nlen, vlen;
    const uint8_t *name, *val;
    int plain = 0;
    while (mv_rm_next_line(&hb, &pos, &fs, &fe, &name, &nlen, &val, &vlen)) {
        if (!nlen || name[nlen] != ':')
            return 0; /* not a plain field: GMime's rules for those differ */
        int content = nlen >= 8 && !g_ascii_strncasecmp((const char *)name, "content-", 8);
        plain += !content;
        int k = direct_field(name, nlen), ew = has_encoded_word(val, vlen);
        /* fill_direct decodes these very values the same way, complaints
         * and all, and direct_type the Content-Type */
        if (ew && !(k >= DF_SUBJECT && k <= DF_IRT) && k != DF_CTYPE)
            decode_for_warnings(opts, val, vlen);
        if (k >= 0) {
            if (f[k])
                return 0; /* repeated: which one counts is GMime's business */
            /* (Content-Type and -Disposition are parsed decoded, as
             * GMime's objects parse them: see direct_type) */
            if ((k == DF_REFERENCES || k == DF_CTE) && ew)
                return 0;
            f[k] = g_strndup((const char *)val, vlen);
            continue;
        }
        if (!content)
            continue;
        /* GMime gives some other MIME fields (Content-Id, -Description...)
         * to parsers of their own: leave those to it */
        if (ew || !nameset_add(&other, name, nlen))
            return 0;
    }
    return plain > 0;
}

/* addr_direct - addr_field for a raw value (NULL: no such field). */
static char *addr_direct(GMimeParserOptions *opts, const char *raw, InternetAddressList *list)
{
    if (!raw)
        return NULL;
    if (list && internet_address_list_length(list) > 0)
        return addr_display(opts, list, NULL);
    char *v = header_value(opts, raw);
    char *s = addr_display(opts, NULL, v);
    g_free(v);
    return s;
}

/* direct_addresses - the address fields of f parsed into l (NULL where
 * absent; the caller unrefs them whatever the answer); 0 when one could
 * not be parsed whole: GMime's message then keeps the addresses read before
 * the error, which the public parser does not tell. */
static int direct_addresses(GMimeParserOptions *opts, uint32_t *warned, char *const f[DF_COUNT],
                            InternetAddressList *l[DF_REPLY_TO + 1])
{
    for (int k = DF_FROM; k <= DF_REPLY_TO; k++) {
        /* Sender and Reply-To are parsed only for the complaints of the
         * RFC 2047 decoder about names in them (defects) */
        if (!f[k] || ((k == DF_SENDER || k == DF_REPLY_TO) && !strstr(f[k], "=?")))
            continue;
        if ((l[k] = tc_lookup(TC_ADDR, f[k], warned)))
            continue;
        uint32_t before = *warned;
        *warned = 0; /* to tell this parse's complaints apart */
        l[k] = internet_address_list_parse(opts, f[k]);
        if (l[k])
            tc_keep(TC_ADDR, f[k], l[k], *warned);
        *warned |= before;
        if (!l[k] && f[k][strspn(f[k], " \t\r\n")])
            return 0;
    }
    return 1;
}

/* fill_direct - fill_headers from raw values and their address lists. */
static void fill_direct(walk *w, GMimeParserOptions *opts, char *const f[DF_COUNT],
                        InternetAddressList *const l[DF_REPLY_TO + 1])
{
    mv_msginfo *mi = w->mi;
    mi->meta.from = addr_direct(opts, f[DF_FROM], l[DF_FROM]);
    const char *fa = first_mailbox(l[DF_FROM], 0);
    if (fa) {
        mi->meta.from_addr = mv_xstrdup(fa);
        ascii_lower(mi->meta.from_addr);
    } else {
        mi->meta.defects |= MV_DEFECT_NO_FROM;
    }
    mi->meta.to = addr_direct(opts, f[DF_TO], l[DF_TO]);
    mi->meta.cc = addr_direct(opts, f[DF_CC], l[DF_CC]);
    mi->meta.bcc = addr_direct(opts, f[DF_BCC], l[DF_BCC]);
    strvec r = {0};
    collect_addrs(l[DF_TO], &r, 0);
    collect_addrs(l[DF_CC], &r, 0);
    strvec_sort_unique(&r);
    mi->recipients = r.v;
    mi->n_recipients = r.n;

    if (f[DF_SUBJECT]) {
        char *v = header_value(opts, f[DF_SUBJECT]);
        if (v)
            mi->meta.subject = mv_xstrdup(v);
        g_free(v);
    }

    char *v = f[DF_DATE] ? header_value(opts, f[DF_DATE]) : NULL;
    GDateTime *dt = v ? g_mime_utils_header_decode_date(v) : NULL;
    set_date(mi, f[DF_DATE] != NULL, v, dt);
    if (dt)
        g_date_time_unref(dt);
    g_free(v);

    char *midv = f[DF_MSGID] ? header_value(opts, f[DF_MSGID]) : NULL;
    char *mid = midv ? g_mime_utils_decode_message_id(midv) : NULL;
    set_message_id(mi, mid, midv);
    g_free(mid);
    g_free(midv);
    if (f[DF_IRT]) {
        char *irt = header_value(opts, f[DF_IRT]);
        if (irt)
            mi->meta.in_reply_to = dup_g(g_mime_utils_decode_message_id(irt));
        g_free(irt);
    }
}

/* direct_decode - a leaf's content with the transfer encoding undone,
 * through GMime's own decoders (what its data wrapper does); identity
 * encodings are not copied. */
static void direct_decode(walk *w, GMimeContentEncoding enc, const uint8_t *p, size_t n,
                          const uint8_t **out, size_t *outn)
{
    if (enc != GMIME_CONTENT_ENCODING_BASE64 && enc != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
        *out = p;
        *outn = n;
        return;
    }
    if (!encoded_ok(enc, p, n))
        w->mi->meta.defects |= MV_DEFECT_BAD_ENCODING;
    GMimeEncoding st;
    g_mime_encoding_init_decode(&st, enc);
    mv_buf_reset(&w->tmp);
    mv_buf_reserve(&w->tmp, g_mime_encoding_outlen(&st, n));
    w->tmp.len = g_mime_encoding_flush(&st, (const char *)p, n, (char *)w->tmp.data);
    w->tmp.data[w->tmp.len] = '\0';
    *out = w->tmp.data;
    *outn = w->tmp.len;
}

/* One leaf part as the direct path reads it. */
typedef struct dleaf {
    GMimeContentType *ct;
    GMimeContentDisposition *cd; /* NULL: no Content-Disposition */
    GMimeContentEncoding enc;
    const uint8_t *c; /* the transfer-encoded content, inside the message */
    size_t cn;
} dleaf;

static void dleaf_clear(dleaf *l)
{
    if (l->cd)
        g_object_unref(l->cd);
    if (l->ct)
        g_object_unref(l->ct);
    memset(l, 0, sizeof *l);
}

enum { DT_NO = 0, DT_LEAF, DT_MULTIPART };

/* direct_type - the Content-Type raw value (NULL: none, so text/plain)
 * parsed as GMime's part does (unfolded and decoded), into *ct (the caller
 * unrefs it whatever the answer); GMime's complaints go to *warned, the parser
 * options' warning data.  GMime picks the kind of part with a parser of its
 * own, so the answer is DT_NO unless ours (rct) and GMime's public one
 * agree on the type.  DT_MULTIPART only for mixed, alternative and
 * related (whose parts default to text/plain) with one agreed boundary;
 * rct is filled only then.  A leaf's value may be answered from the
 * thread's cache. */
static int direct_type(GMimeParserOptions *opts, uint32_t *warned, const char *raw,
                       mv_rm_ctype *rct, GMimeContentType **ct)
{
    if (!raw) {
        tcache *c = tc_get();
        if (!c->plain)
            c->plain = g_mime_content_type_new("text", "plain");
        *ct = g_object_ref(c->plain);
        return DT_LEAF;
    }
    if ((*ct = tc_lookup(TC_CTYPE, raw, warned)))
        return DT_LEAF;
    char *u = mv_rm_unfold((const uint8_t *)raw, strlen(raw), NULL);
    mv_rm_parse_ctype(u, rct);
    free(u);
    if (!rct->type[0] || !rct->sub[0] || !strcmp(rct->type, "message"))
        return DT_NO;
    uint32_t before = *warned, heard;
    *warned = 0; /* to tell this parse's complaints apart */
    /* GMime's object parses the value g_mime_header_get_value gives, its
     * encoded words decoded; its public parser decodes those of plain
     * parameters only, after splitting them.  The two differ where a
     * decoded word holds a quote or a semicolon, names the type, or sits
     * in an RFC 2231 parameter (name*=): parsing the decoded value, as the
     * object does, reads them all alike. */
    char *uf = header_value(opts, raw);
    *ct = g_mime_content_type_parse(opts, uf);
    heard = *warned;
    *warned |= before;
    g_free(uf);
    if (!*ct || g_ascii_strcasecmp(g_mime_content_type_get_media_type(*ct), rct->type) ||
        g_ascii_strcasecmp(g_mime_content_type_get_media_subtype(*ct), rct->sub))
        return DT_NO;
    if (strcmp(rct->type, "multipart")) {
        tc_keep(TC_CTYPE, raw, *ct, heard);
        return DT_LEAF;
    }
    const char *bd = g_mime_content_type_get_parameter(*ct, "boundary");
    if ((strcmp(rct->sub, "mixed") && strcmp(rct->sub, "alternative") &&
         strcmp(rct->sub, "related")) ||
        !rct->has_boundary || rct->bad_boundary || !bd || strcmp(bd, rct->boundary))
        return DT_NO;
    return DT_MULTIPART;
}

/* direct_leaf - encoding and disposition of a leaf from raw values (NULL:
 * absent), GMime's complaints to *warned; 0 for uuencode, whose decoding
 * GMime's data wrapper does its own way. */
static int direct_leaf(GMimeParserOptions *opts, uint32_t *warned, const char *cte,
                       const char *disp, dleaf *l)
{
    l->enc = cte ? g_mime_content_encoding_from_string(cte) : GMIME_CONTENT_ENCODING_DEFAULT;
    if (l->enc == GMIME_CONTENT_ENCODING_UUENCODE)
        return 0;
    if (disp && !(l->cd = tc_lookup(TC_DISP, disp, warned))) {
        uint32_t before = *warned;
        *warned = 0;
        char *uf = header_value(opts, disp); /* as GMime's part does (see direct_type) */
        l->cd = g_mime_content_disposition_parse(opts, uf);
        if (l->cd)
            tc_keep(TC_DISP, disp, l->cd, *warned);
        *warned |= before;
        g_free(uf);
    }
    return 1;
}

/* Multiparts nested in one another that the direct path takes: enough for
 * what mail clients write (mixed > alternative > related). */
#define DIRECT_MAX_NEST 4

/* A multipart's parts as the direct path scans them: its leaves in the
 * order GMime's walk meets them, and the objects counted for max_parts. */
typedef struct dscan {
    GMimeParserOptions *opts;
    uint32_t *warned; /* the options' warning data */
    const uint8_t *p;
    dleaf *v;
    size_t nv, cap;
    size_t nodes, max_nodes; /* multiparts and leaves, as walk_object counts them */
    unsigned max_depth;      /* the walk's (lim.max_depth) */
    const char *bound[DIRECT_MAX_NEST];
    unsigned nbound; /* the boundaries of the multiparts around */
} dscan;

static int direct_multipart(dscan *d, size_t body, size_t n, const mv_rm_ctype *rct,
                            unsigned depth);

/* bound_clash - 1 when b and one of the boundaries around are one a prefix
 * of the other: a line could then close the one and delimit the other,
 * and which GMime takes is its business. */
static int bound_clash(const dscan *d, const char *b)
{
    size_t bl = strlen(b);
    for (unsigned i = 0; i < d->nbound; i++) {
        size_t ol = strlen(d->bound[i]);
        if (!memcmp(d->bound[i], b, ol < bl ? ol : bl))
            return 1;
    }
    return 0;
}

/* direct_part - one part of a multipart at depth (its parent's depth + 1),
 * p[s..e) (from after its delimiter line to the start of the next, which
 * ends with a CRLF when crlf): its header block and content, when the part
 * is one the direct path may take (plain fields, none repeated, no 8-bit
 * byte, some content, a leaf or a multipart the direct path takes).  A
 * leaf is added to d->v; a multipart's leaves are, after it is counted. */
static int direct_part(dscan *d, size_t s, size_t e, int crlf, unsigned depth)
{
    GMimeParserOptions *opts = d->opts;
    const uint8_t *p = d->p;
    mv_rm_hblock hb;
    mv_rm_scan_headers(p + s, e - s, e - s, &hb);
    if (!hb.complete || !hb.hlen)
        return 0;
    for (size_t i = 0; i < hb.hlen; i++)
        if (hb.p[i] & 0x80)
            return 0; /* GMime warns of 8-bit header bytes, and decodes them its way */
    nameset seen = {0};
    size_t pos = 0, fs, fe, nlen, vlen;
    const uint8_t *name, *val;
    char *ctype = NULL, *cte = NULL, *disp = NULL;
    dleaf l = {0};
    int ok = 0;
    while (mv_rm_next_line(&hb, &pos, &fs, &fe, &name, &nlen, &val, &vlen)) {
        /* every field of a part is checked for repeats (a defect) */
        if (!nlen || name[nlen] != ':' || !nameset_add(&seen, name, nlen))
            goto out;
        char **slot = NULL;
        if (nlen == 12 && !g_ascii_strncasecmp((const char *)name, "content-type", 12))
            slot = &ctype;
        else if (nlen == 25 &&
                 !g_ascii_strncasecmp((const char *)name, "content-transfer-encoding", 25))
            slot = &cte;
        else if (nlen == 19 && !g_ascii_strncasecmp((const char *)name, "content-disposition", 19))
            slot = &disp;
        if (has_encoded_word(val, vlen)) {
            /* a MIME field: parsers of GMime's own (see direct_headers) */
            if (nlen >= 8 && !g_ascii_strncasecmp((const char *)name, "content-", 8) &&
                slot != &ctype && slot != &disp)
                goto out;
            if (slot != &ctype) /* (direct_type decodes it, complaints and all) */
                decode_for_warnings(opts, val, vlen);
        }
        if (slot)
            *slot = g_strndup((const char *)val, vlen);
    }
    /* the line end before the delimiter belongs to it (RFC 2046 5.1.1);
     * GMime takes its length from the delimiter line's own end */
    size_t c = s + hb.body_off, trim = crlf ? 2 : 1;
    if (e < c || e - c <= trim || ++d->nodes > d->max_nodes)
        goto out; /* no content: GMime may warn of a part without any */
    mv_rm_ctype rct;
    switch (direct_type(opts, d->warned, ctype, &rct, &l.ct)) {
    case DT_LEAF:
        l.c = p + c;
        l.cn = e - c - trim;
        if (!direct_leaf(opts, d->warned, cte, disp, &l))
            break;
        if (d->nv == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 4;
            d->v = mv_xrealloc(d->v, d->cap * sizeof *d->v);
        }
        d->v[d->nv++] = l;
        memset(&l, 0, sizeof l);
        ok = 1;
        break;
    case DT_MULTIPART:
        /* its parts sit one deeper; a transfer encoding on a multipart is
         * GMime's business */
        if (d->nbound == DIRECT_MAX_NEST || depth + 1 > d->max_depth ||
            (cte && g_mime_content_encoding_from_string(cte) > GMIME_CONTENT_ENCODING_BINARY) ||
            bound_clash(d, rct.boundary))
            break;
        /* its content runs to the parent's next delimiter line, whose line
         * end is the close delimiter's, or the epilogue's */
        ok = direct_multipart(d, c, e, &rct, depth);
        break;
    default:
        break;
    }
out:
    dleaf_clear(&l);
    g_free(ctype);
    g_free(cte);
    g_free(disp);
    return ok;
}

/* direct_multipart - the parts of the multipart at depth whose body is
 * p[body..n), with the boundary of rct, scanned as GMime's parser does (a
 * delimiter line is "--" boundary, then "--" for the last, then only
 * blanks), their leaves added to d->v; 0 when the multipart is not one the
 * direct path may take: no part, no close delimiter, more objects than
 * max_parts, or a part direct_part refuses.  d->v keeps what was added
 * either way, for the caller to clear. */
static int direct_multipart(dscan *d, size_t body, size_t n, const mv_rm_ctype *rct, unsigned depth)
{
    const uint8_t *p = d->p;
    char delim[MV_RM_MAX_BOUNDARY + 3];
    size_t dl = (size_t)snprintf(delim, sizeof delim, "--%s", rct->boundary);
    size_t parts = 0, i = body, start = 0;
    int open = 0, closed = 0;
    if (dl >= sizeof delim || d->nbound == DIRECT_MAX_NEST)
        return 0;
    d->bound[d->nbound++] = rct->boundary;
    while (i < n && !closed) {
        const uint8_t *nl = memchr(p + i, '\n', n - i);
        size_t le = nl ? (size_t)(nl - p) : n, next = nl ? le + 1 : n;
        size_t ce = le > i && p[le - 1] == '\r' ? le - 1 : le;
        int kind = 0;
        if (ce - i >= dl && !memcmp(p + i, delim, dl)) {
            size_t k = i + dl;
            int last = ce - k >= 2 && p[k] == '-' && p[k + 1] == '-';
            size_t r = last ? k + 2 : k;
            while (r < ce && mv_rm_is_wsp(p[r]))
                r++;
            if (r == ce) /* "--b--x" is neither: as a delimiter, "--x" is not blanks */
                kind = last ? 2 : 1;
        }
        if (kind) {
            if (open) {
                if (!direct_part(d, start, i, le > ce, depth + 1))
                    break;
                parts++;
            }
            if (kind == 2)
                closed = open;
            if (kind == 2 || !nl)
                break; /* a close before any part, or a delimiter at the very end */
            open = 1;
            start = next;
        }
        i = next;
    }
    d->nbound--;
    return closed && parts;
}

/* direct_walk - walk_leaf for a leaf read directly. */
static void direct_walk(walk *w, dleaf *l)
{
    w->nodes++;
    const char *fname = l->cd ? g_mime_content_disposition_get_parameter(l->cd, "filename") : NULL;
    if (!fname)
        fname = g_mime_content_type_get_parameter(l->ct, "name");
    int is_body =
        leaf_count(w, l->ct, fname, l->cd && g_mime_content_disposition_is_attachment(l->cd));
    const uint8_t *c;
    size_t cn;
    direct_decode(w, l->enc, l->c, l->cn, &c, &cn);
    leaf_hash(w, is_body, g_mime_content_type_get_parameter(l->ct, "charset"), l->enc, c, cn);
}

/* summarize_direct - the summary of p[0..n) without building GMime's
 * message, when the message qualifies (see above); 0 when it does not,
 * with nothing in w->mi changed. */
static int summarize_direct(walk *w, GMimeParserOptions *opts, const uint8_t *p, size_t n,
                            const rawscan *rs)
{
    char *f[DF_COUNT] = {0};
    GMimeContentType *top = NULL;
    dleaf one = {0}, *parts = NULL;
    InternetAddressList *lists[DF_REPLY_TO + 1] = {0};
    size_t nparts = 0;
    mv_rm_ctype rct;
    int ok = 0;
    if (rs->defects & (MV_DEFECT_NUL | MV_DEFECT_BARE_CR | MV_DEFECT_8BIT_HEADER) ||
        rs->header_end >= n || !direct_headers(opts, p, rs->header_end, rs->header_bytes, f))
        goto out;
    switch (direct_type(opts, &w->warned, f[DF_CTYPE], &rct, &top)) {
    case DT_LEAF:
        one.ct = top;
        top = NULL;
        one.c = p + rs->header_bytes;
        one.cn = n - rs->header_bytes;
        if (!direct_leaf(opts, &w->warned, f[DF_CTE], f[DF_CDISP], &one))
            goto out;
        parts = &one;
        nparts = 1;
        break;
    case DT_MULTIPART:
        /* mixed line ends: GMime trims a part's content by the delimiter
         * line's end, whatever the content's own last line end was */
        if (rs->defects & MV_DEFECT_BARE_LF)
            goto out;
        dscan d = {.opts = opts,
                   .warned = &w->warned,
                   .p = p,
                   .nodes = 1,
                   .max_nodes = w->lim.max_parts,
                   .max_depth = w->lim.max_depth};
        int mp_ok = direct_multipart(&d, rs->header_bytes, n, &rct, 0);
        parts = d.v;
        nparts = d.nv;
        if (!mp_ok)
            goto out;
        /* the multiparts: what walk_object counts besides the leaves */
        w->nodes += (unsigned)(d.nodes - d.nv);
        break;
    default:
        goto out;
    }
    if (!direct_addresses(opts, &w->warned, f, lists))
        goto out;
    ok = 1;

    /* from here as the full path: headers, the parts, the digests */
    fill_direct(w, opts, f, lists);
    w->body = EVP_MD_CTX_new();
    if (!w->body || !EVP_DigestInit_ex(w->body, mv_md_sha256(), NULL))
        mv_assert_fail("EVP_DigestInit_ex", __FILE__, __LINE__);
    for (size_t i = 0; i < nparts; i++)
        direct_walk(w, &parts[i]);
    if (!w->mi->meta.message_id)
        dedup_raw(p, n, w->mi->meta.dedup);
    else
        dedup_fields(w, f[DF_DATE]);

out:
    if (parts != &one) {
        for (size_t i = 0; i < nparts; i++)
            dleaf_clear(&parts[i]);
        free(parts);
    }
    dleaf_clear(&one);
    if (top)
        g_object_unref(top);
    for (int k = DF_FROM; k <= DF_REPLY_TO; k++)
        if (lists[k])
            g_object_unref(lists[k]);
    for (int k = 0; k < DF_COUNT; k++)
        g_free(f[k]);
    return ok;
}

static int lim_every(const mv_mime_limits *lim)
{
    return lim && lim->every_field;
}

static size_t lim_or(size_t v, size_t dflt)
{
    return v ? v : dflt;
}

mv_status mv_mime_summarize(const uint8_t *p, size_t n, const mv_mime_limits *lim, mv_msginfo **out,
                            mv_err *err)
{
    return mv_mime_summarize_digested(p, n, NULL, lim, out, err);
}

mv_status mv_mime_summarize_digested(const uint8_t *p, size_t n, const uint8_t *sha256,
                                     const mv_mime_limits *lim, mv_msginfo **out, mv_err *err)
{
    (void)err;
    mv_mime_limits dl;
    mv_mime_limits_default(&dl);
    walk w;
    memset(&w, 0, sizeof w);
    /* zero fields mean "default", so a zeroed struct is a valid request */
    w.lim.max_depth = lim && lim->max_depth ? lim->max_depth : dl.max_depth;
    w.lim.max_parts = lim && lim->max_parts ? lim->max_parts : dl.max_parts;
    w.lim.max_header_bytes = lim_or(lim ? lim->max_header_bytes : 0, dl.max_header_bytes);
    w.lim.max_names = lim_or(lim ? lim->max_names : 0, dl.max_names);
    w.lim.max_parse_bytes = lim_or(lim ? lim->max_parse_bytes : 0, dl.max_parse_bytes);

    GMimeParserOptions *opts = NULL;
    GMimeMessage *msg = NULL;
    const char *raw_date = NULL;
    mv_msginfo *mi = mv_xcalloc(1, sizeof *mi);
    w.mi = mi;
    mi->meta.date_t = INT64_MIN;
    if (!p)
        p = (const uint8_t *)"";

    mv_mime_init();
    if (sha256) {
        memcpy(mi->meta.sha256, sha256, 32);
    } else {
        unsigned len = 0;
        if (!EVP_Digest(p, n, mi->meta.sha256, &len, mv_md_sha256(), NULL))
            mv_assert_fail("EVP_Digest", __FILE__, __LINE__);
    }
    rawscan rs;
    scan_raw(p, n, &rs);
    mi->meta.defects |= rs.defects;
    mi->meta.header_bytes = rs.header_bytes;
    mi->body_bytes = n - rs.header_bytes;

    size_t parse_len = n;
    int headers_only = 0;
    if (rs.header_end > w.lim.max_header_bytes) {
        mi->meta.defects |= MV_DEFECT_HEADER_LIMIT | MV_DEFECT_NOT_PARSED;
        headers_only = 1;
        /* cut at the last complete line within the limit */
        size_t cut = w.lim.max_header_bytes;
        while (cut > 0 && p[cut - 1] != '\n')
            cut--;
        parse_len = cut;
    } else if (n > w.lim.max_parse_bytes || n > G_MAXUINT ||
               rs.boundaries > (size_t)w.lim.max_parts * 2 + 16) {
        mi->meta.defects |= MV_DEFECT_NOT_PARSED;
        if (rs.boundaries > (size_t)w.lim.max_parts * 2 + 16)
            mi->meta.defects |= MV_DEFECT_PARTS_LIMIT;
        headers_only = 1;
        parse_len = rs.header_bytes;
    }

    opts = g_mime_parser_options_new();
    g_mime_parser_options_set_warning_callback(opts, on_warning, &w.warned);
    if (!headers_only && !lim_every(lim) && summarize_direct(&w, opts, p, n, &rs)) {
        mi->direct = 1;
        goto out;
    }
    w.warned = 0; /* what a direct attempt heard, GMime's parse will say again */
    w.fmt = g_mime_format_options_new();
    g_mime_format_options_set_newline_format(w.fmt, GMIME_NEWLINE_FORMAT_UNIX);

    /* the filter needs a complete header block (scan_raw found the empty
     * line: header_end < n) that GMime reads whole */
    int filter = !lim_every(lim) && rs.header_end < n && rs.header_bytes <= parse_len;
    msg = parse(p, parse_len, filter ? rs.header_bytes : 0, opts);
    if (!msg) {
        mi->meta.defects |=
            MV_DEFECT_UNPARSEABLE | MV_DEFECT_NO_FROM | MV_DEFECT_NO_DATE | MV_DEFECT_NO_MSGID;
        dedup_raw(p, n, mi->meta.dedup);
        goto out;
    }
    fill_headers(&w, msg, opts, &raw_date);
    if (headers_only) {
        /* the body was not read, so only identical bytes may merge */
        dedup_raw(p, n, mi->meta.dedup);
        goto out;
    }
    /* Without a Message-ID the remaining fields do not tell messages
     * apart well enough (two header blocks cut off at different places,
     * both without body, From or Subject, would merge): such a message
     * merges only with byte-identical copies. */
    int no_msgid = !mi->meta.message_id;

    w.body = EVP_MD_CTX_new();
    if (!w.body || !EVP_DigestInit_ex(w.body, mv_md_sha256(), NULL))
        mv_assert_fail("EVP_DigestInit_ex", __FILE__, __LINE__);
    GMimeObject *top = g_mime_message_get_mime_part(msg);
    if (top)
        walk_object(&w, top, 0, 0);
    if (no_msgid)
        dedup_raw(p, n, mi->meta.dedup);
    else
        dedup_fields(&w, raw_date);

out:
    mi->meta.defects |= w.warned;
    if (w.names.n) {
        strvec_push(&w.names, NULL); /* NULL-terminated as well */
        mi->meta.attachments = w.names.v;
        mi->meta.n_names = w.names.n - 1;
        w.names.v = NULL;
        w.names.n = w.names.cap = 0;
    }
    strvec_free(&w.names);
    strvec_free(&w.content);
    mv_buf_free(&w.tmp);
    mv_buf_free(&w.norm);
    EVP_MD_CTX_free(w.body);
    if (msg)
        g_object_unref(msg);
    if (w.fmt)
        g_mime_format_options_free(w.fmt);
    if (opts)
        g_mime_parser_options_free(opts);
    *out = mi;
    return MV_OK;
}

void mv_msginfo_free(mv_msginfo *m)
{
    if (!m)
        return;
    mv_msgmeta_clear(&m->meta);
    for (size_t i = 0; i < m->n_recipients; i++)
        free(m->recipients[i]);
    free(m->recipients);
    free(m);
}

/* Names in bit order; stable: they appear in exports and logs. */
static const char *const defect_names[] = {
    "unparseable",  "no-from",      "no-date",     "bad-date",    "no-msgid",    "bare-lf",
    "bare-cr",      "nul",          "8bit-header", "depth-limit", "parts-limit", "bad-boundary",
    "bad-encoding", "header-limit", "long-line",   "dup-header",  "not-parsed",
};

char *mv_defects_str(uint32_t defects, char *out, size_t n)
{
    return mv_bits_str(defects, defect_names, sizeof defect_names / sizeof defect_names[0], "bit",
                       out, n);
}
