import { logger } from '@libp2p/logger'
import type { Artifact, ArtifactClass, Topic } from '../common/artifact.ts'
import type {
  Dissemination,
  DisseminationEvents,
  PublishOptions,
  PublishResult,
} from '../common/dissemination.ts'
import { Emitter, type Listener } from '../common/emitter.ts'
import { InvalidParametersError } from '../common/errors.ts'
import { contentMessageId, type MessageId } from '../common/message-id.ts'
import { StatsRecorder } from '../common/stats.ts'
import type { ValidationResult, Validator } from '../common/validation.ts'
import type { BrokerClient } from './client.ts'
import type { BrokerDelivery, WitnessServer } from './server.ts'

const log = logger('consensus-multicast:broker:dissemination')

/** Options of {@link BrokerDissemination}. */
export interface BrokerDisseminationOptions {
  /** The client this node publishes through (absent on a server that only delivers). */
  client?: BrokerClient
  /** The client's directory id (names published messages). */
  clientId?: number
  /** The witness server this node delivers from (absent on a pure client). */
  server?: WitnessServer
  /** The one topic the broker system carries. Default 'broker'. */
  topic?: Topic
  /**
   * Deliveries waiting behind an asynchronous validator, at most. Beyond it a delivery is
   * not validated but counted and reported as a `rejected` event with reason
   * `validation-queue-full`. Default 4096.
   */
  maxPendingValidations?: number
  /** The clock of an artifact's `receivedAt`, in ms. Default `performance.now` (the simulator passes its virtual clock). */
  now?: () => number
}

/**
 * A broker message id: u32 client id (little-endian) ‖ the content id of its payload on the
 * topic. The publisher and every server derive it alike; the sequence number a message is
 * delivered at (its batch's raise, or a straggler's own) is not known to its client.
 */
export function brokerMessageId(clientId: number, topic: Topic, payload: Uint8Array): MessageId {
  const content = contentMessageId(topic, payload)
  const id = new Uint8Array(4 + content.length)
  new DataView(id.buffer).setUint32(0, clientId, true)
  id.set(content, 4)
  return id
}

/**
 * The Chop Chop broker behind the typed {@link Dissemination} API (strategy `broker`).
 * A client publishes through its broker; `publish` resolves once f+1 servers certify the
 * delivery. A server emits every message it delivers, in total order, as an `artifact`
 * (after the topic's validator; an asynchronous validator's verdicts are applied in delivery
 * order, so artifacts keep the total order) and counts the copies deduplication ignored as
 * duplicates.
 * The broker system carries one topic and only the `consensus` class: every message is
 * ordered and delivered to every server.
 */
export class BrokerDissemination implements Dissemination {
  readonly strategy = 'broker' as const
  private readonly opts: BrokerDisseminationOptions
  private readonly topic: Topic
  private readonly events = new Emitter<DisseminationEvents>()
  private readonly recorder = new StatsRecorder()
  private readonly topics = new Set<Topic>()
  private validator?: Validator
  private readonly unlisten: (() => void)[] = []
  private readonly maxPending: number
  /** Deliveries whose verdict is awaited, oldest first: verdicts apply in this order. */
  private readonly awaiting: { artifact: Artifact; verdict: Promise<ValidationResult> }[] = []

  constructor(opts: BrokerDisseminationOptions) {
    if (opts.client === undefined && opts.server === undefined) {
      throw new InvalidParametersError('a BrokerDissemination needs a client, a server or both')
    }
    if (opts.client !== undefined && opts.clientId === undefined) {
      throw new InvalidParametersError('clientId is required with a client')
    }
    this.opts = opts
    this.topic = opts.topic ?? 'broker'
    this.maxPending = opts.maxPendingValidations ?? 4096
    if (!Number.isInteger(this.maxPending) || this.maxPending < 1) {
      throw new InvalidParametersError('maxPendingValidations must be a positive integer')
    }
    const server = opts.server
    if (server !== undefined) {
      this.unlisten.push(server.on('deliver', (d) => this.onDeliver(d)))
      this.unlisten.push(server.on('rejected', (e) => this.events.emit('rejected', e)))
      this.unlisten.push(
        server.on('batchDelivered', (b) => {
          for (let i = 0; i < b.ignored; i++)
            this.recorder.count('duplicates', this.topic, 'consensus')
        }),
      )
    }
  }

  subscribe(topic: Topic): void {
    this.checkTopic(topic)
    this.topics.add(topic)
  }

  unsubscribe(topic: Topic): void {
    this.topics.delete(topic)
  }

  getTopics(): Topic[] {
    return [...this.topics]
  }

  async publish(topic: Topic, data: Uint8Array, options?: PublishOptions): Promise<PublishResult> {
    this.checkTopic(topic)
    const cls: ArtifactClass = options?.class ?? 'consensus'
    if (cls !== 'consensus') {
      throw new InvalidParametersError('the broker orders every message: only class consensus')
    }
    const client = this.opts.client
    if (client === undefined) throw new InvalidParametersError('this node has no broker client')
    await client.submit(data)
    this.recorder.count('published', topic, cls)
    return { id: brokerMessageId(this.opts.clientId!, this.topic, data), recipients: 1 }
  }

  setValidator(topic: Topic, validator: Validator | undefined): void {
    this.checkTopic(topic)
    this.validator = validator
  }

  on<K extends keyof DisseminationEvents>(
    type: K,
    listener: Listener<DisseminationEvents[K]>,
  ): () => void {
    return this.events.on(type, listener)
  }

  off<K extends keyof DisseminationEvents>(
    type: K,
    listener: Listener<DisseminationEvents[K]>,
  ): void {
    this.events.off(type, listener)
  }

  stats(): ReturnType<StatsRecorder['snapshot']> {
    return this.recorder.snapshot()
  }

  /** Stops listening to the server. */
  close(): void {
    for (const u of this.unlisten.splice(0)) u()
  }

  private checkTopic(topic: Topic): void {
    if (topic !== this.topic) {
      throw new InvalidParametersError(
        `the broker carries topic "${this.topic}" only, not "${topic}"`,
      )
    }
  }

  private onDeliver(d: BrokerDelivery): void {
    if (!this.topics.has(this.topic)) return
    const artifact = {
      id: brokerMessageId(d.clientId, this.topic, d.payload),
      topic: this.topic,
      data: d.payload,
      class: 'consensus' as const,
      origin: `client/${d.clientId}`,
      receivedAt: this.opts.now?.() ?? performance.now(),
    }
    let verdict: ValidationResult | Promise<ValidationResult>
    try {
      verdict = this.validator?.(artifact) ?? 'accept'
    } catch (err) {
      log.error('validator threw on %s, ignoring the message: %e', artifact.origin, err)
      verdict = 'ignore'
    }
    if (typeof verdict === 'string' && this.awaiting.length === 0) {
      this.apply(artifact, verdict)
      return
    }
    // Behind (or itself) an asynchronous verdict: wait, so artifacts keep the total order.
    if (this.awaiting.length >= this.maxPending) {
      this.recorder.count('rejected', this.topic, 'consensus')
      this.events.emit('rejected', {
        from: artifact.origin,
        reason: 'validation-queue-full',
        topic: this.topic,
      })
      return
    }
    const settled = Promise.resolve(verdict).catch((err): ValidationResult => {
      log.error('validator failed on %s, ignoring the message: %e', artifact.origin, err)
      return 'ignore'
    })
    this.awaiting.push({ artifact, verdict: settled })
    if (this.awaiting.length === 1) void this.drain()
  }

  /** Applies awaited verdicts in delivery order. */
  private async drain(): Promise<void> {
    while (this.awaiting.length > 0) {
      const head = this.awaiting[0]
      const verdict = await head.verdict
      this.awaiting.shift()
      this.apply(head.artifact, verdict)
    }
  }

  private apply(artifact: Artifact, verdict: ValidationResult): void {
    if (verdict === 'accept') {
      this.recorder.count('delivered', this.topic, 'consensus', artifact.data.length)
      this.events.emit('artifact', artifact)
    } else if (verdict === 'reject') {
      this.recorder.count('rejected', this.topic, 'consensus')
      this.recorder.penalise(artifact.origin ?? 'unknown', 'validator-reject')
    } else {
      this.recorder.count('ignored', this.topic, 'consensus')
    }
  }
}
