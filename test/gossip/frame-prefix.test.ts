import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  encodeLengthPrefixed,
  FIRST_INSPECTION_BYTES,
  FrameRefusedError,
  LengthPrefixedDecoder,
} from '../../src/common/length-prefixed.ts'
import {
  checkRpcPrefix,
  DEFAULT_RPC_LIMITS,
  decodeRpc,
  RpcLimitError,
} from '../../src/gossip/rpc-codec.ts'
import {
  emptyControlFieldsFrame,
  emptyIDontWantEntriesFrame,
  emptyIWantEntriesFrame,
} from '../support/gossip-attacks.ts'
import { frame } from './harness.ts'

const T = 'blocks'

/** The limit `fn` crosses, or undefined when it throws no RpcLimitError. */
function limitCrossed(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof RpcLimitError) return err.limit
  }
  return undefined
}

const id = (i: number) => Uint8Array.from({ length: 20 }, (_, j) => (i * 31 + j) & 0xff)

/** Frames within every limit: none of their prefixes may be refused. */
const honestFrames = [
  frame({ messages: [{ topic: T, data: new Uint8Array(1024 * 1024).fill(7) }] }),
  frame({
    control: { ihave: [{ topicID: T, messageIDs: Array.from({ length: 5000 }, (_, i) => id(i)) }] },
  }),
  frame({
    subscriptions: Array.from({ length: 2000 }, (_, i) => ({ subscribe: true, topic: `t${i}` })),
    messages: Array.from({ length: 40 }, (_, i) => ({
      topic: T,
      data: new Uint8Array(3000).fill(i),
    })),
    control: {
      iwant: [{ messageIDs: Array.from({ length: 4000 }, (_, i) => id(i)) }],
      idontwant: [{ messageIDs: Array.from({ length: 512 }, (_, i) => id(i)) }],
      graft: [{ topicID: T }],
      prune: [{ topicID: 'x', peers: [{ peerID: id(1) }], backoff: 60 }],
    },
  }),
]

describe('checking the first bytes of a frame still arriving', () => {
  it('refuses each hostile 4 MiB frame from its first 64 KiB, on the limit the whole frame crosses', () => {
    for (const bytes of [
      emptyIWantEntriesFrame(),
      emptyIDontWantEntriesFrame(),
      emptyControlFieldsFrame(),
    ]) {
      const whole = limitCrossed(() => decodeRpc(bytes))
      expect(whole).toBeDefined()
      const prefix = bytes.subarray(0, FIRST_INSPECTION_BYTES)
      expect(limitCrossed(() => checkRpcPrefix(prefix, bytes.length))).toBe(whole)
    }
  })

  it('never refuses a prefix of a frame within the limits', () => {
    for (const bytes of honestFrames) expect(() => decodeRpc(bytes)).not.toThrow()
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: honestFrames.length - 1 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (which, at) => {
          const bytes = honestFrames[which]
          const prefix = bytes.subarray(0, Math.floor(at * bytes.length))
          checkRpcPrefix(prefix, bytes.length)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('refuses a prefix only when the whole frame crosses the same limit', () => {
    // Frames that cross a limit somewhere: a prefix that is refused names the whole frame's limit.
    const over = [
      frame({
        control: {
          ihave: [{ topicID: T, messageIDs: Array.from({ length: 6000 }, (_, i) => id(i)) }],
        },
      }),
      frame({
        control: { idontwant: [{ messageIDs: Array.from({ length: 1500 }, (_, i) => id(i)) }] },
      }),
      frame({
        subscriptions: Array.from({ length: 3000 }, (_, i) => ({
          subscribe: true,
          topic: `t${i}`,
        })),
      }),
      frame({
        control: { graft: [{ topicID: 'x'.repeat(DEFAULT_RPC_LIMITS.maxTopicLength + 1) }] },
      }),
    ]
    for (const bytes of over) {
      // All but the last byte: each crosses its limit before its end.
      const almost = bytes.subarray(0, bytes.length - 1)
      expect(limitCrossed(() => checkRpcPrefix(almost, bytes.length))).toBe(
        limitCrossed(() => decodeRpc(bytes)),
      )
    }
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: over.length - 1 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (which, at) => {
          const bytes = over[which]
          const whole = limitCrossed(() => decodeRpc(bytes))
          expect(whole).toBeDefined()
          const part = limitCrossed(() =>
            checkRpcPrefix(bytes.subarray(0, Math.floor(at * bytes.length)), bytes.length),
          )
          if (part !== undefined) expect(part).toBe(whole)
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('the length-prefixed decoder with an inspector', () => {
  it('shows a large frame at 64 KiB, 256 KiB... and delivers it whole when accepted', () => {
    const body = honestFrames[0]
    const seen: [number, number][] = []
    const decoder = new LengthPrefixedDecoder(4 * 1024 * 1024, (prefix, length) => {
      seen.push([prefix.length, length])
      return true
    })
    const stream = encodeLengthPrefixed(body)
    const out: Uint8Array[] = []
    for (let pos = 0; pos < stream.length; pos += 16 * 1024) {
      out.push(...decoder.push(stream.subarray(pos, pos + 16 * 1024)))
    }
    expect(out).toHaveLength(1)
    expect(Buffer.compare(out[0], body)).toBe(0)
    // A frame of about 1 MiB: looked at once past 64 KiB and once past 256 KiB.
    expect(seen.map(([, length]) => length)).toEqual([body.length, body.length])
    expect(seen[0][0]).toBeGreaterThanOrEqual(FIRST_INSPECTION_BYTES)
    expect(seen[0][0]).toBeLessThan(FIRST_INSPECTION_BYTES + 16 * 1024)
    expect(seen[1][0]).toBeGreaterThanOrEqual(4 * FIRST_INSPECTION_BYTES)
    // Small frames are never shown: they are decoded whole anyway.
    seen.length = 0
    decoder.push(encodeLengthPrefixed(new Uint8Array(1000)))
    expect(seen).toEqual([])
  })

  it('throws FrameRefusedError as soon as the inspector refuses, holding only the prefix', () => {
    const bytes = emptyIWantEntriesFrame()
    const decoder = new LengthPrefixedDecoder(4 * 1024 * 1024, (prefix, length) => {
      try {
        checkRpcPrefix(prefix, length)
        return true
      } catch {
        return false
      }
    })
    const stream = encodeLengthPrefixed(bytes)
    let pos = 0
    let error: unknown
    while (pos < stream.length && error === undefined) {
      try {
        decoder.push(stream.subarray(pos, pos + 16 * 1024))
      } catch (err) {
        error = err
      }
      pos += 16 * 1024
    }
    expect(error).toBeInstanceOf(FrameRefusedError)
    expect((error as FrameRefusedError).frameLength).toBe(bytes.length)
    expect(pos).toBeLessThanOrEqual(FIRST_INSPECTION_BYTES + 16 * 1024)
  })
})
