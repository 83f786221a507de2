/* SPDX-License-Identifier: MIT */
/* journal_test.c - journal-report unwrapping, the envelope-recipient text
 * form, Postfix sub-address decoding and X-Gm-Original-To.
 *
 * Reports are hand-written here so the unit tests never need python.  When
 * MV_JOURNAL_FIXTURES names a directory written by tests/gen/mvjournal.py,
 * every report in it is also checked against its manifest.json (the e2e
 * layer sets it); unset, that test passes without doing anything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "../../ingest/journal.h"
#include "../../lib/buf.h"
#include "../../lib/util.h"

/* ---- helpers ------------------------------------------------------------- */

/* crlf - the same text with every LF made CRLF (caller frees). */
static char *crlf(const char *s)
{
    mv_buf b = MV_BUF_INIT;
    for (; *s; s++) {
        if (*s == '\n')
            mv_buf_append_byte(&b, '\r');
        mv_buf_append_byte(&b, (uint8_t)*s);
    }
    mv_buf_append(&b, "", 0);
    return (char *)mv_buf_steal(&b, NULL);
}

static mv_journal parse_ok(const void *p, size_t n, const mv_journal_limits *lim)
{
    mv_journal j;
    mv_err err;
    mv_status st = mv_journal_parse(p, n, lim, &j, &err);
    if (st != MV_OK)
        fail_msg("parse: %s", err.msg);
    return j;
}

static void assert_rcpts(const mv_journal *j, const char *const *want, size_t n)
{
    if (j->n_rcpt != n) {
        for (size_t i = 0; i < j->n_rcpt; i++) {
            char *s = mv_env_rcpt_format(&j->rcpt[i]);
            print_message("  got %s\n", s ? s : "(null)");
            free(s);
        }
        fail_msg("want %zu recipients, got %zu", n, j->n_rcpt);
    }
    for (size_t i = 0; i < n; i++) {
        char *s = mv_env_rcpt_format(&j->rcpt[i]);
        assert_non_null(s);
        assert_string_equal(s, want[i]);
        free(s);
    }
}

static void assert_defects(uint32_t got, uint32_t want)
{
    if (got != want) {
        char g[256], w[256];
        fail_msg("defects: want {%s} got {%s}", mv_journal_defects_str(want, w, sizeof w),
                 mv_journal_defects_str(got, g, sizeof g));
    }
}

static void assert_inner(const mv_journal *j, const void *want, size_t n)
{
    assert_non_null(j->inner);
    assert_int_equal(j->inner_len, n);
    assert_memory_equal(j->inner, want, n);
}

/* build - a report: top headers (LF, made CRLF), then the parts, each
 * preceded by "--B\r\n", closed by "--B--\r\n" unless open. */
static uint8_t *build(size_t *len, const char *top, int close, ...)
{
    mv_buf b = MV_BUF_INIT;
    char *t = crlf(top);
    mv_buf_append_str(&b, t);
    free(t);
    va_list ap;
    va_start(ap, close);
    const char *part;
    while ((part = va_arg(ap, const char *)) != NULL) {
        size_t plen = va_arg(ap, size_t);
        mv_buf_append_str(&b, "\r\n--B\r\n");
        mv_buf_append(&b, part, plen ? plen : strlen(part));
    }
    va_end(ap);
    if (close)
        mv_buf_append_str(&b, "\r\n--B--\r\n");
    return mv_buf_steal(&b, len);
}

static const char TOP[] = "From: Microsoft Exchange <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@corp.example>\n"
                          "To: journal@archive.example\n"
                          "Subject: Quarterly numbers\n"
                          "X-MS-Journal-Report:\n"
                          "MIME-Version: 1.0\n"
                          "Content-Type: multipart/mixed; boundary=\"B\"\n"
                          "\n"
                          "This is a multi-part message in MIME format.";

/* the original, CRLF, 7-bit */
static const char ORIG[] = "Received: from mail.corp.example by hub.corp.example; Mon, 1 Jan 2024 10:00:00 +0000\r\n"
                           "From: Alice <alice@corp.example>\r\n"
                           "To: Bob <bob@corp.example>\r\n"
                           "Subject: Quarterly numbers\r\n"
                           "Message-ID: <q1@corp.example>\r\n"
                           "\r\n"
                           "Numbers attached.\r\n"
                           "--\r\n"
                           "-- \r\n"
                           "--Bx not the boundary\r\n"
                           "Alice\r\n";

/* ---- source kinds and the text form ------------------------------------- */

static void test_source_kind(void **state)
{
    (void)state;
    const char *names[] = {"plain", "exchange-journal", "postfix-bcc", "google-routing"};
    for (int i = 0; i < 4; i++) {
        mv_source_kind k = MV_SRC_PLAIN;
        assert_string_equal(mv_source_kind_name((mv_source_kind)i), names[i]);
        assert_int_equal(mv_source_kind_parse(names[i], &k), 0);
        assert_int_equal((int)k, i);
    }
    mv_source_kind k = MV_SRC_GOOGLE_ROUTING;
    assert_int_equal(mv_source_kind_parse("Plain", &k), -1);
    assert_int_equal(mv_source_kind_parse("", &k), -1);
    assert_int_equal(mv_source_kind_parse(NULL, &k), -1);
    assert_int_equal((int)k, MV_SRC_GOOGLE_ROUTING);
    assert_string_equal(mv_source_kind_name((mv_source_kind)42), "unknown");
}

static void test_rcpt_text_form(void **state)
{
    (void)state;
    static const char *const good[] = {
        "rcpt <archive+a=b@x>",
        "to <a@x>",
        "cc <a@x> forwarded <u@x>",
        "bcc <bob@x.example> expanded <sales@x.example>",
        "recipient <m@x> expanded <dl@x> forwarded <u@x>",
        "decoded <\"john doe\"@corp.example>",
        "original-to <ü@bücher.example>",
        "to <a b@x>",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        mv_env_rcpt r;
        if (mv_env_rcpt_parse(good[i], &r) != 0)
            fail_msg("parse failed: %s", good[i]);
        char *s = mv_env_rcpt_format(&r);
        assert_non_null(s);
        assert_string_equal(s, good[i]);
        free(s);
        mv_env_rcpt_clear(&r);
        assert_null(r.addr);
    }
    mv_env_rcpt r;
    assert_int_equal(mv_env_rcpt_parse("bcc <bob@x> expanded <dl@x>", &r), 0);
    assert_int_equal(r.role, MV_ROLE_BCC);
    assert_string_equal(r.addr, "bob@x");
    assert_string_equal(r.expanded, "dl@x");
    assert_null(r.forwarded);
    mv_env_rcpt_clear(&r);

    static const char *const bad[] = {
        "", "bcc", "bcc ", "bcc <>", "bcc <a@x", "bcc <a@x> ", "bcc  <a@x>", "BCC <a@x>",
        "xx <a@x>", "bcc <a@x>x", "bcc <a<b@x>", "bcc <a@x> forwarded <u@x> expanded <d@x>",
        "bcc <a@x> expanded <>", "bcc <a@x> expanded <d@x> expanded <e@x>", "bcc <a\n@x>",
        "bcc <a@x> forwarded<u@x>", " bcc <a@x>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r.addr = (char *)"junk";
        if (mv_env_rcpt_parse(bad[i], &r) != -1)
            fail_msg("accepted: \"%s\"", bad[i]);
        assert_null(r.addr);
        assert_null(r.expanded);
    }
    assert_int_equal(mv_env_rcpt_parse(NULL, &r), -1);

    /* fields the form cannot carry are refused, never written ambiguously */
    mv_env_rcpt w = {MV_ROLE_TO, (char *)"a>b@x", NULL, NULL};
    assert_null(mv_env_rcpt_format(&w));
    w.addr = (char *)"a@x";
    w.expanded = (char *)"";
    assert_null(mv_env_rcpt_format(&w));
    w.expanded = (char *)"d\r@x";
    assert_null(mv_env_rcpt_format(&w));
    w.expanded = NULL;
    w.role = (mv_rcpt_role)99;
    assert_null(mv_env_rcpt_format(&w));
    w.role = MV_ROLE_TO;
    w.addr = NULL;
    assert_null(mv_env_rcpt_format(&w));
    assert_null(mv_env_rcpt_format(NULL));
    mv_env_rcpt_clear(NULL);
}

static void test_defects_str(void **state)
{
    (void)state;
    char b[256];
    assert_string_equal(mv_journal_defects_str(0, b, sizeof b), "");
    assert_string_equal(mv_journal_defects_str(MV_JDEF_NO_ORIGINAL | MV_JDEF_TNEF, b, sizeof b),
                        "journal-no-original,journal-tnef");
    assert_string_equal(mv_journal_defects_str(MV_JDEF_BAD_BODY | MV_JDEF_TRUNCATED |
                                                   MV_JDEF_BAD_ENCODING | MV_JDEF_NO_END_BOUNDARY |
                                                   MV_JDEF_LIMIT,
                                               b, sizeof b),
                        "journal-bad-body,journal-truncated,journal-bad-encoding,"
                        "journal-no-end-boundary,journal-limit");
    assert_string_equal(mv_journal_defects_str(1u << 31, b, sizeof b), "journal-bit31");
    char small[8];
    mv_journal_defects_str(MV_JDEF_NO_ORIGINAL, small, sizeof small);
    assert_true(strlen(small) < sizeof small);
}

/* ---- detection ------------------------------------------------------------ */

static void test_detect(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int want;
    } cases[] = {
        {"X-MS-Journal-Report:\r\nSubject: x\r\n\r\nbody", 1},
        {"Subject: x\nx-ms-journal-report: \n\n", 1},
        {"Content-Identifier: ExJournalReport\n\n", 1},
        {"Content-Identifer:  exjournalreport \n\n", 1},
        {"Content-Identifier: something else\n\n", 0},
        {"X-WM-Journal-Report: journal\n\n", 1},
        {"X-MS-Exchange-Organization-Journal-Report: \n\n", 0},
        {"X-MS-Exchange-Organization-Processed-By-Journaling: Journal Agent\n\n", 0},
        {"Subject: x\n\nX-MS-Journal-Report:\n", 0},                   /* in the body */
        {"Subject: x\n X-MS-Journal-Report: folded into Subject\n\n", 0}, /* a continuation */
        {"X-MS-Journal-Report : \n\n", 1},                             /* blanks before the colon */
        {"", 0},
        {"\n\nX-MS-Journal-Report:\n", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (mv_journal_detect((const uint8_t *)cases[i].s, strlen(cases[i].s)) != cases[i].want)
            fail_msg("case %zu: want %d", i, cases[i].want);
    assert_int_equal(mv_journal_detect(NULL, 0), 0);

    mv_journal j;
    mv_err err;
    const char *plain = "From: a@x\nSubject: hi\n\nTo: bob@x\n";
    j.n_rcpt = 5;
    assert_int_equal(mv_journal_parse((const uint8_t *)plain, strlen(plain), NULL, &j, &err),
                     MV_EMALFORMED);
    assert_int_equal(err.code, MV_EMALFORMED);
    assert_int_equal(j.n_rcpt, 0);
    assert_null(j.inner);
    assert_int_equal(mv_journal_parse(NULL, 0, NULL, &j, NULL), MV_EMALFORMED);
}

/* ---- Exchange 2007+ reports ---------------------------------------------- */

static void test_2007_qp(void **state)
{
    (void)state;
    const char *text = "Content-Type: text/plain; charset=\"utf-8\"\r\n"
                       "Content-Transfer-Encoding: quoted-printable\r\n"
                       "\r\n"
                       "Sender: alice@corp.example\r\n"
                       "Subject: Quarterly numbers =E2=82=AC =C3=BCber\r\n"
                       "Message-Id: <q1@corp.example>\r\n"
                       "To: bob@corp.example\r\n"
                       "Cc: <carol@corp.example>, Forwarded: carl@corp.example\r\n"
                       "Bcc: dave@corp.example, Expanded: sales@corp.example\r\n"
                       "Recipient: erin@corp.example, Expanded: all@corp.example, Forwarded: =\r\n"
                       "frank@corp.example\r\n"
                       "BCC: very.long.address.that.was.wrapped.by.a.gateway.somewhere.along.th=\r\n"
                       "e.way@corp.example\r\n";
    const char *orig = "Content-Type: message/rfc822\r\n"
                       "Content-Disposition: attachment\r\n"
                       "\r\n";
    mv_buf part = MV_BUF_INIT;
    mv_buf_append_str(&part, orig);
    mv_buf_append_str(&part, ORIG);
    size_t n;
    uint8_t *rep = build(&n, TOP, 1, text, (size_t)0, (const char *)part.data, part.len, NULL);
    mv_buf_free(&part);
    assert_int_equal(mv_journal_detect(rep, n), 1);

    mv_journal j = parse_ok(rep, n, NULL);
    assert_int_equal(j.generation, 2007);
    assert_string_equal(j.sender, "alice@corp.example");
    assert_null(j.on_behalf_of);
    assert_string_equal(j.subject, "Quarterly numbers \xe2\x82\xac \xc3\xbc" "ber");
    assert_string_equal(j.message_id, "<q1@corp.example>");
    static const char *const want[] = {
        "to <bob@corp.example>",
        "cc <carol@corp.example> forwarded <carl@corp.example>",
        "bcc <dave@corp.example> expanded <sales@corp.example>",
        "recipient <erin@corp.example> expanded <all@corp.example> forwarded <frank@corp.example>",
        "bcc <very.long.address.that.was.wrapped.by.a.gateway.somewhere.along.the.way@corp.example>",
    };
    assert_rcpts(&j, want, 5);
    assert_int_equal(j.rcpt[2].role, MV_ROLE_BCC);
    assert_string_equal(j.rcpt[2].expanded, "sales@corp.example");
    /* ORIG holds "\r\n" at its end, which is content; the CRLF of the
     * delimiter line is not */
    assert_inner(&j, ORIG, strlen(ORIG));
    assert_true(j.inner >= rep && j.inner + j.inner_len <= rep + n);
    assert_defects(j.defects, 0);
    mv_journal_free(&j);
    assert_null(j.rcpt);
    mv_journal_free(&j);
    mv_journal_free(NULL);
    free(rep);
}

/* base64 report text in latin-1, original as `binary` with bare LF lines,
 * 8-bit bytes, no final line end; text not the first part. */
static void test_base64_text_binary_original(void **state)
{
    (void)state;
    /* "Sender: s@x\r\nSubject: Gr\xfc\xdf" "e\r\nMessage-ID: <m@x>\r\nTo: a@x\r\nOn-Behalf-Of: boss@x\r\n" */
    const char *text = "Content-Type: text/plain; charset=iso-8859-1\r\n"
                       "Content-Transfer-Encoding: base64\r\n"
                       "\r\n"
                       "U2VuZGVyOiBzQHgNClN1YmplY3Q6IEdy/N9lDQpNZXNzYWdlLUlEOiA8bUB4Pg0KVG86IGFAeA0K\r\n"
                       "T24tQmVoYWxmLU9mOiBib3NzQHgNCg==\r\n";
    const char html[] = "Content-Type: text/html\r\n\r\n<p>Sender: fake@x</p>";
    static const uint8_t orig[] = "Subject: caf\xe9\nFrom: a@x\n\nline one\nline \xff\xfe two\r\n--B\x01tail";
    size_t olen = sizeof orig - 1;
    mv_buf part = MV_BUF_INIT;
    mv_buf_append_str(&part, "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\n");
    mv_buf_append(&part, orig, olen);
    size_t n;
    uint8_t *rep = build(&n, TOP, 1, html, (size_t)0, text, (size_t)0, (const char *)part.data,
                         part.len, NULL);
    mv_buf_free(&part);
    mv_journal j = parse_ok(rep, n, NULL);
    assert_string_equal(j.sender, "s@x");
    assert_string_equal(j.on_behalf_of, "boss@x");
    assert_string_equal(j.subject, "Gr\xc3\xbc\xc3\x9f" "e");
    assert_string_equal(j.message_id, "<m@x>");
    static const char *const want[] = {"to <a@x>"};
    assert_rcpts(&j, want, 1);
    assert_inner(&j, orig, olen);
    assert_defects(j.defects, 0);
    mv_journal_free(&j);
    free(rep);
}

static void test_original_encoded(void **state)
{
    (void)state;
    const char *text = "Content-Type: text/plain\r\n\r\nSender: s@x\r\nTo: a@x\r\n";
    /* ORIG-like bytes, base64 */
    const char *orig = "Subject: hi\r\n\r\nbody\r\n";
    const char *b64 = "Content-Type: message/rfc822\r\n"
                      "Content-Transfer-Encoding: BASE64\r\n\r\n"
                      "U3ViamVjdDogaGkNCg0K\r\nYm9keQ0K\r\n";
    size_t n;
    uint8_t *rep = build(&n, TOP, 1, text, (size_t)0, b64, (size_t)0, NULL);
    mv_journal j = parse_ok(rep, n, NULL);
    assert_inner(&j, orig, strlen(orig));
    assert_non_null(j.inner_owned);
    assert_defects(j.defects, 0);
    mv_journal_free(&j);
    free(rep);

    const char *qp = "Content-Type: message/rfc822\r\n"
                     "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                     "Subject: caf=C3=A9  \r\n\r\nbo=\r\ndy\r\n";
    rep = build(&n, TOP, 1, text, (size_t)0, qp, (size_t)0, NULL);
    j = parse_ok(rep, n, NULL);
    const char *dq = "Subject: caf\xc3\xa9\r\n\r\nbody\r\n";
    assert_inner(&j, dq, strlen(dq));
    assert_defects(j.defects, 0);
    mv_journal_free(&j);
    free(rep);

    const char *broken = "Content-Type: message/rfc822\r\n"
                         "Content-Transfer-Encoding: base64\r\n\r\n"
                         "U3ViamVjdDogaGkNCg0K!!\r\nYm9keQ0K=\r\n";
    rep = build(&n, TOP, 1, text, (size_t)0, broken, (size_t)0, NULL);
    j = parse_ok(rep, n, NULL);
    assert_inner(&j, orig, strlen(orig));
    assert_defects(j.defects, MV_JDEF_BAD_ENCODING);
    mv_journal_free(&j);
    free(rep);
}

static void test_2003(void **state)
{
    (void)state;
    const char *top = "From: journal@corp.example\n"
                      "Content-Identifer: ExJournalReport\n"
                      "Content-Type: multipart/mixed;\n\tboundary=B\n"
                      "\n";
    const char *text = "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
                       "Sender: alice@corp.example\r\n"
                       "Message-ID: <m2003@corp.example>\r\n"
                       "Recipients: bob@corp.example, carol@corp.example,\r\n"
                       "  dave@corp.example, Expanded: dl@corp.example, <erin@corp.example>\r\n";
    const char *orig = "Content-Type: message/rfc822\r\n\r\nSubject: old\r\n\r\nhi\r\n";
    size_t n;
    uint8_t *rep = build(&n, top, 1, text, (size_t)0, orig, (size_t)0, NULL);
    mv_journal j = parse_ok(rep, n, NULL);
    assert_int_equal(j.generation, 2003);
    assert_string_equal(j.sender, "alice@corp.example");
    assert_null(j.subject);
    static const char *const want[] = {
        "recipient <bob@corp.example>",
        "recipient <carol@corp.example>",
        "recipient <dave@corp.example> expanded <dl@corp.example>",
        "recipient <erin@corp.example>",
    };
    assert_rcpts(&j, want, 4);
    assert_inner(&j, "Subject: old\r\n\r\nhi\r\n", 20);
    assert_defects(j.defects, 0);
    mv_journal_free(&j);
    free(rep);

    /* the vendor marker */
    const char *wm = "X-WM-Journal-Report: journal\nContent-Type: multipart/mixed; boundary=B\n\n";
    rep = build(&n, wm, 1, text, (size_t)0, orig, (size_t)0, NULL);
    j = parse_ok(rep, n, NULL);
    assert_int_equal(j.generation, 1);
    assert_int_equal(j.n_rcpt, 4);
    mv_journal_free(&j);
    free(rep);
}

static void test_tnef_and_no_original(void **state)
{
    (void)state;
    const char *text = "Content-Type: text/plain\r\n\r\nSender: s@x\r\nBcc: b@x\r\n";
    const char *tnef = "Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\n"
                       "Content-Transfer-Encoding: base64\r\n\r\n"
                       "eJ8+IgAAAQaQCAAEAAAAAAABAAEAAQeQBgAIAAAA5AQAAAAAAADoAAEIgAcAGAAAAElQTS5NaWNy\r\n";
    size_t n;
    uint8_t *rep = build(&n, TOP, 1, text, (size_t)0, tnef, (size_t)0, NULL);
    mv_journal j = parse_ok(rep, n, NULL);
    assert_null(j.inner);
    assert_int_equal(j.inner_len, 0);
    assert_defects(j.defects, MV_JDEF_NO_ORIGINAL | MV_JDEF_TNEF);
    static const char *const want[] = {"bcc <b@x>"};
    assert_rcpts(&j, want, 1);
    assert_string_equal(j.sender, "s@x");
    mv_journal_free(&j);
    free(rep);

    rep = build(&n, TOP, 1, text, (size_t)0, NULL);
    j = parse_ok(rep, n, NULL);
    assert_null(j.inner);
    assert_defects(j.defects, MV_JDEF_NO_ORIGINAL);
    assert_rcpts(&j, want, 1);
    mv_journal_free(&j);
    free(rep);

    /* a single-part "report" (what a forger sends): lines read, nothing unwrapped */
    const char *forged = "X-MS-Journal-Report:\nContent-Type: text/plain\n\nSender: ceo@x\nBcc: spy@x\n";
    j = parse_ok(forged, strlen(forged), NULL);
    assert_null(j.inner);
    assert_defects(j.defects, MV_JDEF_NO_ORIGINAL);
    static const char *const fw[] = {"bcc <spy@x>"};
    assert_rcpts(&j, fw, 1);
    mv_journal_free(&j);

    /* a null reverse path is no damage */
    const char *nullsender = "X-MS-Journal-Report:\nContent-Type: text/plain\n\nSender: <>\nTo: a@x\n";
    j = parse_ok(nullsender, strlen(nullsender), NULL);
    assert_null(j.sender);
    assert_defects(j.defects, MV_JDEF_NO_ORIGINAL);
    mv_journal_free(&j);

    /* no text at all */
    const char *orig = "Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ny";
    rep = build(&n, TOP, 1, orig, (size_t)0, NULL);
    j = parse_ok(rep, n, NULL);
    assert_inner(&j, "Subject: x\r\n\r\ny", 15);
    assert_defects(j.defects, MV_JDEF_BAD_BODY);
    assert_int_equal(j.n_rcpt, 0);
    assert_null(j.sender);
    mv_journal_free(&j);
    free(rep);
}

static void test_truncated_multipart(void **state)
{
    (void)state;
    const char *text = "Content-Type: text/plain\r\n\r\nSender: s@x\r\nTo: a@x\r\n";
    const char *orig = "Content-Type: message/global\r\n\r\nSubject: cut\r\n\r\nthe mail was cu";
    size_t n;
    uint8_t *rep = build(&n, TOP, 0, text, (size_t)0, orig, (size_t)0, NULL);
    mv_journal j = parse_ok(rep, n, NULL);
    assert_inner(&j, "Subject: cut\r\n\r\nthe mail was cu", 31);
    assert_defects(j.defects, MV_JDEF_NO_END_BOUNDARY);
    mv_journal_free(&j);
    free(rep);

    /* cut inside the report text: no original, recipients so far kept */
    const char *cut = "X-MS-Journal-Report:\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
                      "--B\r\nContent-Type: text/plain\r\n\r\nSender: s@x\r\nTo: a@x\r\nTo: b@";
    j = parse_ok(cut, strlen(cut), NULL);
    assert_null(j.inner);
    assert_defects(j.defects, MV_JDEF_NO_ORIGINAL);
    static const char *const want[] = {"to <a@x>", "to <b@>"};
    assert_rcpts(&j, want, 2);
    mv_journal_free(&j);
}

/* boundaries: quoted or not, transport padding, LF-only reports, a
 * boundary that is a prefix of another, a preamble that looks like one */
static void test_boundaries(void **state)
{
    (void)state;
    const char *r1 = "X-MS-Journal-Report:\n"
                     "Content-Type: multipart/mixed; boundary=abc\n"
                     "\n"
                     "--abcd not a delimiter\n"
                     "--abc  \t\n"
                     "Content-Type: text/plain\n\nSender: s@x\nTo: a@x\n"
                     "--abc\n"
                     "Content-Type: message/rfc822\n"
                     "Content-Transfer-Encoding: 7bit\n"
                     "\n"
                     "Subject: inner\n"
                     "Content-Type: multipart/alternative; boundary=\"abc-1\"\n\n"
                     "--abc-1\n\nx\n--abc-1--\n"
                     "\n"
                     "--abc--   \n"
                     "epilogue\n--abc\nContent-Type: message/rfc822\n\nSubject: epilogue\n\n";
    mv_journal j = parse_ok(r1, strlen(r1), NULL);
    const char *want = "Subject: inner\n"
                       "Content-Type: multipart/alternative; boundary=\"abc-1\"\n\n"
                       "--abc-1\n\nx\n--abc-1--\n";
    assert_inner(&j, want, strlen(want));
    assert_defects(j.defects, 0);
    assert_int_equal(j.n_rcpt, 1);
    mv_journal_free(&j);

    /* binary original right after the header block, no line ends at all */
    const char *r2 = "X-MS-Journal-Report:\r\n"
                     "Content-Type: multipart/mixed; boundary=\"=_x\"\r\n\r\n"
                     "--=_x\r\nContent-Type: text/plain\r\n\r\nTo: a@x\r\n"
                     "--=_x\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                     "Subject: s\r\rbody\r"
                     "\r\n--=_x--";
    j = parse_ok(r2, strlen(r2), NULL);
    assert_inner(&j, "Subject: s\r\rbody\r", 17);
    assert_defects(j.defects, 0); /* a report without Sender is not damaged */
    mv_journal_free(&j);
}

static void test_nested_wrapper(void **state)
{
    (void)state;
    const char *r = "X-MS-Journal-Report:\r\n"
                    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
                    "--outer\r\n"
                    "Content-Type: text/plain\r\n\r\n"
                    "This message was scanned by Gateway 9000.\r\n"
                    "--outer\r\n"
                    "Content-Type: multipart/mixed; boundary=\"inner\"\r\n\r\n"
                    "--inner\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n\r\n"
                    "Sender: s@x\r\nSubject: \xc3\xa9t\xc3\xa9\r\nMessage-ID: <n@x>\r\nBcc: b@x\r\n"
                    "--inner\r\n"
                    "Content-Type: message/rfc822\r\n\r\n"
                    "Subject: wrapped\r\n\r\nhello\r\n"
                    "--inner--\r\n"
                    "--outer--\r\n";
    mv_journal j = parse_ok(r, strlen(r), NULL);
    assert_inner(&j, "Subject: wrapped\r\n\r\nhello", 25);
    assert_string_equal(j.subject, "\xc3\xa9t\xc3\xa9");
    static const char *const want[] = {"bcc <b@x>"};
    assert_rcpts(&j, want, 1);
    assert_defects(j.defects, 0);
    mv_journal_free(&j);

    /* the same with a depth limit that stops before the report */
    mv_journal_limits lim = {0};
    lim.max_depth = 1;
    j = parse_ok(r, strlen(r), &lim);
    assert_null(j.inner);
    assert_defects(j.defects, MV_JDEF_NO_ORIGINAL | MV_JDEF_LIMIT | MV_JDEF_BAD_BODY);
    mv_journal_free(&j);
}

static void test_limits(void **state)
{
    (void)state;
    mv_buf text = MV_BUF_INIT;
    mv_buf_append_str(&text, "Content-Type: text/plain\r\n\r\nSender: s@x\r\n");
    for (int i = 0; i < 50; i++)
        mv_buf_printf(&text, "To: u%d@x, Expanded: dl@x\r\n", i);
    size_t n;
    uint8_t *rep = build(&n, TOP, 1, (const char *)text.data, text.len,
                         "Content-Type: message/rfc822\r\n\r\nSubject: s\r\n\r\nb", (size_t)0, NULL);
    mv_buf_free(&text);
    mv_journal_limits lim = {0};
    lim.max_rcpt = 3;
    mv_journal j = parse_ok(rep, n, &lim);
    static const char *const want[] = {"to <u0@x> expanded <dl@x>", "to <u1@x> expanded <dl@x>",
                                       "to <u2@x> expanded <dl@x>"};
    assert_rcpts(&j, want, 3);
    assert_defects(j.defects, MV_JDEF_TRUNCATED);
    assert_non_null(j.inner);
    mv_journal_free(&j);

    memset(&lim, 0, sizeof lim);
    lim.max_body_bytes = 60;
    j = parse_ok(rep, n, &lim);
    assert_true(j.n_rcpt >= 1 && j.n_rcpt <= 3);
    assert_true(j.defects & MV_JDEF_TRUNCATED);
    mv_journal_free(&j);

    memset(&lim, 0, sizeof lim);
    lim.max_parts = 2;
    j = parse_ok(rep, n, &lim);
    assert_null(j.inner);
    assert_true(j.defects & MV_JDEF_LIMIT);
    assert_true(j.defects & MV_JDEF_NO_ORIGINAL);
    mv_journal_free(&j);

    memset(&lim, 0, sizeof lim);
    lim.max_header_bytes = 64;
    j = parse_ok(rep, n, &lim);
    /* the top header block is longer than that: the marker is still seen,
     * but nothing is walked */
    assert_true(j.defects & MV_JDEF_LIMIT);
    assert_null(j.inner);
    mv_journal_free(&j);

    mv_journal_limits d;
    mv_journal_limits_default(&d);
    assert_int_equal(d.max_rcpt, 100000);
    assert_int_equal(d.max_body_bytes, 16u << 20);
    assert_int_equal(d.max_depth, 8);
    free(rep);
}

/* damaged report text: unparseable lines are flagged, the rest kept */
static void test_bad_lines(void **state)
{
    (void)state;
    const char *text = "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                       "\xef\xbb\xbfSender: \"Alice Q\" <alice@x>\r\n"
                       "Sender: second@x\r\n"
                       "this line is prose\r\n"
                       "To: <broken@x\r\n"
                       "To: good@x, Expanded: <dl@x>, Expanded: dl2@x\r\n"
                       "Cc:\r\n"
                       "X-Extra: ignored\r\n"
                       "Bcc: \"quoted, name\"@x\r\n"
                       "Cc: \"escaped\\\x01" "control\"@x\r\n"
                       "Recipient: a b@x, c@x\r\n"
                       "Expanded: lone@x\r\n"
                       "Subject: bad \xff utf8\r\n";
    size_t n;
    uint8_t *rep = build(&n, TOP, 1, text, (size_t)0,
                         "Content-Type: message/rfc822\r\n\r\nSubject: s\r\n\r\nb", (size_t)0, NULL);
    mv_journal j = parse_ok(rep, n, NULL);
    assert_string_equal(j.sender, "alice@x");
    static const char *const want[] = {"to <good@x> expanded <dl@x>", "bcc <\"quoted, name\"@x>",
                                       "recipient <c@x> expanded <lone@x>"};
    assert_rcpts(&j, want, 3);
    assert_string_equal(j.subject, "bad \xef\xbf\xbd utf8");
    assert_defects(j.defects, MV_JDEF_BAD_BODY | MV_JDEF_BAD_ENCODING);
    mv_journal_free(&j);
    free(rep);
}

/* hostile inputs must come back as a status or a defect, never a crash */
static void test_hostile(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "X-MS-Journal-Report:",
        "X-MS-Journal-Report:\n",
        "X-MS-Journal-Report:\n\n",
        "X-MS-Journal-Report:\nContent-Type: multipart/mixed\n\n--\n",
        "X-MS-Journal-Report:\nContent-Type: multipart/mixed; boundary=\"\"\n\n--\n--\n",
        "X-MS-Journal-Report:\nContent-Type: multipart/mixed; boundary=x\n\n--x",
        "X-MS-Journal-Report:\nContent-Type: multipart/mixed; boundary=x\n\n--x--",
        "X-MS-Journal-Report:\nContent-Type: multipart/mixed; boundary=x\n\n--x\n--x\n--x\n",
        "X-MS-Journal-Report:\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: message/rfc822\n",
        "X-MS-Journal-Report:\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: message/rfc822\n\n",
        "X-MS-Journal-Report:\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: message/rfc822\n\n\n--x--",
        "X-MS-Journal-Report:\nContent-Type: text/plain; charset=\"../../etc/passwd\"\n\nTo: a@x\n",
        "X-MS-Journal-Report:\nContent-Type: text/plain; charset=x-unknown\n\nTo: a@x\n",
        "X-MS-Journal-Report:\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n====\n",
        "X-MS-Journal-Report:\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n=\n=4\n=ZZ To: a@x=",
        "X-MS-Journal-Report:\nContent-Type: (comment (nested)) multipart/mixed; boundary=\"q\\\"x\"\n\n--q\"x\n\nTo: a@x\n--q\"x--\n",
        "X-MS-Journal-Report:\nContent-Type: message/rfc822\n\nSubject: top-level original\n",
        "X-MS-Journal-Report:\r\n\r\n\r\nTo:\r\n\r\n",
        "X-MS-Journal-Report:\nContent-Type: text/plain\n\n:\n::\nTo::\nTo: ,,,;;;\nTo: <>\nTo: <<a>>\nExpanded:\n",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mv_journal j;
        size_t n = strlen(cases[i]);
        if (mv_journal_parse((const uint8_t *)cases[i], n, NULL, &j, NULL) != MV_OK)
            fail_msg("case %zu", i);
        if (j.inner && !j.inner_owned)
            assert_true(j.inner >= (const uint8_t *)cases[i] &&
                        j.inner + j.inner_len <= (const uint8_t *)cases[i] + n);
        for (size_t k = 0; k < j.n_rcpt; k++) {
            char *s = mv_env_rcpt_format(&j.rcpt[k]);
            assert_non_null(s);
            free(s);
        }
        mv_journal_free(&j);
    }

    /* a deep nest of multiparts */
    mv_buf b = MV_BUF_INIT;
    mv_buf_append_str(&b, "X-MS-Journal-Report:\n");
    for (int i = 0; i < 2000; i++)
        mv_buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
    mv_journal j = parse_ok(b.data, b.len, NULL);
    assert_true(j.defects & MV_JDEF_LIMIT);
    mv_journal_free(&j);
    mv_buf_free(&b);

    /* inputs that would make a naive scan quadratic: a boundary that
     * matches everywhere, a quoted-printable run of blanks (they must
     * finish in well under a second) */
    mv_buf_append_str(&b, "X-MS-Journal-Report:\nContent-Type: multipart/mixed; boundary=\"");
    for (int i = 0; i < 200; i++)
        mv_buf_append_byte(&b, 'a');
    mv_buf_append_str(&b, "\"\n\n--");
    for (int i = 0; i < (4 << 20); i++)
        mv_buf_append_byte(&b, i % 100000 == 99999 ? '\n' : 'a');
    j = parse_ok(b.data, b.len, NULL);
    assert_true(j.defects & MV_JDEF_BAD_BODY);
    mv_journal_free(&j);
    mv_buf_free(&b);
    mv_buf_append_str(&b, "X-MS-Journal-Report:\nContent-Type: text/plain\n"
                          "Content-Transfer-Encoding: quoted-printable\n\nTo: a@x");
    for (int i = 0; i < (4 << 20); i++)
        mv_buf_append_byte(&b, ' ');
    mv_buf_append_str(&b, "b@x\n");
    j = parse_ok(b.data, b.len, NULL);
    assert_int_equal(j.n_rcpt, 0);
    assert_true(j.defects & MV_JDEF_BAD_BODY);
    mv_journal_free(&j);
    mv_buf_free(&b);

    /* a huge DL, a NUL in the text, a very long address */
    mv_buf_append_str(&b, "X-MS-Journal-Report:\nContent-Type: text/plain; charset=latin1\n\nSender: s\1@x\nTo: ");
    for (int i = 0; i < 3000; i++)
        mv_buf_append_str(&b, "a");
    mv_buf_append_str(&b, "@x\nTo: n\0ul@x\n");
    mv_buf_append(&b, "To: n\0ul@x\nTo: ok@x\n", 20);
    j = parse_ok(b.data, b.len, NULL);
    static const char *const want[] = {"to <ok@x>"};
    assert_rcpts(&j, want, 1);
    assert_null(j.sender);
    assert_true(j.defects & MV_JDEF_BAD_BODY);
    mv_journal_free(&j);
    mv_buf_free(&b);
}

/* ---- Postfix sub-addresses ------------------------------------------------ */

static void test_subaddr(void **state)
{
    (void)state;
    static const struct {
        const char *rcpt, *base;
        char delim;
        const char *want;
    } cases[] = {
        {"archive+alice=corp.example@archive.example", "archive", '+', "alice@corp.example"},
        {"<archive+alice=corp.example@archive.example>", "archive", '+', "alice@corp.example"},
        {"archive@archive.example", "archive", '+', NULL},
        {"archive+@archive.example", "archive", '+', NULL},
        {"archive+a=b=c@x", "archive", '+', "a=b@c"},
        {"ARCHIVE+Bob=Corp.Example@archive.example", "archive", '+', "Bob@Corp.Example"},
        {"archive+nodomain@archive.example", "archive", '+', NULL},
        {"archive+user=@archive.example", "archive", '+', NULL},
        {"archive+=corp.example@archive.example", "archive", '+', NULL},
        {"archive+a+tag=corp.example@archive.example", "archive", '+', "a+tag@corp.example"},
        {"archive-a=corp.example@archive.example", "archive", '+', NULL},
        {"archive-a=corp.example@archive.example", "archive", '-', "a@corp.example"},
        {"archiver+a=corp.example@archive.example", "archive", '+', NULL},
        {"other+a=corp.example@archive.example", "archive", '+', NULL},
        {"\"archive+john doe=corp.example\"@archive.example", "archive", '+',
         "\"john doe\"@corp.example"},
        {"\"archive+a\\\"b=corp.example\"@archive.example", "archive", '+', "\"a\\\"b\"@corp.example"},
        {"\"archive+x@y=corp.example\"@archive.example", "archive", '+', "\"x@y\"@corp.example"},
        {"archive+\xc3\xbc" "ser=b\xc3\xbc" "cher.example@archive.example", "archive", '+',
         "\xc3\xbc" "ser@b\xc3\xbc" "cher.example"},
        {"archive+a=corp..example@archive.example", "archive", '+', NULL},
        {"archive+a=corp example@archive.example", "archive", '+', NULL},
        {"archive+a=[192.0.2.1]@archive.example", "archive", '+', "a@[192.0.2.1]"},
        {"archive+a\r=x@archive.example", "archive", '+', NULL},
        {"archive+a<b=x@archive.example", "archive", '+', NULL},
        {"archive+a=corp.example", "archive", '+', NULL},
        {"archive+a=corp.example@", "archive", '+', NULL},
        {"@archive.example", "archive", '+', NULL},
        {"", "archive", '+', NULL},
        {"\"archive+a=b\\\"@x", "archive", '+', NULL},
        {"\"unterminated@x", "archive", '+', NULL},
        {"archive+a.=corp.example@archive.example", "archive", '+', "\"a.\"@corp.example"},
        {"archive+\xfc=corp.example@archive.example", "archive", '+', NULL}, /* latin-1 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = mv_subaddr_decode(cases[i].rcpt, cases[i].base, cases[i].delim);
        if (!cases[i].want && got)
            fail_msg("case %zu (%s): want NULL, got %s", i, cases[i].rcpt, got);
        if (cases[i].want && (!got || strcmp(got, cases[i].want) != 0))
            fail_msg("case %zu (%s): want %s, got %s", i, cases[i].rcpt, cases[i].want,
                     got ? got : "NULL");
        /* whatever comes back must fit the text form */
        if (got) {
            mv_env_rcpt r = {MV_ROLE_DECODED, got, NULL, NULL};
            char *s = mv_env_rcpt_format(&r);
            assert_non_null(s);
            free(s);
        }
        free(got);
    }
    assert_null(mv_subaddr_decode(NULL, "archive", '+'));
    assert_null(mv_subaddr_decode("archive+a=b@x", NULL, '+'));
    mv_buf b = MV_BUF_INIT;
    mv_buf_append_str(&b, "archive+");
    for (int i = 0; i < 5000; i++)
        mv_buf_append_byte(&b, 'a');
    mv_buf_append_str(&b, "=x@y");
    assert_null(mv_subaddr_decode((const char *)b.data, "archive", '+'));
    mv_buf_free(&b);
}

/* ---- Google --------------------------------------------------------------- */

static void test_gm_original_to(void **state)
{
    (void)state;
    const char *m = "Received: by mx.google.com\r\n"
                    "X-Gm-Original-To: alice@corp.example\r\n"
                    "Subject: hi\r\n"
                    "x-gm-original-to: Bob <bob@corp.example>,\r\n"
                    "\t\"Carol, C\" <carol@corp.example>,  ALICE@corp.example\r\n"
                    "X-Gm-Original-To:\r\n"
                    "X-Gm-Original-To: not an address, <broken>x, dave@corp.example\r\n"
                    "X-Gm-Original-To: latin1-\xfc@corp.example\r\n"
                    "\r\n"
                    "X-Gm-Original-To: body@corp.example\r\n";
    char **a = NULL;
    size_t n = 0;
    assert_int_equal(mv_gm_original_to((const uint8_t *)m, strlen(m), &a, &n, NULL), MV_OK);
    assert_int_equal(n, 4);
    assert_string_equal(a[0], "alice@corp.example");
    assert_string_equal(a[1], "bob@corp.example");
    assert_string_equal(a[2], "carol@corp.example");
    assert_string_equal(a[3], "dave@corp.example");
    mv_gm_addrs_free(a, n);

    const char *none = "Subject: x\n\n";
    a = (char **)1;
    assert_int_equal(mv_gm_original_to((const uint8_t *)none, strlen(none), &a, &n, NULL), MV_OK);
    assert_null(a);
    assert_int_equal(n, 0);
    assert_int_equal(mv_gm_original_to(NULL, 0, &a, &n, NULL), MV_OK);

    mv_buf b = MV_BUF_INIT;
    for (int i = 0; i <= MV_GM_MAX_ADDRS; i++)
        mv_buf_printf(&b, "X-Gm-Original-To: u%d@x\n", i);
    mv_err err;
    assert_int_equal(mv_gm_original_to(b.data, b.len, &a, &n, &err), MV_ELIMIT);
    assert_null(a);
    assert_int_equal(n, 0);
    mv_buf_free(&b);
}

/* ---- generator fixtures (MV_JOURNAL_FIXTURES) ---------------------------- */

/* A small JSON reader: enough for the manifest mvjournal.py writes. */
typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;
typedef struct jval {
    jtype t;
    int b;
    double num;
    char *s;
    struct jval *items; /* array elements / object values */
    char **keys;        /* object keys */
    size_t n;
} jval;

static void jfree(jval *v)
{
    free(v->s);
    for (size_t i = 0; i < v->n; i++) {
        jfree(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof *v);
}

static void jws(const char **p)
{
    while (**p == ' ' || **p == '\n' || **p == '\r' || **p == '\t')
        (*p)++;
}

static void put_utf8(mv_buf *b, unsigned cp)
{
    if (cp < 0x80) {
        mv_buf_append_byte(b, (uint8_t)cp);
    } else if (cp < 0x800) {
        mv_buf_append_byte(b, (uint8_t)(0xc0 | cp >> 6));
        mv_buf_append_byte(b, (uint8_t)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        mv_buf_append_byte(b, (uint8_t)(0xe0 | cp >> 12));
        mv_buf_append_byte(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
        mv_buf_append_byte(b, (uint8_t)(0x80 | (cp & 0x3f)));
    } else {
        mv_buf_append_byte(b, (uint8_t)(0xf0 | cp >> 18));
        mv_buf_append_byte(b, (uint8_t)(0x80 | ((cp >> 12) & 0x3f)));
        mv_buf_append_byte(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
        mv_buf_append_byte(b, (uint8_t)(0x80 | (cp & 0x3f)));
    }
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            fail_msg("manifest: bad \\u escape");
    }
    return v;
}

static char *jstring(const char **p)
{
    mv_buf b = MV_BUF_INIT;
    assert_true(**p == '"');
    (*p)++;
    while (**p != '"') {
        assert_true(**p != '\0');
        if (**p != '\\') {
            mv_buf_append_byte(&b, (uint8_t) * (*p)++);
            continue;
        }
        (*p)++;
        char c = *(*p)++;
        switch (c) {
        case 'n': mv_buf_append_byte(&b, '\n'); break;
        case 'r': mv_buf_append_byte(&b, '\r'); break;
        case 't': mv_buf_append_byte(&b, '\t'); break;
        case 'b': mv_buf_append_byte(&b, '\b'); break;
        case 'f': mv_buf_append_byte(&b, '\f'); break;
        case 'u': {
            unsigned cp = hex4(*p);
            *p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && (*p)[0] == '\\' && (*p)[1] == 'u') {
                unsigned lo = hex4(*p + 2);
                *p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            put_utf8(&b, cp);
            break;
        }
        default: mv_buf_append_byte(&b, (uint8_t)c); break;
        }
    }
    (*p)++;
    mv_buf_append(&b, "", 0);
    return (char *)mv_buf_steal(&b, NULL);
}

static void jparse(const char **p, jval *v, int depth)
{
    assert_true(depth < 32);
    memset(v, 0, sizeof *v);
    jws(p);
    if (**p == '{' || **p == '[') {
        int obj = **p == '{';
        char close = obj ? '}' : ']';
        v->t = obj ? J_OBJ : J_ARR;
        (*p)++;
        jws(p);
        size_t cap = 0;
        while (**p != close) {
            if (v->n == cap) {
                cap = cap ? cap * 2 : 8;
                v->items = mv_xrealloc(v->items, cap * sizeof *v->items);
                if (obj)
                    v->keys = mv_xrealloc(v->keys, cap * sizeof *v->keys);
            }
            if (obj) {
                jws(p);
                v->keys[v->n] = jstring(p);
                jws(p);
                assert_true(**p == ':');
                (*p)++;
            }
            jparse(p, &v->items[v->n], depth + 1);
            v->n++;
            jws(p);
            if (**p == ',')
                (*p)++;
            else
                assert_true(**p == close);
            jws(p);
        }
        (*p)++;
    } else if (**p == '"') {
        v->t = J_STR;
        v->s = jstring(p);
    } else if (strncmp(*p, "null", 4) == 0) {
        v->t = J_NULL;
        *p += 4;
    } else if (strncmp(*p, "true", 4) == 0) {
        v->t = J_BOOL;
        v->b = 1;
        *p += 4;
    } else if (strncmp(*p, "false", 5) == 0) {
        v->t = J_BOOL;
        *p += 5;
    } else {
        char *end;
        v->t = J_NUM;
        v->num = strtod(*p, &end);
        assert_true(end != *p);
        *p = end;
    }
}

static const jval *jget(const jval *o, const char *key)
{
    if (o->t != J_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0)
            return &o->items[i];
    return NULL;
}

static const char *jstr(const jval *o, const char *key)
{
    const jval *v = jget(o, key);
    return v && v->t == J_STR ? v->s : NULL;
}

static void expect_str(const char *file, const char *what, const char *want, const char *got)
{
    if ((want == NULL) != (got == NULL) || (want && strcmp(want, got) != 0))
        fail_msg("%s: %s: want %s, got %s", file, what, want ? want : "null", got ? got : "null");
}

static void check_fixture(const char *dir, const jval *e)
{
    const char *file = jstr(e, "file");
    assert_non_null(file);
    char *path = mv_xasprintf("%s/%s", dir, file);
    mv_buf data = MV_BUF_INIT;
    mv_err err;
    if (mv_read_file(path, (size_t)1 << 30, &data, &err) != MV_OK)
        fail_msg("%s: %s", path, err.msg);
    free(path);
    const uint8_t *p = data.data ? data.data : (const uint8_t *)"";

    const jval *jr = jget(e, "journal");
    int want_journal = jr && jr->t == J_BOOL && jr->b;
    if (mv_journal_detect(p, data.len) != want_journal)
        fail_msg("%s: detect want %d", file, want_journal);
    mv_journal j;
    mv_status st = mv_journal_parse(p, data.len, NULL, &j, NULL);
    if (!want_journal) {
        if (st != MV_EMALFORMED)
            fail_msg("%s: parsed as a report", file);
        mv_buf_free(&data);
        return;
    }
    if (st != MV_OK)
        fail_msg("%s: parse failed", file);

    const jval *gen = jget(e, "generation");
    if (gen && gen->t == J_NUM && (int)gen->num != j.generation)
        fail_msg("%s: generation want %d got %d", file, (int)gen->num, j.generation);

    const char *want_sha = jstr(e, "inner_sha256");
    char got_sha[65] = "";
    if (j.inner) {
        uint8_t md[32];
        unsigned len = 0;
        assert_true(EVP_Digest(j.inner, j.inner_len, md, &len, EVP_sha256(), NULL));
        mv_hex(md, 32, got_sha);
    }
    expect_str(file, "inner_sha256", want_sha, j.inner ? got_sha : NULL);

    expect_str(file, "sender", jstr(e, "sender"), j.sender);
    expect_str(file, "on_behalf_of", jstr(e, "on_behalf_of"), j.on_behalf_of);
    expect_str(file, "message_id", jstr(e, "message_id"), j.message_id);
    expect_str(file, "subject", jstr(e, "subject"), j.subject);

    const jval *rc = jget(e, "rcpt");
    assert_non_null(rc);
    if (rc->n != j.n_rcpt)
        fail_msg("%s: want %zu recipients, got %zu", file, rc->n, j.n_rcpt);
    for (size_t i = 0; i < rc->n; i++) {
        char *s = mv_env_rcpt_format(&j.rcpt[i]);
        expect_str(file, "rcpt", rc->items[i].s, s);
        mv_env_rcpt back;
        assert_int_equal(mv_env_rcpt_parse(s, &back), 0);
        mv_env_rcpt_clear(&back);
        free(s);
    }

    /* defects: the listed names, in any order, and no others */
    const jval *df = jget(e, "defects");
    assert_non_null(df);
    uint32_t want = 0;
    for (size_t i = 0; i < df->n; i++) {
        int found = 0;
        for (unsigned bit = 0; bit < 32 && !found; bit++) {
            char name[64];
            if (strcmp(mv_journal_defects_str(1u << bit, name, sizeof name), df->items[i].s) == 0) {
                want |= 1u << bit;
                found = 1;
            }
        }
        if (!found)
            fail_msg("%s: unknown defect name %s", file, df->items[i].s);
    }
    if (want != j.defects) {
        char g[256], w[256];
        fail_msg("%s: defects want {%s} got {%s}", file, mv_journal_defects_str(want, w, sizeof w),
                 mv_journal_defects_str(j.defects, g, sizeof g));
    }
    mv_journal_free(&j);
    mv_buf_free(&data);
}

static void test_fixtures(void **state)
{
    (void)state;
    const char *dir = getenv("MV_JOURNAL_FIXTURES");
    if (!dir || !*dir) {
        print_message("MV_JOURNAL_FIXTURES not set: generator fixtures not checked\n");
        return;
    }
    char *path = mv_xasprintf("%s/manifest.json", dir);
    mv_buf m = MV_BUF_INIT;
    mv_err err;
    if (mv_read_file(path, (size_t)64 << 20, &m, &err) != MV_OK)
        fail_msg("%s: %s", path, err.msg);
    free(path);
    mv_buf_append(&m, "", 0);
    const char *p = (const char *)m.data;
    jval root;
    jparse(&p, &root, 0);
    const jval *reports = jget(&root, "reports");
    assert_non_null(reports);
    assert_true(reports->t == J_ARR && reports->n > 0);
    for (size_t i = 0; i < reports->n; i++)
        check_fixture(dir, &reports->items[i]);
    print_message("%zu generator fixtures checked\n", reports->n);
    jfree(&root);
    mv_buf_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_kind),
        cmocka_unit_test(test_rcpt_text_form),
        cmocka_unit_test(test_defects_str),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_2007_qp),
        cmocka_unit_test(test_base64_text_binary_original),
        cmocka_unit_test(test_original_encoded),
        cmocka_unit_test(test_2003),
        cmocka_unit_test(test_tnef_and_no_original),
        cmocka_unit_test(test_truncated_multipart),
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_nested_wrapper),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_subaddr),
        cmocka_unit_test(test_gm_original_to),
        cmocka_unit_test(test_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
