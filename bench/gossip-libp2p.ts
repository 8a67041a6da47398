/**
 * Our gossip against stock @libp2p/gossipsub on real libp2p 3 nodes (TCP, noise, yamux) on
 * loopback, same topology and load. Loopback has no latency and netem is not available, so
 * every link goes through a small TCP relay that holds each chunk for the link's latency
 * and paces it to the sending node's upload bandwidth (one uplink per node, shared by its
 * links). Every run uses the same relays' latencies, placement and publish schedule.
 *
 * Runs, at 256 B and at 100 KB: all stock; all ours with the one-copy extension; all ours
 * optimized without it; half stock + half ours (one-copy on; even nodes stock). Every node
 * scores P3 mesh deliveries on the topic (same parameters on both sides), so an
 * implementation that under-delivers to the other shows up as negative scores.
 *
 * Per run and implementation: delivery, duplicates per delivery (stock's counted where its
 * router reports a duplicate to its scorer), latency p50/p99, mean mesh size (sampled),
 * negative scores and behaviour penalties each side gave the other, disconnections; where
 * first copies' time went (the route they took against the least, and the rest spent in
 * nodes), and how far our trees' link latencies are from the relays'. Warm-up messages (same
 * for every run) are published before the measured ones and not counted.
 *
 * Usage: npm run bench -- gossip-libp2p [--quick] [--nodes 24] [--degree 10] [--sizes 256,100000]
 *   [--only SUBSTRING[|SUBSTRING...]] (the scenarios whose name contains one of them) [--p3-weight -10] (0 turns P3 off on both sides)
 *   [--pull-delay MS] (our one-copy nodes' oneCopyPullDelayMs)
 *   [--tree-backup MS] (our tree nodes' oneCopyTreeBackupMs)
 *   [--source-trees [all]] (our one-copy nodes also build per-source trees: oneCopySourceTrees;
 *   `all`: for every member from the start)
 *   [--repeat N] (every run N times; the targets pool the repeats: a single run's duplicates
 *   and p99 move with its meshes, which gossipsub draws at random in each run)
 *   [--threads] (every node in a worker thread of its own, with its own event loop, instead of
 *   all nodes on the bench's; the relays stay on the bench's. The duplicate and first-copy
 *   classes, which read both ends' routers, are then not traced)
 */

import { createServer, connect as netConnect, type Server, type Socket } from 'node:net'
import { loadavg } from 'node:os'
import { distribution } from '../src/common/distribution.ts'
import { messageIdKey } from '../src/common/message-id.ts'
import { leastArrival, randomRegularGraph } from '../src/sim/graph.ts'
import {
  placementBandwidth,
  placementLatency,
  providerClusteredPlacement,
} from '../src/sim/placement.ts'
import { Prng } from '../src/sim/prng.ts'
import {
  type AnyNode,
  type DuplicatesFrom,
  isOurs,
  type Kind,
  messageIndex,
  PEER_SCORE,
  type SideName,
  sideOf,
  startNode,
  topicScore,
} from './gossip-libp2p/node.ts'
import { fmt, numberArg, printTable, type Row, writeResults } from './report.ts'

const QUICK = process.argv.includes('--quick')
const sizesArg = process.argv.indexOf('--sizes')
const SIZES = sizesArg >= 0 ? process.argv[sizesArg + 1].split(',').map(Number) : [256, 100_000]

const onlyArg = process.argv.indexOf('--only')
/** Runs only the scenarios whose name contains one of these (e.g. `--only stock`, `--only "all stock|one-copy"`). */
const ONLY = onlyArg >= 0 ? process.argv[onlyArg + 1].split('|') : ['']
const N = numberArg('--nodes', 24)
/** `--pull-delay MS`: our one-copy nodes' `oneCopyPullDelayMs` (the profile's when absent). */
const PULL_DELAY_MS = process.argv.includes('--pull-delay')
  ? numberArg('--pull-delay', 50)
  : undefined
/** `--tree-backup MS`: our tree nodes' `oneCopyTreeBackupMs` (the profile's when absent). */
const TREE_BACKUP_MS = process.argv.includes('--tree-backup')
  ? numberArg('--tree-backup', 0)
  : undefined
const treesAt = process.argv.indexOf('--source-trees')
/** `--source-trees [all]`: our one-copy nodes turn on `oneCopySourceTrees` (`'all'`: every member a source). */
const SOURCE_TREES: boolean | 'all' =
  treesAt < 0 ? false : process.argv[treesAt + 1] === 'all' ? 'all' : true
const DEGREE = numberArg('--degree', 10)
const REPEAT = numberArg('--repeat', 1)
if (!Number.isInteger(REPEAT) || REPEAT < 1) throw new Error('--repeat takes an integer >= 1')
const WARMUP = numberArg('--warmup', QUICK ? 3 : 5)
/** P3's weight on both sides (`--p3-weight`; 0 turns P3 off). */
const P3_WEIGHT = numberArg('--p3-weight', -10)
/** `--threads`: every node in a worker thread of its own (its own event loop), not all in one. */
const THREADS = process.argv.includes('--threads')
/** Messages and spacing per size: small messages come often, large ones as blocks do. */
const load = (bytes: number) =>
  bytes <= 4096
    ? {
        messages: numberArg('--messages', QUICK ? 20 : 40),
        intervalMs: numberArg('--interval', 250),
      }
    : {
        messages: numberArg('--messages', QUICK ? 8 : 15),
        intervalMs: numberArg('--interval', 1000),
      }

const prng = new Prng(11)
const graph = randomRegularGraph(N, DEGREE, prng.fork('graph'))
const placement = providerClusteredPlacement(N, prng.fork('placement'))
const latency = placementLatency(placement)
const uploadBps = placementBandwidth(placement)

/** Each node's uplink: when it is free again (ms, performance.now clock). */
const uplinkFree = new Float64Array(N)

/** Holds chunks from `src` for `delayMs` after pacing them through src's uplink. */
function shaper(src: number, delayMs: number, out: Socket): (chunk: Buffer) => void {
  const queue: { at: number; chunk: Buffer }[] = []
  let timer: NodeJS.Timeout | undefined
  const flush = () => {
    timer = undefined
    const now = performance.now()
    while (queue.length > 0 && queue[0].at <= now) {
      const { chunk } = queue.shift()!
      if (!out.destroyed) out.write(chunk)
    }
    if (queue.length > 0) timer = setTimeout(flush, queue[0].at - now)
  }
  return (chunk) => {
    const now = performance.now()
    const start = Math.max(now, uplinkFree[src])
    const done = start + (chunk.length * 8000) / uploadBps(src)
    uplinkFree[src] = done
    queue.push({ at: done + delayMs, chunk })
    if (timer === undefined) timer = setTimeout(flush, Math.max(0, queue[0].at - now))
  }
}

/** A relay for the link `from` → `to`: accepts `from`'s dial and connects to `to`. */
async function startRelay(from: number, to: number, targetPort: number): Promise<Server> {
  const delay = latency(from, to)
  const server = createServer((client) => {
    const upstream = netConnect(targetPort, '127.0.0.1')
    client.on('data', shaper(from, delay, upstream))
    upstream.on('data', shaper(to, delay, client))
    const close = () => {
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream]) {
      s.on('error', close)
      s.on('close', close)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

/** Who sent a duplicate, seen from the message's publisher (see {@link Side}). */
type DupSender = 'publisher' | 'flood root' | 'other'
const DUP_SENDERS: DupSender[] = ['publisher', 'flood root', 'other']
type Scenario =
  | 'all stock'
  | 'all ours, one-copy'
  | 'all ours, one-copy + preamble'
  | 'all ours, optimized'
  | 'half stock + half ours'
const SCENARIOS: Record<Scenario, (i: number) => Kind> = {
  'all stock': () => 'stock',
  'all ours, one-copy': () => 'ours one-copy',
  'all ours, one-copy + preamble': () => 'ours one-copy + preamble',
  'all ours, optimized': () => 'ours optimized',
  'half stock + half ours': (i) => (i % 2 === 0 ? 'stock' : 'ours one-copy'),
}

/** What one implementation's nodes saw in one run. */
interface Side {
  nodes: number
  expected: number
  delivered: number
  duplicates: number
  /**
   * Our nodes' duplicates by who sent them (ours only): the publisher (its flood publish), a
   * peer of the publisher (a flood root: rule 2's push, or its eager push), any other peer.
   */
  duplicatesBySender?: Record<DupSender, number>
  /** Duplicates by their sender's implementation and whether it was in the receiver's mesh. */
  duplicatesFrom: DuplicatesFrom
  /** Mesh peers of each implementation per node, averaged over the samples. */
  meshPeersBySide: Record<SideName, number>
  /** Duplicates per delivery from mesh peers of each implementation, per such mesh peer (null: none). */
  duplicatesPerDeliveryPerMeshPeer: Record<SideName, number | null>
  /** Our nodes' duplicates by the one-copy rule that let them through (see {@link dupClass}). */
  duplicatesByClass?: Record<string, number>
  /**
   * Our nodes' first copies by the way they came (classes of {@link dupClass}): how many in
   * all, and how many of the deliveries at or above the side's p99 latency.
   */
  firstCopiesByClass?: Record<string, { all: number; slowest: number }>
  latency: ReturnType<typeof distribution>
  /** Every delivery's latency (ms), for the targets' pooled p99 over repeats. */
  latencySamplesMs: number[]
  /** Where first copies' time went (see {@link routeOf}). */
  route: Route
  /**
   * Our per-source trees' latency of each mesh link at the end of the run minus the relay's
   * (ms): how far the link measurement is off (empty without trees).
   */
  linkOverRelayMs: number[]
  meshSizeMean: number
  meshSizeMin: number
  meshSizeMax: number
  /** Samples in which this side scored a peer of the given implementation below 0. */
  negativeScoreSamples: Record<'stock' | 'ours', number>
  /** Samples taken of this side's scores of peers of the given implementation. */
  scoreSamples: Record<'stock' | 'ours', number>
  /** Lowest score this side gave a mesh peer of the given implementation. */
  minScoreGiven: Record<'stock' | 'ours', number>
  /** Highest behaviour penalty this side held against a peer of the given implementation. */
  maxBehaviourPenaltyGiven: Record<'stock' | 'ours', number>
  /** Connections this side's nodes lost while measuring. */
  disconnections: number
  /** Tree parents this side's nodes passed over while measuring (a parent showed nothing of a message). */
  parentsPassedOver: number
}

interface RunResult {
  scenario: Scenario
  /** Which of the `--repeat` runs of this scenario and size (from 0). */
  repeat: number
  bytes: number
  messages: number
  intervalMs: number
  loadAvg1mStart: number
  loadAvg1mEnd: number
  /**
   * CPU time the whole process spent while measuring, ms (every node, relay and trace; all
   * threads with `--threads`): the work one event loop shares out, against the same run's wall.
   */
  cpuMs: number
  wallMs: number
  /** Publications that failed (the publisher had no peer to send to). */
  publishErrors: number
  sides: Partial<Record<'stock' | 'ours', Side>>
  /** The first negative scores seen: who gave it to whom, with stock's score details. */
  negativeExamples: { by: string; of: string; score: number; stockDetail?: unknown }[]
  /** Each node's mesh at the end: size, links the other end does not hold, peers it dialled. */
  meshEnd: {
    side: string
    size: number
    oneSided: number
    dialled: number
    degree: number
    graftSent: number
    graftReceived: number
    pruneSent: number
    pruneReceived: number
  }[]
}

/**
 * Which one-copy rule let a duplicate through, from both ends' state as it arrives (the
 * receiver `r` got a copy of `id` from `sender`): `publisher` (flood publish); `outside` (not a
 * mesh peer of the receiver: gossip pulls); `pulled` (we asked it, INEED); over an in-link the
 * receiver holds lazy, `lazy/root` (the sender got the message straight from the publisher:
 * rule 2's push over lazy links) or `lazy/choke-in-flight` (the sender has not yet seen our
 * CHOKE) or `lazy/other`; over an eager in-link, `eager/sender-root`, `eager/receiver-root`
 * (we were a flood root: the eager push crossed the publisher's), `eager/both-root` or
 * `eager/crossing` (two eager in-links). A `/unmarked` suffix: the message carried no flood
 * mark at the receiver (rule 2's marks and in-link lists did not apply). Between nodes without
 * the extension every mesh copy is a `mesh push (no one-copy)`.
 */
function dupClass(
  r: AnyNode,
  s: AnyNode,
  topic: string,
  sender: string,
  receiver: string,
  id: Uint8Array,
  fromPublisher: boolean,
): string {
  if (fromPublisher) return 'publisher'
  if (!isOurs(r) || !isOurs(s)) return 'stock'
  const at = r.services.dissemination.core.describeCopy(topic, sender, id)
  if (!at.inMesh) return 'outside'
  if (!r.services.dissemination.core.speaksOneCopy(sender)) return 'mesh push (no one-copy)'
  if (at.asked) return 'pulled'
  const them = s.services.dissemination.core.describeCopy(topic, receiver, id)
  const mark = at.marked ? '' : '/unmarked'
  if (at.lazyIn) {
    if (them.floodRoot) return `lazy/root${mark}`
    return them.lazyOut ? `lazy/other${mark}` : `lazy/choke-in-flight${mark}`
  }
  if (them.floodRoot && at.floodRoot) return `eager/both-root${mark}`
  if (them.floodRoot) return `eager/sender-root${mark}`
  if (at.floodRoot) return `eager/receiver-root${mark}`
  return `eager/crossing${mark}`
}

/**
 * Where the measured first copies' time went, from the chain of nodes each first copy came
 * through back to its publisher: the chain's link latencies against the least over the
 * connection graph (the route's cost), and the rest of the delivery's latency (time in nodes:
 * validation, queues, event-loop stalls). Samples in ms, one per delivery whose chain is whole.
 */
interface Route {
  routeExcessMs: number[]
  inNodesMs: number[]
  hops: number[]
}

/** Least link latency from `origin` to every node over the connection graph. */
const leastLatency = (origin: number) => leastArrival(graph, [[origin, 0]], latency).time

function routeOf(
  members: number[],
  arrivals: number[][],
  publishedAt: number[],
  originOf: number[],
  firstFrom: number[][],
): Route {
  const out: Route = { routeExcessMs: [], inNodesMs: [], hops: [] }
  for (let m = WARMUP; m < publishedAt.length; m++) {
    const least = leastLatency(originOf[m])
    for (const i of members) {
      if (!Number.isFinite(arrivals[i][m])) continue
      let linkMs = 0
      let hops = 0
      let at = i
      // A first copy's sender had it first, so the chain cannot loop; N bounds a broken one.
      while (at !== originOf[m] && at >= 0 && hops < N) {
        const from = firstFrom[at][m]
        if (from >= 0) linkMs += latency(from, at)
        at = from
        hops++
      }
      if (at !== originOf[m]) continue
      out.routeExcessMs.push(linkMs - least[i])
      out.inNodesMs.push(arrivals[i][m] - publishedAt[m] - linkMs)
      out.hops.push(hops)
    }
  }
  return out
}

async function run(scenario: Scenario, bytes: number): Promise<Omit<RunResult, 'repeat'>> {
  const { messages, intervalMs } = load(bytes)
  const loadStart = loadavg()[0]
  process.stderr.write(`${scenario}, ${bytes} B: starting ${N} nodes (load ${fmt(loadStart)})\n`)
  const t0 = Date.now()
  const phase = (what: string) => process.stderr.write(`  ${what} at ${Date.now() - t0} ms\n`)
  uplinkFree.fill(0)
  const total = WARMUP + messages
  const kinds = Array.from({ length: N }, (_, i) => SCENARIOS[scenario](i))
  const hosts = await Promise.all(
    kinds.map((kind) =>
      startNode(
        {
          kind,
          p3Weight: P3_WEIGHT,
          pullDelayMs: PULL_DELAY_MS,
          treeBackupMs: TREE_BACKUP_MS,
          sourceTrees: SOURCE_TREES,
        },
        total,
        THREADS,
      ),
    ),
  )
  const side = (i: number) => sideOf(kinds[i])
  const relays: Server[] = []
  const dials: Promise<unknown>[] = []
  for (let u = 0; u < N; u++) {
    for (let j = graph.offsets[u]; j < graph.offsets[u + 1]; j++) {
      const v = graph.neighbors[j]
      if (u > v) continue
      const relay = await startRelay(u, v, hosts[v].port)
      relays.push(relay)
      const address = relay.address()
      if (address === null || typeof address === 'string') throw new Error('relay has no port')
      // All at once: each dial takes several round trips through its relay's latency.
      dials.push(hosts[u].dial(address.port, hosts[v].peerId))
    }
  }
  await Promise.all(dials)
  phase('connected')
  const ids = hosts.map((h) => h.peerId)
  await Promise.all(hosts.map((h) => h.start(ids, kinds.map(sideOf))))
  const publishedAt = new Array<number>(total).fill(Number.NaN)
  const originOf = new Array<number>(total).fill(-1)
  const indexOfPeer = new Map(ids.map((p, i) => [p, i]))
  // The bench's own traces of our nodes, which read both ends' routers: in its thread only.
  /** Message index of each id our nodes delivered, to class their duplicates by sender. */
  const indexOfId = new Map<string, number>()
  const bySender = hosts.map(() => ({ publisher: 0, 'flood root': 0, other: 0 }))
  const byClass = hosts.map(() => new Map<string, number>())
  /** How each of our nodes got each message's first copy (see {@link dupClass}). */
  const firstClass: string[][] = hosts.map(() => new Array<string>(total).fill(''))
  const local = hosts.map((h) => h.local?.node)
  let measuring = false
  for (const [i, n] of local.entries()) {
    if (n === undefined || !isOurs(n)) continue
    n.services.dissemination.on('artifact', (a) => {
      if (a.from === undefined) return
      const m = messageIndex(a.data)
      indexOfId.set(messageIdKey(a.id), m)
      const from = indexOfPeer.get(a.from)
      const sender = from === undefined ? undefined : local[from]
      if (m < total && sender !== undefined && originOf[m] >= 0) {
        firstClass[i][m] = dupClass(n, sender, a.topic, a.from, ids[i], a.id, from === originOf[m])
      }
    })
    n.services.dissemination.core.on('duplicate', (d) => {
      const m = indexOfId.get(messageIdKey(d.id))
      const from = indexOfPeer.get(d.from)
      const sender = from === undefined ? undefined : local[from]
      if (!measuring || m === undefined || sender === undefined || originOf[m] < 0) return
      const o = originOf[m]
      let neighbour = false
      for (let j = graph.offsets[o]; j < graph.offsets[o + 1]; j++)
        if (graph.neighbors[j] === from) neighbour = true
      bySender[i][from === o ? 'publisher' : neighbour ? 'flood root' : 'other']++
      const cls = dupClass(n, sender, d.topic, d.from, ids[i], d.id, from === o)
      byClass[i].set(cls, (byClass[i].get(cls) ?? 0) + 1)
    })
  }
  const meshSizes = () => Promise.all(hosts.map((h) => h.meshSize()))
  const formedBy = Date.now() + 15_000
  while (Date.now() < formedBy && !(await meshSizes()).every((s) => s >= 6)) {
    await new Promise((r) => setTimeout(r, 100))
  }
  phase('meshes formed')
  await new Promise((r) => setTimeout(r, 1500))

  const pick = new Prng(5)
  const publish = async (m: number) => {
    const origin = pick.int(N)
    const data = new Uint8Array(bytes)
    for (let b = 4; b < bytes; b += 997) data[b] = pick.int(256)
    new DataView(data.buffer).setUint32(0, m)
    originOf[m] = origin
    publishedAt[m] = await hosts[origin].publish(m, data)
  }
  for (let m = 0; m < WARMUP; m++) {
    await publish(m)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
  await new Promise((r) => setTimeout(r, 1000)) // the warm-up's late copies

  // Measuring from here: duplicates, disconnections, mesh sizes and scores.
  await Promise.all(hosts.map((h) => h.startMeasuring()))
  measuring = true
  const cpuStart = process.cpuUsage()
  const wallStart = performance.now()
  for (let m = WARMUP; m < total; m++) {
    await publish(m)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
  const drainUntil = Date.now() + 5000
  const complete = async () =>
    (await Promise.all(hosts.map((h) => h.missing()))).every((x) => x === 0)
  while (Date.now() < drainUntil && !(await complete()))
    await new Promise((r) => setTimeout(r, 100))
  phase('delivered')
  await new Promise((r) => setTimeout(r, 1000)) // late duplicates still count
  const cpu = process.cpuUsage(cpuStart)
  const wallMs = performance.now() - wallStart
  await Promise.all(hosts.map((h) => h.stopMeasuring()))
  measuring = false
  const seen = await Promise.all(hosts.map((h) => h.summary()))
  const arrivals = seen.map((s) => s.arrivals)
  const firstFrom = seen.map((s) => s.firstFrom)
  // Mesh composition at the end: one-sided links (a has b, b not a) and outbound mesh peers.
  const meshes = seen.map((s) => new Set(s.mesh))
  const meshEnd = seen.map((s, i) => ({
    side: side(i),
    ...s.control,
    size: meshes[i].size,
    oneSided: [...meshes[i]].filter((p) => !meshes[indexOfPeer.get(p) ?? -1]?.has(ids[i])).length,
    dialled: [...meshes[i]].filter((p) => (indexOfPeer.get(p) ?? -1) > i).length,
    degree: graph.offsets[i + 1] - graph.offsets[i],
  }))
  process.stderr.write(
    `  mesh at end (size/one-sided/dialled of degree): ${meshEnd.map((m) => `${m.size}/${m.oneSided}/${m.dialled}`).join(' ')}\n`,
  )
  // Our trees' link latency against the relay's, on every mesh link at the end of the run.
  const linkOverRelay = seen.map((s, i) =>
    Object.entries(s.linkLatencyMs).flatMap(([p, est]) => {
      const q = indexOfPeer.get(p)
      return q === undefined ? [] : [est - latency(i, q)]
    }),
  )
  const sides: RunResult['sides'] = {}
  for (const which of ['stock', 'ours'] as const) {
    const members = hosts.map((_, i) => i).filter((i) => side(i) === which)
    if (members.length === 0) continue
    const latencies: number[] = []
    const classed: [string, number][] = []
    let delivered = 0
    let expected = 0
    for (const i of members) {
      for (let m = WARMUP; m < total; m++) {
        const t = arrivals[i][m]
        if (t === Number.NEGATIVE_INFINITY) continue
        expected++
        if (Number.isNaN(t)) continue
        delivered++
        latencies.push(t - publishedAt[m])
        classed.push([firstClass[i][m] || 'unknown', t - publishedAt[m]])
      }
    }
    const latency = distribution(latencies)
    const firstCopiesByClass: Record<string, { all: number; slowest: number }> = {}
    for (const [cls, ms] of classed) {
      const c = firstCopiesByClass[cls] ?? { all: 0, slowest: 0 }
      firstCopiesByClass[cls] = c
      c.all++
      if (ms >= latency.p99) c.slowest++
    }
    const mesh = members.flatMap((i) => seen[i].meshSamples)
    const fold = (f: (i: number) => number, op: (a: number, b: number) => number, init: number) =>
      members.reduce((acc, i) => op(acc, f(i)), init)
    const sum = (f: (i: number) => number) => fold(f, (a, b) => a + b, 0)
    const duplicatesFrom = Object.fromEntries(
      Object.keys(seen[members[0]].duplicatesFrom).map((k) => [
        k,
        sum((i) => seen[i].duplicatesFrom[k as keyof DuplicatesFrom]),
      ]),
    ) as DuplicatesFrom
    const meshPeersBySide = {
      stock: sum((i) => seen[i].meshPeersBySide.stock) / mesh.length,
      ours: sum((i) => seen[i].meshPeersBySide.ours) / mesh.length,
    }
    const perMeshPeer = (from: SideName) =>
      meshPeersBySide[from] > 0
        ? duplicatesFrom[`${from} mesh`] / delivered / meshPeersBySide[from]
        : null
    /** The bench's own traces, where it ran them (in its thread, on our nodes). */
    const traced = which === 'ours' && !THREADS
    sides[which] = {
      nodes: members.length,
      expected,
      delivered,
      duplicates: sum((i) => seen[i].duplicates),
      duplicatesFrom,
      meshPeersBySide,
      duplicatesPerDeliveryPerMeshPeer: {
        stock: perMeshPeer('stock'),
        ours: perMeshPeer('ours'),
      },
      duplicatesByClass: traced
        ? Object.fromEntries(
            [...new Set(members.flatMap((i) => [...byClass[i].keys()]))]
              .sort()
              .map((k) => [k, sum((i) => byClass[i].get(k) ?? 0)]),
          )
        : undefined,
      duplicatesBySender: traced
        ? {
            publisher: sum((i) => bySender[i].publisher),
            'flood root': sum((i) => bySender[i]['flood root']),
            other: sum((i) => bySender[i].other),
          }
        : undefined,
      latency,
      latencySamplesMs: latencies,
      route: routeOf(members, arrivals, publishedAt, originOf, firstFrom),
      linkOverRelayMs: members.flatMap((i) => linkOverRelay[i]),
      firstCopiesByClass: traced ? firstCopiesByClass : undefined,
      meshSizeMean: mesh.reduce((a, b) => a + b, 0) / mesh.length,
      meshSizeMin: Math.min(...mesh),
      meshSizeMax: Math.max(...mesh),
      negativeScoreSamples: {
        stock: sum((i) => seen[i].negative.stock),
        ours: sum((i) => seen[i].negative.ours),
      },
      scoreSamples: {
        stock: sum((i) => seen[i].sampled.stock),
        ours: sum((i) => seen[i].sampled.ours),
      },
      minScoreGiven: {
        stock: fold((i) => seen[i].minMeshScore.stock, Math.min, Number.POSITIVE_INFINITY),
        ours: fold((i) => seen[i].minMeshScore.ours, Math.min, Number.POSITIVE_INFINITY),
      },
      maxBehaviourPenaltyGiven: {
        stock: fold((i) => seen[i].maxPenalty.stock, Math.max, 0),
        ours: fold((i) => seen[i].maxPenalty.ours, Math.max, 0),
      },
      disconnections: sum((i) => seen[i].disconnections),
      parentsPassedOver: sum((i) => seen[i].parentsPassedOver),
    }
  }
  await Promise.all(hosts.map((h) => h.stop()))
  await Promise.all(relays.map((r) => new Promise((res) => r.close(() => res(undefined)))))
  phase('stopped')
  return {
    scenario,
    bytes,
    messages,
    intervalMs,
    loadAvg1mStart: loadStart,
    loadAvg1mEnd: loadavg()[0],
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs,
    publishErrors: seen.reduce((a, s) => a + s.publishErrors, 0),
    sides,
    negativeExamples: seen
      .flatMap((s, i) => s.negativeExamples.map((e) => ({ by: side(i), ...e })))
      .slice(0, 20),
    meshEnd,
  }
}

const results: RunResult[] = []
const loadAtStart = loadavg()
const started = Date.now()
for (let repeat = 0; repeat < REPEAT; repeat++) {
  for (const bytes of SIZES) {
    for (const scenario of Object.keys(SCENARIOS) as Scenario[]) {
      if (ONLY.some((o) => scenario.includes(o)))
        results.push({ ...(await run(scenario, bytes)), repeat })
    }
  }
}
const wallS = (Date.now() - started) / 1000

const kindName = (r: RunResult, which: 'stock' | 'ours') =>
  which === 'stock'
    ? 'stock'
    : r.scenario === 'all ours, optimized'
      ? 'ours'
      : r.scenario === 'all ours, one-copy + preamble'
        ? 'ours (one-copy + preamble)'
        : 'ours (one-copy)'
/** The run's scenario, with its number among the repeats when there are several. */
const runLabel = (r: RunResult) => (REPEAT > 1 ? `${r.scenario} #${r.repeat + 1}` : r.scenario)
const scoreCell = (v: number) => (Number.isFinite(v) ? fmt(v, 2) : '-')
const rows: Row[] = results.flatMap((r) =>
  (['stock', 'ours'] as const).flatMap((which) => {
    const s = r.sides[which]
    if (s === undefined) return []
    const other = which === 'stock' ? 'ours' : 'stock'
    return [
      {
        size: r.bytes === 256 ? '256 B' : `${fmt(r.bytes / 1000, 0)} KB`,
        run: runLabel(r),
        nodes: `${s.nodes} ${kindName(r, which)}`,
        delivery: fmt(s.delivered / s.expected, 4),
        'dups / delivery': fmt(s.duplicates / s.delivered),
        'dups from publisher/root/other': s.duplicatesBySender
          ? DUP_SENDERS.map((k) => fmt((s.duplicatesBySender?.[k] ?? 0) / s.delivered)).join('/')
          : '-',
        'p50 ms': fmt(s.latency.p50, 1),
        'p99 ms': fmt(s.latency.p99, 1),
        'mesh mean': fmt(s.meshSizeMean),
        'mesh min-max': `${s.meshSizeMin}-${s.meshSizeMax}`,
        'score<0 given (same/other)': `${s.negativeScoreSamples[which]}/${s.negativeScoreSamples[other]}`,
        'min mesh score given (same/other)': `${scoreCell(s.minScoreGiven[which])}/${scoreCell(s.minScoreGiven[other])}`,
        'P7 given (same/other)': `${fmt(s.maxBehaviourPenaltyGiven[which])}/${fmt(s.maxBehaviourPenaltyGiven[other])}`,
        disconnects: s.disconnections,
        'parents passed over': which === 'ours' ? s.parentsPassedOver : '-',
        'publish errors': r.publishErrors,
        load: `${fmt(r.loadAvg1mStart, 1)}-${fmt(r.loadAvg1mEnd, 1)}`,
        'CPU s / wall s': `${fmt(r.cpuMs / 1000, 1)} / ${fmt(r.wallMs / 1000, 1)}`,
      },
    ]
  }),
)
const header =
  `${N} libp2p nodes (TCP, noise, yamux) on loopback through latency/bandwidth relays, ${DEGREE} peers each; ` +
  `per size ${SIZES.map((b) => `${b} B: ${load(b).messages} messages every ${load(b).intervalMs} ms`).join(', ')}, ` +
  `after ${WARMUP} warm-up messages; ${SOURCE_TREES ? `our one-copy nodes with per-source trees${SOURCE_TREES === 'all' ? ' for every member' : ''}${TREE_BACKUP_MS === undefined ? '' : `, backup parents within ${TREE_BACKUP_MS} ms`}; ` : ''}same P1-P4 scores (P3 on) on both sides; load average (1/5/15 min) at start ` +
  `${loadAtStart.map((l) => fmt(l, 1)).join(' / ')}, ${fmt(wallS, 0)} s wall`
printTable(header, rows)
printTable(
  "Duplicates per delivery by sender (its implementation; in the receiver's mesh or not), mesh peers per node by implementation, and duplicates per delivery and mesh peer",
  results.flatMap((r) =>
    (['stock', 'ours'] as const).flatMap((which) => {
      const s = r.sides[which]
      if (s === undefined) return []
      const d = s.duplicatesFrom
      const perPeer = (side: SideName) => {
        const v = s.duplicatesPerDeliveryPerMeshPeer[side]
        return v === null ? '-' : fmt(v, 3)
      }
      return [
        {
          size: r.bytes === 256 ? '256 B' : `${fmt(r.bytes / 1000, 0)} KB`,
          run: runLabel(r),
          nodes: `${s.nodes} ${kindName(r, which)}`,
          'from stock mesh/other': `${fmt(d['stock mesh'] / s.delivered)}/${fmt(d['stock other'] / s.delivered)}`,
          'from ours mesh/other': `${fmt(d['ours mesh'] / s.delivered)}/${fmt(d['ours other'] / s.delivered)}`,
          'mesh peers stock/ours': `${fmt(s.meshPeersBySide.stock)}/${fmt(s.meshPeersBySide.ours)}`,
          'per stock mesh peer': perPeer('stock'),
          'per ours mesh peer': perPeer('ours'),
        },
      ]
    }),
  ),
)
printTable(
  "Our nodes' first copies by the way they came (bench dupClass): share of all deliveries, of those at or above p99",
  results.flatMap((r) => {
    const s = r.sides.ours
    if (s?.firstCopiesByClass === undefined) return []
    const slowest = Object.values(s.firstCopiesByClass).reduce((a, c) => a + c.slowest, 0)
    return Object.entries(s.firstCopiesByClass)
      .sort((a, b) => b[1].all - a[1].all)
      .map(([cls, c]) => ({
        size: r.bytes === 256 ? '256 B' : `${fmt(r.bytes / 1000, 0)} KB`,
        run: runLabel(r),
        class: cls,
        'share of all': fmt(c.all / s.delivered, 3),
        'share of slowest 1%': fmt(c.slowest / Math.max(1, slowest), 3),
        'slowest count': c.slowest,
      }))
  }),
)
printTable(
  "Our nodes' duplicates per delivery by the one-copy rule that let them through (bench dupClass)",
  results.flatMap((r) => {
    const s = r.sides.ours
    if (s?.duplicatesByClass === undefined) return []
    return Object.entries(s.duplicatesByClass)
      .sort((a, b) => b[1] - a[1])
      .map(([cls, n]) => ({
        size: r.bytes === 256 ? '256 B' : `${fmt(r.bytes / 1000, 0)} KB`,
        run: runLabel(r),
        class: cls,
        'dups / delivery': fmt(n / s.delivered, 3),
        count: n,
      }))
  }),
)
/** The route table's figures per run and side, as printed (ms unless named otherwise). */
const firstCopyRoutes = results.flatMap((r) =>
  (['stock', 'ours'] as const).flatMap((which) => {
    const s = r.sides[which]
    if (s === undefined) return []
    return [
      {
        bytes: r.bytes,
        run: runLabel(r),
        side: which,
        wholeChains: s.route.hops.length,
        deliveries: s.delivered,
        hopsMean: s.route.hops.reduce((a, b) => a + b, 0) / s.route.hops.length,
        routeOverLeastMs: distribution(s.route.routeExcessMs),
        inNodesMs: distribution(s.route.inNodesMs),
        treeLinkLatencyOverRelayMs:
          s.linkOverRelayMs.length > 0 ? distribution(s.linkOverRelayMs) : null,
      },
    ]
  }),
)
const percentiles = (d: { p50: number; p90: number; p99: number }) =>
  `${fmt(d.p50, 1)}/${fmt(d.p90, 1)}/${fmt(d.p99, 1)}`
printTable(
  "Where first copies' time went: each delivery's chain of first senders back to the publisher; route = its link latencies over the least over the connection graph, in nodes = the rest of its latency; our trees' link latency (half the base RTT) over the relay's, every mesh link at the end (ms)",
  firstCopyRoutes.map((f) => ({
    size: f.bytes === 256 ? '256 B' : `${fmt(f.bytes / 1000, 0)} KB`,
    run: f.run,
    side: f.side,
    'whole chains': `${f.wholeChains}/${f.deliveries}`,
    'hops mean': fmt(f.hopsMean),
    'route over least p50/p90/p99': percentiles(f.routeOverLeastMs),
    'in nodes p50/p90/p99': percentiles(f.inNodesMs),
    'tree link latency over relay p50/p90/p99':
      f.treeLinkLatencyOverRelayMs === null ? '-' : percentiles(f.treeLinkLatencyOverRelayMs),
  })),
)

/** Targets of issue 9, computed from the runs above. */
interface Target {
  size: string
  run: string
  measure: string
  target: string
  value: string
  met: boolean
}
const targets: Target[] = []
/**
 * One side's figures pooled over the repeats of a run: counts summed, latency over every
 * repeat's deliveries (the same as the side itself without `--repeat`).
 */
function pooled(sides: Side[]): Side | undefined {
  if (sides.length <= 1) return sides[0]
  const sum = (f: (s: Side) => number) => sides.reduce((a, s) => a + f(s), 0)
  const latencySamplesMs = sides.flatMap((s) => s.latencySamplesMs)
  return {
    ...sides[0],
    expected: sum((s) => s.expected),
    delivered: sum((s) => s.delivered),
    duplicates: sum((s) => s.duplicates),
    latency: distribution(latencySamplesMs),
    latencySamplesMs,
    meshSizeMean: sum((s) => s.meshSizeMean) / sides.length,
    negativeScoreSamples: {
      stock: sum((s) => s.negativeScoreSamples.stock),
      ours: sum((s) => s.negativeScoreSamples.ours),
    },
    scoreSamples: {
      stock: sum((s) => s.scoreSamples.stock),
      ours: sum((s) => s.scoreSamples.ours),
    },
    disconnections: sum((s) => s.disconnections),
    parentsPassedOver: sum((s) => s.parentsPassedOver),
  }
}
/** Share of `s`'s score samples of `of` peers that were below 0. */
const rate = (s: Side, of: 'stock' | 'ours') =>
  s.scoreSamples[of] === 0 ? 0 : s.negativeScoreSamples[of] / s.scoreSamples[of]
for (const bytes of SIZES) {
  const size = bytes === 256 ? '256 B' : `${fmt(bytes / 1000, 0)} KB`
  /** `which` side of `scenario`'s runs at this size, pooled over the repeats. */
  const of = (scenario: Scenario, which: 'stock' | 'ours') =>
    pooled(
      results.flatMap((r) =>
        r.bytes === bytes && r.scenario === scenario && r.sides[which] ? [r.sides[which]] : [],
      ),
    )
  const stock = of('all stock', 'stock')
  for (const scenario of [
    'all ours, one-copy',
    'all ours, one-copy + preamble',
    'all ours, optimized',
  ] as const) {
    const ours = of(scenario, 'ours')
    if (ours === undefined || stock === undefined) continue
    const dups = ours.duplicates / ours.delivered
    targets.push(
      {
        size,
        run: scenario,
        measure: 'dups per delivery',
        target: '≤ 0.5',
        value: fmt(dups),
        met: dups <= 0.5,
      },
      {
        size,
        run: scenario,
        measure: 'p99 / stock p99',
        target: '≤ 1',
        value: fmt(ours.latency.p99 / stock.latency.p99),
        met: ours.latency.p99 <= stock.latency.p99,
      },
      {
        size,
        run: scenario,
        measure: 'delivery',
        target: '= 1',
        value: fmt(ours.delivered / ours.expected, 4),
        met: ours.delivered === ours.expected,
      },
    )
  }
  const ms = of('half stock + half ours', 'stock')
  const mo = of('half stock + half ours', 'ours')
  if (ms !== undefined && mo !== undefined && stock !== undefined) {
    const run = 'half stock + half ours'
    const stockDups = ms.duplicates / ms.delivered
    const allStockDups = stock.duplicates / stock.delivered
    const penalties =
      ms.negativeScoreSamples.ours +
      mo.negativeScoreSamples.stock +
      ms.disconnections +
      mo.disconnections
    targets.push(
      {
        size,
        run,
        measure: 'stock half dups / all-stock dups',
        target: '≤ 1',
        value: `${fmt(stockDups)} / ${fmt(allStockDups)}`,
        met: stockDups <= allStockDups,
      },
      {
        size,
        run,
        measure: 'score<0 samples + disconnects, either way',
        target: '= 0',
        value: `${ms.negativeScoreSamples.ours} + ${mo.negativeScoreSamples.stock} + ${ms.disconnections + mo.disconnections}`,
        met: penalties === 0,
      },
      {
        size,
        run,
        measure: 'stock: share of score<0 samples, ours / stock peers',
        target: '≤ 1',
        value: `${fmt(rate(ms, 'ours'), 4)} / ${fmt(rate(ms, 'stock'), 4)}`,
        met: rate(ms, 'ours') <= rate(ms, 'stock'),
      },
      {
        size,
        run,
        measure: 'delivery',
        target: '= 1',
        value: fmt((ms.delivered + mo.delivered) / (ms.expected + mo.expected), 4),
        met: ms.delivered + mo.delivered === ms.expected + mo.expected,
      },
    )
  }
}
printTable(
  `Targets (issue 9), computed from the runs above${REPEAT > 1 ? `, each run's ${REPEAT} repeats pooled` : ''}`,
  targets.map((t) => ({ ...t, met: t.met ? 'met' : 'NOT met' })),
)
writeResults('gossip-libp2p', {
  nodes: N,
  degree: DEGREE,
  warmupMessages: WARMUP,
  quick: QUICK,
  repeats: REPEAT,
  sourceTrees: SOURCE_TREES,
  treeBackupMs: TREE_BACKUP_MS ?? null,
  threads: THREADS,
  topicScore: topicScore(P3_WEIGHT),
  peerScore: PEER_SCORE,
  loadAvgAtStart: loadAtStart,
  wallSeconds: wallS,
  runs: results,
  firstCopyRoutes,
  targets,
})
process.exit(0)
