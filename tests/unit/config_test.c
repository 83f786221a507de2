/* SPDX-License-Identifier: MIT */
/* config_test.c - the INI reader: every value type at its edges, syntax,
 * sections, error messages, overrides, limits and the print round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../lib/buf.h"
#include "../../lib/config.h"

#define KI 1024ull

static const mv_cfg_key schema[] = {
    {"archive", "path", MV_CFG_STR, "/var/lib/mailvault", "archive directory", 0, 0},
    {"archive", "title", MV_CFG_STR, NULL, "display name", 0, 0},
    {"archive", "compress", MV_CFG_BOOL, "yes", "compress blobs", 0, 0},
    {"archive", "workers", MV_CFG_UINT, "4", "pipeline threads", 1, 64},
    {"archive", "serial", MV_CFG_UINT, NULL, "any number", 0, 0},
    {"limits", "message_size", MV_CFG_SIZE, "100M", "largest message | bytes", 1024, 0},
    {"limits", "spool_size", MV_CFG_SIZE, NULL, "any size", 0, 0},
    {"limits", "timeout", MV_CFG_DURATION, "300s", "session deadline", 1000, 3600000},
    {"limits", "wait", MV_CFG_DURATION, NULL, "any duration", 0, 0},
    {"limits", "mode", MV_CFG_MODE, "0640", "file mode", 0, 0},
    {"limits", "words", MV_CFG_LIST, NULL, "any list", 0, 0},
    {"listener *", "address", MV_CFG_STR, NULL, "host:port", 0, 0},
    {"listener *", "allow", MV_CFG_LIST, "127.0.0.1 ::1", "client networks", 0, 0},
    {"listener *", "tls", MV_CFG_BOOL, "no", "require STARTTLS", 0, 0},
};
#define NKEYS (sizeof schema / sizeof schema[0])

static mv_cfg *loaded(const char *text)
{
    mv_cfg *c = mv_cfg_new(schema, NKEYS);
    mv_err err = {0};
    mv_status st = mv_cfg_load_string(c, text, "t.conf", &err);
    if (st != MV_OK)
        fail_msg("load failed: %s", err.msg);
    return c;
}

/* load_err - load text expecting failure; returns the status, message in err */
static mv_status load_err(const char *text, mv_err *err)
{
    mv_cfg *c = mv_cfg_new(schema, NKEYS);
    mv_status st = mv_cfg_load_string(c, text, "t.conf", err);
    mv_cfg_free(c);
    assert_int_not_equal(st, MV_OK);
    return st;
}

static void expect_msg(const char *text, mv_status code, const char *want)
{
    mv_err err = {0};
    assert_int_equal(load_err(text, &err), code);
    if (!strstr(err.msg, want))
        fail_msg("for %s: message \"%s\" lacks \"%s\"", text, err.msg, want);
}

/* ---- value types --------------------------------------------------------- */

typedef struct vcase {
    const char *section, *key, *value;
    int ok;
    uint64_t want;
} vcase;

static const vcase vcases[] = {
    {"archive", "compress", "yes", 1, 1},
    {"archive", "compress", "No", 1, 0},
    {"archive", "compress", "TRUE", 1, 1},
    {"archive", "compress", "off", 1, 0},
    {"archive", "compress", "on", 1, 1},
    {"archive", "compress", "false", 1, 0},
    {"archive", "compress", "1", 1, 1},
    {"archive", "compress", "0", 1, 0},
    {"archive", "compress", "maybe", 0, 0},
    {"archive", "compress", "", 0, 0},
    {"archive", "compress", "2", 0, 0},
    {"archive", "compress", "yess", 0, 0},
    {"archive", "serial", "0", 1, 0},
    {"archive", "serial", "007", 1, 7},
    {"archive", "serial", "18446744073709551615", 1, UINT64_MAX},
    {"archive", "serial", "18446744073709551616", 0, 0},
    {"archive", "serial", "99999999999999999999", 0, 0},
    {"archive", "serial", "-1", 0, 0},
    {"archive", "serial", "+1", 0, 0},
    {"archive", "serial", "1.5", 0, 0},
    {"archive", "serial", "10k", 0, 0},
    {"archive", "serial", "0x10", 0, 0},
    {"archive", "serial", "", 0, 0},
    {"archive", "serial", "1 2", 0, 0},
    {"archive", "workers", "1", 1, 1},
    {"archive", "workers", "64", 1, 64},
    {"archive", "workers", "0", 0, 0},
    {"archive", "workers", "65", 0, 0},
    {"limits", "spool_size", "123", 1, 123},
    {"limits", "spool_size", "0", 1, 0},
    {"limits", "spool_size", "64K", 1, 64 * KI},
    {"limits", "spool_size", "64k", 1, 64 * KI},
    {"limits", "spool_size", "100M", 1, 100 * KI *KI},
    {"limits", "spool_size", "2G", 1, 2 * KI *KI *KI},
    {"limits", "spool_size", "2 GiB", 1, 2 * KI *KI *KI},
    {"limits", "spool_size", "1kib", 1, KI},
    {"limits", "spool_size", "100MB", 1, 100 * KI *KI},
    {"limits", "spool_size", "7B", 1, 7},
    {"limits", "spool_size", "3T", 1, 3 * KI *KI *KI *KI},
    {"limits", "spool_size", "15E", 1, 15ull << 60},
    {"limits", "spool_size", "16E", 0, 0},
    {"limits", "spool_size", "16384P", 0, 0},
    {"limits", "spool_size", "17179869184G", 0, 0},
    {"limits", "spool_size", "99999999999999999999", 0, 0},
    {"limits", "spool_size", "10X", 0, 0},
    {"limits", "spool_size", "M", 0, 0},
    {"limits", "spool_size", "-1", 0, 0},
    {"limits", "spool_size", "1.5G", 0, 0},
    {"limits", "spool_size", "", 0, 0},
    {"limits", "spool_size", "1MM", 0, 0},
    {"limits", "message_size", "1K", 1, 1024},
    {"limits", "message_size", "1023", 0, 0},
    {"limits", "wait", "300s", 1, 300000},
    {"limits", "wait", "5m", 1, 300000},
    {"limits", "wait", "5min", 1, 300000},
    {"limits", "wait", "5 m", 1, 300000},
    {"limits", "wait", "250ms", 1, 250},
    {"limits", "wait", "2h", 1, 7200000},
    {"limits", "wait", "1d", 1, 86400000},
    {"limits", "wait", "30", 1, 30000},
    {"limits", "wait", "0", 1, 0},
    {"limits", "wait", "2H", 1, 7200000},
    {"limits", "wait", "18446744073709551615ms", 1, UINT64_MAX},
    {"limits", "wait", "18446744073709552s", 0, 0},
    {"limits", "wait", "18446744073709552", 0, 0},
    {"limits", "wait", "5x", 0, 0},
    {"limits", "wait", "ms", 0, 0},
    {"limits", "wait", "1w", 0, 0},
    {"limits", "wait", "1h30m", 0, 0},
    {"limits", "timeout", "1s", 1, 1000},
    {"limits", "timeout", "1h", 1, 3600000},
    {"limits", "timeout", "999ms", 0, 0},
    {"limits", "timeout", "61m", 0, 0},
    {"limits", "mode", "0640", 1, 0640},
    {"limits", "mode", "640", 1, 0640},
    {"limits", "mode", "07777", 1, 07777},
    {"limits", "mode", "0", 1, 0},
    {"limits", "mode", "10000", 0, 0},
    {"limits", "mode", "0800", 0, 0},
    {"limits", "mode", "000640", 0, 0},
    {"limits", "mode", "rw-r-----", 0, 0},
    {"limits", "mode", "", 0, 0},
};

static void test_types(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vcases / sizeof vcases[0]; i++) {
        const vcase *v = &vcases[i];
        char text[256];
        mv_err err = {0};
        snprintf(text, sizeof text, "[%s]\n%s = %s\n", v->section, v->key, v->value);
        mv_cfg *c = mv_cfg_new(schema, NKEYS);
        mv_status st = mv_cfg_load_string(c, text, "t.conf", &err);
        if ((st == MV_OK) != v->ok)
            fail_msg("%s = \"%s\": got %s (%s)", v->key, v->value, mv_status_str(st), err.msg);
        if (v->ok && strcmp(v->key, "compress") == 0)
            assert_int_equal(mv_cfg_bool(c, v->section, NULL, v->key), (int)v->want);
        else if (v->ok && mv_cfg_u64(c, v->section, NULL, v->key) != v->want)
            fail_msg("%s = \"%s\": got %llu", v->key, v->value,
                     (unsigned long long)mv_cfg_u64(c, v->section, NULL, v->key));
        if (!v->ok)
            assert_non_null(strstr(err.msg, "expected") ? err.msg : strstr(err.msg, "too large"));
        /* the same rules apply to overrides */
        mv_cfg_free(c);
        c = mv_cfg_new(schema, NKEYS);
        assert_int_equal(mv_cfg_set(c, v->section, NULL, v->key, v->value, &err) == MV_OK, v->ok);
        mv_cfg_free(c);
    }
}

static void test_defaults_and_lists(void **state)
{
    (void)state;
    size_t n;
    mv_cfg *c = loaded("[limits]\nwords = a, b c,,d\t e,\n[listener x]\n");
    assert_string_equal(mv_cfg_str(c, "archive", NULL, "path"), "/var/lib/mailvault");
    assert_null(mv_cfg_str(c, "archive", NULL, "title"));
    assert_false(mv_cfg_is_set(c, "archive", NULL, "path"));
    assert_true(mv_cfg_bool(c, "archive", NULL, "compress"));
    assert_int_equal(mv_cfg_u64(c, "archive", NULL, "workers"), 4);
    assert_int_equal(mv_cfg_u64(c, "archive", NULL, "serial"), 0);
    assert_int_equal(mv_cfg_u64(c, "limits", NULL, "message_size"), 100 * KI * KI);
    assert_int_equal(mv_cfg_u64(c, "limits", NULL, "timeout"), 300000);
    assert_int_equal(mv_cfg_u64(c, "limits", NULL, "mode"), 0640);
    const char *const *w = mv_cfg_list(c, "limits", NULL, "words", &n);
    assert_int_equal(n, 5);
    assert_string_equal(w[0], "a");
    assert_string_equal(w[2], "c");
    assert_string_equal(w[4], "e");
    assert_null(w[5]);
    assert_string_equal(mv_cfg_str(c, "limits", NULL, "words"), "a, b c,,d\t e,");
    w = mv_cfg_list(c, "listener", "x", "allow", &n);
    assert_int_equal(n, 2);
    assert_string_equal(w[1], "::1");
    w = mv_cfg_list(c, "listener", "nosuch", "allow", &n); /* missing instance: defaults */
    assert_int_equal(n, 2);
    mv_cfg_free(c);

    c = loaded("[limits]\nwords =\n");
    w = mv_cfg_list(c, "limits", NULL, "words", &n);
    assert_int_equal(n, 0);
    assert_null(w[0]);
    assert_true(mv_cfg_is_set(c, "limits", NULL, "words"));
    mv_cfg_free(c);
    c = loaded("");
    w = mv_cfg_list(c, "limits", NULL, "words", &n);
    assert_int_equal(n, 0);
    assert_null(w[0]);
    mv_cfg_free(c);
}

/* ---- syntax -------------------------------------------------------------- */

static void test_comments_and_quotes(void **state)
{
    (void)state;
    mv_cfg *c = loaded("# top\n"
                       "  ; indented\n"
                       "\n"
                       "[archive]   # header comment\n"
                       "path = /srv/a#b  # comment\n"
                       "title = \"  spaced # not ; comment \"  ; comment\n"
                       "serial = 5 ;c\n"
                       "\t[limits]\n"
                       "  words = \"x\\\"y\\\\z\" \n"
                       "wait=5s\t# tab before the comment\n");
    assert_string_equal(mv_cfg_str(c, "archive", NULL, "path"), "/srv/a#b");
    assert_string_equal(mv_cfg_str(c, "archive", NULL, "title"), "  spaced # not ; comment ");
    assert_int_equal(mv_cfg_u64(c, "archive", NULL, "serial"), 5);
    assert_string_equal(mv_cfg_str(c, "limits", NULL, "words"), "x\"y\\z");
    assert_int_equal(mv_cfg_u64(c, "limits", NULL, "wait"), 5000);
    mv_cfg_free(c);
    /* '#' and ';' start a comment only after a blank: "8;x" is the value */
    expect_msg("[archive]\nworkers=8;x\n", MV_EMALFORMED, "workers = \"8;x\": expected a whole");
    expect_msg("[limits]\nspool_size = #c\n", MV_EMALFORMED, "spool_size = \"\": expected a size");
    c = loaded("[archive]\npath = C:\\dir\\x\ntitle =\n[limits]\nwords = \"\" # none\n");
    assert_string_equal(mv_cfg_str(c, "archive", NULL, "path"), "C:\\dir\\x"); /* literal */
    assert_string_equal(mv_cfg_str(c, "archive", NULL, "title"), "");
    assert_string_equal(mv_cfg_str(c, "limits", NULL, "words"), "");
    mv_cfg_free(c);

    expect_msg("[archive]\ntitle = \"a\\nb\"\n", MV_EMALFORMED, "t.conf:2: in quotes only");
    expect_msg("[archive]\ntitle = \"abc\n", MV_EMALFORMED, "t.conf:2: missing closing quote");
    expect_msg("[archive]\ntitle = \"a\" b\n", MV_EMALFORMED, "text after the closing quote");
    expect_msg("[archive]\ntitle = a\x01"
               "b\n",
               MV_EMALFORMED, "control characters");
    expect_msg("[archive]\ntitle = a\rb\n", MV_EMALFORMED, "control characters");
    expect_msg("[archive]\n[archive]\n", MV_EMALFORMED, "t.conf:2: section [archive] repeated");
}

static void test_errors(void **state)
{
    (void)state;
    expect_msg("[archive]\n\n[limits]\nmessage_size = \"10X\"\n", MV_EMALFORMED,
               "t.conf:4: [limits] message_size = \"10X\": expected a size such as 100M");
    expect_msg("[limits]\nmessage_size = 1000\n", MV_EMALFORMED, "expected a size of at least 1K");
    expect_msg("[limits]\ntimeout = 2h\n", MV_EMALFORMED, "expected a duration from 1s to 1h");
    expect_msg("[limits]\nspool_size = 16E\n", MV_EMALFORMED, "too large");
    expect_msg("[archive]\npath = a\npath = b\n", MV_EMALFORMED,
               "t.conf:3: [archive] path set twice (first at line 2)");
    expect_msg("[arcive]\n", MV_EMALFORMED,
               "t.conf:1: unknown section [arcive]; expected one of [archive], [limits], "
               "[listener NAME]");
    expect_msg("[limits]\nmesage_size = 1M\n", MV_EMALFORMED,
               "t.conf:2: [limits] unknown key \"mesage_size\" (did you mean message_size?)");
    expect_msg("[limits]\nzzz = 1M\n", MV_EMALFORMED, "[limits] unknown key \"zzz\"");
    expect_msg("path = /x\n[archive]\n", MV_EMALFORMED,
               "t.conf:1: key \"path\" outside any section");
    expect_msg("[archive]\njust some words\n", MV_EMALFORMED, "t.conf:2: expected key = value");
    expect_msg("[archive]\n= value\n", MV_EMALFORMED, "expected key = value");
    expect_msg("[archive]\npath value\n", MV_EMALFORMED, "expected key = value");
    expect_msg("[archive]\npa th = x\n", MV_EMALFORMED, "expected key = value");
    expect_msg("[archive\n", MV_EMALFORMED, "t.conf:1: malformed section header");
    expect_msg("[]\n", MV_EMALFORMED, "malformed section header");
    expect_msg("[listener a b]\n", MV_EMALFORMED, "malformed section header");
    expect_msg("[archive] x\n", MV_EMALFORMED, "malformed section header");
    expect_msg("[listener \"a\" x]\n", MV_EMALFORMED, "malformed section header");
    expect_msg("[listener:x]\n", MV_EMALFORMED, "malformed section header");
    expect_msg("[listener\"x\"]\n", MV_EMALFORMED, "malformed section header");
    expect_msg("\x80\xff\n", MV_EMALFORMED, "expected key = value");
}

static void test_named_sections(void **state)
{
    (void)state;
    size_t n;
    mv_cfg *c = loaded("[listener smtp-in]\naddress = 0.0.0.0:25\ntls = yes\n"
                       "[ listener   \"lmtp \\\"local\\\"\" ]\naddress = /run/mv.sock\n"
                       "[listener b]\n[archive]\n");
    const char *const *names = mv_cfg_instances(c, "listener", &n);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "smtp-in");
    assert_string_equal(names[1], "lmtp \"local\"");
    assert_string_equal(names[2], "b");
    assert_null(names[3]);
    assert_string_equal(mv_cfg_str(c, "listener", "smtp-in", "address"), "0.0.0.0:25");
    assert_true(mv_cfg_bool(c, "listener", "smtp-in", "tls"));
    assert_false(mv_cfg_bool(c, "listener", "lmtp \"local\"", "tls"));
    assert_string_equal(mv_cfg_str(c, "listener", "lmtp \"local\"", "address"), "/run/mv.sock");
    assert_null(mv_cfg_str(c, "listener", "b", "address"));
    mv_cfg_free(c);

    c = loaded("");
    assert_int_equal(mv_cfg_instances(c, "listener", &n)[0], NULL);
    assert_int_equal(n, 0);
    mv_cfg_free(c);

    expect_msg("[listener]\n", MV_EMALFORMED, "t.conf:1: [listener] needs a name: [listener NAME]");
    expect_msg("[listener \"\"]\n", MV_EMALFORMED, "non-empty");
    expect_msg("[archive main]\n", MV_EMALFORMED, "[archive] takes no name");
    expect_msg("[listener a]\ntls = yes\n[listener b]\n[listener a]\n", MV_EMALFORMED,
               "t.conf:4: section [listener a] repeated (first at line 1)");
    expect_msg("[listener a]\ntls = yes\ntls = no\n", MV_EMALFORMED,
               "[listener a] tls set twice (first at line 2)");
    expect_msg("[listener a]\nport = 25\n", MV_EMALFORMED, "[listener a] unknown key \"port\"");
}

static void test_line_ends_bom_empty(void **state)
{
    (void)state;
    mv_cfg *c = loaded("\xEF\xBB\xBF[archive]\r\npath = /crlf\r\ntitle = \"q\"\r\n\r\n# c\r\n"
                       "serial = 9");
    assert_string_equal(mv_cfg_str(c, "archive", NULL, "path"), "/crlf");
    assert_string_equal(mv_cfg_str(c, "archive", NULL, "title"), "q");
    assert_int_equal(mv_cfg_u64(c, "archive", NULL, "serial"), 9);
    mv_cfg_free(c);
    /* a BOM counts only at the very start */
    expect_msg("[archive]\n\xEF\xBB\xBFpath = x\n", MV_EMALFORMED, "t.conf:2: expected key");
    c = loaded("");
    assert_false(mv_cfg_is_set(c, "archive", NULL, "path"));
    mv_cfg_free(c);
    mv_cfg_free(loaded("\xEF\xBB\xBF"));
    mv_cfg_free(loaded("\n\n   \n\t\n"));
    mv_cfg_free(loaded("\r\n"));
}

static void test_limits(void **state)
{
    (void)state;
    mv_err err = {0};
    size_t big = MV_CFG_MAX_LINE + 64;
    char *t = malloc(MV_CFG_MAX_FILE + 16);
    /* a line of exactly the limit loads (also with CR LF), one byte more does not */
    for (int crlf = 0; crlf < 2; crlf++) {
        size_t hdr = (size_t)snprintf(t, big, "[archive]\n# ");
        memset(t + hdr, 'x', MV_CFG_MAX_LINE - 2);
        const char *eol = crlf ? "\r\n" : "\n";
        memcpy(t + hdr + MV_CFG_MAX_LINE - 2, eol, strlen(eol) + 1);
        mv_cfg_free(loaded(t));
        memset(t + hdr, 'x', MV_CFG_MAX_LINE - 1);
        eol = crlf ? "\r\n" : "";
        memcpy(t + hdr + MV_CFG_MAX_LINE - 1, eol, strlen(eol) + 1);
        expect_msg(t, MV_ELIMIT, "t.conf:2: line longer than 8192 bytes");
    }
    /* values and names: the worst case still prints within a line */
    mv_buf v = MV_BUF_INIT;
    mv_buf_append_str(&v, "\"");
    for (int i = 1; i < MV_CFG_MAX_VALUE; i++)
        mv_buf_append_str(&v, i % 2 ? "\\" : "\"");
    mv_buf_append(&v, "", 0);
    mv_cfg *c = mv_cfg_new(schema, NKEYS);
    assert_int_equal(mv_cfg_set(c, "archive", NULL, "title", (char *)v.data, &err), MV_OK);
    memset(t, 'n', MV_CFG_MAX_NAME);
    t[MV_CFG_MAX_NAME] = '\0';
    t[0] = '"';
    assert_int_equal(mv_cfg_set(c, "listener", t, "tls", "yes", &err), MV_OK);
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    mv_cfg_print(c, f);
    fclose(f);
    mv_cfg *d = loaded(out);
    assert_string_equal(mv_cfg_str(d, "archive", NULL, "title"), (char *)v.data);
    assert_true(mv_cfg_bool(d, "listener", t, "tls"));
    mv_cfg_free(d);
    free(out);
    mv_buf_append_str(&v, "x");
    assert_int_equal(mv_cfg_set(c, "archive", NULL, "title", (char *)v.data, &err), MV_ELIMIT);
    assert_non_null(strstr(err.msg, "value longer than 4000 bytes"));
    t[MV_CFG_MAX_NAME] = 'n';
    t[MV_CFG_MAX_NAME + 1] = '\0';
    assert_int_equal(mv_cfg_set(c, "listener", t, "tls", "yes", &err), MV_ELIMIT);
    mv_cfg_free(c);
    mv_buf_free(&v);

    memset(t, '#', MV_CFG_MAX_FILE + 1);
    for (size_t i = 100; i < MV_CFG_MAX_FILE; i += 100)
        t[i] = '\n';
    t[MV_CFG_MAX_FILE] = '\0';
    mv_cfg_free(loaded(t));
    t[MV_CFG_MAX_FILE] = '#';
    t[MV_CFG_MAX_FILE + 1] = '\0';
    expect_msg(t, MV_ELIMIT, "t.conf: larger than 1048576 bytes");

    mv_buf b = MV_BUF_INIT;
    for (int i = 0; i <= MV_CFG_MAX_INSTANCES; i++)
        mv_buf_printf(&b, "[listener l%d]\n", i);
    expect_msg((char *)b.data, MV_ELIMIT, "more than 256 [listener NAME] sections");
    c = mv_cfg_new(schema, NKEYS);
    for (int i = 0; i < MV_CFG_MAX_INSTANCES; i++) {
        char name[16];
        snprintf(name, sizeof name, "o%d", i);
        assert_int_equal(mv_cfg_set(c, "listener", name, "tls", "yes", &err), MV_OK);
    }
    assert_int_equal(mv_cfg_set(c, "listener", "one-more", "tls", "yes", &err), MV_ELIMIT);
    mv_cfg_free(c);
    mv_buf_free(&b);
    free(t);
}

/* ---- overrides, atomic loads, files --------------------------------------- */

static void test_overrides(void **state)
{
    (void)state;
    mv_err err = {0};
    size_t n;
    mv_cfg *c = mv_cfg_new(schema, NKEYS);
    assert_int_equal(mv_cfg_set(c, "archive", NULL, "workers", "16", &err), MV_OK);
    assert_int_equal(mv_cfg_set(c, "listener", "cli", "tls", "yes", &err), MV_OK);
    assert_int_equal(mv_cfg_load_string(c,
                                        "[archive]\nworkers = 2\nserial = 3\n"
                                        "[listener file]\n[listener cli]\ntls = no\n",
                                        "t.conf", &err),
                     MV_OK);
    assert_int_equal(mv_cfg_u64(c, "archive", NULL, "workers"), 16); /* set before the load */
    assert_int_equal(mv_cfg_u64(c, "archive", NULL, "serial"), 3);
    assert_true(mv_cfg_bool(c, "listener", "cli", "tls"));
    assert_int_equal(mv_cfg_set(c, "archive", NULL, "serial", "4", &err), MV_OK);
    assert_int_equal(mv_cfg_u64(c, "archive", NULL, "serial"), 4); /* and after */
    const char *const *names = mv_cfg_instances(c, "listener", &n);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "cli");
    assert_string_equal(names[1], "file");

    assert_int_equal(mv_cfg_set(c, "archive", NULL, "workers", "99", &err), MV_EMALFORMED);
    assert_string_equal(err.msg, "[archive] workers = \"99\": expected a number from 1 to 64");
    assert_int_equal(mv_cfg_set(c, "archive", NULL, "wokers", "1", &err), MV_EMALFORMED);
    assert_non_null(strstr(err.msg, "did you mean workers?"));
    assert_int_equal(mv_cfg_set(c, "listener", NULL, "tls", "yes", &err), MV_EMALFORMED);
    assert_int_equal(mv_cfg_set(c, "archive", "x", "path", "/", &err), MV_EMALFORMED);
    assert_int_equal(mv_cfg_set(c, "nosuch", NULL, "path", "/", &err), MV_EMALFORMED);
    assert_int_equal(mv_cfg_set(c, "listener", "", "tls", "yes", &err), MV_EMALFORMED);
    assert_int_equal(mv_cfg_set(c, "listener", "new", "tls", "maybe", &err), MV_EMALFORMED);
    mv_cfg_instances(c, "listener", &n);
    assert_int_equal(n, 2); /* a failed set creates nothing */
    assert_int_equal(mv_cfg_u64(c, "archive", NULL, "workers"), 16);

    /* a failed load changes nothing, not even the instances it had opened */
    assert_int_equal(mv_cfg_load_string(c,
                                        "[archive]\nserial = 7\ntitle = t\n[listener late]\n"
                                        "[limits]\nmode = 9\n",
                                        "t2.conf", &err),
                     MV_EMALFORMED);
    assert_string_equal(err.msg, "t2.conf:6: [limits] mode = \"9\": expected an octal file mode "
                                 "such as 0640");
    assert_false(mv_cfg_is_set(c, "archive", NULL, "title"));
    mv_cfg_instances(c, "listener", &n);
    assert_int_equal(n, 2);
    /* a second load layers over the first */
    assert_int_equal(mv_cfg_load_string(c, "[archive]\ntitle = t\n", NULL, &err), MV_OK);
    assert_string_equal(mv_cfg_str(c, "archive", NULL, "title"), "t");
    assert_int_equal(mv_cfg_u64(c, "archive", NULL, "serial"), 4);
    mv_cfg_free(c);
}

static void test_file(void **state)
{
    (void)state;
    mv_err err = {0};
    char path[] = "/tmp/mv-config-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char text[] = "[limits]\nmessage_size = 64M\nmode = 0600\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    mv_cfg *c = mv_cfg_new(schema, NKEYS);
    assert_int_equal(mv_cfg_load_file(c, path, &err), MV_OK);
    assert_int_equal(mv_cfg_u64(c, "limits", NULL, "message_size"), 64 * KI * KI);
    assert_int_equal(mv_cfg_u64(c, "limits", NULL, "mode"), 0600);
    /* a NUL byte makes the file not text */
    assert_int_equal(write(fd, "[archive]\ntitle = a\0b\n", 22), 22);
    assert_int_equal(mv_cfg_load_file(c, path, &err), MV_EMALFORMED);
    assert_non_null(strstr(err.msg, ":5: NUL byte"));
    assert_non_null(strstr(err.msg, path));
    close(fd);
    unlink(path);
    assert_int_equal(mv_cfg_load_file(c, path, &err), MV_ENOTFOUND);
    mv_cfg_free(c);
}

/* ---- output ----------------------------------------------------------------- */

static char *print_to_string(const mv_cfg *c)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    mv_cfg_print(c, f);
    fclose(f);
    return out;
}

static void assert_same(const mv_cfg *a, const mv_cfg *b)
{
    size_t na, nb;
    const char *const *ia = mv_cfg_instances(a, "listener", &na);
    const char *const *ib = mv_cfg_instances(b, "listener", &nb);
    assert_int_equal(na, nb);
    for (size_t i = 0; i <= na; i++) {
        const char *name = i < na ? ia[i] : NULL;
        if (name)
            assert_string_equal(name, ib[i]);
        for (size_t k = 0; k < NKEYS; k++) {
            const char *sec = schema[k].section;
            if ((strcmp(sec, "listener *") == 0) != (name != NULL))
                continue;
            const char *word = name ? "listener" : sec;
            const char *va = mv_cfg_str(a, word, name, schema[k].key);
            const char *vb = mv_cfg_str(b, word, name, schema[k].key);
            assert_int_equal(va == NULL, vb == NULL);
            if (va)
                assert_string_equal(va, vb);
            assert_int_equal(mv_cfg_is_set(a, word, name, schema[k].key),
                             mv_cfg_is_set(b, word, name, schema[k].key));
        }
    }
}

static void test_print_round_trip(void **state)
{
    (void)state;
    mv_err err = {0};
    mv_cfg *a = loaded("[archive]\npath = \" /odd path # x ; y \"\ntitle = \"\"\n"
                       "compress = off\nserial = 18446744073709551615\n"
                       "[limits]\nwords = \"a \\\"b\\\" c\\\\\"\nwait = 5 min\nmode = 0600\n"
                       "[listener \"in bound\"]\naddress = [::]:25\nallow = 10.0.0.0/8, ::1\n"
                       "[listener x]\n");
    assert_int_equal(mv_cfg_set(a, "listener", "ovr]\"", "tls", "yes", &err), MV_OK);
    assert_int_equal(mv_cfg_set(a, "archive", NULL, "title", "\tTab\\Title;#", &err), MV_OK);
    char *text = print_to_string(a);
    assert_non_null(strstr(text, "# workers = 4  # default\n"));
    assert_non_null(strstr(text, "# spool_size =   # unset\n"));
    assert_non_null(strstr(text, "[listener \"in bound\"]\n"));
    assert_non_null(strstr(text, "# archive directory\n"));
    assert_non_null(strstr(text, "\naddress = [::]:25\n"));
    assert_non_null(strstr(text, "\nwords = a \"b\" c\\\n")); /* quoted only when needed */
    assert_non_null(strstr(text, "\npath = \" /odd path # x ; y \"\n"));
    mv_cfg *b = mv_cfg_new(schema, NKEYS);
    if (mv_cfg_load_string(b, text, "printed", &err) != MV_OK)
        fail_msg("%s\n%s", err.msg, text);
    assert_same(a, b);
    free(text);
    mv_cfg_free(b);
    mv_cfg_free(a);

    a = loaded(""); /* no named instances at all */
    text = print_to_string(a);
    assert_non_null(strstr(text, "# [listener NAME]: none\n"));
    b = loaded(text);
    assert_same(a, b);
    free(text);
    mv_cfg_free(b);
    mv_cfg_free(a);
}

static void test_schema_md(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    mv_cfg_print_schema_md(schema, NKEYS, f);
    fclose(f);
    assert_non_null(strstr(out, "### [archive]\n"));
    assert_non_null(strstr(out, "### [listener NAME]\n\nMay appear several times"));
    assert_non_null(strstr(
        out, "| `message_size` | size | `100M` | at least 1K | largest message \\| bytes |"));
    assert_non_null(strstr(out, "| `timeout` | duration | `300s` | 1s to 1h | session deadline |"));
    assert_non_null(strstr(out, "| `title` | string |  |  | display name |"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_defaults_and_lists),
        cmocka_unit_test(test_comments_and_quotes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_named_sections),
        cmocka_unit_test(test_line_ends_bom_empty),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_print_round_trip),
        cmocka_unit_test(test_schema_md),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
