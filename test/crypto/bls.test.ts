import { aggregateSignatures, fastAggregateVerify, PublicKey, Signature } from '@chainsafe/blst'
import { bls12_381 } from '@noble/curves/bls12-381.js'
import { describe, expect, it } from 'vitest'
import {
  BlsKeyPair,
  blsAggregatePublicKeys,
  blsAggregateShares,
  blsDecodeShare,
  blsPossessionInput,
  blsSigningInput,
  blsSumShares,
  blsVerify,
  blsVerifyAggregate,
  blsVerifyPossession,
} from '../../src/crypto/bls.ts'

const ETH_POP_DST = 'BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_'
const msg = new TextEncoder().encode('batch root')

function keys(n: number): BlsKeyPair[] {
  return Array.from({ length: n }, () => BlsKeyPair.generate())
}

describe('BLS multi-signatures (blst, min-pk)', () => {
  it('a blst signature verifies under @noble/curves (the portable reference)', () => {
    const pair = BlsKeyPair.generate()
    const sig = pair.sign(msg)
    const noble = bls12_381.longSignatures
    const point = noble.Signature.fromBytes(sig)
    const h = noble.hash(blsSigningInput(msg), ETH_POP_DST)
    expect(noble.verify(point, h, pair.publicKey)).toBe(true)
    expect(noble.verify(point, noble.hash(msg, ETH_POP_DST), pair.publicKey)).toBe(false)
  })

  it('checks proofs of possession and separates them from message signatures', () => {
    const pair = BlsKeyPair.generate()
    const other = BlsKeyPair.generate()
    expect(blsVerifyPossession(pair.publicKey, pair.proofOfPossession)?.toBytes(true)).toEqual(
      pair.publicKey,
    )
    expect(blsVerifyPossession(pair.publicKey, other.proofOfPossession)).toBeUndefined()
    expect(blsVerifyPossession(new Uint8Array(48), pair.proofOfPossession)).toBeUndefined()
    // A protocol-message signature over the key bytes is not a proof of possession.
    expect(blsVerifyPossession(pair.publicKey, pair.sign(pair.publicKey))).toBeUndefined()
    // ...and a proof of possession is not a signature on the key bytes as a message.
    const pk = blsVerifyPossession(pair.publicKey, pair.proofOfPossession)!
    expect(blsVerify(pk, pair.publicKey, pair.proofOfPossession)).toBe(false)
    expect(blsPossessionInput(pair.publicKey)).not.toEqual(blsSigningInput(pair.publicKey))
  })

  it('prevents the rogue-key attack: the forged key has no valid proof of possession', () => {
    const honest = BlsKeyPair.generate()
    const noble = bls12_381.longSignatures
    const G1 = bls12_381.G1.Point
    // The attacker picks x and publishes rogue = g^x − pk_honest, so pk_honest + rogue = g^x.
    const x = bls12_381.utils.randomSecretKey()
    const gx = G1.fromBytes(noble.getPublicKey(x).toBytes(true))
    const rogue = gx.subtract(G1.fromBytes(honest.publicKey)).toBytes(true)
    const forged = noble.sign(noble.hash(blsSigningInput(msg), ETH_POP_DST), x).toBytes(true)

    // Without proofs of possession the forgery is accepted as "signed by both".
    const rogueKey = PublicKey.fromBytes(rogue, true)
    const honestKey = PublicKey.fromBytes(honest.publicKey, true)
    expect(
      fastAggregateVerify(
        blsSigningInput(msg),
        [honestKey, rogueKey],
        Signature.fromBytes(forged, true),
      ),
    ).toBe(true)

    // With them, the attacker cannot register the rogue key: it does not know its secret.
    const popGuess = noble.sign(noble.hash(blsPossessionInput(rogue), ETH_POP_DST), x).toBytes(true)
    expect(blsVerifyPossession(rogue, popGuess)).toBeUndefined()
    expect(blsVerifyPossession(rogue, honest.proofOfPossession)).toBeUndefined()
  })

  it('aggregates good shares with one verification', () => {
    const pairs = keys(16)
    const shares = pairs.map((p) => ({
      publicKey: blsVerifyPossession(p.publicKey, p.proofOfPossession)!,
      signature: p.sign(msg),
    }))
    const r = blsAggregateShares(msg, shares)
    expect(r.verifications).toBe(1)
    expect(r.bad).toEqual([])
    // With the keys' sum given (as a directory caches it), the result is the same.
    const cached = blsAggregateShares(msg, shares, {
      aggregateKeyParts: [blsAggregatePublicKeys(shares.map((s) => s.publicKey))],
    })
    expect(cached.aggregate).toEqual(r.aggregate)
    expect(cached.verifications).toBe(1)
    // A running sum kept by the caller is used as is; a wrong one only costs bisection.
    const decoded = shares.map((s) => blsDecodeShare(s.signature as Uint8Array)!)
    const summed = blsAggregateShares(msg, shares, { aggregate: blsSumShares(decoded) })
    expect(summed.aggregate).toEqual(r.aggregate)
    expect(summed.verifications).toBe(1)
    const wrong = blsAggregateShares(msg, shares, { aggregate: blsSumShares(decoded.slice(1)) })
    expect(wrong.aggregate).toEqual(r.aggregate)
    expect(wrong.bad).toEqual([])
    expect(wrong.verifications).toBeGreaterThan(1)
    expect(r.good).toEqual(pairs.map((_, i) => i))
    const pks = shares.map((s) => s.publicKey)
    expect(blsVerifyAggregate(pks, msg, r.aggregate!)).toBe(true)
    expect(blsVerifyAggregate(pks.slice(1), msg, r.aggregate!)).toBe(false)
    expect(blsVerifyAggregate(pks, new Uint8Array([9]), r.aggregate!)).toBe(false)
  })

  it('bisection finds exactly the bad shares', () => {
    const pairs = keys(32)
    const badSet = [3, 4, 17, 31]
    const shares = pairs.map((p, i) => ({
      publicKey: blsVerifyPossession(p.publicKey, p.proofOfPossession)!,
      signature:
        i === 4
          ? new Uint8Array(96).fill(7) // not a curve point
          : i === 31
            ? new Uint8Array(192).fill(3) // not a point either, uncompressed
            : badSet.includes(i)
              ? p.sign(new TextEncoder().encode('another root'))
              : i % 2 === 0
                ? p.sign(msg)
                : p.signShare(msg), // uncompressed, as clients send shares
    }))
    const r = blsAggregateShares(msg, shares)
    expect(r.bad).toEqual(badSet)
    expect(r.good).toEqual(pairs.map((_, i) => i).filter((i) => !badSet.includes(i)))
    expect(r.verifications).toBeLessThan(32)
    expect(
      blsVerifyAggregate(
        r.good.map((i) => shares[i].publicKey),
        msg,
        r.aggregate!,
      ),
    ).toBe(true)
    // The aggregate equals the plain sum of the good shares.
    const sum = aggregateSignatures(r.good.map((i) => Signature.fromBytes(shares[i].signature)))
    expect(sum.toBytes(true)).toEqual(r.aggregate)
  })

  it('returns no aggregate when every share is bad', () => {
    const pair = BlsKeyPair.generate()
    const pk = blsVerifyPossession(pair.publicKey, pair.proofOfPossession)!
    const r = blsAggregateShares(msg, [{ publicKey: pk, signature: pair.sign(new Uint8Array(1)) }])
    expect(r.aggregate).toBeUndefined()
    expect(r.bad).toEqual([0])
  })
})
