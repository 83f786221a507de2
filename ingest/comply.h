/* SPDX-License-Identifier: MIT */
/* comply.h - what the pipeline decides for a new message before it is
 * sealed: the retention rule that keeps it (its class and how long, hence
 * its shred bucket), and the legal holds that take it.  Rules are read from the store (mv_store_policy) and
 * re-read when their version changes; they are evaluated on the message
 * itself, never through the index (docs/retention.md).
 *
 * Ownership: an mv_comply belongs to its creator (mv_comply_free); it
 * borrows the store.  mv_comply_decide is thread-safe. */
#ifndef MV_INGEST_COMPLY_H
#define MV_INGEST_COMPLY_H

#include "../lib/err.h"
#include "../store/store.h"

typedef struct mv_comply mv_comply;

/* mv_comply_new - load the rules and custodians.
 * @retval MV_ESTORE, MV_EMALFORMED  the policy cannot be read */
MV_NODISCARD mv_status mv_comply_new(mv_store *s, mv_comply **out, mv_err *err);
void mv_comply_free(mv_comply *c);

/* mv_comply_decide - the first rule matching the message: its sender and
 * header recipients (meta), its envelope recipients, its bytes (for query
 * rules; the decrypted form when there is one; flags MV_XD_* as the
 * indexer sets them).  out gets the rule's class and retention; *holds the
 * active legal holds that take it (n_holds malloc'd names, caller frees).
 * @retval MV_ESTORE etc.  re-reading changed rules failed (the arrival
 *                         stays in the spool and is retried) */
MV_NODISCARD mv_status mv_comply_decide(mv_comply *c, const mv_msgmeta *meta,
                                        const mv_arrival *arr, const uint8_t *bytes, size_t n,
                                        unsigned flags, mv_retention *out, char ***holds,
                                        size_t *n_holds, mv_err *err);

/* mv_comply_addresses - the lower-case addresses in a header value such as
 * "Ann <ann@x.test>, bob@y.test" (appended to *v, *n; each malloc'd).
 * Exposed for tests. */
void mv_comply_addresses(const char *hdr, char ***v, size_t *n);

#endif
