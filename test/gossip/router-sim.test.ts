import { describe, expect, it } from 'vitest'
import { GossipRouter } from '../../src/gossip/router.ts'
import {
  gossipOneCopyStrategy,
  gossipOptimizedStrategy,
  gossipStockStrategy,
  gossipStrategy,
} from '../../src/sim/gossip-strategy.ts'
import { randomRegularGraph } from '../../src/sim/graph.ts'
import { Simulation } from '../../src/sim/network.ts'
import { uniformLatency } from '../../src/sim/placement.ts'
import { Prng } from '../../src/sim/prng.ts'
import { runScenario, type Scenario } from '../../src/sim/scenario.ts'

const base: Scenario = {
  name: 'test',
  description: 'small gossip network',
  nodes: 60,
  topology: 'random-regular',
  degree: 14,
  latencyMs: 20,
  bandwidth: 'unlimited',
  loss: 0,
  messages: 15,
  messageBytes: 2000,
  class: 'consensus',
  intervalMs: 100,
  warmupMs: 3000,
  drainMs: 3000,
  seed: 3,
}

describe('gossip routers in the simulator', () => {
  it('form meshes within [Dlo, Dhi] after a few heartbeats', () => {
    const sim = new Simulation(
      { seed: 1, graph: randomRegularGraph(40, 14, new Prng(1)), latency: uniformLatency(10) },
      (env) => new GossipRouter(env),
    )
    sim.observe((_i, core) => core.subscribe('t'))
    sim.start()
    sim.run({ until: 5000 })
    for (let i = 0; i < 40; i++) {
      const size = sim.core(i).getMeshPeers('t').length
      expect(size).toBeGreaterThanOrEqual(6)
      expect(size).toBeLessThanOrEqual(12)
    }
  })

  it('deliver every consensus message to every node, in both profiles', async () => {
    for (const strategy of [gossipStockStrategy, gossipOptimizedStrategy]) {
      const r = await runScenario(base, strategy)
      expect(r.publishErrors).toEqual([])
      expect(r.summary.messages).toBe(15)
      expect(r.summary.minDeliveryRatio).toBe(1)
    }
  })

  it('deliver every message through 30% frame loss', async () => {
    const r = await runScenario(
      { ...base, loss: 0.3, drainMs: 8000, degree: 10 },
      gossipOptimizedStrategy,
    )
    expect(r.summary.deliveryRatio).toBe(1)
  })

  it('with one-copy, deliver every message through 30% frame loss', async () => {
    // A lost first frame (Extensions) or hello is asked again on the heartbeat: every link
    // negotiates, and nothing is announced to a peer that would ignore it.
    const r = await runScenario(
      { ...base, loss: 0.3, drainMs: 8000, degree: 10 },
      gossipOneCopyStrategy,
    )
    expect(r.publishErrors).toEqual([])
    expect(r.summary.deliveryRatio).toBe(1)
  })

  it('send an ingress message exactly N-1 times when optimized, more in stock', async () => {
    const ingress: Scenario = {
      ...base,
      nodes: 20,
      topology: 'full-mesh',
      class: 'ingress',
      messages: 10,
    }
    const opt = await runScenario(ingress, gossipOptimizedStrategy)
    const stock = await runScenario(ingress, gossipStockStrategy)
    expect(opt.summary.deliveryRatio).toBe(1)
    expect(opt.summary.payloadBytesPerMessage).toBe(19 * 2000)
    expect(opt.summary.controlPerMessage['IHAVE ids'] ?? 0).toBe(0)
    expect(stock.summary.payloadBytesPerMessage).toBeGreaterThan(2 * 19 * 2000)
  })

  it('wait validationDelayMs at every hop, and relay less when duplicates arrive meanwhile', async () => {
    const run = (validationDelayMs: number) =>
      runScenario(
        base,
        gossipStrategy('stock', `validation ${validationDelayMs} ms`, {
          validationDelayMs,
          validationDelayMsPerKB: 0,
        }),
      )
    const instant = await run(0)
    const slow = await run(50)
    expect(slow.summary.deliveryRatio).toBe(1)
    expect(slow.summary.latencyMs.p50).toBeGreaterThan(instant.summary.latencyMs.p50 + 25)
    expect(slow.summary.duplicates.mean).toBeLessThan(instant.summary.duplicates.mean)
    expect(slow.summary.payloadBytesPerMessage).toBeLessThan(instant.summary.payloadBytesPerMessage)
  })

  it('IDONTWANT cuts duplicates of large messages under limited bandwidth', async () => {
    const large: Scenario = { ...base, messageBytes: 50_000, bandwidth: 50e6, messages: 8 }
    const stock = await runScenario(large, gossipStockStrategy)
    const opt = await runScenario(large, gossipOptimizedStrategy)
    expect(opt.summary.deliveryRatio).toBe(1)
    expect(opt.summary.controlPerMessage.IDONTWANT ?? 0).toBeGreaterThan(0)
    expect(opt.summary.duplicates.mean).toBeLessThan(stock.summary.duplicates.mean)
  })
})
