/**
 * One node of the gossip-libp2p bench and what it measures: a stock `@libp2p/gossipsub` node
 * or ours, built with the same score parameters, and a probe that records when each measured
 * message arrived, whom its first copy came from, duplicates, mesh sizes and the scores the
 * node gives its peers. The probe runs beside its node, in the bench's thread or in a worker
 * thread of its own (node-thread.ts), so the bench measures both ways with one code.
 */

import { Worker } from 'node:worker_threads'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { type GossipSub, gossipsub } from '@libp2p/gossipsub'
import { createTopicScoreParams } from '@libp2p/gossipsub/score'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { type GossipService, gossip } from '../../src/libp2p/gossip-service.ts'

export const TOPIC = 'bench/consensus'

export type Kind = 'stock' | 'ours one-copy' | 'ours one-copy + preamble' | 'ours optimized'
export type SideName = 'stock' | 'ours'
export const sideOf = (kind: Kind): SideName => (kind === 'stock' ? 'stock' : 'ours')

/** How to build one node: its kind and the bench's options for our nodes. */
export interface NodeConfig {
  kind: Kind
  /** P3's weight on both sides (0 turns it off). */
  p3Weight: number
  /** Our one-copy nodes' `oneCopyPullDelayMs` (the profile's when absent). */
  pullDelayMs?: number
  /** Our tree nodes' `oneCopyTreeBackupMs` (the profile's when absent). */
  treeBackupMs?: number
  /** Our one-copy nodes' `oneCopySourceTrees`. */
  sourceTrees: boolean | 'all'
}

/**
 * One topic score, given to both implementations alike (P1 time in mesh, P2 first deliveries,
 * P3 mesh deliveries as Ethereum enables it, P3b, P4): a mesh peer must bring a message, or
 * a copy within 2 s of the first, about every 20 s (counter decays ×0.9 per second, threshold
 * 0.1) once it has been in the mesh 4 s; any deficit outweighs what P1 and P2 give. Stricter
 * settings (threshold 0.5) emptied every stock mesh on a loaded machine (load ~20).
 */
export function topicScore(p3Weight: number) {
  return {
    topicWeight: 1,
    timeInMeshWeight: 0.0027,
    timeInMeshQuantumMs: 1000,
    timeInMeshCap: 3600,
    firstMessageDeliveriesWeight: 0.1,
    firstMessageDeliveriesDecay: 0.5,
    firstMessageDeliveriesCap: 20,
    meshMessageDeliveriesWeight: p3Weight,
    meshMessageDeliveriesDecay: 0.9,
    meshMessageDeliveriesThreshold: 0.1,
    meshMessageDeliveriesCap: 20,
    meshMessageDeliveriesActivationMs: 4000,
    meshMessageDeliveriesWindowMs: 2000,
    meshFailurePenaltyWeight: -10,
    meshFailurePenaltyDecay: 0.5,
    invalidMessageDeliveriesWeight: -10,
    invalidMessageDeliveriesDecay: 0.5,
  }
}
/** Peer-level score parameters, alike on both sides. */
export const PEER_SCORE = {
  topicScoreCap: 50,
  behaviourPenaltyWeight: -10,
  behaviourPenaltyThreshold: 6,
  behaviourPenaltyDecay: 0.9,
  decayIntervalMs: 1000,
  decayToZero: 0.01,
}

/** Milliseconds on a clock that every thread of the process shares. */
export const nowMs = (): number => performance.timeOrigin + performance.now()

/** A measured message's index, which its payload starts with (see the bench's publish). */
export function messageIndex(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0)
}

type StockPubsub = GossipSub & {
  getMeshPeers(t: string): string[]
  getScore(peer: string): number
  score: {
    duplicateMessage(from: string, id: string, topic: string): void
    peerStats: Map<string, { behaviourPenalty: number; topics: unknown }>
  }
}
export type Stock = Libp2p<{ pubsub: StockPubsub }>
export type Ours = Libp2p<{ dissemination: GossipService }>
export type AnyNode = Stock | Ours

export const isOurs = (n: AnyNode): n is Ours => 'dissemination' in n.services

/**
 * Duplicates each stock node's router reported to its scorer (one per extra full copy), and
 * its probe's listener, told each one's sender.
 */
const stockDuplicates = new Map<AnyNode, { count: number; from?: (peer: string) => void }>()

async function createNode(config: NodeConfig): Promise<AnyNode> {
  const score = topicScore(config.p3Weight)
  const base = {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Every dial comes from 127.0.0.1 and all of them at once: no per-host inbound rate limit.
    // Handshakes run through the relays' latency on a loaded machine: generous timeouts.
    connectionManager: {
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 1000,
      dialTimeout: 30_000,
      addressDialTimeout: 30_000,
      inboundUpgradeTimeout: 30_000,
    },
  }
  if (config.kind === 'stock') {
    const node = (await createLibp2p({
      ...base,
      services: {
        identify: identify(),
        pubsub: gossipsub({
          D: 8,
          Dlo: 6,
          Dhi: 12,
          Dlazy: 6,
          heartbeatInterval: 700,
          scoreParams: {
            // Every node shares 127.0.0.1: without this, P6 keeps meshes from forming.
            IPColocationFactorWeight: 0,
            topicScoreCap: PEER_SCORE.topicScoreCap,
            behaviourPenaltyWeight: PEER_SCORE.behaviourPenaltyWeight,
            behaviourPenaltyThreshold: PEER_SCORE.behaviourPenaltyThreshold,
            behaviourPenaltyDecay: PEER_SCORE.behaviourPenaltyDecay,
            decayInterval: PEER_SCORE.decayIntervalMs,
            decayToZero: PEER_SCORE.decayToZero,
            topics: {
              [TOPIC]: createTopicScoreParams({
                ...score,
                timeInMeshQuantum: score.timeInMeshQuantumMs,
                meshMessageDeliveriesActivation: score.meshMessageDeliveriesActivationMs,
                meshMessageDeliveriesWindow: score.meshMessageDeliveriesWindowMs,
              }),
            },
          },
        }),
      },
    })) as unknown as Stock
    // Counted where stock's router hands a duplicate to its scorer: instrumentation only.
    const scorer = node.services.pubsub.score
    const original = scorer.duplicateMessage.bind(scorer)
    const counted: { count: number; from?: (peer: string) => void } = { count: 0 }
    stockDuplicates.set(node, counted)
    scorer.duplicateMessage = (from, id, topic) => {
      counted.count++
      counted.from?.(from)
      original(from, id, topic)
    }
    return node
  }
  const oneCopy = config.kind !== 'ours optimized'
  return (await createLibp2p({
    ...base,
    services: {
      identify: identify(),
      dissemination: gossip({
        profile: 'optimized',
        oneCopy,
        ...(config.pullDelayMs === undefined ? {} : { oneCopyPullDelayMs: config.pullDelayMs }),
        ...(config.sourceTrees && oneCopy
          ? {
              oneCopySourceTrees: config.sourceTrees,
              ...(config.treeBackupMs === undefined
                ? {}
                : { oneCopyTreeBackupMs: config.treeBackupMs }),
            }
          : {}),
        preamble: config.kind === 'ours one-copy + preamble',
        score: { ...PEER_SCORE, ipColocationFactorWeight: 0, defaultTopic: score },
      }),
    },
  })) as unknown as Ours
}

function meshPeers(n: AnyNode): string[] {
  return isOurs(n)
    ? n.services.dissemination.core.getMeshPeers(TOPIC)
    : n.services.pubsub.getMeshPeers(TOPIC)
}

/** Tree parents our node passed over (it showed nothing of a message; 0 for stock). */
function parentsPassedOver(n: AnyNode): number {
  return isOurs(n) ? (n.services.dissemination.stats().events['tree-parent-passed-over'] ?? 0) : 0
}

function duplicates(n: AnyNode): number {
  if (isOurs(n)) return n.services.dissemination.stats().total.duplicates
  return stockDuplicates.get(n)?.count ?? 0
}

/** The score `n` gives `peer`, and the behaviour penalty it holds against it. */
function scoreOf(n: AnyNode, peer: string): { score: number; penalty: number } {
  if (isOurs(n)) {
    const core = n.services.dissemination.core
    return { score: core.getPeerScore(peer), penalty: core.getBehaviourPenalty(peer) }
  }
  const pubsub = n.services.pubsub
  return {
    score: pubsub.getScore(peer),
    penalty: pubsub.score.peerStats.get(peer)?.behaviourPenalty ?? 0,
  }
}

/** A figure per implementation of the peers a node scored. */
type PerSide = Record<SideName, number>
const perSide = (v: number): PerSide => ({ stock: v, ours: v })

/** Duplicates by their sender: its implementation, and in this node's mesh or not. */
export type DuplicatesFrom = Record<`${SideName} ${'mesh' | 'other'}`, number>
const noDuplicates = (): DuplicatesFrom => ({
  'stock mesh': 0,
  'stock other': 0,
  'ours mesh': 0,
  'ours other': 0,
})

/** GRAFT and PRUNE a node sent and received over the run (mesh upkeep churn). */
export interface MeshControl {
  graftSent: number
  graftReceived: number
  pruneSent: number
  pruneReceived: number
}

/** What a probe saw, sent to the bench at the end of a run. */
export interface ProbeSummary {
  /** Arrival of each message (ms, {@link nowMs}); NaN: none; -Infinity: this node published it. */
  arrivals: number[]
  /** Index of the node each message's first copy came from (-1: none). */
  firstFrom: number[]
  /** Duplicates while measuring. */
  duplicates: number
  /** Tree parents passed over while measuring (ours only). */
  parentsPassedOver: number
  /** The same by their sender's implementation and whether it was in this node's mesh then. */
  duplicatesFrom: DuplicatesFrom
  /** Mesh size at each sample while measuring. */
  meshSamples: number[]
  /** Mesh peers of each implementation, summed over the same samples. */
  meshPeersBySide: PerSide
  /** Samples in which this node scored a peer of the given implementation below 0. */
  negative: PerSide
  /** Samples taken of this node's scores of peers of the given implementation. */
  sampled: PerSide
  /** Lowest score this node gave a mesh peer of the given implementation. */
  minMeshScore: PerSide
  /** Highest behaviour penalty this node held against a peer of the given implementation. */
  maxPenalty: PerSide
  /** The first negative scores this node gave, with stock's score details. */
  negativeExamples: { of: SideName; score: number; stockDetail?: unknown }[]
  disconnections: number
  /** Publications of this node that failed (it had no peer to send to). */
  publishErrors: number
  /** Mesh peers at the end. */
  mesh: string[]
  control: MeshControl
  /** Our trees' latency of each mesh link at the end (ms; empty without trees). */
  linkLatencyMs: Record<string, number>
}

/**
 * A node and its measurements. Every method is safe to call through a thread boundary: its
 * arguments and results are plain data.
 */
export class NodeProbe {
  readonly node: AnyNode
  readonly peerId: string
  readonly port: number
  private readonly arrivals: number[]
  private readonly firstFrom: number[]
  private indexOfPeer = new Map<string, number>()
  private sideOfPeer = new Map<string, SideName>()
  private readonly stockControl: MeshControl = {
    graftSent: 0,
    graftReceived: 0,
    pruneSent: 0,
    pruneReceived: 0,
  }
  private readonly publishes: Promise<unknown>[] = []
  private publishErrors = 0
  private dupsBefore = 0
  private dupsDuring = 0
  private passOversBefore = 0
  private passOversDuring = 0
  private measuring = false
  private readonly duplicatesFrom = noDuplicates()
  private disconnections = 0
  private readonly meshSamples: number[] = []
  private readonly meshPeersBySide = perSide(0)
  private readonly negative = perSide(0)
  private readonly sampled = perSide(0)
  private readonly minMeshScore = perSide(Number.POSITIVE_INFINITY)
  private readonly maxPenalty = perSide(0)
  private readonly negativeExamples: ProbeSummary['negativeExamples'] = []
  private sampler: NodeJS.Timeout | undefined
  private readonly onDisconnect = () => this.disconnections++

  private constructor(node: AnyNode, total: number) {
    this.node = node
    this.peerId = node.peerId.toString()
    this.port = Number(/\/tcp\/(\d+)/.exec(node.getMultiaddrs()[0].toString())?.[1])
    this.arrivals = new Array<number>(total).fill(Number.NaN)
    this.firstFrom = new Array<number>(total).fill(-1)
  }

  /** Starts a node for a run of `total` messages (warm-up included). */
  static async create(config: NodeConfig, total: number): Promise<NodeProbe> {
    return new NodeProbe(await createNode(config), total)
  }

  /** Dials a peer listening (through its relay) on a loopback port. */
  async dial(port: number, peerId: string): Promise<void> {
    await this.node.dial(multiaddr(`/ip4/127.0.0.1/tcp/${port}/p2p/${peerId}`))
  }

  /** Subscribes and starts recording arrivals; `ids` and `sides` name every node of the run. */
  start(ids: string[], sides: SideName[]): void {
    this.indexOfPeer = new Map(ids.map((p, i) => [p, i]))
    this.sideOfPeer = new Map(ids.map((p, i) => [p, sides[i]]))
    const n = this.node
    if (isOurs(n)) {
      n.services.dissemination.core.on('duplicate', (d) => this.duplicateFrom(d.from))
      n.services.dissemination.subscribe(TOPIC)
      n.services.dissemination.on('artifact', (a) => {
        if (a.from === undefined) return
        const m = messageIndex(a.data)
        this.arrived(m)
        this.sentBy(m, a.from)
      })
      return
    }
    const counted = stockDuplicates.get(n)
    if (counted !== undefined) counted.from = (from) => this.duplicateFrom(from)
    const c = this.stockControl
    n.services.pubsub.addEventListener('gossipsub:graft', (e) => {
      if (e.detail.direction === 'outbound') c.graftSent++
      else c.graftReceived++
    })
    n.services.pubsub.addEventListener('gossipsub:prune', (e) => {
      if (e.detail.direction === 'outbound') c.pruneSent++
      else c.pruneReceived++
    })
    n.services.pubsub.subscribe(TOPIC)
    // Stock tells the delivered message and its first sender in two events.
    n.services.pubsub.addEventListener('message', (e) => this.arrived(messageIndex(e.detail.data)))
    n.services.pubsub.addEventListener('gossipsub:message', (e) =>
      this.sentBy(messageIndex(e.detail.msg.data), e.detail.propagationSource.toString()),
    )
  }

  private arrived(m: number): void {
    if (m < this.arrivals.length && Number.isNaN(this.arrivals[m])) this.arrivals[m] = nowMs()
  }

  private sentBy(m: number, from: string): void {
    if (m < this.firstFrom.length && this.firstFrom[m] < 0)
      this.firstFrom[m] = this.indexOfPeer.get(from) ?? -1
  }

  private duplicateFrom(from: string): void {
    const side = this.sideOfPeer.get(from)
    if (!this.measuring || side === undefined) return
    this.duplicatesFrom[`${side} ${meshPeers(this.node).includes(from) ? 'mesh' : 'other'}`]++
  }

  meshSize(): number {
    return meshPeers(this.node).length
  }

  /** Publishes message `m`; returns when it was published (ms, {@link nowMs}). */
  publish(m: number, data: Uint8Array): number {
    const at = nowMs()
    this.arrivals[m] = Number.NEGATIVE_INFINITY // the origin is not a recipient
    const n = this.node
    const published = isOurs(n)
      ? n.services.dissemination.publish(TOPIC, data)
      : n.services.pubsub.publish(TOPIC, data)
    // A publisher left without peers (e.g. all pruned) fails: counted, and the run goes on.
    this.publishes.push(published.catch(() => this.publishErrors++))
    return at
  }

  /** Messages of the run (warm-up included) not yet delivered here. */
  missing(): number {
    return this.arrivals.filter(Number.isNaN).length
  }

  /** From here on duplicates, disconnections, mesh sizes and scores count. */
  startMeasuring(): void {
    this.dupsBefore = duplicates(this.node)
    this.passOversBefore = parentsPassedOver(this.node)
    this.measuring = true
    this.node.addEventListener('peer:disconnect', this.onDisconnect)
    this.sampler = setInterval(() => this.sample(), 250)
  }

  private sample(): void {
    const n = this.node
    this.meshSamples.push(this.meshSize())
    const peers = isOurs(n)
      ? n.services.dissemination.core.getPeers()
      : n.services.pubsub.getPeers().map(String)
    const mesh = new Set(meshPeers(n))
    for (const peer of mesh) {
      const side = this.sideOfPeer.get(peer)
      if (side !== undefined) this.meshPeersBySide[side]++
    }
    for (const peer of peers) {
      const other = this.sideOfPeer.get(peer)
      if (other === undefined) continue
      const { score, penalty } = scoreOf(n, peer)
      this.sampled[other]++
      if (score < 0) {
        this.negative[other]++
        if (this.negativeExamples.length < 5) {
          this.negativeExamples.push({
            of: other,
            score,
            // Stock shows what made it: P3 counter, P3b, P4, P7 (as JSON: plain data).
            stockDetail: isOurs(n)
              ? undefined
              : JSON.parse(JSON.stringify(n.services.pubsub.score.peerStats.get(peer) ?? null)),
          })
        }
      }
      // The lowest over mesh peers, which P3 applies to (others sit at 0).
      if (mesh.has(peer)) this.minMeshScore[other] = Math.min(this.minMeshScore[other], score)
      this.maxPenalty[other] = Math.max(this.maxPenalty[other], penalty)
    }
  }

  /** Ends the measured part (after every publication settled). */
  async stopMeasuring(): Promise<void> {
    await Promise.allSettled(this.publishes)
    clearInterval(this.sampler)
    this.sample()
    this.dupsDuring = duplicates(this.node) - this.dupsBefore
    this.passOversDuring = parentsPassedOver(this.node) - this.passOversBefore
    this.measuring = false
    this.node.removeEventListener('peer:disconnect', this.onDisconnect)
  }

  summary(): ProbeSummary {
    const n = this.node
    const mesh = meshPeers(n)
    const linkLatencyMs: Record<string, number> = {}
    let control = this.stockControl
    if (isOurs(n)) {
      const core = n.services.dissemination.core
      for (const p of mesh) {
        const est = core.getLinkLatency(p)
        if (est !== undefined) linkLatencyMs[p] = est
      }
      const c = n.services.dissemination.stats().control
      control = {
        graftSent: c.GRAFT?.sent ?? 0,
        graftReceived: c.GRAFT?.received ?? 0,
        pruneSent: c.PRUNE?.sent ?? 0,
        pruneReceived: c.PRUNE?.received ?? 0,
      }
    }
    return {
      arrivals: this.arrivals,
      firstFrom: this.firstFrom,
      duplicates: this.dupsDuring,
      parentsPassedOver: this.passOversDuring,
      duplicatesFrom: this.duplicatesFrom,
      meshSamples: this.meshSamples,
      meshPeersBySide: this.meshPeersBySide,
      negative: this.negative,
      sampled: this.sampled,
      minMeshScore: this.minMeshScore,
      maxPenalty: this.maxPenalty,
      negativeExamples: this.negativeExamples,
      disconnections: this.disconnections,
      publishErrors: this.publishErrors,
      mesh,
      control,
      linkLatencyMs,
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.sampler)
    await this.node.stop()
  }
}

/** The probe's calls, as the bench makes them (possibly across a thread). */
const CALLS = [
  'dial',
  'start',
  'meshSize',
  'publish',
  'missing',
  'startMeasuring',
  'stopMeasuring',
  'summary',
  'stop',
] as const
export type Call = (typeof CALLS)[number]
type Calls = Pick<NodeProbe, Call>
/** A node as the bench drives it: its probe's calls, each answered later. */
export type NodeHost = {
  [K in Call]: (...args: Parameters<Calls[K]>) => Promise<Awaited<ReturnType<Calls[K]>>>
} & {
  readonly peerId: string
  readonly port: number
  /** The probe itself when the node runs in the bench's thread (for the bench's own traces). */
  readonly local?: NodeProbe
}

/** A call to a node's worker thread, and its answer. */
export type CallMessage = { id: number; call: Call; args: unknown[] }
export type AnswerMessage =
  | { ready: { peerId: string; port: number } }
  | { id: number; result?: unknown; error?: string }

/**
 * Starts a node for a run of `total` messages: in the bench's thread, or (`thread`) in a worker
 * thread of its own, with its own event loop, as a node in a process of its own would have.
 */
export async function startNode(
  config: NodeConfig,
  total: number,
  thread: boolean,
): Promise<NodeHost> {
  if (!thread) {
    const probe = await NodeProbe.create(config, total)
    const host: Record<string, unknown> = { peerId: probe.peerId, port: probe.port, local: probe }
    for (const c of CALLS) {
      const f = probe[c] as (...a: unknown[]) => unknown
      host[c] = async (...args: unknown[]) => f.apply(probe, args)
    }
    return host as NodeHost
  }
  const worker = new Worker(new URL('./node-thread.ts', import.meta.url), {
    workerData: { config, total },
  })
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  let nextId = 0
  const failAll = (e: Error) => {
    for (const p of pending.values()) p.reject(e)
    pending.clear()
  }
  worker.on('error', failAll)
  worker.on('exit', () => failAll(new Error('bench node thread exited')))
  const ready = new Promise<{ peerId: string; port: number }>((resolve, reject) => {
    worker.once('error', reject)
    worker.on('message', (a: AnswerMessage) => {
      if ('ready' in a) return resolve(a.ready)
      const p = pending.get(a.id)
      if (p === undefined) return
      pending.delete(a.id)
      if (a.error === undefined) p.resolve(a.result)
      else p.reject(new Error(a.error))
    })
  })
  const { peerId, port } = await ready
  const host: Record<string, unknown> = { peerId, port }
  for (const c of CALLS) {
    host[c] = (...args: unknown[]) =>
      new Promise((resolve, reject) => {
        const id = nextId++
        pending.set(id, { resolve, reject })
        worker.postMessage({ id, call: c, args } satisfies CallMessage)
      })
  }
  const stop = host.stop as () => Promise<void>
  host.stop = async () => {
    await stop()
    await worker.terminate()
  }
  return host as NodeHost
}
