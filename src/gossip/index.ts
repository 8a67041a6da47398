/**
 * `consensus-multicast/gossip`: gossipsub-compatible dissemination with the optimized
 * profile, as a libp2p 3 service (`gossip()`) and as its sans-IO router.
 */

export type { DenyList, DenyListGater, DenyListGaterOptions } from '../libp2p/deny-gater.ts'
export { denyListGater } from '../libp2p/deny-gater.ts'
export type {
  GossipService,
  GossipServiceComponents,
  GossipServiceOptions,
} from '../libp2p/gossip-service.ts'
export { gossip } from '../libp2p/gossip-service.ts'
export type { AddressRefusal } from '../libp2p/refusing-tcp.ts'
export { refusingTcp } from '../libp2p/refusing-tcp.ts'
export type {
  GossipParams,
  GossipParamsOptions,
  GossipProfile,
  ScoreParams,
  ScoreThresholds,
  SignaturePolicy,
  TopicScoreParams,
} from './params.ts'
export type { BudgetKind, BudgetRate, PeerBudgetParams } from './peer-budget.ts'
export { DEFAULT_PEER_BUDGETS } from './peer-budget.ts'
export {
  GOSSIP_PROTOCOLS,
  MESHSUB_1_0,
  MESHSUB_1_1,
  MESHSUB_1_2,
  MESHSUB_1_3,
} from './protocol-ids.ts'
export type { GossipRouterOptions, RpcDecoder } from './router.ts'
export { GossipRouter } from './router.ts'
export type { RpcLimits, RpcMessage } from './rpc-codec.ts'
export { DEFAULT_RPC_LIMITS, RpcLimitError } from './rpc-codec.ts'
export type { MessageIdFn } from './signing.ts'
export { defaultMessageId } from './signing.ts'
