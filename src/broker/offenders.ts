import type { PeerKey } from '../common/artifact.ts'
import { InvalidParametersError } from '../common/errors.ts'

/** Where a datagram came from, for accounting: its address and its network prefix. */
export interface Source {
  /** The address without the port ("192.0.2.7", "2001:db8::1"), or the whole key when it has none. */
  address: string
  /** The /24 (IPv4) or /64 (IPv6) network of the address; the key itself for non-IP keys. */
  prefix: string
}

/** Expands an IPv6 address into its eight 16-bit groups; undefined when it is not one. */
function ipv6Groups(address: string): string[] | undefined {
  const halves = address.split('::')
  if (halves.length > 2) return undefined
  const head = halves[0] === '' ? [] : halves[0].split(':')
  const tail = halves.length === 2 && halves[1] !== '' ? halves[1].split(':') : []
  const missing = 8 - head.length - tail.length
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return undefined
  return [...head, ...Array<string>(missing).fill('0'), ...tail]
}

/**
 * The source of a driver's peer key: "host:port" (what the UDP endpoint reports) is
 * accounted by host and its prefix, so rotating source ports changes nothing. Keys without
 * a port (links named by the driver, e.g. "server/0") stand for themselves.
 */
export function sourceOf(peer: PeerKey): Source {
  const colon = peer.lastIndexOf(':')
  if (colon < 0) return { address: peer, prefix: peer }
  let address = peer.slice(0, colon)
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1)
  return sourceOfAddress(address)
}

/**
 * The source of a bare address ("192.0.2.7", "2001:db8::1", as a socket reports it): what
 * {@link sourceOf} keys a "host:port" peer by, for drivers that see addresses before peers.
 */
export function sourceOfAddress(address: string): Source {
  if (address.startsWith('::ffff:') && address.includes('.')) address = address.slice(7)
  if (address.includes('.') && !address.includes(':')) {
    const last = address.lastIndexOf('.')
    return { address, prefix: `${address.slice(0, last)}.0/24` }
  }
  const groups = ipv6Groups(address)
  if (groups === undefined) return { address, prefix: address }
  return { address, prefix: `${groups.slice(0, 4).join(':')}::/64` }
}

/** Options of an {@link OffenderTable}. */
export interface OffenderTableOptions {
  /** Sources (addresses and prefixes) tracked at once. Default 4,096. */
  capacity?: number
  /** Penalties (decayed) at which a source is banned. Default 256. */
  banThreshold?: number
  /** How long a ban lasts, in milliseconds. Default 60,000. */
  banMs?: number
  /** Penalties halve every this many milliseconds without new ones. Default 60,000. */
  halfLifeMs?: number
}

/** What one penalty did. */
export interface Offence {
  /** The key it was counted under: the address, or its prefix once the table was full. */
  key: string
  /** The key's score after it. */
  score: number
  /** True when this penalty banned the key. */
  banned: boolean
}

interface Entry {
  score: number
  /** When the score last halved (or the entry was created). */
  at: number
  bannedUntil: number
}

/** Oldest entries looked at to find one to evict. */
const EVICTION_SCAN = 16

/**
 * Penalties per source address, bounded, with bans that expire. Entries are kept in order
 * of their last penalty, so a flood of fresh addresses evicts the ones that offended least
 * recently (and least, among the oldest few), never a banned one before its ban expires,
 * and never an active offender. When the table is full, a new address is counted under
 * its /24 or /64 prefix, which is banned as a whole once it reaches the threshold.
 */
export class OffenderTable {
  private readonly entries = new Map<string, Entry>()
  private readonly capacity: number
  private readonly threshold: number
  private readonly banMs: number
  private readonly halfLifeMs: number
  /** Penalties that found no room (every evictable entry banned); counted, never banned. */
  untracked = 0

  constructor(opts: OffenderTableOptions = {}) {
    this.capacity = opts.capacity ?? 4096
    this.threshold = opts.banThreshold ?? 256
    this.banMs = opts.banMs ?? 60_000
    this.halfLifeMs = opts.halfLifeMs ?? 60_000
    if (!(this.capacity >= 1 && this.threshold >= 1 && this.banMs > 0 && this.halfLifeMs > 0)) {
      throw new InvalidParametersError('offender table options must be positive')
    }
  }

  /** Sources tracked now. */
  get size(): number {
    return this.entries.size
  }

  /** True when the source's address or prefix is banned at `now`. */
  isBanned(source: Source, now: number): boolean {
    return this.bannedKey(source.address, now) || this.bannedKey(source.prefix, now)
  }

  /** The decayed score of an address or prefix at `now` (0 when untracked). */
  score(key: string, now: number): number {
    const e = this.entries.get(key)
    return e === undefined ? 0 : this.decay(e, now)
  }

  /** Counts one penalty against `source` at `now`. */
  offend(source: Source, now: number): Offence | undefined {
    let key = source.address
    let e = this.entries.get(key)
    if (e === undefined) {
      key = source.prefix
      e = this.entries.get(key)
    }
    if (e === undefined) {
      // Room for the address itself while the table has it; its prefix once full.
      key = this.entries.size < this.capacity ? source.address : source.prefix
      if (this.entries.size >= this.capacity && !this.evictOne(now)) {
        this.untracked++
        return undefined
      }
      e = { score: 0, at: now, bannedUntil: 0 }
    }
    e.score = this.decay(e, now) + 1
    // Re-inserted: the map stays in order of last penalty.
    this.entries.delete(key)
    this.entries.set(key, e)
    const banned = e.bannedUntil === 0 && e.score >= this.threshold
    if (banned) e.bannedUntil = now + this.banMs
    return { key, score: e.score, banned }
  }

  private bannedKey(key: string, now: number): boolean {
    const e = this.entries.get(key)
    if (e === undefined || e.bannedUntil === 0) return false
    if (now < e.bannedUntil) return true
    // Served its ban: starts again with a clean record.
    e.bannedUntil = 0
    e.score = 0
    return false
  }

  /** Halves the score once per full half-life since the last halving; returns it. */
  private decay(e: Entry, now: number): number {
    const periods = Math.floor((now - e.at) / this.halfLifeMs)
    if (periods > 0) {
      e.score = Math.floor(e.score / 2 ** periods)
      e.at += periods * this.halfLifeMs
    }
    return e.score
  }

  /** Evicts the lowest-scoring unbanned entry among the oldest few; false when all are banned. */
  private evictOne(now: number): boolean {
    let victim: string | undefined
    let lowest = Number.POSITIVE_INFINITY
    let looked = 0
    for (const [key, e] of this.entries) {
      if (looked++ >= EVICTION_SCAN) break
      if (e.bannedUntil !== 0 && now < e.bannedUntil) continue
      const s = this.decay(e, now)
      if (s < lowest) {
        lowest = s
        victim = key
      }
    }
    if (victim === undefined) {
      // The oldest are all banned: move them behind, so the next scan sees others.
      for (const [key, e] of [...this.entries].slice(0, EVICTION_SCAN)) {
        this.entries.delete(key)
        this.entries.set(key, e)
      }
      return false
    }
    this.entries.delete(victim)
    return true
  }
}
