/**
 * A FIFO queue with O(1) amortised removal from the front: an array and the index of its
 * head, compacted once the consumed part dominates (Array.prototype.shift is O(n)).
 */
export class Fifo<T> {
  private items: T[] = []
  private head = 0

  /** Items waiting. */
  get length(): number {
    return this.items.length - this.head
  }

  /** Adds `item` at the back. */
  push(item: T): void {
    this.items.push(item)
  }

  /** The front item, left in place; undefined when empty. */
  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined
  }

  /** The item `i` places behind the front (0 is the front), left in place; undefined past the back. */
  at(i: number): T | undefined {
    const j = this.head + i
    return i >= 0 && j < this.items.length ? this.items[j] : undefined
  }

  /** Removes and returns the front item; undefined when empty. */
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head++] = undefined as T // let the consumed item be collected
    if (this.head === this.items.length) this.clear()
    else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  /** Drops every item. */
  clear(): void {
    this.items = []
    this.head = 0
  }
}
