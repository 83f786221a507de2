/* SPDX-License-Identifier: MIT */
/* query.h - the query language of `mailvault search` (docs/search.md),
 * parsed into a tree that search/ turns into an index query.  Pure C, no
 * index and no keys: the parser is fuzzed on its own.
 *
 * Grammar (case-insensitive keywords):
 *   query   := or
 *   or      := and ("OR" and)*
 *   and     := unary (["AND"] unary)*          juxtaposition is AND
 *   unary   := ("NOT" | "-") unary | primary
 *   primary := "(" or ")" | field ":" value | word | "phrase" | word*
 *   value   := word | "phrase" | "(" or ")"      a parenthesised group
 *                                              applies the field to each leaf
 * Fields: from to cc bcc participant subject body attachment filename msgid
 * domain custodian date size has is hold.
 *
 * Ownership: a tree returned by mv_query_parse belongs to the caller
 * (mv_query_free).  Strings in it are NUL-terminated UTF-8, lower-cased
 * only where the node kind says so. */
#ifndef MV_SEARCH_QUERY_H
#define MV_SEARCH_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

typedef enum {
    MV_Q_AND = 1,  /* kids[0..n) all */
    MV_Q_OR,       /* any of kids */
    MV_Q_NOT,      /* kids[0] not (alone at top level: everything except) */
    MV_Q_ALL,      /* every message ("*" alone, or an empty query is an error) */
    MV_Q_WORD,     /* text: one word as typed (not lower-cased, not stemmed) */
    MV_Q_PHRASE,   /* text: words in this order, as typed */
    MV_Q_PREFIX,   /* text: a wildcard "invoic*", text without the '*', lower-cased */
    MV_Q_DATE,     /* lo..hi, UTC seconds, inclusive; open ends INT64_MIN / INT64_MAX */
    MV_Q_SIZE,     /* lo..hi bytes, inclusive; open end UINT64_MAX as hi */
    MV_Q_HAS,      /* text: "attachment" */
    MV_Q_IS,       /* text: "encrypted" "decrypted" "undecryptable" "signed" "held" */
} mv_qkind;

/* Which part of a message a text node searches. */
typedef enum {
    MV_QF_ANY = 0, /* free text: body, subject, attachment text and names,
                      names and addresses of sender and recipients */
    MV_QF_FROM,
    MV_QF_TO,
    MV_QF_CC,
    MV_QF_BCC, /* Bcc header and envelope recipients of every copy */
    MV_QF_PARTICIPANT, /* any of from to cc bcc */
    MV_QF_SUBJECT,
    MV_QF_BODY,
    MV_QF_ATTACHMENT, /* attachment text */
    MV_QF_FILENAME,
    MV_QF_MSGID,
    MV_QF_DOMAIN,    /* the domain of any participant */
    MV_QF_CUSTODIAN, /* a custodian's name (expanded to their addresses) */
    MV_QF_HOLD,      /* hold:MATTER */
} mv_qfield;

typedef struct mv_qnode {
    uint8_t kind;  /* mv_qkind */
    uint8_t field; /* mv_qfield, for WORD PHRASE PREFIX */
    uint32_t pos;  /* byte offset in the query where the node starts (for messages) */
    char *text;    /* WORD PREFIX HAS IS; PHRASE: the words separated by single spaces */
    int64_t lo, hi;   /* DATE */
    uint64_t slo, shi; /* SIZE */
    struct mv_qnode **kids;
    size_t n_kids;
} mv_qnode;

typedef struct mv_query_limits {
    size_t max_len;    /* bytes of query text (default 16384) */
    unsigned max_depth; /* nesting of parentheses and NOT (default 64) */
    unsigned max_nodes; /* nodes in the tree (default 4096) */
} mv_query_limits;

/* mv_query_parse - parse q (NUL-terminated UTF-8).  lim may be NULL.
 * *out owned by the caller.
 * @retval MV_EMALFORMED the query does not parse; err says where ("at
 *         column 12: ...", 1-based, in characters) and why
 * @retval MV_ELIMIT a limit was exceeded (named in the message) */
MV_NODISCARD mv_status mv_query_parse(const char *q, const mv_query_limits *lim, mv_qnode **out,
                                      mv_err *err);
void mv_query_free(mv_qnode *n);

/* mv_query_dump - a canonical one-line form of the tree, for tests and
 * `search --explain`: (and (word any "alice") (date 1704067200 1711929599))
 * Returned string owned by the caller (free). */
char *mv_query_dump(const mv_qnode *n);

/* mv_query_field_name - "from", "any" ... for messages. */
const char *mv_query_field_name(unsigned field);

#endif
