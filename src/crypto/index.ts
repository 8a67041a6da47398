export * from './bls.ts'
export * from './ed25519.ts'
export * from './merkle.ts'
