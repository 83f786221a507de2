/* SPDX-License-Identifier: MIT */
/* note_test.c - lib/note.h: C2SP signed notes and tlog checkpoints.  The
 * Go sumdb/note reference note (byte-exact), checkpoints signed with fresh
 * Ed25519 keys round-trip, any one changed byte is refused, foreign
 * signature lines are tolerated, and malformed notes are MV_EMALFORMED (or
 * MV_ELIMIT at the limits).  Signatures in this file are made with plain
 * OpenSSL calls, never through note.c, so the two sides check each other. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "../../lib/buf.h"
#include "../../lib/note.h"

#define DASH "\xe2\x80\x94"

typedef struct key {
    EVP_PKEY *pk;
    uint8_t pub[32];
} key;

static void key_from(key *k, EVP_PKEY *pk)
{
    assert_non_null(pk);
    k->pk = pk;
    size_t l = sizeof k->pub;
    assert_int_equal(EVP_PKEY_get_raw_public_key(pk, k->pub, &l), 1);
    assert_int_equal(l, 32);
}

static void key_new(key *k)
{
    key_from(k, EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
}

static void key_free(key *k)
{
    EVP_PKEY_free(k->pk);
    k->pk = NULL;
}

static void ed_sign(const key *k, const void *msg, size_t n, uint8_t sig[64])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t sl = 64;
    assert_non_null(c);
    assert_int_equal(EVP_DigestSignInit(c, NULL, NULL, NULL, k->pk), 1);
    assert_int_equal(EVP_DigestSign(c, sig, &sl, msg, n), 1);
    assert_int_equal(sl, 64);
    EVP_MD_CTX_free(c);
}

static int ed_verify(const uint8_t pub[32], const uint8_t sig[64], const void *msg, size_t n)
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    assert_non_null(pk);
    assert_non_null(c);
    assert_int_equal(EVP_DigestVerifyInit(c, NULL, NULL, NULL, pk), 1);
    int r = EVP_DigestVerify(c, sig, 64, msg, n);
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(pk);
    return r == 1;
}

static void b64(const uint8_t *p, size_t n, mv_buf *out)
{
    unsigned char tmp[512];
    assert_true(n <= 360);
    int l = EVP_EncodeBlock(tmp, p, (int)n);
    mv_buf_append(out, tmp, (size_t)l);
}

/* sig_line - "— name base64(id || sig(text))\n" built by hand (id and
 * signature given), so that malformed texts can be signed too. */
static void sig_line(mv_buf *out, const char *name, const uint8_t id[4], const uint8_t *sig,
                     size_t sig_len)
{
    uint8_t blob[4 + 256];
    assert_true(sig_len <= 256);
    memcpy(blob, id, 4);
    memcpy(blob + 4, sig, sig_len);
    mv_buf_append_str(out, DASH " ");
    mv_buf_append_str(out, name);
    mv_buf_append_byte(out, ' ');
    b64(blob, 4 + sig_len, out);
    mv_buf_append_byte(out, '\n');
}

/* sign_text - text, the blank line, and a valid signature line by (name, k). */
static void sign_text(mv_buf *out, const char *text, size_t n, const char *name, const key *k)
{
    uint8_t sig[64], id[4];
    ed_sign(k, text, n, sig);
    mv_note_key_id(name, k->pub, id);
    mv_buf_append(out, text, n);
    mv_buf_append_byte(out, '\n');
    sig_line(out, name, id, sig, 64);
}

#define NAME_LIT "mailvault.example/archive"
static const char *const NAME = NAME_LIT;

/* ---- the Go reference note ---------------------------------------------- */

/* golang.org/x/mod/sumdb/note (note.go doc, note_test.go): signer key
 * PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz,
 * verifier key PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW.
 * Ed25519 is deterministic, so we must reproduce the note byte for byte. */
static const char go_text[] = "If you think cryptography is the answer to your problem,\n"
                              "then you don't know what your problem is.\n";
static const char go_note[] =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n" DASH " PeterNeumann "
    "x08go/ZJkuBS9UG/"
    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

static void test_go_vector(void **state)
{
    (void)state;
    uint8_t seed[32], pub[32], id[4], sig[64];
    assert_int_equal(
        mv_unhex("810a1402d5146c8d84f2443330f54080ebf98ee17d9c74f6252fc5d5c7283173", seed, 32), 0);
    assert_int_equal(
        mv_unhex("1a5cd907143c384c41e830c5bce12aa8817ec5649aaabf2c31388b35b2d744d6", pub, 32), 0);
    key k;
    key_from(&k, EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32));
    assert_memory_equal(k.pub, pub, 32);
    mv_note_key_id("PeterNeumann", pub, id);
    assert_memory_equal(id, "\xc7\x4f\x20\xa3", 4);

    mv_buf note = MV_BUF_INIT;
    mv_buf_append_str(&note, go_text);
    ed_sign(&k, go_text, strlen(go_text), sig);
    mv_note_add_signature(&note, "PeterNeumann", pub, sig);
    assert_int_equal(note.len, strlen(go_note));
    assert_memory_equal(note.data, go_note, note.len);

    size_t tl = 99;
    mv_err err = {0};
    assert_int_equal(
        mv_note_verify((const uint8_t *)go_note, strlen(go_note), "PeterNeumann", pub, &tl, &err),
        MV_OK);
    assert_int_equal(tl, strlen(go_text));
    /* not a checkpoint, though properly signed */
    mv_checkpoint cp;
    assert_int_equal(mv_note_parse_checkpoint((const uint8_t *)go_note, strlen(go_note),
                                              "PeterNeumann", pub, &cp, &err),
                     MV_EMALFORMED);
    /* the Go test's tampering */
    char *bad = mv_xstrdup(go_note);
    memcpy(strstr(bad, "cryptography"), "cryptographY", 12);
    assert_int_equal(
        mv_note_verify((const uint8_t *)bad, strlen(bad), "PeterNeumann", pub, &tl, &err),
        MV_ECRYPTO);
    assert_int_equal(tl, 0);
    free(bad);
    mv_buf_free(&note);
    key_free(&k);
}

/* ---- checkpoints --------------------------------------------------------- */

static void fill_root(uint8_t root[32], unsigned salt)
{
    for (unsigned i = 0; i < 32; i++)
        root[i] = (uint8_t)(i * 29 + salt * 131 + 3);
}

static void test_body_format(void **state)
{
    (void)state;
    mv_checkpoint c = {0};
    snprintf(c.origin, sizeof c.origin, "example.com/log");
    c.size = 3;
    for (unsigned i = 0; i < 32; i++)
        c.root[i] = (uint8_t)i;
    mv_buf b = MV_BUF_INIT;
    mv_checkpoint_body(&c, &b);
    const char *want = "example.com/log\n3\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);

    /* the example of c2sp.org/tlog-checkpoint */
    const char *spec = "example.com/behind-the-sofa\n20852163\n"
                       "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    mv_checkpoint p;
    mv_err err = {0};
    assert_int_equal(mv_checkpoint_parse_body((const uint8_t *)spec, strlen(spec), &p, &err),
                     MV_OK);
    assert_string_equal(p.origin, "example.com/behind-the-sofa");
    assert_int_equal(p.size, 20852163);
    assert_int_equal(p.n_ext, 0);
    mv_buf_reset(&b);
    mv_checkpoint_body(&p, &b);
    assert_memory_equal(b.data, spec, strlen(spec));
    mv_checkpoint_clear(&p);
    /* its whole note, signed by a key we do not have */
    const char *spec_note =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        "\n" DASH " example.com/behind-the-sofa "
        "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/"
        "Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
    key k;
    key_new(&k);
    assert_int_equal(mv_note_parse_checkpoint((const uint8_t *)spec_note, strlen(spec_note),
                                              "example.com/behind-the-sofa", k.pub, &p, &err),
                     MV_ECRYPTO);
    assert_int_equal(p.size, 0);
    assert_null(p.ext);
    key_free(&k);
    mv_buf_free(&b);
}

static void make_checkpoint(mv_checkpoint *c, const char *origin, uint64_t size, size_t n_ext)
{
    memset(c, 0, sizeof *c);
    snprintf(c->origin, sizeof c->origin, "%s", origin);
    c->size = size;
    fill_root(c->root, (unsigned)size);
    c->n_ext = n_ext;
    c->ext = n_ext ? mv_xcalloc(n_ext, sizeof *c->ext) : NULL;
    for (size_t i = 0; i < n_ext; i++)
        c->ext[i] = mv_xasprintf("ext line %zu: caf\xc3\xa9 \xe2\x80\x94 +/= ok", i);
}

/* signed_checkpoint - the note text of c signed by (name, k) through
 * mv_note_add_signature. */
static void signed_checkpoint(const mv_checkpoint *c, const char *name, const key *k, mv_buf *out)
{
    mv_checkpoint_body(c, out);
    uint8_t sig[64];
    ed_sign(k, out->data, out->len, sig);
    mv_note_add_signature(out, name, k->pub, sig);
}

static void test_roundtrip(void **state)
{
    (void)state;
    key k;
    key_new(&k);
    const uint64_t sizes[] = {0, 1, 12345, UINT64_MAX};
    for (size_t e = 0; e <= 3; e++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            mv_checkpoint c, p;
            make_checkpoint(&c, "mailvault.example/archive/\xc3\xa9t\xc3\xa9", sizes[s], e);
            mv_buf note = MV_BUF_INIT, body = MV_BUF_INIT;
            signed_checkpoint(&c, NAME, &k, &note);
            mv_checkpoint_body(&c, &body);
            mv_err err = {0};
            memset(&p, 0x5a, sizeof p); /* overwritten, never freed */
            assert_int_equal(mv_note_parse_checkpoint(note.data, note.len, NAME, k.pub, &p, &err),
                             MV_OK);
            assert_string_equal(p.origin, c.origin);
            assert_int_equal(p.size, c.size);
            assert_memory_equal(p.root, c.root, 32);
            assert_int_equal(p.n_ext, e);
            for (size_t i = 0; i < e; i++)
                assert_string_equal(p.ext[i], c.ext[i]);
            if (e == 0)
                assert_null(p.ext);

            /* the note is the body, a blank line and one plain Ed25519
             * signature over exactly the body bytes */
            assert_memory_equal(note.data, body.data, body.len);
            const char *line = (const char *)note.data + body.len + 1;
            assert_int_equal(note.data[body.len], '\n');
            size_t pre = strlen(DASH " ") + strlen(NAME) + 1;
            assert_memory_equal(line, DASH " ", strlen(DASH " "));
            assert_memory_equal(line + strlen(DASH " "), NAME, strlen(NAME));
            assert_int_equal(note.len, body.len + 1 + pre + 92 + 1);
            unsigned char blob[69];
            assert_int_equal(EVP_DecodeBlock(blob, (const unsigned char *)line + pre, 92), 69);
            uint8_t id[4];
            mv_note_key_id(NAME, k.pub, id);
            assert_memory_equal(blob, id, 4);
            assert_true(ed_verify(k.pub, blob + 4, body.data, body.len));

            /* the text alone through mv_note_verify */
            size_t tl = 0;
            assert_int_equal(mv_note_verify(note.data, note.len, NAME, k.pub, &tl, &err), MV_OK);
            assert_int_equal(tl, body.len);

            mv_checkpoint_clear(&p);
            mv_checkpoint_clear(&p); /* twice: harmless */
            mv_checkpoint_clear(&c);
            mv_buf_free(&note);
            mv_buf_free(&body);
        }
    mv_checkpoint_clear(NULL);
    key_free(&k);
}

/* Any one byte changed anywhere in a signed note is refused. */
static void test_tamper(void **state)
{
    (void)state;
    key k;
    key_new(&k);
    mv_checkpoint c;
    make_checkpoint(&c, "example.org/tamper", 987654321, 2);
    mv_buf note = MV_BUF_INIT;
    signed_checkpoint(&c, NAME, &k, &note);
    const uint8_t xors[] = {0x01, 0x02, 0x20, 0x80};
    size_t crypto = 0, malformed = 0;
    for (size_t i = 0; i < note.len; i++)
        for (size_t x = 0; x < sizeof xors; x++) {
            note.data[i] ^= xors[x];
            mv_checkpoint p;
            mv_err err = {0};
            mv_status st = mv_note_parse_checkpoint(note.data, note.len, NAME, k.pub, &p, &err);
            if (st == MV_OK)
                fail_msg("byte %zu ^ 0x%02x accepted", i, xors[x]);
            assert_true(st == MV_ECRYPTO || st == MV_EMALFORMED);
            crypto += st == MV_ECRYPTO;
            malformed += st == MV_EMALFORMED;
            assert_null(p.ext);
            assert_true(err.msg[0] != '\0');
            note.data[i] ^= xors[x];
        }
    assert_true(crypto > 0 && malformed > 0);
    /* dropping or adding a byte too */
    for (size_t i = 0; i < note.len; i++) {
        mv_buf b = MV_BUF_INIT;
        mv_buf_append(&b, note.data, i);
        mv_buf_append(&b, note.data + i + 1, note.len - i - 1);
        mv_checkpoint p;
        assert_int_not_equal(mv_note_parse_checkpoint(b.data, b.len, NAME, k.pub, &p, NULL), MV_OK);
        mv_buf_reset(&b);
        mv_buf_append(&b, note.data, i);
        mv_buf_append_byte(&b, 'x');
        mv_buf_append(&b, note.data + i, note.len - i);
        assert_int_not_equal(mv_note_parse_checkpoint(b.data, b.len, NAME, k.pub, &p, NULL), MV_OK);
        mv_buf_free(&b);
    }
    mv_checkpoint p;
    assert_int_equal(mv_note_parse_checkpoint(note.data, note.len, NAME, k.pub, &p, NULL), MV_OK);
    mv_checkpoint_clear(&p);
    mv_checkpoint_clear(&c);
    mv_buf_free(&note);
    key_free(&k);
}

static void test_wrong_key(void **state)
{
    (void)state;
    key k, other;
    key_new(&k);
    key_new(&other);
    mv_checkpoint c, p;
    make_checkpoint(&c, "example.org/keys", 42, 0);
    mv_buf note = MV_BUF_INIT;
    signed_checkpoint(&c, NAME, &k, &note);
    mv_err err = {0};
    assert_int_equal(mv_note_parse_checkpoint(note.data, note.len, NAME, other.pub, &p, &err),
                     MV_ECRYPTO);
    assert_non_null(strstr(err.msg, "no signature"));
    assert_int_equal(
        mv_note_parse_checkpoint(note.data, note.len, "mailvault.example/other", k.pub, &p, &err),
        MV_ECRYPTO);
    assert_int_equal(
        mv_note_parse_checkpoint(note.data, note.len, "mailvault.example/archivE", k.pub, &p, &err),
        MV_ECRYPTO);
    /* names that can never be key names */
    const char *bad_names[] = {"",
                               "a b",
                               "a+b",
                               "a\tb",
                               "a\nb",
                               "caf\xc3",
                               "a\xc2\xa0"
                               "b",
                               "a\xe3\x80\x80"
                               "b"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        assert_int_equal(
            mv_note_parse_checkpoint(note.data, note.len, bad_names[i], k.pub, &p, &err),
            MV_EUSAGE);
        size_t tl;
        assert_int_equal(mv_note_verify(note.data, note.len, bad_names[i], k.pub, &tl, &err),
                         MV_EUSAGE);
    }
    assert_int_equal(mv_note_parse_checkpoint(note.data, note.len, NULL, k.pub, &p, &err),
                     MV_EUSAGE);
    /* the right name and key id but a signature that is not Ed25519-sized:
     * the known key's line is bad */
    mv_buf b = MV_BUF_INIT;
    mv_checkpoint_body(&c, &b);
    mv_buf_append_byte(&b, '\n');
    uint8_t id[4], sig[65];
    mv_note_key_id(NAME, k.pub, id);
    ed_sign(&k, b.data, b.len - 1, sig);
    sig[64] = 0;
    sig_line(&b, NAME, id, sig, 65);
    assert_int_equal(mv_note_parse_checkpoint(b.data, b.len, NAME, k.pub, &p, &err), MV_ECRYPTO);
    mv_buf_free(&b);
    mv_checkpoint_clear(&c);
    mv_buf_free(&note);
    key_free(&k);
    key_free(&other);
}

/* Witness cosignatures and other keys' lines are ignored; ours must hold. */
static void test_other_signatures(void **state)
{
    (void)state;
    key k, w;
    key_new(&k);
    key_new(&w);
    mv_checkpoint c, p;
    make_checkpoint(&c, "example.org/witnessed", 7, 1);
    mv_buf body = MV_BUF_INIT;
    mv_checkpoint_body(&c, &body);
    uint8_t sig[64], wsig[64], id[4], other[200];
    ed_sign(&k, body.data, body.len, sig);
    ed_sign(&w, body.data, body.len, wsig);
    for (size_t i = 0; i < sizeof other; i++)
        other[i] = (uint8_t)(i * 7);
    mv_err err = {0};
    for (int order = 0; order < 2; order++) {
        mv_buf note = MV_BUF_INIT;
        mv_buf_append(&note, body.data, body.len);
        if (order == 0) {
            mv_note_add_signature(&note, NAME, k.pub, sig);
            mv_note_add_signature(&note, "witness.example/w1", w.pub, wsig);
        } else {
            mv_note_add_signature(&note, "witness.example/w1", w.pub, wsig);
            mv_note_add_signature(&note, NAME, k.pub, sig);
        }
        /* only one blank line was added */
        assert_int_equal(note.data[body.len], '\n');
        assert_int_not_equal(note.data[body.len + 1], '\n');
        /* an unknown signature type of another length, our name with a
         * different key id (a rotated key), and a repeat of our line */
        uint8_t rid[4] = {1, 2, 3, 4};
        sig_line(&note, "witness.example/cosig", rid, other, sizeof other);
        sig_line(&note, NAME, rid, wsig, 64);
        mv_note_key_id(NAME, k.pub, id);
        sig_line(&note, NAME, id, sig, 64);
        assert_int_equal(mv_note_parse_checkpoint(note.data, note.len, NAME, k.pub, &p, &err),
                         MV_OK);
        assert_int_equal(p.size, 7);
        mv_checkpoint_clear(&p);
        assert_int_equal(
            mv_note_parse_checkpoint(note.data, note.len, "witness.example/w1", w.pub, &p, &err),
            MV_OK);
        mv_checkpoint_clear(&p);
        /* a second line by our key that does not verify spoils the note */
        uint8_t badsig[64];
        memcpy(badsig, sig, 64);
        badsig[10] ^= 1;
        sig_line(&note, NAME, id, badsig, 64);
        assert_int_equal(mv_note_parse_checkpoint(note.data, note.len, NAME, k.pub, &p, &err),
                         MV_ECRYPTO);
        assert_non_null(strstr(err.msg, "does not verify"));
        /* ... but not the witness's view of it */
        assert_int_equal(
            mv_note_parse_checkpoint(note.data, note.len, "witness.example/w1", w.pub, &p, &err),
            MV_OK);
        mv_checkpoint_clear(&p);
        mv_buf_free(&note);
    }
    /* only foreign lines: no signature by us */
    mv_buf note = MV_BUF_INIT;
    mv_buf_append(&note, body.data, body.len);
    mv_note_add_signature(&note, "witness.example/w1", w.pub, wsig);
    assert_int_equal(mv_note_parse_checkpoint(note.data, note.len, NAME, k.pub, &p, &err),
                     MV_ECRYPTO);
    /* a signature by our key over other text */
    mv_buf_reset(&note);
    mv_buf_append(&note, body.data, body.len);
    mv_note_add_signature(&note, NAME, k.pub, wsig);
    assert_int_equal(mv_note_parse_checkpoint(note.data, note.len, NAME, k.pub, &p, &err),
                     MV_ECRYPTO);
    mv_buf_free(&note);
    mv_buf_free(&body);
    mv_checkpoint_clear(&c);
    key_free(&k);
    key_free(&w);
}

/* ---- malformed notes ----------------------------------------------------- */

#define ROOT_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

typedef struct bad_body {
    const char *what;
    const char *text; /* signed properly, so only the syntax is wrong */
    size_t len;       /* 0: strlen */
    mv_status want;
} bad_body;

static const bad_body bad_bodies[] = {
    {"two lines", "o\n5\n", 0, MV_EMALFORMED},
    {"one line", "o\n", 0, MV_EMALFORMED},
    {"empty origin", "\n5\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"size with plus", "o\n+5\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"size with minus", "o\n-5\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"size with leading zero", "o\n05\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"size 00", "o\n00\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"size with space", "o\n 5\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"size trailing space", "o\n5 \n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"size hex", "o\n0x5\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"size 2^64", "o\n18446744073709551616\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"size 21 digits", "o\n100000000000000000000\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"size empty", "o\n\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"root 31 bytes", "o\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n", 0, MV_EMALFORMED},
    {"root 33 bytes", "o\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\n", 0, MV_EMALFORMED},
    {"root without padding", "o\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n", 0,
     MV_EMALFORMED},
    {"root non-canonical bits", "o\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\n", 0,
     MV_EMALFORMED},
    {"root url alphabet", "o\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-=\n", 0, MV_EMALFORMED},
    {"root with space", "o\n5\n " ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"root hex", "o\n5\n000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 0,
     MV_EMALFORMED},
    {"root missing", "o\n5\n\n", 0, MV_EMALFORMED},
    {"empty extension line", "o\n5\n" ROOT_B64 "\n\next\n", 0, MV_EMALFORMED},
    {"CR line ends", "o\r\n5\r\n" ROOT_B64 "\r\n", 0, MV_EMALFORMED},
    {"CR in origin", "o\rx\n5\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"tab in extension", "o\n5\n" ROOT_B64 "\na\tb\n", 0, MV_EMALFORMED},
    {"NUL in origin", "o\0x\n5\n" ROOT_B64 "\n", 4 + 2 + 45, MV_EMALFORMED},
    {"bad UTF-8 in origin", "o\xff\n5\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"overlong UTF-8", "o\xc0\xaf\n5\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"surrogate in UTF-8", "o\xed\xa0\x80\n5\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
    {"truncated UTF-8", "o\xe2\x80\n5\n" ROOT_B64 "\n", 0, MV_EMALFORMED},
};

static void check_bad(const char *what, const uint8_t *p, size_t n, const key *k, mv_status want)
{
    mv_checkpoint cp;
    mv_err err = {0};
    memset(&cp, 0x5a, sizeof cp);
    mv_status st = mv_note_parse_checkpoint(p, n, NAME, k->pub, &cp, &err);
    if (st != want)
        fail_msg("%s: status %s, want %s (%s)", what, mv_status_str(st), mv_status_str(want),
                 err.msg);
    if (st == MV_OK) {
        mv_checkpoint_clear(&cp);
        return;
    }
    assert_true(err.msg[0] != '\0');
    assert_null(cp.ext);
    assert_int_equal(cp.n_ext, 0);
    assert_int_equal(cp.origin[0], '\0');
}

static void test_malformed_bodies(void **state)
{
    (void)state;
    key k;
    key_new(&k);
    for (size_t i = 0; i < sizeof bad_bodies / sizeof *bad_bodies; i++) {
        const bad_body *c = &bad_bodies[i];
        size_t n = c->len ? c->len : strlen(c->text);
        mv_buf note = MV_BUF_INIT;
        sign_text(&note, c->text, n, NAME, &k);
        check_bad(c->what, note.data, note.len, &k, c->want);
        mv_checkpoint cp;
        /* the body parser alone agrees */
        assert_int_equal(mv_checkpoint_parse_body((const uint8_t *)c->text, n, &cp, NULL), c->want);
        mv_buf_free(&note);
    }
    /* the same texts made well formed are accepted (the table tests what it says) */
    mv_buf note = MV_BUF_INIT;
    sign_text(&note, "o\n5\n" ROOT_B64 "\next\n", strlen("o\n5\n" ROOT_B64 "\next\n"), NAME, &k);
    mv_checkpoint cp;
    assert_int_equal(mv_note_parse_checkpoint(note.data, note.len, NAME, k.pub, &cp, NULL), MV_OK);
    assert_string_equal(cp.origin, "o");
    assert_int_equal(cp.size, 5);
    assert_int_equal(cp.n_ext, 1);
    assert_string_equal(cp.ext[0], "ext");
    mv_checkpoint_clear(&cp);
    /* an origin with spaces is allowed by the spec (any non-empty line) */
    mv_buf_reset(&note);
    const char *sp = "my log\n0\n" ROOT_B64 "\n";
    sign_text(&note, sp, strlen(sp), NAME, &k);
    assert_int_equal(mv_note_parse_checkpoint(note.data, note.len, NAME, k.pub, &cp, NULL), MV_OK);
    assert_string_equal(cp.origin, "my log");
    assert_int_equal(cp.size, 0);
    mv_checkpoint_clear(&cp);
    mv_buf_free(&note);
    key_free(&k);
}

static void test_malformed_notes(void **state)
{
    (void)state;
    key k;
    key_new(&k);
    const char *body = "example.org/log\n5\n" ROOT_B64 "\n";
    size_t bl = strlen(body);
    uint8_t sig[64], id[4];
    ed_sign(&k, body, bl, sig);
    mv_note_key_id(NAME, k.pub, id);
    mv_buf good = MV_BUF_INIT;
    sign_text(&good, body, bl, NAME, &k);
    check_bad("good", good.data, good.len, &k, MV_OK);

    mv_buf b = MV_BUF_INIT;
    /* no signatures at all */
    check_bad("body only", (const uint8_t *)body, bl, &k, MV_EMALFORMED);
    mv_buf_append_str(&b, body);
    mv_buf_append_byte(&b, '\n');
    check_bad("blank line, no signature", b.data, b.len, &k, MV_EMALFORMED);
    check_bad("empty", (const uint8_t *)"", 0, &k, MV_EMALFORMED);
    check_bad("newline", (const uint8_t *)"\n", 1, &k, MV_EMALFORMED);
    check_bad("two newlines", (const uint8_t *)"\n\n", 2, &k, MV_EMALFORMED);
    /* no final newline */
    check_bad("no final newline", good.data, good.len - 1, &k, MV_EMALFORMED);
    /* signature lines that are not */
    const char *lines[] = {
        "- " NAME_LIT " AAAA\n",              /* ASCII dash */
        "\xe2\x80\x93 " NAME_LIT " AAAA\n",   /* en dash */
        DASH NAME_LIT " AAAAAAAA\n",          /* no space after the dash */
        DASH " " NAME_LIT "\n",               /* no signature */
        DASH " " NAME_LIT " \n",              /* empty signature */
        DASH "  AAAAAAAA\n",                  /* empty name */
        DASH " a+b AAAAAAAA\n",               /* plus in name */
        DASH " " NAME_LIT " AAAA\n",          /* 3 bytes: no room for a key id */
        DASH " " NAME_LIT " AAAAAA==\n",      /* 4 bytes: key id only */
        DASH " " NAME_LIT " AAAAAAAA=\n",     /* bad padding */
        DASH " " NAME_LIT " AAAAAA=A\n",      /* padding inside */
        DASH " " NAME_LIT " AAAAAAA\n",       /* not a multiple of 4 */
        DASH " " NAME_LIT " AAAAAAA*\n",      /* not base64 */
        DASH " " NAME_LIT " AAAAAAAA AAAA\n", /* two signatures */
        DASH " " NAME_LIT " AAAAAAB=\n",      /* non-zero padding bits */
        "\n",                                 /* a second blank line: ends the text */
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        mv_buf_reset(&b);
        mv_buf_append(&b, good.data, good.len);
        mv_buf_append_str(&b, lines[i]);
        check_bad(lines[i], b.data, b.len, &k, MV_EMALFORMED);
        /* and before our good line */
        mv_buf_reset(&b);
        mv_buf_append_str(&b, body);
        mv_buf_append_byte(&b, '\n');
        mv_buf_append_str(&b, lines[i]);
        sig_line(&b, NAME, id, sig, 64);
        check_bad(lines[i], b.data, b.len, &k, MV_EMALFORMED);
    }
    /* CR line ends on the signature line */
    mv_buf_reset(&b);
    mv_buf_append(&b, good.data, good.len - 1);
    mv_buf_append_str(&b, "\r\n");
    check_bad("CRLF signature line", b.data, b.len, &k, MV_EMALFORMED);
    /* the blank line holding a space */
    mv_buf_reset(&b);
    mv_buf_append_str(&b, body);
    mv_buf_append_str(&b, " \n");
    sig_line(&b, NAME, id, sig, 64);
    check_bad("blank line with a space", b.data, b.len, &k, MV_EMALFORMED);
    /* a name with a Unicode space (U+2009 thin space) */
    mv_buf_reset(&b);
    mv_buf_append(&b, good.data, good.len);
    mv_buf_append_str(&b, DASH " a\xe2\x80\x89"
                               "b AAAAAAAA\n");
    check_bad("name with thin space", b.data, b.len, &k, MV_EMALFORMED);
    mv_buf_free(&b);
    mv_buf_free(&good);
    key_free(&k);
}

static void test_limits(void **state)
{
    (void)state;
    key k;
    key_new(&k);
    mv_buf text = MV_BUF_INIT, note = MV_BUF_INIT;
    mv_checkpoint cp;
    /* origin: 255 bytes fit, 256 do not */
    for (size_t ol = 254; ol <= 257; ol++) {
        mv_buf_reset(&text);
        mv_buf_reset(&note);
        for (size_t i = 0; i < ol; i++)
            mv_buf_append_byte(&text, 'o');
        mv_buf_append_str(&text, "\n1\n" ROOT_B64 "\n");
        sign_text(&note, (const char *)text.data, text.len, NAME, &k);
        check_bad("origin length", note.data, note.len, &k,
                  ol <= MV_CHECKPOINT_ORIGIN_MAX ? MV_OK : MV_ELIMIT);
        if (ol <= MV_CHECKPOINT_ORIGIN_MAX) {
            assert_int_equal(mv_note_parse_checkpoint(note.data, note.len, NAME, k.pub, &cp, NULL),
                             MV_OK);
            assert_int_equal(strlen(cp.origin), ol);
            mv_checkpoint_clear(&cp);
        }
    }
    /* extension lines: 100 fit, 101 do not */
    for (size_t ne = MV_NOTE_MAX_EXT; ne <= MV_NOTE_MAX_EXT + 1; ne++) {
        mv_buf_reset(&text);
        mv_buf_reset(&note);
        mv_buf_append_str(&text, "o\n1\n" ROOT_B64 "\n");
        for (size_t i = 0; i < ne; i++)
            mv_buf_printf(&text, "e%zu\n", i);
        sign_text(&note, (const char *)text.data, text.len, NAME, &k);
        check_bad("extensions", note.data, note.len, &k, ne <= MV_NOTE_MAX_EXT ? MV_OK : MV_ELIMIT);
        if (ne == MV_NOTE_MAX_EXT) {
            assert_int_equal(mv_note_parse_checkpoint(note.data, note.len, NAME, k.pub, &cp, NULL),
                             MV_OK);
            assert_int_equal(cp.n_ext, ne);
            assert_string_equal(cp.ext[ne - 1], "e99");
            mv_buf b = MV_BUF_INIT;
            mv_checkpoint_body(&cp, &b);
            assert_memory_equal(b.data, text.data, text.len);
            mv_buf_free(&b);
            mv_checkpoint_clear(&cp);
        }
    }
    /* signature lines: 100 fit (ours last), 101 do not */
    const char *body = "o\n1\n" ROOT_B64 "\n";
    uint8_t sig[64], id[4] = {9, 9, 9, 9};
    ed_sign(&k, body, strlen(body), sig);
    for (size_t ns = MV_NOTE_MAX_SIGS; ns <= MV_NOTE_MAX_SIGS + 1; ns++) {
        mv_buf_reset(&note);
        mv_buf_append_str(&note, body);
        mv_buf_append_byte(&note, '\n');
        for (size_t i = 0; i + 1 < ns; i++)
            sig_line(&note, "witness.example/w", id, sig, 64);
        mv_note_add_signature(&note, NAME, k.pub, sig);
        check_bad("signatures", note.data, note.len, &k,
                  ns <= MV_NOTE_MAX_SIGS ? MV_OK : MV_ELIMIT);
    }
    /* the whole note: 64 KiB fits, one byte more does not */
    for (size_t total = MV_NOTE_MAX_BYTES; total <= MV_NOTE_MAX_BYTES + 1; total++) {
        mv_buf_reset(&note);
        mv_buf_append_str(&note, body);
        mv_note_add_signature(&note, NAME, k.pub, sig);
        /* pad with one long foreign signature line placed first */
        mv_buf pad = MV_BUF_INIT;
        size_t fixed = note.len + strlen(DASH " w ") + 1;
        size_t b64len = total - fixed;
        size_t extra = b64len % 4; /* fold the odd bytes into the name */
        mv_buf_append_str(&pad, body);
        mv_buf_append_byte(&pad, '\n');
        mv_buf_append_str(&pad, DASH " w");
        for (size_t i = 0; i < extra; i++)
            mv_buf_append_byte(&pad, 'w');
        mv_buf_append_byte(&pad, ' ');
        for (size_t i = 0; i < b64len - extra; i++)
            mv_buf_append_byte(&pad, 'A');
        mv_buf_append_byte(&pad, '\n');
        mv_buf_append(&pad, note.data + strlen(body) + 1, note.len - strlen(body) - 1);
        assert_int_equal(pad.len, total);
        check_bad("total size", pad.data, pad.len, &k,
                  total <= MV_NOTE_MAX_BYTES ? MV_OK : MV_ELIMIT);
        mv_buf_free(&pad);
    }
    assert_int_equal(mv_checkpoint_parse_body((const uint8_t *)body, strlen(body), &cp, NULL),
                     MV_OK);
    mv_checkpoint_clear(&cp);
    mv_buf_free(&text);
    mv_buf_free(&note);
    key_free(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_go_vector),        cmocka_unit_test(test_body_format),
        cmocka_unit_test(test_roundtrip),        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_wrong_key),        cmocka_unit_test(test_other_signatures),
        cmocka_unit_test(test_malformed_bodies), cmocka_unit_test(test_malformed_notes),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
