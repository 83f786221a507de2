/* SPDX-License-Identifier: MIT */
/* pipeline.h - the one pipeline from spooled arrival to archived message.
 *
 *   spool (durable) -> workers: parse (GMime), digests, seal into the shred
 *   bucket -> committer: dedup, serials in spool order, one write batch
 *
 * Every arrival handed to the pipeline is already in the spool: whatever
 * happens after, a crash leaves it there to be replayed.  An arrival that
 * fails in a worker stays in the spool with the reason logged (and counted
 * in failed), never dropped.
 *
 * Threads: mv_pipeline_submit from one producer thread; workers and one
 * committer run inside. */
#ifndef MV_INGEST_PIPELINE_H
#define MV_INGEST_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "../store/store.h"

typedef struct mv_pipeline mv_pipeline;

struct mv_escrow;

typedef struct mv_pipeline_opts {
    unsigned workers;          /* 0 = number of CPUs */
    /* escrowed keys (ingest/escrow.h), borrowed; NULL: encrypted mail is
     * archived without a decryption record (reprocess adds it later) */
    const struct mv_escrow *escrow;
    size_t max_inflight_bytes; /* message bytes between submit and commit; 0 = 16 MiB */
    size_t parse_limit;        /* larger messages get headers-only parsing; 0 = 32 MiB */
} mv_pipeline_opts;

typedef struct mv_pipeline_stats {
    uint64_t submitted, committed;
    uint64_t new_messages, merged, already, failed;
    uint64_t bytes, stored_bytes;
    uint64_t defective; /* messages archived with at least one defect */
} mv_pipeline_stats;

MV_NODISCARD mv_status mv_pipeline_start(mv_store *s, const mv_pipeline_opts *o,
                                         mv_pipeline **out, mv_err *err);
/* mv_pipeline_submit - hand over a spooled arrival (it->seq set); the
 * bytes and strings are copied.  Blocks while too much is in flight.
 * @retval MV_ESTORE etc.  the committer failed earlier (the pipeline stops) */
MV_NODISCARD mv_status mv_pipeline_submit(mv_pipeline *p, const mv_spool_item *it, mv_err *err);
/* mv_pipeline_submit_take - the same, but it->data and it->raw were
 * allocated with malloc and pass to the pipeline (freed by it, on failure
 * too): a large message is not copied again. */
MV_NODISCARD mv_status mv_pipeline_submit_take(mv_pipeline *p, const mv_spool_item *it,
                                               mv_err *err);
/* mv_pipeline_wait_room - wait until no more bytes are in flight than the
 * budget (max_inflight_bytes), which only a message larger than it, let
 * through alone, exceeds; or until the pipeline failed (the next submit
 * says how).  A producer calls it before it reads more, so that it never
 * holds the next large message while the last one is worked on. */
void mv_pipeline_wait_room(mv_pipeline *p);
/* mv_pipeline_stats - a snapshot, for progress. */
void mv_pipeline_get_stats(mv_pipeline *p, mv_pipeline_stats *st);
/* mv_pipeline_finish - wait until everything submitted is committed (or
 * failed), stop the threads, free p.  Returns the first fatal error. */
MV_NODISCARD mv_status mv_pipeline_finish(mv_pipeline *p, mv_pipeline_stats *st, mv_err *err);

#endif
