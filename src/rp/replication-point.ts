import type { Artifact, ArtifactClass, PeerKey, Topic } from '../core/artifact.ts'
import type { Dissemination, PublishResult } from '../core/dissemination.ts'
import type { Env, ProtocolCore } from '../core/env.ts'
import {
  ConsensusMulticastError,
  DuplicateMessageError,
  InvalidParametersError,
  LimitExceededError,
  MessageTooLargeError,
} from '../core/errors.ts'
import {
  contentMessageId,
  type MessageId,
  messageIdFromKey,
  messageIdKey,
} from '../core/message-id.ts'
import { SeenCache } from '../core/seen-cache.ts'
import type { ValidationResult } from '../core/validation.ts'
import { sourceTreeChildren, treeNeighbours } from './backbone.ts'
import {
  DEFAULT_RP_CODEC_LIMITS,
  decodeRpMessage,
  encodeRpMessage,
  type RpCodecLimits,
  type RpLinkState,
  type RpMessage,
  rpPayloadBytes,
} from './codec.ts'
import { quorumThreshold, type RpEvents, type RpPublishOptions } from './events.ts'
import { LinkStateDb } from './link-state.ts'
import { Membership } from './membership.ts'
import { resolveOptions } from './options.ts'
import { type HeldMessage, RepairBuffer } from './repair.ts'
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

/** Repair units a digest costs (it names up to `maxDigestIds` messages). */
const DIGEST_COST = 16

/** A neighbour RP on the backbone. */
interface Neighbour {
  /** A hello arrived from it (it is a live link). */
  heard: boolean
  lastHeard: number
  /** Smoothed RTT in ms, once measured. */
  rttMs: number | undefined
  /** Our probes in flight: probe number → send time. */
  readonly probes: Map<number, number>
  /** Its last probe, to echo, and when it arrived. */
  lastProbe: { value: number; at: number } | undefined
  /** Consensus Data frames sent to it, and the keys of the latest (for loss repair). */
  dataSent: number
  readonly sentLog: string[]
  /** Consensus Data frames received from it. */
  dataReceived: number
  /** Its Data frame count at its previous hello: every frame up to it was accounted for. */
  sentChecked: number
  /** A request for a digest of lost frames, until a digest comes (the request may be lost). */
  recentAsked: { recent: number; upto: number; tries: number } | undefined
}

/** Per-message delivery bookkeeping: the report path and, at the origin, the quorum. */
interface Flow {
  readonly key: string
  readonly id: MessageId
  readonly topic: Topic
  /** The RP it came from (reports go there); undefined at the origin RP. */
  readonly parent: PeerKey | undefined
  readonly originRp: PeerKey
  readonly publisher: PeerKey
  readonly quorum: boolean
  readonly surplus: number
  /** Local members that acknowledged it. */
  readonly holders: Set<PeerKey>
  /** At the origin: members known to hold it. */
  count: number
  /** At the origin: the publisher was told the backbone holds it. */
  acked: boolean
  quorumSent: boolean
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
 */
export class ReplicationPoint extends RpCore implements ProtocolCore, Dissemination<RpEvents> {
  /** @inheritdoc */
  readonly strategy = 'rp' as const
  private readonly opts: typeof DEFAULTS
  private readonly treeKind: 'shared' | 'source'
  protected readonly limits: RpCodecLimits
  private readonly backboneSet: ReadonlySet<PeerKey>
  private readonly membership: Membership
  private readonly lsdb: LinkStateDb
  private readonly seen: SeenCache
  private readonly buffer: RepairBuffer
  private readonly flows = new Map<string, Flow>()
  private readonly connected = new Set<PeerKey>()
  private readonly neighbours = new Map<PeerKey, Neighbour>()
  private readonly reports = new Map<PeerKey, Map<string, number>>()
  /** Repair work done for each peer this hello interval (bounded by `maxRepairsPerInterval`). */
  private readonly repairSpent = new Map<PeerKey, number>()
  /** Ids NACKed to a neighbour and not received yet (bounded), retried each hello interval. */
  private readonly wanted = new Map<string, { from: PeerKey; tries: number }>()
  private lastTree = new Set<PeerKey>()
  private reportScheduled = false
  private lsaScheduled = false
  private probeSeq = 0

  constructor(env: Env, options: ReplicationPointOptions) {
    super(env, 'consensus-multicast:rp')
    const { backbone, tree, ...rest } = options
    this.treeKind = tree ?? 'shared'
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
    this.membership = new Membership(this.opts.maxMembers, this.opts.maxTopicsPerMember)
    this.lsdb = new LinkStateDb(
      env.self,
      this.backboneSet,
      this.opts.costChange,
      2 * this.opts.helloIntervalMs,
      env.now(),
    )
    this.seen = new SeenCache(this.opts.seenTtlMs, this.opts.seenCapacity)
    this.buffer = new RepairBuffer(this.opts.repairCapacity, this.opts.repairWindowMs)
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
    this.neighbours.clear()
    this.reports.clear()
  }

  peerConnected(peer: PeerKey): void {
    this.connected.add(peer)
    if (this.isRp(peer) && this.running)
      this.sendHello(peer, this.lsdb.pendingFor(peer, this.env.now()))
  }

  peerDisconnected(peer: PeerKey): void {
    this.connected.delete(peer)
    if (this.isRp(peer)) {
      this.neighbourDown(peer)
    } else if (this.membership.leave(peer, [])) {
      this.countsChanged()
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
    else this.fromMember(peer, m)
  }

  // ---- Dissemination ------------------------------------------------------------------

  /** Subscribes this RP's own application: it counts as one member of `topic`. */
  subscribe(topic: Topic): void {
    this.checkTopic(topic)
    if (this.membership.register(this.env.self, [topic], Number.POSITIVE_INFINITY, 0)) {
      this.countsChanged()
    }
  }

  unsubscribe(topic: Topic): void {
    if (this.membership.leave(this.env.self, [topic])) this.countsChanged()
  }

  getTopics(): Topic[] {
    return [...(this.membership.get(this.env.self)?.topics ?? [])]
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
    if (this.seen.has(key, this.env.now())) throw new DuplicateMessageError(key)
    const cls = options.class ?? 'consensus'
    this.recorder.count('published', topic, cls)
    const recipients = this.inject({
      id,
      key,
      topic,
      class: cls,
      data,
      publisher: this.env.self,
      quorum: options.quorum ?? false,
      surplus: options.surplus ?? 0,
    })
    return { id, recipients }
  }

  /** Membership, neighbours and tree as this RP sees them now. */
  view(): RpView {
    const tree = this.lsdb.backbone()
    const localCounts: Record<Topic, number> = {}
    const totalCounts: Record<Topic, number> = {}
    for (const c of this.membership.allCounts()) localCounts[c.topic] = c.members
    for (const rp of tree.nodes) {
      for (const c of this.lsdb.stateOf(rp)?.counts ?? []) {
        totalCounts[c.topic] = this.lsdb.totalMembers(c.topic)
      }
    }
    const neighbours: Record<PeerKey, number | null> = {}
    for (const [k, n] of this.neighbours) if (n.heard) neighbours[k] = n.rttMs ?? null
    return {
      members: this.membership.size,
      localCounts,
      totalCounts,
      neighbours,
      reachable: [...tree.nodes],
      treeNeighbours: [...treeNeighbours(tree, this.env.self)],
      held: this.buffer.size,
    }
  }

  // ---- members ------------------------------------------------------------------------

  private fromMember(peer: PeerKey, m: RpMessage): void {
    const now = this.env.now()
    switch (m.type) {
      case 'register': {
        const lease = Math.min(
          m.leaseMs > 0 ? m.leaseMs : this.opts.robustness * this.opts.helloIntervalMs,
          this.opts.maxLeaseMs,
        )
        let changed: boolean
        try {
          changed = this.membership.register(peer, m.topics, lease, now)
        } catch (err) {
          if (!(err instanceof LimitExceededError)) throw err
          this.reject(peer, 'member-limit')
          return
        }
        const rec = this.membership.get(peer)!
        this.send(peer, { type: 'registered', topics: [...rec.topics], leaseMs: lease })
        if (changed) this.countsChanged()
        if (m.resume) {
          // A member that failed over: offer what it may have missed while switching.
          const ids = this.buffer.idsForTopics(rec.topics, 0, now, this.opts.maxDigestIds)
          if (ids.length > 0) this.digestTo(peer, ids)
        }
        return
      }
      case 'heartbeat': {
        const known = this.membership.touch(peer, now)
        const sent = this.membership.get(peer)?.sent ?? 0
        this.send(peer, { type: 'ack', ids: [], heartbeat: m.seq, known, sent })
        return
      }
      case 'leave':
        if (this.membership.leave(peer, m.topics)) this.countsChanged()
        return
      case 'publish':
        this.onPublish(peer, m)
        return
      case 'ack':
        this.membership.touch(peer, now)
        for (const id of m.ids) this.onMemberHolds(peer, messageIdKey(id))
        return
      case 'nack': {
        const rec = this.membership.get(peer)
        if (rec === undefined) return
        if (m.recent > 0 && this.spendRepair(peer, DIGEST_COST)) {
          // Deliveries lost since its last check (one heartbeat ago, well within a lease):
          // offer what arrived on its topics over the last lease.
          const ids = this.buffer.idsForTopics(
            rec.topics,
            now - rec.leaseMs,
            now,
            this.opts.maxDigestIds,
          )
          if (ids.length > 0) this.digestTo(peer, ids)
        }
        for (const id of m.ids) {
          const h = this.buffer.get(messageIdKey(id))
          if (h === undefined || !rec.topics.has(h.topic)) continue
          if (!this.spendRepair(peer, 1)) return
          this.deliverTo(peer, h, h.quorum)
        }
        return
      }
      default:
        this.reject(peer, `unexpected-${m.type}`)
    }
  }

  private onPublish(peer: PeerKey, m: Extract<RpMessage, { type: 'publish' }>): void {
    if (!this.membership.touch(peer, this.env.now())) {
      this.reject(peer, 'not-registered', m.topic)
      this.send(peer, { type: 'ack', ids: [], heartbeat: 0, known: false, sent: 0 })
      return
    }
    const key = messageIdKey(m.id)
    // Ids are content-derived: one that does not match could shadow a real message.
    if (key !== messageIdKey(contentMessageId(m.topic, m.data))) {
      this.reject(peer, 'bad-message-id', m.topic)
      return
    }
    if (this.seen.has(key, this.env.now())) {
      // A publish sent again after a failover or a lost ack: the backbone has it already.
      this.recorder.count('duplicates', m.topic, m.class)
      this.send(peer, { type: 'ack', ids: [m.id], heartbeat: 0, known: true, sent: 0 })
      return
    }
    this.inject({ ...m, key, publisher: peer })
  }

  private onMemberHolds(member: PeerKey, key: string): void {
    const flow = this.flows.get(key)
    if (flow === undefined || flow.holders.has(member)) return
    if (!this.membership.get(member)?.topics.has(flow.topic)) return
    flow.holders.add(member)
    this.addCount(flow, 1)
  }

  // ---- data path ----------------------------------------------------------------------

  /** A new message enters the backbone here (the publisher is registered with this RP). */
  private inject(m: {
    id: MessageId
    key: string
    topic: Topic
    class: ArtifactClass
    data: Uint8Array
    publisher: PeerKey
    quorum: boolean
    surplus: number
  }): number {
    const now = this.env.now()
    this.seen.add(m.key, now)
    const held = this.hold({ ...m, originRp: this.env.self, at: now, exchanged: new Set() })
    const flow = this.newFlow(held, undefined)
    if (this.membership.get(m.publisher)?.topics.has(m.topic)) {
      flow.holders.add(m.publisher)
      flow.count = 1
    }
    // The backbone first: its paths are the long ones.
    const forwarded = this.forward(held, undefined)
    const local = this.deliverLocal(held, m.publisher, undefined)
    // With no other RP to hold it, this RP's word is all there is; ingress is best effort.
    if (forwarded === 0 || m.class === 'ingress') this.ackPublisher(flow)
    this.checkQuorum(flow)
    return local + forwarded
  }

  private fromRp(peer: PeerKey, m: RpMessage): void {
    const now = this.env.now()
    switch (m.type) {
      case 'hello':
        this.onHello(peer, m)
        return
      case 'data': {
        const key = messageIdKey(m.id)
        if (!this.seen.add(key, now)) {
          if (m.class === 'consensus') this.neighbour(peer).dataReceived++
          this.buffer.exchanged(key, peer)
          this.duplicate(m, peer, now)
          return
        }
        if (m.class === 'consensus') this.neighbour(peer).dataReceived++
        const held = this.hold({ ...m, key, at: now, exchanged: new Set([peer]) })
        const flow = this.newFlow(held, peer)
        this.forward(held, peer)
        this.deliverLocal(held, undefined, peer)
        // The first report tells the parent (and so the origin) that one more RP holds it.
        this.queueReport(flow, 0)
        return
      }
      case 'delivered':
        for (const c of m.counts) {
          const flow = this.flows.get(messageIdKey(c.id))
          if (flow === undefined) continue
          if (flow.parent === undefined) this.ackPublisher(flow)
          if (c.count > 0) this.addCount(flow, c.count)
        }
        return
      case 'digest': {
        const missing: MessageId[] = []
        for (const id of m.ids) {
          const key = messageIdKey(id)
          if (this.seen.has(key, now)) this.buffer.exchanged(key, peer)
          else {
            missing.push(id)
            if (this.wanted.size < this.opts.maxDigestIds)
              this.wanted.set(key, { from: peer, tries: 0 })
          }
        }
        const n = this.neighbours.get(peer)
        if (n !== undefined) n.recentAsked = undefined
        if (missing.length > 0) this.send(peer, { type: 'nack', ids: missing, recent: 0, upto: 0 })
        return
      }
      case 'nack': {
        const n = this.neighbours.get(peer)
        if (m.recent > 0 && n !== undefined && this.spendRepair(peer, DIGEST_COST)) {
          // It lost some of the Data frames (upto - recent, upto]: offer those. The log
          // holds the keys of frames (dataSent - log length, dataSent].
          const first = n.dataSent - n.sentLog.length
          const from = Math.max(0, m.upto - m.recent - first)
          const to = Math.max(0, m.upto - first)
          const ids: MessageId[] = []
          for (const k of n.sentLog.slice(from, to).slice(-this.opts.maxDigestIds)) {
            const h = this.buffer.get(k)
            if (h !== undefined) ids.push(h.id)
          }
          if (ids.length > 0) this.send(peer, { type: 'digest', ids })
        }
        for (const id of m.ids) {
          const h = this.buffer.get(messageIdKey(id))
          if (h === undefined) continue
          if (!this.spendRepair(peer, 1)) return
          this.buffer.exchanged(h.key, peer)
          this.sendData(peer, h, encodeRpMessage(dataFrame(h)))
        }
        return
      }
      default:
        this.reject(peer, `unexpected-${m.type}`)
    }
  }

  private hold(h: HeldMessage): HeldMessage {
    if (h.class === 'consensus') this.buffer.add(h, h.at)
    return h
  }

  private newFlow(h: HeldMessage, parent: PeerKey | undefined): Flow {
    const flow: Flow = {
      key: h.key,
      id: h.id,
      topic: h.topic,
      parent,
      originRp: h.originRp,
      publisher: h.publisher,
      quorum: h.quorum,
      surplus: h.surplus,
      holders: new Set(),
      count: 0,
      acked: false,
      quorumSent: false,
    }
    // Bounded like the repair buffer: the oldest flow goes first.
    if (this.flows.size >= this.opts.repairCapacity) {
      const oldest = this.flows.keys().next()
      if (!oldest.done) this.flows.delete(oldest.value)
    }
    this.flows.set(h.key, flow)
    return flow
  }

  /** Sends the message to the local members of its topic; returns how many. */
  private deliverLocal(h: HeldMessage, except: PeerKey | undefined, from: PeerKey | undefined) {
    let n = 0
    let bytes: Uint8Array | undefined
    for (const member of this.membership.membersOf(h.topic)) {
      if (member === except) continue
      if (member === this.env.self) {
        this.deliverToSelf(h, from)
        continue
      }
      bytes ??= encodeRpMessage(deliverFrame(h, h.quorum))
      this.sendBytes(member, bytes, h.data.length)
      this.countDelivery(member, h)
      n++
    }
    return n
  }

  /** Sends a member a digest; it counts with deliveries in the member's loss check. */
  private digestTo(member: PeerKey, ids: MessageId[]): void {
    this.send(member, { type: 'digest', ids })
    const rec = this.membership.get(member)
    if (rec !== undefined) rec.sent++
  }

  private deliverTo(member: PeerKey, h: HeldMessage, quorum: boolean): void {
    this.send(member, deliverFrame(h, quorum))
    this.countDelivery(member, h)
  }

  private countDelivery(member: PeerKey, h: HeldMessage): void {
    const rec = h.class === 'consensus' ? this.membership.get(member) : undefined
    if (rec !== undefined) rec.sent++
  }

  private deliverToSelf(h: HeldMessage, from: PeerKey | undefined): void {
    const artifact: Artifact = {
      id: h.id,
      topic: h.topic,
      data: h.data,
      class: h.class,
      from,
      origin: h.publisher,
      receivedAt: this.env.now(),
    }
    const validator = this.validators.get(h.topic)
    const done = (v: ValidationResult) => {
      if (v !== 'accept') {
        this.recorder.count(v === 'reject' ? 'rejected' : 'ignored', h.topic, h.class)
        return
      }
      this.recorder.count('delivered', h.topic, h.class, h.data.length)
      this.events.emit('artifact', artifact)
      this.onMemberHolds(this.env.self, h.key)
    }
    const verdict = validator === undefined ? 'accept' : validator(artifact)
    if (verdict instanceof Promise) {
      verdict.then(done, (err) => {
        this.log.error('validator of %s threw: %e', h.topic, err)
        done('ignore')
      })
    } else done(verdict)
  }

  /** Sends the message to every live next hop of its tree but `except`; returns how many. */
  private forward(h: HeldMessage, except: PeerKey | undefined): number {
    let n = 0
    let bytes: Uint8Array | undefined
    for (const peer of this.nextHops(h.originRp)) {
      if (peer === except) continue
      bytes ??= encodeRpMessage(dataFrame(h))
      this.sendData(peer, h, bytes)
      this.buffer.exchanged(h.key, peer)
      n++
    }
    return n
  }

  /** Sends a Data frame, counting consensus ones for the receiver's loss check. */
  private sendData(peer: PeerKey, h: HeldMessage, bytes: Uint8Array): void {
    this.sendBytes(peer, bytes, h.data.length)
    if (h.class !== 'consensus') return
    const n = this.neighbour(peer)
    n.dataSent++
    n.sentLog.push(h.key)
    if (n.sentLog.length > 2 * this.opts.maxDigestIds) n.sentLog.splice(0, this.opts.maxDigestIds)
  }

  /** Where a message from `originRp`'s members goes from here: its tree's next hops. */
  private nextHops(originRp: PeerKey): PeerKey[] {
    if (this.treeKind === 'source') {
      const parents = this.lsdb.sourceTree(originRp)
      // An origin this RP cannot place (not in its view yet): the shared tree still spans.
      if (parents.has(this.env.self)) {
        return sourceTreeChildren(parents, this.env.self).filter((p) => this.isLive(p))
      }
    }
    return this.liveTreeNeighbours()
  }

  private liveTreeNeighbours(): PeerKey[] {
    return treeNeighbours(this.lsdb.backbone(), this.env.self).filter(
      (p) => this.neighbours.get(p)?.heard === true,
    )
  }

  // ---- delivered counts and quorum ------------------------------------------------------

  private addCount(flow: Flow, n: number): void {
    if (flow.parent === undefined) {
      flow.count += n
      this.checkQuorum(flow)
    } else {
      this.queueReport(flow, n)
    }
  }

  private queueReport(flow: Flow, n: number): void {
    const parent = flow.parent!
    let q = this.reports.get(parent)
    if (q === undefined) {
      q = new Map()
      this.reports.set(parent, q)
    }
    q.set(flow.key, (q.get(flow.key) ?? 0) + n)
    if (this.reportScheduled) return
    this.reportScheduled = true
    this.later(this.opts.reportDelayMs, () => {
      this.reportScheduled = false
      this.flushReports()
    })
  }

  private flushReports(): void {
    for (const [parent, q] of this.reports) {
      // A parent that went away: report straight to the origin RP when it is a neighbour.
      const byTarget = new Map<PeerKey, Array<{ id: MessageId; count: number }>>()
      for (const [key, count] of q) {
        const flow = this.flows.get(key)
        if (flow === undefined) continue
        const target = this.isLive(parent) ? parent : flow.originRp
        if (!this.isLive(target)) continue
        let list = byTarget.get(target)
        if (list === undefined) {
          list = []
          byTarget.set(target, list)
        }
        list.push({ id: flow.id, count })
      }
      for (const [target, counts] of byTarget) {
        for (let i = 0; i < counts.length; i += this.limits.maxIds) {
          this.send(target, { type: 'delivered', counts: counts.slice(i, i + this.limits.maxIds) })
        }
      }
    }
    this.reports.clear()
  }

  private ackPublisher(flow: Flow): void {
    if (flow.acked) return
    flow.acked = true
    if (flow.publisher !== this.env.self) {
      this.send(flow.publisher, { type: 'ack', ids: [flow.id], heartbeat: 0, known: true, sent: 0 })
    }
  }

  private checkQuorum(flow: Flow): void {
    if (!flow.quorum || flow.quorumSent) return
    const members = this.lsdb.totalMembers(flow.topic)
    if (members === 0 || flow.count < quorumThreshold(members, flow.surplus)) return
    flow.quorumSent = true
    if (flow.publisher === this.env.self) {
      this.events.emit('quorum', { id: flow.id, topic: flow.topic, count: flow.count, members })
    } else {
      this.send(flow.publisher, { type: 'quorum', id: flow.id, count: flow.count, members })
    }
  }

  // ---- backbone: hellos, link states, tree, repair ----------------------------------------

  /**
   * Charges `units` of repair work (a message sent again, or a digest) to `peer`; false,
   * and a penalty, once it asked for more than `maxRepairsPerInterval` this interval: a
   * NACK is small and its answer large, so it must not become an amplifier.
   */
  private spendRepair(peer: PeerKey, units: number): boolean {
    const spent = (this.repairSpent.get(peer) ?? 0) + units
    if (spent > this.opts.maxRepairsPerInterval) {
      if (spent - units <= this.opts.maxRepairsPerInterval) this.reject(peer, 'repair-flood')
      this.repairSpent.set(peer, spent)
      return false
    }
    this.repairSpent.set(peer, spent)
    return true
  }

  private tick(): void {
    const now = this.env.now()
    this.repairSpent.clear()
    const expired = this.membership.expire(now)
    if (expired.length > 0) {
      this.log('%s expired members %o', this.env.self, expired)
      this.countsChanged()
    }
    const deadline = this.opts.robustness * this.opts.helloIntervalMs
    for (const [peer, n] of this.neighbours) {
      if (n.heard && now - n.lastHeard > deadline) this.neighbourDown(peer)
    }
    for (const peer of this.connected) {
      if (this.isRp(peer)) this.sendHello(peer, this.lsdb.pendingFor(peer, this.env.now()))
    }
    this.repair(this.liveTreeNeighbours())
    this.nackAgain(now)
  }

  /** Asks again for what was NACKed or requested an interval ago and did not come. */
  private nackAgain(now: number): void {
    const again = new Map<PeerKey, MessageId[]>()
    for (const [key, w] of this.wanted) {
      if (this.seen.has(key, now) || w.tries >= this.opts.robustness || !this.isLive(w.from)) {
        this.wanted.delete(key)
        continue
      }
      w.tries++
      const list = again.get(w.from)
      if (list === undefined) again.set(w.from, [messageIdFromKey(key)])
      else list.push(messageIdFromKey(key))
    }
    for (const [peer, ids] of again) this.send(peer, { type: 'nack', ids, recent: 0, upto: 0 })
    for (const [peer, n] of this.neighbours) {
      const r = n.recentAsked
      if (r === undefined) continue
      if (++r.tries > this.opts.robustness) n.recentAsked = undefined
      else this.send(peer, { type: 'nack', ids: [], recent: r.recent, upto: r.upto })
    }
  }

  private sendHello(peer: PeerKey, states: RpLinkState[]): void {
    const n = this.neighbour(peer)
    const now = this.env.now()
    const probe = ++this.probeSeq
    n.probes.set(probe, now)
    // Only the last few probes can still be echoed.
    if (n.probes.size > 8) n.probes.delete(n.probes.keys().next().value!)
    this.send(peer, {
      type: 'hello',
      probe,
      echo: n.lastProbe?.value ?? 0,
      echoDelay: n.lastProbe === undefined ? 0 : now - n.lastProbe.at,
      states,
      sent: n.dataSent,
    })
  }

  private onHello(peer: PeerKey, m: Extract<RpMessage, { type: 'hello' }>): void {
    const now = this.env.now()
    const n = this.neighbour(peer)
    const first = !n.heard
    if (first) this.lsdb.neighbourUp(peer, now)
    n.heard = true
    n.lastHeard = now
    n.lastProbe = { value: m.probe, at: now }
    let viewChanged = false
    const sentAt = m.echo > 0 ? n.probes.get(m.echo) : undefined
    if (sentAt !== undefined) {
      n.probes.delete(m.echo)
      const sample = Math.max(0.001, now - sentAt - m.echoDelay)
      // TCP's smoothing (RFC 6298): one sample moves the estimate by an eighth.
      n.rttMs = n.rttMs === undefined ? sample : 0.875 * n.rttMs + 0.125 * sample
      viewChanged = this.updateLinks()
    }
    for (const s of m.states) if (this.lsdb.accept(peer, s, now)) viewChanged = true
    // Frames are ordered: fewer Data frames received than it sent means some were lost.
    // The lost ones are among those sent since the previous hello.
    if (m.sent > n.dataReceived) {
      n.recentAsked = { recent: m.sent - n.sentChecked, upto: m.sent, tries: 0 }
      this.send(peer, { type: 'nack', ids: [], recent: n.recentAsked.recent, upto: m.sent })
      n.dataReceived = m.sent
    }
    n.sentChecked = m.sent
    if (first) this.sendHello(peer, this.lsdb.pendingFor(peer, this.env.now()))
    if (viewChanged) this.viewChanged()
  }

  private neighbour(peer: PeerKey): Neighbour {
    let n = this.neighbours.get(peer)
    if (n === undefined) {
      n = {
        heard: false,
        lastHeard: 0,
        rttMs: undefined,
        probes: new Map(),
        lastProbe: undefined,
        dataSent: 0,
        sentLog: [],
        dataReceived: 0,
        sentChecked: 0,
        recentAsked: undefined,
      }
      this.neighbours.set(peer, n)
    }
    return n
  }

  private neighbourDown(peer: PeerKey): void {
    if (!this.neighbours.delete(peer)) return
    this.log('%s lost backbone neighbour %s', this.env.self, peer)
    this.lsdb.forgetNeighbour(peer)
    this.buffer.forgetPeer(peer)
    if (this.updateLinks()) this.viewChanged()
  }

  private updateLinks(): boolean {
    const links = new Map<PeerKey, number>()
    for (const [peer, n] of this.neighbours) {
      if (n.heard && n.rttMs !== undefined) {
        links.set(peer, Math.max(1, Math.round(n.rttMs * 1000)))
      }
    }
    return this.lsdb.setLinks(links, this.env.now())
  }

  private countsChanged(): void {
    if (this.lsdb.setCounts(this.membership.allCounts(), this.env.now())) this.scheduleLsa()
  }

  /** The view changed: flood it, and look for new tree neighbours once it settles. */
  private viewChanged(): void {
    this.scheduleLsa()
  }

  /** Offers every new tree neighbour what it may lack (the tree moved: some edge is new). */
  private checkTree(): void {
    const now = new Set(this.liveTreeNeighbours())
    const added = [...now].filter((p) => !this.lastTree.has(p))
    this.lastTree = now
    if (added.length > 0) {
      this.log('%s tree neighbours now %o', this.env.self, [...now])
      this.repair(added)
    }
  }

  /** Link states travel in hellos; a change triggers an early hello, coalesced. */
  private scheduleLsa(): void {
    if (this.lsaScheduled || !this.running) return
    this.lsaScheduled = true
    this.later(this.opts.lsaDelayMs, () => {
      this.lsaScheduled = false
      for (const [peer, n] of this.neighbours) {
        if (!n.heard) continue
        const states = this.lsdb.pendingFor(peer, this.env.now())
        if (states.length > 0) this.sendHello(peer, states)
      }
      this.checkTree()
    })
  }

  /** Offers `peers` the held messages they are not known to hold. */
  private repair(peers: readonly PeerKey[]): void {
    const now = this.env.now()
    for (const peer of peers) {
      const ids = this.buffer.digestFor(peer, now, this.opts.maxDigestIds)
      if (ids.length > 0) this.send(peer, { type: 'digest', ids })
    }
  }

  // ---- plumbing -------------------------------------------------------------------------

  private isRp(peer: PeerKey): boolean {
    return this.backboneSet.has(peer) && peer !== this.env.self
  }

  private isLive(peer: PeerKey): boolean {
    return this.neighbours.get(peer)?.heard === true
  }
}

function dataFrame(h: HeldMessage): RpMessage {
  return {
    type: 'data',
    id: h.id,
    topic: h.topic,
    class: h.class,
    data: h.data,
    originRp: h.originRp,
    publisher: h.publisher,
    quorum: h.quorum,
    surplus: h.surplus,
  }
}

function deliverFrame(h: HeldMessage, quorum: boolean): RpMessage {
  return {
    type: 'deliver',
    id: h.id,
    topic: h.topic,
    class: h.class,
    data: h.data,
    publisher: h.publisher,
    quorum,
  }
}
