import { describe, expect, it } from 'vitest'
import { FloodCore } from '../../src/flood/flood-core.ts'
import { scheduleChurn, upThroughout } from '../../src/sim/faults.ts'
import { floodNetwork } from '../../src/sim/flood-network.ts'
import { graphFromEdges, randomRegularGraph } from '../../src/sim/graph.ts'
import { Simulation } from '../../src/sim/network.ts'
import { uniformLatency } from '../../src/sim/placement.ts'
import { Prng } from '../../src/sim/prng.ts'

function ringSim(n: number, options: { loss?: number; detect?: number } = {}) {
  const edges: number[] = []
  for (let i = 0; i < n; i++) edges.push(i, (i + 1) % n)
  return floodNetwork({
    seed: 5,
    graph: graphFromEdges(n, edges),
    latency: uniformLatency(10),
    loss: options.loss,
    disconnectDetectionMs: options.detect,
  })
}

describe('simulator faults', () => {
  it('a crashed node receives nothing, its timers stop, and a restart brings a fresh core back', () => {
    const { sim, tracker, publish } = ringSim(6)
    sim.crash(3)
    expect(sim.isUp(3)).toBe(false)
    const before = sim.core(3)
    const id = publish(0, new Uint8Array([1]))
    sim.run()
    expect(Number.isNaN(tracker.arrivalTime(id, 3))).toBe(true)
    // The ring minus node 3 is a line: everyone else is still reached.
    for (const i of [1, 2, 4, 5]) expect(tracker.arrivalTime(id, i)).toBeGreaterThan(0)
    let fired = false
    sim.restart(3)
    expect(sim.core(3)).not.toBe(before)
    sim.after(5, () => {
      fired = true
    })
    const id2 = publish(0, new Uint8Array([2]))
    sim.run()
    expect(fired).toBe(true)
    expect(tracker.arrivalTime(id2, 3)).toBeGreaterThan(0)
  })

  it('a partition drops frames between sides; healing it restores delivery', () => {
    const { sim, tracker, publish } = ringSim(8)
    sim.partition([0, 0, 0, 0, 1, 1, 1, 1])
    const id = publish(1, new Uint8Array([1]))
    sim.run()
    for (const i of [0, 2, 3, 4, 5, 6, 7]) {
      expect(Number.isNaN(tracker.arrivalTime(id, i))).toBe(i >= 4)
    }
    expect(sim.traffic.framesDropped).toBe(2)
    sim.partition(undefined)
    const id2 = publish(1, new Uint8Array([2]))
    sim.run()
    for (let i = 0; i < 8; i++) if (i !== 1) expect(tracker.arrivalTime(id2, i)).toBeGreaterThan(0)
  })

  it('link loss of 1 on one link and a cut link both reroute flooding around the ring', () => {
    const { sim, tracker, publish } = ringSim(6)
    sim.setLinkLoss(0, 1, 1)
    const id = publish(0, new Uint8Array([1]))
    sim.run()
    // Node 1 is reached the long way round: 5 hops of 10 ms.
    expect(tracker.arrivalTime(id, 1)).toBeCloseTo(50, 9)
    sim.cutLink(2, 3)
    const id2 = publish(0, new Uint8Array([2]))
    sim.run()
    expect(Number.isNaN(tracker.arrivalTime(id2, 1))).toBe(true)
    expect(Number.isNaN(tracker.arrivalTime(id2, 2))).toBe(true)
    sim.healLink(2, 3)
    sim.setLinkLoss(0, 1, 0)
    const t3 = sim.now()
    const id3 = publish(0, new Uint8Array([3]))
    sim.run()
    // The second message reached 3 of its 5 recipients (nodes 5, 4, 3).
    expect(tracker.summary().minDeliveryRatio).toBe(0.6)
    expect(tracker.arrivalTime(id3, 1) - t3).toBeCloseTo(10, 9)
  })

  it('churn crashes and restarts nodes deterministically', () => {
    const run = () => {
      const graph = randomRegularGraph(100, 6, new Prng(1))
      const sim = new Simulation(
        { seed: 9, graph, latency: uniformLatency(5) },
        (env) => new FloodCore(env),
      )
      sim.start()
      const log = scheduleChurn(sim, new Prng(2), {
        nodes: Array.from({ length: 100 }, (_, i) => i),
        meanUptimeMs: 2_000,
        meanDowntimeMs: 500,
        from: 0,
        until: 10_000,
      })
      let downAt5s = 0
      let plannedDownAt5s = 0
      sim.at(5_000, () => {
        for (let i = 0; i < 100; i++) if (!sim.isUp(i)) downAt5s++
      })
      for (let i = 0; i < 100; i++) if (!upThroughout(log, i, 5_000, 5_000)) plannedDownAt5s++
      sim.run()
      return {
        ...log,
        downAt5s,
        plannedDownAt5s,
        allUp: Array.from({ length: 100 }, (_, i) => sim.isUp(i)).every(Boolean),
      }
    }
    const a = run()
    expect(a).toEqual(run())
    // ~5 cycles per node over 10 s; about 20% of nodes down at any time.
    expect(a.crashes).toBeGreaterThan(300)
    expect(a.restarts).toBe(a.crashes)
    expect(a.plannedDownAt5s).toBe(a.downAt5s)
    expect(a.downAt5s).toBeGreaterThan(5)
    expect(a.downAt5s).toBeLessThan(40)
    expect(a.allUp).toBe(true)
  })
})
