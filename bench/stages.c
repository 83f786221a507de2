/* SPDX-License-Identifier: MIT */
/* stages.c - what each stage of an import costs on one core, on the same
 * files as bench/import (compiled and run by it against libmv.a; not part
 * of the build).
 *
 *   stages FILE_LIST
 *
 * FILE_LIST names one file a line (one message each, without the From_
 * line of a one-message mbox, as the import sees it; empty and unreadable
 * ones are left out).  All of them are read into memory first; then each
 * stage runs over every message, single-threaded, and prints
 *   stage NAME  US_PER_MESSAGE  MESSAGES_PER_S
 * The stages: GMime's parse alone (a message built and freed: what the
 * import issue measured at 22,000/s), the summary the pipeline makes
 * (mv_mime_summarize: GMime or its direct path, the walk, the digests;
 * how many messages took the direct path is printed at the end), escrow detection,
 * SHA-256, zstd level 3 without and with a dictionary trained on the
 * first 300 messages (as the store does per bucket), and AES-256-GCM over
 * the message.  Exit 0, or 2 on bad arguments. */
#define ZDICT_STATIC_LINKING_ONLY
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createCDict_advanced, as the store */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gmime/gmime.h>
#include <openssl/evp.h>
#include <zdict.h>
#include <zstd.h>

#include "ingest/escrow.h"
#include "ingest/mime.h"

#define MAX_FILES 200000u
#define MAX_FILE_BYTES (64u << 20)
#define DICT_SAMPLES 300u
#define DICT_SAMPLE_BYTES 16384u
#define DICT_BYTES 112640u /* as store/store.c */

static uint8_t **msg;
static size_t *len, nmsg;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void load(const char *list)
{
    FILE *f = fopen(list, "r");
    char path[4096];
    if (!f)
        return;
    msg = calloc(MAX_FILES, sizeof *msg);
    len = calloc(MAX_FILES, sizeof *len);
    while (msg && len && nmsg < MAX_FILES && fgets(path, sizeof path, f)) {
        path[strcspn(path, "\n")] = '\0';
        FILE *m = fopen(path, "rb");
        if (!m)
            continue;
        uint8_t *b = malloc(MAX_FILE_BYTES);
        size_t n = b ? fread(b, 1, MAX_FILE_BYTES, m) : 0;
        fclose(m);
        if (!n) {
            free(b);
            continue;
        }
        /* a one-message mbox (SpamAssassin's files): the import hands
         * on the message without its From_ line, and so does this */
        if (n > 5 && !memcmp(b, "From ", 5)) {
            uint8_t *nl = memchr(b, '\n', n);
            if (nl && (size_t)(nl + 1 - b) < n) {
                size_t skip = (size_t)(nl + 1 - b);
                memmove(b, b + skip, n - skip);
                n -= skip;
            }
        }
        msg[nmsg] = realloc(b, n);
        len[nmsg++] = n;
    }
    fclose(f);
}

static void gmime_parse(const uint8_t *p, size_t n)
{
    GMimeStream *st = g_mime_stream_mem_new_with_buffer((const char *)p, n);
    GMimeParser *pa = g_mime_parser_new_with_stream(st);
    g_mime_parser_set_respect_content_length(pa, FALSE);
    GMimeParserOptions *o = g_mime_parser_options_new();
    GMimeMessage *m = g_mime_parser_construct_message(pa, o);
    g_object_unref(pa);
    g_object_unref(st);
    if (m)
        g_object_unref(m);
    g_mime_parser_options_free(o);
}

static void report(const char *name, double secs)
{
    printf("stage %-18s %8.1f %9.0f\n", name, secs * 1e6 / (double)nmsg, (double)nmsg / secs);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: stages FILE_LIST\n");
        return 2;
    }
    load(argv[1]);
    if (!nmsg) {
        fprintf(stderr, "stages: no message read from %s\n", argv[1]);
        return 0;
    }
    mv_mime_init();
    double t0 = now();
    for (size_t i = 0; i < nmsg; i++)
        gmime_parse(msg[i], len[i]);
    report("gmime-parse", now() - t0);

    t0 = now();
    size_t direct = 0;
    for (size_t i = 0; i < nmsg; i++) {
        mv_msginfo *mi = NULL;
        if (mv_mime_summarize(msg[i], len[i], NULL, &mi, NULL) == MV_OK) {
            direct += mi->direct != 0;
            mv_msginfo_free(mi);
        }
    }
    report("summary", now() - t0);

    t0 = now();
    size_t found = 0;
    for (size_t i = 0; i < nmsg; i++)
        found += mv_escrow_detect(msg[i], len[i]) != 0;
    report("escrow-detect", now() - t0);

    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdl;
    t0 = now();
    for (size_t i = 0; i < nmsg; i++)
        EVP_Digest(msg[i], len[i], md, &mdl, EVP_sha256(), NULL);
    report("sha256", now() - t0);

    size_t cap = ZSTD_compressBound(MAX_FILE_BYTES);
    uint8_t *out = malloc(cap + 16);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    t0 = now();
    for (size_t i = 0; i < nmsg; i++)
        ZSTD_compressCCtx(cc, out, cap, msg[i], len[i], 3);
    report("zstd-3", now() - t0);

    size_t ns = nmsg < DICT_SAMPLES ? nmsg : DICT_SAMPLES, at = 0;
    uint8_t *samples = malloc(ns * DICT_SAMPLE_BYTES), *dict = malloc(DICT_BYTES);
    size_t *sizes = malloc(ns * sizeof *sizes);
    for (size_t i = 0; i < ns; i++) {
        sizes[i] = len[i] < DICT_SAMPLE_BYTES ? len[i] : DICT_SAMPLE_BYTES;
        memcpy(samples + at, msg[i], sizes[i]);
        at += sizes[i];
    }
    size_t dl = ZDICT_trainFromBuffer(dict, DICT_BYTES, samples, sizes, (unsigned)ns);
    if (!ZDICT_isError(dl)) {
        /* prepared as store/store.c's make_cdict prepares a bucket's */
        ZSTD_compressionParameters cp = ZSTD_getCParams(3, 16384, dl);
        if (cp.hashLog > 15)
            cp.hashLog = 15;
        ZSTD_CDict *cd =
            ZSTD_createCDict_advanced(dict, dl, ZSTD_dlm_byCopy, ZSTD_dct_auto, cp, ZSTD_defaultCMem);
        t0 = now();
        for (size_t i = 0; i < nmsg; i++)
            ZSTD_compress_usingCDict(cc, out, cap, msg[i], len[i], cd);
        report("zstd-3-dictionary", now() - t0);
        ZSTD_freeCDict(cd);
    }

    uint8_t key[32] = {1}, iv[12] = {2}, tag[16];
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    t0 = now();
    for (size_t i = 0; i < nmsg; i++) {
        int ol = 0;
        memcpy(iv, &i, sizeof i); /* the message's index: a nonce used once */
        if (!EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) ||
            !EVP_EncryptUpdate(c, out, &ol, msg[i], (int)len[i]) ||
            !EVP_EncryptFinal_ex(c, out + ol, &ol) ||
            !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag))
            break;
    }
    report("aes-256-gcm", now() - t0);
    printf("messages %zu escrow-detected %zu summarised-directly %zu\n", nmsg, found, direct);

    EVP_CIPHER_CTX_free(c);
    ZSTD_freeCCtx(cc);
    free(out);
    free(samples);
    free(dict);
    free(sizes);
    for (size_t i = 0; i < nmsg; i++)
        free(msg[i]);
    free(msg);
    free(len);
    return 0;
}
