import { FloodCore } from '../flood/flood-core.ts'
import type { SimStrategy } from './scenario.ts'

/** Flooding: the baseline. */
export const floodStrategy: SimStrategy = {
  name: 'flood',
  description: 'every node relays each new message to all its peers',
  create: (env) => new FloodCore(env),
}
