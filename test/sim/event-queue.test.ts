import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { EventQueue } from '../../src/sim/event-queue.ts'

describe('the event queue calendar', () => {
  it('pops in (time, push order) whatever the bucket width, with fractional times and pushes before the current bucket', () => {
    // A step: push at now + offset (negative: before now, into an earlier bucket), or pop.
    const step = fc.oneof(
      fc.double({ min: -3, max: 40, noNaN: true }),
      fc.constantFrom(0, 0.5, 1, 7),
      fc.constant(Number.NaN),
    )
    fc.assert(
      fc.property(
        fc.constantFrom(0.25, 1, 3.5, 100),
        fc.array(step, { maxLength: 300 }),
        (bucketMs, steps) => {
          const q = new EventQueue<number>(bucketMs)
          const ref: [number, number][] = []
          let now = 0
          let id = 0
          const popOne = () => {
            ref.sort((a, b) => a[0] - b[0] || a[1] - b[1])
            const [t, want] = ref.shift()!
            expect(q.peekTime()).toBe(t)
            expect(q.pop()).toBe(want)
            expect([q.poppedA, q.poppedB, q.poppedC]).toEqual([want, want + 1, want + 2])
            now = t
          }
          for (const s of steps) {
            if (!Number.isNaN(s)) {
              q.push(now + s, id, id, id + 1, id + 2)
              ref.push([now + s, id++])
            } else if (ref.length > 0) popOne()
            expect(q.size).toBe(ref.length)
          }
          while (ref.length > 0) popOne()
          expect(q.size).toBe(0)
          expect(q.pop()).toBeUndefined()
          expect(q.peekTime()).toBe(Number.POSITIVE_INFINITY)
        },
      ),
    )
  })
})
