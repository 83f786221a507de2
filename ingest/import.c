/* SPDX-License-Identifier: MIT */
/* import.c - walk sources, spool in synced batches, feed the pipeline. */
#include "import.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../lib/digest.h"
#include "../lib/log.h"
#include "../lib/util.h"
#include "escrow.h"
#include "pipeline.h"
#include "source.h"

#define SPOOL_BATCH 256u
/* The first batch is small and each next one twice the last, up to
 * SPOOL_BATCH: the workers have nothing to do until a batch is synced. */
#define SPOOL_FIRST_BATCH 16u
#define SPOOL_BATCH_BYTES (8u << 20)

typedef struct pending {
    mv_spool_item it;
    uint8_t *data, *raw;
    char *origin, *facts, *mail_from;
    uint8_t sha[32]; /* of the copy's bytes: the spool keeps only this */
} pending;

/* An arrival an interrupted import spooled by reference: read back from
 * its file before anything new is imported. */
typedef struct spool_ref {
    uint64_t seq;
    uint8_t sha[32];
    size_t len;
    mv_arrival arr; /* strings owned */
    char *path;     /* the file or Maildir its origin names */
    int done;
} spool_ref;

typedef struct imp {
    mv_store *s;
    mv_pipeline *pl;
    const mv_import_opts *o;
    mv_import_result *r;
    pending batch[SPOOL_BATCH];
    size_t n, bytes, limit; /* limit: the size of the batch being filled */
    spool_ref *refs;
    size_t n_refs;
} imp;

/* The walk started ahead: its result, and the warnings it had, kept to be
 * told (or not, --quiet) once the import's options apply. */
struct mv_import_walk {
    pthread_t th;
    char *const *paths;
    size_t npaths;
    mv_source *src;
    mv_status st;
    mv_err err;
    char **warn; /* path, reason, path, reason... */
    size_t nwarn;
};

static void walk_warn(void *ctx, const char *path, const char *reason)
{
    mv_import_walk *w = ctx;
    w->warn = mv_xrealloc(w->warn, (w->nwarn + 2) * sizeof *w->warn);
    w->warn[w->nwarn++] = mv_xstrdup(path);
    w->warn[w->nwarn++] = mv_xstrdup(reason);
}

static void *walk_main(void *arg)
{
    mv_import_walk *w = arg;
    mv_source_limits lim;
    mv_source_limits_default(&lim);
    w->st = mv_source_open(w->paths, w->npaths, &lim, walk_warn, w, &w->src, &w->err);
    return NULL;
}

mv_import_walk *mv_import_walk_start(char *const *paths, size_t npaths)
{
    mv_import_walk *w = mv_xcalloc(1, sizeof *w);
    w->paths = paths;
    w->npaths = npaths;
    if (pthread_create(&w->th, NULL, walk_main, w) != 0) {
        free(w);
        return NULL;
    }
    return w;
}

static void walk_join(mv_import_walk *w)
{
    pthread_join(w->th, NULL);
}

static void walk_drop(mv_import_walk *w)
{
    for (size_t i = 0; i < w->nwarn; i++)
        free(w->warn[i]);
    free(w->warn);
    free(w);
}

void mv_import_walk_free(mv_import_walk *w)
{
    if (!w)
        return;
    walk_join(w);
    mv_source_free(w->src);
    walk_drop(w);
}

static void warn_fn(void *ctx, const char *path, const char *reason)
{
    imp *im = ctx;
    if (!im->o->quiet) {
        char safe[300];
        mv_log_warn("import: %s: %s", mv_log_safe(path, strlen(path), safe, sizeof safe), reason);
    }
}

static void pending_free(pending *p)
{
    free(p->data);
    free(p->raw);
    free(p->origin);
    free(p->facts);
    free(p->mail_from);
    memset(p, 0, sizeof *p);
}

/* flush - make the batch durable in the spool, then hand it on (the
 * bytes pass to the pipeline without a copy). */
static mv_status flush(imp *im, mv_err *err)
{
    mv_status st = MV_OK;
    if (!im->n)
        return MV_OK;
    /* Copies this archive has (or has spooled) already are dropped here,
     * the batch's copy ids looked up at once (a lookup each, in add, was
     * 1% of an import); add kept a copy id out of the batch twice. */
    const uint8_t *ids[SPOOL_BATCH];
    mv_copyid_state states[SPOOL_BATCH];
    for (size_t i = 0; i < im->n; i++)
        ids[i] = im->batch[i].it.arr.copy_id;
    st = mv_store_copy_id_states(im->s, ids, im->n, states, err);
    mv_spool_item items[SPOOL_BATCH];
    size_t n = 0;
    for (size_t i = 0; i < im->n && !st; i++) {
        if (states[i] != MV_COPYID_NEW) {
            im->r->already++;
            pending_free(&im->batch[i]);
            continue;
        }
        if (n != i) {
            im->batch[n] = im->batch[i];
            if (im->batch[n].it.ref_sha256)
                im->batch[n].it.ref_sha256 = im->batch[n].sha; /* (it points into it) */
            memset(&im->batch[i], 0, sizeof im->batch[i]);
        }
        items[n] = im->batch[n].it;
        n++;
    }
    if (st)
        n = im->n; /* (all freed below) */
    else if (n)
        st = mv_spool_add(im->s, items, n, err);
    for (size_t i = 0; i < n; i++) {
        if (!st) {
            st = mv_pipeline_submit_take(im->pl, &items[i], err);
            im->batch[i].data = im->batch[i].raw = NULL;
        }
        pending_free(&im->batch[i]);
    }
    im->n = 0;
    im->bytes = 0;
    /* Memory stays bounded by the largest message, not twice it: the
     * source reads the next message only once a message over the budget
     * has gone through (measured: two messages of 210 MB, peak RSS 501 MB
     * without this). */
    if (!st)
        mv_pipeline_wait_room(im->pl);
    return st;
}

static char *dup_or_null(const char *s)
{
    return s ? mv_xstrdup(s) : NULL;
}

static void spool_ref_free(spool_ref *f)
{
    mv_arrival *a = &f->arr;
    free((char *)a->source);
    free((char *)a->origin);
    free((char *)a->mail_from);
    free((char *)a->facts);
    free((char *)a->note);
    for (size_t i = 0; i < a->n_rcpt; i++)
        free(a->rcpt[i]);
    free((void *)a->rcpt);
    free(f->path);
}

/* ref_path - the file or Maildir directory an import origin names
 * ("file:P", "mbox:P#N", "maildir:D#unique"; see source.h), or NULL. */
static char *ref_path(const char *origin)
{
    const char *c = origin ? strchr(origin, ':') : NULL;
    if (!c || c[1] != '/')
        return NULL;
    size_t kl = (size_t)(c - origin);
    const char *p = c + 1, *h = NULL;
    if ((kl == 4 && !memcmp(origin, "mbox", 4)) || (kl == 7 && !memcmp(origin, "maildir", 7)))
        h = strrchr(p, '#');
    else if (!(kl == 4 && !memcmp(origin, "file", 4)))
        return NULL;
    return h ? mv_xstrndup(p, (size_t)(h - p)) : mv_xstrdup(p);
}

static mv_status replay_one(void *ctx, const mv_spool_item *it, mv_err *err)
{
    imp *im = ctx;
    if (it->ref_sha256) {
        im->refs = mv_xrealloc(im->refs, (im->n_refs + 1) * sizeof *im->refs);
        spool_ref *f = &im->refs[im->n_refs++];
        memset(f, 0, sizeof *f);
        f->seq = it->seq;
        memcpy(f->sha, it->ref_sha256, 32);
        f->len = it->len;
        f->arr = it->arr;
        f->arr.source = dup_or_null(it->arr.source);
        f->arr.origin = dup_or_null(it->arr.origin);
        f->arr.mail_from = dup_or_null(it->arr.mail_from);
        f->arr.facts = dup_or_null(it->arr.facts);
        f->arr.note = dup_or_null(it->arr.note);
        char **rc = mv_xcalloc(it->arr.n_rcpt ? it->arr.n_rcpt : 1, sizeof *rc);
        for (size_t i = 0; i < it->arr.n_rcpt; i++)
            rc[i] = mv_xstrdup(it->arr.rcpt[i]);
        f->arr.rcpt = rc;
        f->path = ref_path(it->arr.origin);
        return MV_OK;
    }
    im->r->replayed++;
    return mv_pipeline_submit(im->pl, it, err);
}

/* envelope_sender - the address token of an mbox separator line. */
static char *envelope_sender(const char *from_line)
{
    if (!from_line)
        return NULL;
    const char *e = strchr(from_line, ' ');
    size_t n = e ? (size_t)(e - from_line) : strlen(from_line);
    if (!n || (n == 14 && memcmp(from_line, "MAILER-DAEMON", 13) == 0))
        return NULL;
    return mv_xstrndup(from_line, n);
}

/* copy_sha - SHA-256 of the copy's own bytes (raw when the source has
 * them, else data): part of the copy's identity, and what a spool entry
 * by reference is checked against. */
static void copy_sha(const mv_source_msg *m, uint8_t sha[32])
{
    unsigned int l = 32;
    const uint8_t *raw = m->raw ? m->raw : m->data;
    size_t raw_len = m->raw ? m->raw_len : m->len;
    mv_assert(EVP_Digest(raw, raw_len, sha, &l, mv_md_sha256(), NULL));
}

/* take_bytes - fill p's bytes from the source's message m (the source's
 * buffer itself when it can be taken). */
static void take_bytes(pending *p, mv_source *src, const mv_source_msg *m)
{
    size_t own_raw_len = 0;
    if (m->raw && m->raw != m->data &&
        (m->raw_len != m->len || memcmp(m->raw, m->data, m->len) != 0)) {
        own_raw_len = m->raw_len;
        p->raw = mv_xmalloc(m->raw_len ? m->raw_len : 1);
        memcpy(p->raw, m->raw, m->raw_len);
    }
    /* The source's buffer itself, not a copy: a large message is held once. */
    size_t len = m->len;
    p->data = mv_source_take(src, &len);
    if (!p->data || len != m->len) {
        free(p->data);
        p->data = mv_xmalloc(m->len ? m->len : 1);
        memcpy(p->data, m->data, m->len);
    }
    p->it.data = p->data;
    p->it.len = m->len;
    p->it.raw = p->raw;
    p->it.raw_len = own_raw_len;
}

static mv_status add(imp *im, mv_source *src, const mv_source_msg *m, mv_err *err)
{
    uint8_t sha[32];
    char hex[65];
    copy_sha(m, sha);
    mv_hex(sha, 32, hex);
    char *ident = mv_xasprintf("import\n%s\n%s", m->origin, hex);
    uint8_t cid[32];
    mv_store_copy_id(im->s, ident, strlen(ident), cid);
    free(ident);
    /* (what the store has already is dropped by flush) */
    for (size_t i = 0; i < im->n; i++)
        if (memcmp(im->batch[i].it.arr.copy_id, cid, 32) == 0) {
            im->r->already++;
            return MV_OK;
        }
    pending *p = &im->batch[im->n++];
    memset(p, 0, sizeof *p);
    take_bytes(p, src, m);
    /* The file is durable already: the spool keeps a reference to it and
     * the digest, not a second copy of the bytes (docs/import.md). */
    memcpy(p->sha, sha, 32);
    p->it.ref_sha256 = p->sha;
    p->origin = mv_xstrdup(m->origin);
    p->mail_from = envelope_sender(m->mbox_from);
    if (m->mbox_from)
        p->facts = mv_xasprintf("kind=%s; variant=%s; separator=From %s", m->kind,
                                m->mbox_variant ? m->mbox_variant : "", m->mbox_from);
    else if (m->anomaly)
        p->facts = mv_xasprintf("kind=%s; anomaly=%s", m->kind, m->anomaly);
    else
        p->facts = mv_xasprintf("kind=%s", m->kind);
    mv_arrival *a = &p->it.arr;
    a->received_us = mv_now_us();
    a->source = "import";
    a->origin = p->origin;
    a->mail_from = p->mail_from;
    a->facts = p->facts;
    a->note = "receipt time is the time of import";
    memcpy(a->copy_id, cid, 32);
    a->has_copy_id = 1;
    im->bytes += m->len + p->it.raw_len;
    if (im->n < im->limit && im->bytes < SPOOL_BATCH_BYTES)
        return MV_OK;
    im->limit = im->limit * 2 < SPOOL_BATCH ? im->limit * 2 : SPOOL_BATCH;
    return flush(im, err);
}

static int ref_cmp(const void *a, const void *b)
{
    return memcmp(((const spool_ref *)a)->sha, ((const spool_ref *)b)->sha, 32);
}

/* resolve_path - one pass over the file or Maildir at path: every message
 * that is an unresolved reference (same origin, same digest) goes to the
 * pipeline under its spool number, so its commit removes it from the
 * spool.  Stops once the references naming path are all found. */
static mv_status resolve_path(imp *im, const char *path, size_t want, const mv_source_limits *lim,
                              mv_err *err)
{
    mv_source *src = NULL;
    char *const one[1] = {(char *)path};
    mv_err serr = {0};
    if (mv_source_open(one, 1, lim, warn_fn, im, &src, &serr))
        return MV_OK; /* gone or unreadable: the references stay */
    mv_status st = MV_OK;
    while (want && !st) {
        mv_source_msg m;
        if (mv_source_next(src, &m, &serr))
            break;
        spool_ref key;
        memset(&key, 0, sizeof key);
        copy_sha(&m, key.sha);
        spool_ref *hit = bsearch(&key, im->refs, im->n_refs, sizeof *im->refs, ref_cmp);
        if (!hit)
            continue;
        while (hit > im->refs && !memcmp(hit[-1].sha, key.sha, 32))
            hit--;
        for (; hit < im->refs + im->n_refs && !memcmp(hit->sha, key.sha, 32); hit++)
            if (!hit->done && hit->len == m.len && hit->arr.origin &&
                !strcmp(hit->arr.origin, m.origin))
                break;
        if (hit == im->refs + im->n_refs || hit->done || memcmp(hit->sha, key.sha, 32))
            continue;
        pending p;
        memset(&p, 0, sizeof p);
        take_bytes(&p, src, &m);
        p.it.arr = hit->arr;
        p.it.seq = hit->seq;
        p.it.ref_sha256 = hit->sha;
        hit->done = 1;
        want--;
        im->r->replayed++;
        st = mv_pipeline_submit_take(im->pl, &p.it, err); /* takes the bytes */
        if (!st)
            mv_pipeline_wait_room(im->pl); /* as flush: one large message at a time */
    }
    mv_source_free(src);
    return st;
}

/* forget_refs - drop the references resolve_refs could not read back, each
 * told to on_forget first.  They were never reported imported; the file,
 * if it comes back, imports anew (its copy ids go with them). */
static mv_status forget_refs(imp *im, mv_err *err)
{
    uint64_t *seqs = mv_xcalloc(im->n_refs, sizeof *seqs);
    size_t n = 0;
    for (size_t i = 0; i < im->n_refs; i++) {
        if (im->refs[i].done)
            continue;
        seqs[n++] = im->refs[i].seq;
        if (im->o->on_forget)
            im->o->on_forget(im->o->forget_ctx, im->refs[i].arr.origin, im->refs[i].sha);
    }
    mv_status st = mv_spool_forget(im->s, seqs, n, err);
    free(seqs);
    if (st)
        return st;
    im->r->forgotten = n;
    im->r->unresolved -= n;
    mv_log_warn("import: %llu arrival%s spooled by an interrupted import, whose file%s could not "
                "be read back, dropped from the spool as asked (--forget-unresolved)",
                (unsigned long long)n, n == 1 ? "" : "s", n == 1 ? "" : "s");
    return MV_OK;
}

/* resolve_refs - read back the arrivals an interrupted import spooled by
 * reference (one pass per file named).  A file that is gone, or no longer
 * holds the same bytes under the same origin, leaves its arrivals in the
 * spool, counted in r->unresolved: they were never reported imported, and
 * a later import that finds the bytes again resolves them. */
static mv_status resolve_refs(imp *im, const mv_source_limits *lim, mv_err *err)
{
    mv_status st = MV_OK;
    if (!im->n_refs)
        return MV_OK;
    /* The files in the order their first arrival was spooled (the refs
     * come in spool order), so that serials keep following acceptance. */
    char **paths = mv_xcalloc(im->n_refs, sizeof *paths);
    size_t *want = mv_xcalloc(im->n_refs, sizeof *want), n_paths = 0;
    for (size_t i = 0; i < im->n_refs; i++) {
        const char *path = im->refs[i].path;
        size_t j = 0;
        if (!path)
            continue;
        while (j < n_paths && strcmp(paths[j], path) != 0)
            j++;
        if (j == n_paths)
            paths[n_paths++] = mv_xstrdup(path);
        want[j]++;
    }
    qsort(im->refs, im->n_refs, sizeof *im->refs, ref_cmp);
    for (size_t j = 0; j < n_paths && !st; j++)
        st = resolve_path(im, paths[j], want[j], lim, err);
    for (size_t j = 0; j < n_paths; j++)
        free(paths[j]);
    free(paths);
    free(want);
    for (size_t i = 0; i < im->n_refs; i++)
        im->r->unresolved += !im->refs[i].done;
    if (!st && im->r->unresolved && im->o->forget_unresolved)
        return forget_refs(im, err);
    if (im->r->unresolved) /* even with --quiet: mail is waiting */
        mv_log_warn("import: %llu arrival%s spooled by an interrupted import could not be read "
                    "back from %s file%s (moved or changed since): kept in the spool "
                    "(import --forget-unresolved drops them, on the record)",
                    (unsigned long long)im->r->unresolved, im->r->unresolved == 1 ? "" : "s",
                    im->r->unresolved == 1 ? "its" : "their", im->r->unresolved == 1 ? "" : "s");
    return st;
}

mv_status mv_import(mv_store *s, char *const *paths, size_t npaths, const mv_import_opts *o,
                    mv_import_result *r, mv_err *err)
{
    mv_status st;
    mv_source *src = NULL;
    mv_source_limits lim;
    mv_progress *prog = NULL;
    mv_pipeline_opts po = {.workers = o ? o->workers : 0};
    mv_import_opts defaults = {0};
    imp *im = mv_xcalloc(1, sizeof *im);
    double t0 = mv_mono();
    memset(r, 0, sizeof *r);
    im->s = s;
    im->o = o ? o : &defaults;
    im->r = r;
    im->limit = SPOOL_FIRST_BATCH;
    mv_source_limits_default(&lim);
    mv_escrow *esc = NULL;
    if (im->o->walk) {
        /* walked ahead, on the same paths with the same limits */
        mv_import_walk *w = im->o->walk;
        walk_join(w);
        for (size_t i = 0; i + 1 < w->nwarn; i += 2)
            warn_fn(im, w->warn[i], w->warn[i + 1]);
        src = w->src;
        if (src)
            mv_source_set_warn(src, warn_fn, im);
        st = w->st;
        if (st && err)
            *err = w->err;
        walk_drop(w);
        if (st)
            goto out_nopipe;
    } else if ((st = mv_source_open(paths, npaths, &lim, warn_fn, im, &src, err))) {
        goto out_nopipe;
    }
    /* escrowed keys decrypt as the mail goes in (an archive without any
     * still records what encrypted mail was encrypted to) */
    if ((st = mv_escrow_load(s, &esc, err)))
        goto out_nopipe;
    po.escrow = esc;
    if ((st = mv_pipeline_start(s, &po, &im->pl, err)))
        goto out_nopipe;
    /* An earlier run's accepted arrivals go first: they were promised. */
    if ((st = mv_spool_replay(s, replay_one, im, err)) || (st = resolve_refs(im, &lim, err)))
        goto out;
    if (im->o->progress)
        prog = mv_progress_new("importing", mv_source_total_bytes(src));
    for (;;) {
        mv_source_msg m;
        st = mv_source_next(src, &m, err);
        if (st == MV_ENOTFOUND) {
            st = MV_OK;
            break;
        }
        if (st)
            goto out;
        r->found++;
        r->bytes += m.len;
        if ((st = add(im, src, &m, err)))
            goto out;
        if (prog && (r->found & 63) == 0) {
            mv_pipeline_stats ps;
            mv_pipeline_get_stats(im->pl, &ps);
            mv_progress_update(prog, ps.committed, mv_source_done_bytes(src));
        }
    }
    st = flush(im, err);
    /* The input has ended; what is in flight takes a while yet.  The
     * memtables' flush starts now, beside it, instead of all at close. */
    if (!st)
        mv_store_flush_begin(s);
out:;
    mv_pipeline_stats ps;
    mv_err ferr = {0};
    mv_status fst = mv_pipeline_finish(im->pl, &ps, &ferr);
    if (!st && fst) {
        st = fst;
        if (err)
            *err = ferr;
    }
    r->imported = ps.new_messages;
    r->duplicates = ps.merged;
    r->already += ps.already;
    r->defective = ps.defective;
    r->failed = ps.failed;
    r->stored_bytes = ps.stored_bytes;
out_nopipe:
    if (src) {
        r->skipped_files = mv_source_skipped(src);
        r->failed += mv_source_failed(src);
    }
    for (size_t i = 0; i < im->n; i++)
        pending_free(&im->batch[i]);
    for (size_t i = 0; i < im->n_refs; i++)
        spool_ref_free(&im->refs[i]);
    free(im->refs);
    mv_progress_free(prog);
    mv_source_free(src);
    mv_escrow_free(esc);
    free(im);
    r->seconds = mv_mono() - t0;
    return st;
}
