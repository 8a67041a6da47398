import { availableParallelism } from 'node:os'
import type { PeerKey } from '../core/artifact.ts'
import type { Env } from '../core/env.ts'
import { InlineAuthenticator, type SubmissionAuthenticator } from './authenticator.ts'
import { Broker, type BrokerOptions } from './broker.ts'
import { BrokerClient, type BrokerClientOptions } from './client.ts'
import type { Orderer } from './orderer.ts'
import { WitnessServer, type WitnessServerOptions } from './server.ts'
import { TcpLink, TcpListener } from './tcp-link.ts'
import { monotonicNow, nodeTimer } from './timers.ts'
import { UdpEndpoint, type UdpEndpointOptions } from './udp-endpoint.ts'
import { WorkerAuthenticator } from './worker-authenticator.ts'

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

/** Options of {@link BrokerNode.start}. */
export interface BrokerNodeOptions
  extends Omit<BrokerOptions, 'servers' | 'onWitnessed' | 'authenticator'> {
  /** The servers' TCP addresses, by server index. */
  serverAddresses: readonly { host: string; port: number }[]
  /** Where witnessed batch references go. */
  orderer: Orderer
  /**
   * Worker threads that verify submissions; 0 verifies on the main thread. Default: the
   * machine's available parallelism (measured best, see docs/broker.md).
   */
  authThreads?: number
  /** Or a custom authenticator (overrides `authThreads`). */
  authenticator?: SubmissionAuthenticator
  /** The UDP socket clients send to. */
  udp?: UdpEndpointOptions
}

/**
 * A broker on a real UDP socket (clients) and TCP links (servers). The socket's receive
 * and send run on the main thread with the sans-IO {@link Broker}; signature checks run in
 * `authThreads` worker threads (see docs/broker.md for the measured choice).
 */
export class BrokerNode {
  /** The protocol core. */
  readonly core: Broker
  /** The socket clients talk to. */
  readonly udp: UdpEndpoint
  private readonly links: TcpLink[]
  private readonly authenticator: SubmissionAuthenticator

  private constructor(
    core: Broker,
    udp: UdpEndpoint,
    links: TcpLink[],
    authenticator: SubmissionAuthenticator,
  ) {
    this.core = core
    this.udp = udp
    this.links = links
    this.authenticator = authenticator
  }

  /** Binds the socket, connects to every server and starts the core. */
  static async start(opts: BrokerNodeOptions): Promise<BrokerNode> {
    const udp = await UdpEndpoint.bind({ recvBufferSize: 4 * 1024 * 1024, ...opts.udp })
    let core: Broker | undefined
    const servers = opts.serverAddresses.map((_, i) => `server/${i}`)
    const links = await Promise.all(
      opts.serverAddresses.map((a, i) =>
        TcpLink.connect(a.host, a.port, servers[i], {
          frame: (peer, frame) => core?.receive(peer, frame),
          misbehaved: (peer, reason) => core?.penalise(peer, reason),
        }),
      ),
    )
    const threads = opts.authThreads ?? availableParallelism()
    let authenticator = opts.authenticator
    if (authenticator === undefined && threads > 0) {
      const pool = new WorkerAuthenticator(opts.directory, threads, opts.limits)
      await pool.ready()
      authenticator = pool
    }
    authenticator ??= new InlineAuthenticator(opts.directory)
    const udpEnv = udp.env()
    const env: Env = {
      ...udpEnv,
      send: (peer: PeerKey, frame: Uint8Array) => {
        if (peer.startsWith('server/')) links[Number(peer.slice(7))]?.send(frame)
        else udp.send(peer, frame)
      },
    }
    core = new Broker(env, {
      ...opts,
      servers,
      authenticator,
      onWitnessed: (reference) => opts.orderer.propose(reference),
    })
    core.start()
    const c = core
    udp.onFrame((peer, frame) => c.receive(peer, frame))
    return new BrokerNode(
      core,
      udp,
      links,
      authenticator ?? { close: async () => {}, authenticate: () => [] },
    )
  }

  /** The "host:port" clients send to. */
  get address(): PeerKey {
    return this.udp.address
  }

  /** Stops the core, the workers and the sockets. */
  async close(): Promise<void> {
    this.core.stop()
    for (const l of this.links) l.close()
    await this.authenticator.close()
    await this.udp.close()
  }
}

/** Options of {@link ClientNode.start}. */
export interface ClientNodeOptions extends BrokerClientOptions {
  /** The client's UDP socket. */
  udp?: UdpEndpointOptions
}

/** A client on its own UDP socket. */
export class ClientNode {
  /** The protocol core. */
  readonly core: BrokerClient
  /** Its socket. */
  readonly udp: UdpEndpoint

  private constructor(core: BrokerClient, udp: UdpEndpoint) {
    this.core = core
    this.udp = udp
  }

  /** Binds the socket and starts the core. */
  static async start(opts: ClientNodeOptions): Promise<ClientNode> {
    const udp = await UdpEndpoint.bind(opts.udp)
    const core = new BrokerClient(udp.env(), opts)
    udp.onFrame((peer, frame) => core.receive(peer, frame))
    core.start()
    return new ClientNode(core, udp)
  }

  /** Submits a message; resolves with its delivery receipt. */
  submit(payload: Uint8Array): ReturnType<BrokerClient['submit']> {
    return this.core.submit(payload)
  }

  /** Stops the core and closes the socket. */
  async close(): Promise<void> {
    this.core.stop()
    await this.udp.close()
  }
}
