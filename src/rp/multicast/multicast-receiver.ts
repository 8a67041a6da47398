import type { Topic } from '../../common/artifact.ts'
import type { TimerHandle } from '../../common/env.ts'
import { DecodeError, LimitExceededError } from '../../common/errors.ts'
import type { DatagramAuthenticator } from './datagram-auth.ts'
import {
  DATAGRAM_MAGIC,
  DATAGRAM_OVERHEAD,
  DATAGRAM_VERSION,
  type Datagram,
  type DatagramLimits,
  DatagramType,
  DEFAULT_DATAGRAM_LIMITS,
  decodeDatagram,
  type NackEntry,
  PROBE_NONCE_BYTES,
} from './datagram-codec.ts'
import { fragmentLength } from './fragments.ts'
import { groupForTopic, tagKey } from './group-address.ts'
import type { MulticastClock } from './multicast-env.ts'
import { RejectionCounter } from './rejection-counter.ts'

/** Why a message was given up. */
export type LossReason = 'gone' | 'timeout' | 'window' | 'rejected'

/** What the receiver core does to the outside world. */
export interface MulticastReceiverEnv extends MulticastClock {
  /** A complete message, exactly once per (topic, seq). */
  deliver(topic: Topic, seq: number, data: Uint8Array): void
  /**
   * Messages `first`..`last` (inclusive; usually one) given up: reported, never silently
   * skipped.
   */
  lost(topic: Topic, first: number, last: number, reason: LossReason): void
  /** Sends a NACK to the RP (over the RP session). */
  nack(topic: Topic, entries: NackEntry[]): void
  /** Asks the RP to multicast a probe with `nonce`. */
  probeRequest(topic: Topic, nonce: Uint8Array): void
  /** Tells the RP whether multicast reaches this member (false: send to me by unicast). */
  probeResult(topic: Topic, multicastReaches: boolean): void
}

/** Receiver options. */
export interface MulticastReceiverOptions {
  /** Decoder limits. */
  limits?: DatagramLimits
  /** Sequence numbers tracked past the oldest unresolved one. Default 1024. */
  window?: number
  /** Bytes held in partly reassembled messages per topic. Default 8 MiB. */
  maxReassemblyBytes?: number
  /** Topics joined at once. Default 256. */
  maxTopics?: number
  /** Wait before the first NACK (reordering), plus up to as much jitter. Default 10 ms. */
  nackDelayMs?: number
  /**
   * First NACK retry, or twice the measured NACK → repair time when that is longer; doubles
   * per attempt. Default 40 ms.
   */
  nackRetryMs?: number
  /** Largest NACK retry interval. Default 800 ms. */
  maxNackRetryMs?: number
  /** NACKs per message before it is reported lost. Default 8. */
  maxNackAttempts?: number
  /** First probe timeout; doubles per attempt. Default 200 ms. */
  probeTimeoutMs?: number
  /** Probes before falling back to unicast. Default 3. */
  probeAttempts?: number
}

/** Receiver counters. */
export interface MulticastReceiverStats {
  /** Datagrams handed to {@link MulticastReceiver.receive}. */
  datagrams: number
  /** Datagrams that passed every check. */
  accepted: number
  /** Messages delivered. */
  delivered: number
  /** Fragments or messages already held or delivered. */
  duplicates: number
  /** Messages reported lost. */
  lost: number
  /** NACKs sent. */
  nacks: number
  /** Sequence numbers asked for in NACKs (with repeats). */
  nackedSeqs: number
  /** Rejected datagrams. */
  rejected: number
}

/** Probe state of a topic. */
export type ProbeState = 'unknown' | 'probing' | 'multicast' | 'unicast'

interface Partial {
  readonly frags: (Uint8Array | undefined)[]
  have: number
  readonly msgLen: number
  /** Highest fragment index received. */
  maxIndex: number
}

interface Missing {
  attempts: number
  due: number
  /** The first NACK was put off once because the missing fragments may still be in flight. */
  deferred: boolean
  /** When the last NACK for it was sent. */
  nackedAt: number
}

interface TopicState {
  readonly topic: Topic
  readonly auth: DatagramAuthenticator
  /** Lowest sequence number not yet delivered or reported lost. */
  base: number
  /** Highest sequence number known to exist. */
  highest: number
  /** Resolved sequence numbers above `base`. */
  readonly done: Set<number>
  readonly partial: Map<number, Partial>
  partialBytes: number
  readonly missing: Map<number, Missing>
  nackTimer: TimerHandle | undefined
  nackTimerAt: number
  probe: ProbeState
  probeNonce: Uint8Array | undefined
  probeTimer: TimerHandle | undefined
  /** Smoothed NACK → repair time (0 until measured). */
  repairRtt: number
}

/**
 * The member side of multicast delivery, sans-IO. It accepts a datagram only when it
 * decodes within limits, names a joined topic, carries the topic's key id and a valid HMAC
 * under the group key (the driver has already dropped sources other than the RP); anything
 * else is counted against its source. It reassembles fragments in bounded buffers and
 * delivers each message exactly once **as soon as it is complete** (not in sequence order:
 * one lost datagram never holds back the messages behind it). Gaps, seen from later
 * sequence numbers or from heartbeats, are NACKed with exponential backoff; after
 * `maxNackAttempts`, on GONE, or when a message falls out of the window, it is reported
 * through `lost`. A probe exchange tells whether multicast reaches this member.
 */
export class MulticastReceiver {
  private readonly env: MulticastReceiverEnv
  private readonly byTag = new Map<string, TopicState>()
  private readonly byTopic = new Map<Topic, TopicState>()
  private readonly o: Required<MulticastReceiverOptions>
  /** Rejected datagrams by reason and by source. */
  readonly rejections = new RejectionCounter()
  private readonly counters: MulticastReceiverStats = {
    datagrams: 0,
    accepted: 0,
    delivered: 0,
    duplicates: 0,
    lost: 0,
    nacks: 0,
    nackedSeqs: 0,
    rejected: 0,
  }

  constructor(env: MulticastReceiverEnv, options: MulticastReceiverOptions = {}) {
    this.env = env
    this.o = {
      limits: DEFAULT_DATAGRAM_LIMITS,
      window: 1024,
      maxReassemblyBytes: 8 << 20,
      maxTopics: 256,
      nackDelayMs: 10,
      nackRetryMs: 40,
      maxNackRetryMs: 800,
      maxNackAttempts: 8,
      probeTimeoutMs: 200,
      probeAttempts: 3,
      ...options,
    }
  }

  /**
   * Joins `topic`: datagrams under `auth` are accepted from now on, and `firstSeq` (the RP's
   * next sequence number when it announced the group) is the first message expected.
   */
  join(topic: Topic, auth: DatagramAuthenticator, firstSeq: number): void {
    this.leave(topic)
    if (this.byTopic.size >= this.o.maxTopics) {
      throw new LimitExceededError(`at most ${this.o.maxTopics} topics`)
    }
    const t: TopicState = {
      topic,
      auth,
      base: firstSeq,
      highest: firstSeq - 1,
      done: new Set(),
      partial: new Map(),
      partialBytes: 0,
      missing: new Map(),
      nackTimer: undefined,
      nackTimerAt: Number.POSITIVE_INFINITY,
      probe: 'unknown',
      probeNonce: undefined,
      probeTimer: undefined,
      repairRtt: 0,
    }
    this.byTopic.set(topic, t)
    this.byTag.set(tagKey(groupForTopic(topic).tag), t)
  }

  /** Leaves `topic`, dropping its state. */
  leave(topic: Topic): void {
    const t = this.byTopic.get(topic)
    if (t === undefined) return
    t.nackTimer?.cancel()
    t.probeTimer?.cancel()
    this.byTopic.delete(topic)
    this.byTag.delete(tagKey(groupForTopic(topic).tag))
  }

  /**
   * Starts a probe of `topic`: asks the RP for a multicast probe and waits for it, retrying
   * with doubling timeouts; ends in `multicast` or, after `probeAttempts`, in `unicast`, and
   * reports the result to the RP either way.
   */
  probe(topic: Topic): void {
    const t = this.byTopic.get(topic)
    if (t === undefined) return
    t.probeTimer?.cancel()
    t.probe = 'probing'
    this.sendProbe(t, 0)
  }

  /** The probe state of `topic`. */
  probeState(topic: Topic): ProbeState {
    return this.byTopic.get(topic)?.probe ?? 'unknown'
  }

  /**
   * One datagram from `source` (multicast, or a unicast repair or fallback copy: the same
   * bytes). Never throws: bad input is counted against `source`.
   */
  receive(source: string, bytes: Uint8Array): void {
    this.counters.datagrams++
    // Most garbage fails here, without the cost of building an exception.
    if (!looksLikeDatagram(bytes, this.o.limits)) {
      this.reject(source, 'decode')
      return
    }
    let d: Datagram
    try {
      d = decodeDatagram(bytes, this.o.limits)
    } catch (err) {
      this.reject(source, err instanceof DecodeError ? 'decode' : 'internal')
      return
    }
    if (
      d.type !== DatagramType.data &&
      d.type !== DatagramType.heartbeat &&
      d.type !== DatagramType.probe
    ) {
      this.reject(source, 'direction')
      return
    }
    const t = this.byTag.get(tagKey(d.topicTag))
    if (t === undefined) {
      this.reject(source, 'topic')
      return
    }
    if (d.keyId !== t.auth.keyId) {
      this.reject(source, 'key-id')
      return
    }
    if (!t.auth.verify(d)) {
      this.reject(source, 'auth')
      return
    }
    this.counters.accepted++
    if (d.type === DatagramType.probe) this.onProbe(t, d)
    else if (d.type === DatagramType.heartbeat) this.learnHighest(t, d.seq)
    else this.onData(source, t, d)
  }

  /** The RP says these sequence numbers left its repair buffer: report them lost. */
  gone(topic: Topic, seqs: readonly number[]): void {
    const t = this.byTopic.get(topic)
    if (t === undefined) return
    for (const s of seqs) if (t.missing.has(s)) this.resolveLost(t, s, 'gone')
    this.advance(t)
  }

  /** Memory held for `topic`: tracked sequence numbers and reassembly bytes. */
  footprint(topic: Topic): {
    done: number
    partial: number
    partialBytes: number
    missing: number
  } {
    const t = this.byTopic.get(topic)
    if (t === undefined) return { done: 0, partial: 0, partialBytes: 0, missing: 0 }
    return {
      done: t.done.size,
      partial: t.partial.size,
      partialBytes: t.partialBytes,
      missing: t.missing.size,
    }
  }

  /** Sequence numbers of `topic` known to exist and not yet received, lowest first. */
  missing(topic: Topic): number[] {
    const t = this.byTopic.get(topic)
    return t === undefined ? [] : [...t.missing.keys()].sort((a, b) => a - b)
  }

  /** A copy of the counters. */
  stats(): MulticastReceiverStats {
    return { ...this.counters }
  }

  /** Cancels every timer. */
  stop(): void {
    for (const t of this.byTopic.values()) {
      t.nackTimer?.cancel()
      t.probeTimer?.cancel()
    }
  }

  private reject(source: string, reason: string): void {
    this.counters.rejected++
    this.rejections.count(source, reason)
  }

  private onProbe(t: TopicState, d: Datagram): void {
    if (t.probe !== 'probing' || t.probeNonce === undefined) return
    if (!carriesNonce(d.payload, t.probeNonce)) return
    t.probeTimer?.cancel()
    t.probeTimer = undefined
    t.probe = 'multicast'
    t.probeNonce = undefined
    this.env.probeResult(t.topic, true)
  }

  private sendProbe(t: TopicState, attempt: number): void {
    if (attempt >= this.o.probeAttempts) {
      t.probe = 'unicast'
      t.probeNonce = undefined
      this.env.probeResult(t.topic, false)
      return
    }
    const nonce = new Uint8Array(PROBE_NONCE_BYTES)
    const v = new DataView(nonce.buffer)
    v.setUint32(0, Math.floor(this.env.random() * 2 ** 32))
    v.setUint32(4, Math.floor(this.env.random() * 2 ** 32))
    t.probeNonce = nonce
    this.env.probeRequest(t.topic, nonce)
    t.probeTimer = this.env.setTimer(this.o.probeTimeoutMs * 2 ** attempt, () => {
      t.probeTimer = undefined
      if (t.probe === 'probing') this.sendProbe(t, attempt + 1)
    })
  }

  private onData(source: string, t: TopicState, d: Datagram): void {
    const seq = d.seq
    if (seq < t.base || t.done.has(seq)) {
      this.counters.duplicates++
      return
    }
    const expected = fragmentLength(d.msgLen, d.fragCount, d.fragIndex)
    if (d.payload.length !== expected || (expected === 0 && d.msgLen > 0)) {
      this.reject(source, 'fragment-length')
      return
    }
    this.learnHighest(t, seq)
    let p = t.partial.get(seq)
    if (p === undefined) {
      p = { frags: new Array(d.fragCount).fill(undefined), have: 0, msgLen: d.msgLen, maxIndex: -1 }
      t.partial.set(seq, p)
    } else if (p.frags.length !== d.fragCount || p.msgLen !== d.msgLen) {
      this.reject(source, 'fragment-mismatch')
      return
    }
    if (p.frags[d.fragIndex] !== undefined) {
      this.counters.duplicates++
      return
    }
    if (d.fragCount > 1 && t.partialBytes + d.payload.length > this.o.maxReassemblyBytes) {
      // Over the reassembly budget: drop it; the NACK will ask for it again.
      this.reject(source, 'reassembly-full')
      if (p.have === 0) t.partial.delete(seq)
      return
    }
    p.frags[d.fragIndex] = new Uint8Array(d.payload) // a copy: the driver may reuse its buffer
    p.have++
    p.maxIndex = Math.max(p.maxIndex, d.fragIndex)
    t.partialBytes += d.payload.length
    if (p.have < p.frags.length) {
      this.markMissing(t, seq, this.o.nackDelayMs)
      return
    }
    const data = new Uint8Array(p.msgLen)
    let off = 0
    for (const f of p.frags as Uint8Array[]) {
      data.set(f, off)
      off += f.length
    }
    this.dropPartial(t, seq)
    const m = t.missing.get(seq)
    if (m !== undefined && m.attempts > 0) {
      // Repaired: learn how long a repair takes, so retries do not race slow repairs.
      const sample = this.env.now() - m.nackedAt
      t.repairRtt = t.repairRtt === 0 ? sample : 0.875 * t.repairRtt + 0.125 * sample
    }
    t.missing.delete(seq)
    t.done.add(seq)
    this.counters.delivered++
    this.advance(t)
    this.env.deliver(t.topic, seq, data)
  }

  /** Learns that `seq` exists: every unknown sequence number up to it becomes missing. */
  private learnHighest(t: TopicState, seq: number): void {
    if (seq <= t.highest) return
    // Keep the window: what would fall out of it is reported lost.
    const floor = seq - this.o.window + 1
    if (floor > t.base) {
      for (let s = t.base; s <= Math.min(t.highest, floor - 1); s++) {
        if (!t.done.has(s)) this.resolveLost(t, s, 'window')
        t.done.delete(s)
      }
      // Never seen at all: one report for the whole span.
      const untracked = Math.max(t.base, t.highest + 1)
      if (untracked <= floor - 1) {
        this.counters.lost += floor - untracked
        this.env.lost(t.topic, untracked, floor - 1, 'window')
      }
      t.base = floor
    }
    const from = Math.max(t.highest + 1, t.base)
    t.highest = seq
    for (let s = from; s <= seq; s++) this.markMissing(t, s, this.o.nackDelayMs)
    this.advance(t)
  }

  private markMissing(t: TopicState, seq: number, delay: number): void {
    if (t.missing.has(seq)) return
    const due = this.env.now() + delay + this.env.random() * delay
    t.missing.set(seq, { attempts: 0, due, deferred: false, nackedAt: 0 })
    this.armNack(t, due)
  }

  private armNack(t: TopicState, at: number): void {
    if (t.nackTimer !== undefined && t.nackTimerAt <= at) return
    t.nackTimer?.cancel()
    t.nackTimerAt = at
    t.nackTimer = this.env.setTimer(Math.max(0, at - this.env.now()), () => {
      t.nackTimer = undefined
      t.nackTimerAt = Number.POSITIVE_INFINITY
      this.onNackTimer(t)
    })
  }

  private onNackTimer(t: TopicState): void {
    if (this.byTopic.get(t.topic) !== t) return
    const now = this.env.now()
    const entries: NackEntry[] = []
    let next = Number.POSITIVE_INFINITY
    for (const [seq, m] of t.missing) {
      if (m.due > now || entries.length >= this.o.limits.maxNackEntries) {
        next = Math.min(next, Math.max(m.due, now + 1))
        continue
      }
      if (m.attempts >= this.o.maxNackAttempts) {
        this.resolveLost(t, seq, 'timeout')
        continue
      }
      const p = t.partial.get(seq)
      const fragments: number[] = []
      if (p !== undefined)
        for (let i = 0; i < p.frags.length; i++) if (p.frags[i] === undefined) fragments.push(i)
      entries.push({ seq, fragments })
      const first = Math.max(this.o.nackRetryMs, 2 * t.repairRtt)
      const backoff = Math.min(this.o.maxNackRetryMs, first * 2 ** m.attempts)
      m.attempts++
      m.nackedAt = now
      m.due = now + backoff * (1 + 0.25 * this.env.random())
      next = Math.min(next, m.due)
    }
    this.advance(t)
    if (entries.length > 0) {
      this.counters.nacks++
      this.counters.nackedSeqs += entries.length
      this.env.nack(t.topic, entries)
    }
    if (next !== Number.POSITIVE_INFINITY) this.armNack(t, next)
  }

  private resolveLost(t: TopicState, seq: number, reason: LossReason): void {
    if (seq < t.base || t.done.has(seq)) return
    this.dropPartial(t, seq)
    t.missing.delete(seq)
    t.done.add(seq)
    this.counters.lost++
    this.env.lost(t.topic, seq, seq, reason)
  }

  private dropPartial(t: TopicState, seq: number): void {
    const p = t.partial.get(seq)
    if (p === undefined) return
    for (const f of p.frags) if (f !== undefined) t.partialBytes -= f.length
    t.partial.delete(seq)
  }

  private advance(t: TopicState): void {
    while (t.done.has(t.base)) {
      t.done.delete(t.base)
      t.base++
    }
  }
}

/** The cheap checks of {@link decodeDatagram}: size, magic and version. */
function looksLikeDatagram(bytes: Uint8Array, limits: DatagramLimits): boolean {
  return (
    bytes.length >= DATAGRAM_OVERHEAD &&
    bytes.length <= limits.maxDatagramBytes &&
    bytes[0] === DATAGRAM_MAGIC &&
    bytes[1] >> 4 === DATAGRAM_VERSION
  )
}

/** True when a probe's payload (8-byte nonces one after another) lists `nonce`. */
function carriesNonce(payload: Uint8Array, nonce: Uint8Array): boolean {
  const n = nonce.length
  if (n === 0 || payload.length % n !== 0) return false
  const want = Buffer.from(nonce)
  for (let at = 0; at < payload.length; at += n) {
    if (want.equals(payload.subarray(at, at + n))) return true
  }
  return false
}
