import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import { setNewest } from '../common/bounded-map.ts'
import { ipOf } from '../common/ip-address.ts'
import { TokenBucket } from '../common/token-bucket.ts'

/** Anything that can say whether a peer is refused (a {@link DisseminationService} can). */
export interface DenyList {
  /** True while `peer` must be refused. */
  isDenied(peer: PeerId): boolean
  /**
   * When (`Date.now()` ms) a peer still refused was last disconnected from IP address `ip`,
   * if one was (optional): that address's handshakes are then throttled from the
   * disconnection on, not from the denied peer's first redial.
   */
  disconnectedFrom?(ip: string): number | undefined
}

/** How {@link denyListGater} throttles the handshakes of addresses denied peers come from. */
export interface DenyListGaterOptions {
  /**
   * Handshakes a second an address gets once a denied peer came from it (default 0.5). A
   * denied peer is known only after the encryption handshake, which costs the listener key
   * exchanges and milliseconds of its event loop; beyond this rate, connections from that
   * address are refused before it. A denied peer that redials at once spends every token
   * anyway, so a higher rate mostly buys it more of the listener's time. A handshake costs
   * the listener 3–15 ms of CPU, against ~0.5 ms for a dial refused at the listener
   * (`npm run bench -- attack redial`); they are kept so that a new peer from the same address
   * (behind one NAT, or the next peer on a test's loopback) gets in within seconds: a backoff
   * doubling the wait after each denied handshake, tried, kept such peers out for tens of
   * seconds after a persistent attacker.
   */
  deniedHandshakesPerSecond?: number
  /** Handshakes of denied peers an address may spend at once (default 1). */
  deniedHandshakesBurst?: number
  /** How long an address stays throttled after its last denied handshake, in ms (default 60 000). */
  throttleMs?: number
  /** Addresses throttled at once (the least recently denied is forgotten first; default 1024). */
  maxThrottled?: number
  /** The clock, in ms (default `Date.now`, the clock {@link DenyList.disconnectedFrom} uses). */
  now?: () => number
}

/**
 * The gater {@link denyListGater} builds: libp2p's connection gater, and the check by address
 * it refuses new inbound connections with, for a listener to apply before libp2p's upgrade
 * (see {@link refusingTcp}).
 */
export interface DenyListGater extends ConnectionGater {
  /**
   * True while new inbound connections from IP address `ip` (as the socket gives it, e.g.
   * `10.0.0.1` or `::ffff:10.0.0.1`) are refused before encryption: a denied peer came from
   * there and the address has no handshake left.
   */
  refusesAddress(ip: string): boolean
}

interface Throttle {
  /** Handshakes a denied peer may still start from this address. */
  tokens: TokenBucket
  /** When a denied peer's handshake from this address last ended. */
  deniedAt: number
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
 *
 * A denied peer that keeps dialling still costs an encryption handshake per attempt (its
 * identity is known only at the end of it). So each handshake that ends in a refusal spends a
 * token of its IP address, and while the address has none left, every new connection from it
 * is refused before encryption: a denied peer gets `deniedHandshakesPerSecond` handshakes a
 * second (one every two seconds by default: a redialling attacker costs the listener three
 * handshakes in six seconds, each of which delays the honest traffic it carries). The
 * disconnection itself spends a token of each address the peer was connected from (when the
 * deny list says which, see {@link DenyList.disconnectedFrom}), so that its first redial
 * dies before encryption too.
 * Connections already open are untouched; a new honest peer behind the same address waits
 * for a token like the denied one.
 *
 * libp2p asks the gater about a new inbound connection only once it has built a connection
 * object and started its upgrade (~1.2 ms of the listener's CPU per refused dial, measured);
 * give the gater to {@link refusingTcp} as well to close such sockets before any of that.
 */
export function denyListGater(
  lookup: () => DenyList | undefined,
  options: DenyListGaterOptions = {},
): DenyListGater {
  const {
    deniedHandshakesPerSecond = 0.5,
    deniedHandshakesBurst = 1,
    throttleMs = 60_000,
    maxThrottled = 1024,
    now: clock = Date.now,
  } = options
  /** IP → its tokens (insertion order is the order of their last denied handshake). */
  const throttled = new Map<string, Throttle>()
  const denied = (peer: PeerId) => lookup()?.isDenied(peer) ?? false
  const ip = (maConn: MultiaddrConnection) => ipOf(maConn.remoteAddr.toString())
  /** A denied peer's handshake (or disconnection) from `key` spends one of its tokens. */
  const spend = (key: string, at: number) => {
    let t = throttled.get(key)
    if (t === undefined) {
      t = {
        tokens: new TokenBucket(deniedHandshakesPerSecond, deniedHandshakesBurst, at),
        deniedAt: at,
      }
    }
    t.tokens.spend(1, at)
    t.deniedAt = at
    setNewest(throttled, key, t, maxThrottled)
    return t
  }
  const refusesAddress = (address: string) => {
    // One key per host, from a multiaddr or a bare IP (a dual-stack socket gives an IPv4 peer
    // as `::ffff:a.b.c.d`).
    const key = ipOf(address)
    const now = clock()
    let t = throttled.get(key)
    if (t !== undefined && now - t.deniedAt >= throttleMs) {
      throttled.delete(key)
      t = undefined
    }
    if (t === undefined) {
      // Not throttled yet: a peer denied while connected from here spent a token leaving.
      const left = lookup()?.disconnectedFrom?.(key)
      if (left === undefined || now - left >= throttleMs) return false
      t = spend(key, Math.min(left, now))
    }
    return t.tokens.available(now) < 1
  }
  return {
    denyDialPeer: denied,
    refusesAddress,
    denyInboundConnection: (maConn) => refusesAddress(maConn.remoteAddr.toString()),
    denyInboundEncryptedConnection: (peer, maConn) => {
      if (!denied(peer)) return false
      spend(ip(maConn), clock())
      return true
    },
    denyOutboundEncryptedConnection: denied,
    denyInboundUpgradedConnection: denied,
    denyOutboundUpgradedConnection: denied,
  }
}
