/**
 * Worker thread body of {@link ThreadedUdpEndpoint}: owns some of the SO_REUSEPORT sockets
 * of the endpoint's port, packs the datagrams each socket receives into that socket's own
 * batches (one message per socket per event-loop turn, transferred, not copied) for the
 * main thread, and sends the batches of datagrams the main thread hands it. A driver only:
 * no protocol logic.
 *
 * Shared counters (Float64Array over `workerData.counters`): see {@link WorkerCounter}.
 * Each socket has its own budget of bytes and datagrams posted and not yet read by the
 * main thread; beyond it, that socket's datagrams are dropped here and counted (per socket,
 * and by source address in `drops` reports), as a full kernel buffer would drop them. So a
 * flood on one socket fills only its own budget, and the queue between the threads stays
 * bounded.
 */
import type { Socket } from 'node:dgram'
import { parentPort, workerData } from 'node:worker_threads'
import { setNewest } from '../common/bounded-map.ts'
import {
  DatagramBatchWriter,
  ipv4ToNumber,
  numberToIpv4,
  readDatagramBatch,
} from './datagram-batch.ts'
import { sourceOf } from './offenders.ts'
import { bindUdpSocket } from './udp-socket.ts'
import {
  type BatchMessage,
  type DropsMessage,
  IN_FLIGHT_SLOTS,
  MAX_BLOCKED,
  MAX_DROP_SOURCES,
  type UdpWorkerData,
  WORKER_COUNTERS,
  WorkerCounter,
} from './udp-worker-protocol.ts'

/** Longest delay of a drop report. */
const REPORT_MS = 50
const data = workerData as UdpWorkerData
const counters = new Float64Array(data.counters)
const inFlight = new Int32Array(data.inFlight)
const sockets: Socket[] = []
const writers: DatagramBatchWriter[] = []
const drops = new Map<string, number>()
/** Banned sources (the core's verdicts) → until when (this thread's performance.now()). */
const blocked = new Map<string, number>()
let blockedSinceReport = 0
let flushScheduled = false
let reportTimer: ReturnType<typeof setTimeout> | undefined

function post(socket: number): void {
  const writer = writers[socket]
  const records = writer.count
  const batch = writer.take()
  if (batch === undefined) return
  Atomics.add(inFlight, socket * IN_FLIGHT_SLOTS, batch.byteLength)
  Atomics.add(inFlight, socket * IN_FLIGHT_SLOTS + 1, records)
  const m: BatchMessage = { type: 'batch', socket, batch, records }
  parentPort!.postMessage(m, [batch])
}

function flush(): void {
  flushScheduled = false
  for (let s = 0; s < writers.length; s++) post(s)
}

/** Reports drops at most every {@link REPORT_MS}, not once per turn of a flood. */
function report(): void {
  reportTimer = undefined
  const m: DropsMessage = { type: 'drops', bySource: [...drops], blocked: blockedSinceReport }
  drops.clear()
  blockedSinceReport = 0
  parentPort!.postMessage(m)
}

function dropped(): void {
  reportTimer ??= setTimeout(report, REPORT_MS)
}

function schedule(): void {
  if (!flushScheduled) {
    flushScheduled = true
    setImmediate(flush)
  }
}

function overflow(socket: number, address: string): void {
  counters[WorkerCounter.Overflow]++
  counters[WORKER_COUNTERS + socket]++
  const key = drops.has(address) || drops.size < MAX_DROP_SOURCES ? address : 'other'
  drops.set(key, (drops.get(key) ?? 0) + 1)
  dropped()
}

/**
 * True when `address` or its prefix (the core's accounting: IPv4 /24, IPv6 /64) is banned
 * now (expired entries are removed).
 */
function isBlocked(address: string, port: number): boolean {
  if (blocked.size === 0) return false
  const now = performance.now()
  const source = sourceOf(`${address.includes(':') ? `[${address}]` : address}:${port}`)
  for (const key of [source.address, source.prefix]) {
    const until = blocked.get(key)
    if (until === undefined) continue
    if (until > now) return true
    blocked.delete(key)
  }
  return false
}

function onMessage(socket: number, msg: Buffer, rinfo: { address: string; port: number }): void {
  counters[WorkerCounter.Received]++
  // A banned source's datagrams would be dropped unread by the core: spare the hand-over.
  if (isBlocked(rinfo.address, rinfo.port)) {
    counters[WorkerCounter.Blocked]++
    blockedSinceReport++
    dropped()
    return
  }
  if (msg.length > data.maxDatagramBytes) {
    counters[WorkerCounter.Oversized]++
    return
  }
  const slot = socket * IN_FLIGHT_SLOTS
  const writer = writers[socket]
  // What is posted and not read yet, plus what waits in this turn's batch.
  if (
    Atomics.load(inFlight, slot) + writer.bytes >= data.maxBytesInFlight ||
    Atomics.load(inFlight, slot + 1) + writer.count >= data.maxDatagramsInFlight
  ) {
    overflow(socket, rinfo.address)
    return
  }
  const ip = ipv4ToNumber(rinfo.address)
  if (!writer.add(ip, rinfo.address, rinfo.port, msg)) {
    post(socket)
    writer.add(ip, rinfo.address, rinfo.port, msg)
  }
  schedule()
}

const ipText = new Map<number, string>()
function send(ip: number, address: string, port: number, frame: Uint8Array): void {
  let host = address
  if (ip >= 0) {
    host = ipText.get(ip) ?? numberToIpv4(ip)
    if (ipText.size > 100_000) ipText.clear()
    ipText.set(ip, host)
  }
  counters[WorkerCounter.Sent]++
  // The batch is not reused after this message, so its views can go out as they are.
  sockets[0].send(frame, port, host, (err) => {
    if (err) counters[WorkerCounter.SendErrors]++
  })
}

async function bindAll(): Promise<void> {
  for (let i = 0; i < data.sockets; i++) {
    const socket = await bindUdpSocket({
      host: data.host,
      port: data.port,
      ipv6: data.ipv6,
      reusePort: true,
      recvBufferSize: data.recvBufferSize,
      sendBufferSize: data.sendBufferSize,
    })
    // Port 0 picks one for the first socket; the others join it (SO_REUSEPORT).
    if (i === 0) data.port = socket.address().port
    writers.push(new DatagramBatchWriter(data.batchBytes))
    socket.on('message', (msg, rinfo) => onMessage(i, msg, rinfo))
    socket.on('error', () => counters[WorkerCounter.SocketErrors]++)
    sockets.push(socket)
  }
}

parentPort!.on(
  'message',
  (
    m:
      | { type: 'send'; batch: ArrayBuffer }
      | { type: 'bind'; port: number }
      | { type: 'block'; source: string; forMs: number }
      | { type: 'close' },
  ) => {
    if (m.type === 'send') readDatagramBatch(m.batch, send)
    else if (m.type === 'block') {
      setNewest(blocked, m.source, performance.now() + m.forMs, MAX_BLOCKED)
    } else if (m.type === 'bind') {
      data.port = m.port
      bindAll().then(
        () => {
          const a = sockets[0].address()
          parentPort!.postMessage({
            type: 'bound',
            port: a.port,
            recvBufferSize: sockets[0].getRecvBufferSize(),
          })
        },
        (err: Error) => parentPort!.postMessage({ type: 'bind-error', message: err.message }),
      )
    } else {
      if (reportTimer !== undefined) clearTimeout(reportTimer)
      for (const s of sockets) s.close()
      parentPort!.close()
    }
  },
)
