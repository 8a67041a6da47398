import type { ArtifactClass, PeerKey, Topic } from '../common/artifact.ts'
import { InvalidParametersError } from '../common/errors.ts'
import {
  BUDGET_KINDS,
  type BudgetKind,
  type BudgetRate,
  DEFAULT_PEER_BUDGETS,
  type PeerBudgetParams,
} from './peer-budget.ts'
import { DEFAULT_RPC_LIMITS, type RpcLimits } from './rpc-codec.ts'

/** Gossipsub message signing: sign with the node's libp2p key, or carry no origin at all. */
export type SignaturePolicy = 'StrictSign' | 'StrictNoSign'

/** The named parameter sets. */
export type GossipProfile = 'stock' | 'optimized'

/** Score parameters of one topic (gossipsub v1.1, P1–P4). */
export interface TopicScoreParams {
  /** Weight of this topic's score in the total. */
  topicWeight: number
  /** P1: weight of time in mesh (positive). */
  timeInMeshWeight: number
  /** P1: the time unit, in milliseconds. */
  timeInMeshQuantumMs: number
  /** P1: cap of the counter, in quanta. */
  timeInMeshCap: number
  /** P2: weight of first message deliveries (positive). */
  firstMessageDeliveriesWeight: number
  /** P2: decay factor per decay interval. */
  firstMessageDeliveriesDecay: number
  /** P2: cap of the counter. */
  firstMessageDeliveriesCap: number
  /** P3: weight of the mesh delivery deficit (negative; 0 disables P3 and P3b). */
  meshMessageDeliveriesWeight: number
  /** P3: decay factor per decay interval. */
  meshMessageDeliveriesDecay: number
  /** P3: the expected deliveries; below this the deficit is penalised. */
  meshMessageDeliveriesThreshold: number
  /** P3: cap of the counter. */
  meshMessageDeliveriesCap: number
  /** P3: how long a peer must be in the mesh before P3 applies, in ms. */
  meshMessageDeliveriesActivationMs: number
  /** P3: a duplicate within this many ms of the first copy counts as a mesh delivery. */
  meshMessageDeliveriesWindowMs: number
  /** P3b: weight of the deficit carried when a peer leaves the mesh (negative). */
  meshFailurePenaltyWeight: number
  /** P3b: decay factor per decay interval. */
  meshFailurePenaltyDecay: number
  /** P4: weight of invalid messages (negative; the counter is squared). */
  invalidMessageDeliveriesWeight: number
  /** P4: decay factor per decay interval. */
  invalidMessageDeliveriesDecay: number
}

/** Peer score parameters (gossipsub v1.1). */
export interface ScoreParams {
  /** Parameters of every topic not listed in `topics`. */
  defaultTopic: TopicScoreParams
  /** Per-topic overrides. */
  topics: Record<Topic, Partial<TopicScoreParams>>
  /** Cap on the sum of topic scores (0 = no cap). */
  topicScoreCap: number
  /** P6: weight of IP colocation (negative; 0 disables). */
  ipColocationFactorWeight: number
  /** P6: how many peers may share an address before P6 applies. */
  ipColocationFactorThreshold: number
  /** P6: addresses exempt from P6 (default: loopback, where every test peer lives). */
  ipColocationWhitelist: string[]
  /** P7: weight of behaviour penalties (negative; the excess is squared). */
  behaviourPenaltyWeight: number
  /** P7: penalties up to this are free. */
  behaviourPenaltyThreshold: number
  /** P7: decay factor per decay interval. */
  behaviourPenaltyDecay: number
  /** How often counters decay, in milliseconds. */
  decayIntervalMs: number
  /** Counters below this are reset to 0. */
  decayToZero: number
  /** How long the score of a disconnected peer is kept, in milliseconds. */
  retainScoreMs: number
}

/** Score thresholds (gossipsub v1.1). */
export interface ScoreThresholds {
  /** Below this, no gossip is sent to or accepted from the peer. */
  gossipThreshold: number
  /** Below this, the peer gets no flood-published messages. */
  publishThreshold: number
  /** Below this, every RPC from the peer is ignored. */
  graylistThreshold: number
  /** PRUNE peer exchange is accepted only from peers above this. */
  acceptPXThreshold: number
  /** Opportunistic grafting starts when the median mesh score is below this. */
  opportunisticGraftThreshold: number
}

/** Every parameter of the gossip router. */
export interface GossipParams {
  /** Target mesh degree. */
  D: number
  /** Lower bound of the mesh degree (graft below it). */
  Dlo: number
  /** Upper bound of the mesh degree (prune above it). */
  Dhi: number
  /** Peers to send IHAVE gossip to per topic and heartbeat (at least). */
  Dlazy: number
  /** Outbound peers to keep in each mesh. */
  Dout: number
  /**
   * GRAFTs are accepted while the mesh is smaller than `D` or `Dhi` (beyond it, from peers we
   * dialled, as `dialledGraftsBeyondLimit` says); others are answered with PRUNE. Stock
   * accepts up to `Dhi`, so meshes formed by GRAFTs from both sides settle anywhere in
   * [D_lo, D_hi] (mean ≈ 9 for D = 8) and only opportunistic grafting ever trims them; `'D'`
   * keeps them at D (plus the outbound quota).
   */
  acceptGraftsUpTo: 'D' | 'Dhi'
  /**
   * A GRAFT from a peer we dialled, arriving with the mesh at the `acceptGraftsUpTo` limit:
   * `'always'` accepted (spec v1.1, stock); `'belowDout'` accepted only while the mesh holds
   * fewer than `Dout` dialled peers. The outbound quota, which keeps an inbound flood from
   * taking the mesh over, is met either way; `'always'` also lets a node that dialled most of
   * its peers take every one of their GRAFTs (pruned back only above D_hi) while its
   * neighbours refuse theirs, so its mesh runs large and theirs short.
   */
  dialledGraftsBeyondLimit: 'always' | 'belowDout'
  /**
   * Below D_lo, graft half the deficit to D per heartbeat (rounded up) instead of all of it.
   * Peers that join together graft one another, so half the links come from the other end:
   * grafting D at once takes each mesh to D plus the peers that chose it, the GRAFTs beyond
   * `acceptGraftsUpTo` are refused with a prune backoff, and the refused peers graft others.
   * Stock grafts all of it (its meshes fill gradually only as outbound streams open).
   */
  gradualGraft: boolean
  /** Peers kept by score when pruning an oversized mesh. */
  Dscore: number
  /** Fraction of eligible peers to gossip to when more than `Dlazy`. */
  gossipFactor: number
  /** Heartbeat interval, in milliseconds. */
  heartbeatIntervalMs: number
  /** Delay of the first heartbeat, in milliseconds. */
  heartbeatInitialDelayMs: number
  /** How long a fanout topic is kept after the last publish, in milliseconds. */
  fanoutTtlMs: number
  /** Heartbeats of history in the message cache. */
  mcacheLength: number
  /** Heartbeats of history advertised in IHAVE. */
  mcacheGossip: number
  /** How long a message id is remembered, in milliseconds. */
  seenTtlMs: number
  /** Upper bound of the seen cache, in entries. */
  maxSeenEntries: number
  /** Backoff after a PRUNE, in milliseconds. */
  pruneBackoffMs: number
  /** Backoff announced when leaving a topic, in milliseconds. */
  unsubscribeBackoffMs: number
  /** A GRAFT this soon after the backoff started earns an extra penalty, in milliseconds. */
  graftFloodThresholdMs: number
  /** Heartbeats between opportunistic grafting rounds. */
  opportunisticGraftTicks: number
  /** Peers grafted per opportunistic grafting round. */
  opportunisticGraftPeers: number
  /** Most IHAVE frames accepted from one peer per heartbeat. */
  maxIHaveMessages: number
  /** Most message ids requested from one peer per heartbeat. */
  maxIHaveLength: number
  /**
   * Most ids of one frame's IHAVEs looked at (a uniform random sample; the unseen among them
   * are asked for within `maxIHaveLength`): bounds the work of one frame, which must not
   * stall the node. An honest IHAVE is far smaller; ids left out are advertised again in
   * later heartbeats (and by other peers).
   */
  maxIHaveIdsExamined: number
  /** Most times one message is sent to one peer in reply to IWANT. */
  gossipRetransmission: number
  /**
   * Outstanding IWANTs per message id (the α of seed 002); `Infinity` asks every peer that
   * advertises the id, as stock gossipsub does.
   */
  maxConcurrentIWant: number
  /** Time to wait for an IWANT reply before asking the next advertiser (and penalising). */
  iwantFollowupMs: number
  /** Advertisers remembered per wanted id, to ask when the first one fails. */
  maxIWantAlternates: number
  /** Message ids tracked by the IWANT limiter at once. */
  maxIWantTracked: number
  /** Sends IDONTWANT (meshsub 1.2) to mesh peers on first receipt of large messages. */
  idontwant: boolean
  /** Smallest payload, in bytes, that triggers IDONTWANT. */
  idontwantMinDataSize: number
  /** IDONTWANT ids remembered per peer. */
  maxIDontWantPerPeer: number
  /** How long an IDONTWANT is honoured, in milliseconds. */
  idontwantTtlMs: number
  /**
   * How long, in ms, a message a peer sent IDONTWANT for may take to come before it is pulled
   * (IWANT, through the IWANT limiter) from the peers that sent IDONTWANT for it: they have
   * it. `Infinity` never pulls (stock). Every push of it can be lost while no IHAVE ever
   * comes: a node whose topic peers are all in its mesh gets no heartbeat gossip.
   */
  idontwantPullMs: number
  /**
   * Mesh peers a large relayed message is pushed to in full; the other mesh peers get an
   * IHAVE and pull it only if no copy arrives (an eager/lazy split, as in Plumtree and the
   * gossipsub v2.0 announce proposal). `Infinity` pushes to the whole mesh (stock).
   */
  eagerPushPeers: number
  /**
   * Uplink time, in ms, that a large message's eager pushes may take: a node pushes to as
   * many mesh peers as its `uploadBps` sends copies within it, and at least `eagerPushPeers`.
   */
  eagerPushBudgetMs: number
  /** Smallest payload, in bytes, relayed with the eager/lazy split. */
  lazyPushMinDataSize: number
  /** How long an IHAVE from a mesh peer waits for the pushed copy before pulling, in ms. */
  lazyPullDelayMs: number
  /**
   * Speaks the one-copy extension (doc/gossip-extension.md) with peers that negotiate it on
   * meshsub 1.3: each topic's mesh becomes near-spanning trees of eager links, the other
   * mesh links carry announces, and a missing message is pulled and its link promoted.
   * Peers without it are served as stock gossipsub serves them. On, it also makes stock's mesh
   * rules (`acceptGraftsUpTo: 'Dhi'`, `dialledGraftsBeyondLimit: 'always'`, no `gradualGraft`)
   * and `oneCopyGossipPeers: 1` the defaults, in either profile; GRAFTs from peers without the
   * extension still meet the optimized profile's (up to D), so as not to enlarge their meshes.
   */
  oneCopy: boolean
  /**
   * How long an announce from a lazy mesh link waits for the pushed copy before pulling, in
   * ms, at most: once measured, the usual lag of pushed copies behind announces is used if shorter.
   */
  oneCopyPullDelayMs: number
  /**
   * Eager in-links per topic until the node has measured enough arrivals (doc rule 4); then
   * it keeps from 1 to this many + 1, as many as bring messages measurably earlier. A node
   * chokes no mesh link on a duplicate while it has that many eager links or fewer.
   */
  oneCopyMinEager: number
  /**
   * A one-copy node publishes its own message as stock flood publish does (a full copy to
   * every topic peer): the message starts from many points of the network at once, so the
   * eager links only spread it locally.
   */
  oneCopyFloodPublish: boolean
  /**
   * How long a pull (INEED) waits for its reply before the next announcer is asked, in ms: at
   * most, over a link whose RTT was measured (source trees), two of its round trips plus one
   * copy's sending time and 20 ms (at least 40 ms); this long over the others.
   */
  oneCopyFollowupMs: number
  /**
   * One-copy peers sent heartbeat gossip (announces of the last heartbeat's messages) per topic
   * and heartbeat; peers without the extension get IHAVE gossip as configured (`Dlazy`).
   */
  oneCopyGossipPeers: number
  /**
   * One-copy per-source trees (doc/gossip-extension.md, "Per-source trees"), opt-in: between
   * one-copy peers, a distance vector of link latency (measured by ping/pong) over the mesh,
   * kept for each source whose message the node has seen; from then on a message from that
   * source is pushed only to the mesh peers that take it through this node and announced to
   * the others. Needs `oneCopy`. `'all'`: every one-copy topic peer is a source from the
   * moment its link is measured, so trees exist before anyone publishes (random publishers'
   * first messages follow them too), at the cost of an entry per member per node exchanged
   * over the mesh (Θ(N) state and bytes per node; fine for small topics, see the doc).
   */
  oneCopySourceTrees: boolean | 'all'
  /** Sources a node keeps per-source tree entries for, per topic; messages of others follow rules 1–9. */
  oneCopyMaxSources: number
  /**
   * Typical message size per topic, bytes, that the per-source trees' metric (validation and
   * sending time per hop) assumes until the topic's messages are measured: with `'all'` the
   * trees form before any message, and a 100 KB topic's tree of latency alone is not its
   * fastest (doc/gossip-extension.md, rule 10).
   */
  oneCopyTopicBytes: Record<Topic, number>
  /**
   * Per-source trees: a node also names as parent the mesh peer with the second-best path to
   * a source when it is within this many ms of the best (0: never). Its copy is a duplicate
   * unless the first path stalls, which then costs this margin rather than a pull: a latency
   * tail bought with duplicates.
   */
  oneCopyTreeBackupMs: number
  /** Short ids of recent messages remembered, to answer INEEDs and ignore known announces. */
  maxShortIds: number
  /**
   * Speaks the preamble extension (doc/gossip-extension.md) with peers that negotiate it on
   * meshsub 1.3: a large message pushed to such a peer is preceded by a small PREAMBLE, on
   * which the receiver tells its other extension peers IMRECEIVING so that their queued
   * copies to it are cancelled; one that does not come in time is pulled (IWANT).
   */
  preamble: boolean
  /** Smallest payload, in bytes, announced with a PREAMBLE. */
  preambleMinDataSize: number
  /** Slack on top of a preambled message's expected transfer time before it is pulled, in ms. */
  preambleGraceMs: number
  /**
   * Transfer rate assumed for a peer's preambled messages, in bits per second, until one has
   * been measured (the time from its PREAMBLE to its message).
   */
  preambleDefaultBps: number
  /**
   * How long before a large message's frame starts leaving the uplink its PREAMBLE goes, in
   * ms (0: just before it). A longer lead lets the receiver's IMRECEIVING cancel more copies
   * queued elsewhere, but may hold back a copy that would have come sooner.
   */
  preambleLeadMs: number
  /** Preambled messages awaited from one peer at once; further PREAMBLEs are ignored. */
  maxPreamblesPerPeer: number
  /** Preambled messages awaited, and IMRECEIVING notices held, at once (each table). */
  maxPreambles: number
  /** Sends the node's own consensus messages to every topic peer above the publish threshold. */
  floodPublish: boolean
  /**
   * Local processing time of a received message before it is validated and forwarded, in
   * ms: models the CPU cost of validation (signature and state checks) on a real node. The
   * IDONTWANT of a first receipt leaves before it; duplicates arriving during it are
   * remembered and their senders skipped when the message is forwarded.
   */
  validationDelayMs: number
  /** Extra processing time per 1,000 payload bytes, in ms (added to `validationDelayMs`). */
  validationDelayMsPerKB: number
  /**
   * Messages pending validation whose duplicate senders are remembered at once; beyond this
   * a message is still validated, but its duplicate senders are not skipped.
   */
  maxPendingValidations: number
  /** Largest accepted payload, in bytes. */
  maxMessageSize: number
  /**
   * The node's upload bandwidth in bits per second. When finite, frames carrying messages
   * wait in the router's own queue and leave at this rate, so that an IDONTWANT arriving
   * meanwhile still cancels the copy (as a real per-peer queue under TCP backpressure
   * does). `Infinity` hands every frame to the driver at once.
   */
  uploadBps: number
  /** Message frames the send queue holds at most; more are dropped and counted. */
  maxSendQueue: number
  /** Signing of published messages and what received messages must carry. */
  signaturePolicy: SignaturePolicy
  /** The artifact class of each topic (nodes must agree: it is not on the wire). */
  topicClasses: Record<Topic, ArtifactClass>
  /** The class of topics not listed in `topicClasses`. */
  defaultClass: ArtifactClass
  /**
   * Relays and advertises ingress messages like consensus ones (stock gossipsub). When
   * false, an ingress message goes from its origin to every topic peer and stops there.
   */
  forwardIngress: boolean
  /** Topics tracked per peer; subscriptions beyond are ignored. */
  maxTopicsPerPeer: number
  /**
   * Direct peers (gossipsub v1.1 explicit peering agreements, which must be reciprocal):
   * every new valid message of a topic they subscribe to is forwarded to them, they stay
   * outside the mesh (a GRAFT from one is answered with PRUNE), are sent no gossip, and
   * are never graylisted. The libp2p service keeps connections to them.
   */
  directPeers: readonly PeerKey[]
  /** Decode limits of incoming frames. */
  rpcLimits: RpcLimits
  /** Per-peer budgets of control input, and the penalty, disconnect and deny beyond them. */
  budgets: PeerBudgetParams
  /** Peer score parameters. */
  score: ScoreParams
  /** Peer score thresholds. */
  thresholds: ScoreThresholds
}

/** Options: a profile plus any parameter overrides (nested objects merge). */
export type GossipParamsOptions = Partial<
  Omit<GossipParams, 'score' | 'thresholds' | 'rpcLimits' | 'budgets'>
> & {
  /** The base parameter set (default `optimized`). */
  profile?: GossipProfile
  /** Score parameter overrides. */
  score?: Partial<Omit<ScoreParams, 'defaultTopic'>> & {
    defaultTopic?: Partial<TopicScoreParams>
  }
  /** Threshold overrides. */
  thresholds?: Partial<ScoreThresholds>
  /** Decode limit overrides. */
  rpcLimits?: Partial<RpcLimits>
  /** Budget overrides (per kind for `rates`). */
  budgets?: Partial<Omit<PeerBudgetParams, 'rates'>> & {
    rates?: Partial<Record<BudgetKind, BudgetRate>>
  }
}

/** Default topic score parameters: P1 and P2 reward, P4 punishes, P3 off until tuned. */
export const DEFAULT_TOPIC_SCORE: TopicScoreParams = {
  topicWeight: 1,
  timeInMeshWeight: 0.0027,
  timeInMeshQuantumMs: 1000,
  timeInMeshCap: 3600,
  firstMessageDeliveriesWeight: 1,
  firstMessageDeliveriesDecay: 0.5,
  firstMessageDeliveriesCap: 20,
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 0.5,
  meshMessageDeliveriesThreshold: 1,
  meshMessageDeliveriesCap: 20,
  meshMessageDeliveriesActivationMs: 5000,
  meshMessageDeliveriesWindowMs: 10,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 0.5,
  invalidMessageDeliveriesWeight: -10,
  invalidMessageDeliveriesDecay: 0.5,
}

const DEFAULT_SCORE: ScoreParams = {
  defaultTopic: DEFAULT_TOPIC_SCORE,
  topics: {},
  topicScoreCap: 50,
  ipColocationFactorWeight: -10,
  ipColocationFactorThreshold: 10,
  ipColocationWhitelist: ['127.0.0.1', '::1'],
  behaviourPenaltyWeight: -10,
  behaviourPenaltyThreshold: 6,
  behaviourPenaltyDecay: 0.9,
  decayIntervalMs: 1000,
  decayToZero: 0.01,
  retainScoreMs: 60_000,
}

const DEFAULT_THRESHOLDS: ScoreThresholds = {
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 2,
}

type FlatParams = Omit<GossipParams, 'score' | 'thresholds' | 'rpcLimits' | 'budgets'>

/** gossipsub v1.1 as Ethereum runs it: the baseline of seed 002. */
const STOCK: FlatParams = {
  D: 8,
  Dlo: 6,
  Dhi: 12,
  Dlazy: 6,
  Dout: 2,
  acceptGraftsUpTo: 'Dhi',
  dialledGraftsBeyondLimit: 'always',
  gradualGraft: false,
  Dscore: 4,
  gossipFactor: 0.25,
  heartbeatIntervalMs: 700,
  heartbeatInitialDelayMs: 100,
  fanoutTtlMs: 60_000,
  mcacheLength: 6,
  mcacheGossip: 3,
  seenTtlMs: 120_000,
  maxSeenEntries: 200_000,
  pruneBackoffMs: 60_000,
  unsubscribeBackoffMs: 10_000,
  graftFloodThresholdMs: 10_000,
  opportunisticGraftTicks: 60,
  opportunisticGraftPeers: 2,
  maxIHaveMessages: 10,
  maxIHaveLength: 5000,
  maxIHaveIdsExamined: 1000,
  gossipRetransmission: 3,
  maxConcurrentIWant: Number.POSITIVE_INFINITY,
  iwantFollowupMs: 3000,
  maxIWantAlternates: 8,
  maxIWantTracked: 10_000,
  idontwant: false,
  idontwantMinDataSize: 512,
  maxIDontWantPerPeer: 5000,
  idontwantTtlMs: 3000,
  idontwantPullMs: Number.POSITIVE_INFINITY,
  eagerPushPeers: Number.POSITIVE_INFINITY,
  eagerPushBudgetMs: 0,
  lazyPushMinDataSize: 16 * 1024,
  lazyPullDelayMs: 0,
  oneCopy: false,
  oneCopyPullDelayMs: 100,
  oneCopyFollowupMs: 400,
  oneCopyMinEager: 2,
  oneCopyFloodPublish: true,
  oneCopyGossipPeers: 3,
  oneCopySourceTrees: false,
  // Twice the largest topic expected (an Ethereum attestation subnet holds ~10,000 validators).
  // Half of `maxDistanceEntries`: a new mesh peer gets the whole table in one frame.
  oneCopyMaxSources: 8192,
  oneCopyTopicBytes: {},
  oneCopyTreeBackupMs: 0,
  maxShortIds: 16_384,
  preamble: false,
  preambleMinDataSize: 16 * 1024,
  preambleGraceMs: 50,
  preambleDefaultBps: 10_000_000,
  preambleLeadMs: 50,
  maxPreamblesPerPeer: 16,
  maxPreambles: 1024,
  floodPublish: true,
  validationDelayMs: 0,
  validationDelayMsPerKB: 0,
  maxPendingValidations: 4096,
  maxMessageSize: 1024 * 1024,
  uploadBps: Number.POSITIVE_INFINITY,
  maxSendQueue: 10_000,
  signaturePolicy: 'StrictNoSign',
  topicClasses: {},
  defaultClass: 'consensus',
  forwardIngress: true,
  maxTopicsPerPeer: 1024,
  directPeers: [],
}

/** The optimized profile: seed 002's recommendations plus seed 001's ingress policy. */
const OPTIMIZED: FlatParams = {
  ...STOCK,
  heartbeatIntervalMs: 1000,
  acceptGraftsUpTo: 'D',
  dialledGraftsBeyondLimit: 'belowDout',
  gradualGraft: true,
  maxConcurrentIWant: 1,
  iwantFollowupMs: 1000,
  idontwant: true,
  idontwantPullMs: 1000,
  // Toward peers without the one-copy extension, push as stock does (stock peers that score
  // P3 mesh deliveries must never see us under-deliver).
  eagerPushPeers: Number.POSITIVE_INFINITY,
  eagerPushBudgetMs: 35,
  lazyPullDelayMs: 50,
  // Opt-in until its latency matches stock (random publishers: p99 1.33–1.48× stock at 1,000 nodes, issue 9).
  oneCopy: false,
  oneCopyPullDelayMs: 50,
  forwardIngress: false,
}

/**
 * What `oneCopy: true` changes in either profile's defaults (explicit overrides still win):
 * stock's mesh rules, whose larger meshes (mean ≈ 9 peers for D = 8, against 7.5 with the
 * optimized rules) give each node more in-links to choose its eager ones from and shorter
 * paths (1,000 simulated nodes, single publisher seed 2: p99 1.10× stock's, 1.23× with the
 * optimized rules), and heartbeat gossip to 1 one-copy peer, not 3, which pays back the
 * larger meshes' announce bytes (doc/gossip-extension.md).
 */
const ONE_COPY_DEFAULTS: Readonly<Partial<FlatParams>> = {
  acceptGraftsUpTo: 'Dhi',
  dialledGraftsBeyondLimit: 'always',
  gradualGraft: false,
  oneCopyGossipPeers: 1,
}

/** The two profiles' flat parameters (scores, thresholds and limits are shared). */
export const PROFILES: Readonly<Record<GossipProfile, Readonly<FlatParams>>> = {
  stock: STOCK,
  optimized: OPTIMIZED,
}

/**
 * Builds validated parameters from a profile and overrides. Throws
 * {@link InvalidParametersError} for an impossible combination (e.g. `Dlo > D`).
 */
export function resolveGossipParams(options: GossipParamsOptions = {}): GossipParams {
  const { profile = 'optimized', score, thresholds, rpcLimits, budgets, ...flat } = options
  const flatBase = PROFILES[profile]
  if (flatBase === undefined)
    throw new InvalidParametersError(`unknown gossip profile "${profile}"`)
  const base = flat.oneCopy === true ? { ...flatBase, ...ONE_COPY_DEFAULTS } : flatBase
  const defined = Object.fromEntries(Object.entries(flat).filter(([, v]) => v !== undefined))
  const params: GossipParams = {
    ...base,
    ...defined,
    topicClasses: { ...base.topicClasses, ...(flat.topicClasses ?? {}) },
    oneCopyTopicBytes: { ...base.oneCopyTopicBytes, ...(flat.oneCopyTopicBytes ?? {}) },
    score: {
      ...DEFAULT_SCORE,
      ...(score ?? {}),
      defaultTopic: { ...DEFAULT_TOPIC_SCORE, ...(score?.defaultTopic ?? {}) },
      topics: { ...(score?.topics ?? {}) },
    },
    thresholds: { ...DEFAULT_THRESHOLDS, ...(thresholds ?? {}) },
    rpcLimits: { ...DEFAULT_RPC_LIMITS, ...(rpcLimits ?? {}) },
    budgets: {
      ...DEFAULT_PEER_BUDGETS,
      ...(budgets ?? {}),
      rates: { ...DEFAULT_PEER_BUDGETS.rates, ...(budgets?.rates ?? {}) },
    },
  }
  validateGossipParams(params)
  return params
}

/** Direct peers a router accepts at most: each is a standing connection and an unconditional copy. */
export const MAX_DIRECT_PEERS = 256

function check(ok: boolean, message: string): void {
  if (!ok) throw new InvalidParametersError(message)
}

const isCount = (v: number) => Number.isInteger(v) && v >= 0
const isPositiveTime = (v: number) => Number.isFinite(v) && v > 0
const isFraction = (v: number) => Number.isFinite(v) && v >= 0 && v <= 1

/** Checks every constraint of the gossipsub spec; throws {@link InvalidParametersError}. */
export function validateGossipParams(p: GossipParams): void {
  for (const k of ['D', 'Dlo', 'Dhi', 'Dlazy', 'Dout', 'Dscore'] as const) {
    check(isCount(p[k]), `${k} must be a non-negative integer, got ${p[k]}`)
  }
  check(p.D >= 1, `D must be at least 1, got ${p.D}`)
  check(p.Dlo <= p.D, `Dlo (${p.Dlo}) must not exceed D (${p.D})`)
  check(p.D <= p.Dhi, `D (${p.D}) must not exceed Dhi (${p.Dhi})`)
  check(
    p.acceptGraftsUpTo === 'D' || p.acceptGraftsUpTo === 'Dhi',
    `acceptGraftsUpTo must be 'D' or 'Dhi', got ${p.acceptGraftsUpTo}`,
  )
  check(
    p.dialledGraftsBeyondLimit === 'always' || p.dialledGraftsBeyondLimit === 'belowDout',
    `dialledGraftsBeyondLimit must be 'always' or 'belowDout', got ${p.dialledGraftsBeyondLimit}`,
  )
  check(p.Dout < p.Dlo || p.Dlo === 0, `Dout (${p.Dout}) must be below Dlo (${p.Dlo})`)
  check(p.Dout <= p.D / 2, `Dout (${p.Dout}) must not exceed D/2 (${p.D / 2})`)
  check(p.Dscore <= p.D, `Dscore (${p.Dscore}) must not exceed D (${p.D})`)
  check(isFraction(p.gossipFactor), `gossipFactor must be in [0, 1], got ${p.gossipFactor}`)
  for (const k of [
    'heartbeatIntervalMs',
    'fanoutTtlMs',
    'seenTtlMs',
    'iwantFollowupMs',
    'idontwantTtlMs',
  ] as const) {
    check(isPositiveTime(p[k]), `${k} must be a positive number of ms, got ${p[k]}`)
  }
  check(
    p.idontwantPullMs > 0,
    `idontwantPullMs must be > 0 ms (Infinity: never), got ${p.idontwantPullMs}`,
  )
  for (const k of [
    'heartbeatInitialDelayMs',
    'pruneBackoffMs',
    'unsubscribeBackoffMs',
    'graftFloodThresholdMs',
  ] as const) {
    check(Number.isFinite(p[k]) && p[k] >= 0, `${k} must be a non-negative number, got ${p[k]}`)
  }
  check(p.mcacheLength >= 1 && isCount(p.mcacheLength), 'mcacheLength must be at least 1')
  check(
    isCount(p.mcacheGossip) && p.mcacheGossip <= p.mcacheLength,
    `mcacheGossip (${p.mcacheGossip}) must not exceed mcacheLength (${p.mcacheLength})`,
  )
  for (const k of [
    'maxSeenEntries',
    'opportunisticGraftTicks',
    'maxIHaveMessages',
    'maxIHaveLength',
    'maxIHaveIdsExamined',
    'maxIWantAlternates',
    'maxIWantTracked',
    'maxIDontWantPerPeer',
    'maxTopicsPerPeer',
    'maxMessageSize',
    'maxSendQueue',
    'maxPendingValidations',
    'maxPreamblesPerPeer',
    'maxPreambles',
  ] as const) {
    check(isCount(p[k]) && p[k] >= 1, `${k} must be a positive integer, got ${p[k]}`)
  }
  check(isCount(p.opportunisticGraftPeers), 'opportunisticGraftPeers must be a count')
  check(isCount(p.gossipRetransmission), 'gossipRetransmission must be a count')
  check(isCount(p.idontwantMinDataSize), 'idontwantMinDataSize must be a count')
  check(
    p.maxConcurrentIWant === Number.POSITIVE_INFINITY ||
      (isCount(p.maxConcurrentIWant) && p.maxConcurrentIWant >= 1),
    `maxConcurrentIWant must be a positive integer or Infinity, got ${p.maxConcurrentIWant}`,
  )
  check(
    p.eagerPushPeers === Number.POSITIVE_INFINITY ||
      (isCount(p.eagerPushPeers) && p.eagerPushPeers >= 1),
    `eagerPushPeers must be a positive integer or Infinity, got ${p.eagerPushPeers}`,
  )
  check(
    Number.isFinite(p.eagerPushBudgetMs) && p.eagerPushBudgetMs >= 0,
    `eagerPushBudgetMs must be >= 0, got ${p.eagerPushBudgetMs}`,
  )
  check(isCount(p.lazyPushMinDataSize), 'lazyPushMinDataSize must be a count')
  check(isCount(p.preambleMinDataSize), 'preambleMinDataSize must be a count')
  check(
    Number.isFinite(p.preambleGraceMs) && p.preambleGraceMs >= 0,
    'preambleGraceMs must be >= 0',
  )
  check(Number.isFinite(p.preambleLeadMs) && p.preambleLeadMs >= 0, 'preambleLeadMs must be >= 0')
  check(
    Number.isFinite(p.preambleDefaultBps) && p.preambleDefaultBps > 0,
    'preambleDefaultBps must be a finite number > 0',
  )
  check(
    Number.isFinite(p.lazyPullDelayMs) && p.lazyPullDelayMs >= 0,
    'lazyPullDelayMs must be >= 0',
  )
  check(
    Number.isFinite(p.oneCopyPullDelayMs) && p.oneCopyPullDelayMs >= 0,
    'oneCopyPullDelayMs must be >= 0',
  )
  check(isPositiveTime(p.oneCopyFollowupMs), 'oneCopyFollowupMs must be > 0')
  check(
    Number.isInteger(p.oneCopyMinEager) && p.oneCopyMinEager >= 0,
    'oneCopyMinEager must be an integer >= 0',
  )
  check(isCount(p.oneCopyGossipPeers), 'oneCopyGossipPeers must be an integer >= 0')
  check(isCount(p.oneCopyMaxSources), 'oneCopyMaxSources must be an integer >= 0')
  // A topic's whole table goes to a new mesh peer in one frame; half the decoder's limit
  // leaves room for a receiver whose limit is lower than ours.
  check(
    p.oneCopyMaxSources <= p.rpcLimits.maxDistanceEntries / 2,
    `oneCopyMaxSources (${p.oneCopyMaxSources}) must not exceed half of rpcLimits.maxDistanceEntries (${p.rpcLimits.maxDistanceEntries})`,
  )
  check(
    typeof p.oneCopySourceTrees === 'boolean' || p.oneCopySourceTrees === 'all',
    `oneCopySourceTrees must be true, false or 'all', got ${String(p.oneCopySourceTrees)}`,
  )
  check(!p.oneCopySourceTrees || p.oneCopy, 'oneCopySourceTrees needs oneCopy')
  check(
    Number.isFinite(p.oneCopyTreeBackupMs) && p.oneCopyTreeBackupMs >= 0,
    `oneCopyTreeBackupMs must be a finite number >= 0, got ${p.oneCopyTreeBackupMs}`,
  )
  for (const [topic, bytes] of Object.entries(p.oneCopyTopicBytes)) {
    check(
      Number.isInteger(bytes) && bytes >= 0 && bytes <= p.maxMessageSize,
      `oneCopyTopicBytes of "${topic}" must be an integer from 0 to maxMessageSize, got ${bytes}`,
    )
  }
  check(
    isCount(p.maxShortIds) && p.maxShortIds >= 1,
    `maxShortIds must be a positive integer, got ${p.maxShortIds}`,
  )
  for (const k of ['validationDelayMs', 'validationDelayMsPerKB'] as const) {
    check(Number.isFinite(p[k]) && p[k] >= 0, `${k} must be a non-negative number, got ${p[k]}`)
  }
  check(p.uploadBps > 0, `uploadBps must be > 0 (or Infinity), got ${p.uploadBps}`)
  check(
    Array.isArray(p.directPeers) &&
      p.directPeers.length <= MAX_DIRECT_PEERS &&
      p.directPeers.every((k) => typeof k === 'string' && k.length > 0),
    `directPeers must be at most ${MAX_DIRECT_PEERS} non-empty peer keys`,
  )
  check(
    p.signaturePolicy === 'StrictSign' || p.signaturePolicy === 'StrictNoSign',
    `unknown signature policy ${p.signaturePolicy}`,
  )
  check(
    p.rpcLimits.maxFrameBytes >= p.maxMessageSize,
    `rpcLimits.maxFrameBytes (${p.rpcLimits.maxFrameBytes}) must hold maxMessageSize (${p.maxMessageSize})`,
  )
  for (const [k, v] of Object.entries(p.rpcLimits)) {
    check(isCount(v) && v >= 1, `rpcLimits.${k} must be a positive integer, got ${v}`)
  }
  validateBudgets(p.budgets)
  const t = p.thresholds
  check(t.gossipThreshold <= 0, 'gossipThreshold must be <= 0')
  check(t.publishThreshold <= t.gossipThreshold, 'publishThreshold must be <= gossipThreshold')
  check(t.graylistThreshold <= t.publishThreshold, 'graylistThreshold must be <= publishThreshold')
  check(t.acceptPXThreshold >= 0, 'acceptPXThreshold must be >= 0')
  check(t.opportunisticGraftThreshold >= 0, 'opportunisticGraftThreshold must be >= 0')
  validateScoreParams(p.score)
}

function validateBudgets(b: PeerBudgetParams): void {
  for (const kind of BUDGET_KINDS) {
    const r = b.rates[kind]
    check(
      r !== undefined && Number.isFinite(r.perSecond) && r.perSecond >= 0 && r.burst >= 1,
      `budgets.rates.${kind} needs a finite perSecond >= 0 and a burst >= 1`,
    )
    check(
      r.cutOffOverdraft === undefined || r.cutOffOverdraft >= 1,
      `budgets.rates.${kind}.cutOffOverdraft must be >= 1`,
    )
  }
  check(b.disconnectStrikes >= 1, 'budgets.disconnectStrikes must be >= 1')
  check(b.malformedStrikes >= 0, 'budgets.malformedStrikes must be >= 0')
  check(b.overdraftStrikesPerBurst >= 0, 'budgets.overdraftStrikesPerBurst must be >= 0')
  check(b.malformedStrikeBytes > 0, 'budgets.malformedStrikeBytes must be > 0')
  check(b.strikeDecayPerSecond >= 0, 'budgets.strikeDecayPerSecond must be >= 0')
  check(b.denyMs >= 0, 'budgets.denyMs must be >= 0')
  check(isCount(b.maxDenied) && b.maxDenied >= 1, 'budgets.maxDenied must be a positive integer')
}

function validateTopicScore(name: string, t: TopicScoreParams): void {
  check(t.topicWeight >= 0, `${name}.topicWeight must be >= 0`)
  check(t.timeInMeshWeight >= 0, `${name}.timeInMeshWeight must be >= 0`)
  check(isPositiveTime(t.timeInMeshQuantumMs), `${name}.timeInMeshQuantumMs must be > 0`)
  check(t.timeInMeshCap > 0, `${name}.timeInMeshCap must be > 0`)
  check(t.firstMessageDeliveriesWeight >= 0, `${name}.firstMessageDeliveriesWeight must be >= 0`)
  check(t.firstMessageDeliveriesCap > 0, `${name}.firstMessageDeliveriesCap must be > 0`)
  check(t.meshMessageDeliveriesWeight <= 0, `${name}.meshMessageDeliveriesWeight must be <= 0`)
  check(t.meshMessageDeliveriesThreshold > 0, `${name}.meshMessageDeliveriesThreshold must be > 0`)
  check(
    t.meshMessageDeliveriesCap >= t.meshMessageDeliveriesThreshold,
    `${name}.meshMessageDeliveriesCap must be >= meshMessageDeliveriesThreshold`,
  )
  check(t.meshMessageDeliveriesActivationMs >= 0, `${name}.meshMessageDeliveriesActivationMs < 0`)
  check(t.meshMessageDeliveriesWindowMs >= 0, `${name}.meshMessageDeliveriesWindowMs < 0`)
  check(t.meshFailurePenaltyWeight <= 0, `${name}.meshFailurePenaltyWeight must be <= 0`)
  check(
    t.invalidMessageDeliveriesWeight <= 0,
    `${name}.invalidMessageDeliveriesWeight must be <= 0`,
  )
  for (const k of [
    'firstMessageDeliveriesDecay',
    'meshMessageDeliveriesDecay',
    'meshFailurePenaltyDecay',
    'invalidMessageDeliveriesDecay',
  ] as const) {
    check(t[k] > 0 && t[k] < 1, `${name}.${k} must be in (0, 1)`)
  }
}

function validateScoreParams(s: ScoreParams): void {
  validateTopicScore('score.defaultTopic', s.defaultTopic)
  for (const [topic, t] of Object.entries(s.topics)) {
    validateTopicScore(`score.topics[${topic}]`, { ...s.defaultTopic, ...t })
  }
  check(s.topicScoreCap >= 0, 'score.topicScoreCap must be >= 0')
  check(s.ipColocationFactorWeight <= 0, 'score.ipColocationFactorWeight must be <= 0')
  check(s.ipColocationFactorThreshold >= 1, 'score.ipColocationFactorThreshold must be >= 1')
  check(s.behaviourPenaltyWeight <= 0, 'score.behaviourPenaltyWeight must be <= 0')
  check(s.behaviourPenaltyThreshold >= 0, 'score.behaviourPenaltyThreshold must be >= 0')
  check(
    s.behaviourPenaltyDecay > 0 && s.behaviourPenaltyDecay < 1,
    'score.behaviourPenaltyDecay must be in (0, 1)',
  )
  check(isPositiveTime(s.decayIntervalMs), 'score.decayIntervalMs must be > 0')
  check(s.decayToZero > 0 && s.decayToZero < 1, 'score.decayToZero must be in (0, 1)')
  check(s.retainScoreMs >= 0, 'score.retainScoreMs must be >= 0')
}
