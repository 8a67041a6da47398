import type { ArtifactClass, PeerKey, Topic } from '../common/artifact.ts'
import type { MessageId } from '../common/message-id.ts'
import type { RpcMessage } from './rpc-codec.ts'

/** A cached message, ready to be re-sent in reply to IWANT. */
export interface CachedMessage {
  /** The id. */
  readonly id: MessageId
  /** The message as it travels on the wire. */
  readonly message: RpcMessage
  /** Its topic. */
  readonly topic: Topic
  /** Its class. */
  readonly class: ArtifactClass
  /** Whether it is advertised in IHAVE (ingress is not, unless forwarded). */
  readonly advertise: boolean
  /** When this node first received (or published) it, in ms. */
  readonly firstSeen: number
}

interface Entry {
  cached: CachedMessage
  /** IWANT replies sent per peer, capped by the retransmission limit; made on the first reply. */
  sentTo: Map<PeerKey, number> | undefined
}

/**
 * The gossipsub message cache: a sliding window of `length` heartbeats of messages, the
 * newest `gossip` of which are advertised in IHAVE. Memory is bounded by the window (the
 * router shifts it every heartbeat) and by `maxEntries`.
 */
export class MessageCache {
  private readonly entries = new Map<string, Entry>()
  private readonly windows: string[][]
  private readonly gossip: number
  private readonly maxEntries: number

  constructor(length: number, gossip: number, maxEntries = 100_000) {
    this.windows = Array.from({ length }, () => [])
    this.gossip = gossip
    this.maxEntries = maxEntries
  }

  /** Adds a message under its id key; returns false when it was there or the cache is full. */
  put(key: string, cached: CachedMessage): boolean {
    if (this.entries.has(key) || this.entries.size >= this.maxEntries) return false
    this.entries.set(key, { cached, sentTo: undefined })
    this.windows[0].push(key)
    return true
  }

  /** The cached message, if present. */
  get(key: string): CachedMessage | undefined {
    return this.entries.get(key)?.cached
  }

  /**
   * The message for an IWANT reply to `peer`, counting the reply; undefined when absent or
   * already sent to that peer `maxTransmissions` times.
   */
  getForPeer(key: string, peer: PeerKey, maxTransmissions: number): CachedMessage | undefined {
    const e = this.entries.get(key)
    if (e === undefined) return undefined
    e.sentTo ??= new Map()
    const n = e.sentTo.get(peer) ?? 0
    if (n >= maxTransmissions) return undefined
    e.sentTo.set(peer, n + 1)
    return e.cached
  }

  /** Ids of advertisable messages of `topic` in the gossip windows. */
  gossipIds(topic: Topic): MessageId[] {
    const out: MessageId[] = []
    for (let w = 0; w < this.gossip; w++) {
      for (const key of this.windows[w]) {
        const e = this.entries.get(key)
        if (e !== undefined && e.cached.topic === topic && e.cached.advertise) out.push(e.cached.id)
      }
    }
    return out
  }

  /** Moves the window by one heartbeat, dropping the oldest messages. */
  shift(): void {
    const last = this.windows.pop()!
    for (const key of last) this.entries.delete(key)
    // The oldest window's array, emptied, becomes the newest: no array per heartbeat.
    last.length = 0
    this.windows.unshift(last)
  }
}
