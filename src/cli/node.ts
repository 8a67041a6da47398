#!/usr/bin/env node
/**
 * `consensus-multicast node`: runs one libp2p node with a dissemination strategy, prints
 * its addresses and a status line, publishes stdin lines (and, with --rate, a steady
 * stream) and serves Prometheus metrics. `--help` lists the options.
 */
import { NODE_USAGE, parseNodeCommand, UsageError } from './node-config.ts'

async function main(argv: readonly string[]): Promise<void> {
  const command = parseNodeCommand(argv)
  if (command.kind === 'help') {
    process.stdout.write(`${NODE_USAGE}\n`)
  } else if (command.kind === 'peer-id') {
    const { loadOrCreateKey } = await import('./node-identity.ts')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    process.stdout.write(`${peerIdFromPrivateKey(await loadOrCreateKey(command.keyFile))}\n`)
  } else {
    // Loaded once the command line is known good: a usage error answers at once.
    const { runNode } = await import('./node-run.ts')
    await runNode(command.config)
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
