/**
 * consensus-multicast: one typed API for disseminating consensus messages, with three
 * strategies behind it (optimized gossip, replication points, a Chop Chop broker) beside the
 * flooding baseline, and a deterministic simulator (exported from `consensus-multicast/sim`).
 */
export * from './broker/index.ts'
export * from './core/index.ts'
export * from './crypto/index.ts'
export * from './flood/index.ts'
export * from './gossip/index.ts'
export * from './libp2p/index.ts'
export * from './rp/index.ts'
