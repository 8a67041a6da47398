/** A callback scheduled at a virtual time. */
interface Scheduled {
  time: number
  seq: number
  fn: () => void
}

/**
 * A binary min-heap of callbacks ordered by (time, insertion order). Ties fire in the order
 * they were scheduled, which keeps runs deterministic.
 */
export class EventQueue {
  private heap: Scheduled[] = []
  private seq = 0

  /** Number of pending events. */
  get size(): number {
    return this.heap.length
  }

  /** Time of the earliest pending event, or Infinity. */
  peekTime(): number {
    return this.heap.length > 0 ? this.heap[0].time : Number.POSITIVE_INFINITY
  }

  /** Schedules `fn` at `time`. */
  push(time: number, fn: () => void): void {
    const heap = this.heap
    const item: Scheduled = { time, seq: this.seq++, fn }
    let i = heap.length
    heap.push(item)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = heap[parent]
      if (p.time < time || (p.time === time && p.seq < item.seq)) break
      heap[i] = p
      i = parent
    }
    heap[i] = item
  }

  /** Removes and returns the earliest event. */
  pop(): Scheduled | undefined {
    const heap = this.heap
    const top = heap[0]
    const last = heap.pop()
    if (top === undefined || last === undefined || heap.length === 0) return top
    const n = heap.length
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      let c = l
      if (r < n && before(heap[r], heap[l])) c = r
      if (!before(heap[c], last)) break
      heap[i] = heap[c]
      i = c
    }
    heap[i] = last
    return top
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}
