/**
 * How a message of `length` bytes is cut: `count` fragments of `size` bytes, the last one
 * shorter. Sizes are balanced (`size = ceil(length / count)`) so the receiver can recompute
 * every fragment's offset and length from the header alone and reject any that disagree.
 */
export function fragmentLayout(
  length: number,
  maxPayload: number,
): { count: number; size: number } {
  const count = Math.max(1, Math.ceil(length / maxPayload))
  return { count, size: Math.ceil(length / count) }
}

/** The expected payload length of fragment `index` of a message laid out by {@link fragmentLayout}. */
export function fragmentLength(length: number, count: number, index: number): number {
  const size = Math.ceil(length / count)
  return Math.max(0, Math.min(size, length - index * size))
}
