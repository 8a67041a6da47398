/**
 * Several brokers and batch fetching, on real sockets (UDP to brokers, TCP to and between
 * servers): clients hold a list of brokers and move on when theirs dies mid-stream, servers
 * take batches from every broker and deduplicate across them, and a server ordered a batch
 * it never received fetches it from another server. Waits are on events, never fixed sleeps.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { BrokerNode } from '../../src/broker/broker-node.ts'
import { encodeDistilledBatch } from '../../src/broker/distilled-batch.ts'
import { LocalCluster } from '../../src/broker/local-cluster.ts'
import type { BrokerDelivery } from '../../src/broker/server.ts'
import { waitFor } from '../support/wait.ts'
import { clientsVia, HandBroker } from './harness.ts'
import { HonestLoad } from './honest-load.ts'

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

const enc = (s: string) => new TextEncoder().encode(s)

/** A cluster (its broker first) and a second broker on the same servers and orderer. */
async function twoBrokers(
  clients: number,
  authThreads: number,
): Promise<{ c: LocalCluster; second: BrokerNode }> {
  const timing = { flushTimeoutMs: 10, shareTimeoutMs: 300, authThreads }
  const c = await LocalCluster.start({ clients, broker: timing })
  closers.push(() => c.close())
  const second = await BrokerNode.start({
    directory: c.directory,
    serverAddresses: c.servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    serverKeys: c.serverKeys,
    orderer: c.orderer,
    ...timing,
  })
  closers.push(() => second.close())
  return { c, second }
}

describe('several brokers (real sockets)', () => {
  it('a broker killed mid-stream: clients move to the next, 0 lost, 0 delivered twice', async () => {
    const { c, second } = await twoBrokers(8, 1)
    const first = c.broker!
    const clients = await clientsVia(
      c,
      first.address,
      { retryMs: 300, maxRetryMs: 1200, failoverAfter: 2 },
      closers,
      [second.address],
    )
    const view = Object.assign(Object.create(c) as LocalCluster, { clients })
    const load = HonestLoad.start(view, 'k')
    await load.more(3 * clients.length)
    expect(second.core.counts().certified).toBe(0)
    // Killed mid-stream: batches in flight die with it (some already ordered, some not).
    await first.close()
    await load.more(3 * clients.length, 30_000)
    await load.stop()
    await load.settled(30_000)
    expect(load.errors).toEqual([])
    // Exactly once at every server: nothing lost, nothing delivered twice.
    expect(load.lost()).toBe(0)
    for (const got of load.deliveredBy) expect(new Set(got).size).toBe(got.length)
    expect(clients.every((cl) => cl.core.brokerFailovers >= 1)).toBe(true)
    expect(second.core.counts().certifiedEntries).toBeGreaterThanOrEqual(3 * clients.length)
    // The second broker kept its raise bound from the first's batches (servers send every
    // broker their delivery shards): no client was penalised for a sequence number ahead.
    expect(second.core.stats().invalid['sequence-ahead'] ?? 0).toBe(0)
  })

  it('servers deduplicate across brokers: one message through both is delivered once', async () => {
    const { c, second } = await twoBrokers(2, 0)
    const delivered: BrokerDelivery[][] = c.servers.map((s) => {
      const got: BrokerDelivery[] = []
      s.core.on('deliver', (d) => got.push(d))
      return got
    })
    // Client 0 sends its submission to both brokers (a client retrying at the next broker
    // while the first one still gets its message through).
    const client = c.clients[0]
    const original = client.udp.send.bind(client.udp)
    client.udp.send = (peer, frame) => {
      original(peer, frame)
      if (frame[0] === 0x01) original(second.address, frame)
    }
    await client.submit(enc('both'))
    await waitFor(() => second.core.counts().stragglers + second.core.counts().certified >= 1, {
      what: 'second.core.counts().stragglers + second.core.counts().certified >= 1',
    })
    await waitFor(() => c.servers.every((s) => s.core.height >= 2), {
      what: 'c.servers.every((s) => s.core.height >= 2)',
      timeoutMs: 20_000,
    })
    for (const got of delivered) expect(got.filter((d) => d.clientId === 0)).toHaveLength(1)
    const ignored = c.servers.map((s) => s.core.counts().ignored + s.core.counts().dropped)
    for (const n of ignored) expect(n).toBeGreaterThanOrEqual(1)
  })
})

describe('fetching an ordered batch never received (real TCP between servers)', () => {
  it('a server that missed the batch frame fetches it from another and delivers', async () => {
    const c = await LocalCluster.start({ clients: 8, withBroker: false })
    closers.push(() => c.close())
    const hand = await HandBroker.connect(c)
    closers.push(async () => hand.close())
    const delivered = c.servers.map((s) => {
      const got: number[] = []
      s.core.on('deliver', (d) => got.push(d.clientId))
      return got
    })
    const { batch } = hand.build(
      [0, 1, 2, 5].map((id) => ({ id, payload: enc(`f${id}`), sequence: 1 })),
    )
    // Only servers 0–2 get the frame (and witness it); server 3 is just ordered it.
    const ref = await hand.witness(encodeDistilledBatch(batch), [0, 1, 2])
    expect(ref.witnesses.length).toBe(3)
    c.orderer.propose(ref)
    await hand.ordered(1)
    for (const got of delivered) expect(got).toEqual([0, 1, 2, 5])
    const missing = c.servers[3].core.counts()
    expect(missing.fetched).toBe(1)
    expect(missing.fetchRequests).toBeGreaterThanOrEqual(1)
    const served = c.servers.slice(0, 3).reduce((n, s) => n + s.core.counts().fetchesServed, 0)
    expect(served).toBe(missing.fetched)
    // Its delivery shard reaches the broker like everyone else's.
    await waitFor(() => hand.deliveryShards(1).length === 4, {
      what: 'hand.deliveryShards(1).length === 4',
    })
  })
})
