import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { EventQueue } from '../../src/sim/event-queue.ts'
import {
  fullMeshGraph,
  graphFromEdges,
  hopDistances,
  leastArrival,
  neighborsOf,
  randomRegularGraph,
} from '../../src/sim/graph.ts'
import { PROVIDERS, providerClusteredPlacement } from '../../src/sim/placement.ts'
import { Prng } from '../../src/sim/prng.ts'

describe('graphs', () => {
  it('random regular graphs are simple, exactly k-regular and connected', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 300 }),
        fc.integer({ min: 2, max: 12 }),
        fc.integer(),
        (n, k, seed) => {
          fc.pre(k < n && (n * k) % 2 === 0)
          const g = randomRegularGraph(n, k, new Prng(seed))
          for (let i = 0; i < n; i++) {
            const nb = [...neighborsOf(g, i)]
            expect(nb.length).toBe(k)
            expect(new Set(nb).size).toBe(k)
            expect(nb.includes(i)).toBe(false)
            for (const j of nb) expect([...neighborsOf(g, j)].includes(i)).toBe(true)
          }
          if (k >= 3) expect([...hopDistances(g, 0)].every((d) => d >= 0)).toBe(true)
        },
      ),
      { numRuns: 60 },
    )
  })

  it('the same seed gives the same graph', () => {
    const a = randomRegularGraph(500, 8, new Prng('x'))
    const b = randomRegularGraph(500, 8, new Prng('x'))
    const c = randomRegularGraph(500, 8, new Prng('y'))
    expect(a.neighbors).toEqual(b.neighbors)
    expect(a.neighbors).not.toEqual(c.neighbors)
  })

  it('a full mesh connects everyone to everyone else', () => {
    const g = fullMeshGraph(56)
    for (let i = 0; i < 56; i++) expect(neighborsOf(g, i).length).toBe(55)
  })

  it('provider-clustered placement puts about half the nodes in the providers', () => {
    const p = providerClusteredPlacement(20_000, new Prng(3))
    const hosted = p.provider.filter((x) => x >= 0).length / 20_000
    const share = PROVIDERS.reduce((a, b) => a + b.share, 0)
    expect(Math.abs(hosted - share)).toBeLessThan(0.02)
  })
})

describe('the event queue', () => {
  it('pops in time order, ties in insertion order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 200 }), (times) => {
        const q = new EventQueue()
        const fired: [number, number][] = []
        times.forEach((t, i) => {
          q.push(t, () => fired.push([t, i]))
        })
        while (q.size > 0) q.pop()!()
        const expected = times.map((t, i) => [t, i] as [number, number])
        expected.sort((a, b) => a[0] - b[0] || a[1] - b[1])
        expect(fired).toEqual(expected)
      }),
    )
  })

  it('interleaved pushes and pops keep the order and the tags of every event', () => {
    const step = fc.oneof(fc.integer({ min: 0, max: 30 }), fc.constant(-1))
    fc.assert(
      fc.property(fc.array(step, { maxLength: 400 }), (steps) => {
        const q = new EventQueue<number>()
        const ref: [number, number][] = []
        let now = 0
        let id = 0
        for (const s of steps) {
          if (s >= 0) {
            q.push(now + s, id, id, 1000 - id, 2 * id)
            ref.push([now + s, id++])
            continue
          }
          if (ref.length === 0) continue
          ref.sort((a, b) => a[0] - b[0] || a[1] - b[1])
          const [t, want] = ref.shift()!
          expect(q.peekTime()).toBe(t)
          expect(q.pop()).toBe(want)
          expect([q.poppedA, q.poppedB, q.poppedC]).toEqual([want, 1000 - want, 2 * want])
          now = t
        }
        expect(q.size).toBe(ref.length)
      }),
    )
  })
})

describe('the seeded generator', () => {
  it('draws standard normal numbers', () => {
    const prng = new Prng(5)
    const n = 20_000
    let sum = 0
    let squares = 0
    let within1 = 0
    for (let i = 0; i < n; i++) {
      const z = prng.normal()
      sum += z
      squares += z * z
      if (Math.abs(z) < 1) within1++
    }
    expect(Math.abs(sum / n)).toBeLessThan(0.03)
    expect(squares / n).toBeGreaterThan(0.95)
    expect(squares / n).toBeLessThan(1.05)
    // 68.3% of a standard normal lies within one standard deviation.
    expect(within1 / n).toBeGreaterThan(0.67)
    expect(within1 / n).toBeLessThan(0.695)
  })

  it('leastArrival is hop distance with unit hops, and each node came from a neighbour on a least path', () => {
    fc.assert(
      fc.property(fc.integer({ min: 10, max: 200 }), fc.integer(), (n, seed) => {
        const g = randomRegularGraph(n, 4, new Prng(seed))
        const { time, from } = leastArrival(g, [[0, 0]], () => 1)
        expect([...time]).toEqual([...hopDistances(g, 0)])
        expect(from[0]).toBe(-1)
        for (let v = 1; v < n; v++) {
          expect([...neighborsOf(g, v)]).toContain(from[v])
          expect(time[from[v]] + 1).toBe(time[v])
        }
      }),
      { numRuns: 50 },
    )
  })

  it('leastArrival starts at every entry, takes the least, and never reaches a skipped node', () => {
    // A path 0 - 1 - 2 - 3 - 4 with hop cost 10 ms.
    const g = graphFromEdges(5, [0, 1, 1, 2, 2, 3, 3, 4])
    const hop = () => 10
    const { time, from } = leastArrival(
      g,
      [
        [0, 0],
        [4, 5],
      ],
      hop,
    )
    expect([...time]).toEqual([0, 10, 20, 15, 5])
    expect([...from]).toEqual([-1, 0, 1, 4, -1])
    // An entry later than a path to it is beaten: it came over the path.
    const late = leastArrival(
      g,
      [
        [0, 0],
        [1, 30],
      ],
      hop,
    )
    expect(late.time[1]).toBe(10)
    expect(late.from[1]).toBe(0)
    // Node 2 gone: 3 and 4 are cut off from 0.
    const cut = leastArrival(g, [[0, 0]], hop, (v) => v === 2)
    expect([...cut.time]).toEqual([0, 10, Infinity, Infinity, Infinity])
  })
})
