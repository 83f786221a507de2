/* SPDX-License-Identifier: MIT */
/* source_test.c - mbox separators and splitting, content detection, and
 * the path walker over a temporary tree (Maildir, mbox, single files). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../ingest/source.h"
#include "../../lib/buf.h"

/* ---- separators and detection -------------------------------------------- */

typedef struct sep_case {
    const char *line;
    int want;
} sep_case;

static const sep_case sep_cases[] = {
    {"From MAILER-DAEMON Sat Jan  3 01:05:34 1996", 1},
    {"From alice@example.com Tue Jan  2 09:00:00 2024", 1},
    {"From alice@example.com Tue Jan 2 09:00:00 2024", 1},
    {"From alice@example.com Tue Jan 12 09:00:00 2024", 1},
    {"From alice@example.com  Thu Aug 22 12:36:07 2002", 1}, /* two spaces (SpamAssassin) */
    {"From a@x Tue Jan  2 09:00 2024", 1},                    /* no seconds */
    {"From a@x Tue Jan  2 09:00:00 PST 2024", 1},             /* zone before the year */
    {"From a@x Tue Jan  2 09:00:00 +0100 2024", 1},
    {"From a@x Tue Jan  2 09:00:00 2024 +0100", 1},           /* zone after the year */
    {"From a@x Tue Jan  2 09:00:00 2024 remote from uucp", 1},
    {"From a@x tue jan  2 09:00:00 2024", 1},
    {"From - Tue Jan  2 09:00:00 2024", 1},                   /* Mozilla */
    {"From here on, the text continues", 0},
    {"From a@x", 0},
    {"From  Tue Jan  2 09:00:00 2024", 0},                    /* no sender */
    {"From a@x Tue Foo  2 09:00:00 2024", 0},
    {"From a@x Tue Jan  2 09:00:00 24", 0},
    {"From a@x Tue Jan  2 9 2024", 0},
    {"From a@x Tue Jan  2 09:00:00 2024x", 0},
    {"From a@x Tue Jan 123 09:00:00 2024", 0},
    {"from a@x Tue Jan  2 09:00:00 2024", 0},
    {">From a@x Tue Jan  2 09:00:00 2024", 0},
    {"From: a@x", 0},
    {"", 0},
};

static void test_separator(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof sep_cases / sizeof sep_cases[0]; i++) {
        const sep_case *c = &sep_cases[i];
        int got = mv_mbox_is_separator((const uint8_t *)c->line, strlen(c->line));
        if (got != c->want)
            fail_msg("\"%s\": want %d got %d", c->line, c->want, got);
    }
    assert_int_equal(mv_mbox_is_separator(NULL, 0), 0);
}

typedef struct detect_case {
    const char *name;
    const char *head;
    size_t len; /* 0: strlen */
    mv_file_kind want;
} detect_case;

static const detect_case detect_cases[] = {
    {"eml", "From: a@x\nTo: b@x\nSubject: s\n\nbody\n", 0, MV_FILE_EML},
    {"enron", "Message-ID: <1.JavaMail.evans@thyme>\r\nDate: Mon, 14 May 2001 16:39:00 -0700 (PDT)\r\n",
     0, MV_FILE_EML},
    {"folded second line", "Received: from a\n\tby b\nFrom: a@x\n\n", 0, MV_FILE_EML},
    {"one header only", "Subject: hi\n\nbody\n", 0, MV_FILE_EML},
    {"header at end of file", "Subject: hi", 0, MV_FILE_EML},
    {"envelope line", "From alice@example.com\r\nReturn-Path: <a@x>\r\nTo: b@x\r\n\r\n", 0,
     MV_FILE_EML},
    {"obsolete blank before colon", "From  : a@x\nTo : b@x\n\n", 0, MV_FILE_EML},
    {"mbox", "From a@x Tue Jan  2 09:00:00 2024\nSubject: s\n\nx\n", 0, MV_FILE_MBOX},
    {"readme", "mailvault test data\n\nThis folder holds...\n", 0, MV_FILE_OTHER},
    {"prose with colon", "Note: this file is\nnot an email, just notes.\n", 0, MV_FILE_OTHER},
    {"license", "The use of the database is licensed under a licence.\n", 0, MV_FILE_OTHER},
    {"empty", "", 0, MV_FILE_OTHER},
    {"binary", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, MV_FILE_OTHER},
    {"nul in header", "Subject: a\0b\nTo: x\n", 19, MV_FILE_OTHER},
    {"utf-8 bom", "\xef\xbb\xbf" "From: a@x\nTo: b@x\n\n", 0, MV_FILE_EML},
    {"utf-8 bom, mbox", "\xef\xbb\xbf" "From a@x Tue Jan  2 09:00:00 2024\nSubject: s\n\nx\n", 0,
     MV_FILE_MBOX},
    /* MimeKit's unmunged.mbox.txt: separators without a date */
    {"utf-8 bom, envelope line", "\xef\xbb\xbf" "From -\nFrom: a@x\nSubject: s\n\nx\n", 0,
     MV_FILE_EML},
    {"blanks before the first field", " From: a@x\nSubject: s\n\nbody\n", 0, MV_FILE_EML},
    {"indented prose", "  Note: this file is\nnot an email.\n", 0, MV_FILE_OTHER},
    {"from without header after", "From here on\nwe talk\n", 0, MV_FILE_OTHER},
    {"leading blank line", "\nFrom: a@x\n", 0, MV_FILE_OTHER},
    {"mbox after blank lines", "\r\n\nFrom a@x Tue Jan  2 09:00:00 2024\nSubject: s\n\nx\n", 0,
     MV_FILE_MBOX},
    {"mbox after too many blank lines", "\n\n\n\nFrom a@x Tue Jan  2 09:00:00 2024\nSubject: s\n", 0,
     MV_FILE_OTHER},
    {"blank lines only", "\n\n", 0, MV_FILE_OTHER},
    {"gnupg key file", "Created: 20230628T112003\nKey: (protected-private-key (elg (p #00DF\n 2630\n", 0,
     MV_FILE_OTHER},
    {"mh sequences", "unseen: 1-5\ncur: 5\n", 0, MV_FILE_OTHER},
    {"yaml", "name: export\nversion: 2\nitems:\n  - a\n", 0, MV_FILE_OTHER},
    {"fields, then a mail field", "X-Spam: no\nX-Foo: bar\nTo: b@x\n", 0, MV_FILE_EML},
    {"fields, then a body", "X-Spam: no\nX-Foo: bar\n\nbody\n", 0, MV_FILE_EML},
    {"envelope line, then other fields", "From alice@example.com\nX-Foo: bar\nX-Bar: baz\n", 0,
     MV_FILE_EML},
    {"emlx", "33        \nFrom: a@x\nSubject: s\n\nbody\n<?xml version=\"1.0\"?>\n", 0,
     MV_FILE_EMLX},
    {"emlx with CRLF", "12\r\nSubject: s\r\n\r\nb", 0, MV_FILE_EMLX},
    {"number then prose", "42\nthe answer\n", 0, MV_FILE_OTHER},
    {"zero length", "0\nFrom: a@x\n\n", 0, MV_FILE_OTHER},
    {"emlx of emlx", "9\n9\nFrom: a@x\n\n", 0, MV_FILE_OTHER},
    {"number and text", "12 apples\nFrom: a@x\n\n", 0, MV_FILE_OTHER},
    /* mime4j's malformedHeader-nocrlfcrlf: a stray line in the header block */
    {"stray line after a mail field",
     "Subject: this is a subject\r\nThis is an invalid header\r\nAnotherHeader: is this a "
     "header?\r\n\r\nBody text\r\n",
     0, MV_FILE_EML},
    {"stray line, field name any case", "received: from a\nby hand\nFrom: a@x\n\n", 0, MV_FILE_EML},
    {"prose after a mail field", "Subject: minutes\nWe met and agreed.\n\nAction: none\n", 0,
     MV_FILE_OTHER},
    {"prose with two colons", "Note: this file is\nnot mail.\nAction: none\n", 0, MV_FILE_OTHER},
    {"stray line, then a blank one", "Subject: s\nstray\n\nTo: b\n", 0, MV_FILE_OTHER},
};

static void test_detect(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof detect_cases / sizeof detect_cases[0]; i++) {
        const detect_case *c = &detect_cases[i];
        size_t n = c->len ? c->len : strlen(c->head);
        mv_file_kind got = mv_detect_kind((const uint8_t *)c->head, n);
        if (got != c->want)
            fail_msg("%s: want %d got %d", c->name, c->want, got);
    }
    assert_int_equal(mv_detect_kind(NULL, 0), MV_FILE_OTHER);
}

/* ---- splitting -------------------------------------------------------------- */

#define MAXMSG 8

typedef struct collected {
    size_t n;
    char *data[MAXMSG];
    char *raw[MAXMSG];
    char *from[MAXMSG];
} collected;

static void collect(void *ctx, const uint8_t *data, size_t len, const uint8_t *raw, size_t raw_len,
                    const uint8_t *from, size_t from_len)
{
    collected *c = ctx;
    assert_true(c->n < MAXMSG);
    c->data[c->n] = mv_xstrndup((const char *)data, len);
    c->raw[c->n] = mv_xstrndup((const char *)raw, raw_len);
    c->from[c->n] = mv_xstrndup((const char *)from, from_len);
    c->n++;
}

static void collected_free(collected *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->data[i]);
        free(c->raw[i]);
        free(c->from[i]);
    }
    c->n = 0;
}

typedef struct split_case {
    const char *name;
    const char *mbox;
    size_t n;
    const char *want[4]; /* unquoted data of each message */
    const char *raw1;    /* raw bytes of message 1 when it differs */
} split_case;

static const split_case split_cases[] = {
    {"two messages",
     "From a@x Mon Jan  1 00:00:00 2024\nSubject: 1\n\none\n\n"
     "From b@x Mon Jan  1 00:00:00 2024\nSubject: 2\n\ntwo\n\n",
     2, {"Subject: 1\n\none\n", "Subject: 2\n\ntwo\n"}, NULL},
    {"byte-order mark before the first separator",
     "\xef\xbb\xbf" "From a@x Mon Jan  1 00:00:00 2024\nSubject: 1\n\none\n\n"
     "From b@x Mon Jan  1 00:00:00 2024\nSubject: 2\n\ntwo\n",
     2, {"Subject: 1\n\none\n", "Subject: 2\n\ntwo\n"}, NULL},
    {"byte-order mark before a later separator is text",
     "From a@x Mon Jan  1 00:00:00 2024\nSubject: 1\n\none\n\n"
     "\xef\xbb\xbf" "From b@x Mon Jan  1 00:00:00 2024\n",
     1, {"Subject: 1\n\none\n\n\xef\xbb\xbf" "From b@x Mon Jan  1 00:00:00 2024\n"}, NULL},
    {"blank lines before the first separator",
     "\n\r\nFrom a@x Mon Jan  1 00:00:00 2024\nSubject: 1\n\none\n",
     1, {"Subject: 1\n\none\n"}, NULL},
    {"from in body after text line",
     "From a@x Mon Jan  1 00:00:00 2024\n\nline\nFrom b@x Mon Jan  1 00:00:00 2024\nmore\n",
     1, {"\nline\nFrom b@x Mon Jan  1 00:00:00 2024\nmore\n"}, NULL},
    {"from in body after blank, no date",
     "From a@x Mon Jan  1 00:00:00 2024\n\nhello\n\nFrom here on we differ\n",
     1, {"\nhello\n\nFrom here on we differ\n"}, NULL},
    {"mboxo unquoting",
     "From a@x Mon Jan  1 00:00:00 2024\n\n>From once\n> From not quoted\n>Fromage\n",
     1, {"\nFrom once\n> From not quoted\n>Fromage\n"},
     "\n>From once\n> From not quoted\n>Fromage\n"},
    {"mboxrd unquoting",
     "From a@x Mon Jan  1 00:00:00 2024\n\n>From once\n>>From twice\n> From not quoted\n",
     1, {"\nFrom once\n>From twice\n> From not quoted\n"},
     "\n>From once\n>>From twice\n> From not quoted\n"},
    {"crlf",
     "From a@x Mon Jan  1 00:00:00 2024\r\nSubject: 1\r\n\r\none\r\n\r\n"
     "From b@x Mon Jan  1 00:00:00 2024\r\nSubject: 2\r\n\r\ntwo\r\n",
     2, {"Subject: 1\r\n\r\none\r\n", "Subject: 2\r\n\r\ntwo\r\n"}, NULL},
    {"no blank line at end keeps the line end",
     "From a@x Mon Jan  1 00:00:00 2024\nSubject: 1\n\nlast\n", 1, {"Subject: 1\n\nlast\n"}, NULL},
    {"no final newline",
     "From a@x Mon Jan  1 00:00:00 2024\nSubject: 1\n\nlast", 1, {"Subject: 1\n\nlast"}, NULL},
    {"only one line end removed",
     "From a@x Mon Jan  1 00:00:00 2024\nS: 1\n\nx\n\n\n\nFrom b@x Mon Jan  1 00:00:00 2024\n\n",
     2, {"S: 1\n\nx\n\n\n", ""}, NULL},
    {"separator only", "From a@x Mon Jan  1 00:00:00 2024\n", 1, {""}, NULL},
    {"empty", "", 0, {NULL}, NULL},
    {"not an mbox", "Subject: x\n\nbody\n", 0, {NULL}, NULL},
};

static void test_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof split_cases / sizeof split_cases[0]; i++) {
        const split_case *c = &split_cases[i];
        collected got = {0};
        size_t n = mv_mbox_split((const uint8_t *)c->mbox, strlen(c->mbox), collect, &got);
        if (n != c->n || got.n != c->n)
            fail_msg("%s: want %zu messages, got %zu", c->name, c->n, n);
        for (size_t k = 0; k < n; k++)
            if (strcmp(got.data[k], c->want[k]) != 0)
                fail_msg("%s: message %zu is \"%s\"", c->name, k + 1, got.data[k]);
        if (n && strcmp(got.raw[0], c->raw1 ? c->raw1 : c->want[0]) != 0)
            fail_msg("%s: raw 1 is \"%s\"", c->name, got.raw[0]);
        collected_free(&got);
    }
    collected got = {0};
    mv_mbox_split((const uint8_t *)split_cases[0].mbox, strlen(split_cases[0].mbox), collect, &got);
    assert_string_equal(got.from[0], "a@x Mon Jan  1 00:00:00 2024");
    assert_string_equal(got.from[1], "b@x Mon Jan  1 00:00:00 2024");
    collected_free(&got);
    /* the byte-order mark is not part of the envelope sender */
    assert_string_equal(split_cases[1].name, "byte-order mark before the first separator");
    mv_mbox_split((const uint8_t *)split_cases[1].mbox, strlen(split_cases[1].mbox), collect, &got);
    assert_string_equal(got.from[0], "a@x Mon Jan  1 00:00:00 2024");
    collected_free(&got);
    assert_int_equal(mv_mbox_split(NULL, 0, NULL, NULL), 0);
}

/* ---- the walker --------------------------------------------------------------- */

static char tmpdir[4096];

static void put_file(const char *rel, const void *p, size_t n)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void put_str(const char *rel, const char *s)
{
    put_file(rel, s, strlen(s));
}

static void mk(const char *rel)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    assert_int_equal(mkdir(path, 0700), 0);
}

typedef struct warns {
    size_t n;
    char text[16][512];
} warns;

static void on_warn(void *ctx, const char *path, const char *reason)
{
    warns *w = ctx;
    if (w->n < 16)
        snprintf(w->text[w->n], sizeof w->text[0], "%s: %s", path, reason);
    w->n++;
}

static int has_warn(const warns *w, const char *needle)
{
    for (size_t i = 0; i < w->n && i < 16; i++)
        if (strstr(w->text[i], needle))
            return 1;
    return 0;
}

static void rm_rf(const char *dir)
{
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup_tree(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/mv-source-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    return 0;
}

static int teardown_tree(void **state)
{
    (void)state;
    rm_rf(tmpdir);
    return 0;
}

static void test_walk(void **state)
{
    (void)state;
    mk("Maildir");
    mk("Maildir/cur");
    mk("Maildir/new");
    mk("Maildir/tmp");
    put_str("Maildir/cur/1700000000.M1P1.host:2,S", "From: a@x\nSubject: cur\n\nc\n");
    put_str("Maildir/new/1700000001.M2P2.host", "From: a@x\nSubject: new\n\nn\n");
    put_str("Maildir/tmp/1700000002.M3P3.host", "From: a@x\nSubject: tmp\n\nt\n");
    mk("enron");
    mk("enron/inbox");
    put_str("enron/inbox/1.", "Message-ID: <1.JavaMail.evans@thyme>\r\nDate: Mon, 14 May 2001 "
                              "16:39:00 -0700 (PDT)\r\nFrom: a@enron.com\r\n\r\nhi\r\n");
    put_str("0a1b2c3d4e5f60718293a4b5c6d7e8f9", "Return-Path: <x@y>\nFrom: x@y\n\nhash named\n");
    put_str("README", "This folder holds test mail.\nNothing else.\n");
    put_str("empty", "");
    put_str("box.mbox", "From a@x Mon Jan  1 00:00:00 2024\nSubject: m1\n\n>>From rd\n\n"
                        "From b@x Mon Jan  1 00:00:00 2024\nSubject: m2\n\nbody\n");
    char target[8192], link[8192];
    snprintf(target, sizeof target, "%s/README", tmpdir);
    snprintf(link, sizeof link, "%s/zlink", tmpdir);
    assert_int_equal(symlink(target, link), 0);

    char *paths[] = {tmpdir};
    warns w = {0};
    mv_source *s = NULL;
    mv_err err;
    assert_int_equal(mv_source_open(paths, 1, NULL, on_warn, &w, &s, &err), MV_OK);
    uint64_t total = mv_source_total_bytes(s);
    assert_true(total > 0);

    static const struct {
        const char *suffix, *kind;
    } want[] = {
        {"/0a1b2c3d4e5f60718293a4b5c6d7e8f9", "eml"},
        {"/Maildir#1700000000.M1P1.host", "maildir"},
        {"/Maildir#1700000001.M2P2.host", "maildir"},
        {"/box.mbox#1", "mbox"},
        {"/box.mbox#2", "mbox"},
        {"/enron/inbox/1.", "eml"},
    };
    mv_source_msg m;
    size_t i = 0;
    while (mv_source_next(s, &m, &err) == MV_OK) {
        assert_true(i < sizeof want / sizeof want[0]);
        size_t ol = strlen(m.origin), sl = strlen(want[i].suffix);
        if (ol < sl || strcmp(m.origin + ol - sl, want[i].suffix) != 0)
            fail_msg("message %zu: origin %s", i, m.origin);
        assert_string_equal(m.kind, want[i].kind);
        assert_true(strstr(m.origin, tmpdir) != NULL);
        assert_true(m.mtime > 0);
        if (!strcmp(m.kind, "mbox")) {
            assert_string_equal(m.mbox_variant, "mboxrd");
            assert_non_null(m.mbox_from);
            if (strstr(m.origin, "#1")) {
                assert_int_equal(m.len, strlen("Subject: m1\n\n>From rd\n"));
                assert_memory_equal(m.data, "Subject: m1\n\n>From rd\n", m.len);
                assert_memory_equal(m.raw, "Subject: m1\n\n>>From rd\n", m.raw_len);
            }
        } else {
            assert_null(m.mbox_variant);
            assert_ptr_equal(m.data, m.raw);
        }
        if (!strcmp(m.kind, "maildir"))
            assert_true(strncmp(m.origin, "maildir:/", 9) == 0);
        if (!strcmp(m.kind, "eml"))
            assert_true(strncmp(m.origin, "file:/", 6) == 0);
        i++;
    }
    assert_int_equal(i, sizeof want / sizeof want[0]);
    assert_int_equal(mv_source_skipped(s), 3); /* README, empty, the symlink */
    assert_int_equal(mv_source_failed(s), 0);
    assert_int_equal(mv_source_done_bytes(s), total);
    assert_true(has_warn(&w, "README"));
    assert_true(has_warn(&w, "empty file"));
    assert_true(has_warn(&w, "symlink"));
    assert_false(has_warn(&w, "Maildir/tmp"));
    mv_source_free(s);
}

static void test_open_errors(void **state)
{
    (void)state;
    char missing[8192];
    snprintf(missing, sizeof missing, "%s/does-not-exist", tmpdir);
    char *paths[] = {missing};
    mv_source *s = (mv_source *)1;
    mv_err err;
    assert_int_equal(mv_source_open(paths, 1, NULL, NULL, NULL, &s, &err), MV_ENOTFOUND);
    assert_null(s);
    mv_source_free(NULL);
}

/* An mbox message over the limit is reported and counted, the rest read;
 * a line longer than the read buffer is carried in pieces. */
static void test_mbox_limit_and_long_lines(void **state)
{
    (void)state;
    mv_buf b = MV_BUF_INIT;
    mv_buf_append_str(&b, "From a@x Mon Jan  1 00:00:00 2024\nSubject: small\n\nok\n\n");
    mv_buf_append_str(&b, "From b@x Mon Jan  1 00:00:00 2024\nSubject: big\n\n");
    for (int i = 0; i < 5000; i++)
        mv_buf_append_str(&b, "0123456789012345678901234567890123456789\n");
    mv_buf_append_str(&b, "\nFrom c@x Mon Jan  1 00:00:00 2024\nSubject: long line\n\n");
    for (int i = 0; i < 150000; i++)
        mv_buf_append_byte(&b, (uint8_t)('a' + i % 26));
    mv_buf_append_str(&b, "\n>From quoted\n");
    put_file("big.mbox", b.data, b.len);

    char path[8192];
    snprintf(path, sizeof path, "%s/big.mbox", tmpdir);
    char *paths[] = {path};
    mv_source_limits lim;
    mv_source_limits_default(&lim);
    assert_int_equal(lim.max_message_bytes, (size_t)512 << 20);
    lim.max_message_bytes = 180000;
    warns w = {0};
    mv_source *s;
    mv_err err;
    assert_int_equal(mv_source_open(paths, 1, &lim, on_warn, &w, &s, &err), MV_OK);
    mv_source_msg m;
    assert_int_equal(mv_source_next(s, &m, &err), MV_OK);
    assert_true(strstr(m.origin, "#1") != NULL);
    assert_int_equal(mv_source_next(s, &m, &err), MV_OK);
    assert_true(strstr(m.origin, "#3") != NULL); /* #2 was over the limit */
    assert_int_equal(m.len, strlen("Subject: long line\n\n") + 150001 + strlen("From quoted\n"));
    assert_memory_equal(m.data + m.len - 12, "From quoted\n", 12);
    assert_int_equal(mv_source_next(s, &m, &err), MV_ENOTFOUND);
    assert_int_equal(mv_source_failed(s), 1);
    assert_true(has_warn(&w, "#2: message of"));
    assert_int_equal(mv_source_done_bytes(s), mv_source_total_bytes(s));
    mv_source_free(s);

    /* mv_mbox_split applies the same rules (without a size limit) */
    assert_int_equal(mv_mbox_split(b.data, b.len, NULL, NULL), 3);
    mv_buf_free(&b);
}

/* The walk takes a file's size from the open file, not from a stat of its
 * own: a file that grew or was swapped for a FIFO after the walk is read as
 * it is then (never a hang), and the bytes counted are the bytes read. */
static void test_sizes_at_read(void **state)
{
    (void)state;
    put_str("a", "From: a@x\nSubject: a\n\na\n");
    put_str("b", "From: b@x\nSubject: b\n\nb\n");
    put_str("c", "From: c@x\nSubject: c\n\nc\n");
    char p[8192];
    snprintf(p, sizeof p, "%s/fifo", tmpdir);
    assert_int_equal(mkfifo(p, 0600), 0);

    char *paths[] = {tmpdir};
    warns w = {0};
    mv_source *s = NULL;
    mv_err err;
    assert_int_equal(mv_source_open(paths, 1, NULL, on_warn, &w, &s, &err), MV_OK);
    /* after the walk: a grows, b becomes a FIFO */
    static const char more[] = "From: a@x\nSubject: a, longer now\n\naaaa\n";
    put_str("a", more);
    snprintf(p, sizeof p, "%s/b", tmpdir);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkfifo(p, 0600), 0);

    mv_source_msg m;
    assert_int_equal(mv_source_next(s, &m, &err), MV_OK);
    assert_int_equal(m.len, strlen(more));
    assert_memory_equal(m.data, more, m.len);
    assert_true(m.mtime > 0);
    assert_int_equal(mv_source_next(s, &m, &err), MV_OK);
    assert_true(strstr(m.origin, "/c") != NULL);
    assert_int_equal(mv_source_next(s, &m, &err), MV_ENOTFOUND);
    assert_int_equal(mv_source_skipped(s), 2); /* the FIFO the walk saw, and b */
    assert_int_equal(mv_source_failed(s), 0);
    uint64_t read = strlen(more) + strlen("From: c@x\nSubject: c\n\nc\n");
    assert_int_equal(mv_source_done_bytes(s), read);
    assert_int_equal(mv_source_total_bytes(s), read);
    assert_true(has_warn(&w, "not a regular file"));
    mv_source_free(s);
}

/* A maildir file named on its own is a message; a single file named on the
 * command line gets a file: origin. */
static void test_single_file(void **state)
{
    (void)state;
    put_str("one.eml", "From: a@x\r\nSubject: single\r\n\r\nbody\r\n");
    char path[8192];
    snprintf(path, sizeof path, "%s/one.eml", tmpdir);
    char *paths[] = {path};
    mv_source *s;
    mv_err err;
    assert_int_equal(mv_source_open(paths, 1, NULL, NULL, NULL, &s, &err), MV_OK);
    mv_source_msg m;
    assert_int_equal(mv_source_next(s, &m, &err), MV_OK);
    assert_string_equal(m.kind, "eml");
    assert_int_equal(m.len, strlen("From: a@x\r\nSubject: single\r\n\r\nbody\r\n"));
    assert_true(strncmp(m.origin, "file:/", 6) == 0);
    assert_int_equal(mv_source_next(s, &m, &err), MV_ENOTFOUND);
    mv_source_free(s);
}

/* Apple Mail's .emlx: the message is the counted bytes after the first
 * line; the property list after them is not kept. */
static void test_emlx(void **state)
{
    (void)state;
    const char *msg = "From: a@x\nSubject: apple\n\nbody\n";
    char file[512], path[8192];
    snprintf(file, sizeof file, "%zu\n%s<?xml version=\"1.0\"?>\n<plist version=\"1.0\"><dict/></plist>\n",
             strlen(msg), msg);
    put_str("1.emlx", file);
    put_str("2.emlx", "400\nFrom: b@x\n\ncut short\n"); /* length past the end: kept */
    put_str("3.emlx", "7\n");                              /* nothing after it: not mail */
    put_str("4.eml", "From: c@x\n\nafter the short one\n"); /* no anomaly carried over */
    snprintf(path, sizeof path, "%s", tmpdir);
    char *paths[] = {path};
    mv_source *s;
    mv_err err;
    warns w = {0};
    assert_int_equal(mv_source_open(paths, 1, NULL, on_warn, &w, &s, &err), MV_OK);
    mv_source_msg m;
    assert_int_equal(mv_source_next(s, &m, &err), MV_OK);
    assert_string_equal(m.kind, "emlx");
    assert_int_equal(m.len, strlen(msg));
    assert_memory_equal(m.data, msg, m.len);
    assert_true(m.raw == m.data && m.raw_len == m.len);
    assert_true(strncmp(m.origin, "file:/", 6) == 0);
    size_t took = 0;
    uint8_t *p = mv_source_take(s, &took);
    assert_int_equal(took, strlen(msg));
    assert_memory_equal(p, msg, took);
    free(p);
    assert_null(m.anomaly);
    assert_int_equal(mv_source_next(s, &m, &err), MV_OK);
    assert_int_equal(m.len, strlen("From: b@x\n\ncut short\n"));
    assert_non_null(m.anomaly);
    assert_non_null(strstr(m.anomaly, "emlx length 400 beyond the end of the file"));
    assert_int_equal(mv_source_next(s, &m, &err), MV_OK);
    assert_string_equal(m.kind, "eml");
    assert_null(m.anomaly);
    assert_int_equal(mv_source_next(s, &m, &err), MV_ENOTFOUND);
    assert_int_equal(mv_source_skipped(s), 1);
    assert_int_equal(mv_source_failed(s), 0);
    assert_true(has_warn(&w, "beyond the end of the file"));
    assert_true(has_warn(&w, "3.emlx: not mail"));
    mv_source_free(s);
    uint64_t count = 0;
    assert_int_equal(mv_emlx_prefix((const uint8_t *)"123 \r\nX", 7, &count), 6);
    assert_int_equal(count, 123);
    assert_int_equal(mv_emlx_prefix((const uint8_t *)"1234567890123456\n", 17, &count), 0);
    assert_int_equal(mv_emlx_prefix((const uint8_t *)"12", 2, &count), 0);
    assert_int_equal(mv_emlx_prefix(NULL, 0, &count), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_separator),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_split),
        cmocka_unit_test_setup_teardown(test_walk, setup_tree, teardown_tree),
        cmocka_unit_test_setup_teardown(test_open_errors, setup_tree, teardown_tree),
        cmocka_unit_test_setup_teardown(test_mbox_limit_and_long_lines, setup_tree, teardown_tree),
        cmocka_unit_test_setup_teardown(test_single_file, setup_tree, teardown_tree),
        cmocka_unit_test_setup_teardown(test_sizes_at_read, setup_tree, teardown_tree),
        cmocka_unit_test_setup_teardown(test_emlx, setup_tree, teardown_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
