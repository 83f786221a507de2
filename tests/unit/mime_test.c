/* SPDX-License-Identifier: MIT */
/* mime_test.c - mv_mime_summarize: decoded fields, every defect bit, limits
 * and the dedup digest's merge / never-merge promises (docs/dedup.md). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "../../ingest/mime.h"
#include "../../lib/buf.h"
#include "../fuzz/mime_same.h"

static mv_msginfo *summarize_lim(const char *s, size_t n, const mv_mime_limits *lim)
{
    mv_msginfo *m = NULL;
    mv_err err;
    assert_int_equal(mv_mime_summarize((const uint8_t *)s, n, lim, &m, &err), MV_OK);
    assert_non_null(m);
    return m;
}

static mv_msginfo *summarize(const char *s)
{
    return summarize_lim(s, strlen(s), NULL);
}

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

static void dedup_of(const char *s, uint8_t out[32])
{
    mv_msginfo *m = summarize(s);
    memcpy(out, m->meta.dedup, 32);
    mv_msginfo_free(m);
}

/* ---- fields -------------------------------------------------------------- */

static const char simple[] =
    "Received: from mx.example.net by mx.example.com; Mon, 1 Jan 2024 09:00:01 +0000\n"
    "Message-ID: <ABC@Example.COM>\n"
    "Date: Mon, 1 Jan 2024 10:00:00 +0100\n"
    "From: Alice <Alice@Example.com>\n"
    "To: bob@example.org, Carol <carol@example.org>, Team: dave@example.org, Eve@example.org;\n"
    "Cc: BOB@example.org\n"
    "Bcc: secret@example.org\n"
    "Subject: =?UTF-8?Q?Caf=C3=A9?=   menu\n"
    "In-Reply-To: <parent@example.com>\n"
    "\n"
    "Hello  \n"
    "World\n"
    "\n";

static void test_fields(void **state)
{
    (void)state;
    mv_msginfo *m = summarize(simple);
    assert_string_equal(m->meta.from, "Alice <Alice@Example.com>");
    assert_string_equal(m->meta.from_addr, "alice@example.com");
    assert_non_null(m->meta.to);
    assert_string_equal(m->meta.cc, "BOB@example.org");
    assert_string_equal(m->meta.bcc, "secret@example.org");
    assert_string_equal(m->meta.subject, "Café   menu");
    assert_string_equal(m->meta.date, "Mon, 1 Jan 2024 10:00:00 +0100");
    assert_int_equal(m->meta.date_t, 1704099600);
    assert_string_equal(m->meta.message_id, "ABC@Example.COM");
    assert_string_equal(m->meta.in_reply_to, "parent@example.com");
    assert_int_equal(m->n_recipients, 4);
    assert_string_equal(m->recipients[0], "bob@example.org");
    assert_string_equal(m->recipients[1], "carol@example.org");
    assert_string_equal(m->recipients[2], "dave@example.org");
    assert_string_equal(m->recipients[3], "eve@example.org");
    assert_int_equal(m->meta.n_parts, 1);
    assert_int_equal(m->meta.n_attachments, 0);
    assert_null(m->meta.attachments);
    assert_int_equal(m->meta.defects, 0);
    const char *body = strstr(simple, "\n\nHello") + 2;
    assert_int_equal(m->meta.header_bytes, (size_t)(body - simple));
    assert_int_equal(m->body_bytes, strlen(simple) - m->meta.header_bytes);
    mv_msginfo_free(m);
}

static void test_sha256(void **state)
{
    (void)state;
    mv_msginfo *m = summarize("");
    char hex[65];
    mv_hex(m->meta.sha256, 32, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(m->meta.header_bytes, 0);
    assert_int_equal(m->body_bytes, 0);
    mv_msginfo_free(m);
}

static void test_no_body(void **state)
{
    (void)state;
    static const char s[] = "From: a@example.com\nSubject: only headers";
    mv_msginfo *m = summarize(s);
    assert_int_equal(m->meta.header_bytes, sizeof s - 1);
    assert_int_equal(m->body_bytes, 0);
    assert_string_equal(m->meta.subject, "only headers");
    mv_msginfo_free(m);
}

/* RFC 2047 in headers and RFC 2231 in parameters, decoded by GMime. */
static void test_rfc2047_2231(void **state)
{
    (void)state;
    mv_msginfo *m = summarize(
        "From: =?ISO-8859-1?Q?J=F6rg?= <jorg@example.com>\n"
        "To: =?UTF-8?B?w4lsb2TDrWU=?= <elodie@example.com>\n"
        "Subject: =?UTF-8?B?w6lsw6h2ZQ==?= =?iso-8859-1?q?_caf=E9?=\n"
        "Content-Type: multipart/mixed; boundary=b\n"
        "\n"
        "--b\n"
        "Content-Type: text/plain\n"
        "\n"
        "body\n"
        "--b\n"
        "Content-Type: application/pdf\n"
        "Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "JVBERi0xLjQK\n"
        "--b\n"
        "Content-Type: image/png; name=\"=?UTF-8?Q?=E2=82=AC.png?=\"\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "iVBORw0K\n"
        "--b\n"
        "Content-Type: application/octet-stream\n"
        "Content-Disposition: attachment\n"
        "\n"
        "nameless\n"
        "--b--\n");
    assert_string_equal(m->meta.from, "Jörg <jorg@example.com>");
    assert_string_equal(m->meta.to, "Élodíe <elodie@example.com>");
    assert_string_equal(m->meta.subject, "élève café");
    assert_int_equal(m->meta.n_attachments, 3);
    assert_int_equal(m->meta.n_names, 2);
    assert_string_equal(m->meta.attachments[0], "résumé.pdf");
    assert_string_equal(m->meta.attachments[1], "€.png");
    assert_null(m->meta.attachments[2]);
    assert_int_equal(m->meta.n_parts, 4);
    mv_msginfo_free(m);
}

static void test_rfc822_attachment(void **state)
{
    (void)state;
    mv_msginfo *m = summarize("From: a@example.com\n"
                              "Content-Type: multipart/mixed; boundary=o\n"
                              "\n"
                              "--o\n"
                              "Content-Type: text/plain\n"
                              "\n"
                              "see attached\n"
                              "--o\n"
                              "Content-Type: message/rfc822; name=fwd.eml\n"
                              "\n"
                              "From: inner@example.com\n"
                              "Content-Type: multipart/mixed; boundary=i\n"
                              "\n"
                              "--i\n"
                              "Content-Type: text/plain\n"
                              "\n"
                              "inner\n"
                              "--i\n"
                              "Content-Type: image/gif\n"
                              "Content-Disposition: attachment; filename=a.gif\n"
                              "\n"
                              "GIF89a\n"
                              "--i--\n"
                              "--o--\n");
    assert_int_equal(m->meta.n_attachments, 2); /* the message and the gif inside it */
    assert_int_equal(m->meta.n_names, 2);
    assert_string_equal(m->meta.attachments[0], "fwd.eml");
    assert_string_equal(m->meta.attachments[1], "a.gif");
    assert_int_equal(m->meta.n_parts, 3);
    assert_int_equal(m->meta.defects & MV_DEFECT_BAD_BOUNDARY, 0);
    mv_msginfo_free(m);
}

/* ---- defects: one small message per bit ----------------------------------- */

typedef struct defect_case {
    const char *name;
    const char *msg;
    size_t len; /* 0: strlen */
    uint32_t want;
} defect_case;

#define HDRS "From: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <m@x>\n"

static const defect_case defect_cases[] = {
    {"clean", HDRS "\nbody\n", 0, 0},
    {"unparseable", "just some words\nand more\n", 0, MV_DEFECT_UNPARSEABLE},
    {"no-from", "Date: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <m@x>\n\nx\n", 0,
     MV_DEFECT_NO_FROM},
    {"no-date", "From: a@example.com\nMessage-ID: <m@x>\n\nx\n", 0, MV_DEFECT_NO_DATE},
    {"bad-date", "From: a@example.com\nDate: the day after tomorrow\nMessage-ID: <m@x>\n\nx\n", 0,
     MV_DEFECT_BAD_DATE},
    {"no-msgid", "From: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nx\n", 0,
     MV_DEFECT_NO_MSGID},
    {"bare-lf", "From: a@example.com\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                "Message-ID: <m@x>\r\n\r\nline\nline\r\n", 0, MV_DEFECT_BARE_LF},
    {"bare-cr", HDRS "\nbare\rcr\n", 0, MV_DEFECT_BARE_CR},
    {"nul", HDRS "\nnul\0byte\n", sizeof(HDRS "\nnul\0byte\n") - 1, MV_DEFECT_NUL},
    {"8bit-header", HDRS "Subject: gr\xc3\xbc\xc3\x9f\n\nx\n", 0, MV_DEFECT_8BIT_HEADER},
    {"bad-boundary-none", HDRS "Content-Type: multipart/mixed\n\n--x\n\nhidden\n--x--\n", 0,
     MV_DEFECT_BAD_BOUNDARY},
    {"bad-boundary-noend", HDRS "Content-Type: multipart/mixed; boundary=x\n\n--x\n"
                                "Content-Type: text/plain\n\ncut off\n", 0,
     MV_DEFECT_BAD_BOUNDARY},
    {"bad-encoding-b64", HDRS "Content-Transfer-Encoding: base64\n\n!!not*base64\n", 0,
     MV_DEFECT_BAD_ENCODING},
    {"bad-encoding-qp", HDRS "Content-Transfer-Encoding: quoted-printable\n\nbad =ZZ escape\n", 0,
     MV_DEFECT_BAD_ENCODING},
    {"bad-encoding-charset", HDRS "Content-Type: text/plain; charset=x-no-such-charset\n\nx\n", 0,
     MV_DEFECT_BAD_ENCODING},
    {"bad-encoding-utf8", HDRS "Content-Type: text/plain; charset=utf-8\n\n\xff\xfe\n", 0,
     MV_DEFECT_BAD_ENCODING},
    {"dup-header", HDRS "Subject: one\nSubject: two\n\nx\n", 0, MV_DEFECT_DUP_HEADER},
};

static void test_defects(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof defect_cases / sizeof defect_cases[0]; i++) {
        const defect_case *c = &defect_cases[i];
        size_t n = c->len ? c->len : strlen(c->msg);
        mv_msginfo *m = summarize_lim(c->msg, n, NULL);
        char got[256];
        mv_defects_str(m->meta.defects, got, sizeof got);
        if (c->want == 0 && m->meta.defects != 0)
            fail_msg("%s: unexpected defects %s", c->name, got);
        if ((m->meta.defects & c->want) != c->want)
            fail_msg("%s: want 0x%x, got %s", c->name, (unsigned)c->want, got);
        mv_msginfo_free(m);
    }
}

static void test_long_line(void **state)
{
    (void)state;
    mv_buf b = MV_BUF_INIT;
    mv_buf_append_str(&b, HDRS "\n");
    for (int i = 0; i < 998; i++)
        mv_buf_append_byte(&b, 'x');
    mv_buf_append_str(&b, "\n");
    mv_msginfo *m = summarize_lim((const char *)b.data, b.len, NULL);
    assert_int_equal(m->meta.defects & MV_DEFECT_LONG_LINE, 0); /* 998 is allowed */
    mv_msginfo_free(m);
    mv_buf_append_str(&b, "yyyyyyyyyy");
    for (int i = 0; i < 998; i++)
        mv_buf_append_byte(&b, 'y');
    m = summarize_lim((const char *)b.data, b.len, NULL);
    assert_int_not_equal(m->meta.defects & MV_DEFECT_LONG_LINE, 0);
    mv_msginfo_free(m);
    mv_buf_free(&b);
}

static void build_nested(mv_buf *b, int depth)
{
    mv_buf_append_str(b, HDRS);
    for (int i = 0; i < depth; i++)
        mv_buf_printf(b, "Content-Type: multipart/mixed; boundary=d%d\n\n--d%d\n", i, i);
    mv_buf_append_str(b, "Content-Type: text/plain\n\nbottom\n");
    for (int i = depth - 1; i >= 0; i--)
        mv_buf_printf(b, "--d%d--\n", i);
}

static void test_limits(void **state)
{
    (void)state;
    mv_mime_limits lim;
    mv_mime_limits_default(&lim);
    assert_int_equal(lim.max_depth, 64);
    assert_int_equal(lim.max_parts, 10000);

    /* depth */
    mv_buf b = MV_BUF_INIT;
    build_nested(&b, 10);
    lim.max_depth = 5;
    mv_msginfo *m = summarize_lim((const char *)b.data, b.len, &lim);
    assert_int_not_equal(m->meta.defects & MV_DEFECT_DEPTH_LIMIT, 0);
    assert_int_equal(m->meta.n_parts, 0);
    mv_msginfo_free(m);
    /* GMime's own nesting cap, far past ours, must not crash either */
    mv_buf_reset(&b);
    build_nested(&b, 3000);
    m = summarize_lim((const char *)b.data, b.len, NULL);
    assert_int_not_equal(m->meta.defects & MV_DEFECT_DEPTH_LIMIT, 0);
    mv_msginfo_free(m);

    /* parts: walked up to the limit */
    mv_mime_limits_default(&lim);
    lim.max_parts = 10;
    mv_buf_reset(&b);
    mv_buf_append_str(&b, HDRS "Content-Type: multipart/mixed; boundary=p\n\n");
    for (int i = 0; i < 15; i++)
        mv_buf_printf(&b, "--p\nContent-Type: text/plain\n\npart %d\n", i);
    mv_buf_append_str(&b, "--p--\n");
    m = summarize_lim((const char *)b.data, b.len, &lim);
    assert_int_not_equal(m->meta.defects & MV_DEFECT_PARTS_LIMIT, 0);
    assert_int_equal(m->meta.n_parts, 9); /* the multipart itself is one of the 10 */
    mv_msginfo_free(m);
    /* far more boundary lines than the limit: not given to GMime at all */
    mv_buf_reset(&b);
    mv_buf_append_str(&b, HDRS "Content-Type: multipart/mixed; boundary=p\n\n");
    for (int i = 0; i < 100000; i++)
        mv_buf_append_str(&b, "--p\n\n");
    m = summarize_lim((const char *)b.data, b.len, NULL);
    assert_int_equal(m->meta.defects & (MV_DEFECT_PARTS_LIMIT | MV_DEFECT_NOT_PARSED),
                     MV_DEFECT_PARTS_LIMIT | MV_DEFECT_NOT_PARSED);
    assert_string_equal(m->meta.from_addr, "a@example.com");
    mv_msginfo_free(m);

    /* header block over the limit */
    mv_mime_limits_default(&lim);
    lim.max_header_bytes = 200;
    mv_buf_reset(&b);
    mv_buf_append_str(&b, HDRS);
    for (int i = 0; i < 20; i++)
        mv_buf_printf(&b, "X-Filler-%d: some header text\n", i);
    mv_buf_append_str(&b, "\nbody\n");
    m = summarize_lim((const char *)b.data, b.len, &lim);
    assert_int_equal(m->meta.defects & (MV_DEFECT_HEADER_LIMIT | MV_DEFECT_NOT_PARSED),
                     MV_DEFECT_HEADER_LIMIT | MV_DEFECT_NOT_PARSED);
    assert_string_equal(m->meta.from_addr, "a@example.com"); /* within the first 200 bytes */
    mv_msginfo_free(m);

    /* parse limit */
    mv_mime_limits_default(&lim);
    lim.max_parse_bytes = 64;
    m = summarize_lim(simple, strlen(simple), &lim);
    assert_int_not_equal(m->meta.defects & MV_DEFECT_NOT_PARSED, 0);
    assert_string_equal(m->meta.subject, "Café   menu");
    mv_msginfo_free(m);

    /* names kept */
    mv_mime_limits_default(&lim);
    lim.max_names = 2;
    mv_buf_reset(&b);
    mv_buf_append_str(&b, HDRS "Content-Type: multipart/mixed; boundary=p\n\n");
    for (int i = 0; i < 5; i++)
        mv_buf_printf(&b, "--p\nContent-Type: application/x-a\n"
                          "Content-Disposition: attachment; filename=f%d\n\nz\n", i);
    mv_buf_append_str(&b, "--p--\n");
    m = summarize_lim((const char *)b.data, b.len, &lim);
    assert_int_equal(m->meta.n_attachments, 5);
    assert_int_equal(m->meta.n_names, 2);
    mv_msginfo_free(m);
    mv_buf_free(&b);
}

static void test_defects_str(void **state)
{
    (void)state;
    char buf[256];
    assert_string_equal(mv_defects_str(0, buf, sizeof buf), "");
    assert_string_equal(mv_defects_str(MV_DEFECT_UNPARSEABLE | MV_DEFECT_NO_FROM, buf, sizeof buf),
                        "unparseable,no-from");
    assert_string_equal(mv_defects_str(MV_DEFECT_NOT_PARSED | MV_DEFECT_BARE_LF, buf, sizeof buf),
                        "bare-lf,not-parsed");
    char small[8];
    mv_defects_str(0xffffffffu, small, sizeof small);
    assert_true(strlen(small) < sizeof small);
}

/* ---- dedup ---------------------------------------------------------------- */

static const char base_msg[] =
    "Message-ID: <dedup-1@example.com>\n"
    "Date: Tue, 2 Jan 2024 09:00:00 +0000\n"
    "From: Alice <alice@example.com>\n"
    "To: bob@example.org, carol@example.org\n"
    "Subject: Quarterly numbers\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"sep\"\n"
    "\n"
    "--sep\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "\n"
    "Numbers attached.\n"
    "--sep\n"
    "Content-Type: application/octet-stream; name=q.bin\n"
    "Content-Disposition: attachment; filename=q.bin\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "AAECAwQF\n"
    "--sep--\n";

typedef struct dedup_case {
    const char *name;
    const char *from; /* replace this ... */
    const char *to;   /* ... with this in base_msg */
    int merge;
} dedup_case;

static const dedup_case dedup_cases[] = {
    {"transport headers", "Message-ID:",
     "Received: from a.example by b.example; Tue, 2 Jan 2024 09:00:01 +0000\n"
     "Return-Path: <bounce@example.com>\nX-Spam-Score: 0.1\nDelivered-To: bob@example.org\n"
     "Message-ID:", 1},
    {"header folding", "To: bob@example.org, carol@example.org\n",
     "To: bob@example.org,\n carol@example.org\n", 1},
    {"display names and case", "To: bob@example.org, carol@example.org\n",
     "To: Carol <Carol@Example.org>, \"Bob\" <BOB@example.org>, bob@example.org\n", 1},
    {"date same instant", "Tue, 2 Jan 2024 09:00:00 +0000", "Tue, 2 Jan 2024 10:00:00 +0100", 1},
    {"message-id case", "<dedup-1@example.com>", "<DEDUP-1@EXAMPLE.COM>", 1},
    {"subject encoding", "Subject: Quarterly numbers", "Subject: =?utf-8?q?Quarterly_numbers?=", 1},
    {"subject whitespace", "Subject: Quarterly numbers", "Subject:  Quarterly\n   numbers  ", 1},
    {"bcc added", "Subject:", "Bcc: eve@example.org\nSubject:", 1},
    {"trailing blanks", "Numbers attached.\n", "Numbers attached.   \n\n\n", 1},
    {"body re-encoded", "charset=us-ascii\n\nNumbers attached.\n",
     "charset=us-ascii\nContent-Transfer-Encoding: base64\n\nTnVtYmVycyBhdHRhY2hlZC4K\n", 1},
    {"body one byte", "Numbers attached.", "Numbers attacheD.", 0},
    {"body line added", "Numbers attached.\n", "Numbers attached.\nP.S.\n", 0},
    {"attachment one byte", "AAECAwQF", "AAECAwQG", 0},
    {"attachment removed", "--sep\nContent-Type: application/octet-stream",
     "--sep--\nContent-Type: application/octet-stream", 0},
    {"subject differs", "Quarterly numbers", "Quarterly numbers!", 0},
    {"date differs", "09:00:00 +0000", "09:00:01 +0000", 0},
    {"sender differs", "<alice@example.com>", "<alice2@example.com>", 0},
    {"recipient differs", "carol@example.org", "carol@example.net", 0},
    {"message-id differs", "dedup-1@", "dedup-2@", 0},
};

static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    assert_non_null(at);
    mv_buf b = MV_BUF_INIT;
    mv_buf_append(&b, s, (size_t)(at - s));
    mv_buf_append_str(&b, to);
    mv_buf_append_str(&b, at + strlen(from));
    return (char *)mv_buf_steal(&b, NULL);
}

static void test_dedup_table(void **state)
{
    (void)state;
    uint8_t base[32];
    dedup_of(base_msg, base);
    for (size_t i = 0; i < sizeof dedup_cases / sizeof dedup_cases[0]; i++) {
        const dedup_case *c = &dedup_cases[i];
        char *v = replace(base_msg, c->from, c->to);
        uint8_t d[32];
        dedup_of(v, d);
        int same = memcmp(base, d, 32) == 0;
        if (same != c->merge)
            fail_msg("%s: expected %s", c->name, c->merge ? "merge" : "no merge");
        free(v);
    }
}

static void test_dedup_crlf(void **state)
{
    (void)state;
    static const char *const msgs[] = {base_msg, simple,
        "From: a@example.com\nMessage-ID: <qp@example.com>\nContent-Type: text/plain\n"
        "Content-Transfer-Encoding: quoted-printable\n\nsoft=\nbreak =3D\n",
        "From: a@example.com\nMessage-ID: <cal@example.com>\nContent-Type: multipart/mixed; boundary=o\n\n--o\n"
        "Content-Type: text/calendar\n\nBEGIN:VCALENDAR\nEND:VCALENDAR\n--o\n"
        "Content-Type: message/rfc822\n\nFrom: i@example.com\nSubject: in\n\ninner\n--o--\n"};
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        char *c = crlf(msgs[i]);
        uint8_t a[32], b[32];
        dedup_of(msgs[i], a);
        dedup_of(c, b);
        if (memcmp(a, b, 32) != 0)
            fail_msg("message %zu: CRLF and LF copies differ", i);
        free(c);
    }
}

/* Without a Message-ID only identical bytes merge: two header blocks cut
 * off at different places must not become one message. */
static void test_dedup_no_msgid(void **state)
{
    (void)state;
    uint8_t a[32], b[32], c[32];
    dedup_of("Received: from a by b; Mon, 1 Jan 2024 10:00:00 +0000\nX-Cut: one\n\n", a);
    dedup_of("Received: from a by b; Mon, 1 Jan 2024 10:00:00 +0000\nX-Cut: two\n\n", b);
    dedup_of("Received: from a by b; Mon, 1 Jan 2024 10:00:00 +0000\nX-Cut: one\n\n", c);
    assert_memory_not_equal(a, b, 32);
    assert_memory_equal(a, c, 32);
}

/* Changes that no summary field shows must still split the digest. */
static void test_dedup_hidden_content(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        /* an inline image without a name is neither body nor attachment */
        {"From: a@x\nContent-Type: multipart/related; boundary=r\n\n--r\nContent-Type: text/html\n"
         "\n<img src=cid:i>\n--r\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\n"
         "iVBORw0KGgo=\n--r--\n",
         "From: a@x\nContent-Type: multipart/related; boundary=r\n\n--r\nContent-Type: text/html\n"
         "\n<img src=cid:i>\n--r\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\n"
         "iVBORw0KGho=\n--r--\n"},
        /* a multipart without a boundary: all text sits in the prologue */
        {"From: a@x\nContent-Type: multipart/mixed\n\n--q\n\nsecret one\n",
         "From: a@x\nContent-Type: multipart/mixed\n\n--q\n\nsecret two\n"},
        /* text inside an attached message */
        {"From: a@x\nContent-Type: message/rfc822\n\nFrom: b@x\n\ninner one\n",
         "From: a@x\nContent-Type: message/rfc822\n\nFrom: b@x\n\ninner two\n"},
        /* the HTML alternative only */
        {"From: a@x\nContent-Type: multipart/alternative; boundary=a\n\n--a\nContent-Type: text/plain"
         "\n\nsame\n--a\nContent-Type: text/html\n\n<b>one</b>\n--a--\n",
         "From: a@x\nContent-Type: multipart/alternative; boundary=a\n\n--a\nContent-Type: text/plain"
         "\n\nsame\n--a\nContent-Type: text/html\n\n<b>two</b>\n--a--\n"},
        /* moving text from one part to the next (length prefixes) */
        {"From: a@x\nContent-Type: multipart/mixed; boundary=m\n\n--m\n\nab\n--m\n\nc\n--m--\n",
         "From: a@x\nContent-Type: multipart/mixed; boundary=m\n\n--m\n\na\n--m\n\nbc\n--m--\n"},
        /* unparseable garbage: only identical bytes merge */
        {"not mail one\n", "not mail two\n"},
        {"not mail\n", "not mail\r\n"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        uint8_t a[32], b[32];
        dedup_of(pairs[i][0], a);
        dedup_of(pairs[i][1], b);
        if (memcmp(a, b, 32) == 0)
            fail_msg("pair %zu merged", i);
    }
    uint8_t a[32], b[32];
    dedup_of("not mail one\n", a);
    dedup_of("not mail one\n", b);
    assert_memory_equal(a, b, 32);
}

/* The example of docs/dedup.md section 5, computed by hand from the spec. */
static void test_dedup_spec_example(void **state)
{
    (void)state;
    static const char msg[] = "Message-ID: <ABC@Example.COM>\n"
                              "Date: Mon, 1 Jan 2024 10:00:00 +0100\n"
                              "From: Alice <Alice@Example.com>\n"
                              "To: bob@example.org, Carol <carol@example.org>\n"
                              "Cc: BOB@example.org\n"
                              "Subject: =?UTF-8?Q?Caf=C3=A9?=   menu\n"
                              "\n"
                              "Hello  \n"
                              "World\n"
                              "\n";
    mv_buf body = MV_BUF_INIT, all = MV_BUF_INIT;
    mv_buf_put_str(&body, "Hello\nWorld");
    uint8_t bh[32];
    char bhex[65];
    unsigned len;
    assert_true(EVP_Digest(body.data, body.len, bh, &len, EVP_sha256(), NULL));
    mv_hex(bh, 32, bhex);
    mv_buf_put_str(&all, "mailvault-dedup-v1");
    mv_buf_put_str(&all, "abc@example.com");
    mv_buf_put_str(&all, "1704099600");
    mv_buf_put_str(&all, "");
    mv_buf_put_str(&all, "alice@example.com");
    mv_buf_put_str(&all, "bob@example.org\ncarol@example.org");
    mv_buf_put_str(&all, "Café menu");
    mv_buf_put_str(&all, bhex);
    mv_buf_put_str(&all, "");
    uint8_t want[32];
    assert_true(EVP_Digest(all.data, all.len, want, &len, EVP_sha256(), NULL));
    uint8_t got[32];
    dedup_of(msg, got);
    assert_memory_equal(got, want, 32);

    /* and the raw form for garbage */
    mv_buf_reset(&all);
    mv_buf_put_str(&all, "mailvault-dedup-raw-v1");
    mv_buf_put_str(&all, "\x01garbage");
    assert_true(EVP_Digest(all.data, all.len, want, &len, EVP_sha256(), NULL));
    dedup_of("\x01garbage", got);
    assert_memory_equal(got, want, 32);
    mv_buf_free(&body);
    mv_buf_free(&all);
}

/* Hostile shapes: must return, bounded, without ASan/UBSan reports. */
static void test_hostile(void **state)
{
    (void)state;
    mv_buf b = MV_BUF_INIT;
    /* a 2 MiB header line */
    mv_buf_append_str(&b, "Subject: ");
    for (int i = 0; i < (2 << 20); i++)
        mv_buf_append_byte(&b, 'a');
    mv_buf_append_str(&b, "\n\nx\n");
    mv_msginfo *m = summarize_lim((const char *)b.data, b.len, NULL);
    assert_int_not_equal(m->meta.defects & MV_DEFECT_HEADER_LIMIT, 0);
    mv_msginfo_free(m);
    /* random-ish bytes */
    mv_buf_reset(&b);
    uint32_t x = 12345;
    for (int i = 0; i < 100000; i++) {
        x = x * 1103515245u + 12345u;
        mv_buf_append_byte(&b, (uint8_t)(x >> 16));
    }
    m = summarize_lim((const char *)b.data, b.len, NULL);
    mv_msginfo_free(m);
    /* NULL pointer with zero length */
    m = summarize_lim(NULL, 0, NULL);
    assert_int_not_equal(m->meta.defects & MV_DEFECT_UNPARSEABLE, 0);
    mv_msginfo_free(m);
    mv_buf_free(&b);
    mv_msginfo_free(NULL);
}

/* Several threads summarising at once must agree with one thread. */
static void *thread_body(void *arg)
{
    uint8_t *want = arg;
    for (int i = 0; i < 200; i++) {
        mv_msginfo *m = NULL;
        if (mv_mime_summarize((const uint8_t *)base_msg, strlen(base_msg), NULL, &m, NULL) != MV_OK ||
            memcmp(m->meta.dedup, want, 32) != 0) {
            mv_msginfo_free(m);
            return (void *)1;
        }
        mv_msginfo_free(m);
        if (mv_mime_summarize((const uint8_t *)simple, strlen(simple), NULL, &m, NULL) != MV_OK)
            return (void *)1;
        mv_msginfo_free(m);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    uint8_t want[32];
    dedup_of(base_msg, want);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_body, want), 0);
    for (int i = 0; i < 4; i++) {
        void *r = (void *)1;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_null(r);
    }
}

/* Trace fields are skipped before GMime parses (mime.c, filtered_copy);
 * each of these header blocks sits where that could go wrong, and the
 * summary must be the one GMime makes from every field. */
static void test_skipped_fields(void **state)
{
    (void)state;
    static const char *const cases[] = {
        /* ordinary trace fields, folded, before and between the needed ones */
        "Received: from a by b;\r\n\tMon, 1 Jan 2024 00:00:00 +0000\r\nFrom: A <a@x.org>\r\n"
        "X-Spam: yes\r\n  folded\r\nTo: b@y.org\r\nDKIM-Signature: v=1;\r\n b=abc\r\n"
        "Subject: hi\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n",
        /* a trace field first: it is kept, later ones go */
        "X-First: 1\nFrom: a@x.org\nX-Second: 2\nSubject: s\n\nbody\n",
        /* an mbox separator, then a trace field, then garbage: the garbage
         * must still follow a field GMime has seen */
        "From a@x.org Mon Jan  1 00:00:00 2024\nX-Trace: 1\nthis is not a field\nFrom: a@x.org\n\nb\n",
        /* only Content-* and trace fields: no message fields at all */
        "Content-Type: multipart/mixed; boundary=q\nX-MS-Journal-Report:\n\n--q\n"
        "Content-Type: text/plain\n\nin\n--q--\n",
        /* MIME fields of the top part, repeated single fields (defects) */
        "From: a@x.org\nX-A: 1\nContent-Type: text/plain; charset=koi8-r\nX-B: 2\n"
        "Content-Transfer-Encoding: base64\nSubject: one\nSubject: two\nFrom: a@x.org\n\n0L/RgNC4\n",
        /* 8-bit bytes and a bad encoded word in a skipped field */
        "From: a@x.org\nX-Name: caf\xc3\xa9 =?bogus?Q?x?=\nTo: b@y.org\n\nbody\n",
        /* fields that are not plain: kept, so GMime sees the same oddity */
        "From: a@x.org\nX Bad: 1\nX-Ok: 2\n\tcont\n bad-name-line\nTo: b@y.org\n\nbody\n",
        /* no empty line: nothing skipped */
        "From: a@x.org\nX-Trace: 1\nTo: b@y.org",
        /* a continuation line right at the start */
        " leading\nX-T: 1\nFrom: a@x.org\n\nbody\n",
        /* CR-only and mixed line ends */
        "From: a@x.org\r\nX-T: 1\rstill\r\nTo: b@y.org\n\r\nbody\n",
        /* a trace field GMime's RFC 2047 decoder complains about: kept */
        "From: a@x.org\nReceived: from x by y;\n =?utf-8?Q?=D0=B8 <m@e.net>,\n =?utf-8?B?0KLQ?=\n"
        "X-Topic: =?utf-8?Q?a b?=\nTo: b@y.org\n\nbody\n",
        /* an attached message's own trace fields are not touched */
        "From: a@x.org\nX-T: 1\nContent-Type: message/rfc822\n\nReceived: by z\nX-Inner: 1\n"
        "From: c@z.org\nSubject: inner\n\ninner body\n",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mv_mime_limits lim;
        mv_mime_limits_default(&lim);
        mv_msginfo *fast = summarize_lim(cases[i], strlen(cases[i]), &lim);
        lim.every_field = 1;
        mv_msginfo *every = summarize_lim(cases[i], strlen(cases[i]), &lim);
        if (!mv_mime_same(fast, every))
            fail_msg("case %zu: the summaries differ", i);
        mv_msginfo_free(fast);
        mv_msginfo_free(every);
    }
    /* the needed fields of the first case all arrive */
    mv_msginfo *m = summarize(cases[0]);
    assert_string_equal(m->meta.subject, "hi");
    assert_string_equal(m->meta.from_addr, "a@x.org");
    assert_int_equal(m->n_recipients, 1);
    mv_msginfo_free(m);
}

/* The direct path (mime.c) reads a one-part message's fields with GMime's
 * header parsers without building its message.  Each case says whether it
 * must take that path, and the summary must be the one GMime makes from
 * the whole message (every_field, which never takes it). */
/* assert_direct_same - msg takes the direct path and summarises as ref. */
static void assert_direct_same(const char *msg, const mv_msginfo *ref)
{
    mv_msginfo *m = summarize(msg);
    assert_int_equal(m->direct, 1);
    assert_true(mv_mime_same(m, ref));
    mv_msginfo_free(m);
}

static void test_direct_path(void **state)
{
    (void)state;
    static const struct {
        int direct;
        const char *msg;
    } cases[] = {
        /* plain text, CRLF, every field the summary reads */
        {1, "From: Ann Example <ann@x.org>\r\nTo: b@y.org, \"Carl, Jr\" <c@y.org>\r\n"
            "Cc: d@z.org\r\nBcc: e@z.org\r\nSubject: plain\r\n"
            "Date: Tue, 2 Jan 2024 10:00:00 +0100\r\nMessage-ID: <p1@x.org>\r\n"
            "In-Reply-To: <p0@x.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\nhello  \r\n\r\n\r\n"},
        /* folded fields, encoded words, a group, no Content-Type at all */
        {1, "From: =?UTF-8?Q?Ren=C3=A9?= <r@x.org>\nTo: Team: a@x.org,\n b@x.org;\n"
            "Subject: =?ISO-8859-1?Q?caf=E9?=\n\tand more\nDate: 2 Jan 2024 10:00 GMT\n"
            "Message-ID: <p2@x.org>\n\nbody\n"},
        /* a bad encoded word, an unparseable date, an id without '@' */
        {1, "From: a@x.org\nSubject: =?bogus?Q?x?= =?utf-8?B?###?=\nDate: yesterday\n"
            "Message-ID: <no-at-sign>\n\nb\n"},
        /* quoted-printable Latin-1, soft breaks and a stray '=' */
        {1, "From: a@x.org\nMessage-ID: <p3@x.org>\nContent-Type: text/plain; charset=iso-8859-1\n"
            "Content-Transfer-Encoding: quoted-printable\n\ncaf=E9 long=\n line =ZZ end\n"},
        /* base64 that claims UTF-8 and is not; junk in the base64 */
        {1, "From: a@x.org\nMessage-ID: <p4@x.org>\nContent-Type: TEXT/PLAIN; CHARSET=UTF-8\n"
            "Content-Transfer-Encoding: BASE64\n\n//79\n!!aGk=\n"},
        /* one attachment with an RFC 2231 name, and inline text */
        {1, "From: a@x.org\nMessage-ID: <p5@x.org>\nContent-Type: application/pdf; name=\"x.pdf\"\n"
            "Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf\n"
            "Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n"},
        {1, "From: a@x.org\nMessage-ID: <p6@x.org>\nContent-Type: text/html; charset=utf-8\n"
            "Content-Disposition: inline\nContent-Class: urn:content-classes:message\n\n<p>hi</p>\n"},
        /* a type that is not text, a name and no disposition: an attachment */
        {1, "From: a@x.org\nMessage-ID: <p7@x.org>\nContent-Type: image/png; name=a.png\n\nPNG\n"},
        /* no Message-ID: only identical bytes merge; an empty body; no final newline */
        {1, "From: a@x.org\nSubject: s\n\n"},
        {1, "From: a@x.org\nMessage-ID: <p8@x.org>\n\nlast line without newline"},
        /* an empty From and an unknown charset */
        {1, "From: \nTo: undisclosed-recipients:;\nMessage-ID: <p9@x.org>\n"
            "Content-Type: text/plain; charset=x-no-such-charset\n\nb\n"},
        /* encoded words GMime's decoder rejects, in fields it parses as
         * addresses or types and in one it does not read at all */
        {1, "From: a@x.org\nTo: b@y.org (=?utf-8?Q?a b?=)\nMessage-ID: <pa@x>\n"
            "Thread-Topic: =?utf-8?Q?a b?=\nReceived: from x\n =?utf-8?Q?=D0 <m@e>,\n =?utf-8?B?0KLQ?=\n"
            "Content-Type: text/plain\n\nbody\n"},
        /* encoded words in Content-Type and -Disposition: GMime's objects
         * parse the decoded value, which is not what its public parser
         * makes of the raw one where a decoded word holds a quote or a
         * semicolon, names the type, or sits in an RFC 2231 parameter; one
         * broken across a folded line */
        {1, "From: a@x.org\nMessage-ID: <pb@x>\nContent-Type: text/plain (=?utf-8?Q?a b?=)\n\nb\n"},
        {1, "From: a@x.org\nMessage-ID: <pd@x>\nContent-Type: application/pdf;\n"
            "\tname=\"=?UTF-8?B?YW5uw6llIGZpc2NhbGUucGRm?=\"\nContent-Disposition: attachment;\n"
            "\tfilename=\"=?UTF-8?B?YW5uw6llIGZpc2NhbGUucGRm?=\"\n\nx\n"},
        {1, "From: a@x.org\nMessage-ID: <pe@x>\n"
            "Content-Type: application/octet-stream; name=\"=?UTF-8?B?YSI7IGI9Yw==?=\"\n\nx\n"},
        {1, "From: a@x.org\nMessage-ID: <pg@x>\nContent-Type: multipart/mixed; boundary=q\n\n--q\n"
            "Content-Type: text/plain\n\nx\n--q\nContent-Type: application/pdf; "
            "name*=\"=?UTF-8?B?YW5uw6llIGZpc2NhbGUucGRm?=\"\n"
            "Content-Disposition: =?UTF-8?B?YXR0YWNobWVudA==?=; filename*0==?UTF-8?B?YQ==?=;"
            " filename*1=\"b\"\n\ny\n--q--\n"},
        {1, "From: a@x.org\nMessage-ID: <pc@x>\nContent-Type: multipart/mixed; boundary=q\n\n--q\n"
            "Content-Type: image/png;\n\tname=\"=?UTF-8?B?6KaDisposition: attachment;\n"
            "\tfilename=\"=?UTF-8?B?6KaL56mN5pu4LnBuZw==?=\"\n\nxx\n--q--\n"},
        /* Sender and Reply-To: only their encoded words can make a defect */
        {1, "From: a@x.org\nSender: s@x.org,((((\nReply-To: =?utf-8?Q?a b?= <r@x.org>\n"
            "Message-ID: <sr@x>\n\nb\n"},
        /* parameters folded inside their quotes: GMime unfolds before parsing */
        {1, "From: \"Ann\r\n Example\" <a@x.org>\r\nMessage-ID: <pf@x>\r\n"
            "Content-Type: application/octet-stream; name=\"a\r\n\tb\"; x=\"1\r\n 2\"\r\n"
            "Content-Disposition: attachment; filename=\"x\r\n y.bin\"\r\n\r\nbody\r\n"},
        /* multiparts of leaves: alternative, mixed with an attachment, a
         * prologue, an epilogue, blanks after a delimiter, CRLF and LF */
        {1, "From: a@x.org\r\nMessage-ID: <m1@x>\r\nContent-Type: multipart/alternative;\r\n"
            "\tboundary=\"==b 1==\"\r\n\r\nprologue\r\n--==b 1==\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
            "\r\ncaf=C3=A9\r\n\r\n--==b 1==  \r\nContent-Type: text/html\r\n\r\n<p>caf&eacute;</p>\r\n"
            "--==b 1==--\r\nepilogue\r\n--==b 1==\r\n"},
        {1, "From: a@x.org\nMessage-ID: <m2@x>\nContent-Type: multipart/mixed; boundary=q\n\n"
            "--q\nContent-Type: text/plain\n\nsee attached\n--q\n"
            "Content-Type: application/pdf; name=\"r.pdf\"\nContent-Disposition: attachment\n"
            "Content-Transfer-Encoding: base64\nX-Attachment-Id: =?utf-8?Q?a b?=\n\nJVBERi0x\nLjQK\n"
            "--q\nContent-Type: image/png\nContent-Disposition: inline; filename=\"i.png\"\n\nPNG\n--q--"},
        /* a line like the delimiter but not one, inside a part */
        {1, "From: a@x.org\nMessage-ID: <m3@x>\nContent-Type: multipart/related; boundary=q\n\n"
            "--q\nContent-Type: text/html\n\n--qq\n--q-- x\n--q x\n--q--\n"},
        /* what must go the whole way through GMime */
        {0, "From: a@x.org\nContent-Type: multipart/mixed; boundary=q\n\n--q\n\nno headers\n--q--\n"},
        {0, "From: a@x.org\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain\n\n"
            "no close\n"},
        {0, "From: a@x.org\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain\n\n"
            "\n--q--\n"},
        {0, "From: a@x.org\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain\n"
            "Content-Type: text/html\n\nx\n--q--\n"},
        /* multiparts nested as mail clients write them: mixed > alternative >
         * related, an epilogue after an inner close, CRLF */
        {1, "From: a@x.org\nMessage-ID: <n1@x>\nContent-Type: multipart/mixed; boundary=q\n\n--q\n"
            "Content-Type: multipart/alternative; boundary=r\n\n--r\nContent-Type: text/plain\n\nx\n"
            "--r--\n--q--\n"},
        {1, "From: a@x.org\r\nMessage-ID: <n2@x>\r\nContent-Type: multipart/mixed; boundary=\"o-1\"\r\n\r\n"
            "--o-1\r\nContent-Type: multipart/alternative; boundary=\"a-2\"\r\n\r\npre\r\n"
            "--a-2\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
            "\r\nY2Fmw6k=\r\n--a-2\r\nContent-Type: multipart/related; boundary=\"r-3\"\r\n\r\n"
            "--r-3\r\nContent-Type: text/html\r\n\r\n<img src=cid:i>\r\n--r-3\r\n"
            "Content-Type: image/png; name=i.png\r\nContent-ID: <i>\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--r-3--\r\n\r\n--a-2--\r\n"
            "inner epilogue\r\n--o-1\r\nContent-Type: application/pdf; name=r.pdf\r\n"
            "Content-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            "JVBERi0x\r\n--o-1--\r\n"},
        /* an inner multipart not closed before the outer delimiter; boundaries
         * one a prefix of the other; an encoded multipart; too deep */
        {0, "From: a@x.org\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: multipart/"
            "alternative; boundary=r\n\n--r\nContent-Type: text/plain\n\nx\n--q\n\ny\n--q--\n"},
        {0, "From: a@x.org\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: multipart/"
            "alternative; boundary=q--\n\n--q--\nContent-Type: text/plain\n\nx\n--q----\n--q--\n"},
        {0, "From: a@x.org\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: multipart/"
            "alternative; boundary=r\nContent-Transfer-Encoding: base64\n\n--r\n\nx\n--r--\n--q--\n"},
        {0, "From: a@x.org\nContent-Type: multipart/mixed; boundary=a\n\n--a\n"
            "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/mixed; boundary=c\n\n"
            "--c\nContent-Type: multipart/mixed; boundary=d\n\n--d\nContent-Type: multipart/mixed; "
            "boundary=e\n\n--e\n\nx\n--e--\n--d--\n--c--\n--b--\n--a--\n"},
        {0, "From: a@x.org\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: multipart/"
            "signed; boundary=r\n\n--r\nContent-Type: text/plain\n\nx\n--r--\n--q--\n"},
        {0, "From: a@x.org\nContent-Type: multipart/digest; boundary=q\n\n--q\n\nFrom: b@y\n\nx\n--q--\n"},
        {0, "From: a@x.org\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
            "Content-Type: text/plain\r\n\r\nx\n--q--\r\n"},
        {0, "From: a@x.org\nContent-Type: multipart/mixed\n\n--q\nContent-Type: text/plain\n\nx\n--q--\n"},
        /* address lists GMime's message keeps in part, its public parser not at all */
        {0, "From: a@x.org,,,((((((dary=b\nMessage-ID: <a1@x>\n\nb\n"},
        {0, "From: a@x.org\nTo: b@y.org, Team: c@y.org, d@y.org;(\x10\nMessage-ID: <a2@x>\n\nb\n"},
        {0, "From: a@x.org\nSubject: one\nSubject: two\n\nb\n"},
        {0, "From: a@x.org\nContent-Type: text/plain\nContent-Type: text/html\n\nb\n"},
        {0, "From: a@x.org\nContent-Type: multipart/mixed; boundary=q\n\n--q\n\nx\n--q--\n"},
        {0, "From: a@x.org\nContent-Type: message/rfc822\n\nFrom: b@y.org\n\ninner\n"},
        {0, "From: a@x.org\nContent-Type: text\n\nb\n"},
        {0, "From: a@x.org\nContent-ID: =?utf-8?q?x?=\n\nb\n"},
        {0, "From: a@x.org\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 a\n`\nend\n"},
        {0, "From: a@x.org\nSubject : spaced\n\nb\n"},
        {0, "From: a@x.org\nSubject: caf\xc3\xa9\n\nb\n"},
        {0, "Content-Type: text/plain\n\nonly MIME fields\n"},
        {0, "From: a@x.org\nX-T: 1\rstill\n\nb\n"},
        {0, "From: a@x.org\nno colon here\n\nb\n"},
        {0, "From: a@x.org\nSubject: no empty line"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mv_mime_limits lim;
        mv_mime_limits_default(&lim);
        size_t n = strlen(cases[i].msg);
        mv_msginfo *fast = summarize_lim(cases[i].msg, n, &lim);
        lim.every_field = 1;
        mv_msginfo *every = summarize_lim(cases[i].msg, n, &lim);
        if (fast->direct != cases[i].direct)
            fail_msg("case %zu: direct path %d, expected %d", i, fast->direct, cases[i].direct);
        assert_int_equal(every->direct, 0);
        if (!mv_mime_same(fast, every))
            fail_msg("case %zu: the summaries differ", i);
        mv_msginfo_free(fast);
        mv_msginfo_free(every);
        /* and with limits the parts reach: the same defects either way */
        lim.every_field = 0;
        lim.max_parts = 3;
        lim.max_depth = 1;
        fast = summarize_lim(cases[i].msg, n, &lim);
        lim.every_field = 1;
        every = summarize_lim(cases[i].msg, n, &lim);
        if (!mv_mime_same(fast, every))
            fail_msg("case %zu: the summaries differ under tight limits", i);
        mv_msginfo_free(fast);
        mv_msginfo_free(every);
    }
    /* values met again are answered from the thread's cache of parsed
     * values: the same summary, complaints included, the third time as
     * the first */
    static const char *again =
        "From: =?utf-8?Q?a b?= <a@x.org>\nTo: b@y.org\nMessage-ID: <ag@x>\n"
        "Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Disposition: inline\n\nx\n--q\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Disposition: inline\n\ny\n--q--\n";
    mv_mime_limits lim;
    mv_mime_limits_default(&lim);
    lim.every_field = 1;
    mv_msginfo *ref = summarize_lim(again, strlen(again), &lim);
    assert_true(ref->meta.defects & MV_DEFECT_BAD_ENCODING);
    for (int i = 0; i < 4; i++)
        assert_direct_same(again, ref);
    mv_msginfo_free(ref);
    /* a field read for the decoder's complaints alone: the defect every
     * time, and clean mail stays clean */
    static const char *again2 =
        "From: a@x.org\nTo: b@y.org\nMessage-ID: <ag2@x>\nComments: =?utf-8?Q?c d?=\n\nbody\n";
    static const char *clean =
        "From: a@x.org\nTo: b@y.org\nMessage-ID: <ag3@x>\nComments: =?utf-8?Q?c_d?=\n\nbody\n";
    ref = summarize_lim(again2, strlen(again2), &lim);
    assert_true(ref->meta.defects & MV_DEFECT_BAD_ENCODING);
    for (int i = 0; i < 4; i++) {
        assert_direct_same(again2, ref);
        mv_msginfo *m = summarize(clean);
        assert_int_equal(m->direct, 1);
        assert_false(m->meta.defects & MV_DEFECT_BAD_ENCODING);
        mv_msginfo_free(m);
    }
    mv_msginfo_free(ref);
    /* and what the first one says */
    mv_msginfo *m = summarize(cases[0].msg);
    assert_int_equal(m->direct, 1);
    assert_string_equal(m->meta.from_addr, "ann@x.org");
    assert_string_equal(m->meta.subject, "plain");
    assert_string_equal(m->meta.message_id, "p1@x.org");
    assert_string_equal(m->meta.in_reply_to, "p0@x.org");
    assert_int_equal(m->n_recipients, 3);
    assert_int_equal(m->meta.n_parts, 1);
    assert_int_equal(m->meta.n_attachments, 0);
    mv_msginfo_free(m);
    m = summarize(cases[5].msg);
    assert_int_equal(m->meta.n_attachments, 1);
    assert_string_equal(m->meta.attachments[0], "\xe2\x82\xac rates.pdf");
    mv_msginfo_free(m);
}

int main(void)
{
    mv_mime_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_no_body),
        cmocka_unit_test(test_rfc2047_2231),
        cmocka_unit_test(test_rfc822_attachment),
        cmocka_unit_test(test_defects),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_defects_str),
        cmocka_unit_test(test_dedup_table),
        cmocka_unit_test(test_dedup_crlf),
        cmocka_unit_test(test_dedup_no_msgid),
        cmocka_unit_test(test_dedup_hidden_content),
        cmocka_unit_test(test_dedup_spec_example),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_skipped_fields),
        cmocka_unit_test(test_direct_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
