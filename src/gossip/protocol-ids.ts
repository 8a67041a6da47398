/** meshsub 1.3: 1.2 plus the Extensions control message (each peer says what it speaks). */
export const MESHSUB_1_3 = '/meshsub/1.3.0'
/** meshsub 1.2: 1.1 plus IDONTWANT. */
export const MESHSUB_1_2 = '/meshsub/1.2.0'
/** meshsub 1.1: peer scoring, PRUNE backoff and peer exchange. */
export const MESHSUB_1_1 = '/meshsub/1.1.0'
/** meshsub 1.0: the original gossipsub. */
export const MESHSUB_1_0 = '/meshsub/1.0.0'

/** The protocol ids the gossip service offers, most preferred first. */
export const GOSSIP_PROTOCOLS: readonly string[] = [
  MESHSUB_1_3,
  MESHSUB_1_2,
  MESHSUB_1_1,
  MESHSUB_1_0,
]

/**
 * True when a peer that negotiated `protocol` understands IDONTWANT. An unknown protocol
 * (the simulator, where every node runs this router) counts as 1.3.
 */
export function supportsIDontWant(protocol: string | undefined): boolean {
  return protocol === undefined || protocol === MESHSUB_1_3 || protocol === MESHSUB_1_2
}

/**
 * True when a peer that negotiated `protocol` may be sent the Extensions control message
 * (meshsub 1.3). An unknown protocol (the simulator) counts as 1.3.
 */
export function supportsExtensions(protocol: string | undefined): boolean {
  return protocol === undefined || protocol === MESHSUB_1_3
}
