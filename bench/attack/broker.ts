/**
 * The broker under attack from outside (issue 11), over real UDP on loopback: 16 honest
 * clients, 4 servers, 1 authentication thread, and per attack a fresh cluster. Honest
 * throughput and latency are measured for a window before the attack and a window during
 * it (same process, same cluster); floods come from a worker thread sending as fast as one
 * core can, from 127.66.0.0/16 (the honest clients are on 127.0.0.1):
 *  - garbage: random bytes;
 *  - bad signatures: well-formed submissions of known client ids with random signatures;
 *  - replays: 500 captured valid SUBMITs (byte for byte what the clients sent) in a loop;
 *  - port rotation: 1,100 source ports each send one bad datagram, then a fresh port floods;
 *  - replay race: an on-path relay resends each client SUBMIT before the client does.
 * Each attack runs with the broker on 1 UDP socket and on 4 (SO_REUSEPORT: the kernel
 * spreads flows over 4 queues, so one flooding flow does not overflow the honest ones'),
 * and with the sockets on the broker's main thread (`udpThreads: 0`) and in a UDP worker
 * thread (`udpThreads: 1`: the thread drops banned sources, holds a budget per source
 * address and prefix, and hands prefixes on round-robin; its per-source counts are printed).
 * Targets: honest throughput during ≥ 50% of before, 0 honest lost, no honest client
 * penalised, flood sources banned within 1 s.
 */
import { availableParallelism, loadavg } from 'node:os'
import { BrokerNode } from '../../src/broker/broker-node.ts'
import { ClientNode } from '../../src/broker/client-node.ts'
import { LocalCluster } from '../../src/broker/local-cluster.ts'
import { ThreadedUdpEndpoint } from '../../src/broker/threaded-udp-endpoint.ts'
import { distribution } from '../../src/common/distribution.ts'
import {
  badlySigned,
  capturedSubmissions,
  Flood,
  type FloodOptions,
  RaceRelay,
} from '../../test/broker/attacker.ts'
import { clientsVia } from '../../test/broker/harness.ts'
import { HonestLoad } from '../../test/broker/honest-load.ts'
import { printTable, type Row, writeResults } from '../report.ts'

const CLIENTS = 16
/** Broker UDP sockets on its port (SO_REUSEPORT), one run each; 1 = a single kernel queue. */
const UDP_SOCKETS = (process.env.BROKER_UDP_SOCKETS ?? '1,4').split(',').map(Number)
/** Where the broker's sockets live, one run each: 0 = its main thread, 1 = a UDP worker thread. */
const UDP_THREADS = (process.env.BROKER_UDP_THREADS ?? '0,1').split(',').map(Number)
const RETRY = { retryMs: 500, maxRetryMs: 2000 }
const WINDOW_MS = Number(process.env.ATTACK_WINDOW_MS ?? 3000)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const enc = (s: string) => new TextEncoder().encode(s)

type AttackName = 'garbage' | 'bad signatures' | 'replays' | 'port rotation' | 'replay race'

interface Window {
  throughput: number
  p50: number
  p99: number
  messages: number
}

/** Honest receipts that arrived in [from, to): throughput and latency. */
function window(load: HonestLoad, from: number, to: number): Window {
  const inside = load.receipts.filter((r) => r.at >= from && r.at < to)
  const d = distribution(inside.map((r) => r.latencyMs))
  return {
    throughput: inside.length / ((to - from) / 1000),
    p50: d.p50,
    p99: d.p99,
    messages: inside.length,
  }
}

async function run(attack: AttackName, sockets: number, udpThreads: number) {
  // Servers from LocalCluster; the broker and clients by hand, to choose the broker's sockets.
  const servers = await LocalCluster.start({ clients: CLIENTS, withBroker: false })
  const broker = await BrokerNode.start({
    directory: servers.directory,
    serverAddresses: servers.servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    serverKeys: servers.serverKeys,
    orderer: servers.orderer,
    flushTimeoutMs: 20,
    shareTimeoutMs: 300,
    authThreads: 1,
    udp: { recvBufferSize: 4 * 1024 * 1024, sockets },
    udpThreads,
  })
  const clients = await Promise.all(
    servers.clientKeys.map((k, id) =>
      ClientNode.start({
        id,
        ...k,
        broker: broker.address,
        serverKeys: servers.serverKeys,
        ...RETRY,
      }),
    ),
  )
  const cluster = Object.assign(Object.create(servers) as LocalCluster, { broker, clients })
  const closers: (() => Promise<unknown>)[] = [
    () => servers.close(),
    () => broker.close(),
    () => Promise.all(clients.map((c) => c.close())),
  ]
  let view: LocalCluster = cluster
  let relay: RaceRelay | undefined
  if (attack === 'replay race') {
    relay = await RaceRelay.start(broker.address, '127.66.0.5')
    relay.racing = false
    closers.push(() => relay!.close())
    const raced = await clientsVia(cluster, relay.address, RETRY, closers)
    view = Object.assign(Object.create(cluster) as LocalCluster, { clients: raced })
  }
  // Messages the clients send first, so a replay attacker has real ones to capture.
  const first = view.clients.map((_, id) => [enc(`first-${id}`)])
  await Promise.all(view.clients.map((c, id) => c.submit(first[id][0])))
  const load = HonestLoad.start(view, 'm')
  await load.more(4 * CLIENTS) // warmed up
  const t0 = performance.now()
  await sleep(WINDOW_MS)
  const t1 = performance.now()

  const host = '127.66.0.1'
  let bannedAt: number | undefined
  broker.core.on('banned', (e) => {
    if (e.source.startsWith('127.66.')) bannedAt ??= performance.now()
  })
  const flood = (opts: Omit<FloodOptions, 'host' | 'target'>) =>
    Flood.start({ host, target: broker.address, ...opts })
  const floods: Flood[] = []
  const attackStart = performance.now()
  if (attack === 'garbage') floods.push(await flood({ frames: 'random' }))
  if (attack === 'bad signatures') floods.push(await flood({ frames: badlySigned(CLIENTS, 8192) }))
  if (attack === 'replays') {
    // 500 captured submissions: the clients' first messages and what they sent since.
    const captured = capturedSubmissions(view, first)
    const done = load.submitted.slice(0, 500 - captured.length)
    const byClient = view.clients.map((_, id) => [
      first[id][0],
      ...done.filter((k) => k.startsWith(`${id}:`)).map((k) => enc(k.slice(k.indexOf(':') + 1))),
    ])
    floods.push(await flood({ frames: capturedSubmissions(view, byClient).slice(0, 500) }))
  }
  if (attack === 'port rotation') {
    const rotation = await flood({ frames: [new Uint8Array([0x42, 0])], sockets: 1100, max: 1100 })
    await rotation.finished()
    floods.push(rotation, await flood({ frames: 'random' }))
  }
  if (relay !== undefined) relay.racing = true
  const t2 = performance.now()
  const threadBusyFrom =
    broker.udp instanceof ThreadedUdpEndpoint ? broker.udp.utilization() : undefined
  await sleep(WINDOW_MS)
  const t3 = performance.now()
  const threadBusy =
    broker.udp instanceof ThreadedUdpEndpoint
      ? broker.udp.utilization(threadBusyFrom).reduce((n, u) => n + u.utilization, 0)
      : undefined
  let floodSent = 0
  for (const f of floods) floodSent += await f.stop()
  await load.stop()
  await load.settled(30_000)

  const before = window(load, t0, t1)
  const during = window(load, t2, t3)
  const stats = broker.core.stats()
  const counts = broker.core.counts()
  const attacker = relay === undefined ? host : '127.66.0.5'
  const thread = broker.udp instanceof ThreadedUdpEndpoint ? broker.udp : undefined
  const threadAttacker = thread?.countsOf(attacker)
  const threadHonest = thread?.countsOf('127.0.0.1')
  const honestPenalised =
    Object.keys(stats.invalidByPeer).filter((p) => p.startsWith('127.0.0.1:')).length +
    (broker.core.penaltiesOf('127.0.0.1') > 0 ? 1 : 0)
  const result = {
    attack,
    brokerUdpSockets: sockets,
    brokerUdpThreads: udpThreads,
    honestThroughputBefore_msgPerS: Math.round(before.throughput),
    honestThroughputDuring_msgPerS: Math.round(during.throughput),
    honestThroughputRatio: Number((during.throughput / before.throughput).toFixed(2)),
    honestP50Before_ms: Math.round(before.p50),
    honestP99Before_ms: Math.round(before.p99),
    honestP50During_ms: Math.round(during.p50),
    honestP99During_ms: Math.round(during.p99),
    honestLost: load.lost(),
    honestPenalised,
    // From the first datagram the worker sent (the worker's start-up is not counted).
    timeToBan_ms:
      bannedAt === undefined ? -1 : Math.max(0, Math.round(bannedAt - floods[0].startedAt)),
    attackDatagrams: floodSent,
    attackRate_perS: Math.round(floodSent / ((t3 - attackStart) / 1000)),
    droppedUnread: counts.banned,
    replaysPenalised: counts.replays,
    copiesWithoutAuth: counts.copies,
    authQueueFullKnown: counts.authQueueFullKnown,
    authQueueFull: counts.authQueueFull,
    answersToAttacker: relay?.answersToAttacker ?? 0,
    udpOverflow: counts.udpOverflow,
    udpOverflowBySource: broker.core.overflowBySource(),
    // With a UDP thread: what it did with the attacker's and the honest clients' datagrams.
    threadForwardedFromAttacker: threadAttacker?.forwarded ?? -1,
    threadDroppedBannedFromAttacker: threadAttacker?.banned ?? -1,
    threadOverBudgetFromAttacker: threadAttacker?.overBudget ?? -1,
    threadOverBudgetFromHonest: threadHonest?.overBudget ?? -1,
    // The UDP thread's event loop busy share during the attack window (1 = a whole core).
    threadBusyDuring: threadBusy === undefined ? -1 : Number(threadBusy.toFixed(2)),
    loadAverage1m: Number(loadavg()[0].toFixed(1)),
  }
  for (const c of closers.reverse()) await c()
  return result
}

const attacks: AttackName[] = [
  'garbage',
  'bad signatures',
  'replays',
  'port rotation',
  'replay race',
]
const only = process.argv[2] as AttackName | undefined
const results = []
for (const udpThreads of UDP_THREADS) {
  for (const sockets of UDP_SOCKETS) {
    for (const attack of only === undefined ? attacks : [only]) {
      console.log(`attack: ${attack}, ${sockets} broker socket(s), ${udpThreads} UDP thread(s)...`)
      results.push(await run(attack, sockets, udpThreads))
    }
  }
}

const rows: Row[] = results.map((r) => ({
  attack: r.attack,
  sockets: r.brokerUdpSockets,
  'sockets on': r.brokerUdpThreads === 0 ? 'main thread' : `${r.brokerUdpThreads} UDP thread`,
  'msg/s before': r.honestThroughputBefore_msgPerS,
  'msg/s during': r.honestThroughputDuring_msgPerS,
  ratio: r.honestThroughputRatio,
  'p50/p99 before ms': `${r.honestP50Before_ms} / ${r.honestP99Before_ms}`,
  'p50/p99 during ms': `${r.honestP50During_ms} / ${r.honestP99During_ms}`,
  'honest lost': r.honestLost,
  'honest penalised': r.honestPenalised,
  'ban after ms': r.timeToBan_ms < 0 ? 'not banned' : r.timeToBan_ms,
  'attack datagrams/s': r.attackRate_perS,
  'queue overflow (honest)': `${r.udpOverflow} (${r.udpOverflowBySource['127.0.0.1'] ?? 0})`,
  'thread: attacker fwd / banned drops':
    r.brokerUdpThreads === 0
      ? '-'
      : `${r.threadForwardedFromAttacker} / ${r.threadDroppedBannedFromAttacker}`,
  'thread busy during': r.brokerUdpThreads === 0 ? '-' : r.threadBusyDuring,
  load: r.loadAverage1m,
}))
printTable(
  `Broker under attack: ${CLIENTS} honest clients, 4 servers, 1 auth thread, ${WINDOW_MS} ms windows (targets: ratio ≥ 0.5, 0 lost, 0 penalised, ban ≤ 1,000 ms)`,
  rows,
)
writeResults('attack-broker', {
  setup: {
    honestClients: CLIENTS,
    servers: 4,
    authThreads: 1,
    windowMs: WINDOW_MS,
    cpus: availableParallelism(),
    loadAverage1m: loadavg()[0],
    udpThreads: UDP_THREADS,
  },
  attacks: results,
})
