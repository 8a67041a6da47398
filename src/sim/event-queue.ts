/**
 * A binary min-heap of callbacks ordered by (time, insertion order). Ties fire in the order
 * they were scheduled, which keeps runs deterministic. Keys live in typed arrays (no object
 * per event), which matters with millions of events in flight.
 */
export class EventQueue {
  private times = new Float64Array(1024)
  private seqs = new Float64Array(1024)
  private fns: (() => void)[] = []
  private n = 0
  private seq = 0

  /** Number of pending events. */
  get size(): number {
    return this.n
  }

  /** Time of the earliest pending event, or Infinity. */
  peekTime(): number {
    return this.n > 0 ? this.times[0] : Number.POSITIVE_INFINITY
  }

  /** Schedules `fn` at `time`. */
  push(time: number, fn: () => void): void {
    if (this.n === this.times.length) this.grow()
    const times = this.times
    const seqs = this.seqs
    const fns = this.fns
    const seq = this.seq++
    let i = this.n++
    while (i > 0) {
      const parent = (i - 1) >> 1
      const pt = times[parent]
      if (pt < time || (pt === time && seqs[parent] < seq)) break
      times[i] = pt
      seqs[i] = seqs[parent]
      fns[i] = fns[parent]
      i = parent
    }
    times[i] = time
    seqs[i] = seq
    fns[i] = fn
  }

  /** Removes the earliest event and returns its callback (its time is {@link peekTime} before). */
  pop(): (() => void) | undefined {
    if (this.n === 0) return undefined
    const times = this.times
    const seqs = this.seqs
    const fns = this.fns
    const top = fns[0]
    const last = --this.n
    const lt = times[last]
    const ls = seqs[last]
    const lf = fns[last]
    fns[last] = noop
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= last) break
      const r = l + 1
      let c = l
      if (r < last && (times[r] < times[l] || (times[r] === times[l] && seqs[r] < seqs[l]))) c = r
      if (lt < times[c] || (lt === times[c] && ls < seqs[c])) break
      times[i] = times[c]
      seqs[i] = seqs[c]
      fns[i] = fns[c]
      i = c
    }
    if (last > 0) {
      times[i] = lt
      seqs[i] = ls
      fns[i] = lf
    }
    return top
  }

  private grow(): void {
    const times = new Float64Array(this.times.length * 2)
    times.set(this.times)
    this.times = times
    const seqs = new Float64Array(this.seqs.length * 2)
    seqs.set(this.seqs)
    this.seqs = seqs
  }
}

function noop(): void {}
