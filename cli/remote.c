/* SPDX-License-Identifier: MIT */
/* remote.c - commands through the daemon's control socket (docs/protocol.md).
 *
 * Client side (cli_remote): find the archive and its socket the way the
 * commands would, send the command line without the options that name the
 * archive or its keys, copy the answer's frames to fd 1 and 2 as they
 * come, exit with the daemon's code.
 *
 * Daemon side (cli_control_handle): one request per connection, run in
 * the calling thread with cli_out / cli_err writing frames straight to
 * the socket (nothing accumulates: `show --raw` of any size streams in
 * frames of at most 64 KiB), as the user the kernel says is at the other
 * end (SO_PEERCRED).
 *
 * SECURITY: the daemon trusts nothing the client says about itself; the
 * request is bounded (MV_FRAME_REQUEST_MAX, MV_FRAME_ARGS_MAX) and must
 * arrive within CLI_CONTROL_READ_TIMEOUT_MS; a client that stops reading
 * is dropped after CLI_CONTROL_SEND_TIMEOUT_S.  Inside the daemon the
 * options naming an archive, key or socket are refused (cli_global_opt). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/frame.h"
#include "../lib/log.h"
#include "../lib/util.h"
#include "cli.h"

char *cli_socket_path(const char *archive)
{
    const char *e = getenv("MAILVAULT_SOCKET");
    if (e && *e)
        return mv_xstrdup(e);
    return mv_xasprintf("%s/%s", archive, MV_CONTROL_SOCKET);
}

/* ---- client ------------------------------------------------------------------ */

/* The global options (CLI_GLOBAL_OPTS).  The client drops the first four:
 * the daemon owns the archive and its keys, and refuses them. */
enum { G_ARCHIVE, G_KEY, G_PASS, G_SOCKET, G_FORMAT, G_HELP, G_COUNT };
static const char *const gnames[G_COUNT] = {"archive", "key-file", "passphrase-file",
                                            "socket",  "format",   "help"};

/* global_opt - which global option arg spells ("--name", "--name=value",
 * or an unambiguous abbreviation of 3 or more letters, as getopt_long
 * would take it), or -1.  *val: the value after '=', or NULL. */
static int global_opt(const char *arg, const char **val)
{
    *val = NULL;
    if (strncmp(arg, "--", 2) != 0 || !arg[2])
        return -1;
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t l = eq ? (size_t)(eq - name) : strlen(name);
    int found = -1, n = 0;
    for (int g = 0; g < G_COUNT; g++) {
        if (strlen(gnames[g]) == l && memcmp(gnames[g], name, l) == 0) {
            found = g, n = 1;
            break;
        }
        if (l >= 3 && strncmp(gnames[g], name, l) == 0)
            found = g, n++;
    }
    if (n != 1)
        return -1;
    if (eq)
        *val = eq + 1;
    return found;
}

/* copy_out - copy len payload bytes from the socket to fd, in pieces. */
static mv_status copy_out(int sock, int fd, uint32_t len, uint8_t *buf, int *write_failed,
                          mv_err *err)
{
    while (len) {
        uint32_t n = len > MV_FRAME_DATA_MAX ? MV_FRAME_DATA_MAX : len;
        mv_status st = mv_frame_recv(sock, buf, n, err);
        if (st)
            return st;
        if (!*write_failed && mv_write_all(fd, buf, n, NULL) != MV_OK)
            *write_failed = 1; /* keep reading: the exit code still comes */
        len -= n;
    }
    return MV_OK;
}

/* Options naming a small file the command reads (a tree head): the
 * daemon never opens a file a client names, so the client reads it and
 * sends its text under the option's -text twin. */
static const struct {
    const char *cmd, *opt, *text_opt;
} inlined[] = {{"verify", "--from-checkpoint", "--checkpoint-text"},
               {"proof", "--head", "--head-text"}};
#define INLINE_MAX 65536u

/* inline_file - "--TEXT_OPT=<contents of path>" (owned), or NULL with a
 * message printed. */
static char *inline_file(const char *cmd, const char *text_opt, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(cli_err, "mailvault %s: cannot open %s: %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    mv_buf b = MV_BUF_INIT;
    mv_buf_printf(&b, "%s=", text_opt);
    char chunk[4096];
    size_t r, start = b.len;
    int bad = 0;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0 && !bad) {
        bad = b.len - start + r > INLINE_MAX || memchr(chunk, 0, r) != NULL;
        mv_buf_append(&b, chunk, r);
    }
    bad = bad || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(cli_err, "mailvault %s: %s is not a tree head (unreadable, binary or over %u "
                         "bytes)\n", cmd, path, INLINE_MAX);
        mv_buf_free(&b);
        return NULL;
    }
    mv_buf_append_byte(&b, 0);
    return (char *)mv_buf_steal(&b, NULL);
}

int cli_remote(int argc, char **argv, int *rc)
{
    const char *archive = NULL, *sockopt = NULL;
    char **sent = mv_xcalloc((size_t)argc + 1, sizeof *sent);
    char *owned[4] = {NULL, NULL, NULL, NULL};
    size_t n = 0, nowned = 0;
    sent[n++] = argv[0];
    for (int j = 1; j < argc; j++) {
        const char *val;
        int g = global_opt(argv[j], &val);
        if (strcmp(argv[j], "--") == 0) {
            while (j < argc)
                sent[n++] = argv[j++];
            break;
        }
        int inl = -1;
        for (size_t i = 0; i < sizeof inlined / sizeof *inlined && inl < 0; i++) {
            size_t ol = strlen(inlined[i].opt);
            if (strcmp(argv[0], inlined[i].cmd) == 0 && strncmp(argv[j], inlined[i].opt, ol) == 0 &&
                (argv[j][ol] == 0 || argv[j][ol] == '='))
                inl = (int)i;
        }
        if (inl >= 0 && nowned < 4) {
            const char *eq = strchr(argv[j], '='), *file = eq ? eq + 1 : j + 1 < argc ? argv[++j] : "";
            char *arg = inline_file(argv[0], inlined[inl].text_opt, file);
            if (!arg) {
                *rc = EXIT_NOINPUT;
                for (size_t i = 0; i < nowned; i++)
                    free(owned[i]);
                free(sent);
                return 1;
            }
            sent[n++] = owned[nowned++] = arg;
            continue;
        }
        if (g == G_ARCHIVE || g == G_KEY || g == G_PASS || g == G_SOCKET) {
            if (!val && j + 1 < argc)
                val = argv[++j];
            if (g == G_ARCHIVE)
                archive = val;
            else if (g == G_SOCKET)
                sockopt = val;
            continue;
        }
        sent[n++] = argv[j];
        if (g == G_FORMAT && !val && j + 1 < argc)
            sent[n++] = argv[++j];
    }
    if (!archive) {
        archive = getenv("MAILVAULT_ARCHIVE");
        if (!archive || !*archive)
            archive = "./archive";
    }
    char *path = sockopt && *sockopt ? mv_xstrdup(sockopt) : cli_socket_path(archive);
    mv_err err = {0};
    mv_buf req = MV_BUF_INIT;
    uint8_t *buf = NULL;
    int fd = -1, handled = 1, write_failed = 0;
    mv_status st = mv_frame_connect(path, &fd, &err);
    if (st == MV_ENOTFOUND) {
        handled = 0; /* no daemon: the command opens the archive itself */
        goto out;
    }
    if (st) {
        fprintf(cli_err, "mailvault %s: cannot reach the daemon: %s\n", argv[0], err.msg);
        *rc = st == MV_EPERM ? EXIT_NOPERM : EXIT_TEMPFAIL;
        goto out;
    }
    if ((st = mv_frame_request_encode(isatty(STDERR_FILENO) ? MV_FRAME_FLAG_TTY : 0, n, sent, &req,
                                      &err))) {
        fprintf(cli_err, "mailvault %s: %s\n", argv[0], err.msg);
        *rc = EXIT_USAGE;
        goto out;
    }
    if ((st = mv_frame_send(fd, req.data, req.len, &err)))
        goto closed;
    buf = mv_xmalloc(MV_FRAME_DATA_MAX);
    for (;;) {
        uint8_t hdr[MV_FRAME_HDR], type;
        uint32_t len;
        if ((st = mv_frame_recv(fd, hdr, sizeof hdr, &err)))
            goto closed;
        if ((st = mv_frame_header_parse(hdr, &type, &len, &err))) {
            fprintf(cli_err, "mailvault %s: the daemon answered out of protocol: %s\n", argv[0],
                    err.msg);
            *rc = EXIT_TEMPFAIL;
            goto out;
        }
        if (type == MV_FRAME_EXIT) {
            if ((st = mv_frame_recv(fd, buf, 4, &err)))
                goto closed;
            uint32_t code = mv_be32_get(buf);
            *rc = code > 255 ? EXIT_SOFTWARE : (int)code;
            if (write_failed && *rc == EXIT_OK)
                *rc = EXIT_IOERR;
            goto out;
        }
        if ((st = copy_out(fd, type == MV_FRAME_OUT ? STDOUT_FILENO : STDERR_FILENO, len, buf,
                           &write_failed, &err)))
            goto closed;
    }
closed:
    fprintf(cli_err, "mailvault %s: the daemon closed the connection\n", argv[0]);
    *rc = EXIT_TEMPFAIL;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    mv_buf_free(&req);
    free(path);
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    free(sent);
    return handled;
}

/* ---- daemon ------------------------------------------------------------------ */

typedef struct conn {
    int fd;
    int dead; /* a send failed: the client is gone or stopped reading */
} conn;

typedef struct sink {
    conn *c;
    uint8_t type;
    FILE *flush_first; /* for 'E': standard output written before it goes first */
} sink;

/* sink_write - a stdio cookie writer: each buffer becomes frames on the
 * socket at once (fopencookie wants the count written, 0 on error). */
static ssize_t sink_write(void *cookie, const char *p, size_t n)
{
    sink *k = cookie;
    if (k->flush_first)
        fflush(k->flush_first);
    if (k->c->dead)
        return 0;
    if (mv_frame_write(k->c->fd, k->type, p, n, NULL) != MV_OK) {
        k->c->dead = 1;
        return 0;
    }
    return (ssize_t)n;
}

static FILE *sink_open(sink *k, char *buf, size_t size, int mode)
{
    cookie_io_functions_t io = {.read = NULL, .write = sink_write, .seek = NULL, .close = NULL};
    FILE *f = fopencookie(k, "w", io);
    mv_assert(f != NULL); /* only fails for lack of memory, which aborts everywhere */
    setvbuf(f, buf, mode, size);
    return f;
}

int cli_control_handle(int fd, mv_store *s, uid_t peer_uid)
{
    mv_err err = {0};
    mv_frame_request req;
    int rc;
    if (mv_frame_send_timeout(fd, CLI_CONTROL_SEND_TIMEOUT_S, &err) != MV_OK)
        mv_log_warn("control: uid=%lu %s", (unsigned long)peer_uid, err.msg);
    mv_status st = mv_frame_read_request(fd, CLI_CONTROL_READ_TIMEOUT_MS, &req, &err);
    if (st) {
        rc = st == MV_ETEMP ? EXIT_TEMPFAIL : EXIT_USAGE;
        if (st == MV_ENOTFOUND) {
            /* A connection that only checks the daemon is there. */
            mv_log_debug("control: uid=%lu %s", (unsigned long)peer_uid, err.msg);
            return rc;
        }
        mv_log_warn("control: uid=%lu bad request: %s", (unsigned long)peer_uid, err.msg);
        char *m = mv_xasprintf("mailvault: bad request: %s\n", err.msg);
        if (mv_frame_write(fd, MV_FRAME_ERR, m, strlen(m), NULL) == MV_OK &&
            mv_frame_write_exit(fd, (uint32_t)rc, NULL) != MV_OK)
            mv_log_debug("control: uid=%lu went away", (unsigned long)peer_uid);
        free(m);
        return rc;
    }

    conn cn = {fd, 0};
    sink so = {&cn, MV_FRAME_OUT, NULL}, se = {&cn, MV_FRAME_ERR, NULL};
    char *obuf = mv_xmalloc(MV_FRAME_DATA_MAX), *ebuf = mv_xmalloc(8192);
    FILE *o = sink_open(&so, obuf, MV_FRAME_DATA_MAX, _IOFBF);
    FILE *e = sink_open(&se, ebuf, 8192, _IOLBF);
    se.flush_first = o;

    FILE *prev_out = cli_out, *prev_err = cli_err;
    int prev_in = cli_in_daemon;
    mv_store *prev_store = cli_served_store;
    uid_t prev_uid = cli_peer_uid;
    cli_out = o;
    cli_err = e;
    cli_in_daemon = 1;
    cli_served_store = s;
    cli_peer_uid = peer_uid;

    const cli_command *c = cli_find_command(req.argv[0]);
    if (!c) {
        char name[64];
        mv_log_safe(req.argv[0], strlen(req.argv[0]), name, sizeof name);
        fprintf(e, "mailvault: unknown command '%s'\n", name);
        rc = EXIT_USAGE;
    } else if (c->daemon_refusal) {
        fprintf(e, "mailvault %s: the archive is served by a running daemon; stop it first (%s)\n",
                c->name, c->daemon_refusal);
        rc = EXIT_TEMPFAIL;
    } else {
        rc = c->fn((int)req.argc, req.argv);
    }
    mv_log_info("control: uid=%lu command=%s exit=%d%s", (unsigned long)peer_uid,
                c ? c->name : "(unknown)", rc, cn.dead ? " client=gone" : "");

    fflush(e); /* and, first, o */
    se.flush_first = NULL;
    fclose(o);
    fclose(e);
    free(obuf);
    free(ebuf);
    if (!cn.dead && mv_frame_write_exit(fd, (uint32_t)rc, NULL) != MV_OK)
        mv_log_debug("control: uid=%lu went away before the exit code", (unsigned long)peer_uid);
    cli_out = prev_out;
    cli_err = prev_err;
    cli_in_daemon = prev_in;
    cli_served_store = prev_store;
    cli_peer_uid = prev_uid;
    mv_frame_request_free(&req);
    return rc;
}
