/**
 * Simulator scale: one 256-byte flood over N nodes with k peers each. Targets (issue 2):
 * 72,000 × 50 (3.6M transmissions) in under 60 s and 8 GB; 10,000 nodes in under 10 s.
 * Prints events/s, wall time and peak memory, and checks the closed form
 * k + (N − 1)(k − 1) for the transmission count.
 */
import { floodNetwork } from '../src/sim/flood-network.ts'
import { randomRegularGraph } from '../src/sim/graph.ts'
import { placementLatency, providerClusteredPlacement } from '../src/sim/placement.ts'
import { Prng } from '../src/sim/prng.ts'
import { fmt, printTable, type Row, writeResults } from './report.ts'

const TOPIC = 'scale'
const sizes = process.argv.includes('--quick')
  ? [{ n: 10_000, k: 50 }]
  : [
      { n: 10_000, k: 50 },
      { n: 72_000, k: 50 },
    ]

let peakRss = process.memoryUsage().rss
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
}, 50)

const rows: Row[] = []
const results = []
for (const { n, k } of sizes) {
  global.gc?.()
  const t0 = performance.now()
  const prng = new Prng(`scale-${n}`)
  const graph = randomRegularGraph(n, k, prng.fork('graph'))
  const placement = providerClusteredPlacement(n, prng.fork('placement'))
  const tGraph = performance.now() - t0
  const { sim, tracker, publish } = floodNetwork(
    { seed: `scale-${n}`, graph, latency: placementLatency(placement) },
    TOPIC,
  )
  publish(0, new Uint8Array(256))
  const t1 = performance.now()
  const events = sim.run()
  const tRun = performance.now() - t1
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
  const wall = performance.now() - t0
  const s = tracker.summary()
  const expected = k + (n - 1) * (k - 1)
  const row = {
    nodes: n,
    peers: k,
    transmissions: sim.traffic.framesSent,
    'closed form': expected,
    delivered: `${fmt(s.deliveryRatio * 100, 1)}%`,
    events,
    'events/s': Math.round(events / (tRun / 1000)),
    'graph s': fmt(tGraph / 1000),
    'wall s': fmt(wall / 1000),
    'peak RSS GB': fmt(peakRss / 2 ** 30),
    'p50 ms': fmt(s.latencyMs.p50, 1),
    'p99 ms': fmt(s.latencyMs.p99, 1),
    'max ms': fmt(s.latencyMs.max, 1),
  }
  rows.push(row)
  results.push({ ...row, wallMs: wall, runMs: tRun, graphMs: tGraph, peakRssBytes: peakRss })
  if (sim.traffic.framesSent !== expected || s.deliveryRatio !== 1) {
    console.error(`closed form violated for N=${n}, k=${k}`)
    process.exitCode = 1
  }
}
clearInterval(sampler)
printTable('Simulator scale: one 256-byte flood (provider-clustered latencies)', rows)
writeResults('sim-scale', results)
