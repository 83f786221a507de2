/* SPDX-License-Identifier: MIT */
/* tmpdir.h - a fresh directory under $TMPDIR for each test that asks
 * (cmocka setup and teardown), removed after it.  Define TMPDIR_NAME (the
 * directory's name before its random suffix) before including; needs
 * cmocka.h and lib/util.h first. */
#ifndef MV_TESTS_TMPDIR_H
#define MV_TESTS_TMPDIR_H

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/" TMPDIR_NAME ".XXXXXX", t && *t ? t : "/tmp");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    char *cmd = mv_xasprintf("rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    return 0;
}

#endif
