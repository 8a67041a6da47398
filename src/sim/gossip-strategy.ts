import { type GossipProfile, GossipRouter, type GossipRouterOptions } from '../gossip/index.ts'
import { SCENARIO_TOPIC, type SimStrategy } from './scenario.ts'

/**
 * Validation time of a received message on the modelled nodes: 2 ms plus 0.3 ms per
 * 1,000 bytes, so ≈ 2 ms for a 256 B attestation and ≈ 32 ms for a 100 KB block. Why: a
 * consensus message is checked before it is relayed; one BLS signature verification costs
 * ≈ 1.2 ms on this machine (`npm run bench -- crypto`), and a block adds snappy
 * decompression, SSZ decoding, hashing and state-dependent checks that take clients tens of
 * ms. With instant validation a node hears from no mesh peer before it relays, so every
 * mesh link but the first sender's carries the message both ways.
 */
export const SIM_VALIDATION_DELAY = { validationDelayMs: 2, validationDelayMsPerKB: 0.3 } as const

/**
 * A gossip profile in the simulator, with {@link SIM_VALIDATION_DELAY} and the node's
 * modelled upload bandwidth; the scenario's class is declared for its topic. `overrides`
 * change any router option (benchmarks vary one parameter with it).
 */
export function gossipStrategy(
  profile: GossipProfile,
  description: string,
  overrides: GossipRouterOptions = {},
): SimStrategy {
  return {
    name: `gossip-${profile}`,
    description,
    create: (env, index, ctx) =>
      new GossipRouter(env, {
        profile,
        ...SIM_VALIDATION_DELAY,
        topicClasses: { [SCENARIO_TOPIC]: ctx.scenario.class },
        uploadBps: ctx.network.uploadBps(index),
        ...overrides,
      }),
  }
}

/** Stock gossipsub v1.1 (Ethereum parameters, 0.7 s heartbeat, every class relayed). */
export const gossipStockStrategy = gossipStrategy(
  'stock',
  'gossipsub v1.1 with Ethereum parameters: D 8, 0.7 s heartbeat, unbounded IWANT, ingress relayed',
)

/**
 * The optimized profile with the one-copy extension on (opt-in: `oneCopy: true`): near
 * spanning trees of eager links, announces on the others (doc/gossip-extension.md).
 */
export const gossipOneCopyStrategy: SimStrategy = {
  ...gossipStrategy(
    'optimized',
    'optimized gossip with the one-copy extension: eager trees, announces elsewhere, pulls',
    { oneCopy: true },
  ),
  name: 'gossip-one-copy',
}

/** Optimized gossip: IDONTWANT, α = 1 IWANT, 1 s heartbeat, ingress not relayed. */
export const gossipOptimizedStrategy = gossipStrategy(
  'optimized',
  'gossipsub + IDONTWANT, eager/lazy push of large messages, one IWANT per message, 1 s heartbeat, ingress not relayed',
)
