/**
 * Chop Chop end to end with the clients off the critical path (issue 14, part 1): the
 * broker and 4 witness servers run as separate processes, and load processes replay
 * pre-computed submissions (cached under bench/.cache) over UDP at a set rate, answering
 * inclusion proofs with real BLS shares. Beside it, in the same run, the old path: 512 live
 * clients signing on this machine, everything in one process (bench/broker.ts's row 5).
 *
 * usage: npm run bench -- broker-e2e [--rate N] [--seconds S] [--loaders P] [--key-sets K]
 *   [--flush-ms F] [--share-timeout-ms T] [--drain-ms D]
 *   defaults: the seed's target, 65,536 messages/s for 10 s, 2 load processes, 16 key sets
 *   (ids share key sets: the broker and servers do the same work for any number, but each
 *   load process signs one BLS share per key set per batch root, which must stay well
 *   inside the broker's share timeout or the load generator itself makes stragglers).
 */
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { runBrokerDemo } from '../src/broker/demo-run.ts'
import { runEndToEnd } from './load/e2e-run.ts'
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
  },
})
const rate = Number(values.rate)
const seconds = Number(values.seconds)
const loaders = Number(values.loaders)
const keySets = Number(values['key-sets'])
const flushTimeoutMs = Number(values['flush-ms'])
const shareTimeoutMs = Number(values['share-timeout-ms'])
const drainMs = Number(values['drain-ms'])
const load = loadavg()
console.log(
  `machine: ${cpus().length} cores, Node ${process.version}, load average ${load
    .map((l) => l.toFixed(2))
    .join(' ')} (other work on the machine lowers every figure)`,
)
const clients = Math.round(rate * seconds)
console.log(
  `pre-generated load: ${clients.toLocaleString('en-US')} client ids × 1 message, ${rate.toLocaleString('en-US')}/s for ${seconds} s from ${loaders} process(es), ${keySets} key sets; broker flush ${flushTimeoutMs} ms, share timeout ${shareTimeoutMs} ms, 2 auth threads; a message not delivered ${drainMs} ms after the last submission counts as lost`,
)
const e2e = await runEndToEnd({
  spec: { seed: 'broker-e2e', clients, keySets, payloadBytes: 8 },
  ratePerSecond: rate,
  loadProcesses: loaders,
  broker: { flushTimeoutMs, shareTimeoutMs },
  drainMs,
})
console.log(
  e2e.cacheHit
    ? 'load read from the cache'
    : `load generated and cached in ${(e2e.generateMs / 1000).toFixed(1)} s`,
)
console.log('baseline: 512 live clients × 8 messages, one process...')
const base = await runBrokerDemo({ clients: 512, messages: 8 })
const loadAfter = loadavg()

const minServer = (f: (s: (typeof e2e.perServer)[number]) => number) =>
  Math.min(...e2e.perServer.map(f))
const maxServer = (f: (s: (typeof e2e.perServer)[number]) => number) =>
  Math.max(...e2e.perServer.map(f))
const delivered = minServer((s) => s.deliveredPerSecond)
const lost = maxServer((s) => s.lost)
const twice = maxServer((s) => s.deliveredTwice)
const pct = (v: number) => `${v.toFixed(2)}%`
const rows: Row[] = [
  {
    figure: 'messages offered',
    'pre-generated load': e2e.messages,
    'one-by-one (live clients)': base.submitted,
    target: '',
  },
  {
    figure: 'offered messages/s',
    'pre-generated load': Math.round(e2e.offeredPerSecond),
    'one-by-one (live clients)': '(closed loop)',
    target: '',
  },
  {
    figure: 'broker ingest packets/s (submissions + shares, offered window)',
    'pre-generated load': Math.round(e2e.brokerIngestPerSecond),
    'one-by-one (live clients)': '',
    target: `>= ${TARGET_INGEST.toLocaleString('en-US')}`,
  },
  {
    figure: 'UDP loss, replayers → broker',
    'pre-generated load': pct(e2e.udpLossPercent),
    'one-by-one (live clients)': '',
    target: `< ${TARGET_LOSS}%`,
  },
  {
    figure: 'messages/s delivered at every server (min)',
    'pre-generated load': Math.round(delivered),
    'one-by-one (live clients)': Math.round(base.throughput),
    target: `>= ${TARGET_DELIVERED.toLocaleString('en-US')}`,
  },
  {
    figure: 'fewest delivered in one second of the window (min server)',
    'pre-generated load': minServer((s) => s.minDeliveredInASecond),
    'one-by-one (live clients)': '',
    target: `>= ${TARGET_DELIVERED.toLocaleString('en-US')} for 10 s`,
  },
  {
    figure: 'lost (any server)',
    'pre-generated load': lost,
    'one-by-one (live clients)': base.lost,
    target: 0,
  },
  {
    figure: 'delivered twice (any server)',
    'pre-generated load': twice,
    'one-by-one (live clients)': base.duplicates,
    target: 0,
  },
  {
    figure: 'p50 latency ms (submit → delivery certificate)',
    'pre-generated load': Math.round(e2e.latencyMs.p50),
    'one-by-one (live clients)': Math.round(base.latencyMs.p50),
    target: '',
  },
  {
    figure: 'p99 latency ms',
    'pre-generated load': Math.round(e2e.latencyMs.p99),
    'one-by-one (live clients)': Math.round(base.latencyMs.p99),
    target: '',
  },
  {
    figure: 'retransmissions',
    'pre-generated load': e2e.retransmissions,
    'one-by-one (live clients)': base.retransmissions,
    target: '',
  },
  {
    figure: 'batches / stragglers',
    'pre-generated load': `${e2e.broker.batches} / ${e2e.broker.stragglers}`,
    'one-by-one (live clients)': `${base.batches} / ${base.stragglers}`,
    target: '',
  },
]
printTable(
  `Chop Chop end to end, broker + 4 servers as separate processes (${cpus().length} cores shared; load average ${load[0].toFixed(2)} before, ${loadAfter[0].toFixed(2)} after)`,
  rows,
)
console.log(
  `replayers: ${e2e.shares.toLocaleString('en-US')} BLS shares sent, ${e2e.blsSignatures.toLocaleString('en-US')} BLS signatures computed (one per key set per root), ${e2e.refused} proofs/certificates refused; broker socket buffer ${e2e.brokerRecvBufferBytes.toLocaleString('en-US')} B`,
)
const met = delivered >= TARGET_DELIVERED && lost === 0 && twice === 0
const ingestMet = e2e.brokerIngestPerSecond >= TARGET_INGEST && e2e.udpLossPercent < TARGET_LOSS
console.log(`targets: delivery ${met ? 'MET' : 'NOT met'}; ingest ${ingestMet ? 'MET' : 'NOT met'}`)
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
    drainMs,
  },
  preGenerated: {
    messages: e2e.messages,
    cacheHit: e2e.cacheHit,
    generateMs: e2e.generateMs,
    offeredMessagesPerSecond: e2e.offeredPerSecond,
    offeredSeconds: e2e.offeredSeconds,
    brokerIngestPacketsPerSecond: e2e.brokerIngestPerSecond,
    udpLossPercent: e2e.udpLossPercent,
    brokerRecvBufferBytes: e2e.brokerRecvBufferBytes,
    deliveredMessagesPerSecondMinServer: delivered,
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
    sharesSent: e2e.shares,
    blsSignaturesComputed: e2e.blsSignatures,
    refusedProofsOrCertificates: e2e.refused,
    brokerCounters: e2e.broker,
    wallSeconds: e2e.seconds,
  },
  oneByOneBaseline: {
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
    deliveryTargetMet: met,
    ingestTargetMet: ingestMet,
  },
})
process.exit(0)
