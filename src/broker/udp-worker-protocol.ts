/** What {@link ThreadedUdpEndpoint} and its UDP worker threads share. */

/** Slots of a worker's shared counters (a Float64Array written only by the worker). */
export const WorkerCounter = {
  /** Datagrams received on the worker's sockets. */
  Received: 0,
  /** Of those, dropped as larger than `maxDatagramBytes`. */
  Oversized: 1,
  /** Of those, dropped because the main thread was `maxBytesInFlight` bytes of batches behind. */
  Overflow: 2,
  /** Datagrams sent. */
  Sent: 3,
  /** Sends the socket reported as failed. */
  SendErrors: 4,
  /** Socket errors. */
  SocketErrors: 5,
} as const

/** Slots in a worker's counters buffer. */
export const WORKER_COUNTERS = 6

/** The `workerData` of a UDP worker thread. */
export interface UdpWorkerData {
  /** Address to bind. */
  host: string
  /** Port to bind (0: the first worker picks one, the others take it). */
  port: number
  /** True for an IPv6 `host`. */
  ipv6: boolean
  /** SO_REUSEPORT sockets this worker owns on the port. */
  sockets: number
  /** Kernel buffer sizes asked for, in bytes (undefined: the system's). */
  recvBufferSize?: number
  /** See `recvBufferSize`. */
  sendBufferSize?: number
  /** Larger datagrams are dropped and counted. */
  maxDatagramBytes: number
  /** Capacity of one batch to the main thread, in bytes. */
  batchBytes: number
  /** Bytes of batches posted and not yet read by the main thread beyond which datagrams are dropped. */
  maxBytesInFlight: number
  /** SharedArrayBuffer of {@link WORKER_COUNTERS} float64 counters. */
  counters: SharedArrayBuffer
  /** SharedArrayBuffer of one int32: bytes of batches posted and not yet read by the main thread. */
  inFlight: SharedArrayBuffer
}
