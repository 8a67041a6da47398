import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MerkleTree, merkleRoot, sha256, verifyMerkleProof } from '../../src/crypto/merkle.ts'

const leavesArb = fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 70 })

describe('Merkle tree', () => {
  it('native sha256 matches @noble/hashes', () => {
    const data = new TextEncoder().encode('abc')
    expect(sha256(data)).toEqual(nobleSha256(data))
  })

  it('every proof verifies, and the root is the same with the portable hash', () => {
    fc.assert(
      fc.property(leavesArb, (leaves) => {
        const tree = MerkleTree.build(leaves)
        expect(merkleRoot(leaves)).toEqual(tree.root)
        expect(MerkleTree.build(leaves, nobleSha256).root).toEqual(tree.root)
        for (let i = 0; i < leaves.length; i++) {
          expect(verifyMerkleProof(tree.root, leaves[i], i, leaves.length, tree.proof(i))).toBe(
            true,
          )
        }
      }),
      { numRuns: 60 },
    )
  })

  it('rejects a wrong leaf, index, count, sibling or root', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), (raw, pick) => {
        fc.pre(raw.length > 2)
        const leaves = raw.map((l, k) => new Uint8Array([k & 0xff, k >> 8, ...l]))
        const tree = MerkleTree.build(leaves)
        const i = pick % leaves.length
        const proof = tree.proof(i)
        const n = leaves.length
        const other = new Uint8Array([...leaves[i], 1])
        expect(verifyMerkleProof(tree.root, other, i, n, proof)).toBe(false)
        // Leaves are made distinct below, so no other index holds this leaf.
        expect(verifyMerkleProof(tree.root, leaves[i], (i + 1) % n, n, proof)).toBe(false)
        expect(verifyMerkleProof(tree.root, leaves[i], i, i, proof)).toBe(false)
        const bad = proof.map((p) => p.slice())
        bad[0][0] ^= 1
        expect(verifyMerkleProof(tree.root, leaves[i], i, n, bad)).toBe(false)
        const root = tree.root.slice()
        root[31] ^= 1
        expect(verifyMerkleProof(root, leaves[i], i, n, proof)).toBe(false)
        expect(verifyMerkleProof(tree.root, leaves[i], i, n, proof.slice(1))).toBe(false)
      }),
      { numRuns: 60 },
    )
  })

  it('separates leaves from inner nodes (an inner node is not a leaf)', () => {
    const leaves = [
      new Uint8Array([1]),
      new Uint8Array([2]),
      new Uint8Array([3]),
      new Uint8Array([4]),
    ]
    const tree = MerkleTree.build(leaves)
    const h = (b: Uint8Array) => sha256(b)
    const l0 = h(new Uint8Array([0, 1]))
    const l1 = h(new Uint8Array([0, 2]))
    const inner = new Uint8Array([...l0, ...l1])
    // Claiming the concatenated children as a leaf of a 2-leaf tree must fail.
    const right = tree.proof(3)[1]
    expect(verifyMerkleProof(tree.root, inner, 0, 2, [right])).toBe(false)
  })
})
