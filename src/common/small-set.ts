/** Items held in a plain array before a {@link SmallSet} turns into a `Set`. */
const ARRAY_LIMIT = 8

/** {@link SmallSet}'s `one` when it holds no single item. */
const NONE: unique symbol = Symbol('none')

/** `a` and `b` are the same item for a `Set` (SameValueZero: NaN is NaN). */
function same(a: unknown, b: unknown): boolean {
  return a === b || (Number.isNaN(a) && Number.isNaN(b))
}

/**
 * A set that holds one item in a field, a few in a plain array, and turns into a `Set` once
 * it grows past a few items. A `Set` costs about 150 bytes even with one item, an array
 * about 60; a peer's topics are usually one or two, and a simulation of 72,000 nodes with
 * 50 peers each holds 3.6 million of them. Iterates in insertion order, like a `Set`.
 */
export class SmallSet<T> implements Iterable<T> {
  /** The only item, while `items` is unset. */
  private one: T | typeof NONE = NONE
  /** Two items or more (or fewer after deletes): an array, then a `Set`. */
  private items: T[] | Set<T> | undefined = undefined

  /** Number of items. */
  get size(): number {
    const items = this.items
    if (items === undefined) return this.one === NONE ? 0 : 1
    return Array.isArray(items) ? items.length : items.size
  }

  /** True when `item` is in the set. */
  has(item: T): boolean {
    const items = this.items
    if (items === undefined) return this.one !== NONE && same(this.one, item)
    return Array.isArray(items) ? items.includes(item) : items.has(item)
  }

  /** Adds `item` (no-op when present). */
  add(item: T): this {
    const items = this.items
    if (items === undefined) {
      const one = this.one
      if (one === NONE) this.one = item
      else if (!same(one, item)) {
        this.items = [one, item]
        this.one = NONE
      }
    } else if (!Array.isArray(items)) items.add(item)
    else if (!items.includes(item)) {
      if (items.length < ARRAY_LIMIT) this.items = withItem(items, item)
      else this.items = new Set([...items, item])
    }
    return this
  }

  /** Removes `item`; true when it was present. */
  delete(item: T): boolean {
    const items = this.items
    if (items === undefined) {
      if (this.one === NONE || !same(this.one, item)) return false
      this.one = NONE
      return true
    }
    if (!Array.isArray(items)) return items.delete(item)
    const i = items.indexOf(item)
    if (i < 0) return false
    items.splice(i, 1)
    return true
  }

  /** The oldest item (the first in insertion order), or undefined when empty. */
  first(): T | undefined {
    const items = this.items
    if (items === undefined) return this.one === NONE ? undefined : this.one
    return Array.isArray(items) ? items[0] : items.values().next().value
  }

  [Symbol.iterator](): Iterator<T> {
    const items = this.items
    if (items !== undefined) return items[Symbol.iterator]()
    return (this.one === NONE ? [] : [this.one])[Symbol.iterator]()
  }
}

/** `items` and `item` in a new array of exactly that size (`push` and spreads reserve 16 more slots). */
function withItem<T>(items: T[], item: T): T[] {
  const grown = new Array<T>(items.length + 1)
  for (let i = 0; i < items.length; i++) grown[i] = items[i]
  grown[items.length] = item
  return grown
}
