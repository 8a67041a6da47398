import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { DecodeError } from '../../src/common/errors.ts'
import {
  bytesKey,
  FloodReach,
  peerHash,
  peerHashBytes,
  shortId,
  topicHash,
} from '../../src/gossip/one-copy.ts'
import { DEFAULT_PEER_BUDGETS } from '../../src/gossip/peer-budget.ts'
import { MESHSUB_1_3 } from '../../src/gossip/protocol-ids.ts'
import { GossipRouter } from '../../src/gossip/router.ts'
import {
  DEFAULT_RPC_LIMITS,
  decodeRpc,
  emptyOneCopy,
  encodeRpc,
  HELLO_ACK,
  type Rpc,
  RpcLimitError,
  type RpcMessage,
} from '../../src/gossip/rpc-codec.ts'
import { MessageSigner } from '../../src/gossip/signing.ts'
import { frame, ManualEnv } from './harness.ts'

// One-copy rule 2's flood mark (`sentTo`) and in-link lists (`inLinks`), doc/gossip-extension.md.

const T = 'blocks'
const hashOf = (peer: string) => peerHashBytes(peerHash(peer))
const msg = (n: number) => ({ topic: T, data: new Uint8Array(300).fill(n) })

/** `peer` connects over meshsub 1.3, negotiates one-copy and subscribes to T. */
function join(r: GossipRouter, peer: string): void {
  r.peerConnected(peer, { protocol: MESHSUB_1_3, outbound: true })
  const hello = frame({
    control: { extensions: { oneCopy: true } },
    subscriptions: [{ subscribe: true, topic: T }],
  })
  r.receive(peer, hello)
  r.receive(peer, frame({ oneCopy: { ...emptyOneCopy(), hello: HELLO_ACK } }))
}

/** A one-copy router whose `n` peers all negotiated one-copy and subscribe to T. */
function router(n: number) {
  const env = new ManualEnv()
  const r = new GossipRouter(env, { oneCopy: true, signaturePolicy: 'StrictNoSign' })
  r.start()
  const peers = Array.from({ length: n }, (_, i) => `p${i}`)
  for (const p of peers) join(r, p)
  r.subscribe(T)
  env.take()
  return { env, router: r, peers }
}

const pushedTo = (sent: { peer: string; rpc: Rpc }[]) =>
  sent
    .filter((s) => s.rpc.messages.length > 0)
    .map((s) => s.peer)
    .sort()
const announcedTo = (sent: { peer: string; rpc: Rpc }[]) =>
  sent
    .filter((s) => (s.rpc.oneCopy?.announce.length ?? 0) > 0)
    .map((s) => s.peer)
    .sort()

describe('the flood mark and in-link lists on the wire', () => {
  it('roundtrip, with limits on peer hashes and their length', () => {
    const rpc: Rpc = {
      subscriptions: [],
      messages: [],
      oneCopy: {
        ...emptyOneCopy(),
        sentTo: [hashOf('a'), hashOf('b')],
        inLinks: [
          { topicHash: topicHash(T), peers: [hashOf('c')], rank: 0 },
          { topicHash: topicHash(T), peers: [] },
        ],
      },
    }
    expect(decodeRpc(encodeRpc(rpc))).toEqual(rpc)
    const many = (n: number) =>
      encodeRpc({
        subscriptions: [],
        messages: [],
        oneCopy: { ...emptyOneCopy(), sentTo: Array.from({ length: n }, (_, i) => hashOf(`${i}`)) },
      })
    expect(() => decodeRpc(many(DEFAULT_RPC_LIMITS.maxPeerHashes))).not.toThrow()
    expect(() => decodeRpc(many(DEFAULT_RPC_LIMITS.maxPeerHashes + 1))).toThrow(RpcLimitError)
    const bad = encodeRpc({
      subscriptions: [],
      messages: [],
      oneCopy: { ...emptyOneCopy(), sentTo: [new Uint8Array(4)] },
    })
    // The 4-byte hash's length prefix, made 3.
    const at = bad.lastIndexOf(4)
    const cut = new Uint8Array([...bad.subarray(0, at), 3, ...bad.subarray(at + 1, bad.length - 1)])
    cut[at - 2] -= 1 // the OneCopy container's length
    expect(() => decodeRpc(cut)).toThrow(DecodeError)
  })
})

describe('a flood-marked message', () => {
  it('carries its mark in replies to INEED', () => {
    const { env, router: r } = router(4)
    let id: Uint8Array | undefined
    r.on('artifact', (a) => {
      id = a.id
    })
    r.receive(
      'p0',
      frame({ messages: [msg(2)], oneCopy: { ...emptyOneCopy(), sentTo: [hashOf('p1')] } }),
    )
    env.take()
    expect(id).toBeDefined()
    r.receive('p3', frame({ oneCopy: { ...emptyOneCopy(), ineed: [shortId(id!)] } }))
    const reply = env.take().find((s) => s.peer === 'p3' && s.rpc.messages.length > 0)
    expect(reply?.rpc.oneCopy?.sentTo?.map(bytesKey)).toEqual([bytesKey(hashOf('p1'))])
  })

  it('is announced, not pushed, to the mesh peers its publisher sent it to', () => {
    const { env, router: r } = router(4)
    const m = msg(1)
    r.receive(
      'p0',
      frame({ messages: [m], oneCopy: { ...emptyOneCopy(), sentTo: [hashOf('p1')] } }),
    )
    const sent = env.take()
    expect(pushedTo(sent)).toEqual(['p2', 'p3'])
    expect(announcedTo(sent)).toEqual(['p1'])
    // The mark goes on with the pushes, so the next hop skips p1 too.
    const onward = sent.find((s) => s.peer === 'p2')!.rpc.oneCopy?.sentTo?.map(bytesKey)
    expect(onward).toEqual([bytesKey(hashOf('p1'))])
  })

  it('is announced to a peer that ranks an in-link the flood reached before us, pushed to the others', () => {
    const { env, router: r } = router(6)
    const [from, reached, z, w, ...rest] = r.getMeshPeers(T)
    expect(w).toBeDefined()
    const inLinks = (rank: number, ...peers: string[]) =>
      frame({
        oneCopy: {
          ...emptyOneCopy(),
          inLinks: [{ topicHash: topicHash(T), peers: peers.map(hashOf), rank }],
        },
      })
    // z takes pushes from `reached` before us; w from a peer the flood did not reach.
    r.receive(z, inLinks(1, reached))
    r.receive(w, inLinks(1, 'elsewhere'))
    const mark = { ...emptyOneCopy(), sentTo: [hashOf(reached)] }
    r.receive(from, frame({ messages: [msg(2)], oneCopy: mark }))
    const sent = env.take()
    expect(pushedTo(sent)).toEqual([w, ...rest].sort())
    expect(announcedTo(sent)).toEqual([reached, z].sort())
    // An unmarked message is pushed as before.
    r.receive(from, frame({ messages: [msg(3)] }))
    expect(pushedTo(env.take())).toEqual([reached, z, w, ...rest].sort())
  })
})

/** {@link router} with StrictSign: peers are named by their peer ids and sign their messages. */
async function signedRouter(n: number) {
  const env = new ManualEnv()
  const r = new GossipRouter(env, {
    oneCopy: true,
    signaturePolicy: 'StrictSign',
    privateKey: await generateKeyPair('Ed25519'),
  })
  r.start()
  const signers = new Map<string, MessageSigner>()
  for (let i = 0; i < n; i++) {
    const key = await generateKeyPair('Ed25519')
    signers.set(peerIdFromPrivateKey(key).toString(), new MessageSigner(key, 1n))
  }
  const peers = [...signers.keys()]
  for (const p of peers) join(r, p)
  r.subscribe(T)
  env.take()
  const signed = (p: string, n: number) => signers.get(p)!.sign(T, msg(n).data) as RpcMessage
  return { env, router: r, peers, signed }
}

const messagesTo = (sent: { peer: string; rpc: Rpc }[]) =>
  sent.filter((s) => s.rpc.messages.length > 0)

describe('a publisher', () => {
  it('marks its flood once its own first copies show the flood reaches far, and only then', async () => {
    const { env, router: r, peers, signed } = await signedRouter(10)
    r.publish(T, new Uint8Array(300).fill(100))
    expect(messagesTo(env.take()).every((s) => s.rpc.oneCopy?.sentTo === undefined)).toBe(true)
    // 8 messages whose first copy came straight from their origin: the flood reaches far.
    for (let i = 0; i < 8; i++) r.receive(peers[i], frame({ messages: [signed(peers[i], 10 + i)] }))
    env.take()
    r.publish(T, new Uint8Array(300).fill(101))
    const sent = messagesTo(env.take())
    expect(sent).toHaveLength(10)
    const hashes = peers.map((p) => bytesKey(hashOf(p))).sort()
    for (const s of sent) expect(s.rpc.oneCopy?.sentTo?.map(bytesKey).sort()).toEqual(hashes)
  })

  it('does not mark when its first copies come through others (the flood reaches few)', async () => {
    const { env, router: r, peers, signed } = await signedRouter(10)
    // Each message relayed by the next peer, not its origin.
    for (let i = 0; i < 16; i++) {
      r.receive(peers[(i + 1) % 10], frame({ messages: [signed(peers[i % 10], 10 + i)] }))
    }
    env.take()
    r.publish(T, new Uint8Array(300).fill(102))
    const sent = messagesTo(env.take())
    expect(sent.length).toBeGreaterThan(0)
    expect(sent.every((s) => s.rpc.oneCopy?.sentTo === undefined)).toBe(true)
  })

  it('does not mark unsigned messages: first copies from outside the mesh say too little', () => {
    // 12 topic peers, a mesh of D = 8: 4 peers outside it (the old estimate's flood roots).
    const { env, router: r } = router(12)
    const mesh = new Set(r.getMeshPeers(T))
    const outside = [...Array(12).keys()].map((i) => `p${i}`).filter((p) => !mesh.has(p))
    expect(outside.length).toBeGreaterThan(0)
    for (let i = 0; i < 32; i++) {
      r.receive(outside[i % outside.length], frame({ messages: [msg(10 + i)] }))
    }
    env.take()
    r.publish(T, new Uint8Array(300).fill(103))
    const sent = messagesTo(env.take())
    expect(sent.length).toBeGreaterThan(0)
    expect(sent.every((s) => s.rpc.oneCopy?.sentTo === undefined)).toBe(true)
  })

  it('does not pull its own marked message when announces bring it back', async () => {
    const { env, router: r, peers, signed } = await signedRouter(4)
    for (let i = 0; i < 8; i++)
      r.receive(peers[i % 4], frame({ messages: [signed(peers[i % 4], 10 + i)] }))
    env.take()
    const data = new Uint8Array(300).fill(104)
    const { id } = await r.publish(T, data)
    expect(messagesTo(env.take()).every((s) => s.rpc.oneCopy?.sentTo !== undefined)).toBe(true)
    const announce = { topicHash: topicHash(T), ids: [shortId(id)] }
    r.receive(peers[1], frame({ oneCopy: { ...emptyOneCopy(), announce: [announce] } }))
    env.advance(1000)
    expect(env.take().filter((s) => (s.rpc.oneCopy?.ineed.length ?? 0) > 0)).toEqual([])
  })
})

describe('FloodReach with signed messages', () => {
  it('estimates the reach from first copies straight from their origin, after 8 messages', () => {
    const reach = new FloodReach()
    // 1 of 7 straight from the origin: not enough seen yet, nor enough evidence to mark early.
    for (let i = 0; i < 7; i++) reach.arrived(T, false, i === 6)
    expect(reach.marksFlood(T, 10, 10)).toBe(false)
    reach.arrived(T, false, true)
    // 2 of 8 (f = 0.25): marked, and a root pushes to ⌈1/f − 1⌉ = 3 mesh peers.
    expect(reach.marksFlood(T, 10, 10)).toBe(true)
    expect(reach.rootPushes(T, 10, 8)).toBe(3)
    // 1,000 nodes: 1 in 20 straight from the origin, not marked.
    const large = new FloodReach()
    for (let i = 0; i < 64; i++) large.arrived(T, false, i % 20 === 0)
    expect(large.marksFlood(T, 50, 8)).toBe(false)
  })

  it('marks early, from 4 signed messages, once 2 came straight from their origin', () => {
    const reach = new FloodReach()
    reach.arrived(T, false, true)
    reach.arrived(T, false, true)
    reach.arrived(T, false, false)
    // 3 messages: too few, however many came straight.
    expect(reach.marksFlood(T, 10, 10)).toBe(false)
    reach.arrived(T, false, false)
    expect(reach.marksFlood(T, 10, 10)).toBe(true)
    // The root's push is still sized only from 8 messages on.
    expect(reach.rootPushes(T, 10, 8)).toBe(Number.POSITIVE_INFINITY)
    // An unsigned message in the window: never marked.
    const unsigned = new FloodReach()
    for (let i = 0; i < 5; i++) unsigned.arrived(T, false, i < 2)
    unsigned.arrived(T, true)
    expect(unsigned.marksFlood(T, 10, 10)).toBe(false)
  })
})

describe('a sentTo flood', () => {
  /** `n` distinct hashes on the wire, from `seed`. */
  const hashes = (n: number, seed: number) =>
    Array.from({ length: n }, (_, i) => peerHashBytes((seed * 7919 + i * 104_729) >>> 0))

  it('keeps the flood marks bounded and cuts off a peer sending full 1,024-hash marks at line rate', () => {
    const { env, router: r } = router(3)
    const limit = DEFAULT_RPC_LIMITS.maxPeerHashes
    const { burst, perSecond } = DEFAULT_PEER_BUDGETS.rates.mark
    const reasons = new Set<string>()
    r.on('rejected', ({ from, reason }) => {
      if (from === 'p2') reasons.add(reason)
    })
    let n = 0
    let frames = 0
    // Frames of 4 new 1 KB messages, one a millisecond, every frame a full mark, until cut off.
    for (; frames < 300 && r.getPeers().includes('p2'); frames++) {
      const messages = Array.from({ length: 4 }, () => {
        const data = new Uint8Array(1024)
        new DataView(data.buffer).setUint32(0, n++)
        return { topic: T, data }
      })
      r.receive(
        'p2',
        frame({ messages, oneCopy: { ...emptyOneCopy(), sentTo: hashes(limit, frames) } }),
      )
      const held = r.getFloodMarkCount()
      expect(held.messages).toBeLessThanOrEqual(256)
      // One list per frame, shared by its messages: 64 lists of 1,024 hashes at most, not 256.
      expect(held.peerHashes).toBeLessThanOrEqual((256 / 4) * limit)
      env.advance(1)
      env.take()
    }
    expect(reasons.has('mark-over-budget')).toBe(true)
    expect(env.disconnected.map((d) => d.peer)).toEqual(['p2'])
    // The burst's worth of full marks (and what refilled meanwhile), a frame over by less than
    // the cut-off overdraft (strikes), then the frame that cuts off.
    const withinBudget = Math.floor((burst + (perSecond * frames) / 1000) / limit)
    expect(frames).toBeLessThanOrEqual(withinBudget + 2)
    expect(frames).toBeGreaterThan(Math.floor(burst / limit))
    // The frames within the budget were delivered: valid messages are not lost to the budget.
    expect(r.stats().total.delivered).toBeGreaterThanOrEqual(4 * Math.floor(burst / limit))
    for (const p of ['p0', 'p1']) expect(r.getBehaviourPenalty(p)).toBe(0)
  })

  it('counts a frame over maxPeerHashes against its sender, as malformed, and cuts it off', () => {
    const { env, router: r } = router(3)
    const over = DEFAULT_RPC_LIMITS.maxPeerHashes + 1
    const reasons: string[] = []
    r.on('rejected', ({ from, reason }) => {
      if (from === 'p2') reasons.push(reason)
    })
    let frames = 0
    for (; frames < 100 && r.getPeers().includes('p2'); frames++) {
      const data = new Uint8Array(1024)
      new DataView(data.buffer).setUint32(0, frames)
      r.receive(
        'p2',
        frame({
          messages: [{ topic: T, data }],
          oneCopy: { ...emptyOneCopy(), sentTo: hashes(over, frames) },
        }),
      )
      env.advance(1)
    }
    expect(reasons[0]).toBe('malformed-frame')
    // Nothing of a refused frame is kept: no message, no mark.
    expect(r.stats().total.delivered).toBe(0)
    expect(r.getFloodMarkCount()).toEqual({ messages: 0, peerHashes: 0 })
    expect(env.disconnected.map((d) => d.peer)).toEqual(['p2'])
    expect(frames).toBeLessThanOrEqual(20)
    for (const p of ['p0', 'p1']) expect(r.getBehaviourPenalty(p)).toBe(0)
  })
})

describe('a relayed sentTo flood', () => {
  it("costs the flooders' relay nothing at the next hop: the relay passes on marks within what it would take", () => {
    // Relay B between two flooders (x, y) and honest A, all one-copy; B's frames to A go to
    // A's router, as they would over the wire.
    const b = router(2)
    for (const f of ['x', 'y']) join(b.router, f)
    const a = router(0)
    join(a.router, 'B')
    a.router.subscribe(T)
    const rejectedB: string[] = []
    a.router.on('rejected', ({ from, reason }) => {
      if (from === 'B') rejectedB.push(reason)
    })
    const limit = DEFAULT_RPC_LIMITS.maxPeerHashes
    let n = 0
    let relayed = 0
    // Each flooder sends one new 1 KB message a frame, every frame a full mark, 5 ms apart,
    // until B cuts it off.
    for (let t = 0; t < 300 && b.router.getPeers().some((p) => p === 'x' || p === 'y'); t++) {
      for (const f of ['x', 'y'].filter((p) => b.router.getPeers().includes(p))) {
        const data = new Uint8Array(1024)
        new DataView(data.buffer).setUint32(0, n++)
        const sentTo = Array.from({ length: limit }, (_, i) =>
          peerHashBytes((n * 7919 + i * 104_729) >>> 0),
        )
        b.router.receive(
          f,
          frame({ messages: [{ topic: T, data }], oneCopy: { ...emptyOneCopy(), sentTo } }),
        )
      }
      for (const s of b.env.take()) {
        if (s.peer !== 'p0') continue
        relayed += s.rpc.oneCopy?.sentTo?.length ?? 0
        a.router.receive('B', encodeRpc(s.rpc))
      }
      b.env.advance(5)
      a.env.advance(5)
    }
    expect(b.env.disconnected.map((d) => d.peer).sort()).toEqual(['x', 'y'])
    // A got the messages B relayed, marked up to half of A's budget for B, and did not hold
    // B's relaying against it (before B kept to an allowance, A cut B off here).
    expect(a.router.stats().total.delivered).toBeGreaterThan(0)
    expect(relayed).toBeGreaterThan(0)
    expect(relayed).toBeLessThanOrEqual(DEFAULT_PEER_BUDGETS.rates.mark.burst)
    expect(rejectedB).toEqual([])
    expect(a.router.getBehaviourPenalty('B')).toBe(0)
    expect(a.router.getPeers()).toContain('B')
  })
})
