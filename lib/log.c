/* SPDX-License-Identifier: MIT */
/* log.c - key=value event lines on stderr. */
#include "log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static int log_level = MV_LOG_NOTICE;
static FILE *own_stderr; /* set once by mv_stderr_isolate, before threads */

FILE *mv_stderr(void)
{
    return own_stderr ? own_stderr : stderr;
}

void mv_stderr_isolate(void)
{
    if (own_stderr)
        return;
    int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return; /* fd 2 closed: nothing to protect */
    FILE *own = fdopen(fd, "w");
    FILE *null = fopen("/dev/null", "we");
    if (!own || !null) {
        if (own)
            fclose(own);
        else
            close(fd);
        if (null)
            fclose(null);
        return;
    }
    setvbuf(own, NULL, _IONBF, 0); /* as stderr: every line out at once */
    own_stderr = own;
    stderr = null;
}
static const char *log_ident = "mailvault";

void mv_log_set_level(int level)
{
    log_level = level;
}

void mv_log_set_ident(const char *ident)
{
    log_ident = ident;
}

void mv_log(int level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "notice", "warning", "error"};
    if (level < log_level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(mv_stderr(), "%s[%ld]: %s: %s\n", log_ident, (long)getpid(),
            names[level < 0 ? 0 : level > MV_LOG_ERR ? MV_LOG_ERR : level], line);
}

char *mv_log_safe(const char *s, size_t n, char *out, size_t outlen)
{
    size_t j = 0;
    if (outlen == 0)
        return out;
    for (size_t i = 0; i < n && s[i] && j + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[j] = '\0';
    return out;
}
