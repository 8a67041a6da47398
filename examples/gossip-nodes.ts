/**
 * Five libp2p nodes on this machine running the optimized gossip strategy: one publishes a
 * block (consensus: relayed to everyone) and a transaction (ingress: only the origin's peers
 * get it), and every node prints what it received.
 *
 *   node examples/gossip-nodes.ts
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { gossip } from '../src/gossip/index.ts'

const BLOCKS = 'example/blocks'
const TXS = 'example/txs'

const nodes = await Promise.all(
  Array.from({ length: 5 }, () =>
    createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        dissemination: gossip({ topicClasses: { [TXS]: 'ingress' }, heartbeatIntervalMs: 200 }),
      },
    }),
  ),
)
// A line: 0 - 1 - 2 - 3 - 4.
for (let i = 0; i + 1 < nodes.length; i++) await nodes[i].dial(nodes[i + 1].getMultiaddrs()[0])
for (const [i, node] of nodes.entries()) {
  const d = node.services.dissemination
  d.subscribe(BLOCKS)
  d.subscribe(TXS)
  d.on('artifact', (a) =>
    console.log(`node ${i} got ${a.class} "${new TextDecoder().decode(a.data)}" on ${a.topic}`),
  )
}
// Let the meshes form (a few heartbeats).
await new Promise((r) => setTimeout(r, 1500))
await nodes[2].services.dissemination.publish(BLOCKS, new TextEncoder().encode('block 1'))
await nodes[2].services.dissemination.publish(TXS, new TextEncoder().encode('tx 1'), {
  class: 'ingress',
})
await new Promise((r) => setTimeout(r, 1000))
for (const [i, node] of nodes.entries()) {
  const s = node.services.dissemination.stats()
  console.log(
    `node ${i}: delivered ${s.total.delivered}, duplicates ${s.total.duplicates}, sent ${s.sent.frames} frames`,
  )
}
await Promise.all(nodes.map((n) => n.stop()))
