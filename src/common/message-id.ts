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

/** The bytes of the id {@link messageIdKey} encoded last (a copy), and its key. */
let lastIdBytes = new Uint8Array(64)
let lastIdLength = -1
let lastKey = ''

/**
 * A string key for maps and sets (lower-case hex). The last id's key is kept: a node
 * handling a message looks its key up many times (each copy, IDONTWANT, IHAVE and IWANT of
 * it), and comparing 20 bytes costs far less than encoding them.
 */
export function messageIdKey(id: MessageId): string {
  const n = id.length
  if (n === lastIdLength) {
    let i = 0
    while (i < n && id[i] === lastIdBytes[i]) i++
    if (i === n) return lastKey
  }
  const key = Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex')
  if (n > lastIdBytes.length) lastIdBytes = new Uint8Array(n)
  lastIdBytes.set(id)
  lastIdLength = n
  lastKey = key
  return key
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
