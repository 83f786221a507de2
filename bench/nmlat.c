/* SPDX-License-Identifier: MIT */
/* nmlat.c - in-process query latency of a notmuch database, the reference
 * figure beside bench/searchlat.c (compiled by bench/search with
 * -lnotmuch; not part of the build, and needs Debian libnotmuch-dev).
 *
 *   nmlat DATABASE_PATH CONFIG_FILE QUERY_FILE K
 *
 * QUERY_FILE holds one query per line (notmuch syntax).  Each query is run
 * once to warm up, then K times; a run is notmuch_query_count_messages for
 * the count, then notmuch_query_search_messages newest first reading the
 * first LAT_ROWS messages' id, date, From and Subject (the headers notmuch
 * keeps in its database, what `notmuch search` shows).  Output is that of
 * searchlat:
 *   open  MS
 *   q  N  STATUS  COUNT  P50  P99  S1 S2 ...   (milliseconds)
 *   all  P50  P99
 * Exit 0 unless the database cannot be opened or the arguments are
 * wrong (2). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <notmuch.h>

#define LAT_ROWS 20
#define LAT_MAX_LINE 16384    /* bytes of one query line */
#define LAT_MAX_QUERIES 256   /* lines of QUERY_FILE */
#define LAT_MAX_REPEAT 10000  /* K */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* pct - nearest-rank percentile of n sorted samples. */
static double pct(const double *v, size_t n, double p)
{
    if (!n)
        return NAN;
    size_t r = (size_t)ceil(p * (double)n);
    return v[r ? r - 1 : 0];
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "nmlat: out of memory\n");
        exit(2);
    }
    return p;
}

/* free_queries - what read_queries returned. */
static void free_queries(char **q, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(q[i]);
    free(q);
}

/* read_queries - one query per line; blank lines are skipped.  *out owned
 * by the caller (free_queries).  A file past the limits: exit 2. */
static size_t read_queries(const char *path, char ***out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "nmlat: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    char **q = xcalloc(LAT_MAX_QUERIES, sizeof *q);
    size_t n = 0;
    char *line = xcalloc(LAT_MAX_LINE + 2, 1);
    while (fgets(line, LAT_MAX_LINE + 2, f)) {
        size_t len = strcspn(line, "\r\n");
        if (len > LAT_MAX_LINE) {
            fprintf(stderr, "nmlat: a query longer than %d bytes\n", LAT_MAX_LINE);
            goto fail;
        }
        line[len] = 0;
        if (!len)
            continue;
        if (n == LAT_MAX_QUERIES) {
            fprintf(stderr, "nmlat: more than %d queries\n", LAT_MAX_QUERIES);
            goto fail;
        }
        q[n] = xcalloc(len + 1, 1);
        memcpy(q[n++], line, len);
    }
    free(line);
    fclose(f);
    *out = q;
    return n;
fail:
    free(line);
    fclose(f);
    free_queries(q, n);
    exit(2);
}

/* run_query - count and the first LAT_ROWS rows, as one search would.
 * On failure *why is notmuch's text (static or owned by db). */
static notmuch_status_t run_query(notmuch_database_t *db, const char *qs, unsigned *count,
                                  const char **why)
{
    notmuch_query_t *q = notmuch_query_create(db, qs);
    if (!q) {
        *why = "notmuch_query_create failed";
        return NOTMUCH_STATUS_OUT_OF_MEMORY;
    }
    notmuch_query_set_sort(q, NOTMUCH_SORT_NEWEST_FIRST);
    notmuch_messages_t *ms = NULL;
    notmuch_status_t st = notmuch_query_count_messages(q, count);
    if (!st)
        st = notmuch_query_search_messages(q, &ms);
    if (st) {
        const char *d = notmuch_database_status_string(db);
        *why = d ? d : notmuch_status_to_string(st);
        notmuch_query_destroy(q);
        return st;
    }
    /* Read what a result row shows, so lazy loading is paid for. */
    size_t got = 0, sink = 0;
    for (; got < LAT_ROWS && notmuch_messages_valid(ms); notmuch_messages_move_to_next(ms), got++) {
        notmuch_message_t *m = notmuch_messages_get(ms);
        const char *id = notmuch_message_get_message_id(m);
        const char *from = notmuch_message_get_header(m, "from");
        const char *subj = notmuch_message_get_header(m, "subject");
        sink += (size_t)notmuch_message_get_date(m) + (id ? strlen(id) : 0) +
                (from ? strlen(from) : 0) + (subj ? strlen(subj) : 0);
        notmuch_message_destroy(m);
    }
    (void)sink;
    notmuch_query_destroy(q); /* owns ms */
    return NOTMUCH_STATUS_SUCCESS;
}

static void print_failure(size_t i, const char *when, const char *why)
{
    printf("q\t%zu\terror%s: ", i, when);
    /* Tabs and newlines would break the line format. */
    for (const char *p = why; *p; p++)
        putchar(*p == '\t' || *p == '\n' ? ' ' : *p);
    printf("\t-1\t-\t-\t\n");
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: nmlat DATABASE_PATH CONFIG_FILE QUERY_FILE K\n");
        return 2;
    }
    char *end;
    unsigned long k = strtoul(argv[4], &end, 10);
    if (*end || !k || k > LAT_MAX_REPEAT) {
        fprintf(stderr, "nmlat: K must be 1..%d\n", LAT_MAX_REPEAT);
        return 2;
    }
    char **queries;
    size_t nq = read_queries(argv[3], &queries);

    notmuch_database_t *db = NULL;
    char *msg = NULL;
    double t0 = now_ms();
    notmuch_status_t st = notmuch_database_open_with_config(
        argv[1], NOTMUCH_DATABASE_MODE_READ_ONLY, argv[2], NULL, &db, &msg);
    if (st) {
        fprintf(stderr, "nmlat: %s: %s\n", argv[1], msg ? msg : notmuch_status_to_string(st));
        free(msg);
        free_queries(queries, nq);
        return 1;
    }
    free(msg);
    printf("open\t%.3f\n", now_ms() - t0);

    double *all = xcalloc(nq * k, sizeof *all);
    double *one = xcalloc(k, sizeof *one);
    size_t n_all = 0;
    for (size_t i = 0; i < nq; i++) {
        unsigned count = 0;
        const char *why = NULL;
        if ((st = run_query(db, queries[i], &count, &why))) {
            print_failure(i, "", why);
            continue;
        }
        unsigned long j;
        for (j = 0; j < k; j++) {
            unsigned c2;
            double a = now_ms();
            st = run_query(db, queries[i], &c2, &why);
            one[j] = now_ms() - a;
            if (st)
                break;
        }
        if (st) {
            print_failure(i, " (on a repetition)", why);
            continue;
        }
        memcpy(all + n_all, one, k * sizeof *one);
        n_all += k;
        qsort(all + n_all - k, k, sizeof *all, cmp_double);
        printf("q\t%zu\tok\t%u\t%.3f\t%.3f\t", i, count, pct(all + n_all - k, k, 0.5),
               pct(all + n_all - k, k, 0.99));
        for (j = 0; j < k; j++)
            printf("%s%.3f", j ? " " : "", one[j]); /* in the order run */
        printf("\n");
    }
    qsort(all, n_all, sizeof *all, cmp_double);
    printf("all\t%.3f\t%.3f\n", pct(all, n_all, 0.5), pct(all, n_all, 0.99));

    free(all);
    free(one);
    free_queries(queries, nq);
    notmuch_database_destroy(db);
    return 0;
}
