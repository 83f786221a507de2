/* SPDX-License-Identifier: MIT */
/* cmd_keys.c - `mailvault keys list|rotate|rewrap`. */
#include <getopt.h>
#include <string.h>

#include "../lib/util.h"
#include "cli.h"

static void help(void)
{
    fprintf(cli_out, "usage: mailvault keys list [--format json]\n"
           "       mailvault keys escrow add|list|remove ...  (see keys escrow --help)\n"
           "       mailvault keys signing [--format json]   the export signing key\n"
           "       mailvault keys rotate [--rewrap-existing]\n"
           "       mailvault keys rewrap (--new-key-file F | --new-passphrase-file F)\n\n"
           "list    the key hierarchy: how the archive is unlocked, its signing key's\n"
           "        fingerprint, and every key-encryption key (shred bucket, version, state)\n"
           "rotate  new key-encryption keys for everything written from now on; with\n"
           "        --rewrap-existing every data key is rewrapped under them (no message\n"
           "        is rewritten) and the old keys are destroyed\n"
           "rewrap  a new master key or passphrase: only the root secret's wrap changes\n");
}

typedef struct keys_args {
    int rewrap_existing;
    mv_keysrc newsrc;
    uint64_t scrypt_n;
} keys_args;

static int keys_opt(void *ctx, int opt, const char *arg)
{
    keys_args *a = ctx;
    switch (opt) {
    case 'x':
        a->rewrap_existing = 1;
        return 0;
    case 'k':
        a->newsrc.key_file = arg;
        return 0;
    case 'p':
        a->newsrc.passphrase_file = arg;
        return 0;
    case 'S':
        if (!cli_parse_u64(arg, &a->scrypt_n) && a->scrypt_n >= 2)
            return 0;
        return cli_usage_error("keys", "bad --scrypt-n"), -1;
    }
    return -1;
}

typedef struct list_out {
    int json, n;
} list_out;

static void print_kek(void *ctx, const mv_keyinfo *k)
{
    list_out *o = ctx;
    char t[32];
    mv_fmt_time(k->created, t, sizeof t);
    if (o->json) {
        fprintf(cli_out, "%s{", o->n++ ? "," : "");
        json_kv_u64(cli_out, "id", k->no, 0);
        json_kv_str(cli_out, "name", k->name, 1);
        json_kv_u64(cli_out, "version", k->version, 1);
        json_kv_str(cli_out, "created", t, 1);
        json_kv_str(cli_out, "state", k->active ? "active" : "retired", 1);
        fprintf(cli_out, "}");
    } else {
        fprintf(cli_out, "  #%-5u %-22s v%-3u %s  %s\n", k->no, k->name, k->version, t,
               k->active ? "active" : "retired");
    }
}

int cmd_keys(int argc, char **argv)
{
    mv_cli c;
    keys_args a;
    memset(&a, 0, sizeof a);
    static const struct option opts[] = {{"rewrap-existing", no_argument, NULL, 'x'},
                                         {"new-key-file", required_argument, NULL, 'k'},
                                         {"new-passphrase-file", required_argument, NULL, 'p'},
                                         {"scrypt-n", required_argument, NULL, 'S'},
                                         {0, 0, 0, 0}};
    if (argc >= 2 && strcmp(argv[1], "escrow") == 0)
        return cmd_keys_escrow(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "signing") == 0)
        return cmd_keys_signing(argc - 1, argv + 1);
    cli_init(&c, "keys");
    int rc = cli_getopt(&c, argc, argv, opts, keys_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi + 1 != argc)
        return cli_usage_error("keys", "give one of: list, rotate, rewrap");
    const char *sub = argv[c.argi];
    if (strcmp(sub, "list") && strcmp(sub, "rotate") && strcmp(sub, "rewrap"))
        return cli_usage_error("keys", "unknown keys command '%s'", sub);
    if (!strcmp(sub, "rewrap") && !!a.newsrc.key_file == !!a.newsrc.passphrase_file)
        return cli_usage_error("keys", "rewrap needs one of --new-key-file or --new-passphrase-file");
    mv_err err = {0};
    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    cli_detail(&c, "%s", sub);
    if ((st = cli_require(&c, s, MV_USER_ADMIN, &err)))
        return cli_finish(&c, s, st, &err);
    if (!strcmp(sub, "list")) {
        mv_keys_summary sum;
        list_out o = {c.json, 0};
        char t[32];
        if (c.json) {
            fprintf(cli_out, "{\"keks\":[");
            st = mv_store_keys_list(s, &sum, print_kek, &o, &err);
            fprintf(cli_out, "]");
            json_kv_str(cli_out, "archive_id", sum.archive_id, 1);
            json_kv_str(cli_out, "unlock", sum.unlock, 1);
            json_kv_str(cli_out, "created", mv_fmt_time(sum.created, t, sizeof t), 1);
            json_kv_str(cli_out, "signing_key_sha256", sum.signing_fpr, 1);
            json_kv_u64(cli_out, "retention_days", sum.retention_days, 1);
            fprintf(cli_out, "}\n");
        } else {
            st = mv_store_keys_list(s, &sum, NULL, NULL, &err);
            fprintf(cli_out, "archive id:     %s\nunlocked by:    master key from a %s\n"
                   "root secret:    created %s, wrapped by the master key (AES-256-KWP)\n"
                   "signing key:    Ed25519, SHA-256 of public key %s\n"
                   "retention:      %u days (default bucket)\n"
                   "key-encryption keys (AES-256, wrap data keys with AES-KWP):\n",
                   sum.archive_id, sum.unlock, mv_fmt_time(sum.created, t, sizeof t),
                   sum.signing_fpr, sum.retention_days);
            if (!st)
                st = mv_store_keys_list(s, &sum, print_kek, &o, &err);
        }
    } else if (!strcmp(sub, "rotate")) {
        unsigned rotated = 0;
        uint64_t rewrapped = 0;
        st = mv_store_keys_rotate(s, a.rewrap_existing, &rotated, &rewrapped, &err);
        cli_detail(&c, "rotated=%u rewrapped=%llu", rotated, (unsigned long long)rewrapped);
        if (!st)
            fprintf(cli_out, "rotated %u key-encryption key%s%s", rotated, rotated == 1 ? "" : "s",
                   a.rewrap_existing ? "" : "\n");
        if (!st && a.rewrap_existing)
            fprintf(cli_out, "; rewrapped %llu data keys; retired keys destroyed\n",
                   (unsigned long long)rewrapped);
    } else {
        st = mv_store_keys_rewrap(s, &a.newsrc, a.scrypt_n, &err);
        if (!st)
            fprintf(cli_out, "the root secret is now wrapped by the new %s; the old one no longer opens "
                   "this archive\n", a.newsrc.key_file ? "key file" : "passphrase");
    }
    return cli_finish(&c, s, st, &err);
}
