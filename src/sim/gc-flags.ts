/**
 * V8 garbage-collector flags for a process that runs one large simulation (the gossip runs
 * of `npm run bench -- sim-scale` and the runs of `npm run report`; each sets its own
 * `--max-old-space-size`). They change speed and memory only, never a simulated figure
 * (sim-scale prints a digest of each run's whole summary to check that).
 *
 * - `--min-semi-space-size=128`, `--max-semi-space-size=128`: a young generation of 128 MB
 *   per semi-space from the start. At 72,000 × 50 some 40 MB survive each scavenge (frames
 *   in flight, tables being filled), so the cost is per scavenge: twice the space, half
 *   the scavenges (162 instead of 333).
 * - `--initial-old-space-size=3500`: the old generation's first limit (V8 caps it at half of
 *   `--max-old-space-size`: 2,800 MB in sim-scale's runs, 3,500 MB in the report's). It holds only until
 *   the first full collection that the heap's size did not start: V8 also starts one for
 *   every 64 MB of memory outside its heap (typed-array buffers), and sets the limit from
 *   the live heap after it. The simulator's large tables are therefore plain arrays, in the
 *   heap (the event queue, the gossip budget columns): at 72,000 × 50 (stock) a run then
 *   has two full collections past a gigabyte (at 2.8 and 4.0 GB, with a 2,800 MB first
 *   limit) instead of five by the middle of its dissemination (at 1.2, 1.3, 1.5, 1.9 GB,
 *   ...).
 *
 * Measured at 72,000 × 50, optimized profile, one run each, back to back on a shared
 * machine (run-to-run spread about ±8 s): with a 64 MB semi-space alone 134.6 s wall,
 * 161 s CPU, 12.4 s in 343 scavenges; with these flags 124.1 s, 152.5 s, 10.1 s in 162
 * scavenges; peak RSS 4.8 and 4.9 GiB. Not kept: `--no-parallel-scavenge` (135.7 s),
 * `--heap-growing-percent=50` (116.6 and 131.2 s, mark-compact pauses 6 → 15 s),
 * `--minor-ms` and `--no-concurrent-marking` (slower at 10,000 × 50).
 *
 * Kept for every run, the report's Ethereum 2025 block runs too: once the receive path
 * stopped allocating per frame (issue 13), the stock block run (13,000 × 200, three 150 KB
 * blocks) took 182.7 s CPU with these flags and 199.1 s without (one run each, on a shared
 * machine), with the same results.
 */
export const SIM_GC_FLAGS: readonly string[] = [
  '--max-semi-space-size=128',
  '--min-semi-space-size=128',
  '--initial-old-space-size=3500',
]

/**
 * {@link SIM_GC_FLAGS} without the old generation's first limit, for runs whose peak RSS is
 * compared (sim-scale's shared codec against the plain one): with that limit the old
 * generation is not collected until it holds gigabytes, so peak RSS says little of what a
 * run keeps alive.
 */
export const SIM_GC_FLAGS_MEMORY_COMPARED: readonly string[] = SIM_GC_FLAGS.filter(
  (f) => !f.startsWith('--initial-old-space-size='),
)
