/* SPDX-License-Identifier: MIT */
/* export_test.c - export packages: written as a directory, ZIP and tar,
 * read back with the same hashes; names that would escape refused; the
 * manifest; mboxrd quoting; volume names, sizes, and what reading back
 * says about a path that is not a package. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "../../export/export.h"
#include "../../lib/util.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/mv-export-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = mv_xasprintf("rm -rf '%s'", tmpdir);
    int r = system(cmd);
    free(cmd);
    return r == 0 ? 0 : -1;
}

static const char body1[] = "From: a@example.com\r\nSubject: one\r\n\r\nFrom here on\r\n";

static void write_package(const char *path)
{
    mv_pkg *p = NULL;
    mv_err err;
    assert_int_equal(mv_pkg_create(path, NULL, &p, &err), MV_OK);
    assert_int_equal(mv_pkg_add(p, "natives/1.eml", body1, sizeof body1 - 1, 0, &err), MV_OK);
    /* streamed in pieces */
    assert_int_equal(mv_pkg_begin(p, "natives/2.eml", 10, 0, &err), MV_OK);
    assert_int_equal(mv_pkg_write(p, "01234", 5, &err), MV_OK);
    assert_int_equal(mv_pkg_write(p, "56789", 5, &err), MV_OK);
    assert_int_equal(mv_pkg_write(p, "x", 1, &err), MV_EINTERNAL); /* more than announced */
    assert_int_equal(mv_pkg_end(p, &err), MV_OK);
    /* names that would leave the package, or break the manifest */
    const char *bad[] = {"../x", "/etc/x", "a/../b", "a//b", "a/", "", "a,b", "a\"b", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(mv_pkg_add(p, bad[i], "x", 1, 0, &err), MV_EUSAGE);
    uint8_t sha[32];
    uint64_t files = 0, bytes = 0;
    assert_int_equal(mv_pkg_manifest(p, sha, &files, &bytes, &err), MV_OK);
    assert_int_equal(files, 2);
    assert_int_equal(bytes, sizeof body1 - 1 + 10);
    assert_int_equal(mv_pkg_add(p, "custody.json", "{}", 2, 1, &err), MV_OK);
    assert_int_equal(mv_pkg_close(p, 0, &err), MV_OK);
    /* an export never writes over anything */
    assert_int_equal(mv_pkg_create(path, NULL, &p, &err), MV_EEXIST);
}

static void read_back(const char *path)
{
    const char *keep[] = {"manifest.csv", NULL};
    mv_buf kept[1] = {MV_BUF_INIT};
    mv_pkg_file *f = NULL;
    size_t n = 0;
    mv_err err;
    assert_int_equal(mv_pkg_scan(path, NULL, keep, kept, 1 << 20, &f, &n, &err), MV_OK);
    assert_int_equal(n, 4);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(f[i].name, "natives/1.eml")) {
            uint8_t want[32];
            unsigned l = 32;
            assert_true(EVP_Digest(body1, sizeof body1 - 1, want, &l, EVP_sha256(), NULL));
            assert_memory_equal(f[i].sha256, want, 32);
            assert_int_equal(f[i].size, sizeof body1 - 1);
            seen++;
        }
        if (!strcmp(f[i].name, "natives/2.eml"))
            seen += f[i].size == 10;
    }
    assert_int_equal(seen, 2);
    mv_buf_append_byte(&kept[0], 0);
    const char *m = (const char *)kept[0].data;
    static const char head[] = "path,size,md5,sha1,sha256\r\nnatives/1.eml,";
    assert_memory_equal(m, head, sizeof head - 1);
    /* md5 of "0123456789" */
    assert_non_null(strstr(m, "natives/2.eml,10,781e5e245d69b566979b86e28d23f2c7,"));
    mv_buf_free(&kept[0]);
    mv_pkg_files_free(f, n);
}

static void test_packages(void **state)
{
    (void)state;
    const char *names[] = {"dir", "p.zip", "p.tar"};
    for (size_t i = 0; i < 3; i++) {
        char *path = mv_xasprintf("%s/%s", tmpdir, names[i]);
        write_package(path);
        read_back(path);
        free(path);
    }
    assert_int_equal(mv_pkg_kind_of("x.ZIP"), MV_PKG_ZIP);
    assert_int_equal(mv_pkg_kind_of("x.tar"), MV_PKG_TAR);
    assert_int_equal(mv_pkg_kind_of("x.tar.gz"), MV_PKG_DIR);
}

static void test_abandon(void **state)
{
    (void)state;
    char *path = mv_xasprintf("%s/abandoned.zip", tmpdir);
    mv_pkg *p = NULL;
    mv_err err;
    assert_int_equal(mv_pkg_create(path, NULL, &p, &err), MV_OK);
    assert_int_equal(mv_pkg_begin(p, "a.eml", 5, 0, &err), MV_OK);
    assert_int_equal(mv_pkg_close(p, 1, &err), MV_OK);
    assert_int_not_equal(access(path, F_OK), 0);
    free(path);
}

static void test_mboxrd(void **state)
{
    (void)state;
    static const char in[] = "From: x\nSubject: y\n\nFrom the start\n>From quoted\n>>From more\n"
                             " From not\nFromage\nlast line without end";
    static const char want[] = "From: x\nSubject: y\n\n>From the start\n>>From quoted\n"
                               ">>>From more\n From not\nFromage\nlast line without end";
    mv_buf b = MV_BUF_INIT;
    mv_mboxrd_quote((const uint8_t *)in, sizeof in - 1, &b);
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, b.len);
    mv_buf_free(&b);
}

static void test_volumes(void **state)
{
    (void)state;
    struct {
        const char *out, *want;
        unsigned vol;
    } v[] = {
        {"exp", "exp/VOL0001", 1},           {"a/b/exp/", "a/b/exp/VOL0002", 2},
        {"x.zip", "x.VOL0001.zip", 1},       {"dir/x.ZIP", "dir/x.VOL0012.ZIP", 12},
        {"p.tar", "p.VOL9999.tar", 9999},    {"x.tar.gz", "x.tar.gz/VOL0001", 1},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        char *p = mv_pkg_volume_path(v[i].out, v[i].vol);
        assert_string_equal(p, v[i].want);
        assert_int_equal(mv_pkg_kind_of(p), mv_pkg_kind_of(v[i].out));
        free(p);
    }
    struct {
        const char *s;
        uint64_t want;
        mv_status st;
    } z[] = {
        {"1048576", 1048576, MV_OK}, {"1M", 1 << 20, MV_OK},       {"64k", 64 << 10, MV_OK},
        {"2G", 2ull << 30, MV_OK},   {"3t", 3ull << 40, MV_OK},    {"0", 0, MV_OK},
        {"", 0, MV_EUSAGE},          {"M", 0, MV_EUSAGE},          {"1MB", 0, MV_EUSAGE},
        {"-1M", 0, MV_EUSAGE},       {"1.5G", 0, MV_EUSAGE},       {" 1M", 0, MV_EUSAGE},
        {"99999999999999999999", 0, MV_EUSAGE}, {"16777216T", 0, MV_EUSAGE},
    };
    for (size_t i = 0; i < sizeof z / sizeof *z; i++) {
        uint64_t got = 7;
        mv_err err;
        assert_int_equal(mv_parse_size(z[i].s, &got, &err), z[i].st);
        if (!z[i].st)
            assert_true(got == z[i].want);
    }
}

static void test_bytes_and_remove(void **state)
{
    (void)state;
    const char *names[] = {"vol-dir", "vol.zip", "vol.tar"};
    for (size_t i = 0; i < 3; i++) {
        char *path = mv_xasprintf("%s/%s", tmpdir, names[i]);
        mv_pkg *p = NULL;
        mv_err err;
        assert_int_equal(mv_pkg_create(path, NULL, &p, &err), MV_OK);
        assert_int_equal(mv_pkg_bytes(p), 0);
        assert_int_equal(mv_pkg_add(p, "natives/a.eml", "12345", 5, 0, &err), MV_OK);
        assert_int_equal(mv_pkg_add(p, "custody.json", "{}", 2, 1, &err), MV_OK);
        assert_int_equal(mv_pkg_add(p, "text/a.txt", "", 0, 0, &err), MV_OK);
        assert_int_equal(mv_pkg_bytes(p), 5); /* listed files only */
        assert_int_equal(mv_pkg_close(p, 0, &err), MV_OK);
        assert_int_equal(access(path, F_OK), 0);
        mv_pkg_remove(path);
        assert_int_not_equal(access(path, F_OK), 0);
        mv_pkg_remove(path); /* gone already: nothing happens */
        free(path);
    }
}

static void test_scan_errors(void **state)
{
    (void)state;
    const char *keep[] = {"manifest.csv", NULL};
    mv_buf kept[1] = {MV_BUF_INIT};
    mv_pkg_file *f = NULL;
    size_t n = 0;
    mv_err err;
    char *path = mv_xasprintf("%s/no-such-package.zip", tmpdir);
    assert_int_equal(mv_pkg_scan(path, NULL, keep, kept, 1 << 20, &f, &n, &err), MV_ENOTFOUND);
    assert_int_equal(err.code, MV_ENOTFOUND);
    free(path);
    path = mv_xasprintf("%s/no-such-dir/x", tmpdir);
    assert_int_equal(mv_pkg_scan(path, NULL, keep, kept, 1 << 20, &f, &n, &err), MV_ENOTFOUND);
    free(path);
    /* a file that is no ZIP, and a ZIP cut short: damaged, a verification failure */
    path = mv_xasprintf("%s/junk.zip", tmpdir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("this is not a zip file at all, just text\n", fp);
    fclose(fp);
    assert_int_equal(mv_pkg_scan(path, NULL, keep, kept, 1 << 20, &f, &n, &err), MV_EMALFORMED);
    free(path);
    mv_buf_free(&kept[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packages),
        cmocka_unit_test(test_abandon),
        cmocka_unit_test(test_mboxrd),
        cmocka_unit_test(test_volumes),
        cmocka_unit_test(test_bytes_and_remove),
        cmocka_unit_test(test_scan_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
