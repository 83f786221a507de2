/* SPDX-License-Identifier: MIT */
/* cmd_init.c - `mailvault init`: a new archive and its key hierarchy. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "../lib/util.h"
#include "cli.h"

static void help(void)
{
    fprintf(cli_out, "usage: mailvault init [--archive DIR] (--key-file F | --passphrase-file F | --new-key-file F)\n"
           "                      [--retention DAYS|Ny]\n\n"
           "Create an archive in DIR: the store (DIR/store) and the keystore (DIR/keys).\n"
           "The master key comes from a 32-byte key file (not readable by other users) or\n"
           "a passphrase through scrypt; it is never written to the archive.\n"
           "  --new-key-file F   write a fresh random key to F (mode 600) and use it\n"
           "  --retention R      default retention: days (2557, 2557d) or years (7y); default 7y\n"
           "Keep the key file and the keystore (DIR/keys) apart from data backups.\n");
}

static mv_status new_key_file(const char *path, mv_err *err)
{
    uint8_t k[32];
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return mv_err_set(err, MV_EEXIST, "key file %s already exists: not overwritten", path);
    if (fd < 0)
        return mv_err_sys(err, "creating key file %s", path);
    if (RAND_bytes(k, 32) != 1) {
        close(fd);
        unlink(path);
        return mv_err_openssl(err, "RAND_bytes");
    }
    mv_status st = mv_write_all(fd, k, 32, err);
    OPENSSL_cleanse(k, 32);
    if (!st && fsync(fd) < 0)
        st = mv_err_sys(err, "syncing %s", path);
    close(fd);
    if (st)
        unlink(path);
    return st;
}

/* parse_retention - "2557" or "2557d" (days) or "7y" (years of 365.25 days). */
static int parse_retention(const char *s, unsigned *days)
{
    uint64_t v;
    size_t n = strlen(s);
    char unit = n > 1 && (s[n - 1] == 'y' || s[n - 1] == 'd') ? s[n - 1] : 'd';
    char *t = mv_xstrndup(s, unit == s[n - 1] ? n - 1 : n);
    int r = cli_parse_u64(t, &v);
    free(t);
    if (r || v == 0)
        return -1;
    if (unit == 'y')
        v = v > 100 ? 0 : (v * 36525 + 99) / 100;
    if (v == 0 || v > 36525)
        return -1;
    *days = (unsigned)v;
    return 0;
}

typedef struct init_args {
    mv_create_opts o;
    const char *newkey;
} init_args;

static int init_opt(void *ctx, int opt, const char *arg)
{
    init_args *a = ctx;
    uint64_t n;
    switch (opt) {
    case 'N':
        a->newkey = arg;
        return 0;
    case 'R':
        if (parse_retention(arg, &a->o.retention_days))
            return cli_usage_error("init", "bad --retention '%s'", arg), -1;
        return 0;
    case 'S': /* for tests: a cheaper scrypt */
        if (cli_parse_u64(arg, &n) || n < 2)
            return cli_usage_error("init", "bad --scrypt-n"), -1;
        a->o.scrypt_n = n;
        return 0;
    }
    return -1;
}

int cmd_init(int argc, char **argv)
{
    mv_cli c;
    init_args a = {{0}, NULL};
    static const struct option opts[] = {{"new-key-file", required_argument, NULL, 'N'},
                                         {"retention", required_argument, NULL, 'R'},
                                         {"scrypt-n", required_argument, NULL, 'S'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "init");
    int rc = cli_getopt(&c, argc, argv, opts, init_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi < argc)
        return cli_usage_error("init", "unexpected argument '%s'", argv[c.argi]);
    mv_err err = {0};
    mv_status st = MV_OK;
    if (a.newkey) {
        if (c.keys.passphrase_file && !getenv("MAILVAULT_PASSPHRASE_FILE"))
            return cli_usage_error("init", "--new-key-file and --passphrase-file exclude each other");
        if ((st = new_key_file(a.newkey, &err)))
            return cli_finish(&c, NULL, st, &err);
        c.keys.key_file = a.newkey;
        c.keys.passphrase_file = NULL;
    }
    st = mv_store_create(c.archive, &c.keys, &a.o, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    /* Reopen to write the first audit record and print the identity. */
    mv_store *s = NULL;
    if ((st = cli_open(&c, &s, &err)))
        return cli_finish(&c, NULL, st, &err);
    mv_keys_summary sum;
    st = mv_store_keys_list(s, &sum, NULL, NULL, &err);
    cli_detail(&c, "archive created (%s, retention %u days)", sum.unlock, sum.retention_days);
    if (!st) {
        if (c.json) {
            fprintf(cli_out, "{");
            json_kv_str(cli_out, "archive", c.archive, 0);
            json_kv_str(cli_out, "archive_id", sum.archive_id, 1);
            json_kv_str(cli_out, "unlock", sum.unlock, 1);
            json_kv_u64(cli_out, "retention_days", sum.retention_days, 1);
            json_kv_str(cli_out, "signing_key_sha256", sum.signing_fpr, 1);
            fprintf(cli_out, "}\n");
        } else {
            fprintf(cli_out, "created archive %s\n  id:           %s\n  unlocked by:  %s\n"
                   "  retention:    %u days\n  signing key:  %s\n",
                   c.archive, sum.archive_id, sum.unlock, sum.retention_days, sum.signing_fpr);
        }
    }
    return cli_finish(&c, s, st, &err);
}
