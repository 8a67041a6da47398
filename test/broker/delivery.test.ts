import { afterEach, describe, expect, it } from 'vitest'
import { BrokerDissemination, brokerMessageId } from '../../src/broker/dissemination.ts'
import { LocalCluster } from '../../src/broker/local-cluster.ts'
import type { BrokerDelivery } from '../../src/broker/server.ts'
import { InvalidParametersError } from '../../src/core/errors.ts'
import { messageIdKey } from '../../src/core/message-id.ts'

let cluster: LocalCluster | undefined

afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

function record(c: LocalCluster): BrokerDelivery[][] {
  return c.servers.map((s) => {
    const got: BrokerDelivery[] = []
    s.core.on('deliver', (d) => got.push(d))
    return got
  })
}

const enc = (s: string) => new TextEncoder().encode(s)

describe('broker over real UDP and TCP sockets', () => {
  it('delivers every submitted message exactly once at every server, in the same order', async () => {
    cluster = await LocalCluster.start({
      clients: 64,
      limits: { maxBatchEntries: 32 },
      // A batch aggregates as soon as every share is in; the timeout only has to outlast a
      // loaded machine's pauses, or honest clients would become stragglers.
      broker: { flushTimeoutMs: 30, shareTimeoutMs: 3000, authThreads: 1 },
      client: { retryMs: 400 },
    })
    const delivered = record(cluster)
    const rounds = 3
    for (let r = 0; r < rounds; r++) {
      const receipts = await Promise.all(
        cluster.clients.map((c, id) => c.submit(enc(`m${r}-${id}`))),
      )
      for (const rc of receipts) expect(rc.slot).toBeGreaterThan(0)
    }
    const expected = new Set<string>()
    for (let r = 0; r < rounds; r++)
      for (let id = 0; id < 64; id++) expected.add(`${id}:m${r}-${id}`)
    for (const got of delivered) {
      const keys = got.map((d) => `${d.clientId}:${new TextDecoder().decode(d.payload)}`)
      expect(keys.length).toBe(expected.size)
      expect(new Set(keys)).toEqual(expected)
    }
    // Every server saw the same total order.
    const order = (g: BrokerDelivery[]) => g.map((d) => `${d.slot}/${d.clientId}/${d.sequence}`)
    for (const got of delivered.slice(1)) expect(order(got)).toEqual(order(delivered[0]))
    const counts = cluster.broker!.core.counts()
    expect(counts.batches).toBeGreaterThanOrEqual(6)
    expect(counts.stragglers).toBe(0)
  })
})

describe('the broker behind the typed Dissemination API', () => {
  it('publish resolves on the delivery certificate; servers emit validated artifacts', async () => {
    cluster = await LocalCluster.start({
      clients: 3,
      broker: { flushTimeoutMs: 20, shareTimeoutMs: 300, authThreads: 0 },
    })
    const pub = new BrokerDissemination({ client: cluster.clients[1].core, clientId: 1 })
    const sub = new BrokerDissemination({ server: cluster.servers[2].core })
    expect(pub.strategy).toBe('broker')
    sub.subscribe('broker')
    const got: string[] = []
    const ids: string[] = []
    sub.on('artifact', (a) => {
      got.push(`${a.origin}:${new TextDecoder().decode(a.data)}`)
      ids.push(messageIdKey(a.id))
    })
    sub.setValidator('broker', (a) => (a.data[0] === 0x78 ? 'reject' : 'accept'))
    const r = await pub.publish('broker', enc('hello'))
    expect(r.recipients).toBe(1)
    expect([...r.id]).toEqual([...brokerMessageId(1, 'broker', enc('hello'))])
    await pub.publish('broker', enc('x-rejected'))
    await expect(pub.publish('other', enc('no'))).rejects.toThrow(InvalidParametersError)
    await expect(pub.publish('broker', enc('no'), { class: 'ingress' })).rejects.toThrow(
      InvalidParametersError,
    )
    expect(got).toEqual(['client/1:hello'])
    // The publisher and the server name the message alike.
    expect(ids).toEqual([messageIdKey(r.id)])
    expect(sub.stats().total.delivered).toBe(1)
    expect(sub.stats().total.rejected).toBe(1)
    expect(pub.stats().total.published).toBe(2)
    sub.close()
  })
})

describe('an asynchronous validator on the broker', () => {
  it('keeps the total order: verdicts apply in delivery order, however long each takes', async () => {
    cluster = await LocalCluster.start({
      clients: 4,
      broker: { flushTimeoutMs: 20, shareTimeoutMs: 300, authThreads: 0 },
    })
    const server = cluster.servers[0]
    const order: string[] = []
    server.core.on('deliver', (d) => order.push(new TextDecoder().decode(d.payload)))
    const sub = new BrokerDissemination({ server: server.core })
    sub.subscribe('broker')
    const got: string[] = []
    sub.on('artifact', (a) => got.push(new TextDecoder().decode(a.data)))
    // The earliest messages take longest to validate, so verdicts settle in reverse.
    const settled: string[] = []
    sub.setValidator('broker', async (a) => {
      const text = new TextDecoder().decode(a.data)
      const wait = 120 - 30 * Number(text.slice(-1))
      await new Promise((r) => setTimeout(r, wait))
      settled.push(text)
      return text.startsWith('bad') ? 'reject' : 'accept'
    })
    const texts = ['slow-0', 'bad-1', 'mid-2', 'fast-3']
    const pubs = texts.map(
      (_, id) => new BrokerDissemination({ client: cluster!.clients[id].core, clientId: id }),
    )
    await Promise.all(pubs.map((p, id) => p.publish('broker', enc(texts[id]))))
    for (let i = 0; i < 50 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 20))
    expect([...order].sort()).toEqual([...texts].sort())
    // The verdicts did settle out of order (one batch, validated concurrently)...
    expect(settled).not.toEqual(order)
    // ...yet the artifacts follow the delivery order.
    expect(got).toEqual(order.filter((t) => !t.startsWith('bad')))
    expect(sub.stats().total.delivered).toBe(3)
    expect(sub.stats().total.rejected).toBe(1)
    sub.close()
  })

  it('bounds the deliveries waiting for a verdict and reports the overflow', async () => {
    cluster = await LocalCluster.start({
      clients: 3,
      broker: { flushTimeoutMs: 20, shareTimeoutMs: 300, authThreads: 0 },
    })
    const sub = new BrokerDissemination({
      server: cluster.servers[1].core,
      maxPendingValidations: 1,
    })
    expect(
      () => new BrokerDissemination({ server: cluster!.servers[1].core, maxPendingValidations: 0 }),
    ).toThrow(InvalidParametersError)
    sub.subscribe('broker')
    const rejected: string[] = []
    sub.on('rejected', (e) => rejected.push(e.reason))
    let release: () => void = () => {}
    const gate = new Promise<void>((r) => {
      release = r
    })
    sub.setValidator('broker', async () => {
      await gate
      return 'accept' as const
    })
    let seen = 0
    cluster.servers[1].core.on('deliver', () => {
      seen++
    })
    await Promise.all(cluster.clients.map((c) => c.submit(enc('m'))))
    // Certified means f + 1 servers delivered: wait for this one before the verdict comes.
    for (let i = 0; i < 50 && seen < 3; i++) await new Promise((r) => setTimeout(r, 20))
    expect(seen).toBe(3)
    release()
    for (let i = 0; i < 50 && sub.stats().total.delivered < 1; i++) {
      await new Promise((r) => setTimeout(r, 20))
    }
    expect(sub.stats().total.delivered).toBe(1)
    expect(rejected).toEqual(['validation-queue-full', 'validation-queue-full'])
    expect(sub.stats().total.rejected).toBe(2)
    sub.close()
  })
})

describe('with a crashed server', () => {
  it('asks the other servers to witness and still certifies every delivery', async () => {
    cluster = await LocalCluster.start({
      clients: 16,
      broker: { flushTimeoutMs: 20, shareTimeoutMs: 300, witnessTimeoutMs: 100, authThreads: 0 },
    })
    // Batch 1 asks servers 1 and 2 first (rotation); server 2 is gone.
    await cluster.servers[2].close()
    const live = [0, 1, 3].map((i) => cluster!.servers[i])
    const got = live.map(() => 0)
    live.forEach((s, k) => {
      s.core.on('deliver', () => {
        got[k]++
      })
    })
    const receipts = await Promise.all(cluster.clients.map((c, id) => c.submit(enc(`c${id}`))))
    expect(receipts.every((r) => r.slot === 1)).toBe(true)
    expect(got).toEqual([16, 16, 16])
    expect(cluster.broker!.core.counts().witnessed).toBe(1)
  })
})
