/**
 * Stock vs optimized gossip in the simulator (issue 3).
 *
 * 1. 1,000 nodes, 50 peers each, D = 8, provider-clustered placement (region/provider
 *    latencies, 1 Gbit/s in data centres, 100 Mbit/s elsewhere): 256 B and 100 KB consensus
 *    messages. Delivery, duplicates per node per message, bytes per message, latency, and
 *    IHAVE / IWANT / IDONTWANT per message.
 * 2. Ingress on an Internet Computer subnet (full mesh, 20 ms links): transmissions per
 *    message against N − 1, for 256 B and 100 KB, and how it grows with N.
 * 3. Seed 001's load: 56 nodes, full mesh, 300 ingress messages per second.
 * 4. Stock duplicates against the two models of seed 002's thread: every mesh link the
 *    message does not need carries it once, (D̄ − 2)/2 per node; or, with no processing
 *    time, both ways, D̄ − 2. For uniform and per-node validation times it prints the mean
 *    mesh degree D̄, the share of mesh links that carried a message both ways, and the
 *    duplicates that link use accounts for, beside the measured ones.
 *
 * Section 1 also runs, stock beside one-copy: a single publisher (node 0, at both sizes);
 * churn (10% of the nodes crash and restart per minute) with 1% frame loss; and 20% silent
 * relays (one-copy only, against its honest run). It ends with the targets of issue 9, each
 * computed as met or not.
 *
 * Sections 1–3 run the optimized profile with the one-copy extension on (it is opt-in,
 * `oneCopy: true`; doc/gossip-extension.md); 1b runs the default optimized profile without it.
 *
 * Every node takes the validation time of `SIM_VALIDATION_DELAY` (2 ms + 0.3 ms per KB)
 * before it relays a message; duplicates that arrive meanwhile spare their senders a copy.
 *
 * Section 1c runs the preamble extension (PREAMBLE / IMRECEIVING) at 100 KB, random and single
 * publisher: stock, optimized, optimized + preamble, one-copy, one-copy + preamble, with its
 * targets in the targets table; and times a PREAMBLE flood from one peer on one router. Part
 * `preamble-slow` runs the random-publisher case with every uplink at 20 Mbit/s (no targets).
 *
 * Usage: npm run bench -- gossip-sim [--quick] [--seed N] [--targets-only] (sections 1 and 1b)
 *   [--part random|single|churn|silent|preamble] (that part of section 1 only; implies --targets-only)
 *   [--part preamble-slow]
 *   [--bytes 256|100000] (random and single parts: that size only)
 *   [--messages N] (messages per run; 30, 5 with --quick; the churn part and sections 3-4 keep
 *   their own; figures then go to a results file named for it)
 *   [--source-trees [all]] (random, single and churn parts: also one-copy with per-source trees,
 *   judged against the same stock run; silent part: trees with one honest publisher, silent
 *   relays against the honest run; `all`: trees for every member from the start, and in the
 *   silent part every honest node publishes)
 */
import type { ArtifactClass } from '../src/common/artifact.ts'
import { messageIdKey } from '../src/common/message-id.ts'
import { topicHash } from '../src/gossip/one-copy.ts'
import { MESHSUB_1_3 } from '../src/gossip/protocol-ids.ts'
import { GossipRouter } from '../src/gossip/router.ts'
import { emptyOneCopy } from '../src/gossip/rpc-codec.ts'
import { scheduleChurn, upThroughout } from '../src/sim/faults.ts'
import {
  gossipOneCopyAllTreesStrategy,
  gossipOneCopyPreambleStrategy,
  gossipOneCopySourceTreesStrategy,
  gossipOneCopyStrategy,
  gossipOptimizedStrategy,
  gossipPreambleStrategy,
  gossipStockStrategy,
  gossipStrategy,
  withPublishers,
  withSilentRelays,
} from '../src/sim/gossip-strategy.ts'
import { SCENARIOS } from '../src/sim/presets.ts'
import { Prng } from '../src/sim/prng.ts'
import {
  type RunOptions,
  runScenario,
  SCENARIO_TOPIC,
  type Scenario,
  type ScenarioResult,
  type SimStrategy,
} from '../src/sim/scenario.ts'
import { frame, ManualEnv } from '../test/gossip/harness.ts'
import { gossipSimScenario } from './gossip-sim/scenario.ts'
import { fmt, numberArg, printTable, type Row, writeResults } from './report.ts'

const quick = process.argv.includes('--quick')
const seedAt = process.argv.indexOf('--seed')
const seed = seedAt >= 0 ? Number(process.argv[seedAt + 1]) : 1
if (!Number.isInteger(seed)) throw new Error('--seed takes an integer')
const targetsOnly = process.argv.includes('--targets-only')
const partAt = process.argv.indexOf('--part')
/** `--part random|single|churn|silent`: only that part of section 1 (seeds run in parallel). */
const part = partAt >= 0 ? process.argv[partAt + 1] : undefined
const PARTS = ['random', 'single', 'churn', 'silent', 'preamble', 'preamble-slow']
if (part !== undefined && !PARTS.includes(part)) throw new Error(`--part takes ${PARTS.join('|')}`)
const runs = (name: string) => part === undefined || part === name
const sizeAt = process.argv.indexOf('--bytes')
/** `--bytes N`: the random and single parts run that message size only (256 or 100000). */
const consensusSizes = sizeAt >= 0 ? [Number(process.argv[sizeAt + 1])] : [256, 100_000]
if (!consensusSizes.every((b) => b === 256 || b === 100_000)) {
  throw new Error('--bytes takes 256 or 100000')
}
const treesAt = process.argv.indexOf('--source-trees')
const sourceTrees = treesAt >= 0
/** `--source-trees all`: trees for every member from the start (`oneCopySourceTrees: 'all'`). */
const allTrees = sourceTrees && process.argv[treesAt + 1] === 'all'
const treeStrategy = allTrees ? gossipOneCopyAllTreesStrategy : gossipOneCopySourceTreesStrategy
const treeProfile = allTrees ? 'one-copy + all-source trees' : 'one-copy + source trees'
const profiles = [gossipStockStrategy, gossipOneCopyStrategy]
/** The random and single-publisher parts also run one-copy with per-source trees (`--source-trees`). */
const treeProfiles = sourceTrees ? [...profiles, treeStrategy] : profiles

/** Messages per run (`--messages N`; 30, or 5 with `--quick`), but where a part sets its own. */
const defaultMessages = quick ? 5 : 30
const messagesPerRun = numberArg('--messages', defaultMessages)
if (!Number.isInteger(messagesPerRun) || messagesPerRun < 1)
  throw new Error('--messages takes an integer >= 1')

function scenario(
  name: string,
  nodes: number,
  bytes: number,
  cls: ArtifactClass,
  over: Partial<Scenario> = {},
): Scenario {
  return gossipSimScenario(name, nodes, bytes, cls, seed, messagesPerRun, over)
}

const control = (r: ScenarioResult, kind: string) => r.summary.controlPerMessage[kind] ?? 0

function row(label: string, r: ScenarioResult): Row {
  const s = r.summary
  return {
    scenario: label,
    profile: r.strategy,
    delivery: fmt(s.deliveryRatio, 4),
    'dups mean': fmt(s.duplicates.mean),
    'dups p99': s.duplicates.p99,
    'dups max': s.duplicates.max,
    'payload B/msg': Math.round(s.payloadBytesPerMessage),
    'control B/msg': Math.round(s.controlBytesPerMessage),
    'lat p50 ms': fmt(s.latencyMs.p50, 1),
    'lat p99 ms': fmt(s.latencyMs.p99, 1),
    'first dup p50 ms': fmt(s.firstDuplicateDelayMs.p50, 1),
    'IHAVE/msg': fmt(control(r, 'IHAVE')),
    'IWANT/msg': fmt(control(r, 'IWANT')),
    'IDONTWANT/msg': fmt(control(r, 'IDONTWANT')),
    errors: r.publishErrors.length,
  }
}

const results: Record<string, ScenarioResult[]> = {}
/** Mean mesh degree at each delivery, per result label and strategy. */
const meshDegrees: Record<string, number> = {}

async function compare(
  label: string,
  sc: Scenario,
  wrap: (s: SimStrategy) => SimStrategy = (s) => s,
  options: () => RunOptions = () => ({}),
  strategies: SimStrategy[] = profiles,
): Promise<ScenarioResult[]> {
  const out: ScenarioResult[] = []
  for (const strategy of strategies) {
    process.stderr.write(`running ${label} with ${strategy.name}...\n`)
    const observed = observeLinks(() => wrap(strategy))
    const r = await runScenario(sc, observed.strategy, options())
    meshDegrees[`${label} ${strategy.name}`] = observed.links().meshDegree
    out.push(r)
  }
  results[label] = out
  return out
}

// 1. Consensus on 1,000 Ethereum-like nodes.
const nodes = quick ? 300 : 1000
const consensusRows: Row[] = []
const checks: Row[] = []
/** Every target of issue 9, each met or not as computed from the runs. */
const verdicts: Row[] = []
const stockBySize = new Map<number, ScenarioResult>()
const oneCopyBySize = new Map<number, ScenarioResult>()
const sizeLabel = (bytes: number) => (bytes === 256 ? '256 B' : '100 KB')

function target(
  scenario: string,
  measure: string,
  goal: string,
  value: number,
  met: boolean,
  profile = 'one-copy',
) {
  verdicts.push({
    scenario,
    measure,
    target: goal,
    profile,
    value: fmt(value),
    met: met ? 'met' : 'NOT met',
  })
}

/** Rows, checks and targets of one stock vs one-copy comparison. */
function judge(
  label: string,
  bytes: number,
  stock: ScenarioResult,
  opt: ScenarioResult,
  profile = 'one-copy',
): void {
  if (profile === 'one-copy') consensusRows.push(row(label, stock))
  consensusRows.push(row(label, opt))
  const floor = (nodes - 1) * bytes
  const p99 = opt.summary.latencyMs.p99 / stock.summary.latencyMs.p99
  const bytesRatio = opt.summary.bytesPerMessage / floor
  checks.push({
    scenario: label,
    profile,
    'stock dups mean': fmt(stock.summary.duplicates.mean),
    'one-copy dups mean': fmt(opt.summary.duplicates.mean),
    'one-copy delivery': fmt(opt.summary.deliveryRatio, 4),
    'p50 one-copy/stock': fmt(opt.summary.latencyMs.p50 / stock.summary.latencyMs.p50),
    'p99 one-copy/stock': fmt(p99),
    'stock bytes/floor': fmt(stock.summary.bytesPerMessage / floor),
    'one-copy bytes/floor': fmt(bytesRatio),
    'stock bytes/floor after warm-up': fmt(stock.bytesPerMessageAfterWarmup / floor),
    'one-copy bytes/floor after warm-up': fmt(opt.bytesPerMessageAfterWarmup / floor),
    'stock mesh D̄': fmt(meshDegrees[`${label} ${stock.strategy}`]),
    'optimized mesh D̄': fmt(meshDegrees[`${label} ${opt.strategy}`]),
  })
  const dups = opt.summary.duplicates.mean
  target(label, 'dups per node per message', '≤ 0.3', dups, dups <= 0.3, profile)
  const delivery = opt.summary.deliveryRatio
  target(label, 'delivery', '= 1', delivery, delivery === 1, profile)
  target(label, 'p99 latency / stock', '≤ 1.05', p99, p99 <= 1.05, profile)
  if (bytes === 256) {
    target(label, 'wire bytes / floor', '≤ 2.5', bytesRatio, bytesRatio <= 2.5, profile)
  }
}

for (const bytes of runs('random') ? consensusSizes : []) {
  const label = `${nodes} nodes, consensus ${sizeLabel(bytes)}`
  const [stock, opt, trees] = await compare(
    label,
    scenario(label, nodes, bytes, 'consensus'),
    undefined,
    undefined,
    treeProfiles,
  )
  stockBySize.set(bytes, stock)
  oneCopyBySize.set(bytes, opt)
  judge(label, bytes, stock, opt)
  if (trees !== undefined) judge(label, bytes, stock, trees, treeProfile)
}

// A single publisher: node 0 publishes every message.
for (const bytes of runs('single') ? consensusSizes : []) {
  const label = `${nodes} nodes, consensus ${sizeLabel(bytes)}, single publisher`
  const [stock, opt, trees] = await compare(
    label,
    scenario(label, nodes, bytes, 'consensus'),
    (s) => withPublishers(s, () => [0]),
    undefined,
    treeProfiles,
  )
  judge(label, bytes, stock, opt)
  if (trees !== undefined) judge(label, bytes, stock, trees, treeProfile)
}

// Churn with 1% frame loss: 10% of the nodes crash and restart per minute, for 30 s. The publishers
// (a tenth of the nodes) stay up; the others churn at the rate that makes 10% of all nodes a
// minute, each down for 10 s on average. A message counts for the subscribers up from 2 s
// before it until 3 s after (joined, and not crashed while it spreads).
const churnRows: Row[] = []
if (runs('churn')) {
  const label = `${nodes} nodes, consensus 256 B, churn 10%/min, 1% loss`
  const messages = quick ? 20 : 30
  const sc = scenario(label, nodes, 256, 'consensus', { loss: 0.01, messages, intervalMs: 1000 })
  const publishers = Array.from({ length: Math.ceil(nodes / 10) }, (_, i) => i * 10)
  const stable = new Set(publishers)
  const churning = Array.from({ length: nodes }, (_, i) => i).filter((i) => !stable.has(i))
  const publishEnd = sc.warmupMs + messages * sc.intervalMs
  let crashes = 0
  const runs = await compare(
    label,
    sc,
    (s) => withPublishers(s, () => publishers),
    () => {
      let log: ReturnType<typeof scheduleChurn> | undefined
      return {
        setup: (run) => {
          log = scheduleChurn(run.sim, new Prng(seed).fork('churn'), {
            nodes: churning,
            meanUptimeMs: (60_000 * churning.length) / (0.1 * nodes),
            meanDowntimeMs: 10_000,
            from: sc.warmupMs,
            until: publishEnd,
          })
          crashes = [...log.downtimes.values()].reduce((n, d) => n + d.length, 0)
        },
        recipients: (_origin, at) => {
          return Array.from({ length: nodes }, (_, i) => i).filter((i) =>
            upThroughout(log!, i, at - 2000, at + 3000),
          )
        },
      }
    },
    treeProfiles,
  )
  for (const r of runs) {
    churnRows.push({
      ...row(label, r),
      'crashes planned': crashes,
      'minutes of churn': fmt((publishEnd - sc.warmupMs) / 60_000),
    })
  }
  for (const [r, profile] of [
    [runs[1], 'one-copy'],
    [runs[2], treeProfile],
  ] as const) {
    if (r === undefined) continue
    const { deliveryRatio, duplicates } = r.summary
    target(
      label,
      'delivery to live subscribers',
      '= 1',
      deliveryRatio,
      deliveryRatio === 1,
      profile,
    )
    target(
      label,
      'dups per node per message',
      '≤ 1',
      duplicates.mean,
      duplicates.mean <= 1,
      profile,
    )
  }
}

// 20% silent relays: from the end of the warm-up (meshes joined) a fifth of the nodes
// forward, answer and publish nothing, while keeping their meshes and control traffic.
// Honest nodes publish; delivery counts at honest nodes; p99 against the honest run above.
const silentRows: Row[] = []
if (runs('silent')) {
  const label = `${nodes} nodes, consensus 256 B, 20% silent relays`
  const pick = new Prng(seed).fork('silent')
  const silent = new Set<number>()
  while (silent.size < Math.round(nodes / 5)) silent.add(pick.int(nodes))
  const honest = Array.from({ length: nodes }, (_, i) => i).filter((i) => !silent.has(i))
  const sc = scenario(label, nodes, 256, 'consensus')
  process.stderr.write(`running ${label} with ${gossipOneCopyStrategy.name}...\n`)
  const r = await runScenario(
    sc,
    withPublishers(
      withSilentRelays(gossipOneCopyStrategy, (i) => silent.has(i), sc.warmupMs),
      () => honest,
    ),
    { recipients: () => honest },
  )
  results[label] = [r]
  const base = (oneCopyBySize.get(256) ?? (await honestOneCopy())).summary
  const p99 = r.summary.latencyMs.p99 / base.latencyMs.p99
  silentRows.push({ ...row(label, r), 'p99 / honest run': fmt(p99) })
  target(
    label,
    'delivery to honest nodes',
    '= 1',
    r.summary.deliveryRatio,
    r.summary.deliveryRatio === 1,
  )
  target(label, 'p99 latency / honest run', '≤ 2', p99, p99 <= 2)
  if (sourceTrees) {
    // Per-source trees with one honest publisher (trees form for repeated sources only), or
    // with `all` every honest node publishing: silent parents withhold messages until their
    // children pass them over.
    const treeLabel = allTrees ? `${label}, random honest publishers` : `${label}, single publisher`
    const one = allTrees ? () => honest : () => [honest[0]]
    process.stderr.write(`running ${treeLabel} with ${treeStrategy.name}...\n`)
    const honestRun = await runScenario(sc, withPublishers(treeStrategy, one))
    const silentRun = await runScenario(
      sc,
      withPublishers(
        withSilentRelays(treeStrategy, (i) => silent.has(i), sc.warmupMs),
        one,
      ),
      { recipients: () => honest },
    )
    results[treeLabel] = [honestRun, silentRun]
    const ratio = silentRun.summary.latencyMs.p99 / honestRun.summary.latencyMs.p99
    silentRows.push({ ...row(`${treeLabel}, honest`, honestRun) })
    silentRows.push({ ...row(treeLabel, silentRun), 'p99 / honest run': fmt(ratio) })
    const profile = treeProfile
    const delivery = silentRun.summary.deliveryRatio
    target(treeLabel, 'delivery to honest nodes', '= 1', delivery, delivery === 1, profile)
    target(treeLabel, 'p99 latency / honest run', '≤ 2', ratio, ratio <= 2, profile)
  }
}

// 1c. The preamble extension at 100 KB, flood-style pushes and with one-copy, stock beside it.
const preambleRows: Row[] = []
const preambleProfiles = [
  gossipStockStrategy,
  gossipOptimizedStrategy,
  gossipPreambleStrategy,
  gossipOneCopyStrategy,
  gossipOneCopyPreambleStrategy,
]
const preambleNames: Record<string, string> = {
  [gossipPreambleStrategy.name]: 'optimized+preamble',
  [gossipOneCopyPreambleStrategy.name]: 'one-copy+preamble',
}
// `preamble-slow`: every uplink 20 Mbit/s (a 100 KB copy takes 40 ms), no targets: where a
// copy's transfer time is no longer small against the round trip, as in the paper's setting.
const preambleCases = [
  ...(runs('preamble')
    ? [
        { single: false, slow: false },
        { single: true, slow: false },
      ]
    : []),
  ...(runs('preamble-slow') ? [{ single: false, slow: true }] : []),
]
for (const { single, slow } of preambleCases) {
  const bytes = 100_000
  const label = `${nodes} nodes, consensus 100 KB${single ? ', single publisher' : ''}${slow ? ', 20 Mbit/s uplinks' : ''}`
  const sc = scenario(label, nodes, bytes, 'consensus', slow ? { bandwidth: 20e6 } : {})
  const out: ScenarioResult[] = []
  for (const strategy of preambleProfiles) {
    process.stderr.write(`running ${label} with ${strategy.name}...\n`)
    out.push(await runScenario(sc, single ? withPublishers(strategy, () => [0]) : strategy))
  }
  results[`${label} (preamble part)`] = out
  const stock = out[0].summary
  const floor = (nodes - 1) * bytes
  for (const r of out) {
    const s = r.summary
    const p99 = s.latencyMs.p99 / stock.latencyMs.p99
    preambleRows.push({
      scenario: label,
      profile: r.strategy,
      delivery: fmt(s.deliveryRatio, 4),
      'dups mean': fmt(s.duplicates.mean),
      'lat p50 ms': fmt(s.latencyMs.p50, 1),
      'lat p99 ms': fmt(s.latencyMs.p99, 1),
      'p99 /stock': fmt(p99),
      'bytes/floor': fmt(s.bytesPerMessage / floor),
      'PREAMBLE/msg': fmt(control(r, 'PREAMBLE')),
      'IMRECEIVING/msg': fmt(control(r, 'IMRECEIVING ids')),
      'IWANT/msg': fmt(control(r, 'IWANT')),
    })
    const name = preambleNames[r.strategy]
    if (name === undefined || slow) continue
    target(
      label,
      'dups per node per message',
      '≤ 0.3',
      s.duplicates.mean,
      s.duplicates.mean <= 0.3,
      name,
    )
    target(label, 'delivery', '= 1', s.deliveryRatio, s.deliveryRatio === 1, name)
    target(label, 'p99 latency / stock', '≤ 1.05', p99, p99 <= 1.05, name)
  }
}

/**
 * One peer sends PREAMBLEs of distinct unknown messages, one per frame, 10 frames per ms, to
 * one router with 5 other preamble peers in its mesh: the router's time per frame, the table's
 * high-water mark, and when the flooder is disconnected.
 */
function preambleFlood(): Row {
  const env = new ManualEnv()
  const router = new GossipRouter(env, { preamble: true, signaturePolicy: 'StrictNoSign' })
  router.start()
  const T = 'blocks'
  const peers = ['flooder', 'p1', 'p2', 'p3', 'p4', 'p5']
  for (const p of peers) {
    router.peerConnected(p, { protocol: MESHSUB_1_3, outbound: true })
    router.receive(
      p,
      frame({
        control: { extensions: { oneCopy: false, preamble: true } },
        subscriptions: [{ subscribe: true, topic: T }],
      }),
    )
  }
  router.subscribe(T)
  const frames = 20_000
  const encoded = Array.from({ length: frames }, (_, i) => {
    const id = new Uint8Array(20)
    new DataView(id.buffer).setUint32(0, i)
    return frame({
      oneCopy: {
        ...emptyOneCopy(),
        preamble: [{ messageID: id, topicHash: topicHash(T), size: 100_000 }],
      },
    })
  })
  env.take()
  let awaitedMax = 0
  let handled = 0
  let sentOut = 0
  let disconnectedAtMs: number | undefined
  const start = env.now()
  const t0 = performance.now()
  for (const f of encoded) {
    router.receive('flooder', f)
    handled++
    awaitedMax = Math.max(awaitedMax, router.getAwaitedPreambleCount())
    sentOut += env.take().length
    if (disconnectedAtMs === undefined && env.disconnected.length > 0) {
      disconnectedAtMs = env.now() - start
    }
    env.advance(0.1)
  }
  const wallMs = performance.now() - t0
  const invalid = router.stats().invalid
  return {
    'flood frames': handled,
    'µs per frame': fmt((wallMs * 1000) / handled, 2),
    'awaited max': awaitedMax,
    'frames sent by the router': sentOut,
    'broken preambles penalised': invalid['broken-preamble'] ?? 0,
    'ignored over limit': invalid['preamble-over-limit'] ?? 0,
    'disconnected after ms': disconnectedAtMs === undefined ? 'never' : fmt(disconnectedAtMs, 1),
  }
}
const floodRows = runs('preamble') ? [preambleFlood()] : []

/** Prints a table of section 1 unless its part did not run. */
function show(title: string, rows: Row[]): void {
  if (rows.length > 0) printTable(title, rows)
}

show(
  `Consensus gossip, ${nodes} nodes × 50 peers, D = 8, provider-clustered latency and bandwidth`,
  consensusRows,
)
show(`Churn with 1% frame loss (stock beside it), seed ${seed}`, churnRows)
show(`20% silent relays (one-copy), seed ${seed}`, silentRows)
show(
  `Preamble extension at 100 KB, random and single publisher (floor = (N − 1) × message bytes), seed ${seed}`,
  preambleRows,
)
show('PREAMBLE flood from one peer (10 frames per virtual ms, distinct unknown ids)', floodRows)
show(
  `One-copy against stock (floor = (N − 1) × message bytes), random publishers and a single publisher, seed ${seed}`,
  checks,
)
show(`Targets (issue 9), seed ${seed}: met or not, computed from the runs above`, verdicts)

/** The honest one-copy run at 256 B with random publishers (when the random part did not run). */
async function honestOneCopy(): Promise<ScenarioResult> {
  const label = `${nodes} nodes, consensus 256 B`
  process.stderr.write(`running ${label} with ${gossipOneCopyStrategy.name}...\n`)
  const r = await runScenario(scenario(label, nodes, 256, 'consensus'), gossipOneCopyStrategy)
  results[label] = [r]
  return r
}

// 1b. What the one-copy extension adds: the optimized profile without it.
const withoutRows: Row[] = []
for (const bytes of part === undefined ? [256, 100_000] : []) {
  const label = `${nodes} nodes, consensus ${bytes === 256 ? '256 B' : '100 KB'}, optimized without one-copy`
  process.stderr.write(`running ${label}...\n`)
  const r = await runScenario(scenario(label, nodes, bytes, 'consensus'), gossipOptimizedStrategy)
  results[label] = [r]
  const base = stockBySize.get(bytes)!.summary
  withoutRows.push({
    scenario: label,
    delivery: fmt(r.summary.deliveryRatio, 4),
    'dups mean': fmt(r.summary.duplicates.mean),
    'dups /stock': fmt(r.summary.duplicates.mean / base.duplicates.mean),
    'lat p50 ms': fmt(r.summary.latencyMs.p50, 1),
    'lat p99 ms': fmt(r.summary.latencyMs.p99, 1),
    'p99 /stock': fmt(r.summary.latencyMs.p99 / base.latencyMs.p99),
    'bytes/floor': fmt(r.summary.bytesPerMessage / ((nodes - 1) * bytes)),
  })
}
show(
  `Optimized profile without the one-copy extension, ${nodes} nodes (stock as above)`,
  withoutRows,
)

if (targetsOnly || part !== undefined) {
  writeSeedResults()
  process.exit(0)
}

// 2. Ingress on full-mesh subnets: transmissions per message against N − 1.
const ingressRows: Row[] = []
const sizes = quick ? [28, 56] : [28, 56, 112]
for (const n of sizes) {
  for (const bytes of n === 56 ? [256, 100_000] : [256]) {
    const label = `${n}-node subnet, ingress ${bytes === 256 ? '256 B' : '100 KB'}`
    const sc = scenario(label, n, bytes, 'ingress', {
      topology: 'full-mesh',
      degree: n - 1,
      latencyMs: 20,
      bandwidth: 1e9,
    })
    for (const r of await compare(label, sc)) {
      const sends = r.summary.payloadBytesPerMessage / bytes
      ingressRows.push({
        ...row(label, r),
        'sends/msg': fmt(sends, 1),
        'sends/(N-1)': fmt(sends / (n - 1)),
      })
    }
  }
}
printTable('Ingress on full-mesh subnets (target: optimized sends/(N-1) ≤ 1.05)', ingressRows)

// 3. Seed 001: 56 nodes, 300 ingress messages per second.
const ic = { ...SCENARIOS['ic-subnet'], messages: quick ? 150 : 600 }
const seconds = (ic.messages * ic.intervalMs) / 1000
const loadRows: Row[] = []
for (const r of await compare('ic-subnet 300 msg/s', ic)) {
  const s = r.summary
  const perNodePerSecond = (v: number) => (v * s.messages) / ic.nodes / seconds
  loadRows.push({
    profile: r.strategy,
    delivery: fmt(s.deliveryRatio, 4),
    'frames/s per node': fmt(perNodePerSecond(s.framesPerMessage), 0),
    'message copies/s per node': fmt(
      perNodePerSecond(s.payloadBytesPerMessage / ic.messageBytes),
      0,
    ),
    'IHAVE ids/s per node': fmt(perNodePerSecond(control(r, 'IHAVE ids')), 0),
    'IWANT ids/s per node': fmt(perNodePerSecond(control(r, 'IWANT ids')), 0),
    'KB/s per node': fmt(perNodePerSecond(s.bytesPerMessage) / 1000, 0),
  })
}
printTable(
  `Seed 001 load: ${ic.nodes} nodes, full mesh, 300 ingress messages/s of ${ic.messageBytes} B for ${seconds} s`,
  loadRows,
)

// 4. Stock duplicates against the two models. Seed 002's model assumes every mesh link the
// message does not need carries it once: (D̄ − 2)/2 per node. A reply in the same thread
// points out that with no processing time both ends of such a link relay before hearing from
// the other, so it carries the message both ways: D̄ − 2. Processing time in between lets a
// node hear from peers before it relays; how much depends on how unevenly nodes relay.
const modelRows: Row[] = []
const models: Record<string, unknown>[] = []
const relayDelays: { label: string; ms: (node: number) => number }[] = [
  ...[0, 2, 10, 30, 100].map((ms) => ({ label: `${ms} ms on every node`, ms: () => ms })),
  ...[1, 1.5].map((sigma) => {
    const draw = new Prng(seed).fork(`validation σ ${sigma}`)
    const perNode = Array.from({ length: nodes }, () => 30 * Math.exp(sigma * draw.normal()))
    return { label: `per node, median 30 ms, σ ${sigma}`, ms: (i: number) => perNode[i] }
  }),
]
for (const { label, ms } of relayDelays) {
  const observed = observeLinks((i) =>
    gossipStrategy('stock', `stock, validation ${label}`, {
      validationDelayMs: ms(i),
      validationDelayMsPerKB: 0,
    }),
  )
  process.stderr.write(`running validation ${label} with gossip-stock...\n`)
  // A long drain: the slowest validators (seconds in the log-normal tail) still deliver.
  const sc = scenario(label, nodes, 256, 'consensus', { messages: quick ? 5 : 10, drainMs: 20_000 })
  const r = await runScenario(sc, observed.strategy)
  const links = observed.links()
  const recipients = nodes - 1
  modelRows.push({
    validation: label,
    delivery: fmt(r.summary.deliveryRatio, 4),
    'dups mean': fmt(r.summary.duplicates.mean),
    'mesh degree D̄': fmt(links.meshDegree),
    'one way (D̄−2)/2': fmt((links.meshDegree - 2) / 2),
    'both ways D̄−2': fmt(links.meshDegree - 2),
    'links used both ways': `${fmt(100 * links.bothWaysShare, 1)}%`,
    'dups from link use': fmt((links.used + links.bothWays) / recipients - 1),
    'first dup p50 ms': fmt(r.summary.firstDuplicateDelayMs.p50, 1),
    'lat p99 ms': fmt(r.summary.latencyMs.p99, 1),
  })
  models.push({ validation: label, links, summary: r.summary })
}
printTable(
  `Stock duplicates against the models: ${nodes} nodes, 256 B consensus messages (dups from link use = (links used + links used both ways) / (N − 1) − 1)`,
  modelRows,
)

/** Wraps a per-node strategy to count, per message, the links that carried it one way and both ways. */
function observeLinks(perNode: (node: number) => SimStrategy) {
  const received = new Set<string>()
  const meshDegrees: number[] = []
  const messages = new Set<string>()
  const strategy: SimStrategy = {
    ...perNode(0),
    create: (env, index, ctx) => {
      const router = perNode(index).create(env, index, ctx) as GossipRouter
      const note = (id: Uint8Array, from: string | undefined) => {
        const key = messageIdKey(id)
        messages.add(key)
        if (from !== undefined) received.add(`${key} ${from} ${env.self}`)
      }
      router.on('artifact', (a) => {
        meshDegrees.push(router.getMeshPeers(SCENARIO_TOPIC).length)
        note(a.id, a.from)
      })
      router.on('duplicate', (d) => note(d.id, d.from))
      return router
    },
  }
  const links = () => {
    let used = 0
    let bothWays = 0
    for (const k of received) {
      const [id, from, to] = k.split(' ')
      const back = received.has(`${id} ${to} ${from}`)
      if (!back) used++
      else if (from < to) {
        used++
        bothWays++
      }
    }
    const m = Math.max(1, messages.size)
    return {
      used: used / m,
      bothWays: bothWays / m,
      bothWaysShare: used === 0 ? 0 : bothWays / used,
      meshDegree: meshDegrees.reduce((a, b) => a + b, 0) / Math.max(1, meshDegrees.length),
    }
  }
  return { strategy, links }
}

writeSeedResults(models)

/** Writes every figure printed so far (sections 2–4 only when they ran). */
function writeSeedResults(models?: Record<string, unknown>[]): void {
  const name =
    `${targetsOnly ? 'gossip-sim-targets' : 'gossip-sim'}${part ? `-${part}` : ''}` +
    `${messagesPerRun === defaultMessages ? '' : `-${messagesPerRun}-messages`}`
  writeResults(seed === 1 ? name : `${name}-seed${seed}`, {
    models,
    quick,
    seed,
    messagesPerRun,
    comparisons: checks,
    targets: verdicts,
    churn: churnRows,
    silentRelays: silentRows,
    withoutOneCopy: withoutRows,
    preamble: preambleRows,
    preambleFlood: floodRows,
    meanMeshDegreeAtDelivery: meshDegrees,
    results: Object.fromEntries(
      Object.entries(results).map(([k, rs]) => [
        k,
        rs.map((r) => ({ strategy: r.strategy, summary: r.summary, wallMs: r.wallMs })),
      ]),
    ),
  })
}
