/* SPDX-License-Identifier: MIT */
/* cmd_status.c - `mailvault status`: the daemon's sessions, counters and
 * last errors, and always the line `spool: N` (accepted, not yet
 * archived).  Inside the daemon it reads the running server; without a
 * daemon it opens the archive and reports the spool. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/util.h"
#include "cli.h"
#include "serve.h"

static void help(void)
{
    fprintf(cli_out, "usage: mailvault status [--archive DIR] [--format text|json]\n\n"
                     "Whether the daemon runs, its sessions, what it accepted and archived,\n"
                     "its last errors, `spool: N`: messages acknowledged and not yet\n"
                     "archived, and `index lag: N`: changes not yet searchable.\n"
                     "Any role may ask.\n");
}

static void print_text(const mv_server_status *st)
{
    char t[32];
    fprintf(cli_out, "daemon: running since %s (pid %ld)\n", mv_fmt_time(st->started_us / 1000000, t, sizeof t),
            (long)getpid());
    fprintf(cli_out, "sessions: %zu (total %llu, refused %llu outside allowed networks, %llu over the limit)\n",
            st->n_sessions, (unsigned long long)st->sessions_total,
            (unsigned long long)st->refused_network, (unsigned long long)st->refused_busy);
    for (size_t i = 0; i < st->n_sessions; i++) {
        const mv_session_info *x = &st->sessions[i];
        fprintf(cli_out, "  #%llu %s %s %s%s since %s, %llu messages, %llu bytes\n",
                (unsigned long long)x->id, x->listener, x->client, x->state, x->tls ? " tls" : "",
                mv_fmt_time(x->started_us / 1000000, t, sizeof t), (unsigned long long)x->messages,
                (unsigned long long)x->bytes);
    }
    fprintf(cli_out, "accepted: %llu messages, %llu bytes (%llu answered 4xx, %llu spool syncs)\n",
            (unsigned long long)st->accepted, (unsigned long long)st->accepted_bytes,
            (unsigned long long)st->tempfailed, (unsigned long long)st->spool_syncs);
    fprintf(cli_out, "archived: %llu new, %llu merged as copies, %llu failed (kept in the spool)\n",
            (unsigned long long)st->pipeline.new_messages, (unsigned long long)st->pipeline.merged,
            (unsigned long long)st->pipeline.failed);
    fprintf(cli_out, "queued: %llu bytes acknowledged, waiting for the pipeline\n",
            (unsigned long long)st->queued_bytes);
    fprintf(cli_out, "spool: %llu\n", (unsigned long long)st->spool);
    fprintf(cli_out, "index lag: %llu\n", (unsigned long long)st->index_lag);
    fprintf(cli_out, "last errors:%s\n", st->n_errors ? "" : " none");
    for (size_t i = 0; i < st->n_errors; i++)
        fprintf(cli_out, "  %s %s\n", mv_fmt_time(st->error_time[i] / 1000000, t, sizeof t),
                st->errors[i]);
}

static void print_json(const mv_server_status *st)
{
    char t[32];
    fprintf(cli_out, "{\"daemon\":\"running\"");
    json_kv_str(cli_out, "since", mv_fmt_time(st->started_us / 1000000, t, sizeof t), 1);
    json_kv_u64(cli_out, "pid", (uint64_t)getpid(), 1);
    json_kv_u64(cli_out, "sessions_total", st->sessions_total, 1);
    json_kv_u64(cli_out, "refused_network", st->refused_network, 1);
    json_kv_u64(cli_out, "refused_busy", st->refused_busy, 1);
    json_kv_u64(cli_out, "accepted", st->accepted, 1);
    json_kv_u64(cli_out, "accepted_bytes", st->accepted_bytes, 1);
    json_kv_u64(cli_out, "tempfailed", st->tempfailed, 1);
    json_kv_u64(cli_out, "spool_syncs", st->spool_syncs, 1);
    json_kv_u64(cli_out, "archived_new", st->pipeline.new_messages, 1);
    json_kv_u64(cli_out, "archived_merged", st->pipeline.merged, 1);
    json_kv_u64(cli_out, "failed", st->pipeline.failed, 1);
    json_kv_u64(cli_out, "queued_bytes", st->queued_bytes, 1);
    json_kv_u64(cli_out, "spool", st->spool, 1);
    json_kv_u64(cli_out, "index_lag", st->index_lag, 1);
    fprintf(cli_out, ",\"sessions\":[");
    for (size_t i = 0; i < st->n_sessions; i++) {
        const mv_session_info *x = &st->sessions[i];
        fprintf(cli_out, "%s{", i ? "," : "");
        json_kv_u64(cli_out, "id", x->id, 0);
        json_kv_str(cli_out, "listener", x->listener, 1);
        json_kv_str(cli_out, "client", x->client, 1);
        json_kv_str(cli_out, "state", x->state, 1);
        fprintf(cli_out, ",\"tls\":%s", x->tls ? "true" : "false");
        json_kv_str(cli_out, "since", mv_fmt_time(x->started_us / 1000000, t, sizeof t), 1);
        json_kv_u64(cli_out, "messages", x->messages, 1);
        json_kv_u64(cli_out, "bytes", x->bytes, 1);
        fprintf(cli_out, "}");
    }
    fprintf(cli_out, "],\"errors\":[");
    for (size_t i = 0; i < st->n_errors; i++) {
        fprintf(cli_out, "%s{", i ? "," : "");
        json_kv_str(cli_out, "time", mv_fmt_time(st->error_time[i] / 1000000, t, sizeof t), 0);
        json_kv_str(cli_out, "error", st->errors[i], 1);
        fprintf(cli_out, "}");
    }
    fprintf(cli_out, "]}\n");
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_OPTS, {NULL, 0, NULL, 0}};
    mv_cli c;
    cli_init(&c, "status");
    int rc = cli_getopt(&c, argc, argv, opts, cli_no_opt, NULL, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi < argc)
        return cli_usage_error("status", "unexpected argument '%s'", argv[c.argi]);
    mv_err err = {0};
    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (!st)
        st = cli_require(&c, s, MV_USER_ADMIN | MV_USER_OFFICER | MV_USER_LEGAL | MV_USER_AUDITOR,
                         &err);
    if (!st && cli_server) {
        mv_server_status ss;
        mv_server_get_status(cli_server, &ss);
        ss.index_lag = cli_index_lag(s);
        if (c.json)
            print_json(&ss);
        else
            print_text(&ss);
        free(ss.sessions);
    } else if (!st) {
        uint64_t n = mv_spool_count(s), lag = cli_index_lag(s);
        if (c.json) {
            fprintf(cli_out, "{\"daemon\":\"not running\"");
            json_kv_u64(cli_out, "spool", n, 1);
            json_kv_u64(cli_out, "index_lag", lag, 1);
            fprintf(cli_out, "}\n");
        } else {
            fprintf(cli_out, "daemon: not running\n");
            fprintf(cli_out, "spool: %llu\n", (unsigned long long)n);
            fprintf(cli_out, "index lag: %llu\n", (unsigned long long)lag);
        }
    }
    return cli_finish(&c, s, st, &err);
}
