/* SPDX-License-Identifier: MIT */
/* fuzz_smtp.c - libFuzzer target: a whole SMTP/LMTP session through the
 * engine, the way the daemon drives it.
 *
 * Input: byte 0 picks the options (bit 0 LMTP, bit 1 tls_offer, bit 2
 * tls_required, bit 3 tight limits, bits 4-7 the message size limit when
 * tight); byte 1 seeds the chunk sizes and the answers to messages; the
 * rest is what the client sends.  Invariants: the output is only
 * well-formed reply lines, a message never exceeds the limit, LMTP gets
 * one reply per recipient, feed never reports more than it was given and
 * never stalls without a reason. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../ingest/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t next(uint32_t *st)
{
    *st = *st * 1103515245u + 12345u;
    return *st >> 16;
}

/* check_output - whole reply lines "ddd[- ]text\r\n", printable, at most
 * MV_SMTP_REPLY_MAX; continuation lines keep the code; the batch ends on
 * a final line.  Returns the number of final lines. */
static size_t check_output(const uint8_t *p, size_t n)
{
    size_t i = 0, finals = 0;
    int cont_code = -1;
    while (i < n) {
        size_t start = i;
        if (n - i < 6)
            __builtin_trap();
        for (int k = 0; k < 3; k++)
            if (p[i + k] < '0' || p[i + k] > '9')
                __builtin_trap();
        int code = (p[i] - '0') * 100 + (p[i + 1] - '0') * 10 + (p[i + 2] - '0');
        if (code < 200 || code > 599 || (p[i + 3] != ' ' && p[i + 3] != '-'))
            __builtin_trap();
        if (cont_code >= 0 && code != cont_code)
            __builtin_trap();
        cont_code = p[i + 3] == '-' ? code : -1;
        if (cont_code < 0)
            finals++;
        i += 4;
        while (i < n && p[i] != '\r') {
            if (p[i] < 0x20 || p[i] >= 0x7f)
                __builtin_trap();
            i++;
        }
        if (n - i < 2 || p[i + 1] != '\n')
            __builtin_trap();
        i += 2;
        if (i - start > MV_SMTP_REPLY_MAX)
            __builtin_trap();
    }
    if (cont_code >= 0)
        __builtin_trap();
    return finals;
}

static size_t drain(mv_smtp *s)
{
    size_t n;
    const uint8_t *p = mv_smtp_output(s, &n);
    size_t finals = check_output(p, n);
    mv_smtp_output_consumed(s, n);
    return finals;
}

static void answer(mv_smtp *s, mv_smtp_proto proto, uint64_t max, uint32_t *st)
{
    const mv_smtp_txn *t = mv_smtp_message(s);
    if (!t || t->len > max || !t->data || t->data[t->len] != '\0' || !t->mail_from ||
        !t->helo || t->n_rcpt == 0)
        __builtin_trap();
    for (size_t i = 0; i < t->n_rcpt; i++)
        if (!t->rcpt[i] || strlen(t->rcpt[i]) > MV_SMTP_PATH_MAX)
            __builtin_trap();
    size_t want = proto == MV_LMTP ? t->n_rcpt : 1;
    uint32_t r = next(st);
    if (r & 8) {
        size_t len;
        uint8_t *d = mv_smtp_take_data(s, &len);
        if (!d || d[len] != '\0' || mv_smtp_message(s)->data)
            __builtin_trap();
        free(d);
    }
    switch (r % 5) {
    case 0:
        mv_smtp_reply_accept(s, (r & 16) ? "Q1" : NULL);
        break;
    case 1:
        mv_smtp_reply_tempfail(s, (r & 16) ? "no space\r\n" : NULL);
        break;
    case 2:
        mv_smtp_reply_reject(s, 552, "5.3.4", "too big");
        break;
    case 3:
        mv_smtp_reply_reject(s, (int)(r >> 4) % 1000, (r & 16) ? "4.3.1" : NULL, "odd");
        break;
    default:
        while (mv_smtp_event(s) == MV_SMTP_EV_MESSAGE)
            mv_smtp_reply_rcpt(s, (next(st) & 1) ? 250 : 451, NULL, NULL);
        break;
    }
    if (mv_smtp_event(s) != MV_SMTP_EV_NONE || mv_smtp_message(s))
        __builtin_trap();
    if (drain(s) != want) /* RFC 2033: exactly one reply per recipient */
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    mv_smtp_opts o;
    memset(&o, 0, sizeof o);
    o.proto = (data[0] & 1) ? MV_LMTP : MV_SMTP;
    o.tls_offer = (data[0] >> 1) & 1;
    o.tls_required = (data[0] >> 2) & 1;
    o.hostname = "mx.fuzz";
    mv_smtp_limits_default(&o.lim);
    if (data[0] & 8) {
        o.lim.max_message_bytes = 1 + ((uint64_t)(data[0] >> 4) << 4);
        o.lim.max_recipients = 3;
        o.lim.max_command_line = 512;
        o.lim.max_errors = 5;
    }
    uint32_t st = data[1] * 2654435761u + 1;
    const uint8_t *p = data + 2;
    size_t n = size - 2;

    mv_smtp *s = mv_smtp_new(&o);
    drain(s);
    int closed = 0;
    size_t at = 0;
    while (at < n && !closed) {
        size_t chunk = 1 + next(&st) % 64, left;
        if (next(&st) % 8 == 0)
            chunk = n - at; /* sometimes everything at once */
        if (chunk > n - at)
            chunk = n - at;
        left = chunk;
        const uint8_t *q = p + at;
        at += chunk;
        int stalls = 0;
        while (left > 0) {
            size_t pending;
            mv_smtp_output(s, &pending);
            size_t c = mv_smtp_feed(s, q, left);
            if (c > left)
                __builtin_trap();
            q += c;
            left -= c;
            mv_smtp_ev ev = mv_smtp_event(s);
            if (ev == MV_SMTP_EV_MESSAGE) {
                drain(s);
                answer(s, o.proto, o.lim.max_message_bytes, &st);
            } else if (ev == MV_SMTP_EV_STARTTLS) {
                drain(s);
                mv_smtp_tls_started(s);
                left = 0; /* the daemon discards what was read before the handshake */
            } else if (ev == MV_SMTP_EV_CLOSE) {
                drain(s);
                closed = 1;
                break;
            } else if (c == 0) {
                /* only output pressure may stop the engine, and draining ends it */
                if (pending <= MV_SMTP_OUTPUT_MAX || ++stalls > 1)
                    __builtin_trap();
            } else {
                stalls = 0;
            }
            drain(s);
        }
    }
    if (!closed) {
        if (next(&st) & 1)
            mv_smtp_timeout(s);
        else
            mv_smtp_shutdown(s);
        if (mv_smtp_event(s) != MV_SMTP_EV_CLOSE)
            __builtin_trap();
        drain(s);
    }
    mv_smtp_counters c;
    mv_smtp_counters_get(s, &c);
    if (c.errors > c.commands)
        __builtin_trap();
    mv_smtp_free(s);
    return 0;
}
