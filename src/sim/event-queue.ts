/**
 * A calendar of events ordered by (time, insertion order). Ties fire in the order they were
 * scheduled, which keeps runs deterministic. Time is cut into buckets of `bucketMs`: the
 * events of the current bucket (and any scheduled before it) sit in a 4-ary min-heap, those
 * of later buckets in a plain list per bucket, unsorted, until their bucket comes up. At
 * 72,000 nodes × 50 peers millions of frames are in flight at once: in one heap each push
 * and pop walked a dozen levels of a heap of hundreds of megabytes, a cache miss per level;
 * now a push into a later bucket is an append, and the heap holds one bucket's events.
 * Every event carries its sequence number from its push, so the order is the one a single
 * heap of every event gives.
 *
 * In the heap, keys live in flat arrays of numbers (no object per event), time and sequence
 * side by side: a 4-ary heap is half as deep as a binary one, and each level is one cache
 * line of keys. An event is an item (by default a callback) plus three integer tags, so a
 * caller can schedule plain data (a frame and its endpoints) instead of allocating a closure.
 *
 * Items do not move with their keys: in the heap each sits in a slot of its own until it
 * fires, and the heap moves the slot's number. Moving references instead would write a pointer to a young
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
  /** Events in the heap. */
  private n = 0
  private seq = 0
  /** Width of a bucket (ms). */
  private readonly bucketMs: number
  /** The heap's bucket: the heap holds the events of buckets up to it, the lists the later ones. */
  private current = Number.NEGATIVE_INFINITY
  /** Events of each later bucket, in the order they were pushed. */
  private readonly later = new Map<number, LaterEvents<T>>()
  /** The buckets of `later`, in a binary min-heap. */
  private readonly laterBuckets: number[] = []
  /** Events in `later`. */
  private laterCount = 0
  /** Emptied lists, reused for new buckets (growing a new list's arrays was most of the queue's garbage). */
  private readonly spare: LaterEvents<T>[] = []

  /** `bucketMs`: the width of the buckets time is cut into (1 ms suits the simulator's links). */
  constructor(bucketMs = 1) {
    this.bucketMs = bucketMs
  }

  /** Number of pending events. */
  get size(): number {
    return this.n + this.laterCount
  }

  /** Time of the earliest pending event, or Infinity. */
  peekTime(): number {
    if (this.n === 0 && this.laterCount > 0) this.advance()
    return this.n > 0 ? this.keys[0] : Number.POSITIVE_INFINITY
  }

  /** Schedules `item` at `time`, with tags `a`, `b`, `c` (32-bit integers). */
  push(time: number, item: T, a = 0, b = 0, c = 0): void {
    const seq = this.seq++
    const bucket = Math.floor(time / this.bucketMs)
    if (bucket <= this.current) {
      this.insert(time, seq, a, b, c, item)
      return
    }
    let list = this.later.get(bucket)
    if (list === undefined) {
      list = this.spare.pop() ?? { keys: [], items: [], n: 0 }
      this.later.set(bucket, list)
      pushMin(this.laterBuckets, bucket)
    }
    // Written by index: a reused list keeps its arrays' room.
    const k = 5 * list.n
    const keys = list.keys
    keys[k] = time
    keys[k + 1] = seq
    keys[k + 2] = a
    keys[k + 3] = b
    keys[k + 4] = c
    list.items[list.n++] = item
    this.laterCount++
  }

  /** Moves the earliest later bucket into the (empty) heap. */
  private advance(): void {
    const bucket = popMin(this.laterBuckets)
    const list = this.later.get(bucket)!
    const { keys, items, n } = list
    this.later.delete(bucket)
    this.current = bucket
    this.laterCount -= n
    for (let i = 0, k = 0; i < n; i++, k += 5) {
      this.insert(keys[k], keys[k + 1], keys[k + 2], keys[k + 3], keys[k + 4], items[i]!)
      // The heap holds the item now: the list must not keep it reachable.
      items[i] = undefined
    }
    list.n = 0
    if (this.spare.length < MAX_SPARE_LISTS) this.spare.push(list)
  }

  /** Puts an event into the heap, its item into a free slot. */
  private insert(time: number, seq: number, a: number, b: number, c: number, item: T): void {
    const slot = this.freeCount > 0 ? this.free[--this.freeCount] : this.items.length
    if (slot === this.items.length) this.items.push(item)
    else this.items[slot] = item
    if (2 * this.n === this.keys.length) this.grow()
    const keys = this.keys
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
    if (this.n === 0) {
      if (this.laterCount === 0) return undefined
      this.advance()
    }
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
 * The events of a bucket after the heap's: five numbers each (time, sequence, three tags)
 * and their items. Items get a slot of the heap's only when they enter it, so the slots in
 * use are those of one bucket, few enough to stay in cache.
 */
interface LaterEvents<T> {
  keys: number[]
  items: (T | undefined)[]
  /** Events in the list (its arrays may be longer: a reused list keeps their room). */
  n: number
}

/**
 * Emptied lists kept for reuse, each with the room of the largest bucket it held. About as
 * many buckets start as end, but a heartbeat's burst starts many at once: with 8 kept, growing
 * new lists was still a tenth of a 20,000-node run's garbage while messages flow.
 */
const MAX_SPARE_LISTS = 64

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

/** Adds `v` to the binary min-heap `h`. */
function pushMin(h: number[], v: number): void {
  let i = h.length
  h.push(v)
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (h[parent] <= v) break
    h[i] = h[parent]
    i = parent
  }
  h[i] = v
}

/** Removes and returns the least of the (non-empty) binary min-heap `h`. */
function popMin(h: number[]): number {
  const top = h[0]
  const last = h.pop()!
  const n = h.length
  if (n === 0) return top
  let i = 0
  for (;;) {
    let c = 2 * i + 1
    if (c >= n) break
    if (c + 1 < n && h[c + 1] < h[c]) c++
    if (last <= h[c]) break
    h[i] = h[c]
    i = c
  }
  h[i] = last
  return top
}
