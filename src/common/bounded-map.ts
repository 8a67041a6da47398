/**
 * Sets `key` to `value` in an insertion-ordered map holding at most `capacity` entries:
 * `key` becomes the newest entry, and the oldest entries go first when the map is full.
 * The one eviction rule of the project's bounded tables (deny lists, caches, trackers), so
 * an attacker filling one pushes out its oldest entries and nothing else.
 */
export function setNewest<K, V>(map: Map<K, V>, key: K, value: V, capacity: number): void {
  map.delete(key)
  while (map.size > 0 && map.size >= capacity) {
    const oldest = map.keys().next().value as K
    map.delete(oldest)
  }
  map.set(key, value)
}
