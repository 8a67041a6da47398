import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  computeBackbone,
  computeSourceTree,
  sourceTreeChildren,
  treeNeighbours,
} from '../../src/rp/backbone.ts'
import type { RpLinkState } from '../../src/rp/codec.ts'

/** A random RP graph: node count, and links as (u, v, cost, one-way?) tuples. */
const graphArb = fc.integer({ min: 1, max: 9 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    links: fc.array(
      fc.tuple(
        fc.integer({ min: 0, max: n - 1 }),
        fc.integer({ min: 0, max: n - 1 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 2 }),
        fc.boolean(),
      ),
      { maxLength: 30 },
    ),
  }),
)

const key = (i: number) => `rp-${String.fromCharCode(97 + i)}`

function statesOf(g: { n: number; links: [number, number, number, number, boolean][] }) {
  const states = new Map<string, RpLinkState>()
  for (let i = 0; i < g.n; i++)
    states.set(key(i), { origin: key(i), seq: 1, links: [], counts: [] })
  for (const [u, v, c, skew, oneWay] of g.links) {
    if (u === v) continue
    const su = states.get(key(u))!
    const sv = states.get(key(v))!
    su.links = su.links.filter((l) => l.peer !== key(v))
    sv.links = sv.links.filter((l) => l.peer !== key(u))
    su.links.push({ peer: key(v), costUs: c })
    if (!oneWay) sv.links.push({ peer: key(u), costUs: c + skew })
  }
  return states
}

/** Bidirectional edges with their cost (max of both ends), as the backbone must read them. */
function edgesOf(states: Map<string, RpLinkState>) {
  const out: Array<[string, string, number]> = []
  for (const s of states.values()) {
    for (const l of s.links) {
      const back = states.get(l.peer)?.links.find((x) => x.peer === s.origin)
      if (back !== undefined && s.origin < l.peer) {
        out.push([s.origin, l.peer, Math.max(l.costUs, back.costUs)])
      }
    }
  }
  return out
}

function reachable(self: string, edges: Array<[string, string, number]>): Set<string> {
  const seen = new Set([self])
  const stack = [self]
  while (stack.length > 0) {
    const x = stack.pop()!
    for (const [a, b] of edges) {
      const y = a === x ? b : b === x ? a : undefined
      if (y !== undefined && !seen.has(y)) {
        seen.add(y)
        stack.push(y)
      }
    }
  }
  return seen
}

/** Minimum spanning tree weight by Prim's algorithm: an independent reference. */
function primWeight(nodes: Set<string>, edges: Array<[string, string, number]>): number {
  const [start] = nodes
  const inTree = new Set([start])
  let total = 0
  while (inTree.size < nodes.size) {
    let best = Number.POSITIVE_INFINITY
    let next = ''
    for (const [a, b, c] of edges) {
      if (inTree.has(a) !== inTree.has(b) && c < best) {
        best = c
        next = inTree.has(a) ? b : a
      }
    }
    inTree.add(next)
    total += best
  }
  return total
}

describe('backbone tree', () => {
  it('spans exactly the reachable RPs, never loops, has minimum total RTT', () => {
    fc.assert(
      fc.property(graphArb, fc.integer({ min: 0, max: 8 }), (g, s) => {
        const states = statesOf(g)
        const self = key(s % g.n)
        const tree = computeBackbone(self, states)
        const edges = edgesOf(states)
        const want = reachable(self, edges)
        expect(new Set(tree.nodes)).toEqual(want)
        // A connected graph on k nodes with k - 1 edges is a tree: no loop.
        expect(tree.edges.length).toBe(want.size - 1)
        const treeEdges = tree.edges.map((e) => [e.a, e.b, e.cost] as [string, string, number])
        expect(reachable(self, treeEdges)).toEqual(want)
        const weight = tree.edges.reduce((a, e) => a + e.cost, 0)
        expect(weight).toBe(primWeight(want, edges))
      }),
      { numRuns: 500 },
    )
  })

  it('is the same tree at every RP of a component, whatever order the states arrive in', () => {
    fc.assert(
      fc.property(graphArb, fc.integer(), (g, seed) => {
        const states = statesOf(g)
        const first = computeBackbone(key(0), states)
        const shuffled = new Map(
          [...states].sort(
            (x, y) => ((x[0].charCodeAt(3) * seed) % 7) - ((y[0].charCodeAt(3) * seed) % 7),
          ),
        )
        for (const n of first.nodes) {
          expect(computeBackbone(n, shuffled).edges).toEqual(first.edges)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('builds source trees of shortest paths that span the reachable RPs without loops', () => {
    fc.assert(
      fc.property(graphArb, fc.integer({ min: 0, max: 8 }), (g, s) => {
        const states = statesOf(g)
        const root = key(s % g.n)
        const parents = computeSourceTree(root, states)
        const edges = edgesOf(states)
        expect(new Set(parents.keys())).toEqual(reachable(root, edges))
        // Bellman-Ford distances: the reference for shortest paths.
        const dist = new Map<string, number>([[root, 0]])
        for (let i = 0; i < g.n; i++) {
          for (const [a, b, c] of edges) {
            for (const [x, y] of [
              [a, b],
              [b, a],
            ]) {
              const dx = dist.get(x)
              if (dx !== undefined && dx + c < (dist.get(y) ?? Number.POSITIVE_INFINITY)) {
                dist.set(y, dx + c)
              }
            }
          }
        }
        const cost = (x: string, y: string) =>
          edges.find(([a, b]) => (a === x && b === y) || (a === y && b === x))![2]
        for (const n of parents.keys()) {
          // Walking up the parents reaches the root (no loop) along a shortest path.
          let at = n
          let length = 0
          for (let hops = 0; at !== root; hops++) {
            expect(hops).toBeLessThan(g.n)
            length += cost(at, parents.get(at)!)
            at = parents.get(at)!
          }
          expect(length).toBe(dist.get(n))
        }
        // Children are the inverse of parents.
        let children = 0
        for (const n of parents.keys()) children += sourceTreeChildren(parents, n).length
        expect(children).toBe(parents.size - 1)
      }),
      { numRuns: 500 },
    )
  })

  it('drops an RP whose neighbours withdrew their links, and reconnects the rest', () => {
    // a - b - c in a line, plus a slower a - c link.
    const states = new Map<string, RpLinkState>([
      [
        'a',
        {
          origin: 'a',
          seq: 1,
          links: [
            { peer: 'b', costUs: 1 },
            { peer: 'c', costUs: 10 },
          ],
          counts: [],
        },
      ],
      [
        'b',
        {
          origin: 'b',
          seq: 1,
          links: [
            { peer: 'a', costUs: 1 },
            { peer: 'c', costUs: 1 },
          ],
          counts: [],
        },
      ],
      [
        'c',
        {
          origin: 'c',
          seq: 1,
          links: [
            { peer: 'b', costUs: 1 },
            { peer: 'a', costUs: 10 },
          ],
          counts: [],
        },
      ],
    ])
    expect(treeNeighbours(computeBackbone('a', states), 'a')).toEqual(['b'])
    // b dies: a and c withdraw their links to it; b's stale state still lists them.
    states.set('a', { origin: 'a', seq: 2, links: [{ peer: 'c', costUs: 10 }], counts: [] })
    states.set('c', { origin: 'c', seq: 2, links: [{ peer: 'a', costUs: 10 }], counts: [] })
    const after = computeBackbone('a', states)
    expect(after.nodes).toEqual(['a', 'c'])
    expect(treeNeighbours(after, 'a')).toEqual(['c'])
  })
})
