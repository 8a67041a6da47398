/**
 * The gossip attacker in a process of its own (test/support/gossip-attacker-main.ts), so that
 * its work does not stall the event loop of the node it attacks: it prints its peer id once
 * it is up, attacks when told, and prints what it did (an {@link AttackRun}) when done.
 */
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { AttackRun } from '../../test/support/gossip-attacks.ts'

const ATTACKER = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../test/support/gossip-attacker-main.ts',
)

/** A started attacker process. */
export interface AttackerProcess {
  /** Its peer id. */
  key: string
  /** Starts the attack; resolves with what it did once its run is over. */
  attack(): Promise<AttackRun>
}

/**
 * Starts an attacker running row `row` of `gossipBenchRows(topic)` against the multiaddr
 * `victim` for `durationMs`; with `redial` it dials again whenever it is cut off, else it idles
 * from its first disconnection on. Resolves once it is up (warm, not yet attacking).
 */
export async function spawnAttacker(
  victim: string,
  row: number,
  durationMs: number,
  topic: string,
  redial = true,
): Promise<AttackerProcess> {
  const argv = [
    ATTACKER,
    victim,
    String(row),
    String(durationMs),
    topic,
    redial ? 'persist' : 'stop',
  ]
  const child = spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const first = await lines.next()
  if (first.done) throw new Error('the attacker process exited before it started')
  const { peerId } = JSON.parse(first.value) as { peerId: string }
  return {
    key: peerId,
    attack: async () => {
      child.stdin.write('go\n')
      const last = await lines.next()
      if (last.done) throw new Error('the attacker process exited without a report')
      return JSON.parse(last.value) as AttackRun
    },
  }
}
