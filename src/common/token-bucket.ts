/**
 * A token bucket: at most `burst` tokens, refilled at `perSecond`, full when made. Times are
 * in ms on the caller's clock. For a few buckets kept one by one (an address, a node's own
 * sends); the gossip router's `PeerBudgets` keeps its many per-peer buckets in columns instead.
 */
export class TokenBucket {
  private readonly perSecond: number
  private readonly burst: number
  private tokens: number
  private at: number

  constructor(perSecond: number, burst: number, now: number) {
    this.perSecond = perSecond
    this.burst = burst
    this.tokens = burst
    this.at = now
  }

  /** Tokens at `now` (may be below 0 after {@link spend}). */
  available(now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond)
    this.at = now
    return this.tokens
  }

  /** Takes `n` tokens if there are that many at `now`. */
  tryTake(n: number, now: number): boolean {
    if (this.available(now) < n) return false
    this.tokens -= n
    return true
  }

  /** Takes `n` tokens at `now` whether there are or not (the bucket goes into debt). */
  spend(n: number, now: number): void {
    this.tokens = this.available(now) - n
  }
}
