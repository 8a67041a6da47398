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

/**
 * An RP's multicast channel for one topic, announced to a member in the registration answer
 * and again on key rotation (doc/rp-multicast.md, "Integration").
 */
export interface McastGroupAnnounce {
  /** The topic. */
  topic: string
  /** The SSM group (dotted IPv4); the member derives it too and checks. */
  group: string
  /** The group's UDP port. */
  port: number
  /** Id of the group key, carried in every datagram. */
  keyId: number
  /** The 32-byte group key the datagrams are authenticated under. */
  key: Uint8Array
  /** Sequence number of the RP's next message on the topic. */
  nextSeq: number
  /** The RP's LAN address: the source S of the (S, G) channel. */
  source: string
  /** Largest datagram the RP sends. */
  maxDatagramBytes: number
  /** Most fragments per message. */
  maxFragments: number
}

/** One NACK entry: a sequence number and its missing fragments (none listed: all). */
export interface McastNackEntry {
  /** Sequence number. */
  seq: number
  /** Missing fragment indices; empty means the whole message. */
  fragments: readonly number[]
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
      /** The publisher's signature (empty when the network runs without signatures). */
      signature: Uint8Array
    }
  | { type: 'ack'; ids: Uint8Array[]; heartbeat: number; known: boolean; sent: number }
  | { type: 'registered'; topics: string[]; leaseMs: number; groups: McastGroupAnnounce[] }
  | {
      type: 'deliver'
      id: Uint8Array
      topic: string
      class: ArtifactClass
      data: Uint8Array
      publisher: string
      quorum: boolean
      /** The publisher's signature, as it published the message. */
      signature: Uint8Array
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
      /** The publisher's signature, as it published the message. */
      signature: Uint8Array
    }
  | { type: 'delivered'; counts: Array<{ id: Uint8Array; count: number }> }
  | { type: 'digest'; ids: Uint8Array[] }
  | { type: 'nack'; ids: Uint8Array[]; recent: number; upto: number }
  | { type: 'mcast-group'; group: McastGroupAnnounce }
  | { type: 'mcast-nack'; topic: string; entries: McastNackEntry[] }
  | { type: 'mcast-gone'; topic: string; seqs: number[] }
  | { type: 'mcast-probe'; topic: string; nonce: Uint8Array }
  | { type: 'mcast-probe-result'; topic: string; reaches: boolean }
  | { type: 'mcast-datagram'; datagram: Uint8Array }

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
  /** Largest multicast datagram carried over the session (repairs). */
  maxDatagramBytes: number
  /** Most entries in one multicast NACK, and sequence numbers in one GONE. */
  maxNackEntries: number
  /** Most fragments per multicast message (and so fragment indices per NACK entry). */
  maxFragments: number
  /** Longest publisher signature, in bytes. */
  maxSignatureBytes: number
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
  maxDatagramBytes: 1472,
  maxNackEntries: 64,
  maxFragments: 64,
  maxSignatureBytes: 64,
}

/** Bytes of a multicast group key. */
export const MCAST_KEY_BYTES = 32
/** Bytes of a multicast probe nonce. */
export const MCAST_NONCE_BYTES = 8
/** Longest group or source address text (an IPv6 address with a zone fits). */
const MAX_ADDRESS_BYTES = 64

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
  'mcast-group': 15,
  'mcast-nack': 16,
  'mcast-gone': 17,
  'mcast-probe': 18,
  'mcast-probe-result': 19,
  'mcast-datagram': 20,
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
      if (m.type === 'registered') {
        putUint(w, 2, m.leaseMs)
        for (const g of m.groups) putMessage(w, 3, () => encodeGroup(w, g))
      }
      return
    case 'publish':
      putBytes(w, 1, m.id)
      putString(w, 2, m.topic)
      putUint(w, 3, classCode(m.class))
      putBytes(w, 4, m.data)
      putBool(w, 5, m.quorum)
      putUint(w, 6, m.surplus)
      putBytes(w, 7, m.signature)
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
      putBytes(w, 7, m.signature)
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
      putBytes(w, 9, m.signature)
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
    case 'mcast-group':
      encodeGroup(w, m.group)
      return
    case 'mcast-nack':
      putString(w, 1, m.topic)
      for (const e of m.entries) {
        putMessage(w, 2, () => {
          putUint(w, 1, e.seq)
          for (const f of e.fragments) tag(w, 2, VARINT).uint32(f)
        })
      }
      return
    case 'mcast-gone':
      putString(w, 1, m.topic)
      for (const seq of m.seqs) tag(w, 2, VARINT).uint32(seq)
      return
    case 'mcast-probe':
      putString(w, 1, m.topic)
      putBytes(w, 2, m.nonce)
      return
    case 'mcast-probe-result':
      putString(w, 1, m.topic)
      putBool(w, 2, m.reaches)
      return
    case 'mcast-datagram':
      putBytes(w, 1, m.datagram)
      return
  }
}

function encodeGroup(w: Writer, g: McastGroupAnnounce): void {
  putString(w, 1, g.topic)
  putString(w, 2, g.group)
  putUint(w, 3, g.port)
  putUint(w, 4, g.keyId)
  putBytes(w, 5, g.key)
  putUint(w, 6, g.nextSeq)
  putString(w, 7, g.source)
  putUint(w, 8, g.maxDatagramBytes)
  putUint(w, 9, g.maxFragments)
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

// ignoreBOM: a leading U+FEFF is part of the name; stripping it would let two topics meet.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

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
    case 'registered': {
      const groups: McastGroupAnnounce[] = []
      readFields(r, end, (f, wt) => {
        if (f === 1)
          push(topics, readString(r, wt, 'topic', lim.maxTopicBytes), lim.maxTopics, 'topics')
        else if (f === 2 && type !== 'leave') a = readUint(r, wt, 'lease')
        else if (f === 3 && type === 'register') flag = readBool(r, wt, 'resume')
        else if (f === 3 && type === 'registered') {
          const e = nestedEnd(r, wt, 'group', end)
          push(groups, decodeGroup(r, e, lim), lim.maxTopics, 'groups')
        } else return false
        return true
      })
      if (type === 'register') return { type, topics, leaseMs: a, resume: flag }
      if (type === 'registered') return { type, topics, leaseMs: a, groups }
      return { type, topics }
    }
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
    case 'data': {
      let signature: Uint8Array = new Uint8Array(0)
      const signatureField = type === 'data' ? 9 : 7
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
        else if (f === signatureField)
          signature = readBytes(r, wt, 'signature', lim.maxSignatureBytes)
        else return false
        return true
      })
      required(id, 'id')
      required(topic, 'topic')
      if (type === 'publish') {
        return { type, id, topic, class: cls, data, quorum: flag, surplus: a, signature }
      }
      if (type === 'deliver') {
        return { type, id, topic, class: cls, data, publisher: s2, quorum: flag, signature }
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
        signature,
      }
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
    case 'mcast-group':
      return { type, group: decodeGroup(r, end, lim) }
    case 'mcast-nack': {
      const entries: McastNackEntry[] = []
      readFields(r, end, (f, wt) => {
        if (f === 1) topic = readString(r, wt, 'topic', lim.maxTopicBytes)
        else if (f === 2) {
          const e = nestedEnd(r, wt, 'NACK entry', end)
          let seq = 0
          const fragments: number[] = []
          readFields(r, e, (ef, ewt) => {
            if (ef === 1) seq = readUint(r, ewt, 'seq')
            else if (ef === 2) {
              const i = readUint(r, ewt, 'fragment', lim.maxFragments - 1)
              push(fragments, i, lim.maxFragments, 'fragments')
            } else return false
            return true
          })
          if (seq === 0) throw new DecodeError('NACK entry without a sequence number')
          push(entries, { seq, fragments }, lim.maxNackEntries, 'NACK entries')
        } else return false
        return true
      })
      required(topic, 'topic')
      return { type, topic, entries }
    }
    case 'mcast-gone': {
      const seqs: number[] = []
      readFields(r, end, (f, wt) => {
        if (f === 1) topic = readString(r, wt, 'topic', lim.maxTopicBytes)
        else if (f === 2) push(seqs, readUint(r, wt, 'seq'), lim.maxNackEntries, 'GONE seqs')
        else return false
        return true
      })
      required(topic, 'topic')
      return { type, topic, seqs }
    }
    case 'mcast-probe':
    case 'mcast-probe-result':
      readFields(r, end, (f, wt) => {
        if (f === 1) topic = readString(r, wt, 'topic', lim.maxTopicBytes)
        else if (f === 2 && type === 'mcast-probe')
          data = readBytes(r, wt, 'nonce', MCAST_NONCE_BYTES)
        else if (f === 2) flag = readBool(r, wt, 'reaches')
        else return false
        return true
      })
      required(topic, 'topic')
      if (type === 'mcast-probe-result') return { type, topic, reaches: flag }
      if (data.length !== MCAST_NONCE_BYTES) {
        throw new DecodeError(`probe nonce must be ${MCAST_NONCE_BYTES} bytes`)
      }
      return { type, topic, nonce: data }
    case 'mcast-datagram':
      readFields(r, end, (f, wt) => {
        if (f === 1) data = readBytes(r, wt, 'datagram', lim.maxDatagramBytes)
        else return false
        return true
      })
      required(data, 'datagram')
      return { type, datagram: data }
  }
}

function decodeGroup(r: Reader, end: number, lim: RpCodecLimits): McastGroupAnnounce {
  const g: McastGroupAnnounce = {
    topic: '',
    group: '',
    port: 0,
    keyId: 0,
    key: new Uint8Array(0),
    nextSeq: 0,
    source: '',
    maxDatagramBytes: 0,
    maxFragments: 0,
  }
  readFields(r, end, (f, wt) => {
    if (f === 1) g.topic = readString(r, wt, 'topic', lim.maxTopicBytes)
    else if (f === 2) g.group = readString(r, wt, 'group', MAX_ADDRESS_BYTES)
    else if (f === 3) g.port = readUint(r, wt, 'port', 0xffff)
    else if (f === 4) g.keyId = readUint(r, wt, 'key id')
    else if (f === 5) g.key = readBytes(r, wt, 'group key', MCAST_KEY_BYTES)
    else if (f === 6) g.nextSeq = readUint(r, wt, 'next seq')
    else if (f === 7) g.source = readString(r, wt, 'source', MAX_ADDRESS_BYTES)
    else if (f === 8) g.maxDatagramBytes = readUint(r, wt, 'max datagram', lim.maxDatagramBytes)
    else if (f === 9) g.maxFragments = readUint(r, wt, 'max fragments', lim.maxFragments)
    else return false
    return true
  })
  required(g.topic, 'topic')
  required(g.group, 'group')
  required(g.source, 'source')
  if (g.key.length !== MCAST_KEY_BYTES) {
    throw new DecodeError(`group key must be ${MCAST_KEY_BYTES} bytes`)
  }
  if (g.port === 0 || g.nextSeq === 0 || g.maxDatagramBytes === 0 || g.maxFragments === 0) {
    throw new DecodeError('group announce lacks port, next seq or limits')
  }
  return g
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
