/**
 * Our gossip against stock @libp2p/gossipsub on real libp2p 3 nodes (TCP, noise, yamux) on
 * loopback, same topology and load. Loopback has no latency and netem is not available, so
 * every link goes through a small TCP relay that holds each chunk for the link's latency
 * and paces it to the sending node's upload bandwidth (one uplink per node, shared by its
 * links). Both implementations run under the same relays, placement and publish schedule.
 *
 * Reports per implementation: delivery, relayed bytes per delivered message and what that
 * is in copies of the payload, exact duplicates where the implementation counts them,
 * latency from publish to delivery, and CPU time per message (the whole process: nodes and
 * relays). The last row gives our optimized router its uplink (`uploadBps`, the rate the
 * relay paces that node to), which turns on the uplink-budgeted eager push and lets an
 * IDONTWANT cancel a copy still waiting in the router's queue.
 *
 * Usage: npm run bench -- gossip-libp2p [--nodes 24] [--degree 10] [--messages 15] [--bytes 100000] [--interval 1000]
 */
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { type GossipSub, gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { distribution } from '../src/common/distribution.ts'
import { type GossipService, gossip } from '../src/libp2p/gossip-service.ts'
import { randomRegularGraph } from '../src/sim/graph.ts'
import {
  placementBandwidth,
  placementLatency,
  providerClusteredPlacement,
} from '../src/sim/placement.ts'
import { Prng } from '../src/sim/prng.ts'
import { fmt, printTable, type Row, writeResults } from './report.ts'

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

const N = arg('nodes', 24)
const DEGREE = arg('degree', 10)
const MESSAGES = arg('messages', 15)
const BYTES = arg('bytes', 100_000)
const INTERVAL_MS = arg('interval', 1000)
const TOPIC = 'bench/blocks'

const prng = new Prng(11)
const graph = randomRegularGraph(N, DEGREE, prng.fork('graph'))
const placement = providerClusteredPlacement(N, prng.fork('placement'))
const latency = placementLatency(placement)
const uploadBps = placementBandwidth(placement)

/** Each node's uplink: when it is free again (ms, performance.now clock). */
const uplinkFree = new Float64Array(N)
let relayedBytes = 0

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
    relayedBytes += chunk.length
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

type Impl =
  | 'stock @libp2p/gossipsub'
  | 'ours, stock profile'
  | 'ours, optimized'
  | 'ours, optimized, uploadBps set'
type AnyNode = Libp2p<{ pubsub: GossipSub }> | Libp2p<{ dissemination: GossipService }>

async function createNode(impl: Impl, index: number): Promise<AnyNode> {
  const base = {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  }
  if (impl === 'stock @libp2p/gossipsub') {
    return createLibp2p({
      ...base,
      services: {
        identify: identify(),
        pubsub: gossipsub({
          D: 8,
          Dlo: 6,
          Dhi: 12,
          Dlazy: 6,
          heartbeatInterval: 700,
          scoreParams: { IPColocationFactorWeight: 0 },
        }),
      },
    }) as Promise<AnyNode>
  }
  return createLibp2p({
    ...base,
    services: {
      identify: identify(),
      // Without the hint ours, like the stock router, learns nothing about the relays; with
      // it, the operator has told the router its uplink (what the relay paces it to).
      dissemination: gossip(
        impl === 'ours, stock profile'
          ? { profile: 'stock' }
          : impl === 'ours, optimized'
            ? { profile: 'optimized' }
            : { profile: 'optimized', uploadBps: uploadBps(index) },
      ),
    },
  }) as Promise<AnyNode>
}

const isOurs = (n: AnyNode): n is Libp2p<{ dissemination: GossipService }> =>
  'dissemination' in n.services

function meshSize(n: AnyNode): number {
  if (isOurs(n)) return n.services.dissemination.core.getMeshPeers(TOPIC).length
  return (n.services.pubsub as GossipSub & { getMeshPeers(t: string): string[] }).getMeshPeers(
    TOPIC,
  ).length
}

interface RunResult {
  row: Row
  raw: unknown
}

async function run(impl: Impl): Promise<RunResult> {
  process.stderr.write(`${impl}: starting ${N} nodes\n`)
  uplinkFree.fill(0)
  const nodes = await Promise.all(Array.from({ length: N }, (_, i) => createNode(impl, i)))
  const relays: Server[] = []
  for (let u = 0; u < N; u++) {
    for (let j = graph.offsets[u]; j < graph.offsets[u + 1]; j++) {
      const v = graph.neighbors[j]
      if (u > v) continue
      const port = Number(/\/tcp\/(\d+)/.exec(nodes[v].getMultiaddrs()[0].toString())?.[1])
      const relay = await startRelay(u, v, port)
      relays.push(relay)
      const address = relay.address()
      if (address === null || typeof address === 'string') throw new Error('relay has no port')
      await nodes[u].dial(multiaddr(`/ip4/127.0.0.1/tcp/${address.port}/p2p/${nodes[v].peerId}`))
    }
  }
  const arrivals: number[][] = nodes.map(() => new Array<number>(MESSAGES).fill(Number.NaN))
  const publishedAt = new Array<number>(MESSAGES).fill(Number.NaN)
  for (const [i, n] of nodes.entries()) {
    const record = (data: Uint8Array) => {
      const m = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0)
      if (m < MESSAGES && Number.isNaN(arrivals[i][m])) arrivals[i][m] = performance.now()
    }
    if (isOurs(n)) {
      n.services.dissemination.subscribe(TOPIC)
      n.services.dissemination.on('artifact', (a) => {
        if (a.from !== undefined) record(a.data)
      })
    } else {
      n.services.pubsub.subscribe(TOPIC)
      n.services.pubsub.addEventListener('message', (e) => record(e.detail.data))
    }
  }
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline && !nodes.every((n) => meshSize(n) >= 6)) {
    await new Promise((r) => setTimeout(r, 100))
  }
  await new Promise((r) => setTimeout(r, 1500))

  const bytesBefore = relayedBytes
  const cpuBefore = process.cpuUsage()
  const pick = new Prng(5)
  const publishes: Promise<unknown>[] = []
  for (let m = 0; m < MESSAGES; m++) {
    const origin = pick.int(N)
    const data = new Uint8Array(BYTES)
    for (let b = 4; b < BYTES; b += 997) data[b] = pick.int(256)
    new DataView(data.buffer).setUint32(0, m)
    publishedAt[m] = performance.now()
    arrivals[origin][m] = Number.NEGATIVE_INFINITY // the origin is not a recipient
    const n = nodes[origin]
    publishes.push(
      isOurs(n)
        ? n.services.dissemination.publish(TOPIC, data)
        : n.services.pubsub.publish(TOPIC, data),
    )
    await new Promise((r) => setTimeout(r, INTERVAL_MS))
  }
  await Promise.allSettled(publishes)
  const drainUntil = Date.now() + 5000
  const complete = () => arrivals.every((row) => row.every((t) => !Number.isNaN(t)))
  while (Date.now() < drainUntil && !complete()) await new Promise((r) => setTimeout(r, 100))
  await new Promise((r) => setTimeout(r, 1000)) // late duplicates still cost bytes
  const cpu = process.cpuUsage(cpuBefore)
  const bytes = relayedBytes - bytesBefore

  const latencies: number[] = []
  let delivered = 0
  for (const row of arrivals) {
    for (const [m, t] of row.entries()) {
      if (t === Number.NEGATIVE_INFINITY || Number.isNaN(t)) continue
      delivered++
      latencies.push(t - publishedAt[m])
    }
  }
  let exactDuplicates = Number.NaN
  if (nodes.every(isOurs)) {
    exactDuplicates = nodes.reduce(
      (n, x) => n + x.services.dissemination.stats().total.duplicates,
      0,
    )
  }
  const lat = distribution(latencies)
  await Promise.all(nodes.map((n) => n.stop()))
  await Promise.all(relays.map((r) => new Promise((res) => r.close(() => res(undefined)))))
  const expected = MESSAGES * (N - 1)
  const row: Row = {
    implementation: impl,
    delivery: fmt(delivered / expected, 4),
    'relayed KB / delivery': fmt(bytes / delivered / 1000, 1),
    'copies / delivery': fmt(bytes / delivered / BYTES),
    'duplicates / delivery': Number.isNaN(exactDuplicates)
      ? 'n/a'
      : fmt(exactDuplicates / delivered),
    'lat p50 ms': fmt(lat.p50, 1),
    'lat p99 ms': fmt(lat.p99, 1),
    'CPU ms / message': fmt((cpu.user + cpu.system) / 1000 / MESSAGES, 1),
  }
  return { row, raw: { delivered, expected, bytes, exactDuplicates, latency: lat, cpu } }
}

const rows: RunResult[] = []
for (const impl of [
  'stock @libp2p/gossipsub',
  'ours, stock profile',
  'ours, optimized',
  'ours, optimized, uploadBps set',
] as Impl[]) {
  rows.push(await run(impl))
}
printTable(
  `${N} libp2p nodes (TCP, noise, yamux) on loopback through latency/bandwidth relays, ${DEGREE} peers each, ` +
    `${MESSAGES} consensus messages of ${BYTES} B every ${INTERVAL_MS} ms`,
  rows.map((r) => r.row),
)
writeResults('gossip-libp2p', { nodes: N, degree: DEGREE, messages: MESSAGES, bytes: BYTES, rows })
process.exit(0)
