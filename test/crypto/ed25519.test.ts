import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  Ed25519KeyPair,
  importEd25519PublicKey,
  nativeEd25519,
  nobleEd25519,
  verifyEd25519Prepared,
} from '../../src/crypto/ed25519.ts'

describe('ed25519', () => {
  it('native and noble derive the same public key and the same (deterministic) signature', () => {
    for (let i = 0; i < 8; i++) {
      const sk = new Uint8Array(randomBytes(32))
      const msg = new Uint8Array(randomBytes(1 + i * 13))
      expect(nativeEd25519.getPublicKey(sk)).toEqual(nobleEd25519.getPublicKey(sk))
      expect(nativeEd25519.sign(sk, msg)).toEqual(nobleEd25519.sign(sk, msg))
    }
  })

  it('each path verifies the other path’s signatures and rejects tampering', () => {
    const pair = Ed25519KeyPair.generate()
    const msg = new TextEncoder().encode('consensus')
    const sig = pair.sign(msg)
    expect(nobleEd25519.verify(pair.publicKey, msg, sig)).toBe(true)
    expect(nativeEd25519.verify(pair.publicKey, msg, sig)).toBe(true)
    const key = importEd25519PublicKey(pair.publicKey)!
    expect(verifyEd25519Prepared(key, msg, sig)).toBe(true)

    const flipped = sig.slice()
    flipped[5] ^= 1
    const otherMsg = new TextEncoder().encode('consensuS')
    for (const impl of [nativeEd25519, nobleEd25519]) {
      expect(impl.verify(pair.publicKey, msg, flipped)).toBe(false)
      expect(impl.verify(pair.publicKey, otherMsg, sig)).toBe(false)
      expect(impl.verify(Ed25519KeyPair.generate().publicKey, msg, sig)).toBe(false)
    }
    expect(verifyEd25519Prepared(key, msg, flipped)).toBe(false)
  })

  it('returns false, never throws, on malformed keys and signatures', () => {
    const pair = Ed25519KeyPair.generate()
    const msg = new Uint8Array([1, 2, 3])
    const sig = pair.sign(msg)
    for (const impl of [nativeEd25519, nobleEd25519]) {
      expect(impl.verify(pair.publicKey.subarray(0, 31), msg, sig)).toBe(false)
      expect(impl.verify(pair.publicKey, msg, sig.subarray(0, 63))).toBe(false)
      expect(impl.verify(new Uint8Array(32).fill(0xff), msg, sig)).toBe(false)
    }
    expect(importEd25519PublicKey(new Uint8Array(5))).toBeUndefined()
  })
})
