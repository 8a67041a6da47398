import type { ArtifactClass, PeerKey, Topic } from '../common/artifact.ts'
import type { MessageId } from '../common/message-id.ts'

/** A consensus message an RP keeps so it can repair peers that missed it. */
export interface HeldMessage {
  /** Message id. */
  readonly id: MessageId
  /** Its key (hex of the id). */
  readonly key: string
  /** Topic. */
  readonly topic: Topic
  /** Class (only consensus messages are held for repair). */
  readonly class: ArtifactClass
  /** Payload. */
  readonly data: Uint8Array
  /** The RP the publisher was registered with. */
  readonly originRp: PeerKey
  /** The member (or RP) that published it. */
  readonly publisher: PeerKey
  /** The publisher's signature (empty without signatures). */
  readonly signature: Uint8Array
  /** The publisher asked for a quorum report. */
  readonly quorum: boolean
  /** Members wanted beyond the majority. */
  readonly surplus: number
  /** When this RP got it. */
  readonly at: number
  /**
   * RPs known to hold it: those it came from or was sent to, and those offered it in a
   * digest. Repair offers a message only to RPs outside this set.
   */
  readonly exchanged: Set<PeerKey>
}

/**
 * The repair side of the backbone: a bounded, time-windowed store of recent consensus
 * messages, and the digest bookkeeping that lets two RPs find what one of them missed.
 *
 * In steady state every message is exchanged along each tree edge when forwarded, so the
 * digests are empty and cost nothing. When the tree changes (an RP failed, a link broke), a
 * new tree neighbour has exchanged nothing with us, so it is offered every message of the
 * window; it answers with a NACK of the ids it lacks, and gets them again. The same digest,
 * filtered by topic, lets a member that failed over to this RP fetch what it missed.
 */
export class RepairBuffer {
  private readonly held = new Map<string, HeldMessage>()
  private readonly capacity: number
  private readonly windowMs: number

  constructor(capacity: number, windowMs: number) {
    this.capacity = capacity
    this.windowMs = windowMs
  }

  /** Messages held. */
  get size(): number {
    return this.held.size
  }

  /** Holds `msg`, evicting the oldest beyond the capacity or the window. */
  add(msg: HeldMessage, now: number): void {
    this.prune(now)
    if (this.held.size >= this.capacity) {
      const oldest = this.held.keys().next()
      if (!oldest.done) this.held.delete(oldest.value)
    }
    this.held.set(msg.key, msg)
  }

  /** The held message with `key`. */
  get(key: string): HeldMessage | undefined {
    return this.held.get(key)
  }

  /** Records that `peer` holds the message `key`. */
  exchanged(key: string, peer: PeerKey): void {
    this.held.get(key)?.exchanged.add(peer)
  }

  /**
   * Forgets what was exchanged with `peer` (its connection broke: frames in flight may be
   * lost), so the next digest to it offers everything again.
   */
  forgetPeer(peer: PeerKey): void {
    for (const m of this.held.values()) m.exchanged.delete(peer)
  }

  /**
   * Ids to offer `peer` in a digest: held messages it is not known to hold, at most
   * `max` of them. They are marked as exchanged: `peer` either has them or will NACK them.
   */
  digestFor(peer: PeerKey, now: number, max: number): MessageId[] {
    this.prune(now)
    const ids: MessageId[] = []
    for (const m of this.held.values()) {
      if (ids.length >= max) break
      if (m.exchanged.has(peer)) continue
      m.exchanged.add(peer)
      ids.push(m.id)
    }
    return ids
  }

  /** Ids of held messages on any of `topics` that arrived at `since` or later, newest last, at most `max`. */
  idsForTopics(topics: ReadonlySet<Topic>, since: number, now: number, max: number): MessageId[] {
    this.prune(now)
    const ids: MessageId[] = []
    for (const m of this.held.values()) if (m.at >= since && topics.has(m.topic)) ids.push(m.id)
    return ids.slice(-max)
  }

  private prune(now: number): void {
    for (const [key, m] of this.held) {
      if (now - m.at <= this.windowMs) break
      this.held.delete(key)
    }
  }
}
