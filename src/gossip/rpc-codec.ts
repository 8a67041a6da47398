import { reader as createReader, type Reader } from 'protons-runtime'
import { DecodeError } from '../common/errors.ts'
import { expectWireType, LEN, readFields, VARINT } from '../common/protobuf-fields.ts'
import { ProtobufWriter } from '../common/protobuf-writer.ts'

/**
 * The gossipsub RPC protobuf (meshsub 1.0 to 1.2), written by hand with protons-runtime's
 * reader (and {@link ProtobufWriter}) so that every decode is bounded by {@link RpcLimits}.
 *
 * ```proto
 * message RPC { repeated SubOpts subscriptions = 1; repeated Message publish = 2; optional ControlMessage control = 3; }
 * message SubOpts { optional bool subscribe = 1; optional string topic = 2; }
 * message Message { optional bytes from = 1; optional bytes data = 2; optional bytes seqno = 3;
 *                   optional string topic = 4; optional bytes signature = 5; optional bytes key = 6; }
 * message ControlMessage { repeated ControlIHave ihave = 1; repeated ControlIWant iwant = 2;
 *   repeated ControlGraft graft = 3; repeated ControlPrune prune = 4; repeated ControlIDontWant idontwant = 5; }
 * message ControlIHave { optional string topicID = 1; repeated bytes messageIDs = 2; }
 * message ControlIWant { repeated bytes messageIDs = 1; }
 * message ControlGraft { optional string topicID = 1; }
 * message ControlPrune { optional string topicID = 1; repeated PeerInfo peers = 2; optional uint64 backoff = 3; }
 * message PeerInfo { optional bytes peerID = 1; optional bytes signedPeerRecord = 2; }
 * message ControlIDontWant { repeated bytes messageIDs = 1; }
 * ```
 *
 * meshsub 1.3 adds `optional ControlExtensions extensions = 6` to ControlMessage, and this
 * project's one-copy extension (doc/gossip-extension.md) registers, in the experimental
 * range, `optional bool oneCopy = 6110225` in ControlExtensions and
 * `optional OneCopy oneCopy = 6110225` in RPC:
 *
 * ```proto
 * message OneCopy { repeated string choke = 1; repeated string unchoke = 2;
 *                   repeated Announce announce = 3; repeated bytes ineed = 4;
 *                   optional uint32 hello = 5;
 *                   repeated Preamble preamble = 6; repeated bytes imreceiving = 7;
 *                   optional bytes sentTo = 8; repeated InLinks inLinks = 9;
 *                   repeated Distances distances = 10; optional uint32 ping = 11;
 *                   optional uint32 pong = 12; optional bytes source = 13; }
 * message Distances { optional bytes topicHash = 1; optional bytes entries = 2; }
 * message Announce { optional bytes topicHash = 1; optional bytes ids = 2; }
 * message InLinks { optional bytes topicHash = 1; optional bytes peers = 2; optional uint32 rank = 3; }
 * message Preamble { optional bytes messageID = 1; optional bytes topicHash = 2;
 *                    optional uint64 size = 3; }
 * ```
 *
 * The preamble extension (PREAMBLE / IMRECEIVING) is advertised with
 * `optional bool preamble = 6110226` in ControlExtensions; its two messages ride in the
 * OneCopy container (fields 6 and 7), so a peer may speak either extension or both.
 */

/** The field number of the one-copy extension in ControlExtensions and in RPC (experimental range). */
export const ONE_COPY_FIELD = 6110225

/** The field number of the preamble extension in ControlExtensions (experimental range). */
export const PREAMBLE_FIELD = 6110226

/**
 * The field number of the one-copy source-trees flag in ControlExtensions: distances, pings and
 * `source` go only to peers that sent it (a decoder without it skips the field).
 */
export const SOURCE_TREES_FIELD = 6110227

/** Bytes of a short message id in announces and INEEDs. */
export const SHORT_ID_BYTES = 8

/** Bytes of a topic hash in announces. */
export const TOPIC_HASH_BYTES = 4

/** Bytes of a peer hash in one-copy `sentTo` and `inLinks` (the first bytes of SHA-256 of the peer id). */
export const PEER_HASH_BYTES = 4

/** Bytes of one source-tree distance entry: a source's peer hash, then a uint16 (parent bit, distance). */
export const DISTANCE_ENTRY_BYTES = 6

/** A subscription change. */
export interface RpcSubscription {
  /** True to subscribe, false to unsubscribe. */
  subscribe: boolean
  /** The topic. */
  topic: string
}

/** A published message as it travels on the wire. */
export interface RpcMessage {
  /** The origin's peer id bytes (StrictSign only). */
  from?: Uint8Array
  /** The payload. */
  data?: Uint8Array
  /** An 8-byte big-endian sequence number (StrictSign only). */
  seqno?: Uint8Array
  /** The topic. */
  topic: string
  /** The origin's signature over the message without `signature` and `key`. */
  signature?: Uint8Array
  /** The origin's public key (protobuf-encoded libp2p key). */
  key?: Uint8Array
}

/** IHAVE: message ids the sender has in its cache for a topic. */
export interface RpcIHave {
  /** The topic. */
  topicID: string
  /** The advertised ids. */
  messageIDs: Uint8Array[]
}

/** IWANT: message ids the sender asks for. */
export interface RpcIWant {
  /** The requested ids. */
  messageIDs: Uint8Array[]
}

/** GRAFT: the sender added the receiver to its mesh of a topic. */
export interface RpcGraft {
  /** The topic. */
  topicID: string
}

/** A peer offered in PRUNE peer exchange. */
export interface RpcPeerInfo {
  /** The peer id bytes. */
  peerID?: Uint8Array
  /** A signed peer record envelope. */
  signedPeerRecord?: Uint8Array
}

/** PRUNE: the sender removed the receiver from its mesh of a topic. */
export interface RpcPrune {
  /** The topic. */
  topicID: string
  /** Peer exchange: other peers of the topic. */
  peers: RpcPeerInfo[]
  /** Seconds the receiver must wait before grafting again (v1.1). */
  backoff?: number
}

/** IDONTWANT (meshsub 1.2): the sender already has these messages. */
export interface RpcIDontWant {
  /** The ids. */
  messageIDs: Uint8Array[]
}

/** ControlExtensions (meshsub 1.3): what the sender speaks; sent once, in its first frame. */
export interface RpcExtensions {
  /** The sender speaks the one-copy extension. */
  oneCopy: boolean
  /** The sender speaks the preamble extension (set only when true). */
  preamble?: boolean
  /** The sender runs one-copy per-source trees (set only when true). */
  sourceTrees?: boolean
}

/** PREAMBLE: the sender is about to send this large message to the receiver. */
export interface RpcPreamble {
  /** The full message id. */
  messageID: Uint8Array
  /** The first {@link TOPIC_HASH_BYTES} bytes of SHA-256 of the topic. */
  topicHash: Uint8Array
  /** The message's payload size in bytes. */
  size: number
}

/** A one-copy announce: the sender has these messages of the topic. */
export interface RpcAnnounce {
  /** The first {@link TOPIC_HASH_BYTES} bytes of SHA-256 of the topic. */
  topicHash: Uint8Array
  /** Short ids ({@link SHORT_ID_BYTES} bytes each). */
  ids: Uint8Array[]
}

/** The one-copy extension's messages of one RPC. */
export interface RpcOneCopy {
  /** Topics on which the sender asks the receiver to stop pushing (announce instead). */
  choke: string[]
  /** Topics on which the sender asks the receiver to push again. */
  unchoke: string[]
  /** Messages the sender has. */
  announce: RpcAnnounce[]
  /** Short ids the sender asks the receiver to send. */
  ineed: Uint8Array[]
  /**
   * The sender speaks one-copy and has the receiver's advertisement: {@link HELLO_ASK} asks
   * for a reply, {@link HELLO_ACK} needs none (doc/gossip-extension.md, Negotiation).
   */
  hello?: number
  /** Preamble extension: large messages the sender starts sending to the receiver now. */
  preamble?: RpcPreamble[]
  /**
   * Preamble extension (IMRECEIVING): full ids of messages the sender is receiving from
   * another peer; the receiver holds back its copies for a while, but the sender does not
   * have them yet (unlike IDONTWANT).
   */
  imreceiving?: Uint8Array[]
  /**
   * One-copy: the messages of this frame went from the sender to each of these peers too
   * ({@link PEER_HASH_BYTES}-byte peer hashes; a publisher's flood).
   */
  sentTo?: Uint8Array[]
  /** One-copy: per topic, the sender's other eager in-links and the receiver's rank among them. */
  inLinks?: RpcInLinks[]
  /** One-copy source trees: per topic, the sender's distances from sources and parent bits. */
  distances?: RpcDistances[]
  /** One-copy source trees: a round-trip probe (a nonce the receiver echoes in `pong`). */
  ping?: number
  /** One-copy source trees: the nonce of a `ping` received, echoed. */
  pong?: number
  /**
   * One-copy source trees: the {@link PEER_HASH_BYTES}-byte peer hash of the publisher of this
   * frame's message (unsigned messages carry no origin).
   */
  source?: Uint8Array
}

/** One-copy source trees: one topic's distance entries. */
export interface RpcDistances {
  /** The first {@link TOPIC_HASH_BYTES} bytes of SHA-256 of the topic. */
  topicHash: Uint8Array
  /**
   * Entries of {@link DISTANCE_ENTRY_BYTES} bytes each: the source's peer hash, then a uint16
   * whose bit 15 says "you are my parent for this source" and bits 0-14 the distance in
   * 0.1 ms steps (0x7FFF unreachable).
   */
  entries: Uint8Array[]
}

/** One-copy: the sender's eager in-links of a topic other than the receiver, best first. */
export interface RpcInLinks {
  /** The first {@link TOPIC_HASH_BYTES} bytes of SHA-256 of the topic. */
  topicHash: Uint8Array
  /** Peer hashes ({@link PEER_HASH_BYTES} bytes each), best first. */
  peers: Uint8Array[]
  /** How many of `peers` rank before the receiver; absent: the receiver is a lazy in-link. */
  rank?: number
}

/** One-copy hello: "I speak one-copy and heard you; tell me you heard me". */
export const HELLO_ASK = 1
/** One-copy hello: "I speak one-copy and heard you" (the reply to {@link HELLO_ASK}). */
export const HELLO_ACK = 2

/** Control messages of one RPC. */
export interface RpcControl {
  /** IHAVE entries. */
  ihave: RpcIHave[]
  /** IWANT entries. */
  iwant: RpcIWant[]
  /** GRAFT entries. */
  graft: RpcGraft[]
  /** PRUNE entries. */
  prune: RpcPrune[]
  /** IDONTWANT entries. */
  idontwant: RpcIDontWant[]
  /** Extensions (meshsub 1.3), if present. */
  extensions?: RpcExtensions
}

/** One gossipsub RPC frame. */
export interface Rpc {
  /** Subscription changes. */
  subscriptions: RpcSubscription[]
  /** Published messages. */
  messages: RpcMessage[]
  /** Control messages, if any. */
  control?: RpcControl
  /** One-copy extension messages, if any. */
  oneCopy?: RpcOneCopy
}

/** Bounds on what one decoded frame may contain; a frame over any of them is rejected. */
export interface RpcLimits {
  /** Maximum frame size in bytes. */
  maxFrameBytes: number
  /** Maximum subscription entries. */
  maxSubscriptions: number
  /** Maximum published messages. */
  maxMessages: number
  /** Maximum message ids over all IHAVE entries. */
  maxIHaveIds: number
  /** Maximum message ids over all IWANT entries. */
  maxIWantIds: number
  /** Maximum message ids over all IDONTWANT entries. */
  maxIDontWantIds: number
  /** Maximum topic-carrying control entries (IHAVE, GRAFT, PRUNE). */
  maxControlTopics: number
  /** Maximum IHAVE entries (each names a topic and carries ids; an empty one still counts). */
  maxIHaveEntries: number
  /** Maximum IWANT entries (an empty one still counts). */
  maxIWantEntries: number
  /** Maximum IDONTWANT entries (an empty one still counts). */
  maxIDontWantEntries: number
  /** Maximum GRAFT and PRUNE entries together. */
  maxGraftPruneEntries: number
  /** Maximum occurrences of the control field (repeated ones merge, but each costs work). */
  maxControlMessages: number
  /**
   * Maximum protobuf fields read in one frame, at every depth, unknown ones included: bounds
   * the decoding work of any frame, whatever it is made of.
   */
  maxFields: number
  /** Maximum peers offered over all PRUNE entries. */
  maxPeerExchange: number
  /** Maximum length of a topic string, in bytes. */
  maxTopicLength: number
  /** Maximum length of a message id, in bytes. */
  maxIdLength: number
  /** Maximum one-copy CHOKE and UNCHOKE topics together. */
  maxChokes: number
  /** Maximum one-copy announce entries. */
  maxAnnounceEntries: number
  /** Maximum short ids over all one-copy announces and INEEDs. */
  maxShortIds: number
  /** Maximum PREAMBLE entries (preamble extension). */
  maxPreambles: number
  /** Maximum IMRECEIVING ids (preamble extension). */
  maxImReceivingIds: number
  /** Peer hashes per frame (one-copy `sentTo` and `inLinks` together). */
  maxPeerHashes: number
  /** One-copy source-tree distance entries per frame, over all topics. */
  maxDistanceEntries: number
}

/**
 * A frame crossed one of its {@link RpcLimits}: decoding stopped there, so the work spent on
 * it is bounded by the limit, not by the frame.
 */
export class RpcLimitError extends DecodeError {
  /** The limit that was crossed. */
  readonly limit: keyof RpcLimits
  /** Protobuf fields read before decoding stopped (the work spent on the frame). */
  readonly fieldsRead: number

  constructor(limit: keyof RpcLimits, value: number, fieldsRead: number) {
    super(`${limit} exceeded (${value})`)
    this.limit = limit
    this.fieldsRead = fieldsRead
  }
}

/** Defaults: generous enough for any honest peer, small enough to bound memory. */
export const DEFAULT_RPC_LIMITS: RpcLimits = {
  maxFrameBytes: 4 * 1024 * 1024,
  // An honest hello holds at most maxTopicsPerPeer (1,024) topics.
  maxSubscriptions: 2048,
  maxMessages: 5000,
  maxIHaveIds: 5000,
  maxIWantIds: 5000,
  // Implementations send IDONTWANT as messages arrive, one or a few ids at a time; stock
  // gossipsub takes at most 512 from a peer per heartbeat (and per entry) and sends one.
  maxIDontWantIds: 512,
  maxControlTopics: 5000,
  maxIHaveEntries: 1024,
  // Stock gossipsub and we send one IWANT and one IDONTWANT entry per frame: entries past a
  // few are padding, each a decode step (a 4 MiB frame holds 2 M empty ones).
  maxIWantEntries: 64,
  maxIDontWantEntries: 64,
  maxGraftPruneEntries: 2048,
  maxControlMessages: 16,
  maxFields: 40_000,
  maxPeerExchange: 256,
  maxTopicLength: 1024,
  maxIdLength: 256,
  maxChokes: 2048,
  maxAnnounceEntries: 1024,
  maxShortIds: 5000,
  // A sender announces each large message as it starts sending it: a few per frame.
  maxPreambles: 64,
  maxImReceivingIds: 1000,
  // A publisher's topic peers, or a few in-link lists.
  maxPeerHashes: 1024,
  // Twice the default `oneCopyMaxSources`: a topic's whole table fits one frame with room to spare.
  maxDistanceEntries: 16_384,
}

function tag(field: number, wireType: number): number {
  return (field << 3) | wireType
}

/** The one empty list every {@link emptyControl} starts with (frozen: add with {@link withEntry}). */
const NO_ENTRIES = Object.freeze([]) as unknown as never[]

/**
 * An empty control message. Its lists are one shared, frozen empty list until
 * {@link withEntry} gives them their own: a node queues one such message per peer it grafts,
 * prunes or gossips to at every heartbeat, and five fresh lists (a first push reserves 17
 * slots) were most of its bytes.
 */
export function emptyControl(): RpcControl {
  return {
    ihave: NO_ENTRIES,
    iwant: NO_ENTRIES,
    graft: NO_ENTRIES,
    prune: NO_ENTRIES,
    idontwant: NO_ENTRIES,
  }
}

/** `list` with `entry` added: a new list of one when it is empty (it may be {@link emptyControl}'s shared one). */
export function withEntry<T>(list: T[], entry: T): T[] {
  if (list.length === 0) return [entry]
  list.push(entry)
  return list
}

/** True when a control message carries nothing. */
export function isControlEmpty(c: RpcControl | undefined): boolean {
  return (
    c === undefined ||
    (c.ihave.length === 0 &&
      c.iwant.length === 0 &&
      c.graft.length === 0 &&
      c.prune.length === 0 &&
      c.idontwant.length === 0 &&
      c.extensions === undefined)
  )
}

/** Creates an empty one-copy message. */
export function emptyOneCopy(): RpcOneCopy {
  return { choke: [], unchoke: [], announce: [], ineed: [] }
}

/** True when a one-copy message carries nothing. */
export function isOneCopyEmpty(o: RpcOneCopy | undefined): boolean {
  return (
    o === undefined ||
    (o.choke.length === 0 &&
      o.unchoke.length === 0 &&
      o.announce.length === 0 &&
      o.ineed.length === 0 &&
      o.hello === undefined &&
      (o.preamble?.length ?? 0) === 0 &&
      (o.imreceiving?.length ?? 0) === 0 &&
      (o.sentTo?.length ?? 0) === 0 &&
      (o.inLinks?.length ?? 0) === 0 &&
      (o.distances?.length ?? 0) === 0 &&
      o.ping === undefined &&
      o.pong === undefined &&
      o.source === undefined)
  )
}

/** True when a one-copy container carries one-copy messages (not only preamble ones). */
export function hasOneCopyMessages(o: RpcOneCopy): boolean {
  return (
    o.choke.length > 0 ||
    o.unchoke.length > 0 ||
    o.announce.length > 0 ||
    o.ineed.length > 0 ||
    o.hello !== undefined ||
    (o.sentTo?.length ?? 0) > 0 ||
    (o.inLinks?.length ?? 0) > 0 ||
    (o.distances?.length ?? 0) > 0 ||
    o.ping !== undefined ||
    o.pong !== undefined ||
    o.source !== undefined
  )
}

function writeMessageFields(w: ProtobufWriter, m: RpcMessage, withAuth: boolean): void {
  if (m.from !== undefined) w.uint32(tag(1, LEN)).bytes(m.from)
  if (m.data !== undefined) w.uint32(tag(2, LEN)).bytes(m.data)
  if (m.seqno !== undefined) w.uint32(tag(3, LEN)).bytes(m.seqno)
  if (m.topic !== '') w.uint32(tag(4, LEN)).string(m.topic)
  if (!withAuth) return
  if (m.signature !== undefined) w.uint32(tag(5, LEN)).bytes(m.signature)
  if (m.key !== undefined) w.uint32(tag(6, LEN)).bytes(m.key)
}

function writeIds(w: ProtobufWriter, field: number, ids: Uint8Array[]): void {
  for (let i = 0; i < ids.length; i++) w.uint32(tag(field, LEN)).bytes(ids[i])
}

// Indexed loops: a for-of over a frozen list (see emptyControl) allocates an iterator result
// per entry, and every control frame a node sends is written here.
function writeControl(w: ProtobufWriter, c: RpcControl): void {
  for (let i = 0; i < c.ihave.length; i++) {
    const ih = c.ihave[i]
    w.uint32(tag(1, LEN)).fork()
    w.uint32(tag(1, LEN)).string(ih.topicID)
    writeIds(w, 2, ih.messageIDs)
    w.ldelim()
  }
  for (let i = 0; i < c.iwant.length; i++) {
    const iw = c.iwant[i]
    w.uint32(tag(2, LEN)).fork()
    writeIds(w, 1, iw.messageIDs)
    w.ldelim()
  }
  for (let i = 0; i < c.graft.length; i++) {
    const g = c.graft[i]
    w.uint32(tag(3, LEN)).fork()
    w.uint32(tag(1, LEN)).string(g.topicID)
    w.ldelim()
  }
  for (let i = 0; i < c.prune.length; i++) {
    const p = c.prune[i]
    w.uint32(tag(4, LEN)).fork()
    w.uint32(tag(1, LEN)).string(p.topicID)
    for (const peer of p.peers) {
      w.uint32(tag(2, LEN)).fork()
      if (peer.peerID !== undefined) w.uint32(tag(1, LEN)).bytes(peer.peerID)
      if (peer.signedPeerRecord !== undefined) w.uint32(tag(2, LEN)).bytes(peer.signedPeerRecord)
      w.ldelim()
    }
    if (p.backoff !== undefined) w.uint32(tag(3, VARINT)).uint64Number(p.backoff)
    w.ldelim()
  }
  for (let i = 0; i < c.idontwant.length; i++) {
    const d = c.idontwant[i]
    w.uint32(tag(5, LEN)).fork()
    writeIds(w, 1, d.messageIDs)
    w.ldelim()
  }
  if (c.extensions !== undefined) {
    w.uint32(tag(6, LEN)).fork()
    if (c.extensions.oneCopy) w.uint32(tag(ONE_COPY_FIELD, VARINT)).bool(true)
    if (c.extensions.preamble === true) w.uint32(tag(PREAMBLE_FIELD, VARINT)).bool(true)
    if (c.extensions.sourceTrees === true) w.uint32(tag(SOURCE_TREES_FIELD, VARINT)).bool(true)
    w.ldelim()
  }
}

function concat(ids: Uint8Array[], size = SHORT_ID_BYTES): Uint8Array {
  const out = new Uint8Array(ids.length * size)
  for (let i = 0; i < ids.length; i++) out.set(ids[i], i * size)
  return out
}

function writeOneCopy(w: ProtobufWriter, o: RpcOneCopy): void {
  for (const t of o.choke) w.uint32(tag(1, LEN)).string(t)
  for (const t of o.unchoke) w.uint32(tag(2, LEN)).string(t)
  for (const a of o.announce) {
    w.uint32(tag(3, LEN)).fork()
    w.uint32(tag(1, LEN)).bytes(a.topicHash)
    w.uint32(tag(2, LEN)).bytes(concat(a.ids))
    w.ldelim()
  }
  if (o.ineed.length > 0) w.uint32(tag(4, LEN)).bytes(concat(o.ineed))
  if (o.hello !== undefined) w.uint32(tag(5, VARINT)).uint32(o.hello)
  for (const p of o.preamble ?? []) {
    w.uint32(tag(6, LEN)).fork()
    w.uint32(tag(1, LEN)).bytes(p.messageID)
    w.uint32(tag(2, LEN)).bytes(p.topicHash)
    w.uint32(tag(3, VARINT)).uint64Number(p.size)
    w.ldelim()
  }
  for (const id of o.imreceiving ?? []) w.uint32(tag(7, LEN)).bytes(id)
  if ((o.sentTo?.length ?? 0) > 0) w.uint32(tag(8, LEN)).bytes(concat(o.sentTo!, PEER_HASH_BYTES))
  for (const l of o.inLinks ?? []) {
    w.uint32(tag(9, LEN)).fork()
    w.uint32(tag(1, LEN)).bytes(l.topicHash)
    w.uint32(tag(2, LEN)).bytes(concat(l.peers, PEER_HASH_BYTES))
    if (l.rank !== undefined) w.uint32(tag(3, VARINT)).uint32(l.rank)
    w.ldelim()
  }
  for (const d of o.distances ?? []) {
    w.uint32(tag(10, LEN)).fork()
    w.uint32(tag(1, LEN)).bytes(d.topicHash)
    w.uint32(tag(2, LEN)).bytes(concat(d.entries, DISTANCE_ENTRY_BYTES))
    w.ldelim()
  }
  if (o.ping !== undefined) w.uint32(tag(11, VARINT)).uint32(o.ping)
  if (o.pong !== undefined) w.uint32(tag(12, VARINT)).uint32(o.pong)
  if (o.source !== undefined) w.uint32(tag(13, LEN)).bytes(o.source)
}

/** The writer of every encoding here (encodings do not nest, and each copies its result out). */
const WRITER = new ProtobufWriter()

/** Encodes an RPC frame (without the length prefix). */
export function encodeRpc(rpc: Rpc): Uint8Array {
  const w = WRITER.reset()
  for (const s of rpc.subscriptions) {
    w.uint32(tag(1, LEN)).fork()
    w.uint32(tag(1, VARINT)).bool(s.subscribe)
    w.uint32(tag(2, LEN)).string(s.topic)
    w.ldelim()
  }
  for (const m of rpc.messages) {
    w.uint32(tag(2, LEN)).fork()
    writeMessageFields(w, m, true)
    w.ldelim()
  }
  if (!isControlEmpty(rpc.control)) {
    w.uint32(tag(3, LEN)).fork()
    writeControl(w, rpc.control!)
    w.ldelim()
  }
  if (!isOneCopyEmpty(rpc.oneCopy)) {
    w.uint32(tag(ONE_COPY_FIELD, LEN)).fork()
    writeOneCopy(w, rpc.oneCopy!)
    w.ldelim()
  }
  return w.finish()
}

const SIGN_PREFIX = new TextEncoder().encode('libp2p-pubsub:')
// ignoreBOM: a leading U+FEFF is part of a topic; stripping it would let two topics meet.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true })

/**
 * The bytes a StrictSign signature covers: `"libp2p-pubsub:"` followed by the message's
 * protobuf encoding without `signature` and `key`.
 */
export function signingBytes(m: RpcMessage): Uint8Array {
  const w = WRITER.reset()
  writeMessageFields(w, m, false)
  const body = w.finish()
  const out = new Uint8Array(SIGN_PREFIX.length + body.length)
  out.set(SIGN_PREFIX)
  out.set(body, SIGN_PREFIX.length)
  return out
}

/** Running totals checked against the limits while one frame is decoded. */
interface Budget {
  ihaveIds: number
  iwantIds: number
  idontwantIds: number
  controlTopics: number
  peers: number
  ihaveEntries: number
  iwantEntries: number
  idontwantEntries: number
  graftPruneEntries: number
  controlMessages: number
  chokes: number
  announceEntries: number
  shortIds: number
  preambles: number
  imReceivingIds: number
  peerHashes: number
  distanceEntries: number
  fields: number
}

type Counter = Exclude<keyof Budget, 'fields'>

/** The limit each running total is checked against. */
const LIMIT_OF: Record<Counter, keyof RpcLimits> = {
  ihaveIds: 'maxIHaveIds',
  iwantIds: 'maxIWantIds',
  idontwantIds: 'maxIDontWantIds',
  controlTopics: 'maxControlTopics',
  peers: 'maxPeerExchange',
  ihaveEntries: 'maxIHaveEntries',
  iwantEntries: 'maxIWantEntries',
  idontwantEntries: 'maxIDontWantEntries',
  graftPruneEntries: 'maxGraftPruneEntries',
  controlMessages: 'maxControlMessages',
  chokes: 'maxChokes',
  announceEntries: 'maxAnnounceEntries',
  shortIds: 'maxShortIds',
  preambles: 'maxPreambles',
  imReceivingIds: 'maxImReceivingIds',
  peerHashes: 'maxPeerHashes',
  distanceEntries: 'maxDistanceEntries',
}

/** A prefix check read past the bytes it was given: the rest of the frame decides. */
class Truncated extends Error {}

/**
 * The ids of one decoded IHAVE, IWANT or IDONTWANT entry, left where they lie in the frame:
 * the decoder validates and counts every id but records only its bounds, and an id becomes a
 * view into the frame when it is read. A router that examines a sample of a 5,000-id IHAVE
 * (or drops an entry past the peer's budget) so pays for what it reads, not for the frame.
 */
class FrameIds {
  /** Start and end offset of each id in the frame, in pairs. */
  readonly bounds: number[] = []
  /** The ids as an array, once something asked for them all (or set them). */
  all?: Uint8Array[]
  private readonly frame: Uint8Array
  /**
   * The id {@link at} read last, and its index: a frame decoded once is read by each of its
   * receivers (the simulator's shared codec gives one heartbeat IHAVE to all of them), and a
   * view per read was most of what handling a gossip frame allocated.
   */
  private lastAt = -1
  private lastView: Uint8Array | undefined

  constructor(frame: Uint8Array) {
    this.frame = frame
  }

  get length(): number {
    return this.all?.length ?? this.bounds.length >> 1
  }

  at(i: number): Uint8Array {
    if (this.all !== undefined) return this.all[i]
    if (i !== this.lastAt) {
      this.lastView = this.frame.subarray(this.bounds[2 * i], this.bounds[2 * i + 1])
      this.lastAt = i
    }
    return this.lastView!
  }

  list(): Uint8Array[] {
    if (this.all === undefined) {
      const all: Uint8Array[] = []
      for (let i = 0; i < this.bounds.length; i += 2) {
        all.push(this.frame.subarray(this.bounds[i], this.bounds[i + 1]))
      }
      this.all = all
    }
    return this.all
  }
}

const FRAME_IDS = Symbol('frame ids')

/** An entry that carries message ids (IHAVE, IWANT, IDONTWANT). */
interface WithIds {
  messageIDs: Uint8Array[]
}

/**
 * Gives a decoded entry its `messageIDs`: an array built on first access from `ids` (so the
 * entry reads, compares and spreads as a plain one), with `ids` kept hidden for
 * {@link idCountOf} and {@link idAt}, which read no more ids than they are asked for.
 */
function withIds<T extends object>(entry: T, ids: FrameIds): T & WithIds {
  if (ids.bounds.length === 0) return Object.assign(entry, { messageIDs: [] })
  Object.defineProperty(entry, 'messageIDs', {
    enumerable: true,
    configurable: true,
    get: () => ids.list(),
    set: (all: Uint8Array[]) => {
      ids.all = all
    },
  })
  Object.defineProperty(entry, FRAME_IDS, { value: ids })
  return entry as T & WithIds
}

function frameIdsOf(entry: WithIds): FrameIds | undefined {
  return (entry as { [FRAME_IDS]?: FrameIds })[FRAME_IDS]
}

/** The number of ids of an entry, without reading any of a decoded one. */
export function idCountOf(entry: WithIds): number {
  return frameIdsOf(entry)?.length ?? entry.messageIDs.length
}

/** The `i`-th id of an entry (`0 <= i <` {@link idCountOf}), reading only that one of a decoded one. */
export function idAt(entry: WithIds, i: number): Uint8Array {
  const ids = frameIdsOf(entry)
  return ids !== undefined ? ids.at(i) : entry.messageIDs[i]
}

/** The number of ids over `entries` (see {@link idCountOf}). */
export function idCount(entries: WithIds[]): number {
  let n = 0
  for (let i = 0; i < entries.length; i++) n += idCountOf(entries[i])
  return n
}

/** The number of short ids over one-copy `announces`. */
export function announcedIdCount(announces: RpcAnnounce[]): number {
  let n = 0
  for (let i = 0; i < announces.length; i++) n += announces[i].ids.length
  return n
}

class FrameDecoder {
  private readonly r: Reader
  private readonly limits: RpcLimits
  readonly budget: Budget = {
    ihaveIds: 0,
    iwantIds: 0,
    idontwantIds: 0,
    controlTopics: 0,
    peers: 0,
    ihaveEntries: 0,
    iwantEntries: 0,
    idontwantEntries: 0,
    graftPruneEntries: 0,
    controlMessages: 0,
    chokes: 0,
    announceEntries: 0,
    shortIds: 0,
    preambles: 0,
    imReceivingIds: 0,
    peerHashes: 0,
    distanceEntries: 0,
    fields: 0,
  }

  /**
   * The length of the whole frame: `bytes.length`, or more when `bytes` is only its first
   * part (a prefix check, where reading past the prefix stops with {@link Truncated}).
   */
  private readonly frameLength: number

  constructor(bytes: Uint8Array, limits: RpcLimits, frameLength = bytes.length) {
    this.r = createReader(bytes)
    this.limits = limits
    this.frameLength = frameLength
  }

  /** Counts one more of `counter`; throws as soon as its limit is crossed. */
  private count(counter: Counter): void {
    const limit = LIMIT_OF[counter]
    if (++this.budget[counter] > this.limits[limit]) {
      throw new RpcLimitError(limit, this.budget[counter], this.budget.fields)
    }
  }

  /** `readFields`, counting every field (unknown ones too) against `maxFields`. */
  private fields(end: number, on: (field: number, wireType: number) => boolean): void {
    readFields(this.r, end, (field, wt) => {
      if (++this.budget.fields > this.limits.maxFields) {
        throw new RpcLimitError('maxFields', this.budget.fields, this.budget.fields)
      }
      return on(field, wt)
    })
  }

  rpc(): Rpc {
    this.countEntries()
    const rpc: Rpc = { subscriptions: [], messages: [] }
    this.fields(this.r.len, (field, wt) => {
      if (field === 1 && wt === LEN) {
        if (rpc.subscriptions.length >= this.limits.maxSubscriptions) {
          throw new RpcLimitError(
            'maxSubscriptions',
            rpc.subscriptions.length + 1,
            this.budget.fields,
          )
        }
        rpc.subscriptions.push(this.subscription())
      } else if (field === 2 && wt === LEN) {
        if (rpc.messages.length >= this.limits.maxMessages) {
          throw new RpcLimitError('maxMessages', rpc.messages.length + 1, this.budget.fields)
        }
        rpc.messages.push(this.message())
      } else if (field === 3 && wt === LEN) {
        this.count('controlMessages')
        // Repeated occurrences of a non-repeated message field merge (protobuf rule).
        rpc.control ??= emptyControl()
        this.control(rpc.control)
      } else if (field === ONE_COPY_FIELD && wt === LEN) {
        this.count('controlMessages')
        rpc.oneCopy ??= emptyOneCopy()
        this.oneCopy(rpc.oneCopy)
      } else return false
      return true
    })
    return rpc
  }

  /**
   * Counts the top-level subscriptions and messages, skipping their bodies, and throws when
   * either crosses its limit: such a frame is refused before any entry is decoded (a frame of
   * 5,000 subscriptions used to cost 2,048 topic strings first). Stops quietly at anything it
   * cannot skip (or after `maxFields` fields, or past `maxControlMessages` control fields),
   * leaving the full decode to judge the frame.
   */
  private countEntries(): void {
    const r = this.r
    const start = r.pos
    let subscriptions = 0
    let messages = 0
    let controls = 0
    try {
      for (let n = 0; n < this.limits.maxFields && r.pos < r.len; n++) {
        const key = r.uint32()
        if ((key & 7) !== LEN) break
        const length = r.uint32()
        const field = key >>> 3
        // Past the control limit the full decode stops anyway, at the same point.
        if (
          (field === 3 || field === ONE_COPY_FIELD) &&
          ++controls > this.limits.maxControlMessages
        ) {
          break
        }
        if (field === 1 && ++subscriptions > this.limits.maxSubscriptions) {
          throw new RpcLimitError('maxSubscriptions', subscriptions, 0)
        }
        if (field === 2 && ++messages > this.limits.maxMessages) {
          throw new RpcLimitError('maxMessages', messages, 0)
        }
        if (length > this.frameLength - r.pos) break
        r.pos += length
      }
    } catch (err) {
      if (err instanceof RpcLimitError) throw err
      // A varint past the end: the full decode reports it.
    } finally {
      r.pos = start
    }
  }

  /** Reads a length prefix and checks it against `limit` and against the frame. */
  private length(limit?: 'maxTopicLength' | 'maxIdLength'): number {
    const n = this.r.uint32()
    if (limit !== undefined && n > this.limits[limit]) {
      throw new RpcLimitError(limit, n, this.budget.fields)
    }
    if (n > this.frameLength - this.r.pos) throw new DecodeError('length exceeds frame')
    return n
  }

  /** The end of a nested message (in a prefix check, at most the prefix's end). */
  private nested(): number {
    const n = this.length()
    return Math.min(this.r.pos + n, this.r.len)
  }

  private bytes(limit?: 'maxTopicLength' | 'maxIdLength'): Uint8Array {
    const n = this.length(limit)
    const r = this.r
    if (n > r.len - r.pos) throw new Truncated()
    const out = r.buf.subarray(r.pos, r.pos + n)
    r.pos += n
    return out
  }

  private string(): string {
    return utf8.decode(this.bytes('maxTopicLength'))
  }

  private subscription(): RpcSubscription {
    const end = this.nested()
    const s: RpcSubscription = { subscribe: false, topic: '' }
    this.fields(end, (field, wt) => {
      if (field === 1) {
        expectWireType(wt, VARINT)
        s.subscribe = this.r.uint32() !== 0
      } else if (field === 2) {
        expectWireType(wt, LEN)
        s.topic = this.string()
      } else return false
      return true
    })
    return s
  }

  private message(): RpcMessage {
    const end = this.nested()
    const m: RpcMessage = { topic: '' }
    this.fields(end, (field, wt) => {
      if (field < 1 || field > 6) return false
      expectWireType(wt, LEN)
      if (field === 1) m.from = this.bytes()
      else if (field === 2) m.data = this.bytes()
      else if (field === 3) m.seqno = this.bytes()
      else if (field === 4) m.topic = this.string()
      else if (field === 5) m.signature = this.bytes()
      else m.key = this.bytes()
      return true
    })
    return m
  }

  /**
   * Reads the id (field `field`, LEN) whose key was just read, then every id right after it
   * with the same one-byte key, in one loop up to `end`: an entry may hold thousands, and
   * going back through `readFields` costs two callbacks each. Counts and checks each field
   * and id exactly as that would (same limits, same errors), but only records where each id
   * lies (see {@link FrameIds}), with its running totals in locals: the first such frame a
   * process sees runs this loop before it is compiled, so each step is kept to a few reads.
   */
  private ids(
    into: FrameIds,
    counter: 'ihaveIds' | 'iwantIds' | 'idontwantIds',
    field: number,
    end: number,
  ): void {
    const r = this.r
    const buf = r.buf
    const key = tag(field, LEN)
    const bounds = into.bounds
    const budget = this.budget
    const limit = LIMIT_OF[counter]
    const maxIds = this.limits[limit]
    const { maxIdLength, maxFields } = this.limits
    let count = budget[counter]
    let fields = budget.fields
    let pos = r.pos
    try {
      for (;;) {
        if (++count > maxIds) throw new RpcLimitError(limit, count, fields)
        let n = buf[pos]
        if (n < 0x80) pos++
        else {
          // A length of more than one byte (or none left): the reader's own varint.
          r.pos = pos
          n = r.uint32()
          pos = r.pos
        }
        if (n > maxIdLength) throw new RpcLimitError('maxIdLength', n, fields)
        if (n > this.frameLength - pos) throw new DecodeError('length exceeds frame')
        if (n > r.len - pos) throw new Truncated()
        bounds.push(pos, pos + n)
        pos += n
        if (pos > end) throw new DecodeError('field overruns its enclosing message')
        if (pos >= end || buf[pos] !== key) return
        if (++fields > maxFields) throw new RpcLimitError('maxFields', fields, fields)
        pos++
      }
    } finally {
      r.pos = pos
      budget[counter] = count
      budget.fields = fields
    }
  }

  /**
   * Splits a bytes field of concatenated `size`-byte items (`what`, for errors), each counted
   * against `counter`'s limit. No size cap on the field: the items are views into the frame,
   * counted one by one.
   */
  private split(into: Uint8Array[], size: number, counter: Counter, what: string): void {
    const all = this.bytes()
    if (all.length % size !== 0) {
      throw new DecodeError(`${what} of ${all.length} bytes, not a multiple of ${size}`)
    }
    for (let i = 0; i < all.length; i += size) {
      this.count(counter)
      into.push(all.subarray(i, i + size))
    }
  }

  /** Splits concatenated short ids, each counted against `maxShortIds`. */
  private shortIds(into: Uint8Array[]): void {
    this.split(into, SHORT_ID_BYTES, 'shortIds', 'short ids')
  }

  /** Splits concatenated peer hashes, each counted against `maxPeerHashes`. */
  private peerHashes(into: Uint8Array[]): void {
    this.split(into, PEER_HASH_BYTES, 'peerHashes', 'peer hashes')
  }

  private topicHash(): Uint8Array {
    const hash = this.bytes()
    if (hash.length > TOPIC_HASH_BYTES) {
      throw new DecodeError(`topic hash of ${hash.length} bytes, more than ${TOPIC_HASH_BYTES}`)
    }
    return hash
  }

  private oneCopy(o: RpcOneCopy): void {
    const end = this.nested()
    this.fields(end, (field, wt) => {
      if (field < 1 || field > 13) return false
      if (field === 5 || field === 11 || field === 12) {
        expectWireType(wt, VARINT)
        const v = this.r.uint32()
        if (field === 5) o.hello = v
        else if (field === 11) o.ping = v
        else o.pong = v
        return true
      }
      expectWireType(wt, LEN)
      if (field === 6) {
        this.count('preambles')
        o.preamble ??= []
        o.preamble.push(this.preamble())
      } else if (field === 7) {
        this.count('imReceivingIds')
        o.imreceiving ??= []
        o.imreceiving.push(this.bytes('maxIdLength'))
      } else if (field === 8) {
        o.sentTo ??= []
        this.peerHashes(o.sentTo)
      } else if (field === 9) {
        this.count('chokes')
        o.inLinks ??= []
        o.inLinks.push(this.inLinks())
      } else if (field === 10) {
        this.count('chokes')
        o.distances ??= []
        o.distances.push(this.distances())
      } else if (field === 13) {
        const hash = this.bytes()
        if (hash.length !== PEER_HASH_BYTES) {
          throw new DecodeError(`source of ${hash.length} bytes, not ${PEER_HASH_BYTES}`)
        }
        o.source = hash
      } else if (field === 1 || field === 2) {
        this.count('chokes')
        ;(field === 1 ? o.choke : o.unchoke).push(this.string())
      } else if (field === 4) {
        this.shortIds(o.ineed)
      } else {
        this.count('announceEntries')
        const sub = this.nested()
        const a: RpcAnnounce = { topicHash: new Uint8Array(0), ids: [] }
        this.fields(sub, (f, w) => {
          if (f !== 1 && f !== 2) return false
          expectWireType(w, LEN)
          if (f === 1) a.topicHash = this.topicHash()
          else this.shortIds(a.ids)
          return true
        })
        o.announce.push(a)
      }
      return true
    })
  }

  private distances(): RpcDistances {
    const end = this.nested()
    const d: RpcDistances = { topicHash: new Uint8Array(0), entries: [] }
    this.fields(end, (f, w) => {
      if (f === 1) {
        expectWireType(w, LEN)
        d.topicHash = this.topicHash()
      } else if (f === 2) {
        expectWireType(w, LEN)
        this.split(d.entries, DISTANCE_ENTRY_BYTES, 'distanceEntries', 'distance entries')
      } else return false
      return true
    })
    return d
  }

  private inLinks(): RpcInLinks {
    const end = this.nested()
    const l: RpcInLinks = { topicHash: new Uint8Array(0), peers: [] }
    this.fields(end, (f, w) => {
      if (f === 1) {
        expectWireType(w, LEN)
        l.topicHash = this.topicHash()
      } else if (f === 2) {
        expectWireType(w, LEN)
        this.peerHashes(l.peers)
      } else if (f === 3) {
        expectWireType(w, VARINT)
        l.rank = this.r.uint32()
      } else return false
      return true
    })
    return l
  }

  private preamble(): RpcPreamble {
    const end = this.nested()
    const p: RpcPreamble = { messageID: new Uint8Array(0), topicHash: new Uint8Array(0), size: 0 }
    this.fields(end, (f, w) => {
      if (f === 1) {
        expectWireType(w, LEN)
        p.messageID = this.bytes('maxIdLength')
      } else if (f === 2) {
        expectWireType(w, LEN)
        p.topicHash = this.topicHash()
      } else if (f === 3) {
        expectWireType(w, VARINT)
        p.size = this.r.uint64Number()
      } else return false
      return true
    })
    return p
  }

  private extensions(): RpcExtensions {
    const end = this.nested()
    const e: RpcExtensions = { oneCopy: false }
    this.fields(end, (field, wt) => {
      if (field !== ONE_COPY_FIELD && field !== PREAMBLE_FIELD && field !== SOURCE_TREES_FIELD) {
        return false
      }
      expectWireType(wt, VARINT)
      const on = this.r.uint32() !== 0
      if (field === ONE_COPY_FIELD) e.oneCopy = on
      else if (on && field === PREAMBLE_FIELD) e.preamble = true
      else if (on) e.sourceTrees = true
      return true
    })
    return e
  }

  private control(c: RpcControl): void {
    const end = this.nested()
    this.fields(end, (field, wt) => {
      if (field === 6 && wt === LEN) {
        // Extensions are read only once per frame; a repeat is a protocol error.
        if (c.extensions !== undefined) throw new DecodeError('Extensions twice in one frame')
        c.extensions = this.extensions()
        return true
      }
      if (field < 1 || field > 5) return false
      expectWireType(wt, LEN)
      // Counted before its body is read: an empty entry costs as much as a full one.
      if (field === 1) {
        this.count('ihaveEntries')
        this.count('controlTopics')
      } else if (field === 2) this.count('iwantEntries')
      else if (field === 5) this.count('idontwantEntries')
      else {
        this.count('graftPruneEntries')
        this.count('controlTopics')
      }
      const sub = this.nested()
      if (field === 1) {
        const ih = { topicID: '' }
        const ids = new FrameIds(this.r.buf)
        this.fields(sub, (f, w) => {
          if (f === 1) {
            expectWireType(w, LEN)
            ih.topicID = this.string()
          } else if (f === 2) {
            expectWireType(w, LEN)
            this.ids(ids, 'ihaveIds', 2, sub)
          } else return false
          return true
        })
        c.ihave = withEntry(c.ihave, withIds(ih, ids))
      } else if (field === 2 || field === 5) {
        const ids = new FrameIds(this.r.buf)
        this.fields(sub, (f, w) => {
          if (f !== 1) return false
          expectWireType(w, LEN)
          this.ids(ids, field === 2 ? 'iwantIds' : 'idontwantIds', 1, sub)
          return true
        })
        if (field === 2) c.iwant = withEntry(c.iwant, withIds({}, ids))
        else c.idontwant = withEntry(c.idontwant, withIds({}, ids))
      } else if (field === 3) {
        const g: RpcGraft = { topicID: '' }
        this.fields(sub, (f, w) => {
          if (f !== 1) return false
          expectWireType(w, LEN)
          g.topicID = this.string()
          return true
        })
        c.graft = withEntry(c.graft, g)
      } else {
        c.prune = withEntry(c.prune, this.prune(sub))
      }
      return true
    })
  }

  private prune(end: number): RpcPrune {
    const p: RpcPrune = { topicID: '', peers: [] }
    this.fields(end, (f, w) => {
      if (f === 1) {
        expectWireType(w, LEN)
        p.topicID = this.string()
      } else if (f === 2) {
        expectWireType(w, LEN)
        this.count('peers')
        const pe = this.nested()
        const info: RpcPeerInfo = {}
        this.fields(pe, (ff, ww) => {
          if (ff !== 1 && ff !== 2) return false
          expectWireType(ww, LEN)
          if (ff === 1) info.peerID = this.bytes('maxIdLength')
          else info.signedPeerRecord = this.bytes()
          return true
        })
        p.peers.push(info)
      } else if (f === 3) {
        expectWireType(w, VARINT)
        p.backoff = this.r.uint64Number()
      } else return false
      return true
    })
    return p
  }
}

/**
 * Decodes one RPC frame. Throws {@link DecodeError} (and nothing else) on malformed input,
 * and its subclass {@link RpcLimitError} as soon as the frame crosses any of `limits`.
 */
export function decodeRpc(
  bytes: Uint8Array,
  limits: RpcLimits = DEFAULT_RPC_LIMITS,
  work?: DecodeWork,
): Rpc {
  if (bytes.length > limits.maxFrameBytes) {
    throw new RpcLimitError('maxFrameBytes', bytes.length, 0)
  }
  const decoder = new FrameDecoder(bytes, limits)
  try {
    return decoder.rpc()
  } catch (err) {
    if (err instanceof DecodeError) throw err
    throw new DecodeError(`malformed RPC: ${(err as Error).message}`, { cause: err })
  } finally {
    if (work !== undefined) work.fields = decoder.budget.fields
  }
}

/**
 * Checks the first bytes of a frame of `frameLength` bytes that is still arriving: throws
 * {@link RpcLimitError} when they alone cross one of `limits` (so the whole frame would be
 * refused, at the same point), and returns otherwise. Lets a driver refuse a large hostile
 * frame from its first kilobytes instead of buffering all of it. Costs at most one decode of
 * the prefix, bounded by `maxFields`.
 */
export function checkRpcPrefix(
  prefix: Uint8Array,
  frameLength: number,
  limits: RpcLimits = DEFAULT_RPC_LIMITS,
): void {
  if (frameLength > limits.maxFrameBytes) {
    throw new RpcLimitError('maxFrameBytes', frameLength, 0)
  }
  try {
    new FrameDecoder(prefix, limits, Math.max(frameLength, prefix.length)).rpc()
  } catch (err) {
    // Anything else may come from where the prefix ends: only a crossed limit is certain.
    if (err instanceof RpcLimitError) throw err
  }
}

/** Filled in by {@link decodeRpc}: the work one decode took, whether it succeeded or not. */
export interface DecodeWork {
  /** Protobuf fields read (at every depth, unknown ones included). */
  fields: number
}

/**
 * Payload bytes of a frame: the data of its messages (everything else counts as control).
 * Indexed loops here and in the id counts: they run for every frame, and a for-of allocated
 * an iterator result in the profiles.
 */
export function payloadBytes(rpc: Rpc): number {
  let n = 0
  const messages = rpc.messages
  for (let i = 0; i < messages.length; i++) n += messages[i].data?.length ?? 0
  return n
}
