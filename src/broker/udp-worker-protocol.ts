/** What {@link ThreadedUdpEndpoint} and its UDP worker threads share. */

/** Slots of a worker's shared counters (a Float64Array written only by the worker). */
export const WorkerCounter = {
  /** Datagrams received on the worker's sockets. */
  Received: 0,
  /** Of those, dropped as larger than `maxDatagramBytes`. */
  Oversized: 1,
  /** Of those, dropped because their socket's queue to the main thread was over its budget. */
  Overflow: 2,
  /** Datagrams sent. */
  Sent: 3,
  /** Sends the socket reported as failed. */
  SendErrors: 4,
  /** Socket errors. */
  SocketErrors: 5,
  /** Of those received, dropped because the core banned their source (see `block`). */
  Blocked: 6,
} as const

/** Slots in a worker's counters buffer before the per-socket ones (overflow of socket `s` at `WORKER_COUNTERS + s`). */
export const WORKER_COUNTERS = 7

/** Int32 slots per socket in a worker's `inFlight` buffer: bytes, then datagrams. */
export const IN_FLIGHT_SLOTS = 2

/** Distinct source addresses whose overflow a worker attributes between two reports; the rest count under `other`. */
export const MAX_DROP_SOURCES = 256

/** A batch of datagrams one socket received, for the main thread (`batch` is transferred). */
export interface BatchMessage {
  type: 'batch'
  /** The socket's index within its worker. */
  socket: number
  /** Records written by `DatagramBatchWriter`. */
  batch: ArrayBuffer
  /** Datagrams in `batch`. */
  records: number
}

/**
 * Datagrams dropped since the last report: for overflow, by source address ("other"
 * beyond {@link MAX_DROP_SOURCES}); and from banned sources.
 */
export interface DropsMessage {
  type: 'drops'
  bySource: [address: string, count: number][]
  blocked: number
}

/** Sources (addresses, or prefixes as `sourceOf` names them) a worker drops on receipt at once; beyond, the oldest go. */
export const MAX_BLOCKED = 4096

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
  /** Bytes of one socket's batches posted and not yet read by the main thread beyond which its datagrams are dropped. */
  maxBytesInFlight: number
  /** Likewise in datagrams. */
  maxDatagramsInFlight: number
  /** SharedArrayBuffer of {@link WORKER_COUNTERS} + `sockets` float64 counters. */
  counters: SharedArrayBuffer
  /** SharedArrayBuffer of {@link IN_FLIGHT_SLOTS} int32 per socket: what the main thread has not read yet. */
  inFlight: SharedArrayBuffer
}
