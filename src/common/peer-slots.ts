import type { PeerKey } from './artifact.ts'

/**
 * Small integers for the connected peers of one node, reused after a peer leaves (the last
 * freed first), to index per-peer arrays. A node's parts (the gossip router, its score and
 * its budgets) keep their per-peer state in arrays by one shared slot, so that one map lookup
 * finds all of it: at 72,000 nodes × 50 peers every map keyed by peer costs ~37 bytes a link.
 */
export class SlotPool {
  private readonly free: number[] = []
  private next = 0

  /** A slot no peer holds. */
  take(): number {
    return this.free.pop() ?? this.next++
  }

  /** `slot` is free again. */
  give(slot: number): void {
    this.free.push(slot)
  }
}

/** Finds a connected peer's slot (undefined when it has none). */
export type SlotOf = (peer: PeerKey) => number | undefined

/** Slots by peer, for a part used on its own (its owner keeps no slots of its own). */
export class PeerSlots {
  private readonly byPeer = new Map<PeerKey, number>()
  private readonly pool = new SlotPool()

  /** `peer`'s slot, if it has one. */
  readonly get: SlotOf = (peer) => this.byPeer.get(peer)

  /** `peer`'s slot, given one now if it has none. */
  add(peer: PeerKey): number {
    let slot = this.byPeer.get(peer)
    if (slot === undefined) {
      slot = this.pool.take()
      this.byPeer.set(peer, slot)
    }
    return slot
  }

  /** Frees `peer`'s slot. */
  delete(peer: PeerKey): void {
    const slot = this.byPeer.get(peer)
    if (slot === undefined) return
    this.byPeer.delete(peer)
    this.pool.give(slot)
  }
}
