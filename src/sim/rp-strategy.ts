import type { Env } from '../common/env.ts'
import { type MemberOptions, RpMember } from '../rp/member.ts'
import { ReplicationPoint, type ReplicationPointOptions } from '../rp/replication-point.ts'
import { type Graph, graphFromEdges } from './graph.ts'
import { SimLan } from './lan.ts'
import { type SimCore, simNodeName } from './network.ts'
import {
  type Placement,
  PROVIDERS,
  placementLatency,
  providerClusteredPlacement,
  REGIONS,
  singleRegionPlacement,
  uniformLatency,
} from './placement.ts'
import type { Prng } from './prng.ts'
import {
  type BuiltNetwork,
  type Scenario,
  type SimStrategy,
  type StrategyContext,
  scenarioBandwidth,
} from './scenario.ts'
import { SimKeyring } from './sim-signatures.ts'

/** How the RP infrastructure is laid over a scenario's members. */
export interface RpSimOptions {
  /**
   * RPs per site. On the provider-clustered topology a site is a provider's region (17 of
   * them) or a region's independent hosts (8): 25 sites, so 1 gives 25 RPs and 2 gives 50.
   * On the other topologies, the RP count is `sites × max(3, round(nodes / 100) / 25)`.
   */
  rpsPerSite?: number
  /** RPs each member knows: its primary and the backups (default 3). */
  rpsPerMember?: number
  /** Options of every RP core (`backbone` is filled in). */
  rp?: Omit<ReplicationPointOptions, 'backbone' | 'lan' | 'signatures'>
  /** Options of every member core (`rps` is filled in). */
  member?: Omit<MemberOptions, 'rps' | 'lan' | 'signatures'>
  /**
   * RPs multicast to their site's members over the site's LAN (issue 10, {@link SimLan}):
   * one transmission per message at the RP, replicated to every member that joined.
   * Default false: unicast to every member.
   */
  multicast?: boolean
  /** With `multicast`: probability that one member's copy of a datagram is lost (default 0). */
  lanLoss?: number
  /** With `multicast`: members with no LAN (multicast never reaches them; served by unicast). */
  withoutLan?: (member: number) => boolean
  /**
   * Publishers sign what they publish and RPs and members verify it (real Ed25519 keys from
   * a {@link SimKeyring}), as under libp2p. Default true; false: members trust their RPs.
   */
  signatures?: boolean
}

/** A scenario's network with RP infrastructure: members first, then the RPs. */
export interface RpNetwork extends BuiltNetwork {
  /** Index of the first RP node; nodes `[firstRp, graph.n)` are RPs. */
  firstRp: number
  /** Each member's RPs (node indices), primary first. */
  rpLists: Int32Array[]
  /** The sites' LANs, with the `multicast` option. */
  lan?: SimLan
  /** The nodes' keys, unless `signatures` is false. */
  keyring?: SimKeyring
}

/**
 * Builds the RP network for `scenario`: its `nodes` members placed as the topology says,
 * plus RPs placed per site (inside each provider's regions and each region's independent
 * hosting, seed 000); each member is linked to its nearest RPs (the same site first), and
 * the RPs to one another (a full mesh: the backbone tree is chosen on top of it).
 */
export function buildRpNetwork(scenario: Scenario, prng: Prng, opts: RpSimOptions = {}): RpNetwork {
  const n = scenario.nodes
  const perSite = opts.rpsPerSite ?? 1
  const perMember = opts.rpsPerMember ?? 3
  const clustered = scenario.topology === 'provider-clustered'
  const members = clustered ? providerClusteredPlacement(n, prng.fork('placement')) : undefined
  // Sites: (provider, region) pairs, then (independent, region).
  const sites: Array<{ provider: number; region: number }> = []
  if (clustered) {
    for (const [p, prov] of PROVIDERS.entries()) {
      for (const r of prov.regions) sites.push({ provider: p, region: r })
    }
    for (let r = 0; r < REGIONS.length; r++) sites.push({ provider: -1, region: r })
  } else {
    const count = Math.max(3, Math.round((n / 100) * perSite))
    for (let i = 0; i < count; i++) sites.push({ provider: -1, region: 0 })
  }
  const rpCount = clustered ? sites.length * perSite : sites.length
  const total = n + rpCount
  const placement: Placement = clustered
    ? { region: new Int8Array(total), provider: new Int8Array(total).fill(-1) }
    : singleRegionPlacement(total)
  if (members !== undefined) {
    placement.region.set(members.region)
    placement.provider.set(members.provider)
  }
  for (let k = 0; k < rpCount; k++) {
    const site = clustered ? Math.floor(k / perSite) : k
    placement.region[n + k] = sites[site].region
    placement.provider[n + k] = sites[site].provider
  }
  const latency = clustered ? placementLatency(placement) : uniformLatency(scenario.latencyMs)

  const edges: number[] = []
  const rpLists: Int32Array[] = []
  const pick = prng.fork('rp-assignment')
  const candidates = Array.from({ length: rpCount }, (_, k) => n + k)
  for (let i = 0; i < n; i++) {
    let ranked: number[]
    if (clustered) {
      // Nearest first; among RPs of the member's own site, a random one leads (load spread).
      const own = candidates.filter(
        (c) =>
          placement.region[c] === placement.region[i] &&
          placement.provider[c] === placement.provider[i],
      )
      const first = own.length > 0 ? own[pick.int(own.length)] : undefined
      ranked = candidates
        .filter((c) => c !== first)
        .map((c) => ({ c, d: latency(i, c) }))
        .sort((a, b) => a.d - b.d || a.c - b.c)
        .map((x) => x.c)
      if (first !== undefined) ranked.unshift(first)
    } else {
      const start = i % rpCount
      ranked = Array.from({ length: rpCount }, (_, j) => n + ((start + j) % rpCount))
    }
    const list = Int32Array.from(ranked.slice(0, Math.min(perMember, rpCount)))
    rpLists.push(list)
    for (const rp of list) edges.push(i, rp)
  }
  for (let a = n; a < total; a++) for (let b = a + 1; b < total; b++) edges.push(a, b)
  const graph: Graph = graphFromEdges(total, edges)
  // RPs are infrastructure: data-centre uplinks wherever they sit.
  const uploadBps = scenarioBandwidth(scenario, placement, (i) => i >= n)
  // A site's LAN: its provider and region (one site per node off the clustered topology).
  const lan = opts.multicast
    ? new SimLan({
        site: (i) => (clustered ? placement.provider[i] * 64 + placement.region[i] : 0),
        latency,
        uploadBps: (i) => uploadBps(i),
        loss: opts.lanLoss,
        seed: `${scenario.seed}-lan`,
      })
    : undefined
  return {
    graph,
    latency,
    uploadBps,
    placement,
    members: Array.from({ length: n }, (_, i) => i),
    firstRp: n,
    rpLists,
    lan,
    keyring: opts.signatures === false ? undefined : new SimKeyring({ seed: scenario.seed }),
  }
}

/** Builds node `index`'s core on an {@link RpNetwork}: a member or an RP. */
export function createRpCore(
  env: Env,
  index: number,
  network: RpNetwork,
  opts: RpSimOptions = {},
): SimCore {
  const sim = network.lan
  const signatures = network.keyring?.forNode(env.self)
  if (index < network.firstRp) {
    const rps = [...network.rpLists[index]].map(simNodeName)
    if (sim === undefined || opts.withoutLan?.(index)) {
      return new RpMember(env, { ...opts.member, rps, signatures })
    }
    let member: RpMember | undefined
    const lan = sim.attach(index, env, {
      datagramReceived: (source, bytes) => member?.datagramReceived(source, bytes),
    })
    member = new RpMember(env, { ...opts.member, rps, lan, signatures })
    return member
  }
  const backbone: string[] = []
  for (let i = network.firstRp; i < network.graph.n; i++) backbone.push(simNodeName(i))
  const lan = sim?.attach(index, env, undefined)
  return new ReplicationPoint(env, { ...opts.rp, backbone, lan, signatures })
}

/** The RP strategy for the simulator, with `opts` for its infrastructure. */
export function rpSimStrategy(opts: RpSimOptions = {}): SimStrategy {
  return {
    name: 'rp',
    description: 'members register with replication points; RPs forward once along a backbone tree',
    network: (scenario, prng) => buildRpNetwork(scenario, prng, opts),
    create: (env: Env, index: number, ctx: StrategyContext) =>
      createRpCore(env, index, ctx.network as RpNetwork, opts),
  }
}

/** Replication points: members register with RPs placed per provider; RPs forward once along a backbone tree. */
export const rpStrategy: SimStrategy = rpSimStrategy()
