import { logger } from '@libp2p/logger'
import { messageIdKey } from '../common/message-id.ts'
import type { Shard } from './certificate.ts'

const log = logger('consensus-multicast:broker:orderer')

/** What consensus orders: a witnessed batch's digest and its witness certificate. */
export interface BatchReference {
  /** sha256 of the distilled batch frame. */
  digest: Uint8Array
  /** Witness shards of at least f+1 servers on the digest. */
  witnesses: Shard[]
}

/** Receives ordered references, slot 1, 2, 3, … without gaps. */
export type OrderedListener = (slot: number, reference: BatchReference) => void

/**
 * Total-order broadcast of batch references: the consensus engine implements it. Every
 * correct server must see the same references in the same slots.
 */
export interface Orderer {
  /** Proposes a witnessed batch reference for ordering. */
  propose(reference: BatchReference): void
  /** Registers a server's listener; returns a function that removes it. */
  subscribe(listener: OrderedListener): () => void
}

/**
 * A single sequencer for tests and examples: it assigns slots in arrival order and calls
 * every listener in slot order (asynchronously, never inside `propose`). It is NOT
 * Byzantine fault tolerant: it is one trusted process, and if it stops nothing is ordered.
 * It refuses a digest it has already ordered (within the last `memory` slots), so a
 * batch proposed twice takes one slot; servers also refuse a digest delivered before.
 */
export class SingleSequencer implements Orderer {
  private readonly listeners = new Set<OrderedListener>()
  private readonly recent = new Set<string>()
  private readonly order: string[] = []
  private readonly memory: number
  private slot = 0

  constructor(memory = 4096) {
    this.memory = memory
  }

  /** The last slot assigned. */
  get height(): number {
    return this.slot
  }

  propose(reference: BatchReference): void {
    const key = messageIdKey(reference.digest)
    if (this.recent.has(key)) {
      log('refusing digest %s: already ordered', key)
      return
    }
    this.recent.add(key)
    this.order.push(key)
    if (this.order.length > this.memory) this.recent.delete(this.order.shift()!)
    const slot = ++this.slot
    queueMicrotask(() => {
      for (const l of this.listeners) l(slot, reference)
    })
  }

  subscribe(listener: OrderedListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }
}
