import type { ScenarioResult } from '../sim/scenario.ts'

/** One row of the demo table. */
export interface DemoRow {
  /** Strategy name. */
  strategy: string
  /** Deliveries over expected deliveries. */
  deliveryRatio: number
  /** Median latency, ms. */
  p50: number
  /** 99th percentile latency, ms. */
  p99: number
  /** Mean duplicates per receiver per message. */
  duplicates: number
  /** 99th percentile duplicates per receiver per message. */
  duplicatesP99: number
  /** Frames on the wire per message. */
  framesPerMessage: number
  /** Bytes on the wire per message. */
  bytesPerMessage: number
  /** Failed publishes or lost messages. */
  errors: number
  /** Wall-clock seconds of the run. */
  wallSeconds: number
}

/** A simulator result as a demo row. */
export function scenarioRow(r: ScenarioResult): DemoRow {
  const s = r.summary
  return {
    strategy: r.strategy,
    deliveryRatio: s.deliveryRatio,
    p50: s.latencyMs.p50,
    p99: s.latencyMs.p99,
    duplicates: s.duplicates.mean,
    duplicatesP99: s.duplicates.p99,
    framesPerMessage: s.framesPerMessage,
    bytesPerMessage: s.bytesPerMessage,
    errors: r.publishErrors.length,
    wallSeconds: r.wallMs / 1000,
  }
}

/** Formats demo rows as an aligned text table. */
export function formatRows(rows: DemoRow[]): string {
  const f = (v: number, d = 1) =>
    v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
  const header = [
    'strategy',
    'delivered',
    'p50 ms',
    'p99 ms',
    'dups/node/msg',
    'dups p99',
    'frames/msg',
    'KB/msg',
    'errors',
    'wall s',
  ]
  const cells = rows.map((r) => [
    r.strategy,
    `${f(r.deliveryRatio * 100, 2)}%`,
    f(r.p50),
    f(r.p99),
    f(r.duplicates, 2),
    f(r.duplicatesP99, 0),
    f(r.framesPerMessage, 0),
    f(r.bytesPerMessage / 1000, 2),
    String(r.errors),
    f(r.wallSeconds, 2),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)))
  const line = (c: string[]) =>
    c.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ')
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n')
}
