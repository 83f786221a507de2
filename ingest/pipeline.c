/* SPDX-License-Identifier: MIT */
/* pipeline.c - workers and the single committer (see pipeline.h). */
#include "pipeline.h"

#include "comply.h"
#include "../search/xap.h"

#include "escrow.h"
#include "smime.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "../lib/log.h"
#include "mime.h"

#define MAX_SLOTS 4096u   /* arrivals in flight */
#define COMMIT_BATCH 512u /* arrivals per write batch */
/* A write batch's cost is mostly per batch below some tens of arrivals
 * (its counters, the log's edge, the write itself), and the committer
 * shares the cores with the workers: when it took whatever was ready it
 * wrote 15 arrivals a batch on average in a bulk import, a quarter of
 * them alone.  While this many more are being worked on it waits up to
 * COMMIT_WAIT_MS for a run of this many; a trickle (a daemon's mail) is
 * written at once.  The wait delays search and nothing else: an arrival
 * is durable (and acknowledged) from the spool. */
#define COMMIT_MIN 64u
#define COMMIT_WAIT_MS 20

typedef struct item {
    uint64_t idx; /* submission order: serials follow it */
    mv_spool_item it;
    char **strs; /* owned copies behind it.arr */
    size_t nstrs;
    uint8_t *data, *raw;
    uint8_t ref[32]; /* behind it.ref_sha256 */
    struct item *next;
} item;

typedef struct slot {
    int state; /* 0 empty, 1 prepared, 2 failed */
    mv_prepared *prep;
    int defective;
    size_t bytes;
} slot;

struct mv_pipeline {
    mv_store *s;
    mv_pipeline_opts o;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv, space_cv;
    item *head, *tail; /* work queue */
    slot slots[MAX_SLOTS];
    uint64_t next_idx;   /* next submission index */
    uint64_t commit_idx; /* next index to commit */
    size_t inflight_bytes;
    int stopping;
    mv_status fatal;
    mv_err fatal_err;
    mv_pipeline_stats st;
    pthread_t *workers;
    unsigned nworkers;
    pthread_t committer;
    mv_comply *comply; /* retention rules, evaluated per message */
};

static char *own(item *w, const char *s)
{
    if (!s)
        return NULL;
    char *c = mv_xstrdup(s);
    w->strs = mv_xrealloc(w->strs, (w->nstrs + 1) * sizeof *w->strs);
    w->strs[w->nstrs++] = c;
    return c;
}

static uint8_t *copy_bytes(const uint8_t *p, size_t n)
{
    uint8_t *c = mv_xmalloc(n ? n : 1);
    memcpy(c, p, n);
    return c;
}

static item *item_new(const mv_spool_item *src, int take)
{
    item *w = mv_xcalloc(1, sizeof *w);
    w->it = *src;
    if (src->ref_sha256) {
        memcpy(w->ref, src->ref_sha256, 32);
        w->it.ref_sha256 = w->ref;
    }
    w->data = take ? (uint8_t *)src->data : copy_bytes(src->data, src->len);
    w->it.data = w->data;
    if (src->raw) {
        w->raw = take ? (uint8_t *)src->raw : copy_bytes(src->raw, src->raw_len);
        w->it.raw = w->raw;
    }
    mv_arrival *a = &w->it.arr;
    a->source = own(w, src->arr.source);
    a->origin = own(w, src->arr.origin);
    a->mail_from = own(w, src->arr.mail_from);
    a->facts = own(w, src->arr.facts);
    a->note = own(w, src->arr.note);
    char **r = mv_xcalloc(src->arr.n_rcpt ? src->arr.n_rcpt : 1, sizeof *r);
    for (size_t i = 0; i < src->arr.n_rcpt; i++)
        r[i] = own(w, src->arr.rcpt[i]);
    a->rcpt = r;
    return w;
}

static void item_free(item *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nstrs; i++)
        free(w->strs[i]);
    free(w->strs);
    free((void *)w->it.arr.rcpt);
    if (w->data)
        OPENSSL_cleanse(w->data, w->it.len);
    if (w->raw)
        OPENSSL_cleanse(w->raw, w->it.raw_len);
    free(w->data);
    free(w->raw);
    free(w);
}

static size_t item_bytes(const item *w)
{
    return w->it.len + (w->it.raw ? w->it.raw_len : 0);
}

static void set_fatal(mv_pipeline *p, mv_status st, const mv_err *e)
{
    if (!p->fatal) {
        p->fatal = st;
        if (e)
            p->fatal_err = *e;
    }
    p->stopping = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_cond_broadcast(&p->space_cv);
    pthread_cond_broadcast(&p->done_cv);
}

/* process - parse, digest and seal one arrival. */
static mv_status process(mv_pipeline *p, item *w, mv_prepared **out, int *defective, mv_err *err)
{
    mv_mime_limits lim;
    mv_msginfo *mi = NULL;
    mv_mime_limits_default(&lim);
    lim.max_parse_bytes = p->o.parse_limit;
    /* An import's reference digest is of the copy's bytes: the message's
     * own when nothing was unwrapped (no journal report) */
    const uint8_t *known = w->it.ref_sha256 && !w->it.raw ? w->it.ref_sha256 : NULL;
    mv_status st = mv_mime_summarize_digested(w->it.data, w->it.len, known, &lim, &mi, err);
    if (st)
        return st;
    *defective = mi->meta.defects != 0;
    /* Escrow decryption reads the bytes before they pass to the store. */
    mv_decrypt_result dr = {0};
    int has_dr = 0;
    if (p->o.escrow && mv_escrow_detect(w->it.data, w->it.len)) {
        mv_decrypt_limits dl;
        mv_decrypt_limits_default(&dl);
        mv_err derr = {0};
        if (mv_escrow_decrypt(p->o.escrow, w->it.data, w->it.len, &dl, &dr, &derr) != MV_OK) {
            /* never a lost message: the failure is recorded instead */
            mv_decrypt_result_free(&dr);
            dr.encrypted = 1;
            dr.failure = mv_xasprintf("decryption failed: %s", derr.msg);
        }
        has_dr = dr.encrypted || dr.sig != MV_SIG_NONE;
        if (!has_dr)
            mv_decrypt_result_free(&dr);
    }
    /* The retention rule, hence the shred bucket, is fixed here, from the
     * trusted receipt time. */
    mv_retention ret;
    char **holds = NULL;
    size_t n_holds = 0;
    unsigned xflags = dr.encrypted ? MV_XD_ENCRYPTED | (dr.decrypted ? MV_XD_DECRYPTED
                                                                     : MV_XD_UNDECRYPTABLE)
                                   : 0;
    if (dr.sig != MV_SIG_NONE)
        xflags |= MV_XD_SIGNED;
    st = mv_comply_decide(p->comply, &mi->meta, &w->it.arr, dr.decrypted ? dr.out : w->it.data,
                          dr.decrypted ? dr.out_len : w->it.len, xflags, &ret, &holds, &n_holds,
                          err);
    if (st) {
        mv_decrypt_result_free(&dr);
        mv_msginfo_free(mi);
        return st;
    }
    /* The bytes pass to the prepared arrival: no copy of a large message. */
    st = mv_store_prepare(p->s, &w->it, &mi->meta, &ret, 1, out, err);
    w->data = w->raw = NULL;
    if (!st)
        mv_store_prepare_holds(*out, (const char *const *)holds, n_holds);
    for (size_t i = 0; i < n_holds; i++)
        free(holds[i]);
    free(holds);
    mv_msginfo_free(mi);
    if (has_dr) {
        if (!st) {
            mv_decryption d = {0};
            mv_decryption_from_result(&d, &dr);
            st = mv_store_prepare_decryption(p->s, *out, &d, dr.out, dr.out_len, err);
            if (st) {
                mv_prepared_free(*out);
                *out = NULL;
            }
        }
        mv_decrypt_result_free(&dr);
    }
    return st;
}

static void *worker_main(void *arg)
{
    mv_pipeline *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->work_cv, &p->mu);
        item *w = p->head;
        if (!w) {
            pthread_mutex_unlock(&p->mu);
            mv_smime_thread_end();
            return NULL;
        }
        p->head = w->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);

        mv_err err = {0};
        mv_prepared *prep = NULL;
        int defective = 0;
        mv_status st = process(p, w, &prep, &defective, &err);
        if (st)
            /* Left in the spool: replayed by the next run or reprocess. */
            mv_log_err("spool=%llu status=deferred reason=\"%s\"", (unsigned long long)w->it.seq,
                       err.msg);
        pthread_mutex_lock(&p->mu);
        slot *sl = &p->slots[w->idx % MAX_SLOTS];
        sl->state = st ? 2 : 1;
        sl->prep = prep;
        sl->defective = defective;
        sl->bytes = item_bytes(w);
        if (w->idx == p->commit_idx)
            pthread_cond_broadcast(&p->done_cv);
        pthread_mutex_unlock(&p->mu);
        item_free(w);
    }
}

/* ready_run - how many arrivals from the next to commit on are finished,
 * counting up to COMMIT_MIN. */
static size_t ready_run(const mv_pipeline *p)
{
    size_t n = 0;
    while (n < COMMIT_MIN && p->commit_idx + n < p->next_idx &&
           p->slots[(p->commit_idx + n) % MAX_SLOTS].state != 0)
        n++;
    return n;
}

static void *committer_main(void *arg)
{
    mv_pipeline *p = arg;
    mv_prepared **batch = mv_xcalloc(COMMIT_BATCH, sizeof *batch);
    mv_commit_result *res = mv_xcalloc(COMMIT_BATCH, sizeof *res);
    int *defect = mv_xcalloc(COMMIT_BATCH, sizeof *defect);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && (p->commit_idx == p->next_idx ||
                                p->slots[p->commit_idx % MAX_SLOTS].state == 0))
            pthread_cond_wait(&p->done_cv, &p->mu);
        if (p->fatal || (p->stopping && p->commit_idx == p->next_idx))
            break;
        if (!p->stopping && p->next_idx - p->commit_idx >= COMMIT_MIN) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_nsec += COMMIT_WAIT_MS * 1000000L;
            if (dl.tv_nsec >= 1000000000L)
                dl.tv_sec++, dl.tv_nsec -= 1000000000L;
            while (!p->stopping && !p->fatal && ready_run(p) < COMMIT_MIN &&
                   p->next_idx - p->commit_idx >= COMMIT_MIN)
                if (pthread_cond_timedwait(&p->done_cv, &p->mu, &dl) == ETIMEDOUT)
                    break;
            if (p->fatal)
                break;
        }
        /* Take the contiguous run of finished arrivals, in order. */
        size_t n = 0, failed = 0;
        while (n < COMMIT_BATCH && p->commit_idx < p->next_idx) {
            slot *sl = &p->slots[p->commit_idx % MAX_SLOTS];
            if (sl->state == 0)
                break;
            if (sl->state == 2) {
                failed++;
            } else {
                defect[n] = sl->defective;
                batch[n++] = sl->prep;
            }
            sl->state = 0;
            sl->prep = NULL;
            p->inflight_bytes -= sl->bytes;
            p->commit_idx++;
        }
        if (!n && !failed) {
            if (p->stopping)
                break;
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        mv_err err = {0};
        mv_status st = n ? mv_store_commit(p->s, batch, n, res, &err) : MV_OK;
        pthread_mutex_lock(&p->mu);
        if (st) {
            set_fatal(p, st, &err);
            break;
        }
        p->st.failed += failed;
        for (size_t i = 0; i < n; i++) {
            p->st.committed++;
            p->st.stored_bytes += res[i].stored_bytes;
            if (res[i].kind == MV_COMMIT_NEW)
                p->st.new_messages++, p->st.defective += defect[i] != 0;
            else if (res[i].kind == MV_COMMIT_MERGED)
                p->st.merged++;
            else
                p->st.already++;
        }
        pthread_cond_broadcast(&p->space_cv);
    }
    pthread_cond_broadcast(&p->space_cv);
    pthread_mutex_unlock(&p->mu);
    free(batch);
    free(res);
    free(defect);
    return NULL;
}

mv_status mv_pipeline_start(mv_store *s, const mv_pipeline_opts *o, mv_pipeline **out, mv_err *err)
{
    mv_mime_init();
    mv_pipeline *p = mv_xcalloc(1, sizeof *p);
    p->s = s;
    if (o)
        p->o = *o;
    if (!p->o.workers) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        p->o.workers = n > 0 ? (unsigned)n : 1;
    }
    if (!p->o.max_inflight_bytes)
        p->o.max_inflight_bytes = 16u << 20;
    if (!p->o.parse_limit)
        p->o.parse_limit = 32u << 20;
    mv_status st = mv_comply_new(s, &p->comply, err);
    if (st) {
        free(p);
        return st;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    pthread_cond_init(&p->space_cv, NULL);
    p->workers = mv_xcalloc(p->o.workers, sizeof *p->workers);
    for (unsigned i = 0; i < p->o.workers; i++) {
        if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0)
            break;
        p->nworkers++;
    }
    if (!p->nworkers || pthread_create(&p->committer, NULL, committer_main, p) != 0) {
        pthread_mutex_lock(&p->mu);
        set_fatal(p, MV_EINTERNAL, NULL);
        pthread_mutex_unlock(&p->mu);
        for (unsigned i = 0; i < p->nworkers; i++)
            pthread_join(p->workers[i], NULL);
        p->nworkers = 0;
        free(p->workers);
        mv_comply_free(p->comply);
        free(p);
        return mv_err_set(err, MV_EINTERNAL, "cannot start pipeline threads");
    }
    *out = p;
    return MV_OK;
}

static mv_status submit(mv_pipeline *p, const mv_spool_item *it, int take, mv_err *err)
{
    item *w = item_new(it, take);
    size_t nb = item_bytes(w);
    pthread_mutex_lock(&p->mu);
    /* Bounded memory: wait while the ring is full or too many bytes are in
     * flight (one message larger than the budget still passes alone). */
    while (!p->fatal && (p->next_idx - p->commit_idx >= MAX_SLOTS ||
                         (p->inflight_bytes && p->inflight_bytes + nb > p->o.max_inflight_bytes)))
        pthread_cond_wait(&p->space_cv, &p->mu);
    if (p->fatal) {
        mv_status st = p->fatal;
        if (err)
            *err = p->fatal_err;
        pthread_mutex_unlock(&p->mu);
        item_free(w);
        return st;
    }
    w->idx = p->next_idx++;
    p->st.submitted++;
    p->st.bytes += it->len;
    p->inflight_bytes += nb;
    if (p->tail)
        p->tail->next = w;
    else
        p->head = w;
    p->tail = w;
    pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    return MV_OK;
}

mv_status mv_pipeline_submit(mv_pipeline *p, const mv_spool_item *it, mv_err *err)
{
    return submit(p, it, 0, err);
}

mv_status mv_pipeline_submit_take(mv_pipeline *p, const mv_spool_item *it, mv_err *err)
{
    return submit(p, it, 1, err);
}

void mv_pipeline_wait_room(mv_pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    while (!p->fatal && p->inflight_bytes > p->o.max_inflight_bytes)
        pthread_cond_wait(&p->space_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void mv_pipeline_get_stats(mv_pipeline *p, mv_pipeline_stats *st)
{
    pthread_mutex_lock(&p->mu);
    *st = p->st;
    pthread_mutex_unlock(&p->mu);
}

mv_status mv_pipeline_finish(mv_pipeline *p, mv_pipeline_stats *st, mv_err *err)
{
    pthread_mutex_lock(&p->mu);
    while (!p->fatal && p->commit_idx < p->next_idx)
        pthread_cond_wait(&p->space_cv, &p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_cond_broadcast(&p->done_cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i], NULL);
    pthread_join(p->committer, NULL);
    mv_status fatal = p->fatal;
    if (fatal && err)
        *err = p->fatal_err;
    if (st)
        *st = p->st;
    /* Whatever a fatal stop left behind stays in the spool. */
    for (item *w = p->head, *n; w; w = n) {
        n = w->next;
        item_free(w);
    }
    for (unsigned i = 0; i < MAX_SLOTS; i++)
        mv_prepared_free(p->slots[i].prep);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->space_cv);
    free(p->workers);
    mv_comply_free(p->comply);
    free(p);
    return fatal;
}
