import { describe, expect, it } from 'vitest'
import { messageIdKey } from '../../src/common/message-id.ts'
import { encodeRpMessage, type RpMessage } from '../../src/rp/codec.ts'
import type { MulticastLostEvent } from '../../src/rp/events.ts'
import type { RpMember } from '../../src/rp/member.ts'
import { DatagramType } from '../../src/rp/multicast/datagram-codec.ts'
import type { ReplicationPoint } from '../../src/rp/replication-point.ts'
import { type SimCore, Simulation } from '../../src/sim/network.ts'
import { Prng } from '../../src/sim/prng.ts'
import { buildRpNetwork, createRpCore, type RpSimOptions } from '../../src/sim/rp-strategy.ts'
import type { Scenario } from '../../src/sim/scenario.ts'
import { rpTestScenario } from './fixtures/sim-scenario.ts'

const TOPIC = 'blocks'

const scenario = (over: Partial<Scenario> = {}) =>
  rpTestScenario({ nodes: 200, topology: 'provider-clustered', ...over })

/** A simulated RP network with LAN multicast where every member subscribes to TOPIC. */
function setup(opts: RpSimOptions, disconnectDetectionMs = 0, sc = scenario()) {
  const net = buildRpNetwork(sc, new Prng(sc.seed), { multicast: true, ...opts })
  const sim = new Simulation<SimCore>(
    {
      seed: sc.seed,
      graph: net.graph,
      latency: net.latency,
      uploadBps: net.uploadBps,
      disconnectDetectionMs,
    },
    (env, i) => createRpCore(env, i, net, { multicast: true, ...opts }),
  )
  const received = Array.from({ length: net.graph.n }, () => new Map<string, number>())
  const lost: MulticastLostEvent[] = []
  sim.observe((i, core) => {
    if (i < net.firstRp) core.subscribe(TOPIC)
    core.on('artifact', (a) => {
      const k = messageIdKey(a.id)
      received[i].set(k, (received[i].get(k) ?? 0) + 1)
    })
    ;(core as RpMember).on('multicast-lost', (e) => lost.push(e))
  })
  sim.start()
  return { net, sim, received, lost }
}

type Sim = ReturnType<typeof setup>

/** Publishes `count` messages every 20 ms from 3 s on, from `origins` in turn. */
function stream(t: Sim, origins: number[], count: number) {
  const keys: Array<{ key: string; origin: number }> = []
  for (let k = 0; k < count; k++) {
    const origin = origins[k % origins.length]
    t.sim.at(3_000 + k * 20, () => {
      void t.sim
        .core(origin)
        .publish(TOPIC, payload(k))
        .then((r) => keys.push({ key: messageIdKey(r.id), origin }))
    })
  }
  return keys
}

/** Every member but the publisher got every message exactly once. */
function expectExactlyOnce(t: Sim, keys: Array<{ key: string; origin: number }>, count: number) {
  expect(keys.length).toBe(count)
  for (let i = 0; i < t.net.firstRp; i++) {
    for (const { key, origin } of keys) {
      if (i !== origin) expect(t.received[i].get(key) ?? 0, `member ${i}`).toBe(1)
    }
  }
}

function payload(n: number): Uint8Array {
  const b = new Uint8Array(256)
  new DataView(b.buffer).setUint32(0, n)
  return b
}

describe('RP multicast over the session (simulated LAN)', () => {
  it('serves multicast and unicast members at once, exactly once, at 5% datagram loss', async () => {
    const noLan = 3
    const t = setup({ lanLoss: 0.05, withoutLan: (m) => m === noLan })
    const { net, sim, lost } = t
    // Probe copies lost per member: a member whose every probe was lost falls back to unicast.
    const probesLost = new Map<number, number>()
    net.lan!.onDrop((_from, to, d) => {
      if ((d[1] & 0x0f) === DatagramType.probe) probesLost.set(to, (probesLost.get(to) ?? 0) + 1)
    })
    sim.run({ until: 3_000 })
    const keys = stream(
      t,
      Array.from({ length: net.firstRp }, (_, i) => i),
      40,
    )
    sim.run({ until: 9_000 })
    await Promise.resolve()
    expectExactlyOnce(t, keys, 40)
    expect(lost).toEqual([])
    const m3 = sim.core(noLan) as RpMember
    expect(m3.multicastState(TOPIC)).toBe('unknown')
    let reached = 0
    for (let i = 0; i < net.firstRp; i++) {
      const state = (sim.core(i) as RpMember).multicastState(TOPIC)
      if (state === 'multicast') reached++
      else if (i !== noLan) {
        expect(state, `member ${i}`).toBe('unicast')
        expect(probesLost.get(i), `member ${i}: its 3 probes were lost`).toBe(3)
      }
    }
    expect(reached).toBeGreaterThanOrEqual(net.firstRp - 3)
    for (let r = net.firstRp; r < net.graph.n; r++) {
      const s = (sim.core(r) as ReplicationPoint).lanStats()!
      if (s.multicastMessages === 0) continue
      // One datagram per message (256 B fit in one), sent once whatever the member count.
      expect(s.dataDatagrams).toBe(40)
      expect(s.multicastMessages).toBe(40)
    }
    // The 5% lost copies were NACKed over the sessions and repaired by unicast datagrams.
    let repairs = 0
    let nacks = 0
    for (let r = net.firstRp; r < net.graph.n; r++) {
      repairs += (sim.core(r) as ReplicationPoint).lanStats()!.repairDatagrams
    }
    for (let i = 0; i < net.firstRp; i++)
      nacks += (sim.core(i) as RpMember).multicastStats()?.nacks ?? 0
    expect(net.lan!.counters.copiesDropped).toBeGreaterThan(0)
    expect(nacks).toBeGreaterThan(0)
    expect(repairs).toBeGreaterThanOrEqual(net.lan!.counters.copiesDropped * 0.5)
  })

  it('loses nothing when an RP crashes mid-stream (members fail over to unicast or another LAN)', async () => {
    const t = setup({ lanLoss: 0.02 }, 0)
    const { net, sim } = t
    sim.run({ until: 3_000 })
    // The RP with the most members dies 400 ms into the stream.
    let victim = net.firstRp
    const members = (r: number) => (sim.core(r) as ReplicationPoint).view().members
    for (let r = net.firstRp; r < net.graph.n; r++) if (members(r) > members(victim)) victim = r
    const publishers = Array.from({ length: net.firstRp }, (_, i) => i).filter(
      (i) => (sim.core(i) as RpMember).rp !== sim.nameOf(victim),
    )
    const keys = stream(t, publishers, 40)
    sim.at(3_400, () => sim.crash(victim))
    sim.run({ until: 15_000 })
    await Promise.resolve()
    expectExactlyOnce(t, keys, 40)
    // Whatever the multicast receivers gave up on was fetched over the sessions.
    for (const e of t.lost) expect(e.topic).toBe(TOPIC)
  })

  it('rotates the group key when a member leaves; the others keep receiving', async () => {
    const { net, sim, received } = setup({ rp: { helloIntervalMs: 200 } })
    sim.run({ until: 3_000 })
    const leaver = sim.core(1) as RpMember
    const rpIndex = sim.indexOf(leaver.rp!)
    const rp = sim.core(rpIndex) as ReplicationPoint
    const before = rp.lanStats()!.keyRotations
    leaver.unsubscribe(TOPIC)
    sim.run({ until: 3_500 })
    expect(rp.lanStats()!.keyRotations).toBe(before + 1)
    const sameRp = Array.from({ length: net.firstRp }, (_, i) => i).filter(
      (i) => i !== 1 && (sim.core(i) as RpMember).rp === leaver.rp,
    )
    expect(sameRp.length).toBeGreaterThan(0)
    // The others re-joined under the new key and probed again: multicast still reaches them.
    for (const i of sameRp)
      expect((sim.core(i) as RpMember).multicastState(TOPIC)).toBe('multicast')
    let key = ''
    void sim
      .core(sameRp[0])
      .publish(TOPIC, payload(1))
      .then((r) => {
        key = messageIdKey(r.id)
      })
    sim.run({ until: 5_000 })
    await Promise.resolve()
    for (const i of sameRp.slice(1)) expect(received[i].get(key)).toBe(1)
    expect(rp.lanStats()!.multicastMessages).toBeGreaterThan(0)
    expect(received[1].get(key)).toBeUndefined()
  })
})

describe('flood of multicast frames at an RP', () => {
  /** A network at rest with messages in the RP's repair buffer; member 0, its RP, a frame. */
  async function rested() {
    const t = setup({}, 0, scenario({ nodes: 100 }))
    t.sim.run({ until: 3_000 })
    for (let k = 0; k < 20; k++) void t.sim.core(5).publish(TOPIC, payload(k))
    t.sim.run({ until: 3_300 })
    await Promise.resolve()
    const m = t.sim.core(0) as RpMember
    const rpIndex = t.sim.indexOf(m.rp!)
    return { ...t, member: t.sim.nameOf(0), rpIndex, rp: t.sim.core(rpIndex) as ReplicationPoint }
  }

  const group = {
    topic: TOPIC,
    group: '232.1.1.1',
    port: 50_000,
    keyId: 1,
    key: new Uint8Array(32),
    nextSeq: 1,
    source: 'lan-1',
    maxDatagramBytes: 1472,
    maxFragments: 64,
  }
  const entries = Array.from({ length: 64 }, (_, i) => ({ seq: 1 + (i % 20), fragments: [] }))
  const kinds: Array<{ frame: RpMessage; reason: string; maxSent: number }> = [
    // Each NACK asks for 64 repairs: the budget (4096 per interval) caps what one member gets.
    { frame: { type: 'mcast-nack', topic: TOPIC, entries }, reason: 'repair-flood', maxSent: 4096 },
    // Each probe is multicast to the whole LAN: 8 per member per interval.
    {
      frame: { type: 'mcast-probe', topic: TOPIC, nonce: new Uint8Array(8) },
      reason: 'probe-flood',
      maxSent: 8,
    },
    {
      frame: { type: 'mcast-probe-result', topic: TOPIC, reaches: false },
      reason: 'repair-flood',
      maxSent: 0,
    },
    // RP → member kinds are refused from a member, each one counted.
    { frame: { type: 'mcast-group', group }, reason: 'unexpected-mcast-group', maxSent: 0 },
    {
      frame: { type: 'mcast-gone', topic: TOPIC, seqs: [1, 2, 3] },
      reason: 'unexpected-mcast-gone',
      maxSent: 0,
    },
    {
      frame: { type: 'mcast-datagram', datagram: new Uint8Array(1472) },
      reason: 'unexpected-mcast-datagram',
      maxSent: 0,
    },
  ]

  for (const { frame, reason, maxSent } of kinds) {
    it(`${frame.type}: 20,000 frames from one member cost the RP a bounded answer, counted and penalised`, async () => {
      const { sim, net, member, rpIndex, rp } = await rested()
      const bytes = encodeRpMessage(frame)
      const sentBefore = rp.stats().sent.frames
      const lanBefore = net.lan!.transmissionsBy.get(rpIndex) ?? 0
      const penaltiesBefore = rp.stats().invalidByPeer[member] ?? 0
      const n = 20_000
      const t0 = performance.now()
      for (let i = 0; i < n; i++) rp.receive(member, bytes)
      const usPerFrame = ((performance.now() - t0) * 1000) / n
      // Within one virtual instant: every frame landed in the same budget interval.
      sim.run({ until: sim.now() + 50 })
      const sent = rp.stats().sent.frames - sentBefore
      const lan = (net.lan!.transmissionsBy.get(rpIndex) ?? 0) - lanBefore
      console.log(
        `${frame.type}: ${bytes.length} B frames, ${usPerFrame.toFixed(2)} µs each at the RP, ` +
          `${sent} frames and ${lan} LAN datagrams sent in answer to ${n}`,
      )
      expect(rp.stats().invalid[reason]).toBeGreaterThanOrEqual(1)
      expect(rp.stats().invalidByPeer[member] ?? 0).toBeGreaterThan(penaltiesBefore)
      // Budgeted kinds are penalised once per interval; refused kinds every time.
      if (reason.startsWith('unexpected')) expect(rp.stats().invalid[reason]).toBe(n)
      // Heartbeat acks aside, the answer is bounded by the budget, not by the flood.
      const heartbeats = 50
      if (frame.type === 'mcast-probe') expect(lan).toBeLessThanOrEqual(maxSent + 2)
      else expect(sent).toBeLessThanOrEqual(maxSent + heartbeats)
    })
  }

  it('refuses multicast frames from a peer not registered for the topic', async () => {
    const { rp } = await rested()
    rp.receive(
      'stranger',
      encodeRpMessage({ type: 'mcast-nack', topic: TOPIC, entries: [{ seq: 1, fragments: [] }] }),
    )
    rp.receive(
      'stranger',
      encodeRpMessage({ type: 'mcast-probe-result', topic: 'x', reaches: true }),
    )
    expect(rp.stats().invalid['not-registered']).toBe(2)
    expect(rp.stats().invalidByPeer.stranger).toBe(2)
  })
})
