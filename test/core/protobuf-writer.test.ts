import fc from 'fast-check'
import { writer as protonsWriter } from 'protons-runtime'
import { describe, expect, it } from 'vitest'
import { ProtobufWriter } from '../../src/common/protobuf-writer.ts'

/** One writer call; `fork` and `ldelim` come in pairs around nested calls. */
type Op =
  | { kind: 'uint32'; value: number }
  | { kind: 'uint64Number'; value: number }
  | { kind: 'bool'; value: boolean }
  | { kind: 'bytes'; value: Uint8Array }
  | { kind: 'string'; value: string }
  | { kind: 'sub'; ops: Op[] }

/** Lengths around every varint width boundary, so sub-messages and bytes cross them. */
const edgeLength = fc.constantFrom(0, 1, 126, 127, 128, 129, 16_383, 16_384, 16_385)

const { op } = fc.letrec<{ op: Op }>((tie) => ({
  op: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({
      kind: fc.constant('uint32' as const),
      value: fc.oneof(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.constantFrom(0, 127, 128, 16_383, 16_384, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1),
      ),
    }),
    fc.record({
      kind: fc.constant('uint64Number' as const),
      value: fc.oneof(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.constantFrom(0, 127, 128, 2 ** 32, 2 ** 35, Number.MAX_SAFE_INTEGER),
      ),
    }),
    fc.record({ kind: fc.constant('bool' as const), value: fc.boolean() }),
    fc.record({
      kind: fc.constant('bytes' as const),
      value: fc.oneof(
        fc.uint8Array({ maxLength: 40 }),
        edgeLength.map((n) => new Uint8Array(n).fill(7)),
      ),
    }),
    fc.record({
      kind: fc.constant('string' as const),
      value: fc.oneof(
        fc.string({ maxLength: 20 }),
        fc.string({ unit: 'grapheme', maxLength: 20 }),
        edgeLength.map((n) => 'a'.repeat(n)),
        fc.constantFrom('é', '€'.repeat(50), '😀'.repeat(40), 'topic/ascii'),
      ),
    }),
    fc.record({ kind: fc.constant('sub' as const), ops: fc.array(tie('op'), { maxLength: 5 }) }),
  ),
}))

interface AnyWriter {
  uint32(v: number): unknown
  uint64Number(v: number): unknown
  bool(v: boolean): unknown
  bytes(v: Uint8Array): unknown
  string(v: string): unknown
  fork(): unknown
  ldelim(): unknown
}

function play(w: AnyWriter, ops: Op[]): void {
  for (const o of ops) {
    if (o.kind === 'sub') {
      w.fork()
      play(w, o.ops)
      w.ldelim()
    } else if (o.kind === 'uint32') w.uint32(o.value)
    else if (o.kind === 'uint64Number') w.uint64Number(o.value)
    else if (o.kind === 'bool') w.bool(o.value)
    else if (o.kind === 'bytes') w.bytes(o.value)
    else w.string(o.value)
  }
}

describe('ProtobufWriter', () => {
  it('writes byte for byte what protons-runtime writes, one writer reused', () => {
    const ours = new ProtobufWriter(16)
    fc.assert(
      fc.property(fc.array(op, { maxLength: 8 }), (ops) => {
        const reference = protonsWriter()
        play(reference as unknown as AnyWriter, ops)
        play(ours.reset(), ops)
        expect(ours.finish()).toEqual(reference.finish())
      }),
      { numRuns: 400 },
    )
  })

  it('gives each encoding its own bytes, and refuses unbalanced sub-messages', () => {
    const w = new ProtobufWriter()
    const first = w.reset().uint32(300).finish()
    const second = w.reset().string('x').finish()
    expect([...first]).toEqual([0xac, 0x02])
    expect([...second]).toEqual([1, 0x78])
    expect(() => w.reset().ldelim()).toThrow(RangeError)
    expect(() => w.reset().fork().finish()).toThrow(RangeError)
  })

  it('writes small frames correctly after a large one', () => {
    const w = new ProtobufWriter()
    const big = w.reset().bytes(new Uint8Array(200_000).fill(1)).finish()
    expect(big.length).toBe(200_000 + 3)
    const small = w.reset().fork().bytes(new Uint8Array(200)).ldelim().finish()
    expect([...small.subarray(0, 4)]).toEqual([0xca, 0x01, 0xc8, 0x01])
    expect(small.length).toBe(2 + 2 + 200)
  })
})
