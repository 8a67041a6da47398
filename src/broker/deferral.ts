/** Options of a {@link DeferralLedger}. */
export interface DeferralLedgerOptions {
  /** Unproven entries a network prefix may have pooled before any of its entries is proven. */
  base: number
  /** Most unproven entries of one prefix, however many it proved before. */
  max: number
  /** Prefixes tracked at once; beyond, new prefixes get no deferral (their submissions are checked at once). */
  capacity: number
}

interface Account {
  /** Entries pooled without a signature check and not yet proven or checked. */
  outstanding: number
  /** Entries proven (by a good BLS share or a good straggler signature) since the last forgery. */
  proven: number
}

/** Oldest accounts looked at to find an idle one to evict. */
const EVICTION_SCAN = 16

/**
 * How many submissions each network prefix may have in the broker without their ed25519
 * signature checked. A prefix starts with `base` and earns one more for every entry of its
 * that turns out genuine (up to `max`), so steady honest traffic is never checked one by
 * one, while a fresh prefix can put at most `base` unchecked entries in before the first
 * batch finds it out; a forgery takes its earnings back to `base`. Bounded: when full, a
 * new prefix is refused (its submissions take the one-by-one path), never an old one evicted
 * while it has entries outstanding.
 */
export class DeferralLedger {
  private readonly opts: DeferralLedgerOptions
  private readonly accounts = new Map<string, Account>()

  constructor(opts: DeferralLedgerOptions) {
    this.opts = opts
  }

  /** Prefixes tracked now. */
  get size(): number {
    return this.accounts.size
  }

  /** Unproven entries of `prefix` now. */
  outstanding(prefix: string): number {
    return this.accounts.get(prefix)?.outstanding ?? 0
  }

  /** Takes one unit of `prefix`'s allowance; false when it has none left (check it now instead). */
  take(prefix: string): boolean {
    let a = this.accounts.get(prefix)
    if (a === undefined) {
      if (this.accounts.size >= this.opts.capacity && !this.evictIdle()) return false
      a = { outstanding: 0, proven: 0 }
      this.accounts.set(prefix, a)
    }
    if (a.outstanding >= Math.min(this.opts.max, this.opts.base + a.proven)) return false
    a.outstanding++
    return true
  }

  /** One entry of `prefix` was found genuine: its unit comes back, with one more earned. */
  proven(prefix: string): void {
    const a = this.accounts.get(prefix)
    if (a === undefined) return
    a.outstanding = Math.max(0, a.outstanding - 1)
    a.proven = Math.min(a.proven + 1, this.opts.max)
  }

  /** One entry of `prefix` left without a verdict (e.g. its batch was abandoned): its unit comes back. */
  release(prefix: string): void {
    const a = this.accounts.get(prefix)
    if (a !== undefined) a.outstanding = Math.max(0, a.outstanding - 1)
  }

  /** One entry of `prefix` was forged: its unit comes back and its earnings are lost. */
  forged(prefix: string): void {
    const a = this.accounts.get(prefix)
    if (a === undefined) return
    a.outstanding = Math.max(0, a.outstanding - 1)
    a.proven = 0
  }

  private evictIdle(): boolean {
    let scanned = 0
    for (const [key, a] of this.accounts) {
      if (scanned++ >= EVICTION_SCAN) break
      if (a.outstanding === 0) {
        this.accounts.delete(key)
        return true
      }
    }
    return false
  }
}
