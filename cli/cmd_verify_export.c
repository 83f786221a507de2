/* SPDX-License-Identifier: MIT */
/* cmd_verify_export.c - `mailvault verify-export PATH`: check an export
 * package the way a third party would, without the archive: every file
 * against manifest.csv (size, MD5, SHA-1, SHA-256), no file missing or
 * added, the manifest against custody.json, and the Ed25519 signature with
 * the package's signing_key.pem, whose fingerprint the caller compares with
 * the one the archive's owners published (--fingerprint). */
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "../export/export.h"
#include "../lib/util.h"
#include "cli.h"

#define VERIFY_KEPT_MAX (512u << 20) /* bytes of manifest.csv and the custody files */
#define VERIFY_REPORT_MAX 20         /* failures named one by one */

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault verify-export PATH [--fingerprint SHA256] [--password-file F]\n"
            "                               [--format json]\n\n"
            "Check an export package (directory, .zip or .tar) without the archive: every\n"
            "file against manifest.csv, no file missing or added, the manifest's SHA-256\n"
            "against custody.json, and the Ed25519 signature with signing_key.pem.  With\n"
            "--fingerprint, the key must be the one the archive's owners published\n"
            "(mailvault keys signing).  Exit 0 when all holds, 65 when it does not (a\n"
            "damaged package, or not a package), 66 when PATH does not exist or cannot\n"
            "be read.  A split export's volumes are checked one by one.\n");
}

static const char *const custody_files[] = {"manifest.csv",    "custody.json",
                                            "custody.sig",     "signing_key.pem",
                                            "custody.txt",     "integrity/tree_head.txt",
                                            "integrity/proofs.txt", NULL};
/* the first K_TXT + 1 are required; the integrity files (the archive's
 * signed tree head and each message's inclusion proof) are checked when
 * present: packages made before the integrity log have none */
enum { K_MANIFEST, K_JSON, K_SIG, K_PEM, K_TXT, K_HEAD, K_PROOFS, K_COUNT };

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const mv_pkg_file *)a)->name, ((const mv_pkg_file *)b)->name);
}

typedef struct report {
    unsigned failures;
    mv_buf text;
} report;

static void fail(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(report *r, const char *fmt, ...)
{
    if (r->failures++ < VERIFY_REPORT_MAX) {
        char line[1400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        mv_buf_append_str(&r->text, line);
        mv_buf_append_byte(&r->text, '\n');
    }
}

/* json_hex - the string value of "key" in custody.json, which must be len
 * characters (hex).  The record is small and flat; JSON's optional white
 * space is allowed (a re-indented record holds the same values). */
static int json_hex(const mv_buf *j, const char *key, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *start = (const char *)j->data, *end = start + j->len, *p = start;
    /* the key, not the same word inside a value (the query may hold it):
     * a key is followed by ':' and its quote is not an escaped one */
    for (;;) {
        p = memmem(p, (size_t)(end - p), pat, strlen(pat));
        if (!p)
            return -1;
        const char *k = p + strlen(pat);
        while (k < end && (*k == ' ' || *k == '\t' || *k == '\r' || *k == '\n'))
            k++;
        if (k < end && *k == ':' && (p == start || p[-1] != '\\')) {
            p = k + 1;
            break;
        }
        p++;
    }
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p >= end || *p++ != '"' || (size_t)(end - p) < len + 1 || p[len] != '"')
        return -1;
    memcpy(out, p, len);
    out[len] = 0;
    return 0;
}

static void check_manifest(const mv_buf *m, mv_pkg_file *files, size_t n, report *r,
                           uint64_t *listed)
{
    static const char header[] = "path,size,md5,sha1,sha256\r\n";
    uint8_t *seen = mv_xcalloc(n ? n : 1, 1);
    *listed = 0;
    if (m->len < sizeof header - 1 || memcmp(m->data, header, sizeof header - 1)) {
        fail(r, "%s: not a mailvault manifest (header)", "manifest.csv");
        free(seen);
        return;
    }
    size_t i = sizeof header - 1;
    while (i < m->len) {
        const char *line = (const char *)m->data + i;
        const char *e = memchr(line, '\n', m->len - i);
        size_t l = e ? (size_t)(e - line) : m->len - i;
        i += l + (e ? 1 : 0);
        if (l && line[l - 1] == '\r')
            l--;
        char *row = mv_xstrndup(line, l), *f[5];
        int k = 0;
        for (char *c = row; k < 5; k++) {
            f[k] = c;
            char *comma = strchr(c, ',');
            if (!comma) {
                k++;
                break;
            }
            *comma = 0;
            c = comma + 1;
        }
        char *end;
        unsigned long long size = k == 5 ? strtoull(f[1], &end, 10) : 0;
        if (k != 5 || strlen(f[2]) != 32 || strlen(f[3]) != 40 || strlen(f[4]) != 64 ||
            *end) {
            fail(r, "manifest.csv: a malformed line: %s", row);
            free(row);
            continue;
        }
        (*listed)++;
        mv_pkg_file key = {.name = f[0]};
        mv_pkg_file *hit = bsearch(&key, files, n, sizeof *files, cmp_file);
        if (!hit) {
            fail(r, "%s: listed in the manifest, missing from the package", f[0]);
        } else {
            char h5[33], h1[41], h256[65];
            mv_hex(hit->md5, 16, h5);
            mv_hex(hit->sha1, 20, h1);
            mv_hex(hit->sha256, 32, h256);
            seen[hit - files] = 1;
            if (hit->size != size)
                fail(r, "%s: size differs from the manifest", f[0]);
            else if (strcmp(h5, f[2]) || strcmp(h1, f[3]) || strcmp(h256, f[4]))
                fail(r, "%s: content differs from the manifest (hash mismatch)", f[0]);
        }
        free(row);
    }
    for (size_t k = 0; k < n; k++) {
        int custody = 0;
        for (int c = 0; custody_files[c]; c++)
            custody |= !strcmp(files[k].name, custody_files[c]);
        if (!seen[k] && !custody)
            fail(r, "%s: in the package but not in the manifest (added)", files[k].name);
    }
    free(seen);
}

/* check_proofs - every inclusion proof in proofs.txt leads to the package's
 * tree head, signed by the package's key; *n counts them. */
static void check_proofs(const mv_buf *head, const mv_buf *proofs, const mv_buf *pem, report *r,
                         uint64_t *n, uint64_t *size)
{
    static const char start[] = "mailvault inclusion proof v1\n";
    BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
    EVP_PKEY *pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    uint8_t pub[32];
    size_t pl = 32;
    int have_pub = pk && EVP_PKEY_get_raw_public_key(pk, pub, &pl) > 0 && pl == 32;
    EVP_PKEY_free(pk);
    if (!have_pub)
        return; /* said by check_signature */
    const uint8_t *p = proofs->data, *end = proofs->data + proofs->len;
    while (p < end) {
        const uint8_t *next = p + 1 < end ? memmem(p + 1, (size_t)(end - p - 1), start,
                                                   sizeof start - 1)
                                          : NULL;
        size_t len = (size_t)((next ? next : end) - p);
        mv_proof_info pi;
        mv_err e = {0};
        if (mv_proof_check(p, len, head->data, head->len, pub, &pi, &e) != MV_OK)
            fail(r, "integrity/proofs.txt: proof %llu (serial %llu): %s", (unsigned long long)*n + 1,
                 (unsigned long long)pi.serial, e.msg);
        else
            *size = pi.size;
        (*n)++;
        p = next ? next : end;
    }
}

typedef struct verify_args {
    const char *want, *password_file;
} verify_args;

static int verify_opt(void *ctx, int opt, const char *arg)
{
    verify_args *va = ctx;
    if (opt == 'w') {
        va->password_file = arg;
        return 0;
    }
    if (opt != 'f')
        return -1;
    size_t n = strlen(arg);
    uint8_t tmp[32];
    if (n != 64 || mv_unhex(arg, tmp, 32))
        return cli_usage_error("verify-export", "--fingerprint is 64 hexadecimal digits"), -1;
    va->want = arg;
    return 0;
}

/* check_signature - custody.sig over the manifest's SHA-256 with the
 * package's key; the key's fingerprint into fpr. */
static void check_signature(const mv_buf *pem, const mv_buf *sig, const uint8_t msha[32],
                            char fpr[65], report *r)
{
    fpr[0] = 0;
    BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
    EVP_PKEY *pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    uint8_t pub[32], h[32];
    size_t pl = 32;
    unsigned hl = 32;
    if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519 ||
        EVP_PKEY_get_raw_public_key(pk, pub, &pl) <= 0 || pl != 32) {
        fail(r, "%s: not an Ed25519 public key", "signing_key.pem");
        EVP_PKEY_free(pk);
        return;
    }
    mv_assert(EVP_Digest(pub, 32, h, &hl, EVP_sha256(), NULL));
    mv_hex(h, 32, fpr);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && sig->len == 64 && EVP_DigestVerifyInit(c, NULL, NULL, NULL, pk) > 0 &&
             EVP_DigestVerify(c, sig->data, 64, msha, 32) == 1;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(pk);
    if (!ok)
        fail(r, "%s: the signature does not verify over the manifest", "custody.sig");
}

int cmd_verify_export(int argc, char **argv)
{
    mv_cli c;
    verify_args va = {NULL, NULL};
    static const struct option opts[] = {{"fingerprint", required_argument, NULL, 'f'},
                                         {"password-file", required_argument, NULL, 'w'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "verify-export");
    int rc = cli_getopt(&c, argc, argv, opts, verify_opt, &va, help);
    const char *want = va.want;
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi + 1 != argc)
        return cli_usage_error("verify-export", "give the package: a directory, .zip or .tar");
    const char *path = argv[c.argi];
    mv_err err = {0};
    mv_buf kept[K_COUNT] = {MV_BUF_INIT, MV_BUF_INIT, MV_BUF_INIT, MV_BUF_INIT,
                            MV_BUF_INIT, MV_BUF_INIT, MV_BUF_INIT};
    uint64_t proofs = 0, tree_size = 0;
    mv_pkg_file *files = NULL;
    size_t n = 0;
    report r = {0, MV_BUF_INIT};
    uint64_t listed = 0;
    char fpr[65] = "";
    mv_buf pw = MV_BUF_INIT;
    mv_status st = va.password_file ? cli_read_password(va.password_file, &pw, &err) : MV_OK;
    if (!st)
        st = mv_pkg_scan(path, va.password_file ? (const char *)pw.data : NULL, custody_files,
                         kept, VERIFY_KEPT_MAX, &files, &n, &err);
    mv_buf_wipe(&pw);
    /* the volumes of a split export are packages each, their parent not */
    char *vol1 = mv_pkg_volume_path(path, 1);
    int split = access(vol1, F_OK) == 0;
    if (st == MV_ENOTFOUND && split)
        mv_err_prefix(&err, "verify each volume (%s, ...): ", vol1);
    int have[K_TXT] = {0};
    if (!st)
        for (int k = 0; k < K_TXT; k++)
            for (size_t i = 0; i < n; i++)
                have[k] |= !strcmp(files[i].name, custody_files[k]);
    if (!st && split && !have[K_MANIFEST] && !have[K_JSON]) {
        fail(&r, "%s holds the volumes of a split export, each a package of its own: verify "
                 "each one (%s, ...)", path, vol1);
        st = mv_err_set(&err, MV_EMALFORMED, "%s is not a package", path);
    }
    if (!st) {
        qsort(files, n, sizeof *files, cmp_file);
        for (int k = 0; k < K_TXT; k++)
            if (!have[k])
                fail(&r, "%s: missing", custody_files[k]);
        check_manifest(&kept[K_MANIFEST], files, n, &r, &listed);
        uint8_t msha[32];
        unsigned l = 32;
        char mhex[65], jhex[65], jsig[129], shex[129];
        mv_assert(EVP_Digest(kept[K_MANIFEST].data, kept[K_MANIFEST].len, msha, &l,
                             EVP_sha256(), NULL));
        mv_hex(msha, 32, mhex);
        if (json_hex(&kept[K_JSON], "manifest_sha256", jhex, 64) || strcmp(jhex, mhex))
            fail(&r, "%s: manifest_sha256 is not the manifest's SHA-256", "custody.json");
        if (kept[K_SIG].len == 64)
            mv_hex(kept[K_SIG].data, 64, shex);
        if (kept[K_SIG].len != 64 || json_hex(&kept[K_JSON], "signature", jsig, 128) ||
            strcmp(jsig, shex))
            fail(&r, "%s: the signature differs from custody.sig", "custody.json");
        check_signature(&kept[K_PEM], &kept[K_SIG], msha, fpr, &r);
        char jfpr[65];
        if (fpr[0] && (json_hex(&kept[K_JSON], "signing_key_sha256", jfpr, 64) ||
                       strcmp(jfpr, fpr)))
            fail(&r, "%s: signing_key_sha256 is not signing_key.pem's", "custody.json");
        if (want && strcasecmp(want, fpr) != 0)
            fail(&r, "%s: signed by another key than the fingerprint given", "signing_key.pem");
        int has_head = 0, has_proofs = 0;
        for (size_t i = 0; i < n; i++) {
            has_head |= !strcmp(files[i].name, custody_files[K_HEAD]);
            has_proofs |= !strcmp(files[i].name, custody_files[K_PROOFS]);
        }
        if (has_head != has_proofs)
            fail(&r, "integrity/: the tree head and the proofs go together; one is missing");
        else if (has_head)
            check_proofs(&kept[K_HEAD], &kept[K_PROOFS], &kept[K_PEM], &r, &proofs, &tree_size);
        if (r.failures)
            st = mv_err_set(&err, MV_EMALFORMED, "%s does not verify: %u failure%s", path,
                            r.failures, r.failures == 1 ? "" : "s");
    }
    if (c.json) {
        fprintf(cli_out, "{");
        json_kv_str(cli_out, "package", path, 0);
        fprintf(cli_out, ",\"ok\":%s", st ? "false" : "true");
        json_kv_u64(cli_out, "files", listed, 1);
        json_kv_u64(cli_out, "failures", r.failures, 1);
        json_kv_str(cli_out, "signing_key_sha256", fpr[0] ? fpr : NULL, 1);
        json_kv_u64(cli_out, "inclusion_proofs", proofs, 1);
        mv_buf_append_byte(&r.text, 0);
        json_kv_str(cli_out, "report", (const char *)r.text.data, 1);
        fprintf(cli_out, "}\n");
    } else if (!st) {
        fprintf(cli_out, "ok\n%llu files match the manifest; the manifest is signed by key %s%s\n",
                (unsigned long long)listed, fpr,
                want ? " (the fingerprint given)" : " (compare it with the published one)");
        if (proofs)
            fprintf(cli_out, "%llu inclusion proofs lead to the archive's signed tree head of %llu "
                             "leaves (integrity/)\n",
                    (unsigned long long)proofs, (unsigned long long)tree_size);
    } else if (r.failures) {
        fwrite(r.text.data, 1, r.text.len, cli_err);
        if (r.failures > VERIFY_REPORT_MAX)
            fprintf(cli_err, "... and %u more\n", r.failures - VERIFY_REPORT_MAX);
    }
    free(vol1);
    for (int k = 0; k < K_COUNT; k++)
        mv_buf_free(&kept[k]);
    mv_buf_free(&r.text);
    mv_pkg_files_free(files, n);
    return cli_finish(&c, NULL, st, &err);
}
