import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { type Identify, identify } from '@libp2p/identify'
import type { PrivateKey } from '@libp2p/interface'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Registry } from 'prom-client'
import { denyListGater } from '../libp2p/deny-gater.ts'
import { type FloodService, flood } from '../libp2p/flood-service.ts'
import {
  type GossipService,
  type GossipServiceComponents,
  gossip,
} from '../libp2p/gossip-service.ts'
import { refusingTcp } from '../libp2p/refusing-tcp.ts'
import { type RpService, replicationPoints } from '../libp2p/rp-service.ts'
import type { NodeConfig } from './node-config.ts'

/** The dissemination service a CLI node hosts, whichever the strategy. */
export type NodeService = GossipService | RpService | FloodService

/** A CLI node: libp2p with identify and one dissemination service. */
export type CliNode = Libp2p<{ identify: Identify; dissemination: NodeService }>

function service(config: NodeConfig): (components: GossipServiceComponents) => NodeService {
  if (config.strategy === 'gossip') return gossip()
  if (config.strategy === 'flood') return flood()
  const role = config.rp
  if (role === undefined) throw new Error('unreachable: rp strategy without a role')
  const lanMulticast = role.lanMulticast
  return replicationPoints(
    role.role === 'member'
      ? { role: 'member', rps: role.rps, lanMulticast }
      : { role: 'rp', backbone: role.backbone, lanMulticast },
  )
}

/**
 * Creates and starts the node the configuration describes, the stack of the examples (TCP,
 * noise, yamux, identify), with libp2p's metrics going to `registry` when given. Peers its
 * service cuts off are refused at the TCP listener and by the connection gater for as long
 * as the service denies them.
 */
export async function createCliNode(
  config: NodeConfig,
  privateKey: PrivateKey | undefined,
  registry: Registry | undefined,
): Promise<CliNode> {
  let node: CliNode | undefined
  const gater = denyListGater(() => node?.services.dissemination)
  node = await createLibp2p({
    ...(privateKey === undefined ? {} : { privateKey }),
    addresses: { listen: config.listen.map((a) => a.toString()) },
    transports: [refusingTcp(gater)],
    connectionGater: gater,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...(registry === undefined ? {} : { metrics: prometheusMetrics({ registry }) }),
    services: {
      identify: identify(),
      dissemination: service(config),
    },
  })
  node.services.dissemination.subscribe(config.topic)
  return node
}
