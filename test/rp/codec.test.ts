import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DecodeError } from '../../src/common/errors.ts'
import {
  DEFAULT_RP_CODEC_LIMITS,
  decodeRpMessage,
  encodeRpMessage,
  type RpMessage,
} from '../../src/rp/codec.ts'

const id = (n: number) => new Uint8Array(20).fill(n)
const bytes = (s: string) => new TextEncoder().encode(s)

const samples: RpMessage[] = [
  { type: 'register', topics: ['blocks', 'votes'], leaseMs: 3000, resume: true },
  { type: 'register', topics: [], leaseMs: 0, resume: false },
  { type: 'heartbeat', seq: 2 ** 40 },
  { type: 'leave', topics: ['votes'] },
  {
    type: 'publish',
    id: id(1),
    topic: 'blocks',
    class: 'consensus',
    data: bytes('block 1'),
    quorum: true,
    surplus: 2,
    signature: new Uint8Array(64).fill(7),
  },
  { type: 'ack', ids: [id(1), id(2)], heartbeat: 7, known: true, sent: 12 },
  { type: 'registered', topics: ['blocks'], leaseMs: 3000, groups: [] },
  {
    type: 'registered',
    topics: ['blocks', 'votes'],
    leaseMs: 3000,
    groups: [
      {
        topic: 'blocks',
        group: '232.1.2.3',
        port: 50_000,
        keyId: 7,
        key: new Uint8Array(32).fill(9),
        nextSeq: 12,
        source: '10.77.0.2',
        maxDatagramBytes: 1472,
        maxFragments: 64,
      },
    ],
  },
  {
    type: 'mcast-group',
    group: {
      topic: 'votes',
      group: '232.9.8.7',
      port: 65_535,
      keyId: 2 ** 32 - 1,
      key: new Uint8Array(32).fill(1),
      nextSeq: 1,
      source: 'fd00::1',
      maxDatagramBytes: 1200,
      maxFragments: 1,
    },
  },
  {
    type: 'mcast-nack',
    topic: 'blocks',
    entries: [
      { seq: 5, fragments: [] },
      { seq: 6, fragments: [0, 63] },
    ],
  },
  { type: 'mcast-gone', topic: 'blocks', seqs: [1, 2, 2 ** 32 - 1] },
  { type: 'mcast-probe', topic: 'blocks', nonce: new Uint8Array(8).fill(3) },
  { type: 'mcast-probe-result', topic: 'blocks', reaches: true },
  { type: 'mcast-probe-result', topic: 'votes', reaches: false },
  { type: 'mcast-datagram', datagram: new Uint8Array(1472).fill(0x4d) },
  {
    type: 'deliver',
    id: id(3),
    topic: 'tx',
    class: 'ingress',
    data: new Uint8Array(256),
    publisher: 'm1',
    quorum: true,
    signature: new Uint8Array(64).fill(9),
  },
  { type: 'quorum', id: id(4), count: 7, members: 12 },
  {
    type: 'hello',
    probe: 1234.5,
    echo: 1200.25,
    echoDelay: 0.75,
    states: [
      {
        origin: 'rp-a',
        seq: 9,
        links: [
          { peer: 'rp-b', costUs: 1500 },
          { peer: 'rp-c', costUs: 80_000 },
        ],
        counts: [{ topic: 'blocks', members: 4 }],
      },
      { origin: 'rp-b', seq: 1, links: [], counts: [] },
    ],
    sent: 300,
  },
  {
    type: 'data',
    id: id(5),
    topic: 'blocks',
    class: 'consensus',
    data: bytes('x'),
    originRp: 'rp-a',
    publisher: 'm2',
    quorum: false,
    surplus: 0,
    signature: new Uint8Array(0),
  },
  {
    type: 'delivered',
    counts: [
      { id: id(6), count: 0 },
      { id: id(7), count: 3 },
    ],
  },
  { type: 'digest', ids: [id(8)] },
  { type: 'nack', ids: [], recent: 5, upto: 40 },
  { type: 'nack', ids: [id(9)], recent: 0, upto: 0 },
]

describe('rp codec', () => {
  it('round-trips every message type', () => {
    for (const m of samples) expect(decodeRpMessage(encodeRpMessage(m))).toEqual(m)
  })

  it('keeps a topic that starts with U+FEFF apart from the one without it', () => {
    // TextDecoder strips a leading byte-order mark unless told not to; CI once caught it.
    const m: RpMessage = { type: 'leave', topics: ['\ufeff', '\ufeffvotes', 'votes'] }
    expect(decodeRpMessage(encodeRpMessage(m))).toEqual(m)
  })

  it('skips fields a newer version adds', () => {
    // Field 21 (bytes) and field 30 (fixed32) are unknown to version 1.
    const extra = [0xaa, 0x01, 0x01, 0x00, 0xf5, 0x01, 1, 2, 3, 4]
    for (const m of samples) {
      expect(decodeRpMessage(Uint8Array.from([...encodeRpMessage(m), ...extra]))).toEqual(m)
    }
  })

  it('refuses another version', () => {
    const frame = encodeRpMessage({ type: 'heartbeat', seq: 1 })
    // field 1 (version) is the first byte pair: 0x08 0x01
    expect(frame[0]).toBe(0x08)
    const v2 = frame.slice()
    v2[1] = 2
    expect(() => decodeRpMessage(v2)).toThrow(/unsupported version 2/)
  })

  it('enforces limits on payload, ids and topics', () => {
    const big: RpMessage = {
      type: 'publish',
      id: id(1),
      topic: 't',
      class: 'consensus',
      data: new Uint8Array(2048),
      quorum: false,
      surplus: 0,
      signature: new Uint8Array(0),
    }
    const lim = { ...DEFAULT_RP_CODEC_LIMITS, maxDataBytes: 1024 }
    expect(() => decodeRpMessage(encodeRpMessage(big), lim)).toThrow(DecodeError)
    const many: RpMessage = { type: 'digest', ids: Array.from({ length: 11 }, (_, i) => id(i)) }
    expect(() =>
      decodeRpMessage(encodeRpMessage(many), { ...DEFAULT_RP_CODEC_LIMITS, maxIds: 10 }),
    ).toThrow(/more than 10 ids/)
    const longId: RpMessage = { type: 'nack', ids: [new Uint8Array(65)], recent: 0, upto: 0 }
    expect(() => decodeRpMessage(encodeRpMessage(longId))).toThrow(DecodeError)
    for (const type of ['publish', 'deliver', 'data'] as const) {
      const m = samples.find((s) => s.type === type)!
      const signed = encodeRpMessage({ ...m, signature: new Uint8Array(65) } as RpMessage)
      expect(() => decodeRpMessage(signed)).toThrow(/signature of 65 bytes exceeds the limit of 64/)
    }
    const topics: RpMessage = { type: 'leave', topics: ['a', 'b', 'c'] }
    expect(() =>
      decodeRpMessage(encodeRpMessage(topics), { ...DEFAULT_RP_CODEC_LIMITS, maxTopics: 2 }),
    ).toThrow(/more than 2 topics/)
  })

  it('enforces limits on the multicast kinds', () => {
    const lim = DEFAULT_RP_CODEC_LIMITS
    const entry = { seq: 1, fragments: [] }
    const nack = (entries: Array<{ seq: number; fragments: number[] }>): RpMessage => ({
      type: 'mcast-nack',
      topic: 't',
      entries,
    })
    expect(() =>
      decodeRpMessage(encodeRpMessage(nack(Array(lim.maxNackEntries + 1).fill(entry)))),
    ).toThrow(/more than 64 NACK entries/)
    expect(() => decodeRpMessage(encodeRpMessage(nack([{ seq: 1, fragments: [64] }])))).toThrow(
      /fragment 64 out of range/,
    )
    expect(() => decodeRpMessage(encodeRpMessage(nack([{ seq: 0, fragments: [] }])))).toThrow(
      /without a sequence number/,
    )
    const gone: RpMessage = { type: 'mcast-gone', topic: 't', seqs: Array(65).fill(1) }
    expect(() => decodeRpMessage(encodeRpMessage(gone))).toThrow(/more than 64 GONE seqs/)
    const probe: RpMessage = { type: 'mcast-probe', topic: 't', nonce: new Uint8Array(7) }
    expect(() => decodeRpMessage(encodeRpMessage(probe))).toThrow(/nonce must be 8 bytes/)
    const big: RpMessage = { type: 'mcast-datagram', datagram: new Uint8Array(1473) }
    expect(() => decodeRpMessage(encodeRpMessage(big))).toThrow(/exceeds the limit of 1472/)
    const announce = samples.find((m) => m.type === 'mcast-group') as Extract<
      RpMessage,
      { type: 'mcast-group' }
    >
    const shortKey = { ...announce, group: { ...announce.group, key: new Uint8Array(31) } }
    expect(() => decodeRpMessage(encodeRpMessage(shortKey))).toThrow(/group key must be 32/)
    const noSeq = { ...announce, group: { ...announce.group, nextSeq: 0 } }
    expect(() => decodeRpMessage(encodeRpMessage(noSeq))).toThrow(/lacks port, next seq/)
  })

  it('refuses a frame without a body, and a data frame without an origin', () => {
    expect(() => decodeRpMessage(new Uint8Array([0x08, 0x01]))).toThrow(/no body/)
    const m = samples.find((s) => s.type === 'data') as Extract<RpMessage, { type: 'data' }>
    expect(() => decodeRpMessage(encodeRpMessage({ ...m, originRp: '' }))).toThrow(/origin RP/)
  })

  it('throws only DecodeError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (buf) => {
        try {
          decodeRpMessage(buf)
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err
        }
      }),
      { numRuns: 3000 },
    )
  })

  it('throws only DecodeError on mutated valid frames', () => {
    const frames = samples.map(encodeRpMessage)
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: frames.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.nat(),
        (which, flips, cut) => {
          const f = frames[which].slice(0, Math.max(1, frames[which].length - (cut % 4)))
          for (const [pos, v] of flips) f[pos % f.length] = v
          try {
            decodeRpMessage(f)
          } catch (err) {
            if (!(err instanceof DecodeError)) throw err
          }
        },
      ),
      { numRuns: 3000 },
    )
  })
})
