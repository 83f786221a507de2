/* SPDX-License-Identifier: MIT */
/* users_test.c - the store's users and roles (store/store.h): names,
 * role lists, the creator, the last admin, concurrent changes, and user
 * records surviving reopening and key rotation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../lib/util.h"
#include "../../store/store.h"

#define TMPDIR_NAME "mvusers"
#include "tmpdir.h"

/* new_store - an archive in tmpdir/a made by creator (NULL: this uid). */
static mv_store *new_store(const char *creator)
{
    char *kf = mv_xasprintf("%s/key", tmpdir), *dir = mv_xasprintf("%s/a", tmpdir);
    uint8_t k[32];
    memset(k, 7, sizeof k);
    mv_err err = {0};
    assert_int_equal(mv_write_file_atomic(kf, k, 32, 0600, &err), MV_OK);
    mv_keysrc src = {kf, NULL};
    mv_create_opts o = {0, 1024, creator};
    assert_int_equal(mv_store_create(dir, &src, &o, &err), MV_OK);
    mv_store *s = NULL;
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    free(kf);
    free(dir);
    return s;
}

static mv_store *reopen(mv_store *s)
{
    char *kf = mv_xasprintf("%s/key", tmpdir), *dir = mv_xasprintf("%s/a", tmpdir);
    mv_store_close(s);
    mv_keysrc src = {kf, NULL};
    mv_err err = {0};
    assert_int_equal(mv_store_open(dir, &src, &s, &err), MV_OK);
    free(kf);
    free(dir);
    return s;
}

static void test_names_and_roles(void **state)
{
    (void)state;
    static const char *const good[] = {"root", "_apt", "a", "bob.smith", "x-1_2", "uid:0",
                                       "uid:4294967295", "systemd-network"};
    static const char *const bad[] = {"",       "Bob",   "1abc", "-x",     "a b",     "uid:",
                                      "uid:01", "uid:-1", "uid:4294967296", "uid:1x", "a/b",
                                      "caf\xc3\xa9", "x\n", NULL};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (!mv_user_name_ok(good[i]))
            fail_msg("'%s' should be a valid name", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (mv_user_name_ok(bad[i]))
            fail_msg("'%s' should not be a valid name", bad[i] ? bad[i] : "(null)");
    char n65[66];
    memset(n65, 'a', 65);
    n65[65] = '\0';
    assert_false(mv_user_name_ok(n65));
    n65[64] = '\0';
    assert_true(mv_user_name_ok(n65));

    unsigned r = 0;
    mv_err err = {0};
    assert_int_equal(mv_user_roles_parse("officer,admin", &r, &err), MV_OK);
    assert_int_equal(r, MV_USER_ADMIN | MV_USER_OFFICER);
    assert_int_equal(mv_user_roles_parse(" legal , auditor,legal", &r, &err), MV_OK);
    assert_int_equal(r, MV_USER_LEGAL | MV_USER_AUDITOR);
    assert_int_equal(mv_user_roles_parse("admin,root", &r, &err), MV_EUSAGE);
    assert_non_null(strstr(err.msg, "'root'"));
    assert_int_equal(mv_user_roles_parse("", &r, &err), MV_EUSAGE);
    assert_int_equal(mv_user_roles_parse(",,", &r, &err), MV_EUSAGE);
    assert_int_equal(mv_user_roles_parse("Admin", &r, &err), MV_EUSAGE);
    assert_int_equal(mv_user_roles_parse("adminx", &r, &err), MV_EUSAGE);
    char buf[MV_USER_ROLES_STR];
    assert_string_equal(mv_user_roles_str(MV_USER_ALL, buf, sizeof buf),
                        "admin,officer,legal,auditor");
    assert_string_equal(mv_user_roles_str(MV_USER_AUDITOR | MV_USER_OFFICER, buf, sizeof buf),
                        "officer,auditor");
    assert_string_equal(mv_user_roles_str(0, buf, sizeof buf), "none");
    char small[8];
    mv_user_roles_str(MV_USER_ALL, small, sizeof small); /* truncated, terminated */
    assert_true(strlen(small) < sizeof small);
    assert_string_equal(mv_user_role_name(MV_USER_LEGAL), "legal");
    assert_null(mv_user_role_name(3));
    assert_null(mv_user_role_name(16));

    char name[MV_USER_NAME_MAX + 1];
    mv_user_name_for_uid(0, name, sizeof name);
    assert_string_equal(name, "root");
    mv_user_name_for_uid(3999999999u, name, sizeof name);
    assert_string_equal(name, "uid:3999999999");
}

typedef struct seen {
    char names[16][MV_USER_NAME_MAX + 1];
    unsigned roles[16];
    int n;
} seen;

static void collect(void *ctx, const mv_user_rec *u)
{
    seen *s = ctx;
    assert_true(s->n < 16);
    snprintf(s->names[s->n], sizeof s->names[0], "%s", u->name);
    s->roles[s->n++] = u->roles;
    assert_non_null(u->by);
    assert_true(u->changed_us > 0);
}

static void test_creator_and_changes(void **state)
{
    (void)state;
    mv_store *s = new_store("alice");
    mv_err err = {0};
    unsigned r = 0;
    assert_int_equal(mv_store_user_get(s, "alice", &r, &err), MV_OK);
    assert_int_equal(r, MV_USER_ALL);
    assert_int_equal(mv_store_user_get(s, "bob", &r, &err), MV_ENOTFOUND);
    assert_int_equal(mv_store_user_get(s, "Bob", &r, &err), MV_EUSAGE);

    assert_int_equal(mv_store_user_put(s, "bob", MV_USER_OFFICER, "alice", &err), MV_OK);
    assert_int_equal(mv_store_user_put(s, "carol", MV_USER_LEGAL | MV_USER_AUDITOR, "alice", &err),
                     MV_OK);
    assert_int_equal(mv_store_user_put(s, "bob", MV_USER_OFFICER | MV_USER_LEGAL, "alice", &err),
                     MV_OK);
    assert_int_equal(mv_store_user_put(s, "bad name", MV_USER_OFFICER, "alice", &err), MV_EUSAGE);
    assert_int_equal(mv_store_user_put(s, "dave", 0, "alice", &err), MV_EUSAGE);
    assert_int_equal(mv_store_user_put(s, "dave", 16, "alice", &err), MV_EUSAGE);

    seen sn = {0};
    assert_int_equal(mv_store_user_list(s, collect, &sn, &err), MV_OK);
    assert_int_equal(sn.n, 3);
    assert_string_equal(sn.names[0], "alice"); /* sorted */
    assert_string_equal(sn.names[1], "bob");
    assert_int_equal(sn.roles[1], MV_USER_OFFICER | MV_USER_LEGAL);
    assert_string_equal(sn.names[2], "carol");

    /* the last admin stays */
    assert_int_equal(mv_store_user_remove(s, "alice", &err), MV_EPERM);
    assert_non_null(strstr(err.msg, "last admin"));
    assert_int_equal(mv_store_user_put(s, "alice", MV_USER_OFFICER, "alice", &err), MV_EPERM);
    assert_int_equal(mv_store_user_put(s, "bob", MV_USER_ADMIN, "alice", &err), MV_OK);
    assert_int_equal(mv_store_user_put(s, "alice", MV_USER_AUDITOR, "bob", &err), MV_OK);
    assert_int_equal(mv_store_user_remove(s, "bob", &err), MV_EPERM);
    assert_int_equal(mv_store_user_remove(s, "alice", &err), MV_OK);
    assert_int_equal(mv_store_user_remove(s, "alice", &err), MV_ENOTFOUND);

    /* everything persists (synced writes), and survives key rotation with
     * the old keys destroyed */
    s = reopen(s);
    unsigned rotated;
    uint64_t rewrapped;
    assert_int_equal(mv_store_keys_rotate(s, 1, &rotated, &rewrapped, &err), MV_OK);
    s = reopen(s);
    memset(&sn, 0, sizeof sn);
    assert_int_equal(mv_store_user_list(s, collect, &sn, &err), MV_OK);
    assert_int_equal(sn.n, 2);
    assert_string_equal(sn.names[0], "bob");
    assert_int_equal(sn.roles[0], MV_USER_ADMIN);
    assert_string_equal(sn.names[1], "carol");
    mv_store_close(s);
}

static void test_default_creator(void **state)
{
    (void)state;
    mv_store *s = new_store(NULL);
    char me[MV_USER_NAME_MAX + 1];
    mv_user_name_for_uid(getuid(), me, sizeof me);
    unsigned r = 0;
    mv_err err = {0};
    assert_int_equal(mv_store_user_get(s, me, &r, &err), MV_OK);
    assert_int_equal(r, MV_USER_ALL);
    mv_store_close(s);
    /* a bad creator makes no archive */
    char *kf = mv_xasprintf("%s/key", tmpdir), *dir = mv_xasprintf("%s/b", tmpdir);
    mv_keysrc src = {kf, NULL};
    mv_create_opts o = {0, 1024, "Not Valid"};
    assert_int_equal(mv_store_create(dir, &src, &o, &err), MV_EUSAGE);
    assert_int_equal(access(dir, F_OK), -1);
    free(kf);
    free(dir);
}

typedef struct worker {
    mv_store *s;
    int id;
    mv_status st;
} worker;

static void *churn(void *arg)
{
    worker *w = arg;
    char name[32];
    for (int i = 0; i < 20 && !w->st; i++) {
        snprintf(name, sizeof name, "u%d_%d", w->id, i % 5);
        /* everyone demotes and promotes admins at once: one admin must remain */
        unsigned roles = (i & 1) ? MV_USER_OFFICER : MV_USER_ADMIN | MV_USER_OFFICER;
        mv_status st = mv_store_user_put(w->s, name, roles, "t", NULL);
        if (st && st != MV_EPERM)
            w->st = st;
        st = mv_store_user_put(w->s, "root", (i & 2) ? MV_USER_AUDITOR : MV_USER_ADMIN, "t", NULL);
        if (st && st != MV_EPERM)
            w->st = st;
        if (i % 7 == 6 && (st = mv_store_user_remove(w->s, name, NULL)) && st != MV_EPERM)
            w->st = st;
    }
    return NULL;
}

static void count_admins(void *ctx, const mv_user_rec *u)
{
    if (u->roles & MV_USER_ADMIN)
        (*(int *)ctx)++;
}

static void test_concurrent(void **state)
{
    (void)state;
    mv_store *s = new_store("root");
    pthread_t th[6];
    worker w[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (worker){s, i, MV_OK};
        assert_int_equal(pthread_create(&th[i], NULL, churn, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].st, MV_OK);
    }
    int admins = 0;
    mv_err err = {0};
    assert_int_equal(mv_store_user_list(s, count_admins, &admins, &err), MV_OK);
    assert_true(admins >= 1);
    mv_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_roles),
        cmocka_unit_test_setup_teardown(test_creator_and_changes, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_default_creator, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_concurrent, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
