/**
 * A child process of `npm run report`: runs one planned run and sends its progress and
 * result to the parent over IPC. Usage: node report/worker.ts RUN_ID [--quick]
 */
import { measure } from './measure.ts'
import { reportPlan } from './plan.ts'

/** What a worker sends its parent. */
export type WorkerMessage =
  | { type: 'progress'; fraction: number }
  | {
      type: 'result'
      result: import('./measure.ts').RunResult
      wallMs: number
      /** CPU time of the run (user + system, GC helper threads included), ms. */
      cpuMs: number
      peakRssBytes: number
    }

const id = process.argv[2]
const run = reportPlan(process.argv.includes('--quick')).find((r) => r.id === id)
if (run === undefined) throw new Error(`no planned run ${id}`)
const send = (m: WorkerMessage) => (process.send ? process.send(m) : console.log(JSON.stringify(m)))
let peak = process.memoryUsage().rss
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss)
}, 200)
const t0 = performance.now()
const cpu0 = process.cpuUsage()
let last = -1
const result = await measure(run.id, run.label, run.scenario, run.strategy, (f) => {
  // At most one message per percent.
  const pct = Math.floor(f * 100)
  if (pct !== last) {
    last = pct
    send({ type: 'progress', fraction: f })
    peak = Math.max(peak, process.memoryUsage().rss)
  }
})
clearInterval(sampler)
const cpu = process.cpuUsage(cpu0)
send({
  type: 'result',
  result,
  wallMs: performance.now() - t0,
  cpuMs: (cpu.user + cpu.system) / 1000,
  peakRssBytes: peak,
})
process.disconnect?.()
