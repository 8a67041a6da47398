/**
 * Attackers of a broker from outside, over real UDP sockets on loopback: floods sent from a
 * worker thread (one core's rate, without starving the process under test), the frames
 * they send, and an on-path relay that resends each client submission before the client.
 */
import { randomBytes } from 'node:crypto'
import { createSocket, type Socket } from 'node:dgram'
import { Worker } from 'node:worker_threads'
import type { LocalCluster } from '../../src/broker/local-cluster.ts'
import { submissionInput } from '../../src/broker/signing.ts'
import { encodeSubmission, FrameKind } from '../../src/broker/wire.ts'

/** Options of {@link Flood.start}. */
export interface FloodOptions {
  /** The loopback address the flood comes from (e.g. 127.66.0.1). */
  host: string
  /** The broker's "host:port". */
  target: string
  /** Datagrams sent in turn; or `'random'` for random bytes of 1–200. */
  frames: Uint8Array[] | 'random'
  /** Source ports used in turn (port rotation). Default 1. */
  sockets?: number
  /** Datagrams at most. Default 10,000,000. */
  max?: number
}

/** A flood running in a worker thread. */
export class Flood {
  private readonly worker: Worker
  private readonly done: Promise<number>
  /** performance.now() of this thread when the worker sent its first datagram. */
  readonly startedAt: number

  private constructor(worker: Worker, done: Promise<number>, startedAt: number) {
    this.worker = worker
    this.done = done
    this.startedAt = startedAt
  }

  /** Binds the flood's sockets and starts sending; resolves once it sends. */
  static async start(opts: FloodOptions): Promise<Flood> {
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'
    const worker = new Worker(new URL(`./flood-worker.${ext}`, import.meta.url), {
      workerData: {
        host: opts.host,
        target: opts.target,
        frames: opts.frames === 'random' ? [] : opts.frames,
        random: opts.frames === 'random',
        sockets: opts.sockets ?? 1,
        max: opts.max ?? 10_000_000,
      },
    })
    let started!: (at: number) => void
    const ready = new Promise<number>((r) => {
      started = r
    })
    const done = new Promise<number>((resolve, reject) => {
      worker.on('message', (m: { started?: number; sent?: number }) => {
        // The worker's clock is converted through the shared epoch.
        if (m.started !== undefined) started(m.started - performance.timeOrigin)
        if (m.sent !== undefined) resolve(m.sent)
      })
      worker.on('error', reject)
    })
    const startedAt = await ready
    return new Flood(worker, done, startedAt)
  }

  /** Stops sending; resolves with the datagrams sent. */
  async stop(): Promise<number> {
    this.worker.postMessage('stop')
    const sent = await this.done
    await this.worker.terminate()
    return sent
  }

  /** Resolves with the datagrams sent once the flood reaches its `max`. */
  finished(): Promise<number> {
    return this.done
  }
}

/** Submissions of known clients with random payloads and random (bad) signatures. */
export function badlySigned(clients: number, n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) =>
    encodeSubmission({
      id: i % clients,
      sequence: 1,
      payload: randomBytes(8),
      signature: randomBytes(64),
    }),
  )
}

/**
 * Byte-for-byte copies of submissions the clients of `cluster` sent (ed25519 is
 * deterministic): `payloads[id]` are client `id`'s messages, in order, from sequence 1.
 */
export function capturedSubmissions(cluster: LocalCluster, payloads: Uint8Array[][]): Uint8Array[] {
  return payloads.flatMap((messages, id) =>
    messages.map((payload, k) => {
      const sequence = k + 1
      const signature = cluster.clientKeys[id].ed25519.sign(submissionInput(id, sequence, payload))
      return encodeSubmission({ id, sequence, payload, signature })
    }),
  )
}

/**
 * An on-path attacker between clients and the broker: it forwards every datagram both
 * ways, but first resends each SUBMIT from its own address, so the attacker's copy leaves
 * before the client's (the broker may see either first: its sockets and threads are
 * served round-robin). Clients send to {@link RaceRelay.address}.
 */
export class RaceRelay {
  private readonly front: Socket
  private readonly attacker: Socket
  private readonly backs = new Map<string, Promise<Socket>>()
  private readonly target: [string, number]
  /** Copies the attacker sent ahead of clients. */
  raced = 0
  /** Datagrams the broker sent to the attacker's address. */
  answersToAttacker = 0
  /** Of those, delivery certificates. */
  certificatesToAttacker = 0
  /** False: the relay only forwards (a baseline); true: the attacker races every SUBMIT. */
  racing = true

  private constructor(front: Socket, attacker: Socket, target: string) {
    this.front = front
    this.attacker = attacker
    const colon = target.lastIndexOf(':')
    this.target = [target.slice(0, colon), Number(target.slice(colon + 1))]
    attacker.on('message', (msg) => {
      this.answersToAttacker++
      if (msg[0] === FrameKind.Delivered) this.certificatesToAttacker++
    })
    front.on('message', (msg, rinfo) => {
      const [host, port] = this.target
      if (this.racing && msg[0] === FrameKind.Submit) {
        this.raced++
        attacker.send(msg, port, host)
      }
      void this.back(rinfo.address, rinfo.port).then((s) => s.send(msg, port, host))
    })
  }

  /** Starts a relay to the broker at `target`, its attacker socket on `attackerHost`. */
  static async start(target: string, attackerHost: string): Promise<RaceRelay> {
    const bind = async (host: string) => {
      const s = createSocket('udp4')
      await new Promise<void>((r) => s.bind(0, host, () => r()))
      return s
    }
    return new RaceRelay(await bind('127.0.0.1'), await bind(attackerHost), target)
  }

  /** The "host:port" clients send to. */
  get address(): string {
    const a = this.front.address()
    return `${a.address}:${a.port}`
  }

  /** One upstream socket per client, on the clients' address, so the broker tells them apart. */
  private back(host: string, port: number): Promise<Socket> {
    const key = `${host}:${port}`
    let s = this.backs.get(key)
    if (s === undefined) {
      const sock = createSocket('udp4')
      sock.on('message', (msg) => this.front.send(msg, port, host))
      s = new Promise<Socket>((r) => sock.bind(0, '127.0.0.1', () => r(sock)))
      this.backs.set(key, s)
    }
    return s
  }

  /** Closes every socket. */
  async close(): Promise<void> {
    const all = [this.front, this.attacker, ...(await Promise.all(this.backs.values()))]
    await Promise.all(all.map((s) => new Promise<void>((r) => s.close(() => r()))))
  }
}
