import type { MulticastGroup } from './multicast/group-address.ts'

/**
 * A host's LAN, as the RP and member cores see it: the only way they multicast or join a
 * group, so the cores stay sans-IO. The simulator's LAN model and the libp2p driver's UDP
 * sockets each supply one; datagrams that arrive for a joined group are handed back to the
 * core by the driver (`ReplicationPoint`/`RpMember.datagramReceived`).
 */
export interface RpLan {
  /** This host's address on the LAN; an RP's is the source S its members join. */
  readonly address: string
  /** Sends one datagram to `group` on the LAN (the RP side). */
  multicast(group: MulticastGroup, datagram: Uint8Array): void
  /** Joins the channel (source, group) (the member side); datagrams on it reach the core. */
  join(source: string, group: MulticastGroup): void
  /** Leaves the channel (source, group). */
  leave(source: string, group: MulticastGroup): void
}
