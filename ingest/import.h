/* SPDX-License-Identifier: MIT */
/* import.h - `mailvault import`: files into the one pipeline.
 *
 * Every message found under the paths is spooled (synced, in batches) and
 * handed to the pipeline.  An arrival is known by its origin and the
 * SHA-256 of its bytes (a keyed hash of both), so importing the same file
 * again adds nothing, and an import interrupted at any point (Ctrl-C,
 * kill -9) and run again loses nothing and doubles nothing: arrivals left
 * in the spool are replayed first. */
#ifndef MV_INGEST_IMPORT_H
#define MV_INGEST_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "../store/store.h"

/* The walk of an import's paths, started ahead (mv_import_walk_start). */
typedef struct mv_import_walk mv_import_walk;

typedef struct mv_import_opts {
    unsigned workers; /* 0 = CPUs */
    int progress;     /* draw a progress bar when stderr is a terminal */
    int quiet;        /* no per-file warnings on stderr */
    /* Non-zero: the arrivals an interrupted import spooled by reference
     * that cannot be read back (their file gone or changed) are dropped
     * from the spool instead of kept (mv_spool_forget), each told to
     * on_forget first (its origin and the SHA-256 of its bytes) so the
     * caller can put it on the record. */
    int forget_unresolved;
    void (*on_forget)(void *ctx, const char *origin, const uint8_t sha256[32]);
    void *forget_ctx;
    /* Non-NULL: the paths' walk, started with mv_import_walk_start on the
     * same paths; mv_import takes it over (and frees it) instead of
     * walking them itself. */
    mv_import_walk *walk;
} mv_import_opts;

typedef struct mv_import_result {
    uint64_t found;        /* messages found in the files */
    uint64_t imported;     /* new messages */
    uint64_t duplicates;   /* arrivals merged into an existing message as a copy */
    uint64_t already;      /* arrivals imported before (nothing added) */
    uint64_t replayed;     /* arrivals left in the spool by an earlier run */
    uint64_t unresolved;   /* ... spooled by reference, whose file no longer holds them (kept) */
    uint64_t forgotten;    /* ... of those, dropped (forget_unresolved) */
    uint64_t defective;    /* new messages archived with recorded defects */
    uint64_t failed;       /* messages that could not be read or processed (kept in the spool when read) */
    uint64_t skipped_files;/* files that are not mail */
    uint64_t bytes;        /* bytes of the messages found */
    uint64_t stored_bytes; /* sealed bytes written */
    double seconds;
} mv_import_result;

/* mv_import_walk_start - walk paths (as mv_import first does: every file
 * found, see mv_source_open) on a thread of its own, so that the walk runs beside
 * the opening of the store instead of after it.  paths must live until the
 * walk is taken over by mv_import or freed.  Returns NULL when no thread
 * could be started (mv_import then walks them itself). */
mv_import_walk *mv_import_walk_start(char *const *paths, size_t npaths);

/* mv_import_walk_free - wait for the walk and drop it (for a caller that
 * does not go on to mv_import). NULL is a no-op. */
void mv_import_walk_free(mv_import_walk *w);

MV_NODISCARD mv_status mv_import(mv_store *s, char *const *paths, size_t npaths,
                                 const mv_import_opts *o, mv_import_result *r, mv_err *err);

#endif
