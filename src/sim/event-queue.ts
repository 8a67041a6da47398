/**
 * A 4-ary min-heap of events ordered by (time, insertion order). Ties fire in the order
 * they were scheduled, which keeps runs deterministic. Keys live in flat arrays of numbers (no object
 * per event), time and sequence side by side, which matters with millions of events in
 * flight: a 4-ary heap is half as deep as a binary one, and each level is one cache line
 * of keys. An event is an item (by default a callback) plus three integer tags, so a caller
 * can schedule plain data (a frame and its endpoints) instead of allocating a closure.
 *
 * Items do not move with their keys: each sits in a slot of its own until it fires, and the
 * heap moves the slot's number. Moving references instead would write a pointer to a young
 * object into an old array at every level of every sift, each write remembered for the
 * next scavenge; this way an event costs two such writes, whatever the heap's depth.
 */
export class EventQueue<T = () => void> {
  /** First tag of the event {@link pop} returned last. */
  poppedA = 0
  /** Second tag of the event {@link pop} returned last. */
  poppedB = 0
  /** Third tag of the event {@link pop} returned last. */
  poppedC = 0

  /** Event i's time at `2i`, its sequence number at `2i + 1`. */
  private keys = numbers(2 * 1024)
  /** Event i's three tags at `4i`..`4i + 2`, its item's slot at `4i + 3`. */
  private tags = numbers(4 * 1024)
  /** Items by slot (undefined: free slot). */
  private items: (T | undefined)[] = []
  /** Free slots (a stack), `freeCount` of them. */
  private free = numbers(1024)
  private freeCount = 0
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
    const slot = this.freeCount > 0 ? this.free[--this.freeCount] : this.items.length
    if (slot === this.items.length) this.items.push(item)
    else this.items[slot] = item
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
    this.set(i, time, seq, a, b, c, slot)
  }

  /**
   * Removes the earliest event and returns its item (its time is {@link peekTime} before,
   * its tags are {@link poppedA}, {@link poppedB} and {@link poppedC} after).
   */
  pop(): T | undefined {
    if (this.n === 0) return undefined
    const keys = this.keys
    const tags = this.tags
    const slot = tags[3]
    const top = this.items[slot]
    // Release the slot: a fired event's item (a frame, a closure) must not stay reachable.
    this.items[slot] = undefined
    if (this.freeCount === this.free.length) {
      this.free = grown(this.free)
    }
    this.free[this.freeCount++] = slot
    this.poppedA = tags[0]
    this.poppedB = tags[1]
    this.poppedC = tags[2]
    const last = --this.n
    if (last === 0) return top
    const lt = keys[2 * last]
    const ls = keys[2 * last + 1]
    const la = tags[4 * last]
    const lb = tags[4 * last + 1]
    const lc = tags[4 * last + 2]
    const lslot = tags[4 * last + 3]
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
    this.set(i, lt, ls, la, lb, lc, lslot)
    return top
  }

  /** Copies event `from` into position `to`. */
  private move(from: number, to: number): void {
    const keys = this.keys
    const tags = this.tags
    keys[2 * to] = keys[2 * from]
    keys[2 * to + 1] = keys[2 * from + 1]
    tags[4 * to] = tags[4 * from]
    tags[4 * to + 1] = tags[4 * from + 1]
    tags[4 * to + 2] = tags[4 * from + 2]
    tags[4 * to + 3] = tags[4 * from + 3]
  }

  private set(
    i: number,
    time: number,
    seq: number,
    a: number,
    b: number,
    c: number,
    slot: number,
  ): void {
    this.keys[2 * i] = time
    this.keys[2 * i + 1] = seq
    this.tags[4 * i] = a
    this.tags[4 * i + 1] = b
    this.tags[4 * i + 2] = c
    this.tags[4 * i + 3] = slot
  }

  private grow(): void {
    this.keys = grown(this.keys)
    this.tags = grown(this.tags)
  }
}

/**
 * `n` zeros in a plain array (of doubles or small integers), not a typed array: a typed
 * array's buffer lives outside V8's heap, and each 64 MB a process gains there starts a full
 * garbage collection, after which the old generation's limit is set from the live heap. At
 * 72,000 nodes × 50 peers the queue holds millions of events: its last doublings (over
 * 100 MB) started a collection at 1.3 GB of heap, after which the heap's own limit came
 * every few hundred MB; inside the heap the arrays grow with it and start none (see
 * `gc-flags.ts`).
 */
function numbers(n: number): number[] {
  return new Array<number>(n).fill(0)
}

/** `a` copied into an array twice its length (the rest zeros). */
function grown(a: number[]): number[] {
  const next = numbers(a.length * 2)
  for (let i = 0; i < a.length; i++) next[i] = a[i]
  return next
}
