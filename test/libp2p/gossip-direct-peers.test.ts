import type { Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import type { Artifact } from '../../src/common/artifact.ts'
import { InvalidParametersError } from '../../src/common/errors.ts'
import { type GossipService, gossip } from '../../src/libp2p/gossip-service.ts'
import { createTestNode } from '../support/libp2p-node.ts'
import { waitFor } from '../support/wait.ts'

const T = 'direct'
const running: Libp2p[] = []

afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop()))
})

async function node(options: Parameters<typeof gossip>[0] = {}) {
  const n = await createTestNode({
    dissemination: gossip({ ...options, signaturePolicy: 'StrictNoSign' }),
  })
  running.push(n)
  return n as Libp2p<{ dissemination: GossipService }>
}

describe('direct peers on real libp2p nodes', () => {
  it('are dialled, redialled, sent every message and kept out of the mesh', async () => {
    const b = await node()
    b.services.dissemination.subscribe(T)
    const got: Artifact[] = []
    b.services.dissemination.on('artifact', (x) => got.push(x))
    const address = `${b.getMultiaddrs()[0].toString()}`
    const a = await node({ directPeers: [address], directRedialIntervalMs: 100 })
    a.services.dissemination.subscribe(T)
    const svc = a.services.dissemination
    // Nobody dialled: the service connects to its direct peer by itself.
    await waitFor(() => svc.core.getTopicPeers(T).includes(b.peerId.toString()), { what: 'b' })
    await svc.publish(T, new TextEncoder().encode('one'))
    await waitFor(() => got.length === 1, { what: 'delivery' })
    // b does not know the agreement and GRAFTs a: a answers with PRUNE, so after heartbeats
    // a's mesh still lacks b, and messages still flow.
    await waitFor(() => (svc.stats().invalid['graft-from-direct-peer'] ?? 0) > 0, {
      what: "b's GRAFT refused",
    })
    // Heartbeats emit nothing: their count is polled.
    const ticks = () => svc.core.getHeartbeatCount()
    const after = ticks()
    await waitFor(() => ticks() >= after + 2, { what: "two of a's heartbeats" })
    expect(svc.core.getMeshPeers(T)).not.toContain(b.peerId.toString())
    // b hangs up: a dials it again.
    await b.hangUp(a.peerId)
    await waitFor(() => a.getConnections(b.peerId).some((c) => c.status === 'open'), {
      what: 'redial',
    })
    await waitFor(() => svc.core.getTopicPeers(T).includes(b.peerId.toString()), { what: 'topic' })
    await svc.publish(T, new TextEncoder().encode('two'))
    await waitFor(() => got.length === 2, { what: 'second delivery' })
    expect(got.map((x) => new TextDecoder().decode(x.data))).toEqual(['one', 'two'])
  })

  it('must be named by /p2p/ addresses', () => {
    expect(() => gossip({ directPeers: ['/ip4/127.0.0.1/tcp/1'] })).toThrow(InvalidParametersError)
  })
})
