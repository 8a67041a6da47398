import { Fifo } from '../common/fifo.ts'

/** Classes of submissions waiting for authentication. */
export type AuthClass = 'known' | 'open'

/**
 * The authentication queue, split in two classes, each bounded on its own: submissions of
 * known clients from the address they last authenticated from with a clean record, and
 * everything else (new or unknown sources, penalised ones, floods). Each burst gives the
 * known class its reserved share first, so a flood from elsewhere cannot starve honest
 * clients of authentication; either class uses what the other leaves.
 */
export class AuthQueue<T> {
  private readonly known = new Fifo<T>()
  private readonly open = new Fifo<T>()
  private readonly capacity: number
  private readonly knownShare: number

  /**
   * @param capacity - entries per class
   * @param knownShare - fraction of each burst reserved for the known class, in (0, 1]
   */
  constructor(capacity: number, knownShare: number) {
    this.capacity = capacity
    this.knownShare = knownShare
  }

  /** Entries waiting in both classes. */
  get length(): number {
    return this.known.length + this.open.length
  }

  /** Entries waiting in one class. */
  lengthOf(cls: AuthClass): number {
    return cls === 'known' ? this.known.length : this.open.length
  }

  /** Queues `item`; false when its class is full (the caller counts the drop). */
  push(cls: AuthClass, item: T): boolean {
    const q = cls === 'known' ? this.known : this.open
    if (q.length >= this.capacity) return false
    q.push(item)
    return true
  }

  /**
   * Takes up to `n` entries for one burst: the known class's share first, then the open
   * class, then known again with what is left. Entries for which `keep` is false (e.g.
   * from a source banned meanwhile) are discarded and passed to `discard`.
   */
  take(n: number, keep: (item: T) => boolean, discard: (item: T) => void): T[] {
    const out: T[] = []
    const from = (q: Fifo<T>, limit: number) => {
      while (out.length < limit && q.length > 0) {
        const item = q.shift()!
        if (keep(item)) out.push(item)
        else discard(item)
      }
    }
    from(this.known, Math.ceil(n * this.knownShare))
    from(this.open, n)
    from(this.known, n)
    return out
  }
}
