/** Shuffles `items` in place with `random` (Fisher–Yates) and returns them. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = items[i]
    items[i] = items[j]
    items[j] = t
  }
  return items
}

/** Up to `n` items chosen uniformly at random with `random` (the array is reordered). */
export function pick<T>(items: T[], n: number, random: () => number): T[] {
  if (n <= 0) return []
  if (items.length <= n) return shuffle(items, random)
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (items.length - i))
    const t = items[i]
    items[i] = items[j]
    items[j] = t
  }
  return items.slice(0, n)
}

/**
 * {@link pick} over the first `count` items of `items`, in place: the picked items are the
 * first ones after the call, and their number is returned. Same draws and order as `pick`
 * of those items, with no array made (for a scratch array reused at every heartbeat).
 */
export function pickFirst<T>(items: T[], count: number, n: number, random: () => number): number {
  if (n <= 0) return 0
  if (count <= n) {
    for (let i = count - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      const t = items[i]
      items[i] = items[j]
      items[j] = t
    }
    return count
  }
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (count - i))
    const t = items[i]
    items[i] = items[j]
    items[j] = t
  }
  return n
}
