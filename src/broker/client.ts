import type { KeyObject } from 'node:crypto'
import type { PeerKey } from '../common/artifact.ts'
import { CoreBase } from '../common/core-base.ts'
import type { RejectedEvent } from '../common/dissemination.ts'
import type { Env, ProtocolCore, TimerHandle } from '../common/env.ts'
import {
  DuplicateMessageError,
  InvalidParametersError,
  LimitExceededError,
  MessageTooLargeError,
  NotStartedError,
} from '../common/errors.ts'
import type { BlsKeyPair } from '../crypto/bls.ts'
import { type Ed25519KeyPair, importEd25519PublicKey } from '../crypto/ed25519.ts'
import { verifyMerkleProof } from '../crypto/merkle.ts'
import { type HeightCertificate, verifyCertificate, verifyHeight } from './certificate.ts'
import { decodeLeaf } from './leaf.ts'
import { type BrokerLimits, brokerLimits, faultsTolerated } from './params.ts'
import { batchRootInput, deliveryInput, submissionInput } from './signing.ts'
import {
  decodeDelivered,
  decodeInclusion,
  encodeShare,
  encodeSubmission,
  FrameKind,
  frameKind,
  type InclusionFrame,
  type InclusionProof,
} from './wire.ts'

/** Options of a {@link BrokerClient}. */
export interface BrokerClientOptions {
  /** This client's id in the directory. */
  id: number
  /** Its ed25519 key pair (signs submissions). */
  ed25519: Ed25519KeyPair
  /** Its BLS key pair (signs batch roots). */
  bls: BlsKeyPair
  /** The broker's peer key (the first broker, when `brokers` is given). */
  broker: PeerKey
  /**
   * Further brokers, in order: after `failoverAfter` transmissions to one broker without a
   * delivery certificate (it stopped answering, or does not include this client), the
   * client sends to the next, round the list. Frames are accepted from any of them.
   */
  otherBrokers?: readonly PeerKey[]
  /** Transmissions of one message to one broker without a delivery certificate before moving to the next. Default 3. */
  failoverAfter?: number
  /** Raw ed25519 public keys of the servers (to check delivery certificates). */
  serverKeys: readonly Uint8Array[]
  /** Decoder limits. */
  limits?: Partial<BrokerLimits>
  /** First retransmission after this long without a delivery certificate. Default 1,500 ms. */
  retryMs?: number
  /** Retransmission back-off cap. Default 8,000 ms. */
  maxRetryMs?: number
  /** Messages waiting behind the one in flight. Default 1,024. */
  maxQueue?: number
  /** Last sequence number delivered for this client (when resuming). Default 0. */
  lastSequence?: number
}

/** What a client learns when its message is delivered. */
export interface DeliveryReceipt {
  /** The sequence number the client used. */
  sequence: number
  /** The slot of the batch that carried it. */
  slot: number
  /** Milliseconds from the first transmission to the delivery certificate. */
  latencyMs: number
  /** Milliseconds the message waited behind earlier ones before its first transmission. */
  queuedMs: number
  /** Transmissions of the submission (1 when nothing was lost). */
  transmissions: number
  /** The broker that returned the delivery certificate. */
  broker: PeerKey
}

/** Events of a {@link BrokerClient}. */
export interface BrokerClientEvents {
  /** A frame was refused and counted against its sender (normally the broker). */
  rejected: RejectedEvent
}

interface Pending {
  payload: Uint8Array
  submittedAt: number
  resolve: (r: DeliveryReceipt) => void
  reject: (e: Error) => void
}

interface Current extends Pending {
  sentAt: number
  sequence: number
  frame: Uint8Array
  transmissions: number
  retry: number
  timer?: TimerHandle
  /** The highest raise this client co-signed for this message (0 when none). */
  maxSignedRaise: number
  /** Transmissions to the current broker. */
  atBroker: number
}

/**
 * A Chop Chop client (sans-IO): signs each message with ed25519 and sends it to its broker
 * over UDP, checks the inclusion proof and the raise before co-signing the batch root with
 * BLS, checks the delivery certificate, and retransmits until it has one, so a lost
 * packet never loses a message. One message is in flight at a time, as in Chop Chop.
 */
export class BrokerClient extends CoreBase<BrokerClientEvents> implements ProtocolCore {
  private readonly opts: BrokerClientOptions
  private readonly limits: BrokerLimits
  private readonly serverKeys: KeyObject[]
  private readonly threshold: number
  private readonly queue: Pending[] = []
  private current?: Current
  private last: number
  private lastPayload?: Uint8Array
  private verifiedHeight?: string
  /** The highest slot this client has seen certified by f+1 servers. */
  private knownHeight = 0
  private readonly brokers: PeerKey[]
  private brokerIndex = 0
  /** Times this client moved to the next broker. */
  private failovers = 0

  constructor(env: Env, opts: BrokerClientOptions) {
    super(env, 'consensus-multicast:broker:client')
    this.opts = opts
    this.limits = brokerLimits(opts.limits)
    this.serverKeys = opts.serverKeys.map((k, i) => {
      const key = importEd25519PublicKey(k)
      if (key === undefined) throw new InvalidParametersError(`server key ${i} is malformed`)
      return key
    })
    this.threshold = faultsTolerated(opts.serverKeys.length) + 1
    this.last = opts.lastSequence ?? 0
    this.brokers = [opts.broker, ...(opts.otherBrokers ?? [])]
    if (new Set(this.brokers).size !== this.brokers.length) {
      throw new InvalidParametersError('brokers must be distinct')
    }
  }

  /** The broker this client sends to now. */
  get broker(): PeerKey {
    return this.brokers[this.brokerIndex]
  }

  /** Times this client moved to the next broker. */
  get brokerFailovers(): number {
    return this.failovers
  }

  /** The last sequence number this client knows delivered. */
  get lastSequence(): number {
    return this.last
  }

  /** Messages not yet delivered (in flight and queued). */
  get pending(): number {
    return this.queue.length + (this.current === undefined ? 0 : 1)
  }

  /** Submits `payload`; resolves when f+1 servers certify its delivery. */
  submit(payload: Uint8Array): Promise<DeliveryReceipt> {
    if (!this.running) return Promise.reject(new NotStartedError('broker client'))
    if (payload.length > this.limits.maxPayload) {
      return Promise.reject(new MessageTooLargeError(payload.length, this.limits.maxPayload))
    }
    if (this.queue.length >= (this.opts.maxQueue ?? 1024)) {
      return Promise.reject(new LimitExceededError('client queue is full'))
    }
    // Servers treat a client's message equal to its previous one as that message raised
    // again (a nudge, not a delivery), so consecutive messages must differ.
    const previous = this.queue.at(-1)?.payload ?? this.current?.payload ?? this.lastPayload
    if (previous !== undefined && Buffer.compare(previous, payload) === 0) {
      return Promise.reject(
        new DuplicateMessageError(`of client ${this.opts.id} equal to its previous one`),
      )
    }
    const promise = new Promise<DeliveryReceipt>((resolve, reject) => {
      this.queue.push({ payload: payload.slice(), submittedAt: this.env.now(), resolve, reject })
    })
    if (this.current === undefined) this.next()
    return promise
  }

  start(): void {
    this.running = true
  }

  /** Stops retransmitting; messages without a delivery certificate reject with `NotStartedError`. */
  stop(): void {
    this.running = false
    this.cancelTimers()
    const unfinished = [...(this.current === undefined ? [] : [this.current]), ...this.queue]
    this.current = undefined
    this.queue.length = 0
    for (const p of unfinished) p.reject(new NotStartedError('broker client'))
  }

  peerConnected(): void {}

  peerDisconnected(): void {}

  receive(peer: PeerKey, frame: Uint8Array): void {
    if (!this.running) return
    this.recorder.frameReceived(frame.length, 0)
    if (!this.brokers.includes(peer)) {
      this.penalise(peer, 'not-the-broker')
      return
    }
    try {
      const kind = frameKind(frame)
      if (kind === FrameKind.Inclusion) this.onInclusion(peer, decodeInclusion(frame, this.limits))
      else if (kind === FrameKind.Delivered) this.onDelivered(peer, frame)
      else this.penalise(peer, 'unknown-frame')
    } catch (err) {
      this.log('malformed frame from %s: %s', peer, (err as Error).message)
      this.penalise(peer, 'malformed')
    }
  }

  private next(): void {
    const p = this.queue.shift()
    if (p === undefined || !this.running) return
    const sequence = this.last + 1
    const signature = this.opts.ed25519.sign(submissionInput(this.opts.id, sequence, p.payload))
    const frame = encodeSubmission({ id: this.opts.id, sequence, payload: p.payload, signature })
    this.current = {
      ...p,
      sentAt: this.env.now(),
      sequence,
      frame,
      transmissions: 0,
      retry: this.opts.retryMs ?? 1500,
      maxSignedRaise: 0,
      atBroker: 0,
    }
    this.transmit()
  }

  private transmit(): void {
    const c = this.current
    if (c === undefined || !this.running) return
    if (c.atBroker >= (this.opts.failoverAfter ?? 3) && this.brokers.length > 1) {
      // This broker stopped answering or leaves us out: the next one, at the first pace.
      this.brokerIndex = (this.brokerIndex + 1) % this.brokers.length
      this.failovers++
      c.atBroker = 0
      c.retry = this.opts.retryMs ?? 1500
      this.log('moving to broker %s', this.broker)
    }
    c.transmissions++
    c.atBroker++
    this.recorder.frameSent(c.frame.length, c.payload.length)
    this.env.send(this.broker, c.frame)
    c.timer = this.later(c.retry, () => this.transmit())
    c.retry = Math.min(c.retry * 2, this.opts.maxRetryMs ?? 8000)
  }

  /** Checks that `p` proves this client's current message is in the tree; returns the raise. */
  private checkInclusion(p: InclusionProof): number | 'stale' | undefined {
    const c = this.current
    if (c === undefined) return undefined
    const leaf = decodeLeaf(p.leaf, this.limits)
    const mine = leaf.entries.find((e) => e.id === this.opts.id)
    if (mine === undefined) return undefined
    // A late answer about the previous message (a retransmission answered twice).
    if (this.lastPayload !== undefined && Buffer.compare(mine.payload, this.lastPayload) === 0) {
      return 'stale'
    }
    if (Buffer.compare(mine.payload, c.payload) !== 0) return undefined
    if (!verifyMerkleProof(p.root, p.leaf, p.leafIndex, p.leafCount, p.proof)) return undefined
    return leaf.raise
  }

  /** True when `h` is a valid height certificate (the last one verified is cached). */
  private checkHeight(h: HeightCertificate): boolean {
    if (h.slot === 0) return true
    const key = `${h.slot}/${Buffer.from(h.root!).toString('hex')}`
    if (key === this.verifiedHeight) return true
    if (!verifyHeight(h, this.serverKeys, this.threshold)) return false
    this.verifiedHeight = key
    this.knownHeight = Math.max(this.knownHeight, h.slot)
    return true
  }

  private onInclusion(broker: PeerKey, p: InclusionFrame): void {
    const c = this.current
    if (c === undefined) return
    const raise = this.checkInclusion(p)
    if (raise === 'stale') return
    // A raise below our sequence number would make servers drop the message as stale; one
    // above the certified height + 1 is not legitimate yet, and a share on it could be
    // used later, once it is.
    if (raise === undefined || raise < c.sequence) {
      this.penalise(broker, 'bad-inclusion')
      return
    }
    const height = p.height === undefined ? this.knownHeight : p.height.slot
    if (raise > height + 1 || (p.height !== undefined && !this.checkHeight(p.height))) {
      this.penalise(broker, 'illegitimate-raise')
      return
    }
    // The broker has the message: wait a full retry period from now before resending.
    c.timer?.cancel()
    c.timer = this.later(c.retry, () => this.transmit())
    const signature = this.opts.bls.signShare(batchRootInput(p.root))
    c.maxSignedRaise = Math.max(c.maxSignedRaise, raise)
    const out = encodeShare({ id: this.opts.id, root: p.root, signature })
    this.recorder.frameSent(out.length, 0)
    this.env.send(broker, out)
  }

  private onDelivered(broker: PeerKey, frame: Uint8Array): void {
    const c = this.current
    if (c === undefined) return
    const d = decodeDelivered(frame, this.limits)
    const raise = this.checkInclusion(d.inclusion)
    if (raise === 'stale') return
    const input = deliveryInput(d.slot, d.inclusion.root)
    if (
      raise === undefined ||
      !verifyCertificate(d.shards, input, this.serverKeys, this.threshold)
    ) {
      this.penalise(broker, 'bad-delivery-certificate')
      return
    }
    c.timer?.cancel()
    // Continue above every raise we co-signed for this message: a batch the broker withheld
    // and has ordered later then carries a sequence number below our next one, and
    // servers drop it instead of delivering the message twice.
    this.last = Math.max(this.last, c.sequence, c.maxSignedRaise)
    // A delivery certificate is a height certificate too.
    this.knownHeight = Math.max(this.knownHeight, d.slot)
    this.lastPayload = c.payload
    this.current = undefined
    c.resolve({
      sequence: c.sequence,
      slot: d.slot,
      latencyMs: this.env.now() - c.sentAt,
      queuedMs: c.sentAt - c.submittedAt,
      transmissions: c.transmissions,
      broker,
    })
    this.next()
  }
}
