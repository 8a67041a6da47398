import type { MessageId } from './message-id.ts'

/** A topic name: the unit of subscription. */
export type Topic = string

/** Identifies a peer to a protocol core (a libp2p peer id string, or a simulator node name). */
export type PeerKey = string

/**
 * How an artifact is disseminated:
 * - `consensus`: must reach every subscriber; forwarded and repaired.
 * - `ingress`: best effort; the origin sends it to its peers, receivers deliver it without
 *   forwarding (seed 001: re-broadcasting ingress makes traffic grow as N²).
 */
export type ArtifactClass = 'consensus' | 'ingress'

/** The artifact classes, in a fixed order. */
export const ARTIFACT_CLASSES: readonly ArtifactClass[] = ['consensus', 'ingress']

/** Returns true when `value` names an artifact class. */
export function isArtifactClass(value: unknown): value is ArtifactClass {
  return value === 'consensus' || value === 'ingress'
}

/** A message delivered to the application. */
export interface Artifact {
  /** The message id (content-derived or origin-assigned, depending on the strategy). */
  readonly id: MessageId
  /** The topic it was published on. */
  readonly topic: Topic
  /** The payload. */
  readonly data: Uint8Array
  /** Its class. */
  readonly class: ArtifactClass
  /** The peer it was received from, when the strategy knows one. */
  readonly from?: PeerKey
  /** The origin that published it, when the strategy knows it. */
  readonly origin?: PeerKey
  /** Local time (milliseconds, from the environment's clock) when it was delivered. */
  readonly receivedAt: number
}
