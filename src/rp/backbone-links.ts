import type { PeerKey, Topic } from '../common/artifact.ts'
import { sourceTreeChildren, treeNeighbours } from './backbone.ts'
import type { RpLinkState, RpMessage } from './codec.ts'
import type { HeldMessage } from './repair.ts'
import type { RpContext } from './rp-context.ts'

/** A neighbour RP on the backbone. */
export interface Neighbour {
  /** A hello arrived from it (it is a live link). */
  heard: boolean
  lastHeard: number
  /** Smoothed RTT in ms, once measured. */
  rttMs: number | undefined
  /** Our probes in flight: probe number → send time. */
  readonly probes: Map<number, number>
  /** Its last probe, to echo, and when it arrived. */
  lastProbe: { value: number; at: number } | undefined
  /** Consensus Data frames sent to it, and the keys of the latest (for loss repair). */
  dataSent: number
  readonly sentLog: string[]
  /** Consensus Data frames received from it. */
  dataReceived: number
  /** Its Data frame count at its previous hello: every frame up to it was accounted for. */
  sentChecked: number
  /** A request for a digest of lost frames, until a digest comes (the request may be lost). */
  recentAsked: { recent: number; upto: number; tries: number } | undefined
}

/** The settings {@link BackboneLinks} reads. */
export interface BackboneLinkSettings {
  /** Delay that coalesces triggered link-state updates, in ms. */
  lsaDelayMs: number
  /** Most ids per digest (the log of Data frames sent keeps twice as many). */
  maxDigestIds: number
}

/** What the rest of the replication point does when the backbone changes. */
export interface BackboneLinkHooks {
  /** New tree neighbours (the tree moved): offer them what they may lack. */
  treeGained(peers: readonly PeerKey[]): void
  /** A neighbour went away: frames in flight to it may be lost. */
  neighbourLost(peer: PeerKey): void
}

/** The Data frame that carries a held message across a backbone link. */
export function dataFrame(h: HeldMessage): RpMessage {
  return {
    type: 'data',
    id: h.id,
    topic: h.topic,
    class: h.class,
    data: h.data,
    originRp: h.originRp,
    publisher: h.publisher,
    quorum: h.quorum,
    surplus: h.surplus,
    signature: h.signature,
  }
}

/**
 * A replication point's links to the other RPs: hellos carry RTT probes, link states and
 * the count of Data frames sent (so a receiver sees its losses); the link-state view they
 * build gives the backbone tree and each message's next hops.
 */
export class BackboneLinks {
  private readonly ctx: RpContext
  private readonly treeKind: 'shared' | 'source'
  private readonly settings: BackboneLinkSettings
  private readonly hooks: BackboneLinkHooks
  private readonly neighbours = new Map<PeerKey, Neighbour>()
  private lastTree = new Set<PeerKey>()
  private lsaScheduled = false
  private probeSeq = 0

  constructor(
    ctx: RpContext,
    treeKind: 'shared' | 'source',
    settings: BackboneLinkSettings,
    hooks: BackboneLinkHooks,
  ) {
    this.ctx = ctx
    this.treeKind = treeKind
    this.settings = settings
    this.hooks = hooks
  }

  /** Every neighbour RP a hello went to or came from. */
  entries(): IterableIterator<[PeerKey, Neighbour]> {
    return this.neighbours.entries()
  }

  /** The neighbour record of `peer`, if any. */
  get(peer: PeerKey): Neighbour | undefined {
    return this.neighbours.get(peer)
  }

  /** The neighbour record of `peer`, made on first use. */
  neighbour(peer: PeerKey): Neighbour {
    let n = this.neighbours.get(peer)
    if (n === undefined) {
      n = {
        heard: false,
        lastHeard: 0,
        rttMs: undefined,
        probes: new Map(),
        lastProbe: undefined,
        dataSent: 0,
        sentLog: [],
        dataReceived: 0,
        sentChecked: 0,
        recentAsked: undefined,
      }
      this.neighbours.set(peer, n)
    }
    return n
  }

  /** A hello came from `peer` (it is a live link). */
  isLive(peer: PeerKey): boolean {
    return this.neighbours.get(peer)?.heard === true
  }

  /** This RP's tree neighbours that are live links. */
  liveTreeNeighbours(): PeerKey[] {
    return treeNeighbours(this.ctx.lsdb.backbone(), this.ctx.env.self).filter(
      (p) => this.neighbours.get(p)?.heard === true,
    )
  }

  /** Where a message from `originRp`'s members goes from here: its tree's next hops. */
  nextHops(originRp: PeerKey): PeerKey[] {
    const self = this.ctx.env.self
    if (this.treeKind === 'source') {
      const parents = this.ctx.lsdb.sourceTree(originRp)
      // An origin this RP cannot place (not in its view yet): the shared tree still spans.
      if (parents.has(self)) {
        return sourceTreeChildren(parents, self).filter((p) => this.isLive(p))
      }
    }
    return this.liveTreeNeighbours()
  }

  /** Sends a Data frame, counting consensus ones for the receiver's loss check. */
  sendData(peer: PeerKey, h: HeldMessage, bytes: Uint8Array): void {
    this.ctx.sendBytes(peer, bytes, h.data.length)
    if (h.class !== 'consensus') return
    const n = this.neighbour(peer)
    n.dataSent++
    n.sentLog.push(h.key)
    const max = this.settings.maxDigestIds
    if (n.sentLog.length > 2 * max) n.sentLog.splice(0, max)
  }

  /** Sends `peer` a hello with the link states it has not had yet. */
  hello(peer: PeerKey): void {
    this.sendHello(peer, this.ctx.lsdb.pendingFor(peer, this.ctx.env.now()))
  }

  /** Takes down neighbours silent for longer than `deadlineMs`. */
  expireSilent(now: number, deadlineMs: number): void {
    for (const [peer, n] of this.neighbours) {
      if (n.heard && now - n.lastHeard > deadlineMs) this.neighbourDown(peer)
    }
  }

  /** A hello from `peer`: liveness, an RTT sample, link states, and its Data frame count. */
  onHello(peer: PeerKey, m: Extract<RpMessage, { type: 'hello' }>): void {
    const now = this.ctx.env.now()
    const n = this.neighbour(peer)
    const first = !n.heard
    if (first) this.ctx.lsdb.neighbourUp(peer, now)
    n.heard = true
    n.lastHeard = now
    n.lastProbe = { value: m.probe, at: now }
    let viewChanged = false
    const sentAt = m.echo > 0 ? n.probes.get(m.echo) : undefined
    if (sentAt !== undefined) {
      n.probes.delete(m.echo)
      const sample = Math.max(0.001, now - sentAt - m.echoDelay)
      // TCP's smoothing (RFC 6298): one sample moves the estimate by an eighth.
      n.rttMs = n.rttMs === undefined ? sample : 0.875 * n.rttMs + 0.125 * sample
      viewChanged = this.updateLinks()
    }
    for (const s of m.states) if (this.ctx.lsdb.accept(peer, s, now)) viewChanged = true
    // Frames are ordered: fewer Data frames received than it sent means some were lost.
    // The lost ones are among those sent since the previous hello.
    if (m.sent > n.dataReceived) {
      n.recentAsked = { recent: m.sent - n.sentChecked, upto: m.sent, tries: 0 }
      this.ctx.send(peer, { type: 'nack', ids: [], recent: n.recentAsked.recent, upto: m.sent })
      n.dataReceived = m.sent
    }
    n.sentChecked = m.sent
    if (first) this.hello(peer)
    if (viewChanged) this.viewChanged()
  }

  /** `peer` is gone: its links leave the view, and the tree may move. */
  neighbourDown(peer: PeerKey): void {
    if (!this.neighbours.delete(peer)) return
    this.ctx.log('%s lost backbone neighbour %s', this.ctx.env.self, peer)
    this.ctx.lsdb.forgetNeighbour(peer)
    this.hooks.neighbourLost(peer)
    if (this.updateLinks()) this.viewChanged()
  }

  /** The local member counts changed: advertise them. */
  countsChanged(counts: Array<{ topic: Topic; members: number }>): void {
    if (this.ctx.lsdb.setCounts(counts, this.ctx.env.now())) this.scheduleLsa()
  }

  /** Forgets every neighbour (the core stopped). */
  clear(): void {
    this.neighbours.clear()
  }

  private sendHello(peer: PeerKey, states: RpLinkState[]): void {
    const n = this.neighbour(peer)
    const now = this.ctx.env.now()
    const probe = ++this.probeSeq
    n.probes.set(probe, now)
    // Only the last few probes can still be echoed.
    if (n.probes.size > 8) n.probes.delete(n.probes.keys().next().value!)
    this.ctx.send(peer, {
      type: 'hello',
      probe,
      echo: n.lastProbe?.value ?? 0,
      echoDelay: n.lastProbe === undefined ? 0 : now - n.lastProbe.at,
      states,
      sent: n.dataSent,
    })
  }

  private updateLinks(): boolean {
    const links = new Map<PeerKey, number>()
    for (const [peer, n] of this.neighbours) {
      if (n.heard && n.rttMs !== undefined) {
        links.set(peer, Math.max(1, Math.round(n.rttMs * 1000)))
      }
    }
    return this.ctx.lsdb.setLinks(links, this.ctx.env.now())
  }

  /** The view changed: flood it, and look for new tree neighbours once it settles. */
  private viewChanged(): void {
    this.scheduleLsa()
  }

  /** Offers every new tree neighbour what it may lack (the tree moved: some edge is new). */
  private checkTree(): void {
    const now = new Set(this.liveTreeNeighbours())
    const added = [...now].filter((p) => !this.lastTree.has(p))
    this.lastTree = now
    if (added.length > 0) {
      this.ctx.log('%s tree neighbours now %o', this.ctx.env.self, [...now])
      this.hooks.treeGained(added)
    }
  }

  /** Link states travel in hellos; a change triggers an early hello, coalesced. */
  private scheduleLsa(): void {
    if (this.lsaScheduled || !this.ctx.running()) return
    this.lsaScheduled = true
    this.ctx.later(this.settings.lsaDelayMs, () => {
      this.lsaScheduled = false
      for (const [peer, n] of this.neighbours) {
        if (!n.heard) continue
        const states = this.ctx.lsdb.pendingFor(peer, this.ctx.env.now())
        if (states.length > 0) this.sendHello(peer, states)
      }
      this.checkTree()
    })
  }
}
