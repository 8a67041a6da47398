/**
 * `consensus-multicast/sim`: the deterministic simulator. Runs the same protocol cores on a
 * discrete-event network in virtual time: scenarios, the strategies, the network model,
 * topologies, placement, faults and delivery metrics.
 */
export type { Distribution } from '../common/distribution.ts'
export type { BrokerSimOptions } from './broker-strategy.ts'
export { brokerSimStrategy, brokerStrategy } from './broker-strategy.ts'
export type { ChurnLog, ChurnOptions } from './faults.ts'
export { scheduleChurn } from './faults.ts'
export { floodStrategy } from './flood-strategy.ts'
export {
  gossipOneCopyStrategy,
  gossipOptimizedStrategy,
  gossipStockStrategy,
  gossipStrategy,
} from './gossip-strategy.ts'
export type { Graph } from './graph.ts'
export { fullMeshGraph, graphFromEdges, randomRegularGraph } from './graph.ts'
export type { DeliverySummary } from './metrics.ts'
export { DeliveryTracker } from './metrics.ts'
export type {
  CoreFactory,
  CoreObserver,
  NetworkOptions,
  SimCore,
  TrafficCounters,
} from './network.ts'
export { Simulation } from './network.ts'
export type { LatencyFn, Placement, Provider, Region } from './placement.ts'
export {
  placementBandwidth,
  placementLatency,
  providerClusteredPlacement,
  singleRegionPlacement,
  uniformLatency,
} from './placement.ts'
export { SCENARIOS } from './presets.ts'
export { Prng } from './prng.ts'
export type { RpSimOptions } from './rp-strategy.ts'
export { rpSimStrategy, rpStrategy } from './rp-strategy.ts'
export type {
  BuiltNetwork,
  RunOptions,
  Scenario,
  ScenarioResult,
  ScenarioRun,
  SimStrategy,
  StrategyContext,
  TopologyKind,
  UplinkRange,
} from './scenario.ts'
export { buildNetwork, runScenario, SCENARIO_TOPIC, startScenario } from './scenario.ts'
export { findStrategy, STRATEGIES } from './strategies.ts'
