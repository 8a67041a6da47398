/**
 * Gossip under attack (issue 11): honest A publishes 100 msg/s of 1 KB through victim B to
 * honest C, all real libp2p nodes on loopback; an attacker connected to B speaks
 * `/meshsub/1.2.0` with hand-built frames. Three processes, as on three hosts sharing this
 * machine's cores: the attacker (test/support/gossip-attacker-main.ts), victim B
 * (victim-main.ts), and A with C in this one (so one monotonic clock times A → C). For each attack: honest latency (and how many
 * samples the percentiles stand on) and throughput before and during, when the attacker was
 * penalised and whether it was disconnected, the longest time B's router spent on one of its
 * frames (or on the first bytes of one, checked as it arrives), where the attack's extra CPU
 * time went (B's router, or libp2p below it: TCP, noise, yamux, the handshakes of redials the
 * gater refuses), and the victim process's heap after GC before and after (and the attack's
 * part of its growth: the growth over the attack less that over the honest window before it,
 * as honest traffic alone fills the seen cache for `seenTtlMs`).
 *
 * The one-copy attacks (an attacker that negotiates the extension as our nodes do, then floods
 * its messages and fields) run against a second victim process, with honest A and C, that
 * speak one-copy; the other attacks' setup is stock's. A last row, the control, is no attack:
 * a peer that joins and behaves (`newPeerControl`), to show what one new connection alone does
 * to the honest p99; it is left out of the targets.
 *
 * Router time is the sans-IO core's own work on one frame, live and replayed alike; the
 * driver work its sends and disconnects do synchronously inside the frame (libp2p writes,
 * connection aborts) is a column of its own (see {@link AttackBed}).
 *
 * A second table lays the slow honest messages (over twice the p99 before) against the
 * victim's timeline (slow-samples.ts): whether they were late into the victim or out of it,
 * its main thread running or waiting for a core meanwhile, dials and GC near them, and the
 * honest process's own main thread waiting for a core or in GC over their flight; and what
 * the attack cost the victim's CPU from its connection to the cut-off and after it (redials:
 * handshakes, and dials refused before encryption). `--trace` prints each slow message.
 * A third says where the machine's cores went in each window (/proc): honest A and C, the
 * victim, the attacker (to its cut-off and after: its redials), every other process, idle.
 *
 * `npm run bench -- attack gossip [--before-ms N] [--attack-ms N] [--rate N] [--only NAME] [--trace] [--no-redial]`
 */

import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { PerformanceObserver } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { distribution } from '../../src/common/distribution.ts'
import { MESHSUB_1_2, MESHSUB_1_3 } from '../../src/gossip/protocol-ids.ts'
import { GossipRouter } from '../../src/gossip/router.ts'
import { encodeRpc } from '../../src/gossip/rpc-codec.ts'
import { ManualEnv, subscribeFrame } from '../../test/gossip/harness.ts'
import {
  attackBedNode,
  type GossipAttack,
  type GossipNode,
  gossipBenchRows,
  HonestPair,
  honestSeq,
} from '../../test/support/gossip-attacks.ts'
import { mainThreadClock } from '../../test/support/thread-clock.ts'
import { waitFor } from '../../test/support/wait.ts'
import { argValue, fmt, numberArg, printTable, type Row, writeResults } from '../report.ts'
import { spawnAttacker } from './attacker-process.ts'
import { cpuBetween, readCpu } from './proc-cpu.ts'
import { type HonestDelivery, layAgainst, type SlowSampleFigures } from './slow-samples.ts'
import type { VictimReport, VictimWindow } from './victim-main.ts'

/** Runs only the attacks whose name contains this. */
const ONLY = argValue('--only')
/** Prints each slow honest message laid against the victim's timeline. */
const TRACE = process.argv.includes('--trace')
/**
 * A diagnosis, not the bench: the attacker stops at its first disconnection and idles to the
 * end of the window instead of redialling (what its redials cost the machine, by difference).
 */
const NO_REDIAL = process.argv.includes('--no-redial')
const BEFORE_MS = numberArg('--before-ms', 6000)
const ATTACK_MS = numberArg('--attack-ms', 6000)
// 100 msg/s: ~600 samples per window, so p99 is the 6th-worst sample, not the 2nd.
const RATE = numberArg('--rate', 100)
const T = 'blocks'
const BYTES = 1024

const here = dirname(fileURLToPath(import.meta.url))
const VICTIM = join(here, 'victim-main.ts')

/** Victim B in its own process, asked one request at a time (see victim-main.ts). */
class Victim {
  readonly addr: string
  readonly peerId: string
  /** The victim process's id (for its CPU time in /proc). */
  readonly pid: number | undefined
  private readonly stdin: NodeJS.WritableStream
  private readonly lines: AsyncIterator<string>

  private constructor(
    addr: string,
    peerId: string,
    pid: number | undefined,
    stdin: NodeJS.WritableStream,
    lines: AsyncIterator<string>,
  ) {
    this.addr = addr
    this.peerId = peerId
    this.pid = pid
    this.stdin = stdin
    this.lines = lines
  }

  static async start(topic: string, oneCopy: boolean): Promise<Victim> {
    const child = spawn(process.execPath, [VICTIM, topic, oneCopy ? 'one-copy' : 'stock'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
    const first = await lines.next()
    if (first.done) throw new Error('the victim process exited before it started')
    const { addr, peerId } = JSON.parse(first.value) as { addr: string; peerId: string }
    return new Victim(addr, peerId, child.pid, child.stdin, lines)
  }

  async ask<T>(cmd: string, args: { key?: string; keys?: string[] } = {}): Promise<T> {
    this.stdin.write(`${JSON.stringify({ cmd, ...args })}\n`)
    const line = await this.lines.next()
    if (line.done) throw new Error(`the victim process exited before answering ${cmd}`)
    return (JSON.parse(line.value) as { reply: T }).reply
  }
}

function percentiles(ms: number[]): { p50: number; p99: number } {
  if (ms.length === 0) return { p50: Number.NaN, p99: Number.NaN }
  const { p50, p99 } = distribution(ms)
  return { p50, p99 }
}

/** A hand-driven Env whose sends go nowhere (the frames' cost to the network is not measured). */
class QuietEnv extends ManualEnv {
  override send(): void {}
}

const SANS_IO_RUNS = 15

/** A slow sample this long after the disconnect still counts as the attack frames' (queued work). */
const CUT_OFF_SPILL_MS = 20
/** A slow sample this close to a refused redial (its handshake just before) counts as the redial's. */
const REDIAL_WINDOW_MS = 20

/** One run of `attack` against a fresh sans-IO victim: the wall time of each attacker frame, in ms. */
function sansIoFrameTimes(attack: GossipAttack): number[] {
  const env = new QuietEnv()
  const oneCopy = attack.oneCopy !== undefined
  const router = new GossipRouter(env, { signaturePolicy: 'StrictNoSign', oneCopy })
  router.start()
  for (const p of ['p0', 'p1']) router.peerConnected(p, { protocol: MESHSUB_1_2 })
  router.peerConnected('x', { protocol: oneCopy ? MESHSUB_1_3 : MESHSUB_1_2 })
  for (const p of ['p0', 'p1']) router.receive(p, subscribeFrame(T))
  // A one-copy attacker negotiates the extension first (not timed).
  for (const f of attack.oneCopy ?? []) router.receive('x', f)
  router.subscribe(T)
  const times: number[] = []
  let honest = 0
  for (let t = 0; t < 2000 && router.getPeers().includes('x'); t += 1000 / attack.rate) {
    if (t >= honest * 50) {
      const data = new Uint8Array(BYTES)
      new DataView(data.buffer).setUint32(0, honest++)
      router.receive('p0', encodeRpc({ subscriptions: [], messages: [{ topic: T, data }] }))
    }
    const frame = attack.next()
    const t0 = performance.now()
    router.receive('x', frame)
    times.push(performance.now() - t0)
    env.advance(1000 / attack.rate)
  }
  router.stop()
  return times
}

/** No sans-IO replay for stream attacks, the control, nor for rows left out by `--only`. */
function skipSansIo(a: GossipAttack): boolean {
  return a.stream === true || a.control === true || (ONLY !== undefined && !a.name.includes(ONLY))
}

/**
 * The router's own work per attacker frame, away from the network and from libp2p: fresh
 * victim routers (sans-IO, virtual time) take each attack's frames at its rate for up to two
 * virtual seconds (or until they disconnect the attacker) beside honest traffic, in
 * {@link SANS_IO_RUNS} runs. The runs are deterministic, so the n-th frame does the same work
 * in each: its cost is taken as its least time over the runs (the machine's other load only
 * ever adds), and the figure is the costliest frame. Index by attack; null for stream attacks.
 */
function sansIoCostliestFrameMs(): (number | null)[] {
  const runs: number[][][] = []
  for (let run = 0; run < SANS_IO_RUNS; run++) {
    runs.push(gossipBenchRows(T).map((a) => (skipSansIo(a) ? [] : sansIoFrameTimes(a))))
  }
  return gossipBenchRows(T).map((a, i) => {
    if (skipSansIo(a)) return null
    const frames = Math.min(...runs.map((r) => r[i].length))
    let costliest = 0
    for (let n = 0; n < frames; n++) {
      costliest = Math.max(costliest, Math.min(...runs.map((r) => r[i][n])))
    }
    return costliest
  })
}

interface AttackFigures {
  attack: string
  /** The control row (a peer that joins and behaves): not counted in the targets. */
  control: boolean
  attackRateFramesPerS: number
  /** Honest latency samples the before percentiles stand on. */
  beforeSamples: number
  beforeP50Ms: number
  beforeP99Ms: number
  /** Honest latency samples the during percentiles stand on. */
  duringSamples: number
  beforeThroughputMsgPerS: number
  duringP50Ms: number
  duringP99Ms: number
  duringThroughputMsgPerS: number
  p99DuringOverBefore: number
  honestPublished: number
  honestDelivered: number
  honestDeliveredFraction: number
  attackerFramesSent: number
  victimFramesFromAttacker: number
  /** From the victim's first frame (or stream) from the attacker to its first P7 penalty. */
  timeToPenaltyMs: number | null
  /** From the same first contact to the disconnection. */
  timeToDisconnectMs: number | null
  disconnected: boolean
  /** The longest router wall time on one attacker frame, driver work inside it excluded. */
  maxRouterWallMsPerAttackerFrame: number
  /** The same in main-thread CPU time (not the GC and JIT helper threads beside it). */
  maxRouterCpuMsPerAttackerFrame: number
  /**
   * Where the router wall time of the costliest attacker frame (or prefix check) went: the
   * victim's main thread running, waiting for a core (the machine's other processes and
   * threads held both; NaN off Linux), and asleep (wall less both: page faults, waits on
   * other threads), and the GC pauses V8 reports within the frame, in ms. Null: none.
   */
  costliestFrameCpuMs: number | null
  costliestFrameQueuedMs: number | null
  costliestFrameSleptMs: number | null
  costliestFrameGcMs: number | null
  /** The attacker frame that took the most router wall time: its index (0 = first; −1: none). */
  costliestAttackerFrameIndex: number
  /** The median router wall time over the attacker's frames. */
  medianRouterWallMsPerAttackerFrame: number
  /** The longest driver work (libp2p sends, connection aborts) inside one attacker frame. */
  maxDriverWallMsInAttackerFrame: number
  /** The longest event-loop stall of one attacker frame: router and driver work inside it. */
  maxStallMsPerAttackerFrame: number
  maxRouterWallMsPerHonestFrame: number
  /**
   * The costliest attacker frame's router wall time with no network (sans-IO, virtual time),
   * each frame's time taken as its least over fresh runs: what the frame itself costs the
   * router, which the machine's other load does not inflate. Null for stream attacks.
   */
  sansIoCostliestFrameMs: number | null
  /**
   * The longest event-loop delay of the victim process before the attack, in ms: how long a
   * timer fired late, whatever held the loop (our work, GC, or the process waiting for a core).
   */
  maxEventLoopDelayBeforeMs: number
  /** The same during the attack. */
  maxEventLoopDelayDuringMs: number
  /** CPU time of the victim process per second of honest traffic before the attack, in ms/s. */
  processCpuBeforeMsPerS: number
  /** The same during the attack. */
  processCpuDuringMsPerS: number
  /** CPU time B's router spent on the attacker's frames and reports over the attack, in ms. */
  routerCpuOnAttackerMs: number
  /**
   * The rest of the extra CPU time the attack cost (libp2p below the router: TCP, noise,
   * yamux, handshakes of refused redials; GC and JIT helper threads), in ms:
   * (during − before) × duration − router.
   */
  belowRouterCpuMs: number
  /** Connections from the attacker that B's gater refused (redials while denied). */
  refusedRedials: number
  /**
   * Where the machine's cores went in the honest window before the attack, in ms of CPU per
   * second (from /proc): `honestAC` (this process: A and C), `victim` (B's process),
   * `otherProcesses` (anything else on the machine: other benches and users) and `idle`.
   */
  machineCpuBeforeMsPerS: Record<string, number>
  /** The same during the attack, with `attacker` (its process's own figure) beside them. */
  machineCpuDuringMsPerS: Record<string, number>
  /** Dials the attacker made after it was first cut off (refused or not). */
  attackerRedials: number
  /** The attacker process's CPU to its first disconnection and after it, in ms. */
  attackerCpuToCutOffMs: number
  attackerCpuAfterCutOffMs: number
  /** During samples slower than twice the before p99 (what decides the p99 ratio), in ms. */
  slowThresholdMs: number
  /**
   * Those slow samples by when C got them: before the victim first heard from the attacker;
   * from then until {@link CUT_OFF_SPILL_MS} after the disconnect (the attack frames' own
   * cost); within {@link REDIAL_WINDOW_MS} around a redial the gater refused after its
   * handshake; at any other time.
   */
  slowSamplesBeforeContact: number
  slowSamplesToCutOff: number
  slowSamplesNearRefusedRedial: number
  slowSamplesOther: number
  /** Of the slow samples, those that reached the victim's router later than they took from it to C. */
  slowSamplesLateIntoVictim: number
  /**
   * The victim's main thread over the slow samples' victim intervals (from the honest message
   * before each to it): running, waiting for a core, wall, summed, in ms.
   */
  slowSamplesVictimCpuMs: number
  slowSamplesVictimQueuedMs: number
  slowSamplesVictimWallMs: number
  /**
   * Slow samples over whose flight the honest process's main thread (A and C) waited for a
   * core at least half the slow threshold, and its wait over all slow samples, in ms.
   */
  slowSamplesHonestQueued: number
  slowSamplesHonestQueuedMs: number
  /** Slow samples with a GC pause of the honest process (A and C) over their flight. */
  slowSamplesNearHonestGc: number
  /** Slow samples with a dial the victim's gater decided on, or a GC pause, near them. */
  slowSamplesNearGateDecision: number
  slowSamplesNearGc: number
  /** Dials let through to the encryption handshake, to the cut-off (the attack's own) and after it (redials). */
  handshakesToCutOff: number
  handshakesAfterCutOff: number
  /** Redials refused before encryption (by address) after the cut-off. */
  redialsRefusedBeforeEncryption: number
  /** The victim's main-thread CPU through each redial's handshake after the cut-off, in ms. */
  redialHandshakeCpuMs: number[]
  /**
   * The victim process's CPU (every thread) beyond its rate before the attack, from the
   * attack's start to the cut-off and from there to the end of the window (the redials), in ms.
   */
  victimExtraCpuToCutOffMs: number | null
  /**
   * From the victim accepting the attacker's connection to the cut-off: wall time, and the
   * victim's main thread running and waiting for a core, in ms (null: no cut-off).
   */
  connectionToCutOff: { wallMs: number; cpuMs: number; queuedMs: number } | null
  victimExtraCpuAfterCutOffMs: number | null
  /** The victim process's heap in use after two full collections, before the honest window, in MB. */
  heapAfterGcBeforeMB: number
  /** After the honest window, as the attack starts. */
  heapAfterGcAttackStartMB: number
  heapAfterGcAfterMB: number
  /**
   * The attack's part of the heap growth, as a fraction of the heap before: growth over the
   * attack less growth over the honest window before it (same length and honest rate).
   */
  heapChangeFraction: number
}

/** The main thread of this process (honest A and C): run and run-queue time so far. */
const honestThread = mainThreadClock()
/** GC pauses of this process (honest A and C): start (`timeOrigin + now`) and length, in ms. */
const honestGc: { at: number; ms: number }[] = []
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (honestGc.length < 100_000)
      honestGc.push({ at: performance.timeOrigin + e.startTime, ms: e.duration })
  }
}).observe({ entryTypes: ['gc'] })

/** When C got each honest message (`Date.now()`, the clock the victim's reports use) and its latency. */
const deliveries: ({ at: number; latencyMs: number } & HonestDelivery)[] = []

/** Victim B in its process and honest A and C here, all speaking one-copy or none. */
interface Bed {
  victim: Victim
  a: GossipNode
  c: GossipNode
  pair: HonestPair
  honestKeys: string[]
}

/** Starts a {@link Bed}, waits for the meshes of A, B and C, and warms it up. */
async function startBed(oneCopy: boolean): Promise<Bed> {
  const victim = await Victim.start(T, oneCopy)
  const [a, c] = [
    await attackBedNode(T, new Map(), oneCopy),
    await attackBedNode(T, new Map(), oneCopy),
  ]
  await a.dial(multiaddr(victim.addr))
  await c.dial(multiaddr(victim.addr))
  const honestKeys = [a.peerId.toString(), c.peerId.toString()]
  await waitFor(
    async () => {
      const mesh = await victim.ask<string[]>('mesh')
      return (
        honestKeys.every((k) => mesh.includes(k)) &&
        a.services.dissemination.core.getMeshPeers(T).includes(victim.peerId) &&
        c.services.dissemination.core.getMeshPeers(T).includes(victim.peerId)
      )
    },
    { what: 'the meshes of A, B and C', timeoutMs: 15_000 },
  )
  const pair = new HonestPair(a, c, T)
  c.services.dissemination.on('artifact', (art) => {
    // A's messages (see HonestPair): their send time first, the mark 0x42 at byte 12.
    if (art.data.length !== BYTES || art.data[12] !== 0x42) return
    const sentAt = new DataView(art.data.buffer, art.data.byteOffset).getFloat64(0)
    const now = performance.now()
    deliveries.push({
      at: Date.now(),
      latencyMs: now - sentAt,
      seq: honestSeq(art.data)!,
      publishedAt: performance.timeOrigin + sentAt,
      deliveredAt: performance.timeOrigin + now,
      honestThread: honestThread(),
    })
  })
  // Warm-up: JIT, meshes and caches settle before anything is measured.
  await pair.honestTraffic(() => new Promise((r) => setTimeout(r, 1000)), RATE, BYTES)
  return { victim, a, c, pair, honestKeys }
}

const figures: AttackFigures[] = []
// The one-copy attacks need a victim (and honest peers) speaking one-copy; the others, stock's.
const beds = new Map<boolean, Bed>()
for (const [index, attack] of gossipBenchRows(T).entries()) {
  if (ONLY !== undefined && !attack.name.includes(ONLY)) continue
  const oneCopy = attack.oneCopy !== undefined
  let bed = beds.get(oneCopy)
  if (bed === undefined) {
    bed = await startBed(oneCopy)
    beds.set(oneCopy, bed)
  }
  const { victim, pair, honestKeys } = bed
  const heapBefore = await victim.ask<number>('heap')
  await victim.ask('window')
  const pids = { honestAC: process.pid, victim: victim.pid }
  let cpuStart = readCpu(pids)
  let cpuBefore = cpuStart
  let cpuAttackEnd = cpuStart
  const before = await pair.honestTraffic(
    () => {
      cpuStart = readCpu(pids)
      return new Promise<void>((r) => setTimeout(r, BEFORE_MS)).then(() => {
        cpuBefore = readCpu(pids)
      })
    },
    RATE,
    BYTES,
  )
  const windowBefore = await victim.ask<VictimWindow>('windowEnd')
  const heapAttackStart = await victim.ask<number>('heap')
  const x = await spawnAttacker(victim.addr, index, ATTACK_MS, T, !NO_REDIAL)
  const key = x.key
  await victim.ask('forget', { keys: honestKeys })
  await victim.ask('watch', { key, keys: honestKeys })
  await victim.ask('window')
  const firstDelivery = deliveries.length
  let cpuDuring = cpuStart
  const during = await pair.honestTraffic(
    async () => {
      cpuDuring = readCpu(pids)
      const run = await x.attack()
      cpuAttackEnd = readCpu(pids)
      return run
    },
    RATE,
    BYTES,
  )
  const run = during.result
  const windowDuring = await victim.ask<VictimWindow>('windowEnd')
  const report = await victim.ask<VictimReport>('report', { key, keys: honestKeys })
  const heapAfter = await victim.ask<number>('heap')
  const b = percentiles(before.traffic.latenciesMs)
  const d = percentiles(during.traffic.latenciesMs)
  const perS = (n: number, ms: number) => (n * 1000) / ms
  const frameMs = report.frameMs
  const costliest = frameMs.indexOf(Math.max(...frameMs))
  const contact = report.firstContact
  const since = (t: number | null) => (t === null || contact === null ? null : t - contact)
  const slowMs = 2 * b.p99
  const slow = deliveries.slice(firstDelivery).filter((s) => s.latencyMs > slowMs)
  const cutOff = (report.disconnectAt ?? Number.POSITIVE_INFINITY) + CUT_OFF_SPILL_MS
  const nearRedial = (at: number) =>
    report.refusedAt.some((r) => at >= r - REDIAL_WINDOW_MS && at <= r + REDIAL_WINDOW_MS)
  const beforeContact = slow.filter((s) => contact === null || s.at < contact).length
  const toCutOff = slow.filter((s) => contact !== null && s.at >= contact && s.at <= cutOff).length
  const afterCutOff = slow.filter((s) => contact !== null && s.at > cutOff)
  const nearRedials = afterCutOff.filter((s) => nearRedial(s.at)).length
  const laid = layAgainst(
    deliveries.slice(firstDelivery),
    slowMs,
    report.timeline,
    (windowBefore.cpuMs * 1000) / before.traffic.elapsedMs,
    honestGc,
  )
  if (TRACE) traceSlowSamples(attack.name, laid)
  figures.push({
    attack: attack.name,
    control: attack.control === true,
    attackRateFramesPerS: attack.rate,
    beforeSamples: before.traffic.latenciesMs.length,
    beforeP50Ms: b.p50,
    beforeP99Ms: b.p99,
    beforeThroughputMsgPerS: perS(before.traffic.delivered, before.traffic.elapsedMs),
    duringSamples: during.traffic.latenciesMs.length,
    duringP50Ms: d.p50,
    duringP99Ms: d.p99,
    duringThroughputMsgPerS: perS(during.traffic.delivered, during.traffic.elapsedMs),
    p99DuringOverBefore: d.p99 / b.p99,
    honestPublished: during.traffic.published,
    honestDelivered: during.traffic.delivered,
    honestDeliveredFraction: during.traffic.delivered / during.traffic.published,
    attackerFramesSent: run.sent,
    victimFramesFromAttacker: report.frames,
    timeToPenaltyMs: since(report.penaltyAt),
    timeToDisconnectMs: since(report.disconnectAt),
    disconnected: report.denied,
    maxRouterWallMsPerAttackerFrame: report.maxFrameMs,
    maxRouterCpuMsPerAttackerFrame: report.maxFrameCpuMs,
    costliestFrameCpuMs: report.costliest?.cpuMs ?? null,
    costliestFrameQueuedMs: report.costliest?.queuedMs ?? null,
    costliestFrameSleptMs:
      report.costliest === null
        ? null
        : report.costliest.wallMs - report.costliest.cpuMs - report.costliest.queuedMs,
    costliestFrameGcMs: report.costliest?.gcMs ?? null,
    costliestAttackerFrameIndex: costliest,
    medianRouterWallMsPerAttackerFrame: frameMs.length === 0 ? 0 : distribution(frameMs).p50,
    maxDriverWallMsInAttackerFrame: report.maxFrameDriverMs,
    maxStallMsPerAttackerFrame: report.maxFrameStallMs,
    maxRouterWallMsPerHonestFrame: report.maxOtherFrameMs,
    maxEventLoopDelayBeforeMs: windowBefore.maxLoopDelayMs,
    maxEventLoopDelayDuringMs: windowDuring.maxLoopDelayMs,
    processCpuBeforeMsPerS: (windowBefore.cpuMs * 1000) / before.traffic.elapsedMs,
    processCpuDuringMsPerS: (windowDuring.cpuMs * 1000) / during.traffic.elapsedMs,
    routerCpuOnAttackerMs: report.routerCpuMs,
    belowRouterCpuMs:
      windowDuring.cpuMs -
      (windowBefore.cpuMs * during.traffic.elapsedMs) / before.traffic.elapsedMs -
      report.routerCpuMs,
    refusedRedials: report.refused,
    machineCpuBeforeMsPerS: cpuBetween(cpuStart, cpuBefore),
    machineCpuDuringMsPerS: cpuBetween(cpuDuring, cpuAttackEnd, {
      attacker: run.processCpuToCutOffMs + run.processCpuAfterCutOffMs,
    }),
    attackerRedials: run.redials,
    attackerCpuToCutOffMs: run.processCpuToCutOffMs,
    attackerCpuAfterCutOffMs: run.processCpuAfterCutOffMs,
    slowThresholdMs: slowMs,
    slowSamplesBeforeContact: beforeContact,
    slowSamplesToCutOff: toCutOff,
    slowSamplesNearRefusedRedial: nearRedials,
    slowSamplesOther: afterCutOff.length - nearRedials,
    slowSamplesLateIntoVictim: laid.slowLateIntoVictim,
    slowSamplesVictimCpuMs: laid.slowVictimCpuMs,
    slowSamplesVictimQueuedMs: laid.slowVictimQueuedMs,
    slowSamplesVictimWallMs: laid.slowVictimWallMs,
    slowSamplesHonestQueued: laid.slowHonestQueued,
    slowSamplesHonestQueuedMs: laid.slowHonestQueuedMs,
    slowSamplesNearHonestGc: laid.slowNearHonestGc,
    slowSamplesNearGateDecision: laid.slowNearGate,
    slowSamplesNearGc: laid.slowNearGc,
    handshakesToCutOff: laid.handshakesToCutOff,
    handshakesAfterCutOff: laid.handshakesAfterCutOff,
    redialsRefusedBeforeEncryption: laid.refusedBeforeEncryptionAfterCutOff,
    redialHandshakeCpuMs: laid.redialHandshakeCpuMs,
    victimExtraCpuToCutOffMs: laid.extraCpuToCutOffMs,
    connectionToCutOff: laid.connectionToCutOff,
    victimExtraCpuAfterCutOffMs: laid.extraCpuAfterCutOffMs,
    sansIoCostliestFrameMs: null,
    heapAfterGcBeforeMB: heapBefore,
    heapAfterGcAttackStartMB: heapAttackStart,
    heapAfterGcAfterMB: heapAfter,
    heapChangeFraction:
      (heapAfter - heapAttackStart - (heapAttackStart - heapBefore) * (ATTACK_MS / BEFORE_MS)) /
      heapBefore,
  })
  console.log(`done: ${attack.name}`)
}
for (const bed of beds.values()) {
  await bed.victim.ask('stop')
  await Promise.all([bed.a.stop(), bed.c.stop()])
}
const sansIo = sansIoCostliestFrameMs()
const names = gossipBenchRows(T).map((a) => a.name)
for (const f of figures) f.sansIoCostliestFrameMs = sansIo[names.indexOf(f.attack)]

const ms = (v: number | null) => (v === null ? 'never' : fmt(v, 0))
const cpu = (v: number | null, digits = 0) => (v === null ? 'n/a' : fmt(v, digits))

/** One line per slow honest message of `attack`, against the victim's timeline. */
function traceSlowSamples(attack: string, laid: SlowSampleFigures): void {
  console.log(`slow honest messages of ${attack}:`)
  const f = (v: number | null) => (v === null ? '-' : v.toFixed(1))
  for (const s of laid.slow) {
    console.log(
      `  #${s.seq} ${f(s.latencyMs)} ms (into B ${f(s.intoVictimMs)}, out ${f(s.outOfVictimMs)}); B since the last: wall ${f(s.victimWallMs)} CPU ${f(s.victimCpuMs)} queued ${f(s.victimQueuedMs)}; A+C thread queued ${f(s.honestQueuedMs)}, GC ${f(s.honestGcMs)}; dials ${s.gateDecisions}, GC ${f(s.gcMs)} ms; ${f(s.sinceCutOffMs)} ms after the cut-off`,
    )
  }
}
const rows: Row[] = figures.map((f) => ({
  attack: f.attack,
  'samples before/during': `${f.beforeSamples} / ${f.duringSamples}`,
  'before p50/p99 ms': `${fmt(f.beforeP50Ms, 1)} / ${fmt(f.beforeP99Ms, 1)}`,
  'during p50/p99 ms': `${fmt(f.duringP50Ms, 1)} / ${fmt(f.duringP99Ms, 1)}`,
  'p99 ratio': fmt(f.p99DuringOverBefore, 2),
  'slow samples pre/to cut/redial/other': `${f.slowSamplesBeforeContact} / ${f.slowSamplesToCutOff} / ${f.slowSamplesNearRefusedRedial} / ${f.slowSamplesOther}`,
  'frames sent/read': `${f.attackerFramesSent} / ${f.victimFramesFromAttacker}`,
  'msg/s before/during': `${fmt(f.beforeThroughputMsgPerS, 1)} / ${fmt(f.duringThroughputMsgPerS, 1)}`,
  delivered: `${f.honestDelivered}/${f.honestPublished}`,
  'penalty ms': ms(f.timeToPenaltyMs),
  'disconnect ms': ms(f.timeToDisconnectMs),
  'router ms/frame max wall/CPU': `${fmt(f.maxRouterWallMsPerAttackerFrame, 1)} / ${fmt(f.maxRouterCpuMsPerAttackerFrame, 1)}`,
  'costliest frame ms CPU/queued/slept (GC)':
    f.costliestFrameCpuMs === null
      ? 'none'
      : `${fmt(f.costliestFrameCpuMs, 1)} / ${fmt(f.costliestFrameQueuedMs!, 1)} / ${fmt(f.costliestFrameSleptMs!, 1)} (${fmt(f.costliestFrameGcMs!, 1)})`,
  'costliest frame #':
    // None: no whole frame reached the router (prefix checks or driver reports only).
    f.costliestAttackerFrameIndex < 0 ? 'none' : f.costliestAttackerFrameIndex,
  'router ms/frame p50': fmt(f.medianRouterWallMsPerAttackerFrame, 2),
  'driver ms in frame': fmt(f.maxDriverWallMsInAttackerFrame, 1),
  'stall ms/frame': fmt(f.maxStallMsPerAttackerFrame, 1),
  'sans-IO costliest frame ms':
    f.sansIoCostliestFrameMs === null ? 'n/a' : fmt(f.sansIoCostliestFrameMs, 2),
  'max loop delay ms before/during': `${fmt(f.maxEventLoopDelayBeforeMs, 0)} / ${fmt(f.maxEventLoopDelayDuringMs, 0)}`,
  'CPU ms/s before/during': `${fmt(f.processCpuBeforeMsPerS, 0)} / ${fmt(f.processCpuDuringMsPerS, 0)}`,
  'extra CPU ms router/below': `${fmt(f.routerCpuOnAttackerMs, 0)} / ${fmt(f.belowRouterCpuMs, 0)}`,
  'refused redials': f.refusedRedials,
  'heap MB before/start/after': `${fmt(f.heapAfterGcBeforeMB, 1)} / ${fmt(f.heapAfterGcAttackStartMB, 1)} / ${fmt(f.heapAfterGcAfterMB, 1)}`,
  'attack heap growth %': fmt(f.heapChangeFraction * 100, 1),
}))
printTable(
  "where the slow honest samples went (victim main thread over each one's interval), and what redials cost the victim's CPU",
  figures.map((f) => ({
    attack: f.attack,
    'slow samples':
      f.slowSamplesBeforeContact +
      f.slowSamplesToCutOff +
      f.slowSamplesNearRefusedRedial +
      f.slowSamplesOther,
    'late into B': f.slowSamplesLateIntoVictim,
    'B thread ms CPU/queued/wall': `${fmt(f.slowSamplesVictimCpuMs, 1)} / ${fmt(f.slowSamplesVictimQueuedMs, 1)} / ${fmt(f.slowSamplesVictimWallMs, 1)}`,
    'A+C thread queued: samples (ms)': `${f.slowSamplesHonestQueued} (${fmt(f.slowSamplesHonestQueuedMs, 1)})`,
    'A+C GC': f.slowSamplesNearHonestGc,
    'near a B dial / B GC': `${f.slowSamplesNearGateDecision} / ${f.slowSamplesNearGc}`,
    'handshakes to/after cut-off': `${f.handshakesToCutOff} / ${f.handshakesAfterCutOff}`,
    'redials refused before encryption': f.redialsRefusedBeforeEncryption,
    'B thread CPU ms per redial handshake':
      f.redialHandshakeCpuMs.map((v) => fmt(v, 1)).join(' ') || 'none',
    'B connection to cut-off ms wall (thread CPU/queued)':
      f.connectionToCutOff === null
        ? 'n/a'
        : `${fmt(f.connectionToCutOff.wallMs, 0)} (${fmt(f.connectionToCutOff.cpuMs, 1)} / ${fmt(f.connectionToCutOff.queuedMs, 1)})`,
    'B extra CPU ms to/after cut-off': `${cpu(f.victimExtraCpuToCutOffMs)} / ${cpu(f.victimExtraCpuAfterCutOffMs)}`,
    'B extra CPU ms per redial': cpu(
      f.victimExtraCpuAfterCutOffMs === null
        ? null
        : f.victimExtraCpuAfterCutOffMs /
            Math.max(1, f.handshakesAfterCutOff + f.redialsRefusedBeforeEncryption),
      2,
    ),
  })),
)
const perS = (m: Record<string, number>, keys: string[]) =>
  keys.map((k) => fmt(m[k] ?? Number.NaN, 0)).join(' / ')
printTable(
  'where the cores went (/proc, ms of CPU per s of wall; 2 cores: 2,000 in all): honest A and C, victim B, the attacker, every other process on the machine, idle',
  figures.map((f) => ({
    attack: f.attack,
    'before A+C / B / others / idle': perS(f.machineCpuBeforeMsPerS, [
      'honestAC',
      'victim',
      'otherProcesses',
      'idle',
    ]),
    'during A+C / B / attacker / others / idle': perS(f.machineCpuDuringMsPerS, [
      'honestAC',
      'victim',
      'attacker',
      'otherProcesses',
      'idle',
    ]),
    'attacker redials': f.attackerRedials,
    'attacker CPU ms to/after cut-off': `${fmt(f.attackerCpuToCutOffMs, 0)} / ${fmt(f.attackerCpuAfterCutOffMs, 0)}`,
    'attacker CPU ms per redial': fmt(
      f.attackerCpuAfterCutOffMs / Math.max(1, f.attackerRedials),
      2,
    ),
  })),
)
printTable(
  `gossip under attack (attacker, B, and A with C in three processes): A → victim B → C, ${RATE} msg/s of ${BYTES} B; ${BEFORE_MS} ms before, ${ATTACK_MS} ms of attack${NO_REDIAL ? '; the attacker idle after its cut-off (--no-redial, a diagnosis)' : ''}`,
  rows,
)
// The control row is a reference, not an attack: the targets are the attack rows'.
const attacks = figures.filter((f) => !f.control)
const targets = {
  p99DuringAtMost2xBefore: attacks.every((f) => f.p99DuringOverBefore <= 2),
  penalisedWithin1s: attacks.every((f) => f.timeToPenaltyMs !== null && f.timeToPenaltyMs <= 1000),
  disconnected: attacks.every((f) => f.disconnected),
  noFrameOver10msOfRouterCpuTime: attacks.every((f) => f.maxRouterCpuMsPerAttackerFrame <= 10),
  noFrameOver10msOfRouterWallTime: attacks.every((f) => f.maxRouterWallMsPerAttackerFrame <= 10),
  noFrameOver10msSansIo: attacks.every(
    (f) => f.sansIoCostliestFrameMs === null || f.sansIoCostliestFrameMs <= 10,
  ),
  heapGrowthWithin10Percent: attacks.every((f) => f.heapChangeFraction <= 0.1),
  honestDelivery100Percent: attacks.every((f) => f.honestDelivered === f.honestPublished),
}
console.log('\ntargets met:', targets)
writeResults('attack-gossip', {
  config: {
    routerTime:
      "the sans-IO core's own work on one frame; driver work inside the frame (libp2p sends, connection aborts) apart",
    processes:
      "attacker, victim B, and honest A with C each in a process of its own; heap, CPU and loop delay are the victim process's",
    honestRateMsgPerS: RATE,
    honestMessageBytes: BYTES,
    beforeMs: BEFORE_MS,
    attackMs: ATTACK_MS,
    attackerRedialsAfterCutOff: !NO_REDIAL,
  },
  attacks: figures,
  targets,
})
