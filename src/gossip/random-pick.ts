/** Shuffles `items` in place with `random` (Fisher–Yates) and returns them. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  shuffleFirst(items, items.length, random)
  return items
}

/** Up to `n` items chosen uniformly at random with `random` (the array is reordered). */
export function pick<T>(items: T[], n: number, random: () => number): T[] {
  if (n <= 0) return []
  const picked = pickFirst(items, items.length, n, random)
  return picked === items.length ? items : items.slice(0, picked)
}

/**
 * {@link pick} over the first `count` items of `items`, in place: the picked items are the
 * first ones after the call, and their number is returned. Same draws and order as `pick`
 * of those items, with no array made (for a scratch array reused at every heartbeat).
 */
export function pickFirst<T>(items: T[], count: number, n: number, random: () => number): number {
  if (n <= 0) return 0
  if (count <= n) {
    shuffleFirst(items, count, random)
    return count
  }
  for (let i = 0; i < n; i++) swap(items, i, i + Math.floor(random() * (count - i)))
  return n
}

/** Shuffles the first `count` items of `items` in place (Fisher–Yates, from the last). */
function shuffleFirst<T>(items: T[], count: number, random: () => number): void {
  for (let i = count - 1; i > 0; i--) swap(items, i, Math.floor(random() * (i + 1)))
}

function swap<T>(items: T[], i: number, j: number): void {
  const t = items[i]
  items[i] = items[j]
  items[j] = t
}
