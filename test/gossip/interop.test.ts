import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Message } from '@libp2p/gossipsub'
import {
  type GossipSub,
  type GossipsubOpts,
  gossipsub,
  TopicValidatorResult,
} from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import type { Artifact } from '../../src/core/artifact.ts'
import { MESHSUB_1_1, MESHSUB_1_2, MESHSUB_1_3 } from '../../src/gossip/protocol-ids.ts'
import {
  type GossipService,
  type GossipServiceOptions,
  gossip,
} from '../../src/libp2p/gossip-service.ts'
import { connect, createTestNode, waitFor } from '../support/libp2p-node.ts'

type Ours = Libp2p<{ dissemination: GossipService }>
/** The stock router: its public interface plus the mesh accessor its class has. */
type StockPubsub = GossipSub & { getMeshPeers(topic: string): string[] }
type Stock = Libp2p<{ pubsub: StockPubsub }>

function isOurs(node: Ours | Stock): node is Ours {
  return 'dissemination' in node.services
}

const C = 'consensus-topic'
const I = 'ingress-topic'
const FAST = { heartbeatIntervalMs: 100, heartbeatInitialDelayMs: 50 }

let running: Libp2p[] = []

afterEach(async () => {
  await Promise.all(running.map((n) => n.stop()))
  running = []
})

async function ours(options: GossipServiceOptions = {}): Promise<Ours> {
  const node = (await createTestNode({
    dissemination: gossip({ ...FAST, topicClasses: { [I]: 'ingress' }, ...options }),
  })) as unknown as Ours
  running.push(node)
  return node
}

async function stock(options: Partial<GossipsubOpts> = {}): Promise<Stock> {
  const node = (await createTestNode({
    pubsub: gossipsub({
      heartbeatInterval: 100,
      // Every test peer shares 127.0.0.1: without this, P6 keeps meshes from forming.
      scoreParams: { IPColocationFactorWeight: 0 },
      ...options,
    }),
  })) as unknown as Stock
  running.push(node)
  return node
}

const id = (n: Libp2p) => n.peerId.toString()

/** Collects what each node delivers. */
function received(node: Ours | Stock): Uint8Array[] {
  const got: Uint8Array[] = []
  if (isOurs(node)) {
    node.services.dissemination.on('artifact', (a: Artifact) => {
      if (a.from !== undefined) got.push(a.data)
    })
  } else {
    node.services.pubsub.addEventListener('message', (e: CustomEvent<Message>) =>
      got.push(e.detail.data),
    )
  }
  return got
}

function meshOf(node: Ours | Stock, topic: string): string[] {
  if (isOurs(node)) return node.services.dissemination.core.getMeshPeers(topic)
  return node.services.pubsub.getMeshPeers(topic)
}

function subscribe(node: Ours | Stock, topic: string): void {
  if (isOurs(node)) node.services.dissemination.subscribe(topic)
  else node.services.pubsub.subscribe(topic)
}

async function fullyConnect(nodes: Libp2p[]): Promise<void> {
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) await connect(nodes[i], nodes[j])
  }
}

const text = (s: string) => new TextEncoder().encode(s)

describe('interop with stock @libp2p/gossipsub over TCP', () => {
  it('forms a mixed mesh and carries consensus and ingress messages both ways', async () => {
    const o1 = await ours()
    const o2 = await ours()
    const s1 = await stock()
    const s2 = await stock()
    const nodes = [o1, o2, s1, s2]
    await fullyConnect(nodes)
    for (const n of nodes) {
      subscribe(n, C)
      subscribe(n, I)
    }
    await waitFor(() => nodes.every((n) => meshOf(n, C).length === 3), 10_000, 'a full mixed mesh')
    expect(o1.services.dissemination.core.getPeerProtocol(id(s1))).toBe(MESHSUB_1_2)
    const got = nodes.map(received)

    await o1.services.dissemination.publish(C, text('from ours'))
    await s1.services.pubsub.publish(C, text('from stock'))
    await waitFor(
      () => got.every((g, i) => g.length === (i === 0 || i === 2 ? 1 : 2)),
      5000,
      'consensus delivery',
    )

    const before = o1.services.dissemination.stats().sent.payloadBytes
    await o1.services.dissemination.publish(I, text('ingress from ours'), { class: 'ingress' })
    await s1.services.pubsub.publish(I, text('ingress from stock'))
    await waitFor(
      () => got.every((g, i) => g.length === (i === 0 || i === 2 ? 2 : 4)),
      5000,
      'ingress delivery',
    )
    // Our node sent its own ingress message to its 3 peers and relayed nobody's.
    const sentPayload = o1.services.dissemination.stats().sent.payloadBytes - before
    expect(sentPayload).toBe(3 * 'ingress from ours'.length)
    const texts = got.map((g) => g.map((d) => new TextDecoder().decode(d)).sort())
    expect(texts[3]).toEqual(['from ours', 'from stock', 'ingress from ours', 'ingress from stock'])
  })

  it('stock peers honour our IDONTWANT', async () => {
    // X publishes to O and S at once; S validates slowly, so by the time it forwards, O's
    // IDONTWANT (sent on first receipt) is there: S must skip O. Without IDONTWANT, O
    // gets S's copy as a duplicate.
    for (const idontwant of [true, false]) {
      const x = await ours()
      const o = await ours({ idontwant })
      const s = await stock()
      s.services.pubsub.topicValidators.set(C, async () => {
        await new Promise((r) => setTimeout(r, 300))
        return 'accept' as never
      })
      await fullyConnect([x, o, s])
      for (const n of [x, o, s]) subscribe(n, C)
      await waitFor(() => [x, o, s].every((n) => meshOf(n, C).length === 2), 10_000, 'mesh')
      const got = received(o)
      await x.services.dissemination.publish(C, new Uint8Array(4000).fill(7))
      await waitFor(() => got.length === 1, 5000, 'delivery')
      await new Promise((r) => setTimeout(r, 600))
      const stats = o.services.dissemination.stats()
      if (idontwant) {
        expect(stats.control.IDONTWANT?.sent).toBeGreaterThanOrEqual(1)
        expect(stats.total.duplicates).toBe(0)
      } else {
        expect(stats.control.IDONTWANT?.sent ?? 0).toBe(0)
        expect(stats.total.duplicates).toBe(1)
      }
      await Promise.all([x, o, s].map((n) => n.stop()))
      running = []
    }
  })

  it('we honour the IDONTWANT of stock peers', async () => {
    // X publishes to O and S; S sends IDONTWANT to O at once; O validates slowly and then
    // must not forward to S. With IDONTWANT off at S, O does send S its copy. S validates
    // slower still, so its own relayed copy cannot be what keeps O from sending.
    for (const stockSendsIDontWant of [true, false]) {
      const x = await ours()
      const o = await ours()
      const s = await stock(stockSendsIDontWant ? {} : { idontwantMinDataSize: 1 << 30 })
      s.services.pubsub.topicValidators.set(
        C,
        () => new Promise((r) => setTimeout(() => r(TopicValidatorResult.Accept), 1000)),
      )
      o.services.dissemination.setValidator(
        C,
        () => new Promise((r) => setTimeout(() => r('accept'), 300)),
      )
      await fullyConnect([x, o, s])
      for (const n of [x, o, s]) subscribe(n, C)
      await waitFor(() => [x, o, s].every((n) => meshOf(n, C).length === 2), 10_000, 'mesh')
      const got = received(o)
      await x.services.dissemination.publish(C, new Uint8Array(4000).fill(9))
      await waitFor(() => got.length === 1, 5000, 'delivery')
      await new Promise((r) => setTimeout(r, 200))
      const stats = o.services.dissemination.stats()
      if (stockSendsIDontWant) {
        expect(stats.control.IDONTWANT?.received).toBeGreaterThanOrEqual(1)
        expect(stats.sent.payloadBytes).toBe(0)
      } else {
        expect(stats.sent.payloadBytes).toBe(4000)
      }
      await Promise.all([x, o, s].map((n) => n.stop()))
      running = []
    }
  })

  it('stays correct when a stock peer floods topics, advertises unknown ids and prunes with PX', async () => {
    const o = await ours({ maxTopicsPerPeer: 100, iwantFollowupMs: 200 })
    const s = await stock({ doPX: true })
    const s2 = await stock()
    await fullyConnect([o, s, s2])
    for (const n of [o, s, s2]) subscribe(n, C)
    await waitFor(() => meshOf(o, C).length === 2, 10_000, 'mesh')
    const router = o.services.dissemination.core

    for (let t = 0; t < 150; t++) s.services.pubsub.subscribe(`extra-${t}`)
    await waitFor(
      () => (o.services.dissemination.stats().invalid['too-many-topics'] ?? 0) > 0,
      5000,
      'topic cap',
    )
    expect(router.getTopicPeers('extra-10')).toContain(id(s))

    // Peer exchange offers the peers s knows in C: make sure it knows s2 first.
    await waitFor(
      () => s.services.pubsub.getSubscribers(C).some((p) => p.toString() === id(s2)),
      5000,
      's to see s2 in the topic',
    )
    s.services.pubsub.unsubscribe(C)
    await waitFor(
      () => (o.services.dissemination.stats().control.PRUNE?.received ?? 0) >= 1,
      5000,
      'PRUNE with peer exchange',
    )
    expect(meshOf(o, C)).not.toContain(id(s))
    expect(
      o.services.dissemination.stats().control['PRUNE px peers']?.received,
    ).toBeGreaterThanOrEqual(1)

    const unknown = Array.from({ length: 20 }, (_, i) => new Uint8Array(40).fill(i + 1))
    const internals = s.services.pubsub as unknown as {
      sendRpc(peer: string, rpc: unknown): boolean
    }
    internals.sendRpc(id(o), {
      subscriptions: [],
      messages: [],
      control: {
        ihave: [{ topicID: C, messageIDs: unknown }],
        iwant: [],
        graft: [],
        prune: [],
        idontwant: [],
      },
    })
    await waitFor(
      () => (o.services.dissemination.stats().invalid['broken-iwant-promise'] ?? 0) === 20,
      5000,
      'broken promises',
    )
    expect(o.services.dissemination.stats().control['IWANT ids']?.sent).toBe(20)

    const fromStock = received(o)
    const fromOurs = received(s2)
    await s2.services.pubsub.publish(C, text('still fine?'))
    await o.services.dissemination.publish(C, text('still fine!'))
    await waitFor(
      () => fromStock.length === 1 && fromOurs.length === 1,
      5000,
      'delivery after abuse',
    )
    expect(router.getPeers()).toContain(id(s))
  })

  it('negotiates meshsub 1.3 and one-copy between our nodes, 1.2 with a stock peer, in one mesh', async () => {
    const mine = [await ours(), await ours(), await ours()]
    const s1 = await stock()
    const nodes = [...mine, s1]
    await fullyConnect(nodes)
    for (const n of nodes) subscribe(n, C)
    await waitFor(() => nodes.every((n) => meshOf(n, C).length === 3), 10_000, 'a full mixed mesh')
    const core = (n: Ours) => n.services.dissemination.core
    for (const a of mine) {
      expect(core(a).getPeerProtocol(id(s1))).toBe(MESHSUB_1_2)
      expect(core(a).speaksOneCopy(id(s1))).toBe(false)
      for (const b of mine) {
        if (a === b) continue
        expect(core(a).getPeerProtocol(id(b))).toBe(MESHSUB_1_3)
        await waitFor(() => core(a).speaksOneCopy(id(b)), 5000, 'Extensions exchanged')
      }
    }
    const got = nodes.map(received)
    // Messages from every node, one at a time: duplicates among ours turn links lazy.
    for (let m = 0; m < 12; m++) {
      const from = nodes[m % nodes.length]
      const data = text(`message ${m}`)
      if (isOurs(from)) await from.services.dissemination.publish(C, data)
      else await from.services.pubsub.publish(C, data)
      await waitFor(
        () => got.every((g, i) => g.length === m + 1 - (Math.floor(m / 4) + (i <= m % 4 ? 1 : 0))),
        5000,
        `delivery of message ${m}`,
      )
    }
    expect(mine.some((n) => core(n).getLazyLinkCount(C) > 0)).toBe(true)
    // The stock peer got every message of the others.
    expect(got[3]).toHaveLength(9)
  })

  it('falls back to meshsub 1.1 with a 1.1-only stock peer and sends it no IDONTWANT', async () => {
    const legacy = (await createLibp2p({
      start: false,
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        pubsub: gossipsub({ heartbeatInterval: 100, scoreParams: { IPColocationFactorWeight: 0 } }),
      },
    })) as unknown as Stock
    // The stock router's protocol list, cut down to 1.1 before it registers its handlers.
    ;(legacy.services.pubsub as unknown as { protocols: string[] }).protocols = [MESHSUB_1_1]
    await legacy.start()
    running.push(legacy)
    // A slow validator keeps the legacy peer from relaying before x's copy reaches o.
    legacy.services.pubsub.topicValidators.set(C, async () => {
      await new Promise((r) => setTimeout(r, 300))
      return 'accept' as never
    })
    const x = await ours()
    const o = await ours()
    await fullyConnect([x, o, legacy])
    for (const n of [x, o, legacy]) subscribe(n, C)
    await waitFor(() => [x, o, legacy].every((n) => meshOf(n, C).length === 2), 10_000, 'mesh')
    expect(o.services.dissemination.core.getPeerProtocol(id(legacy))).toBe(MESHSUB_1_1)
    expect(o.services.dissemination.core.getPeerProtocol(id(x))).toBe(MESHSUB_1_3)
    const got = received(legacy)
    await x.services.dissemination.publish(C, new Uint8Array(4000).fill(5))
    await waitFor(() => got.length === 1, 5000, 'delivery to the 1.1 peer')
    // o's only IDONTWANT candidate besides the sender x is the 1.1 peer: nothing is sent.
    expect(o.services.dissemination.stats().control.IDONTWANT?.sent ?? 0).toBe(0)
  })
})
