import {
  type ComponentLogger,
  type Connection,
  type Histogram,
  type Logger,
  type Metrics,
  type PeerId,
  type Startable,
  type Stream,
  serviceCapabilities,
  serviceDependencies,
  TypedEventEmitter,
} from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { PeerKey, Topic } from '../common/artifact.ts'
import { setNewest } from '../common/bounded-map.ts'
import type {
  Dissemination,
  DisseminationEvents,
  PublishOptions,
  PublishResult,
  StrategyName,
} from '../common/dissemination.ts'
import type { EventSink, Listener } from '../common/emitter.ts'
import type { DisconnectOptions, Env, ProtocolCore, TimerHandle } from '../common/env.ts'
import { InvalidParametersError } from '../common/errors.ts'
import { ipOf } from '../common/ip-address.ts'
import {
  encodeLengthPrefixed,
  FrameRefusedError,
  LengthPrefixedDecoder,
} from '../common/length-prefixed.ts'
import { withDefaults } from '../common/options.ts'
import type { DisseminationStats } from '../common/stats.ts'
import { nodeTimer } from '../common/system-clock.ts'
import type { Validator } from '../common/validation.ts'
import { type DriverStats, registerCoreMetrics, ServiceMetrics } from './service-metrics.ts'

/** The libp2p components a {@link DisseminationService} needs (libp2p passes them to service factories). */
export interface DisseminationServiceComponents {
  /** This node's peer id. */
  peerId: PeerId
  /** Protocol handlers and topologies. */
  registrar: Registrar
  /** Open connections. */
  connectionManager: ConnectionManager
  /** Loggers: the driver's and the core's. */
  logger: ComponentLogger
  /** Metrics, when the node has a metrics implementation (e.g. `@libp2p/prometheus-metrics`). */
  metrics?: Metrics
}

/** How a {@link DisseminationService} maps a core onto libp2p streams. */
export interface DisseminationServiceOptions {
  /** Protocol ids, most preferred first (e.g. `/meshsub/1.2.0`, `/meshsub/1.1.0`). */
  protocols: string[]
  /** Name for logs (`consensus-multicast:<name>`). */
  name: string
  /**
   * The service's name among libp2p services, e.g. `@consensus-multicast/gossip`: its
   * `Symbol.toStringTag` and the capability it provides.
   */
  tag: string
  /** Largest frame accepted from a peer, in bytes; a larger one closes the stream. */
  maxFrameBytes: number
  /** Bytes that may wait in one peer's outbound buffer; frames beyond it are dropped and counted. */
  maxQueuedBytesPerPeer?: number
  /** Concurrent inbound streams per connection for these protocols (default 2). */
  maxInboundStreams?: number
  /** Concurrent outbound streams per connection for these protocols (default 2). */
  maxOutboundStreams?: number
  /**
   * Peers to stay connected to, as multiaddrs ending in `/p2p/<peer id>`: dialled at start
   * and again whenever their connection is gone (e.g. a restarted replication point).
   */
  keepConnected?: Multiaddr[]
  /** How often missing `keepConnected` peers are dialled again, in ms (default 1000). */
  redialIntervalMs?: number
}

/**
 * Parses peer addresses that must end in `/p2p/<peer id>` (for `keepConnected`), with the
 * peer key each names. `what` names them in the error (e.g. 'RP address').
 */
export function peerAddresses(
  addrs: ReadonlyArray<string | Multiaddr>,
  what: string,
): { key: PeerKey; addr: Multiaddr }[] {
  return addrs.map((a) => {
    const addr = typeof a === 'string' ? multiaddr(a) : a
    const key = addr.getComponents().findLast((c) => c.name === 'p2p')?.value
    if (key === undefined) {
      throw new InvalidParametersError(`${what} ${addr.toString()} has no /p2p/<peer id>`)
    }
    return { key, addr }
  })
}

/** A protocol core that can be hosted by {@link DisseminationService}. */
export type HostedCore<
  E extends DisseminationEvents = DisseminationEvents,
  O extends PublishOptions = PublishOptions,
> = ProtocolCore &
  Dissemination<E, O> & {
    /** Hands every event to `sink` too (the service re-dispatches them). */
    forwardEvents(sink: EventSink<E>): void
    /**
     * Shown the first bytes of each large frame from `peer` as it arrives; false refuses the
     * frame before the rest of it is buffered (the core has counted it against the peer).
     */
    inspectFramePrefix?(peer: PeerKey, prefix: Uint8Array, frameLength: number): boolean
  }

/** A service's events as libp2p dispatches them: `CustomEvent`s carrying the core's payloads. */
export type ServiceEvents<E extends DisseminationEvents> = {
  [K in keyof E & string]: CustomEvent<E[K]>
}

/** The capability every service here provides, whatever its strategy. */
export const DISSEMINATION_CAPABILITY = '@consensus-multicast/dissemination'

interface PeerState {
  outbound?: Stream
  opening?: Promise<void>
  inbound: Set<Stream>
  pending: Uint8Array[]
  /** Frames the peer sent before the core was told of it (our stream to it was opening). */
  early: Uint8Array[]
  /**
   * The latest frame the core refused from its first bytes before it was told of the peer:
   * with no budgets for the peer yet, the refusal cost it no strike. Judged again once the
   * core knows it, so that a flood of such frames is cut off at its first, not its second.
   */
  refusedEarly?: { prefix: Uint8Array; frameLength: number }
  connected: boolean
}

/**
 * Frames held per peer while our stream to it opens: its hello and a few more (and no more
 * bytes than `maxQueuedBytesPerPeer`). A peer that sends more in that time loses the rest,
 * counted in `earlyFramesDropped`.
 */
export const MAX_EARLY_FRAMES = 64

/** Peers a service refuses at once (the oldest deny is forgotten first). */
export const MAX_DENIED_PEERS = 4096

/**
 * The one libp2p driver: hosts a sans-IO core as a libp2p 3 service. Each side writes on
 * its own outbound stream and reads length-prefixed frames from the peer's, as gossipsub
 * does. It holds no protocol logic: frames go to `core.receive`, `Env.send` goes to streams.
 *
 * It is a libp2p `TypedEventEmitter`: the core's events are dispatched as `CustomEvent`s
 * (`addEventListener('artifact', (evt) => evt.detail)`), and `on()` listens to the same.
 * With a `metrics` component, it registers the core's counters (see {@link ServiceMetrics}).
 * It needs identify: libp2p learns from it which peers speak the protocols.
 */
export class DisseminationService<
    C extends HostedCore<E, O>,
    E extends DisseminationEvents = DisseminationEvents,
    O extends PublishOptions = PublishOptions,
  >
  extends TypedEventEmitter<ServiceEvents<E>>
  implements Startable, Dissemination<E, O>
{
  /** The hosted core (for strategy-specific calls). */
  readonly core: C
  /** libp2p's name for the service (in errors about unmet dependencies). */
  readonly [Symbol.toStringTag]!: string
  /** What the service provides to other libp2p services. */
  readonly [serviceCapabilities]: string[]
  /** Identify tells the registrar which peers speak our protocols: without it none connect. */
  readonly [serviceDependencies]: string[] = ['@libp2p/identify']
  /** The service's metrics, when the node has a metrics component. */
  protected readonly metrics: ServiceMetrics | undefined
  /** The driver's logger. */
  protected readonly log: Logger
  private readonly components: DisseminationServiceComponents
  private readonly options: Required<DisseminationServiceOptions>
  private readonly listeners = new Map<keyof E, Map<Listener<never>, (evt: Event) => void>>()
  private readonly frameHandling: Histogram | undefined
  private readonly peers = new Map<PeerKey, PeerState>()
  private readonly timers = new Set<TimerHandle>()
  private readonly topologyIds: string[] = []
  private readonly dialing = new Set<PeerKey>()
  private redialTimer: ReturnType<typeof setInterval> | undefined
  /** Peers the core disconnected → time their deny ends (insertion order is time order). */
  private readonly denied = new Map<PeerKey, number>()
  /** IP addresses those peers were connected from → when the latest was cut off there, and when its deny ends. */
  private readonly deniedAddresses = new Map<string, { at: number; until: number }>()
  private running = false
  private readonly dropped: DriverStats = {
    framesDropped: 0,
    bytesDropped: 0,
    earlyFramesDropped: 0,
  }

  constructor(
    components: DisseminationServiceComponents,
    options: DisseminationServiceOptions,
    createCore: (env: Env) => C,
  ) {
    if (options.protocols.length === 0) throw new InvalidParametersError('no protocol ids given')
    if (!(options.maxFrameBytes > 0)) throw new InvalidParametersError('maxFrameBytes must be > 0')
    super()
    this.components = components
    this.options = withDefaults(
      {
        maxQueuedBytesPerPeer: 16 * 1024 * 1024,
        maxInboundStreams: 2,
        maxOutboundStreams: 2,
        keepConnected: [],
        redialIntervalMs: 1000,
        ...options,
      },
      options,
    )
    this.log = components.logger.forComponent(`consensus-multicast:${options.name}`)
    const env: Env = {
      self: components.peerId.toString(),
      now: () => Date.now(),
      send: (peer, frame) => this.send(peer, frame),
      setTimer: (ms, fn) => this.setTimer(ms, fn),
      random: () => Math.random(),
      logger: components.logger,
      disconnect: (peer, opts) => this.disconnect(peer, opts),
    }
    this.core = createCore(env)
    this[Symbol.toStringTag] = options.tag
    this[serviceCapabilities] = [options.tag, DISSEMINATION_CAPABILITY]
    this.core.forwardEvents(this.dispatch)
    if (components.metrics !== undefined) {
      this.metrics = new ServiceMetrics(components.metrics, this.core.strategy)
      this.frameHandling = registerCoreMetrics(
        this.metrics,
        () => this.core.stats(),
        () => this.driverStats(),
        () => this.getPeers().length,
      )
    }
  }

  /** @inheritdoc */
  get strategy(): StrategyName {
    return this.core.strategy
  }

  /** Registers the protocol handlers and topologies, then starts the core. */
  async start(): Promise<void> {
    if (this.running) return
    this.running = true
    const { registrar } = this.components
    for (const protocol of this.options.protocols) {
      await registrar.handle(protocol, (stream, connection) => this.onInbound(stream, connection), {
        maxInboundStreams: this.options.maxInboundStreams,
        maxOutboundStreams: this.options.maxOutboundStreams,
      })
      this.topologyIds.push(
        await registrar.register(protocol, {
          onConnect: (peerId, connection) => this.onConnect(peerId, connection),
          onDisconnect: (peerId) => this.onDisconnect(peerId.toString()),
        }),
      )
    }
    this.core.start()
    // Peers already connected before start (a service added late) are picked up here.
    for (const connection of this.components.connectionManager.getConnections()) {
      this.onConnect(connection.remotePeer, connection)
    }
    if (this.options.keepConnected.length > 0) {
      this.redial()
      this.redialTimer = setInterval(() => this.redial(), this.options.redialIntervalMs)
    }
  }

  /** Stops the core, closes every stream and unregisters the protocols. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    if (this.redialTimer !== undefined) clearInterval(this.redialTimer)
    this.redialTimer = undefined
    this.core.stop()
    for (const t of this.timers) t.cancel()
    this.timers.clear()
    for (const id of this.topologyIds.splice(0)) this.components.registrar.unregister(id)
    await Promise.all(this.options.protocols.map((p) => this.components.registrar.unhandle(p)))
    const closing: Promise<void>[] = []
    for (const state of this.peers.values()) {
      for (const s of [state.outbound, ...state.inbound]) {
        if (s !== undefined) closing.push(s.close().catch((err) => s.abort(err)))
      }
    }
    this.peers.clear()
    await Promise.all(closing)
  }

  subscribe(topic: Topic): void {
    this.core.subscribe(topic)
  }

  unsubscribe(topic: Topic): void {
    this.core.unsubscribe(topic)
  }

  getTopics(): Topic[] {
    return this.core.getTopics()
  }

  publish(topic: Topic, data: Uint8Array, options?: O): Promise<PublishResult> {
    return this.core.publish(topic, data, options)
  }

  setValidator(topic: Topic, validator: Validator | undefined): void {
    this.core.setValidator(topic, validator)
  }

  /** Adds an event listener (on top of `addEventListener`); returns a function that removes it. */
  on<K extends keyof E>(type: K, listener: Listener<E[K]>): () => void {
    let byListener = this.listeners.get(type)
    if (byListener === undefined) {
      byListener = new Map()
      this.listeners.set(type, byListener)
    }
    if (!byListener.has(listener as Listener<never>)) {
      // Like the core's own listeners, an application's exception is logged, not thrown.
      const handler = (evt: Event) => {
        try {
          listener((evt as CustomEvent<E[K]>).detail)
        } catch (err) {
          this.log.error('listener for %s threw: %e', String(type), err)
        }
      }
      byListener.set(listener as Listener<never>, handler)
      this.addEventListener(type as keyof E & string, handler)
    }
    return () => this.off(type, listener)
  }

  /** Removes a listener added with {@link on}. */
  off<K extends keyof E>(type: K, listener: Listener<E[K]>): void {
    const handler = this.listeners.get(type)?.get(listener as Listener<never>)
    if (handler === undefined) return
    this.listeners.get(type)?.delete(listener as Listener<never>)
    this.removeEventListener(type as keyof E & string, handler)
  }

  stats(): DisseminationStats {
    return this.core.stats()
  }

  /** The driver's own counters: frames dropped below the core. */
  driverStats(): DriverStats {
    return { ...this.dropped }
  }

  /** Peers with an open outbound stream on one of the protocols. */
  getPeers(): PeerKey[] {
    return [...this.peers].filter(([, s]) => s.connected).map(([k]) => k)
  }

  /** Re-dispatches a core event as a `CustomEvent`, unless nobody listens. */
  private readonly dispatch: EventSink<E> = (type, event) => {
    const name = type as keyof E & string
    if (this.listenerCount(name) > 0) this.dispatchEvent(new CustomEvent(name, { detail: event }))
  }

  /** Hands one frame to the core, timing it when metrics are on. */
  private handle(peer: PeerKey, frame: Uint8Array): void {
    if (this.frameHandling === undefined) {
      this.core.receive(peer, frame)
      return
    }
    const start = performance.now()
    this.core.receive(peer, frame)
    this.frameHandling.observe((performance.now() - start) / 1000)
  }

  private state(peer: PeerKey): PeerState {
    let state = this.peers.get(peer)
    if (state === undefined) {
      state = { inbound: new Set(), pending: [], early: [], connected: false }
      this.peers.set(peer, state)
    }
    return state
  }

  /**
   * True while `peer` is refused because the core disconnected it. Plug it into libp2p's
   * connection gater ({@link denyListGater}) to refuse its connections before they upgrade.
   */
  isDenied(peer: PeerKey | PeerId): boolean {
    const key = peer.toString()
    const until = this.denied.get(key)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.denied.delete(key)
    return false
  }

  /**
   * When (`Date.now()` ms) the core last disconnected a peer it still refuses that was
   * connected from IP address `ip`: the gater ({@link denyListGater}) throttles the
   * handshakes of new connections from there at once, rather than after the denied peer's
   * first redial has cost us a handshake.
   */
  disconnectedFrom(ip: string): number | undefined {
    const d = this.deniedAddresses.get(ip)
    if (d === undefined) return undefined
    if (d.until > Date.now()) return d.at
    this.deniedAddresses.delete(ip)
    return undefined
  }

  /** The core's verdict: close every connection to `peer` and refuse it for `denyMs`. */
  private disconnect(peer: PeerKey, { denyMs, reason }: DisconnectOptions): void {
    const at = Date.now()
    const until = at + denyMs
    setNewest(this.denied, peer, until, MAX_DENIED_PEERS)
    this.log('disconnecting %s for %d ms: %s', peer, denyMs, reason)
    for (const c of this.components.connectionManager.getConnections()) {
      if (c.remotePeer.toString() !== peer) continue
      const ip = ipOf(c.remoteAddr.toString())
      // Another peer's longer deny from the same address is kept.
      const longest = Math.max(until, this.deniedAddresses.get(ip)?.until ?? 0)
      setNewest(this.deniedAddresses, ip, { at, until: longest }, MAX_DENIED_PEERS)
      this.refuse(c)
    }
  }

  /** Aborts a connection or stream of a denied or deaf peer (one already closing may throw: ignored). */
  private refuse(target: Connection | Stream): void {
    try {
      target.abort(new Error('peer denied'))
    } catch (err) {
      this.log('aborting a connection or stream: %e', err)
    }
  }

  private onConnect(peerId: PeerId, connection: Connection): void {
    if (!this.running || connection.status !== 'open') return
    const peer = peerId.toString()
    if (this.isDenied(peer)) {
      this.refuse(connection)
      return
    }
    const state = this.state(peer)
    if (state.outbound !== undefined || state.opening !== undefined) return
    state.opening = this.openOutbound(peer, state, connection).finally(() => {
      state.opening = undefined
    })
  }

  private async openOutbound(
    peer: PeerKey,
    state: PeerState,
    connection: Connection,
  ): Promise<void> {
    let stream: Stream
    try {
      stream = await connection.newStream(this.options.protocols)
    } catch (err) {
      this.log('peer %s does not speak %s: %e', peer, this.options.protocols, err)
      // A peer that talks to us but will not hear us never reaches the core: what it sent is
      // not kept, and its own streams are closed (it may open them again, within its budget).
      this.dropped.earlyFramesDropped += state.early.length
      state.early.length = 0
      state.refusedEarly = undefined
      for (const inbound of state.inbound) this.refuse(inbound)
      return
    }
    if (!this.running || this.peers.get(peer) !== state) {
      stream.abort(new Error('service stopped'))
      return
    }
    state.outbound = stream
    stream.addEventListener('close', () => {
      if (state.outbound === stream) {
        state.outbound = undefined
        this.markDisconnected(peer, state)
      }
    })
    state.connected = true
    this.core.peerConnected(peer, {
      protocol: stream.protocol,
      outbound: connection.direction === 'outbound',
      address: connection.remoteAddr.toString(),
    })
    for (const frame of state.pending.splice(0)) this.write(peer, state, frame)
    const refused = state.refusedEarly
    state.refusedEarly = undefined
    if (refused !== undefined) {
      this.core.inspectFramePrefix?.(peer, refused.prefix, refused.frameLength)
      if (this.isDenied(peer)) return
    }
    for (const frame of state.early.splice(0)) {
      // A held frame that got the peer cut off ends the hand-over, as on a live stream.
      if (this.isDenied(peer)) return
      this.handle(peer, frame)
    }
  }

  private onInbound(stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString()
    if (this.isDenied(peer)) {
      this.refuse(connection)
      return
    }
    // Reported before the stream is used: the core budgets how often a peer reopens one.
    this.core.inboundStreamOpened?.(peer)
    if (this.isDenied(peer)) {
      this.refuse(stream)
      return
    }
    const state = this.state(peer)
    state.inbound.add(stream)
    const inspect = this.core.inspectFramePrefix?.bind(this.core)
    const decoder = new LengthPrefixedDecoder(
      this.options.maxFrameBytes,
      inspect &&
        ((prefix, frameLength) => {
          const accepted = inspect(peer, prefix, frameLength)
          if (!accepted && !state.connected) state.refusedEarly = { prefix, frameLength }
          return accepted
        }),
    )
    stream.addEventListener('message', (evt) => {
      // Bytes still arriving from a peer the core has just cut off are not even buffered.
      if (this.isDenied(peer)) {
        this.refuse(stream)
        return
      }
      let frames: Uint8Array[]
      try {
        frames = decoder.push(evt.data)
      } catch (err) {
        // A bad length prefix desynchronises the stream: nothing after it can be trusted. A
        // frame the core refused from its first bytes was counted by the core already.
        this.log.error('closing stream from %s: %e', peer, err)
        if (!(err instanceof FrameRefusedError)) this.core.penalise(peer, 'bad-framing')
        stream.abort(err instanceof Error ? err : new Error(String(err)))
        return
      }
      for (const frame of frames) {
        // A frame that got the peer cut off ends the read: the frames after it go unread.
        if (this.isDenied(peer)) {
          this.refuse(stream)
          return
        }
        this.received(peer, state, frame)
      }
    })
    stream.addEventListener('close', () => {
      state.inbound.delete(stream)
    })
    // The peer talks to us: make sure we can talk back.
    if (state.outbound === undefined) this.onConnect(connection.remotePeer, connection)
  }

  /**
   * Hands a frame to the core, or holds it while our stream to the peer opens: the core
   * only hears from peers it was told of, and a peer's first frame (its subscriptions)
   * usually arrives before that.
   */
  private received(peer: PeerKey, state: PeerState, frame: Uint8Array): void {
    if (state.connected) {
      this.handle(peer, frame)
      return
    }
    if (
      state.early.length >= MAX_EARLY_FRAMES ||
      state.early.reduce((n, f) => n + f.length, frame.length) > this.options.maxQueuedBytesPerPeer
    ) {
      this.dropped.earlyFramesDropped++
      this.log('dropping a frame from %s: too much held while its stream opens', peer)
      return
    }
    state.early.push(frame)
  }

  private onDisconnect(peer: PeerKey): void {
    const state = this.peers.get(peer)
    if (state === undefined) return
    this.peers.delete(peer)
    this.markDisconnected(peer, state)
  }

  private markDisconnected(peer: PeerKey, state: PeerState): void {
    if (!state.connected) return
    state.connected = false
    state.pending.length = 0
    state.early.length = 0
    this.core.peerDisconnected(peer)
    // Another connection to the same peer may still be open: try it.
    if (this.running && this.peers.get(peer) === state) {
      const connection = this.components.connectionManager
        .getConnections()
        .find((c) => c.remotePeer.toString() === peer && c.status === 'open')
      if (connection !== undefined) this.onConnect(connection.remotePeer, connection)
    }
  }

  private send(peer: PeerKey, frame: Uint8Array): void {
    if (!this.running) return
    const state = this.peers.get(peer)
    if (state === undefined) {
      this.drop(frame)
      return
    }
    if (state.outbound === undefined) {
      // Frames sent while the stream opens are kept, within the same byte bound.
      const queued = state.pending.reduce((n, f) => n + f.length, 0)
      if (queued + frame.length > this.options.maxQueuedBytesPerPeer) this.drop(frame)
      else state.pending.push(frame)
      return
    }
    this.write(peer, state, frame)
  }

  private write(peer: PeerKey, state: PeerState, frame: Uint8Array): void {
    const stream = state.outbound
    if (stream === undefined || stream.writeStatus !== 'writable') {
      this.drop(frame)
      return
    }
    if (stream.writeBufferLength + frame.length > this.options.maxQueuedBytesPerPeer) {
      this.log('outbound buffer to %s full, dropping a frame of %d bytes', peer, frame.length)
      this.drop(frame)
      return
    }
    stream.send(encodeLengthPrefixed(frame))
  }

  private drop(frame: Uint8Array): void {
    this.dropped.framesDropped++
    this.dropped.bytesDropped += frame.length
  }

  /** Dials every `keepConnected` peer that has no open connection. */
  private redial(): void {
    const { connectionManager } = this.components
    for (const addr of this.options.keepConnected) {
      const key = addr.getComponents().findLast((c) => c.name === 'p2p')?.value
      if (key === undefined || key === this.components.peerId.toString() || this.dialing.has(key)) {
        continue
      }
      const open = connectionManager
        .getConnections()
        .some((c) => c.remotePeer.toString() === key && c.status === 'open')
      if (open) continue
      this.dialing.add(key)
      connectionManager
        .openConnection(addr)
        .catch((err) => this.log('cannot reach %s yet: %e', key, err))
        .finally(() => this.dialing.delete(key))
    }
  }

  private setTimer(ms: number, fn: () => void): TimerHandle {
    const t = nodeTimer(ms, () => {
      this.timers.delete(t)
      if (this.running) fn()
    })
    this.timers.add(t)
    return {
      cancel: () => {
        t.cancel()
        this.timers.delete(t)
      },
    }
  }
}
