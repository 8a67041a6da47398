/**
 * A bound for one-copy with random publishers (doc/gossip-extension.md, Known limits): how
 * far can per-topic eager in-links go when each node picks them with hindsight?
 *
 * Runs, on the gossip-sim scenario (1,000 nodes, D = 8, provider-clustered, 30 messages):
 * 1. stock gossipsub (the p99 reference);
 * 2. one-copy with every mesh in-link eager (a flood over one-copy's own meshes), recording
 *    when each mesh peer's copy of each message reached each node;
 * 3. one-copy with each node's eager in-links fixed from the start to a set chosen from run 2
 *    with hindsight of all 30 messages (the same seed, so the same publishers and meshes):
 *    the k peers that most often brought the first mesh copy (k = 1, 2, 3), and the greedy set
 *    that minimises the summed delay over the 30 messages (k = 2, 3, and rule 4's 15 ms
 *    threshold). Every other rule (pulls, promotions, flood roots, gossip) runs as usual;
 * 4. the per-source oracle: each node pushes each message only to the mesh peers its copy reached
 *    first in run 2 (a tree per message, which per-topic in-links cannot give), announcing to
 *    the others, with no flood root pushes;
 * 5. with `--learn L`: the flood run goes on for L more messages, and trees learnt from those
 *    (top k first senders, per topic and per publisher region) are applied to the 30 measured
 *    ones the oracle's way;
 * 6. per-source shortest-path trees (reverse-path forwarding, as DVMRP): for each message, from
 *    the meshes as they are when it is first forwarded, each node's parent is the node on its
 *    shortest path from the publisher over the publisher's flood edges and the mesh edges,
 *    weighted by the links' one-way latency (what RTT/2 measures), the flood's receivers taking
 *    the publisher as parent; a node pushes only to the mesh peers it is the parent of, the
 *    oracle's way (`spt`). A second row adds to each edge the sender's serialization of one
 *    copy (and to the k-th flood edge k copies), which latency alone does not see. Then
 *    (`model`) trees by a model of arrival times: each hop adds the receiver's validation
 *    delay, a flood target may take a mesh parent when that is sooner, and a node's k-th child
 *    waits k serializations (or, the metric a distance vector can carry, one); `ablate` drops
 *    the validation delay or the flood targets' mesh parents, `noise` measures each link's
 *    latency up to ±20% off;
 * 7. one hop of look-ahead over estimated latency, no per-source state: each node's parent for
 *    a message is, among its mesh peers nearer the publisher than itself (all of them when none
 *    is), the one with the least est(publisher, peer) + lat(peer, node), or the publisher if it
 *    is a topic peer; est is the latency between the two nodes (what perfect network
 *    coordinates would estimate): a bound for trees from coordinates (`lookahead`).
 *
 * It patches rule 4's choice (`ArrivalLog.select`), rule 3's CHOKE on duplicates and, for the
 * oracle, the push decision, in this process only: an experiment, not a protocol.
 *
 * Usage: npm run bench -- one-copy-hindsight [--seed N] [--bytes 256|100000] [--single]
 *   [--learn L] [--only rules,oracle,spt,model,ablate,noise,lookahead,top,greedy,learn,...]
 *   (runs whose name contains one of them; stock and the flood always run)
 */
import type { PeerKey, Topic } from '../src/common/artifact.ts'
import { messageIdKey } from '../src/common/message-id.ts'
import { ArrivalLog, FloodReach, LinkRoles, type RoleChange } from '../src/gossip/one-copy.ts'
import { GossipRouter } from '../src/gossip/router.ts'
import { EventQueue } from '../src/sim/event-queue.ts'
import {
  gossipOneCopyStrategy,
  gossipStockStrategy,
  SIM_VALIDATION_DELAY,
  withPublishers,
} from '../src/sim/gossip-strategy.ts'
import { simNodeName } from '../src/sim/network.ts'
import { runScenario, SCENARIO_TOPIC, type SimStrategy } from '../src/sim/scenario.ts'
import { gossipSimScenario } from './gossip-sim/scenario.ts'
import { argValue, fmt, printTable, type Row, writeResults } from './report.ts'

const seed = Number(argValue('--seed') ?? 1)
const bytes = Number(argValue('--bytes') ?? 256)
const single = process.argv.includes('--single')
const only = argValue('--only')?.split(',')
const NODES = 1000
const MESSAGES = 30
/** Messages after the measured ones in the flood run, to learn per-region trees from (`--learn`). */
const LEARN = Number(argValue('--learn') ?? 0)
const TOTAL = MESSAGES + LEARN
const LATE_MS = 100

/** Which terms the arrival model of the per-source trees counts (`--only ablate` drops each). */
interface ModelTerms {
  /** A node's k-th child gets its copy k serializations after the first (else one). */
  perChild: boolean
  /** Each hop adds the receiver's validation delay. */
  validation: boolean
  /** The publisher's flood targets may take a mesh parent when that is sooner. */
  meshForRoots: boolean
  /** Each hop adds the sender's serialization of one copy, and the k-th flood target k (default). */
  serialization?: boolean
  /** Relative error of each measured link latency, fixed per link and direction (0: exact). */
  latencyError?: number
}

const sc = gossipSimScenario(`hindsight ${bytes} B`, NODES, bytes, 'consensus', seed, MESSAGES)
const pub = (s: SimStrategy) => (single ? withPublishers(s, () => [0]) : s)

/** Per node, per peer, the arrival time of each message's copy from that peer (NaN: none). */
type Matrix = Map<PeerKey, Float64Array>[]

type Plan = (node: number, candidates: PeerKey[]) => PeerKey[]
let mode: 'normal' | 'flood' | 'fixed' | 'oracle' = 'normal'
/** Oracle: the node whose copy of each message reached each node first in the flood (per message). */
let firstSender: Int32Array[] = []
/** In oracle mode: whether `sender` pushes message `m` to mesh peer `receiver`. */
let pushes: (sender: number, receiver: number, m: number) => boolean = () => true
/** The node forwarding a message right now, and the message's index. */
let forwarding: { node: number; m: number } | undefined
let plan: Plan = () => []
const nodeOf = new WeakMap<object, number>()
/** Each node's current router, for the mesh snapshots of the shortest-path trees. */
const routerOf: GossipRouter[] = []
const chosenOf = new Map<number, Set<PeerKey>>()

// Rule 4's choice replaced by the experiment's: every candidate (flood) or the plan (fixed).
const select = ArrivalLog.prototype.select
ArrivalLog.prototype.select = function (
  this: ArrivalLog,
  topic: Topic,
  candidates: PeerKey[],
  isLazy: (peer: PeerKey) => boolean,
  others: PeerKey[],
  minEager: number,
  minSamples?: number,
): RoleChange[] {
  const node = nodeOf.get(this)
  if (mode === 'normal' || node === undefined) {
    return select.call(this, topic, candidates, isLazy, others, minEager, minSamples)
  }
  if (mode === 'oracle') return []
  const chosen = mode === 'flood' ? candidates : plan(node, candidates)
  chosenOf.set(node, new Set(chosen))
  ;(this as unknown as { wanted: Map<Topic, number> }).wanted.set(
    topic,
    chosen.length + others.length,
  )
  const changes: RoleChange[] = []
  for (const p of candidates) {
    const eager = chosen.includes(p)
    if (eager === isLazy(p)) changes.push({ peer: p, lazy: !eager })
  }
  return changes
}
// A duplicate never chokes a chosen in-link (it would until the next heartbeat).
const duplicate = LinkRoles.prototype.duplicate
LinkRoles.prototype.duplicate = function (this: LinkRoles, topic: Topic, peer: PeerKey): void {
  const node = nodeOf.get(this)
  if (mode !== 'normal' && node !== undefined) {
    if (mode !== 'fixed' || chosenOf.get(node)?.has(peer)) return
  }
  duplicate.call(this, topic, peer)
}
// Oracle (per-source trees with hindsight): a node pushes a message to a mesh peer only if its
// copy reached that peer first in the flood run; no flood root pushes beyond that.
const announcesTo = LinkRoles.prototype.announcesTo
LinkRoles.prototype.announcesTo = function (this: LinkRoles, topic: Topic, peer: PeerKey): boolean {
  const node = nodeOf.get(this)
  if (mode === 'oracle' && forwarding !== undefined && forwarding.node === node) {
    const host = (this as unknown as { host: { speaksOneCopy(p: PeerKey): boolean } }).host
    const to = nameToNode.get(peer)
    if (!host.speaksOneCopy(peer) || to === undefined) return false
    return !pushes(node, to, forwarding.m)
  }
  return announcesTo.call(this, topic, peer)
}
const rootPushes = FloodReach.prototype.rootPushes
FloodReach.prototype.rootPushes = function (this: FloodReach, ...args): number {
  return mode === 'oracle' ? 0 : rootPushes.apply(this, args)
}
const routerProto = GossipRouter.prototype as unknown as {
  accepted(peer: PeerKey, m: unknown, key: string, a: { data: Uint8Array }): void
}
const accepted = routerProto.accepted
routerProto.accepted = function (this: object, peer, m, key, a): void {
  const node = nodeOf.get(this)
  forwarding =
    node === undefined || a.data.length < 4
      ? undefined
      : { node, m: new DataView(a.data.buffer, a.data.byteOffset).getUint32(0) }
  try {
    accepted.call(this, peer, m, key, a)
  } finally {
    forwarding = undefined
  }
}
const nameToNode = new Map<PeerKey, number>()
for (let i = 0; i < NODES; i++) nameToNode.set(simNodeName(i), i)

/** `strategy` whose routers are known by node, and whose copies are recorded into `into`. */
function instrumented(strategy: SimStrategy, into?: Matrix): SimStrategy {
  return {
    ...strategy,
    create: (env, index, ctx) => {
      const core = strategy.create(env, index, ctx) as GossipRouter
      const roles = (core as unknown as { roles: LinkRoles }).roles
      nodeOf.set(core, index)
      routerOf[index] = core
      nodeOf.set(roles, index)
      nodeOf.set((roles as unknown as { arrivals: ArrivalLog }).arrivals, index)
      if (into !== undefined) {
        const m = new Map<PeerKey, Float64Array>()
        into[index] = m
        const msgIndex = new Map<string, number>()
        const note = (from: PeerKey | undefined, i: number | undefined, at: number) => {
          if (from === undefined || i === undefined || i >= TOTAL) return
          let row = m.get(from)
          if (row === undefined) {
            row = new Float64Array(TOTAL).fill(Number.NaN)
            m.set(from, row)
          }
          if (Number.isNaN(row[i])) row[i] = at
        }
        core.on('artifact', (a) => {
          const i = new DataView(a.data.buffer, a.data.byteOffset).getUint32(0)
          msgIndex.set(messageIdKey(a.id), i)
          note(a.from, i, a.receivedAt)
        })
        core.on('duplicate', (d) => note(d.from, msgIndex.get(messageIdKey(d.id)), d.receivedAt))
      }
      return core
    },
  }
}

/** The publishers, as the scenario runner picks them (same PRNG fork and draws). */
async function origins(): Promise<number[]> {
  const { Prng } = await import('../src/sim/prng.ts')
  const pick = new Prng(seed).fork('publishers')
  const out: number[] = []
  for (let m = 0; m < TOTAL; m++) {
    out.push(single ? 0 : pick.int(NODES))
    if (single) pick.int(1)
    if (bytes >= 8) pick.nextU32()
  }
  return out
}

const rows: Row[] = []
const out: Record<string, number> = {}
let stockP99 = Number.NaN
async function measure(name: string, strategy: SimStrategy, messages = MESSAGES): Promise<void> {
  process.stderr.write(`running ${name}...\n`)
  const r = await runScenario({ ...sc, messages }, pub(strategy))
  const s = r.summary
  if (name === 'stock') stockP99 = s.latencyMs.p99
  const floor = (NODES - 1) * bytes
  rows.push({
    run: name,
    delivery: fmt(s.deliveryRatio, 4),
    'dups mean': fmt(s.duplicates.mean),
    'p50 ms': fmt(s.latencyMs.p50, 1),
    'p99 ms': fmt(s.latencyMs.p99, 1),
    'p99 / stock': fmt(s.latencyMs.p99 / stockP99),
    'bytes / floor': fmt(s.bytesPerMessage / floor),
  })
  out[`${name} dups per node per message`] = s.duplicates.mean
  out[`${name} p99 ms`] = s.latencyMs.p99
  out[`${name} p99 over stock`] = s.latencyMs.p99 / stockP99
  out[`${name} bytes over floor`] = s.bytesPerMessage / floor
  out[`${name} delivery`] = s.deliveryRatio
}

mode = 'normal'
await measure('stock', gossipStockStrategy)
if (only === undefined || only.includes('rules')) {
  await measure('one-copy (rules 1-9)', instrumented(gossipOneCopyStrategy))
}
const matrix: Matrix = []
mode = 'flood'
await measure(
  `one-copy, every in-link eager${LEARN > 0 ? ` (${TOTAL} messages)` : ''}`,
  instrumented(gossipOneCopyStrategy, matrix),
  TOTAL,
)

const from = await origins()
firstSender = matrix.map((row) => {
  const first = new Int32Array(MESSAGES).fill(-1)
  const at = new Float64Array(MESSAGES).fill(Number.POSITIVE_INFINITY)
  for (const [p, times] of row ?? []) {
    for (let i = 0; i < MESSAGES; i++) {
      if (times[i] < at[i]) {
        at[i] = times[i]
        first[i] = nameToNode.get(p) ?? -1
      }
    }
  }
  return first
})

/** Delay of each message over `set` at `node` against the earliest candidate (origin left out). */
function cost(node: number, candidates: PeerKey[], set: PeerKey[]): number {
  const m = matrix[node]
  let total = 0
  for (let i = 0; i < MESSAGES; i++) {
    if (from[i] === node) continue
    let first = Number.POSITIVE_INFINITY
    for (const p of candidates) {
      if (nameToNode.get(p) === from[i]) continue
      const t = m.get(p)?.[i]
      if (t !== undefined && t < first) first = t
    }
    if (!Number.isFinite(first)) continue
    let best = LATE_MS
    for (const p of set) {
      if (nameToNode.get(p) === from[i]) continue
      const t = m.get(p)?.[i]
      if (t !== undefined && !Number.isNaN(t) && t - first < best) best = t - first
    }
    total += best
  }
  return total
}

function byFirsts(k: number): Plan {
  return (node, candidates) => {
    const m = matrix[node]
    const count = new Map<PeerKey, number>(candidates.map((p) => [p, 0]))
    for (let i = 0; i < MESSAGES; i++) {
      let best: PeerKey | undefined
      let at = Number.POSITIVE_INFINITY
      for (const p of candidates) {
        if (nameToNode.get(p) === from[i]) continue
        const t = m.get(p)?.[i]
        if (t !== undefined && t < at) {
          at = t
          best = p
        }
      }
      if (best !== undefined) count.set(best, count.get(best)! + 1)
    }
    return [...candidates].sort((a, b) => count.get(b)! - count.get(a)!).slice(0, k)
  }
}

function greedy(k: number, gainMs = 0): Plan {
  return (node, candidates) => {
    const chosen: PeerKey[] = []
    let total = cost(node, candidates, [])
    while (chosen.length < Math.min(k, candidates.length)) {
      let best: PeerKey | undefined
      let bestCost = Number.POSITIVE_INFINITY
      for (const p of candidates) {
        if (chosen.includes(p)) continue
        const c = cost(node, candidates, [...chosen, p])
        if (c < bestCost) {
          best = p
          bestCost = c
        }
      }
      if (best === undefined) break
      if (chosen.length >= 1 && total - bestCost < gainMs * MESSAGES) break
      chosen.push(best)
      total = bestCost
    }
    return chosen
  }
}

const plans: Array<[string, Plan]> = [
  ['hindsight: top 1 by first copies', byFirsts(1)],
  ['hindsight: top 2 by first copies', byFirsts(2)],
  ['hindsight: top 3 by first copies', byFirsts(3)],
  ['hindsight: greedy 2', greedy(2)],
  ['hindsight: greedy 3', greedy(3)],
  ["hindsight: greedy, rule 4's 15 ms gain", greedy(4, 15)],
]
if (only === undefined || only.includes('oracle')) {
  mode = 'oracle'
  pushes = (sender, receiver, m) => firstSender[receiver][m] === sender
  await measure(
    'per-source oracle: push only where the flood came first',
    instrumented(gossipOneCopyStrategy),
  )
}
if (LEARN > 0) {
  // Trees learnt out of sample (messages MESSAGES..TOTAL of the flood run), applied to the
  // measured messages: per topic (one set of in-links per node) and per publisher region.
  const { buildNetwork } = await import('../src/sim/scenario.ts')
  const { Prng } = await import('../src/sim/prng.ts')
  const region = buildNetwork(sc, new Prng(seed)).placement.region
  const learnt = (k: number, key: (origin: number) => number) => {
    const sets = matrix.map((row, v) => {
      const counts = new Map<number, Map<number, number>>()
      for (let i = MESSAGES; i < TOTAL; i++) {
        if (from[i] === v) continue
        let best = -1
        let at = Number.POSITIVE_INFINITY
        for (const [p, times] of row ?? []) {
          const u = nameToNode.get(p) ?? -1
          if (u === from[i] || !(times[i] < at)) continue
          at = times[i]
          best = u
        }
        if (best < 0) continue
        const c = counts.get(key(from[i])) ?? new Map<number, number>()
        counts.set(key(from[i]), c)
        c.set(best, (c.get(best) ?? 0) + 1)
      }
      const top = new Map<number, Set<number>>()
      for (const [r, c] of counts) {
        top.set(
          r,
          new Set(
            [...c]
              .sort((a, b) => b[1] - a[1])
              .slice(0, k)
              .map(([u]) => u),
          ),
        )
      }
      return top
    })
    return (sender: number, receiver: number, m: number) =>
      sets[receiver].get(key(from[m]))?.has(sender) === true
  }
  mode = 'oracle'
  for (const k of [1, 2]) {
    pushes = learnt(k, () => 0)
    await measure(
      `learnt from ${LEARN} other messages: top ${k} per topic`,
      instrumented(gossipOneCopyStrategy),
    )
    pushes = learnt(k, (o) => region[o])
    await measure(`learnt: top ${k} per publisher region`, instrumented(gossipOneCopyStrategy))
  }
}
const runs = (key: string) => only === undefined || only.includes(key)
if (['spt', 'model', 'ablate', 'noise', 'lookahead'].some(runs)) {
  const { buildNetwork } = await import('../src/sim/scenario.ts')
  const { Prng } = await import('../src/sim/prng.ts')
  const net = buildNetwork(sc, new Prng(seed))
  /** One copy's serialization at node `v`'s uplink, in ms (frame header left out). */
  const txMs = (v: number) => (bytes * 8 * 1000) / net.uploadBps(v)
  const internals = (v: number) =>
    routerOf[v] as unknown as {
      meshes: { meshOf(t: Topic): Set<PeerKey> | undefined }
      topicPeers: Map<Topic, Set<PeerKey>>
    }
  /**
   * Parents by a model of arrival times: each node forwards its validation delay after its copy
   * came, a node's k-th child gets its copy k serializations later, the publisher's k-th flood
   * target k serializations after the publish; a flood target takes a mesh parent when that
   * is sooner (its IDONTWANT then cancels the queued flood copy). Greedy, like Dijkstra: the
   * node with the soonest arrival is settled first and adds one serialization to its parent's
   * later children.
   */
  const modelTree = (m: number, terms: ModelTerms): Int32Array => {
    const src = from[m]
    const validation = terms.validation
      ? SIM_VALIDATION_DELAY.validationDelayMs +
        (SIM_VALIDATION_DELAY.validationDelayMsPerKB * bytes) / 1000
      : 0
    const parent = new Int32Array(NODES).fill(-1)
    const ready = new Float64Array(NODES).fill(Number.POSITIVE_INFINITY)
    const children = new Int32Array(NODES)
    const rootOf = new Uint8Array(NODES)
    // Offers (arrival time, node q; tags: parent y, y's child count when offered + 1, 0 for
    // the publisher's flood).
    const heap = new EventQueue<number>()
    // The latency as the receiver measured it: off by up to ±latencyError, a hash of the link.
    const err = terms.latencyError ?? 0
    const lat = (y: number, q: number) =>
      net.latency(y, q) *
      (1 + err * (2 * (((Math.imul(y * 7919 + q, 0x9e3779b1) >>> 0) % 1000) / 1000) - 1))
    const tx = (v: number) => (terms.serialization === false ? 0 : txMs(v))
    const via = (y: number, q: number) =>
      ready[y] + (terms.perChild ? children[y] + 1 : 1) * tx(y) + lat(y, q) + validation
    ready[src] = 0
    parent[src] = src
    let k = 0
    for (const p of internals(src).topicPeers.get(SCENARIO_TOPIC) ?? []) {
      const q = nameToNode.get(p)!
      k++
      rootOf[q] = 1
      heap.push(k * tx(src) + lat(src, q) + validation, q, src, 0)
    }
    const offer = (y: number) => {
      for (const p of internals(y).meshes.meshOf(SCENARIO_TOPIC) ?? []) {
        const q = nameToNode.get(p)!
        if (parent[q] >= 0 || (rootOf[q] === 1 && !terms.meshForRoots)) continue
        heap.push(via(y, q), q, y, children[y] + 1)
      }
    }
    while (heap.size > 0) {
      const t = heap.peekTime()
      const q = heap.pop()!
      const y = heap.poppedA
      const seen = heap.poppedB
      if (parent[q] >= 0) continue
      if (terms.perChild && seen > 0 && seen !== children[y] + 1) {
        heap.push(via(y, q), q, y, children[y] + 1)
        continue
      }
      parent[q] = y
      ready[q] = t
      if (seen > 0) children[y]++
      offer(q)
    }
    return parent
  }
  /** Runs one-copy with each message pushed only parent → child in the tree `build` gives it. */
  const measureTrees = async (name: string, build: (m: number) => Int32Array) => {
    const trees = new Map<number, Int32Array>()
    pushes = (sender, receiver, m) => {
      let t = trees.get(m)
      if (t === undefined) {
        t = build(m)
        trees.set(m, t)
      }
      return t[receiver] === sender
    }
    await measure(name, instrumented(gossipOneCopyStrategy))
  }
  mode = 'oracle'
  const models: Array<[string, ModelTerms]> = []
  if (runs('model')) {
    models.push(
      [
        'per-source trees, arrival model (serialization per child, validation per hop)',
        { perChild: true, validation: true, meshForRoots: true },
      ],
      // What a distance vector can carry: every term is the sender's or the link's own.
      [
        'per-source trees, latency + one serialization + validation per hop',
        { perChild: false, validation: true, meshForRoots: true },
      ],
    )
  }
  if (runs('ablate')) {
    models.push(
      [
        'arrival model without validation per hop',
        { perChild: true, validation: false, meshForRoots: true },
      ],
      [
        'arrival model, flood targets keep the publisher as parent',
        { perChild: true, validation: true, meshForRoots: false },
      ],
    )
  }
  if (runs('noise')) {
    models.push([
      'latency + one serialization + validation per hop, latency measured ±20%',
      { perChild: false, validation: true, meshForRoots: true, latencyError: 0.2 },
    ])
  }
  if (runs('spt')) {
    // Shortest paths alone: no validation delay, the flood's targets keep the publisher.
    const spt = { perChild: false, validation: false, meshForRoots: false }
    models.push(
      ['per-source shortest-path trees, link latency', { ...spt, serialization: false }],
      ['per-source shortest-path trees, latency + serialization', spt],
    )
  }
  for (const [name, terms] of models) {
    await measureTrees(name, (m) => modelTree(m, terms))
  }
  const lookahead = (m: number): Int32Array => {
    const est = net.latency
    const src = from[m]
    const parent = new Int32Array(NODES).fill(-1)
    for (const p of internals(src).topicPeers.get(SCENARIO_TOPIC) ?? []) {
      parent[nameToNode.get(p)!] = src
    }
    for (let q = 0; q < NODES; q++) {
      if (q === src || parent[q] >= 0) continue
      const own = est(src, q)
      let best = -1
      let bestNear = false
      let at = Number.POSITIVE_INFINITY
      for (const p of internals(q).meshes.meshOf(SCENARIO_TOPIC) ?? []) {
        const y = nameToNode.get(p)!
        const near = y === src || est(src, y) < own
        const d = (y === src ? 0 : est(src, y)) + net.latency(y, q)
        if ((near && !bestNear) || (near === bestNear && d < at)) {
          best = y
          bestNear = near
          at = d
        }
      }
      parent[q] = best
    }
    return parent
  }
  if (runs('lookahead')) {
    await measureTrees('one-hop look-ahead, underlay latency (perfect coordinates)', lookahead)
  }
}
const cached = new Map<string, PeerKey[]>()
for (const [name, p] of plans) {
  if (only !== undefined && !only.some((o) => name.includes(o))) continue
  cached.clear()
  plan = (node, candidates) => {
    const key = `${node} ${candidates.join(',')}`
    let c = cached.get(key)
    if (c === undefined) {
      c = p(node, candidates)
      cached.set(key, c)
    }
    return c
  }
  mode = 'fixed'
  await measure(name, instrumented(gossipOneCopyStrategy))
}

printTable(
  `one-copy with hindsight eager in-links, ${NODES} nodes, ${bytes} B, ${single ? 'single publisher' : 'random publishers'}, seed ${seed}`,
  rows,
)
writeResults(
  `one-copy-hindsight-${bytes}-${single ? 'single' : 'random'}-seed${seed}${only ? `-${only.join('+')}` : ''}`,
  out,
)
