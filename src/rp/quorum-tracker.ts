import type { PeerKey, Topic } from '../common/artifact.ts'
import { type MessageId, messageIdKey } from '../common/message-id.ts'
import type { BackboneLinks } from './backbone-links.ts'
import { quorumThreshold } from './events.ts'
import type { HeldMessage } from './repair.ts'
import type { RpContext } from './rp-context.ts'

/** Per-message delivery bookkeeping: the report path and, at the origin, the quorum. */
export interface Flow {
  readonly key: string
  readonly id: MessageId
  readonly topic: Topic
  /** The RP it came from (reports go there); undefined at the origin RP. */
  readonly parent: PeerKey | undefined
  readonly originRp: PeerKey
  readonly publisher: PeerKey
  readonly quorum: boolean
  readonly surplus: number
  /** Local members that acknowledged it. */
  readonly holders: Set<PeerKey>
  /** At the origin: members known to hold it. */
  count: number
  /** At the origin: the publisher was told the backbone holds it. */
  acked: boolean
  quorumSent: boolean
}

/** The settings {@link QuorumTracker} reads. */
export interface QuorumSettings {
  /** Most flows kept (as many as consensus messages kept for repair). */
  repairCapacity: number
  /** Delay that coalesces delivered-count reports to the parent RP, in ms. */
  reportDelayMs: number
}

/**
 * Delivered counts on their way back to the publisher's RP: each RP reports the members
 * that hold a message to the RP it came from (coalesced), and the origin RP adds them up,
 * acknowledges the publisher once the backbone holds the message, and tells it when a
 * quorum of the topic's members holds it.
 */
export class QuorumTracker {
  private readonly ctx: RpContext
  private readonly links: BackboneLinks
  private readonly settings: QuorumSettings
  private readonly flows = new Map<string, Flow>()
  private readonly reports = new Map<PeerKey, Map<string, number>>()
  private reportScheduled = false

  constructor(ctx: RpContext, links: BackboneLinks, settings: QuorumSettings) {
    this.ctx = ctx
    this.links = links
    this.settings = settings
  }

  /** Starts the bookkeeping of `h`, which came from `parent` (undefined: published here). */
  open(h: HeldMessage, parent: PeerKey | undefined): Flow {
    const flow: Flow = {
      key: h.key,
      id: h.id,
      topic: h.topic,
      parent,
      originRp: h.originRp,
      publisher: h.publisher,
      quorum: h.quorum,
      surplus: h.surplus,
      holders: new Set(),
      count: 0,
      acked: false,
      quorumSent: false,
    }
    // Bounded like the repair buffer: the oldest flow goes first.
    if (this.flows.size >= this.settings.repairCapacity) {
      const oldest = this.flows.keys().next()
      if (!oldest.done) this.flows.delete(oldest.value)
    }
    this.flows.set(h.key, flow)
    return flow
  }

  /** A local member (or this RP's application) holds the message `key`. */
  memberHolds(member: PeerKey, key: string): void {
    const flow = this.flows.get(key)
    if (flow === undefined || flow.holders.has(member)) return
    if (!this.ctx.membership.get(member)?.topics.has(flow.topic)) return
    flow.holders.add(member)
    this.addCount(flow, 1)
  }

  /** Counts reported by a child RP. */
  delivered(counts: ReadonlyArray<{ id: MessageId; count: number }>): void {
    for (const c of counts) {
      const flow = this.flows.get(messageIdKey(c.id))
      if (flow === undefined) continue
      if (flow.parent === undefined) this.ackPublisher(flow)
      if (c.count > 0) this.addCount(flow, c.count)
    }
  }

  /** Adds `n` holders to the report for the parent of `flow` (0: this RP holds it). */
  report(flow: Flow, n: number): void {
    const parent = flow.parent!
    let q = this.reports.get(parent)
    if (q === undefined) {
      q = new Map()
      this.reports.set(parent, q)
    }
    q.set(flow.key, (q.get(flow.key) ?? 0) + n)
    if (this.reportScheduled) return
    this.reportScheduled = true
    this.ctx.later(this.settings.reportDelayMs, () => {
      this.reportScheduled = false
      this.flushReports()
    })
  }

  /** Tells the publisher, once, that the backbone holds its message. */
  ackPublisher(flow: Flow): void {
    if (flow.acked) return
    flow.acked = true
    if (flow.publisher !== this.ctx.env.self) {
      this.ctx.send(flow.publisher, {
        type: 'ack',
        ids: [flow.id],
        heartbeat: 0,
        known: true,
        sent: 0,
      })
    }
  }

  /** Tells the publisher, once, when a quorum of the topic's members holds the message. */
  checkQuorum(flow: Flow): void {
    if (!flow.quorum || flow.quorumSent) return
    const members = this.ctx.lsdb.totalMembers(flow.topic)
    if (members === 0 || flow.count < quorumThreshold(members, flow.surplus)) return
    flow.quorumSent = true
    if (flow.publisher === this.ctx.env.self) {
      this.ctx.events.emit('quorum', { id: flow.id, topic: flow.topic, count: flow.count, members })
    } else {
      this.ctx.send(flow.publisher, { type: 'quorum', id: flow.id, count: flow.count, members })
    }
  }

  /** Drops the reports not sent yet (the core stopped). */
  clearReports(): void {
    this.reports.clear()
  }

  private addCount(flow: Flow, n: number): void {
    if (flow.parent === undefined) {
      flow.count += n
      this.checkQuorum(flow)
    } else {
      this.report(flow, n)
    }
  }

  private flushReports(): void {
    const maxIds = this.ctx.limits.maxIds
    for (const [parent, q] of this.reports) {
      // A parent that went away: report straight to the origin RP when it is a neighbour.
      const byTarget = new Map<PeerKey, Array<{ id: MessageId; count: number }>>()
      for (const [key, count] of q) {
        const flow = this.flows.get(key)
        if (flow === undefined) continue
        const target = this.links.isLive(parent) ? parent : flow.originRp
        if (!this.links.isLive(target)) continue
        let list = byTarget.get(target)
        if (list === undefined) {
          list = []
          byTarget.set(target, list)
        }
        list.push({ id: flow.id, count })
      }
      for (const [target, counts] of byTarget) {
        for (let i = 0; i < counts.length; i += maxIds) {
          this.ctx.send(target, { type: 'delivered', counts: counts.slice(i, i + maxIds) })
        }
      }
    }
    this.reports.clear()
  }
}
