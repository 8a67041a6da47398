import { availableParallelism } from 'node:os'
import type { PeerKey } from '../common/artifact.ts'
import type { Env } from '../common/env.ts'
import { InvalidParametersError } from '../common/errors.ts'
import { InlineAuthenticator, type SubmissionAuthenticator } from './authenticator.ts'
import { Broker, type BrokerOptions } from './broker.ts'
import type { Orderer } from './orderer.ts'
import type { SourceGate } from './source-gate.ts'
import { TcpLink } from './tcp-link.ts'
import { ThreadedUdpEndpoint } from './threaded-udp-endpoint.ts'
import { UdpEndpoint, type UdpEndpointOptions } from './udp-endpoint.ts'
import { WorkerAuthenticator } from './worker-authenticator.ts'

/**
 * UDP sockets a broker binds on its port by default: on Linux, 4 (SO_REUSEPORT spreads
 * sources over their queues, so a flooding source cannot crowd out honest clients' datagrams:
 * `npm run bench -- attack broker` keeps 0.50–0.99 of honest throughput under each flood with 4,
 * 0.09–0.25 with 1); elsewhere 1, as SO_REUSEPORT does not spread datagrams there.
 */
export const DEFAULT_BROKER_SOCKETS = process.platform === 'linux' ? 4 : 1

/**
 * Worker threads that own the broker's UDP sockets by default: 0, the sockets on the main
 * thread. A thread (`udpThreads: 1`) takes datagrams off the kernel's queues while the core
 * works (less ingest loss) and isolates floods as the main thread does: the core's bans
 * drop a source in the thread, each source address and prefix has a budget there, and
 * sources are handed on in turn (a {@link SourceGate}), so a banned flood reaches the core
 * not at all and an honest source loses nothing to it. Measured on this crowded 2-core
 * machine (`npm run bench -- attack broker`, 4 sockets, load average ~7), the thread still
 * keeps less honest throughput under a flood than the sockets on the main thread (0.19–0.49
 * of before against 0.21–0.57; target ≥ 0.5): it spends ~0.9 of a core reading and
 * dropping the banned flood, where the main thread reads what it has time for and the
 * kernel drops the rest for free. Hence 0 stays the default.
 */
export const DEFAULT_BROKER_UDP_THREADS = 0

/** Options of {@link BrokerNode.start}. */
export interface BrokerNodeOptions
  extends Omit<BrokerOptions, 'servers' | 'onWitnessed' | 'authenticator'> {
  /** The servers' TCP addresses, by server index. */
  serverAddresses: readonly { host: string; port: number }[]
  /** Where witnessed batch references go. */
  orderer: Orderer
  /**
   * Worker threads that verify submissions; 0 verifies on the main thread. Default: the
   * machine's available parallelism (measured best: see the README, "The Chop Chop broker").
   */
  authThreads?: number
  /** Or a custom authenticator (overrides `authThreads`). */
  authenticator?: SubmissionAuthenticator
  /** The UDP socket(s) clients send to (`sockets` defaults to {@link DEFAULT_BROKER_SOCKETS}). */
  udp?: UdpEndpointOptions
  /**
   * Worker threads that own the UDP sockets (their `sockets` spread over them; Linux only,
   * see {@link DEFAULT_BROKER_UDP_THREADS}); 0 keeps the sockets on the main thread. The
   * core's outcome does not depend on the order in which sockets and threads hand
   * datagrams on. Default {@link DEFAULT_BROKER_UDP_THREADS}.
   */
  udpThreads?: number
}

/**
 * A broker on real UDP sockets (clients) and TCP links (servers). The sockets live in
 * `udpThreads` worker threads (or on the main thread), the sans-IO {@link Broker} on the
 * main thread; signature checks run in `authThreads` worker threads (the README's broker
 * section has the measured choices).
 */
export class BrokerNode {
  /** The protocol core. */
  readonly core: Broker
  /** The socket(s) clients talk to. */
  readonly udp: UdpEndpoint | ThreadedUdpEndpoint
  private readonly links: TcpLink[]
  private readonly authenticator: SubmissionAuthenticator

  private constructor(
    core: Broker,
    udp: UdpEndpoint | ThreadedUdpEndpoint,
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
    const udpOptions = {
      recvBufferSize: 4 * 1024 * 1024,
      sockets: DEFAULT_BROKER_SOCKETS,
      ...opts.udp,
    }
    const udpThreads = opts.udpThreads ?? DEFAULT_BROKER_UDP_THREADS
    if (!Number.isInteger(udpThreads) || udpThreads < 0) {
      throw new InvalidParametersError('udpThreads must be an integer ≥ 0')
    }
    const udp =
      udpThreads > 0
        ? await ThreadedUdpEndpoint.bind({
            ...udpOptions,
            threads: udpThreads,
            socketsPerThread: Math.max(1, Math.ceil(udpOptions.sockets / udpThreads)),
          })
        : await UdpEndpoint.bind(udpOptions)
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
    // Frames route by this table, not by parsing the name: a server's name is only a label.
    const linkTo = new Map<PeerKey, TcpLink>(servers.map((peer, i) => [peer, links[i]]))
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
        const link = linkTo.get(peer)
        if (link !== undefined) link.send(frame)
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
    if (udp instanceof ThreadedUdpEndpoint) {
      udp.onDrops((source, n, why) => c.udpDropped(source, n, why))
      // The core's bans, enforced in the socket threads too (the core still checks).
      c.on('banned', (e) => udp.block(e.source, e.untilMs - env.now()))
    }
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
