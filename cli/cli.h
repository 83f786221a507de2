/* SPDX-License-Identifier: MIT */
/* cli.h - shared by the subcommands: options, opening the archive, output,
 * exit codes, roles, audit, and the control socket through which commands
 * reach a running daemon (docs/protocol.md).
 *
 * Every command runs either in its own process or inside the daemon, in a
 * thread of its own, several at once on one mv_store: commands print only
 * through cli_out / cli_err, keep no static state, and take positional
 * arguments from c->argi (never from getopt's global optind). */
#ifndef MV_CLI_CLI_H
#define MV_CLI_CLI_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "../lib/buf.h"
#include "../lib/err.h"
#include "../search/search.h"
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
    EXIT_TEMPFAIL = 75, /* archive busy; the daemon refuses the command or went away */
    EXIT_NOPERM = 77,   /* wrong key, unsafe key file; a role the user lacks */
};

/* Output of the running command: stdout / stderr in a process of its own,
 * frames on the client's connection inside the daemon.  NULL in a thread
 * until cli_init or cli_control_handle sets them. */
extern __thread FILE *cli_out, *cli_err;
/* 1 while cli_control_handle runs a command in this thread. */
extern __thread int cli_in_daemon;
/* Private to common.c and remote.c: while cli_in_daemon, the daemon's
 * store and the uid of the client (SO_PEERCRED). */
extern __thread mv_store *cli_served_store;
extern __thread uid_t cli_peer_uid;

typedef struct mv_cli {
    const char *archive;
    mv_keysrc keys;
    int json;
    int serials_ok, serials; /* --format serials: allowed by the command / asked */
    const char *cmd;  /* for audit: "import", "show" ... */
    mv_buf detail;    /* for audit: the arguments */
    int argi;         /* after cli_getopt: index of the first positional argument */
    uid_t uid;        /* who asks: this process's uid, or the daemon client's (SO_PEERCRED) */
    char user[MV_USER_NAME_MAX + 1]; /* ... as a user name (mv_user_name_for_uid) */
    int refused;      /* cli_require refused: audited as "refused" */
    int served;       /* the store is the daemon's: cli_finish does not close it */
    const char *socket; /* --socket PATH (for serve: where to listen), else NULL */
} mv_cli;

/* Global options accepted by every command.  --socket matters to the
 * client side (cli/main.c) and to serve; other commands keep it in
 * c->socket and ignore it. */
#define CLI_OPT_SOCKET 0x101
#define CLI_GLOBAL_OPTS                                                                        \
    {"archive", required_argument, NULL, 'A'}, {"key-file", required_argument, NULL, 'K'},     \
        {"passphrase-file", required_argument, NULL, 'P'},                                     \
        {"socket", required_argument, NULL, CLI_OPT_SOCKET},                                   \
        {"format", required_argument, NULL, 'F'}, {"help", no_argument, NULL, 'h'}

/* cli_global_opt - handle one of the global options; 1 if it was one,
 * -1 on a bad value (message printed).  Inside the daemon --archive,
 * --key-file, --passphrase-file and --socket are refused: it serves one
 * archive with its own keys, and never reads a file a client names. */
int cli_global_opt(mv_cli *c, int opt, const char *arg);
/* cli_init - defaults from the environment (in the daemon: its archive),
 * the caller's identity; sets cli_out / cli_err to stdout / stderr when
 * this thread has none. */
void cli_init(mv_cli *c, const char *cmd);
void cli_free(mv_cli *c);

/* cli_getopt - parse the global options and the command's own (extra,
 * each handed to fn, which returns -1 after printing a usage error).
 * Returns 0 to go on (positional arguments from c->argi), 1 when --help
 * was printed, -1 on a usage error (already printed).  getopt's state is
 * global: one mutex serialises every parse in the process, and c->argi
 * keeps the result (reading optind afterwards races with other threads). */
struct option;
typedef int (*cli_opt_fn)(void *ctx, int opt, const char *arg);
int cli_getopt(mv_cli *c, int argc, char **argv, const struct option *extra, cli_opt_fn fn,
               void *ctx, void (*help)(void));
/* cli_no_opt - for commands with no options of their own. */
int cli_no_opt(void *ctx, int opt, const char *arg);
#define CLI_GETOPT_EXIT(rc) ((rc) > 0 ? EXIT_OK : EXIT_USAGE)

/* cli_open - open the archive named by the options / environment; inside
 * the daemon, hand out the daemon's store (borrowed: cli_finish keeps it
 * open). */
MV_NODISCARD mv_status cli_open(mv_cli *c, mv_store **out, mv_err *err);
/* cli_require - check, right after cli_open, that the caller holds at
 * least one of the roles in any_of (MV_USER_* from store.h).  A user not
 * in the archive holds none, except in an archive without users (made
 * before users existed), where the owner of the archive directory holds
 * every role (docs/roles.md).
 * @retval MV_EPERM  refused ("user 'bob' lacks the role officer"); the
 *                   command hands it to cli_finish, which audits the
 *                   refusal and exits 77 */
MV_NODISCARD mv_status cli_require(mv_cli *c, mv_store *s, unsigned any_of, mv_err *err);
/* cli_roles - the roles the caller holds (as cli_require decides). */
MV_NODISCARD mv_status cli_roles(mv_cli *c, mv_store *s, unsigned *roles, mv_err *err);
/* cli_finish - audit (when s is open) under the caller's user name, close
 * (unless it is the daemon's), print the error, map to an exit code. */
int cli_finish(mv_cli *c, mv_store *s, mv_status st, const mv_err *err);
int cli_exit_code(mv_status st);
void cli_detail(mv_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cli_read_password - a password from a file (its line ends at the end
 * dropped; it may be empty: a PKCS#12 file can have an empty password),
 * NUL-terminated in out; the caller wipes it (mv_buf_wipe). */
#define CLI_PASSWORD_MAX 4096
MV_NODISCARD mv_status cli_read_password(const char *path, mv_buf *out, mv_err *err);

/* cli_read_small - a whole small file ("-": standard input) into out
 * (replaced).  MV_EIO (naming path), MV_ELIMIT above max bytes. */
MV_NODISCARD mv_status cli_read_small(const char *path, size_t max, mv_buf *out, mv_err *err);

/* cli_parse_u64 - strict decimal; 0 on success, -1 otherwise. */
int cli_parse_u64(const char *s, uint64_t *v);

/* JSON output: strings are escaped; invalid UTF-8 becomes U+FFFD. */
void json_str(FILE *f, const char *s);
void json_kv_str(FILE *f, const char *k, const char *v, int comma);
void json_kv_u64(FILE *f, const char *k, uint64_t v, int comma);
/* text output: control characters in mail-supplied text shown as '?'. */
void text_safe(FILE *f, const char *s);

/* cli_progress_new - a progress bar on the terminal, or NULL (which the
 * mv_progress functions accept) when cli_err is not a terminal: never in
 * the daemon. */
struct mv_progress;
struct mv_progress *cli_progress_new(const char *what, uint64_t total);

/* ---- the search index (cli/indexer.c) ------------------------------------ */

/* cli_indexer_start - for serve: open the index as its writer and keep it
 * up to date on a thread of its own, looking for changes every
 * interval_ms (and when kicked).  cli_indexer_stop joins and closes it. */
MV_NODISCARD mv_status cli_indexer_start(mv_store *s, unsigned interval_ms, mv_err *err);
void cli_indexer_stop(void);
/* cli_checkpoint_every - from the daemon's indexer thread, sign a tree head
 * of s's integrity log every `seconds` while leaves come (0: never). */
void cli_checkpoint_every(mv_store *s, int64_t seconds);
void cli_indexer_kick(void);
/* cli_index_get - the index to search: the daemon's (borrowed) inside it,
 * else one opened for this command and first brought up to date (with a
 * progress bar when asked and on a terminal).  Give it back with
 * cli_index_put. */
MV_NODISCARD mv_status cli_index_get(mv_cli *c, mv_store *s, int show_progress, mv_index **out,
                                     mv_err *err);
void cli_index_put(mv_index *ix);
/* cli_index_current - like cli_index_get, and in the daemon waits (up to
 * CLI_INDEX_WAIT_MS) until its indexer has caught up with every change:
 * for what must see all archived mail (a legal hold).  MV_ETEMP after. */
#define CLI_INDEX_WAIT_MS 60000
MV_NODISCARD mv_status cli_index_current(mv_cli *c, mv_store *s, mv_index **out, mv_err *err);
/* cli_index_kick_or_update - after a change the index must show (a hold):
 * the daemon's indexer is woken; a command of its own updates the index. */
void cli_index_kick_or_update(mv_cli *c, mv_store *s);
/* cli_print_holds - the holds as `hold list` shows them (text or JSON). */
void cli_print_holds(mv_cli *c, const mv_hold *h, size_t n);
/* cli_index_lag - `index lag: N` of status. */
uint64_t cli_index_lag(mv_store *s);

/* ---- the control socket (cli/remote.c, docs/protocol.md) ------------------ */

#define MV_CONTROL_SOCKET "mailvault.sock" /* in the archive directory */
#define CLI_CONTROL_READ_TIMEOUT_MS 30000  /* a request must arrive whole within this */
#define CLI_CONTROL_SEND_TIMEOUT_S 300     /* a client that reads nothing this long is dropped */

/* cli_socket_path - the control socket of an archive: $MAILVAULT_SOCKET
 * when set, else ARCHIVE/mailvault.sock.  Caller frees. */
char *cli_socket_path(const char *archive);

/* cli_control_handle - for the daemon, from any number of threads at
 * once: read one request from fd (bounded, CLI_CONTROL_READ_TIMEOUT_MS),
 * run the command in this thread as user peer_uid with the daemon's
 * store s, its output sent as frames, then the 'X' frame.  Does not close
 * fd.  Returns the command's exit code. */
int cli_control_handle(int fd, mv_store *s, uid_t peer_uid);

/* cli_remote - client side.  argv is a command's argv as main() hands it
 * (the command name first, global options anywhere).  When a daemon
 * serves the archive, send it the command, copy its output to fd 1 and
 * 2, set *rc to its exit code and return 1; return 0 when none listens
 * (run the command in this process). */
int cli_remote(int argc, char **argv, int *rc);

/* The command table (cli/main.c).  daemon_refusal: NULL when the command
 * runs inside the daemon, else the hint of the refusal message;
 * local: the client never sends it to a daemon. */
typedef struct cli_command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
    const char *daemon_refusal;
    int local;
} cli_command;
const cli_command *cli_find_command(const char *name);

/* The subcommands. */
int cmd_init(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_hold(int argc, char **argv);
int cmd_purge(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_proof(int argc, char **argv);
int cmd_verify_proof(int argc, char **argv);
int cmd_users(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_keys_escrow(int argc, char **argv);
int cmd_reprocess(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_reindex(int argc, char **argv);
int cmd_custodian(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_keys_signing(int argc, char **argv);
int cmd_verify_export(int argc, char **argv);

#endif
