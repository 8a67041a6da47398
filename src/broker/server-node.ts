import type { Env } from '../common/env.ts'
import { monotonicNow, nodeTimer } from '../common/system-clock.ts'
import type { Orderer } from './orderer.ts'
import { WitnessServer, type WitnessServerOptions } from './server.ts'
import { TcpListener } from './tcp-link.ts'

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
  /** The listener brokers connect to. */
  readonly listener: TcpListener

  private constructor(core: WitnessServer, listener: TcpListener) {
    this.core = core
    this.listener = listener
  }

  /** Starts listening and following the orderer. */
  static async start(opts: ServerNodeOptions): Promise<ServerNode> {
    let core: WitnessServer | undefined
    const listener = await TcpListener.listen(
      {
        frame: (peer, frame) => core?.receive(peer, frame),
        misbehaved: (peer, reason) => core?.penalise(peer, reason),
      },
      { host: opts.host, port: opts.port },
    )
    const env: Env = {
      self: `server/${opts.index}`,
      now: monotonicNow,
      send: (peer, frame) => listener.send(peer, frame),
      setTimer: nodeTimer,
      random: Math.random,
    }
    core = new WitnessServer(env, opts)
    core.attach(opts.orderer)
    core.start()
    return new ServerNode(core, listener)
  }

  /** The TCP port brokers dial. */
  get port(): number {
    return this.listener.port
  }

  /** Stops the core and closes the listener. */
  async close(): Promise<void> {
    this.core.stop()
    await this.listener.close()
  }
}
