import { InvalidParametersError } from '../common/errors.ts'
import type { SimCore, Simulation } from './network.ts'
import type { Prng } from './prng.ts'

/** Churn: nodes crash at random and come back after a random downtime. */
export interface ChurnOptions {
  /** Nodes that may churn. */
  nodes: readonly number[]
  /** Mean time between crashes of one node, in ms (exponentially distributed). */
  meanUptimeMs: number
  /** Mean downtime before a restart, in ms (exponentially distributed). */
  meanDowntimeMs: number
  /** Churn starts at this virtual time (ms). */
  from: number
  /** No crash is scheduled after this virtual time; nodes down then restart as planned. */
  until: number
}

/** What {@link scheduleChurn} did, and what it planned. */
export interface ChurnLog {
  /** Crashes performed. */
  crashes: number
  /** Restarts performed. */
  restarts: number
  /** Every planned down period, per node, in time order: [crash, restart) in ms. */
  downtimes: Map<number, Array<[number, number]>>
}

/** True when `node` is planned to be up throughout [from, to] (no down period overlaps it). */
export function upThroughout(log: ChurnLog, node: number, from: number, to: number): boolean {
  for (const [down, up] of log.downtimes.get(node) ?? []) {
    if (down <= to && up >= from) return false
  }
  return true
}

/**
 * Schedules churn on `sim`: each listed node alternates exponentially distributed up and
 * down periods between `from` and `until`. Deterministic for a seeded `prng`.
 */
export function scheduleChurn<C extends SimCore>(
  sim: Simulation<C>,
  prng: Prng,
  options: ChurnOptions,
): ChurnLog {
  if (!(options.meanUptimeMs > 0 && options.meanDowntimeMs > 0)) {
    throw new InvalidParametersError('churn needs positive mean up and down times')
  }
  const log: ChurnLog = { crashes: 0, restarts: 0, downtimes: new Map() }
  for (const node of options.nodes) {
    let t = options.from + prng.exponential(options.meanUptimeMs)
    while (t < options.until) {
      const down = t
      const up = down + prng.exponential(options.meanDowntimeMs)
      let periods = log.downtimes.get(node)
      if (periods === undefined) {
        periods = []
        log.downtimes.set(node, periods)
      }
      periods.push([down, up])
      sim.at(down, () => {
        if (sim.isUp(node)) {
          sim.crash(node)
          log.crashes++
        }
      })
      sim.at(up, () => {
        if (!sim.isUp(node)) {
          sim.restart(node)
          log.restarts++
        }
      })
      t = up + prng.exponential(options.meanUptimeMs)
    }
  }
  return log
}
