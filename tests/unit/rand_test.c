/* SPDX-License-Identifier: MIT */
/* rand_test.c - lib/rand.h and lib/charset.h: pooled random bytes are
 * never handed out twice (within a thread, across threads, across a
 * fork), requests of every size are filled, and the pinned iconv answers
 * match iconv_open's own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iconv.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../lib/charset.h"
#include "../../lib/rand.h"

#define DRAWS 400 /* 400 x 32 bytes: the pool refills many times */

static int cmp32(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* all_distinct - no two of the n 32-byte values are equal. */
static int all_distinct(uint8_t (*v)[32], size_t n)
{
    qsort(v, n, 32, cmp32);
    for (size_t i = 1; i < n; i++)
        if (!memcmp(v[i - 1], v[i], 32))
            return 0;
    return 1;
}

static void test_distinct(void **state)
{
    (void)state;
    static uint8_t v[DRAWS][32];
    for (size_t i = 0; i < DRAWS; i++)
        assert_int_equal(mv_rand_bytes(v[i], 32), 1);
    assert_true(all_distinct(v, DRAWS));
}

static void test_sizes(void **state)
{
    (void)state;
    /* every length up to past the pool, and one far over it: no byte of
     * the request is left as it was (a chance of 1 in 2^-8 per byte for
     * one sentinel, so check runs of 16 zero bytes instead) */
    static uint8_t b[3 * MV_RAND_POOL];
    for (size_t n = 0; n <= MV_RAND_POOL + 40; n += 17) {
        memset(b, 0, sizeof b);
        assert_int_equal(mv_rand_bytes(b, n), 1);
        for (size_t i = 0; i + 16 <= n; i += 16) {
            int zero = 1;
            for (size_t k = 0; k < 16; k++)
                zero &= b[i + k] == 0;
            assert_false(zero);
        }
        for (size_t i = n; i < sizeof b; i++)
            assert_int_equal(b[i], 0);
    }
    memset(b, 0, sizeof b);
    assert_int_equal(mv_rand_bytes(b, sizeof b), 1);
    assert_memory_not_equal(b, b + MV_RAND_POOL, 64);
}

static uint8_t from_threads[2][DRAWS / 2][32];

static void *draw(void *arg)
{
    uint8_t(*v)[32] = arg;
    for (size_t i = 0; i < DRAWS / 2; i++)
        if (mv_rand_bytes(v[i], 32) != 1)
            return arg;
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[2];
    void *r[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, draw, from_threads[i]), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(t[i], &r[i]), 0);
        assert_null(r[i]);
    }
    assert_true(all_distinct(&from_threads[0][0], DRAWS));
}

static void test_fork(void **state)
{
    (void)state;
    uint8_t a[32], mine[32], theirs[32];
    assert_int_equal(mv_rand_bytes(a, 32), 1); /* the pool now holds more */
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t c[32];
        int ok = mv_rand_bytes(c, 32) == 1 && write(fd[1], c, 32) == 32;
        _exit(ok ? 0 : 1);
    }
    close(fd[1]);
    assert_int_equal(read(fd[0], theirs, 32), 32);
    close(fd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(mv_rand_bytes(mine, 32), 1);
    assert_memory_not_equal(mine, theirs, 32);
    assert_memory_not_equal(a, theirs, 32);
}

static int iconv_ok(const char *to, const char *from)
{
    iconv_t cd = iconv_open(to, from);
    if (cd == (iconv_t)-1)
        return 0;
    iconv_close(cd);
    return 1;
}

static void test_charset(void **state)
{
    (void)state;
    static const char *const names[] = {
        "ISO-8859-1", "WINDOWS-1252", "KOI8-R", "SHIFT_JIS", "no-such-charset", "UTF-8", "",
        "x-unknown-but-quite-a-long-charset-name-beyond-the-limit-of-the-table",
    };
    for (int round = 0; round < 2; round++) /* the second round is answered by the table */
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            assert_int_equal(mv_iconv_usable("UTF-8", names[i]), iconv_ok("UTF-8", names[i]));
    assert_int_equal(mv_iconv_usable(NULL, "UTF-8"), 0);
    /* more names than the table holds: still right */
    char nm[32];
    for (int i = 0; i < MV_ICONV_PINNED + 10; i++) {
        snprintf(nm, sizeof nm, "CP%d", 850 + i);
        assert_int_equal(mv_iconv_usable("UTF-8", nm), iconv_ok("UTF-8", nm));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distinct), cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_threads),  cmocka_unit_test(test_fork),
        cmocka_unit_test(test_charset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
