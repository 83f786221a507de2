/* SPDX-License-Identifier: MIT */
/* smtp.h - the SMTP (RFC 5321) / LMTP (RFC 2033) protocol engine, sans I/O.
 *
 * The engine is a pure state machine: no sockets, threads or clock.  The
 * daemon reads bytes from its socket (or TLS), passes them to
 * mv_smtp_feed, sends what mv_smtp_output holds, and reacts to the event
 * mv_smtp_event reports.  Everything the client can do is reachable by
 * feeding bytes, so a fuzzer drives the engine completely.
 *
 * Policy in one paragraph (docs/smtp.md has every reply): only
 * CRLF "." CRLF ends DATA; bare CR and bare LF in data are kept as they
 * came and counted, never treated as line ends; commands accept CRLF or a
 * bare LF as terminator; every buffer is bounded by a named limit.
 *
 * Threads: one mv_smtp belongs to one thread at a time; different
 * sessions share nothing.  No function here can fail: allocation aborts
 * (mv_xmalloc), and bad input only ever produces reply lines. */
#ifndef MV_INGEST_SMTP_H
#define MV_INGEST_SMTP_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

/* Pending output above this stops mv_smtp_feed before the next command, so
 * a client that pipelines without reading cannot grow our memory.  One
 * command's reply may still go past it (an LMTP batch: one line per
 * recipient). */
#define MV_SMTP_OUTPUT_MAX ((size_t)64 << 10)
/* Longest reply line we write, CRLF included (RFC 5321 4.5.3.1.5). */
#define MV_SMTP_REPLY_MAX 512
/* Longest reverse- or forward-path, angle brackets included
 * (RFC 5321 4.5.3.1.3); longer: 501 5.1.7 (MAIL) / 501 5.1.3 (RCPT). */
#define MV_SMTP_PATH_MAX 256
/* Longest EHLO/HELO/LHLO argument (a domain is at most 255 octets). */
#define MV_SMTP_HELO_MAX 255
/* max_command_line is never set below the RFC minimum. */
#define MV_SMTP_COMMAND_LINE_MIN 512

typedef struct mv_smtp mv_smtp;

typedef enum mv_smtp_proto { MV_SMTP = 0, MV_LMTP } mv_smtp_proto;

/* A field left 0 means its default. */
typedef struct mv_smtp_limits {
    uint64_t max_message_bytes; /* SIZE advertised; default 100 MiB (Exchange max 150 MB is
                                   configured by operators) */
    unsigned max_recipients;    /* per transaction; default 1000; over it: 452 4.5.3 */
    size_t max_command_line;    /* bytes incl CRLF; default 4096 (RFC minimum 512, which is
                                   also our floor); longer: 500 5.5.2 after discarding to the
                                   line end */
    unsigned max_errors;        /* bad commands per session before 421 4.7.0 and close;
                                   default 20 */
} mv_smtp_limits;

/* mv_smtp_limits_default - fill l with the defaults above. */
void mv_smtp_limits_default(mv_smtp_limits *l);

typedef struct mv_smtp_opts {
    mv_smtp_proto proto;
    const char *hostname; /* in greeting and EHLO reply; NULL: "localhost"; copied,
                             unprintable bytes become '?' */
    int tls_offer;        /* advertise STARTTLS (not after TLS is active) */
    int tls_required;     /* MAIL before TLS -> 530 5.7.0 Must issue a STARTTLS command first */
    mv_smtp_limits lim;
} mv_smtp_opts;

/* The event type is spelled `enum mv_smtp_event` (alias mv_smtp_ev): a
 * typedef named mv_smtp_event would collide with the function
 * mv_smtp_event() below, since both live in C's ordinary name space. */
enum mv_smtp_event {
    MV_SMTP_EV_NONE = 0, /* feed more input */
    MV_SMTP_EV_MESSAGE,  /* a transaction's data is complete (DATA's CRLF.CRLF or BDAT LAST):
                            take it with mv_smtp_message(), make it durable, then answer with
                            mv_smtp_reply_accept/_tempfail/_reject (or _rcpt); the engine
                            consumes no input until then */
    MV_SMTP_EV_STARTTLS, /* "220 2.0.0 Ready to start TLS" is queued: flush the output, DISCARD
                            every input byte not yet consumed, do the handshake, then call
                            mv_smtp_tls_started() */
    MV_SMTP_EV_CLOSE,    /* flush the output, then close (after QUIT, 421s, too many errors,
                            an unreadable or oversized BDAT); final */
};
typedef enum mv_smtp_event mv_smtp_ev;

/* mv_smtp_new - a session; queues the 220 greeting ("220 host ESMTP ready",
 * LMTP "220 host LMTP ready").  o is copied (o->hostname too); the caller
 * owns the result and frees it with mv_smtp_free.  Never NULL. */
mv_smtp *mv_smtp_new(const mv_smtp_opts *o);
/* mv_smtp_free - release everything, including message data not taken;
 * NULL is fine. */
void mv_smtp_free(mv_smtp *s);

/* mv_smtp_feed - consume input p[0..n) (borrowed for the call only);
 * returns the bytes consumed.  Fewer than n when an event is pending or
 * was raised by these bytes (the engine never reads past the line end of
 * a command that switches mode: STARTTLS, QUIT; nor past the end of a
 * message's data), or when more than MV_SMTP_OUTPUT_MAX bytes of output
 * wait: send them, call mv_smtp_output_consumed, feed the rest again.
 * After each call check mv_smtp_event().  Input may be split anywhere:
 * the result never depends on how it was cut. */
size_t mv_smtp_feed(mv_smtp *s, const uint8_t *p, size_t n);
/* mv_smtp_event - the pending event (MV_SMTP_EV_NONE: feed more). */
enum mv_smtp_event mv_smtp_event(const mv_smtp *s);

/* mv_smtp_output - bytes to send (whole CRLF-terminated reply lines;
 * PIPELINING: replies batched, strictly in command order); *n gets the
 * count.  Borrowed: valid until the next call on s.  Flush when the input
 * buffer is empty, and always before acting on an event. */
const uint8_t *mv_smtp_output(const mv_smtp *s, size_t *n);
/* mv_smtp_output_consumed - n bytes of the output were sent (n larger than
 * what is pending counts as all of it). */
void mv_smtp_output_consumed(mv_smtp *s, size_t n);

typedef struct mv_smtp_txn {
    const char *helo;       /* EHLO/HELO/LHLO argument as given (at most MV_SMTP_HELO_MAX) */
    const char *mail_from;  /* reverse-path without <> and source route ("" for the null path) */
    char *const *rcpt;      /* forward-paths without <>, in order, only the accepted ones */
    size_t n_rcpt;
    uint64_t declared_size; /* SIZE= or 0 */
    int body_8bit, body_binary, smtputf8, used_bdat;
    int bare_lf, bare_cr;   /* counts>0: data contained bare LF / bare CR (kept as they came;
                               the daemon records a defect).  Counted for BDAT data too, where
                               BODY=BINARYMIME makes them meaningless */
    const uint8_t *data;    /* the message bytes exactly as sent after dot-unstuffing (BDAT:
                               concatenated chunks); followed by a NUL not counted in len;
                               NULL (and len 0) after mv_smtp_take_data */
    size_t len;
} mv_smtp_txn;

/* mv_smtp_message - the transaction whose data is complete; NULL unless
 * MV_SMTP_EV_MESSAGE is pending.  Borrowed: every pointer in it stays
 * valid until the message is answered (or the session freed). */
const mv_smtp_txn *mv_smtp_message(const mv_smtp *s);
/* mv_smtp_take_data - hand the data buffer (malloc'd, NUL after len; the
 * caller frees it) to the caller, so a big message is not copied; later
 * mv_smtp_message()->data is NULL.  NULL (and *len 0) when no message is
 * pending or the data was already taken; an empty message gives a
 * 1-byte buffer holding the NUL. */
uint8_t *mv_smtp_take_data(mv_smtp *s, size_t *len);

/* Answers to a pending message: SMTP gets one reply; LMTP one reply per
 * accepted RCPT, in RCPT order (RFC 2033).  Each call below answers every
 * recipient not yet answered, then clears the event and resets the
 * transaction (the HELO name stays).  Called with no message pending they
 * do nothing.  Texts are borrowed; control and 8-bit bytes in them are
 * sent as '?', and a line is cut to MV_SMTP_REPLY_MAX. */
/* "250 2.0.0 Ok: queued as ID" / LMTP "250 2.1.5 <rcpt> Ok: ID" (queue_id NULL: no ID) */
void mv_smtp_reply_accept(mv_smtp *s, const char *queue_id);
/* "451 4.3.0 text" (LMTP: "451 4.3.0 <rcpt> text" for each) - the daemon's "could not
 * persist"; text NULL: a default */
void mv_smtp_reply_tempfail(mv_smtp *s, const char *text);
/* permanent or custom (e.g. 552 5.3.4, 452 4.3.1).  code outside 400..599
 * is sent as 451 4.3.0 (a daemon bug must not bounce mail); enh NULL or
 * not "c.d.d" with c the code's class gives "c.0.0". */
void mv_smtp_reply_reject(mv_smtp *s, int code, const char *enh, const char *text);
/* mv_smtp_reply_rcpt - answer only the next recipient not yet answered
 * (LMTP: recipients can differ, e.g. one custodian store failing); in SMTP
 * this is the one reply.  code/enh checked as for _reject; text NULL: "Ok"
 * for 2xx, else "Error".  The event clears after the last recipient. */
void mv_smtp_reply_rcpt(mv_smtp *s, int code, const char *enh, const char *text);

/* mv_smtp_tls_started - the handshake is done: forget all pre-TLS state
 * (HELO, transaction, unsent output, partial command); the client must
 * EHLO again; STARTTLS is no longer offered.  Only meaningful while
 * MV_SMTP_EV_STARTTLS is pending; otherwise ignored. */
void mv_smtp_tls_started(mv_smtp *s);
/* mv_smtp_timeout - queue "421 4.4.2 <host> Error: timeout exceeded",
 * event CLOSE (replaces any pending event). */
void mv_smtp_timeout(mv_smtp *s);
/* mv_smtp_shutdown - queue "421 4.3.2 <host> Service shutting down", event
 * CLOSE (replaces any pending event; with LMTP data pending, one reply
 * per recipient is no longer possible: just the 421). */
void mv_smtp_shutdown(mv_smtp *s);

/* mv_smtp_in_data - 1 while a message is being transferred (inside DATA
 * or a BDAT chunk, or between the chunks of a BDAT transaction): the
 * daemon lets such a session finish before a shutdown, and applies the
 * data timeout instead of the command timeout. */
int mv_smtp_in_data(const mv_smtp *s);

/* Counters for the daemon's status and logs: command lines read (too long
 * ones included), errors counted toward max_errors, messages whose data
 * completed (MESSAGE events), and message bytes received (after
 * unstuffing, oversized ones included). */
typedef struct mv_smtp_counters {
    uint64_t commands, errors, messages, bytes;
} mv_smtp_counters;
void mv_smtp_counters_get(const mv_smtp *s, mv_smtp_counters *c);

#endif
