import { afterEach, describe, expect, it } from 'vitest'
import { ClientNode } from '../../src/broker/client-node.ts'
import { encodeLeaf } from '../../src/broker/leaf.ts'
import { LocalCluster } from '../../src/broker/local-cluster.ts'
import { brokerLimits } from '../../src/broker/params.ts'
import type { BrokerDelivery } from '../../src/broker/server.ts'
import { batchRootInput, submissionInput } from '../../src/broker/signing.ts'
import { UdpEndpoint } from '../../src/broker/udp-endpoint.ts'
import {
  decodeInclusion,
  decodeSubmission,
  encodeDelivered,
  encodeInclusion,
  encodeShare,
  encodeSubmission,
  FrameKind,
} from '../../src/broker/wire.ts'
import { DuplicateMessageError, NotStartedError } from '../../src/common/errors.ts'
import { merkleRoot } from '../../src/crypto/merkle.ts'
import { type Wake, waitFor } from '../support/wait.ts'
import { clientsVia } from './harness.ts'
import { LossyRelay } from './lossy-relay.ts'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

async function cluster(opts: Parameters<typeof LocalCluster.start>[0]): Promise<LocalCluster> {
  const c = await LocalCluster.start(opts)
  closers.push(() => c.close())
  return c
}

async function udp(host?: string): Promise<UdpEndpoint> {
  const u = await UdpEndpoint.bind({ host })
  closers.push(() => u.close())
  return u
}

function record(c: LocalCluster): BrokerDelivery[][] {
  return c.servers.map((s) => {
    const got: BrokerDelivery[] = []
    s.core.on('deliver', (d) => got.push(d))
    return got
  })
}

/** Every server's deliveries, as events to wait on. */
const deliveries = (c: LocalCluster): Wake[] => c.servers.map((s) => [s.core, 'deliver'])

/** A submission datagram signed with client `id`'s real key. */
function submission(c: LocalCluster, id: number, sequence: number, payload: Uint8Array) {
  const signature = c.clientKeys[id].ed25519.sign(submissionInput(id, sequence, payload))
  return encodeSubmission({ id, sequence, payload, signature })
}

/**
 * Client 9, played by hand: submits a genuine message, then answers its inclusion proof
 * with a share signed by another client's BLS key (one that cannot verify for id 9).
 */
async function liarWithBadShare(c: LocalCluster): Promise<void> {
  const liar = await udp()
  liar.onFrame((peer, f) => {
    if (f[0] !== FrameKind.Inclusion) return
    const p = decodeInclusion(f, brokerLimits())
    const signature = c.clientKeys[10].bls.signShare(batchRootInput(p.root))
    liar.send(peer, encodeShare({ id: 9, root: p.root, signature }))
  })
  liar.send(c.broker!.address, submission(c, 9, 1, enc('liar')))
}

describe('clients and the broker', () => {
  it('a client that never answers becomes a straggler and is still delivered', async () => {
    const c = await cluster({
      clients: 16,
      // Long enough for 15 honest clients on a busy machine: the mute one costs the full wait.
      broker: { flushTimeoutMs: 30, shareTimeoutMs: 2_000, authThreads: 0 },
    })
    const delivered = record(c)
    const mute = await udp()
    const spoofer = await udp()
    const inbox: number[] = []
    mute.onFrame((peer, f) => {
      inbox.push(f[0])
      if (f[0] !== FrameKind.Inclusion) return
      // Another address answers for client 5 with a share that does not verify: checked
      // alone (it is not from the client's address), refused, and counted against it.
      const p = decodeInclusion(f, brokerLimits())
      const signature = c.clientKeys[6].bls.signShare(batchRootInput(p.root))
      spoofer.send(peer, encodeShare({ id: 5, root: p.root, signature }))
    })
    mute.send(c.broker!.address, submission(c, 5, 1, enc('mute')))
    await Promise.all(
      c.clients.filter((_, id) => id !== 5).map((cl, id) => cl.submit(enc(`x${id}`))),
    )
    await waitFor(() => delivered.every((g) => g.some((d) => d.clientId === 5)), {
      what: 'client 5 delivered at every server',
      wakeOn: deliveries(c),
    })
    for (const got of delivered) {
      const five = got.filter((d) => d.clientId === 5)
      expect(five.map((d) => [dec(d.payload), d.sequence])).toEqual([['mute', 1]])
    }
    expect(c.broker!.core.counts().stragglers).toBe(1)
    expect(c.broker!.core.stats().invalidByPeer[spoofer.address]).toBe(1)
    await waitFor(() => inbox.includes(FrameKind.Delivered), {
      what: 'a Delivered frame for the mute client',
    })
    expect(inbox[0]).toBe(FrameKind.Inclusion)
  })

  it('bisection turns a client with a bad BLS share into a straggler, delivered once', async () => {
    const c = await cluster({
      clients: 16,
      // Every client answers (the liar with a bad share), so the broker aggregates as soon as
      // all are in: a long timeout costs nothing and no slow honest client becomes a straggler.
      broker: { flushTimeoutMs: 30, shareTimeoutMs: 5_000, authThreads: 1 },
    })
    const delivered = record(c)
    await liarWithBadShare(c)
    await Promise.all(
      c.clients.filter((_, id) => id !== 9).map((cl, id) => cl.submit(enc(`y${id}`))),
    )
    await waitFor(() => delivered.every((g) => g.some((d) => d.clientId === 9)), {
      what: 'client 9 delivered at every server',
      wakeOn: deliveries(c),
    })
    const counts = c.broker!.core.counts()
    expect(counts.badShares).toBe(1)
    expect(counts.stragglers).toBe(1)
    expect(c.broker!.core.stats().invalid['bad-share']).toBe(1)
    for (const got of delivered) expect(got.filter((d) => d.clientId === 9).length).toBe(1)
  })

  it('bisection out of budget: the unresolved signers become checked stragglers, all delivered', async () => {
    const c = await cluster({
      clients: 16,
      broker: { flushTimeoutMs: 30, shareTimeoutMs: 200, authThreads: 1, maxShareVerifications: 1 },
    })
    const delivered = record(c)
    await liarWithBadShare(c)
    const others = c.clients.filter((_, id) => id !== 9)
    await Promise.all(others.map((cl, k) => cl.submit(enc(`z${k}`))))
    await waitFor(() => delivered.every((g) => g.some((d) => d.clientId === 9)), {
      what: 'delivered.every((g) => g.some((d) => d.clientId === 9))',
    })
    const counts = c.broker!.core.counts()
    // The one aggregate check failed and no bisection was left: nobody blamed, every
    // signer of that batch checked by ed25519 instead, and all of them delivered once.
    expect(counts.badShares).toBe(0)
    expect(counts.stragglers).toBeGreaterThanOrEqual(2)
    expect(counts.deferredChecks).toBe(counts.stragglers)
    expect(counts.forged).toBe(0)
    for (const got of delivered) {
      expect(got.filter((d) => d.clientId === 9)).toHaveLength(1)
      expect(got).toHaveLength(16)
    }
  })

  it('a client refuses bad proofs, illegitimate raises and forged certificates', async () => {
    const c = await cluster({ clients: 2, withBroker: false })
    const fake = await udp()
    const client = await ClientNode.start({
      id: 0,
      ...c.clientKeys[0],
      broker: fake.address,
      serverKeys: c.serverKeys,
      retryMs: 5000,
    })
    closers.push(() => client.close())
    const got: number[] = []
    let settled = false
    const genesis = { slot: 0, shards: [] }
    fake.onFrame((peer, f) => {
      got.push(f[0])
      if (f[0] !== FrameKind.Submit) return
      const s = decodeSubmission(f, brokerLimits())
      const leafFor = (payload: Uint8Array, raise: number) =>
        encodeLeaf(raise, [{ id: s.id, payload }])
      const proofFor = (leaf: Uint8Array, root = merkleRoot([leaf])) => ({
        root,
        leafIndex: 0,
        leafCount: 1,
        leaf,
        proof: [],
      })
      const good = leafFor(s.payload, 1)
      const send = (frame: Uint8Array) => fake.send(peer, frame)
      // A root that is not the leaf's; a changed payload.
      send(encodeInclusion({ ...proofFor(good, new Uint8Array(32).fill(1)), height: genesis }))
      send(encodeInclusion({ ...proofFor(leafFor(enc('evil'), 1)), height: genesis }))
      // Valid proofs, but raises beyond the certified height + 1: with the genesis height,
      // and with a made-up certificate for slot 10.
      send(encodeInclusion({ ...proofFor(leafFor(s.payload, 5)), height: genesis }))
      const forged = {
        slot: 10,
        root: new Uint8Array(32),
        shards: [
          { server: 0, signature: new Uint8Array(64) },
          { server: 1, signature: new Uint8Array(64) },
        ],
      }
      send(encodeInclusion({ ...proofFor(leafFor(s.payload, 11)), height: forged }))
      // No certificate, and the client knows no height above genesis: a raise of 2 is refused.
      send(encodeInclusion(proofFor(leafFor(s.payload, 2))))
      send(encodeDelivered({ slot: 1, shards: forged.shards, inclusion: proofFor(good) }))
    })
    const pending = client.submit(enc('hello')).then(() => {
      settled = true
    })
    await waitFor(() => (client.core.stats().invalid['bad-delivery-certificate'] ?? 0) === 1, {
      what: 'the forged certificate refused',
    })
    expect(client.core.stats().invalid['bad-inclusion']).toBe(2)
    expect(client.core.stats().invalid['illegitimate-raise']).toBe(3)
    expect(got.filter((k) => k === FrameKind.Share)).toEqual([])
    expect(settled).toBe(false)
    // Stopping the client rejects the message that never got a delivery certificate.
    await client.close()
    await expect(pending).rejects.toThrow(NotStartedError)
  })

  it('refuses a payload equal to the previous one (servers would take it as a copy)', async () => {
    const c = await cluster({
      clients: 2,
      broker: { flushTimeoutMs: 10, shareTimeoutMs: 200, authThreads: 0 },
    })
    const [a] = c.clients
    await a.submit(enc('same'))
    await expect(a.submit(enc('same'))).rejects.toThrow(DuplicateMessageError)
    const queued = a.submit(enc('other'))
    await expect(a.submit(enc('other'))).rejects.toThrow(DuplicateMessageError)
    await queued
    expect(a.core.lastSequence).toBe(2)
  })

  it('a replayed submission is answered to its client, once, and penalised beyond', async () => {
    const c = await cluster({
      clients: 4,
      broker: { flushTimeoutMs: 20, shareTimeoutMs: 200, authThreads: 0 },
    })
    const delivered = record(c)
    await Promise.all(c.clients.map((cl, id) => cl.submit(enc(`once${id}`))))
    const attacker = await udp('127.66.0.2')
    const answers: number[] = []
    attacker.onFrame((_p, f) => answers.push(f[0]))
    const client1 = () => c.clients[1].core.stats().received.frames
    const before = client1()
    // ed25519 is deterministic: this is byte for byte the datagram client 1 sent.
    for (let i = 0; i < 3; i++) attacker.send(c.broker!.address, submission(c, 1, 1, enc('once1')))
    // The copies skip the signature check; the first is answered (to client 1, where its
    // submission came from, not to the sender), the next two are replays.
    await waitFor(() => c.broker!.core.counts().replays === 2, { what: 'two replays counted' })
    await waitFor(() => client1() === before + 1, { what: 'the answer at client 1' })
    const counts = c.broker!.core.counts()
    expect(counts.copies).toBe(3)
    expect(counts.retransmissionsAnswered).toBe(1)
    // Each client's submission was accepted once (pooled unchecked, proven by its share).
    expect(counts.authenticated + counts.deferred).toBe(4)
    expect(counts.provenByShare).toBe(counts.deferred)
    expect(counts.batches).toBe(1)
    expect(c.broker!.core.penaltiesOf('127.66.0.2')).toBe(2)
    expect(c.broker!.core.penaltiesOf('127.0.0.1')).toBe(0)
    expect(answers).toEqual([])
    for (const got of delivered) expect(got.filter((d) => d.clientId === 1).length).toBe(1)
  })

  it('malformed, unknown and badly signed datagrams are dropped and counted', async () => {
    const c = await cluster({
      clients: 4,
      broker: { flushTimeoutMs: 20, shareTimeoutMs: 200, authThreads: 1 },
    })
    const delivered = record(c)
    const junk = await udp()
    const to = c.broker!.address
    junk.send(to, new Uint8Array([0x01, 2, 3]))
    junk.send(to, new Uint8Array([0x42, 0, 0]))
    junk.send(to, new Uint8Array(0))
    junk.send(to, new Uint8Array(4000))
    junk.send(to, submission(c, 0, 1, enc('x')).subarray(0, 30))
    junk.send(
      to,
      encodeSubmission({
        id: 999,
        sequence: 1,
        payload: enc('who'),
        signature: new Uint8Array(64),
      }),
    )
    const forged = submission(c, 2, 1, enc('real'))
    forged[forged.length - 1] ^= 1
    junk.send(to, forged)
    await waitFor(() => (c.broker!.core.stats().invalid['bad-signature'] ?? 0) === 1, {
      what: 'the bad signature counted',
    })
    const invalid = c.broker!.core.stats().invalid
    expect(invalid.malformed).toBe(2)
    expect(invalid['unknown-frame']).toBe(2)
    expect(invalid['unknown-client']).toBe(1)
    expect(c.broker!.udp.oversized).toBe(1)
    expect(c.broker!.core.stats().invalidByPeer[junk.address]).toBe(6)
    // The broker still works.
    await Promise.all(c.clients.map((cl, id) => cl.submit(enc(`ok${id}`))))
    for (const got of delivered)
      expect(got.map((d) => dec(d.payload)).sort()).toEqual(['ok0', 'ok1', 'ok2', 'ok3'])
  })

  it('stops reading a peer that keeps sending bad datagrams', async () => {
    const c = await cluster({
      clients: 2,
      broker: { flushTimeoutMs: 10, shareTimeoutMs: 200, authThreads: 0, banThreshold: 3 },
    })
    // From another address than the clients' (bans are per source address, not per port).
    const flooder = await udp('127.66.0.1')
    for (let i = 0; i < 5; i++) flooder.send(c.broker!.address, new Uint8Array([0x01, i]))
    flooder.send(c.broker!.address, submission(c, 1, 1, enc('late')))
    await waitFor(() => c.broker!.core.counts().banned === 3, {
      what: '3 datagrams dropped for the ban',
    })
    expect(c.broker!.core.stats().invalid.malformed).toBe(3)
    expect(c.broker!.core.counts().authenticated).toBe(0)
    // Other clients are unaffected.
    await c.clients[0].submit(enc('fine'))
  })

  it('with 1 datagram in 4 lost each way, retransmission loses no message', async () => {
    const c = await cluster({
      clients: 32,
      limits: { maxBatchEntries: 16 },
      broker: { flushTimeoutMs: 20, shareTimeoutMs: 100, authThreads: 1 },
      withBroker: true,
    })
    const relay = await LossyRelay.start(c.broker!.address, 4)
    closers.push(() => relay.close())
    const lossy = await clientsVia(c, relay.address, { retryMs: 150, maxRetryMs: 600 }, closers)
    const delivered = record(c)
    const receipts = []
    for (let r = 0; r < 2; r++) {
      receipts.push(...(await Promise.all(lossy.map((cl, id) => cl.submit(enc(`r${r}c${id}`))))))
    }
    expect(relay.dropped).toBeGreaterThan(10)
    expect(receipts.some((r) => r.transmissions > 1)).toBe(true)
    for (const got of delivered) {
      const keys = got.map((d) => `${d.clientId}:${dec(d.payload)}`)
      expect(keys.length).toBe(64)
      expect(new Set(keys).size).toBe(64)
    }
  })
})
