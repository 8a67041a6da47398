import type { KeyObject } from 'node:crypto'
import { InvalidParametersError, SignatureError } from '../common/errors.ts'
import { type BlsPublicKey, blsAggregatePublicKeys, blsVerifyPossession } from '../crypto/bls.ts'
import { importEd25519PublicKey } from '../crypto/ed25519.ts'

/** What a client registers: its two public keys and a proof of possession of the BLS key. */
export interface ClientRegistration {
  /** Raw 32-byte ed25519 public key (signs submissions). */
  ed25519: Uint8Array
  /** Compressed 48-byte BLS public key (signs batch roots). */
  bls: Uint8Array
  /** BLS signature proving possession of the BLS secret key. */
  proofOfPossession: Uint8Array
}

/** Ids per cached aggregate key: full runs of signers use one cached sum instead of 256 keys. */
const BLOCK = 256

/**
 * Maps dense client ids (0, 1, 2, …) to their ed25519 key and their BLS key. A BLS key is
 * accepted only with a valid proof of possession, which rules out rogue-key attacks on the
 * batch multi-signatures. Keys are decoded once, at registration.
 */
export class Directory {
  private readonly ed: KeyObject[] = []
  private readonly edRaw: Uint8Array[] = []
  private readonly bls: BlsPublicKey[] = []
  /** Imported ed25519 keys by their bytes: importing costs ~80 µs, so a key is imported once. */
  private readonly imported = new Map<string, KeyObject>()
  /** Validated BLS keys by their bytes, so a key registered again is not re-checked. */
  private readonly validated = new Map<string, BlsPublicKey>()
  /** Sum of the BLS keys of ids [b·BLOCK, (b+1)·BLOCK), filled lazily. */
  private readonly blockSums: (BlsPublicKey | undefined)[] = []

  /** Number of registered clients; ids are 0 … size − 1. */
  get size(): number {
    return this.ed.length
  }

  /**
   * Registers a client and returns its id. Throws {@link SignatureError} when the proof of
   * possession fails and {@link InvalidParametersError} for a malformed ed25519 key.
   */
  register(reg: ClientRegistration): number {
    const edHex = Buffer.from(reg.ed25519).toString('hex')
    const ed = this.imported.get(edHex) ?? importEd25519PublicKey(reg.ed25519)
    if (ed === undefined) throw new InvalidParametersError('malformed ed25519 public key')
    this.imported.set(edHex, ed)
    const hex =
      Buffer.from(reg.bls).toString('hex') + Buffer.from(reg.proofOfPossession).toString('hex')
    let bls = this.validated.get(hex)
    if (bls === undefined) {
      bls = blsVerifyPossession(reg.bls, reg.proofOfPossession)
      if (bls === undefined) throw new SignatureError('BLS proof of possession does not verify')
      this.validated.set(hex, bls)
    }
    const id = this.ed.length
    this.ed.push(ed)
    this.edRaw.push(reg.ed25519)
    this.bls.push(bls)
    this.blockSums[Math.floor(id / BLOCK)] = undefined
    return id
  }

  /** True when `id` is registered. */
  has(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.ed.length
  }

  /** The prepared ed25519 key of a client (for native verification). */
  ed25519Key(id: number): KeyObject {
    return this.ed[id]
  }

  /** The raw ed25519 public key of a client. */
  ed25519Raw(id: number): Uint8Array {
    return this.edRaw[id]
  }

  /** The validated BLS key of a client. */
  blsKey(id: number): BlsPublicKey {
    return this.bls[id]
  }

  /**
   * The BLS keys whose sum is the aggregate key of `ids` (ascending, distinct): complete
   * blocks of {@link BLOCK} consecutive ids are replaced by one cached sum, so a dense batch
   * of 65,536 signers costs 256 point additions instead of 65,536.
   */
  aggregateKeyParts(ids: ArrayLike<number>): BlsPublicKey[] {
    const parts: BlsPublicKey[] = []
    let i = 0
    while (i < ids.length) {
      const id = ids[i]
      const block = Math.floor(id / BLOCK)
      const blockStart = block * BLOCK
      const blockEnd = blockStart + BLOCK
      if (
        id === blockStart &&
        blockEnd <= this.ed.length &&
        i + BLOCK - 1 < ids.length &&
        ids[i + BLOCK - 1] === blockEnd - 1
      ) {
        parts.push(this.blockSum(block))
        i += BLOCK
      } else {
        parts.push(this.bls[id])
        i++
      }
    }
    return parts
  }

  private blockSum(block: number): BlsPublicKey {
    let sum = this.blockSums[block]
    if (sum === undefined) {
      sum = blsAggregatePublicKeys(this.bls.slice(block * BLOCK, (block + 1) * BLOCK))
      this.blockSums[block] = sum
    }
    return sum
  }
}
