/* SPDX-License-Identifier: MIT */
/* import.c - walk sources, spool in synced batches, feed the pipeline. */
#include "import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../lib/digest.h"
#include "../lib/log.h"
#include "../lib/util.h"
#include "escrow.h"
#include "pipeline.h"
#include "source.h"

#define SPOOL_BATCH 256u
#define SPOOL_BATCH_BYTES (8u << 20)

typedef struct pending {
    mv_spool_item it;
    uint8_t *data, *raw;
    char *origin, *facts, *mail_from;
} pending;

typedef struct imp {
    mv_store *s;
    mv_pipeline *pl;
    const mv_import_opts *o;
    mv_import_result *r;
    pending batch[SPOOL_BATCH];
    size_t n, bytes;
} imp;

static void warn_fn(void *ctx, const char *path, const char *reason)
{
    imp *im = ctx;
    if (!im->o->quiet) {
        char safe[300];
        mv_log_warn("import: %s: %s", mv_log_safe(path, strlen(path), safe, sizeof safe), reason);
    }
}

static void pending_free(pending *p)
{
    free(p->data);
    free(p->raw);
    free(p->origin);
    free(p->facts);
    free(p->mail_from);
    memset(p, 0, sizeof *p);
}

/* flush - make the batch durable in the spool, then hand it on (the
 * bytes pass to the pipeline without a copy). */
static mv_status flush(imp *im, mv_err *err)
{
    mv_status st = MV_OK;
    if (!im->n)
        return MV_OK;
    mv_spool_item items[SPOOL_BATCH];
    for (size_t i = 0; i < im->n; i++)
        items[i] = im->batch[i].it;
    st = mv_spool_add(im->s, items, im->n, err);
    for (size_t i = 0; i < im->n; i++) {
        if (!st) {
            st = mv_pipeline_submit_take(im->pl, &items[i], err);
            im->batch[i].data = im->batch[i].raw = NULL;
        }
        pending_free(&im->batch[i]);
    }
    im->n = 0;
    im->bytes = 0;
    return st;
}

static mv_status replay_one(void *ctx, const mv_spool_item *it, mv_err *err)
{
    imp *im = ctx;
    im->r->replayed++;
    return mv_pipeline_submit(im->pl, it, err);
}

/* envelope_sender - the address token of an mbox separator line. */
static char *envelope_sender(const char *from_line)
{
    if (!from_line)
        return NULL;
    const char *e = strchr(from_line, ' ');
    size_t n = e ? (size_t)(e - from_line) : strlen(from_line);
    if (!n || (n == 14 && memcmp(from_line, "MAILER-DAEMON", 13) == 0))
        return NULL;
    return mv_xstrndup(from_line, n);
}

static mv_status add(imp *im, mv_source *src, const mv_source_msg *m, mv_err *err)
{
    uint8_t sha[32];
    char hex[65];
    unsigned int l = 32;
    const uint8_t *raw = m->raw ? m->raw : m->data;
    size_t raw_len = m->raw ? m->raw_len : m->len;
    mv_assert(EVP_Digest(raw, raw_len, sha, &l, mv_md_sha256(), NULL));
    mv_hex(sha, 32, hex);
    char *ident = mv_xasprintf("import\n%s\n%s", m->origin, hex);
    uint8_t cid[32];
    mv_store_copy_id(im->s, ident, strlen(ident), cid);
    free(ident);
    mv_copyid_state state;
    mv_status st = mv_store_copy_id_state(im->s, cid, &state, err);
    if (st)
        return st;
    for (size_t i = 0; i < im->n && state == MV_COPYID_NEW; i++)
        if (memcmp(im->batch[i].it.arr.copy_id, cid, 32) == 0)
            state = MV_COPYID_SPOOLED;
    if (state != MV_COPYID_NEW) {
        im->r->already++;
        return MV_OK;
    }
    pending *p = &im->batch[im->n++];
    memset(p, 0, sizeof *p);
    size_t own_raw_len = 0;
    if (m->raw && m->raw != m->data &&
        (m->raw_len != m->len || memcmp(m->raw, m->data, m->len) != 0)) {
        own_raw_len = m->raw_len;
        p->raw = mv_xmalloc(m->raw_len ? m->raw_len : 1);
        memcpy(p->raw, m->raw, m->raw_len);
    }
    /* The source's buffer itself, not a copy: a large message is held once. */
    size_t len = m->len;
    p->data = mv_source_take(src, &len);
    if (!p->data || len != m->len) {
        free(p->data);
        p->data = mv_xmalloc(m->len ? m->len : 1);
        memcpy(p->data, m->data, m->len);
    }
    p->origin = mv_xstrdup(m->origin);
    p->mail_from = envelope_sender(m->mbox_from);
    if (m->mbox_from)
        p->facts = mv_xasprintf("kind=%s; variant=%s; separator=From %s", m->kind,
                                m->mbox_variant ? m->mbox_variant : "", m->mbox_from);
    else
        p->facts = mv_xasprintf("kind=%s", m->kind);
    mv_arrival *a = &p->it.arr;
    a->received_us = mv_now_us();
    a->source = "import";
    a->origin = p->origin;
    a->mail_from = p->mail_from;
    a->facts = p->facts;
    a->note = "receipt time is the time of import";
    memcpy(a->copy_id, cid, 32);
    a->has_copy_id = 1;
    p->it.data = p->data;
    p->it.len = m->len;
    p->it.raw = p->raw;
    p->it.raw_len = own_raw_len;
    im->bytes += m->len + p->it.raw_len;
    if (im->n == SPOOL_BATCH || im->bytes >= SPOOL_BATCH_BYTES)
        return flush(im, err);
    return MV_OK;
}

mv_status mv_import(mv_store *s, char *const *paths, size_t npaths, const mv_import_opts *o,
                    mv_import_result *r, mv_err *err)
{
    mv_status st;
    mv_source *src = NULL;
    mv_source_limits lim;
    mv_progress *prog = NULL;
    mv_pipeline_opts po = {.workers = o ? o->workers : 0};
    mv_import_opts defaults = {0};
    imp *im = mv_xcalloc(1, sizeof *im);
    double t0 = mv_mono();
    memset(r, 0, sizeof *r);
    im->s = s;
    im->o = o ? o : &defaults;
    im->r = r;
    mv_source_limits_default(&lim);
    mv_escrow *esc = NULL;
    if ((st = mv_source_open(paths, npaths, &lim, warn_fn, im, &src, err)))
        goto out_nopipe;
    /* escrowed keys decrypt as the mail goes in (an archive without any
     * still records what encrypted mail was encrypted to) */
    if ((st = mv_escrow_load(s, &esc, err)))
        goto out_nopipe;
    po.escrow = esc;
    if ((st = mv_pipeline_start(s, &po, &im->pl, err)))
        goto out_nopipe;
    /* An earlier run's accepted arrivals go first: they were promised. */
    if ((st = mv_spool_replay(s, replay_one, im, err)))
        goto out;
    if (im->o->progress)
        prog = mv_progress_new("importing", mv_source_total_bytes(src));
    for (;;) {
        mv_source_msg m;
        st = mv_source_next(src, &m, err);
        if (st == MV_ENOTFOUND) {
            st = MV_OK;
            break;
        }
        if (st)
            goto out;
        r->found++;
        r->bytes += m.len;
        if ((st = add(im, src, &m, err)))
            goto out;
        if (prog && (r->found & 63) == 0) {
            mv_pipeline_stats ps;
            mv_pipeline_get_stats(im->pl, &ps);
            mv_progress_update(prog, ps.committed, mv_source_done_bytes(src));
        }
    }
    st = flush(im, err);
out:;
    mv_pipeline_stats ps;
    mv_err ferr = {0};
    mv_status fst = mv_pipeline_finish(im->pl, &ps, &ferr);
    if (!st && fst) {
        st = fst;
        if (err)
            *err = ferr;
    }
    r->imported = ps.new_messages;
    r->duplicates = ps.merged;
    r->already += ps.already;
    r->defective = ps.defective;
    r->failed = ps.failed;
    r->stored_bytes = ps.stored_bytes;
out_nopipe:
    if (src) {
        r->skipped_files = mv_source_skipped(src);
        r->failed += mv_source_failed(src);
    }
    for (size_t i = 0; i < im->n; i++)
        pending_free(&im->batch[i]);
    mv_progress_free(prog);
    mv_source_free(src);
    mv_escrow_free(esc);
    free(im);
    r->seconds = mv_mono() - t0;
    return st;
}
