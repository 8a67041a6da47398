import type { Artifact } from './artifact.ts'

/**
 * A validator's verdict, with gossipsub's meaning:
 * - `accept`: deliver and forward;
 * - `reject`: invalid; drop and penalise the sender;
 * - `ignore`: drop without penalty (e.g. stale or not yet decidable).
 */
export type ValidationResult = 'accept' | 'reject' | 'ignore'

/**
 * Decides whether a received artifact is delivered and forwarded. A synchronous result is
 * handled at once (and keeps the simulator deterministic); a promise is awaited.
 */
export type Validator = (artifact: Artifact) => ValidationResult | Promise<ValidationResult>
