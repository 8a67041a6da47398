import type { MultiaddrConnection, PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { denyListGater } from '../../src/libp2p/deny-gater.ts'

/** Just enough of a connection for the gater: its remote address. */
const from = (address: string) => ({ remoteAddr: multiaddr(address) }) as MultiaddrConnection
const peer = (name: string) => ({ toString: () => name }) as PeerId

describe('the deny-list gater', () => {
  it("throttles the handshakes of an address a denied peer dials from, and only that address's", () => {
    let time = 0
    const denied = new Set(['bad'])
    const gater = denyListGater(() => ({ isDenied: (p) => denied.has(p.toString()) }), {
      deniedHandshakesPerSecond: 2,
      deniedHandshakesBurst: 4,
      throttleMs: 10_000,
      now: () => time,
    })
    const attacker = from('/ip4/10.0.0.1/tcp/4001')
    const other = from('/ip4/10.0.0.2/tcp/4001')
    // A denied peer redials in a loop: four handshakes, then refused before encryption.
    let handshakes = 0
    for (let i = 0; i < 20; i++) {
      if (gater.denyInboundConnection!(attacker)) continue
      handshakes++
      expect(gater.denyInboundEncryptedConnection!(peer('bad'), attacker)).toBe(true)
    }
    expect(handshakes).toBe(4)
    // The listener's check by address (refusingTcp) says the same as the upgrade's.
    expect(gater.refusesAddress('10.0.0.1')).toBe(true)
    expect(gater.refusesAddress('10.0.0.2')).toBe(false)
    // Another address, and an honest peer there, are untouched.
    expect(gater.denyInboundConnection!(other)).toBe(false)
    expect(gater.denyInboundEncryptedConnection!(peer('good'), other)).toBe(false)
    // Two handshakes a second come back.
    time += 1000
    handshakes = 0
    for (let i = 0; i < 20; i++) {
      if (gater.denyInboundConnection!(attacker)) continue
      handshakes++
      gater.denyInboundEncryptedConnection!(peer('bad'), attacker)
    }
    expect(handshakes).toBe(2)
    // Once the denied peer has been quiet for throttleMs, the address is free again.
    time += 10_000
    expect(gater.denyInboundConnection!(attacker)).toBe(false)
    expect(gater.denyDialPeer!(peer('bad'))).toBe(true)
    expect(gater.denyDialPeer!(peer('good'))).toBe(false)
  })

  it('counts the disconnection of a denied peer as a spent handshake of its address, once', () => {
    let time = 100_000
    // The deny list says a denied peer was cut off from 10.0.0.1 at time 100,000.
    const gater = denyListGater(
      () => ({
        isDenied: (p) => p.toString() === 'bad',
        disconnectedFrom: (ip) => (ip === '10.0.0.1' ? 100_000 : undefined),
      }),
      {
        deniedHandshakesPerSecond: 0.5,
        deniedHandshakesBurst: 1,
        throttleMs: 10_000,
        now: () => time,
      },
    )
    const attacker = from('/ip4/10.0.0.1/tcp/4001')
    // Its first redial dies before encryption; others' addresses are untouched.
    expect(gater.denyInboundConnection!(attacker)).toBe(true)
    expect(gater.denyInboundConnection!(from('/ip4/10.0.0.2/tcp/4001'))).toBe(false)
    // A token two seconds after the disconnection, spent by a handshake that ends refused.
    time += 1999
    expect(gater.denyInboundConnection!(attacker)).toBe(true)
    time += 1
    expect(gater.denyInboundConnection!(attacker)).toBe(false)
    expect(gater.denyInboundEncryptedConnection!(peer('bad'), attacker)).toBe(true)
    expect(gater.denyInboundConnection!(attacker)).toBe(true)
    // Quiet for throttleMs: free again, and the old disconnection is not counted twice.
    time += 10_000
    expect(gater.denyInboundConnection!(attacker)).toBe(false)
    expect(gater.denyInboundConnection!(attacker)).toBe(false)
  })

  it('throttles a bounded number of addresses, forgetting the least recently denied', () => {
    const gater = denyListGater(() => ({ isDenied: () => true }), {
      deniedHandshakesBurst: 1,
      maxThrottled: 2,
      now: () => 0,
    })
    for (const a of ['1', '2', '3'])
      gater.denyInboundEncryptedConnection!(peer('x'), from(`/ip4/10.0.0.${a}/tcp/1`))
    expect(gater.denyInboundConnection!(from('/ip4/10.0.0.1/tcp/1'))).toBe(false)
    expect(gater.denyInboundConnection!(from('/ip4/10.0.0.2/tcp/1'))).toBe(true)
    expect(gater.denyInboundConnection!(from('/ip4/10.0.0.3/tcp/1'))).toBe(true)
  })

  it('keys an IPv4 host the same in every form: the listener socket, the multiaddr, IPv4-mapped IPv6', () => {
    const denied = new Set(['bad'])
    const gater = denyListGater(() => ({ isDenied: (p) => denied.has(p.toString()) }), {
      deniedHandshakesPerSecond: 0.001,
      deniedHandshakesBurst: 1,
      throttleMs: 10_000,
      now: () => 0,
    })
    // A denied peer's one handshake, through a dual-stack listener: libp2p writes the address
    // as /ip6/::ffff:a00:1, Node's socket as ::ffff:10.0.0.1.
    const mapped = from('/ip6/::ffff:a00:1/tcp/4001')
    expect(gater.denyInboundConnection!(mapped)).toBe(false)
    expect(gater.denyInboundEncryptedConnection!(peer('bad'), mapped)).toBe(true)
    expect(gater.refusesAddress('::ffff:10.0.0.1')).toBe(true)
    expect(gater.refusesAddress('::FFFF:10.0.0.1')).toBe(true)
    expect(gater.refusesAddress('10.0.0.1')).toBe(true)
    expect(gater.denyInboundConnection!(from('/ip4/10.0.0.1/tcp/4002'))).toBe(true)
    // Other hosts, and a real IPv6 address, are untouched.
    expect(gater.refusesAddress('::ffff:10.0.0.2')).toBe(false)
    expect(gater.refusesAddress('2001:db8::a00:1')).toBe(false)
  })
})
