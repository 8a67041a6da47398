/**
 * A binary min-heap of events ordered by (time, insertion order). Ties fire in the order
 * they were scheduled, which keeps runs deterministic. Keys live in typed arrays (no object
 * per event), which matters with millions of events in flight. An event is an item (by
 * default a callback) plus three integer tags, so a caller can schedule plain data (a frame
 * and its endpoints) instead of allocating a closure per event.
 */
export class EventQueue<T = () => void> {
  /** Tags of the event {@link pop} returned last. */
  poppedA = 0
  /** Second tag of the event {@link pop} returned last. */
  poppedB = 0
  /** Third tag of the event {@link pop} returned last. */
  poppedC = 0

  private times = new Float64Array(1024)
  private seqs = new Float64Array(1024)
  private tags = new Int32Array(3 * 1024)
  private items: (T | undefined)[] = []
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

  /** Schedules `item` at `time`, with tags `a`, `b`, `c` (32-bit integers). */
  push(time: number, item: T, a = 0, b = 0, c = 0): void {
    if (this.n === this.times.length) this.grow()
    const times = this.times
    const seqs = this.seqs
    const tags = this.tags
    const items = this.items
    const seq = this.seq++
    let i = this.n++
    while (i > 0) {
      const parent = (i - 1) >> 1
      const pt = times[parent]
      if (pt < time || (pt === time && seqs[parent] < seq)) break
      times[i] = pt
      seqs[i] = seqs[parent]
      tags[3 * i] = tags[3 * parent]
      tags[3 * i + 1] = tags[3 * parent + 1]
      tags[3 * i + 2] = tags[3 * parent + 2]
      items[i] = items[parent]
      i = parent
    }
    times[i] = time
    seqs[i] = seq
    tags[3 * i] = a
    tags[3 * i + 1] = b
    tags[3 * i + 2] = c
    items[i] = item
  }

  /**
   * Removes the earliest event and returns its item (its time is {@link peekTime} before,
   * its tags are {@link poppedA}, {@link poppedB} and {@link poppedC} after).
   */
  pop(): T | undefined {
    if (this.n === 0) return undefined
    const times = this.times
    const seqs = this.seqs
    const tags = this.tags
    const items = this.items
    const top = items[0]
    this.poppedA = tags[0]
    this.poppedB = tags[1]
    this.poppedC = tags[2]
    const last = --this.n
    const lt = times[last]
    const ls = seqs[last]
    const la = tags[3 * last]
    const lb = tags[3 * last + 1]
    const lc = tags[3 * last + 2]
    const li = items[last]
    // Release the slot: a fired event's item (a frame, a closure) must not stay reachable.
    items[last] = undefined
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
      tags[3 * i] = tags[3 * c]
      tags[3 * i + 1] = tags[3 * c + 1]
      tags[3 * i + 2] = tags[3 * c + 2]
      items[i] = items[c]
      i = c
    }
    if (last > 0) {
      times[i] = lt
      seqs[i] = ls
      tags[3 * i] = la
      tags[3 * i + 1] = lb
      tags[3 * i + 2] = lc
      items[i] = li
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
    const tags = new Int32Array(this.tags.length * 2)
    tags.set(this.tags)
    this.tags = tags
  }
}
