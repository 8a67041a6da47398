/**
 * A gossip-libp2p bench node in a worker thread of its own (see startNode in
 * node.ts): starts the node and its probe, then answers the bench's calls.
 */

import { parentPort, workerData } from 'node:worker_threads'
import { type AnswerMessage, type CallMessage, type NodeConfig, NodeProbe } from './node.ts'

if (parentPort === null) throw new Error('gossip-libp2p/node-thread.ts runs as a worker thread')
const port = parentPort
const { config, total } = workerData as { config: NodeConfig; total: number }
const probe = await NodeProbe.create(config, total)
port.on('message', async ({ id, call, args }: CallMessage) => {
  try {
    const f = probe[call] as (...a: unknown[]) => unknown
    const result = await f.apply(probe, args)
    port.postMessage({ id, result } satisfies AnswerMessage)
  } catch (e) {
    port.postMessage({ id, error: String(e) } satisfies AnswerMessage)
  }
})
port.postMessage({ ready: { peerId: probe.peerId, port: probe.port } } satisfies AnswerMessage)
