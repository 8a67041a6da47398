import type { PeerKey } from '../common/artifact.ts'
import type { TimerHandle } from '../common/env.ts'
import type { MessageId } from '../common/message-id.ts'

/** What the limiter does to the outside world (through the router's Env). */
export interface IWantLimiterHooks {
  /** Schedules a follow-up check. */
  setTimer(delayMs: number, fn: () => void): TimerHandle
  /** Sends an IWANT for `ids` to `peer`. */
  request(peer: PeerKey, ids: MessageId[]): void
  /**
   * `peer` did not deliver messages it advertised and we asked for, in one request: one
   * broken promise (a P7 penalty) however many ids the request held.
   */
  brokenPromise(peer: PeerKey): void
}

/** Limits of the limiter. */
export interface IWantLimiterOptions {
  /** Outstanding requests per id (α); Infinity asks every advertiser at once. */
  maxConcurrent: number
  /** How long a request may stay unanswered before the next advertiser is asked. */
  followupMs: number
  /** Advertisers remembered per id beyond the α asked ones. */
  maxAlternates: number
  /** Ids tracked at once; advertisements of further ids are not requested. */
  maxTracked: number
}

interface Want {
  id: MessageId
  /** Asked peers → the batch whose follow-up timer watches the request. */
  outstanding: Map<PeerKey, number>
  alternates: PeerKey[]
}

/** An advertised id not seen yet. */
export interface AdvertisedId {
  /** The id key (hex). */
  key: string
  /** The id bytes. */
  id: MessageId
}

/** A limiter's tables. */
interface WantTables {
  wants: Map<string, Want>
  /**
   * Each peer → the ids it is asked for or remembered for (outstanding or alternate), so
   * that a peer's going costs its own wants, not a walk over every tracked id.
   */
  byPeer: Map<PeerKey, Set<string>>
  /** One follow-up timer per batch of requests (an IWANT), not per id: a peer cannot multiply them. */
  timers: Set<TimerHandle>
}

function newWantTables(): WantTables {
  return { wants: new Map(), byPeer: new Map(), timers: new Set() }
}

/** The tables of every limiter that has written none: only read (deleting from them is a no-op). */
const NO_WANTS: WantTables = newWantTables()

/**
 * Bounded concurrent IWANT (seed 002, recommendation 1): at most α outstanding requests per
 * message id. Later advertisers are remembered; when a request is not answered within the
 * follow-up time, the peer is penalised and the next two advertisers are asked; when the message
 * arrives by any path, everything pending for it is cancelled. The follow-up timers double
 * as gossipsub's IWANT promises.
 */
export class IWantLimiter {
  /**
   * The tables: {@link NO_WANTS} until the first request or remembered advertiser (most
   * nodes of a simulation never have one outstanding). Read through `t`, written through
   * {@link tables}.
   */
  private t: WantTables = NO_WANTS
  private batches = 0
  private readonly options: IWantLimiterOptions
  private readonly hooks: IWantLimiterHooks

  constructor(options: IWantLimiterOptions, hooks: IWantLimiterHooks) {
    this.options = options
    this.hooks = hooks
  }

  /** The peers with an outstanding request for an id. */
  outstandingPeers(key: string): PeerKey[] {
    const w = this.t.wants.get(key)
    return w === undefined ? [] : [...w.outstanding.keys()]
  }

  /**
   * `peer` advertised these unseen ids. Returns the ids to request from it now (the caller
   * sends them in one IWANT); the rest are remembered as alternates or dropped.
   */
  advertised(peer: PeerKey, ids: AdvertisedId[]): MessageId[] {
    const ask: MessageId[] = []
    const keys: string[] = []
    const batch = ++this.batches
    for (const { key, id } of ids) {
      let w = this.t.wants.get(key)
      if (w === undefined) {
        if (this.t.wants.size >= this.options.maxTracked) continue
        w = { id, outstanding: new Map(), alternates: [] }
        this.tables().wants.set(key, w)
      }
      if (w.outstanding.has(peer)) continue
      if (w.outstanding.size < this.options.maxConcurrent) {
        w.outstanding.set(peer, batch)
        this.link(peer, key)
        keys.push(key)
        ask.push(id)
      } else if (w.alternates.length < this.options.maxAlternates && !w.alternates.includes(peer)) {
        w.alternates.push(peer)
        this.link(peer, key)
      }
    }
    this.watch(peer, batch, keys)
    return ask
  }

  /** The message arrived (by any path): cancel its pending requests. */
  delivered(key: string): void {
    const w = this.t.wants.get(key)
    if (w === undefined) return
    // Its batch timers find nothing outstanding when they fire.
    this.t.wants.delete(key)
    for (const p of w.outstanding.keys()) this.unlink(p, key)
    for (const p of w.alternates) this.unlink(p, key)
  }

  /** A peer disconnected: its requests move on to the next advertisers. */
  peerGone(peer: PeerKey): void {
    const keys = this.t.byPeer.get(peer)
    if (keys === undefined) return
    this.t.byPeer.delete(peer)
    const next = new Map<PeerKey, string[]>()
    for (const key of keys) {
      const w = this.t.wants.get(key)
      if (w === undefined) continue
      const i = w.alternates.indexOf(peer)
      if (i >= 0) w.alternates.splice(i, 1)
      if (w.outstanding.delete(peer)) this.moveOn(key, w, next)
    }
    this.askAgain(next)
  }

  /** Cancels every timer and forgets everything. */
  clear(): void {
    for (const t of this.t.timers) t.cancel()
    this.t = NO_WANTS
  }

  /** The tables, made on the first write. */
  private tables(): WantTables {
    if (this.t === NO_WANTS) this.t = newWantTables()
    return this.t
  }

  /** Notes that `peer` is asked for (or remembered for) `key`. */
  private link(peer: PeerKey, key: string): void {
    let keys = this.t.byPeer.get(peer)
    if (keys === undefined) {
      keys = new Set()
      this.tables().byPeer.set(peer, keys)
    }
    keys.add(key)
  }

  /** Forgets that `peer` is asked for or remembered for `key`. */
  private unlink(peer: PeerKey, key: string): void {
    const keys = this.t.byPeer.get(peer)
    if (keys === undefined) return
    keys.delete(key)
    if (keys.size === 0) this.t.byPeer.delete(peer)
  }

  /** Starts the follow-up timer of one batch of requests to `peer`. */
  private watch(peer: PeerKey, batch: number, keys: string[]): void {
    if (keys.length === 0) return
    const timer = this.hooks.setTimer(this.options.followupMs, () => {
      this.t.timers.delete(timer)
      this.expire(peer, batch, keys)
    })
    this.tables().timers.add(timer)
  }

  /**
   * A batch's follow-up time passed. Its undelivered ids go to their next advertisers, one
   * request per advertiser; the peer broke its promise once, whatever the batch held (as
   * stock gossipsub counts one promise per IWANT), so a peer's many ids cost one penalty.
   */
  private expire(peer: PeerKey, batch: number, keys: string[]): void {
    const next = new Map<PeerKey, string[]>()
    let broken = false
    for (const key of keys) {
      const w = this.t.wants.get(key)
      // A later request of the same id to the same peer has its own batch and timer.
      if (w === undefined || w.outstanding.get(peer) !== batch) continue
      w.outstanding.delete(peer)
      if (!w.alternates.includes(peer)) this.unlink(peer, key)
      broken = true
      // A request went unanswered (a lossy link, or a peer that will not answer): the next
      // two advertisers are asked, not one, so that the attempts outrun the loss while
      // the advertisers' caches still hold the message.
      this.moveOn(key, w, next, 2)
    }
    if (broken) this.hooks.brokenPromise(peer)
    this.askAgain(next)
  }

  /** Notes `key`'s next `n` advertisers in `next` (by peer), or forgets the id when none is left. */
  private moveOn(key: string, w: Want, next: Map<PeerKey, string[]>, n = 1): void {
    let moved = 0
    for (; moved < n; moved++) {
      const alternate = w.alternates.shift()
      if (alternate === undefined) break
      let keys = next.get(alternate)
      if (keys === undefined) {
        keys = []
        next.set(alternate, keys)
      }
      keys.push(key)
    }
    if (moved === 0 && w.outstanding.size === 0) this.t.wants.delete(key)
  }

  /** Sends each next advertiser one request (one batch, one timer) for its ids. */
  private askAgain(next: Map<PeerKey, string[]>): void {
    for (const [peer, keys] of next) {
      const batch = ++this.batches
      const ids: MessageId[] = []
      for (const key of keys) {
        const w = this.t.wants.get(key)!
        w.outstanding.set(peer, batch)
        ids.push(w.id)
      }
      this.watch(peer, batch, keys)
      this.hooks.request(peer, ids)
    }
  }
}
