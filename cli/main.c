/* SPDX-License-Identifier: MIT */
/* main.c - `mailvault`: git-style subcommands over the encrypted archive.
 *
 * When `mailvault serve` runs, it owns the archive: every command but
 * init, serve and help is sent to it over the control socket
 * (cli/remote.c, docs/protocol.md) and runs there, as the calling user;
 * otherwise the command opens the archive itself.  Either way the same
 * code runs and writes the same audit records.
 *
 * SECURITY: runs with the caller's privileges; holds the archive's keys in
 * locked memory while it runs and disables core dumps.  Secrets are read
 * from files only (never from the command line, which other users can see).
 * Through the daemon the client holds no key and sends none.
 * LIMITS: see docs/limits.md and docs/protocol.md. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/secret.h"
#include "cli.h"

#ifndef MV_VERSION
#define MV_VERSION "0.1.0"
#endif

/* The hints end "the archive is served by a running daemon; stop it first
 * (...)" when a command cannot run beside the daemon. */
static const cli_command commands[] = {
    {"init", cmd_init, "create an archive and its keys",
     "an archive is created before its daemon starts", 1},
    {"import", cmd_import, "archive mbox, Maildir and .eml files",
     "or hand the mail to the daemon's SMTP/LMTP listener", 0},
    {"list", cmd_list, "list archived messages", NULL, 0},
    {"show", cmd_show, "show a message, its copies, or its exact bytes", NULL, 0},
    {"stats", cmd_stats, "messages, copies, raw and stored bytes", NULL, 0},
    {"keys", cmd_keys, "list, rotate and rewrap the archive's keys",
     "keys change only while no daemon holds them", 0},
    {"audit", cmd_audit, "read the audit trail", NULL, 0},
    {"verify", cmd_verify, "check every record and byte against the integrity log", NULL, 0},
    {"policy", cmd_policy, "retention rules: how long mail is kept", NULL, 0},
    {"hold", cmd_hold, "legal holds: keep a matter's mail from any purge", NULL, 0},
    {"purge", cmd_purge, "crypto-shred the mail whose retention has ended",
     "purge runs in a process of its own", 1},
    {"report", cmd_report, "retention, holds and audit reports for auditors", NULL, 0},
    {"checkpoint", cmd_checkpoint, "print a signed tree head of the integrity log", NULL, 0},
    {"proof", cmd_proof, "print a message's inclusion proof", NULL, 0},
    {"verify-proof", cmd_verify_proof, "check an inclusion proof without the archive", NULL, 1},
    {"reprocess", cmd_reprocess, "decrypt archived mail with keys escrowed since", NULL, 0},
    {"users", cmd_users, "the archive's users and their roles", NULL, 0},
    {"serve", cmd_serve, "the SMTP/LMTP journaling daemon", "one daemon serves an archive", 1},
    {"status", cmd_status, "daemon sessions, last errors, spool, index lag", NULL, 0},
    {"search", cmd_search, "find messages (docs/search.md)", NULL, 0},
    {"reindex", cmd_reindex, "rebuild the search index from the store",
     "the daemon's indexer owns the index", 1},
    {"custodian", cmd_custodian, "the people whose mail is searched by custodian:", NULL, 0},
    {"export", cmd_export, "package messages for legal review, hashed and signed",
     "an export writes its package from its own process", 1},
    {"verify-export", cmd_verify_export, "check an export package against its manifest and "
     "signature", NULL, 1},
};

const cli_command *cli_find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* asks_help - whether a command line asks for --help (answered here,
 * never by a daemon). */
static int asks_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mailvault [--archive DIR] [--key-file F | --passphrase-file F]\n"
               "                 [--socket S] COMMAND [ARGS]\n\n"
               "An encrypted email archive for compliance.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nEvery command takes --archive DIR (default ./archive, or $MAILVAULT_ARCHIVE),\n"
               "--key-file F or --passphrase-file F (or $MAILVAULT_KEY_FILE /\n"
               "$MAILVAULT_PASSPHRASE_FILE, which hold paths, never the secret) and\n"
               "--format text|json where the output is data.  While `mailvault serve` runs,\n"
               "commands go through its control socket (ARCHIVE/mailvault.sock, or\n"
               "$MAILVAULT_SOCKET, or --socket S) and run there as the calling user.\n"
               "`mailvault COMMAND --help` describes a command; `man mailvault` (docs/mailvault.1)\n"
               "lists exit codes.\n");
}

int main(int argc, char **argv)
{
    mv_stderr_isolate();
    cli_out = stdout;
    cli_err = mv_stderr();
    mv_secure_process();
    /* Fixed malloc thresholds.  glibc's dynamic ones grow (mmap up to
     * 32 MiB, trim up to 64 MiB per arena) once a large buffer is freed;
     * from then on every thread's arena kept what it freed, and an
     * import's RSS grew with its length (350 MB for 20,000 messages
     * instead of 130).  Setting the trim threshold also freezes the mmap
     * threshold at 128 KiB: large buffers go straight back to the system. */
    mallopt(M_TRIM_THRESHOLD, 4 << 20);
    /* MAILVAULT_LOG=debug|info|notice|warning: how much goes to stderr. */
    const char *lv = getenv("MAILVAULT_LOG");
    if (lv) {
        static const char *const names[] = {"debug", "info", "notice", "warning", "error"};
        for (int l = 0; l < 5; l++)
            if (strcmp(lv, names[l]) == 0)
                mv_log_set_level(l);
    }
    /* Global options may come before the command: move them after it so
     * each command's parser sees them. */
    int i = 1;
    while (i < argc && argv[i][0] == '-' && strcmp(argv[i], "--help") != 0 &&
           strcmp(argv[i], "-h") != 0 && strcmp(argv[i], "--version") != 0)
        i += strchr(argv[i], '=') ? 1 : 2;
    if (i >= argc) {
        usage(cli_err);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "help") == 0) {
        if (strcmp(argv[i], "help") == 0 && i + 1 < argc) {
            char *hv[] = {argv[i + 1], "--help", NULL};
            const cli_command *c = cli_find_command(argv[i + 1]);
            if (c)
                return c->fn(2, hv);
        }
        usage(cli_out);
        return EXIT_OK;
    }
    if (strcmp(argv[i], "--version") == 0) {
        fprintf(cli_out, "mailvault %s\n", MV_VERSION);
        return EXIT_OK;
    }
    const cli_command *c = cli_find_command(argv[i]);
    if (c) {
        /* argv for the command: its name, its own args (a subcommand
         * such as `keys escrow` stays first), then the globals, which go
         * before a `--` of the command's own: after it they would be
         * operands. */
        char **sub = mv_xcalloc((size_t)argc + 1, sizeof *sub);
        int n = 0, rc, dd = argc;
        for (int j = i + 1; j < argc && dd == argc; j++)
            if (strcmp(argv[j], "--") == 0)
                dd = j;
        sub[n++] = argv[i];
        for (int j = i + 1; j < dd; j++)
            sub[n++] = argv[j];
        for (int j = 1; j < i; j++)
            sub[n++] = argv[j];
        for (int j = dd; j < argc; j++)
            sub[n++] = argv[j];
        sub[n] = NULL;
        if (c->local || asks_help(n, sub) || !cli_remote(n, sub, &rc))
            rc = c->fn(n, sub);
        free(sub);
        return rc;
    }
    fprintf(cli_err, "mailvault: unknown command '%s'\n", argv[i]);
    usage(cli_err);
    return EXIT_USAGE;
}
