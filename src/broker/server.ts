import type { KeyObject } from 'node:crypto'
import type { PeerKey, Topic } from '../common/artifact.ts'
import { CoreBase } from '../common/core-base.ts'
import type { RejectedEvent } from '../common/dissemination.ts'
import type { Env, ProtocolCore, TimerHandle } from '../common/env.ts'
import { InvalidParametersError } from '../common/errors.ts'
import { messageIdKey } from '../common/message-id.ts'
import { type Ed25519KeyPair, importEd25519PublicKey } from '../crypto/ed25519.ts'
import { verifyCertificate } from './certificate.ts'
import { DedupTable } from './dedup.ts'
import type { Directory } from './directory.ts'
import { batchDigest, type DistilledBatch, decodeDistilledBatch } from './distilled-batch.ts'
import type { BatchReference, Orderer } from './orderer.ts'
import { type BrokerLimits, brokerLimits, faultsTolerated } from './params.ts'
import { deliveryInput, witnessInput } from './signing.ts'
import { distilledRoot, verifyDistilledBatch } from './verify-batch.ts'
import {
  decodeFetchBatch,
  decodeWitnessRequest,
  encodeDeliveryShard,
  encodeFetchBatch,
  encodeWitnessShard,
  FrameKind,
  frameKind,
} from './wire.ts'

/** The topic under which broker deliveries are counted in stats. */
export const BROKER_TOPIC: Topic = 'broker'

/** Options of a {@link WitnessServer}. */
export interface WitnessServerOptions {
  /** This server's index in `serverKeys`. */
  index: number
  /** This server's ed25519 key pair (signs witness and delivery shards). */
  keyPair: Ed25519KeyPair
  /** Raw ed25519 public keys of every server, by index. */
  serverKeys: readonly Uint8Array[]
  /** The client directory. */
  directory: Directory
  /** Decoder limits. */
  limits?: Partial<BrokerLimits>
  /** Batches kept while waiting to be witnessed or ordered (oldest evicted). Default 64. */
  maxStoredBatches?: number
  /** Of those, at most this many from one broker (its oldest evicted). Default 16. */
  maxStoredBatchesPerPeer?: number
  /** Ordered references waiting for their batch to arrive. Default 1,024. */
  maxPendingOrdered?: number
  /**
   * An ordered batch not received this long after its turn came is fetched from another
   * server (peers "server/i", i ≠ index: the driver maps them to links). Default 200 ms.
   */
  fetchAfterMs?: number
  /** Ask the next server when one did not answer a fetch in this time. Default 1,000 ms. */
  fetchTimeoutMs?: number
  /** Fetch requests for one batch at most (round the other servers). Default 3 × (servers − 1). */
  maxFetchAttempts?: number
  /** Delivered batch frames kept to answer other servers' fetches. Default 16. */
  maxServedBatches?: number
  /** Fetches served to one peer per second at most; beyond, refused and penalised. Default 16. */
  maxFetchesPerSecond?: number
  /** Brokers sent delivery shards at once (those that said hello or sent a batch). Default 16. */
  maxBrokers?: number
}

/** A message delivered by a server, in total order. */
export interface BrokerDelivery {
  /** The client that sent it. */
  clientId: number
  /** Its sequence number (the raise, or a straggler's own). */
  sequence: number
  /** The message. */
  payload: Uint8Array
  /** The slot of its batch. */
  slot: number
}

/** Events of a {@link WitnessServer}. */
export interface WitnessServerEvents {
  /** A message was delivered (in slot order, then batch order). */
  deliver: BrokerDelivery
  /** Input was refused and counted against its sender. */
  rejected: RejectedEvent
  /** A batch was processed after ordering. */
  batchDelivered: { slot: number; delivered: number; ignored: number; dropped: number }
}

/** Counters specific to a witness server. */
export interface WitnessServerCounters {
  /** Batches this server verified and witnessed. */
  witnessed: number
  /** Entries delivered. */
  delivered: number
  /** Entries not delivered again: copies (same sequence) and nudges (same message raised). */
  ignored: number
  /** Of the ignored entries, those nudged (the same message at a higher sequence number). */
  nudged: number
  /** Entries dropped as stale. */
  dropped: number
  /** Ordered references skipped because the digest was delivered before. */
  duplicateBatches: number
  /** Fetch requests sent for ordered batches never received. */
  fetchRequests: number
  /** Batches got from another server that way. */
  fetched: number
  /** Batch frames sent to servers that asked for them. */
  fetchesServed: number
  /** Fetch requests for batches this server does not hold. */
  fetchesUnknown: number
}

interface StoredBatch {
  batch: DistilledBatch
  /** The frame as received (served to servers that fetch it). */
  frame: Uint8Array
  from: PeerKey
  root?: Uint8Array
  verified?: boolean
}

/**
 * A Chop Chop witness server (sans-IO). It stores distilled batches, witnesses them on
 * request (one aggregate verification plus straggler checks, then an ed25519 witness
 * shard), delivers ordered batches with per-client deduplication, and returns a delivery
 * shard to the broker.
 */
export class WitnessServer extends CoreBase<WitnessServerEvents> implements ProtocolCore {
  private readonly opts: WitnessServerOptions
  private readonly limits: BrokerLimits
  private readonly serverKeys: KeyObject[]
  private readonly threshold: number
  private readonly stored = new Map<string, StoredBatch>()
  private readonly deliveredDigests = new Set<string>()
  private readonly deliveredOrder: string[] = []
  private readonly pendingOrdered: { slot: number; reference: BatchReference }[] = []
  private readonly dedup = new DedupTable()
  private readonly counters: WitnessServerCounters = {
    witnessed: 0,
    delivered: 0,
    ignored: 0,
    nudged: 0,
    dropped: 0,
    duplicateBatches: 0,
    fetchRequests: 0,
    fetched: 0,
    fetchesServed: 0,
    fetchesUnknown: 0,
  }
  /** Other servers, as the driver names them. */
  private readonly serverPeers: PeerKey[]
  /** Brokers that get delivery shards, oldest first. */
  private readonly brokers = new Set<PeerKey>()
  /** Delivered batch frames, oldest first, to serve fetches. */
  private readonly served = new Map<string, Uint8Array>()
  private readonly fetchBudget = new Map<PeerKey, { windowStart: number; count: number }>()
  /** The ordered batch being fetched (only the head of the ordered queue can block). */
  private fetching?: { key: string; digest: Uint8Array; attempts: number; timer?: TimerHandle }
  private nextSlot = 1
  private unsubscribe?: () => void

  constructor(env: Env, opts: WitnessServerOptions) {
    super(env, 'consensus-multicast:broker:server')
    this.opts = opts
    this.limits = brokerLimits(opts.limits)
    if (opts.serverKeys.length > this.limits.maxServers) {
      throw new InvalidParametersError('more servers than limits.maxServers')
    }
    this.serverKeys = opts.serverKeys.map((k, i) => {
      const key = importEd25519PublicKey(k)
      if (key === undefined) throw new InvalidParametersError(`server key ${i} is malformed`)
      return key
    })
    this.threshold = faultsTolerated(opts.serverKeys.length) + 1
    this.serverPeers = opts.serverKeys.flatMap((_, i) => (i === opts.index ? [] : [`server/${i}`]))
  }

  /** This server's index. */
  get index(): number {
    return this.opts.index
  }

  /** The slots delivered so far. */
  get height(): number {
    return this.nextSlot - 1
  }

  /** The last sequence number delivered for a client. */
  lastSequence(clientId: number): number {
    return this.dedup.lastSequence(clientId)
  }

  /** Counters: witness and dedup decisions. */
  counts(): WitnessServerCounters {
    return { ...this.counters }
  }

  /** Listens to `orderer` for ordered batch references. */
  attach(orderer: Orderer): void {
    this.unsubscribe?.()
    this.unsubscribe = orderer.subscribe((slot, reference) => this.ordered(slot, reference))
  }

  start(): void {
    this.running = true
  }

  stop(): void {
    this.running = false
    this.unsubscribe?.()
    this.unsubscribe = undefined
  }

  peerConnected(): void {}

  peerDisconnected(peer: PeerKey): void {
    this.brokers.delete(peer)
    this.fetchBudget.delete(peer)
  }

  receive(peer: PeerKey, frame: Uint8Array): void {
    this.recorder.frameReceived(frame.length, 0)
    try {
      switch (frameKind(frame)) {
        case FrameKind.Batch:
          if (this.serverPeers.includes(peer)) this.onFetched(peer, frame)
          else this.storeBatch(peer, frame)
          return
        case FrameKind.WitnessRequest:
          this.witness(peer, decodeWitnessRequest(frame))
          return
        case FrameKind.BrokerHello:
          this.addBroker(peer)
          return
        case FrameKind.FetchBatch:
          this.serveFetch(peer, decodeFetchBatch(frame))
          return
        default:
          this.reject(peer, 'unknown-frame')
      }
    } catch (err) {
      this.log('malformed frame from %s: %s', peer, (err as Error).message)
      this.reject(peer, 'malformed')
    }
  }

  /** Handles one ordered reference (called by the orderer, in slot order). */
  ordered(slot: number, reference: BatchReference): void {
    if (slot < this.nextSlot) return
    if (this.pendingOrdered.length >= (this.opts.maxPendingOrdered ?? 1024)) {
      this.log.error('ordered queue full; dropping slot %d', slot)
      return
    }
    this.pendingOrdered.push({ slot, reference })
    this.pendingOrdered.sort((a, b) => a.slot - b.slot)
    this.drainOrdered()
  }

  /** Remembers a broker (bounded: the oldest is forgotten first). */
  private addBroker(peer: PeerKey): void {
    this.brokers.delete(peer)
    if (this.brokers.size >= (this.opts.maxBrokers ?? 16)) {
      this.brokers.delete(this.brokers.values().next().value!)
    }
    this.brokers.add(peer)
  }

  private storeBatch(peer: PeerKey, frame: Uint8Array): void {
    const batch = decodeDistilledBatch(frame, this.limits)
    const key = messageIdKey(batchDigest(frame))
    if (!this.brokers.has(peer)) this.addBroker(peer)
    if (this.stored.has(key) || this.deliveredDigests.has(key)) return
    // Bounded per sender first, so one broker flooding batches cannot evict the others'.
    const perPeer = this.opts.maxStoredBatchesPerPeer ?? 16
    const mine = [...this.stored].filter(([, b]) => b.from === peer)
    if (mine.length >= perPeer) this.stored.delete(mine[0][0])
    const max = this.opts.maxStoredBatches ?? 64
    if (this.stored.size >= max) this.stored.delete(this.stored.keys().next().value!)
    this.stored.set(key, { batch, frame, from: peer })
    this.drainOrdered()
  }

  /**
   * Starts fetching the ordered batch `digest` from the other servers, after `fetchAfterMs`
   * (it is normally on its way from its broker), then round them every `fetchTimeoutMs`,
   * at most `maxFetchAttempts` requests.
   */
  private fetchLater(key: string, digest: Uint8Array): void {
    if (this.fetching?.key === key || this.serverPeers.length === 0) return
    this.fetching?.timer?.cancel()
    const f: NonNullable<typeof this.fetching> = { key, digest, attempts: 0 }
    this.fetching = f
    f.timer = this.later(this.opts.fetchAfterMs ?? 200, () => this.fetchNext(f))
  }

  private fetchNext(f: NonNullable<typeof this.fetching>): void {
    if (this.fetching !== f || this.stored.has(f.key)) return
    const max = this.opts.maxFetchAttempts ?? 3 * this.serverPeers.length
    if (f.attempts >= max) {
      this.log.error('no server sent the ordered batch %s after %d requests', f.key, max)
      return // still delivered if its broker's frame comes
    }
    const to = this.serverPeers[f.attempts % this.serverPeers.length]
    f.attempts++
    this.counters.fetchRequests++
    this.sendFrame(to, encodeFetchBatch(f.digest))
    f.timer = this.later(this.opts.fetchTimeoutMs ?? 1000, () => this.fetchNext(f))
  }

  /** A batch frame from a server: accepted only as the answer to the fetch in progress. */
  private onFetched(peer: PeerKey, frame: Uint8Array): void {
    const f = this.fetching
    const key = messageIdKey(batchDigest(frame))
    // The digest in the ordered reference (witnessed by f+1 servers) authenticates it.
    if (f === undefined || f.key !== key) {
      this.reject(peer, 'unsolicited-batch')
      return
    }
    const batch = decodeDistilledBatch(frame, this.limits)
    f.timer?.cancel()
    this.fetching = undefined
    this.counters.fetched++
    this.stored.set(key, { batch, frame, from: peer })
    this.drainOrdered()
  }

  /** Sends a batch this server holds to a server that asks for it (rate-limited per peer). */
  private serveFetch(peer: PeerKey, digest: Uint8Array): void {
    const now = this.env.now()
    let b = this.fetchBudget.get(peer)
    if (b === undefined || now - b.windowStart >= 1000) {
      if (b === undefined && this.fetchBudget.size >= 256) this.fetchBudget.clear()
      b = { windowStart: now, count: 0 }
      this.fetchBudget.set(peer, b)
    }
    if (++b.count > (this.opts.maxFetchesPerSecond ?? 16)) {
      this.reject(peer, 'fetch-flood')
      return
    }
    const key = messageIdKey(digest)
    const frame = this.stored.get(key)?.frame ?? this.served.get(key)
    if (frame === undefined) {
      this.counters.fetchesUnknown++
      return
    }
    this.counters.fetchesServed++
    this.sendFrame(peer, frame)
  }

  private sendFrame(peer: PeerKey, frame: Uint8Array): void {
    this.recorder.frameSent(frame.length, 0)
    this.env.send(peer, frame)
  }

  private rootOf(s: StoredBatch): Uint8Array {
    s.root ??= distilledRoot(s.batch)
    return s.root
  }

  private witness(peer: PeerKey, digest: Uint8Array): void {
    const s = this.stored.get(messageIdKey(digest))
    if (s === undefined) {
      this.reject(peer, 'witness-unknown-batch')
      return
    }
    if (s.verified === undefined) {
      const fault = verifyDistilledBatch(
        s.batch,
        this.rootOf(s),
        this.opts.directory,
        this.serverKeys,
        this.threshold,
      )
      s.verified = fault === undefined
      if (fault !== undefined) {
        this.log('refusing to witness batch from %s: %s', peer, fault)
        this.reject(peer, fault)
      } else {
        this.counters.witnessed++
      }
    }
    if (!s.verified) return
    const signature = this.opts.keyPair.sign(witnessInput(digest))
    const out = encodeWitnessShard(digest, { server: this.opts.index, signature })
    this.recorder.frameSent(out.length, 0)
    this.env.send(peer, out)
  }

  private drainOrdered(): void {
    while (this.pendingOrdered.length > 0 && this.pendingOrdered[0].slot <= this.nextSlot) {
      const head = this.pendingOrdered[0]
      if (head.slot < this.nextSlot) {
        this.pendingOrdered.shift()
        continue
      }
      const key = messageIdKey(head.reference.digest)
      const witnessed = verifyCertificate(
        head.reference.witnesses,
        witnessInput(head.reference.digest),
        this.serverKeys,
        this.threshold,
      )
      if (!witnessed || this.deliveredDigests.has(key)) {
        // The orderer is not trusted with validity: an unwitnessed or repeated reference
        // takes its slot but delivers nothing.
        if (!witnessed) this.reject('orderer', 'unwitnessed-reference')
        else this.counters.duplicateBatches++
        this.pendingOrdered.shift()
        this.nextSlot++
        continue
      }
      const s = this.stored.get(key)
      if (s === undefined) {
        this.fetchLater(key, head.reference.digest) // or its broker's frame comes first
        return
      }
      this.pendingOrdered.shift()
      this.deliverBatch(head.slot, key, s)
      this.nextSlot++
    }
  }

  private deliverBatch(slot: number, key: string, s: StoredBatch): void {
    this.stored.delete(key)
    if (this.fetching?.key === key) {
      this.fetching.timer?.cancel()
      this.fetching = undefined
    }
    this.served.set(key, s.frame)
    if (this.served.size > (this.opts.maxServedBatches ?? 16)) {
      this.served.delete(this.served.keys().next().value!)
    }
    this.deliveredDigests.add(key)
    this.deliveredOrder.push(key)
    if (this.deliveredOrder.length > 65_536)
      this.deliveredDigests.delete(this.deliveredOrder.shift()!)
    const { batch } = s
    const stragglerSeq = new Map<number, number>()
    for (const st of batch.stragglers) stragglerSeq.set(st.index, st.sequence)
    let delivered = 0
    let ignored = 0
    let dropped = 0
    for (let i = 0; i < batch.ids.length; i++) {
      const clientId = batch.ids[i]
      const sequence = stragglerSeq.get(i) ?? batch.raise
      const payload = batch.payloads[i]
      const verdict = this.dedup.apply(clientId, sequence, payload)
      if (verdict === 'deliver') {
        delivered++
        this.recorder.count('delivered', BROKER_TOPIC, 'consensus', payload.length)
        this.events.emit('deliver', { clientId, sequence, payload, slot })
      } else if (verdict === 'drop') {
        dropped++
      } else {
        // A copy, or the same message raised again: not delivered twice.
        ignored++
        if (verdict === 'nudge') this.counters.nudged++
        this.recorder.count('duplicates', BROKER_TOPIC, 'consensus')
      }
    }
    this.counters.delivered += delivered
    this.counters.ignored += ignored
    this.counters.dropped += dropped
    this.events.emit('batchDelivered', { slot, delivered, ignored, dropped })
    const root = this.rootOf(s)
    const signature = this.opts.keyPair.sign(deliveryInput(slot, root))
    const out = encodeDeliveryShard(slot, root, { server: this.opts.index, signature })
    // Every broker: the batch's own certifies its clients, the others learn the height.
    const to = new Set(this.brokers)
    if (!this.serverPeers.includes(s.from)) to.add(s.from)
    for (const peer of to) this.sendFrame(peer, out)
  }
}
