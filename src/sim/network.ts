import type { ComponentLogger, Logger } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import type { PeerKey } from '../common/artifact.ts'
import type { Dissemination } from '../common/dissemination.ts'
import type { Env, ProtocolCore, TimerHandle } from '../common/env.ts'
import { InvalidParametersError } from '../common/errors.ts'
import { EventQueue } from './event-queue.ts'
import { type Graph, neighborsOf } from './graph.ts'
import type { LatencyFn } from './placement.ts'
import { Prng } from './prng.ts'

const log = logger('consensus-multicast:sim')

const coreLoggers = new Map<string, Logger>()
/** The cores' loggers: one `@libp2p/logger` per component, shared by every simulated node. */
const simLogger: ComponentLogger = {
  forComponent(name) {
    let l = coreLoggers.get(name)
    if (l === undefined) {
      l = logger(name)
      coreLoggers.set(name, l)
    }
    return l
  },
}

/** The peer key of node `i` in a simulation. */
export function simNodeName(i: number): PeerKey {
  return `n${i}`
}

/** A protocol core the simulator can host: driven as a core, used through the public API. */
export type SimCore = ProtocolCore & Dissemination

/** Builds the core of node `index`; called again on every restart. */
export type CoreFactory<C extends SimCore> = (env: Env, index: number) => C

/** The network model of a simulation. */
export interface NetworkOptions {
  /** Seed of every random choice (loss, the cores' `random()`). */
  seed: number | string
  /** Who is connected to whom. */
  graph: Graph
  /** One-way propagation latency of each link, in milliseconds. */
  latency: LatencyFn
  /**
   * Upload bandwidth per node in bits per second (a number for all, or per node).
   * Frames leave a node one after another, so sending 100 KB to 8 peers takes 8 times as
   * long as to one. Default: unlimited (no serialization delay).
   */
  uploadBps?: number | ((node: number) => number)
  /** Probability that a frame is lost on a link (default 0). */
  loss?: number
  /** Bytes of transport framing counted per frame on top of the core's bytes (default 0). */
  frameOverhead?: number
  /**
   * When a node crashes, how long until its neighbours are told the connection is gone
   * (`peerDisconnected`), in ms; `Infinity` means never (a silent crash). Default 0.
   */
  disconnectDetectionMs?: number
}

/** Network-level counters (every frame, before the cores see it). */
export interface TrafficCounters {
  /** Frames handed to the network. */
  framesSent: number
  /** Bytes handed to the network, including per-frame overhead. */
  bytesSent: number
  /** Frames delivered to a live receiver. */
  framesDelivered: number
  /** Frames lost: link loss, partitions, dead receivers, cut links. */
  framesDropped: number
}

/**
 * A core's timer in the event queue: one object per timer (no closure per event); the
 * event's tags say whose it is, so a crashed or restarted node's timers do not fire.
 */
class SimTimer implements TimerHandle {
  cancelled = false
  readonly fn: () => void

  constructor(fn: () => void) {
    this.fn = fn
  }

  cancel(): void {
    this.cancelled = true
  }
}

/**
 * What the queue holds: a callback, a core's timer (tags: node, epoch), or a frame in
 * flight (tags: receiver, receiver's epoch at sending, sender), data rather than a closure.
 */
type SimEvent = (() => void) | SimTimer | Uint8Array

/** Called when a node's core is created (at start and on every restart). */
export type CoreObserver<C> = (index: number, core: C) => void

/**
 * A deterministic discrete-event network in virtual time. Every node runs a protocol
 * core through an {@link Env} whose clock, timers, randomness and sockets are simulated.
 * Same seed and scenario, byte-identical run.
 */
export class Simulation<C extends SimCore = SimCore> {
  /** The seeded generator of network randomness. */
  readonly prng: Prng
  /** Network-level counters. */
  readonly traffic: TrafficCounters = {
    framesSent: 0,
    bytesSent: 0,
    framesDelivered: 0,
    framesDropped: 0,
  }
  /** Number of nodes. */
  readonly size: number

  private readonly options: NetworkOptions
  private readonly queue = new EventQueue<SimEvent>()
  private clock = 0
  private readonly factory: CoreFactory<C>
  private readonly cores: C[] = []
  private readonly up: Uint8Array
  private readonly epoch: Uint32Array
  private readonly uplinkFree: Float64Array
  private readonly uploadBps: Float64Array
  private readonly names: string[]
  private readonly index = new Map<PeerKey, number>()
  private readonly observers: CoreObserver<C>[] = []
  private readonly cutLinks = new Set<number>()
  private readonly linkLoss = new Map<number, number>()
  private partitionOf: Int32Array | undefined
  private started = false
  /**
   * Every core's `now` (one function for all: a core reads the time several times per
   * frame, and a closure per node was another object out of the cache each time).
   */
  private readonly clockOf = (): number => this.clock

  constructor(options: NetworkOptions, factory: CoreFactory<C>) {
    const n = options.graph.n
    if ((options.loss ?? 0) < 0 || (options.loss ?? 0) > 1) {
      throw new InvalidParametersError(`loss must be in [0, 1], got ${options.loss}`)
    }
    this.options = options
    this.size = n
    this.factory = factory
    this.prng = new Prng(options.seed)
    this.up = new Uint8Array(n)
    this.epoch = new Uint32Array(n)
    this.uplinkFree = new Float64Array(n)
    this.uploadBps = new Float64Array(n)
    this.names = new Array<string>(n)
    const bps = options.uploadBps ?? Number.POSITIVE_INFINITY
    for (let i = 0; i < n; i++) {
      this.names[i] = simNodeName(i)
      this.index.set(this.names[i], i)
      const b = typeof bps === 'number' ? bps : bps(i)
      if (!(b > 0)) throw new InvalidParametersError(`upload bandwidth of node ${i} must be > 0`)
      this.uploadBps[i] = b
    }
  }

  /** Current virtual time in milliseconds. */
  now(): number {
    return this.clock
  }

  /** The key node `i` is known by to its peers. */
  nameOf(i: number): PeerKey {
    return this.names[i]
  }

  /** The index of the node known as `name`. */
  indexOf(name: PeerKey): number {
    const i = this.index.get(name)
    if (i === undefined) throw new InvalidParametersError(`unknown node ${name}`)
    return i
  }

  /** The current core of node `i` (a new one after each restart). */
  core(i: number): C {
    return this.cores[i]
  }

  /** True while node `i` is running. */
  isUp(i: number): boolean {
    return this.up[i] === 1
  }

  /** Calls `observer` for every core created from now on, and for the existing ones. */
  observe(observer: CoreObserver<C>): void {
    this.observers.push(observer)
    for (let i = 0; i < this.cores.length; i++) observer(i, this.cores[i])
  }

  /** Creates every node's core, connects the graph's links and starts the cores. */
  start(): void {
    if (this.started) throw new InvalidParametersError('simulation already started')
    this.started = true
    for (let i = 0; i < this.size; i++) this.createCore(i)
    for (let i = 0; i < this.size; i++) {
      for (const j of neighborsOf(this.options.graph, i)) {
        this.cores[i].peerConnected(this.names[j], { outbound: i < j })
      }
    }
    for (let i = 0; i < this.size; i++) this.cores[i].start()
  }

  /** Schedules `fn` at virtual time `time` (ms). */
  at(time: number, fn: () => void): void {
    this.queue.push(Math.max(time, this.clock), fn)
  }

  /** Schedules `fn` after `delay` ms. */
  after(delay: number, fn: () => void): void {
    this.queue.push(this.clock + Math.max(0, delay), fn)
  }

  /**
   * Runs events until the queue is empty, virtual time passes `until`, or `maxEvents` have
   * fired. Returns the number of events that fired.
   */
  run(options: { until?: number; maxEvents?: number } = {}): number {
    const until = options.until ?? Number.POSITIVE_INFINITY
    const maxEvents = options.maxEvents ?? Number.POSITIVE_INFINITY
    let fired = 0
    const queue = this.queue
    while (fired < maxEvents && queue.size > 0 && queue.peekTime() <= until) {
      this.clock = queue.peekTime()
      const event = queue.pop()!
      if (event instanceof Uint8Array)
        this.deliver(queue.poppedA, queue.poppedB, queue.poppedC, event)
      else if (event instanceof SimTimer) {
        const i = queue.poppedA
        if (!event.cancelled && this.up[i] === 1 && this.epoch[i] === queue.poppedB) event.fn()
      } else event()
      fired++
    }
    if (until !== Number.POSITIVE_INFINITY && this.clock < until && fired < maxEvents) {
      this.clock = until
    }
    return fired
  }

  /** Number of pending events. */
  pending(): number {
    return this.queue.size
  }

  /** Stops node `i`: its timers die, frames to it are lost, its neighbours are told. */
  crash(i: number): void {
    if (!this.isUp(i)) return
    this.up[i] = 0
    this.epoch[i]++
    this.cores[i].stop()
    const detect = this.options.disconnectDetectionMs ?? 0
    if (detect === Number.POSITIVE_INFINITY) return
    const name = this.names[i]
    for (const j of neighborsOf(this.options.graph, i)) {
      const e = this.epoch[j]
      this.after(detect, () => {
        if (this.isUp(j) && this.epoch[j] === e) this.cores[j].peerDisconnected(name)
      })
    }
  }

  /** Restarts node `i` with a fresh core and reconnects it to its live neighbours. */
  restart(i: number): void {
    if (this.isUp(i)) return
    this.epoch[i]++
    const core = this.createCore(i)
    const name = this.names[i]
    for (const j of neighborsOf(this.options.graph, i)) {
      if (!this.isUp(j) || this.isCut(i, j)) continue
      core.peerConnected(this.names[j], { outbound: true })
      this.cores[j].peerConnected(name, { outbound: false })
    }
    core.start()
  }

  /** Sets the loss probability of the link between `a` and `b` (both directions). */
  setLinkLoss(a: number, b: number, loss: number): void {
    this.linkLoss.set(this.linkKey(a, b), loss)
  }

  /** Cuts the link between `a` and `b`: both ends are told the peer is gone. */
  cutLink(a: number, b: number): void {
    this.cutLinks.add(this.linkKey(a, b))
    if (this.isUp(a)) this.cores[a].peerDisconnected(this.names[b])
    if (this.isUp(b)) this.cores[b].peerDisconnected(this.names[a])
  }

  /** Restores a cut link: both ends are told the peer is back. */
  healLink(a: number, b: number): void {
    if (!this.cutLinks.delete(this.linkKey(a, b))) return
    if (this.isUp(a) && this.isUp(b)) {
      this.cores[a].peerConnected(this.names[b], { outbound: true })
      this.cores[b].peerConnected(this.names[a], { outbound: false })
    }
  }

  /**
   * Partitions the network: `group[i]` labels node i's side; frames between sides are lost
   * (connections stay up, as in a routing black hole). `undefined` heals the partition.
   */
  partition(group: ArrayLike<number> | undefined): void {
    this.partitionOf = group === undefined ? undefined : Int32Array.from(group)
  }

  private createCore(i: number): C {
    const epoch = this.epoch[i]
    const rng = this.prng.fork(`node-${i}-${epoch}`)
    const env: Env = {
      self: this.names[i],
      now: this.clockOf,
      send: (peer, frame) => this.send(i, epoch, peer, frame),
      setTimer: (delayMs, fn) => this.setTimer(i, epoch, delayMs, fn),
      random: () => rng.next(),
      logger: simLogger,
      disconnect: (peer, { denyMs }) => this.disconnect(i, epoch, peer, denyMs),
    }
    const core = this.factory(env, i)
    this.cores[i] = core
    this.up[i] = 1
    for (const observer of this.observers) observer(i, core)
    return core
  }

  /** A core dropped `peer`: the link is cut (both ends told) and healed after `denyMs`. */
  private disconnect(i: number, epoch: number, peer: PeerKey, denyMs: number): void {
    const j = this.index.get(peer)
    if (j === undefined || this.up[i] !== 1 || this.epoch[i] !== epoch) return
    if (this.isCut(i, j)) return
    this.cutLink(i, j)
    this.after(denyMs, () => this.healLink(i, j))
  }

  private setTimer(i: number, epoch: number, delayMs: number, fn: () => void): TimerHandle {
    const timer = new SimTimer(fn)
    this.queue.push(this.clock + Math.max(0, delayMs), timer, i, epoch)
    return timer
  }

  private send(from: number, epoch: number, peer: PeerKey, frame: Uint8Array): void {
    if (this.up[from] !== 1 || this.epoch[from] !== epoch) return
    const to = this.nodeIndex(peer)
    if (to === undefined) {
      log.error('node %d sent to unknown peer %s', from, peer)
      return
    }
    const size = frame.length + (this.options.frameOverhead ?? 0)
    this.traffic.framesSent++
    this.traffic.bytesSent += size
    // Serialization: the frame starts when the uplink is free and occupies it for size/bps.
    const start = Math.max(this.clock, this.uplinkFree[from])
    const done = start + (size * 8 * 1000) / this.uploadBps[from]
    this.uplinkFree[from] = done
    if (this.isLost(from, to)) {
      this.traffic.framesDropped++
      return
    }
    this.queue.push(done + this.options.latency(from, to), frame, to, this.epoch[to], from)
  }

  /**
   * The index of the node known as `peer`, or undefined. Read from the name (`n` and the
   * index, see {@link simNodeName}) and checked against it, so that a send costs no lookup in
   * a map of every node; any other key is looked up.
   */
  private nodeIndex(peer: PeerKey): number | undefined {
    const len = peer.length
    if (len >= 2 && len <= 10 && peer.charCodeAt(0) === 110 /* n */) {
      let i = 0
      for (let k = 1; k < len; k++) {
        const d = peer.charCodeAt(k) - 48
        if (d < 0 || d > 9) return this.index.get(peer)
        i = i * 10 + d
      }
      if (i < this.size && this.names[i] === peer) return i
    }
    return this.index.get(peer)
  }

  /** A frame arrives at `to`, sent by `from` while `to` was in epoch `toEpoch`. */
  private deliver(to: number, toEpoch: number, from: number, frame: Uint8Array): void {
    if (this.up[to] !== 1 || this.epoch[to] !== toEpoch || this.isCut(from, to)) {
      this.traffic.framesDropped++
      return
    }
    this.traffic.framesDelivered++
    this.cores[to].receive(this.names[from], frame)
  }

  private isLost(from: number, to: number): boolean {
    if (this.cutLinks.size > 0 && this.isCut(from, to)) return true
    const p = this.partitionOf
    if (p !== undefined && p[from] !== p[to]) return true
    const loss =
      this.linkLoss.size > 0
        ? (this.linkLoss.get(this.linkKey(from, to)) ?? this.options.loss ?? 0)
        : (this.options.loss ?? 0)
    return loss > 0 && this.prng.next() < loss
  }

  private isCut(a: number, b: number): boolean {
    return this.cutLinks.size > 0 && this.cutLinks.has(this.linkKey(a, b))
  }

  private linkKey(a: number, b: number): number {
    return a < b ? a * this.size + b : b * this.size + a
  }
}
