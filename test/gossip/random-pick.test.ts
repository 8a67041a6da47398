import { describe, expect, it } from 'vitest'
import { pick, pickFirst } from '../../src/gossip/random-pick.ts'
import { Prng } from '../../src/sim/prng.ts'

/** Reference: a full Fisher–Yates shuffle when `n` covers the items, else `n` steps of it from the front. */
function referencePick<T>(items: T[], n: number, random: () => number): T[] {
  if (n <= 0) return []
  const swap = (i: number, j: number) => {
    const t = items[i]
    items[i] = items[j]
    items[j] = t
  }
  if (items.length <= n) {
    for (let i = items.length - 1; i > 0; i--) swap(i, Math.floor(random() * (i + 1)))
    return items
  }
  for (let i = 0; i < n; i++) swap(i, i + Math.floor(random() * (items.length - i)))
  return items.slice(0, n)
}

describe('pick and pickFirst', () => {
  it('pick what a reference Fisher–Yates picks, with the same draws; pickFirst moves nothing past its count', () => {
    const seeds = new Prng(7)
    for (let round = 0; round < 300; round++) {
      const count = seeds.int(12)
      const n = seeds.int(14) - 1
      const items = Array.from({ length: count }, (_, i) => `p${i}`)
      // A scratch array longer than its live part, with stale entries past `count`.
      const scratch = [...items, 'stale-a', 'stale-b']
      const seed = seeds.int(1_000_000)
      const a = new Prng(seed)
      const b = new Prng(seed)
      const c = new Prng(seed)
      const expected = referencePick([...items], n, () => a.next())
      const picked = pickFirst(scratch, count, n, () => b.next())
      expect(scratch.slice(0, picked)).toEqual(expected)
      expect(scratch.slice(count)).toEqual(['stale-a', 'stale-b'])
      expect(pick([...items], n, () => c.next())).toEqual(expected)
      // The same number of draws: the generators are in step.
      const next = a.next()
      expect(b.next()).toBe(next)
      expect(c.next()).toBe(next)
    }
  })
})
