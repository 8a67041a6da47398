import { writer } from 'protons-runtime'
import { describe, expect, it } from 'vitest'
import { DecodeError } from '../../src/common/errors.ts'
import { messageIdKey } from '../../src/common/message-id.ts'
import { PING_INTERVAL_MS } from '../../src/gossip/link-rtt.ts'
import { peerHash, peerHashBytes, shortId, topicHash } from '../../src/gossip/one-copy.ts'
import { DEFAULT_PEER_BUDGETS } from '../../src/gossip/peer-budget.ts'
import { MESHSUB_1_3 } from '../../src/gossip/protocol-ids.ts'
import { GossipRouter } from '../../src/gossip/router.ts'
import {
  DEFAULT_RPC_LIMITS,
  decodeRpc,
  emptyOneCopy,
  encodeRpc,
  HELLO_ACK,
  ONE_COPY_FIELD,
  type Rpc,
  RpcLimitError,
} from '../../src/gossip/rpc-codec.ts'
import { decodeDistanceEntry, encodeDistanceEntry } from '../../src/gossip/source-trees.ts'
import {
  gossipOneCopyAllTreesStrategy,
  gossipOneCopySourceTreesStrategy,
  gossipOneCopyStrategy,
  gossipStrategy,
  withPublishers,
} from '../../src/sim/gossip-strategy.ts'
import { runScenario, SCENARIO_TOPIC, type Scenario } from '../../src/sim/scenario.ts'
import { frame, ManualEnv } from './harness.ts'

// One-copy per-source trees (doc/gossip-extension.md, "Per-source trees"): wire, router, flood.

const T = 'blocks'
const S = 'source-peer'
const entry = (source: number, distanceMs: number, parent: boolean) =>
  encodeDistanceEntry({ source, distanceMs, parent })
const distances = (entries: Uint8Array[]) => ({
  ...emptyOneCopy(),
  distances: [{ topicHash: topicHash(T), entries }],
})

describe('source-tree messages on the wire', () => {
  it('roundtrip: distances, ping, pong, source', () => {
    const rpc: Rpc = {
      subscriptions: [],
      messages: [],
      oneCopy: {
        ...distances([entry(7, 12.5, true), entry(9, Number.POSITIVE_INFINITY, false)]),
        ping: 41,
        pong: 42,
        source: peerHashBytes(peerHash(S)),
      },
    }
    const back = decodeRpc(encodeRpc(rpc)).oneCopy!
    expect(back.ping).toBe(41)
    expect(back.pong).toBe(42)
    expect([...back.source!]).toEqual([...peerHashBytes(peerHash(S))])
    expect(back.distances?.[0].entries.map(decodeDistanceEntry)).toEqual([
      { source: 7, distanceMs: 12.5, parent: true },
      { source: 9, distanceMs: Number.POSITIVE_INFINITY, parent: false },
    ])
  })

  it('rejects more than maxDistanceEntries entries, a ragged entry list and a bad source', () => {
    const n = DEFAULT_RPC_LIMITS.maxDistanceEntries
    const many = (k: number) =>
      encodeRpc({
        subscriptions: [],
        messages: [],
        oneCopy: distances(Array.from({ length: k }, (_, i) => entry(i, 1, false))),
      })
    expect(() => decodeRpc(many(n))).not.toThrow()
    expect(() => decodeRpc(many(n + 1))).toThrow(RpcLimitError)
    // One entry cut short: a 5-byte entry list, written by hand (the encoder writes whole ones).
    const w = writer()
    w.uint32((ONE_COPY_FIELD << 3) | 2).fork()
    w.uint32((10 << 3) | 2).fork()
    w.uint32((1 << 3) | 2).bytes(topicHash(T))
    w.uint32((2 << 3) | 2).bytes(new Uint8Array(5))
    w.ldelim()
    w.ldelim()
    expect(() => decodeRpc(w.finish())).toThrow(DecodeError)
    const badSource = { ...emptyOneCopy(), source: new Uint8Array(5) }
    expect(() =>
      decodeRpc(encodeRpc({ subscriptions: [], messages: [], oneCopy: badSource })),
    ).toThrow(DecodeError)
  })
})

/**
 * `peer` connects over meshsub 1.3, negotiates one-copy and subscribes to T; its ACK answers
 * our hello ASK `rttMs` later (the link's first RTT sample).
 */
function join(env: ManualEnv, r: GossipRouter, peer: string, rttMs = 10, sourceTrees = true): void {
  r.peerConnected(peer, { protocol: MESHSUB_1_3, outbound: true })
  r.receive(
    peer,
    frame({
      control: { extensions: sourceTrees ? { oneCopy: true, sourceTrees } : { oneCopy: true } },
      subscriptions: [{ subscribe: true, topic: T }],
    }),
  )
  env.advance(rttMs)
  r.receive(peer, frame({ oneCopy: { ...emptyOneCopy(), hello: HELLO_ACK } }))
}

/**
 * A source-tree router whose peers negotiated one-copy (hello RTT `rttMs`) and are in its mesh,
 * after a heartbeat.
 */
function router(
  peers: string[],
  rttMs = 10,
  over: { oneCopyMaxSources?: number; oneCopySourceTrees?: true | 'all' } = {},
) {
  const env = new ManualEnv()
  const r = new GossipRouter(env, {
    oneCopy: true,
    oneCopySourceTrees: true,
    signaturePolicy: 'StrictNoSign',
    ...over,
  })
  r.start()
  for (const p of peers) join(env, r, p, rttMs)
  r.subscribe(T)
  // A heartbeat sees the mesh: its peers' entries count from then on.
  env.advance(1000)
  env.take()
  return { env, router: r }
}

/** A message of T published by S, relayed by a peer: `source` names S. */
function fromS(n: number): Uint8Array {
  const data = new Uint8Array(256)
  new DataView(data.buffer).setUint32(0, n)
  return frame({
    messages: [{ topic: T, data }],
    oneCopy: { ...emptyOneCopy(), source: peerHashBytes(peerHash(S)) },
  })
}

describe('a source-tree router', () => {
  it('answers a ping with its nonce and, with trees for every member, pings its mesh peers at heartbeats until four samples, then once a minute', () => {
    const { env, router: r } = router(['a'], 10, { oneCopySourceTrees: 'all' })
    r.receive('a', frame({ oneCopy: { ...emptyOneCopy(), ping: 77 } }))
    expect(env.take().map((s) => s.rpc.oneCopy?.pong)).toEqual([77])
    /** Advances until our next ping to `a` (within `withinMs`) and answers it `rttMs` later. */
    const answerNextPing = (withinMs: number, rttMs: number): boolean => {
      for (let t = 0; t < withinMs; t++) {
        env.advance(1)
        const ping = env.take().find((s) => s.rpc.oneCopy?.ping !== undefined)
        if (ping === undefined) continue
        expect(ping.peer).toBe('a')
        env.advance(rttMs)
        r.receive('a', frame({ oneCopy: { ...emptyOneCopy(), pong: ping.rpc.oneCopy!.ping } }))
        return true
      }
      return false
    }
    // The hello gave 10 ms; three pings at the next heartbeats come back in 30, 8 and 30 ms.
    expect(r.getLinkLatency('a')).toBe(5)
    for (const rtt of [30, 8, 30]) expect(answerNextPing(3000, rtt)).toBe(true)
    expect(r.getLinkLatency('a')).toBe(4)
    expect(r.getLinkLatency('nobody')).toBeUndefined()
    // Four samples: no ping for most of a minute, then one.
    expect(answerNextPing(PING_INTERVAL_MS - 3000, 30)).toBe(false)
    expect(answerNextPing(3000, 30)).toBe(true)
    r.receive('a', frame({ oneCopy: distances([entry(peerHash(S), 0, false)]) }))
    // Through `a`: its distance 0 plus half the least of its last four samples (8 ms; no
    // validation configured).
    expect(r.getSourceDistance(T, peerHash(S))).toBeCloseTo(4, 5)
  })

  it("pushes a seen source's messages to the peers that take them through it, announces to the others", () => {
    const peers = ['up', 'child', 'far', 'near']
    const { env, router: r } = router(peers)
    // The first message of S starts its entry; `up` advertises a path to S.
    r.receive('up', encodeRpc({ ...decodeRpc(fromS(0)) }))
    r.receive('up', frame({ oneCopy: distances([entry(peerHash(S), 20, false)]) }))
    env.advance(50)
    // Our distance: 20 + 5 ms (half the RTT) + validation (none configured).
    const ours = r.getSourceDistance(T, peerHash(S))
    expect(ours).toBeCloseTo(25, 5)
    // We told `up` it is our parent, the others that it is not.
    const told = env.take().filter((s) => s.rpc.oneCopy?.distances !== undefined)
    const bits = Object.fromEntries(
      told.map((s) => [
        s.peer,
        decodeDistanceEntry(s.rpc.oneCopy!.distances![0].entries[0]).parent,
      ]),
    )
    expect(bits).toEqual({ up: true, child: false, far: false, near: false })
    r.receive('child', frame({ oneCopy: distances([entry(peerHash(S), ours + 7, true)]) }))
    r.receive('far', frame({ oneCopy: distances([entry(peerHash(S), ours + 7, false)]) }))
    r.receive('near', frame({ oneCopy: distances([entry(peerHash(S), 1, false)]) }))
    env.advance(50)
    env.take()
    // The second message: pushed to `child` only, announced to the other mesh peers but `up`
    // (it sent the copy): the safety net.
    r.receive('up', fromS(1))
    env.advance(50)
    const sent = env.take()
    const pushed = sent.filter((s) => s.rpc.messages.length > 0).map((s) => s.peer)
    const announced = sent
      .filter((s) => (s.rpc.oneCopy?.announce.length ?? 0) > 0)
      .map((s) => s.peer)
    expect(pushed).toEqual(['child'])
    expect(announced.sort()).toEqual(['far', 'near'])
    // The pushed copy names its source for the next hop.
    const push = sent.find((s) => s.rpc.messages.length > 0)!
    expect([...push.rpc.oneCopy!.source!]).toEqual([...peerHashBytes(peerHash(S))])
  })

  it('sends a parent change within 10 ms and a distance that only moved at the slower pace', () => {
    const { env, router: r } = router(['up', 'near', 'far'])
    r.receive('up', fromS(0))
    r.receive('up', frame({ oneCopy: distances([entry(peerHash(S), 20, false)]) }))
    env.advance(400)
    env.take()
    /** When, within the next `ms`, an entry for S went to each peer (ms after now). */
    const sentWithin = (ms: number): Record<string, number> => {
      const at: Record<string, number> = {}
      for (let t = 1; t <= ms; t++) {
        env.advance(1)
        for (const s of env.take()) {
          const es = (s.rpc.oneCopy?.distances ?? []).flatMap((d) => d.entries)
          if (es.some((e) => decodeDistanceEntry(e).source === peerHash(S))) at[s.peer] ??= t
        }
      }
      return at
    }
    // up's path gets 10 ms shorter: ours moves by 40%, parent bits unchanged.
    r.receive('up', frame({ oneCopy: distances([entry(peerHash(S), 10, false)]) }))
    const refined = sentWithin(400)
    expect(Object.keys(refined).sort()).toEqual(['far', 'near', 'up'])
    for (const t of Object.values(refined)) expect(t).toBeGreaterThan(10)
    // near offers a shorter path: the two whose parent bit changes hear within 10 ms.
    r.receive('near', frame({ oneCopy: distances([entry(peerHash(S), 1, false)]) }))
    const moved = sentWithin(10)
    expect(Object.keys(moved).sort()).toEqual(['near', 'up'])
  })

  it('tells each flood target of its own messages, from the second, its place in the send queue, once', () => {
    const { env, router: r } = router(['a', 'b', 'c'])
    // The first message names no source (a once-only publisher costs nothing more).
    r.publish(T, new Uint8Array(256).fill(2))
    const first = env.take()
    expect(first.filter((s) => s.rpc.oneCopy?.distances !== undefined)).toEqual([])
    expect(first.filter((s) => s.rpc.oneCopy?.source !== undefined)).toEqual([])
    r.publish(T, new Uint8Array(256))
    const second = env.take()
    // From the second on, its copies name it as their source.
    const copies = second.filter((s) => s.rpc.messages.length > 0)
    expect(copies.map((s) => [...(s.rpc.oneCopy?.source ?? [])])).toEqual(
      copies.map(() => [...peerHashBytes(peerHash(env.self))]),
    )
    const seeds = second.filter((s) => s.rpc.oneCopy?.distances !== undefined)
    expect(seeds.map((s) => s.peer).sort()).toEqual(['a', 'b', 'c'])
    for (const s of seeds) {
      const e = decodeDistanceEntry(s.rpc.oneCopy!.distances![0].entries[0])
      expect(e.source).toBe(peerHash(env.self))
      expect(e.parent).toBe(false)
    }
    r.publish(T, new Uint8Array(256).fill(1))
    expect(env.take().filter((s) => s.rpc.oneCopy?.distances !== undefined)).toEqual([])
  })
})

describe("source trees for every member ('all')", () => {
  /** An `'all'` router whose peers `a`, `b`, `c` negotiated trees (hello RTT 10 ms) and are in its mesh. */
  function allRouter(rttMs = 10) {
    const env = new ManualEnv()
    const r = new GossipRouter(env, {
      oneCopy: true,
      oneCopySourceTrees: 'all',
      signaturePolicy: 'StrictNoSign',
    })
    r.start()
    for (const p of ['a', 'b', 'c']) join(env, r, p, rttMs)
    r.subscribe(T)
    env.take()
    return { env, router: r }
  }

  it('holds an entry for each measured peer before it publishes and tells the mesh of it', () => {
    const { env, router: r } = allRouter()
    expect(r.getSourceCount(T)).toBe(0)
    env.advance(1100)
    // Each peer's flood reaches us straight: half the RTT (no validation configured).
    for (const p of ['a', 'b', 'c']) expect(r.getSourceDistance(T, peerHash(p))).toBeCloseTo(5, 5)
    const told = env.take().filter((s) => s.rpc.oneCopy?.distances !== undefined)
    for (const p of ['a', 'b', 'c']) {
      const sources = told
        .filter((s) => s.peer === p)
        .flatMap((s) => s.rpc.oneCopy!.distances![0].entries.map(decodeDistanceEntry))
        .map((e) => e.source)
      // Every other peer as a source, before any of them published.
      for (const q of ['a', 'b', 'c']) if (q !== p) expect(sources).toContain(peerHash(q))
    }
  })

  it("follows a source peer's link as pings measure it lower than the hello did", () => {
    // The hellos took 600 ms (the nodes were starting); pings are answered at once.
    const { env, router: r } = allRouter(600)
    let pongs = 0
    for (let t = 0; t < 5000; t++) {
      env.advance(1)
      if (t === 1100) expect(r.getSourceDistance(T, peerHash('a'))).toBeCloseTo(300, 5)
      for (const m of env.take()) {
        if (m.rpc.oneCopy?.ping === undefined) continue
        r.receive(m.peer, frame({ oneCopy: { ...emptyOneCopy(), pong: m.rpc.oneCopy.ping } }))
        pongs++
      }
    }
    expect(pongs).toBeGreaterThan(0)
    // The seed follows the least sample: the pings' round trips (0 ms here).
    expect(r.getSourceDistance(T, peerHash('a'))).toBeCloseTo(0, 5)
  })

  it("pushes a peer's first message only to the peers that take it through us", () => {
    const { env, router: r } = allRouter()
    env.advance(1100)
    env.take()
    // `b` takes S = `a`'s messages through us, `c` does not (it is nearer `a` itself).
    r.receive('b', frame({ oneCopy: distances([entry(peerHash('a'), 12, true)]) }))
    r.receive('c', frame({ oneCopy: distances([entry(peerHash('a'), 4, false)]) }))
    env.advance(50)
    env.take()
    const data = new Uint8Array(256).fill(9)
    r.receive(
      'a',
      frame({
        messages: [{ topic: T, data }],
        oneCopy: { ...emptyOneCopy(), source: peerHashBytes(peerHash('a')) },
      }),
    )
    env.advance(50)
    const sent = env.take()
    expect(sent.filter((s) => s.rpc.messages.length > 0).map((s) => s.peer)).toEqual(['b'])
    expect(
      sent.filter((s) => (s.rpc.oneCopy?.announce.length ?? 0) > 0).map((s) => s.peer),
    ).toEqual(['c'])
  })

  it('pushes to a tree child whose in-links the flood reached, unless the mark names the child', () => {
    const { env, router: r } = allRouter()
    env.advance(1100)
    env.take()
    const hashOf = (p: string) => peerHashBytes(peerHash(p))
    // `b` takes `a`'s messages through us, though its rule-4 in-link `c` is a flood target.
    r.receive(
      'b',
      frame({
        oneCopy: {
          ...distances([entry(peerHash('a'), 12, true)]),
          inLinks: [{ topicHash: topicHash(T), peers: [hashOf('c')], rank: 1 }],
        },
      }),
    )
    r.receive('c', frame({ oneCopy: distances([entry(peerHash('a'), 4, false)]) }))
    env.advance(50)
    env.take()
    const send = (n: number, sentTo: string[]) => {
      const data = new Uint8Array(256).fill(n)
      r.receive(
        'a',
        frame({
          messages: [{ topic: T, data }],
          oneCopy: { ...emptyOneCopy(), source: hashOf('a'), sentTo: sentTo.map(hashOf) },
        }),
      )
      env.advance(50)
      return env
        .take()
        .filter((m) => m.rpc.messages.length > 0)
        .map((m) => m.peer)
    }
    expect(send(1, [env.self, 'c'])).toEqual(['b'])
    // The publisher flooded `b` itself: nothing to push.
    expect(send(2, [env.self, 'b', 'c'])).toEqual([])
  })

  it('tells each flood target its seed before it publishes, and names itself as the source of its first message', () => {
    const { env, router: r } = allRouter()
    env.advance(1100)
    const seeds = env
      .take()
      .filter((m) =>
        m.rpc.oneCopy?.distances?.some((d) =>
          d.entries.some((e) => decodeDistanceEntry(e).source === peerHash(env.self)),
        ),
      )
    expect(seeds.map((m) => m.peer).sort()).toEqual(['a', 'b', 'c'])
    r.publish(T, new Uint8Array(256).fill(3))
    const sent = env.take()
    const copies = sent.filter((m) => m.rpc.messages.length > 0)
    expect(copies.map((m) => m.peer).sort()).toEqual(['a', 'b', 'c'])
    for (const c of copies) {
      expect([...(c.rpc.oneCopy?.source ?? [])]).toEqual([...peerHashBytes(peerHash(env.self))])
    }
    // Their places in the send queue did not move: no seed again.
    expect(sent.filter((m) => m.rpc.oneCopy?.distances !== undefined)).toEqual([])
  })

  it("is refused unless it is true, false or 'all', and so are bad sizes and backup margins", () => {
    const bad = { oneCopy: true, oneCopySourceTrees: 'some' as unknown as boolean }
    expect(() => new GossipRouter(new ManualEnv(), bad)).toThrow(/oneCopySourceTrees/)
    const trees = { oneCopy: true, oneCopySourceTrees: 'all' as const }
    for (const bytes of [-1, 1.5, Number.NaN, 2 ** 40]) {
      expect(
        () => new GossipRouter(new ManualEnv(), { ...trees, oneCopyTopicBytes: { [T]: bytes } }),
      ).toThrow(/oneCopyTopicBytes/)
    }
    for (const ms of [-1, Number.POSITIVE_INFINITY, Number.NaN]) {
      expect(
        () => new GossipRouter(new ManualEnv(), { ...trees, oneCopyTreeBackupMs: ms }),
      ).toThrow(/oneCopyTreeBackupMs/)
    }
  })
})

/** A source-tree router joined by `peers`, each with or without trees in its Extensions. */
function routerWith(peers: [string, boolean][]) {
  const env = new ManualEnv()
  const r = new GossipRouter(env, {
    oneCopy: true,
    oneCopySourceTrees: true,
    signaturePolicy: 'StrictNoSign',
  })
  r.start()
  for (const [peer, trees] of peers) join(env, r, peer, 10, trees)
  r.subscribe(T)
  return { env, router: r }
}

describe('source trees negotiated per link', () => {
  it('send a one-copy peer without them no distances, pings or source', () => {
    const { env, router: r } = routerWith([
      ['on', true],
      ['off', false],
    ])
    const hello = env.take().filter((s) => s.rpc.control?.extensions !== undefined)
    expect(hello.every((s) => s.rpc.control?.extensions?.sourceTrees === true)).toBe(true)
    r.receive('on', fromS(1))
    r.receive('on', fromS(2))
    env.advance(100)
    r.receive('on', frame({ oneCopy: distances([entry(peerHash(S), 5, false)]) }))
    const to = { on: { distances: 0, ping: 0 }, off: { distances: 0, ping: 0, source: 0 } }
    for (let t = 0; t < 70_000; t += 100) {
      env.advance(100)
      if (t === 1000) r.receive('on', fromS(3))
      for (const s of env.take()) {
        const o = s.rpc.oneCopy
        if (s.peer === 'off') {
          if (o?.distances !== undefined) to.off.distances++
          if (o?.ping !== undefined) to.off.ping++
          if (o?.source !== undefined) to.off.source++
        } else if (s.peer === 'on') {
          if (o?.distances !== undefined) to.on.distances++
          if (o?.ping !== undefined) to.on.ping++
        }
      }
    }
    expect(r.getMeshPeers(T).sort()).toEqual(['off', 'on'])
    expect(to.off).toEqual({ distances: 0, ping: 0, source: 0 })
    expect(to.on.ping).toBeGreaterThan(0)
  })

  it('takes a one-copy peer whose Extensions lacked the flag to run trees once it sends tree messages', () => {
    // Its Extensions (with the flag) was lost: it is one-copy through the hello alone.
    const { env, router: r } = routerWith([['lost', false]])
    env.take()
    const rejected: string[] = []
    r.on('rejected', (e) => rejected.push(e.reason))
    const pings = () => {
      let n = 0
      for (let t = 0; t < 70_000; t += 100) {
        env.advance(100)
        for (const s of env.take()) if (s.rpc.oneCopy?.ping !== undefined) n++
      }
      return n
    }
    // Not pinged while it said nothing of trees.
    expect(pings()).toBe(0)
    r.receive('lost', frame({ oneCopy: { ...emptyOneCopy(), ping: 5 } }))
    expect(env.take().map((s) => s.rpc.oneCopy?.pong)).toEqual([5])
    expect(rejected).toEqual([])
    expect(r.getMeshPeers(T)).toEqual(['lost'])
    expect(pings()).toBeGreaterThan(0)
  })
})

describe("a router without trees, and a publisher's own messages", () => {
  it('without trees, counts tree messages against their sender and charges their entries', () => {
    const env = new ManualEnv()
    const r = new GossipRouter(env, { oneCopy: true, signaturePolicy: 'StrictNoSign' })
    r.start()
    join(env, r, 'x', 10, false)
    r.subscribe(T)
    env.take()
    const rejected: string[] = []
    r.on('rejected', (e) => rejected.push(e.reason))
    r.receive('x', frame({ oneCopy: { ...emptyOneCopy(), ping: 5 } }))
    expect(env.take().filter((s) => s.rpc.oneCopy?.pong !== undefined)).toEqual([])
    expect(rejected).toEqual(['source-trees-not-negotiated'])
    // Entries it was never asked for still cost it its `distance` budget: a flood is cut off.
    const full = Array.from({ length: DEFAULT_RPC_LIMITS.maxDistanceEntries }, (_, i) =>
      entry(i + 1, 1, false),
    )
    for (let i = 0; i < 10 && r.getPeers().includes('x'); i++) {
      r.receive('x', frame({ oneCopy: distances(full) }))
    }
    expect(r.getPeers()).not.toContain('x')
  })

  it('never pulls its own message back when the peers the tree did not push to announce it', async () => {
    const { env, router: r } = router(['a', 'b'])
    const { id } = await r.publish(T, new Uint8Array(256).fill(9))
    env.take()
    for (const p of ['a', 'b']) {
      r.receive(
        p,
        frame({
          oneCopy: {
            ...emptyOneCopy(),
            announce: [{ topicHash: topicHash(T), ids: [shortId(id)] }],
          },
        }),
      )
    }
    let asks = 0
    for (let t = 0; t < 2000; t += 10) {
      env.advance(10)
      for (const s of env.take()) asks += s.rpc.oneCopy?.ineed.length ?? 0
    }
    expect(asks).toBe(0)
  })
})

describe('the source table cap', () => {
  it('is at most half of maxDistanceEntries, so a new mesh peer decodes the whole table at the default cap', () => {
    const env = new ManualEnv()
    const over = DEFAULT_RPC_LIMITS.maxDistanceEntries / 2 + 1
    expect(
      () =>
        new GossipRouter(env, { oneCopy: true, oneCopySourceTrees: true, oneCopyMaxSources: over }),
    ).toThrow(/oneCopyMaxSources/)
    const { env: e, router: r } = router(['p0', 'p1', 'p2'])
    const cap = r.params.oneCopyMaxSources
    const { burst } = DEFAULT_PEER_BUDGETS.rates.distance
    for (let next = 0; next < cap; ) {
      const n = Math.min(cap - next, DEFAULT_RPC_LIMITS.maxDistanceEntries, burst / 2)
      r.receive(
        'p0',
        frame({
          oneCopy: distances(Array.from({ length: n }, (_, i) => entry(next + i, 1, false))),
        }),
      )
      next += n
      e.advance(1000)
    }
    expect(r.getSourceCount(T)).toBe(cap)
    e.take()
    join(e, r, 'p3')
    let sent = 0
    for (let t = 0; t < 10_000 && sent < cap; t += 100) {
      e.advance(100)
      // ManualEnv decodes each frame with the default limits: an oversized one throws here.
      for (const s of e.take()) {
        if (s.peer !== 'p3') continue
        for (const d of s.rpc.oneCopy?.distances ?? []) sent += d.entries.length
      }
    }
    expect(r.getMeshPeers(T)).toContain('p3')
    expect(sent).toBe(cap)
  })
})

describe('a Distances flood', () => {
  it('costs a bounded table and cuts off a peer sending full frames of new sources at line rate', () => {
    const maxSources = 2000
    const { env, router: r } = router(['p0', 'p1', 'p2'], 10, { oneCopyMaxSources: maxSources })
    // A source whose messages came, with a path through p0: the flood must not push it out.
    r.receive('p0', fromS(1))
    r.receive('p0', fromS(2))
    r.receive('p0', frame({ oneCopy: distances([entry(peerHash(S), 5, false)]) }))
    const before = r.getSourceDistance(T, peerHash(S))
    expect(before).toBeCloseTo(10, 5)
    const limit = DEFAULT_RPC_LIMITS.maxDistanceEntries
    const { burst, perSecond } = DEFAULT_PEER_BUDGETS.rates.distance
    const reasons = new Set<string>()
    r.on('rejected', ({ from, reason }) => {
      if (from === 'p2') reasons.add(reason)
    })
    let frames = 0
    let next = 0
    for (; frames < 300 && r.getPeers().includes('p2'); frames++) {
      const entries = Array.from({ length: limit }, () => entry(next++, 1, false))
      r.receive('p2', frame({ oneCopy: distances(entries) }))
      expect(r.getSourceCount(T)).toBeLessThanOrEqual(maxSources)
      env.advance(1)
      env.take()
    }
    // Its invented sources evicted only each other (none of their messages came).
    expect(reasons.has('source-table-full')).toBe(false)
    expect(r.getSourceDistance(T, peerHash(S))).toBe(before)
    expect(reasons.has('distance-over-budget')).toBe(true)
    expect(env.disconnected.map((d) => d.peer)).toEqual(['p2'])
    // The burst's worth of full frames (and what refilled meanwhile), then one or two over.
    expect(frames).toBeLessThanOrEqual(
      Math.floor((burst + (perSecond * frames) / 1000) / limit) + 2,
    )
    // Decoding one full frame reads each entry once (plus a few fields), not more.
    expect(r.maxFieldsPerFrame).toBeLessThanOrEqual(DEFAULT_RPC_LIMITS.maxFields)
    for (const p of ['p0', 'p1']) expect(r.getBehaviourPenalty(p)).toBe(0)
  })

  it('counts a frame over maxDistanceEntries against its sender, as malformed, and cuts it off', () => {
    const { env, router: r } = router(['p0', 'p1', 'p2'])
    const over = DEFAULT_RPC_LIMITS.maxDistanceEntries + 1
    const reasons: string[] = []
    r.on('rejected', ({ from, reason }) => {
      if (from === 'p2') reasons.push(reason)
    })
    let frames = 0
    for (; frames < 100 && r.getPeers().includes('p2'); frames++) {
      const entries = Array.from({ length: over }, (_, i) => entry(i, 1, false))
      r.receive('p2', frame({ oneCopy: distances(entries) }))
      env.advance(1)
    }
    expect(reasons[0]).toBe('malformed-frame')
    expect(r.getSourceCount(T)).toBe(0)
    expect(env.disconnected.map((d) => d.peer)).toEqual(['p2'])
    expect(frames).toBeLessThanOrEqual(20)
  })
})

describe('source trees in the simulator', () => {
  const sc: Scenario = {
    name: 'trees',
    description: 'single publisher, source trees',
    nodes: 80,
    topology: 'random-regular',
    degree: 16,
    latencyMs: 20,
    bandwidth: 'unlimited',
    loss: 0,
    messages: 20,
    messageBytes: 256,
    class: 'consensus',
    intervalMs: 200,
    warmupMs: 4000,
    drainMs: 3000,
    seed: 5,
  }

  it("deliver a repeated source's messages with near-zero duplicates, fewer than one-copy alone", async () => {
    /** Duplicates per node of the messages after the first (the first has no tree yet). */
    const run = async (strategy: typeof gossipOneCopyStrategy) => {
      let first: string | undefined
      let later = 0
      const r = await runScenario(
        sc,
        withPublishers(strategy, () => [0]),
        {
          setup: (s) =>
            s.sim.observe((i, core) => {
              core.on('artifact', (a) => {
                first ??= messageIdKey(a.id)
              })
              // Not at the publisher: announces of its own message come back (Known limits).
              core.on('duplicate', (d) => {
                if (messageIdKey(d.id) !== first && i !== 0) later++
              })
            }),
        },
      )
      return { r, later: later / ((sc.messages - 1) * (sc.nodes - 1)) }
    }
    const trees = await run(gossipOneCopySourceTreesStrategy)
    const plain = await run(gossipOneCopyStrategy)
    expect(trees.r.publishErrors).toEqual([])
    expect(trees.r.summary.deliveryRatio).toBe(1)
    expect(trees.later).toBeLessThan(0.05)
    expect(trees.later).toBeLessThan(plain.later)
  })
  it("with trees for every member, deliver random publishers' first messages with fewer duplicates than one-copy alone", async () => {
    // Default publishers: a random node per message, so nearly every message is its source's first.
    const all = await runScenario(sc, gossipOneCopyAllTreesStrategy)
    const plain = await runScenario(sc, gossipOneCopyStrategy)
    expect(all.publishErrors).toEqual([])
    expect(all.summary.deliveryRatio).toBe(1)
    expect(all.summary.duplicates.mean).toBeLessThan(0.1)
    expect(all.summary.duplicates.mean).toBeLessThan(plain.summary.duplicates.mean / 2)
  })

  it('with trees for every member, hold no mesh-delivery deficit (P3) against a tree link: meshes keep their size', async () => {
    // Ethereum-like P3 (a delivery owed about every 20 s); a tree link pushes only what it is
    // our parent for, and many bring nothing for that long.
    const p3 = {
      meshMessageDeliveriesWeight: -10,
      meshMessageDeliveriesDecay: 0.9,
      meshMessageDeliveriesThreshold: 0.1,
      meshMessageDeliveriesActivationMs: 4000,
      meshMessageDeliveriesWindowMs: 2000,
      timeInMeshWeight: 0,
      firstMessageDeliveriesWeight: 0,
    }
    const strategy = gossipStrategy('optimized', 'all-source trees, P3 on', {
      oneCopy: true,
      oneCopySourceTrees: 'all',
      score: { defaultTopic: p3 },
    })
    let negative = 0
    let samples = 0
    const nodes = 24
    const r = await runScenario(
      {
        ...sc,
        nodes,
        degree: 10,
        messages: 40,
        messageBytes: 1000,
        intervalMs: 500,
        warmupMs: 5000,
      },
      strategy,
      {
        setup: ({ sim }) => {
          for (let t = 5000; t < 25_000; t += 250) {
            sim.at(t, () => {
              for (let i = 0; i < nodes; i++) {
                const core = sim.core(i) as unknown as GossipRouter
                for (const p of core.getMeshPeers(SCENARIO_TOPIC)) {
                  samples++
                  if (core.getPeerScore(p) < 0) negative++
                }
              }
            })
          }
        },
      },
    )
    expect(r.summary.deliveryRatio).toBe(1)
    expect(negative).toBe(0)
    // Mean mesh size at D = 8 or more (6.1 when tree links owed deliveries: pruned for them).
    expect(samples / (80 * nodes)).toBeGreaterThanOrEqual(8)
  })

  it('reject and graylist no honest peer with 20 publishers (own messages are never pulled back)', async () => {
    const rejects = new Map<string, number>()
    const r = await runScenario(
      { ...sc, nodes: 100, messages: 200, intervalMs: 20 },
      withPublishers(gossipOneCopySourceTreesStrategy, () =>
        Array.from({ length: 20 }, (_, i) => i),
      ),
      {
        setup: (s) =>
          s.sim.observe((_i, core) => {
            core.on('rejected', (e) => rejects.set(e.reason, (rejects.get(e.reason) ?? 0) + 1))
          }),
      },
    )
    expect(r.publishErrors).toEqual([])
    expect(Object.fromEntries(rejects)).toEqual({})
  })
})
