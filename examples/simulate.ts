/**
 * Compares strategies in the deterministic simulator on a scenario of your own: 2,000
 * Ethereum-like nodes, 20 peers each, ten 50 KB blocks. Same seed, same numbers.
 *
 *   node examples/simulate.ts
 */
import { runScenario, SCENARIOS, type Scenario, STRATEGIES } from '../src/sim/index.ts'

const scenario: Scenario = {
  ...SCENARIOS.ethereum,
  name: 'example',
  description: '2,000 nodes, 20 peers each, ten 50 KB blocks',
  nodes: 2000,
  degree: 20,
  messages: 10,
  messageBytes: 50_000,
}
for (const strategy of STRATEGIES) {
  const { summary: s } = await runScenario(scenario, strategy)
  console.log(
    `${strategy.name.padEnd(18)} delivered ${(s.deliveryRatio * 100).toFixed(2)}%  ` +
      `p99 ${s.latencyMs.p99.toFixed(1)} ms  duplicates/node ${s.duplicates.mean.toFixed(2)}  ` +
      `MB/message ${(s.bytesPerMessage / 1e6).toFixed(1)}`,
  )
}
