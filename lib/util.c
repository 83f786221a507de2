/* SPDX-License-Identifier: MIT */
/* util.c - files, time, the caller's name, progress bars. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

mv_status mv_read_file(const char *path, size_t max, mv_buf *out, mv_err *err)
{
    mv_status st = MV_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return mv_err_set(err, MV_ENOTFOUND, "%s: no such file", path);
        return mv_err_sys(err, "%s", path);
    }
    size_t got = 0;
    for (;;) {
        mv_buf_reserve(out, 65536);
        ssize_t r = read(fd, out->data + out->len, 65536);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            st = mv_err_sys(err, "reading %s", path);
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > max) {
            st = mv_err_set(err, MV_ELIMIT, "%s: larger than %zu bytes", path, max);
            goto out;
        }
        out->len += (size_t)r;
        out->data[out->len] = '\0';
    }
out:
    close(fd);
    return st;
}

mv_status mv_write_all(int fd, const void *p, size_t n, mv_err *err)
{
    const uint8_t *q = p;
    while (n) {
        ssize_t w = write(fd, q, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return mv_err_sys(err, "write");
        }
        q += w;
        n -= (size_t)w;
    }
    return MV_OK;
}

mv_status mv_fsync_dir(const char *dir, mv_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return mv_err_sys(err, "opening directory %s", dir);
    int r = fsync(fd);
    int e = errno;
    close(fd);
    if (r < 0) {
        errno = e;
        return mv_err_sys(err, "fsync %s", dir);
    }
    return MV_OK;
}

mv_status mv_write_file_atomic(const char *path, const void *p, size_t n, mode_t mode, mv_err *err)
{
    mv_status st;
    char *tmp = mv_xasprintf("%s.tmp", path);
    char *dcopy = mv_xstrdup(path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        st = mv_err_sys(err, "creating %s", tmp);
        goto out;
    }
    if ((st = mv_write_all(fd, p, n, err)) != MV_OK) {
        mv_err_prefix(err, "%s: ", tmp);
        goto out;
    }
    if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
        st = mv_err_sys(err, "syncing %s", tmp);
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        st = mv_err_sys(err, "closing %s", tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        st = mv_err_sys(err, "renaming %s", tmp);
        goto out;
    }
    st = mv_fsync_dir(dirname(dcopy), err);
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(tmp);
    free(dcopy);
    return st;
}

mv_status mv_mkdir_p(const char *path, mode_t mode, mv_err *err)
{
    char *p = mv_xstrdup(path);
    mv_status st = MV_OK;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, mode) < 0 && errno != EEXIST) {
                st = mv_err_sys(err, "creating %s", p);
                break;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return st;
}

double mv_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *mv_fmt_time(int64_t t, char *out, size_t n)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, n, "@%lld", (long long)t);
    return out;
}

const char *mv_current_user(void)
{
    static char name[64];
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res)
        snprintf(name, sizeof name, "%s", res->pw_name);
    else
        snprintf(name, sizeof name, "uid%ld", (long)getuid());
    return name;
}

struct mv_progress {
    const char *what;
    uint64_t total;
    double start, last;
    int tty;
};

mv_progress *mv_progress_new(const char *what, uint64_t total)
{
    mv_progress *p = mv_xcalloc(1, sizeof *p);
    p->what = what;
    p->total = total;
    p->start = mv_mono();
    p->tty = isatty(STDERR_FILENO);
    return p;
}

void mv_progress_set_total(mv_progress *p, uint64_t total)
{
    if (p)
        p->total = total;
}

void mv_progress_update(mv_progress *p, uint64_t done, uint64_t bytes)
{
    if (!p || !p->tty)
        return;
    double now = mv_mono();
    if (now - p->last < 0.1)
        return;
    p->last = now;
    double el = now - p->start;
    double rate = el > 0 ? (double)done / el : 0;
    if (p->total) {
        double f = (double)bytes / (double)p->total;
        if (f > 1)
            f = 1;
        int w = 30, fill = (int)(f * w);
        char bar[32];
        for (int i = 0; i < w; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[w] = '\0';
        fprintf(mv_stderr(), "\r%s [%s] %3d%% %llu (%.0f/s) ", p->what, bar, (int)(f * 100),
                (unsigned long long)done, rate);
    } else {
        fprintf(mv_stderr(), "\r%s %llu (%.0f/s) ", p->what, (unsigned long long)done, rate);
    }
    fflush(mv_stderr());
}

void mv_progress_free(mv_progress *p)
{
    if (!p)
        return;
    if (p->tty && p->last > 0)
        fprintf(mv_stderr(), "\r\033[K");
    free(p);
}
