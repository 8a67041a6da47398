/**
 * Where the time of the slow honest messages of a gossip attack run went, laid against the
 * victim's timeline (victim-main.ts): late into the victim or out of it, the victim's main
 * thread running or waiting for a core meanwhile, and what the attack did around them
 * (redials the gater saw, GC pauses), with what the victim's CPU spent before and after the
 * cut-off. CPU times and counts, not wall times, say what the attack cost: the machine's
 * other load stretches wall times but not the victim's CPU time.
 */
import type { VictimMoment, VictimTimeline } from './victim-main.ts'

/** One honest message as C got it, on the clock every process shares (`timeOrigin + now`). */
export interface HonestDelivery {
  seq: number
  publishedAt: number
  deliveredAt: number
  /**
   * The honest process's main thread (A and C share it) at delivery: run and run-queue time
   * so far, in ms (see `mainThreadClock`).
   */
  honestThread: { cpuMs: number; queuedMs: number }
}

/** A slow message laid against the victim's timeline (see {@link layAgainst}), in ms. */
export interface SlowSample {
  seq: number
  latencyMs: number
  /** Publication to the victim's router getting it, and from there to C. */
  intoVictimMs: number | null
  outOfVictimMs: number | null
  /** The victim's main thread since it got the honest message before: wall, running, waiting for a core. */
  victimWallMs: number | null
  victimCpuMs: number | null
  victimQueuedMs: number | null
  /**
   * The honest process's main thread (A publishes and C delivers on it) waiting for a core
   * from the delivery before this message's publication to its delivery, in ms (null: no
   * delivery before it).
   */
  honestQueuedMs: number | null
  /** GC pauses of the honest process over the message's flight, in ms. */
  honestGcMs: number
  /** Gate decisions and GC pauses in the victim from `NEAR_MS` before publication to delivery. */
  gateDecisions: number
  gcMs: number
  /** Relative to the cut-off (publication less disconnection; null: none). */
  sinceCutOffMs: number | null
}

/** How far before a slow message's publication a victim event may have delayed it. */
const NEAR_MS = 20

/** The figures of a run's slow messages and the redials' cost, for the bench's table. */
export interface SlowSampleFigures {
  slow: SlowSample[]
  /** Slow messages that reached the victim's router later than they left it for C. */
  slowLateIntoVictim: number
  /** Over the slow messages' victim intervals: the main thread running, and waiting for a core, in ms. */
  slowVictimCpuMs: number
  slowVictimQueuedMs: number
  slowVictimWallMs: number
  /**
   * Slow messages over whose flight the honest process's main thread waited for a core at
   * least half the slow threshold: late because A or C could not run, whatever B did.
   */
  slowHonestQueued: number
  /** Over the slow messages' flights, the honest process's main thread waiting for a core, in ms. */
  slowHonestQueuedMs: number
  /** Slow messages with a GC pause of the honest process over their flight. */
  slowNearHonestGc: number
  /** Slow messages with a gate decision (a dial) or a GC pause of the victim near them. */
  slowNearGate: number
  slowNearGc: number
  /** Dials let through to the encryption handshake before and after the cut-off. */
  handshakesToCutOff: number
  handshakesAfterCutOff: number
  /** Dials refused before encryption after the cut-off. */
  refusedBeforeEncryptionAfterCutOff: number
  /**
   * The victim's main-thread CPU from letting each redial after the cut-off through to the
   * handshake to deciding on it after the handshake (honest work meanwhile included), in ms.
   */
  redialHandshakeCpuMs: number[]
  /**
   * The victim process's CPU (every thread) beyond its rate before the attack, from the
   * attack's start to the cut-off and from there to the end, in ms; null: no cut-off.
   */
  extraCpuToCutOffMs: number | null
  /**
   * From the victim accepting the attacker's connection (after its handshake) to the cut-off:
   * wall time, and the victim's main thread running and waiting for a core, in ms.
   */
  connectionToCutOff: { wallMs: number; cpuMs: number; queuedMs: number } | null
  extraCpuAfterCutOffMs: number | null
}

/** The victim's moment just before `at` in `list` (sorted by time), if any. */
function before<T extends VictimMoment>(list: T[], at: number): T | undefined {
  let found: T | undefined
  for (const m of list) {
    if (m.at >= at) break
    found = m
  }
  return found
}

/**
 * Lays the deliveries slower than `slowMs` against the victim's `timeline`, and prices the
 * phases of the attack in the victim's CPU: `cpuMsPerS` is its CPU rate before the attack.
 */
export function layAgainst(
  deliveries: HonestDelivery[],
  slowMs: number,
  timeline: VictimTimeline,
  cpuMsPerS: number,
  honestGc: { at: number; ms: number }[] = [],
): SlowSampleFigures {
  const bySeq = new Map(timeline.honest.map((m) => [m.seq, m]))
  const byDelivery = [...deliveries].sort((x, y) => x.deliveredAt - y.deliveredAt)
  /** The delivery just before `at`, if any. */
  const deliveredBefore = (at: number) => {
    let found: HonestDelivery | undefined
    for (const d of byDelivery) {
      if (d.deliveredAt >= at) break
      found = d
    }
    return found
  }
  const cutOff = timeline.disconnect?.at ?? null
  const slow: SlowSample[] = deliveries
    .filter((d) => d.deliveredAt - d.publishedAt > slowMs)
    .map((d) => {
      const got = bySeq.get(d.seq)
      const prior = got === undefined ? undefined : before(timeline.honest, got.at)
      const from = d.publishedAt - NEAR_MS
      const earlier = deliveredBefore(d.publishedAt)
      const near = (at: number) => at >= from && at <= d.deliveredAt
      return {
        seq: d.seq,
        latencyMs: d.deliveredAt - d.publishedAt,
        intoVictimMs: got === undefined ? null : got.at - d.publishedAt,
        outOfVictimMs: got === undefined ? null : d.deliveredAt - got.at,
        victimWallMs: got && prior ? got.at - prior.at : null,
        victimCpuMs: got && prior ? got.cpuMs - prior.cpuMs : null,
        victimQueuedMs: got && prior ? got.queuedMs - prior.queuedMs : null,
        honestQueuedMs:
          earlier === undefined ? null : d.honestThread.queuedMs - earlier.honestThread.queuedMs,
        honestGcMs: honestGc
          .filter((g) => g.at + g.ms >= d.publishedAt && g.at <= d.deliveredAt)
          .reduce((n, g) => n + g.ms, 0),
        gateDecisions: timeline.gate.filter((g) => near(g.at)).length,
        gcMs: timeline.gc.filter((g) => near(g.at)).reduce((n, g) => n + g.ms, 0),
        sinceCutOffMs: cutOff === null ? null : d.publishedAt - cutOff,
      }
    })
  const sum = (f: (s: SlowSample) => number | null) => slow.reduce((n, s) => n + (f(s) ?? 0), 0)
  const afterCut = (m: VictimMoment) => cutOff !== null && m.at > cutOff
  const through = timeline.gate.filter((g) => g.decision === 'let through to encryption')
  const extra = (cpuMs: number | null, fromAt: number, toAt: number) =>
    cpuMs === null ? null : cpuMs - (cpuMsPerS * (toAt - fromAt)) / 1000
  // Each handshake's decision is the first one after its let-through (they do not overlap).
  const redialHandshakeCpuMs: number[] = []
  timeline.gate.forEach((g, i) => {
    if (g.decision !== 'let through to encryption' || !afterCut(g)) return
    const done = timeline.gate.slice(i + 1).find((h) => h.decision.endsWith('after handshake'))
    if (done !== undefined) redialHandshakeCpuMs.push(done.cpuMs - g.cpuMs)
  })
  return {
    slow,
    redialHandshakeCpuMs,
    slowLateIntoVictim: slow.filter((s) => (s.intoVictimMs ?? 0) > (s.outOfVictimMs ?? 0)).length,
    slowVictimCpuMs: sum((s) => s.victimCpuMs),
    slowVictimQueuedMs: sum((s) => s.victimQueuedMs),
    slowVictimWallMs: sum((s) => s.victimWallMs),
    slowHonestQueued: slow.filter((s) => (s.honestQueuedMs ?? 0) >= slowMs / 2).length,
    slowHonestQueuedMs: sum((s) => s.honestQueuedMs),
    slowNearHonestGc: slow.filter((s) => s.honestGcMs > 0).length,
    slowNearGate: slow.filter((s) => s.gateDecisions > 0).length,
    slowNearGc: slow.filter((s) => s.gcMs > 0).length,
    handshakesToCutOff: through.filter((g) => !afterCut(g)).length,
    handshakesAfterCutOff: through.filter(afterCut).length,
    refusedBeforeEncryptionAfterCutOff: timeline.gate.filter(
      (g) =>
        (g.decision === 'refused at the listener' || g.decision === 'refused before encryption') &&
        afterCut(g),
    ).length,
    connectionToCutOff: (() => {
      const accepted = timeline.gate.find((g) => g.decision === 'accepted after handshake')
      const cut = timeline.disconnect
      if (accepted === undefined || cut === null) return null
      return {
        wallMs: cut.at - accepted.at,
        cpuMs: cut.cpuMs - accepted.cpuMs,
        queuedMs: cut.queuedMs - accepted.queuedMs,
      }
    })(),
    extraCpuToCutOffMs: extra(timeline.processCpuToCutOffMs, timeline.watchAt, cutOff ?? 0),
    extraCpuAfterCutOffMs: extra(timeline.processCpuAfterCutOffMs, cutOff ?? 0, timeline.reportAt),
  }
}
