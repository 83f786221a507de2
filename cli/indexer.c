/* SPDX-License-Identifier: MIT */
/* indexer.c - the search index as the commands see it: the daemon's
 * indexer thread (the index's one writer while `serve` runs), and for a
 * command in a process of its own, an index opened and brought up to date
 * before it is searched (so a crash or a `--no-index` import is caught up
 * by the next command, not left behind). */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"
#include "cli.h"

/* The daemon's index and its thread.  Set before the control socket
 * serves requests and cleared after it stopped. */
static mv_index *served_index;
static pthread_t indexer_th;
static pthread_mutex_t indexer_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t indexer_cv = PTHREAD_COND_INITIALIZER;
static int indexer_stop, indexer_running;
static unsigned indexer_interval_ms;
/* The integrity log's tree head is signed from the same thread: a head
 * every checkpoint_s seconds while leaves come (0: never here). */
static mv_store *checkpoint_store;
static int64_t checkpoint_s;

void cli_checkpoint_every(mv_store *s, int64_t seconds)
{
    checkpoint_store = s;
    checkpoint_s = seconds;
}

static void maybe_checkpoint(double *last)
{
    double now = mv_mono();
    if (!checkpoint_s || !checkpoint_store || now - *last < (checkpoint_s < 10 ? 1 : 10))
        return;
    *last = now;
    int signed_one = 0;
    mv_err err = {0};
    if (mv_store_checkpoint_due(checkpoint_store, checkpoint_s, &signed_one, &err))
        mv_log_err("signing a tree head: %s", err.msg);
    else if (signed_one)
        mv_log_info("signed a tree head of the integrity log");
}

static void *indexer_main(void *arg)
{
    (void)arg;
    int failing = 0;
    double last_checkpoint = mv_mono();
    pthread_mutex_lock(&indexer_mu);
    while (!indexer_stop) {
        pthread_mutex_unlock(&indexer_mu);
        maybe_checkpoint(&last_checkpoint);
        if (mv_index_lag(served_index)) {
            mv_err err = {0};
            mv_index_stats stats;
            mv_status st = mv_index_update(served_index, NULL, NULL, &stats, &err);
            if (st && !failing)
                mv_log_err("indexing: %s (retrying)", err.msg);
            else if (!st && failing)
                mv_log_notice("indexing resumed");
            if (!st && stats.failed)
                mv_log_warn("indexing: %llu message(s) indexed without their text (first: "
                            "%llu): their bytes could not be read; run mailvault verify",
                            (unsigned long long)stats.failed,
                            (unsigned long long)stats.first_failed);
            failing = st != MV_OK;
        }
        pthread_mutex_lock(&indexer_mu);
        if (indexer_stop)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)(failing ? 5000 : indexer_interval_ms) *
                                                 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&indexer_cv, &indexer_mu, &ts);
    }
    pthread_mutex_unlock(&indexer_mu);
    return NULL;
}

mv_status cli_indexer_start(mv_store *s, unsigned interval_ms, mv_err *err)
{
    mv_index_opts o = {.writable = 1};
    mv_status st = mv_index_open(s, &o, &served_index, err);
    if (st)
        return st;
    indexer_interval_ms = interval_ms ? interval_ms : 200;
    indexer_stop = 0;
    if (pthread_create(&indexer_th, NULL, indexer_main, NULL) != 0) {
        mv_index_close(served_index);
        served_index = NULL;
        return mv_err_set(err, MV_EINTERNAL, "cannot start the indexer thread");
    }
    indexer_running = 1;
    return MV_OK;
}

void cli_indexer_stop(void)
{
    if (!indexer_running)
        return;
    pthread_mutex_lock(&indexer_mu);
    indexer_stop = 1;
    pthread_cond_broadcast(&indexer_cv);
    pthread_mutex_unlock(&indexer_mu);
    pthread_join(indexer_th, NULL);
    indexer_running = 0;
    mv_index_close(served_index);
    served_index = NULL;
}

void cli_indexer_kick(void)
{
    pthread_mutex_lock(&indexer_mu);
    pthread_cond_broadcast(&indexer_cv);
    pthread_mutex_unlock(&indexer_mu);
}

/* progress - a bar on a terminal for long catch-ups (created on the
 * first report, when the total is known). */
typedef struct bar {
    struct mv_progress *pg;
} bar;

static void progress(void *ctx, uint64_t done, uint64_t total)
{
    bar *b = ctx;
    if (!b->pg)
        b->pg = cli_progress_new("indexing", total);
    mv_progress_update(b->pg, done, 0);
}

mv_status cli_index_get(mv_cli *c, mv_store *s, int show_progress, mv_index **out, mv_err *err)
{
    (void)c;
    if (cli_in_daemon) {
        if (!served_index)
            return mv_err_set(err, MV_ETEMP, "the daemon's index is not open");
        *out = served_index;
        return MV_OK;
    }
    /* Up to date (the common case): a reader is all a search needs, and
     * opens faster than a writer. */
    mv_index_opts ro = {.writable = 0};
    if (mv_index_open(s, &ro, out, NULL) == MV_OK) {
        if (mv_store_last_change(s) && !mv_index_lag(*out))
            return MV_OK;
        mv_index_close(*out);
        *out = NULL;
    }
    mv_index_opts o = {.writable = 1};
    mv_status st = mv_index_open(s, &o, out, err);
    if (st)
        return st;
    if (mv_index_lag(*out)) {
        bar b = {NULL};
        mv_index_stats stats;
        st = mv_index_update(*out, show_progress ? progress : NULL, &b, &stats, err);
        mv_progress_free(b.pg);
        if (!st && stats.failed)
            fprintf(cli_err, "mailvault: %llu message(s) indexed without their text (first: "
                             "%llu): their bytes could not be read; run mailvault verify\n",
                    (unsigned long long)stats.failed, (unsigned long long)stats.first_failed);
        if (st) {
            mv_index_close(*out);
            *out = NULL;
        }
    }
    return st;
}

void cli_index_put(mv_index *ix)
{
    if (ix && ix != served_index)
        mv_index_close(ix);
}

uint64_t cli_index_lag(mv_store *s)
{
    if (cli_in_daemon && served_index)
        return mv_index_lag(served_index);
    return mv_index_lag_of(s);
}

mv_status cli_index_current(mv_cli *c, mv_store *s, mv_index **out, mv_err *err)
{
    mv_status st = cli_index_get(c, s, 1, out, err);
    if (st || !cli_in_daemon)
        return st;
    /* The daemon's indexer catches up on its own: wait for it, a while. */
    for (int i = 0; i < CLI_INDEX_WAIT_MS / 50 && mv_index_lag(*out); i++) {
        cli_indexer_kick();
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (mv_index_lag(*out)) {
        *out = NULL;
        return mv_err_set(err, MV_ETEMP, "the search index is still catching up (%llu changes): "
                          "try again shortly", (unsigned long long)mv_index_lag_of(s));
    }
    return MV_OK;
}

void cli_index_kick_or_update(mv_cli *c, mv_store *s)
{
    if (cli_in_daemon) {
        cli_indexer_kick();
        return;
    }
    mv_index *ix = NULL;
    mv_err err = {0};
    if (cli_index_get(c, s, 0, &ix, &err) != MV_OK)
        fprintf(cli_err, "mailvault: warning: the search index is not up to date (%s); the next "
                         "search brings it up to date\n", err.msg);
    cli_index_put(ix);
}
