import type { PeerKey, Topic } from '../../common/artifact.ts'
import type { TimerHandle } from '../../common/env.ts'
import {
  InvalidParametersError,
  LimitExceededError,
  MessageTooLargeError,
  NotSubscribedError,
} from '../../common/errors.ts'
import type { DatagramAuthenticator } from './datagram-auth.ts'
import {
  DATAGRAM_OVERHEAD,
  DatagramType,
  type NackEntry,
  PROBE_NONCE_BYTES,
} from './datagram-codec.ts'
import { fragmentLayout } from './fragments.ts'
import { groupForTopic, type MulticastGroup } from './group-address.ts'
import type { MulticastClock } from './multicast-env.ts'
import { Pacer } from './pacer.ts'

/** What the sender core does to the outside world. */
export interface MulticastSenderEnv extends MulticastClock {
  /** Sends one datagram to the topic's group on the LAN. */
  multicast(group: MulticastGroup, datagram: Uint8Array): void
  /** Sends one datagram to one member by unicast (repairs, unicast fallback). */
  unicast(member: PeerKey, datagram: Uint8Array): void
  /** Tells a member that these sequence numbers left the repair buffer (it reports them lost). */
  gone(member: PeerKey, topic: Topic, seqs: number[]): void
}

/** Sender options. */
export interface MulticastSenderOptions {
  /** Largest datagram (IP MTU − 28 bytes of IP and UDP headers). Default 1472. */
  maxDatagramBytes?: number
  /** Most fragments per message; larger messages throw {@link MessageTooLargeError}. Default 64. */
  maxFragments?: number
  /** Messages kept per topic for repair. Default 1024. */
  repairMessages?: number
  /** Bytes kept per topic for repair. Default 16 MiB. */
  repairBytes?: number
  /** Average sending rate. Default 12.5 MB/s (100 Mbit/s). */
  rateBytesPerSecond?: number
  /** Largest burst. Default 64 KiB. */
  burstBytes?: number
  /** Most datagrams waiting in the pacer. Default 8192. */
  maxQueuedDatagrams?: number
  /** First heartbeat after the last message; doubles while idle. Default 50 ms. */
  heartbeatMs?: number
  /** Idle heartbeat interval. Default 1000 ms. */
  maxHeartbeatMs?: number
  /** Repair and probe datagrams one member may cause per second. Default 2000. */
  memberBudgetPerSecond?: number
  /** Members tracked for budgets and unicast fallback. Default 4096. */
  maxMembers?: number
  /**
   * Probe requests of a topic arriving within this window share one probe datagram (its
   * payload lists their nonces), so members joining together cost the LAN one probe, not
   * one per member, each copied to every member. Default 20 ms.
   */
  probeCoalesceMs?: number
}

/** Sender counters. */
export interface MulticastSenderStats {
  /** Messages published. */
  messages: number
  /** Data datagrams multicast (first transmissions). */
  dataDatagrams: number
  /** Heartbeat datagrams multicast. */
  heartbeats: number
  /** Probe datagrams multicast. */
  probes: number
  /** Repair datagrams sent by unicast. */
  repairDatagrams: number
  /** Data datagrams sent by unicast to fallback members. */
  unicastFallbackDatagrams: number
  /** Sequence numbers answered with GONE. */
  gone: number
  /** NACKed fragments not served: the member was over its budget. */
  overBudget: number
  /** Bytes multicast. */
  multicastBytes: number
  /** Bytes sent by unicast. */
  unicastBytes: number
}

interface TopicState {
  readonly group: MulticastGroup
  readonly auth: DatagramAuthenticator
  nextSeq: number
  /** seq → its datagrams, oldest first (insertion order). */
  readonly held: Map<number, Uint8Array[]>
  heldBytes: number
  readonly unicastMembers: Set<PeerKey>
  heartbeat: TimerHandle | undefined
  heartbeatDelay: number
  /** Nonces of probe requests waiting for the next probe datagram. */
  probeNonces: Uint8Array[]
  probeTimer: TimerHandle | undefined
}

/**
 * The RP side of multicast delivery, sans-IO. Per topic it numbers messages (1, 2, ...),
 * cuts them into authenticated datagrams, sends them once to the group through a pacer,
 * keeps them in a bounded repair buffer, answers NACKs by unicast (or with GONE once a
 * message has left the buffer), multicasts probes and heartbeats, and sends everything by
 * unicast as well to members whose probe failed.
 */
export class MulticastSender {
  private readonly env: MulticastSenderEnv
  private readonly topics = new Map<Topic, TopicState>()
  private readonly budgets = new Map<PeerKey, { start: number; used: number }>()
  private readonly pacer: Pacer
  private readonly o: Required<MulticastSenderOptions>
  private readonly counters: MulticastSenderStats = {
    messages: 0,
    dataDatagrams: 0,
    heartbeats: 0,
    probes: 0,
    repairDatagrams: 0,
    unicastFallbackDatagrams: 0,
    gone: 0,
    overBudget: 0,
    multicastBytes: 0,
    unicastBytes: 0,
  }

  constructor(env: MulticastSenderEnv, options: MulticastSenderOptions = {}) {
    this.env = env
    this.o = {
      maxDatagramBytes: 1472,
      maxFragments: 64,
      repairMessages: 1024,
      repairBytes: 16 << 20,
      rateBytesPerSecond: 12_500_000,
      burstBytes: 64 << 10,
      maxQueuedDatagrams: 8192,
      heartbeatMs: 50,
      maxHeartbeatMs: 1000,
      memberBudgetPerSecond: 2000,
      maxMembers: 4096,
      probeCoalesceMs: 20,
      ...options,
    }
    if (this.o.maxDatagramBytes <= DATAGRAM_OVERHEAD) {
      throw new InvalidParametersError(`maxDatagramBytes must exceed ${DATAGRAM_OVERHEAD}`)
    }
    this.pacer = new Pacer(
      env,
      this.o.rateBytesPerSecond,
      this.o.burstBytes,
      this.o.maxQueuedDatagrams,
    )
  }

  /** Largest datagram sent. */
  get maxDatagramBytes(): number {
    return this.o.maxDatagramBytes
  }

  /** Most fragments per message. */
  get maxFragments(): number {
    return this.o.maxFragments
  }

  /** Largest message that fits in `maxFragments` datagrams. */
  get maxMessageBytes(): number {
    return this.o.maxFragments * (this.o.maxDatagramBytes - DATAGRAM_OVERHEAD)
  }

  /** Starts serving `topic` with `auth`; the first message gets `firstSeq`. */
  addTopic(topic: Topic, auth: DatagramAuthenticator, firstSeq = 1): MulticastGroup {
    this.removeTopic(topic)
    const group = groupForTopic(topic)
    this.topics.set(topic, {
      group,
      auth,
      nextSeq: firstSeq,
      held: new Map(),
      heldBytes: 0,
      unicastMembers: new Set(),
      heartbeat: undefined,
      heartbeatDelay: this.o.heartbeatMs,
      probeNonces: [],
      probeTimer: undefined,
    })
    return group
  }

  /** Stops serving `topic`. */
  removeTopic(topic: Topic): void {
    this.topics.get(topic)?.heartbeat?.cancel()
    this.topics.get(topic)?.probeTimer?.cancel()
    this.topics.delete(topic)
  }

  /** The sequence number the next message of `topic` gets (announced to a registering member). */
  nextSeq(topic: Topic): number {
    return this.state(topic).nextSeq
  }

  /**
   * Sends `data` to the group of `topic` (and by unicast to fallback members); returns its
   * sequence number. Throws {@link MessageTooLargeError} above {@link maxMessageBytes} (the
   * RP sends such messages over its unicast sessions) and {@link LimitExceededError} when
   * the pacer cannot take every datagram.
   */
  publish(topic: Topic, data: Uint8Array): number {
    const t = this.state(topic)
    if (data.length > this.maxMessageBytes) {
      throw new MessageTooLargeError(data.length, this.maxMessageBytes)
    }
    const layout = fragmentLayout(data.length, this.o.maxDatagramBytes - DATAGRAM_OVERHEAD)
    const copies = layout.count * (1 + t.unicastMembers.size)
    if (!this.pacer.hasRoom(copies)) {
      throw new LimitExceededError(`pacer cannot take ${copies} datagrams`)
    }
    const seq = t.nextSeq++
    const datagrams: Uint8Array[] = []
    for (let i = 0; i < layout.count; i++) {
      const offset = i * layout.size
      datagrams.push(
        t.auth.seal({
          type: DatagramType.data,
          topicTag: t.group.tag,
          seq,
          fragIndex: i,
          fragCount: layout.count,
          msgLen: data.length,
          payload: data.subarray(offset, Math.min(data.length, offset + layout.size)),
        }),
      )
    }
    this.hold(t, seq, datagrams)
    this.counters.messages++
    for (const d of datagrams) {
      this.pacer.push(() => {
        this.counters.dataDatagrams++
        return this.sendMulticast(t, d)
      })
      for (const m of t.unicastMembers) {
        this.pacer.push(() => {
          this.counters.unicastFallbackDatagrams++
          return this.sendUnicast(m, d)
        })
      }
    }
    this.scheduleHeartbeat(t, this.o.heartbeatMs)
    return seq
  }

  /** A member NACKed these fragments (through its RP session): repair by unicast, or GONE. */
  handleNack(member: PeerKey, topic: Topic, entries: readonly NackEntry[]): void {
    const t = this.topics.get(topic)
    if (t === undefined) return
    const gone: number[] = []
    for (const e of entries) {
      const held = t.held.get(e.seq)
      if (held === undefined) {
        if (e.seq < t.nextSeq) gone.push(e.seq)
        continue
      }
      const wanted = e.fragments.length === 0 ? held.map((_, i) => i) : e.fragments
      for (const i of wanted) {
        const d = held[i]
        if (d === undefined) continue
        if (!this.spend(member)) {
          this.counters.overBudget++
          continue
        }
        this.counters.repairDatagrams++
        this.sendUnicast(member, d)
      }
    }
    if (gone.length > 0) {
      this.counters.gone += gone.length
      this.env.gone(member, topic, gone)
    }
  }

  /**
   * A member asked for a probe: its nonce goes out in the topic's next probe datagram,
   * within `probeCoalesceMs` (at once when the datagram is full).
   */
  handleProbeRequest(member: PeerKey, topic: Topic, nonce: Uint8Array): void {
    const t = this.topics.get(topic)
    if (nonce.length !== PROBE_NONCE_BYTES) return
    if (t === undefined || !this.spend(member)) return
    t.probeNonces.push(nonce)
    if (t.probeNonces.length >= this.noncesPerProbe) this.sendProbe(t)
    else {
      t.probeTimer ??= this.env.setTimer(this.o.probeCoalesceMs, () => {
        t.probeTimer = undefined
        if (this.topics.get(t.group.topic) === t) this.sendProbe(t)
      })
    }
  }

  /** Nonces one probe datagram carries. */
  private get noncesPerProbe(): number {
    return Math.floor((this.o.maxDatagramBytes - DATAGRAM_OVERHEAD) / PROBE_NONCE_BYTES)
  }

  /** Multicasts one probe with the waiting nonces (dropped when the pacer is full: members retry). */
  private sendProbe(t: TopicState): void {
    t.probeTimer?.cancel()
    t.probeTimer = undefined
    const nonces = t.probeNonces.splice(0)
    if (nonces.length === 0 || !this.pacer.hasRoom(1)) return
    const payload = new Uint8Array(nonces.length * PROBE_NONCE_BYTES)
    for (const [i, n] of nonces.entries()) payload.set(n, i * PROBE_NONCE_BYTES)
    const d = t.auth.seal({
      type: DatagramType.probe,
      topicTag: t.group.tag,
      seq: 0,
      fragIndex: 0,
      fragCount: 0,
      msgLen: 0,
      payload,
    })
    this.pacer.push(() => {
      this.counters.probes++
      return this.sendMulticast(t, d)
    })
  }

  /** A member's probe result: when multicast does not reach it, it gets unicast copies. */
  handleProbeResult(member: PeerKey, topic: Topic, multicastReaches: boolean): void {
    const t = this.topics.get(topic)
    if (t === undefined) return
    if (multicastReaches) t.unicastMembers.delete(member)
    else if (t.unicastMembers.size < this.o.maxMembers) t.unicastMembers.add(member)
  }

  /** A member left: stop unicasting to it. */
  memberGone(member: PeerKey): void {
    for (const t of this.topics.values()) t.unicastMembers.delete(member)
    this.budgets.delete(member)
  }

  /** Members served by unicast on `topic`. */
  unicastMembers(topic: Topic): PeerKey[] {
    return [...(this.topics.get(topic)?.unicastMembers ?? [])]
  }

  /** Messages and bytes in the repair buffer of `topic`. */
  repairBufferSize(topic: Topic): { messages: number; bytes: number } {
    const t = this.topics.get(topic)
    return { messages: t?.held.size ?? 0, bytes: t?.heldBytes ?? 0 }
  }

  /** Datagrams waiting in the pacer. */
  get queued(): number {
    return this.pacer.queued
  }

  /** A copy of the counters. */
  stats(): MulticastSenderStats {
    return { ...this.counters }
  }

  /** Cancels timers and drops what is queued. */
  stop(): void {
    for (const t of this.topics.values()) {
      t.heartbeat?.cancel()
      t.probeTimer?.cancel()
      t.probeNonces.length = 0
    }
    this.pacer.stop()
  }

  private state(topic: Topic): TopicState {
    const t = this.topics.get(topic)
    if (t === undefined) throw new NotSubscribedError(topic)
    return t
  }

  private hold(t: TopicState, seq: number, datagrams: Uint8Array[]): void {
    t.held.set(seq, datagrams)
    for (const d of datagrams) t.heldBytes += d.length
    for (const [oldSeq, old] of t.held) {
      if (t.held.size <= this.o.repairMessages && t.heldBytes <= this.o.repairBytes) break
      if (oldSeq === seq) break
      t.held.delete(oldSeq)
      for (const d of old) t.heldBytes -= d.length
    }
  }

  private spend(member: PeerKey): boolean {
    const now = this.env.now()
    let b = this.budgets.get(member)
    if (b === undefined) {
      if (this.budgets.size >= this.o.maxMembers) {
        const oldest = this.budgets.keys().next().value
        if (oldest !== undefined) this.budgets.delete(oldest)
      }
      b = { start: now, used: 0 }
      this.budgets.set(member, b)
    }
    if (now - b.start >= 1000) {
      b.start = now
      b.used = 0
    }
    if (b.used >= this.o.memberBudgetPerSecond) return false
    b.used++
    return true
  }

  private scheduleHeartbeat(t: TopicState, delay: number): void {
    t.heartbeat?.cancel()
    t.heartbeatDelay = delay
    t.heartbeat = this.env.setTimer(delay, () => {
      t.heartbeat = undefined
      if (this.topics.get(t.group.topic) !== t) return
      if (this.pacer.hasRoom(1)) {
        const d = t.auth.seal({
          type: DatagramType.heartbeat,
          topicTag: t.group.tag,
          seq: t.nextSeq - 1,
          fragIndex: 0,
          fragCount: 0,
          msgLen: 0,
          payload: new Uint8Array(0),
        })
        this.pacer.push(() => {
          this.counters.heartbeats++
          return this.sendMulticast(t, d)
        })
      }
      this.scheduleHeartbeat(t, Math.min(this.o.maxHeartbeatMs, t.heartbeatDelay * 2))
    })
  }

  private sendMulticast(t: TopicState, d: Uint8Array): number {
    this.counters.multicastBytes += d.length
    this.env.multicast(t.group, d)
    return d.length
  }

  private sendUnicast(member: PeerKey, d: Uint8Array): number {
    this.counters.unicastBytes += d.length
    this.env.unicast(member, d)
    return d.length
  }
}
