/**
 * Which address a client is bound to, with the arrival order fixed by hand: the real broker,
 * client and server cores (real ed25519 and BLS keys) on a hand-driven network, and an
 * on-path attacker that resends every SUBMIT of the client from its own address, just before
 * or just after the client's own copy. The arrival order must decide nothing: the client is
 * bound to the sender of its good BLS share, gets every message delivered, is never
 * penalised, and the attacker never receives a delivery certificate.
 */
import { describe, expect, it } from 'vitest'
import { Broker } from '../../src/broker/broker.ts'
import { BrokerClient, type DeliveryReceipt } from '../../src/broker/client.ts'
import {
  directoryOf,
  generateClientKeys,
  generateServerKeys,
  type KeySource,
} from '../../src/broker/client-keys.ts'
import { WitnessServer } from '../../src/broker/server.ts'
import { FrameKind, frameKind } from '../../src/broker/wire.ts'
import type { PeerKey } from '../../src/common/artifact.ts'
import type { Env, ProtocolCore, TimerHandle } from '../../src/common/env.ts'
import { SimSequencer } from '../../src/sim/broker-strategy.ts'
import { Prng } from '../../src/sim/prng.ts'

const CLIENT = '10.0.0.1:40000'
const ATTACKER = '10.0.0.66:50000'
const BROKER = '10.0.0.2:9000'
const SERVERS = ['10.0.1.1:9100', '10.0.1.2:9100', '10.0.1.3:9100', '10.0.1.4:9100']

interface Timer {
  at: number
  seq: number
  fn: () => void
  cancelled: boolean
}

interface Frame {
  from: PeerKey
  to: PeerKey
  frame: Uint8Array
}

/**
 * A zero-latency network run by hand: frames are delivered in the order sent, and time moves
 * to the next timer only when no frame is in flight. `tap` sees each frame before delivery
 * and returns the frames to deliver in its place (the attacker's hook).
 */
class HandNet {
  time = 0
  private seq = 0
  private timers: Timer[] = []
  private readonly wire: Frame[] = []
  private readonly cores = new Map<PeerKey, ProtocolCore>()
  /** Frames addressed to a peer without a core (the attacker), by peer. */
  readonly unclaimed = new Map<PeerKey, Uint8Array[]>()
  tap: (f: Frame) => Frame[] = (f) => [f]

  env(self: PeerKey, seed: number): Env {
    const prng = new Prng(seed)
    return {
      self,
      now: () => this.time,
      send: (to, frame) => {
        this.wire.push({ from: self, to, frame: frame.slice() })
      },
      setTimer: (delayMs, fn): TimerHandle => {
        const t = { at: this.time + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false }
        this.timers.push(t)
        return {
          cancel: () => {
            t.cancelled = true
          },
        }
      },
      random: () => prng.next(),
    }
  }

  add(peer: PeerKey, core: ProtocolCore): void {
    this.cores.set(peer, core)
  }

  /** Delivers frames and runs timers until `done()` or `untilMs` of virtual time. */
  async run(done: () => boolean, untilMs: number): Promise<void> {
    while (!done() && this.time <= untilMs) {
      const f = this.wire.shift()
      if (f !== undefined) {
        for (const g of this.tap(f)) this.deliver(g)
        continue
      }
      // Promise callbacks (a resolved submit) run before time moves on.
      await Promise.resolve()
      const due = this.timers
        .filter((t) => !t.cancelled)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (due === undefined) break
      due.cancelled = true
      this.timers = this.timers.filter((t) => !t.cancelled)
      this.time = Math.max(this.time, due.at)
      due.fn()
    }
  }

  private deliver(f: Frame): void {
    const core = this.cores.get(f.to)
    if (core !== undefined) {
      core.receive(f.from, f.frame)
      return
    }
    const list = this.unclaimed.get(f.to) ?? []
    list.push(f.frame)
    this.unclaimed.set(f.to, list)
  }
}

/** Key material from a fixed seed: the same keys every run. */
function seededKeys(seed: number): KeySource {
  const prng = new Prng(seed)
  return (bytes) => Uint8Array.from({ length: bytes }, () => prng.nextU32() & 0xff)
}

type Order = 'attacker first' | 'attacker after' | 'no attacker'

async function runWithAttacker(order: Order, messages: number) {
  const keys = seededKeys(5)
  const clientKeys = generateClientKeys(1, keys)
  const serverKeyPairs = generateServerKeys(SERVERS.length, keys)
  const serverKeys = serverKeyPairs.map((k) => k.publicKey)
  const directory = directoryOf(clientKeys)
  const net = new HandNet()
  const orderer = new SimSequencer()

  const broker = new Broker(net.env(BROKER, 1), {
    directory,
    servers: SERVERS,
    serverKeys,
    flushTimeoutMs: 20,
    onWitnessed: (reference) => orderer.propose(reference),
  })
  net.add(BROKER, broker)
  const delivered: string[][] = SERVERS.map(() => [])
  for (const [index, peer] of SERVERS.entries()) {
    const server = new WitnessServer(net.env(peer, 10 + index), {
      index,
      keyPair: serverKeyPairs[index],
      serverKeys,
      directory,
    })
    server.attach(orderer)
    server.on('deliver', (d) => delivered[index].push(`${d.clientId}/${d.sequence}`))
    net.add(peer, server)
    server.start()
  }
  const client = new BrokerClient(net.env(CLIENT, 2), {
    id: 0,
    ...clientKeys[0],
    broker: BROKER,
    serverKeys,
    retryMs: 200,
  })
  net.add(CLIENT, client)
  broker.start()
  client.start()

  // The attacker sees every SUBMIT on its way and sends a copy from its own address.
  let copies = 0
  if (order !== 'no attacker') {
    net.tap = (f) => {
      if (f.from !== CLIENT || frameKind(f.frame) !== FrameKind.Submit) return [f]
      copies++
      const copy = { from: ATTACKER, to: BROKER, frame: f.frame.slice() }
      return order === 'attacker first' ? [copy, f] : [f, copy]
    }
  }

  const receipts: DeliveryReceipt[] = []
  for (let m = 0; m < messages; m++) {
    client.submit(new TextEncoder().encode(`message ${m}`)).then((r) => receipts.push(r))
  }
  await net.run(
    () => receipts.length === messages && delivered.every((d) => d.length === messages),
    60_000,
  )
  const toAttacker = (net.unclaimed.get(ATTACKER) ?? []).map((f) => frameKind(f))
  return { broker, receipts, delivered, copies, toAttacker, time: net.time }
}

describe('broker binds a client to the sender of its good share, whatever the arrival order', () => {
  it.each<Order>(['attacker first', 'attacker after', 'no attacker'])(
    '%s',
    async (order) => {
      const messages = 4
      const r = await runWithAttacker(order, messages)
      // Every message delivered once, in order, at every server; the client has every receipt.
      const expected = Array.from({ length: messages }, (_, m) => `0/${m + 1}`)
      for (const d of r.delivered) expect(d).toEqual(expected)
      expect(r.receipts.map((x) => x.sequence)).toEqual([1, 2, 3, 4])
      // The honest client's address is never penalised.
      expect(r.broker.penaltiesOf('10.0.0.1')).toBe(0)
      // The attacker never gets a delivery certificate, and at most the first message's
      // inclusion proof (public data, handed out before any share bound the client).
      expect(r.toAttacker.filter((k) => k === FrameKind.Delivered)).toEqual([])
      expect(r.toAttacker.filter((k) => k === FrameKind.Inclusion).length).toBeLessThanOrEqual(1)
      if (order === 'no attacker') expect(r.copies).toBe(0)
      else expect(r.copies).toBeGreaterThanOrEqual(messages)
    },
    20_000,
  )
})
