/** Percentiles of a distribution. */
export interface Distribution {
  /** Number of samples. */
  count: number
  /** Mean. */
  mean: number
  /** Median. */
  p50: number
  /** 90th percentile. */
  p90: number
  /** 99th percentile. */
  p99: number
  /** Largest sample. */
  max: number
}

/** Mean and percentiles (nearest rank) of `samples`. */
export function distribution(samples: ArrayLike<number>): Distribution {
  const sorted = Float64Array.from(samples).sort()
  const n = sorted.length
  if (n === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 }
  let sum = 0
  for (let i = 0; i < n; i++) sum += sorted[i]
  const rank = (p: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))]
  return {
    count: n,
    mean: sum / n,
    p50: rank(0.5),
    p90: rank(0.9),
    p99: rank(0.99),
    max: sorted[n - 1],
  }
}
