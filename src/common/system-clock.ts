/**
 * The real clock and timers, for drivers on a real network (cores never import this: they
 * get time only through their `Env`).
 */
import type { TimerHandle } from './env.ts'

/** `Env.setTimer` on Node's timers (unref'd, so a pending retry never keeps a process alive). */
export function nodeTimer(delayMs: number, fn: () => void): TimerHandle {
  const t = setTimeout(fn, Math.max(0, delayMs))
  t.unref()
  return { cancel: () => clearTimeout(t) }
}

/** `Env.now` on a monotonic clock, in milliseconds. */
export function monotonicNow(): number {
  return performance.now()
}
