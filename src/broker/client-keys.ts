import { randomBytes } from 'node:crypto'
import { BlsKeyPair } from '../crypto/bls.ts'
import { ED25519_SECRET_KEY_LENGTH, Ed25519KeyPair } from '../crypto/ed25519.ts'
import { Directory } from './directory.ts'

/** A client's keys. */
export interface ClientKeys {
  /** Signs submissions. */
  ed25519: Ed25519KeyPair
  /** Signs batch roots. */
  bls: BlsKeyPair
}

/** Where key material comes from: `bytes` of it. */
export type KeySource = (bytes: number) => Uint8Array

/** The secure random source. */
const secureRandom: KeySource = (bytes) => new Uint8Array(randomBytes(bytes))

/** Generates `n` clients' keys from `source` (the simulator passes a seeded one). */
export function generateClientKeys(n: number, source: KeySource = secureRandom): ClientKeys[] {
  return Array.from({ length: n }, () => ({
    ed25519: new Ed25519KeyPair(source(ED25519_SECRET_KEY_LENGTH)),
    bls: BlsKeyPair.generate(source(32)),
  }))
}

/** Generates `n` servers' ed25519 key pairs from `source`. */
export function generateServerKeys(n: number, source: KeySource = secureRandom): Ed25519KeyPair[] {
  return Array.from({ length: n }, () => new Ed25519KeyPair(source(ED25519_SECRET_KEY_LENGTH)))
}

/** A directory with every client of `keys` registered: client `i` gets id `i`. */
export function directoryOf(keys: readonly ClientKeys[]): Directory {
  const directory = new Directory()
  for (const k of keys) {
    directory.register({
      ed25519: k.ed25519.publicKey,
      bls: k.bls.publicKey,
      proofOfPossession: k.bls.proofOfPossession,
    })
  }
  return directory
}
