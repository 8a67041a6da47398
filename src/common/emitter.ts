import type { Logger } from '@libp2p/interface'
import { logger } from '@libp2p/logger'

/** A listener for events of type `T`. */
export type Listener<T> = (event: T) => void

/** Receives every event an {@link Emitter} emits, whatever its type. */
export type EventSink<Events extends object> = <K extends keyof Events>(
  type: K,
  event: Events[K],
) => void

/**
 * A minimal typed event emitter. Listener exceptions are logged and swallowed, so an
 * application bug cannot break a protocol core in the middle of handling a frame.
 */
export class Emitter<Events extends object> {
  /** Listeners by event type; made on first use (most simulated nodes have none). */
  private listeners: Map<keyof Events, Set<Listener<never>>> | undefined
  private readonly log: Logger
  private sink: EventSink<Events> | undefined

  /** `log` receives listener exceptions (default: `consensus-multicast:emitter`). */
  constructor(log: Logger = logger('consensus-multicast:emitter')) {
    this.log = log
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    this.listeners ??= new Map()
    let set = this.listeners.get(type)
    if (set === undefined) {
      set = new Set()
      this.listeners.set(type, set)
    }
    set.add(listener as Listener<never>)
    return () => this.off(type, listener)
  }

  /** Removes a listener. */
  off<K extends keyof Events>(type: K, listener: Listener<Events[K]>): void {
    this.listeners?.get(type)?.delete(listener as Listener<never>)
  }

  /** Hands every event to `sink` as well, after the listeners (one sink; a new one replaces it). */
  forwardTo(sink: EventSink<Events>): void {
    this.sink = sink
  }

  /** Calls every listener of `type` with `event`, then the sink. */
  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const set = this.listeners?.get(type)
    if (set !== undefined) {
      for (const listener of set) {
        try {
          ;(listener as Listener<Events[K]>)(event)
        } catch (err) {
          this.log.error('listener for %s threw: %e', String(type), err)
        }
      }
    }
    if (this.sink === undefined) return
    try {
      this.sink(type, event)
    } catch (err) {
      this.log.error('event sink for %s threw: %e', String(type), err)
    }
  }
}
