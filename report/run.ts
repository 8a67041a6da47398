/**
 * `npm run report`: the Ethereum-scale report (issue 13). Runs every planned (scenario,
 * strategy) pair in child processes, two at a time (one gossip run over 72,000 nodes at most), cheapest first, with a
 * progress bar each, then writes report/README.md and its SVG charts from the results.
 *
 * Usage: npm run report [-- --quick] [-- --out DIR] [-- --budget-min M]
 * `--quick` runs small networks through the same code; `--out` writes elsewhere (tests);
 * `--budget-min` (default 18) stops every run still going after M minutes, so the report is
 * written in time: light runs go first, and a stopped run is listed as missing;
 * `--rewrite` writes the report again from the last run's results.json without running.
 */
import { fork } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MultiBar, Presets } from 'cli-progress'
import { SIM_GC_FLAGS } from '../src/sim/gc-flags.ts'
import type { RunResult } from './measure.ts'
import { type PlannedRun, reportPlan } from './plan.ts'
import type { WorkerMessage } from './worker.ts'
import { writeReport } from './write.ts'

const HERE = dirname(fileURLToPath(import.meta.url))
const quick = process.argv.includes('--quick')
const outIndex = process.argv.indexOf('--out')
const outDir = outIndex >= 0 ? process.argv[outIndex + 1] : HERE
const budgetIndex = process.argv.indexOf('--budget-min')
let budgetMin = budgetIndex >= 0 ? Number(process.argv[budgetIndex + 1]) : 18
const PARALLEL = 2
const t0 = performance.now()
const deadline = t0 + budgetMin * 60_000

const plan = reportPlan(quick)
const bars = new MultiBar(
  {
    format: '{bar} {percentage}% | {id} | {duration_formatted}',
    hideCursor: true,
    clearOnComplete: false,
    noTTYOutput: !process.stderr.isTTY,
    notTTYSchedule: 10_000,
  },
  Presets.shades_classic,
)

interface Done {
  result: RunResult
  wallMs: number
  cpuMs: number
  peakRssBytes: number
}

/**
 * V8 flags of each run's process: a heap for 13,000 × 200 and 72,000 × 50 peer tables, and
 * the simulator's GC flags (as bench/sim-scale.ts gives its gossip runs).
 */
const CHILD_FLAGS = ['--max-old-space-size=7000', ...SIM_GC_FLAGS]

/** Runs one planned run in a child process; resolves with its result. */
function runChild(run: PlannedRun): Promise<Done> {
  const bar = bars.create(100, 0, { id: run.id })
  return new Promise((resolve, reject) => {
    const args = [run.id, ...(quick ? ['--quick'] : [])]
    const child = fork(join(HERE, 'worker.ts'), args, {
      execArgv: CHILD_FLAGS,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    let done: Done | undefined
    const stop = setTimeout(() => child.kill(), Math.max(0, deadline - performance.now()))
    child.on('message', (m: WorkerMessage) => {
      if (m.type === 'progress') bar.update(Math.round(m.fraction * 100))
      else
        done = { result: m.result, wallMs: m.wallMs, cpuMs: m.cpuMs, peakRssBytes: m.peakRssBytes }
    })
    child.on('exit', (code) => {
      clearTimeout(stop)
      bar.stop()
      if (done !== undefined) resolve(done)
      else
        reject(
          new Error(
            `run ${run.id} stopped (code ${code}) at ${bar.getProgress() * 100}% of its virtual time after ${((performance.now() - t0) / 1000).toFixed(0)} s of the report`,
          ),
        )
    })
  })
}

// Light runs first: what the budget allows of the heavy ones comes after.
const queue = [...plan].sort((a, b) => a.cost - b.cost)
// Gossip over 72,000 nodes needs ~6 GB: two of those at once do not fit beside the rest.
const BIG_EDGES = 3_000_000
const isBig = (r: PlannedRun) =>
  r.label.startsWith('gossip') && r.scenario.nodes * r.scenario.degree >= BIG_EDGES
let bigRunning = false
const done = new Map<string, Done>()
const failures: string[] = []
const resultsFile = join(outDir, 'results.json')
if (process.argv.includes('--rewrite')) {
  const saved = JSON.parse(readFileSync(resultsFile, 'utf8')) as {
    budgetMin: number
    results: RunResult[]
  }
  budgetMin = saved.budgetMin
  for (const result of saved.results)
    done.set(result.id, { result, wallMs: 0, cpuMs: 0, peakRssBytes: 0 })
  queue.length = 0
}
await new Promise<void>((resolveAll) => {
  let running = 0
  const next = () => {
    // Past the budget nothing more starts: what is left is listed as not started.
    if (performance.now() >= deadline) {
      for (const r of queue.splice(0)) failures.push(`${r.id}: not started (budget spent)`)
    }
    if (queue.length === 0 && running === 0) {
      resolveAll()
      return
    }
    while (running < PARALLEL) {
      const i = queue.findIndex((r) => !isBig(r) || !bigRunning)
      if (i < 0) return
      const [run] = queue.splice(i, 1)
      running++
      if (isBig(run)) bigRunning = true
      runChild(run)
        .then(
          (d) => done.set(run.id, d),
          (err) => failures.push(`${run.id}: ${err.message}`),
        )
        .finally(() => {
          running--
          if (isBig(run)) bigRunning = false
          next()
        })
    }
  }
  next()
})
bars.stop()

const results = plan.flatMap((r) => {
  const d = done.get(r.id)
  return d === undefined ? [] : [d.result]
})
const missing = plan.filter((r) => !done.has(r.id)).map((r) => r.id)
mkdirSync(outDir, { recursive: true })
writeFileSync(resultsFile, `${JSON.stringify({ quick, budgetMin, missing, results }, null, 1)}\n`)
await writeReport(outDir, quick, results, missing, budgetMin)
for (const r of plan) {
  const d = done.get(r.id)
  if (d === undefined) continue
  console.log(
    `${r.id.padEnd(32)} ${(d.wallMs / 1000).toFixed(1).padStart(7)} s  ${(d.cpuMs / 1000).toFixed(1).padStart(7)} s CPU  ${(d.peakRssBytes / 2 ** 30).toFixed(2)} GB  ${d.result.events.toLocaleString('en-US')} events`,
  )
}
for (const f of failures) console.error(`failed: ${f}`)
console.log(
  `report written to ${join(outDir, 'README.md')} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
)
if (failures.length > 0) process.exitCode = 1
