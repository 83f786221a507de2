/* SPDX-License-Identifier: MIT */
/* server.h - the journaling daemon's ingest side: SMTP/LMTP listeners,
 * sessions, the shared spool sync, and the one pipeline.
 *
 *   accept (client network allow-list, session limit)
 *     -> session thread: protocol engine (ingest/smtp.h), STARTTLS
 *     -> end of data: unwrap by source kind (ingest/journal.h), envelope
 *     -> spooler thread: every waiting session's arrival in ONE synced
 *        spool write (group commit), then each session answers 250
 *     -> feeder thread: the pipeline (ingest/pipeline.h), which archives
 *        and removes the spool entry in one atomic batch.
 *
 * Nothing is acknowledged before mv_spool_add returned: a crash at any
 * point leaves an acknowledged message in the spool, replayed by the next
 * mv_server_start before any listener opens.
 *
 * Threads: mv_server_* may be called from any one control thread; the
 * server runs its own threads.  Addresses and content never reach the log
 * (sessions are logged by number, arrivals by spool sequence and size). */
#ifndef MV_INGEST_SERVER_H
#define MV_INGEST_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "../store/store.h"
#include "journal.h"
#include "pipeline.h"
#include "smtp.h"

typedef struct mv_server mv_server;

typedef struct mv_listener_conf {
    const char *name;      /* "smtp", or the config section's name */
    mv_smtp_proto proto;
    const char *listen;    /* "host:port", "[v6]:port" or "unix:/path" */
    mv_source_kind source; /* what mail from this listener is believed to be */
    int require_tls;
} mv_listener_conf;

/* A client network: CIDR, with the source kind it declares (has_source). */
typedef struct mv_client_conf {
    const char *cidr;      /* "10.0.0.0/8", "::1", "192.0.2.7" */
    mv_source_kind source;
    int has_source;
} mv_client_conf;

/* A client certificate (verified against tls_client_ca) whose subject
 * common name or a DNS subjectAltName equals name declares a source kind. */
typedef struct mv_cert_conf {
    const char *name;
    mv_source_kind source;
} mv_cert_conf;

typedef struct mv_server_conf {
    const char *hostname;            /* greeting; NULL = gethostname() */
    const mv_listener_conf *listeners;
    size_t n_listeners;
    const mv_client_conf *clients;   /* n_clients == 0: loopback only */
    size_t n_clients;
    const mv_cert_conf *certs;
    size_t n_certs;
    /* TLS: STARTTLS is offered when cert and key are set. */
    const char *tls_cert, *tls_key;
    const char *tls_client_ca;       /* verify client certificates against it */
    int tls_require_client_cert;     /* no certificate (or a bad one): 530 for MAIL */
    /* Journal reports are unwrapped only from an exchange-journal source,
     * and, when this list is not empty, only when MAIL FROM is one of it. */
    char *const *report_senders;
    size_t n_report_senders;
    /* Postfix sub-address recipe: RCPT base+user=domain@... */
    const char *subaddress_base;     /* NULL/"" = do not decode */
    char subaddress_delim;           /* default '+' */
    mv_smtp_limits limits;
    unsigned max_sessions;           /* 0 = 100 */
    uint64_t command_timeout_ms;     /* 0 = 300 s */
    uint64_t data_timeout_ms;        /* 0 = 600 s */
    uint64_t drain_timeout_ms;       /* SIGTERM: how long a message in transfer may finish; 0 = 30 s */
    size_t queue_bytes;              /* spooled bytes waiting for the pipeline before sessions wait; 0 = 64 MiB */
    mv_pipeline_opts pipeline;
} mv_server_conf;

/* mv_server_start - replay the spool into the pipeline, then bind every
 * listener and start serving.  conf is copied.
 * @retval MV_EIO      a listener cannot be bound (address in use ...)
 * @retval MV_EUSAGE   a bad address, CIDR or TLS file
 * @retval MV_ECRYPTO  the TLS certificate or key cannot be loaded */
MV_NODISCARD mv_status mv_server_start(mv_store *s, const mv_server_conf *conf, mv_server **out,
                                       mv_err *err);

/* mv_server_reload - what can change without a restart: TLS files,
 * client networks and certificates, report senders, sub-address recipe,
 * limits and timeouts for new sessions.  Listeners stay as they are.
 * On error nothing changes. */
MV_NODISCARD mv_status mv_server_reload(mv_server *srv, const mv_server_conf *conf, mv_err *err);

typedef struct mv_session_info {
    uint64_t id;
    char listener[32];
    char client[64];   /* peer address (not stored anywhere) */
    char state[16];    /* "command", "data", "tls", "spooling" */
    int tls;
    int64_t started_us;
    uint64_t messages, bytes;
} mv_session_info;

#define MV_SERVER_ERRORS 10
typedef struct mv_server_status {
    int64_t started_us;
    uint64_t sessions_total, refused_network, refused_busy;
    uint64_t accepted, tempfailed, rejected, accepted_bytes;
    uint64_t spool_syncs;      /* synced spool writes (one per group of arrivals) */
    uint64_t queued_bytes;     /* acknowledged bytes waiting to enter the pipeline */
    uint64_t spool;            /* accepted, not yet archived */
    uint64_t index_lag;        /* changes not yet in the search index (set by the caller) */
    mv_pipeline_stats pipeline;
    size_t n_sessions;
    mv_session_info *sessions; /* malloc'd, free with free() */
    size_t n_errors;           /* most recent first */
    int64_t error_time[MV_SERVER_ERRORS];
    char errors[MV_SERVER_ERRORS][160];
} mv_server_status;
void mv_server_get_status(mv_server *srv, mv_server_status *st);

/* mv_server_stop - stop listening; idle sessions get 421 at once,
 * sessions in the middle of a message may finish it (drain timeout), then
 * get 421.  Waits for every acknowledged arrival to be archived, stops
 * the pipeline and frees srv (store left open).  Returns the pipeline's
 * first fatal error, if any (its arrivals are still in the spool). */
MV_NODISCARD mv_status mv_server_stop(mv_server *srv, mv_err *err);

#endif
