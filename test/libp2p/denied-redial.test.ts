import { connect, type Socket } from 'node:net'
import type { Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  attackBedNode,
  createAttacker,
  type GateDecision,
  type GossipNode,
  getDenied,
} from '../support/gossip-attacks.ts'
import { waitFor } from '../support/wait.ts'

const T = 'blocks'
/** Handshakes refused after encryption by the victim's gater, by peer. */
const handshakes = new Map<string, number>()
/** The victim's inbound decisions, in order. */
const decisions: GateDecision[] = []
let victim: GossipNode
let attacker: Libp2p

beforeAll(async () => {
  // So few handshakes a second that none comes back within the test: every handshake the
  // victim gives the attacker after its cut-off is one its address had from the start.
  victim = await attackBedNode(T, handshakes, false, { deniedHandshakesPerSecond: 0.001 }, (d) =>
    decisions.push(d),
  )
  attacker = await createAttacker()
})

afterAll(async () => {
  await attacker?.stop()
  await victim?.stop()
})

/** A raw TCP socket to the victim (not libp2p) from `localAddress`. */
function rawSocket(localAddress: string): Socket {
  // /ip4/HOST/tcp/PORT/p2p/ID
  const [, , host, , port] = victim.getMultiaddrs()[0].toString().split('/')
  const socket = connect({ host, port: Number(port), localAddress })
  socket.on('error', () => {})
  return socket
}

describe("a denied peer's redials", () => {
  it('die at the TCP listener, before libp2p upgrades them, from the disconnection on, by the address it was cut off from', async () => {
    const key = attacker.peerId.toString()
    const router = victim.services.dissemination.core
    const addr = victim.getMultiaddrs()[0]
    await getDenied(attacker, victim, (p) => router.isDenied(p), T)
    const before = handshakes.get(key) ?? 0
    const fromCutOff = decisions.length
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
    // Every redial was closed by the listener: libp2p's upgrade (which asks the gater about
    // each connection it starts on) saw none of them.
    const redials = decisions.slice(fromCutOff)
    expect(redials.length).toBeGreaterThanOrEqual(dials)
    expect(redials.every((d) => d === 'refused at the listener')).toBe(true)

    // The same for any socket from that address, even one that speaks no libp2p...
    const raw = decisions.length
    const refused = rawSocket('127.0.0.1')
    await waitFor(() => refused.closed, {
      what: 'the raw socket from 127.0.0.1 closed by the listener',
      wakeOn: [[refused, 'close']],
      timeoutMs: 5000,
    })
    expect(decisions.slice(raw)).toEqual(['refused at the listener'])
    // ...while one from another address goes on to libp2p's upgrade (and its gater).
    const other = decisions.length
    const socket = rawSocket('127.0.0.2')
    await waitFor(() => decisions.length > other, {
      what: "the upgrade's decision on 127.0.0.2",
      timeoutMs: 5000,
    })
    socket.destroy()
    expect(decisions.slice(other)).toEqual(['let through to encryption'])
  })
})
