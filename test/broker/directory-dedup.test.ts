import { describe, expect, it } from 'vitest'
import { DedupTable } from '../../src/broker/dedup.ts'
import { Directory } from '../../src/broker/directory.ts'
import { InvalidParametersError, SignatureError } from '../../src/common/errors.ts'
import { BlsKeyPair, blsAggregatePublicKeys } from '../../src/crypto/bls.ts'
import { Ed25519KeyPair } from '../../src/crypto/ed25519.ts'

const enc = (s: string) => new TextEncoder().encode(s)

describe('per-client deduplication', () => {
  it('delivers, nudges, ignores and drops by last sequence and message fingerprint', () => {
    const t = new DedupTable(2)
    expect(t.apply(5, 1, enc('hello'))).toBe('deliver')
    expect(t.apply(5, 1, enc('hello'))).toBe('ignore')
    expect(t.apply(5, 1, enc('other'))).toBe('ignore')
    // The same message raised again: not delivered, the last sequence moves up.
    expect(t.apply(5, 4, enc('hello'))).toBe('nudge')
    expect(t.lastSequence(5)).toBe(4)
    expect(t.apply(5, 3, enc('stale'))).toBe('drop')
    expect(t.apply(5, 6, enc('next'))).toBe('deliver')
    expect(t.apply(5, 7, enc('hello'))).toBe('deliver')
    // Fingerprints compare length too ('ab' is not 'ab\0').
    expect(t.apply(9, 1, enc('ab'))).toBe('deliver')
    expect(t.apply(9, 2, new Uint8Array([0x61, 0x62, 0]))).toBe('deliver')
    // Long payloads are fingerprinted by hash: a change after byte 16 is a new message.
    const long = new Uint8Array(100).fill(1)
    const longer = long.slice()
    longer[99] = 2
    expect(t.apply(3, 1, long)).toBe('deliver')
    expect(t.apply(3, 2, long)).toBe('nudge')
    expect(t.apply(3, 3, longer)).toBe('deliver')
    // The table grows on demand; others are untouched.
    expect(t.apply(1000, 7, enc('x'))).toBe('deliver')
    expect(t.lastSequence(5)).toBe(7)
    expect(t.lastSequence(1001)).toBe(0)
  })
})

describe('directory', () => {
  it('registers dense ids and refuses a BLS key without a valid proof of possession', () => {
    const d = new Directory()
    const a = BlsKeyPair.generate()
    const b = BlsKeyPair.generate()
    const ed = Ed25519KeyPair.generate().publicKey
    expect(
      d.register({ ed25519: ed, bls: a.publicKey, proofOfPossession: a.proofOfPossession }),
    ).toBe(0)
    expect(() =>
      d.register({ ed25519: ed, bls: a.publicKey, proofOfPossession: b.proofOfPossession }),
    ).toThrow(SignatureError)
    expect(() =>
      d.register({
        ed25519: new Uint8Array(3),
        bls: b.publicKey,
        proofOfPossession: b.proofOfPossession,
      }),
    ).toThrow(InvalidParametersError)
    expect(
      d.register({ ed25519: ed, bls: b.publicKey, proofOfPossession: b.proofOfPossession }),
    ).toBe(1)
    expect(d.size).toBe(2)
    expect(d.has(1)).toBe(true)
    expect(d.has(2)).toBe(false)
  })

  it('cached block sums give the same aggregate key as adding every key', () => {
    const d = new Directory()
    const keys = Array.from({ length: 8 }, () => BlsKeyPair.generate())
    const ed = Ed25519KeyPair.generate().publicKey
    for (let id = 0; id < 600; id++) {
      const k = keys[id % keys.length]
      d.register({ ed25519: ed, bls: k.publicKey, proofOfPossession: k.proofOfPossession })
    }
    const ids = Array.from({ length: 600 }, (_, i) => i).filter((i) => i !== 300 && i !== 599)
    const parts = d.aggregateKeyParts(ids)
    // Block 0 (0–255) is complete and comes as one sum; 256–599 are partial.
    expect(parts.length).toBe(1 + (ids.length - 256))
    const all = blsAggregatePublicKeys(ids.map((i) => d.blsKey(i)))
    expect(blsAggregatePublicKeys(parts).toBytes(true)).toEqual(all.toBytes(true))
  })
})
