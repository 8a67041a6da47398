import { describe, expect, it } from 'vitest'
import { DecodeError } from '../../src/common/errors.ts'
import {
  bytesKey,
  MAX_PULL_ASKS,
  MAX_PULLS_PER_ANNOUNCER,
  shortId,
  topicHash,
} from '../../src/gossip/one-copy.ts'
import { resolveGossipParams } from '../../src/gossip/params.ts'
import { MESHSUB_1_2, MESHSUB_1_3 } from '../../src/gossip/protocol-ids.ts'
import { GossipRouter, type GossipRouterOptions } from '../../src/gossip/router.ts'
import {
  DEFAULT_RPC_LIMITS,
  decodeRpc,
  emptyControl,
  emptyOneCopy,
  encodeRpc,
  HELLO_ACK,
  HELLO_ASK,
  ONE_COPY_FIELD,
  type Rpc,
  RpcLimitError,
} from '../../src/gossip/rpc-codec.ts'
import { defaultMessageId } from '../../src/gossip/signing.ts'
import { fullMeshGraph, randomRegularGraph } from '../../src/sim/graph.ts'
import { Simulation } from '../../src/sim/network.ts'
import { uniformLatency } from '../../src/sim/placement.ts'
import { Prng } from '../../src/sim/prng.ts'
import { frame, ManualEnv, subscribeFrame } from './harness.ts'

const T = 'blocks'
const id8 = (n: number) => new Uint8Array(8).fill(n)
const extensionsFrame = () =>
  frame({
    control: { extensions: { oneCopy: true } },
    subscriptions: [{ subscribe: true, topic: T }],
  })

const helloFrame = (hello: number) => frame({ oneCopy: { ...emptyOneCopy(), hello } })

/** A router with `n` one-copy peers (meshsub 1.3, Extensions received) in its mesh of T. */
function withPeers(n = 6, protocol = MESHSUB_1_3) {
  const env = new ManualEnv()
  const router = new GossipRouter(env, { oneCopy: true, signaturePolicy: 'StrictNoSign' })
  router.start()
  const peers = Array.from({ length: n }, (_, i) => `p${i}`)
  for (const p of peers) {
    router.peerConnected(p, { protocol, outbound: true })
    router.receive(p, protocol === MESHSUB_1_3 ? extensionsFrame() : subscribeFrame(T))
    if (protocol === MESHSUB_1_3) router.receive(p, helloFrame(HELLO_ACK))
  }
  router.subscribe(T)
  env.take()
  return { env, router, peers }
}

const oneCopyTo = (
  sent: { peer: string; rpc: Rpc }[],
  kind: 'choke' | 'unchoke' | 'ineed' | 'announce',
) => sent.filter((s) => (s.rpc.oneCopy?.[kind].length ?? 0) > 0).map((s) => s.peer)

describe('the one-copy wire format', () => {
  it('roundtrips Extensions and every one-copy message, at the registered field number', () => {
    const rpc: Rpc = {
      subscriptions: [],
      messages: [],
      control: { ...emptyControl(), extensions: { oneCopy: true } },
      oneCopy: {
        choke: ['a'],
        unchoke: ['b', 'c'],
        announce: [{ topicHash: topicHash('a'), ids: [id8(1), id8(2)] }],
        ineed: [id8(3)],
        hello: HELLO_ASK,
      },
    }
    const bytes = encodeRpc(rpc)
    expect(decodeRpc(bytes)).toEqual(rpc)
    // The RPC field key of 6110225 takes 4 bytes (experimental range of meshsub 1.3).
    expect(ONE_COPY_FIELD).toBeGreaterThan(0x200000)
  })

  it('rejects one-copy frames over each limit, and short ids of a bad length', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => id8(i % 251))
    const over = (o: Partial<ReturnType<typeof emptyOneCopy>>) =>
      encodeRpc({ subscriptions: [], messages: [], oneCopy: { ...emptyOneCopy(), ...o } })
    const limits = DEFAULT_RPC_LIMITS
    const cases: [Uint8Array, string][] = [
      [over({ choke: Array(limits.maxChokes + 1).fill('t') }), 'maxChokes'],
      [over({ ineed: many(limits.maxShortIds + 1) }), 'maxShortIds'],
      [
        over({
          announce: Array.from({ length: limits.maxAnnounceEntries + 1 }, () => ({
            topicHash: topicHash('t'),
            ids: [],
          })),
        }),
        'maxAnnounceEntries',
      ],
    ]
    for (const [bytes, limit] of cases) {
      let err: unknown
      try {
        decodeRpc(bytes)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(RpcLimitError)
      expect((err as RpcLimitError).limit).toBe(limit)
    }
    const bad = encodeRpc({
      subscriptions: [],
      messages: [],
      oneCopy: { ...emptyOneCopy(), ineed: [id8(1)] },
    })
    // The frame is key (4 bytes), length 10, then INEED (0x22), length 8, 8 bytes: cut one
    // byte of the id and fix both lengths; 7 bytes is not a short id.
    expect([...bad.subarray(4, 7)]).toEqual([10, 0x22, 8])
    const mangled = new Uint8Array([...bad.subarray(0, 4), 9, 0x22, 7, ...bad.subarray(7, 14)])
    expect(decodeRpc(bad).oneCopy?.ineed).toHaveLength(1)
    expect(() => decodeRpc(mangled)).toThrow(DecodeError)
  })
})

describe('meshsub 1.3 Extensions', () => {
  it('go in the first frame to a 1.3 peer, and never to a 1.2 peer', () => {
    const env = new ManualEnv()
    const router = new GossipRouter(env, { oneCopy: true })
    router.start()
    router.peerConnected('new', { protocol: MESHSUB_1_3 })
    router.peerConnected('old', { protocol: MESHSUB_1_2 })
    const sent = env.take()
    expect(sent.filter((s) => s.peer === 'new')).toHaveLength(1)
    expect(sent[0].rpc.control?.extensions).toEqual({ oneCopy: true })
    expect(sent.filter((s) => s.peer === 'old')).toHaveLength(0)
  })

  it('are negotiated between two routers over meshsub 1.3; a second one is penalised', () => {
    const sim = new Simulation(
      { seed: 1, graph: fullMeshGraph(2), latency: uniformLatency(5) },
      (env) => new GossipRouter(env, { oneCopy: true }),
    )
    sim.start()
    sim.run({ until: 100 })
    const [a, b] = [sim.core(0) as GossipRouter, sim.core(1) as GossipRouter]
    expect(a.speaksOneCopy(a.getPeers()[0])).toBe(true)
    expect(b.speaksOneCopy(b.getPeers()[0])).toBe(true)
    const { env, router } = withPeers(1)
    router.receive('p0', frame({ control: { extensions: { oneCopy: true } } }))
    expect(router.getBehaviourPenalty('p0')).toBe(1)
    expect(router.stats().invalid['extensions-late']).toBe(1)
    expect(env.take()).toHaveLength(0)
  })

  it('survive a lost first frame: the hello is asked again each heartbeat until answered', () => {
    // Two routers wired by hand; a frame is delivered unless `drop` says otherwise.
    const envs = [new ManualEnv('a'), new ManualEnv('b')]
    const routers = envs.map((env) => new GossipRouter(env, { oneCopy: true }))
    for (const r of routers) r.start()
    routers[0].peerConnected('b', { protocol: MESHSUB_1_3, outbound: true })
    routers[1].peerConnected('a', { protocol: MESHSUB_1_3 })
    let dropped = 0
    const relay = (drop: (from: number, rpc: Rpc) => boolean) => {
      for (const from of [0, 1]) {
        for (const s of envs[from].take()) {
          if (drop(from, s.rpc)) dropped++
          else routers[1 - from].receive(from === 0 ? 'a' : 'b', encodeRpc(s.rpc))
        }
      }
    }
    // a's first frame, with its Extensions, is lost; b's reaches a.
    relay((from) => from === 0)
    expect(dropped).toBe(1)
    expect(routers[1].speaksOneCopy('a')).toBe(false)
    // a heard b and says so (hello ASK): lose that too, and b's ACK never comes.
    relay((from, rpc) => from === 0 && rpc.oneCopy?.hello === HELLO_ASK)
    expect(dropped).toBe(2)
    expect(routers[0].speaksOneCopy('b')).toBe(false)
    // a's heartbeat asks again; b learns a speaks it from the hello alone and answers.
    for (const env of envs) env.advance(routers[0].params.heartbeatIntervalMs + 100)
    relay(() => false)
    relay(() => false)
    expect(routers[0].speaksOneCopy('b')).toBe(true)
    expect(routers[1].speaksOneCopy('a')).toBe(true)
    // Negotiated: no further hellos, and nobody was penalised for the repeats.
    for (const env of envs) env.advance(routers[0].params.heartbeatIntervalMs)
    const later = envs.flatMap((env) => env.take()).filter((s) => s.rpc.oneCopy?.hello)
    expect(later).toEqual([])
    expect(routers[0].getBehaviourPenalty('b')).toBe(0)
    expect(routers[1].getBehaviourPenalty('a')).toBe(0)
  })

  it('leave a 1.2 peer stock: no one-copy, its CHOKEs ignored, full pushes', () => {
    const { env, router, peers } = withPeers(4, MESHSUB_1_2)
    expect(router.speaksOneCopy('p0')).toBe(false)
    router.receive('p1', frame({ oneCopy: { ...emptyOneCopy(), choke: [T] } }))
    expect(router.stats().invalid['one-copy-not-negotiated']).toBe(1)
    router.receive('p0', frame({ messages: [{ topic: T, data: new Uint8Array(300).fill(1) }] }))
    const pushed = env
      .take()
      .filter((s) => s.rpc.messages.length > 0)
      .map((s) => s.peer)
    expect(pushed.sort()).toEqual(peers.slice(1))
  })
})

describe('one-copy parameters', () => {
  it("take stock's mesh rules and 1 gossip peer in either profile, unless overridden", () => {
    for (const profile of ['optimized', 'stock'] as const) {
      const p = resolveGossipParams({ profile, oneCopy: true })
      expect([p.acceptGraftsUpTo, p.dialledGraftsBeyondLimit, p.gradualGraft]).toEqual([
        'Dhi',
        'always',
        false,
      ])
      expect(p.oneCopyGossipPeers).toBe(1)
    }
    const off = resolveGossipParams({ profile: 'optimized' })
    expect([off.acceptGraftsUpTo, off.gradualGraft, off.oneCopyGossipPeers]).toEqual(['D', true, 3])
    const set = resolveGossipParams({ oneCopy: true, acceptGraftsUpTo: 'D', oneCopyGossipPeers: 3 })
    expect([set.acceptGraftsUpTo, set.gradualGraft, set.oneCopyGossipPeers]).toEqual([
      'D',
      false,
      3,
    ])
  })
})

describe('one-copy mesh rules', () => {
  it("take GRAFTs from one-copy peers up to Dhi, and from peers without it only up to D (the optimized profile's rule)", () => {
    // A mesh of 8 one-copy peers, then 6 more of each kind graft us, all inbound.
    const { env, router } = withPeers(8)
    const inbound = (kind: string, protocol: string) =>
      Array.from({ length: 6 }, (_, i) => {
        const p = `${kind}${i}`
        router.peerConnected(p, { protocol, outbound: false })
        if (protocol === MESHSUB_1_3) {
          router.receive(p, extensionsFrame())
          router.receive(p, helloFrame(HELLO_ACK))
        } else router.receive(p, subscribeFrame(T))
        return p
      })
    const stock = inbound('stock', MESHSUB_1_2)
    const ours = inbound('ours', MESHSUB_1_3)
    expect(router.getMeshPeers(T)).toHaveLength(8)
    env.take()
    const graft = frame({ control: { graft: [{ topicID: T }] } })
    // The mesh is at D: every stock GRAFT is refused with PRUNE.
    for (const p of stock) router.receive(p, graft)
    expect(router.getMeshPeers(T)).toHaveLength(8)
    const pruned = env
      .take()
      .filter((s) => (s.rpc.control?.prune.length ?? 0) > 0)
      .map((s) => s.peer)
    expect(pruned.sort()).toEqual([...stock].sort())
    // One-copy peers are taken up to Dhi (12): four of the six.
    for (const p of ours) router.receive(p, graft)
    const mesh = router.getMeshPeers(T)
    expect(mesh).toHaveLength(12)
    expect(mesh.filter((p) => p.startsWith('ours'))).toHaveLength(4)
    expect(mesh.some((p) => p.startsWith('stock'))).toBe(false)
  })
})

describe('one-copy links', () => {
  it('ask peers whose pushes are duplicates to announce instead (CHOKE), keeping minEager eager in-links', () => {
    const { env, router } = withPeers(4)
    expect(router.params.oneCopyMinEager).toBe(2)
    const msg = (n: number) => ({ topic: T, data: new Uint8Array(300).fill(n) })
    router.receive('p0', frame({ messages: [msg(1)] }))
    env.take()
    // Four eager in-links: the duplicates of p1 and p2 are choked, p3's no longer (two left).
    for (const p of ['p1', 'p2', 'p3']) router.receive(p, frame({ messages: [msg(1)] }))
    expect(oneCopyTo(env.take(), 'choke')).toEqual(['p1', 'p2'])
    expect(router.getLazyLinkCount(T)).toBe(2)
  })

  it('announce to a peer that sent CHOKE, push to the others', () => {
    const { env, router } = withPeers(4)
    router.receive('p1', frame({ oneCopy: { ...emptyOneCopy(), choke: [T] } }))
    const msg = { topic: T, data: new Uint8Array(300).fill(2) }
    router.receive('p2', frame({ messages: [msg] }))
    const sent = env.take()
    const pushed = sent.filter((s) => s.rpc.messages.length > 0).map((s) => s.peer)
    expect(pushed.sort()).toEqual(['p0', 'p3'])
    expect(oneCopyTo(sent, 'announce')).toEqual(['p1'])
    const a = sent.find((s) => s.peer === 'p1')!.rpc.oneCopy!.announce[0]
    const id = defaultMessageId('StrictNoSign')(msg)
    expect(bytesKey(a.ids[0])).toBe(bytesKey(shortId(id)))
  })

  it('pull an announced message that does not come in time, and promote the link (UNCHOKE)', () => {
    const { env, router } = withPeers(4)
    const msg = (n: number) => ({ topic: T, data: new Uint8Array(300).fill(n) })
    router.receive('p0', frame({ messages: [msg(1)] }))
    router.receive('p1', frame({ messages: [msg(1)] }))
    expect(oneCopyTo(env.take(), 'choke')).toEqual(['p1'])
    const data = new Uint8Array(300).fill(9)
    const id = defaultMessageId('StrictNoSign')({ topic: T, data })
    const announce = { topicHash: topicHash(T), ids: [shortId(id)] }
    router.receive('p1', frame({ oneCopy: { ...emptyOneCopy(), announce: [announce] } }))
    env.advance(router.params.oneCopyPullDelayMs - 1)
    expect(env.take()).toHaveLength(0)
    env.advance(1)
    const pull = env.take()
    expect(pull.map((s) => s.peer)).toEqual(['p1'])
    expect(pull[0].rpc.oneCopy?.unchoke).toEqual([T])
    expect(pull[0].rpc.oneCopy?.ineed.map(bytesKey)).toEqual([bytesKey(shortId(id))])
    expect(router.getLazyLinkCount(T)).toBe(0)
    // The reply is no duplicate, and no reason to choke p1 again.
    router.receive('p1', frame({ messages: [{ topic: T, data }] }))
    expect(oneCopyTo(env.take(), 'choke')).toEqual([])
  })

  it("track at most MAX_PULLS_PER_ANNOUNCER of one peer's announced ids: a flood of them costs few pulls", () => {
    const { env, router } = withPeers(4)
    const reasons: string[] = []
    router.on('rejected', ({ from, reason }) => {
      if (from === 'p2') reasons.push(reason)
    })
    // 5,000 ids nobody has, within p2's announce budget.
    const ids = Array.from({ length: 5000 }, (_, i) => {
      const id = new Uint8Array(8)
      new DataView(id.buffer).setUint32(0, i + 1)
      return id
    })
    router.receive(
      'p2',
      frame({ oneCopy: { ...emptyOneCopy(), announce: [{ topicHash: topicHash(T), ids }] } }),
    )
    expect(reasons).toEqual(['announce-over-pull-share'])
    // p1 announces a real message after it: it is still pulled, from p1.
    const data = new Uint8Array(300).fill(7)
    const id = defaultMessageId('StrictNoSign')({ topic: T, data })
    const announce = { topicHash: topicHash(T), ids: [shortId(id)] }
    router.receive('p1', frame({ oneCopy: { ...emptyOneCopy(), announce: [announce] } }))
    let toP2 = 0
    const toP1: string[] = []
    // Until every entry was given up (the announcers' caches would have dropped them).
    const until = env.now() + router.params.mcacheLength * router.params.heartbeatIntervalMs
    while (env.now() <= until + router.params.oneCopyFollowupMs) {
      env.advance(router.params.oneCopyFollowupMs)
      for (const s of env.take()) {
        const ineed = s.rpc.oneCopy?.ineed ?? []
        if (s.peer === 'p2') toP2 += ineed.length
        if (s.peer === 'p1') toP1.push(...ineed.map(bytesKey))
      }
    }
    expect(toP1[0]).toBe(bytesKey(shortId(id)))
    expect(toP2).toBeGreaterThan(0)
    expect(toP2).toBeLessThanOrEqual(MAX_PULLS_PER_ANNOUNCER * MAX_PULL_ASKS)
    // Given up, p2's 64 unanswered announces are counted against it: past its `unanswered`
    // budget it is penalised and cut off. p1's one (its reply never came here) is within it.
    expect(reasons).toContain('unanswered-over-budget')
    expect(env.disconnected.map((d) => d.peer)).toEqual(['p2'])
    expect(router.getBehaviourPenalty('p1')).toBe(0)
    expect(router.getPeers()).toContain('p1')
  })

  it('cut off a peer that announces a few ids nobody has at a time, within its other budgets', () => {
    const { env, router } = withPeers(4)
    const reasons: string[] = []
    router.on('rejected', ({ from, reason }) => {
      if (from === 'p2') reasons.push(reason)
    })
    let n = 0
    let ineeds = 0
    // 16 made-up ids every 4 s (a quarter of its pull share); p1 announces real messages and
    // answers each INEED. Bounded: 40 rounds, 160 s of virtual time.
    for (let round = 0; round < 40 && router.getPeers().includes('p2'); round++) {
      const ids = Array.from({ length: 16 }, () => {
        const id = new Uint8Array(8)
        new DataView(id.buffer).setUint32(0, ++n)
        return id
      })
      router.receive(
        'p2',
        frame({ oneCopy: { ...emptyOneCopy(), announce: [{ topicHash: topicHash(T), ids }] } }),
      )
      const data = new Uint8Array(300)
      new DataView(data.buffer).setUint32(0, round)
      const real = { topic: T, data }
      const short = shortId(defaultMessageId('StrictNoSign')(real))
      const announce = { topicHash: topicHash(T), ids: [short] }
      router.receive('p1', frame({ oneCopy: { ...emptyOneCopy(), announce: [announce] } }))
      for (let t = 0; t < 4000; t += 100) {
        env.advance(100)
        for (const s of env.take()) {
          const asked = s.rpc.oneCopy?.ineed.map(bytesKey) ?? []
          if (s.peer === 'p2') ineeds += asked.length
          if (s.peer === 'p1' && asked.includes(bytesKey(short)))
            router.receive('p1', frame({ messages: [real] }))
        }
      }
    }
    // Its unanswered ids outrun the budget's refill (1 a second) within a few rounds.
    expect(reasons).toContain('unanswered-over-budget')
    expect(env.disconnected.map((d) => d.peer)).toEqual(['p2'])
    expect(n).toBeLessThanOrEqual(16 * 10)
    expect(ineeds).toBeLessThanOrEqual(n * MAX_PULL_ASKS)
    // The honest announcer answered: nothing counted against it.
    expect(router.getBehaviourPenalty('p1')).toBe(0)
    expect(router.getPeers()).toContain('p1')
  })

  it('repeat a CHOKE with the heartbeat when the peer pushes twice over a link it should announce on', () => {
    const { env, router } = withPeers(4)
    const msg = (n: number) => ({ topic: T, data: new Uint8Array(300).fill(n) })
    router.receive('p0', frame({ messages: [msg(1)] }))
    router.receive('p1', frame({ messages: [msg(1)] }))
    expect(oneCopyTo(env.take(), 'choke')).toEqual(['p1'])
    // The CHOKE was lost: p1 pushes again. Once could be a flood root's push (rule 2).
    router.receive('p0', frame({ messages: [msg(2)] }))
    router.receive('p1', frame({ messages: [msg(2)] }))
    expect(oneCopyTo(env.take(), 'choke')).toEqual([])
    env.advance(router.params.heartbeatIntervalMs)
    expect(oneCopyTo(env.take(), 'choke')).not.toContain('p1')
    // Twice is a lost CHOKE.
    router.receive('p0', frame({ messages: [msg(3)] }))
    router.receive('p1', frame({ messages: [msg(3)] }))
    env.advance(router.params.heartbeatIntervalMs)
    expect(oneCopyTo(env.take(), 'choke')).toContain('p1')
  })

  it('answer an INEED from the message cache', () => {
    const { env, router } = withPeers(2)
    const data = new Uint8Array(300).fill(3)
    router.receive('p0', frame({ messages: [{ topic: T, data }] }))
    env.take()
    const id = defaultMessageId('StrictNoSign')({ topic: T, data })
    router.receive('p1', frame({ oneCopy: { ...emptyOneCopy(), ineed: [shortId(id)] } }))
    const sent = env.take()
    expect(sent.map((s) => s.peer)).toEqual(['p1'])
    expect(sent[0].rpc.messages[0].data).toEqual(data)
  })

  it('are budgeted: a CHOKE, announce, INEED or inLinks flood is penalised and disconnected', () => {
    for (const kind of ['choke', 'announce', 'ineed', 'inLinks'] as const) {
      const { env, router } = withPeers(3)
      const flood = () => {
        const o = emptyOneCopy()
        if (kind === 'choke') o.choke.push(...Array(100).fill(T))
        if (kind === 'announce')
          o.announce.push({
            topicHash: topicHash(T),
            ids: Array.from({ length: 2000 }, (_, i) => id8(i % 251)),
          })
        if (kind === 'ineed') o.ineed.push(...Array.from({ length: 2000 }, (_, i) => id8(i % 251)))
        // Full frames: 64 in-link lists of 16 hashes (maxPeerHashes), each list a `choke` unit.
        if (kind === 'inLinks')
          o.inLinks = Array.from({ length: 64 }, () => ({
            topicHash: topicHash(T),
            peers: Array.from({ length: 16 }, (_, i) => new Uint8Array(4).fill(i)),
            rank: 0,
          }))
        return frame({ oneCopy: o })
      }
      // Seen as it happens: a peer cut off at its first penalty has no score left to read.
      let penalised = false
      router.on('rejected', ({ from, reason }) => {
        if (from === 'p2' && reason.endsWith('-over-budget')) penalised = true
      })
      for (let i = 0; i < 200 && router.getPeers().includes('p2'); i++) {
        router.receive('p2', flood())
        env.advance(10)
      }
      expect(penalised).toBe(true)
      expect(env.disconnected.map((d) => d.peer)).toEqual(['p2'])
      for (const p of ['p0', 'p1']) expect(router.getBehaviourPenalty(p)).toBe(0)
    }
  })
})

describe('scoring both ways', () => {
  const p3 = {
    meshMessageDeliveriesWeight: -10,
    meshMessageDeliveriesThreshold: 3,
    meshMessageDeliveriesWindowMs: 50,
    meshMessageDeliveriesActivationMs: 3000,
    // Nothing else raises a score: P3 alone decides.
    timeInMeshWeight: 0,
    firstMessageDeliveriesWeight: 0,
  }

  /**
   * 12 stock-profile nodes that score P3 mesh deliveries and 12 of ours, randomly linked,
   * 10 messages a second from random nodes for 20 s: the lowest score a stock node gave one
   * of our mesh peers at any time, and how many of our nodes sit in stock meshes at the end.
   */
  function mixed(ours: GossipRouterOptions = {}) {
    const n = 24
    const ourNames = new Set<string>()
    const sim = new Simulation(
      { seed: 5, graph: randomRegularGraph(n, 12, new Prng(5)), latency: uniformLatency(10) },
      (env, i) => {
        if (i >= 12) ourNames.add(env.self)
        const base = { signaturePolicy: 'StrictNoSign' as const, score: { defaultTopic: p3 } }
        return new GossipRouter(
          env,
          i < 12 ? { ...base, profile: 'stock' } : { ...base, oneCopy: true, ...ours },
        )
      },
    )
    sim.observe((_i, core) => core.subscribe(T))
    sim.start()
    const prng = new Prng(6)
    for (let m = 0; m < 200; m++) {
      sim.at(2000 + m * 100, () => {
        const data = new Uint8Array(256)
        new DataView(data.buffer).setUint32(0, m)
        sim
          .core(prng.int(n))
          .publish(T, data)
          .catch(() => {})
      })
    }
    // Sampled every 250 ms: a stock node prunes a negative peer at its next heartbeat.
    let lowest = Number.POSITIVE_INFINITY
    let inMeshes = 0
    for (let t = 2000; t <= 22_000; t += 250) {
      sim.run({ until: t })
      inMeshes = 0
      for (let i = 0; i < 12; i++) {
        const r = sim.core(i)
        for (const peer of r.getMeshPeers(T)) {
          if (!ourNames.has(peer)) continue
          inMeshes++
          lowest = Math.min(lowest, r.getPeerScore(peer))
        }
      }
    }
    let lazyLinks = 0
    for (let i = 12; i < n; i++) lazyLinks += sim.core(i).getLazyLinkCount(T)
    return { lowest, inMeshes, lazyLinks }
  }

  it('our nodes push to stock peers as stock does: stock nodes scoring P3 keep them in their meshes', () => {
    const ours = mixed()
    expect(ours.lazyLinks).toBeGreaterThan(0)
    expect(ours.inMeshes).toBeGreaterThan(12)
    expect(ours.lowest).toBeGreaterThanOrEqual(0)
  })

  it('our nodes owe no mesh deliveries over an announce-only link', () => {
    const env = new ManualEnv()
    const router = new GossipRouter(env, {
      oneCopy: true,
      signaturePolicy: 'StrictNoSign',
      score: { defaultTopic: { ...p3, meshMessageDeliveriesActivationMs: 1000 } },
    })
    router.start()
    for (const p of ['p0', 'p1', 'p2']) {
      router.peerConnected(p, { protocol: MESHSUB_1_3, outbound: true })
      router.receive(p, extensionsFrame())
      router.receive(p, helloFrame(HELLO_ACK))
    }
    router.subscribe(T)
    const msg = (i: number) => ({ topic: T, data: new Uint8Array(300).fill(i) })
    // p1's push is a duplicate: we CHOKE it, and it announces only from then on.
    router.receive('p0', frame({ messages: [msg(0)] }))
    router.receive('p1', frame({ messages: [msg(0)] }))
    expect(router.getLazyLinkCount(T)).toBe(1)
    // p0 and p2 deliver enough to meet the P3 threshold; p1 delivers nothing.
    const second = (from: number) => {
      for (let i = from; i < from + 4; i++) {
        router.receive('p0', frame({ messages: [msg(i)] }))
        router.receive('p2', frame({ messages: [msg(i)] }))
      }
      env.advance(1000)
    }
    for (let t = 1; t < 10; t++) second(4 * t)
    expect(router.getMeshPeers(T)).toContain('p1')
    expect(router.getPeerScore('p1')).toBeGreaterThanOrEqual(0)
    // An announce we pull from turns the link eager again (UNCHOKE).
    const data = new Uint8Array(300).fill(99)
    const id = defaultMessageId('StrictNoSign')({ topic: T, data })
    const announce = { topicHash: topicHash(T), ids: [shortId(id)] }
    const lazyBefore = router.getLazyLinkCount(T)
    router.receive('p1', frame({ oneCopy: { ...emptyOneCopy(), announce: [announce] } }))
    env.advance(router.params.oneCopyPullDelayMs)
    expect(router.getLazyLinkCount(T)).toBe(lazyBefore - 1)
    // p0 brings every message first: the next heartbeat makes p1 announce-only again, so its
    // missing deliveries are never held against it.
    for (let t = 10; t < 14; t++) second(4 * t)
    expect(router.getLazyLinkCount(T)).toBe(lazyBefore)
    expect(router.getMeshPeers(T)).toContain('p1')
    expect(router.getPeerScore('p1')).toBeGreaterThanOrEqual(0)
  })
})

describe('one-copy publishing', () => {
  it('floods a publication while the mesh is still forming (below D_lo)', () => {
    const env = new ManualEnv()
    const router = new GossipRouter(env, { oneCopy: true, signaturePolicy: 'StrictNoSign' })
    router.start()
    router.subscribe(T)
    for (const p of ['p0', 'p1', 'p2']) {
      router.peerConnected(p, { protocol: MESHSUB_1_3, outbound: true })
      router.receive(p, extensionsFrame())
    }
    env.take()
    // Subscriptions are known, no heartbeat has grafted anyone yet.
    expect(router.getMeshPeers(T)).toHaveLength(0)
    void router.publish(T, new Uint8Array(100).fill(1))
    const pushed = env.take().filter((s) => s.rpc.messages.length > 0)
    expect(pushed.map((s) => s.peer).sort()).toEqual(['p0', 'p1', 'p2'])
  })
})
