export * from './flood-codec.ts'
export * from './flood-core.ts'
