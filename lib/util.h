/* SPDX-License-Identifier: MIT */
/* util.h - files, time, progress: the only place outside store/ that
 * reads errno. */
#ifndef MV_LIB_UTIL_H
#define MV_LIB_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"

/* mv_read_file - read a whole file (at most max bytes) into out (appended). */
MV_NODISCARD mv_status mv_read_file(const char *path, size_t max, mv_buf *out, mv_err *err);
/* mv_write_file_atomic - write to PATH.tmp, fsync, rename over PATH, fsync
 * the directory, with the given mode. */
MV_NODISCARD mv_status mv_write_file_atomic(const char *path, const void *p, size_t n, mode_t mode,
                                            mv_err *err);
MV_NODISCARD mv_status mv_fsync_dir(const char *dir, mv_err *err);
/* mv_mkdir_p - create a directory and its parents with mode. */
MV_NODISCARD mv_status mv_mkdir_p(const char *path, mode_t mode, mv_err *err);
/* mv_write_all - write n bytes to fd, retrying short writes and EINTR. */
MV_NODISCARD mv_status mv_write_all(int fd, const void *p, size_t n, mv_err *err);

/* Current time: microseconds / seconds since the epoch (UTC). */
int64_t mv_now_us(void);
int64_t mv_now(void);
/* mv_fmt_time - ISO 8601 UTC "2024-01-31T12:00:00Z" into out (>= 21 bytes). */
char *mv_fmt_time(int64_t t, char *out, size_t n);
/* Monotonic seconds, for rates and progress. */
double mv_mono(void);

/* mv_current_user - the OS user name of the caller (static storage). */
const char *mv_current_user(void);

/* A progress bar on stderr, drawn only when stderr is a terminal. */
typedef struct mv_progress mv_progress;
mv_progress *mv_progress_new(const char *what, uint64_t total);
void mv_progress_set_total(mv_progress *p, uint64_t total);
void mv_progress_update(mv_progress *p, uint64_t done, uint64_t bytes);
void mv_progress_free(mv_progress *p); /* clears the line; NULL ok */

#endif
