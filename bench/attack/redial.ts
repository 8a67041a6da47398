/**
 * What a denied peer's redials cost the node that refuses them (issue 11): a victim gossip
 * node in this process, an attacker in its own (test/support/gossip-attacker-main.ts) that
 * gets itself cut off at once (a declared 100 MB frame) and then redials every 50 ms for the
 * rest of its run, as the attack bench's attackers do. The victim refuses the redials either
 * inside libp2p's upgrade (the deny gater alone, libp2p's earliest hook) or at its TCP
 * listener before libp2p builds anything for the socket (`refusingTcp`), alternating run by
 * run in this same process; with no handshake for a denied address (only refusals), and with
 * the gater's default throttle (a handshake every 2 s from that address).
 *
 * Figures per variant (median over runs): dials refused and handshakes given after the
 * cut-off; the victim process's CPU (every thread) beyond its idle rate over that time, per
 * refused dial and per second; the attacker process's CPU per redial (on this machine its
 * cores are the victim's too); and the victim's main-thread CPU through each handshake it
 * gives a denied peer (from letting the dial through to refusing it after the handshake: the
 * attacker dials one at a time, so no other dial is in between).
 *
 * `npm run bench -- attack redial [--ms N] [--runs N]`
 */
import { distribution } from '../../src/common/distribution.ts'
import {
  attackBedNode,
  type GateDecision,
  gossipBenchRows,
} from '../../test/support/gossip-attacks.ts'
import { mainThreadClock } from '../../test/support/thread-clock.ts'
import { fmt, numberArg, printTable, writeResults } from '../report.ts'
import { spawnAttacker } from './attacker-process.ts'

/** How long each attacker runs (cut off in its first ~100 ms, redialling after), in ms. */
const RUN_MS = numberArg('--ms', 5000)
const RUNS = numberArg('--runs', 3)
/** The victim's idle CPU rate is taken over this long before each attack, in ms. */
const IDLE_MS = 1000
/** CPU is counted from this long after the cut-off (the disconnection's own work is not a redial's). */
const AFTER_CUT_MS = 100
/** How long the victim may take to cut the attacker off before the run fails. */
const CUT_OFF_TIMEOUT_MS = 10_000
const T = 'blocks'
const STREAM_ATTACK = gossipBenchRows(T).findIndex((a) => a.stream)

interface Variant {
  name: string
  refuseAtListener: boolean
  /** The gater's handshakes per second for a denied address (near 0: none in a run). */
  handshakesPerSecond: number | undefined
}
const VARIANTS: Variant[] = [
  {
    name: "inside libp2p's upgrade, no handshakes",
    refuseAtListener: false,
    handshakesPerSecond: 1e-6,
  },
  { name: 'at the TCP listener, no handshakes', refuseAtListener: true, handshakesPerSecond: 1e-6 },
  {
    name: "inside libp2p's upgrade, default throttle",
    refuseAtListener: false,
    handshakesPerSecond: undefined,
  },
  {
    name: 'at the TCP listener, default throttle',
    refuseAtListener: true,
    handshakesPerSecond: undefined,
  },
]

interface RunFigures {
  refused: number
  handshakes: number
  /** Victim main-thread CPU through each handshake, in ms. */
  handshakeCpuMs: number[]
  windowMs: number
  victimExtraCpuMs: number
  attackerRedials: number
  attackerCpuAfterCutOffMs: number
}

const thread = mainThreadClock()
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function run(v: Variant): Promise<RunFigures> {
  let counting = false
  const counts = new Map<GateDecision, number>()
  const handshakeCpuMs: number[] = []
  let letThrough: number | undefined
  const victim = await attackBedNode(
    T,
    new Map(),
    false,
    v.handshakesPerSecond === undefined ? {} : { deniedHandshakesPerSecond: v.handshakesPerSecond },
    (d) => {
      if (!counting) return
      counts.set(d, (counts.get(d) ?? 0) + 1)
      if (d === 'let through to encryption') letThrough = thread().cpuMs
      if (d === 'refused after handshake' && letThrough !== undefined) {
        handshakeCpuMs.push(thread().cpuMs - letThrough)
        letThrough = undefined
      }
    },
    v.refuseAtListener,
  )
  let cut: Promise<void> | undefined
  let from: { cpu: NodeJS.CpuUsage; at: number } | undefined
  const cutOff = new Promise<void>((resolve) => {
    victim.services.dissemination.core.on('rejected', ({ reason }) => {
      if (reason !== 'disconnected' || cut !== undefined) return
      cut = sleep(AFTER_CUT_MS).then(() => {
        from = { cpu: process.cpuUsage(), at: performance.now() }
        counting = true
      })
      resolve()
    })
  })
  const x = await spawnAttacker(victim.getMultiaddrs()[0].toString(), STREAM_ATTACK, RUN_MS, T)
  await sleep(IDLE_MS / 2)
  const idleFrom = process.cpuUsage()
  const idleAt = performance.now()
  await sleep(IDLE_MS)
  const idleRate = cpuMs(process.cpuUsage(idleFrom)) / (performance.now() - idleAt)
  const running = x.attack()
  const outcome = await Promise.race([
    cutOff.then(() => 'cut off'),
    running.then(
      () => 'the attacker ended its run',
      (err: unknown) => String(err),
    ),
    sleep(CUT_OFF_TIMEOUT_MS).then(() => `no cut-off within ${CUT_OFF_TIMEOUT_MS} ms`),
  ])
  if (outcome !== 'cut off') throw new Error(`the victim did not cut the attacker off: ${outcome}`)
  await cut
  const attack = await running
  counting = false
  const windowMs = performance.now() - from!.at
  const extra = cpuMs(process.cpuUsage(from!.cpu)) - idleRate * windowMs
  await victim.stop()
  return {
    refused:
      (counts.get('refused at the listener') ?? 0) + (counts.get('refused before encryption') ?? 0),
    handshakes: counts.get('let through to encryption') ?? 0,
    handshakeCpuMs,
    windowMs,
    victimExtraCpuMs: extra,
    attackerRedials: attack.redials,
    attackerCpuAfterCutOffMs: attack.processCpuAfterCutOffMs,
  }
}

const runs = new Map<Variant, RunFigures[]>(VARIANTS.map((v) => [v, []]))
for (let r = 0; r < RUNS; r++) {
  for (const v of VARIANTS) runs.get(v)!.push(await run(v))
  console.log(`done: run ${r + 1} of ${RUNS}`)
}

const median = (xs: number[]) => distribution(xs).p50
const figures = VARIANTS.map((v) => {
  const rs = runs.get(v)!
  return {
    variant: v.name,
    refusedAtListener: v.refuseAtListener,
    deniedHandshakesPerSecond: v.handshakesPerSecond ?? 0.5,
    runs: rs.length,
    refusedDials: median(rs.map((r) => r.refused)),
    handshakes: median(rs.map((r) => r.handshakes)),
    victimExtraCpuMsPerDial: median(
      rs.map((r) => r.victimExtraCpuMs / Math.max(1, r.refused + r.handshakes)),
    ),
    victimExtraCpuMsPerS: median(rs.map((r) => (r.victimExtraCpuMs * 1000) / r.windowMs)),
    attackerRedials: median(rs.map((r) => r.attackerRedials)),
    attackerCpuMsPerRedial: median(
      rs.map((r) => r.attackerCpuAfterCutOffMs / Math.max(1, r.attackerRedials)),
    ),
    victimThreadCpuMsPerHandshake: (() => {
      const all = rs.flatMap((r) => r.handshakeCpuMs)
      return all.length === 0 ? null : median(all)
    })(),
    perRun: rs,
  }
})
printTable(
  `a denied peer's redials (every 50 ms after its cut-off, ${RUN_MS} ms runs), median of ${RUNS} runs: what they cost the victim, by where it refuses them`,
  figures.map((f) => ({
    'refused where, handshakes': f.variant,
    'refused dials': f.refusedDials,
    handshakes: f.handshakes,
    'victim CPU ms per dial': fmt(f.victimExtraCpuMsPerDial, 2),
    'victim CPU ms/s': fmt(f.victimExtraCpuMsPerS, 1),
    'victim thread CPU ms per handshake':
      f.victimThreadCpuMsPerHandshake === null ? 'n/a' : fmt(f.victimThreadCpuMsPerHandshake, 1),
    'attacker CPU ms per redial': fmt(f.attackerCpuMsPerRedial, 2),
  })),
)
const ratio = figures[0].victimExtraCpuMsPerDial / figures[1].victimExtraCpuMsPerDial
console.log(`\nvictim CPU per refused dial, upgrade over listener: ${fmt(ratio, 2)}×`)
writeResults('attack-redial', {
  config: { runMs: RUN_MS, runs: RUNS, afterCutMs: AFTER_CUT_MS, idleMs: IDLE_MS },
  variants: figures,
  victimCpuPerRefusedDialUpgradeOverListener: ratio,
})
