import { describe, expect, it } from 'vitest'
import { floodStrategy } from '../../src/sim/flood-strategy.ts'
import { gossipStockStrategy } from '../../src/sim/gossip-strategy.ts'
import { runScenario, type Scenario, startScenario } from '../../src/sim/scenario.ts'

// A warm-up no timer or link latency lands on exactly, so that "before the first publish" is
// the same instant for the run and for the separate count below.
const scenario: Scenario = {
  name: 'bytes',
  description: '',
  nodes: 60,
  topology: 'provider-clustered',
  degree: 12,
  latencyMs: 0,
  bandwidth: 'placement',
  loss: 0,
  messages: 6,
  messageBytes: 256,
  class: 'consensus',
  intervalMs: 250,
  warmupMs: 2_345.678,
  drainMs: 2_000,
  seed: 5,
}

describe('a scenario counts the bytes after its warm-up apart', () => {
  it('leaves out exactly what the nodes sent before the first publish', async () => {
    const before = startScenario(scenario, gossipStockStrategy)
    before.sim.run({ until: scenario.warmupMs - 1e-6 })
    const warmupBytes = before.sim.traffic.bytesSent
    // Meshes form in the warm-up: subscriptions, GRAFTs and heartbeats cost bytes.
    expect(warmupBytes).toBeGreaterThan(0)

    const r = await runScenario(scenario, gossipStockStrategy)
    const total = r.summary.bytesPerMessage * r.summary.messages
    const after = r.bytesPerMessageAfterWarmup * r.summary.messages
    expect(r.summary.messages).toBe(scenario.messages)
    expect(after).toBeGreaterThan(0)
    expect(total - after).toBeCloseTo(warmupBytes, 6)
  })

  it('equals the whole run for a strategy that sends nothing until it publishes', async () => {
    const r = await runScenario(scenario, floodStrategy)
    expect(r.summary.bytesPerMessage).toBeGreaterThan(0)
    expect(r.bytesPerMessageAfterWarmup).toBe(r.summary.bytesPerMessage)
  })
})
