import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeLengthPrefixed } from '../../src/common/length-prefixed.ts'
import { MESHSUB_1_2 } from '../../src/gossip/protocol-ids.ts'
import { encodeRpc } from '../../src/gossip/rpc-codec.ts'
import {
  attackBedNode,
  createAttacker,
  emptyIWantEntriesFrame,
  runAttack,
} from '../support/gossip-attacks.ts'
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

  it('cuts off a peer at the first frame it refused from its first bytes, even before the core knew the peer', async () => {
    const victim = await attackBedNode('t', new Map())
    running.push(victim)
    const x = await createAttacker()
    running.push(x)
    const key = x.peerId.toString()
    const core = victim.services.dissemination.core
    // The streams the attacker opened, and whether the core knew it when it refused the first frame.
    let streams = 0
    let known = false
    let knownAtFirstRefusal: boolean | undefined
    const opened = core.inboundStreamOpened.bind(core)
    core.inboundStreamOpened = (peer) => {
      if (peer === key) streams++
      opened(peer)
    }
    const connected = core.peerConnected.bind(core)
    core.peerConnected = (peer, info) => {
      if (peer === key) known = true
      connected(peer, info)
    }
    const inspect = core.inspectFramePrefix.bind(core)
    core.inspectFramePrefix = (peer, prefix, length) => {
      const accepted = inspect(peer, prefix, length)
      if (peer === key && !accepted) knownAtFirstRefusal ??= known
      return accepted
    }
    // 4 MiB frames of empty IWANT entries, on a new stream whenever the victim resets one.
    const frame = emptyIWantEntriesFrame()
    const attack = { name: '4 MiB', rate: 20, next: () => frame }
    await runAttack(x, victim.getMultiaddrs()[0], attack, 8000, () => core.isDenied(key), true)
    expect(core.isDenied(key)).toBe(true)
    // Its first frame usually arrives while the victim's own stream to it still opens (the
    // core does not know it yet, nor budgets it): that refusal counts once the core does.
    expect(knownAtFirstRefusal).toBeDefined()
    expect(streams).toBe(1)
  })
})
