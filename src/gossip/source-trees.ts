import type { PeerKey, Topic } from '../common/artifact.ts'
import { TokenBucket } from '../common/token-bucket.ts'
import { DISTANCE_ENTRY_BYTES } from './rpc-codec.ts'

/**
 * Per-source trees for the one-copy extension (doc/gossip-extension.md, "Per-source trees"):
 * a distance vector over each topic's mesh, kept only for sources whose messages (or whose
 * mesh peers' entries) a node has seen. Each node's distance to a source S is the least of
 * its seed (S's own flood reaches it straight: the link's latency plus its own validation)
 * and, over its mesh peers Y that do not name it their parent for S (split horizon with
 * poison reverse), Y's advertised distance plus the link's latency plus its own validation.
 * The peer giving the least is its parent for S; a node pushes S's messages to the mesh peers
 * that name it parent and announces them to the others. Pure logic: the router feeds it link
 * latencies, peers' entries and arrivals, and sends what {@link SourceTrees.outgoing} returns.
 */

/** Distances are carried in 0.1 ms steps in 15 bits; this one means unreachable (3.28 s). */
export const UNREACHABLE_STEPS = 0x7fff
const PARENT_BIT = 0x8000
const STEP_MS = 0.1
/** The largest distance a wire entry carries, in ms. */
export const MAX_DISTANCE_MS = (UNREACHABLE_STEPS - 1) * STEP_MS

/**
 * A changed entry is resent only past both of these (hysteresis: no resend per jitter, nor per
 * small step while the trees form: 2% → 5% took the start-up exchange from 7.28x to 7.00x the
 * floor of a 30-message run, 300 nodes, seed 1, p99 unchanged).
 */
const RESEND_MIN_MS = 0.5
const RESEND_SHARE = 0.05

/**
 * A parent that showed nothing of one of the source's messages (no copy, no announce) is
 * passed over for this long, ms: its offers for that source are ignored, then it may be chosen
 * again. At the first such miss (an honest parent whose bit for us was stale announces, so it
 * is not missed): waiting for a second cost 20% silent relays 1.33× → 1.64× the honest run's
 * p99 (single publisher, 1,000 nodes, seed 1).
 */
export const PASS_OVER_MS = 30_000

/** The parent meaning "the source itself" (its flood reaches us straight). */
export const FROM_SOURCE = Symbol('source')

/** One entry as carried on the wire. */
export interface DistanceEntry {
  /** The source's peer hash. */
  source: number
  /** The sender's advertised distance from the source, in ms (Infinity: unreachable). */
  distanceMs: number
  /** The sender's parent for the source is the receiver. */
  parent: boolean
}

/** Encodes one entry into 6 bytes. */
export function encodeDistanceEntry(e: DistanceEntry): Uint8Array {
  const out = new Uint8Array(DISTANCE_ENTRY_BYTES)
  const v = new DataView(out.buffer)
  v.setUint32(0, e.source >>> 0)
  const steps = Number.isFinite(e.distanceMs)
    ? Math.min(UNREACHABLE_STEPS - 1, Math.max(0, Math.round(e.distanceMs / STEP_MS)))
    : UNREACHABLE_STEPS
  v.setUint16(4, steps | (e.parent ? PARENT_BIT : 0))
  return out
}

/** Decodes a 6-byte entry (the codec checked the length). */
export function decodeDistanceEntry(b: Uint8Array): DistanceEntry {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const word = v.getUint16(4)
  const steps = word & ~PARENT_BIT
  return {
    source: v.getUint32(0),
    distanceMs: steps === UNREACHABLE_STEPS ? Number.POSITIVE_INFINITY : steps * STEP_MS,
    parent: (word & PARENT_BIT) !== 0,
  }
}

/** A mesh peer's last entry for one source. */
export interface PeerEntry {
  /** Its advertised distance from the source, ms (Infinity: unreachable). */
  distanceMs: number
  /** It takes the source's messages through us (its parent is us). */
  namesUs: boolean
}

/** What we last told one peer for one source. */
interface SentEntry {
  distanceMs: number
  parent: boolean
}

/** One source's state in one topic. */
interface SourceState {
  distanceMs: number
  parent: PeerKey | typeof FROM_SOURCE | undefined
  /** A second mesh peer named parent too, its path within the backup margin of the best. */
  backup: PeerKey | undefined
  /** The source's own flood (latency and queue wait, before our validation), when it is a connected topic peer. */
  floodMs: number
  /** Our place in the source's flood, as it told us (ms in its send queue; 0 until told). */
  waitMs: number
  peers: Map<PeerKey, PeerEntry>
  sent: Map<PeerKey, SentEntry>
  /** Until then a lower distance is not taken (hold-down after it grew). */
  holdUntil: number
  /** A message of the source reached us, or the source itself told us its seed. */
  confirmed: boolean
  /** The source's last message and the parent we had then: did it send or announce it to us? */
  watch: { key: string; parent: PeerKey; delivered: boolean } | undefined
}

/** What the table needs from its router. */
export interface SourceTreesHost {
  now(): number
  /** One-way latency to `peer` (half its smoothed RTT), ms; undefined until measured. */
  latencyMs(peer: PeerKey): number | undefined
  /** The mesh of `topic`, if we keep one. */
  meshOf(topic: Topic): ReadonlySet<PeerKey> | undefined
  /** This node's validation delay for a typical message of `topic`, ms. */
  validationMs(topic: Topic): number
  /** This node's serialization of one copy of a typical message of `topic`, ms. */
  sendMs(topic: Topic): number
  /** `parent` showed nothing of a message of `topic` and is passed over (a statistic). */
  passedOver(topic: Topic, parent: PeerKey): void
}

/** Per-topic, per-source distances and parents (bounded by `maxSources` per topic). */
export class SourceTrees {
  private readonly host: SourceTreesHost
  private readonly maxSources: number
  private readonly holdDownMs: number
  /** A runner-up path within this many ms of the best is taken as a backup parent (0: none). */
  private readonly backupMs: number
  private readonly topics = new Map<Topic, Map<number, SourceState>>()
  /** Sources whose distance or parent changed since the last {@link outgoing} per topic. */
  private readonly dirty = new Map<Topic, Set<number>>()
  /** Mesh peers each topic's full table went to (a new mesh peer gets it whole). */
  private readonly told = new Map<Topic, Set<PeerKey>>()
  /** Sources seen once (`source topic`), bounded by `maxSources`: the second sighting starts an entry. */
  private readonly once = new Set<string>()
  /**
   * Each topic's mesh at the last heartbeat, less the peers that left since: only these count
   * (their offers are taken, they are sent our table). A peer grafted at start-up is often
   * pruned at the next heartbeat (meshes over D_hi shrink), and every table sent to it, and
   * every parent chosen through it, was a wave of changes over the whole topic.
   */
  private readonly meshSeen = new Map<Topic, Set<PeerKey>>()
  /** Per topic, the peers passed over as parents (of every source), until when. */
  private readonly passedOver = new Map<Topic, Map<PeerKey, number>>()
  /**
   * Per topic, the sources only peers' entries named (none of their messages reached us yet),
   * oldest first: at the cap the oldest gives way, so entries invented by a peer can evict
   * only each other, never a source we saw.
   */
  private readonly unconfirmed = new Map<Topic, Set<number>>()

  /** Entries each peer may be sent per second, and at once (see {@link outgoing}). */
  private readonly sendRate: { perSecond: number; burst: number }
  /** Per peer, the entries it may still be sent. */
  private readonly credit = new Map<PeerKey, TokenBucket>()

  /**
   * `sendRate` caps the changed entries each peer is sent (a peer flipping its distances
   * must not make us overrun our other neighbours' `distance` budgets); a new mesh peer's
   * whole table is sent regardless (the cap on sources keeps it within one burst).
   */
  constructor(
    host: SourceTreesHost,
    maxSources: number,
    holdDownMs: number,
    sendRate: { perSecond: number; burst: number },
    backupMs = 0,
  ) {
    this.host = host
    this.maxSources = maxSources
    this.holdDownMs = holdDownMs
    this.sendRate = sendRate
    this.backupMs = backupMs
  }

  /** Sources held for `topic`. */
  size(topic: Topic): number {
    return this.topics.get(topic)?.size ?? 0
  }

  /**
   * A message of `source` arrived. Its entry starts with its second message (within the cap),
   * or at once when the source is `repeated` (it said so): a source that publishes once (most,
   * with random publishers) costs no exchange. `floodMs` is how long the source's own flood
   * takes to reach us when it is a connected topic peer (the link's latency), before our
   * validation. True when the source is held.
   */
  seen(topic: Topic, source: number, floodMs: number | undefined, repeated = false): boolean {
    if (!repeated && !this.has(topic, source)) {
      const key = `${source} ${topic}`
      if (!this.once.delete(key)) {
        // Bounded like the table: the oldest first sighting is forgotten first.
        if (this.once.size >= this.maxSources) this.once.delete(this.once.values().next().value!)
        this.once.add(key)
        return false
      }
    }
    return this.seed(topic, source, floodMs)
  }

  /**
   * The source's flood reaches us over a link of `linkMs` (undefined: not measured yet), after
   * `waitMs` in its send queue when it told us (kept until it tells again): the entry starts
   * (within the cap) with that seed. False when the table is full and the source is not held.
   */
  seed(topic: Topic, source: number, linkMs: number | undefined, waitMs?: number): boolean {
    const s = this.state(topic, source, true)
    if (s === undefined) return false
    if (waitMs !== undefined) s.waitMs = waitMs
    if (linkMs === undefined) return true
    const floodMs = linkMs + s.waitMs
    if (floodMs !== s.floodMs) {
      s.floodMs = floodMs
      this.recompute(topic, source, s)
    }
    return true
  }

  /**
   * Topic peer `peer` advertised `e`. It is held even while `peer` is not (yet) in our mesh:
   * a peer that grafts us sends its table as it grafts, maybe before we handled the GRAFT, and
   * only mesh peers' entries count. False when the source is new and the table is full (the
   * entry is not stored; a peer inventing sources cannot grow our memory).
   */
  advertised(topic: Topic, peer: PeerKey, e: DistanceEntry): boolean {
    const s = this.state(topic, e.source, false)
    if (s === undefined) return false
    const old = s.peers.get(peer)
    if (old !== undefined && old.distanceMs === e.distanceMs && old.namesUs === e.parent) {
      return true
    }
    s.peers.set(peer, { distanceMs: e.distanceMs, namesUs: e.parent })
    this.recompute(topic, e.source, s)
    return true
  }

  /**
   * The mesh peers' last entries for `source` (push to those that name us parent), or
   * undefined when we hold no entry for it (rules 1–9 apply). Peers absent from the map sent
   * none and follow rules 1–9.
   */
  entries(topic: Topic, source: number): ReadonlyMap<PeerKey, PeerEntry> | undefined {
    return this.topics.get(topic)?.get(source)?.peers
  }

  /** Our parent for `source` (FROM_SOURCE: its flood), if any. */
  parentOf(topic: Topic, source: number): PeerKey | typeof FROM_SOURCE | undefined {
    return this.topics.get(topic)?.get(source)?.parent
  }

  /** Our distance from `source`, ms (Infinity: unknown). */
  distanceOf(topic: Topic, source: number): number {
    return this.topics.get(topic)?.get(source)?.distanceMs ?? Number.POSITIVE_INFINITY
  }

  /** True when `source`'s entry has its seed (it is a topic peer whose link we measured). */
  seeded(topic: Topic, source: number): boolean {
    return Number.isFinite(this.topics.get(topic)?.get(source)?.floodMs ?? Number.POSITIVE_INFINITY)
  }

  /** The metric's cost of one hop in `topic` (our validation and one copy's sending), ms. */
  hopMs(topic: Topic): number {
    return this.host.validationMs(topic) + this.host.sendMs(topic)
  }

  /**
   * The topic's typical message size changed: every source's distance is recomputed with the
   * new per-hop cost. True when some entry changed.
   */
  retune(topic: Topic): boolean {
    const table = this.topics.get(topic)
    if (table === undefined) return false
    let changed = false
    for (const [source, s] of table) {
      const before = s.distanceMs
      this.recompute(topic, source, s)
      changed ||= s.distanceMs !== before
    }
    return changed
  }

  /** True when we hold an entry for `source` in `topic`. */
  has(topic: Topic, source: number): boolean {
    return this.topics.get(topic)?.has(source) === true
  }

  /**
   * The first copy of message `key` of `source` came from `from` (`flooded`: the source
   * itself sent it, its flood), after `announcers` announced it. Settles the source's previous
   * message if still watched (see {@link settle}), then watches this one: our parent shows it
   * has it by its copy (pushed, or in answer to a pull) or its announce (its parent bit for us
   * was stale). Not when the copy came first by the source's flood or our backup parent: we
   * announce it to our parent at once, and a parent our announce reaches first rightly sends
   * us nothing (on 24 real nodes every pass-over of an honest parent was one of these). A
   * silent parent behind either path costs nothing until a message it does cost us shows it.
   */
  firstCopy(
    topic: Topic,
    source: number,
    key: string,
    from: PeerKey,
    flooded: boolean,
    announcers?: ReadonlyMap<PeerKey, number>,
  ): void {
    const s = this.topics.get(topic)?.get(source)
    if (s === undefined) return
    this.settle(topic, source, s)
    const parent = s.parent
    s.watch =
      parent === undefined || parent === FROM_SOURCE || flooded || from === s.backup
        ? undefined
        : { key, parent, delivered: from === parent || announcers?.has(parent) === true }
  }

  /** True while our parent for `source` has shown nothing of its message `key` (copy or announce). */
  awaiting(topic: Topic, source: number, key: string): boolean {
    const w = this.topics.get(topic)?.get(source)?.watch
    return w !== undefined && w.key === key && !w.delivered
  }

  /**
   * Our parent for `source` still showed nothing of message `key`, which came from elsewhere a
   * while ago: it is settled as a miss now rather than at the source's next message (whose
   * copy would take the same silent path). True when the parent changed.
   */
  overdue(topic: Topic, source: number, key: string): boolean {
    const s = this.topics.get(topic)?.get(source)
    if (s === undefined || s.watch?.key !== key || s.watch.delivered) return false
    const parent = s.parent
    this.settle(topic, source, s)
    return s.parent !== parent
  }

  /**
   * Stops watching the source's last message: a parent that showed nothing of it is passed
   * over for {@link PASS_OVER_MS} as a parent of every source of the topic (a withholding
   * parent costs its children a pull's delay once, then nothing). A
   * silent relay withholds every source's messages, and with trees for every member most
   * sources publish about once: passed over per source, each of their messages paid the pull
   * (20% silent relays, random honest publishers, 1,000 simulated nodes: p99 2.71× the honest
   * run's; topic-wide 2.12×).
   */
  private settle(topic: Topic, source: number, s: SourceState): void {
    const w = s.watch
    if (w === undefined) return
    s.watch = undefined
    if (w.delivered) return
    let passed = this.passedOver.get(topic)
    if (passed === undefined) {
      passed = new Map()
      this.passedOver.set(topic, passed)
    }
    passed.set(w.parent, this.host.now() + PASS_OVER_MS)
    this.host.passedOver(topic, w.parent)
    for (const [other, t] of this.topics.get(topic) ?? []) {
      if (other === source || t.parent === w.parent || t.backup === w.parent) {
        this.recompute(topic, other, t)
      }
    }
  }

  /** A later copy or an announce of message `key` of `source` came from `from` (our parent's counts). */
  copy(topic: Topic, source: number, key: string, from: PeerKey): void {
    const w = this.topics.get(topic)?.get(source)?.watch
    if (w !== undefined && w.key === key && w.parent === from) w.delivered = true
  }

  /**
   * The entries to send now, per mesh peer of `topic`: every entry a new mesh peer has not
   * had (once a heartbeat saw it in the mesh), and of the others those whose distance moved
   * past the hysteresis or whose parent bit for that peer changed, within each peer's send
   * credit: a change a peer has no credit for stays pending for a later call. Unless `all`, a
   * finite distance that moved (or a source's first entry to that peer) stays pending too: the
   * parent bit decides who pushes to whom, and an entry that became unreachable or reachable
   * again makes children re-choose, so those go at once, while a distance refines a choice
   * and, while trees form, is refined again a few hops later (the caller sends `all` at a
   * slower pace). What is returned counts as sent. Only `eligible` peers (those that speak
   * source trees) are sent anything; the others get the whole table once they are.
   */
  outgoing(
    topic: Topic,
    eligible: (peer: PeerKey) => boolean,
    all: boolean,
  ): Map<PeerKey, DistanceEntry[]> {
    const out = new Map<PeerKey, DistanceEntry[]>()
    const table = this.topics.get(topic)
    const mesh = this.host.meshOf(topic)
    if (table === undefined || mesh === undefined) return out
    let told = this.told.get(topic)
    if (told === undefined) {
      told = new Set()
      this.told.set(topic, told)
    }
    const fresh = [...mesh].filter((p) => this.awaitsTable(topic, p) && eligible(p))
    const known = [...mesh].filter((p) => told.has(p) && eligible(p))
    const now = this.host.now()
    const dirty = this.dirty.get(topic)
    /** Adds the entry for `peer` if it is news to it; false when it is but out of credit. */
    const add = (peer: PeerKey, source: number, s: SourceState, force: boolean): boolean => {
      const advertised = s.distanceMs + this.host.sendMs(topic)
      const parent = s.parent === peer || s.backup === peer
      const last = s.sent.get(peer)
      if (
        !force &&
        last !== undefined &&
        last.parent === parent &&
        !moved(last.distanceMs, advertised)
      ) {
        return true
      }
      // Nothing known and nothing said yet: there is nothing to tell.
      if (last === undefined && !Number.isFinite(advertised) && !parent) return true
      // A finite distance that moved, the parent bit as before, waits for the slower pace; a
      // path found again after none goes at once (children may have re-chosen meanwhile).
      const refined =
        parent === (last?.parent ?? false) &&
        Number.isFinite(advertised) &&
        (last === undefined || Number.isFinite(last.distanceMs))
      if (!force && !all && refined) return false
      // A changed entry waits for credit; a new peer's whole table goes at once (below).
      if (!force && !this.creditOf(peer, now).tryTake(1, now)) return false
      s.sent.set(peer, { distanceMs: advertised, parent })
      let list = out.get(peer)
      if (list === undefined) {
        list = []
        out.set(peer, list)
      }
      list.push({ source, distanceMs: advertised, parent })
      return true
    }
    if (dirty !== undefined) {
      for (const source of dirty) {
        const s = table.get(source)
        let done = true
        if (s !== undefined) for (const p of known) done = add(p, source, s, false) && done
        if (done) dirty.delete(source)
      }
    }
    for (const p of fresh) {
      told.add(p)
      for (const [source, s] of table) add(p, source, s, true)
      this.creditOf(p, now).spend(out.get(p)?.length ?? 0, now)
    }
    return out
  }

  /** `peer`'s send credit (full when first asked). */
  private creditOf(peer: PeerKey, now: number): TokenBucket {
    let c = this.credit.get(peer)
    if (c === undefined) {
      c = new TokenBucket(this.sendRate.perSecond, this.sendRate.burst, now)
      this.credit.set(peer, c)
    }
    return c
  }

  /** True when {@link outgoing} may have something to send for `topic`. */
  pending(topic: Topic): boolean {
    if ((this.dirty.get(topic)?.size ?? 0) > 0) return true
    const mesh = this.host.meshOf(topic)
    if (mesh === undefined || !this.topics.has(topic)) return false
    for (const p of mesh) if (this.awaitsTable(topic, p)) return true
    return false
  }

  /** True when mesh peer `peer` counts (a heartbeat saw it) and has not had our table of `topic`. */
  private awaitsTable(topic: Topic, peer: PeerKey): boolean {
    return this.told.get(topic)?.has(peer) !== true && this.meshSeen.get(topic)?.has(peer) === true
  }

  /**
   * Heartbeat: the mesh of each of `topics` (those we subscribe to) is taken as it is now, so
   * its new peers count (their offers are taken, they are sent our table); entries held down
   * past their time take a lower distance again.
   */
  heartbeat(topics: Iterable<Topic>): void {
    const now = this.host.now()
    for (const topic of topics) {
      const mesh = this.host.meshOf(topic) ?? new Set<PeerKey>()
      const before = this.meshSeen.get(topic)
      const joined = [...mesh].filter((p) => before?.has(p) !== true)
      this.meshSeen.set(topic, new Set(mesh))
      const table = this.topics.get(topic)
      if (table === undefined) continue
      // Peers whose pass-over ended offer paths again, like peers new in the mesh.
      const passed = this.passedOver.get(topic) ?? new Map<PeerKey, number>()
      for (const [p, until] of passed) {
        if (until > now) continue
        passed.delete(p)
        joined.push(p)
      }
      for (const [source, s] of table) {
        const held = s.holdUntil > 0 && s.holdUntil <= now
        if (held) s.holdUntil = 0
        if (held || joined.some((p) => s.peers.has(p))) this.recompute(topic, source, s)
      }
    }
  }

  /** `peer` disconnected: its entries go, in every topic. */
  forget(peer: PeerKey): void {
    this.credit.delete(peer)
    for (const topic of this.topics.keys()) this.left(topic, peer)
    for (const seen of this.meshSeen.values()) seen.delete(peer)
  }

  /** `peer` left the mesh of `topic`: its entries are dropped and parents re-chosen at once. */
  left(topic: Topic, peer: PeerKey): void {
    this.told.get(topic)?.delete(peer)
    this.meshSeen.get(topic)?.delete(peer)
    const table = this.topics.get(topic)
    if (table === undefined) return
    for (const [source, s] of table) {
      s.sent.delete(peer)
      if (s.peers.delete(peer) || s.parent === peer || s.backup === peer) {
        this.recompute(topic, source, s)
      }
    }
  }

  /** We left `topic`. */
  clearTopic(topic: Topic): void {
    this.topics.delete(topic)
    this.unconfirmed.delete(topic)
    this.dirty.delete(topic)
    this.told.delete(topic)
    this.meshSeen.delete(topic)
    this.passedOver.delete(topic)
  }

  /**
   * The entry of `source`, started if new and there is room. `confirm`: one of its messages
   * reached us (or it told us its seed), so the entry is never evicted; at the cap a new
   * entry takes the place of the oldest one that only peers named, if any.
   */
  private state(topic: Topic, source: number, confirm: boolean): SourceState | undefined {
    let table = this.topics.get(topic)
    if (table === undefined) {
      table = new Map()
      this.topics.set(topic, table)
    }
    let unconfirmed = this.unconfirmed.get(topic)
    if (unconfirmed === undefined) {
      unconfirmed = new Set()
      this.unconfirmed.set(topic, unconfirmed)
    }
    let s = table.get(source)
    if (s !== undefined) {
      if (confirm && !s.confirmed) {
        s.confirmed = true
        unconfirmed.delete(source)
      }
      return s
    }
    if (table.size >= this.maxSources) {
      const oldest = unconfirmed.values().next()
      if (oldest.done === true) return undefined
      unconfirmed.delete(oldest.value)
      table.delete(oldest.value)
      this.dirty.get(topic)?.delete(oldest.value)
    }
    s = {
      distanceMs: Number.POSITIVE_INFINITY,
      parent: undefined,
      backup: undefined,
      floodMs: Number.POSITIVE_INFINITY,
      waitMs: 0,
      peers: new Map(),
      sent: new Map(),
      holdUntil: 0,
      confirmed: confirm,
      watch: undefined,
    }
    table.set(source, s)
    if (!confirm) unconfirmed.add(source)
    return s
  }

  /**
   * What `peer`'s last entry offers as a path to the source: its distance plus the link's
   * latency (before our validation), or undefined when it offers none.
   */
  private offer(
    topic: Topic,
    s: SourceState,
    peer: PeerKey,
    mesh: ReadonlySet<PeerKey> | undefined,
  ): number | undefined {
    const e = s.peers.get(peer)
    if (e === undefined) return undefined
    // Poison reverse: a peer that takes the source through us offers no path to it.
    if (e.namesUs || !Number.isFinite(e.distanceMs) || mesh?.has(peer) !== true) return undefined
    if (this.meshSeen.get(topic)?.has(peer) !== true) return undefined
    if (this.passedOver.get(topic)?.has(peer) === true) return undefined
    const lat = this.host.latencyMs(peer)
    return lat === undefined ? undefined : e.distanceMs + lat
  }

  /** Bellman-Ford step for one source: the least of the seed and each usable peer's offer. */
  private recompute(topic: Topic, source: number, s: SourceState): void {
    const v = this.host.validationMs(topic)
    let best = s.floodMs + v
    let parent: PeerKey | typeof FROM_SOURCE | undefined = Number.isFinite(best)
      ? FROM_SOURCE
      : undefined
    const mesh = this.host.meshOf(topic)
    // The runner-up among the peers' offers (the seed is never a backup: it is the flood).
    let second = Number.POSITIVE_INFINITY
    let runnerUp: PeerKey | undefined
    for (const p of s.peers.keys()) {
      const offer = this.offer(topic, s, p, mesh)
      if (offer === undefined) continue
      const d = offer + v
      if (d < best) {
        if (parent !== undefined && parent !== FROM_SOURCE) {
          second = best
          runnerUp = parent
        }
        best = d
        parent = p
      } else if (d < second) {
        second = d
        runnerUp = p
      }
    }
    if (best > MAX_DISTANCE_MS) {
      best = Number.POSITIVE_INFINITY
      parent = undefined
    }
    // A second path about as fast is taken too: its copy is a duplicate unless the first
    // path stalls (a busy relay), which then costs the margin instead of a pull.
    const backup =
      this.backupMs > 0 &&
      runnerUp !== undefined &&
      parent !== undefined &&
      second - best <= this.backupMs
        ? runnerUp
        : undefined
    const now = this.host.now()
    // Hold-down: after a distance grew, a lower one (maybe an echo of the old path, counting
    // to infinity around a loop) is not taken until the hold expires. If the parent we hold
    // on to is gone meanwhile, we are unreachable until then (children re-choose at once).
    if (best < s.distanceMs && s.holdUntil > now) {
      const held = s.parent
      if (
        held === undefined ||
        held === FROM_SOURCE ||
        this.offer(topic, s, held, mesh) !== undefined
      ) {
        return
      }
      best = Number.POSITIVE_INFINITY
      parent = undefined
    }
    if (best > s.distanceMs) s.holdUntil = now + this.holdDownMs
    const held = parent === undefined ? undefined : backup
    if (best === s.distanceMs && parent === s.parent && held === s.backup) return
    s.distanceMs = best
    s.parent = parent
    s.backup = held
    let dirty = this.dirty.get(topic)
    if (dirty === undefined) {
      dirty = new Set()
      this.dirty.set(topic, dirty)
    }
    dirty.add(source)
  }
}

/** True when `now` differs from `before` past the resend hysteresis (or reachability changed). */
function moved(before: number, now: number): boolean {
  if (!Number.isFinite(before) || !Number.isFinite(now)) return before !== now
  return Math.abs(now - before) > Math.max(RESEND_MIN_MS, RESEND_SHARE * before)
}
