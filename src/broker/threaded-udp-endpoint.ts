import { Worker } from 'node:worker_threads'
import { logger } from '@libp2p/logger'
import type { PeerKey } from '../common/artifact.ts'
import type { Env } from '../common/env.ts'
import { InvalidParametersError } from '../common/errors.ts'
import {
  DatagramBatchWriter,
  ipv4ToNumber,
  numberToIpv4,
  readDatagramBatch,
} from './datagram-batch.ts'
import type { DatagramHandler } from './udp-endpoint.ts'
import { endpointEnv, splitHostPort } from './udp-socket.ts'
import { type UdpWorkerData, WORKER_COUNTERS, WorkerCounter } from './udp-worker-protocol.ts'

const log = logger('consensus-multicast:broker:udp-threads')

/** Options of {@link ThreadedUdpEndpoint.bind}. */
export interface ThreadedUdpEndpointOptions {
  /** Address to bind. Default 127.0.0.1. */
  host?: string
  /** Port to bind; 0 picks a free one. Default 0. */
  port?: number
  /** Worker threads that own the sockets (receive and send). Default 1. */
  threads?: number
  /**
   * SO_REUSEPORT sockets per thread, each with its own kernel queue (Linux spreads sources
   * over them by address hash, so a flooding source fills only its socket's queue). Default 4.
   */
  socketsPerThread?: number
  /** Kernel receive buffer per socket in bytes (capped by net.core.rmem_max). Default: the system's. */
  recvBufferSize?: number
  /** Kernel send buffer per socket in bytes. Default: the system's. */
  sendBufferSize?: number
  /** Largest datagram accepted; larger ones are dropped and counted. Default 2,048. */
  maxDatagramBytes?: number
  /** Capacity of one batch of datagrams between threads, in bytes. Default 65,536. */
  batchBytes?: number
  /**
   * Bytes of batches a thread may have posted that the main thread has not read yet;
   * beyond, it drops what it receives (counted in `overflow`), so memory stays bounded when
   * the main thread falls behind (or is descheduled). Default 16 MiB per thread: about
   * 195,000 submissions or 70,000 shares, several times what the kernel's buffer holds.
   */
  maxBytesInFlight?: number
}

interface Thread {
  worker: Worker
  counters: Float64Array
  inFlight: Int32Array
}

interface Destination {
  ip: number
  host: string
  port: number
}

/**
 * A UDP endpoint whose sockets live in worker threads (SO_REUSEPORT, all on one port): the
 * threads take datagrams off the kernel's queues and send, while the main thread only runs
 * the protocol core on batches of datagrams (one message per thread per event-loop turn).
 * So the kernel's queues keep being drained while the main thread is busy (assembling a
 * batch, say), and the per-datagram cost of the socket layer is off the main thread.
 * Same surface as {@link UdpEndpoint}; owns no protocol logic. Linux only (SO_REUSEPORT
 * must spread datagrams over the sockets).
 */
export class ThreadedUdpEndpoint {
  private readonly threads: Thread[]
  private readonly host: string
  private readonly port: number
  private readonly grantedRecvBuffer: number
  private readonly writer: DatagramBatchWriter
  private readonly destinations = new Map<PeerKey, Destination>()
  private readonly peerKeys = new Map<number, PeerKey>()
  private handler: DatagramHandler = () => {}
  private flushScheduled = false
  private nextThread = 0
  private closed = false
  /** Datagrams handed to the handler. */
  handed = 0
  /** Datagrams given to the threads to send. */
  sent = 0

  private constructor(threads: Thread[], host: string, port: number, recvBuffer: number) {
    this.threads = threads
    this.host = host
    this.port = port
    this.grantedRecvBuffer = recvBuffer
    this.writer = new DatagramBatchWriter(65_536)
    for (const t of threads) {
      t.worker.on('message', (m: { type: string; batch?: ArrayBuffer }) => {
        if (m.type === 'batch' && m.batch !== undefined) this.onBatch(t, m.batch)
      })
    }
  }

  /** Starts the threads and binds their sockets. */
  static async bind(options: ThreadedUdpEndpointOptions = {}): Promise<ThreadedUdpEndpoint> {
    const n = options.threads ?? 1
    const perThread = options.socketsPerThread ?? 4
    if (!Number.isInteger(n) || n < 1) throw new InvalidParametersError('threads must be ≥ 1')
    if (!Number.isInteger(perThread) || perThread < 1) {
      throw new InvalidParametersError('socketsPerThread must be ≥ 1')
    }
    const host = options.host ?? '127.0.0.1'
    // Run from source (.ts, Node's type stripping) or from the compiled package (.js).
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'
    const url = new URL(`./udp-worker.${ext}`, import.meta.url)
    const threads: Thread[] = []
    const bindOne = (port: number) => {
      const counters = new SharedArrayBuffer(WORKER_COUNTERS * 8)
      const inFlight = new SharedArrayBuffer(4)
      const workerData: UdpWorkerData = {
        host,
        port,
        ipv6: host.includes(':'),
        sockets: perThread,
        recvBufferSize: options.recvBufferSize,
        sendBufferSize: options.sendBufferSize,
        maxDatagramBytes: options.maxDatagramBytes ?? 2048,
        batchBytes: options.batchBytes ?? 65_536,
        maxBytesInFlight: options.maxBytesInFlight ?? 16 * 1024 * 1024,
        counters,
        inFlight,
      }
      const worker = new Worker(url, { workerData })
      worker.on('error', (err) => log.error('UDP thread failed: %e', err))
      threads.push({
        worker,
        counters: new Float64Array(counters),
        inFlight: new Int32Array(inFlight),
      })
      return new Promise<{ port: number; recvBufferSize: number }>((resolve, reject) => {
        const onMessage = (m: {
          type: string
          port: number
          recvBufferSize: number
          message: string
        }) => {
          if (m.type === 'bound') {
            worker.off('message', onMessage)
            resolve(m)
          } else if (m.type === 'bind-error') {
            worker.off('message', onMessage)
            reject(new Error(`UDP thread could not bind: ${m.message}`))
          }
        }
        worker.on('message', onMessage)
        worker.once('error', reject)
        worker.postMessage({ type: 'bind', port })
      })
    }
    try {
      const first = await bindOne(options.port ?? 0)
      for (let i = 1; i < n; i++) await bindOne(first.port)
      return new ThreadedUdpEndpoint(threads, host, first.port, first.recvBufferSize)
    } catch (err) {
      await Promise.all(threads.map((t) => t.worker.terminate()))
      throw err
    }
  }

  /** This endpoint's "host:port". */
  get address(): PeerKey {
    return `${this.host}:${this.port}`
  }

  /** The kernel receive buffer size granted to each socket. */
  get recvBufferSize(): number {
    return this.grantedRecvBuffer
  }

  /** Datagrams the threads took off their sockets (including those dropped below). */
  get received(): number {
    return this.sum(WorkerCounter.Received)
  }

  /** Datagrams dropped as oversized. */
  get oversized(): number {
    return this.sum(WorkerCounter.Oversized)
  }

  /** Datagrams dropped by the threads because the main thread was too far behind. */
  get overflow(): number {
    return this.sum(WorkerCounter.Overflow)
  }

  /** Send errors reported by the sockets. */
  get sendErrors(): number {
    return this.sum(WorkerCounter.SendErrors)
  }

  /** Sets the function that receives datagrams. */
  onFrame(handler: DatagramHandler): void {
    this.handler = handler
  }

  /** Sends one datagram to "host:port" (through a thread, after this event-loop turn). */
  send(peer: PeerKey, frame: Uint8Array): void {
    if (this.closed) return
    let d = this.destinations.get(peer)
    if (d === undefined) {
      const [host, port] = splitHostPort(peer)
      d = { ip: ipv4ToNumber(host), host, port }
      if (this.destinations.size > 100_000) this.destinations.clear()
      this.destinations.set(peer, d)
    }
    this.sent++
    if (!this.writer.add(d.ip, d.host, d.port, frame)) {
      this.flushSends()
      if (!this.writer.add(d.ip, d.host, d.port, frame)) {
        throw new InvalidParametersError(`datagram of ${frame.length} bytes is too large`)
      }
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(() => this.flushSends())
    }
  }

  /** An {@link Env} whose `send` goes out of this endpoint. */
  env(): Env {
    return endpointEnv(this.address, (peer, frame) => this.send(peer, frame))
  }

  /** Stops the threads and closes their sockets (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return
    this.flushSends()
    this.closed = true
    await Promise.all(
      this.threads.map(
        (t) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => void t.worker.terminate(), 2000)
            t.worker.once('exit', () => {
              clearTimeout(timer)
              resolve()
            })
            t.worker.postMessage({ type: 'close' })
          }),
      ),
    )
  }

  private sum(slot: number): number {
    let n = 0
    for (const t of this.threads) n += t.counters[slot]
    return n
  }

  private flushSends(): void {
    this.flushScheduled = false
    const batch = this.writer.take()
    if (batch === undefined || this.closed) return
    const t = this.threads[this.nextThread]
    this.nextThread = (this.nextThread + 1) % this.threads.length
    t.worker.postMessage({ type: 'send', batch }, [batch])
  }

  private onBatch(t: Thread, batch: ArrayBuffer): void {
    try {
      if (this.closed) return
      readDatagramBatch(batch, (ip, address, port, frame) => {
        this.handed++
        this.handler(this.peerKey(ip, address, port), frame)
      })
    } finally {
      Atomics.sub(t.inFlight, 0, batch.byteLength)
    }
  }

  /** "host:port" of a record, from a bounded cache for IPv4 (a few sources send most). */
  private peerKey(ip: number, address: string, port: number): PeerKey {
    if (ip < 0) return `${address}:${port}`
    const key = ip * 65_536 + port
    let peer = this.peerKeys.get(key)
    if (peer === undefined) {
      peer = `${numberToIpv4(ip)}:${port}`
      if (this.peerKeys.size > 100_000) this.peerKeys.clear()
      this.peerKeys.set(key, peer)
    }
    return peer
  }
}
