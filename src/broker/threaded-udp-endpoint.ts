import type { EventLoopUtilization } from 'node:perf_hooks'
import { Worker } from 'node:worker_threads'
import { logger } from '@libp2p/logger'
import type { PeerKey } from '../common/artifact.ts'
import { setNewest } from '../common/bounded-map.ts'
import type { Env } from '../common/env.ts'
import { InvalidParametersError } from '../common/errors.ts'
import {
  DatagramBatchWriter,
  ipv4ToNumber,
  numberToIpv4,
  readDatagramRecords,
} from './datagram-batch.ts'
import { FairQueue } from './fair-queue.ts'
import type { SourceCounts } from './source-gate.ts'
import type { DatagramHandler } from './udp-endpoint.ts'
import { endpointEnv, splitHostPort } from './udp-socket.ts'
import {
  type BatchMessage,
  IN_FLIGHT_SLOTS,
  InFlightSlot,
  MAX_BANS_PER_MESSAGE,
  MAX_BLOCKED,
  type ReportMessage,
  type ToWorker,
  type UdpWorkerData,
  WORKER_COUNTERS,
  WorkerCounter,
} from './udp-worker-protocol.ts'

const log = logger('consensus-multicast:broker:udp-threads')

/** Addresses whose counts {@link ThreadedUdpEndpoint.countsOf} keeps apart; the rest under "other". */
const MAX_COUNTED_SOURCES = 4096

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
   * Bytes a thread has posted to the main thread and the main thread not read yet; beyond,
   * the thread holds datagrams back in its per-source queues (kept short, so what the main
   * thread reads next is still chosen source by source). Default 1 MiB.
   */
  maxBytesInFlight?: number
  /** Likewise in datagrams. Default 4,096. */
  maxDatagramsInFlight?: number
  /**
   * Datagrams a thread holds for the main thread at most, in all; beyond, and beyond each
   * source's share (`maxQueuedPerAddress`, `maxQueuedPerPrefix`), it drops what arrives,
   * counted by source (`overflow`). Default 131,072 (16 MiB at most): about 195,000
   * submissions or 70,000 shares, a whole batch's shares from one source.
   */
  maxQueued?: number
  /** Likewise in bytes. Default 16 MiB. */
  maxQueuedBytes?: number
  /** Datagrams a thread holds at most from one address. Default half of `maxQueued`. */
  maxQueuedPerAddress?: number
  /** Datagrams a thread holds at most from one /24 or /64 prefix. Default ¾ of `maxQueued`. */
  maxQueuedPerPrefix?: number
  /**
   * Datagrams a thread takes from each source prefix's queue in turn, and the main thread
   * from each thread's, per round. Default 64.
   */
  quantum?: number
}

/**
 * Receives the datagrams a thread dropped since its last report from `source` (an address,
 * or "other"): over its queue budget (`overflow`), or {@link ThreadedUdpEndpoint.block}ed.
 */
export type DropHandler = (source: string, count: number, why: 'overflow' | 'banned') => void

interface Thread {
  worker: Worker
  counters: Float64Array
  inFlight: Int32Array
}

/** A batch of one thread's datagrams waiting for the main thread, read from `at` on. */
interface Pending {
  thread: Thread
  batch: ArrayBuffer
  records: number
  at: number
}

interface Destination {
  ip: number
  host: string
  port: number
}

/**
 * A UDP endpoint whose sockets live in worker threads (SO_REUSEPORT, all on one port): the
 * threads take datagrams off the kernel's queues and send, while the main thread only runs
 * the protocol core on batches of datagrams. So the kernel's queues keep being drained
 * while the main thread is busy (assembling a batch, say), and the per-datagram cost of the
 * socket layer is off the main thread.
 *
 * Each thread runs what it receives through a {@link SourceGate}: the core's bans (pushed
 * with {@link block}) drop a source's datagrams on receipt, each source address and prefix
 * has a budget of datagrams held for the main thread, and the thread hands them on
 * round-robin by prefix, a few batches ahead of the main thread at most. So a flood costs
 * the main thread one quantum per round before its ban and nothing after, and cannot use up
 * the room other sources' datagrams need. The main thread serves the threads round-robin.
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
  private readonly queue: FairQueue<Pending>
  private readonly quantum: number
  private readonly bySource = new Map<string, SourceCounts>()
  private readonly bans = new Map<string, number>()
  private handler: DatagramHandler = () => {}
  private dropHandler: DropHandler = () => {}
  private flushScheduled = false
  private bansScheduled = false
  private drainScheduled = false
  private nextThread = 0
  private closed = false
  /** Datagrams handed to the handler. */
  handed = 0
  /** Datagrams given to the threads to send. */
  sent = 0
  /** Datagrams received but not handed on because the endpoint closed first. */
  discardedAtClose = 0

  private constructor(
    threads: Thread[],
    host: string,
    port: number,
    recvBuffer: number,
    quantum: number,
  ) {
    this.threads = threads
    this.host = host
    this.port = port
    this.grantedRecvBuffer = recvBuffer
    this.quantum = quantum
    this.queue = new FairQueue(threads.length)
    this.writer = new DatagramBatchWriter(65_536)
    threads.forEach((t, i) => {
      t.worker.on('message', (m: BatchMessage | ReportMessage) => {
        if (m.type === 'batch') this.onBatch(t, i, m)
        else if (m.type === 'report') this.onReport(m)
      })
    })
  }

  /** Starts the threads and binds their sockets. */
  static async bind(options: ThreadedUdpEndpointOptions = {}): Promise<ThreadedUdpEndpoint> {
    const n = options.threads ?? 1
    const perThread = options.socketsPerThread ?? 4
    const quantum = options.quantum ?? 64
    if (!Number.isInteger(n) || n < 1) throw new InvalidParametersError('threads must be ≥ 1')
    if (!Number.isInteger(perThread) || perThread < 1) {
      throw new InvalidParametersError('socketsPerThread must be ≥ 1')
    }
    if (!Number.isInteger(quantum) || quantum < 1) {
      throw new InvalidParametersError('quantum must be ≥ 1')
    }
    const host = options.host ?? '127.0.0.1'
    const maxQueued = options.maxQueued ?? 131_072
    // Run from source (.ts, Node's type stripping) or from the compiled package (.js).
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js'
    const url = new URL(`./udp-worker.${ext}`, import.meta.url)
    const threads: Thread[] = []
    const bindOne = (port: number) => {
      const counters = new SharedArrayBuffer(WORKER_COUNTERS * 8)
      const inFlight = new SharedArrayBuffer(IN_FLIGHT_SLOTS * 4)
      const workerData: UdpWorkerData = {
        host,
        port,
        ipv6: host.includes(':'),
        sockets: perThread,
        recvBufferSize: options.recvBufferSize,
        sendBufferSize: options.sendBufferSize,
        maxDatagramBytes: options.maxDatagramBytes ?? 2048,
        batchBytes: options.batchBytes ?? 65_536,
        maxBytesInFlight: options.maxBytesInFlight ?? 1024 * 1024,
        maxDatagramsInFlight: options.maxDatagramsInFlight ?? 4096,
        maxQueued,
        maxQueuedBytes: options.maxQueuedBytes ?? 16 * 1024 * 1024,
        maxQueuedPerAddress: options.maxQueuedPerAddress ?? Math.max(1, Math.floor(maxQueued / 2)),
        maxQueuedPerPrefix:
          options.maxQueuedPerPrefix ?? Math.max(1, Math.floor((maxQueued * 3) / 4)),
        quantum,
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
        worker.postMessage({ type: 'bind', port } satisfies ToWorker)
      })
    }
    try {
      const first = await bindOne(options.port ?? 0)
      for (let i = 1; i < n; i++) await bindOne(first.port)
      return new ThreadedUdpEndpoint(threads, host, first.port, first.recvBufferSize, quantum)
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

  /** Datagrams dropped by the threads because their source's (or the thread's) queue budget was used up. */
  get overflow(): number {
    return this.sum(WorkerCounter.Overflow)
  }

  /** Datagrams the threads handed on to the main thread. */
  get forwarded(): number {
    return this.sum(WorkerCounter.Forwarded)
  }

  /** Datagrams handed on by the threads and not yet to the handler. */
  get queued(): number {
    return this.queue.units
  }

  /**
   * What the threads did with an address's datagrams, as reported so far (reports come
   * every 50 ms at most; bounded: past 4,096 addresses, the rest count under "other").
   */
  countsOf(address: string): SourceCounts {
    return { ...(this.bySource.get(address) ?? { forwarded: 0, banned: 0, overBudget: 0 }) }
  }

  /** Datagrams dropped on receipt because their source was {@link block}ed. */
  get blocked(): number {
    return this.sum(WorkerCounter.Blocked)
  }

  /** Send errors reported by the sockets. */
  get sendErrors(): number {
    return this.sum(WorkerCounter.SendErrors)
  }

  /**
   * The threads' event-loop utilisation (busy time over wall time) since `since` (an
   * earlier result of this method), or since they started: what receiving costs them.
   */
  utilization(since?: EventLoopUtilization[]): EventLoopUtilization[] {
    return this.threads.map((t, i) => t.worker.performance.eventLoopUtilization(since?.[i]))
  }

  /** Sets the function that receives datagrams. */
  onFrame(handler: DatagramHandler): void {
    this.handler = handler
  }

  /** Sets the function told of datagrams the threads dropped (see {@link DropHandler}). */
  onDrops(handler: DropHandler): void {
    this.dropHandler = handler
  }

  /**
   * Has the threads drop what `source` sends for `forMs` ms, on receipt: an address or a
   * prefix, keyed as the core's offender accounting keys them (`sourceOf`). For a core's
   * bans, so a banned flood costs its socket thread only. Bans of one event-loop turn go
   * together, in messages of at most {@link MAX_BANS_PER_MESSAGE}.
   */
  block(source: string, forMs: number): void {
    if (this.closed) return
    setNewest(this.bans, source, forMs, MAX_BLOCKED)
    if (this.bansScheduled) return
    this.bansScheduled = true
    setImmediate(() => this.flushBans())
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
    this.discardedAtClose += this.queue.clear((p) => this.release(p))
    await Promise.all(
      this.threads.map(
        (t) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => void t.worker.terminate(), 2000)
            t.worker.once('exit', () => {
              clearTimeout(timer)
              resolve()
            })
            t.worker.postMessage({ type: 'close' } satisfies ToWorker)
          }),
      ),
    )
  }

  private flushBans(): void {
    this.bansScheduled = false
    if (this.closed) return
    const bans = [...this.bans]
    this.bans.clear()
    for (let i = 0; i < bans.length; i += MAX_BANS_PER_MESSAGE) {
      const m: ToWorker = { type: 'bans', bans: bans.slice(i, i + MAX_BANS_PER_MESSAGE) }
      for (const t of this.threads) t.worker.postMessage(m)
    }
  }

  private onReport(m: ReportMessage): void {
    for (const [address, c] of m.bySource) {
      const key =
        this.bySource.has(address) || this.bySource.size < MAX_COUNTED_SOURCES ? address : 'other'
      const total = this.bySource.get(key) ?? { forwarded: 0, banned: 0, overBudget: 0 }
      total.forwarded += c.forwarded
      total.banned += c.banned
      total.overBudget += c.overBudget
      this.bySource.set(key, total)
      if (c.banned > 0) this.dropHandler(address, c.banned, 'banned')
      if (c.overBudget > 0) this.dropHandler(address, c.overBudget, 'overflow')
    }
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
    t.worker.postMessage({ type: 'send', batch } satisfies ToWorker, [batch])
  }

  private onBatch(t: Thread, index: number, m: BatchMessage): void {
    const pending: Pending = {
      thread: t,
      batch: m.batch,
      records: m.records,
      at: 0,
    }
    if (this.closed) {
      this.discardedAtClose += m.records
      this.release(pending)
      return
    }
    this.queue.push(index, pending, m.records)
    this.scheduleDrain()
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return
    this.drainScheduled = true
    setImmediate(() => this.drain())
  }

  /** One round over the threads' queues per event-loop turn, so I/O and timers run between. */
  private drain(): void {
    this.drainScheduled = false
    if (this.closed) return
    this.queue.round(
      this.quantum,
      (p, _lane, n) => {
        p.at = readDatagramRecords(p.batch, p.at, n, (ip, address, port, frame) => {
          this.handed++
          this.handler(this.peerKey(ip, address, port), frame)
        })
      },
      (p) => this.release(p),
    )
    if (this.queue.units > 0) this.scheduleDrain()
  }

  /** Gives a batch's bytes and datagrams back to its thread, and has it post more if it waits. */
  private release(p: Pending): void {
    Atomics.sub(p.thread.inFlight, InFlightSlot.Bytes, p.batch.byteLength)
    Atomics.sub(p.thread.inFlight, InFlightSlot.Datagrams, p.records)
    if (!this.closed && Atomics.exchange(p.thread.inFlight, InFlightSlot.Waiting, 0) === 1) {
      p.thread.worker.postMessage({ type: 'pull' } satisfies ToWorker)
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
