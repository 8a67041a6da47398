import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePorts, type Identity, newIdentity } from '../rp/fixtures/identity.ts'
import { NodeProcess } from './node-process.ts'

/** Bound on each wait: process start on a loaded 2-core machine, then a few heartbeats. */
const WAIT_MS = 15_000
const field = NodeProcess.field

/** A status line whose `key=` value is at least `min`. */
const statusAtLeast = (key: string, min: number) => (line: string) =>
  line.startsWith('status ') && Number.parseFloat(field(line, key) ?? '') >= min

/** Publishes `text` from `publisher`'s stdin; returns the message id the node printed. */
async function publishLine(publisher: NodeProcess, text: string): Promise<string> {
  publisher.writeLine(text)
  const line = await publisher.waitForLine(
    (l) => l.startsWith('published ') || l.startsWith('publish-failed '),
    WAIT_MS,
    'the publish result',
  )
  expect(line).toMatch(/^published topic=\S+ bytes=\d+ id=[0-9a-f]+ recipients=\d+$/)
  const id = field(line, 'id')
  if (id === undefined) throw new Error(`no id in ${line}`)
  expect(field(line, 'bytes')).toBe(String(new TextEncoder().encode(text).length))
  return id
}

/** Waits until `node` printed the delivery of message `id` of `bytes` bytes on `topic`. */
async function delivered(node: NodeProcess, topic: string, id: string, bytes: number) {
  const line = await node.waitForLine(
    (l) => l.startsWith('delivered ') && field(l, 'id') === id,
    WAIT_MS,
    `the delivery of ${id}`,
  )
  expect(field(line, 'topic')).toBe(topic)
  expect(field(line, 'bytes')).toBe(String(bytes))
}

let keyDir: string
beforeAll(async () => {
  keyDir = await mkdtemp(join(tmpdir(), 'consensus-multicast-cli-'))
})
afterAll(async () => {
  await rm(keyDir, { recursive: true, force: true })
})

/**
 * The options that give a node `identity` (its key in a --key-file, its port): the others
 * can then be started at once with its address, and dial it until it is up.
 */
async function identityArgs(identity: Identity): Promise<string[]> {
  const keyFile = join(keyDir, `${identity.peerId}.key`)
  await writeFile(keyFile, identity.keyHex)
  return ['--key-file', keyFile, '--listen', `/ip4/127.0.0.1/tcp/${identity.port}`]
}

describe('consensus-multicast node, three gossip processes', () => {
  const topic = 'cli-test/blocks'
  const common = ['--strategy', 'gossip', '--topic', topic, '--print-messages']
  const status = ['--status-interval', '100']
  let a: NodeProcess
  let b: NodeProcess
  let c: NodeProcess
  let metricsUrl: string
  let aId: Identity

  beforeAll(async () => {
    aId = await newIdentity((await freePorts(1))[0])
    const aArgs = [...common, ...status, '--metrics-port', '0', ...(await identityArgs(aId))]
    a = new NodeProcess(aArgs, { stdin: true })
    b = new NodeProcess([...common, '--no-stdin', '--peer', aId.addr])
    // c also publishes 20 messages of 100 bytes a second.
    c = new NodeProcess([
      ...common,
      '--no-stdin',
      '--peer',
      aId.addr,
      '--rate',
      '20',
      '--size',
      '100',
    ])
    const metricsLine = await a.waitForLine((l) => l.startsWith('metrics '), WAIT_MS, 'metrics')
    metricsUrl = metricsLine.slice('metrics '.length)
    // Both others dialled a and told it their subscription.
    await a.waitForLine(statusAtLeast('topic-peers', 2), WAIT_MS, 'two topic peers')
  })

  afterAll(async () => {
    await Promise.all([a, b, c].filter((p) => p !== undefined).map((p) => p.stop()))
  })

  it('prints its listen address with the peer id of its key file', async () => {
    expect(await a.waitForLine((l) => l.startsWith('peer-id '), WAIT_MS, 'peer id')).toBe(
      `peer-id ${aId.peerId}`,
    )
    expect(await a.address(WAIT_MS)).toBe(aId.addr)
    // A node without a key file gets a fresh identity and the port the OS picked.
    expect(await b.address(WAIT_MS)).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3Koo\w+$/)
  })

  it('publishes a stdin line and the two other nodes deliver it', async () => {
    const text = 'block 1 from stdin'
    const id = await publishLine(a, text)
    const bytes = new TextEncoder().encode(text).length
    await Promise.all([delivered(b, topic, id, bytes), delivered(c, topic, id, bytes)])
    // The publisher's status line counts what it sent.
    await a.waitForLine(statusAtLeast('published', 1), WAIT_MS, 'published=1 in the status')
  })

  it('publishes at a set rate', async () => {
    const rateDelivery = (l: string) => l.startsWith('delivered ') && field(l, 'bytes') === '100'
    await b.waitForLine(
      () => b.lines.filter(rateDelivery).length >= 10,
      WAIT_MS,
      'ten messages of c',
    )
    // Each is one c published (and printed, with --print-messages).
    for (const id of b.lines
      .filter(rateDelivery)
      .slice(0, 10)
      .map((l) => field(l, 'id'))) {
      await c.waitForLine(
        (l) => l.startsWith('published ') && field(l, 'id') === id,
        WAIT_MS,
        `c's published line for ${id}`,
      )
    }
    await c.waitForLine(statusAtLeast('out', 1), WAIT_MS, 'a publish rate in the status')
  })

  it('serves libp2p metrics in the Prometheus format on /metrics', async () => {
    const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(WAIT_MS) })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await res.text()
    const value = (name: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(name))
        .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0)
    // Two peers dialled this node: two noise handshakes, and gossip bytes on the wire.
    expect(value('libp2p_noise_xxhandshake_successes_total')).toBeGreaterThanOrEqual(2)
    expect(
      value('libp2p_data_transfer_bytes_total{protocol="/meshsub/1.3.0 sent"}'),
    ).toBeGreaterThan(0)
    expect(text).toMatch(/^# TYPE libp2p_connection_manager_connections gauge$/m)
    expect((await fetch(metricsUrl.replace('/metrics', '/other'))).status).toBe(404)
  })

  it('exports the strategy counters on /metrics', async () => {
    const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(WAIT_MS) })).text()
    const counter = (name: string) => Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1])
    // A published the stdin line and delivered C's rate-published messages.
    expect(counter('consensus_multicast_gossip_published_total')).toBeGreaterThanOrEqual(1)
    expect(counter('consensus_multicast_gossip_delivered_total')).toBeGreaterThanOrEqual(1)
  })
})

describe('consensus-multicast node, an RP and two members', () => {
  const topic = 'cli-test/votes'
  const common = [
    '--strategy',
    'rp',
    '--topic',
    topic,
    '--print-messages',
    '--status-interval',
    '100',
  ]
  let rp: NodeProcess
  let m1: NodeProcess
  let m2: NodeProcess

  beforeAll(async () => {
    const rpId = await newIdentity((await freePorts(1))[0])
    rp = new NodeProcess([...common, '--role', 'rp', '--no-stdin', ...(await identityArgs(rpId))])
    const addr = rpId.addr
    m1 = new NodeProcess([...common, '--role', 'member', '--rp', addr], { stdin: true })
    m2 = new NodeProcess([...common, '--role', 'member', '--rp', addr, '--no-stdin'])
    // The RP counts itself (it subscribed) and both members.
    await rp.waitForLine(statusAtLeast('topic-members', 3), WAIT_MS, 'three members of the topic')
    await m1.waitForLine((l) => field(l, 'registered') === 'yes', WAIT_MS, 'registration')
  })

  afterAll(async () => {
    await Promise.all([rp, m1, m2].filter((p) => p !== undefined).map((p) => p.stop()))
  })

  it('a member publishes a stdin line; the RP and the other member deliver it', async () => {
    const text = 'vote 7'
    const id = await publishLine(m1, text)
    await Promise.all([delivered(rp, topic, id, 6), delivered(m2, topic, id, 6)])
  })
})

describe('consensus-multicast node, bad input', () => {
  it('exits with code 2 and says what is wrong', async () => {
    const p = new NodeProcess(['--strategy', 'carrier-pigeon', '--topic', 't'])
    expect(await p.exitCode(WAIT_MS)).toBe(2)
    expect(p.tail()).toContain('unknown --strategy "carrier-pigeon" (expected gossip, rp, flood)')
  })
})
