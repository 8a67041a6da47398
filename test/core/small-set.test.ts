import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SmallSet } from '../../src/common/small-set.ts'

describe('SmallSet', () => {
  it('behaves as a Set through adds and deletes, small and past its array limit', () => {
    const op = fc.record({ add: fc.boolean(), item: fc.integer({ min: 0, max: 20 }) })
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const small = new SmallSet<number>()
        const ref = new Set<number>()
        for (const { add, item } of ops) {
          if (add) {
            small.add(item)
            ref.add(item)
          } else {
            expect(small.delete(item)).toBe(ref.delete(item))
          }
          expect(small.size).toBe(ref.size)
          expect(small.has(item)).toBe(ref.has(item))
          expect(small.first()).toBe(ref.values().next().value)
        }
        expect([...small]).toEqual([...ref])
      }),
    )
  })
})
