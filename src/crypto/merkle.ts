import { hash } from 'node:crypto'
import { DecodeError } from '../common/errors.ts'

/** A hash function returning 32 bytes. */
export type HashFunction = (data: Uint8Array) => Uint8Array

/** Bytes in a Merkle node hash. */
export const MERKLE_HASH_LENGTH = 32

/** sha256 through node:crypto's one-shot `hash` (the hot path). */
export const sha256: HashFunction = (data) => {
  const d = hash('sha256', data, 'buffer')
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
}

// Domain separation (RFC 6962 style): a leaf can never be mistaken for an inner node.
const LEAF_PREFIX = 0x00
const INNER_PREFIX = 0x01

function hashLeaves(leaves: readonly Uint8Array[], h: HashFunction): Uint8Array[] {
  let max = 0
  for (const leaf of leaves) if (leaf.length > max) max = leaf.length
  const scratch = new Uint8Array(max + 1)
  scratch[0] = LEAF_PREFIX
  const out = new Array<Uint8Array>(leaves.length)
  for (let i = 0; i < leaves.length; i++) {
    scratch.set(leaves[i], 1)
    out[i] = h(scratch.subarray(0, leaves[i].length + 1))
  }
  return out
}

function hashLevel(level: Uint8Array[], scratch: Uint8Array, h: HashFunction): Uint8Array[] {
  const next = new Array<Uint8Array>(Math.ceil(level.length / 2))
  for (let i = 0; i + 1 < level.length; i += 2) {
    scratch.set(level[i], 1)
    scratch.set(level[i + 1], 1 + MERKLE_HASH_LENGTH)
    next[i >>> 1] = h(scratch)
  }
  // An odd last node is promoted unchanged (not paired with itself, which would let two
  // different leaf lists share a root).
  if (level.length % 2 === 1) next[next.length - 1] = level[level.length - 1]
  return next
}

function innerScratch(): Uint8Array {
  const scratch = new Uint8Array(1 + 2 * MERKLE_HASH_LENGTH)
  scratch[0] = INNER_PREFIX
  return scratch
}

/**
 * A binary sha256 Merkle tree over byte-string leaves, with inclusion proofs. Leaves are
 * hashed as H(0x00 ‖ leaf) and inner nodes as H(0x01 ‖ left ‖ right).
 */
export class MerkleTree {
  /** Every level, leaves' hashes first, root last. */
  private readonly levels: Uint8Array[][]

  private constructor(levels: Uint8Array[][]) {
    this.levels = levels
  }

  /** Builds the tree of `leaves` (at least one). */
  static build(leaves: readonly Uint8Array[], h: HashFunction = sha256): MerkleTree {
    if (leaves.length === 0) throw new DecodeError('a Merkle tree needs at least one leaf')
    const levels = [hashLeaves(leaves, h)]
    const scratch = innerScratch()
    while (levels[levels.length - 1].length > 1) {
      levels.push(hashLevel(levels[levels.length - 1], scratch, h))
    }
    return new MerkleTree(levels)
  }

  /** The root hash. */
  get root(): Uint8Array {
    return this.levels[this.levels.length - 1][0]
  }

  /** The number of leaves. */
  get leafCount(): number {
    return this.levels[0].length
  }

  /** The sibling hashes from leaf `index` up to the root (promoted levels have none). */
  proof(index: number): Uint8Array[] {
    if (!Number.isInteger(index) || index < 0 || index >= this.leafCount) {
      throw new RangeError(`leaf index ${index} out of range`)
    }
    const out: Uint8Array[] = []
    let i = index
    for (let l = 0; l < this.levels.length - 1; l++) {
      const level = this.levels[l]
      const sibling = i ^ 1
      if (sibling < level.length) out.push(level[sibling])
      i >>>= 1
    }
    return out
  }
}

/** The root of `leaves` without keeping the tree (what a verifier needs). */
export function merkleRoot(leaves: readonly Uint8Array[], h: HashFunction = sha256): Uint8Array {
  if (leaves.length === 0) throw new DecodeError('a Merkle tree needs at least one leaf')
  let level = hashLeaves(leaves, h)
  const scratch = innerScratch()
  while (level.length > 1) level = hashLevel(level, scratch, h)
  return level[0]
}

/** The number of sibling hashes in a proof for leaf `index` of a tree of `count` leaves. */
export function merkleProofLength(index: number, count: number): number {
  let n = 0
  for (let width = count, i = index; width > 1; width = Math.ceil(width / 2), i >>>= 1) {
    if ((i ^ 1) < width) n++
  }
  return n
}

/** True when `proof` shows that `leaf` is leaf `index` of the `count`-leaf tree with `root`. */
export function verifyMerkleProof(
  root: Uint8Array,
  leaf: Uint8Array,
  index: number,
  count: number,
  proof: readonly Uint8Array[],
  h: HashFunction = sha256,
): boolean {
  if (!Number.isInteger(index) || !Number.isInteger(count) || index < 0 || index >= count) {
    return false
  }
  if (proof.length !== merkleProofLength(index, count)) return false
  let node = hashLeaves([leaf], h)[0]
  const scratch = innerScratch()
  let k = 0
  for (let width = count, i = index; width > 1; width = Math.ceil(width / 2), i >>>= 1) {
    const sibling = i ^ 1
    if (sibling >= width) continue
    const s = proof[k++]
    if (s.length !== MERKLE_HASH_LENGTH) return false
    scratch.set(i & 1 ? s : node, 1)
    scratch.set(i & 1 ? node : s, 1 + MERKLE_HASH_LENGTH)
    node = h(scratch)
  }
  return Buffer.compare(node, root) === 0
}
