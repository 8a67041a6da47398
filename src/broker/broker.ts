import type { KeyObject } from 'node:crypto'
import type { PeerKey } from '../common/artifact.ts'
import { CoreBase } from '../common/core-base.ts'
import type { RejectedEvent } from '../common/dissemination.ts'
import type { Env, ProtocolCore, TimerHandle } from '../common/env.ts'
import { InvalidParametersError } from '../common/errors.ts'
import { messageIdKey } from '../common/message-id.ts'
import {
  type BlsDecodedShare,
  blsAggregateShares,
  blsDecodeShare,
  blsSumShares,
} from '../crypto/bls.ts'
import { importEd25519PublicKey, verifyEd25519Prepared } from '../crypto/ed25519.ts'
import { MerkleTree } from '../crypto/merkle.ts'
import { AuthQueue } from './auth-queue.ts'
import { InlineAuthenticator, type SubmissionAuthenticator } from './authenticator.ts'
import type { HeightCertificate, Shard } from './certificate.ts'
import { DeferralLedger } from './deferral.ts'
import type { Directory } from './directory.ts'
import { batchDigest, encodeDistilledBatch, type Straggler } from './distilled-batch.ts'
import { batchLeaves } from './leaf.ts'
import { OffenderTable, type Source, sourceOf } from './offenders.ts'
import type { BatchReference } from './orderer.ts'
import { type BrokerLimits, brokerLimits, faultsTolerated } from './params.ts'
import { bytesEqual, MAX_SENDERS, ReplayFilter, type SeenSubmission } from './replay-filter.ts'
import { batchRootInput, deliveryInput, witnessInput } from './signing.ts'
import {
  decodeShardFrame,
  decodeShare,
  decodeSubmission,
  encodeBrokerHello,
  encodeDelivered,
  encodeInclusion,
  encodeWitnessRequest,
  FrameKind,
  frameKind,
  type InclusionProof,
  type Submission,
} from './wire.ts'

/** Options of a {@link Broker}. */
export interface BrokerOptions {
  /** The client directory. */
  directory: Directory
  /** Peer keys of the servers, by server index (the driver maps them to links). */
  servers: readonly PeerKey[]
  /** Raw ed25519 public keys of the servers, by index. */
  serverKeys: readonly Uint8Array[]
  /** Called with each batch reference once f+1 servers witnessed it: hand it to the orderer. */
  onWitnessed: (reference: BatchReference) => void
  /** Decoder limits (`maxBatchEntries` is also the pool size that triggers a flush). */
  limits?: Partial<BrokerLimits>
  /** Flush the pool this long after its first entry, even if not full. Default 1,000 ms. */
  flushTimeoutMs?: number
  /** Entries per Merkle leaf. Default 8 (1 gives one leaf per entry). */
  entriesPerLeaf?: number
  /** How long clients have to return their BLS share (from the last inclusion proof handed out) before becoming stragglers. Default 500 ms. */
  shareTimeoutMs?: number
  /** Ask the other servers to witness when f+1 shards did not come in this time. Default 1,000 ms. */
  witnessTimeoutMs?: number
  /** A batch without a delivery certificate this long after its flush is abandoned (its clients retransmit). Default 10,000 ms. */
  batchTimeoutMs?: number
  /** Batches between flush and delivery certificate at once; the pool waits beyond. Default 4. */
  maxInFlightBatches?: number
  /** Submissions authenticated together. Default 1,024. */
  authBurst?: number
  /** Bursts being authenticated at once (an asynchronous authenticator spreads them over threads). Default 4. */
  authConcurrency?: number
  /** Longest wait before a partial burst is authenticated. Default 2 ms. */
  authDelayMs?: number
  /**
   * Submissions waiting for authentication, per class (known clients; everyone else);
   * beyond, they are dropped and counted (clients retransmit). Default 65,536.
   */
  maxAuthQueue?: number
  /** Share of each authentication burst reserved for known clients with a clean record. Default 0.75. */
  knownAuthShare?: number
  /** Recently seen submissions remembered, so copies skip the signature check (each holds its payload and signature). Default 131,072: both authentication classes full. */
  maxReplayFilter?: number
  /**
   * Copies of one submission from one address closer together than this (or more than 3
   * from anywhere) are replays and penalised. Clients must retransmit less often. Default 100 ms.
   */
  minRetransmitMs?: number
  /**
   * A client's replies go to its bound address (the last that returned a good share for
   * it) unless that address has been silent this long and did not send the submission
   * answered. Default 2,000 ms.
   */
  rebindAfterMs?: number
  /** Source addresses (and prefixes) whose penalties are tracked. Default 4,096. */
  maxOffenders?: number
  /** How long a banned source stays banned. Default 60,000 ms. */
  banMs?: number
  /** Recently delivered submissions remembered to answer retransmissions. Default 131,072. */
  maxDeliveredCache?: number
  /** Penalties (per source address, halving every minute) after which it is banned: its frames are dropped unread. Default 256. */
  banThreshold?: number
  /** Datagrams (proofs, certificates) sent before yielding to the event loop. Default 4,096. */
  sendChunk?: number
  /** Who checks submission signatures. Default: inline, with node:crypto. */
  authenticator?: SubmissionAuthenticator
  /**
   * Pool submissions before checking their ed25519 signature, and check only those of
   * entries that end without a good BLS share (stragglers): every other entry is
   * authenticated by the batch's aggregate (see the README, "Deferred authentication").
   * false checks every submission first (the one-by-one path). Default true.
   */
  deferAuthentication?: boolean
  /** Unchecked entries a network prefix (/24, /64) may have in the broker before any of its entries is proven. Default 4,096. */
  deferBase?: number
  /** Most unchecked entries of one prefix, however many it proved. Default 4 × `limits.maxBatchEntries`. */
  maxDeferred?: number
  /** Aggregate verifications spent bisecting a batch's bad shares; the signers left are checked by ed25519 instead. Default 64. */
  maxShareVerifications?: number
}

/** Counters specific to the broker. */
export interface BrokerCounters {
  /** SUBMIT frames received (from sources not banned; first transmissions and copies). */
  submissionsReceived: number
  /** SHARE frames received (from sources not banned). */
  sharesReceived: number
  /** Submissions whose signature verified (checked one by one, before pooling). */
  authenticated: number
  /** Submissions pooled without a signature check (deferred authentication). */
  deferred: number
  /** Of those, entries proven by a good BLS share on their batch root. */
  provenByShare: number
  /**
   * Of those, entries whose signature was checked after all: stragglers, and every entry
   * still unchecked in a batch found carrying a forgery.
   */
  deferredChecks: number
  /** Deferred entries found forged (bad signature, no good share): dropped, sender penalised. */
  forged: number
  /** Submissions checked one by one because another submission for the same id was held unchecked. */
  contested: number
  /** Batches rebuilt without their forged entries (before any server saw them). */
  redistilled: number
  /**
   * Datagrams the UDP driver received and dropped because their source's share of the queue to the core
   * was over its budget (reported by the driver; by source in {@link Broker.overflowBySource}).
   */
  udpOverflow: number
  /** Submissions added to the pool. */
  pooled: number
  /** Submissions dropped because the authentication queue was full. */
  authQueueFull: number
  /** Of those, submissions of known clients (their reserved class full). */
  authQueueFullKnown: number
  /** Copies of submissions already queued or authenticated, handled without a signature check. */
  copies: number
  /** Of those, copies refused as replays (and penalised). */
  replays: number
  /** Sources (addresses or prefixes) banned. */
  bans: number
  /** Queued submissions discarded because their source was banned meanwhile. */
  discardedBanned: number
  /** Submissions above the certified height + 1 (dropped; penalised when far above). */
  sequenceAhead: number
  /** Submissions dropped because the pool was full and batches were in flight. */
  poolFull: number
  /** Retransmissions answered from a batch in flight or from the delivered cache. */
  retransmissionsAnswered: number
  /** Frames dropped unread because their source was banned. */
  banned: number
  /** Batches flushed. */
  batches: number
  /** Entries that ended up as stragglers. */
  stragglers: number
  /** BLS shares found bad by bisection. */
  badShares: number
  /** Batches abandoned without a delivery certificate. */
  abandoned: number
  /** Batches witnessed by f+1 servers. */
  witnessed: number
  /** Batches with a delivery certificate. */
  certified: number
  /** Entries in certified batches. */
  certifiedEntries: number
  /** Bytes of distilled batch frames sent to ONE server. */
  batchBytes: number
}

/** Events of a {@link Broker}. */
export interface BrokerEvents {
  /** A distilled batch was sent to the servers. */
  batch: { batchNumber: number; entries: number; stragglers: number; bytes: number }
  /** A batch got its delivery certificate. */
  certified: { batchNumber: number; slot: number; entries: number }
  /** Input was refused and counted against its sender. */
  rejected: RejectedEvent
  /** A source (address, or prefix once the offender table is full) was banned. */
  banned: { source: string; score: number; untilMs: number }
}

/**
 * Slots a client may be ahead of this broker's certified height without a penalty: it may
 * have learnt them from another broker's certificates a moment before this broker did.
 */
const HEIGHT_LAG = 16

/** Rebuilds of one batch's entries after forgeries were found (the last checks them all). */
const MAX_REBUILDS = 2

/** Slots whose delivery shards are collected at once to learn the height (the highest kept). */
const MAX_HEIGHT_CANDIDATES = 64

interface PoolEntry {
  /** Where the submission came from (replies go to the client's bound address instead). */
  peer: PeerKey
  submission: Submission
  source: Source
  seen: SeenSubmission
  /** Its ed25519 signature verified. */
  verified: boolean
  /** Pooled unchecked, holding a unit of its prefix's deferral allowance until settled. */
  deferred: boolean
}

/**
 * Where a client's replies go: the sender of its latest good BLS share (a fresh signature
 * on a root only this broker handed out, so that address has the client's key).
 */
interface ClientAddress {
  peer: PeerKey
  address: string
  sequence: number
  /** When this peer last sent a submission or share of the client. */
  heardAt: number
}

/** Sources whose driver-reported overflow is kept apart; the rest count under "other". */
const MAX_OVERFLOW_SOURCES = 1024

interface InFlight {
  number: number
  entries: PoolEntry[]
  ids: Uint32Array
  raise: number
  leaves: Uint8Array[]
  tree: MerkleTree
  root: Uint8Array
  entriesPerLeaf: number
  height: HeightCertificate
  /** Shares decoded on arrival (spreads the decoding over the share phase); null = undecodable. */
  shares: (BlsDecodedShare | null | undefined)[]
  /** Who sent each counted share, when it was one of the entry's reply peers (it binds there if good). */
  sharePeers: (PeerKey | undefined)[]
  shareCount: number
  /** Running sums of decoded shares, in chunks, so aggregating at the end costs little. */
  shareSums: BlsDecodedShare[]
  unsummed: BlsDecodedShare[]
  phase: 'shares' | 'proving' | 'witness' | 'ordering' | 'done'
  timer?: TimerHandle
  expiry?: TimerHandle
  digest?: Uint8Array
  witnesses: Map<number, Uint8Array>
  /** Times these entries were rebuilt into a new batch after a forgery was found. */
  rebuilds: number
  deliveries: Map<number, Map<number, Uint8Array>>
  /** The inclusion frames of the leaf last encoded, with and without the height certificate. */
  lastFrames: { leafIndex: number; withHeight?: Uint8Array; without?: Uint8Array }
}

/** A certified batch, kept while the delivered cache still points into it. */
interface Certified {
  batch: InFlight
  slot: number
  shards: Shard[]
  /** The delivery frame of the leaf last encoded. */
  lastLeaf: number
  lastFrame?: Uint8Array
}

/** Enough to re-send a client its delivery certificate (encoded on demand, not kept). */
interface DeliveredRecord {
  sequence: number
  payload: Uint8Array
  certified: Certified
  index: number
}

/**
 * A Chop Chop broker (sans-IO): authenticates client submissions in bursts, pools one
 * entry per client, distills the pool into a batch (sorted ids, raised sequence numbers,
 * a Merkle tree, BLS shares aggregated with bisection, stragglers), has f+1 servers
 * witness it, hands the reference to the orderer, and returns delivery certificates.
 */
export class Broker extends CoreBase<BrokerEvents> implements ProtocolCore {
  private readonly opts: BrokerOptions
  private readonly limits: BrokerLimits
  private readonly serverKeys: KeyObject[]
  private readonly serverIndex = new Map<PeerKey, number>()
  private readonly threshold: number
  private readonly authenticator: SubmissionAuthenticator
  private readonly authQueue: AuthQueue<PoolEntry>
  private readonly replay: ReplayFilter
  private readonly offenders: OffenderTable
  private readonly deferral: DeferralLedger
  private readonly clientAddress = new Map<number, ClientAddress>()
  private readonly overflowed = new Map<string, number>()
  private readonly sources = new Map<PeerKey, Source>()
  private authTimer?: TimerHandle
  private authPending = 0
  private pool = new Map<number, PoolEntry>()
  private flushTimer?: TimerHandle
  private readonly inFlight = new Map<string, InFlight>()
  private readonly inFlightById = new Map<number, InFlight>()
  private readonly delivered = new Map<number, DeliveredRecord>()
  private height: HeightCertificate = { slot: 0, shards: [] }
  /** Delivery shards of other brokers' batches (servers send them to every broker), by slot. */
  private readonly heightCandidates = new Map<
    number,
    { root: Uint8Array; shards: Map<number, Uint8Array> }
  >()
  private batchNumber = 0
  private readonly counters: BrokerCounters = {
    submissionsReceived: 0,
    sharesReceived: 0,
    authenticated: 0,
    deferred: 0,
    provenByShare: 0,
    deferredChecks: 0,
    forged: 0,
    contested: 0,
    redistilled: 0,
    udpOverflow: 0,
    pooled: 0,
    sequenceAhead: 0,
    authQueueFull: 0,
    authQueueFullKnown: 0,
    copies: 0,
    replays: 0,
    bans: 0,
    discardedBanned: 0,
    poolFull: 0,
    retransmissionsAnswered: 0,
    banned: 0,
    batches: 0,
    stragglers: 0,
    badShares: 0,
    abandoned: 0,
    witnessed: 0,
    certified: 0,
    certifiedEntries: 0,
    batchBytes: 0,
  }

  constructor(env: Env, opts: BrokerOptions) {
    super(env, 'consensus-multicast:broker:broker')
    this.opts = opts
    this.limits = brokerLimits(opts.limits)
    if (opts.servers.length !== opts.serverKeys.length || opts.servers.length === 0) {
      throw new InvalidParametersError('servers and serverKeys must be non-empty and match')
    }
    const perLeaf = opts.entriesPerLeaf ?? 8
    if (perLeaf < 1 || perLeaf > this.limits.maxEntriesPerLeaf) {
      throw new InvalidParametersError(
        `entriesPerLeaf must be in 1..${this.limits.maxEntriesPerLeaf}`,
      )
    }
    this.serverKeys = opts.serverKeys.map((k, i) => {
      const key = importEd25519PublicKey(k)
      if (key === undefined) throw new InvalidParametersError(`server key ${i} is malformed`)
      return key
    })
    for (const [i, p] of opts.servers.entries()) this.serverIndex.set(p, i)
    this.threshold = faultsTolerated(opts.servers.length) + 1
    this.authenticator = opts.authenticator ?? new InlineAuthenticator(opts.directory)
    const share = opts.knownAuthShare ?? 0.75
    if (!(share > 0 && share <= 1))
      throw new InvalidParametersError('knownAuthShare must be in (0, 1]')
    this.authQueue = new AuthQueue(opts.maxAuthQueue ?? 65_536, share)
    this.replay = new ReplayFilter(opts.maxReplayFilter ?? 131_072)
    this.offenders = new OffenderTable({
      capacity: opts.maxOffenders,
      banThreshold: opts.banThreshold,
      banMs: opts.banMs,
    })
    this.deferral = new DeferralLedger({
      base: opts.deferBase ?? 4096,
      max: opts.maxDeferred ?? 4 * this.limits.maxBatchEntries,
      capacity: opts.maxOffenders ?? 4096,
    })
  }

  /** The decayed penalty score of a source address or prefix (what bans are decided on). */
  penaltiesOf(addressOrPrefix: string): number {
    return this.offenders.score(addressOrPrefix, this.env.now())
  }

  /** True when frames from `peer` ("host:port") are dropped unread now. */
  isBanned(peer: PeerKey): boolean {
    return this.offenders.isBanned(sourceOf(peer), this.env.now())
  }

  /** Submissions waiting for authentication. */
  get authQueueLength(): number {
    return this.authQueue.length
  }

  /** Broker counters. */
  counts(): BrokerCounters {
    return { ...this.counters }
  }

  /**
   * Called by the UDP driver: it dropped `count` datagrams, from a source this core banned
   * (`why` "banned": counted in `banned` as if dropped here), or from `source` (an address,
   * or "other") because the source's share of the UDP thread's queue to this core was full
   * (`udpOverflow`; not penalised: the budget is a queue's, not proof of an attack).
   */
  udpDropped(source: string, count: number, why: 'overflow' | 'banned' = 'overflow'): void {
    if (why === 'banned') {
      this.counters.banned += count
      return
    }
    this.counters.udpOverflow += count
    const key =
      this.overflowed.has(source) || this.overflowed.size < MAX_OVERFLOW_SOURCES ? source : 'other'
    this.overflowed.set(key, (this.overflowed.get(key) ?? 0) + count)
  }

  /** {@link BrokerCounters.udpOverflow} by source address (bounded; the rest under "other"). */
  overflowBySource(): Record<string, number> {
    return Object.fromEntries(this.overflowed)
  }

  /** The highest slot certified by f+1 servers that this broker knows. */
  get certifiedHeight(): number {
    return this.height.slot
  }

  /** Entries in the pool now. */
  get poolSize(): number {
    return this.pool.size
  }

  start(): void {
    this.running = true
    // Servers then send this broker every delivery shard (it learns the height from them).
    for (const server of this.opts.servers) this.sendTo(server, encodeBrokerHello())
  }

  stop(): void {
    this.running = false
    this.cancelTimers()
  }

  peerConnected(): void {}

  peerDisconnected(): void {}

  receive(peer: PeerKey, frame: Uint8Array): void {
    if (!this.running) return
    this.recorder.frameReceived(frame.length, 0)
    const source = this.sourceOf(peer)
    if (this.offenders.isBanned(source, this.env.now())) {
      // A source that kept sending bad input is not worth decoding (or verifying) any more.
      this.counters.banned++
      return
    }
    try {
      switch (frameKind(frame)) {
        case FrameKind.Submit:
          this.counters.submissionsReceived++
          this.onSubmission(peer, source, frame)
          return
        case FrameKind.Share:
          this.counters.sharesReceived++
          this.onShare(peer, frame)
          return
        case FrameKind.WitnessShard:
        case FrameKind.DeliveryShard:
          this.onShard(peer, frame)
          return
        default:
          this.penalise(peer, 'unknown-frame')
      }
    } catch (err) {
      this.log('malformed frame from %s: %s', peer, (err as Error).message)
      this.penalise(peer, 'malformed')
    }
  }

  /** Flushes the pool now (normally driven by size and timeout). */
  flush(): void {
    this.flushTimer?.cancel()
    this.flushTimer = undefined
    if (this.pool.size === 0) return
    if (this.inFlight.size >= (this.opts.maxInFlightBatches ?? 4)) return // retried on certification
    const entries = [...this.pool.values()].sort((a, b) => a.submission.id - b.submission.id)
    this.pool = new Map()
    this.distill(entries)
  }

  /** The source of a peer key, from a bounded cache (a flood is from few peers, so mostly hits). */
  private sourceOf(peer: PeerKey): Source {
    let s = this.sources.get(peer)
    if (s === undefined) {
      if (this.sources.size >= 4096) this.sources.clear()
      s = sourceOf(peer)
      this.sources.set(peer, s)
    }
    return s
  }

  /** Counts refused input against its source address too: enough of it bans the source. */
  protected override reject(peer: PeerKey, reason: string): void {
    super.reject(peer, reason)
    const now = this.env.now()
    const offence = this.offenders.offend(this.sourceOf(peer), now)
    if (offence?.banned !== true) return
    this.counters.bans++
    const untilMs = now + (this.opts.banMs ?? 60_000)
    this.log('banned %s (score %d) after %s', offence.key, offence.score, reason)
    this.events.emit('banned', { source: offence.key, score: offence.score, untilMs })
  }

  private onSubmission(peer: PeerKey, source: Source, frame: Uint8Array): void {
    // Copy: the driver may reuse its receive buffer.
    const submission = decodeSubmission(frame.slice(), this.limits)
    if (!this.opts.directory.has(submission.id)) {
      this.penalise(peer, 'unknown-client')
      return
    }
    if (submission.sequence > this.height.slot + 1) {
      // Beyond the certified height: the raise bound would refuse it (see HeightCertificate).
      // Just beyond is a client that learnt a slot this broker has not heard of yet (from
      // another broker): dropped, and it retransmits. Far beyond is penalised.
      this.counters.sequenceAhead++
      if (submission.sequence > this.height.slot + 1 + HEIGHT_LAG) {
        this.penalise(peer, 'sequence-ahead')
      }
      return
    }
    const now = this.env.now()
    const seen = this.replay.get(submission)
    if (seen !== undefined) {
      this.onCopy(peer, source, seen, now)
      return
    }
    const bound = this.clientAddress.get(submission.id)
    if (bound?.peer === peer) bound.heardAt = now
    // Deferred: pooled now, its signature checked only if no good share covers it. Never
    // for a sender with penalties, beyond its prefix's allowance, or for a message older
    // than its client's latest (no client sends one).
    const defer =
      this.opts.deferAuthentication !== false &&
      (bound === undefined || bound.sequence <= submission.sequence) &&
      this.offenders.score(source.address, now) < 1 &&
      this.deferral.take(source.prefix)
    const entry: PoolEntry = {
      peer,
      submission,
      source,
      seen: this.replay.add(submission, defer ? 'deferred' : 'queued', peer, source.address, now),
      verified: false,
      deferred: defer,
    }
    if (defer) {
      this.counters.deferred++
      this.admitUnchecked(entry)
    } else {
      this.enqueue(entry)
    }
  }

  /** Queues `entry` for its signature check (the one-by-one path). */
  private enqueue(entry: PoolEntry): void {
    const { submission, source } = entry
    const now = this.env.now()
    this.settle(entry, 'release')
    entry.seen.state = 'queued'
    // Known: the client's latest authenticated submission came from this address, which
    // has a clean record. Everyone else shares the rest of the authentication capacity.
    const fromBound = this.clientAddress.get(submission.id)?.address === source.address
    const known = fromBound && this.offenders.score(source.address, now) < 1
    const cls = known ? 'known' : 'open'
    if (!this.authQueue.push(cls, entry)) {
      // Counted, and forgotten by the filter: the client's retransmission recovers it.
      this.counters.authQueueFull++
      if (known) this.counters.authQueueFullKnown++
      this.replay.forget(submission)
      return
    }
    if (this.authQueue.length >= (this.opts.authBurst ?? 1024)) this.runAuth()
    else this.authTimer ??= this.later(this.opts.authDelayMs ?? 2, () => this.runAuth())
  }

  /**
   * A copy of a submission already queued or authenticated: no signature check. A client
   * retransmits only its latest message, at most every `minRetransmitMs`; a copy of an older
   * one, two copies closer than that from one address, or more than 3 from elsewhere than
   * the client's bound address, are replays, penalised. Otherwise its sender joins the
   * submission's senders (see {@link replyPeers}: which copy came first decides nothing, so
   * an on-path attacker racing the client, before or after it, takes none of its replies).
   * An authenticated copy is answered as a retransmission.
   */
  private onCopy(peer: PeerKey, source: Source, seen: SeenSubmission, now: number): void {
    this.counters.copies++
    if (seen.state === 'forged') {
      this.penalise(peer, 'bad-signature')
      return
    }
    if (now - seen.windowStart >= (this.opts.minRetransmitMs ?? 100)) {
      seen.windowStart = now
      seen.copies = 0
    }
    seen.copies++
    const sameAddress = seen.lastAddress === source.address
    seen.lastAddress = source.address
    const bound = this.clientAddress.get(seen.submission.id)
    const fromBound = bound?.address === source.address
    // A client never resends a message older than its latest: it moves on only once delivered.
    const old = bound !== undefined && bound.sequence > seen.submission.sequence
    if (old || (seen.copies > 1 && sameAddress) || (seen.copies > 3 && !fromBound)) {
      this.counters.replays++
      this.penalise(peer, 'replay')
      return
    }
    if (bound?.peer === peer) bound.heardAt = now
    // The latest distinct senders: a client whose copy came after several others' still gets in.
    if (!seen.senders.includes(peer)) {
      seen.senders.push(peer)
      if (seen.senders.length > MAX_SENDERS) seen.senders.shift()
    }
    if (seen.state === 'authenticated' || seen.state === 'deferred') {
      const verified = seen.state === 'authenticated'
      const copy = { peer, submission: seen.submission, source, seen, verified, deferred: false }
      this.admit(copy, false)
    }
  }

  /**
   * Settles the deferral unit `entry` holds, if any: `proven` (a good share or signature),
   * `forged`, or `release` (left without a verdict, or sent to the one-by-one check).
   */
  private settle(entry: PoolEntry, how: 'proven' | 'forged' | 'release'): void {
    if (!entry.deferred) return
    entry.deferred = false
    const prefix = entry.source.prefix
    if (how === 'proven') this.deferral.proven(prefix)
    else if (how === 'forged') this.deferral.forged(prefix)
    else this.deferral.release(prefix)
  }

  /**
   * Binds client `s.id` to `peer`, which returned a good BLS share on `s`'s batch root. A
   * signature check does not bind: it proves the submission, not who sent this copy of it.
   */
  private bindAddress(s: Submission, peer: PeerKey): void {
    const bound = this.clientAddress.get(s.id)
    if (bound !== undefined && bound.sequence > s.sequence) return // a share for an old one
    const address = this.sourceOf(peer).address
    this.clientAddress.set(s.id, { peer, address, sequence: s.sequence, heardAt: this.env.now() })
  }

  /**
   * Where replies for the client of `entry` go: its bound address when that address sent
   * this submission or spoke within `rebindAfterMs`; otherwise (a client not bound yet, or
   * whose address changed) the last {@link MAX_SENDERS} distinct senders of the
   * submission, and the first good share binds. Arrival order never decides: a
   * copy that an on-path attacker sends before or after its client's gets at most the
   * proof of a client not bound yet (public data), never its binding or its certificates
   * once bound.
   */
  private replyPeers(entry: PoolEntry): readonly PeerKey[] {
    const bound = this.clientAddress.get(entry.submission.id)
    const senders = entry.seen.senders
    if (
      bound !== undefined &&
      (senders.includes(bound.peer) ||
        this.env.now() - bound.heardAt < (this.opts.rebindAfterMs ?? 2000))
    ) {
      return [bound.peer]
    }
    return senders
  }

  /** Sends `frame` to every reply peer of `entry`. */
  private reply(entry: PoolEntry, frame: Uint8Array): void {
    for (const peer of this.replyPeers(entry)) this.sendTo(peer, frame)
  }

  /** Answers a copy from `entry.peer`: to it alone when it is a reply peer, else to them all. */
  private answer(entry: PoolEntry, frame: Uint8Array): void {
    if (this.replyPeers(entry).includes(entry.peer)) this.sendTo(entry.peer, frame)
    else this.reply(entry, frame)
  }

  private runAuth(): void {
    this.authTimer?.cancel()
    this.authTimer = undefined
    const burstSize = this.opts.authBurst ?? 1024
    while (this.authQueue.length > 0 && this.authPending < (this.opts.authConcurrency ?? 4)) {
      const now = this.env.now()
      const burst = this.authQueue.take(
        burstSize,
        (e) => !this.offenders.isBanned(e.source, now),
        (e) => {
          this.counters.discardedBanned++
          this.replay.forget(e.submission)
        },
      )
      if (burst.length === 0) continue
      const verdicts = this.authenticator.authenticate(burst.map((e) => e.submission))
      if (Array.isArray(verdicts)) {
        this.admitBurst(burst, verdicts)
        continue
      }
      this.authPending++
      verdicts.then(
        (v) => {
          this.authPending--
          if (!this.running) return
          this.admitBurst(burst, v)
          this.runAuth()
        },
        (err) => {
          this.authPending--
          this.log.error('authenticator failed: %e', err)
        },
      )
    }
  }

  private admitBurst(burst: PoolEntry[], verdicts: boolean[]): void {
    for (let i = 0; i < burst.length; i++) {
      const e = burst[i]
      if (!verdicts[i]) {
        e.seen.state = 'forged'
        this.penalise(e.peer, 'bad-signature')
        continue
      }
      e.seen.state = 'authenticated'
      e.verified = true
      this.counters.authenticated++
      this.admit(e, true)
    }
  }

  /**
   * Answers `entry` when it is a copy of a message delivered or in flight; returns true
   * when it was (nothing more to do with it).
   */
  private answered(entry: PoolEntry): boolean {
    const s = entry.submission
    const done = this.delivered.get(s.id)
    if (done !== undefined && done.sequence === s.sequence && bytesEqual(done.payload, s.payload)) {
      this.counters.retransmissionsAnswered++
      this.answer(entry, this.deliveredFrame(done.certified, done.index))
      return true
    }
    const flying = this.inFlightById.get(s.id)
    if (flying === undefined) return false
    const index = this.indexOf(flying, s.id)
    const mine = flying.entries[index].submission
    if (mine.sequence !== s.sequence || !bytesEqual(mine.payload, s.payload)) return false
    this.counters.retransmissionsAnswered++
    if (flying.phase === 'shares') this.answer(entry, this.inclusionFrame(flying, index))
    return true
  }

  /**
   * Pools a submission whose signature is not checked (deferred), unless another one for
   * its id is held (pooled, in flight, or delivered at this sequence or later): then it,
   * and the pooled one if unchecked, go to the one-by-one check, so a forged submission can
   * neither displace nor block its client's genuine one, and is found out at once.
   */
  private admitUnchecked(entry: PoolEntry): void {
    const s = entry.submission
    if (this.answered(entry)) {
      this.settle(entry, 'release')
      return
    }
    const pooled = this.pool.get(s.id)
    const done = this.delivered.get(s.id)
    const stale = done !== undefined && done.sequence >= s.sequence
    if (pooled !== undefined || stale || this.heldInFlight(s.id) !== undefined) {
      this.counters.contested++
      if (pooled !== undefined && !pooled.verified) {
        this.pool.delete(s.id)
        this.enqueue(pooled)
      }
      this.enqueue(entry)
      return
    }
    this.poolEntry(entry)
  }

  /** The entry of client `id` in a batch in flight, if any. */
  private heldInFlight(id: number): PoolEntry | undefined {
    const flying = this.inFlightById.get(id)
    return flying === undefined ? undefined : flying.entries[this.indexOf(flying, id)]
  }

  /** Handles a submission (checked, or a copy of a deferred one): new (`fresh`) or a copy. */
  private admit(entry: PoolEntry, fresh: boolean): void {
    const s = entry.submission
    if (this.answered(entry) || !entry.verified) return
    // One entry per client until its batch is certified, unless that one is unproven (not
    // checked, no good share yet): a checked submission never waits behind a possible forgery.
    const held = this.heldInFlight(s.id)
    if (held !== undefined && (held.verified || held.seen.state === 'authenticated')) return
    const pooled = this.pool.get(s.id)
    if (pooled !== undefined) {
      if (pooled.verified) return
      if (bytesEqual(pooled.submission.signature, s.signature)) {
        pooled.verified = true // the same submission, checked since it was pooled
        return
      }
      this.counters.contested++
      this.pool.delete(s.id)
      this.enqueue(pooled)
    }
    const done = this.delivered.get(s.id)
    if (!fresh && done !== undefined && done.sequence >= s.sequence) return // an old copy
    this.poolEntry(entry)
  }

  /** Adds `entry` to the pool (when there is room) and flushes when due. */
  private poolEntry(entry: PoolEntry): void {
    if (this.pool.size >= this.limits.maxBatchEntries) {
      this.counters.poolFull++
      this.settle(entry, 'release')
      this.replay.forget(entry.submission) // its retransmission is handled afresh
      return
    }
    this.pool.set(entry.submission.id, entry)
    this.counters.pooled++
    if (this.pool.size >= this.limits.maxBatchEntries) this.flush()
    else this.flushTimer ??= this.later(this.opts.flushTimeoutMs ?? 1000, () => this.flush())
  }

  private indexOf(b: InFlight, id: number): number {
    let lo = 0
    let hi = b.ids.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (b.ids[mid] === id) return mid
      if (b.ids[mid] < id) lo = mid + 1
      else hi = mid - 1
    }
    return -1
  }

  private distill(entries: PoolEntry[], rebuilds = 0): void {
    const perLeaf = this.opts.entriesPerLeaf ?? 8
    let raise = 0
    for (const e of entries) raise = Math.max(raise, e.submission.sequence)
    const ids = Uint32Array.from(entries, (e) => e.submission.id)
    const payloads = entries.map((e) => e.submission.payload)
    const leaves = batchLeaves(raise, ids, payloads, perLeaf)
    const tree = MerkleTree.build(leaves)
    const b: InFlight = {
      number: ++this.batchNumber,
      entries,
      ids,
      raise,
      leaves,
      tree,
      root: tree.root,
      entriesPerLeaf: perLeaf,
      height: this.height,
      shares: new Array(entries.length),
      sharePeers: new Array(entries.length),
      shareCount: 0,
      shareSums: [],
      unsummed: [],
      phase: 'shares',
      witnesses: new Map(),
      rebuilds,
      deliveries: new Map(),
      lastFrames: { leafIndex: -1 },
    }
    this.inFlight.set(messageIdKey(b.root), b)
    for (const e of entries) this.inFlightById.set(e.submission.id, b)
    // The share timeout runs from the last proof handed out, not from the flush: handing
    // out 65,536 proofs takes a while, and the clients of the last ones are not late.
    this.inChunks(
      entries.length,
      (i) => this.reply(entries[i], this.inclusionFrame(b, i)),
      () => {
        if (b.phase === 'shares') {
          b.timer = this.later(this.opts.shareTimeoutMs ?? 500, () => this.aggregate(b))
        }
      },
    )
    b.expiry = this.later(this.opts.batchTimeoutMs ?? 10_000, () => this.abandon(b))
  }

  private abandon(b: InFlight): void {
    if (b.phase === 'done') return
    this.log('abandoning batch %d in phase %s', b.number, b.phase)
    b.phase = 'done'
    for (const e of b.entries) this.settle(e, 'release')
    b.timer?.cancel()
    this.counters.abandoned++
    this.release(b)
    this.resumeFlushing()
  }

  private release(b: InFlight): void {
    this.inFlight.delete(messageIdKey(b.root))
    for (const e of b.entries) {
      if (this.inFlightById.get(e.submission.id) === b) this.inFlightById.delete(e.submission.id)
    }
  }

  private resumeFlushing(): void {
    if (this.pool.size === 0) return
    if (this.pool.size >= this.limits.maxBatchEntries) this.flush()
    else this.flushTimer ??= this.later(this.opts.flushTimeoutMs ?? 1000, () => this.flush())
  }

  private inclusionProof(b: InFlight, index: number): InclusionProof {
    const leafIndex = Math.floor(index / b.entriesPerLeaf)
    return {
      root: b.root,
      leafIndex,
      leafCount: b.tree.leafCount,
      leaf: b.leaves[leafIndex],
      proof: b.tree.proof(leafIndex),
    }
  }

  private inclusionFrame(b: InFlight, index: number): Uint8Array {
    // The client verified the delivery certificate of its previous message (it only moves
    // on after that): when that slot already bounds the raise, the certificate is left out.
    const known = this.delivered.get(b.ids[index])?.certified.slot ?? 0
    const withHeight = b.raise > known + 1
    // Every entry of a leaf gets the same frame: encoded once per leaf (and variant), as
    // proofs go out in index order.
    const leafIndex = Math.floor(index / b.entriesPerLeaf)
    const cache = b.lastFrames
    if (cache.leafIndex !== leafIndex) {
      cache.leafIndex = leafIndex
      cache.withHeight = undefined
      cache.without = undefined
    }
    if (withHeight) {
      cache.withHeight ??= encodeInclusion({ ...this.inclusionProof(b, index), height: b.height })
      return cache.withHeight
    }
    cache.without ??= encodeInclusion(this.inclusionProof(b, index))
    return cache.without
  }

  private onShare(peer: PeerKey, frame: Uint8Array): void {
    const share = decodeShare(frame, this.limits)
    const b = this.inFlight.get(messageIdKey(share.root))
    if (b === undefined) return // unknown or long done: dropped for the cost of a lookup
    const index = this.indexOf(b, share.id)
    if (index < 0) {
      this.penalise(peer, 'share-not-in-batch')
      return
    }
    const entry = b.entries[index]
    const fromClient = this.replyPeers(entry).includes(peer)
    const bound = this.clientAddress.get(share.id)
    if (bound?.peer === peer) bound.heardAt = this.env.now()
    if (b.phase !== 'shares' || b.shares[index] !== undefined) {
      // Late (the client is a straggler) or again (its retransmission was answered
      // again): fine from the client; nobody else has a reason to send it.
      if (!fromClient) this.penalise(peer, 'unsolicited-share')
      else if (
        b.sharePeers[index] === undefined &&
        bound?.peer !== peer &&
        entry.seen.senders.length > 1
      ) {
        // Its first share from one of several senders: checked alone, it binds (once per
        // entry; with one sender the replies find the client without a binding).
        if (this.shareChecks(b, peer, share)) {
          b.sharePeers[index] = peer
          this.bindAddress(entry.submission, peer)
        }
      }
      return
    }
    // Not from the client's address: a share counts by its signature, checked alone now,
    // so nobody can pre-empt a client's share with a bad one.
    if (!fromClient && !this.shareChecks(b, peer, share)) return
    const decoded = blsDecodeShare(share.signature)
    b.shares[index] = decoded ?? null
    if (fromClient) b.sharePeers[index] = peer
    b.shareCount++
    if (decoded !== undefined) {
      b.unsummed.push(decoded)
      if (b.unsummed.length >= 1024) b.shareSums.push(blsSumShares(b.unsummed.splice(0)))
    }
    if (b.shareCount === b.entries.length) {
      b.timer?.cancel()
      this.aggregate(b)
    }
  }

  /** Checks one share alone; a bad one is counted and penalised. */
  private shareChecks(
    b: InFlight,
    peer: PeerKey,
    share: { id: number; signature: Uint8Array },
  ): boolean {
    const check = blsAggregateShares(batchRootInput(b.root), [
      { publicKey: this.opts.directory.blsKey(share.id), signature: share.signature },
    ])
    if (check.bad.length === 0) return true
    this.counters.badShares++
    this.penalise(peer, 'bad-share')
    return false
  }

  /**
   * Ends the share phase: aggregates the shares (bisecting bad ones within
   * `maxShareVerifications`), then checks the ed25519 signature of every straggler pooled
   * unchecked. When one is forged, the batch is rebuilt without it (see `redistill`);
   * otherwise it goes to the servers.
   */
  private aggregate(b: InFlight): void {
    if (b.phase !== 'shares') return
    b.phase = 'proving'
    const { directory } = this.opts
    const withShare: number[] = []
    for (let i = 0; i < b.entries.length; i++) if (b.shares[i] !== undefined) withShare.push(i)
    if (b.unsummed.length > 0) b.shareSums.push(blsSumShares(b.unsummed.splice(0)))
    const result = blsAggregateShares(
      batchRootInput(b.root),
      withShare.map((i) => ({
        publicKey: directory.blsKey(b.ids[i]),
        // An undecodable share is passed as bytes that cannot decode, so it counts as bad.
        signature: b.shares[i] ?? new Uint8Array(0),
      })),
      {
        aggregateKeyParts: directory.aggregateKeyParts(withShare.map((i) => b.ids[i])),
        aggregate: b.shareSums.length > 0 ? blsSumShares(b.shareSums) : undefined,
        maxVerifications: this.opts.maxShareVerifications ?? 64,
      },
    )
    this.counters.badShares += result.bad.length
    for (const k of result.bad) this.penalise(b.entries[withShare[k]].peer, 'bad-share')
    const signer = new Uint8Array(b.entries.length)
    for (const k of result.good) {
      const e = b.entries[withShare[k]]
      signer[withShare[k]] = 1
      const by = b.sharePeers[withShare[k]]
      if (by !== undefined) this.bindAddress(e.submission, by)
      if (!e.deferred) continue
      this.counters.provenByShare++
      this.proven(e)
    }
    const stragglers: number[] = []
    for (let i = 0; i < b.entries.length; i++) if (signer[i] === 0) stragglers.push(i)
    const unchecked = stragglers.map((i) => b.entries[i]).filter((e) => !e.verified)
    this.check(unchecked, () => {
      if (b.phase !== 'proving') return
      if (unchecked.some((e) => !e.verified)) this.redistill(b)
      else this.send(b, result.aggregate, stragglers)
    })
  }

  /** An unchecked entry turned out genuine: its prefix earns allowance. */
  private proven(e: PoolEntry): void {
    this.settle(e, 'proven')
    if (e.seen.state === 'deferred') e.seen.state = 'authenticated'
  }

  /**
   * Checks the signatures of `entries` (spread over the authenticator's threads); marks the
   * genuine ones verified, and drops and penalises the forged ones; then calls `then`.
   */
  private check(entries: PoolEntry[], then: () => void): void {
    if (entries.length === 0) {
      then()
      return
    }
    this.counters.deferredChecks += entries.length
    const burst = this.opts.authBurst ?? 1024
    const parts: (boolean[] | Promise<boolean[]>)[] = []
    for (let i = 0; i < entries.length; i += burst) {
      parts.push(
        this.authenticator.authenticate(entries.slice(i, i + burst).map((e) => e.submission)),
      )
    }
    const apply = (verdicts: boolean[]) => {
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]
        if (verdicts[i]) {
          e.verified = true
          this.proven(e)
          continue
        }
        this.counters.forged++
        this.settle(e, 'forged')
        e.seen.state = 'forged'
        this.penalise(e.peer, 'bad-signature')
      }
      then()
    }
    if (parts.every((p) => Array.isArray(p))) {
      apply((parts as boolean[][]).flat())
      return
    }
    Promise.all(parts).then(
      (v) => {
        if (this.running) apply(v.flat())
      },
      (err) => this.log.error('authenticator failed: %e', err),
    )
  }

  /**
   * Rebuilds batch `b` without its forged entries, before any server saw it; its clients
   * co-sign the new root, and only the new stragglers still unchecked are checked then. A
   * second rebuild checks every entry still unchecked first (the one-by-one cost), so the
   * batch after it cannot hold a forged straggler: two rebuilds at most.
   */
  private redistill(b: InFlight): void {
    b.phase = 'done'
    b.timer?.cancel()
    b.expiry?.cancel()
    this.release(b)
    this.counters.redistilled++
    const rest = b.entries.filter((e) => e.seen.state !== 'forged')
    const last = b.rebuilds + 1 >= MAX_REBUILDS
    this.check(last ? rest.filter((e) => !e.verified) : [], () => {
      const genuine = rest.filter((e) => e.seen.state !== 'forged')
      if (genuine.length > 0) this.distill(genuine, b.rebuilds + 1)
      else this.resumeFlushing()
    })
  }

  /** Sends a proven batch to every server and asks f+1 of them to witness it. */
  private send(b: InFlight, aggregate: Uint8Array | undefined, stragglerIndices: number[]): void {
    b.phase = 'witness'
    const stragglers: Straggler[] = stragglerIndices.map((index) => {
      const s = b.entries[index].submission
      return { index, sequence: s.sequence, signature: s.signature }
    })
    this.counters.stragglers += stragglers.length
    const frame = encodeDistilledBatch({
      batchNumber: b.number,
      entriesPerLeaf: b.entriesPerLeaf,
      raise: b.raise,
      height: b.height,
      ids: b.ids,
      payloads: b.entries.map((e) => e.submission.payload),
      aggregate,
      stragglers,
    })
    b.digest = batchDigest(frame)
    this.counters.batches++
    this.counters.batchBytes += frame.length
    this.events.emit('batch', {
      batchNumber: b.number,
      entries: b.entries.length,
      stragglers: stragglers.length,
      bytes: frame.length,
    })
    for (const server of this.opts.servers) this.sendTo(server, frame)
    // Ask f+1 servers (rotating, to spread the verification work) to witness it.
    const n = this.opts.servers.length
    const request = encodeWitnessRequest(b.digest)
    const asked = new Set<number>()
    for (let k = 0; k < this.threshold; k++) asked.add((b.number + k) % n)
    for (const i of asked) this.sendTo(this.opts.servers[i], request)
    b.timer = this.later(this.opts.witnessTimeoutMs ?? 1000, () => {
      if (b.phase !== 'witness') return
      for (let i = 0; i < n; i++) if (!asked.has(i)) this.sendTo(this.opts.servers[i], request)
    })
  }

  private onShard(peer: PeerKey, frame: Uint8Array): void {
    const server = this.serverIndex.get(peer)
    if (server === undefined) {
      this.penalise(peer, 'shard-from-non-server')
      return
    }
    const f = decodeShardFrame(frame)
    if (f.shard.server !== server) {
      this.penalise(peer, 'shard-server-mismatch')
      return
    }
    if (f.digest !== undefined) this.onWitnessShard(peer, f.digest, f.shard)
    else this.onDeliveryShard(peer, f.slot!, f.root!, f.shard)
  }

  private onWitnessShard(peer: PeerKey, digest: Uint8Array, shard: Shard): void {
    let b: InFlight | undefined
    for (const x of this.inFlight.values()) if (x.digest && bytesEqual(x.digest, digest)) b = x
    if (b === undefined || b.phase !== 'witness') return
    if (
      !verifyEd25519Prepared(this.serverKeys[shard.server], witnessInput(digest), shard.signature)
    ) {
      this.penalise(peer, 'bad-witness-shard')
      return
    }
    b.witnesses.set(shard.server, shard.signature)
    if (b.witnesses.size < this.threshold) return
    b.phase = 'ordering'
    b.timer?.cancel()
    this.counters.witnessed++
    const witnesses = [...b.witnesses].map(([server, signature]) => ({ server, signature }))
    this.opts.onWitnessed({ digest, witnesses })
  }

  private onDeliveryShard(peer: PeerKey, slot: number, root: Uint8Array, shard: Shard): void {
    const b = this.inFlight.get(messageIdKey(root))
    if (b === undefined || b.phase !== 'ordering') {
      this.learnHeight(peer, slot, root, shard)
      return
    }
    if (!this.deliveryShardValid(peer, slot, root, shard)) return
    let bySlot = b.deliveries.get(slot)
    if (bySlot === undefined) {
      bySlot = new Map()
      b.deliveries.set(slot, bySlot)
    }
    bySlot.set(shard.server, shard.signature)
    if (bySlot.size < this.threshold) return
    const shards = [...bySlot].map(([server, signature]) => ({ server, signature }))
    this.certify(b, slot, shards)
  }

  /** Verifies a delivery shard; penalises its sender when it is bad. */
  private deliveryShardValid(peer: PeerKey, slot: number, root: Uint8Array, shard: Shard): boolean {
    const input = deliveryInput(slot, root)
    if (verifyEd25519Prepared(this.serverKeys[shard.server], input, shard.signature)) return true
    this.penalise(peer, 'bad-delivery-shard')
    return false
  }

  /**
   * Learns the certified height from delivery shards of batches that are not this broker's
   * (another broker's, or one it abandoned): f+1 of them on one (slot, root) are a height
   * certificate, so this broker's raise bound keeps up with every broker's clients.
   */
  private learnHeight(peer: PeerKey, slot: number, root: Uint8Array, shard: Shard): void {
    if (slot <= this.height.slot) return
    let c = this.heightCandidates.get(slot)
    if (c !== undefined && !bytesEqual(c.root, root)) return // not what f+1 servers say: ignored
    if (!this.deliveryShardValid(peer, slot, root, shard)) return
    if (c === undefined) {
      if (this.heightCandidates.size >= MAX_HEIGHT_CANDIDATES) {
        const lowest = Math.min(...this.heightCandidates.keys())
        if (lowest > slot) return
        this.heightCandidates.delete(lowest)
      }
      c = { root: root.slice(), shards: new Map() }
      this.heightCandidates.set(slot, c)
    }
    c.shards.set(shard.server, shard.signature)
    if (c.shards.size < this.threshold) return
    const shards = [...c.shards].map(([server, signature]) => ({ server, signature }))
    this.height = { slot, root: c.root, shards }
    for (const k of this.heightCandidates.keys()) if (k <= slot) this.heightCandidates.delete(k)
  }

  private certify(b: InFlight, slot: number, shards: Shard[]): void {
    b.phase = 'done'
    b.expiry?.cancel()
    this.release(b)
    if (slot > this.height.slot) this.height = { slot, root: b.root, shards }
    this.counters.certified++
    this.counters.certifiedEntries += b.entries.length
    const maxCache = this.opts.maxDeliveredCache ?? 131_072
    b.shares = [] // not needed any more; the delivered cache keeps the batch
    b.shareSums = []
    b.witnesses.clear()
    b.deliveries.clear()
    const certified: Certified = { batch: b, slot, shards, lastLeaf: -1 }
    this.inChunks(b.entries.length, (i) => {
      const { submission } = b.entries[i]
      this.delivered.delete(submission.id)
      if (this.delivered.size >= maxCache) {
        this.delivered.delete(this.delivered.keys().next().value!)
      }
      this.delivered.set(submission.id, {
        sequence: submission.sequence,
        payload: submission.payload,
        certified,
        index: i,
      })
      this.reply(b.entries[i], this.deliveredFrame(certified, i))
    })
    this.events.emit('certified', { batchNumber: b.number, slot, entries: b.entries.length })
    this.resumeFlushing()
  }

  /**
   * Runs `fn(0 … n−1)` in chunks, yielding to the event loop between them, so that sending
   * 65,536 proofs or certificates never stalls the socket's receive for long; then `done`.
   */
  private inChunks(n: number, fn: (i: number) => void, done?: () => void): void {
    const chunk = this.opts.sendChunk ?? 4096
    const run = (start: number): void => {
      if (!this.running) return
      const end = Math.min(n, start + chunk)
      for (let i = start; i < end; i++) fn(i)
      if (end < n) this.later(0, () => run(end))
      else done?.()
    }
    run(0)
  }

  private deliveredFrame(c: Certified, index: number): Uint8Array {
    // The same for every entry of a leaf: encoded once per leaf as certificates go out.
    const leafIndex = Math.floor(index / c.batch.entriesPerLeaf)
    if (c.lastLeaf !== leafIndex || c.lastFrame === undefined) {
      c.lastLeaf = leafIndex
      c.lastFrame = encodeDelivered({
        slot: c.slot,
        shards: c.shards,
        inclusion: this.inclusionProof(c.batch, index),
      })
    }
    return c.lastFrame
  }

  private sendTo(peer: PeerKey, frame: Uint8Array): void {
    this.recorder.frameSent(frame.length, 0)
    this.env.send(peer, frame)
  }
}
