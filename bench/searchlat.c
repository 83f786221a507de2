/* SPDX-License-Identifier: MIT */
/* searchlat.c - in-process query latency of a mailvault archive, for
 * bench/search (which compiles it against libmv.a; not part of the build).
 *
 *   searchlat ARCHIVE KEY_FILE QUERY_FILE K
 *
 * QUERY_FILE holds one query per line.  Each query is run once to warm up,
 * then K times; a run is mv_index_search for the exact count and the first
 * LAT_ROWS rows (newest first), as `mailvault search` shows them, without
 * snippets.  Output, tab-separated, for the script to read:
 *   open  MS                                 store + index opening time
 *   q  N  STATUS  COUNT  P50  P99  S1 S2 ...  milliseconds, samples in the
 *                                            order run; STATUS "ok" or the
 *                                            error text (COUNT -1, no samples)
 *   all  P50  P99                            over every sample of every
 *                                            query that succeeded
 * Percentiles are nearest-rank.  Exit 0 unless the archive cannot be
 * opened or the arguments are wrong (2). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../search/search.h"
#include "../store/store.h"

#define LAT_ROWS 20
#define LAT_MAX_LINE 16384    /* bytes of one query line (the parser's max_len) */
#define LAT_MAX_QUERIES 256   /* lines of QUERY_FILE */
#define LAT_MAX_REPEAT 10000 /* K */

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

/* print_failure - a query's line when it failed. */
static void print_failure(size_t i, const char *when, mv_status st, mv_err *err)
{
    /* Tabs and newlines would break the line format. */
    for (char *p = err->msg; *p; p++)
        if (*p == '\t' || *p == '\n')
            *p = ' ';
    printf("q\t%zu\t%s%s: %s\t-1\t-\t-\t\n", i, mv_status_str(st), when, err->msg);
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
        fprintf(stderr, "searchlat: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    char **q = mv_xcalloc(LAT_MAX_QUERIES, sizeof *q);
    size_t n = 0;
    char *line = mv_xmalloc(LAT_MAX_LINE + 2);
    while (fgets(line, LAT_MAX_LINE + 2, f)) {
        size_t len = strcspn(line, "\r\n");
        if (len > LAT_MAX_LINE) {
            fprintf(stderr, "searchlat: a query longer than %d bytes\n", LAT_MAX_LINE);
            goto fail;
        }
        line[len] = 0;
        if (!len)
            continue;
        if (n == LAT_MAX_QUERIES) {
            fprintf(stderr, "searchlat: more than %d queries\n", LAT_MAX_QUERIES);
            goto fail;
        }
        q[n++] = mv_xstrdup(line);
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

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: searchlat ARCHIVE KEY_FILE QUERY_FILE K\n");
        return 2;
    }
    char *end;
    unsigned long k = strtoul(argv[4], &end, 10);
    if (*end || !k || k > LAT_MAX_REPEAT) {
        fprintf(stderr, "searchlat: K must be 1..%d\n", LAT_MAX_REPEAT);
        return 2;
    }
    char **queries;
    size_t nq = read_queries(argv[3], &queries);

    mv_err err = {0};
    mv_keysrc keys = {argv[2], NULL};
    mv_store *s = NULL;
    mv_index *ix = NULL;
    double t0 = now_ms();
    mv_status st = mv_store_open(argv[1], &keys, &s, &err);
    if (st) {
        fprintf(stderr, "searchlat: %s: %s\n", argv[1], err.msg);
        free_queries(queries, nq);
        return 1;
    }
    /* Read-only like a searcher beside the writer; the CLI opens it
     * writable (to catch up first), so fall back to that. */
    mv_index_opts io = {0};
    if ((st = mv_index_open(s, &io, &ix, &err))) {
        io.writable = 1;
        mv_err_clear(&err);
        st = mv_index_open(s, &io, &ix, &err);
    }
    if (st) {
        fprintf(stderr, "searchlat: opening the index: %s\n", err.msg);
        mv_store_close(s);
        free_queries(queries, nq);
        return 1;
    }
    printf("open\t%.3f\n", now_ms() - t0);

    double *all = mv_xcalloc(nq * k, sizeof *all);
    double *one = mv_xcalloc(k, sizeof *one);
    size_t n_all = 0;
    mv_search_opts so = {0, LAT_ROWS, MV_SORT_DATE_DESC, 0, NULL, NULL};
    for (size_t i = 0; i < nq; i++) {
        mv_search_result r = {0};
        mv_err_clear(&err);
        st = mv_index_search(ix, queries[i], &so, &r, &err);
        uint64_t count = r.total;
        mv_search_result_free(&r);
        if (st) {
            print_failure(i, "", st, &err);
            continue;
        }
        for (unsigned long j = 0; j < k; j++) {
            double a = now_ms();
            memset(&r, 0, sizeof r);
            st = mv_index_search(ix, queries[i], &so, &r, &err);
            one[j] = now_ms() - a;
            mv_search_result_free(&r);
            if (st)
                break;
        }
        if (st) {
            print_failure(i, " (on a repetition)", st, &err);
            continue;
        }
        memcpy(all + n_all, one, k * sizeof *one);
        n_all += k;
        qsort(all + n_all - k, k, sizeof *all, cmp_double);
        printf("q\t%zu\tok\t%llu\t%.3f\t%.3f\t", i, (unsigned long long)count,
               pct(all + n_all - k, k, 0.5), pct(all + n_all - k, k, 0.99));
        for (unsigned long j = 0; j < k; j++)
            printf("%s%.3f", j ? " " : "", one[j]); /* in the order run */
        printf("\n");
    }
    qsort(all, n_all, sizeof *all, cmp_double);
    printf("all\t%.3f\t%.3f\n", pct(all, n_all, 0.5), pct(all, n_all, 0.99));

    free(all);
    free(one);
    free_queries(queries, nq);
    mv_index_close(ix);
    mv_store_close(s);
    return 0;
}
