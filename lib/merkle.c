/* SPDX-License-Identifier: MIT */
/* merkle.c - RFC 6962 / RFC 9162 Merkle tree: hashing, frontier, proofs. */
#include "merkle.h"

#include <string.h>

#include <openssl/evp.h>

#include "digest.h"

void mv_merkle_leaf_hash(const void *data, size_t n, uint8_t out[32])
{
    static const uint8_t prefix = 0x00;
    unsigned int l = 32;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || !EVP_DigestInit_ex(c, mv_md_sha256(), NULL) || !EVP_DigestUpdate(c, &prefix, 1) ||
        (n && !EVP_DigestUpdate(c, data, n)) || !EVP_DigestFinal_ex(c, out, &l))
        mv_assert_fail("SHA-256 of a Merkle leaf", __FILE__, __LINE__);
    EVP_MD_CTX_free(c);
}

void mv_merkle_node_hash(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
    /* one buffer, so out may alias l or r */
    uint8_t b[1 + 2 * MV_MERKLE_HASH];
    b[0] = 0x01;
    memcpy(b + 1, l, MV_MERKLE_HASH);
    memcpy(b + 1 + MV_MERKLE_HASH, r, MV_MERKLE_HASH);
    mv_sha256(b, sizeof b, out);
}

void mv_merkle_empty_root(uint8_t out[32])
{
    mv_sha256("", 0, out);
}

/* ---- frontier ------------------------------------------------------------ */

void mv_merkle_frontier_init(mv_merkle_frontier *f)
{
    memset(f, 0, sizeof *f);
}

void mv_merkle_frontier_append(mv_merkle_frontier *f, const uint8_t leaf[32], mv_merkle_node_fn fn,
                               void *ctx)
{
    /* a full 64-bit counter would carry out of h[63] */
    mv_assert(f->size != UINT64_MAX);
    uint8_t cur[MV_MERKLE_HASH];
    memcpy(cur, leaf, MV_MERKLE_HASH);
    uint64_t index = f->size;
    unsigned level = 0;
    if (fn)
        fn(ctx, 0, index, cur);
    /* each set low bit is a perfect subtree of the same size to our left:
     * merge with it, as a binary counter carries */
    while ((f->size >> level) & 1) {
        mv_merkle_node_hash(f->h[level], cur, cur);
        memset(f->h[level], 0, MV_MERKLE_HASH);
        level++;
        index >>= 1;
        if (fn)
            fn(ctx, level, index, cur);
    }
    memcpy(f->h[level], cur, MV_MERKLE_HASH);
    f->size++;
}

void mv_merkle_frontier_root(const mv_merkle_frontier *f, uint8_t out[32])
{
    if (f->size == 0) {
        mv_merkle_empty_root(out);
        return;
    }
    /* the smallest subtree is the deepest right edge: fold leftwards */
    unsigned i = (unsigned)__builtin_ctzll(f->size);
    uint8_t acc[MV_MERKLE_HASH];
    memcpy(acc, f->h[i], MV_MERKLE_HASH);
    for (i++; i < 64; i++)
        if ((f->size >> i) & 1)
            mv_merkle_node_hash(f->h[i], acc, acc);
    memcpy(out, acc, MV_MERKLE_HASH);
}

void mv_merkle_frontier_encode(const mv_merkle_frontier *f, mv_buf *out)
{
    mv_buf_put_u64(out, f->size);
    for (unsigned i = 0; i < 64; i++)
        if ((f->size >> i) & 1)
            mv_buf_append(out, f->h[i], MV_MERKLE_HASH);
}

mv_status mv_merkle_frontier_decode(const uint8_t *p, size_t n, mv_merkle_frontier *f, mv_err *err)
{
    mv_merkle_frontier_init(f);
    if (n < 8)
        return mv_err_set(err, MV_EMALFORMED, "merkle frontier: %zu bytes, shorter than its size",
                          n);
    uint64_t size = mv_be64_get(p);
    if (size == UINT64_MAX)
        return mv_err_set(err, MV_ELIMIT, "merkle frontier: tree size 2^64-1 is full");
    size_t need = 8 + (size_t)__builtin_popcountll(size) * MV_MERKLE_HASH;
    if (n != need)
        return mv_err_set(err, MV_EMALFORMED,
                          "merkle frontier: %zu bytes, a tree of %llu leaves needs %zu", n,
                          (unsigned long long)size, need);
    const uint8_t *q = p + 8;
    for (unsigned i = 0; i < 64; i++)
        if ((size >> i) & 1) {
            memcpy(f->h[i], q, MV_MERKLE_HASH);
            q += MV_MERKLE_HASH;
        }
    f->size = size;
    return MV_OK;
}

/* ---- proofs -------------------------------------------------------------- */

/* split_point - the largest power of two smaller than len (len >= 2): where
 * RFC 6962 splits D[0:len] into its two children. */
static uint64_t split_point(uint64_t len)
{
    return (uint64_t)1 << (63 - __builtin_clzll(len - 1));
}

/* range_hash - MTH(D[lo:lo+len]) for len >= 1, lo a multiple of the
 * smallest power of two >= len (true of every subtree RFC 6962 builds).
 * Such a range is the perfect subtrees of len's set bits, largest first;
 * each is fetched with one get and they fold from the right. */
static mv_status range_hash(uint64_t lo, uint64_t len, mv_merkle_get_fn get, void *ctx,
                            uint8_t out[32], mv_err *err)
{
    uint8_t acc[MV_MERKLE_HASH], h[MV_MERKLE_HASH];
    int first = 1;
    for (unsigned i = 0; i < 64; i++) {
        if (!((len >> i) & 1))
            continue;
        /* bit i of len is the subtree after those of the higher bits */
        uint64_t index = (lo >> i) + ((len >> i) ^ 1);
        mv_status s = get(ctx, i, index, first ? acc : h, err);
        if (s != MV_OK)
            return s;
        if (!first)
            mv_merkle_node_hash(h, acc, acc);
        first = 0;
    }
    memcpy(out, acc, MV_MERKLE_HASH);
    return MV_OK;
}

/* reverse - proofs are found from the root down; RFC 9162 lists them from
 * the leaf up. */
static void reverse(uint8_t proof[][32], size_t n)
{
    uint8_t t[MV_MERKLE_HASH];
    for (size_t i = 0; i < n / 2; i++) {
        memcpy(t, proof[i], MV_MERKLE_HASH);
        memcpy(proof[i], proof[n - 1 - i], MV_MERKLE_HASH);
        memcpy(proof[n - 1 - i], t, MV_MERKLE_HASH);
    }
}

mv_status mv_merkle_root_at(uint64_t size, mv_merkle_get_fn get, void *ctx, uint8_t out[32],
                            mv_err *err)
{
    if (size == 0) {
        mv_merkle_empty_root(out);
        return MV_OK;
    }
    return range_hash(0, size, get, ctx, out, err);
}

mv_status mv_merkle_inclusion_proof(uint64_t index, uint64_t size, mv_merkle_get_fn get, void *ctx,
                                    uint8_t proof[][32], size_t *n, mv_err *err)
{
    *n = 0;
    if (index >= size)
        return mv_err_set(err, MV_EUSAGE, "merkle inclusion proof: leaf %llu of a tree of %llu",
                          (unsigned long long)index, (unsigned long long)size);
    /* PATH(m, D[lo:lo+len]) walked downwards: the sibling of the child that
     * holds the leaf at each step.  Every step at least halves the next
     * power of two >= len, so there are at most 64. */
    uint64_t lo = 0, len = size;
    size_t cnt = 0;
    while (len > 1) {
        uint64_t k = split_point(len);
        mv_status s;
        if (index < lo + k) {
            s = range_hash(lo + k, len - k, get, ctx, proof[cnt], err);
            len = k;
        } else {
            s = range_hash(lo, k, get, ctx, proof[cnt], err);
            lo += k;
            len -= k;
        }
        if (s != MV_OK)
            return s;
        cnt++;
    }
    reverse(proof, cnt);
    *n = cnt;
    return MV_OK;
}

mv_status mv_merkle_consistency_proof(uint64_t size1, uint64_t size2, mv_merkle_get_fn get,
                                      void *ctx, uint8_t proof[][32], size_t *n, mv_err *err)
{
    *n = 0;
    if (size1 > size2)
        return mv_err_set(err, MV_EUSAGE,
                          "merkle consistency proof: old size %llu beyond new size %llu",
                          (unsigned long long)size1, (unsigned long long)size2);
    if (size1 == 0 || size1 == size2)
        return MV_OK;
    /* SUBPROOF(m, D[lo:lo+len], b) walked downwards; `whole` is b: the old
     * tree is still the left edge, so its root need not be sent. */
    uint64_t lo = 0, len = size2, m = size1;
    int whole = 1;
    size_t cnt = 0;
    for (;;) {
        uint64_t rlo, rlen;
        int last = 0;
        if (m == len) {
            if (whole)
                break;
            /* the old tree's last subtree, right of the edge: send it */
            rlo = lo;
            rlen = len;
            last = 1;
        } else {
            uint64_t k = split_point(len);
            if (m <= k) {
                rlo = lo + k;
                rlen = len - k;
                len = k;
            } else {
                rlo = lo;
                rlen = k;
                lo += k;
                m -= k;
                len -= k;
                whole = 0;
            }
        }
        if (cnt == MV_MERKLE_MAX_PROOF)
            return mv_err_set(
                err, MV_ELIMIT, "merkle consistency proof %llu..%llu: more than %d nodes",
                (unsigned long long)size1, (unsigned long long)size2, MV_MERKLE_MAX_PROOF);
        mv_status s = range_hash(rlo, rlen, get, ctx, proof[cnt], err);
        if (s != MV_OK)
            return s;
        cnt++;
        if (last)
            break;
    }
    reverse(proof, cnt);
    *n = cnt;
    return MV_OK;
}

/* ---- checks -------------------------------------------------------------- */

int mv_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[32],
                               const uint8_t proof[][32], size_t n, const uint8_t root[32])
{
    if (index >= size)
        return 0;
    uint64_t fn = index, sn = size - 1;
    uint8_t r[MV_MERKLE_HASH];
    memcpy(r, leaf, MV_MERKLE_HASH);
    for (size_t i = 0; i < n; i++) {
        if (sn == 0)
            return 0;
        if ((fn & 1) || fn == sn) {
            mv_merkle_node_hash(proof[i], r, r);
            /* a right-edge node with no right sibling rises for free */
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            mv_merkle_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(r, root, MV_MERKLE_HASH) == 0;
}

int mv_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t root1[32],
                                 const uint8_t root2[32], const uint8_t proof[][32], size_t n)
{
    if (size1 > size2)
        return 0;
    if (size1 == size2)
        return n == 0 && memcmp(root1, root2, MV_MERKLE_HASH) == 0;
    if (size1 == 0)
        return n == 0;
    if (n == 0)
        return 0;
    /* an old tree that is a perfect subtree is a node of the new one: its
     * root is the path's first element instead of being sent */
    size_t i = 0;
    const uint8_t *seed = (size1 & (size1 - 1)) == 0 ? root1 : proof[i++];
    uint64_t fn = size1 - 1, sn = size2 - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    uint8_t fr[MV_MERKLE_HASH], sr[MV_MERKLE_HASH];
    memcpy(fr, seed, MV_MERKLE_HASH);
    memcpy(sr, seed, MV_MERKLE_HASH);
    for (; i < n; i++) {
        if (sn == 0)
            return 0;
        if ((fn & 1) || fn == sn) {
            mv_merkle_node_hash(proof[i], fr, fr);
            mv_merkle_node_hash(proof[i], sr, sr);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            mv_merkle_node_hash(sr, proof[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(fr, root1, MV_MERKLE_HASH) == 0 &&
           memcmp(sr, root2, MV_MERKLE_HASH) == 0;
}
