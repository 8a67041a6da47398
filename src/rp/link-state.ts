import type { PeerKey, Topic } from '../common/artifact.ts'
import { type Backbone, computeBackbone, computeSourceTree } from './backbone.ts'
import type { RpLink, RpLinkState } from './codec.ts'

/**
 * The shared view of the backbone that every RP floods (as OSPF floods link-state
 * advertisements): each RP's links with their round-trip times and its member counts.
 * Only states of known RPs are kept, so the store is bounded by the RP list.
 */
export class LinkStateDb {
  private readonly self: PeerKey
  private readonly knownRps: ReadonlySet<PeerKey>
  private readonly costChange: number
  private readonly settleMs: number
  private readonly since = new Map<PeerKey, number>()
  private readonly states = new Map<PeerKey, RpLinkState>()
  private readonly sent = new Map<PeerKey, Map<PeerKey, number>>()
  private own: RpLinkState
  private tree: Backbone | undefined
  private readonly sourceTrees = new Map<PeerKey, Map<PeerKey, PeerKey>>()
  private totals: Map<Topic, number> | undefined

  /**
   * @param self - this RP
   * @param knownRps - the RPs whose states are accepted
   * @param costChange - relative change of a link's RTT that is worth advertising (so that
   *   jitter does not make the tree flap)
   * @param settleMs - how long after a neighbour comes up states are relayed to it
   * @param now - the current time (sequence numbers follow the clock)
   */
  constructor(
    self: PeerKey,
    knownRps: ReadonlySet<PeerKey>,
    costChange: number,
    settleMs: number,
    now: number,
  ) {
    this.self = self
    this.knownRps = knownRps
    this.costChange = costChange
    this.settleMs = settleMs
    this.own = { origin: self, seq: Math.max(1, Math.floor(now * 1000)), links: [], counts: [] }
    this.states.set(self, this.own)
  }

  /** This RP's own current state. */
  get ownState(): RpLinkState {
    return this.own
  }

  /**
   * Sets this RP's measured links. Re-originates its state (returns true) when a link came
   * or went, or a cost moved by more than the configured fraction.
   */
  setLinks(links: ReadonlyMap<PeerKey, number>, now: number): boolean {
    const old = new Map(this.own.links.map((l) => [l.peer, l.costUs]))
    let changed = old.size !== links.size
    const next: RpLink[] = []
    for (const [peer, cost] of links) {
      const prev = old.get(peer)
      if (prev === undefined) changed = true
      else if (Math.abs(cost - prev) <= this.costChange * prev) {
        next.push({ peer, costUs: prev })
        continue
      } else changed = true
      next.push({ peer, costUs: cost })
    }
    if (!changed) return false
    next.sort((a, b) => (a.peer < b.peer ? -1 : 1))
    this.originate({ ...this.own, links: next }, now)
    return true
  }

  /** Sets this RP's member counts; re-originates (returns true) when they differ. */
  setCounts(counts: Array<{ topic: Topic; members: number }>, now: number): boolean {
    const sorted = counts.slice().sort((a, b) => (a.topic < b.topic ? -1 : 1))
    const same =
      sorted.length === this.own.counts.length &&
      sorted.every(
        (c, i) => c.topic === this.own.counts[i].topic && c.members === this.own.counts[i].members,
      )
    if (same) return false
    this.originate({ ...this.own, counts: sorted }, now)
    return true
  }

  /**
   * Takes a state received from neighbour `from`. Returns true when it changed the view.
   * A state heard from its own origin always wins (the origin may have restarted with a
   * lower sequence number); a relayed one must be newer. Our own state coming back newer
   * than ours (from before a restart) makes us re-originate above it.
   */
  accept(from: PeerKey, state: RpLinkState, now: number): boolean {
    if (!this.knownRps.has(state.origin)) return false
    this.markSent(from, state.origin, state.seq)
    if (state.origin === this.self) {
      if (state.seq >= this.own.seq) {
        this.own = { ...this.own, seq: state.seq }
        this.originate({ ...this.own }, now)
        return true
      }
      return false
    }
    const known = this.states.get(state.origin)
    if (known !== undefined && state.seq <= known.seq && from !== state.origin) return false
    if (known !== undefined && state.seq === known.seq) return false
    this.states.set(state.origin, state)
    // Member counts change often; the tree only when links do.
    if (known === undefined || !sameLinks(known.links, state.links)) this.linksChanged()
    this.totals = undefined
    return true
  }

  /**
   * States `neighbour` has not been sent yet (own and relayed); marks them sent. A state is
   * not relayed to a neighbour that advertises a link to its origin: it hears the origin
   * directly (on a full mesh of RPs nothing is relayed at all). Skipped states stay unsent,
   * so they go out once that link is withdrawn.
   */
  pendingFor(neighbour: PeerKey, now: number): RpLinkState[] {
    const out: RpLinkState[] = []
    const direct = new Set(this.states.get(neighbour)?.links.map((l) => l.peer))
    const since = this.since.get(neighbour)
    // A neighbour that just came up has not measured its own links yet: relaying to it now
    // would send it every state that it is about to hear first-hand (R³ frames at start).
    const settled = since !== undefined && now - since >= this.settleMs
    for (const s of this.states.values()) {
      if (s.origin === neighbour) continue
      if (s.origin !== this.self && (!settled || direct.has(s.origin))) continue
      const sent = this.sent.get(neighbour)?.get(s.origin)
      if (sent !== undefined && sent >= s.seq) continue
      this.markSent(neighbour, s.origin, s.seq)
      out.push(s)
    }
    return out
  }

  /** `neighbour` is up (its first hello arrived at `now`). */
  neighbourUp(neighbour: PeerKey, now: number): void {
    if (!this.since.has(neighbour)) this.since.set(neighbour, now)
  }

  /** Forgets what `neighbour` was sent (it went away; it gets everything when back). */
  forgetNeighbour(neighbour: PeerKey): void {
    this.sent.delete(neighbour)
    this.since.delete(neighbour)
  }

  /** The backbone tree from the current view (cached until the view changes). */
  backbone(): Backbone {
    this.tree ??= computeBackbone(this.self, this.states)
    return this.tree
  }

  /** The shortest-path tree rooted at `root` as a parent map (cached until links change). */
  sourceTree(root: PeerKey): ReadonlyMap<PeerKey, PeerKey> {
    let t = this.sourceTrees.get(root)
    if (t === undefined) {
      t = computeSourceTree(root, this.states)
      this.sourceTrees.set(root, t)
    }
    return t
  }

  /** Members registered for `topic` at every RP reachable on the backbone. */
  totalMembers(topic: Topic): number {
    if (this.totals === undefined) {
      const totals = new Map<Topic, number>()
      for (const rp of this.backbone().nodes) {
        for (const c of this.states.get(rp)?.counts ?? []) {
          totals.set(c.topic, (totals.get(c.topic) ?? 0) + c.members)
        }
      }
      this.totals = totals
    }
    return this.totals.get(topic) ?? 0
  }

  /** The stored state of `rp`. */
  stateOf(rp: PeerKey): RpLinkState | undefined {
    return this.states.get(rp)
  }

  /**
   * Sequence numbers follow the clock (microseconds), so an RP that restarts starts above
   * what it advertised before, and relayed copies of its old state lose to the new one.
   */
  private originate(next: RpLinkState, now: number): void {
    const linksChanged = !sameLinks(this.own.links, next.links)
    this.own = { ...next, seq: Math.max(this.own.seq + 1, Math.floor(now * 1000)) }
    this.states.set(this.self, this.own)
    if (linksChanged) this.linksChanged()
    this.totals = undefined
  }

  private linksChanged(): void {
    this.tree = undefined
    this.sourceTrees.clear()
  }

  private markSent(neighbour: PeerKey, origin: PeerKey, seq: number): void {
    let m = this.sent.get(neighbour)
    if (m === undefined) {
      m = new Map()
      this.sent.set(neighbour, m)
    }
    if ((m.get(origin) ?? -1) < seq) m.set(origin, seq)
  }
}

function sameLinks(a: readonly RpLink[], b: readonly RpLink[]): boolean {
  if (a.length !== b.length) return false
  const m = new Map(a.map((l) => [l.peer, l.costUs]))
  return b.every((l) => m.get(l.peer) === l.costUs)
}
