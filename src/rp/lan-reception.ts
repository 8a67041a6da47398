import type { Logger } from '@libp2p/interface'
import type { PeerKey, Topic } from '../common/artifact.ts'
import type { TimerHandle } from '../common/env.ts'
import { ConsensusMulticastError } from '../common/errors.ts'
import {
  decodeRpMessage,
  type McastGroupAnnounce,
  type RpCodecLimits,
  type RpMessage,
} from './codec.ts'
import type { RpLan } from './lan.ts'
import { DatagramAuthenticator } from './multicast/datagram-auth.ts'
import { groupForTopic, type MulticastGroup } from './multicast/group-address.ts'
import {
  type LossReason,
  MulticastReceiver,
  type MulticastReceiverOptions,
  type MulticastReceiverStats,
} from './multicast/multicast-receiver.ts'

/** What {@link LanReception} needs from the member core. */
export interface LanReceptionHost {
  /** Current time, timers and randomness (the core's: timers die with it). */
  now(): number
  later(ms: number, fn: () => void): TimerHandle
  random(): number
  /** Sends a frame to the member's current RP. */
  sendToRp(m: RpMessage): void
  /**
   * A Deliver that came by multicast (or as a repair datagram) from `rp`; false when its
   * content failed the publisher checks.
   */
  deliver(rp: PeerKey, m: Extract<RpMessage, { type: 'deliver' }>): boolean
  /** Messages the receiver gave up on: the member fetches them over its session. */
  lost(topic: Topic, first: number, last: number, reason: LossReason): void
  /** Counts refused input against `peer`. */
  reject(peer: PeerKey, reason: string, topic?: Topic): void
  /** The member's logger. */
  log: Logger
}

interface Channel {
  readonly rp: PeerKey
  readonly source: string
  readonly group: MulticastGroup
  readonly keyId: number
  readonly key: Uint8Array
}

/**
 * A member's reception of its RP's LAN multicast (doc/rp-multicast.md): on a group announce
 * it joins the (S = RP's LAN address, G) channel and a {@link MulticastReceiver} for the
 * topic, and probes; the receiver's NACKs, probe requests and results go to the RP over the
 * session, and its repairs, GONEs and new keys come back that way. What the receiver
 * delivers is the RP's encoded Deliver, so it enters the member's usual delivery path and
 * its dedup by message id (a message that also came by unicast is delivered once).
 */
export class LanReception {
  private readonly host: LanReceptionHost
  private readonly lan: RpLan
  private readonly limits: RpCodecLimits
  private readonly receiver: MulticastReceiver
  private readonly channels = new Map<Topic, Channel>()
  /** Topics whose probe failed: served by unicast until the next announce. */
  private readonly unicast = new Set<Topic>()

  constructor(
    host: LanReceptionHost,
    lan: RpLan,
    limits: RpCodecLimits,
    options: MulticastReceiverOptions = {},
  ) {
    this.host = host
    this.lan = lan
    this.limits = limits
    this.receiver = new MulticastReceiver(
      {
        now: () => host.now(),
        setTimer: (ms, fn) => host.later(ms, fn),
        random: () => host.random(),
        deliver: (topic, seq, data) => this.onMessage(topic, seq, data),
        lost: (topic, first, last, reason) => host.lost(topic, first, last, reason),
        nack: (topic, entries) => host.sendToRp({ type: 'mcast-nack', topic, entries }),
        probeRequest: (topic, nonce) => host.sendToRp({ type: 'mcast-probe', topic, nonce }),
        probeResult: (topic, reaches) => {
          host.log('multicast of %s %s', topic, reaches ? 'reaches us' : 'does not reach us')
          host.sendToRp({ type: 'mcast-probe-result', topic, reaches })
          // Served by unicast from now on: stay out of the group.
          if (!reaches) {
            this.drop(topic)
            this.unicast.add(topic)
          }
        },
      },
      options,
    )
  }

  /**
   * The RP `rp` announced its channel for `g.topic` (registration answer or key rotation):
   * join it and probe. An announce of the channel already joined changes nothing.
   */
  announce(rp: PeerKey, g: McastGroupAnnounce): void {
    const derived = groupForTopic(g.topic)
    if (derived.address !== g.group || derived.port !== g.port) {
      this.host.reject(rp, 'mcast-group-mismatch', g.topic)
      return
    }
    const old = this.channels.get(g.topic)
    if (
      old?.rp === rp &&
      old.source === g.source &&
      old.keyId === g.keyId &&
      Buffer.from(old.key).equals(Buffer.from(g.key))
    )
      return
    const missing = this.receiver.missing(g.topic)
    this.drop(g.topic)
    this.unicast.delete(g.topic)
    // Messages still awaited on the old channel are fetched over the session instead.
    for (const seq of missing) this.host.lost(g.topic, seq, seq, 'gone')
    this.receiver.join(g.topic, new DatagramAuthenticator(g.keyId, g.key), g.nextSeq)
    this.host.log('joining (%s, %s) for %s, key id %d', g.source, g.group, g.topic, g.keyId)
    this.lan.join(g.source, derived)
    this.channels.set(g.topic, {
      rp,
      source: g.source,
      group: derived,
      keyId: g.keyId,
      key: g.key,
    })
    this.receiver.probe(g.topic)
  }

  /** A frame of the multicast protocol from the RP `rp`; false if `m` is not one. */
  receive(rp: PeerKey, m: RpMessage): boolean {
    if (m.type === 'mcast-group') this.announce(rp, m.group)
    else if (m.type === 'mcast-gone') {
      if (this.channels.get(m.topic)?.rp === rp) this.receiver.gone(m.topic, m.seqs)
    } else if (m.type === 'mcast-datagram') {
      // A repair over the session: the same bytes as multicast, checked the same way.
      const c = [...this.channels.values()].find((ch) => ch.rp === rp)
      if (c !== undefined) this.receiver.receive(c.source, m.datagram)
    } else return false
    return true
  }

  /** A datagram the LAN driver accepted from `source` on a joined channel. */
  datagram(source: string, bytes: Uint8Array): void {
    this.receiver.receive(source, bytes)
  }

  /** Leaves `topic`'s channel (unsubscribed, or served by unicast). */
  drop(topic: Topic): void {
    this.unicast.delete(topic)
    const c = this.channels.get(topic)
    if (c === undefined) return
    this.channels.delete(topic)
    this.receiver.leave(topic)
    this.lan.leave(c.source, c.group)
  }

  /** Leaves every channel (failing over to another RP, or stopping). */
  dropAll(): void {
    for (const topic of [...this.channels.keys()]) this.drop(topic)
  }

  /** Probe state of `topic`: `multicast` once the RP's multicast reaches this member. */
  probeState(topic: Topic): ReturnType<MulticastReceiver['probeState']> {
    return this.unicast.has(topic) ? 'unicast' : this.receiver.probeState(topic)
  }

  /** The receiver's counters. */
  stats(): MulticastReceiverStats {
    return this.receiver.stats()
  }

  /** Rejected datagrams by reason and source. */
  get rejections(): MulticastReceiver['rejections'] {
    return this.receiver.rejections
  }

  /**
   * A message the receiver completed. One that is refused took its sequence number's
   * slot (every holder of the group key can seal a datagram, so a registered member could
   * have forged it): it is reported lost, and the member fetches the real one over its
   * session.
   */
  private onMessage(topic: Topic, seq: number, data: Uint8Array): void {
    const c = this.channels.get(topic)
    if (c === undefined) return
    let m: RpMessage
    try {
      m = decodeRpMessage(data, this.limits)
    } catch (err) {
      this.host.reject(c.rp, err instanceof ConsensusMulticastError ? err.code : 'ERR_DECODE')
      this.host.lost(topic, seq, seq, 'rejected')
      return
    }
    if (m.type !== 'deliver' || m.topic !== topic) {
      this.host.reject(c.rp, 'mcast-not-deliver', topic)
      this.host.lost(topic, seq, seq, 'rejected')
      return
    }
    if (!this.host.deliver(c.rp, m)) this.host.lost(topic, seq, seq, 'rejected')
  }
}
