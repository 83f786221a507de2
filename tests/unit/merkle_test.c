/* SPDX-License-Identifier: MIT */
/* merkle_test.c - lib/merkle.h against the RFC 6962 / RFC 9162 definitions:
 * published test values, then a naive recursive MTH / PATH / PROOF over an
 * array of leaves compared with the frontier, root_at and both proof
 * generators for every size up to 70; every proof verifies and every
 * mutation of it fails.  The proof generators read the nodes the frontier
 * emitted, so the emission is checked as well. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/buf.h"
#include "../../lib/merkle.h"

#define H MV_MERKLE_HASH
#define NLEAVES 70
#define LEVELS 7 /* 2^6 = 64 <= 70 < 128 */

static void unhex(const char *s, uint8_t out[32])
{
    assert_int_equal(strlen(s), 64);
    assert_int_equal(mv_unhex(s, out, 32), 0);
}

/* ---- the reference: RFC 6962 §2.1 / RFC 9162 §2.1 as written ------------- */

/* The standard 8-leaf tree of the RFC 6962 test data, then leaves of our own. */
static const struct {
    const char *hex;
} std_leaves[8] = {{""},
                   {"00"},
                   {"10"},
                   {"2021"},
                   {"3031"},
                   {"40414243"},
                   {"5051525354555657"},
                   {"606162636465666768696a6b6c6d6e6f"}};

static uint8_t leaf[NLEAVES][H]; /* leaf hashes */

static void make_leaves(void)
{
    for (size_t i = 0; i < NLEAVES; i++) {
        uint8_t data[64];
        size_t n;
        if (i < 8) {
            n = strlen(std_leaves[i].hex) / 2;
            assert_int_equal(mv_unhex(std_leaves[i].hex, data, n), 0);
        } else {
            n = (size_t)snprintf((char *)data, sizeof data, "leaf-%zu", i);
        }
        mv_merkle_leaf_hash(data, n, leaf[i]);
    }
}

static void ref_mth(size_t lo, size_t hi, uint8_t out[H])
{
    if (hi == lo) {
        mv_merkle_empty_root(out);
        return;
    }
    if (hi - lo == 1) {
        memcpy(out, leaf[lo], H);
        return;
    }
    size_t k = 1;
    while (k * 2 < hi - lo)
        k *= 2;
    uint8_t l[H], r[H];
    ref_mth(lo, lo + k, l);
    ref_mth(lo + k, hi, r);
    mv_merkle_node_hash(l, r, out);
}

typedef struct ref_proof {
    uint8_t node[MV_MERKLE_MAX_PROOF + 1][H];
    size_t n;
} ref_proof;

static void push(ref_proof *p, size_t lo, size_t hi)
{
    assert_true(p->n < MV_MERKLE_MAX_PROOF);
    ref_mth(lo, hi, p->node[p->n++]);
}

/* PATH(m, D[lo:hi]) */
static void ref_path(size_t m, size_t lo, size_t hi, ref_proof *p)
{
    if (hi - lo <= 1)
        return;
    size_t k = 1;
    while (k * 2 < hi - lo)
        k *= 2;
    if (m < lo + k) {
        ref_path(m, lo, lo + k, p);
        push(p, lo + k, hi);
    } else {
        ref_path(m, lo + k, hi, p);
        push(p, lo, lo + k);
    }
}

/* SUBPROOF(m, D[lo:hi], b), m counted from lo */
static void ref_subproof(size_t m, size_t lo, size_t hi, int b, ref_proof *p)
{
    if (m == hi - lo) {
        if (!b)
            push(p, lo, hi);
        return;
    }
    size_t k = 1;
    while (k * 2 < hi - lo)
        k *= 2;
    if (m <= k) {
        ref_subproof(m, lo, lo + k, b, p);
        push(p, lo + k, hi);
    } else {
        ref_subproof(m - k, lo + k, hi, 0, p);
        push(p, lo, lo + k);
    }
}

static void ref_inclusion(size_t m, size_t n, ref_proof *p)
{
    p->n = 0;
    ref_path(m, 0, n, p);
}

static void ref_consistency(size_t m, size_t n, ref_proof *p)
{
    p->n = 0;
    if (m != 0 && m != n)
        ref_subproof(m, 0, n, 1, p);
}

/* ---- the node store the frontier fills --------------------------------- */

static uint8_t store[LEVELS][NLEAVES][H];
static int have[LEVELS][NLEAVES];
static size_t emitted_now; /* nodes emitted by the current append */
static uint64_t tree_size; /* leaves appended so far */

static void on_node(void *ctx, unsigned level, uint64_t index, const uint8_t h[32])
{
    assert_ptr_equal(ctx, &tree_size);
    assert_true(level < LEVELS);
    /* a node completed by appending leaf tree_size lies inside tree_size + 1 */
    assert_true(((index + 1) << level) <= tree_size + 1);
    assert_true(((index + 1) << level) == tree_size + 1); /* it ends at the new leaf */
    assert_false(have[level][index]);
    uint8_t want[H];
    ref_mth((size_t)(index << level), (size_t)((index + 1) << level), want);
    assert_memory_equal(h, want, H);
    memcpy(store[level][index], h, H);
    have[level][index] = 1;
    emitted_now++;
}

typedef struct get_ctx {
    uint64_t size;
    size_t gets;
    int fail_after; /* > 0: the n-th get fails */
} get_ctx;

static mv_status get_node(void *vctx, unsigned level, uint64_t index, uint8_t out[32], mv_err *err)
{
    get_ctx *c = vctx;
    c->gets++;
    if (c->fail_after > 0 && c->gets >= (size_t)c->fail_after)
        return mv_err_set(err, MV_ESTORE, "test: get %zu fails", c->gets);
    /* never beyond the tree the proof is about */
    assert_true(level < 64);
    assert_true(((index + 1) << level) <= c->size);
    assert_true(level < LEVELS && index < NLEAVES);
    assert_true(have[level][index]);
    memcpy(out, store[level][index], H);
    return MV_OK;
}

/* ---- known values ------------------------------------------------------ */

/* RFC 6962 hasher constants and the roots of the standard 8-leaf tree, as
 * in transparency-dev/merkle rfc6962/rfc6962_test.go and proof/verify_test.go
 * (recomputed independently; STANDARDS §7.1 quotes their prefixes). */
static const char *const std_roots[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};
static const char *const std_prefixes[8] = {"6e340b9c", "fac54203", "aeb6bcfe", "d37ee418",
                                            "4e3bbb1f", "76e67dad", "ddb89be4", "5dc9da79"};

static void test_known_values(void **state)
{
    (void)state;
    uint8_t h[H], want[H];
    char hex[65];
    mv_merkle_empty_root(h);
    unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want);
    assert_memory_equal(h, want, H);
    mv_merkle_leaf_hash("", 0, h);
    unhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", want);
    assert_memory_equal(h, want, H);
    mv_merkle_leaf_hash(NULL, 0, h);
    assert_memory_equal(h, want, H);
    mv_merkle_leaf_hash("L123456", 7, h);
    unhex("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56", want);
    assert_memory_equal(h, want, H);

    mv_merkle_frontier f;
    mv_merkle_frontier_init(&f);
    for (size_t i = 0; i < 8; i++) {
        mv_merkle_frontier_append(&f, leaf[i], NULL, NULL);
        mv_merkle_frontier_root(&f, h);
        mv_hex(h, H, hex);
        assert_memory_equal(hex, std_prefixes[i], 8); /* STANDARDS §7.1 */
        unhex(std_roots[i], want);
        assert_memory_equal(h, want, H);
    }
    /* node hashing aliases its output safely */
    uint8_t a[H], b[H], c[H];
    memcpy(a, leaf[0], H);
    memcpy(b, leaf[1], H);
    mv_merkle_node_hash(a, b, c);
    mv_merkle_node_hash(a, b, a);
    assert_memory_equal(a, c, H);
    memcpy(a, leaf[0], H);
    mv_merkle_node_hash(a, b, b);
    assert_memory_equal(b, c, H);
    unhex(std_roots[1], want);
    assert_memory_equal(c, want, H);
}

/* The proofs of transparency-dev/merkle proof/verify_test.go (leaf indexes
 * there are 1-based), generated here and checked. */
typedef struct known_proof {
    uint64_t a, b; /* inclusion: leaf index, size; consistency: size1, size2 */
    size_t n;
    const char *node[3];
} known_proof;

static const known_proof known_incl[] = {
    {0,
     8,
     3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5,
     8,
     3,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1,
     5,
     3,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static const known_proof known_cons[] = {
    {1,
     8,
     3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2,
     5,
     2,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {6,
     7,
     3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

/* Fill the store with the first `n` leaves through the frontier. */
static void build(size_t n, mv_merkle_frontier *f)
{
    memset(have, 0, sizeof have);
    mv_merkle_frontier_init(f);
    tree_size = 0;
    for (size_t i = 0; i < n; i++) {
        mv_merkle_frontier_append(f, leaf[i], on_node, &tree_size);
        tree_size++;
    }
}

static void test_known_proofs(void **state)
{
    (void)state;
    mv_merkle_frontier f;
    build(8, &f);
    uint8_t proof[MV_MERKLE_MAX_PROOF][H], want[H], r1[H], r2[H];
    size_t n;
    mv_err err = {0};
    for (size_t i = 0; i < sizeof known_incl / sizeof *known_incl; i++) {
        const known_proof *k = &known_incl[i];
        get_ctx g = {k->b, 0, 0};
        assert_int_equal(mv_merkle_inclusion_proof(k->a, k->b, get_node, &g, proof, &n, &err),
                         MV_OK);
        assert_int_equal(n, k->n);
        for (size_t j = 0; j < n; j++) {
            unhex(k->node[j], want);
            assert_memory_equal(proof[j], want, H);
        }
        unhex(std_roots[k->b - 1], r2);
        assert_true(
            mv_merkle_verify_inclusion(k->a, k->b, leaf[k->a], (const uint8_t(*)[32])proof, n, r2));
    }
    for (size_t i = 0; i < sizeof known_cons / sizeof *known_cons; i++) {
        const known_proof *k = &known_cons[i];
        get_ctx g = {k->b, 0, 0};
        assert_int_equal(mv_merkle_consistency_proof(k->a, k->b, get_node, &g, proof, &n, &err),
                         MV_OK);
        assert_int_equal(n, k->n);
        for (size_t j = 0; j < n; j++) {
            unhex(k->node[j], want);
            assert_memory_equal(proof[j], want, H);
        }
        unhex(std_roots[k->a - 1], r1);
        unhex(std_roots[k->b - 1], r2);
        assert_true(
            mv_merkle_verify_consistency(k->a, k->b, r1, r2, (const uint8_t(*)[32])proof, n));
    }
}

/* ---- exhaustive comparison up to 70 leaves ------------------------------ */

typedef const uint8_t (*cproof)[32];

static void flip(uint8_t h[H], unsigned bit)
{
    h[(bit / 8) % H] ^= (uint8_t)(1u << (bit % 8));
}

/* the bits each mutation flips: first byte (as the Go tests), last byte, and
 * one that moves with the case */
static unsigned flip_bit(unsigned which, size_t salt)
{
    return which == 0 ? 3 : which == 1 ? 255 : (unsigned)((salt * 37 + 11) % 256);
}

static int proof_eq(const uint8_t a[][32], size_t na, const ref_proof *b)
{
    return na == b->n && (na == 0 || memcmp(a, b->node, na * H) == 0);
}

static void check_inclusion(uint64_t idx, uint64_t size, uint8_t roots[][H])
{
    uint8_t proof[MV_MERKLE_MAX_PROOF + 2][H], bad[MV_MERKLE_MAX_PROOF + 2][H], h[H];
    size_t n;
    mv_err err = {0};
    get_ctx g = {size, 0, 0};
    assert_int_equal(mv_merkle_inclusion_proof(idx, size, get_node, &g, proof, &n, &err), MV_OK);
    ref_proof ref;
    ref_inclusion(idx, size, &ref);
    assert_true(proof_eq((cproof)proof, n, &ref));
    /* O(log^2): at most one get per set bit of each sibling's size */
    assert_true(g.gets <= 7 * 7);
    const uint8_t *root = roots[size];
    const uint8_t *lf = leaf[idx];
    assert_true(mv_merkle_verify_inclusion(idx, size, lf, (cproof)proof, n, root));

    /* one bit flipped in any node */
    for (size_t j = 0; j < n; j++)
        for (unsigned w = 0; w < 3; w++) {
            memcpy(bad, proof, n * H);
            flip(bad[j], flip_bit(w, idx * 71 + size + j));
            assert_false(mv_merkle_verify_inclusion(idx, size, lf, (cproof)bad, n, root));
        }
    /* one node dropped */
    for (size_t j = 0; j < n; j++) {
        memcpy(bad, proof, j * H);
        memcpy(bad[j], proof[j + 1], (n - j - 1) * H);
        assert_false(mv_merkle_verify_inclusion(idx, size, lf, (cproof)bad, n - 1, root));
    }
    /* one node appended or prepended (a real hash and the root itself) */
    for (int k = 0; k < 2; k++) {
        const uint8_t *extra = k ? root : leaf[(idx + 1) % NLEAVES];
        memcpy(bad, proof, n * H);
        memcpy(bad[n], extra, H);
        assert_false(mv_merkle_verify_inclusion(idx, size, lf, (cproof)bad, n + 1, root));
        memcpy(bad[0], extra, H);
        memcpy(bad[1], proof, n * H);
        assert_false(mv_merkle_verify_inclusion(idx, size, lf, (cproof)bad, n + 1, root));
    }
    /* wrong index, with the original leaf or with the leaf at that index */
    for (uint64_t i2 = 0; i2 < size + 2; i2++) {
        if (i2 == idx)
            continue;
        assert_false(mv_merkle_verify_inclusion(i2, size, lf, (cproof)proof, n, root));
        if (i2 < NLEAVES)
            assert_false(mv_merkle_verify_inclusion(i2, size, leaf[i2], (cproof)proof, n, root));
    }
    /* wrong size: against the true root of that size the proof holds only if
     * it is also that size's proof; against this root, never for 2n or n/2
     * (for n + 1 it can: see check_consistency) */
    const uint64_t sizes[] = {size - 1, size + 1, size + 2, size * 2, size / 2};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        uint64_t s2 = sizes[k];
        if (s2 == size || s2 <= idx)
            continue;
        if (s2 <= NLEAVES) {
            ref_proof r2;
            ref_inclusion(idx, s2, &r2);
            assert_int_equal(mv_merkle_verify_inclusion(idx, s2, lf, (cproof)proof, n, roots[s2]),
                             proof_eq((cproof)proof, n, &r2));
        }
        if (k >= 3)
            assert_false(mv_merkle_verify_inclusion(idx, s2, lf, (cproof)proof, n, root));
    }
    /* wrong root, wrong leaf */
    memcpy(h, root, H);
    flip(h, flip_bit(2, size));
    assert_false(mv_merkle_verify_inclusion(idx, size, lf, (cproof)proof, n, h));
    if (size > 1)
        assert_false(mv_merkle_verify_inclusion(idx, size, lf, (cproof)proof, n, roots[size - 1]));
    memcpy(h, lf, H);
    flip(h, flip_bit(2, idx));
    assert_false(mv_merkle_verify_inclusion(idx, size, h, (cproof)proof, n, root));
}

static void check_consistency(uint64_t m, uint64_t size, uint8_t roots[][H])
{
    uint8_t proof[MV_MERKLE_MAX_PROOF + 2][H], bad[MV_MERKLE_MAX_PROOF + 2][H], h[H];
    size_t n;
    mv_err err = {0};
    get_ctx g = {size, 0, 0};
    assert_int_equal(mv_merkle_consistency_proof(m, size, get_node, &g, proof, &n, &err), MV_OK);
    ref_proof ref;
    ref_consistency(m, size, &ref);
    assert_true(proof_eq((cproof)proof, n, &ref));
    assert_true(g.gets <= 8 * 7);
    const uint8_t *r1 = roots[m], *r2 = roots[size];
    assert_true(mv_merkle_verify_consistency(m, size, r1, r2, (cproof)proof, n));

    /* an extra node is refused in every case, trivial ones included */
    memcpy(bad, proof, n * H);
    memcpy(bad[n], r2, H);
    assert_false(mv_merkle_verify_consistency(m, size, r1, r2, (cproof)bad, n + 1));
    memcpy(bad[n], r1, H);
    assert_false(mv_merkle_verify_consistency(m, size, r1, r2, (cproof)bad, n + 1));
    memcpy(bad[0], r1, H);
    memcpy(bad[1], proof, n * H);
    assert_false(mv_merkle_verify_consistency(m, size, r1, r2, (cproof)bad, n + 1));
    /* back in time */
    if (m != size)
        assert_false(mv_merkle_verify_consistency(size, m, r2, r1, (cproof)proof, n));
    if (m == 0) {
        /* any tree extends the empty one: nothing else to check (see merkle.h) */
        assert_int_equal(n, 0);
        return;
    }
    if (m == size) {
        assert_int_equal(n, 0);
        memcpy(h, r1, H);
        flip(h, flip_bit(2, m));
        assert_false(mv_merkle_verify_consistency(m, size, h, r2, (cproof)proof, n));
        assert_false(mv_merkle_verify_consistency(m, size, r1, h, (cproof)proof, n));
        return;
    }
    assert_true(n > 0);
    assert_false(mv_merkle_verify_consistency(m, size, r1, r2, (cproof)proof, 0));
    for (size_t j = 0; j < n; j++)
        for (unsigned w = 0; w < 3; w++) {
            memcpy(bad, proof, n * H);
            flip(bad[j], flip_bit(w, m * 71 + size + j));
            assert_false(mv_merkle_verify_consistency(m, size, r1, r2, (cproof)bad, n));
        }
    for (size_t j = 0; j < n; j++) {
        memcpy(bad, proof, j * H);
        memcpy(bad[j], proof[j + 1], (n - j - 1) * H);
        assert_false(mv_merkle_verify_consistency(m, size, r1, r2, (cproof)bad, n - 1));
    }
    /* prepending the first node again */
    memcpy(bad[0], proof[0], H);
    memcpy(bad[1], proof, n * H);
    assert_false(mv_merkle_verify_consistency(m, size, r1, r2, (cproof)bad, n + 1));
    /* wrong roots */
    memcpy(h, r1, H);
    flip(h, flip_bit(2, m + size));
    assert_false(mv_merkle_verify_consistency(m, size, h, r2, (cproof)proof, n));
    memcpy(h, r2, H);
    flip(h, flip_bit(2, m + size));
    assert_false(mv_merkle_verify_consistency(m, size, r1, h, (cproof)proof, n));
    assert_false(mv_merkle_verify_consistency(m, size, r2, r1, (cproof)proof, n));
    assert_false(mv_merkle_verify_consistency(m, size, roots[m - 1], r2, (cproof)proof, n));
    /* wrong sizes with the original roots (the Go tests' probes).  Not
     * size2 + 1: RFC 9162's check does not bind the new size by itself
     * (1 -> 3's proof also takes root(3) as the root of a 4-leaf tree, a
     * tree no honest log can have); the signed size next to the root does. */
    const uint64_t s1s[] = {m - 1, m + 1, m ^ 2};
    for (size_t k = 0; k < 3; k++)
        if (s1s[k] != m)
            assert_false(mv_merkle_verify_consistency(s1s[k], size, r1, r2, (cproof)proof, n));
    const uint64_t s2s[] = {size * 2, size / 2, size + 1, size - 1};
    for (size_t k = 0; k < 2; k++)
        assert_false(mv_merkle_verify_consistency(m, s2s[k], r1, r2, (cproof)proof, n));
    /* wrong sizes with the true roots of those sizes: only if it is also
     * their proof */
    for (size_t k = 0; k < 3; k++) {
        uint64_t s1 = s1s[k];
        if (s1 == m || s1 == 0 || s1 >= size)
            continue;
        ref_proof rp;
        ref_consistency(s1, size, &rp);
        assert_int_equal(mv_merkle_verify_consistency(s1, size, roots[s1], r2, (cproof)proof, n),
                         proof_eq((cproof)proof, n, &rp));
    }
    for (size_t k = 2; k < 4; k++) {
        uint64_t s2 = s2s[k];
        if (s2 <= m || s2 > NLEAVES)
            continue;
        ref_proof rp;
        ref_consistency(m, s2, &rp);
        assert_int_equal(mv_merkle_verify_consistency(m, s2, r1, roots[s2], (cproof)proof, n),
                         proof_eq((cproof)proof, n, &rp));
    }
}

static void test_exhaustive(void **state)
{
    (void)state;
    static uint8_t roots[NLEAVES + 3][H];
    for (size_t s = 0; s <= NLEAVES; s++)
        ref_mth(0, s, roots[s]);
    memset(roots[NLEAVES + 1], 0xee, H); /* unused: sizes beyond are never checked against it */
    memset(roots[NLEAVES + 2], 0xee, H);

    mv_merkle_frontier f;
    mv_merkle_frontier_init(&f);
    memset(have, 0, sizeof have);
    tree_size = 0;
    uint8_t h[H];
    mv_err err = {0};
    get_ctx g0 = {0, 0, 0};
    assert_int_equal(mv_merkle_root_at(0, get_node, &g0, h, &err), MV_OK);
    assert_memory_equal(h, roots[0], H);
    mv_merkle_frontier_root(&f, h);
    assert_memory_equal(h, roots[0], H);
    check_consistency(0, 0, roots);

    for (uint64_t size = 1; size <= NLEAVES; size++) {
        emitted_now = 0;
        mv_merkle_frontier_append(&f, leaf[size - 1], on_node, &tree_size);
        tree_size++;
        /* the leaf, and one node per carry */
        assert_int_equal(emitted_now, 1 + (size_t)__builtin_ctzll(size));
        assert_int_equal(f.size, size);
        mv_merkle_frontier_root(&f, h);
        assert_memory_equal(h, roots[size], H);
        get_ctx g = {size, 0, 0};
        assert_int_equal(mv_merkle_root_at(size, get_node, &g, h, &err), MV_OK);
        assert_memory_equal(h, roots[size], H);
        assert_int_equal(g.gets, (size_t)__builtin_popcountll(size));
        /* proofs for this size from only what has been emitted so far */
        for (uint64_t i = 0; i < size; i++)
            check_inclusion(i, size, roots);
        for (uint64_t m = 0; m <= size; m++)
            check_consistency(m, size, roots);
    }
}

static void test_proof_errors(void **state)
{
    (void)state;
    mv_merkle_frontier f;
    build(NLEAVES, &f);
    uint8_t proof[MV_MERKLE_MAX_PROOF][H], h[H];
    size_t n = 99;
    mv_err err = {0};
    get_ctx g = {10, 0, 0};
    assert_int_equal(mv_merkle_inclusion_proof(10, 10, get_node, &g, proof, &n, &err), MV_EUSAGE);
    assert_int_equal(n, 0);
    assert_int_equal(g.gets, 0);
    n = 99;
    assert_int_equal(mv_merkle_inclusion_proof(0, 0, get_node, &g, proof, &n, &err), MV_EUSAGE);
    assert_int_equal(n, 0);
    n = 99;
    assert_int_equal(mv_merkle_consistency_proof(11, 10, get_node, &g, proof, &n, &err), MV_EUSAGE);
    assert_int_equal(n, 0);
    assert_int_equal(mv_merkle_consistency_proof(0, 0, get_node, &g, proof, &n, &err), MV_OK);
    assert_int_equal(n, 0);
    /* a failing store: its status comes back, and no partial proof */
    for (int k = 1; k <= 3; k++) {
        get_ctx gf = {NLEAVES, 0, k};
        n = 99;
        mv_err e2 = {0};
        assert_int_equal(mv_merkle_inclusion_proof(37, 69, get_node, &gf, proof, &n, &e2),
                         MV_ESTORE);
        assert_int_equal(n, 0);
        assert_true(e2.msg[0] != '\0');
        gf.gets = 0;
        n = 99;
        assert_int_equal(mv_merkle_consistency_proof(37, 69, get_node, &gf, proof, &n, &e2),
                         MV_ESTORE);
        assert_int_equal(n, 0);
        gf.gets = 0;
        assert_int_equal(mv_merkle_root_at(69, get_node, &gf, h, &e2), MV_ESTORE);
    }
    /* verification refuses nonsense arguments */
    assert_false(mv_merkle_verify_inclusion(0, 0, leaf[0], (cproof)proof, 0, leaf[0]));
    assert_false(mv_merkle_verify_inclusion(5, 3, leaf[0], (cproof)proof, 0, leaf[0]));
    assert_true(mv_merkle_verify_inclusion(0, 1, leaf[0], (cproof)proof, 0, leaf[0]));
    assert_false(mv_merkle_verify_consistency(2, 1, leaf[0], leaf[0], (cproof)proof, 0));
    assert_true(mv_merkle_verify_consistency(0, 0, leaf[0], leaf[0], (cproof)proof, 0));
    assert_false(mv_merkle_verify_consistency(0, 0, leaf[0], leaf[1], (cproof)proof, 0));
    assert_true(mv_merkle_verify_consistency(0, 5, leaf[0], leaf[1], (cproof)proof, 0));
    /* a long proof is simply rejected */
    static uint8_t longp[1000][H];
    assert_false(mv_merkle_verify_inclusion(3, 7, leaf[3], (cproof)longp, 1000, leaf[0]));
    assert_false(mv_merkle_verify_consistency(3, 7, leaf[3], leaf[0], (cproof)longp, 1000));
}

/* ---- 64-bit sizes ------------------------------------------------------- */

/* A tree whose leaves all have the same hash: every perfect subtree of a
 * level then has one hash, so trees of 2^64 - 1 leaves are cheap. */
static uint8_t flat[64][H];

static mv_status get_flat(void *ctx, unsigned level, uint64_t index, uint8_t out[32], mv_err *err)
{
    (void)err;
    uint64_t size = *(const uint64_t *)ctx;
    assert_true(level < 64);
    assert_true(index < (size >> level)); /* (index + 1) << level <= size, without overflow */
    memcpy(out, flat[level], H);
    return MV_OK;
}

static void test_huge(void **state)
{
    (void)state;
    mv_merkle_leaf_hash("x", 1, flat[0]);
    for (int l = 1; l < 64; l++)
        mv_merkle_node_hash(flat[l - 1], flat[l - 1], flat[l]);
    uint8_t proof[MV_MERKLE_MAX_PROOF][H], r1[H], r2[H];
    size_t n;
    mv_err err = {0};
    const uint64_t max = UINT64_MAX - 1; /* the largest size that can still grow */
    const uint64_t big[] = {UINT64_MAX,
                            max,
                            (uint64_t)1 << 63,
                            ((uint64_t)1 << 63) + 1,
                            ((uint64_t)1 << 63) - 1,
                            0x5555555555555555u,
                            0xaaaaaaaaaaaaaaabu};
    for (size_t k = 0; k < sizeof big / sizeof *big; k++) {
        uint64_t size = big[k];
        assert_int_equal(mv_merkle_root_at(size, get_flat, &size, r2, &err), MV_OK);
        const uint64_t idx[] = {0, 1, size / 2, size / 3, size - 2, size - 1};
        for (size_t i = 0; i < sizeof idx / sizeof *idx; i++) {
            assert_int_equal(
                mv_merkle_inclusion_proof(idx[i], size, get_flat, &size, proof, &n, &err), MV_OK);
            assert_true(n <= 64);
            assert_true(mv_merkle_verify_inclusion(idx[i], size, flat[0], (cproof)proof, n, r2));
            assert_false(mv_merkle_verify_inclusion(idx[i], size, flat[1], (cproof)proof, n, r2));
        }
        const uint64_t olds[] = {1, 3, size / 2, size - 1, ((uint64_t)1 << 62) + 5};
        for (size_t i = 0; i < sizeof olds / sizeof *olds; i++) {
            uint64_t m = olds[i];
            if (m == 0 || m > size)
                continue;
            uint64_t sz = size;
            mv_status st = mv_merkle_consistency_proof(m, size, get_flat, &sz, proof, &n, &err);
            if (st == MV_ELIMIT) {
                assert_true(size > ((uint64_t)1 << 63));
                assert_int_equal(n, 0);
                continue;
            }
            assert_int_equal(st, MV_OK);
            assert_int_equal(mv_merkle_root_at(m, get_flat, &m, r1, &err), MV_OK);
            assert_true(mv_merkle_verify_consistency(m, size, r1, r2, (cproof)proof, n));
        }
    }
    /* the longest consistency proof: 3 -> 2^64 - 1 needs 65 nodes */
    uint64_t sz = UINT64_MAX;
    assert_int_equal(mv_merkle_consistency_proof(3, sz, get_flat, &sz, proof, &n, &err), MV_ELIMIT);
    sz = (uint64_t)1 << 63;
    assert_int_equal(mv_merkle_consistency_proof(3, sz, get_flat, &sz, proof, &n, &err), MV_OK);
    assert_int_equal(n, 64);

    /* a frontier near the top: decode one and keep appending */
    mv_merkle_frontier f;
    mv_buf b = MV_BUF_INIT;
    mv_buf_put_u64(&b, max - 3);
    for (int l = 0; l < 64; l++)
        if (((max - 3) >> l) & 1)
            mv_buf_append(&b, flat[l], H);
    assert_int_equal(mv_merkle_frontier_decode(b.data, b.len, &f, &err), MV_OK);
    uint8_t h[H];
    for (int i = 0; i < 3; i++)
        mv_merkle_frontier_append(&f, flat[0], NULL, NULL);
    assert_int_equal(f.size, max);
    mv_merkle_frontier_root(&f, h);
    uint64_t s = max;
    assert_int_equal(mv_merkle_root_at(max, get_flat, &s, r2, &err), MV_OK);
    assert_memory_equal(h, r2, H);
    /* full: refused on decode */
    mv_buf_reset(&b);
    mv_merkle_frontier_append(&f, flat[0], NULL, NULL);
    mv_merkle_frontier_encode(&f, &b);
    assert_int_equal(b.len, 8 + 64 * H);
    assert_int_equal(mv_merkle_frontier_decode(b.data, b.len, &f, &err), MV_ELIMIT);
    assert_int_equal(f.size, 0);
    mv_buf_free(&b);
}

/* ---- frontier encoding -------------------------------------------------- */

static void test_frontier_codec(void **state)
{
    (void)state;
    mv_merkle_frontier f, g;
    mv_merkle_frontier_init(&f);
    mv_buf b = MV_BUF_INIT;
    uint8_t r1[H], r2[H];
    mv_err err = {0};
    for (size_t size = 0; size <= NLEAVES; size++) {
        if (size)
            mv_merkle_frontier_append(&f, leaf[size - 1], NULL, NULL);
        mv_buf_reset(&b);
        mv_merkle_frontier_encode(&f, &b);
        assert_int_equal(b.len, 8 + H * (size_t)__builtin_popcountll(size));
        assert_true(b.len <= MV_MERKLE_FRONTIER_MAX_ENCODED);
        assert_int_equal(mv_be64_get(b.data), size);
        assert_int_equal(mv_merkle_frontier_decode(b.data, b.len, &g, &err), MV_OK);
        assert_int_equal(g.size, size);
        mv_merkle_frontier_root(&f, r1);
        mv_merkle_frontier_root(&g, r2);
        assert_memory_equal(r1, r2, H);
        assert_memory_equal(&f, &g, sizeof f); /* unset entries are zero in both */
        /* the decoded frontier grows like the original */
        mv_merkle_frontier_append(&g, leaf[0], NULL, NULL);
        mv_merkle_frontier f2 = f;
        mv_merkle_frontier_append(&f2, leaf[0], NULL, NULL);
        mv_merkle_frontier_root(&f2, r1);
        mv_merkle_frontier_root(&g, r2);
        assert_memory_equal(r1, r2, H);
        /* every truncation and one byte more fail cleanly */
        for (size_t k = 0; k < b.len; k++) {
            memset(&g, 0xaa, sizeof g);
            assert_int_equal(mv_merkle_frontier_decode(b.data, k, &g, &err), MV_EMALFORMED);
            assert_int_equal(g.size, 0);
        }
        mv_buf_append_byte(&b, 0);
        assert_int_equal(mv_merkle_frontier_decode(b.data, b.len, &g, &err), MV_EMALFORMED);
    }
    /* garbage: sizes whose hash count does not match the length */
    uint8_t junk[8 + 3 * H];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 151 + 7);
    assert_int_equal(mv_merkle_frontier_decode(junk, sizeof junk, &g, &err), MV_EMALFORMED);
    assert_true(err.msg[0] != '\0');
    memset(junk, 0xff, 8);
    assert_int_equal(mv_merkle_frontier_decode(junk, sizeof junk, &g, &err), MV_ELIMIT);
    memset(junk, 0, 8);
    junk[7] = 7; /* three hashes */
    assert_int_equal(mv_merkle_frontier_decode(junk, sizeof junk, &g, &err), MV_OK);
    assert_int_equal(mv_merkle_frontier_decode(junk, 0, &g, &err), MV_EMALFORMED);
    assert_int_equal(mv_merkle_frontier_decode(NULL, 0, &g, &err), MV_EMALFORMED);
    mv_buf_free(&b);
}

int main(void)
{
    make_leaves();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values), cmocka_unit_test(test_known_proofs),
        cmocka_unit_test(test_exhaustive),   cmocka_unit_test(test_proof_errors),
        cmocka_unit_test(test_huge),         cmocka_unit_test(test_frontier_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
