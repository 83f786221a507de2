/* SPDX-License-Identifier: MIT */
/* cmd_export.c - `mailvault export`: the messages of a search or a serial
 * list as a package for legal review (natives as .eml or one mboxrd file),
 * with manifest.csv (size, MD5, SHA-1, SHA-256 of every file) and a custody
 * record signed with the archive's Ed25519 key (docs/export.md).
 *
 * Memory holds one message at a time: each is read (decrypted from the
 * store), written to the package and hashed on the way. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "../export/export.h"
#include "../export/loadfile.h"
#include "../ingest/decrypt.h"
#include "../search/extract.h"
#include "../lib/util.h"
#include "../store/keys.h"
#include "cli.h"

#define EXPORT_SERIALS_MAX 10000000u /* messages one export may name */

static void help(void)
{
    fprintf(cli_out,
            "usage: mailvault export (QUERY | --serials LIST) --as eml|mbox|dat|csv|edrm\n"
            "                        --out PATH [--prefix ABC] [--matter NAME]\n"
            "                        [--encrypt --password-file F] [--format json]\n\n"
            "Package the messages of a search (docs/search.md) or of a serial list\n"
            "(LIST: 1-40,52) for legal review.  PATH ending in .zip is a ZIP, in .tar a\n"
            "tar, anything else a new directory.\n"
            "  --as eml    natives/SERIAL.eml, the archived bytes exactly; for mail\n"
            "              decrypted with an escrowed key the decrypted message, and the\n"
            "              original ciphertext as natives/SERIAL.original.eml\n"
            "  --as mbox   messages.mbox (mboxrd) of the same messages\n"
            "  --as dat    Concordance DAT load file with natives and extracted text\n"
            "  --as csv    the same fields as CSV, metadata only\n"
            "  --as edrm   EDRM XML 1.2 load file with natives and extracted text\n"
            "  --prefix    control numbers PREFIX-0000001 (default MV)\n"
            "  --matter    control numbers continue across the exports of a matter\n"
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
} export_args;

static int export_opt(void *ctx, int opt, const char *arg)
{
    export_args *a = ctx;
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

typedef struct counts {
    uint64_t messages, originals;
} counts;

static mv_status export_eml(mv_store *s, mv_pkg *pkg, const uint64_t *v, size_t n, counts *c,
                            struct mv_progress *pg, mv_err *err)
{
    mv_buf b = MV_BUF_INIT;
    mv_status st = MV_OK;
    for (size_t i = 0; i < n && !st; i++) {
        int dec = 0;
        char name[64];
        if ((st = message_bytes(s, v[i], 0, &b, &dec, NULL, err)))
            break;
        snprintf(name, sizeof name, "natives/%llu.eml", (unsigned long long)v[i]);
        if ((st = mv_pkg_add(pkg, name, b.data, b.len, 0, err)))
            break;
        c->messages++;
        if (dec) {
            if ((st = message_bytes(s, v[i], 1, &b, &dec, NULL, err)))
                break;
            snprintf(name, sizeof name, "natives/%llu.original.eml", (unsigned long long)v[i]);
            st = mv_pkg_add(pkg, name, b.data, b.len, 0, err);
            c->originals++;
        }
        mv_progress_update(pg, i + 1, 0);
    }
    mv_buf_wipe(&b);
    return st;
}

/* mbox_entry - one message as it stands in the mbox: separator, quoted
 * bytes, and the blank line that ends it. */
static void mbox_entry(mv_store *s, uint64_t serial, const mv_buf *msg, mv_buf *out)
{
    (void)s;
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

static mv_status export_mbox(mv_store *s, mv_pkg *pkg, const uint64_t *v, size_t n, counts *c,
                             struct mv_progress *pg, mv_err *err)
{
    mv_buf b = MV_BUF_INIT, e = MV_BUF_INIT;
    mv_status st = MV_OK;
    uint64_t total = 0;
    int dec;
    /* A tar or ZIP entry announces its size first: one pass to measure,
     * one to write (each holds one message at a time). */
    for (size_t i = 0; i < n && !st; i++)
        if (!(st = message_bytes(s, v[i], 0, &b, &dec, NULL, err))) {
            mbox_entry(s, v[i], &b, &e);
            total += e.len;
        }
    if (!st)
        st = mv_pkg_begin(pkg, "messages.mbox", total, 0, err);
    for (size_t i = 0; i < n && !st; i++) {
        if ((st = message_bytes(s, v[i], 0, &b, &dec, NULL, err)))
            break;
        mbox_entry(s, v[i], &b, &e);
        if (!(st = mv_pkg_write(pkg, e.data, e.len, err)))
            c->messages++;
        mv_progress_update(pg, i + 1, 0);
    }
    if (!st)
        st = mv_pkg_end(pkg, err);
    mv_buf_wipe(&b);
    mv_buf_wipe(&e);
    return st;
}

/* ---- load files (dat, csv, edrm) ----------------------------------------- */

static const char *const lf_fields[] = {
    "BegDoc",      "EndDoc",          "BegAttach",   "EndAttach",        "ParentID",
    "AttachmentCount", "AttachmentNames", "Custodian", "From",           "To",
    "CC",          "BCC",             "EnvelopeRecipients", "Subject",   "DateSent",
    "TimeSent",    "TimeZone",        "MessageID",   "InReplyTo",        "FileName",
    "FileExtension", "FileSize",      "MD5Hash",     "SHA1Hash",         "SHA256Hash",
    "NativeFile",  "OriginalNativeFile", "TextPath", "Encrypted",        "DecryptionStatus",
    "SignatureStatus", "ArchiveSerial", "ArchiveReceivedUTC", NULL};
enum { LF_NFIELDS = 33 };

/* The text file of a document: its header lines, then the body and the
 * text of each attachment (the stored extraction, search/extract.h). */
static void doc_text(const mv_extract *x, const mv_message *m, mv_buf *out)
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
    uint32_t part = 0;
    for (size_t i = 0; x && i < x->n; i++) {
        if (x->s[i].kind == MV_XS_FILENAME && x->s[i].part != part) {
            part = x->s[i].part;
            mv_buf_printf(out, "\r\n--- attachment %u: %s ---\r\n", part, x->s[i].text);
        } else if (x->s[i].kind == MV_XS_ATTACH_TEXT) {
            mv_buf_append(out, x->s[i].text, x->s[i].len);
            mv_buf_append_str(out, "\r\n");
        }
    }
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

static void hex_of(const uint8_t *p, size_t n, const EVP_MD *md, char *out)
{
    uint8_t h[64];
    unsigned l = sizeof h;
    mv_assert(EVP_Digest(p, n, h, &l, md, NULL));
    mv_hex(h, l, out);
}

/* copy_into - the load file, spooled in an unlinked file beside the
 * package, streamed into it (its size is known only at the end). */
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

static mv_status export_loadfile(mv_store *s, mv_pkg *pkg, const char *out, const uint64_t *v,
                                 size_t n, mv_lf_kind kind, const char *prefix,
                                 uint64_t first_ctrl, counts *c, struct mv_progress *pg,
                                 mv_err *err)
{
    char *tmpl = mv_xasprintf("%s.loadfile-XXXXXX", out);
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        mv_status st = mv_err_sys(err, "creating a spool file beside %s", out);
        free(tmpl);
        return st;
    }
    unlink(tmpl);
    free(tmpl);
    FILE *lf = fdopen(fd, "w+");
    mv_assert(lf);
    mv_custodian *cu = NULL;
    size_t ncu = 0;
    mv_status st = mv_store_custodians(s, &cu, &ncu, err);
    mv_buf rec = MV_BUF_INIT, b = MV_BUF_INIT, orig = MV_BUF_INIT, t = MV_BUF_INIT,
           who = MV_BUF_INIT, cust = MV_BUF_INIT;
    int natives = kind != MV_LF_CSV;
    if (kind == MV_LF_EDRM) {
        mv_buf_append_str(&rec, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
                                "<Root MajorVersion=\"1\" MinorVersion=\"2\" Description=\""
                                "mailvault export\" Locale=\"US\" DataInterchangeType=\"Update\">"
                                "\r\n<Batch>\r\n<Documents>\r\n");
    } else {
        mv_lf_begin(kind, &rec);
        for (int i = 0; lf_fields[i]; i++)
            mv_lf_field(kind, lf_fields[i], i == 0, &rec);
        mv_lf_end_record(kind, &rec);
    }
    fwrite(rec.data, 1, rec.len, lf);
    for (size_t i = 0; i < n && !st; i++) {
        mv_message *m = NULL;
        mv_decryption *d = NULL;
        mv_copy **cs = NULL;
        size_t nc = 0;
        mv_extract *x = NULL;
        int dec = 0;
        char ctrl[64], native[96] = "", original[96] = "", textp[96] = "", fname[80];
        char md5[33], sha1[41], sha256[65], size[24], serial[24], recv[32], ds[16] = "",
            ts[16] = "";
        snprintf(ctrl, sizeof ctrl, "%s-%07llu", prefix, (unsigned long long)(first_ctrl + i));
        snprintf(fname, sizeof fname, "%s.eml", ctrl);
        if ((st = mv_store_message(s, v[i], &m, err)) ||
            (st = message_bytes(s, v[i], 0, &b, &dec, &d, err)) ||
            (st = mv_store_copies(s, v[i], &cs, &nc, err)))
            goto next;
        if (!natives) { /* metadata only: hashed here, no native written */
            hex_of(b.data, b.len, EVP_md5(), md5);
            hex_of(b.data, b.len, EVP_sha1(), sha1);
            hex_of(b.data, b.len, EVP_sha256(), sha256);
        }
        snprintf(size, sizeof size, "%zu", b.len);
        snprintf(serial, sizeof serial, "%llu", (unsigned long long)v[i]);
        mv_fmt_time(m->received_us / 1000000, recv, sizeof recv);
        if (m->meta.date_t != INT64_MIN) {
            char iso[32];
            mv_fmt_time(m->meta.date_t, iso, sizeof iso);
            snprintf(ds, sizeof ds, "%.10s", iso);
            snprintf(ts, sizeof ts, "%.8s", iso + 11);
        }
        if (natives) {
            snprintf(native, sizeof native, "natives/%s", fname);
            if ((st = mv_pkg_add(pkg, native, b.data, b.len, 0, err)))
                goto next;
            uint8_t h5[16], h1[20], h256[32];
            mv_pkg_last_hashes(pkg, h5, h1, h256);
            mv_hex(h5, 16, md5);
            mv_hex(h1, 20, sha1);
            mv_hex(h256, 32, sha256);
            if (dec) {
                snprintf(original, sizeof original, "natives/%s.original.eml", ctrl);
                if ((st = message_bytes(s, v[i], 1, &orig, &dec, NULL, err)) ||
                    (st = mv_pkg_add(pkg, original, orig.data, orig.len, 0, err)))
                    goto next;
                dec = 1;
                c->originals++;
            }
            /* the text: stored once at indexing; made now if it is not */
            mv_buf_reset(&t);
            if (mv_store_text(s, v[i], &t, NULL) != MV_OK ||
                mv_extract_decode(t.data, t.len, &x, NULL) != MV_OK) {
                mv_extract_free(x);
                x = NULL;
                if ((st = mv_extract_message(b.data, b.len, NULL, &x, err)))
                    goto next;
            }
            mv_buf_wipe(&t);
            doc_text(x, m, &t);
            snprintf(textp, sizeof textp, "text/%s.txt", ctrl);
            if ((st = mv_pkg_add(pkg, textp, t.data, t.len, 0, err)))
                goto next;
        }
        /* envelope recipients of every copy, and who takes part */
        mv_buf env = MV_BUF_INIT;
        for (size_t k = 0; k < nc; k++)
            for (size_t r = 0; r < cs[k]->n_rcpt; r++) {
                if (env.len)
                    mv_buf_append_byte(&env, ';');
                mv_buf_append_str(&env, cs[k]->rcpt[r]);
            }
        mv_buf_append_byte(&env, 0);
        mv_buf_reset(&who);
        mv_buf_printf(&who, "%s %s %s %s %s", m->meta.from ? m->meta.from : "",
                      m->meta.to ? m->meta.to : "", m->meta.cc ? m->meta.cc : "",
                      m->meta.bcc ? m->meta.bcc : "", (char *)env.data);
        for (size_t k = 0; k < who.len; k++)
            if (who.data[k] >= 'A' && who.data[k] <= 'Z')
                who.data[k] = (uint8_t)(who.data[k] - 'A' + 'a');
        mv_buf_append_byte(&who, 0);
        mv_buf_reset(&cust);
        custodians_of(cu, ncu, (const char *)who.data, &cust);
        mv_buf_append_byte(&cust, 0);
        mv_buf names = MV_BUF_INIT;
        for (size_t k = 0; k < m->meta.n_names; k++) {
            if (k)
                mv_buf_append_byte(&names, ';');
            mv_buf_append_str(&names, m->meta.attachments[k]);
        }
        mv_buf_append_byte(&names, 0);
        char natt[16];
        snprintf(natt, sizeof natt, "%u", m->meta.n_attachments);
        const char *enc = !d || !(d->decrypted || (d->scheme && *d->scheme))
                              ? "none"
                          : d->scheme && !strncmp(d->scheme, "smime", 5) ? "S/MIME"
                          : d->scheme && !strncmp(d->scheme, "pgp", 3)   ? "PGP"
                                                                          : "encrypted";
        mv_buf dstat = MV_BUF_INIT;
        if (d && strcmp(enc, "none"))
            mv_buf_printf(&dstat, "%s%s%s", d->decrypted ? "decrypted" : "undecryptable",
                          !d->decrypted && d->failure ? ": " : "",
                          !d->decrypted && d->failure ? d->failure : "");
        mv_buf_append_byte(&dstat, 0);
        const char *sig = d ? mv_sig_status_name((mv_sig_status)d->sig) : "none";
        const char *val[LF_NFIELDS] = {
            ctrl, ctrl, ctrl, ctrl, "", natt, (char *)names.data, (char *)cust.data,
            m->meta.from, m->meta.to, m->meta.cc, m->meta.bcc, (char *)env.data, m->meta.subject,
            ds, ts, "UTC", m->meta.message_id, m->meta.in_reply_to, fname, "eml", size, md5,
            sha1, sha256, native, original, textp, enc, (char *)dstat.data, sig, serial, recv};
        mv_buf_reset(&rec);
        if (kind == MV_LF_EDRM) {
            mv_buf_append_str(&rec, "<Document DocID=\"");
            mv_xml_text(ctrl, &rec);
            mv_buf_append_str(&rec, "\" DocType=\"Message\" MimeType=\"message/rfc822\">\r\n"
                                    "<Files>\r\n");
            mv_buf_printf(&rec, "<File FileType=\"Native\"><ExternalFile FilePath=\"natives\" "
                                "FileName=\"%s\" FileSize=\"%s\" Hash=\"%s\" HashType=\"MD5\"/>"
                                "</File>\r\n", fname, size, md5);
            mv_buf_printf(&rec, "<File FileType=\"Text\"><ExternalFile FilePath=\"text\" "
                                "FileName=\"%s.txt\" FileSize=\"%zu\"/></File>\r\n</Files>\r\n",
                          ctrl, t.len);
            mv_buf_append_str(&rec, "<Tags>\r\n");
            static const char *const edrm_tag[LF_NFIELDS] = {
                NULL, NULL, NULL, NULL, NULL, "#AttachmentCount", "#AttachmentNames", NULL,
                "#From", "#To", "#CC", "#BCC", NULL, "#Subject", NULL, NULL, NULL, NULL, NULL,
                "#FileName", "#FileExtension", "#FileSize", NULL, NULL, NULL, NULL, NULL, NULL,
                NULL, NULL, NULL, NULL, NULL};
            for (int k = 0; k < LF_NFIELDS; k++) {
                if (!val[k] || !*val[k] || k < 5)
                    continue;
                mv_buf_append_str(&rec, "<Tag TagName=\"");
                mv_xml_text(edrm_tag[k] ? edrm_tag[k] : lf_fields[k], &rec);
                mv_buf_append_str(&rec, "\" TagValue=\"");
                mv_xml_text(val[k], &rec);
                mv_buf_printf(&rec, "\" TagDataType=\"%s\"/>\r\n",
                              k == 21 || k == 5 || k == 31 ? "Integer" : "Text");
            }
            if (m->meta.date_t != INT64_MIN)
                mv_buf_printf(&rec, "<Tag TagName=\"#DateSent\" TagValue=\"%sT%sZ\" "
                                    "TagDataType=\"DateTime\"/>\r\n", ds, ts);
            mv_buf_append_str(&rec, "</Tags>\r\n");
            if (cust.len > 1) {
                mv_buf_append_str(&rec, "<Custodian>");
                mv_xml_text((char *)cust.data, &rec);
                mv_buf_append_str(&rec, "</Custodian>\r\n");
            }
            mv_buf_append_str(&rec, "</Document>\r\n");
        } else {
            for (int k = 0; k < LF_NFIELDS; k++)
                mv_lf_field(kind, val[k], k == 0, &rec);
            mv_lf_end_record(kind, &rec);
        }
        mv_buf_free(&names);
        mv_buf_free(&env);
        mv_buf_free(&dstat);
        if (fwrite(rec.data, 1, rec.len, lf) != rec.len)
            st = mv_err_sys(err, "writing the load file");
        c->messages++;
    next:
        mv_extract_free(x);
        mv_copies_free(cs, nc);
        mv_decryption_free(d);
        mv_message_free(m);
        mv_progress_update(pg, i + 1, 0);
    }
    if (!st && kind == MV_LF_EDRM) {
        mv_buf_reset(&rec);
        mv_buf_append_str(&rec, "</Documents>\r\n</Batch>\r\n</Root>\r\n");
        fwrite(rec.data, 1, rec.len, lf);
    }
    if (!st)
        st = copy_into(pkg, kind == MV_LF_DAT ? "loadfile.dat"
                            : kind == MV_LF_CSV ? "metadata.csv"
                                                : "loadfile.xml", lf, err);
    fclose(lf);
    for (size_t i = 0; i < ncu; i++)
        mv_custodian_clear(&cu[i]);
    free(cu);
    mv_buf_wipe(&rec);
    mv_buf_wipe(&b);
    mv_buf_wipe(&orig);
    mv_buf_wipe(&t);
    mv_buf_wipe(&who);
    mv_buf_wipe(&cust);
    return st;
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

typedef struct custody {
    const char *by, *query, *serials, *as, *kind, *prefix, *matter;
    uint64_t first_ctrl;
    char when[32], archive_id[2 * MV_ARCHIVE_ID_LEN + 1], manifest[65], fpr[65], sig[129];
    uint64_t messages, originals, files, bytes;
} custody;

static void custody_json(const custody *c, mv_buf *b)
{
    FILE *f = open_memstream((char **)&b->data, &b->len);
    mv_assert(f);
    fprintf(f, "{");
    json_kv_str(f, "format", "mailvault-custody/1", 0);
    json_kv_str(f, "exported_by", c->by, 1);
    json_kv_str(f, "exported_at", c->when, 1);
    json_kv_str(f, "archive_id", c->archive_id, 1);
    json_kv_str(f, "query", c->query, 1);
    json_kv_str(f, "serials", c->serials, 1);
    json_kv_str(f, "as", c->as, 1);
    json_kv_str(f, "package", c->kind, 1);
    json_kv_str(f, "matter", c->matter, 1);
    if (strcmp(c->as, "eml") && strcmp(c->as, "mbox") && c->messages) {
        char lo[64], hi[64];
        snprintf(lo, sizeof lo, "%s-%07llu", c->prefix, (unsigned long long)c->first_ctrl);
        snprintf(hi, sizeof hi, "%s-%07llu", c->prefix,
                 (unsigned long long)(c->first_ctrl + c->messages - 1));
        json_kv_str(f, "first_control_number", lo, 1);
        json_kv_str(f, "last_control_number", hi, 1);
    }
    json_kv_u64(f, "messages", c->messages, 1);
    json_kv_u64(f, "originals", c->originals, 1);
    json_kv_u64(f, "files", c->files, 1);
    json_kv_u64(f, "bytes", c->bytes, 1);
    json_kv_str(f, "manifest_sha256", c->manifest, 1);
    json_kv_str(f, "signature_algorithm", "Ed25519 over the 32 bytes of manifest_sha256", 1);
    json_kv_str(f, "signing_key_sha256", c->fpr, 1);
    json_kv_str(f, "signature", c->sig, 1);
    fprintf(f, "}\n");
    fclose(f);
    b->cap = b->len;
}

static void custody_txt(const custody *c, mv_buf *b)
{
    mv_buf_printf(b,
                  "mailvault export: chain of custody\r\n\r\n"
                  "Exported by:        %s\r\n"
                  "Exported at (UTC):  %s\r\n"
                  "Archive:            %s\r\n"
                  "Selection:          %s%s\r\n"
                  "Form:               %s, as a %s\r\n"
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
                  c->by, c->when, c->archive_id, c->query ? "query " : "serials ",
                  c->query ? c->query : c->serials, c->as, c->kind,
                  (unsigned long long)c->messages, (unsigned long long)c->originals,
                  (unsigned long long)c->files, (unsigned long long)c->bytes, c->manifest,
                  c->fpr, c->fpr);
}

int cmd_export(int argc, char **argv)
{
    mv_cli c;
    export_args a = {NULL, NULL, NULL, NULL, NULL, NULL, 0};
    static const struct option opts[] = {{"as", required_argument, NULL, 'a'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"serials", required_argument, NULL, 's'},
                                         {"prefix", required_argument, NULL, 'p'},
                                         {"matter", required_argument, NULL, 'm'},
                                         {"encrypt", no_argument, NULL, 'e'},
                                         {"password-file", required_argument, NULL, 'w'},
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
    mv_buf q = MV_BUF_INIT;
    for (int i = c.argi; i < argc; i++) {
        if (i > c.argi)
            mv_buf_append_byte(&q, ' ');
        mv_buf_append_str(&q, argv[i]);
    }
    mv_buf_append_byte(&q, 0);
    const char *query = a.serials ? NULL : (const char *)q.data;
    mv_err err = {0};
    mv_store *s = NULL;
    mv_index *ix = NULL;
    mv_pkg *pkg = NULL;
    uint64_t *v = NULL;
    size_t n = 0;
    counts cnt = {0, 0};
    custody cu;
    memset(&cu, 0, sizeof cu);
    mv_status st = cli_open(&c, &s, &err);
    if (st) {
        mv_buf_free(&q);
        return cli_finish(&c, NULL, st, &err);
    }
    cli_detail(&c, "%s%s as=%s out=%s", query ? "query=" : "serials=", query ? query : a.serials,
               a.as, a.out);
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
            (st = mv_index_search(ix, query, &so, &r, &err)))
            goto out;
        v = mv_xcalloc(r.n ? r.n : 1, sizeof *v);
        for (size_t i = 0; i < r.n; i++)
            v[n++] = r.rows[i].serial;
        mv_search_result_free(&r);
        qsort(v, n, sizeof *v, cmp_u64);
    }
    mv_buf pw = MV_BUF_INIT;
    if (a.encrypt && !(st = cli_read_password(a.password_file, &pw, &err)) && !pw.len)
        st = mv_err_set(&err, MV_EUSAGE, "%s holds no password", a.password_file);
    if (!st)
        st = mv_pkg_create(a.out, a.encrypt ? (const char *)pw.data : NULL, &pkg, &err);
    mv_buf_wipe(&pw); /* libarchive keeps its own copy */
    if (st)
        goto out;
    struct mv_progress *pg = cli_progress_new("exporting", n);
    uint64_t first_ctrl = 1;
    if (!strcmp(a.as, "eml"))
        st = export_eml(s, pkg, v, n, &cnt, pg, &err);
    else if (!strcmp(a.as, "mbox"))
        st = export_mbox(s, pkg, v, n, &cnt, pg, &err);
    else if (!(st = a.matter ? mv_store_matter_reserve(s, a.matter, n, &first_ctrl, &err) : MV_OK))
        st = export_loadfile(s, pkg, a.out, v, n, !strcmp(a.as, "dat")   ? MV_LF_DAT
                                                 : !strcmp(a.as, "csv") ? MV_LF_CSV
                                                                        : MV_LF_EDRM,
                             a.prefix ? a.prefix : "MV", first_ctrl, &cnt, pg, &err);
    mv_progress_free(pg);
    cu.prefix = a.prefix ? a.prefix : "MV";
    cu.matter = a.matter;
    cu.first_ctrl = first_ctrl;
    /* the custody record: over the manifest, signed */
    uint8_t msha[32], sig[64];
    if (!st && !(st = mv_pkg_manifest(pkg, msha, &cu.files, &cu.bytes, &err)) &&
        !(st = mv_store_sign(s, msha, 32, sig, &err))) {
        cu.by = c.user;
        cu.query = query;
        cu.serials = a.serials;
        cu.as = a.as;
        mv_pkg_kind k = mv_pkg_kind_of(a.out);
        cu.kind = k == MV_PKG_ZIP ? "ZIP" : k == MV_PKG_TAR ? "tar" : "directory";
        mv_fmt_time(mv_now_us() / 1000000, cu.when, sizeof cu.when);
        mv_hex(mv_store_archive_id(s), MV_ARCHIVE_ID_LEN, cu.archive_id);
        mv_hex(msha, 32, cu.manifest);
        mv_hex(sig, 64, cu.sig);
        fingerprint(s, cu.fpr);
        cu.messages = cnt.messages;
        cu.originals = cnt.originals;
        mv_buf j = MV_BUF_INIT, t = MV_BUF_INIT;
        char *pem = signing_pem(s);
        custody_json(&cu, &j);
        custody_txt(&cu, &t);
        if (!pem)
            st = mv_err_set(&err, MV_ECRYPTO, "cannot write the signing key as PEM");
        if (!st)
            st = mv_pkg_add(pkg, "custody.json", j.data, j.len, 1, &err);
        if (!st)
            st = mv_pkg_add(pkg, "custody.txt", t.data, t.len, 1, &err);
        if (!st)
            st = mv_pkg_add(pkg, "custody.sig", sig, 64, 1, &err);
        if (!st)
            st = mv_pkg_add(pkg, "signing_key.pem", pem, strlen(pem), 1, &err);
        free(pem);
        mv_buf_free(&j);
        mv_buf_free(&t);
    }
    {
        mv_err cerr = {0};
        mv_status cs = mv_pkg_close(pkg, st != MV_OK, &cerr);
        pkg = NULL;
        if (!st && cs) {
            st = cs;
            err = cerr;
        }
    }
    if (!st) {
        if (c.json) {
            fprintf(cli_out, "{");
            json_kv_str(cli_out, "package", a.out, 0);
            json_kv_u64(cli_out, "messages", cnt.messages, 1);
            json_kv_u64(cli_out, "originals", cnt.originals, 1);
            json_kv_u64(cli_out, "files", cu.files, 1);
            json_kv_u64(cli_out, "bytes", cu.bytes, 1);
            json_kv_str(cli_out, "manifest_sha256", cu.manifest, 1);
            json_kv_str(cli_out, "signing_key_sha256", cu.fpr, 1);
            fprintf(cli_out, "}\n");
        } else {
            fprintf(cli_out, "exported %llu message%s (%llu encrypted original%s beside their "
                             "decrypted form) to %s\n  %llu files, %llu bytes; manifest SHA-256 "
                             "%s\n  signed by the archive key %s\n",
                    (unsigned long long)cnt.messages, cnt.messages == 1 ? "" : "s",
                    (unsigned long long)cnt.originals, cnt.originals == 1 ? "" : "s", a.out,
                    (unsigned long long)cu.files, (unsigned long long)cu.bytes, cu.manifest,
                    cu.fpr);
        }
        cli_detail(&c, " -> %llu messages, manifest %s", (unsigned long long)cnt.messages,
                   cu.manifest);
    }
out:
    if (pkg) {
        mv_err e2;
        if (mv_pkg_close(pkg, 1, &e2)) { /* the first error is the one to tell */
        }
    }
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
