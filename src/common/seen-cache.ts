/**
 * A bounded set of recently seen keys with a time-to-live. Insertion-ordered, so expiry
 * and eviction of the oldest entry are O(1); at capacity the oldest key is evicted.
 */
export class SeenCache {
  private readonly entries = new Map<string, number>()
  private readonly ttlMs: number
  private readonly capacity: number

  constructor(ttlMs: number, capacity: number) {
    this.ttlMs = ttlMs
    this.capacity = capacity
  }

  /** Number of keys held. */
  get size(): number {
    return this.entries.size
  }

  /** True when `key` was added less than the TTL ago. */
  has(key: string, now: number): boolean {
    const at = this.entries.get(key)
    return at !== undefined && now - at < this.ttlMs
  }

  /** Adds `key`; returns false when it was already present (and fresh). */
  add(key: string, now: number): boolean {
    this.prune(now)
    if (this.has(key, now)) return false
    this.entries.delete(key)
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next()
      if (!oldest.done) this.entries.delete(oldest.value)
    }
    this.entries.set(key, now)
    return true
  }

  /** Drops expired keys. */
  prune(now: number): void {
    if (this.entries.size === 0) return
    for (const [key, at] of this.entries) {
      if (now - at < this.ttlMs) break
      this.entries.delete(key)
    }
  }
}
