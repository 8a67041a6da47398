import { describe, expect, it } from 'vitest'
import { type Offence, OffenderTable, sourceOf } from '../../src/broker/offenders.ts'

describe('sourceOf', () => {
  it('accounts by address and /24 or /64 prefix, never by port', () => {
    expect(sourceOf('192.0.2.7:4000')).toEqual({ address: '192.0.2.7', prefix: '192.0.2.0/24' })
    expect(sourceOf('192.0.2.7:4001').address).toBe('192.0.2.7')
    expect(sourceOf('2001:db8:1:2:3:4:5:6:53')).toEqual({
      address: '2001:db8:1:2:3:4:5:6',
      prefix: '2001:db8:1:2::/64',
    })
    expect(sourceOf('2001:db8::9:53').prefix).toBe('2001:db8:0:0::/64')
    expect(sourceOf('::ffff:198.51.100.1:9').prefix).toBe('198.51.100.0/24')
    expect(sourceOf('server/0')).toEqual({ address: 'server/0', prefix: 'server/0' })
  })
})

describe('OffenderTable', () => {
  const src = (a: string) => sourceOf(`${a}:1`)

  it('bans at the threshold, for a while, then forgives', () => {
    const t = new OffenderTable({ banThreshold: 3, banMs: 1000 })
    expect(t.offend(src('10.0.0.1'), 0)?.banned).toBe(false)
    t.offend(src('10.0.0.1'), 1)
    expect(t.offend(src('10.0.0.1'), 2)).toEqual({ key: '10.0.0.1', score: 3, banned: true })
    expect(t.isBanned(src('10.0.0.1'), 500)).toBe(true)
    expect(t.isBanned(src('10.0.0.2'), 500)).toBe(false)
    expect(t.isBanned(src('10.0.0.1'), 1002)).toBe(false)
    expect(t.score('10.0.0.1', 1002)).toBe(0)
  })

  it('halves scores every half-life without new penalties', () => {
    const t = new OffenderTable({ halfLifeMs: 100 })
    for (let i = 0; i < 8; i++) t.offend(src('10.0.0.1'), 0)
    expect(t.score('10.0.0.1', 99)).toBe(8)
    expect(t.score('10.0.0.1', 250)).toBe(2)
  })

  it('a flood of fresh addresses evicts neither a banned source nor an active offender', () => {
    const t = new OffenderTable({ capacity: 64, banThreshold: 10, banMs: 60_000 })
    for (let i = 0; i < 10; i++) t.offend(src('10.0.0.1'), 0)
    expect(t.isBanned(src('10.0.0.1'), 0)).toBe(true)
    let active = 0
    for (let i = 0; i < 20_000; i++) {
      t.offend(src(`172.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`), 1)
      // Another offender keeps going throughout: its record survives the flood.
      if (i % 100 === 0) active = t.offend(src('10.0.0.2'), 1)?.score ?? 0
    }
    expect(t.size).toBeLessThanOrEqual(64)
    expect(t.isBanned(src('10.0.0.1'), 2)).toBe(true)
    expect(active).toBe(200) // every one of its penalties counted: never evicted
    expect(t.isBanned(src('10.0.0.2'), 2)).toBe(true)
  })

  it('once full, counts new addresses under their prefix and bans the prefix', () => {
    const t = new OffenderTable({ capacity: 4, banThreshold: 5 })
    for (const a of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']) t.offend(src(a), 0)
    let last: Offence | undefined
    for (let i = 0; i < 5; i++) last = t.offend(src(`192.0.2.${10 + i}`), 0)
    expect(last).toEqual({ key: '192.0.2.0/24', score: 5, banned: true })
    expect(t.isBanned(src('192.0.2.200'), 1)).toBe(true)
    expect(t.isBanned(src('192.0.3.1'), 1)).toBe(false)
  })
})
