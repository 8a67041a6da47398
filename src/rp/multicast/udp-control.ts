import type { PeerKey, Topic } from '../../common/artifact.ts'
import type { DatagramAuthenticator } from './datagram-auth.ts'
import {
  type DatagramLimits,
  DatagramType,
  decodeDatagram,
  decodeGonePayload,
  decodeNackPayload,
  encodeGonePayload,
  encodeNackPayload,
  type NackEntry,
  PROBE_NONCE_BYTES,
} from './datagram-codec.ts'
import { groupForTopic } from './group-address.ts'
import type { MulticastReceiver } from './multicast-receiver.ts'
import type { MulticastSender } from './multicast-sender.ts'

/**
 * The member ↔ RP control messages (NACK, GONE, probe request and result) as authenticated
 * unicast datagrams, for running the cores without an RP session (the standalone testbed).
 * In the library the RP session carries these messages instead; see doc/rp-multicast.md.
 */
export class UdpControlCodec {
  private readonly topic: Topic
  private readonly auth: DatagramAuthenticator
  private readonly limits: DatagramLimits
  private readonly tag: Uint8Array

  constructor(topic: Topic, auth: DatagramAuthenticator, limits: DatagramLimits) {
    this.topic = topic
    this.auth = auth
    this.limits = limits
    this.tag = groupForTopic(topic).tag
  }

  /** A NACK datagram. */
  nack(entries: readonly NackEntry[]): Uint8Array {
    return this.seal(DatagramType.nack, encodeNackPayload(entries))
  }

  /** A GONE datagram. */
  gone(seqs: readonly number[]): Uint8Array {
    return this.seal(DatagramType.gone, encodeGonePayload(seqs))
  }

  /** A probe request datagram. */
  probeRequest(nonce: Uint8Array): Uint8Array {
    return this.seal(DatagramType.probeRequest, nonce)
  }

  /** A probe result datagram. */
  probeResult(multicastReaches: boolean): Uint8Array {
    return this.seal(DatagramType.probeResult, new Uint8Array([multicastReaches ? 1 : 0]))
  }

  /**
   * On the RP: a control datagram from `member`, dispatched to the sender core. Returns the
   * reason it was rejected, or undefined when it was accepted.
   */
  toSender(sender: MulticastSender, member: PeerKey, bytes: Uint8Array): string | undefined {
    try {
      const d = decodeDatagram(bytes, this.limits)
      if (!this.auth.verify(d) || !Buffer.from(d.topicTag).equals(Buffer.from(this.tag)))
        return 'auth'
      if (d.type === DatagramType.nack)
        sender.handleNack(member, this.topic, decodeNackPayload(d.payload, this.limits))
      else if (d.type === DatagramType.probeRequest && d.payload.length === PROBE_NONCE_BYTES) {
        sender.handleProbeRequest(member, this.topic, d.payload)
      } else if (d.type === DatagramType.probeResult && d.payload.length === 1) {
        sender.handleProbeResult(member, this.topic, d.payload[0] === 1)
      } else return 'type'
      return undefined
    } catch {
      return 'decode'
    }
  }

  /**
   * On a member: a GONE datagram is dispatched to the receiver core (`accepted`) or refused
   * (`rejected`, for the caller to count); anything else is `other` (a data, heartbeat or
   * probe datagram for the core itself).
   */
  goneToReceiver(
    receiver: MulticastReceiver,
    bytes: Uint8Array,
  ): 'accepted' | 'rejected' | 'other' {
    if (bytes.length < 2 || (bytes[1] & 0x0f) !== DatagramType.gone) return 'other'
    try {
      const d = decodeDatagram(bytes, this.limits)
      if (!this.auth.verify(d)) return 'rejected'
      receiver.gone(this.topic, decodeGonePayload(d.payload, this.limits))
      return 'accepted'
    } catch {
      return 'rejected'
    }
  }

  private seal(
    type: (typeof DatagramType)[keyof typeof DatagramType],
    payload: Uint8Array,
  ): Uint8Array {
    return this.auth.seal({
      type,
      topicTag: this.tag,
      seq: 0,
      fragIndex: 0,
      fragCount: 0,
      msgLen: 0,
      payload,
    })
  }
}
