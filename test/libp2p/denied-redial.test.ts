import type { Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  attackBedNode,
  createAttacker,
  type GossipNode,
  gossipAttacks,
  runAttack,
} from '../support/gossip-attacks.ts'
import { waitFor } from '../support/wait.ts'

const T = 'blocks'
/** Handshakes refused after encryption by the victim's gater, by peer. */
const handshakes = new Map<string, number>()
let victim: GossipNode
let attacker: Libp2p

beforeAll(async () => {
  // So few handshakes a second that none comes back within the test: every handshake the
  // victim gives the attacker after its cut-off is one its address had from the start.
  victim = await attackBedNode(T, handshakes, false, { deniedHandshakesPerSecond: 0.001 })
  attacker = await createAttacker()
})

afterAll(async () => {
  await attacker?.stop()
  await victim?.stop()
})

describe("a denied peer's redials", () => {
  it('die before the encryption handshake from the disconnection on, by the address it was cut off from', async () => {
    const key = attacker.peerId.toString()
    const router = victim.services.dissemination.core
    const addr = victim.getMultiaddrs()[0]
    // The victim cuts the attacker off and denies it (a stream of a declared 100 MB frame).
    const attack = gossipAttacks(T).find((a) => a.stream)!
    await runAttack(attacker, addr, attack, 8000, () => router.isDenied(key), true)
    expect(router.isDenied(key)).toBe(true)
    await waitFor(() => attacker.getConnections(victim.peerId).every((c) => c.status !== 'open'), {
      what: 'the attacker connection closed',
      timeoutMs: 5000,
    })
    const before = handshakes.get(key) ?? 0
    // It redials at once, again and again: each dial must end (refused) before the next.
    let dials = 0
    for (let i = 0; i < 20; i++) {
      dials++
      const c = await attacker.dial(addr).catch(() => undefined)
      if (c !== undefined) {
        await waitFor(() => c.status !== 'open', { what: 'a refused redial', timeoutMs: 5000 })
      }
    }
    expect(dials).toBe(20)
    // No handshake: without the disconnection's own token spent, the first redial had one.
    expect((handshakes.get(key) ?? 0) - before).toBe(0)
    expect(router.getPeers()).not.toContain(key)
  })
})
