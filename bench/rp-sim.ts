/**
 * Replication points on Ethereum-like placement (seed 000), in the deterministic simulator:
 *  1. steady state: 10,000 members on the provider-clustered topology, 256-byte consensus
 *     messages, RP backbones of 25 and 50 RPs (one or two per provider region and per
 *     region's independent hosts), on the shared tree (minimum total RTT) and on source
 *     trees (shortest paths from the publisher's RP), against flooding and optimized gossip on a 50-peer random
 *     graph over the same placement: bytes per message (the floor is (N − 1) × 256 B of
 *     payload), duplicates per member, latency p50/p99 against the direct-path bound,
 *     messages lost;
 *     With `multicast` (issue 10), each RP sends a message once into its site's LAN for the
 *     members multicast reaches: transmissions per message per site at the RP, all hosts'
 *     bytes (LAN datagrams included) against the floor; and at 5% datagram loss per member
 *     copy, messages lost, duplicates and the repair latency (from when a lost copy would
 *     have arrived to when the member delivered the message);
 *  2. an RP crash in the middle of a stream (its connections reset, or a silent crash found
 *     by missed heartbeats): time until every live member has every message again, and
 *     messages lost.
 *
 * Bytes per message are the traffic of the publishing window minus the background (hellos,
 * heartbeats, gossip heartbeats) measured over an idle window of the same length just
 * before; the totals with background are printed too.
 *
 * Usage: npm run bench -- rp-sim [--members N] [--messages M] [--no-baselines] [--multicast-only]
 * [--no-72k | --only-72k] [--messages-72k M] [--warmup-72k MS]
 * (`--no-baselines` skips flooding and gossip, `--multicast-only` the unicast RP rows too;
 * the 72,000-member row runs after the 5% loss rows unless `--no-72k`).
 */

import { distribution } from '../src/common/distribution.ts'
import { type MessageId, messageIdKey } from '../src/common/message-id.ts'
import { decodeRpMessage } from '../src/rp/codec.ts'
import type { RpMember } from '../src/rp/member.ts'
import {
  DatagramType,
  DEFAULT_DATAGRAM_LIMITS,
  decodeDatagram,
} from '../src/rp/multicast/datagram-codec.ts'
import type { ReplicationPoint } from '../src/rp/replication-point.ts'
import type { DeliveryTracker } from '../src/sim/metrics.ts'
import type { SimCore, Simulation } from '../src/sim/network.ts'
import { SCENARIOS } from '../src/sim/presets.ts'
import { Prng } from '../src/sim/prng.ts'
import { type RpNetwork, rpSimStrategy } from '../src/sim/rp-strategy.ts'
import {
  type BuiltNetwork,
  SCENARIO_TOPIC,
  type Scenario,
  type SimStrategy,
  startScenario,
} from '../src/sim/scenario.ts'
import { findStrategy } from '../src/sim/strategies.ts'
import { numberArg, printTable, type Row, writeResults } from './report.ts'

const MEMBERS = numberArg('--members', 10_000)
const MESSAGES = numberArg('--messages', 10)
const MULTICAST_ONLY = process.argv.includes('--multicast-only')
// Only the 72,000-member row (it takes minutes).
const ONLY_72K = process.argv.includes('--only-72k')
const BASELINES = !MULTICAST_ONLY && !process.argv.includes('--no-baselines')
const BYTES = 256
const WARMUP_MS = 6_000
const INTERVAL_MS = 200
const DRAIN_MS = 4_000

const scenario: Scenario = {
  name: 'rp-sim',
  description: `${MEMBERS} members, provider-clustered, ${BYTES}-byte consensus messages`,
  nodes: MEMBERS,
  topology: 'provider-clustered',
  degree: 50,
  latencyMs: 0,
  bandwidth: 'placement',
  loss: 0,
  messages: MESSAGES,
  messageBytes: BYTES,
  class: 'consensus',
  intervalMs: INTERVAL_MS,
  warmupMs: WARMUP_MS,
  drainMs: DRAIN_MS,
  seed: 1,
}

interface Run {
  sim: Simulation<SimCore>
  network: BuiltNetwork
  tracker: DeliveryTracker<SimCore>
  published: Array<{ id: MessageId; origin: number; at: number }>
  pending: Promise<void>[]
}

function setup(strategy: SimStrategy, disconnectDetectionMs = 0, sc = scenario): Run {
  return {
    ...startScenario(sc, strategy, { disconnectDetectionMs }),
    published: [],
    pending: [],
  }
}

/** Schedules `count` publishes from random members every `interval` ms from `start`. */
function schedule(run: Run, start: number, count: number, interval: number, seed: string) {
  const pick = new Prng(seed)
  for (let m = 0; m < count; m++) {
    const at = start + m * interval
    run.sim.at(at, () => {
      const origin = run.network.members[pick.int(run.network.members.length)]
      const data = new Uint8Array(BYTES)
      new DataView(data.buffer).setUint32(0, m)
      new DataView(data.buffer).setUint32(4, pick.nextU32())
      run.pending.push(
        run.sim
          .core(origin)
          .publish(SCENARIO_TOPIC, data, { class: 'consensus' })
          .then((r) => {
            run.published.push({ id: r.id, origin, at })
            run.tracker.published(r.id, origin, at, run.network.members)
          }),
      )
    })
  }
}

/** Direct one-way latency from each message's origin to each member: no overlay beats it. */
function boundLatencies(run: Run): number[] {
  const out: number[] = []
  for (const p of run.published) {
    for (const m of run.network.members)
      if (m !== p.origin) out.push(run.network.latency(p.origin, m))
  }
  return out
}

/** (member, message) pairs that never arrived, over live members. */
function lostPairs(run: Run): number {
  let lost = 0
  for (const p of run.published) {
    for (const m of run.network.members) {
      if (m === p.origin || !run.sim.isUp(m)) continue
      if (Number.isNaN(run.tracker.arrivalTime(p.id, m))) lost++
    }
  }
  return lost
}

/** The message id inside a data datagram of one fragment (an RP's multicast Deliver). */
function datagramMessage(bytes: Uint8Array): string | undefined {
  const d = decodeDatagram(bytes, DEFAULT_DATAGRAM_LIMITS)
  if (d.type !== DatagramType.data || d.fragCount !== 1) return undefined
  const m = decodeRpMessage(d.payload)
  return m.type === 'deliver' ? messageIdKey(m.id) : undefined
}

/** Each RP's data datagrams multicast so far. */
function lanDatagrams(run: Run): number[] {
  const net = run.network as Partial<RpNetwork>
  const out: number[] = []
  if (net.firstRp === undefined || net.lan === undefined) return out
  for (let r = net.firstRp; r < run.network.graph.n; r++) {
    out.push((run.sim.core(r) as ReplicationPoint).lanStats()?.dataDatagrams ?? 0)
  }
  return out
}

async function steady(name: string, strategy: SimStrategy, sc = scenario): Promise<Row> {
  const wall = performance.now()
  const run = setup(strategy, 0, sc)
  const lan = (run.network as Partial<RpNetwork>).lan
  // Every host's bytes: the unicast frames and the LAN datagrams.
  const bytesSent = () => run.sim.traffic.bytesSent + (lan?.counters.bytes ?? 0)
  // Where a member's copy was lost: when it would have arrived, per (message, member).
  const lostCopies = new Map<string, { to: number; at: number }>()
  lan?.onDrop((_from, to, datagram, at) => {
    const key = datagramMessage(datagram)
    if (key !== undefined && !lostCopies.has(`${key} ${to}`)) {
      lostCopies.set(`${key} ${to}`, { to, at })
    }
  })
  // The background (heartbeats, hellos) is periodic, 1 s: windows of whole seconds each
  // hold exactly their share of it, so the idle half-window scales to the publishing window
  // without a partial period's error (at 72,000 members one period is megabytes).
  const windowMs = Math.ceil((sc.messages * sc.intervalMs + sc.drainMs) / 2000) * 2000
  const idleStart = sc.warmupMs - windowMs / 2
  run.sim.run({ until: idleStart })
  const b0 = bytesSent()
  run.sim.run({ until: sc.warmupMs })
  const idleBytes = bytesSent() - b0
  const idleMs = sc.warmupMs - idleStart
  schedule(run, sc.warmupMs, sc.messages, sc.intervalMs, 'publishers')
  const b1 = bytesSent()
  const lan0 = lanDatagrams(run)
  const end = sc.warmupMs + windowMs
  run.sim.run({ until: end })
  await Promise.all(run.pending)
  const windowBytes = bytesSent() - b1
  const background = (idleBytes / idleMs) * (end - sc.warmupMs)
  const perMsg = (windowBytes - background) / sc.messages
  const floor = (sc.nodes - 1) * BYTES
  const s = run.tracker.summary()
  const bound = distribution(boundLatencies(run))
  const rps = (run.network as Partial<RpNetwork>).firstRp
  // Transmissions per message per site, at the RPs that multicast at all.
  const perRp = lanDatagrams(run)
    .map((n, r) => (n - lan0[r]) / sc.messages)
    .filter((x) => x > 0)
  const repair: number[] = []
  const byKey = new Map(run.published.map((p) => [messageIdKey(p.id), p]))
  for (const [k, c] of lostCopies) {
    const p = byKey.get(k.split(' ')[0])
    if (p === undefined || p.origin === c.to) continue
    const t = run.tracker.arrivalTime(p.id, c.to)
    if (!Number.isNaN(t)) repair.push(t - c.at)
  }
  const rd = distribution(repair)
  return {
    strategy: name,
    members: sc.nodes,
    RPs: rps === undefined ? '-' : run.network.graph.n - rps,
    delivered: `${(s.deliveryRatio * 100).toFixed(2)}%`,
    lost: lostPairs(run),
    'dups/member/msg': s.duplicates.mean,
    'max dups': s.duplicates.max,
    'LAN tx/msg/site': lan === undefined ? '-' : perRp.length === 0 ? 0 : Math.max(...perRp),
    'multicast sites': lan === undefined ? '-' : perRp.length,
    'lost copies': lan === undefined ? '-' : lostCopies.size,
    'repair p50 ms': repair.length === 0 ? '-' : rd.p50,
    'repair p99 ms': repair.length === 0 ? '-' : rd.p99,
    'KB/msg': perMsg / 1024,
    'x floor': perMsg / floor,
    'KB/msg incl. bg': windowBytes / sc.messages / 1024,
    'bg KB/s': ((idleBytes / idleMs) * 1000) / 1024,
    'p50 ms': s.latencyMs.p50,
    'p99 ms': s.latencyMs.p99,
    'bound p50': bound.p50,
    'bound p99': bound.p99,
    'p50 / bound': s.latencyMs.p50 / bound.p50,
    'wall s': (performance.now() - wall) / 1000,
  }
}

/**
 * Crashes the RP with the most members 1 s into a stream of messages (every 50 ms for 4 s):
 * how long until its members are registered elsewhere, how many (member, message) pairs
 * had to be repaired (arrived over a second late) and when the last of them arrived.
 */
async function crash(
  rpsPerSite: number,
  silent: boolean,
  tree: 'shared' | 'source',
  multicast = false,
): Promise<Row> {
  const wall = performance.now()
  const strategy = rpSimStrategy({ rpsPerSite, rp: { tree }, multicast })
  const run = setup(strategy, silent ? Number.POSITIVE_INFINITY : 0)
  const net = run.network as RpNetwork
  run.sim.run({ until: WARMUP_MS })
  let victim = net.firstRp
  const membersOf = (r: number) => (run.sim.core(r) as ReplicationPoint).view().members
  for (let r = net.firstRp; r < net.graph.n; r++) if (membersOf(r) > membersOf(victim)) victim = r
  const victimName = run.sim.nameOf(victim)
  const orphans = net.members.filter((m) => (run.sim.core(m) as RpMember).rp === victimName)
  const crashAt = WARMUP_MS + 1_000
  const count = 80
  const interval = 50
  schedule(run, WARMUP_MS, count, interval, 'crash-publishers')
  run.sim.at(crashAt, () => run.sim.crash(victim))
  // Failover is done when every orphan is registered with another RP.
  let failoverAt = Number.NaN
  const poll = () => {
    const done = orphans.every((m) => {
      const core = run.sim.core(m) as RpMember
      return core.isRegistered && core.rp !== victimName
    })
    if (done) failoverAt = run.sim.now()
    else run.sim.after(5, poll)
  }
  run.sim.at(crashAt, poll)
  const end = WARMUP_MS + count * interval + 10_000
  run.sim.run({ until: end })
  await Promise.all(run.pending)
  // Pairs that arrived late (more than a second after the publish) were repaired; the repair
  // is over when the last of them arrived.
  let lastRepair = crashAt
  let late = 0
  for (const p of run.published) {
    for (const m of net.members) {
      if (m === p.origin) continue
      const t = run.tracker.arrivalTime(p.id, m)
      if (Number.isNaN(t) || t <= p.at + 1_000) continue
      late++
      lastRepair = Math.max(lastRepair, t)
    }
  }
  const s = run.tracker.summary()
  return {
    tree,
    multicast: multicast ? 'yes' : 'no',
    RPs: net.graph.n - net.firstRp,
    crash: silent ? 'silent (heartbeats)' : 'connection reset',
    orphans: orphans.length,
    messages: run.published.length,
    'failover ms': failoverAt - crashAt,
    'repaired pairs': late,
    'repair done ms': lastRepair - crashAt,
    lost: lostPairs(run),
    'p50 ms': s.latencyMs.p50,
    'p99 ms': s.latencyMs.p99,
    'max ms': s.latencyMs.max,
    'dups/member/msg': s.duplicates.mean,
    'wall s': (performance.now() - wall) / 1000,
  }
}

console.log(
  `${MEMBERS} members on the provider-clustered placement, ${MESSAGES} × ${BYTES} B consensus messages every ${INTERVAL_MS} ms`,
)
console.log(
  `floor: (N - 1) × ${BYTES} B = ${(((MEMBERS - 1) * BYTES) / 1024).toFixed(1)} KB of payload per message`,
)
const steadyRows: Row[] = []
const baselines = BASELINES && !ONLY_72K ? ['flood', 'gossip-optimized'] : []
for (const name of baselines) {
  const s = findStrategy(name)
  if (s === undefined) continue
  steadyRows.push(await steady(name, s))
}
for (const tree of ONLY_72K ? [] : (['shared', 'source'] as const)) {
  for (const rpsPerSite of [1, 2]) {
    if (!MULTICAST_ONLY) {
      steadyRows.push(await steady(`rp ${tree} tree`, rpSimStrategy({ rpsPerSite, rp: { tree } })))
    }
    steadyRows.push(
      await steady(
        `rp ${tree} tree + multicast`,
        rpSimStrategy({ rpsPerSite, rp: { tree }, multicast: true }),
      ),
    )
  }
}
if (!ONLY_72K)
  printTable('steady state: one 256-byte consensus message to every member', steadyRows)

// 5% of the members' datagram copies lost on the LANs: repaired over the RP sessions.
const lossRows: Row[] = []
for (const tree of ONLY_72K ? [] : (['shared', 'source'] as const)) {
  lossRows.push(
    await steady(
      `rp ${tree} tree + multicast, 5% loss`,
      rpSimStrategy({ rp: { tree }, multicast: true, lanLoss: 0.05 }),
    ),
  )
}
if (!ONLY_72K) printTable('multicast with 5% datagram loss per member copy', lossRows)

// Ethereum's scale (the 'ethereum-72k' placement): 72,000 members, source trees, multicast.
const bigRows: Row[] = []
if (!process.argv.includes('--no-72k')) {
  const preset = SCENARIOS['ethereum-72k']
  const big: Scenario = {
    ...scenario,
    name: preset.name,
    description: `${preset.nodes} members, ${preset.topology}, ${BYTES}-byte consensus messages`,
    nodes: preset.nodes,
    topology: preset.topology,
    seed: preset.seed,
    messages: numberArg('--messages-72k', 5),
    // 72,000 registrations, probes and key announcements take longer to settle than 10,000:
    // the background is measured once they have.
    warmupMs: numberArg('--warmup-72k', 20_000),
  }
  bigRows.push(
    await steady(
      'rp source tree + multicast',
      rpSimStrategy({ rp: { tree: 'source' }, multicast: true }),
      big,
    ),
  )
  printTable(
    `${preset.nodes} members (ethereum-72k placement), ${big.messages} messages: floor ${(((preset.nodes - 1) * BYTES) / 1024).toFixed(1)} KB per message`,
    bigRows,
  )
}

const crashRows: Row[] = []
for (const tree of ONLY_72K ? [] : (['shared', 'source'] as const)) {
  for (const perSite of [1, 2]) {
    for (const silent of [false, true]) {
      // Without baselines, the unicast crash rows of the source tree only (beside multicast's).
      if (BASELINES || (!MULTICAST_ONLY && tree === 'source')) {
        crashRows.push(await crash(perSite, silent, tree))
      }
    }
  }
}
for (const perSite of ONLY_72K ? [] : [1, 2]) {
  for (const silent of [false, true]) crashRows.push(await crash(perSite, silent, 'source', true))
}
if (!ONLY_72K) {
  printTable('RP crash 1 s into a stream of 80 messages (20/s): the most loaded RP dies', crashRows)
}
// --only-72k writes apart, so it does not replace a full run's figures.
writeResults(ONLY_72K ? 'rp-sim-72k' : 'rp-sim', {
  scenario,
  steady: steadyRows,
  multicastLoss: lossRows,
  ethereum72k: bigRows,
  crash: crashRows,
})
