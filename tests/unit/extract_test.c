/* SPDX-License-Identifier: MIT */
/* extract_test.c - mv_extract_message over messages built here: headers,
 * bodies in legacy charsets, HTML, attachments (text, PDF, DOCX, ODT, XLSX,
 * PPTX built in the test), nested messages, limits, hostile input, threads;
 * and the encoding's round trip and its refusal of damaged records.
 * mv_extract_attachments: the same parts as the extraction counts, with
 * their decoded bytes, attached messages byte for byte, the size limit,
 * and agreement with mv_extract_message over the fuzz corpora. */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>
#include <glib.h>

#include "../../lib/buf.h"
#include "../../search/extract.h"

/* ---- helpers ------------------------------------------------------------- */

static const char *const kind_names[] = {"?",       "ADDR",     "NAME",     "SUBJECT", "BODY",
                                         "ATTACH",  "FILENAME", "MIMETYPE", "MSGID",   "REF"};

static void dump(const mv_extract *x)
{
    if (!getenv("EXTRACT_DUMP"))
        return;
    fprintf(stderr, "flags=%#x date=%lld size=%llu att=%u n=%zu\n", x->flags,
            (long long)x->date, (unsigned long long)x->size, x->n_attachments, x->n);
    for (size_t i = 0; i < x->n; i++)
        fprintf(stderr, "  %-8s role=%u part=%u [%s]\n",
                x->s[i].kind < 10 ? kind_names[x->s[i].kind] : "??", x->s[i].role, x->s[i].part,
                x->s[i].text);
}

static int same(const mv_extract *a, const mv_extract *b)
{
    if (a->n != b->n || a->date != b->date || a->size != b->size ||
        a->n_attachments != b->n_attachments || a->flags != b->flags)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->s[i].kind != b->s[i].kind || a->s[i].role != b->s[i].role ||
            a->s[i].part != b->s[i].part || a->s[i].len != b->s[i].len ||
            memcmp(a->s[i].text, b->s[i].text, a->s[i].len + 1))
            return 0;
    return 1;
}

/* check - the promises every result keeps: clean UTF-8 text, valid kinds
 * and parts, and an encoding that decodes to the same thing. */
static void check(const mv_extract *x)
{
    for (size_t i = 0; i < x->n; i++) {
        const mv_xsection *s = &x->s[i];
        assert_true(s->kind >= MV_XS_ADDR && s->kind <= MV_XS_REF);
        assert_true(s->len > 0);
        assert_int_equal(strlen(s->text), s->len);
        assert_true(g_utf8_validate(s->text, (gssize)s->len, NULL));
        assert_true(s->part <= x->n_attachments);
        if (s->role)
            assert_true(s->kind == MV_XS_ADDR || s->kind == MV_XS_NAME);
    }
    mv_buf b = MV_BUF_INIT;
    mv_extract_encode(x, &b);
    mv_extract *y = NULL;
    mv_err err;
    assert_int_equal(mv_extract_decode(b.data, b.len, &y, &err), MV_OK);
    assert_true(same(x, y));
    mv_extract_free(y);
    mv_buf_free(&b);
}

static mv_extract *ex_lim(const void *p, size_t n, const mv_extract_limits *lim)
{
    mv_extract *x = NULL;
    mv_err err;
    assert_int_equal(mv_extract_message(p, n, lim, &x, &err), MV_OK);
    assert_non_null(x);
    assert_int_equal(x->size, n);
    dump(x);
    check(x);
    return x;
}

static mv_extract *ex(const char *s)
{
    return ex_lim(s, strlen(s), NULL);
}

/* nth - the i-th section of a kind (of a part, or any part when part < 0). */
static const mv_xsection *nth(const mv_extract *x, int kind, long part, int i)
{
    for (size_t k = 0; k < x->n; k++)
        if (x->s[k].kind == kind && (part < 0 || x->s[k].part == (uint32_t)part) && i-- == 0)
            return &x->s[k];
    return NULL;
}

static const char *text_of(const mv_extract *x, int kind, long part)
{
    const mv_xsection *s = nth(x, kind, part, 0);
    return s ? s->text : NULL;
}

static size_t count(const mv_extract *x, int kind)
{
    size_t n = 0;
    for (size_t k = 0; k < x->n; k++)
        n += x->s[k].kind == kind;
    return n;
}

static int has(const mv_extract *x, int kind, int role, long part, const char *text)
{
    for (size_t k = 0; k < x->n; k++)
        if (x->s[k].kind == kind && x->s[k].role == role &&
            (part < 0 || x->s[k].part == (uint32_t)part) && !strcmp(x->s[k].text, text))
            return 1;
    return 0;
}

static int contains(const mv_extract *x, int kind, long part, const char *needle)
{
    for (size_t k = 0; k < x->n; k++)
        if (x->s[k].kind == kind && (part < 0 || x->s[k].part == (uint32_t)part) &&
            strstr(x->s[k].text, needle))
            return 1;
    return 0;
}

/* b64 - base64 in 76-column lines (caller frees). */
static char *b64(const void *p, size_t n)
{
    gchar *flat = g_base64_encode(p, n);
    mv_buf b = MV_BUF_INIT;
    size_t len = strlen(flat);
    for (size_t i = 0; i < len; i += 76) {
        mv_buf_append(&b, flat + i, len - i < 76 ? len - i : 76);
        mv_buf_append_str(&b, "\n");
    }
    mv_buf_append(&b, "", 0);
    g_free(flat);
    return (char *)mv_buf_steal(&b, NULL);
}

/* legacy - UTF-8 text in another charset (caller frees with g_free). */
static char *legacy(const char *utf8, const char *charset)
{
    gsize w = 0;
    char *s = g_convert(utf8, -1, charset, "UTF-8", NULL, &w, NULL);
    assert_non_null(s);
    return s;
}

/* A message with one attachment, base64 encoded. */
static char *with_attachment(const char *ctype, const char *disp, const void *data, size_t n)
{
    char *enc = b64(data, n);
    mv_buf b = MV_BUF_INIT;
    mv_buf_printf(&b,
                  "From: a@example.com\nTo: b@example.com\nSubject: att\n"
                  "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BB\"\n\n"
                  "--BB\nContent-Type: text/plain\n\nsee attached\n"
                  "--BB\nContent-Type: %s\nContent-Disposition: %s\n"
                  "Content-Transfer-Encoding: base64\n\n%s--BB--\n",
                  ctype, disp, enc);
    free(enc);
    mv_buf_append(&b, "", 0);
    return (char *)mv_buf_steal(&b, NULL);
}

/* ---- documents built here ------------------------------------------------ */

typedef struct member {
    const char *name;
    const char *data;
    size_t len; /* 0: strlen(data) */
} member;

/* zip_build - a ZIP (deflate) holding the members, made with libarchive. */
static uint8_t *zip_build(const member *m, size_t n, size_t *len)
{
    size_t cap = 1 << 20;
    for (size_t i = 0; i < n; i++)
        cap += m[i].len ? m[i].len : strlen(m[i].data);
    uint8_t *buf = malloc(cap);
    size_t used = 0;
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        size_t l = m[i].len ? m[i].len : strlen(m[i].data);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_size(e, (la_int64_t)l);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        assert_int_equal(archive_write_data(a, m[i].data, l), (la_ssize_t)l);
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    *len = used;
    return buf;
}

static const char docx_xml[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
    "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">"
    "<w:body><w:p><w:r><w:t>The </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>pang</w:t></w:r>"
    "<w:r><w:t>olin</w:t></w:r><w:r><w:t xml:space=\"preserve\"> report &amp; "
    "caf\xC3\xA9</w:t></w:r></w:p>"
    "<w:p><w:r><w:t>Second</w:t><w:tab/><w:t>line</w:t></w:r></w:p>"
    "<w:p><w:r><w:instrText>PAGE</w:instrText></w:r></w:p></w:body></w:document>";

static uint8_t *docx_build(size_t *len)
{
    member m[] = {
        {"[Content_Types].xml", "<?xml version=\"1.0\"?><Types/>", 0},
        {"word/header1.xml", "<w:hdr xmlns:w=\"x\"><w:p><w:r><w:t>Confidential header</w:t>"
                             "</w:r></w:p></w:hdr>", 0},
        {"word/document.xml", docx_xml, 0},
    };
    return zip_build(m, 3, len);
}

static uint8_t *odt_build(size_t *len)
{
    member m[] = {
        {"mimetype", "application/vnd.oasis.opendocument.text", 0},
        {"content.xml",
         "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
         "<office:document-content xmlns:office=\"o\" xmlns:text=\"t\">"
         "<office:automatic-styles/><office:body><office:text>"
         "<text:h>Heading</text:h><text:p>The <text:span>aard</text:span>vark "
         "memo<text:tab/>tabbed<text:s/>spaced &lt;ok&gt;</text:p>"
         "<text:p>Zweite Zeile \xC3\xBC</text:p></office:text></office:body>"
         "</office:document-content>", 0},
    };
    return zip_build(m, 2, len);
}

/* pdf_build - a minimal PDF, one page per string, Helvetica text drawn with
 * Tj; the xref offsets are computed here. */
static uint8_t *pdf_build(const char *const *pages, int npages, size_t *len)
{
    mv_buf b = MV_BUF_INIT;
    int nobj = 3 + 2 * npages; /* catalog, pages, font, then page + content each */
    size_t *off = calloc((size_t)nobj + 1, sizeof *off);
    mv_buf_append_str(&b, "%PDF-1.4\n");
    off[1] = b.len;
    mv_buf_append_str(&b, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    off[2] = b.len;
    mv_buf_append_str(&b, "2 0 obj\n<< /Type /Pages /Kids [");
    for (int i = 0; i < npages; i++)
        mv_buf_printf(&b, "%d 0 R ", 4 + 2 * i);
    mv_buf_printf(&b, "] /Count %d >>\nendobj\n", npages);
    off[3] = b.len;
    mv_buf_append_str(&b, "3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                          "/Encoding /WinAnsiEncoding >>\nendobj\n");
    for (int i = 0; i < npages; i++) {
        int po = 4 + 2 * i, co = 5 + 2 * i;
        char content[512];
        int cl = snprintf(content, sizeof content, "BT /F1 18 Tf 72 700 Td (%s) Tj ET\n", pages[i]);
        off[po] = b.len;
        mv_buf_printf(&b,
                      "%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                      "/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>\nendobj\n",
                      po, co);
        off[co] = b.len;
        mv_buf_printf(&b, "%d 0 obj\n<< /Length %d >>\nstream\n%sendstream\nendobj\n", co, cl,
                      content);
    }
    size_t xref = b.len;
    mv_buf_printf(&b, "xref\n0 %d\n0000000000 65535 f \n", nobj + 1);
    for (int i = 1; i <= nobj; i++)
        mv_buf_printf(&b, "%010zu 00000 n \n", off[i]);
    mv_buf_printf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", nobj + 1,
                  xref);
    free(off);
    return mv_buf_steal(&b, len);
}

/* ---- headers ------------------------------------------------------------- */

static void test_plain(void **state)
{
    (void)state;
    const char *m = "Message-ID: <abc.123@Example.COM>\n"
                    "Date: Mon, 1 Jan 2024 10:00:00 +0100\n"
                    "From: Alice Smith <Alice.Smith@Example.com>\n"
                    "To: bob@example.org\n"
                    "Subject: Quarterly numbers\n"
                    "\n"
                    "Hello Bob,\r\nthe numbers are in.\n";
    mv_extract *x = ex(m);
    assert_true(has(x, MV_XS_NAME, MV_XR_FROM, 0, "Alice Smith"));
    assert_true(has(x, MV_XS_ADDR, MV_XR_FROM, 0, "alice.smith@example.com"));
    assert_true(has(x, MV_XS_ADDR, MV_XR_TO, 0, "bob@example.org"));
    assert_string_equal(text_of(x, MV_XS_SUBJECT, 0), "Quarterly numbers");
    assert_string_equal(text_of(x, MV_XS_MSGID, 0), "abc.123@Example.COM");
    assert_string_equal(text_of(x, MV_XS_BODY, 0), "Hello Bob,\nthe numbers are in.\n");
    assert_int_equal(x->date, 1704099600); /* 09:00:00 UTC */
    assert_int_equal(x->n_attachments, 0);
    assert_int_equal(x->flags, 0);
    mv_extract_free(x);
}

static void test_addresses(void **state)
{
    (void)state;
    const char *m = "From: \"Smith, John\" <JOHN@example.com>\n"
                    "To: Team: dave@example.org, \"Eve E.\" <Eve@Example.org>;, "
                    "=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>\n"
                    "Cc: undisclosed-recipients:;\n"
                    "Bcc: secret@example.org\n"
                    "Subject: x\n\nbody\n";
    mv_extract *x = ex(m);
    assert_true(has(x, MV_XS_NAME, MV_XR_FROM, 0, "Smith, John"));
    assert_true(has(x, MV_XS_ADDR, MV_XR_FROM, 0, "john@example.com"));
    assert_true(has(x, MV_XS_ADDR, MV_XR_TO, 0, "dave@example.org"));
    assert_true(has(x, MV_XS_ADDR, MV_XR_TO, 0, "eve@example.org"));
    assert_true(has(x, MV_XS_NAME, MV_XR_TO, 0, "Eve E."));
    assert_true(has(x, MV_XS_NAME, MV_XR_TO, 0, "J\xC3\xBCrgen M\xC3\xBCller"));
    assert_true(has(x, MV_XS_ADDR, MV_XR_TO, 0, "jm@example.de"));
    assert_true(has(x, MV_XS_ADDR, MV_XR_BCC, 0, "secret@example.org"));
    assert_false(contains(x, MV_XS_NAME, -1, "Team")); /* a group's label is not a name */
    assert_int_equal(count(x, MV_XS_ADDR), 5);
    /* name before address, in header order */
    assert_int_equal(x->s[0].kind, MV_XS_NAME);
    assert_int_equal(x->s[1].kind, MV_XS_ADDR);
    mv_extract_free(x);
}

static void test_subject_charsets(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *want;
    } cases[] = {
        {"=?UTF-8?B?0J/RgNC40LLQtdGCINC80LjRgA==?=", "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5"
                                                     "\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80"},
        {"=?ISO-8859-1?Q?Caf=E9_cr=E8me?=", "Caf\xC3\xA9 cr\xC3\xA8me"},
        {"=?utf-8?q?na=C3=AFve?= =?utf-8?q?_r=C3=A9sum=C3=A9?=", "na\xC3\xAFve r\xC3\xA9sum\xC3\xA9"},
        {"Plain subject", "Plain subject"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char m[512];
        snprintf(m, sizeof m, "From: a@example.com\nSubject: %s\n\nx\n", cases[i].raw);
        mv_extract *x = ex(m);
        assert_string_equal(text_of(x, MV_XS_SUBJECT, 0), cases[i].want);
        mv_extract_free(x);
    }
    /* broken: unknown charset, raw 8-bit Latin-1, invalid UTF-8 - best effort, clean */
    const char *broken[] = {
        "From: a@example.com\nSubject: =?x-no-such-charset?Q?Caf=E9?=\n\nx\n",
        "From: a@example.com\nSubject: Caf\xE9 au lait\n\nx\n",
        "From: a@example.com\nSubject: =?UTF-8?Q?bad=FF=FEbytes?=\n\nx\n",
    };
    for (size_t i = 0; i < 3; i++) {
        mv_extract *x = ex(broken[i]);
        const char *s = text_of(x, MV_XS_SUBJECT, 0);
        assert_non_null(s);
        assert_true(strstr(s, "Caf") || strstr(s, "bad"));
        mv_extract_free(x);
    }
    mv_extract *x = ex(broken[1]);
    assert_string_equal(text_of(x, MV_XS_SUBJECT, 0), "Caf\xC3\xA9 au lait");
    mv_extract_free(x);
}

static void test_references(void **state)
{
    (void)state;
    const char *m = "From: a@example.com\n"
                    "Message-ID: <child@example.com>\n"
                    "In-Reply-To: <parent@example.com>\n"
                    "References: <root@example.com> <mid@example.com>\n"
                    " <parent@example.com>\n"
                    "\nx\n";
    mv_extract *x = ex(m);
    assert_int_equal(count(x, MV_XS_REF), 3);
    assert_string_equal(nth(x, MV_XS_REF, 0, 0)->text, "parent@example.com");
    assert_string_equal(nth(x, MV_XS_REF, 0, 1)->text, "root@example.com");
    assert_string_equal(nth(x, MV_XS_REF, 0, 2)->text, "mid@example.com");
    assert_string_equal(text_of(x, MV_XS_MSGID, 0), "child@example.com");
    mv_extract_free(x);
    /* many references, repeated: each once, in order */
    mv_buf b = MV_BUF_INIT;
    mv_buf_append_str(&b, "From: a@example.com\nIn-Reply-To: <r5@x>\nReferences:");
    for (int i = 0; i < 60; i++)
        mv_buf_printf(&b, " <r%d@x>\n", i % 40);
    mv_buf_append_str(&b, "\nx\n");
    x = ex_lim(b.data, b.len, NULL);
    assert_int_equal(count(x, MV_XS_REF), 40);
    assert_string_equal(nth(x, MV_XS_REF, 0, 0)->text, "r5@x");
    assert_string_equal(nth(x, MV_XS_REF, 0, 1)->text, "r0@x");
    assert_string_equal(nth(x, MV_XS_REF, 0, 39)->text, "r39@x");
    mv_extract_free(x);
    mv_buf_free(&b);
    /* a Message-ID GMime cannot parse is kept as written */
    x = ex("From: a@example.com\nMessage-ID: <not an id>\n\nx\n");
    assert_non_null(text_of(x, MV_XS_MSGID, 0));
    mv_extract_free(x);
    /* no or a bad date */
    x = ex("From: a@example.com\n\nx\n");
    assert_true(x->date == INT64_MIN);
    mv_extract_free(x);
    x = ex("From: a@example.com\nDate: the day after tomorrow\n\nx\n");
    assert_true(x->date == INT64_MIN);
    mv_extract_free(x);
}

/* ---- bodies -------------------------------------------------------------- */

static void test_html_only(void **state)
{
    (void)state;
    const char *m =
        "From: a@example.com\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n"
        "<!DOCTYPE html><html><head><title>T</title>"
        "<style>p { color: red }</style>"
        "<script type=\"text/javascript\">var secret = \"<p>hidden</p>\";</script></head>"
        "<body><!-- a comment <p>gone</p> --><p>Fish &amp; chips &lt;3&gt; caf&eacute; "
        "&#233;&#xE9; &euro;&nbsp;5</p><div>Im<b>port</b>ant</div>"
        "line<br>break <a href=\"x>y\">link</a>&bogus; &#0; 5 < 6</body></html>\n";
    mv_extract *x = ex(m);
    const char *b = text_of(x, MV_XS_BODY, 0);
    assert_non_null(b);
    assert_non_null(strstr(b, "Fish & chips <3> caf\xC3\xA9 \xC3\xA9\xC3\xA9 \xE2\x82\xAC 5"));
    assert_non_null(strstr(b, "Important"));
    assert_non_null(strstr(b, "line\nbreak link"));
    assert_non_null(strstr(b, "&bogus;"));
    assert_non_null(strstr(b, "\xEF\xBF\xBD 5 < 6"));
    assert_null(strstr(b, "secret"));
    assert_null(strstr(b, "color"));
    assert_null(strstr(b, "gone"));
    assert_null(strstr(b, "hidden"));
    assert_null(strstr(b, "<p>"));
    assert_null(strstr(b, "  "));
    mv_extract_free(x);
}

static void test_alternative(void **state)
{
    (void)state;
    const char *m = "From: a@example.com\nMIME-Version: 1.0\n"
                    "Content-Type: multipart/alternative; boundary=\"AA\"\n\n"
                    "--AA\nContent-Type: text/plain; charset=us-ascii\n\nplain version\n"
                    "--AA\nContent-Type: text/html\n\n<p>html version</p>\n"
                    "--AA--\n";
    mv_extract *x = ex(m);
    assert_int_equal(count(x, MV_XS_BODY), 1);
    assert_string_equal(text_of(x, MV_XS_BODY, 0), "plain version");
    mv_extract_free(x);
    /* html first, plain later: plain still wins; related images are attachments */
    const char *m2 = "From: a@example.com\nMIME-Version: 1.0\n"
                     "Content-Type: multipart/alternative; boundary=\"AA\"\n\n"
                     "--AA\nContent-Type: multipart/related; boundary=\"RR\"\n\n"
                     "--RR\nContent-Type: text/html\n\n<p>html version</p>\n"
                     "--RR\nContent-Type: image/png\nContent-ID: <img1>\n"
                     "Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"
                     "--RR--\n"
                     "--AA\nContent-Type: text/plain\n\nplain version\n"
                     "--AA--\n";
    x = ex(m2);
    assert_int_equal(count(x, MV_XS_BODY), 1);
    assert_string_equal(text_of(x, MV_XS_BODY, 0), "plain version");
    assert_int_equal(x->n_attachments, 1);
    assert_true(has(x, MV_XS_MIMETYPE, 0, 1, "image/png"));
    mv_extract_free(x);
    /* html alone in the alternative */
    const char *m3 = "From: a@example.com\nMIME-Version: 1.0\n"
                     "Content-Type: multipart/alternative; boundary=\"AA\"\n\n"
                     "--AA\nContent-Type: text/html\n\n<p>only&nbsp;html</p>\n"
                     "--AA--\n";
    x = ex(m3);
    assert_string_equal(text_of(x, MV_XS_BODY, 0), "only html");
    mv_extract_free(x);
}

static void test_legacy_charsets(void **state)
{
    (void)state;
    static const struct {
        const char *charset, *utf8;
    } cases[] = {
        {"KOI8-R", "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, \xD0\xBC\xD0\xB8\xD1\x80"},
        {"ISO-8859-7", "\xCE\x9A\xCE\xB1\xCE\xBB\xCE\xB7\xCE\xBC\xCE\xAD\xCF\x81\xCE\xB1"},
        {"Shift_JIS", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD"
                      "\xE3\x82\xB9\xE3\x83\x88"},
        {"ISO-2022-JP", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"},
        {"windows-1252", "\xE2\x80\x9Cquoted\xE2\x80\x9D \xE2\x82\xAC" "5"},
        {"ISO-8859-1", "Stra\xC3\x9F" "e"},
        {"GB2312", "\xE4\xB8\xAD\xE6\x96\x87"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *body = legacy(cases[i].utf8, cases[i].charset);
        char *m = g_strdup_printf("From: a@example.com\nMIME-Version: 1.0\n"
                                  "Content-Type: text/plain; charset=\"%s\"\n"
                                  "Content-Transfer-Encoding: 8bit\n\n%s\n",
                                  cases[i].charset, body);
        mv_extract *x = ex(m);
        char *want = g_strdup_printf("%s\n", cases[i].utf8);
        assert_string_equal(text_of(x, MV_XS_BODY, 0), want);
        mv_extract_free(x);
        g_free(want);
        g_free(m);
        g_free(body);
    }
    /* quoted-printable KOI8-R, the usual transfer form */
    mv_extract *x = ex("From: a@example.com\nMIME-Version: 1.0\n"
                       "Content-Type: text/plain; charset=koi8-r\n"
                       "Content-Transfer-Encoding: quoted-printable\n\n=F0=D2=C9=D7=C5=D4\n");
    assert_string_equal(text_of(x, MV_XS_BODY, 0),
                        "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82\n");
    mv_extract_free(x);
    /* invalid UTF-8 claimed as UTF-8, an unknown charset, no charset */
    x = ex("From: a@example.com\nContent-Type: text/plain; charset=utf-8\n\nok \xFF\xC3 end\n");
    assert_string_equal(text_of(x, MV_XS_BODY, 0), "ok \xEF\xBF\xBD\xEF\xBF\xBD end\n");
    mv_extract_free(x);
    x = ex("From: a@example.com\nContent-Type: text/plain; charset=x-martian\n\nd\xE9j\xE0\n");
    assert_string_equal(text_of(x, MV_XS_BODY, 0), "d\xC3\xA9j\xC3\xA0\n");
    mv_extract_free(x);
    x = ex("From: a@example.com\n\nna\xC3\xAFve and NUL\x01 here\n");
    assert_string_equal(text_of(x, MV_XS_BODY, 0), "na\xC3\xAFve and NUL  here\n");
    mv_extract_free(x);
    /* a NUL byte in the body */
    static const char nul[] = "From: a@example.com\n\nab\0cd\n";
    x = ex_lim(nul, sizeof nul - 1, NULL);
    assert_string_equal(text_of(x, MV_XS_BODY, 0), "ab\xEF\xBF\xBD" "cd\n");
    mv_extract_free(x);
}

/* ---- attachments --------------------------------------------------------- */

static void test_attachments_text(void **state)
{
    (void)state;
    const char *m =
        "From: a@example.com\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"XX\"\n\n"
        "--XX\nContent-Type: text/plain\n\nbody text\n"
        "--XX\nContent-Type: text/csv; charset=utf-8\n"
        "Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rates.csv\n\n"
        "currency,rate\nEUR,1.08\n"
        "--XX\nContent-Type: application/octet-stream\n"
        "Content-Disposition: attachment;\n filename*0*=ISO-8859-1''r%E9sum%E9;\n"
        " filename*1=\"_final.bin\"\n"
        "Content-Transfer-Encoding: base64\n\nAAECAwQ=\n"
        "--XX\nContent-Type: text/html; name=\"=?UTF-8?Q?Men=C3=BC.html?=\"\n\n"
        "<b>Schnitzel</b> &amp; Pommes\n"
        "--XX\nContent-Type: text/plain\n\nsecond inline text\n"
        "--XX--\n";
    mv_extract *x = ex(m);
    assert_int_equal(x->n_attachments, 3);
    assert_true(has(x, MV_XS_FILENAME, 0, 1, "\xE2\x82\xAC rates.csv"));
    assert_true(has(x, MV_XS_MIMETYPE, 0, 1, "text/csv"));
    assert_true(has(x, MV_XS_ATTACH_TEXT, 0, 1, "currency,rate\nEUR,1.08"));
    assert_true(has(x, MV_XS_FILENAME, 0, 2, "r\xC3\xA9sum\xC3\xA9_final.bin"));
    assert_true(has(x, MV_XS_MIMETYPE, 0, 2, "application/octet-stream"));
    assert_null(nth(x, MV_XS_ATTACH_TEXT, 2, 0));
    assert_true(has(x, MV_XS_FILENAME, 0, 3, "Men\xC3\xBC.html"));
    assert_true(has(x, MV_XS_ATTACH_TEXT, 0, 3, "Schnitzel & Pommes"));
    /* both inline text parts are body */
    assert_int_equal(count(x, MV_XS_BODY), 2);
    assert_string_equal(nth(x, MV_XS_BODY, 0, 1)->text, "second inline text");
    /* document order: FILENAME, MIMETYPE, ATTACH_TEXT of part 1 */
    size_t i = 0;
    while (x->s[i].part != 1)
        i++;
    assert_int_equal(x->s[i].kind, MV_XS_FILENAME);
    assert_int_equal(x->s[i + 1].kind, MV_XS_MIMETYPE);
    assert_int_equal(x->s[i + 2].kind, MV_XS_ATTACH_TEXT);
    mv_extract_free(x);
}

static void test_nested_message(void **state)
{
    (void)state;
    const char *m =
        "From: Outer <outer@example.com>\nSubject: Fwd: inner\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"O\"\n\n"
        "--O\nContent-Type: text/plain\n\nsee below\n"
        "--O\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename=fwd.eml\n\n"
        "From: Carol <carol@example.org>\nTo: dave@example.org\n"
        "Subject: =?UTF-8?Q?Inner_subj=C3=A9ct?=\nDate: Tue, 2 Jan 2024 08:00:00 +0000\n"
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"I\"\n\n"
        "--I\nContent-Type: text/plain\n\ninner body about the wombat\n"
        "--I\nContent-Type: text/csv\nContent-Disposition: attachment; filename=inner.csv\n\n"
        "numbat,42\n"
        "--I--\n"
        "--O\nContent-Type: text/plain\nContent-Disposition: attachment; filename=last.txt\n\n"
        "last attachment\n"
        "--O--\n";
    mv_extract *x = ex(m);
    assert_int_equal(x->n_attachments, 3);
    assert_true(has(x, MV_XS_MIMETYPE, 0, 1, "message/rfc822"));
    assert_true(has(x, MV_XS_FILENAME, 0, 1, "fwd.eml"));
    assert_true(has(x, MV_XS_FILENAME, 0, 2, "inner.csv"));
    assert_true(has(x, MV_XS_MIMETYPE, 0, 2, "text/csv"));
    assert_true(has(x, MV_XS_FILENAME, 0, 3, "last.txt"));
    const char *t = text_of(x, MV_XS_ATTACH_TEXT, 1);
    assert_non_null(t);
    assert_non_null(strstr(t, "From: Carol <carol@example.org>\n"));
    assert_non_null(strstr(t, "To: dave@example.org\n"));
    assert_non_null(strstr(t, "Subject: Inner subj\xC3\xA9" "ct\n"));
    assert_non_null(strstr(t, "Date: Tue, 2 Jan 2024 08:00:00 +0000\n"));
    assert_non_null(strstr(t, "wombat"));
    assert_non_null(strstr(t, "numbat,42"));
    assert_null(nth(x, MV_XS_ATTACH_TEXT, 2, 0));
    assert_string_equal(text_of(x, MV_XS_ATTACH_TEXT, 3), "last attachment");
    /* the inner addresses are not the message's */
    assert_false(has(x, MV_XS_ADDR, MV_XR_FROM, 0, "carol@example.org"));
    assert_string_equal(text_of(x, MV_XS_BODY, 0), "see below");
    mv_extract_free(x);

    /* the same message as a base64 .eml attachment */
    const char *inner = "From: eve@example.net\nSubject: inside\n\nthe platypus text\n";
    char *m2 = with_attachment("application/octet-stream", "attachment; filename=\"old.eml\"",
                               inner, strlen(inner));
    x = ex(m2);
    assert_int_equal(x->n_attachments, 1);
    t = text_of(x, MV_XS_ATTACH_TEXT, 1);
    assert_non_null(t);
    assert_non_null(strstr(t, "From: eve@example.net\nSubject: inside\n"));
    assert_non_null(strstr(t, "platypus"));
    mv_extract_free(x);
    free(m2);

    /* a base64 .eml whose own parts are base64: decoding them must not
     * touch the bytes the inner message is parsed from */
    char *big = malloc(2001);
    for (int i = 0; i < 2000; i++)
        big[i] = (char)('a' + i % 26);
    big[2000] = '\0';
    char *bb = b64(big, 2000);
    char *inner2 = g_strdup_printf("From: f@example.net\nSubject: inner b64\nMIME-Version: 1.0\n"
                                   "Content-Type: multipart/mixed; boundary=\"q\"\n\n"
                                   "--q\nContent-Type: text/plain\n"
                                   "Content-Transfer-Encoding: base64\n\n%s"
                                   "--q\nContent-Type: text/plain; name=n.txt\n"
                                   "Content-Transfer-Encoding: x-uuencode\n\n"
                                   "begin 644 n.txt\n"
                                   "2=&AE(&5C:&ED;F$@<W!E86MS\n`\nend\n--q--\n",
                                   bb);
    m2 = with_attachment("message/rfc822", "attachment; filename=\"b.eml\"", inner2,
                         strlen(inner2));
    x = ex(m2);
    assert_int_equal(x->n_attachments, 2);
    t = text_of(x, MV_XS_ATTACH_TEXT, 1);
    assert_non_null(t);
    assert_non_null(strstr(t, "Subject: inner b64\n"));
    assert_non_null(strstr(t, "abcdefghijklmnopqrstuvwxyzabc"));
    assert_non_null(strstr(t, "the echidna speaks"));
    assert_true(has(x, MV_XS_FILENAME, 0, 2, "n.txt"));
    mv_extract_free(x);
    free(m2);
    g_free(inner2);
    free(bb);
    free(big);
}

/* nest - a message inside `levels` message/rfc822 parts. */
static char *nest(int levels)
{
    mv_buf b = MV_BUF_INIT;
    for (int i = 0; i < levels; i++)
        mv_buf_printf(&b, "From: l%d@example.com\nSubject: level %d\n"
                          "Content-Type: message/rfc822\n\n", i, i);
    mv_buf_printf(&b, "From: deep@example.com\nSubject: deepest\n\nthe bottom\n");
    mv_buf_append(&b, "", 0);
    return (char *)mv_buf_steal(&b, NULL);
}

static void test_depth(void **state)
{
    (void)state;
    char *m = nest(3);
    mv_extract *x = ex(m);
    assert_int_equal(x->flags & MV_XF_TOO_DEEP, 0);
    assert_int_equal(x->n_attachments, 3);
    assert_true(contains(x, MV_XS_ATTACH_TEXT, 3, "the bottom"));
    mv_extract_free(x);
    free(m);

    m = nest(12);
    x = ex(m);
    assert_true(x->flags & MV_XF_TOO_DEEP);
    assert_false(contains(x, MV_XS_ATTACH_TEXT, -1, "the bottom"));
    assert_true(contains(x, MV_XS_ATTACH_TEXT, 8, "level 8"));
    mv_extract_free(x);
    mv_extract_limits lim = {0};
    lim.max_depth = 1;
    x = ex_lim(m, strlen(m), &lim);
    assert_true(x->flags & MV_XF_TOO_DEEP);
    assert_true(contains(x, MV_XS_ATTACH_TEXT, 1, "level 1"));
    assert_false(contains(x, MV_XS_ATTACH_TEXT, -1, "level 2"));
    mv_extract_free(x);
    free(m);

    /* thousands of multipart levels: GMime and our walk both stop */
    mv_buf b = MV_BUF_INIT;
    mv_buf_append_str(&b, "From: a@example.com\n");
    for (int i = 0; i < 5000; i++)
        mv_buf_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i);
    mv_buf_append_str(&b, "Content-Type: text/plain\n\nbottom\n");
    x = ex_lim(b.data, b.len, NULL);
    assert_true(x->flags & (MV_XF_TOO_DEEP | MV_XF_MALFORMED));
    mv_extract_free(x);
    /* megabytes of it: GMime would spend seconds comparing boundaries, so
     * only the header block is read */
    for (int i = 5000; i < 60000; i++)
        mv_buf_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i);
    x = ex_lim(b.data, b.len, NULL);
    assert_true(x->flags & MV_XF_TRUNCATED);
    assert_true(x->flags & MV_XF_TOO_DEEP);
    assert_true(has(x, MV_XS_ADDR, MV_XR_FROM, 0, "a@example.com"));
    mv_extract_free(x);
    mv_buf_free(&b);
}

static void test_pdf(void **state)
{
    (void)state;
    const char *pages[] = {"Invoice for the capybara", "Page two mentions the okapi",
                           "Third page axolotl"};
    size_t n;
    uint8_t *pdf = pdf_build(pages, 3, &n);
    char *m = with_attachment("application/pdf", "attachment; filename=\"invoice.pdf\"", pdf, n);
    mv_extract *x = ex(m);
    assert_int_equal(x->flags & (MV_XF_PDF_FAILED | MV_XF_TRUNCATED), 0);
    assert_true(has(x, MV_XS_FILENAME, 0, 1, "invoice.pdf"));
    assert_true(has(x, MV_XS_MIMETYPE, 0, 1, "application/pdf"));
    assert_true(contains(x, MV_XS_ATTACH_TEXT, 1, "capybara"));
    assert_true(contains(x, MV_XS_ATTACH_TEXT, 1, "okapi"));
    assert_true(contains(x, MV_XS_ATTACH_TEXT, 1, "axolotl"));
    mv_extract_free(x);

    mv_extract_limits lim = {0};
    lim.max_pdf_pages = 2;
    x = ex_lim(m, strlen(m), &lim);
    assert_true(x->flags & MV_XF_TRUNCATED);
    assert_true(contains(x, MV_XS_ATTACH_TEXT, 1, "okapi"));
    assert_false(contains(x, MV_XS_ATTACH_TEXT, 1, "axolotl"));
    mv_extract_free(x);
    free(m);

    /* named .pdf but sent as octet-stream: found by extension */
    m = with_attachment("application/octet-stream", "attachment; filename=\"scan.PDF\"", pdf, n);
    x = ex(m);
    assert_true(contains(x, MV_XS_ATTACH_TEXT, 1, "capybara"));
    mv_extract_free(x);
    free(m);

    /* damaged: the first half only, then garbage */
    pdf[n / 2] = 0;
    m = with_attachment("application/pdf", "attachment; filename=\"cut.pdf\"", "%PDF-1.4\n%garbage", 18);
    x = ex(m);
    assert_true(x->flags & MV_XF_PDF_FAILED);
    assert_null(nth(x, MV_XS_ATTACH_TEXT, 1, 0));
    mv_extract_free(x);
    free(m);
    m = with_attachment("application/pdf", "attachment", pdf, n / 2);
    x = ex(m); /* whatever poppler recovers, no crash and clean text */
    mv_extract_free(x);
    free(m);
    free(pdf);
}

static void test_office(void **state)
{
    (void)state;
    size_t n;
    uint8_t *z = docx_build(&n);
    char *m = with_attachment("application/vnd.openxmlformats-officedocument."
                              "wordprocessingml.document",
                              "attachment; filename=\"report.docx\"", z, n);
    mv_extract *x = ex(m);
    assert_int_equal(x->flags & MV_XF_OFFICE_FAILED, 0);
    const char *t = text_of(x, MV_XS_ATTACH_TEXT, 1);
    assert_non_null(t);
    /* document first, then the header; runs joined, paragraphs on lines */
    assert_string_equal(t, "The pangolin report & caf\xC3\xA9\nSecond line\nConfidential header");
    mv_extract_free(x);
    free(m);
    /* the same bytes as octet-stream: found by extension */
    m = with_attachment("application/octet-stream", "attachment; filename=\"report.DOCX\"", z, n);
    x = ex(m);
    assert_true(contains(x, MV_XS_ATTACH_TEXT, 1, "pangolin"));
    mv_extract_free(x);
    free(m);
    free(z);

    z = odt_build(&n);
    m = with_attachment("application/vnd.oasis.opendocument.text",
                        "attachment; filename=\"memo.odt\"", z, n);
    x = ex(m);
    t = text_of(x, MV_XS_ATTACH_TEXT, 1);
    assert_non_null(t);
    assert_string_equal(t, "Heading\nThe aardvark memo tabbed spaced <ok>\nZweite Zeile \xC3\xBC");
    mv_extract_free(x);
    free(m);
    free(z);

    /* XLSX: shared strings, numbers; indexes of shared strings are not text */
    member xl[] = {
        {"xl/worksheets/sheet1.xml",
         "<worksheet><sheetData><row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c>"
         "<c r=\"B1\"><v>31337</v></c><c r=\"C1\" t=\"inlineStr\"><is><t>inline gnu</t></is>"
         "</c><c r=\"D1\"><f>SUM(B1)</f><v>31337</v></c></row></sheetData></worksheet>", 0},
        {"xl/sharedStrings.xml", "<sst><si><t>quokka</t></si><si><t>wallaby</t></si></sst>", 0},
    };
    z = zip_build(xl, 2, &n);
    m = with_attachment("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        "attachment; filename=\"t.xlsx\"", z, n);
    x = ex(m);
    t = text_of(x, MV_XS_ATTACH_TEXT, 1);
    assert_non_null(t);
    assert_string_equal(t, "quokka\nwallaby\n31337 inline gnu 31337");
    mv_extract_free(x);
    free(m);
    free(z);

    /* PPTX: slides in number order */
    member pp[] = {
        {"ppt/slides/slide10.xml", "<p:sld><a:p><a:r><a:t>tenth</a:t></a:r></a:p></p:sld>", 0},
        {"ppt/slides/slide2.xml", "<p:sld><a:p><a:r><a:t>second</a:t></a:r></a:p>"
                                  "<a:off x=\"12\"/></p:sld>", 0},
    };
    z = zip_build(pp, 2, &n);
    m = with_attachment("application/vnd.openxmlformats-officedocument.presentationml."
                        "presentation", "attachment; filename=\"deck.pptx\"", z, n);
    x = ex(m);
    assert_string_equal(text_of(x, MV_XS_ATTACH_TEXT, 1), "second\ntenth");
    mv_extract_free(x);
    free(m);
    free(z);

    /* not a zip, and a zip without document members */
    m = with_attachment("application/vnd.oasis.opendocument.text", "attachment; filename=x.odt",
                        "PK\3\4garbage", 11);
    x = ex(m);
    assert_true(x->flags & MV_XF_OFFICE_FAILED);
    mv_extract_free(x);
    free(m);
    member other[] = {{"readme.txt", "hello", 0}};
    z = zip_build(other, 1, &n);
    m = with_attachment("application/vnd.oasis.opendocument.text", "attachment; filename=x.odt",
                        z, n);
    x = ex(m);
    assert_true(x->flags & MV_XF_OFFICE_FAILED);
    mv_extract_free(x);
    free(m);
    free(z);
}

static void test_zip_bomb(void **state)
{
    (void)state;
    /* 16 MiB of one repeated run compresses to a few KiB */
    size_t big = (size_t)16 << 20;
    char *doc = malloc(big + 1);
    static const char head[] = "<w:document><w:body><w:p><w:r><w:t>";
    memcpy(doc, head, sizeof head - 1);
    memset(doc + sizeof head - 1, 'a', big - (sizeof head - 1));
    memcpy(doc + big - 10, " bomb end ", 10);
    doc[big] = '\0';
    member m[] = {{"word/document.xml", doc, big}};
    size_t n;
    uint8_t *z = zip_build(m, 1, &n);
    free(doc);
    assert_true(n < 200000);
    char *msg = with_attachment("application/vnd.openxmlformats-officedocument."
                                "wordprocessingml.document",
                                "attachment; filename=bomb.docx", z, n);
    mv_extract_limits lim = {0};
    lim.max_part_input = 1 << 20;
    mv_extract *x = ex_lim(msg, strlen(msg), &lim);
    assert_true(x->flags & MV_XF_TRUNCATED);
    const char *t = text_of(x, MV_XS_ATTACH_TEXT, 1);
    assert_non_null(t);
    assert_true(strlen(t) <= lim.max_part_input);
    assert_null(strstr(t, "bomb end"));
    mv_extract_free(x);
    /* with the default limits: text capped at max_part_text */
    x = ex(msg);
    assert_true(x->flags & MV_XF_TRUNCATED);
    assert_true(strlen(text_of(x, MV_XS_ATTACH_TEXT, 1)) <= ((size_t)1 << 20));
    mv_extract_free(x);
    /* many members: only max_members looked at */
    member many[50];
    char names[50][32];
    for (int i = 0; i < 50; i++) {
        snprintf(names[i], sizeof names[i], "ppt/slides/slide%d.xml", i + 1);
        many[i].name = names[i];
        many[i].data = "<a:t>slide</a:t>";
        many[i].len = 0;
    }
    free(z);
    free(msg);
    z = zip_build(many, 50, &n);
    msg = with_attachment("application/vnd.openxmlformats-officedocument.presentationml."
                          "presentation", "attachment; filename=many.pptx", z, n);
    lim.max_members = 10;
    x = ex_lim(msg, strlen(msg), &lim);
    assert_true(x->flags & MV_XF_TRUNCATED);
    const char *s = text_of(x, MV_XS_ATTACH_TEXT, 1);
    size_t k = 0;
    for (const char *q = s; (q = strstr(q, "slide")) != NULL; q++)
        k++;
    assert_int_equal(k, 10);
    mv_extract_free(x);
    free(z);
    free(msg);
}

/* ---- limits -------------------------------------------------------------- */

static void test_truncation(void **state)
{
    (void)state;
    /* 2-byte characters: a cut never splits one */
    mv_buf b = MV_BUF_INIT;
    mv_buf_append_str(&b, "From: a@example.com\nSubject: s\nContent-Type: text/plain; "
                          "charset=utf-8\n\n");
    for (int i = 0; i < 100; i++)
        mv_buf_append_str(&b, "\xC3\xA9");
    mv_buf_append_str(&b, "\n");
    for (size_t lim_text = 1; lim_text < 16; lim_text++) {
        mv_extract_limits lim = {0};
        lim.max_part_text = lim_text;
        mv_extract *x = ex_lim(b.data, b.len, &lim);
        assert_true(x->flags & MV_XF_TRUNCATED);
        const char *body = text_of(x, MV_XS_BODY, 0);
        if (lim_text < 2) {
            assert_null(body);
        } else {
            assert_int_equal(strlen(body), lim_text & ~(size_t)1);
        }
        mv_extract_free(x);
    }
    /* total text: headers count too, nothing past the limit */
    mv_extract_limits lim = {0};
    lim.max_text = 20;
    mv_extract *x = ex_lim(b.data, b.len, &lim);
    assert_true(x->flags & MV_XF_TRUNCATED);
    size_t total = 0;
    for (size_t i = 0; i < x->n; i++)
        total += x->s[i].len;
    assert_true(total <= 20);
    mv_extract_free(x);
    mv_buf_free(&b);
    /* sections */
    lim.max_text = 0;
    lim.max_sections = 3;
    x = ex("From: a@example.com\nTo: b@example.com, c@example.com, d@example.com\n\nbody\n");
    assert_int_equal(count(x, MV_XS_ADDR), 4);
    mv_extract_free(x);
    const char *m = "From: a@example.com\nTo: b@example.com, c@example.com, d@example.com\n\nbody\n";
    x = ex_lim(m, strlen(m), &lim);
    assert_int_equal(x->n, 3);
    assert_true(x->flags & MV_XF_TRUNCATED);
    mv_extract_free(x);
    /* input bytes of a part */
    mv_extract_limits li = {0};
    li.max_part_input = 8;
    x = ex_lim("From: a@example.com\n\n0123456789abcdef\n", 38, &li);
    assert_string_equal(text_of(x, MV_XS_BODY, 0), "01234567");
    assert_true(x->flags & MV_XF_TRUNCATED);
    mv_extract_free(x);
}

/* ---- hostile input ------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void test_hostile(void **state)
{
    (void)state;
    mv_extract *x = ex_lim("", 0, NULL);
    assert_true(x->flags & MV_XF_MALFORMED);
    assert_int_equal(x->n, 0);
    mv_extract_free(x);
    x = ex_lim(NULL, 0, NULL);
    mv_extract_free(x);
    static const char nuls[64] = {0};
    x = ex_lim(nuls, sizeof nuls, NULL);
    mv_extract_free(x);
    const char *odd[] = {
        "not a message at all",
        "\n\n\n",
        "From: a@example.com\nContent-Type: multipart/mixed\n\nno boundary\n",
        "From: a@example.com\nContent-Type: multipart/mixed; boundary=x\n\n--x\n",
        "From: a@example.com\nContent-Type: text/html\n\n<script>never closed",
        "From: a@example.com\nContent-Type: text/html\n\n<a href='never closed",
        "From: a@example.com\nContent-Type: text/html\n\n<!-- never closed",
        "From: a@example.com\nContent-Type: text/html\n\n&#99999999999999999999; &#x; &; &",
        "From: a@example.com\nContent-Type: text/html\n\n<<<<>>>></></ >< a",
        "From: a@example.com\nContent-Type: text/plain; charset=utf-16\n\nA\0B\0",
        "From: a@example.com\nContent-Type: text/plain; charset=ISO-2022-JP\n\n\x1b$B$\"",
        "From: a@example.com\nContent-Transfer-Encoding: base64\n\n!!!!====****\n",
        "From: a@example.com\nContent-Transfer-Encoding: quoted-printable\n\n=ZZ=\n=4",
        "From: a@example.com\nContent-Type: message/rfc822\n\n",
        "From: a@example.com\nContent-Type: application/pdf\n\n",
        "From: a@example.com\nContent-Type: application/vnd.oasis.opendocument.text\n\n",
        "From: <>\nTo: ;;;,,,<<>>\"\nCc: a@\nReferences: <<<>>>\nIn-Reply-To: <\n\nx",
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        x = ex_lim(odd[i], strlen(odd[i]), NULL);
        mv_extract_free(x);
    }
    /* random bytes, and random damage to a real message */
    const char *base = "From: Alice <a@example.com>\nTo: b@example.com\nSubject: =?UTF-8?Q?x?=\n"
                       "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n"
                       "--B\nContent-Type: text/html; charset=koi8-r\n\n<p>a&amp;b</p>\n"
                       "--B\nContent-Type: message/rfc822\n\nFrom: c@d\n\ninner\n"
                       "--B\nContent-Type: text/plain; name=a.txt\n"
                       "Content-Transfer-Encoding: base64\n\naGVsbG8=\n--B--\n";
    size_t bl = strlen(base);
    uint8_t buf[1024];
    for (int round = 0; round < 300; round++) {
        size_t n = next_rand() % sizeof buf;
        if (round & 1) {
            for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)next_rand();
        } else {
            n = bl;
            memcpy(buf, base, n);
            for (int k = 0; k < 4; k++)
                buf[next_rand() % n] = (uint8_t)next_rand();
            n -= next_rand() % 40;
        }
        x = ex_lim(buf, n, NULL);
        mv_extract_free(x);
    }
}

/* ---- encoding ------------------------------------------------------------ */

static void test_encoding(void **state)
{
    (void)state;
    const char *m = "From: Alice <a@example.com>\nTo: b@example.com\nSubject: S\n"
                    "Message-ID: <m@x>\nReferences: <r@x>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
                    "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n"
                    "--B\nContent-Type: text/plain\n\nbody\n"
                    "--B\nContent-Type: text/plain; name=n.txt\n\nattached text\n--B--\n";
    mv_extract *x = ex(m);
    mv_buf b = MV_BUF_INIT;
    mv_extract_encode(x, &b);
    assert_int_equal(b.data[0], 1);
    mv_extract *y = NULL;
    mv_err err;
    /* every cut is refused, as is anything appended */
    for (size_t cut = 0; cut < b.len; cut++) {
        assert_int_equal(mv_extract_decode(b.data, cut, &y, &err), MV_EMALFORMED);
        assert_null(y);
    }
    mv_buf_append_byte(&b, 0);
    assert_int_equal(mv_extract_decode(b.data, b.len, &y, &err), MV_EMALFORMED);
    b.len--;
    assert_int_equal(mv_extract_decode(b.data, b.len, &y, &err), MV_OK);
    assert_true(same(x, y));
    mv_extract_free(y);
    /* damaged fields: version, flags, count, kind, role, part, text */
    size_t first = 1 + 8 + 8 + 4 + 4 + 4; /* the first section's kind */
    static const struct {
        size_t off;
        uint8_t val;
    } bad[] = {
        {0, 2},  {0, 0},  {1 + 8 + 8 + 4, 0x80}, {1 + 8 + 8 + 4 + 4, 0xFF},
        {0, 0xFF},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mv_buf c = MV_BUF_INIT;
        mv_buf_append(&c, b.data, b.len);
        c.data[bad[i].off] = bad[i].val;
        assert_int_equal(mv_extract_decode(c.data, c.len, &y, &err), MV_EMALFORMED);
        mv_buf_free(&c);
    }
    /* every section: kinds 0 and past the last, a role on a non-address,
     * a part past n_attachments, a NUL and invalid UTF-8 in the text */
    size_t off = first;
    for (size_t i = 0; i < x->n; i++) {
        const uint8_t kinds[] = {0, MV_XS_REF + 1, 0xFF};
        for (size_t k = 0; k < sizeof kinds; k++) {
            mv_buf c = MV_BUF_INIT;
            mv_buf_append(&c, b.data, b.len);
            c.data[off] = kinds[k];
            assert_int_equal(mv_extract_decode(c.data, c.len, &y, &err), MV_EMALFORMED);
            mv_buf_free(&c);
        }
        mv_buf c = MV_BUF_INIT;
        mv_buf_append(&c, b.data, b.len);
        c.data[off + 1] = x->s[i].kind == MV_XS_ADDR || x->s[i].kind == MV_XS_NAME ? 9 : 1;
        assert_int_equal(mv_extract_decode(c.data, c.len, &y, &err), MV_EMALFORMED);
        mv_buf_reset(&c);
        mv_buf_append(&c, b.data, b.len);
        mv_be32_put(c.data + off + 2, x->n_attachments + 1);
        assert_int_equal(mv_extract_decode(c.data, c.len, &y, &err), MV_EMALFORMED);
        mv_buf_reset(&c);
        mv_buf_append(&c, b.data, b.len);
        c.data[off + 10] = 0;
        assert_int_equal(mv_extract_decode(c.data, c.len, &y, &err), MV_EMALFORMED);
        c.data[off + 10] = 0xC3;
        if (x->s[i].len == 1) /* a lone lead byte at the end */
            assert_int_equal(mv_extract_decode(c.data, c.len, &y, &err), MV_EMALFORMED);
        c.data[off + 10] = 0xFF;
        assert_int_equal(mv_extract_decode(c.data, c.len, &y, &err), MV_EMALFORMED);
        mv_buf_free(&c);
        off += 10 + x->s[i].len;
    }
    assert_int_equal(off, b.len);
    /* a count that claims more sections than bytes */
    mv_buf c = MV_BUF_INIT;
    mv_buf_append(&c, b.data, first);
    mv_be32_put(c.data + first - 4, 0xFFFFFFFFu);
    assert_int_equal(mv_extract_decode(c.data, c.len, &y, &err), MV_EMALFORMED);
    mv_buf_free(&c);
    mv_buf_free(&b);
    mv_extract_free(x);
    /* an empty result round-trips too */
    x = ex_lim("", 0, NULL);
    mv_extract_free(x);
}

/* ---- threads and speed --------------------------------------------------- */

typedef struct job {
    const char *msg;
    mv_extract *want;
    int ok;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    j->ok = 1;
    for (int i = 0; i < 30; i++) {
        mv_extract *x = NULL;
        if (mv_extract_message((const uint8_t *)j->msg, strlen(j->msg), NULL, &x, NULL) != MV_OK ||
            !same(x, j->want))
            j->ok = 0;
        mv_extract_free(x);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    size_t n1, n2;
    const char *pages[] = {"threaded pdf text"};
    uint8_t *pdf = pdf_build(pages, 1, &n1);
    uint8_t *docx = docx_build(&n2);
    char *msgs[4];
    msgs[0] = with_attachment("application/pdf", "attachment; filename=a.pdf", pdf, n1);
    msgs[1] = with_attachment("application/vnd.openxmlformats-officedocument."
                              "wordprocessingml.document", "attachment; filename=a.docx", docx, n2);
    char *k = legacy("\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82", "KOI8-R");
    msgs[2] = g_strdup_printf("From: a@example.com\nContent-Type: text/plain; charset=koi8-r\n\n%s\n", k);
    msgs[3] = g_strdup_printf("From: a@example.com\nContent-Type: text/html\n\n<p>a&amp;b</p>\n");
    g_free(k);
    job jobs[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        jobs[i].msg = msgs[i % 4];
        jobs[i].want = ex(msgs[i % 4]);
        assert_true(jobs[i].want->n > 0);
    }
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_true(jobs[i].ok);
        mv_extract_free(jobs[i].want);
    }
    free(msgs[0]);
    free(msgs[1]);
    g_free(msgs[2]);
    g_free(msgs[3]);
    free(pdf);
    free(docx);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* test_speed - a typical 5 KB text message; prints the figure, fails only
 * when far off (sanitizer builds are several times slower). */

/* Signatures and the PGP/MIME version part protect the message: they are
 * no attachment (has:attachment must not find every signed message). */
static void test_signatures_not_attachments(void **state)
{
    (void)state;
    mv_extract *x = ex("From: a@example.com\r\nSubject: signed\r\nMIME-Version: 1.0\r\n"
                       "Content-Type: multipart/signed; boundary=\"b\"; "
                       "protocol=\"application/pkcs7-signature\"\r\n\r\n"
                       "--b\r\nContent-Type: text/plain\r\n\r\nsigned words\r\n"
                       "--b\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
                       "Content-Disposition: attachment; filename=smime.p7s\r\n"
                       "Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n"
                       "--b--\r\n");
    assert_int_equal(x->n_attachments, 0);
    assert_int_equal(count(x, MV_XS_FILENAME), 0);
    assert_true(contains(x, MV_XS_BODY, 0, "signed words"));
    assert_true(x->flags & MV_XF_SIGNED);
    mv_extract_free(x);
    x = ex("From: a@example.com\r\nSubject: pgp\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/signed; boundary=\"b\"; "
           "protocol=\"application/pgp-signature\"\r\n\r\n"
           "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
           "--b\r\nContent-Type: application/pgp-signature\r\n\r\n"
           "-----BEGIN PGP SIGNATURE-----\r\nx\r\n-----END PGP SIGNATURE-----\r\n"
           "--b--\r\n");
    assert_int_equal(x->n_attachments, 0);
    mv_extract_free(x);
}

/* ---- attachments one by one (mv_extract_attachments) --------------------- */

typedef struct got_att {
    uint32_t part, container;
    char *filename, *name, *ext, *mimetype;
    int is_message, has_data;
    mv_buf data;
    uint64_t size;
} got_att;

typedef struct got {
    got_att a[64];
    size_t n;
    size_t stop_at; /* fail the callback at this attachment (1-based), 0 never */
} got;

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static mv_status collect_att(void *ctx, const mv_attachment *a, mv_err *err)
{
    got *g = ctx;
    assert_true(g->n < 64);
    assert_non_null(a->name);
    assert_true(*a->name);
    assert_non_null(a->ext);
    assert_non_null(a->mimetype);
    assert_true(a->data || a->len == 0);
    if (a->data)
        assert_int_equal(a->len, a->size);
    got_att *o = &g->a[g->n++];
    memset(o, 0, sizeof *o);
    o->part = a->part;
    o->container = a->container;
    o->filename = dup_or_null(a->filename);
    o->name = strdup(a->name);
    o->ext = strdup(a->ext);
    o->mimetype = strdup(a->mimetype);
    o->is_message = a->is_message;
    o->has_data = a->data != NULL;
    o->size = a->size;
    if (a->data)
        mv_buf_append(&o->data, a->data, a->len);
    mv_buf_append_byte(&o->data, 0);
    o->data.len--;
    if (g->stop_at && g->n == g->stop_at)
        return mv_err_set(err, MV_EIO, "stop here");
    return MV_OK;
}

static void got_free(got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->a[i].filename);
        free(g->a[i].name);
        free(g->a[i].ext);
        free(g->a[i].mimetype);
        mv_buf_free(&g->a[i].data);
    }
    g->n = 0;
}

/* attachments - the iterator over p[0..n), checked against the extraction
 * of the same bytes: the same count, parts 1..n in order, the file name
 * and media type the FILENAME and MIMETYPE sections of that part say. */
static void attachments(const void *p, size_t n, const mv_extract_limits *lim, size_t max,
                        got *g)
{
    memset(g, 0, sizeof *g);
    uint32_t count = 99;
    mv_err err;
    assert_int_equal(mv_extract_attachments(p, n, lim, max, collect_att, g, &count, &err), MV_OK);
    mv_extract *x = ex_lim(p, n, lim);
    assert_int_equal(count, g->n);
    assert_int_equal(x->n_attachments, g->n);
    for (size_t i = 0; i < g->n; i++) {
        got_att *a = &g->a[i];
        assert_int_equal(a->part, i + 1);
        assert_true(a->container < a->part);
        const char *fn = text_of(x, MV_XS_FILENAME, a->part);
        if (fn && a->filename)
            assert_string_equal(fn, a->filename);
        else
            assert_true(!fn == !a->filename);
        const char *mt = text_of(x, MV_XS_MIMETYPE, a->part);
        if (mt)
            assert_string_equal(mt, a->mimetype);
        if (a->filename)
            assert_string_equal(a->name, a->filename);
    }
    mv_extract_free(x);
}

static const char family_inner[] =
    "From: Inner <inner@example.org>\r\nTo: outer@example.com\r\n"
    "Subject: the forwarded one\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"in-1\"\r\n\r\n"
    "--in-1\r\nContent-Type: text/plain\r\n\r\ninner body\r\n"
    "--in-1\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=inner.csv\r\n"
    "\r\na,b\r\n1,2\r\n"
    "--in-1--\r\n";

static void test_iter_family(void **state)
{
    (void)state;
    size_t pdf_n, docx_n;
    const char *pages[] = {"family pdf"};
    uint8_t *pdf = pdf_build(pages, 1, &pdf_n);
    uint8_t *docx = docx_build(&docx_n);
    char *pdf64 = b64(pdf, pdf_n), *docx64 = b64(docx, docx_n);
    static const uint8_t bin[] = {0, 1, 2, 0xff, '\r', '\n', 'x'};
    char *bin64 = b64(bin, sizeof bin);
    mv_buf b = MV_BUF_INIT;
    mv_buf_printf(&b,
                  "From: a@example.com\r\nTo: b@example.com\r\nSubject: family\r\n"
                  "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"out-1\"\r\n\r\n"
                  "--out-1\r\nContent-Type: multipart/alternative; boundary=\"alt-1\"\r\n\r\n"
                  "--alt-1\r\nContent-Type: text/plain\r\n\r\nthe body\r\n"
                  "--alt-1\r\nContent-Type: text/html\r\n\r\n<p>the body</p>\r\n"
                  "--alt-1--\r\n"
                  "--out-1\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n"
                  "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
                  "Content-Transfer-Encoding: base64\r\n\r\n%s"
                  "--out-1\r\nContent-Type: application/vnd.openxmlformats-officedocument."
                  "wordprocessingml.document\r\n"
                  "Content-Disposition: attachment; filename*=UTF-8''%%C3%%BCbersicht%%20%%E2%%82"
                  "%%AC.DOCX\r\nContent-Transfer-Encoding: base64\r\n\r\n%s"
                  "--out-1\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Content-Disposition: attachment; filename=notes.txt\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                  "caf=C3=A9 =3D soft=\r\n break\r\n"
                  "--out-1\r\nContent-Type: message/rfc822\r\n"
                  "Content-Disposition: attachment; filename=\"fwd.eml\"\r\n\r\n%s\r\n"
                  "--out-1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment\r\n"
                  "Content-Transfer-Encoding: base64\r\n\r\n%s"
                  "--out-1\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n"
                  "Content-Transfer-Encoding: base64\r\n\r\n%s"
                  "--out-1\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                  "iVBORw0KGgo=\r\n"
                  "--out-1--\r\n",
                  pdf64, docx64, family_inner, pdf64, bin64);
    got g;
    attachments(b.data, b.len, NULL, 0, &g);
    assert_int_equal(g.n, 8);
    /* 1: a PDF, base64 undone */
    assert_string_equal(g.a[0].name, "report.pdf");
    assert_string_equal(g.a[0].ext, "pdf");
    assert_string_equal(g.a[0].mimetype, "application/pdf");
    assert_int_equal(g.a[0].data.len, pdf_n);
    assert_memory_equal(g.a[0].data.data, pdf, pdf_n);
    assert_int_equal(g.a[0].container, 0);
    assert_false(g.a[0].is_message);
    /* 2: a DOCX with an RFC 2231 name; the extension lower-cased */
    assert_string_equal(g.a[1].filename, "\xC3\xBC" "bersicht \xE2\x82\xAC.DOCX");
    assert_string_equal(g.a[1].ext, "docx");
    assert_int_equal(g.a[1].data.len, docx_n);
    assert_memory_equal(g.a[1].data.data, docx, docx_n);
    /* 3: quoted-printable undone, soft line break joined */
    assert_string_equal((char *)g.a[2].data.data, "caf\xC3\xA9 = soft break");
    /* 4: the attached message, byte for byte as it stands in the parent;
     * 5: its own attachment, inside it, numbered after it */
    assert_true(g.a[3].is_message);
    assert_string_equal(g.a[3].name, "fwd.eml");
    assert_string_equal(g.a[3].mimetype, "message/rfc822");
    assert_int_equal(g.a[3].data.len, strlen(family_inner));
    assert_memory_equal(g.a[3].data.data, family_inner, strlen(family_inner));
    assert_string_equal(g.a[4].name, "inner.csv");
    assert_int_equal(g.a[4].container, 4);
    assert_string_equal((char *)g.a[4].data.data, "a,b\r\n1,2");
    /* 6: no file name: one made from the part and the media type */
    assert_null(g.a[5].filename);
    assert_string_equal(g.a[5].name, "attachment-6.pdf");
    assert_int_equal(g.a[5].container, 0);
    assert_memory_equal(g.a[5].data.data, pdf, pdf_n);
    /* 7: a name from Content-Type's name parameter; binary bytes kept */
    assert_string_equal(g.a[6].name, "data.bin");
    assert_int_equal(g.a[6].data.len, sizeof bin);
    assert_memory_equal(g.a[6].data.data, bin, sizeof bin);
    /* 8: an inline image without a name is an attachment too */
    assert_string_equal(g.a[7].name, "attachment-8.png");
    assert_int_equal(g.a[7].size, 8);
    got_free(&g);

    /* the size limit: over it, no bytes, the size still told */
    attachments(b.data, b.len, NULL, 100, &g);
    assert_int_equal(g.n, 8);
    assert_false(g.a[0].has_data);
    assert_int_equal(g.a[0].size, pdf_n);
    assert_false(g.a[3].has_data);
    assert_int_equal(g.a[3].size, strlen(family_inner));
    assert_true(g.a[2].has_data);
    assert_true(g.a[4].has_data);
    got_free(&g);

    /* a failing callback stops the walk and its status comes back */
    memset(&g, 0, sizeof g);
    g.stop_at = 3;
    uint32_t count = 0;
    mv_err err;
    assert_int_equal(
        mv_extract_attachments(b.data, b.len, NULL, 0, collect_att, &g, &count, &err), MV_EIO);
    assert_int_equal(count, 3);
    assert_int_equal(g.n, 3);
    assert_string_equal(err.msg, "stop here");
    got_free(&g);

    /* LF line ends, the attached message last before the closing delimiter */
    const char *lf = "From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n"
                     "--b\nContent-Type: text/plain\n\nbody\n"
                     "--b\nContent-Type: message/rfc822\n\nFrom: x@example.com\nSubject: s\n\n"
                     "--not a boundary\n--bx\nlast line\n\n--b--\nepilogue\n";
    attachments(lf, strlen(lf), NULL, 0, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal((char *)g.a[0].data.data,
                        "From: x@example.com\nSubject: s\n\n--not a boundary\n--bx\nlast line\n");
    assert_string_equal(g.a[0].name, "attachment-1.eml");
    got_free(&g);

    mv_buf_free(&b);
    free(pdf);
    free(docx);
    free(pdf64);
    free(docx64);
    free(bin64);
}

static void test_iter_nested(void **state)
{
    (void)state;
    got g;
    /* a message whose body is an attached message, three deep: each one
     * ends where the bytes do */
    char *m = nest(3);
    attachments(m, strlen(m), NULL, 0, &g);
    assert_int_equal(g.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_true(g.a[i].is_message);
        assert_int_equal(g.a[i].container, (uint32_t)i);
        assert_non_null(strstr((char *)g.a[i].data.data, "the bottom"));
    }
    assert_string_equal((char *)g.a[2].data.data,
                        "From: deep@example.com\nSubject: deepest\n\nthe bottom\n");
    got_free(&g);
    free(m);
    /* past max_depth the extraction numbers no more parts, nor do we */
    m = nest(12);
    attachments(m, strlen(m), NULL, 0, &g);
    got_free(&g);
    mv_extract_limits lim = {0};
    lim.max_depth = 1;
    attachments(m, strlen(m), &lim, 0, &g);
    got_free(&g);
    free(m);

    /* a base64 .eml: the decoded bytes are its native, and its own
     * attachment (a message/rfc822 part inside it) is cut from them */
    const char *inner = "From: eve@example.net\nSubject: inside\n"
                        "Content-Type: multipart/mixed; boundary=q\n\n"
                        "--q\nContent-Type: text/plain\n\nplatypus\n"
                        "--q\nContent-Type: message/rfc822\n\nSubject: deeper\n\ndeep text\n"
                        "--q--\n";
    char *m2 = with_attachment("application/octet-stream", "attachment; filename=\"old.eml\"",
                               inner, strlen(inner));
    attachments(m2, strlen(m2), NULL, 0, &g);
    assert_int_equal(g.n, 2);
    assert_true(g.a[0].is_message);
    assert_string_equal((char *)g.a[0].data.data, inner);
    assert_int_equal(g.a[1].container, 1);
    assert_string_equal((char *)g.a[1].data.data, "Subject: deeper\n\ndeep text");
    got_free(&g);
    free(m2);

    /* signatures and encrypted containers are not attachments */
    const char *sig = "From: a@example.com\r\nMIME-Version: 1.0\r\n"
                      "Content-Type: multipart/signed; boundary=\"b\"; "
                      "protocol=\"application/pkcs7-signature\"\r\n\r\n"
                      "--b\r\nContent-Type: text/plain\r\n\r\nsigned words\r\n"
                      "--b\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
                      "Content-Disposition: attachment; filename=smime.p7s\r\n"
                      "Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n";
    attachments(sig, strlen(sig), NULL, 0, &g);
    assert_int_equal(g.n, 0);
    const char *p7m = "From: a@example.com\r\nMIME-Version: 1.0\r\n"
                      "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; "
                      "name=smime.p7m\r\nContent-Disposition: attachment; filename=smime.p7m\r\n"
                      "Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n";
    attachments(p7m, strlen(p7m), NULL, 0, &g);
    assert_int_equal(g.n, 0);

    /* a digest: parts without headers are messages by default */
    const char *digest = "From: list@example.com\nMIME-Version: 1.0\n"
                         "Content-Type: multipart/digest; boundary=d\n\n"
                         "--d\n\nFrom: one@example.com\nSubject: one\n\nfirst\n"
                         "--d\nContent-Type: message/rfc822\n\nFrom: two@example.com\n\nsecond\n"
                         "--d--\n";
    attachments(digest, strlen(digest), NULL, 0, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal((char *)g.a[0].data.data, "From: one@example.com\nSubject: one\n\nfirst");
    assert_string_equal((char *)g.a[1].data.data, "From: two@example.com\n\nsecond");
    got_free(&g);
}

/* test_iter_corpus - over every seed of the extract and mime fuzz corpora
 * (when run from the source tree): the same parts as the extraction, and
 * no more memory than the limit asks for. */
static void test_iter_corpus(void **state)
{
    (void)state;
    const char *dirs[] = {"tests/fuzz/corpus/extract", "tests/fuzz/corpus/mime"};
    size_t files = 0;
    for (size_t d = 0; d < 2; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir)
            continue;
        for (struct dirent *e; (e = readdir(dir));) {
            if (e->d_name[0] == '.')
                continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dirs[d], e->d_name);
            FILE *f = fopen(path, "rb");
            if (!f)
                continue;
            mv_buf b = MV_BUF_INIT;
            uint8_t chunk[65536];
            size_t r;
            while ((r = fread(chunk, 1, sizeof chunk, f)) > 0)
                mv_buf_append(&b, chunk, r);
            fclose(f);
            got g;
            attachments(b.data ? b.data : (const uint8_t *)"", b.len, NULL, 0, &g);
            got_free(&g);
            attachments(b.data ? b.data : (const uint8_t *)"", b.len, NULL, 16, &g);
            for (size_t i = 0; i < g.n; i++)
                assert_true(!g.a[i].has_data || g.a[i].size <= 16);
            got_free(&g);
            mv_buf_free(&b);
            files++;
        }
        closedir(dir);
    }
    print_message("attachments: %zu corpus files agree with the extraction\n", files);
}

static void test_speed(void **state)
{
    (void)state;
    mv_buf b = MV_BUF_INIT;
    mv_buf_append_str(&b, "Received: from mx.example.net by mx.example.com; Mon, 1 Jan 2024\n"
                          "Message-ID: <speed@example.com>\nDate: Mon, 1 Jan 2024 10:00:00 +0100\n"
                          "From: Alice Example <alice@example.com>\n"
                          "To: Bob <bob@example.org>, carol@example.org\n"
                          "Subject: Re: the quarterly report\nIn-Reply-To: <p@example.com>\n"
                          "References: <r@example.com> <p@example.com>\nMIME-Version: 1.0\n"
                          "Content-Type: text/plain; charset=utf-8\n"
                          "Content-Transfer-Encoding: quoted-printable\n\n");
    while (b.len < 5000)
        mv_buf_append_str(&b, "The numbers for the quarter look fine, caf=C3=A9 aside; see the "
                              "attached summary and let me know.\n");
    mv_extract *x = ex_lim(b.data, b.len, NULL);
    mv_extract_free(x);
    int iters = 2000;
    double t0 = now();
    for (int i = 0; i < iters; i++) {
        x = NULL;
        assert_int_equal(mv_extract_message(b.data, b.len, NULL, &x, NULL), MV_OK);
        mv_extract_free(x);
    }
    double us = (now() - t0) / iters * 1e6;
    print_message("extract: %.1f us per %zu-byte text message\n", us, b.len);
    assert_true(us < 2000);
    mv_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_subject_charsets),
        cmocka_unit_test(test_references),
        cmocka_unit_test(test_html_only),
        cmocka_unit_test(test_alternative),
        cmocka_unit_test(test_legacy_charsets),
        cmocka_unit_test(test_attachments_text),
        cmocka_unit_test(test_nested_message),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_pdf),
        cmocka_unit_test(test_office),
        cmocka_unit_test(test_zip_bomb),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_signatures_not_attachments),
        cmocka_unit_test(test_speed),
        cmocka_unit_test(test_iter_family),
        cmocka_unit_test(test_iter_nested),
        cmocka_unit_test(test_iter_corpus),
    };
    if (getenv("EXTRACT_FILTER"))
        cmocka_set_test_filter(getenv("EXTRACT_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
