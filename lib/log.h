/* SPDX-License-Identifier: MIT */
/* log.h - one-line key=value events on stderr, Postfix style.
 * Never log addresses, subjects or content: the log is plaintext at rest.
 * Text from mail that must appear (never does today) goes through
 * mv_log_safe().  Libraries do not log; commands and the daemon do. */
#ifndef MV_LIB_LOG_H
#define MV_LIB_LOG_H

#include <stddef.h>

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

/* mv_log_safe - copy at most outlen-1 bytes of s into out, replacing
 * non-printable bytes by '?'; returns out. */
char *mv_log_safe(const char *s, size_t n, char *out, size_t outlen);

#endif
