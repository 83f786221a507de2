/* SPDX-License-Identifier: MIT */
/* extract.h - what a message says, as text: the searchable content of one
 * message (headers, body, attachment names and text), made once, bounded by
 * bytes and pages (never by wall time: results must not depend on load),
 * stored encrypted beside the message (store/) and reused by the index,
 * snippets and export.
 *
 * The result is a flat list of sections in document order.  Each section
 * has a kind, for address sections a role, and the part it came from
 * (0 = the message itself, k = its k-th attachment in depth-first order,
 * the same numbering export uses for child documents).
 *
 * Ownership: an mv_extract and everything it points to belong to the
 * caller and are freed with mv_extract_free.  The text it holds is content:
 * callers must not log it or write it anywhere unencrypted. */
#ifndef MV_SEARCH_EXTRACT_H
#define MV_SEARCH_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"
#include "../lib/err.h"

typedef enum {
    MV_XS_ADDR = 1,    /* an address, lower-cased: "alice@example.com" */
    MV_XS_NAME,        /* a display name: "Alice Smith" */
    MV_XS_SUBJECT,     /* decoded (RFC 2047) subject */
    MV_XS_BODY,        /* text of the message body (text/plain, or html reduced to text) */
    MV_XS_ATTACH_TEXT, /* text of an attachment (text parts, PDF, office, nested message) */
    MV_XS_FILENAME,    /* an attachment's file name (decoded, RFC 2231/2047) */
    MV_XS_MIMETYPE,    /* an attachment's media type, lower-cased: "application/pdf" */
    MV_XS_MSGID,       /* Message-ID without <>, as written */
    MV_XS_REF,         /* one id of In-Reply-To or References, without <> */
} mv_xs_kind;

typedef enum {
    MV_XR_NONE = 0,
    MV_XR_FROM, /* From, and Sender/Reply-To are not indexed as From */
    MV_XR_TO,
    MV_XR_CC,
    MV_XR_BCC, /* a Bcc header present in the message itself */
} mv_xs_role;

typedef struct mv_xsection {
    uint8_t kind; /* mv_xs_kind */
    uint8_t role; /* mv_xs_role, for MV_XS_ADDR and MV_XS_NAME of the top-level header */
    uint32_t part;
    char *text; /* UTF-8 (invalid sequences replaced by U+FFFD), NUL-terminated */
    size_t len;
} mv_xsection;

/* Facts about the whole message, and why text may be missing. */
enum {
    MV_XF_TRUNCATED = 1u << 0,   /* a byte, page or section limit cut text off */
    MV_XF_PDF_FAILED = 1u << 1,  /* a PDF could not be read (encrypted, corrupt) */
    MV_XF_OFFICE_FAILED = 1u << 2, /* an office document could not be read */
    MV_XF_TOO_DEEP = 1u << 3,    /* nesting past max_depth was not extracted */
    MV_XF_MALFORMED = 1u << 4,   /* MIME defects (the parser recovered) */
    MV_XF_SIGNED = 1u << 5,      /* a signature part (S/MIME or OpenPGP) was met */
};

typedef struct mv_extract {
    mv_xsection *s;
    size_t n;
    int64_t date;           /* Date: header as UTC seconds; INT64_MIN when absent or unparsable */
    uint64_t size;          /* bytes of the message extracted from */
    uint32_t n_attachments; /* parts with a file name or Content-Disposition: attachment, nested too */
    uint32_t flags;         /* MV_XF_* */
} mv_extract;

/* Named limits (docs/limits.md); zero fields take the defaults. */
typedef struct mv_extract_limits {
    size_t max_text;        /* total text kept per message (default 4 MiB) */
    size_t max_part_text;   /* text kept per part (default 1 MiB) */
    size_t max_part_input;  /* decoded bytes of one part read for text (default 32 MiB) */
    unsigned max_pdf_pages; /* pages of one PDF read (default 200) */
    unsigned max_depth;     /* message/rfc822 and zip nesting (default 8) */
    unsigned max_sections;  /* sections per message (default 20000) */
    unsigned max_members;   /* members of one office archive examined (default 2000) */
} mv_extract_limits;

/* mv_extract_message - parse the message (bytes as archived, or the
 * decrypted form) and extract its text.  Never fails on bad input: what
 * cannot be read sets a flag and is skipped.
 * *out owned by the caller (mv_extract_free).
 * @retval MV_OK always, unless allocation fails (which aborts) */
MV_NODISCARD mv_status mv_extract_message(const uint8_t *p, size_t n, const mv_extract_limits *lim,
                                          mv_extract **out, mv_err *err);

/* mv_extract_encode - serialise for storage (versioned, length-prefixed). */
void mv_extract_encode(const mv_extract *x, mv_buf *out);
/* mv_extract_decode - the inverse; *out owned by the caller.
 * @retval MV_EMALFORMED not a valid encoding (never trusts a length) */
MV_NODISCARD mv_status mv_extract_decode(const uint8_t *p, size_t n, mv_extract **out,
                                         mv_err *err);

/* mv_extract_free - free x and what it holds, wiping the text first. */
void mv_extract_free(mv_extract *x);

#endif
