/**
 * What a distance-vector exchange for per-source trees would cost (doc/gossip-extension.md,
 * "Per-source trees from link latency"): a model, no protocol runs here.
 *
 * For `--nodes` nodes placed as in gossip-sim (provider-clustered latency, 50 connections
 * each, a random 8-regular mesh standing in for the topic's mesh), each node X keeps, for every
 * source S, d(S, X): the least delay from S over S's flood to its connections and then mesh
 * links, each hop counting the link's one-way latency plus the 256 B validation delay. Nodes
 * send their mesh peers an entry (source hash 4 B + distance and parent bit 2 B) whenever their
 * distance for a source changes, batched per heartbeat: the synchronous Bellman-Ford rounds
 * counted here. For `--sources` sampled sources it counts:
 * - cold start (every node joins at once, knowing only its connections' latency): entries sent
 *   until no distance changes, and the heartbeats that takes;
 * - one node leaving (converged tables, the node gone): entries that must change, each sent to
 *   every mesh peer of its node (a lower bound: count-to-infinity transients come on top);
 * and scales both to every source (each source's exchange is independent of the others).
 *
 * Usage: npm run bench -- source-tree-exchange [--nodes 1000,13000] [--sources 200] [--seed 1]
 */
import { neighborsOf } from '../src/sim/graph.ts'
import { ENTRY_BYTES, MESH, modelNetwork } from './gossip-sim/model-network.ts'
import { argValue, fmt, printTable, type Row, writeResults } from './report.ts'

const sizes = (argValue('--nodes') ?? '1000,13000').split(',').map(Number)
const SOURCES = Number(argValue('--sources') ?? 200)
const seed = Number(argValue('--seed') ?? 1)

/** Cold start from `src`: heartbeat-synchronous Bellman-Ford; entries sent and rounds taken. */
function coldStart(
  n: number,
  { mesh, hop, floodOf }: ReturnType<typeof modelNetwork>,
  src: number,
): { entries: number; rounds: number } {
  let d = new Float64Array(n).fill(Number.POSITIVE_INFINITY)
  d[src] = 0
  const flood = floodOf(src)
  for (const [r, t] of flood) d[r] = t
  let changed: number[] = flood.map(([r]) => r)
  let entries = 0
  let rounds = 0
  while (changed.length > 0) {
    rounds++
    const next = d.slice()
    const touched = new Set<number>()
    for (const y of changed) {
      const peers = neighborsOf(mesh, y)
      entries += peers.length
      for (const q of peers) {
        if (q === src) continue
        const dq = d[y] + hop(y, q)
        if (dq < next[q]) {
          next[q] = dq
          touched.add(q)
        }
      }
    }
    d = next
    changed = [...touched]
  }
  return { entries, rounds }
}

const rows: Row[] = []
const out: Record<string, number> = {}
for (const n of sizes) {
  const net = modelNetwork(n, seed)
  const pick = net.prng.fork('sources')
  let coldEntries = 0
  let maxRounds = 0
  let leaveEntries = 0
  const sampled = Math.min(SOURCES, n)
  for (let s = 0; s < sampled; s++) {
    const src = pick.int(n)
    const cold = coldStart(n, net, src)
    coldEntries += cold.entries
    maxRounds = Math.max(maxRounds, cold.rounds)
    let gone = pick.int(n)
    if (gone === src) gone = (gone + 1) % n
    const before = net.floodArrival(src)
    const after = net.floodArrival(src, gone)
    for (let x = 0; x < n; x++) {
      if (x !== gone && x !== src && after[x] !== before[x]) {
        leaveEntries += neighborsOf(net.mesh, x).length
      }
    }
  }
  // Each source's exchange is independent: scale the sample to all n sources.
  const scale = n / sampled
  const coldBytes = coldEntries * scale * ENTRY_BYTES
  const leaveBytes = leaveEntries * scale * ENTRY_BYTES
  const floor = (n - 1) * 256
  rows.push({
    nodes: n,
    'cold start MB (all nodes)': fmt(coldBytes / 1e6, 1),
    'cold start KB per node': fmt(coldBytes / n / 1e3, 1),
    'sends per entry': fmt(coldEntries / (sampled * n * MESH), 2),
    'in 256 B floors': fmt(coldBytes / floor, 0),
    'heartbeats to converge': maxRounds,
    'one node leaving KB (lower bound)': fmt(leaveBytes / 1e3, 1),
  })
  out[`${n} nodes cold start bytes all nodes`] = coldBytes
  out[`${n} nodes cold start bytes per node`] = coldBytes / n
  out[`${n} nodes cold start sends per node source and mesh peer`] =
    coldEntries / (sampled * n * MESH)
  out[`${n} nodes cold start over the 256 B floor`] = coldBytes / floor
  out[`${n} nodes heartbeats to converge max`] = maxRounds
  out[`${n} nodes one node leaving bytes lower bound`] = leaveBytes
}
printTable(
  `distance-vector exchange for per-source trees (model; ${SOURCES} sampled sources, seed ${seed})`,
  rows,
)
writeResults(`source-tree-exchange-seed${seed}`, out)
