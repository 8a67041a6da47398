import type { Env } from '../common/env.ts'
import { monotonicNow, nodeTimer } from '../common/system-clock.ts'
import type { Orderer } from './orderer.ts'
import { WitnessServer, type WitnessServerOptions } from './server.ts'
import { TcpLink, TcpListener } from './tcp-link.ts'

/** Options of {@link ServerNode.start}. */
export interface ServerNodeOptions extends WitnessServerOptions {
  /** The orderer whose ordered references this server follows. */
  orderer: Orderer
  /** TCP address to listen on. Default 127.0.0.1, a free port. */
  host?: string
  /** TCP port; 0 picks one. */
  port?: number
}

/** A witness server on a real TCP listener (driver only: the logic is in {@link WitnessServer}). */
export class ServerNode {
  /** The protocol core. */
  readonly core: WitnessServer
  /** The listener brokers (and other servers) connect to. */
  readonly listener: TcpListener
  /** Links to the other servers, by peer key "server/i" (for fetching batches). */
  private readonly peers: Map<string, TcpLink>

  private constructor(core: WitnessServer, listener: TcpListener, peers: Map<string, TcpLink>) {
    this.core = core
    this.listener = listener
    this.peers = peers
  }

  /** Starts listening and following the orderer. */
  static async start(opts: ServerNodeOptions): Promise<ServerNode> {
    let core: WitnessServer | undefined
    const listener = await TcpListener.listen(
      {
        frame: (peer, frame) => core?.receive(peer, frame),
        misbehaved: (peer, reason) => core?.penalise(peer, reason),
        closed: (peer) => core?.peerDisconnected(peer),
      },
      { host: opts.host, port: opts.port },
    )
    const peers = new Map<string, TcpLink>()
    const env: Env = {
      self: `server/${opts.index}`,
      now: monotonicNow,
      send: (peer, frame) => {
        const link = peers.get(peer)
        if (link !== undefined) link.send(frame)
        else listener.send(peer, frame)
      },
      setTimer: nodeTimer,
      random: Math.random,
    }
    core = new WitnessServer(env, opts)
    core.attach(opts.orderer)
    core.start()
    return new ServerNode(core, listener, peers)
  }

  /**
   * Connects to the other servers (addresses by index; this server's own is skipped), so
   * that an ordered batch this server never received can be fetched from them.
   */
  async connectPeers(addresses: readonly { host: string; port: number }[]): Promise<void> {
    await Promise.all(
      addresses.map(async (a, i) => {
        const peer = `server/${i}`
        if (i === this.core.index || this.peers.has(peer)) return
        const link = await TcpLink.connect(a.host, a.port, peer, {
          frame: (p, frame) => this.core.receive(p, frame),
          misbehaved: (p, reason) => this.core.penalise(p, reason),
        })
        this.peers.set(peer, link)
      }),
    )
  }

  /** The TCP port brokers dial. */
  get port(): number {
    return this.listener.port
  }

  /** Stops the core and closes the listener. */
  async close(): Promise<void> {
    this.core.stop()
    for (const l of this.peers.values()) l.close()
    await this.listener.close()
  }
}
