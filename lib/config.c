/* SPDX-License-Identifier: MIT */
/* config.c - schema-driven INI reader (the format is described in config.h).
 *
 * Values are kept as the text written and validated on the way in, so the
 * getters only convert.  A load stages its values beside the committed ones
 * and commits them only when the whole text parsed, which makes a failed
 * reload harmless. */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "util.h"

typedef struct val {
    char *text;
    char *wbuf;         /* LIST: text split in place */
    const char **words; /* LIST: NULL-terminated */
    size_t nwords;
} val;

typedef struct slot {
    val *file, *over, *pend; /* pend: staged by the load in progress */
    unsigned pend_line;
} slot;

typedef struct inst {
    char *name;        /* NULL for a plain section */
    slot *slots;       /* one per key of the section */
    unsigned hdr_line; /* header line in the load in progress, 0 = not seen */
} inst;

typedef struct sec {
    char *word;
    int named;
    size_t *keys; /* schema indices */
    size_t nkeys;
    inst *inst;
    size_t ninst, committed;
    const char **names; /* instance names, NULL-terminated, in step with inst */
} sec;

struct mv_cfg {
    const mv_cfg_key *schema;
    size_t n;
    val **defs; /* parsed defaults, per schema index */
    sec *secs;
    size_t nsecs;
};

static int is_ws(int ch)
{
    return ch == ' ' || ch == '\t';
}

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_keych(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || is_digit(ch) || ch == '_' ||
           ch == '.' || ch == '-';
}

static int is_ctl(int ch)
{
    return ((unsigned char)ch < 0x20 && ch != '\t') || ch == 0x7f;
}

/* is_namech - may appear in an unquoted instance name */
static int is_namech(int ch)
{
    return ch && !is_ws(ch) && !is_ctl(ch) && !strchr("[]\"\\#;", ch);
}

static char *skip_ws(char *s)
{
    while (is_ws(*s))
        s++;
    return s;
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if (is_ctl(*s))
            return 1;
    return 0;
}

/* excerpt - at most 40 bytes of s for a message, control bytes as '?'
 * (UTF-8 is kept: operators read these). */
static const char *excerpt(const char *s, char out[48])
{
    size_t i;
    for (i = 0; i < 40 && s[i]; i++)
        out[i] = is_ctl(s[i]) ? '?' : s[i];
    memcpy(out + i, s[i] ? "..." : "", s[i] ? 4 : 1);
    return out;
}

/* ---- values ------------------------------------------------------------- */

typedef struct unit {
    const char *name;
    uint64_t mul;
} unit;

/* Largest first, so that the first exact multiple formats a bound nicely. */
static const unit size_units[] = {{"E", 1ull << 60}, {"P", 1ull << 50}, {"T", 1ull << 40},
                                  {"G", 1ull << 30}, {"M", 1ull << 20}, {"K", 1ull << 10},
                                  {"B", 1},          {"", 1},           {NULL, 0}};
static const unit dur_units[] = {{"d", 86400000}, {"h", 3600000}, {"min", 60000},
                                 {"m", 60000},    {"s", 1000},    {"sec", 1000},
                                 {"ms", 1},       {"", 1000},     {NULL, 0}};
static const unit plain_units[] = {{"", 1}, {NULL, 0}};
static const char *const type_names[] = {"string",   "yes/no", "number",    "size",
                                         "duration", "list",   "octal mode"};

static const unit *units_of(mv_cfg_type type)
{
    return type == MV_CFG_SIZE ? size_units : type == MV_CFG_DURATION ? dur_units : plain_units;
}

/* scaled - digits, optional blanks, a unit of the type (a size letter may
 * also be spelt KB or KiB): 0 ok, -1 bad, -2 too large */
static int scaled(const char *t, mv_cfg_type type, uint64_t *out)
{
    uint64_t x = 0;
    if (!is_digit(*t))
        return -1;
    for (; is_digit(*t); t++) {
        unsigned d = (unsigned)(*t - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -2;
        x = x * 10 + d;
    }
    while (is_ws(*t))
        t++;
    for (const unit *u = units_of(type); u->name; u++) {
        int suffix = type == MV_CFG_SIZE && u->mul > 1 && (*t | 32) == (u->name[0] | 32) &&
                     (strcasecmp(t + 1, "b") == 0 || strcasecmp(t + 1, "ib") == 0);
        if (strcasecmp(t, u->name) != 0 && !suffix)
            continue;
        if (x > UINT64_MAX / u->mul)
            return -2;
        *out = x * u->mul;
        return 0;
    }
    return -1;
}

/* fmt_num - v in the largest exact unit of the type, for messages and docs */
static const char *fmt_num(mv_cfg_type type, uint64_t v, char out[32])
{
    const unit *u = units_of(type);
    while (u->name[0] && (!v || v % u->mul))
        u++;
    snprintf(out, 32, "%" PRIu64 "%s", v / u->mul, u->name);
    return out;
}

/* parse_value - check text t against k; *u gets the number (UINT, SIZE,
 * DURATION, MODE) or boolean.  NULL when valid, else what was expected
 * (possibly formatted into why). */
static const char *parse_value(const mv_cfg_key *k, const char *t, uint64_t *u, char why[128])
{
    static const char *const bools[] = {"no", "yes", "false", "true", "off", "on", "0", "1"};
    static const char *const expect[] = {
        [MV_CFG_BOOL] = "expected yes or no (also true/false, on/off, 1/0)",
        [MV_CFG_UINT] = "expected a whole number such as 10",
        [MV_CFG_SIZE] = "expected a size such as 100M (units B, K, M, G, T, P, E; 1024-based)",
        [MV_CFG_DURATION] = "expected a duration such as 300s, 5m, 250ms or 2h (a bare number "
                            "is seconds)",
        [MV_CFG_MODE] = "expected an octal file mode such as 0640"};
    char a[32], b[32];
    *u = 0;
    if (strlen(t) > MV_CFG_MAX_VALUE) {
        snprintf(why, 128, "value longer than %d bytes", MV_CFG_MAX_VALUE);
        return why;
    }
    if (has_ctl(t))
        return "expected text without control characters";
    if (k->type == MV_CFG_STR || k->type == MV_CFG_LIST)
        return NULL;
    if (k->type == MV_CFG_BOOL) {
        for (size_t i = 0; i < 8; i++) {
            if (strcasecmp(t, bools[i]) == 0) {
                *u = i & 1; /* the table alternates no, yes */
                return NULL;
            }
        }
        return expect[k->type];
    }
    if (k->type == MV_CFG_MODE) {
        if (!*t || strlen(t) > 5 || t[strspn(t, "01234567")] || strtoul(t, NULL, 8) > 07777)
            return expect[k->type];
        *u = strtoul(t, NULL, 8);
        return NULL;
    }
    int r = scaled(t, k->type, u);
    if (r)
        return r == -2 ? "number too large (the limit is 2^64-1)" : expect[k->type];
    if (*u >= k->min && (!k->max || *u <= k->max))
        return NULL;
    if (k->max)
        snprintf(why, 128, "expected a %s from %s to %s", type_names[k->type],
                 fmt_num(k->type, k->min, a), fmt_num(k->type, k->max, b));
    else
        snprintf(why, 128, "expected a %s of at least %s", type_names[k->type],
                 fmt_num(k->type, k->min, a));
    return why;
}

static void val_free(val *v)
{
    if (v) {
        free(v->text);
        free(v->wbuf);
        free(v->words);
        free(v);
    }
}

static val *val_new(const mv_cfg_key *k, const char *t)
{
    val *v = mv_xcalloc(1, sizeof *v);
    v->text = mv_xstrdup(t);
    if (k->type == MV_CFG_LIST) {
        v->wbuf = mv_xstrdup(t);
        v->words = mv_xcalloc(strlen(t) / 2 + 2, sizeof *v->words); /* words need a separator */
        for (char *p = v->wbuf; *p;) {
            p += strspn(p, ", \t");
            if (!*p)
                break;
            v->words[v->nwords++] = p;
            p += strcspn(p, ", \t");
            if (*p)
                *p++ = '\0';
        }
    }
    return v;
}

/* ---- schema lookups ----------------------------------------------------- */

static sec *find_sec(const mv_cfg *c, const char *word)
{
    for (size_t i = 0; i < c->nsecs; i++)
        if (strcmp(c->secs[i].word, word) == 0)
            return &c->secs[i];
    return NULL;
}

/* find_key - index into s->keys, or -1 */
static long find_key(const mv_cfg *c, const sec *s, const char *key)
{
    for (size_t j = 0; j < s->nkeys; j++)
        if (strcmp(c->schema[s->keys[j]].key, key) == 0)
            return (long)j;
    return -1;
}

static inst *find_inst(const sec *s, const char *name)
{
    for (size_t i = 0; i < s->ninst; i++)
        if (!s->named || (name && strcmp(s->inst[i].name, name) == 0))
            return &s->inst[i];
    return NULL;
}

static void sync_names(sec *s)
{
    s->names = mv_xrealloc(s->names, (s->ninst + 1) * sizeof *s->names);
    for (size_t i = 0; i < s->ninst; i++)
        s->names[i] = s->inst[i].name;
    s->names[s->ninst] = NULL;
}

/* get_inst - the instance called name, created if missing */
static mv_status get_inst(sec *s, const char *name, inst **out, mv_err *err)
{
    if ((*out = find_inst(s, name)) != NULL)
        return MV_OK;
    if (s->ninst >= MV_CFG_MAX_INSTANCES)
        return mv_err_set(err, MV_ELIMIT, "more than %d [%s NAME] sections", MV_CFG_MAX_INSTANCES,
                          s->word);
    s->inst = mv_xrealloc(s->inst, (s->ninst + 1) * sizeof *s->inst);
    inst *in = *out = &s->inst[s->ninst++];
    in->name = name ? mv_xstrdup(name) : NULL;
    in->slots = mv_xcalloc(s->nkeys, sizeof *in->slots);
    in->hdr_line = 0;
    sync_names(s);
    return MV_OK;
}

static void inst_free(inst *in, size_t nkeys)
{
    for (size_t j = 0; j < nkeys; j++) {
        val_free(in->slots[j].file);
        val_free(in->slots[j].over);
        val_free(in->slots[j].pend);
    }
    free(in->slots);
    free(in->name);
}

/* lev - edit distance of two short keys, for "did you mean" */
static size_t lev(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];
    if (la > 64 || lb > 64)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + ((a[i - 1] | 32) != (b[j - 1] | 32));
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* sec_label - "[listener smtp]" */
static const char *sec_label(const sec *s, const char *name, char out[96])
{
    char x[48];
    snprintf(out, 96, "[%s%s%s]", s->word, name ? " " : "", name ? excerpt(name, x) : "");
    return out;
}

static mv_status bad_value(mv_err *err, const sec *s, const char *name, const char *key,
                           const char *t, const char *why)
{
    char l[96], x[48];
    return mv_err_set(err, strlen(t) > MV_CFG_MAX_VALUE ? MV_ELIMIT : MV_EMALFORMED,
                      "%s %s = \"%s\": %s", sec_label(s, name, l), key, excerpt(t, x), why);
}

/* check_key - the key's index in s, or an error naming the closest key */
static mv_status check_key(const mv_cfg *c, const sec *s, const char *name, const char *key,
                           long *j, mv_err *err)
{
    char l[96], x[48];
    const char *near = NULL;
    if ((*j = find_key(c, s, key)) >= 0)
        return MV_OK;
    for (size_t i = 0; i < s->nkeys; i++)
        if (lev(key, c->schema[s->keys[i]].key) <= 2)
            near = c->schema[s->keys[i]].key;
    return mv_err_set(err, MV_EMALFORMED, "%s unknown key \"%s\"%s%s%s", sec_label(s, name, l),
                      excerpt(key, x), near ? " (did you mean " : "", near ? near : "",
                      near ? "?)" : "");
}

/* check_sec - the section for word, checking that a name is given exactly
 * when the schema declares it named */
static mv_status check_sec(const mv_cfg *c, const char *word, const char *name, sec **out,
                           mv_err *err)
{
    char x[48], list[160] = "";
    size_t len = 0;
    sec *s = find_sec(c, word);
    *out = s;
    if (s && s->named && !name)
        return mv_err_set(err, MV_EMALFORMED, "[%s] needs a name: [%s NAME]", s->word, s->word);
    if (s && !s->named && name)
        return mv_err_set(err, MV_EMALFORMED, "[%s] takes no name (got \"%s\")", s->word,
                          excerpt(name, x));
    if (s)
        return MV_OK;
    for (size_t i = 0; i < c->nsecs && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s[%s%s]", i ? ", " : "",
                                c->secs[i].word, c->secs[i].named ? " NAME" : "");
    return mv_err_set(err, MV_EMALFORMED, "unknown section [%s]; expected one of %s",
                      excerpt(word, x), list);
}

static mv_status check_name(const char *name, mv_err *err)
{
    if (strlen(name) > MV_CFG_MAX_NAME)
        return mv_err_set(err, MV_ELIMIT, "section name longer than %d bytes", MV_CFG_MAX_NAME);
    if (!*name || has_ctl(name))
        return mv_err_set(err, MV_EMALFORMED,
                          "a section name must be non-empty text without "
                          "control characters");
    return MV_OK;
}

/* ---- loading ------------------------------------------------------------ */

typedef struct loader {
    mv_cfg *c;
    sec *cs;   /* current section */
    size_t ci; /* current instance index in cs */
    unsigned line;
} loader;

/* unquote - *s at '"': decode in place up to the closing quote; *s moves past it */
static mv_status unquote(char **s, char **out, mv_err *err)
{
    char *r = *s + 1, *w = r;
    *out = r;
    for (; *r != '"'; r++) {
        if (!*r)
            return mv_err_set(err, MV_EMALFORMED, "missing closing quote");
        if (*r == '\\') {
            r++;
            if (*r != '"' && *r != '\\')
                return mv_err_set(err, MV_EMALFORMED,
                                  "in quotes only \\\" and \\\\ are escapes; "
                                  "write \\\\ for a backslash");
        }
        *w++ = *r;
    }
    *w = '\0';
    *s = r + 1;
    return MV_OK;
}

/* at_end - only blanks and maybe a comment remain */
static int at_end(char *s)
{
    s = skip_ws(s);
    return !*s || *s == '#' || *s == ';';
}

static mv_status parse_header(loader *ld, char *s, mv_err *err)
{
    char *word = skip_ws(s + 1), *we = word, *name = NULL, *ne = NULL;
    mv_status st;
    inst *in;
    while (is_keych(*we))
        we++;
    s = skip_ws(we);
    int gap = s > we; /* "[listener:x]" is not [listener ":x"] */
    if (*s == '"') {
        if ((st = unquote(&s, &name, err)) != MV_OK)
            return st;
        s = skip_ws(s);
    } else if (*s != ']') {
        for (name = ne = s; is_namech(*ne); ne++)
            ;
        s = skip_ws(ne);
    }
    if (we == word || (name && !gap) || *s != ']' || !at_end(s + 1))
        return mv_err_set(err, MV_EMALFORMED,
                          "malformed section header: expected [section] or "
                          "[section name]");
    *we = '\0';
    if (ne)
        *ne = '\0';
    if ((st = check_sec(ld->c, word, name, &ld->cs, err)) != MV_OK ||
        (name && (st = check_name(name, err)) != MV_OK) ||
        (st = get_inst(ld->cs, name, &in, err)) != MV_OK)
        return st;
    if (in->hdr_line) {
        char l[96];
        return mv_err_set(err, MV_EMALFORMED, "section %s repeated (first at line %u)",
                          sec_label(ld->cs, name, l), in->hdr_line);
    }
    in->hdr_line = ld->line;
    ld->ci = (size_t)(in - ld->cs->inst);
    return MV_OK;
}

static mv_status parse_line(loader *ld, char *s, mv_err *err)
{
    char *key, *ke, *v, why[128], x[48];
    mv_status st;
    uint64_t u;
    long j;
    s = skip_ws(s);
    if (!*s || *s == '#' || *s == ';')
        return MV_OK;
    if (*s == '[')
        return parse_header(ld, s, err);
    for (key = ke = s; is_keych(*ke); ke++)
        ;
    s = skip_ws(ke);
    if (ke == key || *s != '=')
        return mv_err_set(err, MV_EMALFORMED,
                          "expected key = value, a [section] header or a "
                          "# comment");
    *ke = '\0';
    s = skip_ws(s + 1);
    if (*s == '"') {
        if ((st = unquote(&s, &v, err)) != MV_OK)
            return st;
        if (!at_end(s))
            return mv_err_set(err, MV_EMALFORMED, "text after the closing quote of %s", key);
    } else {
        v = s;
        for (; *s; s++)
            if ((*s == '#' || *s == ';') && is_ws(s[-1]))
                break;
        while (s > v && is_ws(s[-1]))
            s--;
        *s = '\0';
    }
    if (!ld->cs)
        return mv_err_set(err, MV_EMALFORMED,
                          "key \"%s\" outside any section; put it under a "
                          "[section] header",
                          excerpt(key, x));
    inst *in = &ld->cs->inst[ld->ci];
    if ((st = check_key(ld->c, ld->cs, in->name, key, &j, err)) != MV_OK)
        return st;
    const char *bad = parse_value(&ld->c->schema[ld->cs->keys[j]], v, &u, why);
    if (bad)
        return bad_value(err, ld->cs, in->name, key, v, bad);
    slot *sl = &in->slots[j];
    if (sl->pend) {
        char l[96];
        return mv_err_set(err, MV_EMALFORMED, "%s %s set twice (first at line %u)",
                          sec_label(ld->cs, in->name, l), key, sl->pend_line);
    }
    sl->pend = val_new(&ld->c->schema[ld->cs->keys[j]], v);
    sl->pend_line = ld->line;
    return MV_OK;
}

/* finish - commit or drop what the load staged */
static void finish(mv_cfg *c, int ok)
{
    for (size_t i = 0; i < c->nsecs; i++) {
        sec *s = &c->secs[i];
        for (size_t k = 0; k < s->ninst; k++) {
            inst *in = &s->inst[k];
            in->hdr_line = 0;
            if (!ok && k >= s->committed) {
                inst_free(in, s->nkeys);
                continue;
            }
            for (size_t j = 0; j < s->nkeys; j++) {
                slot *sl = &in->slots[j];
                if (ok && sl->pend) {
                    val_free(sl->file);
                    sl->file = sl->pend;
                } else {
                    val_free(sl->pend);
                }
                sl->pend = NULL;
            }
        }
        if (!ok) {
            s->ninst = s->committed;
            sync_names(s);
        }
    }
}

static mv_status load(mv_cfg *c, const char *text, size_t len, const char *fname, mv_err *err)
{
    char line[MV_CFG_MAX_LINE + 1];
    loader ld = {c, NULL, 0, 0};
    mv_status st = MV_OK;
    const char *end = text + len;
    if (!fname)
        fname = "config";
    for (size_t i = 0; i < c->nsecs; i++)
        c->secs[i].committed = c->secs[i].ninst;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        text += 3;
    while (text < end && st == MV_OK) {
        const char *nl = memchr(text, '\n', (size_t)(end - text));
        size_t n = nl ? (size_t)(nl - text) : (size_t)(end - text);
        ld.line++;
        if (n > MV_CFG_MAX_LINE + 1 || (n == MV_CFG_MAX_LINE + 1 && text[n - 1] != '\r')) {
            st = mv_err_set(err, MV_ELIMIT, "line longer than %d bytes", MV_CFG_MAX_LINE);
            break;
        }
        memcpy(line, text, n);
        if (n && line[n - 1] == '\r')
            n--;
        line[n] = '\0';
        if (memchr(line, '\0', n))
            st = mv_err_set(err, MV_EMALFORMED, "NUL byte (not a text file?)");
        else
            st = parse_line(&ld, line, err);
        text = nl ? nl + 1 : end;
    }
    if (st != MV_OK)
        mv_err_prefix(err, "%s:%u: ", fname, ld.line);
    finish(c, st == MV_OK);
    return st;
}

mv_status mv_cfg_load_string(mv_cfg *c, const char *text, const char *name_for_errors, mv_err *err)
{
    mv_assert(text);
    size_t len = strnlen(text, MV_CFG_MAX_FILE + 1);
    if (len > MV_CFG_MAX_FILE)
        return mv_err_set(err, MV_ELIMIT, "%s: larger than %d bytes",
                          name_for_errors ? name_for_errors : "config", MV_CFG_MAX_FILE);
    return load(c, text, len, name_for_errors, err);
}

mv_status mv_cfg_load_file(mv_cfg *c, const char *path, mv_err *err)
{
    mv_buf b = MV_BUF_INIT;
    mv_status st = mv_read_file(path, MV_CFG_MAX_FILE, &b, err);
    if (st == MV_OK)
        st = load(c, b.data ? (const char *)b.data : "", b.len, path, err);
    mv_buf_free(&b);
    return st;
}

mv_status mv_cfg_set(mv_cfg *c, const char *section, const char *name, const char *key,
                     const char *value, mv_err *err)
{
    sec *s;
    long j;
    uint64_t u;
    char why[128];
    mv_status st;
    mv_assert(section && key && value);
    if ((st = check_sec(c, section, name, &s, err)) != MV_OK ||
        (name && (st = check_name(name, err)) != MV_OK) ||
        (st = check_key(c, s, name, key, &j, err)) != MV_OK)
        return st;
    const char *bad = parse_value(&c->schema[s->keys[j]], value, &u, why);
    if (bad)
        return bad_value(err, s, name, key, value, bad);
    inst *in;
    if ((st = get_inst(s, name, &in, err)) != MV_OK)
        return st;
    val_free(in->slots[j].over);
    in->slots[j].over = val_new(&c->schema[s->keys[j]], value);
    return MV_OK;
}

/* ---- construction ------------------------------------------------------- */

mv_cfg *mv_cfg_new(const mv_cfg_key *schema, size_t n)
{
    mv_cfg *c = mv_xcalloc(1, sizeof *c);
    c->schema = schema;
    c->n = n;
    c->defs = mv_xcalloc(n, sizeof *c->defs);
    c->secs = mv_xcalloc(n, sizeof *c->secs); /* at most one per key */
    for (size_t i = 0; i < n; i++) {
        const mv_cfg_key *k = &schema[i];
        size_t wl = strcspn(k->section, " ");
        int named = strcmp(k->section + wl, " *") == 0;
        char *word = mv_xstrndup(k->section, wl), why[128];
        uint64_t u;
        mv_assert(wl > 0 && (named || !k->section[wl]) && k->type <= MV_CFG_MODE);
        for (size_t p = 0; word[p]; p++)
            mv_assert(is_keych(word[p]));
        for (size_t p = 0; k->key[p]; p++)
            mv_assert(is_keych(k->key[p]));
        mv_assert(k->key[0] && (!k->max || k->min <= k->max) && wl <= 64 && strlen(k->key) <= 64);
        mv_assert(!k->help || (strlen(k->help) <= 1024 && !k->help[strcspn(k->help, "\r\n")]));
        sec *s = find_sec(c, word);
        if (!s) {
            s = &c->secs[c->nsecs++];
            s->word = word;
            s->named = named;
            s->keys = mv_xcalloc(n, sizeof *s->keys);
            sync_names(s);
        } else {
            free(word);
        }
        mv_assert(s->named == named && find_key(c, s, k->key) < 0);
        mv_assert(!k->def || !parse_value(k, k->def, &u, why));
        s->keys[s->nkeys++] = i;
        c->defs[i] = k->def ? val_new(k, k->def) : NULL;
    }
    for (size_t i = 0; i < c->nsecs; i++)
        if (!c->secs[i].named) {
            inst *in; /* a plain section always has its one instance */
            mv_status st = get_inst(&c->secs[i], NULL, &in, NULL);
            mv_assert(st == MV_OK);
        }
    return c;
}

void mv_cfg_free(mv_cfg *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nsecs; i++) {
        sec *s = &c->secs[i];
        for (size_t k = 0; k < s->ninst; k++)
            inst_free(&s->inst[k], s->nkeys);
        free(s->inst);
        free(s->names);
        free(s->keys);
        free(s->word);
    }
    for (size_t i = 0; i < c->n; i++)
        val_free(c->defs[i]);
    free(c->defs);
    free(c->secs);
    free(c);
}

/* ---- getters ------------------------------------------------------------ */

/* lookup - the effective value (or NULL) of a key the program must know */
static const val *lookup(const mv_cfg *c, const char *section, const char *name, const char *key,
                         const mv_cfg_key **k, int *set)
{
    mv_assert(section && key);
    const sec *s = find_sec(c, section);
    mv_assert(s && !s->named == !name);
    long j = find_key(c, s, key);
    mv_assert(j >= 0);
    *k = &c->schema[s->keys[j]];
    const inst *in = find_inst(s, name);
    const slot *sl = in ? &in->slots[j] : NULL;
    const val *v = sl ? (sl->over ? sl->over : sl->file) : NULL;
    if (set)
        *set = v != NULL;
    return v ? v : c->defs[s->keys[j]];
}

const char *mv_cfg_str(const mv_cfg *c, const char *section, const char *name, const char *key)
{
    const mv_cfg_key *k;
    const val *v = lookup(c, section, name, key, &k, NULL);
    return v ? v->text : NULL;
}

int mv_cfg_is_set(const mv_cfg *c, const char *section, const char *name, const char *key)
{
    const mv_cfg_key *k;
    int set;
    lookup(c, section, name, key, &k, &set);
    return set;
}

static uint64_t number(const mv_cfg *c, const char *section, const char *name, const char *key,
                       int want_bool)
{
    const mv_cfg_key *k;
    const val *v = lookup(c, section, name, key, &k, NULL);
    uint64_t u = 0;
    char why[128];
    mv_assert(want_bool
                  ? k->type == MV_CFG_BOOL
                  : k->type != MV_CFG_BOOL && k->type != MV_CFG_STR && k->type != MV_CFG_LIST);
    mv_assert(!v || !parse_value(k, v->text, &u, why)); /* validated on the way in */
    return u;
}

uint64_t mv_cfg_u64(const mv_cfg *c, const char *section, const char *name, const char *key)
{
    return number(c, section, name, key, 0);
}

int mv_cfg_bool(const mv_cfg *c, const char *section, const char *name, const char *key)
{
    return number(c, section, name, key, 1) != 0;
}

const char *const *mv_cfg_list(const mv_cfg *c, const char *section, const char *name,
                               const char *key, size_t *n)
{
    static const char *const none[] = {NULL};
    const mv_cfg_key *k;
    const val *v = lookup(c, section, name, key, &k, NULL);
    mv_assert(k->type == MV_CFG_LIST);
    *n = v ? v->nwords : 0;
    return v ? v->words : none;
}

const char *const *mv_cfg_instances(const mv_cfg *c, const char *section, size_t *n)
{
    const sec *s = find_sec(c, section);
    mv_assert(s && s->named);
    *n = s->ninst;
    return s->names;
}

/* ---- printing ----------------------------------------------------------- */

/* put_text - t as it must be written to load back.  Values are quoted only
 * when they must be (quoting may double the length): when empty, with outer
 * blanks, starting with '"', '#' or ';', or with '#' or ';' after a blank. */
static void put_text(FILE *f, const char *t, int in_header)
{
    size_t n = strlen(t);
    int plain = n && !is_ws(t[0]) && !is_ws(t[n - 1]) && !strchr("\"#;", t[0]);
    for (size_t i = 1; plain && i < n; i++)
        plain = !((t[i] == '#' || t[i] == ';') && is_ws(t[i - 1]));
    for (size_t i = 0; in_header && plain && i < n; i++)
        plain = is_namech(t[i]);
    if (plain) {
        fputs(t, f);
        return;
    }
    fputc('"', f);
    for (; *t; t++) {
        if (*t == '"' || *t == '\\')
            fputc('\\', f);
        fputc(*t, f);
    }
    fputc('"', f);
}

void mv_cfg_print(const mv_cfg *c, FILE *f)
{
    fputs("# mailvault effective configuration; lines marked \"# default\" or \"# unset\"\n"
          "# show values that were not set.\n",
          f);
    for (size_t i = 0; i < c->nsecs; i++) {
        const sec *s = &c->secs[i];
        if (!s->ninst)
            fprintf(f, "\n# [%s NAME]: none\n", s->word);
        for (size_t k = 0; k < s->ninst; k++) {
            const inst *in = &s->inst[k];
            fprintf(f, "\n[%s", s->word);
            if (in->name) {
                fputc(' ', f);
                put_text(f, in->name, 1);
            }
            fputs("]\n", f);
            for (size_t j = 0; j < s->nkeys; j++) {
                const mv_cfg_key *key = &c->schema[s->keys[j]];
                const slot *sl = &in->slots[j];
                const val *v = sl->over ? sl->over : sl->file;
                const val *d = c->defs[s->keys[j]];
                if (key->help)
                    fprintf(f, "# %s\n", key->help);
                fprintf(f, "%s%s = ", v ? "" : "# ", key->key);
                if (v || d)
                    put_text(f, (v ? v : d)->text, 0);
                fputs(v ? "\n" : d ? "  # default\n" : "  # unset\n", f);
            }
        }
    }
}

/* md_cell - text for a table cell: '|' escaped, nothing else special */
static void md_cell(FILE *f, const char *t)
{
    for (; t && *t; t++) {
        if (*t == '|')
            fputc('\\', f);
        fputc(*t == '\n' ? ' ' : *t, f);
    }
}

void mv_cfg_print_schema_md(const mv_cfg_key *schema, size_t n, FILE *f)
{
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t p = 0; p < i && !seen; p++)
            seen = strcmp(schema[p].section, schema[i].section) == 0;
        if (seen)
            continue;
        size_t wl = strcspn(schema[i].section, " ");
        int named = schema[i].section[wl] != '\0';
        fprintf(f, "### [%.*s%s]\n\n", (int)wl, schema[i].section, named ? " NAME" : "");
        if (named)
            fputs("May appear several times, with different names.\n\n", f);
        fputs("| Key | Type | Default | Range | Description |\n|---|---|---|---|---|\n", f);
        for (size_t j = i; j < n; j++) {
            const mv_cfg_key *k = &schema[j];
            char a[32], b[32];
            if (strcmp(k->section, schema[i].section) != 0)
                continue;
            fprintf(f, "| `%s` | %s | ", k->key, type_names[k->type]);
            if (k->def) {
                fputc('`', f);
                md_cell(f, k->def);
                fputc('`', f);
            }
            fputs(" | ", f);
            if (k->max)
                fprintf(f, "%s to %s", fmt_num(k->type, k->min, a), fmt_num(k->type, k->max, b));
            else if (k->min)
                fprintf(f, "at least %s", fmt_num(k->type, k->min, a));
            fputs(" | ", f);
            md_cell(f, k->help);
            fputs(" |\n", f);
        }
        fputc('\n', f);
    }
}
