import { randomBytes } from 'node:crypto'
import type { PeerKey, Topic } from '../common/artifact.ts'
import { LimitExceededError, MessageTooLargeError } from '../common/errors.ts'
import type { BackboneRepair } from './backbone-repair.ts'
import type { McastGroupAnnounce, RpMessage } from './codec.ts'
import type { RpLan } from './lan.ts'
import { DatagramAuthenticator, GROUP_KEY_BYTES } from './multicast/datagram-auth.ts'
import { groupForTopic } from './multicast/group-address.ts'
import { MulticastSender, type MulticastSenderOptions } from './multicast/multicast-sender.ts'
import type { RpContext } from './rp-context.ts'

/** Probe requests one member may make per hello interval: each one is multicast to the LAN. */
export const MAX_PROBES_PER_INTERVAL = 8

/** The settings {@link LanDelivery} reads. */
export interface LanDeliverySettings {
  /** The sender core's options (datagram size, repair buffer, pacing). */
  sender: MulticastSenderOptions
}

interface TopicKey {
  readonly keyId: number
  readonly key: Uint8Array
}

/** Counters of an RP's LAN delivery. */
export interface LanDeliveryStats {
  /** Messages sent once to the LAN for the members it reaches. */
  multicastMessages: number
  /** Messages that could not go by multicast (too large, pacer full): unicast to everyone. */
  unicastInstead: number
  /** Keys rotated because a member left a topic. */
  keyRotations: number
}

/**
 * A replication point's delivery to its local members by LAN multicast (issue 10,
 * doc/rp-multicast.md): per topic a group key, announced to every member that registers
 * (and again when it rotates); a {@link MulticastSender} that sends each message once to
 * the topic's (S, G) channel; the members' NACKs, probes and probe results arriving over
 * their sessions, each charged to the member; repairs and GONE sent back over the session.
 * A member is served by multicast only once its probe said multicast reaches it; every
 * other member keeps today's unicast Delivers, so both kinds are served at once.
 */
export class LanDelivery {
  private readonly ctx: RpContext
  private readonly lan: RpLan
  private readonly repair: BackboneRepair
  private readonly sender: MulticastSender
  private readonly keys = new Map<Topic, TopicKey>()
  /** Members per topic that multicast reaches (their probe said so). */
  private readonly reached = new Map<Topic, Set<PeerKey>>()
  /** Topics whose key must change at the next interval (a member left). */
  private readonly toRotate = new Set<Topic>()
  /** Probe requests per member this interval. */
  private readonly probes = new Map<PeerKey, number>()
  private lastKeyId = 0
  private readonly counters: LanDeliveryStats = {
    multicastMessages: 0,
    unicastInstead: 0,
    keyRotations: 0,
  }

  constructor(ctx: RpContext, lan: RpLan, repair: BackboneRepair, settings: LanDeliverySettings) {
    this.ctx = ctx
    this.lan = lan
    this.repair = repair
    this.sender = new MulticastSender(
      {
        now: () => ctx.env.now(),
        setTimer: (ms, fn) => ctx.later(ms, fn),
        random: () => ctx.env.random(),
        multicast: (group, datagram) => lan.multicast(group, datagram),
        unicast: (member, datagram) => ctx.send(member, { type: 'mcast-datagram', datagram }),
        gone: (member, topic, seqs) => ctx.send(member, { type: 'mcast-gone', topic, seqs }),
      },
      settings.sender,
    )
  }

  /** Announces of `topics` for a registration answer; a topic's first announce creates its key. */
  announce(topics: Iterable<Topic>): McastGroupAnnounce[] {
    const out: McastGroupAnnounce[] = []
    for (const topic of topics) out.push(this.announceOf(topic))
    return out
  }

  /** True when `member` gets `topic` by multicast (no unicast Deliver). */
  reaches(member: PeerKey, topic: Topic): boolean {
    return this.reached.get(topic)?.has(member) ?? false
  }

  /**
   * Sends one message (`frame`, an encoded Deliver) once to the topic's group, if any member
   * is reached by multicast; false when it did not (no such member, too large, pacer full):
   * the caller then delivers it by unicast to every member.
   */
  publish(topic: Topic, frame: Uint8Array): boolean {
    if ((this.reached.get(topic)?.size ?? 0) === 0 || !this.keys.has(topic)) return false
    try {
      this.sender.publish(topic, frame)
    } catch (err) {
      if (!(err instanceof MessageTooLargeError || err instanceof LimitExceededError)) throw err
      this.counters.unicastInstead++
      return false
    }
    this.counters.multicastMessages++
    return true
  }

  /** A multicast frame from a member (NACK, probe request, probe result); false if not one. */
  receive(peer: PeerKey, m: RpMessage): boolean {
    switch (m.type) {
      case 'mcast-nack': {
        if (!this.registered(peer, m.topic)) return true
        // Charged like any repair: one unit per message asked for.
        if (!this.repair.spend(peer, Math.max(1, m.entries.length))) return true
        this.sender.handleNack(peer, m.topic, m.entries)
        return true
      }
      case 'mcast-probe': {
        if (!this.registered(peer, m.topic)) return true
        const n = (this.probes.get(peer) ?? 0) + 1
        this.probes.set(peer, n)
        if (n > MAX_PROBES_PER_INTERVAL) {
          // Each probe costs a datagram to every host of the LAN: a small budget.
          if (n === MAX_PROBES_PER_INTERVAL + 1) this.ctx.reject(peer, 'probe-flood', m.topic)
          return true
        }
        this.sender.handleProbeRequest(peer, m.topic, m.nonce)
        return true
      }
      case 'mcast-probe-result': {
        if (!this.registered(peer, m.topic)) return true
        if (!this.repair.spend(peer, 1)) return true
        const set = this.reached.get(m.topic) ?? new Set<PeerKey>()
        if (m.reaches) {
          set.add(peer)
          this.reached.set(m.topic, set)
        } else set.delete(peer)
        return true
      }
      default:
        return false
    }
  }

  /**
   * `member` left `topics` (all of them when empty) or expired: it is no longer served, and
   * the key of each topic it held changes at the next interval (it must not read on).
   */
  memberLeft(member: PeerKey, topics: readonly Topic[]): void {
    // Every member registered for a topic was given its key; one no longer registered may
    // already be forgotten (expired), so then every keyed topic changes key.
    const held = this.ctx.membership.get(member)?.topics
    const left = topics.length > 0 ? topics : held !== undefined ? [...held] : [...this.keys.keys()]
    for (const topic of left) {
      this.reached.get(topic)?.delete(member)
      if (this.keys.has(topic)) this.toRotate.add(topic)
    }
    if (topics.length === 0) this.sender.memberGone(member)
  }

  /** A new hello interval: probe budgets refill, and keys marked for rotation change. */
  newInterval(): void {
    this.probes.clear()
    for (const topic of this.toRotate) this.rotate(topic)
    this.toRotate.clear()
  }

  /** The sender's counters with this part's. */
  stats(): LanDeliveryStats & ReturnType<MulticastSender['stats']> {
    return { ...this.sender.stats(), ...this.counters }
  }

  /** Cancels the sender's timers. */
  stop(): void {
    this.sender.stop()
  }

  private registered(peer: PeerKey, topic: Topic): boolean {
    if (this.keys.has(topic) && this.ctx.membership.get(peer)?.topics.has(topic)) return true
    this.ctx.reject(peer, 'not-registered', topic)
    return false
  }

  private announceOf(topic: Topic): McastGroupAnnounce {
    const k = this.keys.get(topic) ?? this.newKey(topic, 1)
    const group = groupForTopic(topic)
    return {
      topic,
      group: group.address,
      port: group.port,
      keyId: k.keyId,
      key: k.key,
      nextSeq: this.sender.nextSeq(topic),
      source: this.lan.address,
      maxDatagramBytes: this.sender.maxDatagramBytes,
      maxFragments: this.sender.maxFragments,
    }
  }

  private newKey(topic: Topic, firstSeq: number): TopicKey {
    const k = { keyId: ++this.lastKeyId, key: new Uint8Array(randomBytes(GROUP_KEY_BYTES)) }
    this.keys.set(topic, k)
    this.sender.addTopic(topic, new DatagramAuthenticator(k.keyId, k.key), firstSeq)
    return k
  }

  /** A fresh key for `topic`, announced to every member of it still registered. */
  private rotate(topic: Topic): void {
    if (!this.keys.has(topic)) return
    const members = this.ctx.membership.membersOf(topic)
    if (members.size === 0 || (members.size === 1 && members.has(this.ctx.env.self))) {
      this.keys.delete(topic)
      this.reached.delete(topic)
      this.sender.removeTopic(topic)
      return
    }
    this.newKey(topic, this.sender.nextSeq(topic))
    this.counters.keyRotations++
    const group = this.announceOf(topic)
    for (const member of members) {
      if (member !== this.ctx.env.self) this.ctx.send(member, { type: 'mcast-group', group })
    }
  }
}
