/* SPDX-License-Identifier: MIT */
/* pgp.c - OpenPGP escrow decryption with librnp (docs/decryption.md,
 * "OpenPGP"; STANDARDS.md section 4).
 *
 * The MIME structure is found by our own scan of the raw bytes (rawmime.c,
 * shared with journal.c), because the decrypted form must keep every byte
 * of the original that it does not replace; GMime re-serialises what it
 * parses.
 *
 * librnp is C++ behind an exception-safe C API; every call's status is
 * checked.  Each decryption attempt gets a fresh rnp_ffi_t filled only by
 * the key provider (see pgp.h for why).  librnp 0.16 writes diagnostics for
 * malformed packets to stderr itself and offers no switch to stop it: they
 * hold no key material or plaintext, only function names and reasons.
 *
 * LIMITS: see pgp.h.  Recursion is bounded by max_depth (MIME) and
 * max_layers (decrypted entities that are walked again), both capped. */
#include "pgp.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <rnp/rnp.h>
#include <rnp/rnp_err.h>

#include "rawmime.h"

#define DEPTH_CAP 100 /* docs/decryption.md: max_depth above 100 counts as 100 */
#define LAYER_CAP 16  /* whatever max_layers says */

/* ---- librnp, loaded at its first use -------------------------------------- */

/* librnp, with Botan, SQLite and the rest it brings, is loaded when OpenPGP
 * keys or mail are first handled, not linked: loading it took ~5 ms at the
 * start of every command (an empty program linked as mailvault is started
 * in 18 ms with it, 13 without), and most commands never meet OpenPGP.
 * Detection (mv_pgp_detect) needs none of it.  Every librnp call below
 * goes through this table; each public function that makes any first
 * checks need_rnp. */
#define RNP_SONAME "librnp.so.0"
#define RNP_FUNCS(X) \
    X(rnp_buffer_destroy) \
    X(rnp_dearmor) \
    X(rnp_ffi_create) \
    X(rnp_ffi_destroy) \
    X(rnp_ffi_set_key_provider) \
    X(rnp_identifier_iterator_create) \
    X(rnp_identifier_iterator_destroy) \
    X(rnp_identifier_iterator_next) \
    X(rnp_import_keys) \
    X(rnp_input_destroy) \
    X(rnp_input_from_memory) \
    X(rnp_key_allows_usage) \
    X(rnp_key_export) \
    X(rnp_key_get_alg) \
    X(rnp_key_get_bits) \
    X(rnp_key_get_creation) \
    X(rnp_key_get_curve) \
    X(rnp_key_get_expiration) \
    X(rnp_key_get_fprint) \
    X(rnp_key_get_grip) \
    X(rnp_key_get_keyid) \
    X(rnp_key_get_primary_fprint) \
    X(rnp_key_get_primary_uid) \
    X(rnp_key_get_protection_type) \
    X(rnp_key_get_subkey_at) \
    X(rnp_key_get_subkey_count) \
    X(rnp_key_get_uid_at) \
    X(rnp_key_get_uid_count) \
    X(rnp_key_handle_destroy) \
    X(rnp_key_have_secret) \
    X(rnp_key_is_primary) \
    X(rnp_key_is_protected) \
    X(rnp_key_unprotect) \
    X(rnp_locate_key) \
    X(rnp_op_verify_create) \
    X(rnp_op_verify_destroy) \
    X(rnp_op_verify_detached_create) \
    X(rnp_op_verify_execute) \
    X(rnp_op_verify_get_protection_info) \
    X(rnp_op_verify_get_recipient_at) \
    X(rnp_op_verify_get_recipient_count) \
    X(rnp_op_verify_get_signature_at) \
    X(rnp_op_verify_get_signature_count) \
    X(rnp_op_verify_get_symenc_count) \
    X(rnp_op_verify_get_used_recipient) \
    X(rnp_op_verify_set_flags) \
    X(rnp_op_verify_signature_get_handle) \
    X(rnp_op_verify_signature_get_key) \
    X(rnp_op_verify_signature_get_status) \
    X(rnp_op_verify_signature_get_times) \
    X(rnp_output_destroy) \
    X(rnp_output_memory_get_buf) \
    X(rnp_output_to_callback) \
    X(rnp_output_to_memory) \
    X(rnp_output_to_null) \
    X(rnp_recipient_get_keyid) \
    X(rnp_result_to_string) \
    X(rnp_signature_get_keyid) \
    X(rnp_signature_handle_destroy)

static struct {
#define X(f) __typeof__(f) *f;
    RNP_FUNCS(X)
#undef X
} rnp_api;
static int rnp_ok;
static char rnp_why[256];
static pthread_once_t rnp_once = PTHREAD_ONCE_INIT;

static void rnp_load(void)
{
    void *h = dlopen(RNP_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(rnp_why, sizeof rnp_why, "%s", e ? e : "cannot be loaded");
        return;
    }
    rnp_ok = 1;
#define X(f)                                                                                       \
    if (!(*(void **)&rnp_api.f = dlsym(h, #f))) {                                                  \
        rnp_ok = 0;                                                                                \
        snprintf(rnp_why, sizeof rnp_why, "%s has no %s", RNP_SONAME, #f);                         \
    }
    RNP_FUNCS(X)
#undef X
}

/* need_rnp - MV_OK once librnp is loaded; MV_ECRYPTO naming the package
 * when it cannot be. */
static mv_status need_rnp(mv_err *err)
{
    pthread_once(&rnp_once, rnp_load);
    if (rnp_ok)
        return MV_OK;
    return mv_err_set(err, MV_ECRYPTO, "OpenPGP needs %s (Debian package librnp0): %s", RNP_SONAME,
                      rnp_why);
}

#define rnp_buffer_destroy (rnp_api.rnp_buffer_destroy)
#define rnp_dearmor (rnp_api.rnp_dearmor)
#define rnp_ffi_create (rnp_api.rnp_ffi_create)
#define rnp_ffi_destroy (rnp_api.rnp_ffi_destroy)
#define rnp_ffi_set_key_provider (rnp_api.rnp_ffi_set_key_provider)
#define rnp_identifier_iterator_create (rnp_api.rnp_identifier_iterator_create)
#define rnp_identifier_iterator_destroy (rnp_api.rnp_identifier_iterator_destroy)
#define rnp_identifier_iterator_next (rnp_api.rnp_identifier_iterator_next)
#define rnp_import_keys (rnp_api.rnp_import_keys)
#define rnp_input_destroy (rnp_api.rnp_input_destroy)
#define rnp_input_from_memory (rnp_api.rnp_input_from_memory)
#define rnp_key_allows_usage (rnp_api.rnp_key_allows_usage)
#define rnp_key_export (rnp_api.rnp_key_export)
#define rnp_key_get_alg (rnp_api.rnp_key_get_alg)
#define rnp_key_get_bits (rnp_api.rnp_key_get_bits)
#define rnp_key_get_creation (rnp_api.rnp_key_get_creation)
#define rnp_key_get_curve (rnp_api.rnp_key_get_curve)
#define rnp_key_get_expiration (rnp_api.rnp_key_get_expiration)
#define rnp_key_get_fprint (rnp_api.rnp_key_get_fprint)
#define rnp_key_get_grip (rnp_api.rnp_key_get_grip)
#define rnp_key_get_keyid (rnp_api.rnp_key_get_keyid)
#define rnp_key_get_primary_fprint (rnp_api.rnp_key_get_primary_fprint)
#define rnp_key_get_primary_uid (rnp_api.rnp_key_get_primary_uid)
#define rnp_key_get_protection_type (rnp_api.rnp_key_get_protection_type)
#define rnp_key_get_subkey_at (rnp_api.rnp_key_get_subkey_at)
#define rnp_key_get_subkey_count (rnp_api.rnp_key_get_subkey_count)
#define rnp_key_get_uid_at (rnp_api.rnp_key_get_uid_at)
#define rnp_key_get_uid_count (rnp_api.rnp_key_get_uid_count)
#define rnp_key_handle_destroy (rnp_api.rnp_key_handle_destroy)
#define rnp_key_have_secret (rnp_api.rnp_key_have_secret)
#define rnp_key_is_primary (rnp_api.rnp_key_is_primary)
#define rnp_key_is_protected (rnp_api.rnp_key_is_protected)
#define rnp_key_unprotect (rnp_api.rnp_key_unprotect)
#define rnp_locate_key (rnp_api.rnp_locate_key)
#define rnp_op_verify_create (rnp_api.rnp_op_verify_create)
#define rnp_op_verify_destroy (rnp_api.rnp_op_verify_destroy)
#define rnp_op_verify_detached_create (rnp_api.rnp_op_verify_detached_create)
#define rnp_op_verify_execute (rnp_api.rnp_op_verify_execute)
#define rnp_op_verify_get_protection_info (rnp_api.rnp_op_verify_get_protection_info)
#define rnp_op_verify_get_recipient_at (rnp_api.rnp_op_verify_get_recipient_at)
#define rnp_op_verify_get_recipient_count (rnp_api.rnp_op_verify_get_recipient_count)
#define rnp_op_verify_get_signature_at (rnp_api.rnp_op_verify_get_signature_at)
#define rnp_op_verify_get_signature_count (rnp_api.rnp_op_verify_get_signature_count)
#define rnp_op_verify_get_symenc_count (rnp_api.rnp_op_verify_get_symenc_count)
#define rnp_op_verify_get_used_recipient (rnp_api.rnp_op_verify_get_used_recipient)
#define rnp_op_verify_set_flags (rnp_api.rnp_op_verify_set_flags)
#define rnp_op_verify_signature_get_handle (rnp_api.rnp_op_verify_signature_get_handle)
#define rnp_op_verify_signature_get_key (rnp_api.rnp_op_verify_signature_get_key)
#define rnp_op_verify_signature_get_status (rnp_api.rnp_op_verify_signature_get_status)
#define rnp_op_verify_signature_get_times (rnp_api.rnp_op_verify_signature_get_times)
#define rnp_output_destroy (rnp_api.rnp_output_destroy)
#define rnp_output_memory_get_buf (rnp_api.rnp_output_memory_get_buf)
#define rnp_output_to_callback (rnp_api.rnp_output_to_callback)
#define rnp_output_to_memory (rnp_api.rnp_output_to_memory)
#define rnp_output_to_null (rnp_api.rnp_output_to_null)
#define rnp_recipient_get_keyid (rnp_api.rnp_recipient_get_keyid)
#define rnp_result_to_string (rnp_api.rnp_result_to_string)
#define rnp_signature_get_keyid (rnp_api.rnp_signature_get_keyid)
#define rnp_signature_handle_destroy (rnp_api.rnp_signature_handle_destroy)

/* ---- transfer decodings ------------------------------------------------ */

/* decode_body - p[0..n) decoded per cte into out (identity for 7bit,
 * 8bit, binary and unknown encodings). */
static void decode_body(const uint8_t *p, size_t n, int cte, mv_buf *out, int *bad)
{
    int cut = 0; /* SIZE_MAX: nothing is cut */
    if (cte == MV_RM_CTE_BASE64)
        mv_rm_b64_decode(p, n, SIZE_MAX, MV_RM_B64_IGNORE_PAD, out, bad, &cut);
    else if (cte == MV_RM_CTE_QP)
        mv_rm_qp_decode(p, n, SIZE_MAX, out, bad, &cut);
    else
        mv_buf_append(out, p, n);
}

/* ---- multipart splitting ----------------------------------------------- */

/* A multipart body iterator: parts come out as [s, e). */
typedef struct mpit {
    const uint8_t *p;
    const mv_rm_ctype *ct;
    size_t body, end, next;
    int close;
    int bad; /* no delimiter at all, or no close delimiter */
} mpit;

static void mp_begin(mpit *it, const uint8_t *p, const mv_rm_ctype *ct, size_t body, size_t end)
{
    it->p = p;
    it->ct = ct;
    it->body = body;
    it->end = end;
    it->bad = 0;
    size_t at = mv_rm_find_delim(p, body, body, end, ct, &it->next, &it->close);
    if (at == end) {
        it->bad = 1;
        it->close = 1;
    }
}

static int mp_next(mpit *it, size_t *s, size_t *e)
{
    if (it->close)
        return 0;
    size_t start = it->next, nnext = 0;
    int nclose = 0;
    size_t nat = mv_rm_find_delim(it->p, it->body, start, it->end, it->ct, &nnext, &nclose);
    *s = start;
    if (nat == it->end) {
        *e = it->end;
        it->bad = 1;
        it->close = 1;
        return 1;
    }
    *e = mv_rm_content_end(it->p, start, nat);
    it->next = nnext;
    it->close = nclose;
    return 1;
}

/* ---- the keyring --------------------------------------------------------- */

/* One key (primary or subkey) of an entry, by every identifier librnp may
 * ask for. */
typedef struct keyref {
    char keyid[17];
    char fpr[65];
    char grip[41];
    uint8_t keyid_bin[8];
    int secret; /* secret material present (not a stub) */
    int enc;    /* may encrypt */
    int alg;    /* OpenPGP public-key algorithm number, 0 unknown */
} keyref;

typedef struct entry {
    uint32_t id; /* keyring number; 0 for public-only entries */
    uint8_t *sec;
    size_t sec_len;
    uint8_t *pub;
    size_t pub_len;
    keyref *ids;
    size_t n_ids;
} entry;

struct mv_pgp_keyring {
    pthread_rwlock_t *lock; /* a pointer, so const keyrings can still be locked */
    entry *ent;
    size_t n, cap;
    size_t n_escrow;
};

static void entry_clear(entry *e)
{
    if (e->sec)
        OPENSSL_cleanse(e->sec, e->sec_len);
    free(e->sec);
    free(e->pub);
    free(e->ids);
    memset(e, 0, sizeof *e);
}

mv_pgp_keyring *mv_pgp_keyring_new(mv_err *err)
{
    mv_pgp_keyring *kr = mv_xcalloc(1, sizeof *kr);
    kr->lock = mv_xmalloc(sizeof *kr->lock);
    if (pthread_rwlock_init(kr->lock, NULL) != 0) {
        free(kr->lock);
        free(kr);
        mv_err_set(err, MV_EINTERNAL, "pgp keyring: cannot create its lock");
        return NULL;
    }
    return kr;
}

void mv_pgp_keyring_free(mv_pgp_keyring *kr)
{
    if (!kr)
        return;
    for (size_t i = 0; i < kr->n; i++)
        entry_clear(&kr->ent[i]);
    free(kr->ent);
    pthread_rwlock_destroy(kr->lock);
    free(kr->lock);
    free(kr);
}

size_t mv_pgp_keyring_count(const mv_pgp_keyring *kr)
{
    if (!kr)
        return 0;
    pthread_rwlock_rdlock(kr->lock);
    size_t n = kr->n_escrow;
    pthread_rwlock_unlock(kr->lock);
    return n;
}

/* ---- librnp helpers ------------------------------------------------------ */

static rnp_ffi_t ffi_new(void)
{
    rnp_ffi_t ffi = NULL;
    if (rnp_ffi_create(&ffi, RNP_KEYSTORE_GPG, RNP_KEYSTORE_GPG) != RNP_SUCCESS)
        return NULL;
    return ffi;
}

/* import_blob - keys from p[0..n) into ffi (public and secret). */
static rnp_result_t import_blob(rnp_ffi_t ffi, const uint8_t *p, size_t n)
{
    rnp_input_t in = NULL;
    rnp_result_t rc = rnp_input_from_memory(&in, p, n, false);
    if (rc != RNP_SUCCESS)
        return rc;
    rc = rnp_import_keys(ffi, in, RNP_LOAD_SAVE_PUBLIC_KEYS | RNP_LOAD_SAVE_SECRET_KEYS, NULL);
    rnp_input_destroy(in);
    return rc;
}

static char *rnp_str_dup(char *s)
{
    char *d = mv_xstrdup(s ? s : "");
    rnp_buffer_destroy(s);
    return d;
}

static void upper(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 32);
}

static int alg_number(const char *alg)
{
    if (!alg)
        return 0;
    if (strcmp(alg, "RSA") == 0)
        return 1;
    if (strcmp(alg, "ELGAMAL") == 0)
        return 16;
    if (strcmp(alg, "DSA") == 0)
        return 17;
    if (strcmp(alg, "ECDH") == 0)
        return 18;
    if (strcmp(alg, "ECDSA") == 0)
        return 19;
    if (strcmp(alg, "EDDSA") == 0)
        return 22;
    return 0;
}

/* curve_name - librnp's curve names as we print them. */
static const char *curve_name(const char *c)
{
    static const struct {
        const char *rnp, *ours;
    } map[] = {{"Curve25519", "cv25519"}, {"Ed25519", "ed25519"},  {"NIST P-256", "p256"},
               {"NIST P-384", "p384"},    {"NIST P-521", "p521"},  {"secp256k1", "secp256k1"},
               {"brainpoolP256r1", "brainpoolp256r1"}, {"brainpoolP384r1", "brainpoolp384r1"},
               {"brainpoolP512r1", "brainpoolp512r1"}, {"SM2 P-256", "sm2"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (c && strcmp(c, map[i].rnp) == 0)
            return map[i].ours;
    return "unknown";
}

/* key_alg_name - "rsa" / "rsa3072" (with_bits), "ecdh-cv25519", "eddsa-ed25519" ... */
static char *key_alg_name(rnp_key_handle_t key, int with_bits)
{
    char *alg = NULL;
    if (rnp_key_get_alg(key, &alg) != RNP_SUCCESS || !alg)
        return mv_xstrdup("unknown");
    char low[32];
    size_t i = 0;
    for (; alg[i] && i + 1 < sizeof low; i++)
        low[i] = (char)mv_rm_lc((uint8_t)alg[i]);
    low[i] = '\0';
    char *out;
    int n = alg_number(alg);
    if (n == 18 || n == 19 || n == 22 || strcmp(alg, "SM2") == 0) {
        char *curve = NULL;
        if (rnp_key_get_curve(key, &curve) == RNP_SUCCESS) {
            out = mv_xasprintf("%s-%s", low, curve_name(curve));
            rnp_buffer_destroy(curve);
        } else {
            out = mv_xasprintf("%s-unknown", low);
        }
    } else {
        uint32_t bits = 0;
        if (with_bits && rnp_key_get_bits(key, &bits) == RNP_SUCCESS && bits)
            out = mv_xasprintf("%s%u", low, bits);
        else
            out = mv_xstrdup(low);
    }
    rnp_buffer_destroy(alg);
    return out;
}

/* A loaded transferable key: its primary handle and subkey handles. */
typedef struct loaded {
    rnp_ffi_t ffi;
    rnp_key_handle_t primary;
    rnp_key_handle_t *subs;
    size_t n_subs;
} loaded;

static void loaded_free(loaded *l)
{
    for (size_t i = 0; i < l->n_subs; i++)
        rnp_key_handle_destroy(l->subs[i]);
    free(l->subs);
    if (l->primary)
        rnp_key_handle_destroy(l->primary);
    if (l->ffi)
        rnp_ffi_destroy(l->ffi);
    memset(l, 0, sizeof *l);
}

/* load_keys - import key[0..n) into a new ffi. */
static mv_status load_keys(const uint8_t *key, size_t n, loaded *l, mv_err *err)
{
    memset(l, 0, sizeof *l);
    if (!key || n == 0 || n > MV_PGP_MAX_KEY_BYTES)
        return mv_err_set(err, MV_EUSAGE, "OpenPGP key material: %zu bytes (1 to %zu allowed)",
                          n, MV_PGP_MAX_KEY_BYTES);
    l->ffi = ffi_new();
    if (!l->ffi)
        return mv_err_set(err, MV_ECRYPTO, "librnp: cannot create a context");
    rnp_result_t rc = import_blob(l->ffi, key, n);
    if (rc != RNP_SUCCESS) {
        loaded_free(l);
        return mv_err_set(err, MV_EMALFORMED, "not an OpenPGP key: %s", rnp_result_to_string(rc));
    }
    return MV_OK;
}

/* primaries - the fingerprints of the primary keys in ffi (caller frees
 * each and the array). */
static char **primaries(rnp_ffi_t ffi, size_t *count)
{
    rnp_identifier_iterator_t it = NULL;
    char **out = NULL;
    size_t n = 0;
    *count = 0;
    if (rnp_identifier_iterator_create(ffi, &it, "fingerprint") != RNP_SUCCESS)
        return NULL;
    const char *fp = NULL;
    while (n < MV_PGP_MAX_KEYS && rnp_identifier_iterator_next(it, &fp) == RNP_SUCCESS && fp) {
        rnp_key_handle_t k = NULL;
        bool prim = false;
        if (rnp_locate_key(ffi, "fingerprint", fp, &k) == RNP_SUCCESS && k &&
            rnp_key_is_primary(k, &prim) == RNP_SUCCESS && prim) {
            out = mv_xrealloc(out, (n + 1) * sizeof *out);
            out[n++] = mv_xstrdup(fp);
        }
        if (k)
            rnp_key_handle_destroy(k);
    }
    rnp_identifier_iterator_destroy(it);
    *count = n;
    return out;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* select_primary - handles for the primary key with fingerprint fp and its subkeys. */
static mv_status select_primary(loaded *l, const char *fp, mv_err *err)
{
    if (rnp_locate_key(l->ffi, "fingerprint", fp, &l->primary) != RNP_SUCCESS || !l->primary)
        return mv_err_set(err, MV_ECRYPTO, "librnp: key %s vanished", fp);
    size_t ns = 0;
    if (rnp_key_get_subkey_count(l->primary, &ns) != RNP_SUCCESS)
        ns = 0;
    if (ns > MV_PGP_MAX_KEYS)
        return mv_err_set(err, MV_EMALFORMED, "OpenPGP key with %zu subkeys", ns);
    l->subs = mv_xcalloc(ns ? ns : 1, sizeof *l->subs);
    for (size_t i = 0; i < ns; i++) {
        rnp_key_handle_t sk = NULL;
        if (rnp_key_get_subkey_at(l->primary, i, &sk) == RNP_SUCCESS && sk)
            l->subs[l->n_subs++] = sk;
    }
    return MV_OK;
}

/* load_single - load and select the only primary key. */
static mv_status load_single(const uint8_t *key, size_t n, loaded *l, mv_err *err)
{
    mv_status st = load_keys(key, n, l, err);
    if (st != MV_OK)
        return st;
    size_t np = 0;
    char **fps = primaries(l->ffi, &np);
    if (np != 1) {
        free_strv(fps, np);
        loaded_free(l);
        return mv_err_set(err, MV_EMALFORMED,
                          np == 0 ? "no OpenPGP primary key in the key material"
                                  : "the key material holds %zu primary keys: add them one at a "
                                    "time",
                          np);
    }
    st = select_primary(l, fps[0], err);
    free_strv(fps, np);
    if (st != MV_OK)
        loaded_free(l);
    return st;
}

/* has_secret_material - a secret key that is not a gpg stub. */
static int has_secret_material(rnp_key_handle_t k)
{
    bool have = false;
    if (rnp_key_have_secret(k, &have) != RNP_SUCCESS || !have)
        return 0;
    char *type = NULL;
    if (rnp_key_get_protection_type(k, &type) != RNP_SUCCESS)
        return 0;
    int stub = type && (strcmp(type, "GPG-None") == 0 || strcmp(type, "GPG-Smartcard") == 0 ||
                        strcmp(type, "Unknown") == 0);
    rnp_buffer_destroy(type);
    return !stub;
}

/* unlock_all - remove the passphrase protection of every secret key;
 * returns how many keys hold secret material. */
static mv_status unlock_all(loaded *l, const char *pass, size_t *n_secret, mv_err *err)
{
    *n_secret = 0;
    for (size_t i = 0; i <= l->n_subs; i++) {
        rnp_key_handle_t k = i == 0 ? l->primary : l->subs[i - 1];
        if (!has_secret_material(k))
            continue;
        (*n_secret)++;
        bool prot = false;
        if (rnp_key_is_protected(k, &prot) != RNP_SUCCESS)
            return mv_err_set(err, MV_ECRYPTO, "librnp: cannot read key protection");
        if (!prot)
            continue;
        char *fp = NULL;
        if (rnp_key_get_fprint(k, &fp) != RNP_SUCCESS)
            fp = NULL;
        if (!pass) {
            mv_err_set(err, MV_ENOKEY, "key %s is passphrase-protected: a passphrase is needed",
                       fp ? fp : "?");
            rnp_buffer_destroy(fp);
            return MV_ENOKEY;
        }
        rnp_result_t rc = rnp_key_unprotect(k, pass);
        if (rc != RNP_SUCCESS) {
            if (rc == RNP_ERROR_BAD_PASSWORD)
                mv_err_set(err, MV_ENOKEY, "wrong passphrase for key %s", fp ? fp : "?");
            else
                mv_err_set(err, MV_ECRYPTO, "cannot unlock key %s: %s", fp ? fp : "?",
                           rnp_result_to_string(rc));
            rnp_buffer_destroy(fp);
            return err ? err->code : (rc == RNP_ERROR_BAD_PASSWORD ? MV_ENOKEY : MV_ECRYPTO);
        }
        rnp_buffer_destroy(fp);
    }
    return MV_OK;
}

/* export_key - the primary key and subkeys (flags: public or secret) as
 * binary packets, malloc'd. */
static mv_status export_key(rnp_key_handle_t primary, uint32_t flags, uint8_t **out, size_t *len,
                            mv_err *err)
{
    rnp_output_t o = NULL;
    if (rnp_output_to_memory(&o, 0) != RNP_SUCCESS)
        return mv_err_set(err, MV_ECRYPTO, "librnp: no memory output");
    rnp_result_t rc = rnp_key_export(primary, o, flags | RNP_KEY_EXPORT_SUBKEYS);
    uint8_t *buf = NULL;
    size_t n = 0;
    if (rc == RNP_SUCCESS)
        rc = rnp_output_memory_get_buf(o, &buf, &n, false);
    if (rc != RNP_SUCCESS || n == 0) {
        rnp_output_destroy(o);
        return mv_err_set(err, MV_ECRYPTO, "librnp: key export failed: %s",
                          rnp_result_to_string(rc));
    }
    *out = mv_xmalloc(n);
    memcpy(*out, buf, n);
    *len = n;
    OPENSSL_cleanse(buf, n); /* librnp's copy of unprotected secrets */
    rnp_output_destroy(o);
    return MV_OK;
}

static void fill_kid(rnp_key_handle_t k, keyref *d)
{
    memset(d, 0, sizeof *d);
    char *s = NULL;
    if (rnp_key_get_keyid(k, &s) == RNP_SUCCESS && s) {
        snprintf(d->keyid, sizeof d->keyid, "%s", s);
        upper(d->keyid);
        if (mv_unhex(d->keyid, d->keyid_bin, 8) != 0)
            memset(d->keyid_bin, 0, sizeof d->keyid_bin);
        rnp_buffer_destroy(s);
    }
    s = NULL;
    if (rnp_key_get_fprint(k, &s) == RNP_SUCCESS && s) {
        snprintf(d->fpr, sizeof d->fpr, "%s", s);
        upper(d->fpr);
        rnp_buffer_destroy(s);
    }
    s = NULL;
    if (rnp_key_get_grip(k, &s) == RNP_SUCCESS && s) {
        snprintf(d->grip, sizeof d->grip, "%s", s);
        upper(d->grip);
        rnp_buffer_destroy(s);
    }
    s = NULL;
    d->secret = has_secret_material(k);
    bool can = false;
    d->enc = rnp_key_allows_usage(k, "encrypt", &can) == RNP_SUCCESS && can;
    if (rnp_key_get_alg(k, &s) == RNP_SUCCESS && s) {
        d->alg = alg_number(s);
        rnp_buffer_destroy(s);
    }
}

/* build_entry - stored form of a loaded key: ids, public packets and
 * (with_secret) the unprotected secret packets. */
static mv_status build_entry(loaded *l, int with_secret, entry *e, mv_err *err)
{
    memset(e, 0, sizeof *e);
    e->ids = mv_xcalloc(l->n_subs + 1, sizeof *e->ids);
    for (size_t i = 0; i <= l->n_subs; i++)
        fill_kid(i == 0 ? l->primary : l->subs[i - 1], &e->ids[e->n_ids++]);
    mv_status st = export_key(l->primary, RNP_KEY_EXPORT_PUBLIC, &e->pub, &e->pub_len, err);
    if (st == MV_OK && with_secret)
        st = export_key(l->primary, RNP_KEY_EXPORT_SECRET, &e->sec, &e->sec_len, err);
    if (st != MV_OK)
        entry_clear(e);
    return st;
}

static const entry *find_fpr(const mv_pgp_keyring *kr, const char *fpr, int escrow)
{
    for (size_t i = 0; i < kr->n; i++)
        if ((kr->ent[i].id != 0) == escrow && kr->ent[i].n_ids > 0 &&
            strcmp(kr->ent[i].ids[0].fpr, fpr) == 0)
            return &kr->ent[i];
    return NULL;
}

static void push_entry(mv_pgp_keyring *kr, entry *e)
{
    if (kr->n == kr->cap) {
        kr->cap = kr->cap ? kr->cap * 2 : 8;
        kr->ent = mv_xrealloc(kr->ent, kr->cap * sizeof *kr->ent);
    }
    kr->ent[kr->n++] = *e;
    if (e->id)
        kr->n_escrow++;
}

/* unlocked_key - load the single key in key[0..n) and unlock it. */
static mv_status unlocked_key(const uint8_t *key, size_t n, const char *pass, loaded *l,
                              mv_err *err)
{
    mv_status st = load_single(key, n, l, err);
    if (st != MV_OK)
        return st;
    size_t n_secret = 0;
    st = unlock_all(l, pass, &n_secret, err);
    if (st == MV_OK && n_secret == 0)
        st = mv_err_set(err, MV_EMALFORMED, "no secret key material (a public key, or stubs only)");
    if (st != MV_OK)
        loaded_free(l);
    return st;
}

mv_status mv_pgp_keyring_add(mv_pgp_keyring *kr, uint32_t id, const uint8_t *key, size_t n,
                             const char *passphrase, mv_err *err)
{
    if (!kr || id == 0)
        return mv_err_set(err, MV_EUSAGE, "pgp keyring add: no keyring or keyring number 0");
    loaded l;
    mv_status st = need_rnp(err);
    if (!st)
        st = unlocked_key(key, n, passphrase, &l, err);
    if (st != MV_OK)
        return st;
    entry e;
    st = build_entry(&l, 1, &e, err);
    loaded_free(&l);
    if (st != MV_OK)
        return st;
    pthread_rwlock_wrlock(kr->lock);
    if (kr->n >= MV_PGP_MAX_KEYS) {
        st = mv_err_set(err, MV_EUSAGE, "pgp keyring full (%d keys)", MV_PGP_MAX_KEYS);
    } else if (find_fpr(kr, e.ids[0].fpr, 1)) {
        st = mv_err_set(err, MV_EEXIST, "key %s is already in the keyring", e.ids[0].fpr);
    } else {
        for (size_t i = 0; i < kr->n; i++)
            if (kr->ent[i].id == id)
                st = mv_err_set(err, MV_EEXIST, "keyring number %u is already used", id);
    }
    if (st == MV_OK) {
        e.id = id;
        push_entry(kr, &e);
    }
    pthread_rwlock_unlock(kr->lock);
    if (st != MV_OK)
        entry_clear(&e);
    return st;
}

mv_status mv_pgp_keyring_add_public(mv_pgp_keyring *kr, const uint8_t *key, size_t n, mv_err *err)
{
    if (!kr)
        return mv_err_set(err, MV_EUSAGE, "pgp keyring add: no keyring");
    loaded l;
    mv_status st = need_rnp(err);
    if (!st)
        st = load_keys(key, n, &l, err);
    if (st != MV_OK)
        return st;
    size_t np = 0;
    char **fps = primaries(l.ffi, &np);
    if (np == 0)
        st = mv_err_set(err, MV_EMALFORMED, "no OpenPGP primary key in the key material");
    for (size_t i = 0; i < np && st == MV_OK; i++) {
        loaded one = {l.ffi, NULL, NULL, 0};
        entry e;
        st = select_primary(&one, fps[i], err);
        if (st == MV_OK)
            st = build_entry(&one, 0, &e, err);
        one.ffi = NULL; /* owned by l */
        loaded_free(&one);
        if (st != MV_OK)
            break;
        pthread_rwlock_wrlock(kr->lock);
        if (kr->n >= MV_PGP_MAX_KEYS)
            st = mv_err_set(err, MV_EUSAGE, "pgp keyring full (%d keys)", MV_PGP_MAX_KEYS);
        else if (!find_fpr(kr, e.ids[0].fpr, 0))
            push_entry(kr, &e), e.ids = NULL;
        pthread_rwlock_unlock(kr->lock);
        if (e.ids)
            entry_clear(&e);
    }
    free_strv(fps, np);
    loaded_free(&l);
    return st;
}

mv_status mv_pgp_export_secret(const uint8_t *key, size_t n, const char *passphrase, mv_buf *out,
                               mv_err *err)
{
    if (!out)
        return mv_err_set(err, MV_EUSAGE, "pgp export: no output buffer");
    loaded l;
    mv_status st = need_rnp(err);
    if (!st)
        st = unlocked_key(key, n, passphrase, &l, err);
    if (st != MV_OK)
        return st;
    uint8_t *sec = NULL;
    size_t len = 0;
    st = export_key(l.primary, RNP_KEY_EXPORT_SECRET, &sec, &len, err);
    loaded_free(&l);
    if (st != MV_OK)
        return st;
    mv_buf_append(out, sec, len);
    OPENSSL_cleanse(sec, len);
    free(sec);
    return MV_OK;
}

void mv_pgp_info_clear(mv_pgp_info *i)
{
    if (!i)
        return;
    free(i->fingerprint);
    free_strv(i->uids, i->n_uids);
    free_strv(i->subkeys, i->n_subkeys);
    memset(i, 0, sizeof *i);
}

static char *usage_letters(rnp_key_handle_t k)
{
    static const struct {
        const char *usage;
        char letter;
    } u[] = {{"sign", 's'}, {"certify", 'c'}, {"encrypt", 'e'}, {"authenticate", 'a'}};
    char out[8];
    size_t w = 0;
    for (size_t i = 0; i < 4; i++) {
        bool ok = false;
        if (rnp_key_allows_usage(k, u[i].usage, &ok) == RNP_SUCCESS && ok)
            out[w++] = u[i].letter;
    }
    if (w == 0)
        out[w++] = '-';
    out[w] = '\0';
    return mv_xstrdup(out);
}

mv_status mv_pgp_inspect(const uint8_t *key, size_t n, mv_pgp_info *info, mv_err *err)
{
    if (!info)
        return mv_err_set(err, MV_EUSAGE, "pgp inspect: no output");
    memset(info, 0, sizeof *info);
    loaded l;
    mv_status st = need_rnp(err);
    if (!st)
        st = load_single(key, n, &l, err);
    if (st != MV_OK)
        return st;
    char *s = NULL;
    if (rnp_key_get_fprint(l.primary, &s) == RNP_SUCCESS)
        info->fingerprint = rnp_str_dup(s);
    else
        info->fingerprint = mv_xstrdup("");
    upper(info->fingerprint);
    size_t nu = 0;
    if (rnp_key_get_uid_count(l.primary, &nu) != RNP_SUCCESS)
        nu = 0;
    info->uids = mv_xcalloc(nu ? nu : 1, sizeof *info->uids);
    for (size_t i = 0; i < nu && i < MV_PGP_MAX_KEYS; i++) {
        s = NULL;
        if (rnp_key_get_uid_at(l.primary, i, &s) == RNP_SUCCESS)
            info->uids[info->n_uids++] = rnp_str_dup(s);
    }
    info->subkeys = mv_xcalloc(l.n_subs ? l.n_subs : 1, sizeof *info->subkeys);
    for (size_t i = 0; i < l.n_subs; i++) {
        keyref d;
        fill_kid(l.subs[i], &d);
        char *alg = key_alg_name(l.subs[i], 1);
        char *use = usage_letters(l.subs[i]);
        info->subkeys[info->n_subkeys++] = mv_xasprintf("%s %s %s", d.keyid, alg, use);
        free(alg);
        free(use);
    }
    uint32_t created = 0, exp = 0;
    if (rnp_key_get_creation(l.primary, &created) == RNP_SUCCESS)
        info->created = created;
    if (rnp_key_get_expiration(l.primary, &exp) == RNP_SUCCESS && exp)
        info->expires = (int64_t)created + exp;
    for (size_t i = 0; i <= l.n_subs; i++) {
        rnp_key_handle_t k = i == 0 ? l.primary : l.subs[i - 1];
        if (!has_secret_material(k))
            continue;
        info->secret = 1;
        bool prot = false;
        if (rnp_key_is_protected(k, &prot) == RNP_SUCCESS && prot)
            info->protected_ = 1;
    }
    loaded_free(&l);
    return MV_OK;
}

/* ---- one decryption / verification in a fresh librnp context ------------ */

/* The key provider's view of one attempt. */
typedef struct actx {
    const mv_pgp_keyring *kr;
    const uint8_t *excluded; /* per entry: its secret must not be offered */
    uint8_t *imported;       /* per entry: 1 public imported, 2 secret imported */
    int last_secret;         /* entry whose secret was imported last, -1 none */
} actx;

static int kid_match(const keyref *k, const char *type, const char *ident)
{
    if (strcmp(type, "keyid") == 0)
        return strcasecmp(k->keyid, ident) == 0;
    if (strcmp(type, "fingerprint") == 0)
        return strcasecmp(k->fpr, ident) == 0;
    if (strcmp(type, "grip") == 0)
        return strcasecmp(k->grip, ident) == 0;
    return 0; /* "userid": never, a user id proves nothing */
}

/* key_provider - librnp asks for a key it does not hold: import exactly the
 * matching stored key.  For a secret key only one entry is offered per
 * attempt, so a key-id collision is resolved by retrying without it. */
static void key_provider(rnp_ffi_t ffi, void *ctx, const char *type, const char *ident,
                         bool secret)
{
    actx *a = ctx;
    if (!type || !ident)
        return;
    for (size_t i = 0; i < a->kr->n; i++) {
        const entry *e = &a->kr->ent[i];
        if (secret && (!e->sec || a->excluded[i] || (a->imported[i] & 2)))
            continue;
        if (!secret && (a->imported[i] & 1))
            continue;
        int hit = 0;
        for (size_t k = 0; k < e->n_ids && !hit; k++)
            hit = kid_match(&e->ids[k], type, ident) && (!secret || e->ids[k].secret);
        if (!hit)
            continue;
        if (secret) {
            if (import_blob(ffi, e->sec, e->sec_len) == RNP_SUCCESS) {
                a->imported[i] |= 3;
                a->last_secret = (int)i;
            }
            return;
        }
        if (import_blob(ffi, e->pub, e->pub_len) == RNP_SUCCESS)
            a->imported[i] |= 1;
    }
}

/* A bounded memory sink for librnp's output. */
typedef struct sink {
    mv_buf b;
    size_t max;
    int over;
} sink;

static bool sink_write(void *ctx, const void *buf, size_t len)
{
    sink *s = ctx;
    if (len > s->max - s->b.len) {
        s->over = 1;
        return false; /* librnp stops the operation */
    }
    mv_buf_append(&s->b, buf, len);
    return true;
}

static void sink_close(void *ctx, bool discard)
{
    (void)ctx;
    (void)discard;
}

/* One signature's verdict, owned strings. */
typedef struct sigv {
    mv_sig_status st;
    char *signer;
    int64_t time;
    char *detail;
} sigv;

static void sigv_clear(sigv *s)
{
    free(s->signer);
    free(s->detail);
    memset(s, 0, sizeof *s);
    s->time = INT64_MIN;
}

/* sig_record - keep v in r: the first one, unless a later one is INVALID
 * (tampering is what an examiner must see).  Takes v's strings. */
static void sig_record(mv_decrypt_result *r, sigv *v)
{
    if (v->st == MV_SIG_NONE) {
        sigv_clear(v);
        return;
    }
    if (r->sig == MV_SIG_NONE || (v->st == MV_SIG_INVALID && r->sig != MV_SIG_INVALID)) {
        free(r->signer);
        free(r->sig_detail);
        r->sig = v->st;
        r->signer = v->signer;
        r->signing_time = v->time;
        r->sig_detail = v->detail;
        v->signer = v->detail = NULL;
    }
    sigv_clear(v);
}

/* signer_of - "fpr=<primary fingerprint>;uid=<primary user id>". */
static char *signer_of(rnp_ffi_t ffi, rnp_key_handle_t key)
{
    char *fp = NULL, *uid = NULL;
    bool prim = false;
    rnp_result_t rc = rnp_key_is_primary(key, &prim) == RNP_SUCCESS && prim
                          ? rnp_key_get_fprint(key, &fp)
                          : rnp_key_get_primary_fprint(key, &fp);
    if (rc != RNP_SUCCESS || !fp)
        return mv_xstrdup("fpr=?");
    rnp_key_handle_t pk = NULL;
    if (rnp_locate_key(ffi, "fingerprint", fp, &pk) == RNP_SUCCESS && pk) {
        if (rnp_key_get_primary_uid(pk, &uid) != RNP_SUCCESS) {
            uid = NULL;
            if (rnp_key_get_uid_at(pk, 0, &uid) != RNP_SUCCESS)
                uid = NULL;
        }
        rnp_key_handle_destroy(pk);
    }
    upper(fp);
    char *out = uid ? mv_xasprintf("fpr=%s;uid=%s", fp, uid) : mv_xasprintf("fpr=%s", fp);
    rnp_buffer_destroy(fp);
    rnp_buffer_destroy(uid);
    return out;
}

/* collect_sigs - the verdict over every signature of op (see sig_record). */
static void collect_sigs(rnp_ffi_t ffi, rnp_op_verify_t op, sigv *out)
{
    size_t n = 0;
    sigv_clear(out);
    if (rnp_op_verify_get_signature_count(op, &n) != RNP_SUCCESS)
        return;
    mv_decrypt_result tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.signing_time = INT64_MIN;
    for (size_t i = 0; i < n && i < MV_PGP_MAX_RECIPIENTS; i++) {
        rnp_op_verify_signature_t s = NULL;
        if (rnp_op_verify_get_signature_at(op, i, &s) != RNP_SUCCESS)
            continue;
        sigv v;
        memset(&v, 0, sizeof v);
        v.time = INT64_MIN;
        rnp_result_t st = rnp_op_verify_signature_get_status(s);
        switch (st) {
        case RNP_SUCCESS:
            v.st = MV_SIG_VALID;
            break;
        case RNP_ERROR_SIGNATURE_EXPIRED:
            v.st = MV_SIG_VALID;
            v.detail = mv_xstrdup("signature expired");
            break;
        case RNP_ERROR_KEY_NOT_FOUND:
            v.st = MV_SIG_UNKNOWN_SIGNER;
            break;
        case RNP_ERROR_SIGNATURE_INVALID:
            v.st = MV_SIG_INVALID;
            v.detail = mv_xstrdup("signature does not verify");
            break;
        default:
            v.st = MV_SIG_ERROR;
            v.detail = mv_xasprintf("cannot check: %s", rnp_result_to_string(st));
            break;
        }
        uint32_t created = 0, expires = 0;
        if (rnp_op_verify_signature_get_times(s, &created, &expires) == RNP_SUCCESS && created)
            v.time = created;
        rnp_key_handle_t key = NULL;
        if (rnp_op_verify_signature_get_key(s, &key) == RNP_SUCCESS && key) {
            v.signer = signer_of(ffi, key);
            rnp_key_handle_destroy(key);
        } else {
            /* librnp 0.16 frees the handle on its own error path but leaves
             * the pointer set: out-pointers are trusted only on success */
            rnp_signature_handle_t h = NULL;
            if (rnp_op_verify_signature_get_handle(s, &h) == RNP_SUCCESS && h) {
                char *kid = NULL;
                if (rnp_signature_get_keyid(h, &kid) == RNP_SUCCESS && kid) {
                    upper(kid);
                    v.signer = mv_xasprintf("keyid=%s", kid);
                    rnp_buffer_destroy(kid);
                }
                rnp_signature_handle_destroy(h);
            }
        }
        sig_record(&tmp, &v);
    }
    out->st = tmp.sig;
    out->signer = tmp.signer;
    out->time = tmp.signing_time;
    out->detail = tmp.sig_detail;
}

/* What one decryption attempt found. */
typedef struct outcome {
    rnp_result_t rc;
    int ok;       /* decrypted, integrity verified */
    int over;     /* output over the limit */
    int noint;    /* decrypted, but without integrity protection */
    int not_enc;  /* not encrypted at all (signed or literal data only) */
    int n_symenc; /* passphrase recipients */
    sink out;
    char *mode, *cipher;
    char **rcpt; /* "pgp=..." */
    size_t n_rcpt;
    int used_entry; /* kr entry that opened it, -1 */
    char *key_alg;
    sigv sig;
} outcome;

static void outcome_clear(outcome *o)
{
    mv_buf_wipe(&o->out.b);
    free(o->mode);
    free(o->cipher);
    free_strv(o->rcpt, o->n_rcpt);
    free(o->key_alg);
    sigv_clear(&o->sig);
    memset(o, 0, sizeof *o);
    o->used_entry = -1;
    o->sig.time = INT64_MIN;
}

static int entry_of_keyid(const mv_pgp_keyring *kr, const uint8_t *imported, const char *keyid)
{
    for (size_t i = 0; i < kr->n; i++)
        if (imported[i] & 2)
            for (size_t k = 0; k < kr->ent[i].n_ids; k++)
                if (strcasecmp(kr->ent[i].ids[k].keyid, keyid) == 0)
                    return (int)i;
    return -1;
}

/* attempt - decrypt (and verify) msg[0..n) once, in a fresh context whose
 * keys come only from the provider. */
static void attempt(const mv_pgp_keyring *kr, const uint8_t *msg, size_t n, const uint8_t *excluded,
                    uint8_t *imported, size_t max_out, outcome *o)
{
    outcome_clear(o);
    o->rc = RNP_ERROR_GENERIC;
    o->out.max = max_out;
    memset(imported, 0, kr->n ? kr->n : 1);
    actx a = {kr, excluded, imported, -1};
    rnp_ffi_t ffi = ffi_new();
    rnp_input_t in = NULL;
    rnp_output_t out = NULL;
    rnp_op_verify_t op = NULL;
    if (!ffi)
        return;
    if (rnp_ffi_set_key_provider(ffi, key_provider, &a) != RNP_SUCCESS ||
        rnp_input_from_memory(&in, msg, n, false) != RNP_SUCCESS ||
        rnp_output_to_callback(&out, sink_write, sink_close, &o->out) != RNP_SUCCESS ||
        rnp_op_verify_create(&op, ffi, in, out) != RNP_SUCCESS ||
        rnp_op_verify_set_flags(op, RNP_VERIFY_IGNORE_SIGS_ON_DECRYPT) != RNP_SUCCESS)
        goto done;
    o->rc = rnp_op_verify_execute(op);
    o->over = o->out.over;
    size_t nr = 0;
    if (rnp_op_verify_get_recipient_count(op, &nr) == RNP_SUCCESS) {
        o->rcpt = mv_xcalloc(nr ? nr : 1, sizeof *o->rcpt);
        for (size_t i = 0; i < nr && i < MV_PGP_MAX_RECIPIENTS; i++) {
            rnp_recipient_handle_t rh = NULL;
            char *kid = NULL;
            if (rnp_op_verify_get_recipient_at(op, i, &rh) != RNP_SUCCESS || !rh ||
                rnp_recipient_get_keyid(rh, &kid) != RNP_SUCCESS || !kid)
                continue; /* kid is not trusted after a failure */
            upper(kid);
            o->rcpt[o->n_rcpt++] = mv_xasprintf("pgp=%s", kid);
            rnp_buffer_destroy(kid);
        }
    }
    size_t ns = 0;
    if (rnp_op_verify_get_symenc_count(op, &ns) == RNP_SUCCESS)
        o->n_symenc = (int)(ns > 1000 ? 1000 : ns);
    char *mode = NULL, *cipher = NULL;
    bool valid = false;
    if (rnp_op_verify_get_protection_info(op, &mode, &cipher, &valid) == RNP_SUCCESS) {
        o->mode = rnp_str_dup(mode);
        o->cipher = rnp_str_dup(cipher);
    } else {
        o->mode = mv_xstrdup("");
        o->cipher = mv_xstrdup("");
    }
    int protected_mode = strcmp(o->mode, "cfb-mdc") == 0 || strncmp(o->mode, "aead", 4) == 0;
    if (o->rc == RNP_SUCCESS && !o->over) {
        if (strcmp(o->mode, "none") == 0)
            o->not_enc = 1;
        else if (protected_mode && valid)
            o->ok = 1;
        else
            o->noint = 1;
    }
    if (o->ok || o->not_enc)
        collect_sigs(ffi, op, &o->sig);
    if (o->ok) {
        rnp_recipient_handle_t used = NULL;
        char *kid = NULL;
        if (rnp_op_verify_get_used_recipient(op, &used) == RNP_SUCCESS && used &&
            rnp_recipient_get_keyid(used, &kid) == RNP_SUCCESS && kid) {
            o->used_entry = entry_of_keyid(kr, imported, kid);
            rnp_key_handle_t k = NULL;
            if (rnp_locate_key(ffi, "keyid", kid, &k) == RNP_SUCCESS && k) {
                o->key_alg = key_alg_name(k, 0);
                rnp_key_handle_destroy(k);
            }
            rnp_buffer_destroy(kid);
        }
        if (o->used_entry < 0)
            o->used_entry = a.last_secret;
    }
done:
    if (op)
        rnp_op_verify_destroy(op);
    if (out)
        rnp_output_destroy(out);
    if (in)
        rnp_input_destroy(in);
    rnp_ffi_destroy(ffi);
    if (!o->ok && !o->not_enc)
        mv_buf_wipe(&o->out.b); /* unauthenticated plaintext never leaves */
    if (!o->mode)
        o->mode = mv_xstrdup("");
    if (!o->cipher)
        o->cipher = mv_xstrdup("");
}

/* ---- hidden recipients ---------------------------------------------------- */

/* pkt_hdr - the OpenPGP packet header at p[i..n): tag and body range.
 * 0 for anything a session-key packet cannot be (partial or indeterminate
 * length) or that runs past the end. */
static int pkt_hdr(const uint8_t *p, size_t n, size_t i, int *tag, size_t *body, size_t *len)
{
    if (i >= n || !(p[i] & 0x80))
        return 0;
    uint8_t c = p[i];
    if (c & 0x40) {
        *tag = c & 0x3f;
        if (i + 1 >= n)
            return 0;
        uint8_t l0 = p[i + 1];
        if (l0 < 192) {
            *len = l0;
            *body = i + 2;
        } else if (l0 < 224) {
            if (i + 2 >= n)
                return 0;
            *len = ((size_t)(l0 - 192) << 8) + p[i + 2] + 192;
            *body = i + 3;
        } else if (l0 == 255) {
            if (n - i < 6)
                return 0;
            *len = mv_be32_get(p + i + 2);
            *body = i + 6;
        } else {
            return 0;
        }
    } else {
        *tag = (c >> 2) & 0xf;
        int lt = c & 3;
        if (lt == 3)
            return 0;
        size_t ln = (size_t)1 << lt;
        if (n - i < 1 + ln)
            return 0;
        size_t v = 0;
        for (size_t k = 0; k < ln; k++)
            v = v << 8 | p[i + 1 + k];
        *len = v;
        *body = i + 1 + ln;
    }
    return *body <= n && *len <= n - *body;
}

/* hidden_pkesks - offsets of the key-id fields of the v3 PKESKs with key
 * id 0 at the start of the binary message p[0..n), and their algorithms. */
static size_t hidden_pkesks(const uint8_t *p, size_t n, size_t *off, int *alg, size_t max)
{
    size_t i = 0, k = 0;
    int tag;
    size_t body, len;
    static const uint8_t zero[8];
    while (k < max && pkt_hdr(p, n, i, &tag, &body, &len)) {
        if (tag == 1) {
            if (len >= 10 && p[body] == 3 && memcmp(p + body + 1, zero, 8) == 0) {
                off[k] = body + 1;
                alg[k] = p[body + 9];
                k++;
            }
        } else if (tag != 3 && tag != 10) {
            break; /* session-key packets (and markers) come first */
        }
        i = body + len;
    }
    return k;
}

static int same_family(int pkesk_alg, int key_alg)
{
    if (pkesk_alg == 1 || pkesk_alg == 2)
        return key_alg == 1;
    if (pkesk_alg == 16 || pkesk_alg == 20)
        return key_alg == 16;
    return pkesk_alg == key_alg;
}

/* dearmor - binary packets of msg (armored or not), malloc'd. */
static uint8_t *dearmor(const uint8_t *msg, size_t n, size_t *len)
{
    size_t i = 0;
    while (i < n && (msg[i] == ' ' || msg[i] == '\t' || msg[i] == '\r' || msg[i] == '\n'))
        i++;
    if (n - i < 10 || memcmp(msg + i, "-----BEGIN", 10) != 0) {
        uint8_t *c = mv_xmalloc(n ? n : 1);
        memcpy(c, msg, n);
        *len = n;
        return c;
    }
    rnp_input_t in = NULL;
    rnp_output_t out = NULL;
    uint8_t *res = NULL;
    if (rnp_input_from_memory(&in, msg, n, false) == RNP_SUCCESS &&
        rnp_output_to_memory(&out, n) == RNP_SUCCESS && rnp_dearmor(in, out) == RNP_SUCCESS) {
        uint8_t *buf = NULL;
        size_t bl = 0;
        if (rnp_output_memory_get_buf(out, &buf, &bl, false) == RNP_SUCCESS && bl) {
            res = mv_xmalloc(bl);
            memcpy(res, buf, bl);
            *len = bl;
        }
    }
    if (out)
        rnp_output_destroy(out);
    if (in)
        rnp_input_destroy(in);
    return res;
}

/* ---- the message walk ------------------------------------------------------ */

typedef struct job {
    const mv_pgp_keyring *kr;
    mv_decrypt_limits lim;
    mv_decrypt_result *r;
    int detect_only, found;
    int all_ok;
    unsigned blocks, parts;
    size_t budget; /* decrypted bytes still allowed */
    uint8_t *excluded, *imported;
} job;

static void fail(job *j, uint32_t defect, const char *fmt, ...) MV_PRINTF(3, 4);
static void fail(job *j, uint32_t defect, const char *fmt, ...)
{
    j->all_ok = 0;
    j->r->defects |= defect;
    if (j->r->failure)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    j->r->failure = mv_xstrdup(msg);
}

static void add_recipients(job *j, char **rc, size_t n)
{
    mv_decrypt_result *r = j->r;
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t k = 0; k < r->n_recipients && !dup; k++)
            dup = strcmp(r->recipients[k], rc[i]) == 0;
        if (dup)
            continue;
        if (r->n_recipients >= MV_PGP_MAX_RECIPIENTS) {
            r->defects |= MV_DDEF_LIMIT;
            return;
        }
        r->recipients = mv_xrealloc(r->recipients, (r->n_recipients + 1) * sizeof *r->recipients);
        r->recipients[r->n_recipients++] = mv_xstrdup(rc[i]);
    }
}

static char *content_alg_name(const char *cipher, const char *mode)
{
    static const struct {
        const char *rnp, *ours;
    } map[] = {{"AES128", "aes-128"},           {"AES192", "aes-192"},
               {"AES256", "aes-256"},           {"CAMELLIA128", "camellia-128"},
               {"CAMELLIA192", "camellia-192"}, {"CAMELLIA256", "camellia-256"},
               {"TRIPLEDES", "3des"},           {"CAST5", "cast5"},
               {"TWOFISH", "twofish"},          {"BLOWFISH", "blowfish"},
               {"IDEA", "idea"},                {"SM4", "sm4"}};
    const char *name = "unknown";
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(cipher, map[i].rnp) == 0)
            name = map[i].ours;
    if (strcmp(mode, "aead-ocb") == 0)
        return mv_xasprintf("%s-ocb", name);
    if (strcmp(mode, "aead-eax") == 0)
        return mv_xasprintf("%s-eax", name);
    return mv_xstrdup(name);
}

enum { BLOCK_FAILED = 0, BLOCK_DECRYPTED, BLOCK_PLAIN };

/* decrypt_block - one OpenPGP message (armored or binary): pick the key,
 * decrypt, verify what is signed inside.  BLOCK_DECRYPTED puts the
 * plaintext in *plain; BLOCK_PLAIN means it was not encrypted (signatures
 * recorded, nothing to replace); BLOCK_FAILED recorded why. */
static int decrypt_block(job *j, const uint8_t *msg, size_t n, mv_buf *plain)
{
    const mv_pgp_keyring *kr = j->kr;
    outcome o;
    memset(&o, 0, sizeof o);
    outcome_clear(&o);
    memset(j->excluded, 0, kr->n ? kr->n : 1);
    unsigned trials = 1;
    attempt(kr, msg, n, j->excluded, j->imported, j->budget, &o);
    add_recipients(j, o.rcpt, o.n_rcpt);
    /* whether any escrowed key was offered: "no key" versus "bad data" */
    int tried_secret = 0;
    for (size_t i = 0; i < kr->n; i++)
        tried_secret |= (j->imported[i] & 2) != 0;
    unsigned hidden_tried = 0;
    /* a key-id collision: the next escrowed key with that id */
    while (!o.ok && !o.over && !o.noint && !o.not_enc && trials < MV_PGP_MAX_TRIALS) {
        int any = 0;
        for (size_t i = 0; i < kr->n; i++)
            if (j->imported[i] & 2) {
                j->excluded[i] = 1;
                any = 1;
            }
        if (!any)
            break;
        tried_secret = 1;
        attempt(kr, msg, n, j->excluded, j->imported, j->budget, &o);
        trials++;
    }
    /* hidden recipients: each escrowed encryption key of the right family,
     * trusted only because the data is integrity-protected */
    if (!o.ok && !o.over && !o.noint && !o.not_enc) {
        size_t bl = 0;
        uint8_t *bin = dearmor(msg, n, &bl);
        size_t off[8];
        int alg[8];
        size_t nh = bin ? hidden_pkesks(bin, bl, off, alg, 8) : 0;
        memset(j->excluded, 0, kr->n ? kr->n : 1);
        for (size_t i = 0; i < kr->n && nh && !o.ok && !o.noint && !o.over; i++) {
            const entry *e = &kr->ent[i];
            for (size_t k = 0; e->sec && k < e->n_ids && !o.ok && !o.noint && !o.over; k++) {
                const keyref *c = &e->ids[k];
                int fits = 0;
                for (size_t h = 0; h < nh; h++)
                    fits |= same_family(alg[h], c->alg);
                if (!c->secret || !c->enc || !fits)
                    continue;
                if (trials >= MV_PGP_MAX_TRIALS) {
                    j->r->defects |= MV_DDEF_LIMIT;
                    i = kr->n;
                    break;
                }
                for (size_t h = 0; h < nh; h++)
                    memcpy(bin + off[h], c->keyid_bin, 8);
                attempt(kr, bin, bl, j->excluded, j->imported, j->budget, &o);
                trials++;
                hidden_tried++;
            }
        }
        free(bin);
    }
    int res = BLOCK_FAILED;
    if (o.not_enc) {
        res = BLOCK_PLAIN;
        sig_record(j->r, &o.sig);
    } else if (o.ok) {
        res = BLOCK_DECRYPTED;
        mv_decrypt_result *r = j->r;
        if (!r->content_alg)
            r->content_alg = content_alg_name(o.cipher, o.mode);
        if (!r->key_alg)
            r->key_alg = mv_xstrdup(o.key_alg ? o.key_alg : "unknown");
        if (!r->key_id && o.used_entry >= 0)
            r->key_id = kr->ent[o.used_entry].id;
        sig_record(r, &o.sig);
        j->budget -= o.out.b.len;
        mv_buf_append(plain, o.out.b.data, o.out.b.len);
    } else if (o.over) {
        fail(j, MV_DDEF_LIMIT, "decrypted data over max_output (%zu bytes)", j->lim.max_output);
    } else if (o.noint) {
        fail(j, MV_DDEF_UNSUPPORTED,
             "not integrity protected (mode %s, no MDC/AEAD): plaintext not trusted", o.mode);
    } else if (o.n_rcpt == 0 && o.n_symenc > 0) {
        fail(j, MV_DDEF_UNSUPPORTED, "encrypted to a passphrase only, no public-key recipient");
    } else if (!tried_secret && hidden_tried > 0) {
        fail(j, 0, "no escrowed key for any recipient (hidden recipient: %u keys tried)",
             hidden_tried);
    } else if (!tried_secret && o.n_rcpt > 0) {
        fail(j, 0, "no escrowed key for any recipient");
    } else if (o.n_rcpt == 0) {
        fail(j, MV_DDEF_MALFORMED, "not a readable OpenPGP message: %s",
             rnp_result_to_string(o.rc));
    } else {
        fail(j, MV_DDEF_MALFORMED, "decryption failed: %s", rnp_result_to_string(o.rc));
    }
    outcome_clear(&o);
    return res;
}

/* verify_op - run a verification in a fresh context (public keys from the
 * provider) and record the verdict.  sig NULL: cleartext signature in data. */
static void verify_op(job *j, const uint8_t *data, size_t dn, const uint8_t *sig, size_t sn)
{
    uint8_t *imported = j->imported;
    memset(imported, 0, j->kr->n ? j->kr->n : 1);
    memset(j->excluded, 0, j->kr->n ? j->kr->n : 1);
    actx a = {j->kr, j->excluded, imported, -1};
    sigv v;
    memset(&v, 0, sizeof v);
    v.time = INT64_MIN;
    rnp_ffi_t ffi = ffi_new();
    rnp_input_t din = NULL, sin = NULL;
    rnp_output_t out = NULL;
    rnp_op_verify_t op = NULL;
    rnp_result_t rc = RNP_ERROR_GENERIC;
    if (!ffi)
        goto done;
    if (rnp_ffi_set_key_provider(ffi, key_provider, &a) != RNP_SUCCESS ||
        rnp_input_from_memory(&din, data, dn, false) != RNP_SUCCESS)
        goto done;
    if (sig) {
        if (rnp_input_from_memory(&sin, sig, sn, false) != RNP_SUCCESS ||
            rnp_op_verify_detached_create(&op, ffi, din, sin) != RNP_SUCCESS)
            goto done;
    } else {
        if (rnp_output_to_null(&out) != RNP_SUCCESS ||
            rnp_op_verify_create(&op, ffi, din, out) != RNP_SUCCESS)
            goto done;
    }
    rc = rnp_op_verify_execute(op);
    collect_sigs(ffi, op, &v);
done:
    if (v.st == MV_SIG_NONE) {
        sigv_clear(&v);
        v.st = MV_SIG_ERROR;
        v.detail = mv_xasprintf("no signature could be read: %s", rnp_result_to_string(rc));
        j->r->defects |= MV_DDEF_MALFORMED;
    }
    sig_record(j->r, &v);
    if (op)
        rnp_op_verify_destroy(op);
    if (out)
        rnp_output_destroy(out);
    if (sin)
        rnp_input_destroy(sin);
    if (din)
        rnp_input_destroy(din);
    if (ffi)
        rnp_ffi_destroy(ffi);
}

/* A replacement of p[s..e) in the walked bytes. */
typedef struct splice {
    size_t s, e;
    mv_buf repl;
} splice;

typedef struct walk {
    job *j;
    const uint8_t *p;
    size_t n;
    unsigned layer;
    splice *sp;
    size_t n_sp;
} walk;

static void add_splice(walk *w, size_t s, size_t e, mv_buf *repl)
{
    w->sp = mv_xrealloc(w->sp, (w->n_sp + 1) * sizeof *w->sp);
    w->sp[w->n_sp].s = s;
    w->sp[w->n_sp].e = e;
    w->sp[w->n_sp].repl = *repl;
    w->n_sp++;
    memset(repl, 0, sizeof *repl);
}

static int transform(job *j, const uint8_t *p, size_t n, unsigned layer, mv_buf *out);
static void walk_entity(walk *w, size_t s, size_t e, unsigned depth);

/* eol_of - the line end the header block uses ("\r\n" unless its first line
 * ends in a bare LF). */
static const char *eol_of(const uint8_t *p, size_t n)
{
    const uint8_t *lf = memchr(p, '\n', n);
    if (lf && lf > p && lf[-1] != '\r')
        return "\n";
    return "\r\n";
}

/* copy_fields - the header block's lines into out, without the fields
 * whose name starts with drop_prefix (or equals drop_exact). */
static void copy_fields(const mv_rm_hblock *hb, const char *drop_prefix, const char *drop_exact,
                        mv_buf *out)
{
    size_t pos = 0, fs, fe, nl, vl;
    const uint8_t *name, *val;
    while (mv_rm_next_line(hb, &pos, &fs, &fe, &name, &nl, &val, &vl)) {
        if (nl && drop_prefix && mv_rm_iprefix(name, nl, drop_prefix))
            continue;
        if (nl && drop_exact && mv_rm_ieq(name, nl, drop_exact))
            continue;
        mv_buf_append(out, hb->p + fs, fe - fs);
    }
}

/* starts_as_entity - does p begin with a header field or an empty line? */
static int starts_as_entity(const uint8_t *p, size_t n)
{
    if (n == 0 || p[0] == '\n' || (p[0] == '\r' && n > 1 && p[1] == '\n'))
        return 1;
    for (size_t i = 0; i < n && i < 1000; i++) {
        if (p[i] == ':')
            return i > 0;
        if (p[i] <= ' ' || p[i] >= 0x7f)
            return 0;
    }
    return 0;
}

static int count_block(job *j)
{
    if (++j->blocks > MV_PGP_MAX_BLOCKS) {
        fail(j, MV_DDEF_LIMIT, "more than %d OpenPGP entities", MV_PGP_MAX_BLOCKS);
        return 0;
    }
    return 1;
}

/* two_parts - the first two parts of a multipart body (PGP/MIME). */
static int two_parts(const uint8_t *p, const mv_rm_ctype *ct, size_t body, size_t e, size_t *s1,
                     size_t *e1, size_t *s2, size_t *e2)
{
    mpit it;
    mp_begin(&it, p, ct, body, e);
    if (it.bad)
        return 0;
    if (!mp_next(&it, s1, e1) || !mp_next(&it, s2, e2))
        return 0;
    return 1;
}

static void part_body(const uint8_t *p, size_t s, size_t e, mv_buf *out, int *bad)
{
    mv_rm_hblock hb;
    mv_rm_scan_headers(p + s, e - s, MV_PGP_MAX_HEADER_BYTES, &hb);
    mv_rm_entity ent;
    mv_rm_read_entity(&hb, &ent);
    size_t body = s + hb.body_off;
    if (body < e)
        decode_body(p + body, e - body, ent.cte, out, bad);
}

static void handle_encrypted(walk *w, size_t s, size_t e, const mv_rm_hblock *hb,
                             const mv_rm_entity *ent, size_t body)
{
    job *j = w->j;
    j->found = 1;
    if (j->detect_only)
        return;
    j->r->encrypted = 1;
    if (!j->r->scheme)
        j->r->scheme = mv_xstrdup("pgp-mime");
    if (!count_block(j))
        return;
    size_t s1, e1, s2, e2;
    if (!two_parts(w->p, &ent->ct, body, e, &s1, &e1, &s2, &e2)) {
        fail(j, MV_DDEF_MALFORMED, "PGP/MIME encrypted entity without its two parts");
        return;
    }
    mv_buf cipher = MV_BUF_INIT, plain = MV_BUF_INIT, walked = MV_BUF_INIT;
    int bad = 0;
    part_body(w->p, s2, e2, &cipher, &bad);
    if (cipher.len == 0) {
        fail(j, MV_DDEF_MALFORMED, "PGP/MIME encrypted entity with an empty second part");
        mv_buf_free(&cipher);
        return;
    }
    int res = decrypt_block(j, cipher.data, cipher.len, &plain);
    mv_buf_free(&cipher);
    if (res == BLOCK_PLAIN) {
        mv_buf_wipe(&plain);
        fail(j, MV_DDEF_MALFORMED, "PGP/MIME encrypted entity holds no encrypted data");
        return;
    }
    if (res != BLOCK_DECRYPTED) {
        mv_buf_wipe(&plain);
        return;
    }
    mv_buf repl = MV_BUF_INIT;
    const char *eol = eol_of(hb->p, hb->hlen);
    copy_fields(hb, "content-", NULL, &repl);
    if (repl.len && repl.data[repl.len - 1] != '\n')
        mv_buf_append_str(&repl, eol); /* an entity without a body */
    const uint8_t *body_p = plain.data;
    size_t body_n = plain.len;
    if (transform(j, plain.data, plain.len, w->layer + 1, &walked)) {
        body_p = walked.data;
        body_n = walked.len;
    }
    if (!starts_as_entity(body_p, body_n))
        mv_buf_append_str(&repl, eol);
    mv_buf_append(&repl, body_p, body_n);
    mv_buf_wipe(&plain);
    mv_buf_wipe(&walked);
    add_splice(w, s, e, &repl);
}

/* canon_crlf - every bare LF made CRLF (RFC 3156 section 5). */
static void canon_crlf(const uint8_t *p, size_t n, mv_buf *out)
{
    mv_buf_reserve(out, n + n / 16);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            mv_buf_append_byte(out, '\r');
        mv_buf_append_byte(out, p[i]);
    }
}

static void handle_signed(walk *w, const mv_rm_entity *ent, size_t body, size_t e, unsigned depth)
{
    job *j = w->j;
    j->found = 1;
    if (j->detect_only)
        return;
    if (!count_block(j))
        return;
    size_t s1, e1, s2, e2;
    if (!two_parts(w->p, &ent->ct, body, e, &s1, &e1, &s2, &e2)) {
        sigv v = {MV_SIG_ERROR, NULL, INT64_MIN,
                  mv_xstrdup("PGP/MIME signed entity without its two parts")};
        j->r->defects |= MV_DDEF_MALFORMED;
        sig_record(j->r, &v);
        return;
    }
    mv_buf data = MV_BUF_INIT, sig = MV_BUF_INIT;
    int bad = 0;
    canon_crlf(w->p + s1, e1 - s1, &data);
    part_body(w->p, s2, e2, &sig, &bad);
    verify_op(j, data.data ? data.data : (const uint8_t *)"", data.len,
              sig.data ? sig.data : (const uint8_t *)"", sig.len);
    mv_buf_free(&data);
    mv_buf_free(&sig);
    walk_entity(w, s1, e1, depth + 1); /* an encrypted entity may sit inside */
}

/* marker_at - does the line starting at i begin with marker? */
static int marker_at(const uint8_t *d, size_t n, size_t i, const char *marker)
{
    size_t k = strlen(marker);
    return n - i >= k && memcmp(d + i, marker, k) == 0 && (i == 0 || d[i - 1] == '\n');
}

/* find_line - the next line start >= from beginning with marker; n if none. */
static size_t find_line(const uint8_t *d, size_t n, size_t from, const char *marker)
{
    size_t k = strlen(marker);
    while (from < n) {
        const uint8_t *h = memmem(d + from, n - from, marker, k);
        if (!h)
            return n;
        size_t at = (size_t)(h - d);
        if (at == 0 || d[at - 1] == '\n')
            return at;
        from = at + 1;
    }
    return n;
}

/* line_end - offset after the line at i (its LF), or n. */
static size_t line_end(const uint8_t *d, size_t n, size_t i)
{
    const uint8_t *lf = memchr(d + i, '\n', n - i);
    return lf ? (size_t)(lf - d) + 1 : n;
}

static void handle_inline(walk *w, size_t s, size_t e, const mv_rm_hblock *hb,
                          const mv_rm_entity *ent, size_t body)
{
    job *j = w->j;
    static const char begin_any[] = "-----BEGIN PGP ";
    if (body >= e)
        return;
    /* content sent as it is (no QP, no base64) is looked at where it is */
    if (ent->cte != MV_RM_CTE_BASE64 && ent->cte != MV_RM_CTE_QP &&
        !memmem(w->p + body, e - body, begin_any, sizeof begin_any - 1))
        return;
    mv_buf d = MV_BUF_INIT;
    int bad = 0;
    decode_body(w->p + body, e - body, ent->cte, &d, &bad);
    if (d.len == 0 || !memmem(d.data, d.len, begin_any, sizeof begin_any - 1)) {
        mv_buf_free(&d);
        return;
    }
    mv_buf out = MV_BUF_INIT;
    size_t copied = 0, i = 0;
    int n_enc = 0, n_ok = 0, seen = 0;
    while (i < d.len) {
        size_t at = find_line(d.data, d.len, i, begin_any);
        if (at == d.len)
            break;
        if (marker_at(d.data, d.len, at, "-----BEGIN PGP MESSAGE-----")) {
            seen = 1;
            if (j->detect_only)
                break;
            size_t end = find_line(d.data, d.len, at, "-----END PGP MESSAGE-----");
            if (end == d.len) {
                j->r->encrypted = 1;
                n_enc++;
                fail(j, MV_DDEF_MALFORMED, "inline PGP message without its END line");
                break;
            }
            size_t stop = end + strlen("-----END PGP MESSAGE-----");
            size_t next = line_end(d.data, d.len, end);
            if (!count_block(j))
                break;
            mv_buf plain = MV_BUF_INIT;
            int res = decrypt_block(j, d.data + at, next - at, &plain);
            if (res != BLOCK_PLAIN) {
                j->r->encrypted = 1;
                if (!j->r->scheme)
                    j->r->scheme = mv_xstrdup("pgp-inline");
                n_enc++;
            }
            if (res == BLOCK_DECRYPTED) {
                n_ok++;
                mv_buf_append(&out, d.data + copied, at - copied);
                mv_buf_append(&out, plain.data, plain.len);
                copied = stop;
            }
            mv_buf_wipe(&plain);
            i = next;
        } else if (marker_at(d.data, d.len, at, "-----BEGIN PGP SIGNED MESSAGE-----")) {
            seen = 1;
            if (j->detect_only)
                break;
            size_t end = find_line(d.data, d.len, at, "-----END PGP SIGNATURE-----");
            size_t next = end == d.len ? d.len : line_end(d.data, d.len, end);
            if (!count_block(j))
                break;
            verify_op(j, d.data + at, next - at, NULL, 0);
            i = next;
        } else {
            i = line_end(d.data, d.len, at);
        }
    }
    if (seen)
        j->found = 1;
    if (n_ok > 0 && n_ok == n_enc) {
        mv_buf_append(&out, d.data + copied, d.len - copied);
        mv_buf repl = MV_BUF_INIT;
        const char *eol = eol_of(hb->p, hb->hlen ? hb->hlen : (e - s));
        copy_fields(hb, NULL, "content-transfer-encoding", &repl);
        mv_buf_printf(&repl, "Content-Transfer-Encoding: 8bit%s%s", eol, eol);
        mv_buf_append(&repl, out.data, out.len);
        add_splice(w, s, e, &repl);
    }
    mv_buf_wipe(&out);
    mv_buf_wipe(&d);
}

/* walk_entity - classify p[s..e) and handle the OpenPGP forms in it. */
static void walk_entity(walk *w, size_t s, size_t e, unsigned depth)
{
    job *j = w->j;
    if (j->detect_only && j->found)
        return;
    if (++j->parts > MV_PGP_MAX_PARTS) {
        j->r->defects |= MV_DDEF_LIMIT;
        return;
    }
    mv_rm_hblock hb;
    mv_rm_scan_headers(w->p + s, e - s, MV_PGP_MAX_HEADER_BYTES, &hb);
    if (hb.over) {
        j->r->defects |= MV_DDEF_LIMIT;
        return;
    }
    mv_rm_entity ent;
    mv_rm_read_entity(&hb, &ent);
    size_t body = s + hb.body_off;
    const char *t = ent.has_ct ? ent.ct.type : "text";
    const char *st = ent.has_ct ? ent.ct.sub : "plain";
    if (strcmp(t, "multipart") == 0) {
        int enc = strcmp(st, "encrypted") == 0 &&
                  strcmp(ent.ct.protocol, "application/pgp-encrypted") == 0;
        int sig = strcmp(st, "signed") == 0 &&
                  strcmp(ent.ct.protocol, "application/pgp-signature") == 0;
        if (!ent.ct.has_boundary) {
            if (enc || sig) {
                j->found = 1;
                if (!j->detect_only) {
                    if (enc)
                        j->r->encrypted = 1;
                    fail(j, MV_DDEF_MALFORMED, "PGP/MIME entity without a boundary");
                }
            }
            return;
        }
        if (depth >= j->lim.max_depth || depth >= DEPTH_CAP) {
            j->r->defects |= MV_DDEF_LIMIT;
            return;
        }
        if (enc) {
            handle_encrypted(w, s, e, &hb, &ent, body);
            return;
        }
        if (sig) {
            handle_signed(w, &ent, body, e, depth);
            return;
        }
        mpit it;
        mp_begin(&it, w->p, &ent.ct, body, e);
        size_t ps, pe;
        while (mp_next(&it, &ps, &pe)) {
            walk_entity(w, ps, pe, depth + 1);
            if (j->parts > MV_PGP_MAX_PARTS || (j->detect_only && j->found))
                return;
        }
        return;
    }
    if (strcmp(t, "message") == 0 && (strcmp(st, "rfc822") == 0 || strcmp(st, "global") == 0)) {
        if (ent.cte == MV_RM_CTE_BASE64 || ent.cte == MV_RM_CTE_QP || body >= e)
            return; /* an encoded message/rfc822 is not walked (RFC 2046 forbids it) */
        if (depth >= j->lim.max_depth || depth >= DEPTH_CAP) {
            j->r->defects |= MV_DDEF_LIMIT;
            return;
        }
        walk_entity(w, body, e, depth + 1);
        return;
    }
    if (strcmp(t, "text") == 0 && strcmp(st, "plain") == 0)
        handle_inline(w, s, e, &hb, &ent, body);
}

/* transform - walk p[0..n) and write it with every OpenPGP entity replaced
 * by its decrypted form into out.  Returns 1 when something was replaced. */
static int transform(job *j, const uint8_t *p, size_t n, unsigned layer, mv_buf *out)
{
    if (layer >= j->lim.max_layers || layer >= LAYER_CAP) {
        /* no layer left: only say so when there was more to unwrap */
        job probe = *j;
        mv_decrypt_result scratch;
        memset(&scratch, 0, sizeof scratch);
        probe.r = &scratch;
        probe.detect_only = 1;
        probe.found = 0;
        walk pw = {&probe, p, n, layer, NULL, 0};
        walk_entity(&pw, 0, n, 0);
        if (probe.found)
            fail(j, MV_DDEF_LIMIT, "more than max_layers (%u) OpenPGP layers", j->lim.max_layers);
        return 0;
    }
    walk w = {j, p, n, layer, NULL, 0};
    walk_entity(&w, 0, n, 0);
    if (w.n_sp == 0) {
        free(w.sp);
        return 0;
    }
    size_t at = 0;
    for (size_t i = 0; i < w.n_sp; i++) {
        mv_buf_append(out, p + at, w.sp[i].s - at);
        mv_buf_append(out, w.sp[i].repl.data, w.sp[i].repl.len);
        at = w.sp[i].e;
        mv_buf_wipe(&w.sp[i].repl);
    }
    mv_buf_append(out, p + at, n - at);
    free(w.sp);
    return 1;
}

mv_status mv_pgp_load(mv_err *err)
{
    return need_rnp(err);
}

int mv_pgp_detect(const uint8_t *msg, size_t n)
{
    if (!msg || n == 0)
        return 0;
    mv_decrypt_result scratch;
    memset(&scratch, 0, sizeof scratch);
    job j;
    memset(&j, 0, sizeof j);
    mv_decrypt_limits_default(&j.lim);
    j.r = &scratch;
    j.detect_only = 1;
    walk w = {&j, msg, n, 0, NULL, 0};
    walk_entity(&w, 0, n, 0);
    return j.found;
}

mv_status mv_pgp_decrypt(const mv_pgp_keyring *kr, const uint8_t *msg, size_t n,
                         const mv_decrypt_limits *lim, mv_decrypt_result *r, mv_err *err)
{
    if (!kr || !r || (!msg && n > 0))
        return mv_err_set(err, MV_EUSAGE, "pgp decrypt: missing keyring, message or result");
    memset(r, 0, sizeof *r);
    mv_status rst = need_rnp(err);
    if (rst)
        return rst;
    r->signing_time = INT64_MIN;
    job j;
    memset(&j, 0, sizeof j);
    if (lim)
        j.lim = *lim;
    else
        mv_decrypt_limits_default(&j.lim);
    mv_decrypt_limits def;
    mv_decrypt_limits_default(&def);
    if (!j.lim.max_output)
        j.lim.max_output = def.max_output;
    if (!j.lim.max_depth)
        j.lim.max_depth = def.max_depth;
    if (!j.lim.max_layers)
        j.lim.max_layers = def.max_layers;
    j.kr = kr;
    j.r = r;
    j.all_ok = 1;
    j.budget = j.lim.max_output;
    if (n == 0)
        return MV_OK;
    pthread_rwlock_rdlock(kr->lock);
    j.excluded = mv_xcalloc(kr->n ? kr->n : 1, 1);
    j.imported = mv_xcalloc(kr->n ? kr->n : 1, 1);
    mv_buf out = MV_BUF_INIT;
    int changed = transform(&j, msg, n, 0, &out);
    pthread_rwlock_unlock(kr->lock);
    free(j.excluded);
    free(j.imported);
    if (r->encrypted && j.all_ok && changed && out.len > j.lim.max_output)
        fail(&j, MV_DDEF_LIMIT, "decrypted form over max_output (%zu bytes)", j.lim.max_output);
    if (r->encrypted && j.all_ok && changed) {
        r->decrypted = 1;
        r->out = mv_buf_steal(&out, &r->out_len);
        free(r->failure);
        r->failure = NULL;
    } else {
        mv_buf_wipe(&out);
        if (r->encrypted && !r->failure)
            r->failure = mv_xstrdup("not decrypted");
    }
    return MV_OK;
}
