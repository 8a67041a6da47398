import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
  randomBytes,
} from 'node:crypto'
import * as ed from '@noble/ed25519'
import { sha512 } from '@noble/hashes/sha2.js'
import { InvalidParametersError } from '../common/errors.ts'

// @noble/ed25519 v3 needs a sync sha512 for its synchronous API.
ed.hashes.sha512 = sha512

/** Bytes in an ed25519 public key. */
export const ED25519_PUBLIC_KEY_LENGTH = 32
/** Bytes in an ed25519 secret key (the RFC 8032 seed). */
export const ED25519_SECRET_KEY_LENGTH = 32
/** Bytes in an ed25519 signature. */
export const ED25519_SIGNATURE_LENGTH = 64

/** An ed25519 implementation on raw RFC 8032 keys (32-byte seed, 32-byte public key). */
export interface Ed25519 {
  /** A short name for reports ('node:crypto', '@noble/ed25519'). */
  readonly name: string
  /** The public key of a secret key. */
  getPublicKey(secretKey: Uint8Array): Uint8Array
  /** Signs `message`; returns 64 bytes. */
  sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array
  /** True when `signature` is valid for `message` under `publicKey`; never throws. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean
}

// DER prefixes that wrap a raw ed25519 key into PKCS#8 / SPKI, which node:crypto imports.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

function checkLength(bytes: Uint8Array, length: number, what: string): void {
  if (bytes.length !== length) {
    throw new InvalidParametersError(`${what} must be ${length} bytes, got ${bytes.length}`)
  }
}

/** Imports a raw 32-byte secret key as a node:crypto KeyObject. */
export function importEd25519SecretKey(secretKey: Uint8Array): KeyObject {
  checkLength(secretKey, ED25519_SECRET_KEY_LENGTH, 'ed25519 secret key')
  return createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, secretKey]),
    format: 'der',
    type: 'pkcs8',
  })
}

/**
 * Imports a raw 32-byte public key as a node:crypto KeyObject, or returns undefined when
 * the bytes are not a valid key. Import once and keep the KeyObject: verification with a
 * prepared KeyObject is the hot path.
 */
export function importEd25519PublicKey(publicKey: Uint8Array): KeyObject | undefined {
  if (publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) return undefined
  try {
    return createPublicKey({
      key: Buffer.concat([SPKI_PREFIX, publicKey]),
      format: 'der',
      type: 'spki',
    })
  } catch {
    return undefined
  }
}

/** Verifies with a prepared public KeyObject (native, the hot path); never throws. */
export function verifyEd25519Prepared(
  key: KeyObject,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (signature.length !== ED25519_SIGNATURE_LENGTH) return false
  try {
    return nodeVerify(null, message, key, signature)
  } catch {
    return false
  }
}

/** Signs with a prepared secret KeyObject (native). */
export function signEd25519Prepared(key: KeyObject, message: Uint8Array): Uint8Array {
  const sig = nodeSign(null, message, key)
  return new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength)
}

/** ed25519 through node:crypto (OpenSSL): the hot path. */
export const nativeEd25519: Ed25519 = {
  name: 'node:crypto',
  getPublicKey(secretKey) {
    const der = createPublicKey(importEd25519SecretKey(secretKey)).export({
      format: 'der',
      type: 'spki',
    })
    return new Uint8Array(der.subarray(SPKI_PREFIX.length))
  },
  sign(secretKey, message) {
    return signEd25519Prepared(importEd25519SecretKey(secretKey), message)
  },
  verify(publicKey, message, signature) {
    const key = importEd25519PublicKey(publicKey)
    return key !== undefined && verifyEd25519Prepared(key, message, signature)
  },
}

/** ed25519 through @noble/ed25519 (pure JS): the portable path and the reference in tests. */
export const nobleEd25519: Ed25519 = {
  name: '@noble/ed25519',
  getPublicKey(secretKey) {
    checkLength(secretKey, ED25519_SECRET_KEY_LENGTH, 'ed25519 secret key')
    return ed.getPublicKey(secretKey)
  },
  sign(secretKey, message) {
    checkLength(secretKey, ED25519_SECRET_KEY_LENGTH, 'ed25519 secret key')
    return ed.sign(message, secretKey)
  },
  verify(publicKey, message, signature) {
    if (publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) return false
    if (signature.length !== ED25519_SIGNATURE_LENGTH) return false
    try {
      return ed.verify(signature, message, publicKey)
    } catch {
      return false
    }
  },
}

/** An ed25519 key pair with its secret imported once for fast native signing. */
export class Ed25519KeyPair {
  /** The raw 32-byte secret key. */
  readonly secretKey: Uint8Array
  /** The raw 32-byte public key. */
  readonly publicKey: Uint8Array
  private readonly key: KeyObject

  constructor(secretKey: Uint8Array) {
    this.secretKey = secretKey
    this.key = importEd25519SecretKey(secretKey)
    this.publicKey = nativeEd25519.getPublicKey(secretKey)
  }

  /** A fresh key pair from the system's secure random source. */
  static generate(): Ed25519KeyPair {
    return new Ed25519KeyPair(new Uint8Array(randomBytes(ED25519_SECRET_KEY_LENGTH)))
  }

  /** Signs `message` natively. */
  sign(message: Uint8Array): Uint8Array {
    return signEd25519Prepared(this.key, message)
  }
}
