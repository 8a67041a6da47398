import { describe, expect, it } from 'vitest'
import { pick, pickFirst } from '../../src/gossip/random-pick.ts'
import { Prng } from '../../src/sim/prng.ts'

describe('pickFirst', () => {
  it('picks what pick picks from the first items, with the same draws, and nothing else moves', () => {
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
      const expected = pick([...items], n, () => a.next())
      const picked = pickFirst(scratch, count, n, () => b.next())
      expect(scratch.slice(0, picked)).toEqual(expected)
      expect(scratch.slice(count)).toEqual(['stale-a', 'stale-b'])
      // The same number of draws: the generators are in step.
      expect(b.next()).toBe(a.next())
    }
  })
})
