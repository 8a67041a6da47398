import { describe, expect, it } from 'vitest'
import { SourceGate } from '../../src/broker/source-gate.ts'
import { InvalidParametersError } from '../../src/common/errors.ts'

/** Everything the gate hands on, in order, as "address/item". */
function drain(g: SourceGate<string>, max: number, quantum: number, now = 0): string[] {
  const out: string[] = []
  g.take(max, quantum, (item) => out.push(item), now)
  return out
}

describe('SourceGate', () => {
  it('holds at most a budget per address, per prefix and in all, and counts the rest against the sender', () => {
    const g = new SourceGate<string>({
      maxQueued: 10,
      maxQueuedPerAddress: 4,
      maxQueuedPerPrefix: 6,
    })
    // One address floods: 4 held, 6 over budget.
    for (let i = 0; i < 10; i++) g.offer('192.0.2.1', 10, `a${i}`, 0)
    // Its /24 neighbour gets the prefix's remaining 2.
    for (let i = 0; i < 4; i++) g.offer('192.0.2.2', 10, `b${i}`, 0)
    // Another prefix: its own address budget, then the total (10) stops it.
    for (let i = 0; i < 6; i++) g.offer('198.51.100.1', 10, `c${i}`, 0)
    expect(g.queued).toBe(10)
    expect(g.queuedFrom('192.0.2.1')).toBe(4)
    expect(g.queuedFrom('192.0.2.0/24')).toBe(6)
    expect(g.queuedFrom('198.51.100.1')).toBe(4)
    expect(Object.fromEntries(g.report())).toEqual({
      '192.0.2.1': { forwarded: 0, banned: 0, overBudget: 6 },
      '192.0.2.2': { forwarded: 0, banned: 0, overBudget: 2 },
      '198.51.100.1': { forwarded: 0, banned: 0, overBudget: 2 },
    })
    expect(g.report()).toEqual([])
    // Room comes back as datagrams are taken.
    expect(drain(g, 100, 64)).toHaveLength(10)
    expect(g.queuedFrom('192.0.2.0/24')).toBe(0)
    expect(g.offer('192.0.2.1', 10, 'again', 0)).toBe(true)
  })

  it('bounds bytes as well as datagrams', () => {
    const g = new SourceGate<string>({ maxQueuedBytes: 100 })
    expect(g.offer('192.0.2.1', 60, 'x', 0)).toBe(true)
    expect(g.offer('198.51.100.1', 60, 'y', 0)).toBe(false)
    expect(g.offer('198.51.100.1', 40, 'z', 0)).toBe(true)
  })

  it('hands prefixes on in turn: a flood backlog delays another source by one quantum per round', () => {
    const g = new SourceGate<string>()
    for (let i = 0; i < 1000; i++) g.offer('203.0.113.9', 1, 'flood', 0)
    for (let i = 0; i < 5; i++) g.offer('192.0.2.1', 1, `honest${i}`, 0)
    // Two addresses of one prefix share its lane, in arrival order.
    g.offer('192.0.2.2', 1, 'neighbour', 0)
    const first = drain(g, 100, 4)
    const honest = first.filter((x) => x !== 'flood')
    expect(honest).toEqual(['honest0', 'honest1', 'honest2', 'honest3', 'honest4', 'neighbour'])
    // Every honest datagram went within two rounds of 4 from each lane.
    expect(first.indexOf('neighbour')).toBeLessThan(16)
    // Short takes (1 at a time) still alternate between the lanes.
    const h = new SourceGate<string>()
    for (let i = 0; i < 100; i++) h.offer('203.0.113.9', 1, 'f', 0)
    for (let i = 0; i < 3; i++) h.offer('192.0.2.1', 1, 'h', 0)
    const one = Array.from({ length: 6 }, () => drain(h, 1, 64)[0]).join('')
    expect(one.split('h')).toHaveLength(4)
    expect(one).not.toContain('hh')
  })

  it('drops a banned address or prefix, on offer and while queued, until the ban ends', () => {
    const g = new SourceGate<string>()
    g.offer('192.0.2.1', 1, 'queued before the ban', 0)
    g.offer('2001:db8:1:2::7', 1, 'v6', 0)
    g.ban('192.0.2.1', 1000)
    g.ban('2001:db8:1:2::/64', 1000)
    expect(g.offer('192.0.2.1', 1, 'x', 10)).toBe(false)
    expect(g.offer('2001:db8:1:2::8', 1, 'x', 10)).toBe(false)
    // Not the neighbour of a banned address, nor another /64.
    expect(g.offer('192.0.2.2', 1, 'neighbour', 10)).toBe(true)
    expect(g.offer('2001:db8:1:3::7', 1, 'other /64', 10)).toBe(true)
    expect(drain(g, 10, 64, 10).sort()).toEqual(['neighbour', 'other /64'])
    expect(g.queued).toBe(0)
    expect(Object.fromEntries(g.report())).toEqual({
      '192.0.2.1': { forwarded: 0, banned: 2, overBudget: 0 },
      '2001:db8:1:2::7': { forwarded: 0, banned: 1, overBudget: 0 },
      '2001:db8:1:2::8': { forwarded: 0, banned: 1, overBudget: 0 },
      '192.0.2.2': { forwarded: 1, banned: 0, overBudget: 0 },
      '2001:db8:1:3::7': { forwarded: 1, banned: 0, overBudget: 0 },
    })
    // Served: back in.
    expect(g.offer('192.0.2.1', 1, 'after', 1000)).toBe(true)
    expect(g.totals).toEqual({ forwarded: 2, banned: 4, overBudget: 0 })
  })

  it('keeps its tables bounded: bans, counted sources and lanes', () => {
    const g = new SourceGate<string>({ maxBans: 4, maxCountedSources: 3, lanes: 2 })
    for (let i = 0; i < 10; i++) g.ban(`10.0.${i}.1`, 1000)
    // The oldest bans went; the newest 4 hold.
    expect(g.offer('10.0.0.1', 1, 'x', 0)).toBe(true)
    expect(g.offer('10.0.9.1', 1, 'x', 0)).toBe(false)
    // 20 prefixes over 2 lanes (one of their own at a time, the rest sharing lane 0).
    for (let i = 0; i < 20; i++) g.offer(`10.1.${i}.1`, 1, `p${i}`, 0)
    expect(drain(g, 100, 64)).toHaveLength(21)
    expect(g.queued).toBe(0)
    // 22 addresses counted: 3 apart (the first to come), the rest under "other".
    const counted = new Map(g.report())
    expect([...counted.keys()]).toHaveLength(4)
    expect(counted.get('10.0.9.1')?.banned).toBe(1)
    const forwarded = [...counted.values()].reduce((n, c) => n + c.forwarded, 0)
    expect(forwarded).toBe(21)
    expect(counted.get('other')?.forwarded).toBeGreaterThan(0)
  })

  it('refuses budgets below 1', () => {
    expect(() => new SourceGate({ maxQueued: 0 })).toThrow(InvalidParametersError)
    expect(() => new SourceGate({ lanes: 0 })).toThrow(InvalidParametersError)
    expect(() => new SourceGate({ maxQueuedPerAddress: 1.5 })).toThrow(InvalidParametersError)
  })
})
