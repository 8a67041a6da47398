import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type DistilledBatch,
  decodeDistilledBatch,
  encodeDistilledBatch,
} from '../../src/broker/distilled-batch.ts'
import { batchLeaves, decodeLeaf, encodeLeaf } from '../../src/broker/leaf.ts'
import { brokerLimits } from '../../src/broker/params.ts'
import {
  decodeDelivered,
  decodeInclusion,
  decodeShardFrame,
  decodeShare,
  decodeSubmission,
  encodeDelivered,
  encodeDeliveryShard,
  encodeInclusion,
  encodeShare,
  encodeSubmission,
  encodeWitnessShard,
} from '../../src/broker/wire.ts'
import { DecodeError } from '../../src/common/errors.ts'

const limits = brokerLimits({ maxPayload: 64, maxBatchEntries: 4096 })
const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill)

const batchArb = fc
  .uniqueArray(fc.integer({ min: 0, max: 100_000 }), { minLength: 1, maxLength: 300 })
  .chain((rawIds) => {
    const ids = Uint32Array.from([...rawIds].sort((a, b) => a - b))
    const n = ids.length
    return fc.record({
      ids: fc.constant(ids),
      payloads: fc.oneof(
        fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: n, maxLength: n }),
        fc.uint8Array({ maxLength: 64 }).map((p) => Array.from({ length: n }, () => p)),
      ),
      raise: fc.integer({ min: 1, max: 1_000_000 }),
      straggle: fc.uniqueArray(fc.nat(n - 1), { maxLength: n }),
      withAggregate: fc.boolean(),
      slot: fc.nat(5),
    })
  })

describe('broker codecs', () => {
  it('round-trips a submission and enforces its limits', () => {
    const s = { id: 42, sequence: 2 ** 40, payload: bytes(8), signature: bytes(64, 1) }
    const frame = encodeSubmission(s)
    expect(decodeSubmission(frame, limits)).toEqual(s)
    expect(() => decodeSubmission(frame.subarray(0, frame.length - 1), limits)).toThrow(DecodeError)
    expect(() => decodeSubmission(new Uint8Array([...frame, 0]), limits)).toThrow(DecodeError)
    const big = encodeSubmission({ ...s, payload: bytes(65) })
    expect(() => decodeSubmission(big, limits)).toThrow(DecodeError)
    const zero = encodeSubmission({ ...s, sequence: 0 })
    expect(() => decodeSubmission(zero, limits)).toThrow(DecodeError)
    const far = encodeSubmission({ ...s, id: limits.maxClients })
    expect(() => decodeSubmission(far, limits)).toThrow(DecodeError)
    // An undistilled submission of an 8-byte payload: kind, id, sequence, length, payload, signature.
    expect(encodeSubmission({ ...s, sequence: 1 }).length).toBe(1 + 4 + 1 + 1 + 8 + 64)
  })

  it('round-trips inclusion proofs, shares, delivery certificates and shards', () => {
    const leaf = encodeLeaf(9, [
      { id: 1, payload: bytes(8) },
      { id: 3, payload: bytes(2) },
    ])
    expect(decodeLeaf(leaf, limits)).toEqual({
      raise: 9,
      entries: [
        { id: 1, payload: bytes(8) },
        { id: 3, payload: bytes(2) },
      ],
    })
    const inclusion = {
      root: bytes(32, 3),
      leafIndex: 5,
      leafCount: 512,
      leaf,
      proof: Array.from({ length: 13 }, (_, i) => bytes(32, i)),
    }
    const height = { slot: 4, root: bytes(32, 6), shards: [{ server: 1, signature: bytes(64, 2) }] }
    const inc = encodeInclusion({ ...inclusion, height })
    expect(decodeInclusion(inc, limits)).toEqual({ ...inclusion, height })
    const genesis = encodeInclusion({ ...inclusion, height: { slot: 0, shards: [] } })
    expect(decodeInclusion(genesis, limits).height).toEqual({ slot: 0, shards: [] })
    // Without a certificate (the client knows a high enough height already): one byte.
    const bare = encodeInclusion(inclusion)
    expect(decodeInclusion(bare, limits)).toEqual(inclusion)
    expect(bare.length).toBe(genesis.length - 1)
    // 13 proof hashes and a leaf of 2 entries, with a height certificate of one shard.
    expect(genesis.length).toBeLessThan(480)
    const share = { id: 7, root: bytes(32, 4), signature: bytes(192, 5) }
    expect(decodeShare(encodeShare(share), limits)).toEqual(share)
    const delivered = {
      slot: 77,
      shards: [
        { server: 0, signature: bytes(64, 1) },
        { server: 2, signature: bytes(64, 2) },
      ],
      inclusion,
    }
    expect(decodeDelivered(encodeDelivered(delivered), limits)).toEqual(delivered)
    const shard = { server: 3, signature: bytes(64, 9) }
    expect(decodeShardFrame(encodeWitnessShard(bytes(32), shard))).toEqual({
      digest: bytes(32),
      shard,
    })
    expect(decodeShardFrame(encodeDeliveryShard(5, bytes(32, 1), shard))).toEqual({
      slot: 5,
      root: bytes(32, 1),
      shard,
    })
  })

  it('round-trips distilled batches (property)', () => {
    fc.assert(
      fc.property(batchArb, (a) => {
        const stragglers = [...a.straggle]
          .sort((x, y) => x - y)
          .map((index) => ({ index, sequence: index + 1, signature: bytes(64, index & 0xff) }))
        const batch: DistilledBatch = {
          batchNumber: 3,
          entriesPerLeaf: 8,
          raise: a.raise,
          height:
            a.slot === 0
              ? { slot: 0, shards: [] }
              : { slot: a.slot, root: bytes(32, 2), shards: [{ server: 1, signature: bytes(64) }] },
          ids: a.ids,
          payloads: a.payloads,
          aggregate: a.withAggregate ? bytes(96, 8) : undefined,
          stragglers,
        }
        const decoded = decodeDistilledBatch(
          encodeDistilledBatch(batch),
          brokerLimits({ maxPayload: 64, maxClients: 200_000 }),
        )
        expect(decoded).toEqual(batch)
      }),
      { numRuns: 100 },
    )
  })

  it('distills a dense batch to about 8 B of payload plus a few bits per message', () => {
    const n = 4096
    const batch: DistilledBatch = {
      batchNumber: 1,
      entriesPerLeaf: 8,
      raise: 12,
      height: { slot: 0, shards: [] },
      ids: Uint32Array.from({ length: n }, (_, i) => 1000 + i),
      payloads: Array.from({ length: n }, (_, i) => bytes(8, i & 0xff)),
      aggregate: bytes(96),
      stragglers: [],
    }
    const frame = encodeDistilledBatch(batch)
    expect(frame.length / n).toBeLessThan(8.1)
    expect(frame.length / n).toBeGreaterThanOrEqual(8)
    expect(batchLeaves(12, batch.ids, batch.payloads, 8).length).toBe(n / 8)
  })

  it('rejects malformed and over-limit batches with DecodeError', () => {
    const batch: DistilledBatch = {
      batchNumber: 1,
      entriesPerLeaf: 8,
      raise: 1,
      height: { slot: 0, shards: [] },
      ids: Uint32Array.from({ length: 10 }, (_, i) => i * 3),
      payloads: Array.from({ length: 10 }, () => bytes(8)),
      stragglers: [{ index: 2, sequence: 1, signature: bytes(64) }],
    }
    const frame = encodeDistilledBatch(batch)
    const small = brokerLimits({ maxBatchEntries: 9 })
    expect(() => decodeDistilledBatch(frame, small)).toThrow(DecodeError)
    expect(() => decodeDistilledBatch(frame, brokerLimits({ maxPayload: 7 }))).toThrow(DecodeError)
    expect(() => decodeDistilledBatch(frame, brokerLimits({ maxClients: 20 }))).toThrow(DecodeError)
    for (let cut = 0; cut < frame.length; cut += 7) {
      expect(() => decodeDistilledBatch(frame.subarray(0, cut), limits)).toThrow(DecodeError)
    }
    expect(() => decodeDistilledBatch(new Uint8Array([...frame, 1]), limits)).toThrow(DecodeError)
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
        try {
          decodeDistilledBatch(new Uint8Array([0x10, 1, ...junk]), limits)
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
        }
      }),
    )
  })
})
