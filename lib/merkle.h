/* SPDX-License-Identifier: MIT */
/* merkle.h - RFC 6962 / RFC 9162 Merkle tree hashing (SHA-256): the
 * append-only frontier of a growing tree, inclusion and consistency proofs
 * generated over a store of perfect-subtree hashes, and their checks.
 *
 * Everything here is pure: no I/O, no allocation by this module (hashing
 * goes through OpenSSL EVP with the digest fetched once, lib/digest.h).
 * Failures of OpenSSL itself are not recoverable here and abort
 * (mv_assert), as in lib/digest.c.  All functions are thread-safe on
 * distinct arguments.
 *
 * Terms.  A tree of `size` leaves D[0:size].  The perfect subtree
 * (level, index) is the subtree of 2^level leaves D[index*2^level :
 * (index+1)*2^level]; its hash is MTH of those leaves.  Level 0 is a leaf
 * hash.  Hashes are MV_MERKLE_HASH bytes. */
#ifndef MV_LIB_MERKLE_H
#define MV_LIB_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define MV_MERKLE_HASH 32
/* The longest proof any function here produces or a caller must make room
 * for: an inclusion proof has at most ceil(log2(size)) <= 64 nodes; a
 * consistency proof ceil(log2(size2)) + 1, which exceeds 64 only for
 * size2 > 2^63 (such proofs are refused with MV_ELIMIT). */
#define MV_MERKLE_MAX_PROOF 64
/* mv_merkle_frontier_encode output: at most 8 + 64 * 32 bytes. */
#define MV_MERKLE_FRONTIER_MAX_ENCODED (8 + 64 * MV_MERKLE_HASH)

/* mv_merkle_leaf_hash - SHA-256(0x00 || data[0..n)) into out. */
void mv_merkle_leaf_hash(const void *data, size_t n, uint8_t out[32]);
/* mv_merkle_node_hash - SHA-256(0x01 || l || r) into out (out may alias l or r). */
void mv_merkle_node_hash(const uint8_t l[32], const uint8_t r[32], uint8_t out[32]);
/* mv_merkle_empty_root - the root of the empty tree, SHA-256(""). */
void mv_merkle_empty_root(uint8_t out[32]);

/* The right edge of a tree of `size` leaves: h[i] is the root of the perfect
 * subtree of 2^i leaves, present when bit i of size is set (the others are
 * unspecified).  Enough to append and to get the root.  A plain value: copy
 * it freely.  size is at most UINT64_MAX - 1 before an append. */
typedef struct mv_merkle_frontier {
    uint64_t size;
    uint8_t h[64][32];
} mv_merkle_frontier;

/* mv_merkle_frontier_init - the empty tree. */
void mv_merkle_frontier_init(mv_merkle_frontier *f);

/* Called for every node completed by an append: level 0 is the leaf itself
 * (index = leaf index), level k the perfect subtree of 2^k leaves starting
 * at leaf index*2^k.  Nodes of one append come lowest level first.  h is
 * borrowed for the duration of the call. */
typedef void (*mv_merkle_node_fn)(void *ctx, unsigned level, uint64_t index, const uint8_t h[32]);

/* mv_merkle_frontier_append - append the leaf whose leaf hash (already
 * SHA-256(0x00 || data)) is `leaf`; fn (may be NULL) sees each node
 * completed, so a caller can keep every perfect subtree for proofs.
 * Aborts if f->size is UINT64_MAX (unreachable in practice). */
void mv_merkle_frontier_append(mv_merkle_frontier *f, const uint8_t leaf[32], mv_merkle_node_fn fn,
                               void *ctx);
/* mv_merkle_frontier_root - MTH of the tree f describes (the empty root for size 0). */
void mv_merkle_frontier_root(const mv_merkle_frontier *f, uint8_t out[32]);

/* mv_merkle_frontier_encode - append the compact form to out: 8-byte
 * big-endian size, then only the set h[i], lowest i first (8 + 32 *
 * popcount(size) bytes). */
void mv_merkle_frontier_encode(const mv_merkle_frontier *f, mv_buf *out);
/* mv_merkle_frontier_decode - the inverse; the n bytes at p must be exactly
 * one encoding.  On failure *f is the empty tree.
 * @retval MV_EMALFORMED  shorter than 8 bytes, or not 8 + 32 * popcount(size) bytes
 * @retval MV_ELIMIT      size is UINT64_MAX (no further append would be possible) */
MV_NODISCARD mv_status mv_merkle_frontier_decode(const uint8_t *p, size_t n, mv_merkle_frontier *f,
                                                 mv_err *err);

/* Proof generation over a store of perfect-subtree hashes.
 *
 * get(ctx, level, index, out, err) must write the hash of the perfect subtree
 * (level, index); it is only ever asked for subtrees lying wholly inside the
 * tree of the size given ((index + 1) * 2^level <= size).  It returns MV_OK
 * or an error status, which is passed back unchanged (err is the caller's).
 * The hashes of incomplete right-edge subtrees are computed here (RFC 9162
 * §2.1.3.1 PATH, §2.1.4.1 PROOF/SUBPROOF), so a proof costs O(log^2 size)
 * gets at most, and usually O(log size).
 *
 * proof must have room for MV_MERKLE_MAX_PROOF nodes; *n receives the node
 * count (0 on failure).  Node order is that of RFC 9162, which
 * mv_merkle_verify_* expect: the node nearest the leaf (or the old tree)
 * first. */
typedef mv_status (*mv_merkle_get_fn)(void *ctx, unsigned level, uint64_t index, uint8_t out[32],
                                      mv_err *err);

/* mv_merkle_root_at - MTH(D[0:size]) from popcount(size) gets; the empty
 * root for size 0.
 * @retval any  status returned by get */
MV_NODISCARD mv_status mv_merkle_root_at(uint64_t size, mv_merkle_get_fn get, void *ctx,
                                         uint8_t out[32], mv_err *err);
/* mv_merkle_inclusion_proof - the audit path of leaf `index` in the tree of
 * `size` leaves (empty for size 1).
 * @retval MV_EUSAGE  index >= size
 * @retval any        status returned by get */
MV_NODISCARD mv_status mv_merkle_inclusion_proof(uint64_t index, uint64_t size,
                                                 mv_merkle_get_fn get, void *ctx,
                                                 uint8_t proof[][32], size_t *n, mv_err *err);
/* mv_merkle_consistency_proof - the proof that the tree of size1 leaves is
 * a prefix of the tree of size2 leaves.  Empty when size1 is 0 or equal to
 * size2 (the convention the check below follows).
 * @retval MV_EUSAGE  size1 > size2
 * @retval MV_ELIMIT  the proof would exceed MV_MERKLE_MAX_PROOF (size2 > 2^63 only)
 * @retval any        status returned by get */
MV_NODISCARD mv_status mv_merkle_consistency_proof(uint64_t size1, uint64_t size2,
                                                   mv_merkle_get_fn get, void *ctx,
                                                   uint8_t proof[][32], size_t *n, mv_err *err);

/* Checks, exactly the algorithms of RFC 9162 §2.1.3.2 / §2.1.4.2;
 * 1 = accepted, 0 = rejected.
 * proof holds n nodes (n may be anything: long proofs are simply rejected).
 *
 * Inclusion: rejected when index >= size.
 * Consistency: rejected when size1 > size2.  When size1 == size2 the proof
 * must be empty and root1 == root2.  When size1 == 0 the proof must be
 * empty, and nothing else is checked (every tree extends the empty tree;
 * its root is a constant the caller can compare itself). */
int mv_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[32],
                               const uint8_t proof[][32], size_t n, const uint8_t root[32]);
int mv_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t root1[32],
                                 const uint8_t root2[32], const uint8_t proof[][32], size_t n);

#endif
