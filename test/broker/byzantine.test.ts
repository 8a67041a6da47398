import { connect } from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { encodeDistilledBatch } from '../../src/broker/distilled-batch.ts'
import { LocalCluster } from '../../src/broker/local-cluster.ts'
import { SingleSequencer } from '../../src/broker/orderer.ts'
import type { BrokerDelivery } from '../../src/broker/server.ts'
import { waitFor } from '../support/wait.ts'
import { HandBroker, type HandEntry } from './harness.ts'

let cluster: LocalCluster
let broker: HandBroker
/**
 * An orderer that orders whatever it is given, repeats included (a sequencer that
 * remembers no digest): a consensus engine is not asked to judge batches, so the servers
 * alone must refuse what is bad.
 */
let orderer: SingleSequencer
let delivered: BrokerDelivery[][]

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)
const entries = (ids: number[], seq = 1, tag = 'm'): HandEntry[] =>
  ids.map((id) => ({ id, payload: enc(`${tag}${id}`), sequence: seq }))

beforeEach(async () => {
  orderer = new SingleSequencer(0)
  cluster = await LocalCluster.start({ clients: 16, withBroker: false, orderer })
  broker = await HandBroker.connect(cluster)
  delivered = cluster.servers.map((s) => {
    const got: BrokerDelivery[] = []
    s.core.on('deliver', (d) => got.push(d))
    return got
  })
})

afterEach(async () => {
  broker.close()
  await cluster.close()
})

function rejections(reason: string): number {
  return cluster.servers.reduce((n, s) => n + (s.core.stats().invalid[reason] ?? 0), 0)
}

describe('a Byzantine broker', () => {
  it('gets an honest batch witnessed and delivered (control)', async () => {
    const { batch } = broker.build(entries([0, 1, 2, 5, 9]))
    const ref = await broker.witness(encodeDistilledBatch(batch))
    expect(ref.witnesses.length).toBe(4)
    orderer.propose(ref)
    await broker.ordered(1)
    for (const got of delivered) expect(got.map((d) => d.clientId)).toEqual([0, 1, 2, 5, 9])
    await waitFor(() => broker.deliveryShards(1).length === 4, {
      what: '4 delivery shards for slot 1',
    })
  })

  it('cannot forge an entry: the aggregate no longer verifies, nobody witnesses', async () => {
    const { batch } = broker.build(entries([0, 1, 2]))
    batch.payloads[1] = enc('forged')
    const ref = await broker.witness(encodeDistilledBatch(batch))
    expect(ref.witnesses).toEqual([])
    expect(rejections('bad-aggregate')).toBe(4)
    orderer.propose(ref)
    await broker.ordered(1)
    expect(delivered.flat()).toEqual([])
    expect(rejections('unwitnessed-reference')).toBe(4)
  })

  it('cannot forge a straggler: its ed25519 signature must verify', async () => {
    const list = entries([3, 4])
    list[1].straggler = true
    const { batch } = broker.build(list)
    batch.payloads[1] = enc('forged')
    const ref = await broker.witness(encodeDistilledBatch(batch))
    // The root changed too, so the signer's aggregate fails first or the straggler does.
    expect(ref.witnesses).toEqual([])
    expect(rejections('bad-aggregate') + rejections('straggler-signature')).toBe(4)
  })

  it('cannot inflate the raise past the certified height, even with valid shares', async () => {
    const { batch } = broker.build(entries([0, 1]), { raise: 1_000 })
    const ref = await broker.witness(encodeDistilledBatch(batch))
    expect(ref.witnesses).toEqual([])
    expect(rejections('inflated-raise')).toBe(4)
    // A made-up height certificate does not help either.
    const fake = broker.build(entries([0, 1]), {
      raise: 1_000,
      height: { slot: 999, root: new Uint8Array(32), shards: [] },
    })
    const ref2 = await broker.witness(encodeDistilledBatch(fake.batch))
    expect(ref2.witnesses).toEqual([])
    expect(rejections('height-certificate')).toBe(4)
  })

  it('a raise within a REAL certified height is accepted', async () => {
    const first = await broker.witness(encodeDistilledBatch(broker.build(entries([0])).batch))
    orderer.propose(first)
    await broker.ordered(1)
    await waitFor(() => broker.deliveryShards(1).length === 4, {
      what: '4 delivery shards for slot 1',
    })
    const { root } = broker.build(entries([0]))
    const height = { slot: 1, root, shards: broker.deliveryShards(1) }
    const { batch } = broker.build(entries([1, 2], 1), { raise: 2, height, batchNumber: 2 })
    const ref = await broker.witness(encodeDistilledBatch(batch))
    expect(ref.witnesses.length).toBe(4)
  })

  it('cannot get a bad aggregate witnessed', async () => {
    const { batch } = broker.build(entries([0, 1, 2]))
    const other = broker.build(entries([0, 1, 2], 1, 'x'))
    batch.aggregate = other.batch.aggregate
    const ref = await broker.witness(encodeDistilledBatch(batch))
    expect(ref.witnesses).toEqual([])
    expect(rejections('bad-aggregate')).toBe(4)
  })

  it('a batch sent twice (same digest, or same entries renumbered) delivers once', async () => {
    const a = broker.build(entries([6, 7, 8]), { batchNumber: 1 })
    const b = broker.build(entries([6, 7, 8]), { batchNumber: 2 })
    const refA = await broker.witness(encodeDistilledBatch(a.batch))
    const refB = await broker.witness(encodeDistilledBatch(b.batch))
    expect(refA.witnesses.length).toBe(4)
    expect(refB.witnesses.length).toBe(4)
    orderer.propose(refA)
    orderer.propose(refA)
    orderer.propose(refB)
    await broker.ordered(3)
    for (const got of delivered) expect(got.map((d) => d.clientId)).toEqual([6, 7, 8])
    for (const s of cluster.servers) {
      expect(s.core.counts().duplicateBatches).toBe(1)
      expect(s.core.counts().ignored).toBe(3)
      expect(s.core.height).toBe(3)
    }
  })

  it('a replayed submission (an old straggler entry) is not delivered twice', async () => {
    const first = broker.build(entries([2, 3], 1))
    orderer.propose(await broker.witness(encodeDistilledBatch(first.batch)))
    await broker.ordered(1)
    await waitFor(() => broker.deliveryShards(1).length === 4, {
      what: '4 delivery shards for slot 1',
    })
    const height = { slot: 1, root: first.root, shards: broker.deliveryShards(1) }
    // Client 2's old message rides again as a straggler with its genuine signature, beside a
    // genuinely new message of client 3.
    const replay: HandEntry[] = [
      { id: 2, payload: enc('m2'), sequence: 1, straggler: true },
      { id: 3, payload: enc('new3'), sequence: 2 },
    ]
    const again = broker.build(replay, { height, batchNumber: 2 })
    const ref = await broker.witness(encodeDistilledBatch(again.batch))
    expect(ref.witnesses.length).toBe(4)
    orderer.propose(ref)
    await broker.ordered(2)
    for (const got of delivered) {
      expect(got.map((d) => `${d.clientId}@${d.sequence}`)).toEqual(['2@1', '3@1', '3@2'])
    }
    for (const s of cluster.servers) expect(s.core.counts().ignored).toBe(1)
  })

  it('a withheld batch ordered late does not deliver a message twice', async () => {
    const first = broker.build(entries([0]))
    orderer.propose(await broker.witness(encodeDistilledBatch(first.batch)))
    await broker.ordered(1)
    await waitFor(() => broker.deliveryShards(1).length === 4, {
      what: '4 delivery shards for slot 1',
    })
    const h1 = { slot: 1, root: first.root, shards: broker.deliveryShards(1) }
    // Client 4 co-signs two batches carrying its message: X (raised to 2) is withheld,
    // Y (raise 1) is ordered first.
    const m4: HandEntry[] = [{ id: 4, payload: enc('m4'), sequence: 1 }]
    const x = broker.build(m4, { raise: 2, height: h1, batchNumber: 2 })
    const y = broker.build(m4, { raise: 1, height: h1, batchNumber: 3 })
    const refX = await broker.witness(encodeDistilledBatch(x.batch))
    orderer.propose(await broker.witness(encodeDistilledBatch(y.batch)))
    await broker.ordered(2)
    orderer.propose(refX)
    await broker.ordered(3)
    await waitFor(() => broker.deliveryShards(3).length === 4, {
      what: '4 delivery shards for slot 3',
    })
    // The client's next message is numbered above every raise it co-signed (2).
    const h3 = { slot: 3, root: x.root, shards: broker.deliveryShards(3) }
    const next = broker.build([{ id: 4, payload: enc('n4'), sequence: 3 }], {
      height: h3,
      batchNumber: 4,
    })
    orderer.propose(await broker.witness(encodeDistilledBatch(next.batch)))
    await broker.ordered(4)
    for (const got of delivered) {
      expect(got.map((d) => `${d.clientId}@${d.sequence}:${dec(d.payload)}`)).toEqual([
        '0@1:m0',
        '4@1:m4',
        '4@3:n4',
      ])
    }
    for (const s of cluster.servers) expect(s.core.counts().nudged).toBe(1)
  })

  it('malformed frames to a server are dropped and counted', async () => {
    broker.sendRaw(0, new Uint8Array([0x10, 1, 2, 3]))
    broker.sendRaw(0, new Uint8Array([0x77]))
    broker.sendRaw(0, new Uint8Array([0x11, 1, 2]))
    // The hand broker's link is the server's newest connection (the other servers' came first).
    const byPeer = () => cluster.servers[0].core.stats().invalidByPeer
    await waitFor(() => Object.values(byPeer()).reduce((a, b) => a + b, 0) === 3, {
      what: '3 bad frames counted against the broker',
    })
    expect(Object.keys(byPeer())).toHaveLength(1)
    const invalid = cluster.servers[0].core.stats().invalid
    expect(invalid.malformed).toBe(2)
    expect(invalid['unknown-frame']).toBe(1)
    // A length prefix far over the limit: counted, and the connection is closed.
    const raw = connect({ host: '127.0.0.1', port: cluster.servers[0].port })
    const closed = new Promise((r) => raw.once('close', r))
    raw.on('error', () => {})
    raw.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x7f]))
    await closed
    await waitFor(() => cluster.servers[0].core.stats().invalid['bad-framing'] === 1, {
      what: 'the oversized frame counted',
    })
  })
})
