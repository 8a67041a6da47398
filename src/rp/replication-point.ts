import type { PeerKey, Topic } from '../common/artifact.ts'
import type { Dissemination, PublishResult } from '../common/dissemination.ts'
import type { Env, ProtocolCore } from '../common/env.ts'
import {
  ConsensusMulticastError,
  DuplicateMessageError,
  InvalidParametersError,
  MessageTooLargeError,
} from '../common/errors.ts'
import { contentMessageId, messageIdKey } from '../common/message-id.ts'
import { SeenCache } from '../common/seen-cache.ts'
import type { PeerSignatures } from '../crypto/peer-signatures.ts'
import { treeNeighbours } from './backbone.ts'
import { BackboneLinks } from './backbone-links.ts'
import { BackboneRepair } from './backbone-repair.ts'
import {
  DEFAULT_RP_CODEC_LIMITS,
  decodeRpMessage,
  type RpCodecLimits,
  type RpMessage,
  rpPayloadBytes,
} from './codec.ts'
import { DataPlane } from './data-plane.ts'
import type { RpEvents, RpPublishOptions } from './events.ts'
import type { RpLan } from './lan.ts'
import { LanDelivery, type LanDeliveryStats } from './lan-delivery.ts'
import { LinkStateDb } from './link-state.ts'
import { MemberIntake } from './member-intake.ts'
import { Membership } from './membership.ts'
import type { MulticastSenderOptions, MulticastSenderStats } from './multicast/multicast-sender.ts'
import { resolveOptions } from './options.ts'
import { signPublished } from './publisher-auth.ts'
import { QuorumTracker } from './quorum-tracker.ts'
import { RepairBuffer } from './repair.ts'
import type { RpContext } from './rp-context.ts'
import { RpCore } from './rp-core.ts'

/** Options of a replication point. */
export interface ReplicationPointOptions {
  /** Every RP of the backbone (keys); this RP may be in the list. Frames of RP kinds are accepted from these only. */
  backbone: readonly PeerKey[]
  /**
   * How messages cross the backbone: `shared`, one minimum spanning tree (least total RTT)
   * for every message; `source`, the shortest-path tree from the publisher's RP (PIM's
   * source trees: lower latency, each RP sends to more RPs). Default `shared`.
   */
  tree?: 'shared' | 'source'
  /** Interval between hellos (RTT probes, link states) and membership sweeps, in ms (default 1000). */
  helloIntervalMs?: number
  /** Silent hello intervals before a neighbour RP is declared dead (default 3, as IGMP's robustness). */
  robustness?: number
  /** Longest lease a member may ask for, in ms (default 60 s). */
  maxLeaseMs?: number
  /** Most registered members (default 100,000). */
  maxMembers?: number
  /** Most topics per member (default 256). */
  maxTopicsPerMember?: number
  /** Largest payload, in bytes (default 1 MiB). */
  maxMessageBytes?: number
  /** Longest topic name, in bytes (default 256). */
  maxTopicBytes?: number
  /** How long consensus messages are kept for repair, in ms (default 30 s). */
  repairWindowMs?: number
  /** Most consensus messages kept for repair (default 16,384). */
  repairCapacity?: number
  /** How long message ids are remembered for deduplication, in ms (default 120 s). */
  seenTtlMs?: number
  /** Most message ids remembered (default 100,000). */
  seenCapacity?: number
  /** Delay that coalesces delivered-count reports to the parent RP, in ms (default 5). */
  reportDelayMs?: number
  /** Delay that coalesces triggered link-state updates, in ms (default 50). */
  lsaDelayMs?: number
  /** Relative RTT change worth re-advertising a link (default 0.2): keeps the tree from flapping. */
  costChange?: number
  /** Most ids per digest (default 1024). */
  maxDigestIds?: number
  /**
   * Repair work one peer may ask for per hello interval, in messages sent again (a digest
   * counts as 16); beyond it requests are dropped and counted against the peer (default 4096).
   */
  maxRepairsPerInterval?: number
  /**
   * The LAN this RP multicasts into (doc/rp-multicast.md): each message goes once to the
   * topic's (S, G) channel for the members whose probe said multicast reaches them; the
   * others keep unicast Delivers. Absent: unicast to every member, as before.
   */
  lan?: RpLan
  /** Options of the multicast sender (datagram size, repair buffer, pacing); with `lan` only. */
  multicast?: MulticastSenderOptions
  /**
   * Publishers' signatures (this RP's identity key): the RP signs its own publishes and
   * checks every new message's publisher signature before forwarding or delivering it, so
   * it never passes on a forgery. Absent: nothing is signed or checked (members trust
   * their RPs); the libp2p service always sets it.
   */
  signatures?: PeerSignatures
}

const DEFAULTS = {
  helloIntervalMs: 1000,
  robustness: 3,
  maxLeaseMs: 60_000,
  maxMembers: 100_000,
  maxTopicsPerMember: 256,
  maxMessageBytes: 1 << 20,
  maxTopicBytes: 256,
  repairWindowMs: 30_000,
  repairCapacity: 16_384,
  seenTtlMs: 120_000,
  seenCapacity: 100_000,
  reportDelayMs: 5,
  lsaDelayMs: 50,
  costChange: 0.2,
  maxDigestIds: 1024,
  maxRepairsPerInterval: 4096,
}

/** A snapshot of what an RP knows, for applications and tests. */
export interface RpView {
  /** Members registered here. */
  members: number
  /** Members registered here per topic. */
  localCounts: Record<Topic, number>
  /** Members registered per topic at every reachable RP (this one included). */
  totalCounts: Record<Topic, number>
  /** Live neighbour RPs with their smoothed RTT in ms. */
  neighbours: Record<PeerKey, number | null>
  /** RPs reachable on the backbone, sorted. */
  reachable: PeerKey[]
  /** This RP's tree neighbours. */
  treeNeighbours: PeerKey[]
  /** Consensus messages held for repair. */
  held: number
}

/**
 * A replication point (seed 000): members register with it for topics (IGMP-like leases);
 * it floods link states and RTT probes with the other RPs, computes the same backbone tree
 * as they do, forwards each message once along the tree and delivers it to its local
 * members; delivered counts flow back to the publisher's RP for the quorum; RPs repair one
 * another with digests and NACKs after failures. Sans-IO: driven only through {@link Env}.
 *
 * This class is the RP's face and its clock; each concern is a part of its own, all
 * sharing one {@link RpContext}: {@link MemberIntake} (what members send),
 * {@link BackboneLinks} (hellos, link states, the tree), {@link DataPlane} (forwarding and
 * local delivery), {@link QuorumTracker} (delivered counts, acks, quorums) and
 * {@link BackboneRepair} (digests and NACKs between RPs).
 */
export class ReplicationPoint extends RpCore implements ProtocolCore, Dissemination<RpEvents> {
  /** @inheritdoc */
  readonly strategy = 'rp' as const
  private readonly opts: typeof DEFAULTS
  protected readonly limits: RpCodecLimits
  private readonly backboneSet: ReadonlySet<PeerKey>
  private readonly ctx: RpContext
  private readonly links: BackboneLinks
  private readonly quorum: QuorumTracker
  private readonly repair: BackboneRepair
  private readonly data: DataPlane
  private readonly intake: MemberIntake
  private readonly lanDelivery: LanDelivery | undefined
  private readonly connected = new Set<PeerKey>()

  constructor(env: Env, options: ReplicationPointOptions) {
    super(env, 'consensus-multicast:rp')
    const { backbone, tree, lan, multicast, signatures, ...rest } = options
    this.opts = resolveOptions('RP', DEFAULTS, rest)
    if (!Number.isInteger(this.opts.robustness)) {
      throw new InvalidParametersError('RP option robustness must be an integer')
    }
    this.backboneSet = new Set(backbone.filter((k) => k !== env.self).concat(env.self))
    this.limits = {
      ...DEFAULT_RP_CODEC_LIMITS,
      maxDataBytes: this.opts.maxMessageBytes,
      maxTopicBytes: this.opts.maxTopicBytes,
      maxTopics: this.opts.maxTopicsPerMember,
      maxStates: Math.max(DEFAULT_RP_CODEC_LIMITS.maxStates, this.backboneSet.size),
      maxLinks: Math.max(DEFAULT_RP_CODEC_LIMITS.maxLinks, this.backboneSet.size),
    }
    this.ctx = {
      env,
      log: this.log,
      limits: this.limits,
      recorder: this.recorder,
      events: this.events,
      signatures,
      validators: this.validators,
      running: () => this.running,
      send: (peer, m) => this.send(peer, m),
      sendBytes: (peer, bytes, payload) => this.sendBytes(peer, bytes, payload),
      reject: (peer, reason, topic) => this.reject(peer, reason, topic),
      duplicate: (m, from, now) => this.duplicate(m, from, now),
      later: (ms, fn) => this.later(ms, fn),
      membership: new Membership(this.opts.maxMembers, this.opts.maxTopicsPerMember),
      lsdb: new LinkStateDb(
        env.self,
        this.backboneSet,
        this.opts.costChange,
        2 * this.opts.helloIntervalMs,
        env.now(),
      ),
      seen: new SeenCache(this.opts.seenTtlMs, this.opts.seenCapacity),
      buffer: new RepairBuffer(this.opts.repairCapacity, this.opts.repairWindowMs),
    }
    this.links = new BackboneLinks(this.ctx, tree ?? 'shared', this.opts, {
      treeGained: (peers) => this.repair.offer(peers),
      neighbourLost: (peer) => this.ctx.buffer.forgetPeer(peer),
    })
    this.quorum = new QuorumTracker(this.ctx, this.links, this.opts)
    this.repair = new BackboneRepair(this.ctx, this.links, this.opts)
    this.lanDelivery =
      lan === undefined
        ? undefined
        : new LanDelivery(this.ctx, lan, this.repair, { sender: multicast ?? {} })
    this.data = new DataPlane(this.ctx, this.links, this.quorum, this.lanDelivery)
    this.intake = new MemberIntake(
      this.ctx,
      {
        links: this.links,
        quorum: this.quorum,
        repair: this.repair,
        data: this.data,
        lan: this.lanDelivery,
      },
      this.opts,
    )
  }

  // ---- ProtocolCore -------------------------------------------------------------------

  start(): void {
    this.running = true
    // A random phase keeps RPs from sending hellos in lockstep.
    this.every(
      this.opts.helloIntervalMs,
      () => this.tick(),
      this.env.random() * this.opts.helloIntervalMs,
    )
  }

  stop(): void {
    this.running = false
    this.cancelTimers()
    this.connected.clear()
    this.links.clear()
    this.quorum.clearReports()
    this.lanDelivery?.stop()
  }

  peerConnected(peer: PeerKey): void {
    this.connected.add(peer)
    if (this.isRp(peer) && this.running) this.links.hello(peer)
  }

  peerDisconnected(peer: PeerKey): void {
    this.connected.delete(peer)
    if (this.isRp(peer)) {
      this.links.neighbourDown(peer)
    } else {
      this.lanDelivery?.memberLeft(peer, [])
      if (this.ctx.membership.leave(peer, [])) this.intake.countsChanged()
    }
  }

  receive(peer: PeerKey, frame: Uint8Array): void {
    let m: RpMessage
    try {
      m = decodeRpMessage(frame, this.limits)
    } catch (err) {
      this.reject(peer, err instanceof ConsensusMulticastError ? err.code : 'ERR_DECODE')
      return
    }
    this.recorder.frameReceived(frame.length, rpPayloadBytes(m))
    if (rpPayloadBytes(m) === 0) this.recorder.controlReceived(m.type)
    if (this.isRp(peer)) this.fromRp(peer, m)
    else this.intake.receive(peer, m)
  }

  // ---- Dissemination ------------------------------------------------------------------

  /** Subscribes this RP's own application: it counts as one member of `topic`. */
  subscribe(topic: Topic): void {
    this.checkTopic(topic)
    if (this.ctx.membership.register(this.env.self, [topic], Number.POSITIVE_INFINITY, 0)) {
      this.intake.countsChanged()
    }
  }

  unsubscribe(topic: Topic): void {
    if (this.ctx.membership.leave(this.env.self, [topic])) this.intake.countsChanged()
  }

  getTopics(): Topic[] {
    return [...(this.ctx.membership.get(this.env.self)?.topics ?? [])]
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
    const id = contentMessageId(topic, data)
    const key = messageIdKey(id)
    if (this.ctx.seen.has(key, this.env.now())) throw new DuplicateMessageError(key)
    const cls = options.class ?? 'consensus'
    this.recorder.count('published', topic, cls)
    const recipients = this.data.inject({
      id,
      key,
      topic,
      class: cls,
      data,
      publisher: this.env.self,
      quorum: options.quorum ?? false,
      surplus: options.surplus ?? 0,
      signature: signPublished(this.ctx.signatures, id, cls),
    })
    return { id, recipients }
  }

  /** Counters of multicast delivery on the LAN; undefined without a LAN. */
  lanStats(): (LanDeliveryStats & MulticastSenderStats) | undefined {
    return this.lanDelivery?.stats()
  }

  /** Membership, neighbours and tree as this RP sees them now. */
  view(): RpView {
    const { membership, lsdb, buffer } = this.ctx
    const tree = lsdb.backbone()
    const localCounts: Record<Topic, number> = {}
    const totalCounts: Record<Topic, number> = {}
    for (const c of membership.allCounts()) localCounts[c.topic] = c.members
    for (const rp of tree.nodes) {
      for (const c of lsdb.stateOf(rp)?.counts ?? []) {
        totalCounts[c.topic] = lsdb.totalMembers(c.topic)
      }
    }
    const neighbours: Record<PeerKey, number | null> = {}
    for (const [k, n] of this.links.entries()) if (n.heard) neighbours[k] = n.rttMs ?? null
    return {
      members: membership.size,
      localCounts,
      totalCounts,
      neighbours,
      reachable: [...tree.nodes],
      treeNeighbours: [...treeNeighbours(tree, this.env.self)],
      held: buffer.size,
    }
  }

  // ---- the clock and the backbone's frames ----------------------------------------------

  private tick(): void {
    const now = this.env.now()
    this.repair.newInterval()
    const expired = this.ctx.membership.expire(now)
    for (const member of expired) this.lanDelivery?.memberLeft(member, [])
    this.lanDelivery?.newInterval()
    if (expired.length > 0) {
      this.log('%s expired members %o', this.env.self, expired)
      this.intake.countsChanged()
    }
    this.links.expireSilent(now, this.opts.robustness * this.opts.helloIntervalMs)
    for (const peer of this.connected) {
      if (this.isRp(peer)) this.links.hello(peer)
    }
    this.repair.offer(this.links.liveTreeNeighbours())
    this.repair.askAgain(now)
  }

  private fromRp(peer: PeerKey, m: RpMessage): void {
    switch (m.type) {
      case 'hello':
        this.links.onHello(peer, m)
        return
      case 'data':
        this.data.onData(peer, m)
        return
      case 'delivered':
        this.quorum.delivered(m.counts)
        return
      case 'digest':
        this.repair.onDigest(peer, m)
        return
      case 'nack':
        this.repair.onNack(peer, m)
        return
      default:
        this.reject(peer, `unexpected-${m.type}`)
    }
  }

  private isRp(peer: PeerKey): boolean {
    return this.backboneSet.has(peer) && peer !== this.env.self
  }
}
