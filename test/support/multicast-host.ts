/**
 * One host of the multicast testbed, run inside a network namespace as a child process of
 * test/rp/multicast-netns.test.ts. Configured by the JSON in env MC_HOST; talks to the test
 * by JSON lines: commands on stdin, events on stdout.
 *
 * - sender: the RP. Binds its control port, multicasts what `publish` asks, answers NACKs
 *   and probes, unicasts to members whose probe failed. `stats` flushes and prints counters.
 * - receiver: a member. Joins (RP, group) unless `join` is false, probes, drops a seeded
 *   fraction `loss` of datagrams it receives, NACKs over unicast UDP, prints `done` when it
 *   has every message and `lost` if it ever gives one up.
 */
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { monotonicNow, nodeTimer } from '../../src/common/system-clock.ts'
import { DatagramAuthenticator } from '../../src/rp/multicast/datagram-auth.ts'
import { DatagramType, DEFAULT_DATAGRAM_LIMITS } from '../../src/rp/multicast/datagram-codec.ts'
import { groupForTopic } from '../../src/rp/multicast/group-address.ts'
import { MulticastReceiver } from '../../src/rp/multicast/multicast-receiver.ts'
import { MulticastSender } from '../../src/rp/multicast/multicast-sender.ts'
import { UdpControlCodec } from '../../src/rp/multicast/udp-control.ts'
import { UdpMulticastSocket } from '../../src/rp/multicast/udp-multicast.ts'

/** The configuration a host gets in env MC_HOST. */
export interface HostConfig {
  role: 'sender' | 'receiver'
  address: string
  rpAddress: string
  rpPort: number
  topic: string
  keyHex: string
  keyId: number
  firstSeq: number
  join: boolean
  /** Join source-specific (true) or any-source (false). */
  ssm: boolean
  loss: number
  seed: number
}

/** The payload of message `i`: its index, then bytes derived from it (checked on receipt). */
export function payloadOf(i: number, size: number): Uint8Array {
  const out = new Uint8Array(Math.max(4, size))
  new DataView(out.buffer).setUint32(0, i, true)
  for (let j = 4; j < out.length; j++) out[j] = (i * 31 + j * 7) & 0xff
  return out
}

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`)
}

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 2 ** 32
  }
}

const cfg = JSON.parse(process.env.MC_HOST ?? '{}') as HostConfig
const key = Buffer.from(cfg.keyHex, 'hex')
const auth = new DatagramAuthenticator(cfg.keyId, key)
const control = new UdpControlCodec(cfg.topic, auth, DEFAULT_DATAGRAM_LIMITS)
const group = groupForTopic(cfg.topic)
const random = xorshift(cfg.seed)
const lines = createInterface({ input: process.stdin })

if (cfg.role === 'sender') {
  const socket = await UdpMulticastSocket.open({
    interfaceAddress: cfg.address,
    bindAddress: cfg.address,
    port: cfg.rpPort,
  })
  const member = (key: string) => {
    const i = key.lastIndexOf(':')
    return { address: key.slice(0, i), port: Number(key.slice(i + 1)) }
  }
  const sender = new MulticastSender({
    now: monotonicNow,
    setTimer: nodeTimer,
    random,
    multicast: (g, d) => socket.send(d, g.address, g.port),
    unicast: (m, d) => socket.send(d, member(m).address, member(m).port),
    gone: (m, _t, seqs) => socket.send(control.gone(seqs), member(m).address, member(m).port),
  })
  sender.addTopic(cfg.topic, auth, cfg.firstSeq)
  let controlRejected = 0
  socket.onDatagram((bytes, source, port) => {
    if (control.toSender(sender, `${source}:${port}`, bytes) !== undefined) controlRejected++
  })
  emit({ event: 'ready', group: group.address, port: group.port })
  for await (const line of lines) {
    const cmd = JSON.parse(line) as { cmd: string; sizes?: number[] }
    if (cmd.cmd === 'publish') {
      for (const [i, size] of (cmd.sizes ?? []).entries())
        sender.publish(cfg.topic, payloadOf(i, size))
      emit({ event: 'published', count: cmd.sizes?.length })
    } else if (cmd.cmd === 'counters') {
      await socket.flushed()
      emit({ event: 'counters', socket: { ...socket.sent } })
    } else if (cmd.cmd === 'stats') {
      sender.stop() // no more heartbeats: the counters hold still while the test reads them
      await socket.flushed()
      emit({
        event: 'stats',
        core: sender.stats(),
        socket: socket.sent,
        controlRejected,
        unicastMembers: sender.unicastMembers(cfg.topic),
      })
    } else if (cmd.cmd === 'exit') break
  }
  await socket.close()
} else {
  const socket = await UdpMulticastSocket.open({
    interfaceAddress: cfg.address,
    port: group.port,
    sourceSpecific: cfg.ssm,
  })
  socket.allowSource(cfg.rpAddress)
  const joinMode = cfg.join ? socket.join(cfg.rpAddress, group.address) : 'none'
  const counts = new Map<number, number>()
  let expected = -1
  let corrupt = 0
  let dropped = 0
  let goneRejected = 0
  const toRp = (d: Uint8Array) => socket.send(d, cfg.rpAddress, cfg.rpPort)
  const check = () => {
    if (expected >= 0 && counts.size === expected) {
      emit({
        event: 'done',
        count: counts.size,
        duplicates: [...counts.values()].filter((n) => n !== 1).length,
        corrupt,
      })
    }
  }
  const receiver = new MulticastReceiver({
    now: monotonicNow,
    setTimer: nodeTimer,
    random,
    deliver: (_t, _seq, data) => {
      const i = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true)
      if (!Buffer.from(payloadOf(i, data.length)).equals(Buffer.from(data))) corrupt++
      counts.set(i, (counts.get(i) ?? 0) + 1)
      check()
    },
    lost: (_t, first, last, reason) => emit({ event: 'lost', first, last, reason }),
    nack: (_t, entries) => toRp(control.nack(entries)),
    probeRequest: (_t, nonce) => toRp(control.probeRequest(nonce)),
    probeResult: (_t, ok) => {
      toRp(control.probeResult(ok))
      emit({ event: 'probe', multicast: ok, joinMode })
    },
  })
  receiver.join(cfg.topic, auth, cfg.firstSeq)
  socket.onDatagram((bytes, source) => {
    // The lossy link, in user space: drop a seeded fraction of what arrives.
    if (random() < cfg.loss) {
      dropped++
      return
    }
    const gone = control.goneToReceiver(receiver, bytes)
    if (gone === 'rejected') goneRejected++
    else if (gone === 'other') receiver.receive(source, bytes)
  })
  receiver.probe(cfg.topic)
  for await (const line of lines) {
    const cmd = JSON.parse(line) as { cmd: string; count?: number }
    if (cmd.cmd === 'expect') {
      expected = cmd.count ?? 0
      check()
    } else if (cmd.cmd === 'spoof') {
      // Datagrams for the group from this host's address, under a key nobody was given.
      const forger = new DatagramAuthenticator(cfg.keyId, randomBytes(32))
      for (let i = 0; i < (cmd.count ?? 0); i++) {
        const d = forger.seal({
          type: DatagramType.data,
          topicTag: group.tag,
          seq: 1 + i,
          fragIndex: 0,
          fragCount: 1,
          msgLen: 8,
          payload: randomBytes(8),
        })
        socket.send(d, group.address, group.port)
      }
      await socket.flushed()
      emit({ event: 'spoofed', count: cmd.count })
    } else if (cmd.cmd === 'stats') {
      emit({
        event: 'stats',
        core: receiver.stats(),
        count: counts.size,
        deliveredTwice: [...counts.values()].filter((n) => n !== 1).length,
        corrupt,
        dropped,
        goneRejected,
        sourceDropped: socket.dropped.total,
        rejected: receiver.stats().rejected,
      })
    } else if (cmd.cmd === 'exit') break
  }
  receiver.stop()
  await socket.close()
}
