import { SIM_VALIDATION_DELAY } from '../../src/sim/gossip-strategy.ts'
import { type Graph, leastArrival, neighborsOf, randomRegularGraph } from '../../src/sim/graph.ts'
import { placementLatency, providerClusteredPlacement } from '../../src/sim/placement.ts'
import { Prng } from '../../src/sim/prng.ts'

/** Connections per node, as in gossip-sim. */
const CONNECTIONS = 50
/** Mesh degree of the random mesh standing in for the topic's. */
export const MESH = 8
/** Bytes per distance entry: peer hash (4) + distance in 0.1 ms units with the parent bit (2). */
export const ENTRY_BYTES = 6
/** Per-hop validation delay of a 256 B message in the simulator. */
const VALIDATION_MS =
  SIM_VALIDATION_DELAY.validationDelayMs + SIM_VALIDATION_DELAY.validationDelayMsPerKB * 0.256

/**
 * The network the per-source tree models (source-tree-exchange, landmark-trees) work on:
 * `n` nodes placed as in gossip-sim (provider-clustered latency), 50 connections each, a
 * random 8-regular mesh standing in for the topic's mesh; a hop of a 256 B message costs the
 * link's one-way latency plus its validation. `prng` is left for the model's own draws.
 */
export function modelNetwork(n: number, seed: number) {
  const prng = new Prng(seed)
  const conn: Graph = randomRegularGraph(n, CONNECTIONS, prng.fork('graph'))
  const mesh: Graph = randomRegularGraph(n, MESH, prng.fork('mesh'))
  const latency = placementLatency(providerClusteredPlacement(n, prng.fork('placement')))
  const hop = (u: number, v: number) => latency(u, v) + VALIDATION_MS
  /** A publisher's flood: each of its connections at the hop's cost. */
  const floodOf = (s: number) => [...neighborsOf(conn, s)].map((r) => [r, hop(s, r)] as const)
  /**
   * Least delay from `src` to every node over its flood and then mesh links (stock's first
   * arrival, and per-source trees' latency), with node `gone` removed (-1: none).
   */
  const floodArrival = (src: number, gone = -1): Float64Array => {
    // The source's copy goes no further than its flood: it does not push over the mesh.
    const d = leastArrival(mesh, floodOf(src), hop, (v) => v === gone || v === src).time
    d[src] = 0
    return d
  }
  return { prng, conn, mesh, latency, hop, floodOf, floodArrival }
}
