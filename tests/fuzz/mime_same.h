/* SPDX-License-Identifier: MIT */
/* mime_same.h - do two summaries of one message agree in every field?
 * Shared by fuzz_mime and mime_test: the summary made with top-level
 * trace fields skipped must equal the one GMime makes from every field. */
#ifndef MV_TESTS_MIME_SAME_H
#define MV_TESTS_MIME_SAME_H

#include <string.h>

#include "../../ingest/mime.h"

static inline int mv_same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* mv_mime_same - 1 when a and b are the same summary. */
static inline int mv_mime_same(const mv_msginfo *a, const mv_msginfo *b)
{
    const mv_msgmeta *x = &a->meta, *y = &b->meta;
    if (!mv_same_str(x->from, y->from) || !mv_same_str(x->from_addr, y->from_addr) ||
        !mv_same_str(x->to, y->to) || !mv_same_str(x->cc, y->cc) || !mv_same_str(x->bcc, y->bcc) ||
        !mv_same_str(x->subject, y->subject) || !mv_same_str(x->date, y->date) ||
        !mv_same_str(x->message_id, y->message_id) || !mv_same_str(x->in_reply_to, y->in_reply_to))
        return 0;
    if (x->date_t != y->date_t || x->n_names != y->n_names || x->n_attachments != y->n_attachments ||
        x->header_bytes != y->header_bytes || x->n_parts != y->n_parts ||
        x->defects != y->defects || memcmp(x->sha256, y->sha256, 32) ||
        memcmp(x->dedup, y->dedup, 32))
        return 0;
    for (size_t i = 0; i < x->n_names; i++)
        if (!mv_same_str(x->attachments[i], y->attachments[i]))
            return 0;
    if (a->n_recipients != b->n_recipients || a->body_bytes != b->body_bytes)
        return 0;
    for (size_t i = 0; i < a->n_recipients; i++)
        if (strcmp(a->recipients[i], b->recipients[i]))
            return 0;
    return 1;
}

#endif
