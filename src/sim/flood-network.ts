import type { MessageId } from '../common/message-id.ts'
import { FloodCore } from '../flood/flood-core.ts'
import { DeliveryTracker } from './metrics.ts'
import { type NetworkOptions, Simulation } from './network.ts'

/** A started simulation in which every node floods `topic`, with its delivery tracker. */
export interface FloodNetwork {
  /** The simulation. */
  sim: Simulation<FloodCore>
  /** Deliveries and duplicates of what {@link FloodNetwork.publish} sent. */
  tracker: DeliveryTracker<FloodCore>
  /**
   * Publishes `data` from `origin` now and tracks it, expected at `recipients` (default:
   * every node). Returns the message id.
   */
  publish(origin: number, data: Uint8Array, recipients?: Iterable<number>): MessageId
}

/**
 * The flooding baseline on a network: what the closed-form tests, the fault tests and the
 * scale benchmark run. The simulation is started; run it with `sim.run()`.
 */
export function floodNetwork(options: NetworkOptions, topic = 'flood'): FloodNetwork {
  const sim = new Simulation(options, (env) => {
    const core = new FloodCore(env)
    core.subscribe(topic)
    return core
  })
  const tracker = new DeliveryTracker(sim)
  sim.start()
  const everyone = () => Array.from({ length: sim.size }, (_, i) => i)
  return {
    sim,
    tracker,
    publish(origin, data, recipients = everyone()) {
      const r = sim.core(origin).publishNow(topic, data, 'consensus')
      tracker.published(r.id, origin, sim.now(), recipients)
      return r.id
    },
  }
}
