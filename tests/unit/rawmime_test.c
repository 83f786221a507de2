/* SPDX-License-Identifier: MIT */
/* rawmime_test.c - the transfer decoders OpenPGP detection and journal
 * reports use: quoted-printable (soft breaks, transport padding, stray
 * '=', the output limit) and base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../ingest/rawmime.h"
#include "../../lib/buf.h"

typedef struct qp_case {
    const char *pre; /* already in the buffer */
    const char *in;
    size_t max; /* 0: no limit */
    const char *want;
    int bad, cut;
} qp_case;

static const qp_case qp_cases[] = {
    {"", "abc", 0, "abc", 0, 0},
    {"", "", 0, "", 0, 0},
    {"", "a=3Db", 0, "a=b", 0, 0},
    {"", "lower=3d=c3=a9", 0, "lower=\xc3\xa9", 0, 0},
    {"", "soft=\r\nbreak", 0, "softbreak", 0, 0},
    {"", "soft= \t\nbreak", 0, "softbreak", 0, 0},
    {"", "end=", 0, "end", 0, 0},
    {"", "trail  \r\nnext", 0, "trail\r\nnext", 0, 0},
    {"", "trail \t\nnext \n", 0, "trail\nnext\n", 0, 0},
    {"", "  \r\n", 0, "\r\n", 0, 0},
    {"", "inner  blanks\tstay", 0, "inner  blanks\tstay", 0, 0},
    {"", "end  ", 0, "end", 0, 0},
    {"", "blank before =3D", 0, "blank before =", 0, 0},
    {"", "blank before = \r\nsoft", 0, "blank before soft", 0, 0},
    {"", "bare\r  x", 0, "bare\r  x", 0, 0},
    {"", "x  \r", 0, "x  \r", 0, 0},
    {"", "stray=zz", 0, "stray=zz", 1, 0},
    {"", "stray= x", 0, "stray= x", 1, 0},
    {"", "abcdef", 3, "abc", 0, 1},
    {"", "abc", 3, "abc", 0, 0},
    {"", "abc  ", 3, "abc", 0, 1},
    {"", "abc=\n", 3, "abc", 0, 1},
    {"", "ab=3D", 2, "ab", 0, 1},
    {"", "ab\r\n", 3, "ab\r", 0, 1},
    {"", "ab  \r\ncd", 4, "ab\r\n", 0, 1},
    {"xy", "abc", 4, "xyab", 0, 1},
    {"xyz", "abc", 3, "xyz", 0, 1},
    {"xyz", "", 3, "xyz", 0, 0},
};

static void test_qp(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof qp_cases / sizeof qp_cases[0]; i++) {
        const qp_case *c = &qp_cases[i];
        mv_buf b = MV_BUF_INIT;
        mv_buf_append_str(&b, c->pre);
        int bad = 0, cut = 0;
        mv_rm_qp_decode((const uint8_t *)c->in, strlen(c->in), c->max ? c->max : SIZE_MAX, &b,
                        &bad, &cut);
        if (b.len != strlen(c->want) || memcmp(b.data, c->want, b.len) != 0 || bad != c->bad ||
            cut != c->cut)
            fail_msg("case %zu (\"%s\"): got \"%.*s\" bad %d cut %d", i, c->in, (int)b.len,
                     (const char *)b.data, bad, cut);
        assert_int_equal(b.data[b.len], '\0');
        mv_buf_free(&b);
    }
}

/* Long input through the limit, byte by byte: whatever the limit, the
 * output is the unlimited output's prefix, and cut says whether it is
 * all of it. */
static void test_qp_limits(void **state)
{
    (void)state;
    const char *in = "Caf=C3=A9 au lait  \r\n"
                     "soft br=\r\neak, tabs\t\t\n"
                     "=3D=3d and a stray =x, the end  ";
    size_t n = strlen(in);
    mv_buf full = MV_BUF_INIT;
    int bad = 0, cut = 0;
    mv_rm_qp_decode((const uint8_t *)in, n, SIZE_MAX, &full, &bad, &cut);
    assert_int_equal(bad, 1);
    assert_int_equal(cut, 0);
    for (size_t max = 0; max <= full.len + 1; max++) {
        mv_buf b = MV_BUF_INIT;
        int bd = 0, ct = 0;
        mv_rm_qp_decode((const uint8_t *)in, n, max, &b, &bd, &ct);
        size_t want = max < full.len ? max : full.len;
        assert_int_equal(b.len, want);
        assert_memory_equal(b.data, full.data, want);
        assert_int_equal(ct, max <= full.len); /* (the input ends in blanks) */
        mv_buf_free(&b);
    }
    mv_buf_free(&full);
}

static void test_b64(void **state)
{
    (void)state;
    const char *in = "SGVs\r\nbG8s IHdv\tcmxkI";
    mv_buf b = MV_BUF_INIT;
    int bad = 0, cut = 0;
    mv_rm_b64_decode((const uint8_t *)in, strlen(in), SIZE_MAX, 0, &b, &bad, &cut);
    assert_int_equal(b.len, 12);
    assert_memory_equal(b.data, "Hello, world", 12);
    assert_int_equal(bad, 1); /* a last group of one character */
    mv_buf_reset(&b);
    bad = cut = 0;
    mv_rm_b64_decode((const uint8_t *)"SGVsbG8=", 8, 3, 0, &b, &bad, &cut);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "Hel", 3);
    assert_int_equal(cut, 1);
    mv_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qp),
        cmocka_unit_test(test_qp_limits),
        cmocka_unit_test(test_b64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
