import { describe, expect, it } from 'vitest'
import { FairQueue } from '../../src/broker/fair-queue.ts'
import { InvalidParametersError } from '../../src/common/errors.ts'

/** One round, returning what was served as "item:n" in order and the items finished. */
function round(q: FairQueue<string>, quantum: number): { served: string[]; finished: string[] } {
  const served: string[] = []
  const finished: string[] = []
  q.round(
    quantum,
    (item, lane, n) => served.push(`${lane}/${item}:${n}`),
    (item) => finished.push(item),
  )
  return { served, finished }
}

describe('FairQueue', () => {
  it('gives each lane one quantum per round, however much one lane holds', () => {
    const q = new FairQueue<string>(3)
    // Lane 0 is a flood: 100 batches of 1,000 datagrams; lanes 1 and 2 hold a little.
    for (let i = 0; i < 100; i++) q.push(0, `f${i}`, 1000)
    q.push(1, 'a', 3)
    q.push(2, 'b', 70)
    expect(q.units).toBe(100_073)
    const first = round(q, 64)
    expect(first.served).toEqual(['0/f0:64', '1/a:3', '2/b:64'])
    expect(first.finished).toEqual(['a'])
    // The next round starts one lane further on, and serves what is left of each item.
    const second = round(q, 64)
    expect(second.served).toEqual(['2/b:6', '0/f0:64'])
    expect(second.finished).toEqual(['b'])
    expect(q.unitsIn(0)).toBe(100_000 - 128)
    expect(q.unitsIn(1)).toBe(0)
    expect(q.unitsIn(2)).toBe(0)
  })

  it('serves several small items of one lane in one quantum, in order, and finishes each', () => {
    const q = new FairQueue<string>(2)
    q.push(1, 'x', 2)
    q.push(1, 'y', 2)
    q.push(1, 'z', 2)
    const r = round(q, 5)
    expect(r.served).toEqual(['1/x:2', '1/y:2', '1/z:1'])
    expect(r.finished).toEqual(['x', 'y'])
    expect(round(q, 5).finished).toEqual(['z'])
    expect(q.units).toBe(0)
  })

  it('serves every unit exactly once, and a flooded lane never delays another by more than one quantum per round', () => {
    const lanes = 4
    const q = new FairQueue<number>(lanes)
    const pushed = new Array(lanes).fill(0)
    let item = 0
    const servedPerLane = new Array(lanes).fill(0)
    const finished = new Set<number>()
    let rounds = 0
    // Lane 0 keeps getting a large batch each round; the others a few units now and then.
    for (; rounds < 500; rounds++) {
      q.push(0, item++, 500)
      pushed[0] += 500
      if (rounds % 3 === 0) {
        const lane = 1 + (rounds % (lanes - 1))
        const units = 1 + (rounds % 7)
        q.push(lane, item++, units)
        pushed[lane] += units
      }
      const before = [0, 1, 2, 3].map((l) => q.unitsIn(l))
      const servedNow = new Array(lanes).fill(0)
      q.round(
        8,
        (_i, lane, n) => {
          servedNow[lane] += n
        },
        (i) => {
          expect(finished.has(i)).toBe(false)
          finished.add(i)
        },
      )
      for (let l = 0; l < lanes; l++) {
        expect(servedNow[l]).toBe(Math.min(8, before[l]))
        servedPerLane[l] += servedNow[l]
      }
    }
    // The small lanes never built a backlog; the flood's lane holds the rest, unserved, not lost.
    for (let l = 1; l < lanes; l++) {
      expect(q.unitsIn(l)).toBe(0)
      expect(servedPerLane[l]).toBe(pushed[l])
    }
    const left = q.unitsIn(0)
    expect(servedPerLane[0] + left).toBe(pushed[0])
    const dropped: number[] = []
    expect(q.clear((i) => dropped.push(i))).toBe(left)
    expect(q.units).toBe(0)
    // Every item is finished or handed back by clear, once.
    expect(finished.size + dropped.length).toBe(item)
  })

  it('stops a round at `max` units, and starts the next one where it stopped', () => {
    const q = new FairQueue<string>(3)
    for (let lane = 0; lane < 3; lane++) q.push(lane, `i${lane}`, 10)
    const served: string[] = []
    const take = (max: number) =>
      q.round(
        4,
        (_item, lane, n) => served.push(`${lane}:${n}`),
        () => {},
        max,
      )
    expect(take(6)).toBe(6)
    expect(served).toEqual(['0:4', '1:2'])
    // Lane 1 was served last (cut short): the next round starts after it, at lane 2.
    expect(take(100)).toBe(12)
    expect(served.slice(2)).toEqual(['2:4', '0:4', '1:4'])
    expect(q.units).toBe(30 - 18)
  })

  it('refuses bad lanes and units', () => {
    expect(() => new FairQueue(0)).toThrow(InvalidParametersError)
    const q = new FairQueue<string>(1)
    expect(() => q.push(1, 'x', 1)).toThrow(InvalidParametersError)
    expect(() => q.push(0, 'x', 0)).toThrow(InvalidParametersError)
  })
})
