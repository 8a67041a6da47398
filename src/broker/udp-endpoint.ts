import type { Socket } from 'node:dgram'
import { logger } from '@libp2p/logger'
import type { PeerKey } from '../common/artifact.ts'
import type { Env } from '../common/env.ts'
import { InvalidParametersError } from '../common/errors.ts'
import { bindUdpSocket, endpointEnv, splitHostPort } from './udp-socket.ts'

const log = logger('consensus-multicast:broker:udp')

/** Options of {@link UdpEndpoint.bind}. */
export interface UdpEndpointOptions {
  /** Address to bind. Default 127.0.0.1. */
  host?: string
  /** Port to bind; 0 picks a free one. Default 0. */
  port?: number
  /** Kernel receive buffer in bytes (capped by net.core.rmem_max). Default: the system's. */
  recvBufferSize?: number
  /** Kernel send buffer in bytes. Default: the system's. */
  sendBufferSize?: number
  /** Largest datagram accepted; larger ones are dropped and counted. Default 2,048. */
  maxDatagramBytes?: number
  /**
   * Sockets bound to the same port (SO_REUSEPORT; Linux spreads flows over them by
   * address hash), each with its own kernel queue: a flood from one source fills only its
   * socket's queue, and the event loop reads every socket in turn, so datagrams from
   * other sources are not dropped behind it. Needs `port` 0 or a free port. Default 1.
   */
  sockets?: number
}

/** Receives one datagram from `peer` ("host:port"). */
export type DatagramHandler = (peer: PeerKey, frame: Uint8Array) => void

/**
 * A UDP socket that drives a sans-IO core: peers are "host:port" strings, frames are
 * single datagrams. It owns no protocol logic.
 */
export class UdpEndpoint {
  private readonly socket: Socket
  private readonly extra: Socket[]
  private readonly maxDatagram: number
  private readonly addresses = new Map<PeerKey, [string, number]>()
  private handler: DatagramHandler = () => {}
  private closed = false
  /** Datagrams received. */
  received = 0
  /** Datagrams sent. */
  sent = 0
  /** Datagrams dropped as oversized. */
  oversized = 0
  /** Send errors reported by the socket. */
  sendErrors = 0

  private constructor(sockets: Socket[], maxDatagram: number) {
    this.socket = sockets[0]
    this.extra = sockets.slice(1)
    this.maxDatagram = maxDatagram
    for (const socket of sockets) {
      socket.on('message', (msg, rinfo) => {
        this.received++
        if (msg.length > this.maxDatagram) {
          this.oversized++
          return
        }
        this.handler(`${rinfo.address}:${rinfo.port}`, msg)
      })
      socket.on('error', (err) => log.error('socket error: %e', err))
    }
  }

  /** Binds a socket. */
  static async bind(options: UdpEndpointOptions = {}): Promise<UdpEndpoint> {
    const n = options.sockets ?? 1
    if (!Number.isInteger(n) || n < 1) throw new InvalidParametersError('sockets must be ≥ 1')
    const bindOne = (port: number) =>
      bindUdpSocket({
        host: options.host ?? '127.0.0.1',
        port,
        reusePort: n > 1,
        recvBufferSize: options.recvBufferSize,
        sendBufferSize: options.sendBufferSize,
      })
    const first = await bindOne(options.port ?? 0)
    const sockets = [first]
    for (let i = 1; i < n; i++) sockets.push(await bindOne(first.address().port))
    return new UdpEndpoint(sockets, options.maxDatagramBytes ?? 2048)
  }

  /** This endpoint's "host:port". */
  get address(): PeerKey {
    const a = this.socket.address()
    return `${a.address}:${a.port}`
  }

  /** The kernel receive buffer size actually granted. */
  get recvBufferSize(): number {
    return this.socket.getRecvBufferSize()
  }

  /** Sets the function that receives datagrams. */
  onFrame(handler: DatagramHandler): void {
    this.handler = handler
  }

  /** Sends one datagram to "host:port". */
  send(peer: PeerKey, frame: Uint8Array): void {
    let addr = this.addresses.get(peer)
    if (addr === undefined) {
      addr = splitHostPort(peer)
      if (this.addresses.size > 100_000) this.addresses.clear()
      this.addresses.set(peer, addr)
    }
    this.sent++
    this.socket.send(frame, addr[1], addr[0], (err) => {
      if (err) this.sendErrors++
    })
  }

  /** An {@link Env} whose `send` goes out of this socket. */
  env(): Env {
    return endpointEnv(this.address, (peer, frame) => this.send(peer, frame))
  }

  /** Closes the socket (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.all(
      [this.socket, ...this.extra].map(
        (s) => new Promise<void>((resolve) => s.close(() => resolve())),
      ),
    )
  }
}
