/**
 * What a server does with an ordered entry, given the client's last delivered sequence
 * number and the first bytes of its last delivered message:
 * - `deliver`: a higher sequence number, a new message;
 * - `ignore`: the same sequence number and the same message prefix: a copy of the message
 *   already delivered (a retransmission or a batch ordered twice);
 * - `nudge`: the same sequence number with a different message: the client signed two
 *   messages with one sequence number (only the client can do that; the broker cannot
 *   forge either). Both are authentic, so this one is delivered too, and the client's last
 *   sequence number moves one past it so that no copy of either can be delivered again;
 * - `drop`: a lower sequence number: stale or replayed.
 */
export type DedupVerdict = 'deliver' | 'ignore' | 'nudge' | 'drop'

/** Bytes of the last message kept per client. */
export const DEDUP_PREFIX_LENGTH = 8

/** Per-client deduplication state (last sequence and message prefix), bounded by the client count. */
export class DedupTable {
  private last: Float64Array
  private prefixes: Uint8Array
  private prefixLengths: Uint8Array

  constructor(initialClients = 1024) {
    this.last = new Float64Array(initialClients)
    this.prefixes = new Uint8Array(initialClients * DEDUP_PREFIX_LENGTH)
    this.prefixLengths = new Uint8Array(initialClients)
  }

  /** The last sequence number delivered for `id` (0 when none). */
  lastSequence(id: number): number {
    return id < this.last.length ? this.last[id] : 0
  }

  /** Classifies an entry and, unless it is ignored or dropped, records it. */
  apply(id: number, sequence: number, payload: Uint8Array): DedupVerdict {
    this.ensure(id)
    const last = this.last[id]
    if (sequence < last) return 'drop'
    const off = id * DEDUP_PREFIX_LENGTH
    const len = Math.min(DEDUP_PREFIX_LENGTH, payload.length)
    if (sequence === last) {
      let same = this.prefixLengths[id] === len
      for (let i = 0; same && i < len; i++) same = this.prefixes[off + i] === payload[i]
      if (same) return 'ignore'
      this.record(id, sequence + 1, payload, off, len)
      return 'nudge'
    }
    this.record(id, sequence, payload, off, len)
    return 'deliver'
  }

  private record(
    id: number,
    sequence: number,
    payload: Uint8Array,
    off: number,
    len: number,
  ): void {
    this.last[id] = sequence
    this.prefixLengths[id] = len
    this.prefixes.fill(0, off, off + DEDUP_PREFIX_LENGTH)
    this.prefixes.set(payload.subarray(0, len), off)
  }

  private ensure(id: number): void {
    if (id < this.last.length) return
    let n = this.last.length
    while (n <= id) n *= 2
    const last = new Float64Array(n)
    last.set(this.last)
    const prefixes = new Uint8Array(n * DEDUP_PREFIX_LENGTH)
    prefixes.set(this.prefixes)
    const lengths = new Uint8Array(n)
    lengths.set(this.prefixLengths)
    this.last = last
    this.prefixes = prefixes
    this.prefixLengths = lengths
  }
}
