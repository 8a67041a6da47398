import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { type Identify, identify } from '@libp2p/identify'
import type { PrivateKey } from '@libp2p/interface'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p, type ServiceFactoryMap } from 'libp2p'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import type { DisseminationStats } from '../../src/common/stats.ts'
import { GOSSIP_PROTOCOLS } from '../../src/gossip/protocol-ids.ts'
import { type GossipService, gossip } from '../../src/libp2p/gossip-service.ts'
import {
  type ReplicationPointsInit,
  type RpService,
  replicationPoints,
} from '../../src/libp2p/rp-service.ts'
import type { QuorumEvent } from '../../src/rp/events.ts'
import { clusterIdentities, payload, rpListFor } from '../rp/fixtures/cluster.ts'
import { type Identity, privateKeyOf } from '../rp/fixtures/identity.ts'
import { connect } from '../support/libp2p-node.ts'
import { waitFor } from '../support/wait.ts'

const running: Libp2p[] = []

afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop()))
})

/**
 * A real node over TCP on 127.0.0.1 whose metrics go to a Prometheus registry of its own
 * (two nodes in one process must not share the global one).
 */
async function metricsNode<S extends Record<string, unknown>>(
  services: ServiceFactoryMap<S>,
  registry: Registry,
  identity?: Identity,
): Promise<Libp2p<S & { identify: Identify }>> {
  const node = await createLibp2p({
    ...(identity === undefined ? {} : { privateKey: privateKeyOf(identity) as PrivateKey }),
    addresses: { listen: [`/ip4/127.0.0.1/tcp/${identity?.port ?? 0}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    metrics: prometheusMetrics({ registry, collectDefaultMetrics: false }),
    services: { identify: identify(), ...services } as ServiceFactoryMap<
      S & { identify: Identify }
    >,
  })
  running.push(node)
  return node
}

/** The samples of a Prometheus text exposition, by `name{labels}`. */
async function scrape(registry: Registry): Promise<Map<string, number>> {
  const samples = new Map<string, number>()
  for (const line of (await registry.metrics()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    samples.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return samples
}

/** Each sample is between what `stats()` said just before the scrape and just after. */
function expectBetween(
  samples: Map<string, number>,
  before: DisseminationStats,
  after: DisseminationStats,
  expected: Record<string, (s: DisseminationStats) => number>,
) {
  for (const [name, read] of Object.entries(expected)) {
    expect(samples.get(name), name).toBeGreaterThanOrEqual(read(before))
    expect(samples.get(name), name).toBeLessThanOrEqual(read(after))
  }
}

describe('metrics through libp2p’s metrics component (@libp2p/prometheus-metrics)', () => {
  it('exports the gossip service’s counters and frame timing, equal to stats()', async () => {
    const registries = [new Registry(), new Registry()]
    const nodes: Libp2p<{ identify: Identify; dissemination: GossipService }>[] = []
    for (const registry of registries) {
      const n = await metricsNode(
        { dissemination: gossip({ signaturePolicy: 'StrictNoSign' }) },
        registry,
      )
      n.services.dissemination.subscribe('t')
      nodes.push(n)
    }
    const [a, b] = nodes
    await connect(a, b)
    await waitFor(() => b.services.dissemination.core.getMeshPeers('t').length === 1, {
      what: 'a mesh',
      timeoutMs: 10_000,
    })
    // A frame whose length prefix claims 1 GiB: refused and counted against the sender.
    const attack = await a.dialProtocol(b.peerId, GOSSIP_PROTOCOLS[0])
    attack.send(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x04]))
    const delivered: number[] = []
    b.services.dissemination.on('artifact', (x) => delivered.push(x.data.length))
    for (let i = 1; i <= 5; i++) {
      await a.services.dissemination.publish('t', new Uint8Array(100 * i).fill(i))
    }
    await waitFor(() => delivered.length === 5, { what: 'five deliveries', timeoutMs: 10_000 })
    await waitFor(() => b.services.dissemination.stats().invalid['bad-framing'] === 1, {
      what: 'the bad frame',
      timeoutMs: 10_000,
    })

    const before = b.services.dissemination.stats()
    const samples = await scrape(registries[1])
    const after = b.services.dissemination.stats()
    const p = 'consensus_multicast_gossip_'
    expect(samples.get(`${p}delivered_total`)).toBe(5)
    expect(samples.get(`${p}delivered_bytes_total`)).toBe(1500)
    expect(samples.get(`${p}published_total`)).toBe(0)
    expect(samples.get(`${p}rejected_total{reason="bad-framing"}`)).toBe(1)
    expect(samples.get(`${p}peers`)).toBe(1)
    expect(samples.get(`${p}mesh_peers{topic="t"}`)).toBe(1)
    expect(samples.get(`${p}outbound_frames_dropped_total`)).toBe(0)
    expect(samples.get(`${p}early_frames_dropped_total`)).toBe(0)
    expect(after.received.frames).toBeGreaterThan(5)
    expect(after.received.payloadBytes).toBeGreaterThanOrEqual(1500)
    const controlKinds = Object.keys(after.control)
    expect(controlKinds.length).toBeGreaterThan(0)
    expectBetween(samples, before, after, {
      [`${p}duplicates_total`]: (s) => s.total.duplicates,
      [`${p}frames_received_total`]: (s) => s.received.frames,
      [`${p}frames_sent_total`]: (s) => s.sent.frames,
      [`${p}received_bytes_total{kind="payload"}`]: (s) => s.received.payloadBytes,
      [`${p}received_bytes_total{kind="control"}`]: (s) => s.received.controlBytes,
      [`${p}sent_bytes_total{kind="control"}`]: (s) => s.sent.controlBytes,
      // Every frame the core handled was timed: the histogram counts them all.
      [`${p}frame_handling_seconds_count`]: (s) => s.received.frames,
      ...Object.fromEntries(
        controlKinds.flatMap((kind) => [
          [
            `${p}control_sent_total{kind="${kind}"}`,
            (s: DisseminationStats) => s.control[kind]?.sent ?? 0,
          ],
          [
            `${p}control_received_total{kind="${kind}"}`,
            (s: DisseminationStats) => s.control[kind]?.received ?? 0,
          ],
        ]),
      ),
    })
    expect(samples.get(`${p}frame_handling_seconds_sum`)).toBeGreaterThan(0)

    // The publisher's side.
    const aSamples = await scrape(registries[0])
    expect(aSamples.get(`${p}published_total`)).toBe(5)
    expect(aSamples.get(`${p}delivered_total`)).toBe(0)
    expect(aSamples.get(`${p}sent_bytes_total{kind="payload"}`)).toBeGreaterThanOrEqual(1500)

    // A second scrape adds nothing that did not happen: counters are not pulled twice.
    await a.services.dissemination.publish('t', new Uint8Array(7))
    await waitFor(() => delivered.length === 6, { what: 'a sixth delivery', timeoutMs: 10_000 })
    const again = await scrape(registries[1])
    expect(again.get(`${p}delivered_total`)).toBe(6)
    expect(again.get(`${p}delivered_bytes_total`)).toBe(1507)
    expect(again.get(`${p}rejected_total{reason="bad-framing"}`)).toBe(1)
  })

  it('times an RP publish until its delivery quorum', async () => {
    const ids = await clusterIdentities(1, 3)
    const backbone = ids.rps.map((r) => r.addr)
    const fast = { heartbeatIntervalMs: 200, robustness: 10 }
    const rpNode = (init: ReplicationPointsInit, id: Identity, registry: Registry) =>
      metricsNode<{ rp: RpService }>({ rp: replicationPoints(init) }, registry, id)
    const rp = await rpNode(
      { role: 'rp', backbone, helloIntervalMs: 200, robustness: 10 },
      ids.rps[0],
      new Registry(),
    )
    const registries = ids.members.map(() => new Registry())
    const members = await Promise.all(
      ids.members.map((id, i) =>
        rpNode({ role: 'member', rps: rpListFor(i, ids.rps), ...fast }, id, registries[i]),
      ),
    )
    for (const m of members) m.services.rp.subscribe('blocks')
    await waitFor(() => rp.services.rp.view()?.totalCounts.blocks === 3, {
      what: 'every member registered',
      timeoutMs: 15_000,
    })
    const quorums: QuorumEvent[] = []
    members[0].services.rp.on('quorum', (q) => quorums.push(q))
    const start = performance.now()
    await members[0].services.rp.publish('blocks', payload(1), { quorum: true })
    await waitFor(() => quorums.length === 1, { what: 'the quorum', timeoutMs: 10_000 })
    const elapsed = (performance.now() - start) / 1000

    const samples = await scrape(registries[0])
    expect(samples.get('consensus_multicast_rp_quorum_seconds_count')).toBe(1)
    const sum = samples.get('consensus_multicast_rp_quorum_seconds_sum') ?? 0
    expect(sum).toBeGreaterThan(0)
    expect(sum).toBeLessThanOrEqual(elapsed)
    expect(samples.get('consensus_multicast_rp_published_total')).toBe(1)
    await waitFor(() => members[1].services.rp.stats().total.delivered === 1, {
      what: 'delivery to member 1',
      timeoutMs: 10_000,
    })
    const m1 = await scrape(registries[1])
    expect(m1.get('consensus_multicast_rp_delivered_total')).toBe(1)
    expect(m1.get('consensus_multicast_rp_delivered_bytes_total')).toBe(payload(1).length)
  })
})
