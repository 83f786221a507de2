/* SPDX-License-Identifier: MIT */
/* source.h - enumerate the messages under import paths.
 *
 * Files are recognised by content and layout, never by name: a file whose
 * first line is an mbox separator ("From " + address + asctime date) is an
 * mbox; a directory holding cur/ and new/ is a Maildir (tmp/ ignored; every
 * non-empty file in cur/ and new/ is a message); any other regular file
 * whose first line is a header field ("Name: value", blanks allowed before
 * the colon) and whose second line is another field, a folded line or the
 * blank line is one message; so is one whose first field is one that only
 * mail starts with (Received, From, Subject ...) when another field follows
 * within 8 lines, before a blank one (a header block a stray line damaged);
 * fields that end in no blank line and hold no field of mail are not a
 * message (key, settings and list files).
 * A first line "From sender" without the mbox date (a single saved
 * message) is allowed before those two lines and kept in the message.  A
 * UTF-8 byte-order mark is allowed first (with an mbox's first separator
 * line it is not message bytes; a message keeps it), and so are up to
 * three blank lines before an mbox's first separator.  Apple Mail's .emlx
 * (a line with the message's length, the message, a property list) is one
 * message: the counted bytes.
 * Anything else is skipped with a reason through warn (README files,
 * binaries, empty files).  Directories are walked recursively in a stable
 * (sorted, bytewise) order; symlinks found in the walk are not followed (a
 * path named in paths[] is).
 *
 * Memory is bounded by the largest message, not by the file: mbox files are
 * read sequentially. */
#ifndef MV_INGEST_SOURCE_H
#define MV_INGEST_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

typedef struct mv_source_limits {
    size_t max_message_bytes; /* larger messages are an error for that message only; default 512 MiB */
} mv_source_limits;

void mv_source_limits_default(mv_source_limits *l);

typedef struct mv_source_msg {
    const uint8_t *data; /* the message bytes (mbox: separator removed, >From unquoted) */
    size_t len;
    const uint8_t *raw;  /* the bytes as they stood in the file (== data unless mbox quoting) */
    size_t raw_len;
    const char *origin;  /* stable identity of where it came from:
                          * "file:/abs/path", "mbox:/abs/path#N" (N = 1-based ordinal),
                          * "maildir:/abs/dir#unique" (flags and cur/new dropped) */
    const char *kind;    /* "eml", "mbox", "maildir" */
    const char *mbox_variant; /* "mboxo" or "mboxrd" for mbox, else NULL */
    const char *mbox_from;    /* separator line after "From " without line end, else NULL */
    int64_t mtime;            /* the file's modification time (seconds) */
    const char *anomaly;      /* what was odd about how the file held it (an .emlx
                               * length past its end), else NULL */
} mv_source_msg;

typedef struct mv_source mv_source;

/* Called for each file or message that is skipped or fails (reason is a
 * short text, path borrowed for the call). */
typedef void (*mv_source_warn_fn)(void *ctx, const char *path, const char *reason);

/* mv_source_open - walk the paths now (directory listings; a file's size
 * is read when it is opened, see mv_source_total_bytes).
 * @retval MV_OK        *out owned by caller, free with mv_source_free
 * @retval MV_ENOTFOUND a path does not exist
 * @retval MV_EIO       a path cannot be read */
MV_NODISCARD mv_status mv_source_open(char *const *paths, size_t npaths,
                                      const mv_source_limits *lim, mv_source_warn_fn warn,
                                      void *warn_ctx, mv_source **out, mv_err *err);
/* mv_source_set_warn - whom the source tells from now on (a source opened
 * on another thread, handed over). */
void mv_source_set_warn(mv_source *s, mv_source_warn_fn warn, void *warn_ctx);
/* mv_source_next - the next message; the pointers in *m stay valid until
 * the next call or mv_source_free.
 * @retval MV_OK        *m filled
 * @retval MV_ENOTFOUND no more messages
 * (files that cannot be read are reported through warn and skipped; the
 *  count is in mv_source_failed) */
MV_NODISCARD mv_status mv_source_next(mv_source *s, mv_source_msg *m, mv_err *err);
/* mv_source_take - hand over the buffer behind the last message's data
 * (allocated with malloc; the caller frees it), so a large message need not
 * be copied.  After it, m->data and m->raw of that message are invalid.
 * Returns NULL when there is nothing to take. */
uint8_t *mv_source_take(mv_source *s, size_t *len);
/* mv_source_total_bytes - the sum of the sizes of candidate files.  The
 * walk does not stat the files a directory listing says are regular, so
 * the first call stats those not read yet (ask before reading, once). */
uint64_t mv_source_total_bytes(mv_source *s);
uint64_t mv_source_done_bytes(const mv_source *s);  /* bytes consumed so far */
uint64_t mv_source_skipped(const mv_source *s);     /* files skipped as not mail */
uint64_t mv_source_failed(const mv_source *s);      /* files or messages that could not be read */
void mv_source_free(mv_source *s);

/* Pure parsers, exposed for tests and fuzzing. */
typedef enum { MV_FILE_OTHER = 0, MV_FILE_EML, MV_FILE_MBOX, MV_FILE_EMLX } mv_file_kind;
/* mv_detect_kind - classify a file by its first bytes (up to 4 KiB is enough). */
mv_file_kind mv_detect_kind(const uint8_t *p, size_t n);
/* mv_emlx_prefix - the length of an .emlx file's first line (the message's
 * length in decimal, blanks allowed before the line end) with the length
 * in *count, or 0 when p does not start with such a line. */
size_t mv_emlx_prefix(const uint8_t *p, size_t n, uint64_t *count);
/* mv_mbox_is_separator - is this line (without its line end) an mbox
 * separator: "From " SP addr SP asctime-date (optionally with a zone)? */
int mv_mbox_is_separator(const uint8_t *line, size_t n);

/* mv_mbox_split - split an in-memory mbox, calling fn for each message with
 * (data,len) already unquoted per the detected variant and (raw,raw_len) as
 * in the buffer.  Same rules as the file reader.  Returns the number of
 * messages. */
typedef void (*mv_mbox_fn)(void *ctx, const uint8_t *data, size_t len, const uint8_t *raw,
                           size_t raw_len, const uint8_t *from_line, size_t from_len);
size_t mv_mbox_split(const uint8_t *p, size_t n, mv_mbox_fn fn, void *ctx);

#endif
