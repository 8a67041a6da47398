/**
 * Deferred authentication under attack, over real UDP on loopback: the broker pools
 * submissions without checking their ed25519 signature and checks only the stragglers'.
 * Forged submissions for other clients' ids (contesting honest clients' entries, and for
 * idle ids so that they reach a batch), and floods of bad BLS shares on a real root: no
 * honest message lost, none delivered that a client did not sign, the attacker penalised
 * and banned, no honest client penalised. Waits are on events, never fixed sleeps.
 */
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { LocalCluster } from '../../src/broker/local-cluster.ts'
import { brokerLimits } from '../../src/broker/params.ts'
import { batchRootInput, submissionInput } from '../../src/broker/signing.ts'
import { UdpEndpoint } from '../../src/broker/udp-endpoint.ts'
import { decodeInclusion, encodeShare, encodeSubmission, FrameKind } from '../../src/broker/wire.ts'
import { BlsKeyPair } from '../../src/crypto/bls.ts'
import { waitFor } from '../support/wait.ts'
import { Flood } from './attacker.ts'
import { banOf } from './harness.ts'
import { HonestLoad } from './honest-load.ts'

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

const HONEST = 8
const IDLE = 4

/** A cluster whose last IDLE ids are registered but have no running client. */
async function cluster(): Promise<{ c: LocalCluster; view: LocalCluster }> {
  const c = await LocalCluster.start({
    clients: HONEST + IDLE,
    broker: { flushTimeoutMs: 10, shareTimeoutMs: 300, authThreads: 1 },
    client: { retryMs: 400, maxRetryMs: 1600 },
  })
  closers.push(() => c.close())
  for (const idle of c.clients.slice(HONEST)) await idle.close()
  const view = Object.assign(Object.create(c) as LocalCluster, {
    clients: c.clients.slice(0, HONEST),
  })
  return { c, view }
}

/** Forged submissions (random payload and signature) for `ids`, at sequence `sequence`. */
function forged(ids: number[], perId: number, sequence: number): Uint8Array[] {
  return Array.from({ length: ids.length * perId }, (_, i) =>
    encodeSubmission({
      id: ids[i % ids.length],
      sequence,
      payload: randomBytes(8),
      signature: randomBytes(64),
    }),
  )
}

/** Nothing lost, nothing delivered that an honest client did not submit, nobody honest penalised. */
async function expectHonestUnharmed(
  c: LocalCluster,
  load: HonestLoad,
  alsoSigned: string[] = [],
): Promise<void> {
  await load.more(2 * HONEST)
  await load.stop()
  await load.settled()
  expect(load.errors).toEqual([])
  expect(load.lost()).toBe(0)
  const signed = new Set([...load.submitted, ...alsoSigned])
  for (const got of load.deliveredBy) for (const k of got) expect(signed.has(k)).toBe(true)
  const broker = c.broker!.core
  expect(broker.penaltiesOf('127.0.0.1')).toBe(0)
  const honestPenalties = Object.keys(broker.stats().invalidByPeer).filter((p) =>
    p.startsWith('127.0.0.1:'),
  )
  expect(honestPenalties).toEqual([])
}

describe('deferred authentication under attack (real UDP on loopback)', () => {
  it('forged submissions for honest and idle ids: none delivered, none displaces, sender banned', async () => {
    const { c, view } = await cluster()
    const load = HonestLoad.start(view, 'f')
    await load.more(HONEST)
    const banned = banOf(c, '127.66.1.1')
    const ids = Array.from({ length: HONEST + IDLE }, (_, i) => i)
    const f = await Flood.start({
      host: '127.66.1.1',
      target: c.broker!.address,
      frames: forged(ids, 512, 1),
    })
    closers.push(() => f.stop())
    await banned
    await expectHonestUnharmed(c, load)
    const counts = c.broker!.core.counts()
    // Forgeries were pooled unchecked, then found out: in a batch (as stragglers) or
    // when they met an honest client's entry for the same id.
    expect(counts.deferred).toBeGreaterThan(load.submitted.length)
    expect(counts.forged + counts.contested).toBeGreaterThan(0)
    expect(c.broker!.core.stats().invalid['bad-signature']).toBeGreaterThan(0)
    // The idle ids were never delivered.
    for (const s of c.servers)
      for (let id = HONEST; id < HONEST + IDLE; id++) {
        expect(s.core.lastSequence(id)).toBe(0)
      }
  })

  it('forgeries for idle ids reach a batch: it is rebuilt without them before any server sees it', async () => {
    const { c, view } = await cluster()
    const broker = c.broker!.core
    const load = HonestLoad.start(view, 'd')
    await load.more(HONEST)
    const attacker = await UdpEndpoint.bind({ host: '127.66.1.2' })
    closers.push(() => attacker.close())
    const idle = Array.from({ length: IDLE }, (_, i) => HONEST + i)
    for (const frame of forged(idle, 1, 1)) attacker.send(c.broker!.address, frame)
    await waitFor(() => broker.counts().redistilled >= 1, {
      what: 'broker.counts().redistilled >= 1',
      timeoutMs: 20_000,
    })
    await expectHonestUnharmed(c, load)
    const counts = broker.counts()
    expect(counts.forged).toBe(IDLE)
    expect(broker.penaltiesOf('127.66.1.2')).toBeGreaterThanOrEqual(IDLE)
    for (const s of c.servers) {
      // Servers never saw a batch with a forged straggler.
      expect(s.core.stats().invalid['straggler-signature'] ?? 0).toBe(0)
      for (const id of idle) expect(s.core.lastSequence(id)).toBe(0)
    }
    // Found out: that address pools nothing unchecked any more.
    const deferredBefore = broker.counts().deferred
    attacker.send(c.broker!.address, forged([idle[0]], 1, 1)[0])
    await waitFor(() => broker.stats().invalid['bad-signature'] > IDLE, {
      what: "broker.stats().invalid['bad-signature'] > IDLE",
    })
    expect(broker.counts().deferred).toBe(deferredBefore)
  })

  it('share flood on a real root (wrong-key shares for every id): the flooder is banned', async () => {
    const { c, view } = await cluster()
    const broker = c.broker!.core
    const load = HonestLoad.start(view, 's')
    await load.more(HONEST)
    // A Byzantine client (id HONEST, its real key) learns a real root by submitting a
    // genuine message, withholds its own share, and floods shares for every id.
    const attacker = await UdpEndpoint.bind({ host: '127.66.1.3' })
    closers.push(() => attacker.close())
    const roots: Uint8Array[] = []
    attacker.onFrame((_p, f) => {
      if (f[0] === FrameKind.Inclusion) roots.push(decodeInclusion(f.slice(), brokerLimits()).root)
    })
    const own = new TextEncoder().encode('byzantine')
    const signature = c.clientKeys[HONEST].ed25519.sign(submissionInput(HONEST, 1, own))
    attacker.send(
      c.broker!.address,
      encodeSubmission({ id: HONEST, sequence: 1, payload: own, signature }),
    )
    await waitFor(() => roots.length > 0, { what: 'roots.length > 0' })
    const root = roots[0]
    const share = BlsKeyPair.generate().signShare(batchRootInput(root))
    const banned = banOf(c, '127.66.1.3')
    let isBanned = false
    void banned.then(() => {
      isBanned = true
    })
    // Wrong-key shares decode to valid points and fail verification. At most 64 rounds.
    let sent = 0
    for (let round = 0; round < 64 && !isBanned; round++) {
      for (let id = 0; id < HONEST + IDLE; id++) {
        if (id === HONEST) continue // its own share stays withheld: the batch waits for it
        attacker.send(c.broker!.address, encodeShare({ id, root, signature: share }))
        sent++
      }
      await new Promise((r) => setImmediate(r))
    }
    await banned
    expect(sent).toBeGreaterThanOrEqual(256)
    const invalid = broker.stats().invalid
    expect(invalid['unsolicited-share'] + invalid['share-not-in-batch']).toBeGreaterThanOrEqual(200)
    await expectHonestUnharmed(c, load, [`${HONEST}:byzantine`])
    // Its own message was genuine (delivered as a straggler, once); the other idle ids never.
    expect(broker.counts().stragglers).toBeGreaterThanOrEqual(1)
    for (const s of c.servers) {
      expect(s.core.lastSequence(HONEST)).toBe(1)
      for (let id = HONEST + 1; id < HONEST + IDLE; id++) expect(s.core.lastSequence(id)).toBe(0)
    }
  })
})
