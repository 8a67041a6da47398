import { describe, expect, it } from 'vitest'
import { ipOf } from '../../src/common/ip-address.ts'
import { resolveGossipParams } from '../../src/gossip/params.ts'
import { PeerScore } from '../../src/gossip/score.ts'

function scorer() {
  let now = 0
  const params = resolveGossipParams().score
  const score = new PeerScore(params, () => now)
  return { score, params, advance: (ms: number) => (now += ms) }
}

describe('peer score', () => {
  it('rewards time in mesh (P1) and first deliveries (P2), decaying P2', () => {
    const { score, advance } = scorer()
    score.addPeer('a')
    score.graft('a', 't')
    for (let i = 0; i < 4; i++) score.firstDelivery('a', 't')
    expect(score.score('a')).toBe(4)
    advance(100_000)
    score.refresh()
    // P2 halves; P1 adds 100 quanta of 0.0027.
    expect(score.score('a')).toBeCloseTo(2 + 100 * 0.0027, 6)
  })

  it('punishes invalid messages quadratically (P4) and behaviour past the threshold (P7)', () => {
    const { score } = scorer()
    score.addPeer('a')
    score.invalidMessage('a', 't')
    score.invalidMessage('a', 't')
    expect(score.score('a')).toBe(-40)
    score.addPeer('b')
    score.addPenalty('b', 6)
    expect(score.score('b')).toBe(0)
    score.addPenalty('b', 2)
    expect(score.score('b')).toBe(-40)
  })

  it('applies IP colocation (P6) past the threshold, except to whitelisted loopback', () => {
    const { score } = scorer()
    for (let i = 0; i < 12; i++) score.addPeer(`x${i}`, '/ip4/10.0.0.1/tcp/4001')
    for (let i = 0; i < 12; i++) score.addPeer(`l${i}`, '/ip4/127.0.0.1/tcp/4001')
    expect(score.score('x0')).toBe(-40)
    expect(score.score('l0')).toBe(0)
    expect(ipOf('/ip6/::1/tcp/1')).toBe('::1')
    // An IPv4-mapped IPv6 address is its IPv4 host, in the socket's form and in libp2p's.
    expect(ipOf('::ffff:10.0.0.1')).toBe('10.0.0.1')
    expect(ipOf('/ip6/::ffff:a00:1/tcp/1')).toBe('10.0.0.1')
    expect(ipOf('/ip6/::ffff:7f00:1/tcp/1')).toBe('127.0.0.1')
  })

  it('keeps a negative score across a reconnect, and forgets a positive one', () => {
    const { score } = scorer()
    score.addPeer('bad')
    score.invalidMessage('bad', 't')
    score.removePeer('bad')
    score.addPeer('bad')
    expect(score.score('bad')).toBe(-10)
    score.addPeer('good')
    score.firstDelivery('good', 't')
    score.removePeer('good')
    score.addPeer('good')
    expect(score.score('good')).toBe(0)
  })
})
