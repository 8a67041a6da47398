import type { Artifact, PeerKey, Topic } from '../common/artifact.ts'
import type { Dissemination, PublishResult } from '../common/dissemination.ts'
import type { Env, ProtocolCore } from '../common/env.ts'
import {
  ConsensusMulticastError,
  DuplicateMessageError,
  InvalidParametersError,
  LimitExceededError,
  MessageTooLargeError,
  NoPeersError,
} from '../common/errors.ts'
import {
  contentMessageId,
  type MessageId,
  messageIdFromKey,
  messageIdKey,
} from '../common/message-id.ts'
import { SeenCache } from '../common/seen-cache.ts'
import type { ValidationResult } from '../common/validation.ts'
import type { PeerSignatures } from '../crypto/peer-signatures.ts'
import {
  DEFAULT_RP_CODEC_LIMITS,
  decodeRpMessage,
  type RpCodecLimits,
  type RpMessage,
  rpPayloadBytes,
} from './codec.ts'
import type { RpEvents, RpPublishOptions } from './events.ts'
import type { RpLan } from './lan.ts'
import { LanReception } from './lan-reception.ts'
import type {
  LossReason,
  MulticastReceiverOptions,
  MulticastReceiverStats,
  ProbeState,
} from './multicast/multicast-receiver.ts'
import { resolveOptions } from './options.ts'
import { checkPublished, signPublished } from './publisher-auth.ts'
import { RpCore } from './rp-core.ts'

/** Options of a member (a node that registers with replication points). */
export interface MemberOptions {
  /** Its RPs, in order of preference: the first is the primary, the rest are backups. */
  rps: readonly PeerKey[]
  /** Interval between heartbeats, in ms (default 1000). */
  heartbeatIntervalMs?: number
  /**
   * Heartbeat intervals without any frame from the RP before failing over to the next one;
   * also the lease asked for, in intervals (default 3, as IGMP's robustness variable).
   */
  robustness?: number
  /** Largest payload, in bytes (default 1 MiB). */
  maxMessageBytes?: number
  /** Longest topic name, in bytes (default 256). */
  maxTopicBytes?: number
  /** Most publishes kept until the backbone acknowledges them (default 1024). */
  maxPending?: number
  /** How long message ids are remembered for deduplication, in ms (default 120 s). */
  seenTtlMs?: number
  /** Most message ids remembered (default 100,000). */
  seenCapacity?: number
  /** Delay that coalesces delivery acknowledgements (quorum messages only), in ms (default 5). */
  ackDelayMs?: number
  /** Ask for a quorum event on every publish unless the publish says otherwise (default false). */
  quorum?: boolean
  /**
   * The LAN this member receives its RP's multicast on (doc/rp-multicast.md): it joins the
   * channel the RP announces, probes, and is served by multicast when the probe comes back.
   * Absent: unicast Delivers only, as before.
   */
  lan?: RpLan
  /** Options of the multicast receiver (window, NACK timing, probes); with `lan` only. */
  multicast?: MulticastReceiverOptions
  /**
   * Publishers' signatures (this member's identity key): the member signs what it
   * publishes and delivers only messages whose publisher signature it verified, so its RP
   * can drop a message but not forge or alter one. Absent: nothing is signed or checked
   * (the member trusts its RPs); the libp2p service always sets it.
   */
  signatures?: PeerSignatures
}

const DEFAULTS = {
  heartbeatIntervalMs: 1000,
  robustness: 3,
  maxMessageBytes: 1 << 20,
  maxTopicBytes: 256,
  maxPending: 1024,
  seenTtlMs: 120_000,
  seenCapacity: 100_000,
  ackDelayMs: 5,
}

interface Pending {
  readonly frame: Extract<RpMessage, { type: 'publish' }>
  sentAt: number
}

/**
 * A member of the RP strategy: it registers its topics with one RP at a time (the first
 * reachable of an ordered list), keeps the lease alive with heartbeats, publishes through
 * that RP and receives the RP's deliveries. When the RP stops answering (or its connection
 * closes) it registers with the next one, sends again every publish the backbone has not
 * acknowledged, and fetches what it missed from the new RP's digest. Sans-IO.
 */
export class RpMember
  extends RpCore
  implements ProtocolCore, Dissemination<RpEvents, RpPublishOptions>
{
  /** @inheritdoc */
  readonly strategy = 'rp' as const
  private readonly rps: readonly PeerKey[]
  private readonly rpSet: ReadonlySet<PeerKey>
  private readonly opts: typeof DEFAULTS
  private readonly defaultQuorum: boolean
  protected readonly limits: RpCodecLimits
  private readonly seen: SeenCache
  private readonly signatures: PeerSignatures | undefined
  private readonly topics = new Set<Topic>()
  private readonly connected = new Set<PeerKey>()
  private readonly pending = new Map<string, Pending>()
  /** Topics of publishes that asked for a quorum and have not reached it (bounded). */
  private readonly awaitingQuorum = new Map<string, Topic>()
  private readonly toAck: MessageId[] = []
  private current: PeerKey | undefined
  private registered = false
  private everRegistered = false
  private lastHeard = 0
  private heartbeatSeq = 0
  /** Ids NACKed and not received yet, with the number of retries (bounded). */
  private readonly wanted = new Map<string, number>()
  /** A request for a digest of lost deliveries, until a digest comes (the request may be lost). */
  private recentAsked: { recent: number; tries: number } | undefined
  /** Consensus deliveries received from the current RP since registering (for loss checks). */
  private deliveredByRp = 0
  private ackScheduled = false
  private readonly reception: LanReception | undefined
  /** Multicast messages given up since the last request to the RP (coalesced). */
  private lostPending = 0

  constructor(env: Env, options: MemberOptions) {
    super(env, 'consensus-multicast:rp:member')
    const { rps, quorum, lan, multicast, signatures, ...rest } = options
    this.signatures = signatures
    if (rps.length === 0) throw new InvalidParametersError('a member needs at least one RP')
    this.rps = [...rps]
    this.rpSet = new Set(rps)
    this.defaultQuorum = quorum ?? false
    this.opts = resolveOptions('member', DEFAULTS, rest)
    this.limits = {
      ...DEFAULT_RP_CODEC_LIMITS,
      maxDataBytes: this.opts.maxMessageBytes,
      maxTopicBytes: this.opts.maxTopicBytes,
    }
    this.seen = new SeenCache(this.opts.seenTtlMs, this.opts.seenCapacity)
    this.reception =
      lan === undefined
        ? undefined
        : new LanReception(
            {
              now: () => this.env.now(),
              later: (ms, fn) => this.later(ms, fn),
              random: () => this.env.random(),
              sendToRp: (m) => {
                if (this.current !== undefined) this.send(this.current, m)
              },
              deliver: (rp, m) => this.onDeliver(rp, m, true),
              lost: (topic, first, last, reason) => this.multicastLost(topic, first, last, reason),
              reject: (peer, reason, topic) => this.reject(peer, reason, topic),
              log: this.log,
            },
            lan,
            this.limits,
            multicast,
          )
  }

  /** One datagram the LAN driver accepted from `source` on a channel this member joined. */
  datagramReceived(source: string, bytes: Uint8Array): void {
    if (this.running) this.reception?.datagram(source, bytes)
  }

  /** Whether the RP's multicast reaches this member for `topic` (`unknown` without a LAN). */
  multicastState(topic: Topic): ProbeState {
    return this.reception?.probeState(topic) ?? 'unknown'
  }

  /** Counters of the multicast receiver; undefined without a LAN. */
  multicastStats(): MulticastReceiverStats | undefined {
    return this.reception?.stats()
  }

  /** The RP this member is registered (or registering) with. */
  get rp(): PeerKey | undefined {
    return this.current
  }

  /** True once the current RP confirmed the registration. */
  get isRegistered(): boolean {
    return this.registered
  }

  /** Publishes not yet acknowledged by the backbone. */
  get unacknowledged(): number {
    return this.pending.size
  }

  // ---- ProtocolCore -------------------------------------------------------------------

  start(): void {
    this.running = true
    this.attach(undefined)
    this.every(this.opts.heartbeatIntervalMs, () => this.tick())
  }

  stop(): void {
    if (this.current !== undefined && this.registered) {
      this.send(this.current, { type: 'leave', topics: [] })
    }
    this.reception?.dropAll()
    this.running = false
    this.cancelTimers()
    this.connected.clear()
    this.current = undefined
    this.registered = false
  }

  peerConnected(peer: PeerKey): void {
    if (!this.rpSet.has(peer)) return
    this.connected.add(peer)
    if (!this.running) return
    if (this.current === undefined) this.attach(undefined)
    else if (this.rps.indexOf(peer) < this.rps.indexOf(this.current)) {
      // Revertive, as routing failover is: back to the preferred RP once it is reachable.
      this.log('%s: preferred RP %s is back, leaving %s', this.env.self, peer, this.current)
      this.leaveCurrent()
      this.current = peer
      this.register(peer)
    }
  }

  peerDisconnected(peer: PeerKey): void {
    this.connected.delete(peer)
    if (peer === this.current) this.failover()
  }

  receive(peer: PeerKey, frame: Uint8Array): void {
    let m: RpMessage
    try {
      m = decodeRpMessage(frame, this.limits)
    } catch (err) {
      this.reject(peer, err instanceof ConsensusMulticastError ? err.code : 'ERR_DECODE')
      return
    }
    if (!this.rpSet.has(peer)) {
      this.reject(peer, 'not-my-rp')
      return
    }
    this.recorder.frameReceived(frame.length, rpPayloadBytes(m))
    if (rpPayloadBytes(m) === 0) this.recorder.controlReceived(m.type)
    if (peer === this.current) this.lastHeard = this.env.now()
    switch (m.type) {
      case 'registered':
        if (peer !== this.current) return
        if (!this.registered) {
          this.registered = true
          this.everRegistered = true
          this.log('%s registered with %s', this.env.self, peer)
          for (const p of this.pending.values()) this.sendPublish(p)
        }
        for (const g of m.groups) {
          if (this.topics.has(g.topic)) this.reception?.announce(peer, g)
        }
        return
      case 'ack':
        for (const id of m.ids) this.pending.delete(messageIdKey(id))
        if (peer !== this.current) return
        if (!m.known) this.register(peer)
        else if (m.heartbeat > 0) this.checkLosses(peer, m.sent)
        return
      case 'deliver':
        this.onDeliver(peer, m)
        return
      case 'quorum': {
        const key = messageIdKey(m.id)
        const topic = this.awaitingQuorum.get(key)
        if (topic === undefined) return
        this.awaitingQuorum.delete(key)
        this.events.emit('quorum', { id: m.id, topic, count: m.count, members: m.members })
        return
      }
      case 'digest': {
        // Digests count with deliveries in the RP's loss check: a lost one is asked again.
        if (peer === this.current) {
          this.deliveredByRp++
          this.recentAsked = undefined
        }
        const now = this.env.now()
        const missing = m.ids.filter((id) => !this.seen.has(messageIdKey(id), now))
        for (const id of missing) {
          if (this.wanted.size < this.limits.maxIds) this.wanted.set(messageIdKey(id), 0)
        }
        if (missing.length > 0) this.send(peer, { type: 'nack', ids: missing, recent: 0, upto: 0 })
        return
      }
      case 'mcast-group':
        if (peer === this.current && this.topics.has(m.group.topic)) {
          this.reception?.announce(peer, m.group)
        }
        return
      default:
        if (this.reception?.receive(peer, m)) return
        this.reject(peer, `unexpected-${m.type}`)
    }
  }

  // ---- Dissemination ------------------------------------------------------------------

  subscribe(topic: Topic): void {
    this.checkTopic(topic)
    if (this.topics.has(topic)) return
    this.topics.add(topic)
    if (this.current !== undefined) {
      this.send(this.current, {
        type: 'register',
        topics: [topic],
        leaseMs: this.lease(),
        resume: false,
      })
    }
  }

  unsubscribe(topic: Topic): void {
    if (!this.topics.delete(topic)) return
    this.reception?.drop(topic)
    if (this.current !== undefined) this.send(this.current, { type: 'leave', topics: [topic] })
  }

  getTopics(): Topic[] {
    return [...this.topics]
  }

  async publish(
    topic: Topic,
    data: Uint8Array,
    options: RpPublishOptions = {},
  ): Promise<PublishResult> {
    this.checkTopic(topic)
    if (data.length > this.opts.maxMessageBytes) {
      throw new MessageTooLargeError(data.length, this.opts.maxMessageBytes)
    }
    if (this.connected.size === 0) throw new NoPeersError(topic)
    const cls = options.class ?? 'consensus'
    const id = contentMessageId(topic, data)
    const key = messageIdKey(id)
    const now = this.env.now()
    if (this.seen.has(key, now) || this.pending.has(key)) throw new DuplicateMessageError(key)
    const frame: Pending['frame'] = {
      type: 'publish',
      id,
      topic,
      class: cls,
      data,
      quorum: options.quorum ?? this.defaultQuorum,
      surplus: options.surplus ?? 0,
      signature: signPublished(this.signatures, id, cls),
    }
    if (cls === 'consensus') {
      if (this.pending.size >= this.opts.maxPending) {
        throw new LimitExceededError(`${this.pending.size} publishes await acknowledgement`)
      }
      this.seen.add(key, now)
      const p: Pending = { frame, sentAt: Number.NEGATIVE_INFINITY }
      this.pending.set(key, p)
      if (this.registered) this.sendPublish(p)
    } else {
      // Ingress is best effort: sent once, not kept.
      if (!this.registered || this.current === undefined) throw new NoPeersError(topic)
      this.seen.add(key, now)
      this.send(this.current, frame)
    }
    if (frame.quorum) {
      if (this.awaitingQuorum.size >= this.opts.maxPending) {
        this.awaitingQuorum.delete(this.awaitingQuorum.keys().next().value!)
      }
      this.awaitingQuorum.set(key, topic)
    }
    this.recorder.count('published', topic, cls)
    return { id, recipients: this.current === undefined ? 0 : 1 }
  }

  // ---- registration and failover ---------------------------------------------------------

  private tick(): void {
    if (this.current === undefined) {
      this.attach(undefined)
      return
    }
    const now = this.env.now()
    const deadline = this.opts.robustness * this.opts.heartbeatIntervalMs
    if (now - this.lastHeard > deadline) {
      this.log(
        '%s: no answer from %s for %d ms, failing over',
        this.env.self,
        this.current,
        deadline,
      )
      this.failover()
      return
    }
    if (!this.registered) {
      this.register(this.current)
      return
    }
    this.send(this.current, { type: 'heartbeat', seq: ++this.heartbeatSeq })
    this.nackAgain(this.current, now)
    // A publish whose acknowledgement did not come within the deadline is sent again.
    for (const p of this.pending.values()) if (now - p.sentAt > deadline) this.sendPublish(p)
  }

  /** Registers with the first connected RP after `after` in the list (from the top if undefined). */
  private attach(after: PeerKey | undefined): void {
    const start = after === undefined ? 0 : this.rps.indexOf(after) + 1
    for (let i = 0; i < this.rps.length; i++) {
      const rp = this.rps[(start + i) % this.rps.length]
      if (rp === after || !this.connected.has(rp)) continue
      this.current = rp
      this.register(rp)
      return
    }
    // Only the old RP is left (or none): stay with it if it is still connected.
    this.current = after !== undefined && this.connected.has(after) ? after : undefined
    if (this.current !== undefined) this.register(this.current)
  }

  private failover(): void {
    const old = this.current
    this.leaveCurrent()
    this.current = undefined
    this.registered = false
    this.attach(old)
  }

  /** Tells the current RP, if it can still hear, that this member is leaving it. */
  private leaveCurrent(): void {
    this.reception?.dropAll()
    const rp = this.current
    if (rp !== undefined && this.registered && this.connected.has(rp)) {
      this.send(rp, { type: 'leave', topics: [] })
    }
  }

  private register(rp: PeerKey): void {
    this.registered = false
    this.deliveredByRp = 0
    this.lastHeard = this.env.now()
    this.send(rp, {
      type: 'register',
      topics: [...this.topics],
      leaseMs: this.lease(),
      resume: this.everRegistered,
    })
  }

  private lease(): number {
    return this.opts.robustness * this.opts.heartbeatIntervalMs
  }

  private sendPublish(p: Pending): void {
    if (this.current === undefined) return
    p.sentAt = this.env.now()
    this.send(this.current, p.frame)
  }

  // ---- deliveries ------------------------------------------------------------------------

  /**
   * The RP's heartbeat answer says how many consensus deliveries it sent; frames arrive in
   * order, so fewer received means some were lost on the way: ask for a digest of them.
   */
  private checkLosses(rp: PeerKey, sent: number): void {
    const lost = sent - this.deliveredByRp
    if (lost <= 0) return
    this.deliveredByRp = sent
    this.recentAsked = { recent: lost, tries: 0 }
    this.send(rp, { type: 'nack', ids: [], recent: lost, upto: 0 })
  }

  /** Asks again for messages NACKed an interval ago that did not come (the NACK or the reply was lost). */
  private nackAgain(rp: PeerKey, now: number): void {
    const ids: MessageId[] = []
    for (const [key, tries] of this.wanted) {
      if (this.seen.has(key, now) || tries >= this.opts.robustness) this.wanted.delete(key)
      else {
        this.wanted.set(key, tries + 1)
        ids.push(messageIdFromKey(key))
      }
    }
    if (ids.length > 0) this.send(rp, { type: 'nack', ids, recent: 0, upto: 0 })
    const r = this.recentAsked
    if (r === undefined) return
    if (++r.tries > this.opts.robustness) this.recentAsked = undefined
    else this.send(rp, { type: 'nack', ids: [], recent: r.recent, upto: 0 })
  }

  /**
   * Messages of the RP's multicast channel were given up: tell the application, and ask the
   * RP (coalesced) for a digest of its recent messages, whose missing ids are then NACKed
   * and come as unicast Delivers.
   */
  private multicastLost(topic: Topic, first: number, last: number, reason: LossReason): void {
    this.recorder.controlReceived('multicast-lost', last - first + 1)
    this.events.emit('multicast-lost', { topic, first, last, reason })
    const schedule = this.lostPending === 0
    this.lostPending += last - first + 1
    if (!schedule) return
    this.later(this.opts.ackDelayMs, () => {
      const recent = this.lostPending
      this.lostPending = 0
      if (this.current === undefined || !this.registered) return
      this.recentAsked = { recent, tries: 0 }
      this.send(this.current, { type: 'nack', ids: [], recent, upto: 0 })
    })
  }

  /**
   * A Deliver from `peer`, by unicast or (`viaLan`) from its LAN multicast; false when its
   * content failed the publisher checks.
   */
  private onDeliver(
    peer: PeerKey,
    m: Extract<RpMessage, { type: 'deliver' }>,
    viaLan = false,
  ): boolean {
    const now = this.env.now()
    // Only unicast Delivers count in the RP's loss check; the LAN channel has its own.
    if (peer === this.current && m.class === 'consensus' && !viaLan) this.deliveredByRp++
    const key = messageIdKey(m.id)
    if (this.seen.has(key, now)) {
      // The LAN carries a member's own publishes back to it: expected, not a duplicate.
      if (!(viaLan && m.publisher === this.env.self)) this.duplicate(m, peer, now)
      return true
    }
    if (!this.topics.has(m.topic)) return true
    // The RP (unicast or multicast) forwarded it: a forgery or an alteration counts
    // against the RP, and is not remembered, so the real message still gets through.
    const problem = checkPublished(this.signatures, m, m.publisher)
    if (problem !== undefined) {
      this.recorder.count('rejected', m.topic, m.class)
      this.reject(peer, problem, m.topic)
      return false
    }
    this.seen.add(key, now)
    const artifact: Artifact = {
      id: m.id,
      topic: m.topic,
      data: m.data,
      class: m.class,
      from: peer,
      origin: m.publisher.length > 0 ? m.publisher : undefined,
      receivedAt: now,
    }
    const done = (v: ValidationResult) => {
      if (v === 'reject') {
        this.recorder.count('rejected', m.topic, m.class)
        this.reject(peer, 'invalid-message', m.topic)
        return
      }
      if (v === 'ignore') {
        this.recorder.count('ignored', m.topic, m.class)
        return
      }
      this.recorder.count('delivered', m.topic, m.class, m.data.length)
      this.events.emit('artifact', artifact)
      if (m.quorum) this.queueAck(m.id)
    }
    const validator = this.validators.get(m.topic)
    const verdict = validator === undefined ? 'accept' : validator(artifact)
    if (verdict instanceof Promise) {
      verdict.then(done, (err) => {
        this.log.error('validator of %s threw: %e', m.topic, err)
        done('ignore')
      })
    } else done(verdict)
    return true
  }

  private queueAck(id: MessageId): void {
    this.toAck.push(id)
    if (this.ackScheduled) return
    this.ackScheduled = true
    this.later(this.opts.ackDelayMs, () => {
      this.ackScheduled = false
      const ids = this.toAck.splice(0)
      if (this.current === undefined) return
      for (let i = 0; i < ids.length; i += this.limits.maxIds) {
        const chunk = ids.slice(i, i + this.limits.maxIds)
        this.send(this.current, { type: 'ack', ids: chunk, heartbeat: 0, known: true, sent: 0 })
      }
    })
  }

  // ---- plumbing -------------------------------------------------------------------------
}
