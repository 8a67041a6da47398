import type { PeerKey } from '../common/artifact.ts'
import type { TimerHandle } from '../common/env.ts'
import { Fifo } from '../common/fifo.ts'

/** A message frame waiting for the uplink. */
export interface QueuedFrame {
  /** Where it goes. */
  peer: PeerKey
  /** The message's id key, to match the peer's IDONTWANTs. */
  key: string
  /** The encoded frame. */
  frame: Uint8Array
  /** Its payload bytes. */
  payload: number
  /** Its `announce` hook ran (at most once, before it leaves). */
  announced?: boolean
}

/** What the queue needs from its router. */
export interface UplinkQueueHooks {
  now(): number
  setTimer(ms: number, fn: () => void): TimerHandle
  running(): boolean
  /** True when the peer said it does not want the message (IDONTWANT) or is gone. */
  unwanted(peer: PeerKey, key: string): boolean
  /** Puts a frame on the wire. */
  transmit(item: QueuedFrame): void
  /** A queued frame was dropped because the peer no longer wanted it. */
  cancelled(item: QueuedFrame): void
  /**
   * A frame is about to leave: at most `leadMs` before it starts, and at the latest just
   * before it (the router sends a PREAMBLE ahead of a large message here).
   */
  announce?(item: QueuedFrame): void
}

/**
 * The paced per-node uplink: message frames leave one at a time at `uploadBps`, so a frame
 * still waiting can be cancelled by the peer's IDONTWANT. Bounded by `maxFrames`; frames
 * beyond it are dropped and counted.
 */
export class UplinkQueue {
  /** Frames dropped because the queue was full. */
  droppedFrames = 0
  /** Queued frames cancelled by the peer's IDONTWANT before they were sent. */
  cancelledByIDontWant = 0

  private readonly q = new Fifo<QueuedFrame>()
  private freeAt = 0
  private timer: TimerHandle | undefined
  /** Front frames already looked at by `announceAhead`, and their uplink time in ms. */
  private ahead = 0
  private aheadMs = 0

  private readonly uploadBps: number
  private readonly maxFrames: number
  private readonly hooks: UplinkQueueHooks
  private readonly leadMs: number

  constructor(uploadBps: number, maxFrames: number, hooks: UplinkQueueHooks, leadMs = 0) {
    this.uploadBps = uploadBps
    this.maxFrames = maxFrames
    this.hooks = hooks
    this.leadMs = leadMs
  }

  /** Queues one frame for each of `peers` and sends what the uplink allows now. */
  enqueue(peers: PeerKey[], key: string, frame: Uint8Array, payload: number): void {
    for (const peer of peers) {
      if (this.q.length >= this.maxFrames) {
        this.droppedFrames++
        continue
      }
      this.q.push({ peer, key, frame, payload })
    }
    this.drain()
  }

  /** Forgets every queued frame and the pending drain. */
  clear(): void {
    this.timer?.cancel()
    this.timer = undefined
    this.q.clear()
    this.ahead = 0
    this.aheadMs = 0
  }

  /** Releases queued frames while the (modelled) uplink is free, skipping unwanted ones. */
  private drain(): void {
    const now = this.hooks.now()
    const q = this.q
    while (q.length > 0 && this.freeAt <= now) {
      const item = q.shift()!
      if (this.ahead > 0) {
        this.ahead--
        this.aheadMs = this.ahead === 0 ? 0 : this.aheadMs - this.frameMs(item)
      }
      if (this.hooks.unwanted(item.peer, item.key)) {
        this.cancelledByIDontWant++
        this.hooks.cancelled(item)
        continue
      }
      if (item.announced !== true) this.hooks.announce?.(item)
      this.hooks.transmit(item)
      this.freeAt = now + this.frameMs(item)
    }
    this.announceAhead(now)
    if (q.length === 0) return
    if (this.timer === undefined) {
      this.timer = this.hooks.setTimer(this.freeAt - now, () => {
        this.timer = undefined
        if (this.hooks.running()) this.drain()
      })
    }
  }

  /**
   * Runs `announce` for the queued frames that start within `leadMs` (estimated as if none
   * before them were cancelled). Each frame is looked at once: the walk resumes where it
   * stopped, so a drain costs the frames that entered the lead window, not the whole queue.
   */
  private announceAhead(now: number): void {
    const announce = this.hooks.announce
    if (announce === undefined || this.leadMs <= 0) return
    const q = this.q
    let start = Math.max(this.freeAt, now) + this.aheadMs
    while (this.ahead < q.length && start - now <= this.leadMs) {
      const item = q.at(this.ahead)!
      const ms = this.frameMs(item)
      this.ahead++
      this.aheadMs += ms
      start += ms
      if (this.hooks.unwanted(item.peer, item.key)) continue
      item.announced = true
      announce(item)
    }
  }

  private frameMs(item: QueuedFrame): number {
    return (item.frame.length * 8000) / this.uploadBps
  }
}
