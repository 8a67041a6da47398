import { randomBytes } from 'node:crypto'
import {
  aggregatePublicKeys,
  aggregateSignatures,
  fastAggregateVerify,
  PublicKey,
  SecretKey,
  Signature,
  verify,
} from '@chainsafe/blst'

/** Bytes in a compressed BLS12-381 public key (G1, min-pk). */
export const BLS_PUBLIC_KEY_LENGTH = 48
/** Bytes in a compressed BLS12-381 signature (G2, min-pk). */
export const BLS_SIGNATURE_LENGTH = 96
/**
 * Bytes in an uncompressed signature. Shares travel uncompressed: decoding one costs
 * ~1.4 µs instead of ~26 µs (a square root in Fp2), which is most of a broker's work when
 * it aggregates 65,536 shares.
 */
export const BLS_SIGNATURE_UNCOMPRESSED_LENGTH = 192

/** A validated BLS public key (native object from @chainsafe/blst). */
export type BlsPublicKey = PublicKey

/*
 * @chainsafe/blst fixes the hash-to-curve DST to the IETF proof-of-possession suite
 * (`BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`) and exposes no way to change it, so the
 * two uses are separated inside the signed message instead: every message is prefixed by
 * a tag, and the tags differ. A proof of possession can therefore never be replayed as a
 * signature on a protocol message, nor the other way round.
 */
const MESSAGE_TAG = Buffer.from('consensus-multicast/bls/msg/v1\0')
const POP_TAG = Buffer.from('consensus-multicast/bls/pop/v1\0')

function tagged(tag: Buffer, message: Uint8Array): Uint8Array {
  const out = new Uint8Array(tag.length + message.length)
  out.set(tag, 0)
  out.set(message, tag.length)
  return out
}

/** The exact bytes a BLS signature on a protocol `message` signs (tag ‖ message). */
export function blsSigningInput(message: Uint8Array): Uint8Array {
  return tagged(MESSAGE_TAG, message)
}

/** The exact bytes a proof of possession of `publicKey` signs (PoP tag ‖ public key). */
export function blsPossessionInput(publicKey: Uint8Array): Uint8Array {
  return tagged(POP_TAG, publicKey)
}

/** A BLS secret key with its public key and proof of possession (for directory registration). */
export class BlsKeyPair {
  /** The secret key (native object). */
  readonly secretKey: SecretKey
  /** The compressed public key, 48 bytes. */
  readonly publicKey: Uint8Array
  /** A signature on the public key under the PoP tag: registers the key safely. */
  readonly proofOfPossession: Uint8Array

  constructor(secretKey: SecretKey) {
    this.secretKey = secretKey
    this.publicKey = secretKey.toPublicKey().toBytes(true)
    this.proofOfPossession = secretKey.sign(blsPossessionInput(this.publicKey)).toBytes(true)
  }

  /** A key pair from 32+ bytes of input key material, or from the secure random source. */
  static generate(ikm: Uint8Array = randomBytes(32)): BlsKeyPair {
    return new BlsKeyPair(SecretKey.fromKeygen(ikm))
  }

  /** Signs a protocol message (tagged); returns the 96-byte compressed signature. */
  sign(message: Uint8Array): Uint8Array {
    return this.secretKey.sign(blsSigningInput(message)).toBytes(true)
  }

  /** Signs a protocol message (tagged); returns the 192-byte uncompressed signature (a share). */
  signShare(message: Uint8Array): Uint8Array {
    return this.secretKey.sign(blsSigningInput(message)).toBytes(false)
  }
}

/**
 * Decodes a public key and checks its proof of possession. Returns the validated key, or
 * undefined when the key is malformed, infinity, outside the subgroup, or the proof fails.
 * Only keys that pass this check may be aggregated: without it, a rogue key chosen as
 * `g^x − pk_honest` would let one party forge a multi-signature of both.
 */
export function blsVerifyPossession(
  publicKey: Uint8Array,
  proof: Uint8Array,
): PublicKey | undefined {
  if (publicKey.length !== BLS_PUBLIC_KEY_LENGTH || proof.length !== BLS_SIGNATURE_LENGTH) {
    return undefined
  }
  try {
    const pk = PublicKey.fromBytes(publicKey, true)
    const sig = Signature.fromBytes(proof, true)
    return verify(blsPossessionInput(publicKey), pk, sig) ? pk : undefined
  } catch {
    return undefined
  }
}

/** Decodes and subgroup-checks a signature; undefined when malformed. */
export function blsDecodeSignature(bytes: Uint8Array): Signature | undefined {
  if (bytes.length !== BLS_SIGNATURE_LENGTH) return undefined
  try {
    return Signature.fromBytes(bytes, true)
  } catch {
    return undefined
  }
}

/** Verifies one signature on a protocol message under a validated public key. */
export function blsVerify(
  publicKey: PublicKey,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  const sig = blsDecodeSignature(signature)
  if (sig === undefined) return false
  try {
    return verify(blsSigningInput(message), publicKey, sig)
  } catch {
    return false
  }
}

/**
 * Verifies one aggregate signature on `message` by every key in `publicKeys` (validated,
 * with proofs of possession checked at registration). Keys may be given pre-aggregated in
 * parts (e.g. cached sums of key ranges): the sum is what is checked.
 */
export function blsVerifyAggregate(
  publicKeys: PublicKey[],
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKeys.length === 0) return false
  const sig = blsDecodeSignature(signature)
  if (sig === undefined) return false
  try {
    const pk = aggregatePublicKeys(publicKeys, false)
    return verify(blsSigningInput(message), pk, sig)
  } catch {
    return false
  }
}

/** Sums validated public keys (for caching the aggregate key of a fixed set of signers). */
export function blsAggregatePublicKeys(publicKeys: PublicKey[]): PublicKey {
  return aggregatePublicKeys(publicKeys, false)
}

/** A share decoded by {@link blsDecodeShare} (native object). */
export type BlsDecodedShare = Signature

/** One signer's share of a multi-signature. */
export interface BlsShare {
  /** The signer's validated public key. */
  publicKey: PublicKey
  /** The signer's signature on the common message: bytes (96 compressed or 192 uncompressed), or already decoded. */
  signature: Uint8Array | BlsDecodedShare
}

/** Options of {@link blsAggregateShares}. */
export interface BlsAggregateOptions {
  /**
   * Keys whose sum equals the sum of every share's key (e.g. cached sums of key ranges):
   * used for the first, optimistic verification instead of adding every key again.
   */
  aggregateKeyParts?: PublicKey[]
  /**
   * The sum of every decodable share, when the caller kept a running sum as shares arrived
   * (see {@link blsSumShares}): the optimistic verification then needs no additions.
   */
  aggregate?: BlsDecodedShare
  /**
   * Most aggregate verifications to spend (default: no bound). Once spent, the shares not
   * yet found good or bad are returned in `unresolved`, neither kept nor blamed: a caller
   * facing many bad shares checks those signers another way instead of bisecting on.
   */
  maxVerifications?: number
}

/** Sums decoded shares (no subgroup check; the sum is checked when verified). */
export function blsSumShares(shares: BlsDecodedShare[]): BlsDecodedShare {
  return aggregateSignatures(shares, false)
}

/** What {@link blsAggregateShares} found. */
export interface BlsAggregateResult {
  /** The aggregate of the good shares (96 bytes, compressed), or undefined when none is good. */
  aggregate: Uint8Array | undefined
  /** Indices (into the input) of the shares in the aggregate, ascending. */
  good: number[]
  /** Indices of the shares that are malformed or do not verify, ascending. */
  bad: number[]
  /** Aggregate verifications performed (1 when every share is good). */
  verifications: number
  /** Indices of shares left unchecked when `maxVerifications` ran out, ascending. */
  unresolved: number[]
}

/**
 * Decodes a share WITHOUT the subgroup check (~1.4 µs uncompressed): every aggregate is
 * subgroup-checked when verified, and only shares inside a verified aggregate are kept.
 * Returns undefined when the bytes are not a point encoding.
 */
export function blsDecodeShare(bytes: Uint8Array): BlsDecodedShare | undefined {
  if (bytes.length !== BLS_SIGNATURE_LENGTH && bytes.length !== BLS_SIGNATURE_UNCOMPRESSED_LENGTH) {
    return undefined
  }
  try {
    return Signature.fromBytes(bytes, false)
  } catch {
    return undefined
  }
}

/**
 * Aggregates shares on one message optimistically: one aggregate verification when every
 * share is good; when it fails, bisects (verifying each half's aggregate) until the bad
 * shares are isolated, so k bad shares among n cost O(k log n) verifications.
 */
export function blsAggregateShares(
  message: Uint8Array,
  shares: BlsShare[],
  options: BlsAggregateOptions = {},
): BlsAggregateResult {
  const input = blsSigningInput(message)
  const good: number[] = []
  const bad: number[] = []
  const decoded: { index: number; pk: PublicKey; sig: Signature }[] = []
  for (let i = 0; i < shares.length; i++) {
    const raw = shares[i].signature
    const sig = raw instanceof Uint8Array ? blsDecodeShare(raw) : raw
    if (sig === undefined) bad.push(i)
    else decoded.push({ index: i, pk: shares[i].publicKey, sig })
  }
  let verifications = 0
  let givenSumVerified = false
  const goodSigs: Signature[] = []
  const unresolved: number[] = []
  const budget = options.maxVerifications ?? Number.POSITIVE_INFINITY
  const check = (lo: number, hi: number): void => {
    if (lo >= hi) return
    const part = decoded.slice(lo, hi)
    if (verifications >= budget) {
      for (const p of part) unresolved.push(p.index)
      return
    }
    verifications++
    let ok = false
    try {
      // The whole set (when nothing failed to decode) may use the caller's cached sums.
      const whole = lo === 0 && hi === decoded.length && bad.length === 0
      const sig =
        whole && options.aggregate !== undefined
          ? options.aggregate
          : aggregateSignatures(
              part.map((p) => p.sig),
              false,
            )
      const keys =
        whole && options.aggregateKeyParts !== undefined
          ? options.aggregateKeyParts
          : part.map((p) => p.pk)
      ok = fastAggregateVerify(input, keys, sig, true)
    } catch {
      ok = false
    }
    if (ok) {
      if (lo === 0 && hi === decoded.length && bad.length === 0) {
        givenSumVerified = options.aggregate !== undefined
      }
      for (const p of part) {
        good.push(p.index)
        goodSigs.push(p.sig)
      }
      return
    }
    if (hi - lo === 1) {
      bad.push(part[0].index)
      return
    }
    const mid = (lo + hi) >>> 1
    check(lo, mid)
    check(mid, hi)
  }
  check(0, decoded.length)
  good.sort((a, b) => a - b)
  bad.sort((a, b) => a - b)
  unresolved.sort((a, b) => a - b)
  const aggregate =
    goodSigs.length === 0
      ? undefined
      : (givenSumVerified ? options.aggregate! : aggregateSignatures(goodSigs, false)).toBytes(true)
  return { aggregate, good, bad, verifications, unresolved }
}
