/* SPDX-License-Identifier: MIT */
/* cmd_export.c - `mailvault export`: the messages of a search or a serial
 * list as a package for legal review (natives as .eml or one mboxrd file,
 * or load files with natives and text, each message's attachments as its
 * child documents), with manifest.csv (size, MD5, SHA-1, SHA-256 of every
 * file) and a custody record signed with the archive's Ed25519 key;
 * --split-size cuts it into volumes, each a package of its own
 * (docs/export.md).
 *
 * Memory holds a few messages at a time: each message is read (decrypted
 * from the store) and its attachments decoded (search/extract.h) by a
 * second thread a bounded number of messages ahead (EXPORT_READ_AHEAD,
 * "reading ahead" below), then written to the package and hashed on the
 * way by the main thread; the attachments of a message too large to
 * decode ahead are decoded one by one as they are written; a family's
 * record metadata (names, sizes, hashes) waits until its last child is
 * written.  Load files are spooled to unlinked files beside the package. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "../export/export.h"
#include "../export/loadfile.h"
#include "../ingest/decrypt.h"
#include "../search/extract.h"
#include "../lib/util.h"
#include "../store/keys.h"
#include "cli.h"

#define EXPORT_SERIALS_MAX 10000000u     /* messages one export may name */
#define EXPORT_ATTACH_LIMIT_MAX ((uint64_t)1 << 30) /* --attachment-limit at most */
#define EXPORT_ID_BYTES 16

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault export (QUERY | --serials LIST) --as eml|mbox|dat|csv|edrm\n"
            "                        --out PATH [--prefix ABC] [--matter NAME]\n"
            "                        [--split-size SIZE] [--attachment-limit SIZE]\n"
            "                        [--encrypt --password-file F] [--format json]\n\n"
            "Package the messages of a search (docs/search.md) or of a serial list\n"
            "(LIST: 1-40,52) for legal review.  PATH ending in .zip is a ZIP, in .tar a\n"
            "tar, anything else a new directory.\n"
            "  --as eml    natives/SERIAL.eml, the archived bytes exactly; for mail\n"
            "              decrypted with an escrowed key the decrypted message, and the\n"
            "              original ciphertext as natives/SERIAL.original.eml\n"
            "  --as mbox   messages.mbox (mboxrd) of the same messages\n"
            "  --as dat    Concordance DAT load file with natives and extracted text;\n"
            "              each attachment a child document after its message\n"
            "  --as csv    the same fields as CSV, metadata only\n"
            "  --as edrm   EDRM XML 1.2 load file with natives and extracted text\n"
            "  --prefix    control numbers PREFIX-0000001 (default MV)\n"
            "  --matter    control numbers continue across the exports of a matter\n"
            "  --split-size SIZE   volumes of about SIZE (K, M, G; at least 1M), each a\n"
            "              package of its own: PATH/VOL0001/, or x.VOL0001.zip for x.zip\n"
            "  --attachment-limit SIZE   an attachment larger than this (default 64M)\n"
            "              is a child document without its native\n"
            "  --encrypt --password-file F   a ZIP with WinZip AES-256 entries\n"
            "Every package has manifest.csv (size, MD5, SHA-1, SHA-256 of every file),\n"
            "custody.json and custody.txt (who, when, what, the manifest's SHA-256 and\n"
            "its Ed25519 signature), custody.sig and signing_key.pem.  Check one with\n"
            "`mailvault verify-export PATH --fingerprint FPR` (FPR: `mailvault keys\n"
            "signing`).  Needs the role legal; audited.\n");
}

typedef struct export_args {
    const char *as, *out, *serials, *prefix, *matter, *password_file;
    int encrypt;
    uint64_t split, attach_limit;
} export_args;

static int export_opt(void *ctx, int opt, const char *arg)
{
    export_args *a = ctx;
    mv_err e;
    switch (opt) {
    case 'a':
        if (strcmp(arg, "eml") && strcmp(arg, "mbox") && strcmp(arg, "dat") &&
            strcmp(arg, "csv") && strcmp(arg, "edrm"))
            return cli_usage_error("export", "--as is eml, mbox, dat, csv or edrm"), -1;
        a->as = arg;
        return 0;
    case 'p':
        for (const char *c = arg; *c; c++)
            if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '.') || c - arg > 20)
                return cli_usage_error("export", "--prefix is up to 20 letters, digits, '_' "
                                                 "or '.'"), -1;
        if (!*arg)
            return cli_usage_error("export", "--prefix is empty"), -1;
        a->prefix = arg;
        return 0;
    case 'e':
        a->encrypt = 1;
        return 0;
    case 'w':
        a->password_file = arg;
        return 0;
    case 'm':
        if (!*arg || strlen(arg) > 200)
            return cli_usage_error("export", "--matter names the matter (1 to 200 bytes)"), -1;
        a->matter = arg;
        return 0;
    case 'o':
        a->out = arg;
        return 0;
    case 's':
        a->serials = arg;
        return 0;
    case 'z':
        if (mv_parse_size(arg, &a->split, &e))
            return cli_usage_error("export", "--split-size: %s", e.msg), -1;
        if (a->split < MV_SPLIT_MIN)
            return cli_usage_error("export", "--split-size is at least 1M (a volume holds a "
                                             "whole message with its attachments anyway)"), -1;
        return 0;
    case 'l':
        if (mv_parse_size(arg, &a->attach_limit, &e))
            return cli_usage_error("export", "--attachment-limit: %s", e.msg), -1;
        if (!a->attach_limit || a->attach_limit > EXPORT_ATTACH_LIMIT_MAX)
            return cli_usage_error("export", "--attachment-limit is 1 byte to 1G"), -1;
        return 0;
    }
    return -1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* parse_serials - "1-40,52" into a sorted list without repeats. */
static mv_status parse_serials(const char *list, uint64_t **out, size_t *n, mv_err *err)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    const char *p = list;
    while (*p) {
        char *e;
        uint64_t lo = strtoull(p, &e, 10), hi = lo;
        if (e == p || *p == '-' || *p == '+' || !lo)
            goto bad;
        if (*e == '-') {
            p = e + 1;
            if (*p == '-' || *p == '+')
                goto bad;
            hi = strtoull(p, &e, 10);
            if (e == p || hi < lo)
                goto bad;
        }
        if (hi - lo >= EXPORT_SERIALS_MAX || *n + (hi - lo + 1) > EXPORT_SERIALS_MAX) {
            free(*out);
            return mv_err_set(err, MV_ELIMIT, "more than %u serials", EXPORT_SERIALS_MAX);
        }
        for (uint64_t s = lo; s <= hi; s++) {
            if (*n == cap)
                *out = mv_xrealloc(*out, (cap = cap ? cap * 2 : 64) * sizeof **out);
            (*out)[(*n)++] = s;
        }
        if (*e == ',' && e[1])
            p = e + 1;
        else if (!*e)
            p = e;
        else
            goto bad;
    }
    if (!*n)
        goto bad;
    qsort(*out, *n, sizeof **out, cmp_u64);
    size_t w = 0;
    for (size_t i = 0; i < *n; i++)
        if (!w || (*out)[w - 1] != (*out)[i])
            (*out)[w++] = (*out)[i];
    *n = w;
    return MV_OK;
bad:
    free(*out);
    *out = NULL;
    *n = 0;
    return mv_err_set(err, MV_EUSAGE, "--serials takes serials and ranges: 1-40,52");
}

static mv_status collect(void *ctx, const uint8_t *p, size_t n, mv_err *err)
{
    (void)err;
    mv_buf_append(ctx, p, n);
    return MV_OK;
}

/* message_bytes - the form to export (decrypted when there is one) into
 * b, and whether an original must go beside it.  With keep, the message's
 * decryption record (NULL when none) is handed to the caller, who would
 * otherwise read it a second time. */
static mv_status message_bytes(mv_store *s, uint64_t serial, int want_original, mv_buf *b,
                               int *decrypted, mv_decryption **keep, mv_err *err)
{
    mv_decryption *d = NULL;
    mv_buf_reset(b);
    *decrypted = 0;
    mv_status st = mv_store_decryption(s, serial, &d, err);
    if (st == MV_ENOTFOUND)
        st = MV_OK;
    else if (!st && d->decrypted)
        *decrypted = 1;
    if (keep && !st)
        *keep = d;
    else
        mv_decryption_free(d);
    if (st)
        return st;
    if (*decrypted && !want_original)
        return mv_store_read_decrypted(s, serial, collect, b, err);
    return mv_store_read(s, serial, 0, collect, b, err);
}

static void hex_of(const uint8_t *p, size_t n, const EVP_MD *md, char *out)
{
    uint8_t h[64];
    unsigned l = sizeof h;
    mv_assert(EVP_Digest(p, n, h, &l, md, NULL));
    mv_hex(h, l, out);
}

static char *signing_pem(mv_store *s)
{
    uint8_t pub[32];
    mv_store_signing_public(s, pub);
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (pk && bio && PEM_write_bio_PUBKEY(bio, pk)) {
        char *p;
        long l = BIO_get_mem_data(bio, &p);
        if (l > 0)
            out = mv_xstrndup(p, (size_t)l);
    }
    BIO_free(bio);
    EVP_PKEY_free(pk);
    return out;
}

/* fingerprint - SHA-256 of the raw public key, hex (what `keys signing`
 * prints and a legal team publishes). */
static void fingerprint(mv_store *s, char out[65])
{
    uint8_t pub[32], h[32];
    unsigned l = 32;
    mv_store_signing_public(s, pub);
    mv_assert(EVP_Digest(pub, 32, h, &l, EVP_sha256(), NULL));
    mv_hex(h, 32, out);
}

/* ---- the export and its volumes ------------------------------------------- */

/* Load-file fields, in this order (docs/export.md). */
enum {
    F_BEGDOC, F_ENDDOC, F_BEGATTACH, F_ENDATTACH, F_PARENTID, F_ATTCOUNT, F_ATTNAMES,
    F_CUSTODIAN, F_FROM, F_TO, F_CC, F_BCC, F_ENVELOPE, F_SUBJECT, F_DATESENT, F_TIMESENT,
    F_TIMEZONE, F_MSGID, F_INREPLYTO, F_FILENAME, F_FILEEXT, F_FILESIZE, F_MD5, F_SHA1,
    F_SHA256, F_NATIVE, F_ORIGINAL, F_TEXT, F_ENCRYPTED, F_DECSTATUS, F_SIGSTATUS, F_SERIAL,
    F_RECEIVED, F_EXCEPTION, LF_NFIELDS
};
static const char *const lf_fields[LF_NFIELDS] = {
    "BegDoc",      "EndDoc",          "BegAttach",   "EndAttach",        "ParentID",
    "AttachmentCount", "AttachmentNames", "Custodian", "From",           "To",
    "CC",          "BCC",             "EnvelopeRecipients", "Subject",   "DateSent",
    "TimeSent",    "TimeZone",        "MessageID",   "InReplyTo",        "FileName",
    "FileExtension", "FileSize",      "MD5Hash",     "SHA1Hash",         "SHA256Hash",
    "NativeFile",  "OriginalNativeFile", "TextPath", "Encrypted",        "DecryptionStatus",
    "SignatureStatus", "ArchiveSerial", "ArchiveReceivedUTC", "ExceptionReason"};
/* EDRM's reserved tag names where there is one (STANDARDS 5.5). */
static const char *const edrm_tag[LF_NFIELDS] = {
    [F_ATTCOUNT] = "#AttachmentCount", [F_ATTNAMES] = "#AttachmentNames", [F_FROM] = "#From",
    [F_TO] = "#To", [F_CC] = "#CC", [F_BCC] = "#BCC", [F_SUBJECT] = "#Subject",
    [F_FILENAME] = "#FileName", [F_FILEEXT] = "#FileExtension", [F_FILESIZE] = "#FileSize"};

/* What a volume (or the one package) holds. */
typedef struct volume {
    char *path;
    unsigned no;
    uint64_t *serials; /* the messages in it: their inclusion proofs */
    size_t nserials, cap;
    uint64_t first_ctrl, documents, messages, attachments, originals, missing, files, bytes;
    char manifest[65];
} volume;

typedef struct export_run {
    mv_store *s;
    const export_args *a;
    const char *user, *query;
    mv_lf_kind kind; /* 0 for eml and mbox: no load file, no control numbers */
    const char *prefix;
    const char *password; /* NULL: not encrypted */
    size_t attach_limit;
    mv_custodian *cu;
    size_t ncu;
    char export_id[2 * EXPORT_ID_BYTES + 1];
    /* volumes finished, and whether the split directory is ours */
    volume *done;
    size_t ndone;
    int made_dir;
    /* the volume being written */
    mv_pkg *pkg;
    volume cur;
    FILE *lf, *rel;  /* the load file and EDRM's relationships, spooled */
    uint64_t ctrl;   /* the next control number */
    /* totals */
    uint64_t documents, messages, attachments, originals, missing;
    /* scratch, reused message after message */
    mv_buf t, rec, who, cust;
    mv_buf head; /* the signed tree head every volume's proofs lead to */
} export_run;

/* spool - an unlinked file beside path for what is written into the
 * package last (a tar or ZIP entry announces its size first). */
static mv_status spool(const char *path, FILE **out, mv_err *err)
{
    char *tmpl = mv_xasprintf("%s.spool-XXXXXX", path);
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        mv_status st = mv_err_sys(err, "creating a spool file beside %s", path);
        free(tmpl);
        return st;
    }
    unlink(tmpl);
    free(tmpl);
    *out = fdopen(fd, "w+");
    mv_assert(*out);
    return MV_OK;
}

/* copy_into - a spooled file streamed into the package. */
static mv_status copy_into(mv_pkg *pkg, const char *name, FILE *f, mv_err *err)
{
    if (fflush(f) != 0)
        return mv_err_sys(err, "writing the load file");
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0)
        return mv_err_sys(err, "reading the load file");
    rewind(f);
    mv_status st = mv_pkg_begin(pkg, name, (uint64_t)sb.st_size, 0, err);
    uint8_t buf[65536];
    size_t r;
    while (!st && (r = fread(buf, 1, sizeof buf, f)) > 0)
        st = mv_pkg_write(pkg, buf, r, err);
    if (!st && ferror(f))
        st = mv_err_sys(err, "reading the load file");
    return st ? st : mv_pkg_end(pkg, err);
}

static mv_status put(FILE *f, const mv_buf *b, mv_err *err)
{
    if (b->len && fwrite(b->data, 1, b->len, f) != b->len)
        return mv_err_sys(err, "writing the load file");
    return MV_OK;
}

static void ctrl_str(const export_run *e, uint64_t n, char out[64])
{
    snprintf(out, 64, "%s-%07llu", e->prefix, (unsigned long long)n);
}

/* volume_open - the next volume (or the one package) and its spools. */
static mv_status volume_open(export_run *e, mv_err *err)
{
    unsigned no = (unsigned)e->ndone + 1;
    if (no > MV_VOLUMES_MAX)
        return mv_err_set(err, MV_ELIMIT, "more than %u volumes: give a larger --split-size",
                          MV_VOLUMES_MAX);
    char *path = e->a->split ? mv_pkg_volume_path(e->a->out, no) : mv_xstrdup(e->a->out);
    mv_status st = mv_pkg_create(path, e->password, &e->pkg, err);
    if (st) {
        free(path);
        return st;
    }
    memset(&e->cur, 0, sizeof e->cur);
    e->cur.path = path;
    e->cur.no = no;
    e->cur.first_ctrl = e->ctrl;
    if (!e->kind)
        return MV_OK;
    if ((st = spool(path, &e->lf, err)) ||
        (e->kind == MV_LF_EDRM && (st = spool(path, &e->rel, err))))
        return st;
    mv_buf_reset(&e->rec);
    if (e->kind == MV_LF_EDRM) {
        mv_buf_append_str(&e->rec, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
                                   "<Root MajorVersion=\"1\" MinorVersion=\"2\" Description=\""
                                   "mailvault export\" Locale=\"US\" DataInterchangeType=\""
                                   "Update\">\r\n<Batch>\r\n<Documents>\r\n");
    } else {
        mv_lf_begin(e->kind, &e->rec);
        for (int i = 0; i < LF_NFIELDS; i++)
            mv_lf_field(e->kind, lf_fields[i], i == 0, &e->rec);
        mv_lf_end_record(e->kind, &e->rec);
    }
    return put(e->lf, &e->rec, err);
}

/* volume_bytes - what the volume holds so far, its load file included. */
static uint64_t volume_bytes(const export_run *e)
{
    uint64_t n = mv_pkg_bytes(e->pkg);
    long l;
    if (e->lf && (l = ftell(e->lf)) > 0)
        n += (uint64_t)l;
    if (e->rel && (l = ftell(e->rel)) > 0)
        n += (uint64_t)l;
    return n;
}

static void custody_json(const export_run *e, const volume *v, const char *when,
                         const char *archive_id, const char *fpr, const char *sig, mv_buf *b)
{
    FILE *f = open_memstream((char **)&b->data, &b->len);
    mv_assert(f);
    fprintf(f, "{");
    json_kv_str(f, "format", "mailvault-custody/1", 0);
    json_kv_str(f, "exported_by", e->user, 1);
    json_kv_str(f, "exported_at", when, 1);
    json_kv_str(f, "archive_id", archive_id, 1);
    json_kv_str(f, "export_id", e->export_id, 1);
    if (e->a->split) {
        json_kv_u64(f, "volume", v->no, 1);
        json_kv_u64(f, "split_size", e->a->split, 1);
    }
    json_kv_str(f, "query", e->query, 1);
    json_kv_str(f, "serials", e->a->serials, 1);
    json_kv_str(f, "as", e->a->as, 1);
    mv_pkg_kind k = mv_pkg_kind_of(v->path);
    json_kv_str(f, "package", k == MV_PKG_ZIP ? "ZIP" : k == MV_PKG_TAR ? "tar" : "directory", 1);
    json_kv_str(f, "matter", e->a->matter, 1);
    if (e->kind && v->documents) {
        char lo[64], hi[64];
        ctrl_str(e, v->first_ctrl, lo);
        ctrl_str(e, v->first_ctrl + v->documents - 1, hi);
        json_kv_str(f, "first_control_number", lo, 1);
        json_kv_str(f, "last_control_number", hi, 1);
    }
    json_kv_u64(f, "documents", v->documents, 1);
    json_kv_u64(f, "messages", v->messages, 1);
    json_kv_u64(f, "attachments", v->attachments, 1);
    json_kv_u64(f, "attachments_without_native", v->missing, 1);
    json_kv_u64(f, "originals", v->originals, 1);
    json_kv_u64(f, "files", v->files, 1);
    json_kv_u64(f, "bytes", v->bytes, 1);
    json_kv_str(f, "manifest_sha256", v->manifest, 1);
    json_kv_str(f, "signature_algorithm", "Ed25519 over the 32 bytes of manifest_sha256", 1);
    json_kv_str(f, "signing_key_sha256", fpr, 1);
    json_kv_str(f, "signature", sig, 1);
    /* the integrity log's signed tree head the proofs lead to: its size and root */
    const char *h1 = memchr(e->head.data, '\n', e->head.len);
    const char *h2 = h1 ? memchr(h1 + 1, '\n', e->head.len - (size_t)(h1 + 1 - (char *)e->head.data)) : NULL;
    const char *h3 = h2 ? memchr(h2 + 1, '\n', e->head.len - (size_t)(h2 + 1 - (char *)e->head.data)) : NULL;
    if (h3) {
        char size[24] = "", root[64] = "";
        if (h2 - h1 - 1 < (long)sizeof size)
            memcpy(size, h1 + 1, (size_t)(h2 - h1 - 1));
        if (h3 - h2 - 1 < (long)sizeof root)
            memcpy(root, h2 + 1, (size_t)(h3 - h2 - 1));
        json_kv_str(f, "tree_head", "integrity/tree_head.txt", 1);
        json_kv_str(f, "tree_size", size, 1);
        json_kv_str(f, "tree_root", root, 1);
        json_kv_str(f, "inclusion_proofs", "integrity/proofs.txt", 1);
    }
    fprintf(f, "}\n");
    fclose(f);
    b->cap = b->len;
}

static void custody_txt(const export_run *e, const volume *v, const char *when,
                        const char *archive_id, const char *fpr, mv_buf *b)
{
    mv_pkg_kind k = mv_pkg_kind_of(v->path);
    mv_buf_printf(b,
                  "mailvault export: chain of custody\r\n\r\n"
                  "Exported by:        %s\r\n"
                  "Exported at (UTC):  %s\r\n"
                  "Archive:            %s\r\n"
                  "Export:             %s",
                  e->user, when, archive_id, e->export_id);
    if (e->a->split)
        mv_buf_printf(b, ", volume %u (volumes of about %llu bytes; each one a package "
                         "of its own)", v->no, (unsigned long long)e->a->split);
    mv_buf_printf(b,
                  "\r\nSelection:          %s%s\r\n"
                  "Form:               %s, as a %s\r\n",
                  e->query ? "query " : "serials ", e->query ? e->query : e->a->serials,
                  e->a->as, k == MV_PKG_ZIP ? "ZIP" : k == MV_PKG_TAR ? "tar" : "directory");
    if (e->kind && v->documents) {
        char lo[64], hi[64];
        ctrl_str(e, v->first_ctrl, lo);
        ctrl_str(e, v->first_ctrl + v->documents - 1, hi);
        mv_buf_printf(b, "Control numbers:    %s to %s%s%s\r\n", lo, hi,
                      e->a->matter ? ", matter " : "", e->a->matter ? e->a->matter : "");
    }
    mv_buf_printf(b,
                  "Documents:          %llu (%llu messages and %llu attachments as their child "
                  "documents",
                  (unsigned long long)v->documents, (unsigned long long)v->messages,
                  (unsigned long long)v->attachments);
    if (v->missing)
        mv_buf_printf(b, "; %llu attachments without their native, see ExceptionReason",
                      (unsigned long long)v->missing);
    mv_buf_printf(b,
                  ")\r\n"
                  "Messages:           %llu (and %llu encrypted originals beside their "
                  "decrypted form)\r\n"
                  "Files listed:       %llu, %llu bytes (manifest.csv: size, MD5, SHA-1, "
                  "SHA-256 of each)\r\n"
                  "Manifest SHA-256:   %s\r\n"
                  "Signature:          Ed25519 over the 32 bytes of the manifest's SHA-256 "
                  "(custody.sig;\r\n"
                  "                    hex in custody.json), by the archive's signing key\r\n"
                  "Signing key SHA-256: %s (signing_key.pem; compare with the fingerprint\r\n"
                  "                    the archive's owners published: mailvault keys signing)\r\n"
                  "\r\nCheck: mailvault verify-export PACKAGE --fingerprint %s\r\n"
                  "       or with openssl as docs/export.md shows.\r\n",
                  (unsigned long long)v->messages, (unsigned long long)v->originals,
                  (unsigned long long)v->files, (unsigned long long)v->bytes, v->manifest, fpr,
                  fpr);
}

/* volume_close - finish the volume: its load file, its control numbers
 * reserved (--matter), the manifest, the signed custody record. */
static mv_status volume_close(export_run *e, mv_err *err)
{
    mv_status st = MV_OK;
    if (e->kind) {
        mv_buf_reset(&e->rec);
        if (e->kind == MV_LF_EDRM) {
            mv_buf_append_str(&e->rec, "</Documents>\r\n");
            st = put(e->lf, &e->rec, err);
            mv_buf_reset(&e->rec);
            if (!st && ftell(e->rel) > 0) {
                /* one Relationship per child, after the documents (the
                 * order of Batch's elements in the 1.2 schema) */
                mv_buf_append_str(&e->rec, "<Relationships>\r\n");
                st = put(e->lf, &e->rec, err);
                mv_buf_reset(&e->rec);
                if (!st) {
                    rewind(e->rel);
                    uint8_t buf[65536];
                    size_t r;
                    while (!st && (r = fread(buf, 1, sizeof buf, e->rel)) > 0)
                        if (fwrite(buf, 1, r, e->lf) != r)
                            st = mv_err_sys(err, "writing the load file");
                    if (!st && ferror(e->rel))
                        st = mv_err_sys(err, "reading the spooled relationships");
                    mv_buf_append_str(&e->rec, "</Relationships>\r\n");
                }
            }
            mv_buf_append_str(&e->rec, "</Batch>\r\n</Root>\r\n");
            if (!st)
                st = put(e->lf, &e->rec, err);
        }
        if (!st)
            st = copy_into(e->pkg, e->kind == MV_LF_DAT   ? "loadfile.dat"
                                   : e->kind == MV_LF_CSV ? "metadata.csv"
                                                          : "loadfile.xml",
                           e->lf, err);
        if (!st && e->a->matter && e->cur.documents) {
            /* the numbers this volume used, reserved now that they are
             * known (children are counted as they are met); nothing else
             * takes a matter's numbers while this process holds the
             * archive, so they are the ones that follow the last export's */
            uint64_t first = 0;
            if (!(st = mv_store_matter_reserve(e->s, e->a->matter, e->cur.documents, &first,
                                               err)) &&
                first != e->cur.first_ctrl)
                st = mv_err_set(err, MV_ETEMP,
                                "control numbers of matter '%s' were taken during the export "
                                "(it would have used %llu on): export again",
                                e->a->matter, (unsigned long long)e->cur.first_ctrl);
        }
    }
    /* The archive's signed tree head, and each message's inclusion proof
     * against it (docs/integrity.md): listed in the manifest, so covered
     * by the custody signature too. */
    if (!st)
        st = mv_pkg_add(e->pkg, "integrity/tree_head.txt", e->head.data, e->head.len, 0, err);
    if (!st) {
        FILE *pf = NULL;
        mv_buf proof = MV_BUF_INIT;
        st = spool(e->cur.path, &pf, err);
        for (size_t i = 0; i < e->cur.nserials && !st; i++) {
            if (!(st = mv_store_proof(e->s, e->cur.serials[i], e->head.data, e->head.len, &proof,
                                      err)))
                st = put(pf, &proof, err);
        }
        if (!st)
            st = copy_into(e->pkg, "integrity/proofs.txt", pf, err);
        if (pf)
            fclose(pf);
        mv_buf_free(&proof);
    }
    uint8_t msha[32], sig[64];
    if (!st && !(st = mv_pkg_manifest(e->pkg, msha, &e->cur.files, &e->cur.bytes, err)) &&
        !(st = mv_store_sign(e->s, msha, 32, sig, err))) {
        char when[32], archive_id[2 * MV_ARCHIVE_ID_LEN + 1], fpr[65], sighex[129];
        mv_fmt_time(mv_now_us() / 1000000, when, sizeof when);
        mv_hex(mv_store_archive_id(e->s), MV_ARCHIVE_ID_LEN, archive_id);
        mv_hex(msha, 32, e->cur.manifest);
        mv_hex(sig, 64, sighex);
        fingerprint(e->s, fpr);
        mv_buf j = MV_BUF_INIT, t = MV_BUF_INIT;
        char *pem = signing_pem(e->s);
        custody_json(e, &e->cur, when, archive_id, fpr, sighex, &j);
        custody_txt(e, &e->cur, when, archive_id, fpr, &t);
        if (!pem)
            st = mv_err_set(err, MV_ECRYPTO, "cannot write the signing key as PEM");
        if (!st)
            st = mv_pkg_add(e->pkg, "custody.json", j.data, j.len, 1, err);
        if (!st)
            st = mv_pkg_add(e->pkg, "custody.txt", t.data, t.len, 1, err);
        if (!st)
            st = mv_pkg_add(e->pkg, "custody.sig", sig, 64, 1, err);
        if (!st)
            st = mv_pkg_add(e->pkg, "signing_key.pem", pem, strlen(pem), 1, err);
        free(pem);
        mv_buf_free(&j);
        mv_buf_free(&t);
    }
    if (e->lf)
        fclose(e->lf);
    if (e->rel)
        fclose(e->rel);
    e->lf = e->rel = NULL;
    mv_err cerr = {0};
    mv_status cs = mv_pkg_close(e->pkg, st != MV_OK, &cerr);
    e->pkg = NULL;
    if (!st && cs) {
        st = cs;
        if (err)
            *err = cerr;
    }
    free(e->cur.serials);
    e->cur.serials = NULL;
    e->cur.nserials = e->cur.cap = 0;
    if (st) {
        free(e->cur.path);
        memset(&e->cur, 0, sizeof e->cur);
        return st;
    }
    e->done = mv_xrealloc(e->done, (e->ndone + 1) * sizeof *e->done);
    e->done[e->ndone++] = e->cur;
    memset(&e->cur, 0, sizeof e->cur);
    return MV_OK;
}

/* export_abandon - after a failure: the volume being written and every
 * finished one removed (an export succeeds whole or leaves nothing). */
static void export_abandon(export_run *e)
{
    if (e->lf)
        fclose(e->lf);
    if (e->rel)
        fclose(e->rel);
    e->lf = e->rel = NULL;
    if (e->pkg) {
        mv_err e2;
        if (mv_pkg_close(e->pkg, 1, &e2)) { /* the first error is the one to tell */
        }
        e->pkg = NULL;
    }
    free(e->cur.path);
    free(e->cur.serials);
    memset(&e->cur, 0, sizeof e->cur);
    for (size_t i = 0; i < e->ndone; i++)
        mv_pkg_remove(e->done[i].path);
    if (e->made_dir)
        rmdir(e->a->out);
}

/* family_done - after a message and what goes with it: counted, and with
 * --split-size the volume closed once it is full (never inside a family)
 * and the next one opened when messages are left. */
static mv_status family_done(export_run *e, int more, mv_err *err)
{
    if (!e->a->split || !more || volume_bytes(e) < e->a->split)
        return MV_OK;
    mv_status st = volume_close(e, err);
    return st ? st : volume_open(e, err);
}

static void count_message(export_run *e, uint64_t serial, uint64_t attachments, uint64_t originals,
                          uint64_t missing)
{
    if (e->cur.nserials == e->cur.cap)
        e->cur.serials = mv_xrealloc(e->cur.serials,
                                     (e->cur.cap = e->cur.cap ? e->cur.cap * 2 : 256) *
                                         sizeof *e->cur.serials);
    e->cur.serials[e->cur.nserials++] = serial;
    e->cur.documents += 1 + attachments;
    e->cur.messages++;
    e->cur.attachments += attachments;
    e->cur.originals += originals;
    e->cur.missing += missing;
    e->documents += 1 + attachments;
    e->messages++;
    e->attachments += attachments;
    e->originals += originals;
    e->missing += missing;
    if (e->kind)
        e->ctrl += 1 + attachments;
}

/* ---- eml and mbox ------------------------------------------------------------ */

/* mbox_entry - one message as it stands in the mbox: separator, quoted
 * bytes, and the blank line that ends it. */
static void mbox_entry(uint64_t serial, const mv_buf *msg, mv_buf *out)
{
    mv_buf_reset(out);
    /* the separator's address and date carry nothing a reader needs: the
     * message's own headers are exported exactly */
    mv_buf_printf(out, "From mailvault-serial-%llu Thu Jan  1 00:00:00 1970\n",
                  (unsigned long long)serial);
    mv_mboxrd_quote(msg->data, msg->len, out);
    if (msg->len && msg->data[msg->len - 1] != '\n')
        mv_buf_append_byte(out, '\n');
    mv_buf_append_byte(out, '\n');
}

/* ---- reading ahead ------------------------------------------------------- */

/* While the main thread compresses and writes message i into the package,
 * one more thread reads and decrypts the next ones from the store (their
 * record, bytes, original, copies, stored text) and decodes their
 * attachments: the export's two halves then take about the same CPU, and
 * the machine has two cores.  Everything that touches the package, the
 * load file, control numbers and counters stays on the main thread, so the
 * package is written in the same order and byte for byte as it was by one
 * thread; a failed read is told when the main thread reaches its message,
 * with the status and message it had when it was read in line.
 *
 * The store's read calls are safe from a second thread (store/store.c,
 * keys.c, seal.c): RocksDB reads and iterators are; a KEK is unwrapped
 * under the keystore's mutex and never freed while the store is open; the
 * zstd, GCM and KWP contexts are per thread; decompression dictionaries
 * load under dict_mu and live until close; nothing the read path touches
 * (no per-store scratch, no counters) is shared with the main thread's
 * store calls in volume_close (proofs: log_mu; signing; the matter's
 * counter), which only read or write other records.  Extraction
 * (search/extract.c) keeps no state between calls but what it sets up
 * once (pthread_once) and the charset converters it pins under its mutex;
 * the index's workers run it on several threads the same way.
 *
 * Memory: the reader runs at most EXPORT_READ_AHEAD messages ahead of the
 * one being written, and starts none while the messages it has handed over
 * hold EXPORT_READ_AHEAD_BYTES or more.  So an export holds at most
 * EXPORT_READ_AHEAD + 1 messages at once, and beside the largest of them
 * less than EXPORT_READ_AHEAD_BYTES: where it held one message it holds a
 * few, a bound fixed in advance that never grows with the size of the
 * export (what the one-message rule is for). */
#define EXPORT_READ_AHEAD 2u
#define EXPORT_READ_AHEAD_BYTES ((size_t)32 << 20)
/* A message's attachments are decoded ahead (as the main thread would,
 * mv_extract_attachments) while they add up to at most this; past it the
 * main thread decodes them one at a time, as it did alone. */
#define EXPORT_READ_AHEAD_CHILD_BYTES ((size_t)8 << 20)
#define RA_SLOTS (EXPORT_READ_AHEAD + 1u)
/* A slot's buffers keep their memory from message to message up to this;
 * larger ones are wiped and freed once their message is written. */
#define RA_KEEP_BYTES ((size_t)1 << 20)

/* What one export form reads of a message. */
typedef enum {
    RA_LOADFILE, /* record, bytes, copies, stored text, attachments (and the original
                  * and the text made anew with natives) */
    RA_EML,      /* bytes, and the original beside decrypted mail */
    RA_MBOX      /* the message as it stands in the mbox (mbox_entry) */
} ra_what;

enum { RA_FREE, RA_READY, RA_TAKEN };

/* An attachment decoded ahead: what mv_extract_attachments handed over,
 * owned. */
typedef struct ra_kid {
    mv_attachment a;
    char *filename, *name, *ext, *mimetype;
    uint8_t *data;
} ra_kid;

/* One message read ahead.  st/err: reading the record, the bytes or the
 * copies failed (the export stops there, with this status and message, as
 * it did when it read in line); ost/oerr: reading the original failed
 * (which fails the export only after the native is written, as before). */
typedef struct ra_msg {
    int state; /* RA_FREE .. RA_TAKEN, under the reader's mutex */
    uint64_t serial;
    mv_status st, ost;
    mv_err err, oerr;
    mv_message *m;
    mv_decryption *d;
    mv_copy **cs;
    size_t nc;
    int dec;
    mv_buf b;    /* the form exported (RA_MBOX: the mbox entry) */
    mv_buf orig; /* the original, beside decrypted mail */
    mv_buf t;    /* scratch: the stored text */
    mv_extract *x; /* the stored text decoded; NULL: none that fits these bytes */
    /* kids_ok: the attachments were decoded ahead, all nkids of them, in
     * part order; else the main thread decodes them */
    int kids_ok;
    ra_kid *kids;
    size_t nkids, kcap, kid_bytes;
    size_t bytes; /* what it holds, for EXPORT_READ_AHEAD_BYTES */
} ra_msg;

typedef struct reader {
    mv_store *s;
    ra_what what;
    int natives;         /* RA_LOADFILE: natives are written (not csv) */
    size_t attach_limit; /* RA_LOADFILE: --attachment-limit */
    const uint64_t *v;
    size_t n;
    pthread_t t;
    int threaded; /* 0: no thread (one message, or none could start): read in line */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    size_t held; /* bytes of the messages handed over and not yet released */
    ra_msg slot[RA_SLOTS];
} reader;

static void ra_kids_free(ra_msg *q)
{
    for (size_t i = 0; i < q->nkids; i++) {
        ra_kid *k = &q->kids[i];
        free(k->filename);
        free(k->name);
        free(k->ext);
        free(k->mimetype);
        if (k->data)
            OPENSSL_cleanse(k->data, k->a.len);
        free(k->data);
    }
    q->nkids = q->kid_bytes = 0;
    q->kids_ok = 0;
}

/* ra_collect - an attachment decoded ahead (mv_attachment_fn), copied;
 * MV_ELIMIT past EXPORT_READ_AHEAD_CHILD_BYTES (the main thread then
 * decodes them itself). */
static mv_status ra_collect(void *ctx, const mv_attachment *a, mv_err *err)
{
    (void)err;
    ra_msg *q = ctx;
    if (a->len > EXPORT_READ_AHEAD_CHILD_BYTES - q->kid_bytes)
        return MV_ELIMIT;
    if (q->nkids == q->kcap)
        q->kids = mv_xrealloc(q->kids, (q->kcap = q->kcap ? q->kcap * 2 : 8) * sizeof *q->kids);
    ra_kid *k = &q->kids[q->nkids++];
    memset(k, 0, sizeof *k);
    k->a = *a;
    k->a.filename = k->filename = a->filename ? mv_xstrdup(a->filename) : NULL;
    k->a.name = k->name = mv_xstrdup(a->name);
    k->a.ext = k->ext = mv_xstrdup(a->ext);
    k->a.mimetype = k->mimetype = mv_xstrdup(a->mimetype);
    if (a->data) {
        k->data = mv_xmalloc(a->len ? a->len : 1);
        memcpy(k->data, a->data, a->len);
    }
    k->a.data = k->data;
    q->kid_bytes += a->len;
    return MV_OK;
}

/* ra_read - read message serial into q (no lock held: q is the reader's
 * until it is marked ready). */
static void ra_read(reader *r, ra_msg *q, uint64_t serial)
{
    mv_store *s = r->s;
    q->serial = serial;
    q->st = q->ost = MV_OK;
    q->dec = 0;
    memset(&q->err, 0, sizeof q->err);
    memset(&q->oerr, 0, sizeof q->oerr);
    q->bytes = 0;
    if (r->what == RA_MBOX) {
        if (!(q->st = message_bytes(s, serial, 0, &q->t, &q->dec, NULL, &q->err)))
            mbox_entry(serial, &q->t, &q->b);
        mv_buf_reset(&q->t);
        q->dec = 0;
    } else if (r->what == RA_EML) {
        q->st = message_bytes(s, serial, 0, &q->b, &q->dec, NULL, &q->err);
    } else if ((q->st = mv_store_message(s, serial, &q->m, &q->err)) ||
               (q->st = message_bytes(s, serial, 0, &q->b, &q->dec, &q->d, &q->err)) ||
               (q->st = mv_store_copies(s, serial, &q->cs, &q->nc, &q->err))) {
        /* the export fails at this message */
    }
    int dec2;
    if (!q->st && q->dec && (r->what == RA_EML || r->natives))
        q->ost = message_bytes(s, serial, 1, &q->orig, &dec2, NULL, &q->oerr);
    if (!q->st && r->what == RA_LOADFILE) {
        /* the text, stored once at indexing (when it was made from these
         * bytes): it also says whether there are attachments at all */
        mv_buf_reset(&q->t);
        if (mv_store_text(s, serial, &q->t, NULL) != MV_OK ||
            mv_extract_decode(q->t.data, q->t.len, &q->x, NULL) != MV_OK ||
            q->x->size != q->b.len) {
            mv_extract_free(q->x);
            q->x = NULL;
        }
        q->bytes = q->t.len;
        mv_buf_reset(&q->t);
        /* the attachments, as lf_family would decode them (a message in
         * which the extraction found none is not parsed again) */
        if (!q->x || q->x->n_attachments) {
            q->kids_ok = mv_extract_attachments(q->b.data, q->b.len, NULL, r->attach_limit,
                                                ra_collect, q, NULL, NULL) == MV_OK;
            if (!q->kids_ok)
                ra_kids_free(q);
        }
        /* the text made anew if there was none, or if it was made under
         * other limits (its parts must be these children) */
        if (q->kids_ok && r->natives && (!q->x || q->x->n_attachments != q->nkids)) {
            mv_extract_free(q->x);
            q->x = NULL;
            if (mv_extract_message(q->b.data, q->b.len, NULL, &q->x, NULL) != MV_OK) {
                mv_extract_free(q->x);
                q->x = NULL;
            }
        }
    }
    q->bytes += q->b.len + q->orig.len + q->kid_bytes;
}

/* ra_clear - what q holds freed; small buffers kept for the next message. */
static void ra_clear(ra_msg *q)
{
    mv_message_free(q->m);
    mv_decryption_free(q->d);
    mv_copies_free(q->cs, q->nc);
    mv_extract_free(q->x);
    ra_kids_free(q);
    q->m = NULL;
    q->d = NULL;
    q->cs = NULL;
    q->nc = 0;
    q->x = NULL;
    q->bytes = 0;
    if (q->b.cap > RA_KEEP_BYTES)
        mv_buf_wipe(&q->b);
    mv_buf_reset(&q->b);
    if (q->t.cap > RA_KEEP_BYTES)
        mv_buf_wipe(&q->t);
    mv_buf_reset(&q->t);
    mv_buf_wipe(&q->orig);
}

static void *ra_main(void *arg)
{
    reader *r = arg;
    for (size_t i = 0; i < r->n; i++) {
        ra_msg *q = &r->slot[i % RA_SLOTS];
        pthread_mutex_lock(&r->mu);
        while (!r->stop && (q->state != RA_FREE || r->held >= EXPORT_READ_AHEAD_BYTES))
            pthread_cond_wait(&r->cv, &r->mu);
        int stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
        ra_read(r, q, r->v[i]);
        pthread_mutex_lock(&r->mu);
        q->state = RA_READY;
        r->held += q->bytes;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        if (q->st || q->ost) /* the export stops at this message */
            break;
    }
    return NULL;
}

/* ra_start - read the messages v[0..n) ahead, in order, for what.  Reading
 * goes on in line when no thread can be started (or one message alone). */
static void ra_start(reader *r, mv_store *s, ra_what what, int natives, size_t attach_limit,
                     const uint64_t *v, size_t n)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    r->what = what;
    r->natives = natives;
    r->attach_limit = attach_limit;
    r->v = v;
    r->n = n;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (n < 2)
        return;
    /* signals sent to the process go to the main thread, which owns the
     * package (a fault stays with the thread that caused it) */
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    sigset_t all, old;
    sigfillset(&all);
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++)
        sigdelset(&all, faults[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r->threaded = pthread_create(&r->t, NULL, ra_main, r) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ra_take - message v[i], the next in order (i counts up from 0 by one);
 * the caller's until ra_release. */
static ra_msg *ra_take(reader *r, size_t i)
{
    ra_msg *q = &r->slot[i % RA_SLOTS];
    if (!r->threaded) {
        ra_read(r, q, r->v[i]);
        q->state = RA_TAKEN;
        return q;
    }
    pthread_mutex_lock(&r->mu);
    while (q->state != RA_READY)
        pthread_cond_wait(&r->cv, &r->mu);
    q->state = RA_TAKEN;
    pthread_mutex_unlock(&r->mu);
    mv_assert(q->serial == r->v[i]);
    return q;
}

static void ra_release(reader *r, ra_msg *q)
{
    size_t bytes = q->bytes;
    ra_clear(q);
    pthread_mutex_lock(&r->mu);
    q->state = RA_FREE;
    r->held -= r->threaded ? bytes : 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* ra_stop - the reader stopped (wherever it is: after the last message, or
 * after a failure) and joined, and every message it holds wiped. */
static void ra_stop(reader *r)
{
    if (r->threaded) {
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->t, NULL);
    }
    for (size_t i = 0; i < RA_SLOTS; i++) {
        ra_clear(&r->slot[i]);
        free(r->slot[i].kids);
        mv_buf_wipe(&r->slot[i].b);
        mv_buf_wipe(&r->slot[i].t);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

/* ra_fail - a failed read of q handed to the caller: its status, and its
 * message in err. */
static mv_status ra_fail(mv_status st, const mv_err *from, mv_err *err)
{
    if (err)
        *err = *from;
    return st;
}

static mv_status export_eml(export_run *e, const uint64_t *v, size_t n, struct mv_progress *pg,
                            mv_err *err)
{
    mv_status st = MV_OK;
    reader r;
    ra_start(&r, e->s, RA_EML, 1, 0, v, n);
    for (size_t i = 0; i < n && !st; i++) {
        ra_msg *q = ra_take(&r, i);
        char name[64];
        snprintf(name, sizeof name, "natives/%llu.eml", (unsigned long long)v[i]);
        if (q->st)
            st = ra_fail(q->st, &q->err, err);
        else if (!(st = mv_pkg_add(e->pkg, name, q->b.data, q->b.len, 0, err)) && q->dec) {
            snprintf(name, sizeof name, "natives/%llu.original.eml", (unsigned long long)v[i]);
            st = q->ost ? ra_fail(q->ost, &q->oerr, err)
                        : mv_pkg_add(e->pkg, name, q->orig.data, q->orig.len, 0, err);
        }
        if (!st) {
            count_message(e, v[i], 0, q->dec, 0);
            st = family_done(e, i + 1 < n, err);
            mv_progress_update(pg, i + 1, 0);
        }
        ra_release(&r, q);
    }
    ra_stop(&r);
    return st;
}

/* export_mbox - one messages.mbox per volume.  A tar or ZIP entry
 * announces its size first: the messages of a volume are measured (up to
 * --split-size), then written (each pass reading a few messages ahead). */
static mv_status export_mbox(export_run *e, const uint64_t *v, size_t n, struct mv_progress *pg,
                             mv_err *err)
{
    mv_status st = MV_OK;
    size_t start = 0;
    reader r;
    do {
        /* measured: read ahead from start on; with --split-size the
         * reader is stopped where the volume is full (what it read beyond
         * is dropped) */
        uint64_t total = 0;
        size_t end = start;
        ra_start(&r, e->s, RA_MBOX, 0, 0, v + start, n - start);
        while (end < n && !st && (!e->a->split || total < e->a->split)) {
            ra_msg *q = ra_take(&r, end - start);
            if (q->st)
                st = ra_fail(q->st, &q->err, err);
            else {
                total += q->b.len;
                end++;
            }
            ra_release(&r, q);
        }
        ra_stop(&r);
        if (!st && start && (st = volume_open(e, err)))
            break;
        if (!st)
            st = mv_pkg_begin(e->pkg, "messages.mbox", total, 0, err);
        /* written: read again, ahead */
        ra_start(&r, e->s, RA_MBOX, 0, 0, v + start, end - start);
        for (size_t i = start; i < end && !st; i++) {
            ra_msg *q = ra_take(&r, i - start);
            if (q->st)
                st = ra_fail(q->st, &q->err, err);
            else {
                if (!(st = mv_pkg_write(e->pkg, q->b.data, q->b.len, err)))
                    count_message(e, v[i], 0, 0, 0);
                mv_progress_update(pg, i + 1, 0);
            }
            ra_release(&r, q);
        }
        ra_stop(&r);
        if (!st)
            st = mv_pkg_end(e->pkg, err);
        if (!st && end < n)
            st = volume_close(e, err);
        start = end;
    } while (!st && start < n);
    return st;
}

/* ---- load files (dat, csv, edrm) ----------------------------------------- */

/* A child document, as far as its record needs it once the family's last
 * child is written. */
typedef struct child {
    uint32_t part;
    char *name, *ext, *mimetype, *reason;
    uint64_t size;
    int hashed; /* md5 .. sha256 hold its native's hashes */
    int native; /* natives/CTRL.ext written */
    char md5[33], sha1[41], sha256[65];
} child;

typedef struct family {
    export_run *e;
    uint64_t first; /* the message's control number; child k is first + k */
    child *k;
    size_t n, cap;
} family;

static void family_clear(family *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->k[i].name);
        free(f->k[i].ext);
        free(f->k[i].mimetype);
        free(f->k[i].reason);
    }
    f->n = 0;
}

/* one_child - an attachment (mv_extract_attachments): its native written
 * (dat, edrm) or hashed (csv), what its record needs kept. */
static mv_status one_child(void *ctx, const mv_attachment *a, mv_err *err)
{
    family *f = ctx;
    export_run *e = f->e;
    if (a->part != f->n + 1)
        return mv_err_set(err, MV_EINTERNAL, "attachment %u handed over as the %zu-th",
                          a->part, f->n + 1);
    if (f->n == f->cap)
        f->k = mv_xrealloc(f->k, (f->cap = f->cap ? f->cap * 2 : 8) * sizeof *f->k);
    child *k = &f->k[f->n++];
    memset(k, 0, sizeof *k);
    k->part = a->part;
    k->name = mv_xstrdup(a->name);
    k->ext = mv_xstrdup(a->ext);
    k->mimetype = mv_xstrdup(a->mimetype);
    k->size = a->size;
    if (!a->data) {
        k->reason = mv_xasprintf("native not exported: %llu bytes, over the attachment limit "
                                 "of %zu bytes (--attachment-limit)",
                                 (unsigned long long)a->size, e->attach_limit);
        return MV_OK;
    }
    k->hashed = 1;
    if (e->kind == MV_LF_CSV) {
        hex_of(a->data, a->len, EVP_md5(), k->md5);
        hex_of(a->data, a->len, EVP_sha1(), k->sha1);
        hex_of(a->data, a->len, EVP_sha256(), k->sha256);
        return MV_OK;
    }
    char ctrl[64], path[96];
    ctrl_str(e, f->first + a->part, ctrl);
    snprintf(path, sizeof path, "natives/%s.%s", ctrl, a->ext);
    mv_status st = mv_pkg_add(e->pkg, path, a->data, a->len, 0, err);
    if (st)
        return st;
    uint8_t h5[16], h1[20], h256[32];
    mv_pkg_last_hashes(e->pkg, h5, h1, h256);
    mv_hex(h5, 16, k->md5);
    mv_hex(h1, 20, k->sha1);
    mv_hex(h256, 32, k->sha256);
    k->native = 1;
    return MV_OK;
}

/* custodians_of - the custodians one of whose addresses takes part in the
 * message (headers or envelope), ';'-separated. */
static void custodians_of(const mv_custodian *cu, size_t ncu, const char *who, mv_buf *out)
{
    for (size_t i = 0; i < ncu; i++)
        for (size_t k = 0; k < cu[i].n_addresses; k++) {
            const char *a = cu[i].addresses[k];
            size_t al = strlen(a);
            int hit = 0;
            for (const char *p = strstr(who, a); p && !hit; p = strstr(p + 1, a)) {
                char before = p == who ? ' ' : p[-1], after = p[al];
                hit = !strchr("abcdefghijklmnopqrstuvwxyz0123456789._%+-", before) &&
                      !strchr("abcdefghijklmnopqrstuvwxyz0123456789._-", after ? after : ' ');
            }
            if (hit) {
                if (out->len)
                    mv_buf_append_byte(out, ';');
                mv_buf_append_str(out, cu[i].name);
                break;
            }
        }
}

/* parent_text - a message's text file: its header lines, the body, and
 * the names of its attachments with their control numbers (their text is
 * in their own files). */
static void parent_text(const export_run *e, const mv_extract *x, const mv_message *m,
                        const family *f, mv_buf *out)
{
    mv_buf_printf(out, "From: %s\r\nTo: %s\r\n", m->meta.from ? m->meta.from : "",
                  m->meta.to ? m->meta.to : "");
    if (m->meta.cc)
        mv_buf_printf(out, "Cc: %s\r\n", m->meta.cc);
    mv_buf_printf(out, "Date: %s\r\nSubject: %s\r\n\r\n", m->meta.date ? m->meta.date : "",
                  m->meta.subject ? m->meta.subject : "");
    for (size_t i = 0; x && i < x->n; i++)
        if (x->s[i].kind == MV_XS_BODY) {
            mv_buf_append(out, x->s[i].text, x->s[i].len);
            mv_buf_append_str(out, "\r\n");
        }
    if (!f->n)
        return;
    mv_buf_printf(out, "\r\nAttachments (%zu, each a document of its own):\r\n", f->n);
    for (size_t i = 0; i < f->n; i++) {
        char ctrl[64];
        ctrl_str(e, f->first + f->k[i].part, ctrl);
        mv_buf_printf(out, "  %s  %s\r\n", ctrl, f->k[i].name);
    }
}

/* child_text - an attachment's text: the extraction's ATTACH_TEXT of its
 * part (for an attached message its headers, body and its own
 * attachments' text). */
static void child_text(const mv_extract *x, uint32_t part, mv_buf *out)
{
    for (size_t i = 0; x && i < x->n; i++)
        if (x->s[i].kind == MV_XS_ATTACH_TEXT && x->s[i].part == part) {
            if (out->len)
                mv_buf_append_str(out, "\r\n");
            mv_buf_append(out, x->s[i].text, x->s[i].len);
        }
}

/* A document's record beyond its fields: how EDRM lists it. */
typedef struct doc {
    const char *val[LF_NFIELDS];
    const char *doctype, *mimetype;
    const char *native_name, *native_size, *native_md5; /* NULL: no native */
    const char *text_name;                              /* NULL: no text */
    size_t text_size;
} doc;

/* emit - one record into the spooled load file. */
static mv_status emit(export_run *e, const doc *d, mv_err *err)
{
    mv_buf *rec = &e->rec;
    mv_buf_reset(rec);
    if (e->kind != MV_LF_EDRM) {
        for (int k = 0; k < LF_NFIELDS; k++)
            mv_lf_field(e->kind, d->val[k], k == 0, rec);
        mv_lf_end_record(e->kind, rec);
        return put(e->lf, rec, err);
    }
    mv_buf_append_str(rec, "<Document DocID=\"");
    mv_xml_text(d->val[F_BEGDOC], rec);
    mv_buf_printf(rec, "\" DocType=\"%s\" MimeType=\"", d->doctype);
    mv_xml_text(d->mimetype, rec);
    mv_buf_append_str(rec, "\">\r\n<Files>\r\n");
    if (d->native_name)
        mv_buf_printf(rec, "<File FileType=\"Native\"><ExternalFile FilePath=\"natives\" "
                           "FileName=\"%s\" FileSize=\"%s\" Hash=\"%s\" HashType=\"MD5\"/>"
                           "</File>\r\n", d->native_name, d->native_size, d->native_md5);
    if (d->text_name)
        mv_buf_printf(rec, "<File FileType=\"Text\"><ExternalFile FilePath=\"text\" "
                           "FileName=\"%s\" FileSize=\"%zu\"/></File>\r\n",
                      d->text_name, d->text_size);
    mv_buf_append_str(rec, "</Files>\r\n<Tags>\r\n");
    for (int k = F_BEGATTACH; k < LF_NFIELDS; k++) {
        if (!d->val[k] || !*d->val[k])
            continue;
        mv_buf_append_str(rec, "<Tag TagName=\"");
        mv_xml_text(edrm_tag[k] ? edrm_tag[k] : lf_fields[k], rec);
        mv_buf_append_str(rec, "\" TagValue=\"");
        mv_xml_text(d->val[k], rec);
        mv_buf_printf(rec, "\" TagDataType=\"%s\"/>\r\n",
                      k == F_FILESIZE || k == F_ATTCOUNT || k == F_SERIAL ? "Integer" : "Text");
    }
    if (d->val[F_DATESENT] && *d->val[F_DATESENT])
        mv_buf_printf(rec, "<Tag TagName=\"#DateSent\" TagValue=\"%sT%sZ\" "
                           "TagDataType=\"DateTime\"/>\r\n",
                      d->val[F_DATESENT], d->val[F_TIMESENT]);
    mv_buf_append_str(rec, "</Tags>\r\n");
    if (d->val[F_CUSTODIAN] && *d->val[F_CUSTODIAN]) {
        mv_buf_append_str(rec, "<Custodian>");
        mv_xml_text(d->val[F_CUSTODIAN], rec);
        mv_buf_append_str(rec, "</Custodian>\r\n");
    }
    mv_buf_append_str(rec, "</Document>\r\n");
    return put(e->lf, rec, err);
}

/* relate - EDRM's Relationship of a child to its message, spooled until
 * the documents are all written. */
static mv_status relate(export_run *e, const char *parent, const char *child_ctrl, mv_err *err)
{
    mv_buf r = MV_BUF_INIT;
    mv_buf_append_str(&r, "<Relationship Type=\"Attachment\" ParentDocId=\"");
    mv_xml_text(parent, &r);
    mv_buf_append_str(&r, "\" ChildDocId=\"");
    mv_xml_text(child_ctrl, &r);
    mv_buf_append_str(&r, "\"/>\r\n");
    mv_status st = put(e->rel, &r, err);
    mv_buf_free(&r);
    return st;
}

/* lf_family - a message and its attachments: natives, text files and
 * records, parent first, children in part order. */
static mv_status lf_family(export_run *e, ra_msg *q, family *f, mv_err *err)
{
    /* what was read ahead (ra_read) is this function's now, as if read here */
    uint64_t serial = q->serial;
    mv_message *m = q->m;
    mv_decryption *d = q->d;
    mv_copy **cs = q->cs;
    size_t nc = q->nc;
    mv_extract *x = q->x;
    const mv_buf *b = &q->b;
    q->m = NULL;
    q->d = NULL;
    q->cs = NULL;
    q->nc = 0;
    q->x = NULL;
    mv_buf env = MV_BUF_INIT, names = MV_BUF_INIT, dstat = MV_BUF_INIT;
    int dec = q->dec, natives = e->kind != MV_LF_CSV;
    uint32_t count = 0;
    char ctrl[64], last[64] = "", native[96] = "", original[96] = "", textp[96] = "",
         fname[80], md5[33], sha1[41], sha256[65], size[24], serial_s[24], recv[32],
         ds[16] = "", ts[16] = "", natt[16];
    family_clear(f);
    f->first = e->ctrl;
    ctrl_str(e, f->first, ctrl);
    snprintf(fname, sizeof fname, "%s.eml", ctrl);
    mv_status st;
    if ((st = q->st)) {
        st = ra_fail(st, &q->err, err);
        goto out;
    }
    if (natives) {
        snprintf(native, sizeof native, "natives/%s", fname);
        if ((st = mv_pkg_add(e->pkg, native, b->data, b->len, 0, err)))
            goto out;
        uint8_t h5[16], h1[20], h256[32];
        mv_pkg_last_hashes(e->pkg, h5, h1, h256);
        mv_hex(h5, 16, md5);
        mv_hex(h1, 20, sha1);
        mv_hex(h256, 32, sha256);
        if (dec) {
            snprintf(original, sizeof original, "natives/%s.original.eml", ctrl);
            if (q->ost) {
                st = ra_fail(q->ost, &q->oerr, err);
                goto out;
            }
            if ((st = mv_pkg_add(e->pkg, original, q->orig.data, q->orig.len, 0, err)))
                goto out;
            dec = 1;
            mv_buf_wipe(&q->orig);
        }
    } else { /* metadata only: hashed here, no native written */
        hex_of(b->data, b->len, EVP_md5(), md5);
        hex_of(b->data, b->len, EVP_sha1(), sha1);
        hex_of(b->data, b->len, EVP_sha256(), sha256);
    }
    /* x: the text stored at indexing, read ahead (ra_read) */
    mv_buf_wipe(&e->t);
    /* the children: one attachment decoded at a time.  A message in which
     * the extraction found none is not parsed again: under any limits, no
     * attachment at the top means no attached message to look deeper in */
    f->e = e;
    if (q->kids_ok) { /* decoded ahead: handed over here in the same order */
        for (size_t k = 0; k < q->nkids; k++, count++)
            if ((st = one_child(f, &q->kids[k].a, err)))
                goto out;
    } else if ((!x || x->n_attachments) &&
               (st = mv_extract_attachments(b->data, b->len, NULL, e->attach_limit, one_child,
                                            f, &count, err))) {
        goto out;
    }
    if (natives) {
        /* the text made now if there was none, or if it was made under
         * other limits (its parts must be these children) */
        if (!x || x->n_attachments != count) {
            mv_extract_free(x);
            x = NULL;
            if ((st = mv_extract_message(b->data, b->len, NULL, &x, err)))
                goto out;
        }
        parent_text(e, x, m, f, &e->t);
        snprintf(textp, sizeof textp, "text/%s.txt", ctrl);
        if ((st = mv_pkg_add(e->pkg, textp, e->t.data, e->t.len, 0, err)))
            goto out;
    }
    snprintf(size, sizeof size, "%zu", b->len);
    snprintf(serial_s, sizeof serial_s, "%llu", (unsigned long long)serial);
    mv_fmt_time(m->received_us / 1000000, recv, sizeof recv);
    if (m->meta.date_t != INT64_MIN) {
        char iso[32];
        mv_fmt_time(m->meta.date_t, iso, sizeof iso);
        snprintf(ds, sizeof ds, "%.10s", iso);
        snprintf(ts, sizeof ts, "%.8s", iso + 11);
    }
    /* envelope recipients of every copy, and who takes part */
    for (size_t k = 0; k < nc; k++)
        for (size_t r = 0; r < cs[k]->n_rcpt; r++) {
            if (env.len)
                mv_buf_append_byte(&env, ';');
            mv_buf_append_str(&env, cs[k]->rcpt[r]);
        }
    mv_buf_append_byte(&env, 0);
    mv_buf_reset(&e->who);
    mv_buf_printf(&e->who, "%s %s %s %s %s", m->meta.from ? m->meta.from : "",
                  m->meta.to ? m->meta.to : "", m->meta.cc ? m->meta.cc : "",
                  m->meta.bcc ? m->meta.bcc : "", (char *)env.data);
    for (size_t k = 0; k < e->who.len; k++)
        if (e->who.data[k] >= 'A' && e->who.data[k] <= 'Z')
            e->who.data[k] = (uint8_t)(e->who.data[k] - 'A' + 'a');
    mv_buf_append_byte(&e->who, 0);
    mv_buf_reset(&e->cust);
    custodians_of(e->cu, e->ncu, (const char *)e->who.data, &e->cust);
    mv_buf_append_byte(&e->cust, 0);
    for (size_t k = 0; k < f->n; k++) {
        if (k)
            mv_buf_append_byte(&names, ';');
        mv_buf_append_str(&names, f->k[k].name);
    }
    mv_buf_append_byte(&names, 0);
    snprintf(natt, sizeof natt, "%zu", f->n);
    if (f->n)
        ctrl_str(e, f->first + f->n, last);
    const char *enc = !d || !(d->decrypted || (d->scheme && *d->scheme))
                          ? "none"
                      : d->scheme && !strncmp(d->scheme, "smime", 5) ? "S/MIME"
                      : d->scheme && !strncmp(d->scheme, "pgp", 3)   ? "PGP"
                                                                      : "encrypted";
    if (d && strcmp(enc, "none"))
        mv_buf_printf(&dstat, "%s%s%s", d->decrypted ? "decrypted" : "undecryptable",
                      !d->decrypted && d->failure ? ": " : "",
                      !d->decrypted && d->failure ? d->failure : "");
    mv_buf_append_byte(&dstat, 0);
    const char *sig = d ? mv_sig_status_name((mv_sig_status)d->sig) : "none";
    /* a family's range on every member; none on a message alone */
    const char *beg = f->n ? ctrl : "", *end = f->n ? last : "";
    doc pd = {{ctrl, ctrl, beg, end, "", natt, (char *)names.data, (char *)e->cust.data,
               m->meta.from, m->meta.to, m->meta.cc, m->meta.bcc, (char *)env.data,
               m->meta.subject, ds, ts, "UTC", m->meta.message_id, m->meta.in_reply_to, fname,
               "eml", size, md5, sha1, sha256, native, original, textp, enc,
               (char *)dstat.data, sig, serial_s, recv, ""},
              "Message", "message/rfc822", natives ? fname : NULL, size, md5, NULL, e->t.len};
    char ptext[80];
    snprintf(ptext, sizeof ptext, "%s.txt", ctrl);
    pd.text_name = natives ? ptext : NULL;
    if ((st = emit(e, &pd, err)))
        goto out;
    for (size_t k = 0; k < f->n && !st; k++) {
        child *c = &f->k[k];
        char cctrl[64], cfile[96], cnative[112] = "", ctext[96] = "", cname[80], csize[24];
        ctrl_str(e, f->first + c->part, cctrl);
        snprintf(cfile, sizeof cfile, "%s.%s", cctrl, c->ext);
        snprintf(csize, sizeof csize, "%llu", (unsigned long long)c->size);
        if (c->native)
            snprintf(cnative, sizeof cnative, "natives/%s", cfile);
        if (natives) {
            mv_buf_wipe(&e->t);
            child_text(x, c->part, &e->t);
            snprintf(ctext, sizeof ctext, "text/%s.txt", cctrl);
            if ((st = mv_pkg_add(e->pkg, ctext, e->t.data ? e->t.data : (const uint8_t *)"",
                                 e->t.len, 0, err)))
                break;
        }
        snprintf(cname, sizeof cname, "%s.txt", cctrl);
        doc cd = {{cctrl, cctrl, ctrl, last, ctrl, "", "", (char *)e->cust.data, "", "", "", "",
                   "", "", ds, ts, "UTC", "", "", c->name, c->ext, csize,
                   c->hashed ? c->md5 : "", c->hashed ? c->sha1 : "", c->hashed ? c->sha256 : "",
                   cnative, "", ctext, enc, (char *)dstat.data, sig, serial_s, recv,
                   c->reason ? c->reason : ""},
                  "File", c->mimetype, c->native ? cfile : NULL, csize, c->md5,
                  natives ? cname : NULL, e->t.len};
        if (!(st = emit(e, &cd, err)) && e->kind == MV_LF_EDRM)
            st = relate(e, ctrl, cctrl, err);
    }
    if (st)
        goto out;
    uint64_t missing = 0;
    for (size_t k = 0; k < f->n; k++)
        missing += f->k[k].reason != NULL;
    count_message(e, serial, f->n, dec, missing);
out:
    mv_buf_free(&env);
    mv_buf_free(&names);
    mv_buf_free(&dstat);
    mv_extract_free(x);
    mv_copies_free(cs, nc);
    mv_decryption_free(d);
    mv_message_free(m);
    return st;
}

static mv_status export_loadfile(export_run *e, const uint64_t *v, size_t n, struct mv_progress *pg,
                                 mv_err *err)
{
    family f;
    memset(&f, 0, sizeof f);
    mv_status st = MV_OK;
    reader r;
    ra_start(&r, e->s, RA_LOADFILE, e->kind != MV_LF_CSV, e->attach_limit, v, n);
    for (size_t i = 0; i < n && !st; i++) {
        ra_msg *q = ra_take(&r, i);
        if (!(st = lf_family(e, q, &f, err)))
            st = family_done(e, i + 1 < n, err);
        ra_release(&r, q);
        mv_progress_update(pg, i + 1, 0);
    }
    ra_stop(&r);
    family_clear(&f);
    free(f.k);
    return st;
}

/* split_dir - with --split-size into a directory: the directory that
 * holds the volumes (new, or existing and empty). */
static mv_status split_dir(export_run *e, mv_err *err)
{
    const char *out = e->a->out;
    if (mkdir(out, 0750) == 0) {
        e->made_dir = 1;
        return MV_OK;
    }
    if (errno != EEXIST)
        return mv_err_sys(err, "creating %s", out);
    struct stat sb;
    DIR *d = stat(out, &sb) == 0 && S_ISDIR(sb.st_mode) ? opendir(out) : NULL;
    int empty = d != NULL;
    for (struct dirent *de; empty && (de = readdir(d));)
        empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
    if (d)
        closedir(d);
    return empty ? MV_OK
                 : mv_err_set(err, MV_EEXIST, "%s exists: an export goes to a new place", out);
}

static void summary(const export_run *e, const mv_cli *c, const char *fpr)
{
    if (c->json) {
        uint64_t files = 0, bytes = 0;
        for (size_t i = 0; i < e->ndone; i++) {
            files += e->done[i].files;
            bytes += e->done[i].bytes;
        }
        fprintf(cli_out, "{");
        json_kv_str(cli_out, "package", e->a->out, 0);
        json_kv_str(cli_out, "export_id", e->export_id, 1);
        json_kv_u64(cli_out, "documents", e->documents, 1);
        json_kv_u64(cli_out, "messages", e->messages, 1);
        json_kv_u64(cli_out, "attachments", e->attachments, 1);
        json_kv_u64(cli_out, "attachments_without_native", e->missing, 1);
        json_kv_u64(cli_out, "originals", e->originals, 1);
        json_kv_u64(cli_out, "files", files, 1);
        json_kv_u64(cli_out, "bytes", bytes, 1);
        json_kv_str(cli_out, "manifest_sha256",
                    e->a->split || !e->ndone ? NULL : e->done[0].manifest, 1);
        json_kv_str(cli_out, "signing_key_sha256", fpr, 1);
        fprintf(cli_out, ",\"volumes\":[");
        for (size_t i = 0; i < e->ndone; i++) {
            const volume *v = &e->done[i];
            fprintf(cli_out, "%s{", i ? "," : "");
            json_kv_u64(cli_out, "volume", v->no, 0);
            json_kv_str(cli_out, "package", v->path, 1);
            if (e->kind && v->documents) {
                char lo[64], hi[64];
                ctrl_str(e, v->first_ctrl, lo);
                ctrl_str(e, v->first_ctrl + v->documents - 1, hi);
                json_kv_str(cli_out, "first_control_number", lo, 1);
                json_kv_str(cli_out, "last_control_number", hi, 1);
            }
            json_kv_u64(cli_out, "documents", v->documents, 1);
            json_kv_u64(cli_out, "messages", v->messages, 1);
            json_kv_u64(cli_out, "attachments", v->attachments, 1);
            json_kv_u64(cli_out, "files", v->files, 1);
            json_kv_u64(cli_out, "bytes", v->bytes, 1);
            json_kv_str(cli_out, "manifest_sha256", v->manifest, 1);
            fprintf(cli_out, "}");
        }
        fprintf(cli_out, "]}\n");
        return;
    }
    fprintf(cli_out, "exported %llu message%s (%llu encrypted original%s beside their decrypted "
                     "form) to %s\n",
            (unsigned long long)e->messages, e->messages == 1 ? "" : "s",
            (unsigned long long)e->originals, e->originals == 1 ? "" : "s", e->a->out);
    if (e->kind)
        fprintf(cli_out, "  %llu documents: the messages and %llu attachments as their child "
                         "documents%s\n",
                (unsigned long long)e->documents, (unsigned long long)e->attachments,
                e->missing ? " (some without their native: see ExceptionReason)" : "");
    for (size_t i = 0; i < e->ndone; i++) {
        const volume *v = &e->done[i];
        if (e->a->split)
            fprintf(cli_out, "  volume %u: %s, %llu messages\n", v->no, v->path,
                    (unsigned long long)v->messages);
        fprintf(cli_out, "  %llu files, %llu bytes; manifest SHA-256 %s\n",
                (unsigned long long)v->files, (unsigned long long)v->bytes, v->manifest);
    }
    fprintf(cli_out, "  signed by the archive key %s\n", fpr);
}

int cmd_export(int argc, char **argv)
{
    mv_cli c;
    export_args a;
    memset(&a, 0, sizeof a);
    static const struct option opts[] = {{"as", required_argument, NULL, 'a'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"serials", required_argument, NULL, 's'},
                                         {"prefix", required_argument, NULL, 'p'},
                                         {"matter", required_argument, NULL, 'm'},
                                         {"encrypt", no_argument, NULL, 'e'},
                                         {"password-file", required_argument, NULL, 'w'},
                                         {"split-size", required_argument, NULL, 'z'},
                                         {"attachment-limit", required_argument, NULL, 'l'},
                                         {0, 0, 0, 0}};
    cli_init(&c, "export");
    int rc = cli_getopt(&c, argc, argv, opts, export_opt, &a, help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (!a.as || !a.out)
        return cli_usage_error("export", "give --as eml|mbox|dat|csv|edrm and --out PATH");
    if (a.encrypt != !!a.password_file)
        return cli_usage_error("export", "--encrypt and --password-file go together (the "
                                         "password travels to the recipient out of band)");
    if (!!a.serials == (c.argi < argc))
        return cli_usage_error("export", "give a QUERY or --serials LIST (one of them)");
    if (a.split && a.encrypt && mv_pkg_kind_of(a.out) != MV_PKG_ZIP)
        return cli_usage_error("export", "an encrypted export is a ZIP: give a PATH ending "
                                         "in .zip");
    mv_buf q = MV_BUF_INIT;
    for (int i = c.argi; i < argc; i++) {
        if (i > c.argi)
            mv_buf_append_byte(&q, ' ');
        mv_buf_append_str(&q, argv[i]);
    }
    mv_buf_append_byte(&q, 0);
    export_run e;
    memset(&e, 0, sizeof e);
    e.a = &a;
    e.query = a.serials ? NULL : (const char *)q.data;
    e.kind = !strcmp(a.as, "dat")    ? MV_LF_DAT
             : !strcmp(a.as, "csv")  ? MV_LF_CSV
             : !strcmp(a.as, "edrm") ? MV_LF_EDRM
                                     : 0;
    e.prefix = a.prefix ? a.prefix : "MV";
    e.attach_limit = a.attach_limit ? (size_t)a.attach_limit : MV_ATTACH_MAX_BYTES;
    e.ctrl = 1;
    mv_err err = {0};
    mv_store *s = NULL;
    mv_index *ix = NULL;
    uint64_t *v = NULL;
    size_t n = 0;
    mv_buf pw = MV_BUF_INIT;
    char fpr[65] = "";
    mv_status st = cli_open(&c, &s, &err);
    if (st) {
        mv_buf_free(&q);
        return cli_finish(&c, NULL, st, &err);
    }
    e.s = s;
    e.user = c.user;
    cli_detail(&c, "%s%s as=%s out=%s", e.query ? "query=" : "serials=",
               e.query ? e.query : a.serials, a.as, a.out);
    if ((st = cli_require(&c, s, MV_USER_LEGAL, &err)))
        goto out;
    if (a.serials) {
        if ((st = parse_serials(a.serials, &v, &n, &err)))
            goto out;
        for (size_t i = 0; i < n && !st; i++) {
            mv_message *m = NULL;
            if ((st = mv_store_message(s, v[i], &m, &err)) == MV_ENOTFOUND)
                st = mv_err_set(&err, MV_ENOTFOUND, "no message %llu in the archive",
                                (unsigned long long)v[i]);
            mv_message_free(m);
        }
        if (st)
            goto out;
    } else {
        mv_search_opts so = {0, UINT64_MAX, MV_SORT_DATE_ASC, 0, NULL, NULL};
        mv_search_result r = {0};
        if ((st = cli_index_get(&c, s, 1, &ix, &err)) ||
            (st = mv_index_search(ix, e.query, &so, &r, &err)))
            goto out;
        v = mv_xcalloc(r.n ? r.n : 1, sizeof *v);
        for (size_t i = 0; i < r.n; i++)
            v[n++] = r.rows[i].serial;
        mv_search_result_free(&r);
        qsort(v, n, sizeof *v, cmp_u64);
    }
    if (a.encrypt && !(st = cli_read_password(a.password_file, &pw, &err)) && !pw.len)
        st = mv_err_set(&err, MV_EUSAGE, "%s holds no password", a.password_file);
    if (st)
        goto out;
    e.password = a.encrypt ? (const char *)pw.data : NULL;
    /* where this matter's numbers go on (reserving none): the numbers are
     * reserved volume by volume once counted, children included */
    if (e.kind && a.matter && (st = mv_store_matter_reserve(s, a.matter, 0, &e.ctrl, &err)))
        goto out;
    uint8_t id[EXPORT_ID_BYTES];
    if (RAND_bytes(id, sizeof id) != 1) {
        st = mv_err_openssl(&err, "making the export's id");
        goto out;
    }
    mv_hex(id, sizeof id, e.export_id);
    if (e.kind && (st = mv_store_custodians(s, &e.cu, &e.ncu, &err)))
        goto out;
    /* the tree head in force: every exported message is in it */
    if ((st = mv_store_checkpoint(s, 0, &e.head, &err)))
        goto out;
    if (a.split && mv_pkg_kind_of(a.out) == MV_PKG_DIR && (st = split_dir(&e, &err)))
        goto out;
    struct mv_progress *pg = cli_progress_new("exporting", n);
    if (!(st = volume_open(&e, &err))) {
        if (!strcmp(a.as, "eml"))
            st = export_eml(&e, v, n, pg, &err);
        else if (!strcmp(a.as, "mbox"))
            st = export_mbox(&e, v, n, pg, &err);
        else
            st = export_loadfile(&e, v, n, pg, &err);
        if (!st)
            st = volume_close(&e, &err);
    }
    mv_progress_free(pg);
    if (st) {
        export_abandon(&e);
        goto out;
    }
    fingerprint(s, fpr);
    summary(&e, &c, fpr);
    cli_detail(&c, " -> %llu messages, %llu documents, %zu volume%s, manifest %s%s",
               (unsigned long long)e.messages, (unsigned long long)e.documents, e.ndone,
               e.ndone == 1 ? "" : "s", e.ndone ? e.done[0].manifest : "",
               e.ndone > 1 ? " (volume 1)" : "");
out:
    mv_buf_wipe(&pw);
    for (size_t i = 0; i < e.ndone; i++)
        free(e.done[i].path);
    free(e.done);
    for (size_t i = 0; i < e.ncu; i++)
        mv_custodian_clear(&e.cu[i]);
    free(e.cu);
    mv_buf_wipe(&e.t);
    mv_buf_wipe(&e.rec);
    mv_buf_wipe(&e.who);
    mv_buf_wipe(&e.cust);
    mv_buf_free(&e.head);
    free(e.cur.serials);
    free(v);
    cli_index_put(ix);
    rc = cli_finish(&c, s, st, &err);
    mv_buf_free(&q);
    return rc;
}

/* ---- keys signing ------------------------------------------------------------ */

static void signing_help(void)
{
    fprintf(cli_out, "usage: mailvault keys signing [--format json]\n\n"
                     "The archive's Ed25519 signing key, which signs export custody records:\n"
                     "its fingerprint (SHA-256 of the raw public key) for the legal team to\n"
                     "publish out of band, and the public key (PEM).  Any role may ask.\n");
}

int cmd_keys_signing(int argc, char **argv)
{
    mv_cli c;
    cli_init(&c, "keys signing");
    int rc = cli_getopt(&c, argc, argv, NULL, cli_no_opt, NULL, signing_help);
    if (rc)
        return CLI_GETOPT_EXIT(rc);
    if (c.argi < argc)
        return cli_usage_error("keys signing", "unexpected argument '%s'", argv[c.argi]);
    mv_err err = {0};
    mv_store *s = NULL;
    mv_status st = cli_open(&c, &s, &err);
    if (st)
        return cli_finish(&c, NULL, st, &err);
    if (!(st = cli_require(&c, s, MV_USER_ADMIN | MV_USER_OFFICER | MV_USER_LEGAL |
                                      MV_USER_AUDITOR, &err))) {
        char fpr[65];
        char *pem = signing_pem(s);
        fingerprint(s, fpr);
        if (c.json) {
            fprintf(cli_out, "{");
            json_kv_str(cli_out, "sha256", fpr, 0);
            json_kv_str(cli_out, "public_key_pem", pem, 1);
            fprintf(cli_out, "}\n");
        } else {
            fprintf(cli_out, "%s\n", fpr);
        }
        free(pem);
    }
    return cli_finish(&c, s, st, &err);
}
