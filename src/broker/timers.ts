import type { TimerHandle } from '../core/env.ts'

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
