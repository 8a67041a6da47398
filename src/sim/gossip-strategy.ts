import type { ArtifactClass } from '../common/artifact.ts'
import type { Env } from '../common/env.ts'
import { InvalidParametersError } from '../common/errors.ts'
import { type GossipProfile, GossipRouter, type GossipRouterOptions } from '../gossip/index.ts'
import { type GossipParams, resolveGossipParams } from '../gossip/params.ts'
import { decodeRpc, encodeRpc } from '../gossip/rpc-codec.ts'
import { defaultMessageId } from '../gossip/signing.ts'
import { type BuiltNetwork, buildNetwork, SCENARIO_TOPIC, type SimStrategy } from './scenario.ts'
import { sharedRpcCodec } from './shared-codec.ts'

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
 * change any router option (benchmarks vary one parameter with it). `shared` false gives
 * each node the library's own codec and message ids (the baseline of `npm run bench --
 * sim-scale`; results are the same, time and memory are not).
 */
export function gossipStrategy(
  profile: GossipProfile,
  description: string,
  overrides: GossipRouterOptions = {},
  shared = true,
): SimStrategy {
  // Shared by the strategy's nodes: a frame is decoded once, a message relayed in one
  // buffer and its id computed once, however many nodes receive and relay it.
  const codec = sharedRpcCodec()
  const { privateKey, msgIdFn, firstSeqno, decodeRpc, encodeRpc, params, ...tuned } = overrides
  if (params !== undefined) {
    throw new InvalidParametersError('gossipStrategy resolves the params: override them one by one')
  }
  const { signaturePolicy } = resolveGossipParams({
    profile,
    signaturePolicy: overrides.signaturePolicy,
  })
  const messageId = codec.messageId(msgIdFn ?? defaultMessageId(signaturePolicy))
  const sharing: GossipRouterOptions = shared
    ? { decodeRpc: codec.decodeRpc, encodeRpc: codec.encodeRpc, msgIdFn: messageId }
    : {}
  // The nodes' parameters, resolved once per scenario class, uplink and message size (nodes
  // differ in nothing else): resolving them for each of 72,000 nodes took seconds, and each
  // copy of the score, limit and budget tables cost memory. The nodes are told the message
  // size as a deployment knows its topics' (only per-source trees read it).
  const resolved = new Map<ArtifactClass, Map<string, GossipParams>>()
  const paramsOf = (cls: ArtifactClass, uploadBps: number, bytes: number): GossipParams => {
    let byUplink = resolved.get(cls)
    if (byUplink === undefined) {
      byUplink = new Map()
      resolved.set(cls, byUplink)
    }
    const key = `${uploadBps} ${bytes}`
    let params = byUplink.get(key)
    if (params === undefined) {
      params = resolveGossipParams({
        profile,
        ...SIM_VALIDATION_DELAY,
        topicClasses: { [SCENARIO_TOPIC]: cls },
        uploadBps,
        oneCopyTopicBytes: { [SCENARIO_TOPIC]: bytes },
        ...tuned,
      })
      byUplink.set(key, params)
    }
    return params
  }
  return {
    name: `gossip-${profile}`,
    description,
    create: (env, index, ctx) =>
      new GossipRouter(env, {
        params: paramsOf(
          ctx.scenario.class,
          ctx.network.uploadBps(index),
          ctx.scenario.messageBytes,
        ),
        privateKey,
        firstSeqno,
        msgIdFn,
        decodeRpc,
        encodeRpc,
        ...sharing,
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

/**
 * One-copy with per-source trees on (opt-in: `oneCopySourceTrees: true`): a repeated source's
 * messages are pushed along its latency tree, announced elsewhere (doc/gossip-extension.md).
 */
export const gossipOneCopySourceTreesStrategy: SimStrategy = {
  ...gossipStrategy(
    'optimized',
    'one-copy with per-source trees: pushes along each seen source tree of link latency',
    { oneCopy: true, oneCopySourceTrees: true },
  ),
  name: 'gossip-one-copy-trees',
}

/**
 * One-copy with per-source trees for every member (opt-in: `oneCopySourceTrees: 'all'`): each
 * node's entry spreads over the mesh before it publishes, so a random publisher's first message
 * follows its latency tree too, for a distance-vector exchange of Θ(N) entries per node.
 */
export const gossipOneCopyAllTreesStrategy: SimStrategy = {
  ...gossipStrategy(
    'optimized',
    'one-copy with per-source trees for every member: pushes along each source tree of link latency',
    { oneCopy: true, oneCopySourceTrees: 'all' },
  ),
  name: 'gossip-one-copy-all-trees',
}

/**
 * The optimized profile with the preamble extension on (opt-in: `preamble: true`): a large
 * message is preceded by a PREAMBLE, on which the receiver's other peers hold back their
 * copies (IMRECEIVING); flood-style pushes otherwise (doc/gossip-extension.md).
 */
export const gossipPreambleStrategy: SimStrategy = {
  ...gossipStrategy(
    'optimized',
    'optimized gossip with the preamble extension: PREAMBLE before large pushes, IMRECEIVING holds back other copies',
    { preamble: true },
  ),
  name: 'gossip-preamble',
}

/** One-copy and preamble extensions together. */
export const gossipOneCopyPreambleStrategy: SimStrategy = {
  ...gossipStrategy('optimized', 'optimized gossip with the one-copy and preamble extensions', {
    oneCopy: true,
    preamble: true,
  }),
  name: 'gossip-one-copy-preamble',
}

/** Optimized gossip: IDONTWANT, α = 1 IWANT, 1 s heartbeat, ingress not relayed. */
export const gossipOptimizedStrategy = gossipStrategy(
  'optimized',
  'gossipsub + IDONTWANT, eager/lazy push of large messages, one IWANT per message, 1 s heartbeat, ingress not relayed',
)

/**
 * `strategy` with the nodes `silent` says turned into silent relays from `fromMs` on: they
 * keep their meshes (subscriptions, GRAFTs, announces and every other control message still
 * go out) but every message they would send, forwarded, answered to an IWANT or INEED or
 * published, is dropped. A silent relay receives as any node does.
 */
export function withSilentRelays(
  strategy: SimStrategy,
  silent: (node: number) => boolean,
  fromMs: number,
): SimStrategy {
  return {
    ...strategy,
    create: (env, index, ctx) =>
      strategy.create(silent(index) ? silencedEnv(env, fromMs) : env, index, ctx),
  }
}

/** `env`, but frames sent from `fromMs` on lose their messages (a frame left empty is not sent). */
function silencedEnv(env: Env, fromMs: number): Env {
  return {
    self: env.self,
    logger: env.logger,
    now: () => env.now(),
    setTimer: (ms, fn) => env.setTimer(ms, fn),
    random: () => env.random(),
    disconnect: env.disconnect && ((peer, options) => env.disconnect?.(peer, options)),
    send: (peer, frame) => {
      if (env.now() < fromMs) return env.send(peer, frame)
      const rpc = decodeRpc(frame)
      if (rpc.messages.length === 0) return env.send(peer, frame)
      const rest = encodeRpc({ ...rpc, messages: [] })
      if (rest.length > 0) env.send(peer, rest)
    },
  }
}

/** `strategy` on its usual network, with `publishers` picking the nodes that publish. */
export function withPublishers(
  strategy: SimStrategy,
  publishers: (network: BuiltNetwork) => number[],
): SimStrategy {
  return {
    ...strategy,
    network: (scenario, prng) => {
      const network = strategy.network?.(scenario, prng) ?? buildNetwork(scenario, prng)
      return { ...network, publishers: publishers(network) }
    },
  }
}
