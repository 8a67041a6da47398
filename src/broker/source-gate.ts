import { setNewest } from '../common/bounded-map.ts'
import { InvalidParametersError } from '../common/errors.ts'
import { FairQueue } from './fair-queue.ts'
import { type Source, sourceOfAddress } from './offenders.ts'

/** What a {@link SourceGate} did with one datagram, or with a source's datagrams, so far. */
export interface SourceCounts {
  /** Handed on (taken from the queue). */
  forwarded: number
  /** Dropped because the source (its address or prefix) was banned. */
  banned: number
  /** Dropped because the source's (or every source's) queue budget was used up. */
  overBudget: number
}

/** Options of a {@link SourceGate}. */
export interface SourceGateOptions {
  /** Datagrams queued at most, from every source. Default 131,072. */
  maxQueued?: number
  /** Bytes queued at most, from every source. Default 16 MiB. */
  maxQueuedBytes?: number
  /** Datagrams queued at most from one address. Default half of `maxQueued`. */
  maxQueuedPerAddress?: number
  /** Datagrams queued at most from one /24 (IPv4) or /64 (IPv6) prefix. Default ¾ of `maxQueued`. */
  maxQueuedPerPrefix?: number
  /**
   * Prefixes with a lane of their own at once; beyond, the others share one lane (so the
   * round-robin costs a bounded amount per round). Default 256.
   */
  lanes?: number
  /** Banned addresses and prefixes held at once; beyond, the oldest go. Default 4,096. */
  maxBans?: number
  /** Addresses counted apart in {@link SourceGate.report}; beyond, under "other". Default 256. */
  maxCountedSources?: number
}

interface Queued<T> {
  item: T
  source: Source
  bytes: number
}

/** Distinct addresses whose {@link Source} is cached; the cache starts over beyond. */
const SOURCE_CACHE = 4096

/**
 * Which datagrams a UDP driver hands on to the core, and in what order (sans-IO): drops
 * what banned sources (addresses or prefixes, as the core's {@link OffenderTable} bans
 * them) send, holds at most a budget of datagrams per address, per prefix and in all, and
 * hands them on round-robin by prefix, so a flood delays another source by one quantum
 * per round at most and cannot take the room other sources' datagrams need. Counts what
 * it forwarded and dropped, per source address.
 */
export class SourceGate<T> {
  private readonly queue: FairQueue<Queued<T>>
  private readonly maxQueued: number
  private readonly maxBytes: number
  private readonly perAddress: number
  private readonly perPrefix: number
  private readonly maxBans: number
  private readonly maxCounted: number
  private readonly bans = new Map<string, number>()
  private readonly sources = new Map<string, Source>()
  private readonly queuedBy = new Map<string, number>()
  /** Prefix → its own lane, and back (lane 0 is shared by the prefixes beyond `lanes`). */
  private readonly laneOf = new Map<string, number>()
  private readonly prefixOf: (string | undefined)[]
  private readonly freeLanes: number[]
  private readonly counted = new Map<string, SourceCounts>()
  private bytes = 0
  /** Totals since the gate was made. */
  readonly totals: SourceCounts = { forwarded: 0, banned: 0, overBudget: 0 }

  constructor(opts: SourceGateOptions = {}) {
    this.maxQueued = opts.maxQueued ?? 131_072
    this.maxBytes = opts.maxQueuedBytes ?? 16 * 1024 * 1024
    this.perAddress = opts.maxQueuedPerAddress ?? Math.max(1, Math.floor(this.maxQueued / 2))
    this.perPrefix = opts.maxQueuedPerPrefix ?? Math.max(1, Math.floor((this.maxQueued * 3) / 4))
    this.maxBans = opts.maxBans ?? 4096
    this.maxCounted = opts.maxCountedSources ?? 256
    const lanes = opts.lanes ?? 256
    for (const v of [this.maxQueued, this.maxBytes, this.perAddress, this.perPrefix, lanes]) {
      if (!Number.isInteger(v) || v < 1) {
        throw new InvalidParametersError('source gate budgets and lanes must be integers ≥ 1')
      }
    }
    this.queue = new FairQueue(lanes)
    this.prefixOf = new Array(lanes).fill(undefined)
    this.freeLanes = Array.from({ length: lanes - 1 }, (_, i) => lanes - 1 - i)
  }

  /** Datagrams queued. */
  get queued(): number {
    return this.queue.units
  }

  /** Datagrams queued from an address or a prefix. */
  queuedFrom(addressOrPrefix: string): number {
    return this.queuedBy.get(addressOrPrefix) ?? 0
  }

  /** Drops what `key` (an address or a prefix, as the core's bans name them) sends until `until`. */
  ban(key: string, until: number): void {
    setNewest(this.bans, key, until, this.maxBans)
  }

  /**
   * Offers one datagram of `bytes` bytes from `address` at `now`: queued (true), or
   * dropped and counted (false) because its source is banned or over its budget.
   */
  offer(address: string, bytes: number, item: T, now: number): boolean {
    const source = this.sourceOf(address)
    if (this.isBanned(source, now)) {
      this.count(source.address, 'banned', 1)
      return false
    }
    if (
      this.queue.units >= this.maxQueued ||
      this.bytes + bytes > this.maxBytes ||
      this.queuedFrom(source.address) >= this.perAddress ||
      this.queuedFrom(source.prefix) >= this.perPrefix
    ) {
      this.count(source.address, 'overBudget', 1)
      return false
    }
    let lane = this.laneOf.get(source.prefix)
    if (lane === undefined) {
      lane = this.freeLanes.pop() ?? 0
      if (lane !== 0) {
        this.prefixOf[lane] = source.prefix
        this.laneOf.set(source.prefix, lane)
      }
    }
    this.queue.push(lane, { item, source, bytes }, 1)
    this.add(source, bytes, 1)
    return true
  }

  /**
   * Takes up to `max` datagrams, round-robin by prefix, `quantum` from each per round, and
   * hands each to `forward`; those from a source banned since they were queued are dropped
   * and counted. Returns the datagrams forwarded.
   */
  take(max: number, quantum: number, forward: (item: T) => void, now: number): number {
    let forwarded = 0
    while (forwarded < max && this.queue.units > 0) {
      this.queue.round(
        quantum,
        () => {},
        (q, lane) => {
          this.add(q.source, q.bytes, -1)
          if (lane !== 0 && this.queue.unitsIn(lane) === 0) this.freeLane(lane)
          if (this.isBanned(q.source, now)) {
            this.count(q.source.address, 'banned', 1)
            return
          }
          forwarded++
          this.count(q.source.address, 'forwarded', 1)
          forward(q.item)
        },
        max - forwarded,
      )
    }
    return forwarded
  }

  /** Per-address counts since the last report (then starts over), bounded; the rest under "other". */
  report(): [address: string, counts: SourceCounts][] {
    const out = [...this.counted]
    this.counted.clear()
    return out
  }

  private isBanned(source: Source, now: number): boolean {
    if (this.bans.size === 0) return false
    return this.bannedKey(source.address, now) || this.bannedKey(source.prefix, now)
  }

  private bannedKey(key: string, now: number): boolean {
    const until = this.bans.get(key)
    if (until === undefined) return false
    if (now < until) return true
    this.bans.delete(key)
    return false
  }

  private sourceOf(address: string): Source {
    let s = this.sources.get(address)
    if (s === undefined) {
      if (this.sources.size >= SOURCE_CACHE) this.sources.clear()
      s = sourceOfAddress(address)
      this.sources.set(address, s)
    }
    return s
  }

  private add(source: Source, bytes: number, n: number): void {
    this.bytes += n * bytes
    this.addTo(source.address, n)
    if (source.prefix !== source.address) this.addTo(source.prefix, n)
  }

  private addTo(key: string, n: number): void {
    const left = (this.queuedBy.get(key) ?? 0) + n
    if (left === 0) this.queuedBy.delete(key)
    else this.queuedBy.set(key, left)
  }

  private freeLane(lane: number): void {
    const prefix = this.prefixOf[lane]
    if (prefix === undefined) return
    this.prefixOf[lane] = undefined
    this.laneOf.delete(prefix)
    this.freeLanes.push(lane)
  }

  private count(address: string, what: keyof SourceCounts, n: number): void {
    this.totals[what] += n
    const key = this.counted.has(address) || this.counted.size < this.maxCounted ? address : 'other'
    let c = this.counted.get(key)
    if (c === undefined) {
      c = { forwarded: 0, banned: 0, overBudget: 0 }
      this.counted.set(key, c)
    }
    c[what] += n
  }
}
