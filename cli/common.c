/* SPDX-License-Identifier: MIT */
/* common.c - options, archive opening, roles, exit codes, audit, output
 * helpers. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"

__thread FILE *cli_out, *cli_err;
__thread int cli_in_daemon;
__thread mv_store *cli_served_store;
__thread uid_t cli_peer_uid;

/* getopt keeps its state in globals (optind, optarg, its place inside a
 * group of short options): one parse at a time in the process. */
static pthread_mutex_t getopt_mu = PTHREAD_MUTEX_INITIALIZER;

void cli_init(mv_cli *c, const char *cmd)
{
    if (!cli_out)
        cli_out = stdout;
    if (!cli_err)
        cli_err = mv_stderr();
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    c->uid = cli_in_daemon ? cli_peer_uid : getuid();
    mv_user_name_for_uid(c->uid, c->user, sizeof c->user);
    if (cli_in_daemon) {
        /* The daemon's archive and keys, whatever its environment says. */
        c->archive = mv_store_dir(cli_served_store);
        return;
    }
    c->archive = getenv("MAILVAULT_ARCHIVE");
    c->keys.key_file = getenv("MAILVAULT_KEY_FILE");
    c->keys.passphrase_file = getenv("MAILVAULT_PASSPHRASE_FILE");
    if (c->keys.key_file && !*c->keys.key_file)
        c->keys.key_file = NULL;
    if (c->keys.passphrase_file && !*c->keys.passphrase_file)
        c->keys.passphrase_file = NULL;
    /* An explicit option of one kind overrides an environment of the other. */
    if (!c->archive || !*c->archive)
        c->archive = "./archive";
}

void cli_free(mv_cli *c)
{
    mv_buf_free(&c->detail);
}

int cli_global_opt(mv_cli *c, int opt, const char *arg)
{
    if (cli_in_daemon && (opt == 'A' || opt == 'K' || opt == 'P' || opt == CLI_OPT_SOCKET)) {
        fprintf(cli_err, "mailvault %s: --archive, --key-file, --passphrase-file and --socket "
                         "are not accepted by the daemon (it serves its own archive with its "
                         "own keys)\n", c->cmd);
        return -1;
    }
    switch (opt) {
    case CLI_OPT_SOCKET:
        c->socket = arg;
        return 1;
    case 'A':
        c->archive = arg;
        return 1;
    case 'K':
        c->keys.key_file = arg;
        c->keys.passphrase_file = NULL;
        return 1;
    case 'P':
        c->keys.passphrase_file = arg;
        c->keys.key_file = NULL;
        return 1;
    case 'F':
        if (strcmp(arg, "json") == 0)
            c->json = 1;
        else if (strcmp(arg, "text") == 0 || strcmp(arg, "table") == 0)
            c->json = 0;
        else if (c->serials_ok && strcmp(arg, "serials") == 0)
            c->json = 0, c->serials = 1;
        else {
            fprintf(cli_err, "mailvault %s: --format must be text%s or json\n", c->cmd,
                    c->serials_ok ? ", serials" : "");
            return -1;
        }
        return 1;
    }
    return 0;
}

mv_status cli_open(mv_cli *c, mv_store **out, mv_err *err)
{
    if (cli_in_daemon) {
        c->served = 1;
        *out = cli_served_store;
        return MV_OK;
    }
    /* An open refused for a wrong key cannot be audited in the archive
     * (nothing may be written without the key); cli_finish reports it. */
    return mv_store_open(c->archive, &c->keys, out, err);
}

static void any_user(void *ctx, const mv_user_rec *u)
{
    (void)u;
    *(int *)ctx = 1;
}

mv_status cli_roles(mv_cli *c, mv_store *s, unsigned *roles, mv_err *err)
{
    *roles = 0;
    mv_status st = mv_store_user_get(s, c->user, roles, err);
    if (st != MV_ENOTFOUND)
        return st;
    /* Not a user.  An archive made before users existed has none at all:
     * then whoever owns its directory (who could always open it) holds
     * every role until the first user is added. */
    int some = 0;
    struct stat sb;
    if ((st = mv_store_user_list(s, any_user, &some, err)))
        return st;
    if (!some && stat(mv_store_dir(s), &sb) == 0 && sb.st_uid == c->uid)
        *roles = MV_USER_ALL;
    mv_err_clear(err);
    return MV_OK;
}

mv_status cli_require(mv_cli *c, mv_store *s, unsigned any_of, mv_err *err)
{
    unsigned roles;
    mv_status st = cli_roles(c, s, &roles, err);
    if (st || (roles & any_of))
        return st;
    c->refused = 1;
    if ((any_of & MV_USER_ALL) == MV_USER_ALL)
        return mv_err_set(err, MV_EPERM, "user '%s' holds no role in this archive", c->user);
    char need[80] = "";
    size_t n = 0;
    for (unsigned bit = 1; bit <= MV_USER_AUDITOR; bit <<= 1) {
        if (!(any_of & bit))
            continue;
        int w = snprintf(need + n, sizeof need - n, "%s%s", n ? " or " : "",
                         mv_user_role_name(bit));
        if (w > 0 && (size_t)w < sizeof need - n)
            n += (size_t)w;
    }
    return mv_err_set(err, MV_EPERM, "user '%s' lacks the role %s", c->user, need);
}

int cli_exit_code(mv_status st)
{
    switch (st) {
    case MV_OK:
        return EXIT_OK;
    case MV_EUSAGE:
        return EXIT_USAGE;
    case MV_EMALFORMED:
    case MV_ECRYPTO:
        return EXIT_DATAERR;
    case MV_ENOTFOUND:
        return EXIT_NOINPUT;
    case MV_EEXIST:
        return EXIT_CANTCREAT;
    case MV_EIO:
    case MV_ESTORE:
    case MV_EINDEX:
        return EXIT_IOERR;
    case MV_ETEMP:
        return EXIT_TEMPFAIL;
    case MV_EPERM:
    case MV_ENOKEY:
        return EXIT_NOPERM;
    case MV_ELIMIT:
        return EXIT_DATAERR;
    default:
        return EXIT_SOFTWARE;
    }
}

void cli_detail(mv_cli *c, const char *fmt, ...)
{
    va_list ap;
    char tmp[1024];
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (c->detail.len)
        mv_buf_append_byte(&c->detail, ' ');
    mv_buf_append_str(&c->detail, tmp);
}

int cli_finish(mv_cli *c, mv_store *s, mv_status st, const mv_err *err)
{
    const char *msg = st ? (err && err->msg[0] ? err->msg : mv_status_str(st)) : "ok";
    mv_err aerr = {0};
    if (s) {
        char *result = c->refused ? mv_xasprintf("refused: %s", msg) : NULL;
        if (mv_store_audit(s, c->user, c->cmd, c->detail.len ? (char *)c->detail.data : "", st,
                           result ? result : msg, &aerr) != MV_OK) {
            fprintf(cli_err, "mailvault %s: cannot write the audit record: %s\n", c->cmd, aerr.msg);
            if (!st)
                st = aerr.code ? aerr.code : MV_ESTORE, msg = aerr.msg;
        }
        free(result);
        if (!c->served)
            mv_store_close(s);
    }
    if (st)
        fprintf(cli_err, "mailvault %s: %s\n", c->cmd, msg);
    cli_free(c);
    return cli_exit_code(st);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(cli_err, "mailvault %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(cli_err, fmt, ap);
    va_end(ap);
    fprintf(cli_err, "\n(see: mailvault %s --help)\n", cmd);
    return EXIT_USAGE;
}

int cli_parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *v = x;
    return 0;
}

/* utf8_len - length of the valid UTF-8 sequence at p, 0 if invalid. */
static size_t utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n = (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!n || (n == 2 && p[0] < 0xc2))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

void json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p == '"' || *p == '\\') {
            fputc('\\', f);
            fputc(*p++, f);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(f, "\\u%04x", *p++);
        } else {
            size_t n = utf8_len(p);
            if (!n) {
                fputs("\\ufffd", f);
                p++;
            } else {
                fwrite(p, 1, n, f);
                p += n;
            }
        }
    }
    fputc('"', f);
}

void json_kv_str(FILE *f, const char *k, const char *v, int comma)
{
    fprintf(f, "%s\"%s\":", comma ? "," : "", k);
    json_str(f, v);
}

void json_kv_u64(FILE *f, const char *k, uint64_t v, int comma)
{
    fprintf(f, "%s\"%s\":%llu", comma ? "," : "", k, (unsigned long long)v);
}

void text_safe(FILE *f, const char *s)
{
    if (!s)
        return;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

int cli_getopt(mv_cli *c, int argc, char **argv, const struct option *extra, cli_opt_fn fn,
               void *ctx, void (*help)(void))
{
    static const struct option global[] = {CLI_GLOBAL_OPTS};
    size_t ng = sizeof global / sizeof *global, ne = 0;
    while (extra && extra[ne].name)
        ne++;
    struct option *all = mv_xcalloc(ng + ne + 1, sizeof *all);
    memcpy(all, global, sizeof global);
    if (ne)
        memcpy(all + ng, extra, ne * sizeof *extra);
    int opt, rc = 0;
    pthread_mutex_lock(&getopt_mu);
    /* 0, not 1: glibc then also forgets where it was inside a group of
     * short options from the previous parse. */
    optind = 0;
    opterr = 0;
    while (!rc && (opt = getopt_long(argc, argv, "h", all, NULL)) != -1) {
        if (opt == 'h') {
            help();
            rc = 1;
            break;
        }
        if (opt == '?') {
            rc = -1;
            /* For an unknown short option optind may already point past
             * the word it came from; optopt names the letter. */
            const char *w = optind > 0 && optind <= argc ? argv[optind - 1] : "";
            if (optopt && (w[0] != '-' || w[1] == '-' || !strchr(w, optopt)))
                cli_usage_error(c->cmd, "unknown option '-%c' (an argument that starts with "
                                        "'-' goes after '--')", optopt);
            else
                cli_usage_error(c->cmd, "unknown or incomplete option '%s'%s", w,
                                w[0] == '-' && w[1] != '-'
                                    ? " (an argument that starts with '-' goes after '--')"
                                    : "");
            break;
        }
        int g = cli_global_opt(c, opt, optarg);
        if (g < 0 || (!g && fn(ctx, opt, optarg) < 0))
            rc = -1;
    }
    c->argi = optind;
    pthread_mutex_unlock(&getopt_mu);
    free(all);
    return rc;
}

int cli_no_opt(void *ctx, int opt, const char *arg)
{
    (void)ctx, (void)opt, (void)arg;
    return -1;
}

struct mv_progress *cli_progress_new(const char *what, uint64_t total)
{
    /* mv_progress draws on fd 2: only when that is this command's own
     * terminal, never from inside the daemon. */
    if (cli_in_daemon || cli_err != mv_stderr() || !isatty(STDERR_FILENO))
        return NULL;
    return mv_progress_new(what, total);
}

mv_status cli_read_password(const char *path, mv_buf *out, mv_err *err)
{
    mv_buf_reset(out);
    mv_status st = mv_read_file(path, CLI_PASSWORD_MAX, out, err);
    while (!st && out->len && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == '\r'))
        out->len--;
    if (!st && memchr(out->data, 0, out->len))
        st = mv_err_set(err, MV_EUSAGE, "%s holds a NUL byte", path);
    mv_buf_append_byte(out, 0);
    out->len--;
    return st;
}

mv_status cli_read_small(const char *path, size_t max, mv_buf *out, mv_err *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return mv_err_sys(err, "opening %s", path);
    uint8_t buf[8192];
    size_t r;
    mv_status st = MV_OK;
    mv_buf_reset(out);
    while (!st && (r = fread(buf, 1, sizeof buf, f)) > 0) {
        if (out->len + r > max)
            st = mv_err_set(err, MV_ELIMIT, "%s is larger than %zu bytes", path, max);
        else
            mv_buf_append(out, buf, r);
    }
    if (!st && ferror(f))
        st = mv_err_sys(err, "reading %s", path);
    if (f != stdin)
        fclose(f);
    return st;
}
