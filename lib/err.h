/* SPDX-License-Identifier: MIT */
/* err.h - status codes and the caller-supplied error buffer.
 *
 * Every function that can fail returns mv_status and takes `mv_err *err`
 * last; err may be NULL.  Reporting an error never allocates. */
#ifndef MV_LIB_ERR_H
#define MV_LIB_ERR_H

#include <stddef.h>

#define MV_NODISCARD __attribute__((warn_unused_result))
#define MV_PRINTF(a, b) __attribute__((format(printf, a, b)))

typedef enum mv_status {
    MV_OK = 0,
    MV_ENOMEM,     /* allocation failed */
    MV_EIO,        /* operating-system I/O error (sys_errno set) */
    MV_EMALFORMED, /* input (or a stored record) does not parse */
    MV_ELIMIT,     /* a named limit was exceeded */
    MV_ECRYPTO,    /* authentication failed or a crypto call failed */
    MV_ENOKEY,     /* wrong or missing key material */
    MV_EEXIST,     /* already exists */
    MV_ENOTFOUND,  /* no such record / file */
    MV_ESTORE,     /* RocksDB error */
    MV_EINDEX,     /* search index error */
    MV_ETEMP,      /* temporary condition, retry later */
    MV_EUSAGE,     /* bad arguments */
    MV_EPERM,      /* refused: permissions or file mode */
    MV_EINTERNAL,  /* a bug */
    MV_STATUS_COUNT
} mv_status;

typedef struct mv_err {
    mv_status code;
    int sys_errno;
    char msg[256];
} mv_err;

/* mv_err_set - record code and formatted message in err (if not NULL);
 * returns code so callers can `return mv_err_set(err, ...)`. */
mv_status mv_err_set(mv_err *err, mv_status code, const char *fmt, ...) MV_PRINTF(3, 4);
/* mv_err_sys - like mv_err_set with code MV_EIO, appending strerror(errno). */
mv_status mv_err_sys(mv_err *err, const char *fmt, ...) MV_PRINTF(2, 3);
/* mv_err_prefix - prepend context ("opening store: ") to an existing message. */
void mv_err_prefix(mv_err *err, const char *fmt, ...) MV_PRINTF(2, 3);
/* mv_err_openssl - MV_ECRYPTO with the first OpenSSL error queue entry; clears the queue. */
mv_status mv_err_openssl(mv_err *err, const char *what);
void mv_err_clear(mv_err *err);
const char *mv_status_str(mv_status s);

/* Out-of-memory aborts: callers never see a NULL from these. */
void *mv_xmalloc(size_t n);
void *mv_xcalloc(size_t n, size_t size);
void *mv_xrealloc(void *p, size_t n);
char *mv_xstrdup(const char *s);
char *mv_xstrndup(const char *s, size_t n);
char *mv_xasprintf(const char *fmt, ...) MV_PRINTF(1, 2);

/* mv_assert stays active under NDEBUG. */
#define mv_assert(c)                                                                           \
    do {                                                                                       \
        if (!(c))                                                                              \
            mv_assert_fail(#c, __FILE__, __LINE__);                                            \
    } while (0)
void mv_assert_fail(const char *what, const char *file, int line) __attribute__((noreturn));

#endif
