/* SPDX-License-Identifier: MIT */
/* cmd_serve.c - `mailvault serve`: the journaling daemon.
 *
 * Owns the archive while it runs (RocksDB's lock); other commands reach
 * it through the control socket (cli/remote.c, docs/protocol.md).
 * Signals: SIGTERM/SIGINT drain and stop, SIGHUP reloads the config file.
 * Settings: docs/config.md (generated from the table below with
 * `mailvault serve --print-schema`). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../ingest/escrow.h"
#include "../ingest/server.h"
#include "../lib/config.h"
#include "../lib/log.h"
#include "../lib/util.h"
#include "cli.h"
#include "serve.h"

mv_server *cli_server;

#define CONTROL_MAX 32 /* control requests served at once */

/* Every setting, with its default.  Limits follow STANDARDS.md §2.4. */
static const mv_cfg_key schema[] = {
    {"archive", "dir", MV_CFG_STR, "./archive", "archive directory (also --archive, $MAILVAULT_ARCHIVE)", 0, 0},
    {"archive", "key_file", MV_CFG_STR, NULL, "32-byte master key file (also --key-file)", 0, 0},
    {"archive", "passphrase_file", MV_CFG_STR, NULL, "passphrase file (also --passphrase-file)", 0, 0},
    {"serve", "hostname", MV_CFG_STR, NULL, "name in the greeting (default: the host name)", 0, 0},
    {"serve", "workers", MV_CFG_UINT, "0", "pipeline worker threads (0 = one per CPU)", 0, 256},
    {"serve", "clients", MV_CFG_LIST, "127.0.0.0/8 ::1",
     "client networks allowed to connect (CIDR, each optionally =SOURCE-KIND)", 0, 0},
    {"serve", "report_senders", MV_CFG_LIST, "",
     "if set, journal reports are believed only with one of these MAIL FROM addresses", 0, 0},
    {"serve", "subaddress_base", MV_CFG_STR, "archive",
     "postfix-bcc: local part of base+user=domain@... recipients to decode (empty = off)", 0, 0},
    {"serve", "subaddress_delimiter", MV_CFG_STR, "+", "postfix-bcc: Postfix recipient_delimiter", 0, 0},
    {"serve", "control_socket", MV_CFG_STR, NULL, "control socket (default ARCHIVE/mailvault.sock)", 0, 0},
    {"serve", "control_mode", MV_CFG_MODE, "0660", "control socket file mode", 0, 0777},
    {"serve", "pid_file", MV_CFG_STR, NULL, "write the daemon's pid here once it listens", 0, 0},
    {"serve", "log_level", MV_CFG_STR, "info", "debug, info, notice, warning or error", 0, 0},
    {"serve", "index_interval", MV_CFG_DURATION, "200ms",
     "how often the indexer looks for archived mail not yet searchable", 10, 60000},
    {"serve", "checkpoint_interval", MV_CFG_DURATION, "1h",
     "sign a tree head of the integrity log this often while mail comes (0 = only on demand "
     "and at stop)", 0, 0},
    {"limits", "message_size", MV_CFG_SIZE, "100M", "largest message (SIZE); over it: 552 5.3.4", 1024, 0},
    {"limits", "recipients", MV_CFG_UINT, "1000", "recipients per transaction; over it: 452 4.5.3", 100, 10000000},
    {"limits", "line_length", MV_CFG_SIZE, "4096", "longest command line; over it: 500 5.5.2", 512, 1 << 20},
    {"limits", "errors", MV_CFG_UINT, "20", "bad commands per session before 421", 1, 100000},
    {"limits", "sessions", MV_CFG_UINT, "100", "sessions at once; over it: 421 4.7.0", 1, 100000},
    {"limits", "command_timeout", MV_CFG_DURATION, "300s", "idle time allowed between commands", 1000, 0},
    {"limits", "data_timeout", MV_CFG_DURATION, "600s", "time allowed between data packets", 1000, 0},
    {"limits", "drain_timeout", MV_CFG_DURATION, "30s", "on SIGTERM: time a message in transfer may finish", 0, 0},
    {"limits", "queue", MV_CFG_SIZE, "64M", "acknowledged bytes waiting for the pipeline before sessions wait", 1 << 20, 0},
    {"limits", "pipeline_inflight", MV_CFG_SIZE, "16M", "message bytes in the pipeline's workers", 1 << 20, 0},
    {"tls", "cert", MV_CFG_STR, NULL, "certificate chain (PEM); STARTTLS is offered when set", 0, 0},
    {"tls", "key", MV_CFG_STR, NULL, "private key (PEM)", 0, 0},
    {"tls", "client_ca", MV_CFG_STR, NULL, "verify client certificates against these CAs (PEM)", 0, 0},
    {"tls", "require_client_cert", MV_CFG_BOOL, "no", "refuse clients without a verified certificate", 0, 0},
    {"tls", "client_names", MV_CFG_LIST, "",
     "NAME=SOURCE-KIND: a verified certificate for NAME (CN or DNS SAN) declares the source", 0, 0},
    {"listener *", "protocol", MV_CFG_STR, "smtp", "smtp or lmtp", 0, 0},
    {"listener *", "listen", MV_CFG_STR, NULL, "host:port, [v6]:port or unix:/path", 0, 0},
    {"listener *", "source", MV_CFG_STR, "plain",
     "plain, exchange-journal, postfix-bcc or google-routing", 0, 0},
    {"listener *", "require_tls", MV_CFG_BOOL, "no", "MAIL only after STARTTLS (530 5.7.0)", 0, 0},
};
#define NSCHEMA (sizeof schema / sizeof *schema)

typedef struct serve_opts {
    const char *config;
    const char *smtp[8], *lmtp[8];
    int n_smtp, n_lmtp;
    const char *source, *hostname, *control_mode, *pid_file, *workers;
    int print_config, print_schema;
} serve_opts;

static void help(void)
{
    fprintf(cli_out, "usage: mailvault serve [--config FILE] [--archive DIR] [--key-file F | --passphrase-file F]\n"
           "                       [--smtp ADDR]... [--lmtp ADDR]... [--source KIND] [--hostname NAME]\n"
           "                       [--workers N] [--control-mode MODE] [--pid-file F]\n"
           "                       [--print-config] [--print-schema]\n\n"
           "The journaling daemon: SMTP and LMTP listeners that archive what mail servers\n"
           "journal to them.  A message is answered 250 only once it is durable in the\n"
           "spool; after a crash the next start archives whatever was accepted.\n\n"
           "  --config FILE     INI settings (docs/config.md); options win over the file\n"
           "  --smtp ADDR       an SMTP listener (host:port), repeatable; replaces the file's listeners\n"
           "  --lmtp ADDR       an LMTP listener (host:port or unix:/path), repeatable\n"
           "  --source KIND     source kind of the listeners given as options:\n"
           "                    plain, exchange-journal, postfix-bcc, google-routing\n"
           "  --control-mode M  file mode of the control socket (default 0660)\n"
           "  --pid-file F      write the pid once listening\n"
           "  --print-config    print the effective settings and exit\n"
           "  --print-schema    print every setting as Markdown and exit\n\n"
           "With no config and no listener options: SMTP on 127.0.0.1:2525 and LMTP on\n"
           "127.0.0.1:2424, loopback clients only, source kind plain.\n"
           "Signals: SIGTERM/SIGINT drain sessions (421) and stop; SIGHUP reloads the config.\n"
           "While it runs, other commands reach the archive through ARCHIVE/mailvault.sock.\n");
}

static int opt_fn(void *ctx, int opt, const char *arg)
{
    serve_opts *o = ctx;
    switch (opt) {
    case 'c': o->config = arg; return 0;
    case 's':
        if (o->n_smtp == 8)
            return cli_usage_error("serve", "at most 8 --smtp listeners");
        o->smtp[o->n_smtp++] = arg;
        return 0;
    case 'l':
        if (o->n_lmtp == 8)
            return cli_usage_error("serve", "at most 8 --lmtp listeners");
        o->lmtp[o->n_lmtp++] = arg;
        return 0;
    case 'S': o->source = arg; return 0;
    case 'H': o->hostname = arg; return 0;
    case 'w': o->workers = arg; return 0;
    case 'm': o->control_mode = arg; return 0;
    case 'p': o->pid_file = arg; return 0;
    case 'C': o->print_config = 1; return 0;
    case 'D': o->print_schema = 1; return 0;
    }
    return -1;
}

/* ---- configuration -> server settings ------------------------------------ */

typedef struct built {
    mv_server_conf sc;
    mv_listener_conf *ls;
    mv_client_conf *clients;
    mv_cert_conf *certs;
    char **strs; /* owned strings */
    size_t n_strs;
} built;

static const char *keep(built *b, char *s)
{
    b->strs = mv_xrealloc(b->strs, (b->n_strs + 1) * sizeof *b->strs);
    b->strs[b->n_strs++] = s;
    return s;
}

static void built_free(built *b)
{
    for (size_t i = 0; i < b->n_strs; i++)
        free(b->strs[i]);
    free(b->strs);
    free(b->ls);
    free(b->clients);
    free(b->certs);
    memset(b, 0, sizeof *b);
}

static mv_status parse_kind(const char *s, const char *where, mv_source_kind *k, mv_err *err)
{
    if (mv_source_kind_parse(s, k) != 0)
        return mv_err_set(err, MV_EUSAGE,
                          "%s: unknown source kind '%s' (plain, exchange-journal, postfix-bcc, "
                          "google-routing)", where, s);
    return MV_OK;
}

/* build - the server settings from the configuration (file + options). */
static mv_status build(const mv_cfg *cf, int cli_listeners, built *b, mv_err *err)
{
    mv_status st = MV_OK;
    memset(b, 0, sizeof *b);
    mv_server_conf *sc = &b->sc;
    sc->hostname = mv_cfg_str(cf, "serve", NULL, "hostname");
    size_t n;
    const char *const *names = mv_cfg_instances(cf, "listener", &n);
    b->ls = mv_xcalloc(n + 1, sizeof *b->ls);
    for (size_t i = 0; i < n && !st; i++) {
        /* listeners given as options replace the file's */
        if (cli_listeners && strncmp(names[i], "cli-", 4) != 0)
            continue;
        mv_listener_conf *l = &b->ls[sc->n_listeners];
        l->name = names[i];
        const char *proto = mv_cfg_str(cf, "listener", names[i], "protocol");
        if (strcasecmp(proto, "smtp") == 0)
            l->proto = MV_SMTP;
        else if (strcasecmp(proto, "lmtp") == 0)
            l->proto = MV_LMTP;
        else
            st = mv_err_set(err, MV_EUSAGE, "[listener %s] protocol must be smtp or lmtp", names[i]);
        l->listen = mv_cfg_str(cf, "listener", names[i], "listen");
        if (!st && (!l->listen || !*l->listen))
            st = mv_err_set(err, MV_EUSAGE, "[listener %s] has no listen address", names[i]);
        char where[96];
        snprintf(where, sizeof where, "[listener %s] source", names[i]);
        if (!st)
            st = parse_kind(mv_cfg_str(cf, "listener", names[i], "source"), where, &l->source, err);
        l->require_tls = mv_cfg_bool(cf, "listener", names[i], "require_tls");
        sc->n_listeners++;
    }
    const char *const *cl = mv_cfg_list(cf, "serve", NULL, "clients", &n);
    b->clients = mv_xcalloc(n + 1, sizeof *b->clients);
    for (size_t i = 0; i < n && !st; i++) {
        char *w = (char *)keep(b, mv_xstrdup(cl[i]));
        char *eq = strchr(w, '=');
        if (eq) {
            *eq = 0;
            st = parse_kind(eq + 1, "[serve] clients", &b->clients[i].source, err);
            b->clients[i].has_source = 1;
        }
        b->clients[i].cidr = w;
        sc->n_clients++;
    }
    sc->clients = b->clients;
    const char *const *cn = mv_cfg_list(cf, "tls", NULL, "client_names", &n);
    b->certs = mv_xcalloc(n + 1, sizeof *b->certs);
    for (size_t i = 0; i < n && !st; i++) {
        char *w = (char *)keep(b, mv_xstrdup(cn[i]));
        char *eq = strchr(w, '=');
        if (!eq) {
            st = mv_err_set(err, MV_EUSAGE, "[tls] client_names: '%s' is not NAME=SOURCE-KIND", w);
            break;
        }
        *eq = 0;
        b->certs[i].name = w;
        st = parse_kind(eq + 1, "[tls] client_names", &b->certs[i].source, err);
        sc->n_certs++;
    }
    sc->certs = b->certs;
    sc->report_senders = (char *const *)mv_cfg_list(cf, "serve", NULL, "report_senders",
                                                     &sc->n_report_senders);
    sc->subaddress_base = mv_cfg_str(cf, "serve", NULL, "subaddress_base");
    const char *delim = mv_cfg_str(cf, "serve", NULL, "subaddress_delimiter");
    if (!st && (!delim || strlen(delim) != 1))
        st = mv_err_set(err, MV_EUSAGE, "[serve] subaddress_delimiter must be one character");
    sc->subaddress_delim = delim && *delim ? delim[0] : '+';
    sc->tls_cert = mv_cfg_str(cf, "tls", NULL, "cert");
    sc->tls_key = mv_cfg_str(cf, "tls", NULL, "key");
    sc->tls_client_ca = mv_cfg_str(cf, "tls", NULL, "client_ca");
    sc->tls_require_client_cert = mv_cfg_bool(cf, "tls", NULL, "require_client_cert");
    if (!st && sc->tls_require_client_cert && !(sc->tls_client_ca && *sc->tls_client_ca))
        st = mv_err_set(err, MV_EUSAGE, "[tls] require_client_cert needs client_ca");
    mv_smtp_limits_default(&sc->limits);
    sc->limits.max_message_bytes = mv_cfg_u64(cf, "limits", NULL, "message_size");
    sc->limits.max_recipients = (unsigned)mv_cfg_u64(cf, "limits", NULL, "recipients");
    sc->limits.max_command_line = (size_t)mv_cfg_u64(cf, "limits", NULL, "line_length");
    sc->limits.max_errors = (unsigned)mv_cfg_u64(cf, "limits", NULL, "errors");
    sc->max_sessions = (unsigned)mv_cfg_u64(cf, "limits", NULL, "sessions");
    sc->command_timeout_ms = mv_cfg_u64(cf, "limits", NULL, "command_timeout");
    sc->data_timeout_ms = mv_cfg_u64(cf, "limits", NULL, "data_timeout");
    sc->drain_timeout_ms = mv_cfg_u64(cf, "limits", NULL, "drain_timeout");
    if (!sc->drain_timeout_ms)
        sc->drain_timeout_ms = 1; /* 0 means "default" to the server */
    sc->queue_bytes = (size_t)mv_cfg_u64(cf, "limits", NULL, "queue");
    sc->pipeline.workers = (unsigned)mv_cfg_u64(cf, "serve", NULL, "workers");
    sc->pipeline.max_inflight_bytes = (size_t)mv_cfg_u64(cf, "limits", NULL, "pipeline_inflight");
    sc->listeners = b->ls;
    if (st)
        built_free(b);
    return st;
}

/* load_config - file, then options on top. */
static mv_status load_config(const serve_opts *o, const mv_cli *c, mv_cfg **out, mv_err *err)
{
    mv_cfg *cf = mv_cfg_new(schema, NSCHEMA);
    mv_status st = MV_OK;
    if (o->config)
        st = mv_cfg_load_file(cf, o->config, err);
    /* --archive, --key-file, --passphrase-file and their environment
     * variables win over the file when given */
    int archive_given = strcmp(c->archive, "./archive") != 0 || getenv("MAILVAULT_ARCHIVE");
    if (!st && (!o->config || archive_given))
        st = mv_cfg_set(cf, "archive", NULL, "dir", c->archive, err);
    if (!st && c->keys.key_file)
        st = mv_cfg_set(cf, "archive", NULL, "key_file", c->keys.key_file, err);
    if (!st && c->keys.passphrase_file)
        st = mv_cfg_set(cf, "archive", NULL, "passphrase_file", c->keys.passphrase_file, err);
    size_t nl;
    mv_cfg_instances(cf, "listener", &nl);
    int cli_listeners = o->n_smtp || o->n_lmtp;
    if (!st && !cli_listeners && !nl) {
        /* the embedded default, as `make demo` uses */
        const char *src = o->source ? o->source : "plain";
        if (!(st = mv_cfg_set(cf, "listener", "smtp", "listen", "127.0.0.1:2525", err)) &&
            !(st = mv_cfg_set(cf, "listener", "smtp", "source", src, err)) &&
            !(st = mv_cfg_set(cf, "listener", "lmtp", "protocol", "lmtp", err)) &&
            !(st = mv_cfg_set(cf, "listener", "lmtp", "listen", "127.0.0.1:2424", err)))
            st = mv_cfg_set(cf, "listener", "lmtp", "source", src, err);
    }
    for (int i = 0; !st && i < o->n_smtp + o->n_lmtp; i++) {
        int lmtp = i >= o->n_smtp;
        const char *addr = lmtp ? o->lmtp[i - o->n_smtp] : o->smtp[i];
        char name[32];
        int k = lmtp ? i - o->n_smtp : i;
        /* "cli-" names cannot clash with the file's (see build) */
        snprintf(name, sizeof name, "%s%d", lmtp ? "cli-lmtp" : "cli-smtp", k + 1);
        if (!(st = mv_cfg_set(cf, "listener", name, "protocol", lmtp ? "lmtp" : "smtp", err)) &&
            !(st = mv_cfg_set(cf, "listener", name, "listen", addr, err)) && o->source)
            st = mv_cfg_set(cf, "listener", name, "source", o->source, err);
    }
    if (!st && o->hostname)
        st = mv_cfg_set(cf, "serve", NULL, "hostname", o->hostname, err);
    if (!st && o->workers)
        st = mv_cfg_set(cf, "serve", NULL, "workers", o->workers, err);
    if (!st && o->control_mode)
        st = mv_cfg_set(cf, "serve", NULL, "control_mode", o->control_mode, err);
    if (!st && o->pid_file)
        st = mv_cfg_set(cf, "serve", NULL, "pid_file", o->pid_file, err);
    if (st) {
        mv_cfg_free(cf);
        return st;
    }
    *out = cf;
    return MV_OK;
}

/* ---- control socket ------------------------------------------------------- */

typedef struct control {
    int fd;
    char *path;
    mv_store *s;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int active;
    int wake[2];
} control;

typedef struct creq {
    control *ctl;
    int fd;
    uid_t uid;
} creq;

static void *control_req_main(void *arg)
{
    creq *r = arg;
    control *ctl = r->ctl;
    (void)cli_control_handle(r->fd, ctl->s, r->uid);
    close(r->fd);
    free(r);
    pthread_mutex_lock(&ctl->mu);
    ctl->active--;
    pthread_cond_broadcast(&ctl->cv);
    pthread_mutex_unlock(&ctl->mu);
    return NULL;
}

static void *control_main(void *arg)
{
    control *ctl = arg;
    for (;;) {
        struct pollfd pf[2] = {{.fd = ctl->fd, .events = POLLIN}, {.fd = ctl->wake[0], .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[1].revents)
            break;
        if (!(pf[0].revents & POLLIN))
            continue;
        int fd = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        struct ucred uc;
        socklen_t ul = sizeof uc;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) != 0) {
            close(fd);
            continue;
        }
        pthread_mutex_lock(&ctl->mu);
        int busy = ctl->active >= CONTROL_MAX;
        if (!busy)
            ctl->active++;
        pthread_mutex_unlock(&ctl->mu);
        if (busy) {
            /* a well-formed answer: exit 75 with a message */
            static const char msg[] = "mailvault: the daemon is busy, try again\n";
            uint8_t fr[5 + sizeof msg + 9];
            size_t k = 0;
            fr[k++] = 'E';
            mv_be32_put(fr + k, (uint32_t)(sizeof msg - 1));
            k += 4;
            memcpy(fr + k, msg, sizeof msg - 1);
            k += sizeof msg - 1;
            fr[k++] = 'X';
            mv_be32_put(fr + k, 4);
            k += 4;
            mv_be32_put(fr + k, EXIT_TEMPFAIL);
            k += 4;
            ssize_t w = send(fd, fr, k, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            close(fd);
            continue;
        }
        creq *r = mv_xcalloc(1, sizeof *r);
        r->ctl = ctl;
        r->fd = fd;
        r->uid = uc.uid;
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, control_req_main, r) != 0) {
            close(fd);
            free(r);
            pthread_mutex_lock(&ctl->mu);
            ctl->active--;
            pthread_mutex_unlock(&ctl->mu);
        }
        pthread_attr_destroy(&at);
    }
    return NULL;
}

/* another_daemon - 1 when something answers on the control socket. */
static int another_daemon(const char *path)
{
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof su.sun_path)
        return 0;
    snprintf(su.sun_path, sizeof su.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int r = connect(fd, (struct sockaddr *)&su, sizeof su);
    close(fd);
    return r == 0;
}

static mv_status control_start(control *ctl, mv_store *s, const char *path, unsigned mode,
                               mv_err *err)
{
    memset(ctl, 0, sizeof *ctl);
    ctl->s = s;
    ctl->fd = -1;
    pthread_mutex_init(&ctl->mu, NULL);
    pthread_cond_init(&ctl->cv, NULL);
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof su.sun_path)
        return mv_err_set(err, MV_EUSAGE, "control socket path too long: %s", path);
    snprintf(su.sun_path, sizeof su.sun_path, "%s", path);
    unlink(path); /* stale: we hold the archive lock */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0177);
    int r = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&su, sizeof su);
    umask(old);
    if (r != 0 || listen(fd, 64) != 0 || chmod(path, (mode_t)mode) != 0) {
        mv_err_sys(err, "control socket %s", path);
        if (fd >= 0)
            close(fd);
        return MV_EIO;
    }
    if (pipe2(ctl->wake, O_CLOEXEC) != 0) {
        close(fd);
        return mv_err_sys(err, "pipe");
    }
    ctl->fd = fd;
    ctl->path = mv_xstrdup(path);
    if (pthread_create(&ctl->th, NULL, control_main, ctl) != 0) {
        close(fd);
        return mv_err_set(err, MV_EINTERNAL, "cannot start the control thread");
    }
    return MV_OK;
}

static void control_stop(control *ctl)
{
    if (ctl->fd < 0)
        return;
    ssize_t w = write(ctl->wake[1], "x", 1);
    (void)w;
    pthread_join(ctl->th, NULL);
    close(ctl->fd);
    unlink(ctl->path);
    /* requests in progress finish before the store closes */
    pthread_mutex_lock(&ctl->mu);
    while (ctl->active)
        pthread_cond_wait(&ctl->cv, &ctl->mu);
    pthread_mutex_unlock(&ctl->mu);
    close(ctl->wake[0]);
    close(ctl->wake[1]);
    free(ctl->path);
    pthread_mutex_destroy(&ctl->mu);
    pthread_cond_destroy(&ctl->cv);
    ctl->fd = -1;
}

static void set_log_level(const char *lv)
{
    static const char *const names[] = {"debug", "info", "notice", "warning", "error"};
    for (int l = 0; l < 5; l++)
        if (lv && strcmp(lv, names[l]) == 0)
            mv_log_set_level(l);
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_GLOBAL_OPTS,
        {"config", required_argument, NULL, 'c'},
        {"smtp", required_argument, NULL, 's'},
        {"lmtp", required_argument, NULL, 'l'},
        {"source", required_argument, NULL, 'S'},
        {"hostname", required_argument, NULL, 'H'},
        {"workers", required_argument, NULL, 'w'},
        {"control-mode", required_argument, NULL, 'm'},
        {"pid-file", required_argument, NULL, 'p'},
        {"print-config", no_argument, NULL, 'C'},
        {"print-schema", no_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    mv_cli c;
    cli_init(&c, "serve");
    serve_opts o = {0};
    int rc = cli_getopt(&c, argc, argv, opts, opt_fn, &o, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi < argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[c.argi]);
    if (o.print_schema) {
        mv_cfg_print_schema_md(schema, NSCHEMA, cli_out);
        cli_free(&c);
        return EXIT_OK;
    }
    mv_err err = {0};
    mv_cfg *cf = NULL;
    mv_status st = load_config(&o, &c, &cf, &err);
    built b = {0};
    if (!st)
        st = build(cf, o.n_smtp + o.n_lmtp > 0, &b, &err);
    if (st) {
        fprintf(cli_err, "mailvault serve: %s\n", err.msg);
        mv_cfg_free(cf);
        cli_free(&c);
        return cli_exit_code(st);
    }
    if (o.print_config) {
        mv_cfg_print(cf, cli_out);
        built_free(&b);
        mv_cfg_free(cf);
        cli_free(&c);
        return EXIT_OK;
    }
    set_log_level(mv_cfg_str(cf, "serve", NULL, "log_level"));
    mv_log_set_ident("mailvault-serve");
    c.archive = mv_cfg_str(cf, "archive", NULL, "dir");
    c.keys.key_file = mv_cfg_str(cf, "archive", NULL, "key_file");
    c.keys.passphrase_file = mv_cfg_str(cf, "archive", NULL, "passphrase_file");
    if (c.keys.key_file && !*c.keys.key_file)
        c.keys.key_file = NULL;
    if (c.keys.passphrase_file && !*c.keys.passphrase_file)
        c.keys.passphrase_file = NULL;
    const char *cs = mv_cfg_str(cf, "serve", NULL, "control_socket");
    char *ctl_path = cs && *cs ? mv_xstrdup(cs) : cli_socket_path(c.archive);

    /* Signals go to the main thread only (sigwait below); every thread
     * started from here inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    mv_store *s = NULL;
    control ctl = {.fd = -1};
    mv_server *srv = NULL;
    mv_escrow *esc = NULL;
    int srv_started = 0;
    if (another_daemon(ctl_path)) {
        st = mv_err_set(&err, MV_ETEMP, "a daemon already serves this archive (%s answers)", ctl_path);
        goto done;
    }
    if ((st = cli_open(&c, &s, &err))) {
        if (st == MV_ETEMP)
            mv_err_prefix(&err, "another mailvault process has the archive open (a second daemon?): ");
        goto done;
    }
    if ((st = cli_require(&c, s, MV_USER_ADMIN, &err)))
        goto done;
    cli_detail(&c, "listeners=%zu", b.sc.n_listeners);
    if ((st = mv_escrow_load(s, &esc, &err)))
        goto done;
    b.sc.pipeline.escrow = esc;
    if ((st = mv_server_start(s, &b.sc, &srv, &err)))
        goto done;
    cli_server = srv;
    srv_started = 1;
    cli_checkpoint_every(s, (int64_t)(mv_cfg_u64(cf, "serve", NULL, "checkpoint_interval") / 1000));
    if ((st = cli_indexer_start(s, (unsigned)mv_cfg_u64(cf, "serve", NULL, "index_interval"),
                                &err)))
        goto done;
    if ((st = control_start(&ctl, s, ctl_path, (unsigned)mv_cfg_u64(cf, "serve", NULL, "control_mode"),
                            &err)))
        goto done;
    const char *pidf = mv_cfg_str(cf, "serve", NULL, "pid_file");
    if (pidf && *pidf) {
        char pid[32];
        int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if ((st = mv_write_file_atomic(pidf, pid, (size_t)n, 0644, &err)))
            goto done;
    }
    /* the start is evidence too: the audit trail shows when the archive
     * was open for mail (the stop is audited by cli_finish) */
    {
        char d[96];
        snprintf(d, sizeof d, "started listeners=%zu pid=%ld", b.sc.n_listeners, (long)getpid());
        mv_err aerr = {0};
        if (mv_store_audit(s, c.user, "serve", d, MV_OK, "ok", &aerr) != MV_OK)
            mv_log_warn("cannot audit the start: %s", aerr.msg);
    }
    mv_log_notice("serving %s (control socket %s)", c.archive, ctl_path);
    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGPIPE)
            continue;
        if (sig == SIGHUP) {
            if (!o.config) {
                mv_log_notice("SIGHUP: no config file to reload");
                continue;
            }
            mv_err rerr = {0};
            mv_cfg *ncf = NULL;
            built nb = {0};
            mv_status rs = load_config(&o, &c, &ncf, &rerr);
            if (!rs)
                rs = build(ncf, o.n_smtp + o.n_lmtp > 0, &nb, &rerr);
            if (!rs)
                rs = mv_server_reload(srv, &nb.sc, &rerr);
            if (rs) {
                mv_log_err("SIGHUP: reload refused, old settings kept: %s", rerr.msg);
            } else {
                set_log_level(mv_cfg_str(ncf, "serve", NULL, "log_level"));
                mv_log_notice("SIGHUP: settings reloaded (listeners unchanged)");
            }
            /* the old settings may still be borrowed by c: keep both */
            built_free(&nb);
            mv_cfg_free(ncf);
            continue;
        }
        mv_log_notice("%s: draining sessions", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
    }
done:
    /* control requests (status reads the server) end before the server */
    control_stop(&ctl);
    if (srv) {
        mv_err serr = {0};
        mv_status ss = mv_server_stop(srv, &serr);
        cli_server = NULL;
        if (ss && !st) {
            st = ss;
            err = serr;
        }
    }
    /* after the server drained: what it archived last is indexed at the
     * next start */
    cli_indexer_stop();
    if (srv_started) {
        /* a head over everything this run archived, for the next auditor */
        int signed_one;
        mv_err herr = {0};
        if (mv_store_checkpoint_due(s, 0, &signed_one, &herr))
            mv_log_warn("cannot sign the closing tree head: %s", herr.msg);
    }
    const char *pf = cf ? mv_cfg_str(cf, "serve", NULL, "pid_file") : NULL;
    if (srv_started && pf && *pf)
        unlink(pf);
    built_free(&b);
    mv_escrow_free(esc); /* after the pipeline stopped with the server */
    int code = cli_finish(&c, s, st, &err);
    mv_cfg_free(cf);
    free(ctl_path);
    return code;
}
