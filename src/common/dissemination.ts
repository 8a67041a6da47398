import type { Artifact, ArtifactClass, PeerKey, Topic } from './artifact.ts'
import type { Listener } from './emitter.ts'
import type { MessageId } from './message-id.ts'
import type { DisseminationStats } from './stats.ts'
import type { Validator } from './validation.ts'

/** The strategies behind {@link Dissemination}. */
export type StrategyName = 'flood' | 'gossip' | 'rp' | 'broker'

/** Options of `publish`. */
export interface PublishOptions {
  /** The artifact class; defaults to the topic's class, or `consensus`. */
  class?: ArtifactClass
}

/** What `publish` reports. */
export interface PublishResult {
  /** The id of the published message. */
  id: MessageId
  /** How many peers the first copy was sent to. */
  recipients: number
}

/** A copy of an artifact that the node had already seen. */
export interface DuplicateEvent {
  /** The message id. */
  id: MessageId
  /** The topic. */
  topic: Topic
  /** The artifact class. */
  class: ArtifactClass
  /** The peer the copy came from. */
  from: PeerKey
  /** Local time of arrival, in milliseconds. */
  receivedAt: number
}

/** Input from a peer that was refused (malformed, oversized, invalid, flooding). */
export interface RejectedEvent {
  /** The offending peer. */
  from: PeerKey
  /** Why, as a short stable reason string (also the key in `stats().invalid`). */
  reason: string
  /** The topic, when known. */
  topic?: Topic
}

/** Events every strategy emits. */
export interface DisseminationEvents {
  /**
   * A new artifact from another node was delivered to the application (after validation).
   * A node's own publishes are not emitted: the publisher already holds them.
   */
  artifact: Artifact
  /** A copy of an already delivered artifact arrived. */
  duplicate: DuplicateEvent
  /** Input from a peer was refused and counted against it. */
  rejected: RejectedEvent
}

/**
 * The one API consensus engines use. Every strategy (flooding, gossip, replication
 * points, broker) implements it; a strategy may add events and publish options of its own.
 */
export interface Dissemination<
  Events extends DisseminationEvents = DisseminationEvents,
  Options extends PublishOptions = PublishOptions,
> {
  /** Which strategy this is. */
  readonly strategy: StrategyName
  /** Starts receiving (and, for forwarding strategies, relaying) artifacts of `topic`. */
  subscribe(topic: Topic): void
  /** Stops receiving `topic`. */
  unsubscribe(topic: Topic): void
  /** The topics this node is subscribed to. */
  getTopics(): Topic[]
  /** Publishes `data` on `topic`. Rejects with a typed error (too large, no peers, ...). */
  publish(topic: Topic, data: Uint8Array, options?: Options): Promise<PublishResult>
  /** Sets (or, with `undefined`, removes) the validator of a topic. */
  setValidator(topic: Topic, validator: Validator | undefined): void
  /** Adds an event listener; returns a function that removes it. */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void
  /** Removes an event listener. */
  off<K extends keyof Events>(type: K, listener: Listener<Events[K]>): void
  /** A snapshot of the node's counters. */
  stats(): DisseminationStats
}
