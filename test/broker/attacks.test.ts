/**
 * Attacks on the broker from outside, over real UDP sockets on loopback, with honest
 * clients submitting throughout: each flood source is banned, no honest message is lost,
 * no honest client (all on 127.0.0.1; attackers on 127.66.0.0/16) is penalised, and honest
 * messages keep being delivered. Waits are on events (bans, receipts), never fixed sleeps.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { LocalCluster } from '../../src/broker/local-cluster.ts'
import { ThreadedUdpEndpoint } from '../../src/broker/threaded-udp-endpoint.ts'
import { waitFor } from '../support/wait.ts'
import { badlySigned, capturedSubmissions, Flood, RaceRelay } from './attacker.ts'
import { banOf, clientsVia } from './harness.ts'
import { HonestLoad } from './honest-load.ts'

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

/** UDP threads of the flood tests' broker: `BROKER_TEST_UDP_THREADS`, else the broker's default. */
const FLOOD_UDP_THREADS =
  process.env.BROKER_TEST_UDP_THREADS === undefined
    ? undefined
    : Number(process.env.BROKER_TEST_UDP_THREADS)

/** A cluster whose broker has its sockets where `udpThreads` says. */
async function cluster(udpThreads = FLOOD_UDP_THREADS): Promise<LocalCluster> {
  const c = await LocalCluster.start({
    clients: 8,
    broker: { flushTimeoutMs: 10, shareTimeoutMs: 300, authThreads: 1, udpThreads },
    client: { retryMs: 400, maxRetryMs: 1600 },
  })
  closers.push(() => c.close())
  return c
}

async function flood(opts: Parameters<typeof Flood.start>[0]): Promise<Flood> {
  const f = await Flood.start(opts)
  closers.push(() => f.stop())
  return f
}

/** Honest load through the attack: nothing lost, nobody honest penalised, still flowing. */
async function expectHonestUnharmed(c: LocalCluster, load: HonestLoad): Promise<void> {
  // Still flowing after the ban: every client gets more messages through.
  await load.more(2 * c.clients.length)
  await load.stop()
  await load.settled()
  expect(load.errors).toEqual([])
  expect(load.lost()).toBe(0)
  const broker = c.broker!.core
  expect(broker.penaltiesOf('127.0.0.1')).toBe(0)
  expect(broker.isBanned(c.clients[0].udp.address)).toBe(false)
  const honestPenalties = Object.keys(broker.stats().invalidByPeer).filter((p) =>
    p.startsWith('127.0.0.1:'),
  )
  expect(honestPenalties).toEqual([])
}

/**
 * With the broker's sockets in a UDP thread: once the core's ban of `address` reaches the
 * thread, the thread hands on nothing more from it (while it keeps sending), and it never
 * dropped an honest datagram for want of room. Nothing to check with the sockets on the
 * main thread (the core drops a banned source's frames unread).
 */
async function expectThreadStopsForwarding(c: LocalCluster, address: string): Promise<void> {
  const udp = c.broker!.udp
  if (!(udp instanceof ThreadedUdpEndpoint)) return
  // The thread's first report of a drop for the ban: from then on it is in place there,
  // and all the thread forwarded from the address before is in that report or earlier.
  await waitFor(() => udp.countsOf(address).banned > 0, { what: `${address} dropped` })
  const { forwarded, banned } = udp.countsOf(address)
  expect(forwarded).toBeGreaterThan(0)
  await waitFor(() => udp.countsOf(address).banned >= banned + 1000, {
    what: `1,000 more datagrams of ${address} dropped in the thread`,
  })
  expect(udp.countsOf(address).forwarded).toBe(forwarded)
  expect(udp.countsOf('127.0.0.1').overBudget).toBe(0)
  expect(udp.countsOf('127.0.0.1').forwarded).toBeGreaterThan(0)
}

describe('broker under attack (real UDP on loopback)', () => {
  it.each([0, 1])(
    'random garbage (%i UDP threads): the source is banned, honest clients unharmed',
    async (udpThreads) => {
      const c = await cluster(udpThreads)
      const load = HonestLoad.start(c, 'g')
      await load.more(c.clients.length)
      const banned = banOf(c, '127.66.0.1')
      await flood({ host: '127.66.0.1', target: c.broker!.address, frames: 'random' })
      expect((await banned).source).toBe('127.66.0.1')
      await expectThreadStopsForwarding(c, '127.66.0.1')
      await expectHonestUnharmed(c, load)
      expect(c.broker!.core.counts().banned).toBeGreaterThan(0)
    },
  )

  it('bad signatures on known ids: banned, and never crowd out known clients', async () => {
    const c = await cluster()
    const load = HonestLoad.start(c, 's')
    await load.more(c.clients.length)
    const banned = banOf(c, '127.66.0.2')
    await flood({
      host: '127.66.0.2',
      target: c.broker!.address,
      frames: badlySigned(c.clients.length, 4096),
    })
    await banned
    await expectHonestUnharmed(c, load)
    const counts = c.broker!.core.counts()
    expect(counts.authQueueFullKnown).toBe(0)
    expect(c.broker!.core.stats().invalid['bad-signature']).toBeGreaterThanOrEqual(256)
  })

  it('replayed captured submissions: no signature check, penalised, banned', async () => {
    const c = await cluster()
    const enc = (s: string) => new TextEncoder().encode(s)
    // Messages the clients send first, captured byte for byte (ed25519 is deterministic).
    const first = c.clients.map((_, id) => [enc(`r-first-${id}`)])
    await Promise.all(c.clients.map((cl, id) => cl.submit(first[id][0])))
    const accepted = () => {
      const k = c.broker!.core.counts()
      return k.authenticated + k.deferred
    }
    const before = accepted()
    const load = HonestLoad.start(c, 'r')
    await load.more(c.clients.length)
    const banned = banOf(c, '127.66.0.3')
    const f = await flood({
      host: '127.66.0.3',
      target: c.broker!.address,
      frames: capturedSubmissions(c, first),
    })
    await banned
    await f.stop()
    await expectHonestUnharmed(c, load)
    const counts = c.broker!.core.counts()
    // Only honest submissions were ever accepted (checked, or pooled unchecked and proven):
    // the replays never reached a check or the pool.
    expect(accepted() - before).toBe(load.submitted.length)
    expect(counts.forged).toBe(0)
    expect(counts.replays).toBeGreaterThanOrEqual(256)
    expect(counts.authQueueFull).toBe(0)
  })

  it.each([0, 1])(
    'port rotation (%i UDP threads): 1,100 source ports, then a flood from a fresh one: the address is banned',
    async (udpThreads) => {
      const c = await cluster(udpThreads)
      const load = HonestLoad.start(c, 'p')
      await load.more(c.clients.length)
      const banned = banOf(c, '127.66.0.4')
      const rotation = await flood({
        host: '127.66.0.4',
        target: c.broker!.address,
        frames: [new Uint8Array([0x42, 1, 2, 3])],
        sockets: 1100,
        max: 1100,
      })
      await rotation.finished()
      await banned // 256 bad datagrams from one address, whatever their ports
      const before = c.broker!.core.counts().banned
      await flood({ host: '127.66.0.4', target: c.broker!.address, frames: 'random', max: 20_000 })
      await expectThreadStopsForwarding(c, '127.66.0.4')
      await expectHonestUnharmed(c, load)
      expect(c.broker!.core.counts().banned).toBeGreaterThan(before)
    },
  )

  // Two UDP threads (and the round-robin between sockets) deliver the attacker's copy and
  // the client's in either order; the outcome must not depend on it.
  it.each([0, 1, 2])(
    'replay race (%i UDP threads): an on-path attacker resending SUBMITs gets no honest client penalised, whichever copy arrives first',
    async (udpThreads) => {
      const c = await cluster(udpThreads)
      const relay = await RaceRelay.start(c.broker!.address, '127.66.0.5')
      closers.push(() => relay.close())
      // The clients now talk through the relay (the attacker sees and races every SUBMIT).
      const raced = await clientsVia(c, relay.address, { retryMs: 400, maxRetryMs: 1600 }, closers)
      const view = Object.assign(Object.create(c) as LocalCluster, { clients: raced })
      // First messages: no client is bound yet, so the broker cannot tell the two copies
      // apart and sends the proofs to both senders; the client's good share binds it.
      const enc = (text: string) => new TextEncoder().encode(text)
      await Promise.all(raced.map((client, id) => client.submit(enc(`x-first-${id}`))))
      const unbound = relay.answersToAttacker
      const load = HonestLoad.start(view, 'x')
      await load.more(3 * raced.length)
      await load.stop()
      await load.settled()
      expect(load.errors).toEqual([])
      expect(load.lost()).toBe(0)
      expect(relay.raced).toBeGreaterThanOrEqual(load.submitted.length)
      const broker = c.broker!.core
      expect(broker.penaltiesOf('127.0.0.1')).toBe(0)
      expect(broker.stats().invalid).toEqual({})
      // Once bound, proofs and certificates go to the clients, never to the attacker.
      expect(relay.answersToAttacker).toBe(unbound)
    },
  )
})
