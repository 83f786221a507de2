/* SPDX-License-Identifier: MIT */
/* note.c - C2SP signed notes and tlog checkpoints: format, parse, verify. */
#include "note.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "digest.h"

#define ED25519_PUB 32
#define ED25519_SIG 64
#define KEY_ID 4

/* "— " : U+2014 EM DASH in UTF-8, then a space */
static const uint8_t sig_prefix[] = {0xe2, 0x80, 0x94, ' '};

/* ---- text rules ---------------------------------------------------------- */

/* utf8_next - decode one code point of p[0..n) (n >= 1) into *cp; the byte
 * count, or 0 when p does not start with a well-formed UTF-8 sequence
 * (overlong forms, surrogates and values above U+10FFFF are ill-formed). */
static size_t utf8_next(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* text_ok - the signed-note character rules: valid UTF-8 and no control
 * character below U+0020 other than newline (so no CR, no NUL, no tab). */
static int text_ok(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_next(p + i, n - i, &cp);
        if (l == 0 || (cp < 0x20 && cp != '\n'))
            return 0;
        i += l;
    }
    return 1;
}

/* is_space - Unicode White_Space, which key names must not contain. */
static int is_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
           cp == 0x205f || cp == 0x3000;
}

/* name_ok - a key name: non-empty text of the note rules, without spaces or
 * '+' (the separator of the Go verifier-key form name+id+key). */
static int name_ok(const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_next(p + i, n - i, &cp);
        if (l == 0 || cp < 0x20 || cp == '+' || is_space(cp))
            return 0;
        i += l;
    }
    return 1;
}

/* line_ok - a non-empty line of note text, without its newline. */
static int line_ok(const char *s, size_t n)
{
    return n > 0 && memchr(s, '\n', n) == NULL && text_ok((const uint8_t *)s, n);
}

/* ---- base64 -------------------------------------------------------------- */

/* b64_decode - strict RFC 4648 §4 base64 of s[0..len): padded, standard
 * alphabet, nothing else (EVP_DecodeBlock alone would skip surrounding
 * white space and accept non-zero padding bits, letting two texts stand for
 * one value).  out needs len / 4 * 3 bytes; *outlen gets the decoded size
 * (EVP_DecodeBlock counts the padding as zero bytes: subtracted here).
 * 0 ok, -1 bad. */
static int b64_decode(const uint8_t *s, size_t len, uint8_t *out, size_t *outlen)
{
    if (len == 0 || len % 4 != 0 || len > INT_MAX)
        return -1;
    size_t pad = 0;
    if (s[len - 1] == '=')
        pad = s[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++)
        if (mv_b64_val(s[i]) < 0)
            return -1;
    int last = mv_b64_val(s[len - pad - 1]);
    if ((pad == 1 && (last & 0x03)) || (pad == 2 && (last & 0x0f)))
        return -1;
    int r = EVP_DecodeBlock(out, s, (int)len);
    if (r < 0 || (size_t)r != len / 4 * 3)
        return -1;
    *outlen = (size_t)r - pad;
    return 0;
}

/* b64_append - the base64 of p[0..n) (n <= 96) appended to out. */
static void b64_append(mv_buf *out, const uint8_t *p, size_t n)
{
    unsigned char tmp[4 * 32 + 1];
    mv_assert(n <= 96);
    int l = EVP_EncodeBlock(tmp, p, (int)n);
    mv_buf_append(out, tmp, (size_t)l);
}

/* ---- formatting ---------------------------------------------------------- */

void mv_checkpoint_body(const mv_checkpoint *c, mv_buf *out)
{
    size_t ol = strnlen(c->origin, sizeof c->origin);
    mv_assert(ol < sizeof c->origin && line_ok(c->origin, ol));
    mv_assert(c->n_ext <= MV_NOTE_MAX_EXT);
    mv_buf_append(out, c->origin, ol);
    mv_buf_printf(out, "\n%llu\n", (unsigned long long)c->size);
    b64_append(out, c->root, sizeof c->root);
    mv_buf_append_byte(out, '\n');
    for (size_t i = 0; i < c->n_ext; i++) {
        mv_assert(c->ext[i] && line_ok(c->ext[i], strlen(c->ext[i])));
        mv_buf_append_str(out, c->ext[i]);
        mv_buf_append_byte(out, '\n');
    }
}

void mv_note_key_id(const char *name, const uint8_t pub[32], uint8_t id[4])
{
    size_t nl = strlen(name);
    uint8_t h[32];
    unsigned int hl = sizeof h;
    static const uint8_t sep[2] = {'\n', MV_NOTE_ED25519};
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || !EVP_DigestInit_ex(c, mv_md_sha256(), NULL) || !EVP_DigestUpdate(c, name, nl) ||
        !EVP_DigestUpdate(c, sep, sizeof sep) || !EVP_DigestUpdate(c, pub, ED25519_PUB) ||
        !EVP_DigestFinal_ex(c, h, &hl))
        mv_assert_fail("SHA-256 of a note key id", __FILE__, __LINE__);
    EVP_MD_CTX_free(c);
    memcpy(id, h, KEY_ID);
}

/* last_blank - the offset of the blank line that ends the note text (the
 * second \n of the last "\n\n"), or -1. */
static long last_blank(const uint8_t *p, size_t n)
{
    for (size_t i = n; i >= 2; i--)
        if (p[i - 1] == '\n' && p[i - 2] == '\n')
            return (long)(i - 1);
    return -1;
}

/* is_signed - note ends in a block of signature lines after a blank line. */
static int is_signed(const uint8_t *p, size_t n)
{
    long b = last_blank(p, n);
    if (b < 0 || (size_t)b + 1 == n || p[n - 1] != '\n')
        return 0;
    for (size_t i = (size_t)b + 1; i < n;) {
        const uint8_t *nl = memchr(p + i, '\n', n - i);
        if ((size_t)(nl - (p + i)) < sizeof sig_prefix ||
            memcmp(p + i, sig_prefix, sizeof sig_prefix) != 0)
            return 0;
        i = (size_t)(nl - p) + 1;
    }
    return 1;
}

void mv_note_add_signature(mv_buf *note, const char *name, const uint8_t pub[32],
                           const uint8_t sig[64])
{
    mv_assert(name_ok((const uint8_t *)name, strlen(name)));
    mv_assert(note->len > 0 && note->data[note->len - 1] == '\n');
    if (!is_signed(note->data, note->len))
        mv_buf_append_byte(note, '\n');
    uint8_t blob[KEY_ID + ED25519_SIG];
    mv_note_key_id(name, pub, blob);
    memcpy(blob + KEY_ID, sig, ED25519_SIG);
    mv_buf_append(note, sig_prefix, sizeof sig_prefix);
    mv_buf_append_str(note, name);
    mv_buf_append_byte(note, ' ');
    b64_append(note, blob, sizeof blob);
    mv_buf_append_byte(note, '\n');
}

/* ---- parsing ------------------------------------------------------------- */

typedef struct sigline {
    const uint8_t *name;
    size_t name_len;
    const uint8_t *blob; /* decoded: key id then signature (in the scan's scratch) */
    size_t blob_len;
} sigline;

typedef struct scan {
    size_t text_len;
    sigline sig[MV_NOTE_MAX_SIGS];
    size_t n_sig;
    uint8_t *scratch; /* decoded signatures, owned */
} scan;

/* note_scan - split a signed note into text and signature lines, checking
 * every rule of the format but no signature. */
static mv_status note_scan(const uint8_t *p, size_t n, scan *s, mv_err *err)
{
    memset(s, 0, sizeof *s);
    if (n > MV_NOTE_MAX_BYTES)
        return mv_err_set(err, MV_ELIMIT, "signed note: %zu bytes, limit %u", n, MV_NOTE_MAX_BYTES);
    if (n == 0 || p[n - 1] != '\n')
        return mv_err_set(err, MV_EMALFORMED, "signed note: does not end with a newline");
    if (!text_ok(p, n))
        return mv_err_set(err, MV_EMALFORMED,
                          "signed note: not UTF-8, or a control character other than newline");
    long b = last_blank(p, n);
    if (b < 0)
        return mv_err_set(err, MV_EMALFORMED, "signed note: no blank line before the signatures");
    if ((size_t)b + 1 == n)
        return mv_err_set(err, MV_EMALFORMED, "signed note: no signature line");
    s->text_len = (size_t)b;
    /* every decoded signature is shorter than its line */
    s->scratch = mv_xmalloc(n);
    size_t used = 0;
    for (size_t i = (size_t)b + 1; i < n;) {
        const uint8_t *line = p + i;
        const uint8_t *nl = memchr(line, '\n', n - i);
        size_t len = (size_t)(nl - line);
        i += len + 1;
        if (s->n_sig == MV_NOTE_MAX_SIGS)
            return mv_err_set(err, MV_ELIMIT, "signed note: more than %u signature lines",
                              MV_NOTE_MAX_SIGS);
        if (len < sizeof sig_prefix || memcmp(line, sig_prefix, sizeof sig_prefix) != 0)
            return mv_err_set(err, MV_EMALFORMED,
                              "signed note: signature line %zu does not start with an em dash",
                              s->n_sig + 1);
        line += sizeof sig_prefix;
        len -= sizeof sig_prefix;
        const uint8_t *sp = memchr(line, ' ', len);
        if (!sp)
            return mv_err_set(err, MV_EMALFORMED,
                              "signed note: signature line %zu has no signature", s->n_sig + 1);
        sigline *sl = &s->sig[s->n_sig];
        sl->name = line;
        sl->name_len = (size_t)(sp - line);
        if (!name_ok(sl->name, sl->name_len))
            return mv_err_set(err, MV_EMALFORMED,
                              "signed note: signature line %zu has a bad key name", s->n_sig + 1);
        const uint8_t *b64 = sp + 1;
        size_t b64_len = len - sl->name_len - 1;
        sl->blob = s->scratch + used;
        /* a key id and at least one byte of signature */
        if (b64_decode(b64, b64_len, s->scratch + used, &sl->blob_len) != 0 ||
            sl->blob_len < KEY_ID + 1)
            return mv_err_set(err, MV_EMALFORMED,
                              "signed note: signature line %zu: bad base64 signature",
                              s->n_sig + 1);
        used += b64_len / 4 * 3;
        s->n_sig++;
    }
    return MV_OK;
}

static void scan_free(scan *s)
{
    free(s->scratch);
    s->scratch = NULL;
}

/* ed25519_verify - 1 when sig is pub's signature of msg, 0 when not, -1 when
 * OpenSSL failed otherwise (err set). */
static int ed25519_verify(EVP_PKEY *pk, const uint8_t *sig, const uint8_t *msg, size_t n,
                          mv_err *err)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || EVP_DigestVerifyInit_ex(c, NULL, NULL, NULL, NULL, pk, NULL) != 1) {
        EVP_MD_CTX_free(c);
        mv_err_openssl(err, "Ed25519 verify init");
        return -1;
    }
    int r = EVP_DigestVerify(c, sig, ED25519_SIG, msg, n);
    EVP_MD_CTX_free(c);
    ERR_clear_error(); /* a bad signature may leave an entry; it is not an error here */
    return r == 1;
}

/* check_sigs - the note-level signature rule: every line of the known key
 * (same name and key id) must verify, and there must be one. */
static mv_status check_sigs(const uint8_t *text, const scan *s, const char *name,
                            const uint8_t pub[32], mv_err *err)
{
    size_t nl = strlen(name);
    uint8_t id[KEY_ID];
    mv_note_key_id(name, pub, id);
    EVP_PKEY *pk = NULL;
    mv_status st = MV_OK;
    int found = 0;
    for (size_t i = 0; i < s->n_sig; i++) {
        const sigline *sl = &s->sig[i];
        if (sl->name_len != nl || memcmp(sl->name, name, nl) != 0 ||
            memcmp(sl->blob, id, KEY_ID) != 0)
            continue; /* another key: a witness, or a rotated key */
        found = 1;
        if (sl->blob_len != KEY_ID + ED25519_SIG) {
            st = mv_err_set(err, MV_ECRYPTO, "signed note: signature by %s has %zu bytes, not %d",
                            name, sl->blob_len - KEY_ID, ED25519_SIG);
            goto out;
        }
        if (!pk) {
            pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, ED25519_PUB);
            if (!pk) {
                st = mv_err_openssl(err, "Ed25519 public key");
                goto out;
            }
        }
        int r = ed25519_verify(pk, sl->blob + KEY_ID, text, s->text_len, err);
        if (r < 0) {
            st = MV_ECRYPTO;
            goto out;
        }
        if (r == 0) {
            st = mv_err_set(err, MV_ECRYPTO, "signed note: the signature by %s does not verify",
                            name);
            goto out;
        }
    }
    if (!found)
        st = mv_err_set(err, MV_ECRYPTO, "signed note: no signature by %s", name);
out:
    EVP_PKEY_free(pk);
    return st;
}

mv_status mv_note_verify(const uint8_t *p, size_t n, const char *name, const uint8_t pub[32],
                         size_t *text_len, mv_err *err)
{
    *text_len = 0;
    if (!name || !name_ok((const uint8_t *)name, strlen(name)))
        return mv_err_set(err, MV_EUSAGE, "signed note: not a valid key name");
    scan s;
    mv_status st = note_scan(p, n, &s, err);
    if (st == MV_OK)
        st = check_sigs(p, &s, name, pub, err);
    if (st == MV_OK)
        *text_len = s.text_len;
    scan_free(&s);
    return st;
}

/* parse_size - the tree size line: ASCII decimal, no sign, no leading zero. */
static int parse_size(const uint8_t *p, size_t n, uint64_t *v)
{
    if (n == 0 || n > 20 || (n > 1 && p[0] == '0'))
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        unsigned d = (unsigned)(p[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

mv_status mv_checkpoint_parse_body(const uint8_t *p, size_t n, mv_checkpoint *out, mv_err *err)
{
    memset(out, 0, sizeof *out);
    if (n > MV_NOTE_MAX_BYTES)
        return mv_err_set(err, MV_ELIMIT, "checkpoint: %zu bytes, limit %u", n, MV_NOTE_MAX_BYTES);
    if (n == 0 || p[n - 1] != '\n')
        return mv_err_set(err, MV_EMALFORMED, "checkpoint: does not end with a newline");
    if (!text_ok(p, n))
        return mv_err_set(err, MV_EMALFORMED,
                          "checkpoint: not UTF-8, or a control character other than newline");
    mv_status st = MV_OK;
    size_t line_no = 0;
    for (size_t i = 0; i < n; line_no++) {
        const uint8_t *line = p + i;
        size_t len = (size_t)((const uint8_t *)memchr(line, '\n', n - i) - line);
        i += len + 1;
        if (len == 0) {
            st = mv_err_set(err, MV_EMALFORMED, "checkpoint: line %zu is empty", line_no + 1);
            goto out;
        }
        if (line_no == 0) {
            if (len > MV_CHECKPOINT_ORIGIN_MAX) {
                st = mv_err_set(err, MV_ELIMIT, "checkpoint: origin of %zu bytes, limit %u", len,
                                MV_CHECKPOINT_ORIGIN_MAX);
                goto out;
            }
            memcpy(out->origin, line, len);
            out->origin[len] = '\0';
        } else if (line_no == 1) {
            if (parse_size(line, len, &out->size) != 0) {
                st = mv_err_set(err, MV_EMALFORMED, "checkpoint: bad tree size");
                goto out;
            }
        } else if (line_no == 2) {
            uint8_t root[33]; /* 44 characters decode to 33 bytes before padding */
            size_t rl = 0;
            if (len != 44 || b64_decode(line, len, root, &rl) != 0 || rl != sizeof out->root) {
                st = mv_err_set(err, MV_EMALFORMED,
                                "checkpoint: root hash is not 32 bytes of base64");
                goto out;
            }
            memcpy(out->root, root, sizeof out->root);
        } else {
            if (out->n_ext == MV_NOTE_MAX_EXT) {
                st = mv_err_set(err, MV_ELIMIT, "checkpoint: more than %u extension lines",
                                MV_NOTE_MAX_EXT);
                goto out;
            }
            if (!out->ext)
                out->ext = mv_xcalloc(MV_NOTE_MAX_EXT, sizeof *out->ext);
            out->ext[out->n_ext++] = mv_xstrndup((const char *)line, len);
        }
    }
    if (line_no < 3)
        st = mv_err_set(err, MV_EMALFORMED, "checkpoint: %zu lines, at least 3 needed", line_no);
out:
    if (st != MV_OK)
        mv_checkpoint_clear(out);
    return st;
}

mv_status mv_note_parse_checkpoint(const uint8_t *p, size_t n, const char *name,
                                   const uint8_t pub[32], mv_checkpoint *out, mv_err *err)
{
    memset(out, 0, sizeof *out);
    if (!name || !name_ok((const uint8_t *)name, strlen(name)))
        return mv_err_set(err, MV_EUSAGE, "signed note: not a valid key name");
    scan s;
    mv_status st = note_scan(p, n, &s, err);
    if (st == MV_OK)
        st = mv_checkpoint_parse_body(p, s.text_len, out, err);
    if (st == MV_OK)
        st = check_sigs(p, &s, name, pub, err);
    scan_free(&s);
    if (st != MV_OK)
        mv_checkpoint_clear(out);
    return st;
}

void mv_checkpoint_clear(mv_checkpoint *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_ext; i++)
        free(c->ext[i]);
    free(c->ext);
    memset(c, 0, sizeof *c);
}
