/* SPDX-License-Identifier: MIT */
/* xap.h - the Xapian index behind a C interface (xap.cc is the only C++
 * in the tree; no exception crosses this header: every Xapian error
 * becomes MV_EINDEX with Xapian's message).  Private to search/.
 *
 * No plaintext word reaches the index.  Every term is a field prefix and
 * a keyed hash of a stemmed, lower-cased word or of a normalised value,
 * made through the caller's PRF callback (search/ never holds key bytes):
 * a custom Xapian::StemImplementation hashes stems for the TermGenerator
 * (STEM_ALL, positions kept, so phrases work on hashed terms), and
 * boolean values (addresses, domains, message ids, flags) are hashed the
 * same way.  Document data holds only the serial (the docid is the serial
 * too).  The one plaintext is the date value slot (ranges, sorting) and
 * the size slot.
 *
 * Threads: mv_xap_make_doc may run on several threads at once (each call
 * uses its own TermGenerator); everything else on one mv_xap is for one
 * thread at a time (Xapian allows one writer), except on a detached
 * handle (mv_xap_open_detached), which has no database to share. */
#ifndef MV_SEARCH_XAP_H
#define MV_SEARCH_XAP_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "extract.h"
#include "query.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mv_xap mv_xap;
typedef struct mv_xap_doc mv_xap_doc;

/* The keyed hash: out = PRF(p[0..n)).  Must be thread-safe. */
typedef void (*mv_xap_prf_fn)(void *ctx, const void *p, size_t n, uint8_t out[32]);
/* Called with each distinct lower-cased word a document contained (before
 * stemming), so the caller can keep its encrypted vocabulary for
 * wildcards.  Called from the thread that made the document. */
typedef void (*mv_xap_word_fn)(void *ctx, const char *w, size_t n);

typedef struct mv_xap_hooks {
    mv_xap_prf_fn prf;
    void *prf_ctx;
    mv_xap_word_fn word; /* may be NULL */
    void *word_ctx;
    const char *language; /* stemmer, "english" when NULL; "none" for no stemming */
} mv_xap_hooks;

enum {
    MV_XD_ENCRYPTED = 1u << 0,
    MV_XD_DECRYPTED = 1u << 1,
    MV_XD_UNDECRYPTABLE = 1u << 2,
    MV_XD_SIGNED = 1u << 3,
};

/* One message as the index sees it.  Nothing is kept after the call. */
typedef struct mv_xdoc {
    uint64_t serial;
    const mv_extract *x;     /* its text (of the decrypted form when there is one) */
    int64_t date;            /* UTC seconds for the date slot: the Date header, else receipt */
    uint64_t size;           /* bytes of the archived message */
    const char *const *env;  /* envelope recipient addresses of every copy, lower-cased */
    size_t n_env;
    const char *const *holds; /* matters holding the message (compliance issue) */
    size_t n_holds;
    unsigned flags;          /* MV_XD_* */
} mv_xdoc;

/* Expansion of query leaves that need the store: the caller answers. */
typedef struct mv_xap_expand {
    void *ctx;
    /* A custodian's addresses (lower-case): *addrs is a malloc'd array of
     * n malloc'd strings, which xap frees.  MV_ENOTFOUND: no such custodian. */
    mv_status (*custodian)(void *ctx, const char *name, char ***addrs, size_t *n, mv_err *err);
    /* Words of the vocabulary starting with prefix (lower-case), at most
     * max of them, allocated as above.  MV_ELIMIT when there are more. */
    mv_status (*prefix)(void *ctx, const char *prefix, size_t max, char ***words, size_t *n,
                        mv_err *err);
} mv_xap_expand;

typedef struct mv_xap_opts {
    int create;   /* create the database when missing */
    int writable; /* open for writing (one writer: MV_ETEMP when locked) */
} mv_xap_opts;

/* mv_xap_open - open (or create) the index database in dir.  hooks is
 * copied.  *out owned by the caller (mv_xap_close). */
MV_NODISCARD mv_status mv_xap_open(const char *dir, const mv_xap_opts *o, const mv_xap_hooks *h,
                                   mv_xap **out, mv_err *err);
/* mv_xap_close - for a writable index, commits nothing: uncommitted
 * changes are dropped (callers commit explicitly). */
void mv_xap_close(mv_xap *x);

/* mv_xap_make_doc - build the document (tokenise, stem, hash).  Thread-safe.
 * *out owned by the caller until mv_xap_put (which takes it) or
 * mv_xap_doc_free. */
MV_NODISCARD mv_status mv_xap_make_doc(mv_xap *x, const mv_xdoc *d, mv_xap_doc **out, mv_err *err);
void mv_xap_doc_free(mv_xap_doc *d);
/* mv_xap_put - add or replace (by serial) the document; takes d. */
MV_NODISCARD mv_status mv_xap_put(mv_xap *x, mv_xap_doc *d, mv_err *err);
/* mv_xap_delete - remove a serial's document (absent is not an error). */
MV_NODISCARD mv_status mv_xap_delete(mv_xap *x, uint64_t serial, mv_err *err);
/* mv_xap_commit - make everything put so far durable, together with the
 * last change of the store's change sequence it reflects (one atomic
 * Xapian commit: after a crash the index and its position agree). */
MV_NODISCARD mv_status mv_xap_commit(mv_xap *x, uint64_t last_change, mv_err *err);
/* mv_xap_compact - write a compact copy of the committed index in from to
 * the new directory to (docids, metadata and position kept).  No writer
 * may be open on from. */
MV_NODISCARD mv_status mv_xap_compact(const char *from, const char *to, mv_err *err);
/* mv_xap_last_change - the position saved by the last commit (0 = none). */
uint64_t mv_xap_last_change(mv_xap *x);
uint64_t mv_xap_doc_count(mv_xap *x);

typedef enum { MV_XSORT_DATE_DESC = 0, MV_XSORT_DATE_ASC, MV_XSORT_RELEVANCE } mv_xsort;

typedef struct mv_xap_hit {
    uint64_t serial;
    int64_t date;
    double weight;
} mv_xap_hit;

typedef struct mv_xap_result {
    uint64_t total; /* exact number of matches */
    mv_xap_hit *hits;
    size_t n;
} mv_xap_result;

/* mv_xap_search - run the query: total is exact; hits [offset, offset+limit)
 * in the order asked (limit 0 = count only).  res owned by the caller
 * (mv_xap_result_free).
 * @retval MV_EINDEX Xapian failed
 * @retval MV_ENOTFOUND an unknown custodian (message names it)
 * @retval MV_ELIMIT a wildcard matches too many words (message names it) */
MV_NODISCARD mv_status mv_xap_search(mv_xap *x, const mv_qnode *q, const mv_xap_expand *e,
                                     uint64_t offset, uint64_t limit, mv_xsort sort,
                                     mv_xap_result *res, mv_err *err);
void mv_xap_result_free(mv_xap_result *r);

/* mv_xap_highlight - mark in text (UTF-8, e.g. a message body) the words
 * that match the query's free-text and body/subject/attachment terms,
 * returning a snippet of at most max_chars characters around the best
 * hits, with hits wrapped in start/end markers.  *out malloc'd (free).
 * The query is re-expanded through e as in mv_xap_search. */
MV_NODISCARD mv_status mv_xap_highlight(mv_xap *x, const mv_qnode *q, const mv_xap_expand *e,
                                        const char *text, size_t len, size_t max_chars,
                                        const char *start, const char *end, char **out,
                                        mv_err *err);

/* ---- one message at a time (search/match.h) ---------------------------------
 * The retention and hold rules test a message in the pipeline, before it
 * is archived, against compiled queries: its document is made as the
 * indexer makes it and each query is translated as mv_xap_search
 * translates it, then run over a database holding that one document, so
 * "matches" means exactly "the search would find it". */

/* mv_xap_open_detached - a handle with no database behind it, for
 * mv_xap_make_doc, mv_xap_check and mv_xap_match only (mv_xap_search finds
 * nothing in it; mv_xap_put refuses).  hooks is copied; its word callback
 * (may be NULL) is called, as for an index, from the thread that makes a
 * document.  Every function taking a detached handle may run on several
 * threads at once.  *out owned by the caller (mv_xap_close).
 * @retval MV_EUSAGE an unknown stemming language */
MV_NODISCARD mv_status mv_xap_open_detached(const mv_xap_hooks *h, mv_xap **out, mv_err *err);

/* mv_xap_check - translate q, expanding through e, without running it:
 * the errors mv_xap_search would give for it (MV_ENOTFOUND an unknown
 * custodian, MV_ELIMIT a wildcard matching too many words, MV_EUSAGE a
 * wildcard where none is allowed or no expansion callback). */
MV_NODISCARD mv_status mv_xap_check(mv_xap *x, const mv_qnode *q, const mv_xap_expand *e,
                                    mv_err *err);

/* mv_xap_match - whether the document d (from mv_xap_make_doc on x; not
 * taken) matches each of the nq queries: hits[i] 1 or 0.  Each query is
 * expanded through e at this call, as mv_xap_search expands it.  A query
 * that cannot be translated gets hits[i] = -1 and the others are still
 * run; the first such failure is returned (err says which query).
 * @retval MV_ENOTFOUND / MV_ELIMIT / MV_EUSAGE as mv_xap_check
 * @retval MV_EINDEX Xapian failed */
MV_NODISCARD mv_status mv_xap_match(mv_xap *x, const mv_xap_doc *d, const mv_qnode *const *q,
                                    size_t nq, const mv_xap_expand *e, int *hits, mv_err *err);

#ifdef __cplusplus
}
#endif
#endif
