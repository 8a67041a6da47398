import { distribution } from '../common/distribution.ts'
import { LocalCluster } from './local-cluster.ts'
import type { BrokerLimits } from './params.ts'

/** Options of {@link runBrokerDemo}. */
export interface BrokerDemoOptions {
  /** Clients (each with its own UDP socket). Default 256. */
  clients?: number
  /** Messages each client sends, one after the other. Default 4. */
  messages?: number
  /** Witness servers. Default 4. */
  servers?: number
  /** Payload bytes per message. Default 8. */
  payloadBytes?: number
  /** The broker's pool flush timeout. Default 50 ms. */
  flushTimeoutMs?: number
  /** How long the broker waits for BLS shares. Default 1,000 ms (clients share this machine's CPU). */
  shareTimeoutMs?: number
  /** Worker threads verifying submissions at the broker. Default 1. */
  authThreads?: number
  /** Decoder limits (`maxBatchEntries` is the flush size). */
  limits?: Partial<BrokerLimits>
}

/** What {@link runBrokerDemo} measured. */
export interface BrokerDemoResult {
  /** Messages submitted. */
  submitted: number
  /** Messages delivered at EVERY server (the minimum over servers). */
  delivered: number
  /** Deliveries beyond one per message at any server (0 when exactly once). */
  duplicates: number
  /** Submitted minus delivered. */
  lost: number
  /** Seconds from the first submission to the last delivery certificate. */
  seconds: number
  /** Delivered messages per second. */
  throughput: number
  /** First transmission → delivery certificate latency percentiles, in milliseconds. */
  latencyMs: { p50: number; p90: number; p99: number; max: number }
  /** Batches the broker distilled. */
  batches: number
  /** Entries that travelled as stragglers. */
  stragglers: number
  /** Submission datagrams beyond the first (client retransmissions). */
  retransmissions: number
  /** Distilled batch bytes per message, broker → one server. */
  distilledBytesPerMessage: number
  /** Submission datagram bytes per message (what a server would get without a broker). */
  undistilledBytesPerMessage: number
}

/**
 * Runs clients, a broker and witness servers on this machine over loopback (UDP and TCP)
 * with real signatures, sends `clients × messages` messages and reports throughput,
 * latency and bytes. Everything is closed before it returns.
 */
export async function runBrokerDemo(options: BrokerDemoOptions = {}): Promise<BrokerDemoResult> {
  const clients = options.clients ?? 256
  const messages = options.messages ?? 4
  const payloadBytes = options.payloadBytes ?? 8
  const cluster = await LocalCluster.start({
    clients,
    servers: options.servers ?? 4,
    limits: options.limits,
    broker: {
      flushTimeoutMs: options.flushTimeoutMs ?? 50,
      shareTimeoutMs: options.shareTimeoutMs ?? 1000,
      authThreads: options.authThreads ?? 1,
    },
    client: { retryMs: 1000, maxRetryMs: 4000 },
  })
  try {
    const perServer = cluster.servers.map(() => new Map<string, number>())
    for (const [i, s] of cluster.servers.entries()) {
      s.core.on('deliver', (d) => {
        const key = `${d.clientId}/${d.sequence}`
        perServer[i].set(key, (perServer[i].get(key) ?? 0) + 1)
      })
    }
    const latencies: number[] = []
    let transmissions = 0
    const start = performance.now()
    await Promise.all(
      cluster.clients.map(async (c, id) => {
        for (let m = 0; m < messages; m++) {
          const payload = new Uint8Array(payloadBytes)
          new DataView(payload.buffer).setUint32(0, id * messages + m, true)
          const r = await c.submit(payload)
          latencies.push(r.latencyMs)
          transmissions += r.transmissions
        }
      }),
    )
    const seconds = (performance.now() - start) / 1000
    // Let the last delivery shards reach every server's counters.
    await new Promise((r) => setTimeout(r, 50))
    const submitted = clients * messages
    const delivered = Math.min(...perServer.map((m) => m.size))
    let duplicates = 0
    for (const m of perServer) for (const n of m.values()) duplicates += n - 1
    const latency = distribution(latencies)
    const counts = cluster.broker!.core.counts()
    const undistilled = 1 + 4 + 1 + 1 + payloadBytes + 64
    return {
      submitted,
      delivered,
      duplicates,
      lost: submitted - delivered,
      seconds,
      throughput: delivered / seconds,
      latencyMs: {
        p50: latency.p50,
        p90: latency.p90,
        p99: latency.p99,
        max: latency.max,
      },
      batches: counts.batches,
      stragglers: counts.stragglers,
      retransmissions: transmissions - submitted,
      distilledBytesPerMessage: counts.batchBytes / Math.max(1, counts.certifiedEntries),
      undistilledBytesPerMessage: undistilled,
    }
  } finally {
    await cluster.close()
  }
}
