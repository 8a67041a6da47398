import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { logger } from '@libp2p/logger'
import { RejectionCounter } from './rejection-counter.ts'

const log = logger('consensus-multicast:rp:udp-multicast')

/** Options of {@link UdpMulticastSocket.open}. */
export interface UdpMulticastOptions {
  /** IPv4 address of the LAN interface to join on and send from. */
  readonly interfaceAddress: string
  /** UDP port to bind: the group's port on a member; 0 (any) or a control port on an RP. */
  readonly port: number
  /**
   * Address to bind. Members must bind the wildcard (the default, `0.0.0.0`): on Linux a
   * socket bound to a unicast address does not receive multicast.
   */
  readonly bindAddress?: string
  /** IP TTL of multicast datagrams. Default 1: they never leave the LAN (no router forwards them). */
  readonly ttl?: number
  /**
   * IP_MULTICAST_LOOP: whether this host's own sockets also receive what it multicasts.
   * Default false: an RP has no member on its own host, and loopback copies would only cost
   * CPU. Turn it on only to run sender and receiver on one host.
   */
  readonly loopback?: boolean
  /** SO_RCVBUF in bytes, so a burst of fragments is not dropped by the kernel. Default 4 MiB. */
  readonly receiveBufferBytes?: number
  /**
   * Join source-specific (S, G) channels (the default). False joins any-source straight
   * away, for networks that run only IGMPv2; the source is then filtered here.
   */
  readonly sourceSpecific?: boolean
}

/** How a group was joined. */
export type JoinMode = 'ssm' | 'asm'

/**
 * The UDP driver under the multicast cores: one `dgram` socket that joins (S, G) channels
 * with `addSourceSpecificMembership` (the kernel sends IGMPv3 reports, so switches that
 * snoop forward the group only to members), falls back to any-source `addMembership` where
 * SSM is refused, and sends with TTL 1. Only datagrams from the sources joined are passed
 * up; with an any-source join the source filter is done here in software, and every
 * datagram from anywhere else is counted. No protocol logic lives here.
 */
export class UdpMulticastSocket {
  /** Datagrams dropped for coming from a source not joined, by source. */
  readonly dropped = new RejectionCounter()
  private readonly socket: Socket
  private readonly options: UdpMulticastOptions
  private readonly sources = new Set<string>()
  private handler: ((bytes: Uint8Array, source: string, port: number) => void) | undefined
  private pending = 0
  private idle: (() => void)[] = []
  /** Datagrams handed to the kernel, to multicast groups and to unicast addresses. */
  readonly sent = { multicast: 0, unicast: 0 }

  private constructor(socket: Socket, options: UdpMulticastOptions) {
    this.socket = socket
    this.options = options
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => this.onMessage(msg, rinfo))
    socket.on('error', (err) => log.error('socket error %e', err))
  }

  /** Binds a socket and sets the multicast interface, TTL and loopback. */
  static async open(options: UdpMulticastOptions): Promise<UdpMulticastSocket> {
    const socket = createSocket({ type: 'udp4', reuseAddr: true })
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(options.port, options.bindAddress ?? '0.0.0.0', () => {
        socket.off('error', reject)
        resolve()
      })
    })
    socket.setMulticastInterface(options.interfaceAddress)
    socket.setMulticastTTL(options.ttl ?? 1)
    socket.setMulticastLoopback(options.loopback ?? false)
    socket.setRecvBufferSize(options.receiveBufferBytes ?? 4 << 20)
    return new UdpMulticastSocket(socket, options)
  }

  /** The bound port. */
  get port(): number {
    return this.socket.address().port
  }

  /**
   * Accepts datagrams from `source` (the RP) and joins (source, group) on the interface:
   * SSM when the kernel allows it, else any-source membership with the software filter.
   */
  join(source: string, group: string): JoinMode {
    this.sources.add(source)
    if (this.options.sourceSpecific === false) {
      this.socket.addMembership(group, this.options.interfaceAddress)
      return 'asm'
    }
    try {
      this.socket.addSourceSpecificMembership(source, group, this.options.interfaceAddress)
      return 'ssm'
    } catch (err) {
      log('SSM join of (%s, %s) refused, any-source instead: %e', source, group, err)
      this.socket.addMembership(group, this.options.interfaceAddress)
      return 'asm'
    }
  }

  /** Leaves (source, group) joined with `mode`. */
  leave(source: string, group: string, mode: JoinMode): void {
    if (mode === 'ssm')
      this.socket.dropSourceSpecificMembership(source, group, this.options.interfaceAddress)
    else this.socket.dropMembership(group, this.options.interfaceAddress)
  }

  /** Accepts unicast datagrams from `source` too (an RP's control port, without joining). */
  allowSource(source: string): void {
    this.sources.add(source)
  }

  /** Sets the handler of accepted datagrams (bytes are a view of a buffer that is not reused). */
  onDatagram(fn: (bytes: Uint8Array, source: string, port: number) => void): void {
    this.handler = fn
  }

  /** Sends one datagram; errors (e.g. no route) are logged, as UDP loss would be. */
  send(bytes: Uint8Array, address: string, port: number): void {
    this.pending++
    this.socket.send(bytes, port, address, (err) => {
      if (err) log('send to %s:%d failed: %e', address, port, err)
      else if (isMulticast(address)) this.sent.multicast++
      else this.sent.unicast++
      if (--this.pending === 0) for (const fn of this.idle.splice(0)) fn()
    })
  }

  /** Resolves once every datagram passed to {@link send} has been handed to the kernel. */
  flushed(): Promise<void> {
    if (this.pending === 0) return Promise.resolve()
    return new Promise((resolve) => this.idle.push(resolve))
  }

  /** Closes the socket. */
  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()))
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.sources.size > 0 && !this.sources.has(rinfo.address)) {
      this.dropped.count(rinfo.address, 'source')
      return
    }
    this.handler?.(
      new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength),
      rinfo.address,
      rinfo.port,
    )
  }
}

/** True for an IPv4 address in 224.0.0.0/4. */
function isMulticast(address: string): boolean {
  const first = Number(address.slice(0, address.indexOf('.')))
  return first >= 224 && first <= 239
}
