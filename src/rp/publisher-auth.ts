import type { ArtifactClass, PeerKey, Topic } from '../common/artifact.ts'
import { contentMessageId, type MessageId, messageIdEquals } from '../common/message-id.ts'
import type { PeerSignatures } from '../crypto/peer-signatures.ts'

// Domain separation: these bytes are never a valid signing input of another protocol.
const DOMAIN = new TextEncoder().encode('consensus-multicast/rp/1 publish\n')
const EMPTY = new Uint8Array(0)

/** Why a published message's content or signature is refused. */
export type PublishedProblem = 'bad-message-id' | 'unsigned' | 'bad-signature'

/** The fields of a message that its publisher vouches for, with the signature. */
export interface PublishedFields {
  id: MessageId
  topic: Topic
  class: ArtifactClass
  data: Uint8Array
  signature: Uint8Array
}

/**
 * What a publisher signs: a domain tag, the class and the message id. The id is the
 * content id (a hash of topic and payload), and {@link checkPublished} recomputes it from
 * what arrived, so the signature binds topic, payload, class and id together.
 */
export function publishSigningBytes(id: MessageId, cls: ArtifactClass): Uint8Array {
  const out = new Uint8Array(DOMAIN.length + 1 + id.length)
  out.set(DOMAIN)
  out[DOMAIN.length] = cls === 'consensus' ? 0 : 1
  out.set(id, DOMAIN.length + 1)
  return out
}

/** The publisher's signature of a message it publishes (empty without signatures). */
export function signPublished(
  signatures: PeerSignatures | undefined,
  id: MessageId,
  cls: ArtifactClass,
): Uint8Array {
  return signatures === undefined ? EMPTY : signatures.sign(publishSigningBytes(id, cls))
}

/**
 * Checks that a message is what `publisher` published: its id is its content's, and (with
 * `signatures`) it carries the publisher's valid signature. Without `signatures` only the
 * id is checked: the receiver trusts whoever forwarded it.
 */
export function checkPublished(
  signatures: PeerSignatures | undefined,
  m: PublishedFields,
  publisher: PeerKey,
): PublishedProblem | undefined {
  if (!messageIdEquals(m.id, contentMessageId(m.topic, m.data))) return 'bad-message-id'
  if (signatures === undefined) return undefined
  if (m.signature.length === 0 || publisher.length === 0) return 'unsigned'
  const signed = publishSigningBytes(m.id, m.class)
  return signatures.verify(publisher, signed, m.signature) ? undefined : 'bad-signature'
}
