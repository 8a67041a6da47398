import { ARTIFACT_CLASSES, type ArtifactClass, type PeerKey, type Topic } from './artifact.ts'

/** Counts for one topic or one artifact class. */
export interface FlowStats {
  /** Artifacts this node published. */
  published: number
  /** Distinct artifacts delivered to the application. */
  delivered: number
  /** Copies received of artifacts already seen. */
  duplicates: number
  /** Artifacts the validator rejected. */
  rejected: number
  /** Artifacts the validator ignored. */
  ignored: number
  /** Payload bytes of delivered artifacts. */
  deliveredBytes: number
}

/** Bytes and frames in one direction, split into payload and control. */
export interface WireStats {
  /** Frames (RPCs, datagrams) on the wire. */
  frames: number
  /** Bytes carrying application payload (message data). */
  payloadBytes: number
  /** Every other byte: headers, ids, control messages, framing. */
  controlBytes: number
}

/** Control messages of one kind (IHAVE, GRAFT, HELLO, ...). */
export interface ControlStats {
  /** Sent by this node. */
  sent: number
  /** Received by this node. */
  received: number
}

/** A node's counters, as returned by `Dissemination.stats()`. */
export interface DisseminationStats {
  /** Totals over every topic. */
  total: FlowStats
  /** Per topic. */
  byTopic: Record<Topic, FlowStats>
  /** Per artifact class. */
  byClass: Record<ArtifactClass, FlowStats>
  /** Traffic sent. */
  sent: WireStats
  /** Traffic received. */
  received: WireStats
  /** Control messages by kind. */
  control: Record<string, ControlStats>
  /** Inputs rejected as malformed or abusive, by reason. */
  invalid: Record<string, number>
  /** Inputs rejected as malformed or abusive, by sending peer (bounded; the largest offenders). */
  invalidByPeer: Record<PeerKey, number>
  /**
   * Protocol decisions worth watching, by name (e.g. `'tree-parent-passed-over'`: a one-copy
   * source-tree parent showed nothing of a message and was passed over). Names are fixed in
   * the code, so the record stays small.
   */
  events: Record<string, number>
}

/** How many distinct peers {@link StatsRecorder} tracks penalties for. */
export const MAX_TRACKED_OFFENDERS = 1024
/** How many distinct topics {@link StatsRecorder} keeps separate counters for. */
export const MAX_TRACKED_TOPICS = 4096

function emptyFlow(): FlowStats {
  return { published: 0, delivered: 0, duplicates: 0, rejected: 0, ignored: 0, deliveredBytes: 0 }
}

type FlowField = Exclude<keyof FlowStats, 'deliveredBytes'>

/** Counts one artifact in `flow` (with its bytes when delivered). */
function countFlow(flow: FlowStats, field: FlowField, bytes: number): void {
  flow[field]++
  if (field === 'delivered') flow.deliveredBytes += bytes
}

/**
 * The counters behind `stats()`. Protocol cores call it as events happen; it is bounded
 * (topics and offending peers past the caps are folded into `'(other)'`).
 */
export class StatsRecorder {
  private readonly total = emptyFlow()
  private readonly byTopic = new Map<Topic, FlowStats>()
  private readonly byClass = new Map<ArtifactClass, FlowStats>(
    ARTIFACT_CLASSES.map((c) => [c, emptyFlow()]),
  )
  // Wire counters as the recorder's own fields, not two objects: every frame sent or received
  // counts here, and in a large simulation each object was one more cache miss per frame.
  private sentFrames = 0
  private sentPayloadBytes = 0
  private sentControlBytes = 0
  private receivedFrames = 0
  private receivedPayloadBytes = 0
  private receivedControlBytes = 0
  private readonly control = new Map<string, ControlStats>()
  // The last topic's and class's counters: a node counts one topic's copies in a row, and each
  // map lookup was two more cache misses per copy received in a large simulation.
  private lastTopic: Topic | undefined
  private lastTopicFlow: FlowStats | undefined
  private lastClass: ArtifactClass | undefined
  private lastClassFlow: FlowStats | undefined
  /** Rejections by reason, and by peer: made on first use (most nodes of a simulation never reject). */
  private invalid: Map<string, number> | undefined
  private invalidByPeer: Map<PeerKey, number> | undefined
  /** Protocol events by name (names are constants of the code). */
  private events: Map<string, number> | undefined

  /** Counts one artifact event on a topic and class. */
  count(field: FlowField, topic: Topic, cls: ArtifactClass, bytes = 0): void {
    // Three calls, not a loop over a new array: this runs for every copy a node receives.
    countFlow(this.total, field, bytes)
    countFlow(this.topicFlow(topic), field, bytes)
    countFlow(this.classFlow(cls), field, bytes)
  }

  /** Counts a frame sent, split into payload and control bytes. */
  frameSent(totalBytes: number, payloadBytes: number): void {
    this.sentFrames++
    this.sentPayloadBytes += payloadBytes
    this.sentControlBytes += totalBytes - payloadBytes
  }

  /** Counts a frame received, split into payload and control bytes. */
  frameReceived(totalBytes: number, payloadBytes: number): void {
    this.receivedFrames++
    this.receivedPayloadBytes += payloadBytes
    this.receivedControlBytes += totalBytes - payloadBytes
  }

  /** Counts control messages of a kind sent. */
  controlSent(kind: string, n = 1): void {
    this.controlStats(kind).sent += n
  }

  /** Counts control messages of a kind received. */
  controlReceived(kind: string, n = 1): void {
    this.controlStats(kind).received += n
  }

  /**
   * The live counters of a control kind, listed from this call on: a caller counting every
   * frame keeps them instead of naming the kind each time.
   */
  controlStats(kind: string): ControlStats {
    let entry = this.control.get(kind)
    if (entry === undefined) {
      entry = { sent: 0, received: 0 }
      this.control.set(kind, entry)
    }
    return entry
  }

  /** Counts a rejected input against the peer that sent it. Returns the peer's new count. */
  penalise(peer: PeerKey, reason: string): number {
    this.invalid ??= new Map()
    this.invalid.set(reason, (this.invalid.get(reason) ?? 0) + 1)
    this.invalidByPeer ??= new Map()
    const byPeer = this.invalidByPeer
    const key = byPeer.has(peer) || byPeer.size < MAX_TRACKED_OFFENDERS ? peer : '(other)'
    const n = (byPeer.get(key) ?? 0) + 1
    byPeer.set(key, n)
    return n
  }

  /** Counts one protocol event (`name` is a constant of the code, never peer input). */
  event(name: string): void {
    this.events ??= new Map()
    this.events.set(name, (this.events.get(name) ?? 0) + 1)
  }

  /** Penalties counted against one peer. */
  penalties(peer: PeerKey): number {
    return this.invalidByPeer?.get(peer) ?? 0
  }

  /** A deep copy of every counter. */
  snapshot(): DisseminationStats {
    const flows = <K extends string>(m: Map<K, FlowStats>) =>
      Object.fromEntries([...m].map(([k, v]) => [k, { ...v }])) as Record<K, FlowStats>
    return {
      total: { ...this.total },
      byTopic: flows(this.byTopic),
      byClass: flows(this.byClass),
      sent: {
        frames: this.sentFrames,
        payloadBytes: this.sentPayloadBytes,
        controlBytes: this.sentControlBytes,
      },
      received: {
        frames: this.receivedFrames,
        payloadBytes: this.receivedPayloadBytes,
        controlBytes: this.receivedControlBytes,
      },
      control: Object.fromEntries([...this.control].map(([k, v]) => [k, { ...v }])),
      invalid: Object.fromEntries(this.invalid ?? []),
      invalidByPeer: Object.fromEntries(this.invalidByPeer ?? []),
      events: Object.fromEntries(this.events ?? []),
    }
  }

  private classFlow(cls: ArtifactClass): FlowStats {
    if (cls === this.lastClass) return this.lastClassFlow!
    const flow = this.byClass.get(cls)!
    this.lastClass = cls
    this.lastClassFlow = flow
    return flow
  }

  private topicFlow(topic: Topic): FlowStats {
    if (topic === this.lastTopic) return this.lastTopicFlow!
    let flow = this.byTopic.get(topic)
    if (flow === undefined) {
      const key = this.byTopic.size < MAX_TRACKED_TOPICS ? topic : '(other)'
      flow = this.byTopic.get(key) ?? emptyFlow()
      this.byTopic.set(key, flow)
    }
    this.lastTopic = topic
    this.lastTopicFlow = flow
    return flow
  }
}
