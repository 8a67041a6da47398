import { closeSync, openSync, readSync } from 'node:fs'

/** Where the calling thread's time went so far, in ms. */
export interface ThreadTimes {
  /** Time it ran on a core (user and system). */
  cpuMs: number
  /**
   * Time it was ready to run but waited for a core (the run queue): the machine's other
   * threads and processes, our own GC helper threads included, held every core. NaN where
   * the system does not say (anything but Linux).
   */
  queuedMs: number
}

/**
 * The main thread's own clocks: on Linux from `/proc/thread-self/schedstat` (nanoseconds run
 * and waited for a core, read with one `pread` of a file opened once), elsewhere from
 * `process.threadCpuUsage()` (run time only, in coarser steps). What a frame's wall time
 * less both leaves is time the thread slept inside it: page faults, or waits on other
 * threads (a GC pause waiting for its helpers).
 */
export function mainThreadClock(): () => ThreadTimes {
  let fd: number | undefined
  try {
    fd = openSync('/proc/thread-self/schedstat', 'r')
  } catch {
    fd = undefined
  }
  if (fd !== undefined) {
    const buf = Buffer.alloc(128)
    const file = fd
    const read = (): ThreadTimes | undefined => {
      const n = readSync(file, buf, 0, buf.length, 0)
      const [run, wait] = buf.toString('latin1', 0, n).split(' ').map(Number)
      return Number.isFinite(run) && Number.isFinite(wait)
        ? { cpuMs: run / 1e6, queuedMs: wait / 1e6 }
        : undefined
    }
    if (read() !== undefined) return () => read()!
    closeSync(file)
  }
  return () => {
    const u = process.threadCpuUsage()
    return { cpuMs: (u.user + u.system) / 1000, queuedMs: Number.NaN }
  }
}
