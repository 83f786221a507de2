/* SPDX-License-Identifier: MIT */
/* smime.h - S/MIME escrow decryption: find the CMS entity in one message,
 * pick the escrowed key by the recipient identifiers it names, decrypt,
 * verify the signatures found on the way, and build the decrypted form
 * (docs/decryption.md; STANDARDS.md section 3).
 *
 * Pure library code: no I/O except mv_smime_keyring_set_anchors (reads one
 * file), no logging, no global state.  OpenSSL CMS does the cryptography;
 * the MIME structure is scanned here over raw bytes, because the decrypted
 * form is defined byte for byte on the original message.
 *
 * Key choice never relies on trial decryption: an RSA PKCS#1 v1.5
 * RecipientInfo opened with a wrong key can "succeed" and yield garbage
 * (OpenSSL's MMA countermeasure), so only a keyring entry whose certificate
 * matches a RecipientInfo's issuer+serial or subject key identifier is ever
 * used, and only on that RecipientInfo.
 *
 * Hostile input is the normal case: every scan is bounded by the limits
 * below or by mv_decrypt_limits; damage is a result (failure text and
 * MV_DDEF_* defects), never a crash. */
#ifndef MV_INGEST_SMIME_H
#define MV_INGEST_SMIME_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"
#include "../lib/err.h"
#include "decrypt.h"

/* Fixed bounds of the MIME scan (the configurable ones are in
 * mv_decrypt_limits).  Past them the scan stops and MV_DDEF_LIMIT is set. */
#define MV_SMIME_MAX_HEADER_BYTES ((size_t)1 << 20) /* one entity's header block */
#define MV_SMIME_MAX_PARTS 10000u                   /* body parts visited per message */
#define MV_SMIME_MAX_BOUNDARY 200u                  /* RFC 2046 says 70; some senders exceed it */
#define MV_SMIME_MAX_RECIPIENTS 1000u               /* RecipientInfos (kari keys) examined */
#define MV_SMIME_MAX_PEM_CERTS 64u                  /* certificates read from one PEM import */
/* S/MIME entities unwrapped per message, nested ones included; past it
 * nothing more is done and there is no decrypted form. */
#define MV_SMIME_MAX_ENTITIES 100u

/* ---- keyring ------------------------------------------------------------- */

typedef struct mv_smime_keyring mv_smime_keyring;

/* mv_smime_keyring_new - an empty keyring (never NULL: allocation aborts).
 * Thread safety: built by one thread; once fully set up it is read-only and
 * mv_smime_decrypt may use it from any number of threads at once. */
mv_smime_keyring *mv_smime_keyring_new(void);
/* mv_smime_keyring_free - release the keys (OpenSSL wipes key memory on
 * free) and certificates.  NULL ok. */
void mv_smime_keyring_free(mv_smime_keyring *kr);

/* mv_smime_keyring_add - add one escrowed key.  key_der: the private key,
 * DER PKCS#8 or traditional (RSA / EC); cert_der: its certificate, DER.
 * id is the archive's keyring number (non-zero), reported in
 * mv_decrypt_result.key_id.  Both buffers are borrowed (copied into
 * OpenSSL objects); the caller wipes key_der.
 * @retval MV_OK
 * @retval MV_EUSAGE     id 0, or an id already present
 * @retval MV_EMALFORMED key or certificate does not parse
 * @retval MV_ENOKEY     the key does not belong to the certificate */
MV_NODISCARD mv_status mv_smime_keyring_add(mv_smime_keyring *kr, uint32_t id,
                                            const uint8_t *key_der, size_t key_len,
                                            const uint8_t *cert_der, size_t cert_len,
                                            mv_err *err);
/* mv_smime_keyring_set_anchors - trust anchors (a PEM bundle of CA
 * certificates) for signature verification; replaces earlier anchors.
 * Without anchors a signature that verifies is MV_SIG_VALID_UNTRUSTED.
 * @retval MV_OK
 * @retval MV_EIO        the file cannot be read
 * @retval MV_EMALFORMED no certificate in it */
MV_NODISCARD mv_status mv_smime_keyring_set_anchors(mv_smime_keyring *kr, const char *pem_path,
                                                    mv_err *err);
/* mv_smime_keyring_count - number of keys. */
size_t mv_smime_keyring_count(const mv_smime_keyring *kr);
/* mv_smime_keyring_set_anchors_pem - the same from PEM bytes in memory
 * (as the archive stores them); *count (may be NULL) gets the number of
 * certificates. */
MV_NODISCARD mv_status mv_smime_keyring_set_anchors_pem(mv_smime_keyring *kr, const uint8_t *pem,
                                                        size_t n, unsigned *count, mv_err *err);

/* ---- importing escrow keys ------------------------------------------------- */

/* What a certificate says, for listings and audit records.  All strings
 * malloc'd, owned by the struct (mv_x509_info_clear frees them).
 * subject, issuer: RFC 2253 (non-ASCII escaped, so plain ASCII);
 * serial_hex: lower-case hex of the serial's magnitude ("-" first if
 * negative); ski_hex: the subjectKeyIdentifier extension in lower-case hex,
 * NULL when the certificate has none (never synthesised);
 * sha256_fpr: lower-case hex SHA-256 of the certificate DER;
 * not_before/not_after: seconds since the epoch;
 * key_alg: "rsa-2048", "ec-p256", "ec-p384", "ec-p521", or the OpenSSL
 * key type name in lower case. */
typedef struct mv_x509_info {
    char *subject, *issuer, *serial_hex, *ski_hex, *sha256_fpr;
    int64_t not_before, not_after;
    char *key_alg;
} mv_x509_info;

/* mv_smime_import - turn what an administrator hands over into what
 * mv_smime_keyring_add takes.  Accepted:
 *   - p = a PKCS#12 file (DER), p2 unused; password may be NULL or ""
 *     (both are tried).  Legacy bags (RC2-40, as Windows / AD CS exports
 *     write) need OpenSSL 3's legacy provider: it is loaded into a private
 *     library context made the calling thread's default for this call only.
 *   - p (and optionally p2) = PEM holding the private key (plain, or
 *     encrypted with password) and its certificate, in one buffer or split
 *     across the two; other certificates (a chain) are ignored.
 * Out: key_der gets the private key as unencrypted PKCS#8 DER (appended;
 * secret: the caller wipes it with mv_buf_wipe), cert_der the certificate
 * DER (appended), info (may be NULL) what the certificate says.
 * @retval MV_OK
 * @retval MV_ENOKEY     wrong password, no private key, or no certificate
 *                       matching the key
 * @retval MV_EMALFORMED neither PKCS#12 nor PEM, or does not parse
 * @retval MV_ECRYPTO    an OpenSSL failure (unsupported algorithm ...) */
MV_NODISCARD mv_status mv_smime_import(const uint8_t *p, size_t n, const uint8_t *p2, size_t n2,
                                       const char *password, mv_buf *key_der, mv_buf *cert_der,
                                       mv_x509_info *info, mv_err *err);
/* mv_smime_cert_info - what a DER certificate says (info owned by the caller).
 * @retval MV_OK
 * @retval MV_EMALFORMED not a certificate */
MV_NODISCARD mv_status mv_smime_cert_info(const uint8_t *cert_der, size_t n, mv_x509_info *info,
                                          mv_err *err);
/* mv_x509_info_clear - free the strings and zero *i (NULL ok). */
void mv_x509_info_clear(mv_x509_info *i);

/* ---- messages ------------------------------------------------------------ */

#define MV_SMIME_DETECT_ENCRYPTED 1 /* an application/pkcs7-mime or smime.p7m entity */
#define MV_SMIME_DETECT_SIGNED 2    /* multipart/signed with a pkcs7-signature */

/* mv_smime_detect - a cheap scan of the MIME structure (no base64, no
 * crypto): is there any S/MIME entity at top level or inside multipart
 * and message/rfc822 parts (default depth)?  The scan stops at the first
 * one and names its kind: MV_SMIME_DETECT_ENCRYPTED for
 * application/(x-)pkcs7-mime (any smime-type: opaque signed-data is only
 * told apart by decoding) or an smime.p7m attachment,
 * MV_SMIME_DETECT_SIGNED for multipart/signed with a pkcs7 signature; 0
 * when there is none.  Pure; thread-safe. */
int mv_smime_detect(const uint8_t *msg, size_t n);

/* mv_smime_thread_end - release what this thread holds in the private
 * OpenSSL context used for legacy ciphers (its per-thread random
 * generators): OpenSSL frees a thread's state at its exit for the default
 * context only.  Threads that decrypt call it before they end; harmless
 * in a thread that never decrypted. */
void mv_smime_thread_end(void);

/* mv_smime_decrypt - decrypt msg[0..n) with the keyring (lim NULL means
 * mv_decrypt_limits_default).  *r is overwritten (no need to initialise)
 * and owned by the caller (mv_decrypt_result_free).  Every message gets a
 * result: not S/MIME (encrypted 0), decrypted (out = the decrypted form),
 * or not decrypted (failure = the reason, recipients = what it was
 * encrypted to).  Every S/MIME entity of the message is unwrapped, those
 * inside unwrapped content too; the form exists only when every
 * encrypted one was opened (docs/decryption.md, "Several entities", says
 * how the result fields combine).  Signatures met on the way are verified
 * and reported, never enforced.  r->out is plaintext: hand it on and
 * wipe it.
 * Thread-safe on a shared, set-up keyring.
 * @retval MV_OK        for every input, even garbage (see r); an OpenSSL
 *                      allocation failure is a result too ("out of memory")
 * @retval MV_EUSAGE    kr NULL, or msg NULL with n > 0 (r is empty) */
MV_NODISCARD mv_status mv_smime_decrypt(const mv_smime_keyring *kr, const uint8_t *msg, size_t n,
                                        const mv_decrypt_limits *lim, mv_decrypt_result *r,
                                        mv_err *err);

#endif
