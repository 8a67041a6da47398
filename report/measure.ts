/**
 * One report run: a scenario under a strategy in the simulator, measured for the report.
 * The run is the library's {@link startScenario}; this file only schedules the publishes
 * and reads the network's counters and the tracker's arrival times.
 */
import type { MessageId } from '../src/common/message-id.ts'
import { DUPLICATE_BUCKETS } from '../src/sim/metrics.ts'
import { Prng } from '../src/sim/prng.ts'
import type { RpNetwork } from '../src/sim/rp-strategy.ts'
import {
  SCENARIO_TOPIC,
  type Scenario,
  type SimStrategy,
  startScenario,
} from '../src/sim/scenario.ts'

/** Points kept of each latency CDF (quantiles), enough for a smooth line chart. */
export const CDF_POINTS = 200

/** What one run measured; plain data, so a child process can send it to the parent. */
export interface RunResult {
  /** Run id (scenario/strategy). */
  id: string
  /** Scenario name. */
  scenario: string
  /** Strategy label in the report. */
  strategy: string
  /** Members (the nodes that receive). */
  members: number
  /** Nodes in the simulation (members plus infrastructure). */
  nodes: number
  /** Payload bytes per message. */
  messageBytes: number
  /** Messages published. */
  messages: number
  /** Deliveries over expected deliveries. */
  deliveryRatio: number
  /** Bytes on the wire per message, the idle background subtracted (LAN datagrams included). */
  bytesPerMessage: number
  /** Background bytes per second of the whole network with no message in flight. */
  idleBytesPerSecond: number
  /** Bytes sent from the start until the first idle window (subscriptions, registrations, meshes). */
  startupBytes: number
  /** How long {@link startupBytes} was counted, ms. */
  startupMs: number
  /** Latency percentiles over every (member, message) delivery, ms. */
  p50: number
  /** 90th percentile, ms. */
  p90: number
  /** 99th percentile, ms. */
  p99: number
  /** Latency CDF: `CDF_POINTS` quantiles of every delivery's latency (ms), ascending. */
  cdf: number[]
  /** (member, message) pairs that saw 0, 1, 2, ... duplicates (last bucket: that many or more). */
  duplicateHistogram: number[]
  /** Mean duplicates per member per message. */
  duplicatesMean: number
  /** Per message: ms until more than half of the members (the origin included) had it. */
  majorityMs: number[]
  /** Per message: ms until 95% of the members had it (NaN if never). */
  reach95Ms: number[]
  /** Simulator events fired. */
  events: number
}

/** Progress callback: fraction of virtual time done. */
export type Progress = (fraction: number) => void

/**
 * Runs `scenario` under `strategy`: warm-up (meshes, registrations), an idle window at the
 * end of the warm-up to measure background traffic, then the scenario's publishes from
 * random members and its drain. Same scenario and seed, same result.
 */
export async function measure(
  id: string,
  label: string,
  scenario: Scenario,
  strategy: SimStrategy,
  onProgress: Progress = () => {},
): Promise<RunResult> {
  const { sim, network, tracker } = startScenario(scenario, strategy)
  const lan = (network as Partial<RpNetwork>).lan
  const bytesSent = () => sim.traffic.bytesSent + (lan?.counters.bytes ?? 0)
  const members = network.members
  const publishers = network.publishers ?? members
  const publishEnd = scenario.warmupMs + (scenario.messages - 1) * scenario.intervalMs
  const end = publishEnd + scenario.drainMs
  const step = (until: number, from: number) => {
    // Slices of virtual time, so that the progress bar moves during long runs.
    const slices = Math.max(1, Math.round(((until - from) / end) * 100))
    let events = 0
    for (let s = 1; s <= slices; s++) {
      events += sim.run({ until: from + ((until - from) * s) / slices })
      onProgress(Math.min(1, (from + ((until - from) * s) / slices) / end))
    }
    return events
  }
  // Idle window: the second half of the warm-up.
  const idleStart = scenario.warmupMs / 2
  let events = step(idleStart, 0)
  const startupBytes = bytesSent()
  events += step(scenario.warmupMs, idleStart)
  const idleBytes = bytesSent() - startupBytes
  const idleMs = scenario.warmupMs - idleStart

  const pick = new Prng(`${scenario.seed}`).fork('publishers')
  const published: Array<{ id: MessageId; origin: number; at: number }> = []
  const pending: Promise<void>[] = []
  for (let m = 0; m < scenario.messages; m++) {
    const at = scenario.warmupMs + m * scenario.intervalMs
    sim.at(at, () => {
      const origin = publishers[pick.int(publishers.length)]
      const data = new Uint8Array(scenario.messageBytes)
      const view = new DataView(data.buffer)
      view.setUint32(0, m)
      if (data.length >= 8) view.setUint32(4, pick.nextU32())
      pending.push(
        sim
          .core(origin)
          .publish(SCENARIO_TOPIC, data, { class: scenario.class })
          .then((r) => {
            published.push({ id: r.id, origin, at })
            tracker.published(r.id, origin, at, members)
          }),
      )
    })
  }
  const before = bytesSent()
  events += step(end, scenario.warmupMs)
  await Promise.all(pending)
  const windowBytes = bytesSent() - before
  const background = (idleBytes / idleMs) * (end - scenario.warmupMs)

  const latencies: number[] = []
  const majorityMs: number[] = []
  const reach95Ms: number[] = []
  for (const p of published) {
    const times: number[] = []
    for (const m of members) {
      if (m === p.origin) continue
      const t = tracker.arrivalTime(p.id, m)
      if (!Number.isNaN(t)) times.push(t - p.at)
    }
    times.sort((a, b) => a - b)
    latencies.push(...times)
    // The origin counts towards the majority when it is a member (a broker's client is not).
    const own = members.includes(p.origin) ? 1 : 0
    const majority = Math.floor(members.length / 2) + 1 - own
    majorityMs.push(majority <= times.length ? (times[majority - 1] ?? 0) : Number.NaN)
    const r95 = Math.ceil(0.95 * members.length) - own
    reach95Ms.push(r95 <= times.length ? (times[r95 - 1] ?? 0) : Number.NaN)
  }
  latencies.sort((a, b) => a - b)
  const q = (p: number) =>
    latencies.length === 0
      ? Number.NaN
      : latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil(p * latencies.length) - 1))]
  const s = tracker.summary()
  return {
    id,
    scenario: scenario.name,
    strategy: label,
    members: members.length,
    nodes: network.graph.n,
    messageBytes: scenario.messageBytes,
    messages: published.length,
    deliveryRatio: s.deliveryRatio,
    bytesPerMessage: (windowBytes - background) / Math.max(1, published.length),
    idleBytesPerSecond: (idleBytes / idleMs) * 1000,
    startupBytes,
    startupMs: idleStart,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    cdf: Array.from({ length: CDF_POINTS }, (_, k) => q((k + 1) / CDF_POINTS)),
    duplicateHistogram: s.duplicateHistogram.slice(0, DUPLICATE_BUCKETS),
    duplicatesMean: s.duplicates.mean,
    majorityMs,
    reach95Ms,
    events,
  }
}
