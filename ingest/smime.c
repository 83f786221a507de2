/* SPDX-License-Identifier: MIT */
/* smime.c - S/MIME escrow decryption front end (see smime.h and
 * docs/decryption.md for the decrypted form).
 *
 * Layout: a small bounded MIME scanner over raw bytes (the decrypted form
 * is defined on byte ranges, which GMime does not expose), the keyring, the
 * CMS layer loop (decrypt / verify / unwrap), the message driver (every
 * entity in document order, unwrapped content searched again), and key
 * import. */
#include "smime.h"

#include "../lib/util.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../lib/digest.h"

/* Recursion of the MIME walk, and of the search inside unwrapped entities
 * (each one MIME level deeper), is bounded by max_depth; a caller asking
 * for more than this still gets this much, so the C stack stays small. */
#define SMIME_DEPTH_CAP 100u
/* How many bytes of one header field's value are looked at (a boundary or
 * smime-type past this is not seen). */
#define SMIME_FIELD_MAX 4096u
/* DER nesting walked when reading the content-encryption algorithm. */
#define SMIME_DER_DEPTH 32

/* ---- small helpers ------------------------------------------------------- */

/* ossl_reason - the root cause on OpenSSL's error queue as text (or
 * fallback when the queue is empty); clears the queue. */
static void ossl_reason_or(char *out, size_t n, const char *fallback)
{
    unsigned long e, first = 0;
    while ((e = ERR_get_error()) != 0)
        if (!first)
            first = e;
    const char *s = first ? ERR_reason_error_string(first) : NULL;
    if (s)
        snprintf(out, n, "%s", s);
    else if (first)
        snprintf(out, n, "OpenSSL error %lx", first);
    else
        snprintf(out, n, "%s", fallback);
}

static void ossl_reason(char *out, size_t n)
{
    ossl_reason_or(out, n, "unknown error");
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static char *bio_text(BIO *b)
{
    char *data = NULL;
    long len = BIO_get_mem_data(b, &data);
    return mv_xstrndup(data ? data : "", len > 0 ? (size_t)len : 0);
}

/* name_text - an X.509 name in RFC 2253 form.  The RFC 2253 flags escape
 * control and non-ASCII bytes and ',;+"\<>', so the text is plain ASCII
 * and cannot break the "issuer=...;serial=..." form. */
static char *name_text(const X509_NAME *nm)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return mv_xstrdup("");
    X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253);
    char *s = bio_text(b);
    BIO_free(b);
    return s;
}

static char *hex_of(const uint8_t *p, size_t n)
{
    char *s = mv_xmalloc(2 * n + 1);
    mv_hex(p, n, s);
    return s;
}

/* int_hex - lower-case hex of an INTEGER's magnitude, "-" first if negative. */
static char *int_hex(const ASN1_INTEGER *i)
{
    const uint8_t *d = ASN1_STRING_get0_data(i);
    size_t n = (size_t)ASN1_STRING_length(i);
    int neg = ASN1_STRING_type(i) == V_ASN1_NEG_INTEGER;
    if (n == 0)
        return mv_xstrdup("00");
    char *h = hex_of(d, n);
    char *s = mv_xasprintf("%s%s", neg ? "-" : "", h);
    free(h);
    return s;
}

static int64_t asn1_time_epoch(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return INT64_MIN;
    return (int64_t)timegm(&tm);
}

/* key_alg_name - "rsa-2048", "ec-p256", ... */
static char *key_alg_name(EVP_PKEY *k)
{
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA)
        return mv_xasprintf("rsa-%d", EVP_PKEY_get_bits(k));
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC) {
        char g[64] = "";
        size_t gl = 0;
        if (!EVP_PKEY_get_group_name(k, g, sizeof g, &gl))
            return mv_xstrdup("ec");
        if (!strcmp(g, "prime256v1") || !strcmp(g, "P-256"))
            return mv_xstrdup("ec-p256");
        if (!strcmp(g, "secp384r1") || !strcmp(g, "P-384"))
            return mv_xstrdup("ec-p384");
        if (!strcmp(g, "secp521r1") || !strcmp(g, "P-521"))
            return mv_xstrdup("ec-p521");
        char *s = mv_xasprintf("ec-%s", g);
        lower(s);
        return s;
    }
    const char *t = EVP_PKEY_get0_type_name(k);
    char *s = mv_xstrdup(t ? t : "unknown");
    lower(s);
    return s;
}

/* ---- MIME scanning over raw bytes ---------------------------------------- */

typedef struct hdrinfo {
    size_t hdr_len;  /* bytes of header fields (the blank line excluded) */
    size_t body_off; /* where the body starts (n when there is none) */
    int over_limit;  /* the header block passed MV_SMIME_MAX_HEADER_BYTES */
    char type[96];   /* "type/subtype" lower case, "" when absent */
    char smime_type[48];
    char protocol[96];
    char boundary[MV_SMIME_MAX_BOUNDARY + 1];
    char name[160]; /* Content-Type name= or Content-Disposition filename= */
    char cte[48];
} hdrinfo;

enum { K_OTHER, K_PKCS7, K_MSIGNED, K_MULTIPART, K_MESSAGE };

static size_t line_end(const uint8_t *p, size_t n, size_t pos)
{
    const uint8_t *nl = memchr(p + pos, '\n', n - pos);
    return nl ? (size_t)(nl - p) + 1 : n;
}

/* field_end - end of the header field starting at pos (continuation lines
 * begin with SP or HT). */
static size_t field_end(const uint8_t *p, size_t hdr_len, size_t pos)
{
    size_t e = line_end(p, hdr_len, pos);
    while (e < hdr_len && (p[e] == ' ' || p[e] == '\t'))
        e = line_end(p, hdr_len, e);
    return e;
}

/* field_is - does the field at p[pos..end) have this name (case-insensitive)? */
static int field_is(const uint8_t *p, size_t pos, size_t end, const char *name)
{
    size_t l = strlen(name);
    return end - pos > l && p[pos + l] == ':' && strncasecmp((const char *)p + pos, name, l) == 0;
}

/* field_value - the unfolded value (CR and LF dropped), at most
 * SMIME_FIELD_MAX - 1 bytes, NUL-terminated, NULs replaced. */
static void field_value(const uint8_t *p, size_t pos, size_t end, char *out)
{
    const uint8_t *c = memchr(p + pos, ':', end - pos);
    size_t o = 0;
    for (size_t i = c ? (size_t)(c - p) + 1 : end; i < end && o < SMIME_FIELD_MAX - 1; i++) {
        if (p[i] == '\r' || p[i] == '\n')
            continue;
        out[o++] = p[i] ? (char)p[i] : ' ';
    }
    out[o] = 0;
}

static void copy_bounded(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

/* parse_params - Content-Type / Content-Disposition: the leading token
 * (lower case) into tok, and the parameters we use.  RFC 2231 "name*"
 * values lose their charset'lang' prefix; continuations are not joined
 * (no S/MIME file name needs them). */
static void parse_params(const char *v, char *tok, size_t tokcap, hdrinfo *h)
{
    const char *s = v;
    while (*s == ' ' || *s == '\t')
        s++;
    const char *t = s;
    while (*s && *s != ';' && *s != ' ' && *s != '\t' && *s != '(')
        s++;
    if (tok) {
        copy_bounded(tok, tokcap, t, (size_t)(s - t));
        lower(tok);
    }
    while (*s) {
        const char *semi = strchr(s, ';');
        if (!semi)
            break;
        s = semi + 1;
        while (*s == ' ' || *s == '\t')
            s++;
        const char *nm = s;
        while (*s && *s != '=' && *s != ';')
            s++;
        if (*s != '=')
            continue;
        size_t nl = (size_t)(s - nm);
        while (nl && (nm[nl - 1] == ' ' || nm[nl - 1] == '\t'))
            nl--;
        s++;
        while (*s == ' ' || *s == '\t')
            s++;
        char val[SMIME_FIELD_MAX];
        size_t o = 0;
        if (*s == '"') {
            s++;
            while (*s && *s != '"') {
                if (*s == '\\' && s[1])
                    s++;
                if (o < sizeof val - 1)
                    val[o++] = *s;
                s++;
            }
            if (*s == '"')
                s++;
        } else {
            while (*s && *s != ';' && *s != ' ' && *s != '\t') {
                if (o < sizeof val - 1)
                    val[o++] = *s;
                s++;
            }
        }
        val[o] = 0;
        const char *vv = val;
        int ext = nl > 0 && nm[nl - 1] == '*';
        if (ext) {
            nl--;
            const char *q1 = strchr(val, '\'');
            const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
            if (q2)
                vv = q2 + 1;
        }
#define PARAM_IS(lit) (nl == sizeof(lit) - 1 && strncasecmp(nm, lit, nl) == 0)
        if (PARAM_IS("boundary"))
            copy_bounded(h->boundary, sizeof h->boundary, vv, strlen(vv));
        else if (PARAM_IS("smime-type")) {
            copy_bounded(h->smime_type, sizeof h->smime_type, vv, strlen(vv));
            lower(h->smime_type);
        } else if (PARAM_IS("protocol")) {
            copy_bounded(h->protocol, sizeof h->protocol, vv, strlen(vv));
            lower(h->protocol);
        } else if ((PARAM_IS("name") || PARAM_IS("filename")) && !h->name[0])
            copy_bounded(h->name, sizeof h->name, vv, strlen(vv));
#undef PARAM_IS
    }
}

/* parse_headers - find the header block of the entity p[0..n) and read the
 * fields that decide what it is. */
static void parse_headers(const uint8_t *p, size_t n, hdrinfo *h)
{
    memset(h, 0, sizeof *h);
    h->hdr_len = n;
    h->body_off = n;
    size_t pos = 0;
    while (pos < n) {
        if (pos > MV_SMIME_MAX_HEADER_BYTES) {
            h->over_limit = 1;
            h->hdr_len = h->body_off = pos;
            break;
        }
        size_t e = line_end(p, n, pos);
        size_t l = e - pos;
        if (l && p[e - 1] == '\n')
            l--;
        if (l && p[pos + l - 1] == '\r')
            l--;
        if (l == 0 && e > pos) {
            h->hdr_len = pos;
            h->body_off = e;
            break;
        }
        pos = e;
    }
    char v[SMIME_FIELD_MAX];
    for (pos = 0; pos < h->hdr_len;) {
        size_t e = field_end(p, h->hdr_len, pos);
        if (field_is(p, pos, e, "content-type")) {
            field_value(p, pos, e, v);
            parse_params(v, h->type, sizeof h->type, h);
        } else if (field_is(p, pos, e, "content-transfer-encoding")) {
            field_value(p, pos, e, v);
            parse_params(v, h->cte, sizeof h->cte, h);
        } else if (field_is(p, pos, e, "content-disposition")) {
            field_value(p, pos, e, v);
            parse_params(v, NULL, 0, h);
        }
        pos = e;
    }
}

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

static int classify(const hdrinfo *h)
{
    if (!strcmp(h->type, "application/pkcs7-mime") || !strcmp(h->type, "application/x-pkcs7-mime"))
        return strcmp(h->smime_type, "certs-only") ? K_PKCS7 : K_OTHER;
    if (!strcmp(h->type, "application/octet-stream") && ends_with_ci(h->name, ".p7m"))
        return K_PKCS7;
    if (!strcmp(h->type, "multipart/signed") &&
        (!strcmp(h->protocol, "application/pkcs7-signature") ||
         !strcmp(h->protocol, "application/x-pkcs7-signature")))
        return h->boundary[0] ? K_MSIGNED : K_OTHER;
    if (!strncmp(h->type, "multipart/", 10))
        return h->boundary[0] ? K_MULTIPART : K_OTHER;
    if (!strcmp(h->type, "message/rfc822") || !strcmp(h->type, "message/global")) {
        /* only an unencoded inner message can have its bytes replaced */
        if (!h->cte[0] || !strcmp(h->cte, "7bit") || !strcmp(h->cte, "8bit") ||
            !strcmp(h->cte, "binary"))
            return K_MESSAGE;
    }
    return K_OTHER;
}

/* An iterator over the body parts of a multipart body p[0..n). */
typedef struct mp_iter {
    const uint8_t *p;
    size_t n, pos;
    const char *b;
    size_t bl;
    int done, unterminated;
} mp_iter;

/* next_delim - the next delimiter line at or after pos (a line start);
 * returns its offset or n, *close for "--b--", *after = the next line. */
static size_t next_delim(const mp_iter *it, size_t pos, int *close, size_t *after)
{
    const uint8_t *p = it->p;
    size_t n = it->n;
    while (pos < n) {
        if (n - pos >= it->bl + 2 && p[pos] == '-' && p[pos + 1] == '-' &&
            memcmp(p + pos + 2, it->b, it->bl) == 0) {
            size_t q = pos + 2 + it->bl;
            int c = n - q >= 2 && p[q] == '-' && p[q + 1] == '-';
            if (c)
                q += 2;
            while (q < n && (p[q] == ' ' || p[q] == '\t' || p[q] == '\r'))
                q++;
            if (q >= n || p[q] == '\n') {
                *close = c;
                *after = q < n ? q + 1 : n;
                return pos;
            }
        }
        pos = line_end(p, n, pos);
    }
    return n;
}

static void mp_init(mp_iter *it, const uint8_t *p, size_t n, const char *boundary)
{
    memset(it, 0, sizeof *it);
    it->p = p;
    it->n = n;
    it->b = boundary;
    it->bl = strlen(boundary);
    int close = 0;
    size_t after = n;
    size_t d = next_delim(it, 0, &close, &after);
    if (d >= n || close)
        it->done = 1; /* no parts (or only a close delimiter) */
    it->pos = after;
}

/* mp_next - the next part's range (the line break before the following
 * delimiter belongs to the delimiter, RFC 2046 5.1.1). */
static int mp_next(mp_iter *it, size_t *off, size_t *len)
{
    if (it->done)
        return 0;
    int close = 0;
    size_t after = it->n;
    size_t start = it->pos;
    size_t d = next_delim(it, start, &close, &after);
    size_t end = d;
    if (d >= it->n) {
        it->unterminated = 1;
        it->done = 1;
        end = it->n;
    } else {
        if (end > start && it->p[end - 1] == '\n')
            end--;
        if (end > start && it->p[end - 1] == '\r')
            end--;
        if (close)
            it->done = 1;
        it->pos = after;
    }
    *off = start;
    *len = end - start;
    return 1;
}

typedef struct walkst {
    unsigned parts, max_depth; /* parts: counted over every walk of one message */
    int limit;
} walkst;

typedef struct found {
    size_t off, len;
    unsigned depth; /* MIME nesting above the entity */
    int kind;
} found;

/* The S/MIME entities one walk found, in document order; the walk stops
 * once max are found. */
typedef struct flist {
    found *f;
    size_t n, cap, max;
} flist;

/* walk - depth-first, in document order, collect the S/MIME entities
 * within base[off..off+len), an entity at MIME depth `depth` (an S/MIME
 * entity is not searched inside: its layers are the layer loop's work).
 * Returns 1 when the walk must stop: fl->max entities found, or
 * MV_SMIME_MAX_PARTS passed. */
static int walk(walkst *w, flist *fl, const uint8_t *base, size_t off, size_t len, unsigned depth)
{
    hdrinfo h;
    parse_headers(base + off, len, &h);
    if (h.over_limit)
        w->limit = 1;
    int k = classify(&h);
    if (k == K_PKCS7 || k == K_MSIGNED) {
        if (fl->n == fl->cap) {
            fl->cap = fl->cap ? fl->cap * 2 : 4;
            fl->f = mv_xrealloc(fl->f, fl->cap * sizeof *fl->f);
        }
        fl->f[fl->n++] = (found){off, len, depth, k};
        return fl->n >= fl->max;
    }
    if (k != K_MULTIPART && k != K_MESSAGE)
        return 0;
    if (depth >= w->max_depth) {
        w->limit = 1;
        return 0;
    }
    size_t boff = off + h.body_off, blen = len - h.body_off;
    if (k == K_MESSAGE)
        return walk(w, fl, base, boff, blen, depth + 1);
    mp_iter it;
    mp_init(&it, base + boff, blen, h.boundary);
    size_t po, pl;
    while (mp_next(&it, &po, &pl)) {
        if (++w->parts > MV_SMIME_MAX_PARTS) {
            w->limit = 1;
            return 1;
        }
        if (walk(w, fl, base, boff + po, pl, depth + 1))
            return 1;
    }
    return 0;
}

static unsigned depth_of(const mv_decrypt_limits *lim)
{
    return lim->max_depth > SMIME_DEPTH_CAP ? SMIME_DEPTH_CAP : lim->max_depth;
}

int mv_smime_detect(const uint8_t *msg, size_t n)
{
    if (!msg)
        return 0;
    mv_decrypt_limits lim;
    mv_decrypt_limits_default(&lim);
    walkst w = {0, depth_of(&lim), 0};
    flist fl = {NULL, 0, 0, 1}; /* the first one answers */
    walk(&w, &fl, msg, 0, n, 0);
    int kind = fl.n ? fl.f[0].kind : K_OTHER;
    free(fl.f);
    if (kind == K_OTHER)
        return 0;
    return kind == K_PKCS7 ? MV_SMIME_DETECT_ENCRYPTED : MV_SMIME_DETECT_SIGNED;
}

static uint8_t b64_tab[256];
static pthread_once_t b64_once = PTHREAD_ONCE_INIT;

static void b64_tab_init(void)
{
    for (int c = 0; c < 256; c++) {
        int v = mv_b64_val((uint8_t)c);
        b64_tab[c] = v >= 0                                            ? (uint8_t)v
                     : c == ' ' || c == '\t' || c == '\r' || c == '\n' ? 64
                     : c == '='                                        ? 65
                                                                       : 66;
    }
}

/* b64_decode - RFC 2045 base64, whitespace ignored, stops at '='.
 * Returns -1 on any other byte. */
static int b64_decode(const uint8_t *p, size_t n, mv_buf *out)
{
    /* 0-63 value, 64 skipped (white space), 65 end ('='), 66 invalid.  A
     * table and direct stores: this runs over every encrypted message
     * (the per-byte append showed as 5% of an encrypted import). */
    pthread_once(&b64_once, b64_tab_init);
    mv_buf_reserve(out, n / 4 * 3 + 3);
    uint8_t *o = out->data + out->len;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t v = b64_tab[p[i]];
        if (v < 64) {
            acc = (acc << 6) | v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                *o++ = (uint8_t)(acc >> bits);
            }
        } else if (v == 65) {
            break;
        } else if (v == 66) {
            out->len = (size_t)(o - out->data);
            return -1;
        }
    }
    out->len = (size_t)(o - out->data);
    return 0;
}

/* ---- keyring ------------------------------------------------------------- */

typedef struct kr_entry {
    uint32_t id;
    EVP_PKEY *pkey;
    X509 *cert;
} kr_entry;

struct mv_smime_keyring {
    kr_entry *e;
    size_t n, cap;
    STACK_OF(X509) * certs; /* the escrow certificates, offered to the signature verifier */
    X509_STORE *anchors;
};

mv_smime_keyring *mv_smime_keyring_new(void)
{
    mv_smime_keyring *kr = mv_xcalloc(1, sizeof *kr);
    kr->certs = sk_X509_new_null();
    if (!kr->certs)
        mv_assert(!"out of memory");
    return kr;
}

void mv_smime_keyring_free(mv_smime_keyring *kr)
{
    if (!kr)
        return;
    for (size_t i = 0; i < kr->n; i++) {
        EVP_PKEY_free(kr->e[i].pkey); /* OpenSSL clears private key memory on free */
        X509_free(kr->e[i].cert);
    }
    free(kr->e);
    sk_X509_pop_free(kr->certs, X509_free);
    X509_STORE_free(kr->anchors);
    free(kr);
}

size_t mv_smime_keyring_count(const mv_smime_keyring *kr)
{
    return kr ? kr->n : 0;
}

static EVP_PKEY *parse_key_der(const uint8_t *p, size_t n)
{
    if (n > LONG_MAX)
        return NULL;
    const unsigned char *q = p;
    EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &q, (long)n);
    if (!k) {
        q = p;
        PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &q, (long)n);
        if (p8) {
            k = EVP_PKCS82PKEY(p8);
            PKCS8_PRIV_KEY_INFO_free(p8);
        }
    }
    return k;
}

static X509 *parse_cert_der(const uint8_t *p, size_t n)
{
    if (n > LONG_MAX)
        return NULL;
    const unsigned char *q = p;
    return d2i_X509(NULL, &q, (long)n);
}

mv_status mv_smime_keyring_add(mv_smime_keyring *kr, uint32_t id, const uint8_t *key_der,
                               size_t key_len, const uint8_t *cert_der, size_t cert_len,
                               mv_err *err)
{
    if (!kr || id == 0 || !key_der || !cert_der)
        return mv_err_set(err, MV_EUSAGE, "keyring: key id 0 or missing key/certificate");
    for (size_t i = 0; i < kr->n; i++)
        if (kr->e[i].id == id)
            return mv_err_set(err, MV_EUSAGE, "keyring: key id %u already present", id);
    EVP_PKEY *k = parse_key_der(key_der, key_len);
    X509 *c = parse_cert_der(cert_der, cert_len);
    mv_status st = MV_OK;
    if (!k) {
        ERR_clear_error();
        st = mv_err_set(err, MV_EMALFORMED, "keyring: key %u: private key does not parse", id);
        goto out;
    }
    if (!c) {
        ERR_clear_error();
        st = mv_err_set(err, MV_EMALFORMED, "keyring: key %u: certificate does not parse", id);
        goto out;
    }
    if (X509_check_private_key(c, k) != 1) {
        ERR_clear_error();
        st = mv_err_set(err, MV_ENOKEY,
                        "keyring: key %u: the private key does not belong to the certificate", id);
        goto out;
    }
    if (!X509_up_ref(c) || !sk_X509_push(kr->certs, c))
        mv_assert(!"out of memory");
    if (kr->n == kr->cap) {
        kr->cap = kr->cap ? kr->cap * 2 : 8;
        kr->e = mv_xrealloc(kr->e, kr->cap * sizeof *kr->e);
    }
    kr->e[kr->n++] = (kr_entry){id, k, c};
    k = NULL;
    c = NULL;
out:
    EVP_PKEY_free(k);
    X509_free(c);
    return st;
}

mv_status mv_smime_keyring_set_anchors_pem(mv_smime_keyring *kr, const uint8_t *pem, size_t n,
                                           unsigned *count, mv_err *err)
{
    if (n > INT32_MAX)
        return mv_err_set(err, MV_ELIMIT, "trust anchors: too large");
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    if (!b)
        mv_assert(!"out of memory");
    X509_STORE *st = X509_STORE_new();
    if (!st)
        mv_assert(!"out of memory");
    unsigned got = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(st, x))
            got++;
        X509_free(x);
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    BIO_free(b);
    if (!got) {
        X509_STORE_free(st);
        return mv_err_set(err, MV_EMALFORMED, "trust anchors: no PEM certificate found");
    }
    X509_STORE_free(kr->anchors);
    kr->anchors = st;
    if (count)
        *count = got;
    return MV_OK;
}

mv_status mv_smime_keyring_set_anchors(mv_smime_keyring *kr, const char *pem_path, mv_err *err)
{
    mv_buf f = MV_BUF_INIT;
    mv_status st = mv_read_file(pem_path, (size_t)16 << 20, &f, err);
    if (!st)
        st = mv_smime_keyring_set_anchors_pem(kr, f.data, f.len, NULL, err);
    if (st)
        mv_err_prefix(err, "%s: ", pem_path);
    mv_buf_free(&f);
    return st;
}

/* ---- CMS ----------------------------------------------------------------- */

typedef struct job {
    const mv_smime_keyring *kr;
    const mv_decrypt_limits *lim;
    mv_decrypt_result *r;
    size_t cap_rcpt;
    uint64_t *rcpt_hash; /* of r->recipients[i], to drop duplicates cheaply */
    walkst w;            /* shared by every walk of the message */
    unsigned entities;   /* S/MIME entities taken up so far */
    unsigned n_dec;      /* encryption layers opened in the whole message */
    int shut;            /* an encrypted entity stayed shut: no form */
    int stop;            /* past MV_SMIME_MAX_ENTITIES: nothing more is done, no form */
    int overflow;        /* the form being built passed max_output */
    int alg_fixed;       /* scheme, content_alg, key_alg, key_id describe an earlier entity */
    size_t out_hint;     /* first allocation of the form */
    /* The entity being unwrapped; settle() hands this to r. */
    int enc_fail; /* an encryption layer could not be opened */
    char *efail;  /* its first failure */
    int n_sigs;
    mv_sig_status sig;
    char *signer, *sig_detail;
    int64_t signing_time;
} job;

/* fnv1a - 64-bit FNV-1a of a string. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3u;
    return h;
}

/* add_recipient - takes s; an identifier listed before (by this or an
 * earlier entity) is dropped, and past MV_SMIME_MAX_RECIPIENTS listed
 * ones the list stops growing. */
static void add_recipient(job *j, char *s)
{
    mv_decrypt_result *r = j->r;
    uint64_t h = fnv1a(s);
    for (size_t i = 0; i < r->n_recipients; i++)
        if (j->rcpt_hash[i] == h && !strcmp(r->recipients[i], s)) {
            free(s);
            return;
        }
    if (r->n_recipients >= MV_SMIME_MAX_RECIPIENTS) {
        r->defects |= MV_DDEF_LIMIT;
        free(s);
        return;
    }
    if (r->n_recipients == j->cap_rcpt) {
        j->cap_rcpt = j->cap_rcpt ? j->cap_rcpt * 2 : 4;
        r->recipients = mv_xrealloc(r->recipients, j->cap_rcpt * sizeof *r->recipients);
        j->rcpt_hash = mv_xrealloc(j->rcpt_hash, j->cap_rcpt * sizeof *j->rcpt_hash);
    }
    j->rcpt_hash[r->n_recipients] = h;
    r->recipients[r->n_recipients++] = s;
}

static char *rid_text(const ASN1_OCTET_STRING *keyid, X509_NAME *issuer, ASN1_INTEGER *serial)
{
    if (keyid) {
        char *h = hex_of(ASN1_STRING_get0_data(keyid), (size_t)ASN1_STRING_length(keyid));
        char *s = mv_xasprintf("ski=%s", h);
        free(h);
        return s;
    }
    if (issuer && serial) {
        char *i = name_text(issuer), *sn = int_hex(serial);
        char *s = mv_xasprintf("issuer=%s;serial=%s", i, sn);
        free(i);
        free(sn);
        return s;
    }
    return mv_xstrdup("unknown");
}

/* keep_first - format into *slot unless a reason is there already (the
 * first reason stays). */
static void keep_first(char **slot, const char *fmt, va_list ap) MV_PRINTF(2, 0);
static void keep_first(char **slot, const char *fmt, va_list ap)
{
    if (*slot)
        return;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    *slot = mv_xstrdup(buf);
}

/* fail - why the current entity's work stopped (its first reason: the
 * one that stopped it); settle() decides whether it is the message's. */
static void fail(job *j, uint32_t defect, const char *fmt, ...) MV_PRINTF(3, 4);
static void fail(job *j, uint32_t defect, const char *fmt, ...)
{
    j->r->defects |= defect;
    va_list ap;
    va_start(ap, fmt);
    keep_first(&j->efail, fmt, ap);
    va_end(ap);
}

/* fail_msg - a reason of the whole message (a limit of the form, not of
 * one entity); the first reason recorded stays. */
static void fail_msg(job *j, uint32_t defect, const char *fmt, ...) MV_PRINTF(3, 4);
static void fail_msg(job *j, uint32_t defect, const char *fmt, ...)
{
    j->r->defects |= defect;
    va_list ap;
    va_start(ap, fmt);
    keep_first(&j->r->failure, fmt, ap);
    va_end(ap);
}

/* DER walk, only to name the content-encryption algorithm (OpenSSL 3.0
 * has no getter for it).  Bounded by the buffer and SMIME_DER_DEPTH. */
static int der_hdr(const uint8_t *p, size_t n, int *tag, int *cls, size_t *hl, size_t *cl, int *inf)
{
    if (n == 0 || n > LONG_MAX)
        return -1;
    const unsigned char *q = p;
    long len = 0;
    int ret = ASN1_get_object(&q, &len, tag, cls, (long)n);
    if (ret & 0x80) {
        ERR_clear_error();
        return -1;
    }
    *hl = (size_t)(q - p);
    *cl = (size_t)len;
    *inf = (ret & 0x01) != 0;
    if (!*inf && *cl > n - *hl)
        return -1;
    return 0;
}

static size_t der_skip(const uint8_t *p, size_t n, int depth)
{
    int tag, cls, inf;
    size_t hl, cl;
    if (depth > SMIME_DER_DEPTH || der_hdr(p, n, &tag, &cls, &hl, &cl, &inf))
        return 0;
    if (!inf)
        return hl + cl;
    size_t pos = hl;
    while (pos < n) {
        if (n - pos >= 2 && p[pos] == 0 && p[pos + 1] == 0)
            return pos + 2;
        size_t s = der_skip(p + pos, n - pos, depth + 1);
        if (!s)
            return 0;
        pos += s;
    }
    return 0;
}

/* content_cipher_nid - ContentInfo { oid, [0] { (Auth)EnvelopedData {
 * version, [0] originatorInfo OPTIONAL, SET recipientInfos,
 * SEQ (auth)encryptedContentInfo { oid, SEQ algorithm { OID ... */
static int content_cipher_nid(const uint8_t *p, size_t n)
{
    int tag, cls, inf;
    size_t hl, cl, pos = 0, s;
#define ENTER()                                                                                    \
    do {                                                                                           \
        if (der_hdr(p + pos, n - pos, &tag, &cls, &hl, &cl, &inf))                                 \
            return NID_undef;                                                                      \
        pos += hl;                                                                                 \
    } while (0)
#define SKIP()                                                                                     \
    do {                                                                                           \
        if (pos >= n || !(s = der_skip(p + pos, n - pos, 0)))                                      \
            return NID_undef;                                                                      \
        pos += s;                                                                                  \
    } while (0)
    ENTER(); /* ContentInfo */
    SKIP();  /* contentType */
    ENTER(); /* [0] */
    ENTER(); /* (Auth)EnvelopedData */
    SKIP();  /* version */
    if (der_hdr(p + pos, n - pos, &tag, &cls, &hl, &cl, &inf))
        return NID_undef;
    if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == 0)
        SKIP(); /* originatorInfo */
    SKIP();     /* recipientInfos */
    ENTER();    /* encryptedContentInfo */
    SKIP();     /* contentType */
    ENTER();    /* AlgorithmIdentifier */
    if (der_hdr(p + pos, n - pos, &tag, &cls, &hl, &cl, &inf) || tag != V_ASN1_OBJECT || inf)
        return NID_undef;
    const unsigned char *q = p + pos;
    ASN1_OBJECT *o = d2i_ASN1_OBJECT(NULL, &q, (long)(hl + cl));
    int nid = o ? OBJ_obj2nid(o) : NID_undef;
    ASN1_OBJECT_free(o);
    ERR_clear_error();
    return nid;
#undef ENTER
#undef SKIP
}

static char *cipher_name(int nid)
{
    static const struct {
        int nid;
        const char *name;
    } names[] = {
        {NID_aes_128_cbc, "aes-128-cbc"},
        {NID_aes_192_cbc, "aes-192-cbc"},
        {NID_aes_256_cbc, "aes-256-cbc"},
        {NID_aes_128_gcm, "aes-128-gcm"},
        {NID_aes_192_gcm, "aes-192-gcm"},
        {NID_aes_256_gcm, "aes-256-gcm"},
        {NID_des_ede3_cbc, "des-ede3-cbc"},
        {NID_rc2_cbc, "rc2-cbc"},
        {NID_chacha20_poly1305, "chacha20-poly1305"},
        {NID_undef, "unknown"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].nid == nid)
            return mv_xstrdup(names[i].name);
    const char *sn = OBJ_nid2sn(nid);
    char *s = mv_xstrdup(sn ? sn : "unknown");
    lower(s);
    return s;
}

static char *ktri_alg_name(CMS_RecipientInfo *ri)
{
    X509_ALGOR *alg = NULL;
    if (CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &alg) <= 0 || !alg)
        return mv_xstrdup("unknown");
    const ASN1_OBJECT *o = NULL;
    X509_ALGOR_get0(&o, NULL, NULL, alg);
    int nid = OBJ_obj2nid(o);
    if (nid == NID_rsaEncryption)
        return mv_xstrdup("rsa-pkcs1");
    if (nid == NID_rsaesOaep)
        return mv_xstrdup("rsa-oaep");
    char *s = mv_xstrdup(nid != NID_undef ? OBJ_nid2sn(nid) : "unknown");
    lower(s);
    return s;
}

static char *kari_alg_name(EVP_PKEY *k)
{
    char *ka = key_alg_name(k); /* "ec-p256" */
    char *s = mv_xasprintf("ecdh-%s", !strncmp(ka, "ec-", 3) ? ka + 3 : ka);
    free(ka);
    return s;
}

/* List every recipient for the result, and collect the (RecipientInfo,
 * key) pairs whose identifiers match an escrow certificate. */
typedef struct cand {
    CMS_RecipientInfo *ri;
    CMS_RecipientEncryptedKey *rek; /* kari only */
    const kr_entry *e;
} cand;

/* open_recipient - decrypt the content-encryption key with exactly this
 * RecipientInfo and key; 1 on success. */
static int open_recipient(CMS_ContentInfo *cms, const cand *c)
{
    int ok;
    if (c->rek) {
        if (CMS_RecipientInfo_kari_set0_pkey_and_peer(c->ri, c->e->pkey, NULL) <= 0)
            return 0;
        ok = CMS_RecipientInfo_kari_decrypt(cms, c->ri, c->rek) > 0;
        CMS_RecipientInfo_kari_set0_pkey_and_peer(c->ri, NULL, NULL);
    } else {
        /* set0 takes a reference; a second one keeps ours, and the detach
         * below drops it again (as cms_smime.c does) */
        if (!EVP_PKEY_up_ref(c->e->pkey))
            return 0;
        CMS_RecipientInfo_set0_pkey(c->ri, c->e->pkey);
        ok = CMS_RecipientInfo_decrypt(cms, c->ri) > 0;
        CMS_RecipientInfo_set0_pkey(c->ri, NULL);
    }
    return ok;
}

/* decrypt_cms - the enveloped / authEnveloped layer: content into out on
 * success (1), else the failure recorded on the result (0). */
static int decrypt_cms(job *j, CMS_ContentInfo *cms, const uint8_t *der, size_t der_len, int nid,
                       mv_buf *out)
{
    mv_decrypt_result *r = j->r;
    const mv_smime_keyring *kr = j->kr;
    int ok = 0;
    cand *cands = NULL;
    size_t nc = 0, capc = 0;
    BIO *mem = NULL;
    char why[256];

    r->encrypted = 1;
    if (!r->scheme) {
        r->scheme = mv_xstrdup(nid == NID_id_smime_ct_authEnvelopedData ? "smime-authenveloped"
                                                                        : "smime-enveloped");
        r->content_alg = cipher_name(content_cipher_nid(der, der_len));
    }
    ASN1_OCTET_STRING **pc = CMS_get0_content(cms);
    if (!pc || !*pc) {
        ERR_clear_error();
        fail(j, MV_DDEF_MALFORMED, "encrypted content absent (detached)");
        goto out;
    }
    /* CBC and GCM never make the plaintext longer than the ciphertext:
     * this one check bounds the output before anything is decrypted. */
    if ((size_t)ASN1_STRING_length(*pc) > j->lim->max_output + 32) {
        fail(j, MV_DDEF_LIMIT, "encrypted content larger than max_output (%zu bytes)",
             j->lim->max_output);
        goto out;
    }
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
    int nri = ris ? sk_CMS_RecipientInfo_num(ris) : 0;
    if (nri <= 0) {
        fail(j, MV_DDEF_MALFORMED, "no recipient info");
        goto out;
    }
    size_t seen = 0;
    for (int i = 0; i < nri; i++) {
        CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
        int type = CMS_RecipientInfo_type(ri);
        if (type == CMS_RECIPINFO_TRANS) {
            if (++seen > MV_SMIME_MAX_RECIPIENTS)
                break;
            ASN1_OCTET_STRING *keyid = NULL;
            X509_NAME *issuer = NULL;
            ASN1_INTEGER *serial = NULL;
            if (CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, &issuer, &serial) <= 0) {
                ERR_clear_error();
                add_recipient(j, mv_xstrdup("unknown"));
                continue;
            }
            add_recipient(j, rid_text(keyid, issuer, serial));
            for (size_t k = 0; k < kr->n; k++)
                if (CMS_RecipientInfo_ktri_cert_cmp(ri, kr->e[k].cert) == 0) {
                    if (nc == capc) {
                        capc = capc ? capc * 2 : 4;
                        cands = mv_xrealloc(cands, capc * sizeof *cands);
                    }
                    cands[nc++] = (cand){ri, NULL, &kr->e[k]};
                }
        } else if (type == CMS_RECIPINFO_AGREE) {
            STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);
            int nr = reks ? sk_CMS_RecipientEncryptedKey_num(reks) : 0;
            for (int q = 0; q < nr && seen < MV_SMIME_MAX_RECIPIENTS; q++) {
                seen++;
                CMS_RecipientEncryptedKey *rek = sk_CMS_RecipientEncryptedKey_value(reks, q);
                ASN1_OCTET_STRING *keyid = NULL;
                ASN1_GENERALIZEDTIME *tm = NULL;
                X509_NAME *issuer = NULL;
                ASN1_INTEGER *serial = NULL;
                if (CMS_RecipientEncryptedKey_get0_id(rek, &keyid, &tm, NULL, &issuer, &serial) <=
                    0) {
                    ERR_clear_error();
                    add_recipient(j, mv_xstrdup("unknown"));
                    continue;
                }
                add_recipient(j, rid_text(keyid, issuer, serial));
                for (size_t k = 0; k < kr->n; k++)
                    if (CMS_RecipientEncryptedKey_cert_cmp(rek, kr->e[k].cert) == 0) {
                        if (nc == capc) {
                            capc = capc ? capc * 2 : 4;
                            cands = mv_xrealloc(cands, capc * sizeof *cands);
                        }
                        cands[nc++] = (cand){ri, rek, &kr->e[k]};
                    }
            }
            if (seen >= MV_SMIME_MAX_RECIPIENTS && i + 1 < nri)
                break;
        } else if (type == CMS_RECIPINFO_KEK) {
            seen++;
            ASN1_OCTET_STRING *kid = NULL;
            if (CMS_RecipientInfo_kekri_get0_id(ri, NULL, &kid, NULL, NULL, NULL) > 0 && kid) {
                char *h = hex_of(ASN1_STRING_get0_data(kid), (size_t)ASN1_STRING_length(kid));
                add_recipient(j, mv_xasprintf("kek=%s", h));
                free(h);
            } else
                add_recipient(j, mv_xstrdup("kek"));
        } else {
            seen++;
            add_recipient(j, mv_xstrdup(type == CMS_RECIPINFO_PASS ? "password" : "other"));
        }
    }
    ERR_clear_error();
    if (seen > MV_SMIME_MAX_RECIPIENTS)
        r->defects |= MV_DDEF_LIMIT;
    if (nc == 0) {
        fail(j, 0, "no escrowed key for any recipient");
        goto out;
    }
    const cand *used = NULL;
    why[0] = 0;
    for (size_t c = 0; c < nc && !used; c++) {
        if (open_recipient(cms, &cands[c]))
            used = &cands[c];
        else
            ossl_reason(why, sizeof why);
    }
    if (!used) {
        fail(j, MV_DDEF_MALFORMED, "escrowed key %u did not open its recipient info: %s",
             cands[0].e->id, why);
        goto out;
    }
    if (!j->alg_fixed) { /* an earlier entity's are the message's */
        free(r->key_alg);
        r->key_alg = used->rek ? kari_alg_name(used->e->pkey) : ktri_alg_name(used->ri);
    }
    /* The content key is set now: CMS_decrypt with no key only runs the
     * content decryption.  CMS_DEBUG_DECRYPT makes a key-length mismatch
     * an error instead of a silent random key. */
    mem = BIO_new(BIO_s_secmem());
    if (!mem) {
        fail(j, 0, "out of memory");
        goto out;
    }
    if (CMS_decrypt(cms, NULL, NULL, NULL, mem, CMS_BINARY | CMS_DEBUG_DECRYPT) != 1) {
        /* a failed GCM tag leaves nothing on the error queue */
        ossl_reason_or(why, sizeof why, "authentication tag or padding check failed");
        fail(j, MV_DDEF_MALFORMED, "content decryption with escrowed key %u failed: %s",
             used->e->id, why);
        goto out;
    }
    char *data = NULL;
    long len = BIO_get_mem_data(mem, &data);
    if (len < 0 || (size_t)len > j->lim->max_output) {
        fail(j, MV_DDEF_LIMIT, "decrypted content larger than max_output (%zu bytes)",
             j->lim->max_output);
        goto out;
    }
    mv_buf_reserve(out, (size_t)len);
    mv_buf_append(out, data, (size_t)len);
    if (!j->alg_fixed)
        r->key_id = used->e->id;
    ok = 1;
out:
    BIO_free(mem); /* a secure-memory BIO: the plaintext is wiped */
    free(cands);
    ERR_clear_error();
    return ok;
}

static int64_t signing_time(CMS_SignerInfo *si)
{
    int idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
    if (idx < 0)
        return INT64_MIN;
    X509_ATTRIBUTE *a = CMS_signed_get_attr(si, idx);
    ASN1_TYPE *t = a ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;
    if (!t || (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME))
        return INT64_MIN;
    return asn1_time_epoch(t->value.asn1_string);
}

/* record_sig - within one entity the innermost signature is the one
 * reported (in sign-then-encrypt it is the author's); an outer one is
 * named in the detail.  Takes signer. */
static void record_sig(job *j, mv_sig_status st, char *signer, int64_t when, const char *detail)
{
    char *prev = NULL;
    if (j->n_sigs++ > 0)
        prev = mv_xasprintf("outer signature: %s%s%s", mv_sig_status_name(j->sig),
                            j->sig_detail ? ": " : "", j->sig_detail ? j->sig_detail : "");
    free(j->signer);
    free(j->sig_detail);
    j->sig = st;
    j->signer = signer;
    j->signing_time = when;
    if (detail && prev)
        j->sig_detail = mv_xasprintf("%s; %s", detail, prev);
    else if (detail)
        j->sig_detail = mv_xstrdup(detail);
    else
        j->sig_detail = prev ? mv_xstrdup(prev) : NULL;
    free(prev);
}

/* verify_signed - check a SignedData (dcont = the detached content, or
 * NULL for encapsulated), record what was found. */
static void verify_signed(job *j, CMS_ContentInfo *cms, BIO *dcont)
{
    const mv_smime_keyring *kr = j->kr;
    STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
    char why[256];
    if (!sis || sk_CMS_SignerInfo_num(sis) <= 0) {
        ERR_clear_error();
        record_sig(j, MV_SIG_ERROR, NULL, INT64_MIN, "no signer info");
        return;
    }
    CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, 0);
    int64_t when = signing_time(si);
    CMS_set1_signers_certs(cms, kr->certs, 0);
    ERR_clear_error();
    X509 *signer = NULL;
    CMS_SignerInfo_get0_algs(si, NULL, &signer, NULL, NULL);
    if (!signer) {
        record_sig(j, MV_SIG_UNKNOWN_SIGNER, NULL, when, "no certificate for the signer");
        return;
    }
    char *who = name_text(X509_get_subject_name(signer));
    BIO *sink = BIO_new(BIO_s_null());
    /* OpenSSL 3.0's CMS_verify copies detached content held in a memory
     * BIO into a BIO of its own, and with CMS_BINARY does not free that
     * copy when the SignedData cannot be read (no digest algorithm): a
     * leak per hostile message (found by fuzz_smime; openssl PR 30471).
     * Behind a buffering BIO the content is read where it is. */
    BIO *front = dcont ? BIO_new(BIO_f_buffer()) : NULL;
    if (front)
        BIO_push(front, dcont);
    int ok =
        sink && (!dcont || front) &&
        CMS_verify(cms, kr->certs, NULL, front, sink, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) == 1;
    if (front) {
        BIO_pop(front);
        BIO_free(front);
    }
    BIO_free(sink);
    if (!ok) {
        ossl_reason(why, sizeof why);
        record_sig(j, MV_SIG_INVALID, who, when, why);
        return;
    }
    if (!kr->anchors) {
        record_sig(j, MV_SIG_VALID_UNTRUSTED, who, when, "no trust anchors configured");
        return;
    }
    /* The chain is judged at the signing time when the signer stated one
     * (an archive verifies years later), else without time checks, so a
     * reprocess gives the same answer. */
    STACK_OF(X509) *untrusted = CMS_get1_certs(cms);
    if (!untrusted)
        untrusted = sk_X509_new_null();
    for (int i = 0; untrusted && i < sk_X509_num(kr->certs); i++)
        if (X509_up_ref(sk_X509_value(kr->certs, i)) &&
            !sk_X509_push(untrusted, sk_X509_value(kr->certs, i)))
            X509_free(sk_X509_value(kr->certs, i));
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int trusted = 0;
    if (ctx && untrusted && X509_STORE_CTX_init(ctx, kr->anchors, signer, untrusted)) {
        X509_STORE_CTX_set_default(ctx, "smime_sign");
        X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
        if (when != INT64_MIN)
            X509_VERIFY_PARAM_set_time(vp, (time_t)when);
        else
            X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_NO_CHECK_TIME);
        trusted = X509_verify_cert(ctx) == 1;
        if (!trusted)
            snprintf(why, sizeof why, "not trusted: %s",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    } else
        snprintf(why, sizeof why, "chain check failed");
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(untrusted, X509_free);
    ERR_clear_error();
    record_sig(j, trusted ? MV_SIG_VALID : MV_SIG_VALID_UNTRUSTED, who, when, trusted ? NULL : why);
}

/* Content encrypted with a cipher OpenSSL 3 keeps in its legacy provider
 * (RC2: Outlook and old S/MIME clients; single DES) is decrypted through a
 * library context of its own that has it, made once.  The process's
 * default context never gains the legacy algorithms, so nothing else can
 * pick one by accident; a CMS object parsed into this context does all
 * its work in it (content decryption included). */
static pthread_once_t legacy_once = PTHREAD_ONCE_INIT;
static OSSL_LIB_CTX *legacy_ctx;
static OSSL_PROVIDER *legacy_prov[2]; /* held, like the context, for the process's life */

/* legacy_free - at exit, after every thread is done: the context's
 * process-wide state (its primary random generator) is freed with it. */
static void legacy_free(void)
{
    for (int i = 0; i < 2; i++)
        if (legacy_prov[i])
            OSSL_PROVIDER_unload(legacy_prov[i]);
    OSSL_LIB_CTX_free(legacy_ctx);
    legacy_ctx = NULL;
}

static void legacy_init(void)
{
    OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new();
    if (lc && (legacy_prov[0] = OSSL_PROVIDER_load(lc, "default")) &&
        (legacy_prov[1] = OSSL_PROVIDER_load(lc, "legacy"))) {
        legacy_ctx = lc;
        atexit(legacy_free);
    } else {
        for (int i = 0; i < 2; i++)
            if (legacy_prov[i])
                OSSL_PROVIDER_unload(legacy_prov[i]), legacy_prov[i] = NULL;
        OSSL_LIB_CTX_free(lc);
    }
    ERR_clear_error();
}

void mv_smime_thread_end(void)
{
    /* legacy_ctx is set once, before any thread can have used it */
    if (legacy_ctx)
        OPENSSL_thread_stop_ex(legacy_ctx);
}

static int is_legacy_cipher(int nid)
{
    return nid == NID_rc2_cbc || nid == NID_rc2_40_cbc || nid == NID_rc2_64_cbc ||
           nid == NID_des_cbc;
}

static CMS_ContentInfo *parse_cms(const uint8_t *der, size_t n)
{
    if (n == 0 || n > LONG_MAX)
        return NULL;
    const unsigned char *q = der;
    if (is_legacy_cipher(content_cipher_nid(der, n))) {
        pthread_once(&legacy_once, legacy_init);
        CMS_ContentInfo *cms = legacy_ctx ? CMS_ContentInfo_new_ex(legacy_ctx, NULL) : NULL;
        if (cms) {
            /* decoded into the object made in that context: it keeps it */
            if (d2i_CMS_ContentInfo(&cms, &q, (long)n))
                return cms;
            CMS_ContentInfo_free(cms);
            return NULL;
        }
        /* no legacy provider installed: the cipher is reported unsupported */
    }
    return d2i_CMS_ContentInfo(NULL, &q, (long)n);
}

/* body_der - the decoded body of an entity (base64 or unencoded). */
static int body_der(job *j, const uint8_t *p, size_t n, const hdrinfo *h, mv_buf *der)
{
    const uint8_t *b = p + h->body_off;
    size_t bl = n - h->body_off;
    if (!strcmp(h->cte, "base64")) {
        if (b64_decode(b, bl, der) != 0) {
            fail(j, MV_DDEF_MALFORMED, "bad base64 in the S/MIME body");
            return 0;
        }
        return 1;
    }
    if (!h->cte[0] || !strcmp(h->cte, "binary") || !strcmp(h->cte, "8bit") ||
        !strcmp(h->cte, "7bit")) {
        mv_buf_append(der, b, bl);
        return 1;
    }
    fail(j, MV_DDEF_UNSUPPORTED, "unsupported transfer encoding %.40s on the S/MIME body", h->cte);
    return 0;
}

/* canon_crlf - the signed part with every bare LF made CRLF: signatures
 * are over the canonical form and archives may hold LF-only copies. */
static void canon_crlf(const uint8_t *p, size_t n, mv_buf *out)
{
    mv_buf_reserve(out, n + n / 16 + 2);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            mv_buf_append_byte(out, '\r');
        mv_buf_append_byte(out, p[i]);
    }
}

static int starts_with_field(const uint8_t *c, size_t n)
{
    size_t i = 0;
    while (i < n && i < 998 && c[i] > ' ' && c[i] < 127 && c[i] != ':')
        i++;
    return i > 0 && i < n && c[i] == ':';
}

static int starts_with_blank(const uint8_t *c, size_t n)
{
    return (n >= 1 && c[0] == '\n') || (n >= 2 && c[0] == '\r' && c[1] == '\n');
}

/* replace_entity - docs/decryption.md: the entity's header fields other
 * than Content-* (original bytes and order), then the content exactly;
 * a line end goes between only when the content does not start with a
 * header field or an empty line (CRLF, or LF when the entity's first
 * header line ends in a bare LF, as the OpenPGP front end does). */
static void replace_entity(const uint8_t *p, const hdrinfo *h, const uint8_t *c, size_t cn,
                           mv_buf *out)
{
    size_t first = line_end(p, h->hdr_len, 0);
    const char *eol = first > 0 && first <= h->hdr_len && p[first - 1] == '\n' &&
                              (first < 2 || p[first - 2] != '\r')
                          ? "\n"
                          : "\r\n";
    mv_buf_reserve(out, h->hdr_len + cn + 4);
    for (size_t pos = 0; pos < h->hdr_len;) {
        size_t e = field_end(p, h->hdr_len, pos);
        if (!(e - pos >= 8 && strncasecmp((const char *)p + pos, "content-", 8) == 0))
            mv_buf_append(out, p + pos, e - pos);
        pos = e;
    }
    if (out->len && out->data[out->len - 1] != '\n')
        mv_buf_append_str(out, eol);
    if (!starts_with_field(c, cn) && !starts_with_blank(c, cn))
        mv_buf_append_str(out, eol);
    mv_buf_append(out, c, cn);
}

/* one_layer - unwrap the S/MIME layer at the top of ent (kind K_PKCS7 or
 * K_MSIGNED) into next.  Returns 1 when unwrapped, 0 when the work stops
 * (failure recorded, or nothing to unwrap). */
static int one_layer(job *j, const uint8_t *ent, size_t n, const hdrinfo *h, int kind,
                     int *decrypted_now, mv_buf *next)
{
    mv_buf der = MV_BUF_INIT, content = MV_BUF_INIT, canon = MV_BUF_INIT;
    CMS_ContentInfo *cms = NULL;
    BIO *dc = NULL;
    int ok = 0;
    char why[256];
    *decrypted_now = 0;

    if (kind == K_PKCS7) {
        int says_signed = !strcmp(h->smime_type, "signed-data");
        if (!body_der(j, ent, n, h, &der)) {
            if (!says_signed)
                j->r->encrypted = j->enc_fail = 1;
            goto out;
        }
        cms = parse_cms(der.data, der.len);
        if (!cms) {
            ossl_reason(why, sizeof why);
            if (!says_signed)
                j->r->encrypted = j->enc_fail = 1;
            fail(j, MV_DDEF_MALFORMED, "not a CMS structure: %s", why);
            goto out;
        }
        int nid = OBJ_obj2nid(CMS_get0_type(cms));
        if (nid == NID_pkcs7_enveloped || nid == NID_id_smime_ct_authEnvelopedData) {
            if (!decrypt_cms(j, cms, der.data, der.len, nid, &content)) {
                j->enc_fail = 1;
                goto out;
            }
            *decrypted_now = 1;
        } else if (nid == NID_pkcs7_signed) {
            ASN1_OCTET_STRING **pc = CMS_get0_content(cms);
            if (!pc || !*pc) {
                ERR_clear_error();
                record_sig(j, MV_SIG_ERROR, NULL, INT64_MIN, "signed-data without content");
                fail(j, MV_DDEF_MALFORMED, "opaque signed-data without content");
                goto out;
            }
            verify_signed(j, cms, NULL);
            mv_buf_append(&content, ASN1_STRING_get0_data(*pc), (size_t)ASN1_STRING_length(*pc));
        } else {
            const char *sn = OBJ_nid2sn(nid);
            if (!says_signed)
                j->r->encrypted = j->enc_fail = 1;
            fail(j, MV_DDEF_UNSUPPORTED, "unsupported CMS content type %s",
                 nid != NID_undef && sn ? sn : "unknown");
            goto out;
        }
    } else {
        mp_iter it;
        size_t o1 = 0, l1 = 0, o2 = 0, l2 = 0;
        const uint8_t *body = ent + h->body_off;
        mp_init(&it, body, n - h->body_off, h->boundary);
        if (!mp_next(&it, &o1, &l1) || !mp_next(&it, &o2, &l2)) {
            record_sig(j, MV_SIG_ERROR, NULL, INT64_MIN, "multipart/signed without two parts");
            fail(j, MV_DDEF_MALFORMED, "multipart/signed without two parts");
            goto out;
        }
        hdrinfo h2;
        parse_headers(body + o2, l2, &h2);
        if (!body_der(j, body + o2, l2, &h2, &der) || !(cms = parse_cms(der.data, der.len)) ||
            OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
            ERR_clear_error();
            record_sig(j, MV_SIG_ERROR, NULL, INT64_MIN, "signature part does not parse");
            j->r->defects |= MV_DDEF_MALFORMED;
        } else {
            canon_crlf(body + o1, l1, &canon);
            dc = BIO_new_mem_buf(canon.data ? (const void *)canon.data : "", (int)canon.len);
            if (!dc || canon.len > INT_MAX) {
                fail(j, 0, "out of memory");
                goto out;
            }
            verify_signed(j, cms, dc);
        }
        /* unwrapped even when the signature is bad: it is evidence too */
        mv_buf_append(&content, body + o1, l1);
    }
    replace_entity(ent, h, content.data ? content.data : (const uint8_t *)"", content.len, next);
    if (next->len > j->lim->max_output) {
        if (*decrypted_now)
            j->enc_fail = 1; /* opened, but its plaintext cannot be kept */
        fail(j, MV_DDEF_LIMIT, "decrypted form larger than max_output (%zu bytes)",
             j->lim->max_output);
        goto out;
    }
    ok = 1;
out:
    CMS_ContentInfo_free(cms);
    BIO_free(dc);
    mv_buf_free(&der);
    mv_buf_wipe(&content);
    mv_buf_free(&canon);
    ERR_clear_error();
    return ok;
}

/* ---- the message: every entity, in document order --------------------- */

/* emit - append to the form.  Past max_output nothing more is kept (the
 * form cannot exist: see mv_smime_decrypt).  Growth moves the bytes to a
 * new block and wipes the old one: they are plaintext. */
static void emit(job *j, mv_buf *out, const uint8_t *p, size_t n)
{
    if (j->overflow || n == 0)
        return;
    if (n > j->lim->max_output - out->len) {
        j->overflow = 1;
        return;
    }
    if (n >= out->cap - out->len) {
        size_t want = out->cap ? out->cap : j->out_hint;
        while (want <= out->len + n)
            want = want > SIZE_MAX / 2 ? out->len + n + 1 : want * 2;
        mv_buf nb = MV_BUF_INIT;
        mv_buf_reserve(&nb, want - 1);
        if (out->len)
            mv_buf_append(&nb, out->data, out->len);
        mv_buf_wipe(out);
        *out = nb;
    }
    mv_buf_append(out, p, n);
}

/* settle - the entity's work is done: its failure is the message's when
 * it left an encryption layer shut (and none did before), its signature
 * joins the message's (an invalid one wins, else the first), and the
 * algorithms and key stay those of the first encrypted entity. */
static void settle(job *j)
{
    mv_decrypt_result *r = j->r;
    if (j->enc_fail) {
        j->shut = 1;
        if (!r->failure) {
            r->failure = j->efail;
            j->efail = NULL;
        }
    }
    free(j->efail);
    j->efail = NULL;
    j->enc_fail = 0;
    if (j->sig != MV_SIG_NONE &&
        (r->sig == MV_SIG_NONE || (j->sig == MV_SIG_INVALID && r->sig != MV_SIG_INVALID))) {
        free(r->signer);
        free(r->sig_detail);
        r->sig = j->sig;
        r->signer = j->signer;
        r->signing_time = j->signing_time;
        r->sig_detail = j->sig_detail;
    } else {
        free(j->signer);
        free(j->sig_detail);
    }
    j->sig = MV_SIG_NONE;
    j->signer = j->sig_detail = NULL;
    j->signing_time = INT64_MIN;
    j->n_sigs = 0;
    if (r->scheme)
        j->alg_fixed = 1;
}

static int rewrite(job *j, const uint8_t *p, size_t n, unsigned depth, unsigned layers,
                   mv_buf *out);

/* unwrap - the layer loop on one S/MIME entity ent[0..n) at MIME depth
 * `depth`, with `layers` layers already unwrapped around it; its
 * replacement is appended to out.  Each layer rewrites the entity; when
 * what is left is no longer S/MIME (a multipart, a message/rfc822), it is
 * searched again for S/MIME entities inside, with the layers left. */
static void unwrap(job *j, const uint8_t *ent, size_t n, unsigned depth, unsigned layers,
                   mv_buf *out)
{
    mv_buf cur = MV_BUF_INIT, next = MV_BUF_INIT;
    const uint8_t *p = ent;
    size_t len = n;
    int inside = 0;
    for (;;) {
        hdrinfo h;
        parse_headers(p, len, &h);
        int kind = classify(&h);
        if (kind != K_PKCS7 && kind != K_MSIGNED) {
            inside = p != ent; /* (the walk found ent as S/MIME: always) */
            break;
        }
        if (layers >= j->lim->max_layers) {
            fail(j, MV_DDEF_LIMIT, "more than max_layers (%u) S/MIME layers", j->lim->max_layers);
            break;
        }
        layers++;
        int dec = 0;
        mv_buf_reset(&next);
        if (!one_layer(j, p, len, &h, kind, &dec, &next))
            break;
        j->n_dec += (unsigned)dec;
        mv_buf tmp = cur;
        cur = next;
        next = tmp;
        p = cur.data;
        len = cur.len;
    }
    /* A later layer that stopped the work (a limit, a broken inner
     * signature) leaves the form unwrapped so far: only an encryption
     * layer left shut withholds the form. */
    settle(j);
    mv_buf_wipe(&next);
    if (!inside || !rewrite(j, p, len, depth, layers, out))
        emit(j, out, p, len);
    mv_buf_wipe(&cur);
}

/* rewrite - find the S/MIME entities in p[0..n) (an entity at MIME depth
 * `depth`) and append p to out with each replaced by its unwrapped form,
 * the bytes between copied.  Returns 0, out untouched, when there is none.
 * Recursion (rewrite -> unwrap -> rewrite) goes one MIME level deeper and
 * one layer further each time: bounded by max_depth and max_layers; and
 * MV_SMIME_MAX_ENTITIES bounds the entities of the whole message. */
static int rewrite(job *j, const uint8_t *p, size_t n, unsigned depth, unsigned layers, mv_buf *out)
{
    if (j->stop)
        return 0;
    /* one more than the entities left, to notice the excess */
    flist fl = {NULL, 0, 0, MV_SMIME_MAX_ENTITIES - j->entities + 1};
    walk(&j->w, &fl, p, 0, n, depth);
    if (fl.n == 0) {
        free(fl.f);
        return 0;
    }
    size_t at = 0;
    for (size_t i = 0; i < fl.n; i++) {
        if (j->entities >= MV_SMIME_MAX_ENTITIES) {
            fail_msg(j, MV_DDEF_LIMIT, "more than %u S/MIME entities", MV_SMIME_MAX_ENTITIES);
            j->stop = 1;
            break;
        }
        j->entities++;
        emit(j, out, p + at, fl.f[i].off - at);
        unwrap(j, p + fl.f[i].off, fl.f[i].len, fl.f[i].depth, layers, out);
        at = fl.f[i].off + fl.f[i].len;
    }
    emit(j, out, p + at, n - at);
    free(fl.f);
    return 1;
}

mv_status mv_smime_decrypt(const mv_smime_keyring *kr, const uint8_t *msg, size_t n,
                           const mv_decrypt_limits *lim, mv_decrypt_result *r, mv_err *err)
{
    mv_decrypt_limits dl;
    memset(r, 0, sizeof *r);
    r->signing_time = INT64_MIN;
    if (!kr || (!msg && n))
        return mv_err_set(err, MV_EUSAGE, "mv_smime_decrypt: no keyring or message");
    if (!lim) {
        mv_decrypt_limits_default(&dl);
        lim = &dl;
    }
    if (!msg)
        msg = (const uint8_t *)"";
    ERR_clear_error();
    job j;
    memset(&j, 0, sizeof j);
    j.kr = kr;
    j.lim = lim;
    j.r = r;
    j.w.max_depth = depth_of(lim);
    j.signing_time = INT64_MIN;
    j.out_hint = (n < lim->max_output ? n : lim->max_output) + 1;

    /* The form: every entity replaced by its unwrapped form.  It exists
     * when an encryption layer was opened and none stayed shut (all or
     * nothing), the entity bound was not passed, and it fits max_output. */
    mv_buf out = MV_BUF_INIT;
    int any = rewrite(&j, msg, n, 0, 0, &out);
    if (j.w.limit)
        r->defects |= MV_DDEF_LIMIT;
    if (any && j.n_dec > 0 && !j.shut && !j.stop) {
        if (j.overflow) {
            fail_msg(&j, MV_DDEF_LIMIT, "decrypted form larger than max_output (%zu bytes)",
                     lim->max_output);
        } else {
            r->out = mv_buf_steal(&out, &r->out_len);
            r->decrypted = 1;
            free(r->failure);
            r->failure = NULL;
        }
    } else if (r->encrypted && !r->failure) {
        r->failure = mv_xstrdup("not decrypted");
    }
    if (!r->encrypted) {
        free(r->failure); /* only an encrypted message has a failure */
        r->failure = NULL;
    }
    if (!r->decrypted)
        r->key_id = 0;
    mv_buf_wipe(&out);
    free(j.rcpt_hash);
    ERR_clear_error();
    return MV_OK;
}

/* ---- certificates and import --------------------------------------------- */

void mv_x509_info_clear(mv_x509_info *i)
{
    if (!i)
        return;
    free(i->subject);
    free(i->issuer);
    free(i->serial_hex);
    free(i->ski_hex);
    free(i->sha256_fpr);
    free(i->key_alg);
    memset(i, 0, sizeof *i);
}

static void fill_info(X509 *c, mv_x509_info *info)
{
    memset(info, 0, sizeof *info);
    info->subject = name_text(X509_get_subject_name(c));
    info->issuer = name_text(X509_get_issuer_name(c));
    info->serial_hex = int_hex(X509_get0_serialNumber(c));
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(c);
    info->ski_hex =
        ski ? hex_of(ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski)) : NULL;
    unsigned char *der = NULL;
    int dl = i2d_X509(c, &der);
    uint8_t md[32];
    mv_sha256(der, dl > 0 ? (size_t)dl : 0, md);
    OPENSSL_free(der);
    info->sha256_fpr = hex_of(md, sizeof md);
    info->not_before = asn1_time_epoch(X509_get0_notBefore(c));
    info->not_after = asn1_time_epoch(X509_get0_notAfter(c));
    EVP_PKEY *k = X509_get0_pubkey(c);
    info->key_alg = k ? key_alg_name(k) : mv_xstrdup("unknown");
    ERR_clear_error();
}

mv_status mv_smime_cert_info(const uint8_t *cert_der, size_t n, mv_x509_info *info, mv_err *err)
{
    X509 *c = parse_cert_der(cert_der, n);
    if (!c) {
        ERR_clear_error();
        memset(info, 0, sizeof *info);
        return mv_err_set(err, MV_EMALFORMED, "not a DER certificate");
    }
    fill_info(c, info);
    X509_free(c);
    return MV_OK;
}

/* put_key_cert - key as PKCS#8 DER and certificate DER into the outputs. */
static mv_status put_key_cert(EVP_PKEY *k, X509 *c, mv_buf *key_der, mv_buf *cert_der, mv_err *err)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
    unsigned char *kd = NULL, *cd = NULL;
    int kl = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &kd) : -1;
    int cl = i2d_X509(c, &cd);
    PKCS8_PRIV_KEY_INFO_free(p8);
    mv_status st = MV_OK;
    if (kl <= 0 || cl <= 0)
        st = mv_err_openssl(err, "import: encoding key or certificate");
    else {
        mv_buf_reserve(key_der, (size_t)kl); /* no realloc leaves a copy behind */
        mv_buf_append(key_der, kd, (size_t)kl);
        mv_buf_append(cert_der, cd, (size_t)cl);
    }
    if (kd)
        OPENSSL_clear_free(kd, (size_t)kl);
    OPENSSL_free(cd);
    return st;
}

static int pem_pass_cb(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    const char *pw = u;
    if (!pw)
        return -1; /* never prompt on a terminal */
    size_t l = strlen(pw);
    if (l > (size_t)size)
        return -1;
    memcpy(buf, pw, l);
    return (int)l;
}

/* import_pem - private key and certificates from one or two PEM buffers. */
static mv_status import_pem(const uint8_t *const bufs[2], const size_t lens[2],
                            const char *password, mv_buf *key_der, mv_buf *cert_der,
                            mv_x509_info *info, mv_err *err)
{
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *certs = sk_X509_new_null();
    int key_seen = 0, encrypted_key = 0;
    mv_status st = MV_OK;
    if (!certs)
        mv_assert(!"out of memory");
    for (int b = 0; b < 2; b++) {
        if (!bufs[b] || !lens[b] || lens[b] > INT_MAX)
            continue;
        BIO *in = BIO_new_mem_buf(bufs[b], (int)lens[b]);
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        long len = 0;
        unsigned blocks = 0;
        while (in && blocks++ < MV_SMIME_MAX_PEM_CERTS + 2 &&
               PEM_read_bio(in, &name, &header, &data, &len) == 1) {
            if (strstr(name, "CERTIFICATE") && !strstr(name, "REQUEST") &&
                !strstr(name, "TRUSTED")) {
                const unsigned char *q = data;
                X509 *x = d2i_X509(NULL, &q, len);
                if (x && !sk_X509_push(certs, x))
                    X509_free(x);
            } else if (strstr(name, "PRIVATE KEY") && !key) {
                key_seen = 1;
                if (strstr(name, "ENCRYPTED") || strstr(header, "ENCRYPTED"))
                    encrypted_key = 1;
                /* re-encode this one block so the key reader sees only it */
                BIO *one = BIO_new(BIO_s_secmem());
                if (one && PEM_write_bio(one, name, header, data, len) > 0)
                    key = PEM_read_bio_PrivateKey(one, NULL, pem_pass_cb, (void *)password);
                BIO_free(one);
            }
            OPENSSL_free(name);
            OPENSSL_free(header);
            if (data)
                OPENSSL_clear_free(data, (size_t)len);
            name = header = NULL;
            data = NULL;
        }
        BIO_free(in);
    }
    ERR_clear_error();
    X509 *match = NULL;
    if (!key) {
        if (key_seen && encrypted_key)
            st = mv_err_set(err, MV_ENOKEY, "import: wrong password for the encrypted PEM key");
        else if (key_seen)
            st = mv_err_set(err, MV_EMALFORMED, "import: the PEM private key does not parse");
        else
            st = mv_err_set(err, MV_ENOKEY, "import: no private key in the PEM input");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(certs) && !match; i++)
        if (X509_check_private_key(sk_X509_value(certs, i), key) == 1)
            match = sk_X509_value(certs, i);
    ERR_clear_error();
    if (!match) {
        st = mv_err_set(err, MV_ENOKEY,
                        "import: no certificate in the PEM input matches the private key");
        goto out;
    }
    st = put_key_cert(key, match, key_der, cert_der, err);
    if (st == MV_OK && info)
        fill_info(match, info);
out:
    EVP_PKEY_free(key);
    sk_X509_pop_free(certs, X509_free);
    return st;
}

/* p12_parse - parse with the current default library context; key and
 * cert are encoded at once (objects from a private context must not
 * outlive it). */
static mv_status p12_parse(const uint8_t *p, size_t n, const char *pass, mv_buf *key_der,
                           mv_buf *cert_der, mv_err *err)
{
    BIO *in = BIO_new_mem_buf(p, (int)n);
    PKCS12 *p12 = in ? d2i_PKCS12_bio(in, NULL) : NULL;
    BIO_free(in);
    EVP_PKEY *k = NULL;
    X509 *c = NULL;
    STACK_OF(X509) *ca = NULL;
    mv_status st;
    if (!p12)
        st = mv_err_set(err, MV_EMALFORMED, "import: neither PEM nor PKCS#12");
    else if (!PKCS12_parse(p12, pass, &k, &c, &ca))
        st = mv_err_openssl(err, "import: reading PKCS#12");
    else if (!k)
        st = mv_err_set(err, MV_ENOKEY, "import: no private key in the PKCS#12 file");
    else if (!c)
        st = mv_err_set(err, MV_ENOKEY, "import: no certificate for the key in the PKCS#12 file");
    else
        st = put_key_cert(k, c, key_der, cert_der, err);
    EVP_PKEY_free(k);
    X509_free(c);
    sk_X509_pop_free(ca, X509_free);
    PKCS12_free(p12);
    ERR_clear_error();
    return st;
}

static mv_status import_p12(const uint8_t *p, size_t n, const char *password, mv_buf *key_der,
                            mv_buf *cert_der, mv_x509_info *info, mv_err *err)
{
    if (n > INT_MAX)
        return mv_err_set(err, MV_EMALFORMED, "import: input too large");
    BIO *in = BIO_new_mem_buf(p, (int)n);
    PKCS12 *p12 = in ? d2i_PKCS12_bio(in, NULL) : NULL;
    BIO_free(in);
    if (!p12) {
        ERR_clear_error();
        return mv_err_set(err, MV_EMALFORMED, "import: neither PEM nor PKCS#12");
    }
    /* The MAC tells a wrong password apart from anything else.  Without a
     * password both "no password" and "empty password" are tried, as
     * exporters disagree on which one they mean. */
    const char *pass = password && *password ? password : NULL;
    int pass_ok = 0;
    if (!PKCS12_mac_present(p12))
        pass_ok = 1;
    else if (pass)
        pass_ok = PKCS12_verify_mac(p12, pass, -1) == 1;
    else if (PKCS12_verify_mac(p12, NULL, 0) == 1)
        pass_ok = 1;
    else if (PKCS12_verify_mac(p12, "", 0) == 1) {
        pass = "";
        pass_ok = 1;
    }
    PKCS12_free(p12);
    ERR_clear_error();
    if (!pass_ok)
        return mv_err_set(err, MV_ENOKEY, "import: wrong password for the PKCS#12 file");

    mv_buf k = MV_BUF_INIT, c = MV_BUF_INIT;
    mv_status st = p12_parse(p, n, pass, &k, &c, NULL);
    if (st != MV_OK) {
        /* Legacy bags (RC2-40, ...): the legacy provider, in a private
         * context made this thread's default for this call only, so no
         * other thread ever sees legacy algorithms. */
        mv_buf_wipe(&k);
        mv_buf_free(&c);
        OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new();
        OSSL_PROVIDER *leg = lc ? OSSL_PROVIDER_load(lc, "legacy") : NULL;
        OSSL_PROVIDER *def = lc ? OSSL_PROVIDER_load(lc, "default") : NULL;
        if (!leg || !def) {
            st = mv_err_openssl(err, "import: loading OpenSSL's legacy provider for this PKCS#12");
        } else {
            OSSL_LIB_CTX *prev = OSSL_LIB_CTX_set0_default(lc);
            st = p12_parse(p, n, pass, &k, &c, err);
            OSSL_LIB_CTX_set0_default(prev);
            if (st != MV_OK)
                mv_err_prefix(err, "(with the legacy provider) ");
        }
        OSSL_PROVIDER_unload(leg);
        OSSL_PROVIDER_unload(def);
        OSSL_LIB_CTX_free(lc);
        ERR_clear_error();
    }
    if (st == MV_OK && info)
        st = mv_smime_cert_info(c.data, c.len, info, err);
    if (st == MV_OK) {
        mv_buf_reserve(key_der, k.len);
        mv_buf_append(key_der, k.data, k.len);
        mv_buf_append(cert_der, c.data, c.len);
    }
    mv_buf_wipe(&k);
    mv_buf_free(&c);
    return st;
}

static int has_pem(const uint8_t *p, size_t n)
{
    return p && n && memmem(p, n, "-----BEGIN ", 11) != NULL;
}

mv_status mv_smime_import(const uint8_t *p, size_t n, const uint8_t *p2, size_t n2,
                          const char *password, mv_buf *key_der, mv_buf *cert_der,
                          mv_x509_info *info, mv_err *err)
{
    if (info)
        memset(info, 0, sizeof *info);
    if (!p || !n || !key_der || !cert_der)
        return mv_err_set(err, MV_EUSAGE, "import: nothing to import");
    ERR_clear_error();
    if (has_pem(p, n) || has_pem(p2, n2)) {
        const uint8_t *bufs[2] = {p, p2};
        const size_t lens[2] = {n, p2 ? n2 : 0};
        return import_pem(bufs, lens, password, key_der, cert_der, info, err);
    }
    return import_p12(p, n, password, key_der, cert_der, info, err);
}
