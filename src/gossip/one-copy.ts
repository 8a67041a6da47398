import { createHash } from 'node:crypto'
import type { PeerKey, Topic } from '../common/artifact.ts'
import type { TimerHandle } from '../common/env.ts'
import type { MessageId } from '../common/message-id.ts'
import { SHORT_ID_BYTES, TOPIC_HASH_BYTES } from './rpc-codec.ts'

/** The short id of a message in one-copy announces: the first 8 bytes of SHA-256 of its id. */
export function shortId(id: MessageId): Uint8Array {
  return new Uint8Array(createHash('sha256').update(id).digest().subarray(0, SHORT_ID_BYTES))
}

/** A topic's hash in one-copy announces: the first 4 bytes of SHA-256 of its name. */
export function topicHash(topic: Topic): Uint8Array {
  return new Uint8Array(createHash('sha256').update(topic).digest().subarray(0, TOPIC_HASH_BYTES))
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
  /** Asks `peer` for the message (INEED), promoting the link when it is a mesh link. */
  pull(peer: PeerKey, topic: Topic, short: Uint8Array): void
}

interface Pending {
  topic: Topic
  short: Uint8Array
  /** Peers that announced it, oldest first, not yet asked. */
  announcers: PeerKey[]
  /** Every peer that announced it (they have it: no announce back to them). */
  from: Set<PeerKey>
  timer: TimerHandle | undefined
  asked: PeerKey | undefined
  /** Times every announcer has been asked. */
  rounds: number
  /** The first announcer and when its announce came. */
  first: PeerKey
  firstAt: number
}

/** How long a delivered message's announcers are remembered. */
const KEEP_DELIVERED_MS = 5000

/** Times the announcers of a message are asked before it is given up on. */
const ASK_ROUNDS = 3

/** Announcers remembered per message: more would only be asked after a long wait anyway. */
const MAX_ANNOUNCERS = 8

/**
 * Announced messages not yet here. The first announcer is asked after `delayMs` (0 for one
 * outside the mesh, whose announce is gossip, not a lazy push), the next one `followupMs`
 * later if the reply has not come, and so on. Bounded by `maxTracked` messages.
 */
export class AnnouncedPulls {
  private readonly pending = new Map<string, Pending>()
  private readonly host: PullHost
  private readonly followupMs: number
  private readonly maxTracked: number

  constructor(host: PullHost, followupMs: number, maxTracked: number) {
    this.host = host
    this.followupMs = followupMs
    this.maxTracked = maxTracked
  }

  /** `peer` announced `short` on `topic`; it is asked after `delayMs` unless it arrives. */
  announced(peer: PeerKey, topic: Topic, short: Uint8Array, key: string, delayMs: number): void {
    let p = this.pending.get(key)
    if (p === undefined) {
      if (this.pending.size >= this.maxTracked) return
      p = {
        topic,
        short,
        announcers: [],
        from: new Set(),
        timer: undefined,
        asked: undefined,
        rounds: 0,
        first: peer,
        firstAt: this.host.now(),
      }
      this.pending.set(key, p)
      const entry = p
      p.timer = this.host.setTimer(delayMs, () => this.askNext(key, entry))
    }
    if (p.from.has(peer) || p.from.size >= MAX_ANNOUNCERS) return
    p.from.add(peer)
    p.announcers.push(peer)
  }

  /** Peers that announced the message `key` (they need no announce from us). */
  announcers(key: string): ReadonlySet<PeerKey> | undefined {
    return this.pending.get(key)?.from
  }

  /** True when we asked `peer` for `key` (its copy is a reply, not a push). */
  askedOf(key: string, peer: PeerKey): boolean {
    return this.pending.get(key)?.asked === peer
  }

  /**
   * The message arrived: stop asking. Who announced it and whom we asked are kept for
   * `KEEP_DELIVERED_MS`, while late copies and announces may still come.
   */
  delivered(key: string): { first: PeerKey; firstAt: number } | undefined {
    const p = this.pending.get(key)
    if (p === undefined) return undefined
    p.timer?.cancel()
    p.announcers.length = 0
    p.timer = this.host.setTimer(KEEP_DELIVERED_MS, () => {
      if (this.pending.get(key) === p) this.pending.delete(key)
    })
    return { first: p.first, firstAt: p.firstAt }
  }

  /** A peer is gone: it will not answer. */
  peerGone(peer: PeerKey): void {
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
  }

  private askNext(key: string, p: Pending): void {
    p.timer = undefined
    if (this.pending.get(key) !== p) return
    if (this.host.have(key)) {
      p.announcers.length = 0
      return
    }
    if (p.announcers.length === 0 && ++p.rounds < ASK_ROUNDS) {
      // Every announcer was asked and no reply came (lost frames): ask them all again.
      p.announcers.push(...p.from)
    }
    const peer = p.announcers.shift()
    if (peer === undefined) {
      this.pending.delete(key)
      return
    }
    p.asked = peer
    this.host.pull(peer, p.topic, p.short)
    p.timer = this.host.setTimer(this.followupMs, () => this.askNext(key, p))
  }
}

/** A link's change of role chosen at a heartbeat: CHOKE or UNCHOKE it. */
export interface RoleChange {
  peer: PeerKey
  /** True: CHOKE (announce to me instead), false: UNCHOKE (push to me again). */
  lazy: boolean
}

/** How much of the first-arrival counts survives each heartbeat. */
const FIRSTS_DECAY = 0.5

/** A lazy link replaces an eager one when it came first this many more times (decayed). */
const SWAP_MARGIN = 1

/**
 * Which mesh peers bring each topic's messages first, counted per peer (a pushed copy or an
 * announce, whichever came first) and decayed every heartbeat. The node keeps the peers
 * that came first most often as its eager in-links.
 */
export class FirstArrivals {
  private readonly counts = new Map<Topic, Map<PeerKey, number>>()

  /** `peer` brought a message of `topic` first. */
  note(topic: Topic, peer: PeerKey): void {
    let m = this.counts.get(topic)
    if (m === undefined) {
      m = new Map()
      this.counts.set(topic, m)
    }
    m.set(peer, (m.get(peer) ?? 0) + 1)
  }

  /** Decayed count of first arrivals from `peer` on `topic`. */
  count(topic: Topic, peer: PeerKey): number {
    return this.counts.get(topic)?.get(peer) ?? 0
  }

  /**
   * The heartbeat's role changes for `topic`: `candidates` are the mesh peers that speak
   * one-copy, `isLazy` their current in-link roles, `others` the mesh peers that always push
   * (they count as eager). Keeps `minEager` eager in-links, the ones that came first most
   * often: UNCHOKEs the best lazy links while fewer are eager, CHOKEs the worst eager ones
   * while more are, and swaps a lazy link for an eager one it beat by {@link SWAP_MARGIN}.
   * Then decays the counts.
   */
  select(
    topic: Topic,
    candidates: PeerKey[],
    isLazy: (peer: PeerKey) => boolean,
    others: number,
    minEager: number,
  ): RoleChange[] {
    const score = (p: PeerKey) => this.count(topic, p)
    const eager = candidates.filter((p) => !isLazy(p)).sort((a, b) => score(a) - score(b))
    const lazy = candidates.filter((p) => isLazy(p)).sort((a, b) => score(b) - score(a))
    const changes: RoleChange[] = []
    let eagerCount = eager.length + others
    // Too few: promote the lazy links that came first most often.
    while (eagerCount < minEager && lazy.length > 0) {
      changes.push({ peer: lazy.shift()!, lazy: false })
      eagerCount++
    }
    // Too many (pulls promote links): demote the ones that came first least often.
    while (eagerCount > minEager && eager.length > 0) {
      changes.push({ peer: eager.shift()!, lazy: true })
      eagerCount--
    }
    // Swap a lazy link that beat an eager one clearly.
    while (eager.length > 0 && lazy.length > 0 && score(lazy[0]) > score(eager[0]) + SWAP_MARGIN) {
      changes.push({ peer: lazy.shift()!, lazy: false }, { peer: eager.shift()!, lazy: true })
    }
    const m = this.counts.get(topic)
    if (m !== undefined) {
      for (const [p, c] of m) {
        if (c * FIRSTS_DECAY < 0.01) m.delete(p)
        else m.set(p, c * FIRSTS_DECAY)
      }
    }
    return changes
  }

  /** Forgets `peer` on `topic` (it left the mesh). */
  forget(topic: Topic, peer: PeerKey): void {
    this.counts.get(topic)?.delete(peer)
  }

  /** Forgets `topic`. */
  clearTopic(topic: Topic): void {
    this.counts.delete(topic)
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
  /** `peer` now announces only (`lazy`) or pushes again on `topic` (the score follows). */
  announceOnly(peer: PeerKey, topic: Topic, lazy: boolean): void
}

/**
 * The one-copy roles of each topic's mesh links, both directions apart: which peers push to
 * us (our eager in-links, chosen by first arrivals, `minEager` of them) and which asked us
 * to announce to them instead (doc/gossip-extension.md, Rules).
 */
export class LinkRoles {
  private readonly host: RolesHost
  private readonly minEager: number
  /** Peers we asked to announce to us (we sent CHOKE). */
  private readonly inLazy: LazyLinks
  /** Peers that asked us to announce to them (they sent CHOKE). */
  private readonly outLazy = new LazyLinks()
  private readonly firsts = new FirstArrivals()

  constructor(host: RolesHost, minEager: number) {
    this.host = host
    this.minEager = minEager
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
    if (!lazy) this.outLazy.setEager(topic, peer)
    else if (this.host.meshOf(topic)?.has(peer)) this.outLazy.setLazy(topic, peer)
  }

  /** A mesh peer announced on `topic`: over an in-link we hold eager, our UNCHOKE was lost. */
  announcedBy(topic: Topic, peer: PeerKey): void {
    if (this.host.speaksOneCopy(peer) && !this.inLazy.isLazy(topic, peer)) {
      this.host.queueRole(peer, topic, false)
    }
  }

  /**
   * A duplicate pushed by mesh peer `peer` (not one we asked for): CHOKE it while we keep
   * more than `minEager` eager in-links; over an in-link we hold lazy our CHOKE was lost.
   */
  duplicate(topic: Topic, peer: PeerKey): void {
    if (!this.host.speaksOneCopy(peer)) return
    if (this.inLazy.isLazy(topic, peer)) {
      this.host.queueRole(peer, topic, true)
      return
    }
    const mesh = this.host.meshOf(topic)
    if (mesh === undefined || mesh.size - this.inLazy.count(topic) <= this.minEager) return
    this.inLazy.setLazy(topic, peer)
    this.host.sendRole(peer, topic, true)
  }

  /** We pull from mesh peer `peer`: true when the in-link turns eager (UNCHOKE goes along). */
  pulling(topic: Topic, peer: PeerKey): boolean {
    return this.inLazy.setEager(topic, peer)
  }

  /** Mesh peer `peer` brought a message of `topic` first (its copy or its announce). */
  first(topic: Topic, peer: PeerKey): void {
    this.firsts.note(topic, peer)
  }

  /** Heartbeat: each topic keeps `minEager` eager in-links, those credited most (queued). */
  heartbeat(topics: Iterable<Topic>): void {
    for (const topic of topics) {
      const mesh = this.host.meshOf(topic)
      if (mesh === undefined) continue
      const candidates = [...mesh].filter((p) => this.host.speaksOneCopy(p))
      const changes = this.firsts.select(
        topic,
        candidates,
        (p) => this.inLazy.isLazy(topic, p),
        mesh.size - candidates.length,
        this.minEager,
      )
      for (const c of changes) {
        if (c.lazy) this.inLazy.setLazy(topic, c.peer)
        else this.inLazy.setEager(topic, c.peer)
        this.host.queueRole(c.peer, topic, c.lazy)
      }
    }
  }

  /** `peer` left the mesh of `topic`: its roles and credits are forgotten. */
  left(topic: Topic, peer: PeerKey): void {
    this.inLazy.setEager(topic, peer)
    this.outLazy.setEager(topic, peer)
    this.firsts.forget(topic, peer)
  }

  /** We left `topic`. */
  clearTopic(topic: Topic): void {
    this.inLazy.clearTopic(topic)
    this.outLazy.clearTopic(topic)
    this.firsts.clearTopic(topic)
  }
}
