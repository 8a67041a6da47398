/**
 * One RP-strategy libp2p node in a network namespace of the RP multicast testbed
 * (test/rp/rp-multicast-netns.test.ts): an RP or a member over real TCP on the LAN, with
 * RP multicast on the LAN interface. Configured through the RP_NETNS_HOST environment
 * variable (JSON); prints JSON events on stdout and reads JSON commands on stdin.
 *
 * Events: `ready`, `registered` (rp), `mcast` (the topic's multicast state when it changes),
 * `published`, `stats`. Commands: `publish` (count, from, intervalMs), `stats`, `exit`.
 */
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { messageIdKey } from '../../src/common/message-id.ts'
import { type ReplicationPointsInit, replicationPoints } from '../../src/libp2p/rp-service.ts'
import { RpMember } from '../../src/rp/member.ts'
import { ReplicationPoint } from '../../src/rp/replication-point.ts'
import { Prng } from '../../src/sim/prng.ts'

/** What a host is started with. */
export interface RpNetnsHostConfig {
  /** Private key, protobuf-encoded, hex. */
  keyHex: string
  /** Its LAN address and TCP port. */
  address: string
  port: number
  topic: string
  /** The service's options, without `lanMulticast.receiveFilter` (built from `dropRate`). */
  init: ReplicationPointsInit
  /** Share of received multicast datagrams dropped in user space (seeded); 1 = none reach. */
  dropRate: number
  seed: number
}

const cfg = JSON.parse(process.env.RP_NETNS_HOST ?? '{}') as RpNetnsHostConfig
const out = (e: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(e)}\n`)

const prng = new Prng(cfg.seed)
let dropped = 0
const init: ReplicationPointsInit =
  cfg.init.lanMulticast === undefined
    ? cfg.init
    : {
        ...cfg.init,
        lanMulticast: {
          ...cfg.init.lanMulticast,
          receiveFilter: () => {
            if (cfg.dropRate <= 0 || prng.next() >= cfg.dropRate) return true
            dropped++
            return false
          },
        },
      }

const node = await createLibp2p({
  privateKey: privateKeyFromProtobuf(Buffer.from(cfg.keyHex, 'hex')),
  addresses: { listen: [`/ip4/${cfg.address}/tcp/${cfg.port}`] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify(), rp: replicationPoints(init) },
})
const service = node.services.rp
const core = service.core

// Delivered messages by number: each must come exactly once.
const got = new Map<number, number>()
service.on('artifact', (a) => {
  const n = new DataView(a.data.buffer, a.data.byteOffset).getUint32(0)
  got.set(n, (got.get(n) ?? 0) + 1)
})
const lost: unknown[] = []
service.on('multicast-lost', (e) => lost.push(e))

if (core instanceof RpMember) {
  service.subscribe(cfg.topic)
  let rp: string | undefined
  let state = ''
  // The member core has no event for these: poll its state, report changes.
  setInterval(() => {
    if (core.isRegistered && core.rp !== rp) {
      rp = core.rp
      out({ event: 'registered', rp })
    }
    const s = `${core.rp} ${core.multicastState(cfg.topic)}`
    if (s !== state) {
      state = s
      out({ event: 'mcast', rp: core.rp, state: core.multicastState(cfg.topic) })
    }
  }, 20).unref()
}
out({ event: 'ready', peerId: node.peerId.toString() })

function stats(): Record<string, unknown> {
  let twice = 0
  for (const c of got.values()) if (c > 1) twice++
  return {
    event: 'stats',
    delivered: got.size,
    numbers: [...got.keys()].sort((a, b) => a - b),
    twice,
    dropped,
    lost,
    rp: core instanceof RpMember ? core.rp : undefined,
    receiver: core instanceof RpMember ? core.multicastStats() : undefined,
    lan: core instanceof ReplicationPoint ? core.lanStats() : undefined,
    members: core instanceof ReplicationPoint ? core.view().members : undefined,
    socket: service.lan?.sent,
    invalid: core.stats().invalid,
  }
}

createInterface({ input: process.stdin }).on('line', async (line) => {
  const cmd = JSON.parse(line) as {
    cmd: string
    count?: number
    from?: number
    intervalMs?: number
  }
  if (cmd.cmd === 'publish') {
    const ids: string[] = []
    for (let i = 0; i < (cmd.count ?? 0); i++) {
      const data = new Uint8Array(200)
      new DataView(data.buffer).setUint32(0, (cmd.from ?? 0) + i)
      const r = await service.publish(cfg.topic, data)
      ids.push(messageIdKey(r.id))
      await new Promise((resolve) => setTimeout(resolve, cmd.intervalMs ?? 10))
    }
    out({ event: 'published', count: ids.length })
  } else if (cmd.cmd === 'stats') out(stats())
  else if (cmd.cmd === 'exit') {
    await node.stop()
    process.exit(0)
  }
})
