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

  it('compares a score with a threshold the same way whether or not it could be skipped', () => {
    let now = 0
    const params = resolveGossipParams({
      score: { defaultTopic: { meshMessageDeliveriesWeight: -1 } },
    }).score
    const score = new PeerScore(params, () => now)
    const thresholds = [-100, -10, -1, 0, 0.5]
    // below() answers score() < threshold for every peer and threshold.
    const agrees = (peers: string[]) => {
      for (const p of peers) {
        for (const t of thresholds) expect(score.below(p, t)).toBe(score.score(p) < t)
      }
    }
    score.addPeer('fresh')
    score.addPeer('meshed')
    score.graft('meshed', 't')
    score.firstDelivery('meshed', 't')
    agrees(['fresh', 'meshed', 'unknown'])
    // Each way to a negative score: P4, P7, P6, and P3 once its counting is active.
    score.addPeer('invalid')
    score.invalidMessage('invalid', 't')
    agrees(['fresh', 'invalid'])
    expect(score.below('invalid', 0)).toBe(true)
    const p7 = new PeerScore(params, () => now)
    p7.addPeer('rude')
    p7.addPenalty('rude', 8)
    expect(p7.below('rude', 0)).toBe(true)
    const p6 = new PeerScore(params, () => now)
    for (let i = 0; i < 12; i++) p6.addPeer(`x${i}`, '/ip4/10.0.0.1/tcp/4001')
    expect(p6.below('x0', 0)).toBe(true)
    const p3 = new PeerScore(params, () => now)
    p3.addPeer('idle')
    p3.graft('idle', 't')
    now += 10_000
    p3.refresh()
    expect(p3.score('idle')).toBeLessThan(0)
    expect(p3.below('idle', 0)).toBe(true)
  })
})
