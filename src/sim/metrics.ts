import { type Distribution, distribution } from '../common/distribution.ts'
import { type MessageId, messageIdKey } from '../common/message-id.ts'
import type { SimCore, Simulation } from './network.ts'

/** What {@link DeliveryTracker.summary} reports over every tracked message. */
export interface DeliverySummary {
  /** Messages tracked. */
  messages: number
  /** Deliveries over expected deliveries, all messages pooled (1 = everyone got everything). */
  deliveryRatio: number
  /** The worst single message's delivery ratio. */
  minDeliveryRatio: number
  /** Time from publish to first arrival at each recipient, in ms. */
  latencyMs: Distribution
  /** Copies beyond the first, per recipient per message. */
  duplicates: Distribution
  /**
   * Time from a recipient's first copy to its first duplicate, in ms, over the (recipient,
   * message) pairs that saw a duplicate: how far apart a node's mesh peers relay (seed 002
   * measured a median of 73 ms for beacon blocks on Ethereum's mainnet).
   */
  firstDuplicateDelayMs: Distribution
  /** How many (recipient, message) pairs saw 0, 1, 2, ... duplicates (last bucket: that many or more). */
  duplicateHistogram: number[]
  /** Frames handed to the network per message. */
  framesPerMessage: number
  /** Bytes on the wire per message (network view, including frame overhead). */
  bytesPerMessage: number
  /** Payload bytes sent per message (the cores' view). */
  payloadBytesPerMessage: number
  /** Control bytes sent per message (the cores' view: headers, ids, control messages). */
  controlBytesPerMessage: number
  /** Control messages sent, by kind, per message. */
  controlPerMessage: Record<string, number>
}

interface Tracked {
  publishedAt: number
  origin: number
  expected: Uint8Array
  expectedCount: number
  arrivals: Float64Array
  duplicates: Uint16Array
  firstDuplicates: Float64Array
}

/** Number of buckets in {@link DeliverySummary.duplicateHistogram}. */
export const DUPLICATE_BUCKETS = 16

/**
 * Records, for each published message, when it reached each node and how many extra
 * copies each node received, from the cores' `artifact` and `duplicate` events.
 */
export class DeliveryTracker<C extends SimCore = SimCore> {
  private readonly sim: Simulation<C>
  private readonly tracked = new Map<string, Tracked>()
  /**
   * The first exception one of this tracker's listeners threw. The cores' emitters log and
   * swallow listener exceptions (an application bug must not break a core mid-frame), so
   * without this a figure could silently miss events; {@link summary} throws instead.
   */
  private listenerError: unknown

  constructor(sim: Simulation<C>) {
    this.sim = sim
    sim.observe((i, core) => {
      core.on('artifact', (a) => {
        try {
          this.arrived(i, messageIdKey(a.id), a.receivedAt)
        } catch (err) {
          this.listenerError ??= err
        }
      })
      core.on('duplicate', (d) => {
        try {
          this.duplicated(i, messageIdKey(d.id), d.receivedAt)
        } catch (err) {
          this.listenerError ??= err
        }
      })
    })
  }

  /**
   * Tracks message `id`, published by `origin` at `publishedAt`, expected at `recipients`
   * (node indices; the origin is never counted). May be called after arrivals were seen:
   * `publish` resolves in a microtask, after the simulator has moved on.
   */
  published(
    id: MessageId,
    origin: number,
    publishedAt: number,
    recipients: Iterable<number>,
  ): void {
    const t = this.record(messageIdKey(id))
    t.publishedAt = publishedAt
    t.origin = origin
    t.expectedCount = 0
    for (const r of recipients) {
      if (r !== origin && t.expected[r] === 0) {
        t.expected[r] = 1
        t.expectedCount++
      }
    }
  }

  /** Arrival time of message `id` at node `i`, or NaN if it has not arrived. */
  arrivalTime(id: MessageId, i: number): number {
    return this.tracked.get(messageIdKey(id))?.arrivals[i] ?? Number.NaN
  }

  /** Duplicates of message `id` received by node `i`. */
  duplicatesAt(id: MessageId, i: number): number {
    return this.tracked.get(messageIdKey(id))?.duplicates[i] ?? 0
  }

  /** Pools every tracked message into one summary; traffic comes from the network and cores. */
  summary(): DeliverySummary {
    if (this.listenerError !== undefined) {
      throw new Error('DeliveryTracker: an event listener threw, so some events were not counted', {
        cause: this.listenerError,
      })
    }
    // Each sample array is filled in a pass of its own ({@link collect}), and the counts and
    // sums are kept in a separate pass and checked against them: the earlier form (arrays
    // grown by push, then typed arrays written side by side in one loop) came out mixed up
    // now and then on Node 24 under load (one distribution held the other's samples), an
    // effect of the optimizing compiler that no figure may silently carry.
    let n = 0
    for (const t of this.tracked.values()) {
      if (Number.isNaN(t.publishedAt)) continue
      for (let i = 0; i < t.expected.length; i++) {
        if (t.expected[i] !== 0 && !Number.isNaN(t.arrivals[i])) n++
      }
    }
    const latencies = this.collect(n, (t, i) => t.arrivals[i] - t.publishedAt)
    const dups = this.collect(n, (t, i) => t.duplicates[i])
    let firstDupCount = 0
    const firstDupDelays = new Float64Array(n)
    let latencySum = 0
    let dupSum = 0
    const histogram = new Array<number>(DUPLICATE_BUCKETS).fill(0)
    let delivered = 0
    let expected = 0
    let minRatio = 1
    let messages = 0
    for (const t of this.tracked.values()) {
      if (Number.isNaN(t.publishedAt)) continue
      messages++
      let got = 0
      for (let i = 0; i < t.expected.length; i++) {
        if (t.expected[i] === 0) continue
        const at = t.arrivals[i]
        if (Number.isNaN(at)) continue
        const d = t.duplicates[i]
        latencySum += at - t.publishedAt
        dupSum += d
        got++
        histogram[Math.min(d, DUPLICATE_BUCKETS - 1)]++
        const dupAt = t.firstDuplicates[i]
        if (!Number.isNaN(dupAt)) firstDupDelays[firstDupCount++] = Math.max(0, dupAt - at)
      }
      delivered += got
      expected += t.expectedCount
      if (t.expectedCount > 0) minRatio = Math.min(minRatio, got / t.expectedCount)
    }
    const latencyMs = distribution(latencies)
    const duplicates = distribution(dups)
    checkSamples('latency', latencyMs, delivered, latencySum)
    checkSamples('duplicates', duplicates, delivered, dupSum)
    const m = Math.max(1, messages)
    let payload = 0
    let control = 0
    const controlKinds: Record<string, number> = {}
    for (let i = 0; i < this.sim.size; i++) {
      const s = this.sim.core(i).stats()
      payload += s.sent.payloadBytes
      control += s.sent.controlBytes
      for (const [kind, c] of Object.entries(s.control)) {
        controlKinds[kind] = (controlKinds[kind] ?? 0) + c.sent
      }
    }
    for (const kind of Object.keys(controlKinds)) controlKinds[kind] /= m
    return {
      messages,
      deliveryRatio: expected === 0 ? 1 : delivered / expected,
      minDeliveryRatio: minRatio,
      latencyMs,
      duplicates,
      firstDuplicateDelayMs: distribution(firstDupDelays.subarray(0, firstDupCount)),
      duplicateHistogram: histogram,
      framesPerMessage: this.sim.traffic.framesSent / m,
      bytesPerMessage: this.sim.traffic.bytesSent / m,
      payloadBytesPerMessage: payload / m,
      controlBytesPerMessage: control / m,
      controlPerMessage: controlKinds,
    }
  }

  /** One sample per delivery (a published message at an expected node it reached; `n` of them). */
  private collect(n: number, value: (t: Tracked, i: number) => number): Float64Array {
    const out = new Float64Array(n)
    let k = 0
    for (const t of this.tracked.values()) {
      if (Number.isNaN(t.publishedAt)) continue
      for (let i = 0; i < t.expected.length; i++) {
        if (t.expected[i] !== 0 && !Number.isNaN(t.arrivals[i])) out[k++] = value(t, i)
      }
    }
    return out
  }

  /** Node `i` accepted the message keyed `key` at `at` (protected: a test makes it throw). */
  protected arrived(i: number, key: string, at: number): void {
    const t = this.record(key)
    if (Number.isNaN(t.arrivals[i])) t.arrivals[i] = at
  }

  /** Node `i` received another copy of the message keyed `key` at `at`. */
  protected duplicated(i: number, key: string, at: number): void {
    const t = this.record(key)
    if (t.duplicates[i] < 65535) t.duplicates[i]++
    if (Number.isNaN(t.firstDuplicates[i])) t.firstDuplicates[i] = at
  }

  private record(key: string): Tracked {
    let t = this.tracked.get(key)
    if (t === undefined) {
      const n = this.sim.size
      t = {
        publishedAt: Number.NaN,
        origin: -1,
        expected: new Uint8Array(n),
        expectedCount: 0,
        arrivals: new Float64Array(n).fill(Number.NaN),
        duplicates: new Uint16Array(n),
        firstDuplicates: new Float64Array(n).fill(Number.NaN),
      }
      this.tracked.set(key, t)
    }
    return t
  }
}

/** Throws when a distribution's samples are not those counted and summed beside them. */
function checkSamples(what: string, d: Distribution, count: number, sum: number): void {
  const off = Math.abs(d.mean * d.count - sum)
  if (d.count !== count || off > 1e-6 * Math.max(1, Math.abs(sum))) {
    throw new Error(
      `DeliveryTracker: the ${what} samples (${d.count}, sum ${d.mean * d.count}) are not those counted (${count}, sum ${sum})`,
    )
  }
}
