import type { PeerKey, Topic } from '../common/artifact.ts'
import { setNewest } from '../common/bounded-map.ts'
import type { TimerHandle } from '../common/env.ts'
import { BASE_RTT_SAMPLES, LinkRtt } from './link-rtt.ts'
import { peerHashOf, topicHash } from './one-copy.ts'
import type { GossipParams } from './params.ts'
import { emptyOneCopy, type RpcOneCopy } from './rpc-codec.ts'
import {
  decodeDistanceEntry,
  encodeDistanceEntry,
  type PeerEntry,
  SourceTrees,
} from './source-trees.ts'

/**
 * Eager in-links kept beyond `oneCopyMinEager` until a topic's first messages came (rule 4
 * keeps 2). Single publisher at 1,000 nodes, seed 2, 256 B: p99 1.069x stock's with 2, 1.058x
 * with 3, 1.042x with 4 (0.14 duplicates), 1.038x with every in-link (0.24 duplicates; with
 * random publishers +0.10 duplicates and +0.17x the floor in bytes).
 */
export const TREE_LEARNING_EXTRA = 4
/** Changed parent bits and lost paths wait this long to go out together, in ms. */
const DISTANCE_FLUSH_MS = 10
/**
 * Entries that only refine a distance wait this long, ms: while trees form, a node's distance
 * to a source falls several times as its peers' offers come in, and each value sent went to
 * every mesh peer and moved theirs (start-up exchange 8.85x → 7.28x the floor of a 30-message
 * run, 300 nodes, seed 1; 10 ms as for the rest: 8.85x; p99 unchanged).
 */
const DISTANCE_REFINE_MS = 300
/**
 * A message that came from elsewhere while our parent for its source showed nothing of it
 * (no copy, no announce) counts as the parent's miss this long after, ms, plus
 * {@link PARENT_OVERDUE_COPIES} of our copy time: an honest parent's copy may wait behind its
 * pushes to other children (at 100 KB, 100 ms alone cost 1.043× → 1.051× stock's p99 with a
 * single publisher, seed 1).
 */
const PARENT_OVERDUE_MS = 100
const PARENT_OVERDUE_COPIES = 2
/** A flood target's seed is told again when its queue wait moved by more, ms. */
const SEED_RESEND_MS = 1

/** The flags the router keeps per peer that the trees read (and one they set). */
export interface TreePeer {
  /** Both ends speak one-copy and each knows the other heard it (a hello came). */
  readonly oneCopy: boolean
  /** Both ends run source trees (its Extensions, or its tree messages, said so). */
  sourceTrees: boolean
}

/** What the source-tree glue needs from its router. */
export interface SourceTreeLinksHost {
  /** This node. */
  readonly self: PeerKey
  now(): number
  setTimer(ms: number, fn: () => void): TimerHandle
  /** False once the router stopped (a due flush then sends nothing). */
  running(): boolean
  /** A connected peer's flags; undefined when it is not connected. */
  peer(peer: PeerKey): TreePeer | undefined
  /** The peer hash of `peer` (the router caches connected peers'). */
  hashOf(peer: PeerKey): number
  /** The subscribed topic with this topic hash. */
  topicByHash(hash: Uint8Array): Topic | undefined
  /** Peers known to subscribe to `topic`. */
  topicPeers(topic: Topic): ReadonlySet<PeerKey> | undefined
  /** Our mesh of `topic`, if we are in it. */
  meshOf(topic: Topic): ReadonlySet<PeerKey> | undefined
  /** The subscribed topics. */
  subscriptions(): Iterable<Topic>
  /** Milliseconds our uplink takes to send one copy of `bytes`. */
  copyMs(bytes: number): number
  /** The peers our next message of `topic` would be flooded to, in sending order. */
  floodTargets(topic: Topic): PeerKey[]
  /** Sends one-copy messages to `peer` now. */
  sendOneCopy(peer: PeerKey, o: RpcOneCopy): void
  /** Puts a ping in the one-copy messages gathered for `peer` (sent at the heartbeat's end). */
  queuePing(peer: PeerKey, nonce: number): void
  /** Counts a rejected input of `peer`. */
  reject(peer: PeerKey, reason: string): void
  /** Counts a protocol event in the stats (`stats().events`). */
  event(name: string): void
  /** `peer` is a tree link that every source's tree covers (`'all'`): it owes no mesh deliveries (P3). */
  owesNoDeliveries(peer: PeerKey): void
}

/** Distance-budget units of a frame's tree messages: one per entry, and per empty group. */
export function distanceCost(o: RpcOneCopy): number {
  let n = 0
  for (const d of o.distances ?? []) n += Math.max(1, d.entries.length)
  return n
}

/**
 * One-copy source trees (doc/gossip-extension.md rule 10) at the router's hook points: the
 * {@link SourceTrees} table and the {@link LinkRtt} probes it reads, which source each recent
 * message came from, the seeds a publisher tells its flood targets, batched distance
 * exchange and the heartbeat's pings. Sans-IO: it sends and reads the clock only through its
 * {@link SourceTreeLinksHost}.
 */
export class SourceTreeLinks {
  private readonly host: SourceTreeLinksHost
  private readonly trees: SourceTrees
  private readonly rtt: LinkRtt
  /** Bound on the per-message maps (`sourceOf`, `ownShorts`). */
  private readonly maxShortIds: number
  private readonly ownHash: number
  /**
   * Short ids of our own recent messages (bounded, oldest forgotten first). Their announces
   * come back from the peers the tree did not push to; we never pull them.
   */
  private readonly ownShorts = new Map<string, true>()
  /** The publisher's peer hash of each recent message (bounded). */
  private readonly sources = new Map<string, number>()
  /** The `source` of the frame being read, from a one-copy peer. */
  private frameSource: number | undefined
  /** The size of each topic's last message (the metric's typical size). */
  private readonly topicSize = new Map<Topic, number>()
  /** Each topic's per-hop cost (validation + one copy's sending) the table last used, ms. */
  private readonly hopMs = new Map<Topic, number>()
  /** The seed each topic peer was told for our own messages (its queue wait, ms). */
  private readonly toldSeeds = new Map<Topic, Map<PeerKey, number>>()
  /** A flush of changed distance entries is scheduled. */
  private distancesDue = false
  /** A flush of refined distances too ({@link DISTANCE_REFINE_MS}) is scheduled. */
  private refinesDue = false
  /** `oneCopySourceTrees: 'all'`: every measured one-copy topic peer is a source from the start. */
  private readonly allSources: boolean

  constructor(host: SourceTreeLinksHost, p: GossipParams) {
    this.host = host
    this.maxShortIds = p.maxShortIds
    this.ownHash = host.hashOf(host.self)
    this.allSources = p.oneCopySourceTrees === 'all'
    // Every member's tree rests on link latency from the start with `'all'`: four samples
    // at once. For repeated sources the hello's and a ping a minute (early pings cost a
    // single publisher's 256 B run 0.09x the floor in bytes).
    this.rtt = new LinkRtt(this.allSources ? BASE_RTT_SAMPLES : 1)
    for (const [topic, bytes] of Object.entries(p.oneCopyTopicBytes))
      this.topicSize.set(topic, bytes)
    this.trees = new SourceTrees(
      {
        now: () => host.now(),
        latencyMs: (peer) => this.rtt.latencyMs(peer),
        meshOf: (topic) => host.meshOf(topic),
        validationMs: (topic) =>
          p.validationDelayMs +
          (p.validationDelayMsPerKB * (this.topicSize.get(topic) ?? 0)) / 1000,
        sendMs: (topic) => this.copyMs(topic),
        passedOver: () => host.event('tree-parent-passed-over'),
      },
      p.oneCopyMaxSources,
      p.heartbeatIntervalMs,
      // Half of what we take from a peer: a neighbour with our budgets never cuts us off.
      {
        perSecond: p.budgets.rates.distance.perSecond / 2,
        burst: p.budgets.rates.distance.burst / 2,
      },
      p.oneCopyTreeBackupMs,
    )
  }

  // ---------------------------------------------------------------- links

  /** The one-way latency to `peer` the trees use, ms (undefined before its first sample). */
  latencyMs(peer: PeerKey): number | undefined {
    return this.rtt.latencyMs(peer)
  }

  /** `peer`'s Extensions said it runs trees: so does the link, and our hello ASK times it. */
  negotiated(peer: PeerKey, ps: TreePeer): void {
    ps.sourceTrees = true
    this.rtt.hello(peer, this.host.now())
    this.linkUp(peer, ps)
  }

  /** A hello ASK goes (again) to `peer` at `now`: timed when the link has no sample yet. */
  hello(peer: PeerKey, now: number): void {
    this.rtt.hello(peer, now)
  }

  /** `peer` answered a hello ASK: the link's first RTT sample when it answers ours. */
  helloAcked(peer: PeerKey): void {
    this.rtt.helloAcked(peer, this.host.now())
    const ps = this.host.peer(peer)
    if (ps !== undefined) this.linkUp(peer, ps)
  }

  /**
   * With `'all'`, a tree link (it runs trees and we measured it) pushes us only the sources it
   * is our parent for and announces the rest: the router is told it owes no mesh deliveries.
   */
  private linkUp(peer: PeerKey, ps: TreePeer): void {
    if (this.allSources && this.treePeer(peer, ps)) this.host.owesNoDeliveries(peer)
  }

  /** True when `peer` runs trees and answered our probes (it sends us distances). */
  treePeer(peer: PeerKey, ps: TreePeer): boolean {
    return ps.sourceTrees && this.rtt.latencyMs(peer) !== undefined
  }

  /** The smoothed RTT to `peer` (a tree link's probes), ms; undefined until measured. */
  rttMs(peer: PeerKey): number | undefined {
    return this.rtt.rttMs(peer)
  }

  /** How long one copy of `topic`'s last message takes at our uplink, ms. */
  copyMs(topic: Topic): number {
    return this.host.copyMs(this.topicSize.get(topic) ?? 0)
  }

  /** `peer` disconnected. */
  peerGone(peer: PeerKey): void {
    this.rtt.forget(peer)
    this.trees.forget(peer)
    for (const told of this.toldSeeds.values()) told.delete(peer)
  }

  /** `peer` left our mesh of `topic`: its entries no longer count. */
  meshLeft(topic: Topic, peer: PeerKey): void {
    this.trees.left(topic, peer)
    this.distancesSoon()
  }

  /** We left `topic`. */
  clearTopic(topic: Topic): void {
    this.trees.clearTopic(topic)
    this.toldSeeds.delete(topic)
  }

  /**
   * Tree messages from `peer` (ping, pong, distance entries), already charged to its
   * `distance` budget by the router.
   */
  received(peer: PeerKey, ps: TreePeer, o: RpcOneCopy): void {
    const { host, trees } = this
    // It sends them only after our Extensions said we run trees, and only if it does: its
    // own Extensions was lost (lossy links), and this says as much.
    if (!ps.sourceTrees) {
      ps.sourceTrees = true
      this.linkUp(peer, ps)
    }
    if (o.ping !== undefined) host.sendOneCopy(peer, { ...emptyOneCopy(), pong: o.ping })
    if (o.pong !== undefined && !this.rtt.pong(peer, o.pong, host.now())) {
      host.reject(peer, 'unexpected-pong')
    }
    const distances = o.distances ?? []
    if (distances.length === 0) return
    let full = false
    const self = host.hashOf(peer)
    for (const d of distances) {
      const topic = host.topicByHash(d.topicHash)
      // Held only from the topic's peers (bounded by our connections), never about ourselves.
      if (topic === undefined || host.topicPeers(topic)?.has(peer) !== true) continue
      for (const bytes of d.entries) {
        const e = decodeDistanceEntry(bytes)
        let held: boolean
        if (e.source === this.ownHash) held = true
        else if (e.source !== self) held = trees.advertised(topic, peer, e)
        else {
          // The source itself: its seed, our place in its flood's send queue.
          const latency = this.rtt.latencyMs(peer)
          held = trees.seed(topic, self, latency, e.distanceMs)
        }
        if (!held) full = true
      }
    }
    // Sources past the table's cap are not held: counted, not punished (an honest peer in a
    // larger topic sends them too).
    if (full) host.reject(peer, 'source-table-full')
    this.distancesSoon()
  }

  // ---------------------------------------------------------------- messages

  /** A frame from a one-copy peer is being read; `source` is its one-copy `source`, if any. */
  frameStart(source: Uint8Array | undefined): void {
    this.frameSource = source === undefined ? undefined : peerHashOf(source)
  }

  /** The frame's messages are read. */
  frameEnd(): void {
    this.frameSource = undefined
  }

  /**
   * The first copy of `key` is here, from `peer`; its publisher (the signed origin, else the
   * frame's `source`) gets an entry, seeded when it is a topic peer we measured (its flood
   * reaches us straight), and whether our parent for it sent the source's copies is counted
   * (`announcers`: the peers that announced it before it came).
   */
  arrived(
    peer: PeerKey,
    topic: Topic,
    key: string,
    origin: PeerKey | undefined,
    size: number,
    announcers?: ReadonlyMap<PeerKey, number>,
  ): void {
    const named = origin === undefined ? this.frameSource : undefined
    const source = origin !== undefined ? this.host.hashOf(origin) : named
    if (source === undefined) return
    this.noteSource(key, source)
    this.sized(topic, size)
    const trees = this.trees
    let latency: number | undefined
    if (!trees.seeded(topic, source)) {
      for (const p of this.host.topicPeers(topic) ?? []) {
        if (this.host.hashOf(p) === source) latency = this.rtt.latencyMs(p)
      }
    }
    // A named source published before (it names itself from its second message on); a signed
    // message's origin is counted from its first.
    if (trees.seen(topic, source, latency, named !== undefined)) this.distancesSoon()
    trees.firstCopy(topic, source, key, peer, this.host.hashOf(peer) === source, announcers)
    if (trees.awaiting(topic, source, key)) {
      this.host.setTimer(PARENT_OVERDUE_MS + PARENT_OVERDUE_COPIES * this.copyMs(topic), () => {
        if (trees.overdue(topic, source, key)) this.distancesSoon()
      })
    }
  }

  /**
   * A later copy or an announce of message `key` came from `peer` (a parent that shows it has
   * the source's messages is no silent one).
   */
  duplicate(peer: PeerKey, topic: Topic, key: string): void {
    const source = this.sources.get(key)
    if (source !== undefined) this.trees.copy(topic, source, key, peer)
  }

  /**
   * We publish message `key` of `size` bytes to flood `targets`: from our second message on
   * (from the first with `'all'`) it names us as its source (a once-only publisher's message
   * carries nothing more), and its flood targets learn their seeds.
   */
  publishing(topic: Topic, key: string, targets: PeerKey[], size: number): void {
    const repeated = this.allSources || this.toldSeeds.has(topic)
    this.sized(topic, size)
    this.tellSeeds(topic, targets, size)
    if (repeated) this.noteSource(key, this.ownHash)
  }

  /** Our own message with short id `short` (hex) was flooded unindexed: its announces are ignored. */
  ownFlooded(short: string): void {
    setNewest(this.ownShorts, short, true, this.maxShortIds)
  }

  /** True when `short` (hex) is one of our own recent messages. */
  isOwn(short: string): boolean {
    return this.ownShorts.has(short)
  }

  /** The publisher's peer hash of recent message `key`, when known. */
  sourceOf(key: string): number | undefined {
    return this.sources.get(key)
  }

  /** Mesh peers' entries for `source` in `topic` (whether each takes it through us). */
  entries(topic: Topic, source: number): ReadonlyMap<PeerKey, PeerEntry> | undefined {
    return this.trees.entries(topic, source)
  }

  /** True when message `key` of `topic` comes from a source we hold a tree entry for. */
  inTree(topic: Topic, key: string): boolean {
    const source = this.sources.get(key)
    return source !== undefined && this.trees.has(topic, source)
  }

  /** Sources held for `topic`. */
  size(topic: Topic): number {
    return this.trees.size(topic)
  }

  /** Our distance from `source` in `topic`, ms; Infinity unknown. */
  distanceOf(topic: Topic, source: number): number {
    return this.trees.distanceOf(topic, source)
  }

  // ---------------------------------------------------------------- heartbeat

  /**
   * At the heartbeat: pings that are due (mesh peers only: the hello timed every link once,
   * and pinging all ~50 peers a minute cost 0.26x the floor per 256 B message in the bench's
   * 30-message run), held-down entries, new mesh peers.
   */
  heartbeat(now: number): void {
    const { host } = this
    const pinged = new Set<PeerKey>()
    for (const topic of host.subscriptions()) {
      for (const peer of host.meshOf(topic) ?? []) {
        const ps = host.peer(peer)
        if (pinged.has(peer) || ps?.oneCopy !== true || !ps.sourceTrees) continue
        pinged.add(peer)
        const nonce = this.rtt.ping(peer, now)
        if (nonce !== undefined) host.queuePing(peer, nonce)
      }
    }
    this.refreshSeeds()
    if (this.allSources) {
      // Our flood targets learn their place in our send queue before we publish.
      for (const topic of host.subscriptions()) {
        this.tellSeeds(topic, host.floodTargets(topic), this.topicSize.get(topic) ?? 0)
      }
    }
    this.trees.heartbeat(host.subscriptions())
    this.distancesSoon()
  }

  // ---------------------------------------------------------------- internals

  /**
   * The seeds of the sources that are our topic peers follow their links' latency as it is
   * measured (the hello's sample is often the highest). With `'all'` every one-copy topic peer
   * whose link we measured is such a source, so its entry spreads over the mesh before it
   * publishes.
   */
  private refreshSeeds(): void {
    const { host, trees } = this
    for (const topic of host.subscriptions()) {
      for (const peer of host.topicPeers(topic) ?? []) {
        const ps = host.peer(peer)
        if (ps?.oneCopy !== true || !ps.sourceTrees) continue
        const source = host.hashOf(peer)
        const latency = this.rtt.latencyMs(peer)
        if (latency === undefined || !(this.allSources || trees.has(topic, source))) continue
        trees.seed(topic, source, latency)
      }
    }
  }

  /**
   * Before our own message floods (from our second on; with `'all'` also at each heartbeat,
   * before any message): each tree target is told (once, and when it moved) its seed, the time
   * its copy waits in our send queue behind the ones before it (one serialization each), so
   * that a target served late takes a mesh parent instead.
   */
  private tellSeeds(topic: Topic, targets: PeerKey[], size: number): void {
    const { host } = this
    const copyMs = host.copyMs(size)
    let told = this.toldSeeds.get(topic)
    if (told === undefined) {
      told = new Map()
      this.toldSeeds.set(topic, told)
      // Our first message: its receivers start our entry only with the second (SourceTrees.seen),
      // unless every peer is a source from the start.
      if (!this.allSources) return
    }
    const hash = topicHash(topic)
    for (let rank = 0; rank < targets.length; rank++) {
      const peer = targets[rank]
      const ps = host.peer(peer)
      // Every copy before it takes our uplink's time, but only tree peers read a seed.
      if (ps?.oneCopy !== true || !ps.sourceTrees) continue
      const queueMs = rank * copyMs
      const before = told.get(peer)
      if (before !== undefined && Math.abs(before - queueMs) <= SEED_RESEND_MS) continue
      told.set(peer, queueMs)
      const o = emptyOneCopy()
      const entry = { source: this.ownHash, distanceMs: queueMs, parent: false }
      o.distances = [{ topicHash: hash, entries: [encodeDistanceEntry(entry)] }]
      host.sendOneCopy(peer, o)
    }
  }

  /**
   * A message of `size` bytes: the topic's typical size. When its per-hop cost moved by more
   * than a quarter (and 0.5 ms), every source's distance is recomputed with it: a path of
   * more, shorter hops is the faster one for small messages only.
   */
  private sized(topic: Topic, size: number): void {
    this.topicSize.set(topic, size)
    const cost = this.trees.hopMs(topic)
    const before = this.hopMs.get(topic)
    if (before === undefined) this.hopMs.set(topic, cost)
    else if (Math.abs(cost - before) > Math.max(0.5, before / 4)) {
      this.hopMs.set(topic, cost)
      if (this.trees.retune(topic)) this.distancesSoon()
    }
  }

  /** Remembers the publisher's hash of message `key` (bounded, oldest forgotten first). */
  private noteSource(key: string, source: number): void {
    setNewest(this.sources, key, source, this.maxShortIds)
  }

  /** Sends changed distance entries shortly (batched: one frame per peer for what changed meanwhile). */
  private distancesSoon(): void {
    if (!this.refinesDue) {
      this.refinesDue = true
      this.host.setTimer(DISTANCE_REFINE_MS, () => {
        this.refinesDue = false
        if (this.host.running()) this.flushDistances(true)
      })
    }
    if (this.distancesDue) return
    this.distancesDue = true
    this.host.setTimer(DISTANCE_FLUSH_MS, () => {
      this.distancesDue = false
      if (this.host.running()) this.flushDistances(false)
    })
  }

  /**
   * Sends each source-tree peer (one-copy, answers our pings) in each topic's mesh the entries
   * it has not had; the refined distances only when `refines`.
   */
  private flushDistances(refines: boolean): void {
    const { host, trees } = this
    const eligible = (p: PeerKey) => {
      const ps = host.peer(p)
      return ps?.oneCopy === true && this.treePeer(p, ps)
    }
    for (const topic of host.subscriptions()) {
      if (!trees.pending(topic)) continue
      const hash = topicHash(topic)
      for (const [peer, entries] of trees.outgoing(topic, eligible, refines)) {
        const o = emptyOneCopy()
        o.distances = [{ topicHash: hash, entries: entries.map(encodeDistanceEntry) }]
        host.sendOneCopy(peer, o)
      }
    }
  }
}
