/* SPDX-License-Identifier: MIT */
/* match.h - does one message match a search query?  Evaluated on the
 * message itself, in the pipeline, before it is archived (retention rules
 * and legal holds, issue 7), with exactly the meaning `mailvault search`
 * gives the query (docs/search.md): the same parser, the same document as
 * the indexer makes (extraction, stemming, hashed terms, addresses by
 * role, envelope recipients, date, size, flags) and the same translation
 * into a Xapian query, run over a database holding just this message.
 *
 * "q matches the message" means: once the message is archived and
 * indexed, `mailvault search q` lists it.  Two inputs come from the
 * archive and may change between the two moments, so both are read
 * through the store and kept for a while (mv_matcher_opts.refresh_s):
 *   - custodian: expands to the custodian's addresses, as search does;
 *   - a wildcard expands to the words of the archive's vocabulary with its
 *     prefix, together with this message's own words (the indexer adds
 *     them to the vocabulary when it indexes the message).  Most words
 *     matter only through the message's own; a vocabulary word counts
 *     when it shares a stem with a word of the message that lacks the
 *     prefix (runn* finds "run" once "running" is in the vocabulary).
 *
 * Threads: a matcher and its compiled queries may be used from any number
 * of threads at once once made (mv_matcher_eval is reentrant); the store
 * must outlive the matcher, the matcher its queries.
 *
 * Ownership: mv_matcher_new and mv_matcher_compile give the caller a
 * handle (mv_matcher_free, mv_mquery_free, both accept NULL).  Nothing
 * passed to mv_matcher_eval is kept after it returns.  The message's text
 * is content: it is wiped before its memory is freed and never logged. */
#ifndef MV_SEARCH_MATCH_H
#define MV_SEARCH_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "../store/store.h"
#include "extract.h"

typedef struct mv_matcher mv_matcher;
typedef struct mv_mquery mv_mquery;

/* Default of mv_matcher_opts.refresh_s: how long a custodian's addresses
 * and a wildcard's vocabulary words read from the store are used before
 * they are read again (a custodian added or changed reaches the rules
 * within this time, or at once after mv_matcher_refresh). */
#define MV_MATCH_REFRESH_S 60u
/* Expansions kept (custodian names and wildcard prefixes of the compiled
 * queries); past this the oldest is dropped and read again when needed. */
#define MV_MATCH_CACHE_MAX 256u

typedef struct mv_matcher_opts {
    const char *language;     /* stemming language, as the index's (NULL: "english") */
    mv_extract_limits limits; /* as the indexer's (zero fields: the defaults) */
    unsigned refresh_s;       /* 0: MV_MATCH_REFRESH_S */
} mv_matcher_opts;

/* mv_matcher_new - a matcher for the archive s (its index key, custodians
 * and vocabulary).  o may be NULL (the defaults, which are the indexer's).
 * *out owned by the caller; s must outlive it.
 * @retval MV_EUSAGE an unknown stemming language, or a missing argument */
MV_NODISCARD mv_status mv_matcher_new(mv_store *s, const mv_matcher_opts *o, mv_matcher **out,
                                      mv_err *err);
void mv_matcher_free(mv_matcher *m);

/* mv_matcher_refresh - forget the custodians' addresses and vocabulary
 * words read so far (call after changing custodians, so rules see the
 * change at once).  Thread-safe. */
void mv_matcher_refresh(mv_matcher *m);

/* mv_matcher_compile - parse and check a query (NUL-terminated UTF-8) as
 * `mailvault search` would before searching.  The result is immutable and
 * may be shared by threads; *out owned by the caller (mv_mquery_free),
 * NULL on failure.
 * @retval MV_EMALFORMED the query does not parse: err says where ("at
 *         column 12: ...") and why, as search does (exit 65 there)
 * @retval MV_ELIMIT a query limit, or a wildcard matching more words of the
 *         vocabulary than search allows (the message names it)
 * @retval MV_ENOTFOUND custodian: names no known custodian
 * @retval MV_EUSAGE a missing argument
 * @retval other a store error reading custodians or the vocabulary */
MV_NODISCARD mv_status mv_matcher_compile(mv_matcher *m, const char *query, mv_mquery **out,
                                          mv_err *err);
void mv_mquery_free(mv_mquery *q);
/* mv_mquery_text - the query as compiled (borrowed, lives as long as q). */
const char *mv_mquery_text(const mv_mquery *q);

/* One message as the pipeline has it.  Every pointer is borrowed for the
 * call.  Fields left zero take the defaults said. */
typedef struct mv_match_msg {
    const uint8_t *bytes; /* the message: its decrypted form when there is one */
    size_t n;
    const char *const *env; /* envelope recipients of the arrival ("<a@b>" or a@b) */
    size_t n_env;
    int64_t received;         /* trusted receipt time, UTC seconds: the date when
                                 the message has no readable Date header */
    unsigned flags;           /* MV_XD_ENCRYPTED ... (search/xap.h) as the indexer
                                 sets them from the decryption; MV_XD_SIGNED is
                                 added when the extraction meets a signature */
    const mv_extract *x;      /* an extraction of bytes already made with the
                                 matcher's limits, or NULL (made here) */
    const mv_msgmeta *meta;   /* the pipeline's summary of the archived bytes
                                 (ingest/mime.h), or NULL: its date_t is the date
                                 the index uses; without it the extraction's */
    uint64_t size;            /* bytes of the archived message (the encrypted
                                 form when encrypted); 0: n */
    const char *const *holds; /* legal holds the message is already under (for
                               is:held, hold:); usually none */
    size_t n_holds;
} mv_match_msg;

/* mv_matcher_eval - test one message against nq compiled queries: hits[i]
 * is 1 when q[i] matches, 0 when not.  The message is extracted (unless
 * msg->x is given) and its document built once for all queries.  Never
 * fails on hostile bytes: what the extractor cannot read is not there,
 * as for the index.
 * A query that cannot be evaluated now (its custodian was removed since it
 * was compiled, or its wildcard grew past the limit with this message's
 * words) gets hits[i] = -1, the other queries are still evaluated, and the
 * first such failure is returned (err names the query by position).
 * @retval MV_OK every hits[i] is 0 or 1
 * @retval MV_ENOTFOUND / MV_ELIMIT a query could not be evaluated (above)
 * @retval MV_EUSAGE a missing argument (hits untouched)
 * @retval MV_EINDEX Xapian failed (hits[i] of the queries not run are -1)
 * @retval other a store error reading custodians or the vocabulary */
MV_NODISCARD mv_status mv_matcher_eval(mv_matcher *m, const mv_mquery *const *q, size_t nq,
                                       const mv_match_msg *msg, int *hits, mv_err *err);

#endif
