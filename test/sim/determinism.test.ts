import { describe, expect, it } from 'vitest'
import type { GossipProfile, GossipRouterOptions } from '../../src/gossip/index.ts'
import {
  gossipOneCopyPreambleStrategy,
  gossipStockStrategy,
  gossipStrategy,
  withPublishers,
} from '../../src/sim/gossip-strategy.ts'
import { runScenario, type Scenario, type SimStrategy } from '../../src/sim/scenario.ts'

// Benchmarks and the report run several scenarios in one process through the module-level
// strategies, whose shared codec (recent control frames, the last IHAVE, frames and ids
// cached by object) outlives each run. A figure must not depend on what ran before it, nor
// on the codec being shared.
describe('simulator determinism', () => {
  const cases: { strategy: SimStrategy; profile: GossipProfile; options: GossipRouterOptions }[] = [
    { strategy: gossipStockStrategy, profile: 'stock', options: {} },
    {
      strategy: gossipOneCopyPreambleStrategy,
      profile: 'optimized',
      options: { oneCopy: true, preamble: true },
    },
  ]
  it.each(cases)(
    'gives a $strategy.name run the same figures again, after another run, and with the plain codec',
    async ({ strategy, profile, options }) => {
      const scenario: Scenario = {
        name: 'determinism',
        description: 'one scenario run again',
        nodes: 60,
        topology: 'provider-clustered',
        degree: 12,
        latencyMs: 0,
        bandwidth: 'placement',
        loss: 0.01,
        messages: 4,
        messageBytes: 20_000,
        class: 'consensus',
        intervalMs: 250,
        warmupMs: 3_000,
        drainMs: 3_000,
        seed: 2,
      }
      const single = withPublishers(strategy, () => [0])
      const first = await runScenario(scenario, single)
      await runScenario({ ...scenario, messageBytes: 256, seed: 3 }, strategy)
      const again = await runScenario(scenario, single)
      const plain = await runScenario(
        scenario,
        withPublishers(gossipStrategy(profile, 'plain', options, false), () => [0]),
      )
      expect(first.summary.deliveryRatio).toBeGreaterThan(0.9)
      expect(first.summary.messages).toBe(4)
      expect(again.summary).toEqual(first.summary)
      expect(again.events).toBe(first.events)
      expect(plain.summary).toEqual(first.summary)
      expect(plain.events).toBe(first.events)
    },
  )
})
