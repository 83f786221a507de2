/* SPDX-License-Identifier: MIT */
/* err.c - status strings, error buffers, allocation that aborts. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "log.h"

static const char *const status_names[MV_STATUS_COUNT] = {
    [MV_OK] = "ok",
    [MV_ENOMEM] = "out of memory",
    [MV_EIO] = "I/O error",
    [MV_EMALFORMED] = "malformed input",
    [MV_ELIMIT] = "limit exceeded",
    [MV_ECRYPTO] = "cryptographic failure",
    [MV_ENOKEY] = "wrong or missing key",
    [MV_EEXIST] = "already exists",
    [MV_ENOTFOUND] = "not found",
    [MV_ESTORE] = "store error",
    [MV_EINDEX] = "index error",
    [MV_ETEMP] = "temporary failure",
    [MV_EUSAGE] = "usage error",
    [MV_EPERM] = "permission denied",
    [MV_EINTERNAL] = "internal error",
};

const char *mv_status_str(mv_status s)
{
    if ((unsigned)s >= MV_STATUS_COUNT)
        return "unknown status";
    return status_names[s];
}

mv_status mv_err_set(mv_err *err, mv_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
        err->sys_errno = 0;
    }
    return code;
}

mv_status mv_err_sys(mv_err *err, const char *fmt, ...)
{
    int e = errno;
    if (err) {
        char what[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        if (snprintf(err->msg, sizeof err->msg, "%s: %s", what, strerror(e)) >= (int)sizeof err->msg)
            err->msg[sizeof err->msg - 1] = '\0';
        err->code = MV_EIO;
        err->sys_errno = e;
    }
    return MV_EIO;
}

void mv_err_prefix(mv_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char pre[128], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncation keeps the start, which says what failed: acceptable. */
    if (snprintf(err->msg, sizeof err->msg, "%s%s", pre, old) >= (int)sizeof err->msg)
        err->msg[sizeof err->msg - 1] = '\0';
}

mv_status mv_err_openssl(mv_err *err, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[160] = "no detail";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return mv_err_set(err, MV_ECRYPTO, "%s: %s", what, buf);
}

void mv_err_clear(mv_err *err)
{
    if (err) {
        err->code = MV_OK;
        err->sys_errno = 0;
        err->msg[0] = '\0';
    }
}

static void oom(size_t n) __attribute__((noreturn));
static void oom(size_t n)
{
    fprintf(mv_stderr(), "mailvault: out of memory (allocating %zu bytes)\n", n);
    abort();
}

void *mv_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *mv_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *mv_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *mv_xstrdup(const char *s)
{
    return mv_xstrndup(s, strlen(s));
}

char *mv_xstrndup(const char *s, size_t n)
{
    char *p = mv_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *mv_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    char *p = mv_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void mv_assert_fail(const char *what, const char *file, int line)
{
    fprintf(mv_stderr(), "mailvault: assertion failed: %s (%s:%d)\n", what, file, line);
    abort();
}
