import { ByteReader, ByteWriter } from '../common/binary.ts'
import { DecodeError } from '../common/errors.ts'
import { BLS_SIGNATURE_LENGTH } from '../crypto/bls.ts'
import { ED25519_SIGNATURE_LENGTH } from '../crypto/ed25519.ts'
import { sha256 } from '../crypto/merkle.ts'
import { type HeightCertificate, readHeight, writeHeight } from './certificate.ts'
import type { BrokerLimits } from './params.ts'
import { FrameKind } from './wire.ts'

const VERSION = 1

/** A client that did not co-sign the root: its entry travels with its original signature. */
export interface Straggler {
  /** Index of its entry in the batch. */
  index: number
  /** Its original sequence number. */
  sequence: number
  /** Its ed25519 submission signature. */
  signature: Uint8Array
}

/** A distilled batch (see DESIGN.md, Chop Chop steps 3–5). */
export interface DistilledBatch {
  /** The broker's counter (distinguishes batches with equal content). */
  batchNumber: number
  /** Entries per Merkle leaf. */
  entriesPerLeaf: number
  /** Every signer's sequence number. */
  raise: number
  /** The height that bounds the raise. */
  height: HeightCertificate
  /** Client ids, strictly ascending. */
  ids: Uint32Array
  /** Payloads, one per id. */
  payloads: Uint8Array[]
  /** Aggregate BLS signature of every non-straggler on the root, when there is any. */
  aggregate?: Uint8Array
  /** Stragglers, by ascending index. */
  stragglers: Straggler[]
}

function bitWidth(v: number): number {
  return v === 0 ? 0 : 32 - Math.clz32(v)
}

/**
 * Encodes a distilled batch as a server frame. Ids are delta-coded and bit-packed (gap − 1
 * in the fewest bits that hold the largest gap: 0 bits per id for a dense run); payloads
 * of equal length are written back to back after one length.
 */
export function encodeDistilledBatch(b: DistilledBatch): Uint8Array {
  const n = b.ids.length
  let payloadBytes = 0
  for (const p of b.payloads) payloadBytes += p.length
  const w = new ByteWriter(256 + payloadBytes + n + b.stragglers.length * 80)
  w.u8(FrameKind.Batch).u8(VERSION).varint(b.batchNumber).u8(b.entriesPerLeaf)
  w.varint(n).varint(b.raise)
  writeHeight(w, b.height)
  // Ids: first id, then gap − 1 bit-packed LSB first.
  w.varint(n === 0 ? 0 : b.ids[0])
  let maxGap = 0
  for (let i = 1; i < n; i++) maxGap = Math.max(maxGap, b.ids[i] - b.ids[i - 1] - 1)
  const width = bitWidth(maxGap)
  w.u8(width)
  const packed = new Uint8Array(Math.ceil(((n > 0 ? n - 1 : 0) * width) / 8))
  let bit = 0
  for (let i = 1; i < n && width > 0; i++) {
    const gap = b.ids[i] - b.ids[i - 1] - 1
    for (let k = 0; k < width; k++, bit++) if ((gap >>> k) & 1) packed[bit >>> 3] |= 1 << (bit & 7)
  }
  w.raw(packed)
  // Payloads.
  const fixed = n > 0 && b.payloads.every((p) => p.length === b.payloads[0].length)
  if (fixed) {
    w.u8(0).varint(b.payloads[0].length)
    for (const p of b.payloads) w.raw(p)
  } else {
    w.u8(1)
    for (const p of b.payloads) w.bytes(p)
  }
  if (b.aggregate !== undefined) w.u8(1).raw(b.aggregate)
  else w.u8(0)
  w.varint(b.stragglers.length)
  let prev = -1
  for (const s of b.stragglers) {
    w.varint(s.index - prev - 1)
      .varint(s.sequence)
      .raw(s.signature)
    prev = s.index
  }
  return w.finish()
}

/** Decodes a distilled batch frame, enforcing `limits`; payloads are views into `frame`. */
export function decodeDistilledBatch(frame: Uint8Array, limits: BrokerLimits): DistilledBatch {
  const r = new ByteReader(frame)
  if (r.u8() !== FrameKind.Batch) throw new DecodeError('not a distilled batch')
  if (r.u8() !== VERSION) throw new DecodeError('unknown distilled batch version')
  const batchNumber = r.varint()
  const entriesPerLeaf = r.u8()
  if (entriesPerLeaf === 0 || entriesPerLeaf > limits.maxEntriesPerLeaf) {
    throw new DecodeError(`${entriesPerLeaf} entries per leaf`)
  }
  const n = r.varint(limits.maxBatchEntries)
  if (n === 0) throw new DecodeError('empty batch')
  const raise = r.varint()
  const height = readHeight(r, limits.maxServers)
  const ids = new Uint32Array(n)
  ids[0] = r.varint(limits.maxClients - 1)
  const width = r.u8()
  if (width > Math.min(31, bitWidth(limits.maxClients))) throw new DecodeError(`id width ${width}`)
  const packed = r.raw(Math.ceil(((n - 1) * width) / 8))
  let bit = 0
  for (let i = 1; i < n; i++) {
    let gap = 0
    for (let k = 0; k < width; k++, bit++) gap |= ((packed[bit >>> 3] >>> (bit & 7)) & 1) << k
    const id = ids[i - 1] + gap + 1
    if (id >= limits.maxClients) throw new DecodeError(`client id ${id} out of range`)
    ids[i] = id
  }
  const payloads = new Array<Uint8Array>(n)
  const mode = r.u8()
  if (mode === 0) {
    const len = r.varint(limits.maxPayload)
    for (let i = 0; i < n; i++) payloads[i] = r.raw(len)
  } else if (mode === 1) {
    for (let i = 0; i < n; i++) payloads[i] = r.bytes(limits.maxPayload)
  } else {
    throw new DecodeError(`payload mode ${mode}`)
  }
  const hasAggregate = r.u8()
  if (hasAggregate > 1) throw new DecodeError('bad aggregate flag')
  const aggregate = hasAggregate === 1 ? r.raw(BLS_SIGNATURE_LENGTH) : undefined
  const s = r.varint(n)
  const stragglers: Straggler[] = []
  let prev = -1
  for (let i = 0; i < s; i++) {
    const index = prev + 1 + r.varint(n)
    if (index >= n) throw new DecodeError('straggler index out of range')
    stragglers.push({ index, sequence: r.varint(), signature: r.raw(ED25519_SIGNATURE_LENGTH) })
    prev = index
  }
  r.end()
  return { batchNumber, entriesPerLeaf, raise, height, ids, payloads, aggregate, stragglers }
}

/** The digest that names a batch (sha256 of its frame): what witnesses sign and consensus orders. */
export function batchDigest(frame: Uint8Array): Uint8Array {
  return sha256(frame)
}
