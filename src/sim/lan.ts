import type { Env } from '../common/env.ts'
import type { RpLan } from '../rp/lan.ts'
import type { MulticastGroup } from '../rp/multicast/group-address.ts'
import type { LatencyFn } from './placement.ts'
import { Prng } from './prng.ts'

/** A host the LAN hands datagrams to (an RP member core; it ignores them once stopped). */
export interface LanHost {
  datagramReceived(source: string, bytes: Uint8Array): void
}

/** Options of {@link SimLan}. */
export interface SimLanOptions {
  /** The site (LAN) of each node: multicast reaches only hosts of the sender's site. */
  site: (node: number) => number
  /** One-way latency between two hosts. */
  latency: LatencyFn
  /** Each node's upload bandwidth in bits per second (a transmission occupies the uplink). */
  uploadBps: (node: number) => number
  /** Probability that one member's copy of a datagram is lost (default 0). */
  loss?: number
  /** Seed of the loss draws. */
  seed: number | string
}

/** Counters of the LAN model. */
export interface SimLanCounters {
  /** Datagrams sent into a LAN (one per multicast, whatever the number of receivers). */
  transmissions: number
  /** Bytes of those datagrams (IP and UDP headers not counted). */
  bytes: number
  /** Copies handed to joined receivers. */
  copiesDelivered: number
  /** Copies lost (per-member loss, or the receiver down). */
  copiesDropped: number
}

/**
 * The LANs of a simulation's sites (issue 10 item 6): a node's multicast is one
 * transmission at its uplink, which the site's switch replicates to every host of the same
 * site that joined the channel (source, group, port), as IGMP snooping does; each copy is
 * lost with the per-member probability and arrives after the hosts' latency. Multicast
 * never crosses sites. The LAN's traffic is counted here, apart from the simulation's
 * unicast frames.
 */
export class SimLan {
  /** Counters. */
  readonly counters: SimLanCounters = {
    transmissions: 0,
    bytes: 0,
    copiesDelivered: 0,
    copiesDropped: 0,
  }
  /** Transmissions per sending node. */
  readonly transmissionsBy = new Map<number, number>()
  private readonly options: SimLanOptions
  private readonly prng: Prng
  private readonly envs = new Map<number, Env>()
  private readonly hosts = new Map<number, LanHost>()
  private readonly channels = new Map<string, Set<number>>()
  private readonly joinedBy = new Map<number, Set<string>>()
  private readonly uplinkFree = new Map<number, number>()
  private dropListener:
    | ((from: number, to: number, datagram: Uint8Array, at: number) => void)
    | undefined

  constructor(options: SimLanOptions) {
    this.options = options
    this.prng = new Prng(options.seed).fork('lan')
  }

  /** The address of node `i` on its LAN. */
  static address(i: number): string {
    return `lan-${i}`
  }

  /**
   * Calls `fn` for every copy lost to the per-member loss, with the time it would have
   * arrived (the bench measures repair latency from it).
   */
  onDrop(fn: (from: number, to: number, datagram: Uint8Array, at: number) => void): void {
    this.dropListener = fn
  }

  /**
   * Node `i`'s interface to its LAN; called for every new core of the node (a restart
   * forgets the old core's joins), with the core's `env` (its transmissions run on its
   * clock and die with it). `host` receives the datagrams of the channels it joins.
   */
  attach(i: number, env: Env, host: LanHost | undefined): RpLan {
    for (const key of this.joinedBy.get(i) ?? []) this.channels.get(key)?.delete(i)
    this.joinedBy.delete(i)
    this.envs.set(i, env)
    if (host === undefined) this.hosts.delete(i)
    else this.hosts.set(i, host)
    return {
      address: SimLan.address(i),
      multicast: (group, datagram) => this.transmit(i, group, datagram),
      join: (source, group) => this.join(i, source, group),
      leave: (source, group) => {
        const key = channelKey(source, group)
        this.channels.get(key)?.delete(i)
        this.joinedBy.get(i)?.delete(key)
      },
    }
  }

  private join(i: number, source: string, group: MulticastGroup): void {
    const s = sourceIndex(source)
    // A channel of another site's host: the switch never sees it, so nothing arrives.
    if (s === undefined || this.options.site(s) !== this.options.site(i)) return
    const key = channelKey(source, group)
    let set = this.channels.get(key)
    if (set === undefined) {
      set = new Set()
      this.channels.set(key, set)
    }
    set.add(i)
    let mine = this.joinedBy.get(i)
    if (mine === undefined) {
      mine = new Set()
      this.joinedBy.set(i, mine)
    }
    mine.add(key)
  }

  private transmit(from: number, group: MulticastGroup, datagram: Uint8Array): void {
    const clock = this.envs.get(from)
    if (clock === undefined) return
    this.counters.transmissions++
    this.counters.bytes += datagram.length
    this.transmissionsBy.set(from, (this.transmissionsBy.get(from) ?? 0) + 1)
    const start = Math.max(clock.now(), this.uplinkFree.get(from) ?? 0)
    const done = start + (datagram.length * 8 * 1000) / this.options.uploadBps(from)
    this.uplinkFree.set(from, done)
    const source = SimLan.address(from)
    const loss = this.options.loss ?? 0
    for (const to of this.channels.get(channelKey(source, group)) ?? []) {
      const arrival = done + this.options.latency(from, to)
      if (loss > 0 && this.prng.next() < loss) {
        this.counters.copiesDropped++
        this.dropListener?.(from, to, datagram, arrival)
        continue
      }
      const host = this.hosts.get(to)
      clock.setTimer(arrival - clock.now(), () => {
        if (host === undefined || this.hosts.get(to) !== host) {
          this.counters.copiesDropped++
          return
        }
        this.counters.copiesDelivered++
        host.datagramReceived(source, datagram)
      })
    }
  }
}

function channelKey(source: string, group: MulticastGroup): string {
  return `${source} ${group.address}:${group.port}`
}

function sourceIndex(source: string): number | undefined {
  if (!source.startsWith('lan-')) return undefined
  const i = Number(source.slice(4))
  return Number.isInteger(i) ? i : undefined
}
