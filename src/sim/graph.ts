import { InvalidParametersError } from '../common/errors.ts'
import { EventQueue } from './event-queue.ts'
import type { Prng } from './prng.ts'

/**
 * An undirected graph in compressed sparse row form: the neighbours of node `i` are
 * `neighbors[offsets[i] .. offsets[i + 1])`. Compact enough for 72,000 nodes × 50 peers.
 */
export interface Graph {
  /** Number of nodes. */
  readonly n: number
  /** Row offsets, length n + 1. */
  readonly offsets: Int32Array
  /** Concatenated neighbour lists. */
  readonly neighbors: Int32Array
}

/** The neighbours of node `i` (a view). */
export function neighborsOf(g: Graph, i: number): Int32Array {
  return g.neighbors.subarray(g.offsets[i], g.offsets[i + 1])
}

/** Number of undirected edges. */
export function edgeCount(g: Graph): number {
  return g.neighbors.length / 2
}

/** Builds a graph from undirected edges given as a flat array [u0, v0, u1, v1, ...]. */
export function graphFromEdges(n: number, edges: ArrayLike<number>): Graph {
  const deg = new Int32Array(n + 1)
  for (let e = 0; e < edges.length; e++) {
    const v = edges[e]
    if (!(v >= 0 && v < n)) throw new InvalidParametersError(`edge endpoint ${v} out of range`)
    deg[v]++
  }
  const offsets = new Int32Array(n + 1)
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + deg[i]
  const fill = offsets.slice(0, n)
  const neighbors = new Int32Array(offsets[n])
  for (let e = 0; e < edges.length; e += 2) {
    const u = edges[e]
    const v = edges[e + 1]
    neighbors[fill[u]++] = v
    neighbors[fill[v]++] = u
  }
  return { n, offsets, neighbors }
}

/** Every node connected to every other (an Internet Computer subnet). */
export function fullMeshGraph(n: number): Graph {
  const edges: number[] = []
  for (let u = 0; u < n; u++) for (let v = u + 1; v < n; v++) edges.push(u, v)
  return graphFromEdges(n, edges)
}

/**
 * A uniformly shuffled simple k-regular graph (Ethereum-like with k = 50): random pairing of
 * stubs, then degree-preserving edge swaps to remove the few self-loops and double edges.
 */
export function randomRegularGraph(n: number, k: number, prng: Prng): Graph {
  if (!Number.isInteger(n) || !Number.isInteger(k) || k < 0 || n < 1) {
    throw new InvalidParametersError(`bad regular graph size n=${n} k=${k}`)
  }
  if (k >= n) throw new InvalidParametersError(`degree ${k} needs more than ${n} nodes`)
  if ((n * k) % 2 !== 0) throw new InvalidParametersError(`n × k must be even (n=${n}, k=${k})`)
  if (k === n - 1) return fullMeshGraph(n)
  // Dense graphs can leave a bad pair no valid swap fixes; then start over.
  for (let attempt = 0; attempt < 100; attempt++) {
    const edges = tryRegularPairing(n, k, prng)
    if (edges !== undefined) return graphFromEdges(n, edges)
  }
  throw new InvalidParametersError(`cannot build a ${k}-regular graph on ${n} nodes`)
}

function tryRegularPairing(n: number, k: number, prng: Prng): Int32Array | undefined {
  const stubs = new Int32Array(n * k)
  for (let i = 0; i < stubs.length; i++) stubs[i] = Math.floor(i / k)
  prng.shuffle(stubs)

  const m = stubs.length / 2
  const eu = new Int32Array(m)
  const ev = new Int32Array(m)
  const present = new Set<number>()
  const key = (u: number, v: number) => (u < v ? u * n + v : v * n + u)
  let edgesAdded = 0
  const bad: number[] = []
  for (let i = 0; i < stubs.length; i += 2) {
    const u = stubs[i]
    const v = stubs[i + 1]
    if (u === v || present.has(key(u, v))) {
      bad.push(u, v)
      continue
    }
    present.add(key(u, v))
    eu[edgesAdded] = u
    ev[edgesAdded] = v
    edgesAdded++
  }
  // Each bad pair (u, v) takes a random good edge (x, y) and becomes (u, x) and (v, y).
  for (let b = 0; b < bad.length; b += 2) {
    const u = bad[b]
    const v = bad[b + 1]
    for (let attempt = 0; ; attempt++) {
      if (attempt > 10 * (edgesAdded + 10)) return undefined
      const e = prng.int(edgesAdded)
      let x = eu[e]
      let y = ev[e]
      if (prng.next() < 0.5) [x, y] = [y, x]
      if (x === u || x === v || y === u || y === v) continue
      if (present.has(key(u, x)) || present.has(key(v, y))) continue
      present.delete(key(x, y))
      present.add(key(u, x))
      present.add(key(v, y))
      eu[e] = u
      ev[e] = x
      eu[edgesAdded] = v
      ev[edgesAdded] = y
      edgesAdded++
      break
    }
  }
  const edges = new Int32Array(2 * m)
  for (let e = 0; e < m; e++) {
    edges[2 * e] = eu[e]
    edges[2 * e + 1] = ev[e]
  }
  return edges
}

/** Hop distances from `source` by breadth-first search (-1 where unreachable). */
export function hopDistances(g: Graph, source: number): Int32Array {
  const dist = new Int32Array(g.n).fill(-1)
  const queue = new Int32Array(g.n)
  let head = 0
  let tail = 0
  dist[source] = 0
  queue[tail++] = source
  while (head < tail) {
    const u = queue[head++]
    for (let j = g.offsets[u]; j < g.offsets[u + 1]; j++) {
      const v = g.neighbors[j]
      if (dist[v] === -1) {
        dist[v] = dist[u] + 1
        queue[tail++] = v
      }
    }
  }
  return dist
}

/**
 * Least arrival time at every node of a spread over `g` that starts at `entries` (node, time)
 * and takes `hop(u, v)` to cross edge u → v: Dijkstra from many sources. `from[v]` is the node
 * whose copy reached v first (-1 at an entry nothing beat, and where nothing arrived). Nodes
 * `skip` names are never reached (a node gone, or a source that spreads only by its entries).
 */
export function leastArrival(
  g: Graph,
  entries: Iterable<readonly [node: number, time: number]>,
  hop: (u: number, v: number) => number,
  skip: (v: number) => boolean = () => false,
): { time: Float64Array; from: Int32Array } {
  const time = new Float64Array(g.n).fill(Number.POSITIVE_INFINITY)
  const from = new Int32Array(g.n).fill(-1)
  const done = new Uint8Array(g.n)
  const heap = new EventQueue<number>()
  for (const [v, t] of entries) {
    if (skip(v) || t >= time[v]) continue
    time[v] = t
    heap.push(t, v)
  }
  while (heap.size > 0) {
    const t = heap.peekTime()
    const u = heap.pop() as number
    if (done[u] === 1 || t > time[u]) continue
    done[u] = 1
    for (let j = g.offsets[u]; j < g.offsets[u + 1]; j++) {
      const v = g.neighbors[j]
      if (done[v] === 1 || skip(v)) continue
      const tv = t + hop(u, v)
      if (tv < time[v]) {
        time[v] = tv
        from[v] = u
        heap.push(tv, v)
      }
    }
  }
  return { time, from }
}
