/* SPDX-License-Identifier: MIT */
/* fuzz_query.c - libFuzzer target: mv_query_parse over arbitrary bytes
 * (a NUL-terminated copy), then the dump and the tree's invariants; small
 * limits half of the time so the limit paths are reached too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../search/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - normalised: no AND in AND, no OR in OR, no one-child AND/OR,
 * no NOT NOT; positions inside the query; text where the kind needs it. */
static void check(const mv_qnode *n, size_t len)
{
    if (n->pos > len)
        __builtin_trap();
    switch (n->kind) {
    case MV_Q_AND:
    case MV_Q_OR:
        if (n->n_kids < 2)
            __builtin_trap();
        for (size_t i = 0; i < n->n_kids; i++)
            if (n->kids[i]->kind == n->kind)
                __builtin_trap();
        break;
    case MV_Q_NOT:
        if (n->n_kids != 1 || n->kids[0]->kind == MV_Q_NOT)
            __builtin_trap();
        break;
    case MV_Q_WORD:
    case MV_Q_PHRASE:
    case MV_Q_PREFIX:
    case MV_Q_HAS:
    case MV_Q_IS:
        if (!n->text || !n->text[0] || n->n_kids)
            __builtin_trap();
        break;
    case MV_Q_DATE:
        if (n->lo > n->hi)
            __builtin_trap();
        break;
    case MV_Q_SIZE:
        if (n->slo > n->shi)
            __builtin_trap();
        break;
    case MV_Q_ALL:
        break;
    default:
        __builtin_trap();
    }
    for (size_t i = 0; i < n->n_kids; i++)
        check(n->kids[i], len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = malloc(size + 1);
    if (!q)
        return 0;
    memcpy(q, data, size);
    q[size] = '\0';
    mv_query_limits lim = {0};
    /* the first byte picks tight limits half of the time */
    if (size > 0 && (data[0] & 1)) {
        lim.max_len = 256;
        lim.max_depth = 4;
        lim.max_nodes = 16;
    }
    mv_qnode *t = NULL;
    mv_err err = {0};
    mv_status st = mv_query_parse(q, &lim, &t, &err);
    if (st == MV_OK) {
        if (!t)
            __builtin_trap();
        check(t, strlen(q));
        char *d = mv_query_dump(t);
        if (!d || d[0] != '(')
            __builtin_trap();
        free(d);
        mv_query_free(t);
    } else if (t || (st != MV_EMALFORMED && st != MV_ELIMIT) || !err.msg[0] ||
               (st == MV_EMALFORMED && strncmp(err.msg, "at column ", 10) != 0)) {
        __builtin_trap();
    }
    free(q);
    return 0;
}
