/* SPDX-License-Identifier: MIT */
/* pipeline_test.c - the pipeline's memory bound, against a real store in a
 * temporary directory. */
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

#include "../../ingest/pipeline.h"
#include "../../lib/util.h"
#include "../../store/store.h"

#define TMPDIR_NAME "mvpipe"
#include "tmpdir.h"

/* A message of n bytes: headers, then a body of one repeated line. */
static uint8_t *message(size_t n, int tag, size_t *len)
{
    uint8_t *m = mv_xmalloc(n);
    int h = snprintf((char *)m, n,
                     "From: a@example.com\r\nSubject: %d\r\nMessage-ID: <%d@x>\r\n\r\n", tag, tag);
    for (size_t i = (size_t)h; i < n; i++)
        m[i] = (i - (size_t)h) % 78 == 76   ? '\r'
               : (i - (size_t)h) % 78 == 77 ? '\n'
                                            : 'a' + tag % 26;
    *len = n;
    return m;
}

static void submit(mv_store *s, mv_pipeline *pl, size_t n, int tag)
{
    mv_err err;
    size_t len;
    mv_spool_item it = {0};
    it.arr.received_us = mv_now_us();
    it.arr.source = "import";
    it.arr.origin = "test";
    it.data = message(n, tag, &len);
    it.len = len;
    assert_int_equal(mv_spool_add(s, &it, 1, &err), MV_OK);
    assert_int_equal(mv_pipeline_submit_take(pl, &it, &err), MV_OK);
}

/* A message over the in-flight budget is let through alone; a producer
 * that waits for room before reading more holds no second one meanwhile.
 * mv_pipeline_wait_room returns only once the large message is committed,
 * and at once while the pipeline is within its budget. */
static void test_wait_room(void **state)
{
    (void)state;
    char *dir = mv_xasprintf("%s/a", tmpdir), *kf = mv_xasprintf("%s/key", tmpdir);
    uint8_t k[32];
    memset(k, 7, sizeof k);
    mv_err err;
    assert_int_equal(mv_write_file_atomic(kf, k, 32, 0600, &err), MV_OK);
    mv_keysrc src = {kf, NULL};
    mv_store *s = NULL;
    assert_int_equal(mv_store_create(dir, &src, NULL, &err), MV_OK);
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    mv_pipeline *pl = NULL;
    mv_pipeline_opts po = {.workers = 2, .max_inflight_bytes = 64u << 10};
    assert_int_equal(mv_pipeline_start(s, &po, &pl, &err), MV_OK);

    mv_pipeline_stats ps;
    for (int round = 0; round < 3; round++) {
        submit(s, pl, 8u << 20, 2 * round); /* over the budget */
        mv_pipeline_wait_room(pl);
        mv_pipeline_get_stats(pl, &ps);
        assert_int_equal(ps.committed, ps.submitted);
        submit(s, pl, 4096, 2 * round + 1); /* within it */
        mv_pipeline_wait_room(pl);
    }
    assert_int_equal(mv_pipeline_finish(pl, &ps, &err), MV_OK);
    assert_int_equal(ps.committed, 6);
    assert_int_equal(ps.new_messages, 6);
    assert_int_equal(ps.failed, 0);
    mv_store_close(s);
    free(dir);
    free(kf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wait_room, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
