import type { Ed25519KeyPair } from '../crypto/ed25519.ts'
import type { BrokerOptions } from './broker.ts'
import { BrokerNode } from './broker-node.ts'
import type { BrokerClientOptions } from './client.ts'
import {
  type ClientKeys,
  directoryOf,
  generateClientKeys,
  generateServerKeys,
} from './client-keys.ts'
import { ClientNode } from './client-node.ts'
import type { Directory } from './directory.ts'
import { type Orderer, SingleSequencer } from './orderer.ts'
import type { BrokerLimits } from './params.ts'
import { ServerNode } from './server-node.ts'

/** Options of {@link LocalCluster.start}. */
export interface LocalClusterOptions {
  /** Clients to register and start. */
  clients: number
  /** Witness servers. Default 4 (f = 1). */
  servers?: number
  /** Decoder limits (`maxBatchEntries` is the broker's flush size). */
  limits?: Partial<BrokerLimits>
  /** Broker options. */
  broker?: Partial<
    Pick<
      BrokerOptions,
      | 'flushTimeoutMs'
      | 'shareTimeoutMs'
      | 'witnessTimeoutMs'
      | 'entriesPerLeaf'
      | 'maxInFlightBatches'
      | 'authBurst'
      | 'authDelayMs'
      | 'batchTimeoutMs'
      | 'banThreshold'
      | 'maxShareVerifications'
    >
  > & { authThreads?: number; udpThreads?: number }
  /** Client options. */
  client?: Partial<Pick<BrokerClientOptions, 'retryMs' | 'maxRetryMs' | 'maxQueue'>>
  /** The orderer. Default: a {@link SingleSequencer} (not Byzantine fault tolerant). */
  orderer?: Orderer
  /** Start a broker (false: only servers, for tests that play the broker). Default true. */
  withBroker?: boolean
}

/**
 * Clients, a broker and witness servers on one machine over real loopback sockets (UDP
 * between clients and broker, TCP between broker and servers), with a single sequencer as
 * the orderer. For tests, examples and benchmarks.
 */
export class LocalCluster {
  /** The client directory. */
  readonly directory: Directory
  /** The orderer. */
  readonly orderer: Orderer
  /** Server keys, by index. */
  readonly serverKeyPairs: Ed25519KeyPair[]
  /** Servers, by index. */
  readonly servers: ServerNode[]
  /** The broker (absent with `withBroker: false`). */
  readonly broker?: BrokerNode
  /** Clients, by id. */
  readonly clients: ClientNode[]
  /** Client keys, by id. */
  readonly clientKeys: ClientKeys[]

  private constructor(fields: {
    directory: Directory
    orderer: Orderer
    serverKeyPairs: Ed25519KeyPair[]
    servers: ServerNode[]
    broker?: BrokerNode
    clients: ClientNode[]
    clientKeys: ClientKeys[]
  }) {
    this.directory = fields.directory
    this.orderer = fields.orderer
    this.serverKeyPairs = fields.serverKeyPairs
    this.servers = fields.servers
    this.broker = fields.broker
    this.clients = fields.clients
    this.clientKeys = fields.clientKeys
  }

  /** Raw ed25519 public keys of the servers. */
  get serverKeys(): Uint8Array[] {
    return this.serverKeyPairs.map((k) => k.publicKey)
  }

  /** Starts everything. */
  static async start(opts: LocalClusterOptions): Promise<LocalCluster> {
    const clientKeys = generateClientKeys(opts.clients)
    const directory = directoryOf(clientKeys)
    const orderer = opts.orderer ?? new SingleSequencer()
    const serverKeyPairs = generateServerKeys(opts.servers ?? 4)
    const serverKeys = serverKeyPairs.map((k) => k.publicKey)
    const servers = await Promise.all(
      serverKeyPairs.map((keyPair, index) =>
        ServerNode.start({ index, keyPair, serverKeys, directory, orderer, limits: opts.limits }),
      ),
    )
    const serverAddresses = servers.map((s) => ({ host: '127.0.0.1', port: s.port }))
    await Promise.all(servers.map((s) => s.connectPeers(serverAddresses)))
    if (opts.withBroker === false) {
      return new LocalCluster({
        directory,
        orderer,
        serverKeyPairs,
        servers,
        clients: [],
        clientKeys,
      })
    }
    const broker = await BrokerNode.start({
      directory,
      serverAddresses,
      serverKeys,
      orderer,
      limits: opts.limits,
      ...opts.broker,
    })
    const clients = await Promise.all(
      clientKeys.map((k, id) =>
        ClientNode.start({
          id,
          ...k,
          broker: broker.address,
          serverKeys,
          limits: opts.limits,
          ...opts.client,
        }),
      ),
    )
    return new LocalCluster({
      directory,
      orderer,
      serverKeyPairs,
      servers,
      broker,
      clients,
      clientKeys,
    })
  }

  /** Closes every socket, link and worker. */
  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()))
    await this.broker?.close()
    await Promise.all(this.servers.map((s) => s.close()))
  }
}
