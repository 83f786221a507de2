/* SPDX-License-Identifier: MIT */
/* log.h - one-line key=value events on stderr, Postfix style.
 * Never log addresses, subjects or content: the log is plaintext at rest.
 * Text from mail that must appear (never does today) goes through
 * mv_log_safe().  Libraries do not log; commands and the daemon do. */
#ifndef MV_LIB_LOG_H
#define MV_LIB_LOG_H

#include <stddef.h>
#include <stdio.h>

#include "err.h"

enum { MV_LOG_DEBUG, MV_LOG_INFO, MV_LOG_NOTICE, MV_LOG_WARN, MV_LOG_ERR };

void mv_log_set_level(int level);
void mv_log_set_ident(const char *ident);
void mv_log(int level, const char *fmt, ...) MV_PRINTF(2, 3);
#define mv_log_debug(...) mv_log(MV_LOG_DEBUG, __VA_ARGS__)
#define mv_log_info(...) mv_log(MV_LOG_INFO, __VA_ARGS__)
#define mv_log_notice(...) mv_log(MV_LOG_NOTICE, __VA_ARGS__)
#define mv_log_warn(...) mv_log(MV_LOG_WARN, __VA_ARGS__)
#define mv_log_err(...) mv_log(MV_LOG_ERR, __VA_ARGS__)

/* mv_stderr - the stream mailvault's own diagnostics go to: fd 2, through
 * a private stream once mv_stderr_isolate has run (else stdio's stderr).
 * Never NULL. */
FILE *mv_stderr(void);

/* mv_stderr_isolate - give mailvault's diagnostics a private stream on
 * (a duplicate of) fd 2 and point stdio's stderr at /dev/null.  Why:
 * librnp 0.16 (Debian 12) prints its diagnostics with fprintf(stderr)
 * whatever its settings say, and some quote the message being read (a
 * hostile OpenPGP armor header line, whole); GLib prints warnings the
 * same way.  In the daemon stderr is a log on disk, which must hold no
 * content.  fd 2 itself is untouched: sanitizer reports, child processes
 * and write(2) still reach it.  Call once, first thing in main, before
 * any thread starts; a failure leaves stderr as it was. */
void mv_stderr_isolate(void);

/* mv_log_safe - copy at most outlen-1 bytes of s into out, replacing
 * non-printable bytes by '?'; returns out. */
char *mv_log_safe(const char *s, size_t n, char *out, size_t outlen);

#endif
