/* SPDX-License-Identifier: MIT */
/* store.h - the encrypted archive store: RocksDB under ARCHIVE/store, the
 * keystore ARCHIVE/keys, records, blobs, spool, change sequence, audit.
 *
 * Layout (column families; every value carrying content or identities is
 * sealed, see store/seal.h; lookup keys that would reveal content are
 * keyed hashes):
 *   default  meta: format, archive id, counters (plain: no content)
 *   msg      u64 serial -> sealed message record (immutable)
 *   copy     u64 serial | u32 copy -> sealed copy record
 *   attr     u64 serial | u32 n -> sealed attribute record (append-only)
 *   blob     blob id | u32 part -> sealed blob parts; blob id =
 *            HMAC(blob-id key, bucket | SHA-256(bytes))
 *   spool    u64 seq -> sealed arrival; spool blob id | part -> its bytes
 *   dedup    HMAC(dedup key, dedup digest) -> u64 serial
 *   copyid   HMAC(copy key, arrival identity) -> state (spooled/archived)
 *   changes  u64 seq -> u8 kind | u64 serial | u32 copy (no content)
 *   audit    u64 seq -> sealed audit record
 *   user     HMAC(user-id key, name) -> sealed user record (name, roles,
 *            when and by whom last set)
 *   text     u64 serial -> the message's extracted text (search/extract.h),
 *            sealed in the message's bucket (shredded with it)
 *   vocab    HMAC(vocab key, first 3 characters) | HMAC(vocab key, word)
 *            -> sealed word: the index's vocabulary, for wildcards
 *   custodian HMAC(custodian key, lower-cased name) -> sealed custodian
 *
 * One process owns an archive (RocksDB's lock): a second opener gets a
 * clear MV_ETEMP error.  Functions of one mv_store may be called from
 * several threads except where a function says it is for the committer
 * (one thread) only. */
#ifndef MV_STORE_STORE_H
#define MV_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../lib/buf.h"
#include "../lib/err.h"

typedef struct mv_store mv_store;

/* Master key source: paths only, never the secret itself. */
typedef struct mv_keysrc {
    const char *key_file;        /* 32 raw bytes, or 64 hex digits (+ newline); mode not o+rw */
    const char *passphrase_file; /* passphrase (trailing newline dropped), through scrypt */
} mv_keysrc;

typedef struct mv_create_opts {
    unsigned retention_days; /* default retention, 0 = 2557 (7 years) */
    uint64_t scrypt_n;       /* 0 = 2^17 */
    const char *creator;     /* the first user, given every role; NULL = the
                              * calling process's user (mv_user_name_for_uid) */
} mv_create_opts;

/* mv_store_create - make a new archive in dir (created if missing; must
 * not already hold one), with its creator as its first user, holding
 * every role.
 * @retval MV_EUSAGE   creator is not a valid user name
 * @retval MV_EEXIST   an archive is already there
 * @retval MV_EPERM / MV_ENOKEY / MV_ENOTFOUND  key source problems */
MV_NODISCARD mv_status mv_store_create(const char *dir, const mv_keysrc *src,
                                       const mv_create_opts *o, mv_err *err);
/* mv_store_open - unlock the keystore (wrong key: MV_ENOKEY, before the
 * store is touched), then open the store.
 * @retval MV_ETEMP   another process has the archive open */
MV_NODISCARD mv_status mv_store_open(const char *dir, const mv_keysrc *src, mv_store **out,
                                     mv_err *err);
void mv_store_close(mv_store *s);
/* mv_store_flush_begin - start writing the larger memtables to table files
 * without waiting, for a caller whose input has ended while its last
 * arrivals are still being worked on: close then has less to flush, on
 * one thread, at the end.  Nothing is made more or less durable.  No
 * errors (a flush that cannot start now happens at close). */
void mv_store_flush_begin(mv_store *s);
const char *mv_store_dir(const mv_store *s);

/* ---- arrivals, spool ---------------------------------------------------- */

/* One arrival's envelope: borrowed strings, copied when stored. */
typedef struct mv_arrival {
    int64_t received_us;      /* trusted receipt time (archive clock) */
    const char *source;       /* "import", "smtp", "lmtp" */
    const char *origin;       /* import: where it came from; smtp: listener */
    const char *mail_from;    /* envelope sender, NULL when unknown */
    char *const *rcpt;        /* envelope recipients */
    size_t n_rcpt;
    const char *facts;        /* "key=value; ..." transport facts, or NULL */
    const char *note;         /* a remark kept with the copy, or NULL */
    uint8_t copy_id[32];      /* identity of this arrival (see mv_store_copy_id) */
    int has_copy_id;
} mv_arrival;

/* mv_store_copy_id - the keyed identity of an arrival described by text
 * (import: origin and SHA-256 of the bytes), for idempotent re-imports. */
void mv_store_copy_id(mv_store *s, const void *p, size_t n, uint8_t out[32]);

typedef enum { MV_COPYID_NEW = 0, MV_COPYID_SPOOLED, MV_COPYID_ARCHIVED } mv_copyid_state;
MV_NODISCARD mv_status mv_store_copy_id_state(mv_store *s, const uint8_t id[32],
                                              mv_copyid_state *state, mv_err *err);
/* mv_store_copy_id_states - the same for n ids at once (one lookup of the
 * family for all): states[i] is ids[i]'s.  The caller owns both arrays.
 * @retval MV_ESTORE  reading failed (states then undefined) */
MV_NODISCARD mv_status mv_store_copy_id_states(mv_store *s, const uint8_t *const *ids, size_t n,
                                               mv_copyid_state *states, mv_err *err);

typedef struct mv_spool_item {
    mv_arrival arr;
    const uint8_t *data; /* the message bytes */
    size_t len;
    const uint8_t *raw;  /* the copy's own bytes when they differ (mbox quoting, journal report), else NULL */
    size_t raw_len;
    uint64_t seq;        /* out: the spool sequence number */
    /* Non-NULL: the bytes are not copied into the spool.  The arrival's
     * origin names a durable source (a file being imported) from which the
     * importer reads them back after a crash; these 32 bytes are the
     * SHA-256 of the copy's bytes (raw when given, else data), which must
     * match then.  mv_spool_add still needs data and len; mv_spool_replay
     * hands such an entry over with data and raw NULL and len as spooled. */
    const uint8_t *ref_sha256;
} mv_spool_item;

/* mv_spool_add - make n arrivals durable: one synced write.  This is the
 * point after which an arrival is never lost. */
MV_NODISCARD mv_status mv_spool_add(mv_store *s, mv_spool_item *items, size_t n, mv_err *err);

/* mv_spool_count - arrivals accepted and not yet archived. */
uint64_t mv_spool_count(mv_store *s);

/* mv_spool_forget - drop the n arrivals seqs that an import spooled by
 * reference (the entries, and their copy-id markers), in one synced
 * write: for arrivals whose file is gone for good, dropped on the record
 * (the caller audits it).  An entry that holds its own bytes is never
 * dropped.  All or nothing.
 * @retval MV_OK        dropped
 * @retval MV_ENOTFOUND a seq is not in the spool
 * @retval MV_EUSAGE    a seq is an entry with its own bytes
 * @retval MV_EMALFORMED / MV_ECRYPTO  a damaged entry
 * @retval MV_ESTORE    RocksDB failed */
MV_NODISCARD mv_status mv_spool_forget(mv_store *s, const uint64_t *seqs, size_t n, mv_err *err);

/* Visit every pending arrival in spool order (crash recovery).  The
 * pointers in *it are valid during the call only.  An entry spooled by
 * reference (ref_sha256 set) comes with data NULL: the caller reads the
 * bytes back from the origin, or leaves the entry in the spool. */
typedef mv_status (*mv_spool_fn)(void *ctx, const mv_spool_item *it, mv_err *err);
MV_NODISCARD mv_status mv_spool_replay(mv_store *s, mv_spool_fn fn, void *ctx, mv_err *err);

/* ---- messages ------------------------------------------------------------ */

/* The header summary kept with a message (strings UTF-8, NULL if absent;
 * attachments holds n_names names, and a NULL after them when filled by
 * ingest/mime). */
typedef struct mv_msgmeta {
    char *from, *from_addr, *to, *cc, *bcc, *subject, *date, *message_id, *in_reply_to;
    int64_t date_t; /* INT64_MIN when unknown */
    char **attachments;
    size_t n_names;
    uint32_t n_attachments;
    uint64_t header_bytes;
    uint32_t n_parts;
    uint32_t defects;
    uint8_t sha256[32];
    uint8_t dedup[32];
} mv_msgmeta;

/* mv_msgmeta_clear - free the strings a summary owns and zero it. */
void mv_msgmeta_clear(mv_msgmeta *m);

typedef struct mv_prepared mv_prepared;

/* Retention (store/compliance.c, docs/retention.md): a message's class
 * (the policy rule that chose it) and how long it is kept decide its shred
 * bucket, "CLASS/YYYY-MM" (the month its retention ends) or
 * "CLASS/forever". */
#define MV_CLASS_MAX 17              /* a class name: [a-z0-9_-], 1 to 16 bytes, and its NUL */
#define MV_KEEP_FOREVER UINT32_MAX   /* keep_days of a rule that never expires */
#define MV_KEEP_DAYS_MAX 36525u      /* 100 years */
typedef struct mv_retention {
    char cls[MV_CLASS_MAX];
    uint32_t keep_days; /* 1..MV_KEEP_DAYS_MAX, or MV_KEEP_FOREVER */
} mv_retention;
/* mv_bucket_name - the bucket of a message of class cls kept keep_days,
 * received at received_us. */
void mv_bucket_name(const char *cls, uint32_t keep_days, int64_t received_us, char *out, size_t n);

/* mv_store_prepare - seal an arrival's bytes into its shred bucket (the
 * expensive part: compression and encryption), ready for commit.  ret: the
 * retention the pipeline chose (NULL: class "default", the archive's
 * default retention).  Worker
 * threads call this in parallel.  meta is copied.  With take, it->data and
 * it->raw were allocated with malloc and now belong to the prepared arrival
 * (freed by it, on failure too); without, they are copied.
 * *out owned by the caller until handed to mv_store_commit. */
MV_NODISCARD mv_status mv_store_prepare(mv_store *s, const mv_spool_item *it,
                                        const mv_msgmeta *meta, const mv_retention *ret, int take,
                                        mv_prepared **out, mv_err *err);
void mv_prepared_free(mv_prepared *p);
/* mv_store_prepare_holds - the legal holds that take this arrival if it
 * becomes a new message (recorded in its commit). */
void mv_store_prepare_holds(mv_prepared *p, const char *const *matters, size_t n);

typedef enum {
    MV_COMMIT_NEW = 1, /* a new message (and its first copy) */
    MV_COMMIT_MERGED,  /* a new copy of an existing message (dedup) */
    MV_COMMIT_ALREADY, /* this very arrival was archived before (re-import) */
} mv_commit_kind;

typedef struct mv_commit_result {
    mv_commit_kind kind;
    uint64_t serial;
    uint32_t copy;
    uint64_t stored_bytes; /* sealed bytes newly written */
} mv_commit_result;

/* mv_store_commit - for the single committer thread: dedup, assign serials
 * in the given order, write records, blobs, change records, counters and
 * the removal of the spool entries in one atomic write batch.  Takes
 * ownership of items (freed).  res has n entries. */
MV_NODISCARD mv_status mv_store_commit(mv_store *s, mv_prepared **items, size_t n,
                                       mv_commit_result *res, mv_err *err);

typedef struct mv_message {
    uint64_t serial;
    char *bucket;
    int64_t received_us; /* first copy's receipt time */
    uint64_t size;
    uint32_t n_copies;
    uint8_t blob[32];
    mv_msgmeta meta;
} mv_message;

typedef struct mv_copy {
    uint32_t no; /* 1-based */
    int64_t received_us;
    char *source, *origin, *mail_from, *facts, *note;
    char **rcpt;
    size_t n_rcpt;
    uint64_t size;
    uint8_t sha256[32];         /* of the bytes this arrival carried (show --copy N --raw) */
    uint8_t blob[32];
    uint8_t message_sha256[32]; /* of the message it carried (unwrapped, unquoted) */
} mv_copy;

/* @retval MV_ENOTFOUND no such serial */
MV_NODISCARD mv_status mv_store_message(mv_store *s, uint64_t serial, mv_message **out,
                                        mv_err *err);
void mv_message_free(mv_message *m);
/* mv_store_copies - every copy of a message, in order (*out array of n). */
MV_NODISCARD mv_status mv_store_copies(mv_store *s, uint64_t serial, mv_copy ***out, size_t *n,
                                       mv_err *err);
void mv_copies_free(mv_copy **c, size_t n);

typedef mv_status (*mv_bytes_fn)(void *ctx, const uint8_t *p, size_t n, mv_err *err);
/* mv_store_read_message - stream the message's bytes (copy 0) or the
 * bytes of copy N (1-based) to fn, verified against the recorded SHA-256
 * at the end (MV_ECRYPTO if they differ). */
MV_NODISCARD mv_status mv_store_read(mv_store *s, uint64_t serial, uint32_t copy, mv_bytes_fn fn,
                                     void *ctx, mv_err *err);

uint64_t mv_store_last_serial(mv_store *s);

typedef struct mv_stats {
    uint64_t messages, copies;
    uint64_t message_bytes; /* bytes of the distinct messages */
    uint64_t raw_bytes;     /* bytes of every arrival */
    uint64_t stored_bytes;  /* sealed blob bytes written (after dedup, compression) */
    uint64_t blobs;
    uint64_t disk_bytes;    /* size of ARCHIVE/store on disk */
    uint64_t spool;
    uint64_t changes;
    uint64_t dictionaries;  /* compression dictionaries trained (one per shred bucket) */
} mv_stats;
MV_NODISCARD mv_status mv_store_stats(mv_store *s, mv_stats *st, mv_err *err);

/* ---- audit --------------------------------------------------------------- */

/* mv_store_audit - append an audit record (who, when, what, result);
 * synced.  detail may hold arguments (it is encrypted). */
MV_NODISCARD mv_status mv_store_audit(mv_store *s, const char *user, const char *command,
                                      const char *detail, mv_status result, const char *result_msg,
                                      mv_err *err);
typedef struct mv_audit_rec {
    uint64_t seq;
    int64_t time_us;
    const char *user, *command, *detail, *result;
    int status;
} mv_audit_rec;
typedef void (*mv_audit_fn)(void *ctx, const mv_audit_rec *r);
/* mv_store_audit_list - the last `limit` records (0 = all) in order. */
MV_NODISCARD mv_status mv_store_audit_list(mv_store *s, uint64_t limit, mv_audit_fn fn, void *ctx,
                                           mv_err *err);

/* ---- users and roles ------------------------------------------------------ */

/* Roles (docs/roles.md).  A user holds any combination. */
#define MV_USER_ADMIN 1u   /* users, keys, import, the daemon */
#define MV_USER_OFFICER 2u /* search and view mail */
#define MV_USER_LEGAL 4u   /* holds and export */
#define MV_USER_AUDITOR 8u /* verify, reports, the audit trail; reads no mail content */
#define MV_USER_ALL 15u
#define MV_USER_NAME_MAX 64 /* bytes of a user name */
#define MV_USER_ROLES_STR 40 /* a buffer for mv_user_roles_str */

/* mv_user_role_name - "admin", "officer", "legal", "auditor" for one role
 * bit; NULL for anything else. */
const char *mv_user_role_name(unsigned role);
/* mv_user_roles_str - "admin,officer" (canonical order) or "none", into
 * out (MV_USER_ROLES_STR bytes suffice); returns out. */
char *mv_user_roles_str(unsigned roles, char *out, size_t n);
/* mv_user_roles_parse - a comma-separated list of role names (blanks
 * around names allowed, duplicates harmless) into a non-empty mask.
 * @retval MV_EUSAGE  an unknown role, or none at all (message names it) */
MV_NODISCARD mv_status mv_user_roles_parse(const char *s, unsigned *roles, mv_err *err);
/* mv_user_name_ok - 1 for a valid user name: a login name
 * [a-z_][a-z0-9_.-]* of at most MV_USER_NAME_MAX bytes, or "uid:N" for a
 * numeric uid without a name. */
int mv_user_name_ok(const char *name);
/* mv_user_name_for_uid - the user name of a uid: its login name
 * (getpwuid_r) when that is a valid user name, else "uid:N".  out must
 * hold MV_USER_NAME_MAX + 1 bytes.  Thread-safe. */
void mv_user_name_for_uid(uid_t uid, char *out, size_t n);

/* mv_store_user_put - create or replace a user's roles (roles non-zero,
 * within MV_USER_ALL); by names who did it.  Synced.  Refused when it
 * would leave the archive without an admin.
 * @retval MV_EUSAGE  invalid name or roles
 * @retval MV_EPERM   it would leave no admin (the last admin demoted, or a
 *                    first user who is not an admin) */
MV_NODISCARD mv_status mv_store_user_put(mv_store *s, const char *name, unsigned roles,
                                         const char *by, mv_err *err);
/* mv_store_user_get - a user's roles.
 * @retval MV_ENOTFOUND  no such user
 * @retval MV_EUSAGE     not a valid user name */
MV_NODISCARD mv_status mv_store_user_get(mv_store *s, const char *name, unsigned *roles,
                                         mv_err *err);
/* mv_store_user_remove - remove a user.  Synced.
 * @retval MV_ENOTFOUND  no such user
 * @retval MV_EPERM      the user is the last admin */
MV_NODISCARD mv_status mv_store_user_remove(mv_store *s, const char *name, mv_err *err);
typedef struct mv_user_rec {
    const char *name;
    unsigned roles;
    int64_t changed_us; /* when the roles were last set */
    const char *by;     /* who set them */
} mv_user_rec;
/* The record's strings are valid during the call only. */
typedef void (*mv_user_fn)(void *ctx, const mv_user_rec *u);
/* mv_store_user_list - every user, sorted by name.  Archives created
 * before users existed have none (then the owner of the archive directory
 * holds every role: see docs/roles.md).
 * @retval MV_EMALFORMED / MV_ECRYPTO  a user record is damaged */
MV_NODISCARD mv_status mv_store_user_list(mv_store *s, mv_user_fn fn, void *ctx, mv_err *err);

/* ---- keys ---------------------------------------------------------------- */

typedef struct mv_keyinfo {
    uint32_t no;
    const char *name;
    uint32_t version;
    int64_t created;
    int active;
    uint64_t uses; /* sealed values wrapped under it (counted when listing) */
} mv_keyinfo;
typedef void (*mv_keyinfo_fn)(void *ctx, const mv_keyinfo *ki);
typedef struct mv_keys_summary {
    const char *unlock;     /* "key file" or "passphrase (scrypt)" */
    int64_t created;
    char archive_id[33];
    char signing_fpr[65];   /* SHA-256 of the Ed25519 public key, hex */
    unsigned retention_days;
} mv_keys_summary;
MV_NODISCARD mv_status mv_store_keys_list(mv_store *s, mv_keys_summary *sum, mv_keyinfo_fn fn,
                                          void *ctx, mv_err *err);
/* mv_store_keys_rotate - new KEK versions for new writes; with
 * rewrap_existing every wrapped DEK is rewrapped (no blob rewritten) and
 * the retired KEKs are then destroyed. */
MV_NODISCARD mv_status mv_store_keys_rotate(mv_store *s, int rewrap_existing, unsigned *rotated,
                                            uint64_t *rewrapped, mv_err *err);
/* mv_store_keys_rewrap - the root secret's wrap under a new master key. */
MV_NODISCARD mv_status mv_store_keys_rewrap(mv_store *s, const mv_keysrc *src, uint64_t scrypt_n,
                                            mv_err *err);

/* ---- escrow keyring --------------------------------------------------------
 * The organisation's escrowed private keys (S/MIME, OpenPGP), kept inside
 * the archive, each sealed under the "escrow" KEK (DESIGN.md 3).  The
 * store keeps them as opaque material; ingest/escrow interprets it.
 * Callers must wipe (mv_buf_wipe) any material they receive. */
typedef struct mv_escrow_rec {
    uint32_t id;          /* 1, 2, ... never reused */
    char *kind;           /* "x509" or "openpgp" */
    char *description;    /* subject, issuer, serial, fingerprints ... (text) */
    int64_t added_us;
    char *added_by;
    size_t material_bytes;
    uint64_t uses;        /* messages it has decrypted (counted by the pipeline) */
} mv_escrow_rec;
void mv_escrow_rec_clear(mv_escrow_rec *e);
/* mv_store_escrow_add - store key material (synced); *id gets its number. */
MV_NODISCARD mv_status mv_store_escrow_add(mv_store *s, const char *kind, const char *description,
                                           const uint8_t *material, size_t n, const char *by,
                                           uint32_t *id, mv_err *err);
/* mv_store_escrow_get - one key; material (may be NULL) gets its bytes.
 * @retval MV_ENOTFOUND no such key */
MV_NODISCARD mv_status mv_store_escrow_get(mv_store *s, uint32_t id, mv_escrow_rec *e,
                                           mv_buf *material, mv_err *err);
/* mv_store_escrow_list - every key in id order; material passed (and wiped
 * after fn) only when with_material.  fn's error stops the walk. */
typedef mv_status (*mv_escrow_fn)(void *ctx, const mv_escrow_rec *e, const uint8_t *material,
                                  size_t n, mv_err *err);
MV_NODISCARD mv_status mv_store_escrow_list(mv_store *s, mv_escrow_fn fn, void *ctx,
                                            int with_material, mv_err *err);
/* mv_store_escrow_remove - delete one key (synced).  Whether it may go
 * (the only key of archived messages) is the caller's decision.
 * @retval MV_ENOTFOUND no such key */
MV_NODISCARD mv_status mv_store_escrow_remove(mv_store *s, uint32_t id, mv_err *err);

/* ---- decryption records ------------------------------------------------------
 * What escrow decryption found for a message: an attribute record of the
 * message (append-only; the last one counts), and, when decrypted, the
 * decrypted form as a second blob in the message's bucket with its own
 * SHA-256.  The original bytes are never touched.  Field meanings as in
 * ingest/decrypt.h (the store keeps them, ingest interprets them). */
typedef struct mv_decryption {
    int64_t time_us;        /* when it was recorded */
    int decrypted;
    char *scheme, *content_alg, *key_alg;
    uint32_t key_id;        /* escrow key that opened it, 0 if none */
    char **recipients;
    size_t n_recipients;
    char *failure;
    int sig;                /* mv_sig_status */
    char *signer;
    int64_t signing_time;
    char *sig_detail;
    uint32_t defects;
    uint64_t size;          /* of the decrypted form */
    uint8_t sha256[32];
    uint8_t blob[32];
} mv_decryption;
void mv_decryption_free(mv_decryption *d);

/* mv_store_prepare_decryption - attach a decryption to a prepared arrival
 * (worker threads): the decrypted bytes (n may be 0 when not decrypted) are
 * sealed into its bucket now; the record and blob are written by
 * mv_store_commit when the arrival becomes a new message (a copy merged
 * into an existing message adds nothing: the message has its own).  d's
 * size, sha256 and blob are computed here.  plain is copied. */
MV_NODISCARD mv_status mv_store_prepare_decryption(mv_store *s, mv_prepared *p,
                                                   const mv_decryption *d, const uint8_t *plain,
                                                   size_t n, mv_err *err);
/* mv_store_add_decryption - record a decryption for an archived message
 * (reprocess): record, blob and escrow use count in one synced batch. */
MV_NODISCARD mv_status mv_store_add_decryption(mv_store *s, uint64_t serial, const mv_decryption *d,
                                               const uint8_t *plain, size_t n, mv_err *err);
/* mv_store_decryption - the latest decryption record of a message.
 * @retval MV_ENOTFOUND none (the message was not encrypted, or predates) */
MV_NODISCARD mv_status mv_store_decryption(mv_store *s, uint64_t serial, mv_decryption **out,
                                           mv_err *err);
/* mv_store_read_decrypted - stream the decrypted form, verified against
 * its recorded SHA-256 (MV_ECRYPTO if it differs).
 * @retval MV_ENOTFOUND the message has no decrypted form */
MV_NODISCARD mv_status mv_store_read_decrypted(mv_store *s, uint64_t serial, mv_bytes_fn fn,
                                               void *ctx, mv_err *err);

/* ---- change sequence ---------------------------------------------------------
 * Every change that the index must learn of, in order: a new message, a
 * copy merged into one (new recipients), a decryption recorded later
 * (reprocess); later, holds and purges.  No content. */
typedef enum {
    MV_CHANGE_MESSAGE = 1,
    MV_CHANGE_COPY = 2,
    MV_CHANGE_DECRYPTION = 3,
    MV_CHANGE_PURGE = 4, /* the message was purged: its document goes */
    MV_CHANGE_HOLD = 5,  /* a legal hold took or released it */
} mv_change_kind;

typedef struct mv_change {
    uint64_t seq;
    uint8_t kind; /* mv_change_kind */
    uint64_t serial;
    uint32_t copy;
} mv_change;

/* mv_store_last_change - the newest change's sequence number (0: none). */
uint64_t mv_store_last_change(mv_store *s);
/* mv_store_changes - up to max changes after seq `after`, in order, into
 * out; *n how many.  A change record that does not parse is MV_EMALFORMED. */
MV_NODISCARD mv_status mv_store_changes(mv_store *s, uint64_t after, mv_change *out, size_t max,
                                        size_t *n, mv_err *err);

/* ---- search support ------------------------------------------------------------ */

/* mv_store_index_prf - the index's keyed hash (derived from the root
 * secret, so `keys rewrap` leaves the index valid).  Borrowed: lives as
 * long as s. */
typedef struct mv_prf mv_prf; /* store/keys.h: mv_prf_eval */
const mv_prf *mv_store_index_prf(mv_store *s);

/* mv_store_put_text - store a message's extracted text (an encoding of
 * search/extract.h the store does not interpret), sealed in the message's
 * bucket, replacing any earlier one (it is derived data: re-extraction
 * after a decryption replaces it).  Not synced: lost text is re-extracted.
 * @retval MV_ENOTFOUND no such message */
MV_NODISCARD mv_status mv_store_put_text(mv_store *s, uint64_t serial, const uint8_t *p, size_t n,
                                         mv_err *err);
/* mv_store_text - the stored text into out (reset first).
 * @retval MV_ENOTFOUND none stored */
MV_NODISCARD mv_status mv_store_text(mv_store *s, uint64_t serial, mv_buf *out, mv_err *err);

/* mv_store_vocab_add - add words (lower-case UTF-8, n of them) to the
 * encrypted vocabulary; words already in it are rewritten harmlessly.
 * Callers keep their own "already added" set to avoid that cost. */
MV_NODISCARD mv_status mv_store_vocab_add(mv_store *s, const char *const *words, size_t n,
                                          mv_err *err);
/* mv_store_vocab_prefix - the vocabulary's words that start with prefix
 * (lower-case, at least MV_VOCAB_MIN_PREFIX characters), at most max:
 * *out a malloc'd array of n malloc'd strings (caller frees).
 * @retval MV_ELIMIT more than max words match (*out empty)
 * @retval MV_EUSAGE prefix shorter than MV_VOCAB_MIN_PREFIX characters */
#define MV_VOCAB_MIN_PREFIX 3
MV_NODISCARD mv_status mv_store_vocab_prefix(mv_store *s, const char *prefix, size_t max,
                                             char ***out, size_t *n, mv_err *err);

/* Custodians: people of the organisation (name, department, addresses
 * and aliases: other names they go by). */
typedef struct mv_custodian {
    char *name, *department;
    char **addresses; /* lower-case */
    size_t n_addresses;
    char **aliases;
    size_t n_aliases;
} mv_custodian;
void mv_custodian_clear(mv_custodian *c);
/* mv_store_custodian_put - add or replace (by name, case-insensitive). */
MV_NODISCARD mv_status mv_store_custodian_put(mv_store *s, const mv_custodian *c, mv_err *err);
/* mv_store_custodian_remove - @retval MV_ENOTFOUND no such custodian */
MV_NODISCARD mv_status mv_store_custodian_remove(mv_store *s, const char *name, mv_err *err);
/* mv_store_custodians - every custodian, sorted by name: *out array of *n
 * (caller frees each with mv_custodian_clear, then the array). */
MV_NODISCARD mv_status mv_store_custodians(mv_store *s, mv_custodian **out, size_t *n,
                                           mv_err *err);

/* The archive's identity and signing key (export custody records). */
const uint8_t *mv_store_archive_id(mv_store *s); /* MV_ARCHIVE_ID_LEN bytes */
void mv_store_signing_public(mv_store *s, uint8_t pub[32]);
MV_NODISCARD mv_status mv_store_sign(mv_store *s, const void *msg, size_t n, uint8_t sig[64],
                                     mv_err *err);

/* mv_store_matter_reserve - count control numbers of a legal matter,
 * continuing where its last export ended: *first is the first of them
 * (1 for a new matter).  Durable before it returns, so two exports never
 * share a number. */
MV_NODISCARD mv_status mv_store_matter_reserve(mv_store *s, const char *matter, uint64_t count,
                                               uint64_t *first, mv_err *err);

/* mv_store_set_dict_samples - messages sampled before a bucket's
 * compression dictionary is trained (default 300; 0 = never train). */
void mv_store_set_dict_samples(mv_store *s, unsigned n);

/* Test hook: the bucket name for a receipt time. */
void mv_store_bucket_for(mv_store *s, int64_t received_us, char *out, size_t n);

/* ---- retention policy (store/compliance.c, docs/retention.md) -------------
 * Ordered rules; the first that matches a new message gives its class and
 * retention; the last rule is the default (kind MV_RULE_DEFAULT, matches
 * everything).  Every change is a new version (the old ones are kept and
 * each has a leaf in the integrity log).  A rule's retention may be
 * lengthened later, which extends the buckets of its class already filled;
 * it is never shortened for mail already archived. */
typedef enum { MV_RULE_DEFAULT = 0, MV_RULE_QUERY, MV_RULE_DOMAIN, MV_RULE_CUSTODIAN } mv_rule_kind;
#define MV_POLICY_RULES_MAX 256u
#define MV_RULE_MATCH_MAX 4096u /* bytes of a rule's query, domain list or custodian name */
typedef struct mv_policy_rule {
    char name[MV_CLASS_MAX]; /* the class of the mail it matches */
    uint32_t keep_days;      /* or MV_KEEP_FOREVER */
    mv_rule_kind kind;
    char *match;             /* query, comma-separated domains, or custodian name; NULL for default */
} mv_policy_rule;
typedef struct mv_policy {
    uint64_t version; /* 0: no policy was ever set (the archive's default retention) */
    int64_t changed_us;
    char *by;
    mv_policy_rule *rules;
    size_t n;
} mv_policy;
void mv_policy_clear(mv_policy *p);
/* mv_class_name_ok - [a-z0-9_-], 1 to 16 bytes. */
int mv_class_name_ok(const char *name);
/* mv_store_policy - the rules in force (a default-only policy from the
 * archive's retention when none was set).  p owned by the caller
 * (mv_policy_clear).  MV_ESTORE, MV_EMALFORMED. */
MV_NODISCARD mv_status mv_store_policy(mv_store *s, mv_policy *p, mv_err *err);
/* mv_store_policy_version - cheap: has the policy changed since? */
uint64_t mv_store_policy_version(mv_store *s);
/* mv_store_policy_put - make p the rules in force (a new version, synced,
 * with its leaf); by is who.  Lengthening a class's retention extends its
 * existing buckets (*extended counts them).  MV_EUSAGE for a policy that
 * breaks the rules above (no default last, a duplicate name, a bad name). */
MV_NODISCARD mv_status mv_store_policy_put(mv_store *s, const mv_policy *p, const char *by,
                                           unsigned *extended, mv_err *err);
/* mv_store_bucket_expiry - when bucket may be purged: the start of the month
 * after its last month (as extended), UTC seconds; INT64_MAX for "forever"
 * or a name that is not CLASS/YYYY-MM. */
int64_t mv_store_bucket_expiry(mv_store *s, const char *bucket);

/* ---- legal holds (store/hold.c, docs/retention.md) -------------------------
 * A matter holds messages: found by a query when the hold is placed, and
 * new mail matching it as it arrives.  A held message is never purged;
 * release (with a reason) lets it go.  Every step is a leaf of the
 * integrity log and an attribute record of each message. */
#define MV_MATTER_MAX 128u /* bytes of a matter's name */
typedef struct mv_hold {
    char *matter, *query, *custodian, *reason, *by;
    int64_t created; /* UTC seconds */
    int released;
    int64_t released_at;
    char *released_by, *release_reason;
    uint64_t members; /* messages it took (at creation and since) */
} mv_hold;
void mv_hold_clear(mv_hold *h);
int mv_matter_name_ok(const char *m);
/* mv_store_holds - every matter, in order of creation, as it stands now
 * (a matter released and created again appears twice).  *out array of *n
 * (caller clears each and frees). */
MV_NODISCARD mv_status mv_store_holds(mv_store *s, mv_hold **out, size_t *n, mv_err *err);
/* mv_store_hold_create - a new matter (h: matter, query, custodian, reason,
 * by) holding serials; *held counts those still archived.
 * @retval MV_EEXIST  an active matter has that name */
MV_NODISCARD mv_status mv_store_hold_create(mv_store *s, const mv_hold *h, const uint64_t *serials,
                                            size_t n, uint64_t *held, mv_err *err);
/* mv_store_hold_add - an active matter takes one more message (new mail). */
MV_NODISCARD mv_status mv_store_hold_add(mv_store *s, const char *matter, const char *by,
                                         uint64_t serial, mv_err *err);
/* mv_store_hold_release - the matter lets its messages go (reason, by
 * recorded); *released counts them.  @retval MV_ENOTFOUND no active matter */
MV_NODISCARD mv_status mv_store_hold_release(mv_store *s, const char *matter, const char *reason,
                                             const char *by, uint64_t *released, mv_err *err);
/* mv_store_holds_of - the active matters holding serial (*names: n
 * malloc'd strings in a malloc'd array). */
MV_NODISCARD mv_status mv_store_holds_of(mv_store *s, uint64_t serial, char ***names, size_t *n,
                                         mv_err *err);

/* ---- purge (store/compliance.c, docs/retention.md) --------------------------
 * Crypto-shredding of every shred bucket past its expiry: held messages are
 * moved out first (their keys rewrapped under their matter's), each other
 * message's records are deleted and a signed tombstone takes its place in
 * the integrity log, then the bucket's keys are destroyed in the keystore:
 * whatever of it remains in any backup of the data no longer opens.
 * Refused (MV_ETEMP) while the clock is behind the archive's latest record
 * or has jumped far ahead of it (MV_CLOCK_JUMP_US), unless confirmed.
 * The caller checks that the index has caught up.  Single-threaded use of
 * the store (no daemon). */
#define MV_CLOCK_JUMP_US (7ll * 86400 * 1000000) /* a clock this far ahead of the archive is doubted */
typedef struct mv_purge_opts {
    int dry_run;
    int confirm_clock; /* an admin says the clock is right */
} mv_purge_opts;
typedef struct mv_purge_bucket {
    char name[48];
    int64_t expiry; /* UTC seconds */
    uint64_t messages, held, purged;
} mv_purge_bucket;
typedef struct mv_purge_result {
    mv_purge_bucket *b; /* the expired buckets */
    size_t n;
    uint64_t purged, held;
    int64_t now, hwm; /* the clock, the archive's latest record (UTC seconds) */
} mv_purge_result;
MV_NODISCARD mv_status mv_store_purge(mv_store *s, const mv_purge_opts *o, mv_purge_result *r,
                                      mv_err *err);
void mv_purge_result_free(mv_purge_result *r);
/* For reports: every shred bucket whose key exists (each name once); the
 * bucket (KEK name) of every archived message, read from its record's
 * header without decrypting it; every tombstone. */
void mv_store_buckets(mv_store *s, void (*fn)(void *ctx, const char *bucket), void *ctx);
MV_NODISCARD mv_status mv_store_message_keks(mv_store *s,
                                             void (*fn)(void *ctx, uint64_t serial,
                                                        const char *kek_name),
                                             void *ctx, mv_err *err);
struct mv_tombstone;
MV_NODISCARD mv_status mv_store_tombstones(mv_store *s,
                                           void (*fn)(void *ctx, const struct mv_tombstone *t),
                                           void *ctx, mv_err *err);
/* mv_store_tombstone - when and why serial was purged.  MV_ENOTFOUND: it was not. */
typedef struct mv_tombstone {
    uint64_t serial;
    int64_t purged; /* UTC seconds */
    char bucket[48];
    int64_t expiry;
} mv_tombstone;
MV_NODISCARD mv_status mv_store_tombstone(mv_store *s, uint64_t serial, mv_tombstone *t,
                                          mv_err *err);

/* ---- the integrity log (store/log.c, docs/integrity.md) -------------------
 * An append-only Merkle tree (RFC 6962) with a leaf for every message,
 * copy, attribute record and audit record, each written in the batch of
 * its record.  Signed tree heads are C2SP checkpoint notes, origin
 * "mailvault/<archive id>", signed with the archive's Ed25519 key. */
#define MV_LOG_ORIGIN_MAX 64
#define MV_PROOF_MAX_BYTES 65536u /* a proof file, tree head included */

typedef struct mv_log_state {
    uint64_t leaves;
    uint8_t root[32];
    uint64_t heads;       /* signed tree heads kept in the archive */
    int64_t clock_hwm_us; /* the latest time any leaf carried */
    char origin[MV_LOG_ORIGIN_MAX];
    uint8_t pub[32];      /* the signing key */
} mv_log_state;
void mv_store_log_state(mv_store *s, mv_log_state *out);

/* mv_store_checkpoint - a signed tree head of the log as it stands, kept
 * in the archive; its note text replaces out's content.  Unless fresh,
 * the latest kept head is given when it already covers every leaf.
 * MV_ESTORE, MV_ECRYPTO (signing). */
MV_NODISCARD mv_status mv_store_checkpoint(mv_store *s, int fresh, mv_buf *out, mv_err *err);
/* mv_store_checkpoint_due - sign a head when leaves came since the latest
 * and it is interval_s old (the daemon's timer); *signed_one says. */
MV_NODISCARD mv_status mv_store_checkpoint_due(mv_store *s, int64_t interval_s, int *signed_one,
                                               mv_err *err);

/* mv_store_proof - the inclusion proof of message serial's leaf, as a
 * proof file (docs/integrity.md) into out (replaced): against head (a
 * tree head note the caller kept, checked to be this archive's and to
 * match its tree) or, with head NULL, against the latest signed head
 * (signed now if none covers the leaf).
 * MV_ENOTFOUND (no such message, or it is newer than head), MV_ECRYPTO
 * (head not signed by this archive, or the archive's tree differs from
 * it: rewritten, truncated or rolled back), MV_EMALFORMED, MV_ESTORE. */
MV_NODISCARD mv_status mv_store_proof(mv_store *s, uint64_t serial, const uint8_t *head,
                                      size_t hn, mv_buf *out, mv_err *err);

typedef struct mv_proof_info {
    uint64_t serial, index, size;
    int64_t received_us; /* the trusted receipt time the leaf carries */
    char origin[256];
    uint8_t pub[32];     /* the key the tree head is signed with */
    int against_head;    /* the head given matched */
} mv_proof_info;
/* mv_proof_check - check a proof file without an archive: its tree head is
 * signed by the key it names (or by want_pub when not NULL), the leaf is
 * message `serial`'s, and the path leads from it to the head's root; with
 * head (a tree head an auditor kept), that head is signed by the same key
 * and is the proof's head.  MV_OK only when all holds; MV_ECRYPTO for a
 * proof that does not verify, MV_EMALFORMED for one that does not parse,
 * MV_ELIMIT above MV_PROOF_MAX_BYTES.  out is filled as far as parsed. */
MV_NODISCARD mv_status mv_proof_check(const uint8_t *p, size_t n, const uint8_t *head, size_t hn,
                                      const uint8_t *want_pub, mv_proof_info *out, mv_err *err);

/* mv_store_verify - recompute the log from the records: every leaf from
 * its record (and every message's and copy's bytes against their SHA-256,
 * decrypting each blob), every tree node, every signed head, serial
 * continuity, records without a leaf, and, given a checkpoint an auditor
 * kept, that the log still extends it (the only check that catches a
 * rollback or a cut tail).  Each failure goes to fail (serial 0 when it is
 * not one message's); the return is MV_OK when verification ran, whatever
 * it found (r->failures counts), an error only when it could not run. */
typedef void (*mv_verify_fail_fn)(void *ctx, uint64_t serial, const char *what);
typedef void (*mv_verify_progress_fn)(void *ctx, uint64_t done, uint64_t total);
typedef struct mv_verify_opts {
    const uint8_t *checkpoint; /* a tree head note kept by an auditor, or NULL */
    size_t checkpoint_len;
    mv_verify_fail_fn fail;
    mv_verify_progress_fn progress;
    void *ctx;
} mv_verify_opts;
typedef struct mv_verify_result {
    uint64_t leaves, heads, bytes, failures;
    uint64_t messages, copies, attributes, audits; /* records that verified in full */
    uint64_t purged; /* messages a verified, signed tombstone stands for */
    uint64_t checkpoint_size;
    int checkpoint_checked; /* the log was recomputed up to the checkpoint's size */
} mv_verify_result;
MV_NODISCARD mv_status mv_store_verify(mv_store *s, const mv_verify_opts *o, mv_verify_result *r,
                                       mv_err *err);

#endif
