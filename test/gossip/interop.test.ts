import type { Message } from '@libp2p/gossipsub'
import { type GossipSub, type GossipsubOpts, gossipsub } from '@libp2p/gossipsub'
import type { Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import type { Artifact } from '../../src/core/artifact.ts'
import { MESHSUB_1_2 } from '../../src/gossip/protocol-ids.ts'
import {
  type GossipService,
  type GossipServiceOptions,
  gossip,
} from '../../src/libp2p/gossip-service.ts'
import { connect, createTestNode, waitFor } from '../support/libp2p-node.ts'

type Ours = Libp2p<{ dissemination: GossipService }>
type Stock = Libp2p<{ pubsub: GossipSub }>

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
  if ('dissemination' in node.services) {
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
  if ('dissemination' in node.services) return node.services.dissemination.core.getMeshPeers(topic)
  return node.services.pubsub.getMeshPeers(topic)
}

function subscribe(node: Ours | Stock, topic: string): void {
  if ('dissemination' in node.services) node.services.dissemination.subscribe(topic)
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
    const nodes = [await ours(), await ours(), await stock(), await stock()]
    await fullyConnect(nodes)
    for (const n of nodes) {
      subscribe(n, C)
      subscribe(n, I)
    }
    await waitFor(() => nodes.every((n) => meshOf(n, C).length === 3), 10_000, 'a full mixed mesh')
    const [o1, , s1] = nodes
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
})
