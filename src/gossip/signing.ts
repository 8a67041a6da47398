import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { peerIdFromMultihash, peerIdFromPrivateKey } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import type { PeerKey } from '../common/artifact.ts'
import { contentMessageId, type MessageId, messageIdEquals } from '../common/message-id.ts'
import type { SignaturePolicy } from './params.ts'
import { type RpcMessage, signingBytes } from './rpc-codec.ts'

/** Computes a message's id from its wire form (the default depends on the signature policy). */
export type MessageIdFn = (message: RpcMessage) => MessageId

/** Why a received message's authentication fields are unacceptable, or undefined when fine. */
export type AuthProblem =
  | 'signature-present'
  | 'missing-seqno'
  | 'missing-signature'
  | 'bad-from'
  | 'bad-key'
  | undefined

/** The verdict on a message's fields, and for StrictSign its origin and key. */
export interface AuthFields {
  /** What is wrong, if anything. */
  problem: AuthProblem
  /** The origin peer (StrictSign only). */
  origin?: PeerKey
  /** The origin's public key (StrictSign only). */
  key?: PublicKey
}

/** A StrictNoSign message's verdict when nothing is wrong: one shared object, not one per copy received. */
const NO_SIGN_OK: AuthFields = Object.freeze({ problem: undefined })

/**
 * Checks that a received message carries exactly the fields its policy demands: StrictSign
 * needs from, an 8-byte seqno, a signature and a key matching from; StrictNoSign needs none.
 */
export function checkAuthFields(policy: SignaturePolicy, m: RpcMessage): AuthFields {
  if (policy === 'StrictNoSign') {
    if (
      m.signature !== undefined ||
      m.seqno !== undefined ||
      m.key !== undefined ||
      m.from !== undefined
    ) {
      return { problem: 'signature-present' }
    }
    return NO_SIGN_OK
  }
  if (m.seqno === undefined || m.seqno.length !== 8) return { problem: 'missing-seqno' }
  if (m.signature === undefined) return { problem: 'missing-signature' }
  if (m.from === undefined) return { problem: 'bad-from' }
  let origin: ReturnType<typeof peerIdFromMultihash>
  try {
    origin = peerIdFromMultihash(Digest.decode(m.from))
  } catch {
    return { problem: 'bad-from' }
  }
  let key: PublicKey | undefined
  try {
    if (m.key !== undefined) {
      key = publicKeyFromProtobuf(m.key)
      if (!messageIdEquals(key.toMultihash().bytes, m.from)) return { problem: 'bad-key' }
    } else {
      key = origin.publicKey
    }
  } catch {
    return { problem: 'bad-key' }
  }
  if (key === undefined) return { problem: 'bad-key' }
  return { problem: undefined, origin: origin.toString(), key }
}

/** Verifies a StrictSign message's signature with its origin's key. */
export function verifySignature(m: RpcMessage, key: PublicKey): boolean | Promise<boolean> {
  try {
    return key.verify(signingBytes(m), m.signature!)
  } catch {
    return false
  }
}

/**
 * The default message id: for StrictSign, the origin's protobuf public key followed by the
 * seqno (what stock gossipsub computes, so ids agree across implementations); for
 * StrictNoSign, a content id over topic and data.
 */
export function defaultMessageId(policy: SignaturePolicy): MessageIdFn {
  if (policy === 'StrictNoSign') {
    return (m) => contentMessageId(m.topic, m.data ?? new Uint8Array(0))
  }
  return (m) => {
    const key = m.key ?? publicKeyToProtobuf(peerIdFromMultihash(Digest.decode(m.from!)).publicKey!)
    const id = new Uint8Array(key.length + m.seqno!.length)
    id.set(key)
    id.set(m.seqno!, key.length)
    return id
  }
}

/** Builds and signs this node's messages under StrictSign. */
export class MessageSigner {
  private readonly privateKey: PrivateKey
  private readonly from: Uint8Array
  private readonly key: Uint8Array
  private seqno: bigint

  /** `firstSeqno` should grow across restarts (stock peers drop non-increasing seqnos). */
  constructor(privateKey: PrivateKey, firstSeqno: bigint) {
    this.privateKey = privateKey
    this.from = peerIdFromPrivateKey(privateKey).toMultihash().bytes
    this.key = publicKeyToProtobuf(privateKey.publicKey)
    this.seqno = firstSeqno
  }

  /** The signing node's peer id string. */
  get origin(): PeerKey {
    return peerIdFromPrivateKey(this.privateKey).toString()
  }

  /** A signed message carrying `data` on `topic`. */
  sign(topic: string, data: Uint8Array): RpcMessage | Promise<RpcMessage> {
    const seqno = new Uint8Array(8)
    this.seqno += 1n
    new DataView(seqno.buffer).setBigUint64(0, BigInt.asUintN(64, this.seqno), false)
    const m: RpcMessage = { from: this.from, data, seqno, topic }
    const sig = this.privateKey.sign(signingBytes(m))
    const done = (signature: Uint8Array): RpcMessage => ({ ...m, signature, key: this.key })
    return sig instanceof Promise ? sig.then(done) : done(sig)
  }
}
