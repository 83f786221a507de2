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

/* ---- attachments, one by one (export's child documents) -------------------- */

/* Bytes of one attachment handed over whole (the default of max_bytes).
 * An import takes messages up to 512 MiB, whose attachments are mostly
 * far smaller; export holds the message and one attachment at a time. */
#define MV_ATTACH_MAX_BYTES ((size_t)64 << 20)
/* Bytes of the file name and media type handed over (they are cut at a
 * character boundary past this). */
#define MV_ATTACH_NAME_MAX 1024u

/* One attachment, as mv_extract_attachments hands it to its callback.
 * Everything is borrowed and valid during the callback only. */
typedef struct mv_attachment {
    uint32_t part;        /* 1..n_attachments: the `part` of the same attachment's
                           * FILENAME, MIMETYPE and ATTACH_TEXT sections */
    uint32_t container;   /* the part of the attached message it sits in; 0 when
                           * it is the message's own */
    const char *filename; /* its file name, decoded (as the FILENAME section says),
                           * clean UTF-8; NULL when the part names none */
    const char *name;     /* filename, or one made from the part and media type
                           * ("attachment-3.pdf"): never NULL or empty */
    const char *ext;      /* for a file name: filename's own extension when it is
                           * 1 to 10 letters or digits (lower-cased), else one for
                           * the media type, "bin" when none is known */
    const char *mimetype; /* lower-case "type/subtype" (as the MIMETYPE section) */
    int is_message;       /* an attached message: data is its .eml bytes */
    const uint8_t *data;  /* the content, transfer encoding (base64, quoted-printable,
                           * uuencode) undone; for a message/rfc822 part the bytes
                           * of the message exactly as they stand in its parent.
                           * NULL when size is over max_bytes */
    size_t len;           /* bytes at data (0 when data is NULL) */
    uint64_t size;        /* the content's size, also when over max_bytes */
} mv_attachment;

/* mv_attachment_fn - called once per attachment, in part order.  Any
 * status but MV_OK stops the walk, and mv_extract_attachments returns it
 * (err as the callback set it). */
typedef mv_status (*mv_attachment_fn)(void *ctx, const mv_attachment *a, mv_err *err);

/* mv_extract_attachments - every attachment of the message p[0..n), in
 * the order and with the part numbers mv_extract_message gives them under
 * the same limits (lim may be NULL: the defaults), and exactly the parts
 * it counts in n_attachments: a leaf with a file name, with
 * Content-Disposition: attachment or with content that is not text, and
 * every attached message (message/rfc822 or a .eml file), with the
 * attachments inside an attached message after it, nested too, as far as
 * max_depth reads; signatures and encrypted containers that stayed
 * encrypted are not attachments.  One attachment is decoded at a time:
 * memory holds the message's parse and at most max_bytes (0: the default
 * MV_ATTACH_MAX_BYTES) of content; a larger attachment is handed over
 * with data NULL and its size.  No text is extracted (mv_extract_message
 * does that).  *count (may be NULL) is set to the attachments handed over
 * (all of them unless the callback stopped the walk).
 * Thread safety: as mv_extract_message.
 * @retval MV_OK every attachment was handed over (malformed input is never
 *         an error: what the parser recovers is walked)
 * @retval other what the callback returned */
MV_NODISCARD mv_status mv_extract_attachments(const uint8_t *p, size_t n,
                                              const mv_extract_limits *lim, size_t max_bytes,
                                              mv_attachment_fn fn, void *ctx, uint32_t *count,
                                              mv_err *err);

#endif
