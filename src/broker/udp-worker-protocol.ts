/** What {@link ThreadedUdpEndpoint} and its UDP worker threads share. */
import type { SourceCounts } from './source-gate.ts'

/** Slots of a worker's shared counters (a Float64Array written only by the worker). */
export const WorkerCounter = {
  /** Datagrams received on the worker's sockets. */
  Received: 0,
  /** Of those, dropped as larger than `maxDatagramBytes`. */
  Oversized: 1,
  /** Of those, dropped because their source's (or the thread's) queue budget was used up. */
  Overflow: 2,
  /** Datagrams sent. */
  Sent: 3,
  /** Sends the socket reported as failed. */
  SendErrors: 4,
  /** Socket errors. */
  SocketErrors: 5,
  /** Of those received, dropped because the core banned their source (see `bans`). */
  Blocked: 6,
  /** Of those received, handed on to the main thread. */
  Forwarded: 7,
} as const

/** Slots in a worker's counters buffer. */
export const WORKER_COUNTERS = 8

/** Int32 slots of a worker's `inFlight` buffer. */
export const InFlightSlot = {
  /** Bytes of batches posted to the main thread and not read yet. */
  Bytes: 0,
  /** Datagrams likewise. */
  Datagrams: 1,
  /** 1 while the worker holds datagrams it may not post until the main thread reads: the main thread then sends `pull`. */
  Waiting: 2,
} as const

/** Int32 slots of a worker's `inFlight` buffer. */
export const IN_FLIGHT_SLOTS = 3

/** Distinct source addresses a worker counts apart between two reports; the rest count under `other`. */
export const MAX_REPORT_SOURCES = 256

/** Bans in one `bans` message (the main thread splits longer lists). */
export const MAX_BANS_PER_MESSAGE = 256

/** Sources (addresses, or prefixes as `sourceOf` names them) a worker drops on receipt at once; beyond, the oldest go. */
export const MAX_BLOCKED = 4096

/** A batch of datagrams for the main thread (`batch` is transferred). */
export interface BatchMessage {
  type: 'batch'
  /** Records written by `DatagramBatchWriter`. */
  batch: ArrayBuffer
  /** Datagrams in `batch`. */
  records: number
}

/**
 * What the worker did with each source's datagrams since its last report: by source address
 * ("other" beyond {@link MAX_REPORT_SOURCES}).
 */
export interface ReportMessage {
  type: 'report'
  bySource: [address: string, counts: SourceCounts][]
}

/** Messages from the main thread to a worker. */
export type ToWorker =
  | { type: 'send'; batch: ArrayBuffer }
  | { type: 'bind'; port: number }
  /** Drop what these sources send, each for `forMs` ms from receipt (at most {@link MAX_BANS_PER_MESSAGE}). */
  | { type: 'bans'; bans: [source: string, forMs: number][] }
  /** The main thread read batches while the worker was waiting: post more. */
  | { type: 'pull' }
  | { type: 'close' }

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
  /** Bytes posted to the main thread and not read yet beyond which the worker holds datagrams back. */
  maxBytesInFlight: number
  /** Likewise in datagrams. */
  maxDatagramsInFlight: number
  /** Datagrams the worker holds (queued by source) at most, in all. */
  maxQueued: number
  /** Likewise in bytes. */
  maxQueuedBytes: number
  /** Datagrams held at most from one address. */
  maxQueuedPerAddress: number
  /** Datagrams held at most from one /24 or /64 prefix. */
  maxQueuedPerPrefix: number
  /** Datagrams taken from each prefix's queue in turn. */
  quantum: number
  /** SharedArrayBuffer of {@link WORKER_COUNTERS} float64 counters. */
  counters: SharedArrayBuffer
  /** SharedArrayBuffer of {@link IN_FLIGHT_SLOTS} int32 (see {@link InFlightSlot}). */
  inFlight: SharedArrayBuffer
}
