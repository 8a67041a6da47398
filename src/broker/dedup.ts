import { sha256 } from '../crypto/merkle.ts'

/**
 * What a server does with an ordered entry, given the client's last delivered sequence
 * number and a fingerprint of its last message:
 * - `deliver`: a higher sequence number and a different message: new;
 * - `nudge`: a higher sequence number but the same message as the last one: that message
 *   raised again (a batch the broker withheld and had ordered later, or a retransmission
 *   that went into a later batch). It is not delivered again; the last sequence number
 *   moves up to it;
 * - `ignore`: the same sequence number: a copy (a batch ordered twice, a replay);
 * - `drop`: a lower sequence number: stale or replayed.
 *
 * Consecutive messages of one client must therefore differ (`BrokerClient.submit` refuses
 * a payload equal to the previous one).
 */
export type DedupVerdict = 'deliver' | 'ignore' | 'nudge' | 'drop'

/**
 * Bytes of the fingerprint kept per client: a payload of up to 16 bytes is kept as is
 * (Chop Chop's payloads are 8 bytes), a longer one as the first 16 bytes of its sha256.
 */
export const DEDUP_FINGERPRINT_LENGTH = 16

/** Length code of a hashed fingerprint (payloads of 0–16 bytes use their length). */
const HASHED = 0xff

/** Per-client deduplication state (last sequence, message fingerprint), growing with the ids seen. */
export class DedupTable {
  private last: Float64Array
  private prints: Uint8Array
  private lengths: Uint8Array

  constructor(initialClients = 1024) {
    this.last = new Float64Array(initialClients)
    this.prints = new Uint8Array(initialClients * DEDUP_FINGERPRINT_LENGTH)
    this.lengths = new Uint8Array(initialClients)
  }

  /** The last sequence number delivered for `id` (0 when none). */
  lastSequence(id: number): number {
    return id < this.last.length ? this.last[id] : 0
  }

  /** Classifies an entry and records what it changes. */
  apply(id: number, sequence: number, payload: Uint8Array): DedupVerdict {
    this.ensure(id)
    const last = this.last[id]
    if (sequence < last) return 'drop'
    if (sequence === last) return 'ignore'
    const short = payload.length <= DEDUP_FINGERPRINT_LENGTH
    const print = short ? payload : sha256(payload).subarray(0, DEDUP_FINGERPRINT_LENGTH)
    const code = short ? payload.length : HASHED
    const off = id * DEDUP_FINGERPRINT_LENGTH
    this.last[id] = sequence
    // Sequence numbers start at 1, so last = 0 means nothing was delivered yet.
    let same = last > 0 && this.lengths[id] === code
    for (let i = 0; same && i < print.length; i++) same = this.prints[off + i] === print[i]
    if (same) return 'nudge'
    this.lengths[id] = code
    this.prints.fill(0, off, off + DEDUP_FINGERPRINT_LENGTH)
    this.prints.set(print, off)
    return 'deliver'
  }

  private ensure(id: number): void {
    if (id < this.last.length) return
    let n = this.last.length
    while (n <= id) n *= 2
    const last = new Float64Array(n)
    last.set(this.last)
    const prints = new Uint8Array(n * DEDUP_FINGERPRINT_LENGTH)
    prints.set(this.prints)
    const lengths = new Uint8Array(n)
    lengths.set(this.lengths)
    this.last = last
    this.prints = prints
    this.lengths = lengths
  }
}
