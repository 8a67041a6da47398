import { FloodCore } from '../flood/flood-core.ts'
import type { SimStrategy } from './scenario.ts'

/** Flooding: the baseline. */
export const floodStrategy: SimStrategy = {
  name: 'flood',
  description: 'every node relays each new message to all its peers',
  create: (env) => new FloodCore(env),
}

/** Every strategy the simulator (and so the demo and the benchmarks) can run. */
export const STRATEGIES: SimStrategy[] = [floodStrategy]

/** The strategy called `name`, or undefined. */
export function findStrategy(name: string): SimStrategy | undefined {
  return STRATEGIES.find((s) => s.name === name)
}
