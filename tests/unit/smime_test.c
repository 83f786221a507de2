/* SPDX-License-Identifier: MIT */
/* smime_test.c - S/MIME escrow decryption: key selection by recipient
 * identifier, RSA v1.5 / OAEP / ECDH, CBC / GCM, the decrypted form,
 * signatures, limits, hostile input, key import.
 *
 * Keys, certificates and messages are made here with the OpenSSL C API
 * (CMS_encrypt, CMS_sign: the real library and formats), so the unit
 * tests never need python.  When MV_SMIME_FIXTURES names a directory
 * written by tests/gen/mvsmime.py (messages made by the openssl CLI: the
 * interop proof), every message in it is also checked against its
 * manifest.txt; unset, that test passes without doing anything. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../../ingest/smime.h"
#include "../../lib/buf.h"
#include "../../lib/digest.h"
#include "../../lib/util.h"

/* ---- world: keys and certificates made once ------------------------------ */

typedef struct ident {
    EVP_PKEY *key;
    X509 *cert;
} ident;

static struct {
    ident ca, rsa1, rsa2, rsa3, twin, p256, p384, signer, rogue;
    char anchors[256];
} W;

static X509 *mk_cert(EVP_PKEY *key, const char *cn, long serial, const ident *issuer, int ca,
                     int ski)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -86400);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_set_pubkey(x, key);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"Mailvault Test", -1, -1, 0);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert) : nm);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer->cert : x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
                                            ca ? "critical,CA:TRUE" : "CA:FALSE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    if (ca) {
        e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "keyCertSign,cRLSign");
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    if (ski) {
        e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, issuer ? issuer->key : key, EVP_sha256()) > 0);
    return x;
}

static void mk_ident(ident *id, EVP_PKEY *key, const char *cn, long serial, const ident *issuer,
                     int ca, int ski)
{
    assert_non_null(key);
    id->key = key;
    id->cert = mk_cert(key, cn, serial, issuer, ca, ski);
}

static int world_setup(void **state)
{
    (void)state;
    mk_ident(&W.ca, EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), "Test CA", 1, NULL, 1, 1);
    mk_ident(&W.rsa1, EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), "Alice", 100, &W.ca, 0, 1);
    mk_ident(&W.rsa2, EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), "Bob", 101, &W.ca, 0, 1);
    mk_ident(&W.rsa3, EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), "Carol", 102, &W.ca, 0, 0);
    /* same subject and issuer as Alice, another serial and key */
    mk_ident(&W.twin, EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), "Alice", 103, &W.ca, 0, 1);
    mk_ident(&W.p256, EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), "Dave", 104, &W.ca, 0, 1);
    mk_ident(&W.p384, EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"), "Erin", 105, &W.ca, 0, 1);
    mk_ident(&W.signer, EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), "Signer", 106, &W.ca, 0, 1);
    mk_ident(&W.rogue, EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), "Rogue", 7, NULL, 0, 1);
    snprintf(W.anchors, sizeof W.anchors, "/tmp/smime_test_ca.%d.pem", (int)getpid());
    FILE *f = fopen(W.anchors, "w");
    assert_non_null(f);
    PEM_write_X509(f, W.ca.cert);
    fclose(f);
    return 0;
}

static int world_teardown(void **state)
{
    (void)state;
    ident *all[] = {&W.ca, &W.rsa1, &W.rsa2, &W.rsa3, &W.twin, &W.p256, &W.p384, &W.signer, &W.rogue};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        EVP_PKEY_free(all[i]->key);
        X509_free(all[i]->cert);
    }
    unlink(W.anchors);
    return 0;
}

/* ---- helpers --------------------------------------------------------------- */

static void key_der(EVP_PKEY *k, mv_buf *out)
{
    unsigned char *d = NULL;
    int l = i2d_PrivateKey(k, &d); /* traditional form; PKCS#8 is tested through import */
    assert_true(l > 0);
    mv_buf_append(out, d, (size_t)l);
    OPENSSL_free(d);
}

static void cert_der(X509 *c, mv_buf *out)
{
    unsigned char *d = NULL;
    int l = i2d_X509(c, &d);
    assert_true(l > 0);
    mv_buf_append(out, d, (size_t)l);
    OPENSSL_free(d);
}

static void kr_add(mv_smime_keyring *kr, uint32_t id, const ident *who)
{
    mv_buf k = MV_BUF_INIT, c = MV_BUF_INIT;
    key_der(who->key, &k);
    cert_der(who->cert, &c);
    mv_err err;
    if (mv_smime_keyring_add(kr, id, k.data, k.len, c.data, c.len, &err) != MV_OK)
        fail_msg("keyring add: %s", err.msg);
    mv_buf_wipe(&k);
    mv_buf_free(&c);
}

#define F_KEYID 1
#define F_OAEP 2

/* env_der - an EnvelopedData / AuthEnvelopedData (AEAD cipher) DER. */
static void env_der(const ident *const *to, int nto, const EVP_CIPHER *ciph, int flags,
                    const void *content, size_t clen, mv_buf *out)
{
    BIO *in = BIO_new_mem_buf(content, (int)clen);
    CMS_ContentInfo *cms = CMS_encrypt(NULL, in, ciph, CMS_BINARY | CMS_PARTIAL);
    assert_non_null(cms);
    for (int i = 0; i < nto; i++) {
        int rsa = EVP_PKEY_get_base_id(to[i]->key) == EVP_PKEY_RSA;
        unsigned fl = ((flags & F_KEYID) ? CMS_USE_KEYID : 0) | ((flags & F_OAEP) && rsa ? CMS_KEY_PARAM : 0);
        CMS_RecipientInfo *ri = CMS_add1_recipient_cert(cms, to[i]->cert, fl);
        assert_non_null(ri);
        if ((flags & F_OAEP) && rsa) {
            EVP_PKEY_CTX *pc = CMS_RecipientInfo_get0_pkey_ctx(ri);
            assert_true(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) > 0);
        }
    }
    assert_int_equal(CMS_final(cms, in, NULL, CMS_BINARY), 1);
    unsigned char *d = NULL;
    int l = i2d_CMS_ContentInfo(cms, &d);
    assert_true(l > 0);
    mv_buf_append(out, d, (size_t)l);
    OPENSSL_free(d);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
}

static void b64_lines(const uint8_t *p, size_t n, mv_buf *out)
{
    unsigned char line[80];
    for (size_t i = 0; i < n; i += 57) {
        size_t k = n - i < 57 ? n - i : 57;
        int l = EVP_EncodeBlock(line, p + i, (int)k);
        mv_buf_append(out, line, (size_t)l);
        mv_buf_append_str(out, "\r\n");
    }
}

static const char HDRS[] = "Received: from mx.example.com by archive.example.com\r\n"
                           "From: Alice <alice@example.com>\r\n"
                           "To: Bob <bob@example.com>\r\n"
                           "Subject: quarterly figures\r\n"
                           "Date: Mon, 3 Jun 2024 10:00:00 +0000\r\n"
                           "Message-ID: <t1@example.com>\r\n"
                           "MIME-Version: 1.0\r\n";

static const char INNER[] = "Content-Type: text/plain; charset=us-ascii\r\n"
                            "\r\n"
                            "The figures are attached in the vault.\r\n";

/* p7m_msg - headers + an application/pkcs7-mime entity holding der. */
static void p7m_msg(const char *hdrs, const char *ctype, const char *cte, const mv_buf *der,
                    mv_buf *out)
{
    mv_buf_append_str(out, hdrs);
    mv_buf_printf(out, "Content-Type: %s\r\n", ctype);
    mv_buf_append_str(out, "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n");
    mv_buf_printf(out, "Content-Transfer-Encoding: %s\r\n\r\n", cte);
    if (!strcmp(cte, "base64"))
        b64_lines(der->data, der->len, out);
    else
        mv_buf_append(out, der->data, der->len);
}

static const char CT_ENV[] = "application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"";
static const char CT_AUTH[] = "application/pkcs7-mime; smime-type=authEnveloped-data; name=\"smime.p7m\"";

/* enc_msg - the usual test message: HDRS + an encrypted INNER. */
static void enc_msg(const ident *const *to, int nto, const EVP_CIPHER *ciph, int flags, mv_buf *out)
{
    mv_buf der = MV_BUF_INIT;
    env_der(to, nto, ciph, flags, INNER, strlen(INNER), &der);
    p7m_msg(HDRS, EVP_CIPHER_get_flags(ciph) & EVP_CIPH_FLAG_AEAD_CIPHER ? CT_AUTH : CT_ENV,
            "base64", &der, out);
    mv_buf_free(&der);
}

/* the decrypted form expected for enc_msg: HDRS (no Content-* there) + INNER */
static void expect_form(const mv_decrypt_result *r, const char *hdrs, const char *inner)
{
    mv_buf want = MV_BUF_INIT;
    mv_buf_append_str(&want, hdrs);
    mv_buf_append_str(&want, inner);
    if (!r->decrypted)
        fail_msg("not decrypted: %s", r->failure ? r->failure : "(no reason)");
    if (r->out_len != want.len || memcmp(r->out, want.data, want.len) != 0)
        fail_msg("decrypted form differs:\n--- got\n%.*s\n--- want\n%s", (int)r->out_len,
                 (const char *)r->out, (const char *)want.data);
    mv_buf_free(&want);
}

static void decrypt_ok(const mv_smime_keyring *kr, const mv_buf *m, const mv_decrypt_limits *lim,
                       mv_decrypt_result *r)
{
    mv_err err;
    if (mv_smime_decrypt(kr, m->data, m->len, lim, r, &err) != MV_OK)
        fail_msg("decrypt: %s", err.msg);
}

static char *rid_of(const ident *who)
{
    /* the issuer is the test CA for all but the rogue */
    char *sn = NULL;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(who->cert), NULL);
    char *h = BN_bn2hex(bn);
    sn = mv_xstrdup(h);
    for (char *c = sn; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
    OPENSSL_free(h);
    BN_free(bn);
    char *s = mv_xasprintf("issuer=CN=Test CA,O=Mailvault Test;serial=%s", sn);
    free(sn);
    return s;
}

/* ---- encryption: algorithms and key selection ------------------------------ */

static void check_one(const ident *to, const EVP_CIPHER *ciph, int flags, const char *key_alg,
                      const char *content_alg, const char *scheme)
{
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 1, &W.rsa2); /* a bystander key first: it must not be used */
    kr_add(kr, 9, to);
    mv_buf m = MV_BUF_INIT;
    const ident *rc[] = {to};
    enc_msg(rc, 1, ciph, flags, &m);
    assert_int_equal(mv_smime_detect(m.data, m.len), MV_SMIME_DETECT_ENCRYPTED);
    mv_decrypt_result r;
    decrypt_ok(kr, &m, NULL, &r);
    expect_form(&r, HDRS, INNER);
    assert_true(r.encrypted);
    assert_int_equal(r.key_id, 9);
    assert_string_equal(r.key_alg, key_alg);
    assert_string_equal(r.content_alg, content_alg);
    assert_string_equal(r.scheme, scheme);
    assert_null(r.failure);
    assert_int_equal(r.defects, 0);
    assert_int_equal(r.sig, MV_SIG_NONE);
    assert_int_equal(r.n_recipients, 1);
    if (flags & F_KEYID)
        assert_true(!strncmp(r.recipients[0], "ski=", 4));
    else {
        char *want = rid_of(to);
        assert_string_equal(r.recipients[0], want);
        free(want);
    }
    mv_decrypt_result_free(&r);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

static void test_rsa_pkcs1_cbc(void **state)
{
    (void)state;
    check_one(&W.rsa1, EVP_aes_256_cbc(), 0, "rsa-pkcs1", "aes-256-cbc", "smime-enveloped");
    check_one(&W.rsa1, EVP_aes_128_cbc(), 0, "rsa-pkcs1", "aes-128-cbc", "smime-enveloped");
    check_one(&W.rsa1, EVP_aes_192_cbc(), F_KEYID, "rsa-pkcs1", "aes-192-cbc", "smime-enveloped");
}

static void test_rsa_oaep(void **state)
{
    (void)state;
    check_one(&W.rsa1, EVP_aes_256_cbc(), F_OAEP, "rsa-oaep", "aes-256-cbc", "smime-enveloped");
    check_one(&W.rsa1, EVP_aes_256_gcm(), F_OAEP | F_KEYID, "rsa-oaep", "aes-256-gcm",
              "smime-authenveloped");
}

static void test_ecdh(void **state)
{
    (void)state;
    check_one(&W.p256, EVP_aes_256_cbc(), 0, "ecdh-p256", "aes-256-cbc", "smime-enveloped");
    check_one(&W.p384, EVP_aes_128_cbc(), F_KEYID, "ecdh-p384", "aes-128-cbc", "smime-enveloped");
    check_one(&W.p256, EVP_aes_128_gcm(), 0, "ecdh-p256", "aes-128-gcm", "smime-authenveloped");
}

static void test_gcm(void **state)
{
    (void)state;
    check_one(&W.rsa1, EVP_aes_256_gcm(), 0, "rsa-pkcs1", "aes-256-gcm", "smime-authenveloped");
    check_one(&W.rsa1, EVP_aes_192_gcm(), 0, "rsa-pkcs1", "aes-192-gcm", "smime-authenveloped");
}

/* several recipients, one escrowed; and EC recipients sharing nothing */
static void test_several_recipients(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 5, &W.p384);
    mv_buf m = MV_BUF_INIT;
    const ident *rc[] = {&W.rsa1, &W.p256, &W.rsa3, &W.p384};
    enc_msg(rc, 4, EVP_aes_256_cbc(), 0, &m);
    mv_decrypt_result r;
    decrypt_ok(kr, &m, NULL, &r);
    expect_form(&r, HDRS, INNER);
    assert_int_equal(r.key_id, 5);
    assert_string_equal(r.key_alg, "ecdh-p384");
    assert_int_equal(r.n_recipients, 4);
    /* DER sorts the SET OF RecipientInfo: look for Carol anywhere */
    char *want = rid_of(&W.rsa3);
    int seen = 0;
    for (size_t i = 0; i < r.n_recipients; i++)
        seen += !strcmp(r.recipients[i], want); /* no SKI: issuer+serial */
    assert_int_equal(seen, 1);
    free(want);
    mv_decrypt_result_free(&r);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

static void test_no_escrowed_key(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 1, &W.rsa1);
    kr_add(kr, 2, &W.p256);
    mv_buf m = MV_BUF_INIT;
    const ident *rc[] = {&W.rsa2, &W.twin, &W.p384};
    enc_msg(rc, 3, EVP_aes_256_gcm(), F_KEYID, &m);
    mv_decrypt_result r;
    decrypt_ok(kr, &m, NULL, &r);
    assert_true(r.encrypted);
    assert_false(r.decrypted);
    assert_null(r.out);
    assert_int_equal(r.key_id, 0);
    assert_string_equal(r.failure, "no escrowed key for any recipient");
    assert_int_equal(r.n_recipients, 3);
    for (size_t i = 0; i < 3; i++)
        assert_true(!strncmp(r.recipients[i], "ski=", 4));
    assert_string_equal(r.scheme, "smime-authenveloped");
    assert_int_equal(r.defects, 0);
    mv_decrypt_result_free(&r);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

/* A key whose certificate has the same subject and issuer (another serial)
 * is never tried: with RSA v1.5 a wrong key could "succeed". */
static void test_wrong_key_never_chosen(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 3, &W.twin);
    mv_buf m = MV_BUF_INIT;
    const ident *rc[] = {&W.rsa1};
    enc_msg(rc, 1, EVP_aes_256_cbc(), 0, &m);
    mv_decrypt_result r;
    decrypt_ok(kr, &m, NULL, &r);
    assert_false(r.decrypted);
    assert_string_equal(r.failure, "no escrowed key for any recipient");
    mv_decrypt_result_free(&r);
    /* with both keys present the right one is picked, whatever the order */
    kr_add(kr, 4, &W.rsa1);
    decrypt_ok(kr, &m, NULL, &r);
    expect_form(&r, HDRS, INNER);
    assert_int_equal(r.key_id, 4);
    mv_decrypt_result_free(&r);
    mv_buf_free(&m);
    /* to the twin, by SKI and OAEP this time */
    mv_buf_reset(&m);
    const ident *rt[] = {&W.twin};
    enc_msg(rt, 1, EVP_aes_256_cbc(), F_KEYID | F_OAEP, &m);
    decrypt_ok(kr, &m, NULL, &r);
    expect_form(&r, HDRS, INNER);
    assert_int_equal(r.key_id, 3);
    assert_string_equal(r.key_alg, "rsa-oaep");
    mv_decrypt_result_free(&r);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

/* ---- hostile and damaged input ----------------------------------------- */

static void expect_failure(const mv_smime_keyring *kr, const mv_buf *m, const char *substr,
                           uint32_t defect)
{
    mv_decrypt_result r;
    decrypt_ok(kr, m, NULL, &r);
    assert_true(r.encrypted);
    assert_false(r.decrypted);
    assert_null(r.out);
    if (!r.failure || !strstr(r.failure, substr))
        fail_msg("failure \"%s\" lacks \"%s\"", r.failure ? r.failure : "(null)", substr);
    if (defect && !(r.defects & defect))
        fail_msg("defects %x lack %x (%s)", r.defects, defect, r.failure);
    mv_decrypt_result_free(&r);
}

static void test_corrupt(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 1, &W.rsa1);
    const ident *rc[] = {&W.rsa1};
    mv_buf der = MV_BUF_INIT, m = MV_BUF_INIT;

    /* GCM: a flipped ciphertext byte fails the tag */
    env_der(rc, 1, EVP_aes_256_gcm(), 0, INNER, strlen(INNER), &der);
    mv_buf bad = MV_BUF_INIT;
    mv_buf_append(&bad, der.data, der.len);
    /* the tag (mac) is the last OCTET STRING; the ciphertext precedes it */
    bad.data[bad.len - 16 - 2 - 5] ^= 0x40;
    p7m_msg(HDRS, CT_AUTH, "base64", &bad, &m);
    expect_failure(kr, &m, "content decryption with escrowed key 1 failed", MV_DDEF_MALFORMED);
    mv_buf_reset(&m);
    mv_buf_reset(&bad);

    /* the encrypted key itself damaged: RSA padding fails, named as such */
    mv_buf_reset(&der);
    env_der(rc, 1, EVP_aes_256_gcm(), 0, INNER, strlen(INNER), &der);
    mv_buf_append(&bad, der.data, der.len);
    /* inside the 256-byte RSA ciphertext, found after the issuer name */
    const uint8_t *cn = memmem(bad.data, bad.len, "Test CA", 7);
    assert_non_null(cn);
    bad.data[(size_t)(cn - bad.data) + 80] ^= 0x01;
    p7m_msg(HDRS, CT_AUTH, "base64", &bad, &m);
    expect_failure(kr, &m, "did not open its recipient info", MV_DDEF_MALFORMED);
    mv_buf_reset(&m);

    /* truncated DER, garbage, bad base64, empty body, unsupported encoding */
    mv_buf_reset(&bad);
    mv_buf_append(&bad, der.data, der.len / 2);
    p7m_msg(HDRS, CT_ENV, "base64", &bad, &m);
    expect_failure(kr, &m, "not a CMS structure", MV_DDEF_MALFORMED);
    mv_buf_reset(&m);
    mv_buf_append_str(&m, HDRS);
    mv_buf_append_str(&m, "Content-Type: application/pkcs7-mime\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                          "!!! not base64 !!!\r\n");
    expect_failure(kr, &m, "bad base64", MV_DDEF_MALFORMED);
    mv_buf_reset(&m);
    mv_buf_append_str(&m, HDRS);
    mv_buf_append_str(&m, "Content-Type: application/pkcs7-mime\r\n\r\n");
    expect_failure(kr, &m, "not a CMS structure", MV_DDEF_MALFORMED);
    mv_buf_reset(&m);
    p7m_msg(HDRS, CT_ENV, "quoted-printable", &der, &m);
    expect_failure(kr, &m, "unsupported transfer encoding", MV_DDEF_UNSUPPORTED);

    /* every prefix of a real message: never a crash, always a result */
    mv_buf_reset(&m);
    enc_msg(rc, 1, EVP_aes_256_cbc(), 0, &m);
    for (size_t cut = 0; cut < m.len; cut += 7) {
        mv_decrypt_result r;
        mv_err err;
        assert_int_equal(mv_smime_decrypt(kr, m.data, cut, NULL, &r, &err), MV_OK);
        assert_false(r.decrypted && r.failure);
        mv_decrypt_result_free(&r);
    }
    mv_buf_free(&der);
    mv_buf_free(&bad);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

static void test_not_smime(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    const char *plain = "From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n";
    mv_decrypt_result r;
    mv_err err;
    assert_int_equal(mv_smime_decrypt(kr, (const uint8_t *)plain, strlen(plain), NULL, &r, &err), MV_OK);
    assert_false(r.encrypted);
    assert_null(r.failure);
    assert_null(r.out);
    assert_int_equal(r.sig, MV_SIG_NONE);
    assert_int_equal(mv_smime_detect((const uint8_t *)plain, strlen(plain)), 0);
    mv_decrypt_result_free(&r);
    assert_int_equal(mv_smime_decrypt(kr, NULL, 0, NULL, &r, &err), MV_OK);
    mv_decrypt_result_free(&r);
    mv_smime_keyring_free(kr);
}

/* ---- forms: nesting, transfer encodings, labels ----------------------- */

static void test_forms(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 1, &W.rsa1);
    const ident *rc[] = {&W.rsa1};
    mv_buf der = MV_BUF_INIT, m = MV_BUF_INIT;
    env_der(rc, 1, EVP_aes_128_cbc(), 0, INNER, strlen(INNER), &der);
    const char *cts[] = {"application/x-pkcs7-mime; smime-type=enveloped-data",
                         "application/pkcs7-mime", "Application/PKCS7-MIME; name=smime.p7m",
                         "application/pkcs7-mime; smime-type=authEnveloped-data",
                         "application/octet-stream; name=\"smime.p7m\""};
    for (size_t i = 0; i < sizeof cts / sizeof cts[0]; i++)
        for (int bin = 0; bin < 2; bin++) {
            mv_buf_reset(&m);
            p7m_msg(HDRS, cts[i], bin ? "binary" : "base64", &der, &m);
            mv_decrypt_result r;
            decrypt_ok(kr, &m, NULL, &r);
            expect_form(&r, HDRS, INNER);
            mv_decrypt_result_free(&r);
        }
    /* LF-only headers stay as they are; the CMS content is CRLF */
    mv_buf_reset(&m);
    const char *lfh = "From: a@example.com\nSubject: lf\n";
    mv_buf_append_str(&m, lfh);
    mv_buf_append_str(&m, "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\n"
                          "Content-Transfer-Encoding: base64\n\n");
    b64_lines(der.data, der.len, &m);
    mv_decrypt_result r;
    decrypt_ok(kr, &m, NULL, &r);
    expect_form(&r, lfh, INNER);
    mv_decrypt_result_free(&r);
    mv_buf_free(&der);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

/* content without a header block gets an empty line before it */
static void test_headerless_content(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 1, &W.rsa1);
    const ident *rc[] = {&W.rsa1};
    mv_buf der = MV_BUF_INIT, m = MV_BUF_INIT;
    const char *raw = "This is some sample content.";
    env_der(rc, 1, EVP_aes_256_cbc(), 0, raw, strlen(raw), &der);
    p7m_msg(HDRS, CT_ENV, "base64", &der, &m);
    mv_decrypt_result r;
    decrypt_ok(kr, &m, NULL, &r);
    char *want = mv_xasprintf("%s\r\n%s", HDRS, raw);
    assert_int_equal(r.out_len, strlen(want));
    assert_memory_equal(r.out, want, r.out_len);
    free(want);
    mv_decrypt_result_free(&r);
    /* LF-only header block: the line end written is LF */
    mv_buf_reset(&m);
    mv_buf_append_str(&m, "From: a@example.com\nContent-Type: application/pkcs7-mime\n"
                          "Content-Transfer-Encoding: base64\n\n");
    b64_lines(der.data, der.len, &m);
    decrypt_ok(kr, &m, NULL, &r);
    want = mv_xasprintf("From: a@example.com\n\n%s", raw);
    assert_int_equal(r.out_len, strlen(want));
    assert_memory_equal(r.out, want, r.out_len);
    free(want);
    mv_decrypt_result_free(&r);
    mv_buf_free(&der);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

/* an encrypted message forwarded as message/rfc822 inside a journal-like
 * multipart: only that part's bytes change */
static void test_nested_rfc822(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 1, &W.p256);
    const ident *rc[] = {&W.p256};
    mv_buf inner = MV_BUF_INIT, m = MV_BUF_INIT;
    enc_msg(rc, 1, EVP_aes_256_gcm(), 0, &inner);
    const char *pre = "From: journal@example.com\r\n"
                      "Subject: journal report\r\n"
                      "MIME-Version: 1.0\r\n"
                      "Content-Type: multipart/mixed; boundary=\"=_outer\"\r\n"
                      "\r\n"
                      "preamble\r\n"
                      "--=_outer\r\n"
                      "Content-Type: text/plain\r\n"
                      "\r\n"
                      "Sender: alice@example.com\r\n"
                      "--=_outer\r\n"
                      "Content-Type: message/rfc822\r\n"
                      "\r\n";
    const char *post = "\r\n--=_outer--\r\nepilogue\r\n";
    mv_buf_append_str(&m, pre);
    mv_buf_append(&m, inner.data, inner.len);
    mv_buf_append_str(&m, post);
    assert_int_equal(mv_smime_detect(m.data, m.len), MV_SMIME_DETECT_ENCRYPTED);
    mv_decrypt_result r;
    decrypt_ok(kr, &m, NULL, &r);
    char *want = mv_xasprintf("%s%s%s%s", pre, HDRS, INNER, post);
    expect_form(&r, "", want);
    free(want);
    mv_decrypt_result_free(&r);

    /* depth limit: the same one level too deep is not found */
    mv_decrypt_limits lim;
    mv_decrypt_limits_default(&lim);
    lim.max_depth = 1;
    decrypt_ok(kr, &m, &lim, &r);
    assert_false(r.encrypted);
    assert_true(r.defects & MV_DDEF_LIMIT);
    mv_decrypt_result_free(&r);

    /* an smime.p7m attachment (octet-stream) as the second part */
    mv_buf der = MV_BUF_INIT;
    env_der(rc, 1, EVP_aes_256_cbc(), 0, INNER, strlen(INNER), &der);
    mv_buf_reset(&m);
    const char *pre2 = "From: gw@example.com\r\n"
                       "MIME-Version: 1.0\r\n"
                       "Content-Type: multipart/mixed; boundary=b1\r\n"
                       "\r\n"
                       "--b1\r\n"
                       "Content-Type: text/plain\r\n"
                       "\r\n"
                       "see attachment\r\n"
                       "--b1\r\n";
    const char *part_hdr = "Content-Type: application/octet-stream; name=\"smime.p7m\"\r\n"
                           "Content-Transfer-Encoding: base64\r\n"
                           "X-Gateway: relabelled\r\n"
                           "\r\n";
    mv_buf_append_str(&m, pre2);
    mv_buf_append_str(&m, part_hdr);
    b64_lines(der.data, der.len, &m);
    mv_buf_append_str(&m, "\r\n--b1--\r\n");
    decrypt_ok(kr, &m, NULL, &r);
    want = mv_xasprintf("%sX-Gateway: relabelled\r\n%s\r\n--b1--\r\n", pre2, INNER);
    expect_form(&r, "", want);
    free(want);
    mv_decrypt_result_free(&r);
    mv_buf_free(&der);
    mv_buf_free(&inner);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

/* ---- signatures ------------------------------------------------------ */

#define S_DETACHED 1
#define S_NOCERTS 2

/* signed_entity - SMIME_write_CMS output (CRLF) of content signed by who */
static void signed_entity(const ident *who, const char *content, int flags, mv_buf *out)
{
    unsigned fl = CMS_BINARY | ((flags & S_DETACHED) ? CMS_DETACHED : 0) |
                  ((flags & S_NOCERTS) ? CMS_NOCERTS : 0);
    /* detached signatures are written by streaming the content through
     * SMIME_write_CMS (re-signing a finished one adds attributes twice) */
    BIO *in = BIO_new_mem_buf(content, (int)strlen(content));
    CMS_ContentInfo *cms = CMS_sign(who->cert, who->key, NULL, in,
                                    fl | ((flags & S_DETACHED) ? CMS_STREAM : 0));
    assert_non_null(cms);
    BIO *o = BIO_new(BIO_s_mem());
    assert_int_equal(SMIME_write_CMS(o, cms, (flags & S_DETACHED) ? in : NULL, (int)(fl | CMS_CRLFEOL)), 1);
    char *d = NULL;
    long l = BIO_get_mem_data(o, &d);
    mv_buf_append(out, d, (size_t)l);
    BIO_free(o);
    BIO_free(in);
    CMS_ContentInfo_free(cms);
}

static void check_sig(const mv_decrypt_result *r, mv_sig_status want, const char *signer_cn)
{
    if (r->sig != want)
        fail_msg("signature %s, want %s (%s)", mv_sig_status_name(r->sig), mv_sig_status_name(want),
                 r->sig_detail ? r->sig_detail : "");
    if (signer_cn) {
        assert_non_null(r->signer);
        char *cn = mv_xasprintf("CN=%s,", signer_cn);
        assert_non_null(strstr(r->signer, cn));
        free(cn);
        assert_true(r->signing_time != INT64_MIN);
        assert_true(llabs((long long)(r->signing_time - mv_now())) < 600);
    }
}

static void test_sign_then_encrypt(void **state)
{
    (void)state;
    for (int opaque = 0; opaque < 2; opaque++) {
        mv_smime_keyring *kr = mv_smime_keyring_new();
        kr_add(kr, 1, &W.rsa1);
        mv_buf se = MV_BUF_INIT, der = MV_BUF_INIT, m = MV_BUF_INIT;
        signed_entity(&W.signer, INNER, opaque ? 0 : S_DETACHED, &se);
        assert_non_null(memmem(se.data, se.len, "MIME-Version: 1.0\r\n", 19));
        const ident *rc[] = {&W.rsa1};
        env_der(rc, 1, EVP_aes_256_cbc(), 0, se.data, se.len, &der);
        p7m_msg(HDRS, CT_ENV, "base64", &der, &m);
        mv_decrypt_result r;
        /* no anchors: the signature verifies, the signer is not trusted */
        decrypt_ok(kr, &m, NULL, &r);
        /* each layer keeps the non-Content fields of the entity it
         * replaces: the signed entity's MIME-Version comes along */
        mv_buf want = MV_BUF_INIT;
        mv_buf_append_str(&want, "MIME-Version: 1.0\r\n");
        mv_buf_append_str(&want, INNER);
        mv_buf_append(&want, "", 0);
        expect_form(&r, HDRS, (const char *)want.data);
        check_sig(&r, MV_SIG_VALID_UNTRUSTED, "Signer");
        mv_decrypt_result_free(&r);
        /* with the CA as anchor: valid */
        mv_err err;
        assert_int_equal(mv_smime_keyring_set_anchors(kr, W.anchors, &err), MV_OK);
        decrypt_ok(kr, &m, NULL, &r);
        expect_form(&r, HDRS, (const char *)want.data);
        check_sig(&r, MV_SIG_VALID, "Signer");
        assert_null(r.sig_detail);
        mv_decrypt_result_free(&r);
        /* layer limit 1: decrypted, the signed entity left as it is */
        mv_decrypt_limits lim;
        mv_decrypt_limits_default(&lim);
        lim.max_layers = 1;
        decrypt_ok(kr, &m, &lim, &r);
        assert_true(r.decrypted);
        assert_null(r.failure);
        assert_true(r.defects & MV_DDEF_LIMIT);
        assert_int_equal(r.sig, MV_SIG_NONE);
        assert_int_equal(r.out_len, strlen(HDRS) + se.len);
        mv_decrypt_result_free(&r);
        /* determinism: the same bytes twice */
        mv_decrypt_result r2;
        decrypt_ok(kr, &m, NULL, &r);
        decrypt_ok(kr, &m, NULL, &r2);
        assert_int_equal(r.out_len, r2.out_len);
        assert_memory_equal(r.out, r2.out, r.out_len);
        mv_decrypt_result_free(&r);
        mv_decrypt_result_free(&r2);
        mv_buf_free(&want);
        mv_buf_free(&se);
        mv_buf_free(&der);
        mv_buf_free(&m);
        mv_smime_keyring_free(kr);
    }
}

static void test_encrypt_then_sign(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 1, &W.p256);
    mv_err err;
    assert_int_equal(mv_smime_keyring_set_anchors(kr, W.anchors, &err), MV_OK);
    mv_buf enc = MV_BUF_INIT, se = MV_BUF_INIT, m = MV_BUF_INIT;
    const ident *rc[] = {&W.p256};
    enc_msg(rc, 1, EVP_aes_256_gcm(), 0, &enc);
    /* the signed content is the encrypted entity without HDRS */
    signed_entity(&W.signer, (const char *)enc.data + strlen(HDRS) - strlen("MIME-Version: 1.0\r\n"),
                  S_DETACHED, &se);
    const char *hd = "From: Alice <alice@example.com>\r\nSubject: e-t-s\r\n";
    mv_buf_append_str(&m, hd);
    mv_buf_append(&m, se.data, se.len);
    assert_int_equal(mv_smime_detect(m.data, m.len), MV_SMIME_DETECT_SIGNED);
    mv_decrypt_result r;
    decrypt_ok(kr, &m, NULL, &r);
    expect_form(&r, hd, "MIME-Version: 1.0\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n"
                        "\r\nThe figures are attached in the vault.\r\n");
    check_sig(&r, MV_SIG_VALID, "Signer");
    assert_string_equal(r.scheme, "smime-authenveloped");
    mv_decrypt_result_free(&r);
    mv_buf_free(&enc);
    mv_buf_free(&se);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

static void test_signed_only(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    mv_err err;
    assert_int_equal(mv_smime_keyring_set_anchors(kr, W.anchors, &err), MV_OK);
    mv_buf se = MV_BUF_INIT, m = MV_BUF_INIT;
    mv_decrypt_result r;

    /* clear-signed, valid: nothing decrypted, the signature reported */
    signed_entity(&W.signer, INNER, S_DETACHED, &se);
    mv_buf_append_str(&m, "From: a@example.com\r\n");
    mv_buf_append(&m, se.data, se.len);
    decrypt_ok(kr, &m, NULL, &r);
    assert_false(r.encrypted);
    assert_null(r.out);
    assert_null(r.failure);
    check_sig(&r, MV_SIG_VALID, "Signer");
    mv_decrypt_result_free(&r);

    /* LF-only copy of the same: re-canonicalised, still valid */
    mv_buf lf = MV_BUF_INIT;
    for (size_t i = 0; i < m.len; i++)
        if (!(m.data[i] == '\r' && i + 1 < m.len && m.data[i + 1] == '\n'))
            mv_buf_append_byte(&lf, m.data[i]);
    decrypt_ok(kr, &lf, NULL, &r);
    check_sig(&r, MV_SIG_VALID, "Signer");
    mv_decrypt_result_free(&r);
    mv_buf_free(&lf);

    /* tampered: one byte of the signed text changed */
    uint8_t *t = memmem(m.data, m.len, "figures", 7);
    assert_non_null(t);
    t[0] = 'F';
    decrypt_ok(kr, &m, NULL, &r);
    check_sig(&r, MV_SIG_INVALID, "Signer");
    assert_non_null(r.sig_detail);
    assert_false(r.encrypted);
    mv_decrypt_result_free(&r);

    /* opaque signed by a signer outside the anchors: valid-untrusted */
    mv_buf_reset(&se);
    mv_buf_reset(&m);
    signed_entity(&W.rogue, INNER, 0, &se);
    mv_buf_append(&m, se.data, se.len);
    assert_int_equal(mv_smime_detect(m.data, m.len), MV_SMIME_DETECT_ENCRYPTED); /* by label */
    decrypt_ok(kr, &m, NULL, &r);
    check_sig(&r, MV_SIG_VALID_UNTRUSTED, "Rogue");
    assert_non_null(strstr(r.sig_detail, "not trusted"));
    assert_false(r.encrypted);
    mv_decrypt_result_free(&r);

    /* no certificate anywhere: unknown signer */
    mv_buf_reset(&se);
    mv_buf_reset(&m);
    signed_entity(&W.rogue, INNER, S_DETACHED | S_NOCERTS, &se);
    mv_buf_append(&m, se.data, se.len);
    decrypt_ok(kr, &m, NULL, &r);
    check_sig(&r, MV_SIG_UNKNOWN_SIGNER, NULL);
    mv_decrypt_result_free(&r);

    /* a broken signature part: error + malformed, never a failure (not encrypted) */
    mv_buf_reset(&m);
    mv_buf_append_str(&m, "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=xx\r\n\r\n"
                          "--xx\r\nContent-Type: text/plain\r\n\r\nhi\r\n--xx\r\n"
                          "Content-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                          "MIIBAAAA\r\n--xx--\r\n");
    decrypt_ok(kr, &m, NULL, &r);
    assert_int_equal(r.sig, MV_SIG_ERROR);
    assert_true(r.defects & MV_DDEF_MALFORMED);
    assert_null(r.failure);
    mv_decrypt_result_free(&r);
    mv_buf_free(&se);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

/* ---- limits ---------------------------------------------------------- */

static void test_output_limit(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 1, &W.rsa1);
    mv_buf m = MV_BUF_INIT;
    const ident *rc[] = {&W.rsa1};
    enc_msg(rc, 1, EVP_aes_256_cbc(), 0, &m);
    mv_decrypt_limits lim;
    mv_decrypt_limits_default(&lim);
    lim.max_output = strlen(HDRS) + strlen(INNER) - 1;
    mv_decrypt_result r;
    decrypt_ok(kr, &m, &lim, &r);
    assert_false(r.decrypted);
    assert_true(r.defects & MV_DDEF_LIMIT);
    assert_non_null(strstr(r.failure, "max_output"));
    mv_decrypt_result_free(&r);
    lim.max_output = strlen(HDRS) + strlen(INNER);
    decrypt_ok(kr, &m, &lim, &r);
    expect_form(&r, HDRS, INNER);
    mv_decrypt_result_free(&r);
    lim.max_output = 10; /* refused before decrypting */
    decrypt_ok(kr, &m, &lim, &r);
    assert_false(r.decrypted);
    assert_non_null(strstr(r.failure, "max_output"));
    mv_decrypt_result_free(&r);

    /* deep nesting of multiparts: bounded, no crash */
    mv_buf deep = MV_BUF_INIT;
    for (int i = 0; i < 5000; i++)
        mv_buf_printf(&deep, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    decrypt_ok(kr, &deep, NULL, &r);
    assert_false(r.encrypted);
    assert_true(r.defects & MV_DDEF_LIMIT);
    mv_decrypt_result_free(&r);
    assert_int_equal(mv_smime_detect(deep.data, deep.len), 0);
    mv_buf_free(&deep);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

/* ---- several entities in one message ----------------------------------- */

/* p7m_part - an encrypted attachment entity (only Content-* fields) */
static void p7m_part(const ident *to, const EVP_CIPHER *ciph, const char *content, mv_buf *out)
{
    mv_buf der = MV_BUF_INIT;
    const ident *rc[] = {to};
    env_der(rc, 1, ciph, 0, content, strlen(content), &der);
    p7m_msg("", EVP_CIPHER_get_flags(ciph) & EVP_CIPH_FLAG_AEAD_CIPHER ? CT_AUTH : CT_ENV, "base64",
            &der, out);
    mv_buf_free(&der);
}

static const char INNER2[] = "Content-Type: text/plain; charset=us-ascii\r\n"
                             "\r\n"
                             "The second sealed note.\r\n";
static const char MIX_HDR[] = "From: gw@example.com\r\n"
                              "MIME-Version: 1.0\r\n"
                              "Content-Type: multipart/mixed; boundary=b1\r\n"
                              "\r\n"
                              "--b1\r\n";

/* mixed2 - MIX_HDR, part a, part b */
static void mixed2(const mv_buf *a, const mv_buf *b, mv_buf *out)
{
    mv_buf_append_str(out, MIX_HDR);
    mv_buf_append(out, a->data, a->len);
    mv_buf_append_str(out, "\r\n--b1\r\n");
    mv_buf_append(out, b->data, b->len);
    mv_buf_append_str(out, "\r\n--b1--\r\n");
}

static void expect_rcpt(const mv_decrypt_result *r, const ident *const *who, size_t n)
{
    assert_int_equal(r->n_recipients, n);
    for (size_t i = 0; i < n; i++) {
        char *want = rid_of(who[i]);
        assert_string_equal(r->recipients[i], want);
        free(want);
    }
}

static void test_several_entities(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 1, &W.rsa1);
    kr_add(kr, 2, &W.p256);
    mv_smime_keyring *kr1 = mv_smime_keyring_new(); /* rsa1 only */
    kr_add(kr1, 1, &W.rsa1);
    mv_buf a = MV_BUF_INIT, b = MV_BUF_INIT, m = MV_BUF_INIT;
    p7m_part(&W.rsa1, EVP_aes_256_cbc(), INNER, &a);
    p7m_part(&W.p256, EVP_aes_128_gcm(), INNER2, &b);
    mixed2(&a, &b, &m);
    assert_int_equal(mv_smime_detect(m.data, m.len), MV_SMIME_DETECT_ENCRYPTED);

    /* both decrypted, each replaced, the bytes around them kept */
    mv_decrypt_result r;
    decrypt_ok(kr, &m, NULL, &r);
    char *want = mv_xasprintf("%s%s\r\n--b1\r\n%s\r\n--b1--\r\n", MIX_HDR, INNER, INNER2);
    expect_form(&r, "", want);
    free(want);
    /* algorithms and key: the first entity's; recipients: both, in order */
    assert_int_equal(r.key_id, 1);
    assert_string_equal(r.key_alg, "rsa-pkcs1");
    assert_string_equal(r.content_alg, "aes-256-cbc");
    assert_string_equal(r.scheme, "smime-enveloped");
    const ident *ab[] = {&W.rsa1, &W.p256}, *ba[] = {&W.p256, &W.rsa1};
    expect_rcpt(&r, ab, 2);
    assert_null(r.failure);
    assert_int_equal(r.defects, 0);
    assert_int_equal(r.sig, MV_SIG_NONE);
    size_t form_len = r.out_len;
    mv_decrypt_result_free(&r);

    /* max_output bounds the whole form, not each entity */
    mv_decrypt_limits lim;
    mv_decrypt_limits_default(&lim);
    lim.max_output = form_len - 1;
    decrypt_ok(kr, &m, &lim, &r);
    assert_false(r.decrypted);
    assert_true(r.defects & MV_DDEF_LIMIT);
    assert_non_null(r.failure);
    assert_non_null(strstr(r.failure, "decrypted form larger than max_output"));
    mv_decrypt_result_free(&r);
    lim.max_output = form_len;
    decrypt_ok(kr, &m, &lim, &r);
    assert_true(r.decrypted);
    assert_int_equal(r.out_len, form_len);
    mv_decrypt_result_free(&r);

    /* the second one's key is not escrowed: all or nothing */
    decrypt_ok(kr1, &m, NULL, &r);
    assert_true(r.encrypted);
    assert_false(r.decrypted);
    assert_null(r.out);
    assert_int_equal(r.key_id, 0);
    assert_string_equal(r.failure, "no escrowed key for any recipient");
    assert_string_equal(r.scheme, "smime-enveloped");
    expect_rcpt(&r, ab, 2);
    mv_decrypt_result_free(&r);

    /* the same, shut one first: its failure and scheme are the message's */
    mv_buf_reset(&m);
    mixed2(&b, &a, &m);
    decrypt_ok(kr1, &m, NULL, &r);
    assert_false(r.decrypted);
    assert_string_equal(r.failure, "no escrowed key for any recipient");
    assert_string_equal(r.scheme, "smime-authenveloped");
    assert_string_equal(r.content_alg, "aes-128-gcm");
    assert_null(r.key_alg);
    expect_rcpt(&r, ba, 2);
    mv_decrypt_result_free(&r);
    decrypt_ok(kr, &m, NULL, &r);
    want = mv_xasprintf("%s%s\r\n--b1\r\n%s\r\n--b1--\r\n", MIX_HDR, INNER2, INNER);
    expect_form(&r, "", want);
    free(want);
    assert_int_equal(r.key_id, 2);
    assert_string_equal(r.key_alg, "ecdh-p256");
    mv_decrypt_result_free(&r);

    /* two entities to one recipient: listed once */
    mv_buf c = MV_BUF_INIT;
    p7m_part(&W.rsa1, EVP_aes_128_cbc(), INNER2, &c);
    mv_buf_reset(&m);
    mixed2(&a, &c, &m);
    decrypt_ok(kr1, &m, NULL, &r);
    want = mv_xasprintf("%s%s\r\n--b1\r\n%s\r\n--b1--\r\n", MIX_HDR, INNER, INNER2);
    expect_form(&r, "", want);
    free(want);
    expect_rcpt(&r, ab, 1);
    mv_decrypt_result_free(&r);

    /* the second one damaged (GCM tag): no form, its reason */
    mv_buf der = MV_BUF_INIT, bad = MV_BUF_INIT;
    const ident *rc[] = {&W.p256};
    env_der(rc, 1, EVP_aes_256_gcm(), 0, INNER2, strlen(INNER2), &der);
    der.data[der.len - 16 - 2 - 5] ^= 0x40;
    p7m_msg("", CT_AUTH, "base64", &der, &bad);
    mv_buf_reset(&m);
    mixed2(&a, &bad, &m);
    expect_failure(kr, &m, "content decryption with escrowed key 2 failed", MV_DDEF_MALFORMED);

    /* an encrypted message and a forwarded one inside it: the forwarded
     * one (message/rfc822 in the decrypted content) is opened too */
    mv_buf fwd = MV_BUF_INIT, outer = MV_BUF_INIT;
    const ident *rp[] = {&W.p256};
    enc_msg(rp, 1, EVP_aes_256_cbc(), 0, &fwd);
    mv_buf content = MV_BUF_INIT;
    mv_buf_append_str(&content, "Content-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\n"
                                "Content-Type: text/plain\r\n\r\nforwarding\r\n--in\r\n"
                                "Content-Type: message/rfc822\r\n\r\n");
    mv_buf_append(&content, fwd.data, fwd.len);
    mv_buf_append_str(&content, "\r\n--in--\r\n");
    const ident *r1[] = {&W.rsa1};
    env_der(r1, 1, EVP_aes_256_cbc(), 0, content.data, content.len, &outer);
    mv_buf_reset(&m);
    p7m_msg(HDRS, CT_ENV, "base64", &outer, &m);
    decrypt_ok(kr, &m, NULL, &r);
    want = mv_xasprintf("Content-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\n"
                        "Content-Type: text/plain\r\n\r\nforwarding\r\n--in\r\n"
                        "Content-Type: message/rfc822\r\n\r\n%s%s\r\n--in--\r\n",
                        HDRS, INNER);
    expect_form(&r, HDRS, want);
    free(want);
    assert_int_equal(r.key_id, 1);
    expect_rcpt(&r, ab, 2);
    mv_decrypt_result_free(&r);
    /* ... and with its key missing, the outer one alone is no form either */
    decrypt_ok(kr1, &m, NULL, &r);
    assert_false(r.decrypted);
    assert_string_equal(r.failure, "no escrowed key for any recipient");
    assert_string_equal(r.key_alg, "rsa-pkcs1");
    mv_decrypt_result_free(&r);

    mv_buf_free(&fwd);
    mv_buf_free(&outer);
    mv_buf_free(&content);
    mv_buf_free(&der);
    mv_buf_free(&bad);
    mv_buf_free(&a);
    mv_buf_free(&b);
    mv_buf_free(&c);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
    mv_smime_keyring_free(kr1);
}

/* multipart/signed whose signed part is a multipart/mixed holding an
 * encrypted attachment: the signed part is walked again */
static void test_signed_holding_encrypted(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 1, &W.rsa1);
    mv_err err;
    assert_int_equal(mv_smime_keyring_set_anchors(kr, W.anchors, &err), MV_OK);
    const char *pre = "Content-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\n"
                      "Content-Type: text/plain\r\n\r\nsee attached\r\n--in\r\n";
    const char *post = "\r\n--in--\r\n";
    mv_buf part1 = MV_BUF_INIT, se = MV_BUF_INIT, m = MV_BUF_INIT;
    mv_buf_append_str(&part1, pre);
    p7m_part(&W.rsa1, EVP_aes_256_cbc(), INNER, &part1);
    mv_buf_append_str(&part1, post);
    signed_entity(&W.signer, (const char *)part1.data, S_DETACHED, &se);
    const char *hd = "From: a@example.com\r\n";
    mv_buf_append_str(&m, hd);
    mv_buf_append(&m, se.data, se.len);
    assert_int_equal(mv_smime_detect(m.data, m.len), MV_SMIME_DETECT_SIGNED);
    /* the signed entity keeps its MIME-Version (general rule) */
    assert_true(se.len > 19 && !memcmp(se.data, "MIME-Version: 1.0\r\nContent-Type", 31));
    char *want = mv_xasprintf("MIME-Version: 1.0\r\n%s%s%s", pre, INNER, post);

    mv_decrypt_result r;
    decrypt_ok(kr, &m, NULL, &r);
    expect_form(&r, hd, want);
    check_sig(&r, MV_SIG_VALID, "Signer");
    assert_int_equal(r.key_id, 1);
    assert_string_equal(r.scheme, "smime-enveloped");
    assert_null(r.failure);
    assert_int_equal(r.defects, 0);
    mv_decrypt_result_free(&r);

    /* max_layers counts across the nesting: the signed layer uses the
     * only one, the attachment is left (limit), nothing was decrypted */
    mv_decrypt_limits lim;
    mv_decrypt_limits_default(&lim);
    lim.max_layers = 1;
    decrypt_ok(kr, &m, &lim, &r);
    assert_false(r.encrypted);
    assert_null(r.out);
    assert_null(r.failure);
    assert_true(r.defects & MV_DDEF_LIMIT);
    check_sig(&r, MV_SIG_VALID, "Signer");
    mv_decrypt_result_free(&r);
    /* max_depth too: the signed part's parts lie one level down */
    mv_decrypt_limits_default(&lim);
    lim.max_depth = 0;
    decrypt_ok(kr, &m, &lim, &r);
    assert_false(r.encrypted);
    assert_true(r.defects & MV_DDEF_LIMIT);
    mv_decrypt_result_free(&r);
    lim.max_depth = 1;
    decrypt_ok(kr, &m, &lim, &r);
    expect_form(&r, hd, want);
    mv_decrypt_result_free(&r);

    /* the signed text changed: invalid, the form is still the plaintext */
    uint8_t *t = memmem(m.data, m.len, "see attached", 12);
    assert_non_null(t);
    t[0] = 'S';
    decrypt_ok(kr, &m, NULL, &r);
    assert_true(r.decrypted);
    assert_int_equal(r.sig, MV_SIG_INVALID);
    mv_decrypt_result_free(&r);
    free(want);
    mv_buf_free(&part1);
    mv_buf_free(&se);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

/* signatures across entities: an invalid one wins, else the first */
static void test_signatures_across_entities(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 1, &W.rsa1);
    mv_err err;
    assert_int_equal(mv_smime_keyring_set_anchors(kr, W.anchors, &err), MV_OK);
    mv_buf good = MV_BUF_INIT, rogue = MV_BUF_INIT, bad = MV_BUF_INIT, enc = MV_BUF_INIT;
    mv_buf m = MV_BUF_INIT;
    signed_entity(&W.signer, INNER, S_DETACHED, &good);
    signed_entity(&W.rogue, INNER2, S_DETACHED, &rogue);
    signed_entity(&W.signer, INNER2, S_DETACHED, &bad);
    uint8_t *t = memmem(bad.data, bad.len, "sealed", 6);
    assert_non_null(t);
    t[0] = 'S';
    p7m_part(&W.rsa1, EVP_aes_256_cbc(), INNER, &enc);

    /* rogue (valid-untrusted) first, then a valid one: the first counts */
    mixed2(&rogue, &good, &m);
    mv_decrypt_result r;
    decrypt_ok(kr, &m, NULL, &r);
    check_sig(&r, MV_SIG_VALID_UNTRUSTED, "Rogue");
    assert_false(r.encrypted); /* signed only: no form */
    assert_null(r.out);
    mv_decrypt_result_free(&r);

    /* a valid one, then a tampered one: invalid wins */
    mv_buf_reset(&m);
    mixed2(&good, &bad, &m);
    decrypt_ok(kr, &m, NULL, &r);
    check_sig(&r, MV_SIG_INVALID, "Signer");
    mv_decrypt_result_free(&r);

    /* signed and encrypted siblings: both unwrapped in the form */
    mv_buf_reset(&m);
    mixed2(&good, &enc, &m);
    decrypt_ok(kr, &m, NULL, &r);
    char *want = mv_xasprintf("%sMIME-Version: 1.0\r\n%s\r\n--b1\r\n%s\r\n--b1--\r\n", MIX_HDR,
                              INNER, INNER);
    expect_form(&r, "", want);
    free(want);
    check_sig(&r, MV_SIG_VALID, "Signer");
    mv_decrypt_result_free(&r);
    mv_buf_free(&good);
    mv_buf_free(&rogue);
    mv_buf_free(&bad);
    mv_buf_free(&enc);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

/* MV_SMIME_MAX_ENTITIES; nesting bounded by max_layers and max_depth */
static void test_entity_limits(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 2, &W.p256);
    mv_buf part = MV_BUF_INIT, m = MV_BUF_INIT;
    p7m_part(&W.p256, EVP_aes_128_cbc(), INNER, &part);
    for (unsigned n = MV_SMIME_MAX_ENTITIES; n <= MV_SMIME_MAX_ENTITIES + 1; n++) {
        mv_buf_reset(&m);
        mv_buf_append_str(&m, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
        for (unsigned i = 0; i < n; i++) {
            mv_buf_append_str(&m, "--b\r\n");
            mv_buf_append(&m, part.data, part.len);
            mv_buf_append_str(&m, "\r\n");
        }
        mv_buf_append_str(&m, "--b--\r\n");
        mv_decrypt_result r;
        decrypt_ok(kr, &m, NULL, &r);
        assert_true(r.encrypted);
        if (n == MV_SMIME_MAX_ENTITIES) {
            assert_true(r.decrypted);
            assert_int_equal(r.defects, 0);
            assert_int_equal(r.n_recipients, 1);
            size_t want = strlen("Content-Type: multipart/mixed; boundary=b\r\n\r\n") +
                          n * (strlen("--b\r\n") + strlen(INNER) + 2) + strlen("--b--\r\n");
            assert_int_equal(r.out_len, want);
        } else {
            assert_false(r.decrypted);
            assert_true(r.defects & MV_DDEF_LIMIT);
            char *w = mv_xasprintf("more than %u S/MIME entities", MV_SMIME_MAX_ENTITIES);
            assert_string_equal(r.failure, w);
            free(w);
        }
        mv_decrypt_result_free(&r);
    }

    /* encrypted content holding a multipart holding encrypted content ...
     * six deep: each level one more layer and one more MIME level */
    mv_buf cur = MV_BUF_INIT, next = MV_BUF_INIT;
    mv_buf_append_str(&cur, INNER);
    for (int lvl = 0; lvl < 6; lvl++) {
        mv_buf_reset(&next);
        mv_buf_printf(&next, "Content-Type: multipart/mixed; boundary=l%d\r\n\r\n--l%d\r\n", lvl,
                      lvl);
        p7m_part(&W.p256, EVP_aes_128_cbc(), (const char *)cur.data, &next);
        mv_buf_printf(&next, "\r\n--l%d--\r\n", lvl);
        mv_buf tmp = cur;
        cur = next;
        next = tmp;
    }
    mv_decrypt_limits lim;
    mv_decrypt_limits_default(&lim);
    mv_decrypt_result r;
    /* default max_layers 4: four opened, the fifth left, a limit */
    decrypt_ok(kr, &cur, &lim, &r);
    assert_true(r.decrypted);
    assert_true(r.defects & MV_DDEF_LIMIT);
    assert_null(r.failure);
    assert_null(memmem(r.out, r.out_len, "The figures", 11));
    mv_decrypt_result_free(&r);
    /* enough layers: all six opened, down to INNER */
    lim.max_layers = 6;
    decrypt_ok(kr, &cur, &lim, &r);
    assert_true(r.decrypted);
    assert_int_equal(r.defects, 0);
    assert_non_null(memmem(r.out, r.out_len, INNER, strlen(INNER)));
    mv_decrypt_result_free(&r);
    /* ... but not deeper than max_depth */
    lim.max_depth = 3;
    decrypt_ok(kr, &cur, &lim, &r);
    assert_true(r.decrypted);
    assert_true(r.defects & MV_DDEF_LIMIT);
    assert_null(memmem(r.out, r.out_len, "The figures", 11));
    mv_decrypt_result_free(&r);
    mv_buf_free(&cur);
    mv_buf_free(&next);
    mv_buf_free(&part);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
}

/* ---- keyring and import ------------------------------------------------ */

static void test_keyring_add(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    mv_buf k = MV_BUF_INIT, c = MV_BUF_INIT;
    key_der(W.rsa1.key, &k);
    cert_der(W.rsa2.cert, &c);
    mv_err err;
    assert_int_equal(mv_smime_keyring_add(kr, 1, k.data, k.len, c.data, c.len, &err), MV_ENOKEY);
    assert_int_equal(mv_smime_keyring_add(kr, 1, k.data, 10, c.data, c.len, &err), MV_EMALFORMED);
    assert_int_equal(mv_smime_keyring_add(kr, 0, k.data, k.len, c.data, c.len, &err), MV_EUSAGE);
    mv_buf_reset(&c);
    cert_der(W.rsa1.cert, &c);
    assert_int_equal(mv_smime_keyring_add(kr, 1, k.data, k.len, c.data, c.len, &err), MV_OK);
    assert_int_equal(mv_smime_keyring_add(kr, 1, k.data, k.len, c.data, c.len, &err), MV_EUSAGE);
    assert_int_equal(mv_smime_keyring_count(kr), 1);
    assert_int_equal(mv_smime_keyring_set_anchors(kr, "/nonexistent/ca.pem", &err), MV_ENOTFOUND);
    mv_buf_wipe(&k);
    mv_buf_free(&c);
    mv_smime_keyring_free(kr);
    mv_smime_keyring_free(NULL);
}

static void p12_of(const ident *who, const char *pass, int legacy, mv_buf *out)
{
    OSSL_LIB_CTX *lc = NULL;
    OSSL_PROVIDER *leg = NULL, *def = NULL;
    int kpbe = 0, cpbe = 0;
    if (legacy) {
        lc = OSSL_LIB_CTX_new();
        leg = OSSL_PROVIDER_load(lc, "legacy");
        def = OSSL_PROVIDER_load(lc, "default");
        assert_non_null(leg);
        kpbe = NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
        cpbe = NID_pbe_WithSHA1And40BitRC2_CBC;
    }
    PKCS12 *p12 = PKCS12_create_ex((char *)pass, "escrow", who->key, who->cert, NULL, kpbe, cpbe,
                                   0, 0, 0, lc, NULL);
    assert_non_null(p12);
    unsigned char *d = NULL;
    int l = i2d_PKCS12(p12, &d);
    assert_true(l > 0);
    mv_buf_append(out, d, (size_t)l);
    OPENSSL_free(d);
    PKCS12_free(p12);
    OSSL_PROVIDER_unload(leg);
    OSSL_PROVIDER_unload(def);
    OSSL_LIB_CTX_free(lc);
}

static void import_and_use(const uint8_t *p, size_t n, const uint8_t *p2, size_t n2,
                           const char *pass, const ident *who, const char *key_alg)
{
    mv_buf k = MV_BUF_INIT, c = MV_BUF_INIT;
    mv_x509_info info;
    mv_err err;
    if (mv_smime_import(p, n, p2, n2, pass, &k, &c, &info, &err) != MV_OK)
        fail_msg("import: %s", err.msg);
    assert_string_equal(info.key_alg, key_alg);
    assert_non_null(strstr(info.subject, "CN="));
    assert_string_equal(info.issuer, "CN=Test CA,O=Mailvault Test");
    assert_int_equal(strlen(info.sha256_fpr), 64);
    assert_non_null(info.ski_hex);
    assert_true(info.not_after > info.not_before);
    /* the imported key opens mail to it */
    mv_smime_keyring *kr = mv_smime_keyring_new();
    assert_int_equal(mv_smime_keyring_add(kr, 42, k.data, k.len, c.data, c.len, &err), MV_OK);
    mv_buf m = MV_BUF_INIT;
    const ident *rc[] = {who};
    enc_msg(rc, 1, EVP_aes_256_gcm(), 0, &m);
    mv_decrypt_result r;
    decrypt_ok(kr, &m, NULL, &r);
    expect_form(&r, HDRS, INNER);
    assert_int_equal(r.key_id, 42);
    mv_decrypt_result_free(&r);
    mv_buf_free(&m);
    mv_smime_keyring_free(kr);
    mv_x509_info_clear(&info);
    mv_buf_wipe(&k);
    mv_buf_free(&c);
}

static void test_import_p12(void **state)
{
    (void)state;
    mv_buf p = MV_BUF_INIT, k = MV_BUF_INIT, c = MV_BUF_INIT;
    mv_err err;
    p12_of(&W.rsa1, "s3cret", 0, &p);
    import_and_use(p.data, p.len, NULL, 0, "s3cret", &W.rsa1, "rsa-2048");
    assert_int_equal(mv_smime_import(p.data, p.len, NULL, 0, "wrong", &k, &c, NULL, &err), MV_ENOKEY);
    assert_non_null(strstr(err.msg, "wrong password"));
    assert_int_equal(mv_smime_import(p.data, p.len, NULL, 0, NULL, &k, &c, NULL, &err), MV_ENOKEY);
    assert_int_equal(k.len, 0);
    mv_buf_reset(&p);
    p12_of(&W.p256, "", 0, &p); /* no password */
    import_and_use(p.data, p.len, NULL, 0, NULL, &W.p256, "ec-p256");
    mv_buf_reset(&p);
    p12_of(&W.p384, "old", 1, &p); /* RC2-40 certificate bag */
    import_and_use(p.data, p.len, NULL, 0, "old", &W.p384, "ec-p384");
    /* not PKCS#12 at all */
    assert_int_equal(mv_smime_import((const uint8_t *)"garbage", 7, NULL, 0, NULL, &k, &c, NULL, &err),
                     MV_EMALFORMED);
    mv_buf_free(&p);
    mv_buf_free(&k);
    mv_buf_free(&c);
}

static void pem_of(const ident *who, const char *pass, mv_buf *key, mv_buf *cert)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (pass)
        assert_true(PEM_write_bio_PKCS8PrivateKey(b, who->key, EVP_aes_256_cbc(), NULL, 0, NULL,
                                                  (void *)pass));
    else
        assert_true(PEM_write_bio_PrivateKey(b, who->key, NULL, NULL, 0, NULL, NULL));
    char *d = NULL;
    long l = BIO_get_mem_data(b, &d);
    mv_buf_append(key, d, (size_t)l);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, W.ca.cert); /* a chain certificate first: must be skipped */
    PEM_write_bio_X509(b, who->cert);
    l = BIO_get_mem_data(b, &d);
    mv_buf_append(cert, d, (size_t)l);
    BIO_free(b);
}

static void test_import_pem(void **state)
{
    (void)state;
    mv_buf key = MV_BUF_INIT, cert = MV_BUF_INIT, both = MV_BUF_INIT, k = MV_BUF_INIT, c = MV_BUF_INIT;
    mv_err err;
    pem_of(&W.rsa2, NULL, &key, &cert);
    import_and_use(key.data, key.len, cert.data, cert.len, NULL, &W.rsa2, "rsa-2048");
    mv_buf_append(&both, cert.data, cert.len);
    mv_buf_append(&both, key.data, key.len);
    import_and_use(both.data, both.len, NULL, 0, NULL, &W.rsa2, "rsa-2048");
    /* key without its certificate */
    assert_int_equal(mv_smime_import(key.data, key.len, NULL, 0, NULL, &k, &c, NULL, &err), MV_ENOKEY);
    /* encrypted PEM key */
    mv_buf_reset(&key);
    mv_buf_reset(&cert);
    pem_of(&W.p384, "pw", &key, &cert);
    import_and_use(cert.data, cert.len, key.data, key.len, "pw", &W.p384, "ec-p384");
    assert_int_equal(mv_smime_import(key.data, key.len, cert.data, cert.len, "nope", &k, &c, NULL, &err),
                     MV_ENOKEY);
    assert_non_null(strstr(err.msg, "wrong password"));
    assert_int_equal(mv_smime_import(key.data, key.len, cert.data, cert.len, NULL, &k, &c, NULL, &err),
                     MV_ENOKEY);
    /* the certificate alone, through mv_smime_cert_info */
    mv_buf der = MV_BUF_INIT;
    cert_der(W.rsa3.cert, &der);
    mv_x509_info info;
    assert_int_equal(mv_smime_cert_info(der.data, der.len, &info, &err), MV_OK);
    assert_null(info.ski_hex); /* Carol's certificate has none: never synthesised */
    assert_string_equal(info.serial_hex, "66");
    assert_string_equal(info.subject, "CN=Carol,O=Mailvault Test");
    mv_x509_info_clear(&info);
    mv_x509_info_clear(NULL);
    mv_buf_free(&der);
    mv_buf_free(&key);
    mv_buf_free(&cert);
    mv_buf_free(&both);
    mv_buf_free(&k);
    mv_buf_free(&c);
}

/* ---- threads --------------------------------------------------------- */

typedef struct thr {
    const mv_smime_keyring *kr;
    const mv_buf *m;
    const uint8_t *want;
    size_t want_len;
    int bad;
} thr;

static void *thr_run(void *arg)
{
    thr *t = arg;
    for (int i = 0; i < 20; i++) {
        mv_decrypt_result r;
        if (mv_smime_decrypt(t->kr, t->m->data, t->m->len, NULL, &r, NULL) != MV_OK ||
            !r.decrypted || r.out_len != t->want_len || memcmp(r.out, t->want, r.out_len) != 0)
            t->bad++;
        mv_decrypt_result_free(&r);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    mv_smime_keyring *kr = mv_smime_keyring_new();
    kr_add(kr, 1, &W.rsa1);
    kr_add(kr, 2, &W.p256);
    mv_err err;
    assert_int_equal(mv_smime_keyring_set_anchors(kr, W.anchors, &err), MV_OK);
    mv_buf m[2] = {MV_BUF_INIT, MV_BUF_INIT}, se = MV_BUF_INIT, der = MV_BUF_INIT;
    signed_entity(&W.signer, INNER, S_DETACHED, &se);
    const ident *r1[] = {&W.rsa1}, *r2[] = {&W.p256};
    env_der(r1, 1, EVP_aes_256_cbc(), 0, se.data, se.len, &der);
    p7m_msg(HDRS, CT_ENV, "base64", &der, &m[0]);
    enc_msg(r2, 1, EVP_aes_256_gcm(), 0, &m[1]);
    mv_decrypt_result ref[2];
    decrypt_ok(kr, &m[0], NULL, &ref[0]);
    decrypt_ok(kr, &m[1], NULL, &ref[1]);
    pthread_t th[6];
    thr t[6];
    for (int i = 0; i < 6; i++) {
        t[i] = (thr){kr, &m[i & 1], ref[i & 1].out, ref[i & 1].out_len, 0};
        assert_int_equal(pthread_create(&th[i], NULL, thr_run, &t[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].bad, 0);
    }
    mv_decrypt_result_free(&ref[0]);
    mv_decrypt_result_free(&ref[1]);
    mv_buf_free(&m[0]);
    mv_buf_free(&m[1]);
    mv_buf_free(&se);
    mv_buf_free(&der);
    mv_smime_keyring_free(kr);
}

/* ---- generator fixtures (openssl CLI): the interop proof ----------------- */

static char *read_all(const char *dir, const char *name, mv_buf *b)
{
    char *path = mv_xasprintf("%s/%s", dir, name);
    mv_err err;
    if (mv_read_file(path, (size_t)64 << 20, b, &err) != MV_OK)
        fail_msg("%s: %s", path, err.msg);
    return path;
}

/* manifest.txt (written by mvsmime.py next to manifest.json), tab-separated:
 *   anchors FILE
 *   key ID KEYFILE CERTFILE
 *   msg FILE DECRYPTED(0|1) KEY_ID|* OUT_SHA256|- SIG FAILURE_SUBSTRING|-
 *   rcpt FILE ID...   (after its msg line: every recipient, in order)
 *   p12 FILE PASSWORD|- OK(0|1) CERT_SHA256|- */
static void test_fixtures(void **state)
{
    (void)state;
    const char *dir = getenv("MV_SMIME_FIXTURES");
    if (!dir || !*dir) {
        print_message("MV_SMIME_FIXTURES not set: generator fixtures not checked\n");
        return;
    }
    mv_buf man = MV_BUF_INIT;
    free(read_all(dir, "manifest.txt", &man));
    mv_buf_append(&man, "", 0);
    mv_smime_keyring *kr = mv_smime_keyring_new();
    unsigned n_msg = 0, n_p12 = 0, n_rcpt = 0;
    mv_decrypt_result last; /* of the last msg line, for its rcpt line */
    char *last_file = NULL;
    memset(&last, 0, sizeof last);
    char *save = NULL;
    for (char *line = strtok_r((char *)man.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[8] = {0};
        int nf = 0;
        char *s2 = NULL;
        for (char *t = strtok_r(line, "\t", &s2); t && nf < 8; t = strtok_r(NULL, "\t", &s2))
            f[nf++] = t;
        mv_err err;
        if (nf == 2 && !strcmp(f[0], "anchors")) {
            char *path = mv_xasprintf("%s/%s", dir, f[1]);
            assert_int_equal(mv_smime_keyring_set_anchors(kr, path, &err), MV_OK);
            free(path);
        } else if (nf == 4 && !strcmp(f[0], "key")) {
            mv_buf k = MV_BUF_INIT, c = MV_BUF_INIT;
            free(read_all(dir, f[2], &k));
            free(read_all(dir, f[3], &c));
            if (mv_smime_keyring_add(kr, (uint32_t)strtoul(f[1], NULL, 10), k.data, k.len, c.data,
                                     c.len, &err) != MV_OK)
                fail_msg("key %s: %s", f[1], err.msg);
            mv_buf_wipe(&k);
            mv_buf_free(&c);
        } else if (nf == 7 && !strcmp(f[0], "msg")) {
            mv_buf m = MV_BUF_INIT;
            free(read_all(dir, f[1], &m));
            mv_decrypt_result r;
            decrypt_ok(kr, &m, NULL, &r);
            int want_dec = !strcmp(f[2], "1");
            if (r.decrypted != want_dec)
                fail_msg("%s: decrypted %d, want %d (%s)", f[1], r.decrypted, want_dec,
                         r.failure ? r.failure : "");
            if (strcmp(f[3], "*") && r.key_id != (uint32_t)strtoul(f[3], NULL, 10))
                fail_msg("%s: key %u, want %s", f[1], r.key_id, f[3]);
            if (strcmp(f[4], "-")) {
                uint8_t md[32];
                char hex[65];
                mv_sha256(r.out, r.out_len, md);
                mv_hex(md, 32, hex);
                if (strcmp(hex, f[4]))
                    fail_msg("%s: decrypted form sha256 %s, want %s:\n%.*s", f[1], hex, f[4],
                             (int)r.out_len, (const char *)r.out);
            }
            if (strcmp(mv_sig_status_name(r.sig), f[5]))
                fail_msg("%s: signature %s, want %s (%s)", f[1], mv_sig_status_name(r.sig), f[5],
                         r.sig_detail ? r.sig_detail : "");
            if (strcmp(f[6], "-") && (!r.failure || !strstr(r.failure, f[6])))
                fail_msg("%s: failure \"%s\", want \"%s\"", f[1], r.failure ? r.failure : "", f[6]);
            mv_decrypt_result_free(&last);
            last = r;
            free(last_file);
            last_file = mv_xstrdup(f[1]);
            mv_buf_free(&m);
            n_msg++;
        } else if (nf >= 2 && !strcmp(f[0], "rcpt")) {
            if (!last_file || strcmp(last_file, f[1]))
                fail_msg("manifest.txt: rcpt %s does not follow its msg line", f[1]);
            if (last.n_recipients != (size_t)(nf - 2))
                fail_msg("%s: %zu recipients, want %d", f[1], last.n_recipients, nf - 2);
            for (int i = 2; i < nf; i++)
                if (strcmp(last.recipients[i - 2], f[i]))
                    fail_msg("%s: recipient %d is %s, want %s", f[1], i - 1,
                             last.recipients[i - 2], f[i]);
            n_rcpt++;
        } else if (nf == 5 && !strcmp(f[0], "p12")) {
            mv_buf p = MV_BUF_INIT, k = MV_BUF_INIT, c = MV_BUF_INIT;
            free(read_all(dir, f[1], &p));
            mv_x509_info info;
            mv_status st = mv_smime_import(p.data, p.len, NULL, 0, strcmp(f[2], "-") ? f[2] : NULL,
                                           &k, &c, &info, &err);
            if (!strcmp(f[3], "1")) {
                if (st != MV_OK)
                    fail_msg("%s: import: %s", f[1], err.msg);
                if (strcmp(info.sha256_fpr, f[4]))
                    fail_msg("%s: certificate %s, want %s", f[1], info.sha256_fpr, f[4]);
                mv_x509_info_clear(&info);
            } else if (st != MV_ENOKEY)
                fail_msg("%s: import status %s, want wrong-password", f[1], mv_status_str(st));
            mv_buf_free(&p);
            mv_buf_wipe(&k);
            mv_buf_free(&c);
            n_p12++;
        } else if (nf > 0 && f[0][0] != '#')
            fail_msg("manifest.txt: bad line starting %s", f[0]);
    }
    assert_true(n_msg > 0);
    print_message("%u generator messages (%u recipient lists) and %u PKCS#12 files checked\n",
                  n_msg, n_rcpt, n_p12);
    mv_decrypt_result_free(&last);
    free(last_file);
    mv_smime_keyring_free(kr);
    mv_buf_free(&man);
}

static void test_sig_names(void **state)
{
    (void)state;
    assert_string_equal(mv_sig_status_name(MV_SIG_VALID_UNTRUSTED), "valid-untrusted");
    assert_string_equal(mv_sig_status_name(MV_SIG_UNKNOWN_SIGNER), "unknown-signer");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sig_names),
        cmocka_unit_test(test_rsa_pkcs1_cbc),
        cmocka_unit_test(test_rsa_oaep),
        cmocka_unit_test(test_ecdh),
        cmocka_unit_test(test_gcm),
        cmocka_unit_test(test_several_recipients),
        cmocka_unit_test(test_no_escrowed_key),
        cmocka_unit_test(test_wrong_key_never_chosen),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_not_smime),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_headerless_content),
        cmocka_unit_test(test_nested_rfc822),
        cmocka_unit_test(test_sign_then_encrypt),
        cmocka_unit_test(test_encrypt_then_sign),
        cmocka_unit_test(test_signed_only),
        cmocka_unit_test(test_output_limit),
        cmocka_unit_test(test_several_entities),
        cmocka_unit_test(test_signed_holding_encrypted),
        cmocka_unit_test(test_signatures_across_entities),
        cmocka_unit_test(test_entity_limits),
        cmocka_unit_test(test_keyring_add),
        cmocka_unit_test(test_import_p12),
        cmocka_unit_test(test_import_pem),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_fixtures),
    };
    return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
