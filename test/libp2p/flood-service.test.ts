import type { Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import type { Artifact } from '../../src/common/artifact.ts'
import type { PublishResult } from '../../src/common/dissemination.ts'
import { encodeLengthPrefixed } from '../../src/common/length-prefixed.ts'
import { messageIdKey } from '../../src/common/message-id.ts'
import { FLOOD_PROTOCOL, type FloodService, flood } from '../../src/libp2p/flood-service.ts'
import { connect, createTestNode } from '../support/libp2p-node.ts'
import { type Wake, waitFor } from '../support/wait.ts'

type Node = Libp2p<{ dissemination: FloodService }>

const TOPIC = 'blocks'
let nodes: Node[] = []

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  nodes = []
})

const artifacts = (ns: Node[]): Wake[] => ns.map((n) => [n.services.dissemination, 'artifact'])

async function line(n: number, maxMessageBytes?: number): Promise<Node[]> {
  nodes = (await Promise.all(
    Array.from({ length: n }, () => createTestNode({ dissemination: flood({ maxMessageBytes }) })),
  )) as unknown as Node[]
  for (let i = 0; i + 1 < n; i++) await connect(nodes[i], nodes[i + 1])
  for (const node of nodes) node.services.dissemination.subscribe(TOPIC)
  await waitFor(
    () =>
      nodes.every(
        (node, i) =>
          node.services.dissemination.getPeers().length === (i === 0 || i === n - 1 ? 1 : 2),
      ),
    { what: 'flood streams to open' },
  )
  return nodes
}

describe('the generic libp2p driver, hosting the flooding core over TCP', () => {
  it('relays consensus messages across a line of real nodes, once each', async () => {
    const ns = await line(4)
    const got = ns.map(() => [] as Artifact[])
    for (const [i, n] of ns.entries())
      n.services.dissemination.on('artifact', (a) => got[i].push(a))
    const published: PublishResult[] = []
    for (let m = 0; m < 20; m++) {
      published.push(
        await ns[m % 4].services.dissemination.publish(TOPIC, new TextEncoder().encode(`msg ${m}`)),
      )
    }
    await waitFor(
      () => got.every((g, i) => g.length === published.filter((_, m) => m % 4 !== i).length),
      { what: 'every message at every other node', wakeOn: artifacts(ns) },
    )
    for (let i = 0; i < 4; i++) {
      const keys = new Set(got[i].map((a) => messageIdKey(a.id)))
      expect(keys.size).toBe(15)
      for (const [m, p] of published.entries()) {
        expect(keys.has(messageIdKey(p.id))).toBe(m % 4 !== i)
      }
    }
    expect(ns[3].services.dissemination.stats().total.delivered).toBe(15)
  })

  it('does not relay ingress beyond the origin’s peers', async () => {
    const ns = await line(3)
    const got = ns.map(() => 0)
    for (const [i, n] of ns.entries()) {
      n.services.dissemination.on('artifact', () => {
        got[i]++
      })
    }
    await ns[0].services.dissemination.publish(TOPIC, new Uint8Array([1, 2, 3]), {
      class: 'ingress',
    })
    await ns[1].services.dissemination.publish(TOPIC, new Uint8Array([4]), { class: 'ingress' })
    await waitFor(() => got[1] === 1 && got[0] === 1 && got[2] === 1, {
      what: "each ingress message at its origin's peers",
      wakeOn: artifacts(ns),
    })
    // A barrier instead of a sleep: node 1 relays a consensus message from node 0 to node 2
    // after anything it relayed before, so once node 2 has it, a wrongly relayed ingress
    // message from node 0 would have arrived too.
    await ns[0].services.dissemination.publish(TOPIC, new Uint8Array([5]))
    await waitFor(() => got[2] === 2, {
      what: 'the consensus barrier at node 2',
      wakeOn: artifacts(ns),
    })
    // Node 2 is two hops from node 0: it saw only node 1's ingress message.
    expect(got).toEqual([1, 2, 2])
  })

  it('rejects an oversized frame, counts it against the sender and keeps working', async () => {
    const ns = await line(2, 1024)
    const victim = ns[1]
    const attacker = ns[0]
    const stream = await attacker.dialProtocol(victim.peerId, FLOOD_PROTOCOL)
    stream.send(encodeLengthPrefixed(new Uint8Array(64 * 1024)))
    await waitFor(() => victim.services.dissemination.stats().invalid['bad-framing'] === 1, {
      what: 'the oversized frame counted',
    })
    expect(victim.services.dissemination.stats().invalidByPeer[attacker.peerId.toString()]).toBe(1)
    // Garbage inside a well-framed message is a decode error, also counted.
    const stream2 = await attacker.dialProtocol(victim.peerId, FLOOD_PROTOCOL)
    stream2.send(encodeLengthPrefixed(new Uint8Array([9, 9, 9])))
    await waitFor(() => victim.services.dissemination.stats().invalid.ERR_DECODE === 1, {
      what: 'the garbage counted',
    })
    // The honest path still works.
    const got: Artifact[] = []
    victim.services.dissemination.on('artifact', (a) => got.push(a))
    await attacker.services.dissemination.publish(TOPIC, new Uint8Array([7]))
    await waitFor(() => got.length === 1, {
      what: 'the honest message',
      wakeOn: [[victim.services.dissemination, 'artifact']],
    })
    await expect(
      attacker.services.dissemination.publish(TOPIC, new Uint8Array(2048)),
    ).rejects.toMatchObject({ code: 'ERR_MESSAGE_TOO_LARGE' })
  })
})
