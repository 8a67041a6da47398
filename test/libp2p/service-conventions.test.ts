import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import {
  type ComponentLogger,
  type Logger,
  serviceCapabilities,
  serviceDependencies,
} from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import type { Artifact } from '../../src/common/artifact.ts'
import { encodeLengthPrefixed } from '../../src/common/length-prefixed.ts'
import { GOSSIP_PROTOCOLS } from '../../src/gossip/protocol-ids.ts'
import { flood } from '../../src/libp2p/flood-service.ts'
import { gossip } from '../../src/libp2p/gossip-service.ts'
import { replicationPoints } from '../../src/libp2p/rp-service.ts'
import { connect, createTestNode, twoGossipNodes } from '../support/libp2p-node.ts'
import { waitFor } from '../support/wait.ts'

const RP_ADDR = '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5'

const running: Libp2p[] = []

afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop()))
})

/** A node with TCP, noise and yamux but no identify, hosting `factory`'s service. */
function nodeWithoutIdentify(factory: unknown) {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { dissemination: factory as never },
  })
}

/** A node's logger that keeps every line, as (component, format string). */
function recordingLogger(lines: { component: string; format: string }[]): ComponentLogger {
  const forComponent = (component: string): Logger => {
    const record = (format: unknown) => {
      lines.push({ component, format: String(format) })
    }
    return Object.assign(record, {
      error: record,
      trace: record,
      enabled: true,
      newScope: (name: string) => forComponent(`${component}:${name}`),
    })
  }
  return { forComponent }
}

describe('the libp2p services, as js-libp2p services', () => {
  it.each([
    ['gossip', () => gossip()],
    ['flood', () => flood()],
    ['rp', () => replicationPoints({ role: 'member', rps: [RP_ADDR] })],
  ])('%s: a node without identify fails to start with libp2p’s error', async (name, factory) => {
    const created = nodeWithoutIdentify(factory())
    await expect(created).rejects.toMatchObject({ name: 'UnmetServiceDependenciesError' })
    await expect(created).rejects.toThrow(
      `Service "@consensus-multicast/${name}" required capability "@libp2p/identify"`,
    )
  })

  it('declares its name, what it provides, and satisfies a service that depends on it', async () => {
    // A service that needs gossip: libp2p checks the capability when the node is built.
    const dependent = () => ({
      [Symbol.toStringTag]: 'dependent',
      [serviceDependencies]: ['@consensus-multicast/gossip'],
    })
    const without = createTestNode({ dependent })
    await expect(without).rejects.toMatchObject({ name: 'UnmetServiceDependenciesError' })
    const node = await createTestNode({ dissemination: gossip(), dependent })
    running.push(node)
    const service = node.services.dissemination
    expect(Object.prototype.toString.call(service)).toBe('[object @consensus-multicast/gossip]')
    expect(service[serviceCapabilities]).toEqual([
      '@consensus-multicast/gossip',
      '@consensus-multicast/dissemination',
    ])
    expect(service[serviceDependencies]).toEqual(['@libp2p/identify'])
  })

  it('dispatches the core’s events as CustomEvents, and on()/off() ride on them', async () => {
    const [a, b] = await twoGossipNodes(running, 't')
    await waitFor(() => a.services.dissemination.core.getMeshPeers('t').length === 1, {
      what: 'a mesh',
      timeoutMs: 10_000,
    })
    const service = b.services.dissemination
    const viaEvent: Artifact[] = []
    const viaOn: Artifact[] = []
    const removed: Artifact[] = []
    service.addEventListener('artifact', (evt) => viaEvent.push(evt.detail))
    service.on('artifact', () => {
      throw new Error('an application bug')
    })
    service.on('artifact', (x) => viaOn.push(x))
    const off = service.on('artifact', (x) => removed.push(x))
    const byOff = (x: Artifact) => removed.push(x)
    service.on('artifact', byOff)
    service.off('artifact', byOff)
    off()
    expect(service.listenerCount('artifact')).toBe(3)

    const { id } = await a.services.dissemination.publish('t', new TextEncoder().encode('hello'))
    await waitFor(() => viaEvent.length === 1 && viaOn.length === 1, {
      what: 'delivery',
      timeoutMs: 10_000,
    })
    expect(viaEvent[0].id).toEqual(id)
    expect(new TextDecoder().decode(viaEvent[0].data)).toBe('hello')
    expect(viaOn[0]).toBe(viaEvent[0])
    expect(removed).toEqual([])
    // The throwing listener did not stop the next message either.
    await a.services.dissemination.publish('t', new TextEncoder().encode('again'))
    await waitFor(() => viaEvent.length === 2 && viaOn.length === 2, {
      what: 'second delivery',
      timeoutMs: 10_000,
    })
    expect(service.stats().total.delivered).toBe(2)
  })

  it('has its core log through the node’s logger', async () => {
    const lines: { component: string; format: string }[] = []
    const node = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      logger: recordingLogger(lines),
      services: { identify: identify(), dissemination: gossip() },
    })
    running.push(node)
    const peer = await createTestNode({ dissemination: gossip() })
    running.push(peer)
    await connect(peer, node)
    await waitFor(() => node.services.dissemination.getPeers().length === 1, {
      what: 'a stream',
      timeoutMs: 10_000,
    })
    // Well framed, but not a gossipsub RPC: the router logs it (and counts it).
    const stream = await peer.dialProtocol(node.peerId, GOSSIP_PROTOCOLS[0])
    stream.send(encodeLengthPrefixed(new Uint8Array([0xff, 0xff, 0xff])))
    await waitFor(() => node.services.dissemination.stats().invalid['malformed-frame'] === 1, {
      what: 'the malformed frame',
      timeoutMs: 10_000,
    })
    expect(lines).toContainEqual({
      component: 'consensus-multicast:gossip',
      format: 'malformed frame from %s: %s',
    })
  })
})
