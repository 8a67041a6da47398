import type { Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
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
})
