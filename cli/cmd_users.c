/* SPDX-License-Identifier: MIT */
/* cmd_users.c - `mailvault users list|add|set|remove`: who may use the
 * archive, with which roles (docs/roles.md). */
#include <getopt.h>
#include <string.h>

#include "../lib/util.h"
#include "cli.h"

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault users list [--format json]\n"
            "       mailvault users add NAME --role ROLE[,ROLE...]\n"
            "       mailvault users set NAME --role ROLE[,ROLE...]\n"
            "       mailvault users remove NAME\n\n"
            "The archive's users and their roles:\n"
            "  admin    users, keys, import, the daemon\n"
            "  officer  search and view mail (list, show)\n"
            "  legal    holds and export\n"
            "  auditor  verify, reports, the audit trail and this list; reads no mail content\n"
            "NAME is a login name (the caller is known by the uid of the process, or of\n"
            "the daemon's client) or uid:N for a uid without one.  The archive's creator\n"
            "holds every role.  The last admin can be neither removed nor demoted.\n"
            "list needs admin or auditor; add, set and remove need admin.\n");
}

typedef struct users_args {
    const char *role;
} users_args;

static int users_opt(void *ctx, int opt, const char *arg)
{
    users_args *a = ctx;
    if (opt == 'r') {
        a->role = arg;
        return 0;
    }
    return -1;
}

typedef struct list_out {
    int json, n;
} list_out;

static void print_user(void *ctx, const mv_user_rec *u)
{
    list_out *o = ctx;
    char t[32], roles[MV_USER_ROLES_STR];
    mv_fmt_time(u->changed_us / 1000000, t, sizeof t);
    if (o->json) {
        fprintf(cli_out, "%s{", o->n ? "," : "");
        json_kv_str(cli_out, "name", u->name, 0);
        fprintf(cli_out, ",\"roles\":[");
        int k = 0;
        for (unsigned bit = 1; bit <= MV_USER_AUDITOR; bit <<= 1)
            if (u->roles & bit)
                fprintf(cli_out, "%s\"%s\"", k++ ? "," : "", mv_user_role_name(bit));
        fprintf(cli_out, "]");
        json_kv_str(cli_out, "changed", t, 1);
        json_kv_str(cli_out, "by", u->by, 1);
        fprintf(cli_out, "}");
    } else {
        fprintf(cli_out, "%-20s %-30s %s  by ", u->name,
                mv_user_roles_str(u->roles, roles, sizeof roles), t);
        text_safe(cli_out, u->by);
        fprintf(cli_out, "\n");
    }
    o->n++;
}

static void count_user(void *ctx, const mv_user_rec *u)
{
    (void)u;
    (*(size_t *)ctx)++;
}

/* adopt_owner - an archive made before users existed has none, and its
 * owner holds every role implicitly; the first user added would take
 * that away.  Record the owner (the caller, as cli_require let an admin
 * command through) as an admin first. */
static mv_status adopt_owner(mv_cli *c, mv_store *s, const char *adding, mv_err *err)
{
    size_t n = 0;
    mv_status st = mv_store_user_list(s, count_user, &n, err);
    if (st || n || strcmp(adding, c->user) == 0)
        return st;
    if ((st = mv_store_user_put(s, c->user, MV_USER_ALL, c->user, err)))
        return st;
    fprintf(cli_out,
            "the archive had no users: %s, owner of its directory, is now recorded "
            "with every role\n",
            c->user);
    cli_detail(c, "(owner %s recorded as admin)", c->user);
    return MV_OK;
}

int cmd_users(int argc, char **argv)
{
    mv_cli c;
    users_args a = {NULL};
    static const struct option opts[] = {{"role", required_argument, NULL, 'r'}, {0, 0, 0, 0}};
    cli_init(&c, "users");
    int rc = cli_getopt(&c, argc, argv, opts, users_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    int pos = argc - c.argi;
    const char *sub = pos > 0 ? argv[c.argi] : NULL;
    const char *name = pos > 1 ? argv[c.argi + 1] : NULL;
    unsigned roles = 0;
    mv_err err = {0};
    if (!sub)
        return cli_usage_error("users", "give one of: list, add, set, remove");
    int is_list = !strcmp(sub, "list"), is_add = !strcmp(sub, "add"), is_set = !strcmp(sub, "set"),
        is_remove = !strcmp(sub, "remove");
    if (!is_list && !is_add && !is_set && !is_remove)
        return cli_usage_error("users", "unknown users command '%s'", sub);
    if (is_list && pos != 1)
        return cli_usage_error("users", "users list takes no NAME");
    if (!is_list && pos != 2)
        return cli_usage_error("users", "users %s takes one NAME", sub);
    if (!is_list && !mv_user_name_ok(name))
        return cli_usage_error("users",
                               "'%s' is not a user name (a login name: lower-case "
                               "letters, digits, '_', '.', '-', at most %d; or uid:N)",
                               name, MV_USER_NAME_MAX);
    if ((is_add || is_set) && !a.role)
        return cli_usage_error("users", "users %s needs --role ROLE[,ROLE...]", sub);
    if ((is_list || is_remove) && a.role)
        return cli_usage_error("users", "--role goes with add and set");
    if (a.role && mv_user_roles_parse(a.role, &roles, &err) != MV_OK)
        return cli_usage_error("users", "%s", err.msg);

    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    if ((st = cli_require(&c, s, is_list ? MV_USER_ADMIN | MV_USER_AUDITOR : MV_USER_ADMIN, &err)))
        return cli_finish(&c, s, st, &err);
    char rs[MV_USER_ROLES_STR];
    if (is_list) {
        list_out o = {c.json, 0};
        cli_detail(&c, "list");
        if (c.json)
            fprintf(cli_out, "[");
        st = mv_store_user_list(s, print_user, &o, &err);
        if (c.json)
            fprintf(cli_out, "]\n");
        else if (!st && !o.n)
            fprintf(cli_out, "no users: the owner of %s holds every role until one is added\n",
                    c.archive);
        return cli_finish(&c, s, st, &err);
    }
    cli_detail(&c, "%s %s", sub, name);
    if (a.role)
        cli_detail(&c, "roles=%s", mv_user_roles_str(roles, rs, sizeof rs));
    unsigned cur = 0;
    mv_err gerr = {0};
    mv_status g = mv_store_user_get(s, name, &cur, &gerr);
    if (g != MV_OK && g != MV_ENOTFOUND)
        err = gerr, st = g;
    else if (is_add && g == MV_OK)
        st = mv_err_set(&err, MV_EEXIST,
                        "user '%s' already exists (mailvault users set changes "
                        "roles)",
                        name);
    else if (!is_add && g == MV_ENOTFOUND)
        st = mv_err_set(&err, MV_ENOTFOUND, "no user '%s'%s", name,
                        is_set ? " (mailvault users add adds one)" : "");
    if (st)
        return cli_finish(&c, s, st, &err);
    if (is_add && (st = adopt_owner(&c, s, name, &err)))
        return cli_finish(&c, s, st, &err);
    if (is_remove) {
        if (!(st = mv_store_user_remove(s, name, &err)))
            fprintf(cli_out, "removed user %s\n", name);
    } else if (!(st = mv_store_user_put(s, name, roles, c.user, &err))) {
        fprintf(cli_out, "%s user %s: %s\n", is_add ? "added" : "changed", name,
                mv_user_roles_str(roles, rs, sizeof rs));
    }
    return cli_finish(&c, s, st, &err);
}
