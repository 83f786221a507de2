/* SPDX-License-Identifier: MIT */
/* search.h - the search index of an archive (ARCHIVE/index): fed only by
 * the store's change sequence, searched with the query language of
 * search/query.h (docs/search.md).  No plaintext word is written to it
 * (search/xap.h says how); the text it is made from is extracted once
 * (search/extract.h) and kept sealed in the store.
 *
 * One writer per index (one mv_index opened writable, in the process that
 * owns the archive); a writable mv_index may be searched from other
 * threads while it is updated: mv_index_search uses a reader of its own.
 * Ownership: every result belongs to the caller (mv_search_result_free). */
#ifndef MV_SEARCH_SEARCH_H
#define MV_SEARCH_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "../store/store.h"
#include "extract.h"

typedef struct mv_index mv_index;

typedef struct mv_index_opts {
    int writable;               /* to update it (mv_index_update) */
    unsigned threads;           /* extraction threads; 0 = one per CPU */
    unsigned commit_docs;       /* documents per index commit (default 2000) */
    const char *language;       /* stemming language (default "english") */
    mv_extract_limits limits;   /* zero fields: defaults */
} mv_index_opts;

/* mv_index_open - open ARCHIVE/index, creating it when writable.  *out
 * owned by the caller (mv_index_close); s must outlive it.
 * @retval MV_ETEMP another writer holds the index */
MV_NODISCARD mv_status mv_index_open(mv_store *s, const mv_index_opts *o, mv_index **out,
                                     mv_err *err);
void mv_index_close(mv_index *ix);

/* mv_index_lag - changes of the store not yet in the index. */
uint64_t mv_index_lag(mv_index *ix);
/* mv_index_lag_of - the same without opening an index (for status):
 * reads the position the index last committed.  No index: every change. */
uint64_t mv_index_lag_of(mv_store *s);

typedef void (*mv_index_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct mv_index_stats {
    uint64_t changes;   /* changes applied */
    uint64_t documents; /* documents written */
    uint64_t extracted; /* messages whose text was extracted (not found stored) */
    uint64_t failed;    /* messages whose bytes could not be read: indexed by
                           their records alone (verify says why) */
    uint64_t first_failed; /* the first such serial */
} mv_index_stats;

/* mv_index_update - apply every change made since the index's position,
 * committing every commit_docs documents and at the end, each commit with
 * its position (a crash loses only work, never consistency).  progress may
 * be NULL; stats may be NULL.  For the one writer. */
MV_NODISCARD mv_status mv_index_update(mv_index *ix, mv_index_progress_fn progress, void *ctx,
                                       mv_index_stats *stats, mv_err *err);

/* mv_index_rebuild - `reindex`: build a new index from the store alone in
 * ARCHIVE/index.new and put it in place of the old one when complete.
 * No index may be open on the archive.  Stored text is reused unless
 * reextract. */
MV_NODISCARD mv_status mv_index_rebuild(mv_store *s, const mv_index_opts *o, int reextract,
                                        mv_index_progress_fn progress, void *ctx,
                                        mv_index_stats *stats, mv_err *err);

/* mv_index_compact - rewrite ARCHIVE/index compactly (Xapian's
 * copy-on-write commits leave it up to twice the size after a bulk load).
 * No index may be open on the archive. */
MV_NODISCARD mv_status mv_index_compact(mv_store *s, mv_err *err);

typedef enum { MV_SORT_DATE_DESC = 0, MV_SORT_DATE_ASC, MV_SORT_RELEVANCE } mv_sort;

typedef struct mv_search_opts {
    uint64_t offset;
    uint64_t limit;       /* 0: count only */
    mv_sort sort;
    size_t snippet_chars; /* 0: no snippets */
    const char *hl_start, *hl_end; /* hit markers in snippets ("[" "]" when NULL) */
} mv_search_opts;

typedef struct mv_search_row {
    uint64_t serial;
    int64_t date;       /* UTC seconds (the index's date) */
    char *from, *to, *subject; /* from the message record, NULL when absent */
    char *snippet;      /* NULL unless asked */
} mv_search_row;

typedef struct mv_search_result {
    uint64_t total; /* exact */
    mv_search_row *rows;
    size_t n;
} mv_search_result;

/* mv_index_search - parse and run a query.  Rows of messages whose record
 * is gone are left out.
 * @retval MV_EMALFORMED the query does not parse (err says where and why)
 * @retval MV_ENOTFOUND an unknown custodian
 * @retval MV_ELIMIT a query limit, or a wildcard matching too many words */
MV_NODISCARD mv_status mv_index_search(mv_index *ix, const char *query, const mv_search_opts *o,
                                       mv_search_result *out, mv_err *err);
void mv_search_result_free(mv_search_result *r);

#endif
