/* SPDX-License-Identifier: MIT */
/* frame_test.c - the control protocol's wire format (lib/frame.h): the
 * request and frame codecs against hostile bytes, and the socket helpers
 * over socketpairs and UNIX sockets in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../lib/buf.h"
#include "../../lib/frame.h"

static void encode(char *const *argv, size_t argc, uint8_t flags, mv_buf *out)
{
    mv_err err = {0};
    assert_int_equal(mv_frame_request_encode(flags, argc, argv, out, &err), MV_OK);
}

/* ---- requests -------------------------------------------------------------- */

static void test_request_roundtrip(void **state)
{
    (void)state;
    char *argv[] = {"show", "42", "--raw", "", "sj\xc3\xb8", NULL};
    mv_buf b = MV_BUF_INIT;
    encode(argv, 5, MV_FRAME_FLAG_TTY, &b);
    /* the exact layout of docs/protocol.md */
    assert_memory_equal(b.data, "MVRQ\x01\x01\x00\x00\x00\x05\x00\x00\x00\x04show", 18);
    assert_int_equal(b.len, 10 + 4 * 5 + 4 + 2 + 5 + 0 + 4);
    mv_frame_request req;
    size_t need = 99;
    mv_err err = {0};
    assert_int_equal(mv_frame_request_decode(b.data, b.len, &req, &need, &err), MV_OK);
    assert_int_equal(need, 0);
    assert_int_equal(req.flags, MV_FRAME_FLAG_TTY);
    assert_int_equal(req.argc, 5);
    assert_int_equal(req.size, b.len);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(req.argv[i], argv[i]);
    assert_null(req.argv[5]);
    mv_frame_request_free(&req);
    mv_frame_request_free(&req); /* zeroed: harmless */
    mv_frame_request_free(NULL);
    mv_buf_free(&b);
}

/* Every prefix asks for more, never for less than it has nor beyond the
 * whole request; the whole request decodes. */
static void test_request_prefixes(void **state)
{
    (void)state;
    char *argv[] = {"list", "--limit", "3", "--format", "json"};
    mv_buf b = MV_BUF_INIT;
    encode(argv, 5, 0, &b);
    size_t last_need = 0;
    for (size_t n = 0; n < b.len; n++) {
        mv_frame_request req = {0};
        size_t need = 0;
        mv_err err = {0};
        assert_int_equal(mv_frame_request_decode(b.data, n, &req, &need, &err), MV_OK);
        assert_true(need > n);
        assert_true(need <= b.len);
        assert_true(need >= last_need);
        assert_null(req.argv);
        last_need = need;
    }
    mv_buf_free(&b);
}

typedef struct bad_req {
    const char *what;
    const char *bytes;
    size_t len;
    mv_status want;
} bad_req;

#define B(s) s, sizeof(s) - 1
static const bad_req bad_reqs[] = {
    {"not our magic", B("GET / HTTP/1.0\r\n"), MV_EMALFORMED},
    {"first byte wrong", B("X"), MV_EMALFORMED},
    {"version 2", B("MVRQ\x02"), MV_EMALFORMED},
    {"version 0", B("MVRQ\x00\x00\x00\x00\x00\x01"), MV_EMALFORMED},
    {"unknown flag", B("MVRQ\x01\x02"), MV_EMALFORMED},
    {"no command", B("MVRQ\x01\x00\x00\x00\x00\x00"), MV_EMALFORMED},
    {"too many arguments", B("MVRQ\x01\x00\x00\x00\x10\x01"), MV_ELIMIT},
    {"argc 2^32-1", B("MVRQ\x01\x00\xff\xff\xff\xff"), MV_ELIMIT},
    {"an argument of 4 GiB", B("MVRQ\x01\x00\x00\x00\x00\x01\xff\xff\xff\xff"), MV_ELIMIT},
    {"an argument past 1 MiB", B("MVRQ\x01\x00\x00\x00\x00\x01\x00\x10\x00\x00"), MV_ELIMIT},
    {"a NUL inside", B("MVRQ\x01\x00\x00\x00\x00\x01\x00\x00\x00\x03l\x00s"), MV_EMALFORMED},
    {"an empty command", B("MVRQ\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00"), MV_EMALFORMED},
};

static void test_request_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_reqs / sizeof *bad_reqs; i++) {
        const bad_req *c = &bad_reqs[i];
        mv_frame_request req = {0};
        size_t need = 0;
        mv_err err = {0};
        mv_status st =
            mv_frame_request_decode((const uint8_t *)c->bytes, c->len, &req, &need, &err);
        if (st != c->want)
            fail_msg("%s: status %d, want %d (%s)", c->what, st, c->want, err.msg);
        assert_true(err.msg[0] != '\0');
        assert_null(req.argv);
    }
}

/* Many small arguments: the total, not each one, is bounded. */
static void test_request_total_limit(void **state)
{
    (void)state;
    uint32_t argc = MV_FRAME_ARGS_MAX;
    mv_buf b = MV_BUF_INIT;
    mv_buf_append(&b, "MVRQ\x01\x00", 6);
    mv_buf_put_u32(&b, argc);
    uint8_t big[300];
    memset(big, 'a', sizeof big);
    for (uint32_t i = 0; i < argc; i++)
        mv_buf_put_lp(&b, big, sizeof big); /* 4096 x 304 bytes > 1 MiB */
    mv_frame_request req = {0};
    size_t need = 0;
    mv_err err = {0};
    assert_int_equal(mv_frame_request_decode(b.data, b.len, &req, &need, &err), MV_ELIMIT);
    mv_buf_free(&b);
}

static void test_request_encode_limits(void **state)
{
    (void)state;
    mv_buf b = MV_BUF_INIT;
    mv_err err = {0};
    char **many = calloc(MV_FRAME_ARGS_MAX + 1, sizeof *many);
    for (size_t i = 0; i <= MV_FRAME_ARGS_MAX; i++)
        many[i] = "x";
    assert_int_equal(mv_frame_request_encode(0, MV_FRAME_ARGS_MAX + 1, many, &b, &err), MV_ELIMIT);
    assert_int_equal(mv_frame_request_encode(0, MV_FRAME_ARGS_MAX, many, &b, &err), MV_OK);
    free(many);
    mv_buf_reset(&b);
    char *huge = malloc(MV_FRAME_REQUEST_MAX);
    memset(huge, 'y', MV_FRAME_REQUEST_MAX - 1);
    huge[MV_FRAME_REQUEST_MAX - 1] = '\0';
    char *argv[] = {"show", huge};
    assert_int_equal(mv_frame_request_encode(0, 2, argv, &b, &err), MV_ELIMIT);
    assert_int_equal(b.len, 0);
    /* the largest that fits */
    huge[MV_FRAME_REQUEST_MAX - MV_FRAME_REQ_HDR - 8 - 4] = '\0';
    assert_int_equal(mv_frame_request_encode(0, 2, argv, &b, &err), MV_OK);
    assert_int_equal(b.len, MV_FRAME_REQUEST_MAX);
    mv_frame_request req;
    size_t need;
    assert_int_equal(mv_frame_request_decode(b.data, b.len, &req, &need, &err), MV_OK);
    assert_int_equal(need, 0);
    mv_frame_request_free(&req);
    char *none[] = {NULL};
    assert_int_equal(mv_frame_request_encode(0, 0, none, &b, &err), MV_EUSAGE);
    assert_int_equal(mv_frame_request_encode(0x80, 2, argv, &b, &err), MV_EUSAGE);
    free(huge);
    mv_buf_free(&b);
}

/* ---- response frames ----------------------------------------------------------- */

static void test_frames(void **state)
{
    (void)state;
    size_t n = 150000;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7);
    mv_buf b = MV_BUF_INIT;
    mv_frame_put(&b, MV_FRAME_OUT, data, n);
    mv_frame_put(&b, MV_FRAME_ERR, "oops\n", 5);
    mv_frame_put(&b, MV_FRAME_OUT, "", 0); /* nothing */
    mv_frame_put_exit(&b, 77);
    assert_int_equal(b.len, n + 5 + 5 * 3 + 5 + 5 + 4);
    size_t pos = 0, got = 0, nframes = 0;
    mv_frame f;
    mv_err err = {0};
    for (;;) {
        size_t need;
        assert_int_equal(mv_frame_decode(b.data + pos, b.len - pos, &f, &need, &err), MV_OK);
        assert_int_equal(need, 0);
        nframes++;
        pos += f.size;
        if (f.type == MV_FRAME_OUT) {
            assert_true(f.len <= MV_FRAME_DATA_MAX);
            assert_memory_equal(f.data, data + got, f.len);
            got += f.len;
        } else if (f.type == MV_FRAME_ERR) {
            assert_memory_equal(f.data, "oops\n", 5);
        } else {
            assert_int_equal(f.type, MV_FRAME_EXIT);
            assert_int_equal(f.exit_code, 77);
            break;
        }
    }
    assert_int_equal(got, n);
    assert_int_equal(pos, b.len);
    assert_int_equal(nframes, 5); /* 64 KiB + 64 KiB + rest, E, X */
    /* short input asks for more */
    size_t need;
    assert_int_equal(mv_frame_decode(b.data, 3, &f, &need, &err), MV_OK);
    assert_int_equal(need, MV_FRAME_HDR);
    assert_int_equal(mv_frame_decode(b.data, 100, &f, &need, &err), MV_OK);
    assert_int_equal(need, MV_FRAME_HDR + MV_FRAME_DATA_MAX);
    free(data);
    mv_buf_free(&b);
}

static void test_frame_headers_hostile(void **state)
{
    (void)state;
    static const struct {
        const char *hdr;
        mv_status want;
    } cases[] = {
        {"O\x00\x00\x00\x00", MV_OK},
        {"E\x00\x01\x00\x00", MV_OK},
        {"O\x00\x01\x00\x01", MV_ELIMIT},
        {"E\xff\xff\xff\xff", MV_ELIMIT},
        {"X\x00\x00\x00\x04", MV_OK},
        {"X\x00\x00\x00\x03", MV_EMALFORMED},
        {"X\x00\x00\x00\x05", MV_EMALFORMED},
        {"Q\x00\x00\x00\x00", MV_EMALFORMED},
        {"\x00\x00\x00\x00\x00", MV_EMALFORMED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t type;
        uint32_t len;
        mv_err err = {0};
        mv_status st = mv_frame_header_parse((const uint8_t *)cases[i].hdr, &type, &len, &err);
        if (st != cases[i].want)
            fail_msg("case %zu: status %d, want %d", i, st, cases[i].want);
    }
}

/* ---- sockets ------------------------------------------------------------------- */

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void test_read_request(void **state)
{
    (void)state;
    int sv[2];
    mv_err err = {0};
    mv_frame_request req;
    char *argv[] = {"users", "list", "--format", "json"};
    mv_buf b = MV_BUF_INIT;
    encode(argv, 4, 0, &b);

    /* whole, in two pieces */
    pair(sv);
    assert_int_equal(write(sv[1], b.data, 7), 7);
    assert_int_equal(write(sv[1], b.data + 7, b.len - 7), (ssize_t)(b.len - 7));
    assert_int_equal(mv_frame_read_request(sv[0], 2000, &req, &err), MV_OK);
    assert_int_equal(req.argc, 4);
    assert_string_equal(req.argv[3], "json");
    mv_frame_request_free(&req);
    uid_t uid = (uid_t)-1;
    assert_int_equal(mv_frame_peer_uid(sv[0], &uid, &err), MV_OK);
    assert_int_equal(uid, getuid());
    close(sv[0]);
    close(sv[1]);

    /* bytes after the request */
    pair(sv);
    assert_int_equal(write(sv[1], b.data, b.len), (ssize_t)b.len);
    assert_int_equal(write(sv[1], "junk", 4), 4);
    assert_int_equal(mv_frame_read_request(sv[0], 2000, &req, &err), MV_EMALFORMED);
    assert_null(req.argv);
    close(sv[0]);
    close(sv[1]);

    /* closed half way */
    pair(sv);
    assert_int_equal(write(sv[1], b.data, b.len - 1), (ssize_t)(b.len - 1));
    close(sv[1]);
    assert_int_equal(mv_frame_read_request(sv[0], 2000, &req, &err), MV_ENOTFOUND);
    close(sv[0]);

    /* a client that sends part and then waits: the deadline */
    pair(sv);
    assert_int_equal(write(sv[1], b.data, 12), 12);
    assert_int_equal(mv_frame_read_request(sv[0], 200, &req, &err), MV_ETEMP);
    close(sv[0]);
    close(sv[1]);

    /* garbage is refused at once, not after the deadline */
    pair(sv);
    assert_int_equal(write(sv[1], "GET / HTTP/1.1\r\n", 16), 16);
    assert_int_equal(mv_frame_read_request(sv[0], 60000, &req, &err), MV_EMALFORMED);
    close(sv[0]);
    close(sv[1]);
    mv_buf_free(&b);
}

typedef struct reader {
    int fd;
    mv_buf got;
    uint32_t code;
    int frames;
    mv_status st;
} reader;

static void *read_frames(void *arg)
{
    reader *r = arg;
    uint8_t *buf = malloc(MV_FRAME_DATA_MAX);
    for (;;) {
        uint8_t hdr[MV_FRAME_HDR], type;
        uint32_t len;
        if ((r->st = mv_frame_recv(r->fd, hdr, sizeof hdr, NULL)) ||
            (r->st = mv_frame_header_parse(hdr, &type, &len, NULL)) ||
            (r->st = mv_frame_recv(r->fd, buf, len, NULL)))
            break;
        r->frames++;
        if (type == MV_FRAME_EXIT) {
            r->code = mv_be32_get(buf);
            break;
        }
        mv_buf_append(&r->got, buf, len);
    }
    free(buf);
    return NULL;
}

static void test_write_frames(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    reader r = {sv[0], MV_BUF_INIT, 0, 0, MV_OK};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, read_frames, &r), 0);
    size_t n = 1000000;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i % 251);
    mv_err err = {0};
    assert_int_equal(mv_frame_write(sv[1], MV_FRAME_OUT, data, n, &err), MV_OK);
    assert_int_equal(mv_frame_write_exit(sv[1], 3, &err), MV_OK);
    pthread_join(th, NULL);
    assert_int_equal(r.st, MV_OK);
    assert_int_equal(r.code, 3);
    assert_int_equal(r.got.len, n);
    assert_memory_equal(r.got.data, data, n);
    assert_int_equal(r.frames, (int)((n + MV_FRAME_DATA_MAX - 1) / MV_FRAME_DATA_MAX) + 1);
    /* the reader is gone: a send fails (no SIGPIPE) */
    close(sv[0]);
    assert_int_equal(mv_frame_write(sv[1], MV_FRAME_OUT, data, n, &err), MV_EIO);
    /* and reading from a closed peer says so */
    int sv2[2];
    pair(sv2);
    close(sv2[1]);
    uint8_t x;
    assert_int_equal(mv_frame_recv(sv2[0], &x, 1, &err), MV_ENOTFOUND);
    close(sv2[0]);
    close(sv[1]);
    free(data);
    mv_buf_free(&r.got);
}

static void test_connect(void **state)
{
    (void)state;
    char dir[256], path[300];
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/mvframe.XXXXXX", t && *t ? t : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/s.sock", dir);
    int fd;
    mv_err err = {0};
    /* nothing there: run in-process */
    assert_int_equal(mv_frame_connect(path, &fd, &err), MV_ENOTFOUND);
    assert_int_equal(fd, -1);
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    assert_int_equal(mv_frame_connect(longp, &fd, &err), MV_ENOTFOUND);
    /* a listener */
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(mv_frame_connect(path, &fd, &err), MV_OK);
    assert_true(fd >= 0);
    close(fd);
    /* a stale socket, as a crashed daemon leaves it: refused, so absent */
    close(l);
    assert_int_equal(mv_frame_connect(path, &fd, &err), MV_ENOTFOUND);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_roundtrip),
        cmocka_unit_test(test_request_prefixes),
        cmocka_unit_test(test_request_malformed),
        cmocka_unit_test(test_request_total_limit),
        cmocka_unit_test(test_request_encode_limits),
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_frame_headers_hostile),
        cmocka_unit_test(test_read_request),
        cmocka_unit_test(test_write_frames),
        cmocka_unit_test(test_connect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
