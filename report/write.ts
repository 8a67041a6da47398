/**
 * Writes the report from the runs' results: report/README.md, its SVG charts and, for a
 * full run into the default directory, the headline section of the project README.
 * Everything here is derived from the results; the only constants are the seed's and the
 * draft's published figures ({@link SEED_000}), shown as quoted references.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { barsSpec, cdfSpec, duplicatesSpec, renderSvg } from './charts.ts'
import type { RunResult } from './measure.ts'
import { reportScenarios, type ScenarioKey, STRATEGY_LABELS } from './plan.ts'
import { rpRegistrationBytes, SEED_000 } from './setup-bytes.ts'

const HERE = dirname(fileURLToPath(import.meta.url))
const PROJECT_README = join(HERE, '..', 'README.md')
const BEGIN = '<!-- report:headline begin -->'
const END = '<!-- report:headline end -->'

/** Bytes in decimal units (the draft's MB), four significant digits (the draft's 22.44 MB). */
export function bytes(b: number): string {
  if (!Number.isFinite(b)) return '—'
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let u = 0
  let v = b
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000
    u++
  }
  return `${u === 0 ? Math.round(v) : v.toPrecision(4)} ${units[u]}`
}

/** A number with `digits` decimals and thousands separators, or a dash. */
function num(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return '—'
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** A ratio as "12.3×". */
function times(x: number): string {
  if (!Number.isFinite(x)) return '—'
  return `${x >= 100 ? num(x) : x.toPrecision(3)}×`
}

function mean(xs: number[]): number {
  const ok = xs.filter(Number.isFinite)
  return ok.length === 0 ? Number.NaN : ok.reduce((a, b) => a + b, 0) / ok.length
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`
  return [
    line(header),
    line(header.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...rows.map(line),
  ].join('\n')
}

/** The results by scenario key and strategy label. */
class Results {
  private readonly byId = new Map<string, RunResult>()
  constructor(results: RunResult[]) {
    for (const r of results) this.byId.set(r.id, r)
  }
  get(key: ScenarioKey, label: string): RunResult | undefined {
    return this.byId.get(`${key}/${label}`)
  }
  of(key: ScenarioKey): RunResult[] {
    return STRATEGY_LABELS.flatMap((l) => {
      const r = this.get(key, l)
      return r === undefined ? [] : [r]
    })
  }
}

const floor = (r: RunResult) => (r.members - 1) * r.messageBytes
const perHour = (r: RunResult) => r.idleBytesPerSecond * 3600
const within = (r: RunResult, ms: number) =>
  r.reach95Ms.filter((t) => Number.isFinite(t) && t <= ms).length / Math.max(1, r.reach95Ms.length)

/** The per-strategy table of one scenario. */
function scenarioTable(rs: RunResult[]): string {
  return table(
    [
      'strategy',
      'delivered',
      'bytes / message',
      '× floor',
      'dups / node',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'majority ms',
      '95% reached ms',
      'set-up bytes / node',
      'upkeep bytes / node / h',
    ],
    rs.map((r) => [
      r.strategy,
      `${(r.deliveryRatio * 100).toFixed(2)}%`,
      bytes(r.bytesPerMessage),
      times(r.bytesPerMessage / floor(r)),
      num(r.duplicatesMean, 2),
      num(r.p50, 1),
      num(r.p90, 1),
      num(r.p99, 1),
      num(mean(r.majorityMs), 1),
      num(mean(r.reach95Ms), 1),
      bytes(r.startupBytes / r.nodes),
      bytes(perHour(r) / r.nodes),
    ]),
  )
}

/** Writes the three charts of a scenario; returns their file names. */
async function scenarioCharts(dir: string, prefix: string, title: string, rs: RunResult[]) {
  const files = {
    latency: `${prefix}-latency.svg`,
    duplicates: `${prefix}-duplicates.svg`,
    bytes: `${prefix}-bytes.svg`,
  }
  const svg = {
    latency: await renderSvg(
      cdfSpec(
        `${title}: latency CDF`,
        rs.map((r) => ({ label: r.strategy, quantiles: r.cdf })),
      ),
    ),
    duplicates: await renderSvg(
      duplicatesSpec(
        `${title}: duplicates`,
        rs.map((r) => ({ label: r.strategy, counts: r.duplicateHistogram })),
      ),
    ),
    bytes: await renderSvg(
      barsSpec(`${title}: bytes on the wire per message`, 'bytes (symlog scale)', [
        ...(rs.length > 0 ? [{ label: 'floor (N − 1) × size', value: floor(rs[0]) }] : []),
        ...rs.map((r) => ({ label: r.strategy, value: r.bytesPerMessage })),
      ]),
    ),
  }
  for (const k of ['latency', 'duplicates', 'bytes'] as const)
    writeFileSync(join(dir, files[k]), svg[k])
  return files
}

/** The comparison with the draft: figure, draft, ours, ratio. */
function draftRows(res: Results): string[][] {
  const rows: string[][] = []
  const g22 = res.get('eth2022', 'gossip stock')
  const f22 = res.get('eth2022', 'flood')
  const rp22 = res.get('eth2022', 'RP unicast')
  const mc22 = res.get('eth2022', 'RP + IP multicast')
  for (const [base, rp] of [
    [g22, rp22],
    [f22, rp22],
    [g22, mc22],
  ] as const) {
    if (base === undefined || rp === undefined) continue
    const saved = base.bytesPerMessage - rp.bytesPerMessage
    rows.push([
      `traffic saved per 256 B transaction, ${rp.strategy} vs ${base.strategy} (${num(base.members)} nodes)`,
      bytes(SEED_000.draftSavingPerTxBytes),
      bytes(saved),
      times(saved / SEED_000.draftSavingPerTxBytes),
    ])
  }
  const reg = rpRegistrationBytes()
  const regBytes = reg.register + reg.registered
  rows.push([
    'RP relation set-up (register + registered, RP codec)',
    `${SEED_000.draftRpRelationBytes} B`,
    `${regBytes} B (${reg.register} + ${reg.registered})`,
    times(regBytes / SEED_000.draftRpRelationBytes),
  ])
  const n = rp22?.members ?? SEED_000.nodes2022
  const ethSystem = n * SEED_000.peersPerNode * SEED_000.ethRelationBytes
  const rpSystem = n * regBytes
  rows.push([
    `set-up bytes system-wide, Ethereum peering (${num(n)} × ${SEED_000.peersPerNode} × ${num(SEED_000.ethRelationBytes)} B) vs RP registration`,
    `${bytes(SEED_000.draftEthSystemBytes)} vs ${bytes(SEED_000.draftRpSystemBytes)}: ${SEED_000.draftSetupRatio}×`,
    `${bytes(ethSystem)} vs ${bytes(rpSystem)}: ${times(ethSystem / rpSystem)}`,
    times(ethSystem / rpSystem / SEED_000.draftSetupRatio),
  ])
  const attempts = ethSystem / SEED_000.completionRate
  rows.push([
    `the same, every attempt at full cost (seed 000: ${SEED_000.completionRate * 100}% complete; an upper bound)`,
    `${SEED_000.draftSetupRatio}×`,
    `${bytes(attempts)} vs ${bytes(rpSystem)}: ${times(attempts / rpSystem)}`,
    times(attempts / rpSystem / SEED_000.draftSetupRatio),
  ])
  for (const key of ['eth2022', 'eth2025'] as const) {
    const g = res.get(key, 'gossip stock')
    const rp = res.get(key, 'RP unicast')
    if (rp === undefined) continue
    if (g === undefined) {
      rows.push([
        `upkeep bytes per hour, RP unicast (${key === 'eth2022' ? '2022' : '2025'}, measured idle traffic; gossip stock not run)`,
        `${SEED_000.draftMaintenanceRatio}× fewer`,
        `${bytes(perHour(rp))} (${bytes(perHour(rp) / rp.nodes)} per node)`,
        '—',
      ])
      continue
    }
    const ratio = perHour(g) / perHour(rp)
    rows.push([
      `upkeep bytes per hour, gossip stock vs RP unicast (${key === 'eth2022' ? '2022' : '2025'}, measured idle traffic)`,
      `${SEED_000.draftMaintenanceRatio}× fewer`,
      `${bytes(perHour(g))} vs ${bytes(perHour(rp))}: ${times(ratio)}`,
      times(ratio / SEED_000.draftMaintenanceRatio),
    ])
  }
  for (const key of ['eth2022', 'eth2025'] as const) {
    for (const base of ['gossip stock', 'flood'] as const) {
      const b = res.get(key, base)
      const rp = res.get(key, 'RP unicast')
      if (b === undefined || rp === undefined) continue
      const ratio = mean(b.majorityMs) / mean(rp.majorityMs)
      rows.push([
        `time to a majority (> N/2), ${base} vs RP unicast (${key === 'eth2022' ? '2022, 256 B' : '2025, 150 KB blocks'})`,
        `≥ ${SEED_000.draftMajoritySpeedup}× faster`,
        `${num(mean(b.majorityMs), 1)} ms vs ${num(mean(rp.majorityMs), 1)} ms: ${times(ratio)}`,
        times(ratio / SEED_000.draftMajoritySpeedup),
      ])
    }
  }
  return rows
}

/** The headline table: one row per strategy, the numbers the issue asks for. */
export function headline(res: Results): string {
  return table(
    [
      'strategy',
      '2022: bytes per 256 B tx',
      '× floor',
      '2022: p50 / p99 ms',
      '2022: majority ms',
      '2025: blocks at 95% ≤ 4 s',
      '2025: block to 95% ms',
      '2025 subnet: bytes per 240 B',
    ],
    STRATEGY_LABELS.filter((l) => l !== 'broker').map((l) => {
      const a = res.get('eth2022', l)
      const b = res.get('eth2025', l)
      const c = res.get('subnet', l)
      return [
        l,
        a ? bytes(a.bytesPerMessage) : 'not run',
        a ? times(a.bytesPerMessage / floor(a)) : '—',
        a ? `${num(a.p50, 0)} / ${num(a.p99, 0)}` : '—',
        a ? num(mean(a.majorityMs), 0) : '—',
        b ? `${num(within(b, 4_000) * 100, 0)}% of ${b.reach95Ms.length}` : 'not run',
        b ? num(mean(b.reach95Ms), 0) : '—',
        c ? bytes(c.bytesPerMessage) : 'not run',
      ]
    }),
  )
}

/** What makes a run costly in the simulator, said beside a run that did not finish in time. */
function costOf(id: string): string {
  if (id.includes('gossip')) {
    return 'every gossipsub router runs its heartbeat (0.7 s stock, 1 s optimized) over its peers and meshes, and the start-up exchanges SUBSCRIBE and GRAFT over every link'
  }
  if (id.includes('multicast')) {
    return "each member's join probe is answered by a datagram copied to every member of its site (coalesced per 20 ms window, src/rp/lan-delivery.ts)"
  }
  if (id.includes('flood')) {
    return 'every node sends every message to every peer: nodes × peers frames per message'
  }
  return 'its event count'
}

/** Writes README.md and the charts into `dir`; updates the project README after a full run there. */
export async function writeReport(
  dir: string,
  quick: boolean,
  results: RunResult[],
  missing: string[],
  budgetMin: number,
): Promise<void> {
  mkdirSync(dir, { recursive: true })
  const res = new Results(results)
  const sc = reportScenarios(quick)
  const sections: string[] = []
  const titles: Record<Exclude<ScenarioKey, 'tx'>, string> = {
    eth2022: 'Ethereum 2022',
    eth2025: 'Ethereum 2025, 150 KB blocks',
    subnet: 'Ethereum 2025, one attestation subnet',
  }
  const charts: string[] = []
  for (const key of ['eth2022', 'eth2025', 'subnet'] as const) {
    const rs = res.of(key)
    const s = sc[key]
    const files = await scenarioCharts(dir, key, titles[key], rs)
    charts.push(files.latency, files.duplicates, files.bytes)
    const extra =
      key === 'eth2025'
        ? `\n\nShare of blocks reaching 95% of the nodes within 4 s: ${rs
            .map(
              (r) =>
                `${r.strategy} ${num(within(r, 4_000) * 100, 0)}% (per block: ${r.reach95Ms.map((t) => `${num(t, 0)} ms`).join(', ')})`,
            )
            .join('; ')}.`
        : ''
    sections.push(
      `## ${titles[key]}\n\n${s.description}. Floor: (N − 1) × ${num(s.messageBytes)} B = ${bytes((s.nodes - 1) * s.messageBytes)} per message.\n\n${scenarioTable(rs)}${extra}\n\n![latency](${files.latency})\n![duplicates](${files.duplicates})\n![bytes](${files.bytes})`,
    )
  }
  const tx = res.get('tx', 'broker')
  if (tx !== undefined) {
    sections.push(
      `## Client transactions through a broker\n\n${sc.tx.description} (Chop Chop, real ed25519 and BLS signatures; the receivers are the ${num(tx.members)} witness servers, not every node, so its floor is (servers − 1) × 256 B, not the network's).\n\n${scenarioTable([tx])}`,
    )
  }
  const reg = rpRegistrationBytes()
  const setupChart = 'setup-bytes.svg'
  const upkeepChart = 'upkeep-bytes.svg'
  const n22 = sc.eth2022.nodes
  const setupBars = [
    {
      label: 'Ethereum peering (seed 000: 50 × 2,712 B)',
      value: SEED_000.peersPerNode * SEED_000.ethRelationBytes,
    },
    {
      label: 'Ethereum peering, every attempt (÷ 13%)',
      value: (SEED_000.peersPerNode * SEED_000.ethRelationBytes) / SEED_000.completionRate,
    },
    { label: 'RP registration (RP codec)', value: reg.register + reg.registered },
    ...res.of('eth2022').map((r) => ({
      label: `${r.strategy}: measured first ${r.startupMs / 1000} s`,
      value: r.startupBytes / r.nodes,
    })),
  ]
  writeFileSync(
    join(dir, setupChart),
    await renderSvg(
      barsSpec(`Set-up bytes per node (${num(n22)} nodes)`, 'bytes (symlog scale)', setupBars),
    ),
  )
  writeFileSync(
    join(dir, upkeepChart),
    await renderSvg(
      barsSpec(
        `Upkeep bytes per node per hour, idle (${num(n22)} nodes)`,
        'bytes (symlog scale)',
        res.of('eth2022').map((r) => ({ label: r.strategy, value: perHour(r) / r.nodes })),
      ),
    ),
  )
  charts.push(setupChart, upkeepChart)

  const headlineTable = headline(res)
  const missingText =
    missing.length === 0
      ? 'Every planned run finished.'
      : `**Missing runs** did not finish within the report's ${budgetMin}-minute budget on the machine that generated it, so their cells read "not run" (the console output says how far each got):\n\n${missing.map((id) => `- ${id}: ${costOf(id)}.`).join('\n')}`
  const readme = `# Ethereum-scale report

Generated by \`npm run report${quick ? ' -- --quick' : ''}\` (seed ${String(sc.eth2022.seed)}${quick ? ', **quick: small networks, not the real scale**' : ''}). Every figure is computed by the simulator
in that run, except the seed's and the draft's published figures (draft-guzman-multicast-applicability-dcs-00,
seed 000), which are quoted beside ours with the ratio ours / draft. ${missingText}

## Headline

${headlineTable}

## Against the draft

${table(['figure', 'draft (quoted)', 'ours', 'ours / draft'], draftRows(res))}

### Why ours differs: the model

- **Bytes per message** are what every node hands to the network for the message (frames of the real
  wire encodings: gossipsub protobuf RPCs, RP frames, LAN datagrams for multicast), minus the idle
  background measured over the same length of time just before; no TCP/IP, TLS/noise or yamux
  framing is counted. The floor is one payload copy to each other node. The draft's 22.44 MB comes
  from its analytic model of Ethereum's diffusion; ours are simulated flooding and gossipsub (mesh
  D = 8) on a random ${sc.eth2022.degree}-regular graph, so flooding's cost is about N × peers copies, and
  gossip's about N × D, whatever the draft assumed.
- **Set-up**: Ethereum's peering cost is not simulated; it is the draft's 2,712 B per relation
  (seed 000 measured ~3 KB per established peer) times ${SEED_000.peersPerNode} peers per node; failed
  attempts (87% of them, seed 000) cost an unknown share of that, so the row "every attempt at full
  cost" is an upper bound and the row with established relations only a lower bound. The RP side is
  the RP codec's encoded \`register\` (${reg.register} B) and \`registered\` (${reg.registered} B) messages for one
  topic; the transport handshake an RP session also needs (TCP, noise) is not counted, while the
  draft's Ethereum figure includes RLPx's. The measured "set-up bytes / node" columns are what the
  simulator's nodes send in the first half of the warm-up (subscriptions and GRAFTs for gossip,
  registrations, heartbeats and RP hellos for RPs), over an already-connected graph.
- **Upkeep** is the idle traffic measured in the simulator over the second half of the warm-up,
  scaled to an hour: gossipsub heartbeats' control traffic, RP members' 1 s heartbeats and their
  answers, RP backbone hellos. Flooding sends nothing when idle. Ethereum's discovery (discv5),
  libp2p pings, status/metadata requests and peer churn (seed 000: a pool of 50 takes ~20 min to fill)
  are not simulated, so gossip's upkeep here is a lower bound of Ethereum's.
- **Latency** is the time from publish to each node's first copy: propagation between regions and
  providers (placement of seed 000: half the nodes in 7 providers' data centres), serialization at
  each node's uplink (2022: 1 Gbit/s in data centres, 100 Mbit/s elsewhere; 2025: EIP-7870's
  15–50 Mbit/s at every node, spread evenly), and validation before relaying (2 ms + 0.3 ms per KB).
  RPs sit in data centres with 1 Gbit/s uplinks. Time to a majority is when more than N/2 nodes (the
  origin included) hold the message, seed 000's consensus rule.
- **RP + IP multicast** counts a LAN datagram once per transmission (the site's network
  replicates it to every member that joined), so it can go below the unicast floor; members the
  multicast does not reach are served by unicast.
- **Time to a majority**: an RP delivery takes at least three hops (member → its RP → backbone →
  the members' RPs → members) but RPs sit in data centres with 1 Gbit/s uplinks; flooding and gossip
  take the fastest of many random paths, each hop paying the relaying node's validation and uplink.
  So the comparison turns on message size against uplink speed: a 256 B message costs next to
  nothing to serialize, a 150 KB block to 8 mesh peers over 15–50 Mbit/s costs tens to hundreds of
  ms per hop. The draft's "≥ 4×" does not say which size or uplinks it assumes.
- **Upkeep, RP against gossip**: RP members send a heartbeat every second (IGMP-like liveness, the
  RP answers each) and RPs exchange hellos; the simulated gossip nodes, idle with stable meshes,
  send only heartbeat-driven control (no IHAVE without messages). The draft's 30× compares with
  Ethereum's whole relation upkeep (discovery, pings, replacing dropped peers), which the simulator
  does not have.
- **Scale of this run**: ${Object.values(sc)
    .map(
      (s) =>
        `${s.name} ${num(s.nodes)} nodes × ${s.degree} peers, ${s.messages} × ${bytes(s.messageBytes)}`,
    )
    .join('; ')}.

${sections.join('\n\n')}

## Set-up and upkeep

![set-up](${setupChart})
![upkeep](${upkeepChart})
`
  writeFileSync(join(dir, 'README.md'), readme)
  if (!quick && resolve(dir) === resolve(HERE)) {
    const link = relative(dirname(PROJECT_README), dir)
    updateProjectReadme(
      `${BEGIN}\n${headlineTable}\n\nFrom [${link}/README.md](${link}/README.md) (\`npm run report\`), with the comparison against the draft's figures and the charts: ${charts
        .map((c) => `[${c.replace('.svg', '')}](${link}/${c})`)
        .join(', ')}.\n${END}`,
    )
  }
}

/** Replaces the headline section of the project README (between its markers). */
function updateProjectReadme(section: string): void {
  const text = readFileSync(PROJECT_README, 'utf8')
  const a = text.indexOf(BEGIN)
  const b = text.indexOf(END)
  if (a < 0 || b < 0) return
  writeFileSync(PROJECT_README, text.slice(0, a) + section + text.slice(b + END.length))
}
