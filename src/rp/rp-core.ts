import type { ArtifactClass, PeerKey, Topic } from '../common/artifact.ts'
import { CoreBase } from '../common/core-base.ts'
import { InvalidParametersError } from '../common/errors.ts'
import type { MessageId } from '../common/message-id.ts'
import { encodeRpMessage, type RpCodecLimits, type RpMessage, rpPayloadBytes } from './codec.ts'
import type { RpEvents } from './events.ts'

/** What the member and the replication point share: framing, counting and topic checks. */
export abstract class RpCore extends CoreBase<RpEvents> {
  /** Decode limits (set by the subclass from its options). */
  protected abstract readonly limits: RpCodecLimits

  /** Throws unless `topic` is 1 to `maxTopicBytes` bytes long. */
  protected checkTopic(topic: Topic): void {
    const max = this.limits.maxTopicBytes
    if (topic.length === 0 || Buffer.byteLength(topic) > max) {
      throw new InvalidParametersError(`topic must be 1..${max} bytes`)
    }
  }

  /** Encodes and sends `m`, counting it as payload or control. */
  protected send(peer: PeerKey, m: RpMessage): void {
    const bytes = encodeRpMessage(m)
    const payload = rpPayloadBytes(m)
    if (payload === 0) this.recorder.controlSent(m.type)
    this.sendBytes(peer, bytes, payload)
  }

  /** Sends an already encoded frame carrying `payload` bytes of application data. */
  protected sendBytes(peer: PeerKey, bytes: Uint8Array, payload: number): void {
    this.env.send(peer, bytes)
    this.recorder.frameSent(bytes.length, payload)
  }

  /** Counts and announces a copy of a message already seen. */
  protected duplicate(
    m: { id: MessageId; topic: Topic; class: ArtifactClass },
    from: PeerKey,
    now: number,
  ): void {
    this.recorder.count('duplicates', m.topic, m.class)
    this.events.emit('duplicate', {
      id: m.id,
      topic: m.topic,
      class: m.class,
      from,
      receivedAt: now,
    })
  }
}
