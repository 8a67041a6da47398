export * from './core-service.ts'
export * from './flood-service.ts'
export * from './gossip-service.ts'
export * from './rp-service.ts'
