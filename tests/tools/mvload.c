/* SPDX-License-Identifier: MIT */
/* mvload.c - SMTP/LMTP load generator for tests and bench/smtp.
 *
 * N sessions send generated messages (deterministic per --seed and index,
 * unique Message-IDs, some lines starting with '.') and measure the time
 * from the end of data to the 250.  Every acknowledged message is written
 * to --ack-log as "INDEX SHA256" the moment its 250 arrives (line
 * buffered), so a test that kills the daemon knows exactly what was
 * acknowledged.  With --retry a session reconnects after a failure (the
 * daemon restarting) and sends the interrupted message again.
 *
 *   mvload --connect 127.0.0.1:2525 [--lmtp] --sessions 8 --count 1000
 *          [--size 5000] [--seed S] [--ack-log F] [--retry SECONDS] [--json]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

static const char *g_connect = "127.0.0.1:2525";
static int g_lmtp, g_sessions = 1, g_json;
static long g_count = 100, g_size = 5000, g_retry;
static unsigned long long g_seed = 1;
static FILE *g_ack;
static const char *g_rcpt = "archive@archive.test";

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static long g_next, g_acked, g_tempfail, g_rejected, g_errors;
static double *g_lat;
static size_t g_nlat;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
    /* splitmix64: deterministic, not the C library generator */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const char *const words[] = {"ledger", "quarterly", "invoice", "meeting", "merger",
                                    "confidential", "forecast", "contract", "review", "audit",
                                    "the", "and", "of", "to", "a", "in", "for", "is", "on", "that"};

/* make_msg - message i, exactly as it should be stored (CRLF lines). */
static char *make_msg(long i, size_t *len)
{
    uint64_t s = g_seed * 1000003u + (uint64_t)i;
    size_t cap = (size_t)g_size + 1024, n = 0;
    char *m = malloc(cap);
    if (!m)
        abort();
    n += (size_t)snprintf(m + n, cap - n,
                          "From: Sender %ld <sender%ld@corp.test>\r\n"
                          "To: Recipient <rcpt%ld@corp.test>\r\n"
                          "Subject: load message %ld of run %llu\r\n"
                          "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
                          "Message-ID: <load-%llu-%ld@mvload.test>\r\n"
                          "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
                          i % 97, i % 97, i % 89, i, g_seed, g_seed, i);
    size_t col = 0;
    while (n + 40 < (size_t)g_size + 200 && n + 40 < cap) {
        uint64_t r = rnd(&s);
        if (col == 0 && r % 29 == 0) {
            m[n++] = '.'; /* exercises dot-stuffing */
            col++;
        }
        const char *w = words[r % (sizeof words / sizeof *words)];
        size_t wl = strlen(w);
        memcpy(m + n, w, wl);
        n += wl;
        col += wl;
        if (col > 66) {
            m[n++] = '\r';
            m[n++] = '\n';
            col = 0;
        } else {
            m[n++] = ' ';
            col++;
        }
    }
    m[n++] = '\r';
    m[n++] = '\n';
    *len = n;
    return m;
}

static int dial(void)
{
    int fd;
    if (strncmp(g_connect, "unix:", 5) == 0) {
        struct sockaddr_un su = {.sun_family = AF_UNIX};
        snprintf(su.sun_path, sizeof su.sun_path, "%s", g_connect + 5);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&su, sizeof su) != 0) {
            close(fd);
            return -1;
        }
        return fd;
    }
    char host[256];
    const char *c = strrchr(g_connect, ':');
    if (!c || (size_t)(c - g_connect) >= sizeof host)
        return -1;
    memcpy(host, g_connect, (size_t)(c - g_connect));
    host[c - g_connect] = 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, c + 1, &hints, &res) != 0)
        return -1;
    fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timeval tv = {.tv_sec = 120};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    return fd;
}

typedef struct conn {
    int fd;
    char buf[8192];
    size_t len;
} conn;

static int code3(const char *b)
{
    if (b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' || b[2] < '0' || b[2] > '9')
        return -1;
    return (b[0] - '0') * 100 + (b[1] - '0') * 10 + (b[2] - '0');
}

/* reply - read one (possibly multi-line) reply; returns its code or -1. */
static int reply(conn *c)
{
    for (;;) {
        char *nl;
        while ((nl = memchr(c->buf, '\n', c->len))) {
            size_t ll = (size_t)(nl - c->buf) + 1;
            int code = ll >= 4 ? code3(c->buf) : -1;
            int last = ll >= 4 && c->buf[3] != '-';
            memmove(c->buf, c->buf + ll, c->len - ll);
            c->len -= ll;
            if (last)
                return code;
        }
        if (c->len == sizeof c->buf)
            return -1;
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
    }
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* stuff - dot-stuff m into out (allocated) and append CRLF.CRLF. */
static char *stuff(const char *m, size_t n, size_t *outn)
{
    char *o = malloc(n * 2 + 8);
    if (!o)
        abort();
    size_t k = 0;
    int bol = 1;
    for (size_t i = 0; i < n; i++) {
        if (bol && m[i] == '.')
            o[k++] = '.';
        o[k++] = m[i];
        bol = m[i] == '\n' && i > 0 && m[i - 1] == '\r';
    }
    memcpy(o + k, ".\r\n", 3);
    k += 3;
    *outn = k;
    return o;
}

static void sha_hex(const char *m, size_t n, char out[65])
{
    unsigned char d[32];
    unsigned dl = 32;
    EVP_Digest(m, n, d, &dl, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int hello(conn *c)
{
    char cmd[64];
    if (reply(c) != 220)
        return -1;
    snprintf(cmd, sizeof cmd, "%s mvload.test\r\n", g_lmtp ? "LHLO" : "EHLO");
    if (send_all(c->fd, cmd, strlen(cmd)) || reply(c) != 250)
        return -1;
    return 0;
}

static void *session(void *arg)
{
    (void)arg;
    conn c = {.fd = -1};
    long cur = -1;
    double fail_since = 0;
    for (;;) {
        if (cur < 0) {
            pthread_mutex_lock(&g_mu);
            cur = g_next < g_count ? g_next++ : -1;
            pthread_mutex_unlock(&g_mu);
            if (cur < 0)
                break;
        }
        if (c.fd < 0) {
            c.fd = dial();
            c.len = 0;
            if (c.fd < 0 || hello(&c) != 0) {
                if (c.fd >= 0)
                    close(c.fd);
                c.fd = -1;
                if (!g_retry)
                    goto fail;
                if (!fail_since)
                    fail_since = now();
                if (now() - fail_since > (double)g_retry)
                    goto fail;
                usleep(50000);
                continue;
            }
        }
        size_t n, sn;
        char *m = make_msg(cur, &n);
        char *s = stuff(m, n, &sn);
        char env[600];
        int el = snprintf(env, sizeof env, "MAIL FROM:<load@mvload.test> SIZE=%zu\r\nRCPT TO:<%s>\r\nDATA\r\n",
                          n, g_rcpt);
        int ok = send_all(c.fd, env, (size_t)el) == 0;
        int r1 = ok ? reply(&c) : -1, r2 = r1 > 0 ? reply(&c) : -1, r3 = r2 > 0 ? reply(&c) : -1;
        int code = -1;
        double t0 = 0, t1 = 0;
        if (r1 == 250 && r2 == 250 && r3 == 354) {
            if (send_all(c.fd, s, sn) == 0) {
                t0 = now();
                code = reply(&c);
                t1 = now();
            }
        } else if (r1 > 0 && r2 > 0 && r3 > 0) {
            code = r3 == 354 ? -1 : (r1 != 250 ? r1 : r2 != 250 ? r2 : r3);
            if (send_all(c.fd, "RSET\r\n", 6) || reply(&c) < 0)
                code = -1;
        }
        if (code == 250) {
            char hex[65];
            sha_hex(m, n, hex);
            pthread_mutex_lock(&g_mu);
            g_acked++;
            g_lat[g_nlat++] = t1 - t0;
            if (g_ack) {
                fprintf(g_ack, "%ld %s\n", cur, hex);
                fflush(g_ack);
            }
            pthread_mutex_unlock(&g_mu);
            cur = -1;
            fail_since = 0;
        } else if (code >= 400 && code < 500) {
            pthread_mutex_lock(&g_mu);
            g_tempfail++;
            pthread_mutex_unlock(&g_mu);
            if (!g_retry)
                cur = -1;
            else
                usleep(20000);
        } else if (code >= 500) {
            pthread_mutex_lock(&g_mu);
            g_rejected++;
            pthread_mutex_unlock(&g_mu);
            cur = -1;
        } else {
            /* connection lost: with --retry the same message goes again */
            close(c.fd);
            c.fd = -1;
            if (!g_retry) {
                pthread_mutex_lock(&g_mu);
                g_errors++;
                pthread_mutex_unlock(&g_mu);
                cur = -1;
            } else if (!fail_since) {
                fail_since = now();
            }
        }
        free(m);
        free(s);
        continue;
    fail:
        pthread_mutex_lock(&g_mu);
        g_errors++;
        pthread_mutex_unlock(&g_mu);
        cur = -1;
    }
    if (c.fd >= 0) {
        if (send_all(c.fd, "QUIT\r\n", 6) == 0)
            (void)reply(&c);
        close(c.fd);
    }
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    static const struct option o[] = {
        {"connect", 1, 0, 'c'}, {"lmtp", 0, 0, 'L'},  {"sessions", 1, 0, 's'}, {"count", 1, 0, 'n'},
        {"size", 1, 0, 'z'},    {"seed", 1, 0, 'S'},  {"ack-log", 1, 0, 'a'},  {"retry", 1, 0, 'r'},
        {"json", 0, 0, 'j'},    {"rcpt", 1, 0, 'R'},  {"print", 1, 0, 'p'},    {0, 0, 0, 0}};
    int c;
    long print = -1;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        switch (c) {
        case 'c': g_connect = optarg; break;
        case 'L': g_lmtp = 1; break;
        case 's': g_sessions = (int)strtol(optarg, NULL, 10); break;
        case 'n': g_count = strtol(optarg, NULL, 10); break;
        case 'z': g_size = strtol(optarg, NULL, 10); break;
        case 'S': g_seed = strtoull(optarg, NULL, 10); break;
        case 'a':
            g_ack = fopen(optarg, "a");
            if (!g_ack) {
                perror(optarg);
                return 2;
            }
            break;
        case 'r': g_retry = strtol(optarg, NULL, 10); break;
        case 'j': g_json = 1; break;
        case 'R': g_rcpt = optarg; break;
        case 'p': print = strtol(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: mvload --connect HOST:PORT|unix:PATH [--lmtp] [--sessions N] "
                            "[--count N] [--size BYTES] [--seed S] [--ack-log F] [--retry SECONDS] "
                            "[--rcpt ADDR] [--json] | --print INDEX\n");
            return 2;
        }
    }
    if (print >= 0) {
        /* the exact bytes of message INDEX, for tests that compare */
        size_t n;
        char *m = make_msg(print, &n);
        fwrite(m, 1, n, stdout);
        free(m);
        return 0;
    }
    if (g_sessions < 1 || g_sessions > 1024 || g_count < 0 || g_size < 100) {
        fprintf(stderr, "mvload: bad --sessions, --count or --size\n");
        return 2;
    }
    g_lat = calloc((size_t)g_count + 1, sizeof *g_lat);
    pthread_t *th = calloc((size_t)g_sessions, sizeof *th);
    if (!g_lat || !th)
        return 3;
    double t0 = now();
    for (int i = 0; i < g_sessions; i++)
        pthread_create(&th[i], NULL, session, NULL);
    for (int i = 0; i < g_sessions; i++)
        pthread_join(th[i], NULL);
    double el = now() - t0;
    qsort(g_lat, g_nlat, sizeof *g_lat, cmp);
    double p50 = g_nlat ? g_lat[g_nlat / 2] * 1000 : 0;
    double p99 = g_nlat ? g_lat[(size_t)((double)(g_nlat - 1) * 0.99)] * 1000 : 0;
    double mx = g_nlat ? g_lat[g_nlat - 1] * 1000 : 0;
    if (g_json)
        printf("{\"sessions\":%d,\"acked\":%ld,\"tempfail\":%ld,\"rejected\":%ld,\"errors\":%ld,"
               "\"seconds\":%.3f,\"per_second\":%.1f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f}\n",
               g_sessions, g_acked, g_tempfail, g_rejected, g_errors, el, g_acked / el, p50, p99, mx);
    else
        printf("sessions %d: %ld acknowledged in %.2f s = %.0f msg/s; end-of-data to 250: p50 %.2f ms, "
               "p99 %.2f ms, max %.2f ms; 4xx %ld, 5xx %ld, errors %ld\n",
               g_sessions, g_acked, el, g_acked / el, p50, p99, mx, g_tempfail, g_rejected, g_errors);
    if (g_ack)
        fclose(g_ack);
    free(g_lat);
    free(th);
    return g_errors ? 1 : 0;
}
