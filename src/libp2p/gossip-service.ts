import type { PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { resolveGossipParams } from '../gossip/params.ts'
import { GOSSIP_PROTOCOLS } from '../gossip/protocol-ids.ts'
import { GossipRouter, type GossipRouterOptions } from '../gossip/router.ts'
import {
  DisseminationService,
  type DisseminationServiceComponents,
  type DisseminationServiceOptions,
  peerAddresses,
} from './dissemination-service.ts'

/**
 * The optimized gossip router as a libp2p service. Beside the common metrics it reports the
 * router's send-queue drops, IDONTWANT cancellations and the mesh size per topic.
 */
export class GossipService extends DisseminationService<GossipRouter> {
  constructor(
    components: GossipServiceComponents,
    options: DisseminationServiceOptions,
    routerOptions: GossipRouterOptions,
  ) {
    super(components, options, (env) => new GossipRouter(env, routerOptions))
    const m = this.metrics
    if (m === undefined) return
    m.counter('send_queue_frames_dropped', 'message frames dropped: send queue full', () => {
      return this.core.droppedFrames
    })
    m.counter('idontwant_cancelled', 'queued message frames cancelled by IDONTWANT', () => {
      return this.core.cancelledByIDontWant
    })
    m.gaugeGroup('mesh_peers', 'topic', 'mesh peers per subscribed topic', () =>
      Object.fromEntries(this.core.getTopics().map((t) => [t, this.core.getMeshPeers(t).length])),
    )
  }
}

/** What libp2p gives the gossip service: the generic components plus the node's key. */
export interface GossipServiceComponents extends DisseminationServiceComponents {
  /** The node's private key, used to sign messages under StrictSign. */
  privateKey: PrivateKey
}

/** Options of {@link gossip}: every router parameter, plus the driver's own. */
export interface GossipServiceOptions
  extends Omit<GossipRouterOptions, 'privateKey' | 'directPeers'> {
  /** Bytes that may wait in one peer's outbound stream buffer (default 16 MiB). */
  maxQueuedBytesPerPeer?: number
  /**
   * Direct peers (explicit peering agreements, which must be reciprocal), as multiaddrs
   * ending in `/p2p/<peer id>`: dialled at start and again whenever the connection is
   * gone; every new valid message of a topic they subscribe to is forwarded to them, and
   * they stay outside the mesh.
   */
  directPeers?: ReadonlyArray<string | Multiaddr>
  /** How often a lost direct peer is dialled again, in ms (default 1000). */
  directRedialIntervalMs?: number
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
  const { maxQueuedBytesPerPeer, directPeers = [], directRedialIntervalMs, ...rest } = options
  const direct = peerAddresses(directPeers, 'direct peer address')
  const signaturePolicy = rest.signaturePolicy ?? 'StrictSign'
  const routerOptions = { ...rest, signaturePolicy, directPeers: direct.map((d) => d.key) }
  const params = resolveGossipParams(routerOptions)
  return (components) =>
    new GossipService(
      components,
      {
        protocols: [...GOSSIP_PROTOCOLS],
        name: 'gossip',
        tag: '@consensus-multicast/gossip',
        maxFrameBytes: params.rpcLimits.maxFrameBytes,
        ...(maxQueuedBytesPerPeer === undefined ? {} : { maxQueuedBytesPerPeer }),
        keepConnected: direct.map((d) => d.addr),
        ...(directRedialIntervalMs === undefined
          ? {}
          : { redialIntervalMs: directRedialIntervalMs }),
      },
      { ...routerOptions, privateKey: components.privateKey },
    )
}
