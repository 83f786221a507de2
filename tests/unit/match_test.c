/* SPDX-License-Identifier: MIT */
/* match_test.c - queries evaluated on one message (search/match.h) agree
 * with `mailvault search` over an archive holding the messages.
 *
 * A real archive in a temporary directory: the mvsearch corpus
 * (tests/gen/mvsearch.py: every field, operator, stemming, phrases,
 * dates, sizes, wildcards, custodians, journal envelopes), mkdocs
 * families (attachments, nested mail, a signature) and a few messages
 * written here for wildcards that reach a message only through the
 * archive's vocabulary, imported with mv_import and indexed with
 * mv_index_update.  For every query and every message, mv_matcher_eval
 * given what the pipeline has (bytes, envelope, receipt time, summary,
 * flags) must say "match" exactly when mv_index_search lists the serial.
 * Then: four threads at once, errors as search gives them, custodians
 * changed after compiling, hostile bytes, and the cost per message. */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../ingest/import.h"
#include "../../ingest/journal.h"
#include "../../ingest/pipeline.h"
#include "../../lib/util.h"
#include "../../search/match.h"
#include "../../search/search.h"
#include "../../search/xap.h"
#include "../../store/store.h"

/* Queries of our own, beside mvsearch's answers.json: wildcards through
 * the vocabulary's stems, flags, holds, and combinations of fields. */
static const char *const extra_queries[] = {
    "runn*",  /* "run" only through "running" elsewhere (same stem) */
    "happi*", /* "happy" only through "happiness" elsewhere */
    "subject:runn*",
    "body:happi*",
    "\"run every day\"",
    "\"every day run\"",
    "run -happy",
    "runs OR ran",
    "is:encrypted",
    "is:undecryptable",
    "is:decrypted",
    "-is:encrypted walrus",
    "is:signed",
    "-is:signed quokkafamily",
    "is:held",
    "-is:held",
    "hold:matter-1",
    "quokkafamily",
    "attachment:quokkafamily",
    "body:quokkafamily",
    "has:attachment quokkafamily",
    "filename:pdf OR filename:docx",
    "participant:dora.quill@acme-corp.test OR custodian:Fox",
    "to:xenia.tro* OR cc:penro*",
    "from:(marchbanks OR brisk) -date:2023",
    "cc:(penrose OR ornby)",
    "bcc:corp.example -to:felix.ornby@globex.test",
    "NOT (date:2023 OR size:>100K)",
    "(walrus OR narwhal) -(pelican OR quokka) date:2020..2024",
    "size:..10K invoic*",
    "date:2024-03",
    "msgid:family-1@example.com",
    "domain:example.com",
    "\"quarterly revenue\" OR \"revenue forecast\"",
    "*",
};

/* Messages written here (extra/NN.eml). */
static const char *const extra_mail[] = {
    "From: Ann Example <ann@example.com>\r\nTo: bo@example.org\r\n"
    "Subject: running late\r\nDate: Mon, 4 Mar 2024 10:00:00 +0000\r\n"
    "Message-ID: <extra-1@example.com>\r\n\r\nWe were running the numbers, with happiness.\r\n",
    "From: Bo Example <bo@example.org>\r\nTo: ann@example.com\r\n"
    "Subject: quick note\r\nDate: Tue, 5 Mar 2024 11:00:00 +0000\r\n"
    "Message-ID: <extra-2@example.com>\r\n\r\nI run every day. A happy hippo ran by.\r\n",
    "From: Cy Example <cy@example.net>\r\nTo: ann@example.com\r\n"
    "Subject: runs\r\nDate: Wed, 6 Mar 2024 12:00:00 +0000\r\n"
    "Message-ID: <extra-3@example.com>\r\n\r\nEvery day run, then rest.\r\n",
    /* no Date header: the receipt time is the date */
    "From: Dee Example <dee@example.net>\r\nTo: ann@example.com\r\n"
    "Subject: undated\r\nMessage-ID: <extra-4@example.com>\r\n\r\nwalrus without a date\r\n",
};

#define MAX_QUERIES 512
#define MAX_MSGS 512
#define SEARCH_ROWS 100000u

static char tmpdir[256];
static mv_store *store;
static mv_matcher *matcher;

/* What the pipeline would have for each archived message. */
typedef struct tmsg {
    uint64_t serial;
    mv_message *m;
    mv_buf bytes;
    char **env;
    size_t n_env;
    unsigned flags;
    mv_extract *x; /* the stored extraction, for the msg->x path */
} tmsg;

static tmsg msgs[MAX_MSGS];
static size_t n_msgs;

static char *queries[MAX_QUERIES];
static size_t n_queries;
static mv_status search_st[MAX_QUERIES];
static uint8_t *expect;                  /* [query][message]: the search lists it */
static mv_mquery *compiled[MAX_QUERIES]; /* NULL where search failed */

static char *path(const char *name)
{
    return mv_xasprintf("%s/%s", tmpdir, name);
}

static int run(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "match_test: '%s' exited %d\n", cmd, rc);
    return rc;
}

static char *root_file(const char *rel)
{
    const char *r = getenv("MV_ROOT");
    char *p = mv_xasprintf("%s/%s", r && *r ? r : ".", rel);
    if (access(p, R_OK) != 0) {
        fprintf(stderr, "match_test: %s not found (run from the source tree or set MV_ROOT)\n", p);
        free(p);
        return NULL;
    }
    return p;
}

static void write_text(const char *p, const char *s)
{
    FILE *f = fopen(p, "wb");
    mv_assert(f);
    mv_assert(fwrite(s, 1, strlen(s), f) == strlen(s));
    mv_assert(fclose(f) == 0);
}

/* Turns the generator's JSON and CSV into lines C reads easily. */
static const char convert_py[] =
    "import csv, json, sys\n"
    "d = sys.argv[1]\n"
    "a = json.load(open(d + '/corpus/answers.json', encoding='utf-8'))\n"
    "with open(d + '/queries.txt', 'w', encoding='utf-8') as f:\n"
    "    for q in a['queries'] + a['errors']:\n"
    "        f.write(q['q'] + '\\n')\n"
    "with open(d + '/custodians.txt', 'w', encoding='utf-8') as f:\n"
    "    rows = [(c['name'], c['addresses'], c.get('aliases', []), '')\n"
    "            for c in json.load(open(d + '/corpus/custodians.json', encoding='utf-8'))]\n"
    "    for r in csv.DictReader(open(d + '/corpus/custodians.csv', newline='', "
    "encoding='utf-8')):\n"
    "        rows.append((r['name'], r['addresses'].split(';'),\n"
    "                     [x for x in r['aliases'].split(';') if x], r['department']))\n"
    "    for n, ad, al, dep in rows:\n"
    "        f.write('\\t'.join([n, ';'.join(x.strip().lower() for x in ad if x.strip()),\n"
    "                           ';'.join(al), dep]) + '\\n')\n";

static char **split(char *s, char sep, size_t *n)
{
    char **v = mv_xcalloc(strlen(s) + 2, sizeof *v);
    *n = 0;
    if (!*s)
        return v;
    for (char *p = s;;) {
        v[(*n)++] = p;
        char *e = strchr(p, sep);
        if (!e)
            break;
        *e = 0;
        p = e + 1;
    }
    return v;
}

static void load_custodians(const char *file)
{
    mv_buf b = MV_BUF_INIT;
    mv_err err;
    assert_int_equal(mv_read_file(file, 1 << 20, &b, &err), MV_OK);
    mv_buf_append_byte(&b, 0);
    size_t nl;
    char **lines = split((char *)b.data, '\n', &nl);
    for (size_t i = 0; i < nl; i++) {
        if (!*lines[i])
            continue;
        size_t nf;
        char **f = split(lines[i], '\t', &nf);
        assert_int_equal(nf, 4);
        mv_custodian c = {0};
        c.name = f[0];
        c.department = f[3];
        c.addresses = split(f[1], ';', &c.n_addresses);
        c.aliases = split(f[2], ';', &c.n_aliases);
        assert_int_equal(mv_store_custodian_put(store, &c, &err), MV_OK);
        free(c.addresses);
        free(c.aliases);
        free(f);
    }
    free(lines);
    mv_buf_free(&b);
}

static void load_queries(const char *file)
{
    mv_buf b = MV_BUF_INIT;
    mv_err err;
    assert_int_equal(mv_read_file(file, 1 << 20, &b, &err), MV_OK);
    mv_buf_append_byte(&b, 0);
    size_t nl;
    char **lines = split((char *)b.data, '\n', &nl);
    for (size_t i = 0; i < nl; i++)
        if (*lines[i] && n_queries < MAX_QUERIES)
            queries[n_queries++] = mv_xstrdup(lines[i]);
    for (size_t i = 0; i < sizeof extra_queries / sizeof *extra_queries; i++)
        if (n_queries < MAX_QUERIES)
            queries[n_queries++] = mv_xstrdup(extra_queries[i]);
    free(lines);
    mv_buf_free(&b);
}

static mv_status collect(void *ctx, const uint8_t *p, size_t n, mv_err *err)
{
    (void)err;
    mv_buf_append(ctx, p, n);
    return MV_OK;
}

/* load_message - what the pipeline had: index.c make_doc reads the same
 * records (flags from the decryption record, envelopes of every copy). */
static void load_message(tmsg *t, uint64_t serial)
{
    mv_err err;
    t->serial = serial;
    assert_int_equal(mv_store_message(store, serial, &t->m, &err), MV_OK);
    mv_decryption *d = NULL;
    mv_status st = mv_store_decryption(store, serial, &d, &err);
    if (st == MV_OK) {
        int encrypted = d->decrypted || (d->scheme && *d->scheme) || (d->failure && *d->failure);
        if (encrypted)
            t->flags |= MV_XD_ENCRYPTED | (d->decrypted ? MV_XD_DECRYPTED : MV_XD_UNDECRYPTABLE);
        if (d->sig)
            t->flags |= MV_XD_SIGNED;
    } else {
        assert_int_equal(st, MV_ENOTFOUND);
    }
    if (d && d->decrypted)
        assert_int_equal(mv_store_read_decrypted(store, serial, collect, &t->bytes, &err), MV_OK);
    else
        assert_int_equal(mv_store_read(store, serial, 0, collect, &t->bytes, &err), MV_OK);
    mv_decryption_free(d);
    mv_copy **cs = NULL;
    size_t nc = 0;
    assert_int_equal(mv_store_copies(store, serial, &cs, &nc, &err), MV_OK);
    size_t cap = 0;
    for (size_t i = 0; i < nc; i++)
        for (size_t k = 0; k < cs[i]->n_rcpt; k++) {
            if (t->n_env == cap)
                t->env = mv_xrealloc(t->env, (cap = cap ? cap * 2 : 8) * sizeof *t->env);
            t->env[t->n_env++] = mv_xstrdup(cs[i]->rcpt[k]);
        }
    mv_copies_free(cs, nc);
    mv_buf text = MV_BUF_INIT;
    if (mv_store_text(store, serial, &text, NULL) == MV_OK)
        assert_int_equal(mv_extract_decode(text.data, text.len, &t->x, &err), MV_OK);
    mv_buf_wipe(&text);
}

/* pipeline_msg - the matcher's view of message i.  Every third message
 * brings its extraction; odd ones come without the summary (the
 * extraction's date then). */
static mv_match_msg pipeline_msg(const tmsg *t, size_t i)
{
    mv_match_msg mm = {0};
    mm.bytes = t->bytes.data;
    mm.n = t->bytes.len;
    mm.env = (const char *const *)t->env;
    mm.n_env = t->n_env;
    mm.received = t->m->received_us / 1000000;
    mm.flags = t->flags;
    mm.x = i % 3 == 2 ? t->x : NULL;
    mm.meta = i % 2 ? NULL : &t->m->meta;
    mm.size = t->m->size;
    return mm;
}

/* journal_arrivals - the corpus's journal reports as a journal listener
 * hands them over (ingest/server.c): the original is the message, the
 * report's recipients (Bcc ones too) its envelope. */
static int journal_arrivals(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    mv_err err;
    mv_pipeline *pl = NULL;
    mv_pipeline_opts po = {.workers = 2};
    if (mv_pipeline_start(store, &po, &pl, &err))
        return -1;
    struct dirent *de;
    int rc = 0, n = 0;
    while (!rc && (de = readdir(d))) {
        if (!strstr(de->d_name, ".eml"))
            continue;
        char *p = mv_xasprintf("%s/%s", dir, de->d_name);
        mv_buf b = MV_BUF_INIT;
        mv_journal jr;
        if (mv_read_file(p, 64 << 20, &b, &err) ||
            mv_journal_parse(b.data, b.len, NULL, &jr, &err) || !jr.inner) {
            free(p);
            rc = -1;
            break;
        }
        char **rcpt = mv_xcalloc(jr.n_rcpt + 1, sizeof *rcpt);
        for (size_t i = 0; i < jr.n_rcpt; i++)
            rcpt[i] = mv_env_rcpt_format(&jr.rcpt[i]);
        mv_spool_item it = {0};
        it.arr.received_us = mv_now_us();
        it.arr.source = "smtp";
        it.arr.origin = "journal";
        it.arr.mail_from = jr.sender;
        it.arr.rcpt = rcpt;
        it.arr.n_rcpt = jr.n_rcpt;
        it.data = jr.inner;
        it.len = jr.inner_len;
        it.raw = b.data;
        it.raw_len = b.len;
        if (mv_spool_add(store, &it, 1, &err) || mv_pipeline_submit(pl, &it, &err))
            rc = -1;
        n++;
        for (size_t i = 0; i < jr.n_rcpt; i++)
            free(rcpt[i]);
        free(rcpt);
        mv_journal_free(&jr);
        mv_buf_free(&b);
        free(p);
    }
    closedir(d);
    mv_pipeline_stats ps;
    if (mv_pipeline_finish(pl, &ps, &err) || ps.failed)
        rc = -1;
    if (rc)
        fprintf(stderr, "match_test: journal arrivals: %s\n", err.msg);
    return rc ? rc : n > 0 ? 0 : -1;
}

static int build_archive(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/mvmatch.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    if (system("command -v python3 >/dev/null 2>&1") != 0) {
        fprintf(stderr, "match_test: python3 is needed to generate the corpus\n");
        return -1;
    }
    char *gen = root_file("tests/gen/mvsearch.py"), *docs = root_file("tests/gen/mkdocs.py");
    if (!gen || !docs)
        return -1;
    char *conv = path("convert.py");
    write_text(conv, convert_py);
    char *cmd = mv_xasprintf("python3 -B '%s' --out '%s/corpus' --count 150 >/dev/null 2>&1 && "
                             "python3 -B '%s' --families '%s/families' >/dev/null 2>&1 && "
                             "python3 -B '%s' '%s'",
                             gen, tmpdir, docs, tmpdir, conv, tmpdir);
    int rc = run(cmd);
    free(cmd);
    free(gen);
    free(docs);
    free(conv);
    if (rc)
        return -1;
    char *extra = path("extra");
    mv_assert(mkdir(extra, 0700) == 0);
    for (size_t i = 0; i < sizeof extra_mail / sizeof *extra_mail; i++) {
        char *p = mv_xasprintf("%s/%02zu.eml", extra, i + 1);
        write_text(p, extra_mail[i]);
        free(p);
    }

    /* The archive: a key file, the messages, custodians, the index. */
    char *kf = path("key"), *dir = path("archive");
    uint8_t kb[32];
    memset(kb, 0x5a, sizeof kb);
    mv_err err;
    mv_keysrc src = {kf, NULL};
    if (mv_write_file_atomic(kf, kb, sizeof kb, 0600, &err) ||
        mv_store_create(dir, &src, NULL, &err) || mv_store_open(dir, &src, &store, &err)) {
        fprintf(stderr, "match_test: archive: %s\n", err.msg);
        return -1;
    }
    char *paths[] = {path("corpus/mail"), path("families"), extra};
    mv_import_opts io = {.workers = 2, .quiet = 1};
    mv_import_result ir;
    if (mv_import(store, paths, 3, &io, &ir, &err) || ir.failed) {
        fprintf(stderr, "match_test: import: %s (%llu failed)\n", err.msg,
                (unsigned long long)ir.failed);
        return -1;
    }
    for (size_t i = 0; i < 3; i++)
        free(paths[i]);
    char *jdir = path("corpus/journal");
    int jrc = journal_arrivals(jdir);
    free(jdir);
    if (jrc)
        return -1;
    char *ctxt = path("custodians.txt"), *qtxt = path("queries.txt");
    load_custodians(ctxt);
    load_queries(qtxt);
    free(ctxt);
    free(qtxt);

    /* One message arrived encrypted and could not be opened. */
    uint64_t last = mv_store_last_serial(store);
    mv_decryption d = {0};
    d.scheme = "smime";
    d.failure = "no escrow key for the recipient";
    if (mv_store_add_decryption(store, 7, &d, NULL, 0, &err)) {
        fprintf(stderr, "match_test: decryption record: %s\n", err.msg);
        return -1;
    }

    mv_index *ix = NULL;
    mv_index_opts xo = {.writable = 1, .threads = 2};
    if (mv_index_open(store, &xo, &ix, &err) || mv_index_update(ix, NULL, NULL, NULL, &err)) {
        fprintf(stderr, "match_test: index: %s\n", err.msg);
        return -1;
    }
    mv_index_close(ix);

    mv_assert(last > 150 && last <= MAX_MSGS);
    for (uint64_t s = 1; s <= last; s++)
        load_message(&msgs[n_msgs++], s);

    /* What search says, query by query. */
    mv_index_opts ro = {0};
    if (mv_index_open(store, &ro, &ix, &err))
        return -1;
    expect = mv_xcalloc(n_queries * n_msgs, 1);
    for (size_t i = 0; i < n_queries; i++) {
        mv_search_opts so = {.limit = SEARCH_ROWS};
        mv_search_result r;
        search_st[i] = mv_index_search(ix, queries[i], &so, &r, &err);
        if (search_st[i])
            continue;
        mv_assert(r.total == r.n);
        for (size_t k = 0; k < r.n; k++) {
            mv_assert(r.rows[k].serial >= 1 && r.rows[k].serial <= n_msgs);
            expect[i * n_msgs + r.rows[k].serial - 1] = 1;
        }
        mv_search_result_free(&r);
    }
    mv_index_close(ix);
    if (mv_matcher_new(store, NULL, &matcher, &err))
        return -1;
    free(kf);
    free(dir);
    return 0;
}

/* group_setup - the archive and search's answers; a failure leaves no
 * temporary directory behind (cmocka skips the teardown then). */
static int group_setup(void **state)
{
    (void)state;
    if (build_archive() == 0)
        return 0;
    char *cmd = mv_xasprintf("rm -rf '%s'", tmpdir);
    if (tmpdir[0] && system(cmd) != 0)
        fprintf(stderr, "match_test: could not remove %s\n", tmpdir);
    free(cmd);
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_queries; i++) {
        mv_mquery_free(compiled[i]);
        free(queries[i]);
    }
    for (size_t i = 0; i < n_msgs; i++) {
        mv_message_free(msgs[i].m);
        mv_buf_wipe(&msgs[i].bytes);
        for (size_t k = 0; k < msgs[i].n_env; k++)
            free(msgs[i].env[k]);
        free(msgs[i].env);
        mv_extract_free(msgs[i].x);
    }
    free(expect);
    mv_matcher_free(matcher);
    mv_store_close(store);
    char *cmd = mv_xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

/* ---- the same answers as search ------------------------------------------- */

/* compile_all - every query compiles exactly when search accepts it, with
 * search's status when it does not. */
static void test_compile_like_search(void **state)
{
    (void)state;
    size_t failing = 0;
    for (size_t i = 0; i < n_queries; i++) {
        mv_err err = {0};
        mv_status st = mv_matcher_compile(matcher, queries[i], &compiled[i], &err);
        if (st != search_st[i])
            fprintf(stderr, "query '%s': compile %s (%s), search %s\n", queries[i],
                    mv_status_str(st), err.msg, mv_status_str(search_st[i]));
        assert_int_equal(st, search_st[i]);
        if (st) {
            assert_null(compiled[i]);
            failing++;
        } else {
            assert_string_equal(mv_mquery_text(compiled[i]), queries[i]);
        }
    }
    /* answers.json's error cases: a parse error, a limit, a custodian */
    assert_true(failing >= 7);
    assert_true(n_queries - failing >= 180);
}

/* eval_all - the hit matrix of every compiled query over messages from,
 * from + step, ...: all queries in one call per message.  Returns the
 * number of failed evaluations (no cmocka assertion: threads call it). */
static size_t eval_all(uint8_t *got, size_t from, size_t step)
{
    const mv_mquery *q[MAX_QUERIES];
    size_t map[MAX_QUERIES], nq = 0, bad = 0;
    for (size_t i = 0; i < n_queries; i++)
        if (compiled[i]) {
            map[nq] = i;
            q[nq++] = compiled[i];
        }
    int *hits = mv_xcalloc(nq, sizeof *hits);
    for (size_t k = from; k < n_msgs; k += step) {
        mv_match_msg mm = pipeline_msg(&msgs[k], k);
        mv_err err = {0};
        mv_status st = mv_matcher_eval(matcher, q, nq, &mm, hits, &err);
        if (st) {
            fprintf(stderr, "serial %llu: %s\n", (unsigned long long)msgs[k].serial, err.msg);
            bad++;
        }
        for (size_t j = 0; j < nq; j++) {
            if (hits[j] != 0 && hits[j] != 1)
                bad++;
            got[map[j] * n_msgs + k] = (uint8_t)hits[j];
        }
    }
    free(hits);
    return bad;
}

static void test_same_as_search(void **state)
{
    (void)state;
    uint8_t *got = mv_xcalloc(n_queries * n_msgs, 1);
    assert_int_equal(eval_all(got, 0, 1), 0);
    size_t diff = 0, matches = 0, nonempty = 0;
    for (size_t i = 0; i < n_queries; i++) {
        if (!compiled[i])
            continue;
        size_t here = 0;
        for (size_t k = 0; k < n_msgs; k++) {
            uint8_t e = expect[i * n_msgs + k], g = got[i * n_msgs + k];
            here += e;
            if (e != g && diff++ < 20)
                fprintf(stderr, "query '%s' serial %llu: search %d, matcher %d\n", queries[i],
                        (unsigned long long)msgs[k].serial, e, g);
        }
        matches += here;
        nonempty += here > 0;
    }
    fprintf(stderr, "match_test: %zu queries x %zu messages, %zu matches (%zu queries find some)\n",
            n_queries, n_msgs, matches, nonempty);
    assert_int_equal(diff, 0);
    assert_true(nonempty > 150);
    free(got);
}

/* The cases the brief names, checked by name (the matrix above already
 * compares them; this makes sure the corpus really exercises them). */
static size_t query_index(const char *q)
{
    for (size_t i = 0; i < n_queries; i++)
        if (strcmp(queries[i], q) == 0)
            return i;
    fail_msg("query %s not in the list", q);
    return 0;
}

static size_t expected_count(const char *q)
{
    size_t i = query_index(q), c = 0;
    for (size_t k = 0; k < n_msgs; k++)
        c += expect[i * n_msgs + k];
    return c;
}

static size_t find_msgid(const char *id)
{
    for (size_t k = 0; k < n_msgs; k++)
        if (msgs[k].m->meta.message_id && strcmp(msgs[k].m->meta.message_id, id) == 0)
            return k;
    fail_msg("no message %s in the archive", id);
    return 0;
}

static void test_cases_exercised(void **state)
{
    (void)state;
    static const char *const some[] = {
        "invoices",
        "invoic*",
        "\"quarterly revenue forecast\"",
        "walrus NOT narwhal",
        "walrus OR narwhal",
        "date:2023-07-01..2023-07-14",
        "to:xenia.tro*",
        "bcc:ingrid.solberg",
        "custodian:Fox",
        "runn*",
        "happi*",
        "is:undecryptable",
        "is:signed",
        "has:attachment quokkafamily",
        "size:>100K",
        "filename:zeppelin",
        "msgid:family-1@example.com",
    };
    for (size_t i = 0; i < sizeof some / sizeof *some; i++)
        if (expected_count(some[i]) == 0)
            fail_msg("search finds nothing for '%s': the case is not exercised", some[i]);
    /* Stems reached only through the vocabulary: extra-2 and extra-3 say
     * "run" and extra-2 "happy", which runn* and happi* find because
     * extra-1 says "running" and "happiness" (same stems). */
    assert_int_equal(expected_count("runn*"), 3);
    assert_int_equal(expected_count("happi*"), 2);
    size_t runn = query_index("runn*"), happi = query_index("happi*");
    assert_true(expect[runn * n_msgs + find_msgid("extra-2@example.com")]);
    assert_true(expect[runn * n_msgs + find_msgid("extra-3@example.com")]);
    assert_true(expect[happi * n_msgs + find_msgid("extra-2@example.com")]);
    assert_int_equal(expected_count("is:held"), 0);
    assert_int_equal(expected_count("*"), n_msgs);
}

/* ---- threads ------------------------------------------------------------------ */

typedef struct tjob {
    uint8_t *got;
    size_t from, bad;
} tjob;

static void *thread_main(void *arg)
{
    tjob *j = arg;
    /* from a different message in each thread, then every message */
    j->bad = eval_all(j->got, j->from, 1) + eval_all(j->got, 0, 1);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    enum { NT = 4 };
    pthread_t th[NT];
    tjob jobs[NT];
    mv_matcher_refresh(matcher); /* the threads race to read the store again */
    for (size_t t = 0; t < NT; t++) {
        jobs[t].got = mv_xcalloc(n_queries * n_msgs, 1);
        jobs[t].from = t * (n_msgs / NT);
        assert_int_equal(pthread_create(&th[t], NULL, thread_main, &jobs[t]), 0);
    }
    for (size_t t = 0; t < NT; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(jobs[t].bad, 0);
        for (size_t i = 0; i < n_queries; i++)
            if (compiled[i])
                assert_memory_equal(jobs[t].got + i * n_msgs, expect + i * n_msgs, n_msgs);
        free(jobs[t].got);
    }
}

/* ---- errors ---------------------------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    mv_err err;
    mv_mquery *q = (mv_mquery *)1;
    assert_int_equal(mv_matcher_compile(matcher, "walrus \"unterminated", &q, &err), MV_EMALFORMED);
    assert_null(q);
    assert_non_null(strstr(err.msg, "column 8"));
    assert_int_equal(mv_matcher_compile(matcher, "frm:dora", &q, &err), MV_EMALFORMED);
    assert_non_null(strstr(err.msg, "did you mean 'from'"));
    assert_int_equal(mv_matcher_compile(matcher, "qu*", &q, &err), MV_EMALFORMED);
    assert_int_equal(mv_matcher_compile(matcher, "flumox*", &q, &err), MV_ELIMIT);
    assert_non_null(strstr(err.msg, "more letters"));
    assert_int_equal(mv_matcher_compile(matcher, "custodian:nobody-such", &q, &err), MV_ENOTFOUND);
    assert_non_null(strstr(err.msg, "nobody-such"));
    assert_int_equal(mv_matcher_compile(matcher, "domain:exam*", &q, &err), MV_EMALFORMED);
    assert_int_equal(mv_matcher_compile(matcher, "", &q, &err), MV_EMALFORMED);
    assert_int_equal(mv_matcher_compile(NULL, "walrus", &q, &err), MV_EUSAGE);
    assert_int_equal(mv_matcher_compile(matcher, NULL, &q, &err), MV_EUSAGE);

    /* arguments */
    assert_int_equal(mv_matcher_compile(matcher, "walrus", &q, &err), MV_OK);
    const mv_mquery *qs[2] = {q, NULL};
    int hits[2] = {7, 7};
    mv_match_msg mm = pipeline_msg(&msgs[0], 0);
    assert_int_equal(mv_matcher_eval(matcher, qs, 2, &mm, hits, &err), MV_EUSAGE);
    assert_int_equal(mv_matcher_eval(matcher, qs, 1, NULL, hits, &err), MV_EUSAGE);
    assert_int_equal(mv_matcher_eval(matcher, qs, 1, &mm, NULL, &err), MV_EUSAGE);
    assert_int_equal(hits[0], 7);
    assert_int_equal(mv_matcher_eval(matcher, qs, 0, &mm, hits, &err), MV_OK);
    mv_mquery_free(q);
    mv_matcher *bad = NULL;
    mv_matcher_opts o = {.language = "klingon"};
    assert_int_equal(mv_matcher_new(store, &o, &bad, &err), MV_EUSAGE);
    assert_null(bad);
    mv_matcher_free(NULL);
    mv_mquery_free(NULL);
}

/* A custodian changed after the rule was compiled: seen after the refresh
 * time or mv_matcher_refresh; removed: that query cannot be evaluated (as
 * search would fail), the others still are. */
static void test_custodian_changes(void **state)
{
    (void)state;
    mv_err err;
    mv_custodian c = {0};
    char *addrs[] = {"ann@example.com"};
    c.name = "Temp Person";
    c.addresses = addrs;
    c.n_addresses = 1;
    assert_int_equal(mv_store_custodian_put(store, &c, &err), MV_OK);
    mv_mquery *q = NULL, *w = NULL;
    assert_int_equal(mv_matcher_compile(matcher, "custodian:\"temp person\"", &q, &err), MV_OK);
    assert_int_equal(mv_matcher_compile(matcher, "walrus", &w, &err), MV_OK);
    /* extra/04.eml: to ann@example.com, says walrus */
    size_t k = find_msgid("extra-4@example.com");
    mv_match_msg mm = pipeline_msg(&msgs[k], k);
    const mv_mquery *qs[2] = {q, w};
    int hits[2];
    assert_int_equal(mv_matcher_eval(matcher, qs, 2, &mm, hits, &err), MV_OK);
    assert_int_equal(hits[0], 1);
    assert_int_equal(hits[1], 1);

    char *other[] = {"nobody@example.com"};
    c.addresses = other;
    assert_int_equal(mv_store_custodian_put(store, &c, &err), MV_OK);
    assert_int_equal(mv_matcher_eval(matcher, qs, 2, &mm, hits, &err), MV_OK);
    assert_int_equal(hits[0], 1); /* within the refresh time: as compiled */
    mv_matcher_refresh(matcher);
    assert_int_equal(mv_matcher_eval(matcher, qs, 2, &mm, hits, &err), MV_OK);
    assert_int_equal(hits[0], 0);

    assert_int_equal(mv_store_custodian_remove(store, "Temp Person", &err), MV_OK);
    mv_matcher_refresh(matcher);
    assert_int_equal(mv_matcher_eval(matcher, qs, 2, &mm, hits, &err), MV_ENOTFOUND);
    assert_int_equal(hits[0], -1);
    assert_int_equal(hits[1], 1);
    assert_non_null(strstr(err.msg, "query 1 of 2"));
    assert_non_null(strstr(err.msg, "temp person"));
    mv_mquery_free(q);
    mv_mquery_free(w);
}

/* Wildcards see this message's own words, before any index has them. */
static void test_new_words(void **state)
{
    (void)state;
    mv_err err;
    mv_mquery *q = NULL, *a = NULL, *n = NULL;
    assert_int_equal(mv_matcher_compile(matcher, "zorblax*", &q, &err), MV_OK);
    assert_int_equal(mv_matcher_compile(matcher, "to:zorbla*", &a, &err), MV_OK);
    assert_int_equal(mv_matcher_compile(matcher, "-zorblax*", &n, &err), MV_OK);
    static const char mail[] = "From: a@example.com\r\nTo: zorblaxia@example.com\r\n"
                               "Subject: new\r\n\r\nThe zorblaxes arrived.\r\n";
    mv_match_msg mm = {.bytes = (const uint8_t *)mail, .n = sizeof mail - 1, .received = 1};
    const mv_mquery *qs[3] = {q, a, n};
    int hits[3];
    assert_int_equal(mv_matcher_eval(matcher, qs, 3, &mm, hits, &err), MV_OK);
    assert_int_equal(hits[0], 1);
    assert_int_equal(hits[1], 1);
    assert_int_equal(hits[2], 0);
    mv_mquery_free(q);
    mv_mquery_free(a);
    mv_mquery_free(n);
}

/* Envelope, date, size and flags as the pipeline gives them. */
static void test_pipeline_fields(void **state)
{
    (void)state;
    static const char *const qt[] = {
        "bcc:hidden@corp.example",
        "bcc:corp.example",
        "date:2001-02-03",
        "date:2024",
        "size:1000000",
        "is:decrypted",
        "is:held",
        "hold:\"Smith v. Jones\"",
    };
    enum { NQ = sizeof qt / sizeof *qt };
    mv_mquery *q[NQ];
    mv_err err;
    for (size_t i = 0; i < NQ; i++)
        assert_int_equal(mv_matcher_compile(matcher, qt[i], &q[i], &err), MV_OK);
    static const char mail[] = "From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n";
    const char *env[] = {"Hidden Person <Hidden@Corp.Example>"};
    const char *holds[] = {"Smith v. Jones"};
    mv_match_msg mm = {.bytes = (const uint8_t *)mail,
                       .n = sizeof mail - 1,
                       .env = env,
                       .n_env = 1,
                       .received = 981158400 + 3600, /* 2001-02-03 01:00 UTC */
                       .flags = MV_XD_ENCRYPTED | MV_XD_DECRYPTED,
                       .size = 1000000,
                       .holds = holds,
                       .n_holds = 1};
    int hits[NQ];
    assert_int_equal(mv_matcher_eval(matcher, (const mv_mquery *const *)q, NQ, &mm, hits, &err),
                     MV_OK);
    static const int want[NQ] = {1, 1, 1, 0, 1, 1, 1, 1};
    assert_memory_equal(hits, want, sizeof want);
    for (size_t i = 0; i < NQ; i++)
        mv_mquery_free(q[i]);
}

/* ---- hostile input ------------------------------------------------------------------ */

static void test_hostile(void **state)
{
    (void)state;
    mv_err err;
    mv_mquery *q = NULL, *all = NULL;
    assert_int_equal(mv_matcher_compile(matcher, "walrus OR from:a*b OR aaa*", &q, &err),
                     MV_EMALFORMED);
    assert_int_equal(mv_matcher_compile(matcher, "walrus OR aaa*", &q, &err), MV_OK);
    assert_int_equal(mv_matcher_compile(matcher, "*", &all, &err), MV_OK);
    const mv_mquery *qs[2] = {q, all};
    int hits[2];
    uint8_t junk[4096];
    uint32_t r = 12345;
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < sizeof junk; i++) {
            r = r * 1103515245u + 12345u;
            junk[i] = (uint8_t)(r >> 16);
        }
        if (round % 2) /* something that looks like headers first */
            memcpy(junk, "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n", 48);
        mv_match_msg mm = {.bytes = junk, .n = sizeof junk};
        assert_int_equal(mv_matcher_eval(matcher, qs, 2, &mm, hits, &err), MV_OK);
        assert_int_equal(hits[1], 1);
    }
    mv_match_msg empty = {0};
    assert_int_equal(mv_matcher_eval(matcher, qs, 2, &empty, hits, &err), MV_OK);
    assert_int_equal(hits[0], 0);
    assert_int_equal(hits[1], 1);
    /* deep nesting: bounded by the extractor's limits */
    mv_buf deep = MV_BUF_INIT;
    for (int i = 0; i < 2000; i++)
        mv_buf_printf(&deep, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    mv_buf_append_str(&deep, "\r\nwalrus\r\n");
    mv_match_msg mm = {.bytes = deep.data, .n = deep.len};
    assert_int_equal(mv_matcher_eval(matcher, qs, 2, &mm, hits, &err), MV_OK);
    assert_int_equal(hits[1], 1);
    mv_buf_free(&deep);
    mv_mquery_free(q);
    mv_mquery_free(all);
}

/* ---- cost ---------------------------------------------------------------------------- */

static void test_cost(void **state)
{
    (void)state;
    /* a ~5 KB message: headers, a body of words, a small attachment */
    mv_buf b = MV_BUF_INIT;
    mv_buf_append_str(&b, "From: Dora Quill <dora.quill@acme-corp.test>\r\n"
                          "To: Felix Ornby <felix.ornby@globex.test>, ann@example.com\r\n"
                          "Cc: gilda.penrose@initech.test\r\n"
                          "Subject: Re: quarterly revenue forecast and the invoices\r\n"
                          "Date: Fri, 14 Jul 2023 09:30:00 +0200\r\n"
                          "Message-ID: <cost-1@acme-corp.test>\r\nMIME-Version: 1.0\r\n"
                          "Content-Type: multipart/mixed; boundary=\"bb\"\r\n\r\n--bb\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\n\r\n");
    static const char *const words[] = {"the",     "budget",   "meeting",  "walrus",  "numbers",
                                        "review",  "schedule", "team",     "project", "update",
                                        "invoice", "customer", "contract", "signed",  "report"};
    uint32_t r = 7;
    while (b.len < 4300) {
        r = r * 1103515245u + 12345u;
        mv_buf_append_str(&b, words[(r >> 16) % (sizeof words / sizeof *words)]);
        mv_buf_append_str(&b, (r >> 8) % 13 == 0 ? ".\r\n" : " ");
    }
    mv_buf_append_str(&b, "\r\n--bb\r\nContent-Type: text/plain; name=\"notes.txt\"\r\n"
                          "Content-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n"
                          "Attached notes about the quarterly revenue forecast.\r\n");
    while (b.len < 5100)
        mv_buf_append_str(&b, "More notes for the review. ");
    mv_buf_append_str(&b, "\r\n--bb--\r\n");
    static const char *const qt[] = {
        "invoic* OR \"quarterly revenue forecast\"",
        "from:acme-corp.test date:2023 -is:encrypted",
        "custodian:\"Dora Marchbanks\" has:attachment",
    };
    mv_mquery *q[3];
    mv_err err;
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(mv_matcher_compile(matcher, qt[i], &q[i], &err), MV_OK);
    const char *env[] = {"archive@corp.example"};
    mv_match_msg mm = {.bytes = b.data, .n = b.len, .env = env, .n_env = 1, .received = 1689319800};
    int hits[3];
    const int rounds = 1000;
    for (int i = 0; i < 50; i++) /* warm: caches, stemmer, GMime */
        assert_int_equal(mv_matcher_eval(matcher, (const mv_mquery *const *)q, 3, &mm, hits, &err),
                         MV_OK);
    assert_int_equal(hits[0], 1);
    assert_int_equal(hits[1], 1);
    assert_int_equal(hits[2], 1);
    double t0 = mv_mono();
    for (int i = 0; i < rounds; i++)
        assert_int_equal(mv_matcher_eval(matcher, (const mv_mquery *const *)q, 3, &mm, hits, &err),
                         MV_OK);
    double full = (mv_mono() - t0) / rounds * 1e6;
    mv_extract *x = NULL;
    assert_int_equal(mv_extract_message(b.data, b.len, NULL, &x, &err), MV_OK);
    mm.x = x;
    t0 = mv_mono();
    for (int i = 0; i < rounds; i++)
        assert_int_equal(mv_matcher_eval(matcher, (const mv_mquery *const *)q, 3, &mm, hits, &err),
                         MV_OK);
    double given = (mv_mono() - t0) / rounds * 1e6;
    mv_mquery *one = NULL; /* the document alone, nearly: a query of no term */
    assert_int_equal(mv_matcher_compile(matcher, "date:2023", &one, &err), MV_OK);
    t0 = mv_mono();
    for (int i = 0; i < rounds; i++)
        assert_int_equal(
            mv_matcher_eval(matcher, (const mv_mquery *const *)&one, 1, &mm, hits, &err), MV_OK);
    double doc = (mv_mono() - t0) / rounds * 1e6;
    mv_mquery_free(one);
    t0 = mv_mono();
    for (int i = 0; i < rounds; i++) {
        mv_extract *y = NULL;
        assert_int_equal(mv_extract_message(b.data, b.len, NULL, &y, &err), MV_OK);
        mv_extract_free(y);
    }
    double extract = (mv_mono() - t0) / rounds * 1e6;
    fprintf(stderr,
            "match_test: cost of a %zu-byte message with 3 queries: %.0f us per message "
            "(%.0f us with its extraction given; the extraction alone %.0f us; with the "
            "extraction given and one query of no term %.0f us)\n",
            b.len, full, given, extract, doc);
    mv_extract_free(x);
    for (size_t i = 0; i < 3; i++)
        mv_mquery_free(q[i]);
    mv_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_like_search),
        cmocka_unit_test(test_same_as_search),
        cmocka_unit_test(test_cases_exercised),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_custodian_changes),
        cmocka_unit_test(test_new_words),
        cmocka_unit_test(test_pipeline_fields),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_cost),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
