import { randomFillSync } from 'node:crypto'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import type { ArtifactClass } from '../common/artifact.ts'
import { ConsensusMulticastError } from '../common/errors.ts'
import { messageIdKey } from '../common/message-id.ts'
import type { NodeService } from './node-libp2p.ts'

/** Lines read from stdin that may wait for their publish at once. */
export const MAX_QUEUED_LINES = 256

/** Where a publisher reports each outcome. */
export interface PublishReport {
  /** A line to print. */
  print(line: string): void
  /** A publish failed (counted in the status line). */
  failed(): void
}

/** Publishes on one topic and reports the outcome as a line. */
export class NodePublisher {
  private readonly service: NodeService
  private readonly topic: string
  private readonly cls: ArtifactClass
  private readonly report: PublishReport
  private rateTimer: ReturnType<typeof setInterval> | undefined
  private inFlight = 0
  /** The code of the last failure printed for a quiet publish (repeats are only counted). */
  private lastQuietFailure: string | undefined

  constructor(service: NodeService, topic: string, cls: ArtifactClass, report: PublishReport) {
    this.service = service
    this.topic = topic
    this.cls = cls
    this.report = report
  }

  /**
   * Publishes `data` and prints the outcome; with `quiet` (rate publishing) successes are not
   * printed, nor failures with the same code as the last one printed.
   */
  async publish(data: Uint8Array, quiet = false): Promise<void> {
    this.inFlight++
    try {
      const r = await this.service.publish(this.topic, data, { class: this.cls })
      if (!quiet) {
        this.report.print(
          `published topic=${this.topic} bytes=${data.length} id=${messageIdKey(r.id)} recipients=${r.recipients}`,
        )
      }
    } catch (err) {
      this.report.failed()
      const code = err instanceof ConsensusMulticastError ? err.code : 'ERROR'
      if (quiet && code === this.lastQuietFailure) return
      if (quiet) this.lastQuietFailure = code
      this.report.print(
        `publish-failed topic=${this.topic} code=${code} error=${JSON.stringify((err as Error).message)}`,
      )
    } finally {
      this.inFlight--
    }
  }

  /**
   * Publishes every line of `input` (empty lines skipped), in order. Reading pauses while
   * {@link MAX_QUEUED_LINES} lines wait, so a large file piped in is not read all at once.
   */
  readLines(input: Readable): void {
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })
    const encoder = new TextEncoder()
    let chain = Promise.resolve()
    let queued = 0
    lines.on('line', (line) => {
      if (line === '') return
      if (++queued >= MAX_QUEUED_LINES) lines.pause()
      chain = chain
        .then(() => this.publish(encoder.encode(line)))
        .finally(() => {
          if (--queued === MAX_QUEUED_LINES / 2) lines.resume()
        })
    })
  }

  /**
   * Publishes `rate` messages per second of `size` random bytes each. A tick publishes what
   * is due since the start; a publisher that fell behind by more than a second (a slow
   * machine) drops the backlog instead of bursting it, and at most `rate` publishes wait
   * at once.
   */
  startRate(rate: number, size: number, printEach: boolean): void {
    const tickMs = Math.max(10, Math.min(1000, Math.floor(1000 / rate)))
    let start = Date.now()
    let sent = 0
    this.rateTimer = setInterval(() => {
      let due = Math.floor(((Date.now() - start) * rate) / 1000) - sent
      if (due > rate) {
        start = Date.now()
        sent = 0
        due = 0
      }
      for (; due > 0 && this.inFlight < rate; due--) {
        sent++
        void this.publish(randomFillSync(new Uint8Array(size)), !printEach)
      }
    }, tickMs)
  }

  /** Stops rate publishing. */
  stop(): void {
    if (this.rateTimer !== undefined) clearInterval(this.rateTimer)
    this.rateTimer = undefined
  }
}
