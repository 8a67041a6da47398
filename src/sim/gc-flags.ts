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
 * - `--initial-old-space-size=3500`, `--heap-growing-percent=50`: the old generation grows
 *   by half its live size after each full collection, not by the small steps V8 picks
 *   while the 72,000 nodes are being built.
 *
 * Measured at 72,000 × 50 (optimized profile, one run each, back to back on a shared
 * machine): 134.6 s wall, 161 s CPU with a 64 MB semi-space alone; 116.6 s, 146 s with
 * these flags; peak RSS 4.8 and 4.7 GiB. `--no-parallel-scavenge` and `--minor-ms` did
 * not help (135.7 s at 72,000; MinorMS 40% slower at 10,000).
 */
export const SIM_GC_FLAGS: readonly string[] = [
  '--max-semi-space-size=128',
  '--min-semi-space-size=128',
  '--initial-old-space-size=3500',
  '--heap-growing-percent=50',
]
