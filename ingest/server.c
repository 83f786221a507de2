/* SPDX-License-Identifier: MIT */
/* server.c - listeners, sessions, group-committed spool, pipeline feed.
 *
 * One thread per session with blocking I/O bounded by poll() timeouts:
 * sessions are few (journaling MTAs keep a handful of connections) and a
 * thread each keeps the protocol code linear.  Memory is bounded by
 * max_sessions x message size limit, plus queue_bytes, plus the
 * pipeline's in-flight limit - never by the load. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../lib/log.h"
#include "../lib/util.h"

#define MAX_LISTENERS 32
#define SPOOL_GROUP_MAX 512u              /* arrivals in one synced spool write */
#define SPOOL_GROUP_BYTES (32u << 20)
#define IO_TICK_MS 200                    /* how often a blocked session looks at the stop flag */
#define READ_CHUNK 65536

/* ---- configuration snapshots (replaced whole on reload) ---------------- */

typedef struct cidr {
    int family; /* AF_INET6 always: IPv4 kept as v4-mapped */
    uint8_t addr[16];
    unsigned prefix;
    mv_source_kind source;
    int has_source;
} cidr;

typedef struct snap {
    int refs;
    mv_server_conf c; /* deep copy */
    cidr *nets;
    size_t n_nets;
    SSL_CTX *tls;
    char hostname[256];
} snap;

typedef struct listener {
    int fd;
    mv_listener_conf c; /* name/listen copied */
    char *unix_path;
} listener;

typedef struct job job;

typedef struct session {
    struct session *next, *prev;
    mv_server *srv;
    listener *l;
    snap *cf;
    int fd;
    SSL *ssl;
    mv_smtp *e;
    mv_session_info info; /* guarded by srv->mu */
    uint8_t peer[16];     /* v4-mapped when IPv4 */
    int peer_is_ip;
    mv_source_kind source;
    char *cert_name;      /* verified client certificate's name */
    char tls_facts[128];
} session;

struct job {
    job *next;
    mv_spool_item it;
    /* owned until handed to the pipeline */
    uint8_t *data, *raw;
    char *mail_from, *facts, *note, *origin;
    char **rcpt;
    size_t n_rcpt;
    /* result, guarded by srv->mu */
    int done;
    mv_status st;
    char msg[sizeof(((mv_err *)0)->msg)];
};

struct mv_server {
    mv_store *s;
    mv_pipeline *pl;
    pthread_mutex_t mu;
    pthread_cond_t cv_spool, cv_done, cv_feed, cv_sessions;
    snap *cf;
    listener ls[MAX_LISTENERS];
    size_t n_ls;
    int wake[2];
    int stopping;          /* no new sessions; sessions finish */
    uint64_t spool_refs;   /* spooled by reference by an import: left for the next import */
    int64_t drain_deadline_us;
    pthread_t acceptor, spooler, feeder;
    session *sessions;
    size_t n_sessions;
    uint64_t next_session;
    job *spool_q, **spool_tail;
    job *feed_q, **feed_tail;
    size_t feed_bytes;
    int spooler_exit, feeder_exit;
    mv_status pipe_st;
    mv_err pipe_err;
    mv_server_status stat;  /* counters and errors (sessions filled on get) */
};

static void snap_unref(snap *c);

static void record_error(mv_server *srv, const char *fmt, ...) MV_PRINTF(2, 3);
static void record_error(mv_server *srv, const char *fmt, ...)
{
    char m[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    mv_log_warn("%s", m);
    pthread_mutex_lock(&srv->mu);
    mv_server_status *st = &srv->stat;
    size_t n = st->n_errors < MV_SERVER_ERRORS ? st->n_errors + 1 : MV_SERVER_ERRORS;
    memmove(st->errors[1], st->errors[0], (n - 1) * sizeof st->errors[0]);
    memmove(&st->error_time[1], &st->error_time[0], (n - 1) * sizeof st->error_time[0]);
    snprintf(st->errors[0], sizeof st->errors[0], "%s", m);
    st->error_time[0] = mv_now_us();
    st->n_errors = n;
    pthread_mutex_unlock(&srv->mu);
}

/* ---- addresses ---------------------------------------------------------- */

static int parse_ip(const char *s, uint8_t out[16])
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, s, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        return 4;
    }
    if (inet_pton(AF_INET6, s, &a6) == 1) {
        memcpy(out, &a6, 16);
        return 6;
    }
    return 0;
}

/* parse_cidr - "10.0.0.0/8", "::1", "192.0.2.7" (host). */
static mv_status parse_cidr(const char *text, cidr *c, mv_err *err)
{
    char tmp[80];
    if (strlen(text) >= sizeof tmp)
        return mv_err_set(err, MV_EUSAGE, "client network '%.80s' is too long", text);
    snprintf(tmp, sizeof tmp, "%s", text);
    char *slash = strchr(tmp, '/');
    if (slash)
        *slash = 0;
    int fam = parse_ip(tmp, c->addr);
    if (!fam)
        return mv_err_set(err, MV_EUSAGE, "client network '%s': not an IP address", text);
    unsigned max = fam == 4 ? 32 : 128, pfx = max;
    if (slash) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(slash + 1, &end, 10);
        if (!slash[1] || *end || errno || v > max)
            return mv_err_set(err, MV_EUSAGE, "client network '%s': bad prefix length", text);
        pfx = (unsigned)v;
    }
    c->family = AF_INET6;
    c->prefix = fam == 4 ? pfx + 96 : pfx;
    return MV_OK;
}

static int cidr_match(const cidr *c, const uint8_t a[16])
{
    unsigned bits = c->prefix;
    for (unsigned i = 0; i < 16 && bits; i++) {
        unsigned take = bits >= 8 ? 8 : bits;
        uint8_t mask = (uint8_t)(0xff << (8 - take));
        if ((a[i] & mask) != (c->addr[i] & mask))
            return 0;
        bits -= take;
    }
    return 1;
}

static void peer_text(const uint8_t a[16], char *out, size_t n)
{
    static const uint8_t v4pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, v4pfx, 12) == 0)
        inet_ntop(AF_INET, a + 12, out, (socklen_t)n);
    else
        inet_ntop(AF_INET6, a, out, (socklen_t)n);
}

/* ---- snapshots -------------------------------------------------------------- */

static char *dup0(const char *s)
{
    return s ? mv_xstrdup(s) : NULL;
}

static char **dup_list(char *const *v, size_t n)
{
    char **o = mv_xcalloc(n + 1, sizeof *o);
    for (size_t i = 0; i < n; i++)
        o[i] = mv_xstrdup(v[i]);
    return o;
}

static void free_list(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static mv_status tls_ctx(const mv_server_conf *c, SSL_CTX **out, mv_err *err)
{
    *out = NULL;
    if (!c->tls_cert || !*c->tls_cert || !c->tls_key || !*c->tls_key) {
        if ((c->tls_cert && *c->tls_cert) || (c->tls_key && *c->tls_key))
            return mv_err_set(err, MV_EUSAGE, "TLS needs both a certificate and a key file");
        return MV_OK;
    }
    SSL_CTX *x = SSL_CTX_new(TLS_server_method());
    if (!x)
        return mv_err_openssl(err, "creating the TLS context");
    SSL_CTX_set_min_proto_version(x, TLS1_2_VERSION);
    SSL_CTX_set_options(x, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(x, c->tls_cert) != 1) {
        SSL_CTX_free(x);
        mv_err_openssl(err, "loading the TLS certificate");
        mv_err_prefix(err, "%s: ", c->tls_cert);
        return MV_ECRYPTO;
    }
    if (SSL_CTX_use_PrivateKey_file(x, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(x) != 1) {
        SSL_CTX_free(x);
        mv_err_openssl(err, "loading the TLS key");
        mv_err_prefix(err, "%s: ", c->tls_key);
        return MV_ECRYPTO;
    }
    if (c->tls_client_ca && *c->tls_client_ca) {
        if (SSL_CTX_load_verify_locations(x, c->tls_client_ca, NULL) != 1) {
            SSL_CTX_free(x);
            mv_err_openssl(err, "loading the client CA");
            mv_err_prefix(err, "%s: ", c->tls_client_ca);
            return MV_ECRYPTO;
        }
        /* A required certificate fails the handshake when absent or
         * unverified; MAIL before STARTTLS gets 530 (tls_required). */
        SSL_CTX_set_verify(x, SSL_VERIFY_PEER | (c->tls_require_client_cert
                                                     ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
        SSL_CTX_set_client_CA_list(x, SSL_load_client_CA_file(c->tls_client_ca));
    }
    *out = x;
    return MV_OK;
}

static mv_status snap_new(const mv_server_conf *in, snap **out, mv_err *err)
{
    snap *c = mv_xcalloc(1, sizeof *c);
    c->refs = 1;
    c->c = *in;
    c->c.hostname = NULL; /* copied into c->hostname below */
    c->c.tls_cert = dup0(in->tls_cert);
    c->c.tls_key = dup0(in->tls_key);
    c->c.tls_client_ca = dup0(in->tls_client_ca);
    c->c.subaddress_base = dup0(in->subaddress_base);
    c->c.report_senders = dup_list(in->report_senders, in->n_report_senders);
    mv_cert_conf *certs = mv_xcalloc(in->n_certs + 1, sizeof *certs);
    for (size_t i = 0; i < in->n_certs; i++) {
        certs[i] = in->certs[i];
        certs[i].name = mv_xstrdup(in->certs[i].name);
    }
    c->c.certs = certs;
    c->c.listeners = NULL;
    c->c.n_listeners = 0;
    c->c.clients = NULL;
    if (!c->c.subaddress_delim)
        c->c.subaddress_delim = '+';
    if (!c->c.max_sessions)
        c->c.max_sessions = 100;
    if (!c->c.command_timeout_ms)
        c->c.command_timeout_ms = 300000;
    if (!c->c.data_timeout_ms)
        c->c.data_timeout_ms = 600000;
    if (!c->c.drain_timeout_ms)
        c->c.drain_timeout_ms = 30000;
    if (!c->c.queue_bytes)
        c->c.queue_bytes = 64u << 20;
    if (in->hostname && *in->hostname)
        snprintf(c->hostname, sizeof c->hostname, "%s", in->hostname);
    else if (gethostname(c->hostname, sizeof c->hostname - 1) != 0 || !c->hostname[0])
        snprintf(c->hostname, sizeof c->hostname, "localhost");
    mv_status st = MV_OK;
    if (in->n_clients == 0) {
        c->nets = mv_xcalloc(2, sizeof *c->nets);
        (void)parse_cidr("127.0.0.0/8", &c->nets[0], NULL);
        (void)parse_cidr("::1", &c->nets[1], NULL);
        c->n_nets = 2;
    } else {
        c->nets = mv_xcalloc(in->n_clients, sizeof *c->nets);
        for (size_t i = 0; i < in->n_clients && !st; i++) {
            st = parse_cidr(in->clients[i].cidr, &c->nets[i], err);
            c->nets[i].source = in->clients[i].source;
            c->nets[i].has_source = in->clients[i].has_source;
            c->n_nets++;
        }
    }
    if (!st)
        st = tls_ctx(&c->c, &c->tls, err);
    if (st) {
        snap_unref(c);
        return st;
    }
    *out = c;
    return MV_OK;
}

static void snap_unref(snap *c)
{
    if (!c || --c->refs > 0)
        return;
    free((char *)c->c.tls_cert);
    free((char *)c->c.tls_key);
    free((char *)c->c.tls_client_ca);
    free((char *)c->c.subaddress_base);
    free_list((char **)c->c.report_senders, c->c.n_report_senders);
    for (size_t i = 0; i < c->c.n_certs; i++)
        free((char *)c->c.certs[i].name);
    free((void *)c->c.certs);
    free(c->nets);
    SSL_CTX_free(c->tls);
    free(c);
}

/* snap_get - a reference to the current configuration (srv->mu held). */
static snap *snap_get(mv_server *srv)
{
    srv->cf->refs++;
    return srv->cf;
}

static void snap_put(mv_server *srv, snap *c)
{
    pthread_mutex_lock(&srv->mu);
    snap_unref(c);
    pthread_mutex_unlock(&srv->mu);
}

/* ---- listeners ------------------------------------------------------------------ */

static mv_status bind_listener(listener *l, mv_err *err)
{
    const char *a = l->c.listen;
    int fd = -1;
    if (strncmp(a, "unix:", 5) == 0) {
        struct sockaddr_un su = {.sun_family = AF_UNIX};
        if (strlen(a + 5) == 0 || strlen(a + 5) >= sizeof su.sun_path)
            return mv_err_set(err, MV_EUSAGE, "listener %s: bad UNIX socket path", l->c.name);
        snprintf(su.sun_path, sizeof su.sun_path, "%s", a + 5);
        /* A socket file left by a crashed daemon is stale: whether it is
         * ours is settled by the archive lock, which we already hold. */
        struct stat sb;
        if (lstat(su.sun_path, &sb) == 0 && S_ISSOCK(sb.st_mode))
            unlink(su.sun_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&su, sizeof su) != 0) {
            mv_err_sys(err, "listener %s: binding %s", l->c.name, su.sun_path);
            if (fd >= 0)
                close(fd);
            return MV_EIO;
        }
        /* Postfix delivers as its own user: group access is the usual
         * set-up (chgrp the socket's directory). */
        chmod(su.sun_path, 0660);
        l->unix_path = mv_xstrdup(su.sun_path);
    } else {
        char host[256];
        const char *port;
        if (a[0] == '[') {
            const char *e = strchr(a, ']');
            if (!e || e[1] != ':' || (size_t)(e - a - 1) >= sizeof host)
                return mv_err_set(err, MV_EUSAGE, "listener %s: '%s' is not [address]:port",
                                  l->c.name, a);
            memcpy(host, a + 1, (size_t)(e - a - 1));
            host[e - a - 1] = 0;
            port = e + 2;
        } else {
            const char *c = strrchr(a, ':');
            if (!c || (size_t)(c - a) >= sizeof host)
                return mv_err_set(err, MV_EUSAGE, "listener %s: '%s' is not address:port",
                                  l->c.name, a);
            memcpy(host, a, (size_t)(c - a));
            host[c - a] = 0;
            port = c + 1;
        }
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res = NULL;
        int gr = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
        if (gr != 0)
            return mv_err_set(err, MV_EUSAGE, "listener %s: '%s': %s", l->c.name, a,
                              gai_strerror(gr));
        fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd >= 0)
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
            mv_err_sys(err, "listener %s: binding %s", l->c.name, a);
            if (fd >= 0)
                close(fd);
            freeaddrinfo(res);
            return MV_EIO;
        }
        freeaddrinfo(res);
    }
    if (listen(fd, 128) != 0) {
        close(fd);
        return mv_err_sys(err, "listener %s: listen", l->c.name);
    }
    l->fd = fd;
    return MV_OK;
}

/* ---- session I/O ------------------------------------------------------------------ */

static int stopping(mv_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    int v = srv->stopping;
    pthread_mutex_unlock(&srv->mu);
    return v;
}

static void set_state(session *x, const char *state)
{
    pthread_mutex_lock(&x->srv->mu);
    snprintf(x->info.state, sizeof x->info.state, "%s", state);
    pthread_mutex_unlock(&x->srv->mu);
}

/* io_write - the whole buffer, or -1. */
static int io_write(session *x, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w;
        if (x->ssl) {
            int r = SSL_write(x->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            if (r <= 0)
                return -1;
            w = r;
        } else {
            w = send(x->fd, p, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int flush_out(session *x)
{
    size_t n;
    const uint8_t *p = mv_smtp_output(x->e, &n);
    if (!n)
        return 0;
    int r = io_write(x, p, n);
    mv_smtp_output_consumed(x->e, n);
    return r;
}

/* io_read - >0 bytes, 0 EOF, -1 error, -2 timeout, -3 stop requested
 * (only reported when may_stop). */
static ssize_t io_read(session *x, uint8_t *buf, size_t n, uint64_t timeout_ms, int may_stop)
{
    int64_t deadline = mv_now_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        if (x->ssl && SSL_pending(x->ssl) > 0)
            break;
        if (may_stop && stopping(x->srv))
            return -3;
        struct pollfd pf = {.fd = x->fd, .events = POLLIN};
        int r = poll(&pf, 1, IO_TICK_MS);
        if (r > 0)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (mv_now_us() >= deadline)
            return -2;
        if (!may_stop) {
            /* in the middle of a message: the drain deadline still ends it */
            pthread_mutex_lock(&x->srv->mu);
            int late = x->srv->stopping && mv_now_us() > x->srv->drain_deadline_us;
            pthread_mutex_unlock(&x->srv->mu);
            if (late)
                return -3;
        }
    }
    if (x->ssl) {
        int r = SSL_read(x->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(x->ssl, r);
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    for (;;) {
        ssize_t r = recv(x->fd, buf, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? -1 : r;
    }
}

static const char *name_of_cert(X509 *cert, char *out, size_t n)
{
    out[0] = 0;
    X509_NAME *sn = X509_get_subject_name(cert);
    if (sn)
        X509_NAME_get_text_by_NID(sn, NID_commonName, out, (int)n);
    return out;
}

/* cert_matches - the configured name equals the certificate's CN or one
 * of its DNS subjectAltNames. */
static int cert_matches(X509 *cert, const char *name)
{
    return X509_check_host(cert, name, strlen(name), X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1;
}

static int do_tls(session *x)
{
    set_state(x, "tls");
    x->ssl = SSL_new(x->cf->tls);
    if (!x->ssl)
        return -1;
    SSL_set_fd(x->ssl, x->fd);
    /* The handshake is bounded by the command timeout through the
     * socket's own timeouts (blocking socket). */
    struct timeval tv = {.tv_sec = (time_t)(x->cf->c.command_timeout_ms / 1000),
                         .tv_usec = (suseconds_t)(x->cf->c.command_timeout_ms % 1000) * 1000};
    setsockopt(x->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int r = SSL_accept(x->ssl);
    /* From here SSL_read may block inside a record a client never
     * finishes: the socket's own timeout bounds it (data timeout, the
     * longer of the two). */
    uint64_t ms = x->cf->c.data_timeout_ms > x->cf->c.command_timeout_ms ? x->cf->c.data_timeout_ms
                                                                         : x->cf->c.command_timeout_ms;
    struct timeval after = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    setsockopt(x->fd, SOL_SOCKET, SO_RCVTIMEO, &after, sizeof after);
    if (r != 1) {
        unsigned long e = ERR_peek_last_error();
        char buf[120];
        ERR_error_string_n(e, buf, sizeof buf);
        ERR_clear_error();
        mv_log_info("session %llu: TLS handshake failed: %s", (unsigned long long)x->info.id, buf);
        return -1;
    }
    snprintf(x->tls_facts, sizeof x->tls_facts, "%s %s", SSL_get_version(x->ssl),
             SSL_get_cipher_name(x->ssl));
    X509 *cert = SSL_get1_peer_certificate(x->ssl);
    if (cert && SSL_get_verify_result(x->ssl) == X509_V_OK) {
        char cn[256];
        x->cert_name = mv_xstrdup(name_of_cert(cert, cn, sizeof cn));
        for (size_t i = 0; i < x->cf->c.n_certs; i++)
            if (cert_matches(cert, x->cf->c.certs[i].name)) {
                x->source = x->cf->c.certs[i].source;
                break;
            }
    }
    X509_free(cert);
    pthread_mutex_lock(&x->srv->mu);
    x->info.tls = 1;
    pthread_mutex_unlock(&x->srv->mu);
    return 0;
}

/* ---- building an arrival -------------------------------------------------------- */

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->data);
    free(j->raw);
    free(j->mail_from);
    free(j->facts);
    free(j->note);
    free(j->origin);
    free_list(j->rcpt, j->n_rcpt);
    free(j);
}

static void add_rcpt(job *j, size_t *cap, mv_rcpt_role role, const char *addr, const char *exp,
                     const char *fwd)
{
    if (j->n_rcpt == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        j->rcpt = mv_xrealloc(j->rcpt, (*cap + 1) * sizeof *j->rcpt);
    }
    mv_env_rcpt r = {.role = role, .addr = (char *)addr, .expanded = (char *)exp,
                     .forwarded = (char *)fwd};
    j->rcpt[j->n_rcpt++] = mv_env_rcpt_format(&r);
    j->rcpt[j->n_rcpt] = NULL;
}

static void note_add(mv_buf *note, const char *text)
{
    if (note->len)
        mv_buf_append_str(note, "; ");
    mv_buf_append_str(note, text);
}

static int sender_allowed(const snap *cf, const char *from)
{
    if (!cf->c.n_report_senders)
        return 1;
    for (size_t i = 0; i < cf->c.n_report_senders; i++)
        if (strcasecmp(cf->c.report_senders[i], from) == 0)
            return 1;
    return 0;
}

/* make_job - the arrival for a finished transaction: what is believed
 * depends on the source kind of this client (DESIGN.md §4). */
static job *make_job(session *x, const mv_smtp_txn *t, uint8_t *data, size_t len)
{
    job *j = mv_xcalloc(1, sizeof *j);
    const snap *cf = x->cf;
    size_t cap = 0;
    mv_buf note = MV_BUF_INIT, facts = MV_BUF_INIT;
    char peer[INET6_ADDRSTRLEN] = "local";
    if (x->peer_is_ip)
        peer_text(x->peer, peer, sizeof peer);
    mv_buf_printf(&facts, "listener=%s; proto=%s%s; client=%s; helo=%s; source-kind=%s",
                  x->l->c.name, x->l->c.proto == MV_LMTP ? "LMTP" : "ESMTP", x->ssl ? "S" : "", peer,
                  t->helo ? t->helo : "", mv_source_kind_name(x->source));
    if (x->ssl)
        mv_buf_printf(&facts, "; tls=%s", x->tls_facts);
    if (x->cert_name)
        mv_buf_printf(&facts, "; client-cert=%s", x->cert_name);
    mv_buf_printf(&facts, "; smtp-from=<%s>", t->mail_from ? t->mail_from : "");
    for (size_t i = 0; i < t->n_rcpt; i++)
        mv_buf_printf(&facts, "; smtp-rcpt=<%s>", t->rcpt[i]);
    if (t->used_bdat)
        mv_buf_append_str(&facts, "; chunking=yes");
    if (t->bare_lf)
        note_add(&note, "defect: bare LF in the data, kept as received");
    if (t->bare_cr)
        note_add(&note, "defect: bare CR in the data, kept as received");

    j->data = data;
    j->it.data = data;
    j->it.len = len;
    j->mail_from = dup0(t->mail_from);
    int envelope_done = 0;

    if (mv_journal_detect(data, len)) {
        if (x->source != MV_SRC_EXCHANGE_JOURNAL) {
            note_add(&note, "journal report from a source not configured as exchange-journal: "
                            "archived as plain mail, its envelope not believed");
        } else if (!sender_allowed(cf, t->mail_from ? t->mail_from : "")) {
            note_add(&note, "journal report from a sender not listed in report_senders: "
                            "archived as plain mail, its envelope not believed");
        } else {
            mv_journal_limits lim;
            mv_journal_limits_default(&lim);
            mv_journal jr;
            mv_err e = {0};
            if (mv_journal_parse(data, len, &lim, &jr, &e) == MV_OK) {
                if (jr.inner && jr.inner_len) {
                    /* the original is the message; the copy keeps the report */
                    uint8_t *inner = mv_xmalloc(jr.inner_len + 1);
                    memcpy(inner, jr.inner, jr.inner_len);
                    inner[jr.inner_len] = 0;
                    j->raw = data;
                    j->it.raw = data;
                    j->it.raw_len = len;
                    j->data = inner;
                    j->it.data = inner;
                    j->it.len = jr.inner_len;
                }
                if (jr.defects) {
                    char d[200];
                    mv_journal_defects_str(jr.defects, d, sizeof d);
                    char *n = mv_xasprintf("journal report defects: %s%s", d,
                                           jr.inner ? "" : " (kept whole)");
                    note_add(&note, n);
                    free(n);
                }
                free(j->mail_from);
                j->mail_from = dup0(jr.sender);
                for (size_t i = 0; i < jr.n_rcpt; i++)
                    add_rcpt(j, &cap, jr.rcpt[i].role, jr.rcpt[i].addr, jr.rcpt[i].expanded,
                             jr.rcpt[i].forwarded);
                mv_buf_printf(&facts, "; journal=exchange-%d", jr.generation);
                envelope_done = 1;
                mv_journal_free(&jr);
            } else {
                note_add(&note, "journal report could not be read: kept whole as plain mail");
            }
        }
    }
    if (!envelope_done && x->source == MV_SRC_POSTFIX_BCC && cf->c.subaddress_base &&
        *cf->c.subaddress_base) {
        for (size_t i = 0; i < t->n_rcpt; i++) {
            char *d = mv_subaddr_decode(t->rcpt[i], cf->c.subaddress_base, cf->c.subaddress_delim);
            if (d)
                add_rcpt(j, &cap, MV_ROLE_DECODED, d, NULL, NULL);
            free(d);
        }
        envelope_done = j->n_rcpt > 0;
    }
    if (!envelope_done && x->source == MV_SRC_GOOGLE_ROUTING) {
        char **to = NULL;
        size_t n = 0;
        if (mv_gm_original_to(data, len, &to, &n, NULL) == MV_OK) {
            for (size_t i = 0; i < n; i++)
                add_rcpt(j, &cap, MV_ROLE_ORIGINAL_TO, to[i], NULL, NULL);
            free_list(to, n);
        }
        envelope_done = j->n_rcpt > 0;
    }
    if (!envelope_done)
        for (size_t i = 0; i < t->n_rcpt; i++)
            add_rcpt(j, &cap, MV_ROLE_RCPT, t->rcpt[i], NULL, NULL);

    j->origin = mv_xstrdup(x->l->c.name);
    j->facts = (char *)mv_buf_steal(&facts, NULL);
    j->note = note.len ? (char *)mv_buf_steal(&note, NULL) : NULL;
    mv_buf_free(&note);
    mv_arrival *a = &j->it.arr;
    a->received_us = mv_now_us();
    a->source = x->l->c.proto == MV_LMTP ? "lmtp" : "smtp";
    a->origin = j->origin;
    a->mail_from = j->mail_from;
    a->rcpt = j->rcpt;
    a->n_rcpt = j->n_rcpt;
    a->facts = j->facts;
    a->note = j->note;
    return j;
}

/* ---- spool group commit ---------------------------------------------------------- */

/* spool_wait - queue j for the spooler and wait for its durable write. */
static void spool_wait(mv_server *srv, job *j)
{
    pthread_mutex_lock(&srv->mu);
    j->next = NULL;
    *srv->spool_tail = j;
    srv->spool_tail = &j->next;
    pthread_cond_signal(&srv->cv_spool);
    while (!j->done)
        pthread_cond_wait(&srv->cv_done, &srv->mu);
    pthread_mutex_unlock(&srv->mu);
}

static void *spooler_main(void *arg)
{
    mv_server *srv = arg;
    job *group[SPOOL_GROUP_MAX];
    mv_spool_item items[SPOOL_GROUP_MAX];
    pthread_mutex_lock(&srv->mu);
    for (;;) {
        while (!srv->spool_q && !srv->spooler_exit)
            pthread_cond_wait(&srv->cv_spool, &srv->mu);
        if (!srv->spool_q && srv->spooler_exit)
            break;
        /* back-pressure: acknowledged bytes waiting for the pipeline are
         * bounded; sessions wait (their clients' data timeout is long) */
        while (srv->feed_bytes > srv->cf->c.queue_bytes && !srv->feeder_exit)
            pthread_cond_wait(&srv->cv_feed, &srv->mu);
        size_t n = 0, bytes = 0;
        while (srv->spool_q && n < SPOOL_GROUP_MAX && bytes < SPOOL_GROUP_BYTES) {
            job *j = srv->spool_q;
            srv->spool_q = j->next;
            group[n] = j;
            items[n] = j->it;
            bytes += j->it.len + j->it.raw_len;
            n++;
        }
        if (!srv->spool_q)
            srv->spool_tail = &srv->spool_q;
        pthread_mutex_unlock(&srv->mu);

        mv_err err = {0};
        mv_status st = mv_spool_add(srv->s, items, n, &err);
        if (st)
            record_error(srv, "spool write failed (%u arrivals answered 451): %s", (unsigned)n,
                         err.msg);

        pthread_mutex_lock(&srv->mu);
        srv->stat.spool_syncs += !st;
        for (size_t i = 0; i < n; i++) {
            job *j = group[i];
            j->st = st;
            snprintf(j->msg, sizeof j->msg, "%s", st ? err.msg : "");
            if (!st) {
                /* a durable copy exists: hand a twin to the feeder, which
                 * owns the bytes from here */
                job *f = mv_xcalloc(1, sizeof *f);
                *f = *j;
                f->it.seq = items[i].seq;
                f->next = NULL;
                j->data = j->raw = NULL;
                j->mail_from = j->facts = j->note = j->origin = NULL;
                j->rcpt = NULL;
                j->n_rcpt = 0;
                j->it.seq = items[i].seq;
                *srv->feed_tail = f;
                srv->feed_tail = &f->next;
                srv->feed_bytes += f->it.len + f->it.raw_len;
            }
            j->done = 1;
        }
        pthread_cond_broadcast(&srv->cv_done);
        pthread_cond_broadcast(&srv->cv_feed);
    }
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

static void *feeder_main(void *arg)
{
    mv_server *srv = arg;
    pthread_mutex_lock(&srv->mu);
    for (;;) {
        while (!srv->feed_q && !srv->feeder_exit)
            pthread_cond_wait(&srv->cv_feed, &srv->mu);
        if (!srv->feed_q)
            break;
        job *f = srv->feed_q;
        srv->feed_q = f->next;
        if (!srv->feed_q)
            srv->feed_tail = &srv->feed_q;
        int dead = srv->pipe_st != MV_OK;
        pthread_mutex_unlock(&srv->mu);

        size_t sz = f->it.len + f->it.raw_len;
        if (!dead) {
            mv_err err = {0};
            f->it.data = f->data;
            f->it.raw = f->raw;
            mv_status st = mv_pipeline_submit_take(srv->pl, &f->it, &err);
            f->data = f->raw = NULL;
            if (st) {
                record_error(srv, "pipeline stopped: %s (arrivals stay in the spool until restart)",
                             err.msg);
                pthread_mutex_lock(&srv->mu);
                srv->pipe_st = st;
                srv->pipe_err = err;
                pthread_mutex_unlock(&srv->mu);
            }
        }
        job_free(f);
        pthread_mutex_lock(&srv->mu);
        srv->feed_bytes -= sz;
        pthread_cond_broadcast(&srv->cv_feed);
    }
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

/* ---- a session ---------------------------------------------------------------------- */

static void handle_message(session *x)
{
    mv_server *srv = x->srv;
    const mv_smtp_txn *t = mv_smtp_message(x->e);
    size_t len = 0;
    uint8_t *data = mv_smtp_take_data(x->e, &len);
    if (!data) {
        data = mv_xmalloc(1);
        data[0] = 0;
        len = 0;
    }
    set_state(x, "spooling");
    job *j = make_job(x, t, data, len);
    spool_wait(srv, j);
    if (j->st == MV_OK) {
        char qid[32];
        snprintf(qid, sizeof qid, "S%llu", (unsigned long long)j->it.seq);
        mv_smtp_reply_accept(x->e, qid);
        mv_log_info("session %llu: accepted spool=%llu size=%zu rcpt=%zu", (unsigned long long)x->info.id,
                    (unsigned long long)j->it.seq, len, j->n_rcpt ? j->n_rcpt : j->it.arr.n_rcpt);
        pthread_mutex_lock(&srv->mu);
        srv->stat.accepted++;
        srv->stat.accepted_bytes += len;
        x->info.messages++;
        x->info.bytes += len;
        pthread_mutex_unlock(&srv->mu);
    } else {
        /* Disk full is worth its own code (RFC 3463 4.3.1); everything
         * else is "try again": the sender keeps the message. */
        if (strstr(j->msg, "No space left"))
            mv_smtp_reply_reject(x->e, 452, "4.3.1", "Insufficient system storage");
        else
            mv_smtp_reply_tempfail(x->e, "Cannot store the message now, try again later");
        pthread_mutex_lock(&srv->mu);
        srv->stat.tempfailed++;
        pthread_mutex_unlock(&srv->mu);
    }
    job_free(j);
    set_state(x, "command");
}

static void session_loop(session *x)
{
    mv_server *srv = x->srv;
    uint8_t *in = mv_xmalloc(READ_CHUNK);
    size_t in_len = 0, in_off = 0;
    for (;;) {
        while (in_off < in_len) {
            size_t k = mv_smtp_feed(x->e, in + in_off, in_len - in_off);
            in_off += k;
            mv_smtp_ev ev = mv_smtp_event(x->e);
            if (ev == MV_SMTP_EV_MESSAGE) {
                handle_message(x);
                continue;
            }
            if (ev == MV_SMTP_EV_STARTTLS) {
                if (flush_out(x) != 0)
                    goto out;
                /* bytes sent after STARTTLS before the handshake are
                 * plaintext injection (CVE-2011-0411 class): dropped */
                in_off = in_len = 0;
                if (!x->cf->tls || do_tls(x) != 0)
                    goto out;
                mv_smtp_tls_started(x->e);
                set_state(x, "command");
                break;
            }
            if (ev == MV_SMTP_EV_CLOSE)
                goto out_flush;
            if (k == 0)
                break; /* output pressure: send first */
        }
        if (in_off >= in_len)
            in_off = in_len = 0;
        if (flush_out(x) != 0)
            goto out;
        if (in_off < in_len)
            continue;
        int busy = mv_smtp_in_data(x->e);
        set_state(x, busy ? "data" : "command");
        ssize_t r = io_read(x, in, READ_CHUNK, busy ? x->cf->c.data_timeout_ms
                                                    : x->cf->c.command_timeout_ms, !busy);
        if (r == -2) {
            mv_smtp_timeout(x->e);
            goto out_flush;
        }
        if (r == -3) {
            mv_smtp_shutdown(x->e);
            goto out_flush;
        }
        if (r <= 0)
            goto out;
        in_len = (size_t)r;
        in_off = 0;
    }
out_flush:
    (void)flush_out(x);
out:
    free(in);
    (void)srv;
}

static void *session_main(void *arg)
{
    session *x = arg;
    mv_server *srv = x->srv;
    mv_smtp_opts o = {0};
    o.proto = x->l->c.proto;
    o.hostname = x->cf->hostname;
    o.tls_offer = x->cf->tls != NULL;
    o.tls_required = x->l->c.require_tls || x->cf->c.tls_require_client_cert;
    o.lim = x->cf->c.limits;
    x->e = mv_smtp_new(&o);
    session_loop(x);
    /* Client certificates are required: without a verified one the
     * engine's TLS requirement already refused MAIL (530). */
    mv_smtp_counters cnt;
    mv_smtp_counters_get(x->e, &cnt);
    mv_log_info("session %llu: closed messages=%llu bytes=%llu commands=%llu errors=%llu",
                (unsigned long long)x->info.id, (unsigned long long)cnt.messages,
                (unsigned long long)cnt.bytes, (unsigned long long)cnt.commands,
                (unsigned long long)cnt.errors);
    mv_smtp_free(x->e);
    if (x->ssl) {
        SSL_shutdown(x->ssl);
        SSL_free(x->ssl);
    }
    close(x->fd);
    free(x->cert_name);
    snap_put(srv, x->cf);
    pthread_mutex_lock(&srv->mu);
    if (x->prev)
        x->prev->next = x->next;
    else
        srv->sessions = x->next;
    if (x->next)
        x->next->prev = x->prev;
    srv->n_sessions--;
    pthread_cond_broadcast(&srv->cv_sessions);
    pthread_mutex_unlock(&srv->mu);
    free(x);
    return NULL;
}

/* refuse - a one-line answer to a connection we will not serve. */
static void refuse(int fd, const char *line)
{
    ssize_t w = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    close(fd);
}

static void accept_one(mv_server *srv, listener *l)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    uint8_t peer[16] = {0};
    int is_ip = 0;
    if (ss.ss_family == AF_INET) {
        peer[10] = peer[11] = 0xff;
        memcpy(peer + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        is_ip = 1;
    } else if (ss.ss_family == AF_INET6) {
        memcpy(peer, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        is_ip = 1;
    }
    pthread_mutex_lock(&srv->mu);
    snap *cf = snap_get(srv);
    mv_source_kind src = l->c.source;
    int allowed = !is_ip; /* UNIX sockets: the file mode decides */
    for (size_t i = 0; is_ip && i < cf->n_nets; i++)
        if (cidr_match(&cf->nets[i], peer)) {
            allowed = 1;
            if (cf->nets[i].has_source)
                src = cf->nets[i].source;
            break;
        }
    if (!allowed) {
        srv->stat.refused_network++;
        snap_unref(cf);
        pthread_mutex_unlock(&srv->mu);
        char host[INET6_ADDRSTRLEN];
        peer_text(peer, host, sizeof host);
        /* An address outside the allow-list is logged: it is the
         * connecting host, not a mail address, and the operator needs it. */
        mv_log_notice("listener %s: refused a client outside the allowed networks (%s)",
                      l->c.name, host);
        refuse(fd, "554 5.7.1 Client host not allowed to submit to this archive\r\n");
        return;
    }
    if (srv->n_sessions >= cf->c.max_sessions || srv->stopping) {
        srv->stat.refused_busy += !srv->stopping;
        int stop = srv->stopping;
        snap_unref(cf);
        pthread_mutex_unlock(&srv->mu);
        refuse(fd, stop ? "421 4.3.2 Service shutting down\r\n"
                        : "421 4.7.0 Too many sessions, try again later\r\n");
        return;
    }
    session *x = mv_xcalloc(1, sizeof *x);
    x->srv = srv;
    x->l = l;
    x->cf = cf;
    x->fd = fd;
    x->source = src;
    memcpy(x->peer, peer, 16);
    x->peer_is_ip = is_ip;
    x->info.id = ++srv->next_session;
    snprintf(x->info.listener, sizeof x->info.listener, "%s", l->c.name);
    if (is_ip)
        peer_text(peer, x->info.client, sizeof x->info.client);
    else
        snprintf(x->info.client, sizeof x->info.client, "local");
    snprintf(x->info.state, sizeof x->info.state, "command");
    x->info.started_us = mv_now_us();
    x->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = x;
    srv->sessions = x;
    srv->n_sessions++;
    srv->stat.sessions_total++;
    pthread_mutex_unlock(&srv->mu);
    if (is_ip) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    /* a client that stops reading our replies must not hold a session
     * thread for ever: sends give up after the command timeout */
    struct timeval snd = {.tv_sec = (time_t)(cf->c.command_timeout_ms / 1000),
                          .tv_usec = (suseconds_t)(cf->c.command_timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 << 10);
    pthread_t th;
    if (pthread_create(&th, &at, session_main, x) != 0) {
        pthread_attr_destroy(&at);
        record_error(srv, "cannot start a session thread");
        pthread_mutex_lock(&srv->mu);
        if (x->next)
            x->next->prev = NULL;
        srv->sessions = x->next;
        srv->n_sessions--;
        snap_unref(cf);
        pthread_mutex_unlock(&srv->mu);
        refuse(fd, "421 4.3.0 Cannot serve now, try again later\r\n");
        free(x);
        return;
    }
    pthread_attr_destroy(&at);
}

static void *acceptor_main(void *arg)
{
    mv_server *srv = arg;
    struct pollfd pf[MAX_LISTENERS + 1];
    for (;;) {
        size_t n = 0;
        pf[n++] = (struct pollfd){.fd = srv->wake[0], .events = POLLIN};
        for (size_t i = 0; i < srv->n_ls; i++)
            pf[n++] = (struct pollfd){.fd = srv->ls[i].fd, .events = POLLIN};
        int r = poll(pf, n, -1);
        if (r < 0 && errno != EINTR)
            break;
        if (pf[0].revents)
            break;
        for (size_t i = 1; i < n; i++)
            if (pf[i].revents & POLLIN)
                accept_one(srv, &srv->ls[i - 1]);
    }
    return NULL;
}

/* ---- start, stop, status -------------------------------------------------------------- */

static mv_status replay_one(void *ctx, const mv_spool_item *it, mv_err *err)
{
    mv_server *srv = ctx;
    if (it->ref_sha256) {
        /* spooled by an interrupted import, by reference to its source
         * file: the next `mailvault import` reads it back */
        srv->spool_refs++;
        return MV_OK;
    }
    return mv_pipeline_submit(srv->pl, it, err);
}

mv_status mv_server_start(mv_store *s, const mv_server_conf *conf, mv_server **out, mv_err *err)
{
    *out = NULL;
    if (conf->n_listeners == 0)
        return mv_err_set(err, MV_EUSAGE, "no listener configured");
    if (conf->n_listeners > MAX_LISTENERS)
        return mv_err_set(err, MV_EUSAGE, "at most %d listeners", MAX_LISTENERS);
    mv_server *srv = mv_xcalloc(1, sizeof *srv);
    srv->s = s;
    srv->wake[0] = srv->wake[1] = -1;
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cv_spool, NULL);
    pthread_cond_init(&srv->cv_done, NULL);
    pthread_cond_init(&srv->cv_feed, NULL);
    pthread_cond_init(&srv->cv_sessions, NULL);
    srv->spool_tail = &srv->spool_q;
    srv->feed_tail = &srv->feed_q;
    srv->stat.started_us = mv_now_us();
    for (size_t i = 0; i < conf->n_listeners; i++)
        srv->ls[i].fd = -1;
    mv_status st = snap_new(conf, &srv->cf, err);
    for (size_t i = 0; !st && i < conf->n_listeners; i++) {
        listener *l = &srv->ls[i];
        l->c = conf->listeners[i];
        l->c.name = mv_xstrdup(conf->listeners[i].name);
        l->c.listen = mv_xstrdup(conf->listeners[i].listen);
        srv->n_ls++;
        if (l->c.require_tls && !srv->cf->tls)
            st = mv_err_set(err, MV_EUSAGE, "listener %s requires TLS but no certificate is set",
                            l->c.name);
    }
    /* Every acknowledged arrival left by a crash goes in before new mail. */
    if (!st)
        st = mv_pipeline_start(s, &conf->pipeline, &srv->pl, err);
    uint64_t pending = mv_spool_count(s);
    if (!st && pending) {
        mv_log_notice("resuming %llu accepted arrivals from the spool", (unsigned long long)pending);
        st = mv_spool_replay(s, replay_one, srv, err);
        if (!st && srv->spool_refs)
            mv_log_notice("%llu of them were spooled by an interrupted import and are read back "
                          "from their files by the next `mailvault import`",
                          (unsigned long long)srv->spool_refs);
    }
    for (size_t i = 0; !st && i < srv->n_ls; i++)
        st = bind_listener(&srv->ls[i], err);
    if (!st && pipe2(srv->wake, O_CLOEXEC) != 0)
        st = mv_err_sys(err, "pipe");
    if (!st && pthread_create(&srv->spooler, NULL, spooler_main, srv) != 0)
        st = mv_err_set(err, MV_EINTERNAL, "cannot start the spool thread");
    if (!st && pthread_create(&srv->feeder, NULL, feeder_main, srv) != 0) {
        st = mv_err_set(err, MV_EINTERNAL, "cannot start the feeder thread");
        pthread_mutex_lock(&srv->mu);
        srv->spooler_exit = 1;
        pthread_cond_broadcast(&srv->cv_spool);
        pthread_mutex_unlock(&srv->mu);
        pthread_join(srv->spooler, NULL);
    }
    if (!st && pthread_create(&srv->acceptor, NULL, acceptor_main, srv) != 0)
        st = mv_err_set(err, MV_EINTERNAL, "cannot start the acceptor thread");
    if (st) {
        /* threads started only when every step before succeeded: here
         * none but possibly spooler/feeder (acceptor failure) */
        if (srv->feeder) {
            pthread_mutex_lock(&srv->mu);
            srv->spooler_exit = srv->feeder_exit = 1;
            pthread_cond_broadcast(&srv->cv_spool);
            pthread_cond_broadcast(&srv->cv_feed);
            pthread_mutex_unlock(&srv->mu);
            pthread_join(srv->spooler, NULL);
            pthread_join(srv->feeder, NULL);
        }
        if (srv->pl) {
            mv_err e2 = {0};
            if (mv_pipeline_finish(srv->pl, NULL, &e2) != MV_OK)
                mv_log_warn("stopping the pipeline: %s", e2.msg);
        }
        for (size_t i = 0; i < srv->n_ls; i++) {
            if (srv->ls[i].fd >= 0)
                close(srv->ls[i].fd);
            if (srv->ls[i].unix_path)
                unlink(srv->ls[i].unix_path);
            free(srv->ls[i].unix_path);
            free((char *)srv->ls[i].c.name);
            free((char *)srv->ls[i].c.listen);
        }
        if (srv->wake[0] >= 0) {
            close(srv->wake[0]);
            close(srv->wake[1]);
        }
        snap_unref(srv->cf);
        pthread_mutex_destroy(&srv->mu);
        free(srv);
        return st;
    }
    for (size_t i = 0; i < srv->n_ls; i++)
        mv_log_notice("listening: %s %s on %s (source %s%s)", srv->ls[i].c.name,
                      srv->ls[i].c.proto == MV_LMTP ? "LMTP" : "SMTP", srv->ls[i].c.listen,
                      mv_source_kind_name(srv->ls[i].c.source),
                      srv->ls[i].c.require_tls ? ", TLS required" : "");
    *out = srv;
    return MV_OK;
}

mv_status mv_server_reload(mv_server *srv, const mv_server_conf *conf, mv_err *err)
{
    snap *n;
    mv_status st = snap_new(conf, &n, err);
    if (st)
        return st;
    pthread_mutex_lock(&srv->mu);
    snap *old = srv->cf;
    srv->cf = n;
    snap_unref(old);
    pthread_mutex_unlock(&srv->mu);
    return MV_OK;
}

void mv_server_get_status(mv_server *srv, mv_server_status *st)
{
    pthread_mutex_lock(&srv->mu);
    *st = srv->stat;
    st->queued_bytes = srv->feed_bytes;
    st->n_sessions = srv->n_sessions;
    st->sessions = mv_xcalloc(srv->n_sessions + 1, sizeof *st->sessions);
    size_t i = 0;
    for (session *x = srv->sessions; x && i < srv->n_sessions; x = x->next)
        st->sessions[i++] = x->info;
    pthread_mutex_unlock(&srv->mu);
    mv_pipeline_get_stats(srv->pl, &st->pipeline);
    st->spool = mv_spool_count(srv->s);
}

mv_status mv_server_stop(mv_server *srv, mv_err *err)
{
    /* 1. no new sessions */
    ssize_t w = write(srv->wake[1], "x", 1);
    (void)w;
    pthread_join(srv->acceptor, NULL);
    for (size_t i = 0; i < srv->n_ls; i++) {
        close(srv->ls[i].fd);
        if (srv->ls[i].unix_path)
            unlink(srv->ls[i].unix_path);
    }
    /* 2. sessions: idle ones get 421 at their next tick, the others when
     * their message is answered or the drain deadline passes */
    pthread_mutex_lock(&srv->mu);
    srv->stopping = 1;
    srv->drain_deadline_us = mv_now_us() + (int64_t)srv->cf->c.drain_timeout_ms * 1000;
    size_t n0 = srv->n_sessions;
    pthread_mutex_unlock(&srv->mu);
    if (n0)
        mv_log_notice("stopping: %zu sessions draining", n0);
    pthread_mutex_lock(&srv->mu);
    while (srv->n_sessions)
        pthread_cond_wait(&srv->cv_sessions, &srv->mu);
    /* 3. spool then pipeline feed */
    srv->spooler_exit = 1;
    pthread_cond_broadcast(&srv->cv_spool);
    pthread_mutex_unlock(&srv->mu);
    pthread_join(srv->spooler, NULL);
    pthread_mutex_lock(&srv->mu);
    srv->feeder_exit = 1;
    pthread_cond_broadcast(&srv->cv_feed);
    pthread_mutex_unlock(&srv->mu);
    pthread_join(srv->feeder, NULL);
    mv_pipeline_stats ps;
    mv_err perr = {0};
    mv_status st = mv_pipeline_finish(srv->pl, &ps, &perr);
    if (!st && srv->pipe_st) {
        st = srv->pipe_st;
        perr = srv->pipe_err;
    }
    if (st && err)
        *err = perr;
    mv_log_notice("stopped: %llu messages accepted, %llu archived as new, %llu merged, %llu failed",
                  (unsigned long long)srv->stat.accepted, (unsigned long long)ps.new_messages,
                  (unsigned long long)ps.merged, (unsigned long long)ps.failed);
    for (size_t i = 0; i < srv->n_ls; i++) {
        free(srv->ls[i].unix_path);
        free((char *)srv->ls[i].c.name);
        free((char *)srv->ls[i].c.listen);
    }
    close(srv->wake[0]);
    close(srv->wake[1]);
    snap_unref(srv->cf);
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->cv_spool);
    pthread_cond_destroy(&srv->cv_done);
    pthread_cond_destroy(&srv->cv_feed);
    pthread_cond_destroy(&srv->cv_sessions);
    free(srv);
    return st;
}
