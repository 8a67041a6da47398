/**
 * Worker thread body of {@link ThreadedUdpEndpoint}: owns some of the SO_REUSEPORT sockets
 * of the endpoint's port, packs the datagrams they receive into batches (one message per
 * event-loop turn, transferred, not copied) for the main thread, and sends the batches of
 * datagrams the main thread hands it. A driver only: no protocol logic.
 *
 * Shared counters (Float64Array over `workerData.counters`): see {@link WorkerCounter}.
 * When the main thread is `maxBytesInFlight` bytes of batches behind, received datagrams are
 * dropped here and counted (`overflow`), as a full kernel buffer would drop them, so the
 * queue between the threads stays bounded.
 */
import type { Socket } from 'node:dgram'
import { parentPort, workerData } from 'node:worker_threads'
import {
  DatagramBatchWriter,
  ipv4ToNumber,
  numberToIpv4,
  readDatagramBatch,
} from './datagram-batch.ts'
import { bindUdpSocket } from './udp-socket.ts'
import { type UdpWorkerData, WorkerCounter } from './udp-worker-protocol.ts'

const data = workerData as UdpWorkerData
const counters = new Float64Array(data.counters)
const inFlight = new Int32Array(data.inFlight)
const writer = new DatagramBatchWriter(data.batchBytes)
const sockets: Socket[] = []
let flushScheduled = false

function flush(): void {
  flushScheduled = false
  const batch = writer.take()
  if (batch === undefined) return
  Atomics.add(inFlight, 0, batch.byteLength)
  parentPort!.postMessage({ type: 'batch', batch }, [batch])
}

function onMessage(msg: Buffer, rinfo: { address: string; port: number }): void {
  counters[WorkerCounter.Received]++
  if (msg.length > data.maxDatagramBytes) {
    counters[WorkerCounter.Oversized]++
    return
  }
  if (Atomics.load(inFlight, 0) >= data.maxBytesInFlight) {
    counters[WorkerCounter.Overflow]++
    return
  }
  const ip = ipv4ToNumber(rinfo.address)
  if (!writer.add(ip, rinfo.address, rinfo.port, msg)) {
    flush()
    writer.add(ip, rinfo.address, rinfo.port, msg)
  }
  if (!flushScheduled) {
    flushScheduled = true
    setImmediate(flush)
  }
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
    socket.on('message', onMessage)
    socket.on('error', () => counters[WorkerCounter.SocketErrors]++)
    sockets.push(socket)
  }
}

parentPort!.on(
  'message',
  (
    m: { type: 'send'; batch: ArrayBuffer } | { type: 'bind'; port: number } | { type: 'close' },
  ) => {
    if (m.type === 'send') readDatagramBatch(m.batch, send)
    else if (m.type === 'bind') {
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
      for (const s of sockets) s.close()
      parentPort!.close()
    }
  },
)
