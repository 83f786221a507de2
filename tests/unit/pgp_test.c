/* SPDX-License-Identifier: MIT */
/* pgp_test.c - OpenPGP escrow decryption (ingest/pgp.h).
 *
 * Keys and messages are made in-process with librnp itself (real library,
 * real formats), so these tests need neither python nor gpg.  When
 * MV_PGP_FIXTURES names a directory written by tests/gen/mvpgp.py, every
 * gpg-made message in it is also checked against its manifest.json (the
 * interop proof; the e2e layer sets it); unset, that test does nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <rnp/rnp.h>
#include <rnp/rnp_err.h>

#include "../../ingest/pgp.h"
#include "../../lib/buf.h"
#include "../../lib/util.h"

/* ---- key and message factory (librnp) ------------------------------------ */

static rnp_ffi_t gen;                    /* holds every generated key */
static mv_buf k_rsa, k_cv_arm, k_other;  /* secret keys as exported */
static mv_buf p_signer;                  /* public key of the known signer */
static mv_pgp_keyring *kr;               /* rsa (1), cv25519 (2), signer public */
static char rsa_sub[17], cv_sub[17], other_sub[17], unknown_id[17];
static char signer_fpr[41];

static bool pass_cb(rnp_ffi_t f, void *ctx, rnp_key_handle_t k, const char *why, char buf[],
                    size_t n)
{
    (void)f;
    (void)ctx;
    (void)k;
    (void)why;
    snprintf(buf, n, "pw");
    return true;
}

static rnp_key_handle_t key_of(const char *uid)
{
    rnp_key_handle_t k = NULL;
    assert_int_equal(rnp_locate_key(gen, "userid", uid, &k), RNP_SUCCESS);
    assert_non_null(k);
    return k;
}

static void subkey_id(const char *uid, char out[17])
{
    rnp_key_handle_t k = key_of(uid), sk = NULL;
    assert_int_equal(rnp_key_get_subkey_at(k, 0, &sk), RNP_SUCCESS);
    char *id = NULL;
    assert_int_equal(rnp_key_get_keyid(sk, &id), RNP_SUCCESS);
    snprintf(out, 17, "%s", id);
    rnp_buffer_destroy(id);
    rnp_key_handle_destroy(sk);
    rnp_key_handle_destroy(k);
}

static void export_to(const char *uid, uint32_t flags, mv_buf *out)
{
    rnp_key_handle_t k = key_of(uid);
    rnp_output_t o = NULL;
    assert_int_equal(rnp_output_to_memory(&o, 0), RNP_SUCCESS);
    assert_int_equal(rnp_key_export(k, o, flags | RNP_KEY_EXPORT_SUBKEYS), RNP_SUCCESS);
    uint8_t *b = NULL;
    size_t n = 0;
    assert_int_equal(rnp_output_memory_get_buf(o, &b, &n, false), RNP_SUCCESS);
    mv_buf_append(out, b, n);
    rnp_output_destroy(o);
    rnp_key_handle_destroy(k);
}

static void generate(const char *json)
{
    char *res = NULL;
    assert_int_equal(rnp_generate_key_json(gen, json, &res), RNP_SUCCESS);
    rnp_buffer_destroy(res);
}

/* encrypt - plaintext to the users named (NULL-terminated), optionally
 * signed; armored or binary.  Returns the message in out. */
static void encrypt(const char *plain, size_t n, const char *const *to, const char *signer,
                    int armor, mv_buf *out)
{
    rnp_input_t in = NULL;
    rnp_output_t o = NULL;
    rnp_op_encrypt_t op = NULL;
    assert_int_equal(rnp_input_from_memory(&in, (const uint8_t *)plain, n, false), RNP_SUCCESS);
    assert_int_equal(rnp_output_to_memory(&o, 0), RNP_SUCCESS);
    assert_int_equal(rnp_op_encrypt_create(&op, gen, in, o), RNP_SUCCESS);
    for (size_t i = 0; to[i]; i++) {
        rnp_key_handle_t k = key_of(to[i]);
        assert_int_equal(rnp_op_encrypt_add_recipient(op, k), RNP_SUCCESS);
        rnp_key_handle_destroy(k);
    }
    if (signer) {
        rnp_key_handle_t k = key_of(signer);
        assert_int_equal(rnp_op_encrypt_add_signature(op, k, NULL), RNP_SUCCESS);
        rnp_key_handle_destroy(k);
    }
    assert_int_equal(rnp_op_encrypt_set_cipher(op, "AES256"), RNP_SUCCESS);
    assert_int_equal(rnp_op_encrypt_set_armor(op, armor), RNP_SUCCESS);
    assert_int_equal(rnp_op_encrypt_execute(op), RNP_SUCCESS);
    uint8_t *b = NULL;
    size_t bl = 0;
    assert_int_equal(rnp_output_memory_get_buf(o, &b, &bl, false), RNP_SUCCESS);
    mv_buf_append(out, b, bl);
    rnp_op_encrypt_destroy(op);
    rnp_output_destroy(o);
    rnp_input_destroy(in);
}

static void armor(const mv_buf *bin, mv_buf *out)
{
    rnp_input_t in = NULL;
    rnp_output_t o = NULL;
    assert_int_equal(rnp_input_from_memory(&in, bin->data, bin->len, false), RNP_SUCCESS);
    assert_int_equal(rnp_output_to_memory(&o, 0), RNP_SUCCESS);
    assert_int_equal(rnp_enarmor(in, o, "message"), RNP_SUCCESS);
    uint8_t *b = NULL;
    size_t bl = 0;
    assert_int_equal(rnp_output_memory_get_buf(o, &b, &bl, false), RNP_SUCCESS);
    mv_buf_append(out, b, bl);
    rnp_output_destroy(o);
    rnp_input_destroy(in);
}

/* sign - detached (cleartext 0) or cleartext signature by uid. */
static void sign(const uint8_t *data, size_t n, const char *uid, int cleartext, mv_buf *out)
{
    rnp_input_t in = NULL;
    rnp_output_t o = NULL;
    rnp_op_sign_t op = NULL;
    assert_int_equal(rnp_input_from_memory(&in, data, n, false), RNP_SUCCESS);
    assert_int_equal(rnp_output_to_memory(&o, 0), RNP_SUCCESS);
    if (cleartext)
        assert_int_equal(rnp_op_sign_cleartext_create(&op, gen, in, o), RNP_SUCCESS);
    else
        assert_int_equal(rnp_op_sign_detached_create(&op, gen, in, o), RNP_SUCCESS);
    rnp_key_handle_t k = key_of(uid);
    assert_int_equal(rnp_op_sign_add_signature(op, k, NULL), RNP_SUCCESS);
    rnp_key_handle_destroy(k);
    assert_int_equal(rnp_op_sign_set_armor(op, true), RNP_SUCCESS);
    assert_int_equal(rnp_op_sign_execute(op), RNP_SUCCESS);
    uint8_t *b = NULL;
    size_t bl = 0;
    assert_int_equal(rnp_output_memory_get_buf(o, &b, &bl, false), RNP_SUCCESS);
    mv_buf_append(out, b, bl);
    rnp_op_sign_destroy(op);
    rnp_output_destroy(o);
    rnp_input_destroy(in);
}

/* ---- message builders --------------------------------------------------- */

static const char HDR[] = "From: Alice <alice@example.org>\r\n"
                          "To: Bob <bob@example.org>\r\n"
                          "Subject: quarterly\r\n"
                          "Message-ID: <1@example.org>\r\n"
                          "MIME-Version: 1.0\r\n";
static const char INNER[] = "Content-Type: text/plain; charset=utf-8\r\n"
                            "\r\n"
                            "the secret figures: 42\r\n";

/* pgp_mime - a PGP/MIME encrypted message around the armored text. */
static void pgp_mime(const mv_buf *armored, mv_buf *out)
{
    mv_buf_append_str(out, HDR);
    mv_buf_append_str(out, "Content-Type: multipart/encrypted;\r\n"
                           " protocol=\"application/pgp-encrypted\"; boundary=\"BB\"\r\n"
                           "\r\n"
                           "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n"
                           "--BB\r\n"
                           "Content-Type: application/pgp-encrypted\r\n"
                           "Content-Description: PGP/MIME version identification\r\n"
                           "\r\n"
                           "Version: 1\r\n"
                           "\r\n"
                           "--BB\r\n"
                           "Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n"
                           "\r\n");
    mv_buf_append(out, armored->data, armored->len);
    mv_buf_append_str(out, "\r\n--BB--\r\n");
}

/* mime_to - PGP/MIME message of INNER encrypted to `to`, signed by signer. */
static void mime_to(const char *const *to, const char *signer, mv_buf *out)
{
    mv_buf arm = MV_BUF_INIT;
    encrypt(INNER, strlen(INNER), to, signer, 1, &arm);
    pgp_mime(&arm, out);
    mv_buf_free(&arm);
}

static char *expected_mime(void)
{
    return mv_xasprintf("%s%s", HDR, INNER);
}

static mv_decrypt_result run(const mv_buf *msg, const mv_decrypt_limits *lim)
{
    mv_decrypt_result r;
    mv_err err;
    assert_int_equal(mv_pgp_decrypt(kr, msg->data, msg->len, lim, &r, &err), MV_OK);
    return r;
}

static void assert_out(const mv_decrypt_result *r, const char *want)
{
    if (!r->decrypted)
        fail_msg("not decrypted: %s", r->failure ? r->failure : "(no reason)");
    assert_non_null(r->out);
    if (r->out_len != strlen(want) || memcmp(r->out, want, r->out_len) != 0)
        fail_msg("decrypted form differs:\n--- got\n%.*s\n--- want\n%s", (int)r->out_len,
                 (const char *)r->out, want);
}

/* ---- setup ---------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    assert_int_equal(rnp_ffi_create(&gen, "GPG", "GPG"), RNP_SUCCESS);
    assert_int_equal(rnp_ffi_set_pass_provider(gen, pass_cb, NULL), RNP_SUCCESS);
    generate("{\"primary\":{\"type\":\"RSA\",\"length\":2048,\"userid\":\"rsa <rsa@x>\","
             "\"usage\":[\"sign\"]},\"sub\":{\"type\":\"RSA\",\"length\":2048,"
             "\"usage\":[\"encrypt\"]}}");
    generate("{\"primary\":{\"type\":\"EDDSA\",\"userid\":\"cv <cv@x>\",\"usage\":[\"sign\"],"
             "\"protection\":{\"cipher\":\"AES256\",\"hash\":\"SHA256\"}},"
             "\"sub\":{\"type\":\"ECDH\",\"curve\":\"Curve25519\",\"usage\":[\"encrypt\"],"
             "\"protection\":{\"cipher\":\"AES256\",\"hash\":\"SHA256\"}}}");
    generate("{\"primary\":{\"type\":\"EDDSA\",\"userid\":\"other <other@x>\","
             "\"usage\":[\"sign\"]},\"sub\":{\"type\":\"ECDH\",\"curve\":\"Curve25519\","
             "\"usage\":[\"encrypt\"]}}");
    generate("{\"primary\":{\"type\":\"EDDSA\",\"userid\":\"Signer <signer@x>\","
             "\"usage\":[\"sign\"]}}");
    generate("{\"primary\":{\"type\":\"EDDSA\",\"userid\":\"unknown <unknown@x>\","
             "\"usage\":[\"sign\"]}}");
    assert_int_equal(rnp_ffi_set_pass_provider(gen, NULL, NULL), RNP_SUCCESS);
    export_to("rsa <rsa@x>", RNP_KEY_EXPORT_SECRET, &k_rsa);
    export_to("cv <cv@x>", RNP_KEY_EXPORT_SECRET | RNP_KEY_EXPORT_ARMORED, &k_cv_arm);
    export_to("other <other@x>", RNP_KEY_EXPORT_SECRET, &k_other);
    export_to("Signer <signer@x>", RNP_KEY_EXPORT_PUBLIC, &p_signer);
    subkey_id("rsa <rsa@x>", rsa_sub);
    subkey_id("cv <cv@x>", cv_sub);
    subkey_id("other <other@x>", other_sub);
    rnp_key_handle_t k = key_of("unknown <unknown@x>");
    char *s = NULL;
    assert_int_equal(rnp_key_get_keyid(k, &s), RNP_SUCCESS);
    snprintf(unknown_id, sizeof unknown_id, "%s", s);
    rnp_buffer_destroy(s);
    rnp_key_handle_destroy(k);
    k = key_of("Signer <signer@x>");
    assert_int_equal(rnp_key_get_fprint(k, &s), RNP_SUCCESS);
    snprintf(signer_fpr, sizeof signer_fpr, "%s", s);
    rnp_buffer_destroy(s);
    rnp_key_handle_destroy(k);

    mv_err err;
    kr = mv_pgp_keyring_new(&err);
    assert_non_null(kr);
    assert_int_equal(mv_pgp_keyring_add(kr, 1, k_rsa.data, k_rsa.len, NULL, &err), MV_OK);
    assert_int_equal(mv_pgp_keyring_add(kr, 2, k_cv_arm.data, k_cv_arm.len, "pw", &err), MV_OK);
    assert_int_equal(mv_pgp_keyring_add_public(kr, p_signer.data, p_signer.len, &err), MV_OK);
    assert_int_equal(mv_pgp_keyring_count(kr), 2);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mv_pgp_keyring_free(kr);
    mv_buf_wipe(&k_rsa);
    mv_buf_wipe(&k_cv_arm);
    mv_buf_wipe(&k_other);
    mv_buf_free(&p_signer);
    rnp_ffi_destroy(gen);
    return 0;
}

/* ---- PGP/MIME -------------------------------------------------------------- */

static void t_rsa(void **state)
{
    (void)state;
    const char *to[] = {"rsa <rsa@x>", NULL};
    mv_buf msg = MV_BUF_INIT;
    mime_to(to, NULL, &msg);
    mv_decrypt_result r = run(&msg, NULL);
    char *want = expected_mime();
    assert_out(&r, want);
    assert_true(r.encrypted);
    assert_string_equal(r.scheme, "pgp-mime");
    assert_int_equal(r.key_id, 1);
    assert_string_equal(r.key_alg, "rsa");
    assert_string_equal(r.content_alg, "aes-256");
    assert_int_equal(r.n_recipients, 1);
    char rc[32];
    snprintf(rc, sizeof rc, "pgp=%s", rsa_sub);
    assert_string_equal(r.recipients[0], rc);
    assert_int_equal(r.sig, MV_SIG_NONE);
    assert_null(r.failure);
    assert_int_equal(r.defects, 0);
    free(want);
    mv_decrypt_result_free(&r);
    mv_buf_free(&msg);
}

static void t_cv25519_two_recipients(void **state)
{
    (void)state;
    const char *to[] = {"other <other@x>", "cv <cv@x>", NULL};
    mv_buf msg = MV_BUF_INIT;
    mime_to(to, NULL, &msg);
    mv_decrypt_result r = run(&msg, NULL);
    char *want = expected_mime();
    assert_out(&r, want);
    assert_int_equal(r.key_id, 2);
    assert_string_equal(r.key_alg, "ecdh-cv25519");
    assert_int_equal(r.n_recipients, 2);
    char a[32], b[32];
    snprintf(a, sizeof a, "pgp=%s", other_sub);
    snprintf(b, sizeof b, "pgp=%s", cv_sub);
    assert_string_equal(r.recipients[0], a);
    assert_string_equal(r.recipients[1], b);
    free(want);
    mv_decrypt_result_free(&r);
    mv_buf_free(&msg);
}

static void t_no_key(void **state)
{
    (void)state;
    const char *to[] = {"other <other@x>", NULL};
    mv_buf msg = MV_BUF_INIT;
    mime_to(to, NULL, &msg);
    mv_decrypt_result r = run(&msg, NULL);
    assert_true(r.encrypted);
    assert_false(r.decrypted);
    assert_null(r.out);
    assert_non_null(r.failure);
    assert_non_null(strstr(r.failure, "no escrowed key"));
    assert_int_equal(r.n_recipients, 1);
    assert_int_equal(r.key_id, 0);
    mv_decrypt_result_free(&r);
    mv_buf_free(&msg);
}

/* hide - zero the key id of the first PKESK of a binary message. */
static void hide(mv_buf *bin)
{
    uint8_t *p = bin->data;
    size_t body;
    if (p[0] & 0x40) { /* new format */
        assert_int_equal(p[0] & 0x3f, 1);
        body = p[1] < 192 ? 2 : p[1] < 224 ? 3 : 6;
    } else {
        assert_int_equal((p[0] >> 2) & 0xf, 1);
        body = 1 + ((size_t)1 << (p[0] & 3));
    }
    assert_int_equal(p[body], 3);
    memset(p + body + 1, 0, 8);
}

static void hidden_msg(const char *uid, mv_buf *msg)
{
    const char *to[] = {uid, NULL};
    mv_buf bin = MV_BUF_INIT, arm = MV_BUF_INIT;
    encrypt(INNER, strlen(INNER), to, NULL, 0, &bin);
    hide(&bin);
    armor(&bin, &arm);
    pgp_mime(&arm, msg);
    mv_buf_free(&bin);
    mv_buf_free(&arm);
}

static void t_hidden(void **state)
{
    (void)state;
    const char *uids[] = {"cv <cv@x>", "rsa <rsa@x>"};
    for (int i = 0; i < 2; i++) {
        mv_buf msg = MV_BUF_INIT;
        hidden_msg(uids[i], &msg);
        mv_decrypt_result r = run(&msg, NULL);
        char *want = expected_mime();
        assert_out(&r, want);
        assert_int_equal(r.key_id, i == 0 ? 2 : 1);
        assert_int_equal(r.n_recipients, 1);
        assert_string_equal(r.recipients[0], "pgp=0000000000000000");
        free(want);
        mv_decrypt_result_free(&r);
        mv_buf_free(&msg);
    }
    /* hidden, and no escrowed key fits */
    mv_buf msg = MV_BUF_INIT;
    hidden_msg("other <other@x>", &msg);
    mv_decrypt_result r = run(&msg, NULL);
    assert_false(r.decrypted);
    assert_non_null(r.failure);
    assert_non_null(strstr(r.failure, "no escrowed key"));
    assert_string_equal(r.recipients[0], "pgp=0000000000000000");
    mv_decrypt_result_free(&r);
    mv_buf_free(&msg);
}

static void t_signed_encrypted(void **state)
{
    (void)state;
    const char *to[] = {"cv <cv@x>", NULL};
    mv_buf msg = MV_BUF_INIT;
    mime_to(to, "Signer <signer@x>", &msg);
    mv_decrypt_result r = run(&msg, NULL);
    char *want = expected_mime();
    assert_out(&r, want);
    assert_int_equal(r.sig, MV_SIG_VALID);
    assert_non_null(r.signer);
    assert_non_null(strstr(r.signer, signer_fpr));
    assert_non_null(strstr(r.signer, "uid=Signer <signer@x>"));
    assert_true(r.signing_time > 1600000000);
    mv_decrypt_result_free(&r);
    mv_buf_free(&msg);

    mv_buf msg2 = MV_BUF_INIT;
    mime_to(to, "unknown <unknown@x>", &msg2);
    r = run(&msg2, NULL);
    assert_out(&r, want);
    assert_int_equal(r.sig, MV_SIG_UNKNOWN_SIGNER);
    char kid[40];
    snprintf(kid, sizeof kid, "keyid=%s", unknown_id);
    assert_string_equal(r.signer, kid);
    free(want);
    mv_decrypt_result_free(&r);
    mv_buf_free(&msg2);
}

static void t_corrupt(void **state)
{
    (void)state;
    const char *to[] = {"cv <cv@x>", NULL};
    /* a flipped ciphertext byte: the MDC catches it */
    mv_buf bin = MV_BUF_INIT, arm = MV_BUF_INIT, msg = MV_BUF_INIT;
    encrypt(INNER, strlen(INNER), to, NULL, 0, &bin);
    bin.data[bin.len - 5] ^= 0x40;
    armor(&bin, &arm);
    pgp_mime(&arm, &msg);
    mv_decrypt_result r = run(&msg, NULL);
    assert_true(r.encrypted);
    assert_false(r.decrypted);
    assert_null(r.out);
    assert_non_null(r.failure);
    mv_decrypt_result_free(&r);
    /* every truncation of the message: never a crash, never a decryption */
    for (size_t cut = 0; cut < msg.len; cut += 37) {
        mv_err err;
        assert_int_equal(mv_pgp_decrypt(kr, msg.data, cut, NULL, &r, &err), MV_OK);
        assert_false(r.decrypted);
        mv_decrypt_result_free(&r);
    }
    /* garbage armor */
    mv_buf junk = MV_BUF_INIT;
    mv_buf_append_str(&junk, "-----BEGIN PGP MESSAGE-----\r\n\r\nAAAAAAAAAAAA\r\n"
                             "-----END PGP MESSAGE-----\r\n");
    mv_buf m2 = MV_BUF_INIT;
    pgp_mime(&junk, &m2);
    r = run(&m2, NULL);
    assert_true(r.encrypted);
    assert_false(r.decrypted);
    assert_non_null(r.failure);
    mv_decrypt_result_free(&r);
    mv_buf_free(&junk);
    mv_buf_free(&m2);
    mv_buf_free(&bin);
    mv_buf_free(&arm);
    mv_buf_free(&msg);
}

static void t_limits(void **state)
{
    (void)state;
    const char *to[] = {"rsa <rsa@x>", NULL};
    mv_buf msg = MV_BUF_INIT;
    mime_to(to, NULL, &msg);
    mv_decrypt_limits lim;
    mv_decrypt_limits_default(&lim);
    lim.max_output = 10;
    mv_decrypt_result r = run(&msg, &lim);
    assert_false(r.decrypted);
    assert_true(r.defects & MV_DDEF_LIMIT);
    assert_non_null(strstr(r.failure, "max_output"));
    mv_decrypt_result_free(&r);
    /* the plaintext fits, the whole decrypted form does not */
    lim.max_output = strlen(INNER) + 5;
    r = run(&msg, &lim);
    assert_false(r.decrypted);
    assert_true(r.defects & MV_DDEF_LIMIT);
    assert_non_null(strstr(r.failure, "decrypted form over max_output"));
    mv_decrypt_result_free(&r);
    lim.max_output = strlen(HDR) + strlen(INNER);
    r = run(&msg, &lim);
    assert_true(r.decrypted);
    mv_decrypt_result_free(&r);
    /* depth: the encrypted entity inside a multipart/mixed, depth 1 allowed? */
    mv_buf nested = MV_BUF_INIT;
    mv_buf_append_str(&nested, "Content-Type: multipart/mixed; boundary=\"X\"\r\n\r\n--X\r\n");
    mv_buf_append(&nested, msg.data, msg.len);
    mv_buf_append_str(&nested, "\r\n--X--\r\n");
    lim.max_output = 1 << 20;
    lim.max_depth = 1;
    r = run(&nested, &lim);
    assert_false(r.encrypted);
    assert_true(r.defects & MV_DDEF_LIMIT);
    mv_decrypt_result_free(&r);
    mv_buf_free(&nested);
    mv_buf_free(&msg);
}

static void t_nested_rfc822(void **state)
{
    (void)state;
    const char *to[] = {"rsa <rsa@x>", NULL};
    mv_buf enc = MV_BUF_INIT, msg = MV_BUF_INIT;
    mime_to(to, NULL, &enc);
    static const char pre[] = "From: fwd@example.org\r\n"
                              "Subject: Fwd\r\n"
                              "Content-Type: multipart/mixed; boundary=\"OUT\"\r\n"
                              "\r\n"
                              "--OUT\r\n"
                              "Content-Type: text/plain\r\n"
                              "\r\n"
                              "see attached\r\n"
                              "--OUT\r\n"
                              "Content-Type: message/rfc822\r\n"
                              "\r\n";
    static const char post[] = "\r\n--OUT--\r\n";
    mv_buf_append_str(&msg, pre);
    mv_buf_append(&msg, enc.data, enc.len);
    mv_buf_append_str(&msg, post);
    mv_decrypt_result r = run(&msg, NULL);
    char *want = mv_xasprintf("%s%s%s%s", pre, HDR, INNER, post);
    assert_out(&r, want);
    free(want);
    mv_decrypt_result_free(&r);
    mv_buf_free(&enc);
    mv_buf_free(&msg);
}

/* ---- signed PGP/MIME and cleartext --------------------------------------- */

static void t_mime_signed(void **state)
{
    (void)state;
    static const char part[] = "Content-Type: text/plain\r\n\r\nsigned text\r\n";
    mv_buf sig = MV_BUF_INIT, msg = MV_BUF_INIT;
    /* the CRLF before the delimiter belongs to it (RFC 2046 5.1.1): not signed */
    sign((const uint8_t *)part, strlen(part) - 2, "Signer <signer@x>", 0, &sig);
    mv_buf_append_str(&msg, HDR);
    mv_buf_append_str(&msg, "Content-Type: multipart/signed; micalg=pgp-sha256;\r\n"
                            " protocol=\"application/pgp-signature\"; boundary=\"S\"\r\n\r\n"
                            "--S\r\n");
    mv_buf_append_str(&msg, part);
    mv_buf_append_str(&msg, "--S\r\nContent-Type: application/pgp-signature\r\n\r\n");
    mv_buf_append(&msg, sig.data, sig.len);
    mv_buf_append_str(&msg, "\r\n--S--\r\n");
    assert_true(mv_pgp_detect(msg.data, msg.len));
    mv_decrypt_result r = run(&msg, NULL);
    assert_false(r.encrypted);
    assert_null(r.out);
    assert_int_equal(r.sig, MV_SIG_VALID);
    assert_non_null(strstr(r.signer, signer_fpr));
    mv_decrypt_result_free(&r);
    /* the same with LF line ends: canonicalised to CRLF, still valid */
    mv_buf lf = MV_BUF_INIT;
    for (size_t i = 0; i < msg.len; i++)
        if (msg.data[i] != '\r')
            mv_buf_append_byte(&lf, msg.data[i]);
    r = run(&lf, NULL);
    assert_int_equal(r.sig, MV_SIG_VALID);
    mv_decrypt_result_free(&r);
    /* tampered signed text */
    uint8_t *at = memmem(msg.data, msg.len, "signed text", 11);
    assert_non_null(at);
    at[0] = 'S';
    r = run(&msg, NULL);
    assert_int_equal(r.sig, MV_SIG_INVALID);
    assert_non_null(r.sig_detail);
    mv_decrypt_result_free(&r);
    mv_buf_free(&lf);
    mv_buf_free(&sig);
    mv_buf_free(&msg);
}

static void t_cleartext(void **state)
{
    (void)state;
    static const char text[] = "I agree to the terms.\r\n- dashed line\r\n";
    mv_buf cs = MV_BUF_INIT, msg = MV_BUF_INIT;
    sign((const uint8_t *)text, strlen(text), "Signer <signer@x>", 1, &cs);
    mv_buf_append_str(&msg, HDR);
    mv_buf_append_str(&msg, "Content-Type: text/plain\r\n\r\nabove\r\n");
    mv_buf_append(&msg, cs.data, cs.len);
    mv_buf_append_str(&msg, "below\r\n");
    assert_true(mv_pgp_detect(msg.data, msg.len));
    mv_decrypt_result r = run(&msg, NULL);
    assert_false(r.encrypted);
    assert_int_equal(r.sig, MV_SIG_VALID);
    mv_decrypt_result_free(&r);
    uint8_t *at = memmem(msg.data, msg.len, "I agree", 7);
    at[2] = 'x';
    r = run(&msg, NULL);
    assert_int_equal(r.sig, MV_SIG_INVALID);
    mv_decrypt_result_free(&r);
    mv_buf_free(&cs);
    mv_buf_free(&msg);
}

/* ---- inline PGP -------------------------------------------------------------- */

static void b64(const uint8_t *p, size_t n, mv_buf *out)
{
    size_t cap = 4 * ((n + 2) / 3) + 1;
    uint8_t *tmp = mv_xmalloc(cap);
    int len = EVP_EncodeBlock(tmp, p, (int)n);
    for (int i = 0; i < len; i += 76) {
        mv_buf_append(out, tmp + i, (size_t)(len - i < 76 ? len - i : 76));
        mv_buf_append_str(out, "\r\n");
    }
    free(tmp);
}

static void t_inline(void **state)
{
    (void)state;
    static const char secret[] = "inline secret \xc3\xa9t\xc3\xa9\n";
    const char *to[] = {"cv <cv@x>", NULL};
    mv_buf arm = MV_BUF_INIT;
    encrypt(secret, strlen(secret), to, NULL, 1, &arm);
    while (arm.len && (arm.data[arm.len - 1] == '\n' || arm.data[arm.len - 1] == '\r'))
        arm.len--;
    mv_buf body = MV_BUF_INIT;
    mv_buf_append_str(&body, "Hello Bob,\r\n\r\n");
    mv_buf_append(&body, arm.data, arm.len);
    mv_buf_append_str(&body, "\r\nRegards\r\n");
    for (int enc = 0; enc < 2; enc++) {
        mv_buf msg = MV_BUF_INIT;
        mv_buf_append_str(&msg, HDR);
        mv_buf_append_str(&msg, "Content-Type: text/plain; charset=us-ascii\r\n");
        if (enc) {
            mv_buf_append_str(&msg, "Content-Transfer-Encoding: base64\r\n\r\n");
            b64(body.data, body.len, &msg);
        } else {
            mv_buf_append_str(&msg, "Content-Transfer-Encoding: 7bit\r\n\r\n");
            mv_buf_append(&msg, body.data, body.len);
        }
        assert_true(mv_pgp_detect(msg.data, msg.len));
        mv_decrypt_result r = run(&msg, NULL);
        char *want = mv_xasprintf("%sContent-Type: text/plain; charset=us-ascii\r\n"
                                  "Content-Transfer-Encoding: 8bit\r\n\r\n"
                                  "Hello Bob,\r\n\r\n%s\r\nRegards\r\n",
                                  HDR, secret);
        assert_out(&r, want);
        assert_string_equal(r.scheme, "pgp-inline");
        assert_int_equal(r.key_id, 2);
        free(want);
        mv_decrypt_result_free(&r);
        mv_buf_free(&msg);
    }
    mv_buf_free(&arm);
    mv_buf_free(&body);
}

/* ---- keyring and key material -------------------------------------------- */

static void t_keyring(void **state)
{
    (void)state;
    mv_err err;
    mv_pgp_keyring *k2 = mv_pgp_keyring_new(&err);
    assert_int_equal(mv_pgp_keyring_add(k2, 5, k_cv_arm.data, k_cv_arm.len, "nope", &err),
                     MV_ENOKEY);
    assert_non_null(strstr(err.msg, "wrong passphrase"));
    assert_int_equal(mv_pgp_keyring_add(k2, 5, k_cv_arm.data, k_cv_arm.len, NULL, &err),
                     MV_ENOKEY);
    assert_int_equal(mv_pgp_keyring_add(k2, 5, p_signer.data, p_signer.len, NULL, &err),
                     MV_EMALFORMED);
    assert_int_equal(mv_pgp_keyring_add(k2, 5, (const uint8_t *)"junk", 4, NULL, &err),
                     MV_EMALFORMED);
    assert_int_equal(mv_pgp_keyring_add(k2, 0, k_rsa.data, k_rsa.len, NULL, &err), MV_EUSAGE);
    /* exported without a passphrase, re-added without one */
    mv_buf ex = MV_BUF_INIT;
    assert_int_equal(mv_pgp_export_secret(k_cv_arm.data, k_cv_arm.len, "pw", &ex, &err), MV_OK);
    mv_pgp_info info;
    assert_int_equal(mv_pgp_inspect(ex.data, ex.len, &info, &err), MV_OK);
    assert_true(info.secret);
    assert_false(info.protected_);
    mv_pgp_info_clear(&info);
    assert_int_equal(mv_pgp_keyring_add(k2, 5, ex.data, ex.len, NULL, &err), MV_OK);
    assert_int_equal(mv_pgp_keyring_add(k2, 6, ex.data, ex.len, NULL, &err), MV_EEXIST);
    assert_int_equal(mv_pgp_keyring_add(k2, 5, k_other.data, k_other.len, NULL, &err), MV_EEXIST);
    /* two keys in one blob */
    mv_buf two = MV_BUF_INIT;
    mv_buf_append(&two, k_rsa.data, k_rsa.len);
    mv_buf_append(&two, k_other.data, k_other.len);
    assert_int_equal(mv_pgp_keyring_add(k2, 7, two.data, two.len, NULL, &err), MV_EMALFORMED);
    const char *to[] = {"cv <cv@x>", NULL};
    mv_buf msg = MV_BUF_INIT;
    mime_to(to, NULL, &msg);
    mv_decrypt_result r;
    assert_int_equal(mv_pgp_decrypt(k2, msg.data, msg.len, NULL, &r, &err), MV_OK);
    assert_true(r.decrypted);
    assert_int_equal(r.key_id, 5);
    mv_decrypt_result_free(&r);
    mv_pgp_keyring_free(k2);
    mv_buf_wipe(&ex);
    mv_buf_free(&two);
    mv_buf_free(&msg);
}

static void t_inspect(void **state)
{
    (void)state;
    mv_pgp_info info;
    mv_err err;
    assert_int_equal(mv_pgp_inspect(k_cv_arm.data, k_cv_arm.len, &info, &err), MV_OK);
    assert_int_equal(strlen(info.fingerprint), 40);
    assert_int_equal(info.n_uids, 1);
    assert_string_equal(info.uids[0], "cv <cv@x>");
    assert_int_equal(info.n_subkeys, 1);
    char want[64];
    snprintf(want, sizeof want, "%s ecdh-cv25519 e", cv_sub);
    assert_string_equal(info.subkeys[0], want);
    assert_true(info.created > 1600000000);
    assert_true(info.expires == 0 || info.expires > info.created);
    assert_true(info.secret);
    assert_true(info.protected_);
    mv_pgp_info_clear(&info);
    assert_int_equal(mv_pgp_inspect(k_rsa.data, k_rsa.len, &info, &err), MV_OK);
    assert_non_null(strstr(info.subkeys[0], " rsa2048 e"));
    assert_false(info.protected_);
    mv_pgp_info_clear(&info);
    assert_int_equal(mv_pgp_inspect(p_signer.data, p_signer.len, &info, &err), MV_OK);
    assert_false(info.secret);
    assert_string_equal(info.fingerprint, signer_fpr);
    mv_pgp_info_clear(&info);
    assert_int_equal(mv_pgp_inspect((const uint8_t *)"x", 1, &info, &err), MV_EMALFORMED);
}

/* ---- detection, junk, determinism, threads ------------------------------- */

static void t_detect_and_junk(void **state)
{
    (void)state;
    static const char *const no[] = {
        "",
        "Subject: hi\r\n\r\nplain text\r\n",
        "Content-Type: multipart/encrypted; protocol=\"application/pkcs7-mime\"; "
        "boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
        "Content-Type: text/plain\r\n\r\n  -----BEGIN PGP MESSAGE----- quoted\r\n",
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(mv_pgp_detect((const uint8_t *)no[i], strlen(no[i])));
    static const char *const junk[] = {
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"\r\n\r\nx",
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; "
        "boundary=b\r\n\r\n--b\r\n\r\nVersion: 1\r\n--b--\r\n",
        "Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; "
        "boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b\r\n\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\n"
        "AAAA\r\n-----END PGP SIGNATURE-----\r\n--b--\r\n",
        "\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA\r\n",
        "Subject: x\r\n\r\n-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nx\r\n",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        assert_true(mv_pgp_detect((const uint8_t *)junk[i], strlen(junk[i])));
        mv_decrypt_result r;
        mv_err err;
        assert_int_equal(
            mv_pgp_decrypt(kr, (const uint8_t *)junk[i], strlen(junk[i]), NULL, &r, &err), MV_OK);
        assert_false(r.decrypted);
        assert_null(r.out);
        mv_decrypt_result_free(&r);
    }
    mv_err err;
    mv_decrypt_result r;
    assert_int_equal(mv_pgp_decrypt(NULL, NULL, 0, NULL, &r, &err), MV_EUSAGE);
}

static void t_deterministic(void **state)
{
    (void)state;
    const char *to[] = {"rsa <rsa@x>", "cv <cv@x>", NULL};
    mv_buf msg = MV_BUF_INIT;
    mime_to(to, "Signer <signer@x>", &msg);
    mv_decrypt_result a = run(&msg, NULL), b = run(&msg, NULL);
    assert_true(a.decrypted && b.decrypted);
    assert_int_equal(a.out_len, b.out_len);
    assert_memory_equal(a.out, b.out, a.out_len);
    assert_int_equal(a.key_id, b.key_id);
    mv_decrypt_result_free(&a);
    mv_decrypt_result_free(&b);
    mv_buf_free(&msg);
}

typedef struct tjob {
    const mv_buf *msg;
    int ok;
} tjob;

static void *thread_main(void *arg)
{
    tjob *t = arg;
    t->ok = 1;
    for (int i = 0; i < 5; i++) {
        mv_decrypt_result r;
        mv_err err;
        if (mv_pgp_decrypt(kr, t->msg->data, t->msg->len, NULL, &r, &err) != MV_OK ||
            !r.decrypted || r.sig != MV_SIG_VALID)
            t->ok = 0;
        mv_decrypt_result_free(&r);
    }
    return NULL;
}

static void t_threads(void **state)
{
    (void)state;
    const char *to[] = {"cv <cv@x>", NULL};
    mv_buf msg = MV_BUF_INIT;
    mime_to(to, "Signer <signer@x>", &msg);
    pthread_t th[4];
    tjob tj[4];
    for (int i = 0; i < 4; i++) {
        tj[i].msg = &msg;
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &tj[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(tj[i].ok);
    }
    mv_buf_free(&msg);
}

/* ---- gpg-made fixtures (tests/gen/mvpgp.py) ------------------------------- */

/* Fixture files (written by tests/gen/mvpgp.py, see its header):
 *   keys.tsv      id <TAB> key file <TAB> passphrase or "-"   (id 0: public key)
 *   manifest.tsv  message file <TAB> keyring id or 0 <TAB> sha256 of the
 *                 decrypted form or "-" <TAB> sig status name <TAB> failure
 *                 substring or "-"
 * manifest.json holds the same facts for people and other tools. */
static char *fx_path(const char *dir, const char *name)
{
    return mv_xasprintf("%s/%s", dir, name);
}

static int split_tabs(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *t = strchr(p, '\t');
        if (!t)
            break;
        *t = '\0';
        p = t + 1;
    }
    char *nl = strpbrk(f[n - 1], "\r\n");
    if (nl)
        *nl = '\0';
    return n;
}

static void t_fixtures(void **state)
{
    (void)state;
    const char *dir = getenv("MV_PGP_FIXTURES");
    if (!dir || !*dir)
        return; /* the e2e layer sets it */
    mv_err err;
    mv_pgp_keyring *fk = mv_pgp_keyring_new(&err);
    assert_non_null(fk);
    char *kp = fx_path(dir, "keys.tsv");
    FILE *f = fopen(kp, "r");
    if (!f)
        fail_msg("%s: cannot open", kp);
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *fl[3];
        if (line[0] == '#' || split_tabs(line, fl, 3) != 3)
            continue;
        char *path = fx_path(dir, fl[1]);
        mv_buf key = MV_BUF_INIT;
        if (mv_read_file(path, 1 << 20, &key, &err) != MV_OK)
            fail_msg("%s: %s", path, err.msg);
        uint32_t id = (uint32_t)strtoul(fl[0], NULL, 10);
        mv_status st = id ? mv_pgp_keyring_add(fk, id, key.data, key.len,
                                               strcmp(fl[2], "-") ? fl[2] : NULL, &err)
                          : mv_pgp_keyring_add_public(fk, key.data, key.len, &err);
        if (st != MV_OK)
            fail_msg("%s: %s", path, err.msg);
        mv_buf_wipe(&key);
        free(path);
    }
    fclose(f);
    free(kp);
    char *mp = fx_path(dir, "manifest.tsv");
    f = fopen(mp, "r");
    if (!f)
        fail_msg("%s: cannot open", mp);
    int checked = 0;
    while (fgets(line, sizeof line, f)) {
        char *fl[5];
        if (line[0] == '#' || split_tabs(line, fl, 5) != 5)
            continue;
        char *path = fx_path(dir, fl[0]);
        mv_buf msg = MV_BUF_INIT;
        if (mv_read_file(path, 64 << 20, &msg, &err) != MV_OK)
            fail_msg("%s: %s", path, err.msg);
        mv_decrypt_result r;
        assert_int_equal(mv_pgp_decrypt(fk, msg.data, msg.len, NULL, &r, &err), MV_OK);
        uint32_t want_id = (uint32_t)strtoul(fl[1], NULL, 10);
        if (r.key_id != want_id)
            fail_msg("%s: key %u, want %u (%s)", fl[0], r.key_id, want_id,
                     r.failure ? r.failure : "");
        if (strcmp(fl[2], "-") != 0) {
            if (!r.decrypted)
                fail_msg("%s: not decrypted: %s", fl[0], r.failure ? r.failure : "");
            uint8_t md[32];
            char hex[65];
            EVP_Digest(r.out, r.out_len, md, NULL, EVP_sha256(), NULL);
            mv_hex(md, 32, hex);
            if (strcmp(hex, fl[2]) != 0)
                fail_msg("%s: sha256 %s, want %s", fl[0], hex, fl[2]);
        } else if (r.decrypted) {
            fail_msg("%s: decrypted, but should not be", fl[0]);
        }
        if (strcmp(mv_sig_status_name(r.sig), fl[3]) != 0)
            fail_msg("%s: sig %s, want %s (%s)", fl[0], mv_sig_status_name(r.sig), fl[3],
                     r.sig_detail ? r.sig_detail : "");
        if (strcmp(fl[4], "-") != 0 && (!r.failure || !strstr(r.failure, fl[4])))
            fail_msg("%s: failure \"%s\", want \"%s\"", fl[0], r.failure ? r.failure : "",
                     fl[4]);
        mv_decrypt_result_free(&r);
        mv_buf_free(&msg);
        free(path);
        checked++;
    }
    fclose(f);
    free(mp);
    assert_true(checked > 0);
    print_message("checked %d gpg-made fixtures\n", checked);
    mv_pgp_keyring_free(fk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_rsa),
        cmocka_unit_test(t_cv25519_two_recipients),
        cmocka_unit_test(t_no_key),
        cmocka_unit_test(t_hidden),
        cmocka_unit_test(t_signed_encrypted),
        cmocka_unit_test(t_corrupt),
        cmocka_unit_test(t_limits),
        cmocka_unit_test(t_nested_rfc822),
        cmocka_unit_test(t_mime_signed),
        cmocka_unit_test(t_cleartext),
        cmocka_unit_test(t_inline),
        cmocka_unit_test(t_keyring),
        cmocka_unit_test(t_inspect),
        cmocka_unit_test(t_detect_and_junk),
        cmocka_unit_test(t_deterministic),
        cmocka_unit_test(t_threads),
        cmocka_unit_test(t_fixtures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
