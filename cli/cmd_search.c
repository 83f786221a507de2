/* SPDX-License-Identifier: MIT */
/* cmd_search.c - `mailvault search QUERY`: the query language of
 * docs/search.md over the archive's index.  Every search is audited with
 * its query and its count. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"
#include "cli.h"

#define SEARCH_DEFAULT_LIMIT 20
#define SNIPPET_CHARS 160

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault search QUERY [--limit N] [--offset N]\n"
            "                        [--sort date|-date|relevance]\n"
            "                        [--format table|json|serials] [--count]\n\n"
            "Find messages: free text, \"phrases\", AND OR NOT ( ), and fields such as\n"
            "from: to: cc: bcc: participant: subject: body: attachment: filename:\n"
            "msgid: domain: custodian: date:2024-01..2024-03 size:>1M has:attachment\n"
            "is:encrypted (see `mailvault help search` and docs/search.md).\n\n"
            "  --limit N     rows shown (default %d; 0 = all)\n"
            "  --offset N    rows skipped first\n"
            "  --sort        -date newest first (default), date oldest first, relevance\n"
            "  --count       print the number of matches only\n"
            "  --format      table (default), json, or serials (one per line)\n\n"
            "The total is exact.  Snippets are made by decrypting the rows shown only.\n"
            "Needs the role officer or legal.  Every search is written to the audit log.\n",
            SEARCH_DEFAULT_LIMIT);
}

typedef struct search_args {
    uint64_t limit, offset;
    int limit_set, count;
    mv_sort sort;
} search_args;

static int search_opt(void *ctx, int opt, const char *arg)
{
    search_args *a = ctx;
    switch (opt) {
    case 'l':
        if (cli_parse_u64(arg, &a->limit))
            break;
        a->limit_set = 1;
        return 0;
    case 'o':
        if (cli_parse_u64(arg, &a->offset))
            break;
        return 0;
    case 'c':
        a->count = 1;
        return 0;
    case 's':
        if (!strcmp(arg, "date"))
            a->sort = MV_SORT_DATE_ASC;
        else if (!strcmp(arg, "-date"))
            a->sort = MV_SORT_DATE_DESC;
        else if (!strcmp(arg, "relevance"))
            a->sort = MV_SORT_RELEVANCE;
        else
            return cli_usage_error("search", "--sort is date, -date or relevance"), -1;
        return 0;
    }
    return cli_usage_error("search", "bad number '%s'", arg), -1;
}

static void print_table(const mv_search_result *r, uint64_t offset)
{
    for (size_t i = 0; i < r->n; i++) {
        const mv_search_row *w = &r->rows[i];
        char when[32];
        if (w->date == INT64_MIN)
            snprintf(when, sizeof when, "%-19s", "(no date)");
        else
            mv_fmt_time(w->date, when, sizeof when);
        fprintf(cli_out, "%8llu  %s  ", (unsigned long long)w->serial, when);
        text_safe(cli_out, w->from ? w->from : "(no sender)");
        fprintf(cli_out, "  ->  ");
        text_safe(cli_out, w->to ? w->to : "(no recipient)");
        fprintf(cli_out, "\n          ");
        text_safe(cli_out, w->subject ? w->subject : "(no subject)");
        fprintf(cli_out, "\n");
        if (w->snippet && *w->snippet) {
            fprintf(cli_out, "          ");
            text_safe(cli_out, w->snippet);
            fprintf(cli_out, "\n");
        }
    }
    if (r->n || offset)
        fprintf(cli_out, "%llu match%s (rows %llu-%llu)\n", (unsigned long long)r->total,
                r->total == 1 ? "" : "es", (unsigned long long)(r->n ? offset + 1 : 0),
                (unsigned long long)(offset + r->n));
    else
        fprintf(cli_out, "%llu match%s\n", (unsigned long long)r->total,
                r->total == 1 ? "" : "es");
}

static void print_json(const char *query, const mv_search_result *r)
{
    fprintf(cli_out, "{");
    json_kv_str(cli_out, "query", query, 0);
    json_kv_u64(cli_out, "total", r->total, 1);
    fprintf(cli_out, ",\"results\":[");
    for (size_t i = 0; i < r->n; i++) {
        const mv_search_row *w = &r->rows[i];
        char when[32] = "";
        if (w->date != INT64_MIN)
            mv_fmt_time(w->date, when, sizeof when);
        fprintf(cli_out, "%s{", i ? "," : "");
        json_kv_u64(cli_out, "serial", w->serial, 0);
        json_kv_str(cli_out, "date", w->date != INT64_MIN ? when : NULL, 1);
        json_kv_str(cli_out, "from", w->from, 1);
        json_kv_str(cli_out, "to", w->to, 1);
        json_kv_str(cli_out, "subject", w->subject, 1);
        json_kv_str(cli_out, "snippet", w->snippet, 1);
        fprintf(cli_out, "}");
    }
    fprintf(cli_out, "]}\n");
}

int cmd_search(int argc, char **argv)
{
    mv_cli c;
    search_args a = {SEARCH_DEFAULT_LIMIT, 0, 0, 0, MV_SORT_DATE_DESC};
    static const struct option opts[] = {{"limit", required_argument, NULL, 'l'},
                                         {"offset", required_argument, NULL, 'o'},
                                         {"sort", required_argument, NULL, 's'},
                                         {"count", no_argument, NULL, 'c'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "search");
    c.serials_ok = 1;
    int rc = cli_getopt(&c, argc, argv, opts, search_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi >= argc)
        return cli_usage_error("search", "give a QUERY (quote it: mailvault search 'from:alice')");
    /* Several words unquoted by the shell are one query. */
    mv_buf q = MV_BUF_INIT;
    for (int i = c.argi; i < argc; i++) {
        if (i > c.argi)
            mv_buf_append_byte(&q, ' ');
        mv_buf_append_str(&q, argv[i]);
    }
    mv_buf_append_byte(&q, 0);
    const char *query = (const char *)q.data;
    mv_err err = {0};
    mv_store *s = NULL;
    mv_index *ix = NULL;
    mv_search_result r = {0};
    mv_status st = cli_open(&c, &s, &err);
    if (st) {
        mv_buf_free(&q);
        return cli_finish(&c, NULL, st, &err);
    }
    cli_detail(&c, "query=%s", query);
    if (!(st = cli_require(&c, s, MV_USER_OFFICER | MV_USER_LEGAL, &err)) &&
        !(st = cli_index_get(&c, s, 1, &ix, &err))) {
        mv_search_opts so = {a.offset, a.count ? 0 : (a.limit ? a.limit : UINT64_MAX), a.sort,
                             (c.json || (!c.serials && !a.count)) ? SNIPPET_CHARS : 0, NULL,
                             NULL};
        if (!c.json && !c.serials && !a.count)
            so.hl_start = "[", so.hl_end = "]";
        st = mv_index_search(ix, query, &so, &r, &err);
    }
    if (!st) {
        if (a.count && c.json)
            fprintf(cli_out, "{\"total\":%llu}\n", (unsigned long long)r.total);
        else if (a.count)
            fprintf(cli_out, "%llu\n", (unsigned long long)r.total);
        else if (c.json)
            print_json(query, &r);
        else if (c.serials)
            for (size_t i = 0; i < r.n; i++)
                fprintf(cli_out, "%llu\n", (unsigned long long)r.rows[i].serial);
        else
            print_table(&r, a.offset);
        cli_detail(&c, " -> %llu", (unsigned long long)r.total);
    }
    mv_search_result_free(&r);
    cli_index_put(ix);
    rc = cli_finish(&c, s, st, &err);
    mv_buf_free(&q);
    return rc;
}
