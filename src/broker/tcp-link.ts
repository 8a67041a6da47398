import { connect, createServer, type Server, type Socket } from 'node:net'
import { logger } from '@libp2p/logger'
import type { PeerKey } from '../common/artifact.ts'
import { encodeLengthPrefixed, LengthPrefixedDecoder } from '../common/length-prefixed.ts'

const log = logger('consensus-multicast:broker:tcp')

/** Receives one frame from a link; `misbehaved` reports bad framing (the link is closed). */
export interface LinkHandlers {
  /** A whole frame arrived. */
  frame(peer: PeerKey, frame: Uint8Array): void
  /** The peer broke the framing (oversized or malformed length); the link was closed. */
  misbehaved?(peer: PeerKey, reason: string): void
  /** The connection closed. */
  closed?(peer: PeerKey): void
}

/** Default largest frame on a broker ↔ server link (a distilled batch of 65,536 entries fits). */
export const DEFAULT_MAX_LINK_FRAME = 64 * 1024 * 1024

function attach(socket: Socket, peer: PeerKey, maxFrame: number, handlers: LinkHandlers): void {
  socket.setNoDelay(true)
  const decoder = new LengthPrefixedDecoder(maxFrame)
  socket.on('data', (chunk) => {
    let frames: Uint8Array[]
    try {
      frames = decoder.push(chunk)
    } catch (err) {
      log('bad framing from %s: %s', peer, (err as Error).message)
      handlers.misbehaved?.(peer, 'bad-framing')
      socket.destroy()
      return
    }
    for (const f of frames) handlers.frame(peer, f)
  })
  socket.on('error', (err) => log('link %s: %s', peer, err.message))
  socket.on('close', () => handlers.closed?.(peer))
}

/** A framed TCP connection (varint length-prefixed frames, as libp2p streams). */
export class TcpLink {
  private readonly socket: Socket

  private constructor(socket: Socket) {
    this.socket = socket
  }

  /** Connects to host:port; frames from the other side arrive as from `peer`. */
  static async connect(
    host: string,
    port: number,
    peer: PeerKey,
    handlers: LinkHandlers,
    maxFrame = DEFAULT_MAX_LINK_FRAME,
  ): Promise<TcpLink> {
    const socket = connect({ host, port })
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.once('connect', () => {
        socket.off('error', reject)
        resolve()
      })
    })
    attach(socket, peer, maxFrame, handlers)
    return new TcpLink(socket)
  }

  /** Sends one frame. */
  send(frame: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(encodeLengthPrefixed(frame))
  }

  /** Closes the connection. */
  close(): void {
    this.socket.destroy()
  }
}

/**
 * Accepts framed TCP connections; each connection is a peer named "tcp/N", and `send`
 * answers on that same connection.
 */
export class TcpListener {
  private readonly server: Server
  private readonly sockets = new Map<PeerKey, Socket>()
  private counter = 0

  private constructor(server: Server) {
    this.server = server
  }

  /** Listens on host:port (0 picks a free port); at most `maxConnections` (256) at once. */
  static async listen(
    handlers: LinkHandlers,
    options: { host?: string; port?: number; maxFrame?: number; maxConnections?: number } = {},
  ): Promise<TcpListener> {
    const server = createServer()
    // Connections beyond this are refused by Node (brokers are few; this bounds the state).
    server.maxConnections = options.maxConnections ?? 256
    const listener = new TcpListener(server)
    server.on('connection', (socket) => {
      const peer = `tcp/${++listener.counter}`
      listener.sockets.set(peer, socket)
      socket.on('close', () => listener.sockets.delete(peer))
      attach(socket, peer, options.maxFrame ?? DEFAULT_MAX_LINK_FRAME, handlers)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve())
    })
    return listener
  }

  /** The bound port. */
  get port(): number {
    const a = this.server.address()
    return typeof a === 'object' && a !== null ? a.port : 0
  }

  /** Sends one frame to a connected peer (dropped when it is gone). */
  send(peer: PeerKey, frame: Uint8Array): void {
    const s = this.sockets.get(peer)
    if (s !== undefined && !s.destroyed) s.write(encodeLengthPrefixed(frame))
  }

  /** Closes every connection and stops listening. */
  async close(): Promise<void> {
    for (const s of this.sockets.values()) s.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
