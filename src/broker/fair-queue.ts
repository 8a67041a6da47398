import { InvalidParametersError } from '../common/errors.ts'

interface Lane<T> {
  items: T[]
  /** Units of each queued item not served yet (parallel to `items`). */
  left: number[]
  head: number
  units: number
}

/**
 * Items in lanes (one per source of input, e.g. one per UDP socket), served round-robin:
 * each {@link FairQueue.round} gives every non-empty lane up to `quantum` units (datagrams)
 * in turn, so a lane holding a flood's backlog delays the others by one quantum per round
 * at most, however much it holds. An item is served in parts (`serve` gets how many of its
 * next units to take) and handed to `finished` once all its units are served. Bounding
 * what enters a lane is the producer's job (see the UDP worker's per-socket budgets).
 */
export class FairQueue<T> {
  private readonly lanes: Lane<T>[]
  private start = 0
  private total = 0

  constructor(lanes: number) {
    if (!Number.isInteger(lanes) || lanes < 1) throw new InvalidParametersError('lanes must be ≥ 1')
    this.lanes = Array.from({ length: lanes }, () => ({ items: [], left: [], head: 0, units: 0 }))
  }

  /** Units queued in every lane. */
  get units(): number {
    return this.total
  }

  /** Units queued in `lane`. */
  unitsIn(lane: number): number {
    return this.lanes[lane].units
  }

  /** Appends `item` of `units` units (≥ 1) to `lane`. */
  push(lane: number, item: T, units: number): void {
    if (!Number.isInteger(units) || units < 1) throw new InvalidParametersError('units must be ≥ 1')
    const l = this.lanes[lane]
    if (l === undefined) throw new InvalidParametersError(`no lane ${lane}`)
    l.items.push(item)
    l.left.push(units)
    l.units += units
    this.total += units
  }

  /**
   * One round: each non-empty lane, starting one lane further than the last round, gets up
   * to `quantum` units: `serve(item, lane, n)` must take the next `n` units of `item`;
   * `finished(item, lane)` follows once an item is served whole. Returns the units served.
   * With `max`, the round stops once `max` units are served, and the next one starts at
   * the lane after the last served, so rounds cut short still take the lanes in turn.
   */
  round(
    quantum: number,
    serve: (item: T, lane: number, n: number) => void,
    finished: (item: T, lane: number) => void,
    max = Number.POSITIVE_INFINITY,
  ): number {
    const n = this.lanes.length
    let served = 0
    for (let k = 0; k < n; k++) {
      if (served >= max) {
        this.start = (this.start + k) % n
        return served
      }
      const lane = (this.start + k) % n
      const l = this.lanes[lane]
      let budget = Math.min(quantum, max - served)
      while (budget > 0 && l.head < l.items.length) {
        const item = l.items[l.head]
        const take = Math.min(budget, l.left[l.head])
        // Counted before serving, so a throwing `serve` cannot leave the units queued forever.
        l.left[l.head] -= take
        l.units -= take
        this.total -= take
        budget -= take
        served += take
        const done = l.left[l.head] === 0
        if (done) this.shift(l)
        serve(item, lane, take)
        if (done) finished(item, lane)
      }
    }
    this.start = (this.start + 1) % n
    return served
  }

  /** Empties every lane, handing each item not served whole to `finished`; returns the units dropped. */
  clear(finished: (item: T, lane: number) => void): number {
    const dropped = this.total
    this.lanes.forEach((l, lane) => {
      for (let i = l.head; i < l.items.length; i++) finished(l.items[i], lane)
      l.items = []
      l.left = []
      l.head = 0
      l.units = 0
    })
    this.total = 0
    return dropped
  }

  private shift(l: Lane<T>): void {
    l.head++
    // Compact now and then rather than shifting arrays on every item.
    if (l.head === l.items.length) {
      l.items = []
      l.left = []
      l.head = 0
    } else if (l.head >= 1024) {
      l.items = l.items.slice(l.head)
      l.left = l.left.slice(l.head)
      l.head = 0
    }
  }
}
