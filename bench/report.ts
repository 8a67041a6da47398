import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where benchmarks write their figures. */
export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results')

/** One printed table row: column name → cell. */
export type Row = Record<string, string | number>

/** The command-line value after `flag` (such as `--seed`), or undefined when `flag` is absent. */
export function argValue(flag: string): string | undefined {
  const at = process.argv.indexOf(flag)
  return at >= 0 ? process.argv[at + 1] : undefined
}

/** The number after `flag` on the command line, or `fallback` when `flag` is absent. */
export function numberArg(flag: string, fallback: number): number {
  const v = argValue(flag)
  return v === undefined ? fallback : Number(v)
}

/** Formats a number for a table: integers with separators, others with `digits` decimals. */
export function fmt(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return String(value)
  if (Number.isInteger(value)) return value.toLocaleString('en-US')
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  })
}

/** Prints rows as an aligned text table under a title. */
export function printTable(title: string, rows: Row[]): void {
  console.log(`\n${title}`)
  if (rows.length === 0) {
    console.log('(no rows)')
    return
  }
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))]
  const cell = (v: string | number | undefined) =>
    v === undefined ? '' : typeof v === 'number' ? fmt(v) : v
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)))
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  console.log(line(columns))
  console.log(line(widths.map((w) => '-'.repeat(w))))
  for (const r of rows) console.log(line(columns.map((c) => cell(r[c]))))
}

/** Writes a benchmark's figures as JSON to `bench/results/NAME.json`; returns the path. */
export function writeResults(name: string, data: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true })
  const path = join(RESULTS_DIR, `${name}.json`)
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`)
  console.log(`\nfigures written to ${path}`)
  return path
}
