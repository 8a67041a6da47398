import { describe, expect, it } from 'vitest'
import { encodeFloodFrame } from '../../src/flood/flood-codec.ts'
import { floodNetwork } from '../../src/sim/flood-network.ts'
import { floodStrategy } from '../../src/sim/flood-strategy.ts'
import {
  type Graph,
  graphFromEdges,
  hopDistances,
  neighborsOf,
  randomRegularGraph,
} from '../../src/sim/graph.ts'
import { uniformLatency } from '../../src/sim/placement.ts'
import { Prng } from '../../src/sim/prng.ts'
import { runScenario, type Scenario } from '../../src/sim/scenario.ts'

const TOPIC = 't'

/** Floods one message from node 0 over `graph` and runs the simulation to the end. */
function floodOn(
  graph: Graph,
  opts: { seed?: number; latencyMs: number; uploadBps?: number; data?: Uint8Array },
  recipients?: number[],
) {
  const { seed = 1, latencyMs, uploadBps, data = new Uint8Array(256) } = opts
  const net = floodNetwork({ seed, graph, latency: uniformLatency(latencyMs), uploadBps }, TOPIC)
  const id = net.publish(0, data, recipients)
  net.sim.run()
  return { ...net, graph, id }
}

function floodOnce(n: number, k: number, seed: number, latencyMs: number) {
  return floodOn(randomRegularGraph(n, k, new Prng(seed)), { seed, latencyMs })
}

describe('flooding in the simulator holds to the closed forms', () => {
  it('reaches every node with exactly k + (N-1)(k-1) transmissions on a k-regular graph', () => {
    for (const [n, k] of [
      [50, 4],
      [200, 6],
      [1000, 8],
    ]) {
      const { sim, tracker } = floodOnce(n, k, 7, 10)
      const s = tracker.summary()
      expect(s.deliveryRatio).toBe(1)
      expect(sim.traffic.framesSent).toBe(k + (n - 1) * (k - 1))
      expect(sim.traffic.framesDropped).toBe(0)
      expect(s.duplicates.count).toBe(n - 1)
    }
  })

  it('delivers at hop distance × latency with uniform latency and no bandwidth limit', () => {
    const latency = 12.5
    const { tracker, graph, id } = floodOnce(300, 5, 11, latency)
    const hops = hopDistances(graph, 0)
    for (let i = 1; i < graph.n; i++) {
      expect(tracker.arrivalTime(id, i)).toBeCloseTo(hops[i] * latency, 9)
    }
  })

  it('counts duplicates per node as (copies received) - 1', () => {
    const { tracker, graph, id } = floodOnce(100, 6, 3, 5)
    let total = 0
    for (let i = 1; i < graph.n; i++) total += tracker.duplicatesAt(id, i)
    // Every transmission is received once: N - 1 first copies, the rest duplicates (the
    // origin's copies included: it saw the message when it published).
    const k = 6
    const transmissions = k + (graph.n - 1) * (k - 1)
    const originCopies = tracker.duplicatesAt(id, 0)
    expect(total + originCopies + (graph.n - 1)).toBe(transmissions)
    expect(neighborsOf(graph, 0).length).toBe(k)
  })

  it('measures the time from first copy to first duplicate', () => {
    // Flooding on a ring of 9: the copies going both ways meet at the two farthest nodes
    // (4 hops each way), which relay to each other and so hear one duplicate each, one
    // latency after their first copy. Nobody else hears a duplicate.
    const n = 9
    const latency = 5
    const edges = Array.from({ length: n }, (_, i) => [i, (i + 1) % n]).flat()
    const { tracker, id } = floodOn(graphFromEdges(n, edges), { latencyMs: latency })
    const d = tracker.summary().firstDuplicateDelayMs
    expect(d.count).toBe(2)
    expect(d.mean).toBeCloseTo(latency, 9)
    expect(d.max).toBeCloseTo(latency, 9)
    expect(tracker.duplicatesAt(id, 4)).toBe(1)
    expect(tracker.duplicatesAt(id, 5)).toBe(1)
    expect(tracker.arrivalTime(id, 4)).toBeCloseTo(4 * latency, 9)
  })

  it('serializes a node uplink: a frame to 8 peers takes 8 times as long as to one', () => {
    // A star: node 0 in the middle, 8 leaves, no propagation latency.
    const leaves = [1, 2, 3, 4, 5, 6, 7, 8]
    const edges = leaves.flatMap((l) => [0, l])
    const bps = 8_000_000 // one byte per microsecond
    const data = new Uint8Array(100_000)
    const { tracker, id } = floodOn(
      graphFromEdges(9, edges),
      { latencyMs: 0, uploadBps: bps, data },
      leaves,
    )
    const frameBytes = encodeFloodFrame({ id, class: 'consensus', topic: TOPIC, data }).length
    const oneFrameMs = (frameBytes * 8 * 1000) / bps
    const arrivals = leaves.map((i) => tracker.arrivalTime(id, i)).sort((x, y) => x - y)
    arrivals.forEach((t, j) => {
      expect(t).toBeCloseTo((j + 1) * oneFrameMs, 9)
    })
    expect(arrivals[7] / arrivals[0]).toBeCloseTo(8, 9)
  })

  it('is deterministic: the same seed gives identical results, another seed differs', async () => {
    const scenario: Scenario = {
      name: 't',
      description: '',
      nodes: 400,
      topology: 'provider-clustered',
      degree: 8,
      latencyMs: 0,
      bandwidth: 'placement',
      loss: 0.01,
      messages: 5,
      messageBytes: 2000,
      class: 'consensus',
      intervalMs: 50,
      warmupMs: 0,
      drainMs: 2000,
      seed: 42,
    }
    const a = await runScenario(scenario, floodStrategy)
    const b = await runScenario(scenario, floodStrategy)
    const c = await runScenario({ ...scenario, seed: 43 }, floodStrategy)
    expect(JSON.stringify(a.summary)).toBe(JSON.stringify(b.summary))
    expect(a.events).toBe(b.events)
    expect(JSON.stringify(a.summary)).not.toBe(JSON.stringify(c.summary))
    expect(a.summary.deliveryRatio).toBeLessThanOrEqual(1)
    expect(a.summary.deliveryRatio).toBeGreaterThan(0.95)
  })
})
