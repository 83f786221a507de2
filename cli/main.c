/* SPDX-License-Identifier: MIT */
/* main.c - `mailvault`: git-style subcommands over the encrypted archive.
 *
 * SECURITY: runs with the caller's privileges; holds the archive's keys in
 * locked memory while it runs and disables core dumps.  Secrets are read
 * from files only (never from the command line, which other users can see).
 * LIMITS: see docs/limits.md. */
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

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"init", cmd_init, "create an archive and its keys"},
    {"import", cmd_import, "archive mbox, Maildir and .eml files"},
    {"list", cmd_list, "list archived messages"},
    {"show", cmd_show, "show a message, its copies, or its exact bytes"},
    {"stats", cmd_stats, "messages, copies, raw and stored bytes"},
    {"keys", cmd_keys, "list, rotate and rewrap the archive's keys"},
    {"audit", cmd_audit, "read the audit trail"},
    {"verify", cmd_verify, "read every message back and check its SHA-256"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: mailvault [--archive DIR] [--key-file F | --passphrase-file F] COMMAND [ARGS]\n\n"
               "An encrypted email archive for compliance.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nEvery command takes --archive DIR (default ./archive, or $MAILVAULT_ARCHIVE),\n"
               "--key-file F or --passphrase-file F (or $MAILVAULT_KEY_FILE /\n"
               "$MAILVAULT_PASSPHRASE_FILE, which hold paths, never the secret) and\n"
               "--format text|json where the output is data.\n"
               "`mailvault COMMAND --help` describes a command; `man mailvault` (docs/mailvault.1)\n"
               "lists exit codes.\n");
}

int main(int argc, char **argv)
{
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
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "help") == 0) {
        if (strcmp(argv[i], "help") == 0 && i + 1 < argc) {
            char *hv[] = {argv[i + 1], "--help", NULL};
            for (size_t c = 0; c < sizeof commands / sizeof *commands; c++)
                if (strcmp(commands[c].name, argv[i + 1]) == 0)
                    return commands[c].fn(2, hv);
        }
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[i], "--version") == 0) {
        printf("mailvault %s\n", MV_VERSION);
        return EXIT_OK;
    }
    for (size_t c = 0; c < sizeof commands / sizeof *commands; c++) {
        if (strcmp(commands[c].name, argv[i]) != 0)
            continue;
        /* argv for the command: its name, its own args, then the globals. */
        char **sub = mv_xcalloc((size_t)argc + 1, sizeof *sub);
        int n = 0;
        sub[n++] = argv[i];
        for (int j = i + 1; j < argc; j++)
            sub[n++] = argv[j];
        for (int j = 1; j < i; j++)
            sub[n++] = argv[j];
        sub[n] = NULL;
        int rc = commands[c].fn(n, sub);
        free(sub);
        return rc;
    }
    fprintf(stderr, "mailvault: unknown command '%s'\n", argv[i]);
    usage(stderr);
    return EXIT_USAGE;
}
