/**
 * Replays pre-computed submissions of many client ids to a broker at a set rate and plays
 * each client's part of the protocol after that (sans-IO, driven through an {@link Env}):
 * it checks inclusion proofs and answers them with a real BLS share over the root it
 * received, checks delivery certificates, and retransmits a submission whose certificate
 * does not come, as a live client does. Only the ed25519 signing is taken off its path.
 */
import type { KeyObject } from 'node:crypto'
import { verifyCertificate } from '../../src/broker/certificate.ts'
import { decodeLeaf, type Leaf } from '../../src/broker/leaf.ts'
import { brokerLimits, faultsTolerated } from '../../src/broker/params.ts'
import { deliveryInput } from '../../src/broker/signing.ts'
import {
  decodeDelivered,
  decodeInclusion,
  encodeShare,
  FrameKind,
  frameKind,
  type InclusionProof,
} from '../../src/broker/wire.ts'
import type { PeerKey } from '../../src/common/artifact.ts'
import type { Env } from '../../src/common/env.ts'
import { InvalidParametersError } from '../../src/common/errors.ts'
import { importEd25519PublicKey } from '../../src/crypto/ed25519.ts'
import { verifyMerkleProof } from '../../src/crypto/merkle.ts'
import type { ReplayReport } from './ipc.ts'
import {
  deriveKeySet,
  isLoadPayload,
  type Load,
  type LoadKeySet,
  loadFrame,
  loadShare,
} from './load-cache.ts'

/** Options of a {@link Replayer}. */
export interface ReplayerOptions {
  /** The pre-computed load. */
  load: Load
  /** This process replays ids with `id % parts === part`. */
  part: number
  /** See `part`. */
  parts: number
  /** The broker's "host:port". */
  broker: PeerKey
  /** Further brokers: an id moves to the next after `failoverAfter` transmissions to one without a certificate. */
  otherBrokers?: readonly PeerKey[]
  /** See `otherBrokers`. Default 1: retransmissions are paced (a tenth of the offered rate), so each id moves on its first one. */
  failoverAfter?: number
  /** Raw ed25519 public keys of the servers (delivery certificates are checked). */
  serverKeys: readonly Uint8Array[]
  /** First transmissions per second. */
  ratePerSecond: number
  /** First retransmission after this long without progress; doubles up to 8 s. */
  retryMs: number
  /** Called once every id of this process has a verified delivery certificate. */
  onDone?: () => void
}

/** Roots whose shares are remembered (a batch's frames arrive together; older ones are done). */
const SHARE_MEMORY = 8

/** Drives the replay: call {@link start}, feed datagrams to {@link receive}, call {@link tick} often. */
export class Replayer {
  private readonly env: Env
  private readonly opts: ReplayerOptions
  private readonly limits = brokerLimits()
  private readonly serverKeys: KeyObject[]
  private readonly threshold: number
  private readonly count: number
  private readonly sentAt: Float64Array
  private readonly lastActivity: Float64Array
  private readonly retry: Float64Array
  private readonly latency: Float64Array
  private readonly answered: (string | undefined)[]
  private readonly brokers: PeerKey[]
  /** Per id: the index of the broker it sends to, and its transmissions there. */
  private readonly brokerOf: Uint8Array
  private readonly atBroker: Uint8Array
  private readonly keySets = new Map<number, LoadKeySet>()
  private readonly shares = new Map<string, Map<number, Uint8Array>>()
  private readonly verifiedCertificates = new Set<string>()
  private startedAt = -1
  private next = 0
  private retryCursor = 0
  private retryTokens = 0
  private lastRetryAt = 0
  private done = false
  private stopped = false
  private readonly stats = {
    submitted: 0,
    retransmissions: 0,
    shares: 0,
    datagramsSent: 0,
    datagramsReceived: 0,
    delivered: 0,
    refused: 0,
    failovers: 0,
    blsSignatures: 0,
    firstSendAt: 0,
    lastSendAt: 0,
  }

  constructor(env: Env, opts: ReplayerOptions) {
    if (opts.parts < 1 || opts.part < 0 || opts.part >= opts.parts || opts.ratePerSecond <= 0) {
      throw new InvalidParametersError('replayer: bad part, parts or rate')
    }
    this.env = env
    this.opts = opts
    this.serverKeys = opts.serverKeys.map((k) => importEd25519PublicKey(k)!)
    this.threshold = faultsTolerated(opts.serverKeys.length) + 1
    const clients = opts.load.spec.clients
    this.count = Math.max(0, Math.ceil((clients - opts.part) / opts.parts))
    this.sentAt = new Float64Array(this.count).fill(-1)
    this.lastActivity = new Float64Array(this.count)
    this.retry = new Float64Array(this.count).fill(opts.retryMs)
    this.latency = new Float64Array(this.count).fill(-1)
    this.answered = new Array(this.count)
    this.brokers = [opts.broker, ...(opts.otherBrokers ?? [])]
    this.brokerOf = new Uint8Array(this.count)
    this.atBroker = new Uint8Array(this.count)
  }

  /** Client ids this replayer plays. */
  get clients(): number {
    return this.count
  }

  /** Starts the clock of the first transmissions. */
  start(): void {
    this.startedAt = this.env.now()
    this.lastRetryAt = this.startedAt
  }

  /** Sends the first transmissions now due, then the retransmissions now due. */
  tick(): void {
    if (this.startedAt < 0 || this.done || this.stopped) return
    const now = this.env.now()
    const due = Math.min(
      this.count,
      Math.floor(((now - this.startedAt) / 1000) * this.opts.ratePerSecond),
    )
    if (this.next < due) {
      if (this.stats.firstSendAt === 0) this.stats.firstSendAt = now
      this.stats.lastSendAt = now
    }
    for (; this.next < due; this.next++) {
      this.transmit(this.next, now)
      this.sentAt[this.next] = now
      this.stats.submitted++
    }
    this.retransmit(now)
  }

  /** Handles one datagram from the broker. */
  receive(peer: PeerKey, frame: Uint8Array): void {
    this.stats.datagramsReceived++
    if (!this.brokers.includes(peer) || this.stopped) return
    try {
      const kind = frameKind(frame)
      if (kind === FrameKind.Inclusion) this.onInclusion(peer, frame)
      else if (kind === FrameKind.Delivered) this.onDelivered(frame)
      else this.stats.refused++
    } catch {
      this.stats.refused++
    }
  }

  /** Stops sending anything (submissions, retransmissions, shares); datagrams received are still counted. */
  stop(): void {
    this.stopped = true
  }

  /** What was counted so far (times in this replayer's clock). */
  report(): ReplayReport {
    const latencies: number[] = []
    for (const l of this.latency) if (l >= 0) latencies.push(l)
    return {
      clients: this.count,
      ...this.stats,
      sendErrors: 0,
      cpuMs: 0,
      latenciesMs: Float64Array.from(latencies),
    }
  }

  private idOf(local: number): number {
    return local * this.opts.parts + this.opts.part
  }

  /** The local index of `id`, or -1 when another replayer plays it. */
  private localOf(id: number): number {
    if (id % this.opts.parts !== this.opts.part || id >= this.opts.load.spec.clients) return -1
    return (id - this.opts.part) / this.opts.parts
  }

  private transmit(local: number, now: number): void {
    this.lastActivity[local] = now
    if (this.atBroker[local] >= (this.opts.failoverAfter ?? 1) && this.brokers.length > 1) {
      // No certificate from this broker: the next one, at the first retry pace.
      this.brokerOf[local] = (this.brokerOf[local] + 1) % this.brokers.length
      this.atBroker[local] = 0
      this.retry[local] = this.opts.retryMs
      this.stats.failovers++
    }
    this.atBroker[local]++
    this.send(this.brokers[this.brokerOf[local]], loadFrame(this.opts.load, this.idOf(local)))
  }

  private send(to: PeerKey, frame: Uint8Array): void {
    this.stats.datagramsSent++
    this.env.send(to, frame)
  }

  /**
   * Retransmits submissions without progress for their retry time. Retransmissions are
   * paced by a token bucket of a tenth of the offered rate, so a slow pipeline (latency
   * above the retry time) is not buried under copies of what it already has.
   */
  private retransmit(now: number): void {
    const perMs = this.opts.ratePerSecond / 10_000
    const cap = Math.max(16, this.opts.ratePerSecond / 10)
    // A tenth of the ids every 100 ms: each is looked at about once a second.
    if (now - this.lastRetryAt < 100) return
    this.retryTokens = Math.min(cap, this.retryTokens + (now - this.lastRetryAt) * perMs)
    this.lastRetryAt = now
    const scan = Math.ceil(this.next / 10)
    for (let scanned = 0; scanned < scan && this.retryTokens >= 1; scanned++) {
      const local = this.retryCursor
      this.retryCursor = (this.retryCursor + 1) % this.next
      if (this.latency[local] >= 0) continue
      if (now - this.lastActivity[local] < this.retry[local]) continue
      this.retry[local] = Math.min(this.retry[local] * 2, 8000)
      this.transmit(local, now)
      this.stats.retransmissions++
      this.retryTokens--
    }
  }

  /** Entries of the leaf this process plays whose payload is the one it signed. */
  private mine(leaf: Leaf): { id: number; local: number }[] {
    const out: { id: number; local: number }[] = []
    for (const e of leaf.entries) {
      const local = this.localOf(e.id)
      if (local < 0 || this.sentAt[local] < 0) continue
      if (isLoadPayload(e.id, e.payload, this.opts.load.spec.payloadBytes)) {
        out.push({ id: e.id, local })
      }
    }
    return out
  }

  private proves(p: InclusionProof): boolean {
    return verifyMerkleProof(p.root, p.leaf, p.leafIndex, p.leafCount, p.proof)
  }

  private onInclusion(broker: PeerKey, frame: Uint8Array): void {
    const p = decodeInclusion(frame, this.limits)
    const leaf = decodeLeaf(p.leaf, this.limits)
    const rootKey = Buffer.from(p.root).toString('hex')
    const todo = this.mine(leaf).filter(
      (e) => this.latency[e.local] < 0 && this.answered[e.local] !== rootKey,
    )
    if (todo.length === 0) return
    // Every replayed submission has sequence 1 and the height starts at 0: a raise other
    // than 1 would need a height certificate this client has no reason to accept.
    if (leaf.raise !== 1 || !this.proves(p)) {
      this.stats.refused++
      return
    }
    const now = this.env.now()
    for (const { id, local } of todo) {
      this.answered[local] = rootKey
      this.lastActivity[local] = now
      const signature = this.shareFor(rootKey, p.root, id % this.opts.load.spec.keySets)
      this.send(broker, encodeShare({ id, root: p.root, signature }))
      this.stats.shares++
    }
  }

  /** One BLS signature per key set per root (ids of a key set share its key). */
  private shareFor(rootKey: string, root: Uint8Array, k: number): Uint8Array {
    let byKey = this.shares.get(rootKey)
    if (byKey === undefined) {
      if (this.shares.size >= SHARE_MEMORY) this.shares.delete(this.shares.keys().next().value!)
      byKey = new Map()
      this.shares.set(rootKey, byKey)
    }
    let share = byKey.get(k)
    if (share === undefined) {
      let keySet = this.keySets.get(k)
      if (keySet === undefined) {
        keySet = deriveKeySet(this.opts.load.spec.seed, k)
        this.keySets.set(k, keySet)
      }
      share = loadShare(keySet, root)
      this.stats.blsSignatures++
      byKey.set(k, share)
    }
    return share
  }

  private onDelivered(frame: Uint8Array): void {
    const d = decodeDelivered(frame, this.limits)
    const leaf = decodeLeaf(d.inclusion.leaf, this.limits)
    const todo = this.mine(leaf).filter((e) => this.latency[e.local] < 0)
    if (todo.length === 0) return
    const key = `${d.slot}/${Buffer.from(d.inclusion.root).toString('hex')}`
    if (!this.verifiedCertificates.has(key)) {
      const input = deliveryInput(d.slot, d.inclusion.root)
      if (!verifyCertificate(d.shards, input, this.serverKeys, this.threshold)) {
        this.stats.refused++
        return
      }
      if (this.verifiedCertificates.size >= SHARE_MEMORY) this.verifiedCertificates.clear()
      this.verifiedCertificates.add(key)
    }
    if (!this.proves(d.inclusion)) {
      this.stats.refused++
      return
    }
    const now = this.env.now()
    for (const { local } of todo) {
      this.latency[local] = now - this.sentAt[local]
      this.stats.delivered++
    }
    if (this.stats.delivered === this.count && !this.done) {
      this.done = true
      this.opts.onDone?.()
    }
  }
}
