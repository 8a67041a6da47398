/**
 * Attacks from outside (issue 11): `npm run bench -- attack` runs the gossip attacks
 * (bench/attack/gossip.ts: hand-built meshsub frames against a victim between two honest
 * nodes) and the broker attacks (bench/attack/broker.ts: UDP floods, replays, port rotation
 * and a replay race against a broker with honest clients) and what a denied peer's redials
 * cost the node refusing them (bench/attack/redial.ts), each in its own process so one's
 * memory and CPU figures do not leak into another's. `npm run bench -- attack gossip [args]`
 * (or `broker`, `redial`) runs one, passing it the rest of the arguments. Figures go to
 * bench/results/attack-gossip.json, attack-broker.json and attack-redial.json.
 */
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const PARTS = ['gossip', 'broker', 'redial']
const here = dirname(fileURLToPath(import.meta.url))
const [first, ...rest] = process.argv.slice(2)
if (first !== undefined && !PARTS.includes(first)) {
  console.error(`unknown part "${first}"; usage: attack [${PARTS.join('|')} [args]]`)
  process.exit(2)
}
let failed = 0
for (const part of first === undefined ? PARTS : [first]) {
  console.log(`\n--- attack: ${part} ---`)
  const args = [join(here, 'attack', `${part}.ts`), ...(first === undefined ? [] : rest)]
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' })
  if (r.status !== 0) failed++
}
process.exit(failed === 0 ? 0 : 1)
