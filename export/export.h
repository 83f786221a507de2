/* SPDX-License-Identifier: MIT */
/* export.h - export packages for legal review: a directory, a ZIP or a
 * tar (libarchive), every file hashed (MD5, SHA-1, SHA-256) as it is
 * written and listed in manifest.csv, and a custody record signed with the
 * archive's key (docs/export.md).
 *
 * A package is written file by file, streaming: a file's bytes pass
 * through once (hashed on the way), so memory holds at most the piece the
 * caller hands over.  Ownership: an mv_pkg belongs to the caller until
 * mv_pkg_close (which frees it, on failure too). */
#ifndef MV_EXPORT_EXPORT_H
#define MV_EXPORT_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"
#include "../lib/err.h"

typedef enum { MV_PKG_DIR = 0, MV_PKG_ZIP, MV_PKG_TAR } mv_pkg_kind;

/* mv_pkg_kind_of - from the path: ".zip" a ZIP, ".tar" a tar, else a directory. */
mv_pkg_kind mv_pkg_kind_of(const char *path);

typedef struct mv_pkg mv_pkg;

/* mv_pkg_create - a new package at path (a directory must not exist or be
 * empty; a file must not exist).  With password (a ZIP only), every entry
 * is encrypted with WinZip AES-256 (never ZipCrypto); the password is
 * copied by libarchive and not kept here.
 * @retval MV_EEXIST path exists (and is not an empty directory)
 * @retval MV_EUSAGE a password for a directory or a tar */
MV_NODISCARD mv_status mv_pkg_create(const char *path, const char *password, mv_pkg **out,
                                     mv_err *err);

/* mv_pkg_begin - start file name (relative, '/'-separated, no "..") of
 * exactly size bytes; listed in the manifest unless unlisted.  Then
 * mv_pkg_write until size bytes, then mv_pkg_end.
 * @retval MV_EUSAGE a bad name, or a file already begun */
MV_NODISCARD mv_status mv_pkg_begin(mv_pkg *p, const char *name, uint64_t size, int unlisted,
                                    mv_err *err);
MV_NODISCARD mv_status mv_pkg_write(mv_pkg *p, const void *data, size_t n, mv_err *err);
/* @retval MV_EINTERNAL fewer or more bytes than begun with */
MV_NODISCARD mv_status mv_pkg_end(mv_pkg *p, mv_err *err);
/* mv_pkg_add - begin, write and end in one call. */
MV_NODISCARD mv_status mv_pkg_add(mv_pkg *p, const char *name, const void *data, size_t n,
                                  int unlisted, mv_err *err);

/* mv_pkg_bytes - bytes of the listed files ended so far (what a volume
 * of a split export measures). */
uint64_t mv_pkg_bytes(const mv_pkg *p);

/* mv_pkg_last_hashes - the hashes of the file last ended (for a load
 * file's record: computed once, as it was written). */
void mv_pkg_last_hashes(const mv_pkg *p, uint8_t md5[16], uint8_t sha1[20], uint8_t sha256[32]);

/* mv_pkg_manifest - write manifest.csv (path,size,md5,sha1,sha256 of
 * every listed file, in the order written) and give its SHA-256, its
 * file count and their bytes.  Once, after the last listed file. */
MV_NODISCARD mv_status mv_pkg_manifest(mv_pkg *p, uint8_t sha256[32], uint64_t *files,
                                       uint64_t *bytes, mv_err *err);

/* mv_pkg_close - finish (sync a directory's files; close the archive) and
 * free p.  With abandon, what was written is removed where it can be. */
MV_NODISCARD mv_status mv_pkg_close(mv_pkg *p, int abandon, mv_err *err);

/* ---- volumes (export --split-size) ----------------------------------------- */

/* The smallest --split-size: a volume holds at least one family anyway,
 * and smaller volumes only multiply custody records. */
#define MV_SPLIT_MIN ((uint64_t)1 << 20)
/* Volumes of one export (VOL0001 .. VOL9999). */
#define MV_VOLUMES_MAX 9999u

/* mv_pkg_volume_path - where volume vol (1-based) of an export to out
 * goes: out/VOL0001 for a directory, x.VOL0001.zip for x.zip, x.VOL0001.tar
 * for x.tar (the suffix keeps its case).  Caller frees. */
char *mv_pkg_volume_path(const char *out, unsigned vol);

/* mv_pkg_remove - remove a finished package (a directory tree or a file)
 * again: the volumes of an export that failed later.  Best effort. */
void mv_pkg_remove(const char *path);

/* mv_parse_size - "1500000", "64K", "100M", "2G" (binary multiples, K M G T
 * in either case) into *out.
 * @retval MV_EUSAGE not a size, or past 2^63 */
MV_NODISCARD mv_status mv_parse_size(const char *s, uint64_t *out, mv_err *err);

/* ---- reading a package back (verify-export) ------------------------------- */

typedef struct mv_pkg_file {
    char *name;
    uint64_t size;
    uint8_t md5[16], sha1[20], sha256[32];
} mv_pkg_file;

/* mv_pkg_scan - every regular file of the package at path, hashed; the
 * bytes of the files named in keep (NULL-terminated list: the manifest and
 * custody files, which are small) are also returned, in kept[i] (caller
 * frees with mv_buf_free).  *files is an array of *n (mv_pkg_files_free).
 * password (may be NULL) opens an encrypted ZIP.
 * Bounded: a kept file over max_kept bytes is an error.
 * @retval MV_ENOTFOUND nothing at path, or it cannot be read (permissions)
 * @retval MV_EMALFORMED not a ZIP or tar, or damaged (or a wrong password)
 * @retval MV_ELIMIT a kept file over max_kept, or too many files
 * @retval MV_EIO a read error of the operating system in a directory */
MV_NODISCARD mv_status mv_pkg_scan(const char *path, const char *password,
                                   const char *const *keep, mv_buf *kept, size_t max_kept,
                                   mv_pkg_file **files, size_t *n, mv_err *err);
void mv_pkg_files_free(mv_pkg_file *f, size_t n);

/* mboxrd: the "From " separator line for a message and its quoting. */
/* mv_mboxrd_quote - append p[0..n) to out with every line that matches
 * ^>*From  given one more '>' (line ends kept as they are). */
void mv_mboxrd_quote(const uint8_t *p, size_t n, mv_buf *out);

#endif
