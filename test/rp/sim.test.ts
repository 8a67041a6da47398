import { describe, expect, it } from 'vitest'
import { type MessageId, messageIdKey } from '../../src/common/message-id.ts'
import { encodeRpMessage } from '../../src/rp/codec.ts'
import type { QuorumEvent } from '../../src/rp/events.ts'
import type { RpMember } from '../../src/rp/member.ts'
import type { ReplicationPoint } from '../../src/rp/replication-point.ts'
import { type SimCore, Simulation } from '../../src/sim/network.ts'
import { Prng } from '../../src/sim/prng.ts'
import {
  buildRpNetwork,
  createRpCore,
  type RpNetwork,
  type RpSimOptions,
  rpSimStrategy,
} from '../../src/sim/rp-strategy.ts'
import { runScenario, type Scenario } from '../../src/sim/scenario.ts'
import { rpTestScenario } from './fixtures/sim-scenario.ts'

const TOPIC = 'blocks'

const scenario = rpTestScenario

/** A simulated RP network where every member subscribes to TOPIC and counts deliveries. */
function setup(sc: Scenario, opts: RpSimOptions = {}, disconnectDetectionMs = 0, loss = 0) {
  const net = buildRpNetwork(sc, new Prng(sc.seed), opts)
  const sim = new Simulation(
    {
      seed: sc.seed,
      graph: net.graph,
      latency: net.latency,
      uploadBps: net.uploadBps,
      disconnectDetectionMs,
      loss,
    },
    (env, i) => createRpCore(env, i, net, opts),
  )
  // received[i]: message key → copies delivered to the application (must end at 1).
  const received = Array.from({ length: net.graph.n }, () => new Map<string, number>())
  const quorums: QuorumEvent[] = []
  sim.observe((i, core) => {
    if (i < net.firstRp) core.subscribe(TOPIC)
    core.on('artifact', (a) => {
      const k = messageIdKey(a.id)
      received[i].set(k, (received[i].get(k) ?? 0) + 1)
    })
    ;(core as RpMember).on('quorum', (q) => quorums.push(q))
  })
  sim.start()
  return { net, sim, received, quorums }
}

const member = (sim: Simulation<SimCore>, i: number) => sim.core(i) as RpMember
const rp = (sim: Simulation<SimCore>, i: number) => sim.core(i) as ReplicationPoint

function payload(n: number): Uint8Array {
  const b = new Uint8Array(256)
  new DataView(b.buffer).setUint32(0, n)
  return b
}

/** Publishes from `origin` at virtual time `at`; records the id and the origin. */
function publishAt(
  sim: Simulation<SimCore>,
  at: number,
  origin: number,
  n: number,
  out: Array<{ id: MessageId; origin: number }>,
  quorum = false,
) {
  sim.at(at, () => {
    member(sim, origin)
      .publish(TOPIC, payload(n), { quorum })
      .then((r) => out.push({ id: r.id, origin }))
  })
}

/** Every live member got every message (but its own) exactly once. */
function expectAllDelivered(
  sim: Simulation<SimCore>,
  net: RpNetwork,
  received: Map<string, number>[],
  published: Array<{ id: MessageId; origin: number }>,
) {
  let missing = 0
  let duplicates = 0
  for (let i = 0; i < net.firstRp; i++) {
    if (!sim.isUp(i)) continue
    for (const p of published) {
      if (p.origin === i) continue
      const copies = received[i].get(messageIdKey(p.id)) ?? 0
      if (copies === 0) missing++
      if (copies > 1) duplicates++
    }
  }
  expect({ missing, duplicates }).toEqual({ missing: 0, duplicates: 0 })
}

describe('replication points in the simulator', () => {
  it('registers every member, agrees on one tree, and delivers each message once', async () => {
    const sc = scenario()
    const { net, sim, received } = setup(sc)
    sim.run({ until: 3_000 })
    const rps = Array.from({ length: net.graph.n - net.firstRp }, (_, k) => net.firstRp + k)
    expect(rps.length).toBe(3)
    for (const r of rps) {
      const v = rp(sim, r).view()
      expect(v.totalCounts[TOPIC]).toBe(60)
      expect(v.reachable.length).toBe(3)
    }
    expect(rps.reduce((a, r) => a + rp(sim, r).view().localCounts[TOPIC], 0)).toBe(60)
    // The tree: 2 edges over 3 RPs, seen the same way from each end.
    const edges = new Set<string>()
    for (const r of rps) {
      for (const t of rp(sim, r).view().treeNeighbours) {
        edges.add([sim.nameOf(r), t].sort().join('-'))
      }
    }
    expect(edges.size).toBe(2)
    const published: Array<{ id: MessageId; origin: number }> = []
    for (let m = 0; m < 20; m++) publishAt(sim, 3_000 + m * 50, (m * 7) % 60, m, published)
    sim.run({ until: 6_000 })
    await Promise.resolve()
    expect(published.length).toBe(20)
    expectAllDelivered(sim, net, received, published)
    for (let i = 0; i < 60; i++) expect(member(sim, i).unacknowledged).toBe(0)
  })

  it('tells the publisher when more than half of the members hold a message', async () => {
    const { sim, quorums } = setup(scenario())
    sim.run({ until: 3_000 })
    const published: Array<{ id: MessageId; origin: number }> = []
    publishAt(sim, 3_000, 5, 1, published, true)
    sim.run({ until: 4_000 })
    await Promise.resolve()
    expect(quorums.length).toBe(1)
    expect(messageIdKey(quorums[0].id)).toBe(messageIdKey(published[0].id))
    expect(quorums[0].members).toBe(60)
    expect(quorums[0].count).toBeGreaterThan(30)
    expect(quorums[0].topic).toBe(TOPIC)
  })

  it('loses nothing when an RP crashes mid-stream, silently or with a reset, on either tree', async () => {
    for (const [detect, tree] of [
      [0, 'shared'],
      [Number.POSITIVE_INFINITY, 'shared'],
      [Number.POSITIVE_INFINITY, 'source'],
    ] as const) {
      const sc = scenario({ nodes: 300, topology: 'provider-clustered', seed: 11 })
      const opts: RpSimOptions = {
        rp: { helloIntervalMs: 200, tree },
        member: { heartbeatIntervalMs: 200 },
      }
      const { net, sim, received } = setup(sc, opts, detect)
      sim.run({ until: 2_000 })
      // Crash the RP with the most members, while messages flow.
      let victim = net.firstRp
      for (let r = net.firstRp; r < net.graph.n; r++) {
        if (rp(sim, r).view().members > rp(sim, victim).view().members) victim = r
      }
      const orphans = rp(sim, victim).view().members
      expect(orphans).toBeGreaterThan(5)
      const published: Array<{ id: MessageId; origin: number }> = []
      const prng = new Prng(3)
      for (let m = 0; m < 120; m++) publishAt(sim, 2_000 + m * 25, prng.int(300), m, published)
      sim.at(3_000, () => sim.crash(victim))
      sim.run({ until: 10_000 })
      await Promise.resolve()
      expect(published.length).toBe(120)
      expectAllDelivered(sim, net, received, published)
      // Every orphan re-registered elsewhere: the counts still add up to every member.
      let total = 0
      for (let r = net.firstRp; r < net.graph.n; r++) {
        if (sim.isUp(r)) total += rp(sim, r).view().localCounts[TOPIC] ?? 0
      }
      expect(total).toBe(300)
      for (let i = 0; i < 300; i++) expect(member(sim, i).unacknowledged).toBe(0)
      let nacks = 0
      for (let i = 0; i < net.graph.n; i++) {
        if (sim.isUp(i)) nacks += sim.core(i).stats().control.nack?.sent ?? 0
      }
      // A silent crash leaves a gap of robustness × interval: repair must have filled it.
      if (detect === Number.POSITIVE_INFINITY) expect(nacks).toBeGreaterThan(0)
    }
  }, 120_000) // virtual time, but CPU-bound: a backstop that a busy machine does not reach

  it('repairs frames lost on live links (2% loss on every link)', async () => {
    const sc = scenario({ nodes: 200, topology: 'provider-clustered', seed: 3 })
    const { net, sim, received } = setup(sc, {}, 0, 0.02)
    sim.run({ until: 4_000 })
    const published: Array<{ id: MessageId; origin: number }> = []
    for (let m = 0; m < 40; m++) publishAt(sim, 4_000 + m * 50, (m * 13) % 200, m, published)
    sim.run({ until: 20_000 })
    await Promise.resolve()
    expect(published.length).toBe(40)
    expectAllDelivered(sim, net, received, published)
    // The repair really ran: lost frames were detected and asked for again.
    let asked = 0
    for (let i = 0; i < net.graph.n; i++) asked += sim.core(i).stats().control.nack?.sent ?? 0
    expect(asked).toBeGreaterThan(0)
  })

  it("hosts an RP's own application like a member", async () => {
    const { net, sim, received } = setup(scenario())
    const r = net.firstRp
    rp(sim, r).subscribe(TOPIC)
    sim.run({ until: 3_000 })
    expect(rp(sim, r + 1).view().totalCounts[TOPIC]).toBe(61)
    const published: Array<{ id: MessageId; origin: number }> = []
    publishAt(sim, 3_000, 10, 1, published)
    sim.at(3_100, () => {
      rp(sim, r)
        .publish(TOPIC, payload(2))
        .then((x) => published.push({ id: x.id, origin: r }))
    })
    sim.run({ until: 5_000 })
    await Promise.resolve()
    expect(published.length).toBe(2)
    expect(received[r].get(messageIdKey(published[0].id))).toBe(1)
    expectAllDelivered(sim, net, received, published)
  })

  it('takes a restarted RP back into the tree', async () => {
    const fast: RpSimOptions = {
      rp: { helloIntervalMs: 200 },
      member: { heartbeatIntervalMs: 200 },
    }
    const { net, sim, received } = setup(scenario(), fast)
    const rps = [0, 1, 2].map((k) => net.firstRp + k)
    sim.run({ until: 1_500 })
    sim.crash(rps[0])
    sim.run({ until: 3_000 })
    expect(rp(sim, rps[1]).view().reachable.length).toBe(2)
    expect(rp(sim, rps[1]).view().totalCounts[TOPIC]).toBe(60)
    sim.restart(rps[0])
    sim.run({ until: 5_000 })
    for (const r of rps) {
      expect(rp(sim, r).view().reachable.length).toBe(3)
      expect(rp(sim, r).view().totalCounts[TOPIC]).toBe(60)
    }
    const published: Array<{ id: MessageId; origin: number }> = []
    for (let m = 0; m < 10; m++) publishAt(sim, 5_000 + m * 20, m * 5, m, published)
    sim.run({ until: 6_000 })
    await Promise.resolve()
    expectAllDelivered(sim, net, received, published)
  })

  it('refuses bad input and caps repair work per peer', async () => {
    const { net, sim } = setup(scenario())
    sim.run({ until: 3_000 })
    const published: Array<{ id: MessageId; origin: number }> = []
    publishAt(sim, 3_000, 0, 1, published)
    sim.run({ until: 3_500 })
    await Promise.resolve()
    const r = rp(sim, net.firstRp)
    const member0 = sim.nameOf(0)
    // Garbage, and a backbone frame from a member, are counted against the sender.
    r.receive(member0, new Uint8Array([0xff, 0xff, 0xff]))
    r.receive(member0, encodeRpMessage({ type: 'digest', ids: [published[0].id] }))
    // A publish whose id does not match its content could shadow a real message.
    r.receive(
      member0,
      encodeRpMessage({
        type: 'publish',
        id: published[0].id,
        topic: TOPIC,
        class: 'consensus',
        data: payload(99),
        quorum: false,
        surplus: 0,
        signature: new Uint8Array(0),
      }),
    )
    expect(r.stats().invalid['bad-message-id']).toBe(1)
    expect(r.stats().invalidByPeer[member0]).toBe(3)
    // A NACK is small and its answer large: a flood of them is cut at the budget.
    const before = r.stats().sent.frames
    const nack = encodeRpMessage({
      type: 'nack',
      ids: Array.from({ length: 4000 }, () => published[0].id),
      recent: 0,
      upto: 0,
    })
    r.receive(member0, nack)
    r.receive(member0, nack)
    expect(r.stats().invalid['repair-flood']).toBe(1)
    expect(r.stats().sent.frames - before).toBeLessThanOrEqual(4096)
  })

  it('changes the member counts as members leave, crash and come back', () => {
    const sc = scenario({ seed: 5 })
    const { net, sim } = setup(
      sc,
      { rp: { helloIntervalMs: 100 }, member: { heartbeatIntervalMs: 100 } },
      Number.POSITIVE_INFINITY,
    )
    const count = () => rp(sim, net.firstRp).view().totalCounts[TOPIC] ?? 0
    sim.run({ until: 1_000 })
    expect(count()).toBe(60)
    member(sim, 0).unsubscribe(TOPIC)
    sim.run({ until: 1_200 })
    expect(count()).toBe(59)
    // A silent crash: the RP expires the member after robustness × interval.
    for (const i of [1, 2, 3]) sim.crash(i)
    sim.run({ until: 1_250 })
    expect(count()).toBe(59)
    sim.run({ until: 2_000 })
    expect(count()).toBe(56)
    for (const i of [1, 2, 3]) sim.restart(i)
    sim.run({ until: 2_500 })
    expect(count()).toBe(59)
  })

  it('runs as the "rp" strategy of the scenario runner with full delivery', async () => {
    const sc = scenario({ nodes: 200, topology: 'provider-clustered', messages: 10 })
    const result = await runScenario(sc, rpSimStrategy())
    expect(result.publishErrors).toEqual([])
    expect(result.summary.messages).toBe(10)
    expect(result.summary.deliveryRatio).toBe(1)
    expect(result.summary.duplicates.max).toBe(0)
  })
})
