/**
 * `consensus-multicast/flood`: the flooding baseline, as a libp2p 3 service (`flood()`) and
 * as its sans-IO core.
 */
export type { FloodService } from '../libp2p/flood-service.ts'
export { FLOOD_PROTOCOL, flood } from '../libp2p/flood-service.ts'
export type { FloodOptions } from './flood-core.ts'
export { FloodCore } from './flood-core.ts'
