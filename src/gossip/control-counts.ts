import type { ControlStats, StatsRecorder } from '../common/stats.ts'
import {
  idCount,
  type RpcAnnounce,
  type RpcControl,
  type RpcOneCopy,
  type RpcPrune,
} from './rpc-codec.ts'

/** The control kinds a gossip frame is counted by, as `stats().control` names them. */
const KINDS = [
  'IHAVE',
  'IHAVE ids',
  'IWANT',
  'IWANT ids',
  'IDONTWANT',
  'IDONTWANT ids',
  'GRAFT',
  'PRUNE',
  'PRUNE px peers',
  'CHOKE',
  'UNCHOKE',
  'ANNOUNCE',
  'ANNOUNCE ids',
  'INEED ids',
  'PREAMBLE',
  'IMRECEIVING ids',
] as const

/** Each kind's index in {@link KINDS}. */
const K = {
  IHAVE: 0,
  IHAVE_IDS: 1,
  IWANT: 2,
  IWANT_IDS: 3,
  IDONTWANT: 4,
  IDONTWANT_IDS: 5,
  GRAFT: 6,
  PRUNE: 7,
  PRUNE_PX: 8,
  CHOKE: 9,
  UNCHOKE: 10,
  ANNOUNCE: 11,
  ANNOUNCE_IDS: 12,
  INEED_IDS: 13,
  PREAMBLE: 14,
  IMRECEIVING_IDS: 15,
} as const

type Kind = (typeof K)[keyof typeof K]

/** The sum of `size` over `items` (no array made, as `map` then a sum would). */
function sumOf<T>(items: T[], size: (item: T) => number): number {
  let n = 0
  for (const item of items) n += size(item)
  return n
}

/** Peers suggested in `prunes` (peer exchange); module-level, not a closure per frame. */
const pxPeers = (prunes: RpcPrune[]): number => sumOf(prunes, (p) => p.peers.length)

/** Short ids in `announces`. */
const announcedIds = (announces: RpcAnnounce[]): number => sumOf(announces, (a) => a.ids.length)

/**
 * Counts every sent and received frame's control messages by kind into a node's
 * {@link StatsRecorder}. Runs for every frame: each kind's counter is looked up in the
 * recorder once, when first counted (as before, so `stats().control` lists the same kinds in
 * the same order), then kept here, not looked up by name per frame.
 */
export class ControlCounts {
  private readonly recorder: StatsRecorder
  private readonly counters: (ControlStats | undefined)[] = new Array(KINDS.length)

  constructor(recorder: StatsRecorder) {
    this.recorder = recorder
  }

  /** Counts the control part of a frame. */
  control(c: RpcControl | undefined, sent: boolean): void {
    if (c === undefined) return
    this.addEntries(K.IHAVE, K.IHAVE_IDS, sent, c.ihave, idCount)
    this.addEntries(K.IWANT, K.IWANT_IDS, sent, c.iwant, idCount)
    this.addEntries(K.IDONTWANT, K.IDONTWANT_IDS, sent, c.idontwant, idCount)
    this.add(K.GRAFT, sent, c.graft.length)
    this.addEntries(K.PRUNE, K.PRUNE_PX, sent, c.prune, pxPeers)
  }

  /** Counts the one-copy part of a frame. */
  oneCopy(o: RpcOneCopy | undefined, sent: boolean): void {
    if (o === undefined) return
    this.add(K.CHOKE, sent, o.choke.length)
    this.add(K.UNCHOKE, sent, o.unchoke.length)
    this.addEntries(K.ANNOUNCE, K.ANNOUNCE_IDS, sent, o.announce, announcedIds)
    this.add(K.INEED_IDS, sent, o.ineed.length)
    this.add(K.PREAMBLE, sent, o.preamble?.length ?? 0)
    this.add(K.IMRECEIVING_IDS, sent, o.imreceiving?.length ?? 0)
  }

  /** Counts `entries` as `kind` and, when there are some, what `inner` counts in them as `innerKind`. */
  private addEntries<E>(
    kind: Kind,
    innerKind: Kind,
    sent: boolean,
    entries: E[],
    inner: (entries: E[]) => number,
  ): void {
    if (entries.length === 0) return
    this.add(kind, sent, entries.length)
    this.add(innerKind, sent, inner(entries))
  }

  /** Adds `n` messages of `kind` (nothing when `n` is 0: the kind is not listed until it occurs). */
  private add(kind: Kind, sent: boolean, n: number): void {
    if (n === 0) return
    let counter = this.counters[kind]
    if (counter === undefined) {
      counter = this.recorder.controlStats(KINDS[kind])
      this.counters[kind] = counter
    }
    if (sent) counter.sent += n
    else counter.received += n
  }
}
