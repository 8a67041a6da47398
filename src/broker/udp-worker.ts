/**
 * Worker thread body of {@link ThreadedUdpEndpoint}: owns some of the SO_REUSEPORT sockets
 * of the endpoint's port, runs what they receive through a {@link SourceGate} (the core's
 * bans, per-source budgets, round-robin by prefix), packs what the gate hands on into
 * batches for the main thread (transferred, not copied), and sends the batches of datagrams
 * the main thread hands it. A driver only: the policy is the gate's.
 *
 * Shared counters (Float64Array over `workerData.counters`): see {@link WorkerCounter}.
 * At most `maxDatagramsInFlight` datagrams (and `maxBytesInFlight` bytes) are posted and not
 * yet read by the main thread; the rest wait in the gate, each source within its budget, so
 * a flood's backlog sits in its own queue and the main thread gets every source in turn.
 */
import type { Socket } from 'node:dgram'
import { parentPort, workerData } from 'node:worker_threads'
import {
  DatagramBatchWriter,
  ipv4ToNumber,
  numberToIpv4,
  readDatagramBatch,
} from './datagram-batch.ts'
import { SourceGate } from './source-gate.ts'
import { bindUdpSocket } from './udp-socket.ts'
import {
  type BatchMessage,
  InFlightSlot,
  MAX_BLOCKED,
  MAX_REPORT_SOURCES,
  type ReportMessage,
  type ToWorker,
  type UdpWorkerData,
  WorkerCounter,
} from './udp-worker-protocol.ts'

/** Longest delay of a report. */
const REPORT_MS = 50

interface Datagram {
  address: string
  port: number
  frame: Uint8Array
}

const data = workerData as UdpWorkerData
const counters = new Float64Array(data.counters)
const inFlight = new Int32Array(data.inFlight)
const sockets: Socket[] = []
const writer = new DatagramBatchWriter(data.batchBytes)
const gate = new SourceGate<Datagram>({
  maxQueued: data.maxQueued,
  maxQueuedBytes: data.maxQueuedBytes,
  maxQueuedPerAddress: data.maxQueuedPerAddress,
  maxQueuedPerPrefix: data.maxQueuedPerPrefix,
  maxBans: MAX_BLOCKED,
  maxCountedSources: MAX_REPORT_SOURCES,
})
let pumpScheduled = false
let reportTimer: ReturnType<typeof setTimeout> | undefined

function post(): void {
  const records = writer.count
  const batch = writer.take()
  if (batch === undefined) return
  Atomics.add(inFlight, InFlightSlot.Bytes, batch.byteLength)
  Atomics.add(inFlight, InFlightSlot.Datagrams, records)
  counters[WorkerCounter.Forwarded] += records
  const m: BatchMessage = { type: 'batch', batch, records }
  parentPort!.postMessage(m, [batch])
}

function forward(d: Datagram): void {
  const ip = ipv4ToNumber(d.address)
  if (!writer.add(ip, d.address, d.port, d.frame)) {
    post()
    writer.add(ip, d.address, d.port, d.frame)
  }
}

/** Datagrams the main thread may still be given now. */
function credit(): number {
  if (Atomics.load(inFlight, InFlightSlot.Bytes) >= data.maxBytesInFlight) return 0
  return data.maxDatagramsInFlight - Atomics.load(inFlight, InFlightSlot.Datagrams)
}

/** Hands the gate's datagrams on while the main thread has room; else waits for its `pull`. */
function pump(): void {
  pumpScheduled = false
  for (;;) {
    const room = credit()
    if (room > 0) {
      const n = gate.take(Math.min(room, 1024), data.quantum, forward, performance.now())
      post()
      // Queued datagrams of a source banned meanwhile are dropped by the take.
      counters[WorkerCounter.Blocked] = gate.totals.banned
      reportSoon()
      if (gate.queued === 0) return
      if (n > 0) continue
    }
    if (gate.queued === 0) return
    Atomics.store(inFlight, InFlightSlot.Waiting, 1)
    // The main thread may have read everything between the check and the flag.
    if (credit() <= 0) return
    Atomics.store(inFlight, InFlightSlot.Waiting, 0)
  }
}

function schedulePump(): void {
  if (!pumpScheduled) {
    pumpScheduled = true
    setImmediate(pump)
  }
}

/** Reports at most every {@link REPORT_MS}, not once per turn of a flood. */
function report(): void {
  reportTimer = undefined
  const m: ReportMessage = { type: 'report', bySource: gate.report() }
  if (m.bySource.length > 0) parentPort!.postMessage(m)
}

function reportSoon(): void {
  reportTimer ??= setTimeout(report, REPORT_MS)
}

function onMessage(msg: Buffer, rinfo: { address: string; port: number }): void {
  counters[WorkerCounter.Received]++
  if (msg.length > data.maxDatagramBytes) {
    counters[WorkerCounter.Oversized]++
    return
  }
  const datagram = { address: rinfo.address, port: rinfo.port, frame: msg }
  if (gate.offer(rinfo.address, msg.length, datagram, performance.now())) {
    schedulePump()
    return
  }
  counters[WorkerCounter.Blocked] = gate.totals.banned
  counters[WorkerCounter.Overflow] = gate.totals.overBudget
  reportSoon()
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
    socket.on('message', onMessage)
    socket.on('error', () => counters[WorkerCounter.SocketErrors]++)
    sockets.push(socket)
  }
}

parentPort!.on('message', (m: ToWorker) => {
  if (m.type === 'send') readDatagramBatch(m.batch, send)
  else if (m.type === 'pull') schedulePump()
  else if (m.type === 'bans') {
    const now = performance.now()
    for (const [source, forMs] of m.bans) gate.ban(source, now + forMs)
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
})
