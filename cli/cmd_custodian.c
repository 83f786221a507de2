/* SPDX-License-Identifier: MIT */
/* cmd_custodian.c - `mailvault custodian add|import|list|remove`: the
 * people whose mail a matter is about (name, addresses, aliases,
 * department), kept sealed in the store.  `custodian:NAME` in search and
 * the export's Custodian field use them. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"
#include "cli.h"

#define CUSTODIAN_CSV_MAX (64u << 20) /* bytes of one import file */
#define CUSTODIAN_FIELD_MAX 4096      /* bytes of one CSV field */
#define CUSTODIAN_ADDR_MAX 1000       /* addresses (and aliases) of one custodian */

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault custodian add NAME --address A [--address B ...]\n"
            "                               [--alias OTHER-NAME ...] [--department D]\n"
            "       mailvault custodian import FILE.csv\n"
            "       mailvault custodian list [--format json]\n"
            "       mailvault custodian remove NAME\n\n"
            "Custodians are the people of the organisation: `custodian:NAME` finds mail\n"
            "from or to any of their addresses.  add replaces a custodian of the same name.\n"
            "import reads CSV (RFC 4180, UTF-8) with a header row naming the columns\n"
            "name, addresses, aliases, department; several addresses or aliases in one\n"
            "field are separated by ';'.\n"
            "Needs the role admin or legal (list: officer too).\n");
}

typedef struct cust_args {
    mv_custodian c;
} cust_args;

static void push(char ***v, size_t *n, const char *s, size_t len)
{
    *v = mv_xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = mv_xstrndup(s, len);
}

/* addr_ok - a plausible addr-spec: one '@', something on both sides, no
 * space or control character. */
static int addr_ok(const char *a)
{
    const char *at = strchr(a, '@');
    if (!at || at == a || !at[1] || strchr(at + 1, '@'))
        return 0;
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>' || *p == ',')
            return 0;
    return 1;
}

static char *lower(char *s)
{
    for (char *p = s; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return s;
}

static int cust_opt(void *ctx, int opt, const char *arg)
{
    cust_args *a = ctx;
    switch (opt) {
    case 'a':
        if (!addr_ok(arg))
            return cli_usage_error("custodian", "'%s' is not an email address", arg), -1;
        push(&a->c.addresses, &a->c.n_addresses, arg, strlen(arg));
        lower(a->c.addresses[a->c.n_addresses - 1]);
        return 0;
    case 'l':
        push(&a->c.aliases, &a->c.n_aliases, arg, strlen(arg));
        return 0;
    case 'd':
        free(a->c.department);
        a->c.department = mv_xstrdup(arg);
        return 0;
    }
    return -1;
}

/* split - a ';'-separated field into trimmed, non-empty items. */
static void split(const char *f, char ***v, size_t *n, int addresses)
{
    while (*f) {
        const char *e = strchr(f, ';');
        size_t len = e ? (size_t)(e - f) : strlen(f);
        const char *b = f;
        while (len && (*b == ' ' || *b == '\t'))
            b++, len--;
        while (len && (b[len - 1] == ' ' || b[len - 1] == '\t'))
            len--;
        if (len) {
            push(v, n, b, len);
            if (addresses)
                lower((*v)[*n - 1]);
        }
        if (!e)
            break;
        f = e + 1;
    }
}

/* csv_row - one RFC 4180 record from p[*pos..n) into fields (owned);
 * returns 1 with a row, 0 at the end, -1 on a malformed record. */
static int csv_row(const char *p, size_t n, size_t *pos, char ***fields, size_t *nf)
{
    *fields = NULL;
    *nf = 0;
    size_t i = *pos;
    if (i >= n)
        return 0;
    mv_buf f = MV_BUF_INIT;
    for (;;) {
        mv_buf_reset(&f);
        if (i < n && p[i] == '"') {
            i++;
            for (;;) {
                if (i >= n)
                    goto bad;
                if (p[i] == '"') {
                    if (i + 1 < n && p[i + 1] == '"') {
                        mv_buf_append_byte(&f, '"');
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                mv_buf_append_byte(&f, (uint8_t)p[i++]);
                if (f.len > CUSTODIAN_FIELD_MAX)
                    goto bad;
            }
        } else {
            while (i < n && p[i] != ',' && p[i] != '\n' && p[i] != '\r') {
                mv_buf_append_byte(&f, (uint8_t)p[i++]);
                if (f.len > CUSTODIAN_FIELD_MAX)
                    goto bad;
            }
        }
        push(fields, nf, f.len ? (const char *)f.data : "", f.len);
        if (i < n && p[i] == ',') {
            i++;
            continue;
        }
        if (i < n && p[i] == '\r')
            i++;
        if (i < n && p[i] == '\n')
            i++;
        else if (i < n)
            goto bad;
        break;
    }
    mv_buf_free(&f);
    *pos = i;
    return 1;
bad:
    mv_buf_free(&f);
    for (size_t k = 0; k < *nf; k++)
        free((*fields)[k]);
    free(*fields);
    *fields = NULL;
    *nf = 0;
    return -1;
}

static void free_fields(char **f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i]);
    free(f);
}

static mv_status import_csv(mv_store *s, const char *path, size_t *count, mv_err *err)
{
    mv_buf file = MV_BUF_INIT;
    mv_status st = mv_read_file(path, CUSTODIAN_CSV_MAX, &file, err);
    if (st)
        return st;
    const char *p = (const char *)file.data;
    size_t n = file.len, pos = 0, line = 1;
    if (n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
        pos = 3; /* a spreadsheet's byte-order mark */
    char **h = NULL;
    size_t nh = 0;
    int col[4] = {-1, -1, -1, -1}; /* name addresses aliases department */
    static const char *const names[4] = {"name", "addresses", "aliases", "department"};
    if (csv_row(p, n, &pos, &h, &nh) != 1) {
        mv_buf_free(&file);
        return mv_err_set(err, MV_EMALFORMED, "%s: no header row", path);
    }
    for (size_t i = 0; i < nh; i++)
        for (int k = 0; k < 4; k++)
            if (!strcasecmp(h[i], names[k]) ||
                (k == 1 && (!strcasecmp(h[i], "address") || !strcasecmp(h[i], "email"))) ||
                (k == 2 && !strcasecmp(h[i], "alias")))
                col[k] = (int)i;
    free_fields(h, nh);
    if (col[0] < 0 || col[1] < 0) {
        mv_buf_free(&file);
        return mv_err_set(err, MV_EMALFORMED,
                          "%s: the header row must name the columns name and addresses "
                          "(and may name aliases and department)", path);
    }
    *count = 0;
    for (;;) {
        char **f = NULL;
        size_t nf = 0;
        line++;
        int r = csv_row(p, n, &pos, &f, &nf);
        if (r == 0)
            break;
        if (r < 0) {
            st = mv_err_set(err, MV_EMALFORMED, "%s:%zu: a malformed CSV record (quotes?)",
                            path, line);
            break;
        }
        if (nf == 1 && !*f[0]) { /* blank line */
            free_fields(f, nf);
            continue;
        }
        mv_custodian c = {0};
        const char *get[4];
        for (int k = 0; k < 4; k++)
            get[k] = col[k] >= 0 && (size_t)col[k] < nf ? f[col[k]] : "";
        c.name = mv_xstrdup(get[0]);
        c.department = *get[3] ? mv_xstrdup(get[3]) : NULL;
        split(get[1], &c.addresses, &c.n_addresses, 1);
        split(get[2], &c.aliases, &c.n_aliases, 0);
        free_fields(f, nf);
        if (!*c.name)
            st = mv_err_set(err, MV_EMALFORMED, "%s:%zu: a custodian without a name", path,
                            line);
        else if (!c.n_addresses)
            st = mv_err_set(err, MV_EMALFORMED, "%s:%zu: custodian '%s' has no address", path,
                            line, c.name);
        else if (c.n_addresses > CUSTODIAN_ADDR_MAX || c.n_aliases > CUSTODIAN_ADDR_MAX)
            st = mv_err_set(err, MV_ELIMIT, "%s:%zu: more than %u addresses or aliases", path,
                            line, CUSTODIAN_ADDR_MAX);
        for (size_t k = 0; !st && k < c.n_addresses; k++)
            if (!addr_ok(c.addresses[k]))
                st = mv_err_set(err, MV_EMALFORMED, "%s:%zu: '%s' is not an email address",
                                path, line, c.addresses[k]);
        if (!st && !(st = mv_store_custodian_put(s, &c, err)))
            (*count)++;
        mv_custodian_clear(&c);
        if (st)
            break;
    }
    mv_buf_wipe(&file);
    return st;
}

static void print_list(mv_cli *c, const mv_custodian *v, size_t n)
{
    if (c->json)
        fprintf(cli_out, "[");
    for (size_t i = 0; i < n; i++) {
        if (c->json) {
            fprintf(cli_out, "%s{", i ? "," : "");
            json_kv_str(cli_out, "name", v[i].name, 0);
            json_kv_str(cli_out, "department", v[i].department && *v[i].department
                                                    ? v[i].department : NULL, 1);
            fprintf(cli_out, ",\"addresses\":[");
            for (size_t k = 0; k < v[i].n_addresses; k++) {
                fprintf(cli_out, "%s", k ? "," : "");
                json_str(cli_out, v[i].addresses[k]);
            }
            fprintf(cli_out, "],\"aliases\":[");
            for (size_t k = 0; k < v[i].n_aliases; k++) {
                fprintf(cli_out, "%s", k ? "," : "");
                json_str(cli_out, v[i].aliases[k]);
            }
            fprintf(cli_out, "]}");
            continue;
        }
        text_safe(cli_out, v[i].name);
        if (v[i].department && *v[i].department) {
            fprintf(cli_out, " (");
            text_safe(cli_out, v[i].department);
            fprintf(cli_out, ")");
        }
        fprintf(cli_out, "\n");
        for (size_t k = 0; k < v[i].n_addresses; k++) {
            fprintf(cli_out, "  address ");
            text_safe(cli_out, v[i].addresses[k]);
            fprintf(cli_out, "\n");
        }
        for (size_t k = 0; k < v[i].n_aliases; k++) {
            fprintf(cli_out, "  alias   ");
            text_safe(cli_out, v[i].aliases[k]);
            fprintf(cli_out, "\n");
        }
    }
    if (c->json)
        fprintf(cli_out, "]\n");
    else if (!n)
        fprintf(cli_out, "no custodians (mailvault custodian add NAME --address A)\n");
}

int cmd_custodian(int argc, char **argv)
{
    mv_cli c;
    cust_args a = {{0}};
    static const struct option opts[] = {{"address", required_argument, NULL, 'a'},
                                         {"alias", required_argument, NULL, 'l'},
                                         {"department", required_argument, NULL, 'd'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "custodian");
    int rc = cli_getopt(&c, argc, argv, opts, cust_opt, &a, help);
    if (rc) {
        mv_custodian_clear(&a.c);
        return CLI_GETOPT_EXIT(rc);
    }
    const char *sub = c.argi < argc ? argv[c.argi] : NULL;
    int nargs = argc - c.argi - 1;
    int ok = sub && ((!strcmp(sub, "add") && nargs == 1 && a.c.n_addresses) ||
                     (!strcmp(sub, "import") && nargs == 1) ||
                     (!strcmp(sub, "list") && nargs == 0) ||
                     (!strcmp(sub, "remove") && nargs == 1));
    if (!ok) {
        mv_custodian_clear(&a.c);
        if (sub && !strcmp(sub, "add") && nargs == 1)
            return cli_usage_error("custodian", "add needs at least one --address");
        return cli_usage_error("custodian", "give add NAME --address A, import FILE.csv, "
                                            "list, or remove NAME");
    }
    mv_err err = {0};
    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st) {
        mv_custodian_clear(&a.c);
        return cli_finish(&c, NULL, st, &err);
    }
    const char *arg = nargs ? argv[c.argi + 1] : "";
    cli_detail(&c, "%s %s", sub, arg);
    unsigned need = !strcmp(sub, "list") ? MV_USER_ADMIN | MV_USER_LEGAL | MV_USER_OFFICER
                                         : MV_USER_ADMIN | MV_USER_LEGAL;
    if (!(st = cli_require(&c, s, need, &err))) {
        if (!strcmp(sub, "add")) {
            a.c.name = mv_xstrdup(arg);
            if (!(st = mv_store_custodian_put(s, &a.c, &err)) && !c.json)
                fprintf(cli_out, "custodian '%s' saved with %zu address%s\n", arg,
                        a.c.n_addresses, a.c.n_addresses == 1 ? "" : "es");
        } else if (!strcmp(sub, "import")) {
            size_t n = 0;
            if (cli_in_daemon)
                /* the daemon never reads a file a client names */
                st = mv_err_set(&err, MV_ETEMP, "custodian import reads a file, which the daemon "
                                                "does not do for a client: stop the daemon for "
                                                "the import, or use custodian add");
            else
                st = import_csv(s, arg, &n, &err);
            if (n || !st) {
                if (c.json)
                    fprintf(cli_out, "{\"imported\":%zu}\n", n);
                else
                    fprintf(cli_out, "imported %zu custodian%s\n", n, n == 1 ? "" : "s");
            }
            cli_detail(&c, " -> %zu", n);
        } else if (!strcmp(sub, "remove")) {
            if (!(st = mv_store_custodian_remove(s, arg, &err)) && !c.json)
                fprintf(cli_out, "custodian '%s' removed\n", arg);
        } else {
            mv_custodian *v = NULL;
            size_t n = 0;
            if (!(st = mv_store_custodians(s, &v, &n, &err)))
                print_list(&c, v, n);
            for (size_t i = 0; i < n; i++)
                mv_custodian_clear(&v[i]);
            free(v);
        }
    }
    mv_custodian_clear(&a.c);
    return cli_finish(&c, s, st, &err);
}
