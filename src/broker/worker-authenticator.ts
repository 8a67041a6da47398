import { Worker } from 'node:worker_threads'
import { InvalidParametersError } from '../common/errors.ts'
import type { SubmissionAuthenticator } from './authenticator.ts'
import type { Directory } from './directory.ts'
import { type BrokerLimits, brokerLimits } from './params.ts'
import { encodeSubmission, type Submission } from './wire.ts'

interface Job {
  resolve: (v: boolean[]) => void
  reject: (e: Error) => void
}

/**
 * Verifies submission signatures in worker threads (node:crypto in each), spreading bursts
 * round-robin, so the thread that receives datagrams never stalls on ed25519. The
 * directory's keys are copied to the workers as it grows.
 */
export class WorkerAuthenticator implements SubmissionAuthenticator {
  private readonly workers: Worker[]
  private readonly directory: Directory
  private readonly limits: BrokerLimits
  private readonly jobs = new Map<number, Job>()
  private keysSent = 0
  private readyAcks = new Map<number, number>()
  private readyWaiters: { keys: number; resolve: () => void }[] = []
  private nextJob = 0
  private nextWorker = 0

  constructor(directory: Directory, threads: number, limits?: Partial<BrokerLimits>) {
    if (!Number.isInteger(threads) || threads < 1) {
      throw new InvalidParametersError('threads must be a positive integer')
    }
    this.directory = directory
    this.limits = brokerLimits(limits)
    // Run from source (.ts, Node's type stripping) or from the compiled package (.js).
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'
    const url = new URL(`./auth-worker.${ext}`, import.meta.url)
    this.workers = Array.from({ length: threads }, () => {
      const w = new Worker(url)
      w.on('message', (m: { job: number; verdicts: Uint8Array } | { ready: number }) => {
        if ('ready' in m) {
          this.onReady(m.ready)
          return
        }
        const job = this.jobs.get(m.job)
        this.jobs.delete(m.job)
        job?.resolve(Array.from(m.verdicts, (v) => v === 1))
      })
      w.on('error', (err) => {
        for (const j of this.jobs.values()) j.reject(err)
        this.jobs.clear()
      })
      return w
    })
  }

  /** Worker threads in the pool. */
  get threads(): number {
    return this.workers.length
  }

  /** Resolves once every worker has imported every key of the directory (call before traffic). */
  ready(): Promise<void> {
    this.syncKeys()
    const keys = this.keysSent
    if ((this.readyAcks.get(keys) ?? 0) >= this.workers.length) return Promise.resolve()
    return new Promise((resolve) => this.readyWaiters.push({ keys, resolve }))
  }

  private onReady(keys: number): void {
    this.readyAcks.set(keys, (this.readyAcks.get(keys) ?? 0) + 1)
    const done = (this.readyAcks.get(keys) ?? 0) >= this.workers.length
    if (!done) return
    this.readyWaiters = this.readyWaiters.filter((w) => {
      if (w.keys > keys) return true
      w.resolve()
      return false
    })
  }

  authenticate(submissions: readonly Submission[]): Promise<boolean[]> {
    this.syncKeys()
    const frames = submissions.map(encodeSubmission)
    let total = 0
    for (const f of frames) total += 2 + f.length
    const data = new Uint8Array(total)
    const view = new DataView(data.buffer)
    let off = 0
    for (const f of frames) {
      view.setUint16(off, f.length, true)
      data.set(f, off + 2)
      off += 2 + f.length
    }
    const job = ++this.nextJob
    const worker = this.workers[this.nextWorker++ % this.workers.length]
    return new Promise<boolean[]>((resolve, reject) => {
      this.jobs.set(job, { resolve, reject })
      worker.postMessage({ type: 'verify', job, data, limits: this.limits }, [data.buffer])
    })
  }

  private syncKeys(): void {
    const n = this.directory.size
    if (n === this.keysSent) return
    const keys = new Uint8Array((n - this.keysSent) * 32)
    for (let id = this.keysSent; id < n; id++) {
      keys.set(this.directory.ed25519Raw(id), (id - this.keysSent) * 32)
    }
    for (const w of this.workers) w.postMessage({ type: 'keys', from: this.keysSent, keys })
    this.keysSent = n
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()))
    for (const j of this.jobs.values()) j.reject(new Error('authenticator closed'))
    this.jobs.clear()
  }
}
