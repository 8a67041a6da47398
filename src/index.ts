/**
 * consensus-multicast: one typed API for disseminating consensus messages. This entry point
 * holds what every strategy shares (the `Dissemination` interface, artifacts, events, stats,
 * errors, and the sans-IO `Env` a protocol core runs on) and loads no strategy. Each strategy
 * has its own entry point: `consensus-multicast/flood`, `/gossip`, `/rp`, `/broker`, and the
 * simulator `consensus-multicast/sim`.
 */
export type { Artifact, ArtifactClass, PeerKey, Topic } from './common/artifact.ts'
export { ARTIFACT_CLASSES, isArtifactClass } from './common/artifact.ts'
export type {
  Dissemination,
  DisseminationEvents,
  DuplicateEvent,
  PublishOptions,
  PublishResult,
  RejectedEvent,
  StrategyName,
} from './common/dissemination.ts'
export type { Listener } from './common/emitter.ts'
export type {
  DisconnectOptions,
  Env,
  PeerInfo,
  ProtocolCore,
  TimerHandle,
} from './common/env.ts'
export type { ErrorCode } from './common/errors.ts'
export {
  ConsensusMulticastError,
  DecodeError,
  DuplicateMessageError,
  InvalidParametersError,
  LimitExceededError,
  MessageTooLargeError,
  NoPeersError,
  NotStartedError,
  NotSubscribedError,
  ReplayError,
  SignatureError,
  TimeoutError,
  ValidationError,
} from './common/errors.ts'
export type { MessageId } from './common/message-id.ts'
export { messageIdEquals, messageIdFromKey, messageIdKey } from './common/message-id.ts'
export type {
  ControlStats,
  DisseminationStats,
  FlowStats,
  WireStats,
} from './common/stats.ts'
export type { ValidationResult, Validator } from './common/validation.ts'
export type { DriverStats } from './libp2p/service-metrics.ts'
