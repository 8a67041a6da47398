import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Message } from '@libp2p/gossipsub'
import {
  type GossipSub,
  type GossipsubOpts,
  gossipsub,
  TopicValidatorResult,
} from '@libp2p/gossipsub'
import { createTopicScoreParams } from '@libp2p/gossipsub/score'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import type { Artifact } from '../../src/common/artifact.ts'
import { MESHSUB_1_1, MESHSUB_1_2, MESHSUB_1_3 } from '../../src/gossip/protocol-ids.ts'
import {
  type GossipService,
  type GossipServiceOptions,
  gossip,
} from '../../src/libp2p/gossip-service.ts'
import { connect, createTestNode } from '../support/libp2p-node.ts'
import { type Wake, waitFor } from '../support/wait.ts'

type Ours = Libp2p<{ dissemination: GossipService }>
/** The stock router: its public interface plus the mesh accessor its class has. */
type StockPubsub = GossipSub & {
  getMeshPeers(topic: string): string[]
  getScore(peer: string): number
}
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

/** The event each kind of node fires on delivering a message. */
const artifacts = (n: Ours): Wake => [n.services.dissemination, 'artifact']
const messages = (n: Stock): Wake => [n.services.pubsub as unknown as EventTarget, 'message']

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
    await waitFor(() => nodes.every((n) => meshOf(n, C).length === 3), {
      what: 'a full mixed mesh',
    })
    expect(o1.services.dissemination.core.getPeerProtocol(id(s1))).toBe(MESHSUB_1_2)
    const got = nodes.map(received)

    await o1.services.dissemination.publish(C, text('from ours'))
    await s1.services.pubsub.publish(C, text('from stock'))
    await waitFor(() => got.every((g, i) => g.length === (i === 0 || i === 2 ? 1 : 2)), {
      what: 'consensus delivery',
    })

    const before = o1.services.dissemination.stats().sent.payloadBytes
    await o1.services.dissemination.publish(I, text('ingress from ours'), { class: 'ingress' })
    await s1.services.pubsub.publish(I, text('ingress from stock'))
    await waitFor(() => got.every((g, i) => g.length === (i === 0 || i === 2 ? 2 : 4)), {
      what: 'ingress delivery',
    })
    // Our node sent its own ingress message to its 3 peers and relayed nobody's.
    const sentPayload = o1.services.dissemination.stats().sent.payloadBytes - before
    expect(sentPayload).toBe(3 * 'ingress from ours'.length)
    const texts = got.map((g) => g.map((d) => new TextDecoder().decode(d)).sort())
    expect(texts[3]).toEqual(['from ours', 'from stock', 'ingress from ours', 'ingress from stock'])
  })

  it('stock peers honour our IDONTWANT', async () => {
    // X publishes to O and S at once; S's validation waits until O's IDONTWANT (sent on
    // first receipt) is there, so S must skip O. Without IDONTWANT it waits until O has the
    // message from X, and O gets S's copy as a duplicate.
    for (const idontwant of [true, false]) {
      const x = await ours()
      const o = await ours({ idontwant })
      const s = await stock()
      const got = received(o)
      const atS = received(s)
      const heldByS = s.services.pubsub as unknown as {
        idontwants: Map<string, Map<string, number>>
      }
      s.services.pubsub.topicValidators.set(C, async () => {
        await waitFor(
          () =>
            idontwant
              ? (heldByS.idontwants.get(id(o))?.size ?? 0) > 0 // stock emits nothing for it
              : got.length === 1,
          {
            what: idontwant ? "O's IDONTWANT at S" : 'delivery at O',
            ...(idontwant ? {} : { wakeOn: [artifacts(o)] }),
          },
        )
        return 'accept' as never
      })
      await fullyConnect([x, o, s])
      for (const n of [x, o, s]) subscribe(n, C)
      await waitFor(() => [x, o, s].every((n) => meshOf(n, C).length === 2), { what: 'mesh' })
      await x.services.dissemination.publish(C, new Uint8Array(4000).fill(7))
      await waitFor(() => got.length === 1, { what: 'delivery', wakeOn: [artifacts(o)] })
      // A barrier instead of a sleep: S relays on delivering, then sends O a message of its
      // own on the same stream; once O has that, S's relay (if any) has arrived before it.
      await waitFor(() => atS.length === 1, { what: 'delivery at S', wakeOn: [messages(s)] })
      await s.services.pubsub.publish(C, text('barrier'))
      await waitFor(() => got.length === 2, { what: 'the barrier at O', wakeOn: [artifacts(o)] })
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
    // X publishes to O and S; S sends IDONTWANT to O at once; O's validation waits for it
    // and then O must not forward to S. With IDONTWANT off at S, O does send S its copy. S
    // validates only once O has delivered, so its own relayed copy cannot be what keeps O
    // from sending.
    for (const stockSendsIDontWant of [true, false]) {
      const x = await ours()
      const o = await ours()
      const s = await stock(stockSendsIDontWant ? {} : { idontwantMinDataSize: 1 << 30 })
      const got = received(o)
      s.services.pubsub.topicValidators.set(C, async () => {
        await waitFor(() => got.length === 1, { what: 'delivery at O', wakeOn: [artifacts(o)] })
        return TopicValidatorResult.Accept
      })
      o.services.dissemination.setValidator(C, async () => {
        if (stockSendsIDontWant) {
          // Our stats emit nothing: polled.
          await waitFor(
            () => (o.services.dissemination.stats().control.IDONTWANT?.received ?? 0) >= 1,
            { what: "S's IDONTWANT at O" },
          )
        }
        return 'accept' as const
      })
      await fullyConnect([x, o, s])
      for (const n of [x, o, s]) subscribe(n, C)
      await waitFor(() => [x, o, s].every((n) => meshOf(n, C).length === 2), { what: 'mesh' })
      await x.services.dissemination.publish(C, new Uint8Array(4000).fill(9))
      // O forwards (and counts what it sends) before it delivers: no wait beyond delivery.
      await waitFor(() => got.length === 1, { what: 'delivery', wakeOn: [artifacts(o)] })
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
    await waitFor(() => meshOf(o, C).length === 2, { what: 'mesh' })
    const router = o.services.dissemination.core

    for (let t = 0; t < 150; t++) s.services.pubsub.subscribe(`extra-${t}`)
    await waitFor(() => (o.services.dissemination.stats().invalid['too-many-topics'] ?? 0) > 0, {
      what: 'topic cap',
    })
    expect(router.getTopicPeers('extra-10')).toContain(id(s))

    // Peer exchange offers the peers s knows in C: make sure it knows s2 first.
    await waitFor(() => s.services.pubsub.getSubscribers(C).some((p) => p.toString() === id(s2)), {
      what: 's to see s2 in the topic',
    })
    s.services.pubsub.unsubscribe(C)
    await waitFor(() => (o.services.dissemination.stats().control.PRUNE?.received ?? 0) >= 1, {
      what: 'PRUNE with peer exchange',
    })
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
    // One IWANT for the 20 ids, one promise: broken once, as stock gossipsub counts it.
    await waitFor(
      () => (o.services.dissemination.stats().invalid['broken-iwant-promise'] ?? 0) === 1,
      { what: 'broken promises' },
    )
    expect(o.services.dissemination.stats().control['IWANT ids']?.sent).toBe(20)

    const fromStock = received(o)
    const fromOurs = received(s2)
    await s2.services.pubsub.publish(C, text('still fine?'))
    await o.services.dissemination.publish(C, text('still fine!'))
    await waitFor(() => fromStock.length === 1 && fromOurs.length === 1, {
      what: 'delivery after abuse',
    })
    expect(router.getPeers()).toContain(id(s))
  })

  it('negotiates meshsub 1.3 and one-copy between our nodes, 1.2 with a stock peer, in one mesh', async () => {
    const mine = [
      await ours({ oneCopy: true }),
      await ours({ oneCopy: true }),
      await ours({ oneCopy: true }),
    ]
    const s1 = await stock()
    const nodes = [...mine, s1]
    await fullyConnect(nodes)
    for (const n of nodes) subscribe(n, C)
    await waitFor(() => nodes.every((n) => meshOf(n, C).length === 3), {
      what: 'a full mixed mesh',
      timeoutMs: 10_000,
    })
    const core = (n: Ours) => n.services.dissemination.core
    for (const a of mine) {
      expect(core(a).getPeerProtocol(id(s1))).toBe(MESHSUB_1_2)
      expect(core(a).speaksOneCopy(id(s1))).toBe(false)
      for (const b of mine) {
        if (a === b) continue
        expect(core(a).getPeerProtocol(id(b))).toBe(MESHSUB_1_3)
        await waitFor(() => core(a).speaksOneCopy(id(b)), {
          what: 'Extensions exchanged',
          timeoutMs: 5000,
        })
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
        { what: `delivery of message ${m}`, timeoutMs: 5000 },
      )
    }
    expect(mine.some((n) => core(n).getLazyLinkCount(C) > 0)).toBe(true)
    // The stock peer got every message of the others.
    expect(got[3]).toHaveLength(9)
  })

  it('mixed mesh with one-copy: every message everywhere, and stock peers scoring P3 never score ours below 0', async () => {
    // Only P3 (and P3b) move a score: a peer that under-delivers goes negative at once. A peer
    // that brings every message keeps ~10 per message a second (decay 0.9 a second), so the
    // threshold holds on a slow machine too (≥ 0.2 messages a second).
    const p3 = createTopicScoreParams({
      topicWeight: 1,
      timeInMeshWeight: 0,
      firstMessageDeliveriesWeight: 0,
      meshMessageDeliveriesWeight: -1,
      meshMessageDeliveriesDecay: 0.9,
      meshMessageDeliveriesThreshold: 2,
      meshMessageDeliveriesCap: 20,
      meshMessageDeliveriesActivation: 1000,
      // Any copy within 5 s counts: a loaded machine (the whole suite on 2 cores) brings a
      // relayed copy well after the first, and P3 should judge forwarding, not machine speed.
      meshMessageDeliveriesWindow: 5000,
      meshFailurePenaltyWeight: -1,
    })
    const mine = [] as Ours[]
    const stocks = [] as Stock[]
    for (let i = 0; i < 4; i++) {
      mine.push(await ours({ oneCopy: true }))
      stocks.push(
        await stock({
          scoreParams: { IPColocationFactorWeight: 0, decayInterval: 1000, topics: { [C]: p3 } },
        }),
      )
    }
    const nodes = [...mine, ...stocks]
    // Fully connected, with each node dialled by at most 4 others: libp2p accepts at most 5
    // inbound connections a second from one host (here 127.0.0.1).
    for (let step = 1; step <= 4; step++) {
      for (let i = 0; i < (step === 4 ? 4 : 8); i++) await connect(nodes[i], nodes[(i + step) % 8])
    }
    for (const n of nodes) subscribe(n, C)
    const core = (n: Ours) => n.services.dissemination.core
    await waitFor(
      () =>
        nodes.every((n) => meshOf(n, C).length >= 4) &&
        mine.every((a) => mine.every((b) => a === b || core(a).speaksOneCopy(id(b)))),
      { what: 'a mixed mesh with one-copy negotiated among ours', timeoutMs: 10_000 },
    )
    expect(core(mine[0]).getPeerProtocol(id(mine[1]))).toBe(MESHSUB_1_3)
    expect(core(mine[0]).getPeerProtocol(id(stocks[0]))).toBe(MESHSUB_1_2)

    const ourIds = new Set(mine.map(id))
    type TopicStats = { meshMessageDeliveriesActive: boolean; meshMessageDeliveries: number }
    const statsAt = (s: Stock) =>
      (
        s.services.pubsub as unknown as {
          score: { peerStats: Map<string, { topics: Record<string, TopicStats> }> }
        }
      ).score.peerStats
    /** Ours in each stock mesh, and whether P3 already applies to each. */
    const oursInStockMeshes = () =>
      stocks.flatMap((s) =>
        meshOf(s, C)
          .filter((p) => ourIds.has(p))
          .map((p) => ({
            s,
            p,
            active: statsAt(s).get(p)?.topics[C]?.meshMessageDeliveriesActive === true,
          })),
      )
    const got = nodes.map(() => new Set<number>())
    for (const [i, n] of nodes.entries()) {
      const note = (data: Uint8Array) =>
        got[i].add(new DataView(data.buffer, data.byteOffset).getUint32(0))
      if (isOurs(n))
        n.services.dissemination.on(
          'artifact',
          (a: Artifact) => a.from !== undefined && note(a.data),
        )
      else
        n.services.pubsub.addEventListener('message', (e: CustomEvent<Message>) =>
          note(e.detail.data),
        )
    }
    const wake: Wake[] = nodes.map((n) => (isOurs(n) ? artifacts(n) : messages(n)))
    // Publish from every node in turn, each message once the previous one is everywhere,
    // until P3 has applied to every one of ours in a stock mesh for 30 messages.
    let lowest = Number.POSITIVE_INFINITY
    let activeFor = 0
    let m = 0
    for (; m < 400 && activeFor < 30; m++) {
      const from = m % nodes.length
      const data = new Uint8Array(256)
      new DataView(data.buffer).setUint32(0, m)
      const n = nodes[from]
      if (isOurs(n)) await n.services.dissemination.publish(C, data)
      else await n.services.pubsub.publish(C, data)
      await waitFor(() => got.every((g, i) => i === from || g.has(m)), {
        what: `message ${m} everywhere`,
        wakeOn: wake,
      })
      const inMeshes = oursInStockMeshes()
      // Every one of ours, in the mesh or not (a peer pruned for a deficit keeps it as P3b).
      for (const s of stocks) {
        for (const p of ourIds) lowest = Math.min(lowest, s.services.pubsub.getScore(p))
      }
      if (inMeshes.length > 0 && inMeshes.every((x) => x.active)) activeFor++
    }
    expect(activeFor).toBe(30)
    expect(lowest).toBeGreaterThanOrEqual(0)
    // Ours count as mesh deliverers at stock peers, and one-copy is at work among ours.
    const counted = oursInStockMeshes().map(
      ({ s, p }) => statsAt(s).get(p)!.topics[C].meshMessageDeliveries,
    )
    expect(counted.length).toBeGreaterThanOrEqual(4)
    expect(Math.min(...counted)).toBeGreaterThanOrEqual(2)
    expect(mine.some((n) => core(n).getLazyLinkCount(C) > 0)).toBe(true)
    for (const s of stocks) expect(s.services.pubsub.getPeers().length).toBe(7)
    for (const o of mine) expect(core(o).getPeers()).toHaveLength(7)
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
    const x = await ours()
    const o = await ours()
    // The legacy peer validates only once o has x's copy, so it cannot relay to o first.
    const atO = received(o)
    legacy.services.pubsub.topicValidators.set(C, async () => {
      await waitFor(() => atO.length === 1, { what: 'delivery at o', wakeOn: [artifacts(o)] })
      return 'accept' as never
    })
    await fullyConnect([x, o, legacy])
    for (const n of [x, o, legacy]) subscribe(n, C)
    await waitFor(() => [x, o, legacy].every((n) => meshOf(n, C).length === 2), { what: 'mesh' })
    expect(o.services.dissemination.core.getPeerProtocol(id(legacy))).toBe(MESHSUB_1_1)
    expect(o.services.dissemination.core.getPeerProtocol(id(x))).toBe(MESHSUB_1_3)
    const got = received(legacy)
    await x.services.dissemination.publish(C, new Uint8Array(4000).fill(5))
    await waitFor(() => got.length === 1, { what: 'delivery to the 1.1 peer' })
    // o's only IDONTWANT candidate besides the sender x is the 1.1 peer: nothing is sent.
    expect(o.services.dissemination.stats().control.IDONTWANT?.sent ?? 0).toBe(0)
  })
})
