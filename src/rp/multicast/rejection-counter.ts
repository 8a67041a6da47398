/** Counts rejections per source, in a bounded table: sources past the bound share one row. */
export class RejectionCounter {
  /** Rejections by reason. */
  readonly byReason = new Map<string, number>()
  /** Rejections by source (at most `maxSources` rows plus `'*'`). */
  readonly bySource = new Map<string, number>()
  private readonly maxSources: number

  constructor(maxSources = 256) {
    this.maxSources = maxSources
  }

  /** Counts one rejection of `reason` against `source`. */
  count(source: string, reason: string): void {
    this.byReason.set(reason, (this.byReason.get(reason) ?? 0) + 1)
    const row = this.bySource.has(source) || this.bySource.size < this.maxSources ? source : '*'
    this.bySource.set(row, (this.bySource.get(row) ?? 0) + 1)
  }

  /** Total rejections. */
  get total(): number {
    let n = 0
    for (const v of this.byReason.values()) n += v
    return n
  }
}
