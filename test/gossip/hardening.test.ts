import { describe, expect, it } from 'vitest'
import { DecodeError } from '../../src/common/errors.ts'
import { contentMessageId } from '../../src/common/message-id.ts'
import { DEFAULT_PEER_BUDGETS } from '../../src/gossip/peer-budget.ts'
import { MESHSUB_1_2 } from '../../src/gossip/protocol-ids.ts'
import { GossipRouter, type GossipRouterOptions } from '../../src/gossip/router.ts'
import { DEFAULT_RPC_LIMITS, decodeRpc, RpcLimitError } from '../../src/gossip/rpc-codec.ts'
import { fullMeshGraph } from '../../src/sim/graph.ts'
import { Simulation } from '../../src/sim/network.ts'
import { uniformLatency } from '../../src/sim/placement.ts'
import {
  emptyControlFieldsFrame,
  emptyIDontWantEntriesFrame,
  emptyIWantEntriesFrame,
  gossipAttacks,
} from '../support/gossip-attacks.ts'
import { frame, ManualEnv, subscribeFrame } from './harness.ts'

const T = 'blocks'

/**
 * Frames each sans-IO attack is cut off within: one repeated message is one unit of a
 * 20-unit budget, so its flood takes 41 frames.
 */
const FRAMES_TO_CUT_OFF: Record<string, number> = {
  'empty IWANT entries (4 MiB)': 1,
  'empty IDONTWANT entries (4 MiB)': 1,
  'empty control fields (4 MiB)': 1,
  'IDONTWANT 5,000 ids': 2,
  'IDONTWANT 1,000 ids': 2,
  'IDONTWANT 512 ids': 9,
  'IWANT random ids': 1,
  'IWANT a real id repeated': 2,
  'subscription churn 5,000': 2,
  'IHAVE 5,000 random ids': 4,
  'same message replayed': 41,
}
const HONEST = ['p0', 'p1', 'p2']
const X = 'attacker'

function victim(options: GossipRouterOptions = {}) {
  const env = new ManualEnv()
  const router = new GossipRouter(env, { signaturePolicy: 'StrictNoSign', ...options })
  router.start()
  for (const p of [...HONEST, X]) router.peerConnected(p, { protocol: MESHSUB_1_2 })
  for (const p of HONEST) router.receive(p, subscribeFrame(T))
  router.subscribe(T)
  env.take()
  let delivered = 0
  router.on('artifact', (a) => {
    if (a.from === 'p0') delivered++
  })
  return { env, router, delivered: () => delivered }
}

describe('the gossip decoder under hostile frames', () => {
  it('stops at the entry limit, whatever the frame holds', () => {
    const cases = [
      [emptyIWantEntriesFrame(), 'maxIWantEntries'],
      [emptyIDontWantEntriesFrame(), 'maxIDontWantEntries'],
      [emptyControlFieldsFrame(), 'maxControlMessages'],
    ] as const
    for (const [bytes, limit] of cases) {
      // About 2 M entries in 4 MiB: only a limit's worth of them may be read.
      expect(bytes.length).toBeGreaterThan(4_000_000)
      let error: unknown
      try {
        decodeRpc(bytes)
      } catch (err) {
        error = err
      }
      expect(error).toBeInstanceOf(RpcLimitError)
      const e = error as RpcLimitError
      expect(e.limit).toBe(limit)
      expect(e.fieldsRead).toBeLessThanOrEqual(DEFAULT_RPC_LIMITS[limit] + 2)
    }
  })

  it("holds IDONTWANT to stock's 512 ids a frame, and IWANT and IDONTWANT to 64 entries", () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => Uint8Array.of(i >> 8, i))
    const entries = (n: number) => Array.from({ length: n }, (_, i) => ({ messageIDs: ids(i % 2) }))
    const limitOf = (bytes: Uint8Array) => {
      try {
        decodeRpc(bytes)
      } catch (err) {
        return (err as RpcLimitError).limit
      }
      return undefined
    }
    expect(limitOf(frame({ control: { idontwant: [{ messageIDs: ids(512) }] } }))).toBeUndefined()
    expect(limitOf(frame({ control: { idontwant: [{ messageIDs: ids(513) }] } }))).toBe(
      'maxIDontWantIds',
    )
    expect(limitOf(frame({ control: { iwant: entries(64), idontwant: entries(64) } }))).toBe(
      undefined,
    )
    expect(limitOf(frame({ control: { iwant: entries(65) } }))).toBe('maxIWantEntries')
    expect(limitOf(frame({ control: { idontwant: entries(65) } }))).toBe('maxIDontWantEntries')
  })

  it('refuses a frame over the subscription or message limit before decoding any entry', () => {
    const subscriptions = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ subscribe: true, topic: `churn-${i}` }))
    const messages = (n: number) =>
      Array.from({ length: n }, () => ({ topic: T, data: new Uint8Array(1) }))
    const cases = [
      [frame({ subscriptions: subscriptions(5000) }), 'maxSubscriptions'],
      [frame({ messages: messages(DEFAULT_RPC_LIMITS.maxMessages + 1) }), 'maxMessages'],
    ] as const
    for (const [bytes, limit] of cases) {
      const work = { fields: 0 }
      let error: unknown
      try {
        decodeRpc(bytes, DEFAULT_RPC_LIMITS, work)
      } catch (err) {
        error = err
      }
      expect((error as RpcLimitError).limit).toBe(limit)
      // Counted from the entries' tags and lengths alone: no entry was decoded.
      expect(work.fields).toBe(0)
    }
    // At the limit, the frame decodes whole.
    const max = DEFAULT_RPC_LIMITS.maxSubscriptions
    expect(decodeRpc(frame({ subscriptions: subscriptions(max) })).subscriptions).toHaveLength(max)
  })

  it('reads runs of ids with every check a field at a time would make', () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => Uint8Array.from([i >> 8, i]))
    const ihave = frame({ control: { ihave: [{ topicID: T, messageIDs: ids(150) }] } })
    const limitOf = (bytes: Uint8Array, limits: Partial<typeof DEFAULT_RPC_LIMITS>) => {
      try {
        decodeRpc(bytes, { ...DEFAULT_RPC_LIMITS, ...limits })
      } catch (err) {
        return [(err as RpcLimitError).limit, (err as RpcLimitError).fieldsRead]
      }
      return undefined
    }
    // Crossed in the middle of a run: the same limit, at the same field, as one by one
    // (control, entry and topic, then the 101st id; the 51st field).
    expect(limitOf(ihave, { maxIHaveIds: 100 })).toEqual(['maxIHaveIds', 104])
    expect(limitOf(ihave, { maxFields: 50 })).toEqual(['maxFields', 51])
    // A run broken by another field (unknown 9, the topic) goes on after it.
    const entry = [0x12, 1, 0xa1, 0x48, 0, 0x12, 1, 0xa2, 0x0a, 1, 0x74, 0x12, 1, 0xa3]
    const bytes = Uint8Array.from([0x1a, entry.length + 2, 0x0a, entry.length, ...entry])
    const rpc = decodeRpc(bytes)
    expect(rpc.control?.ihave).toEqual([
      { topicID: 't', messageIDs: [[0xa1], [0xa2], [0xa3]].map((b) => Uint8Array.from(b)) },
    ])
    // An id overrunning its entry is refused.
    const overrun = Uint8Array.from([0x1a, 9, 0x0a, 7, 0x12, 1, 0xa1, 0x12, 3, 0xa2, 0xa3, 0, 0])
    expect(() => decodeRpc(overrun)).toThrow(DecodeError)
  })

  it('counts unknown fields against maxFields', () => {
    // 50,000 unknown varint fields (field 9): skipped cheaply, but counted.
    const bytes = new Uint8Array(100_000)
    for (let i = 0; i < bytes.length; i += 2) bytes[i] = 9 << 3
    const work = { fields: 0 }
    expect(() => decodeRpc(bytes, DEFAULT_RPC_LIMITS, work)).toThrow(RpcLimitError)
    expect(work.fields).toBe(DEFAULT_RPC_LIMITS.maxFields + 1)
  })

  it('limits GRAFT and PRUNE entries and reports oversize frames as RpcLimitError', () => {
    const grafts = Array.from({ length: 20 }, () => ({ topicID: T }))
    const limits = { ...DEFAULT_RPC_LIMITS, maxGraftPruneEntries: 10 }
    expect(() => decodeRpc(frame({ control: { graft: grafts } }), limits)).toThrow(RpcLimitError)
    expect(() => decodeRpc(new Uint8Array(100), { ...limits, maxFrameBytes: 10 })).toThrow(
      DecodeError,
    )
  })
})

describe('a gossip router under attack (sans-IO)', () => {
  for (const attack of gossipAttacks(T).filter((a) => !a.stream)) {
    it(`${attack.name}: penalised within 1 s, disconnected, honest traffic delivered`, () => {
      const { env, router, delivered } = victim()
      let published = 0
      let penalisedAt: number | undefined
      let frames = 0
      const start = env.time
      // Three virtual seconds at the attack's rate, with 20 honest messages a second.
      const step = 1000 / attack.rate
      let nextHonest = start
      for (let t = 0; t < 3000 && router.getPeers().includes(X); t += step) {
        while (nextHonest <= env.time) {
          const data = new Uint8Array(1024).fill(published % 251)
          data[0] = published >> 8
          data[1] = published & 0xff
          router.receive('p0', frame({ messages: [{ topic: T, data }] }))
          published++
          nextHonest += 50
        }
        router.receive(X, attack.next())
        frames++
        // A peer cut off at its first penalty has no score left to read.
        const cut = env.disconnected.length > 0
        if (penalisedAt === undefined && (cut || router.getBehaviourPenalty(X) > 0)) {
          penalisedAt = env.time
        }
        env.advance(step)
      }
      expect(penalisedAt).toBeDefined()
      expect(penalisedAt! - start).toBeLessThanOrEqual(1000)
      expect(env.disconnected.map((d) => d.peer)).toEqual([X])
      expect(env.disconnected[0].denyMs).toBe(DEFAULT_PEER_BUDGETS.denyMs)
      expect(router.isDenied(X)).toBe(true)
      expect(router.peersDisconnected).toBe(1)
      expect(delivered()).toBe(published)
      for (const p of HONEST) expect(router.getBehaviourPenalty(p)).toBe(0)
      // The work of the worst frame is bounded by the decode limits, not by the frame.
      expect(router.maxFieldsPerFrame).toBeLessThanOrEqual(DEFAULT_RPC_LIMITS.maxFields + 1)
      // IDONTWANT ids past the budget are not stored.
      expect(router.getIDontWantCount(X)).toBe(0)
      // Strikes weigh how far over a budget or a limit a frame goes: every flood is cut off
      // within its first frames (one frame of the same message is one repeat, 20 are free).
      expect(frames).toBeLessThanOrEqual(FRAMES_TO_CUT_OFF[attack.name])
    })
  }

  it('counts strikes by how far over its budget a frame goes', () => {
    const { env, router } = victim()
    const { burst } = DEFAULT_PEER_BUDGETS.rates.iwantMiss
    const unit = burst / DEFAULT_PEER_BUDGETS.overdraftStrikesPerBurst
    const ask = (n: number) =>
      frame({
        control: {
          iwant: [{ messageIDs: Array.from({ length: n }, (_, i) => Uint8Array.of(n, i >> 8, i)) }],
        },
      })
    // Misses within the budget: no strike; one past it: one strike.
    router.receive(X, ask(burst))
    router.receive(X, ask(1))
    expect(router.getBehaviourPenalty(X)).toBe(1)
    expect(env.disconnected).toEqual([])
    // Going 5 units of strike over: 5 strikes, and one more frame as far over cuts it off.
    env.advance(100_000)
    router.receive(X, ask(burst + 5 * unit))
    expect(env.disconnected).toEqual([])
    router.receive(X, ask(15 * unit))
    expect(env.disconnected.map((d) => d.peer)).toEqual([X])
  })

  it('refuses a large frame from its first bytes once they are over the id budget', () => {
    const { router } = victim()
    const rejected: string[] = []
    router.on('rejected', (e) => {
      if (e.from === X) rejected.push(e.reason)
    })
    const ihave = gossipAttacks(T).find((a) => a.name === 'IHAVE 5,000 random ids')!
    const big = () => {
      // Two IHAVE frames of 5,000 ids in one (over 64 KiB, so the driver shows its prefix).
      const [f1, f2] = [ihave.next(), ihave.next()]
      const out = new Uint8Array(f1.length + f2.length)
      out.set(f1)
      out.set(f2, f1.length)
      return out
    }
    const prefix = (f: Uint8Array) => f.subarray(0, 64 * 1024)
    // A peer the router has not heard of yet is judged by the decode limits alone.
    const early = big()
    expect(router.inspectFramePrefix('newcomer', prefix(early), early.length)).toBe(true)
    // Within its budget, the prefix passes; once the budget is spent, it does not.
    const first = big()
    expect(first.length).toBeGreaterThan(64 * 1024)
    expect(router.inspectFramePrefix(X, prefix(first), first.length)).toBe(true)
    for (let i = 0; i < 2; i++) router.receive(X, ihave.next())
    expect(rejected).toEqual([])
    const next = big()
    expect(router.inspectFramePrefix(X, prefix(next), next.length)).toBe(false)
    // Its length holds some 10,000 ids, a whole burst more than the budget gave: cut off.
    expect(rejected).toEqual(['ihave-over-budget', 'disconnected'])
  })

  it('cuts off the sender of a 4 MiB malformed frame at its first bytes', () => {
    const { env, router } = victim()
    const big = emptyControlFieldsFrame()
    expect(router.inspectFramePrefix(X, big.subarray(0, 64 * 1024), big.length)).toBe(false)
    expect(env.disconnected.map((d) => d.peer)).toEqual([X])
    // A small malformed frame costs half the way.
    const { env: env2, router: router2 } = victim()
    router2.receive(X, emptyControlFieldsFrame(64 * 1024))
    expect(env2.disconnected).toEqual([])
    router2.receive(X, emptyControlFieldsFrame(64 * 1024))
    expect(env2.disconnected.map((d) => d.peer)).toEqual([X])
  })

  it('pulls an IDONTWANTed message that does not come, but holds few waits for made-up ids', () => {
    const { env, router } = victim({ idontwantPullMs: 1000 })
    const wanted = (peer: string) =>
      env
        .take()
        .filter((s) => s.peer === peer)
        .flatMap((s) => s.rpc.control?.iwant ?? [])
        .reduce((n, e) => n + e.messageIDs.length, 0)
    // An honest mesh peer has a message whose pushes to us were all lost: pulled from it.
    router.receive(
      'p0',
      frame({ control: { idontwant: [{ messageIDs: [Uint8Array.of(1, 2, 3)] }] } }),
    )
    // The attacker claims 1,000 made-up messages, within its IDONTWANT budget.
    const made = (i: number) => Uint8Array.of(9, i >> 8, i & 0xff)
    for (let f = 0; f < 2; f++) {
      const messageIDs = Array.from({ length: 500 }, (_, i) => made(f * 500 + i))
      router.receive(X, frame({ control: { idontwant: [{ messageIDs }] } }))
    }
    expect(router.getBehaviourPenalty(X)).toBe(0)
    env.take()
    env.advance(1000)
    const sent = env.take()
    const ids = (peer: string) =>
      sent
        .filter((s) => s.peer === peer)
        .flatMap((s) => s.rpc.control?.iwant ?? [])
        .reduce((n, e) => n + e.messageIDs.length, 0)
    expect(ids('p0')).toBe(1)
    expect(ids(X)).toBeGreaterThan(0)
    expect(ids(X)).toBeLessThanOrEqual(256)
    // Once the attacker is gone its waits end: nothing more is asked of anyone for them.
    router.peerDisconnected(X)
    env.advance(10_000)
    expect(wanted(X)).toBe(0)
  })

  it('stores IDONTWANT ids up to the budget, and cuts off a frame far past it', () => {
    const { env, router } = victim()
    const { burst, cutOffOverdraft } = DEFAULT_PEER_BUDGETS.rates.idontwant
    const perFrame = DEFAULT_RPC_LIMITS.maxIDontWantIds
    let seed = 0
    const send = (n: number) => {
      const messageIDs = Array.from({ length: n }, (_, i) =>
        Uint8Array.from([seed, i >> 8, i & 0xff]),
      )
      seed++
      router.receive(X, frame({ control: { idontwant: [{ messageIDs }] } }))
    }
    // The whole burst, in frames at the per-frame limit: every id stored, no penalty.
    for (let left = burst; left > 0; left -= perFrame) send(Math.min(left, perFrame))
    expect(router.getIDontWantCount(X)).toBe(burst)
    expect(router.getBehaviourPenalty(X)).toBe(0)
    // A frame a little past it: penalised, none of its ids stored, still connected.
    send(cutOffOverdraft! - 1)
    expect(router.getBehaviourPenalty(X)).toBe(1)
    expect(router.getIDontWantCount(X)).toBe(burst)
    expect(env.disconnected).toEqual([])
    // One as far past it as no honest frame goes (they hold one id): cut off at once.
    send(cutOffOverdraft!)
    expect(env.disconnected.map((d) => d.peer)).toEqual([X])
  })

  it('reads an IWANT frame only as far as its miss budget: the ids after it are not served', () => {
    const { burst } = DEFAULT_PEER_BUDGETS.rates.iwantMiss
    const data = new Uint8Array(1024).fill(9)
    const real = contentMessageId(T, data)
    const served = (unknown: number) => {
      const { env, router } = victim()
      router.receive('p0', frame({ messages: [{ topic: T, data }] }))
      env.take()
      const ids = Array.from({ length: unknown }, (_, i) => Uint8Array.of(1, i >> 8, i & 0xff))
      router.receive(X, frame({ control: { iwant: [{ messageIDs: [...ids, real] }] } }))
      const penalty = router.getBehaviourPenalty(X)
      return { penalty, messages: env.take().filter((s) => s.peer === X && s.rpc.messages.length) }
    }
    // Misses up to the budget: the id after them is served.
    expect(served(burst)).toEqual({ penalty: 0, messages: [expect.anything()] })
    // One more miss: the frame is over budget, and what follows is not read.
    expect(served(burst + 1)).toEqual({ penalty: 1, messages: [] })
  })

  it('decodes a frame over the id budget only as far as the budget, and counts it over budget', () => {
    const fields: number[] = []
    const { router } = victim({
      decodeRpc: (bytes, limits, work) => {
        try {
          return decodeRpc(bytes, limits, work)
        } finally {
          fields.push(work.fields)
        }
      },
    })
    const rejected: string[] = []
    router.on('rejected', (e) => {
      if (e.from === X) rejected.push(e.reason)
    })
    const ihave = gossipAttacks(T).find((a) => a.name === 'IHAVE 5,000 random ids')!
    const perFrame = DEFAULT_RPC_LIMITS.maxIHaveIds
    const frames = DEFAULT_PEER_BUDGETS.rates.ihave.burst / perFrame
    fields.length = 0
    for (let i = 0; i < frames; i++) router.receive(X, ihave.next())
    expect(router.getBehaviourPenalty(X)).toBe(0)
    // Within the budget, every id was read.
    expect(Math.min(...fields)).toBeGreaterThan(perFrame)
    router.receive(X, ihave.next())
    expect(rejected).toEqual(['ihave-over-budget'])
    expect(router.getBehaviourPenalty(X)).toBe(1)
    // The budget was spent: decoding stopped at the first id.
    expect(fields.at(-1)).toBeLessThan(5)
  })

  it("asks for IHAVE ids up to the frame's and the heartbeat's budgets, chosen at random", () => {
    const { env, router } = victim()
    const ids = (seed: number, n: number) =>
      Array.from({ length: n }, (_, i) => Uint8Array.from([seed, i >> 8, i & 0xff]))
    const ihave = (messageIDs: Uint8Array[]) =>
      frame({ control: { ihave: [{ topicID: T, messageIDs }] } })
    const asked = () =>
      env
        .take()
        .filter((s) => s.peer === X)
        .flatMap((s) => s.rpc.control?.iwant.flatMap((w) => w.messageIDs) ?? [])
    const perFrame = router.params.maxIHaveIdsExamined
    const perHeartbeat = router.params.maxIHaveLength
    expect(perFrame).toBeLessThan(perHeartbeat)
    // One frame of 2,500 unseen ids: a random 1,000 are looked at and asked for, not the first.
    router.receive(X, ihave(ids(1, 2500)))
    const got = asked()
    expect(got).toHaveLength(perFrame)
    expect(new Set(got.map((id) => (id[1] << 8) | id[2])).size).toBe(perFrame)
    expect(got.some((id) => ((id[1] << 8) | id[2]) >= perFrame)).toBe(true)
    // Further frames ask up to what is left of the heartbeat's budget...
    let total = got.length
    for (let seed = 2; total < perHeartbeat; seed++) {
      router.receive(X, ihave(ids(seed, 1000)))
      const n = asked().length
      expect(n).toBe(Math.min(1000, perHeartbeat - total))
      total += n
    }
    // ...which, spent, leaves nothing for another IHAVE this heartbeat.
    router.receive(X, ihave(ids(99, 100)))
    expect(asked()).toHaveLength(0)
    expect(router.getBehaviourPenalty(X)).toBe(0)
  })

  it('looks at a random sample of an IHAVE frame, seen ids included', () => {
    const { env, router } = victim()
    // 4,900 messages the victim has, then an IHAVE of their ids and 100 unseen ones.
    const data = (i: number) => Uint8Array.from([i >> 8, i & 0xff, 7])
    const seen = Array.from({ length: 4900 }, (_, i) => ({ topic: T, data: data(i) }))
    router.receive('p0', frame({ messages: seen }))
    const unseen = Array.from({ length: 100 }, (_, i) => Uint8Array.from([0xee, i]))
    const messageIDs = [...seen.map((m) => contentMessageId(T, m.data)), ...unseen]
    env.take()
    router.receive(X, frame({ control: { ihave: [{ topicID: T, messageIDs }] } }))
    const asked = env
      .take()
      .filter((s) => s.peer === X)
      .flatMap((s) => s.rpc.control?.iwant.flatMap((w) => w.messageIDs) ?? [])
    // Only the unseen ids among the 1,000 looked at (about 20 of the 100) are asked for.
    const examined = router.params.maxIHaveIdsExamined
    expect(examined).toBe(1000)
    expect(asked.every((id) => id[0] === 0xee)).toBe(true)
    expect(asked.length).toBeGreaterThan(0)
    expect(asked.length).toBeLessThan(60)
  })

  it('budgets stream reopening and bad framing reported by the driver', () => {
    const { env, router } = victim()
    const { burst } = DEFAULT_PEER_BUDGETS.rates.stream
    for (let i = 0; i < burst; i++) router.inboundStreamOpened(X)
    expect(router.getBehaviourPenalty(X)).toBe(0)
    router.inboundStreamOpened(X)
    expect(router.getBehaviourPenalty(X)).toBe(1)
    for (let i = 0; i < 10 && env.disconnected.length === 0; i++) {
      router.penalise(X, 'bad-framing')
      router.inboundStreamOpened(X)
    }
    expect(env.disconnected.map((d) => d.peer)).toEqual([X])
  })

  it('refuses a denied peer that comes back, and budgets no direct peer', () => {
    const { env, router } = victim({ directPeers: ['d'] })
    router.peerConnected('d', { protocol: MESHSUB_1_2 })
    for (let i = 0; i < 20; i++) router.receive('d', emptyIWantEntriesFrame(10_000))
    expect(router.getPeers()).toContain('d')
    for (let i = 0; i < 20 && env.disconnected.length === 0; i++) {
      router.receive(X, emptyIWantEntriesFrame(10_000))
    }
    expect(env.disconnected.map((d) => d.peer)).toEqual([X])
    router.peerConnected(X, { protocol: MESHSUB_1_2 })
    expect(router.getPeers()).not.toContain(X)
    expect(env.disconnected.map((d) => d.peer)).toEqual([X, X])
    env.advance(DEFAULT_PEER_BUDGETS.denyMs)
    router.peerConnected(X, { protocol: MESHSUB_1_2 })
    expect(router.getPeers()).toContain(X)
  })
})

describe('the simulator', () => {
  it('cuts the link of a disconnected peer and heals it when the deny ends', () => {
    const denyMs = 5000
    const sim = new Simulation(
      { seed: 1, graph: fullMeshGraph(3), latency: uniformLatency(5) },
      (env) => new GossipRouter(env, { signaturePolicy: 'StrictNoSign', budgets: { denyMs } }),
    )
    sim.start()
    sim.run({ until: 100 })
    const [a, b] = [sim.nameOf(0), sim.nameOf(1)]
    expect(sim.core(0).getPeers()).toContain(b)
    for (let i = 0; i < 10 && sim.core(0).getPeers().includes(b); i++) {
      sim.core(0).penalise(b, 'bad-framing')
    }
    expect(sim.core(0).getPeers()).not.toContain(b)
    expect(sim.core(1).getPeers()).not.toContain(a)
    sim.run({ until: 100 + denyMs + 10 })
    expect(sim.core(0).getPeers()).toContain(b)
    expect(sim.core(1).getPeers()).toContain(a)
  })
})
