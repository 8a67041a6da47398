import { Broker, type BrokerOptions } from '../broker/broker.ts'
import { BrokerClient, type BrokerClientOptions } from '../broker/client.ts'
import {
  type ClientKeys,
  directoryOf,
  generateClientKeys,
  generateServerKeys,
  type KeySource,
} from '../broker/client-keys.ts'
import type { Directory } from '../broker/directory.ts'
import { BrokerDissemination } from '../broker/dissemination.ts'
import type { BatchReference, OrderedListener, Orderer } from '../broker/orderer.ts'
import { type BrokerLimits, DEFAULT_BROKER_LIMITS } from '../broker/params.ts'
import { WitnessServer } from '../broker/server.ts'
import type { PeerKey, Topic } from '../common/artifact.ts'
import type { DisseminationEvents, PublishOptions, PublishResult } from '../common/dissemination.ts'
import type { Listener } from '../common/emitter.ts'
import type { Env, PeerInfo, ProtocolCore } from '../common/env.ts'
import { InvalidParametersError } from '../common/errors.ts'
import type { DisseminationStats } from '../common/stats.ts'
import type { Validator } from '../common/validation.ts'
import type { Ed25519KeyPair } from '../crypto/ed25519.ts'
import { graphFromEdges } from './graph.ts'
import { type SimCore, simNodeName } from './network.ts'
import {
  type Placement,
  PROVIDERS,
  placementLatency,
  providerClusteredPlacement,
  singleRegionPlacement,
  uniformLatency,
} from './placement.ts'
import type { Prng } from './prng.ts'
import {
  type BuiltNetwork,
  SCENARIO_TOPIC,
  type Scenario,
  type SimStrategy,
  type StrategyContext,
  scenarioBandwidth,
} from './scenario.ts'

/** How the broker system is laid over a scenario. */
export interface BrokerSimOptions {
  /** Clients (the publishers), each with real ed25519 and BLS keys. Default: the scenario's nodes, at most 256. */
  clients?: number
  /** Witness servers (the receivers). Default: the scenario's nodes, at most 16 (each verifies every batch's certificates: the simulator pays for them all on one CPU). */
  servers?: number
  /**
   * Virtual time from a witnessed batch's proposal to its ordered reference at each server,
   * in ms: the orderer is one sequencer, and this stands for its consensus. Default 0.
   */
  orderingDelayMs?: number
  /** Broker tuning. Default flush timeout 50 ms (the demo's), else the broker's defaults. */
  broker?: Partial<
    Omit<BrokerOptions, 'directory' | 'servers' | 'serverKeys' | 'onWitnessed' | 'limits'>
  >
  /** Client options. */
  client?: Partial<Pick<BrokerClientOptions, 'retryMs' | 'maxRetryMs' | 'maxQueue'>>
}

/** The sizes of the broker system {@link brokerSimStrategy} builds for a scenario. */
export interface BrokerSimSizes {
  /** Clients (node indices `[0, clients)`). */
  clients: number
  /** Witness servers (node indices after the broker). */
  servers: number
}

/** The clients, broker and servers {@link brokerSimStrategy} builds for `scenario`. */
export function brokerSimSizes(scenario: Scenario, opts: BrokerSimOptions = {}): BrokerSimSizes {
  const clients = opts.clients ?? Math.min(scenario.nodes, 256)
  const servers = opts.servers ?? Math.min(scenario.nodes, 16)
  if (!Number.isInteger(clients) || clients < 1) {
    throw new InvalidParametersError('the broker needs a whole number of clients, at least 1')
  }
  if (!Number.isInteger(servers) || servers < 1 || servers > 255) {
    throw new InvalidParametersError('the broker needs 1 to 255 witness servers')
  }
  return { clients, servers }
}

/**
 * A broker system's network: clients `[0, clients)`, the broker at `clients`, then the
 * servers. Clients talk to the broker only (over UDP: lossy), and the broker to every
 * server (over TCP: reliable). The keys and
 * the directory are real (drawn from the scenario's seed), as is the orderer's sequencing.
 */
export interface BrokerNetwork extends BuiltNetwork {
  /** Node index of the broker. */
  broker: number
  /** Node index of the first server; the servers are `[firstServer, graph.n)`. */
  firstServer: number
  /** Keys of every client, by id (= node index). */
  clientKeys: ClientKeys[]
  /** Key pairs of every server, by server index. */
  serverKeyPairs: Ed25519KeyPair[]
  /** The client directory. */
  directory: Directory
  /** Orders witnessed batch references for every server. */
  orderer: SimSequencer
  /** Decoder limits of every node: payloads up to the scenario's message size. */
  limits: Partial<BrokerLimits>
}

/**
 * The orderer in the simulator: one sequencer that numbers witnessed batch references in
 * proposal order and hands each to every listener at once (each server defers it on its own
 * clock). The library's `SingleSequencer` defers through a microtask, which a simulation
 * running in virtual time never reaches. Like that one, it is a single trusted process.
 */
export class SimSequencer implements Orderer {
  private readonly listeners = new Set<OrderedListener>()
  private slot = 0

  /** The last slot assigned. */
  get height(): number {
    return this.slot
  }

  propose(reference: BatchReference): void {
    const slot = ++this.slot
    for (const l of this.listeners) l(slot, reference)
  }

  subscribe(listener: OrderedListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }
}

/** Key material from the scenario's generator, so that a seed gives the same keys. */
function seededKeys(prng: Prng): KeySource {
  return (bytes) => {
    const out = new Uint8Array(bytes)
    for (let i = 0; i < bytes; i += 4) {
      const v = prng.nextU32()
      for (let b = 0; b < 4 && i + b < bytes; b++) out[i + b] = (v >>> (8 * b)) & 0xff
    }
    return out
  }
}

/**
 * Builds the broker system for `scenario`: clients and servers placed as the topology says
 * (on the provider-clustered one, like the scenario's nodes; else in one region with the
 * scenario's latency), the broker in a data centre; every key generated from the seed.
 */
export function buildBrokerNetwork(
  scenario: Scenario,
  prng: Prng,
  opts: BrokerSimOptions = {},
): BrokerNetwork {
  const { clients, servers } = brokerSimSizes(scenario, opts)
  const broker = clients
  const firstServer = clients + 1
  const total = firstServer + servers
  let placement: Placement
  if (scenario.topology === 'provider-clustered') {
    // The broker takes the place of one more node, moved into the first provider's data centre.
    placement = providerClusteredPlacement(total, prng.fork('placement'))
    placement.provider[broker] = 0
    placement.region[broker] = PROVIDERS[0].regions[0]
  } else {
    placement = singleRegionPlacement(total)
  }
  const latency =
    scenario.topology === 'provider-clustered'
      ? placementLatency(placement)
      : uniformLatency(scenario.latencyMs)
  const edges: number[] = []
  for (let c = 0; c < clients; c++) edges.push(c, broker)
  for (let s = firstServer; s < total; s++) edges.push(broker, s)
  const uploadBps = scenarioBandwidth(scenario, placement, (i) => i === broker)
  const keys = seededKeys(prng.fork('keys'))
  const clientKeys = generateClientKeys(clients, keys)
  return {
    graph: graphFromEdges(total, edges),
    latency,
    uploadBps,
    placement,
    members: Array.from({ length: servers }, (_, s) => firstServer + s),
    publishers: Array.from({ length: clients }, (_, c) => c),
    // Clients use UDP and retransmit themselves; the broker's links to the servers are TCP.
    reliableLinks: Array.from({ length: servers }, (_, s): [number, number] => [
      broker,
      firstServer + s,
    ]),
    broker,
    firstServer,
    clientKeys,
    serverKeyPairs: generateServerKeys(servers, keys),
    directory: directoryOf(clientKeys),
    orderer: new SimSequencer(),
    limits: {
      maxPayload: Math.max(DEFAULT_BROKER_LIMITS.maxPayload, scenario.messageBytes),
      maxServers: Math.max(DEFAULT_BROKER_LIMITS.maxServers, servers),
    },
  }
}

/** The broker cores keep their own counters; this is what every one of them offers. */
type BrokerCore = ProtocolCore & { stats(): DisseminationStats }

/**
 * One node of the simulated broker system (a client, the broker or a witness server) as a
 * simulator core: the real core is driven through the node's `Env`, and the clients and
 * servers are used through {@link BrokerDissemination}, as an application would. The
 * broker itself neither publishes nor delivers.
 */
export class BrokerSimNode implements SimCore {
  /** @inheritdoc */
  readonly strategy = 'broker' as const
  /** The real core. */
  readonly core: BrokerCore
  private readonly api: BrokerDissemination | undefined

  constructor(core: BrokerCore, api: BrokerDissemination | undefined) {
    this.core = core
    this.api = api
  }

  start(): void {
    this.core.start()
  }

  stop(): void {
    this.core.stop()
    this.api?.close()
  }

  peerConnected(peer: PeerKey, info?: PeerInfo): void {
    this.core.peerConnected(peer, info)
  }

  peerDisconnected(peer: PeerKey): void {
    this.core.peerDisconnected(peer)
  }

  receive(peer: PeerKey, frame: Uint8Array): void {
    this.core.receive(peer, frame)
  }

  penalise(peer: PeerKey, reason: string): void {
    this.core.penalise(peer, reason)
  }

  subscribe(topic: Topic): void {
    this.face().subscribe(topic)
  }

  unsubscribe(topic: Topic): void {
    this.face().unsubscribe(topic)
  }

  getTopics(): Topic[] {
    return this.api?.getTopics() ?? []
  }

  publish(topic: Topic, data: Uint8Array, options?: PublishOptions): Promise<PublishResult> {
    return this.face().publish(topic, data, options)
  }

  setValidator(topic: Topic, validator: Validator | undefined): void {
    this.face().setValidator(topic, validator)
  }

  /** The broker node never emits: listening to it is allowed, and hears nothing. */
  on<K extends keyof DisseminationEvents>(
    type: K,
    listener: Listener<DisseminationEvents[K]>,
  ): () => void {
    return this.api?.on(type, listener) ?? (() => {})
  }

  off<K extends keyof DisseminationEvents>(
    type: K,
    listener: Listener<DisseminationEvents[K]>,
  ): void {
    this.api?.off(type, listener)
  }

  /** The core's counters: frames and bytes sent and received, refusals, deliveries. */
  stats(): DisseminationStats {
    return this.core.stats()
  }

  private face(): BrokerDissemination {
    if (this.api === undefined) {
      throw new InvalidParametersError('the broker node neither publishes nor delivers')
    }
    return this.api
  }
}

/** Builds node `index`'s core on a {@link BrokerNetwork}: a client, the broker or a server. */
export function createBrokerCore(
  env: Env,
  index: number,
  network: BrokerNetwork,
  opts: BrokerSimOptions = {},
): BrokerSimNode {
  const serverKeys = network.serverKeyPairs.map((k) => k.publicKey)
  const now = () => env.now()
  if (index < network.broker) {
    const client = new BrokerClient(env, {
      ...opts.client,
      id: index,
      ...network.clientKeys[index],
      broker: simNodeName(network.broker),
      serverKeys,
      limits: network.limits,
    })
    const api = new BrokerDissemination({ client, clientId: index, topic: SCENARIO_TOPIC, now })
    return new BrokerSimNode(client, api)
  }
  if (index === network.broker) {
    const servers: PeerKey[] = []
    for (let i = network.firstServer; i < network.graph.n; i++) servers.push(simNodeName(i))
    const broker = new Broker(env, {
      flushTimeoutMs: 50,
      ...opts.broker,
      directory: network.directory,
      servers,
      serverKeys,
      limits: network.limits,
      onWitnessed: (reference) => network.orderer.propose(reference),
    })
    return new BrokerSimNode(broker, undefined)
  }
  const serverIndex = index - network.firstServer
  const server = new WitnessServer(env, {
    index: serverIndex,
    keyPair: network.serverKeyPairs[serverIndex],
    serverKeys,
    directory: network.directory,
    limits: network.limits,
  })
  // Each server takes its ordered references as an event of its own, after the ordering delay.
  const delay = opts.orderingDelayMs ?? 0
  server.attach({
    propose: (reference) => network.orderer.propose(reference),
    subscribe: (listener) =>
      network.orderer.subscribe((slot, reference) =>
        env.setTimer(delay, () => listener(slot, reference)),
      ),
  })
  const api = new BrokerDissemination({ server, topic: SCENARIO_TOPIC, now })
  return new BrokerSimNode(server, api)
}

/** The broker strategy for the simulator, with `opts` for its system. */
export function brokerSimStrategy(opts: BrokerSimOptions = {}): SimStrategy {
  return {
    name: 'broker',
    description:
      'Chop Chop: clients (≤ 256) submit through one broker that distils batches for the witness servers (≤ 16, the receivers); real signatures',
    // The broker orders every message: it carries the consensus class only.
    classes: ['consensus'],
    network: (scenario, prng) => buildBrokerNetwork(scenario, prng, opts),
    create: (env: Env, index: number, ctx: StrategyContext) =>
      createBrokerCore(env, index, ctx.network as BrokerNetwork, opts),
  }
}

/** The Chop Chop broker, with the default system for each scenario. */
export const brokerStrategy: SimStrategy = brokerSimStrategy()
