/**
 * Chop Chop end to end with the clients off the critical path (issue 14): the broker(s) and
 * 4 witness servers run as separate processes, and load processes replay pre-computed
 * submissions (cached under bench/.cache) over UDP at a set rate, answering inclusion
 * proofs with real BLS shares. Side by side, in the same run, on the same load:
 *  - deferred authentication (the default: only stragglers' ed25519 signatures checked),
 *    the broker's UDP sockets in a worker thread (`udpThreads: 1`) and, as by default, on
 *    the main thread;
 *  - the one-by-one path (every submission's signature checked before pooling);
 *  - two brokers, deferred, the first killed (SIGKILL) mid-stream: replayers move to the
 *    second on their first retransmission; must lose nothing and deliver nothing twice;
 *  - and the old baseline: 512 live clients signing on this machine, all in one process.
 *
 * usage: npm run bench -- broker-e2e [--rate N] [--seconds S] [--loaders P] [--key-sets K]
 *   [--flush-ms F] [--share-timeout-ms T] [--drain-ms D] [--retry-ms R] [--kill-at-ms M]
 *   [--paths deferred,deferred-main-thread,one-by-one,two-brokers,live] [--udp-threads U]
 *   [--defer-base B]
 *   defaults: the seed's target, 65,536 messages/s for 10 s, 2 load processes, 16 key sets
 *   (ids share key sets: the broker and servers do the same work for any number, but each
 *   load process signs one BLS share per key set per batch root, which must stay well
 *   inside the broker's share timeout or the load generator itself makes stragglers); the
 *   first broker is killed halfway through the offered window.
 */
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { runBrokerDemo } from '../src/broker/demo-run.ts'
import { type EndToEndResult, runEndToEnd } from './load/e2e-run.ts'
import { printTable, type Row, writeResults } from './report.ts'

const TARGET_DELIVERED = 65_536
const TARGET_INGEST = 84_000
const TARGET_LOSS = 1

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: String(TARGET_DELIVERED) },
    seconds: { type: 'string', default: '10' },
    loaders: { type: 'string', default: '2' },
    'key-sets': { type: 'string', default: '16' },
    'flush-ms': { type: 'string', default: '250' },
    'share-timeout-ms': { type: 'string', default: '500' },
    'drain-ms': { type: 'string', default: '20000' },
    'retry-ms': { type: 'string', default: '5000' },
    'kill-at-ms': { type: 'string' },
    paths: {
      type: 'string',
      default: 'deferred,deferred-main-thread,one-by-one,two-brokers,live',
    },
    'udp-threads': { type: 'string', default: '1' },
    'defer-base': { type: 'string', default: '65536' },
  },
})
const rate = Number(values.rate)
const seconds = Number(values.seconds)
const loaders = Number(values.loaders)
const keySets = Number(values['key-sets'])
const flushTimeoutMs = Number(values['flush-ms'])
const shareTimeoutMs = Number(values['share-timeout-ms'])
const drainMs = Number(values['drain-ms'])
const retryMs = Number(values['retry-ms'])
const killAtMs = Number(values['kill-at-ms'] ?? (seconds * 1000) / 2)
const paths = new Set(values.paths.split(','))
const udpThreads = Number(values['udp-threads'])
// The replayers send every id from one address (one /24 prefix), where the ids stand for
// clients spread over many prefixes: the prefix gets a whole batch of unchecked entries, as
// a prefix in a steady state that proved as many before (the broker's default is 4,096).
const deferBase = Number(values['defer-base'])
const load = loadavg()
console.log(
  `machine: ${cpus().length} cores, Node ${process.version}, load average ${load
    .map((l) => l.toFixed(2))
    .join(' ')} (other work on the machine lowers every figure)`,
)
const clients = Math.round(rate * seconds)
console.log(
  `pre-generated load: ${clients.toLocaleString('en-US')} client ids × 1 message, ${rate.toLocaleString('en-US')}/s for ${seconds} s from ${loaders} process(es), ${keySets} key sets; broker flush ${flushTimeoutMs} ms, share timeout ${shareTimeoutMs} ms, 2 auth threads, deferral allowance of the replayers' prefix ${deferBase.toLocaleString('en-US')}; replayer retry ${retryMs} ms; a message not delivered ${drainMs} ms after the last submission counts as lost; two-broker run: the first broker killed ${killAtMs} ms after the start`,
)

interface Run {
  column: string
  e2e: EndToEndResult
}
const runs: Run[] = []
const failures: { column: string; error: string }[] = []
const threads = `${udpThreads} UDP thread${udpThreads === 1 ? '' : 's'}`
const configs = [
  {
    path: 'deferred',
    column: `deferred, 1 broker, ${threads}`,
    brokers: 1,
    defer: true,
    udpThreads,
  },
  {
    path: 'deferred-main-thread',
    column: 'deferred, 1 broker, sockets on the main thread (before)',
    brokers: 1,
    defer: true,
    udpThreads: 0,
  },
  {
    path: 'one-by-one',
    column: `one by one, 1 broker, ${threads}`,
    brokers: 1,
    defer: false,
    udpThreads,
  },
  {
    path: 'two-brokers',
    column: `deferred, 2 brokers, 1st killed at ${(killAtMs / 1000).toFixed(1)} s, ${threads}`,
    brokers: 2,
    defer: true,
    udpThreads,
  },
]
for (const c of configs) {
  if (!paths.has(c.path)) continue
  console.log(`${c.column}...`)
  const attempt = runEndToEnd({
    spec: { seed: 'broker-e2e', clients, keySets, payloadBytes: 8 },
    ratePerSecond: rate,
    loadProcesses: loaders,
    broker: {
      flushTimeoutMs,
      shareTimeoutMs,
      deferAuthentication: c.defer,
      udpThreads: c.udpThreads,
      deferBase,
    },
    brokers: c.brokers,
    killBrokerAfterMs: c.brokers > 1 ? killAtMs : undefined,
    retryMs,
    drainMs,
  })
  // A path the machine cannot carry (its servers still busy when asked for their counts)
  // is reported as such; the other paths still print.
  const e2e = await attempt.catch((err: Error) => {
    failures.push({ column: c.column, error: err.message })
    console.log(`${c.column}: did not finish: ${err.message}`)
    return undefined
  })
  if (e2e === undefined) continue
  if (!e2e.cacheHit)
    console.log(`load generated and cached in ${(e2e.generateMs / 1000).toFixed(1)} s`)
  runs.push({ column: c.column, e2e })
}
let base: Awaited<ReturnType<typeof runBrokerDemo>> | undefined
if (paths.has('live')) {
  console.log('baseline: 512 live clients × 8 messages, one process...')
  base = await runBrokerDemo({ clients: 512, messages: 8 })
}
const loadAfter = loadavg()

type PerServer = EndToEndResult['perServer'][number]
const minServer = (e: EndToEndResult, f: (s: PerServer) => number) =>
  Math.min(...e.perServer.map(f))
const maxServer = (e: EndToEndResult, f: (s: PerServer) => number) =>
  Math.max(...e.perServer.map(f))
const delivered = (e: EndToEndResult) => minServer(e, (s) => s.delivered)
const pct = (v: number) => (Number.isNaN(v) ? 'n/a (a broker was killed)' : `${v.toFixed(2)}%`)
const LIVE = 'one by one (512 live clients)'

/** One figure: a cell per pre-generated run, the live baseline's, the target. */
function row(
  figure: string,
  cell: (e: EndToEndResult) => string | number,
  live: string | number,
  target: string | number,
): Row {
  const r: Row = { figure }
  for (const run of runs) r[run.column] = cell(run.e2e)
  if (base !== undefined) r[LIVE] = live
  r.target = target
  return r
}
const b = base
const rows: Row[] = [
  row('messages offered', (e) => e.messages, b?.submitted ?? '', ''),
  row('offered messages/s', (e) => Math.round(e.offeredPerSecond), '(closed loop)', ''),
  row(
    'broker ingest packets/s (submissions + shares, offered window; the surviving broker)',
    (e) => Math.round(e.brokerIngestPerSecond),
    '',
    `>= ${TARGET_INGEST.toLocaleString('en-US')}`,
  ),
  row('UDP loss, replayers → broker', (e) => pct(e.udpLossPercent), '', `< ${TARGET_LOSS}%`),
  row(
    'UDP loss, broker → replayers (proofs, certificates)',
    (e) => pct(e.replyLossPercent),
    '',
    '',
  ),
  row(
    'broker received: submissions / shares (the surviving broker)',
    (e) =>
      `${(e.broker.submissionsReceived ?? 0).toLocaleString('en-US')} / ${(e.broker.sharesReceived ?? 0).toLocaleString('en-US')}`,
    '',
    '',
  ),
  row(
    'submissions checked one by one / pooled unchecked',
    (e) => `${e.broker.authenticated} / ${e.broker.deferred}`,
    '',
    '',
  ),
  row(
    'messages/s delivered at every server (min)',
    (e) => Math.round(minServer(e, (s) => s.deliveredPerSecond)),
    b === undefined ? '' : Math.round(b.throughput),
    `>= ${TARGET_DELIVERED.toLocaleString('en-US')}`,
  ),
  row(
    'fewest delivered in one second of the window (min server)',
    (e) => minServer(e, (s) => s.minDeliveredInASecond),
    '',
    `>= ${TARGET_DELIVERED.toLocaleString('en-US')} for 10 s`,
  ),
  row('lost (any server)', (e) => maxServer(e, (s) => s.lost), b?.lost ?? '', 0),
  row(
    'delivered twice (any server)',
    (e) => maxServer(e, (s) => s.deliveredTwice),
    b?.duplicates ?? '',
    0,
  ),
  row(
    'p50 latency ms (submit → delivery certificate)',
    (e) => Math.round(e.latencyMs.p50),
    b === undefined ? '' : Math.round(b.latencyMs.p50),
    '',
  ),
  row(
    'p99 latency ms',
    (e) => Math.round(e.latencyMs.p99),
    b === undefined ? '' : Math.round(b.latencyMs.p99),
    '',
  ),
  row(
    'CPU ms per 1,000 delivered: broker process / its main thread / 4 servers / replayers',
    (e) => {
      const per = (ms: number) => ((ms / Math.max(1, delivered(e))) * 1000).toFixed(0)
      return `${per(e.cpuMs.broker)} / ${per(e.cpuMs.brokerMain)} / ${per(e.cpuMs.servers)} / ${per(e.cpuMs.replayers)}`
    },
    '',
    '',
  ),
  row(
    'CPU-bound estimate, messages/s: broker + servers on 2 idle cores / broker main thread alone',
    (e) => {
      const per = (ms: number) => ms / Math.max(1, delivered(e))
      const both = (2 * 1000) / per(e.cpuMs.broker + e.cpuMs.servers)
      const main = 1000 / per(e.cpuMs.brokerMain)
      return `${Math.round(both).toLocaleString('en-US')} / ${Math.round(main).toLocaleString('en-US')}`
    },
    '',
    '',
  ),
  row('retransmissions', (e) => e.retransmissions, b?.retransmissions ?? '', ''),
  row('moves to the next broker', (e) => e.failovers, '', ''),
  row(
    'batches / stragglers (reported broker)',
    (e) => `${e.broker.batches} / ${e.broker.stragglers}`,
    b === undefined ? '' : `${b.batches} / ${b.stragglers}`,
    '',
  ),
]
printTable(
  `Chop Chop end to end, broker(s) + 4 servers as separate processes (${cpus().length} cores shared; load average ${load[0].toFixed(2)} before, ${loadAfter[0].toFixed(2)} after)`,
  rows,
)
for (const { column, e2e } of runs) {
  console.log(
    `${column}: ${e2e.shares.toLocaleString('en-US')} BLS shares sent, ${e2e.blsSignatures.toLocaleString('en-US')} BLS signatures computed by the replayers, ${e2e.refused} proofs/certificates refused; broker socket buffer ${e2e.brokerRecvBufferBytes.toLocaleString('en-US')} B`,
  )
}
for (const f of failures) console.log(`${f.column}: DID NOT FINISH (${f.error})`)
const verdicts = runs.map(({ column, e2e }) => {
  const delivered = minServer(e2e, (s) => s.deliveredPerSecond)
  const exact = maxServer(e2e, (s) => s.lost) === 0 && maxServer(e2e, (s) => s.deliveredTwice) === 0
  const rateMet = delivered >= TARGET_DELIVERED && exact
  const ingestMet = e2e.brokerIngestPerSecond >= TARGET_INGEST && e2e.udpLossPercent < TARGET_LOSS
  console.log(
    `${column}: exactly once ${exact ? 'YES' : 'NO'}; delivery target ${rateMet ? 'MET' : 'NOT met'}; ingest target ${ingestMet ? 'MET' : 'NOT met'}`,
  )
  return { column, exactlyOnce: exact, deliveryTargetMet: rateMet, ingestTargetMet: ingestMet }
})
writeResults('broker-e2e', {
  cores: cpus().length,
  loadAverageBefore: load,
  loadAverageAfter: loadAfter,
  settings: {
    ratePerSecond: rate,
    seconds,
    loadProcesses: loaders,
    keySets,
    payloadBytes: 8,
    flushTimeoutMs,
    shareTimeoutMs,
    udpThreads,
    deferBase,
    retryMs,
    drainMs,
    killFirstBrokerAtMs: killAtMs,
  },
  preGenerated: runs.map(({ column, e2e }) => ({
    column,
    brokers: e2e.brokers,
    brokerKilled: e2e.brokerKilled,
    messages: e2e.messages,
    cacheHit: e2e.cacheHit,
    offeredMessagesPerSecond: e2e.offeredPerSecond,
    offeredSeconds: e2e.offeredSeconds,
    brokerIngestPacketsPerSecond: e2e.brokerIngestPerSecond,
    udpLossPercent: Number.isNaN(e2e.udpLossPercent) ? null : e2e.udpLossPercent,
    replyUdpLossPercent: Number.isNaN(e2e.replyLossPercent) ? null : e2e.replyLossPercent,
    deliveredMessagesPerSecondMinServer: minServer(e2e, (s) => s.deliveredPerSecond),
    perServer: e2e.perServer.map((s) => ({
      deliveredMessages: s.delivered,
      deliveredMessagesPerSecond: s.deliveredPerSecond,
      minDeliveredMessagesInASecond: s.minDeliveredInASecond,
      maxDeliveredMessagesInASecond: s.maxDeliveredInASecond,
      lostMessages: s.lost,
      deliveredTwiceMessages: s.deliveredTwice,
      wrongPayloadMessages: s.wrongPayload,
    })),
    certifiedMessages: e2e.certified,
    latencyP50Ms: e2e.latencyMs.p50,
    latencyP99Ms: e2e.latencyMs.p99,
    latencyMaxMs: e2e.latencyMs.max,
    retransmissions: e2e.retransmissions,
    brokerFailovers: e2e.failovers,
    sharesSent: e2e.shares,
    blsSignaturesComputed: e2e.blsSignatures,
    refusedProofsOrCertificates: e2e.refused,
    brokerCounters: e2e.broker,
    cpuMsFromStart: e2e.cpuMs,
    wallSeconds: e2e.seconds,
  })),
  oneByOneLiveBaseline:
    base === undefined
      ? null
      : {
          clients: 512,
          messages: base.submitted,
          deliveredMessagesPerSecond: base.throughput,
          lostMessages: base.lost,
          deliveredTwiceMessages: base.duplicates,
          latencyP50Ms: base.latencyMs.p50,
          latencyP99Ms: base.latencyMs.p99,
          retransmissions: base.retransmissions,
          batches: base.batches,
          stragglers: base.stragglers,
        },
  targets: {
    deliveredMessagesPerSecond: TARGET_DELIVERED,
    brokerIngestPacketsPerSecond: TARGET_INGEST,
    udpLossPercentBelow: TARGET_LOSS,
  },
  verdicts,
  unfinished: failures,
})
process.exit(0)
