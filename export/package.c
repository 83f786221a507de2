/* SPDX-License-Identifier: MIT */
/* package.c - export packages: a directory, a ZIP or a tar written through
 * libarchive, each file hashed (MD5, SHA-1, SHA-256) as it streams through,
 * and read back the same way for verify-export. */
#include "export.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "../lib/util.h"

#define PKG_NAME_MAX 1024     /* bytes of a file name inside a package */
#define PKG_SCAN_FILES_MAX 10000000u

typedef struct hashes {
    EVP_MD_CTX *md5, *sha1, *sha256;
} hashes;

static void hashes_init(hashes *h)
{
    h->md5 = EVP_MD_CTX_new();
    h->sha1 = EVP_MD_CTX_new();
    h->sha256 = EVP_MD_CTX_new();
    mv_assert(h->md5 && h->sha1 && h->sha256 && EVP_DigestInit_ex(h->md5, EVP_md5(), NULL) &&
              EVP_DigestInit_ex(h->sha1, EVP_sha1(), NULL) &&
              EVP_DigestInit_ex(h->sha256, EVP_sha256(), NULL));
}

static void hashes_update(hashes *h, const void *p, size_t n)
{
    mv_assert(EVP_DigestUpdate(h->md5, p, n) && EVP_DigestUpdate(h->sha1, p, n) &&
              EVP_DigestUpdate(h->sha256, p, n));
}

static void hashes_final(hashes *h, mv_pkg_file *f)
{
    mv_assert(EVP_DigestFinal_ex(h->md5, f->md5, NULL) &&
              EVP_DigestFinal_ex(h->sha1, f->sha1, NULL) &&
              EVP_DigestFinal_ex(h->sha256, f->sha256, NULL));
    EVP_MD_CTX_free(h->md5);
    EVP_MD_CTX_free(h->sha1);
    EVP_MD_CTX_free(h->sha256);
    memset(h, 0, sizeof *h);
}

struct mv_pkg {
    mv_pkg_kind kind;
    char *path;
    struct archive *a; /* ZIP, tar */
    int fd;            /* the directory's current file */
    int created_dir;
    /* the file being written */
    int open, unlisted;
    uint64_t size, written;
    hashes h;
    mv_pkg_file cur, last;
    /* the manifest */
    mv_buf manifest;
    uint64_t files, bytes;
    int manifest_done;
};

mv_pkg_kind mv_pkg_kind_of(const char *path)
{
    size_t n = strlen(path);
    if (n > 4 && !strcasecmp(path + n - 4, ".zip"))
        return MV_PKG_ZIP;
    if (n > 4 && !strcasecmp(path + n - 4, ".tar"))
        return MV_PKG_TAR;
    return MV_PKG_DIR;
}

static int dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d));)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

static mv_status arch_err(struct archive *a, mv_err *err, const char *what)
{
    return mv_err_set(err, MV_EIO, "%s: %s", what,
                      a && archive_error_string(a) ? archive_error_string(a) : "libarchive error");
}

mv_status mv_pkg_create(const char *path, const char *password, mv_pkg **out, mv_err *err)
{
    struct stat sb;
    mv_pkg_kind kind = mv_pkg_kind_of(path);
    if (password && kind != MV_PKG_ZIP)
        return mv_err_set(err, MV_EUSAGE, "an encrypted export is a ZIP: give a PATH ending in .zip");
    if (stat(path, &sb) == 0 && !(kind == MV_PKG_DIR && S_ISDIR(sb.st_mode) && dir_empty(path)))
        return mv_err_set(err, MV_EEXIST, "%s exists: an export goes to a new place", path);
    mv_pkg *p = mv_xcalloc(1, sizeof *p);
    p->kind = kind;
    p->path = mv_xstrdup(path);
    p->fd = -1;
    mv_status st = MV_OK;
    if (kind == MV_PKG_DIR) {
        if (mkdir(path, 0750) == 0)
            p->created_dir = 1;
        else if (errno != EEXIST)
            st = mv_err_sys(err, "creating %s", path);
    } else {
        p->a = archive_write_new();
        int r = kind == MV_PKG_ZIP ? archive_write_set_format_zip(p->a)
                                   : archive_write_set_format_pax_restricted(p->a);
        if (r == ARCHIVE_OK && kind == MV_PKG_TAR)
            r = archive_write_set_bytes_in_last_block(p->a, 1);
        /* Mail and text deflate at level 1: within a few per cent of the
         * default's size, at a fraction of its time (bench/export). */
        if (r == ARCHIVE_OK && kind == MV_PKG_ZIP)
            r = archive_write_set_options(p->a, "zip:compression-level=1");
        if (r == ARCHIVE_OK && password &&
            ((r = archive_write_set_options(p->a, "zip:encryption=aes256")) != ARCHIVE_OK ||
             (r = archive_write_set_passphrase(p->a, password)) != ARCHIVE_OK))
            r = ARCHIVE_FATAL;
        if (r != ARCHIVE_OK || archive_write_open_filename(p->a, path) != ARCHIVE_OK)
            st = arch_err(p->a, err, path);
    }
    if (st) {
        if (p->a)
            archive_write_free(p->a);
        free(p->path);
        free(p);
        return st;
    }
    mv_buf_append_str(&p->manifest, "path,size,md5,sha1,sha256\r\n");
    *out = p;
    return MV_OK;
}

/* name_ok - relative, '/'-separated, no empty, "." or ".." component, no
 * control characters: a package must not write outside itself. */
static int name_ok(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > PKG_NAME_MAX || name[0] == '/')
        return 0;
    const char *c = name;
    while (*c) {
        const char *e = strchr(c, '/');
        size_t l = e ? (size_t)(e - c) : strlen(c);
        if (!l || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        c += l + (e ? 1 : 0);
        if (e && !*c)
            return 0;
    }
    for (const unsigned char *q = (const unsigned char *)name; *q; q++)
        if (*q < 0x20 || *q == 0x7f || *q == '\\' || *q == ',' || *q == '"')
            return 0;
    return 1;
}

/* mkparents - the directories above name inside the package directory. */
static mv_status mkparents(const char *root, const char *name, mv_err *err)
{
    char *path = mv_xasprintf("%s/%s", root, name);
    mv_status st = MV_OK;
    for (char *s = path + strlen(root) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        if (mkdir(path, 0750) != 0 && errno != EEXIST)
            st = mv_err_sys(err, "creating %s", path);
        *s = '/';
        if (st)
            break;
    }
    free(path);
    return st;
}

/* stored_as_is - a file name whose format compresses its own content. */
static int stored_as_is(const char *name)
{
    static const char *const ext[] = {".pdf",  ".docx", ".xlsx", ".pptx", ".odt", ".ods",
                                      ".odp",  ".zip",  ".gz",   ".7z",   ".jpg", ".jpeg",
                                      ".png",  ".gif",  ".mp3",  ".mp4",  ".xz",  ".bz2",
                                      ".docm", ".xlsm", NULL};
    const char *dot = strrchr(name, '.');
    if (!dot || strchr(dot, '/'))
        return 0;
    for (int i = 0; ext[i]; i++)
        if (strcasecmp(dot, ext[i]) == 0)
            return 1;
    return 0;
}

mv_status mv_pkg_begin(mv_pkg *p, const char *name, uint64_t size, int unlisted, mv_err *err)
{
    if (p->open)
        return mv_err_set(err, MV_EUSAGE, "a package file is already being written");
    if (!name_ok(name))
        return mv_err_set(err, MV_EUSAGE, "'%s' is not a file name a package may hold", name);
    mv_status st = MV_OK;
    if (p->kind == MV_PKG_DIR) {
        if ((st = mkparents(p->path, name, err)))
            return st;
        char *path = mv_xasprintf("%s/%s", p->path, name);
        p->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (p->fd < 0)
            st = mv_err_sys(err, "creating %s", path);
        free(path);
    } else {
        /* Formats that are compressed already (PDF, office, images,
         * archives) are stored: deflating them again costs time and saves
         * nothing. */
        if (p->kind == MV_PKG_ZIP &&
            (stored_as_is(name) ? archive_write_zip_set_compression_store(p->a)
                                : archive_write_zip_set_compression_deflate(p->a)) != ARCHIVE_OK)
            return arch_err(p->a, err, name);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, name);
        archive_entry_set_size(e, (la_int64_t)size);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_mtime(e, (time_t)(mv_now_us() / 1000000), 0);
        if (archive_write_header(p->a, e) != ARCHIVE_OK)
            st = arch_err(p->a, err, name);
        archive_entry_free(e);
    }
    if (st)
        return st;
    p->open = 1;
    p->unlisted = unlisted;
    p->size = size;
    p->written = 0;
    memset(&p->cur, 0, sizeof p->cur);
    p->cur.name = mv_xstrdup(name);
    p->cur.size = size;
    hashes_init(&p->h);
    return MV_OK;
}

mv_status mv_pkg_write(mv_pkg *p, const void *data, size_t n, mv_err *err)
{
    if (!p->open)
        return mv_err_set(err, MV_EUSAGE, "no package file is being written");
    if (n > p->size - p->written)
        return mv_err_set(err, MV_EINTERNAL, "%s: more bytes than announced", p->cur.name);
    const uint8_t *d = data;
    hashes_update(&p->h, d, n);
    p->written += n;
    while (n) {
        ssize_t w = p->kind == MV_PKG_DIR ? write(p->fd, d, n) : archive_write_data(p->a, d, n);
        if (w < 0 && p->kind == MV_PKG_DIR && errno == EINTR)
            continue;
        if (w <= 0)
            return p->kind == MV_PKG_DIR ? mv_err_sys(err, "writing %s", p->cur.name)
                                         : arch_err(p->a, err, p->cur.name);
        d += w;
        n -= (size_t)w;
    }
    return MV_OK;
}

static void hex_csv(mv_buf *b, const uint8_t *h, size_t n)
{
    char x[65];
    mv_hex(h, n, x);
    mv_buf_append_byte(b, ',');
    mv_buf_append(b, x, 2 * n);
}

mv_status mv_pkg_end(mv_pkg *p, mv_err *err)
{
    if (!p->open)
        return mv_err_set(err, MV_EUSAGE, "no package file is being written");
    mv_status st = MV_OK;
    if (p->written != p->size)
        st = mv_err_set(err, MV_EINTERNAL, "%s: %llu bytes announced, %llu written", p->cur.name,
                        (unsigned long long)p->size, (unsigned long long)p->written);
    hashes_final(&p->h, &p->cur);
    if (p->kind == MV_PKG_DIR) {
        if (close(p->fd) != 0 && !st)
            st = mv_err_sys(err, "closing %s", p->cur.name);
        p->fd = -1;
    } else if (archive_write_finish_entry(p->a) != ARCHIVE_OK && !st) {
        st = arch_err(p->a, err, p->cur.name);
    }
    if (!st && !p->unlisted) {
        /* names are checked by name_ok: no comma or quote to escape */
        mv_buf_append_str(&p->manifest, p->cur.name);
        mv_buf_printf(&p->manifest, ",%llu", (unsigned long long)p->cur.size);
        hex_csv(&p->manifest, p->cur.md5, 16);
        hex_csv(&p->manifest, p->cur.sha1, 20);
        hex_csv(&p->manifest, p->cur.sha256, 32);
        mv_buf_append_str(&p->manifest, "\r\n");
        p->files++;
        p->bytes += p->cur.size;
    }
    free(p->cur.name);
    p->cur.name = NULL;
    p->last = p->cur;
    p->open = 0;
    return st;
}

uint64_t mv_pkg_bytes(const mv_pkg *p)
{
    return p->bytes;
}

void mv_pkg_last_hashes(const mv_pkg *p, uint8_t md5[16], uint8_t sha1[20], uint8_t sha256[32])
{
    memcpy(md5, p->last.md5, 16);
    memcpy(sha1, p->last.sha1, 20);
    memcpy(sha256, p->last.sha256, 32);
}

mv_status mv_pkg_add(mv_pkg *p, const char *name, const void *data, size_t n, int unlisted,
                     mv_err *err)
{
    mv_status st = mv_pkg_begin(p, name, n, unlisted, err);
    if (!st && !(st = mv_pkg_write(p, data, n, err)))
        return mv_pkg_end(p, err);
    if (p->open) {
        mv_err e2;
        if (mv_pkg_end(p, &e2)) { /* the first error is the one to tell */
        }
    }
    return st;
}

mv_status mv_pkg_manifest(mv_pkg *p, uint8_t sha256[32], uint64_t *files, uint64_t *bytes,
                          mv_err *err)
{
    if (p->manifest_done)
        return mv_err_set(err, MV_EUSAGE, "the manifest is already written");
    unsigned l = 32;
    mv_assert(EVP_Digest(p->manifest.data, p->manifest.len, sha256, &l, EVP_sha256(), NULL));
    *files = p->files;
    *bytes = p->bytes;
    p->manifest_done = 1;
    return mv_pkg_add(p, "manifest.csv", p->manifest.data, p->manifest.len, 1, err);
}

/* rm_fn - remove what an abandoned directory package holds (nftw, depth first). */
static int rm_fn(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

mv_status mv_pkg_close(mv_pkg *p, int abandon, mv_err *err)
{
    if (!p)
        return MV_OK;
    mv_status st = MV_OK;
    if (p->open) {
        mv_err e2;
        if (mv_pkg_end(p, &e2) && !abandon)
            st = mv_err_set(err, MV_EINTERNAL, "a package file was left unfinished");
    }
    if (p->kind == MV_PKG_DIR) {
        if (!abandon) {
            /* every file of the package on disk before success is said */
            int fd = open(p->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0 || syncfs(fd) != 0)
                st = mv_err_sys(err, "syncing %s", p->path);
            if (fd >= 0)
                close(fd);
        } else {
            nftw(p->path, rm_fn, 16, FTW_DEPTH | FTW_PHYS);
            if (!p->created_dir)
                mkdir(p->path, 0750);
        }
    } else {
        if (archive_write_close(p->a) != ARCHIVE_OK && !st)
            st = arch_err(p->a, err, p->path);
        archive_write_free(p->a);
        if (abandon)
            unlink(p->path);
        else {
            int fd = open(p->path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || fsync(fd) != 0)
                st = st ? st : mv_err_sys(err, "syncing %s", p->path);
            if (fd >= 0)
                close(fd);
        }
    }
    mv_buf_free(&p->manifest);
    free(p->path);
    free(p);
    return st;
}

/* ---- volumes ------------------------------------------------------------------ */

char *mv_pkg_volume_path(const char *out, unsigned vol)
{
    size_t n = strlen(out);
    if (mv_pkg_kind_of(out) == MV_PKG_DIR) {
        while (n > 1 && out[n - 1] == '/')
            n--;
        return mv_xasprintf("%.*s/VOL%04u", (int)n, out, vol);
    }
    /* x.zip -> x.VOL0001.zip: still a .zip to every tool */
    return mv_xasprintf("%.*s.VOL%04u%s", (int)(n - 4), out, vol, out + n - 4);
}

void mv_pkg_remove(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode))
        nftw(path, rm_fn, 16, FTW_DEPTH | FTW_PHYS);
    else
        unlink(path);
}

mv_status mv_parse_size(const char *s, uint64_t *out, mv_err *err)
{
    const char *p = s;
    uint64_t v = 0;
    if (!s || *s < '0' || *s > '9')
        goto bad;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            goto bad;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    unsigned shift = 0;
    switch (*p) {
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    case 't': case 'T': shift = 40; p++; break;
    default: break;
    }
    if (*p || v > (UINT64_MAX >> 1) >> shift)
        goto bad;
    *out = v << shift;
    return MV_OK;
bad:
    return mv_err_set(err, MV_EUSAGE, "'%s' is not a size (a number, optionally with K, M, G or T)",
                      s ? s : "");
}

/* ---- reading back ------------------------------------------------------------ */

typedef struct scan {
    const char *const *keep;
    mv_buf *kept;
    size_t max_kept;
    mv_pkg_file *files;
    size_t n, cap;
    mv_status st;
    mv_err *err;
    size_t root_len;
} scan;

static int kept_index(const scan *sc, const char *name)
{
    for (int i = 0; sc->keep && sc->keep[i]; i++)
        if (!strcmp(sc->keep[i], name))
            return i;
    return -1;
}

typedef ssize_t (*read_fn)(void *ctx, void *buf, size_t n);

/* scan_one - hash one file's bytes (read through rd), keep it if named. */
static void scan_one(scan *sc, const char *name, read_fn rd, void *ctx)
{
    if (sc->n == sc->cap) {
        if (sc->cap >= PKG_SCAN_FILES_MAX) {
            sc->st = mv_err_set(sc->err, MV_ELIMIT, "more than %u files", PKG_SCAN_FILES_MAX);
            return;
        }
        sc->files = mv_xrealloc(sc->files, (sc->cap = sc->cap ? sc->cap * 2 : 64) *
                                               sizeof *sc->files);
    }
    mv_pkg_file *f = &sc->files[sc->n];
    memset(f, 0, sizeof *f);
    f->name = mv_xstrdup(name);
    int k = kept_index(sc, name);
    hashes h;
    hashes_init(&h);
    uint8_t buf[65536];
    for (;;) {
        ssize_t r = rd(ctx, buf, sizeof buf);
        if (r < 0) {
            sc->st = mv_err_set(sc->err, MV_EMALFORMED,
                                "%s cannot be read (an encrypted package needs the right "
                                "--password-file; or it is damaged)", name);
            break;
        }
        if (!r)
            break;
        hashes_update(&h, buf, (size_t)r);
        f->size += (uint64_t)r;
        if (k >= 0) {
            if (sc->kept[k].len + (size_t)r > sc->max_kept) {
                sc->st = mv_err_set(sc->err, MV_ELIMIT, "%s is larger than %zu bytes", name,
                                    sc->max_kept);
                break;
            }
            mv_buf_append(&sc->kept[k], buf, (size_t)r);
        }
    }
    hashes_final(&h, f);
    sc->n++;
}

static ssize_t fd_read(void *ctx, void *buf, size_t n)
{
    ssize_t r;
    do
        r = read(*(int *)ctx, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

static ssize_t arch_read(void *ctx, void *buf, size_t n)
{
    la_ssize_t r = archive_read_data(ctx, buf, n);
    return r < 0 ? -1 : (ssize_t)r;
}

static _Thread_local scan *walk_scan;

static int walk_fn(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    scan *sc = walk_scan;
    if (sc->st)
        return 1;
    if (flag == FTW_F) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            sc->st = mv_err_sys(sc->err, "opening %s", path);
            return 1;
        }
        scan_one(sc, path + sc->root_len + 1, fd_read, &fd);
        close(fd);
    } else if (flag == FTW_SL || flag == FTW_SLN) {
        /* a package holds files only: a link is something added */
        scan_one(sc, path + sc->root_len + 1, fd_read, &(int){-1});
    }
    return sc->st ? 1 : 0;
}

mv_status mv_pkg_scan(const char *path, const char *password, const char *const *keep,
                      mv_buf *kept, size_t max_kept, mv_pkg_file **files, size_t *n, mv_err *err)
{
    scan sc = {keep, kept, max_kept, NULL, 0, 0, MV_OK, err, strlen(path)};
    while (sc.root_len > 1 && path[sc.root_len - 1] == '/')
        sc.root_len--;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        /* nothing to verify is not a package that fails verification */
        int e = errno;
        mv_status st = mv_err_sys(err, "no package at %s", path);
        if (e == ENOENT || e == ENOTDIR || e == EACCES || e == ENAMETOOLONG || e == ELOOP) {
            if (err)
                err->code = MV_ENOTFOUND;
            st = MV_ENOTFOUND;
        }
        return st;
    }
    if (S_ISDIR(sb.st_mode)) {
        walk_scan = &sc;
        if (nftw(path, walk_fn, 16, FTW_PHYS) < 0 && !sc.st)
            sc.st = mv_err_sys(err, "reading %s", path);
        walk_scan = NULL;
    } else {
        struct archive *a = archive_read_new();
        archive_read_support_format_zip(a);
        archive_read_support_format_tar(a);
        if (password)
            archive_read_add_passphrase(a, password);
        if (access(path, R_OK) != 0) {
            int e = errno;
            sc.st = mv_err_sys(err, "%s cannot be read", path);
            if (e == EACCES) {
                sc.st = MV_ENOTFOUND;
                if (err)
                    err->code = MV_ENOTFOUND;
            }
        } else if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
            sc.st = mv_err_set(err, MV_EMALFORMED, "%s is not a ZIP or tar package (or is damaged): %s",
                               path, archive_error_string(a) ? archive_error_string(a)
                                                             : "libarchive error");
        } else {
            struct archive_entry *e;
            int r;
            while (!sc.st && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
                if (archive_entry_filetype(e) == AE_IFDIR)
                    continue;
                scan_one(&sc, archive_entry_pathname(e) ? archive_entry_pathname(e) : "",
                         arch_read, a);
            }
            if (!sc.st && r != ARCHIVE_EOF)
                sc.st = mv_err_set(err, MV_EMALFORMED, "%s is damaged: %s", path,
                                   archive_error_string(a) ? archive_error_string(a)
                                                           : "libarchive error");
        }
        archive_read_free(a);
    }
    if (sc.st) {
        mv_pkg_files_free(sc.files, sc.n);
        return sc.st;
    }
    *files = sc.files;
    *n = sc.n;
    return MV_OK;
}

void mv_pkg_files_free(mv_pkg_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i].name);
    free(f);
}

void mv_mboxrd_quote(const uint8_t *p, size_t n, mv_buf *out)
{
    size_t i = 0;
    while (i < n) {
        const uint8_t *nl = memchr(p + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - p) + 1 : n;
        size_t k = i;
        while (k < end && p[k] == '>')
            k++;
        if (end - k >= 5 && !memcmp(p + k, "From ", 5))
            mv_buf_append_byte(out, '>');
        mv_buf_append(out, p + i, end - i);
        i = end;
    }
}
