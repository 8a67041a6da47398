/**
 * The report's runs: which scenarios, under which strategies, at full or `--quick` size.
 * Full size uses the presets as they stand; quick shrinks the node counts (same code path).
 */
import { brokerSimStrategy } from '../src/sim/broker-strategy.ts'
import { floodStrategy } from '../src/sim/flood-strategy.ts'
import { gossipOptimizedStrategy, gossipStockStrategy } from '../src/sim/gossip-strategy.ts'
import { SCENARIOS } from '../src/sim/presets.ts'
import { rpSimStrategy } from '../src/sim/rp-strategy.ts'
import type { Scenario, SimStrategy } from '../src/sim/scenario.ts'

/** The report's scenario keys. */
export type ScenarioKey = 'eth2022' | 'eth2025' | 'subnet' | 'tx'

/** One run of the report. */
export interface PlannedRun {
  /** Unique id: `scenario/strategy`. */
  id: string
  /** Which of the report's scenarios. */
  key: ScenarioKey
  /** Strategy label in tables and charts. */
  label: string
  /** The scenario as run. */
  scenario: Scenario
  /** The strategy. */
  strategy: SimStrategy
  /** Rough cost, for ordering: runs start cheapest first. */
  cost: number
}

/** The strategy labels, in the order of every table and chart. */
export const STRATEGY_LABELS = [
  'flood',
  'gossip stock',
  'gossip optimized',
  'RP unicast',
  'RP + IP multicast',
  'broker',
] as const

const DISSEMINATION: Array<{ label: string; strategy: SimStrategy }> = [
  { label: 'flood', strategy: floodStrategy },
  { label: 'gossip stock', strategy: gossipStockStrategy },
  { label: 'gossip optimized', strategy: gossipOptimizedStrategy },
  { label: 'RP unicast', strategy: rpSimStrategy() },
  { label: 'RP + IP multicast', strategy: rpSimStrategy({ multicast: true }) },
]

/** The report's scenarios, at full size or shrunk for `--quick`. */
export function reportScenarios(quick: boolean): Record<ScenarioKey, Scenario> {
  const eth2022 = SCENARIOS['ethereum-2022']
  const eth2025 = SCENARIOS['ethereum-2025']
  const subnet = SCENARIOS['ethereum-2025-attestations']
  const scenarios: Record<ScenarioKey, Scenario> = {
    eth2022,
    eth2025,
    subnet,
    // Client transactions through a broker: 64 transactions of 256 B from the broker's clients.
    tx: {
      ...eth2022,
      name: 'ethereum-2022-transactions',
      description: '64 client transactions of 256 B through one broker to its witness servers',
      messages: 64,
      intervalMs: 5,
    },
  }
  if (!quick) return scenarios
  return {
    eth2022: { ...eth2022, nodes: 1_500 },
    eth2025: { ...eth2025, nodes: 800, degree: 100, messages: 2 },
    subnet: { ...subnet, nodes: 200, degree: 30, messages: 5 },
    tx: { ...scenarios.tx, messages: 16 },
  }
}

/** Every run of the report. */
export function reportPlan(quick: boolean): PlannedRun[] {
  const s = reportScenarios(quick)
  const runs: PlannedRun[] = []
  for (const key of ['eth2022', 'eth2025', 'subnet'] as const) {
    for (const { label, strategy } of DISSEMINATION) {
      // Gossip's heartbeats over every link and the flooding of blocks dominate; multicast
      // (join probes answered once per site) costs about what unicast RPs cost.
      const edges = s[key].nodes * s[key].degree
      let cost = 0
      if (label.startsWith('gossip')) cost = 2 * edges
      else if (key === 'eth2025' && label === 'flood') cost = edges
      else if (label.includes('multicast') && s[key].nodes >= 10_000) cost = s[key].nodes
      runs.push({ id: `${key}/${label}`, key, label, scenario: s[key], strategy, cost })
    }
  }
  runs.push({
    id: 'tx/broker',
    key: 'tx',
    label: 'broker',
    scenario: s.tx,
    strategy: brokerSimStrategy(),
    cost: 0,
  })
  return runs
}
