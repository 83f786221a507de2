/* SPDX-License-Identifier: MIT */
/* cmd_escrow.c - `mailvault keys escrow add|list|remove`: the
 * organisation's escrowed private keys (S/MIME and OpenPGP). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "../ingest/escrow.h"
#include "../lib/util.h"
#include "cli.h"

#define ESCROW_FILE_MAX (1u << 20) /* a key file is small; anything larger is not one */

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault keys escrow add FILE [--cert FILE] [--password-file F]\n"
            "       mailvault keys escrow add FILE --anchors\n"
            "       mailvault keys escrow list [--format json]\n"
            "       mailvault keys escrow remove ID [--force]\n\n"
            "The organisation's escrowed private keys, with which archived S/MIME and\n"
            "OpenPGP mail is decrypted.  Each is stored inside the archive, sealed under\n"
            "its own key-encryption key.  Needs the admin role; every change is audited.\n\n"
            "add     a PKCS#12 file (.p12/.pfx, legacy RC2/3DES bags too), a PEM private key\n"
            "        with its certificate (in FILE, or FILE and --cert), or an OpenPGP\n"
            "        secret key (armored or binary).  The password or passphrase comes from\n"
            "        --password-file, or is asked for on the terminal when needed.\n"
            "        With --anchors: what signatures are checked against - a PEM bundle of\n"
            "        CA certificates for S/MIME (the latest bundle added counts), or an\n"
            "        OpenPGP public key.\n"
            "list    subject, issuer, serial, key identifier, fingerprints, validity, and how\n"
            "        many messages each key has decrypted\n"
            "remove  refused while messages were decrypted with the key, unless --force\n");
}

typedef struct esc_args {
    const char *cert, *password_file;
    int force, anchors;
} esc_args;

static int esc_opt(void *ctx, int opt, const char *arg)
{
    esc_args *a = ctx;
    switch (opt) {
    case 'c': a->cert = arg; return 0;
    case 'w': a->password_file = arg; return 0;
    case 'f': a->force = 1; return 0;
    case 'a': a->anchors = 1; return 0;
    }
    return -1;
}

/* ask_password - read a password from the terminal without echo; NULL
 * when there is no terminal. */
static char *ask_password(const char *what)
{
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty)
        return NULL;
    struct termios old, quiet;
    int fd = fileno(tty);
    int have = tcgetattr(fd, &old) == 0;
    if (have) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    fprintf(tty, "%s: ", what);
    fflush(tty);
    char buf[1024];
    char *r = fgets(buf, sizeof buf, tty);
    if (have)
        tcsetattr(fd, TCSAFLUSH, &old);
    /* an update stream needs a positioning call between input and output */
    (void)fseek(tty, 0, SEEK_CUR);
    fprintf(tty, "\n");
    fclose(tty);
    if (!r)
        return NULL;
    buf[strcspn(buf, "\r\n")] = 0;
    char *p = mv_xstrdup(buf);
    memset(buf, 0, sizeof buf);
    return p;
}

static void wipe_free(char *p)
{
    if (p) {
        memset(p, 0, strlen(p));
        free(p);
    }
}

typedef struct list_ctx {
    int json, n;
} list_ctx;

static mv_status list_one(void *ctx, const mv_escrow_rec *e, const uint8_t *m, size_t n, mv_err *err)
{
    (void)m;
    (void)n;
    (void)err;
    list_ctx *l = ctx;
    char t[32];
    mv_fmt_time(e->added_us / 1000000, t, sizeof t);
    if (l->json) {
        fprintf(cli_out, "%s{", l->n ? "," : "");
        json_kv_u64(cli_out, "id", e->id, 0);
        json_kv_str(cli_out, "kind", e->kind, 1);
        json_kv_str(cli_out, "description", e->description, 1);
        json_kv_str(cli_out, "added", t, 1);
        json_kv_str(cli_out, "added_by", e->added_by, 1);
        json_kv_u64(cli_out, "decrypted", e->uses, 1);
        fprintf(cli_out, "}");
    } else {
        fprintf(cli_out, "#%-4u %-8s added %s by %s, decrypted %llu messages\n      ", e->id, e->kind,
                t, e->added_by ? e->added_by : "?", (unsigned long long)e->uses);
        text_safe(cli_out, e->description);
        fprintf(cli_out, "\n");
    }
    l->n++;
    return MV_OK;
}

static mv_status do_add(mv_cli *c, mv_store *s, const char *file, const esc_args *a, mv_err *err)
{
    mv_buf f1 = MV_BUF_INIT, f2 = MV_BUF_INIT, material = MV_BUF_INIT, pw = MV_BUF_INIT;
    char *kind = NULL, *desc = NULL, *asked = NULL;
    mv_status st = mv_read_file(file, ESCROW_FILE_MAX, &f1, err);
    if (!st && a->cert)
        st = mv_read_file(a->cert, ESCROW_FILE_MAX, &f2, err);
    if (!st && a->password_file)
        st = cli_read_password(a->password_file, &pw, err);
    const char *password = a->password_file ? (const char *)pw.data : NULL;
    if (!st && a->anchors) {
        st = mv_escrow_prepare_anchors(f1.data, f1.len, &kind, &desc, &material, err);
    } else if (!st) {
        st = mv_escrow_prepare(f1.data, f1.len, f2.len ? f2.data : NULL, f2.len, password, &kind,
                               &desc, &material, err);
        if (st == MV_ENOKEY && !a->password_file && !cli_in_daemon &&
            (asked = ask_password("password of the key file"))) {
            mv_err_clear(err);
            st = mv_escrow_prepare(f1.data, f1.len, f2.len ? f2.data : NULL, f2.len, asked, &kind,
                                   &desc, &material, err);
        }
    }
    uint32_t id = 0;
    if (!st)
        st = mv_store_escrow_add(s, kind, desc, material.data, material.len, c->user, &id, err);
    if (!st) {
        cli_detail(c, "id=%u %s", id, desc);
        fprintf(cli_out, "escrow key #%u added: ", id);
        text_safe(cli_out, desc);
        fprintf(cli_out, "\n");
    }
    wipe_free(asked);
    free(kind);
    free(desc);
    mv_buf_wipe(&material);
    mv_buf_wipe(&f1);
    mv_buf_free(&f2);
    mv_buf_wipe(&pw);
    return st;
}

int cmd_keys_escrow(int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_OPTS,
                                         {"cert", required_argument, NULL, 'c'},
                                         {"password-file", required_argument, NULL, 'w'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"anchors", no_argument, NULL, 'a'},
                                         {NULL, 0, NULL, 0}};
    mv_cli c;
    esc_args a = {0};
    cli_init(&c, "keys escrow");
    int rc = cli_getopt(&c, argc, argv, opts, esc_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi >= argc)
        return cli_usage_error("keys escrow", "give one of: add FILE, list, remove ID");
    const char *sub = argv[c.argi];
    int nargs = argc - c.argi - 1;
    uint64_t id = 0;
    if (!strcmp(sub, "add")) {
        if (nargs != 1)
            return cli_usage_error("keys escrow", "add takes one key FILE");
    } else if (!strcmp(sub, "list")) {
        if (nargs)
            return cli_usage_error("keys escrow", "list takes no arguments");
    } else if (!strcmp(sub, "remove")) {
        if (nargs != 1 || cli_parse_u64(argv[c.argi + 1], &id) || !id || id > UINT32_MAX)
            return cli_usage_error("keys escrow", "remove takes one key ID (see keys escrow list)");
    } else {
        return cli_usage_error("keys escrow", "unknown command '%s'", sub);
    }
    mv_err err = {0};
    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    cli_detail(&c, "%s", sub);
    if ((st = cli_require(&c, s, MV_USER_ADMIN, &err)))
        return cli_finish(&c, s, st, &err);
    if (!strcmp(sub, "add")) {
        st = do_add(&c, s, argv[c.argi + 1], &a, &err);
    } else if (!strcmp(sub, "list")) {
        list_ctx l = {c.json, 0};
        if (c.json)
            fprintf(cli_out, "[");
        st = mv_store_escrow_list(s, list_one, &l, 0, &err);
        if (c.json)
            fprintf(cli_out, "]\n");
        else if (!st && !l.n)
            fprintf(cli_out, "no escrowed keys\n");
    } else {
        mv_escrow_rec e;
        cli_detail(&c, "id=%llu%s", (unsigned long long)id, a.force ? " force" : "");
        st = mv_store_escrow_get(s, (uint32_t)id, &e, NULL, &err);
        if (!st && e.uses && !a.force)
            st = mv_err_set(&err, MV_EPERM,
                            "escrow key #%u has decrypted %llu archived messages; removing it "
                            "leaves them readable only in their stored decrypted form and stops "
                            "reprocessing (--force to remove it anyway)",
                            e.id, (unsigned long long)e.uses);
        if (!st)
            st = mv_store_escrow_remove(s, (uint32_t)id, &err);
        if (!st)
            fprintf(cli_out, "escrow key #%u removed%s\n", e.id, a.force ? " (forced)" : "");
        mv_escrow_rec_clear(&e);
    }
    return cli_finish(&c, s, st, &err);
}
