/**
 * consensus-multicast: one typed API for disseminating consensus messages. This entry point
 * holds what every strategy shares (the `Dissemination` interface, artifacts, events, stats,
 * errors, and the sans-IO `Env` a protocol core runs on) and loads no strategy. Each strategy
 * has its own entry point: `consensus-multicast/flood`, `/gossip`, `/rp`, `/broker`, and the
 * simulator `consensus-multicast/sim`.
 */
export type { Artifact, ArtifactClass, PeerKey, Topic } from './core/artifact.ts'
export { ARTIFACT_CLASSES, isArtifactClass } from './core/artifact.ts'
export type {
  Dissemination,
  DisseminationEvents,
  DuplicateEvent,
  PublishOptions,
  PublishResult,
  RejectedEvent,
  StrategyName,
} from './core/dissemination.ts'
export type { Listener } from './core/emitter.ts'
export type {
  DisconnectOptions,
  Env,
  PeerInfo,
  ProtocolCore,
  TimerHandle,
} from './core/env.ts'
export type { ErrorCode } from './core/errors.ts'
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
} from './core/errors.ts'
export type { MessageId } from './core/message-id.ts'
export { messageIdEquals, messageIdFromKey, messageIdKey } from './core/message-id.ts'
export type {
  ControlStats,
  DisseminationStats,
  FlowStats,
  WireStats,
} from './core/stats.ts'
export type { ValidationResult, Validator } from './core/validation.ts'
export type { DriverStats } from './libp2p/service-metrics.ts'
