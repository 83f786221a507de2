/* SPDX-License-Identifier: MIT */
/* match.c - search queries evaluated on one message (search/match.h).
 *
 * Nothing here decides what a query means: the document comes from
 * mv_xap_make_doc fed as search/index.c make_doc() feeds it, and the
 * query from the parser and the translation mv_xap_search uses, run by
 * Xapian over a database of that one document (mv_xap_match).  What this
 * file adds is what index.c takes from the store, for a message the store
 * does not have yet:
 *   - the envelope recipients, normalised as index.c env_addrs() does;
 *   - the date (the pipeline's Date header, else the receipt time) and
 *     the flags (a signature met by the extractor);
 *   - the vocabulary for wildcards: the archive's (mv_store_vocab_prefix,
 *     as index.c prefix_expand()) joined with the words this message will
 *     add to it when it is indexed, which the index's word hook sees and
 *     index.c vocab_local_part() adds (address local parts);
 *   - custodians, matched by name or alias as index.c custodian_expand().
 * Custodians and vocabulary words are kept for refresh_s seconds (see
 * match.h): reading and decrypting them for every message would cost more
 * than the evaluation itself.
 *
 * The message's own words reach us through the word hook, which xap calls
 * on the thread that makes the document: a thread-local pointer says
 * which evaluation they belong to, so one matcher serves many threads. */
#include "match.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/util.h"
#include "../store/keys.h"
#include "query.h"
#include "xap.h"

/* Words one wildcard may expand to (docs/search.md; index.c WILDCARD_MAX). */
#define MATCH_WILDCARD_MAX 1024
/* Address local parts joining the vocabulary are at most this long
 * (index.c vocab_local_part). */
#define MATCH_LOCAL_PART_MAX 64

/* One wildcard prefix's words in the archive's vocabulary, sorted. */
typedef struct vocab_ent {
    char *prefix;
    mv_status st; /* MV_OK, or MV_ELIMIT: more words than a wildcard may take */
    char **words;
    size_t n;
    double at; /* mv_mono() when read */
} vocab_ent;

struct mv_matcher {
    mv_store *s;
    mv_xap *x; /* detached: documents and queries, no database */
    mv_extract_limits lim;
    double refresh;     /* seconds */
    pthread_mutex_t mu; /* guards everything below */
    mv_custodian *cust;
    size_t n_cust;
    int have_cust;
    double cust_at;
    vocab_ent *voc;
    size_t n_voc;
};

struct mv_mquery {
    char *text;
    mv_qnode *q;
    int wildcards; /* the tree has a PREFIX node: the message's words are needed */
};

/* One evaluation (or a compile-time check): what the expansion callbacks
 * see. */
typedef struct evalctx {
    mv_matcher *m;
    int fresh;    /* read the store now, whatever the cache holds (compiling) */
    char **words; /* this message's vocabulary words; sorted and unique once
                     the document is made */
    size_t n, cap;
} evalctx;

static _Thread_local evalctx *tl_eval;

/* ---- hooks -------------------------------------------------------------- */

static void prf_hook(void *ctx, const void *p, size_t n, uint8_t out[32])
{
    mv_prf_eval(ctx, p, n, out);
}

static void add_word(evalctx *c, const char *w, size_t n)
{
    if (c->n == c->cap)
        c->words = mv_xrealloc(c->words, (c->cap = c->cap ? c->cap * 2 : 256) * sizeof *c->words);
    c->words[c->n++] = mv_xstrndup(w, n);
}

/* word_hook - a distinct word of the document being made on this thread. */
static void word_hook(void *ctx, const char *w, size_t n)
{
    (void)ctx;
    if (tl_eval)
        add_word(tl_eval, w, n);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void wipe_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i]) {
            explicit_bzero(v[i], strlen(v[i]));
            free(v[i]);
        }
    }
    free(v);
}

/* sort_unique - sort v[0..*n) and drop repeats (freed). */
static void sort_unique(char **v, size_t *n)
{
    if (*n < 2)
        return;
    qsort(v, *n, sizeof *v, cmp_str);
    size_t k = 1;
    for (size_t i = 1; i < *n; i++) {
        if (strcmp(v[i], v[k - 1]) == 0) {
            explicit_bzero(v[i], strlen(v[i]));
            free(v[i]);
        } else {
            v[k++] = v[i];
        }
    }
    *n = k;
}

/* ---- the store's answers, kept for a while -------------------------------- */

static void drop_custodians(mv_matcher *m)
{
    for (size_t i = 0; i < m->n_cust; i++)
        mv_custodian_clear(&m->cust[i]);
    free(m->cust);
    m->cust = NULL;
    m->n_cust = 0;
    m->have_cust = 0;
}

static void drop_vocab(vocab_ent *e)
{
    free(e->prefix);
    wipe_strs(e->words, e->n);
    memset(e, 0, sizeof *e);
}

static int stale(const mv_matcher *m, double at, double now)
{
    return now - at >= m->refresh || now < at;
}

/* custodian_addrs - copy the addresses of the custodian named name (by name
 * or alias, without regard to ASCII case) from the snapshot.  Under mu. */
static mv_status custodian_addrs(mv_matcher *m, const char *name, char ***addrs, size_t *n,
                                 mv_err *err)
{
    for (size_t i = 0; i < m->n_cust; i++) {
        const mv_custodian *c = &m->cust[i];
        int match = c->name && strcasecmp(c->name, name) == 0;
        for (size_t k = 0; !match && k < c->n_aliases; k++)
            match = c->aliases[k] && strcasecmp(c->aliases[k], name) == 0;
        if (!match)
            continue;
        *addrs = mv_xcalloc(c->n_addresses ? c->n_addresses : 1, sizeof **addrs);
        for (size_t k = 0; k < c->n_addresses; k++)
            (*addrs)[k] = mv_xstrdup(c->addresses[k] ? c->addresses[k] : "");
        *n = c->n_addresses;
        return MV_OK;
    }
    return mv_err_set(err, MV_ENOTFOUND, "unknown custodian '%s' (mailvault custodian list)", name);
}

/* expand_custodian - mv_xap_expand.custodian over the snapshot of the
 * archive's custodians, read again when stale. */
static mv_status expand_custodian(void *ctx, const char *name, char ***addrs, size_t *n,
                                  mv_err *err)
{
    evalctx *c = ctx;
    mv_matcher *m = c->m;
    *addrs = NULL;
    *n = 0;
    pthread_mutex_lock(&m->mu);
    if (m->have_cust && !c->fresh && !stale(m, m->cust_at, mv_mono())) {
        mv_status st = custodian_addrs(m, name, addrs, n, err);
        pthread_mutex_unlock(&m->mu);
        return st;
    }
    pthread_mutex_unlock(&m->mu);
    /* Read outside the lock: other evaluations go on meanwhile. */
    mv_custodian *cs = NULL;
    size_t nc = 0;
    double at = mv_mono();
    mv_status st = mv_store_custodians(m->s, &cs, &nc, err);
    if (st)
        return st;
    pthread_mutex_lock(&m->mu);
    drop_custodians(m);
    m->cust = cs;
    m->n_cust = nc;
    m->have_cust = 1;
    m->cust_at = at;
    st = custodian_addrs(m, name, addrs, n, err);
    pthread_mutex_unlock(&m->mu);
    return st;
}

/* find_vocab - the cache entry of prefix, or NULL.  Under mu. */
static vocab_ent *find_vocab(mv_matcher *m, const char *prefix)
{
    for (size_t i = 0; i < m->n_voc; i++)
        if (strcmp(m->voc[i].prefix, prefix) == 0)
            return &m->voc[i];
    return NULL;
}

/* store_vocab - the archive's words with prefix (a sorted copy in *out),
 * from the cache or the store.  MV_ELIMIT when more than a wildcard may
 * take (remembered: the vocabulary only grows). */
static mv_status store_vocab(evalctx *c, const char *prefix, char ***out, size_t *n, mv_err *err)
{
    mv_matcher *m = c->m;
    *out = NULL;
    *n = 0;
    double now = mv_mono();
    pthread_mutex_lock(&m->mu);
    vocab_ent *e = find_vocab(m, prefix);
    if (!e || c->fresh || stale(m, e->at, now)) {
        pthread_mutex_unlock(&m->mu);
        char **w = NULL;
        size_t nw = 0;
        mv_status st = mv_store_vocab_prefix(m->s, prefix, MATCH_WILDCARD_MAX, &w, &nw, err);
        if (st && st != MV_ELIMIT)
            return st;
        sort_unique(w, &nw);
        pthread_mutex_lock(&m->mu);
        e = find_vocab(m, prefix);
        if (!e) {
            if (m->n_voc == MV_MATCH_CACHE_MAX) {
                size_t old = 0;
                for (size_t i = 1; i < m->n_voc; i++)
                    if (m->voc[i].at < m->voc[old].at)
                        old = i;
                drop_vocab(&m->voc[old]);
                m->voc[old] = m->voc[--m->n_voc];
            }
            m->voc = mv_xrealloc(m->voc, (m->n_voc + 1) * sizeof *m->voc);
            e = &m->voc[m->n_voc++];
            memset(e, 0, sizeof *e);
            e->prefix = mv_xstrdup(prefix);
        } else {
            wipe_strs(e->words, e->n);
        }
        e->st = st;
        e->words = w;
        e->n = nw;
        e->at = now;
    }
    mv_status st = e->st;
    if (st == MV_OK && e->n) {
        *out = mv_xcalloc(e->n, sizeof **out);
        for (size_t i = 0; i < e->n; i++)
            (*out)[i] = mv_xstrdup(e->words[i]);
        *n = e->n;
    }
    pthread_mutex_unlock(&m->mu);
    if (st)
        return mv_err_set(err, st, "more than %d words start with '%s'", MATCH_WILDCARD_MAX,
                          prefix);
    return MV_OK;
}

/* expand_prefix - mv_xap_expand.prefix: the archive's words with the
 * prefix and this message's, merged (both sorted). */
static mv_status expand_prefix(void *ctx, const char *prefix, size_t max, char ***words, size_t *n,
                               mv_err *err)
{
    evalctx *c = ctx;
    *words = NULL;
    *n = 0;
    if (max > MATCH_WILDCARD_MAX)
        max = MATCH_WILDCARD_MAX;
    char **sw = NULL;
    size_t sn = 0;
    mv_status st = store_vocab(c, prefix, &sw, &sn, err);
    if (st)
        return st;
    size_t plen = strlen(prefix), lo = 0, hi = c->n;
    while (lo < hi) { /* the first of the message's words not below prefix */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(c->words[mid], prefix) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < c->n && strncmp(c->words[end], prefix, plen) == 0)
        end++;
    char **out = mv_xcalloc(sn + (end - lo) + 1, sizeof *out);
    size_t k = 0, i = 0, j = lo;
    while (i < sn || j < end) {
        int d = i == sn ? 1 : j == end ? -1 : strcmp(sw[i], c->words[j]);
        if (d <= 0) {
            out[k++] = sw[i++];
            if (d == 0)
                j++;
        } else {
            out[k++] = mv_xstrdup(c->words[j++]);
        }
    }
    free(sw); /* its strings moved to out */
    if (k > max) {
        wipe_strs(out, k);
        return mv_err_set(err, MV_ELIMIT, "more than %zu words start with '%s'", max, prefix);
    }
    *words = out;
    *n = k;
    return MV_OK;
}

/* ---- matcher -------------------------------------------------------------- */

mv_status mv_matcher_new(mv_store *s, const mv_matcher_opts *o, mv_matcher **out, mv_err *err)
{
    if (out)
        *out = NULL;
    if (!s || !out)
        return mv_err_set(err, MV_EUSAGE, "mv_matcher_new: missing argument");
    mv_matcher *m = mv_xcalloc(1, sizeof *m);
    m->s = s;
    if (o)
        m->lim = o->limits;
    m->refresh = o && o->refresh_s ? o->refresh_s : MV_MATCH_REFRESH_S;
    pthread_mutex_init(&m->mu, NULL);
    mv_xap_hooks h = {prf_hook, (void *)mv_store_index_prf(s), word_hook, NULL,
                      o ? o->language : NULL};
    mv_status st = mv_xap_open_detached(&h, &m->x, err);
    if (st) {
        mv_matcher_free(m);
        return st;
    }
    *out = m;
    return MV_OK;
}

void mv_matcher_free(mv_matcher *m)
{
    if (!m)
        return;
    mv_xap_close(m->x);
    drop_custodians(m);
    for (size_t i = 0; i < m->n_voc; i++)
        drop_vocab(&m->voc[i]);
    free(m->voc);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void mv_matcher_refresh(mv_matcher *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    drop_custodians(m);
    for (size_t i = 0; i < m->n_voc; i++)
        drop_vocab(&m->voc[i]);
    free(m->voc);
    m->voc = NULL;
    m->n_voc = 0;
    pthread_mutex_unlock(&m->mu);
}

/* has_prefix - whether the tree holds a wildcard.  The parser bounds its
 * depth (max_depth), so the recursion is bounded too. */
static int has_prefix(const mv_qnode *n)
{
    if (!n)
        return 0;
    if (n->kind == MV_Q_PREFIX)
        return 1;
    for (size_t i = 0; i < n->n_kids; i++)
        if (n->kids && has_prefix(n->kids[i]))
            return 1;
    return 0;
}

mv_status mv_matcher_compile(mv_matcher *m, const char *query, mv_mquery **out, mv_err *err)
{
    if (out)
        *out = NULL;
    if (!m || !query || !out)
        return mv_err_set(err, MV_EUSAGE, "mv_matcher_compile: missing argument");
    mv_qnode *q = NULL;
    /* The limits search parses with (NULL: the defaults). */
    mv_status st = mv_query_parse(query, NULL, &q, err);
    if (st)
        return st;
    /* The errors search would give before searching, from the archive as
     * it is now (a custodian added a moment ago counts). */
    evalctx c = {.m = m, .fresh = 1};
    mv_xap_expand e = {&c, expand_custodian, expand_prefix};
    if ((st = mv_xap_check(m->x, q, &e, err))) {
        mv_query_free(q);
        return st;
    }
    mv_mquery *mq = mv_xcalloc(1, sizeof *mq);
    mq->text = mv_xstrdup(query);
    mq->q = q;
    mq->wildcards = has_prefix(q);
    *out = mq;
    return MV_OK;
}

void mv_mquery_free(mv_mquery *q)
{
    if (!q)
        return;
    mv_query_free(q->q);
    free(q->text);
    free(q);
}

const char *mv_mquery_text(const mv_mquery *q)
{
    return q ? q->text : NULL;
}

/* ---- evaluation ------------------------------------------------------------ */

static void push_str(char ***v, size_t *n, size_t *cap, char *s)
{
    if (*n == *cap)
        *v = mv_xrealloc(*v, (*cap = *cap ? *cap * 2 : 8) * sizeof **v);
    (*v)[(*n)++] = s;
}

/* env_addrs - each recipient string's addresses as index.c reads a copy's:
 * every <...> in it, or the whole string when it has none; lower-cased. */
static void env_addrs(const char *const *rcpt, size_t n, char ***v, size_t *nv, size_t *cap)
{
    for (size_t i = 0; i < n; i++) {
        const char *r = rcpt[i];
        if (!r)
            continue;
        int any = 0;
        for (const char *a = strchr(r, '<'); a; a = strchr(a + 1, '<')) {
            const char *e = strchr(a, '>');
            if (!e)
                break;
            if (e > a + 1) {
                push_str(v, nv, cap, mv_xstrndup(a + 1, (size_t)(e - a - 1)));
                any = 1;
            }
            a = e;
        }
        if (!any && *r)
            push_str(v, nv, cap, mv_xstrdup(r));
    }
    for (size_t i = 0; i < *nv; i++)
        for (char *q = (*v)[i]; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
}

/* add_local_part - an address's local part joins the vocabulary when the
 * message is indexed (so to:xenia.tro* finds a bare address). */
static void add_local_part(evalctx *c, const char *addr)
{
    const char *at = strrchr(addr, '@');
    size_t n = at ? (size_t)(at - addr) : 0;
    if (n && n <= MATCH_LOCAL_PART_MAX)
        add_word(c, addr, n);
}

mv_status mv_matcher_eval(mv_matcher *m, const mv_mquery *const *q, size_t nq,
                          const mv_match_msg *msg, int *hits, mv_err *err)
{
    if (!m || !msg || (nq && (!q || !hits)) || (!msg->x && !msg->bytes && msg->n) ||
        (msg->n_env && !msg->env) || (msg->n_holds && !msg->holds))
        return mv_err_set(err, MV_EUSAGE, "mv_matcher_eval: missing argument");
    if (nq == 0)
        return MV_OK;
    const mv_qnode **qn = mv_xcalloc(nq, sizeof *qn);
    int words = 0;
    for (size_t i = 0; i < nq; i++) {
        if (!q[i]) {
            free(qn);
            return mv_err_set(err, MV_EUSAGE, "mv_matcher_eval: query %zu is missing", i + 1);
        }
        qn[i] = q[i]->q;
        words |= q[i]->wildcards;
    }
    mv_extract *own = NULL;
    const mv_extract *x = msg->x;
    char **env = NULL;
    size_t nenv = 0, cenv = 0;
    mv_xap_doc *doc = NULL;
    evalctx c = {.m = m};
    mv_status st = MV_OK;
    if (!x) {
        static const uint8_t none[1];
        if ((st = mv_extract_message(msg->bytes ? msg->bytes : none, msg->n, &m->lim, &own, err)))
            goto out;
        x = own;
    }
    env_addrs(msg->env, msg->n_env, &env, &nenv, &cenv);
    unsigned flags = msg->flags;
    if (x->flags & MV_XF_SIGNED)
        flags |= MV_XD_SIGNED;
    int64_t date = msg->meta ? msg->meta->date_t : x->date;
    if (date == INT64_MIN)
        date = msg->received;
    /* Serial 1: any serial makes the same terms (docid and data only). */
    mv_xdoc xd = {.serial = 1,
                  .x = x,
                  .date = date,
                  .size = msg->size ? msg->size : (uint64_t)msg->n,
                  .env = (const char *const *)env,
                  .n_env = nenv,
                  .holds = msg->holds,
                  .n_holds = msg->n_holds,
                  .flags = flags};
    tl_eval = words ? &c : NULL;
    st = mv_xap_make_doc(m->x, &xd, &doc, err);
    tl_eval = NULL;
    if (st)
        goto out;
    if (words) {
        for (size_t i = 0; i < x->n; i++)
            if (x->s[i].kind == MV_XS_ADDR && x->s[i].text)
                add_local_part(&c, x->s[i].text);
        for (size_t i = 0; i < nenv; i++)
            add_local_part(&c, env[i]);
        sort_unique(c.words, &c.n);
    }
    mv_xap_expand e = {&c, expand_custodian, expand_prefix};
    st = mv_xap_match(m->x, doc, qn, nq, &e, hits, err);
out:
    mv_xap_doc_free(doc);
    wipe_strs(c.words, c.n);
    wipe_strs(env, nenv);
    mv_extract_free(own);
    free(qn);
    return st;
}
