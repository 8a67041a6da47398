/**
 * Victim B of the gossip attack bench in a process of its own (bench/attack/gossip.ts), so
 * that its work and that of honest A and C do not share an event loop:
 * `node victim-main.ts TOPIC [one-copy|stock]` (one-copy: it speaks the one-copy extension).
 * Prints `{ addr, peerId }` as a JSON line once it listens,
 * then answers one JSON line per request line (`{ cmd, ... }`) on stdin with `{ reply }`,
 * until `stop`.
 */
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { decodeRpc } from '../../src/gossip/rpc-codec.ts'
import {
  attackBedNode,
  type GateDecision,
  HONEST_BYTES,
  honestSeq,
  VictimProbe,
} from '../../test/support/gossip-attacks.ts'
import { mainThreadClock } from '../../test/support/thread-clock.ts'

/** What the victim saw of one peer over an attack. */
export interface VictimReport {
  frames: number
  maxFrameMs: number
  maxFrameCpuMs: number
  maxFrameDriverMs: number
  maxFrameStallMs: number
  frameMs: number[]
  firstContact: number | null
  routerCpuMs: number
  refused: number
  /** `Date.now()` of each refused connection of the peer (a redial the gater turned away after its handshake). */
  refusedAt: number[]
  /** `Date.now()` of the first P7 penalty since `watch`. */
  penaltyAt: number | null
  /** `Date.now()` of the disconnection since `watch`. */
  disconnectAt: number | null
  denied: boolean
  /** The longest router wall time on a frame of the peers of the request's `keys` (the honest ones), in ms. */
  maxOtherFrameMs: number
  /**
   * Where the router wall time of the peer's costliest frame went, in ms: main-thread run
   * time, waiting for a core (NaN where the system does not say), and GC pauses within the
   * frame (driver work included). Null when no frame or prefix of the peer reached the router.
   */
  costliest: { wallMs: number; cpuMs: number; queuedMs: number; gcMs: number } | null
  /** The victim's timeline since `watch`. */
  timeline: VictimTimeline
}

/**
 * The victim's main thread at a moment: wall time (`performance.timeOrigin + now()`, ms, a
 * clock every process on the machine shares to the microsecond) and the thread's run and
 * run-queue times so far (see {@link mainThreadClock}), in ms.
 */
export interface VictimMoment {
  at: number
  cpuMs: number
  queuedMs: number
}

/** What happened in the victim since `watch`, for the bench to lay slow honest messages against. */
export interface VictimTimeline {
  /** Each of the gater's inbound decisions (`peer` once known: after the handshake). */
  gate: (VictimMoment & { decision: GateDecision; peer?: string })[]
  /** When the router got each honest message (by its sequence number) from A. */
  honest: (VictimMoment & { seq: number })[]
  /** V8's GC pauses: start (same clock as `at`) and length, in ms. */
  gc: { at: number; ms: number }[]
  /** The watched peer's first P7 penalty and disconnection, when they came. */
  penalty: VictimMoment | null
  disconnect: VictimMoment | null
  /** CPU time of the victim process (every thread) from `watch` to the disconnection, and from there to the report, in ms. */
  processCpuToCutOffMs: number | null
  processCpuAfterCutOffMs: number | null
  /** When `watch` and the report came. */
  watchAt: number
  reportAt: number
}

/** A measured window of the victim process. */
export interface VictimWindow {
  /** CPU time of the victim process over the window, in ms. */
  cpuMs: number
  /** The longest event-loop delay of the victim over the window, in ms. */
  maxLoopDelayMs: number
}

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const [topic, mode] = process.argv.slice(2)
/** Refused connections by peer, and when each was refused (the gater only counts them). */
const refusedAt = new Map<string, number[]>()
const refused = new (class extends Map<string, number> {
  override set(key: string, n: number): this {
    const times = refusedAt.get(key) ?? []
    times.push(Date.now())
    refusedAt.set(key, times)
    return super.set(key, n)
  }
})()
const thread = mainThreadClock()
const epoch = () => performance.timeOrigin + performance.now()
const moment = (): VictimMoment => ({ at: epoch(), ...thread() })
/** Events kept per watch (a run's gate decisions and honest messages are a few thousand). */
const MAX_EVENTS = 100_000
const push = <T>(list: T[], e: T) => {
  if (list.length < MAX_EVENTS) list.push(e)
}
const newTimeline = (): VictimTimeline => ({
  gate: [],
  honest: [],
  gc: [],
  penalty: null,
  disconnect: null,
  processCpuToCutOffMs: null,
  processCpuAfterCutOffMs: null,
  watchAt: epoch(),
  reportAt: 0,
})
let timeline = newTimeline()
let watchCpu = process.cpuUsage()
let cutOffCpu: NodeJS.CpuUsage | undefined
const b = await attackBedNode(topic, refused, mode === 'one-copy', {}, (decision, peer) =>
  push(timeline.gate, { ...moment(), decision, peer }),
)
const probe = new VictimProbe(b)
const router = b.services.dissemination.core
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    push(timeline.gc, { at: performance.timeOrigin + e.startTime, ms: e.duration })
  }
}).observe({ entryTypes: ['gc'] })
let honestKeys = new Set<string>()
// After the probe's hooks: when the router got each of A's messages (decoded after it ran).
const receive = router.receive.bind(router)
router.receive = (peer, frame) => {
  receive(peer, frame)
  if (!honestKeys.has(peer) || frame.length > 4 * HONEST_BYTES) return
  const at = moment()
  for (const m of decodeRpc(frame).messages) {
    const seq = m.data === undefined ? undefined : honestSeq(m.data)
    if (seq !== undefined) push(timeline.honest, { ...at, seq })
  }
}
let cpuMark = process.cpuUsage()
let lag = monitorEventLoopDelay({ resolution: 5 })
let watched: { key: string; penaltyAt?: number; disconnectAt?: number } | undefined
router.on('rejected', ({ from, reason }) => {
  const w = watched
  if (w === undefined || from !== w.key) return
  if (w.penaltyAt === undefined && router.getBehaviourPenalty(from) > 0) {
    w.penaltyAt = Date.now()
    timeline.penalty = moment()
  }
  if (reason === 'disconnected' && w.disconnectAt === undefined) {
    w.disconnectAt = Date.now()
    timeline.disconnect = moment()
    cutOffCpu = process.cpuUsage()
  }
})
const cpuMsBetween = (from: NodeJS.CpuUsage, to: NodeJS.CpuUsage) =>
  (to.user - from.user + to.system - from.system) / 1000

console.log(JSON.stringify({ addr: b.getMultiaddrs()[0].toString(), peerId: b.peerId.toString() }))

type Request = { cmd: string; key?: string; keys?: string[] }
const handlers: Record<string, (r: Request) => unknown> = {
  mesh: () => router.getMeshPeers(topic),
  heap: () => {
    gc()
    gc()
    return process.memoryUsage().heapUsed / 1e6
  },
  window: () => {
    cpuMark = process.cpuUsage()
    lag.disable()
    lag = monitorEventLoopDelay({ resolution: 5 })
    lag.enable()
    return true
  },
  windowEnd: (): VictimWindow => {
    lag.disable()
    const u = process.cpuUsage(cpuMark)
    return { cpuMs: (u.user + u.system) / 1000, maxLoopDelayMs: lag.max / 1e6 }
  },
  forget: (r) => {
    for (const k of r.keys ?? []) probe.forget(k)
    return true
  },
  watch: (r) => {
    watched = { key: r.key! }
    honestKeys = new Set(r.keys ?? [])
    timeline = newTimeline()
    watchCpu = process.cpuUsage()
    cutOffCpu = undefined
    return true
  },
  report: (r): VictimReport => {
    const key = r.key!
    let maxOther = 0
    for (const peer of r.keys ?? []) maxOther = Math.max(maxOther, probe.maxFrameMs.get(peer) ?? 0)
    return {
      frames: probe.frames.get(key) ?? 0,
      maxFrameMs: probe.maxFrameMs.get(key) ?? 0,
      maxFrameCpuMs: probe.maxFrameCpuMs.get(key) ?? 0,
      maxFrameDriverMs: probe.maxFrameDriverMs.get(key) ?? 0,
      maxFrameStallMs: probe.maxFrameStallMs.get(key) ?? 0,
      frameMs: probe.frameMs.get(key) ?? [],
      firstContact: probe.firstContact.get(key) ?? null,
      routerCpuMs: probe.routerCpuMs.get(key) ?? 0,
      refused: refused.get(key) ?? 0,
      refusedAt: refusedAt.get(key) ?? [],
      penaltyAt: watched?.key === key ? (watched.penaltyAt ?? null) : null,
      disconnectAt: watched?.key === key ? (watched.disconnectAt ?? null) : null,
      denied: router.isDenied(key),
      maxOtherFrameMs: maxOther,
      costliest: (() => {
        const f = probe.costliestFrame.get(key)
        if (f === undefined) return null
        return { wallMs: f.wallMs, cpuMs: f.cpuMs, queuedMs: f.queuedMs, gcMs: probe.gcMsIn(f) }
      })(),
      timeline: (() => {
        const now = process.cpuUsage()
        timeline.reportAt = epoch()
        if (cutOffCpu !== undefined) {
          timeline.processCpuToCutOffMs = cpuMsBetween(watchCpu, cutOffCpu)
          timeline.processCpuAfterCutOffMs = cpuMsBetween(cutOffCpu, now)
        }
        return timeline
      })(),
    }
  },
}

for await (const line of createInterface({ input: process.stdin })) {
  const request = JSON.parse(line) as Request
  if (request.cmd === 'stop') {
    await b.stop()
    console.log(JSON.stringify({ reply: true }))
    process.exit(0)
  }
  console.log(JSON.stringify({ reply: handlers[request.cmd](request) }))
}
