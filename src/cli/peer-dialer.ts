import type { Logger } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'

/**
 * Keeps `node` connected to `peers` (each ending in `/p2p/<peer id>`): dials them now and,
 * every `intervalMs`, dials again those without an open connection, one dial per peer at a
 * time. Peers may thus be started in any order and restarted. Returns a stop function.
 */
export function keepDialing(
  node: Libp2p,
  peers: readonly Multiaddr[],
  intervalMs: number,
  log: Logger,
): () => void {
  const dialing = new Set<string>()
  const round = () => {
    for (const addr of peers) {
      const id = addr.getComponents().findLast((c) => c.name === 'p2p')?.value
      if (id === undefined || id === node.peerId.toString() || dialing.has(id)) continue
      if (node.getConnections().some((c) => c.remotePeer.toString() === id)) continue
      dialing.add(id)
      node
        .dial(addr)
        .catch((err) => log('cannot reach %a yet: %e', addr, err))
        .finally(() => dialing.delete(id))
    }
  }
  round()
  const timer = setInterval(round, intervalMs)
  return () => clearInterval(timer)
}
