import fc from 'fast-check'
import { reader } from 'protons-runtime'
import { describe, expect, it } from 'vitest'
import { ByteReader, ByteWriter } from '../../src/common/binary.ts'
import { DecodeError, MessageTooLargeError } from '../../src/common/errors.ts'
import { encodeLengthPrefixed, LengthPrefixedDecoder } from '../../src/common/length-prefixed.ts'
import { contentMessageId, messageIdFromKey, messageIdKey } from '../../src/common/message-id.ts'
import { expectWireType, LEN, readFields, VARINT } from '../../src/common/protobuf-fields.ts'
import { SeenCache } from '../../src/common/seen-cache.ts'
import { decodeFloodFrame, encodeFloodFrame } from '../../src/flood/flood-codec.ts'

const LIMITS = { maxDataBytes: 4096, maxTopicBytes: 64, maxIdBytes: 64 }

describe('binary codecs', () => {
  it('ByteWriter and ByteReader round-trip every field type', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.uint8Array({ maxLength: 300 }),
        fc.string({ maxLength: 40 }),
        (a, b, c, d, bytes, s) => {
          const w = new ByteWriter(1).u8(a).u32(b).u64(c).varint(d).bytes(bytes).string(s)
          const r = new ByteReader(w.finish())
          expect(r.u8()).toBe(a)
          expect(r.u32()).toBe(b)
          expect(r.u64()).toBe(c)
          expect(r.varint()).toBe(d)
          expect(r.bytes(300)).toEqual(bytes)
          expect(r.string(1000)).toBe(s)
          r.end()
        },
      ),
    )
  })

  it('a flood frame round-trips, and random bytes only ever raise DecodeError', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.constantFrom('consensus' as const, 'ingress' as const),
        fc.string({ maxLength: 20 }),
        fc.uint8Array({ maxLength: 4096 }),
        (id, cls, topic, data) => {
          const frame = { id, class: cls, topic, data }
          expect(decodeFloodFrame(encodeFloodFrame(frame), LIMITS)).toEqual(frame)
        },
      ),
    )
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
        try {
          decodeFloodFrame(junk, LIMITS)
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
        }
      }),
    )
  })

  it('a flood frame over the payload limit is refused before it is copied', () => {
    const big = encodeFloodFrame({
      id: new Uint8Array(20),
      class: 'consensus',
      topic: 't',
      data: new Uint8Array(5000),
    })
    expect(() => decodeFloodFrame(big, LIMITS)).toThrow(/exceeds limit 4096/)
  })

  it('the length-prefixed decoder yields the same frames however the stream is chunked', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 500 }), { maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 20 }),
        (frames, cuts) => {
          const stream = Buffer.concat(frames.map(encodeLengthPrefixed))
          const decoder = new LengthPrefixedDecoder(500)
          const out: Uint8Array[] = []
          let pos = 0
          for (let i = 0; pos < stream.length; i++) {
            const step = cuts[i % cuts.length]
            out.push(...decoder.push(stream.subarray(pos, pos + step)))
            pos += step
          }
          expect(out.map((f) => Buffer.from(f).toString('hex'))).toEqual(
            frames.map((f) => Buffer.from(f).toString('hex')),
          )
          expect(decoder.buffered).toBe(0)
        },
      ),
    )
  })

  it('the length-prefixed decoder refuses an oversized length before buffering the body', () => {
    const decoder = new LengthPrefixedDecoder(100)
    expect(() => decoder.push(encodeLengthPrefixed(new Uint8Array(101)).subarray(0, 2))).toThrow(
      MessageTooLargeError,
    )
    expect(() =>
      new LengthPrefixedDecoder(100).push(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0x01])),
    ).toThrow()
  })
})

describe('message ids and the seen cache', () => {
  it('content ids depend on topic and data, and keys round-trip', () => {
    const a = contentMessageId('t', new Uint8Array([1]))
    expect(a.length).toBe(20)
    expect(messageIdKey(a)).toBe(messageIdKey(contentMessageId('t', new Uint8Array([1]))))
    expect(messageIdKey(a)).not.toBe(messageIdKey(contentMessageId('u', new Uint8Array([1]))))
    expect(messageIdKey(a)).not.toBe(messageIdKey(contentMessageId('t', new Uint8Array([2]))))
    // The topic/data boundary is unambiguous.
    expect(messageIdKey(contentMessageId('ab', new Uint8Array([99])))).not.toBe(
      messageIdKey(contentMessageId('a', new Uint8Array([98, 99]))),
    )
    expect(messageIdFromKey(messageIdKey(a))).toEqual(new Uint8Array(a))
  })

  it('the seen cache expires after its TTL and never holds more than its capacity', () => {
    const cache = new SeenCache(1000, 3)
    expect(cache.add('a', 0)).toBe(true)
    expect(cache.add('a', 10)).toBe(false)
    expect(cache.has('a', 999)).toBe(true)
    expect(cache.has('a', 1000)).toBe(false)
    expect(cache.add('a', 1000)).toBe(true)
    for (const k of ['b', 'c', 'd', 'e']) cache.add(k, 1001)
    expect(cache.size).toBe(3)
    expect(cache.has('a', 1001)).toBe(false)
    expect(cache.has('e', 1001)).toBe(true)
  })
})

describe('protobuf field reading shared by the codecs', () => {
  // Field 1 (varint 150), then unknown fields of every wire type, then field 2 (bytes "hi").
  const known = [0x08, 0x96, 0x01]
  const unknown = [
    ...[0x18, 0xff, 0xff, 0x03], // field 3, varint
    ...[0x21, 1, 2, 3, 4, 5, 6, 7, 8], // field 4, fixed64
    ...[0x2a, 0x03, 9, 9, 9], // field 5, length-delimited
    ...[0x35, 1, 2, 3, 4], // field 6, fixed32
  ]
  const tail = [0x12, 0x02, 0x68, 0x69]

  function read(bytes: number[]) {
    const r = reader(Uint8Array.from(bytes))
    const got: string[] = []
    readFields(r, r.len, (field, wireType) => {
      if (field === 1) {
        expectWireType(wireType, VARINT)
        got.push(`1=${r.uint32()}`)
      } else if (field === 2) {
        expectWireType(wireType, LEN)
        got.push(`2=${new TextDecoder().decode(r.bytes())}`)
      } else return false
      return true
    })
    return { got, pos: r.pos }
  }

  it('skips unknown fields of every wire type and reads the known ones around them', () => {
    const bytes = [...known, ...unknown, ...tail]
    expect(read(bytes)).toEqual({ got: ['1=150', '2=hi'], pos: bytes.length })
  })

  it('refuses groups, field 0, wrong wire types and fields that overrun the message', () => {
    expect(() => read([...known, 0x1b])).toThrow(/unsupported wire type 3/)
    expect(() => read([0x00, 0x01])).toThrow(/field number 0/)
    expect(() => read([0x0a, 0x00])).toThrow(/wire type 2, want 0/)
    expect(() => read([...known, 0x2a, 0x05, 1, 2])).toThrow(/overruns/)
    expect(() => read([...known, 0x21, 1, 2, 3])).toThrow(/overruns/)
    for (const bad of [[0x2a, 0x05, 1, 2], [0x1b], [0x00]]) {
      expect(() => read(bad)).toThrow(DecodeError)
    }
  })
})
