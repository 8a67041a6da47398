/**
 * One authentication cycle of the broker core, timed: a pool of signed submissions goes
 * in, and the proven distilled batch comes out (inclusion proofs sent, every share
 * received, aggregate verified, stragglers' signatures checked, batch encoded). Run with
 * the one-by-one path (every ed25519 signature checked before pooling) and with deferred
 * authentication (only stragglers checked), in the same process, on the same submissions.
 * No sockets: the CPU of authentication and distillation is what is measured. Clients'
 * BLS signing of the root is excluded from the time (clients do it, not the broker).
 */
import { Broker } from '../../src/broker/broker.ts'
import type { Directory } from '../../src/broker/directory.ts'
import { decodeDistilledBatch } from '../../src/broker/distilled-batch.ts'
import type { BrokerLimits } from '../../src/broker/params.ts'
import { batchRootInput } from '../../src/broker/signing.ts'
import { decodeInclusion, encodeShare, FrameKind } from '../../src/broker/wire.ts'
import { WorkerAuthenticator } from '../../src/broker/worker-authenticator.ts'
import type { Env } from '../../src/common/env.ts'
import { nodeTimer } from '../../src/common/system-clock.ts'
import type { BlsKeyPair } from '../../src/crypto/bls.ts'

/** What one cycle is given. */
export interface AuthCycleParams {
  directory: Directory
  limits: BrokerLimits
  serverKeys: Uint8Array[]
  /** BLS key sets; id i uses set i mod length. */
  blsKeys: BlsKeyPair[]
  /** Submission frames, by id (all genuine). */
  submissions: Uint8Array[]
  /** Worker threads checking signatures. */
  threads: number
  /** Deferred authentication (true) or the one-by-one path (false). */
  defer: boolean
  /** Ids that never answer with a share (they end as stragglers). */
  silent: (id: number) => boolean
  /** Ids whose submission is replaced by a forgery (random signature). */
  forged: (id: number) => boolean
  /** A forged frame for an id. */
  forge: (id: number) => Uint8Array
}

/** What one cycle measured. */
export interface AuthCycleResult {
  /** Submissions in the pool (or queued) per second, from the first to the last accepted. */
  pooledPerSecond: number
  /** Milliseconds from the first submission to the proven batch frame (client signing excluded). */
  cycleMs: number
  /** Entries in the batch sent to the servers. */
  entries: number
  /** Stragglers in it. */
  stragglers: number
  /** ed25519 checks the broker made. */
  ed25519Checks: number
  /** Forged submissions found (refused or dropped), whose sender was penalised. */
  forgedFound: number
  /** Batches rebuilt without forged entries. */
  redistilled: number
}

/** A share timeout the cycle fires by hand, once every share it means to send is in. */
const MANUAL_MS = 3_600_000

const tick = () => new Promise((r) => setImmediate(r))

/** Runs one cycle; bounded (throws after 120 s). */
export async function authCycle(p: AuthCycleParams): Promise<AuthCycleResult> {
  const n = p.submissions.length
  // Clients spread over /24 networks of 256 (each prefix well inside its deferral allowance).
  const peers = Array.from(
    { length: n },
    (_, id) => `10.${(id >> 16) & 255}.${(id >> 8) & 255}.${id & 255}:5000`,
  )
  const idOf = new Map(peers.map((peer, id) => [peer, id]))
  const inclusions = new Map<string, { root: Uint8Array; ids: number[] }>()
  let batchFrame: Uint8Array | undefined
  const shareTimers: (() => void)[] = []
  const env: Env = {
    self: 'broker',
    now: () => performance.now(),
    send: (peer, frame) => {
      if (peer === 'server/0' && frame[0] === FrameKind.Batch) batchFrame = frame
      if (frame[0] !== FrameKind.Inclusion) return
      const inc = decodeInclusion(frame, p.limits)
      const key = Buffer.from(inc.root).toString('hex')
      let r = inclusions.get(key)
      if (r === undefined) {
        r = { root: inc.root.slice(), ids: [] }
        inclusions.set(key, r)
      }
      r.ids.push(idOf.get(peer)!)
    },
    setTimer: (ms, fn) => {
      if (ms !== MANUAL_MS) return nodeTimer(ms, fn)
      shareTimers.push(fn)
      return { cancel: () => {} }
    },
    random: Math.random,
  }
  const authenticator = new WorkerAuthenticator(p.directory, p.threads, p.limits)
  await authenticator.ready()
  const broker = new Broker(env, {
    directory: p.directory,
    servers: p.serverKeys.map((_, i) => `server/${i}`),
    serverKeys: p.serverKeys,
    onWitnessed: () => {},
    limits: { ...p.limits, maxBatchEntries: n },
    flushTimeoutMs: 600_000,
    shareTimeoutMs: MANUAL_MS,
    authenticator,
    deferAuthentication: p.defer,
    maxAuthQueue: n,
  })
  broker.start()
  const frames = p.submissions.map((f, id) => (p.forged(id) ? p.forge(id) : f))
  const forgedCount = frames.filter((_, id) => p.forged(id)).length
  const deadline = performance.now() + 120_000
  const wait = async (cond: () => boolean) => {
    while (!cond()) {
      if (performance.now() > deadline) throw new Error('auth cycle took over 120 s')
      await tick()
    }
  }
  let signingMs = 0
  const t0 = performance.now()
  for (let id = 0; id < n; id++) broker.receive(peers[id], frames[id])
  const refused = () => broker.stats().invalid['bad-signature'] ?? 0
  // One-by-one: forgeries are refused before the pool, which then needs a flush by hand.
  await wait(() => broker.counts().pooled + (p.defer ? 0 : refused()) >= n)
  const tPooled = performance.now() - t0
  if (broker.poolSize > 0) broker.flush()
  const answered = new Set<string>()
  for (let round = 0; round < 3 && batchFrame === undefined; round++) {
    const expected = broker.counts().pooled - (round === 0 ? 0 : broker.counts().forged)
    const pending = () => [...inclusions].find(([k, r]) => !answered.has(k) && r.ids.length > 0)
    await wait(() => batchFrame !== undefined || (pending()?.[1].ids.length ?? 0) >= expected)
    if (batchFrame !== undefined) break
    const [key, r] = pending()!
    answered.add(key)
    const s0 = performance.now()
    const input = batchRootInput(r.root)
    const byKey = p.blsKeys.map((k) => k.signShare(input))
    signingMs += performance.now() - s0
    for (const id of r.ids) {
      if (p.silent(id) || p.forged(id)) continue
      broker.receive(
        peers[id],
        encodeShare({ id, root: r.root, signature: byKey[id % byKey.length] }),
      )
    }
    shareTimers.shift()?.()
    await wait(() => batchFrame !== undefined || broker.counts().redistilled > round)
  }
  await wait(() => batchFrame !== undefined)
  const cycleMs = performance.now() - t0 - signingMs
  const c = broker.counts()
  broker.stop()
  await authenticator.close()
  return {
    pooledPerSecond: (n - (p.defer ? 0 : forgedCount)) / (tPooled / 1000),
    cycleMs,
    entries: decodeDistilledBatch(batchFrame!, p.limits).ids.length,
    stragglers: c.stragglers,
    ed25519Checks: c.authenticated + c.deferredChecks + (p.defer ? 0 : refused()),
    forgedFound: p.defer ? c.forged : refused(),
    redistilled: c.redistilled,
  }
}
