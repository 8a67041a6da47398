import { createHash } from 'node:crypto'

/** A message id: opaque bytes. */
export type MessageId = Uint8Array

/** Length in bytes of a content-derived message id. */
export const CONTENT_ID_LENGTH = 20

const textEncoder = new TextEncoder()

/**
 * A content-derived message id: the first {@link CONTENT_ID_LENGTH} bytes of
 * sha256(topic length ‖ topic ‖ data). Used where messages carry no origin and sequence
 * number (gossipsub's StrictNoSign policy), so that the same payload on the same topic has
 * the same id at every node.
 */
export function contentMessageId(topic: string, data: Uint8Array): MessageId {
  const t = textEncoder.encode(topic)
  const len = new Uint8Array(4)
  new DataView(len.buffer).setUint32(0, t.length)
  const digest = createHash('sha256').update(len).update(t).update(data).digest()
  return new Uint8Array(digest.buffer, digest.byteOffset, CONTENT_ID_LENGTH)
}

/** A string key for maps and sets (lower-case hex). */
export function messageIdKey(id: MessageId): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex')
}

/** Parses a key produced by {@link messageIdKey}. */
export function messageIdFromKey(key: string): MessageId {
  return new Uint8Array(Buffer.from(key, 'hex'))
}

/** True when two ids hold the same bytes. */
export function messageIdEquals(a: MessageId, b: MessageId): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
