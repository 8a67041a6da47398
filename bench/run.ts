/**
 * Runs benchmarks: `npm run bench -- NAME [args]` runs bench/NAME.ts; `npm run bench`
 * runs every benchmark in turn. Each runs in its own process, so memory and timing
 * figures of one do not leak into another.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const SUPPORT = new Set(['run.ts', 'report.ts'])
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && !SUPPORT.has(f))
  .map((f) => f.slice(0, -3))
  .sort()

const [name, ...args] = process.argv.slice(2)
if (name === '--help' || name === '-h') {
  console.log(`usage: npm run bench [-- NAME [args]]\nbenchmarks: ${available.join(', ')}`)
  process.exit(0)
}
if (name !== undefined && !available.includes(name)) {
  console.error(`unknown benchmark "${name}"; available: ${available.join(', ')}`)
  process.exit(2)
}
let failed = 0
for (const bench of name === undefined ? available : [name]) {
  console.log(`\n=== bench ${bench} ===`)
  const r = spawnSync(process.execPath, [join(here, `${bench}.ts`), ...args], { stdio: 'inherit' })
  if (r.status !== 0) failed++
}
process.exit(failed === 0 ? 0 : 1)
