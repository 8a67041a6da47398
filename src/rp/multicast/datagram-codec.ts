import { DecodeError } from '../../common/errors.ts'
import { TOPIC_TAG_BYTES } from './group-address.ts'

/**
 * The RP multicast datagram: a fixed little-endian header, a payload and an authenticator.
 *
 * ```
 * 0   u8   magic 0x4d
 * 1   u8   version (high nibble, 1) | type (low nibble)
 * 2   u16  reserved, 0
 * 4   u32  key id (which group key made the authenticator)
 * 8   8 B  topic tag
 * 16  u32  sequence number
 * 20  u16  fragment index
 * 22  u16  fragment count
 * 24  u32  message length (all fragments)
 * 28  ...  payload
 * end-16   authenticator: HMAC-SHA256 over every byte before it, truncated to 16 bytes
 * ```
 */
export const DATAGRAM_MAGIC = 0x4d
/** Wire version. */
export const DATAGRAM_VERSION = 1
/** Header bytes before the payload. */
export const HEADER_BYTES = 28
/** Authenticator bytes after the payload. */
export const AUTH_TAG_BYTES = 16
/** Header plus authenticator: the fixed cost of a datagram. */
export const DATAGRAM_OVERHEAD = HEADER_BYTES + AUTH_TAG_BYTES

/** What a datagram is. */
export const DatagramType = {
  /** RP → group: one fragment of a message. */
  data: 1,
  /** RP → group: the highest sequence number sent, so a lost last message is noticed. */
  heartbeat: 2,
  /** RP → group: answers probe requests (payload: their 8-byte nonces, one after another). */
  probe: 3,
  /** Member → RP: the fragments it misses. */
  nack: 4,
  /** RP → member: sequence numbers no longer in the repair buffer. */
  gone: 5,
  /** Member → RP: please multicast a probe with this nonce. */
  probeRequest: 6,
  /** Member → RP: multicast reaches me (1) or send to me by unicast (0). */
  probeResult: 7,
} as const
/** One of {@link DatagramType}. */
export type DatagramTypeValue = (typeof DatagramType)[keyof typeof DatagramType]

/** Decoder limits. */
export interface DatagramLimits {
  /** Largest datagram accepted (header, payload and authenticator). */
  readonly maxDatagramBytes: number
  /** Largest message (all fragments). */
  readonly maxMessageBytes: number
  /** Most fragments per message. */
  readonly maxFragments: number
  /** Most entries in a NACK or GONE payload. */
  readonly maxNackEntries: number
}

/** Default limits: an Ethernet MTU, 64 fragments (≈ 90 KB). */
export const DEFAULT_DATAGRAM_LIMITS: DatagramLimits = {
  maxDatagramBytes: 1472,
  maxMessageBytes: 64 * (1472 - DATAGRAM_OVERHEAD),
  maxFragments: 64,
  maxNackEntries: 64,
}

/** The fields of a datagram (the authenticator is computed by {@link DatagramAuthenticator}). */
export interface DatagramFields {
  /** Datagram type. */
  readonly type: DatagramTypeValue
  /** Group key id. */
  readonly keyId: number
  /** Topic tag ({@link TOPIC_TAG_BYTES} bytes). */
  readonly topicTag: Uint8Array
  /** Sequence number (data, heartbeat); 0 otherwise. */
  readonly seq: number
  /** Fragment index (data). */
  readonly fragIndex: number
  /** Fragment count (data). */
  readonly fragCount: number
  /** Length of the whole message (data). */
  readonly msgLen: number
  /** Payload bytes. */
  readonly payload: Uint8Array
}

/** A decoded datagram: its fields, and the signed bytes and authenticator to check. */
export interface Datagram extends DatagramFields {
  /** Every byte the authenticator covers (a view of the input). */
  readonly signed: Uint8Array
  /** The authenticator (a view of the input). */
  readonly authTag: Uint8Array
}

/** Writes header and payload into a new buffer with room for the authenticator. */
export function encodeUnsigned(f: DatagramFields): Uint8Array {
  if (f.topicTag.length !== TOPIC_TAG_BYTES) throw new RangeError('topic tag must be 8 bytes')
  const out = new Uint8Array(DATAGRAM_OVERHEAD + f.payload.length)
  const v = new DataView(out.buffer)
  out[0] = DATAGRAM_MAGIC
  out[1] = (DATAGRAM_VERSION << 4) | f.type
  v.setUint32(4, f.keyId, true)
  out.set(f.topicTag, 8)
  v.setUint32(16, f.seq, true)
  v.setUint16(20, f.fragIndex, true)
  v.setUint16(22, f.fragCount, true)
  v.setUint32(24, f.msgLen, true)
  out.set(f.payload, HEADER_BYTES)
  return out
}

/**
 * Parses a datagram's header and checks it against `limits`; the authenticator is not
 * checked here. Throws {@link DecodeError} on anything malformed.
 */
export function decodeDatagram(bytes: Uint8Array, limits: DatagramLimits): Datagram {
  if (bytes.length < DATAGRAM_OVERHEAD) throw new DecodeError(`datagram of ${bytes.length} bytes`)
  if (bytes.length > limits.maxDatagramBytes) {
    throw new DecodeError(`datagram of ${bytes.length} bytes > ${limits.maxDatagramBytes}`)
  }
  if (bytes[0] !== DATAGRAM_MAGIC) throw new DecodeError('bad magic')
  if (bytes[1] >> 4 !== DATAGRAM_VERSION) throw new DecodeError(`version ${bytes[1] >> 4}`)
  const type = bytes[1] & 0x0f
  if (type < DatagramType.data || type > DatagramType.probeResult) {
    throw new DecodeError(`unknown type ${type}`)
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (v.getUint16(2, true) !== 0) throw new DecodeError('reserved bits set')
  const end = bytes.length - AUTH_TAG_BYTES
  const d: Datagram = {
    type: type as DatagramTypeValue,
    keyId: v.getUint32(4, true),
    topicTag: bytes.subarray(8, 16),
    seq: v.getUint32(16, true),
    fragIndex: v.getUint16(20, true),
    fragCount: v.getUint16(22, true),
    msgLen: v.getUint32(24, true),
    payload: bytes.subarray(HEADER_BYTES, end),
    signed: bytes.subarray(0, end),
    authTag: bytes.subarray(end),
  }
  if (d.type === DatagramType.data) {
    if (d.seq === 0) throw new DecodeError('data with sequence 0')
    if (d.fragCount === 0 || d.fragCount > limits.maxFragments) {
      throw new DecodeError(`fragment count ${d.fragCount} (limit ${limits.maxFragments})`)
    }
    if (d.fragIndex >= d.fragCount) throw new DecodeError('fragment index out of range')
    if (d.msgLen > limits.maxMessageBytes) {
      throw new DecodeError(`message of ${d.msgLen} bytes > ${limits.maxMessageBytes}`)
    }
    if (d.payload.length > d.msgLen) throw new DecodeError('fragment longer than its message')
  }
  return d
}

/** One NACK entry: a sequence number and the fragments missing (empty: all of them). */
export interface NackEntry {
  /** Sequence number. */
  readonly seq: number
  /** Missing fragment indices; empty when the whole message is missing. */
  readonly fragments: readonly number[]
}

/** Encodes a NACK payload. */
export function encodeNackPayload(entries: readonly NackEntry[]): Uint8Array {
  let size = 2
  for (const e of entries) size += 6 + 2 * e.fragments.length
  const out = new Uint8Array(size)
  const v = new DataView(out.buffer)
  v.setUint16(0, entries.length, true)
  let p = 2
  for (const e of entries) {
    v.setUint32(p, e.seq, true)
    v.setUint16(p + 4, e.fragments.length, true)
    p += 6
    for (const f of e.fragments) {
      v.setUint16(p, f, true)
      p += 2
    }
  }
  return out
}

/** Decodes a NACK payload within `limits`. */
export function decodeNackPayload(payload: Uint8Array, limits: DatagramLimits): NackEntry[] {
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  const need = (p: number, n: number) => {
    if (p + n > payload.length) throw new DecodeError('truncated NACK')
  }
  need(0, 2)
  const count = v.getUint16(0, true)
  if (count > limits.maxNackEntries) throw new DecodeError(`NACK of ${count} entries`)
  const entries: NackEntry[] = []
  let p = 2
  for (let i = 0; i < count; i++) {
    need(p, 6)
    const seq = v.getUint32(p, true)
    const n = v.getUint16(p + 4, true)
    p += 6
    if (n > limits.maxFragments) throw new DecodeError(`NACK of ${n} fragments`)
    need(p, 2 * n)
    const fragments: number[] = []
    for (let j = 0; j < n; j++) fragments.push(v.getUint16(p + 2 * j, true))
    p += 2 * n
    entries.push({ seq, fragments })
  }
  if (p !== payload.length) throw new DecodeError('trailing bytes in NACK')
  return entries
}

/** Encodes a GONE payload (sequence numbers the RP no longer holds). */
export function encodeGonePayload(seqs: readonly number[]): Uint8Array {
  const out = new Uint8Array(2 + 4 * seqs.length)
  const v = new DataView(out.buffer)
  v.setUint16(0, seqs.length, true)
  for (let i = 0; i < seqs.length; i++) v.setUint32(2 + 4 * i, seqs[i], true)
  return out
}

/** Decodes a GONE payload within `limits`. */
export function decodeGonePayload(payload: Uint8Array, limits: DatagramLimits): number[] {
  if (payload.length < 2) throw new DecodeError('truncated GONE')
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  const count = v.getUint16(0, true)
  if (count > limits.maxNackEntries) throw new DecodeError(`GONE of ${count} entries`)
  if (payload.length !== 2 + 4 * count) throw new DecodeError('GONE length mismatch')
  const seqs: number[] = []
  for (let i = 0; i < count; i++) seqs.push(v.getUint32(2 + 4 * i, true))
  return seqs
}

/** Bytes of a probe nonce. */
export const PROBE_NONCE_BYTES = 8
