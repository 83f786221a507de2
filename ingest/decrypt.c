/* SPDX-License-Identifier: MIT */
/* decrypt.c - the shared result of escrow decryption. */
#include "decrypt.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "../store/store.h"

void mv_decrypt_limits_default(mv_decrypt_limits *l)
{
    l->max_output = (size_t)256 << 20;
    l->max_depth = 8;
    l->max_layers = 4;
}

const char *mv_sig_status_name(mv_sig_status s)
{
    static const char *const names[] = {"none",    "valid",          "valid-untrusted",
                                        "invalid", "unknown-signer", "error"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "error";
}

void mv_decrypt_result_free(mv_decrypt_result *r)
{
    if (!r)
        return;
    free(r->scheme);
    free(r->content_alg);
    free(r->key_alg);
    for (size_t i = 0; i < r->n_recipients; i++)
        free(r->recipients[i]);
    free(r->recipients);
    free(r->failure);
    if (r->out)
        OPENSSL_cleanse(r->out, r->out_len); /* plaintext: wiped before it is freed */
    free(r->out);
    free(r->signer);
    free(r->sig_detail);
    memset(r, 0, sizeof *r);
}

void mv_decryption_from_result(struct mv_decryption *d, const mv_decrypt_result *r)
{
    memset(d, 0, sizeof *d);
    d->decrypted = r->decrypted && r->out;
    d->scheme = r->scheme;
    d->content_alg = r->content_alg;
    d->key_alg = r->key_alg;
    d->key_id = r->key_id;
    d->recipients = r->recipients;
    d->n_recipients = r->n_recipients;
    d->failure = r->failure;
    d->sig = (int)r->sig;
    d->signer = r->signer;
    d->signing_time = r->signing_time;
    d->sig_detail = r->sig_detail;
    d->defects = r->defects;
}
