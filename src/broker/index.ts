/**
 * `consensus-multicast/broker`: the Chop Chop broker: the sans-IO client, broker and witness
 * server, their UDP/TCP drivers, the directory, the orderer interface, the `Dissemination`
 * adapter, and the key pairs clients and servers sign with. Loads `@chainsafe/blst`.
 */
export { BlsKeyPair } from '../crypto/bls.ts'
export { Ed25519KeyPair } from '../crypto/ed25519.ts'
export type { SubmissionAuthenticator } from './authenticator.ts'
export { InlineAuthenticator, ThreadpoolAuthenticator } from './authenticator.ts'
export type { BrokerCounters, BrokerEvents, BrokerOptions } from './broker.ts'
export { Broker } from './broker.ts'
export type { BrokerNodeOptions } from './broker-node.ts'
export { BrokerNode } from './broker-node.ts'
export type { BrokerClientOptions, DeliveryReceipt } from './client.ts'
export { BrokerClient } from './client.ts'
export type { ClientNodeOptions } from './client-node.ts'
export { ClientNode } from './client-node.ts'
export type { ClientRegistration } from './directory.ts'
export { Directory } from './directory.ts'
export type { BrokerDisseminationOptions } from './dissemination.ts'
export { BrokerDissemination, brokerMessageId } from './dissemination.ts'
export type { BatchReference, OrderedListener, Orderer } from './orderer.ts'
export { SingleSequencer } from './orderer.ts'
export type { BrokerLimits } from './params.ts'
export { brokerLimits, DEFAULT_BROKER_LIMITS, faultsTolerated } from './params.ts'
export type {
  BrokerDelivery,
  WitnessServerCounters,
  WitnessServerEvents,
  WitnessServerOptions,
} from './server.ts'
export { BROKER_TOPIC, WitnessServer } from './server.ts'
export type { ServerNodeOptions } from './server-node.ts'
export { ServerNode } from './server-node.ts'
export type { UdpEndpointOptions } from './udp-endpoint.ts'
export type { BatchFault } from './verify-batch.ts'
export { WorkerAuthenticator } from './worker-authenticator.ts'
