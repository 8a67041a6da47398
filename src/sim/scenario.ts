import type { ArtifactClass } from '../common/artifact.ts'
import type { Env } from '../common/env.ts'
import { InvalidParametersError } from '../common/errors.ts'
import { fullMeshGraph, type Graph, randomRegularGraph } from './graph.ts'
import { type DeliverySummary, DeliveryTracker } from './metrics.ts'
import { type NetworkOptions, type SimCore, Simulation } from './network.ts'
import {
  type LatencyFn,
  type Placement,
  PROVIDER_UPLOAD_BPS,
  placementBandwidth,
  placementLatency,
  providerClusteredPlacement,
  singleRegionPlacement,
  uniformLatency,
} from './placement.ts'
import { Prng } from './prng.ts'

/** How nodes are connected and placed. */
export type TopologyKind = 'random-regular' | 'full-mesh' | 'provider-clustered'

/** A reproducible workload on a simulated network. */
export interface Scenario {
  /** Short name (used on the command line). */
  name: string
  /** One line for `--help`. */
  description: string
  /** Number of nodes. */
  nodes: number
  /**
   * `random-regular`: k-regular graph, uniform latency; `full-mesh`: everyone connected,
   * uniform latency; `provider-clustered`: k-regular graph over Ethereum-like placement with
   * region/provider latencies.
   */
  topology: TopologyKind
  /** Peers per node (k) for the regular topologies. */
  degree: number
  /** One-way link latency (ms) for the uniform-latency topologies. */
  latencyMs: number
  /**
   * Upload bandwidth: unlimited, per placement (1 Gbit/s data centres, 100 Mbit/s others),
   * bits/s for all, or a range of bits/s spread evenly over the nodes (EIP-7870's home uplinks).
   */
  bandwidth: 'unlimited' | 'placement' | number | UplinkRange
  /** Frame loss probability on every link. */
  loss: number
  /** Messages published. */
  messages: number
  /** Payload bytes per message. */
  messageBytes: number
  /** Artifact class of the messages. */
  class: ArtifactClass
  /** Time between publishes (ms). */
  intervalMs: number
  /** Time before the first publish (ms), for meshes and registrations to form. */
  warmupMs: number
  /** Time after the last publish before measuring (ms). */
  drainMs: number
  /** Seed. */
  seed: number | string
  /** Strategies the demo runs by default (all when absent): some do not fit every scale. */
  strategies?: string[]
}

/** Upload bandwidths between `minBps` and `maxBps`, one per node, spread evenly over the range. */
export interface UplinkRange {
  /** Slowest uplink (bits/s). */
  minBps: number
  /** Fastest uplink (bits/s). */
  maxBps: number
}

/** The network a strategy runs on. */
export interface BuiltNetwork {
  /** Links. */
  graph: Graph
  /** Link latency. */
  latency: LatencyFn
  /** Upload bandwidth per node (bits/s). */
  uploadBps: (node: number) => number
  /** Where nodes are. */
  placement: Placement
  /** The nodes that subscribe and publish (infrastructure nodes such as RPs are not members). */
  members: number[]
  /**
   * The nodes that publish, when not the members (a broker's clients publish, and its
   * servers, the members, receive). Default: the members.
   */
  publishers?: number[]
  /**
   * Links whose transport retransmits what is lost (TCP, as between a broker and its
   * servers), as pairs of nodes: the scenario's loss does not apply to them (the latency a
   * retransmission would add is not modelled).
   */
  reliableLinks?: Array<[number, number]>
}

/** What a strategy's factory is given. */
export interface StrategyContext {
  /** The scenario being run. */
  scenario: Scenario
  /** The network built for it. */
  network: BuiltNetwork
}

/** A strategy the simulator can run: how to build each node's core. */
export interface SimStrategy {
  /** Short name (a demo row). */
  name: string
  /** One line for `--help`. */
  description: string
  /** Builds node `index`'s core. */
  create(env: Env, index: number, ctx: StrategyContext): SimCore
  /** Builds its own network (e.g. with RP infrastructure); default: {@link buildNetwork}. */
  network?(scenario: Scenario, prng: Prng): BuiltNetwork
  /** The artifact classes it carries (default: every class); it does not fit scenarios of another. */
  classes?: readonly ArtifactClass[]
}

/** A scenario's outcome for one strategy. */
export interface ScenarioResult {
  /** Strategy name. */
  strategy: string
  /** Scenario name. */
  scenario: string
  /** Delivery, latency, duplicates and traffic. */
  summary: DeliverySummary
  /** Publishes that failed (with their error codes). */
  publishErrors: string[]
  /**
   * Wire bytes (payload and control) sent from the first publish on, per message published:
   * the summary's `bytesPerMessage` without what the warm-up cost (meshes, and any state a
   * strategy builds before it carries messages).
   */
  bytesPerMessageAfterWarmup: number
  /** Simulator events fired. */
  events: number
  /** Wall-clock run time (ms). */
  wallMs: number
}

/** The topic every scenario publishes on. */
export const SCENARIO_TOPIC = 'consensus-multicast/sim'

/**
 * Upload bandwidth per node as the scenario says: unlimited, a number for all, or per
 * placement, where the nodes `inDataCentre` says (infrastructure: RPs, a broker) have a
 * data centre's uplink wherever they sit.
 */
export function scenarioBandwidth(
  scenario: Scenario,
  placement: Placement,
  inDataCentre: (node: number) => boolean = () => false,
): (node: number) => number {
  const bw = scenario.bandwidth
  if (bw === 'unlimited') return () => Number.POSITIVE_INFINITY
  if (typeof bw === 'number') return () => bw
  if (typeof bw === 'object') {
    // Node i takes the fractional part of i·φ: evenly spread, deterministic, no correlation
    // with placement order. Infrastructure sits in a data centre.
    const span = bw.maxBps - bw.minBps
    return (i) =>
      inDataCentre(i) ? PROVIDER_UPLOAD_BPS : bw.minBps + span * ((i * 0.618033988749895) % 1)
  }
  const hosted = placementBandwidth(placement)
  return (i) => (inDataCentre(i) ? PROVIDER_UPLOAD_BPS : hosted(i))
}

/** Builds the scenario's topology, placement, latency and bandwidth; all nodes are members. */
export function buildNetwork(scenario: Scenario, prng: Prng): BuiltNetwork {
  const n = scenario.nodes
  let graph: Graph
  let placement: Placement
  let latency: LatencyFn
  switch (scenario.topology) {
    case 'full-mesh':
      graph = fullMeshGraph(n)
      placement = singleRegionPlacement(n)
      latency = uniformLatency(scenario.latencyMs)
      break
    case 'random-regular':
      graph = randomRegularGraph(n, scenario.degree, prng.fork('graph'))
      placement = singleRegionPlacement(n)
      latency = uniformLatency(scenario.latencyMs)
      break
    case 'provider-clustered':
      graph = randomRegularGraph(n, scenario.degree, prng.fork('graph'))
      placement = providerClusteredPlacement(n, prng.fork('placement'))
      latency = placementLatency(placement)
      break
    default:
      throw new InvalidParametersError(`unknown topology ${String(scenario.topology)}`)
  }
  const uploadBps = scenarioBandwidth(scenario, placement)
  return { graph, latency, uploadBps, placement, members: Array.from({ length: n }, (_, i) => i) }
}

/** A started simulation of a scenario, before any publish. */
export interface ScenarioRun {
  /** The simulation. */
  sim: Simulation<SimCore>
  /** The network it runs on. */
  network: BuiltNetwork
  /** Deliveries, recorded from the start. */
  tracker: DeliveryTracker<SimCore>
}

/**
 * Builds the strategy's network for `scenario`, creates and starts every node, and
 * subscribes every member to {@link SCENARIO_TOPIC}. `overrides` adjust the network model
 * (e.g. `disconnectDetectionMs` for silent crashes).
 */
export function startScenario(
  scenario: Scenario,
  strategy: SimStrategy,
  overrides: Partial<Pick<NetworkOptions, 'disconnectDetectionMs' | 'frameOverhead'>> = {},
): ScenarioRun {
  const prng = new Prng(scenario.seed)
  const network = strategy.network?.(scenario, prng) ?? buildNetwork(scenario, prng)
  const ctx: StrategyContext = { scenario, network }
  const sim = new Simulation<SimCore>(
    {
      seed: scenario.seed,
      graph: network.graph,
      latency: network.latency,
      uploadBps: network.uploadBps,
      loss: scenario.loss,
      ...overrides,
    },
    (env, i) => strategy.create(env, i, ctx),
  )
  for (const [a, b] of network.reliableLinks ?? []) sim.setLinkLoss(a, b, 0)
  const isMember = new Uint8Array(network.graph.n)
  for (const m of network.members) isMember[m] = 1
  sim.observe((i, core) => {
    if (isMember[i] === 1) core.subscribe(SCENARIO_TOPIC)
  })
  const tracker = new DeliveryTracker(sim)
  sim.start()
  return { sim, network, tracker }
}

/** Options of {@link runScenario}. */
export interface RunOptions {
  /** Called with the fraction of virtual time done, now and then. */
  onProgress?: (fraction: number) => void
  /** Called once the nodes started, before any publish (to schedule faults). */
  setup?: (run: ScenarioRun) => void
  /** The nodes a message published by `origin` at `at` must reach (default: every member). */
  recipients?: (origin: number, at: number) => Iterable<number>
}

/**
 * Runs `scenario` under `strategy`: builds the network, subscribes every member, publishes
 * from random members at the scenario's interval and measures every delivery.
 */
export async function runScenario(
  scenario: Scenario,
  strategy: SimStrategy,
  options: RunOptions = {},
): Promise<ScenarioResult> {
  const wallStart = performance.now()
  const run = startScenario(scenario, strategy)
  const { sim, network, tracker } = run
  options.setup?.(run)
  const prng = new Prng(scenario.seed)

  const publishErrors: string[] = []
  const pending: Promise<void>[] = []
  // Scheduled before the first publish, so that it runs first at the same instant.
  let warmupBytes = 0
  sim.at(scenario.warmupMs, () => {
    warmupBytes = sim.traffic.bytesSent
  })
  const data = new Uint8Array(scenario.messageBytes)
  const pick = prng.fork('publishers')
  const publishers = network.publishers ?? network.members
  for (let m = 0; m < scenario.messages; m++) {
    const at = scenario.warmupMs + m * scenario.intervalMs
    sim.at(at, () => {
      const origin = publishers[pick.int(publishers.length)]
      // Distinct payloads: content-derived ids must differ per message.
      const payload = data.slice()
      new DataView(payload.buffer).setUint32(0, m)
      if (payload.length >= 8) new DataView(payload.buffer).setUint32(4, pick.nextU32())
      pending.push(
        sim
          .core(origin)
          .publish(SCENARIO_TOPIC, payload, { class: scenario.class })
          .then(
            (r) =>
              tracker.published(
                r.id,
                origin,
                at,
                options.recipients?.(origin, at) ?? network.members,
              ),
            (err) => {
              publishErrors.push(err?.code ?? String(err))
            },
          ),
      )
    })
  }
  const end = scenario.warmupMs + (scenario.messages - 1) * scenario.intervalMs + scenario.drainMs
  const slice = Math.max(1, end / 100)
  let events = 0
  for (let t = slice; t < end + slice; t += slice) {
    events += sim.run({ until: Math.min(t, end) })
    options.onProgress?.(Math.min(1, t / end))
  }
  await Promise.all(pending)
  const summary = tracker.summary()
  return {
    strategy: strategy.name,
    scenario: scenario.name,
    summary,
    bytesPerMessageAfterWarmup:
      (sim.traffic.bytesSent - warmupBytes) / Math.max(1, summary.messages),
    publishErrors,
    events,
    wallMs: performance.now() - wallStart,
  }
}
