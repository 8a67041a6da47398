/**
 * `consensus-multicast/rp`: replication points, as a libp2p 3 service
 * (`replicationPoints()`, member or RP role) and as the two sans-IO cores.
 */
export type { PeerSignatures } from '../crypto/peer-signatures.ts'
export { Ed25519PeerSignatures } from '../crypto/peer-signatures.ts'
export type {
  ReplicationPointsInit,
  RpMemberServiceInit,
  RpServiceComponents,
  RpServiceInit,
} from '../libp2p/rp-service.ts'
export { RP_PROTOCOL, RpService, replicationPoints } from '../libp2p/rp-service.ts'
export type { QuorumEvent, RpEvents, RpPublishOptions } from './events.ts'
export type { MemberOptions } from './member.ts'
export { RpMember } from './member.ts'
export type { PublishedProblem } from './publisher-auth.ts'
export type { ReplicationPointOptions, RpView } from './replication-point.ts'
export { ReplicationPoint } from './replication-point.ts'
