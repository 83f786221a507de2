/* SPDX-License-Identifier: MIT */
/* frame.h - the control protocol's wire format (docs/protocol.md): one
 * request from a client to the daemon, then frames back.
 *
 * Request:  "MVRQ" | u8 version 1 | u8 flags | u32 argc |
 *           argc x (u32 length | bytes)                     (integers BE)
 * Response: frames u8 type | u32 length | bytes: 'O' standard output,
 *           'E' standard error, then exactly one 'X' (length 4, u32 exit
 *           code), then the daemon closes the connection.
 *
 * The codec functions are pure (bytes in, bytes or a result out) so they
 * can be unit-tested and fuzzed; the I/O helpers below them are thin
 * wrappers over sockets, kept here because only lib/ reads errno.
 * Both ends treat what they receive as hostile: every length is checked
 * against the named limits before anything is allocated. */
#ifndef MV_LIB_FRAME_H
#define MV_LIB_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"

#define MV_FRAME_MAGIC "MVRQ"
#define MV_FRAME_VERSION 1
/* flags: bit 0 - the client's standard error is a terminal; other bits
 * must be zero in version 1. */
#define MV_FRAME_FLAG_TTY 0x01u
#define MV_FRAME_FLAGS_KNOWN MV_FRAME_FLAG_TTY

/* Limits.  A request is a command line: 1 MiB is far more than any real
 * one, and bounds what a hostile local client can make the daemon hold. */
#define MV_FRAME_REQUEST_MAX (1u << 20) /* bytes in one request, header included */
#define MV_FRAME_ARGS_MAX 4096u         /* arguments in one request (command name included) */
#define MV_FRAME_DATA_MAX 65536u        /* payload bytes of one response frame */
#define MV_FRAME_REQ_HDR 10u            /* magic, version, flags, argc */
#define MV_FRAME_HDR 5u                 /* type, length */

enum { MV_FRAME_OUT = 'O', MV_FRAME_ERR = 'E', MV_FRAME_EXIT = 'X' };

/* A decoded request.  argv holds argc NUL-terminated strings and a NULL
 * after them, all owned by the request (mv_frame_request_free). */
typedef struct mv_frame_request {
    uint8_t flags;
    size_t argc;
    char **argv;
    size_t size; /* bytes the request took on the wire */
} mv_frame_request;

/* mv_frame_request_encode - append the request for argv[0..argc) to out.
 * Arguments are C strings (the protocol is binary-safe; C argv is not).
 * @retval MV_ELIMIT      more than MV_FRAME_ARGS_MAX arguments, or more
 *                        than MV_FRAME_REQUEST_MAX bytes (out unchanged)
 * @retval MV_EUSAGE      argc is 0 or flags has unknown bits */
MV_NODISCARD mv_status mv_frame_request_encode(uint8_t flags, size_t argc, char *const *argv,
                                               mv_buf *out, mv_err *err);

/* mv_frame_request_decode - decode a request from the n bytes at p.
 * When p holds a whole request: MV_OK, *need = 0 and *req filled (the
 * caller frees it; req->size says how many bytes it took).  When p is a
 * valid but short prefix: MV_OK and *need = the total byte count to have
 * before calling again (always > n, never > MV_FRAME_REQUEST_MAX); *req is
 * untouched.
 * @retval MV_EMALFORMED  bad magic, version or flags; argc 0; an argument
 *                        holding a NUL byte; an empty command name
 * @retval MV_ELIMIT      too many arguments or too many bytes */
MV_NODISCARD mv_status mv_frame_request_decode(const uint8_t *p, size_t n, mv_frame_request *req,
                                               size_t *need, mv_err *err);
void mv_frame_request_free(mv_frame_request *req); /* NULL and zeroed requests ok */

/* A decoded response frame; data borrowed from the input. */
typedef struct mv_frame {
    uint8_t type; /* MV_FRAME_OUT / _ERR / _EXIT */
    uint32_t len; /* payload length */
    const uint8_t *data;
    uint32_t exit_code; /* for MV_FRAME_EXIT */
    size_t size;        /* header + payload */
} mv_frame;

/* mv_frame_header - the 5-byte header of a frame (len <= MV_FRAME_DATA_MAX). */
void mv_frame_header(uint8_t hdr[MV_FRAME_HDR], uint8_t type, uint32_t len);
/* mv_frame_put - append frames carrying p[0..n) to out, split at
 * MV_FRAME_DATA_MAX (nothing for n = 0). */
void mv_frame_put(mv_buf *out, uint8_t type, const void *p, size_t n);
void mv_frame_put_exit(mv_buf *out, uint32_t code);
/* mv_frame_header_parse - check a received header.
 * @retval MV_EMALFORMED  unknown type, or an 'X' frame whose length is not 4
 * @retval MV_ELIMIT      length above MV_FRAME_DATA_MAX */
MV_NODISCARD mv_status mv_frame_header_parse(const uint8_t hdr[MV_FRAME_HDR], uint8_t *type,
                                             uint32_t *len, mv_err *err);
/* mv_frame_decode - one whole frame from p[0..n): MV_OK with *need = 0 and
 * *f filled, or MV_OK with *need > n (read more); errors as
 * mv_frame_header_parse. */
MV_NODISCARD mv_status mv_frame_decode(const uint8_t *p, size_t n, mv_frame *f, size_t *need,
                                       mv_err *err);

/* ---- socket helpers (they read errno) ------------------------------------ */

/* mv_frame_connect - connect to the UNIX socket at path; *fd on success
 * (close-on-exec).
 * @retval MV_ENOTFOUND   nothing listens there: no such file, a stale
 *                        socket (connection refused), or a path too long
 *                        to be a socket address (so none can be bound)
 * @retval MV_EPERM       the socket exists but the caller may not use it
 * @retval MV_EIO         any other failure */
MV_NODISCARD mv_status mv_frame_connect(const char *path, int *fd, mv_err *err);
/* mv_frame_send - send all n bytes (never raises SIGPIPE).
 * @retval MV_EIO  the peer went away, or the send timed out */
MV_NODISCARD mv_status mv_frame_send(int fd, const void *p, size_t n, mv_err *err);
/* mv_frame_write - send p[0..n) as frames of type (split at MV_FRAME_DATA_MAX). */
MV_NODISCARD mv_status mv_frame_write(int fd, uint8_t type, const void *p, size_t n, mv_err *err);
MV_NODISCARD mv_status mv_frame_write_exit(int fd, uint32_t code, mv_err *err);
/* mv_frame_recv - receive exactly n bytes.
 * @retval MV_ENOTFOUND  the peer closed the connection first
 * @retval MV_EIO        a read error */
MV_NODISCARD mv_status mv_frame_recv(int fd, void *p, size_t n, mv_err *err);
/* mv_frame_read_request - read and decode one request, which must arrive
 * whole within timeout_ms (a deadline for the request, not per read: a
 * client trickling bytes cannot hold the reader longer).
 * @retval MV_ETEMP      the deadline passed
 * @retval MV_ENOTFOUND  the client closed the connection before a whole request
 * @retval MV_EMALFORMED / MV_ELIMIT  as mv_frame_request_decode, and bytes
 *                       sent after the request */
MV_NODISCARD mv_status mv_frame_read_request(int fd, int timeout_ms, mv_frame_request *req,
                                             mv_err *err);
/* mv_frame_peer_uid - the uid of the process at the other end of a UNIX
 * socket, from the kernel (SO_PEERCRED), never from the peer's words. */
MV_NODISCARD mv_status mv_frame_peer_uid(int fd, uid_t *uid, mv_err *err);
/* mv_frame_send_timeout - fail sends that block longer than seconds. */
MV_NODISCARD mv_status mv_frame_send_timeout(int fd, unsigned seconds, mv_err *err);

#endif
