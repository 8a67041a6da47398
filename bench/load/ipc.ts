/**
 * The messages the end-to-end bench's coordinator exchanges with its child processes
 * (broker, servers, load replayers) over Node's IPC channel (advanced serialization, so
 * byte arrays travel as they are), and the orderer that crosses it.
 */
import type { BatchReference, OrderedListener, Orderer } from '../../src/broker/orderer.ts'
import type { BrokerLimits } from '../../src/broker/params.ts'
import type { LoadRegistration, LoadSpec } from './load-cache.ts'

/** Wall-clock milliseconds shared by every process on the machine (sub-millisecond resolution). */
export function epochNow(): number {
  return performance.timeOrigin + performance.now()
}

/** What every child is told about the load. */
export interface LoadContext {
  /** The load's spec. */
  spec: LoadSpec
  /** Public keys of its key sets. */
  registrations: LoadRegistration[]
  /** Decoder limits shared by broker, servers and clients. */
  limits: Partial<BrokerLimits>
  /** Raw ed25519 public keys of the servers. */
  serverKeys: Uint8Array[]
}

/**
 * CPU time a process spends from {@link mark} on, all threads and its main thread alone:
 * unlike wall-clock rates, these do not depend on how much of the machine other work
 * leaves the process.
 */
export class CpuMeter {
  private cpu = process.cpuUsage()
  private main = process.threadCpuUsage()

  /** Starts counting now. */
  mark(): void {
    this.cpu = process.cpuUsage()
    this.main = process.threadCpuUsage()
  }

  /** CPU milliseconds (user + system, every thread) since the mark. */
  cpuMs(): number {
    const d = process.cpuUsage(this.cpu)
    return (d.user + d.system) / 1000
  }

  /** CPU milliseconds of the main thread since the mark (call it on the main thread). */
  mainCpuMs(): number {
    const d = process.threadCpuUsage(this.main)
    return (d.user + d.system) / 1000
  }
}

/** Coordinator → server process. */
export type ToServer =
  | { type: 'init'; context: LoadContext; index: number }
  /** Start counting CPU time now (the replay is about to start). */
  | { type: 'mark' }
  | { type: 'ordered'; slot: number; reference: BatchReference }
  | { type: 'report' }

/** Server process → coordinator. */
export type FromServer = { type: 'ready'; port: number } | { type: 'report'; report: ServerReport }

/** What a server process counted. */
export interface ServerReport {
  /** Distinct client ids delivered. */
  delivered: number
  /** Deliveries beyond the first for an id. */
  deliveredTwice: number
  /** Deliveries whose payload is not the one the client signed. */
  wrongPayload: number
  /** Epoch ms of the first and last delivery (0 when none). */
  firstDeliveryAt: number
  /** See `firstDeliveryAt`. */
  lastDeliveryAt: number
  /** Deliveries per 100 ms bucket: [epoch bucket (ms / 100, floored), count]. */
  buckets: [number, number][]
  /** Batches this server verified and witnessed. */
  witnessed: number
  /** CPU milliseconds since the mark (every thread). */
  cpuMs: number
}

/** Broker settings of an end-to-end run. */
export interface BrokerSettings {
  /** Flush the pool this long after its first entry. */
  flushTimeoutMs: number
  /** How long clients have to return shares. */
  shareTimeoutMs: number
  /** Worker threads checking submission signatures. */
  authThreads: number
  /** Batches between flush and certificate at once. */
  maxInFlightBatches: number
  /** Kernel receive buffer asked for the client socket, in bytes. */
  recvBufferBytes: number
  /** Pool before checking signatures, check only stragglers' (false: one by one). */
  deferAuthentication: boolean
  /** Worker threads that own the UDP sockets (0: the sockets on the main thread). */
  udpThreads: number
  /**
   * Unchecked entries a network prefix may hold before any is proven: the replayers send
   * every client id from one address, where the ids stand for clients on many prefixes.
   */
  deferBase: number
}

/** Coordinator → broker process. */
export type ToBroker =
  | {
      type: 'init'
      context: LoadContext
      serverPorts: number[]
      settings: BrokerSettings
    }
  /** Start counting CPU time now (the replay is about to start). */
  | { type: 'mark' }
  | { type: 'report' }

/** Broker process → coordinator. */
export type FromBroker =
  | { type: 'ready'; address: string; recvBufferBytes: number }
  | { type: 'propose'; reference: BatchReference }
  | { type: 'report'; report: BrokerReport }

/** What the broker process counted. */
export interface BrokerReport {
  /** Epoch ms when the counters were read. */
  at: number
  /** Datagrams that reached the broker core (taken off the sockets, less those dropped between threads). */
  received: number
  /** Datagrams sent to clients. */
  sent: number
  /** The core's counters. */
  counts: Record<string, number>
  /** CPU milliseconds since the mark (every thread: main, UDP, authentication). */
  cpuMs: number
  /** CPU milliseconds of the main thread (the core) since the mark. */
  mainCpuMs: number
}

/** Coordinator → replay process. */
export type ToReplay =
  | {
      type: 'init'
      context: LoadContext
      cacheDir: string
      part: number
      parts: number
      broker: string
      otherBrokers: string[]
      ratePerSecond: number
      retryMs: number
    }
  | { type: 'start'; at: number }
  /** Stop sending anything (the run is over for this replayer); answered with 'stopped'. */
  | { type: 'stop' }
  | { type: 'report' }

/** Replay process → coordinator. */
export type FromReplay =
  | { type: 'ready' }
  | { type: 'done' }
  | { type: 'stopped' }
  | { type: 'report'; report: ReplayReport }

/** What a replay process counted. */
export interface ReplayReport {
  /** Client ids this process replays. */
  clients: number
  /** First transmissions sent. */
  submitted: number
  /** Retransmissions (no delivery certificate within the retry time). */
  retransmissions: number
  /** BLS shares sent. */
  shares: number
  /** Datagrams sent in all (submissions, retransmissions, shares). */
  datagramsSent: number
  /** Sends the socket reported as failed. */
  sendErrors: number
  /** Datagrams received from the broker. */
  datagramsReceived: number
  /** Ids with a verified delivery certificate. */
  delivered: number
  /** Inclusion proofs or certificates refused (bad proof, raise or certificate). */
  refused: number
  /** Times an id moved to the next broker. */
  failovers: number
  /** BLS signatures computed (one per key set per batch root). */
  blsSignatures: number
  /** Epoch ms of the first and last first-transmission. */
  firstSendAt: number
  /** See `firstSendAt`. */
  lastSendAt: number
  /** First transmission → verified delivery certificate, per delivered id, in ms. */
  latenciesMs: Float64Array
  /** CPU milliseconds since the replay started (every thread). */
  cpuMs: number
}

/**
 * An {@link Orderer} whose sequencer lives in the parent process: `propose` goes up the
 * IPC channel, ordered references come down and are handed to {@link deliver}.
 */
export class IpcOrderer implements Orderer {
  private readonly listeners = new Set<OrderedListener>()

  propose(reference: BatchReference): void {
    process.send?.({ type: 'propose', reference } satisfies FromBroker)
  }

  subscribe(listener: OrderedListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Hands a reference ordered by the parent's sequencer to the listeners. */
  deliver(slot: number, reference: BatchReference): void {
    for (const l of this.listeners) l(slot, reference)
  }
}

/** Sends `message` to the parent (a child process's side of the channel). */
export function toParent(message: FromServer | FromBroker | FromReplay): void {
  // After the coordinator gave up on this child, there is nobody to tell.
  if (process.connected) process.send?.(message)
}
