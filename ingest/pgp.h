/* SPDX-License-Identifier: MIT */
/* pgp.h - OpenPGP escrow decryption with librnp: PGP/MIME (RFC 3156) and
 * inline PGP, decrypted with the organisation's escrowed secret keys into
 * the decrypted form of docs/decryption.md ("OpenPGP").
 *
 * Key selection: each decryption runs in a fresh librnp context that starts
 * empty; librnp asks our key provider for exactly the key ids / fingerprints
 * the message names (PKESK recipients, signers) and only those keys are
 * imported.  A hidden recipient (key id 0, `gpg --throw-keyids`) is tried
 * against the escrowed encryption keys one by one, which is sound only
 * because the data is integrity-protected (MDC or AEAD): a message without
 * integrity protection is never decrypted (failure "not integrity
 * protected").
 *
 * Thread safety: librnp's rnp_ffi_t is not thread-safe, so no ffi is ever
 * shared: every call builds its own from the keyring's stored (unprotected)
 * key material and destroys it before returning.  The keyring itself is
 * guarded by a read-write lock: mv_pgp_decrypt may run in many threads at
 * once, also while keys are being added.
 *
 * Secrets: the keyring holds unprotected secret key packets in memory
 * (wiped when freed); callers keep them sealed at rest (mv_pgp_export_secret
 * gives the bytes to seal).  Nothing here logs or prints.
 *
 * LIMITS: mv_decrypt_limits (max_output, max_depth, max_layers) and the
 * constants below.  Every scan is linear in the input per nesting level. */
#ifndef MV_INGEST_PGP_H
#define MV_INGEST_PGP_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"
#include "../lib/err.h"
#include "decrypt.h"

#define MV_PGP_MAX_KEY_BYTES ((size_t)1 << 20) /* one key's material, armored or binary */
#define MV_PGP_MAX_KEYS 4096                   /* escrowed + public keys in one keyring */
#define MV_PGP_MAX_BLOCKS 32                   /* encrypted / signed entities and inline
                                                  blocks handled in one message */
#define MV_PGP_MAX_TRIALS 64 /* decryption attempts per encrypted block: key-id
                                collisions and hidden-recipient trials */
#define MV_PGP_MAX_RECIPIENTS 256  /* recipients recorded per message */
#define MV_PGP_MAX_HEADER_BYTES ((size_t)1 << 20) /* one MIME header block */
#define MV_PGP_MAX_PARTS 10000                    /* MIME parts walked */

/* ---- keyring ------------------------------------------------------------ */

typedef struct mv_pgp_keyring mv_pgp_keyring;

/* mv_pgp_keyring_new - an empty keyring; free with mv_pgp_keyring_free.
 * Returns NULL only when the lock cannot be made (err says why). */
mv_pgp_keyring *mv_pgp_keyring_new(mv_err *err);
/* mv_pgp_keyring_free - wipe and free the key material; NULL is fine.
 * Must not race with any other call on kr. */
void mv_pgp_keyring_free(mv_pgp_keyring *kr);

/* mv_pgp_keyring_add - add one escrowed secret key (a transferable secret
 * key: primary key with its subkeys, binary or armored; key[0..n) is
 * borrowed).  Every protected secret (sub)key is unlocked with passphrase
 * (NULL: none) now, so decryption never needs a passphrase; stub keys
 * without secret material (gpg --export-secret-subkeys) are allowed.
 * id is the archive's keyring number, reported as mv_decrypt_result.key_id
 * (it must not be 0).  The public parts also verify signatures.
 * @retval MV_OK
 * @retval MV_EUSAGE     id 0, n 0 or over MV_PGP_MAX_KEY_BYTES, keyring full
 * @retval MV_EMALFORMED not an OpenPGP key, more than one primary key, or
 *                       no secret key material at all
 * @retval MV_ENOKEY     wrong or missing passphrase ("wrong passphrase for
 *                       key <fingerprint>")
 * @retval MV_EEXIST     a key with this fingerprint or this id is already in
 * @retval MV_ECRYPTO    librnp failed otherwise */
MV_NODISCARD mv_status mv_pgp_keyring_add(mv_pgp_keyring *kr, uint32_t id, const uint8_t *key,
                                          size_t n, const char *passphrase, mv_err *err);

/* mv_pgp_keyring_add_public - add public keys (one or more transferable
 * public keys, binary or armored; borrowed) used only to verify signatures.
 * Secret material in the input is ignored.
 * @retval MV_OK  @retval MV_EUSAGE (size, full)  @retval MV_EMALFORMED */
MV_NODISCARD mv_status mv_pgp_keyring_add_public(mv_pgp_keyring *kr, const uint8_t *key, size_t n,
                                                 mv_err *err);

/* mv_pgp_keyring_count - escrowed secret keys in kr. */
size_t mv_pgp_keyring_count(const mv_pgp_keyring *kr);

/* ---- key material ------------------------------------------------------- */

/* What `keys escrow list/add` shows about key material.  All strings are
 * malloc'd and owned by the struct (mv_pgp_info_clear frees them).
 * Fingerprints and key ids are upper-case hex, as OpenPGP tools print them.
 *   subkeys[i]: "<16 hex key id> <alg> <usage>", alg as in key_alg below
 *     ("rsa3072", "ecdh-cv25519", "eddsa-ed25519" ...), usage from the
 *     letters s c e a ("e" = encryption), e.g. "0123456789ABCDEF ecdh-cv25519 e"
 *   created: primary key creation (seconds since the epoch);
 *   expires: primary key expiry, 0 when it never expires;
 *   secret: secret material present for at least one key;
 *   protected_: at least one secret key is passphrase-protected. */
typedef struct mv_pgp_info {
    char *fingerprint;
    char **uids;
    size_t n_uids;
    char **subkeys;
    size_t n_subkeys;
    int64_t created, expires;
    int secret;
    int protected_;
} mv_pgp_info;

/* mv_pgp_inspect - describe the one transferable key in key[0..n)
 * (public or secret, binary or armored).  On MV_OK *info is filled (clear it
 * with mv_pgp_info_clear); on error it is left zeroed.
 * @retval MV_OK @retval MV_EUSAGE (size) @retval MV_EMALFORMED (not a key,
 * several primary keys) */
MV_NODISCARD mv_status mv_pgp_inspect(const uint8_t *key, size_t n, mv_pgp_info *info,
                                      mv_err *err);
void mv_pgp_info_clear(mv_pgp_info *i);

/* mv_pgp_export_secret - the key in key[0..n) with every secret key
 * unlocked (passphrase may be NULL), as binary packets appended to out:
 * what the archive seals under its own KEK and later gives back to
 * mv_pgp_keyring_add without a passphrase.  out holds secrets: wipe it
 * (mv_buf_wipe).  Errors as mv_pgp_keyring_add. */
MV_NODISCARD mv_status mv_pgp_export_secret(const uint8_t *key, size_t n, const char *passphrase,
                                            mv_buf *out, mv_err *err);

/* ---- messages ----------------------------------------------------------- */

/* mv_pgp_detect - 1 when msg[0..n) looks like OpenPGP mail: a
 * multipart/encrypted (application/pgp-encrypted) or multipart/signed
 * (application/pgp-signature) entity within the default depth, or a
 * text/plain part (after its transfer decoding) with a line starting
 * "-----BEGIN PGP MESSAGE-----" / "-----BEGIN PGP SIGNED MESSAGE-----".
 * Decrypts nothing; mv_pgp_decrypt decides.  Pure, thread-safe. */
int mv_pgp_detect(const uint8_t *msg, size_t n);

/* mv_pgp_load - load librnp now (every other function here but detection
 * loads it at its first use).
 * @retval MV_OK      librnp is usable
 * @retval MV_ECRYPTO it cannot be loaded (the message names the Debian
 *                    package, librnp0) */
MV_NODISCARD mv_status mv_pgp_load(mv_err *err);

/* mv_pgp_decrypt - find the OpenPGP entities of msg[0..n) (borrowed) and
 * decrypt / verify them with kr; lim NULL means the defaults.
 * The result r (zeroed by this call first; free with
 * mv_decrypt_result_free) always says what was found, also for mail that
 * cannot be decrypted:
 *   encrypted  an encrypted entity or block was found;
 *   decrypted  all of them were decrypted: out/out_len hold the decrypted
 *              form (docs/decryption.md, "OpenPGP"); else out is NULL and
 *              failure says why (the first reason);
 *   scheme     "pgp-mime" or "pgp-inline" (of the first entity found);
 *   key_id     the keyring number of the key that opened the first block;
 *   recipients "pgp=<16 upper-case hex key id>" of every PKESK, in order,
 *              duplicates dropped ("pgp=0000000000000000" = hidden);
 *   key_alg    "rsa", "ecdh-cv25519", "ecdh-p256", "elgamal" ...;
 *   content_alg "aes-256", "aes-128", ... ("-ocb"/"-eax" added for AEAD);
 *   sig ...    the signature inside (sign+encrypt), a PGP/MIME signed part
 *              or a cleartext signature: VALID when it verifies with a key
 *              known to kr (OpenPGP has no trust anchors here), INVALID,
 *              UNKNOWN_SIGNER or ERROR; with several, an INVALID one wins,
 *              else the first.  signer = "fpr=<40 hex>;uid=<primary user
 *              id>" or "keyid=<16 hex>" when the key is unknown.
 *   defects    MV_DDEF_LIMIT (max_output, max_depth, max_layers or a
 *              constant above), MV_DDEF_MALFORMED, MV_DDEF_UNSUPPORTED.
 * max_output bounds both the plaintext librnp may write (checked while it
 * writes) and the whole decrypted form; max_depth above 100 counts as 100.
 * Message bytes never make this fail.
 * @retval MV_OK       always for any message bytes
 * @retval MV_EUSAGE   kr, r or (msg with n > 0) NULL */
MV_NODISCARD mv_status mv_pgp_decrypt(const mv_pgp_keyring *kr, const uint8_t *msg, size_t n,
                                      const mv_decrypt_limits *lim, mv_decrypt_result *r,
                                      mv_err *err);

#endif
