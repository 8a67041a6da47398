import type { PeerKey, Topic } from '../common/artifact.ts'
import { LimitExceededError } from '../common/errors.ts'

const EMPTY: ReadonlySet<PeerKey> = new Set()

/** One registered member as an RP sees it. */
export interface MemberRecord {
  /** Topics it joined. */
  readonly topics: Set<Topic>
  /** Lease length it asked for, in ms. */
  leaseMs: number
  /** When it was last heard from. */
  lastHeard: number
  /** Consensus deliveries sent to it since it registered (it checks them for losses). */
  sent: number
}

/**
 * An RP's table of registered members and per-topic member counts (IGMP's group
 * membership): members join and leave topics, refresh their lease by any frame, and expire
 * when silent past the lease. Bounded in members and topics per member.
 */
export class Membership {
  private readonly members = new Map<PeerKey, MemberRecord>()
  private readonly byTopic = new Map<Topic, Set<PeerKey>>()
  private readonly maxMembers: number
  private readonly maxTopicsPerMember: number

  constructor(maxMembers: number, maxTopicsPerMember: number) {
    this.maxMembers = maxMembers
    this.maxTopicsPerMember = maxTopicsPerMember
  }

  /** Number of registered members. */
  get size(): number {
    return this.members.size
  }

  /** The record of `member`, if registered. */
  get(member: PeerKey): MemberRecord | undefined {
    return this.members.get(member)
  }

  /**
   * Registers `member` (if new) and joins `topics`. Returns true when the per-topic counts
   * changed. Throws {@link LimitExceededError} past the member or topic caps.
   */
  register(member: PeerKey, topics: readonly Topic[], leaseMs: number, now: number): boolean {
    let rec = this.members.get(member)
    if (rec === undefined) {
      if (this.members.size >= this.maxMembers) {
        throw new LimitExceededError(`more than ${this.maxMembers} members`)
      }
      rec = { topics: new Set(), leaseMs, lastHeard: now, sent: 0 }
      this.members.set(member, rec)
    }
    rec.leaseMs = leaseMs
    rec.lastHeard = now
    let changed = false
    for (const t of topics) {
      if (rec.topics.has(t)) continue
      if (rec.topics.size >= this.maxTopicsPerMember) {
        throw new LimitExceededError(`more than ${this.maxTopicsPerMember} topics per member`)
      }
      rec.topics.add(t)
      const set = this.byTopic.get(t)
      if (set === undefined) this.byTopic.set(t, new Set([member]))
      else set.add(member)
      changed = true
    }
    return changed
  }

  /** Refreshes `member`'s lease; false when it is not registered. */
  touch(member: PeerKey, now: number): boolean {
    const rec = this.members.get(member)
    if (rec === undefined) return false
    rec.lastHeard = now
    return true
  }

  /** Leaves `topics` (every topic and the RP itself when empty). Returns true if counts changed. */
  leave(member: PeerKey, topics: readonly Topic[]): boolean {
    const rec = this.members.get(member)
    if (rec === undefined) return false
    const gone = topics.length === 0 ? [...rec.topics] : topics.filter((t) => rec.topics.has(t))
    for (const t of gone) {
      rec.topics.delete(t)
      const set = this.byTopic.get(t)
      set?.delete(member)
      if (set?.size === 0) this.byTopic.delete(t)
    }
    if (topics.length === 0) this.members.delete(member)
    return gone.length > 0
  }

  /** Removes every member silent for longer than its lease; returns the expired members. */
  expire(now: number): PeerKey[] {
    const expired: PeerKey[] = []
    for (const [member, rec] of this.members) {
      if (now - rec.lastHeard > rec.leaseMs) expired.push(member)
    }
    for (const member of expired) this.leave(member, [])
    return expired
  }

  /** Members registered for `topic`. */
  membersOf(topic: Topic): ReadonlySet<PeerKey> {
    return this.byTopic.get(topic) ?? EMPTY
  }

  /** Number of members registered for `topic`. */
  count(topic: Topic): number {
    return this.byTopic.get(topic)?.size ?? 0
  }

  /** Member counts of every topic with at least one member. */
  allCounts(): Array<{ topic: Topic; members: number }> {
    return [...this.byTopic].map(([topic, set]) => ({ topic, members: set.size }))
  }
}
