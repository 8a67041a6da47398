import type { ArtifactClass } from '../common/artifact.ts'
import { ByteReader, ByteWriter } from '../common/binary.ts'
import { DecodeError } from '../common/errors.ts'
import type { MessageId } from '../common/message-id.ts'

/** Version byte of the flooding frame. */
export const FLOOD_VERSION = 1

/** Limits applied when decoding a flooding frame. */
export interface FloodLimits {
  /** Maximum payload bytes. */
  maxDataBytes: number
  /** Maximum topic length in bytes. */
  maxTopicBytes: number
  /** Maximum message id length in bytes. */
  maxIdBytes: number
}

/** One flooded message. */
export interface FloodFrame {
  /** Message id. */
  id: MessageId
  /** Artifact class (ingress is not forwarded). */
  class: ArtifactClass
  /** Topic. */
  topic: string
  /** Payload. */
  data: Uint8Array
}

/** Encodes a frame: version, class, id, topic, data. */
export function encodeFloodFrame(frame: FloodFrame): Uint8Array {
  return new ByteWriter(frame.data.length + frame.topic.length + frame.id.length + 16)
    .u8(FLOOD_VERSION)
    .u8(frame.class === 'consensus' ? 0 : 1)
    .bytes(frame.id)
    .string(frame.topic)
    .bytes(frame.data)
    .finish()
}

/** Decodes a frame; throws {@link DecodeError} on anything malformed or over a limit. */
export function decodeFloodFrame(bytes: Uint8Array, limits: FloodLimits): FloodFrame {
  const r = new ByteReader(bytes)
  const version = r.u8()
  if (version !== FLOOD_VERSION) throw new DecodeError(`unknown flood frame version ${version}`)
  const cls = r.u8()
  if (cls > 1) throw new DecodeError(`unknown artifact class ${cls}`)
  const id = r.bytes(limits.maxIdBytes)
  if (id.length === 0) throw new DecodeError('empty message id')
  const topic = r.string(limits.maxTopicBytes)
  const data = r.bytes(limits.maxDataBytes)
  r.end()
  return { id, class: cls === 0 ? 'consensus' : 'ingress', topic, data }
}
