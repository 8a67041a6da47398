import type { PeerKey } from '../common/artifact.ts'
import { setNewest } from '../common/bounded-map.ts'
import { PeerSlots, type SlotOf } from '../common/peer-slots.ts'

/**
 * The kinds of input a peer spends budget on. Each is counted in the unit whose cost a peer
 * could otherwise multiply: ids, entries or events, not frames.
 */
export type BudgetKind =
  /** IHAVE message ids. */
  | 'ihave'
  /** IWANT message ids. */
  | 'iwant'
  /** IWANT ids we could not serve: unknown, or asked for past `gossipRetransmission`. */
  | 'iwantMiss'
  /** IDONTWANT message ids. */
  | 'idontwant'
  /** Subscription changes. */
  | 'subscription'
  /** GRAFT and PRUNE entries. */
  | 'graftPrune'
  /** A message the same peer already sent us (an honest peer sends each one once). */
  | 'repeat'
  /** Inbound streams the peer opened after its first one (reported by the driver). */
  | 'stream'
  /** One-copy CHOKE and UNCHOKE topics. */
  | 'choke'
  /** One-copy announced short ids. */
  | 'announce'
  /** One-copy INEED short ids. */
  | 'ineed'
  /** One-copy flood-mark peer hashes (`sentTo`), counted per frame. */
  | 'mark'
  /** One-copy announced messages we asked the peer for (INEED) until we gave up, never answered. */
  | 'unanswered'
  /** One-copy source-tree distance entries, each one read. */
  | 'distance'

/** A token bucket: `burst` units at once, refilled at `perSecond`. */
export interface BudgetRate {
  /** Units regained per second. */
  perSecond: number
  /** Units a peer may spend at once (the bucket's size, and what a new peer starts with). */
  burst: number
  /**
   * Units one frame may go over this budget by before its sender is cut off at once, for a
   * kind honest peers send one unit of per frame (a frame that far over is a flood, not a
   * peer a little over its rate). Unset: strikes by the overdraft only.
   */
  cutOffOverdraft?: number
}

/** Budgets and what happens beyond them. */
export interface PeerBudgetParams {
  /** One token bucket per kind of input. */
  rates: Record<BudgetKind, BudgetRate>
  /**
   * Strikes that disconnect a peer: a frame sent while graylisted counts one, a frame over a
   * budget counts {@link overdraftStrikesPerBurst} per burst it goes over by (at least one);
   * a malformed frame (or one over a decode limit) and bad framing seen by the driver count
   * `malformedStrikes` per {@link malformedStrikeBytes} of it (at least `malformedStrikes`).
   */
  disconnectStrikes: number
  /**
   * Strikes a frame over a budget counts per burst of that kind it goes over by, rounded up
   * (at least one): at 20, the default `disconnectStrikes`, a peer that overdraws one more
   * burst than it was granted is cut off, in the first flood frame or two, whatever its rate.
   */
  overdraftStrikesPerBurst: number
  /** Strikes a malformed frame costs (decoding it may have cost up to a limit's worth of work). */
  malformedStrikes: number
  /**
   * A malformed frame counts `malformedStrikes` per this many bytes of its (declared) length,
   * rounded up: a hostile frame of megabytes costs its sender more than a damaged small one.
   */
  malformedStrikeBytes: number
  /** Strikes forgiven per second, whole ones (a peer that stops misbehaving is forgiven). */
  strikeDecayPerSecond: number
  /** How long a disconnected peer is refused, in milliseconds. */
  denyMs: number
  /** Denied peers remembered at once (the oldest deny is forgotten first). */
  maxDenied: number
}

/** Defaults: several times what an honest peer sends at the default parameters. */
export const DEFAULT_PEER_BUDGETS: PeerBudgetParams = {
  rates: {
    ihave: { perSecond: 5000, burst: 10_000 },
    iwant: { perSecond: 5000, burst: 10_000 },
    iwantMiss: { perSecond: 100, burst: 500 },
    // Stock gossipsub and we send one IDONTWANT id per frame, as each message arrives.
    idontwant: { perSecond: 2000, burst: 4000, cutOffOverdraft: 64 },
    subscription: { perSecond: 100, burst: 2048 },
    graftPrune: { perSecond: 100, burst: 2048 },
    repeat: { perSecond: 5, burst: 20 },
    stream: { perSecond: 0.2, burst: 4 },
    // A link flips between eager and lazy a few times a minute at most.
    choke: { perSecond: 20, burst: 200 },
    announce: { perSecond: 5000, burst: 10_000 },
    ineed: { perSecond: 5000, burst: 10_000 },
    // A marked message carries its publisher's topic peers (marks are sent only where they
    // are a fifth of the network or more): hundreds of marked messages a second of 10-100.
    // A frame 512 hashes over is a flood (a publisher with that many topic peers is not).
    // The burst is 100 such marks at once; a flood of full 1,024-hash marks is cut off at its
    // 12th frame (44th at a burst of 40,000: the relay passed each on to its peers meanwhile).
    mark: { perSecond: 20_000, burst: 10_000, cutOffOverdraft: 512 },
    // An honest announcer has what it announces and answers one of our asks unless every
    // reply was lost. Each id over the burst costs 2 strikes, so 10 over it at once cut off:
    // a slow flooder is not merely graylisted (its frames then go unread, its penalty
    // decays, and it starts again).
    unanswered: { perSecond: 1, burst: 16 },
    // A peer sends each source's entry about twice as the tree forms, then on changes; the
    // burst is two full tables of a 20,000-source topic (a new mesh peer gets one whole). A
    // frame half a full one over is a flood: cut off at once (strikes by the overdraft took
    // five full frames).
    distance: { perSecond: 20_000, burst: 40_000, cutOffOverdraft: 8192 },
  },
  disconnectStrikes: 20,
  overdraftStrikesPerBurst: 20,
  malformedStrikes: 10,
  // A 4 MiB frame refused from its first bytes disconnects at once; a smaller one takes two.
  malformedStrikeBytes: 2 * 1024 * 1024,
  strikeDecayPerSecond: 1,
  denyMs: 60_000,
  maxDenied: 4096,
}

/** Every budget kind, in a fixed order. */
export const BUDGET_KINDS = Object.keys(DEFAULT_PEER_BUDGETS.rates) as BudgetKind[]

/** Column of each kind in {@link PeerBudgets}' bucket columns. */
const COLUMN: Record<BudgetKind, number> = {
  subscription: 0,
  graftPrune: 1,
  ihave: 2,
  iwant: 3,
  idontwant: 4,
  repeat: 5,
  iwantMiss: 6,
  announce: 7,
  ineed: 8,
  choke: 9,
  stream: 10,
  mark: 11,
  unanswered: 12,
  distance: 13,
}

/** Slots a column holds when first made (it doubles as slots outgrow it). */
const FIRST_SLOTS = 8

/**
 * Per-peer token buckets for every kind of control input, plus strikes and a deny list.
 * Sans-IO: time comes from `now`; everything is refilled lazily when spent, so an idle
 * peer costs nothing. A check costs O(1) whatever the amount asked.
 *
 * The state lives in columns of unboxed numbers by peer slot, two numbers a slot: strikes
 * and the time they were last counted (NaN time: no peer in the slot), and one column per
 * kind, made when a peer first spends that kind: tokens (NaN: untouched, a full bucket) and
 * the time of the last refill. A large simulation holds millions of peers; columns cost the
 * garbage collector nothing to scan and no object per peer.
 */
export class PeerBudgets {
  private readonly params: PeerBudgetParams
  private readonly now: () => number
  /** Tracked peers' slots: the owner's (see {@link SlotPool}), or {@link own}. */
  private readonly slotOf: SlotOf
  /** Slots of our own, when no owner gives them. */
  private readonly own: PeerSlots | undefined
  /** Strikes and the time they were last counted, by slot. */
  private strikeColumn = column(FIRST_SLOTS)
  /** Tokens and the time of the last refill, by slot, per kind (by {@link COLUMN}). */
  private readonly buckets: (Column | undefined)[] = []
  /** Denied peers → time the deny ends (insertion order is time order); made on first use. */
  private denied: Map<PeerKey, number> | undefined

  /**
   * `slotOf` finds a tracked peer's slot (the owner gives each peer one before
   * {@link addPeer}, see {@link SlotPool}); without it the budgets number their peers themselves.
   */
  constructor(params: PeerBudgetParams, now: () => number, slotOf?: SlotOf) {
    this.params = params
    this.now = now
    this.own = slotOf === undefined ? new PeerSlots() : undefined
    this.slotOf = slotOf ?? this.own!.get
  }

  /** Starts tracking a peer with full buckets. */
  addPeer(peer: PeerKey): void {
    const slot = this.own?.add(peer) ?? this.slotOf(peer)
    if (slot === undefined || this.tracks(slot)) return
    if (2 * slot >= this.strikeColumn.length) this.strikeColumn = grown(this.strikeColumn, slot)
    this.strikeColumn[2 * slot] = 0
    this.strikeColumn[2 * slot + 1] = this.now()
  }

  /**
   * Forgets a peer's buckets and strikes (its deny, if any, stays). `slot` is the one it held
   * (its owner may have forgotten it already).
   */
  removePeer(peer: PeerKey, slot = this.slotOf(peer)): void {
    this.own?.delete(peer)
    if (slot === undefined || !this.tracks(slot)) return
    this.strikeColumn[2 * slot + 1] = Number.NaN
    // Untouched buckets for the slot's next peer.
    for (const col of this.buckets)
      if (col !== undefined && 2 * slot < col.length) col[2 * slot] = Number.NaN
  }

  /** True when `peer` is tracked (it connected and was not removed). */
  has(peer: PeerKey): boolean {
    const slot = this.slotOf(peer)
    return slot !== undefined && this.tracks(slot)
  }

  /**
   * Grants up to `n` units of `kind` and returns how many were granted; a short grant empties
   * the bucket. An untracked peer is granted nothing.
   */
  take(peer: PeerKey, kind: BudgetKind, n: number): number {
    const slot = this.slotOf(peer)
    return slot === undefined ? 0 : this.takeAt(slot, kind, n)
  }

  /** {@link take} for the peer in `slot` (nothing granted when the slot holds none). */
  takeAt(slot: number, kind: BudgetKind, n: number): number {
    return this.tracks(slot) ? this.takeTracked(slot, kind, n) : 0
  }

  /**
   * {@link takeAt} for a slot the caller knows a peer holds (its owner's record of the peer
   * is live): the strikes column, another cache miss per frame in a large simulation, is
   * not read. `now` is the current time when the caller has it at hand (the budgets' own
   * clock is a call through closures, each a cache miss when a simulated node wakes).
   */
  takeTracked(slot: number, kind: BudgetKind, n: number, now = this.now()): number {
    const col = this.refill(slot, kind, now)
    const tokens = col[2 * slot]
    const granted = Math.min(n, Math.floor(tokens))
    col[2 * slot] = granted < n ? 0 : tokens - n
    return granted
  }

  /** Spends `n` units of `kind`: true when all of them were within budget. */
  spend(peer: PeerKey, kind: BudgetKind, n: number): boolean {
    return n <= 0 || this.take(peer, kind, n) === n
  }

  /** {@link spend} for the tracked peer in `slot`. */
  spendAt(slot: number, kind: BudgetKind, n: number): boolean {
    return n <= 0 || this.takeAt(slot, kind, n) === n
  }

  /** Units of `kind` the peer may spend now. */
  remaining(peer: PeerKey, kind: BudgetKind): number {
    const slot = this.slotOf(peer)
    if (slot === undefined || !this.tracks(slot)) return 0
    return Math.floor(this.refill(slot, kind)[2 * slot])
  }

  /**
   * Counts `weight` strikes against `peer`; true when it has now reached `disconnectStrikes`
   * and must be disconnected.
   */
  strike(peer: PeerKey, weight = 1): boolean {
    const slot = this.slotOf(peer)
    if (slot === undefined || !this.tracks(slot)) return false
    const s = this.strikeColumn
    const forgiven = this.forgiven(slot)
    s[2 * slot] = Math.max(0, s[2 * slot] - forgiven) + weight
    // Time is kept until it forgives a whole strike: frames a few ms apart lose nothing.
    const rate = this.params.strikeDecayPerSecond
    s[2 * slot + 1] = rate > 0 ? s[2 * slot + 1] + (forgiven * 1000) / rate : this.now()
    return s[2 * slot] >= this.params.disconnectStrikes
  }

  /** Whole strikes forgiven the peer in `slot` since its strikes were last counted. */
  private forgiven(slot: number): number {
    const since = this.now() - this.strikeColumn[2 * slot + 1]
    return Math.floor((since / 1000) * this.params.strikeDecayPerSecond)
  }

  /**
   * Strikes for a frame that asked `excess` units of `kind` beyond what it was granted: one
   * per `burst / overdraftStrikesPerBurst` units, rounded up, and at least one; enough to
   * disconnect when `excess` reaches the kind's {@link BudgetRate.cutOffOverdraft}.
   */
  overdraftStrikes(kind: BudgetKind, excess: number): number {
    const { burst, cutOffOverdraft } = this.params.rates[kind]
    const strikes = Math.max(1, Math.ceil((excess * this.params.overdraftStrikesPerBurst) / burst))
    return cutOffOverdraft !== undefined && excess >= cutOffOverdraft
      ? Math.max(strikes, this.params.disconnectStrikes)
      : strikes
  }

  /** Strikes for a malformed frame of `bytes` bytes (see {@link PeerBudgetParams.malformedStrikeBytes}). */
  malformedStrikes(bytes: number): number {
    const { malformedStrikes, malformedStrikeBytes } = this.params
    return malformedStrikes * Math.max(1, Math.ceil(bytes / malformedStrikeBytes))
  }

  /** Current strikes of a peer (after forgiveness). */
  strikes(peer: PeerKey): number {
    const slot = this.slotOf(peer)
    if (slot === undefined || !this.tracks(slot)) return 0
    return Math.max(0, this.strikeColumn[2 * slot] - this.forgiven(slot))
  }

  /** Refuses `peer` for `denyMs` from now; returns the time the deny ends. */
  deny(peer: PeerKey): number {
    const until = this.now() + this.params.denyMs
    this.denied ??= new Map()
    setNewest(this.denied, peer, until, this.params.maxDenied)
    return until
  }

  /** True while `peer` is denied. */
  isDenied(peer: PeerKey): boolean {
    const until = this.denied?.get(peer)
    if (until === undefined) return false
    if (until > this.now()) return true
    this.denied!.delete(peer)
    return false
  }

  /** Milliseconds left on `peer`'s deny (0 when it is not denied). */
  deniedForMs(peer: PeerKey): number {
    return this.isDenied(peer) ? this.denied!.get(peer)! - this.now() : 0
  }

  /** True when a peer holds `slot`. */
  private tracks(slot: number): boolean {
    return 2 * slot < this.strikeColumn.length && !Number.isNaN(this.strikeColumn[2 * slot + 1])
  }

  /**
   * Refills the bucket of `kind` of the peer in `slot` up to `now`; returns the kind's column
   * (tokens at `2 · slot`), made or grown as needed.
   */
  private refill(slot: number, kind: BudgetKind, now = this.now()): Column {
    const rate = this.params.rates[kind]
    const c = COLUMN[kind]
    let col = this.buckets[c]
    if (col === undefined || 2 * slot >= col.length) {
      col =
        col === undefined
          ? column(Math.max(FIRST_SLOTS, this.strikeColumn.length / 2))
          : grown(col, slot)
      this.buckets[c] = col
    }
    const i = 2 * slot
    const tokens = col[i]
    col[i] = Number.isNaN(tokens)
      ? rate.burst
      : Math.min(rate.burst, tokens + ((now - col[i + 1]) / 1000) * rate.perSecond)
    col[i + 1] = now
    return col
  }
}

/**
 * A column of numbers: a plain array of doubles, not a `Float64Array`. A typed array's
 * buffer lives outside V8's heap, and every 64 MB of such memory a process gains starts a
 * full garbage collection: at 72,000 simulated nodes the columns (~0.5 GB in all) started
 * one every 64 MB, each marking a heap of gigabytes. A plain array lives in the heap.
 */
type Column = number[]

/** A column of `slots` slots, two numbers each, all NaN (no peer, untouched). */
function column(slots: number): Column {
  return new Array<number>(2 * slots).fill(Number.NaN)
}

/** `col` copied into a column twice as large (or more) that holds `slot`. */
function grown(col: Column, slot: number): Column {
  let slots = col.length / 2
  while (slots <= slot) slots *= 2
  const next = column(slots)
  for (let i = 0; i < col.length; i++) next[i] = col[i]
  return next
}
