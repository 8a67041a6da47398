import { ByteReader, ByteWriter } from '../common/binary.ts'
import { DecodeError } from '../common/errors.ts'
import { BLS_SIGNATURE_UNCOMPRESSED_LENGTH } from '../crypto/bls.ts'
import { ED25519_SIGNATURE_LENGTH } from '../crypto/ed25519.ts'
import { MERKLE_HASH_LENGTH } from '../crypto/merkle.ts'
import {
  type HeightCertificate,
  readHeight,
  readShards,
  type Shard,
  writeHeight,
  writeShards,
} from './certificate.ts'
import type { BrokerLimits } from './params.ts'

/**
 * Frame kinds of the broker protocol. Client ↔ broker frames are single UDP datagrams;
 * broker ↔ server frames travel on a framed TCP link.
 */
export const FrameKind = {
  /** Client → broker: a signed submission. */
  Submit: 0x01,
  /** Broker → client: the batch root and the client's inclusion proof. */
  Inclusion: 0x02,
  /** Client → broker: a BLS share on the batch root. */
  Share: 0x03,
  /** Broker → client: the delivery certificate with the inclusion proof. */
  Delivered: 0x04,
  /** Broker → server: a distilled batch. */
  Batch: 0x10,
  /** Broker → server: please witness the batch with this digest. */
  WitnessRequest: 0x11,
  /** Server → broker: a witness shard. */
  WitnessShard: 0x12,
  /** Server → broker: a delivery shard. */
  DeliveryShard: 0x13,
  /** Broker → server, once per link: I am a broker (send me delivery shards). */
  BrokerHello: 0x14,
  /** Server → server: send me the batch with this digest (it was ordered; I never got it). */
  FetchBatch: 0x15,
} as const

/** A client's signed submission. */
export interface Submission {
  /** The client's id in the directory. */
  id: number
  /** The client's sequence number for this message (≥ 1). */
  sequence: number
  /** The message. */
  payload: Uint8Array
  /** ed25519 signature over {@link submissionInput}. */
  signature: Uint8Array
}

/** A client's proof that its entry is in a batch: the leaf (bucket) and its Merkle path. */
export interface InclusionProof {
  /** The batch's Merkle root. */
  root: Uint8Array
  /** Index of the leaf holding the client's entry. */
  leafIndex: number
  /** Number of leaves in the tree. */
  leafCount: number
  /** The encoded leaf (see {@link encodeLeaf}). */
  leaf: Uint8Array
  /** Sibling hashes from the leaf up. */
  proof: Uint8Array[]
}

/**
 * What the broker sends a client after a flush: the inclusion proof and the height
 * certificate that bounds the raise, so the client can check the raise before co-signing
 * (a share on a root with a raise not yet legitimate could be used later, when it is).
 */
export interface InclusionFrame extends InclusionProof {
  /**
   * The certified height the batch's raise is bounded by; absent when the client already
   * knows a high enough one (from its last delivery certificate), to keep the datagram small.
   */
  height?: HeightCertificate
}

/** A client's BLS share on a batch root. */
export interface ShareFrame {
  /** The client's id. */
  id: number
  /** The root it signed. */
  root: Uint8Array
  /** The 192-byte uncompressed BLS signature (cheap for the broker to decode). */
  signature: Uint8Array
}

/** A delivery certificate sent back to a client. */
export interface DeliveredFrame {
  /** The slot the batch was ordered in. */
  slot: number
  /** Shards of f+1 servers over (slot, root). */
  shards: Shard[]
  /** The client's inclusion proof in that batch (root included). */
  inclusion: InclusionProof
}

/** A server's signature on a batch digest or on a delivered (slot, root). */
export interface ShardFrame {
  /** Digest of the distilled batch (witness shards). */
  digest?: Uint8Array
  /** Slot (delivery shards). */
  slot?: number
  /** Root (delivery shards). */
  root?: Uint8Array
  /** The shard. */
  shard: Shard
}

const MAX_PROOF_HASHES = 40

/** The kind byte of a frame, or undefined when empty. */
export function frameKind(frame: Uint8Array): number | undefined {
  return frame.length === 0 ? undefined : frame[0]
}

/** Encodes a submission datagram. */
export function encodeSubmission(s: Submission): Uint8Array {
  return new ByteWriter(16 + s.payload.length + ED25519_SIGNATURE_LENGTH)
    .u8(FrameKind.Submit)
    .u32(s.id)
    .varint(s.sequence)
    .bytes(s.payload)
    .raw(s.signature)
    .finish()
}

/** Decodes a submission datagram (views into `frame`, not copies). */
export function decodeSubmission(frame: Uint8Array, limits: BrokerLimits): Submission {
  const r = new ByteReader(frame)
  if (r.u8() !== FrameKind.Submit) throw new DecodeError('not a submission')
  const id = r.u32()
  if (id >= limits.maxClients) throw new DecodeError(`client id ${id} out of range`)
  const sequence = r.varint()
  if (sequence < 1) throw new DecodeError('sequence numbers start at 1')
  const payload = r.bytes(limits.maxPayload)
  const signature = r.raw(ED25519_SIGNATURE_LENGTH)
  r.end()
  return { id, sequence, payload, signature }
}

function maxLeafBytes(limits: BrokerLimits): number {
  return 10 + limits.maxEntriesPerLeaf * (4 + 5 + limits.maxPayload)
}

function writeInclusion(w: ByteWriter, p: InclusionProof): void {
  w.raw(p.root).varint(p.leafIndex).varint(p.leafCount).bytes(p.leaf).u8(p.proof.length)
  for (const h of p.proof) w.raw(h)
}

function readInclusion(r: ByteReader, limits: BrokerLimits): InclusionProof {
  const root = r.raw(MERKLE_HASH_LENGTH)
  const leafIndex = r.varint(limits.maxBatchEntries)
  const leafCount = r.varint(limits.maxBatchEntries)
  const leaf = r.bytes(maxLeafBytes(limits))
  const n = r.u8()
  if (n > MAX_PROOF_HASHES) throw new DecodeError(`proof of ${n} hashes`)
  const proof: Uint8Array[] = []
  for (let i = 0; i < n; i++) proof.push(r.raw(MERKLE_HASH_LENGTH))
  return { root, leafIndex, leafCount, leaf, proof }
}

/** Encodes an inclusion-proof datagram. */
export function encodeInclusion(p: InclusionFrame): Uint8Array {
  const w = new ByteWriter(256 + p.leaf.length + p.proof.length * MERKLE_HASH_LENGTH)
  writeInclusion(w.u8(FrameKind.Inclusion), p)
  if (p.height === undefined) w.u8(0)
  else writeHeight(w.u8(1), p.height)
  return w.finish()
}

/** Decodes an inclusion-proof datagram. */
export function decodeInclusion(frame: Uint8Array, limits: BrokerLimits): InclusionFrame {
  const r = new ByteReader(frame)
  if (r.u8() !== FrameKind.Inclusion) throw new DecodeError('not an inclusion proof')
  const p = readInclusion(r, limits)
  const flag = r.u8()
  if (flag > 1) throw new DecodeError(`bad height flag ${flag}`)
  const height = flag === 1 ? readHeight(r, limits.maxServers) : undefined
  r.end()
  return height === undefined ? p : { ...p, height }
}

/** Encodes a BLS share datagram. */
export function encodeShare(s: ShareFrame): Uint8Array {
  return new ByteWriter(5 + MERKLE_HASH_LENGTH + BLS_SIGNATURE_UNCOMPRESSED_LENGTH)
    .u8(FrameKind.Share)
    .u32(s.id)
    .raw(s.root)
    .raw(s.signature)
    .finish()
}

/** Decodes a BLS share datagram. */
export function decodeShare(frame: Uint8Array, limits: BrokerLimits): ShareFrame {
  const r = new ByteReader(frame)
  if (r.u8() !== FrameKind.Share) throw new DecodeError('not a share')
  const id = r.u32()
  if (id >= limits.maxClients) throw new DecodeError(`client id ${id} out of range`)
  const root = r.raw(MERKLE_HASH_LENGTH)
  const signature = r.raw(BLS_SIGNATURE_UNCOMPRESSED_LENGTH)
  r.end()
  return { id, root, signature }
}

/** Encodes a delivery-certificate datagram. */
export function encodeDelivered(d: DeliveredFrame): Uint8Array {
  const w = new ByteWriter(256 + d.inclusion.leaf.length).u8(FrameKind.Delivered).varint(d.slot)
  writeShards(w, d.shards)
  writeInclusion(w, d.inclusion)
  return w.finish()
}

/** Decodes a delivery-certificate datagram. */
export function decodeDelivered(frame: Uint8Array, limits: BrokerLimits): DeliveredFrame {
  const r = new ByteReader(frame)
  if (r.u8() !== FrameKind.Delivered) throw new DecodeError('not a delivery certificate')
  const slot = r.varint()
  const shards = readShards(r, limits.maxServers)
  const inclusion = readInclusion(r, limits)
  r.end()
  return { slot, shards, inclusion }
}

/** Encodes a witness request. */
export function encodeWitnessRequest(digest: Uint8Array): Uint8Array {
  return encodeDigestFrame(FrameKind.WitnessRequest, digest)
}

/** Decodes a witness request; returns the digest. */
export function decodeWitnessRequest(frame: Uint8Array): Uint8Array {
  return decodeDigestFrame(FrameKind.WitnessRequest, frame, 'witness request')
}

/** Encodes a fetch request: u8 kind ‖ 32 B batch digest. */
export function encodeFetchBatch(digest: Uint8Array): Uint8Array {
  return encodeDigestFrame(FrameKind.FetchBatch, digest)
}

/** Decodes a fetch request; returns the digest. */
export function decodeFetchBatch(frame: Uint8Array): Uint8Array {
  return decodeDigestFrame(FrameKind.FetchBatch, frame, 'fetch request')
}

/** The broker hello: one byte. */
export function encodeBrokerHello(): Uint8Array {
  return Uint8Array.of(FrameKind.BrokerHello)
}

function encodeDigestFrame(kind: number, digest: Uint8Array): Uint8Array {
  return new ByteWriter(1 + MERKLE_HASH_LENGTH).u8(kind).raw(digest).finish()
}

function decodeDigestFrame(kind: number, frame: Uint8Array, what: string): Uint8Array {
  const r = new ByteReader(frame)
  if (r.u8() !== kind) throw new DecodeError(`not a ${what}`)
  const digest = r.raw(MERKLE_HASH_LENGTH)
  r.end()
  return digest
}

/** Encodes a witness shard: digest ‖ u8 server ‖ signature. */
export function encodeWitnessShard(digest: Uint8Array, shard: Shard): Uint8Array {
  return new ByteWriter(100)
    .u8(FrameKind.WitnessShard)
    .raw(digest)
    .u8(shard.server)
    .raw(shard.signature)
    .finish()
}

/** Encodes a delivery shard: varint slot ‖ root ‖ u8 server ‖ signature. */
export function encodeDeliveryShard(slot: number, root: Uint8Array, shard: Shard): Uint8Array {
  return new ByteWriter(110)
    .u8(FrameKind.DeliveryShard)
    .varint(slot)
    .raw(root)
    .u8(shard.server)
    .raw(shard.signature)
    .finish()
}

/** Decodes a witness or delivery shard. */
export function decodeShardFrame(frame: Uint8Array): ShardFrame {
  const r = new ByteReader(frame)
  const kind = r.u8()
  let out: ShardFrame
  if (kind === FrameKind.WitnessShard) {
    const digest = r.raw(MERKLE_HASH_LENGTH)
    out = { digest, shard: { server: r.u8(), signature: r.raw(ED25519_SIGNATURE_LENGTH) } }
  } else if (kind === FrameKind.DeliveryShard) {
    const slot = r.varint()
    const root = r.raw(MERKLE_HASH_LENGTH)
    out = { slot, root, shard: { server: r.u8(), signature: r.raw(ED25519_SIGNATURE_LENGTH) } }
  } else {
    throw new DecodeError('not a shard')
  }
  r.end()
  return out
}
