/**
 * The replication-point wire codec: the schema of `rp.proto` (version 1), encoded and decoded
 * by hand with protons-runtime's reader and writer. Every decode takes limits and throws only
 * {@link DecodeError}.
 */
import { reader, type Writer, writer } from 'protons-runtime'
import type { ArtifactClass } from '../common/artifact.ts'
import { DecodeError } from '../common/errors.ts'
import {
  expectWireType as expect,
  FIXED64,
  LEN,
  readFields,
  VARINT,
} from '../common/protobuf-fields.ts'

/** The wire version this codec speaks. */
export const RP_WIRE_VERSION = 1

/** One RP's link to another, as advertised in its link state. */
export interface RpLink {
  /** The neighbour RP. */
  peer: string
  /** Smoothed round-trip time in microseconds. */
  costUs: number
}

/** One RP's links and per-topic member counts, flooded to every RP. */
export interface RpLinkState {
  /** The RP that originated it. */
  origin: string
  /** Increases with every change; newer states replace older ones. */
  seq: number
  /** The RPs it has live links to. */
  links: RpLink[]
  /** Its registered members per topic. */
  counts: Array<{ topic: string; members: number }>
}

/** Every message of the protocol, discriminated by `type`. */
export type RpMessage =
  | { type: 'register'; topics: string[]; leaseMs: number; resume: boolean }
  | { type: 'heartbeat'; seq: number }
  | { type: 'leave'; topics: string[] }
  | {
      type: 'publish'
      id: Uint8Array
      topic: string
      class: ArtifactClass
      data: Uint8Array
      quorum: boolean
      surplus: number
    }
  | { type: 'ack'; ids: Uint8Array[]; heartbeat: number; known: boolean; sent: number }
  | { type: 'registered'; topics: string[]; leaseMs: number }
  | {
      type: 'deliver'
      id: Uint8Array
      topic: string
      class: ArtifactClass
      data: Uint8Array
      publisher: string
      quorum: boolean
    }
  | { type: 'quorum'; id: Uint8Array; count: number; members: number }
  | {
      type: 'hello'
      probe: number
      echo: number
      echoDelay: number
      states: RpLinkState[]
      sent: number
    }
  | {
      type: 'data'
      id: Uint8Array
      topic: string
      class: ArtifactClass
      data: Uint8Array
      originRp: string
      publisher: string
      quorum: boolean
      surplus: number
    }
  | { type: 'delivered'; counts: Array<{ id: Uint8Array; count: number }> }
  | { type: 'digest'; ids: Uint8Array[] }
  | { type: 'nack'; ids: Uint8Array[]; recent: number; upto: number }

/** The message type names. */
export type RpMessageType = RpMessage['type']

/** Bounds applied while decoding; anything beyond them is a {@link DecodeError}. */
export interface RpCodecLimits {
  /** Largest payload, in bytes. */
  maxDataBytes: number
  /** Longest message id, in bytes. */
  maxIdBytes: number
  /** Most ids in one Ack, Digest, Nack or Delivered. */
  maxIds: number
  /** Most topics in one Register, Leave or Registered, and counts in one link state. */
  maxTopics: number
  /** Longest topic name, in bytes. */
  maxTopicBytes: number
  /** Longest peer key (RP or publisher id), in bytes. */
  maxPeerBytes: number
  /** Most link states in one Hello. */
  maxStates: number
  /** Most links in one link state. */
  maxLinks: number
}

/** Default decode limits. */
export const DEFAULT_RP_CODEC_LIMITS: Readonly<RpCodecLimits> = {
  maxDataBytes: 1 << 20,
  maxIdBytes: 64,
  maxIds: 4096,
  maxTopics: 256,
  maxTopicBytes: 256,
  maxPeerBytes: 128,
  maxStates: 256,
  maxLinks: 256,
}

const FIELD: Record<RpMessageType, number> = {
  register: 2,
  heartbeat: 3,
  leave: 4,
  publish: 5,
  ack: 6,
  registered: 7,
  deliver: 8,
  quorum: 9,
  hello: 10,
  data: 11,
  delivered: 12,
  digest: 13,
  nack: 14,
}
const TYPE_BY_FIELD = new Map(
  Object.entries(FIELD).map(([type, field]) => [field, type as RpMessageType]),
)

const classCode = (c: ArtifactClass) => (c === 'consensus' ? 0 : 1)

// ---- encoding --------------------------------------------------------------------------

const tag = (w: Writer, field: number, wireType: number) => w.uint32((field << 3) | wireType)

function putUint(w: Writer, field: number, v: number): void {
  if (v !== 0) tag(w, field, VARINT).uint64Number(v)
}

function putBool(w: Writer, field: number, v: boolean): void {
  if (v) tag(w, field, VARINT).bool(true)
}

function putDouble(w: Writer, field: number, v: number): void {
  if (v !== 0) tag(w, field, FIXED64).double(v)
}

function putBytes(w: Writer, field: number, v: Uint8Array): void {
  if (v.length > 0) tag(w, field, LEN).bytes(v)
}

function putString(w: Writer, field: number, v: string): void {
  if (v.length > 0) tag(w, field, LEN).string(v)
}

function putMessage(w: Writer, field: number, body: () => void): void {
  tag(w, field, LEN).fork()
  body()
  w.ldelim()
}

function encodeBody(w: Writer, m: RpMessage): void {
  switch (m.type) {
    case 'register':
      for (const t of m.topics) tag(w, 1, LEN).string(t)
      putUint(w, 2, m.leaseMs)
      putBool(w, 3, m.resume)
      return
    case 'heartbeat':
      putUint(w, 1, m.seq)
      return
    case 'leave':
    case 'registered':
      for (const t of m.topics) tag(w, 1, LEN).string(t)
      if (m.type === 'registered') putUint(w, 2, m.leaseMs)
      return
    case 'publish':
      putBytes(w, 1, m.id)
      putString(w, 2, m.topic)
      putUint(w, 3, classCode(m.class))
      putBytes(w, 4, m.data)
      putBool(w, 5, m.quorum)
      putUint(w, 6, m.surplus)
      return
    case 'ack':
      for (const id of m.ids) tag(w, 1, LEN).bytes(id)
      putUint(w, 2, m.heartbeat)
      putBool(w, 3, m.known)
      putUint(w, 4, m.sent)
      return
    case 'deliver':
      putBytes(w, 1, m.id)
      putString(w, 2, m.topic)
      putUint(w, 3, classCode(m.class))
      putBytes(w, 4, m.data)
      putString(w, 5, m.publisher)
      putBool(w, 6, m.quorum)
      return
    case 'quorum':
      putBytes(w, 1, m.id)
      putUint(w, 2, m.count)
      putUint(w, 3, m.members)
      return
    case 'hello':
      putDouble(w, 1, m.probe)
      putDouble(w, 2, m.echo)
      putDouble(w, 3, m.echoDelay)
      for (const s of m.states) {
        putMessage(w, 4, () => {
          putString(w, 1, s.origin)
          putUint(w, 2, s.seq)
          for (const l of s.links) {
            putMessage(w, 3, () => {
              putString(w, 1, l.peer)
              putUint(w, 2, l.costUs)
            })
          }
          for (const c of s.counts) {
            putMessage(w, 4, () => {
              putString(w, 1, c.topic)
              putUint(w, 2, c.members)
            })
          }
        })
      }
      // Fields in number order, as protobuf encoders write them (rp.proto conformance test).
      putUint(w, 5, m.sent)
      return
    case 'data':
      putBytes(w, 1, m.id)
      putString(w, 2, m.topic)
      putUint(w, 3, classCode(m.class))
      putBytes(w, 4, m.data)
      putString(w, 5, m.originRp)
      putString(w, 6, m.publisher)
      putBool(w, 7, m.quorum)
      putUint(w, 8, m.surplus)
      return
    case 'delivered':
      for (const c of m.counts) {
        putMessage(w, 1, () => {
          putBytes(w, 1, c.id)
          putUint(w, 2, c.count)
        })
      }
      return
    case 'digest':
    case 'nack':
      for (const id of m.ids) tag(w, 1, LEN).bytes(id)
      if (m.type === 'nack') {
        putUint(w, 2, m.recent)
        putUint(w, 3, m.upto)
      }
      return
  }
}

/** Encodes one frame (version and body). */
export function encodeRpMessage(m: RpMessage): Uint8Array {
  const w = writer()
  putUint(w, 1, RP_WIRE_VERSION)
  putMessage(w, FIELD[m.type], () => encodeBody(w, m))
  return w.finish()
}

/** Bytes of application payload a message carries (for payload/control accounting). */
export function rpPayloadBytes(m: RpMessage): number {
  return m.type === 'publish' || m.type === 'deliver' || m.type === 'data' ? m.data.length : 0
}

// ---- decoding --------------------------------------------------------------------------

type Reader = ReturnType<typeof reader>

function readUint(r: Reader, wireType: number, what: string, max = 0xffffffff): number {
  expect(wireType, VARINT, what)
  const v = r.uint64Number()
  if (!(v >= 0 && v <= max)) throw new DecodeError(`${what} ${v} out of range`)
  return v
}

function readBool(r: Reader, wireType: number, what: string): boolean {
  expect(wireType, VARINT, what)
  return r.uint64Number() !== 0
}

function readDouble(r: Reader, wireType: number, what: string): number {
  expect(wireType, FIXED64, what)
  if (r.pos + 8 > r.len) throw new DecodeError(`${what} truncated`)
  const v = r.double()
  if (!Number.isFinite(v)) throw new DecodeError(`${what} is not finite`)
  return v
}

function readBytes(r: Reader, wireType: number, what: string, max: number): Uint8Array {
  expect(wireType, LEN, what)
  const n = r.uint32()
  if (n > max) throw new DecodeError(`${what} of ${n} bytes exceeds the limit of ${max}`)
  if (r.pos + n > r.len) throw new DecodeError(`${what} truncated`)
  // A copy, so that a cached message does not pin the whole received frame.
  const out = r.buf.slice(r.pos, r.pos + n)
  r.pos += n
  return out
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function readString(r: Reader, wireType: number, what: string, max: number): string {
  const b = readBytes(r, wireType, what, max)
  try {
    return utf8.decode(b)
  } catch {
    throw new DecodeError(`${what} is not valid UTF-8`)
  }
}

function readClass(r: Reader, wireType: number): ArtifactClass {
  const c = readUint(r, wireType, 'class')
  if (c === 0) return 'consensus'
  if (c === 1) return 'ingress'
  throw new DecodeError(`unknown artifact class ${c}`)
}

function push<T>(list: T[], item: T, max: number, what: string): void {
  if (list.length >= max) throw new DecodeError(`more than ${max} ${what}`)
  list.push(item)
}

/** Reads a nested message's length and returns where it ends. */
function nestedEnd(r: Reader, wireType: number, what: string, end: number): number {
  expect(wireType, LEN, what)
  const n = r.uint32()
  const e = r.pos + n
  if (e > end) throw new DecodeError(`${what} overruns its parent`)
  return e
}

function required(v: Uint8Array | string, what: string): void {
  if (v.length === 0) throw new DecodeError(`${what} is missing`)
}

function decodeLinkState(r: Reader, end: number, lim: RpCodecLimits): RpLinkState {
  const s: RpLinkState = { origin: '', seq: 0, links: [], counts: [] }
  readFields(r, end, (f, wt) => {
    if (f === 1) s.origin = readString(r, wt, 'origin', lim.maxPeerBytes)
    else if (f === 2) s.seq = readUint(r, wt, 'seq', Number.MAX_SAFE_INTEGER)
    else if (f === 3) {
      const e = nestedEnd(r, wt, 'link', end)
      const l: RpLink = { peer: '', costUs: 0 }
      readFields(r, e, (lf, lwt) => {
        if (lf === 1) l.peer = readString(r, lwt, 'link peer', lim.maxPeerBytes)
        else if (lf === 2) l.costUs = readUint(r, lwt, 'link cost')
        else return false
        return true
      })
      required(l.peer, 'link peer')
      push(s.links, l, lim.maxLinks, 'links')
    } else if (f === 4) {
      const e = nestedEnd(r, wt, 'topic count', end)
      const c = { topic: '', members: 0 }
      readFields(r, e, (cf, cwt) => {
        if (cf === 1) c.topic = readString(r, cwt, 'topic', lim.maxTopicBytes)
        else if (cf === 2) c.members = readUint(r, cwt, 'members')
        else return false
        return true
      })
      push(s.counts, c, lim.maxTopics, 'topic counts')
    } else return false
    return true
  })
  required(s.origin, 'link state origin')
  return s
}

function decodeBody(type: RpMessageType, r: Reader, end: number, lim: RpCodecLimits): RpMessage {
  const topics: string[] = []
  const ids: Uint8Array[] = []
  let id: Uint8Array = new Uint8Array(0)
  let topic = ''
  let cls: ArtifactClass = 'consensus'
  let data: Uint8Array = new Uint8Array(0)
  let a = 0
  let b = 0
  let flag = false
  let s1 = ''
  let s2 = ''
  const readId = (wt: number) => readBytes(r, wt, 'id', lim.maxIdBytes)
  switch (type) {
    case 'register':
    case 'leave':
    case 'registered':
      readFields(r, end, (f, wt) => {
        if (f === 1)
          push(topics, readString(r, wt, 'topic', lim.maxTopicBytes), lim.maxTopics, 'topics')
        else if (f === 2 && type !== 'leave') a = readUint(r, wt, 'lease')
        else if (f === 3 && type === 'register') flag = readBool(r, wt, 'resume')
        else return false
        return true
      })
      if (type === 'register') return { type, topics, leaseMs: a, resume: flag }
      if (type === 'registered') return { type, topics, leaseMs: a }
      return { type, topics }
    case 'heartbeat':
      readFields(r, end, (f, wt) => {
        if (f === 1) a = readUint(r, wt, 'heartbeat seq', Number.MAX_SAFE_INTEGER)
        else return false
        return true
      })
      return { type, seq: a }
    case 'ack':
    case 'digest':
    case 'nack':
      readFields(r, end, (f, wt) => {
        if (f === 1) push(ids, readId(wt), lim.maxIds, 'ids')
        else if (f === 2 && type === 'ack')
          a = readUint(r, wt, 'heartbeat', Number.MAX_SAFE_INTEGER)
        else if (f === 3 && type === 'ack') flag = readBool(r, wt, 'known')
        else if (f === 4 && type === 'ack') b = readUint(r, wt, 'sent', Number.MAX_SAFE_INTEGER)
        else if (f === 2 && type === 'nack') b = readUint(r, wt, 'recent')
        else if (f === 3 && type === 'nack') a = readUint(r, wt, 'upto', Number.MAX_SAFE_INTEGER)
        else return false
        return true
      })
      if (type === 'ack') return { type, ids, heartbeat: a, known: flag, sent: b }
      if (type === 'nack') return { type, ids, recent: b, upto: a }
      return { type, ids }
    case 'publish':
    case 'deliver':
    case 'data':
      readFields(r, end, (f, wt) => {
        if (f === 1) id = readId(wt)
        else if (f === 2) topic = readString(r, wt, 'topic', lim.maxTopicBytes)
        else if (f === 3) cls = readClass(r, wt)
        else if (f === 4) data = readBytes(r, wt, 'data', lim.maxDataBytes)
        else if (type === 'publish' && f === 5) flag = readBool(r, wt, 'quorum')
        else if (type === 'publish' && f === 6) a = readUint(r, wt, 'surplus')
        else if (type === 'deliver' && f === 5)
          s2 = readString(r, wt, 'publisher', lim.maxPeerBytes)
        else if (type === 'deliver' && f === 6) flag = readBool(r, wt, 'quorum')
        else if (type === 'data' && f === 5) s1 = readString(r, wt, 'origin RP', lim.maxPeerBytes)
        else if (type === 'data' && f === 6) s2 = readString(r, wt, 'publisher', lim.maxPeerBytes)
        else if (type === 'data' && f === 7) flag = readBool(r, wt, 'quorum')
        else if (type === 'data' && f === 8) a = readUint(r, wt, 'surplus')
        else return false
        return true
      })
      required(id, 'id')
      required(topic, 'topic')
      if (type === 'publish') {
        return { type, id, topic, class: cls, data, quorum: flag, surplus: a }
      }
      if (type === 'deliver') {
        return { type, id, topic, class: cls, data, publisher: s2, quorum: flag }
      }
      required(s1, 'origin RP')
      return {
        type,
        id,
        topic,
        class: cls,
        data,
        originRp: s1,
        publisher: s2,
        quorum: flag,
        surplus: a,
      }
    case 'quorum':
      readFields(r, end, (f, wt) => {
        if (f === 1) id = readId(wt)
        else if (f === 2) a = readUint(r, wt, 'count')
        else if (f === 3) b = readUint(r, wt, 'members')
        else return false
        return true
      })
      required(id, 'id')
      return { type, id, count: a, members: b }
    case 'hello': {
      let probe = 0
      let echo = 0
      let echoDelay = 0
      let sent = 0
      const states: RpLinkState[] = []
      readFields(r, end, (f, wt) => {
        if (f === 1) probe = readDouble(r, wt, 'probe')
        else if (f === 2) echo = readDouble(r, wt, 'echo')
        else if (f === 3) echoDelay = readDouble(r, wt, 'echo delay')
        else if (f === 5) sent = readUint(r, wt, 'sent', Number.MAX_SAFE_INTEGER)
        else if (f === 4) {
          const e = nestedEnd(r, wt, 'link state', end)
          push(states, decodeLinkState(r, e, lim), lim.maxStates, 'link states')
        } else return false
        return true
      })
      return { type, probe, echo, echoDelay, states, sent }
    }
    case 'delivered': {
      const counts: Array<{ id: Uint8Array; count: number }> = []
      readFields(r, end, (f, wt) => {
        if (f !== 1) return false
        const e = nestedEnd(r, wt, 'delivered count', end)
        let cid: Uint8Array = new Uint8Array(0)
        let count = 0
        readFields(r, e, (cf, cwt) => {
          if (cf === 1) cid = readId(cwt)
          else if (cf === 2) count = readUint(r, cwt, 'count')
          else return false
          return true
        })
        required(cid, 'id')
        push(counts, { id: cid, count }, lim.maxIds, 'delivered counts')
        return true
      })
      return { type, counts }
    }
  }
}

/**
 * Decodes one frame. Throws {@link DecodeError} (and nothing else) when the frame is
 * malformed, of another version, or beyond `limits`.
 */
export function decodeRpMessage(
  frame: Uint8Array,
  limits: RpCodecLimits = DEFAULT_RP_CODEC_LIMITS,
): RpMessage {
  try {
    const r = reader(frame)
    let version = 0
    let message: RpMessage | undefined
    readFields(r, frame.length, (f, wt) => {
      if (f === 1) {
        version = readUint(r, wt, 'version')
        return true
      }
      const type = TYPE_BY_FIELD.get(f)
      if (type === undefined) return false
      if (message !== undefined) throw new DecodeError('more than one body')
      const end = nestedEnd(r, wt, type, frame.length)
      message = decodeBody(type, r, end, limits)
      if (r.pos !== end) throw new DecodeError(`${type} body overruns`)
      return true
    })
    if (r.pos !== frame.length) throw new DecodeError('frame truncated')
    if (version !== RP_WIRE_VERSION) throw new DecodeError(`unsupported version ${version}`)
    if (message === undefined) throw new DecodeError('frame has no body')
    return message
  } catch (err) {
    if (err instanceof DecodeError) throw err
    throw new DecodeError(`malformed RP frame: ${(err as Error).message}`, { cause: err })
  }
}
