import { PerformanceObserver } from 'node:perf_hooks'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { type Identify, identify } from '@libp2p/identify'
import type { Connection, Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import type { Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Env } from '../../src/common/env.ts'
import { encodeLengthPrefixed } from '../../src/common/length-prefixed.ts'
import { contentMessageId } from '../../src/common/message-id.ts'
import { peerHashesBytes, topicHash } from '../../src/gossip/one-copy.ts'
import { DEFAULT_PEER_BUDGETS } from '../../src/gossip/peer-budget.ts'
import { MESHSUB_1_2, MESHSUB_1_3 } from '../../src/gossip/protocol-ids.ts'
import {
  DEFAULT_RPC_LIMITS,
  emptyControl,
  emptyOneCopy,
  encodeRpc,
  HELLO_ACK,
  type Rpc,
  type RpcOneCopy,
} from '../../src/gossip/rpc-codec.ts'
import {
  type DenyListGater,
  type DenyListGaterOptions,
  denyListGater,
} from '../../src/libp2p/deny-gater.ts'
import { type GossipService, gossip } from '../../src/libp2p/gossip-service.ts'
import { refusingTcp } from '../../src/libp2p/refusing-tcp.ts'
import { mainThreadClock } from './thread-clock.ts'
import { waitFor } from './wait.ts'

/**
 * The gossip attacks of issue 11, as hand-built `/meshsub/1.2.0` frames an outside attacker
 * sends to a victim (`/meshsub/1.3.0` for the one-copy ones). Shared by the sans-IO tests,
 * the libp2p tests and `bench/attack/gossip.ts`.
 */
export interface GossipAttack {
  /** Short name (a table row). */
  name: string
  /** Frames per second the attacker aims at (as measured in issue 11). */
  rate: number
  /**
   * The next frame (without its length prefix). `stream` attacks instead return the raw
   * bytes to write on a fresh stream.
   */
  next(): Uint8Array
  /** True when every frame goes on a new stream as raw bytes (the bad-framing attack). */
  stream?: boolean
  /**
   * A one-copy attack: the attacker speaks `/meshsub/1.3.0` and sends these frames first on
   * each stream, as our nodes negotiate the extension (Extensions with its subscription, then
   * a hello), and the victim must speak one-copy.
   */
  oneCopy?: Uint8Array[]
  /**
   * Flood frames the victim may read before it cuts the attacker off, given the ms from the
   * attack's start to the cut-off (default 10 whatever the time): more for a budget sized for
   * honest bursts, such as flood marks', which also refills while the frames come.
   */
  framesToCutOff?: (cutOffMs: number) => number
  /**
   * Not an attack: a peer that joins and behaves. Its bench row measures what any new
   * connection costs the victim, the reference for the attack rows' honest p99.
   */
  control?: true
}

const FOUR_MIB = 4 * 1024 * 1024

function varint(n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}

/** A frame of `field` (top level, or inside one control field) repeated empty, filling `bytes`. */
function emptyEntries(bytes: number, field: number, insideControl: boolean): Uint8Array {
  const tag = (field << 3) | 2
  const header = insideControl ? 1 + 5 : 0
  const count = Math.floor((bytes - header) / 2)
  const head = insideControl ? [0x1a, ...varint(count * 2)] : []
  const out = new Uint8Array(head.length + count * 2)
  out.set(head)
  for (let i = head.length; i < out.length; i += 2) out[i] = tag
  return out
}

/** A frame of many empty IWANT entries inside one control field (about 2.1 M in 4 MiB). */
export function emptyIWantEntriesFrame(bytes = FOUR_MIB - 8): Uint8Array {
  return emptyEntries(bytes, 2, true)
}

/** A frame of many empty IDONTWANT entries inside one control field. */
export function emptyIDontWantEntriesFrame(bytes = FOUR_MIB - 8): Uint8Array {
  return emptyEntries(bytes, 5, true)
}

/** A frame of many empty control fields. */
export function emptyControlFieldsFrame(bytes = FOUR_MIB - 8): Uint8Array {
  return emptyEntries(bytes, 3, false)
}

/** A small deterministic generator of pseudo-random ids (xorshift), for repeatable frames. */
function idSource(seed: number): () => Uint8Array {
  let x = seed | 1
  return () => {
    const id = new Uint8Array(20)
    for (let i = 0; i < 20; i += 4) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      new DataView(id.buffer).setUint32(i, x >>> 0)
    }
    return id
  }
}

function control(c: Partial<NonNullable<Rpc['control']>>): Uint8Array {
  return encodeRpc({ subscriptions: [], messages: [], control: { ...emptyControl(), ...c } })
}

/** The attacker's own message, 1 KB on `topic`: valid under StrictNoSign. */
export function attackerMessage(topic: string): { topic: string; data: Uint8Array } {
  return { topic, data: new Uint8Array(1024).fill(0xa5) }
}

/** The same frame every time, built on first use. */
function once(build: () => Uint8Array): () => Uint8Array {
  let frame: Uint8Array | undefined
  return () => {
    frame ??= build()
    return frame
  }
}

/**
 * Cycles through `n` frames built up front, so that building frames costs the attacker
 * (which may share the victim's process and cores) next to nothing while it attacks.
 */
function pool(n: number, build: () => Uint8Array): () => Uint8Array {
  const frames = Array.from({ length: n }, build)
  let i = 0
  return () => frames[i++ % n]
}

/** Short ids (8 bytes) from a generator of 20-byte ids. */
function shortIds(random: () => Uint8Array, n: number): Uint8Array[] {
  return Array.from({ length: n }, () => random().subarray(0, 8))
}

/** A frame of one-copy messages. */
function oneCopy(o: Partial<RpcOneCopy>): Uint8Array {
  return encodeRpc({ subscriptions: [], messages: [], oneCopy: { ...emptyOneCopy(), ...o } })
}

/**
 * Frames of a new 1 KB message each (never seen before: valid, not a replay) flood-marked
 * with `hashes` random peer hashes.
 */
function markedMessages(topic: string, hashes: number): () => Uint8Array {
  let n = 0
  let x = 0x5e47 | 1
  // A few marks built up front, so that the attacker spends its time sending.
  const marks = Array.from({ length: 16 }, () =>
    peerHashesBytes(
      Uint32Array.from({ length: hashes }, () => {
        x ^= x << 13
        x ^= x >>> 17
        x ^= x << 5
        return x >>> 0
      }),
    ),
  )
  return () => {
    const data = new Uint8Array(1024).fill(0xa5)
    new DataView(data.buffer).setUint32(0, n)
    const sentTo = marks[n++ % marks.length]
    return encodeRpc({
      subscriptions: [],
      messages: [{ topic, data }],
      oneCopy: { ...emptyOneCopy(), sentTo },
    })
  }
}

/**
 * The one-copy attacks (doc/gossip-extension.md): an attacker that negotiates the extension
 * as our nodes do, then floods its message kinds and fields, against `topic`.
 */
export function oneCopyAttacks(topic: string): GossipAttack[] {
  const random = idSource(0x0c09)
  const handshake = oneCopyHandshake(topic)
  const hash = topicHash(topic)
  let flip = 0
  const maxHashes = DEFAULT_RPC_LIMITS.maxPeerHashes
  return [
    {
      // A link turned lazy and eager again and again, 128 turns a frame.
      name: 'one-copy CHOKE/UNCHOKE churn',
      rate: 200,
      oneCopy: handshake,
      next: pool(2, () =>
        flip++ % 2 === 0
          ? oneCopy({ choke: Array(128).fill(topic) })
          : oneCopy({ unchoke: Array(128).fill(topic) }),
      ),
    },
    {
      name: 'one-copy announce 5,000 random short ids',
      rate: 125,
      oneCopy: handshake,
      // A peer's announces open at most MAX_PULLS_PER_ANNOUNCER pull entries and the rest of a
      // frame's ids are not read: each frame costs about a millisecond, and the budget cuts the
      // attacker off at its fourth or fifth (the default bound of 10).
      next: pool(64, () =>
        oneCopy({ announce: [{ topicHash: hash, ids: shortIds(random, 5000) }] }),
      ),
    },
    {
      name: 'one-copy INEED random ids',
      rate: 250,
      oneCopy: handshake,
      next: pool(64, () => oneCopy({ ineed: shortIds(random, 1000) })),
    },
    {
      // maxPeerHashes in 64 lists (each list one unit of the CHOKE budget).
      name: 'one-copy inLinks at maximum size',
      rate: 200,
      oneCopy: handshake,
      next: pool(16, () =>
        oneCopy({
          inLinks: Array.from({ length: 64 }, () => ({
            topicHash: hash,
            peers: shortIds(random, maxHashes / 64).map((id) => id.subarray(0, 4)),
            rank: 0,
          })),
        }),
      ),
    },
    {
      name: 'one-copy sentTo 1,024 on new messages',
      rate: 200,
      oneCopy: handshake,
      // The `mark` budget's burst (10,000 hashes) and what refills until the cut-off (20,000
      // a second) are ~10 full marks at this rate (more when a busy machine slows the
      // attacker), then the frame that overdraws it by 512 cuts off.
      framesToCutOff: (cutOffMs) => {
        const { perSecond, burst, cutOffOverdraft } = DEFAULT_PEER_BUDGETS.rates.mark
        const admitted = burst + cutOffOverdraft! + (perSecond * cutOffMs) / 1000
        return Math.floor(admitted / maxHashes) + 1
      },
      next: markedMessages(topic, maxHashes),
    },
    {
      name: 'one-copy sentTo 1,025 (over the limit)',
      rate: 200,
      oneCopy: handshake,
      next: markedMessages(topic, maxHashes + 1),
    },
  ]
}

/** The frames a one-copy attacker negotiates the extension with, as our nodes do. */
function oneCopyHandshake(topic: string): Uint8Array[] {
  return [
    encodeRpc({
      subscriptions: [{ subscribe: true, topic }],
      messages: [],
      control: { ...emptyControl(), extensions: { oneCopy: true } },
    }),
    oneCopy({ hello: HELLO_ACK }),
  ]
}

/**
 * A one-copy peer that announces 16 ids nobody has four times a second, within its
 * `announce` budget, and answers none of the INEEDs they bring. Not a bench row: the victim
 * finds it out only when it gives up on its ids, seconds later (rule 5's asks).
 */
export function unansweredAnnounceAttack(topic: string): GossipAttack {
  const random = idSource(0x0a11)
  const hash = topicHash(topic)
  return {
    name: 'one-copy announce 16 ids nobody has, 4 times a second',
    rate: 4,
    oneCopy: oneCopyHandshake(topic),
    next: pool(64, () => oneCopy({ announce: [{ topicHash: hash, ids: shortIds(random, 16) }] })),
  }
}

/** Every stock gossip attack of issue 11 (meshsub 1.2, no extension), against `topic`. */
export function gossipAttacks(topic: string): GossipAttack[] {
  const random = idSource(0x5eed)
  const ids = (n: number) => Array.from({ length: n }, random)
  const mine = attackerMessage(topic)
  const mineId = contentMessageId(mine.topic, mine.data)
  let churn = 0
  return [
    { name: 'empty IWANT entries (4 MiB)', rate: 20, next: once(emptyIWantEntriesFrame) },
    { name: 'empty IDONTWANT entries (4 MiB)', rate: 20, next: once(emptyIDontWantEntriesFrame) },
    { name: 'empty control fields (4 MiB)', rate: 20, next: once(emptyControlFieldsFrame) },
    {
      name: 'IDONTWANT 5,000 ids',
      rate: 40,
      next: pool(16, () => control({ idontwant: [{ messageIDs: ids(5000) }] })),
    },
    {
      // Over the per-frame limit (512, stock's own) since issue 11's first round.
      name: 'IDONTWANT 1,000 ids',
      rate: 200,
      next: pool(64, () => control({ idontwant: [{ messageIDs: ids(1000) }] })),
    },
    {
      // The same ids a second at the per-frame limit: the per-peer budget is what stops it.
      name: 'IDONTWANT 512 ids',
      rate: 400,
      next: pool(64, () => control({ idontwant: [{ messageIDs: ids(512) }] })),
    },
    {
      name: 'IWANT random ids',
      rate: 250,
      next: pool(64, () => control({ iwant: [{ messageIDs: ids(1000) }] })),
    },
    {
      name: 'IWANT a real id repeated',
      rate: 250,
      // The first frame publishes the id; every later one asks for it 1,000 times.
      next: (() => {
        const publish = encodeRpc({ subscriptions: [], messages: [mine] })
        const ask = control({ iwant: [{ messageIDs: Array(1000).fill(mineId) }] })
        let first = true
        return () => {
          const f = first ? publish : ask
          first = false
          return f
        }
      })(),
    },
    {
      name: 'subscription churn 5,000',
      rate: 100,
      // Subscribe to 5,000 names, then to 5,000 others, then leave both, and again.
      next: pool(4, () => {
        const base = (churn % 2) * 5000
        const on = churn++ < 2
        return encodeRpc({
          subscriptions: Array.from({ length: 5000 }, (_, i) => ({
            subscribe: on,
            topic: `churn-${base + i}`,
          })),
          messages: [],
        })
      }),
    },
    {
      name: 'IHAVE 5,000 random ids',
      rate: 125,
      next: pool(64, () => control({ ihave: [{ topicID: topic, messageIDs: ids(5000) }] })),
    },
    {
      name: 'same message replayed',
      rate: 700,
      next: pool(1, () => encodeRpc({ subscriptions: [], messages: [mine] })),
    },
    {
      name: 'declared 100 MB frame',
      rate: 50,
      stream: true,
      next: () => Uint8Array.from([...varint(100 * 1024 * 1024), 1, 2, 3, 4]),
    },
  ]
}

/** The stock attacks ({@link gossipAttacks}) then the one-copy ones ({@link oneCopyAttacks}). */
export function everyGossipAttack(topic: string): GossipAttack[] {
  return [...gossipAttacks(topic), ...oneCopyAttacks(topic)]
}

/**
 * The control row of the attack bench: a new peer connects, subscribes to `topic` and then
 * sends one empty RPC a second, as a quiet honest peer would; the victim has no reason to
 * cut it off, and meshes with it.
 */
export function newPeerControl(topic: string): GossipAttack {
  const subscribe = encodeRpc({ subscriptions: [{ subscribe: true, topic }], messages: [] })
  const empty = encodeRpc({ subscriptions: [], messages: [] })
  let first = true
  return {
    name: 'control: a new peer joins and behaves',
    rate: 1,
    control: true,
    next: () => {
      const frame = first ? subscribe : empty
      first = false
      return frame
    },
  }
}

/** The attack bench's rows: every attack, then the control ({@link newPeerControl}). */
export function gossipBenchRows(topic: string): GossipAttack[] {
  return [...everyGossipAttack(topic), newPeerControl(topic)]
}

/** What an attack run saw. */
export interface AttackRun {
  /** Frames (or streams, for stream attacks) written. */
  sent: number
  /** True when the victim closed the connection. */
  disconnected: boolean
  /** Milliseconds from the start to the disconnection (or to the end). */
  elapsedMs: number
  /** Milliseconds from the start to the first disconnection (null: never cut off). */
  cutOffMs: number | null
  /** Dials after the first disconnection (a persistent attacker's redials), refused or not. */
  redials: number
  /**
   * CPU time of the attacking process (every thread, user and system) from the start to the
   * first disconnection, and from there to the end, in ms: what sending and redialling cost
   * the attacker's side of the machine.
   */
  processCpuToCutOffMs: number
  processCpuAfterCutOffMs: number
}

/**
 * Sends `attack`'s frames from `attacker` to `victim` on `/meshsub/1.2.0` at its rate, until
 * `durationMs` pass or `stop()` says so. Without `persist` it also stops when the victim
 * closes the connection; with it, it dials again and goes on, as a determined attacker would.
 */
export async function runAttack(
  attacker: Libp2p,
  victim: Multiaddr,
  attack: GossipAttack,
  durationMs: number,
  stop: () => boolean = () => false,
  persist = false,
): Promise<AttackRun> {
  const start = Date.now()
  const cpuStart = process.cpuUsage()
  let cutOff: { at: number; cpu: NodeJS.CpuUsage } | undefined
  let redials = 0
  let connection: Connection | undefined
  let stream: Stream | undefined
  let sent = 0
  let disconnected = false
  const interval = 1000 / attack.rate
  const protocol = attack.oneCopy === undefined ? MESHSUB_1_2 : MESHSUB_1_3
  const pause = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)))
  while (Date.now() - start < durationMs && !stop()) {
    if (connection === undefined || connection.status !== 'open') {
      if (connection !== undefined) disconnected = true
      if (disconnected) cutOff ??= { at: Date.now(), cpu: process.cpuUsage() }
      if (connection !== undefined && !persist) break
      if (cutOff !== undefined) redials++
      connection = await attacker.dial(victim).catch(() => undefined)
      stream = undefined
      if (connection === undefined) {
        disconnected = true
        cutOff ??= { at: Date.now(), cpu: process.cpuUsage() }
        if (!persist) break
        await pause(50)
        continue
      }
    }
    try {
      if (attack.stream) {
        const s = await connection.newStream(protocol)
        s.send(attack.next())
      } else {
        if (stream === undefined || stream.writeStatus !== 'writable') {
          stream = await connection.newStream(protocol)
          for (const f of attack.oneCopy ?? []) stream.send(encodeLengthPrefixed(f))
        }
        if (!stream.send(encodeLengthPrefixed(attack.next()))) await stream.onDrain()
      }
      sent++
    } catch {
      // The victim reset the stream or closed the connection: try again (an attacker would).
      stream = undefined
    }
    // Until the next frame is due, looking at `stop` every 50 ms.
    do await pause(Math.min(start + sent * interval - Date.now(), 50))
    while (Date.now() < start + sent * interval && Date.now() - start < durationMs && !stop())
  }
  if (connection !== undefined && connection.status !== 'open') disconnected = true
  const end = process.cpuUsage()
  const cpuMs = (from: NodeJS.CpuUsage, to: NodeJS.CpuUsage) =>
    (to.user - from.user + to.system - from.system) / 1000
  return {
    sent,
    disconnected,
    elapsedMs: Date.now() - start,
    cutOffMs: cutOff === undefined ? null : cutOff.at - start,
    redials,
    processCpuToCutOffMs: cpuMs(cpuStart, cutOff?.cpu ?? end),
    processCpuAfterCutOffMs: cutOff === undefined ? 0 : cpuMs(cutOff.cpu, end),
  }
}

/**
 * Has `victim` cut `attacker` off and deny it, with a stream declaring a 100 MB frame (the
 * quickest attack to a cut-off), and waits until the attacker's connections to it are closed.
 */
export async function getDenied(
  attacker: Libp2p,
  victim: Libp2p,
  isDenied: (peer: string) => boolean,
  topic: string,
): Promise<void> {
  const key = attacker.peerId.toString()
  const attack = gossipAttacks(topic).find((a) => a.stream)!
  await runAttack(attacker, victim.getMultiaddrs()[0], attack, 8000, () => isDenied(key), true)
  if (!isDenied(key)) throw new Error('the victim did not deny the attacker within 8 s')
  await waitFor(() => attacker.getConnections(victim.peerId).every((c) => c.status !== 'open'), {
    what: 'the attacker connection closed',
    timeoutMs: 5000,
  })
}

/**
 * A fresh attacker node (a new identity, since the last one may be denied): it accepts the
 * victim's `/meshsub/1.2.0` stream (or `/meshsub/1.3.0`, for `oneCopy`, which the victim then
 * prefers) and drops what arrives on it.
 */
export async function createAttacker(oneCopy = false): Promise<Libp2p> {
  const x = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  })
  await x.handle(oneCopy ? [MESHSUB_1_3, MESHSUB_1_2] : MESHSUB_1_2, (stream) => {
    stream.addEventListener('message', () => {})
  })
  return x
}

/** Marks A's messages (the attacker's own message is all 0xa5). */
const HONEST_MARK = 0x42

/** The size of A's messages by default, in bytes. */
export const HONEST_BYTES = 1024

/** The sequence number of one of A's messages, or undefined for anyone else's. */
export function honestSeq(data: Uint8Array): number | undefined {
  if (data.length < 13 || data[12] !== HONEST_MARK) return undefined
  return new DataView(data.buffer, data.byteOffset).getUint32(8)
}

/** A gossip node as the attack bed runs it. */
export type GossipNode = Libp2p<{ dissemination: GossipService; identify: Identify }>

/** Honest traffic of one run: what A published and when C got each. */
export interface HonestTraffic {
  /** Messages A published. */
  published: number
  /** Messages C delivered. */
  delivered: number
  /** Latency of each delivered message, A's publish to C's delivery, in ms. */
  latenciesMs: number[]
  /** Wall time the traffic ran, in ms. */
  elapsedMs: number
}

/**
 * The timing of a victim's router, frame by frame and per sending peer, hooked into its
 * sans-IO core.
 *
 * "Router time" is the sans-IO core's own work on a frame (decode, checks, state, encoding
 * what it sends), the same quantity the sans-IO replays measure. The libp2p driver's work
 * that the core's `Env` calls do synchronously inside the frame (writing to a stream: yamux,
 * noise, the socket; aborting a connection: stream resets and libp2p's close events) is
 * timed apart as "driver time in the frame"; the two together are what the frame stalled
 * the node's event loop.
 */
export class VictimProbe {
  /**
   * Where the wall time of each peer's costliest frame (the most router wall time) went,
   * driver work inside it excluded: run time, time waiting for a core, and when it ran
   * (`performance.now()`, to find the GC pauses inside it, see {@link gcMsIn}).
   */
  readonly costliestFrame = new Map<string, CostliestFrame>()
  /** Frames the router received, by peer. */
  readonly frames = new Map<string, number>()
  /**
   * The longest wall time the router spent on one frame (or one driver report), driver work
   * excluded, by peer, in ms.
   */
  readonly maxFrameMs = new Map<string, number>()
  /**
   * The most CPU time (user + system) of the main thread the router spent on one frame,
   * driver work excluded, by peer, in ms: unlike wall time, it does not count the time the
   * process waited for a core, nor GC and JIT helper threads working beside the event loop.
   */
  readonly maxFrameCpuMs = new Map<string, number>()
  /** The longest wall time of driver work (sends, disconnects) inside one frame, by peer, in ms. */
  readonly maxFrameDriverMs = new Map<string, number>()
  /** The longest stall of one frame (router and driver work inside it), by peer, in ms. */
  readonly maxFrameStallMs = new Map<string, number>()
  /** Router wall time of each frame, driver work excluded, by peer, in ms (in arrival order). */
  readonly frameMs = new Map<string, number[]>()
  /** When the router first heard from each peer (a frame or a driver report), as `Date.now()`. */
  readonly firstContact = new Map<string, number>()
  /** Main-thread CPU time the router spent on each peer's frames and reports, in ms. */
  readonly routerCpuMs = new Map<string, number>()

  /** V8's GC pauses (start and duration, `performance.now()` ms), the latest {@link MAX_GC_ENTRIES}. */
  private readonly gcPauses: { start: number; ms: number }[] = []
  private readonly gcObserver: PerformanceObserver

  constructor(victim: GossipNode) {
    const core = victim.services.dissemination.core
    this.gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.gcPauses.push({ start: e.startTime, ms: e.duration })
      if (this.gcPauses.length > MAX_GC_ENTRIES) {
        this.gcPauses.splice(0, this.gcPauses.length - MAX_GC_ENTRIES)
      }
    })
    this.gcObserver.observe({ entryTypes: ['gc'] })
    // The main thread's own time only: GC and JIT helper threads work beside the event loop.
    const clock = mainThreadClock()
    // Driver work done inside the frame being timed (Env calls run synchronously).
    let driverMs = 0
    let driverCpuMs = 0
    let driverQueuedMs = 0
    const env = (core as unknown as { env: Env }).env
    const inDriver =
      <A extends unknown[]>(fn: (...args: A) => void) =>
      (...args: A) => {
        const c0 = clock()
        const t0 = performance.now()
        try {
          fn(...args)
        } finally {
          driverMs += performance.now() - t0
          const c1 = clock()
          driverCpuMs += c1.cpuMs - c0.cpuMs
          driverQueuedMs += c1.queuedMs - c0.queuedMs
        }
      }
    env.send = inDriver(env.send.bind(env))
    const disconnect = env.disconnect?.bind(env)
    if (disconnect !== undefined) env.disconnect = inDriver(disconnect)
    const max = (m: Map<string, number>, peer: string, v: number) => {
      if (v > (m.get(peer) ?? 0)) m.set(peer, v)
    }
    const timed =
      <A extends unknown[]>(fn: (peer: string, ...args: A) => void, count: boolean) =>
      (peer: string, ...args: A) => {
        if (!this.firstContact.has(peer)) this.firstContact.set(peer, Date.now())
        driverMs = 0
        driverCpuMs = 0
        driverQueuedMs = 0
        const c0 = clock()
        const t0 = performance.now()
        fn(peer, ...args)
        const t1 = performance.now()
        const c1 = clock()
        const stall = t1 - t0
        const ms = stall - driverMs
        const cpuMs = c1.cpuMs - c0.cpuMs - driverCpuMs
        if (ms > (this.maxFrameMs.get(peer) ?? 0)) {
          const queuedMs = c1.queuedMs - c0.queuedMs - driverQueuedMs
          this.costliestFrame.set(peer, { wallMs: ms, cpuMs, queuedMs, start: t0, end: t1 })
        }
        if (count) {
          this.frames.set(peer, (this.frames.get(peer) ?? 0) + 1)
          let list = this.frameMs.get(peer)
          if (list === undefined) {
            list = []
            this.frameMs.set(peer, list)
          }
          list.push(ms)
        }
        max(this.maxFrameMs, peer, ms)
        max(this.maxFrameCpuMs, peer, cpuMs)
        max(this.maxFrameDriverMs, peer, driverMs)
        max(this.maxFrameStallMs, peer, stall)
        this.routerCpuMs.set(peer, (this.routerCpuMs.get(peer) ?? 0) + cpuMs)
      }
    // Timing hooks on the victim's router: the sans-IO core is what is measured.
    core.receive = timed(core.receive.bind(core), true)
    core.penalise = timed(core.penalise.bind(core), false)
    core.inboundStreamOpened = timed(core.inboundStreamOpened.bind(core), false)
    const inspect = core.inspectFramePrefix.bind(core)
    let accepted = true
    const inspectTimed = timed((peer: string, prefix: Uint8Array, length: number) => {
      accepted = inspect(peer, prefix, length)
    }, false)
    core.inspectFramePrefix = (peer, prefix, length) => {
      inspectTimed(peer, prefix, length)
      return accepted
    }
  }

  /** Forgets the figures of `peer` (so the next window starts afresh). */
  forget(peer: string): void {
    for (const m of [this.maxFrameMs, this.maxFrameCpuMs, this.frameMs, this.costliestFrame]) {
      m.delete(peer)
    }
  }

  /** Stops watching GC pauses. */
  close(): void {
    this.gcObserver.disconnect()
  }

  /**
   * Milliseconds of V8 GC pauses within `frame` (the whole frame, driver work included):
   * known once the observer has been told of them, a turn of the event loop after.
   */
  gcMsIn(frame: CostliestFrame): number {
    let ms = 0
    for (const { start, ms: d } of this.gcPauses) {
      ms += Math.max(0, Math.min(frame.end, start + d) - Math.max(frame.start, start))
    }
    return ms
  }
}

/** GC pauses a {@link VictimProbe} remembers. */
const MAX_GC_ENTRIES = 10_000

/** Where the wall time of one frame went (see {@link VictimProbe.costliestFrame}), in ms. */
export interface CostliestFrame {
  /** Router wall time, driver work excluded. */
  wallMs: number
  /** Of it, main-thread run time. */
  cpuMs: number
  /** Of it, time the main thread was ready but waited for a core (NaN where unknown). */
  queuedMs: number
  /** When the frame started and ended (driver work included), `performance.now()`. */
  start: number
  end: number
}

/**
 * What a bed node's gater decided about an inbound connection: at the TCP listener, before
 * libp2p's upgrade (by its address, see {@link refusingTcp}), before encryption inside the
 * upgrade (by its address), or after the handshake (by its peer id).
 */
export type GateDecision =
  | 'refused at the listener'
  | 'refused before encryption'
  | 'let through to encryption'
  | 'refused after handshake'
  | 'accepted after handshake'

/**
 * A gossip node on loopback as the attack bed runs it, subscribed to `topic`, whose gater
 * (with `gaterOptions`) counts in `refused` the connections of denied peers it refuses after
 * their encryption handshake, and tells `onGate` of each inbound decision. Its TCP listener
 * refuses throttled addresses before libp2p's upgrade ({@link refusingTcp}) unless
 * `refuseAtListener` is false (then the gater does, inside the upgrade: for comparison).
 */
export async function attackBedNode(
  topic: string,
  refused: Map<string, number>,
  oneCopy = false,
  gaterOptions: DenyListGaterOptions = {},
  onGate?: (decision: GateDecision, peer?: string) => void,
  refuseAtListener = true,
): Promise<GossipNode> {
  const countRefusals = (gater: DenyListGater): DenyListGater => ({
    ...gater,
    refusesAddress: (ip) => {
      const deny = gater.refusesAddress(ip)
      if (deny) onGate?.('refused at the listener')
      return deny
    },
    denyInboundConnection: (connection) => {
      const deny = gater.denyInboundConnection?.(connection) === true
      onGate?.(deny ? 'refused before encryption' : 'let through to encryption')
      return deny
    },
    denyInboundEncryptedConnection: (peer, connection) => {
      const deny = gater.denyInboundEncryptedConnection?.(peer, connection) === true
      if (deny) refused.set(peer.toString(), (refused.get(peer.toString()) ?? 0) + 1)
      onGate?.(deny ? 'refused after handshake' : 'accepted after handshake', peer.toString())
      return deny
    },
  })
  let n: GossipNode | undefined
  const gater = countRefusals(denyListGater(() => n?.services.dissemination, gaterOptions))
  n = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [refuseAtListener ? refusingTcp(gater) : tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: gater,
    // Every attacker of a run comes from 127.0.0.1: libp2p's per-host limit of 5 new
    // connections a second would refuse them before our service ever sees them.
    connectionManager: { inboundConnectionThreshold: 1000 },
    services: {
      identify: identify(),
      dissemination: gossip({ signaturePolicy: 'StrictNoSign', oneCopy }),
    },
  })
  n.services.dissemination.subscribe(topic)
  return n
}

/**
 * Honest A publishing to honest C through whatever connects them (a victim B, in this
 * process or another): what A published and when C got each.
 */
export class HonestPair {
  /** The honest publisher. */
  readonly a: GossipNode
  /** The honest receiver. */
  readonly c: GossipNode
  /** The topic. */
  readonly topic: string
  private readonly latencies: number[] = []

  constructor(a: GossipNode, c: GossipNode, topic: string) {
    this.a = a
    this.c = c
    this.topic = topic
    c.services.dissemination.on('artifact', (art) => {
      if (art.data[12] !== HONEST_MARK) return
      const sentAt = new DataView(art.data.buffer, art.data.byteOffset).getFloat64(0)
      this.latencies.push(performance.now() - sentAt)
    })
  }

  /**
   * Publishes `rate` messages a second of `bytes` from A while `during` runs, then waits (at
   * most `drainMs`) for C to deliver them all.
   */
  async honestTraffic<T>(
    during: () => Promise<T>,
    rate = 20,
    bytes = HONEST_BYTES,
    drainMs = 10_000,
  ): Promise<{ result: T; traffic: HonestTraffic }> {
    const firstLatency = this.latencies.length
    let published = 0
    let running = true
    const start = Date.now()
    const publisher = (async () => {
      while (running) {
        const data = new Uint8Array(bytes)
        // A and C share this process: its monotonic clock times A → C below the millisecond.
        new DataView(data.buffer).setFloat64(0, performance.now())
        new DataView(data.buffer).setUint32(8, published)
        data[12] = HONEST_MARK
        await this.a.services.dissemination.publish(this.topic, data)
        published++
        const wait = start + (published * 1000) / rate - Date.now()
        await new Promise((r) => setTimeout(r, Math.max(0, wait)))
      }
    })()
    const result = await during()
    running = false
    await publisher
    const elapsedMs = Date.now() - start
    const delivered = () => this.latencies.length - firstLatency
    await waitFor(() => delivered() >= published, {
      what: 'every honest message at C',
      timeoutMs: drainMs,
    }).catch(() => {})
    return {
      result,
      traffic: {
        published,
        delivered: delivered(),
        latenciesMs: this.latencies.slice(firstLatency),
        elapsedMs,
      },
    }
  }
}

/**
 * Honest A publishes through victim B to honest C (A and C are not connected), all in this
 * process; an attacker connects to B. B's router is timed frame by frame, per sending peer
 * (see {@link VictimProbe}, whose figures are this bed's own).
 */
export class AttackBed extends HonestPair {
  /** The victim. */
  readonly b: GossipNode
  /** B's router, frame by frame (frames received, their cost), by sending peer. */
  readonly probe: VictimProbe
  /** Connections B's gater refused (the peer was denied), by peer (A and C share the count map but are never refused). */
  readonly refusedConnections: Map<string, number>

  private constructor(
    a: GossipNode,
    b: GossipNode,
    c: GossipNode,
    topic: string,
    refused: Map<string, number>,
  ) {
    super(a, c, topic)
    this.b = b
    this.refusedConnections = refused
    this.probe = new VictimProbe(b)
  }

  /** Builds and connects A, B and C (all `oneCopy` or none), and waits for B's mesh to hold both. */
  static async create(topic = 'blocks', oneCopy = false): Promise<AttackBed> {
    const refused = new Map<string, number>()
    const [a, b, c] = [
      await attackBedNode(topic, refused, oneCopy),
      await attackBedNode(topic, refused, oneCopy),
      await attackBedNode(topic, refused, oneCopy),
    ]
    await a.dial(b.getMultiaddrs()[0])
    await c.dial(b.getMultiaddrs()[0])
    const bed = new AttackBed(a, b, c, topic, refused)
    const mesh = () => b.services.dissemination.core.getMeshPeers(topic)
    await waitFor(
      () =>
        mesh().includes(a.peerId.toString()) &&
        mesh().includes(c.peerId.toString()) &&
        a.services.dissemination.core.getMeshPeers(topic).length > 0 &&
        c.services.dissemination.core.getMeshPeers(topic).length > 0,
      { what: 'the meshes of A, B and C', timeoutMs: 15_000 },
    )
    return bed
  }

  /** Stops the three nodes. */
  async stop(): Promise<void> {
    this.probe.close()
    await Promise.all([this.a.stop(), this.b.stop(), this.c.stop()])
  }
}
