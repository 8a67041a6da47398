import { InvalidParametersError } from '../common/errors.ts'
import { withDefaults } from '../common/options.ts'

/** Limits every broker-protocol decoder enforces (bytes and counts). */
export interface BrokerLimits {
  /** Largest client payload, in bytes. Default 256. */
  maxPayload: number
  /** Most entries in one distilled batch. Default 65,536. */
  maxBatchEntries: number
  /** Most entries in one Merkle leaf (bucket). Default 8. */
  maxEntriesPerLeaf: number
  /** Most servers in the system. Default 64. */
  maxServers: number
  /** Largest client id the directory accepts, exclusive. Default 2^24. */
  maxClients: number
}

/** Default {@link BrokerLimits}. */
export const DEFAULT_BROKER_LIMITS: BrokerLimits = {
  maxPayload: 256,
  maxBatchEntries: 65_536,
  maxEntriesPerLeaf: 8,
  maxServers: 64,
  maxClients: 1 << 24,
}

/** Merges `partial` over the defaults and checks the result. */
export function brokerLimits(partial: Partial<BrokerLimits> = {}): BrokerLimits {
  const limits = withDefaults(DEFAULT_BROKER_LIMITS, partial)
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new InvalidParametersError(`limit ${k} must be a positive integer, got ${v}`)
    }
  }
  if (limits.maxEntriesPerLeaf > 255) {
    throw new InvalidParametersError('maxEntriesPerLeaf must be at most 255')
  }
  if (limits.maxServers > 255) throw new InvalidParametersError('maxServers must be at most 255')
  return limits
}

/** The largest number of faulty servers `n` servers tolerate: f = ⌊(n − 1) / 3⌋. */
export function faultsTolerated(servers: number): number {
  return Math.floor((servers - 1) / 3)
}
