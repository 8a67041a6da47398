import type { PeerKey, Topic } from '../common/artifact.ts'
import { ipOf } from '../common/ip-address.ts'
import { PeerSlots, type SlotOf } from '../common/peer-slots.ts'
import type { ScoreParams, TopicScoreParams } from './params.ts'

/** Counters of one peer in one topic. */
interface TopicStats {
  readonly topic: Topic
  /** The topic's score parameters, looked up once. */
  readonly params: TopicScoreParams
  inMesh: boolean
  graftTime: number
  meshTime: number
  firstMessageDeliveries: number
  meshMessageDeliveries: number
  meshMessageDeliveriesActive: boolean
  /** The link carries one-copy announces only: no mesh delivery is owed (no P3/P3b deficit). */
  announceOnly: boolean
  /** When P3 counting (re)started: the GRAFT, or the link's last turn from announce-only to eager. */
  deliveriesSince: number
  meshFailurePenalty: number
  invalidMessageDeliveries: number
}

/** Counters of one peer. */
interface PeerStats {
  connected: boolean
  expire: number
  address: string | undefined
  /**
   * Topic counters in first-use order (a plain array: a peer has counters in a topic or two
   * and a large simulation holds millions of peers); made on first use, as most peers of a
   * large network never get any.
   */
  topics: TopicStats[] | undefined
  /** `topics` by topic, made once they are more than {@link SCANNED_TOPICS}. */
  topicIndex: Map<Topic, TopicStats> | undefined
  /**
   * The topic part of the score as last computed; NaN (unset) after every change to `topics`
   * (a peer's score is read at every frame and heartbeat, and changes far less often). NaN
   * rather than undefined keeps the field a number, written in place instead of boxed anew.
   */
  topicScore: number
  behaviourPenalty: number
  /** True while listed in {@link PeerScore.decaying} (read first: a map lookup per counter change was a cache miss). */
  decaying: boolean
}

/**
 * The counters of every connected peer that has none yet (shared, frozen): most peers of a
 * large network never get a counter, and a simulation holds millions of them.
 */
const NO_STATS: PeerStats = Object.freeze(newStats(undefined))

/** Fresh counters of a connected peer. */
function newStats(address: string | undefined): PeerStats {
  return {
    connected: true,
    expire: 0,
    address,
    topics: undefined,
    topicIndex: undefined,
    // 0, not unset (NaN): the score of NO_STATS is never written.
    topicScore: 0,
    behaviourPenalty: 0,
    decaying: false,
  }
}

/** Topic counters of a peer looked up by a scan; beyond, through an index. */
const SCANNED_TOPICS = 8

/** `v` decayed by factor `f`, snapped to 0 below `zero`. */
function decay(v: number, f: number, zero: number): number {
  const d = v * f
  return d < zero ? 0 : d
}

/** Upper bound on peers whose score is kept after they disconnect. */
const MAX_RETAINED = 4096

/**
 * The gossipsub v1.1 peer score: P1 time in mesh, P2 first deliveries, P3/P3b mesh delivery
 * deficit and failure penalty, P4 invalid messages, P6 IP colocation, P7 behaviour
 * penalty. Sans-IO: time comes from the `now` function; {@link refresh} decays counters.
 */
export class PeerScore {
  private readonly params: ScoreParams
  private readonly now: () => number
  /** Connected peers' slots: the owner's (see {@link SlotPool}), or {@link own}. */
  private readonly slotOf: SlotOf
  /** Slots of our own, when no owner gives them. */
  private readonly own: PeerSlots | undefined
  /** Connected peers' counters by slot. */
  private readonly bySlot: (PeerStats | undefined)[] = []
  /** Slots of `bySlot` holding counters of their own (not {@link NO_STATS}). */
  private owned = 0
  /** True when a peer with {@link NO_STATS} scores 0 (the parameters give no penalty to nothing). */
  private readonly noStatsScoreZero: boolean
  /**
   * False while no score can be negative: no counter with a negative weight was ever
   * non-zero (no behaviour penalty, invalid message, active P3 or colocated address), and the
   * weights of the others are not negative. Then a score is never below a threshold ≤ 0 and
   * {@link below} need not compute it: in a large simulation every frame, and every peer at
   * every heartbeat's gossip, compared a score with one (cache misses for nothing). Never
   * cleared: a score that could go negative stays computed.
   */
  private mayBeNegative: boolean
  /** Disconnected peers whose (negative) score is kept for `retainScoreMs`. */
  private retained: Map<PeerKey, PeerStats> | undefined = undefined
  /**
   * The peers {@link refresh} has work for: counters that may be non-zero, a mesh membership
   * to time, or a retained score to expire. The others (most peers of a large network) are
   * not visited: decaying zeros changes nothing.
   */
  private readonly decaying = new Map<PeerKey, PeerStats>()
  /** Peers that owe no mesh deliveries (one-copy source-tree links), made on first use. */
  private treeLinks: Set<PeerKey> | undefined
  /** Peers by IP (P6); made on first use, as simulated peers have no address. */
  private byAddress: Map<string, Set<PeerKey>> | undefined
  private readonly topicParams = new Map<Topic, TopicScoreParams>()

  /**
   * `slotOf` finds a connected peer's slot (the owner gives each peer one before
   * {@link addPeer}, see {@link SlotPool}); without it the score numbers its peers itself.
   */
  constructor(params: ScoreParams, now: () => number, slotOf?: SlotOf) {
    this.params = params
    this.now = now
    this.own = slotOf === undefined ? new PeerSlots() : undefined
    this.slotOf = slotOf ?? this.own!.get
    this.noStatsScoreZero = this.scoreOf(NO_STATS) === 0
    this.mayBeNegative = this.scoreOf(NO_STATS) < 0 || params.behaviourPenaltyThreshold < 0
  }

  /** A peer connected (its retained score, if any, comes back). */
  addPeer(peer: PeerKey, addressText?: string): void {
    const address = addressText === undefined ? undefined : ipOf(addressText)
    const slot = this.own?.add(peer) ?? this.slotOf(peer)
    if (slot === undefined) return
    let ps = this.bySlot[slot]
    if (ps === undefined) {
      ps = this.retained?.get(peer)
      if (ps !== undefined) {
        this.retained!.delete(peer)
        ps.connected = true
      } else ps = address === undefined ? NO_STATS : newStats(address)
      this.bySlot[slot] = ps
      if (ps !== NO_STATS) this.owned++
    }
    if (address !== undefined) {
      if (this.params.ipColocationFactorWeight !== 0) this.mayBeNegative = true
      if (ps === NO_STATS) {
        ps = newStats(address)
        this.bySlot[slot] = ps
        this.owned++
      }
      ps.address = address
    }
    if (ps.address !== undefined) {
      this.byAddress ??= new Map()
      let set = this.byAddress.get(ps.address)
      if (set === undefined) {
        set = new Set()
        this.byAddress.set(ps.address, set)
      }
      set.add(peer)
    }
  }

  /**
   * A peer disconnected: a negative score is retained for `retainScoreMs`. `slot` is the one
   * it held (its owner may have forgotten it already).
   */
  removePeer(peer: PeerKey, slot = this.slotOf(peer)): void {
    this.treeLinks?.delete(peer)
    const ps = slot === undefined ? undefined : this.bySlot[slot]
    if (ps === undefined) return
    this.bySlot[slot!] = undefined
    if (ps !== NO_STATS) this.owned--
    this.own?.delete(peer)
    if (ps.address !== undefined) {
      const set = this.byAddress?.get(ps.address)
      set?.delete(peer)
      if (set?.size === 0) this.byAddress!.delete(ps.address)
    }
    if (this.scoreOf(ps) >= 0 || (this.retained?.size ?? 0) >= MAX_RETAINED) {
      this.stopDecaying(peer, ps)
      return
    }
    this.retained ??= new Map()
    this.retained.set(peer, ps)
    this.startDecaying(peer, ps)
    // Leaving the mesh by disconnecting still carries the delivery deficit (P3b).
    for (const ts of ps.topics ?? []) if (ts.inMesh) this.leaveMesh(ts)
    ps.topicScore = Number.NaN
    ps.connected = false
    ps.expire = this.now() + this.params.retainScoreMs
  }

  /** The peer joined our mesh of `topic`. */
  graft(peer: PeerKey, topic: Topic): void {
    const ts = this.topicStats(peer, topic)
    if (ts === undefined) return
    ts.inMesh = true
    ts.graftTime = this.now()
    ts.deliveriesSince = ts.graftTime
    ts.meshTime = 0
    ts.meshMessageDeliveriesActive = false
    ts.announceOnly = false
  }

  /**
   * The one-copy link to `peer` on `topic` turned announce-only (`on`) or back to eager. An
   * announce-only peer owes no mesh deliveries; back to eager, P3 starts over after its
   * activation time, as after a GRAFT.
   */
  setAnnounceOnly(peer: PeerKey, topic: Topic, on: boolean): void {
    const ts = this.topicStats(peer, topic)
    if (ts === undefined || !ts.inMesh || ts.announceOnly === on) return
    ts.announceOnly = on
    ts.meshMessageDeliveriesActive = false
    if (!on) ts.deliveriesSince = this.now()
  }

  /**
   * `peer` is a one-copy source-tree link until it disconnects. Such a peer pushes us only the
   * messages of the sources it is our parent for and announces the others, so it owes no mesh
   * deliveries (P3/P3b) in any topic, as an announce-only link does not; a peer that withholds
   * is passed over as a parent by the trees instead.
   */
  treeLink(peer: PeerKey): void {
    this.treeLinks ??= new Set()
    this.treeLinks.add(peer)
    const slot = this.slotOf(peer)
    const ps = slot === undefined ? undefined : this.bySlot[slot]
    for (const ts of ps?.topics ?? []) ts.meshMessageDeliveriesActive = false
    if (ps !== undefined && ps !== NO_STATS) ps.topicScore = Number.NaN
  }

  /** The peer left our mesh of `topic`. */
  prune(peer: PeerKey, topic: Topic): void {
    const ts = this.topicStats(peer, topic)
    if (ts === undefined || !ts.inMesh) return
    this.leaveMesh(ts)
  }

  /** The peer delivered a message first (P2, and P3 when it is a mesh peer). */
  firstDelivery(peer: PeerKey, topic: Topic): void {
    const ts = this.topicStats(peer, topic)
    if (ts === undefined) return
    const tp = ts.params
    ts.firstMessageDeliveries = Math.min(
      ts.firstMessageDeliveries + 1,
      tp.firstMessageDeliveriesCap,
    )
    if (ts.inMesh) {
      ts.meshMessageDeliveries = Math.min(ts.meshMessageDeliveries + 1, tp.meshMessageDeliveriesCap)
    }
  }

  /** The peer delivered a copy `sinceFirstMs` after the first one (P3 near-first credit). */
  duplicateDelivery(peer: PeerKey, topic: Topic, sinceFirstMs: number): void {
    const ts = this.topicStats(peer, topic)
    if (ts === undefined || !ts.inMesh) return
    const tp = ts.params
    if (sinceFirstMs <= tp.meshMessageDeliveriesWindowMs) {
      ts.meshMessageDeliveries = Math.min(ts.meshMessageDeliveries + 1, tp.meshMessageDeliveriesCap)
    }
  }

  /** The peer sent a message that was invalid (P4). */
  invalidMessage(peer: PeerKey, topic: Topic): void {
    const ts = this.topicStats(peer, topic)
    if (ts === undefined) return
    ts.invalidMessageDeliveries += 1
    this.mayBeNegative = true
  }

  /** Adds behaviour penalties (P7): broken IWANT promises, GRAFT during backoff. */
  addPenalty(peer: PeerKey, n: number): void {
    const ps = this.mutableStatsOf(peer)
    if (ps === undefined) return
    ps.behaviourPenalty += n
    this.mayBeNegative = true
    this.startDecaying(peer, ps)
  }

  /** The peer's behaviour penalty counter (P7, before weighting; 0 for an unknown peer). */
  behaviourPenalty(peer: PeerKey): number {
    return this.statsOf(peer)?.behaviourPenalty ?? 0
  }

  /** The peer's current score (0 for an unknown peer). */
  score(peer: PeerKey): number {
    const ps = this.statsOf(peer)
    return ps === undefined ? 0 : this.scoreOf(ps)
  }

  /** True when `peer`'s score is below `threshold` (computed only when it may be: see {@link mayBeNegative}). */
  below(peer: PeerKey, threshold: number): boolean {
    return (this.mayBeNegative || threshold > 0) && this.score(peer) < threshold
  }

  /** {@link below} for the connected peer in `slot`. */
  belowAt(slot: number, threshold: number): boolean {
    return (this.mayBeNegative || threshold > 0) && this.scoreAt(slot) < threshold
  }

  /** The current score of the connected peer in `slot` (0 for a free slot). */
  scoreAt(slot: number): number {
    // Every peer scores 0 until one has counters: a large simulation's first frames (every
    // peer's subscriptions) need not read the table, a cache miss each.
    if (this.owned === 0 && this.noStatsScoreZero) return 0
    const ps = this.bySlot[slot]
    return ps === undefined ? 0 : this.scoreOf(ps)
  }

  /** A connected or retained peer's counters. */
  private statsOf(peer: PeerKey): PeerStats | undefined {
    const slot = this.slotOf(peer)
    const ps = slot === undefined ? undefined : this.bySlot[slot]
    if (ps !== undefined || this.retained === undefined) return ps
    return this.retained.get(peer)
  }

  /** {@link statsOf}, with counters of its own for a peer that had {@link NO_STATS}. */
  private mutableStatsOf(peer: PeerKey): PeerStats | undefined {
    const ps = this.statsOf(peer)
    if (ps !== NO_STATS) return ps
    const own = newStats(undefined)
    this.bySlot[this.slotOf(peer)!] = own
    this.owned++
    return own
  }

  private scoreOf(ps: PeerStats): number {
    const p = this.params
    let topicScore = ps.topicScore
    if (Number.isNaN(topicScore)) {
      topicScore = ps.topics === undefined ? 0 : this.topicScore(ps.topics)
      if (p.topicScoreCap > 0 && topicScore > p.topicScoreCap) topicScore = p.topicScoreCap
      ps.topicScore = topicScore
    }
    let score = topicScore
    if (ps.address !== undefined && p.ipColocationFactorWeight !== 0) {
      if (!p.ipColocationWhitelist.includes(ps.address)) {
        const peers = this.byAddress?.get(ps.address)?.size ?? 0
        const surplus = peers - p.ipColocationFactorThreshold
        if (surplus > 0) score += surplus * surplus * p.ipColocationFactorWeight
      }
    }
    const excess = ps.behaviourPenalty - p.behaviourPenaltyThreshold
    if (excess > 0) score += excess * excess * p.behaviourPenaltyWeight
    return score
  }

  private topicScore(topics: TopicStats[]): number {
    let topicScore = 0
    // Indexed loops here and in decayTopics: an iterator per call is garbage at every score.
    for (let i = 0; i < topics.length; i++) {
      const ts = topics[i]
      const tp = ts.params
      let s = 0
      if (ts.inMesh) {
        const quanta = Math.min(ts.meshTime / tp.timeInMeshQuantumMs, tp.timeInMeshCap)
        s += quanta * tp.timeInMeshWeight
      }
      s += ts.firstMessageDeliveries * tp.firstMessageDeliveriesWeight
      if (ts.meshMessageDeliveriesActive && !ts.announceOnly) {
        const deficit = tp.meshMessageDeliveriesThreshold - ts.meshMessageDeliveries
        if (deficit > 0) s += deficit * deficit * tp.meshMessageDeliveriesWeight
      }
      s += ts.meshFailurePenalty * tp.meshFailurePenaltyWeight
      s += ts.invalidMessageDeliveries ** 2 * tp.invalidMessageDeliveriesWeight
      topicScore += s * tp.topicWeight
    }
    return topicScore
  }

  /** Lists `ps` (the counters of `peer`) for decay, once. */
  private startDecaying(peer: PeerKey, ps: PeerStats): void {
    if (ps.decaying) return
    ps.decaying = true
    this.decaying.set(peer, ps)
  }

  private stopDecaying(peer: PeerKey, ps: PeerStats): void {
    // Unlisted counters are left unwritten: they may be the shared, frozen NO_STATS.
    if (!ps.decaying) return
    ps.decaying = false
    this.decaying.delete(peer)
  }

  /** Decays every counter by one interval and expires retained scores. Call every `decayIntervalMs`. */
  refresh(): void {
    const now = this.now()
    const p = this.params
    // forEach, not for-of: no [peer, counters] pair allocated per peer per interval.
    this.decaying.forEach((ps, peer) => {
      if (!ps.connected) {
        if (now > ps.expire) {
          this.retained?.delete(peer)
          this.stopDecaying(peer, ps)
        }
        return
      }
      const owes = this.treeLinks?.has(peer) !== true
      const active = ps.topics !== undefined && this.decayTopics(ps.topics, now, owes)
      ps.topicScore = Number.NaN
      if (ps.behaviourPenalty !== 0) {
        ps.behaviourPenalty = decay(ps.behaviourPenalty, p.behaviourPenaltyDecay, p.decayToZero)
      }
      if (!active && ps.behaviourPenalty === 0) this.stopDecaying(peer, ps)
    })
  }

  /** Decays the counters of `topics`; false when all are 0 and none is a mesh topic (idle). */
  private decayTopics(topics: TopicStats[], now: number, owesDeliveries: boolean): boolean {
    const zero = this.params.decayToZero
    let active = false
    for (let i = 0; i < topics.length; i++) {
      const ts = topics[i]
      const tp = ts.params
      ts.firstMessageDeliveries = decay(
        ts.firstMessageDeliveries,
        tp.firstMessageDeliveriesDecay,
        zero,
      )
      ts.meshMessageDeliveries = decay(
        ts.meshMessageDeliveries,
        tp.meshMessageDeliveriesDecay,
        zero,
      )
      ts.meshFailurePenalty = decay(ts.meshFailurePenalty, tp.meshFailurePenaltyDecay, zero)
      ts.invalidMessageDeliveries = decay(
        ts.invalidMessageDeliveries,
        tp.invalidMessageDeliveriesDecay,
        zero,
      )
      if (ts.inMesh) {
        ts.meshTime = now - ts.graftTime
        const counting = now - ts.deliveriesSince
        if (owesDeliveries && !ts.announceOnly && counting > tp.meshMessageDeliveriesActivationMs) {
          ts.meshMessageDeliveriesActive = tp.meshMessageDeliveriesWeight !== 0
          if (ts.meshMessageDeliveriesActive) this.mayBeNegative = true
        }
      }
      active ||=
        ts.inMesh ||
        ts.firstMessageDeliveries !== 0 ||
        ts.meshMessageDeliveries !== 0 ||
        ts.meshFailurePenalty !== 0 ||
        ts.invalidMessageDeliveries !== 0
    }
    return active
  }

  private leaveMesh(ts: TopicStats): void {
    const tp = ts.params
    if (ts.meshMessageDeliveriesActive && !ts.announceOnly) {
      const deficit = tp.meshMessageDeliveriesThreshold - ts.meshMessageDeliveries
      if (deficit > 0) ts.meshFailurePenalty += deficit * deficit
    }
    ts.inMesh = false
    ts.announceOnly = false
    ts.meshMessageDeliveriesActive = false
  }

  private paramsOf(topic: Topic): TopicScoreParams {
    let tp = this.topicParams.get(topic)
    if (tp === undefined) {
      const override = this.params.topics[topic]
      tp =
        override === undefined
          ? this.params.defaultTopic
          : { ...this.params.defaultTopic, ...override }
      this.topicParams.set(topic, tp)
    }
    return tp
  }

  private topicStats(peer: PeerKey, topic: Topic): TopicStats | undefined {
    const ps = this.mutableStatsOf(peer)
    if (ps === undefined || !ps.connected) return undefined
    // Any change to a topic counter starts with this lookup: the peer has decay work now, and
    // its topic score must be computed again.
    this.startDecaying(peer, ps)
    ps.topicScore = Number.NaN
    let ts = findTopic(ps, topic)
    if (ts === undefined) {
      ts = {
        topic,
        params: this.paramsOf(topic),
        inMesh: false,
        graftTime: 0,
        meshTime: 0,
        firstMessageDeliveries: 0,
        meshMessageDeliveries: 0,
        meshMessageDeliveriesActive: false,
        announceOnly: false,
        deliveriesSince: 0,
        meshFailurePenalty: 0,
        invalidMessageDeliveries: 0,
      }
      const tp = ts.params
      if (tp.topicWeight < 0 || tp.timeInMeshWeight < 0 || tp.firstMessageDeliveriesWeight < 0) {
        this.mayBeNegative = true
      }
      const topics = ps.topics ?? []
      ps.topics = withTopic(topics, ts)
      if (ps.topicIndex !== undefined) ps.topicIndex.set(topic, ts)
      else if (ps.topics.length > SCANNED_TOPICS) {
        ps.topicIndex = new Map(ps.topics.map((t) => [t.topic, t]))
      }
    }
    return ts
  }
}

/** `ps`'s counters in `topic`, if any. */
function findTopic(ps: PeerStats, topic: Topic): TopicStats | undefined {
  if (ps.topicIndex !== undefined) return ps.topicIndex.get(topic)
  const topics = ps.topics
  if (topics === undefined) return undefined
  for (let i = 0; i < topics.length; i++) if (topics[i].topic === topic) return topics[i]
  return undefined
}

/** `topics` and `ts` in a new array of exactly that size (`push` reserves 16 more slots). */
function withTopic(topics: TopicStats[], ts: TopicStats): TopicStats[] {
  if (topics.length >= SCANNED_TOPICS) {
    topics.push(ts)
    return topics
  }
  const grown = new Array<TopicStats>(topics.length + 1)
  for (let i = 0; i < topics.length; i++) grown[i] = topics[i]
  grown[topics.length] = ts
  return grown
}
