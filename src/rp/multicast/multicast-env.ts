import type { TimerHandle } from '../../common/env.ts'

/**
 * The part of the project's `Env` the multicast cores need: time and timers. Each core adds
 * its own outputs (datagrams to send, messages to deliver) as callbacks, so the cores stay
 * sans-IO: the UDP driver, the RP session and the tests each provide them.
 */
export interface MulticastClock {
  /** Current time in milliseconds. */
  now(): number
  /** Calls `fn` once after `delayMs` milliseconds. */
  setTimer(delayMs: number, fn: () => void): TimerHandle
  /** A uniformly distributed number in [0, 1) (seeded in tests). */
  random(): number
}
