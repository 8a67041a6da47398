import { createHash, type KeyObject } from 'node:crypto'
import type { PeerKey } from '../common/artifact.ts'
import { setNewest } from '../common/bounded-map.ts'
import {
  ED25519_SIGNATURE_LENGTH,
  Ed25519KeyPair,
  importEd25519PublicKey,
  verifyEd25519Prepared,
} from '../crypto/ed25519.ts'
import type { PeerSignatures } from '../crypto/peer-signatures.ts'

/** Options of {@link SimKeyring}. */
export interface SimKeyringOptions {
  /** Seed of the nodes' keys. */
  seed: number | string
  /** Most verification verdicts remembered (default 65,536). */
  maxVerdicts?: number
}

/**
 * Real Ed25519 keys for the simulator's nodes, derived from the seed and the node's name
 * (a simulated node has no libp2p identity, so the keyring is its key directory).
 *
 * Thousands of simulated members verify the same signature of the same message; since a
 * verification is a pure function of (publisher, message, signature), the keyring
 * remembers each verdict (bounded) and checks a triple once with the real verify. A forged
 * or altered message is a different triple, so it is verified, and refused, for real.
 */
export class SimKeyring {
  private readonly seed: string
  private readonly maxVerdicts: number
  private readonly pairs = new Map<PeerKey, Ed25519KeyPair>()
  private readonly publicKeys = new Map<PeerKey, KeyObject | null>()
  private readonly verdicts = new Map<string, boolean>()
  /** Real verifications run (verdicts not found in memory). */
  verifications = 0

  constructor(options: SimKeyringOptions) {
    this.seed = String(options.seed)
    this.maxVerdicts = options.maxVerdicts ?? 65_536
  }

  /** The signatures of the node named `name`. */
  forNode(name: PeerKey): PeerSignatures {
    return {
      signatureBytes: ED25519_SIGNATURE_LENGTH,
      sign: (message) => this.pairOf(name).sign(message),
      verify: (peer, message, signature) => this.verify(peer, message, signature),
    }
  }

  private pairOf(name: PeerKey): Ed25519KeyPair {
    let pair = this.pairs.get(name)
    if (pair === undefined) {
      const secret = createHash('sha256').update(`sim-key ${this.seed} ${name}`).digest()
      pair = new Ed25519KeyPair(new Uint8Array(secret))
      this.pairs.set(name, pair)
    }
    return pair
  }

  private verify(peer: PeerKey, message: Uint8Array, signature: Uint8Array): boolean {
    const memo = `${peer}\n${Buffer.from(message).toString('base64')}\n${Buffer.from(signature).toString('base64')}`
    const known = this.verdicts.get(memo)
    if (known !== undefined) return known
    let key = this.publicKeys.get(peer)
    if (key === undefined) {
      key = importEd25519PublicKey(this.pairOf(peer).publicKey) ?? null
      this.publicKeys.set(peer, key)
    }
    this.verifications++
    const ok = key !== null && verifyEd25519Prepared(key, message, signature)
    setNewest(this.verdicts, memo, ok, this.maxVerdicts)
    return ok
  }
}
