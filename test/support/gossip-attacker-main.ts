/**
 * An attacker in its own process, so that its work does not stall the victim's event loop:
 * `node gossip-attacker-main.ts VICTIM_MULTIADDR ROW DURATION_MS TOPIC [stop]`, ROW an index
 * into `gossipBenchRows` (bench/attack/attacker-process.ts starts it). Prints its peer id as a
 * JSON line once it is up, waits for a line on stdin, attacks (dialling again whenever it is
 * dropped; with `stop`, idle from its first disconnection to the end instead), then prints
 * what it did as a JSON line and exits.
 *
 * Before it says it is up, it dials a decoy node of its own (in this process, never the
 * victim) a few times and writes on a stream of the attack's protocol: a process started a
 * moment before the attack would otherwise compile its whole dial path on its first dial to
 * the victim (~60 ms of its CPU against ~25 ms warm, measured), on the cores the victim and
 * the honest nodes share with it here, as no attacker that has been running for a while does.
 */
import { once } from 'node:events'
import { multiaddr } from '@multiformats/multiaddr'
import { encodeLengthPrefixed } from '../../src/common/length-prefixed.ts'
import { MESHSUB_1_2, MESHSUB_1_3 } from '../../src/gossip/protocol-ids.ts'
import { encodeRpc } from '../../src/gossip/rpc-codec.ts'
import { createAttacker, gossipBenchRows, runAttack } from './gossip-attacks.ts'

/** Dials to the decoy before the attack. */
const WARM_UP_DIALS = 3

const [victim, index, durationMs, topic, mode] = process.argv.slice(2)
const attack = gossipBenchRows(topic)[Number(index)]
const oneCopy = attack.oneCopy !== undefined
const x = await createAttacker(oneCopy)
const decoy = await createAttacker(oneCopy)
const empty = encodeLengthPrefixed(encodeRpc({ subscriptions: [], messages: [] }))
for (let i = 0; i < WARM_UP_DIALS; i++) {
  const c = await x.dial(decoy.getMultiaddrs()[0])
  const s = await c.newStream(oneCopy ? MESHSUB_1_3 : MESHSUB_1_2)
  s.send(empty)
  await c.close()
}
await decoy.stop()
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
