import { afterEach, describe, expect, it } from 'vitest'
import type { QuorumEvent } from '../../src/rp/events.ts'
import type { RpMember } from '../../src/rp/member.ts'
import { waitFor } from '../support/wait.ts'
import {
  clusterIdentities,
  numberOf,
  payload,
  type RpNode,
  rpListFor,
  startRpNode,
} from './fixtures/cluster.ts'
import type { Identity } from './fixtures/identity.ts'

const TOPIC = 'blocks'
// Fast heartbeats, but a lease of 25 intervals (5 s): fifteen nodes share this process, and
// on a busy machine its event loop stalls for seconds; a stall must not look like a dead
// member or RP (a member that drops its RP cannot publish). No test here waits on a lease.
const FAST = { heartbeatIntervalMs: 200, robustness: 25 }
const FAST_RP = { helloIntervalMs: 200, robustness: 25 }
let nodes: RpNode[] = []

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  nodes = []
})

async function cluster(rpCount: number, memberCount: number) {
  const ids = await clusterIdentities(rpCount, memberCount)
  const backbone = ids.rps.map((r) => r.addr)
  const rps = await Promise.all(
    ids.rps.map((id) => startRpNode(id, { role: 'rp', backbone, ...FAST_RP })),
  )
  nodes.push(...rps)
  const members = await Promise.all(
    ids.members.map((id, i) =>
      startRpNode(id, { role: 'member', rps: rpListFor(i, ids.rps), ...FAST }),
    ),
  )
  nodes.push(...members)
  // received[i]: message number → copies delivered to member i's application.
  const received = members.map(() => new Map<number, number>())
  for (const [i, m] of members.entries()) {
    m.services.rp.subscribe(TOPIC)
    m.services.rp.on('artifact', (a) => {
      const n = numberOf(a.data)
      received[i].set(n, (received[i].get(n) ?? 0) + 1)
    })
  }
  const total = () => rps.map((r) => r.services.rp.view()?.totalCounts[TOPIC] ?? 0)
  // Nothing emits when a count or a tree changes: polled. Bounded by time without progress
  // (members counted, RPs reached), not in total: on a busy machine this takes long.
  const reached = () => rps.reduce((a, r) => a + (r.services.rp.view()?.reachable.length ?? 0), 0)
  await waitFor(
    () => total().every((t) => t === memberCount) && rps.every((r) => treeReady(r, rpCount)),
    {
      what: 'every member registered and the backbone tree built',
      progress: () => total().reduce((a, t) => a + t, 0) + reached(),
      timeoutMs: 15_000,
      detail: () => `counts ${total()}, RPs reached ${reached()}`,
    },
  )
  return { ids, rps, members, received, total }
}

function treeReady(rp: RpNode, rpCount: number): boolean {
  return rp.services.rp.view()?.reachable.length === rpCount
}

// A backstop only: every wait has its own bound.
describe('replication points over real libp2p nodes (TCP on 127.0.0.1)', {
  timeout: 120_000,
}, () => {
  it('delivers every message to every member of a 3-RP, 12-member cluster, once', async () => {
    const { members, received, rps } = await cluster(3, 12)
    // Three RPs, two tree edges, the same tree at each once their link-state views agree
    // (RTT probes keep arriving for a moment after every RP is reachable, as in any
    // link-state protocol; until then trees may differ, which dedup at each hop absorbs).
    const treeEdges = () => {
      const edges = new Set<string>()
      for (const r of rps) {
        const me = r.peerId.toString()
        for (const t of r.services.rp.view()!.treeNeighbours) edges.add([me, t].sort().join(' '))
      }
      return edges
    }
    await waitFor(() => treeEdges().size === 2, { what: 'the RPs to agree on one tree' })
    for (let n = 0; n < 36; n++) await members[n % 12].services.rp.publish(TOPIC, payload(n))
    await waitFor(() => received.every((r, i) => r.size === 36 - 3 && !r.has(i)), {
      what: 'every message at every member',
      wakeOn: members.map((m) => [m.services.rp, 'artifact']),
      progress: () => received.reduce((a, r) => a + r.size, 0),
    })
    for (const [i, r] of received.entries()) {
      for (let n = 0; n < 36; n++) expect(r.get(n) ?? 0).toBe(n % 12 === i ? 0 : 1)
    }
    // The backbone acknowledges every publish (another RP holds it), so nothing stays pending.
    await waitFor(
      () => members.every((m) => (m.services.rp.core as RpMember).unacknowledged === 0),
      { what: 'every publish acknowledged' },
    )
  })

  it('reports the delivery quorum to the publisher', async () => {
    const { members } = await cluster(3, 12)
    const quorums: QuorumEvent[] = []
    members[4].services.rp.on('quorum', (q) => quorums.push(q))
    await members[4].services.rp.publish(TOPIC, payload(1), { quorum: true, surplus: 2 })
    await waitFor(() => quorums.length === 1, {
      what: 'the quorum event',
      wakeOn: [[members[4].services.rp, 'quorum']],
    })
    expect(quorums[0].members).toBe(12)
    // A majority of 12 is 7; two more were asked for.
    expect(quorums[0].count).toBeGreaterThanOrEqual(9)
  })

  it('changes the member counts as members join, leave and go away', async () => {
    const { ids, members, total } = await cluster(3, 12)
    members[0].services.rp.unsubscribe(TOPIC)
    await waitFor(() => total().every((t) => t === 11), { what: 'count 11 after a leave' })
    await members[1].stop()
    await waitFor(() => total().every((t) => t === 10), { what: 'count 10 after a stop' })
    const late: Identity = (await clusterIdentities(0, 1)).members[0]
    const newcomer = await startRpNode(late, {
      role: 'member',
      rps: rpListFor(0, ids.rps),
      ...FAST,
    })
    nodes.push(newcomer)
    newcomer.services.rp.subscribe(TOPIC)
    await waitFor(() => total().every((t) => t === 11), { what: 'count 11 after a join' })
  })
})
