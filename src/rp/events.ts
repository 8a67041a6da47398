import type { Topic } from '../common/artifact.ts'
import type { DisseminationEvents, PublishOptions } from '../common/dissemination.ts'
import type { MessageId } from '../common/message-id.ts'

/** More than half of the registered members (plus the surplus asked for) hold a message. */
export interface QuorumEvent {
  /** The message. */
  id: MessageId
  /** Its topic. */
  topic: Topic
  /** Members known to hold it when the quorum was reached. */
  count: number
  /** Members registered for the topic on the backbone at that time. */
  members: number
}

/**
 * A member's multicast receiver gave up on messages of its RP's LAN channel (after its
 * NACKs, on GONE, or past its window): the member asks its RP for them over the session.
 */
export interface MulticastLostEvent {
  /** The topic. */
  topic: Topic
  /** First and last sequence numbers on the RP's channel. */
  first: number
  last: number
  /**
   * `timeout` (NACKs unanswered), `gone` (left the RP's repair buffer, or the key changed),
   * `window`, `rejected` (what came under that number failed the publisher checks).
   */
  reason: 'timeout' | 'gone' | 'window' | 'rejected'
}

/** Events of the RP strategy: the common ones, `quorum` for messages published here, multicast losses. */
export interface RpEvents extends DisseminationEvents {
  /** A message this node published reached its delivery quorum. */
  quorum: QuorumEvent
  /** (member) Messages of the RP's LAN multicast were given up and are fetched by unicast. */
  'multicast-lost': MulticastLostEvent
}

/** Options of an RP-strategy publish. */
export interface RpPublishOptions extends PublishOptions {
  /**
   * Ask for a `quorum` event once more than half of the registered members (plus
   * `surplus`) hold the message. Members then acknowledge deliveries, which costs one small
   * frame per member. Default: the node's `quorum` option (false unless set).
   */
  quorum?: boolean
  /** Members wanted beyond the majority (default 0). */
  surplus?: number
}

/** Members needed for a quorum among `members` registered: a majority plus `surplus`. */
export function quorumThreshold(members: number, surplus: number): number {
  return Math.min(members, Math.floor(members / 2) + 1 + surplus)
}
