/* SPDX-License-Identifier: MIT */
/* config.h - schema-driven INI configuration reader.
 *
 * The program declares every setting it has in a table of mv_cfg_key; the
 * reader accepts only what the table names, so a typo in a hand-edited file
 * is an error instead of a silent default.  Every value is checked (type,
 * range) when it is loaded or set, so the getters cannot fail.
 *
 * File format (UTF-8, LF or CRLF line ends, a leading UTF-8 BOM is skipped):
 *   # comment                     also "; comment"; whole lines, after blanks
 *   [archive]                     a plain section
 *   [listener smtp]               a named section; the name may be quoted:
 *   [listener "in bound"]           [WORD "..."] with \" and \\ escapes
 *   key = value                   blanks around key and value are trimmed
 *   key = "  quoted # text "      quotes keep blanks, '#' and ';'; the only
 *                                 escapes are \" and \\ (others are errors)
 *   key = value  # comment        an unquoted value ends where '#' or ';'
 *                                 FOLLOWS A BLANK, for every type: one rule
 *                                 to learn ("a#b" and "http://x/#f" stay whole;
 *                                 quote a value that needs " #")
 * Keys and section words are [A-Za-z0-9_.-]+, case-sensitive.  Unknown
 * sections, unknown keys, a key before any section, a key twice in one
 * section, a section header twice, and control characters (other than tab)
 * in values or names are errors.  Unquoted backslashes are literal.
 *
 * Value types (the text is kept as written; getters convert):
 *   STR       any text
 *   BOOL      yes/no, true/false, on/off, 1/0 (any case)
 *   UINT      decimal digits, 0 .. 2^64-1
 *   SIZE      bytes: digits and an optional unit, blanks allowed between:
 *             B, K/KB/KiB, M/MB/MiB, G, T, P, E (any case; always 1024-based,
 *             as in PostgreSQL: "100MB" is 100 MiB)
 *   DURATION  milliseconds out: ms, s/sec, m/min, h, d; a bare number is seconds
 *   LIST      words separated by commas and/or blanks; empty words dropped
 *   MODE      octal file mode, at most 07777 ("0640", "640")
 * min/max bound UINT, SIZE and DURATION (in ms); max 0 means no upper bound.
 *
 * Error messages name the place and what was expected, e.g.
 *   serve.conf:12: [limits] message_size = "10X": expected a size such as 100M ...
 *
 * Thread safety: loading and mv_cfg_set change the cfg and need exclusive
 * access; the getters never write, so any number of threads may read at once
 * between changes. */
#ifndef MV_LIB_CONFIG_H
#define MV_LIB_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

/* Named limits on hostile or mistaken input. */
#define MV_CFG_MAX_LINE 8192          /* bytes per line, without the line end */
#define MV_CFG_MAX_FILE (1024 * 1024) /* bytes per file or string loaded */
#define MV_CFG_MAX_INSTANCES 256      /* instances of one named section */
#define MV_CFG_MAX_VALUE 4000         /* bytes per value: printed quoted it still fits a line */
#define MV_CFG_MAX_NAME 256           /* bytes per instance name */

typedef enum mv_cfg_type {
    MV_CFG_STR,
    MV_CFG_BOOL,     /* yes/no/true/false/on/off/1/0 */
    MV_CFG_UINT,     /* decimal u64 */
    MV_CFG_SIZE,     /* bytes: 123, 64K, 100M, 2G (1024-based; also KiB/MiB/GiB) */
    MV_CFG_DURATION, /* milliseconds out: 300s, 5m/5min, 250ms, 2h; bare number = seconds */
    MV_CFG_LIST,     /* comma- and/or whitespace-separated words */
    MV_CFG_MODE      /* octal file mode, e.g. 0660 */
} mv_cfg_type;

typedef struct mv_cfg_key {
    const char *section; /* "archive", or "listener *" for [listener NAME] that may repeat */
    const char *key;
    mv_cfg_type type;
    const char *def;   /* default as text (parsed with the same rules), NULL = unset */
    const char *help;  /* one line, for --print-config and docs */
    uint64_t min, max; /* UINT/SIZE/DURATION(ms): max 0 = no upper bound */
} mv_cfg_key;

typedef struct mv_cfg mv_cfg;

/* mv_cfg_new - an empty configuration over schema[0..n).  The schema is
 * borrowed and must outlive the cfg.  A malformed schema (bad names, a
 * section word or key over 64 bytes, help over 1024 bytes, a
 * default that does not parse or is out of range, a key twice, a section
 * both plain and named, min > max) is a programming error: mv_assert. */
mv_cfg *mv_cfg_new(const mv_cfg_key *schema, size_t n);
/* mv_cfg_free - release c and every string it handed out; NULL ok. */
void mv_cfg_free(mv_cfg *c);

/* mv_cfg_load_file, mv_cfg_load_string - read settings.  A load is all or
 * nothing: on error c is unchanged.  Loading again layers the new text over
 * earlier loads (a key set again replaces the earlier file value); values
 * from mv_cfg_set always win over files, whenever they were set.
 * name_for_errors prefixes messages ("serve.conf:12: ..."); NULL = "config".
 * @retval MV_OK
 * @retval MV_EMALFORMED  syntax, unknown section or key, duplicate, bad value, NUL byte
 * @retval MV_ELIMIT      a line, the file, a value, a name or a section count over MV_CFG_MAX_*
 * @retval MV_ENOTFOUND, MV_EIO  (file only) the file cannot be read */
MV_NODISCARD mv_status mv_cfg_load_file(mv_cfg *c, const char *path, mv_err *err);
MV_NODISCARD mv_status mv_cfg_load_string(mv_cfg *c, const char *text, const char *name_for_errors,
                                          mv_err *err);

/* mv_cfg_set - override one value (e.g. from the command line); it wins over
 * every file.  section is the base word ("listener"); name is NULL for plain
 * sections and required for named ones, whose instance is created if
 * missing.  Strings are copied.  On error c is unchanged.
 * @retval MV_OK
 * @retval MV_EMALFORMED  unknown section or key, missing/unexpected name, bad value
 * @retval MV_ELIMIT      value or name too long, a new instance over MV_CFG_MAX_INSTANCES */
MV_NODISCARD mv_status mv_cfg_set(mv_cfg *c, const char *section, const char *name, const char *key,
                                  const char *value, mv_err *err);

/* Getters: the value set (override, else file), else the schema default.
 * section is the schema's base word, name the instance (NULL exactly for
 * plain sections); a missing instance yields defaults.  A section or key not
 * in the schema, a name given or missing wrongly, or a getter of the wrong
 * type is a programming error: mv_assert.  Returned pointers are owned by c
 * and valid until c is freed or loaded / set again. */
const char *mv_cfg_str(const mv_cfg *c, const char *section, const char *name,
                       const char *key); /* any type, as written; NULL when unset and no default */
int mv_cfg_is_set(const mv_cfg *c, const char *section, const char *name,
                  const char *key); /* explicitly set (file or override) */
/* mv_cfg_u64 - UINT, SIZE (bytes), DURATION (ms), MODE; 0 when unset and no default. */
uint64_t mv_cfg_u64(const mv_cfg *c, const char *section, const char *name, const char *key);
/* mv_cfg_bool - BOOL: 1 or 0; 0 when unset and no default. */
int mv_cfg_bool(const mv_cfg *c, const char *section, const char *name, const char *key);
/* mv_cfg_list - LIST: *n words, NULL-terminated array (empty when unset). */
const char *const *mv_cfg_list(const mv_cfg *c, const char *section, const char *name,
                               const char *key, size_t *n);
/* mv_cfg_instances - names of the instances of a named section, in order of
 * first appearance (files, then overrides); NULL-terminated, *n of them. */
const char *const *mv_cfg_instances(const mv_cfg *c, const char *section, size_t *n);

/* mv_cfg_print - the effective configuration as INI that loads back to the
 * same values: every key with its help line; values that were not set are
 * printed commented out and marked "# default" (or "# unset").  Quoting can
 * double a value's length, so text loaded near MV_CFG_MAX_FILE may print to
 * more than a load accepts; lines always fit MV_CFG_MAX_LINE. */
void mv_cfg_print(const mv_cfg *c, FILE *f);
/* mv_cfg_print_schema_md - the schema as one Markdown table per section. */
void mv_cfg_print_schema_md(const mv_cfg_key *schema, size_t n, FILE *f);

#endif
