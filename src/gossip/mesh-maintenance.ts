import type { PeerKey, Topic } from '../common/artifact.ts'
import { type MessageId, messageIdKey } from '../common/message-id.ts'
import type { GossipParams } from './params.ts'
import { pick, pickFirst, shuffle } from './random-pick.ts'
import { type RpcControl, type RpcPrune, withEntry } from './rpc-codec.ts'
import type { PeerScore } from './score.ts'

/** What mesh maintenance needs from its router. */
export interface MeshHost {
  readonly params: GossipParams
  readonly score: PeerScore
  now(): number
  random(): number
  /** Peers known to subscribe to `topic`. */
  topicPeers(topic: Topic): ReadonlySet<PeerKey> | undefined
  /** True for explicit (direct) peers, which live outside the mesh. */
  isDirect(peer: PeerKey): boolean
  /** True when this node dialled `peer`. */
  isOutbound(peer: PeerKey): boolean
  /** The control message being gathered for `peer` (sent at the end of the heartbeat). */
  control(peer: PeerKey): RpcControl
  /** Ids of `topic` to advertise in IHAVE. */
  gossipIds(topic: Topic): MessageId[]
  /** True when `peer` said it does not want the message `key`. */
  doesNotWant(peer: PeerKey, key: string): boolean
  /** Queues heartbeat gossip (IHAVE, or its compact form) of `ids` to `peer`. */
  gossip(peer: PeerKey, topic: Topic, ids: MessageId[]): void
  /** `peer` left our mesh of `topic`. */
  left(topic: Topic, peer: PeerKey): void
}

/**
 * The per-topic meshes, fanouts and PRUNE backoffs, and their upkeep at each heartbeat:
 * GRAFT to D when below D_lo, shrink to D when above D_hi (keeping D_score best and D_out
 * outbound), opportunistic grafting, fanout expiry and refill, and IHAVE gossip emission.
 */
export class MeshMaintenance {
  private readonly mesh = new Map<Topic, Set<PeerKey>>()
  /**
   * Fanouts and the time of their last publish: shared empty maps, only read (deleting from
   * them is a no-op), until the first publish outside a mesh makes this node's own.
   */
  private fanout: Map<Topic, Set<PeerKey>> = NO_FANOUT
  private fanoutLastPublish: Map<Topic, number> = NO_FANOUT_PUBLISH
  private readonly backoff = new Map<Topic, Map<PeerKey, number>>()
  private readonly host: MeshHost
  private ticks = 0

  constructor(host: MeshHost) {
    this.host = host
  }

  /** Our mesh of `topic`, if we are in it. */
  meshOf(topic: Topic): Set<PeerKey> | undefined {
    return this.mesh.get(topic)
  }

  /** Our fanout peers of `topic`, if we publish to it without being in it. */
  fanoutOf(topic: Topic): Set<PeerKey> | undefined {
    return this.fanout.get(topic)
  }

  /** Joins `topic`: grafts D peers (half of them with `gradualGraft`), fanout peers first. */
  join(topic: Topic): void {
    const { host } = this
    const want = this.graftsToward(0)
    const mesh = new Set<PeerKey>()
    this.mesh.set(topic, mesh)
    const fanout = this.fanout.get(topic)
    this.fanout.delete(topic)
    this.fanoutLastPublish.delete(topic)
    const eligible = (p: PeerKey) =>
      !host.isDirect(p) && !this.inBackoff(topic, p) && !host.score.below(p, 0)
    const fromFanout = [...(fanout ?? [])].filter(eligible)
    for (const p of this.pick(fromFanout, want)) this.graft(p, topic)
    if (mesh.size < want) {
      const others = [...(host.topicPeers(topic) ?? [])].filter((p) => !mesh.has(p) && eligible(p))
      for (const p of this.pick(others, want - mesh.size)) this.graft(p, topic)
    }
  }

  /** Leaves `topic`: prunes the mesh with the unsubscribe backoff. */
  leave(topic: Topic): void {
    for (const p of [...(this.mesh.get(topic) ?? [])]) {
      this.prune(p, topic, this.host.params.unsubscribeBackoffMs)
    }
    this.mesh.delete(topic)
  }

  /** `peer` left `topic` (or disconnected): drop it from its mesh and fanout. */
  removePeer(topic: Topic, peer: PeerKey): void {
    this.prunedBy(peer, topic)
    this.fanout.get(topic)?.delete(peer)
  }

  /** `peer` pruned us from `topic`: drop it from the mesh (no PRUNE back). */
  prunedBy(peer: PeerKey, topic: Topic): void {
    if (!this.mesh.get(topic)?.delete(peer)) return
    this.host.score.prune(peer, topic)
    this.host.left(topic, peer)
  }

  /** The fanout of `topic` for a publish outside its mesh, made from `candidates` when empty. */
  fanoutFor(topic: Topic, candidates: PeerKey[]): Set<PeerKey> {
    if (this.fanout === NO_FANOUT) {
      this.fanout = new Map()
      this.fanoutLastPublish = new Map()
    }
    let fanout = this.fanout.get(topic)
    if (fanout === undefined || fanout.size === 0) {
      fanout = new Set(this.pick(candidates, this.host.params.D))
      this.fanout.set(topic, fanout)
    }
    this.fanoutLastPublish.set(topic, this.host.now())
    return fanout
  }

  /** Heartbeats run so far. */
  get heartbeats(): number {
    return this.ticks
  }

  /** One heartbeat's upkeep: backoff expiry, each subscribed mesh, fanouts, then IHAVE gossip. */
  heartbeat(now: number, subscriptions: Iterable<Topic>): void {
    this.ticks++
    // forEach, not for-of: no [key, value] pair allocated per entry at every heartbeat.
    if (this.backoff.size > 0) {
      this.backoff.forEach((peers, topic) => {
        peers.forEach((until, peer) => {
          if (until <= now) peers.delete(peer)
        })
        if (peers.size === 0) this.backoff.delete(topic)
      })
    }
    for (const topic of subscriptions) this.maintainMesh(topic)
    if (this.fanoutLastPublish.size > 0) this.maintainFanout(now)
    this.emitGossip()
  }

  /**
   * True when a GRAFT fits the mesh of `topic`: below the `acceptGraftsUpTo` limit, or beyond
   * it from a peer we `dialled` (with `'belowDout'`, only while fewer than `Dout` dialled peers
   * are in the mesh). `rules` replaces the two parameters for this GRAFT.
   */
  hasRoomFor(
    topic: Topic,
    dialled: boolean,
    rules: Pick<GossipParams, 'acceptGraftsUpTo' | 'dialledGraftsBeyondLimit'> = this.host.params,
  ): boolean {
    const { host } = this
    const p = host.params
    const mesh = this.mesh.get(topic)
    if (mesh === undefined) return false
    if (mesh.size < p[rules.acceptGraftsUpTo]) return true
    if (!dialled) return false
    if (rules.dialledGraftsBeyondLimit === 'always') return true
    let outbound = 0
    for (const q of mesh) if (host.isOutbound(q)) outbound++
    return outbound < p.Dout
  }

  /** How many peers to graft, below D_lo, into a mesh of `size` (see `gradualGraft`). */
  private graftsToward(size: number): number {
    const deficit = this.host.params.D - size
    return this.host.params.gradualGraft ? Math.ceil(deficit / 2) : deficit
  }

  /** Adds `peer` to the mesh of `topic` and tells it (GRAFT). */
  graft(peer: PeerKey, topic: Topic): void {
    this.mesh.get(topic)?.add(peer)
    this.host.score.graft(peer, topic)
    const c = this.host.control(peer)
    c.graft = withEntry(c.graft, { topicID: topic })
  }

  /** Removes `peer` from the mesh of `topic`, backs it off and tells it (PRUNE). */
  prune(peer: PeerKey, topic: Topic, backoffMs: number): void {
    this.mesh.get(topic)?.delete(peer)
    this.host.score.prune(peer, topic)
    this.host.left(topic, peer)
    this.setBackoff(topic, peer, backoffMs)
    const c = this.host.control(peer)
    c.prune = withEntry(c.prune, pruneEntry(topic, backoffMs))
  }

  /** Keeps `peer` out of the mesh of `topic` for `ms` (never shortens a longer backoff). */
  setBackoff(topic: Topic, peer: PeerKey, ms: number): void {
    let peers = this.backoff.get(topic)
    if (peers === undefined) {
      peers = new Map()
      this.backoff.set(topic, peers)
    }
    const until = this.host.now() + ms
    if ((peers.get(peer) ?? 0) < until) peers.set(peer, until)
  }

  /** When the backoff of `peer` on `topic` ends, if any. */
  backoffUntil(topic: Topic, peer: PeerKey): number | undefined {
    return this.backoff.get(topic)?.get(peer)
  }

  /** True while `peer` is backed off from `topic`. */
  inBackoff(topic: Topic, peer: PeerKey): boolean {
    return (this.backoff.get(topic)?.get(peer) ?? 0) > this.host.now()
  }

  private maintainMesh(topic: Topic): void {
    const { host } = this
    const p = host.params
    const mesh = this.mesh.get(topic)
    if (mesh === undefined) return
    // Sets are walked with forEach here: for-of allocates a result object per peer, and this
    // runs at every heartbeat of every node (72,000 of them in the largest simulations).
    // Candidates are listed only when a branch needs them.
    mesh.forEach((peer) => {
      if (host.score.below(peer, 0)) this.prune(peer, topic, p.pruneBackoffMs)
    })
    if (mesh.size < p.Dlo) {
      const n = this.graftsToward(mesh.size)
      for (const peer of this.pick(this.candidates(topic, mesh, ANY_PEER), n)) {
        this.graft(peer, topic)
      }
    }
    if (mesh.size > p.Dhi) this.shrinkMesh(topic, mesh)
    if (mesh.size >= p.Dlo) {
      let outbound = 0
      mesh.forEach((peer) => {
        if (host.isOutbound(peer)) outbound++
      })
      if (outbound < p.Dout) {
        const extra = this.candidates(topic, mesh, (peer) => host.isOutbound(peer))
        for (const peer of this.pick(extra, p.Dout - outbound)) this.graft(peer, topic)
      }
    }
    if (this.ticks % p.opportunisticGraftTicks === 0 && mesh.size > 1) {
      const scores = [...mesh].map((peer) => host.score.score(peer)).sort((a, b) => a - b)
      const median = scores[Math.floor(scores.length / 2)]
      if (median < p.thresholds.opportunisticGraftThreshold) {
        const better = this.candidates(topic, mesh, (peer) => host.score.score(peer) > median)
        for (const peer of this.pick(better, p.opportunisticGraftPeers)) this.graft(peer, topic)
      }
    }
  }

  /** Topic peers that may join the mesh of `topic` (not in it, not direct, not backed off, score ≥ 0) and pass `filter`. */
  private candidates(
    topic: Topic,
    mesh: Set<PeerKey>,
    filter: (peer: PeerKey) => boolean,
  ): PeerKey[] {
    const { host } = this
    const out: PeerKey[] = []
    host.topicPeers(topic)?.forEach((peer) => {
      if (
        !mesh.has(peer) &&
        !host.isDirect(peer) &&
        !this.inBackoff(topic, peer) &&
        !host.score.below(peer, 0) &&
        filter(peer)
      ) {
        out.push(peer)
      }
    })
    return out
  }

  /** Keeps the Dscore best-scoring peers and D - Dscore random others, with Dout outbound. */
  private shrinkMesh(topic: Topic, mesh: Set<PeerKey>): void {
    const { host } = this
    const p = host.params
    const byScore = this.shuffle([...mesh]).sort(
      (a, b) => host.score.score(b) - host.score.score(a),
    )
    const keep = byScore.slice(0, p.Dscore)
    const rest = this.shuffle(byScore.slice(p.Dscore))
    keep.push(...rest.splice(0, p.D - p.Dscore))
    const isOut = (peer: PeerKey) => host.isOutbound(peer)
    let outbound = keep.filter(isOut).length
    for (let i = 0; outbound < p.Dout && i < rest.length; i++) {
      if (!isOut(rest[i])) continue
      const victim = keep.findLastIndex((peer) => !isOut(peer))
      if (victim < 0) break
      rest.push(keep[victim])
      keep[victim] = rest[i]
      rest.splice(i, 1)
      i--
      outbound++
    }
    for (const peer of rest) this.prune(peer, topic, p.pruneBackoffMs)
  }

  private maintainFanout(now: number): void {
    const { host } = this
    for (const [topic, last] of this.fanoutLastPublish) {
      if (now - last > host.params.fanoutTtlMs) {
        this.fanout.delete(topic)
        this.fanoutLastPublish.delete(topic)
        continue
      }
      const fanout = this.fanout.get(topic)
      if (fanout === undefined) continue
      const topicPeers = host.topicPeers(topic)
      const threshold = host.params.thresholds.publishThreshold
      for (const peer of fanout) {
        if (!topicPeers?.has(peer) || host.score.below(peer, threshold)) fanout.delete(peer)
      }
      if (fanout.size < host.params.D) {
        const more = [...(topicPeers ?? [])].filter(
          (peer) => !fanout.has(peer) && !host.isDirect(peer) && !host.score.below(peer, threshold),
        )
        for (const peer of this.pick(more, host.params.D - fanout.size)) fanout.add(peer)
      }
    }
  }

  private emitGossip(): void {
    // Mesh topics, then fanout-only ones, each excluding its own peers (a fanout of a mesh
    // topic, were there one, would stand in for its mesh): no map of both per heartbeat.
    for (const [topic, mesh] of this.mesh) this.gossipTopic(topic, this.fanout.get(topic) ?? mesh)
    if (this.fanout.size === 0) return
    for (const [topic, fanout] of this.fanout) {
      if (!this.mesh.has(topic)) this.gossipTopic(topic, fanout)
    }
  }

  /** IHAVE gossip of `topic`'s recent ids to peers outside `exclude`. */
  private gossipTopic(topic: Topic, exclude: Set<PeerKey>): void {
    const { host } = this
    const p = host.params
    const ids = host.gossipIds(topic)
    if (ids.length === 0) return
    // A scratch list, reused: a list of ~50 peers per node per heartbeat was a tenth of a
    // large simulation's garbage while messages flow.
    const eligible = ELIGIBLE
    let count = 0
    host.topicPeers(topic)?.forEach((peer) => {
      if (
        !exclude.has(peer) &&
        !host.isDirect(peer) &&
        !host.score.below(peer, p.thresholds.gossipThreshold)
      ) {
        eligible[count++] = peer
      }
    })
    const n = Math.max(p.Dlazy, Math.floor(count * p.gossipFactor))
    const advertised = this.pick(ids, p.maxIHaveLength)
    // Each id's key once per heartbeat, not once per peer.
    const keys = advertised.map(messageIdKey)
    const picked = pickFirst(eligible, count, n, this.host.random)
    for (let i = 0; i < picked; i++) {
      const peer = eligible[i]
      const messageIDs = wantedOf(advertised, keys, host, peer)
      if (messageIDs.length > 0) host.gossip(peer, topic, messageIDs)
    }
  }

  private shuffle<T>(items: T[]): T[] {
    return shuffle(items, this.host.random)
  }

  private pick<T>(items: T[], n: number): T[] {
    return pick(items, n, this.host.random)
  }
}

/** The fanouts of every node that never published outside a mesh (always empty). */
const NO_FANOUT = new Map<Topic, Set<PeerKey>>()
/** Their last publish times (always empty). */
const NO_FANOUT_PUBLISH = new Map<Topic, number>()

/**
 * The ids of `ids` (keys `keys`) `peer` has not told `host` it does not want: `ids` itself when it
 * wants them all, the usual case (the lists are only read, so peers can share one), else a
 * new list.
 */
function wantedOf(ids: MessageId[], keys: string[], host: MeshHost, peer: PeerKey): MessageId[] {
  // The host and peer, not a closure over them: this runs for every gossip target.
  for (let i = 0; i < ids.length; i++) {
    if (host.doesNotWant(peer, keys[i])) {
      return ids.filter((_, j) => j < i || (j > i && !host.doesNotWant(peer, keys[j])))
    }
  }
  return ids
}

/** {@link MeshMaintenance.gossipTopic}'s list of eligible peers (only its first entries are live). */
const ELIGIBLE: PeerKey[] = []

/** The filter of {@link MeshMaintenance}'s candidates that lets every peer through. */
const ANY_PEER = (_peer: PeerKey): boolean => true

/** The PRUNE entry for `topic` with a backoff of `backoffMs` (sent in whole seconds). */
export function pruneEntry(topic: Topic, backoffMs: number): RpcPrune {
  return { topicID: topic, peers: [], backoff: Math.ceil(backoffMs / 1000) }
}
