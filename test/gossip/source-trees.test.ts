import { describe, expect, it } from 'vitest'
import type { PeerKey } from '../../src/common/artifact.ts'
import { LinkRtt, PING_INTERVAL_MS } from '../../src/gossip/link-rtt.ts'
import {
  decodeDistanceEntry,
  encodeDistanceEntry,
  FROM_SOURCE,
  MAX_DISTANCE_MS,
  PASS_OVER_MS,
  SourceTrees,
} from '../../src/gossip/source-trees.ts'

// One-copy per-source trees (doc/gossip-extension.md, "Per-source trees"): the table alone.

const T = 't'
const S = 0xabcd0001

/**
 * A table over `mesh` (settled by a heartbeat) with the given one-way latencies, 2 ms
 * validation, no serialization.
 */
function table(
  latency: Record<string, number>,
  maxSources = 100,
  sendRate = { perSecond: 1e9, burst: 1e9 },
  backupMs = 0,
) {
  const clock = { now: 0 }
  const mesh = new Set(Object.keys(latency))
  /** The parents passed over, in order (the router counts them in its stats). */
  const passedOver: PeerKey[] = []
  const trees = new SourceTrees(
    {
      now: () => clock.now,
      latencyMs: (p) => latency[p],
      meshOf: (topic) => (topic === T ? mesh : undefined),
      validationMs: () => 2,
      sendMs: () => 0,
      passedOver: (_topic, parent) => passedOver.push(parent),
    },
    maxSources,
    1000,
    sendRate,
    backupMs,
  )
  // The mesh as a heartbeat saw it: its peers count from the start.
  trees.heartbeat([T])
  return { trees, clock, mesh, passedOver }
}

const all = () => true

describe('distance entries on the wire', () => {
  it('carry the source, the parent bit and the distance in 0.1 ms steps', () => {
    const e = decodeDistanceEntry(
      encodeDistanceEntry({ source: S, distanceMs: 12.34, parent: true }),
    )
    expect(e).toEqual({ source: S, distanceMs: expect.closeTo(12.3, 5), parent: true })
    const far = decodeDistanceEntry(
      encodeDistanceEntry({ source: 1, distanceMs: Number.POSITIVE_INFINITY, parent: false }),
    )
    expect(far.distanceMs).toBe(Number.POSITIVE_INFINITY)
    expect(far.parent).toBe(false)
    // Past the cap a finite distance is the largest finite one, not "unreachable".
    const capped = decodeDistanceEntry(
      encodeDistanceEntry({ source: 1, distanceMs: 1e9, parent: false }),
    )
    expect(capped.distanceMs).toBeCloseTo(MAX_DISTANCE_MS, 5)
  })
})

describe('the source-tree table', () => {
  it('takes the peer with the least advertised distance plus link latency plus validation', () => {
    const { trees } = table({ a: 5, b: 20, c: 1 })
    trees.advertised(T, 'a', { source: S, distanceMs: 30, parent: false })
    trees.advertised(T, 'b', { source: S, distanceMs: 10, parent: false })
    trees.advertised(T, 'c', { source: S, distanceMs: 40, parent: false })
    // a: 30 + 5 + 2 = 37; b: 10 + 20 + 2 = 32; c: 40 + 1 + 2 = 43.
    expect(trees.parentOf(T, S)).toBe('b')
    expect(trees.distanceOf(T, S)).toBe(32)
    // The source's own flood, when sooner, wins: 25 + 2.
    trees.seed(T, S, 25)
    expect(trees.parentOf(T, S)).toBe(FROM_SOURCE)
    expect(trees.distanceOf(T, S)).toBe(27)
  })

  it('never takes a source through a peer that takes it through us (split horizon, poison reverse)', () => {
    const { trees } = table({ a: 1, b: 10 })
    trees.advertised(T, 'a', { source: S, distanceMs: 5, parent: true })
    trees.advertised(T, 'b', { source: S, distanceMs: 50, parent: false })
    expect(trees.parentOf(T, S)).toBe('b')
    // Only a: nothing usable, the source is unreachable through the mesh.
    const { trees: alone } = table({ a: 1 })
    alone.advertised(T, 'a', { source: S, distanceMs: 5, parent: true })
    expect(alone.parentOf(T, S)).toBeUndefined()
    expect(alone.distanceOf(T, S)).toBe(Number.POSITIVE_INFINITY)
  })

  it('tells each mesh peer its parent bit, and resends only past the hysteresis', () => {
    const { trees } = table({ a: 5, b: 20 })
    trees.advertised(T, 'a', { source: S, distanceMs: 30, parent: false })
    const first = trees.outgoing(T, all, true)
    expect(first.get('a')).toEqual([{ source: S, distanceMs: 37, parent: true }])
    expect(first.get('b')).toEqual([{ source: S, distanceMs: 37, parent: false }])
    // 0.3 ms, then 1.5 ms better: under 0.5 ms, then under 5%, nothing goes out.
    trees.advertised(T, 'a', { source: S, distanceMs: 29.7, parent: false })
    expect(trees.outgoing(T, all, true).size).toBe(0)
    trees.advertised(T, 'a', { source: S, distanceMs: 28.5, parent: false })
    expect(trees.outgoing(T, all, true).size).toBe(0)
    // 5 ms better: both hear it.
    trees.advertised(T, 'a', { source: S, distanceMs: 25, parent: false })
    expect([...trees.outgoing(T, all, true).keys()].sort()).toEqual(['a', 'b'])
    // The parent moves to b: both bits change, both hear it.
    trees.advertised(T, 'b', { source: S, distanceMs: 1, parent: false })
    const moved = trees.outgoing(T, all, true)
    expect(moved.get('a')?.[0].parent).toBe(false)
    expect(moved.get('b')?.[0].parent).toBe(true)
  })

  it('gives a new mesh peer the whole table, and none to a peer that does not speak it yet', () => {
    const { trees, mesh } = table({ a: 5 })
    for (let i = 0; i < 3; i++)
      trees.advertised(T, 'a', { source: i, distanceMs: 10, parent: false })
    trees.outgoing(T, all, true)
    mesh.add('n')
    trees.heartbeat([T])
    const speaks = new Set<string>()
    expect(trees.outgoing(T, (p) => p !== 'n' || speaks.has(p), true).has('n')).toBe(false)
    speaks.add('n')
    expect(trees.pending(T)).toBe(true)
    expect(trees.outgoing(T, (p) => p !== 'n' || speaks.has(p), true).get('n')?.length).toBe(3)
    expect(trees.pending(T)).toBe(false)
  })

  it('counts a new mesh peer from the heartbeat that sees it there: its offers, and our table', () => {
    const { trees, mesh } = table({ a: 5, n: 1 })
    mesh.delete('n')
    trees.left(T, 'n')
    trees.advertised(T, 'a', { source: S, distanceMs: 30, parent: false })
    expect(trees.outgoing(T, all, true).get('a')).toEqual([
      { source: S, distanceMs: 37, parent: true },
    ])
    // n grafts and offers a shorter path: until a heartbeat sees it in the mesh, neither its
    // offer counts nor does it get our table (a start-up graft is often pruned at the next one).
    mesh.add('n')
    trees.advertised(T, 'n', { source: S, distanceMs: 1, parent: false })
    expect(trees.parentOf(T, S)).toBe('a')
    expect(trees.pending(T)).toBe(false)
    expect(trees.outgoing(T, all, true).size).toBe(0)
    // Pruned before a heartbeat: it cost no entry, and counts nothing.
    mesh.delete('n')
    trees.left(T, 'n')
    trees.heartbeat([T])
    expect(trees.parentOf(T, S)).toBe('a')
    expect(trees.outgoing(T, all, true).size).toBe(0)
    // Grafted again and seen by a heartbeat: taken as parent, and told so with the table.
    mesh.add('n')
    trees.advertised(T, 'n', { source: S, distanceMs: 1, parent: false })
    trees.heartbeat([T])
    expect(trees.parentOf(T, S)).toBe('n')
    const out = trees.outgoing(T, all, true)
    expect(out.get('n')).toEqual([{ source: S, distanceMs: 4, parent: true }])
    expect(out.get('a')).toEqual([{ source: S, distanceMs: 4, parent: false }])
  })

  it('sends a refined distance at the slower pace only; parent bits and lost paths at once', () => {
    const { trees } = table({ a: 1, b: 1 })
    trees.advertised(T, 'a', { source: S, distanceMs: 10, parent: false })
    trees.advertised(T, 'b', { source: S, distanceMs: 40, parent: false })
    trees.outgoing(T, all, true)
    // a's path gets shorter: a refinement, held by the quick pace, sent by the slower one.
    trees.advertised(T, 'a', { source: S, distanceMs: 5, parent: false })
    expect(trees.outgoing(T, all, false).size).toBe(0)
    expect(trees.pending(T)).toBe(true)
    // Refined again meanwhile: one entry per peer carries the latest.
    trees.advertised(T, 'a', { source: S, distanceMs: 2, parent: false })
    const refined = trees.outgoing(T, all, true)
    expect(refined.get('a')).toEqual([{ source: S, distanceMs: 5, parent: true }])
    expect(refined.get('b')).toEqual([{ source: S, distanceMs: 5, parent: false }])
    // The parent moves to b: both parent bits go at the quick pace.
    trees.advertised(T, 'b', { source: S, distanceMs: 0, parent: false })
    const moved = trees.outgoing(T, all, false)
    expect(moved.get('a')).toEqual([{ source: S, distanceMs: 3, parent: false }])
    expect(moved.get('b')).toEqual([{ source: S, distanceMs: 3, parent: true }])
    // Every path gone: unreachable goes at the quick pace too (children must re-choose).
    trees.left(T, 'b')
    trees.advertised(T, 'a', { source: S, distanceMs: 7, parent: true })
    expect(trees.distanceOf(T, S)).toBe(Number.POSITIVE_INFINITY)
    expect(trees.outgoing(T, all, false).get('a')).toEqual([
      { source: S, distanceMs: Number.POSITIVE_INFINITY, parent: false },
    ])
  })

  it('sends at once a path found again after none', () => {
    const { trees, clock } = table({ a: 1, b: 1 })
    trees.advertised(T, 'b', { source: S, distanceMs: 10, parent: false })
    trees.outgoing(T, all, true)
    // b loses its path: ours goes, to both, at the quick pace.
    trees.advertised(T, 'b', { source: S, distanceMs: Number.POSITIVE_INFINITY, parent: false })
    expect(trees.outgoing(T, all, false).get('a')?.[0].distanceMs).toBe(Number.POSITIVE_INFINITY)
    // Found again after the hold-down: a (whose parent bit does not change) hears it at once.
    clock.now += 1000
    trees.advertised(T, 'b', { source: S, distanceMs: 10, parent: false })
    expect(trees.outgoing(T, all, false).get('a')).toEqual([
      { source: S, distanceMs: 13, parent: false },
    ])
  })

  it('sends each peer changes within its credit; a flipping parent cannot make us flood the others', () => {
    // 10 entries a second, 5 at once: the whole table still goes to a new peer at once.
    const { trees, clock } = table({ a: 1, b: 1 }, 100, { perSecond: 10, burst: 5 })
    for (let i = 0; i < 20; i++)
      trees.advertised(T, 'a', { source: i, distanceMs: 10, parent: false })
    expect(trees.outgoing(T, all, true).get('b')?.length).toBe(20)
    // `a` (our parent for all 20) flips every distance at line rate: b is sent no more than its credit.
    let sentToB = 0
    for (let round = 0; round < 50; round++) {
      clock.now += 100
      for (let i = 0; i < 20; i++) {
        trees.advertised(T, 'a', {
          source: i,
          distanceMs: round % 2 === 0 ? 500 : 10,
          parent: false,
        })
      }
      sentToB += trees.outgoing(T, all, true).get('b')?.length ?? 0
    }
    // 5 s at 10 a second, less the 15 the first table overdrew: a bound, however fast a flips.
    expect(sentToB).toBeGreaterThan(0)
    expect(sentToB).toBeLessThanOrEqual(5 * 10 - 15 + 5)
    // Once a settles, what b has not heard is still pending and goes out as credit returns.
    expect(trees.pending(T)).toBe(true)
    for (let round = 0; round < 10; round++) {
      clock.now += 1000
      trees.outgoing(T, all, true)
    }
    expect(trees.pending(T)).toBe(false)
    const last = new Map<number, number>()
    clock.now += 10_000
    for (let i = 0; i < 20; i++)
      trees.advertised(T, 'a', { source: i, distanceMs: 40 + i, parent: false })
    for (let round = 0; round < 10; round++) {
      clock.now += 1000
      for (const e of trees.outgoing(T, all, true).get('b') ?? []) last.set(e.source, e.distanceMs)
    }
    // Every source's latest distance reached b: nothing was lost to the cap, only delayed.
    for (let i = 0; i < 20; i++) expect(last.get(i)).toBeCloseTo(40 + i + 1 + 2, 5)
  })

  it("passes over, for a while, a parent that showed nothing of the source's last message", () => {
    const { trees, clock, passedOver } = table({ a: 1, b: 1 })
    trees.advertised(T, 'a', { source: S, distanceMs: 5, parent: false })
    trees.advertised(T, 'b', { source: S, distanceMs: 30, parent: false })
    expect(trees.parentOf(T, S)).toBe('a')
    // An honest parent: its copy comes, first or late, or (a stale parent bit) its announce
    // came before b's copy; it stays.
    for (let k = 0; k < 10; k++) {
      clock.now += 250
      const announcers = new Map(k % 3 === 2 ? [['a', clock.now - 5]] : [])
      trees.firstCopy(T, S, `h${k}`, k % 3 === 0 ? 'a' : 'b', false, announcers)
      if (k % 3 === 1) trees.copy(T, S, `h${k}`, 'a')
    }
    expect(trees.parentOf(T, S)).toBe('a')
    expect(passedOver).toEqual([])
    // It withholds: the copy comes from b (pulled after an announce, or pushed), none from a.
    clock.now += 250
    trees.firstCopy(T, S, 'w', 'b', false)
    expect(trees.parentOf(T, S)).toBe('a')
    // The next message settles the miss: a is passed over (and counted once), b taken.
    clock.now += 250
    trees.firstCopy(T, S, 'w-next', 'b', false)
    expect(trees.parentOf(T, S)).toBe('b')
    expect(passedOver).toEqual(['a'])
    expect(trees.distanceOf(T, S)).toBe(33)
    // Its lower offers are ignored until the pass-over ends; then the heartbeat takes it again.
    trees.advertised(T, 'a', { source: S, distanceMs: 1, parent: false })
    expect(trees.parentOf(T, S)).toBe('b')
    clock.now += PASS_OVER_MS
    trees.heartbeat([T])
    expect(trees.parentOf(T, S)).toBe('a')
  })

  it("passes a parent that withheld one source's message over for the topic's other sources too", () => {
    const { trees, clock } = table({ a: 1, b: 1 })
    const S2 = S + 1
    const S3 = S + 2
    for (const src of [S, S2]) {
      trees.advertised(T, 'a', { source: src, distanceMs: 5, parent: false })
      trees.advertised(T, 'b', { source: src, distanceMs: 30, parent: false })
      expect(trees.parentOf(T, src)).toBe('a')
    }
    // S3's path is through b only.
    trees.advertised(T, 'b', { source: S3, distanceMs: 30, parent: false })
    // a withholds a message of S: once settled, it is passed over for S2 as well.
    trees.firstCopy(T, S, 'w', 'b', false)
    clock.now += 250
    trees.firstCopy(T, S, 'w-next', 'b', false)
    expect(trees.parentOf(T, S)).toBe('b')
    expect(trees.parentOf(T, S2)).toBe('b')
    expect(trees.parentOf(T, S3)).toBe('b')
    // A later offer of a for S2 is ignored until the pass-over ends.
    trees.advertised(T, 'a', { source: S2, distanceMs: 1, parent: false })
    expect(trees.parentOf(T, S2)).toBe('b')
    clock.now += PASS_OVER_MS
    trees.heartbeat([T])
    expect(trees.parentOf(T, S)).toBe('a')
    expect(trees.parentOf(T, S2)).toBe('a')
  })

  it("does not hold it against a parent when the source's flood or our backup parent came first", () => {
    // a is the parent, b the backup (its path within the 10 ms margin), the source's flood far.
    const { trees, clock, passedOver } = table({ a: 1, b: 1 }, 100, undefined, 10)
    trees.seed(T, S, 40)
    trees.advertised(T, 'a', { source: S, distanceMs: 5, parent: false })
    trees.advertised(T, 'b', { source: S, distanceMs: 8, parent: false })
    expect(trees.parentOf(T, S)).toBe('a')
    // The flood (from the source itself) and then b's copy came first, and a sent nothing
    // either time: our announce reached it first. Nothing is awaited, nothing is settled.
    trees.firstCopy(T, S, 'f', 'src', true)
    expect(trees.awaiting(T, S, 'f')).toBe(false)
    clock.now += 250
    trees.firstCopy(T, S, 'k', 'b', false)
    expect(trees.awaiting(T, S, 'k')).toBe(false)
    expect(trees.overdue(T, S, 'k')).toBe(false)
    clock.now += 250
    trees.firstCopy(T, S, 'k2', 'a', false)
    expect(trees.parentOf(T, S)).toBe('a')
    expect(passedOver).toEqual([])
    // A copy by any other way, with nothing from a, is still a miss.
    const { trees: t2, clock: c2, passedOver: p2 } = table({ a: 1, b: 1, c: 1 }, 100, undefined, 10)
    t2.advertised(T, 'a', { source: S, distanceMs: 5, parent: false })
    t2.advertised(T, 'b', { source: S, distanceMs: 8, parent: false })
    t2.advertised(T, 'c', { source: S, distanceMs: 50, parent: false })
    t2.firstCopy(T, S, 'm', 'c', false)
    expect(t2.awaiting(T, S, 'm')).toBe(true)
    c2.now += 100
    expect(t2.overdue(T, S, 'm')).toBe(true)
    expect(t2.parentOf(T, S)).toBe('b')
    expect(p2).toEqual(['a'])
  })

  it('settles a missed message when it is overdue, before the source sends its next one', () => {
    const { trees, clock } = table({ a: 1, b: 1 })
    trees.advertised(T, 'a', { source: S, distanceMs: 5, parent: false })
    trees.advertised(T, 'b', { source: S, distanceMs: 30, parent: false })
    // b's copy came first; a's comes a little later: not overdue, nothing changes.
    trees.firstCopy(T, S, 'm1', 'b', false)
    expect(trees.awaiting(T, S, 'm1')).toBe(true)
    trees.copy(T, S, 'm1', 'a')
    expect(trees.awaiting(T, S, 'm1')).toBe(false)
    expect(trees.overdue(T, S, 'm1')).toBe(false)
    expect(trees.parentOf(T, S)).toBe('a')
    // Nothing from a: once overdue it is passed over at once (the next message goes via b).
    clock.now += 250
    trees.firstCopy(T, S, 'm2', 'b', false)
    clock.now += 100
    expect(trees.overdue(T, S, 'm2')).toBe(true)
    expect(trees.parentOf(T, S)).toBe('b')
    // Settled once: a late copy of it counts nothing more against a.
    trees.copy(T, S, 'm2', 'a')
    expect(trees.overdue(T, S, 'm2')).toBe(false)
  })

  it('re-chooses at once when the parent leaves, and holds a grown distance down for a while', () => {
    const { trees, clock } = table({ a: 1, b: 1 })
    trees.advertised(T, 'a', { source: S, distanceMs: 10, parent: false })
    trees.advertised(T, 'b', { source: S, distanceMs: 40, parent: false })
    expect(trees.parentOf(T, S)).toBe('a')
    trees.left(T, 'a')
    expect(trees.parentOf(T, S)).toBe('b')
    expect(trees.distanceOf(T, S)).toBe(43)
    // Within the hold-down a lower offer (maybe an echo of the lost path) is not taken.
    clock.now = 500
    trees.advertised(T, 'b', { source: S, distanceMs: 20, parent: false })
    expect(trees.distanceOf(T, S)).toBe(43)
    // Once the hold-down is over, the heartbeat takes it.
    clock.now = 1000
    trees.heartbeat([T])
    expect(trees.distanceOf(T, S)).toBe(23)
  })

  it('holds on to no parent that is gone: within a hold-down it is unreachable, then re-chooses', () => {
    const { trees, clock } = table({ a: 1, b: 1, c: 1 })
    trees.advertised(T, 'a', { source: S, distanceMs: 10, parent: false })
    trees.advertised(T, 'b', { source: S, distanceMs: 40, parent: false })
    trees.advertised(T, 'c', { source: S, distanceMs: 30, parent: false })
    trees.left(T, 'a')
    expect(trees.parentOf(T, S)).toBe('c')
    // c's path grows past b's: b (43) is taken, and a hold-down starts.
    clock.now = 100
    trees.advertised(T, 'c', { source: S, distanceMs: 60, parent: false })
    expect(trees.parentOf(T, S)).toBe('b')
    // b's offer drops within the hold: kept at 43.
    clock.now = 200
    trees.advertised(T, 'b', { source: S, distanceMs: 5, parent: false })
    expect(trees.distanceOf(T, S)).toBe(43)
    trees.advertised(T, 'c', { source: S, distanceMs: 20, parent: false })
    trees.left(T, 'b')
    // The only offer left (c, 23) is lower than the held 43, and b is gone: unreachable.
    expect(trees.parentOf(T, S)).toBeUndefined()
    expect(trees.distanceOf(T, S)).toBe(Number.POSITIVE_INFINITY)
    clock.now = 2000
    trees.heartbeat([T])
    expect(trees.parentOf(T, S)).toBe('c')
    expect(trees.distanceOf(T, S)).toBe(23)
  })

  it('starts a source with its second message, and remembers first sightings within the cap', () => {
    const { trees } = table({ a: 1 }, 3)
    expect(trees.seen(T, S, 10)).toBe(false)
    expect(trees.has(T, S)).toBe(false)
    expect(trees.seen(T, S, 10)).toBe(true)
    expect(trees.distanceOf(T, S)).toBe(12)
    // Past the cap the oldest first sighting is forgotten: its next message is a first again.
    for (let i = 0; i < 4; i++) trees.seen(T, i, 10)
    expect(trees.seen(T, 0, 10)).toBe(false)
    expect(trees.seen(T, 3, 10)).toBe(true)
  })

  it('holds at most maxSources per topic: sources only peers named give way, seen ones never', () => {
    const { trees } = table({ a: 1 }, 10)
    // Three sources whose messages reached us: confirmed, never evicted.
    for (const s of [1001, 1002, 1003]) {
      trees.seen(T, s, 10)
      expect(trees.seen(T, s, 10)).toBe(true)
    }
    // A peer inventing sources at line rate: each new one takes the place of its oldest.
    for (let i = 0; i < 50; i++) {
      expect(trees.advertised(T, 'a', { source: i, distanceMs: 10, parent: false })).toBe(true)
    }
    expect(trees.size(T)).toBe(10)
    for (const s of [1001, 1002, 1003]) expect(trees.has(T, s)).toBe(true)
    expect(trees.has(T, 42)).toBe(false)
    expect(trees.has(T, 49)).toBe(true)
    // A source we see takes an invented one's place, and then stays.
    expect(trees.seed(T, 999, 1)).toBe(true)
    expect(trees.has(T, 43)).toBe(false)
    // A named source whose message then arrives is confirmed: the flood no longer evicts it.
    expect(trees.seen(T, 49, 10)).toBe(true)
    for (let i = 100; i < 200; i++)
      trees.advertised(T, 'a', { source: i, distanceMs: 10, parent: false })
    expect(trees.has(T, 49)).toBe(true)
    // A table of only seen sources refuses new ones.
    const { trees: full } = table({ a: 1 }, 2)
    full.seed(T, 1, 1)
    full.seed(T, 2, 1)
    expect(full.advertised(T, 'a', { source: 3, distanceMs: 10, parent: false })).toBe(false)
    expect(full.seed(T, 4, 1)).toBe(false)
    expect(full.size(T)).toBe(2)
    // Entries from a peer outside the mesh are held but do not count until it joins.
    const { trees: other, mesh } = table({ a: 1, x: 1 })
    mesh.delete('x')
    other.advertised(T, 'a', { source: S, distanceMs: 50, parent: false })
    other.advertised(T, 'x', { source: S, distanceMs: 1, parent: false })
    expect(other.parentOf(T, S)).toBe('a')
    other.heartbeat([T])
    mesh.add('x')
    other.heartbeat([T])
    expect(other.parentOf(T, S)).toBe('x')
    other.forget('x')
    expect(other.parentOf(T, S)).toBe('a')
  })
})

describe('a topic whose typical size changes', () => {
  it('recomputes every distance with the new per-hop cost', () => {
    let validationMs = 2
    const trees = new SourceTrees(
      {
        now: () => 0,
        latencyMs: () => 5,
        meshOf: () => new Set(['a']),
        validationMs: () => validationMs,
        sendMs: () => 0,
        passedOver: () => {},
      },
      100,
      1000,
      { perSecond: 1e9, burst: 1e9 },
    )
    trees.heartbeat([T])
    trees.seed(T, S, 4)
    trees.advertised(T, 'a', { source: S + 1, distanceMs: 10, parent: false })
    expect([trees.distanceOf(T, S), trees.distanceOf(T, S + 1)]).toEqual([6, 17])
    expect(trees.retune(T)).toBe(false)
    validationMs = 32
    expect(trees.hopMs(T)).toBe(32)
    expect(trees.retune(T)).toBe(true)
    expect([trees.distanceOf(T, S), trees.distanceOf(T, S + 1)]).toEqual([36, 47])
  })
})

describe('backup parents', () => {
  /** The peers each outgoing entry for S names as our parent (by the entry's parent bit). */
  const named = (out: Map<string, { source: number; parent: boolean }[]>) =>
    [...out].filter(([, es]) => es.some((e) => e.source === S && e.parent)).map(([p]) => p)

  it('names the runner-up parent too when its path is within the margin, and only then', () => {
    const { trees } = table({ a: 5, b: 5, c: 5 }, 100, undefined, 3)
    trees.advertised(T, 'a', { source: S, distanceMs: 10, parent: false })
    trees.advertised(T, 'b', { source: S, distanceMs: 12, parent: false })
    trees.advertised(T, 'c', { source: S, distanceMs: 30, parent: false })
    expect(trees.parentOf(T, S)).toBe('a')
    expect(named(trees.outgoing(T, all, true)).sort()).toEqual(['a', 'b'])
    // `b` falls 4 ms behind: no longer within 3 ms, its parent bit goes.
    trees.advertised(T, 'b', { source: S, distanceMs: 14, parent: false })
    const out = trees.outgoing(T, all, true)
    expect(out.get('b')?.find((e) => e.source === S)?.parent).toBe(false)
    expect(trees.distanceOf(T, S)).toBe(17)
  })

  it('backs up the flood of a source that is our peer with the nearest mesh path', () => {
    const { trees } = table({ a: 5, b: 5 }, 100, undefined, 3)
    trees.seed(T, S, 4)
    trees.advertised(T, 'a', { source: S, distanceMs: 1, parent: false })
    trees.advertised(T, 'b', { source: S, distanceMs: 9, parent: false })
    // Seed 4 + 2 = 6 ms; through `a` 1 + 5 + 2 = 8 ms (within 3), through `b` 16.
    expect(trees.parentOf(T, S)).toBe(FROM_SOURCE)
    expect(named(trees.outgoing(T, all, true))).toEqual(['a'])
  })

  it('takes no backup without a margin', () => {
    const { trees } = table({ a: 5, b: 5 })
    trees.advertised(T, 'a', { source: S, distanceMs: 10, parent: false })
    trees.advertised(T, 'b', { source: S, distanceMs: 10, parent: false })
    expect(named(trees.outgoing(T, all, true))).toEqual(['a'])
  })
})

describe('link RTT from ping/pong', () => {
  it('draws 5-byte nonces a peer cannot predict from the ones it saw', () => {
    const rtt = new LinkRtt()
    const seen: number[] = []
    for (let i = 0; i < 50; i++) seen.push(rtt.ping('a', i * PING_INTERVAL_MS)!)
    for (const n of seen) {
      expect(n).toBeGreaterThanOrEqual(2 ** 28)
      expect(n).toBeLessThan(0xffff_ffff)
    }
    // Sequential nonces would follow one another; random ones almost never repeat or follow.
    const sorted = [...new Set(seen)].sort((x, y) => x - y)
    expect(sorted.length).toBe(50)
    expect(sorted.some((n, i) => i > 0 && n === sorted[i - 1] + 1)).toBe(false)
  })

  it('samples the round trip of the ping in flight only, every half second until it has four, then once a minute', () => {
    const rtt = new LinkRtt()
    const nonce = rtt.ping('a', 0)!
    expect(rtt.ping('a', 10)).toBeUndefined()
    expect(rtt.pong('a', nonce + 1, 30)).toBe(false)
    expect(rtt.latencyMs('a')).toBeUndefined()
    expect(rtt.pong('a', nonce, 40)).toBe(true)
    expect(rtt.latencyMs('a')).toBe(20)
    // A replayed pong makes no sample.
    expect(rtt.pong('a', nonce, 90)).toBe(false)
    // Three more samples, half a second apart: 60, 30, 50 ms. The latency is half the least.
    let t = 0
    for (const sample of [60, 30, 50]) {
      expect(rtt.ping('a', t + 499)).toBeUndefined()
      t += 500
      expect(rtt.pong('a', rtt.ping('a', t)!, t + sample)).toBe(true)
    }
    expect(rtt.latencyMs('a')).toBe(15)
    // The smoothed RTT (for timers): 40, then 1/8 of each step toward the sample.
    let smoothed = 40
    for (const sample of [60, 30, 50]) smoothed += (sample - smoothed) / 8
    expect(rtt.rttMs('a')).toBeCloseTo(smoothed, 9)
    // Four samples: the next ping is a minute after the last.
    expect(rtt.ping('a', t + PING_INTERVAL_MS - 1)).toBeUndefined()
    const next = rtt.ping('a', t + PING_INTERVAL_MS)!
    rtt.pong('a', next, t + PING_INTERVAL_MS + 120)
    // The base is the least of the last four (60, 30, 50, 120): the 40 ms one is out.
    expect(rtt.latencyMs('a')).toBe(15)
    rtt.forget('a')
    expect(rtt.latencyMs('a')).toBeUndefined()
  })

  it("times a hello ASK's round trip as the first sample, and only the first", () => {
    const rtt = new LinkRtt()
    rtt.helloAcked('a', 5)
    expect(rtt.latencyMs('a')).toBeUndefined()
    rtt.hello('a', 100)
    rtt.helloAcked('a', 130)
    expect(rtt.latencyMs('a')).toBe(15)
    // A later ASK (its hello was lost) does not restart a measured link.
    rtt.hello('a', 200)
    rtt.helloAcked('a', 900)
    expect(rtt.latencyMs('a')).toBe(15)
    // With one sample, the next ping is due half a second after the hello.
    expect(rtt.ping('a', 100 + 499)).toBeUndefined()
    expect(rtt.ping('a', 100 + 500)).toBeDefined()
  })

  it('with one early sample, pings a minute after the hello', () => {
    const rtt = new LinkRtt(1)
    rtt.hello('a', 100)
    rtt.helloAcked('a', 130)
    expect(rtt.ping('a', 100 + PING_INTERVAL_MS - 1)).toBeUndefined()
    expect(rtt.ping('a', 100 + PING_INTERVAL_MS)).toBeDefined()
  })
})
