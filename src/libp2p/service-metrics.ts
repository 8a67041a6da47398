import type { Histogram, Metrics } from '@libp2p/interface'
import type { DisseminationStats } from '../common/stats.ts'

/** The libp2p driver's own counters (what happens below the core). */
export interface DriverStats {
  /** Outbound frames dropped: the peer's buffer was full, its stream failed or it was gone. */
  framesDropped: number
  /** Bytes of those dropped frames. */
  bytesDropped: number
  /** Received frames dropped because a peer sent too much before our stream to it opened. */
  earlyFramesDropped: number
}

/** Buckets of the per-frame handling time, in seconds: 10 µs to 1 s. */
export const FRAME_HANDLING_BUCKETS = [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 1]

/**
 * Turns a cumulative count into the increments libp2p's calculated counters expect: each
 * pull returns what was added since the previous one (as libp2p's own
 * `libp2p_data_transfer_bytes_total` does), and `@libp2p/prometheus-metrics` adds them up.
 */
function increments(read: () => number): () => number {
  let last = 0
  return () => {
    const now = read()
    const added = now - last
    last = now
    return added
  }
}

function groupIncrements(read: () => Record<string, number>): () => Record<string, number> {
  const last = new Map<string, number>()
  return () => {
    const added: Record<string, number> = {}
    for (const [key, now] of Object.entries(read())) {
      added[key] = now - (last.get(key) ?? 0)
      last.set(key, now)
    }
    return added
  }
}

/**
 * Registers one service's metrics with libp2p's `metrics` component, under
 * `consensus_multicast_<service>_`. Counters and gauges are pulled when metrics are
 * collected, so they cost nothing per message; counters end in `_total`.
 */
export class ServiceMetrics {
  /** The common prefix, e.g. `consensus_multicast_gossip`. */
  readonly prefix: string
  private readonly metrics: Metrics

  constructor(metrics: Metrics, service: string) {
    this.metrics = metrics
    this.prefix = `consensus_multicast_${service}`
  }

  /** A counter `<prefix>_<what>_total` read from a cumulative count. */
  counter(what: string, help: string, read: () => number): void {
    this.metrics.registerCounter(`${this.prefix}_${what}_total`, {
      help,
      calculate: increments(read),
    })
  }

  /** Counters `<prefix>_<what>_total{<label>="..."}`, one per key of `read()`. */
  counterGroup(what: string, label: string, help: string, read: () => Record<string, number>) {
    this.metrics.registerCounterGroup(`${this.prefix}_${what}_total`, {
      help,
      label,
      calculate: groupIncrements(read),
    })
  }

  /** A gauge `<prefix>_<what>`. */
  gauge(what: string, help: string, read: () => number): void {
    this.metrics.registerMetric(`${this.prefix}_${what}`, { help, calculate: read })
  }

  /** Gauges `<prefix>_<what>{<label>="..."}`, one per key of `read()`. */
  gaugeGroup(what: string, label: string, help: string, read: () => Record<string, number>) {
    this.metrics.registerMetricGroup(`${this.prefix}_${what}`, { help, label, calculate: read })
  }

  /** A histogram `<prefix>_<what>` the caller observes. */
  histogram(what: string, help: string, buckets: number[]): Histogram {
    return this.metrics.registerHistogram(`${this.prefix}_${what}`, { help, buckets })
  }
}

/**
 * Registers what every hosted core counts (from its `stats()`), the driver's counters and
 * the peer gauge; returns the histogram of the time the core takes to handle one frame.
 */
export function registerCoreMetrics(
  m: ServiceMetrics,
  stats: () => DisseminationStats,
  driver: () => DriverStats,
  peers: () => number,
): Histogram {
  m.counter('published', 'artifacts published by this node', () => stats().total.published)
  m.counter('delivered', 'distinct artifacts delivered', () => stats().total.delivered)
  m.counter('delivered_bytes', 'payload bytes delivered', () => stats().total.deliveredBytes)
  m.counter('duplicates', 'copies of artifacts already seen', () => stats().total.duplicates)
  m.counter('validation_rejected', 'artifacts the validator rejected', () => {
    return stats().total.rejected
  })
  m.counter('validation_ignored', 'artifacts the validator ignored', () => stats().total.ignored)
  m.counterGroup('rejected', 'reason', 'inputs refused as malformed or abusive', () => {
    return stats().invalid
  })
  m.counterGroup('events', 'name', 'protocol decisions worth watching', () => stats().events)
  m.counter('frames_sent', 'frames sent', () => stats().sent.frames)
  m.counter('frames_received', 'frames received', () => stats().received.frames)
  const bytes = (w: DisseminationStats['sent']) => ({
    payload: w.payloadBytes,
    control: w.controlBytes,
  })
  m.counterGroup('sent_bytes', 'kind', 'bytes sent, payload or control', () => bytes(stats().sent))
  m.counterGroup('received_bytes', 'kind', 'bytes received, payload or control', () => {
    return bytes(stats().received)
  })
  const control = (dir: 'sent' | 'received') => () =>
    Object.fromEntries(Object.entries(stats().control).map(([k, c]) => [k, c[dir]]))
  m.counterGroup('control_sent', 'kind', 'control messages sent', control('sent'))
  m.counterGroup('control_received', 'kind', 'control messages received', control('received'))
  m.counter('outbound_frames_dropped', 'frames dropped before reaching a stream', () => {
    return driver().framesDropped
  })
  m.counter('outbound_bytes_dropped', 'bytes of frames dropped before reaching a stream', () => {
    return driver().bytesDropped
  })
  m.counter('early_frames_dropped', 'frames dropped while our stream to the peer opened', () => {
    return driver().earlyFramesDropped
  })
  m.gauge('peers', 'peers with an open stream', peers)
  return m.histogram(
    'frame_handling_seconds',
    'time the core takes to handle one received frame',
    FRAME_HANDLING_BUCKETS,
  )
}
