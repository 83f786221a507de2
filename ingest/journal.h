/* SPDX-License-Identifier: MIT */
/* journal.h - envelope facts that a journaling source hands us: Exchange /
 * Microsoft 365 journal reports, Postfix sub-address BCC recipients and
 * Google's X-Gm-Original-To header (STANDARDS.md section 1, docs/journal.md).
 *
 * Everything here is a pure function over bytes: no I/O, no logging, no
 * global state; safe to call from several threads at once.  Whether the
 * facts are believed is the caller's decision, made from the source kind of
 * the listener or client (DESIGN.md section 4): these parsers will happily
 * read a forged report, so never call them for a source whose kind does not
 * produce that input.
 *
 * Hostile input is the normal case: every scan is bounded by the limits
 * below (or the named constants), nothing recurses deeper than max_depth,
 * and damage is reported as defect bits, never as a crash. */
#ifndef MV_INGEST_JOURNAL_H
#define MV_INGEST_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

/* ---- source kinds ------------------------------------------------------ */

typedef enum mv_source_kind {
    MV_SRC_PLAIN = 0,        /* ordinary mail: only RCPT TO is envelope */
    MV_SRC_EXCHANGE_JOURNAL, /* journal reports are unwrapped and believed */
    MV_SRC_POSTFIX_BCC,      /* archive+user=domain@ recipients are decoded */
    MV_SRC_GOOGLE_ROUTING    /* X-Gm-Original-To is believed */
} mv_source_kind;

/* mv_source_kind_name - "plain", "exchange-journal", "postfix-bcc",
 * "google-routing"; "unknown" for a value outside the enum.  Static. */
const char *mv_source_kind_name(mv_source_kind k);
/* mv_source_kind_parse - the inverse (exact, lower case).
 * Returns 0 and sets *out, or -1 for an unknown name (*out untouched). */
int mv_source_kind_parse(const char *s, mv_source_kind *out);

/* ---- envelope recipients ----------------------------------------------- */

typedef enum mv_rcpt_role {
    MV_ROLE_RCPT = 0,   /* SMTP RCPT TO as sent */
    MV_ROLE_TO,
    MV_ROLE_CC,
    MV_ROLE_BCC,
    MV_ROLE_RECIPIENT,  /* journal "Recipient:" (To/Cc/Bcc not known) */
    MV_ROLE_DECODED,    /* Postfix sub-address */
    MV_ROLE_ORIGINAL_TO /* X-Gm-Original-To */
} mv_rcpt_role;

/* One envelope recipient.  Strings are malloc'd and owned by the struct
 * (mv_env_rcpt_clear frees them).  addr is never NULL in a parsed value.
 * No string holds '<', '>', a control byte (< 0x20, 0x7f) or is empty,
 * and the parsers below only produce UTF-8:
 * the parsers drop (and flag) anything else, which is what makes the text
 * form below unambiguous. */
typedef struct mv_env_rcpt {
    mv_rcpt_role role;
    char *addr;
    char *expanded;  /* DL it came from, or NULL */
    char *forwarded; /* user who forwarded, or NULL */
} mv_env_rcpt;

/* The one text form of an envelope recipient kept in the archive (copy
 * records store strings):
 *   ROLE " <" ADDR ">" [" expanded <" DL ">"] [" forwarded <" USER ">"]
 * ROLE = rcpt|to|cc|bcc|recipient|decoded|original-to.
 * e.g. "bcc <bob@x.example> expanded <sales@x.example>".
 *
 * mv_env_rcpt_format - the text form, malloc'd (caller frees); NULL when r
 * cannot be written (unknown role, addr NULL or empty, or a field holding
 * a byte the form cannot carry, see above).
 * mv_env_rcpt_parse - its exact inverse: 0 and *out filled (owned by the
 * caller, release with mv_env_rcpt_clear), or -1 for anything else (then
 * *out is all NULL / MV_ROLE_RCPT). */
char *mv_env_rcpt_format(const mv_env_rcpt *r);
int mv_env_rcpt_parse(const char *s, mv_env_rcpt *out);
/* mv_env_rcpt_clear - free the strings and zero *r (NULL ok). */
void mv_env_rcpt_clear(mv_env_rcpt *r);
/* mv_rcpt_role_name - the ROLE word above; NULL for an unknown value. */
const char *mv_rcpt_role_name(mv_rcpt_role role);

/* ---- journal reports --------------------------------------------------- */

/* A field left 0 means its default. */
typedef struct mv_journal_limits {
    size_t max_rcpt;         /* recipient lines kept, default 100000 (huge DLs are real) */
    size_t max_body_bytes;   /* report text decoded at most, default 16 MiB */
    unsigned max_depth;      /* MIME nesting searched (top level = 0), default 8 */
    unsigned max_parts;      /* MIME parts examined in all, default 10000 */
    size_t max_header_bytes; /* one header block (report or part), default 1 MiB */
    size_t max_addr_bytes;   /* one address, default 2048 (longer: dropped, bad-body) */
} mv_journal_limits;

void mv_journal_limits_default(mv_journal_limits *l);

/* Defects: recorded with the copy, never a reason to refuse the mail. */
#define MV_JDEF_NO_ORIGINAL (1u << 0)     /* no message/rfc822 (or message/global) part found */
#define MV_JDEF_TNEF (1u << 1)            /* the original came as application/ms-tnef */
#define MV_JDEF_BAD_BODY (1u << 2)        /* report text missing or unparseable lines (kept going) */
#define MV_JDEF_TRUNCATED (1u << 3)       /* a limit cut the recipient list */
#define MV_JDEF_BAD_ENCODING (1u << 4)    /* broken base64/QP/charset in the report text or the original */
#define MV_JDEF_NO_END_BOUNDARY (1u << 5) /* the original's part ran to the end of the input */
#define MV_JDEF_LIMIT (1u << 6)           /* MIME depth, part count or header size stopped the search */

/* mv_journal_defects_str - comma-separated names of the bits
 * ("journal-no-original,journal-tnef"), in bit order: journal-no-original,
 * journal-tnef, journal-bad-body, journal-truncated, journal-bad-encoding,
 * journal-no-end-boundary, journal-limit; unknown bits as "journal-bitN".
 * Written into out (always NUL-terminated, cut at n-1); returns out. */
char *mv_journal_defects_str(uint32_t defects, char *out, size_t n);

typedef struct mv_journal {
    int generation; /* 2007 (X-MS-Journal-Report), 2003 (Content-Identifier: ExJournalReport
                     * or the misspelt Content-Identifer), 1 (other vendor: X-WM-Journal-Report) */
    char *sender, *on_behalf_of, *message_id, *subject; /* report text, UTF-8, NULL if absent */
    mv_env_rcpt *rcpt;   /* in report order */
    size_t n_rcpt;
    const uint8_t *inner; /* the attached original, EXACT bytes; NULL when it could not be
                           * unwrapped (then the server keeps the whole report as the message) */
    size_t inner_len;
    uint32_t defects; /* MV_JDEF_* */
    /* private */
    uint8_t *inner_owned; /* set when the original had to be decoded (base64 / QP) */
} mv_journal;

/* mv_journal_detect - 1 if the top-level header block carries a
 * journal-report marker (presence of X-MS-Journal-Report or X-WM-Journal-Report,
 * or Content-Identifier / Content-Identifer with the value ExJournalReport),
 * else 0.  Looks only at the header block (up to the first empty line, at
 * most MV_JOURNAL_DETECT_HEADER_BYTES). */
#define MV_JOURNAL_DETECT_HEADER_BYTES ((size_t)1 << 20)
int mv_journal_detect(const uint8_t *p, size_t n);

/* mv_journal_parse - unwrap a journal report (p[0..n), not NUL-terminated).
 * lim may be NULL (defaults).  On MV_OK *out is filled and owned by the
 * caller (mv_journal_free); out->inner points into p (p must outlive *out)
 * or into out->inner_owned.  On failure *out is zeroed.
 * @retval MV_OK          a report, possibly damaged: see out->defects
 * @retval MV_EMALFORMED  not a journal report at all (mv_journal_detect is 0)
 * Thread-safe. */
MV_NODISCARD mv_status mv_journal_parse(const uint8_t *p, size_t n, const mv_journal_limits *lim,
                                        mv_journal *out, mv_err *err);
/* mv_journal_free - release what mv_journal_parse filled and zero *j (NULL ok). */
void mv_journal_free(mv_journal *j);

/* ---- Postfix sub-address BCC recipients -------------------------------- */

/* Postfix sub-address recipe: recipient_bcc_maps maps user@domain ->
 * archive+user=domain@archive.example (STANDARDS.md 1.2).
 * mv_subaddr_decode("archive+alice=corp.example@archive.example", "archive", '+')
 *   -> "alice@corp.example".
 * rcpt is the RCPT TO path (surrounding <> allowed).  The local part before
 * the LAST '@' may be quoted; it must start with base_local
 * (case-insensitive) and delim; in the rest the LAST '=' splits user and
 * domain (user parts may hold '=' and '+').  A user that is not a dot-atom
 * comes back quoted ("john doe"@corp.example).  Bytes >= 0x80 (SMTPUTF8)
 * pass through.  Returns a malloc'd address (caller frees), or NULL when
 * rcpt is not of that form (the plain archive address, no '=', empty user
 * or domain, a domain that is not a domain, control bytes, '<' or '>', not
 * UTF-8, over 2048 bytes). */
char *mv_subaddr_decode(const char *rcpt, const char *base_local, char delim);

/* ---- Google routing ---------------------------------------------------- */

#define MV_GM_MAX_ADDRS 1000 /* addresses collected from X-Gm-Original-To */

/* mv_gm_original_to - the addresses in the X-Gm-Original-To fields of the
 * top-level header block (every such field, unfolded and trimmed; each may
 * hold a list, with or without <> and display names), in order, exact
 * duplicates (case-insensitive) dropped, unusable items skipped.
 * On MV_OK *addrs is a malloc'd array of *n_addrs malloc'd strings (NULL and
 * 0 when there is none); free with mv_gm_addrs_free.  On failure they are
 * NULL and 0.
 * @retval MV_OK
 * @retval MV_ELIMIT  more than MV_GM_MAX_ADDRS addresses */
MV_NODISCARD mv_status mv_gm_original_to(const uint8_t *p, size_t n, char ***addrs,
                                         size_t *n_addrs, mv_err *err);
void mv_gm_addrs_free(char **addrs, size_t n);

#endif
