/* SPDX-License-Identifier: MIT */
/* query_test.c - the search query language: tables of query -> canonical
 * dump and query -> error (status, column, message fragment), covering
 * every field, operator and precedence, groups, wildcards, dates, sizes,
 * has/is, international text, UTF-8 columns and the limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/buf.h"
#include "../../search/query.h"

typedef struct okcase {
    const char *q, *dump;
} okcase;

typedef struct errcase {
    const char *q;
    mv_status st;
    unsigned col; /* 0: the message has no column */
    const char *frag;
} errcase;

static void run_ok(const okcase *c, size_t n, const mv_query_limits *lim)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        mv_err err = {0};
        mv_qnode *t = NULL;
        mv_status st = mv_query_parse(c[i].q, lim, &t, &err);
        if (st != MV_OK) {
            print_error("query [%s]: status %d: %s\n", c[i].q, st, err.msg);
            bad++;
            continue;
        }
        char *d = mv_query_dump(t);
        if (strcmp(d, c[i].dump) != 0) {
            print_error("query [%s]\n   got  %s\n   want %s\n", c[i].q, d, c[i].dump);
            bad++;
        }
        free(d);
        mv_query_free(t);
    }
    assert_int_equal(bad, 0);
}

static void run_err(const errcase *c, size_t n, const mv_query_limits *lim)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        mv_err err = {0};
        mv_qnode *t = (mv_qnode *)&err; /* must come back NULL */
        mv_status st = mv_query_parse(c[i].q, lim, &t, &err);
        char want[32] = "";
        if (c[i].col)
            snprintf(want, sizeof want, "at column %u: ", c[i].col);
        if (st != c[i].st || t != NULL || strncmp(err.msg, want, strlen(want)) != 0 ||
            !strstr(err.msg, c[i].frag)) {
            print_error("query [%s]: status %d, message \"%s\"\n   want status %d, \"%s...%s\"\n",
                        c[i].q ? c[i].q : "(null)", st, err.msg, c[i].st, want, c[i].frag);
            bad++;
        }
        if (st == MV_OK)
            mv_query_free(t);
    }
    assert_int_equal(bad, 0);
}

#define RUN_OK(tab) run_ok(tab, sizeof tab / sizeof tab[0], NULL)
#define RUN_ERR(tab) run_err(tab, sizeof tab / sizeof tab[0], NULL)
#define M MV_EMALFORMED
#define L MV_ELIMIT

/* ---- words, phrases, operators, precedence ------------------------------- */

static const okcase ops[] = {
    {"alice", "(word any \"alice\")"},
    {"  alice  ", "(word any \"alice\")"},
    {"alice bob", "(and (word any \"alice\") (word any \"bob\"))"},
    {"alice AND bob", "(and (word any \"alice\") (word any \"bob\"))"},
    {"alice OR bob", "(or (word any \"alice\") (word any \"bob\"))"},
    /* lower-case keywords are words */
    {"alice and bob", "(and (word any \"alice\") (word any \"and\") (word any \"bob\"))"},
    {"a or b", "(and (word any \"a\") (word any \"or\") (word any \"b\"))"},
    {"not a", "(and (word any \"not\") (word any \"a\"))"},
    {"And Or Not", "(and (word any \"And\") (word any \"Or\") (word any \"Not\"))"},
    {"NOT alice", "(not (word any \"alice\"))"},
    {"-alice", "(not (word any \"alice\"))"},
    {"NOT NOT alice", "(word any \"alice\")"},
    {"--alice", "(word any \"alice\")"},
    {"NOT -alice", "(word any \"alice\")"},
    {"NOT NOT NOT alice", "(not (word any \"alice\"))"},
    {"e-mail", "(word any \"e-mail\")"},
    /* precedence NOT > AND > OR */
    {"a b OR c", "(or (and (word any \"a\") (word any \"b\")) (word any \"c\"))"},
    {"a OR b c", "(or (word any \"a\") (and (word any \"b\") (word any \"c\")))"},
    {"a OR b AND c", "(or (word any \"a\") (and (word any \"b\") (word any \"c\")))"},
    {"a AND b OR c AND d",
     "(or (and (word any \"a\") (word any \"b\")) (and (word any \"c\") (word any \"d\")))"},
    {"NOT a b", "(and (not (word any \"a\")) (word any \"b\"))"},
    {"NOT a OR b", "(or (not (word any \"a\")) (word any \"b\"))"},
    {"NOT (a b)", "(not (and (word any \"a\") (word any \"b\")))"},
    {"NOT(a OR b)", "(not (or (word any \"a\") (word any \"b\")))"},
    {"a -(b OR c)", "(and (word any \"a\") (not (or (word any \"b\") (word any \"c\"))))"},
    {"(a OR b) c", "(and (or (word any \"a\") (word any \"b\")) (word any \"c\"))"},
    {"a OR(b)", "(or (word any \"a\") (word any \"b\"))"},
    /* normalisation */
    {"(a b) c", "(and (word any \"a\") (word any \"b\") (word any \"c\"))"},
    {"a (b (c d))", "(and (word any \"a\") (word any \"b\") (word any \"c\") (word any \"d\"))"},
    {"(a OR b) OR c", "(or (word any \"a\") (word any \"b\") (word any \"c\"))"},
    {"a OR (b OR (c OR d))",
     "(or (word any \"a\") (word any \"b\") (word any \"c\") (word any \"d\"))"},
    {"((a))", "(word any \"a\")"},
    {"(((a OR b)))", "(or (word any \"a\") (word any \"b\"))"},
    {"(a OR b) (c OR d)",
     "(and (or (word any \"a\") (word any \"b\")) (or (word any \"c\") (word any \"d\")))"},
    {"a --(b c)", "(and (word any \"a\") (word any \"b\") (word any \"c\"))"},
    {"a OR NOT NOT (b OR c)", "(or (word any \"a\") (word any \"b\") (word any \"c\"))"},
    /* phrases */
    {"\"exact phrase\"", "(phrase any \"exact phrase\")"},
    {"\"  spaced   out\t words \"", "(phrase any \"spaced out words\")"},
    {"\"one\"", "(phrase any \"one\")"},
    {"\xe2\x80\x9csmart quotes\xe2\x80\x9d", "(phrase any \"smart quotes\")"},
    {"\"budg* report\"", "(phrase any \"budg* report\")"},
    {"\"AND OR NOT from:x\"", "(phrase any \"AND OR NOT from:x\")"},
    {"-\"draft copy\"", "(not (phrase any \"draft copy\"))"},
    {"a\"b c\"", "(and (word any \"a\") (phrase any \"b c\"))"},
    {"\"a\"\"b\"", "(and (phrase any \"a\") (phrase any \"b\"))"},
    {"\"dir\\file\"", "(phrase any \"dir\\\\file\")"},
    /* white space: tab, newline, no-break and ideographic spaces */
    {"a\tb\nc", "(and (word any \"a\") (word any \"b\") (word any \"c\"))"},
    {"a\xc2\xa0" "b", "(and (word any \"a\") (word any \"b\"))"},
    /* words with colons that are not fields */
    {"10:30", "(word any \"10:30\")"},
    {"3:1", "(word any \"3:1\")"},
    {"http://example.com/x?a=b", "(word any \"http://example.com/x?a=b\")"},
    {"dir\\file", "(word any \"dir\\\\file\")"},
    {"O'Brien", "(word any \"O'Brien\")"},
};

static void test_operators(void **state)
{
    (void)state;
    RUN_OK(ops);
}

/* ---- fields -------------------------------------------------------------- */

static const okcase fieldcases[] = {
    {"from:alice@example.com", "(word from \"alice@example.com\")"},
    {"FROM:Alice", "(word from \"Alice\")"},
    {"From:alice", "(word from \"alice\")"},
    {"to:bob", "(word to \"bob\")"},
    {"cc:carol", "(word cc \"carol\")"},
    {"bcc:dave", "(word bcc \"dave\")"},
    {"participant:eve", "(word participant \"eve\")"},
    {"subject:budget", "(word subject \"budget\")"},
    {"body:invoice", "(word body \"invoice\")"},
    {"attachment:contract", "(word attachment \"contract\")"},
    {"filename:report-2024.pdf", "(word filename \"report-2024.pdf\")"},
    {"filename:a_b/c.pdf", "(word filename \"a_b/c.pdf\")"},
    {"msgid:<abc@x>", "(word msgid \"abc@x\")"},
    {"msgid:abc@x", "(word msgid \"abc@x\")"},
    {"msgid:<a*b$c@x.example>", "(word msgid \"a*b$c@x.example\")"},
    {"msgid:-abc@x", "(word msgid \"-abc@x\")"},
    {"msgid:\"<abc@x>\"", "(word msgid \"abc@x\")"},
    {"domain:example.com", "(word domain \"example.com\")"},
    {"custodian:\"Jane Doe\"", "(phrase custodian \"Jane Doe\")"},
    {"custodian:jdoe", "(word custodian \"jdoe\")"},
    {"hold:MATTER-42", "(word hold \"MATTER-42\")"},
    {"hold:\"Smith v. Jones\"", "(phrase hold \"Smith v. Jones\")"},
    {"from:o'brien+tag@example.co.uk", "(word from \"o'brien+tag@example.co.uk\")"},
    {"from:\"Jane Doe\"", "(phrase from \"Jane Doe\")"},
    {"to:bob cc:carol bcc:dave",
     "(and (word to \"bob\") (word cc \"carol\") (word bcc \"dave\"))"},
    {"subject:re:budget", "(word subject \"re:budget\")"},
    {"from:AND", "(word from \"AND\")"},
    {"-from:bob", "(not (word from \"bob\"))"},
    {"NOT from:bob", "(not (word from \"bob\"))"},
    {"from:alice OR from:bob", "(or (word from \"alice\") (word from \"bob\"))"},
    /* groups apply the field to every leaf */
    {"subject:(budget OR forecast)", "(or (word subject \"budget\") (word subject \"forecast\"))"},
    {"subject:(budget -draft \"cash flow\")",
     "(and (word subject \"budget\") (not (word subject \"draft\")) (phrase subject \"cash "
     "flow\"))"},
    {"subject:(a (b OR c))",
     "(and (word subject \"a\") (or (word subject \"b\") (word subject \"c\")))"},
    {"subject:(budg* OR fore*)", "(or (prefix subject \"budg\") (prefix subject \"fore\"))"},
    {"from:(alice OR bob) subject:x",
     "(and (or (word from \"alice\") (word from \"bob\")) (word subject \"x\"))"},
    {"msgid:(<a@x> OR <b@y>)", "(or (word msgid \"a@x\") (word msgid \"b@y\"))"},
    {"subject:(NOT draft)", "(not (word subject \"draft\"))"},
    {"-subject:(a b)", "(not (and (word subject \"a\") (word subject \"b\")))"},
    {"subject:(x) y", "(and (word subject \"x\") (word any \"y\"))"},
    /* has: is: */
    {"has:attachment", "(has \"attachment\")"},
    {"HAS:Attachment", "(has \"attachment\")"},
    {"is:encrypted", "(is \"encrypted\")"},
    {"is:decrypted", "(is \"decrypted\")"},
    {"is:undecryptable", "(is \"undecryptable\")"},
    {"is:signed", "(is \"signed\")"},
    {"is:HELD", "(is \"held\")"},
    {"-is:encrypted has:attachment", "(and (not (is \"encrypted\")) (has \"attachment\"))"},
};

static void test_fields(void **state)
{
    (void)state;
    RUN_OK(fieldcases);
}

/* ---- wildcards ------------------------------------------------------------ */

static const okcase wild[] = {
    {"*", "(all)"},
    {"  *\t", "(all)"},
    {"invoic*", "(prefix any \"invoic\")"},
    {"INVOIC*", "(prefix any \"invoic\")"},
    {"abc*", "(prefix any \"abc\")"},
    {"subject:budg*", "(prefix subject \"budg\")"},
    {"from:ali*", "(prefix from \"ali\")"},
    {"-draf*", "(not (prefix any \"draf\"))"},
    {"\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92*", "(prefix any \"\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\")"},
    {"\xc3\x84RGER*", "(prefix any \"\xc3\xa4rger\")"},
    {"\xce\xa3\xce\x9f\xce\xa6*", "(prefix any \"\xcf\x83\xce\xbf\xcf\x86\")"},
    {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e*", "(prefix any \"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\")"},
};

static const errcase wild_err[] = {
    {"ab*", M, 1, "at least 3 characters before '*'"},
    {"x ab*", M, 3, "at least 3 characters"},
    {"\xe6\x97\xa5\xe6\x9c\xac*", M, 1, "at least 3 characters"},
    {"a*b", M, 2, "only at the end of a word"},
    {"*abc", M, 1, "only at the end of a word"},
    {"**", M, 1, "only at the end"},
    {"* a", M, 1, "must be the whole query"},
    {"(*)", M, 2, "must be the whole query"},
    {"from:*", M, 6, "must be the whole query"},
    {"domain:exa*", M, 11, "wildcards are not allowed in domain:"},
    {"custodian:jan*", M, 14, "wildcards are not allowed in custodian:"},
    {"hold:mat*", M, 9, "not allowed in hold:"},
    {"subject:(budget fo*)", M, 17, "at least 3"},
};

static void test_wildcards(void **state)
{
    (void)state;
    RUN_OK(wild);
    RUN_ERR(wild_err);
}

/* ---- dates ---------------------------------------------------------------- */

static const okcase dates[] = {
    {"date:2024", "(date 1704067200 1735689599)"},
    {"date:2024-03", "(date 1709251200 1711929599)"},
    {"date:2024-03-05", "(date 1709596800 1709683199)"},
    {"date:2024-3-5", "(date 1709596800 1709683199)"},
    {"date:2024-02-29", "(date 1709164800 1709251199)"},
    {"date:2000-02-29", "(date 951782400 951868799)"},
    {"date:2023-02", "(date 1675209600 1677628799)"},
    {"date:2100-02", "(date 4105123200 4107542399)"},
    {"date:2024-04", "(date 1711929600 1714521599)"},
    {"date:2024-12", "(date 1733011200 1735689599)"},
    {"date:1969-12-31", "(date -86400 -1)"},
    {"date:1600-03", "(date -11670912000 -11668233601)"},
    {"date:0001", "(date -62135596800 -62104060801)"},
    {"date:9999-12-31", "(date 253402214400 253402300799)"},
    {"date:2024-01-01..2024-03-31", "(date 1704067200 1711929599)"},
    {"date:2024-01-01..2024-03", "(date 1704067200 1711929599)"},
    {"date:2024-03-05..2024-03-05", "(date 1709596800 1709683199)"},
    {"date:2024..2024", "(date 1704067200 1735689599)"},
    {"date:2024-01..", "(date 1704067200 inf)"},
    {"date:..2024-03-31", "(date -inf 1711929599)"},
    {"date:>2024-01-01", "(date 1704153600 inf)"},
    {"date:>=2024-01-01", "(date 1704067200 inf)"},
    {"date:<2024-01-01", "(date -inf 1704067199)"},
    {"date:<=2024-01-01", "(date -inf 1704153599)"},
    {"date:>2024", "(date 1735689600 inf)"},
    {"date:<=2024-02", "(date -inf 1709251199)"},
    {"DATE:2024 alice", "(and (date 1704067200 1735689599) (word any \"alice\"))"},
    {"-date:2024", "(not (date 1704067200 1735689599))"},
};

static const errcase date_err[] = {
    {"date:2024-02-30", M, 14, "no day 30 in February 2024 (it has 29 days)"},
    {"date:2023-02-29", M, 14, "February 2023 (it has 28 days)"},
    {"date:1900-02-29", M, 14, "February 1900 (it has 28 days)"},
    {"date:2024-04-31", M, 14, "no day 31 in April 2024"},
    {"date:2024-01-00", M, 14, "no day 0 in January"},
    {"date:2024-13", M, 11, "no month 13"},
    {"date:2024-00", M, 11, "no month 0"},
    {"date:0000", M, 6, "no year 0000"},
    {"date:24", M, 6, "date: expects YYYY, YYYY-MM or YYYY-MM-DD"},
    {"date:20245", M, 6, "date: expects"},
    {"date:2024-", M, 6, "date: expects"},
    {"date:2024-03-05T10:00", M, 6, "date: expects"},
    {"date:2024-003", M, 6, "date: expects"},
    {"date:yesterday", M, 6, "not 'yesterday'"},
    {"date:..", M, 6, "a range needs at least one end"},
    {"date:2024..2023", M, 6, "ends before it starts"},
    {"date:2024-02..2024-01-31", M, 6, "ends before it starts"},
    {"date:2024...2025", M, 12, "date: expects"},
    {"date:2024..2025-02-30", M, 20, "no day 30"},
    {"date:>", M, 6, "a comparison needs a date"},
    {"date:>=2024..", M, 8, "date: expects"},
    {"date:=2024", M, 6, "date: expects"},
    {"date:", M, 1, "date: needs a value"},
    {"date:(2024)", M, 6, "takes one plain value, not a group"},
    {"date:\"2024\"", M, 6, "not a phrase"},
    {"date:2024-03-05)", M, 16, "unbalanced ')'"},
};

static void test_dates(void **state)
{
    (void)state;
    RUN_OK(dates);
    RUN_ERR(date_err);
}

/* ---- sizes ---------------------------------------------------------------- */

static const okcase sizes[] = {
    {"size:>1M", "(size 1048577 inf)"},
    {"size:<10K", "(size 0 10239)"},
    {"size:>=1000", "(size 1000 inf)"},
    {"size:<=1000", "(size 0 1000)"},
    {"size:100K..2M", "(size 102400 2097152)"},
    {"size:1M..", "(size 1048576 inf)"},
    {"size:..2M", "(size 0 2097152)"},
    {"size:5000", "(size 5000 5000)"},
    {"size:1MB", "(size 1048576 1048576)"},
    {"size:1mb", "(size 1048576 1048576)"},
    {"size:10Kb", "(size 10240 10240)"},
    {"size:10KiB", "(size 10240 10240)"},
    {"size:2G", "(size 2147483648 2147483648)"},
    {"size:2gb", "(size 2147483648 2147483648)"},
    {"size:1.5M", "(size 1572864 1572864)"},
    {"size:0.5k", "(size 512 512)"},
    {"size:100B", "(size 100 100)"},
    {"size:0", "(size 0 0)"},
    {"size:17179869183G", "(size 18446744072635809792 18446744072635809792)"},
    {"size:>=18446744073709551615", "(size 18446744073709551615 inf)"},
    {"size:1K..1K", "(size 1024 1024)"},
};

static const errcase size_err[] = {
    {"size:18446744073709551616", M, 6, "too large"},
    {"size:17179869184G", M, 6, "too large"},
    {"size:99999999999999999999999K", M, 6, "too large"},
    {"size:>18446744073709551615", M, 6, "nothing is larger"},
    {"size:<0", M, 6, "matches nothing"},
    {"size:2M..1M", M, 6, "ends before it starts"},
    {"size:1.5", M, 7, "whole number"},
    {"size:abc", M, 6, "size: expects a number of bytes"},
    {"size:10X", M, 6, "size: expects"},
    {"size:10KBB", M, 6, "size: expects"},
    {"size:1.M", M, 6, "size: expects"},
    {"size:-5", M, 6, "size: expects"},
    {"size:>", M, 6, "a comparison needs a size"},
    {"size:..", M, 6, "at least one end"},
    {"size:(1M)", M, 6, "not a group"},
};

static void test_sizes(void **state)
{
    (void)state;
    RUN_OK(sizes);
    RUN_ERR(size_err);
}

/* ---- errors --------------------------------------------------------------- */

static const errcase errs[] = {
    {"", M, 1, "empty query"},
    {"   ", M, 1, "empty query"},
    {NULL, M, 1, "empty query"},
    {"(a", M, 1, "unbalanced '(': no ')' closes it"},
    {"a (b", M, 3, "unbalanced '('"},
    {"((a)", M, 1, "unbalanced '('"},
    {"(", M, 1, "unbalanced '('"},
    {"subject:(", M, 9, "unbalanced '('"},
    {"a)", M, 2, "unbalanced ')': no '(' opens it"},
    {")", M, 1, "unbalanced ')'"},
    {"(a))", M, 4, "unbalanced ')'"},
    {"()", M, 1, "empty parentheses"},
    {"a ( )", M, 3, "empty parentheses"},
    {"subject:()", M, 9, "empty parentheses"},
    {"from:alice)", M, 11, "unbalanced ')'"},
    {"\"abc", M, 1, "unterminated quote"},
    {"a \"b c", M, 3, "unterminated quote"},
    {"\"\"", M, 1, "empty phrase"},
    {"a \"  \"", M, 3, "empty phrase"},
    {"frm:alice", M, 1, "unknown field 'frm', did you mean 'from'?"},
    {"frm:alice", M, 1, "(fields: from, to, cc, bcc, participant, subject, body, attachment, "
                        "filename, msgid, domain, custodian, date, size, has, is, hold)"},
    {"a subjct:x", M, 3, "did you mean 'subject'"},
    {"form:x", M, 1, "did you mean 'from'"},
    {"Attachement:x", M, 1, "unknown field 'Attachement', did you mean 'attachment'"},
    {"xyzzy:1", M, 1, "unknown field 'xyzzy' (fields: from,"},
    {"Re: budget", M, 1, "unknown field 'Re'"},
    {"mailto:bob@x", M, 1, "unknown field 'mailto'"},
    {"from:", M, 1, "from: needs a value right after the ':'"},
    {"from: alice", M, 1, "from: needs a value"},
    {"(from:)", M, 2, "from: needs a value"},
    {"subject:-draft", M, 9, "write -subject:word to exclude"},
    {"alice AND", M, 7, "AND needs a term after it"},
    {"AND alice", M, 1, "AND needs a term before it"},
    {"alice OR", M, 7, "OR needs a term after it"},
    {"OR alice", M, 1, "OR needs a term before it"},
    {"alice OR OR bob", M, 7, "OR needs a term after it"},
    {"alice AND OR bob", M, 7, "AND needs a term after it"},
    {"alice AND AND bob", M, 7, "AND needs a term after it"},
    {"(a OR )", M, 4, "OR needs a term after it"},
    {"NOT", M, 1, "NOT needs a term after it"},
    {"alice NOT", M, 7, "NOT needs a term after it"},
    {"NOT )", M, 1, "NOT needs a term after it"},
    {"NOT OR a", M, 1, "NOT needs a term after it"},
    {"-AND", M, 1, "'-' needs a term after it"},
    {"a -", M, 3, "'-' must be followed directly"},
    {"a - b", M, 3, "'-' must be followed directly"},
    {"(a -)", M, 4, "'-' must be followed"},
    {"subject:(budget from:alice)", M, 17, "'from:' inside subject:( ): a group takes one field"},
    {"subject:(a subject:b)", M, 12, "a group takes one field"},
    {"from:(x date:2024)", M, 9, "inside from:( )"},
    {"has:pdf", M, 5, "unknown value 'pdf' for has: (allowed: attachment)"},
    {"has:", M, 1, "has: needs a value"},
    {"is:foo", M, 4,
     "unknown value 'foo' for is: (allowed: encrypted, decrypted, undecryptable, signed, held)"},
    {"is:\"held\"", M, 4, "not a phrase"},
    {"msgid:<abc", M, 7, "unbalanced '<' '>'"},
    {"msgid:abc>", M, 7, "unbalanced '<' '>'"},
    {"msgid:<", M, 7, "unbalanced"},
    {"msgid:<>", M, 7, "empty message id"},
    {"msgid:\"a b\"", M, 7, "no spaces"},
    /* columns count characters, not bytes */
    {"\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 frm:x", M, 8, "unknown field 'frm'"},
    {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e (a", M, 5, "unbalanced '('"},
    {"\xce\x95\xce\xbb\xce\xbb\xce\xac\xce\xb4\xce\xb1 \"open", M, 8, "unterminated quote"},
    {"\xe2\x82\xac ab*", M, 3, "at least 3"},
    {"\xf0\x9f\x98\x80\xf0\x9f\x98\x80 a)", M, 5, "unbalanced ')'"},
    {"\xe6\x97\xa5\xe3\x80\x80 date:2024-02-30", M, 17, "no day 30"},
    /* invalid UTF-8 and control characters */
    {"ab\xff", M, 3, "invalid UTF-8 (byte 0xFF)"},
    {"\xc3\x28", M, 1, "invalid UTF-8"},
    {"\xc0\xaf", M, 1, "invalid UTF-8 (byte 0xC0)"},
    {"\xed\xa0\x80", M, 1, "invalid UTF-8"},
    {"\xf4\x90\x80\x80", M, 1, "invalid UTF-8"},
    {"abc\xe2\x82", M, 4, "invalid UTF-8"},
    {"\xd1\x8f \x80", M, 3, "invalid UTF-8 (byte 0x80)"},
    {"a\x01" "b", M, 2, "control character U+0001"},
    {"a\x7f", M, 2, "control character U+007F"},
    {"a\xc2\x85", M, 2, "control character U+0085"},
    {"\x1b[31m", M, 1, "control character U+001B"},
};

static void test_errors(void **state)
{
    (void)state;
    RUN_ERR(errs);
    /* the error text quotes at most a few dozen characters of the query */
    char q[300];
    memset(q, 'x', 200);
    memcpy(q + 200, ":y", 3);
    mv_err err = {0};
    mv_qnode *t = NULL;
    assert_int_equal(mv_query_parse(q, NULL, &t, &err), MV_EMALFORMED);
    assert_null(t);
    assert_non_null(strstr(err.msg, "unknown field 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' (fields:"));
    memset(q, 'x', 200);
    memcpy(q + 200, "ab", 3);
    memcpy(q, "date:", 5);
    assert_int_equal(mv_query_parse(q, NULL, &t, &err), MV_EMALFORMED);
    assert_true(strlen(err.msg) < 160);
    /* err may be NULL */
    assert_int_equal(mv_query_parse("(", NULL, &t, NULL), MV_EMALFORMED);
    assert_null(t);
}

/* ---- international text ---------------------------------------------------- */

static const okcase intl[] = {
    {"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
     "(word any \"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82\")"},
    {"\xe6\x9d\xb1\xe4\xba\xac \xe4\xbc\x9a\xe8\xad\xb0",
     "(and (word any \"\xe6\x9d\xb1\xe4\xba\xac\") (word any \"\xe4\xbc\x9a\xe8\xad\xb0\"))"},
    {"\xe6\x97\xa5\xe6\x9c\xac\xe3\x80\x80\xe6\x9d\xb1\xe4\xba\xac",
     "(and (word any \"\xe6\x97\xa5\xe6\x9c\xac\") (word any \"\xe6\x9d\xb1\xe4\xba\xac\"))"},
    {"subject:\"\xd0\x92\xd1\x81\xd1\x82\xd1\x80\xd0\xb5\xd1\x87\xd0\xb0 \xd0\xb2 "
     "\xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb5\"",
     "(phrase subject \"\xd0\x92\xd1\x81\xd1\x82\xd1\x80\xd0\xb5\xd1\x87\xd0\xb0 \xd0\xb2 "
     "\xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb5\")"},
    {"from:jos\xc3\xa9@ex\xc3\xa4mple.de", "(word from \"jos\xc3\xa9@ex\xc3\xa4mple.de\")"},
    {"\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 OR \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d",
     "(or (word any \"\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7\") (word any "
     "\"\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d\"))"},
    {"\xf0\x9f\x98\x80", "(word any \"\xf0\x9f\x98\x80\")"},
};

static void test_international(void **state)
{
    (void)state;
    RUN_OK(intl);
}

/* ---- limits ----------------------------------------------------------------- */

static char *repeat(const char *unit, size_t n, const char *tail)
{
    mv_buf b = MV_BUF_INIT;
    for (size_t i = 0; i < n; i++)
        mv_buf_append_str(&b, unit);
    mv_buf_append_str(&b, tail);
    return (char *)mv_buf_steal(&b, NULL);
}

static void expect(const char *q, const mv_query_limits *lim, mv_status want, const char *frag)
{
    mv_err err = {0};
    mv_qnode *t = NULL;
    mv_status st = mv_query_parse(q, lim, &t, &err);
    if (st != want || (frag && !strstr(err.msg, frag)))
        fail_msg("status %d \"%s\", want %d \"%s\"", st, err.msg, want, frag ? frag : "");
    if (st == MV_OK)
        assert_non_null(t);
    else
        assert_null(t);
    mv_query_free(t);
}

static void test_limits(void **state)
{
    (void)state;
    mv_query_limits big = {.max_len = 1 << 20};
    char *q = repeat("(", 100000, "a");
    expect(q, NULL, L, "longer than max_len (16384 bytes)");
    expect(q, &big, L, "at column 65: the query nests deeper than max_depth (64)");
    mv_query_limits huge = {.max_len = 1 << 20, .max_depth = 1000000};
    expect(q, &huge, L, "at column 257: the query nests deeper than max_depth (256)");
    free(q);
    q = repeat("-", 100000, "a");
    expect(q, &big, L, "max_depth (64)");
    expect(q, &huge, L, "max_depth (256)");
    free(q);
    q = repeat("NOT ", 100000, "a");
    expect(q, &big, L, "at column 257: the query nests deeper than max_depth (64)");
    free(q);
    q = repeat("(-", 100000, "a");
    expect(q, &huge, L, "max_depth (256)");
    free(q);
    /* 64 levels pass, 65 do not */
    q = repeat("(", 64, "a");
    char *c = repeat(")", 64, "");
    char *full = mv_xasprintf("%s%s", q, c);
    expect(full, NULL, MV_OK, NULL);
    free(full);
    free(q);
    free(c);
    q = repeat("(", 65, "a");
    c = repeat(")", 65, "");
    full = mv_xasprintf("%s%s", q, c);
    expect(full, NULL, L, "max_depth");
    free(full);
    free(q);
    free(c);
    mv_query_limits two = {.max_depth = 2};
    expect("((a))", &two, MV_OK, NULL);
    expect("(((a)))", &two, L, "at column 3: the query nests deeper than max_depth (2)");
    expect("NOT (a)", &two, MV_OK, NULL);
    expect("-(a)", &two, MV_OK, NULL);
    expect("NOT (NOT a)", &two, L, "at column 6: the query nests deeper than max_depth (2)");
    expect("subject:(-a)", &two, MV_OK, NULL);
    expect("(subject:(-a))", &two, L, "at column 11: ");
    /* length: exactly max_len passes */
    q = repeat("a", 16384, "");
    expect(q, NULL, MV_OK, NULL);
    free(q);
    q = repeat("a", 16385, "");
    expect(q, NULL, L, "max_len");
    free(q);
    mv_query_limits tiny = {.max_len = 5};
    expect("alice", &tiny, MV_OK, NULL);
    expect("alice ", &tiny, L, "max_len (5 bytes)");
    /* nodes: n words make n leaves and one AND */
    q = repeat("a ", 4095, "");
    expect(q, &big, MV_OK, NULL);
    free(q);
    q = repeat("a ", 4096, "");
    expect(q, &big, L, "more than max_nodes (4096)");
    free(q);
    mv_query_limits few = {.max_nodes = 3};
    expect("a b", &few, MV_OK, NULL);
    expect("a b c", &few, L, "at column 5: the query has more than max_nodes (3) terms");
    expect("a OR -b", &few, L, "max_nodes");
    /* a long flat query is linear, not quadratic */
    q = repeat("alice OR bob ", 1000, "x");
    expect(q, &big, MV_OK, NULL);
    free(q);
}

/* ---- tree details ------------------------------------------------------------- */

static void test_tree(void **state)
{
    (void)state;
    mv_qnode *t = NULL;
    mv_err err = {0};
    assert_int_equal(mv_query_parse("alice  from:bob -\"x y\"", NULL, &t, &err), MV_OK);
    assert_int_equal(t->kind, MV_Q_AND);
    assert_int_equal(t->n_kids, 3);
    assert_int_equal(t->pos, 0);
    assert_int_equal(t->kids[1]->pos, 7);
    assert_int_equal(t->kids[1]->field, MV_QF_FROM);
    assert_string_equal(t->kids[1]->text, "bob");
    assert_int_equal(t->kids[2]->kind, MV_Q_NOT);
    assert_int_equal(t->kids[2]->pos, 16);
    assert_int_equal(t->kids[2]->kids[0]->kind, MV_Q_PHRASE);
    assert_int_equal(t->kids[2]->kids[0]->pos, 17);
    mv_query_free(t);

    assert_int_equal(mv_query_parse("date:>=2024", NULL, &t, &err), MV_OK);
    assert_int_equal(t->kind, MV_Q_DATE);
    assert_true(t->lo == 1704067200 && t->hi == INT64_MAX);
    mv_query_free(t);
    assert_int_equal(mv_query_parse("date:<2024", NULL, &t, &err), MV_OK);
    assert_true(t->lo == INT64_MIN && t->hi == 1704067199);
    mv_query_free(t);
    assert_int_equal(mv_query_parse("size:>=1K", NULL, &t, &err), MV_OK);
    assert_true(t->slo == 1024 && t->shi == UINT64_MAX);
    mv_query_free(t);

    /* zero limits take the defaults */
    mv_query_limits zero = {0};
    assert_int_equal(mv_query_parse("a b", &zero, &t, &err), MV_OK);
    mv_query_free(t);

    assert_string_equal(mv_query_field_name(MV_QF_ANY), "any");
    assert_string_equal(mv_query_field_name(MV_QF_BCC), "bcc");
    assert_string_equal(mv_query_field_name(MV_QF_HOLD), "hold");
    assert_string_equal(mv_query_field_name(99), "?");
    mv_query_free(NULL);
}

static void test_dump(void **state)
{
    (void)state;
    char *d = mv_query_dump(NULL);
    assert_string_equal(d, "()");
    free(d);
    /* strings are escaped whatever made the tree */
    mv_qnode w = {.kind = MV_Q_WORD, .field = MV_QF_SUBJECT, .text = "say \"hi\" \\o/\x01"};
    mv_qnode *kids[] = {&w};
    mv_qnode n = {.kind = MV_Q_NOT, .kids = kids, .n_kids = 1};
    d = mv_query_dump(&n);
    assert_string_equal(d, "(not (word subject \"say \\\"hi\\\" \\\\o/\\x01\"))");
    free(d);
    mv_qnode s = {.kind = MV_Q_SIZE, .slo = 1, .shi = UINT64_MAX};
    d = mv_query_dump(&s);
    assert_string_equal(d, "(size 1 inf)");
    free(d);
    mv_qnode a = {.kind = MV_Q_DATE, .lo = INT64_MIN, .hi = INT64_MAX};
    d = mv_query_dump(&a);
    assert_string_equal(d, "(date -inf inf)");
    free(d);
    /* the dump is deterministic */
    const char *q = "from:(alice OR bob) subject:budg* date:2024 -is:held size:>1M";
    mv_qnode *t1 = NULL, *t2 = NULL;
    assert_int_equal(mv_query_parse(q, NULL, &t1, NULL), MV_OK);
    assert_int_equal(mv_query_parse(q, NULL, &t2, NULL), MV_OK);
    char *d1 = mv_query_dump(t1), *d2 = mv_query_dump(t2);
    assert_string_equal(d1, d2);
    assert_string_equal(d1, "(and (or (word from \"alice\") (word from \"bob\")) (prefix subject "
                            "\"budg\") (date 1704067200 1735689599) (not (is \"held\")) (size "
                            "1048577 inf))");
    free(d1);
    free(d2);
    mv_query_free(t1);
    mv_query_free(t2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operators),     cmocka_unit_test(test_fields),
        cmocka_unit_test(test_wildcards),     cmocka_unit_test(test_dates),
        cmocka_unit_test(test_sizes),         cmocka_unit_test(test_errors),
        cmocka_unit_test(test_international), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_tree),          cmocka_unit_test(test_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
