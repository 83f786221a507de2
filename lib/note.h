/* SPDX-License-Identifier: MIT */
/* note.h - C2SP signed notes (https://c2sp.org/signed-note) carrying
 * transparency-log checkpoints (https://c2sp.org/tlog-checkpoint): the
 * text form in which the archive publishes its signed tree heads, so that
 * auditors and witnesses can check them with standard tools.
 *
 *     <origin>\n<size, decimal>\n<base64 root>\n[<extension line>\n]...
 *     \n
 *     — <key name> <base64(4-byte key id || signature)>\n   (one or more)
 *
 * The dash is U+2014 EM DASH.  Only Ed25519 keys (signature type 0x01) are
 * verified; other signature lines are tolerated and ignored, as the spec
 * requires (witness cosignatures, key rotation).  Signing needs a private
 * key and so happens in store/keys; this module only formats the text to
 * sign, adds the signature line, and parses and verifies.
 *
 * Notes arrive from outside (an auditor's copy, a witness): parsing is
 * bounded by the limits below and never trusts the input.  Thread-safe. */
#ifndef MV_LIB_NOTE_H
#define MV_LIB_NOTE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* Limits.  A checkpoint with a few witness cosignatures is well under a
 * kilobyte; 64 KiB leaves room for post-quantum signatures (~5 kB each). */
#define MV_NOTE_MAX_BYTES 65536u      /* whole note */
#define MV_NOTE_MAX_SIGS 100u         /* signature lines (the spec asks for at least 16) */
#define MV_NOTE_MAX_EXT 100u          /* checkpoint extension lines */
#define MV_CHECKPOINT_ORIGIN_MAX 255u /* bytes of origin, as mv_checkpoint.origin holds it */

#define MV_NOTE_ED25519 0x01 /* signature type byte of Ed25519 in key ids */

typedef struct mv_checkpoint {
    char origin[256]; /* non-empty, NUL-terminated, no newline */
    uint64_t size;    /* leaves in the tree */
    uint8_t root[32]; /* RFC 6962 root at that size */
    char **ext;       /* extension lines without their \n, owned (mv_checkpoint_clear) */
    size_t n_ext;
} mv_checkpoint;

/* mv_checkpoint_body - append the note text of c to out: the bytes that are
 * signed.  c->origin and every ext line must be non-empty and hold no
 * newline (a bug otherwise: aborts rather than sign an unparseable note). */
void mv_checkpoint_body(const mv_checkpoint *c, mv_buf *out);

/* mv_note_key_id - the key id of an Ed25519 key: the first 4 bytes of
 * SHA-256(name || "\n" || 0x01 || pub). */
void mv_note_key_id(const char *name, const uint8_t pub[32], uint8_t id[4]);

/* mv_note_add_signature - append a signature line by (name, pub) to note,
 * which holds note text (e.g. from mv_checkpoint_body) or an already signed
 * note.  The separating blank line is appended first unless note already
 * ends in a signature block, so several signatures can be added in turn.
 * sig is the 64-byte Ed25519 signature of the note text.  name must be a
 * valid key name (non-empty, no spaces, no '+': aborts otherwise). */
void mv_note_add_signature(mv_buf *note, const char *name, const uint8_t pub[32],
                           const uint8_t sig[64]);

/* mv_note_verify - check the signed note p[0..n) as a whole and that it
 * carries a valid Ed25519 signature by (name, pub); *text_len receives the
 * length of the note text (the signed prefix of p, final newline included).
 * A signature line naming `name` with the key id of pub that does not verify
 * rejects the note; lines of other keys are ignored.
 * @retval MV_EUSAGE      name is not a valid key name
 * @retval MV_EMALFORMED  not a signed note: not UTF-8, a control character
 *                        other than \n (CR included), no final newline, no
 *                        blank line before the signatures, a bad signature line
 * @retval MV_ELIMIT      more than MV_NOTE_MAX_BYTES or MV_NOTE_MAX_SIGS
 * @retval MV_ECRYPTO     no signature by the key, or one that does not verify */
MV_NODISCARD mv_status mv_note_verify(const uint8_t *p, size_t n, const char *name,
                                      const uint8_t pub[32], size_t *text_len, mv_err *err);

/* mv_checkpoint_parse_body - parse checkpoint note text (no signatures)
 * into *out, which is overwritten (not freed first); on failure *out is
 * zeroed.  Strict: size in canonical decimal (no sign, no leading zero,
 * no overflow), root exactly 32 bytes in canonical padded base64, no empty
 * line, every line ended by \n.
 * @retval MV_EMALFORMED  not a checkpoint body
 * @retval MV_ELIMIT      origin longer than MV_CHECKPOINT_ORIGIN_MAX, more
 *                        than MV_NOTE_MAX_EXT extension lines, or more than
 *                        MV_NOTE_MAX_BYTES */
MV_NODISCARD mv_status mv_checkpoint_parse_body(const uint8_t *p, size_t n, mv_checkpoint *out,
                                                mv_err *err);

/* mv_note_parse_checkpoint - parse a whole signed checkpoint and check that
 * a valid signature by (name, pub) is present (mv_note_verify, then
 * mv_checkpoint_parse_body on its text).  The key name is not required to
 * equal the origin (the spec only recommends it); compare if you need it.
 * *out is overwritten; it is filled only on MV_OK (zeroed otherwise), and
 * then owns its ext lines.  Syntax is checked before the signature.
 * @retval MV_EMALFORMED / MV_ELIMIT / MV_EUSAGE  as the two functions above
 * @retval MV_ECRYPTO     the note is well formed but not signed by (name, pub) */
MV_NODISCARD mv_status mv_note_parse_checkpoint(const uint8_t *p, size_t n, const char *name,
                                                const uint8_t pub[32], mv_checkpoint *out,
                                                mv_err *err);

/* mv_checkpoint_clear - free the ext lines and zero *c (NULL ok; a zeroed
 * checkpoint ok; may be called twice). */
void mv_checkpoint_clear(mv_checkpoint *c);

#endif
