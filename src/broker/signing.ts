/**
 * The exact bytes each signature of the broker protocol covers. Every input starts with
 * its own tag, so a signature made for one purpose is never valid for another.
 */

const encoder = new TextEncoder()
const SUBMIT_TAG = encoder.encode('cm/broker/submit/v1\0')
const BATCH_TAG = encoder.encode('cm/broker/batch/v1\0')
const WITNESS_TAG = encoder.encode('cm/broker/witness/v1\0')
const DELIVERED_TAG = encoder.encode('cm/broker/delivered/v1\0')

/** Writes a safe integer as 8 little-endian bytes (no BigInt on the hot path). */
function writeU64(out: Uint8Array, offset: number, v: number): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  view.setUint32(offset, v >>> 0, true)
  view.setUint32(offset + 4, Math.floor(v / 2 ** 32), true)
}

/** What a client's ed25519 signature on a submission covers: tag ‖ id ‖ sequence ‖ payload. */
export function submissionInput(id: number, sequence: number, payload: Uint8Array): Uint8Array {
  const t = SUBMIT_TAG.length
  const out = new Uint8Array(t + 12 + payload.length)
  out.set(SUBMIT_TAG, 0)
  new DataView(out.buffer).setUint32(t, id, true)
  writeU64(out, t + 4, sequence)
  out.set(payload, t + 12)
  return out
}

/** What a client's BLS share covers: tag ‖ Merkle root of the batch. */
export function batchRootInput(root: Uint8Array): Uint8Array {
  const out = new Uint8Array(BATCH_TAG.length + root.length)
  out.set(BATCH_TAG, 0)
  out.set(root, BATCH_TAG.length)
  return out
}

/** What a server's witness shard covers: tag ‖ digest of the distilled batch. */
export function witnessInput(digest: Uint8Array): Uint8Array {
  const out = new Uint8Array(WITNESS_TAG.length + digest.length)
  out.set(WITNESS_TAG, 0)
  out.set(digest, WITNESS_TAG.length)
  return out
}

/** What a server's delivery shard covers: tag ‖ slot ‖ Merkle root of the delivered batch. */
export function deliveryInput(slot: number, root: Uint8Array): Uint8Array {
  const t = DELIVERED_TAG.length
  const out = new Uint8Array(t + 8 + root.length)
  out.set(DELIVERED_TAG, 0)
  writeU64(out, t, slot)
  out.set(root, t + 8)
  return out
}
