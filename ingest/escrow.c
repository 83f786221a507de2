/* SPDX-License-Identifier: MIT */
/* escrow.c - load escrowed keys from the store; dispatch decryption. */
#include "escrow.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "../lib/util.h"
#include "pgp.h"
#include "smime.h"

struct mv_escrow {
    mv_smime_keyring *x509;
    mv_pgp_keyring *pgp;
};

typedef struct load_ctx {
    mv_escrow *e;
} load_ctx;

static mv_status load_one(void *ctx, const mv_escrow_rec *rec, const uint8_t *m, size_t n,
                          mv_err *err)
{
    load_ctx *lc = ctx;
    mv_status st;
    if (strcmp(rec->kind, "x509") == 0) {
        mv_rd r;
        mv_rd_init(&r, m, n);
        size_t kl = 0, cl = 0;
        const uint8_t *k = mv_rd_lp(&r, &kl), *c = mv_rd_lp(&r, &cl);
        if (r.bad || r.left)
            return mv_err_set(err, MV_EMALFORMED, "escrow key #%u: stored material is damaged",
                              rec->id);
        st = mv_smime_keyring_add(lc->e->x509, rec->id, k, kl, c, cl, err);
    } else if (strcmp(rec->kind, "anchors") == 0) {
        /* S/MIME trust anchors (public certificates): the last stored set counts */
        st = mv_smime_keyring_set_anchors_pem(lc->e->x509, m, n, NULL, err);
    } else if (strcmp(rec->kind, "openpgp-public") == 0) {
        /* a public key, for verifying signatures only */
        st = mv_pgp_keyring_add_public(lc->e->pgp, m, n, err);
    } else if (strcmp(rec->kind, "openpgp") == 0) {
        st = mv_pgp_keyring_add(lc->e->pgp, rec->id, m, n, NULL, err);
    } else {
        return mv_err_set(err, MV_EMALFORMED, "escrow key #%u: unknown kind '%s'", rec->id,
                          rec->kind);
    }
    if (st)
        mv_err_prefix(err, "escrow key #%u: ", rec->id);
    return st;
}

mv_status mv_escrow_load(mv_store *s, mv_escrow **out, mv_err *err)
{
    *out = NULL;
    mv_escrow *e = mv_xcalloc(1, sizeof *e);
    e->x509 = mv_smime_keyring_new();
    e->pgp = mv_pgp_keyring_new(err);
    if (!e->pgp) {
        mv_escrow_free(e);
        return err && err->code ? err->code : MV_EINTERNAL;
    }
    load_ctx lc = {e};
    mv_status st = mv_store_escrow_list(s, load_one, &lc, 1, err);
    if (st) {
        mv_escrow_free(e);
        return st;
    }
    *out = e;
    return MV_OK;
}

void mv_escrow_free(mv_escrow *e)
{
    if (!e)
        return;
    mv_smime_keyring_free(e->x509);
    mv_pgp_keyring_free(e->pgp);
    free(e);
}

/* may_be_openpgp - whether p could be OpenPGP at all: a binary packet
 * (the first byte's high bit is set; DER and PEM never start so) or an
 * armor line.  librnp logs every failed parse to stderr, which a user
 * adding a PKCS#12 or PEM key should not see. */
static int may_be_openpgp(const uint8_t *p, size_t n)
{
    if (n > 0 && (p[0] & 0x80))
        return 1;
    return memmem(p, n, "-----BEGIN PGP ", 15) != NULL;
}

mv_status mv_escrow_prepare_anchors(const uint8_t *p, size_t n, char **kind, char **desc,
                                    mv_buf *material, mv_err *err)
{
    mv_pgp_info pi = {0};
    mv_err perr = {0};
    /* (without librnp an OpenPGP key would be reported as bad PEM) */
    if (may_be_openpgp(p, n) && mv_pgp_load(err) != MV_OK)
        return MV_ECRYPTO;
    if (may_be_openpgp(p, n) && mv_pgp_inspect(p, n, &pi, &perr) == MV_OK) {
        /* an OpenPGP public key whose signatures are to be recognised */
        mv_buf d = MV_BUF_INIT;
        mv_buf_printf(&d, "openpgp-public %s", pi.fingerprint);
        for (size_t i = 0; i < pi.n_uids; i++)
            mv_buf_printf(&d, "; uid %s", pi.uids[i]);
        mv_pgp_info_clear(&pi);
        mv_buf_append(material, p, n);
        *kind = mv_xstrdup("openpgp-public");
        *desc = (char *)mv_buf_steal(&d, NULL);
        return MV_OK;
    }
    mv_smime_keyring *kr = mv_smime_keyring_new();
    unsigned count = 0;
    mv_status st = mv_smime_keyring_set_anchors_pem(kr, p, n, &count, err);
    mv_smime_keyring_free(kr);
    if (st)
        return st;
    mv_buf_append(material, p, n);
    *kind = mv_xstrdup("anchors");
    *desc = mv_xasprintf("S/MIME trust anchors: %u certificate%s", count, count == 1 ? "" : "s");
    return MV_OK;
}

size_t mv_escrow_count(const mv_escrow *e)
{
    return mv_smime_keyring_count(e->x509) + mv_pgp_keyring_count(e->pgp);
}

int mv_escrow_detect(const uint8_t *msg, size_t n)
{
    return mv_smime_detect(msg, n) || mv_pgp_detect(msg, n);
}

/* steal - move a string out of a result (the result keeps NULL). */
static char *steal(char **p)
{
    char *s = *p;
    *p = NULL;
    return s;
}

/* merge_inner - fold into o the result of the other front end, run on o's
 * decrypted form (or on the message, when o found no encryption).  The
 * inner result is the deeper layer: its form replaces o's when it
 * decrypted, its signature is the one reported (o's is named in
 * sig_detail, as S/MIME names an outer signature), and what it was
 * encrypted to is added.  An inner entity that stays shut under an opened
 * outer layer is content of o's form, as an encrypted attachment is: o
 * keeps its form and its record.  outer names o's front end. */
static void merge_inner(mv_decrypt_result *o, mv_decrypt_result *in, const char *outer)
{
    o->defects |= in->defects;
    if (in->encrypted && (in->decrypted || !o->encrypted)) {
        if (!o->encrypted) {
            /* o was signed only: the inner encryption is the message's */
            free(o->scheme);
            free(o->content_alg);
            free(o->key_alg);
            free(o->failure);
            o->scheme = steal(&in->scheme);
            o->content_alg = steal(&in->content_alg);
            o->key_alg = steal(&in->key_alg);
            o->failure = steal(&in->failure);
            o->key_id = in->key_id;
            o->encrypted = 1;
        }
        for (size_t i = 0; i < in->n_recipients; i++) {
            size_t j = 0;
            while (j < o->n_recipients && strcmp(o->recipients[j], in->recipients[i]) != 0)
                j++;
            if (j < o->n_recipients)
                continue;
            o->recipients =
                mv_xrealloc(o->recipients, (o->n_recipients + 1) * sizeof *o->recipients);
            o->recipients[o->n_recipients++] = steal(&in->recipients[i]);
        }
        if (in->decrypted) {
            if (o->out)
                OPENSSL_cleanse(o->out, o->out_len); /* plaintext */
            free(o->out);
            o->out = in->out;
            o->out_len = in->out_len;
            in->out = NULL;
            in->out_len = 0;
            o->decrypted = 1;
            free(o->failure);
            o->failure = NULL;
        }
    }
    if (in->sig == MV_SIG_NONE)
        return;
    char *detail;
    if (o->sig != MV_SIG_NONE)
        detail =
            mv_xasprintf("%s%souter %s signature: %s%s%s%s%s", in->sig_detail ? in->sig_detail : "",
                         in->sig_detail ? "; " : "", outer, mv_sig_status_name(o->sig),
                         o->signer ? " by " : "", o->signer ? o->signer : "",
                         o->sig_detail ? ": " : "", o->sig_detail ? o->sig_detail : "");
    else
        detail = steal(&in->sig_detail);
    free(o->signer);
    free(o->sig_detail);
    o->sig = in->sig;
    o->signer = steal(&in->signer);
    o->signing_time = in->signing_time;
    o->sig_detail = detail;
}

mv_status mv_escrow_decrypt(const mv_escrow *e, const uint8_t *msg, size_t n,
                            const mv_decrypt_limits *lim, mv_decrypt_result *r, mv_err *err)
{
    memset(r, 0, sizeof *r);
    r->signing_time = INT64_MIN;
    /* One front end reads the message; the other then reads what it
     * opened (S/MIME inside OpenPGP and the reverse), or, when the first
     * found only signatures, the message itself (an S/MIME-signed entity
     * around PGP/MIME encryption, a digest holding both kinds).  No
     * further rounds: an entity nested deeper stays as it is. */
    int smime = mv_smime_detect(msg, n) != 0;
    if (!smime && !mv_pgp_detect(msg, n))
        return MV_OK;
    mv_status st = smime ? mv_smime_decrypt(e->x509, msg, n, lim, r, err)
                         : mv_pgp_decrypt(e->pgp, msg, n, lim, r, err);
    if (st)
        return st;
    const uint8_t *next = NULL;
    size_t next_len = 0;
    if (r->decrypted) {
        next = r->out;
        next_len = r->out_len;
    } else if (!r->encrypted && smime) {
        next = msg;
        next_len = n;
    }
    if (!next || !(smime ? mv_pgp_detect(next, next_len) : mv_smime_detect(next, next_len) != 0))
        return MV_OK;
    mv_decrypt_result in;
    st = smime ? mv_pgp_decrypt(e->pgp, next, next_len, lim, &in, err)
               : mv_smime_decrypt(e->x509, next, next_len, lim, &in, err);
    if (st) {
        mv_decrypt_result_free(r);
        return st;
    }
    merge_inner(r, &in, smime ? "S/MIME" : "OpenPGP");
    mv_decrypt_result_free(&in);
    return MV_OK;
}

static char *fmt_time(int64_t t)
{
    char b[32];
    return mv_xstrdup(mv_fmt_time(t, b, sizeof b));
}

mv_status mv_escrow_prepare(const uint8_t *p, size_t n, const uint8_t *p2, size_t n2,
                            const char *password, char **kind, char **desc, mv_buf *material,
                            mv_err *err)
{
    *kind = *desc = NULL;
    /* OpenPGP first: its inspector recognises only OpenPGP packets, while
     * the X.509 importer would report any non-PEM input as malformed. */
    mv_pgp_info pi = {0};
    mv_err perr = {0};
    if (may_be_openpgp(p, n) && mv_pgp_load(err) != MV_OK)
        return MV_ECRYPTO;
    if (may_be_openpgp(p, n) && mv_pgp_inspect(p, n, &pi, &perr) == MV_OK) {
        if (!pi.secret) {
            mv_pgp_info_clear(&pi);
            return mv_err_set(err, MV_EMALFORMED,
                              "this OpenPGP key has no secret key material (a public key "
                              "cannot decrypt)");
        }
        mv_status st = mv_pgp_export_secret(p, n, password, material, err);
        if (!st) {
            mv_buf d = MV_BUF_INIT;
            mv_buf_printf(&d, "openpgp %s", pi.fingerprint);
            for (size_t i = 0; i < pi.n_uids; i++)
                mv_buf_printf(&d, "; uid %s", pi.uids[i]);
            for (size_t i = 0; i < pi.n_subkeys; i++)
                mv_buf_printf(&d, "; subkey %s", pi.subkeys[i]);
            char *c = fmt_time(pi.created);
            mv_buf_printf(&d, "; created %s", c);
            free(c);
            if (pi.expires) {
                char *x = fmt_time(pi.expires);
                mv_buf_printf(&d, "; expires %s", x);
                free(x);
            }
            *kind = mv_xstrdup("openpgp");
            *desc = (char *)mv_buf_steal(&d, NULL);
        }
        mv_pgp_info_clear(&pi);
        return st;
    }
    mv_buf key = MV_BUF_INIT, cert = MV_BUF_INIT;
    mv_x509_info xi = {0};
    mv_status st = mv_smime_import(p, n, p2, n2, password, &key, &cert, &xi, err);
    if (!st) {
        mv_buf_put_lp(material, key.data, key.len);
        mv_buf_put_lp(material, cert.data, cert.len);
        char *nb = fmt_time(xi.not_before), *na = fmt_time(xi.not_after);
        *kind = mv_xstrdup("x509");
        *desc = mv_xasprintf("x509 subject %s; issuer %s; serial %s; ski %s; sha256 %s; %s; "
                             "valid %s to %s",
                             xi.subject, xi.issuer, xi.serial_hex, xi.ski_hex ? xi.ski_hex : "-",
                             xi.sha256_fpr, xi.key_alg, nb, na);
        free(nb);
        free(na);
    }
    mv_x509_info_clear(&xi);
    mv_buf_wipe(&key);
    mv_buf_free(&cert);
    return st;
}
