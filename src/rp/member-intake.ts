import type { PeerKey } from '../common/artifact.ts'
import { LimitExceededError } from '../common/errors.ts'
import { messageIdKey } from '../common/message-id.ts'
import type { BackboneLinks } from './backbone-links.ts'
import { type BackboneRepair, DIGEST_COST } from './backbone-repair.ts'
import type { RpMessage } from './codec.ts'
import type { DataPlane } from './data-plane.ts'
import type { LanDelivery } from './lan-delivery.ts'
import { checkPublished } from './publisher-auth.ts'
import type { QuorumTracker } from './quorum-tracker.ts'
import type { RpContext } from './rp-context.ts'

/** The settings {@link MemberIntake} reads. */
export interface MemberIntakeSettings {
  /** Interval between hellos and membership sweeps, in ms (a lease of 0 lasts `robustness` of them). */
  helloIntervalMs: number
  /** Silent intervals a default lease lasts. */
  robustness: number
  /** Longest lease a member may ask for, in ms. */
  maxLeaseMs: number
  /** Most ids per digest. */
  maxDigestIds: number
}

/** The parts {@link MemberIntake} hands frames on to. */
export interface MemberIntakeParts {
  links: BackboneLinks
  quorum: QuorumTracker
  repair: BackboneRepair
  data: DataPlane
  /** Multicast delivery on the RP's LAN, if it has one. */
  lan: LanDelivery | undefined
}

/**
 * What a replication point takes from its members (IGMP-like): registrations and leases,
 * heartbeats, leaves, publishes that enter the backbone, acknowledgements that count
 * towards a quorum, and NACKs of lost deliveries.
 */
export class MemberIntake {
  private readonly ctx: RpContext
  private readonly parts: MemberIntakeParts
  private readonly settings: MemberIntakeSettings

  constructor(ctx: RpContext, parts: MemberIntakeParts, settings: MemberIntakeSettings) {
    this.ctx = ctx
    this.parts = parts
    this.settings = settings
  }

  /** A frame from `peer`, a member (or a would-be member). */
  receive(peer: PeerKey, m: RpMessage): void {
    const { membership, buffer } = this.ctx
    const now = this.ctx.env.now()
    switch (m.type) {
      case 'register': {
        const lease = Math.min(
          m.leaseMs > 0 ? m.leaseMs : this.settings.robustness * this.settings.helloIntervalMs,
          this.settings.maxLeaseMs,
        )
        let changed: boolean
        try {
          changed = membership.register(peer, m.topics, lease, now)
        } catch (err) {
          if (!(err instanceof LimitExceededError)) throw err
          this.ctx.reject(peer, 'member-limit')
          return
        }
        const rec = membership.get(peer)!
        const topics = [...rec.topics]
        const groups = this.parts.lan?.announce(topics) ?? []
        this.ctx.send(peer, { type: 'registered', topics, leaseMs: lease, groups })
        if (changed) this.countsChanged()
        if (m.resume) {
          // A member that failed over: offer what it may have missed while switching.
          const ids = buffer.idsForTopics(rec.topics, 0, now, this.settings.maxDigestIds)
          if (ids.length > 0) this.parts.data.digestTo(peer, ids)
        }
        return
      }
      case 'heartbeat': {
        const known = membership.touch(peer, now)
        const sent = membership.get(peer)?.sent ?? 0
        this.ctx.send(peer, { type: 'ack', ids: [], heartbeat: m.seq, known, sent })
        return
      }
      case 'leave':
        this.parts.lan?.memberLeft(peer, m.topics)
        if (membership.leave(peer, m.topics)) this.countsChanged()
        return
      case 'publish':
        this.onPublish(peer, m)
        return
      case 'ack':
        membership.touch(peer, now)
        for (const id of m.ids) this.parts.quorum.memberHolds(peer, messageIdKey(id))
        return
      case 'nack': {
        const rec = membership.get(peer)
        if (rec === undefined) return
        if (m.recent > 0 && this.parts.repair.spend(peer, DIGEST_COST)) {
          // Deliveries lost since its last check (one heartbeat ago, well within a lease):
          // offer what arrived on its topics over the last lease.
          const ids = buffer.idsForTopics(
            rec.topics,
            now - rec.leaseMs,
            now,
            this.settings.maxDigestIds,
          )
          if (ids.length > 0) this.parts.data.digestTo(peer, ids)
        }
        for (const id of m.ids) {
          const h = buffer.get(messageIdKey(id))
          if (h === undefined || !rec.topics.has(h.topic)) continue
          if (!this.parts.repair.spend(peer, 1)) return
          this.parts.data.deliverTo(peer, h, h.quorum)
        }
        return
      }
      default:
        if (this.parts.lan?.receive(peer, m)) return
        this.ctx.reject(peer, `unexpected-${m.type}`)
    }
  }

  /** The member counts per topic changed: the backbone hears of it. */
  countsChanged(): void {
    this.parts.links.countsChanged(this.ctx.membership.allCounts())
  }

  private onPublish(peer: PeerKey, m: Extract<RpMessage, { type: 'publish' }>): void {
    if (!this.ctx.membership.touch(peer, this.ctx.env.now())) {
      this.ctx.reject(peer, 'not-registered', m.topic)
      this.ctx.send(peer, { type: 'ack', ids: [], heartbeat: 0, known: false, sent: 0 })
      return
    }
    const key = messageIdKey(m.id)
    // Ids are content-derived (one that does not match could shadow a real message), and
    // the member signs what it publishes with its own key: the connection names it.
    const problem = checkPublished(this.ctx.signatures, m, peer)
    if (problem !== undefined) {
      this.ctx.reject(peer, problem, m.topic)
      return
    }
    if (this.ctx.seen.has(key, this.ctx.env.now())) {
      // A publish sent again after a failover or a lost ack: the backbone has it already.
      this.ctx.recorder.count('duplicates', m.topic, m.class)
      this.ctx.send(peer, { type: 'ack', ids: [m.id], heartbeat: 0, known: true, sent: 0 })
      return
    }
    this.parts.data.inject({ ...m, key, publisher: peer })
  }
}
