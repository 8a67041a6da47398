#!/usr/bin/env node
/**
 * `consensus-multicast node`: runs one libp2p node with a dissemination strategy, prints
 * its addresses and a status line, publishes stdin lines (and, with --rate, a steady
 * stream) and serves Prometheus metrics. `--help` lists the options.
 */
import { logger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Registry } from 'prom-client'
import type { Dissemination } from '../core/dissemination.ts'
import { messageIdKey } from '../core/message-id.ts'
import { serveMetrics } from './metrics-server.ts'
import { NODE_USAGE, type NodeConfig, parseNodeCommand, UsageError } from './node-config.ts'
import { loadOrCreateKey } from './node-identity.ts'
import { createCliNode } from './node-libp2p.ts'
import { NodePublisher } from './node-publisher.ts'
import { keepDialing } from './peer-dialer.ts'
import { formatStatus, StatusLine, sample } from './status-line.ts'

const log = logger('consensus-multicast:cli:node')

/** How often peers given with --peer are dialled again while unreachable. */
const REDIAL_INTERVAL_MS = 1000

async function run(config: NodeConfig): Promise<void> {
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

async function main(argv: readonly string[]): Promise<void> {
  const command = parseNodeCommand(argv)
  if (command.kind === 'help') {
    process.stdout.write(`${NODE_USAGE}\n`)
  } else if (command.kind === 'peer-id') {
    process.stdout.write(`${peerIdFromPrivateKey(await loadOrCreateKey(command.keyFile))}\n`)
  } else {
    await run(command.config)
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`error: ${err.message}\nRun with --help for the options.\n`)
    process.exit(2)
  }
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
