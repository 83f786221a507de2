/* SPDX-License-Identifier: MIT */
/* index.c - the archive's search index: the store's change sequence in,
 * documents out (search/xap.h), queries through search/query.h.
 *
 * Updating reads changes in batches and queues one job per serial; worker
 * threads make the documents (read the message, its decryption and
 * copies; reuse the stored text or extract and store it; tokenise and
 * hash) while the one writer puts finished ones in queue order, and
 * commits with the last change of a completed batch as the index's
 * position (see "The update pipeline" below). */
#include "search.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/util.h"
#include "../store/keys.h"
#include "query.h"
#include "xap.h"

#define ROUND_MAX 1024         /* changes read and documents built per round */
/* Documents per commit by default: Xapian keeps a commit's postings in
 * memory until then (measured: 2,000 is as fast as 10,000 and holds a
 * fifth of the memory). */
#define COMMIT_DOCS 2000u
#define COMMIT_US 1000000 /* and at least once a second while documents wait */
#define WILDCARD_MAX 1024      /* words one wildcard may expand to (docs/search.md) */

/* Words already given to the vocabulary by this process: 64-bit hashes in
 * an open-addressed table (memory only; the words themselves are in the
 * pending list until written, sealed, to the store). */
typedef struct wordset {
    pthread_mutex_t mu;
    uint64_t *slot;
    size_t cap, n;
    char **pending;
    size_t n_pending, cap_pending;
} wordset;

struct mv_index {
    mv_store *s;
    mv_index_opts o;
    char *dir;
    mv_xap *w; /* writer, when writable */
    pthread_mutex_t rmu;
    mv_xap *r; /* reader for searches (opened on first use) */
    wordset words;
    int reextract; /* rebuild: make every message's text anew */
};

/* ---- hooks --------------------------------------------------------------- */

static void prf_hook(void *ctx, const void *p, size_t n, uint8_t out[32])
{
    mv_prf_eval(ctx, p, n, out);
}

static uint64_t fnv1a(const char *w, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)w[i]) * 1099511628211ull;
    return h ? h : 1;
}

static void word_hook(void *ctx, const char *w, size_t n)
{
    wordset *ws = ctx;
    uint64_t h = fnv1a(w, n);
    pthread_mutex_lock(&ws->mu);
    if ((ws->n + 1) * 2 > ws->cap) {
        size_t cap = ws->cap ? ws->cap * 2 : 1u << 16;
        uint64_t *slot = mv_xcalloc(cap, sizeof *slot);
        for (size_t i = 0; i < ws->cap; i++) {
            if (!ws->slot[i])
                continue;
            size_t j = ws->slot[i] & (cap - 1);
            while (slot[j])
                j = (j + 1) & (cap - 1);
            slot[j] = ws->slot[i];
        }
        free(ws->slot);
        ws->slot = slot;
        ws->cap = cap;
    }
    size_t j = h & (ws->cap - 1);
    while (ws->slot[j] && ws->slot[j] != h)
        j = (j + 1) & (ws->cap - 1);
    if (!ws->slot[j]) {
        ws->slot[j] = h;
        ws->n++;
        if (ws->n_pending == ws->cap_pending)
            ws->pending = mv_xrealloc(ws->pending, (ws->cap_pending = ws->cap_pending
                                                        ? ws->cap_pending * 2
                                                        : 1024) * sizeof *ws->pending);
        ws->pending[ws->n_pending++] = mv_xstrndup(w, n);
    }
    pthread_mutex_unlock(&ws->mu);
}

/* vocab_flush - write the pending new words (sealed) to the store. */
static mv_status vocab_flush(mv_index *ix, mv_err *err)
{
    wordset *ws = &ix->words;
    pthread_mutex_lock(&ws->mu);
    char **p = ws->pending;
    size_t n = ws->n_pending;
    ws->pending = NULL;
    ws->n_pending = ws->cap_pending = 0;
    pthread_mutex_unlock(&ws->mu);
    mv_status st = n ? mv_store_vocab_add(ix->s, (const char *const *)p, n, err) : MV_OK;
    for (size_t i = 0; i < n; i++) {
        explicit_bzero(p[i], strlen(p[i]));
        free(p[i]);
    }
    free(p);
    return st;
}

static mv_status custodian_expand(void *ctx, const char *name, char ***addrs, size_t *n,
                                  mv_err *err)
{
    mv_index *ix = ctx;
    mv_custodian *c = NULL;
    size_t nc = 0;
    *addrs = NULL;
    *n = 0;
    mv_status st = mv_store_custodians(ix->s, &c, &nc, err);
    if (st)
        return st;
    st = MV_ENOTFOUND;
    for (size_t i = 0; i < nc && st == MV_ENOTFOUND; i++) {
        int match = strcasecmp(c[i].name, name) == 0;
        for (size_t k = 0; !match && k < c[i].n_aliases; k++)
            match = strcasecmp(c[i].aliases[k], name) == 0;
        if (!match)
            continue;
        *addrs = mv_xcalloc(c[i].n_addresses ? c[i].n_addresses : 1, sizeof **addrs);
        for (size_t k = 0; k < c[i].n_addresses; k++)
            (*addrs)[k] = mv_xstrdup(c[i].addresses[k]);
        *n = c[i].n_addresses;
        st = MV_OK;
    }
    for (size_t i = 0; i < nc; i++)
        mv_custodian_clear(&c[i]);
    free(c);
    if (st == MV_ENOTFOUND)
        mv_err_set(err, MV_ENOTFOUND, "unknown custodian '%s' (mailvault custodian list)", name);
    return st;
}

static mv_status prefix_expand(void *ctx, const char *prefix, size_t max, char ***words,
                               size_t *n, mv_err *err)
{
    mv_index *ix = ctx;
    return mv_store_vocab_prefix(ix->s, prefix, max < WILDCARD_MAX ? max : WILDCARD_MAX, words, n,
                                 err);
}

/* ---- open / close -------------------------------------------------------- */

static mv_xap_hooks hooks_for(mv_index *ix)
{
    mv_xap_hooks h = {prf_hook, (void *)mv_store_index_prf(ix->s), word_hook, &ix->words,
                      ix->o.language};
    return h;
}

static mv_status open_at(mv_store *s, const mv_index_opts *o, const char *dir, mv_index **out,
                         mv_err *err)
{
    mv_index *ix = mv_xcalloc(1, sizeof *ix);
    ix->s = s;
    if (o)
        ix->o = *o;
    if (!ix->o.commit_docs)
        ix->o.commit_docs = COMMIT_DOCS;
    if (!ix->o.threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        ix->o.threads = n > 0 && n < 64 ? (unsigned)n : 2;
    }
    ix->dir = mv_xstrdup(dir);
    pthread_mutex_init(&ix->rmu, NULL);
    pthread_mutex_init(&ix->words.mu, NULL);
    mv_status st = MV_OK;
    if (ix->o.writable) {
        mv_xap_opts xo = {1, 1};
        mv_xap_hooks h = hooks_for(ix);
        st = mv_xap_open(ix->dir, &xo, &h, &ix->w, err);
    }
    if (st) {
        mv_index_close(ix);
        return st;
    }
    *out = ix;
    return MV_OK;
}

static char *index_dir(mv_store *s, const char *leaf)
{
    return mv_xasprintf("%s/%s", mv_store_dir(s), leaf);
}

mv_status mv_index_open(mv_store *s, const mv_index_opts *o, mv_index **out, mv_err *err)
{
    char *dir = index_dir(s, "index");
    mv_status st = open_at(s, o, dir, out, err);
    free(dir);
    return st;
}

void mv_index_close(mv_index *ix)
{
    if (!ix)
        return;
    mv_xap_close(ix->w);
    mv_xap_close(ix->r);
    pthread_mutex_destroy(&ix->rmu);
    for (size_t i = 0; i < ix->words.n_pending; i++)
        free(ix->words.pending[i]);
    free(ix->words.pending);
    free(ix->words.slot);
    pthread_mutex_destroy(&ix->words.mu);
    free(ix->dir);
    free(ix);
}

/* reader - the read-only handle for searches (a writable index searches
 * through it too, so a search never waits for a round of updates). */
static mv_status reader(mv_index *ix, mv_xap **out, mv_err *err)
{
    if (!ix->r) {
        mv_xap_opts xo = {0, 0};
        mv_xap_hooks h = hooks_for(ix);
        h.word = NULL;
        mv_status st = mv_xap_open(ix->dir, &xo, &h, &ix->r, err);
        if (st == MV_ENOTFOUND)
            return mv_err_set(err, MV_ENOTFOUND,
                              "the archive has no index yet (mailvault reindex builds it)");
        if (st)
            return st;
    }
    *out = ix->r;
    return MV_OK;
}

uint64_t mv_index_lag(mv_index *ix)
{
    uint64_t last = mv_store_last_change(ix->s), pos = 0;
    if (ix->w) {
        pos = mv_xap_last_change(ix->w);
    } else {
        pthread_mutex_lock(&ix->rmu);
        mv_xap *r;
        if (reader(ix, &r, NULL) == MV_OK)
            pos = mv_xap_last_change(r);
        pthread_mutex_unlock(&ix->rmu);
    }
    return last > pos ? last - pos : 0;
}

uint64_t mv_index_lag_of(mv_store *s)
{
    mv_index *ix = NULL;
    mv_index_opts o = {0};
    if (mv_index_open(s, &o, &ix, NULL) != MV_OK)
        return mv_store_last_change(s);
    uint64_t lag = mv_index_lag(ix);
    mv_index_close(ix);
    return lag;
}

/* ---- making documents ---------------------------------------------------- */

typedef struct job {
    uint64_t serial;
    int reextract; /* a decryption came later: the stored text is stale */
    mv_xap_doc *doc;
    int gone;      /* no message record (purged): delete the document */
    mv_status st;
    mv_err err;
    int extracted, failed;
    mv_err read_err; /* why its bytes could not be read */
    int ready;       /* built (under the upipe's mutex) */
    uint64_t pos;    /* the last of its batch: the index's position once it is put */
} job;

static mv_status collect(void *ctx, const uint8_t *p, size_t n, mv_err *err)
{
    (void)err;
    mv_buf_append(ctx, p, n);
    return MV_OK;
}

/* env_addrs - the addresses in a copy's recipient strings: each <...>, or
 * the whole string when it has none; lower-cased, appended to v. */
static void env_addrs(char *const *rcpt, size_t n, char ***v, size_t *nv, size_t *cap)
{
    for (size_t i = 0; i < n; i++) {
        const char *r = rcpt[i];
        int any = 0;
        for (const char *a = strchr(r, '<'); a; a = strchr(a + 1, '<')) {
            const char *e = strchr(a, '>');
            if (!e)
                break;
            if (e > a + 1) {
                if (*nv == *cap)
                    *v = mv_xrealloc(*v, (*cap = *cap ? *cap * 2 : 8) * sizeof **v);
                (*v)[(*nv)++] = mv_xstrndup(a + 1, (size_t)(e - a - 1));
                any = 1;
            }
            a = e;
        }
        if (!any && *r) {
            if (*nv == *cap)
                *v = mv_xrealloc(*v, (*cap = *cap ? *cap * 2 : 8) * sizeof **v);
            (*v)[(*nv)++] = mv_xstrdup(r);
        }
    }
    for (size_t i = 0; i < *nv; i++)
        for (char *q = (*v)[i]; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
}

static void vocab_local_part(mv_index *ix, const char *addr)
{
    const char *at = strrchr(addr, '@');
    size_t n = at ? (size_t)(at - addr) : 0;
    if (n && n <= 64)
        word_hook(&ix->words, addr, n);
}

static mv_status make_doc(mv_index *ix, job *j, mv_err *err)
{
    mv_store *s = ix->s;
    mv_message *m = NULL;
    mv_decryption *d = NULL;
    mv_copy **cs = NULL;
    size_t nc = 0, nenv = 0, cenv = 0;
    char **env = NULL;
    mv_extract *x = NULL;
    mv_buf b = MV_BUF_INIT;
    mv_status st = mv_store_message(s, j->serial, &m, err);
    if (st == MV_ENOTFOUND) {
        j->gone = 1;
        return MV_OK;
    }
    if (st)
        return st;
    unsigned flags = 0;
    st = mv_store_decryption(s, j->serial, &d, err);
    if (st == MV_ENOTFOUND)
        st = MV_OK;
    else if (!st) {
        /* A record with no scheme is a signature verified on mail that
         * came in the clear: signed, not encrypted. */
        int encrypted = d->decrypted || (d->scheme && *d->scheme) || (d->failure && *d->failure);
        if (encrypted)
            flags |= MV_XD_ENCRYPTED | (d->decrypted ? MV_XD_DECRYPTED : MV_XD_UNDECRYPTABLE);
        if (d->sig)
            flags |= MV_XD_SIGNED;
    }
    if (!st && !(st = mv_store_copies(s, j->serial, &cs, &nc, err)))
        for (size_t i = 0; i < nc; i++)
            env_addrs(cs[i]->rcpt, cs[i]->n_rcpt, &env, &nenv, &cenv);
    if (st)
        goto out;
    /* The text: stored once; made again only when missing, damaged, or
     * made before the message was decrypted. */
    if (!j->reextract && mv_store_text(s, j->serial, &b, NULL) == MV_OK &&
        mv_extract_decode(b.data, b.len, &x, NULL) == MV_OK) {
        /* reused */
    } else {
        mv_buf_wipe(&b);
        if (d && d->decrypted)
            st = mv_store_read_decrypted(s, j->serial, collect, &b, &j->read_err);
        else
            st = mv_store_read(s, j->serial, 0, collect, &b, &j->read_err);
        if (st) {
            /* Damaged bytes (verify reports them) must not stop the index
             * or hide the message: it is indexed by what its records say. */
            j->failed = 1;
            st = MV_OK;
            x = mv_xcalloc(1, sizeof *x);
            x->date = INT64_MIN;
        } else {
            if ((st = mv_extract_message(b.data, b.len, &ix->o.limits, &x, err)))
                goto out;
            mv_buf_wipe(&b);
            mv_extract_encode(x, &b);
            if ((st = mv_store_put_text(s, j->serial, b.data, b.len, err)))
                goto out;
            j->extracted = 1;
        }
    }
    /* Local parts join the vocabulary, so a wildcard finds a bare
     * address (to:xenia.tro*) as it finds a name. */
    for (size_t i = 0; i < x->n; i++)
        if (x->s[i].kind == MV_XS_ADDR)
            vocab_local_part(ix, x->s[i].text);
    for (size_t i = 0; i < nenv; i++)
        vocab_local_part(ix, env[i]);
    if (x->flags & MV_XF_SIGNED)
        flags |= MV_XD_SIGNED;
    int64_t date = m->meta.date_t != INT64_MIN ? m->meta.date_t : m->received_us / 1000000;
    /* the legal holds on it: hold:MATTER and is:held */
    char **holds = NULL;
    size_t nholds = 0;
    if ((st = mv_store_holds_of(s, j->serial, &holds, &nholds, err)))
        goto out;
    mv_xdoc xd = {j->serial, x,    date, m->size, (const char *const *)env, nenv,
                  (const char *const *)holds, nholds, flags};
    st = mv_xap_make_doc(ix->w, &xd, &j->doc, err);
    for (size_t i = 0; i < nholds; i++)
        free(holds[i]);
    free(holds);
out:
    mv_buf_wipe(&b);
    mv_extract_free(x);
    for (size_t i = 0; i < nenv; i++)
        free(env[i]);
    free(env);
    mv_copies_free(cs, nc);
    mv_decryption_free(d);
    mv_message_free(m);
    return st;
}

/* The update pipeline: the writer (the calling thread) reads changes and
 * queues one job per serial into a ring; worker threads build the
 * documents in any order; the writer puts them into the index in queue
 * order as they complete, so building and writing overlap. */
#define RING 2048

typedef struct upipe {
    mv_index *ix;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    job *ring;
    uint64_t head, take, tail; /* filled, taken by a worker, put */
    int stop;
} upipe;

static void *worker(void *arg)
{
    upipe *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->take == p->head && !p->stop)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->take == p->head)
            break;
        job *j = &p->ring[p->take++ % RING];
        pthread_mutex_unlock(&p->mu);
        j->st = make_doc(p->ix, j, &j->err);
        pthread_mutex_lock(&p->mu);
        j->ready = 1;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* queue - read the changes after *pos (at most what the ring has room
 * for) and queue a job per serial; the batch's last job carries the
 * position the index reaches once it is put.  0 when there was none. */
static mv_status queue(upipe *p, mv_change *ch, uint64_t *pos, size_t *queued, mv_err *err)
{
    *queued = 0;
    size_t room = RING - (size_t)(p->head - p->tail), n = 0;
    if (room < ROUND_MAX)
        return MV_OK;
    mv_status st = mv_store_changes(p->ix->s, *pos, ch, ROUND_MAX, &n, err);
    if (st || !n)
        return st;
    /* Several changes of one message in a batch make one document; the
     * flags are settled before a worker can take the job. */
    size_t nu = 0;
    uint64_t *serials = mv_xcalloc(n, sizeof *serials);
    uint8_t *re = mv_xcalloc(n, 1);
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < nu && serials[k] != ch[i].serial)
            k++;
        if (k == nu)
            serials[nu++] = ch[i].serial;
        if (ch[i].kind == MV_CHANGE_DECRYPTION || p->ix->reextract)
            re[k] = 1;
    }
    for (size_t k = 0; k < nu; k++) {
        job *j = &p->ring[p->head % RING];
        memset(j, 0, sizeof *j);
        j->serial = serials[k];
        j->reextract = re[k];
        if (k == nu - 1)
            j->pos = ch[n - 1].seq;
        pthread_mutex_lock(&p->mu);
        p->head++;
        pthread_cond_signal(&p->work);
        pthread_mutex_unlock(&p->mu);
    }
    free(serials);
    free(re);
    *pos = ch[n - 1].seq;
    *queued = n;
    return MV_OK;
}

static mv_status update_writer(mv_index *ix, mv_index_progress_fn progress, void *ctx,
                               mv_index_stats *stats, mv_err *err)
{
    mv_index_stats local = {0};
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!ix->w)
        return mv_err_set(err, MV_EUSAGE, "the index is not open for writing");
    uint64_t put_pos = mv_xap_last_change(ix->w), read_pos = put_pos;
    uint64_t target = mv_store_last_change(ix->s), start = put_pos, since_commit = 0;
    int64_t last_commit_us = mv_now_us();
    if (read_pos >= target)
        return MV_OK;
    upipe p = {.ix = ix};
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.work, NULL);
    pthread_cond_init(&p.done, NULL);
    p.ring = mv_xcalloc(RING, sizeof *p.ring);
    mv_change *ch = mv_xcalloc(ROUND_MAX, sizeof *ch);
    pthread_t th[64];
    unsigned nt = 0;
    for (unsigned i = 0; i < ix->o.threads && i < 64; i++)
        if (pthread_create(&th[nt], NULL, worker, &p) == 0)
            nt++;
    mv_status st = nt ? MV_OK : mv_err_set(err, MV_EINTERNAL, "cannot start indexing threads");
    int more = 1;
    while (!st) {
        size_t queued = 0;
        if (more && (st = queue(&p, ch, &read_pos, &queued, err)))
            break;
        if (more && !queued && p.head - p.tail < RING - ROUND_MAX) {
            /* caught up with what there was: look once more for changes
             * made meanwhile, then drain */
            uint64_t now = mv_store_last_change(ix->s);
            if (now <= read_pos)
                more = 0;
            target = now > target ? now : target;
            continue;
        }
        if (p.tail == p.head) {
            if (!more)
                break;
            continue;
        }
        job *j = &p.ring[p.tail % RING];
        pthread_mutex_lock(&p.mu);
        while (!j->ready)
            pthread_cond_wait(&p.done, &p.mu);
        pthread_mutex_unlock(&p.mu);
        if (j->st) {
            /* A message that cannot be read stops the index here: it
             * must not skip past it silently. */
            st = j->st;
            if (err)
                *err = j->err;
            mv_err_prefix(err, "indexing message %llu: ", (unsigned long long)j->serial);
        } else if (j->gone) {
            st = mv_xap_delete(ix->w, j->serial, err);
        } else if (j->doc) {
            st = mv_xap_put(ix->w, j->doc, err);
            j->doc = NULL;
            stats->documents++;
            since_commit++;
        }
        stats->extracted += (uint64_t)j->extracted;
        if (j->failed && !stats->failed++)
            stats->first_failed = j->serial;
        mv_xap_doc_free(j->doc);
        j->doc = NULL;
        p.tail++;
        if (st)
            break;
        if (j->pos) {
            stats->changes += j->pos - put_pos;
            put_pos = j->pos;
            /* By count, and by time: under steady traffic the daemon's
             * update never runs dry, and new mail must not wait for
             * thousands of others to become searchable. */
            if (since_commit >= ix->o.commit_docs ||
                (since_commit && mv_now_us() - last_commit_us >= COMMIT_US)) {
                last_commit_us = mv_now_us();
                if (!(st = vocab_flush(ix, err)))
                    st = mv_xap_commit(ix->w, put_pos, err);
                since_commit = 0;
            }
            if (progress)
                progress(ctx, put_pos - start, target > start ? target - start : 0);
        }
    }
    pthread_mutex_lock(&p.mu);
    p.stop = 1;
    pthread_cond_broadcast(&p.work);
    pthread_mutex_unlock(&p.mu);
    for (unsigned i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
    for (uint64_t k = p.tail; k < p.head; k++)
        mv_xap_doc_free(p.ring[k % RING].doc);
    if (!st && put_pos > mv_xap_last_change(ix->w) && !(st = vocab_flush(ix, err)))
        st = mv_xap_commit(ix->w, put_pos, err);
    free(ch);
    free(p.ring);
    pthread_cond_destroy(&p.work);
    pthread_cond_destroy(&p.done);
    pthread_mutex_destroy(&p.mu);
    return st;
}

mv_status mv_index_update(mv_index *ix, mv_index_progress_fn progress, void *ctx,
                          mv_index_stats *stats, mv_err *err)
{
    return update_writer(ix, progress, ctx, stats, err);
}

/* rm_tree - remove a directory of plain files (Xapian's has no
 * subdirectories); absent is fine. */
static mv_status rm_tree(const char *dir, mv_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? MV_OK : mv_err_sys(err, "opening %s", dir);
    struct dirent *e;
    mv_status st = MV_OK;
    while (!st && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = mv_xasprintf("%s/%s", dir, e->d_name);
        if (unlink(p) != 0)
            st = mv_err_sys(err, "removing %s", p);
        free(p);
    }
    closedir(d);
    if (!st && rmdir(dir) != 0)
        st = mv_err_sys(err, "removing %s", dir);
    return st;
}

/* compact_into - a compact copy of the index in dir at to (replacing
 * whatever is there), synced. */
static mv_status compact_into(const char *dir, const char *to, mv_err *err)
{
    mv_status st = rm_tree(to, err);
    if (!st)
        st = mv_xap_compact(dir, to, err);
    if (!st)
        st = mv_fsync_dir(to, err);
    return st;
}

/* swap_in - put the complete index at fresh in place of ARCHIVE/index. */
static mv_status swap_in(mv_store *s, const char *fresh, const char *live, mv_err *err)
{
    mv_status st = rm_tree(live, err);
    if (!st && rename(fresh, live) != 0)
        st = mv_err_sys(err, "putting the new index in place");
    if (!st)
        st = mv_fsync_dir(mv_store_dir(s), err);
    return st;
}

mv_status mv_index_rebuild(mv_store *s, const mv_index_opts *o, int reextract,
                           mv_index_progress_fn progress, void *ctx, mv_index_stats *stats,
                           mv_err *err)
{
    char *work = index_dir(s, "index.tmp"), *fresh = index_dir(s, "index.new"),
         *live = index_dir(s, "index");
    mv_index_opts wo = o ? *o : (mv_index_opts){0};
    wo.writable = 1;
    mv_index *ix = NULL;
    mv_status st = rm_tree(work, err);
    if (!st)
        st = open_at(s, &wo, work, &ix, err);
    if (!st) {
        ix->reextract = reextract;
        st = update_writer(ix, progress, ctx, stats, err);
    }
    mv_index_close(ix);
    /* Built in batches, then written once more in order: a third of the
     * size (measured), and the old index answers until the swap. */
    if (!st)
        st = compact_into(work, fresh, err);
    if (!st)
        st = rm_tree(work, err);
    if (!st)
        st = swap_in(s, fresh, live, err);
    free(work);
    free(fresh);
    free(live);
    return st;
}

mv_status mv_index_compact(mv_store *s, mv_err *err)
{
    char *fresh = index_dir(s, "index.new"), *live = index_dir(s, "index");
    mv_status st = compact_into(live, fresh, err);
    if (!st)
        st = swap_in(s, fresh, live, err);
    free(fresh);
    free(live);
    return st;
}

/* ---- search -------------------------------------------------------------- */

static char *first_to(const mv_message *m)
{
    return m->meta.to ? mv_xstrdup(m->meta.to) : NULL;
}

mv_status mv_index_search(mv_index *ix, const char *query, const mv_search_opts *o,
                          mv_search_result *out, mv_err *err)
{
    memset(out, 0, sizeof *out);
    mv_qnode *q = NULL;
    mv_status st = mv_query_parse(query, NULL, &q, err);
    if (st)
        return st;
    mv_xap_expand e = {ix, custodian_expand, prefix_expand};
    mv_xap_result xr = {0};
    mv_xsort sort = o->sort == MV_SORT_DATE_ASC    ? MV_XSORT_DATE_ASC
                    : o->sort == MV_SORT_RELEVANCE ? MV_XSORT_RELEVANCE
                                                   : MV_XSORT_DATE_DESC;
    pthread_mutex_lock(&ix->rmu);
    mv_xap *r = NULL;
    if (!(st = reader(ix, &r, err)))
        st = mv_xap_search(r, q, &e, o->offset, o->limit, sort, &xr, err);
    if (st)
        goto out;
    out->total = xr.total;
    out->rows = mv_xcalloc(xr.n ? xr.n : 1, sizeof *out->rows);
    mv_buf text = MV_BUF_INIT;
    for (size_t i = 0; i < xr.n && !st; i++) {
        mv_message *m = NULL;
        mv_status ms = mv_store_message(ix->s, xr.hits[i].serial, &m, err);
        if (ms == MV_ENOTFOUND)
            continue; /* purged since it was indexed */
        if ((st = ms))
            break;
        mv_search_row *row = &out->rows[out->n++];
        row->serial = xr.hits[i].serial;
        row->date = xr.hits[i].date;
        row->from = m->meta.from ? mv_xstrdup(m->meta.from) : NULL;
        row->to = first_to(m);
        row->subject = m->meta.subject ? mv_xstrdup(m->meta.subject) : NULL;
        mv_message_free(m);
        if (!o->snippet_chars)
            continue;
        /* Only the rows shown are decrypted, for their snippets. */
        mv_extract *x = NULL;
        if (mv_store_text(ix->s, row->serial, &text, NULL) == MV_OK &&
            mv_extract_decode(text.data, text.len, &x, NULL) == MV_OK) {
            mv_buf body = MV_BUF_INIT;
            for (size_t k = 0; k < x->n && body.len < 65536; k++)
                if (x->s[k].kind == MV_XS_BODY || x->s[k].kind == MV_XS_ATTACH_TEXT) {
                    if (body.len)
                        mv_buf_append_byte(&body, ' ');
                    mv_buf_append(&body, x->s[k].text, x->s[k].len);
                }
            /* one line: runs of white space (line ends, tabs) become one space */
            size_t w = 0;
            for (size_t k = 0; k < body.len; k++) {
                uint8_t ch = body.data[k];
                int ws = ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' ||
                         ch == '\v';
                if (ws && (w == 0 || body.data[w - 1] == ' '))
                    continue;
                body.data[w++] = ws ? ' ' : ch;
            }
            body.len = w;
            mv_buf_append_byte(&body, 0);
            st = mv_xap_highlight(r, q, &e, (const char *)body.data, body.len - 1,
                                  o->snippet_chars, o->hl_start ? o->hl_start : "[",
                                  o->hl_end ? o->hl_end : "]", &row->snippet, err);
            mv_buf_wipe(&body);
        }
        mv_extract_free(x);
    }
    mv_buf_wipe(&text);
out:
    pthread_mutex_unlock(&ix->rmu);
    mv_xap_result_free(&xr);
    mv_query_free(q);
    if (st)
        mv_search_result_free(out);
    return st;
}

void mv_search_result_free(mv_search_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->rows[i].from);
        free(r->rows[i].to);
        free(r->rows[i].subject);
        free(r->rows[i].snippet);
    }
    free(r->rows);
    memset(r, 0, sizeof *r);
}
