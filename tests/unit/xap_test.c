/* SPDX-License-Identifier: MIT */
/* xap_test.c - the Xapian index (search/xap.h) in a temporary directory:
 * hand-built documents and query trees (no extractor, no query parser),
 * the term scheme seen through search results, commits and readers, the
 * absence of plaintext in the index files, highlighting, and a rough
 * indexing rate. */
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../../lib/err.h"
#include "../../search/xap.h"

/* ---- hooks: PRF, vocabulary, expansion ------------------------------------ */

static const uint8_t test_key[32] = "mailvault xap test key 0123456";

static void test_prf(void *ctx, const void *p, size_t n, uint8_t out[32])
{
    (void)ctx;
    unsigned int len = 32;
    if (!HMAC(EVP_sha256(), test_key, sizeof test_key, p, n, out, &len))
        abort();
}

/* The vocabulary the word hook builds (for the wildcard callback). */
static struct {
    pthread_mutex_t mu;
    char **w;
    size_t n, cap;
} vocab = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

static void vocab_word(void *ctx, const char *w, size_t n)
{
    (void)ctx;
    pthread_mutex_lock(&vocab.mu);
    for (size_t i = 0; i < vocab.n; i++)
        if (strlen(vocab.w[i]) == n && memcmp(vocab.w[i], w, n) == 0)
            goto out;
    if (vocab.n == vocab.cap) {
        vocab.cap = vocab.cap ? vocab.cap * 2 : 64;
        vocab.w = mv_xrealloc(vocab.w, vocab.cap * sizeof *vocab.w);
    }
    vocab.w[vocab.n++] = mv_xstrndup(w, n);
out:
    pthread_mutex_unlock(&vocab.mu);
}

static int vocab_has(const char *w)
{
    for (size_t i = 0; i < vocab.n; i++)
        if (strcmp(vocab.w[i], w) == 0)
            return 1;
    return 0;
}

static void vocab_clear(void)
{
    for (size_t i = 0; i < vocab.n; i++)
        free(vocab.w[i]);
    free(vocab.w);
    vocab.w = NULL;
    vocab.n = vocab.cap = 0;
}

static mv_status expand_prefix(void *ctx, const char *prefix, size_t max, char ***words, size_t *n,
                               mv_err *err)
{
    (void)ctx;
    *words = NULL;
    *n = 0;
    if (strcmp(prefix, "many") == 0)
        return mv_err_set(err, MV_ELIMIT, "too many");
    size_t pl = strlen(prefix), k = 0;
    char **out = mv_xcalloc(vocab.n + 1, sizeof *out);
    for (size_t i = 0; i < vocab.n; i++)
        if (strncmp(vocab.w[i], prefix, pl) == 0)
            out[k++] = mv_xstrdup(vocab.w[i]);
    if (k > max) {
        for (size_t i = 0; i < k; i++)
            free(out[i]);
        free(out);
        return mv_err_set(err, MV_ELIMIT, "too many");
    }
    *words = out;
    *n = k;
    return MV_OK;
}

static mv_status expand_custodian(void *ctx, const char *name, char ***addrs, size_t *n,
                                  mv_err *err)
{
    (void)ctx;
    *addrs = NULL;
    *n = 0;
    if (strcmp(name, "Alice Smith") != 0)
        return mv_err_set(err, MV_ENOTFOUND, "no such custodian");
    char **a = mv_xcalloc(2, sizeof *a);
    a[0] = mv_xstrdup("alice@example.com");
    a[1] = mv_xstrdup("alice.smith@example.org"); /* not in any message */
    *addrs = a;
    *n = 2;
    return MV_OK;
}

static const mv_xap_expand expand = {NULL, expand_custodian, expand_prefix};

static mv_xap_hooks hooks(void)
{
    mv_xap_hooks h = {test_prf, NULL, vocab_word, NULL, NULL};
    return h;
}

/* ---- hand-built extracts ---------------------------------------------------- */

static mv_extract *xnew(void)
{
    mv_extract *x = mv_xcalloc(1, sizeof *x);
    x->date = INT64_MIN;
    return x;
}

static void xadd(mv_extract *x, mv_xs_kind kind, mv_xs_role role, const char *text)
{
    x->s = mv_xrealloc(x->s, (x->n + 1) * sizeof *x->s);
    mv_xsection *s = &x->s[x->n++];
    memset(s, 0, sizeof *s);
    s->kind = (uint8_t)kind;
    s->role = (uint8_t)role;
    s->text = mv_xstrdup(text);
    s->len = strlen(text);
}

static void xfree(mv_extract *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->n; i++)
        free(x->s[i].text);
    free(x->s);
    free(x);
}

/* ---- hand-built queries ------------------------------------------------------- */

static mv_qnode *qn(mv_qkind kind)
{
    mv_qnode *n = mv_xcalloc(1, sizeof *n);
    n->kind = (uint8_t)kind;
    return n;
}

static mv_qnode *qtext(mv_qkind kind, mv_qfield field, const char *t)
{
    mv_qnode *n = qn(kind);
    n->field = (uint8_t)field;
    n->text = mv_xstrdup(t);
    return n;
}

static mv_qnode *qw(mv_qfield field, const char *t)
{
    return qtext(MV_Q_WORD, field, t);
}

static mv_qnode *qword(const char *t)
{
    return qw(MV_QF_ANY, t);
}

static mv_qnode *qphrase(mv_qfield field, const char *t)
{
    return qtext(MV_Q_PHRASE, field, t);
}

static mv_qnode *qprefix(mv_qfield field, const char *t)
{
    return qtext(MV_Q_PREFIX, field, t);
}

static mv_qnode *qdate(int64_t lo, int64_t hi)
{
    mv_qnode *n = qn(MV_Q_DATE);
    n->lo = lo;
    n->hi = hi;
    return n;
}

static mv_qnode *qsize(uint64_t lo, uint64_t hi)
{
    mv_qnode *n = qn(MV_Q_SIZE);
    n->slo = lo;
    n->shi = hi;
    return n;
}

/* qop - AND / OR / NOT over children, the list ended by QEND. */
#define QEND ((mv_qnode *)NULL)
static mv_qnode *qop(mv_qkind kind, ...)
{
    mv_qnode *n = qn(kind);
    va_list ap;
    va_start(ap, kind);
    for (mv_qnode *k; (k = va_arg(ap, mv_qnode *)) != NULL;) {
        n->kids = mv_xrealloc(n->kids, (n->n_kids + 1) * sizeof *n->kids);
        n->kids[n->n_kids++] = k;
    }
    va_end(ap);
    return n;
}

static void qfree(mv_qnode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        qfree(n->kids[i]);
    free(n->kids);
    free(n->text);
    free(n);
}

/* ---- the fixture: three messages ------------------------------------------- */

#define D1 INT64_C(1704844800) /* 2024-01-10 */
#define D2 INT64_C(1707955200) /* 2024-02-15 */
#define D3 INT64_C(1710892800) /* 2024-03-20 */

static char tmpdir[256];
static char dbdir[300];
static mv_xap *ix;

static void put(mv_xap *x, uint64_t serial, const mv_extract *e, int64_t date, uint64_t size,
                const char *const *env, size_t n_env, const char *const *holds, size_t n_holds,
                unsigned flags)
{
    mv_xdoc d = {serial, e, date, size, env, n_env, holds, n_holds, flags};
    mv_xap_doc *doc = NULL;
    mv_err err = {0};
    assert_int_equal(mv_xap_make_doc(x, &d, &doc, &err), MV_OK);
    assert_non_null(doc);
    assert_int_equal(mv_xap_put(x, doc, &err), MV_OK);
}

static void put_fixture(mv_xap *x)
{
    mv_extract *e = xnew();
    xadd(e, MV_XS_ADDR, MV_XR_FROM, "alice@example.com");
    xadd(e, MV_XS_NAME, MV_XR_FROM, "Alice Smith");
    xadd(e, MV_XS_ADDR, MV_XR_TO, "bob@sub.corp.example.org");
    xadd(e, MV_XS_NAME, MV_XR_TO, "Bob Jones");
    xadd(e, MV_XS_ADDR, MV_XR_CC, "carol@example.net");
    xadd(e, MV_XS_NAME, MV_XR_CC, "Carol Kingsley");
    xadd(e, MV_XS_SUBJECT, MV_XR_NONE, "Quarterly invoices attached");
    xadd(e, MV_XS_MSGID, MV_XR_NONE, "abc123@example.com");
    xadd(e, MV_XS_REF, MV_XR_NONE, "parent1@example.com");
    xadd(e, MV_XS_BODY, MV_XR_NONE,
         "Please find the invoices for the quarter. The red fox jumps over the lazy dog. "
         "Write an e-mail to support.");
    xadd(e, MV_XS_FILENAME, MV_XR_NONE, "Report-2024.pdf");
    xadd(e, MV_XS_MIMETYPE, MV_XR_NONE, "application/pdf");
    xadd(e, MV_XS_ATTACH_TEXT, MV_XR_NONE, "revenue projection spreadsheet");
    e->n_attachments = 1;
    const char *env1[] = {"dave@hidden.example.com", "bob@sub.corp.example.org"};
    put(x, 1, e, D1, 5000, env1, 2, NULL, 0, MV_XD_SIGNED);
    xfree(e);

    e = xnew();
    xadd(e, MV_XS_ADDR, MV_XR_FROM, "bob@sub.corp.example.org");
    xadd(e, MV_XS_NAME, MV_XR_FROM, "Bob Jones");
    xadd(e, MV_XS_ADDR, MV_XR_TO, "alice@example.com");
    xadd(e, MV_XS_NAME, MV_XR_TO, "Alice Smith");
    xadd(e, MV_XS_ADDR, MV_XR_BCC, "erin@example.com");
    xadd(e, MV_XS_NAME, MV_XR_BCC, "Erin Blind");
    xadd(e, MV_XS_SUBJECT, MV_XR_NONE, "Re: lunch");
    xadd(e, MV_XS_MSGID, MV_XR_NONE, "def456@example.com");
    xadd(
        e, MV_XS_BODY, MV_XR_NONE,
        "An invoice about lunch. Dog lazy the over jumps fox red. "
        "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80. " /* Привет мир
                                                                                       */
        "\xe6\x88\x91\xe7\x88\xb1\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97\xe5\x85\xb8."); /* 我爱中文字典
                                                                                       */
    const char *holds2[] = {"Matter-42"};
    put(x, 2, e, D2, 20000, NULL, 0, holds2, 1, MV_XD_ENCRYPTED | MV_XD_DECRYPTED);
    xfree(e);

    e = xnew();
    xadd(e, MV_XS_ADDR, MV_XR_FROM, "frank@other.com");
    xadd(e, MV_XS_NAME, MV_XR_FROM, "Frank Ocean");
    xadd(e, MV_XS_SUBJECT, MV_XR_NONE, "weekly status");
    xadd(e, MV_XS_MSGID, MV_XR_NONE, "xyz@other.com");
    xadd(e, MV_XS_BODY, MV_XR_NONE, "nothing to see here, ref 12345678901234567890");
    put(x, 3, e, D3, 100, NULL, 0, NULL, 0, MV_XD_UNDECRYPTABLE);
    xfree(e);
}

static mv_xap *open_ix(const char *dir, int create, int writable, const char *lang, mv_status want)
{
    mv_xap_opts o = {create, writable};
    mv_xap_hooks h = hooks();
    h.language = lang;
    mv_xap *x = NULL;
    mv_err err = {0};
    mv_status st = mv_xap_open(dir, &o, &h, &x, &err);
    if (st != want)
        fail_msg("open %s: %s (%s)", dir, mv_status_str(st), err.msg);
    if (want != MV_OK)
        assert_null(x);
    return x;
}

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/mvxap.XXXXXX", t && *t ? t : "/tmp");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(dbdir, sizeof dbdir, "%s/index", tmpdir);
    ix = open_ix(dbdir, 1, 1, NULL, MV_OK);
    put_fixture(ix);
    mv_err err = {0};
    assert_int_equal(mv_xap_commit(ix, 1, &err), MV_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mv_xap_close(ix);
    ix = NULL;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    vocab_clear();
    return 0;
}

/* ---- searching ------------------------------------------------------------------ */

/* run - the serials q finds (date order), space-separated; frees q. */
static char *run(mv_xap *x, mv_qnode *q, mv_xsort sort, uint64_t offset, uint64_t limit,
                 uint64_t *total)
{
    mv_xap_result r;
    mv_err err = {0};
    mv_status st = mv_xap_search(x, q, &expand, offset, limit, sort, &r, &err);
    qfree(q);
    if (st != MV_OK)
        fail_msg("search: %s (%s)", mv_status_str(st), err.msg);
    char *s = mv_xstrdup("");
    for (size_t i = 0; i < r.n; i++) {
        char *t = mv_xasprintf("%s%s%llu", s, i ? " " : "", (unsigned long long)r.hits[i].serial);
        free(s);
        s = t;
    }
    if (total)
        *total = r.total;
    if (limit >= 100 && offset == 0)
        assert_int_equal(r.total, r.n);
    mv_xap_result_free(&r);
    return s;
}

#define EXPECT(q, want)                                                                            \
    do {                                                                                           \
        char *got_ = run(ix, (q), MV_XSORT_DATE_ASC, 0, 100, NULL);                                \
        if (strcmp(got_, (want)) != 0)                                                             \
            fail_msg("line %d: got \"%s\", want \"%s\"", __LINE__, got_, (want));                  \
        free(got_);                                                                                \
    } while (0)

static mv_status search_status(mv_qnode *q, char *msg, size_t msgn)
{
    mv_xap_result r;
    mv_err err = {0};
    mv_status st = mv_xap_search(ix, q, &expand, 0, 10, MV_XSORT_DATE_DESC, &r, &err);
    qfree(q);
    if (st == MV_OK) {
        assert_int_equal(err.code, MV_OK);
        mv_xap_result_free(&r);
    } else {
        assert_null(r.hits);
    }
    snprintf(msg, msgn, "%s", err.msg);
    return st;
}

static void test_words(void **state)
{
    (void)state;
    EXPECT(qword("fox"), "1 2");
    EXPECT(qword("FOX"), "1 2");
    EXPECT(qword("invoice"), "1 2"); /* stemmed: invoices, invoice */
    EXPECT(qword("invoicing"), "1 2");
    EXPECT(qword("quarter"), "1");
    EXPECT(qword("nothing"), "3");
    EXPECT(qword("absentword"), "");
    EXPECT(qword("e-mail"), "1"); /* two tokens: a phrase */
    EXPECT(qword("mail-e"), "");
    EXPECT(qword("12345678901234567890"), "3");
    EXPECT(qword("---"), ""); /* no token at all */
    /* UTF-8: Cyrillic in any case, CJK n-grams */
    EXPECT(qword("\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2"), "2"); /* ПРИВЕТ */
    EXPECT(qword("\xd0\xbc\xd0\xb8\xd1\x80"), "2");                         /* мир */
    EXPECT(qword("\xe4\xb8\xad\xe6\x96\x87"), "2");                         /* 中文 */
    EXPECT(qword("\xe4\xb8\xad"), "2");                                     /* 中 */
    EXPECT(qword("\xe6\x96\x87\xe5\xad\x97\xe5\x85\xb8"), "2");             /* 文字典 */
    EXPECT(qword("\xe5\x85\xb8\xe4\xb8\xad"), "");                          /* 典中 */
}

static void test_phrases(void **state)
{
    (void)state;
    EXPECT(qphrase(MV_QF_ANY, "red fox jumps"), "1");
    EXPECT(qphrase(MV_QF_ANY, "fox red"), "2");
    EXPECT(qphrase(MV_QF_ANY, "lazy dog"), "1");
    EXPECT(qphrase(MV_QF_ANY, "dog lazy"), "2");
    EXPECT(qphrase(MV_QF_ANY, "jump over"), "1"); /* stemmed in phrases too */
    /* sections never join: subject end + body start */
    EXPECT(qphrase(MV_QF_ANY, "attached please"), "");
    EXPECT(qphrase(MV_QF_BODY, "red fox"), "1");
    EXPECT(qphrase(MV_QF_SUBJECT, "red fox"), "");
    EXPECT(qop(MV_Q_AND, qword("fox"), qword("red"), QEND), "1 2");
}

static void test_fields(void **state)
{
    (void)state;
    EXPECT(qw(MV_QF_SUBJECT, "invoices"), "1");
    EXPECT(qw(MV_QF_SUBJECT, "lunch"), "2");
    EXPECT(qw(MV_QF_BODY, "lunch"), "2");
    EXPECT(qw(MV_QF_BODY, "quarterly"), "1"); /* stems to quarter, which the body has */
    EXPECT(qw(MV_QF_BODY, "attached"), "");
    EXPECT(qw(MV_QF_BODY, "revenue"), "");
    EXPECT(qw(MV_QF_ATTACHMENT, "revenue"), "1");
    EXPECT(qw(MV_QF_ATTACHMENT, "fox"), "");
    EXPECT(qword("revenue"), "1");
    EXPECT(qw(MV_QF_FILENAME, "report"), "1");
    EXPECT(qw(MV_QF_FILENAME, "pdf"), "1");
    EXPECT(qw(MV_QF_FILENAME, "REPORT-2024.PDF"), "1");
    EXPECT(qw(MV_QF_FILENAME, "fox"), "");
    EXPECT(qword("report"), "1");
    EXPECT(qw(MV_QF_MSGID, "<abc123@example.com>"), "1");
    EXPECT(qw(MV_QF_MSGID, "def456@example.com"), "2");
    EXPECT(qw(MV_QF_MSGID, "parent1@example.com"), ""); /* a reference, not the id */
    EXPECT(qw(MV_QF_HOLD, "MATTER-42"), "2");
    EXPECT(qw(MV_QF_HOLD, "matter-43"), "");
}

static void test_addresses(void **state)
{
    (void)state;
    EXPECT(qw(MV_QF_FROM, "alice@example.com"), "1");
    EXPECT(qw(MV_QF_FROM, "Alice@Example.com"), "1");
    EXPECT(qw(MV_QF_FROM, "alice"), "1");       /* local part */
    EXPECT(qw(MV_QF_FROM, "example.com"), "1"); /* domain */
    EXPECT(qw(MV_QF_FROM, "smith"), "1");       /* name word */
    EXPECT(qphrase(MV_QF_FROM, "alice smith"), "1");
    EXPECT(qw(MV_QF_TO, "alice@example.com"), "2");
    EXPECT(qw(MV_QF_TO, "smith"), "2");
    EXPECT(qw(MV_QF_TO, "corp.example.org"), "1"); /* parent domain */
    EXPECT(qw(MV_QF_TO, "example.org"), "1");
    EXPECT(qw(MV_QF_TO, "org"), ""); /* one label is no parent */
    EXPECT(qw(MV_QF_TO, "jones"), "1");
    EXPECT(qw(MV_QF_TO, "dave"), ""); /* envelope only: not To */
    EXPECT(qw(MV_QF_CC, "carol"), "1");
    EXPECT(qw(MV_QF_CC, "kingsley"), "1");
    EXPECT(qw(MV_QF_CC, "example.net"), "1");
    EXPECT(qw(MV_QF_CC, "alice"), "");
    EXPECT(qw(MV_QF_BCC, "erin@example.com"), "2");
    EXPECT(qw(MV_QF_BCC, "blind"), "2");
    EXPECT(qw(MV_QF_BCC, "dave@hidden.example.com"), "1"); /* envelope recipient */
    EXPECT(qw(MV_QF_BCC, "dave"), "1");
    EXPECT(qw(MV_QF_BCC, "hidden.example.com"), "1");
    EXPECT(qw(MV_QF_PARTICIPANT, "bob@sub.corp.example.org"), "1 2");
    EXPECT(qw(MV_QF_PARTICIPANT, "alice"), "1 2");
    EXPECT(qw(MV_QF_PARTICIPANT, "ocean"), "3");
    EXPECT(qw(MV_QF_PARTICIPANT, "dave"), "1");
    EXPECT(qw(MV_QF_DOMAIN, "example.com"), "1 2");
    EXPECT(qw(MV_QF_DOMAIN, "EXAMPLE.NET"), "1");
    EXPECT(qw(MV_QF_DOMAIN, "corp.example.org"), "1 2");
    EXPECT(qw(MV_QF_DOMAIN, "other.com"), "3");
    EXPECT(qw(MV_QF_DOMAIN, "hidden.example.com"), "1");
    /* free text: addresses and domains too */
    EXPECT(qword("alice@example.com"), "1 2");
    EXPECT(qword("example.net"), "1");
    EXPECT(qword("kingsley"), "1");
    EXPECT(qword("erin@example.com"), "2");
}

static void test_wildcard_custodian(void **state)
{
    (void)state;
    /* the word hook saw the document words, lower-cased, not stemmed */
    assert_true(vocab_has("invoices"));
    assert_true(vocab_has("invoice"));
    assert_true(vocab_has("quarterly"));
    assert_true(vocab_has("\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82")); /* привет */
    assert_false(vocab_has("12345678901234567890")); /* long number: not vocabulary */
    assert_false(vocab_has("Quarterly"));
    size_t before = vocab.n;
    EXPECT(qprefix(MV_QF_ANY, "invoi"), "1 2");
    EXPECT(qprefix(MV_QF_SUBJECT, "quart"), "1");
    EXPECT(qprefix(MV_QF_BODY, "quart"), "1");
    EXPECT(qprefix(MV_QF_SUBJECT, "lun"), "2");
    EXPECT(qprefix(MV_QF_FROM, "ali"), "1");
    EXPECT(qprefix(MV_QF_ANY, "zzz"), "");
    EXPECT(qop(MV_Q_AND, qprefix(MV_QF_ANY, "invoi"), qw(MV_QF_SUBJECT, "lunch"), QEND), "2");
    assert_int_equal(vocab.n, before); /* queries add no vocabulary */

    char msg[256];
    assert_int_equal(search_status(qprefix(MV_QF_ANY, "many"), msg, sizeof msg), MV_ELIMIT);
    assert_string_equal(msg, "wildcard 'many*' matches more than 1024 words: use more letters");
    assert_int_equal(search_status(qprefix(MV_QF_MSGID, "abc"), msg, sizeof msg), MV_EUSAGE);

    EXPECT(qw(MV_QF_CUSTODIAN, "Alice Smith"), "1 2");
    EXPECT(qop(MV_Q_AND, qw(MV_QF_CUSTODIAN, "Alice Smith"), qword("lunch"), QEND), "2");
    assert_int_equal(search_status(qw(MV_QF_CUSTODIAN, "nobody"), msg, sizeof msg), MV_ENOTFOUND);
    assert_string_equal(msg, "unknown custodian 'nobody'");

    /* without expansion callbacks: a clear refusal */
    mv_xap_result r;
    mv_err err = {0};
    mv_qnode *q = qprefix(MV_QF_ANY, "invoi");
    assert_int_equal(mv_xap_search(ix, q, NULL, 0, 10, MV_XSORT_DATE_DESC, &r, &err), MV_EUSAGE);
    qfree(q);
}

static void test_ranges_flags(void **state)
{
    (void)state;
    EXPECT(qdate(D1, D2), "1 2");
    EXPECT(qdate(D2, D2), "2");
    EXPECT(qdate(D2, INT64_MAX), "2 3");
    EXPECT(qdate(INT64_MIN, D1), "1");
    EXPECT(qdate(INT64_MIN, INT64_MAX), "1 2 3");
    EXPECT(qdate(D1 + 1, D2 - 1), "");
    EXPECT(qdate(D2, D1), "");
    EXPECT(qsize(5000, 20000), "1 2");
    EXPECT(qsize(20001, UINT64_MAX), "");
    EXPECT(qsize(0, 100), "3");
    EXPECT(qsize(101, 4999), "");
    EXPECT(qsize(0, UINT64_MAX), "1 2 3");
    EXPECT(qtext(MV_Q_HAS, MV_QF_ANY, "attachment"), "1");
    EXPECT(qtext(MV_Q_IS, MV_QF_ANY, "signed"), "1");
    EXPECT(qtext(MV_Q_IS, MV_QF_ANY, "encrypted"), "2");
    EXPECT(qtext(MV_Q_IS, MV_QF_ANY, "decrypted"), "2");
    EXPECT(qtext(MV_Q_IS, MV_QF_ANY, "undecryptable"), "3");
    EXPECT(qtext(MV_Q_IS, MV_QF_ANY, "held"), "2");
}

static void test_boolean(void **state)
{
    (void)state;
    EXPECT(qop(MV_Q_AND, qword("fox"), qw(MV_QF_FROM, "alice"), QEND), "1");
    EXPECT(qop(MV_Q_OR, qword("lunch"), qword("status"), QEND), "2 3");
    EXPECT(qop(MV_Q_AND, qword("fox"), qop(MV_Q_NOT, qword("lunch"), QEND), QEND), "1");
    EXPECT(qop(MV_Q_NOT, qword("lunch"), QEND), "1 3");
    EXPECT(qop(MV_Q_OR, qword("lunch"), qop(MV_Q_NOT, qword("fox"), QEND), QEND), "2 3");
    EXPECT(qn(MV_Q_ALL), "1 2 3");
    EXPECT(qop(MV_Q_AND, qn(MV_Q_ALL), qop(MV_Q_NOT, qtext(MV_Q_IS, 0, "signed"), QEND), QEND),
           "2 3");
    EXPECT(qop(MV_Q_AND, qtext(MV_Q_IS, 0, "encrypted"), qdate(D1, D3), QEND), "2");
    EXPECT(qop(MV_Q_AND, qop(MV_Q_NOT, qword("fox"), QEND), QEND), "3");
    EXPECT(qop(MV_Q_NOT, qop(MV_Q_NOT, qword("fox"), QEND), QEND), "1 2");

    /* a boolean filter leaves the ranking alone */
    mv_xap_result a, b;
    mv_err err = {0};
    mv_qnode *q1 = qword("fox");
    mv_qnode *q2 = qop(MV_Q_AND, qword("fox"), qtext(MV_Q_IS, 0, "signed"), qdate(D1, D1), QEND);
    assert_int_equal(mv_xap_search(ix, q1, &expand, 0, 10, MV_XSORT_RELEVANCE, &a, &err), MV_OK);
    assert_int_equal(mv_xap_search(ix, q2, &expand, 0, 10, MV_XSORT_RELEVANCE, &b, &err), MV_OK);
    assert_int_equal(b.n, 1);
    size_t k = a.hits[0].serial == 1 ? 0 : 1;
    assert_int_equal(a.hits[k].serial, 1);
    assert_true(a.hits[k].weight > 0);
    assert_true(a.hits[k].weight == b.hits[0].weight);
    mv_xap_result_free(&a);
    mv_xap_result_free(&b);
    qfree(q1);
    qfree(q2);

    /* malformed trees are refused, not crashed on */
    char msg[256];
    mv_qnode *bad = qn(MV_Q_WORD);
    assert_int_equal(search_status(bad, msg, sizeof msg), MV_EUSAGE);
    bad = qn(MV_Q_NOT);
    assert_int_equal(search_status(bad, msg, sizeof msg), MV_EUSAGE);
    bad = qn(99);
    assert_int_equal(search_status(bad, msg, sizeof msg), MV_EUSAGE);
    mv_qnode *deep = qword("fox");
    for (int i = 0; i < 300; i++)
        deep = qop(MV_Q_AND, deep, QEND);
    assert_int_equal(search_status(deep, msg, sizeof msg), MV_ELIMIT);
}

static void test_sort_paging(void **state)
{
    (void)state;
    uint64_t total = 0;
    char *s = run(ix, qn(MV_Q_ALL), MV_XSORT_DATE_DESC, 0, 100, &total);
    assert_string_equal(s, "3 2 1");
    free(s);
    s = run(ix, qn(MV_Q_ALL), MV_XSORT_DATE_ASC, 0, 100, &total);
    assert_string_equal(s, "1 2 3");
    free(s);
    s = run(ix, qn(MV_Q_ALL), MV_XSORT_DATE_DESC, 1, 1, &total);
    assert_string_equal(s, "2");
    assert_int_equal(total, 3);
    free(s);
    s = run(ix, qn(MV_Q_ALL), MV_XSORT_DATE_DESC, 2, 5, &total);
    assert_string_equal(s, "1");
    assert_int_equal(total, 3);
    free(s);
    s = run(ix, qn(MV_Q_ALL), MV_XSORT_DATE_DESC, 10, 5, &total);
    assert_string_equal(s, "");
    assert_int_equal(total, 3);
    free(s);
    s = run(ix, qword("fox"), MV_XSORT_DATE_DESC, 0, 0, &total); /* count only */
    assert_string_equal(s, "");
    assert_int_equal(total, 2);
    free(s);
    s = run(ix, qword("fox"), MV_XSORT_RELEVANCE, 0, 100, &total);
    assert_int_equal(total, 2);
    free(s);

    mv_xap_result r;
    mv_err err = {0};
    mv_qnode *q = qn(MV_Q_ALL);
    assert_int_equal(mv_xap_search(ix, q, NULL, 0, 10, MV_XSORT_DATE_DESC, &r, &err), MV_OK);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.hits[0].date, D3);
    assert_int_equal(r.hits[1].date, D2);
    assert_int_equal(r.hits[2].date, D1);
    mv_xap_result_free(&r);
    assert_null(r.hits);
    mv_xap_result_free(NULL);
    /* count only allocates nothing */
    assert_int_equal(mv_xap_search(ix, q, NULL, 0, 0, MV_XSORT_DATE_DESC, &r, &err), MV_OK);
    assert_int_equal(r.total, 3);
    assert_int_equal(r.n, 0);
    assert_null(r.hits);
    qfree(q);
}

static void test_replace_delete(void **state)
{
    (void)state;
    mv_err err = {0};
    assert_int_equal(mv_xap_doc_count(ix), 3);
    mv_extract *e = xnew();
    xadd(e, MV_XS_BODY, MV_XR_NONE, "pineapple smoothie");
    put(ix, 3, e, D3, 100, NULL, 0, NULL, 0, 0);
    xfree(e);
    /* a writer searches its own uncommitted changes */
    assert_int_equal(mv_xap_doc_count(ix), 3);
    EXPECT(qword("status"), "");
    EXPECT(qw(MV_QF_FROM, "frank"), "");
    EXPECT(qtext(MV_Q_IS, 0, "undecryptable"), "");
    EXPECT(qword("pineapple"), "3");
    assert_int_equal(mv_xap_delete(ix, 3, &err), MV_OK);
    assert_int_equal(mv_xap_delete(ix, 999, &err), MV_OK);
    assert_int_equal(mv_xap_delete(ix, 0, &err), MV_OK);
    assert_int_equal(mv_xap_delete(ix, UINT64_C(1) << 40, &err), MV_OK);
    EXPECT(qword("pineapple"), "");
    assert_int_equal(mv_xap_doc_count(ix), 2);

    /* serials beyond docids */
    mv_xdoc d = {UINT64_C(1) << 32, NULL, 0, 0, NULL, 0, NULL, 0, 0};
    mv_xap_doc *doc = (mv_xap_doc *)&d; /* must be cleared */
    assert_int_equal(mv_xap_make_doc(ix, &d, &doc, &err), MV_ELIMIT);
    assert_null(doc);
    d.serial = 0;
    assert_int_equal(mv_xap_make_doc(ix, &d, &doc, &err), MV_EUSAGE);
    d.serial = UINT32_MAX; /* the largest docid */
    assert_int_equal(mv_xap_make_doc(ix, &d, &doc, &err), MV_OK);
    mv_xap_doc_free(doc);
    mv_xap_doc_free(NULL);
}

static void test_commit_reopen(void **state)
{
    (void)state;
    mv_err err = {0};
    assert_int_equal(mv_xap_last_change(ix), 1);
    assert_int_equal(mv_xap_commit(ix, 42, &err), MV_OK);
    assert_int_equal(mv_xap_last_change(ix), 42);

    /* one writer at a time */
    open_ix(dbdir, 1, 1, NULL, MV_ETEMP);

    /* a reader sees the last commit, and later ones after its reopen */
    mv_xap *rd = open_ix(dbdir, 0, 0, NULL, MV_OK);
    assert_int_equal(mv_xap_last_change(rd), 42);
    assert_int_equal(mv_xap_doc_count(rd), 3);
    mv_extract *e = xnew();
    xadd(e, MV_XS_BODY, MV_XR_NONE, "kiwi season");
    put(ix, 4, e, D3 + 10, 10, NULL, 0, NULL, 0, 0);
    char *s = run(rd, qword("kiwi"), MV_XSORT_DATE_DESC, 0, 100, NULL);
    assert_string_equal(s, ""); /* not committed yet */
    free(s);
    assert_int_equal(mv_xap_commit(ix, 43, &err), MV_OK);
    s = run(rd, qword("kiwi"), MV_XSORT_DATE_DESC, 0, 100, NULL);
    assert_string_equal(s, "4");
    free(s);
    assert_int_equal(mv_xap_last_change(rd), 43);
    assert_int_equal(mv_xap_doc_count(rd), 4);
    /* readers cannot write */
    mv_xdoc d = {9, e, D3, 10, NULL, 0, NULL, 0, 0};
    mv_xap_doc *doc = NULL;
    assert_int_equal(mv_xap_make_doc(rd, &d, &doc, &err), MV_OK);
    assert_int_equal(mv_xap_put(rd, doc, &err), MV_EUSAGE); /* takes doc all the same */
    assert_int_equal(mv_xap_commit(rd, 1, &err), MV_EUSAGE);
    assert_int_equal(mv_xap_delete(rd, 1, &err), MV_EUSAGE);

    /* closing drops what was not committed */
    put(ix, 5, e, D3 + 20, 10, NULL, 0, NULL, 0, 0);
    xfree(e);
    assert_int_equal(mv_xap_doc_count(ix), 5);
    mv_xap_close(ix);
    ix = open_ix(dbdir, 0, 1, NULL, MV_OK);
    assert_int_equal(mv_xap_doc_count(ix), 4);
    assert_int_equal(mv_xap_last_change(ix), 43);
    EXPECT(qword("kiwi"), "4");
    EXPECT(qword("fox"), "1 2");
    mv_xap_close(rd);

    /* opening: missing index, wrong language, unknown language */
    char missing[400];
    snprintf(missing, sizeof missing, "%s/nothing", tmpdir);
    open_ix(missing, 0, 0, NULL, MV_ENOTFOUND);
    open_ix(missing, 0, 1, NULL, MV_ENOTFOUND);
    open_ix(dbdir, 0, 0, "french", MV_EUSAGE);
    open_ix(dbdir, 0, 0, "klingon", MV_EUSAGE);
    mv_xap *rd2 = open_ix(missing, 1, 0, NULL, MV_OK); /* a reader may create it */
    assert_int_equal(mv_xap_doc_count(rd2), 0);
    assert_int_equal(mv_xap_last_change(rd2), 0);
    char *s2 = run(rd2, qn(MV_Q_ALL), MV_XSORT_DATE_DESC, 0, 100, NULL);
    assert_string_equal(s2, "");
    free(s2);
    mv_xap_close(rd2);
    mv_xap_close(NULL);
}

static void test_no_stemming(void **state)
{
    (void)state;
    char dir[400];
    snprintf(dir, sizeof dir, "%s/plain", tmpdir);
    mv_xap *x = open_ix(dir, 1, 1, "none", MV_OK);
    mv_extract *e = xnew();
    xadd(e, MV_XS_BODY, MV_XR_NONE, "invoices galore");
    put(x, 7, e, D1, 1, NULL, 0, NULL, 0, 0);
    xfree(e);
    char *s = run(x, qword("invoice"), MV_XSORT_DATE_DESC, 0, 100, NULL);
    assert_string_equal(s, "");
    free(s);
    s = run(x, qword("Invoices"), MV_XSORT_DATE_DESC, 0, 100, NULL);
    assert_string_equal(s, "7");
    free(s);
    mv_xap_close(x);
}

/* ---- no plaintext in the index -------------------------------------------------- */

static const char *const canaries[] = {
    "Zebracanary", "Subjcanary", "Namecanary", "addrcanary",   "canarydomain",
    "Filecanary",  "msgcanary",  "Holdcanary", "Attachcanary", "Envcanary",
};
static size_t canary_hits;

static int scan_file(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F)
        return 0;
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    char *buf = mv_xmalloc((size_t)sb->st_size + 1);
    size_t n = fread(buf, 1, (size_t)sb->st_size, f);
    fclose(f);
    for (size_t i = 0; i < sizeof canaries / sizeof canaries[0]; i++) {
        char low[64];
        size_t k = 0;
        for (; canaries[i][k] && k < sizeof low - 1; k++)
            low[k] = (char)(canaries[i][k] | 0x20);
        low[k] = '\0';
        if (memmem(buf, n, canaries[i], strlen(canaries[i])) || memmem(buf, n, low, k)) {
            print_error("canary %s found in %s\n", canaries[i], p);
            canary_hits++;
        }
    }
    free(buf);
    return 0;
}

static void test_no_plaintext(void **state)
{
    (void)state;
    char dir[400];
    snprintf(dir, sizeof dir, "%s/canary", tmpdir);
    mv_xap *x = open_ix(dir, 1, 1, NULL, MV_OK);
    mv_extract *e = xnew();
    xadd(e, MV_XS_ADDR, MV_XR_FROM, "addrcanary@canarydomain.test");
    xadd(e, MV_XS_NAME, MV_XR_FROM, "Namecanary Person");
    xadd(e, MV_XS_SUBJECT, MV_XR_NONE, "About Subjcanary");
    xadd(e, MV_XS_BODY, MV_XR_NONE, "the Zebracanary runs, zebracanary");
    xadd(e, MV_XS_FILENAME, MV_XR_NONE, "Filecanary.txt");
    xadd(e, MV_XS_ATTACH_TEXT, MV_XR_NONE, "Attachcanary text");
    xadd(e, MV_XS_MSGID, MV_XR_NONE, "msgcanary@canarydomain.test");
    const char *env[] = {"envcanary@canarydomain.test"};
    const char *holds[] = {"Holdcanary matter"};
    for (uint64_t serial = 1; serial <= 50; serial++) /* enough to fill real blocks */
        put(x, serial, e, D1 + (int64_t)serial, 1000, env, 1, holds, 1, MV_XD_SIGNED);
    xfree(e);
    mv_err err = {0};
    assert_int_equal(mv_xap_commit(x, 5, &err), MV_OK);
    char *s = run(x, qword("zebracanary"), MV_XSORT_DATE_DESC, 0, 0, NULL);
    free(s);
    mv_xap_close(x);
    canary_hits = 0;
    assert_int_equal(nftw(dir, scan_file, 16, FTW_PHYS), 0);
    assert_int_equal(canary_hits, 0);
}

/* ---- several threads make documents ---------------------------------------------- */

#define THREADS 4
#define PER_THREAD 25

typedef struct worker {
    int id;
    mv_xap_doc *docs[PER_THREAD];
} worker;

static void *make_docs(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        mv_extract *e = xnew();
        char body[128];
        snprintf(body, sizeof body, "thread%d item%d shared words for everybody", w->id, i);
        xadd(e, MV_XS_BODY, MV_XR_NONE, body);
        xadd(e, MV_XS_ADDR, MV_XR_FROM, "worker@threads.example");
        mv_xdoc d = {(uint64_t)(100 + w->id * PER_THREAD + i), e, D1 + i, 10, NULL, 0, NULL, 0, 0};
        mv_err err = {0};
        if (mv_xap_make_doc(ix, &d, &w->docs[i], &err) != MV_OK)
            w->docs[i] = NULL;
        xfree(e);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    worker w[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, make_docs, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    mv_err err = {0};
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < PER_THREAD; k++) {
            assert_non_null(w[i].docs[k]);
            assert_int_equal(mv_xap_put(ix, w[i].docs[k], &err), MV_OK);
        }
    assert_int_equal(mv_xap_commit(ix, 2, &err), MV_OK);
    uint64_t total = 0;
    char *s = run(ix, qword("everybody"), MV_XSORT_DATE_DESC, 0, 0, &total);
    free(s);
    assert_int_equal(total, THREADS * PER_THREAD);
    EXPECT(qword("thread2"), "150 151 152 153 154 155 156 157 158 159 160 161 162 163 164 165 166 "
                             "167 168 169 170 171 172 173 174");
    s = run(ix, qop(MV_Q_AND, qword("item7"), qw(MV_QF_DOMAIN, "threads.example"), QEND),
            MV_XSORT_DATE_DESC, 0, 0, &total);
    free(s);
    assert_int_equal(total, THREADS);
}

/* ---- highlighting ------------------------------------------------------------------- */

static char *hl(mv_qnode *q, const char *text, size_t max)
{
    char *out = NULL;
    mv_err err = {0};
    mv_status st = mv_xap_highlight(ix, q, &expand, text, strlen(text), max, "[", "]", &out, &err);
    qfree(q);
    if (st != MV_OK)
        fail_msg("highlight: %s (%s)", mv_status_str(st), err.msg);
    return out;
}

static int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80                  ? 0
                   : *p >= 0xc2 && *p <= 0xdf ? 1
                   : *p >= 0xe0 && *p <= 0xef ? 2
                   : *p >= 0xf0 && *p <= 0xf4 ? 3
                                              : 9;
        if (n == 9)
            return 0;
        for (size_t k = 1; k <= n; k++)
            if ((p[k] & 0xc0) != 0x80)
                return 0;
        p += n + 1;
    }
    return 1;
}

/* chars - characters of s, not counting the [ ] markers. */
static size_t chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80 && *p != '[' && *p != ']')
            n++;
    return n;
}

/* app - append s to the string in buf (cap bytes). */
static void app(char *buf, size_t cap, const char *s)
{
    size_t n = strlen(buf), k = strlen(s);
    assert_true(n + k < cap);
    memcpy(buf + n, s, k + 1);
}

static void test_highlight(void **state)
{
    (void)state;
    char *s = hl(qword("invoice"), "The Invoices are due. Nothing else.", 200);
    assert_string_equal(s, "The [Invoices] are due. Nothing else.");
    free(s);
    s = hl(qop(MV_Q_AND, qphrase(MV_QF_ANY, "red fox"), qw(MV_QF_SUBJECT, "dogs"), QEND),
           "A red fox, a brown dog.", 200);
    assert_string_equal(s, "A [red] [fox], a brown [dog].");
    free(s);
    /* only text terms: not names, not negated words */
    s = hl(qop(MV_Q_AND, qw(MV_QF_FROM, "alice"), qword("fox"), qop(MV_Q_NOT, qword("dog"), QEND),
               QEND),
           "alice fox dog", 200);
    assert_string_equal(s, "alice [fox] dog");
    free(s);
    /* UTF-8 words, case-folded; CJK by character */
    s = hl(qword("\xd0\x9c\xd0\x98\xd0\xa0"),
           "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
           "\xd0\xbc\xd0\xb8\xd1\x80, hello",
           200);
    assert_string_equal(s, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
                           "[\xd0\xbc\xd0\xb8\xd1\x80], hello");
    free(s);
    s = hl(qword("\xe4\xb8\xad\xe6\x96\x87"),
           "\xe6\x88\x91\xe7\x88\xb1\xe4\xb8\xad\xe6\x96\x87"
           "\xe5\xad\x97\xe5\x85\xb8",
           200);
    assert_string_equal(s, "\xe6\x88\x91\xe7\x88\xb1[\xe4\xb8\xad][\xe6\x96\x87]"
                           "\xe5\xad\x97\xe5\x85\xb8");
    free(s);
    /* wildcards and custodians expand as in a search */
    s = hl(qprefix(MV_QF_ANY, "invoi"), "one invoice, two invoices", 200);
    assert_string_equal(s, "one [invoice], two [invoices]");
    free(s);

    /* the window with the hits, cut at words, "…" where cut, never
     * splitting a character */
    char text[4096] = "";
    for (int i = 0; i < 30; i++)
        app(text, sizeof text, "filler \xc3\xa9t\xc3\xa9 words "); /* été: two-byte characters */
    app(text, sizeof text, "here the invoice hides ");
    for (int i = 0; i < 30; i++)
        app(text, sizeof text, "more \xc3\xbc\xc3\xbc trailing ");
    s = hl(qword("invoice"), text, 60);
    assert_true(valid_utf8(s));
    assert_non_null(strstr(s, "[invoice]"));
    assert_true(chars(s) <= 60);
    assert_true(chars(s) >= 40);
    assert_memory_equal(s, "\xe2\x80\xa6", 3);
    assert_memory_equal(s + strlen(s) - 3, "\xe2\x80\xa6", 3);
    /* hit centred: context on both sides */
    const char *hit = strstr(s, "[invoice]");
    assert_true(chars(hit) > 15 && chars(s) - chars(hit) > 15);
    free(s);
    /* two hits close together beat one alone */
    s = hl(qop(MV_Q_OR, qword("alpha"), qword("omega"), QEND),
           "alpha a b c d e f g h i j k l m n o p q r s t u v w x y z aa bb cc dd ee ff gg hh ii "
           "jj kk ll mm nn oo pp qq rr ss tt uu vv ww xx yy zz omega x omega y",
           30);
    assert_non_null(strstr(s, "[omega] x [omega]"));
    assert_null(strstr(s, "[alpha]"));
    assert_true(chars(s) <= 30);
    free(s);
    /* no hit: the beginning */
    s = hl(qword("absent"), text, 60);
    assert_true(valid_utf8(s));
    assert_memory_equal(s, "filler \xc3\xa9t\xc3\xa9 words", 16);
    assert_true(chars(s) <= 60);
    assert_memory_equal(s + strlen(s) - 3, "\xe2\x80\xa6", 3);
    free(s);
    /* invalid input bytes come out as U+FFFD */
    s = hl(qword("invoice"), "\xff\xc3 invoice \xe2\x82", 100);
    assert_true(valid_utf8(s));
    assert_string_equal(s, "\xef\xbf\xbd\xef\xbf\xbd [invoice] \xef\xbf\xbd\xef\xbf\xbd");
    free(s);
    /* tiny and empty */
    s = hl(qword("invoice"), "invoice", 0);
    assert_string_equal(s, "");
    free(s);
    s = hl(qword("invoice"), "", 10);
    assert_string_equal(s, "");
    free(s);
    s = hl(qword("invoice"), "abc invoice", 2);
    assert_string_equal(s, "ab");
    free(s);
    /* errors of the query come through */
    char *out = (char *)"x";
    mv_err err = {0};
    mv_qnode *q = qw(MV_QF_CUSTODIAN, "nobody");
    assert_int_equal(mv_xap_highlight(ix, q, &expand, "t", 1, 10, "[", "]", &out, &err),
                     MV_ENOTFOUND);
    assert_null(out);
    qfree(q);
}

/* ---- indexing rate (a figure, never a failure) ------------------------------------ */

static uint64_t xs = 88172645463325252ull;
static uint64_t next_rand(void)
{
    xs ^= xs << 13;
    xs ^= xs >> 7;
    xs ^= xs << 17;
    return xs;
}

/* The rate test's PRF: the same HMAC-SHA256, from precomputed pad states
 * as the store's PRF does it (HMAC() re-derives them on every call). */
static EVP_MD_CTX *pad_in, *pad_out, *scratch;

static void fast_prf_init(void)
{
    uint8_t ipad[64], opad[64];
    memset(ipad, 0x36, sizeof ipad);
    memset(opad, 0x5c, sizeof opad);
    for (size_t i = 0; i < sizeof test_key; i++)
        ipad[i] ^= test_key[i], opad[i] ^= test_key[i];
    pad_in = EVP_MD_CTX_new();
    pad_out = EVP_MD_CTX_new();
    scratch = EVP_MD_CTX_new();
    assert_true(EVP_DigestInit_ex(pad_in, EVP_sha256(), NULL) == 1);
    assert_true(EVP_DigestUpdate(pad_in, ipad, sizeof ipad) == 1);
    assert_true(EVP_DigestInit_ex(pad_out, EVP_sha256(), NULL) == 1);
    assert_true(EVP_DigestUpdate(pad_out, opad, sizeof opad) == 1);
}

static void fast_prf(void *ctx, const void *p, size_t n, uint8_t out[32])
{
    (void)ctx; /* one thread only: one scratch context */
    uint8_t inner[32];
    if (EVP_MD_CTX_copy_ex(scratch, pad_in) != 1 || EVP_DigestUpdate(scratch, p, n) != 1 ||
        EVP_DigestFinal_ex(scratch, inner, NULL) != 1 ||
        EVP_MD_CTX_copy_ex(scratch, pad_out) != 1 ||
        EVP_DigestUpdate(scratch, inner, sizeof inner) != 1 ||
        EVP_DigestFinal_ex(scratch, out, NULL) != 1)
        abort();
}

static void fast_prf_free(void)
{
    EVP_MD_CTX_free(pad_in);
    EVP_MD_CTX_free(pad_out);
    EVP_MD_CTX_free(scratch);
}

static void count_word(void *ctx, const char *w, size_t n)
{
    (void)w;
    (void)n;
    __atomic_add_fetch((size_t *)ctx, 1, __ATOMIC_RELAXED);
}

static double elapsed(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void test_rate(void **state)
{
    (void)state;
    enum { NDOCS = 1000, NWORDS = 5000 };
    static char words[NWORDS][12];
    for (int i = 0; i < NWORDS; i++) {
        int len = 3 + (int)(next_rand() % 8);
        for (int k = 0; k < len; k++)
            words[i][k] = (char)('a' + next_rand() % 26);
        words[i][len] = '\0';
    }
    char dir[400];
    snprintf(dir, sizeof dir, "%s/rate", tmpdir);
    mv_xap_opts o = {1, 1};
    size_t nwords = 0;
    fast_prf_init();
    uint8_t m1[32], m2[32];
    test_prf(NULL, "wxyz", 4, m1);
    fast_prf(NULL, "wxyz", 4, m2);
    assert_memory_equal(m1, m2, 32);
    mv_xap_hooks h = {fast_prf, NULL, count_word, &nwords, NULL};
    mv_xap *x = NULL;
    mv_err err = {0};
    assert_int_equal(mv_xap_open(dir, &o, &h, &x, &err), MV_OK);
    char *body = mv_xmalloc(6000);
    double t_make = 0, t_put = 0, t_commit = 0;
    struct timespec t0, t1, c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    for (int i = 1; i <= NDOCS; i++) {
        size_t n = 0;
        while (n < 5000) { /* Zipf-ish: common words often */
            uint64_t r = next_rand();
            int w = (int)((r % 7 == 0) ? r % NWORDS : r % 200);
            size_t l = strlen(words[w]);
            memcpy(body + n, words[w], l);
            body[n + l] = (r & 0xf) == 0 ? '.' : ' ';
            n += l + 1;
        }
        body[n] = '\0';
        mv_extract *e = xnew();
        xadd(e, MV_XS_ADDR, MV_XR_FROM, "sender@example.com");
        xadd(e, MV_XS_NAME, MV_XR_FROM, "Some Sender");
        xadd(e, MV_XS_ADDR, MV_XR_TO, "rcpt@example.org");
        xadd(e, MV_XS_SUBJECT, MV_XR_NONE, "weekly numbers and plans");
        xadd(e, MV_XS_MSGID, MV_XR_NONE, "id@example.com");
        xadd(e, MV_XS_BODY, MV_XR_NONE, body);
        mv_xdoc d = {(uint64_t)i, e, D1 + i, n, NULL, 0, NULL, 0, 0};
        mv_xap_doc *doc = NULL;
        struct timespec a, b, c;
        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(mv_xap_make_doc(x, &d, &doc, &err), MV_OK);
        clock_gettime(CLOCK_MONOTONIC, &b);
        assert_int_equal(mv_xap_put(x, doc, &err), MV_OK);
        clock_gettime(CLOCK_MONOTONIC, &c);
        t_make += elapsed(&a, &b);
        t_put += elapsed(&b, &c);
        xfree(e);
        if (i % 500 == 0) {
            assert_int_equal(mv_xap_commit(x, (uint64_t)i, &err), MV_OK);
            clock_gettime(CLOCK_MONOTONIC, &a);
            t_commit += elapsed(&c, &a);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double secs = elapsed(&t0, &t1);
    printf("xap rate: %d docs of ~5 KB, make_doc+put+commit, one thread: %.0f docs/s wall, "
           "%.0f docs/s CPU (wall per doc: make_doc %.0f us, put %.0f us, commit %.0f us)\n",
           NDOCS, NDOCS / secs, NDOCS / elapsed(&c0, &c1), t_make * 1e6 / NDOCS,
           t_put * 1e6 / NDOCS, t_commit * 1e6 / NDOCS);
    free(body);
    fast_prf_free();
    assert_true(nwords > 0);
    mv_xap_close(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_phrases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wildcard_custodian, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boolean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sort_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_stemming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_plaintext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_highlight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
