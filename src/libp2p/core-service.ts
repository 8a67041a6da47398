import type {
  ComponentLogger,
  Connection,
  Logger,
  PeerId,
  Startable,
  Stream,
} from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { PeerKey, Topic } from '../core/artifact.ts'
import type {
  Dissemination,
  DisseminationEvents,
  PublishOptions,
  PublishResult,
  StrategyName,
} from '../core/dissemination.ts'
import type { Listener } from '../core/emitter.ts'
import type { Env, ProtocolCore, TimerHandle } from '../core/env.ts'
import { InvalidParametersError } from '../core/errors.ts'
import { encodeLengthPrefixed, LengthPrefixedDecoder } from '../core/length-prefixed.ts'
import { withDefaults } from '../core/options.ts'
import type { DisseminationStats } from '../core/stats.ts'
import { nodeTimer } from '../core/system-clock.ts'
import type { Validator } from '../core/validation.ts'

/** The libp2p components a {@link CoreService} needs (libp2p passes them to service factories). */
export interface CoreServiceComponents {
  /** This node's peer id. */
  peerId: PeerId
  /** Protocol handlers and topologies. */
  registrar: Registrar
  /** Open connections. */
  connectionManager: ConnectionManager
  /** Loggers. */
  logger: ComponentLogger
}

/** How a {@link CoreService} maps a core onto libp2p streams. */
export interface CoreServiceOptions {
  /** Protocol ids, most preferred first (e.g. `/meshsub/1.2.0`, `/meshsub/1.1.0`). */
  protocols: string[]
  /** Name for logs (`consensus-multicast:<name>`). */
  name: string
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

/** A protocol core that can be hosted by {@link CoreService}. */
export type HostedCore<
  E extends DisseminationEvents = DisseminationEvents,
  O extends PublishOptions = PublishOptions,
> = ProtocolCore & Dissemination<E, O>

interface PeerState {
  outbound?: Stream
  opening?: Promise<void>
  inbound: Set<Stream>
  pending: Uint8Array[]
  /** Frames the peer sent before the core was told of it (our stream to it was opening). */
  early: Uint8Array[]
  connected: boolean
}

/**
 * Frames held per peer while our stream to it opens: its hello and a few more (and no more
 * bytes than `maxQueuedBytesPerPeer`). A peer that sends more in that time loses the rest,
 * counted in `earlyFramesDropped`.
 */
export const MAX_EARLY_FRAMES = 64

/**
 * The one libp2p driver: hosts a sans-IO core as a libp2p 3 service. Each side writes on
 * its own outbound stream and reads length-prefixed frames from the peer's, as gossipsub
 * does. It holds no protocol logic: frames go to `core.receive`, `Env.send` goes to streams.
 */
export class CoreService<
  C extends HostedCore<E, O>,
  E extends DisseminationEvents = DisseminationEvents,
  O extends PublishOptions = PublishOptions,
> implements Startable, Dissemination<E, O>
{
  /** The hosted core (for strategy-specific calls). */
  readonly core: C
  private readonly components: CoreServiceComponents
  private readonly options: Required<CoreServiceOptions>
  private readonly log: Logger
  private readonly peers = new Map<PeerKey, PeerState>()
  private readonly timers = new Set<TimerHandle>()
  private readonly topologyIds: string[] = []
  private readonly dialing = new Set<PeerKey>()
  private redialTimer: ReturnType<typeof setInterval> | undefined
  private running = false
  /** Frames dropped because a peer's outbound buffer was full or its stream failed. */
  droppedFrames = 0
  /** Received frames dropped because a peer sent over {@link MAX_EARLY_FRAMES} before its stream opened. */
  earlyFramesDropped = 0

  constructor(
    components: CoreServiceComponents,
    options: CoreServiceOptions,
    createCore: (env: Env) => C,
  ) {
    if (options.protocols.length === 0) throw new InvalidParametersError('no protocol ids given')
    if (!(options.maxFrameBytes > 0)) throw new InvalidParametersError('maxFrameBytes must be > 0')
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
    }
    this.core = createCore(env)
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

  on<K extends keyof E>(type: K, listener: Listener<E[K]>): () => void {
    return this.core.on(type, listener)
  }

  off<K extends keyof E>(type: K, listener: Listener<E[K]>): void {
    this.core.off(type, listener)
  }

  stats(): DisseminationStats {
    return this.core.stats()
  }

  /** Peers with an open outbound stream on one of the protocols. */
  getPeers(): PeerKey[] {
    return [...this.peers].filter(([, s]) => s.connected).map(([k]) => k)
  }

  private state(peer: PeerKey): PeerState {
    let state = this.peers.get(peer)
    if (state === undefined) {
      state = { inbound: new Set(), pending: [], early: [], connected: false }
      this.peers.set(peer, state)
    }
    return state
  }

  private onConnect(peerId: PeerId, connection: Connection): void {
    if (!this.running || connection.status !== 'open') return
    const peer = peerId.toString()
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
    for (const frame of state.early.splice(0)) this.core.receive(peer, frame)
  }

  private onInbound(stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString()
    const state = this.state(peer)
    state.inbound.add(stream)
    const decoder = new LengthPrefixedDecoder(this.options.maxFrameBytes)
    stream.addEventListener('message', (evt) => {
      let frames: Uint8Array[]
      try {
        frames = decoder.push(evt.data)
      } catch (err) {
        // A bad length prefix desynchronises the stream: nothing after it can be trusted.
        this.log.error('closing stream from %s: %e', peer, err)
        this.core.penalise(peer, 'bad-framing')
        stream.abort(err instanceof Error ? err : new Error(String(err)))
        return
      }
      for (const frame of frames) this.received(peer, state, frame)
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
      this.core.receive(peer, frame)
      return
    }
    if (
      state.early.length >= MAX_EARLY_FRAMES ||
      state.early.reduce((n, f) => n + f.length, frame.length) > this.options.maxQueuedBytesPerPeer
    ) {
      this.earlyFramesDropped++
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
      this.droppedFrames++
      return
    }
    if (state.outbound === undefined) {
      // Frames sent while the stream opens are kept, within the same byte bound.
      const queued = state.pending.reduce((n, f) => n + f.length, 0)
      if (queued + frame.length > this.options.maxQueuedBytesPerPeer) this.droppedFrames++
      else state.pending.push(frame)
      return
    }
    this.write(peer, state, frame)
  }

  private write(peer: PeerKey, state: PeerState, frame: Uint8Array): void {
    const stream = state.outbound
    if (stream === undefined || stream.writeStatus !== 'writable') {
      this.droppedFrames++
      return
    }
    if (stream.writeBufferLength + frame.length > this.options.maxQueuedBytesPerPeer) {
      this.log('outbound buffer to %s full, dropping a frame of %d bytes', peer, frame.length)
      this.droppedFrames++
      return
    }
    stream.send(encodeLengthPrefixed(frame))
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
