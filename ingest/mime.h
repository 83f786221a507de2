/* SPDX-License-Identifier: MIT */
/* mime.h - what the pipeline learns from a message's bytes, through GMime.
 *
 * mv_mime_summarize is a pure function over (bytes, length): no I/O, no
 * global state beyond GMime's one-time initialisation, safe to call from
 * several threads at once on different inputs.  It never fails on bad mail:
 * whatever cannot be read is recorded as a defect bit and the summary holds
 * what could be read.  GMime objects never leave ingest/. */
#ifndef MV_INGEST_MIME_H
#define MV_INGEST_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "../store/store.h"

/* Defect bits: recorded with the message, never a reason to refuse it. */
enum {
    MV_DEFECT_UNPARSEABLE = 1u << 0,   /* no header block GMime could read */
    MV_DEFECT_NO_FROM = 1u << 1,
    MV_DEFECT_NO_DATE = 1u << 2,
    MV_DEFECT_BAD_DATE = 1u << 3,      /* Date present but not parseable */
    MV_DEFECT_NO_MSGID = 1u << 4,
    MV_DEFECT_BARE_LF = 1u << 5,       /* LF without CR in a CRLF message, or mixed */
    MV_DEFECT_BARE_CR = 1u << 6,       /* CR not followed by LF */
    MV_DEFECT_NUL = 1u << 7,           /* NUL bytes */
    MV_DEFECT_8BIT_HEADER = 1u << 8,   /* raw 8-bit bytes in header fields */
    MV_DEFECT_DEPTH_LIMIT = 1u << 9,   /* MIME nesting over the limit: deeper parts not walked */
    MV_DEFECT_PARTS_LIMIT = 1u << 10,  /* more parts than the limit: the rest not walked */
    MV_DEFECT_BAD_BOUNDARY = 1u << 11, /* multipart without boundary or end boundary */
    MV_DEFECT_BAD_ENCODING = 1u << 12, /* undecodable base64 / quoted-printable / charset */
    MV_DEFECT_HEADER_LIMIT = 1u << 13, /* header block over the limit */
    MV_DEFECT_LONG_LINE = 1u << 14,    /* a line over 998 octets (RFC 5322 2.1.1) */
    MV_DEFECT_DUP_HEADER = 1u << 15,   /* a header that must be unique appears twice */
    MV_DEFECT_NOT_PARSED = 1u << 16,   /* over the in-memory parse limit: headers only */
};

typedef struct mv_mime_limits {
    unsigned max_depth;      /* MIME nesting walked, default 64 */
    unsigned max_parts;      /* parts walked, default 10000 */
    size_t max_header_bytes; /* header block, default 1 MiB */
    size_t max_names;        /* attachment names kept, default 1000 */
    size_t max_parse_bytes;  /* larger messages: header block only (NOT_PARSED), default 256 MiB */
    int every_field;         /* 1: GMime reads every top-level header field (see mime.c:
                              * trace fields are skipped by default, with the same result);
                              * the differential tests set it */
} mv_mime_limits; /* a field left 0 means its default */

void mv_mime_limits_default(mv_mime_limits *l);

/* What the pipeline learns: the header summary the store keeps with the
 * message (mv_msgmeta, store/store.h: decoded UTF-8 header values, each
 * NULL when absent; attachment names NULL-terminated; sizes, defects
 * (MV_DEFECT_*), SHA-256 of the exact bytes, dedup digest per
 * docs/dedup.md), and what only ingest needs. */
typedef struct mv_msginfo {
    mv_msgmeta meta;
    char **recipients; /* sorted unique lower-cased addr-specs of To and Cc */
    size_t n_recipients;
    size_t body_bytes; /* total - header_bytes */
    int direct;        /* 1: made without GMime's message objects (mime.c, "the
                        * direct path"); the same summary either way */
} mv_msginfo;

/* mv_mime_init - initialise GMime once per process (thread-safe, idempotent). */
void mv_mime_init(void);

/* mv_mime_summarize - parse p[0..n) and fill a new summary.
 * On MV_OK *out is owned by the caller (free with mv_msginfo_free).
 * @retval MV_OK      always for any input, even garbage (defects say what failed)
 * @retval MV_ENOMEM  never (allocation aborts); listed for completeness */
MV_NODISCARD mv_status mv_mime_summarize(const uint8_t *p, size_t n, const mv_mime_limits *lim,
                                         mv_msginfo **out, mv_err *err);
/* mv_mime_summarize_digested - the same, for a caller that has the SHA-256
 * of p[0..n) already (sha256, 32 bytes, not kept; NULL: computed here). */
MV_NODISCARD mv_status mv_mime_summarize_digested(const uint8_t *p, size_t n,
                                                  const uint8_t *sha256,
                                                  const mv_mime_limits *lim, mv_msginfo **out,
                                                  mv_err *err);
void mv_msginfo_free(mv_msginfo *m);

/* mv_defects_str - comma-separated names of the bits ("no-date,bare-lf"),
 * written into out (always NUL-terminated); returns out. */
char *mv_defects_str(uint32_t defects, char *out, size_t n);

#endif
