import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto'
import {
  AUTH_TAG_BYTES,
  type Datagram,
  type DatagramFields,
  encodeUnsigned,
} from './datagram-codec.ts'

/** Bytes of a group key. */
export const GROUP_KEY_BYTES = 32

/**
 * A group key: the RP draws one per (topic, key id) and hands it to each member over the
 * member's authenticated libp2p session at registration. Datagrams carry an HMAC-SHA256
 * under it (truncated to 128 bits), so a member accepts only datagrams made by a holder of
 * the key: a spoofed LAN source address alone gets nothing through. doc/rp-multicast.md says
 * why an HMAC rather than a signature.
 */
export class DatagramAuthenticator {
  /** Key id, carried in each datagram. */
  readonly keyId: number
  private readonly key: KeyObject

  constructor(keyId: number, key: Uint8Array) {
    if (key.length !== GROUP_KEY_BYTES)
      throw new RangeError(`group key must be ${GROUP_KEY_BYTES} bytes`)
    this.keyId = keyId
    this.key = createSecretKey(key)
  }

  /** Encodes `fields` (with this key's id) and appends the authenticator. */
  seal(fields: Omit<DatagramFields, 'keyId'>): Uint8Array {
    const out = encodeUnsigned({ ...fields, keyId: this.keyId })
    const end = out.length - AUTH_TAG_BYTES
    const mac = createHmac('sha256', this.key).update(out.subarray(0, end)).digest()
    out.set(mac.subarray(0, AUTH_TAG_BYTES), end)
    return out
  }

  /** True when `d` carries this key's id and a valid authenticator (constant-time compare). */
  verify(d: Datagram): boolean {
    if (d.keyId !== this.keyId) return false
    const mac = createHmac('sha256', this.key).update(d.signed).digest()
    return timingSafeEqual(mac.subarray(0, AUTH_TAG_BYTES), d.authTag)
  }
}
