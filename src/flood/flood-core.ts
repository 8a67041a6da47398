import type { Artifact, ArtifactClass, PeerKey, Topic } from '../common/artifact.ts'
import { CoreBase } from '../common/core-base.ts'
import type { Dissemination, PublishOptions, PublishResult } from '../common/dissemination.ts'
import type { Env, ProtocolCore } from '../common/env.ts'
import {
  ConsensusMulticastError,
  DuplicateMessageError,
  InvalidParametersError,
  MessageTooLargeError,
  NoPeersError,
} from '../common/errors.ts'
import { contentMessageId, messageIdKey } from '../common/message-id.ts'
import { withDefaults } from '../common/options.ts'
import { SeenCache } from '../common/seen-cache.ts'
import type { ValidationResult } from '../common/validation.ts'
import { decodeFloodFrame, encodeFloodFrame, type FloodLimits } from './flood-codec.ts'

/** Options of the flooding strategy. */
export interface FloodOptions {
  /** Largest payload accepted or published, in bytes (default 1 MiB). */
  maxMessageBytes?: number
  /** Longest topic name, in bytes (default 256). */
  maxTopicBytes?: number
  /** How long a message id is remembered, in ms (default 120 s). */
  seenTtlMs?: number
  /** How many message ids are remembered at most (default 100,000). */
  seenCapacity?: number
}

const DEFAULTS: Required<FloodOptions> = {
  maxMessageBytes: 1 << 20,
  maxTopicBytes: 256,
  seenTtlMs: 120_000,
  seenCapacity: 100_000,
}

/**
 * Flooding: every node forwards each new consensus message to all its peers except the one
 * it came from; ingress messages go from the origin to its peers and stop there. The
 * baseline every other strategy is measured against. Subscriptions decide delivery only:
 * a node relays whatever it is subscribed to or not.
 */
export class FloodCore extends CoreBase implements ProtocolCore, Dissemination {
  /** @inheritdoc */
  readonly strategy = 'flood' as const
  private readonly options: Required<FloodOptions>
  private readonly limits: FloodLimits
  private readonly peers = new Set<PeerKey>()
  private readonly topics = new Set<Topic>()
  private readonly seen: SeenCache

  constructor(env: Env, options: FloodOptions = {}) {
    super(env, 'consensus-multicast:flood')
    this.options = withDefaults(DEFAULTS, options)
    for (const [k, v] of Object.entries(this.options)) {
      if (!(Number.isInteger(v) && v > 0)) {
        throw new InvalidParametersError(`flood option ${k} must be a positive integer`)
      }
    }
    this.limits = {
      maxDataBytes: this.options.maxMessageBytes,
      maxTopicBytes: this.options.maxTopicBytes,
      maxIdBytes: 64,
    }
    this.seen = new SeenCache(this.options.seenTtlMs, this.options.seenCapacity)
  }

  start(): void {}

  stop(): void {
    this.peers.clear()
  }

  peerConnected(peer: PeerKey): void {
    this.peers.add(peer)
  }

  peerDisconnected(peer: PeerKey): void {
    this.peers.delete(peer)
  }

  receive(peer: PeerKey, bytes: Uint8Array): void {
    let frame: ReturnType<typeof decodeFloodFrame>
    try {
      frame = decodeFloodFrame(bytes, this.limits)
    } catch (err) {
      this.reject(peer, err instanceof ConsensusMulticastError ? err.code : 'ERR_DECODE')
      return
    }
    this.recorder.frameReceived(bytes.length, frame.data.length)
    const key = messageIdKey(frame.id)
    const now = this.env.now()
    if (!this.seen.add(key, now)) {
      this.recorder.count('duplicates', frame.topic, frame.class)
      this.events.emit('duplicate', {
        id: frame.id,
        topic: frame.topic,
        class: frame.class,
        from: peer,
        receivedAt: now,
      })
      return
    }
    const artifact: Artifact = {
      id: frame.id,
      topic: frame.topic,
      data: frame.data,
      class: frame.class,
      from: peer,
      receivedAt: now,
    }
    const validator = this.validators.get(frame.topic)
    const verdict = validator === undefined ? 'accept' : validator(artifact)
    if (verdict instanceof Promise) {
      verdict.then(
        (v) => this.complete(artifact, v, bytes),
        (err) => {
          this.log.error('validator of %s threw: %e', frame.topic, err)
          this.complete(artifact, 'ignore', bytes)
        },
      )
    } else {
      this.complete(artifact, verdict, bytes)
    }
  }

  /** Delivers and relays a validated message, or counts why not. */
  private complete(artifact: Artifact, verdict: ValidationResult, bytes: Uint8Array): void {
    const { topic, class: cls, data } = artifact
    if (verdict === 'reject') {
      this.recorder.count('rejected', topic, cls)
      this.reject(artifact.from!, 'invalid-message', topic)
      return
    }
    if (verdict === 'ignore') {
      this.recorder.count('ignored', topic, cls)
      return
    }
    if (this.topics.has(topic)) {
      this.recorder.count('delivered', topic, cls, data.length)
      this.events.emit('artifact', artifact)
    }
    if (cls === 'consensus') this.forward(bytes, data.length, artifact.from)
  }

  subscribe(topic: Topic): void {
    this.topics.add(topic)
  }

  unsubscribe(topic: Topic): void {
    this.topics.delete(topic)
  }

  getTopics(): Topic[] {
    return [...this.topics]
  }

  async publish(
    topic: Topic,
    data: Uint8Array,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    return this.publishNow(topic, data, options.class ?? 'consensus')
  }

  /** The synchronous body of {@link publish}, for drivers that need the result at once. */
  publishNow(topic: Topic, data: Uint8Array, cls: ArtifactClass): PublishResult {
    if (data.length > this.options.maxMessageBytes) {
      throw new MessageTooLargeError(data.length, this.options.maxMessageBytes)
    }
    if (Buffer.byteLength(topic) > this.options.maxTopicBytes) {
      throw new InvalidParametersError(`topic longer than ${this.options.maxTopicBytes} bytes`)
    }
    if (this.peers.size === 0) throw new NoPeersError(topic)
    const id = contentMessageId(topic, data)
    const key = messageIdKey(id)
    if (!this.seen.add(key, this.env.now())) throw new DuplicateMessageError(key)
    this.recorder.count('published', topic, cls)
    const bytes = encodeFloodFrame({ id, class: cls, topic, data })
    return { id, recipients: this.forward(bytes, data.length, undefined) }
  }

  private forward(bytes: Uint8Array, payload: number, except: PeerKey | undefined): number {
    let sent = 0
    for (const peer of this.peers) {
      if (peer === except) continue
      this.env.send(peer, bytes)
      this.recorder.frameSent(bytes.length, payload)
      sent++
    }
    return sent
  }
}
