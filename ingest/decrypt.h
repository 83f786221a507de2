/* SPDX-License-Identifier: MIT */
/* decrypt.h - what escrow decryption produces, shared by the S/MIME
 * (ingest/smime.h) and OpenPGP (ingest/pgp.h) front ends and the
 * pipeline.
 *
 * A front end looks at one message, finds its encrypted entity (or
 * entities), picks the escrowed key by the recipient identifiers in the
 * ciphertext - never by trying keys where a wrong key could "succeed" -
 * and builds the decrypted form (docs/decryption.md defines it exactly:
 * its SHA-256 is evidence).  A message that cannot be decrypted still
 * gets a result: the reason and the identifiers it was encrypted to.
 *
 * Ownership: every pointer in mv_decrypt_result is owned by it and freed
 * by mv_decrypt_result_free.  The decrypted bytes are plaintext: callers
 * hand them to the store (which seals them) and wipe them. */
#ifndef MV_INGEST_DECRYPT_H
#define MV_INGEST_DECRYPT_H

#include <stddef.h>
#include <stdint.h>

typedef struct mv_decrypt_limits {
    size_t max_output;   /* decrypted bytes at most; default 256 MiB */
    unsigned max_depth;  /* MIME nesting searched (message/rfc822 included); default 8 */
    unsigned max_layers; /* encrypt/sign layers unwrapped (sign-then-encrypt ...); default 4 */
} mv_decrypt_limits;
void mv_decrypt_limits_default(mv_decrypt_limits *l);

typedef enum mv_sig_status {
    MV_SIG_NONE = 0,       /* not signed */
    MV_SIG_VALID,          /* signature verifies and the signer chains to a trust anchor */
    MV_SIG_VALID_UNTRUSTED,/* the signature verifies; the signer is not trusted (no anchor) */
    MV_SIG_INVALID,        /* the signature does not verify (tampered, wrong digest ...) */
    MV_SIG_UNKNOWN_SIGNER, /* no certificate / public key for the signer */
    MV_SIG_ERROR,          /* could not be checked (malformed, unsupported algorithm) */
} mv_sig_status;
const char *mv_sig_status_name(mv_sig_status s); /* "none", "valid", "valid-untrusted", ... */

typedef struct mv_decrypt_result {
    int encrypted;          /* an encrypted entity was found */
    int decrypted;          /* ... and decrypted: out holds the decrypted form */
    char *scheme;           /* "smime-enveloped", "smime-authenveloped", "pgp-mime", "pgp-inline" */
    char *content_alg;      /* "aes-256-gcm", "aes-128-cbc", "aes-256" (OpenPGP) ... */
    char *key_alg;          /* "rsa-pkcs1", "rsa-oaep", "ecdh-p256", "ecdh-p384", "x25519", ... */
    uint32_t key_id;        /* the escrow key that opened it (keyring number), 0 if none */
    char **recipients;      /* what it was encrypted to, in order:
                             *   "issuer=<RFC 2253 DN>;serial=<hex>", "ski=<hex>", "pgp=<16 hex>"
                             *   ("pgp=0000000000000000" for a hidden recipient) */
    size_t n_recipients;
    char *failure;          /* why it was not decrypted (NULL when decrypted or not encrypted) */
    uint8_t *out;           /* the decrypted form, malloc'd */
    size_t out_len;
    /* the signature found inside (after decryption) or on the message */
    mv_sig_status sig;
    char *signer;           /* subject DN / OpenPGP user id and fingerprint, or NULL */
    int64_t signing_time;   /* seconds since the epoch, or INT64_MIN */
    char *sig_detail;       /* the verifier's reason (invalid / error), or NULL */
    uint32_t defects;       /* MV_DDEF_* */
} mv_decrypt_result;

#define MV_DDEF_LIMIT (1u << 0)      /* a size/depth/layer limit stopped the work */
#define MV_DDEF_MALFORMED (1u << 1)  /* the encrypted or signed structure does not parse */
#define MV_DDEF_UNSUPPORTED (1u << 2)/* an algorithm or form we do not handle */

void mv_decrypt_result_free(mv_decrypt_result *r);

/* mv_decryption_from_result - the store's record (store.h) viewing r's
 * fields: borrowed, valid while r lives; the store computes size and
 * digests itself. */
struct mv_decryption;
void mv_decryption_from_result(struct mv_decryption *d, const mv_decrypt_result *r);

#endif
