/* SPDX-License-Identifier: MIT */
/* escrow.h - the organisation's escrowed keys, in memory, and the one
 * entry point that decrypts a message with them.
 *
 * The keys live in the store (store.h: mv_store_escrow_*, sealed under
 * their own KEK).  Only this module turns them into usable private keys:
 * mv_escrow_load reads every one into the S/MIME (ingest/smime.h) and
 * OpenPGP (ingest/pgp.h) keyrings; mv_escrow_decrypt picks the front end
 * by what the message is.  Material is wiped as soon as it is loaded.
 *
 * Stored material (one definition, docs/decryption.md):
 *   kind "x509":    lp(PKCS#8 private key DER) lp(certificate DER)
 *   kind "openpgp": the transferable secret key, unlocked, binary packets
 *   kind "anchors": a PEM bundle of S/MIME trust anchors (public)
 *   kind "openpgp-public": an OpenPGP public key, to verify signatures
 * (lp = u32 big-endian length, then the bytes).
 *
 * Threads: mv_escrow_decrypt may run in many threads on one mv_escrow. */
#ifndef MV_INGEST_ESCROW_H
#define MV_INGEST_ESCROW_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"
#include "../lib/err.h"
#include "../store/store.h"
#include "decrypt.h"

typedef struct mv_escrow mv_escrow;

/* mv_escrow_load - every escrowed key of the archive.  A key that no
 * longer loads is an error naming it (it would silently stop decrypting).
 * @retval MV_EMALFORMED / MV_ECRYPTO a stored key does not load */
MV_NODISCARD mv_status mv_escrow_load(mv_store *s, mv_escrow **out, mv_err *err);
void mv_escrow_free(mv_escrow *e);
size_t mv_escrow_count(const mv_escrow *e);

/* mv_escrow_detect - 1 when the message is S/MIME or OpenPGP (encrypted
 * or signed), anywhere mv_escrow_decrypt would look. */
int mv_escrow_detect(const uint8_t *msg, size_t n);

/* mv_escrow_decrypt - r describes what was found (r->encrypted 0: neither
 * encrypted nor signed).  An undecryptable message is a result (failure
 * set), not an error.  r is freed with mv_decrypt_result_free. */
MV_NODISCARD mv_status mv_escrow_decrypt(const mv_escrow *e, const uint8_t *msg, size_t n,
                                         const mv_decrypt_limits *lim, mv_decrypt_result *r,
                                         mv_err *err);

/* mv_escrow_prepare - what an administrator hands over (PKCS#12, PEM key +
 * certificate, or an OpenPGP secret key, armored or binary; p2 an optional
 * second file such as the certificate) -> kind, a one-line description
 * (subject, issuer, serial, SKI, fingerprints, validity) and the material
 * to store.  *kind and *desc malloc'd; material holds secrets (wipe it).
 * @retval MV_ENOKEY     wrong password / passphrase
 * @retval MV_EMALFORMED not a key this archive understands */
MV_NODISCARD mv_status mv_escrow_prepare(const uint8_t *p, size_t n, const uint8_t *p2, size_t n2,
                                         const char *password, char **kind, char **desc,
                                         mv_buf *material, mv_err *err);

/* mv_escrow_prepare_anchors - what signatures are checked against: a PEM
 * bundle of S/MIME trust anchors (kind "anchors"; the latest stored set is
 * the one used) or an OpenPGP public key (kind "openpgp-public").
 * @retval MV_EMALFORMED neither */
MV_NODISCARD mv_status mv_escrow_prepare_anchors(const uint8_t *p, size_t n, char **kind,
                                                 char **desc, mv_buf *material, mv_err *err);

#endif
