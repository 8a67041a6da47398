import type { RpLinkState } from './codec.ts'

/** One edge of the backbone tree: two RP keys, `a < b`, and the link's cost. */
export interface BackboneEdge {
  /** The smaller RP key. */
  readonly a: string
  /** The larger RP key. */
  readonly b: string
  /** Cost in microseconds of round-trip time (the larger of the two ends' measurements). */
  readonly cost: number
}

/** The backbone tree as one RP sees it: the part that spans the RPs it can reach. */
export interface Backbone {
  /** Every RP reachable from `self` (including it), sorted. */
  readonly nodes: readonly string[]
  /** The tree's edges, sorted by (cost, a, b). */
  readonly edges: readonly BackboneEdge[]
  /** Tree neighbours of each reachable RP. */
  readonly adjacency: ReadonlyMap<string, readonly string[]>
}

const byKey = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0)

/**
 * Computes the backbone tree from the shared link-state view: the minimum spanning tree by
 * total round-trip time (Kruskal, ties broken by the RP keys), restricted to the component
 * that contains `self`. A link counts only when both ends advertise it, as in link-state
 * routing, so an RP that died (its neighbours withdrew their links) drops out even though its
 * own last state still lists them. Every RP with the same view computes the same tree.
 */
export function computeBackbone(self: string, states: ReadonlyMap<string, RpLinkState>): Backbone {
  const cost = new Map<string, Map<string, number>>()
  for (const s of states.values()) {
    const m = new Map<string, number>()
    for (const l of s.links) if (l.peer !== s.origin) m.set(l.peer, l.costUs)
    cost.set(s.origin, m)
  }
  const candidates: BackboneEdge[] = []
  for (const [u, links] of cost) {
    for (const [v, c] of links) {
      if (!(u < v)) continue
      const back = cost.get(v)?.get(u)
      if (back === undefined) continue
      candidates.push({ a: u, b: v, cost: Math.max(c, back) })
    }
  }
  candidates.sort((x, y) => x.cost - y.cost || byKey(x.a, y.a) || byKey(x.b, y.b))

  const parent = new Map<string, string>()
  const find = (x: string): string => {
    let r = x
    while (parent.get(r) !== undefined && parent.get(r) !== r) r = parent.get(r)!
    // Path compression keeps later finds short.
    let y = x
    while (y !== r) {
      const next = parent.get(y)!
      parent.set(y, r)
      y = next
    }
    return r
  }
  const forest: BackboneEdge[] = []
  for (const e of candidates) {
    const ra = find(e.a)
    const rb = find(e.b)
    if (ra === rb) continue
    parent.set(ra, rb)
    forest.push(e)
  }

  const adj = new Map<string, string[]>()
  const link = (x: string, y: string) => {
    const l = adj.get(x)
    if (l === undefined) adj.set(x, [y])
    else l.push(y)
  }
  for (const e of forest) {
    link(e.a, e.b)
    link(e.b, e.a)
  }
  const root = find(self)
  const nodes = [...new Set([self, ...adj.keys()])].filter((n) => find(n) === root).sort(byKey)
  const inTree = new Set(nodes)
  const adjacency = new Map<string, string[]>()
  for (const n of nodes) adjacency.set(n, (adj.get(n) ?? []).slice().sort(byKey))
  return {
    nodes,
    edges: forest.filter((e) => inTree.has(e.a)),
    adjacency,
  }
}

/**
 * The shortest-path tree rooted at `root` over the same view (links both ends advertise,
 * cost the larger of the two RTTs): each reachable RP mapped to its parent (the root to
 * itself). PIM's source tree: a message from `root`'s members takes the fastest RP path
 * instead of the shared tree's. Dijkstra settling the closest RP first, ties to the smaller
 * key, so every RP with the same view gets the same tree.
 */
export function computeSourceTree(
  root: string,
  states: ReadonlyMap<string, RpLinkState>,
): Map<string, string> {
  const cost = bidirectionalCosts(states)
  const dist = new Map<string, number>([[root, 0]])
  const parent = new Map<string, string>([[root, root]])
  const settled = new Set<string>()
  for (;;) {
    let u: string | undefined
    for (const [n, d] of dist) {
      if (settled.has(n)) continue
      if (u === undefined || d < dist.get(u)! || (d === dist.get(u)! && n < u)) u = n
    }
    if (u === undefined) break
    settled.add(u)
    for (const [v, c] of cost.get(u) ?? []) {
      if (settled.has(v)) continue
      const d = dist.get(u)! + c
      const old = dist.get(v)
      if (old === undefined || d < old || (d === old && u < parent.get(v)!)) {
        dist.set(v, d)
        parent.set(v, u)
      }
    }
  }
  return parent
}

/** Links both ends advertise, with the larger of the two costs, in both directions. */
function bidirectionalCosts(states: ReadonlyMap<string, RpLinkState>) {
  const out = new Map<string, Map<string, number>>()
  for (const s of states.values()) {
    for (const l of s.links) {
      if (l.peer === s.origin) continue
      const back = states.get(l.peer)?.links.find((x) => x.peer === s.origin)
      if (back === undefined) continue
      let m = out.get(s.origin)
      if (m === undefined) {
        m = new Map()
        out.set(s.origin, m)
      }
      m.set(l.peer, Math.max(l.costUs, back.costUs))
    }
  }
  return out
}

/** The children of `self` in a source tree from {@link computeSourceTree}. */
export function sourceTreeChildren(parents: ReadonlyMap<string, string>, self: string): string[] {
  const out: string[] = []
  for (const [n, p] of parents) if (p === self && n !== self) out.push(n)
  return out.sort(byKey)
}

/** The tree neighbours of `self` in `tree`. */
export function treeNeighbours(tree: Backbone, self: string): readonly string[] {
  return tree.adjacency.get(self) ?? []
}
