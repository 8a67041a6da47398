/**
 * The server core fetching an ordered batch it never received (sans-IO, real signatures,
 * real frames, a hand-driven clock): the request goes to another server, an answer that is
 * not the ordered batch is refused and counted, the next server is asked on timeout, and
 * the right frame (authenticated by the digest in the witnessed reference) is delivered.
 * The serving side answers from its delivered batches and refuses floods of requests.
 */
import { describe, expect, it } from 'vitest'
import {
  directoryOf,
  generateClientKeys,
  generateServerKeys,
} from '../../src/broker/client-keys.ts'
import { batchDigest, encodeDistilledBatch } from '../../src/broker/distilled-batch.ts'
import { WitnessServer } from '../../src/broker/server.ts'
import { witnessInput } from '../../src/broker/signing.ts'
import { decodeFetchBatch, encodeFetchBatch, FrameKind } from '../../src/broker/wire.ts'
import type { Env } from '../../src/common/env.ts'

const enc = (s: string) => new TextEncoder().encode(s)

function batchFrame(tag: string): Uint8Array {
  return encodeDistilledBatch({
    batchNumber: 1,
    entriesPerLeaf: 8,
    raise: 1,
    height: { slot: 0, shards: [] },
    ids: Uint32Array.from([0, 1]),
    payloads: [enc(`${tag}0`), enc(`${tag}1`)],
    stragglers: [],
  })
}

/** An environment with a clock and timers moved by hand, recording what is sent. */
function handEnv() {
  let now = 0
  const timers: { at: number; fn: () => void; cancelled: boolean }[] = []
  const sent: { peer: string; frame: Uint8Array }[] = []
  const env: Env = {
    self: 'server/3',
    now: () => now,
    send: (peer, frame) => sent.push({ peer, frame }),
    setTimer: (ms, fn) => {
      const t = { at: now + ms, fn, cancelled: false }
      timers.push(t)
      return { cancel: () => (t.cancelled = true) }
    },
    random: Math.random,
  }
  /** Runs the next live timer (moving the clock); false when there is none. */
  const fire = () => {
    const live = timers.filter((t) => !t.cancelled).sort((a, b) => a.at - b.at)
    if (live.length === 0) return false
    live[0].cancelled = true
    now = Math.max(now, live[0].at)
    live[0].fn()
    return true
  }
  return { env, sent, fire, advance: (ms: number) => (now += ms) }
}

describe('fetching an ordered batch from another server (server core)', () => {
  const serverKeys = generateServerKeys(4)
  const directory = directoryOf(generateClientKeys(2))
  const opts = (index: number) => ({
    index,
    keyPair: serverKeys[index],
    serverKeys: serverKeys.map((k) => k.publicKey),
    directory,
  })
  const frame = batchFrame('ok')
  const digest = batchDigest(frame)
  const witnesses = [0, 1].map((server) => ({
    server,
    signature: serverKeys[server].sign(witnessInput(digest)),
  }))

  it('asks another server, refuses a wrong answer, asks the next on timeout, delivers', () => {
    const h = handEnv()
    const server = new WitnessServer(h.env, opts(3))
    server.start()
    const delivered: string[] = []
    server.on('deliver', (d) => delivered.push(new TextDecoder().decode(d.payload)))
    server.ordered(1, { digest, witnesses })
    expect(h.sent).toEqual([])
    expect(h.fire()).toBe(true) // fetchAfterMs: the batch did not come from its broker
    const requests = () => h.sent.filter((s) => s.frame[0] === FrameKind.FetchBatch)
    expect(requests().map((r) => r.peer)).toEqual(['server/0'])
    expect(decodeFetchBatch(requests()[0].frame)).toEqual(digest)
    // A Byzantine server answers with another batch: refused, counted against it.
    server.receive('server/0', batchFrame('forged'))
    expect(server.stats().invalid['unsolicited-batch']).toBe(1)
    expect(delivered).toEqual([])
    expect(h.fire()).toBe(true) // fetchTimeoutMs: the next server
    expect(requests().map((r) => r.peer)).toEqual(['server/0', 'server/1'])
    server.receive('server/1', frame)
    expect(delivered).toEqual(['ok0', 'ok1'])
    expect(server.counts()).toMatchObject({ fetched: 1, fetchRequests: 2, delivered: 2 })
    expect(server.height).toBe(1)
    // Nothing pending: no more requests.
    while (h.fire()) {}
    expect(requests()).toHaveLength(2)
  })

  it('gives up after maxFetchAttempts requests, and still delivers if the frame comes', () => {
    const h = handEnv()
    const server = new WitnessServer(h.env, { ...opts(3), maxFetchAttempts: 4 })
    server.start()
    server.ordered(1, { digest, witnesses })
    for (let i = 0; i < 100 && h.fire(); i++) {}
    expect(server.counts().fetchRequests).toBe(4)
    server.receive('tcp/1', frame) // its broker's frame, late
    expect(server.height).toBe(1)
  })

  it('serves delivered batches to servers that ask, and refuses floods of requests', () => {
    const h = handEnv()
    const server = new WitnessServer(h.env, opts(0))
    server.start()
    server.receive('tcp/1', frame)
    server.ordered(1, { digest, witnesses })
    expect(server.height).toBe(1)
    server.receive('tcp/7', encodeFetchBatch(digest))
    const answers = h.sent.filter((s) => s.peer === 'tcp/7')
    expect(answers).toHaveLength(1)
    expect(answers[0].frame).toEqual(frame)
    server.receive('tcp/7', encodeFetchBatch(new Uint8Array(32)))
    expect(server.counts()).toMatchObject({ fetchesServed: 1, fetchesUnknown: 1 })
    for (let i = 0; i < 40; i++) server.receive('tcp/7', encodeFetchBatch(digest))
    expect(server.stats().invalid['fetch-flood']).toBe(40 + 2 - 16)
    h.advance(1000)
    server.receive('tcp/7', encodeFetchBatch(digest))
    expect(server.counts().fetchesServed).toBe(16)
  })
})
