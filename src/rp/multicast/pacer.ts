import type { TimerHandle } from '../../common/env.ts'
import { LimitExceededError } from '../../common/errors.ts'
import { Fifo } from '../../common/fifo.ts'
import type { MulticastClock } from './multicast-env.ts'

/**
 * A token bucket in front of the LAN: datagrams leave at most `rateBytesPerSecond` on
 * average, in bursts of at most `burstBytes`, so a message of many fragments does not
 * overrun a switch buffer or a member's socket buffer (the usual cause of multicast loss).
 * The queue is bounded in datagrams; {@link Pacer.push} throws when it is full.
 */
export class Pacer {
  private readonly clock: MulticastClock
  private readonly rate: number
  private readonly burst: number
  private readonly maxQueued: number
  private readonly queue = new Fifo<() => number>()
  private tokens: number
  private last: number
  private timer: TimerHandle | undefined

  constructor(
    clock: MulticastClock,
    rateBytesPerSecond: number,
    burstBytes: number,
    maxQueued: number,
  ) {
    this.clock = clock
    this.rate = rateBytesPerSecond / 1000
    this.burst = burstBytes
    this.maxQueued = maxQueued
    this.tokens = burstBytes
    this.last = clock.now()
  }

  /** Datagrams waiting. */
  get queued(): number {
    return this.queue.length
  }

  /** Room for `n` more datagrams. */
  hasRoom(n: number): boolean {
    return this.queued + n <= this.maxQueued
  }

  /** Queues `send`, which transmits one datagram and returns its size in bytes. */
  push(send: () => number): void {
    if (!this.hasRoom(1)) throw new LimitExceededError(`pacer queue full (${this.maxQueued})`)
    this.queue.push(send)
    this.drain()
  }

  /** Drops everything queued and the timer. */
  stop(): void {
    this.timer?.cancel()
    this.timer = undefined
    this.queue.clear()
  }

  private drain(): void {
    if (this.timer !== undefined) return
    const now = this.clock.now()
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.rate)
    this.last = now
    while (this.queue.length > 0 && this.tokens > 0) {
      const send = this.queue.shift()!
      this.tokens -= send()
    }
    if (this.queue.length === 0) return
    // Wait until the bucket is positive again (a datagram may take it below zero).
    const wait = Math.max(1, Math.ceil(-this.tokens / this.rate))
    this.timer = this.clock.setTimer(wait, () => {
      this.timer = undefined
      this.drain()
    })
  }
}
