import type { PeerKey } from '../common/artifact.ts'
import type { Submission } from './wire.ts'

/**
 * What the broker knows of a submission it has seen: queued for its signature check,
 * pooled unchecked (`deferred`: proven later by a BLS share or a straggler check),
 * authenticated, or found with a bad signature.
 */
export type SeenState = 'queued' | 'deferred' | 'authenticated' | 'forged'

/** A submission seen recently, and its last copies. */
export interface SeenSubmission {
  /** The submission as first received. */
  submission: Submission
  /** See {@link SeenState}. */
  state: SeenState
  /**
   * The last {@link MAX_SENDERS} distinct senders ("host:port") of its copies, oldest
   * first: where replies go while its client has no bound address (see `Broker`).
   */
  senders: PeerKey[]
  /** The address of the latest copy. */
  lastAddress: string
  /** Start of the current copy-counting window. */
  windowStart: number
  /** Copies within the current window. */
  copies: number
}

/** Distinct senders of one submission remembered (the client's, and a few copies' more). */
export const MAX_SENDERS = 3

/** True when `a` and `b` hold the same bytes. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}

/**
 * Recently seen submissions, by client id, sequence number and signature prefix, so that a
 * copy of one already queued or authenticated is recognised in O(1), before (and without)
 * a signature check. Bounded: the oldest are forgotten first (a forgotten one is only
 * authenticated again).
 */
export class ReplayFilter {
  private readonly seen = new Map<string, SeenSubmission>()
  private readonly capacity: number

  constructor(capacity: number) {
    this.capacity = capacity
  }

  /** Submissions remembered now. */
  get size(): number {
    return this.seen.size
  }

  /** The record of exactly this submission (same id, sequence, payload and signature), if seen. */
  get(s: Submission): SeenSubmission | undefined {
    const r = this.seen.get(this.key(s))
    if (r === undefined) return undefined
    const mine = r.submission
    // Same key, other bytes: not a copy (and not trusted as authenticated).
    if (!bytesEqual(mine.signature, s.signature) || !bytesEqual(mine.payload, s.payload)) {
      return undefined
    }
    return r
  }

  /** Remembers a submission first seen now from `peer` at `address`. */
  add(
    s: Submission,
    state: SeenState,
    peer: PeerKey,
    address: string,
    now: number,
  ): SeenSubmission {
    const key = this.key(s)
    this.seen.delete(key)
    if (this.seen.size >= this.capacity) this.seen.delete(this.seen.keys().next().value!)
    const r: SeenSubmission = {
      submission: s,
      state,
      senders: [peer],
      lastAddress: address,
      windowStart: now,
      copies: 0,
    }
    this.seen.set(key, r)
    return r
  }

  /** Forgets a submission (dropped before authentication: its next copy is checked again). */
  forget(s: Submission): void {
    const key = this.key(s)
    if (this.seen.get(key)?.submission === s) this.seen.delete(key)
  }

  private key(s: Submission): string {
    const sig = s.signature
    const prefix = Buffer.from(sig.buffer, sig.byteOffset, Math.min(8, sig.length)).toString('hex')
    return `${s.id}/${s.sequence}/${prefix}`
  }
}
