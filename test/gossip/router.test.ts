import { generateKeyPair, publicKeyFromProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import type { Artifact } from '../../src/common/artifact.ts'
import {
  InvalidParametersError,
  MessageTooLargeError,
  NoPeersError,
} from '../../src/common/errors.ts'
import { contentMessageId, messageIdKey } from '../../src/common/message-id.ts'
import { MAX_DIRECT_PEERS, resolveGossipParams } from '../../src/gossip/params.ts'
import { MESHSUB_1_1, MESHSUB_1_2 } from '../../src/gossip/protocol-ids.ts'
import { GossipRouter, type GossipRouterOptions } from '../../src/gossip/router.ts'
import type { Rpc } from '../../src/gossip/rpc-codec.ts'
import { MessageSigner, verifySignature } from '../../src/gossip/signing.ts'
import { frame, ManualEnv, subscribeFrame } from './harness.ts'

const T = 'blocks'

/** A started router with `n` peers (p0..), all subscribed to `topics`, joined to T. */
function setup(
  options: GossipRouterOptions = {},
  n = 12,
  protocol = MESHSUB_1_2,
  topics: string[] = [T],
) {
  const env = new ManualEnv()
  // A mesh of D at subscribe (not half of it, as gradual grafting does), unless told.
  const router = new GossipRouter(env, { gradualGraft: false, ...options })
  router.start()
  const peers = Array.from({ length: n }, (_, i) => `p${i}`)
  for (const p of peers) {
    router.peerConnected(p, { protocol, outbound: true })
    router.receive(p, subscribeFrame(...topics))
  }
  for (const t of topics) router.subscribe(t)
  env.take()
  const artifacts: Artifact[] = []
  router.on('artifact', (a) => artifacts.push(a))
  return { env, router, peers, artifacts }
}

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill)
const messagesTo = (sent: { peer: string; rpc: Rpc }[]) =>
  sent.filter((s) => s.rpc.messages.length > 0).map((s) => s.peer)
const controlTo = (
  sent: { peer: string; rpc: Rpc }[],
  kind: 'iwant' | 'idontwant' | 'ihave' | 'graft' | 'prune',
) => sent.filter((s) => (s.rpc.control?.[kind].length ?? 0) > 0).map((s) => s.peer)

describe('gossip parameters', () => {
  it('reject impossible combinations with a typed error', () => {
    expect(() => resolveGossipParams({ Dlo: 9 })).toThrow(InvalidParametersError)
    expect(() => resolveGossipParams({ D: 13 })).toThrow(InvalidParametersError)
    expect(() => resolveGossipParams({ Dout: 6 })).toThrow(InvalidParametersError)
    expect(() => resolveGossipParams({ mcacheGossip: 7 })).toThrow(InvalidParametersError)
    expect(() => resolveGossipParams({ heartbeatIntervalMs: 0 })).toThrow(InvalidParametersError)
    expect(() => resolveGossipParams({ maxConcurrentIWant: 0 })).toThrow(InvalidParametersError)
    expect(() => resolveGossipParams({ validationDelayMs: -1 })).toThrow(InvalidParametersError)
    expect(() => resolveGossipParams({ validationDelayMsPerKB: Number.NaN })).toThrow(
      InvalidParametersError,
    )
    expect(() => resolveGossipParams({ maxPendingValidations: 0 })).toThrow(InvalidParametersError)
    expect(() => resolveGossipParams({ thresholds: { publishThreshold: 1 } })).toThrow(
      InvalidParametersError,
    )
    expect(() =>
      resolveGossipParams({ score: { defaultTopic: { firstMessageDeliveriesDecay: 1 } } }),
    ).toThrow(InvalidParametersError)
    expect(() => new GossipRouter(new ManualEnv(), { signaturePolicy: 'StrictSign' })).toThrow(
      InvalidParametersError,
    )
  })

  it('may be given resolved, shared by many routers, but not with parameter options too', () => {
    const params = resolveGossipParams({ profile: 'stock', D: 7 })
    const a = new GossipRouter(new ManualEnv(), { params })
    const b = new GossipRouter(new ManualEnv(), { params })
    expect(a.params).toBe(params)
    expect(b.params).toBe(params)
    expect(() => new GossipRouter(new ManualEnv(), { params, D: 6 })).toThrow(
      InvalidParametersError,
    )
  })

  it('provide the stock and optimized profiles', () => {
    const stock = resolveGossipParams({ profile: 'stock' })
    expect([stock.D, stock.Dlo, stock.Dhi, stock.Dlazy, stock.heartbeatIntervalMs]).toEqual([
      8, 6, 12, 6, 700,
    ])
    expect(stock.idontwant).toBe(false)
    expect(stock.maxConcurrentIWant).toBe(Number.POSITIVE_INFINITY)
    expect(stock.forwardIngress).toBe(true)
    const opt = resolveGossipParams()
    expect([
      opt.heartbeatIntervalMs,
      opt.maxConcurrentIWant,
      opt.idontwant,
      opt.forwardIngress,
    ]).toEqual([1000, 1, true, false])
  })
})

describe('gossip router', () => {
  it('grafts D peers on subscribe and prunes an oversized mesh back to D', () => {
    const env = new ManualEnv()
    // Stock: it grafts all of D at once and takes every GRAFT from a peer it dialled.
    const router = new GossipRouter(env, { profile: 'stock' })
    router.start()
    for (let i = 0; i < 20; i++) {
      router.peerConnected(`p${i}`, { protocol: MESHSUB_1_2, outbound: true })
      router.receive(`p${i}`, subscribeFrame(T))
    }
    router.subscribe(T)
    expect(controlTo(env.take(), 'graft')).toHaveLength(8)
    const outside = Array.from({ length: 20 }, (_, i) => `p${i}`).filter(
      (p) => !router.getMeshPeers(T).includes(p),
    )
    for (const p of outside.slice(0, 6))
      router.receive(p, frame({ control: { graft: [{ topicID: T }] } }))
    expect(router.getMeshPeers(T)).toHaveLength(14)
    env.advance(200)
    expect(router.getMeshPeers(T)).toHaveLength(8)
    expect(controlTo(env.take(), 'prune')).toHaveLength(6)
  })

  it('keeps meshes at D by refusing inbound GRAFTs beyond D (stock takes them up to Dhi)', () => {
    for (const [profile, kept] of [
      ['optimized', 8],
      ['stock', 12],
    ] as const) {
      const env = new ManualEnv()
      const router = new GossipRouter(env, { profile, gradualGraft: false })
      router.start()
      for (let i = 0; i < 20; i++) {
        // Inbound: the peers dialled us, so their GRAFTs are subject to the limit.
        router.peerConnected(`p${i}`, { protocol: MESHSUB_1_2, outbound: i < 8 })
        router.receive(`p${i}`, subscribeFrame(T))
      }
      router.subscribe(T)
      const mesh = router.getMeshPeers(T)
      expect(mesh).toHaveLength(8)
      const inbound = Array.from({ length: 20 }, (_, i) => `p${i}`).filter(
        (p, i) => i >= 8 && !mesh.includes(p),
      )
      env.take()
      for (const p of inbound) router.receive(p, frame({ control: { graft: [{ topicID: T }] } }))
      expect(router.getMeshPeers(T)).toHaveLength(Math.min(kept, 8 + inbound.length))
      expect(controlTo(env.take(), 'prune')).toHaveLength(
        inbound.length - (Math.min(kept, 8 + inbound.length) - 8),
      )
    }
  })

  it('forwards consensus messages to the mesh except the sender, and counts duplicates', () => {
    const { env, router, artifacts } = setup({ profile: 'stock' })
    const mesh = router.getMeshPeers(T)
    const msg = { topic: T, data: bytes(100) }
    router.receive(mesh[0], frame({ messages: [msg] }))
    expect(artifacts).toHaveLength(1)
    expect(artifacts[0].from).toBe(mesh[0])
    expect(messagesTo(env.take()).sort()).toEqual(mesh.slice(1).sort())
    router.receive(mesh[1], frame({ messages: [msg] }))
    expect(artifacts).toHaveLength(1)
    expect(env.take()).toHaveLength(0)
    expect(router.stats().total).toMatchObject({ delivered: 1, duplicates: 1 })
  })

  it('skips peers that sent a duplicate while an async validator was deciding', async () => {
    const { env, router, artifacts } = setup({ profile: 'stock' })
    let decide: (v: 'accept') => void = () => {}
    router.setValidator(T, () => new Promise((resolve) => (decide = resolve)))
    const mesh = router.getMeshPeers(T)
    const msg = { topic: T, data: bytes(100) }
    router.receive(mesh[0], frame({ messages: [msg] }))
    router.receive(mesh[1], frame({ messages: [msg] }))
    router.receive(mesh[2], frame({ messages: [msg] }))
    expect(messagesTo(env.take())).toHaveLength(0)
    decide('accept')
    await Promise.resolve()
    expect(artifacts).toHaveLength(1)
    expect(messagesTo(env.take()).sort()).toEqual(mesh.slice(3).sort())
    expect(router.stats().total).toMatchObject({ delivered: 1, duplicates: 2 })
  })

  it('waits validationDelayMs before forwarding; IDONTWANT leaves at once, duplicate senders are skipped', () => {
    const { env, router, artifacts } = setup({ validationDelayMs: 20 })
    const mesh = router.getMeshPeers(T)
    const msg = { topic: T, data: bytes(2000) }
    router.receive(mesh[0], frame({ messages: [msg] }))
    const before = env.take()
    expect(controlTo(before, 'idontwant').sort()).toEqual(mesh.slice(1).sort())
    expect(messagesTo(before)).toHaveLength(0)
    env.advance(10)
    router.receive(mesh[1], frame({ messages: [msg] }))
    env.advance(9)
    expect(artifacts).toHaveLength(0)
    expect(messagesTo(env.take())).toHaveLength(0)
    env.advance(1)
    expect(artifacts).toHaveLength(1)
    const forwarded = env.take()
    const pushed = messagesTo(forwarded)
    expect(pushed).not.toContain(mesh[0])
    expect(pushed).not.toContain(mesh[1])
    // Eager/lazy split of the optimized profile: the other mesh peers are told by IHAVE.
    expect([...pushed, ...controlTo(forwarded, 'ihave')].sort()).toEqual(mesh.slice(2).sort())
  })

  it('adds validationDelayMsPerKB for the payload size, and bounds the tracked validations', () => {
    const { env, router } = setup({
      profile: 'stock',
      validationDelayMs: 1,
      validationDelayMsPerKB: 2,
      maxPendingValidations: 1,
    })
    const mesh = router.getMeshPeers(T)
    const first = { topic: T, data: bytes(4500, 1) } // 1 + 2 × 4.5 = 10 ms
    const second = { topic: T, data: bytes(4500, 2) }
    router.receive(mesh[0], frame({ messages: [first, second] }))
    router.receive(mesh[1], frame({ messages: [first, second] }))
    env.advance(9)
    expect(messagesTo(env.take())).toHaveLength(0)
    env.advance(1)
    const sent = env.take().filter((s) => s.rpc.messages.length > 0)
    const to = (fill: number) =>
      sent.filter((s) => s.rpc.messages[0].data?.[0] === fill).map((s) => s.peer)
    expect(to(1).sort()).toEqual(mesh.slice(2).sort())
    // Only one validation is tracked at a time: the second message's duplicate sender is
    // not remembered, so it gets a copy back.
    expect(to(2).sort()).toEqual(mesh.slice(1).sort())
  })

  it('publishes ingress to every topic peer; receivers deliver without relaying or advertising', async () => {
    const opts = { topicClasses: { [T]: 'ingress' as const } }
    const { env, router, peers, artifacts } = setup(opts)
    const r = await router.publish(T, bytes(50))
    expect(r.recipients).toBe(peers.length)
    expect(messagesTo(env.take()).sort()).toEqual([...peers].sort())
    router.receive(peers[0], frame({ messages: [{ topic: T, data: bytes(60, 2) }] }))
    expect(artifacts.filter((a) => a.from !== undefined)).toHaveLength(1)
    env.advance(3000)
    const sent = env.take()
    expect(messagesTo(sent)).toHaveLength(0)
    expect(controlTo(sent, 'ihave')).toHaveLength(0)

    // The stock profile relays the same ingress message through its mesh.
    const stock = setup({ ...opts, profile: 'stock' })
    stock.router.receive('p0', frame({ messages: [{ topic: T, data: bytes(60, 2) }] }))
    expect(messagesTo(stock.env.take()).length).toBeGreaterThan(0)
  })

  it('sends IDONTWANT to 1.2 mesh peers before validation, only for large messages', () => {
    const env = new ManualEnv()
    const router = new GossipRouter(env)
    router.start()
    for (let i = 0; i < 10; i++) {
      router.peerConnected(`p${i}`, { protocol: i < 5 ? MESHSUB_1_2 : MESHSUB_1_1, outbound: true })
      router.receive(`p${i}`, subscribeFrame(T))
    }
    router.subscribe(T)
    env.take()
    let validations = 0
    router.setValidator(T, () => {
      validations++
      return new Promise(() => {}) // never decides: IDONTWANT must not wait for it
    })
    const mesh = router.getMeshPeers(T)
    router.receive(mesh[0], frame({ messages: [{ topic: T, data: bytes(2000) }] }))
    expect(validations).toBe(1)
    const sent = env.take()
    const expected = mesh.slice(1).filter((p) => Number(p.slice(1)) < 5)
    expect(controlTo(sent, 'idontwant').sort()).toEqual(expected.sort())
    expect(messagesTo(sent)).toHaveLength(0)
    router.receive(mesh[0], frame({ messages: [{ topic: T, data: bytes(100) }] }))
    expect(controlTo(env.take(), 'idontwant')).toHaveLength(0)
  })

  it('honours IDONTWANT: never forwards that message to the peer, nor replies to its IWANT', async () => {
    const { env, router, peers } = setup({ profile: 'stock' })
    const mesh = router.getMeshPeers(T)
    const data = bytes(1000)
    const id = contentMessageId(T, data)
    router.receive(mesh[1], frame({ control: { idontwant: [{ messageIDs: [id] }] } }))
    router.receive(mesh[0], frame({ messages: [{ topic: T, data }] }))
    const forwarded = messagesTo(env.take())
    expect(forwarded).not.toContain(mesh[1])
    expect(forwarded).toHaveLength(mesh.length - 2)
    const other = peers.find((p) => !mesh.includes(p))!
    router.receive(
      other,
      frame({ control: { idontwant: [{ messageIDs: [id] }], iwant: [{ messageIDs: [id] }] } }),
    )
    expect(messagesTo(env.take())).toHaveLength(0)
    router.receive(mesh[2], frame({ control: { iwant: [{ messageIDs: [id] }] } }))
    expect(messagesTo(env.take())).toEqual([mesh[2]])
  })

  it('drops a queued IWANT reply when IDONTWANT arrives before it is sent', () => {
    // 80 kbit/s: ten bytes per millisecond, so the second reply waits about 100 ms.
    const { env, router, peers } = setup({ uploadBps: 80_000, profile: 'stock' }, 12)
    const mesh = router.getMeshPeers(T)
    const a = bytes(1000, 1)
    const b = bytes(1000, 2)
    router.receive(
      mesh[0],
      frame({
        messages: [
          { topic: T, data: a },
          { topic: T, data: b },
        ],
      }),
    )
    env.advance(2000)
    env.take()
    const asker = peers.find((p) => !mesh.includes(p))!
    const ids = [contentMessageId(T, a), contentMessageId(T, b)]
    router.receive(asker, frame({ control: { iwant: [{ messageIDs: ids }] } }))
    expect(messagesTo(env.take())).toEqual([asker])
    router.receive(asker, frame({ control: { idontwant: [{ messageIDs: [ids[1]] }] } }))
    env.advance(5000)
    expect(messagesTo(env.take())).toHaveLength(0)
    expect(router.cancelledByIDontWant).toBe(1)
  })

  it('bounds concurrent IWANTs to α, asks the next advertiser after the follow-up time, cancels on arrival', () => {
    const { env, router, peers } = setup({ iwantFollowupMs: 500 }, 12)
    const mesh = router.getMeshPeers(T)
    const [a, b, c] = peers.filter((p) => !mesh.includes(p))
    const data = bytes(300, 3)
    const id = contentMessageId(T, data)
    router.receive(a, frame({ control: { ihave: [{ topicID: T, messageIDs: [id] }] } }))
    router.receive(b, frame({ control: { ihave: [{ topicID: T, messageIDs: [id] }] } }))
    expect(controlTo(env.take(), 'iwant')).toEqual([a])
    env.advance(510)
    expect(controlTo(env.take(), 'iwant')).toEqual([b])
    expect(router.stats().invalidByPeer[a]).toBe(1) // broken promise
    router.receive(b, frame({ messages: [{ topic: T, data }] }))
    router.receive(c, frame({ control: { ihave: [{ topicID: T, messageIDs: [id] }] } }))
    env.advance(2000)
    expect(controlTo(env.take(), 'iwant')).toHaveLength(0)
    expect(router.stats().invalidByPeer[b]).toBeUndefined()

    // Arrival by the mesh cancels the pending request and its alternates.
    const data2 = bytes(300, 4)
    const id2 = contentMessageId(T, data2)
    router.receive(a, frame({ control: { ihave: [{ topicID: T, messageIDs: [id2] }] } }))
    router.receive(c, frame({ control: { ihave: [{ topicID: T, messageIDs: [id2] }] } }))
    router.receive(mesh[0], frame({ messages: [{ topic: T, data: data2 }] }))
    env.take()
    env.advance(2000)
    expect(controlTo(env.take(), 'iwant')).toHaveLength(0)
    expect(router.stats().invalidByPeer[a]).toBe(1)
  })

  it('asks every advertiser at once in the stock profile', () => {
    const { env, router, peers } = setup({ profile: 'stock' }, 12)
    const mesh = router.getMeshPeers(T)
    const [a, b] = peers.filter((p) => !mesh.includes(p))
    const id = contentMessageId(T, bytes(10))
    router.receive(a, frame({ control: { ihave: [{ topicID: T, messageIDs: [id] }] } }))
    router.receive(b, frame({ control: { ihave: [{ topicID: T, messageIDs: [id] }] } }))
    expect(controlTo(env.take(), 'iwant').sort()).toEqual([a, b].sort())
  })

  it('answers a GRAFT during backoff with PRUNE and a penalty', () => {
    const { env, router } = setup()
    const [p] = router.getMeshPeers(T)
    router.receive(
      p,
      frame({ control: { prune: [{ topicID: T, peers: [{ peerID: bytes(5) }], backoff: 60 }] } }),
    )
    expect(router.getMeshPeers(T)).not.toContain(p)
    router.receive(p, frame({ control: { graft: [{ topicID: T }] } }))
    expect(router.getMeshPeers(T)).not.toContain(p)
    expect(controlTo(env.take(), 'prune')).toEqual([p])
    expect(router.stats().invalid['graft-during-backoff']).toBe(1)
    env.advance(5000)
    expect(router.getMeshPeers(T)).not.toContain(p) // backoff respected by the heartbeat too
  })

  it('counts malformed frames, oversized messages, topic floods and IHAVE floods against the sender', async () => {
    const { env, router, artifacts } = setup(
      { maxMessageSize: 1000, maxTopicsPerPeer: 10, maxIHaveMessages: 2 },
      12,
    )
    const rejected: string[] = []
    router.on('rejected', (e) => rejected.push(e.reason))
    router.receive('p0', new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f]))
    router.receive('p1', frame({ messages: [{ topic: T, data: bytes(2000) }] }))
    router.receive('p2', subscribeFrame(...Array.from({ length: 20 }, (_, i) => `t${i}`)))
    const ihave = frame({ control: { ihave: [{ topicID: T, messageIDs: [bytes(20, 9)] }] } })
    for (let i = 0; i < 3; i++) router.receive('p3', ihave)
    expect(rejected).toEqual([
      'malformed-frame',
      'message-too-large',
      'too-many-topics',
      'ihave-flood',
    ])
    expect(router.getTopicPeers('t15')).not.toContain('p2')
    expect(router.getTopicPeers('t5')).toContain('p2')
    await expect(router.publish(T, bytes(2000))).rejects.toBeInstanceOf(MessageTooLargeError)
    await expect(router.publish('nobody', bytes(10))).rejects.toBeInstanceOf(NoPeersError)
    // Still correct afterwards.
    router.receive(router.getMeshPeers(T)[0], frame({ messages: [{ topic: T, data: bytes(10) }] }))
    expect(artifacts).toHaveLength(1)
    env.take()
  })

  it('rejects what the validator rejects, lowers the score and ignores a graylisted peer', () => {
    const { router, artifacts } = setup()
    router.setValidator(T, (a) => (a.data[0] === 0 ? 'reject' : 'accept'))
    for (let i = 0; i < 5; i++) {
      router.receive('p0', frame({ messages: [{ topic: T, data: new Uint8Array([0, i]) }] }))
    }
    // Three invalid messages put p0 below the graylist threshold: the rest is not even read.
    expect(router.stats().total.rejected).toBe(3)
    expect(router.getPeerScore('p0')).toBeLessThan(-80)
    router.receive('p0', frame({ messages: [{ topic: T, data: new Uint8Array([1]) }] }))
    expect(artifacts).toHaveLength(0)
    expect(router.stats().invalid.graylisted).toBe(3)
    router.receive('p1', frame({ messages: [{ topic: T, data: new Uint8Array([1]) }] }))
    expect(artifacts).toHaveLength(1)
  })

  it('signs with StrictSign and rejects tampered signatures', async () => {
    const ours = await generateKeyPair('Ed25519')
    const theirs = await generateKeyPair('Ed25519')
    const {
      env,
      router,
      artifacts: all,
    } = setup({ signaturePolicy: 'StrictSign', privateKey: ours })
    const received = () => all.filter((a) => a.from !== undefined)
    await router.publish(T, bytes(10))
    const sent = env.take().find((s) => s.rpc.messages.length > 0)!.rpc.messages[0]
    expect(sent.seqno).toHaveLength(8)
    expect(await verifySignature(sent, publicKeyFromProtobuf(sent.key!))).toBe(true)

    const signer = new MessageSigner(theirs, 1n)
    const good = await signer.sign(T, bytes(20, 5))
    router.receive('p0', frame({ messages: [good] }))
    expect(received()).toHaveLength(1)
    expect(received()[0].origin).toBe(peerIdFromPrivateKey(theirs).toString())
    const bad = await signer.sign(T, bytes(20, 6))
    router.receive('p1', frame({ messages: [{ ...bad, data: bytes(20, 7) }] }))
    expect(router.stats().invalid['bad-signature']).toBe(1)
    router.receive('p2', frame({ messages: [{ topic: T, data: bytes(3) }] }))
    expect(router.stats().invalid['missing-seqno']).toBe(1)
    expect(received()).toHaveLength(1)
  })

  it('forwards to direct peers unconditionally and keeps them out of the mesh and its gossip', () => {
    const { env, router, artifacts } = setup({ directPeers: ['d0'] }, 12)
    router.peerConnected('d0', { protocol: MESHSUB_1_2, outbound: false })
    router.receive('d0', subscribeFrame(T))
    // A GRAFT from a direct peer is an error on its side: answered with PRUNE.
    router.receive('d0', frame({ control: { graft: [{ topicID: T }] } }))
    expect(controlTo(env.take(), 'prune')).toEqual(['d0'])
    expect(router.stats().invalid['graft-from-direct-peer']).toBe(1)
    const mesh = router.getMeshPeers(T)
    // Relayed to the mesh and to the direct peer.
    const relayed = { topic: T, data: bytes(10, 3) }
    router.receive(mesh[0], frame({ messages: [relayed] }))
    expect(messagesTo(env.take()).sort()).toEqual([...mesh.slice(1), 'd0'].sort())
    // From the direct peer: relayed to the mesh, not back.
    router.receive('d0', frame({ messages: [{ topic: T, data: bytes(10, 4) }] }))
    expect(messagesTo(env.take()).sort()).toEqual([...mesh].sort())
    // Heartbeats with a dwindling mesh: others are grafted and sent IHAVE, d0 never.
    for (const p of mesh.slice(0, 3)) router.peerDisconnected(p)
    const grafted: string[] = []
    const advertised: string[] = []
    for (let i = 0; i < 5; i++) {
      env.advance(1000)
      const sent = env.take()
      grafted.push(...controlTo(sent, 'graft'))
      advertised.push(...controlTo(sent, 'ihave'))
    }
    expect(grafted.length).toBeGreaterThan(0)
    expect(advertised.length).toBeGreaterThan(0)
    expect(grafted).not.toContain('d0')
    expect(advertised).not.toContain('d0')
    expect(router.getMeshPeers(T)).not.toContain('d0')
    // Published messages go to the direct peer too.
    return router.publish(T, bytes(10, 5)).then(() => {
      expect(messagesTo(env.take())).toContain('d0')
      expect(artifacts).toHaveLength(2)
    })
  })

  it('never graylists a direct peer', () => {
    const { router, artifacts } = setup({ directPeers: ['p0'] })
    router.setValidator(T, (a) => (a.data[0] === 0 ? 'reject' : 'accept'))
    for (let i = 0; i < 5; i++) {
      router.receive('p0', frame({ messages: [{ topic: T, data: new Uint8Array([0, i]) }] }))
    }
    expect(router.getPeerScore('p0')).toBeLessThan(-80)
    expect(router.stats().total.rejected).toBe(5)
    router.receive('p0', frame({ messages: [{ topic: T, data: new Uint8Array([1]) }] }))
    expect(artifacts).toHaveLength(1)
    expect(router.stats().invalid.graylisted ?? 0).toBe(0)
  })

  it('rejects more than MAX_DIRECT_PEERS direct peers or empty keys', () => {
    expect(() => resolveGossipParams({ directPeers: [''] })).toThrow(InvalidParametersError)
    const many = Array.from({ length: MAX_DIRECT_PEERS + 1 }, (_, i) => `d${i}`)
    expect(() => resolveGossipParams({ directPeers: many })).toThrow(InvalidParametersError)
    expect(resolveGossipParams({ directPeers: ['d0'] }).directPeers).toEqual(['d0'])
  })

  it('sends IHAVE gossip for consensus messages to non-mesh peers on the heartbeat', () => {
    const { env, router } = setup({}, 20)
    const mesh = router.getMeshPeers(T)
    const data = bytes(10, 8)
    router.receive(mesh[0], frame({ messages: [{ topic: T, data }] }))
    env.take()
    env.advance(1100)
    const ihaves = env.take().filter((s) => (s.rpc.control?.ihave.length ?? 0) > 0)
    expect(ihaves.length).toBeGreaterThanOrEqual(6)
    for (const s of ihaves) {
      expect(mesh).not.toContain(s.peer)
      expect(s.rpc.control!.ihave[0].messageIDs.map(messageIdKey)).toContain(
        messageIdKey(contentMessageId(T, data)),
      )
    }
  })

  it('pushes to every mesh peer without the one-copy extension by default, as stock does', () => {
    const { env, router } = setup({}, 16)
    const mesh = router.getMeshPeers(T)
    router.receive(mesh[0], frame({ messages: [{ topic: T, data: bytes(20_000) }] }))
    expect(messagesTo(env.take()).sort()).toEqual(mesh.slice(1).sort())
  })

  it('pushes large messages to eagerPushPeers mesh peers and announces them to the rest', () => {
    const { env, router } = setup({ eagerPushPeers: 4 }, 16)
    const mesh = router.getMeshPeers(T)
    router.receive(mesh[0], frame({ messages: [{ topic: T, data: bytes(20_000) }] }))
    const sent = env.take()
    const pushed = messagesTo(sent)
    const announced = controlTo(sent, 'ihave')
    expect(pushed).toHaveLength(4)
    expect([...pushed, ...announced].sort()).toEqual(mesh.slice(1).sort())
  })

  it('sizes the eager push to what the uplink sends within eagerPushBudgetMs', () => {
    const relay = (uploadBps: number) => {
      const { env, router } = setup({ uploadBps, eagerPushPeers: 2, eagerPushBudgetMs: 35 }, 16)
      const mesh = router.getMeshPeers(T)
      router.receive(mesh[0], frame({ messages: [{ topic: T, data: bytes(20_000) }] }))
      env.advance(1000)
      return { mesh, pushed: messagesTo(env.take()) }
    }
    // 10 Mbit/s: a 20 KB copy takes 16 ms, so two fit in 35 ms; 1 Gbit/s: all of them do.
    expect(relay(10e6).pushed).toHaveLength(2)
    const fast = relay(1e9)
    expect(fast.pushed.sort()).toEqual(fast.mesh.slice(1).sort())
  })

  it('ranks first the eager peers whose IDONTWANT did not follow our push', () => {
    const { env, router } = setup({ eagerPushPeers: 4 }, 20)
    const mesh = router.getMeshPeers(T)
    const first = { topic: T, data: bytes(20_000, 1) }
    router.receive(mesh[0], frame({ messages: [first] }))
    const pushed = messagesTo(env.take())
    expect(pushed).toHaveLength(4)
    // All but one of them had it from someone else: they answer with IDONTWANT.
    const [needed, ...wasted] = pushed
    const id = contentMessageId(T, first.data)
    for (const p of wasted)
      router.receive(p, frame({ control: { idontwant: [{ messageIDs: [id] }] } }))
    router.receive(mesh[0], frame({ messages: [{ topic: T, data: bytes(20_000, 2) }] }))
    const next = messagesTo(env.take())
    expect(next).toContain(needed)
    // The one random exploring slot may pick a demoted peer, the ranked slots do not.
    expect(next.filter((p) => wasted.includes(p)).length).toBeLessThanOrEqual(1)
  })

  it('waits lazyPullDelayMs before pulling a message a mesh peer announced', () => {
    const { env, router } = setup({}, 16)
    const mesh = router.getMeshPeers(T)
    const a = bytes(20_000, 1)
    const b = bytes(20_000, 2)
    const announce = (data: Uint8Array) =>
      frame({ control: { ihave: [{ topicID: T, messageIDs: [contentMessageId(T, data)] }] } })
    router.receive(mesh[0], announce(a))
    router.receive(mesh[1], announce(b))
    expect(controlTo(env.take(), 'iwant')).toHaveLength(0)
    router.receive(mesh[2], frame({ messages: [{ topic: T, data: b }] }))
    env.take()
    env.advance(60)
    // Only the message that did not arrive by push is pulled.
    const pulls = env.take().filter((s) => (s.rpc.control?.iwant.length ?? 0) > 0)
    expect(pulls.map((s) => s.peer)).toEqual([mesh[0]])
    expect(messageIdKey(pulls[0].rpc.control!.iwant[0].messageIDs[0])).toBe(
      messageIdKey(contentMessageId(T, a)),
    )
  })

  it('publishes to D fanout peers of a topic it has not joined, and forgets them after the TTL', async () => {
    const env = new ManualEnv()
    const router = new GossipRouter(env, { floodPublish: false, fanoutTtlMs: 5000 })
    router.start()
    for (let i = 0; i < 15; i++) {
      router.peerConnected(`p${i}`, { protocol: MESHSUB_1_2, outbound: true })
      router.receive(`p${i}`, subscribeFrame('other'))
    }
    const first = await router.publish('other', bytes(10, 1))
    expect(first.recipients).toBe(8)
    const fanout = router.getFanoutPeers('other').sort()
    expect(messagesTo(env.take()).sort()).toEqual(fanout)
    await router.publish('other', bytes(10, 2))
    expect(messagesTo(env.take()).sort()).toEqual(fanout)
    env.advance(6000)
    expect(router.getFanoutPeers('other')).toEqual([])
    // Flood publish (the default) sends one's own message to every topic peer.
    const flood = setup({}, 15)
    await flood.router.publish(T, bytes(10, 3))
    expect(messagesTo(flood.env.take())).toHaveLength(15)
  })

  it('grafts a better-scoring peer opportunistically when the mesh median score is low', () => {
    const { env, router, peers } = setup({ opportunisticGraftTicks: 1 }, 20)
    const outsider = peers.find((p) => !router.getMeshPeers(T).includes(p))!
    for (let i = 0; i < 5; i++) {
      router.receive(outsider, frame({ messages: [{ topic: T, data: bytes(10, 100 + i) }] }))
    }
    expect(router.getPeerScore(outsider)).toBeGreaterThan(2)
    env.take()
    env.advance(150)
    expect(router.getMeshPeers(T)).toContain(outsider)
    expect(controlTo(env.take(), 'graft')).toEqual([outsider])
  })
})
