import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { TimerHandle } from '../../src/common/env.ts'
import { DecodeError, LimitExceededError, MessageTooLargeError } from '../../src/common/errors.ts'
import { DatagramAuthenticator } from '../../src/rp/multicast/datagram-auth.ts'
import {
  DatagramType,
  DEFAULT_DATAGRAM_LIMITS,
  decodeDatagram,
  decodeGonePayload,
  decodeNackPayload,
  encodeGonePayload,
  encodeNackPayload,
  encodeUnsigned,
} from '../../src/rp/multicast/datagram-codec.ts'
import { groupForTopic } from '../../src/rp/multicast/group-address.ts'
import {
  type LossReason,
  MulticastReceiver,
  type MulticastReceiverEnv,
  type MulticastReceiverOptions,
} from '../../src/rp/multicast/multicast-receiver.ts'
import { MulticastSender } from '../../src/rp/multicast/multicast-sender.ts'

/** A virtual clock: timers run in time order when the test advances it. */
class VirtualClock {
  t = 0
  private seq = 0
  private readonly timers: { at: number; seq: number; fn: () => void; live: boolean }[] = []
  private rng: () => number

  constructor(seed: number) {
    let s = seed >>> 0 || 1
    this.rng = () => {
      s ^= s << 13
      s ^= s >>> 17
      s ^= s << 5
      return (s >>> 0) / 2 ** 32
    }
  }

  now = () => this.t
  random = () => this.rng()
  setTimer = (delayMs: number, fn: () => void): TimerHandle => {
    const timer = { at: this.t + Math.max(0, delayMs), seq: this.seq++, fn, live: true }
    this.timers.push(timer)
    return { cancel: () => (timer.live = false) }
  }

  /** Runs timers until none is left or `untilMs` is reached; returns timers run. */
  run(untilMs: number, maxSteps = 1_000_000): number {
    let steps = 0
    while (steps < maxSteps) {
      let best = -1
      for (let i = 0; i < this.timers.length; i++) {
        const x = this.timers[i]
        if (!x.live) continue
        if (
          best < 0 ||
          x.at < this.timers[best].at ||
          (x.at === this.timers[best].at && x.seq < this.timers[best].seq)
        )
          best = i
      }
      if (best < 0 || this.timers[best].at > untilMs) break
      const x = this.timers[best]
      this.timers.splice(best, 1)
      this.t = Math.max(this.t, x.at)
      x.fn()
      steps++
      for (let i = this.timers.length - 1; i >= 0; i--)
        if (!this.timers[i].live) this.timers.splice(i, 1)
    }
    if (steps < maxSteps) this.t = Math.max(this.t, untilMs)
    return steps
  }
}

const TOPIC = 'blocks'

/** A receiver on `clock` whose outputs are no-ops unless given. */
function receiverOn(
  clock: VirtualClock,
  outputs: Partial<MulticastReceiverEnv> = {},
  options?: MulticastReceiverOptions,
): MulticastReceiver {
  const none = () => {}
  const env: MulticastReceiverEnv = {
    now: clock.now,
    random: clock.random,
    setTimer: clock.setTimer,
    deliver: none,
    lost: none,
    nack: none,
    probeRequest: none,
    probeResult: none,
    ...outputs,
  }
  return new MulticastReceiver(env, options)
}

/** A datagram of TOPIC sealed under `auth`: an empty one-fragment data datagram unless overridden. */
function sealed(
  auth: DatagramAuthenticator,
  fields: Partial<Parameters<DatagramAuthenticator['seal']>[0]>,
): Uint8Array {
  return auth.seal({
    type: DatagramType.data,
    topicTag: groupForTopic(TOPIC).tag,
    seq: 1,
    fragIndex: 0,
    fragCount: 1,
    msgLen: 0,
    payload: new Uint8Array(0),
    ...fields,
  })
}

interface Member {
  rx: MulticastReceiver
  delivered: Map<number, number>
  lost: { first: number; last: number; reason: LossReason }[]
  payloads: Map<number, Uint8Array>
}

/**
 * One RP and `n` members on a lossy virtual LAN: every multicast copy per member is dropped
 * with probability `loss`; it and every session message (NACK, repair, GONE, probe) is
 * duplicated with `dup` and delayed by 1–`jitterMs` ms (so reordered).
 */
function lan(opts: {
  seed: number
  members: number
  loss: number
  dup: number
  jitterMs: number
  deaf?: Set<number>
  senderOptions?: ConstructorParameters<typeof MulticastSender>[1]
}) {
  const clock = new VirtualClock(opts.seed)
  const key = randomBytes(32)
  const auth = new DatagramAuthenticator(7, key)
  const members: Member[] = []
  const link = (fn: () => void) => {
    if (clock.random() < opts.loss) return
    session(fn)
  }
  // NACKs, repairs, GONE and probes travel on the member's RP session (a stream over TCP, as
  // in lan-delivery/lan-reception): reordered and repeated here, but never lost.
  const session = (fn: () => void) => {
    const copies = clock.random() < opts.dup ? 2 : 1
    for (let c = 0; c < copies; c++) clock.setTimer(1 + clock.random() * opts.jitterMs, fn)
  }
  const sender = new MulticastSender(
    {
      now: clock.now,
      random: clock.random,
      setTimer: clock.setTimer,
      multicast: (_g, d) => {
        members.forEach((m, i) => {
          if (!opts.deaf?.has(i)) link(() => m.rx.receive('rp', d))
        })
      },
      unicast: (member, d) => session(() => members[Number(member)].rx.receive('rp', d)),
      gone: (member, topic, seqs) => session(() => members[Number(member)].rx.gone(topic, seqs)),
    },
    opts.senderOptions,
  )
  sender.addTopic(TOPIC, auth)
  for (let i = 0; i < opts.members; i++) {
    const m: Member = {
      rx: undefined as unknown as MulticastReceiver,
      delivered: new Map(),
      lost: [],
      payloads: new Map(),
    }
    m.rx = new MulticastReceiver({
      now: clock.now,
      random: clock.random,
      setTimer: clock.setTimer,
      deliver: (_t, seq, data) => {
        m.delivered.set(seq, (m.delivered.get(seq) ?? 0) + 1)
        m.payloads.set(seq, data)
      },
      lost: (_t, first, last, reason) => m.lost.push({ first, last, reason }),
      nack: (topic, entries) => session(() => sender.handleNack(String(i), topic, entries)),
      probeRequest: (topic, nonce) =>
        session(() => sender.handleProbeRequest(String(i), topic, nonce)),
      probeResult: (topic, ok) => session(() => sender.handleProbeResult(String(i), topic, ok)),
    })
    m.rx.join(TOPIC, new DatagramAuthenticator(7, key), sender.nextSeq(TOPIC))
    members.push(m)
  }
  return { clock, sender, members, auth }
}

describe('group derivation', () => {
  it('maps a topic to a fixed SSM group outside 232.0.0.0/24, a dynamic port and an 8-byte tag', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 64 }), (topic) => {
        const g = groupForTopic(topic)
        expect(groupForTopic(topic)).toEqual(g)
        const octets = g.address.split('.').map(Number)
        expect(octets[0]).toBe(232)
        expect(octets[1] !== 0 || octets[2] !== 0).toBe(true)
        expect(octets.every((o) => o >= 0 && o <= 255)).toBe(true)
        expect(g.port).toBeGreaterThanOrEqual(49152)
        expect(g.port).toBeLessThanOrEqual(65535)
        expect(g.tag.length).toBe(8)
      }),
    )
    expect(groupForTopic('a').tag).not.toEqual(groupForTopic('b').tag)
  })
})

describe('datagram codec and authenticator', () => {
  const auth = new DatagramAuthenticator(1, randomBytes(32))
  const tag = groupForTopic(TOPIC).tag
  const fields = {
    type: DatagramType.data,
    topicTag: tag,
    seq: 5,
    fragIndex: 1,
    fragCount: 3,
    msgLen: 30,
    payload: new Uint8Array(10).fill(9),
  }

  it('round-trips and verifies; any flipped bit fails the authenticator or the decoder', () => {
    const bytes = auth.seal(fields)
    const d = decodeDatagram(bytes, DEFAULT_DATAGRAM_LIMITS)
    expect(d).toMatchObject({ seq: 5, fragIndex: 1, fragCount: 3, msgLen: 30, keyId: 1 })
    expect(auth.verify(d)).toBe(true)
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (bit) => {
        const copy = new Uint8Array(bytes)
        copy[bit >> 3] ^= 1 << (bit & 7)
        let ok = false
        try {
          ok = auth.verify(decodeDatagram(copy, DEFAULT_DATAGRAM_LIMITS))
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
        }
        expect(ok).toBe(false)
      }),
    )
    expect(new DatagramAuthenticator(1, randomBytes(32)).verify(d)).toBe(false)
  })

  it('rejects out-of-limit headers with DecodeError, and random bytes only with DecodeError', () => {
    const bad = [
      { ...fields, fragCount: 65, fragIndex: 0 },
      { ...fields, fragIndex: 3 },
      { ...fields, seq: 0 },
      { ...fields, msgLen: DEFAULT_DATAGRAM_LIMITS.maxMessageBytes + 1 },
      { ...fields, msgLen: 5 },
    ]
    for (const f of bad)
      expect(() => decodeDatagram(auth.seal(f), DEFAULT_DATAGRAM_LIMITS)).toThrow(DecodeError)
    expect(() =>
      decodeDatagram(
        auth.seal({ ...fields, msgLen: 3000, payload: new Uint8Array(1500) }),
        DEFAULT_DATAGRAM_LIMITS,
      ),
    ).toThrow(DecodeError)
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        try {
          decodeDatagram(b, DEFAULT_DATAGRAM_LIMITS)
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
        }
      }),
    )
  })

  it('round-trips NACK and GONE payloads and enforces their limits', () => {
    const entries = [
      { seq: 3, fragments: [] },
      { seq: 9, fragments: [0, 4] },
    ]
    expect(decodeNackPayload(encodeNackPayload(entries), DEFAULT_DATAGRAM_LIMITS)).toEqual(entries)
    expect(decodeGonePayload(encodeGonePayload([1, 2]), DEFAULT_DATAGRAM_LIMITS)).toEqual([1, 2])
    const many = Array.from({ length: 65 }, (_, i) => ({ seq: i + 1, fragments: [] }))
    expect(() => decodeNackPayload(encodeNackPayload(many), DEFAULT_DATAGRAM_LIMITS)).toThrow(
      DecodeError,
    )
    expect(() =>
      decodeNackPayload(encodeNackPayload(entries).subarray(0, 9), DEFAULT_DATAGRAM_LIMITS),
    ).toThrow(DecodeError)
    expect(() => decodeGonePayload(new Uint8Array([1, 0, 0]), DEFAULT_DATAGRAM_LIMITS)).toThrow(
      DecodeError,
    )
  })
})

describe('multicast sender and receiver over a lossy LAN', () => {
  it('delivers every message exactly once under random loss, duplication and reordering, with bounded state', () => {
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
          loss: fc.double({ min: 0, max: 0.2, noNaN: true }),
          dup: fc.double({ min: 0, max: 0.2, noNaN: true }),
          jitterMs: fc.integer({ min: 0, max: 30 }),
          sizes: fc.array(fc.integer({ min: 0, max: 6000 }), { minLength: 1, maxLength: 40 }),
        }),
        ({ seed, loss, dup, jitterMs, sizes }) => {
          const net = lan({ seed, members: 4, loss, dup, jitterMs })
          const sent = new Map<number, Uint8Array>()
          let maxPartialBytes = 0
          sizes.forEach((size, i) => {
            net.clock.setTimer(i * 2, () => {
              const data = randomBytes(size)
              sent.set(net.sender.publish(TOPIC, data), data)
            })
          })
          for (let step = 0; step < 400; step++) {
            net.clock.run(net.clock.t + 50)
            for (const m of net.members)
              maxPartialBytes = Math.max(maxPartialBytes, m.rx.footprint(TOPIC).partialBytes)
            if (
              net.members.every((m) => m.delivered.size === sent.size) &&
              sent.size === sizes.length
            )
              break
          }
          for (const m of net.members) {
            expect(m.lost).toEqual([])
            expect(m.delivered.size).toBe(sizes.length)
            for (const [seq, n] of m.delivered) {
              expect(n).toBe(1)
              expect(Buffer.from(m.payloads.get(seq)!).equals(Buffer.from(sent.get(seq)!))).toBe(
                true,
              )
            }
            const f = m.rx.footprint(TOPIC)
            expect(f.partial + f.missing + f.done).toBe(0)
          }
          expect(maxPartialBytes).toBeLessThanOrEqual(8 << 20)
          // One multicast transmission per fragment: repairs are counted apart.
          const s = net.sender.stats()
          const fragments = sizes.reduce((a, n) => a + Math.max(1, Math.ceil(n / (1472 - 44))), 0)
          expect(s.dataDatagrams).toBe(fragments)
        },
      ),
      { numRuns: 25 },
    )
  })

  it('reports a message lost (GONE) when it has left the repair buffer, and delivers the rest', () => {
    const net = lan({
      seed: 3,
      members: 1,
      loss: 0,
      dup: 0,
      jitterMs: 0,
      deaf: new Set([0]),
      senderOptions: { repairMessages: 2 },
    })
    for (let i = 0; i < 5; i++) net.sender.publish(TOPIC, new Uint8Array([i]))
    net.clock.run(10_000)
    const m = net.members[0]
    // Deaf to multicast: the heartbeat is lost too, so nothing is known until it hears one.
    expect(m.delivered.size).toBe(0)
    m.rx.receive('rp', sealed(net.auth, { type: DatagramType.heartbeat, seq: 5, fragCount: 0 }))
    net.clock.run(20_000)
    expect([...m.delivered.keys()].sort()).toEqual([4, 5])
    expect(m.lost).toEqual([1, 2, 3].map((s) => ({ first: s, last: s, reason: 'gone' })))
  })

  it('gives up after maxNackAttempts and reports the loss when no repair comes', () => {
    const clock = new VirtualClock(1)
    const lost: number[] = []
    let nacks = 0
    const rx = receiverOn(clock, { lost: (_t, a) => lost.push(a), nack: () => nacks++ })
    const auth = new DatagramAuthenticator(1, randomBytes(32))
    rx.join(TOPIC, auth, 1)
    rx.receive('rp', sealed(auth, { seq: 3, msgLen: 1, payload: new Uint8Array(1) }))
    clock.run(60_000)
    expect(lost).toEqual([1, 2])
    // Eight NACK rounds for each of the two missing messages.
    expect(rx.stats().nackedSeqs).toBe(16)
    expect(nacks).toBeGreaterThanOrEqual(8)
    expect(rx.footprint(TOPIC)).toEqual({ done: 0, partial: 0, partialBytes: 0, missing: 0 })
  })

  it('reports a jump beyond the window as one explicit range, without iterating it', () => {
    const clock = new VirtualClock(1)
    const lost: [number, number, string][] = []
    const rx = receiverOn(clock, { lost: (_t, a, b, r) => lost.push([a, b, r]) }, { window: 16 })
    const auth = new DatagramAuthenticator(1, randomBytes(32))
    rx.join(TOPIC, auth, 1)
    rx.receive(
      'rp',
      sealed(auth, { type: DatagramType.heartbeat, seq: 4_000_000_000, fragCount: 0 }),
    )
    expect(lost).toEqual([[1, 4_000_000_000 - 16, 'window']])
    expect(rx.footprint(TOPIC).missing).toBe(16)
  })

  it('a member that multicast does not reach probes, falls back to unicast and still gets everything', () => {
    const net = lan({ seed: 9, members: 3, loss: 0.02, dup: 0, jitterMs: 2, deaf: new Set([2]) })
    for (const m of net.members) m.rx.probe(TOPIC)
    net.clock.run(5_000)
    expect(net.members.map((m) => m.rx.probeState(TOPIC))).toEqual([
      'multicast',
      'multicast',
      'unicast',
    ])
    expect(net.sender.unicastMembers(TOPIC)).toEqual(['2'])
    for (let i = 0; i < 50; i++) net.sender.publish(TOPIC, randomBytes(100))
    net.clock.run(60_000)
    for (const m of net.members) {
      expect(m.delivered.size).toBe(50)
      expect([...m.delivered.values()].every((n) => n === 1)).toBe(true)
    }
    const s = net.sender.stats()
    expect(s.dataDatagrams).toBe(50)
    expect(s.unicastFallbackDatagrams).toBe(50)
  })

  it('members probing together share probe datagrams (one per window, up to 178 nonces each)', () => {
    const net = lan({ seed: 3, members: 200, loss: 0, dup: 0, jitterMs: 2 })
    for (const m of net.members) m.rx.probe(TOPIC)
    net.clock.run(5_000)
    expect(net.members.every((m) => m.rx.probeState(TOPIC) === 'multicast')).toBe(true)
    // 200 nonces of 8 bytes: 178 fit in a 1472-byte datagram, so two probes, not 200.
    expect(net.sender.stats().probes).toBe(2)
  })

  it('paces: datagrams leave no faster than the configured rate', () => {
    const times: number[] = []
    const clock = new VirtualClock(1)
    const sender = new MulticastSender(
      {
        now: clock.now,
        random: clock.random,
        setTimer: clock.setTimer,
        multicast: (_g, d) => {
          if (decodeDatagram(d, DEFAULT_DATAGRAM_LIMITS).type === DatagramType.data)
            times.push(clock.t)
        },
        unicast: () => {},
        gone: () => {},
      },
      { rateBytesPerSecond: 1_000_000, burstBytes: 10_000 },
    )
    sender.addTopic(TOPIC, new DatagramAuthenticator(1, randomBytes(32)))
    sender.publish(TOPIC, randomBytes(60_000)) // 43 fragments ≈ 62 kB
    clock.run(1_000)
    expect(times.length).toBe(43)
    // ≈ 62 kB at 1 MB/s after a 10 kB burst: about 52 ms.
    expect(times.at(-1)!).toBeGreaterThanOrEqual(45)
    expect(times.at(-1)!).toBeLessThanOrEqual(70)
    expect(() => sender.publish(TOPIC, new Uint8Array(sender.maxMessageBytes + 1))).toThrow(
      MessageTooLargeError,
    )
    // A bounded queue: a publish that does not fit is refused whole, not half sent.
    const small = new MulticastSender(
      {
        now: clock.now,
        random: clock.random,
        setTimer: clock.setTimer,
        multicast: () => {},
        unicast: () => {},
        gone: () => {},
      },
      { rateBytesPerSecond: 1000, burstBytes: 1000, maxQueuedDatagrams: 10 },
    )
    small.addTopic(TOPIC, new DatagramAuthenticator(1, randomBytes(32)))
    expect(() => small.publish(TOPIC, randomBytes(20_000))).toThrow(LimitExceededError)
    expect(small.queued).toBe(0)
    expect(small.stats().messages).toBe(0)
  })
})

describe('flood of garbage and forged datagrams', () => {
  it('counts every bad datagram against its source, delivers nothing and keeps state bounded', () => {
    const clock = new VirtualClock(5)
    let delivered = 0
    let nacked = 0
    const rx = receiverOn(clock, { deliver: () => delivered++, nack: () => nacked++ })
    const key = randomBytes(32)
    rx.join(TOPIC, new DatagramAuthenticator(1, key), 1)
    const tag = groupForTopic(TOPIC).tag
    const forger = new DatagramAuthenticator(1, randomBytes(32))
    const n = 30_000
    for (let i = 0; i < n; i++) {
      const kind = i % 3
      const bytes =
        kind === 0
          ? randomBytes(1 + (i % 1400))
          : kind === 1
            ? forger.seal({
                type: DatagramType.data,
                topicTag: tag,
                seq: 1 + (i % 100_000),
                fragIndex: 0,
                fragCount: 2,
                msgLen: 2000,
                payload: new Uint8Array(1000),
              })
            : encodeUnsigned({
                type: DatagramType.data,
                keyId: 1,
                topicTag: tag,
                seq: i + 1,
                fragIndex: 0,
                fragCount: 1,
                msgLen: 10,
                payload: new Uint8Array(10),
              })
      rx.receive(`10.0.0.${i % 300}`, bytes)
    }
    clock.run(60_000)
    expect(delivered).toBe(0)
    expect(nacked).toBe(0)
    const s = rx.stats()
    expect(s.datagrams).toBe(n)
    expect(s.rejected).toBe(n)
    expect(s.accepted).toBe(0)
    expect(rx.rejections.byReason.get('auth')).toBe((2 * n) / 3)
    expect(rx.rejections.bySource.size).toBeLessThanOrEqual(257)
    expect(rx.footprint(TOPIC)).toEqual({ done: 0, partial: 0, partialBytes: 0, missing: 0 })
  })

  it('rejects an authentic datagram whose fragment length disagrees with its header', () => {
    let delivered = 0
    const rx = receiverOn(new VirtualClock(2), { deliver: () => delivered++ })
    const auth = new DatagramAuthenticator(1, randomBytes(32))
    rx.join(TOPIC, auth, 1)
    const fragment = (fragIndex: number, fragCount: number, length: number) =>
      sealed(auth, { fragIndex, fragCount, msgLen: 100, payload: new Uint8Array(length) })
    rx.receive('rp', fragment(0, 2, 10))
    expect(rx.rejections.byReason.get('fragment-length')).toBe(1)
    rx.receive('rp', fragment(0, 2, 50))
    rx.receive('rp', fragment(1, 3, 34))
    expect(rx.rejections.byReason.get('fragment-mismatch')).toBe(1)
    rx.receive('rp', fragment(1, 2, 50))
    expect(delivered).toBe(1)
  })
})
