import type { Logger } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import type { PeerKey, Topic } from './artifact.ts'
import type { DisseminationEvents, RejectedEvent } from './dissemination.ts'
import { Emitter, type EventSink, type Listener } from './emitter.ts'
import type { Env, TimerHandle } from './env.ts'
import { type DisseminationStats, StatsRecorder } from './stats.ts'
import type { Validator } from './validation.ts'

/**
 * What every protocol core shares: its environment, events, counters, validators, the
 * penalty path for bad input, and timers that die with the core. Strategies extend it and
 * add their protocol.
 */
export abstract class CoreBase<E extends { rejected: RejectedEvent } = DisseminationEvents> {
  /** The core's only way to the outside world. */
  protected readonly env: Env
  /** The core's logger: the node's (through {@link Env.logger}) under the libp2p driver. */
  protected readonly log: Logger
  /** Typed events for the application. */
  protected readonly events: Emitter<E>
  /** The counters behind `stats()`. */
  protected readonly recorder = new StatsRecorder()
  /** Per-topic validators. */
  protected readonly validators = new Map<Topic, Validator>()
  /** True between `start()` and `stop()`: repeating timers re-arm only while it holds. */
  protected running = false
  /** Pending timers of {@link later}; made on first use (the gossip router keeps its own). */
  private timers: Set<TimerHandle> | undefined

  /** `component` names the core in logs (e.g. `consensus-multicast:gossip`). */
  constructor(env: Env, component: string) {
    this.env = env
    this.log = (env.logger ?? defaultLogger()).forComponent(component)
    this.events = new Emitter<E>(this.log)
  }

  /** Sets (or, with `undefined`, removes) the validator of a topic. */
  setValidator(topic: Topic, validator: Validator | undefined): void {
    if (validator === undefined) this.validators.delete(topic)
    else this.validators.set(topic, validator)
  }

  /** Adds an event listener; returns a function that removes it. */
  on<K extends keyof E>(type: K, listener: Listener<E[K]>): () => void {
    return this.events.on(type, listener)
  }

  /** Removes an event listener. */
  off<K extends keyof E>(type: K, listener: Listener<E[K]>): void {
    this.events.off(type, listener)
  }

  /** Hands every event to `sink` too, after the listeners: how a driver re-dispatches them. */
  forwardEvents(sink: EventSink<E>): void {
    this.events.forwardTo(sink)
  }

  /** A snapshot of the core's counters. */
  stats(): DisseminationStats {
    return this.recorder.snapshot()
  }

  /** Counts misbehaviour the driver saw below the core (e.g. bad framing). */
  penalise(peer: PeerKey, reason: string): void {
    this.reject(peer, reason)
  }

  /** Counts refused input against `peer` and tells the application. */
  protected reject(peer: PeerKey, reason: string, topic?: Topic): void {
    this.recorder.penalise(peer, reason)
    this.events.emit('rejected', { from: peer, reason, topic } as E['rejected'])
  }

  /** Calls `fn` once after `ms`, unless the core stops (or the returned handle cancels) first. */
  protected later(ms: number, fn: () => void): TimerHandle {
    this.timers ??= new Set()
    const timers = this.timers
    const t = this.env.setTimer(ms, () => {
      timers.delete(t)
      fn()
    })
    timers.add(t)
    return {
      cancel: () => {
        timers.delete(t)
        t.cancel()
      },
    }
  }

  /** Calls `fn` every `ms` (the first time after `firstMs`) while the core runs. */
  protected every(ms: number, fn: () => void, firstMs = ms): void {
    this.later(firstMs, () => {
      fn()
      if (this.running) this.every(ms, fn)
    })
  }

  /** Cancels every pending timer (on stop). */
  protected cancelTimers(): void {
    for (const t of this.timers ?? []) t.cancel()
    this.timers?.clear()
  }
}
