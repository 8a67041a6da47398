import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeLengthPrefixed } from '../../src/common/length-prefixed.ts'
import { MESHSUB_1_2 } from '../../src/gossip/protocol-ids.ts'
import { encodeRpc } from '../../src/gossip/rpc-codec.ts'
import { twoGossipNodes } from '../support/libp2p-node.ts'
import { waitFor } from '../support/wait.ts'

const running: Libp2p[] = []

afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop()))
})

describe('the generic libp2p driver, on a new connection', () => {
  it('keeps what a peer sends before our own stream to it is open', async () => {
    // Both subscribe first: each one's first frame on the new connection is its
    // subscription list, which reaches the other side before that side's stream opens.
    const [a, b] = await twoGossipNodes(running, 't')
    const knows = (x: typeof a, y: typeof a) =>
      x.services.dissemination.core.getTopicPeers('t').includes(y.peerId.toString())
    await waitFor(() => knows(a, b) && knows(b, a), { what: 'both subscriptions' })
    expect(
      a.services.dissemination.driverStats().earlyFramesDropped +
        b.services.dissemination.driverStats().earlyFramesDropped,
    ).toBe(0)
  })

  it('closes the streams of a peer that talks to us but refuses our stream, keeping nothing it sent', async () => {
    const [victim] = await twoGossipNodes(running, 't')
    // A node that speaks no meshsub itself: the victim's stream to it cannot open.
    const deaf = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
    })
    running.push(deaf)
    const stream = await deaf.dialProtocol(victim.getMultiaddrs()[0], MESHSUB_1_2)
    const frame = encodeLengthPrefixed(
      encodeRpc({ subscriptions: [{ subscribe: true, topic: 't' }], messages: [] }),
    )
    for (let i = 0; i < 32; i++) stream.send(frame)
    await waitFor(() => stream.status !== 'open', { what: 'the victim to close the stream' })
    // Its subscription never reached the core, and nothing of it is held.
    expect(victim.services.dissemination.core.getTopicPeers('t')).not.toContain(
      deaf.peerId.toString(),
    )
  })
})
