/**
 * A UDP relay between clients and a broker that drops every k-th datagram in each
 * direction: real sockets, deterministic loss.
 */
import { createSocket, type Socket } from 'node:dgram'

export class LossyRelay {
  private readonly front: Socket
  private readonly backs = new Map<string, Socket>()
  private readonly target: [string, number]
  private readonly dropEvery: number
  private up = 0
  private down = 0
  /** Datagrams dropped. */
  dropped = 0

  private constructor(front: Socket, target: string, dropEvery: number) {
    this.front = front
    const colon = target.lastIndexOf(':')
    this.target = [target.slice(0, colon), Number(target.slice(colon + 1))]
    this.dropEvery = dropEvery
    front.on('message', (msg, rinfo) => {
      if (++this.up % this.dropEvery === 0) {
        this.dropped++
        return
      }
      this.back(`${rinfo.address}:${rinfo.port}`, rinfo.address, rinfo.port).send(
        msg,
        this.target[1],
        this.target[0],
      )
    })
  }

  static async start(target: string, dropEvery: number): Promise<LossyRelay> {
    const front = createSocket('udp4')
    await new Promise<void>((r) => front.bind(0, '127.0.0.1', () => r()))
    return new LossyRelay(front, target, dropEvery)
  }

  get address(): string {
    const a = this.front.address()
    return `${a.address}:${a.port}`
  }

  private back(key: string, host: string, port: number): Socket {
    let s = this.backs.get(key)
    if (s === undefined) {
      const sock = createSocket('udp4')
      sock.bind(0, '127.0.0.1')
      sock.on('message', (msg) => {
        if (++this.down % this.dropEvery === 0) {
          this.dropped++
          return
        }
        this.front.send(msg, port, host)
      })
      this.backs.set(key, sock)
      s = sock
    }
    return s
  }

  async close(): Promise<void> {
    await Promise.all(
      [this.front, ...this.backs.values()].map((s) => new Promise<void>((r) => s.close(() => r()))),
    )
  }
}
