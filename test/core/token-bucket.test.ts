import { describe, expect, it } from 'vitest'
import { TokenBucket } from '../../src/common/token-bucket.ts'

describe('TokenBucket', () => {
  it('starts full, refills at its rate up to its burst, and goes into debt only when spent', () => {
    const b = new TokenBucket(2, 4, 1_000)
    expect(b.tryTake(3, 1_000)).toBe(true)
    expect(b.tryTake(2, 1_000)).toBe(false)
    expect(b.available(1_000)).toBe(1)
    // 500 ms at 2 per second: one more.
    expect(b.tryTake(2, 1_500)).toBe(true)
    expect(b.available(1_500)).toBe(0)
    // Never above the burst, however long it waits.
    expect(b.available(60_000)).toBe(4)
    b.spend(6, 60_000)
    expect(b.available(60_000)).toBe(-2)
    expect(b.tryTake(1, 61_000)).toBe(false)
    expect(b.available(62_000)).toBe(2)
  })
})
