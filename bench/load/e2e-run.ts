/**
 * Runs the broker, the servers and the load replayers as separate processes of this Node
 * (`process.execPath`) on loopback, with the single sequencer in this process, replays a
 * pre-computed load at a set rate and collects what every process counted.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SingleSequencer } from '../../src/broker/orderer.ts'
import { distribution } from '../../src/common/distribution.ts'
import { TimeoutError } from '../../src/common/errors.ts'
import {
  type BrokerReport,
  type BrokerSettings,
  epochNow,
  type FromBroker,
  type FromReplay,
  type FromServer,
  type LoadContext,
  type ReplayReport,
  type ServerReport,
  type ToBroker,
  type ToReplay,
  type ToServer,
} from './ipc.ts'
import { deriveServerKey, LOAD_CACHE_DIR, type LoadSpec, loadOrGenerate } from './load-cache.ts'

const here = dirname(fileURLToPath(import.meta.url))

/** Options of {@link runEndToEnd}. */
export interface EndToEndOptions {
  /** The load (its cache is generated when missing); `clients / ratePerSecond` is the replay's length. */
  spec: LoadSpec
  /** First transmissions per second, over all replay processes. */
  ratePerSecond: number
  /** Replay processes. Default 2. */
  loadProcesses?: number
  /** Witness servers. Default 4. */
  servers?: number
  /** Broker settings. */
  broker?: Partial<BrokerSettings>
  /** Broker processes; replayers start at the first and move to the next on silence. Default 1. */
  brokers?: number
  /** Kill (SIGKILL) the first broker this long after the first transmission, mid-stream. */
  killBrokerAfterMs?: number
  /** Pool size that triggers a flush. Default 65,536. */
  maxBatchEntries?: number
  /** Client retransmission time (doubles up to 8 s). Default 5,000 ms. */
  retryMs?: number
  /** Longest wait for the last deliveries after the replay's last first transmission. Default 20,000 ms. */
  drainMs?: number
  /** Cache folder. Default bench/.cache. */
  cacheDir?: string
  /** Longest wait for a child process to start. Default 60,000 ms. */
  startTimeoutMs?: number
  /**
   * Longest wait for a child's counters. Default 120,000 ms: on a crowded machine a server
   * may still be busy with a backlog of batches when asked.
   */
  reportTimeoutMs?: number
}

/** What {@link runEndToEnd} measured. */
export interface EndToEndResult {
  /** Messages replayed (distinct client ids). */
  messages: number
  /** True when the load came from the cache, false when it was generated in this run. */
  cacheHit: boolean
  /** Milliseconds spent generating the load (0 on a cache hit). */
  generateMs: number
  /** First transmissions per second actually offered (all replayers). */
  offeredPerSecond: number
  /** Seconds of offered traffic. */
  offeredSeconds: number
  /** Datagrams the broker received per second over the offered window. */
  brokerIngestPerSecond: number
  /** Datagrams sent by the replayers and never received by the broker, in percent. */
  udpLossPercent: number
  /** Datagrams the (surviving) broker sent to the replayers and they never received, in percent. */
  replyLossPercent: number
  /** Kernel receive buffer granted to the broker's socket, in bytes. */
  brokerRecvBufferBytes: number
  /** Per server: distinct messages delivered, per second from the first transmission to its last delivery. */
  perServer: {
    delivered: number
    deliveredPerSecond: number
    deliveredTwice: number
    wrongPayload: number
    lost: number
    /** Lowest and highest deliveries in a whole second of the offered window. */
    minDeliveredInASecond: number
    maxDeliveredInASecond: number
  }[]
  /** Messages with a verified delivery certificate at their replayer. */
  certified: number
  /** First transmission → verified delivery certificate, in ms. */
  latencyMs: { p50: number; p99: number; max: number }
  /** Retransmissions by the replayers. */
  retransmissions: number
  /** Times an id moved to the next broker. */
  failovers: number
  /** Brokers run, and whether the first was killed mid-stream. */
  brokers: number
  /** See `brokers`. */
  brokerKilled: boolean
  /** BLS shares sent by the replayers, and BLS signatures they computed. */
  shares: number
  /** See `shares`. */
  blsSignatures: number
  /** Inclusion proofs or certificates the replayers refused. */
  refused: number
  /** Broker counters at the end. */
  broker: Record<string, number>
  /**
   * CPU milliseconds from the start of the replay to the end: the reported broker process
   * (all threads) and its main thread alone, the servers and the replayers (summed).
   */
  cpuMs: { broker: number; brokerMain: number; servers: number; replayers: number }
  /** Wall-clock seconds from the first transmission to the end of collection. */
  seconds: number
}

interface Child<In, Out extends { type: string }> {
  proc: ChildProcess
  send: (m: In) => void
  next: <T extends Out['type']>(type: T, timeoutMs: number) => Promise<Extract<Out, { type: T }>>
  on: (fn: (m: Out) => void) => void
}

function spawnChild<In, Out extends { type: string }>(script: string): Child<In, Out> {
  const proc = fork(join(here, script), [], {
    execPath: process.execPath,
    // The parent's flags (e.g. a test runner's) are not for the children.
    execArgv: process.env.LOADGEN_PROFILE_DIR
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.LOADGEN_PROFILE_DIR}`]
      : [],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const listeners: ((m: Out) => void)[] = []
  proc.on('message', (m: Out) => {
    for (const l of [...listeners]) l(m)
  })
  return {
    proc,
    send: (m) => proc.send(m as object),
    on: (fn) => listeners.push(fn),
    next: (type, timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          cleanup()
          reject(new TimeoutError(`${script} did not answer "${type}" in ${timeoutMs} ms`))
        }, timeoutMs)
        const onExit = (code: number | null) => {
          cleanup()
          reject(new Error(`${script} exited (code ${code}) before answering "${type}"`))
        }
        const fn = (m: Out) => {
          if (m.type !== type) return
          cleanup()
          resolve(m as Extract<Out, { type: typeof type }>)
        }
        const cleanup = () => {
          clearTimeout(timer)
          proc.off('exit', onExit)
          listeners.splice(listeners.indexOf(fn), 1)
        }
        listeners.push(fn)
        proc.once('exit', onExit)
      }),
  }
}

/** Sums per-100 ms delivery buckets into whole seconds from `start`, over `seconds` seconds. */
function perSecond(buckets: [number, number][], start: number, seconds: number): number[] {
  const out = new Array<number>(Math.max(1, Math.floor(seconds))).fill(0)
  for (const [b, n] of buckets) {
    const s = Math.floor((b * 100 - start) / 1000)
    if (s >= 0 && s < out.length) out[s] += n
  }
  return out
}

/**
 * Runs one end-to-end replay; every child process is ended before it returns. With
 * LOADGEN_PROFILE_DIR set, the children write CPU profiles there (`--cpu-prof`).
 */
export async function runEndToEnd(opts: EndToEndOptions): Promise<EndToEndResult> {
  const { spec } = opts
  const parts = Math.min(opts.loadProcesses ?? 2, spec.clients)
  const serverCount = opts.servers ?? 4
  const startTimeout = opts.startTimeoutMs ?? 60_000
  const reportTimeout = opts.reportTimeoutMs ?? 120_000
  const cacheDir = opts.cacheDir ?? LOAD_CACHE_DIR
  const g0 = performance.now()
  const { load, regenerated } = loadOrGenerate(spec, cacheDir)
  const generateMs = regenerated === undefined ? 0 : performance.now() - g0
  const context: LoadContext = {
    spec,
    registrations: load.registrations,
    limits: { maxBatchEntries: opts.maxBatchEntries ?? 65_536 },
    serverKeys: Array.from(
      { length: serverCount },
      (_, i) => deriveServerKey(spec.seed, i).publicKey,
    ),
  }
  const settings: BrokerSettings = {
    flushTimeoutMs: 250,
    shareTimeoutMs: 500,
    authThreads: 2,
    maxInFlightBatches: 4,
    recvBufferBytes: 8 * 1024 * 1024,
    deferAuthentication: true,
    udpThreads: 1,
    deferBase: 4096,
    ...opts.broker,
  }
  const brokerCount = opts.brokers ?? 1
  const children: ChildProcess[] = []
  try {
    const servers = Array.from({ length: serverCount }, () =>
      spawnChild<ToServer, FromServer>('server-process.ts'),
    )
    children.push(...servers.map((s) => s.proc))
    const ports = await Promise.all(
      servers.map(async (s, index) => {
        const ready = s.next('ready', startTimeout)
        s.send({ type: 'init', context, index })
        return (await ready).port
      }),
    )
    const sequencer = new SingleSequencer()
    sequencer.subscribe((slot, reference) => {
      for (const s of servers) s.send({ type: 'ordered', slot, reference })
    })
    const brokers = Array.from({ length: brokerCount }, () =>
      spawnChild<ToBroker, FromBroker>('broker-process.ts'),
    )
    children.push(...brokers.map((b) => b.proc))
    const readies = await Promise.all(
      brokers.map(async (b) => {
        b.on((m) => {
          if (m.type === 'propose') sequencer.propose(m.reference)
        })
        const ready = b.next('ready', startTimeout)
        b.send({ type: 'init', context, serverPorts: ports, settings })
        return ready
      }),
    )
    const addresses = readies.map((r) => r.address)
    const { recvBufferBytes } = readies[0]
    // The broker whose counters are reported: the first, or the next when the first is killed.
    const killed = opts.killBrokerAfterMs !== undefined && brokerCount > 1
    const broker = killed ? brokers[1] : brokers[0]

    const replayers = Array.from({ length: parts }, () =>
      spawnChild<ToReplay, FromReplay>('replay-process.ts'),
    )
    children.push(...replayers.map((r) => r.proc))
    await Promise.all(
      replayers.map(async (r, part) => {
        const ready = r.next('ready', startTimeout)
        r.send({
          type: 'init',
          context,
          cacheDir,
          part,
          parts,
          broker: addresses[0],
          otherBrokers: addresses.slice(1),
          ratePerSecond: opts.ratePerSecond / parts,
          retryMs: opts.retryMs ?? 5000,
        })
        await ready
      }),
    )

    const offeredMs = (spec.clients / opts.ratePerSecond) * 1000
    const drainMs = opts.drainMs ?? 20_000
    const startAt = epochNow() + 250
    for (const s of servers) s.send({ type: 'mark' })
    for (const b of brokers) b.send({ type: 'mark' })
    const done = replayers.map((r) => r.next('done', 250 + offeredMs + drainMs).catch(() => {}))
    for (const r of replayers) r.send({ type: 'start', at: startAt })
    if (killed) {
      setTimeout(
        () => brokers[0].proc.kill('SIGKILL'),
        Math.max(0, startAt + opts.killBrokerAfterMs! - epochNow()),
      )
    }
    // The broker's counters at the end of the offered window give its ingest rate.
    await new Promise((r) => setTimeout(r, Math.max(0, startAt + offeredMs - epochNow())))
    const atWindow = broker.next('report', reportTimeout)
    broker.send({ type: 'report' })
    const windowReport: BrokerReport = (await atWindow).report
    await Promise.all(done)
    // The last shards may still be on their way to the slowest servers.
    await new Promise((r) => setTimeout(r, 200))

    const ask = async <In, Out extends { type: string; report?: unknown }>(
      c: Child<In, Out>,
    ): Promise<Extract<Out, { type: 'report' }>> => {
      const reply = c.next('report', reportTimeout)
      c.send({ type: 'report' } as In)
      return reply
    }
    // Replayers stop first, so nothing more reaches the broker (its received count is then
    // final) and no retransmission keeps the others busy while they are asked.
    await Promise.all(
      replayers.map(async (r) => {
        const stopped = r.next('stopped', reportTimeout)
        r.send({ type: 'stop' })
        await stopped
      }),
    )
    const finalBroker: BrokerReport = (await ask(broker)).report
    const serverReports: ServerReport[] = await Promise.all(
      servers.map(async (s) => (await ask(s)).report),
    )
    const replayReports: ReplayReport[] = await Promise.all(
      replayers.map(async (r) => (await ask(r)).report),
    )
    const end = epochNow()

    const firstSend = Math.min(...replayReports.map((r) => r.firstSendAt))
    const lastSend = Math.max(...replayReports.map((r) => r.lastSendAt))
    const submitted = replayReports.reduce((a, r) => a + r.submitted, 0)
    const datagramsSent = replayReports.reduce((a, r) => a + r.datagramsSent, 0)
    const offeredSeconds = Math.max(0.001, (lastSend - firstSend) / 1000)
    const windowSeconds = Math.max(0.001, (windowReport.at - firstSend) / 1000)
    const latencies = distribution(
      Float64Array.from(replayReports.flatMap((r) => Array.from(r.latenciesMs))),
    )
    return {
      messages: spec.clients,
      cacheHit: regenerated === undefined,
      generateMs,
      offeredPerSecond: submitted / offeredSeconds,
      offeredSeconds,
      brokerIngestPerSecond: windowReport.received / windowSeconds,
      // Datagrams sent to a killed broker are lost by design: no loss figure then.
      udpLossPercent: killed
        ? Number.NaN
        : ((datagramsSent - finalBroker.received) / Math.max(1, datagramsSent)) * 100,
      replyLossPercent: killed
        ? Number.NaN
        : ((finalBroker.sent - replayReports.reduce((a, r) => a + r.datagramsReceived, 0)) /
            Math.max(1, finalBroker.sent)) *
          100,
      brokerRecvBufferBytes: recvBufferBytes,
      perServer: serverReports.map((s) => {
        const seconds = perSecond(s.buckets, firstSend, offeredSeconds)
        return {
          delivered: s.delivered,
          deliveredPerSecond: s.delivered / Math.max(0.001, (s.lastDeliveryAt - firstSend) / 1000),
          deliveredTwice: s.deliveredTwice,
          wrongPayload: s.wrongPayload,
          lost: spec.clients - s.delivered,
          minDeliveredInASecond: Math.min(...seconds),
          maxDeliveredInASecond: Math.max(...seconds),
        }
      }),
      certified: replayReports.reduce((a, r) => a + r.delivered, 0),
      latencyMs: { p50: latencies.p50, p99: latencies.p99, max: latencies.max },
      retransmissions: replayReports.reduce((a, r) => a + r.retransmissions, 0),
      failovers: replayReports.reduce((a, r) => a + r.failovers, 0),
      brokers: brokerCount,
      brokerKilled: killed,
      shares: replayReports.reduce((a, r) => a + r.shares, 0),
      blsSignatures: replayReports.reduce((a, r) => a + r.blsSignatures, 0),
      refused: replayReports.reduce((a, r) => a + r.refused, 0),
      broker: finalBroker.counts,
      cpuMs: {
        broker: finalBroker.cpuMs,
        brokerMain: finalBroker.mainCpuMs,
        servers: serverReports.reduce((a, r) => a + r.cpuMs, 0),
        replayers: replayReports.reduce((a, r) => a + r.cpuMs, 0),
      },
      seconds: (end - firstSend) / 1000,
    }
  } finally {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve()
            // Closing the channel lets a child exit by itself (see its 'disconnect' handler);
            // one that does not within 5 s is killed.
            const timer = setTimeout(() => c.kill('SIGKILL'), 5000)
            c.once('exit', () => {
              clearTimeout(timer)
              resolve()
            })
            if (c.connected) c.disconnect()
            else c.kill()
          }),
      ),
    )
  }
}
