/**
 * An attacker in its own process, so that its work does not stall the victim's event loop:
 * `node gossip-attacker-main.ts VICTIM_MULTIADDR ATTACK_INDEX DURATION_MS TOPIC [stop]`. Prints
 * its peer id as a JSON line once it is up, waits for a line on stdin, attacks (dialling again
 * whenever it is dropped; with `stop`, idle from its first disconnection to the end instead),
 * then prints what it did as a JSON line and exits.
 */
import { once } from 'node:events'
import { multiaddr } from '@multiformats/multiaddr'
import { createAttacker, everyGossipAttack, runAttack } from './gossip-attacks.ts'

const [victim, index, durationMs, topic, mode] = process.argv.slice(2)
const attack = everyGossipAttack(topic)[Number(index)]
const x = await createAttacker(attack.oneCopy !== undefined)
console.log(JSON.stringify({ peerId: x.peerId.toString(), attack: attack.name }))
await once(process.stdin, 'data')
const start = Date.now()
const run = await runAttack(
  x,
  multiaddr(victim),
  attack,
  Number(durationMs),
  () => false,
  mode !== 'stop',
)
// Idle to the end of the window, as a redialling attacker would still be at it.
await new Promise((r) => setTimeout(r, Math.max(0, start + Number(durationMs) - Date.now())))
console.log(JSON.stringify(run))
await x.stop()
process.exit(0)
