/* SPDX-License-Identifier: MIT */
/* charset.h - whether iconv converts a charset to UTF-8, answered once.
 *
 * glibc loads each charset's converter (a gconv module) with dlopen when
 * a descriptor is opened and unloads it soon after the last one is
 * closed.  Opening and closing a descriptor for every part of every
 * message therefore mapped and unmapped a shared object over and over:
 * about 5% of an import's CPU went to the dynamic loader.  Here the first
 * question about a charset keeps one descriptor open for the life of the
 * process, which pins the module for every later iconv_open anywhere in
 * the process (ours and GMime's), and keeps the answer.
 *
 * Thread-safe.  The table is bounded (MV_ICONV_PINNED names, names up to
 * MV_ICONV_NAME_MAX bytes): beyond it, or for longer names, the answer is
 * worked out each time as before, never wrong, only slower.  Names come
 * from hostile mail, which is why the table does not grow. */
#ifndef MV_LIB_CHARSET_H
#define MV_LIB_CHARSET_H

#define MV_ICONV_PINNED 64
#define MV_ICONV_NAME_MAX 47

/* mv_iconv_usable - 1 when iconv_open(to, from) succeeds, else 0.  Both
 * names are passed to iconv as they are (callers map aliases first, e.g.
 * with g_mime_charset_iconv_name).  Never fails otherwise. */
int mv_iconv_usable(const char *to, const char *from);

#endif
