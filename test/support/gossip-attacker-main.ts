/**
 * An attacker in its own process, so that its work does not stall the victim's event loop:
 * `node gossip-attacker-main.ts VICTIM_MULTIADDR ATTACK_INDEX DURATION_MS TOPIC`. Prints its
 * peer id as a JSON line once it is up, waits for a line on stdin, attacks (dialling again
 * whenever it is dropped), then prints what it did as a JSON line and exits.
 */
import { once } from 'node:events'
import { multiaddr } from '@multiformats/multiaddr'
import { createAttacker, everyGossipAttack, runAttack } from './gossip-attacks.ts'

const [victim, index, durationMs, topic] = process.argv.slice(2)
const attack = everyGossipAttack(topic)[Number(index)]
const x = await createAttacker(attack.oneCopy !== undefined)
console.log(JSON.stringify({ peerId: x.peerId.toString(), attack: attack.name }))
await once(process.stdin, 'data')
const run = await runAttack(x, multiaddr(victim), attack, Number(durationMs), () => false, true)
console.log(JSON.stringify(run))
await x.stop()
process.exit(0)
