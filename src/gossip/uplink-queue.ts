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

  private readonly uploadBps: number
  private readonly maxFrames: number
  private readonly hooks: UplinkQueueHooks

  constructor(uploadBps: number, maxFrames: number, hooks: UplinkQueueHooks) {
    this.uploadBps = uploadBps
    this.maxFrames = maxFrames
    this.hooks = hooks
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
  }

  /** Releases queued frames while the (modelled) uplink is free, skipping unwanted ones. */
  private drain(): void {
    const now = this.hooks.now()
    const q = this.q
    while (q.length > 0 && this.freeAt <= now) {
      const item = q.shift()!
      if (this.hooks.unwanted(item.peer, item.key)) {
        this.cancelledByIDontWant++
        this.hooks.cancelled(item)
        continue
      }
      this.hooks.transmit(item)
      this.freeAt = now + (item.frame.length * 8000) / this.uploadBps
    }
    if (q.length === 0) return
    if (this.timer === undefined) {
      this.timer = this.hooks.setTimer(this.freeAt - now, () => {
        this.timer = undefined
        if (this.hooks.running()) this.drain()
      })
    }
  }
}
