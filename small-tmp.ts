import { runScenario } from './src/sim/scenario.ts'
import { gossipStockStrategy, gossipStrategy } from './src/sim/strategies.ts'
const variants = JSON.parse(process.argv[2] ?? '[{}]') as Record<string, number>[]
const bytesList = JSON.parse(process.argv[3] ?? '[256]') as number[]
const nodes = Number(process.argv[4] ?? 300)
const msgs = Number(process.argv[5] ?? 30)
for (const bytes of bytesList) {
  const sc = { name: 'x', description: 'x', nodes, topology: 'provider-clustered' as const, degree: 50, latencyMs: 0, bandwidth: 'placement' as const, loss: 0, messages: msgs, messageBytes: bytes, class: 'consensus' as const, intervalMs: 250, warmupMs: 5000, drainMs: 5000, seed: 1 }
  const st = await runScenario(sc, gossipStockStrategy)
  console.log('stock', bytes, st.summary.deliveryRatio, st.summary.duplicates.mean.toFixed(2), st.summary.latencyMs.p50.toFixed(0), st.summary.latencyMs.p99.toFixed(0), (st.summary.bytesPerMessage / ((nodes - 1) * bytes)).toFixed(2))
  for (const v of variants) {
    const r = await runScenario(sc, gossipStrategy('optimized', 'x', v))
    const s = r.summary
    console.log(JSON.stringify(v), bytes, s.deliveryRatio, s.duplicates.mean.toFixed(2), s.latencyMs.p50.toFixed(0), s.latencyMs.p99.toFixed(0), 'p99/stock', (s.latencyMs.p99 / st.summary.latencyMs.p99).toFixed(2), 'bytes/floor', (s.bytesPerMessage / ((nodes - 1) * bytes)).toFixed(2))
  }
}
