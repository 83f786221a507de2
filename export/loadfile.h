/* SPDX-License-Identifier: MIT */
/* loadfile.h - writing load-file records: Concordance DAT, CSV and the
 * text of EDRM XML 1.2, appended to caller-owned buffers.  Values are
 * UTF-8; what a format cannot carry is replaced (documented in
 * docs/export.md), never dropped silently. */
#ifndef MV_EXPORT_LOADFILE_H
#define MV_EXPORT_LOADFILE_H

#include "../lib/buf.h"

typedef enum { MV_LF_DAT = 1, MV_LF_CSV, MV_LF_EDRM } mv_lf_kind;

/* mv_lf_begin - what starts the file (the UTF-8 BOM of DAT and CSV). */
void mv_lf_begin(mv_lf_kind kind, mv_buf *out);
/* mv_lf_field - one field (NULL is empty).  DAT: þvalueþ separated by
 * 0x14, line ends in the value as ®, a þ in the value as U+FFFD; CSV:
 * RFC 4180 quoting. */
void mv_lf_field(mv_lf_kind kind, const char *v, int first, mv_buf *out);
/* mv_lf_end_record - CRLF. */
void mv_lf_end_record(mv_lf_kind kind, mv_buf *out);
/* mv_xml_text - v escaped for XML 1.0 text and attribute values; control
 * characters XML cannot carry become U+FFFD, line ends character
 * references. */
void mv_xml_text(const char *v, mv_buf *out);

#endif
