/**
 * Crypto primitives: the native hot paths (node:crypto ed25519 and sha256, @chainsafe/blst)
 * beside the portable pure-JS paths (@noble/ed25519, @noble/curves, @noble/hashes), in one
 * process. Prints ops/s and the native/portable ratio.
 */
import { randomBytes } from 'node:crypto'
import { aggregatePublicKeys, PublicKey, Signature } from '@chainsafe/blst'
import { bls12_381 } from '@noble/curves/bls12-381.js'
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'
import { BlsKeyPair, blsSigningInput, blsVerifyAggregate } from '../src/crypto/bls.ts'
import {
  Ed25519KeyPair,
  importEd25519PublicKey,
  nobleEd25519,
  verifyEd25519Prepared,
} from '../src/crypto/ed25519.ts'
import { MerkleTree } from '../src/crypto/merkle.ts'
import { printTable, type Row, writeResults } from './report.ts'

const ETH_POP_DST = 'BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_'
const noble = bls12_381.longSignatures

/** Runs `fn` repeatedly for about `budgetMs` (at least `minRuns` times); returns ops/s. */
function opsPerSecond(fn: (i: number) => void, budgetMs = 400, minRuns = 3): number {
  fn(0) // warm up
  let runs = 0
  const start = performance.now()
  while (runs < minRuns || performance.now() - start < budgetMs) fn(runs++)
  return (runs / (performance.now() - start)) * 1000
}

const rows: Row[] = []
const results: Record<string, { native: number; portable: number; ratio: number }> = {}
function compare(op: string, nativeOps: number, portableOps: number): void {
  const ratio = nativeOps / portableOps
  results[op] = { native: nativeOps, portable: portableOps, ratio }
  rows.push({
    operation: op,
    'native ops/s': nativeOps,
    'portable ops/s': portableOps,
    'native / portable': `${ratio.toFixed(1)}x`,
  })
}

// ed25519: native with a prepared KeyObject vs @noble/ed25519.
const edPair = Ed25519KeyPair.generate()
const edKey = importEd25519PublicKey(edPair.publicKey)!
const edMsg = new Uint8Array(randomBytes(48))
const edSig = edPair.sign(edMsg)
compare(
  'ed25519 sign',
  opsPerSecond(() => edPair.sign(edMsg)),
  opsPerSecond(() => nobleEd25519.sign(edPair.secretKey, edMsg)),
)
compare(
  'ed25519 verify',
  opsPerSecond(() => verifyEd25519Prepared(edKey, edMsg, edSig)),
  opsPerSecond(() => nobleEd25519.verify(edPair.publicKey, edMsg, edSig)),
)

// BLS12-381 (min-pk): blst vs @noble/curves.
const blsPair = BlsKeyPair.generate()
const root = new Uint8Array(randomBytes(32))
const blsSig = blsPair.sign(root)
const nobleMsg = noble.hash(blsSigningInput(root), ETH_POP_DST)
compare(
  'BLS sign',
  opsPerSecond(() => blsPair.sign(root)),
  opsPerSecond(() =>
    noble.sign(noble.hash(blsSigningInput(root), ETH_POP_DST), blsPair.secretKey.toBytes()),
  ),
)
compare(
  'BLS signature decode + subgroup check',
  opsPerSecond(() => Signature.fromBytes(blsSig, true)),
  opsPerSecond(() => noble.Signature.fromBytes(blsSig).assertValidity()),
)

// Aggregating 65,536 public keys (what a server does per distilled batch). 256 distinct
// keys are repeated to keep setup short; the additions performed are the same.
const N = 65_536
const pairs = Array.from({ length: 256 }, () => BlsKeyPair.generate())
const pks = pairs.map((p) => PublicKey.fromBytes(p.publicKey, true))
const allPks = Array.from({ length: N }, (_, i) => pks[i % pks.length])
const noblePoints = pairs.map((p) => bls12_381.G1.Point.fromBytes(p.publicKey))
const allNoble = Array.from({ length: N }, (_, i) => noblePoints[i % noblePoints.length])
compare(
  `aggregate ${N.toLocaleString('en-US')} public keys`,
  opsPerSecond(() => aggregatePublicKeys(allPks, false), 600),
  opsPerSecond(() => noble.aggregatePublicKeys(allNoble), 600, 2),
)

// One aggregate verification of a multi-signature by 256 signers. The native path also sums
// the 256 keys, decodes the signature and hashes the message to G2 on every call; the
// portable one gets the key sum and the hashed message precomputed, so the ratio is a floor.
const shares = pairs.map((p) => p.sign(root))
const aggregate = noble.aggregateSignatures(shares.map((s) => noble.Signature.fromBytes(s)))
const aggregateBytes = aggregate.toBytes(true)
const aggregatePk = noble.aggregatePublicKeys(noblePoints)
compare(
  'verify one aggregate signature',
  opsPerSecond(() => blsVerifyAggregate(pks, root, aggregateBytes)),
  opsPerSecond(() => noble.verify(aggregate, nobleMsg, aggregatePk), 600, 2),
)

// sha256 Merkle tree of 65,536 leaves of 24 bytes (a distilled entry's size).
const leaves = Array.from({ length: N }, () => new Uint8Array(randomBytes(24)))
compare(
  `Merkle tree of ${N.toLocaleString('en-US')} leaves`,
  opsPerSecond(() => MerkleTree.build(leaves), 1000),
  opsPerSecond(() => MerkleTree.build(leaves, nobleSha256), 1000),
)

printTable('crypto primitives: native beside portable (pure JS), same process', rows)
writeResults('crypto', results)
