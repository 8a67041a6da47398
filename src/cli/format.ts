import type { ScenarioResult } from '../sim/scenario.ts'

/** Formats scenario results as an aligned text table, a row per strategy. */
export function formatResults(results: ScenarioResult[]): string {
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
    'payload KB',
    'control KB',
    'errors',
    'wall s',
  ]
  const rows = results.map((r) => {
    const s = r.summary
    return [
      r.strategy,
      `${f(s.deliveryRatio * 100, 2)}%`,
      f(s.latencyMs.p50),
      f(s.latencyMs.p99),
      f(s.duplicates.mean, 2),
      f(s.duplicates.p99, 0),
      f(s.framesPerMessage, 0),
      f(s.bytesPerMessage / 1000),
      f(s.payloadBytesPerMessage / 1000),
      f(s.controlBytesPerMessage / 1000),
      String(r.publishErrors.length),
      f(r.wallMs / 1000, 2),
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}
