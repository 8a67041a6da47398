/**
 * CPU time of whole processes and of the machine from /proc (Linux), for the attack bench to
 * say where the cores went in each window: the honest processes, the victim, the attacker,
 * and everything else on the machine (other benches, other users), which wall-clock
 * latencies on a shared machine cannot tell apart.
 */
import { readFileSync } from 'node:fs'

/** Clock ticks per second of /proc's figures (USER_HZ: 100 on every Linux this runs on). */
const TICKS_PER_S = 100

/** CPU time of process `pid` so far (every thread, user and system), in ms; NaN if unknown. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    // Fields after the command name (which may hold spaces), from field 3 on: utime and stime
    // are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S
  } catch {
    return Number.NaN
  }
}

/** The machine's CPU time so far, summed over its cores: busy and in all, in ms. */
export interface MachineCpu {
  busyMs: number
  totalMs: number
}

/** The machine's CPU time so far (the `cpu` line of /proc/stat); NaN if unknown. */
export function machineCpuMs(): MachineCpu {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n')[0]
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line
      .split(/\s+/)
      .slice(1, 9)
      .map(Number)
    const busy = user + nice + system + irq + softirq + steal
    return {
      busyMs: (busy * 1000) / TICKS_PER_S,
      totalMs: ((busy + idle + iowait) * 1000) / TICKS_PER_S,
    }
  } catch {
    return { busyMs: Number.NaN, totalMs: Number.NaN }
  }
}

/** A reading of the machine and of the bench's processes at one moment. */
export interface CpuReading {
  /** When it was read (`performance.now()`, ms). */
  at: number
  machine: MachineCpu
  /** CPU so far of each process watched, by name (NaN: not running or unknown). */
  processes: Record<string, number>
}

/** Reads the machine and each process of `pids` (by name). */
export function readCpu(pids: Record<string, number | undefined>): CpuReading {
  const processes: Record<string, number> = {}
  for (const [name, pid] of Object.entries(pids)) {
    processes[name] = pid === undefined ? Number.NaN : processCpuMs(pid)
  }
  return { at: performance.now(), machine: machineCpuMs(), processes }
}

/**
 * Where the cores went between two readings, in ms of CPU per second of the wall time between them: each
 * watched process, each process of `alsoMs` (CPU ms over the same span that it reported of
 * itself: a process that exits before the second reading), the rest of the machine (busy time
 * of none of them), and the machine's idle time (cores × 1000 less all busy time).
 */
export function cpuBetween(
  from: CpuReading,
  to: CpuReading,
  alsoMs: Record<string, number> = {},
): Record<string, number> {
  const perS = (ms: number) => (ms * 1000) / (to.at - from.at)
  const out: Record<string, number> = {}
  let ours = 0
  const spent = Object.entries(to.processes).map(([name, ms]) => [
    name,
    ms - (from.processes[name] ?? Number.NaN),
  ])
  for (const [name, ms] of [...spent, ...Object.entries(alsoMs)] as [string, number][]) {
    out[name] = perS(ms)
    if (Number.isFinite(ms)) ours += ms
  }
  const busy = to.machine.busyMs - from.machine.busyMs
  out.otherProcesses = perS(busy - ours)
  out.idle = perS(to.machine.totalMs - from.machine.totalMs - busy)
  return out
}
