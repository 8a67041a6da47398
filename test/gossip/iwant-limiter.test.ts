import { describe, expect, it } from 'vitest'
import { IWantLimiter } from '../../src/gossip/iwant-limiter.ts'
import { ManualEnv } from './harness.ts'

function limiter(maxConcurrent: number) {
  const env = new ManualEnv()
  const requests: [string, number][] = []
  const broken: string[] = []
  const l = new IWantLimiter(
    { maxConcurrent, followupMs: 100, maxAlternates: 2, maxTracked: 3 },
    {
      setTimer: (ms, fn) => env.setTimer(ms, fn),
      request: (peer, ids) => requests.push([peer, ids[0][0]]),
      brokenPromise: (peer) => broken.push(peer),
    },
  )
  return { env, l, requests, broken }
}

const want = (n: number) => ({ key: `k${n}`, id: new Uint8Array([n]) })

describe('IWANT limiter', () => {
  it('asks at most α peers per id and keeps a bounded list of alternates', () => {
    const { l } = limiter(2)
    expect(l.advertised('a', [want(1)])).toHaveLength(1)
    expect(l.advertised('b', [want(1)])).toHaveLength(1)
    expect(l.advertised('c', [want(1)])).toHaveLength(0)
    expect(l.advertised('a', [want(1)])).toHaveLength(0) // already asked
    expect(l.outstandingPeers('k1').sort()).toEqual(['a', 'b'])
  })

  it('moves on to the next two advertisers after the follow-up time, then gives up', () => {
    const { env, l, requests, broken } = limiter(1)
    l.advertised('a', [want(1)])
    l.advertised('b', [want(1)])
    l.advertised('c', [want(1)])
    l.advertised('d', [want(1)]) // beyond maxAlternates: forgotten
    env.advance(100)
    expect(broken).toEqual(['a'])
    // An unanswered request may mean a lossy link: two retries at once.
    expect(requests).toEqual([
      ['b', 1],
      ['c', 1],
    ])
    env.advance(200)
    expect(broken).toEqual(['a', 'b', 'c'])
    expect(requests).toHaveLength(2)
    expect(l.outstandingPeers('k1')).toEqual([])
  })

  it('cancels everything on delivery and reassigns on disconnect', () => {
    const { env, l, requests, broken } = limiter(1)
    l.advertised('a', [want(1), want(2)])
    l.advertised('b', [want(1), want(2)])
    l.delivered('k1')
    l.peerGone('a')
    expect(requests).toEqual([['b', 2]])
    env.advance(1000)
    expect(broken).toEqual(['b'])
  })

  it('on disconnect, moves on only the ids the peer still held, whatever it held before', () => {
    const { env, l, requests } = limiter(1)
    // a: asked for k1, then an alternate of k2 (b asked, then c an alternate); k1 is
    // delivered, k2's request to b expires, so a and c are asked for k2; then a goes.
    l.advertised('a', [want(1)])
    l.advertised('b', [want(2)])
    l.advertised('a', [want(2)])
    l.advertised('c', [want(2)])
    l.delivered('k1')
    env.advance(100)
    expect(requests).toEqual([
      ['a', 2],
      ['c', 2],
    ])
    l.peerGone('a')
    // k2 is still asked of c; k1, delivered, is not asked again.
    expect(requests).toHaveLength(2)
    expect(l.outstandingPeers('k2')).toEqual(['c'])
    // A peer that holds nothing any more (b's request expired) costs nothing when it goes.
    l.peerGone('b')
    l.peerGone('a')
    expect(requests).toHaveLength(2)
  })

  it('tracks a bounded number of ids', () => {
    const { l } = limiter(1)
    expect(l.advertised('a', [want(1), want(2), want(3), want(4)])).toHaveLength(3)
  })
})

describe('IWANT limiter timers', () => {
  it('set one follow-up timer per batch of requests, however many ids it holds', () => {
    const env = new ManualEnv()
    let timers = 0
    const broken: string[] = []
    const l = new IWantLimiter(
      { maxConcurrent: 1, followupMs: 100, maxAlternates: 2, maxTracked: 10_000 },
      {
        setTimer: (ms, fn) => {
          timers++
          return env.setTimer(ms, fn)
        },
        request: () => {},
        brokenPromise: (peer) => broken.push(peer),
      },
    )
    const ids = Array.from({ length: 5000 }, (_, i) => ({
      key: `k${i}`,
      id: Uint8Array.from([i >> 8, i & 0xff]),
    }))
    expect(l.advertised('a', ids)).toHaveLength(5000)
    expect(timers).toBe(1)
    l.delivered('k0')
    env.advance(100)
    // One request, one promise: 4,999 undelivered ids cost the peer one penalty.
    expect(broken).toEqual(['a'])
  })

  it('asks each next advertiser once for all the ids it inherits', () => {
    const env = new ManualEnv()
    const requests: [string, number][] = []
    const broken: string[] = []
    const l = new IWantLimiter(
      { maxConcurrent: 1, followupMs: 100, maxAlternates: 2, maxTracked: 10_000 },
      {
        setTimer: (ms, fn) => env.setTimer(ms, fn),
        request: (peer, ids) => requests.push([peer, ids.length]),
        brokenPromise: (peer) => broken.push(peer),
      },
    )
    const ids = Array.from({ length: 300 }, (_, i) => ({
      key: `k${i}`,
      id: Uint8Array.from([i >> 8, i & 0xff]),
    }))
    l.advertised('a', ids)
    l.advertised('b', ids)
    l.advertised('c', ids.slice(0, 100))
    env.advance(100)
    expect(broken).toEqual(['a'])
    // Each id goes to its next two advertisers: b for all, c for the 100 it advertised.
    expect(requests).toEqual([
      ['b', 300],
      ['c', 100],
    ])
    l.peerGone('b')
    // b's ids have no advertiser left: c keeps its 100, the others are forgotten.
    expect(requests).toHaveLength(2)
    expect(l.outstandingPeers('k0')).toEqual(['c'])
    expect(l.outstandingPeers('k200')).toEqual([])
    env.advance(100)
    expect(broken).toEqual(['a', 'c'])
  })
})
