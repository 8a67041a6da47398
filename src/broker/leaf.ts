import { ByteReader, ByteWriter } from '../common/binary.ts'
import { DecodeError } from '../common/errors.ts'
import type { BrokerLimits } from './params.ts'

/** One entry inside a Merkle leaf. */
export interface LeafEntry {
  /** Client id. */
  id: number
  /** Payload. */
  payload: Uint8Array
}

/** A decoded leaf: the batch's raise and up to `maxEntriesPerLeaf` entries. */
export interface Leaf {
  /** The sequence number every signer's entry is raised to. */
  raise: number
  /** The entries, by ascending id. */
  entries: LeafEntry[]
}

/**
 * The Merkle leaves of a batch: consecutive runs of `entriesPerLeaf` entries, each leaf
 * encoded as varint raise ‖ u8 count ‖ (u32 id ‖ varint length ‖ payload)*. Committing the
 * raise in every leaf lets a client check it from its own proof. All leaves are written
 * into one buffer (they are views into it).
 */
export function batchLeaves(
  raise: number,
  ids: ArrayLike<number>,
  payloads: readonly Uint8Array[],
  entriesPerLeaf: number,
): Uint8Array[] {
  let payloadBytes = 0
  for (const p of payloads) payloadBytes += p.length
  const w = new ByteWriter(payloadBytes + ids.length * 6 + (ids.length / entriesPerLeaf + 1) * 12)
  const ends: number[] = []
  for (let start = 0; start < ids.length; start += entriesPerLeaf) {
    const end = Math.min(ids.length, start + entriesPerLeaf)
    w.varint(raise).u8(end - start)
    for (let i = start; i < end; i++) w.u32(ids[i]).bytes(payloads[i])
    ends.push(w.length)
  }
  const all = w.finish()
  return ends.map((end, i) => all.subarray(i === 0 ? 0 : ends[i - 1], end))
}

/** Encodes one leaf (see {@link batchLeaves}). */
export function encodeLeaf(raise: number, entries: readonly LeafEntry[]): Uint8Array {
  return batchLeaves(
    raise,
    entries.map((e) => e.id),
    entries.map((e) => e.payload),
    Math.max(1, entries.length),
  )[0]
}

/** Decodes a Merkle leaf. */
export function decodeLeaf(leaf: Uint8Array, limits: BrokerLimits): Leaf {
  const r = new ByteReader(leaf)
  const raise = r.varint()
  const k = r.u8()
  if (k === 0 || k > limits.maxEntriesPerLeaf) throw new DecodeError(`leaf of ${k} entries`)
  const entries: LeafEntry[] = []
  for (let i = 0; i < k; i++) entries.push({ id: r.u32(), payload: r.bytes(limits.maxPayload) })
  r.end()
  return { raise, entries }
}
