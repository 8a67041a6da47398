import type { ComponentLogger } from '@libp2p/interface'
import type { PeerKey } from './artifact.ts'

/** A scheduled callback that can be cancelled. */
export interface TimerHandle {
  /** Cancels the timer; a no-op once it has fired. */
  cancel(): void
}

/**
 * Everything a sans-IO protocol core may do to the outside world. A core never opens a
 * socket, reads the clock or sets a timer itself: the simulator and the libp2p driver each
 * provide an `Env`, so one core runs unchanged under both.
 */
export interface Env {
  /** This node's own key. */
  readonly self: PeerKey
  /** Current time in milliseconds (virtual in the simulator, wall-clock on a real network). */
  now(): number
  /**
   * Sends one frame to a connected peer. Delivery is best effort and in order per peer;
   * sending to a peer that is not connected is silently dropped by the driver and the core
   * learns of it through {@link ProtocolCore.peerDisconnected}.
   */
  send(peer: PeerKey, frame: Uint8Array): void
  /** Calls `fn` once after `delayMs` milliseconds. */
  setTimer(delayMs: number, fn: () => void): TimerHandle
  /** A uniformly distributed number in [0, 1): seeded in the simulator. */
  random(): number
  /**
   * Where the core logs: the node's logger under the libp2p driver (`components.logger`),
   * `@libp2p/logger` in the simulator. Absent, cores log through `@libp2p/logger`.
   */
  readonly logger?: ComponentLogger
  /**
   * Closes every connection to `peer` and refuses it (new connections and streams) for
   * `denyMs`; the core then learns of it through {@link ProtocolCore.peerDisconnected}.
   * Optional: a driver without it leaves the connection up, and the core ignores the peer.
   */
  disconnect?(peer: PeerKey, options: DisconnectOptions): void
}

/** Why and for how long a core asks its driver to drop a peer. */
export interface DisconnectOptions {
  /** How long to refuse the peer, in milliseconds. */
  denyMs: number
  /** Why, for logs. */
  reason: string
}

/** What a driver knows about a newly connected peer. */
export interface PeerInfo {
  /** The protocol id negotiated on the connection (e.g. `/meshsub/1.2.0`). */
  protocol?: string
  /** True when this node dialled the peer. */
  outbound?: boolean
  /** The peer's network address, as text (for IP-colocation scoring). */
  address?: string
}

/**
 * The driver-facing side of a protocol core. Drivers (the simulator, the libp2p services)
 * call these as things happen; the core answers through its {@link Env}.
 */
export interface ProtocolCore {
  /** Starts timers (heartbeats). Called once, before any other call. */
  start(): void
  /** Cancels every timer and drops per-peer state. */
  stop(): void
  /** A peer that speaks this protocol is connected. */
  peerConnected(peer: PeerKey, info?: PeerInfo): void
  /** A peer is gone. */
  peerDisconnected(peer: PeerKey): void
  /** One frame arrived from `peer`. Malformed frames are counted against the peer, never thrown. */
  receive(peer: PeerKey, frame: Uint8Array): void
  /** The driver caught `peer` misbehaving below the core (e.g. bad framing): count it. */
  penalise(peer: PeerKey, reason: string): void
  /** The peer opened an inbound stream of this protocol (optional: lets a core budget reopens). */
  inboundStreamOpened?(peer: PeerKey): void
}
