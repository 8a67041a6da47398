import { BlockList, type IPVersion, type ServerOpts, type SocketAddress } from 'node:net'
import { logger } from '@libp2p/logger'
import { type TCPOptions, type TCPSocketOptions, tcp } from '@libp2p/tcp'

/** Says whether new inbound connections from an IP address are refused ({@link DenyListGater} does). */
export interface AddressRefusal {
  /** True while new connections from `ip` (a bare IP, as the socket gives it) must be refused. */
  refusesAddress(ip: string): boolean
}

/**
 * libp2p's TCP transport (`tcp(init)`), whose listeners close every new connection from an
 * address `refusal` refuses as the kernel hands it over, before libp2p builds anything for it:
 *
 * ```ts
 * const gater = denyListGater(() => node?.services.dissemination)
 * const node = await createLibp2p({
 *   transports: [refusingTcp(gater)],
 *   connectionGater: gater,
 *   services: { dissemination: gossip() },
 * })
 * ```
 *
 * Why: libp2p asks its gater about an inbound connection only inside the upgrade, once the
 * listener has wrapped the socket, parsed its address and set up timers and listeners, and a
 * refusal there ends in an error and a reset; a denied peer redialling in a loop cost the
 * listener ~1.2 ms of CPU per dial that way, ~0.5 ms closed here (`npm run bench -- attack
 * redial`). The listener's `net.Server` gets a `blockList` whose check asks `refusal` (TCP's
 * `listenOpts` go to `net.createServer`, and Node closes a blocked connection's handle before
 * it makes a socket of it). Node before 22.13 has no server `blockList`: there the gater
 * still refuses the same connections inside the upgrade, at libp2p's cost.
 */
export function refusingTcp(
  refusal: AddressRefusal,
  init: TCPOptions = {},
): ReturnType<typeof tcp> {
  const listenOpts: TCPSocketOptions & ServerOpts = {
    ...init.listenOpts,
    blockList: new RefusalBlockList(refusal),
  }
  return tcp({ ...init, listenOpts })
}

const log = logger('consensus-multicast:refusing-tcp')

/** A `net.BlockList` whose every check is a question to a refusal (it holds no rules). */
class RefusalBlockList extends BlockList {
  private readonly refusal: AddressRefusal

  constructor(refusal: AddressRefusal) {
    super()
    this.refusal = refusal
  }

  override check(address: string | SocketAddress, _type?: IPVersion): boolean {
    const ip = typeof address === 'string' ? address : address.address
    const refused = this.refusal.refusesAddress(ip)
    // libp2p never sees these connections, so this is their only trace.
    if (refused) log('refused a connection from %s at the listener', ip)
    return refused
  }
}
