import { createHash } from 'node:crypto'
import type { Topic } from '../../common/artifact.ts'

/** Bytes of the topic tag carried in every datagram. */
export const TOPIC_TAG_BYTES = 8

/** Where a topic's datagrams go on the LAN, and the tag that tells topics apart. */
export interface MulticastGroup {
  /** The topic. */
  readonly topic: Topic
  /** Dotted IPv4 group in the SSM range 232.0.1.0 – 232.255.255.255. */
  readonly address: string
  /** UDP destination port, in the dynamic range 49152–65535. */
  readonly port: number
  /**
   * The first {@link TOPIC_TAG_BYTES} bytes of the topic's hash. Two topics may share a group
   * and port (24 + 14 bits of hash); the tag, checked before anything else, keeps them apart.
   */
  readonly tag: Uint8Array
}

const DOMAIN = 'consensus-multicast/rp-multicast/v1\0'

/**
 * The deterministic SSM group of `topic`: every RP and member computes the same address,
 * port and tag from the topic name alone, so the RP announces it only as a check.
 * 232.0.0.0/24 is reserved by IANA (RFC 4607 §1), so groups start at 232.0.1.0.
 */
export function groupForTopic(topic: Topic): MulticastGroup {
  const h = createHash('sha256').update(DOMAIN).update(topic, 'utf8').digest()
  let second = h[8]
  const third = h[9]
  if (second === 0 && third === 0) second = 1
  const address = `232.${second}.${third}.${h[10]}`
  const port = 49152 + (((h[11] << 8) | h[12]) & 0x3fff)
  return { topic, address, port, tag: new Uint8Array(h.subarray(0, TOPIC_TAG_BYTES)) }
}

/** Hex of a topic tag, as a map key. */
export function tagKey(tag: Uint8Array): string {
  return Buffer.from(tag.buffer, tag.byteOffset, tag.byteLength).toString('hex')
}
