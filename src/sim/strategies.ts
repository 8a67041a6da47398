import { brokerStrategy } from './broker-strategy.ts'
import { floodStrategy } from './flood-strategy.ts'
import { gossipOptimizedStrategy, gossipStockStrategy } from './gossip-strategy.ts'
import { rpStrategy } from './rp-strategy.ts'
import type { SimStrategy } from './scenario.ts'

/**
 * Every strategy the simulator (and so the demo and the benchmarks) can run. The registry
 * sits above the strategies' adapters; the simulator's engine knows none of them.
 */
export const STRATEGIES: SimStrategy[] = [
  floodStrategy,
  gossipStockStrategy,
  gossipOptimizedStrategy,
  rpStrategy,
  brokerStrategy,
]

/** The strategy called `name`, or undefined. */
export function findStrategy(name: string): SimStrategy | undefined {
  return STRATEGIES.find((s) => s.name === name)
}
