import { describe, expect, it } from 'vitest'
import type { Broker } from '../../src/broker/broker.ts'
import type { WitnessServer } from '../../src/broker/server.ts'
import { messageIdKey } from '../../src/common/message-id.ts'
import {
  type BrokerNetwork,
  type BrokerSimNode,
  brokerSimStrategy,
} from '../../src/sim/broker-strategy.ts'
import {
  runScenario,
  SCENARIO_TOPIC,
  type Scenario,
  startScenario,
} from '../../src/sim/scenario.ts'

const CLIENTS = 12
const SERVERS = 4
const PER_CLIENT = 3

const scenario: Scenario = {
  name: 'broker-sim',
  description: 'broker in the simulator',
  nodes: CLIENTS,
  topology: 'random-regular',
  degree: 2,
  latencyMs: 10,
  bandwidth: 'unlimited',
  loss: 0,
  messages: CLIENTS * PER_CLIENT,
  messageBytes: 64,
  class: 'consensus',
  intervalMs: 20,
  warmupMs: 0,
  drainMs: 5_000,
  seed: 11,
}

/** Client `c`'s message `m`: its first bytes say whose it is. */
function payload(c: number, m: number): Uint8Array {
  const p = new Uint8Array(scenario.messageBytes)
  new DataView(p.buffer).setUint32(0, c)
  new DataView(p.buffer).setUint32(4, m)
  return p
}

/**
 * Every client publishes PER_CLIENT messages through the one API; records what each server
 * delivers (its real core's deliveries, in order) and what the run cost.
 */
async function run(seed: number, loss: number) {
  const { sim, network } = startScenario(
    { ...scenario, seed, loss },
    brokerSimStrategy({ clients: CLIENTS, servers: SERVERS }),
  )
  const net = network as BrokerNetwork
  // delivered[s]: "client/message" of each delivery at server s, in delivery order.
  const delivered = Array.from({ length: SERVERS }, () => [] as string[])
  sim.observe((i, node) => {
    if (i < net.firstServer) return
    const server = (node as BrokerSimNode).core as WitnessServer
    server.on('deliver', (d) => {
      const v = new DataView(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength)
      expect(v.getUint32(0)).toBe(d.clientId)
      delivered[i - net.firstServer].push(`${d.clientId}/${v.getUint32(4)}`)
    })
  })
  const published: Promise<string>[] = []
  for (let m = 0; m < PER_CLIENT; m++) {
    for (let c = 0; c < CLIENTS; c++) {
      sim.at(m * 100 + c, () => {
        published.push(
          sim
            .core(c)
            .publish(SCENARIO_TOPIC, payload(c, m))
            .then((r) => messageIdKey(r.id)),
        )
      })
    }
  }
  const events = sim.run({ until: 20_000 })
  const ids = await Promise.all(published)
  const broker = (sim.core(net.broker) as BrokerSimNode).core as Broker
  return { delivered, ids, events, traffic: { ...sim.traffic }, broker: broker.counts() }
}

describe('the broker in the simulator (real cores, real signatures)', () => {
  it('delivers every client message once at every server, deterministically for a seed', async () => {
    // 5% of the clients' datagrams are lost: they retransmit (the servers' links are TCP).
    const a = await run(11, 0.05)
    const expected = []
    for (let c = 0; c < CLIENTS; c++)
      for (let m = 0; m < PER_CLIENT; m++) expected.push(`${c}/${m}`)
    expect(a.ids).toHaveLength(CLIENTS * PER_CLIENT)
    expect(new Set(a.ids).size).toBe(CLIENTS * PER_CLIENT)
    for (const d of a.delivered) {
      expect(d).toHaveLength(CLIENTS * PER_CLIENT)
      expect([...d].sort()).toEqual([...expected].sort())
    }
    // Total order: every server delivers in the same order.
    for (const d of a.delivered) expect(d).toEqual(a.delivered[0])
    expect(a.broker.certifiedEntries).toBe(CLIENTS * PER_CLIENT)

    expect(a.traffic.framesDropped).toBeGreaterThan(0)

    const b = await run(11, 0.05)
    expect(b.events).toBe(a.events)
    expect(b.traffic).toEqual(a.traffic)
    expect(b.broker).toEqual(a.broker)
    expect(b.delivered).toEqual(a.delivered)
  })

  it('runs as a scenario strategy: every server receives every message, none twice', async () => {
    const r = await runScenario(scenario, brokerSimStrategy({ clients: CLIENTS, servers: SERVERS }))
    expect(r.publishErrors).toEqual([])
    expect(r.summary.messages).toBe(scenario.messages)
    expect(r.summary.deliveryRatio).toBe(1)
    expect(r.summary.latencyMs.count).toBe(scenario.messages * SERVERS)
    expect(r.summary.duplicates.max).toBe(0)
  })

  it('refuses a message of a class the broker does not order', async () => {
    const r = await runScenario(
      { ...scenario, class: 'ingress', messages: 2 },
      brokerSimStrategy({ clients: CLIENTS, servers: SERVERS }),
    )
    expect(r.publishErrors).toEqual(['ERR_INVALID_PARAMETERS', 'ERR_INVALID_PARAMETERS'])
    expect(r.summary.messages).toBe(0)
  })
})
