import type { PeerKey } from '../common/artifact.ts'
import { setNewest } from '../common/bounded-map.ts'
import type { TimerHandle } from '../common/env.ts'
import type { MessageId } from '../common/message-id.ts'

/** What the preamble tables need from their router. */
export interface PreambleHooks {
  now(): number
  setTimer(ms: number, fn: () => void): TimerHandle
  /**
   * The message a peer preambled did not come in time (`sender` is undefined when the peer
   * went away, which is no fault of its own): pull it elsewhere, and penalise a sender.
   */
  overdue(key: string, id: MessageId, sender: PeerKey | undefined): void
}

/** Limits and timing of {@link Preambles}. */
export interface PreambleOptions {
  /** Slack on top of the expected transfer time, in ms. */
  graceMs: number
  /** Rate assumed for a peer not measured yet, in bits per second. */
  defaultBps: number
  /** Messages awaited from one peer at once. */
  maxPerPeer: number
  /** Messages awaited at once, and IMRECEIVING notices held at once (each). */
  maxEntries: number
  /** How long an IMRECEIVING notice holds back our copies, and an overdue message is remembered. */
  holdMs: number
}

/** A preambled message on its way to us. */
interface Awaited {
  sender: PeerKey
  id: MessageId
  size: number
  at: number
  /** Undefined once overdue (then kept until `holdMs` after the PREAMBLE, to pull from later holders). */
  timer: TimerHandle | undefined
}

/** A node's preamble tables. */
interface Tables {
  awaited: Map<string, Awaited>
  perPeer: Map<PeerKey, number>
  /** Measured transfer rate per sender, bits per second (peers with an entry or a measure). */
  rates: Map<PeerKey, number>
  /** `${peer} ${key}` → until when our copies to `peer` are held back (insertion = time order). */
  receiving: Map<string, number>
}

function newTables(): Tables {
  return { awaited: new Map(), perPeer: new Map(), rates: new Map(), receiving: new Map() }
}

/** The tables of every node that has written none: only read (deleting from them is a no-op). */
const NO_TABLES: Tables = newTables()

/** Expected transfer time is multiplied by this before the grace is added. */
const RATE_SLACK = 2

/** Weight of a new measurement in a peer's transfer rate. */
const RATE_WEIGHT = 0.25

/** The outcome of {@link Preambles.announced}. */
export type PreambleVerdict = 'new' | 'known' | 'full'

/**
 * The preamble extension's state (doc/gossip-extension.md): the preambled messages we await
 * (each with a deadline from its size and the sender's measured rate) and the IMRECEIVING
 * notices of our peers (which hold back our copies to them). Both are bounded by
 * `maxEntries`, and the awaited ones by `maxPerPeer` for each sender, so a peer sending
 * PREAMBLEs at line rate holds at most `maxPerPeer` entries; the oldest notice goes first.
 */
export class Preambles {
  /**
   * The tables: {@link NO_TABLES} until the first write (most nodes of a simulation never
   * see a preamble, and four empty maps cost ~700 bytes a node). Read through `t`, written
   * through {@link tables}.
   */
  private t: Tables = NO_TABLES

  private readonly options: PreambleOptions
  private readonly hooks: PreambleHooks

  constructor(options: PreambleOptions, hooks: PreambleHooks) {
    this.options = options
    this.hooks = hooks
  }

  /**
   * `sender` preambled the message `key`: 'new' when it is now awaited (the caller tells
   * IMRECEIVING), 'known' when another PREAMBLE already announced it, 'full' when the
   * sender (or the table) is at its limit and the PREAMBLE is ignored.
   */
  announced(sender: PeerKey, key: string, id: MessageId, size: number): PreambleVerdict {
    if (this.t.awaited.has(key)) return 'known'
    const mine = this.t.perPeer.get(sender) ?? 0
    if (mine >= this.options.maxPerPeer || this.t.awaited.size >= this.options.maxEntries) {
      return 'full'
    }
    const now = this.hooks.now()
    const rate = this.t.rates.get(sender) ?? this.options.defaultBps
    const ms = this.options.graceMs + (RATE_SLACK * size * 8000) / rate
    const entry: Awaited = { sender, id, size, at: now, timer: undefined }
    entry.timer = this.hooks.setTimer(ms, () => this.expire(key, entry))
    const t = this.tables()
    t.awaited.set(key, entry)
    t.perPeer.set(sender, mine + 1)
    return 'new'
  }

  /** The message `key` came from `from`: no longer awaited; its sender's rate is measured. */
  delivered(key: string, from: PeerKey): void {
    const e = this.t.awaited.get(key)
    if (e === undefined) return
    if (e.timer !== undefined && e.sender === from) {
      const ms = Math.max(this.hooks.now() - e.at, 0.001)
      const measured = (e.size * 8000) / ms
      const old = this.t.rates.get(from)
      this.tables().rates.set(
        from,
        old === undefined ? measured : old + RATE_WEIGHT * (measured - old),
      )
    }
    this.forget(key, e)
  }

  /** True while the message `key` is awaited after a PREAMBLE and its deadline has not passed. */
  isAwaited(key: string): boolean {
    return this.t.awaited.get(key)?.timer !== undefined
  }

  /** True when the message `key` was preambled but did not come in time (it is being pulled). */
  isOverdue(key: string): boolean {
    const e = this.t.awaited.get(key)
    return e !== undefined && e.timer === undefined
  }

  /** `peer` told IMRECEIVING for `key`: our copies to it wait `holdMs`. */
  peerReceiving(peer: PeerKey, key: string): void {
    const until = this.hooks.now() + this.options.holdMs
    setNewest(this.tables().receiving, `${peer} ${key}`, until, this.options.maxEntries)
  }

  /** True while `peer`'s IMRECEIVING for `key` holds back our copies. */
  isReceiving(peer: PeerKey, key: string): boolean {
    if (this.t.receiving.size === 0) return false
    const until = this.t.receiving.get(`${peer} ${key}`)
    return until !== undefined && until > this.hooks.now()
  }

  /** `peer` asked for `key` (IWANT): its IMRECEIVING no longer holds back our copy. */
  wants(peer: PeerKey, key: string): void {
    if (this.t.receiving.size > 0) this.t.receiving.delete(`${peer} ${key}`)
  }

  /** Drops expired IMRECEIVING notices (called each heartbeat). */
  prune(): void {
    if (this.t.receiving.size === 0) return
    const now = this.hooks.now()
    for (const [k, until] of this.t.receiving) {
      if (until > now) break
      this.t.receiving.delete(k)
    }
  }

  /** `peer` is gone: what it preambled is pulled at once, without penalty. */
  peerGone(peer: PeerKey): void {
    this.t.rates.delete(peer)
    if (!this.t.perPeer.has(peer)) return
    for (const [key, e] of [...this.t.awaited]) {
      if (e.sender === peer && e.timer !== undefined) this.overdue(key, e, undefined)
    }
  }

  /** Awaited messages (for tests and inspection). */
  get size(): number {
    return this.t.awaited.size
  }

  /** Forgets everything and cancels every deadline. */
  clear(): void {
    for (const e of this.t.awaited.values()) e.timer?.cancel()
    this.t = NO_TABLES
  }

  private expire(key: string, e: Awaited): void {
    if (this.t.awaited.get(key) === e && e.timer !== undefined) this.overdue(key, e, e.sender)
  }

  private overdue(key: string, e: Awaited, blame: PeerKey | undefined): void {
    e.timer?.cancel()
    e.timer = undefined
    this.release(e.sender)
    // Kept a while longer: a peer that shows it has the message (IDONTWANT) is asked then.
    const left = Math.max(0, e.at + this.options.holdMs - this.hooks.now())
    this.hooks.setTimer(left, () => {
      if (this.t.awaited.get(key) === e) this.t.awaited.delete(key)
    })
    this.hooks.overdue(key, e.id, blame)
  }

  private forget(key: string, e: Awaited): void {
    this.t.awaited.delete(key)
    if (e.timer === undefined) return
    e.timer.cancel()
    this.release(e.sender)
  }

  /** The tables, made on the first write. */
  private tables(): Tables {
    if (this.t === NO_TABLES) this.t = newTables()
    return this.t
  }

  private release(sender: PeerKey): void {
    const n = (this.t.perPeer.get(sender) ?? 1) - 1
    if (n <= 0) this.t.perPeer.delete(sender)
    else this.tables().perPeer.set(sender, n)
  }
}
