/**
 * The one wait of the test suite: resolves as soon as a condition holds, re-checking it when
 * something it depends on emits an event, so that no test's outcome hangs on a fixed sleep or
 * on how fast the machine is.
 */

/**
 * Anything with `on` listeners: Node's EventEmitter or a child process (removed with `off`),
 * or a core or service whose `on` returns the function that removes the listener.
 */
export interface OnOff {
  // biome-ignore lint/suspicious/noExplicitAny: any listener signature of any emitter
  on(type: any, listener: (...args: any[]) => void): unknown
  // biome-ignore lint/suspicious/noExplicitAny: the same
  off?(type: any, listener: (...args: any[]) => void): unknown
}

/** An event source: an emitter (or a DOM-style target, as libp2p's) and the events to watch. */
export type Wake = [OnOff | EventTarget, ...string[]]

/** How to wait. */
export interface WaitOptions {
  /** Named in the error on timeout: what was awaited. */
  what: string
  /**
   * Events that may make the condition true; it is re-checked after each. Without any, the
   * condition is polled every `pollMs` (only for state that nothing emits).
   */
  wakeOn?: Wake[]
  /**
   * Most milliseconds to wait (default 10 s). With `progress`, the most milliseconds without
   * progress, so that waiting for many things scales with how many there are.
   */
  timeoutMs?: number
  /** A count that grows as the awaited things happen (e.g. members registered so far). */
  progress?: () => number
  /** Poll interval when nothing emits (default 20 ms). */
  pollMs?: number
  /** More detail for the timeout error (e.g. which members are missing). */
  detail?: () => string
}

const DEFAULT_TIMEOUT_MS = 10_000

/**
 * Resolves once `check` returns true (it may be async). Throws, naming `what`, if it has not
 * held after `timeoutMs` (or after `timeoutMs` without `progress`).
 */
export function waitFor(
  check: () => boolean | Promise<boolean>,
  options: WaitOptions,
): Promise<void> {
  const { what, wakeOn = [], timeoutMs = DEFAULT_TIMEOUT_MS, progress, detail } = options
  const pollMs = options.pollMs ?? 20
  return new Promise<void>((resolve, reject) => {
    const started = Date.now()
    let lastProgress = progress?.() ?? 0
    let running = false
    let again = false
    let done = false
    let timer: ReturnType<typeof setTimeout> | undefined
    let poller: ReturnType<typeof setInterval> | undefined
    const unsubscribe: Array<() => void> = []

    const finish = (err?: Error) => {
      if (done) return
      done = true
      clearTimeout(timer)
      clearInterval(poller)
      for (const off of unsubscribe) off()
      if (err === undefined) resolve()
      else reject(err)
    }
    const armTimer = () => {
      clearTimeout(timer)
      timer = setTimeout(() => {
        const extra = detail === undefined ? '' : `: ${detail()}`
        const waited = `${Date.now() - started} ms`
        const why = progress === undefined ? '' : ` (no progress in ${timeoutMs} ms)`
        finish(new Error(`timed out after ${waited} waiting for ${what}${why}${extra}`))
      }, timeoutMs)
    }
    // One check at a time; an event during a check asks for another one after it.
    const run = async () => {
      if (done) return
      if (running) {
        again = true
        return
      }
      running = true
      try {
        do {
          again = false
          if (progress !== undefined) {
            const now = progress()
            if (now > lastProgress) {
              lastProgress = now
              armTimer()
            }
          }
          if (await check()) {
            finish()
            return
          }
        } while (again && !done)
      } catch (err) {
        finish(err as Error)
      } finally {
        running = false
      }
    }
    // After the event's own handlers have run, so that the state it announces is in place.
    const wake = () => setImmediate(run)

    for (const [target, ...types] of wakeOn) {
      for (const type of types) {
        if ('addEventListener' in target) {
          target.addEventListener(type, wake)
          unsubscribe.push(() => target.removeEventListener(type, wake))
        } else {
          const off = target.on(type, wake)
          unsubscribe.push(
            typeof off === 'function' ? (off as () => void) : () => target.off?.(type, wake),
          )
        }
      }
    }
    // A poll that finds a check still running skips its turn (an event would queue one).
    if (wakeOn.length === 0) poller = setInterval(() => running || void run(), pollMs)
    armTimer()
    void run()
  })
}
