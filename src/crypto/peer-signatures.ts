import type { KeyObject } from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { setNewest } from '../common/bounded-map.ts'
import { InvalidParametersError } from '../common/errors.ts'
import {
  ED25519_SECRET_KEY_LENGTH,
  ED25519_SIGNATURE_LENGTH,
  Ed25519KeyPair,
  importEd25519PublicKey,
  verifyEd25519Prepared,
} from './ed25519.ts'

/**
 * Signing with this node's identity and checking other peers' signatures, synchronously
 * (a sans-IO core calls it in line with a frame). Peers are named by their keys as the
 * core knows them (a libp2p peer id string under the driver).
 */
export interface PeerSignatures {
  /** Bytes of one signature. */
  readonly signatureBytes: number
  /** Signs `message` with this node's key. */
  sign(message: Uint8Array): Uint8Array
  /** True when `signature` over `message` is `peer`'s; false for unknown or bad keys, never throws. */
  verify(peer: string, message: Uint8Array, signature: Uint8Array): boolean
}

/** Options of {@link Ed25519PeerSignatures}. */
export interface Ed25519PeerSignaturesOptions {
  /** Most peers whose prepared public keys are kept (default 4096). */
  maxKeys?: number
}

/**
 * {@link PeerSignatures} on libp2p Ed25519 identities: a peer id of an Ed25519 key inlines
 * the key, so a signature is checked against the peer id alone, with no key exchange.
 * Signing and verifying go through node:crypto with keys imported once (the prepared
 * public keys are kept in a bounded cache, since importing costs about as much as a verify).
 */
export class Ed25519PeerSignatures implements PeerSignatures {
  readonly signatureBytes = ED25519_SIGNATURE_LENGTH
  private readonly pair: Ed25519KeyPair
  private readonly keys = new Map<string, KeyObject | null>()
  private readonly maxKeys: number

  /** Throws {@link InvalidParametersError} unless `privateKey` is an Ed25519 key. */
  constructor(privateKey: PrivateKey, options: Ed25519PeerSignaturesOptions = {}) {
    if (privateKey.type !== 'Ed25519') {
      throw new InvalidParametersError(
        `publisher signatures need an Ed25519 identity, got ${privateKey.type}`,
      )
    }
    // libp2p keeps an Ed25519 private key as seed ‖ public key.
    this.pair = new Ed25519KeyPair(privateKey.raw.slice(0, ED25519_SECRET_KEY_LENGTH))
    this.maxKeys = options.maxKeys ?? 4096
  }

  sign(message: Uint8Array): Uint8Array {
    return this.pair.sign(message)
  }

  verify(peer: string, message: Uint8Array, signature: Uint8Array): boolean {
    const key = this.keyOf(peer)
    return key !== null && verifyEd25519Prepared(key, message, signature)
  }

  /** The peer's prepared public key, or null when its id holds no Ed25519 key. */
  private keyOf(peer: string): KeyObject | null {
    const cached = this.keys.get(peer)
    if (cached !== undefined) return cached
    let key: KeyObject | null = null
    try {
      const pub = peerIdFromString(peer).publicKey
      if (pub?.type === 'Ed25519') key = importEd25519PublicKey(pub.raw) ?? null
    } catch {
      key = null
    }
    setNewest(this.keys, peer, key, this.maxKeys)
    return key
  }
}
