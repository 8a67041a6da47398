/**
 * Set-up bytes of a relation: an RP member's registration, encoded by the RP codec itself,
 * against Ethereum's peering as seed 000 measured it (quoted figures, see {@link SEED_000}).
 */
import { encodeRpMessage } from '../src/rp/codec.ts'
import { SCENARIO_TOPIC } from '../src/sim/scenario.ts'

/** Seed 000's and its draft's published figures, quoted beside ours (never computed here). */
export const SEED_000 = {
  /** Draft: bytes to set up one Ethereum peer relation. */
  ethRelationBytes: 2_712,
  /** Draft: bytes to set up one RP relation (registration). */
  draftRpRelationBytes: 127,
  /** Seed: peers per node. */
  peersPerNode: 50,
  /** Seed: share of peering attempts that complete every stage. */
  completionRate: 0.13,
  /** Draft: system-wide Ethereum set-up bytes (9 GB). */
  draftEthSystemBytes: 9e9,
  /** Draft: system-wide RP set-up bytes (8.7 MB). */
  draftRpSystemBytes: 8.7e6,
  /** Draft: fewer set-up bytes with RPs. */
  draftSetupRatio: 790,
  /** Draft: fewer bytes to maintain relations with RPs. */
  draftMaintenanceRatio: 30,
  /** Draft: less traffic per 256 B transaction with RPs (bytes). */
  draftSavingPerTxBytes: 22.44e6,
  /** Draft: consensus (majority) at least this many times faster with RPs. */
  draftMajoritySpeedup: 4,
  /** Seed: nodes in 2022. */
  nodes2022: 72_000,
} as const

/** An RP member's registration: what it sends and what the RP answers, in bytes. */
export interface RegistrationBytes {
  /** The member's `register` message. */
  register: number
  /** The RP's `registered` answer. */
  registered: number
}

/**
 * Encodes the registration exchange for one topic with the RP codec: `register` (the
 * scenario topic, the member's default lease) and `registered` (no multicast group).
 */
export function rpRegistrationBytes(leaseMs = 3_000): RegistrationBytes {
  const topics = [SCENARIO_TOPIC]
  return {
    register: encodeRpMessage({ type: 'register', topics, leaseMs, resume: false }).length,
    registered: encodeRpMessage({ type: 'registered', topics, leaseMs, groups: [] }).length,
  }
}
