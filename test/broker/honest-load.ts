/**
 * Honest traffic for attack tests and benchmarks: every client of a cluster submits
 * distinct messages one after the other (each waits for its delivery certificate), and
 * every server's deliveries are recorded, so losses and duplicates can be counted.
 */
import type { LocalCluster } from '../../src/broker/local-cluster.ts'

/** One delivered honest message, as its client saw it. */
export interface HonestReceipt {
  /** Wall-clock milliseconds (performance.now()) when the certificate arrived. */
  at: number
  /** From first transmission to certificate. */
  latencyMs: number
}

export class HonestLoad {
  /** Receipts in arrival order. */
  readonly receipts: HonestReceipt[] = []
  /** Every payload submitted, as "clientId:payload". */
  readonly submitted: string[] = []
  /** Per server, the "clientId:payload" keys it delivered (with repeats, if any). */
  readonly deliveredBy: string[][]
  /** Submissions that were rejected (should stay empty). */
  readonly errors: Error[] = []
  private stopped = false
  private readonly loops: Promise<void>[]
  private waiters: { count: number; resolve: () => void }[] = []
  private settledWaiter?: () => void

  private constructor(cluster: LocalCluster, tag: string) {
    const dec = new TextDecoder()
    this.deliveredBy = cluster.servers.map((s) => {
      const got: string[] = []
      s.core.on('deliver', (d) => {
        got.push(`${d.clientId}:${dec.decode(d.payload)}`)
        this.settledWaiter?.()
      })
      return got
    })
    this.loops = cluster.clients.map(async (client, id) => {
      for (let k = 0; !this.stopped; k++) {
        const payload = `${tag}${k}`
        this.submitted.push(`${id}:${payload}`)
        try {
          const r = await client.submit(new TextEncoder().encode(payload))
          this.receipts.push({ at: performance.now(), latencyMs: r.latencyMs })
          this.waiters = this.waiters.filter((w) => {
            if (this.receipts.length < w.count) return true
            w.resolve()
            return false
          })
        } catch (err) {
          this.errors.push(err as Error)
          return
        }
      }
    })
  }

  /** Starts every client of `cluster` submitting messages tagged `tag`. */
  static start(cluster: LocalCluster, tag: string): HonestLoad {
    return new HonestLoad(cluster, tag)
  }

  /** Resolves once `n` more receipts than now have arrived; rejects after `timeoutMs`. */
  more(n: number, timeoutMs = 20_000): Promise<void> {
    const count = this.receipts.length + n
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`honest load: ${n} receipts not in ${timeoutMs} ms`)),
        timeoutMs,
      )
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      })
    })
  }

  /** Stops submitting new messages; resolves once every message in flight is delivered. */
  async stop(): Promise<void> {
    this.stopped = true
    await Promise.all(this.loops)
  }

  /** Resolves once every server delivered every submitted message (call after `stop`). */
  settled(timeoutMs = 20_000): Promise<void> {
    const everywhere = () => this.deliveredBy.every((got) => got.length >= this.submitted.length)
    if (everywhere()) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settledWaiter = undefined
        reject(new Error(`honest load: not every message delivered in ${timeoutMs} ms`))
      }, timeoutMs)
      this.settledWaiter = () => {
        if (!everywhere()) return
        clearTimeout(timer)
        this.settledWaiter = undefined
        resolve()
      }
    })
  }

  /** Submitted messages some server did not deliver exactly once (counted per server). */
  lost(): number {
    let lost = 0
    for (const got of this.deliveredBy) {
      const counts = new Map<string, number>()
      for (const k of got) counts.set(k, (counts.get(k) ?? 0) + 1)
      for (const k of this.submitted) if (counts.get(k) !== 1) lost++
    }
    return lost
  }
}
