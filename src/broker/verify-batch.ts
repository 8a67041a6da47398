import type { KeyObject } from 'node:crypto'
import { blsVerifyAggregate } from '../crypto/bls.ts'
import { verifyEd25519Prepared } from '../crypto/ed25519.ts'
import { merkleRoot } from '../crypto/merkle.ts'
import { verifyHeight } from './certificate.ts'
import type { Directory } from './directory.ts'
import type { DistilledBatch } from './distilled-batch.ts'
import { batchLeaves } from './leaf.ts'
import { batchRootInput, submissionInput } from './signing.ts'

/** Why a distilled batch was refused (stable reason strings, also used as stats keys). */
export type BatchFault =
  | 'unknown-client'
  | 'height-certificate'
  | 'inflated-raise'
  | 'bad-aggregate'
  | 'straggler-signature'
  | 'straggler-sequence'

/** The Merkle root of a distilled batch, recomputed from its entries. */
export function distilledRoot(batch: DistilledBatch): Uint8Array {
  return merkleRoot(batchLeaves(batch.raise, batch.ids, batch.payloads, batch.entriesPerLeaf))
}

/**
 * Authenticates a whole distilled batch the way a witness server does: ONE aggregate BLS
 * verification for every signer (with the directory's cached key sums), one ed25519 check
 * per straggler, the height certificate (f+1 delivery shards) and the raise bound.
 * Returns undefined when the batch is valid, or the first fault found.
 */
export function verifyDistilledBatch(
  batch: DistilledBatch,
  root: Uint8Array,
  directory: Directory,
  serverKeys: readonly KeyObject[],
  threshold: number,
): BatchFault | undefined {
  const n = batch.ids.length
  if (batch.ids[n - 1] >= directory.size) return 'unknown-client'
  const { height } = batch
  if (!verifyHeight(height, serverKeys, threshold)) return 'height-certificate'
  const bound = height.slot + 1
  if (batch.raise < 1 || batch.raise > bound) return 'inflated-raise'
  const isStraggler = new Uint8Array(n)
  for (const s of batch.stragglers) {
    if (s.sequence < 1 || s.sequence > bound) return 'straggler-sequence'
    isStraggler[s.index] = 1
  }
  const signers: number[] = []
  for (let i = 0; i < n; i++) if (isStraggler[i] === 0) signers.push(batch.ids[i])
  if (signers.length === 0) {
    if (batch.aggregate !== undefined) return 'bad-aggregate'
  } else if (
    batch.aggregate === undefined ||
    !blsVerifyAggregate(directory.aggregateKeyParts(signers), batchRootInput(root), batch.aggregate)
  ) {
    return 'bad-aggregate'
  }
  for (const s of batch.stragglers) {
    const id = batch.ids[s.index]
    const input = submissionInput(id, s.sequence, batch.payloads[s.index])
    if (!verifyEd25519Prepared(directory.ed25519Key(id), input, s.signature)) {
      return 'straggler-signature'
    }
  }
  return undefined
}
