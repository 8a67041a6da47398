import { BrokerClient, type BrokerClientOptions } from './client.ts'
import { UdpEndpoint, type UdpEndpointOptions } from './udp-endpoint.ts'

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
