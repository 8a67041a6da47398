import { describe, expect, it } from 'vitest'
import { MESHSUB_1_2 } from '../../src/gossip/protocol-ids.ts'
import { GossipRouter } from '../../src/gossip/router.ts'
import { randomRegularGraph } from '../../src/sim/graph.ts'
import { Simulation } from '../../src/sim/network.ts'
import { uniformLatency } from '../../src/sim/placement.ts'
import { Prng } from '../../src/sim/prng.ts'
import { frame, ManualEnv, subscribeFrame } from './harness.ts'

const T = 'mesh-degree'

/**
 * `n` optimized routers on a random `degree`-regular graph, all joining T at once. Node i
 * dialled every neighbour j > i, so the low-numbered nodes dialled most of their peers.
 */
function network(n: number, degree: number, seed: number) {
  const sim = new Simulation(
    { seed, graph: randomRegularGraph(n, degree, new Prng(seed)), latency: uniformLatency(20) },
    (env) => new GossipRouter(env),
  )
  sim.observe((_i, core) => core.subscribe(T))
  sim.start()
  const sizes = () => Array.from({ length: n }, (_, i) => sim.core(i).getMeshPeers(T).length)
  const sent = (kind: string) =>
    Array.from({ length: n }, (_, i) => sim.core(i).stats().control[kind]?.sent ?? 0)
  return { sim, sizes, sent }
}

describe('mesh degree of optimized routers joining together', () => {
  it('stays within [D_lo, D + D_out], with no GRAFT cascade, where some nodes dialled most peers', () => {
    const { D, Dlo, Dout } = new GossipRouter(new ManualEnv()).params
    for (const seed of [1, 2]) {
      const n = 100
      const { sim, sizes, sent } = network(n, 20, seed)
      sim.run({ until: 5000 })
      expect(Math.min(...sizes())).toBeGreaterThanOrEqual(Dlo)
      sim.run({ until: 30_000 })
      const end = sizes()
      expect(Math.min(...end)).toBeGreaterThanOrEqual(Dlo)
      // Beyond D only through the outbound quota (the old rule took every dialled peer's GRAFT).
      expect(Math.max(...end)).toBeLessThanOrEqual(D + Dout)
      // Each node grafts fewer peers than one mesh's worth: refusals did not cascade.
      const grafts = sent('GRAFT').reduce((a, b) => a + b, 0)
      expect(grafts / n).toBeLessThan(D)
      const prunes = sent('PRUNE').reduce((a, b) => a + b, 0)
      expect(prunes).toBeLessThan(n)
    }
  })
})

describe('GRAFT from a peer we dialled, with the mesh full', () => {
  it('is accepted only while fewer than D_out dialled peers are in the mesh', () => {
    const env = new ManualEnv()
    const router = new GossipRouter(env, { gradualGraft: false })
    const { D, Dout } = router.params
    router.start()
    // D inbound peers fill the mesh at subscribe; then dialled peers ask to join.
    const inbound = Array.from({ length: D }, (_, i) => `in${i}`)
    const dialled = Array.from({ length: Dout + 2 }, (_, i) => `out${i}`)
    for (const p of inbound) {
      router.peerConnected(p, { protocol: MESHSUB_1_2, outbound: false })
      router.receive(p, subscribeFrame(T))
    }
    router.subscribe(T)
    expect(router.getMeshPeers(T)).toHaveLength(D)
    for (const p of dialled) {
      router.peerConnected(p, { protocol: MESHSUB_1_2, outbound: true })
      router.receive(p, subscribeFrame(T))
    }
    env.take()
    for (const p of dialled) router.receive(p, frame({ control: { graft: [{ topicID: T }] } }))
    const mesh = router.getMeshPeers(T)
    expect(mesh).toHaveLength(D + Dout)
    expect(mesh.filter((p) => p.startsWith('out'))).toEqual(dialled.slice(0, Dout))
    // The two beyond the quota were refused; an inbound peer's GRAFT also is.
    router.peerConnected('late', { protocol: MESHSUB_1_2, outbound: false })
    router.receive('late', subscribeFrame(T))
    router.receive('late', frame({ control: { graft: [{ topicID: T }] } }))
    expect(router.getMeshPeers(T)).toHaveLength(D + Dout)
  })
})
