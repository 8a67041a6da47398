import type { PrivateKey } from '@libp2p/interface'
import { resolveGossipParams } from '../gossip/params.ts'
import { GOSSIP_PROTOCOLS } from '../gossip/protocol-ids.ts'
import { GossipRouter, type GossipRouterOptions } from '../gossip/router.ts'
import { CoreService, type CoreServiceComponents } from './core-service.ts'

/** The optimized gossip router as a libp2p service. */
export type GossipService = CoreService<GossipRouter>

/** What libp2p gives the gossip service: the generic components plus the node's key. */
export interface GossipServiceComponents extends CoreServiceComponents {
  /** The node's private key, used to sign messages under StrictSign. */
  privateKey: PrivateKey
}

/** Options of {@link gossip}: every router parameter, plus the driver's buffer bound. */
export interface GossipServiceOptions extends Omit<GossipRouterOptions, 'privateKey'> {
  /** Bytes that may wait in one peer's outbound stream buffer (default 16 MiB). */
  maxQueuedBytesPerPeer?: number
}

/**
 * Gossipsub-compatible dissemination as a libp2p 3 service:
 * `createLibp2p({ services: { dissemination: gossip() } })`. Speaks `/meshsub/1.2.0`,
 * `/meshsub/1.1.0` and `/meshsub/1.0.0` with the standard RPC protobuf, so it joins a
 * network of stock gossipsub peers. Signs with the node's key (StrictSign) unless told
 * otherwise. Throws `InvalidParametersError` at once for impossible parameters.
 */
export function gossip(
  options: GossipServiceOptions = {},
): (components: GossipServiceComponents) => GossipService {
  const { maxQueuedBytesPerPeer, ...routerOptions } = options
  const signaturePolicy = routerOptions.signaturePolicy ?? 'StrictSign'
  const params = resolveGossipParams({ ...routerOptions, signaturePolicy })
  return (components) =>
    new CoreService(
      components,
      {
        protocols: [...GOSSIP_PROTOCOLS],
        name: 'gossip',
        maxFrameBytes: params.rpcLimits.maxFrameBytes,
        ...(maxQueuedBytesPerPeer === undefined ? {} : { maxQueuedBytesPerPeer }),
      },
      (env) =>
        new GossipRouter(env, {
          ...routerOptions,
          signaturePolicy,
          privateKey: components.privateKey,
        }),
    )
}
