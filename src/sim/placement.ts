import type { Prng } from './prng.ts'

/** A region, with its share of nodes in the provider-clustered topology. */
export interface Region {
  /** Short name. */
  readonly name: string
  /** Fraction of independently hosted nodes placed here. */
  readonly share: number
}

/** A hosting provider: its share of all nodes and the regions it has data centres in. */
export interface Provider {
  /** Name. */
  readonly name: string
  /** Fraction of all nodes it hosts. */
  readonly share: number
  /** Indices into {@link REGIONS}. */
  readonly regions: readonly number[]
}

/** Eight coarse regions of the Internet. */
export const REGIONS: readonly Region[] = [
  { name: 'us-east', share: 0.25 },
  { name: 'us-west', share: 0.1 },
  { name: 'eu-west', share: 0.15 },
  { name: 'eu-central', share: 0.25 },
  { name: 'asia-east', share: 0.12 },
  { name: 'asia-se', share: 0.05 },
  { name: 'south-america', share: 0.03 },
  { name: 'oceania', share: 0.05 },
]

/**
 * One-way propagation latency between regions in milliseconds (about half the public
 * inter-region round-trip times); the diagonal is the latency between two hosts of one
 * region that are not in the same provider.
 */
export const REGION_LATENCY_MS: readonly (readonly number[])[] = [
  [4, 32, 38, 45, 80, 110, 60, 100],
  [32, 4, 70, 75, 55, 85, 90, 70],
  [38, 70, 4, 8, 110, 85, 95, 140],
  [45, 75, 8, 4, 115, 80, 100, 145],
  [80, 55, 110, 115, 4, 35, 130, 60],
  [110, 85, 85, 80, 35, 4, 160, 50],
  [60, 90, 95, 100, 130, 160, 4, 150],
  [100, 70, 140, 145, 60, 50, 150, 4],
]

/** Latency between two hosts of one provider in one region (same data centre network). */
export const INTRA_PROVIDER_LATENCY_MS = 0.5

/**
 * The providers that host about half of Ethereum's ~72K nodes (seed 000: ten providers,
 * 50.5% of peers). The rest of the nodes are hosted independently.
 */
export const PROVIDERS: readonly Provider[] = [
  { name: 'Hetzner', share: 0.095, regions: [3] },
  { name: 'Amazon', share: 0.224, regions: [0, 1, 2, 4, 5] },
  { name: 'DigitalOcean', share: 0.053, regions: [0, 3, 5] },
  { name: 'Contabo', share: 0.05, regions: [3, 0] },
  { name: 'Google', share: 0.033, regions: [0, 1, 2, 4] },
  { name: 'China Mobile', share: 0.03, regions: [4] },
  { name: 'IPXO', share: 0.02, regions: [2] },
]

/** Where each node is: its region, and its provider (-1 when hosted independently). */
export interface Placement {
  /** Region index per node. */
  readonly region: Int8Array
  /** Provider index per node, -1 for independent hosting. */
  readonly provider: Int8Array
}

/** Every node in one region, each independently hosted. */
export function singleRegionPlacement(n: number): Placement {
  return { region: new Int8Array(n), provider: new Int8Array(n).fill(-1) }
}

/**
 * Places nodes as Ethereum's are (seed 000): about half in the big providers' data centres,
 * the rest spread over the regions by their shares. Deterministic for a seeded `prng`.
 */
export function providerClusteredPlacement(n: number, prng: Prng): Placement {
  const region = new Int8Array(n)
  const provider = new Int8Array(n).fill(-1)
  const pick = (shares: readonly number[]) => {
    const total = shares.reduce((a, b) => a + b, 0)
    let r = prng.next() * total
    for (let i = 0; i < shares.length; i++) {
      r -= shares[i]
      if (r < 0) return i
    }
    return shares.length - 1
  }
  const providerShares = PROVIDERS.map((p) => p.share)
  const hosted = providerShares.reduce((a, b) => a + b, 0)
  const regionShares = REGIONS.map((r) => r.share)
  for (let i = 0; i < n; i++) {
    if (prng.next() < hosted) {
      const p = pick(providerShares)
      provider[i] = p
      const regions = PROVIDERS[p].regions
      region[i] = regions[prng.int(regions.length)]
    } else {
      region[i] = pick(regionShares)
    }
  }
  return { region, provider }
}

/** One-way latency between two nodes, in milliseconds. */
export type LatencyFn = (a: number, b: number) => number

/** The same latency on every link. */
export function uniformLatency(ms: number): LatencyFn {
  return () => ms
}

/**
 * Latency from placement: intra-provider, intra-region or the region matrix, each link
 * scaled by a fixed per-link factor in [1 - jitter, 1 + jitter] (a hash of the link, so it
 * costs no memory and is the same in both directions).
 */
export function placementLatency(placement: Placement, jitter = 0.2): LatencyFn {
  const { region, provider } = placement
  return (a, b) => {
    const ra = region[a]
    const rb = region[b]
    const base =
      ra === rb && provider[a] >= 0 && provider[a] === provider[b]
        ? INTRA_PROVIDER_LATENCY_MS
        : REGION_LATENCY_MS[ra][rb]
    const lo = Math.min(a, b)
    const hi = Math.max(a, b)
    let h = Math.imul(lo ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(hi ^ 0x7f4a7c15, 0xc2b2ae35)
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d)
    h = ((h ^ (h >>> 13)) >>> 0) / 4294967296
    return base * (1 - jitter + 2 * jitter * h)
  }
}

/** Upload bandwidth of a provider-hosted node (bits/s). */
export const PROVIDER_UPLOAD_BPS = 1e9
/** Upload bandwidth of an independently hosted node (bits/s). */
export const HOME_UPLOAD_BPS = 100e6

/** Upload bandwidth from placement: data-centre nodes 1 Gbit/s, the others 100 Mbit/s. */
export function placementBandwidth(placement: Placement): (node: number) => number {
  return (i) => (placement.provider[i] >= 0 ? PROVIDER_UPLOAD_BPS : HOME_UPLOAD_BPS)
}
