import { describe, expect, it } from 'vitest'
import type { FloodCore } from '../../src/flood/flood-core.ts'
import { floodNetwork } from '../../src/sim/flood-network.ts'
import { randomRegularGraph } from '../../src/sim/graph.ts'
import { DeliveryTracker } from '../../src/sim/metrics.ts'
import { uniformLatency } from '../../src/sim/placement.ts'
import { Prng } from '../../src/sim/prng.ts'

/** A tracker whose arrival listener throws at its `failAt`-th call. */
class FailingTracker extends DeliveryTracker<FloodCore> {
  calls = 0
  private readonly failAt: number
  constructor(sim: ConstructorParameters<typeof DeliveryTracker<FloodCore>>[0], failAt: number) {
    super(sim)
    this.failAt = failAt
  }
  protected override arrived(i: number, key: string, at: number): void {
    if (++this.calls === this.failAt) throw new Error('measurement bug')
    super.arrived(i, key, at)
  }
}

describe('delivery tracker', () => {
  it('refuses to summarise when one of its listeners threw (the core swallowed it)', () => {
    const net = floodNetwork({
      seed: 3,
      graph: randomRegularGraph(40, 4, new Prng(3)),
      latency: uniformLatency(5),
    })
    const failing = new FailingTracker(net.sim, 7)
    const id = net.publish(0, new Uint8Array(64))
    failing.published(
      id,
      0,
      0,
      Array.from({ length: 40 }, (_, i) => i),
    )
    net.sim.run()
    // The core went on: the plain tracker saw every delivery, the failing one all calls.
    expect(net.tracker.summary().deliveryRatio).toBe(1)
    expect(failing.calls).toBe(39)
    expect(() => failing.summary()).toThrow(/listener threw/)
  })
})
