import { describe, expect, it } from 'vitest'
import { InvalidParametersError } from '../../src/common/errors.ts'
import { resolveGossipParams } from '../../src/gossip/params.ts'
import { DEFAULT_PEER_BUDGETS, PeerBudgets } from '../../src/gossip/peer-budget.ts'

function budgets(overrides: Partial<typeof DEFAULT_PEER_BUDGETS> = {}) {
  const clock = { t: 0 }
  const b = new PeerBudgets({ ...DEFAULT_PEER_BUDGETS, ...overrides }, () => clock.t)
  b.addPeer('p')
  return { b, clock }
}

describe('per-peer budgets', () => {
  it('grant a burst, then refill at the rate, per kind', () => {
    const { b, clock } = budgets()
    const { perSecond, burst } = DEFAULT_PEER_BUDGETS.rates.idontwant
    expect(b.take('p', 'idontwant', burst)).toBe(burst)
    expect(b.spend('p', 'idontwant', 1)).toBe(false)
    // Another kind has its own bucket.
    expect(b.spend('p', 'iwant', 100)).toBe(true)
    clock.t += 500
    expect(b.remaining('p', 'idontwant')).toBe(perSecond / 2)
    clock.t += 60_000
    expect(b.remaining('p', 'idontwant')).toBe(burst)
  })

  it('grant part of an oversized request and empty the bucket', () => {
    const { b } = budgets()
    const { burst } = DEFAULT_PEER_BUDGETS.rates.ihave
    expect(b.take('p', 'ihave', burst - 10)).toBe(burst - 10)
    expect(b.take('p', 'ihave', 50)).toBe(10)
    expect(b.remaining('p', 'ihave')).toBe(0)
  })

  it('grant nothing to a peer that is not tracked', () => {
    const { b } = budgets()
    expect(b.take('stranger', 'iwant', 1)).toBe(0)
    expect(b.strike('stranger')).toBe(false)
  })

  it('disconnect after enough strikes, and forgive a peer that stops', () => {
    const { b, clock } = budgets({ disconnectStrikes: 10, strikeDecayPerSecond: 1 })
    for (let i = 0; i < 9; i++) expect(b.strike('p')).toBe(false)
    clock.t += 5000
    expect(b.strikes('p')).toBeCloseTo(4)
    for (let i = 0; i < 5; i++) expect(b.strike('p')).toBe(false)
    expect(b.strike('p')).toBe(true)
  })

  it('forgive whole strikes only: two halves of the limit a few ms apart disconnect', () => {
    const { b, clock } = budgets({ disconnectStrikes: 20, strikeDecayPerSecond: 1 })
    expect(b.strike('p', 10)).toBe(false)
    clock.t += 25
    expect(b.strike('p', 10)).toBe(true)
    // The time that forgave no whole strike still counts towards the next one.
    const { b: b2, clock: c2 } = budgets({ disconnectStrikes: 20, strikeDecayPerSecond: 1 })
    b2.strike('p', 5)
    for (let i = 0; i < 4; i++) {
      c2.t += 600
      b2.strike('p', 0)
    }
    expect(b2.strikes('p')).toBe(3)
  })

  it('weigh an overdraft by the bursts it goes over by, and a malformed frame by its size', () => {
    const { b } = budgets({ overdraftStrikesPerBurst: 20, malformedStrikeBytes: 1000 })
    const { burst } = DEFAULT_PEER_BUDGETS.rates.ihave
    expect(b.overdraftStrikes('ihave', 1)).toBe(1)
    expect(b.overdraftStrikes('ihave', burst / 20)).toBe(1)
    expect(b.overdraftStrikes('ihave', burst / 20 + 1)).toBe(2)
    expect(b.overdraftStrikes('ihave', burst / 2)).toBe(10)
    expect(b.overdraftStrikes('ihave', 50 * burst)).toBe(1000)
    // A kind sent one unit a frame: a frame as far over as its cut-off disconnects at once.
    const { cutOffOverdraft } = DEFAULT_PEER_BUDGETS.rates.idontwant
    expect(b.overdraftStrikes('idontwant', cutOffOverdraft! - 1)).toBe(1)
    expect(b.overdraftStrikes('idontwant', cutOffOverdraft!)).toBe(
      DEFAULT_PEER_BUDGETS.disconnectStrikes,
    )
    const { malformedStrikes } = DEFAULT_PEER_BUDGETS
    expect(b.malformedStrikes(10)).toBe(malformedStrikes)
    expect(b.malformedStrikes(1000)).toBe(malformedStrikes)
    expect(b.malformedStrikes(4000)).toBe(4 * malformedStrikes)
  })

  it('deny for denyMs, and remember a bounded number of denied peers', () => {
    const { b, clock } = budgets({ denyMs: 1000, maxDenied: 2 })
    b.deny('a')
    expect(b.isDenied('a')).toBe(true)
    expect(b.deniedForMs('a')).toBe(1000)
    clock.t += 1000
    expect(b.isDenied('a')).toBe(false)
    b.deny('a')
    b.deny('b')
    b.deny('c')
    expect([b.isDenied('a'), b.isDenied('b'), b.isDenied('c')]).toEqual([false, true, true])
  })

  it('are validated with the other gossip parameters', () => {
    expect(() =>
      resolveGossipParams({ budgets: { rates: { iwant: { perSecond: -1, burst: 10 } } } }),
    ).toThrow(InvalidParametersError)
    expect(() => resolveGossipParams({ budgets: { disconnectStrikes: 0 } })).toThrow(
      InvalidParametersError,
    )
    expect(() => resolveGossipParams({ budgets: { malformedStrikeBytes: 0 } })).toThrow(
      InvalidParametersError,
    )
    const p = resolveGossipParams({ budgets: { rates: { repeat: { perSecond: 1, burst: 2 } } } })
    expect(p.budgets.rates.repeat).toEqual({ perSecond: 1, burst: 2 })
    expect(p.budgets.rates.iwant).toEqual(DEFAULT_PEER_BUDGETS.rates.iwant)
  })
})
