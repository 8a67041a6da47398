/**
 * Trees for a few landmarks instead of every member (a model; no protocol runs here): what
 * they would give random publishers of 256 B messages in latency and duplicates, and what
 * their exchange would hold, against per-source trees for every member (doc/gossip-extension.md,
 * "Trees for every member"), whose exchange is the bytes over the floor at 256 B.
 *
 * The network of gossip-sim/model-network.ts (`--nodes` nodes, 50 connections, a random
 * 8-regular mesh; a hop costs the link's latency plus the 256 B validation delay). Per-source
 * trees for every member are the least-latency spread of the publisher's flood to its
 * connections and then mesh links: the first arrival of stock's flood publish and mesh push, so
 * their latency is the baseline here.
 *
 * `L` landmarks (drawn at random) each root a least-latency tree over mesh links, whose
 * distance vector holds L entries per node instead of one per member. A publisher uses the tree
 * of its nearest landmark (it knows its distance to each from that vector); every node forwards
 * a message over the tree's links but the one it came from, so a tree reached at one point
 * spreads from there both ways. Two ways to enter it:
 * - *tree only*: the publisher sends over its tree links only (one copy per node);
 * - *flood, then tree*: the publisher also floods its connections (as publishers do today), each
 *   of which spreads over the tree: faster, and copies meet on tree links (duplicates).
 *
 * The tables' bytes are a lower bound: each node's converged table sent once to each mesh peer
 * (cold start and mesh changes send more: the real exchange for every member sent 4.4 times
 * this bound in gossip-sim), spread over `--messages` messages against the floor (N − 1) · 256 B.
 *
 * Usage: npm run bench -- landmark-trees [--nodes 1000] [--sources 200] [--landmarks 5,10,20,40,80]
 *   [--messages 30] [--seed 1]
 */
import { distribution } from '../src/common/distribution.ts'
import { type Graph, graphFromEdges, leastArrival, neighborsOf } from '../src/sim/graph.ts'
import { ENTRY_BYTES, MESH, modelNetwork } from './gossip-sim/model-network.ts'
import { argValue, fmt, printTable, type Row, writeResults } from './report.ts'

const N = Number(argValue('--nodes') ?? 1000)
const SOURCES = Number(argValue('--sources') ?? 200)
const LANDMARKS = (argValue('--landmarks') ?? '5,10,20,40,80').split(',').map(Number)
const seed = Number(argValue('--seed') ?? 1)
/** Messages the table's bytes are spread over, as in gossip-sim's runs (`--messages`). */
const MESSAGES = Number(argValue('--messages') ?? 30)
const { prng, mesh, hop, floodOf, floodArrival } = modelNetwork(N, seed)
const pick = prng.fork('sources')
const sources = Array.from({ length: Math.min(SOURCES, N) }, () => pick.int(N))

/** Latency of every delivery (publisher excluded) over the sampled sources. */
function deliveries(arrival: (s: number) => Float64Array): number[] {
  return sources.flatMap((s) => [...arrival(s)].filter((_, v) => v !== s))
}

// Per-source trees for every member: the flood's first arrival (the publisher keeps its copy).
const baseline = deliveries((s) => floodArrival(s))
const base = distribution(baseline)

/** A least-latency tree over mesh links rooted at `root`, and every node's distance to it. */
function treeOf(root: number): { tree: Graph; distance: Float64Array } {
  const { time, from } = leastArrival(mesh, [[root, 0]], hop)
  const edges: number[] = []
  for (let v = 0; v < N; v++) if (from[v] >= 0) edges.push(v, from[v])
  return { tree: graphFromEdges(N, edges), distance: time }
}

/**
 * Copies beyond the first, per node, when `s` publishes over `tree` with the spread `from`
 * (flood targets `flood` also get the publisher's copy): each node sends over every tree
 * link but the one its first copy came over.
 */
function duplicates(s: number, tree: Graph, from: Int32Array, flood: Set<number>): number {
  let copies = 0
  for (let w = 0; w < N; w++) {
    let received = flood.has(w) ? 1 : 0
    for (const u of neighborsOf(tree, w)) {
      if (u === s)
        received += flood.has(w) ? 0 : 1 // one send of the publisher's to w
      else if (from[u] !== w) received++
    }
    copies += w === s ? received : Math.max(0, received - 1)
  }
  return copies / N
}

/** A table of `entries` per node, sent once to each mesh peer: bytes per node, and over the floor. */
function tableBytes(entries: number): { perNode: number; overFloor: number } {
  const perNode = entries * MESH * ENTRY_BYTES
  return { perNode, overFloor: (perNode * N) / ((N - 1) * 256) / MESSAGES }
}
const tableCells = (entries: number) => ({
  'table bytes per node (converged, to 8 mesh peers)': fmt(tableBytes(entries).perNode),
  [`table over the floor, ${MESSAGES} messages (lower bound)`]: fmt(tableBytes(entries).overFloor),
})

const rows: Row[] = [
  {
    trees: `every member (${N})`,
    entry: 'flood, then tree',
    'entries per node': N,
    'p50 / baseline': fmt(1),
    'p99 / baseline': fmt(1),
    'dups per node per message': '0 (a tree per source)',
    ...tableCells(N),
  },
]
const out: Record<string, number> = {
  nodes: N,
  sampledSources: sources.length,
  baselineP50Ms: base.p50,
  baselineP99Ms: base.p99,
  messages: MESSAGES,
  everyMemberTableBytesPerNode: tableBytes(N).perNode,
  everyMemberTableOverFloorLowerBound: tableBytes(N).overFloor,
}
for (const L of LANDMARKS) {
  const draw = prng.fork(`landmarks-${L}`)
  const roots = new Set<number>()
  while (roots.size < Math.min(L, N)) roots.add(draw.int(N))
  const trees = [...roots].map(treeOf)
  const nearest = (s: number) =>
    trees.reduce((a, b) => (b.distance[s] < a.distance[s] ? b : a)).tree
  for (const entry of ['tree only', 'flood, then tree'] as const) {
    let dups = 0
    const latencies = deliveries((s) => {
      const tree = nearest(s)
      const flood = entry === 'tree only' ? [] : floodOf(s)
      const { time, from } = leastArrival(tree, [[s, 0], ...flood], hop)
      dups += duplicates(s, tree, from, new Set(flood.map(([r]) => r)))
      return time
    })
    const d = distribution(latencies)
    const key = `${L} landmarks ${entry}`
    rows.push({
      trees: `${L} landmarks`,
      entry,
      'entries per node': L,
      'p50 / baseline': fmt(d.p50 / base.p50),
      'p99 / baseline': fmt(d.p99 / base.p99),
      'dups per node per message': fmt(dups / sources.length, 3),
      ...tableCells(L),
    })
    out[`${key} p50 over baseline`] = d.p50 / base.p50
    out[`${key} p99 over baseline`] = d.p99 / base.p99
    out[`${key} p99 ms`] = d.p99
    out[`${key} dups per node per message`] = dups / sources.length
    out[`${key} table bytes per node`] = tableBytes(L).perNode
    out[`${key} table over floor lower bound`] = tableBytes(L).overFloor
  }
}
printTable(
  `landmark trees against trees for every member (model; ${N} nodes, ${sources.length} random publishers, 256 B, seed ${seed}; baseline p50 ${fmt(base.p50, 1)} ms, p99 ${fmt(base.p99, 1)} ms)`,
  rows,
)
writeResults(`landmark-trees-seed${seed}`, out)
