/* SPDX-License-Identifier: MIT */
/* smtp_test.c - the SMTP/LMTP engine driven by scripts: replies and codes,
 * dot-unstuffing, smuggling attempts, bare CR/LF, BDAT, LMTP per-recipient
 * replies, STARTTLS state reset, pipelining order, limits, and the same
 * session cut at every split point giving identical results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../ingest/smtp.h"
#include "../../lib/buf.h"

/* ---- the driver -------------------------------------------------------- */

#define MAX_MSGS 16

typedef struct msg_rec {
    char *helo, *mail_from;
    char **rcpt;
    size_t n_rcpt;
    mv_buf data;
    uint64_t declared_size;
    int body_8bit, body_binary, smtputf8, used_bdat, bare_lf, bare_cr;
} msg_rec;

enum { ANS_ACCEPT, ANS_TEMPFAIL, ANS_REJECT, ANS_RCPT_MIXED };

typedef struct drv {
    mv_smtp *s;
    mv_buf out;
    msg_rec msgs[MAX_MSGS];
    size_t n_msgs;
    int answer;   /* ANS_* for every message */
    int take;     /* take the data with mv_smtp_take_data */
    int closed;   /* CLOSE seen */
    int tls;      /* STARTTLS events seen */
    int real_tls; /* discard the unread input at STARTTLS, as the daemon must */
    size_t consumed;
} drv;

static void drv_init(drv *d, const mv_smtp_opts *o)
{
    memset(d, 0, sizeof *d);
    d->s = mv_smtp_new(o);
}

static void drv_free(drv *d)
{
    for (size_t i = 0; i < d->n_msgs; i++) {
        msg_rec *m = &d->msgs[i];
        free(m->helo);
        free(m->mail_from);
        for (size_t k = 0; k < m->n_rcpt; k++)
            free(m->rcpt[k]);
        free(m->rcpt);
        mv_buf_free(&m->data);
    }
    mv_buf_free(&d->out);
    mv_smtp_free(d->s);
}

static void collect(drv *d)
{
    size_t n;
    const uint8_t *p = mv_smtp_output(d->s, &n);
    mv_buf_append(&d->out, p, n);
    mv_smtp_output_consumed(d->s, n);
}

static void record_message(drv *d)
{
    const mv_smtp_txn *t = mv_smtp_message(d->s);
    assert_non_null(t);
    assert_true(d->n_msgs < MAX_MSGS);
    msg_rec *m = &d->msgs[d->n_msgs++];
    m->helo = strdup(t->helo);
    m->mail_from = strdup(t->mail_from);
    m->n_rcpt = t->n_rcpt;
    m->rcpt = calloc(t->n_rcpt + 1, sizeof *m->rcpt);
    for (size_t k = 0; k < t->n_rcpt; k++)
        m->rcpt[k] = strdup(t->rcpt[k]);
    m->declared_size = t->declared_size;
    m->body_8bit = t->body_8bit;
    m->body_binary = t->body_binary;
    m->smtputf8 = t->smtputf8;
    m->used_bdat = t->used_bdat;
    m->bare_lf = t->bare_lf;
    m->bare_cr = t->bare_cr;
    assert_non_null(t->data);
    assert_int_equal(t->data[t->len], 0);
    if (d->take) {
        size_t len;
        uint8_t *p = mv_smtp_take_data(d->s, &len);
        assert_non_null(p);
        assert_null(mv_smtp_message(d->s)->data);
        assert_int_equal(p[len], 0);
        mv_buf_append(&m->data, p, len);
        free(p);
    } else {
        mv_buf_append(&m->data, t->data, t->len);
    }
    char id[32];
    snprintf(id, sizeof id, "Q%zu", d->n_msgs);
    switch (d->answer) {
    case ANS_ACCEPT:
        mv_smtp_reply_accept(d->s, id);
        break;
    case ANS_TEMPFAIL:
        mv_smtp_reply_tempfail(d->s, "Error: spool unavailable");
        break;
    case ANS_REJECT:
        mv_smtp_reply_reject(d->s, 554, "5.7.1", "Error: refused");
        break;
    default: /* accept the first recipient, tempfail the rest */
        mv_smtp_reply_rcpt(d->s, 250, "2.1.5", id);
        mv_smtp_reply_tempfail(d->s, NULL);
        break;
    }
    assert_int_equal(mv_smtp_event(d->s), MV_SMTP_EV_NONE);
}

/* drv_feed - one read of the daemon: feed until all is consumed, answering
 * events; returns 0 when the rest of the read was dropped (TLS, close). */
static int drv_feed(drv *d, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && !d->closed) {
        size_t pending;
        mv_smtp_output(d->s, &pending);
        size_t c = mv_smtp_feed(d->s, p + off, n - off);
        assert_true(c <= n - off);
        off += c;
        d->consumed += c;
        collect(d);
        switch (mv_smtp_event(d->s)) {
        case MV_SMTP_EV_MESSAGE:
            record_message(d);
            break;
        case MV_SMTP_EV_STARTTLS:
            d->tls++;
            mv_smtp_tls_started(d->s);
            if (d->real_tls)
                return 0;
            break;
        case MV_SMTP_EV_CLOSE:
            d->closed = 1;
            return 0;
        case MV_SMTP_EV_NONE:
            if (c == 0) /* only output pressure may stop the engine */
                assert_true(pending > MV_SMTP_OUTPUT_MAX);
            break;
        }
    }
    collect(d);
    return 1;
}

/* drv_run_cuts - feed p[0..n) cut at the given sorted offsets. */
static void drv_run_cuts(drv *d, const char *p, size_t n, const size_t *cuts, size_t ncuts)
{
    size_t at = 0;
    for (size_t i = 0; i <= ncuts && !d->closed; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        if (end > at)
            drv_feed(d, (const uint8_t *)p + at, end - at);
        at = end > at ? end : at;
    }
}

/* drv_run - feed in pieces of chunk bytes (0: all at once). */
static void drv_run(drv *d, const char *p, size_t n, size_t chunk)
{
    if (chunk == 0)
        chunk = n ? n : 1;
    for (size_t at = 0; at < n && !d->closed; at += chunk)
        drv_feed(d, (const uint8_t *)p + at, n - at < chunk ? n - at : chunk);
}

static void opts_init(mv_smtp_opts *o, mv_smtp_proto proto)
{
    memset(o, 0, sizeof *o);
    o->proto = proto;
    o->hostname = "mx.test";
    mv_smtp_limits_default(&o->lim);
}

/* out_str - the output as a C string (the buffer keeps a NUL). */
static const char *out_str(drv *d)
{
    return d->out.data ? (const char *)d->out.data : "";
}

/* after_greeting - the output without the 220 line. */
static const char *after_greeting(drv *d)
{
    const char *o = out_str(d);
    const char *e = strstr(o, "\r\n");
    assert_non_null(e);
    return e + 2;
}

/* transcript - run script (whole) on a fresh SMTP/LMTP session and check
 * the replies after the greeting equal want. */
static void transcript(const mv_smtp_opts *o, const char *script, const char *want)
{
    drv d;
    drv_init(&d, o);
    drv_run(&d, script, strlen(script), 0);
    if (strcmp(after_greeting(&d), want) != 0)
        fail_msg("script:\n%s\nwant:\n%s\ngot:\n%s", script, want, after_greeting(&d));
    drv_free(&d);
}

static int count_str(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

#define HEAD "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
#define HEAD_REPLIES                                                                           \
    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n"                   \
    "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"                               \
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"

/* ---- greeting, EHLO, simple commands ----------------------------------- */

static void test_greeting_ehlo(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    o.tls_offer = 1;
    drv d;
    drv_init(&d, &o);
    drv_run(&d, "ehlo client.test\r\n", 18, 0);
    assert_string_equal(out_str(&d),
                        "220 mx.test ESMTP ready\r\n"
                        "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n"
                        "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n"
                        "250 CHUNKING\r\n");
    drv_free(&d);

    opts_init(&o, MV_LMTP);
    o.lim.max_message_bytes = 1000;
    drv_init(&d, &o);
    drv_run(&d, "LHLO c\r\nEHLO c\r\nHELO c\r\n", 24, 0);
    assert_string_equal(out_str(&d),
                        "220 mx.test LMTP ready\r\n"
                        "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
                        "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
                        "500 5.5.1 Error: this is LMTP, use LHLO\r\n"
                        "500 5.5.1 Error: this is LMTP, use LHLO\r\n");
    drv_free(&d);

    opts_init(&o, MV_SMTP);
    o.hostname = "bad host\r\n";
    drv_init(&d, &o);
    assert_string_equal(out_str(&d), ""); /* not collected yet */
    drv_run(&d, "HELO c\r\nLHLO c\r\nHELO\r\n", 22, 0);
    assert_string_equal(out_str(&d), "220 bad?host?? ESMTP ready\r\n250 bad?host??\r\n"
                                     "500 5.5.2 Error: command not recognized\r\n"
                                     "501 5.5.4 Syntax: HELO hostname\r\n");
    drv_free(&d);
}

static void test_simple_commands(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    transcript(&o,
               "NOOP\r\nnoop whatever\r\nVRFY bob\r\nVRFY\r\nHELP\r\nEXPN list\r\nFOO\r\n"
               "\r\nRSET\r\nRSET x\r\nNOOP\rx\r\nQuit\r\nNOOP\r\n",
               "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
               "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
               "501 5.5.4 Syntax: VRFY address\r\n"
               "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP\r\n"
               "502 5.5.1 Error: command not implemented\r\n"
               "500 5.5.2 Error: command not recognized\r\n"
               "500 5.5.2 Error: command not recognized\r\n"
               "250 2.0.0 Ok\r\n501 5.5.4 Syntax: RSET\r\n"
               "500 5.5.2 Error: bad character in command\r\n"
               "221 2.0.0 Bye\r\n");
    /* NUL in a command */
    drv d;
    drv_init(&d, &o);
    drv_run(&d, "NOOP\0x\r\nNOOP\r\n", 14, 0);
    assert_string_equal(after_greeting(&d), "500 5.5.2 Error: bad character in command\r\n"
                                            "250 2.0.0 Ok\r\n");
    drv_free(&d);
    /* bare LF ends commands too; trailing blanks are ignored */
    transcript(&o, "NOOP\nHELO c  \n", "250 2.0.0 Ok\r\n250 mx.test\r\n");
}

/* QUIT: nothing after its line is consumed; counters. */
static void test_quit_and_counters(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    mv_smtp *s = mv_smtp_new(&o);
    const char *in = "NOOP\r\nFOO\r\nQUIT\r\nNOOP\r\n";
    size_t c = mv_smtp_feed(s, (const uint8_t *)in, strlen(in));
    assert_int_equal(c, 17);
    assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_CLOSE);
    assert_int_equal(mv_smtp_feed(s, (const uint8_t *)in, strlen(in)), 0);
    mv_smtp_counters k;
    mv_smtp_counters_get(s, &k);
    assert_int_equal(k.commands, 3);
    assert_int_equal(k.errors, 1);
    assert_int_equal(k.messages, 0);
    mv_smtp_timeout(s); /* already closing: nothing more */
    size_t n;
    const uint8_t *p = mv_smtp_output(s, &n);
    assert_int_equal(n, strlen("220 mx.test ESMTP ready\r\n250 2.0.0 Ok\r\n"
                               "500 5.5.2 Error: command not recognized\r\n221 2.0.0 Bye\r\n"));
    assert_memory_equal(p + n - 15, "221 2.0.0 Bye\r\n", 15);
    mv_smtp_output_consumed(s, 5);
    mv_smtp_output(s, &n);
    mv_smtp_output_consumed(s, 1000);
    mv_smtp_output(s, &n);
    assert_int_equal(n, 0);
    mv_smtp_free(s);

    s = mv_smtp_new(&o);
    mv_smtp_timeout(s);
    assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_CLOSE);
    p = mv_smtp_output(s, &n);
    assert_memory_equal(p + n - 43, "421 4.4.2 mx.test Error: timeout exceeded\r\n", 43);
    mv_smtp_free(s);

    s = mv_smtp_new(&o);
    mv_smtp_output_consumed(s, 1000);
    mv_smtp_shutdown(s);
    p = mv_smtp_output(s, &n);
    assert_int_equal(n, 41);
    assert_memory_equal(p, "421 4.3.2 mx.test Service shutting down\r\n", 41);
    mv_smtp_free(s);
    mv_smtp_free(NULL);
}

/* ---- MAIL / RCPT syntax ------------------------------------------------ */

typedef struct addr_case {
    const char *args;
    const char *want;      /* reply line prefix */
    const char *mail_from; /* the stored reverse-path when accepted */
} addr_case;

static const addr_case mail_cases[] = {
    {"FROM:<a@x.test>", "250 2.1.0", "a@x.test"},
    {"from:<A@X.test>", "250 2.1.0", "A@X.test"},
    {"FROM: <a@x.test>", "250 2.1.0", "a@x.test"},
    {"FROM:<>", "250 2.1.0", ""},
    {"FROM:<> SIZE=100 BODY=8BITMIME", "250 2.1.0", ""},
    {"FROM:<@r1.test,@r2.test:u@d.test>", "250 2.1.0", "u@d.test"},
    {"FROM:<\"john doe\"@x.test>", "250 2.1.0", "\"john doe\"@x.test"},
    {"FROM:<\"a>b\\\"c\"@x.test>", "250 2.1.0", "\"a>b\\\"c\"@x.test"},
    {"FROM:a@x.test", "250 2.1.0", "a@x.test"},
    {"FROM:<a@[192.0.2.1]>", "250 2.1.0", "a@[192.0.2.1]"},
    {"FROM:<a..b@x.test>", "250 2.1.0", "a..b@x.test"},
    {"FROM:<a@x.test> AUTH=<> RET=HDRS ENVID=abc X-FOO", "250 2.1.0", "a@x.test"},
    {"FROM:<a@x.test> BODY=binarymime", "250 2.1.0", NULL}, /* then DATA: 503 */
    {"FROM:<\xc3\xbc@x.test> SMTPUTF8", "250 2.1.0", "\xc3\xbc@x.test"},
    {"FROM:<a@\xc3\xbc.test> SMTPUTF8", "250 2.1.0", "a@\xc3\xbc.test"},
    {"FROM:<\xc3\xbc@x.test>", "553 5.6.7", NULL},
    {"FROM:<\xc3@x.test> SMTPUTF8", "501 5.1.7", NULL},
    {"FROM:<\xed\xa0\x80@x.test> SMTPUTF8", "501 5.1.7", NULL},
    {"FROM:<a@x.test", "501 5.1.7", NULL},
    {"FROM:<a b@x.test>", "501 5.1.7", NULL},
    {"FROM:<a@>", "501 5.1.7", NULL},
    {"FROM:<a>", "501 5.1.7", NULL},
    {"FROM:<@a.test:>", "501 5.1.7", NULL},
    {"FROM:<@a.test,:u@d.test>", "501 5.1.7", NULL},
    {"FROM:<@:u@d.test>", "501 5.1.7", NULL},
    {"FROM:<a@x..test>", "501 5.1.7", NULL},
    {"FROM:<a@x.test.>", "501 5.1.7", NULL},
    {"FROM:<a@x.test>junk", "501 5.1.7", NULL},
    {"FROM:<<a@x.test>>", "501 5.1.7", NULL},
    {"FROM:<\"unterminated@x.test>", "501 5.1.7", NULL},
    {"FROM:", "501 5.1.7", NULL},
    {"FROM", "501 5.5.4", NULL},
    {"TO:<a@x.test>", "501 5.5.4", NULL},
    {"", "501 5.5.4", NULL},
    {"FROM:<a@x.test> SIZE=abc", "501 5.5.4", NULL},
    {"FROM:<a@x.test> SIZE", "501 5.5.4", NULL},
    {"FROM:<a@x.test> SIZE=104857600", "250 2.1.0", "a@x.test"},
    {"FROM:<a@x.test> SIZE=104857601", "552 5.3.4", NULL},
    {"FROM:<a@x.test> SIZE=99999999999999999999999", "552 5.3.4", NULL},
    {"FROM:<a@x.test> BODY=9BIT", "501 5.5.4", NULL},
    {"FROM:<a@x.test> BODY", "501 5.5.4", NULL},
    {"FROM:<a@x.test> SMTPUTF8=yes", "501 5.5.4", NULL},
    {"FROM:<a@x.test> =x", "501 5.5.4", NULL},
    {"FROM:<a@x.test> RET=", "501 5.5.4", NULL},
    {"FROM:<a@x.test> A=b=c", "501 5.5.4", NULL},
    {"FROM:<a@x.test> ENVID=\xff", "501 5.5.4", NULL},
    {"FROM:<a@x.test> A_B=c", "501 5.5.4", NULL},
    {"FROM:<\xf0\x9f\x93\xa7@x.test> SMTPUTF8", "250 2.1.0", "\xf0\x9f\x93\xa7@x.test"},
    {"FROM:<\xf8\x88\x80\x80\x80@x.test> SMTPUTF8", "501 5.1.7", NULL},
    {"FROM:<\xc3\xbc\xbc@x.test> SMTPUTF8", "501 5.1.7", NULL},
    {"FROM:<\xc0\xaf@x.test> SMTPUTF8", "501 5.1.7", NULL}, /* overlong */
    {"FROM:<a@[]>", "501 5.1.7", NULL},
    {"FROM:<a@[1.2]x>", "501 5.1.7", NULL},
    {"FROM:<a@[1[2]>", "501 5.1.7", NULL},
    {"FROM:<a@x_y.test>", "250 2.1.0", "a@x_y.test"},
    {"FROM:<a@x!.test>", "501 5.1.7", NULL},
    {"FROM:<\"\\\xc3\xbc\"@x.test> SMTPUTF8", "501 5.1.7", NULL},
    {"FROM:\"abc@x.test", "501 5.1.7", NULL},
    {"FROM:a<b@x.test", "501 5.1.7", NULL},
    {"FROM:a@x.test SIZE=5", "250 2.1.0", "a@x.test"},
};

static void test_mail_syntax(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    for (size_t i = 0; i < sizeof mail_cases / sizeof mail_cases[0]; i++) {
        const addr_case *c = &mail_cases[i];
        drv d;
        drv_init(&d, &o);
        char script[1024];
        snprintf(script, sizeof script,
                 "EHLO c\r\nMAIL %s\r\nRCPT TO:<r@y.test>\r\nDATA\r\nx\r\n.\r\n", c->args);
        drv_run(&d, script, strlen(script), 0);
        const char *o2 = strstr(out_str(&d), "250 CHUNKING\r\n") + 14;
        if (strncmp(o2, c->want, strlen(c->want)) != 0)
            fail_msg("MAIL %s: want %s got %s", c->args, c->want, o2);
        if (c->mail_from) {
            assert_int_equal(d.n_msgs, 1);
            assert_string_equal(d.msgs[0].mail_from, c->mail_from);
        } else {
            assert_int_equal(d.n_msgs, 0);
        }
        drv_free(&d);
    }
    /* 256 octets with the brackets are fine, 257 are not */
    char path[400], script[600];
    memset(path, 'a', sizeof path);
    for (int extra = 0; extra < 2; extra++) {
        size_t local = 256 - 2 - 7 + (size_t)extra; /* "<" local "@x.test" ">" */
        snprintf(script, sizeof script, "EHLO c\r\nMAIL FROM:<%.*s@x.test>\r\n"
                 "RCPT TO:<%.*s@x.test>\r\n", (int)local, path, (int)local, path);
        drv d;
        drv_init(&d, &o);
        drv_run(&d, script, strlen(script), 0);
        const char *got = strstr(out_str(&d), "250 CHUNKING\r\n") + 14;
        if (extra == 0)
            assert_string_equal(got, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
        else
            assert_string_equal(got, "501 5.1.7 Error: sender address too long\r\n"
                                     "503 5.5.1 Error: need MAIL command\r\n");
        drv_free(&d);
    }
    snprintf(script, sizeof script, "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<%.*s@x.test>\r\n", 248,
             path);
    transcript(&o, script,
               "250 mx.test\r\n250 2.1.0 Ok\r\n501 5.1.3 Error: recipient address too long\r\n");
}

static void test_rcpt_syntax(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    char path[300];
    memset(path, 'a', sizeof path);
    char script[2048];
    snprintf(script, sizeof script,
             "RCPT TO:<b@y.test>\r\nMAIL FROM:<a@x.test>\r\nHELO c\r\nMAIL FROM:<a@x.test>\r\n"
             "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nrcpt to: <Postmaster>\r\n"
             "RCPT TO:<>\r\nRCPT TO:<b@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@y.test\r\n"
             "RCPT TO:<\xc3\xbc@y.test>\r\nRCPT TO:<%.*s@y.test>\r\nRCPT TO:<b@y.test> =\r\n"
             "RCPT <b@y.test>\r\nRCPT TO:<postmaster@>\r\nRCPT TO:<@r.test:b@y.test>\r\n",
             250, path);
    transcript(&o, script,
               "503 5.5.1 Error: need MAIL command\r\n"
               "503 5.5.1 Error: send HELO/EHLO first\r\n"
               "250 mx.test\r\n250 2.1.0 Ok\r\n"
               "503 5.5.1 Error: nested MAIL command\r\n"
               "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
               "501 5.1.3 Error: bad recipient address syntax\r\n"
               "250 2.1.5 Ok\r\n"
               "553 5.6.7 Error: non-ASCII address requires SMTPUTF8\r\n"
               "501 5.1.3 Error: recipient address too long\r\n"
               "501 5.5.4 Error: malformed RCPT parameter\r\n"
               "501 5.5.4 Syntax: RCPT TO:<address>\r\n"
               "501 5.1.3 Error: bad recipient address syntax\r\n"
               "250 2.1.5 Ok\r\n");
    /* SMTPUTF8 on MAIL allows UTF-8 recipients; recipients are kept in order */
    mv_smtp_opts lo;
    opts_init(&lo, MV_LMTP);
    drv d;
    drv_init(&d, &lo);
    const char *s2 = "LHLO c\r\nMAIL FROM:<a@x.test> SMTPUTF8 BODY=8BITMIME SIZE=42\r\n"
                     "RCPT TO:<\xc3\xbc@y.test>\r\nRCPT TO:<postmaster>\r\nDATA\r\nhi\r\n.\r\n";
    drv_run(&d, s2, strlen(s2), 0);
    assert_int_equal(d.n_msgs, 1);
    assert_int_equal(d.msgs[0].n_rcpt, 2);
    assert_string_equal(d.msgs[0].rcpt[0], "\xc3\xbc@y.test");
    assert_string_equal(d.msgs[0].rcpt[1], "postmaster");
    assert_int_equal(d.msgs[0].smtputf8, 1);
    assert_int_equal(d.msgs[0].body_8bit, 1);
    assert_int_equal(d.msgs[0].declared_size, 42);
    assert_string_equal(d.msgs[0].helo, "c");
    /* 8-bit bytes in echoed recipients are sent as '?' */
    assert_non_null(strstr(out_str(&d), "250 2.1.5 <??@y.test> Ok: Q1\r\n"
                                        "250 2.1.5 <postmaster> Ok: Q1\r\n"));
    drv_free(&d);
}

/* ---- DATA: unstuffing, bare CR/LF, smuggling --------------------------- */

typedef struct data_case {
    const char *wire; /* after DATA's CRLF, up to and including CRLF.CRLF */
    size_t wire_len;  /* 0: strlen */
    const char *want;
    size_t want_len;  /* 0: strlen */
    int bare_lf, bare_cr;
} data_case;

static const data_case data_cases[] = {
    {".\r\n", 0, "", 0, 0, 0},
    {"\r\n.\r\n", 0, "\r\n", 0, 0, 0},
    {"a\r\n.\r\n", 0, "a\r\n", 0, 0, 0},
    {"..\r\n.\r\n", 0, ".\r\n", 0, 0, 0},
    {"...\r\n.\r\n", 0, "..\r\n", 0, 0, 0},
    {"a\r\n..b\r\n.\r\n", 0, "a\r\n.b\r\n", 0, 0, 0},
    {"a\r\n.x\r\n.\r\n", 0, "a\r\nx\r\n", 0, 0, 0},
    {"a.b\r\n.a\r\n.\r\n", 0, "a.b\r\na\r\n", 0, 0, 0},
    {". \r\n.\r\n", 0, " \r\n", 0, 0, 0},
    {"a\n.\nb\r\n.\r\n", 0, "a\n.\nb\r\n", 0, 2, 0},        /* LF . LF */
    {"a\n.\r\nb\r\n.\r\n", 0, "a\n.\r\nb\r\n", 0, 1, 0},    /* LF . CRLF */
    {"a\r.\rb\r\n.\r\n", 0, "a\r.\rb\r\n", 0, 0, 2},        /* CR . CR */
    {"a\r\n.\nb\r\n.\r\n", 0, "a\r\n\nb\r\n", 0, 1, 0},     /* CRLF . LF */
    {"a\r\n.\rb\r\n.\r\n", 0, "a\r\n\rb\r\n", 0, 0, 1},     /* CRLF . CR */
    {"a\r.\r\nb\r\n.\r\n", 0, "a\r.\r\nb\r\n", 0, 0, 1},    /* CR . CRLF */
    {"a\n.\rb\r\n.\r\n", 0, "a\n.\rb\r\n", 0, 1, 1},        /* LF . CR */
    {"a\r\r\n.\r\n", 0, "a\r\r\n", 0, 0, 1},
    {".\r\r\n.\r\n", 0, "\r\r\n", 0, 0, 1},
    {".\r\r\r\n.\r\n", 0, "\r\r\r\n", 0, 0, 2},
    {"\n.\r\n", 0, "\n.\r\n", 0, 1, 0, }, /* not yet ended: completed below */
    {"a\0b\xff\x80\r\n.\r\n", 10, "a\0b\xff\x80\r\n", 7, 0, 0},
    {"\r\n\r\n.\r\n", 0, "\r\n\r\n", 0, 0, 0},
    {"a\r\n.\r\r\n.\r\n", 0, "a\r\n\r\r\n", 0, 0, 1},
    {"x\r\n..\r\n.\r\n", 0, "x\r\n.\r\n", 0, 0, 0},
    {"\r", 0, NULL, 0, 0, 0}, /* placeholder, skipped */
};

static void test_data_unstuffing(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    for (size_t i = 0; i < sizeof data_cases / sizeof data_cases[0]; i++) {
        const data_case *c = &data_cases[i];
        if (!c->want)
            continue;
        size_t wl = c->wire_len ? c->wire_len : strlen(c->wire);
        size_t want_len = c->want_len ? c->want_len : strlen(c->want);
        mv_buf script = MV_BUF_INIT;
        mv_buf_append_str(&script, HEAD);
        mv_buf_append(&script, c->wire, wl);
        int unended = strcmp(c->wire, "\n.\r\n") == 0;
        if (unended) /* "\n.\r\n" alone does not end the data */
            mv_buf_append_str(&script, ".\r\n");
        mv_buf_append_str(&script, "QUIT\r\n");
        for (size_t chunk = 0; chunk <= 3; chunk++) {
            drv d;
            drv_init(&d, &o);
            drv_run(&d, (const char *)script.data, script.len, chunk);
            if (d.n_msgs != 1)
                fail_msg("case %zu chunk %zu: %zu messages", i, chunk, d.n_msgs);
            msg_rec *m = &d.msgs[0];
            if (m->data.len != want_len || memcmp(m->data.data, c->want, want_len) != 0)
                fail_msg("case %zu chunk %zu: data differs (len %zu, want %zu)", i, chunk,
                         m->data.len, want_len);
            assert_int_equal(m->bare_lf, c->bare_lf);
            assert_int_equal(m->bare_cr, c->bare_cr);
            assert_string_equal(after_greeting(&d),
                                HEAD_REPLIES "250 2.0.0 Ok: queued as Q1\r\n221 2.0.0 Bye\r\n");
            drv_free(&d);
        }
        mv_buf_free(&script);
    }
}

/* Every SMTP smuggling terminator: the smuggled transaction stays inside
 * the first message's data; one message, one 354. */
static void test_smuggling(void **state)
{
    (void)state;
    static const char *fake[] = {"\n.\n", "\n.\r\n", "\r.\r", "\r\n.\n", "\r.\r\n",
                                 "\n.\r", "\r\n.\r", "\n..\n", "\r\n.\n\r\n"};
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    for (size_t i = 0; i < sizeof fake / sizeof fake[0]; i++) {
        mv_buf script = MV_BUF_INIT;
        mv_buf_append_str(&script, HEAD "Subject: one\r\n\r\nhello");
        mv_buf_append_str(&script, fake[i]);
        mv_buf_append_str(&script, "MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@y.test>\r\n"
                                   "DATA\r\nSubject: smuggled\r\n");
        mv_buf_append_str(&script, fake[i]);
        mv_buf_append_str(&script, "\r\n.\r\nQUIT\r\n");
        for (size_t chunk = 0; chunk <= 2; chunk++) {
            drv d;
            drv_init(&d, &o);
            drv_run(&d, (const char *)script.data, script.len, chunk);
            assert_int_equal(d.n_msgs, 1);
            assert_non_null(memmem(d.msgs[0].data.data, d.msgs[0].data.len, "smuggled", 8));
            assert_int_equal(count_str(out_str(&d), "354 "), 1);
            assert_int_equal(count_str(out_str(&d), "250 2.1.0"), 1);
            assert_true(d.msgs[0].bare_lf + d.msgs[0].bare_cr > 0);
            assert_true(d.closed);
            drv_free(&d);
        }
        mv_buf_free(&script);
    }
}

/* ---- chunking: the same session cut anywhere --------------------------- */

static const char sample[] =
    "EHLO client.test\r\n"
    "MAIL FROM:<a@x.test> BODY=8BITMIME\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<bad>\r\n"
    "RCPT TO:<c@y.test>\r\nDATA\r\n"
    "Subject: t\r\n\r\n..stuffed\r\n.\r\r\nbare\nlf\rcr\r\n.\n\r\n\xff\x00\r\n.\r\n"
    "MAIL FROM:<>\r\nRCPT TO:<d@y.test>\r\nBDAT 7\r\n\r\n.\r\nabBDAT 3 LAST\r\n\r\n."
    "RSET\r\nFOO\r\nMAIL FROM:<e@x.test>\r\nRCPT TO:<f@y.test>\r\nDATA\r\n.\r\n"
    "MAIL FROM:<g@x.test>\r\nRCPT TO:<h@y.test>\r\nBDAT 2\r\nQUIT\r\nDATA\r\n"
    "BDAT 0 LAST\r\nNOOP\nQUIT\r\n";

static void same_result(drv *ref, drv *d, const char *what)
{
    if (ref->out.len != d->out.len || memcmp(ref->out.data, d->out.data, d->out.len) != 0)
        fail_msg("%s: output differs:\n%s\n---\n%s", what, out_str(ref), out_str(d));
    assert_int_equal(ref->n_msgs, d->n_msgs);
    for (size_t i = 0; i < d->n_msgs; i++) {
        msg_rec *a = &ref->msgs[i], *b = &d->msgs[i];
        if (a->data.len != b->data.len || memcmp(a->data.data, b->data.data, a->data.len) != 0)
            fail_msg("%s: message %zu differs", what, i);
        assert_string_equal(a->mail_from, b->mail_from);
        assert_int_equal(a->n_rcpt, b->n_rcpt);
        assert_int_equal(a->bare_lf, b->bare_lf);
        assert_int_equal(a->bare_cr, b->bare_cr);
        assert_int_equal(a->used_bdat, b->used_bdat);
    }
    assert_int_equal(ref->consumed, d->consumed);
}

static uint64_t xorshift(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *st = x;
}

static void check_split_all(const mv_smtp_opts *o, const char *p, size_t n)
{
    drv ref;
    drv_init(&ref, o);
    drv_run(&ref, p, n, 0);
    for (size_t k = 1; k < n; k++) { /* every single cut */
        drv d;
        drv_init(&d, o);
        drv_run_cuts(&d, p, n, &k, 1);
        char what[64];
        snprintf(what, sizeof what, "cut at %zu", k);
        same_result(&ref, &d, what);
        drv_free(&d);
    }
    for (size_t chunk = 1; chunk <= 17; chunk++) { /* fixed sizes, 1 byte included */
        drv d;
        drv_init(&d, o);
        drv_run(&d, p, n, chunk);
        same_result(&ref, &d, "fixed chunks");
        drv_free(&d);
    }
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 300; round++) { /* random cuts */
        size_t cuts[64], nc = 0, at = 0;
        while (nc < 64) {
            at += 1 + xorshift(&seed) % 12;
            if (at >= n)
                break;
            cuts[nc++] = at;
        }
        drv d;
        drv_init(&d, o);
        drv_run_cuts(&d, p, n, cuts, nc);
        same_result(&ref, &d, "random cuts");
        drv_free(&d);
    }
    drv_free(&ref);
}

static void test_chunking(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    size_t n = sizeof sample - 1;
    drv ref;
    drv_init(&ref, &o);
    drv_run(&ref, sample, n, 0);
    assert_string_equal(after_greeting(&ref),
                        "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n"
                        "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
                        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                        "501 5.1.3 Error: bad recipient address syntax\r\n"
                        "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                        "250 2.0.0 Ok: queued as Q1\r\n"
                        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 7 octets received\r\n"
                        "250 2.0.0 Ok: queued as Q2\r\n"
                        "250 2.0.0 Ok\r\n500 5.5.2 Error: command not recognized\r\n"
                        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                        "250 2.0.0 Ok: queued as Q3\r\n"
                        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 2 octets received\r\n"
                        "500 5.5.2 Error: command not recognized\r\n"
                        "503 5.5.1 Error: DATA cannot follow BDAT\r\n"
                        "250 2.0.0 Ok: queued as Q4\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n");
    assert_int_equal(ref.n_msgs, 4);
    static const char m1[] = "Subject: t\r\n\r\n.stuffed\r\n\r\r\nbare\nlf\rcr\r\n\n\r\n\xff\x00\r\n";
    assert_int_equal(ref.msgs[0].data.len, sizeof m1 - 1);
    assert_memory_equal(ref.msgs[0].data.data, m1, sizeof m1 - 1);
    assert_int_equal(ref.msgs[0].bare_lf, 2);
    assert_int_equal(ref.msgs[0].bare_cr, 2);
    assert_int_equal(ref.msgs[0].n_rcpt, 2);
    assert_int_equal(ref.msgs[0].body_8bit, 1);
    assert_int_equal(ref.msgs[1].data.len, 10);
    assert_memory_equal(ref.msgs[1].data.data, "\r\n.\r\nab\r\n.", 10);
    assert_int_equal(ref.msgs[1].used_bdat, 1);
    assert_int_equal(ref.msgs[1].bare_lf, 0);
    assert_int_equal(ref.msgs[1].bare_cr, 0);
    assert_int_equal(ref.msgs[2].data.len, 0);
    assert_memory_equal(ref.msgs[3].data.data, "QU", 2);
    drv_free(&ref);

    check_split_all(&o, sample, n);
    opts_init(&o, MV_LMTP);
    static const char lmtp[] =
        "LHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n"
        "DATA\r\nx\r\n..\r\n.\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 1\r\n\r"
        "BDAT 1 LAST\r\n\nQUIT\r\n";
    check_split_all(&o, lmtp, sizeof lmtp - 1);
}

/* ---- BDAT -------------------------------------------------------------- */

static void test_bdat(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    o.lim.max_message_bytes = 10;
    drv d;
    drv_init(&d, &o);
    const char *s1 =
        "EHLO c\r\nBDAT 4\r\nNOOPNOOP\r\n"                 /* no transaction: octets skipped */
        "MAIL FROM:<a@x.test>\r\nBDAT 4 LAST\r\nRSET"    /* no RCPT yet; LAST ends it */
        "RCPT TO:<b@y.test>\r\n"
        "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 6\r\nhello BDAT 4 LAST\r\nwrld"
        "MAIL FROM:<a@x.test> BODY=BINARYMIME\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
        "BDAT 0 LAST\r\n"
        "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 2\r\nabBDAT 3\r\n123BDAT 0 LAST\r\n"
        "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 1\r\nxDATA\r\nRSET\r\n"
        "MAIL FROM:<a@x.test>\r\nRCPT TO:<nope>\r\nBDAT 2 LAST\r\nzzNOOP\r\n"
        "bdat 11\r\n";
    drv_run(&d, s1, strlen(s1), 0);
    assert_string_equal(after_greeting(&d),
                        "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10\r\n250-8BITMIME\r\n"
                        "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
                        "503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n"
                        "250 2.1.0 Ok\r\n503 5.5.1 Error: need RCPT command\r\n"
                        "503 5.5.1 Error: need MAIL command\r\n" /* LAST ended the attempt */
                        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 6 octets received\r\n"
                        "250 2.0.0 Ok: queued as Q1\r\n"
                        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                        "503 5.5.1 Error: BODY=BINARYMIME requires BDAT\r\n"
                        "250 2.0.0 Ok: queued as Q2\r\n"
                        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 2 octets received\r\n"
                        "250 2.0.0 3 octets received\r\n250 2.0.0 Ok: queued as Q3\r\n"
                        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 1 octets received\r\n"
                        "503 5.5.1 Error: DATA cannot follow BDAT\r\n250 2.0.0 Ok\r\n"
                        "250 2.1.0 Ok\r\n501 5.1.3 Error: bad recipient address syntax\r\n"
                        "554 5.5.1 Error: no valid recipients\r\n250 2.0.0 Ok\r\n"
                        "552 5.3.4 Error: message size exceeds fixed limit; closing\r\n");
    assert_true(d.closed);
    assert_int_equal(d.n_msgs, 3);
    assert_int_equal(d.msgs[0].data.len, 10);
    assert_memory_equal(d.msgs[0].data.data, "hello wrld", 10);
    assert_int_equal(d.msgs[1].data.len, 0);
    assert_int_equal(d.msgs[1].body_binary, 1);
    assert_int_equal(d.msgs[1].used_bdat, 1);
    assert_memory_equal(d.msgs[2].data.data, "ab123", 5);
    drv_free(&d);

    /* over the limit across chunks: 552 for that chunk, the rest of the
     * transaction too, octets always skipped; the session goes on */
    drv_init(&d, &o);
    const char *s2 = "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
                     "BDAT 6\r\nhello BDAT 5\r\nworldBDAT 1 LAST\r\n!NOOP\r\n";
    drv_run(&d, s2, strlen(s2), 1);
    assert_non_null(strstr(out_str(&d), "250 2.0.0 6 octets received\r\n"
                                        "552 5.3.4 Error: message size exceeds fixed limit\r\n"
                                        "552 5.3.4 Error: message size exceeds fixed limit\r\n"
                                        "250 2.0.0 Ok\r\n"));
    assert_int_equal(d.n_msgs, 0);
    drv_free(&d);

    /* syntax errors close: the end of the chunk is unknown */
    static const char *bad[] = {"BDAT\r\n", "BDAT x\r\n", "BDAT 1 LAS\r\n", "BDAT 1 LAST x\r\n",
                                "BDAT -1\r\n", "BDAT 1LAST\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mv_smtp *s = mv_smtp_new(&o);
        char in[64];
        snprintf(in, sizeof in, "%sNOOP\r\n", bad[i]);
        assert_int_equal(mv_smtp_feed(s, (const uint8_t *)in, strlen(in)), strlen(bad[i]));
        assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_CLOSE);
        size_t n;
        const uint8_t *p = mv_smtp_output(s, &n);
        assert_non_null(memmem(p, n, "501 5.5.4 Syntax: BDAT chunk-size [LAST]; closing\r\n", 51));
        mv_smtp_free(s);
    }
    /* an absurd size is refused without reading it */
    mv_smtp *s = mv_smtp_new(&o);
    const char *in = "BDAT 99999999999999999999999 LAST\r\nxx";
    assert_int_equal(mv_smtp_feed(s, (const uint8_t *)in, strlen(in)), strlen(in) - 2);
    assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_CLOSE);
    mv_smtp_free(s);
}

/* BDAT data: bare CR/LF counted across chunks, a final CR is bare;
 * long HELO; zero limits mean the defaults; output compaction. */
static void test_bdat_bare_and_misc(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    drv d;
    drv_init(&d, &o);
    const char *sc = "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@y.test>\r\n"
                     "BDAT 3\r\na\nbBDAT 4 LAST\r\n\rc\r\r";
    drv_run(&d, sc, strlen(sc), 0);
    assert_int_equal(d.n_msgs, 1);
    assert_int_equal(d.msgs[0].data.len, 7);
    assert_int_equal(d.msgs[0].bare_lf, 1);
    assert_int_equal(d.msgs[0].bare_cr, 3);
    drv_free(&d);

    char line[400] = "EHLO ";
    memset(line + 5, 'h', 256);
    memcpy(line + 5 + 256, "\r\nMAIL FROM:<>\r\n", 17);
    transcript(&o, line, "501 5.5.4 Error: hostname too long\r\n"
                         "503 5.5.1 Error: send HELO/EHLO first\r\n");
    memset(&o.lim, 0, sizeof o.lim);
    o.hostname = NULL;
    transcript(&o, "EHLO c\r\n",
               "250-localhost\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n"
               "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n");

    /* output taken in odd pieces comes out whole and in order */
    mv_buf in = MV_BUF_INIT, want = MV_BUF_INIT, got = MV_BUF_INIT;
    mv_buf_append_str(&want, "220 localhost ESMTP ready\r\n");
    for (int i = 0; i < 5000; i++) {
        mv_buf_append_str(&in, i % 2 ? "NOOP\r\n" : "RSET\r\n");
        mv_buf_append_str(&want, "250 2.0.0 Ok\r\n");
    }
    mv_smtp *s = mv_smtp_new(&o);
    size_t at = 0, step = 1;
    while (at < in.len || got.len < want.len) {
        at += mv_smtp_feed(s, in.data + at, in.len - at);
        size_t n;
        const uint8_t *p = mv_smtp_output(s, &n);
        step = step * 7 % 40009 + 1;
        if (n > step)
            n = step;
        mv_buf_append(&got, p, n);
        mv_smtp_output_consumed(s, n);
    }
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    mv_smtp_free(s);
    mv_buf_free(&in);
    mv_buf_free(&want);
    mv_buf_free(&got);
}

/* ---- LMTP -------------------------------------------------------------- */

static void test_lmtp(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_LMTP);
    o.lim.max_message_bytes = 8;
    const char *script = "LHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
                         "RCPT TO:<bad@>\r\nRCPT TO:<c@y.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n";
    static const char *want[] = {
        /* accept */
        "250 2.1.5 <b@y.test> Ok: Q1\r\n250 2.1.5 <c@y.test> Ok: Q1\r\n",
        /* tempfail */
        "451 4.3.0 <b@y.test> Error: spool unavailable\r\n"
        "451 4.3.0 <c@y.test> Error: spool unavailable\r\n",
        /* reject */
        "554 5.7.1 <b@y.test> Error: refused\r\n554 5.7.1 <c@y.test> Error: refused\r\n",
        /* one by one */
        "250 2.1.5 <b@y.test> Q1\r\n"
        "451 4.3.0 <c@y.test> Error: could not store the message, try again later\r\n",
    };
    for (int a = ANS_ACCEPT; a <= ANS_RCPT_MIXED; a++) {
        drv d;
        drv_init(&d, &o);
        d.answer = a;
        drv_run(&d, script, strlen(script), 0);
        const char *got = strstr(out_str(&d), "354 End data with <CR><LF>.<CR><LF>\r\n");
        assert_non_null(got);
        got += 37;
        char exp[512];
        snprintf(exp, sizeof exp, "%s221 2.0.0 Bye\r\n", want[a]);
        assert_string_equal(got, exp);
        drv_free(&d);
    }
    /* oversize: every recipient gets the 552, also after BDAT LAST */
    const char *big = "LHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
                      "RCPT TO:<c@y.test>\r\nDATA\r\n123456789\r\n.\r\n"
                      "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n"
                      "BDAT 5\r\n12345BDAT 4 LAST\r\n6789"
                      "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n"
                      "BDAT 4\r\n1234BDAT 4 LAST\r\n5678NOOP\r\n";
    drv d;
    drv_init(&d, &o);
    drv_run(&d, big, strlen(big), 0);
    const char *got = strstr(out_str(&d), "354 End data with <CR><LF>.<CR><LF>\r\n") + 37;
    assert_string_equal(got,
                        "552 5.3.4 <b@y.test> Error: message size exceeds fixed limit\r\n"
                        "552 5.3.4 <c@y.test> Error: message size exceeds fixed limit\r\n"
                        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
                        "250 2.0.0 5 octets received\r\n"
                        "552 5.3.4 <b@y.test> Error: message size exceeds fixed limit\r\n"
                        "552 5.3.4 <c@y.test> Error: message size exceeds fixed limit\r\n"
                        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
                        "250 2.0.0 4 octets received\r\n"
                        "250 2.1.5 <b@y.test> Ok: Q1\r\n250 2.1.5 <c@y.test> Ok: Q1\r\n"
                        "250 2.0.0 Ok\r\n");
    assert_int_equal(d.n_msgs, 1);
    assert_memory_equal(d.msgs[0].data.data, "12345678", 8);
    drv_free(&d);

    /* shutdown while a message waits: just the 421 */
    mv_smtp *s = mv_smtp_new(&o);
    const char *in = "LHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n";
    size_t c = mv_smtp_feed(s, (const uint8_t *)in, strlen(in));
    assert_int_equal(c, strlen(in) - 6);
    assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_MESSAGE);
    assert_int_equal(mv_smtp_feed(s, (const uint8_t *)in + c, 6), 0);
    mv_smtp_shutdown(s);
    assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_CLOSE);
    assert_null(mv_smtp_message(s));
    mv_smtp_reply_accept(s, "X"); /* ignored */
    size_t n;
    const uint8_t *p = mv_smtp_output(s, &n);
    assert_memory_equal(p + n - 41, "421 4.3.2 mx.test Service shutting down\r\n", 41);
    mv_smtp_free(s);
}

/* Daemon-supplied codes and texts cannot break the reply stream. */
static void test_reply_sanitizing(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *enh, *text, *want;
    } cases[] = {
        {552, "5.3.4", "too big", "552 5.3.4 too big\r\n"},
        {452, "4.3.1", "full", "452 4.3.1 full\r\n"},
        {452, "5.3.1", "x", "452 4.0.0 x\r\n"},
        {550, NULL, "x\r\n250 fake", "550 5.0.0 x??250 fake\r\n"},
        {550, "5.1", "x", "550 5.0.0 x\r\n"},
        {550, "5.1.1234", "x", "550 5.0.0 x\r\n"},
        {250, "2.0.0", "x", "451 4.3.0 x\r\n"}, /* _reject never sends 2xx */
        {999, "9.9.9", "x", "451 4.3.0 x\r\n"},
        {550, "5.1.1", NULL, "550 5.1.1 Error\r\n"},
    };
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    const char *script = "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n.\r\n";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mv_smtp *s = mv_smtp_new(&o);
        mv_smtp_feed(s, (const uint8_t *)script, strlen(script));
        assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_MESSAGE);
        size_t n;
        mv_smtp_output(s, &n);
        mv_smtp_output_consumed(s, n);
        mv_smtp_reply_reject(s, cases[i].code, cases[i].enh, cases[i].text);
        const uint8_t *p = mv_smtp_output(s, &n);
        if (n != strlen(cases[i].want) || memcmp(p, cases[i].want, n) != 0)
            fail_msg("case %zu: got %.*s", i, (int)n, (const char *)p);
        mv_smtp_free(s);
    }
    /* a long queue id is cut, the line stays within 512 octets */
    mv_smtp *s = mv_smtp_new(&o);
    mv_smtp_feed(s, (const uint8_t *)script, strlen(script));
    char id[2000];
    memset(id, 'i', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    size_t n;
    mv_smtp_output(s, &n);
    mv_smtp_output_consumed(s, n);
    mv_smtp_reply_accept(s, id);
    mv_smtp_output(s, &n);
    assert_int_equal(n, MV_SMTP_REPLY_MAX);
    mv_smtp_reply_accept(s, NULL); /* nothing pending: ignored */
    mv_smtp_output(s, &n);
    assert_int_equal(n, MV_SMTP_REPLY_MAX);
    mv_smtp_free(s);
}

/* ---- STARTTLS ---------------------------------------------------------- */

static void test_starttls(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    o.tls_offer = 1;
    o.tls_required = 1;
    mv_smtp *s = mv_smtp_new(&o);
    /* plaintext injected after STARTTLS (CVE-2011-0411) is not consumed */
    const char *in = "EHLO c\r\nMAIL FROM:<a@x.test>\r\nSTARTTLS\r\nMAIL FROM:<a@x.test>\r\n";
    size_t c = mv_smtp_feed(s, (const uint8_t *)in, strlen(in));
    assert_int_equal(c, strlen(in) - strlen("MAIL FROM:<a@x.test>\r\n"));
    assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_STARTTLS);
    size_t n;
    const uint8_t *p = mv_smtp_output(s, &n);
    assert_non_null(memmem(p, n, "530 5.7.0 Must issue a STARTTLS command first\r\n"
                                 "220 2.0.0 Ready to start TLS\r\n", 77));
    assert_int_equal(mv_smtp_feed(s, (const uint8_t *)in + c, strlen(in) - c), 0);
    mv_smtp_output_consumed(s, n);
    mv_smtp_tls_started(s); /* the daemon discarded the injected bytes */
    assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_NONE);
    const char *after = "MAIL FROM:<a@x.test>\r\nEHLO c\r\nSTARTTLS\r\nSTARTTLS x\r\n"
                        "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n.\r\n";
    c = mv_smtp_feed(s, (const uint8_t *)after, strlen(after));
    assert_int_equal(c, strlen(after));
    p = mv_smtp_output(s, &n);
    const char *want = "503 5.5.1 Error: send HELO/EHLO first\r\n"
                       "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n"
                       "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
                       "503 5.5.1 Error: TLS already active\r\n"
                       "503 5.5.1 Error: TLS already active\r\n"
                       "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
    assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_MESSAGE);
    assert_string_equal(mv_smtp_message(s)->helo, "c");
    mv_smtp_tls_started(s); /* not pending: ignored */
    assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_MESSAGE);
    mv_smtp_free(s);

    /* not offered; arguments; inside a transaction; through the driver */
    opts_init(&o, MV_SMTP);
    transcript(&o, "STARTTLS\r\n", "502 5.5.1 Error: command not implemented\r\n");
    o.tls_offer = 1;
    transcript(&o, "STARTTLS now\r\nHELP\r\nEHLO c\r\nMAIL FROM:<>\r\nSTARTTLS\r\n",
               "501 5.5.4 Syntax: STARTTLS\r\n"
               "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP "
               "STARTTLS\r\n"
               "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n"
               "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
               "250 2.1.0 Ok\r\n503 5.5.1 Error: MAIL transaction in progress\r\n");
    drv d;
    drv_init(&d, &o);
    d.real_tls = 1;
    const char *t = "EHLO c\r\nSTARTTLS\r\nRSET\r\n";
    drv_run(&d, t, strlen(t), 0);
    assert_int_equal(d.tls, 1);
    assert_int_equal(d.consumed, strlen(t) - 6);
    drv_free(&d);
}

/* ---- pipelining -------------------------------------------------------- */

static void test_pipelining(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    /* all recipients fail: DATA gets 554 and the client sends no data (RFC
     * 2920 3.1); a client that does anyway has its lines read as commands */
    transcript(&o,
               "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<x@>\r\nRCPT TO:<@>\r\nDATA\r\n"
               "Subject: x\r\n.\r\nRSET\r\nMAIL FROM:<a@x.test>\r\nDATA\r\n"
               "RCPT TO:<b@y.test>\r\nDATA\r\nbody\r\n.\r\nDATA\r\nQUIT\r\n",
               "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n"
               "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
               "250 2.1.0 Ok\r\n501 5.1.3 Error: bad recipient address syntax\r\n"
               "501 5.1.3 Error: bad recipient address syntax\r\n"
               "554 5.5.1 Error: no valid recipients\r\n"
               "500 5.5.2 Error: command not recognized\r\n"
               "500 5.5.2 Error: command not recognized\r\n"
               "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n503 5.5.1 Error: need RCPT command\r\n"
               "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
               "250 2.0.0 Ok: queued as Q1\r\n503 5.5.1 Error: need MAIL command\r\n"
               "221 2.0.0 Bye\r\n");
    /* DATA with arguments, a second EHLO resets the transaction */
    transcript(&o,
               "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA now\r\nHELO d\r\n"
               "DATA\r\n",
               "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n"
               "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
               "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n501 5.5.4 Syntax: DATA\r\n250 mx.test\r\n"
               "503 5.5.1 Error: need MAIL command\r\n");
    /* tempfail keeps the session; the next transaction works */
    drv d;
    drv_init(&d, &o);
    d.answer = ANS_TEMPFAIL;
    const char *two = HEAD "a\r\n.\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
                           "b\r\n.\r\n";
    drv_run(&d, two, strlen(two), 0);
    assert_int_equal(d.n_msgs, 2);
    assert_int_equal(count_str(out_str(&d), "451 4.3.0 Error: spool unavailable\r\n"), 2);
    assert_memory_equal(d.msgs[1].data.data, "b\r\n", 3);
    drv_free(&d);
}

/* ---- limits ------------------------------------------------------------ */

static void test_limits(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    o.lim.max_recipients = 2;
    transcript(&o,
               "HELO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n"
               "RCPT TO:<d@y.test>\r\nRSET\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<d@y.test>\r\n",
               "250 mx.test\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
               "452 4.5.3 Error: too many recipients\r\n250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n"
               "250 2.1.5 Ok\r\n");

    /* command line: exactly max_command_line octets with CRLF is fine */
    opts_init(&o, MV_SMTP);
    o.lim.max_command_line = 600;
    char line[2000];
    for (size_t extra = 0; extra < 2; extra++) {
        size_t len = 600 - 2 + extra; /* "NOOP " + filler, CRLF not counted */
        memset(line, 'x', len);
        memcpy(line, "NOOP ", 5);
        memcpy(line + len, "\r\nNOOP\r\n", 9);
        for (size_t chunk = 0; chunk <= 7; chunk += 7) {
            drv d;
            drv_init(&d, &o);
            drv_run(&d, line, strlen(line), chunk);
            assert_string_equal(after_greeting(&d),
                                extra ? "500 5.5.2 Error: command line too long\r\n"
                                        "250 2.0.0 Ok\r\n"
                                      : "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
            drv_free(&d);
        }
    }
    /* bare LF: max_command_line - 1 before it is fine */
    memset(line, 'x', 599);
    memcpy(line, "NOOP ", 5);
    memcpy(line + 599, "\n", 2);
    transcript(&o, line, "250 2.0.0 Ok\r\n");
    /* a huge line never grows memory beyond the limit and is answered once */
    mv_buf huge = MV_BUF_INIT;
    for (int i = 0; i < 10000; i++)
        mv_buf_append_str(&huge, "MAIL FROM:<a@x.test> ");
    mv_buf_append_str(&huge, "\r\nQUIT\r\n");
    transcript(&o, (const char *)huge.data,
               "500 5.5.2 Error: command line too long\r\n221 2.0.0 Bye\r\n");
    mv_buf_free(&huge);
    /* a smaller limit than the RFC minimum is raised to it */
    o.lim.max_command_line = 10;
    transcript(&o, "NOOP 123456789012345\r\n", "250 2.0.0 Ok\r\n");

    /* errors: after max_errors bad commands the next one gets 421 */
    opts_init(&o, MV_SMTP);
    o.lim.max_errors = 3;
    mv_smtp *s = mv_smtp_new(&o);
    const char *bad = "FOO\r\nMAIL FROM:<a@x.test>\r\nNOOP\r\nBAR\r\nNOOP\r\nNOOP\r\n";
    size_t c = mv_smtp_feed(s, (const uint8_t *)bad, strlen(bad));
    assert_int_equal(c, strlen(bad) - 6);
    assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_CLOSE);
    size_t n;
    const uint8_t *p = mv_smtp_output(s, &n);
    const char *want = "220 mx.test ESMTP ready\r\n500 5.5.2 Error: command not recognized\r\n"
                       "503 5.5.1 Error: send HELO/EHLO first\r\n250 2.0.0 Ok\r\n"
                       "500 5.5.2 Error: command not recognized\r\n"
                       "421 4.7.0 mx.test Error: too many errors\r\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
    mv_smtp_counters k;
    mv_smtp_counters_get(s, &k);
    assert_int_equal(k.errors, 3);
    assert_int_equal(k.commands, 5);
    mv_smtp_free(s);
    /* a too-long line counts as well */
    o.lim.max_command_line = 512;
    memset(line, 'x', 1000);
    memcpy(line + 1000, "\r\nFOO\r\nFOO\r\nNOOP\r\n", 19);
    transcript(&o, line,
               "500 5.5.2 Error: command line too long\r\n"
               "500 5.5.2 Error: command not recognized\r\n"
               "500 5.5.2 Error: command not recognized\r\n"
               "421 4.7.0 mx.test Error: too many errors\r\n");

    /* message size: exactly the limit is kept, one more is refused and the
     * transaction reset */
    opts_init(&o, MV_SMTP);
    o.lim.max_message_bytes = 5;
    for (int over = 0; over < 2; over++) {
        const char *sc = over ? HEAD "1234\r\n.\r\nRCPT TO:<b@y.test>\r\n"
                              : HEAD "123\r\n.\r\nRCPT TO:<b@y.test>\r\n";
        drv d;
        drv_init(&d, &o);
        drv_run(&d, sc, strlen(sc), 1);
        assert_int_equal(d.n_msgs, over ? 0 : 1);
        const char *tail = strstr(out_str(&d), "354 End data with <CR><LF>.<CR><LF>\r\n") + 37;
        assert_string_equal(tail, over ? "552 5.3.4 Error: message size exceeds fixed limit\r\n"
                                         "503 5.5.1 Error: need MAIL command\r\n"
                                       : "250 2.0.0 Ok: queued as Q1\r\n"
                                         "503 5.5.1 Error: need MAIL command\r\n");
        drv_free(&d);
    }
    /* a big oversized message: consumed to the end, nothing kept */
    mv_buf big = MV_BUF_INIT;
    mv_buf_append_str(&big, HEAD);
    for (int i = 0; i < 5000; i++)
        mv_buf_append_str(&big, "line of text\r\n");
    mv_buf_append_str(&big, ".\r\nNOOP\r\n");
    drv d;
    drv_init(&d, &o);
    drv_run(&d, (const char *)big.data, big.len, 4096);
    assert_int_equal(d.consumed, big.len);
    assert_non_null(strstr(out_str(&d), "552 5.3.4 Error: message size exceeds fixed limit\r\n"
                                        "250 2.0.0 Ok\r\n"));
    mv_smtp_counters_get(d.s, &k);
    assert_int_equal(k.bytes, 5000 * 14);
    assert_int_equal(k.messages, 0);
    drv_free(&d);
    mv_buf_free(&big);
}

/* A client that pipelines without reading stops being read. */
static void test_output_pressure(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    mv_buf in = MV_BUF_INIT;
    for (int i = 0; i < 20000; i++)
        mv_buf_append_str(&in, "NOOP\r\n");
    mv_smtp *s = mv_smtp_new(&o);
    size_t c = mv_smtp_feed(s, in.data, in.len);
    assert_true(c < in.len);
    assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_NONE);
    size_t n;
    mv_smtp_output(s, &n);
    assert_true(n > MV_SMTP_OUTPUT_MAX && n < MV_SMTP_OUTPUT_MAX + 64);
    assert_int_equal(mv_smtp_feed(s, in.data + c, in.len - c), 0);
    /* partly sent is still too much; all sent lets it go on */
    mv_smtp_output_consumed(s, 5);
    assert_int_equal(mv_smtp_feed(s, in.data + c, in.len - c), 0);
    mv_smtp_output_consumed(s, n);
    size_t c2 = mv_smtp_feed(s, in.data + c, in.len - c);
    assert_true(c2 > 0);
    mv_smtp_free(s);
    mv_buf_free(&in);

    /* the driver, which sends after every feed, gets through all of it */
    drv d;
    drv_init(&d, &o);
    mv_buf_reset(&in);
    for (int i = 0; i < 20000; i++)
        mv_buf_append_str(&in, "NOOP\r\n");
    drv_run(&d, (const char *)in.data, in.len, 0);
    assert_int_equal(d.consumed, in.len);
    assert_int_equal(count_str(out_str(&d), "250 2.0.0 Ok\r\n"), 20000);
    drv_free(&d);
    mv_buf_free(&in);
}

/* ---- ownership of the data --------------------------------------------- */

static void test_take_data(void **state)
{
    (void)state;
    mv_smtp_opts o;
    opts_init(&o, MV_SMTP);
    drv d;
    drv_init(&d, &o);
    d.take = 1;
    const char *sc = HEAD "hello\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n.\r\n"
                          "MAIL FROM:<>\r\nRCPT TO:<b@y.test>\r\nBDAT 0 LAST\r\n";
    drv_run(&d, sc, strlen(sc), 0);
    assert_int_equal(d.n_msgs, 3);
    assert_int_equal(d.msgs[0].data.len, 7);
    assert_memory_equal(d.msgs[0].data.data, "hello\r\n", 7);
    assert_int_equal(d.msgs[1].data.len, 0);
    assert_int_equal(d.msgs[2].data.len, 0);
    drv_free(&d);

    /* take twice; take with nothing pending; free with data not taken */
    mv_smtp *s = mv_smtp_new(&o);
    size_t len = 99;
    assert_null(mv_smtp_take_data(s, &len));
    assert_int_equal(len, 0);
    const char *in = HEAD "abc\r\n.\r\n";
    mv_smtp_feed(s, (const uint8_t *)in, strlen(in));
    assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_MESSAGE);
    uint8_t *p = mv_smtp_take_data(s, &len);
    assert_int_equal(len, 5);
    assert_string_equal((char *)p, "abc\r\n");
    assert_null(mv_smtp_take_data(s, &len));
    assert_int_equal(mv_smtp_message(s)->len, 0);
    free(p);
    mv_smtp_reply_accept(s, "Q");
    assert_null(mv_smtp_message(s));
    mv_smtp_feed(s, (const uint8_t *)in + 18, strlen(in) - 18); /* MAIL.. again */
    assert_int_equal(mv_smtp_event(s), MV_SMTP_EV_MESSAGE);
    mv_smtp_free(s); /* the untaken data is freed here (ASan checks) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_ehlo),
        cmocka_unit_test(test_simple_commands),
        cmocka_unit_test(test_quit_and_counters),
        cmocka_unit_test(test_mail_syntax),
        cmocka_unit_test(test_rcpt_syntax),
        cmocka_unit_test(test_data_unstuffing),
        cmocka_unit_test(test_smuggling),
        cmocka_unit_test(test_chunking),
        cmocka_unit_test(test_bdat),
        cmocka_unit_test(test_bdat_bare_and_misc),
        cmocka_unit_test(test_lmtp),
        cmocka_unit_test(test_reply_sanitizing),
        cmocka_unit_test(test_starttls),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_output_pressure),
        cmocka_unit_test(test_take_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
