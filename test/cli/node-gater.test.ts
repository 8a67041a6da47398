import type { Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseNodeCommand } from '../../src/cli/node-config.ts'
import { type CliNode, createCliNode } from '../../src/cli/node-libp2p.ts'
import type { GossipService } from '../../src/libp2p/gossip-service.ts'
import { createAttacker, getDenied } from '../support/gossip-attacks.ts'

const T = 'cli-gater'
let node: CliNode
let attacker: Libp2p

beforeAll(async () => {
  const command = parseNodeCommand([
    '--strategy',
    'gossip',
    '--topic',
    T,
    '--listen',
    '/ip4/127.0.0.1/tcp/0',
  ])
  if (command.kind !== 'run') throw new Error('expected a run command')
  node = await createCliNode(command.config, undefined, undefined)
  attacker = await createAttacker()
})

afterAll(async () => {
  await attacker?.stop()
  await node?.stop()
})

describe('a CLI node', () => {
  it('refuses, below its service, a peer its service cut off', async () => {
    const service = node.services.dissemination as GossipService
    const key = attacker.peerId.toString()
    const addr = node.getMultiaddrs()[0]
    await getDenied(attacker, node, (p) => service.isDenied(p), T)
    expect(service.isDenied(key)).toBe(true)
    // Its redials fail: refused at the TCP listener, or by the gater right after encryption (a
    // handshake the throttle grants). Without the gater a redial would open a connection that
    // the service closes afterwards.
    for (let i = 0; i < 5; i++) {
      const opened = await attacker.dial(addr).then(
        () => true,
        () => false,
      )
      expect(opened, `redial ${i + 1} opened a connection`).toBe(false)
    }
    expect(node.getConnections(attacker.peerId)).toHaveLength(0)
  })
})
