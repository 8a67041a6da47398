/**
 * Stock vs optimized gossip in the simulator (issue 3).
 *
 * 1. 1,000 nodes, 50 peers each, D = 8, provider-clustered placement (region/provider
 *    latencies, 1 Gbit/s in data centres, 100 Mbit/s elsewhere): 256 B and 100 KB consensus
 *    messages. Delivery, duplicates per node per message, bytes per message, latency, and
 *    IHAVE / IWANT / IDONTWANT per message.
 * 2. Ingress on an Internet Computer subnet (full mesh, 20 ms links): transmissions per
 *    message against N − 1, for 256 B and 100 KB, and how it grows with N.
 * 3. Seed 001's load: 56 nodes, full mesh, 300 ingress messages per second.
 *
 * Usage: npm run bench -- gossip-sim [--quick]
 */
import type { ArtifactClass } from '../src/core/artifact.ts'
import { SCENARIOS } from '../src/sim/presets.ts'
import { runScenario, type Scenario, type ScenarioResult } from '../src/sim/scenario.ts'
import { gossipOptimizedStrategy, gossipStockStrategy } from '../src/sim/strategies.ts'
import { fmt, printTable, type Row, writeResults } from './report.ts'

const quick = process.argv.includes('--quick')
const profiles = [gossipStockStrategy, gossipOptimizedStrategy]

function scenario(
  name: string,
  nodes: number,
  bytes: number,
  cls: ArtifactClass,
  over: Partial<Scenario> = {},
): Scenario {
  return {
    name,
    description: name,
    nodes,
    topology: 'provider-clustered',
    degree: 50,
    latencyMs: 0,
    bandwidth: 'placement',
    loss: 0,
    messages: quick ? 5 : 30,
    messageBytes: bytes,
    class: cls,
    intervalMs: 250,
    warmupMs: 5000,
    drainMs: 5000,
    seed: 1,
    ...over,
  }
}

const control = (r: ScenarioResult, kind: string) => r.summary.controlPerMessage[kind] ?? 0

function row(label: string, r: ScenarioResult): Row {
  const s = r.summary
  return {
    scenario: label,
    profile: r.strategy,
    delivery: fmt(s.deliveryRatio, 4),
    'dups mean': fmt(s.duplicates.mean),
    'dups p99': s.duplicates.p99,
    'dups max': s.duplicates.max,
    'payload B/msg': Math.round(s.payloadBytesPerMessage),
    'control B/msg': Math.round(s.controlBytesPerMessage),
    'lat p50 ms': fmt(s.latencyMs.p50, 1),
    'lat p99 ms': fmt(s.latencyMs.p99, 1),
    'IHAVE/msg': fmt(control(r, 'IHAVE')),
    'IWANT/msg': fmt(control(r, 'IWANT')),
    'IDONTWANT/msg': fmt(control(r, 'IDONTWANT')),
    errors: r.publishErrors.length,
  }
}

const results: Record<string, ScenarioResult[]> = {}

async function compare(label: string, sc: Scenario): Promise<ScenarioResult[]> {
  const out: ScenarioResult[] = []
  for (const strategy of profiles) {
    process.stderr.write(`running ${label} with ${strategy.name}...\n`)
    out.push(await runScenario(sc, strategy))
  }
  results[label] = out
  return out
}

// 1. Consensus on 1,000 Ethereum-like nodes.
const nodes = quick ? 300 : 1000
const consensusRows: Row[] = []
const checks: Row[] = []
for (const bytes of [256, 100_000]) {
  const label = `${nodes} nodes, consensus ${bytes === 256 ? '256 B' : '100 KB'}`
  const [stock, opt] = await compare(label, scenario(label, nodes, bytes, 'consensus'))
  consensusRows.push(row(label, stock), row(label, opt))
  checks.push({
    scenario: label,
    'stock dups mean': fmt(stock.summary.duplicates.mean),
    'optimized delivery': fmt(opt.summary.deliveryRatio, 4),
    'dups optimized/stock': fmt(opt.summary.duplicates.mean / stock.summary.duplicates.mean),
    'p99 optimized/stock': fmt(opt.summary.latencyMs.p99 / stock.summary.latencyMs.p99),
  })
}
printTable(
  `Consensus gossip, ${nodes} nodes × 50 peers, D = 8, provider-clustered latency and bandwidth`,
  consensusRows,
)
printTable('Targets (dups ≤ 0.5 × stock at 100 KB, p99 ratio ≤ 1, delivery 1)', checks)

// 2. Ingress on full-mesh subnets: transmissions per message against N − 1.
const ingressRows: Row[] = []
const sizes = quick ? [28, 56] : [28, 56, 112]
for (const n of sizes) {
  for (const bytes of n === 56 ? [256, 100_000] : [256]) {
    const label = `${n}-node subnet, ingress ${bytes === 256 ? '256 B' : '100 KB'}`
    const sc = scenario(label, n, bytes, 'ingress', {
      topology: 'full-mesh',
      degree: n - 1,
      latencyMs: 20,
      bandwidth: 1e9,
    })
    for (const r of await compare(label, sc)) {
      const sends = r.summary.payloadBytesPerMessage / bytes
      ingressRows.push({
        ...row(label, r),
        'sends/msg': fmt(sends, 1),
        'sends/(N-1)': fmt(sends / (n - 1)),
      })
    }
  }
}
printTable('Ingress on full-mesh subnets (target: optimized sends/(N-1) ≤ 1.05)', ingressRows)

// 3. Seed 001: 56 nodes, 300 ingress messages per second.
const ic = { ...SCENARIOS['ic-subnet'], messages: quick ? 150 : 600 }
const seconds = (ic.messages * ic.intervalMs) / 1000
const loadRows: Row[] = []
for (const r of await compare('ic-subnet 300 msg/s', ic)) {
  const s = r.summary
  const perNodePerSecond = (v: number) => (v * s.messages) / ic.nodes / seconds
  loadRows.push({
    profile: r.strategy,
    delivery: fmt(s.deliveryRatio, 4),
    'frames/s per node': fmt(perNodePerSecond(s.framesPerMessage), 0),
    'message copies/s per node': fmt(
      perNodePerSecond(s.payloadBytesPerMessage / ic.messageBytes),
      0,
    ),
    'IHAVE ids/s per node': fmt(perNodePerSecond(control(r, 'IHAVE ids')), 0),
    'IWANT ids/s per node': fmt(perNodePerSecond(control(r, 'IWANT ids')), 0),
    'KB/s per node': fmt(perNodePerSecond(s.bytesPerMessage) / 1000, 0),
  })
}
printTable(
  `Seed 001 load: ${ic.nodes} nodes, full mesh, 300 ingress messages/s of ${ic.messageBytes} B for ${seconds} s`,
  loadRows,
)

writeResults('gossip-sim', {
  quick,
  results: Object.fromEntries(
    Object.entries(results).map(([k, rs]) => [
      k,
      rs.map((r) => ({ strategy: r.strategy, summary: r.summary, wallMs: r.wallMs })),
    ]),
  ),
})
