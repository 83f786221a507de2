/* SPDX-License-Identifier: MIT */
/* store_int.h - private to store/: the store's handle and the helpers that
 * store.c lends to log.c (the integrity log).  Nothing outside store/
 * includes it. */
#ifndef MV_STORE_INT_H
#define MV_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <rocksdb/c.h>
#include <zstd.h>

#include "../lib/buf.h"
#include "../lib/err.h"
#include "../lib/merkle.h"
#include "keys.h"
#include "store.h"

/* Column families.  Those after the first archives ("user", "escrow",
 * "text", "vocab", "custodian", "log", "salt") are created by RocksDB when
 * an older store is opened (create_missing_column_families). */
enum { CF_DEFAULT, CF_MSG, CF_COPY, CF_ATTR, CF_BLOB, CF_SPOOL, CF_DEDUP, CF_COPYID, CF_CHANGES,
       CF_AUDIT, CF_DICT, CF_USER, CF_ESCROW, CF_TEXT, CF_VOCAB, CF_CUSTODIAN, CF_LOG, CF_SALT,
       CF_POLICY, CF_HOLD, CF_HELD, CF_COUNT };

typedef struct bdict {
    char bucket[32];
    uint32_t no;        /* 0 until trained or loaded */
    ZSTD_CDict *cdict;
    mv_buf samples;
    size_t *sizes;
    size_t nsamples;
    int busy;           /* a thread is training */
    unsigned failures;  /* training that produced nothing usable */
} bdict;

typedef struct ddict_entry {
    uint32_t no;
    ZSTD_DDict *dd;
} ddict_entry;

struct mv_store {
    char *dir;
    mv_keys *keys;
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_options_t *cf_opts[CF_COUNT];
    rocksdb_cache_t *cache; /* one block cache for every family: memory bound */
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_writeoptions_t *wo_sync, *wo;
    rocksdb_readoptions_t *ro;
    unsigned retention_days;
    pthread_mutex_t spool_mu, audit_mu, escrow_mu;
    /* Serialises the change sequence: the committer and reprocess both
     * append to it. */
    pthread_mutex_t change_mu;
    mv_prf *index_prf;
    /* Serialises user changes, so the "one admin remains" check and the
     * write it allows are one step. */
    pthread_mutex_t users_mu;
    /* Write batches kept between uses (cleared, capacity kept): a batch
     * grows to megabytes, and allocating it anew for every commit costs an
     * mmap and its page faults each time. */
    rocksdb_writebatch_t *spool_batch;  /* under spool_mu */
    rocksdb_writebatch_t *commit_batch; /* committer thread */
    uint64_t next_spool, next_audit;
    uint64_t spool_pending; /* __atomic_* builtins only */
    /* No spool entry (record or part) has a sequence below this: the
     * spool's reads start here, past the tombstones of archived arrivals
     * (0: from the first key).  Written at close when the spool is empty. */
    uint64_t spool_low;
    int spool_read; /* the open succeeded: spool_pending counts the spool */
    pthread_mutex_t dict_mu;
    bdict *dicts;
    size_t ndicts;
    ddict_entry *ddicts;
    size_t nddicts;
    unsigned dict_samples;
    /* committer state (one thread) */
    uint64_t last_serial, last_change;
    mv_stats stats;
    _Atomic int bulk_written; /* messages were committed: flush at close */
    /* The integrity log (log.c): its right edge, under log_mu, which is
     * taken last (after change_mu, escrow_mu, audit_mu) and held from the
     * moment leaves get their indexes until their batch is written, so the
     * log's order is the order of the writes. */
    pthread_mutex_t log_mu;
    mv_merkle_frontier log_front;
    int64_t clock_hwm_us; /* latest time a leaf carried; under log_mu */
    int64_t clock_jump_from_us; /* the clock jumped ahead from here (0: no doubt); under log_mu */
    uint64_t log_heads;   /* signed tree heads kept; under log_mu */
    uint64_t policy_version; /* the retention rules in force (compliance.c); __atomic_* */
    /* the last tree head mv_store_proof checked against the log (an export
     * makes thousands of proofs against one head); under log_mu */
    uint8_t proof_head_sha[32];
    uint64_t proof_head_size;
    int proof_head_ok;
    /* the last node read at each level (proofs of neighbouring leaves
     * share their upper nodes; a complete subtree's hash never changes);
     * under log_mu */
    struct {
        uint64_t index;
        uint8_t h[32];
        int ok;
    } node_cache[64];
};

/* ---- store.c's helpers, for log.c --------------------------------------- */

/* mv_st_get - the value of key in cf into out (reset first); MV_ENOTFOUND
 * when absent (err untouched), MV_ESTORE on a RocksDB error. */
mv_status mv_st_get(mv_store *s, int cf, const void *key, size_t kl, mv_buf *out, mv_err *err);
/* mv_st_write - write a batch (synced when sync); MV_ESTORE on failure. */
mv_status mv_st_write(mv_store *s, rocksdb_writebatch_t *b, int sync, mv_err *err);
/* mv_st_rocks_err - MV_ESTORE with RocksDB's message e (freed). */
mv_status mv_st_rocks_err(mv_err *err, char *e, const char *what);
/* mv_st_seal_put - seal plain under the active KEK named kekname (a bucket,
 * "audit", ...) for family fam and key, and put it into b.  tmp is scratch. */
mv_status mv_st_seal_put(mv_store *s, rocksdb_writebatch_t *b, int cf, int fam, const char *kekname,
                         const uint8_t *key, size_t kl, const mv_buf *plain, mv_buf *tmp,
                         mv_err *err);
/* mv_st_message_bucket - the shred bucket of serial's message. */
mv_status mv_st_message_bucket(mv_store *s, uint64_t serial, char *out, size_t n, mv_err *err);

/* mv_st_blob_of - the blob id and SHA-256 named by a message record's
 * (fam MV_FAM_MSG) or copy record's (MV_FAM_COPY) plaintext; -1 if it
 * does not parse. */
int mv_st_blob_of(int fam, const uint8_t *p, size_t n, uint8_t bid[32], uint8_t sha[32]);
/* mv_st_check_blob - decrypt blob bid (every chunk authenticated) and
 * compare its SHA-256 with want; its size is added to *bytes.
 * MV_ECRYPTO (no match, or a chunk does not authenticate), MV_ENOTFOUND,
 * MV_ESTORE. */
mv_status mv_st_check_blob(mv_store *s, const uint8_t bid[32], const uint8_t want[32],
                           uint64_t *bytes, mv_err *err);

/* ---- log.c, for store.c -------------------------------------------------- */

/* Leaf types: what each leaf of the integrity log stands for. */
enum { MV_LEAF_MESSAGE = 'M', MV_LEAF_COPY = 'C', MV_LEAF_ATTR = 'A', MV_LEAF_AUDIT = 'U',
       MV_LEAF_POLICY = 'P', MV_LEAF_TOMBSTONE = 'T', MV_LEAF_HOLD = 'H' };

/* The leaves one write adds, gathered while its batch is built; appended
 * to the log (indexes given, nodes computed) by mv_ilog_write. */
typedef struct mv_ilog_batch {
    mv_buf leaves;
    size_t n;
} mv_ilog_batch;

/* mv_ilog_salt_new - a fresh random salt for serial, sealed under bucket's
 * KEK into b (CF_SALT), so a shredded message's leaves cannot be confirmed
 * by guessing its content.  MV_ECRYPTO / MV_ENOKEY from sealing. */
mv_status mv_ilog_salt_new(mv_store *s, rocksdb_writebatch_t *b, const char *bucket,
                          uint64_t serial, uint8_t salt[32], mv_buf *tmp, mv_err *err);
/* mv_ilog_salt - serial's salt.  MV_ENOTFOUND when none is stored. */
mv_status mv_ilog_salt(mv_store *s, uint64_t serial, uint8_t salt[32], mv_err *err);
/* mv_ilog_add - gather one leaf: type, its record's key (rkey, rkl <= 16),
 * the time it carries, and the record's plaintext, hashed with the
 * message's salt (message, copy, attribute) or keyed (audit: salt NULL). */
void mv_ilog_add(mv_store *s, mv_ilog_batch *lb, int type, const uint8_t *rkey, size_t rkl,
                int64_t time_us, const uint8_t *salt, const uint8_t *plain, size_t n);
/* mv_ilog_write - give lb's leaves their indexes, put them, their nodes,
 * the new right edge and the clock's high-water mark into b, and write b
 * (synced when sync), all under log_mu.  lb is emptied.  MV_ESTORE. */
mv_status mv_ilog_write(mv_store *s, rocksdb_writebatch_t *b, mv_ilog_batch *lb, int sync,
                       mv_err *err);
void mv_ilog_batch_free(mv_ilog_batch *lb);
/* mv_ilog_keyed_digest_add - gather a leaf for a record that belongs to
 * no message (a policy version): its digest keyed like an audit record's. */
#define mv_ilog_add_keyed(s, lb, type, rkey, rkl, t, plain, n)                                   \
    mv_ilog_add((s), (lb), (type), (rkey), (rkl), (t), NULL, (plain), (n))
/* mv_ilog_add_public - gather a leaf whose digest is a plain SHA-256 of
 * the record (a tombstone: anyone checks it without our keys). */
void mv_ilog_add_public(mv_store *s, mv_ilog_batch *lb, int type, const uint8_t *rkey, size_t rkl,
                        int64_t time_us, const uint8_t *rec, size_t n);
/* mv_ilog_clock_confirmed - an admin said the clock is right: the doubt
 * left by a jump is lifted.  MV_ESTORE. */
mv_status mv_ilog_clock_confirmed(mv_store *s, mv_err *err);
/* mv_store_is_held - whether a legal hold holds serial (compliance.c). */
int mv_store_is_held(mv_store *s, uint64_t serial);
/* mv_store_move_held - before bucket's keys are destroyed: every held
 * message in it moves under its matter's key.  MV_ESTORE, MV_ECRYPTO. */
mv_status mv_store_move_held(mv_store *s, const char *bucket, mv_err *err);
/* mv_hold_member_new - in the commit of a new message (serial, sealed in
 * bucket, with salt): its hold attribute number no, held by matter. */
mv_status mv_hold_member_new(mv_store *s, rocksdb_writebatch_t *b, mv_ilog_batch *lb,
                             uint64_t serial, const char *bucket, const uint8_t salt[32],
                             uint32_t no, const char *matter, int64_t now, uint64_t *change,
                             mv_buf *rec, mv_buf *tmp, mv_err *err);
/* mv_policy_load - at open: the version of the rules in force. */
mv_status mv_policy_load(mv_store *s, mv_err *err);

/* mv_ilog_load - at open: read the log's state; give records written
 * before the log existed their leaves (once, resumable).  MV_ESTORE. */
mv_status mv_ilog_load(mv_store *s, mv_err *err);
/* mv_ilog_create - the state of a new archive's empty log, into b. */
void mv_ilog_create(mv_store *s, rocksdb_writebatch_t *b);

#endif
