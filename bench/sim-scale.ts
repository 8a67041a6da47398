/**
 * Simulator scale (issues 2 and 13).
 *
 * 1. One 256-byte flood over N nodes with k peers each. Targets (issue 2): 72,000 × 50
 *    (3.6M transmissions) in under 60 s and 8 GB; 10,000 nodes in under 10 s. Prints
 *    events/s, wall time and peak memory, and checks the closed form k + (N − 1)(k − 1)
 *    for the transmission count.
 * 2. One 256-byte gossip message (stock and optimized profiles) over Ethereum 2022
 *    (72,000 × 50, preset `ethereum-2022`) and Ethereum 2025 (13,000 × 200, preset
 *    `ethereum-2025`: EIP-7870 uplinks), provider-clustered placement, through the scenario
 *    machinery the demo and the report use: the network is built, every node subscribes,
 *    heartbeats run for the preset's warm-up so meshes form (the mean mesh degree is
 *    printed), one message is published and the run drains for the preset's drain time.
 *    Targets (issue 13): each run in under 120 s and 6 GB peak RSS. Prints wall and CPU time
 *    per phase, events, events/s, peak RSS, delivery ratio and duplicates.
 *
 * 3. Ethereum 2025's blocks on a shrunk network (2,000 × 200; --quick 500 × 100; three 150 KB
 *    blocks 6 s apart, the preset otherwise): each profile with the simulator's shared codec
 *    (one buffer per message for every node, one decoding per frame, one id per message)
 *    against the baseline of each node encoding, decoding and hashing its own copies. Prints
 *    CPU seconds, peak RSS and their ratios, and checks that both give the same delivery,
 *    duplicates, frames, bytes and latencies.
 *
 * Each gossip run is a child process, so its peak RSS is its own (one process would carry
 * the heap of the runs before it). The machine is shared: wall times vary with its load.
 *
 * Usage: npm run bench -- sim-scale [--quick]   (--quick: 10,000-node flood, 2,000-node gossip)
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { floodNetwork } from '../src/sim/flood-network.ts'
import { SIM_GC_FLAGS, SIM_GC_FLAGS_MEMORY_COMPARED } from '../src/sim/gc-flags.ts'
import {
  gossipOptimizedStrategy,
  gossipStockStrategy,
  gossipStrategy,
} from '../src/sim/gossip-strategy.ts'
import { randomRegularGraph } from '../src/sim/graph.ts'
import { placementLatency, providerClusteredPlacement } from '../src/sim/placement.ts'
import { SCENARIOS } from '../src/sim/presets.ts'
import { Prng } from '../src/sim/prng.ts'
import {
  buildNetwork,
  runScenario,
  SCENARIO_TOPIC,
  type Scenario,
  startScenario,
} from '../src/sim/scenario.ts'
import { fmt, printTable, type Row, writeResults } from './report.ts'

const quick = process.argv.includes('--quick')

/**
 * Heap limit of each gossip run's process (MB): V8's default (~4 GB here) is too small at
 * 72,000 nodes. V8 caps the old generation's first limit (`--initial-old-space-size`, see
 * {@link SIM_GC_FLAGS}) at half of this one, 2,800 MB, which a 72,000 × 50 run passes in
 * its warm-up: a full collection there compacts the heap. Tried: 7,000 MB (first limit
 * 3,500 MB, one full collection, late): the dissemination ran slower on the uncompacted heap
 * (stock 71.8 s against 57.5 s, optimized 69.6 s against 54.4 s; one run each, back to back)
 * and peak RSS rose by 0.3–0.6 GB.
 */
const GOSSIP_HEAP_MB = 5600

/**
 * Garbage collections seen from now on: full (mark-compact) ones and the main thread's pauses
 * of every kind. Read after a turn of the event loop (entries come asynchronously).
 */
function gcWatcher(): { fullGcs: number; pauseMs: number; stop(): void } {
  const seen = { fullGcs: 0, pauseMs: 0 }
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      seen.pauseMs += e.duration
      const kind = (e as { detail?: { kind?: number } }).detail?.kind
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) seen.fullGcs++
    }
  })
  observer.observe({ entryTypes: ['gc'] })
  return Object.assign(seen, { stop: () => observer.disconnect() })
}

/** Peak RSS sampled every 50 ms (and at the end of each phase). */
function rssSampler(): { peak(): number; stop(): void } {
  let peak = process.memoryUsage().rss
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 50)
  return {
    peak: () => {
      peak = Math.max(peak, process.memoryUsage().rss)
      return peak
    },
    stop: () => clearInterval(timer),
  }
}

// ------------------------------------------------------------------ gossip (child process)

/** What one gossip run measures (written as JSON on the child's stdout). */
interface GossipFigures {
  preset: string
  profile: string
  nodes: number
  peers: number
  warmupMs: number
  drainMs: number
  graphMs: number
  startMs: number
  warmupWallMs: number
  disseminationWallMs: number
  wallMs: number
  /** CPU time of the run (user + system, all threads: GC runs partly in helper threads). */
  cpuMs: number
  /** CPU time of building the network and starting the nodes (graph and start). */
  startCpuMs: number
  /** CPU time of the warm-up's heartbeats. */
  warmupCpuMs: number
  /** CPU time of the message's dissemination (publish and drain). */
  disseminationCpuMs: number
  warmupEvents: number
  disseminationEvents: number
  peakRssBytes: number
  /** Full (mark-compact) garbage collections during the run. */
  fullGcs: number
  /** Main-thread pauses of every garbage collection during the run (ms; marking threads not counted). */
  gcPauseMs: number
  deliveryRatio: number
  duplicatesMean: number
  duplicatesP99: number
  framesPerMessage: number
  bytesPerMessage: number
  latencyP50Ms: number
  latencyP99Ms: number
  meshDegreeMean: number
  /**
   * SHA-256 of the whole delivery summary (every distribution, histogram and per-kind
   * control count) and the network's frame counters: two runs of the same seed that print
   * the same digest simulated the same thing, whatever the flags or the speed-ups.
   */
  summaryDigest: string
}

/** Milliseconds of CPU (user + system) in a `process.cpuUsage` reading. */
function cpuMsOf(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1000
}

const PROFILES = { stock: gossipStockStrategy, optimized: gossipOptimizedStrategy }

async function gossipRun(
  preset: string,
  profile: keyof typeof PROFILES,
  nodes: number,
  peers: number,
): Promise<GossipFigures> {
  const rss = rssSampler()
  const gc = gcWatcher()
  const strategy = PROFILES[profile]
  // The preset (its placement, bandwidth, warm-up and drain) at this size, with one 256-byte message.
  const scenario: Scenario = {
    ...SCENARIOS[preset],
    name: `sim-scale-${nodes}x${peers}`,
    nodes,
    degree: peers,
    messages: 1,
    messageBytes: 256,
  }
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const network = buildNetwork(scenario, new Prng(scenario.seed))
  const tGraph = performance.now()
  // The network built above, so that building it is timed apart from starting the nodes.
  const { sim, tracker } = startScenario(scenario, { ...strategy, network: () => network })
  const tStart = performance.now()
  const cpuStart = process.cpuUsage(cpu0)
  const warmupEvents = sim.run({ until: scenario.warmupMs })
  const tWarm = performance.now()
  const cpuWarm = process.cpuUsage(cpu0)
  const origin = new Prng(scenario.seed).fork('publishers').int(nodes)
  const payload = new Uint8Array(scenario.messageBytes)
  payload[0] = 1
  // The router sends synchronously; its promise settles after the run, as in runScenario.
  const published = sim.core(origin).publish(SCENARIO_TOPIC, payload, { class: scenario.class })
  const disseminationEvents = sim.run({ until: scenario.warmupMs + scenario.drainMs })
  const tEnd = performance.now()
  const cpu = process.cpuUsage(cpu0)
  tracker.published((await published).id, origin, scenario.warmupMs, network.members)
  // The collections' entries come on a later turn of the event loop.
  await new Promise((resolve) => setTimeout(resolve, 100))
  gc.stop()
  {
    const s = tracker.summary()
    let mesh = 0
    for (let i = 0; i < nodes; i++) {
      mesh += (sim.core(i) as unknown as { getMeshPeers(t: string): string[] }).getMeshPeers(
        SCENARIO_TOPIC,
      ).length
    }
    const peak = rss.peak()
    rss.stop()
    return {
      preset,
      profile,
      nodes,
      peers,
      warmupMs: scenario.warmupMs,
      drainMs: scenario.drainMs,
      graphMs: tGraph - t0,
      startMs: tStart - tGraph,
      warmupWallMs: tWarm - tStart,
      disseminationWallMs: tEnd - tWarm,
      wallMs: tEnd - t0,
      cpuMs: cpuMsOf(cpu),
      startCpuMs: cpuMsOf(cpuStart),
      warmupCpuMs: cpuMsOf(cpuWarm) - cpuMsOf(cpuStart),
      disseminationCpuMs: cpuMsOf(cpu) - cpuMsOf(cpuWarm),
      warmupEvents,
      disseminationEvents,
      peakRssBytes: peak,
      fullGcs: gc.fullGcs,
      gcPauseMs: gc.pauseMs,
      deliveryRatio: s.deliveryRatio,
      duplicatesMean: s.duplicates.mean,
      duplicatesP99: s.duplicates.p99,
      framesPerMessage: s.framesPerMessage,
      bytesPerMessage: s.bytesPerMessage,
      latencyP50Ms: s.latencyMs.p50,
      latencyP99Ms: s.latencyMs.p99,
      meshDegreeMean: mesh / nodes,
      summaryDigest: createHash('sha256')
        .update(JSON.stringify({ summary: s, traffic: sim.traffic, mesh }))
        .digest('hex'),
    }
  }
}

/** What one block run (part 3) measures. */
interface BlockFigures {
  cpuMs: number
  wallMs: number
  peakRssBytes: number
  events: number
  /** The run's whole summary: delivery, duplicates, frames, bytes, latencies. */
  summary: Awaited<ReturnType<typeof runScenario>>['summary']
}

/** Shrunk Ethereum 2025 with its three 150 KB blocks, shared codec or not. */
async function blockRun(
  profile: keyof typeof PROFILES,
  shared: boolean,
  nodes: number,
  peers: number,
): Promise<BlockFigures> {
  const rss = rssSampler()
  const scenario: Scenario = { ...SCENARIOS['ethereum-2025'], nodes, degree: peers }
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const r = await runScenario(scenario, gossipStrategy(profile, profile, {}, shared))
  const cpu = process.cpuUsage(cpu0)
  const peak = rss.peak()
  rss.stop()
  return {
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs: performance.now() - t0,
    peakRssBytes: peak,
    events: r.events,
    summary: r.summary,
  }
}

/**
 * Runs this file again as a child with `args` (the heap and GC flags of the gossip runs, or
 * `gcFlags`); its last stdout line.
 */
function child(args: string[], gcFlags: readonly string[] = SIM_GC_FLAGS): string | undefined {
  const c = spawnSync(
    process.execPath,
    [`--max-old-space-size=${GOSSIP_HEAP_MB}`, ...gcFlags, fileURLToPath(import.meta.url), ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 },
  )
  return c.status === 0 ? c.stdout.trim().split('\n').at(-1) : undefined
}

const blockAt = process.argv.indexOf('--block-child')
if (blockAt >= 0) {
  const [profile, shared, nodes, peers] = process.argv[blockAt + 1].split(':')
  const figures = await blockRun(
    profile as keyof typeof PROFILES,
    shared === 'shared',
    Number(nodes),
    Number(peers),
  )
  process.stdout.write(`${JSON.stringify(figures)}\n`)
  process.exit(0)
}

const childAt = process.argv.indexOf('--gossip-child')
if (childAt >= 0) {
  const [preset, profile, nodes, peers] = process.argv[childAt + 1].split(':')
  const figures = await gossipRun(
    preset,
    profile as keyof typeof PROFILES,
    Number(nodes),
    Number(peers),
  )
  process.stdout.write(`${JSON.stringify(figures)}\n`)
  process.exit(0)
}

// ------------------------------------------------------------------ flood

const TOPIC = 'scale'
const floodSizes = quick
  ? [{ n: 10_000, k: 50 }]
  : [
      { n: 10_000, k: 50 },
      { n: 72_000, k: 50 },
    ]

const floodRss = rssSampler()
const floodRows: Row[] = []
const floodResults = []
for (const { n, k } of floodSizes) {
  global.gc?.()
  const t0 = performance.now()
  const prng = new Prng(`scale-${n}`)
  const graph = randomRegularGraph(n, k, prng.fork('graph'))
  const placement = providerClusteredPlacement(n, prng.fork('placement'))
  const tGraph = performance.now() - t0
  const { sim, tracker, publish } = floodNetwork(
    { seed: `scale-${n}`, graph, latency: placementLatency(placement) },
    TOPIC,
  )
  publish(0, new Uint8Array(256))
  const t1 = performance.now()
  const events = sim.run()
  const tRun = performance.now() - t1
  const peakRss = floodRss.peak()
  const wall = performance.now() - t0
  const s = tracker.summary()
  const expected = k + (n - 1) * (k - 1)
  floodRows.push({
    nodes: n,
    peers: k,
    transmissions: sim.traffic.framesSent,
    'closed form': expected,
    delivered: `${fmt(s.deliveryRatio * 100, 1)}%`,
    events,
    'events/s': Math.round(events / (tRun / 1000)),
    'graph s': fmt(tGraph / 1000),
    'wall s': fmt(wall / 1000),
    'peak RSS GiB': fmt(peakRss / 2 ** 30),
    'p50 ms': fmt(s.latencyMs.p50, 1),
    'p99 ms': fmt(s.latencyMs.p99, 1),
    'max ms': fmt(s.latencyMs.max, 1),
  })
  floodResults.push({
    nodes: n,
    peers: k,
    transmissions: sim.traffic.framesSent,
    closedFormTransmissions: expected,
    deliveryRatio: s.deliveryRatio,
    events,
    eventsPerSecond: events / (tRun / 1000),
    graphMs: tGraph,
    runMs: tRun,
    wallMs: wall,
    peakRssBytes: peakRss,
    latencyP50Ms: s.latencyMs.p50,
    latencyP99Ms: s.latencyMs.p99,
    latencyMaxMs: s.latencyMs.max,
  })
  if (sim.traffic.framesSent !== expected || s.deliveryRatio !== 1) {
    console.error(`closed form violated for N=${n}, k=${k}`)
    process.exitCode = 1
  }
}
floodRss.stop()
printTable('Simulator scale: one 256-byte flood (provider-clustered latencies)', floodRows)

// ------------------------------------------------------------------ gossip

/** Issue 13's targets for one gossip run: wall seconds, and decimal GB (10⁹ bytes) of peak RSS. */
const TARGET_WALL_S = 120
const TARGET_RSS_GB = 6

const gossipSizes = quick
  ? [
      { label: 'quick', preset: 'ethereum-2022', n: 2_000, k: 50 },
      { label: 'quick', preset: 'ethereum-2025', n: 1_000, k: 200 },
    ]
  : [
      { label: 'Ethereum 2022', preset: 'ethereum-2022', n: 72_000, k: 50 },
      { label: 'Ethereum 2025', preset: 'ethereum-2025', n: 13_000, k: 200 },
    ]
const gossipRows: Row[] = []
const gossipResults = []
for (const { label, preset, n, k } of gossipSizes) {
  for (const profile of Object.keys(PROFILES)) {
    const out = child(['--gossip-child', `${preset}:${profile}:${n}:${k}`])
    if (out === undefined) {
      console.error(`gossip ${profile} ${n} × ${k} failed`)
      process.exitCode = 1
      continue
    }
    const f = JSON.parse(out) as GossipFigures
    console.log(`gossip ${profile} ${n} × ${k}: ${JSON.stringify(f)}`)
    const events = f.warmupEvents + f.disseminationEvents
    const runMs = f.warmupWallMs + f.disseminationWallMs
    const met = f.wallMs / 1000 < TARGET_WALL_S && f.peakRssBytes < TARGET_RSS_GB * 1e9
    gossipRows.push({
      scenario: label,
      profile,
      nodes: n,
      peers: k,
      'mesh D': fmt(f.meshDegreeMean, 1),
      'graph s': fmt(f.graphMs / 1000),
      'start s': fmt(f.startMs / 1000),
      'virt. warm-up s': f.warmupMs / 1000,
      'virt. drain s': f.drainMs / 1000,
      'warm-up s': fmt(f.warmupWallMs / 1000),
      'dissem. s': fmt(f.disseminationWallMs / 1000),
      'wall s': fmt(f.wallMs / 1000),
      'CPU s': fmt(f.cpuMs / 1000),
      'start CPU s': fmt(f.startCpuMs / 1000),
      'warm-up CPU s': fmt(f.warmupCpuMs / 1000),
      'dissem. CPU s': fmt(f.disseminationCpuMs / 1000),
      events,
      'events/s': Math.round(events / (runMs / 1000)),
      'peak RSS GiB': fmt(f.peakRssBytes / 2 ** 30),
      'full GCs': f.fullGcs,
      'GC pause s': fmt(f.gcPauseMs / 1000),
      delivered: `${fmt(f.deliveryRatio * 100, 1)}%`,
      'dups mean': fmt(f.duplicatesMean),
      'dups p99': fmt(f.duplicatesP99, 0),
      'p50 ms': fmt(f.latencyP50Ms, 1),
      'p99 ms': fmt(f.latencyP99Ms, 1),
      [`< ${TARGET_WALL_S} s, < ${TARGET_RSS_GB} GB`]: quick ? '-' : met ? 'yes' : 'NO',
    })
    gossipResults.push({
      scenario: label,
      ...f,
      events,
      eventsPerSecond: events / (runMs / 1000),
      heapLimitMB: GOSSIP_HEAP_MB,
      gcFlags: SIM_GC_FLAGS,
      targetWallS: TARGET_WALL_S,
      targetPeakRssGB: TARGET_RSS_GB,
      targetsMet: met,
    })
  }
}
printTable(
  'Simulator scale: one 256-byte gossip message, provider-clustered placement and bandwidth, after a mesh warm-up (each run its own process)',
  gossipRows,
)

// ------------------------------------------------------------------ blocks

const blockSize = quick ? { n: 500, k: 100 } : { n: 2_000, k: 200 }
const blockRows: Row[] = []
const blockResults = []
for (const profile of Object.keys(PROFILES) as (keyof typeof PROFILES)[]) {
  const figures: Partial<Record<'plain' | 'shared', BlockFigures>> = {}
  for (const codec of ['plain', 'shared'] as const) {
    const out = child(
      ['--block-child', `${profile}:${codec}:${blockSize.n}:${blockSize.k}`],
      SIM_GC_FLAGS_MEMORY_COMPARED,
    )
    if (out === undefined) {
      console.error(`blocks ${profile} ${codec} failed`)
      process.exitCode = 1
      continue
    }
    figures[codec] = JSON.parse(out) as BlockFigures
  }
  const { plain, shared } = figures
  if (plain === undefined || shared === undefined) continue
  const same =
    JSON.stringify(plain.summary) === JSON.stringify(shared.summary) &&
    plain.events === shared.events
  if (!same) {
    console.error(`blocks ${profile}: the shared codec changed the results`)
    process.exitCode = 1
  }
  for (const [codec, f] of [
    ['plain', plain],
    ['shared', shared],
  ] as const) {
    blockRows.push({
      profile,
      codec,
      nodes: blockSize.n,
      peers: blockSize.k,
      'CPU s': fmt(f.cpuMs / 1000),
      'wall s': fmt(f.wallMs / 1000),
      'peak RSS GiB': fmt(f.peakRssBytes / 2 ** 30),
      events: f.events,
      delivered: `${fmt(f.summary.deliveryRatio * 100, 1)}%`,
      'dups mean': fmt(f.summary.duplicates.mean),
      'MB/msg': fmt(f.summary.bytesPerMessage / 1e6, 1),
      'p50 ms': fmt(f.summary.latencyMs.p50, 1),
      'p99 ms': fmt(f.summary.latencyMs.p99, 1),
      'same results': same ? 'yes' : 'NO',
    })
  }
  blockResults.push({
    profile,
    nodes: blockSize.n,
    peers: blockSize.k,
    messages: SCENARIOS['ethereum-2025'].messages,
    messageBytes: SCENARIOS['ethereum-2025'].messageBytes,
    plain,
    shared,
    cpuRatioSharedToPlain: shared.cpuMs / plain.cpuMs,
    peakRssRatioSharedToPlain: shared.peakRssBytes / plain.peakRssBytes,
    sameResults: same,
  })
  console.log(
    `blocks ${profile}: shared/plain CPU ${fmt(shared.cpuMs / plain.cpuMs)}, peak RSS ${fmt(shared.peakRssBytes / plain.peakRssBytes)}`,
  )
}
printTable(
  `Simulator scale: Ethereum 2025's three 150 KB blocks at ${blockSize.n} × ${blockSize.k}, shared codec against each node's own copies (each run its own process)`,
  blockRows,
)

writeResults('sim-scale', {
  quick,
  flood: floodResults,
  gossip: gossipResults,
  blocks: blockResults,
})
