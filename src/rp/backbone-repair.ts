import type { PeerKey } from '../common/artifact.ts'
import { type MessageId, messageIdFromKey, messageIdKey } from '../common/message-id.ts'
import { type BackboneLinks, dataFrame } from './backbone-links.ts'
import { encodeRpMessage, type RpMessage } from './codec.ts'
import type { RpContext } from './rp-context.ts'

/** Repair units a digest costs (it names up to `maxDigestIds` messages). */
export const DIGEST_COST = 16

/** The settings {@link BackboneRepair} reads. */
export interface BackboneRepairSettings {
  /** Most ids per digest, and most ids awaited after NACKs. */
  maxDigestIds: number
  /** Repair work one peer may ask for per hello interval (a digest counts as {@link DIGEST_COST}). */
  maxRepairsPerInterval: number
  /** Times a NACK is sent again before giving up. */
  robustness: number
}

/**
 * Repair between RPs: digests offer held messages a peer is not known to hold, NACKs ask
 * for what is missing (by id, or the Data frames a hello showed lost), and what was asked
 * and did not come is asked again. Answers are charged to the asking peer, within a budget
 * per hello interval.
 */
export class BackboneRepair {
  private readonly ctx: RpContext
  private readonly links: BackboneLinks
  private readonly settings: BackboneRepairSettings
  /** Repair work done for each peer this hello interval (bounded by `maxRepairsPerInterval`). */
  private readonly spent = new Map<PeerKey, number>()
  /** Ids NACKed to a neighbour and not received yet (bounded), retried each hello interval. */
  private readonly wanted = new Map<string, { from: PeerKey; tries: number }>()

  constructor(ctx: RpContext, links: BackboneLinks, settings: BackboneRepairSettings) {
    this.ctx = ctx
    this.links = links
    this.settings = settings
  }

  /**
   * Charges `units` of repair work (a message sent again, or a digest) to `peer`; false,
   * and a penalty, once it asked for more than `maxRepairsPerInterval` this interval: a
   * NACK is small and its answer large, so it must not become an amplifier.
   */
  spend(peer: PeerKey, units: number): boolean {
    const max = this.settings.maxRepairsPerInterval
    const spent = (this.spent.get(peer) ?? 0) + units
    if (spent > max) {
      if (spent - units <= max) this.ctx.reject(peer, 'repair-flood')
      this.spent.set(peer, spent)
      return false
    }
    this.spent.set(peer, spent)
    return true
  }

  /** A new hello interval: every peer's budget is whole again. */
  newInterval(): void {
    this.spent.clear()
  }

  /** Offers `peers` the held messages they are not known to hold. */
  offer(peers: readonly PeerKey[]): void {
    const now = this.ctx.env.now()
    for (const peer of peers) {
      const ids = this.ctx.buffer.digestFor(peer, now, this.settings.maxDigestIds)
      if (ids.length > 0) this.ctx.send(peer, { type: 'digest', ids })
    }
  }

  /** A neighbour's digest: NACK what this RP has not seen, and await it. */
  onDigest(peer: PeerKey, m: Extract<RpMessage, { type: 'digest' }>): void {
    const now = this.ctx.env.now()
    const missing: MessageId[] = []
    for (const id of m.ids) {
      const key = messageIdKey(id)
      if (this.ctx.seen.has(key, now)) this.ctx.buffer.exchanged(key, peer)
      else {
        missing.push(id)
        if (this.wanted.size < this.settings.maxDigestIds)
          this.wanted.set(key, { from: peer, tries: 0 })
      }
    }
    const n = this.links.get(peer)
    if (n !== undefined) n.recentAsked = undefined
    if (missing.length > 0) this.ctx.send(peer, { type: 'nack', ids: missing, recent: 0, upto: 0 })
  }

  /** A neighbour's NACK: a digest of the Data frames it lost, and the messages it names. */
  onNack(peer: PeerKey, m: Extract<RpMessage, { type: 'nack' }>): void {
    const n = this.links.get(peer)
    if (m.recent > 0 && n !== undefined && this.spend(peer, DIGEST_COST)) {
      // It lost some of the Data frames (upto - recent, upto]: offer those. The log
      // holds the keys of frames (dataSent - log length, dataSent].
      const first = n.dataSent - n.sentLog.length
      const from = Math.max(0, m.upto - m.recent - first)
      const to = Math.max(0, m.upto - first)
      const ids: MessageId[] = []
      for (const k of n.sentLog.slice(from, to).slice(-this.settings.maxDigestIds)) {
        const h = this.ctx.buffer.get(k)
        if (h !== undefined) ids.push(h.id)
      }
      if (ids.length > 0) this.ctx.send(peer, { type: 'digest', ids })
    }
    for (const id of m.ids) {
      const h = this.ctx.buffer.get(messageIdKey(id))
      if (h === undefined) continue
      if (!this.spend(peer, 1)) return
      this.ctx.buffer.exchanged(h.key, peer)
      this.links.sendData(peer, h, encodeRpMessage(dataFrame(h)))
    }
  }

  /** Asks again for what was NACKed or requested an interval ago and did not come. */
  askAgain(now: number): void {
    const again = new Map<PeerKey, MessageId[]>()
    for (const [key, w] of this.wanted) {
      if (
        this.ctx.seen.has(key, now) ||
        w.tries >= this.settings.robustness ||
        !this.links.isLive(w.from)
      ) {
        this.wanted.delete(key)
        continue
      }
      w.tries++
      const list = again.get(w.from)
      if (list === undefined) again.set(w.from, [messageIdFromKey(key)])
      else list.push(messageIdFromKey(key))
    }
    for (const [peer, ids] of again) this.ctx.send(peer, { type: 'nack', ids, recent: 0, upto: 0 })
    for (const [peer, n] of this.links.entries()) {
      const r = n.recentAsked
      if (r === undefined) continue
      if (++r.tries > this.settings.robustness) n.recentAsked = undefined
      else this.ctx.send(peer, { type: 'nack', ids: [], recent: r.recent, upto: r.upto })
    }
  }
}
