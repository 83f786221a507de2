/* SPDX-License-Identifier: MIT */
/* cli.h - shared by the subcommands: options, opening the archive, output,
 * exit codes, audit. */
#ifndef MV_CLI_CLI_H
#define MV_CLI_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "../lib/buf.h"
#include "../lib/err.h"
#include "../store/store.h"

/* Exit codes (sysexits.h values, documented in docs/mailvault.1). */
enum {
    EXIT_OK = 0,
    EXIT_PARTIAL = 1,   /* the command ran but some items failed */
    EXIT_USAGE = 64,
    EXIT_DATAERR = 65,  /* stored data failed its integrity check, or bad input */
    EXIT_NOINPUT = 66,  /* no such archive, file or serial */
    EXIT_SOFTWARE = 70,
    EXIT_CANTCREAT = 73,
    EXIT_IOERR = 74,
    EXIT_TEMPFAIL = 75, /* archive busy */
    EXIT_NOPERM = 77,   /* wrong key, unsafe key file */
};

typedef struct mv_cli {
    const char *archive;
    mv_keysrc keys;
    int json;
    const char *cmd;  /* for audit: "import", "show" ... */
    mv_buf detail;    /* for audit: the arguments */
} mv_cli;

/* Global options accepted by every command. */
#define CLI_GLOBAL_OPTS                                                                        \
    {"archive", required_argument, NULL, 'A'}, {"key-file", required_argument, NULL, 'K'},     \
        {"passphrase-file", required_argument, NULL, 'P'},                                     \
        {"format", required_argument, NULL, 'F'}, {"help", no_argument, NULL, 'h'}

/* cli_global_opt - handle one of the global options; 1 if it was one,
 * -1 on a bad value (message printed). */
int cli_global_opt(mv_cli *c, int opt, const char *arg);
void cli_init(mv_cli *c, const char *cmd);
void cli_free(mv_cli *c);

/* cli_getopt - parse the global options and the command's own (extra,
 * each handed to fn, which returns -1 after printing a usage error).
 * Returns 0 to go on (positional arguments from optind), 1 when --help was
 * printed, -1 on a usage error (already printed). */
struct option;
typedef int (*cli_opt_fn)(void *ctx, int opt, const char *arg);
int cli_getopt(mv_cli *c, int argc, char **argv, const struct option *extra, cli_opt_fn fn,
               void *ctx, void (*help)(void));
/* cli_no_opt - for commands with no options of their own. */
int cli_no_opt(void *ctx, int opt, const char *arg);
#define CLI_GETOPT_EXIT(rc) ((rc) > 0 ? EXIT_OK : EXIT_USAGE)

/* cli_open - open the archive named by the options / environment. */
MV_NODISCARD mv_status cli_open(mv_cli *c, mv_store **out, mv_err *err);
/* cli_finish - audit (when s is open), close, print the error, map to an exit code. */
int cli_finish(mv_cli *c, mv_store *s, mv_status st, const mv_err *err);
int cli_exit_code(mv_status st);
void cli_detail(mv_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cli_parse_u64 - strict decimal; 0 on success, -1 otherwise. */
int cli_parse_u64(const char *s, uint64_t *v);

/* JSON output: strings are escaped; invalid UTF-8 becomes U+FFFD. */
void json_str(FILE *f, const char *s);
void json_kv_str(FILE *f, const char *k, const char *v, int comma);
void json_kv_u64(FILE *f, const char *k, uint64_t v, int comma);
/* text output: control characters in mail-supplied text shown as '?'. */
void text_safe(FILE *f, const char *s);

/* The subcommands. */
int cmd_init(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_verify(int argc, char **argv);

#endif
