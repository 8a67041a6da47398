/**
 * Runs a configured CLI node: builds it, then wires the status line, publishing and the
 * metrics endpoint to it, until SIGINT or SIGTERM.
 */
import { logger } from '@libp2p/logger'
import { Registry } from 'prom-client'
import type { Dissemination } from '../common/dissemination.ts'
import { messageIdKey } from '../common/message-id.ts'
import { serveMetrics } from './metrics-server.ts'
import type { NodeConfig } from './node-config.ts'
import { loadOrCreateKey } from './node-identity.ts'
import { createCliNode } from './node-libp2p.ts'
import { NodePublisher } from './node-publisher.ts'
import { keepDialing } from './peer-dialer.ts'
import { formatStatus, StatusLine, sample } from './status-line.ts'

const log = logger('consensus-multicast:cli:node')

/** How often peers given with --peer are dialled again while unreachable. */
const REDIAL_INTERVAL_MS = 1000

/** Runs the node `config` describes until the process is told to stop. */
export async function runNode(config: NodeConfig): Promise<void> {
  const out = new StatusLine(process.stdout)
  const privateKey =
    config.keyFile === undefined ? undefined : await loadOrCreateKey(config.keyFile)
  const registry = config.metricsPort === undefined ? undefined : new Registry()
  const node = await createCliNode(config, privateKey, registry)
  const service = node.services.dissemination
  out.print(`peer-id ${node.peerId.toString()}`)
  for (const addr of node.getMultiaddrs()) out.print(`listening ${addr.toString()}`)
  const metrics =
    registry === undefined || config.metricsPort === undefined
      ? undefined
      : await serveMetrics(registry, config.metricsHost, config.metricsPort)
  if (metrics !== undefined) out.print(`metrics ${metrics.url}`)

  if (config.printMessages) {
    const events: Dissemination = service
    events.on('artifact', (a) => {
      out.print(
        `delivered topic=${a.topic} bytes=${a.data.length} id=${messageIdKey(a.id)} from=${a.from ?? '-'}`,
      )
    })
  }
  let publishErrors = 0
  const publisher = new NodePublisher(service, config.topic, config.class, {
    print: (line) => out.print(line),
    failed: () => publishErrors++,
  })
  if (config.stdin) publisher.readLines(process.stdin)
  if (config.rate > 0) publisher.startRate(config.rate, config.size, config.printMessages)
  const stopDialing = keepDialing(node, config.peers, REDIAL_INTERVAL_MS, log)

  let prev = sample(service.stats(), Date.now())
  const statusTimer =
    config.statusIntervalMs > 0
      ? setInterval(() => {
          const now = sample(service.stats(), Date.now())
          out.show(formatStatus(node, config.topic, prev, now, publishErrors))
          prev = now
        }, config.statusIntervalMs)
      : undefined

  let stopping = false
  const shutdown = async () => {
    if (stopping) return
    stopping = true
    if (statusTimer !== undefined) clearInterval(statusTimer)
    stopDialing()
    publisher.stop()
    out.close()
    await metrics?.close()
    await node.stop()
    process.exit(0)
  }
  process.once('SIGINT', shutdown)
  process.once('SIGTERM', shutdown)
}
