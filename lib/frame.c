/* SPDX-License-Identifier: MIT */
/* frame.c - the control protocol's wire format and its socket helpers
 * (see frame.h and docs/protocol.md). */
#include "frame.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- codec ----------------------------------------------------------------- */

mv_status mv_frame_request_encode(uint8_t flags, size_t argc, char *const *argv, mv_buf *out,
                                  mv_err *err)
{
    if (argc == 0 || (flags & ~MV_FRAME_FLAGS_KNOWN))
        return mv_err_set(err, MV_EUSAGE, "a request needs a command and valid flags");
    if (argc > MV_FRAME_ARGS_MAX)
        return mv_err_set(err, MV_ELIMIT, "more than %u arguments", MV_FRAME_ARGS_MAX);
    size_t total = MV_FRAME_REQ_HDR;
    for (size_t i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]);
        if (l > MV_FRAME_REQUEST_MAX || total + 4 + l > MV_FRAME_REQUEST_MAX)
            return mv_err_set(err, MV_ELIMIT, "the command line is longer than %u bytes",
                              MV_FRAME_REQUEST_MAX);
        total += 4 + l;
    }
    mv_buf_reserve(out, total);
    mv_buf_append(out, MV_FRAME_MAGIC, 4);
    mv_buf_put_u8(out, MV_FRAME_VERSION);
    mv_buf_put_u8(out, flags);
    mv_buf_put_u32(out, (uint32_t)argc);
    for (size_t i = 0; i < argc; i++)
        mv_buf_put_lp(out, argv[i], strlen(argv[i]));
    return MV_OK;
}

mv_status mv_frame_request_decode(const uint8_t *p, size_t n, mv_frame_request *req, size_t *need,
                                  mv_err *err)
{
    *need = 0;
    /* Check what has arrived as early as it can be checked, so a stranger
     * speaking another protocol is turned away after its first bytes. */
    size_t m = n < 4 ? n : 4;
    if (memcmp(p, MV_FRAME_MAGIC, m) != 0)
        return mv_err_set(err, MV_EMALFORMED, "not a mailvault request (bad magic)");
    if (n > 4 && p[4] != MV_FRAME_VERSION)
        return mv_err_set(err, MV_EMALFORMED, "request version %u is not supported (only %u)", p[4],
                          MV_FRAME_VERSION);
    if (n > 5 && (p[5] & ~MV_FRAME_FLAGS_KNOWN))
        return mv_err_set(err, MV_EMALFORMED, "request flags 0x%02x carry unknown bits", p[5]);
    if (n < MV_FRAME_REQ_HDR) {
        *need = MV_FRAME_REQ_HDR;
        return MV_OK;
    }
    uint32_t argc = mv_be32_get(p + 6);
    if (argc == 0)
        return mv_err_set(err, MV_EMALFORMED, "a request without a command");
    if (argc > MV_FRAME_ARGS_MAX)
        return mv_err_set(err, MV_ELIMIT, "a request with %u arguments (at most %u)", argc,
                          MV_FRAME_ARGS_MAX);
    size_t pos = MV_FRAME_REQ_HDR;
    for (uint32_t i = 0; i < argc; i++) {
        if (pos + 4 > MV_FRAME_REQUEST_MAX)
            goto toolong;
        if (n < pos + 4) {
            *need = pos + 4;
            return MV_OK;
        }
        uint32_t l = mv_be32_get(p + pos);
        if (l > MV_FRAME_REQUEST_MAX - pos - 4)
            goto toolong;
        size_t end = pos + 4 + l;
        if (n < end) {
            *need = end;
            return MV_OK;
        }
        if (memchr(p + pos + 4, 0, l))
            return mv_err_set(err, MV_EMALFORMED, "argument %u holds a NUL byte", i);
        if (i == 0 && l == 0)
            return mv_err_set(err, MV_EMALFORMED, "an empty command name");
        pos = end;
    }
    req->flags = p[5];
    req->argc = argc;
    req->argv = mv_xcalloc((size_t)argc + 1, sizeof *req->argv);
    req->size = pos;
    pos = MV_FRAME_REQ_HDR;
    for (uint32_t i = 0; i < argc; i++) {
        uint32_t l = mv_be32_get(p + pos);
        req->argv[i] = mv_xstrndup((const char *)p + pos + 4, l);
        pos += 4 + l;
    }
    return MV_OK;
toolong:
    return mv_err_set(err, MV_ELIMIT, "a request longer than %u bytes", MV_FRAME_REQUEST_MAX);
}

void mv_frame_request_free(mv_frame_request *req)
{
    if (!req)
        return;
    for (size_t i = 0; req->argv && i < req->argc; i++)
        free(req->argv[i]);
    free(req->argv);
    memset(req, 0, sizeof *req);
}

void mv_frame_header(uint8_t hdr[MV_FRAME_HDR], uint8_t type, uint32_t len)
{
    mv_assert(len <= MV_FRAME_DATA_MAX);
    hdr[0] = type;
    mv_be32_put(hdr + 1, len);
}

void mv_frame_put(mv_buf *out, uint8_t type, const void *p, size_t n)
{
    const uint8_t *q = p;
    while (n) {
        uint32_t l = n > MV_FRAME_DATA_MAX ? MV_FRAME_DATA_MAX : (uint32_t)n;
        uint8_t hdr[MV_FRAME_HDR];
        mv_frame_header(hdr, type, l);
        mv_buf_append(out, hdr, sizeof hdr);
        mv_buf_append(out, q, l);
        q += l;
        n -= l;
    }
}

void mv_frame_put_exit(mv_buf *out, uint32_t code)
{
    uint8_t v[4];
    mv_be32_put(v, code);
    uint8_t hdr[MV_FRAME_HDR];
    mv_frame_header(hdr, MV_FRAME_EXIT, 4);
    mv_buf_append(out, hdr, sizeof hdr);
    mv_buf_append(out, v, 4);
}

mv_status mv_frame_header_parse(const uint8_t hdr[MV_FRAME_HDR], uint8_t *type, uint32_t *len,
                                mv_err *err)
{
    *type = hdr[0];
    *len = mv_be32_get(hdr + 1);
    if (*type != MV_FRAME_OUT && *type != MV_FRAME_ERR && *type != MV_FRAME_EXIT)
        return mv_err_set(err, MV_EMALFORMED, "unknown frame type 0x%02x", *type);
    if (*len > MV_FRAME_DATA_MAX)
        return mv_err_set(err, MV_ELIMIT, "a frame of %u bytes (at most %u)", *len,
                          MV_FRAME_DATA_MAX);
    if (*type == MV_FRAME_EXIT && *len != 4)
        return mv_err_set(err, MV_EMALFORMED, "an exit frame of %u bytes (not 4)", *len);
    return MV_OK;
}

mv_status mv_frame_decode(const uint8_t *p, size_t n, mv_frame *f, size_t *need, mv_err *err)
{
    uint8_t type;
    uint32_t len;
    *need = 0;
    if (n < MV_FRAME_HDR) {
        *need = MV_FRAME_HDR;
        return MV_OK;
    }
    mv_status st = mv_frame_header_parse(p, &type, &len, err);
    if (st)
        return st;
    if (n < MV_FRAME_HDR + (size_t)len) {
        *need = MV_FRAME_HDR + (size_t)len;
        return MV_OK;
    }
    f->type = type;
    f->len = len;
    f->data = p + MV_FRAME_HDR;
    f->exit_code = type == MV_FRAME_EXIT ? mv_be32_get(f->data) : 0;
    f->size = MV_FRAME_HDR + (size_t)len;
    return MV_OK;
}

/* ---- sockets ------------------------------------------------------------------ */

mv_status mv_frame_connect(const char *path, int *fd, mv_err *err)
{
    struct sockaddr_un sa;
    *fd = -1;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path)
        return mv_err_set(err, MV_ENOTFOUND, "%s: too long for a socket address", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return mv_err_sys(err, "socket");
    while (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(s);
        errno = e;
        if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR)
            return mv_err_set(err, MV_ENOTFOUND, "no daemon listens on %s", path);
        mv_err_sys(err, "connecting to %s", path);
        if (e != EACCES && e != EPERM)
            return MV_EIO;
        if (err)
            err->code = MV_EPERM;
        return MV_EPERM;
    }
    *fd = s;
    return MV_OK;
}

mv_status mv_frame_send(int fd, const void *p, size_t n, mv_err *err)
{
    const uint8_t *q = p;
    while (n) {
        ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return mv_err_set(err, MV_EIO, "the other end stopped reading (send timed out)");
            return mv_err_sys(err, "sending on the control socket");
        }
        q += w;
        n -= (size_t)w;
    }
    return MV_OK;
}

mv_status mv_frame_write(int fd, uint8_t type, const void *p, size_t n, mv_err *err)
{
    const uint8_t *q = p;
    while (n) {
        uint32_t l = n > MV_FRAME_DATA_MAX ? MV_FRAME_DATA_MAX : (uint32_t)n;
        uint8_t hdr[MV_FRAME_HDR];
        mv_frame_header(hdr, type, l);
        mv_status st = mv_frame_send(fd, hdr, sizeof hdr, err);
        if (!st)
            st = mv_frame_send(fd, q, l, err);
        if (st)
            return st;
        q += l;
        n -= l;
    }
    return MV_OK;
}

mv_status mv_frame_write_exit(int fd, uint32_t code, mv_err *err)
{
    uint8_t f[MV_FRAME_HDR + 4];
    mv_frame_header(f, MV_FRAME_EXIT, 4);
    mv_be32_put(f + MV_FRAME_HDR, code);
    return mv_frame_send(fd, f, sizeof f, err);
}

mv_status mv_frame_recv(int fd, void *p, size_t n, mv_err *err)
{
    uint8_t *q = p;
    while (n) {
        ssize_t r = recv(fd, q, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return mv_err_sys(err, "reading from the control socket");
        }
        if (r == 0)
            return mv_err_set(err, MV_ENOTFOUND, "the connection was closed");
        q += r;
        n -= (size_t)r;
    }
    return MV_OK;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

mv_status mv_frame_read_request(int fd, int timeout_ms, mv_frame_request *req, mv_err *err)
{
    mv_buf b = MV_BUF_INIT;
    mv_status st;
    size_t need = MV_FRAME_REQ_HDR;
    int64_t deadline = mono_ms() + timeout_ms;
    memset(req, 0, sizeof *req);
    for (;;) {
        /* Read what is there (a good client sends nothing after its
         * request), never beyond the largest request. */
        size_t room = MV_FRAME_REQUEST_MAX - b.len;
        if (room > 65536)
            room = 65536;
        if (room < need - b.len)
            room = need - b.len;
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            st = mv_err_set(err, MV_ETEMP, "no whole request within %d s", timeout_ms / 1000);
            goto out;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            st = mv_err_sys(err, "waiting for the request");
            goto out;
        }
        if (pr == 0)
            continue; /* the deadline check above reports it */
        mv_buf_reserve(&b, room);
        ssize_t r = recv(fd, b.data + b.len, room, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (r < 0) {
            st = mv_err_sys(err, "reading the request");
            goto out;
        }
        if (r == 0) {
            st = mv_err_set(err, MV_ENOTFOUND,
                            "the client closed the connection before a whole "
                            "request (%zu bytes)",
                            b.len);
            goto out;
        }
        b.len += (size_t)r;
        if ((st = mv_frame_request_decode(b.data, b.len, req, &need, err)))
            goto out;
        if (need == 0)
            break;
    }
    if (req->size != b.len) {
        mv_frame_request_free(req);
        st = mv_err_set(err, MV_EMALFORMED, "bytes after the request");
    }
out:
    mv_buf_free(&b);
    return st;
}

mv_status mv_frame_peer_uid(int fd, uid_t *uid, mv_err *err)
{
    struct ucred cr;
    socklen_t l = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0 || l != sizeof cr)
        return mv_err_sys(err, "SO_PEERCRED");
    *uid = cr.uid;
    return MV_OK;
}

mv_status mv_frame_send_timeout(int fd, unsigned seconds, mv_err *err)
{
    struct timeval tv = {(time_t)seconds, 0};
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return mv_err_sys(err, "SO_SNDTIMEO");
    return MV_OK;
}
