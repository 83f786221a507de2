/* SPDX-License-Identifier: MIT */
/* fuzz_journal.c - libFuzzer target: journal-report unwrapping, the
 * envelope-recipient text form, sub-address decoding and X-Gm-Original-To
 * over arbitrary bytes.  The first byte picks tight limits half the time. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../../ingest/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* utf8_or_null - NULL or a UTF-8 string: what every parsed field must be. */
static void utf8_or_null(const char *s)
{
    if (s && !g_utf8_validate(s, -1, NULL))
        __builtin_trap();
}

static void check_rcpt(const mv_env_rcpt *r)
{
    utf8_or_null(r->addr);
    utf8_or_null(r->expanded);
    utf8_or_null(r->forwarded);
    char *s = mv_env_rcpt_format(r);
    if (!s)
        __builtin_trap(); /* every parsed recipient must have a text form */
    mv_env_rcpt back;
    if (mv_env_rcpt_parse(s, &back) != 0 || back.role != r->role || strcmp(back.addr, r->addr) != 0 ||
        (!back.expanded) != (!r->expanded) || (!back.forwarded) != (!r->forwarded))
        __builtin_trap();
    char *again = mv_env_rcpt_format(&back);
    if (!again || strcmp(again, s) != 0)
        __builtin_trap();
    free(again);
    free(s);
    mv_env_rcpt_clear(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mv_journal_limits lim;
    mv_journal_limits_default(&lim);
    if (size > 0 && (data[0] & 1)) {
        lim.max_rcpt = 4;
        lim.max_body_bytes = 256;
        lim.max_depth = 2;
        lim.max_parts = 6;
        lim.max_header_bytes = 512;
        lim.max_addr_bytes = 32;
    }
    int detected = mv_journal_detect(data, size);
    mv_journal j;
    mv_status st = mv_journal_parse(data, size, &lim, &j, NULL);
    if (st != (detected ? MV_OK : MV_EMALFORMED))
        __builtin_trap();
    if (st == MV_OK) {
        if (j.n_rcpt > lim.max_rcpt)
            __builtin_trap();
        if (j.inner) {
            int in_input = j.inner >= data && j.inner_len <= size &&
                           (size_t)(j.inner - data) <= size - j.inner_len;
            int owned = j.inner == j.inner_owned;
            if (!in_input && !owned)
                __builtin_trap();
        }
        if (j.inner && !j.inner_len)
            __builtin_trap();
        for (size_t i = 0; i < j.n_rcpt; i++)
            check_rcpt(&j.rcpt[i]);
        utf8_or_null(j.sender);
        utf8_or_null(j.on_behalf_of);
        utf8_or_null(j.message_id);
        utf8_or_null(j.subject);
        char names[256];
        mv_journal_defects_str(j.defects, names, sizeof names);
        mv_journal_free(&j);
    }

    /* the same bytes as text for the string APIs */
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char *d = mv_subaddr_decode(s, "archive", '+');
    if (d) {
        mv_env_rcpt r = {MV_ROLE_DECODED, d, NULL, NULL};
        check_rcpt(&r);
        free(d);
    }
    mv_env_rcpt r;
    if (mv_env_rcpt_parse(s, &r) == 0) {
        char *f = mv_env_rcpt_format(&r);
        if (!f || strcmp(f, s) != 0)
            __builtin_trap(); /* parse accepts only what format writes */
        free(f);
        mv_env_rcpt_clear(&r);
    }
    free(s);

    char **addrs = NULL;
    size_t n = 0;
    if (mv_gm_original_to(data, size, &addrs, &n, NULL) == MV_OK) {
        if (n > MV_GM_MAX_ADDRS)
            __builtin_trap();
        for (size_t i = 0; i < n; i++) {
            mv_env_rcpt g = {MV_ROLE_ORIGINAL_TO, addrs[i], NULL, NULL};
            check_rcpt(&g);
        }
        mv_gm_addrs_free(addrs, n);
    } else if (addrs || n) {
        __builtin_trap();
    }
    return 0;
}
