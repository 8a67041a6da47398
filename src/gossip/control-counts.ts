import type { ControlStats, StatsRecorder } from '../common/stats.ts'
import {
  announcedIdCount,
  idCount,
  type RpcControl,
  type RpcOneCopy,
  type RpcPrune,
} from './rpc-codec.ts'

/** The control kinds a gossip frame is counted by, as `stats().control` names them, by index. */
const KINDS: string[] = []

/** Lists the kind `name`; its index in {@link KINDS}. */
function kind(name: string): number {
  KINDS.push(name)
  return KINDS.length - 1
}

/** Each kind's index in {@link KINDS}, listed in the order above. */
const K = {
  IHAVE: kind('IHAVE'),
  IHAVE_IDS: kind('IHAVE ids'),
  IWANT: kind('IWANT'),
  IWANT_IDS: kind('IWANT ids'),
  IDONTWANT: kind('IDONTWANT'),
  IDONTWANT_IDS: kind('IDONTWANT ids'),
  GRAFT: kind('GRAFT'),
  PRUNE: kind('PRUNE'),
  PRUNE_PX: kind('PRUNE px peers'),
  CHOKE: kind('CHOKE'),
  UNCHOKE: kind('UNCHOKE'),
  ANNOUNCE: kind('ANNOUNCE'),
  ANNOUNCE_IDS: kind('ANNOUNCE ids'),
  INEED_IDS: kind('INEED ids'),
  PREAMBLE: kind('PREAMBLE'),
  IMRECEIVING_IDS: kind('IMRECEIVING ids'),
} as const

type Kind = number

/** Peers suggested in `prunes` (peer exchange). */
function pxPeers(prunes: RpcPrune[]): number {
  let n = 0
  for (let i = 0; i < prunes.length; i++) n += prunes[i].peers.length
  return n
}

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
    this.addEntries(K.ANNOUNCE, K.ANNOUNCE_IDS, sent, o.announce, announcedIdCount)
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
