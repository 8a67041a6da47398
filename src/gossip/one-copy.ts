import { createHash } from 'node:crypto'
import type { PeerKey, Topic } from '../common/artifact.ts'
import type { TimerHandle } from '../common/env.ts'
import type { MessageId } from '../common/message-id.ts'
import { PEER_HASH_BYTES, SHORT_ID_BYTES, TOPIC_HASH_BYTES } from './rpc-codec.ts'

/** The short id of a message in one-copy announces: the first 8 bytes of SHA-256 of its id. */
export function shortId(id: MessageId): Uint8Array {
  return new Uint8Array(createHash('sha256').update(id).digest().subarray(0, SHORT_ID_BYTES))
}

/** A topic's hash in one-copy announces: the first 4 bytes of SHA-256 of its name. */
export function topicHash(topic: Topic): Uint8Array {
  return new Uint8Array(createHash('sha256').update(topic).digest().subarray(0, TOPIC_HASH_BYTES))
}

/** A peer's hash in `sentTo` and `inLinks`: the first 4 bytes of SHA-256 of its peer id string. */
export function peerHash(peer: PeerKey): number {
  return createHash('sha256').update(peer).digest().readUInt32BE(0)
}

/** A peer hash on the wire ({@link PEER_HASH_BYTES} bytes, big-endian). */
export function peerHashBytes(hash: number): Uint8Array {
  const b = new Uint8Array(PEER_HASH_BYTES)
  new DataView(b.buffer).setUint32(0, hash)
  return b
}

/**
 * Peer hashes on the wire, one buffer for all (a buffer and a DataView per hash cost ~10 times
 * more: a flood mark of 1,024 hashes is passed on with every message it marks).
 */
export function peerHashesBytes(hashes: Uint32Array): Uint8Array[] {
  const all = new Uint8Array(hashes.length * PEER_HASH_BYTES)
  const view = new DataView(all.buffer)
  const out = new Array<Uint8Array>(hashes.length)
  for (let i = 0; i < hashes.length; i++) {
    view.setUint32(i * PEER_HASH_BYTES, hashes[i])
    out[i] = all.subarray(i * PEER_HASH_BYTES, (i + 1) * PEER_HASH_BYTES)
  }
  return out
}

/** A peer hash read from the wire (by hand: a DataView per hash costs several times more). */
export function peerHashOf(b: Uint8Array): number {
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0
}

/** A map key for short ids and topic hashes (lower-case hex). */
export function bytesKey(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
}

/**
 * Which mesh links of each topic are lazy (announce only) under the one-copy extension. A
 * link is eager (full push) unless one end sent or received CHOKE on it since the last
 * UNCHOKE; both ends agree because each tells the other.
 */
export class LazyLinks {
  private readonly lazy = new Map<Topic, Set<PeerKey>>()
  private readonly changed: (topic: Topic, peer: PeerKey, lazy: boolean) => void

  /** `changed` hears every turn of a link (the peer score stops owing deliveries on lazy ones). */
  constructor(changed: (topic: Topic, peer: PeerKey, lazy: boolean) => void = () => {}) {
    this.changed = changed
  }

  /** True when the link to `peer` on `topic` carries announces only. */
  isLazy(topic: Topic, peer: PeerKey): boolean {
    return this.lazy.get(topic)?.has(peer) === true
  }

  /** Makes the link lazy; false when it already was. */
  setLazy(topic: Topic, peer: PeerKey): boolean {
    let set = this.lazy.get(topic)
    if (set === undefined) {
      set = new Set()
      this.lazy.set(topic, set)
    }
    if (set.has(peer)) return false
    set.add(peer)
    this.changed(topic, peer, true)
    return true
  }

  /** Makes the link eager; false when it already was. */
  setEager(topic: Topic, peer: PeerKey): boolean {
    const set = this.lazy.get(topic)
    if (set?.delete(peer) !== true) return false
    if (set.size === 0) this.lazy.delete(topic)
    this.changed(topic, peer, false)
    return true
  }

  /** Lazy links of `topic`. */
  count(topic: Topic): number {
    return this.lazy.get(topic)?.size ?? 0
  }

  /** Forgets every link of `topic`. */
  clearTopic(topic: Topic): void {
    this.lazy.delete(topic)
  }
}

/** What {@link AnnouncedPulls} needs from its router. */
export interface PullHost {
  now(): number
  setTimer(ms: number, fn: () => void): TimerHandle
  /** True once the message is here. */
  have(short: string): boolean
  /**
   * True while a copy of the message is known to be on its way (a PREAMBLE of it came and its
   * deadline has not passed): its first ask waits (absent: never).
   */
  incoming?(short: string): boolean
  /**
   * Asks `peer` for the message (INEED), promoting the link when it is a mesh link and
   * `promote` (the first round of asks; later rounds only recover lost frames).
   */
  pull(peer: PeerKey, topic: Topic, short: Uint8Array, promote: boolean): void
  /** We gave up on a message `peer` announced: every ask of it went unanswered. */
  unanswered(peer: PeerKey): void
  /**
   * The smoothed round-trip time to `peer`, ms, once measured (absent or undefined: the
   * follow-up is the configured one).
   */
  rttMs?(peer: PeerKey): number | undefined
  /** How long a peer takes to send one copy of a typical message of `topic`, ms (absent: 0). */
  copyMs?(topic: Topic): number
}

interface Pending {
  topic: Topic
  short: Uint8Array
  /** Peers that announced it, oldest first, not yet asked. */
  announcers: PeerKey[]
  /** Every peer that announced it, with when (they have it: no announce back to them). */
  from: Map<PeerKey, number>
  timer: TimerHandle | undefined
  asked: PeerKey | undefined
  /** When the first announce came. */
  firstAt: number
  /** Every announcer was asked once: the asks now only recover lost frames. */
  again: boolean
  /** Times each announcer was asked. */
  asks: Map<PeerKey, number>
  /** The peer whose announce opened it, while it counts against that peer's share (undelivered). */
  opener: PeerKey | undefined
}

/** How long a delivered message's announcers are remembered. */
const KEEP_DELIVERED_MS = 5000

/**
 * Times one announcer is asked for one message, and so times a node answers one peer's
 * INEED for one message (lost replies are asked again; gossipsub's IWANT allows 3).
 */
export const MAX_PULL_ASKS = 8

/**
 * Undelivered messages one peer's announces may have opened at once (it announced them first).
 * An honest announcer's messages come within a pull delay or two, a few at a time (at most 2
 * per announcer in the 1,000-node simulator runs); a peer announcing thousands of ids nobody
 * has would otherwise cost a timer and up to {@link MAX_PULL_ASKS} INEED frames per id and
 * crowd the shared table. Its ids past the share are not tracked (it is asked for none of them).
 */
export const MAX_PULLS_PER_ANNOUNCER = 64

/** Announcers remembered per message: more would only be asked after a long wait anyway. */
const MAX_ANNOUNCERS = 8

/** Lags of pushed copies behind their first announce kept per topic for the pull delay. */
const GAP_SAMPLES = 64

/** The pull delay is this quantile of the measured lags (plus {@link GAP_MARGIN_MS}). */
const GAP_QUANTILE = 0.9

/** Added to the measured lag: a copy a little later than usual is not pulled. */
const GAP_MARGIN_MS = 2

/** Lags measured before the measured pull delay replaces the configured one. */
const MIN_GAPS = 8

/** Round trips of the asked link an answer may take before the next announcer is asked. */
const FOLLOWUP_RTTS = 2

/** Added to the follow-up for the answerer's validation and queueing (ms). */
const FOLLOWUP_MARGIN_MS = 20

/** The least follow-up of an ask, however near the announcer (ms). */
const MIN_FOLLOWUP_MS = 40

/** How often a first ask held back by a copy on its way looks again (ms). */
const INCOMING_RECHECK_MS = 10

/**
 * Announced messages not yet here. The first announcer is asked after `delayMs` (0 for one
 * outside the mesh, whose announce is gossip, not a lazy push), the next one `followupMs`
 * later if the reply has not come, and so on round the announcers until `giveUpMs` after
 * the first announce (when the announcers' message caches have dropped it). Bounded by
 * `maxTracked` messages.
 */
export class AnnouncedPulls {
  private readonly pending = new Map<string, Pending>()
  /** Undelivered messages each peer's announce opened (see {@link MAX_PULLS_PER_ANNOUNCER}). */
  private readonly opened = new Map<PeerKey, number>()
  /**
   * Per connected peer, our asks in a row it let time out: the next ask of a message goes to
   * the announcer with the fewest (a relay that announces but never answers is asked last,
   * not first, whose timeout costs `followupMs`). Reset when it answers; gone with the peer.
   */
  private readonly timedOut = new Map<PeerKey, number>()
  /** Recent lags of pushed copies behind their first mesh announce, per topic (ring). */
  private readonly gaps = new Map<Topic, number[]>()
  private readonly gapAt = new Map<Topic, number>()
  private readonly host: PullHost
  private readonly followupMs: number
  private readonly giveUpMs: number
  private readonly maxTracked: number

  constructor(host: PullHost, followupMs: number, giveUpMs: number, maxTracked: number) {
    this.host = host
    this.followupMs = followupMs
    this.giveUpMs = giveUpMs
    this.maxTracked = maxTracked
  }

  /**
   * `peer` announced `short` on `topic`; it is asked after `delayMs` unless it arrives. False
   * when the message is not tracked because `peer`'s announces already opened their share of
   * undelivered messages ({@link MAX_PULLS_PER_ANNOUNCER}).
   */
  announced(peer: PeerKey, topic: Topic, short: Uint8Array, key: string, delayMs: number): boolean {
    let p = this.pending.get(key)
    if (p === undefined) {
      if (this.pending.size >= this.maxTracked) return true
      const opened = this.opened.get(peer) ?? 0
      if (opened >= MAX_PULLS_PER_ANNOUNCER) return false
      this.opened.set(peer, opened + 1)
      p = {
        topic,
        short,
        announcers: [],
        from: new Map(),
        timer: undefined,
        asked: undefined,
        firstAt: this.host.now(),
        again: false,
        asks: new Map(),
        opener: peer,
      }
      this.pending.set(key, p)
      const entry = p
      p.timer = this.host.setTimer(Math.min(delayMs, this.measuredDelay(topic)), () =>
        this.askNext(key, entry),
      )
    }
    if (p.from.has(peer) || p.from.size >= MAX_ANNOUNCERS) return true
    p.from.set(peer, this.host.now())
    p.announcers.push(peer)
    return true
  }

  /** Undelivered messages `peer`'s announces opened (see {@link MAX_PULLS_PER_ANNOUNCER}). */
  openedBy(peer: PeerKey): number {
    return this.opened.get(peer) ?? 0
  }

  /** `p` no longer counts against its opener's share (it arrived, or was given up). */
  private release(p: Pending): void {
    if (p.opener === undefined) return
    const n = (this.opened.get(p.opener) ?? 1) - 1
    if (n > 0) this.opened.set(p.opener, n)
    else this.opened.delete(p.opener)
    p.opener = undefined
  }

  /** Peers that announced the message `key` (they need no announce from us). */
  announcers(key: string): ReadonlyMap<PeerKey, number> | undefined {
    return this.pending.get(key)?.from
  }

  /** True when we asked `peer` for `key` (its copy is a reply, not a push). */
  askedOf(key: string, peer: PeerKey): boolean {
    return this.pending.get(key)?.asked === peer
  }

  /**
   * `peer` sent a copy of `key` we already had. If it answers our ask for a message we
   * published (announced back to us), the asks go on as before, but the entry no longer
   * counts against its opener's share, as a delivered one would not. From a peer asked
   * earlier, it is that ask's answer, come after the next ask went (see {@link followupFor}).
   */
  answeredKnown(key: string, peer: PeerKey): void {
    const p = this.pending.get(key)
    if (p === undefined) return
    if (p.asked === peer) this.release(p)
    // A copy from a peer asked earlier is its answer, however late: it does not withhold.
    if (p.asks.has(peer)) this.timedOut.delete(peer)
  }

  /**
   * The message arrived: stop asking. Who announced it and whom we asked are kept for
   * `KEEP_DELIVERED_MS`, while late copies and announces may still come.
   */
  delivered(key: string, from?: PeerKey): ReadonlyMap<PeerKey, number> | undefined {
    const p = this.pending.get(key)
    if (p === undefined) return undefined
    if (from !== undefined && p.asks.has(from)) this.timedOut.delete(from)
    this.release(p)
    // How long a pushed copy lagged its first announce: the pull delay follows it.
    if (p.timer !== undefined && p.asked === undefined)
      this.noteGap(p.topic, this.host.now() - p.firstAt)
    p.timer?.cancel()
    p.announcers.length = 0
    p.timer = this.host.setTimer(KEEP_DELIVERED_MS, () => {
      if (this.pending.get(key) === p) this.pending.delete(key)
    })
    return p.from
  }

  /**
   * The announcer to ask next: of those with the fewest timed-out asks in a row, the nearest
   * (least measured RTT: its answer comes first), else the first. Asking the first announcer
   * instead cost round trips of up to 190 ms where a near one had announced a few ms later
   * (20% silent relays, trees for every member, 1,000 simulated nodes: p99 2.12× → 1.69× the
   * honest run's).
   */
  private nextAnnouncer(p: Pending): PeerKey | undefined {
    let best = -1
    let fewest = Number.POSITIVE_INFINITY
    let nearest = Number.POSITIVE_INFINITY
    for (let i = 0; i < p.announcers.length; i++) {
      const n = this.timedOut.get(p.announcers[i]) ?? 0
      const rtt = this.host.rttMs?.(p.announcers[i]) ?? Number.POSITIVE_INFINITY
      if (n < fewest || (n === fewest && rtt < nearest)) {
        fewest = n
        nearest = rtt
        best = i
      }
    }
    return best < 0 ? undefined : p.announcers.splice(best, 1)[0]
  }

  /** A peer is gone: it will not answer. */
  peerGone(peer: PeerKey): void {
    this.timedOut.delete(peer)
    for (const p of this.pending.values()) {
      const i = p.announcers.indexOf(peer)
      if (i >= 0) p.announcers.splice(i, 1)
    }
  }

  /** Messages tracked. */
  get size(): number {
    return this.pending.size
  }

  /** Cancels every timer. */
  clear(): void {
    for (const p of this.pending.values()) p.timer?.cancel()
    this.pending.clear()
    this.opened.clear()
  }

  /**
   * The pull delay of `topic`: the {@link GAP_QUANTILE} of how long pushed copies lagged
   * their first announce lately, so only copies later than usual are pulled (the caller's
   * delay caps it).
   */
  measuredDelay(topic: Topic): number {
    const g = this.gaps.get(topic)
    if (g === undefined || g.length < MIN_GAPS) return Number.POSITIVE_INFINITY
    const sorted = [...g].sort((a, b) => a - b)
    return sorted[Math.floor(GAP_QUANTILE * (sorted.length - 1))] + GAP_MARGIN_MS
  }

  private noteGap(topic: Topic, gap: number): void {
    let g = this.gaps.get(topic)
    if (g === undefined) {
      g = []
      this.gaps.set(topic, g)
    }
    const at = this.gapAt.get(topic) ?? 0
    g[at] = gap
    this.gapAt.set(topic, (at + 1) % GAP_SAMPLES)
  }

  private askNext(key: string, p: Pending): void {
    p.timer = undefined
    if (this.pending.get(key) !== p) return
    if (this.host.have(key)) {
      p.announcers.length = 0
      this.release(p)
      return
    }
    // The last ask timed out (this is its follow-up).
    if (p.asked !== undefined) this.timedOut.set(p.asked, (this.timedOut.get(p.asked) ?? 0) + 1)
    if (p.announcers.length === 0 && this.host.now() - p.firstAt < this.giveUpMs) {
      // Every announcer was asked and no reply came (lost frames): ask them all again, while
      // they may still have it. A fixed number of rounds (3) lost 1 in ~2,000 deliveries at
      // 30% frame loss: with two announcers, six lost round trips in a row are not rare.
      for (const a of p.from.keys()) if ((p.asks.get(a) ?? 0) < MAX_PULL_ASKS) p.announcers.push(a)
      p.again = true
    }
    if (p.asked === undefined && this.host.incoming?.(key) === true) {
      // A PREAMBLE said a copy is coming: pulling now would most likely bring a second one.
      // Its deadline bounds the wait (then the preamble is overdue and this asks).
      p.timer = this.host.setTimer(INCOMING_RECHECK_MS, () => this.askNext(key, p))
      return
    }
    // No copy by the delay: a lag at least that long (so the delay cannot only shrink).
    if (p.asked === undefined && this.host.now() > p.firstAt)
      this.noteGap(p.topic, 2 * (this.host.now() - p.firstAt))
    const peer = this.nextAnnouncer(p)
    if (peer === undefined) {
      this.release(p)
      this.pending.delete(key)
      for (const asked of p.asks.keys()) this.host.unanswered(asked)
      return
    }
    p.asked = peer
    p.asks.set(peer, (p.asks.get(peer) ?? 0) + 1)
    this.host.pull(peer, p.topic, p.short, !p.again)
    p.timer = this.host.setTimer(this.followupFor(peer, p.topic), () => this.askNext(key, p))
  }

  /**
   * How long an ask of `peer` waits for its answer before the next announcer is asked:
   * {@link FOLLOWUP_RTTS} of the link's round trips plus one copy's sending time and
   * {@link FOLLOWUP_MARGIN_MS} (an honest answer comes in about one round trip and a few ms),
   * within `followupMs`; `followupMs` while the link's RTT is unmeasured. A relay that
   * announces but never answers then costs its askers two round trips, not `followupMs`; an
   * answer that comes after the next ask went costs one duplicate, and still counts as an
   * answer (the peer's timed-out count is reset).
   */
  private followupFor(peer: PeerKey, topic: Topic): number {
    const rtt = this.host.rttMs?.(peer)
    if (rtt === undefined) return this.followupMs
    const due = FOLLOWUP_RTTS * rtt + (this.host.copyMs?.(topic) ?? 0) + FOLLOWUP_MARGIN_MS
    return Math.min(this.followupMs, Math.max(MIN_FOLLOWUP_MS, due))
  }
}

/** A link's change of role chosen at a heartbeat: CHOKE or UNCHOKE it. */
export interface RoleChange {
  peer: PeerKey
  /** True: CHOKE (announce to me instead), false: UNCHOKE (push to me again). */
  lazy: boolean
}

/** Messages per topic whose arrivals are kept for choosing eager in-links. */
const ARRIVAL_WINDOW = 32

/**
 * What a mesh peer that brought no copy or announce of a message costs in the choice of
 * eager in-links: it came late (after us), by an unknown margin.
 */
const LATE_MS = 100

/** Fewer messages than this in the window: roles are kept, only their count is fixed. */
const MIN_SAMPLES = 4

/**
 * A better set of eager in-links replaces the current one only when it saves this share of
 * its delay and at least {@link SWITCH_MIN_MS} per message (role changes cost copies in flight).
 */
const SWITCH_GAIN = 0.15

/**
 * Eager in-links kept beyond `minEager` while fewer than {@link MIN_SAMPLES} messages were
 * seen: they were chosen before any message came, two more make the first messages faster.
 */
const LEARNING_EXTRA = 2

/**
 * The first message of a topic is followed, this long after it came, by a choice of eager
 * in-links from that message alone (the heartbeat's choice waits for {@link MIN_SAMPLES}):
 * a mesh peer heard from later counts as {@link LATE_MS} late anyway.
 */
const FIRST_CHOICE_MS = LATE_MS

/** See {@link SWITCH_GAIN} (ms per message). */
const SWITCH_MIN_MS = 2

/**
 * Eager in-links beyond the first are kept only while each saves this much delay per
 * message (ms) over the window: a node whose messages mostly come first from one peer takes
 * one copy, one that hears different sources first from different peers takes two or more.
 */
const EXTRA_GAIN_MS = 15

/** Heartbeats an eager in-link that pushed nothing while messages came is passed over. */
const BENCH_HEARTBEATS = 30

interface Arrivals {
  /** When the first copy or announce of the message came (from anyone). */
  firstAt: number
  /** When each mesh peer's copy or announce came. */
  at: Map<PeerKey, number>
}

interface PeerRecord {
  /** Copies pushed by the peer since the last heartbeat. */
  pushes: number
  /** Eager at the last heartbeat. */
  wasEager: boolean
  /** Heartbeats left during which it is not chosen eager. */
  benched: number
}

/**
 * When each mesh peer brought each recent message of a topic (its pushed copy or its
 * announce, whichever came first), for the last {@link ARRIVAL_WINDOW} messages. Eager
 * in-links are chosen as the set of peers that would have brought these messages earliest
 * together (each message counts the earliest of the set), so two eager in-links cover
 * different sources instead of both being the best for the same ones.
 */
export class ArrivalLog {
  private readonly messages = new Map<Topic, Map<string, Arrivals>>()
  private readonly peers = new Map<Topic, Map<PeerKey, PeerRecord>>()
  /** Messages of each topic since the last heartbeat. */
  private readonly since = new Map<Topic, number>()
  /** Eager in-links each topic keeps, as chosen at the last heartbeat with enough samples. */
  private readonly wanted = new Map<Topic, number>()

  /** Eager in-links `topic` keeps (`fallback` until a heartbeat chose from enough samples). */
  eagerWanted(topic: Topic, fallback: number): number {
    return this.wanted.get(topic) ?? fallback
  }

  /** Message `key` of `topic` arrived first at `at`; `peers` brought it (copy or announce) at their times. */
  first(topic: Topic, key: string, at: number, peers: Iterable<[PeerKey, number]>): void {
    let m = this.messages.get(topic)
    if (m === undefined) {
      m = new Map()
      this.messages.set(topic, m)
    }
    if (m.size >= ARRIVAL_WINDOW) m.delete(m.keys().next().value as string)
    const entry: Arrivals = { firstAt: at, at: new Map() }
    for (const [p, t] of peers) {
      entry.at.set(p, t)
      if (t < entry.firstAt) entry.firstAt = t
    }
    m.set(key, entry)
    this.since.set(topic, (this.since.get(topic) ?? 0) + 1)
  }

  /** Mesh peer `peer` brought message `key` of `topic` at `at` after it was here. */
  late(topic: Topic, key: string, peer: PeerKey, at: number): void {
    const entry = this.messages.get(topic)?.get(key)
    if (entry !== undefined && !entry.at.has(peer)) entry.at.set(peer, at)
  }

  /** `peer` pushed a copy of a `topic` message (first or not). */
  pushed(topic: Topic, peer: PeerKey): void {
    this.record(topic, peer).pushes++
  }

  /**
   * The heartbeat's role changes for `topic`: `candidates` are the mesh peers that speak
   * one-copy, `isLazy` their current in-link roles, `others` the mesh peers that always push.
   * Keeps `minEager` eager in-links in all (those that always push count), chosen greedily as
   * the peers that bring the window's messages earliest together; the current set stays unless
   * the new one saves {@link SWITCH_GAIN} of its delay. An eager in-link that pushed nothing
   * while at least two messages came is passed over for {@link BENCH_HEARTBEATS} heartbeats.
   */
  select(
    topic: Topic,
    candidates: PeerKey[],
    isLazy: (peer: PeerKey) => boolean,
    others: PeerKey[],
    minEager: number,
    minSamples = MIN_SAMPLES,
    learningExtra = LEARNING_EXTRA,
  ): RoleChange[] {
    const came = this.since.get(topic) ?? 0
    this.since.set(topic, 0)
    for (const p of candidates) {
      const r = this.record(topic, p)
      if (r.benched > 0) r.benched--
      if (r.wasEager && !isLazy(p) && came >= 2 && r.pushes === 0) r.benched = BENCH_HEARTBEATS
      r.pushes = 0
    }
    const current = candidates.filter((p) => !isLazy(p))
    const want = Math.max(0, Math.min(candidates.length, minEager - others.length))
    const window = [...(this.messages.get(topic)?.values() ?? [])]
    let chosen: PeerKey[]
    if (window.length < minSamples) {
      // Too little seen: keep the current roles, fix their count (two spare: the first
      // messages come over in-links chosen before any message did).
      chosen = current.slice(0, want + learningExtra)
      for (const p of candidates) if (chosen.length < want && !chosen.includes(p)) chosen.push(p)
    } else {
      const cost = (set: PeerKey[]) => delayOf(window, [...others, ...set])
      const usable = candidates.filter((p) => this.record(topic, p).benched === 0)
      const pool = usable.length >= want ? usable : candidates
      chosen = []
      // At least one in-link; up to `want` + 1 while each saves EXTRA_GAIN_MS per message.
      let total = cost([])
      while (chosen.length < Math.min(pool.length, want + 1)) {
        let best: PeerKey | undefined
        let bestCost = Number.POSITIVE_INFINITY
        for (const p of pool) {
          if (chosen.includes(p)) continue
          const c = cost([...chosen, p])
          // Ties go to a current eager in-link (no role change for nothing).
          if (c < bestCost || (c === bestCost && !isLazy(p))) {
            best = p
            bestCost = c
          }
        }
        if (best === undefined) break
        if (chosen.length >= 1 && total - bestCost < EXTRA_GAIN_MS * window.length) break
        chosen.push(best)
        total = bestCost
      }
      this.wanted.set(topic, chosen.length + others.length)
      const keep = current.filter((p) => this.record(topic, p).benched === 0)
      const kept = cost(keep)
      const gain = Math.max(SWITCH_GAIN * kept, SWITCH_MIN_MS * window.length)
      if (keep.length === chosen.length && kept - cost(chosen) < gain) chosen = keep
    }
    const changes: RoleChange[] = []
    for (const p of candidates) {
      const eager = chosen.includes(p)
      if (eager === isLazy(p)) changes.push({ peer: p, lazy: !eager })
      this.record(topic, p).wasEager = eager
    }
    return changes
  }

  /** `peers` ordered by how early each alone brought the window's messages, earliest first. */
  order(topic: Topic, peers: PeerKey[]): PeerKey[] {
    const window = [...(this.messages.get(topic)?.values() ?? [])]
    const cost = new Map(peers.map((p) => [p, delayOf(window, [p])]))
    return [...peers].sort((a, b) => cost.get(a)! - cost.get(b)!)
  }

  /** Messages of `topic` in the window. */
  size(topic: Topic): number {
    return this.messages.get(topic)?.size ?? 0
  }

  /** Forgets `peer` on `topic` (it left the mesh). */
  forget(topic: Topic, peer: PeerKey): void {
    this.peers.get(topic)?.delete(peer)
  }

  /** Forgets `topic`. */
  clearTopic(topic: Topic): void {
    this.messages.delete(topic)
    this.peers.delete(topic)
    this.since.delete(topic)
    this.wanted.delete(topic)
  }

  private record(topic: Topic, peer: PeerKey): PeerRecord {
    let m = this.peers.get(topic)
    if (m === undefined) {
      m = new Map()
      this.peers.set(topic, m)
    }
    let r = m.get(peer)
    if (r === undefined) {
      r = { pushes: 0, wasEager: false, benched: 0 }
      m.set(peer, r)
    }
    return r
  }
}

/** Total delay over `window` had only `set` pushed: each message's earliest of the set. */
function delayOf(window: Arrivals[], set: PeerKey[]): number {
  let total = 0
  for (const m of window) {
    let best = LATE_MS
    for (const p of set) {
      const t = m.at.get(p)
      if (t !== undefined && t - m.firstAt < best) best = t - m.firstAt
    }
    total += best
  }
  return total
}

/**
 * The flood reach from which publishers mark their flood (`sentTo`): a publisher's `T` peers
 * cost `4T` bytes per copy, worth it when its `T` recipients would otherwise push to a share
 * `f` of peers the flood reached. At 1,000 nodes with 50 peers `f` ≈ 0.05 (nothing marked);
 * on 24 nodes with 10 peers ≈ 0.45.
 */
const MARK_REACH = 0.2

/** Messages per topic whose first copy's path is kept to size a flood root's push. */
const REACH_WINDOW = 64

/** Fewer messages than this in the window: a flood root pushes to its whole mesh. */
const MIN_REACH_SAMPLES = 16

/**
 * The same when every message in the window named its origin (StrictSign): each node then
 * sees the flood's reach directly, about `f` of its messages, not only `f · (T − M)/T`.
 */
const MIN_ORIGIN_SAMPLES = 8

/**
 * Before {@link MIN_ORIGIN_SAMPLES}, a publisher marks its flood once this many of its first
 * signed messages came straight from their origin (from {@link MIN_EARLY_MARK_SAMPLES} on):
 * at `f` ≈ 0.45 (24 nodes, 10 peers) about 70% of nodes have two of their first 5, at
 * `f` ≈ 0.05 (1,000 nodes, 50 peers) 1–4% of their first 4–7. Without it a topic's first ~8
 * messages went unmarked and took about 2 duplicates per delivery on 24 real nodes (0.3 once
 * marked).
 */
const EARLY_MARK_DIRECT = 2

/** See {@link EARLY_MARK_DIRECT}. */
const MIN_EARLY_MARK_SAMPLES = 4

/** {@link FloodReach} ring bits: the first copy came from outside the mesh. */
const FROM_OUTSIDE = 1
/** The first copy came straight from the message's origin. */
const FROM_ORIGIN = 2
/** The message named its origin. */
const ORIGIN_KNOWN = 4

/**
 * How much of the network a publisher's flood reaches, seen from one node, and so how far a
 * flood root's push should go and whether a publisher marks its flood (doc/gossip-extension.md,
 * rule 2). A publisher floods to all its topic peers, of which this node is one about `f` of
 * the time. With signed messages (the origin is known) `f` is the share of a topic's recent
 * messages whose first copy came straight from their origin. Without, only first copies from
 * outside the mesh tell (this node was a flood root): a share `r` of the messages, so
 * `f = r · T / (T − M)` (`T` topic peers, `M` of them in the mesh). A root's push should reach
 * the nodes the flood did not: about `1/f − 1` per root. At 1,000 nodes with 50 peers
 * (f ≈ 0.05) that is more than the mesh, so a root pushes to all of it; at 24 nodes with 10
 * peers (f ≈ 0.4) one or two copies do, and pushes to the rest of the mesh would mostly reach
 * nodes the flood already did.
 */
export class FloodReach {
  /** Per topic, a ring of the last messages' {@link FROM_OUTSIDE} etc. bits. */
  private readonly recent = new Map<Topic, { bits: Uint8Array; at: number; count: number }>()

  /**
   * A new message of `topic` arrived, first from outside the mesh (`fromOutside`: straight
   * from its publisher's flood) or not, and `fromOrigin` or not (undefined: no origin named).
   */
  arrived(topic: Topic, fromOutside: boolean, fromOrigin?: boolean): void {
    let r = this.recent.get(topic)
    if (r === undefined) {
      r = { bits: new Uint8Array(REACH_WINDOW), at: 0, count: 0 }
      this.recent.set(topic, r)
    }
    r.bits[r.at] =
      (fromOutside ? FROM_OUTSIDE : 0) |
      (fromOrigin === undefined ? 0 : ORIGIN_KNOWN | (fromOrigin ? FROM_ORIGIN : 0))
    r.at = (r.at + 1) % REACH_WINDOW
    r.count = Math.min(REACH_WINDOW, r.count + 1)
  }

  /**
   * How many mesh peers a flood root of `topic` pushes a message to (the eager out-links
   * first, then lazy ones up to this count): `Infinity` (the whole mesh) until enough
   * messages were seen, or when every topic peer is in the mesh (no flood roots to count).
   */
  rootPushes(topic: Topic, topicPeers: number, mesh: number): number {
    const reach = this.reach(topic, topicPeers, mesh)
    return reach <= 0 ? Number.POSITIVE_INFINITY : Math.ceil(1 / reach - 1)
  }

  /**
   * True when a publisher's flood reaches enough of the network ({@link MARK_REACH}) that
   * it tells its recipients whom it went to (rule 2's `sentTo`): they push to none of them.
   */
  marksFlood(topic: Topic, topicPeers: number, mesh: number): boolean {
    // Only from signed messages: from first copies outside the mesh alone, 16 messages give
    // a reach of 0 or ≥ 0.3 at 60 nodes with 10 peers (f ≈ 0.17), and marks cost deliveries
    // at 30% frame loss (fewer full copies cross the lossy links).
    if (this.signed(topic, MIN_ORIGIN_SAMPLES))
      return this.reach(topic, topicPeers, mesh) >= MARK_REACH
    // Early, on strong evidence only (see EARLY_MARK_DIRECT).
    if (!this.signed(topic, MIN_EARLY_MARK_SAMPLES)) return false
    const r = this.recent.get(topic)!
    let direct = 0
    for (let i = 0; i < r.count; i++) if (r.bits[i] & FROM_ORIGIN) direct++
    return direct >= EARLY_MARK_DIRECT
  }

  /** True when every message of `topic` in the window named its origin, and `min` came. */
  private signed(topic: Topic, min: number): boolean {
    const r = this.recent.get(topic)
    if (r === undefined || r.count < min) return false
    for (let i = 0; i < r.count; i++) if ((r.bits[i] & ORIGIN_KNOWN) === 0) return false
    return true
  }

  /** The flood's estimated reach `f` (share of the network); 0 while unknown. */
  private reach(topic: Topic, topicPeers: number, mesh: number): number {
    const r = this.recent.get(topic)
    if (r === undefined) return 0
    let outside = 0
    let direct = 0
    let named = 0
    for (let i = 0; i < r.count; i++) {
      const b = r.bits[i]
      if (b & FROM_OUTSIDE) outside++
      if (b & FROM_ORIGIN) direct++
      if (b & ORIGIN_KNOWN) named++
    }
    if (named === r.count && r.count >= MIN_ORIGIN_SAMPLES) return direct / r.count
    if (r.count < MIN_REACH_SAMPLES || topicPeers <= mesh) return 0
    return ((outside / r.count) * topicPeers) / (topicPeers - mesh)
  }

  /** Forgets `topic`. */
  clearTopic(topic: Topic): void {
    this.recent.delete(topic)
  }
}

/** What {@link LinkRoles} needs from its router. */
export interface RolesHost {
  /** The mesh of `topic`. */
  meshOf(topic: Topic): ReadonlySet<PeerKey> | undefined
  /** True when the link to `peer` is negotiated for one-copy. */
  speaksOneCopy(peer: PeerKey): boolean
  /** Sends CHOKE (`lazy`) or UNCHOKE for `topic` to `peer` now. */
  sendRole(peer: PeerKey, topic: Topic, lazy: boolean): void
  /** Queues CHOKE (`lazy`) or UNCHOKE for the heartbeat's control frame, once per heartbeat. */
  queueRole(peer: PeerKey, topic: Topic, lazy: boolean): void
  /** Runs `fn` after `ms`. */
  setTimer(ms: number, fn: () => void): TimerHandle
  /** `peer` now announces only (`lazy`) or pushes again on `topic` (the score follows). */
  announceOnly(peer: PeerKey, topic: Topic, lazy: boolean): void
  /**
   * True when `topic`'s flood reaches far enough that mesh peers learn our eager in-links
   * (rule 2; absent: never).
   */
  mapsLinks?(topic: Topic): boolean
  /**
   * Queues for the heartbeat's frame: our eager in-links of `topic` other than `peer`, best
   * first, and how many of them rank before `peer` (undefined: it is a lazy in-link).
   */
  queueInLinks?(peer: PeerKey, topic: Topic, others: PeerKey[], rank: number | undefined): void
}

/** A mesh peer's other eager in-links (peer hashes, best first) and our rank among them. */
export interface PeerInLinks {
  peers: number[]
  /** How many of `peers` rank before us; undefined: we are a lazy in-link. */
  rank: number | undefined
}

/**
 * The one-copy roles of each topic's mesh links, both directions apart: which peers push to
 * us (our eager in-links, chosen by first arrivals, `minEager` of them) and which asked us
 * to announce to them instead (doc/gossip-extension.md, Rules).
 */
export class LinkRoles {
  private readonly host: RolesHost
  private readonly minEager: number
  private readonly learningExtra: number
  /** Peers we asked to announce to us (we sent CHOKE). */
  private readonly inLazy: LazyLinks
  /** Peers that asked us to announce to them (they sent CHOKE). */
  private readonly outLazy = new LazyLinks()
  private readonly arrivals = new ArrivalLog()
  /** Topics whose first message started an early choice of eager in-links. */
  private readonly chosenEarly = new Set<Topic>()
  /** Per topic, what we last told each mesh peer of our eager in-links. */
  private readonly toldInLinks = new Map<Topic, Map<PeerKey, string>>()
  /** Per topic, what each mesh peer told us of its eager in-links. */
  private readonly peerInLinks = new Map<Topic, Map<PeerKey, PeerInLinks>>()
  /** Per topic, lazy in-links that pushed one copy since our last CHOKE to them. */
  private readonly strayPush = new Map<Topic, Set<PeerKey>>()

  /**
   * `learningExtra`: eager in-links kept beyond `minEager` until a topic's first messages came
   * ({@link LEARNING_EXTRA} by default; Infinity floods a topic's first message over the whole
   * mesh, as source trees do: it also starts every node's tree entries).
   */
  constructor(host: RolesHost, minEager: number, learningExtra = LEARNING_EXTRA) {
    this.host = host
    this.minEager = minEager
    this.learningExtra = learningExtra
    this.inLazy = new LazyLinks((topic, peer, lazy) => host.announceOnly(peer, topic, lazy))
  }

  /** True when we announce `topic`'s messages to `peer` instead of pushing them. */
  announcesTo(topic: Topic, peer: PeerKey): boolean {
    return this.host.speaksOneCopy(peer) && this.outLazy.isLazy(topic, peer)
  }

  /** True when `peer` announces `topic`'s messages to us instead of pushing them. */
  announcesToUs(topic: Topic, peer: PeerKey): boolean {
    return this.host.speaksOneCopy(peer) && this.inLazy.isLazy(topic, peer)
  }

  /** Our lazy in-links of `topic`. */
  lazyInLinks(topic: Topic): number {
    return this.inLazy.count(topic)
  }

  /** `peer` sent CHOKE (`lazy`) or UNCHOKE for `topic`. */
  peerAsked(topic: Topic, peer: PeerKey, lazy: boolean): void {
    // A CHOKE may come before the GRAFT it follows is handled (one frame): any topic we keep a
    // mesh of will do; the role is forgotten when the peer leaves the mesh.
    if (!lazy) this.outLazy.setEager(topic, peer)
    else if (this.host.meshOf(topic) !== undefined) this.outLazy.setLazy(topic, peer)
  }

  /** A mesh peer announced on `topic`: over an in-link we hold eager, our UNCHOKE was lost. */
  announcedBy(topic: Topic, peer: PeerKey): void {
    if (this.host.speaksOneCopy(peer) && !this.inLazy.isLazy(topic, peer)) {
      this.host.queueRole(peer, topic, false)
    }
  }

  /**
   * A duplicate pushed by mesh peer `peer` (not one we asked for): CHOKE it while we keep
   * more than `minEager` eager in-links; a second push over an in-link we hold lazy means our
   * CHOKE was lost.
   */
  duplicate(topic: Topic, peer: PeerKey): void {
    if (!this.host.speaksOneCopy(peer)) return
    if (this.inLazy.isLazy(topic, peer)) {
      // One push over a lazy in-link is most often a flood root's (rule 2), which looks the
      // same: the CHOKE is repeated on the second, and a lost one costs one more copy.
      let stray = this.strayPush.get(topic)
      if (stray === undefined) {
        stray = new Set()
        this.strayPush.set(topic, stray)
      }
      if (stray.delete(peer)) this.host.queueRole(peer, topic, true)
      else stray.add(peer)
      return
    }
    const mesh = this.host.meshOf(topic)
    const keep = this.arrivals.eagerWanted(topic, this.minEager)
    if (mesh === undefined || mesh.size - this.inLazy.count(topic) <= keep) return
    this.inLazy.setLazy(topic, peer)
    this.strayPush.get(topic)?.delete(peer)
    this.host.sendRole(peer, topic, true)
  }

  /** We pull from mesh peer `peer`: true when the in-link turns eager (UNCHOKE goes along). */
  pulling(topic: Topic, peer: PeerKey): boolean {
    return this.inLazy.setEager(topic, peer)
  }

  /**
   * A new message `key` of `topic` is here at `at`; `peers` are the mesh peers whose copy or
   * announce came by then, with their times.
   */
  arrived(topic: Topic, key: string, at: number, peers: Iterable<[PeerKey, number]>): void {
    this.arrivals.first(topic, key, at, peers)
    if (this.arrivals.size(topic) === 1 && !this.chosenEarly.has(topic)) {
      // The topic's first message: choose from it now rather than at a heartbeat of 4 messages.
      this.chosenEarly.add(topic)
      this.host.setTimer(FIRST_CHOICE_MS, () => this.choose(topic, 1, true))
    }
  }

  /** Mesh peer `peer` brought message `key` of `topic` (a copy, `pushed`, or an announce) after it was here. */
  arrivedLate(topic: Topic, key: string, peer: PeerKey, at: number, pushed: boolean): void {
    this.arrivals.late(topic, key, peer, at)
    if (pushed) this.arrivals.pushed(topic, peer)
  }

  /** Mesh peer `peer` pushed the first copy of a message of `topic`. */
  pushedFirst(topic: Topic, peer: PeerKey): void {
    this.arrivals.pushed(topic, peer)
  }

  /** Heartbeat: each topic keeps `minEager` eager in-links, those that bring messages earliest (queued). */
  heartbeat(topics: Iterable<Topic>): void {
    for (const topic of topics) {
      this.choose(topic, undefined, false)
      this.tellInLinks(topic)
    }
  }

  /**
   * Tells each one-copy mesh peer of `topic` our other eager in-links, earliest first, and
   * its rank among them, when that changed: of those the publisher's flood reached, only the
   * first pushes to us (rule 2). Only while the topic's flood reaches far (`mapsLinks`).
   */
  private tellInLinks(topic: Topic): void {
    const mesh = this.host.meshOf(topic)
    if (mesh === undefined || this.host.mapsLinks?.(topic) !== true) return
    const eager = this.arrivals.order(
      topic,
      [...mesh].filter((p) => !this.host.speaksOneCopy(p) || !this.inLazy.isLazy(topic, p)),
    )
    let told = this.toldInLinks.get(topic)
    if (told === undefined) {
      told = new Map()
      this.toldInLinks.set(topic, told)
    }
    for (const p of mesh) {
      if (!this.host.speaksOneCopy(p)) continue
      const i = eager.indexOf(p)
      const others = eager.filter((q) => q !== p)
      const rank = i < 0 ? undefined : i
      const said = `${rank} ${others.join(' ')}`
      if (told.get(p) === said) continue
      told.set(p, said)
      this.host.queueInLinks?.(p, topic, others, rank)
    }
  }

  /** True when we told `peer` our eager in-links of `topic` (it may announce over an eager link). */
  toldInLinksTo(topic: Topic, peer: PeerKey): boolean {
    return this.toldInLinks.get(topic)?.has(peer) === true
  }

  /** Mesh peer `peer` told us its other eager in-links of `topic` and our rank. */
  peerToldInLinks(topic: Topic, peer: PeerKey, links: PeerInLinks): void {
    if (this.host.meshOf(topic)?.has(peer) !== true) return
    let m = this.peerInLinks.get(topic)
    if (m === undefined) {
      m = new Map()
      this.peerInLinks.set(topic, m)
    }
    m.set(peer, links)
  }

  /** What `peer` told us of its eager in-links of `topic`, if anything. */
  inLinksOf(topic: Topic, peer: PeerKey): PeerInLinks | undefined {
    return this.peerInLinks.get(topic)?.get(peer)
  }

  /**
   * Chooses `topic`'s eager in-links from at least `minSamples` messages (rule 4's default
   * otherwise); role changes go out `now` or with the heartbeat's frame.
   */
  private choose(topic: Topic, minSamples: number | undefined, now: boolean): void {
    const mesh = this.host.meshOf(topic)
    if (mesh === undefined) return
    const candidates = [...mesh].filter((p) => this.host.speaksOneCopy(p))
    const changes = this.arrivals.select(
      topic,
      candidates,
      (p) => this.inLazy.isLazy(topic, p),
      [...mesh].filter((p) => !this.host.speaksOneCopy(p)),
      this.minEager,
      minSamples,
      this.learningExtra,
    )
    for (const c of changes) {
      if (c.lazy) this.inLazy.setLazy(topic, c.peer)
      else this.inLazy.setEager(topic, c.peer)
      this.strayPush.get(topic)?.delete(c.peer)
      if (now) this.host.sendRole(c.peer, topic, c.lazy)
      else this.host.queueRole(c.peer, topic, c.lazy)
    }
  }

  /** `peer` left the mesh of `topic`: its roles and credits are forgotten. */
  left(topic: Topic, peer: PeerKey): void {
    this.inLazy.setEager(topic, peer)
    this.outLazy.setEager(topic, peer)
    this.arrivals.forget(topic, peer)
    this.toldInLinks.get(topic)?.delete(peer)
    this.peerInLinks.get(topic)?.delete(peer)
    this.strayPush.get(topic)?.delete(peer)
  }

  /** We left `topic`. */
  clearTopic(topic: Topic): void {
    this.inLazy.clearTopic(topic)
    this.outLazy.clearTopic(topic)
    this.arrivals.clearTopic(topic)
    this.chosenEarly.delete(topic)
    this.toldInLinks.delete(topic)
    this.peerInLinks.delete(topic)
    this.strayPush.delete(topic)
  }
}
