import { FloodCore, type FloodOptions } from '../flood/flood-core.ts'
import {
  DisseminationService,
  type DisseminationServiceComponents,
} from './dissemination-service.ts'

/** Protocol id of the flooding strategy. */
export const FLOOD_PROTOCOL = '/consensus-multicast/flood/1.0.0'

/** The flooding strategy as a libp2p service. */
export type FloodService = DisseminationService<FloodCore>

/**
 * Flooding as a libp2p 3 service: `createLibp2p({ services: { dissemination: flood() } })`.
 * The baseline strategy: every node relays each new message to all its peers.
 */
export function flood(
  options: FloodOptions = {},
): (components: DisseminationServiceComponents) => FloodService {
  return (components) =>
    new DisseminationService(
      components,
      {
        protocols: [FLOOD_PROTOCOL],
        name: 'flood',
        tag: '@consensus-multicast/flood',
        // A frame is the payload plus a small header (class, id, topic).
        maxFrameBytes: (options.maxMessageBytes ?? 1 << 20) + 1024,
      },
      (env) => new FloodCore(env, options),
    )
}
