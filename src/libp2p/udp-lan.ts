import { logger } from '@libp2p/logger'
import type { RpLan } from '../rp/lan.ts'
import type { MulticastGroup } from '../rp/multicast/group-address.ts'
import { type JoinMode, UdpMulticastSocket } from '../rp/multicast/udp-multicast.ts'

const log = logger('consensus-multicast:rp:udp-lan')

/** Options of {@link UdpLan}: the host's LAN interface and how to use it. */
export interface UdpLanOptions {
  /** IPv4 address of the LAN interface: an RP's is the source S its members join. */
  interfaceAddress: string
  /** IP TTL of multicast datagrams (default 1: they never leave the LAN). */
  ttl?: number
  /** Whether this host's own sockets also receive what it multicasts (default false). */
  loopback?: boolean
  /** Join source-specific channels (default true); false joins any-source (IGMPv2 networks). */
  sourceSpecific?: boolean
  /**
   * Fault injection: a datagram this returns false for is dropped before the core sees it
   * (tests drop a seeded share of datagrams in the receive path). Default: keep all.
   */
  receiveFilter?: (source: string, bytes: Uint8Array) => boolean
}

interface Joined {
  readonly socket: Promise<UdpMulticastSocket | undefined>
  mode: Promise<JoinMode | undefined>
  /** Left, but not yet dropped from the socket: a join before then keeps the membership. */
  leaving: boolean
}

/**
 * The RP cores' LAN ({@link RpLan}) on real UDP sockets: an RP multicasts through one
 * socket bound to its interface address; a member binds one socket per group port (a
 * socket bound to a unicast address receives no multicast on Linux) and joins (S, G)
 * channels on it, handing what arrives to the core. No protocol logic lives here.
 */
export class UdpLan implements RpLan {
  /** @inheritdoc */
  readonly address: string
  private readonly options: UdpLanOptions
  private sender: UdpMulticastSocket | undefined
  private readonly ports = new Map<number, Promise<UdpMulticastSocket | undefined>>()
  private readonly channels = new Map<string, Joined>()
  private receiver: ((source: string, bytes: Uint8Array) => void) | undefined
  private closed = false
  /** Datagrams the core multicast before the sending socket was open (none once started). */
  notSent = 0

  constructor(options: UdpLanOptions) {
    this.options = options
    this.address = options.interfaceAddress
  }

  /** Where accepted datagrams go (the member core). */
  onDatagram(fn: (source: string, bytes: Uint8Array) => void): void {
    this.receiver = fn
  }

  /** Opens the sending socket (an RP, before its core starts). */
  async openSender(): Promise<void> {
    this.sender ??= await UdpMulticastSocket.open({
      interfaceAddress: this.options.interfaceAddress,
      bindAddress: this.options.interfaceAddress,
      port: 0,
      ttl: this.options.ttl,
      loopback: this.options.loopback,
    })
  }

  /** Datagrams handed to the kernel by the sending socket. */
  get sent(): { multicast: number; unicast: number } {
    return { ...(this.sender?.sent ?? { multicast: 0, unicast: 0 }) }
  }

  multicast(group: MulticastGroup, datagram: Uint8Array): void {
    if (this.sender === undefined) {
      this.notSent++
      return
    }
    this.sender.send(datagram, group.address, group.port)
  }

  join(source: string, group: MulticastGroup): void {
    const key = `${source} ${group.address}:${group.port}`
    const old = this.channels.get(key)
    if (old !== undefined) {
      // Left and joined again (a new key on the same channel): the membership stays.
      old.leaving = false
      return
    }
    if (this.closed) return
    const socket = this.socketFor(group.port)
    const joined: Joined = {
      leaving: false,
      socket,
      mode: socket.then((s) => {
        if (s === undefined || this.channels.get(key) !== joined) return undefined
        try {
          return s.join(source, group.address)
        } catch (err) {
          // No multicast here: the member's probe fails and it is served by unicast.
          log.error('cannot join (%s, %s): %e', source, group.address, err)
          return undefined
        }
      }),
    }
    this.channels.set(key, joined)
  }

  leave(source: string, group: MulticastGroup): void {
    const key = `${source} ${group.address}:${group.port}`
    const joined = this.channels.get(key)
    if (joined === undefined || joined.leaving) return
    joined.leaving = true
    void Promise.all([joined.socket, joined.mode]).then(([s, mode]) => {
      if (!joined.leaving || this.channels.get(key) !== joined) return
      this.channels.delete(key)
      if (s === undefined || mode === undefined || this.closed) return
      try {
        s.leave(source, group.address, mode)
      } catch (err) {
        log('leaving (%s, %s): %e', source, group.address, err)
      }
    })
  }

  /** Closes every socket. */
  async close(): Promise<void> {
    this.closed = true
    this.channels.clear()
    const sockets = await Promise.all(this.ports.values())
    this.ports.clear()
    for (const s of sockets) await s?.close()
    await this.sender?.close()
    this.sender = undefined
  }

  private socketFor(port: number): Promise<UdpMulticastSocket | undefined> {
    let p = this.ports.get(port)
    if (p !== undefined) return p
    p = UdpMulticastSocket.open({
      interfaceAddress: this.options.interfaceAddress,
      port,
      ttl: this.options.ttl,
      loopback: this.options.loopback,
      sourceSpecific: this.options.sourceSpecific,
    }).then(
      (s) => {
        s.onDatagram((bytes, source) => {
          if (this.options.receiveFilter?.(source, bytes) === false) return
          this.receiver?.(source, bytes)
        })
        return s
      },
      (err) => {
        log.error('cannot bind the group port %d: %e', port, err)
        return undefined
      },
    )
    this.ports.set(port, p)
    return p
  }
}
