import type { Artifact, ArtifactClass, PeerKey, Topic } from '../common/artifact.ts'
import { type MessageId, messageIdKey } from '../common/message-id.ts'
import type { ValidationResult } from '../common/validation.ts'
import { type BackboneLinks, dataFrame } from './backbone-links.ts'
import { encodeRpMessage, type RpMessage } from './codec.ts'
import type { LanDelivery } from './lan-delivery.ts'
import { checkPublished } from './publisher-auth.ts'
import type { QuorumTracker } from './quorum-tracker.ts'
import type { HeldMessage } from './repair.ts'
import type { RpContext } from './rp-context.ts'

/** A message entering the backbone at this RP. */
export interface Injected {
  id: MessageId
  key: string
  topic: Topic
  class: ArtifactClass
  data: Uint8Array
  /** The registered member (or this RP) that published it. */
  publisher: PeerKey
  quorum: boolean
  surplus: number
  /** The publisher's signature (empty without signatures). */
  signature: Uint8Array
}

/** The Deliver frame that hands a held message to a member. */
function deliverFrame(h: HeldMessage, quorum: boolean): RpMessage {
  return {
    type: 'deliver',
    id: h.id,
    topic: h.topic,
    class: h.class,
    data: h.data,
    publisher: h.publisher,
    quorum,
    signature: h.signature,
  }
}

/**
 * A replication point's data plane: a message enters the backbone here or arrives from
 * another RP, is forwarded once to each next hop of its tree, and is delivered to the local
 * members of its topic (and to this RP's own application, through its validator).
 * Consensus messages are held for repair.
 */
export class DataPlane {
  private readonly ctx: RpContext
  private readonly links: BackboneLinks
  private readonly quorum: QuorumTracker
  private readonly lan: LanDelivery | undefined

  constructor(
    ctx: RpContext,
    links: BackboneLinks,
    quorum: QuorumTracker,
    lan: LanDelivery | undefined,
  ) {
    this.ctx = ctx
    this.links = links
    this.quorum = quorum
    this.lan = lan
  }

  /** A new message enters the backbone here (the publisher is registered with this RP). */
  inject(m: Injected): number {
    const now = this.ctx.env.now()
    this.ctx.seen.add(m.key, now)
    const held = this.hold({ ...m, originRp: this.ctx.env.self, at: now, exchanged: new Set() })
    const flow = this.quorum.open(held, undefined)
    if (this.ctx.membership.get(m.publisher)?.topics.has(m.topic)) {
      flow.holders.add(m.publisher)
      flow.count = 1
    }
    // The backbone first: its paths are the long ones.
    const forwarded = this.forward(held, undefined)
    const local = this.deliverLocal(held, m.publisher, undefined)
    // With no other RP to hold it, this RP's word is all there is; ingress is best effort.
    if (forwarded === 0 || m.class === 'ingress') this.quorum.ackPublisher(flow)
    this.quorum.checkQuorum(flow)
    return local + forwarded
  }

  /** A Data frame from the neighbour RP `peer`. */
  onData(peer: PeerKey, m: Extract<RpMessage, { type: 'data' }>): void {
    const now = this.ctx.env.now()
    const key = messageIdKey(m.id)
    if (m.class === 'consensus') this.links.neighbour(peer).dataReceived++
    if (this.ctx.seen.has(key, now)) {
      this.ctx.buffer.exchanged(key, peer)
      this.ctx.duplicate(m, peer, now)
      return
    }
    // Checked before it is remembered: a forgery must not shadow the real message's id.
    const problem = checkPublished(this.ctx.signatures, m, m.publisher)
    if (problem !== undefined) {
      this.ctx.reject(peer, problem, m.topic)
      return
    }
    this.ctx.seen.add(key, now)
    const held = this.hold({ ...m, key, at: now, exchanged: new Set([peer]) })
    const flow = this.quorum.open(held, peer)
    this.forward(held, peer)
    this.deliverLocal(held, undefined, peer)
    // The first report tells the parent (and so the origin) that one more RP holds it.
    this.quorum.report(flow, 0)
  }

  /** Sends a member one held message again. */
  deliverTo(member: PeerKey, h: HeldMessage, quorum: boolean): void {
    this.ctx.send(member, deliverFrame(h, quorum))
    this.countDelivery(member, h)
  }

  /** Sends a member a digest; it counts with deliveries in the member's loss check. */
  digestTo(member: PeerKey, ids: MessageId[]): void {
    this.ctx.send(member, { type: 'digest', ids })
    const rec = this.ctx.membership.get(member)
    if (rec !== undefined) rec.sent++
  }

  private hold(h: HeldMessage): HeldMessage {
    if (h.class === 'consensus') this.ctx.buffer.add(h, h.at)
    return h
  }

  /** Sends the message to every live next hop of its tree but `except`; returns how many. */
  private forward(h: HeldMessage, except: PeerKey | undefined): number {
    let n = 0
    let bytes: Uint8Array | undefined
    for (const peer of this.links.nextHops(h.originRp)) {
      if (peer === except) continue
      bytes ??= encodeRpMessage(dataFrame(h))
      this.links.sendData(peer, h, bytes)
      this.ctx.buffer.exchanged(h.key, peer)
      n++
    }
    return n
  }

  /**
   * Sends the message to the local members of its topic: once to the LAN for those
   * multicast reaches, by unicast to the others; returns how many.
   */
  private deliverLocal(h: HeldMessage, except: PeerKey | undefined, from: PeerKey | undefined) {
    let n = 0
    let bytes: Uint8Array | undefined
    const lan = this.lan
    let multicast = false
    if (lan !== undefined) {
      bytes = encodeRpMessage(deliverFrame(h, h.quorum))
      multicast = lan.publish(h.topic, bytes)
    }
    for (const member of this.ctx.membership.membersOf(h.topic)) {
      if (member === except) continue
      if (member === this.ctx.env.self) {
        this.deliverToSelf(h, from)
        continue
      }
      if (multicast && lan?.reaches(member, h.topic)) {
        n++
        continue
      }
      bytes ??= encodeRpMessage(deliverFrame(h, h.quorum))
      this.ctx.sendBytes(member, bytes, h.data.length)
      this.countDelivery(member, h)
      n++
    }
    return n
  }

  private countDelivery(member: PeerKey, h: HeldMessage): void {
    const rec = h.class === 'consensus' ? this.ctx.membership.get(member) : undefined
    if (rec !== undefined) rec.sent++
  }

  private deliverToSelf(h: HeldMessage, from: PeerKey | undefined): void {
    const artifact: Artifact = {
      id: h.id,
      topic: h.topic,
      data: h.data,
      class: h.class,
      from,
      origin: h.publisher,
      receivedAt: this.ctx.env.now(),
    }
    const validator = this.ctx.validators.get(h.topic)
    const done = (v: ValidationResult) => {
      if (v !== 'accept') {
        this.ctx.recorder.count(v === 'reject' ? 'rejected' : 'ignored', h.topic, h.class)
        return
      }
      this.ctx.recorder.count('delivered', h.topic, h.class, h.data.length)
      this.ctx.events.emit('artifact', artifact)
      this.quorum.memberHolds(this.ctx.env.self, h.key)
    }
    const verdict = validator === undefined ? 'accept' : validator(artifact)
    if (verdict instanceof Promise) {
      verdict.then(done, (err) => {
        this.ctx.log.error('validator of %s threw: %e', h.topic, err)
        done('ignore')
      })
    } else done(verdict)
  }
}
