import { logger } from '@libp2p/logger'

const log = logger('consensus-multicast:emitter')

/** A listener for events of type `T`. */
export type Listener<T> = (event: T) => void

/**
 * A minimal typed event emitter. Listener exceptions are logged and swallowed, so an
 * application bug cannot break a protocol core in the middle of handling a frame.
 */
export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>()

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
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
    this.listeners.get(type)?.delete(listener as Listener<never>)
  }

  /** True when at least one listener is registered for `type`. */
  has<K extends keyof Events>(type: K): boolean {
    return (this.listeners.get(type)?.size ?? 0) > 0
  }

  /** Calls every listener of `type` with `event`. */
  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const set = this.listeners.get(type)
    if (set === undefined) return
    for (const listener of set) {
      try {
        ;(listener as Listener<Events[K]>)(event)
      } catch (err) {
        log.error('listener for %s threw: %e', String(type), err)
      }
    }
  }
}
