/**
 * RP multicast: what authenticating each datagram costs (HMAC under a group key, the
 * baseline, against an ed25519 signature per datagram and one per group of 16), the
 * throughput of the sans-IO sender and receiver cores, what a flood of bad datagrams costs
 * a member, and repair latency at 1% and 5% loss over real UDP sockets on loopback.
 */
import { createHash, randomBytes } from 'node:crypto'
import { monotonicNow, nodeTimer } from '../src/common/system-clock.ts'
import {
  Ed25519KeyPair,
  importEd25519PublicKey,
  verifyEd25519Prepared,
} from '../src/crypto/ed25519.ts'
import { DatagramAuthenticator } from '../src/rp/multicast/datagram-auth.ts'
import {
  DatagramType,
  DEFAULT_DATAGRAM_LIMITS,
  decodeDatagram,
  encodeUnsigned,
} from '../src/rp/multicast/datagram-codec.ts'
import { groupForTopic } from '../src/rp/multicast/group-address.ts'
import { MulticastReceiver } from '../src/rp/multicast/multicast-receiver.ts'
import { MulticastSender } from '../src/rp/multicast/multicast-sender.ts'
import { UdpControlCodec } from '../src/rp/multicast/udp-control.ts'
import { UdpMulticastSocket } from '../src/rp/multicast/udp-multicast.ts'
import { EventQueue } from '../src/sim/event-queue.ts'
import { Prng } from '../src/sim/prng.ts'
import { fmt, printTable, type Row, writeResults } from './report.ts'

/** Runs `fn` for about `budgetMs` (at least `minRuns` times); returns ops/s. */
function opsPerSecond(fn: (i: number) => void, budgetMs = 300, minRuns = 5): number {
  fn(0)
  let runs = 0
  const start = performance.now()
  while (runs < minRuns || performance.now() - start < budgetMs) fn(runs++)
  return (runs / (performance.now() - start)) * 1000
}

const results: Record<string, unknown> = {}
const TOPIC = 'bench'
const tag = groupForTopic(TOPIC).tag
const key = randomBytes(32)
const auth = new DatagramAuthenticator(1, key)
const noTimers = { cancel: () => {} }

// 1. Authenticator cost per datagram.
const GROUP = 16
const authRows: Row[] = []
const authResults: Record<string, Record<string, number>> = {}
for (const size of [256, 1400]) {
  const fields = {
    type: DatagramType.data,
    topicTag: tag,
    seq: 1,
    fragIndex: 0,
    fragCount: 1,
    msgLen: size,
    payload: randomBytes(size),
  }
  const sealed = auth.seal(fields)
  const decoded = decodeDatagram(sealed, DEFAULT_DATAGRAM_LIMITS)
  const hmacSeal = opsPerSecond(() => auth.seal(fields))
  const hmacVerify = opsPerSecond(() => auth.verify(decoded))
  const pair = Ed25519KeyPair.generate()
  const pub = importEd25519PublicKey(pair.publicKey)!
  const unsigned = encodeUnsigned({ ...fields, keyId: 1 })
  const sig = pair.sign(unsigned)
  const edSign = opsPerSecond(() => pair.sign(unsigned))
  const edVerify = opsPerSecond(() => verifyEd25519Prepared(pub, unsigned, sig))
  // One signature over the sha256 of GROUP datagrams: each datagram costs a hash, plus a
  // share of one sign / verify (and a receiver waits for the whole group before delivering).
  const manifest = new Uint8Array(32 * GROUP)
  const manifestSig = pair.sign(manifest)
  const hash = opsPerSecond(() => createHash('sha256').update(unsigned).digest())
  const groupSign = 1 / (1 / hash + 1 / (edSign * GROUP))
  const groupVerify =
    1 /
    (1 / hash + 1 / (opsPerSecond(() => verifyEd25519Prepared(pub, manifest, manifestSig)) * GROUP))
  const rows: [string, number, number, number][] = [
    ['HMAC-SHA256/128, group key (chosen)', hmacSeal, hmacVerify, 16],
    ['ed25519 per datagram', edSign, edVerify, 64],
    [
      `ed25519 per ${GROUP} datagrams + sha256 each`,
      groupSign,
      groupVerify,
      (64 + 32 * GROUP) / GROUP,
    ],
  ]
  for (const [scheme, s, v, bytes] of rows) {
    authRows.push({
      'payload B': size,
      scheme,
      'seal /s': s,
      'verify /s': v,
      'verify µs/datagram': fmt(1e6 / v),
      'verify cost vs HMAC': `${(hmacVerify / v).toFixed(1)}x`,
      'auth bytes/datagram': bytes,
    })
    authResults[`${scheme} @${size}B`] = {
      seal_per_s: s,
      verify_per_s: v,
      verify_us_per_datagram: 1e6 / v,
      verify_cost_vs_hmac_ratio: hmacVerify / v,
      auth_bytes_per_datagram: bytes,
    }
  }
}
printTable('Authenticator cost per datagram (one core, native crypto)', authRows)
results.authenticator = authResults

// 2. Core throughput: the sender cutting, sealing and pacing; the receiver checking and delivering.
const coreRows: Row[] = []
const coreResults: Record<string, Record<string, number>> = {}
for (const size of [256, 4000]) {
  const datagrams: Uint8Array[] = []
  const sender = new MulticastSender(
    {
      now: () => 0,
      setTimer: () => noTimers,
      random: Math.random,
      multicast: (_g, d) => datagrams.push(d),
      unicast: () => {},
      gone: () => {},
    },
    { rateBytesPerSecond: 1e15, burstBytes: 1e15 },
  )
  sender.addTopic(TOPIC, auth)
  const data = randomBytes(size)
  const n = size < 1000 ? 50_000 : 10_000
  let t = performance.now()
  for (let i = 0; i < n; i++) sender.publish(TOPIC, data)
  const sendSec = (performance.now() - t) / 1000
  let delivered = 0
  const receiver = new MulticastReceiver({
    now: () => 0,
    setTimer: () => noTimers,
    random: Math.random,
    deliver: () => delivered++,
    lost: () => {},
    nack: () => {},
    probeRequest: () => {},
    probeResult: () => {},
  })
  receiver.join(TOPIC, new DatagramAuthenticator(1, key), 1)
  t = performance.now()
  for (const d of datagrams) receiver.receive('rp', d)
  const recvSec = (performance.now() - t) / 1000
  if (delivered !== n) throw new Error(`delivered ${delivered} of ${n}`)
  coreRows.push({
    'message B': size,
    'datagrams/message': datagrams.length / n,
    'sender msg/s': n / sendSec,
    'sender MB/s': (n * size) / sendSec / 1e6,
    'receiver msg/s': n / recvSec,
    'receiver MB/s': (n * size) / recvSec / 1e6,
  })
  coreResults[`${size}B`] = {
    datagrams_per_message: datagrams.length / n,
    sender_messages_per_s: n / sendSec,
    sender_MB_per_s: (n * size) / sendSec / 1e6,
    receiver_messages_per_s: n / recvSec,
    receiver_MB_per_s: (n * size) / recvSec / 1e6,
  }
}
printTable('Sans-IO cores (no sockets), one core', coreRows)
results.cores = coreResults

// 3. A member under a flood: cost per bad datagram, by what is wrong with it.
{
  const receiver = new MulticastReceiver({
    now: () => 0,
    setTimer: () => noTimers,
    random: Math.random,
    deliver: () => {},
    lost: () => {},
    nack: () => {},
    probeRequest: () => {},
    probeResult: () => {},
  })
  receiver.join(TOPIC, new DatagramAuthenticator(1, key), 1)
  const forger = new DatagramAuthenticator(1, randomBytes(32))
  const kinds: [string, Uint8Array][] = [
    ['random bytes (decode error)', randomBytes(1200)],
    [
      'other topic (tag lookup)',
      forger.seal({
        type: DatagramType.data,
        topicTag: groupForTopic('other').tag,
        seq: 1,
        fragIndex: 0,
        fragCount: 1,
        msgLen: 1200,
        payload: randomBytes(1200),
      }),
    ],
    [
      'forged, right topic (HMAC fails)',
      forger.seal({
        type: DatagramType.data,
        topicTag: tag,
        seq: 1,
        fragIndex: 0,
        fragCount: 1,
        msgLen: 1200,
        payload: randomBytes(1200),
      }),
    ],
  ]
  const floodRows: Row[] = []
  const floodResults: Record<string, Record<string, number>> = {}
  for (const [kind, bytes] of kinds) {
    const per = opsPerSecond(() => receiver.receive('10.0.0.66', bytes))
    floodRows.push({ datagram: kind, 'rejected /s': per, 'µs/datagram': fmt(1e6 / per) })
    floodResults[kind] = { rejected_per_s: per, us_per_datagram: 1e6 / per }
  }
  const f = receiver.footprint(TOPIC)
  floodRows.push({
    datagram: `state after ${fmt(receiver.stats().rejected)} rejected`,
    'rejected /s': 0,
    'µs/datagram': `${f.partial + f.missing + f.done} entries`,
  })
  printTable('Flood: what a bad 1,200-byte datagram costs a member', floodRows)
  results.flood = {
    ...floodResults,
    rejected_total: receiver.stats().rejected,
    state_entries_after: f.partial + f.missing + f.done,
  }
}

// 4. Repair latency over real UDP on loopback: the RP sends each datagram to every member's
// socket (standing in for the LAN's replication), members drop a seeded fraction, NACK and
// get repairs by unicast. Latency: from the message's first send to its delivery after repair.
async function repairRun(loss: number, members: number, messages: number) {
  const rpSocket = await UdpMulticastSocket.open({
    interfaceAddress: '127.0.0.1',
    bindAddress: '127.0.0.1',
    port: 0,
  })
  const control = new UdpControlCodec(TOPIC, auth, DEFAULT_DATAGRAM_LIMITS)
  const memberSockets: UdpMulticastSocket[] = []
  for (let i = 0; i < members; i++)
    memberSockets.push(
      await UdpMulticastSocket.open({
        interfaceAddress: '127.0.0.1',
        bindAddress: '127.0.0.1',
        port: 0,
      }),
    )
  const sentAt = new Map<number, number>()
  const sender = new MulticastSender({
    now: monotonicNow,
    setTimer: nodeTimer,
    random: Math.random,
    multicast: (_g, d) => {
      for (const s of memberSockets) rpSocket.send(d, '127.0.0.1', s.port)
    },
    unicast: (m, d) => rpSocket.send(d, '127.0.0.1', Number(m)),
    gone: (m, _t, seqs) => rpSocket.send(control.gone(seqs), '127.0.0.1', Number(m)),
  })
  sender.addTopic(TOPIC, auth)
  rpSocket.onDatagram((bytes, _src, port) => control.toSender(sender, String(port), bytes))
  const latencies: number[] = []
  let delivered = 0
  let lost = 0
  let dropped = 0
  let s = 12345
  const random = () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 2 ** 32
  }
  let resolve: () => void = () => {}
  const allDone = new Promise<void>((r) => {
    resolve = r
  })
  const receivers = memberSockets.map((sock) => {
    const repaired = new Set<number>()
    const rx = new MulticastReceiver({
      now: monotonicNow,
      setTimer: nodeTimer,
      random,
      deliver: (_t, seq) => {
        if (repaired.has(seq)) latencies.push(monotonicNow() - sentAt.get(seq)!)
        if (++delivered === members * messages) resolve()
      },
      lost: (_t, a, b) => {
        lost += b - a + 1
        delivered += b - a + 1
        if (delivered === members * messages) resolve()
      },
      nack: (_t, entries) => {
        for (const e of entries) repaired.add(e.seq)
        sock.send(control.nack(entries), '127.0.0.1', rpSocket.port)
      },
      probeRequest: () => {},
      probeResult: () => {},
    })
    rx.join(TOPIC, new DatagramAuthenticator(1, key), 1)
    sock.onDatagram((bytes) => {
      if (random() < loss) {
        dropped++
        return
      }
      if (control.goneToReceiver(rx, bytes) === 'other') rx.receive('rp', bytes)
    })
    return rx
  })
  const started = monotonicNow()
  for (let i = 0; i < messages; i++) {
    sentAt.set(sender.publish(TOPIC, randomBytes(256)), monotonicNow())
    if (i % 5 === 4) await new Promise((r) => setTimeout(r, 5)) // ~1,000 messages/s
  }
  const timeout = setTimeout(() => resolve(), 30_000)
  await allDone
  clearTimeout(timeout)
  const elapsed = monotonicNow() - started
  const stats = sender.stats()
  sender.stop()
  for (const rx of receivers) rx.stop()
  for (const sock of [rpSocket, ...memberSockets]) await sock.close()
  latencies.sort((a, b) => a - b)
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN
  return {
    loss,
    members,
    messages,
    delivered: delivered - lost,
    lost,
    dropped,
    repairs: stats.repairDatagrams,
    repaired: latencies.length,
    p50: pct(0.5),
    p99: pct(0.99),
    elapsed,
  }
}

const repairRows: Row[] = []
const repairResults: Record<string, Record<string, number>> = {}
for (const loss of [0.01, 0.05]) {
  const r = await repairRun(loss, 10, 2000)
  repairRows.push({
    loss: `${loss * 100}%`,
    'members × messages': `${r.members} × ${fmt(r.messages)}`,
    delivered: r.delivered,
    lost: r.lost,
    'datagrams dropped': r.dropped,
    'repair datagrams': r.repairs,
    'repairs / drop': (r.repairs / r.dropped).toFixed(2),
    'repair latency p50 ms': r.p50,
    'repair latency p99 ms': r.p99,
  })
  repairResults[`loss_${loss * 100}pct`] = {
    members: r.members,
    messages: r.messages,
    deliveries: r.delivered,
    lost_messages: r.lost,
    datagrams_dropped: r.dropped,
    repair_datagrams: r.repairs,
    repairs_per_drop_ratio: r.repairs / r.dropped,
    repaired_messages: r.repaired,
    repair_latency_p50_ms: r.p50,
    repair_latency_p99_ms: r.p99,
    elapsed_ms: r.elapsed,
  }
}
printTable(
  'Repair over real UDP on loopback (256 B messages at ~1,000/s, first NACK after 10–20 ms)',
  repairRows,
)
results.repair = repairResults

// 5. Fragment or unicast? On a virtual LAN (1 ms links, seeded loss on every datagram),
// what the RP transmits per message when it multicasts fragments and repairs them, against
// sending each member its own copy (the unicast floor, before any retransmission).
function fragmentRun(size: number, members: number, loss: number, messages: number) {
  const q = new EventQueue()
  const prng = new Prng(`frag-${size}-${members}-${loss}`)
  let now = 0
  const clock = {
    now: () => now,
    random: () => prng.next(),
    setTimer: (ms: number, fn: () => void) => {
      let live = true
      q.push(now + Math.max(0, ms), () => live && fn())
      return { cancel: () => (live = false) }
    },
  }
  const link = (fn: () => void) => {
    if (prng.next() >= loss) clock.setTimer(1, fn)
  }
  const rxs: MulticastReceiver[] = []
  let delivered = 0
  let lost = 0
  const needRepair = new Set<number>()
  const sender = new MulticastSender({
    ...clock,
    multicast: (_g, d) => {
      for (const rx of rxs) link(() => rx.receive('rp', d))
    },
    unicast: (m, d) => link(() => rxs[Number(m)].receive('rp', d)),
    gone: () => {},
  })
  sender.addTopic(TOPIC, auth)
  for (let i = 0; i < members; i++) {
    const rx = new MulticastReceiver({
      ...clock,
      deliver: () => delivered++,
      lost: (_t, a, b) => (lost += b - a + 1),
      nack: (_t, entries) => {
        for (const e of entries) needRepair.add(e.seq)
        link(() => sender.handleNack(String(i), TOPIC, entries))
      },
      probeRequest: () => {},
      probeResult: () => {},
    })
    rx.join(TOPIC, new DatagramAuthenticator(1, key), 1)
    rxs.push(rx)
  }
  const data = randomBytes(size)
  for (let i = 0; i < messages; i++) clock.setTimer(i * 10, () => sender.publish(TOPIC, data))
  while (q.size > 0 && now < 600_000 && delivered + lost < members * messages) {
    now = q.peekTime()
    q.pop()!()
  }
  sender.stop()
  for (const rx of rxs) rx.stop()
  const st = sender.stats()
  const fragments = st.dataDatagrams / messages
  const sent = st.dataDatagrams + st.repairDatagrams + st.heartbeats
  return {
    fragments,
    sentPerMessage: sent / messages,
    unicastPerMessage: members * fragments,
    delivered,
    lost,
    needRepair: needRepair.size / messages,
  }
}

const fragRows: Row[] = []
const fragResults: Record<string, Record<string, number>> = {}
for (const size of [256, 8 << 10, 64 << 10]) {
  for (const members of [10, 100]) {
    for (const loss of [0.01, 0.05]) {
      const r = fragmentRun(size, members, loss, 50)
      fragRows.push({
        'message B': size,
        members,
        loss: `${loss * 100}%`,
        fragments: r.fragments,
        'messages needing repair': `${(100 * r.needRepair).toFixed(0)}%`,
        'RP datagrams/message (multicast + repair)': r.sentPerMessage,
        'unicast floor datagrams/message': r.unicastPerMessage,
        'multicast / unicast': (r.sentPerMessage / r.unicastPerMessage).toFixed(3),
        'delivered / lost': `${r.delivered} / ${r.lost}`,
      })
      fragResults[`${size}B_${members}members_loss${loss * 100}pct`] = {
        fragments_per_message: r.fragments,
        messages_needing_repair_fraction: r.needRepair,
        rp_datagrams_per_message: r.sentPerMessage,
        unicast_floor_datagrams_per_message: r.unicastPerMessage,
        multicast_over_unicast_ratio: r.sentPerMessage / r.unicastPerMessage,
        deliveries: r.delivered,
        lost_messages: r.lost,
      }
    }
  }
}
printTable('Fragment and repair, or unicast? (virtual LAN, 50 messages each)', fragRows)
results.fragmentation = fragResults

writeResults('multicast', results)
