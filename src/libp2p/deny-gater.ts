import type { ConnectionGater, PeerId } from '@libp2p/interface'

/** Anything that can say whether a peer is refused (a {@link DisseminationService} can). */
export interface DenyList {
  /** True while `peer` must be refused. */
  isDenied(peer: PeerId): boolean
}

/**
 * A libp2p connection gater that refuses peers a service disconnected for misbehaving, before
 * their connections are upgraded and before we dial them. `lookup` is called on each check
 * (the service exists only once the node is built), so it may return `undefined` meanwhile:
 *
 * ```ts
 * const node = await createLibp2p({
 *   connectionGater: denyListGater(() => node?.services.dissemination),
 *   services: { dissemination: gossip() },
 * })
 * ```
 */
export function denyListGater(lookup: () => DenyList | undefined): ConnectionGater {
  const denied = (peer: PeerId) => lookup()?.isDenied(peer) ?? false
  return {
    denyDialPeer: denied,
    denyInboundEncryptedConnection: denied,
    denyOutboundEncryptedConnection: denied,
    denyInboundUpgradedConnection: denied,
    denyOutboundUpgradedConnection: denied,
  }
}
