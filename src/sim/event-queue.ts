/**
 * A 4-ary min-heap of events ordered by (time, insertion order). Ties fire in the order
 * they were scheduled, which keeps runs deterministic. Keys live in typed arrays (no object
 * per event), time and sequence side by side, which matters with millions of events in
 * flight: a 4-ary heap is half as deep as a binary one, and each level is one cache line
 * of keys. An event is an item (by default a callback) plus three integer tags, so a caller
 * can schedule plain data (a frame and its endpoints) instead of allocating a closure.
 */
export class EventQueue<T = () => void> {
  /** First tag of the event {@link pop} returned last. */
  poppedA = 0
  /** Second tag of the event {@link pop} returned last. */
  poppedB = 0
  /** Third tag of the event {@link pop} returned last. */
  poppedC = 0

  /** Event i's time at `2i`, its sequence number at `2i + 1`. */
  private keys = new Float64Array(2 * 1024)
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
    return this.n > 0 ? this.keys[0] : Number.POSITIVE_INFINITY
  }

  /** Schedules `item` at `time`, with tags `a`, `b`, `c` (32-bit integers). */
  push(time: number, item: T, a = 0, b = 0, c = 0): void {
    if (2 * this.n === this.keys.length) this.grow()
    const keys = this.keys
    const seq = this.seq++
    let i = this.n++
    while (i > 0) {
      const parent = (i - 1) >> 2
      const pt = keys[2 * parent]
      if (pt < time || (pt === time && keys[2 * parent + 1] < seq)) break
      this.move(parent, i)
      i = parent
    }
    this.set(i, time, seq, a, b, c, item)
  }

  /**
   * Removes the earliest event and returns its item (its time is {@link peekTime} before,
   * its tags are {@link poppedA}, {@link poppedB} and {@link poppedC} after).
   */
  pop(): T | undefined {
    if (this.n === 0) return undefined
    const keys = this.keys
    const tags = this.tags
    const items = this.items
    const top = items[0]
    this.poppedA = tags[0]
    this.poppedB = tags[1]
    this.poppedC = tags[2]
    const last = --this.n
    const lt = keys[2 * last]
    const ls = keys[2 * last + 1]
    const la = tags[3 * last]
    const lb = tags[3 * last + 1]
    const lc = tags[3 * last + 2]
    const li = items[last]
    // Release the slot: a fired event's item (a frame, a closure) must not stay reachable.
    items[last] = undefined
    if (last === 0) return top
    let i = 0
    for (;;) {
      const first = 4 * i + 1
      if (first >= last) break
      // The earliest of up to four children.
      let c = first
      let ct = keys[2 * first]
      let cs = keys[2 * first + 1]
      const end = Math.min(first + 4, last)
      for (let k = first + 1; k < end; k++) {
        const kt = keys[2 * k]
        if (kt < ct || (kt === ct && keys[2 * k + 1] < cs)) {
          c = k
          ct = kt
          cs = keys[2 * k + 1]
        }
      }
      if (lt < ct || (lt === ct && ls < cs)) break
      this.move(c, i)
      i = c
    }
    this.set(i, lt, ls, la, lb, lc, li)
    return top
  }

  /** Copies event `from` into slot `to`. */
  private move(from: number, to: number): void {
    const keys = this.keys
    const tags = this.tags
    keys[2 * to] = keys[2 * from]
    keys[2 * to + 1] = keys[2 * from + 1]
    tags[3 * to] = tags[3 * from]
    tags[3 * to + 1] = tags[3 * from + 1]
    tags[3 * to + 2] = tags[3 * from + 2]
    this.items[to] = this.items[from]
  }

  private set(
    i: number,
    time: number,
    seq: number,
    a: number,
    b: number,
    c: number,
    item: T | undefined,
  ): void {
    this.keys[2 * i] = time
    this.keys[2 * i + 1] = seq
    this.tags[3 * i] = a
    this.tags[3 * i + 1] = b
    this.tags[3 * i + 2] = c
    this.items[i] = item
  }

  private grow(): void {
    const keys = new Float64Array(this.keys.length * 2)
    keys.set(this.keys)
    this.keys = keys
    const tags = new Int32Array(this.tags.length * 2)
    tags.set(this.tags)
    this.tags = tags
  }
}
