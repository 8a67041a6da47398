/**
 * `npm run demo`: runs one scenario in the simulator under every strategy and prints a
 * table, a row per strategy. `npm run demo -- --help` lists scenarios and options.
 */
import { parseArgs } from 'node:util'
import { SingleBar } from 'cli-progress'
import { brokerSimSizes } from '../sim/broker-strategy.ts'
import { SCENARIOS } from '../sim/presets.ts'
import { runScenario, type Scenario, type ScenarioResult } from '../sim/scenario.ts'
import { STRATEGIES } from '../sim/strategies.ts'
import { type DemoRow, formatRows, scenarioRow } from './format.ts'

const ALL_NAMES = STRATEGIES.map((s) => s.name)

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'ethereum' },
    strategies: { type: 'string' },
    nodes: { type: 'string' },
    messages: { type: 'string' },
    bytes: { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
})

if (values.help) {
  console.log(`usage: npm run demo -- [options]

Runs a scenario in the deterministic simulator under each strategy and prints one row each.

options:
  --scenario NAME     one of the scenarios below (default: ethereum)
  --strategies A,B    strategies to run (default: the scenario's, else all):
                      ${ALL_NAMES.join(', ')}
  --nodes N           override the number of nodes
  --messages N        override the number of messages
  --bytes N           override the payload size in bytes
  --seed S            override the seed (same seed, same result)
  --json              print the full results as JSON instead of a table

scenarios:
${Object.values(SCENARIOS)
  .map((s) => `  ${s.name.padEnd(14)} ${s.description}`)
  .join('\n')}

strategies:
${STRATEGIES.map((s) => `  ${s.name.padEnd(18)} ${s.description}`).join('\n')}`)
  process.exit(0)
}

const base = SCENARIOS[values.scenario]
if (base === undefined) {
  console.error(`unknown scenario "${values.scenario}"; try --help`)
  process.exit(2)
}
const int = (s: string | undefined, name: string): number | undefined => {
  if (s === undefined) return undefined
  const v = Number(s)
  if (!Number.isInteger(v) || v <= 0) {
    console.error(`--${name} must be a positive integer`)
    process.exit(2)
  }
  return v
}
const scenario: Scenario = {
  ...base,
  nodes: int(values.nodes, 'nodes') ?? base.nodes,
  messages: int(values.messages, 'messages') ?? base.messages,
  messageBytes: int(values.bytes, 'bytes') ?? base.messageBytes,
  seed: values.seed ?? base.seed,
}
if (scenario.topology !== 'full-mesh')
  scenario.degree = Math.min(scenario.degree, scenario.nodes - 1)
if ((scenario.nodes * scenario.degree) % 2 === 1) scenario.degree--

const wanted = values.strategies?.split(',') ?? scenario.strategies ?? ALL_NAMES
const unknown = wanted.filter((w) => !ALL_NAMES.includes(w))
if (unknown.length > 0) {
  console.error(`unknown strategies: ${unknown.join(', ')}; try --help`)
  process.exit(2)
}

console.log(`scenario ${scenario.name}: ${scenario.description}`)
console.log(
  `${scenario.nodes} nodes, ${scenario.messages} × ${scenario.messageBytes} B ${scenario.class} messages, seed ${scenario.seed}`,
)
const results: ScenarioResult[] = []
const rows: DemoRow[] = []
for (const strategy of STRATEGIES.filter((s) => wanted.includes(s.name))) {
  if (strategy.classes !== undefined && !strategy.classes.includes(scenario.class)) {
    console.log(
      `${strategy.name}: skipped, it carries ${strategy.classes.join(', ')} messages only`,
    )
    continue
  }
  const bar = new SingleBar({
    format: `${strategy.name.padEnd(18)} [{bar}] {percentage}% of virtual time`,
    hideCursor: true,
    clearOnComplete: true,
  })
  bar.start(100, 0)
  const result = await runScenario(scenario, strategy, {
    onProgress: (f) => bar.update(Math.round(f * 100)),
  })
  bar.stop()
  results.push(result)
  rows.push(scenarioRow(result))
}
if (values.json) {
  console.log(JSON.stringify({ simulated: results }, null, 2))
} else {
  console.log(formatRows(rows))
  if (results.some((r) => r.strategy === 'broker')) {
    const { clients, servers } = brokerSimSizes(scenario)
    console.log(
      `\nbroker row: ${clients} clients publish through one broker to ${servers} witness servers, ` +
        'which are the receivers (delivery and latency are counted there); real ed25519 and BLS ' +
        'signatures; one sequencer orders the batches at no cost.',
    )
  }
}
