import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { type Identify, identify } from '@libp2p/identify'
import type { ServiceMap } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p, type ServiceFactoryMap } from 'libp2p'
import { gossip } from '../../src/gossip/index.ts'
import type { GossipService } from '../../src/libp2p/gossip-service.ts'

/**
 * A real libp2p 3 node on 127.0.0.1 over TCP with noise and yamux, hosting `services`.
 * Tests use it wherever a user would run a real node.
 */
export async function createTestNode<S extends ServiceMap>(
  services: ServiceFactoryMap<S>,
): Promise<Libp2p<S & { identify: Identify }>> {
  return createLibp2p<S & { identify: Identify }>({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ...services } as ServiceFactoryMap<
      S & { identify: Identify }
    >,
  })
}

/** Dials `b` from `a` on its first listen address. */
export async function connect(a: Libp2p, b: Libp2p): Promise<void> {
  await a.dial(b.getMultiaddrs()[0])
}

/**
 * Two real nodes running our gossip service (unsigned messages), both subscribed to `topic`
 * and then connected; each is added to `running` so the test's cleanup stops it.
 */
export async function twoGossipNodes(
  running: Libp2p[],
  topic: string,
): Promise<[Libp2p<{ dissemination: GossipService }>, Libp2p<{ dissemination: GossipService }>]> {
  const make = async () => {
    const n = await createTestNode({ dissemination: gossip({ signaturePolicy: 'StrictNoSign' }) })
    running.push(n)
    n.services.dissemination.subscribe(topic)
    return n
  }
  const a = await make()
  const b = await make()
  await connect(a, b)
  return [a, b]
}
