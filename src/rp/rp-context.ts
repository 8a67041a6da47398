import type { Logger } from '@libp2p/interface'
import type { ArtifactClass, PeerKey, Topic } from '../common/artifact.ts'
import type { Emitter } from '../common/emitter.ts'
import type { Env, TimerHandle } from '../common/env.ts'
import type { MessageId } from '../common/message-id.ts'
import type { SeenCache } from '../common/seen-cache.ts'
import type { StatsRecorder } from '../common/stats.ts'
import type { Validator } from '../common/validation.ts'
import type { PeerSignatures } from '../crypto/peer-signatures.ts'
import type { RpCodecLimits, RpMessage } from './codec.ts'
import type { RpEvents } from './events.ts'
import type { LinkStateDb } from './link-state.ts'
import type { Membership } from './membership.ts'
import type { RepairBuffer } from './repair.ts'

/**
 * What the parts of a replication point share: its environment, decode limits, counters,
 * events and validators; the core's paths for sending, penalties and timers (so that a
 * timer a part sets still dies with the core); and the RP's tables.
 */
export interface RpContext {
  /** The core's only way to the outside world. */
  readonly env: Env
  /** The core's logger (the node's, under the libp2p driver). */
  readonly log: Logger
  /** Decode limits (`maxIds` also bounds what is sent). */
  readonly limits: RpCodecLimits
  /** The core's counters. */
  readonly recorder: StatsRecorder
  /** The core's events. */
  readonly events: Emitter<RpEvents>
  /** Publishers' signatures: checked on every new message, made on the RP's own publishes. */
  readonly signatures: PeerSignatures | undefined
  /** Per-topic validators of the RP's own application. */
  readonly validators: ReadonlyMap<Topic, Validator>
  /** True between `start()` and `stop()`. */
  running(): boolean
  /** Encodes and sends `m`, counting it. */
  send(peer: PeerKey, m: RpMessage): void
  /** Sends an encoded frame carrying `payload` bytes of application data. */
  sendBytes(peer: PeerKey, bytes: Uint8Array, payload: number): void
  /** Counts refused input against `peer` and tells the application. */
  reject(peer: PeerKey, reason: string, topic?: Topic): void
  /** Counts and announces a copy of a message already seen. */
  duplicate(
    m: { id: MessageId; topic: Topic; class: ArtifactClass },
    from: PeerKey,
    now: number,
  ): void
  /** Calls `fn` once after `ms`, unless the core stops (or the handle cancels) first. */
  later(ms: number, fn: () => void): TimerHandle
  /** Registered members and their topics. */
  readonly membership: Membership
  /** The backbone's link states, this RP's own included. */
  readonly lsdb: LinkStateDb
  /** Ids of the messages seen lately. */
  readonly seen: SeenCache
  /** Consensus messages held for repair. */
  readonly buffer: RepairBuffer
}
