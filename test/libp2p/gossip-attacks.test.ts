import type { Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_RPC_LIMITS } from '../../src/gossip/rpc-codec.ts'
import { denyListGater } from '../../src/libp2p/deny-gater.ts'
import {
  AttackBed,
  createAttacker,
  gossipAttacks,
  oneCopyAttacks,
  runAttack,
  unansweredAnnounceAttack,
} from '../support/gossip-attacks.ts'
import { waitFor } from '../support/wait.ts'

const T = 'blocks'
let bed: AttackBed
const attackers: Libp2p[] = []

beforeAll(async () => {
  bed = await AttackBed.create(T)
})

afterAll(async () => {
  await Promise.all(attackers.map((x) => x.stop()))
  await bed?.stop()
})

describe('a victim running our gossip service, attacked over TCP on loopback', () => {
  for (const attack of gossipAttacks(T)) {
    it(`${attack.name}: honest delivery 100%, attacker penalised and disconnected`, async () => {
      const x = await createAttacker()
      attackers.push(x)
      const key = x.peerId.toString()
      const router = bed.b.services.dissemination.core
      const sent = (kind: string) => bed.b.services.dissemination.stats().control[kind]?.sent ?? 0
      const iwantsBefore = sent('IWANT')
      const iwantIdsBefore = sent('IWANT ids')
      // The most protobuf fields the victim decoded from one frame during this attack.
      router.maxFieldsPerFrame = 0
      // What the victim had received from the attacker when it first penalised it.
      let framesAtPenalty: number | undefined
      const off = router.on('rejected', ({ from }) => {
        if (from === key && framesAtPenalty === undefined && router.getBehaviourPenalty(key) > 0) {
          framesAtPenalty = bed.probe.frames.get(key) ?? 0
        }
      })
      // Persisting: the gater may refuse a first dial from 127.0.0.1 before encryption while
      // the previous attacker's denied redials have spent its handshakes there.
      const { result: run, traffic } = await bed.honestTraffic(() =>
        runAttack(x, bed.b.getMultiaddrs()[0], attack, 8000, () => router.isDenied(key), true),
      )
      off()
      expect(traffic.published).toBeGreaterThan(0)
      expect(traffic.delivered).toBe(traffic.published)
      // Penalised within the first second's worth of the attack's frames.
      expect(framesAtPenalty).toBeDefined()
      expect(framesAtPenalty!).toBeLessThanOrEqual(attack.rate)
      // ...and, as it kept going, disconnected and denied.
      expect(router.isDenied(key)).toBe(true)
      expect(bed.b.services.dissemination.isDenied(x.peerId)).toBe(true)
      await waitFor(() => x.getConnections(bed.b.peerId).every((c) => c.status !== 'open'), {
        what: 'the attacker connection closed',
        timeoutMs: 5000,
      })
      if (attack.name.includes('4 MiB')) {
        // Refused from their first bytes: no such frame reached the router whole, and the
        // attacker's first one never finished sending (its stream was reset under it).
        expect(bed.probe.frames.get(key) ?? 0).toBe(0)
        expect(run.sent).toBeLessThanOrEqual(1)
      } else {
        expect(run.sent).toBeGreaterThan(0)
      }
      // Strikes weigh how far over its budget a frame goes: the router read few whole frames
      // before the cut-off (one frame of a replayed message is one repeat of a 20-unit budget).
      expect(bed.probe.frames.get(key) ?? 0).toBeLessThanOrEqual(
        attack.name.startsWith('same message') ? 45 : 10,
      )
      if (attack.name.startsWith('IHAVE')) {
        // Asked for some of the advertised ids, never more than one frame's sample at once.
        const iwants = sent('IWANT') - iwantsBefore
        expect(iwants).toBeGreaterThan(0)
        expect(sent('IWANT ids') - iwantIdsBefore).toBeLessThanOrEqual(
          iwants * router.params.maxIHaveIdsExamined,
        )
      }
      if (attack.name.startsWith('subscription churn')) {
        // Its 5,000-entry frames were refused from the entries' tags, none decoded (2,048
        // decoded subscriptions would be over 6,000 fields); honest frames are small.
        expect(router.maxFieldsPerFrame).toBeLessThan(DEFAULT_RPC_LIMITS.maxSubscriptions)
      }
      // The gater refuses it now: a new connection dies at once, and the router never hears of it.
      expect(denyListGater(() => bed.b.services.dissemination).denyDialPeer!(x.peerId)).toBe(true)
      const again = await x.dial(bed.b.getMultiaddrs()[0]).catch(() => undefined)
      await waitFor(() => again === undefined || again.status !== 'open', {
        what: 'a refused redial',
        timeoutMs: 5000,
      })
      expect(router.getPeers()).not.toContain(key)
    })
  }

  it('gives a denied peer that keeps redialling one encryption handshake every two seconds, no more', async () => {
    const x = await createAttacker()
    attackers.push(x)
    const key = x.peerId.toString()
    const router = bed.b.services.dissemination.core
    const attack = gossipAttacks(T).find((a) => a.stream)!
    await runAttack(x, bed.b.getMultiaddrs()[0], attack, 8000, () => router.isDenied(key), true)
    expect(router.isDenied(key)).toBe(true)
    await waitFor(() => x.getConnections(bed.b.peerId).every((c) => c.status !== 'open'), {
      what: 'the attacker connection closed',
      timeoutMs: 5000,
    })
    const handshakesBefore = bed.refusedConnections.get(key) ?? 0
    const start = Date.now()
    for (let i = 0; i < 40; i++) {
      const c = await x.dial(bed.b.getMultiaddrs()[0]).catch(() => undefined)
      // A dial the gater lets through the handshake dies right after it: wait for that.
      if (c !== undefined) {
        await waitFor(() => c.status !== 'open', { what: 'a refused redial', timeoutMs: 5000 })
      }
    }
    const seconds = (Date.now() - start) / 1000
    const handshakes = (bed.refusedConnections.get(key) ?? 0) - handshakesBefore
    // The gater's defaults: the disconnection spent the burst of 1, then one every 2 s; the
    // other dials die before encryption (denied-redial.test.ts: none has one at first).
    expect(handshakes).toBeLessThanOrEqual(Math.ceil(seconds / 2) + 1)
    expect(handshakes).toBeLessThan(40)
    expect(router.getPeers()).not.toContain(key)
  })
})

describe('a victim speaking one-copy with its honest peers, attacked over TCP on loopback', () => {
  let ocBed: AttackBed
  beforeAll(async () => {
    ocBed = await AttackBed.create(T, true)
  })
  afterAll(async () => {
    await ocBed?.stop()
  })

  for (const attack of oneCopyAttacks(T)) {
    it(`${attack.name}: honest delivery 100%, attacker penalised and disconnected`, async () => {
      const x = await createAttacker(true)
      attackers.push(x)
      const key = x.peerId.toString()
      const router = ocBed.b.services.dissemination.core
      let framesAtPenalty: number | undefined
      const reasons = new Set<string>()
      const off = router.on('rejected', ({ from, reason }) => {
        if (from !== key) return
        reasons.add(reason)
        if (framesAtPenalty === undefined && router.getBehaviourPenalty(key) > 0) {
          framesAtPenalty = ocBed.probe.frames.get(key) ?? 0
        }
      })
      const { result: run, traffic } = await ocBed.honestTraffic(() =>
        runAttack(x, ocBed.b.getMultiaddrs()[0], attack, 8000, () => router.isDenied(key), true),
      )
      off()
      expect(traffic.published).toBeGreaterThan(0)
      expect(traffic.delivered).toBe(traffic.published)
      expect(run.sent).toBeGreaterThan(0)
      // The attacker negotiated the extension: its one-copy messages were read, not ignored.
      expect(reasons.has('one-copy-not-negotiated')).toBe(false)
      // Flood marks stay bounded whatever came (at most 256 marked messages, 1,024 hashes each).
      const marks = router.getFloodMarkCount()
      expect(marks.messages).toBeLessThanOrEqual(256)
      expect(marks.peerHashes).toBeLessThanOrEqual(256 * 1024)
      expect(framesAtPenalty).toBeDefined()
      expect(framesAtPenalty!).toBeLessThanOrEqual(attack.rate)
      expect(router.isDenied(key)).toBe(true)
      await waitFor(() => x.getConnections(ocBed.b.peerId).every((c) => c.status !== 'open'), {
        what: 'the attacker connection closed',
        timeoutMs: 5000,
      })
      // The handshake's two frames, then a few flood frames before the cut-off.
      // (The run stops once B denies the attacker: its time is the cut-off's, or just after.)
      expect(ocBed.probe.frames.get(key) ?? 0).toBeLessThanOrEqual(
        2 + (attack.framesToCutOff?.(run.cutOffMs ?? run.elapsedMs) ?? 10),
      )
      expect(router.getPeers()).not.toContain(key)
      // B relayed what it took from the attacker within what A and C take from B.
      const b = ocBed.b.peerId.toString()
      for (const honest of [ocBed.a, ocBed.c]) {
        expect(honest.services.dissemination.core.getBehaviourPenalty(b)).toBe(0)
        expect(honest.services.dissemination.core.getPeers()).toContain(b)
      }
    })
  }

  it('a peer announcing ids nobody has, a few at a time: counted against it when given up on, and cut off', async () => {
    const x = await createAttacker(true)
    attackers.push(x)
    const key = x.peerId.toString()
    const router = ocBed.b.services.dissemination.core
    const reasons = new Set<string>()
    const off = router.on('rejected', ({ from, reason }) => {
      if (from === key) reasons.add(reason)
    })
    const attack = unansweredAnnounceAttack(T)
    const { result: run, traffic } = await ocBed.honestTraffic(() =>
      runAttack(x, ocBed.b.getMultiaddrs()[0], attack, 10_000, () => router.isDenied(key), true),
    )
    off()
    expect(traffic.delivered).toBe(traffic.published)
    // Within its announce budget: only the ids it never answered for told on it.
    expect(reasons.has('announce-over-budget')).toBe(false)
    expect(reasons.has('unanswered-over-budget')).toBe(true)
    expect(router.isDenied(key)).toBe(true)
    // Found out when the victim first gave up on its ids (8 unanswered asks, ~3.3 s), and cut
    // off there: not the whole 10 s of frames.
    expect(run.sent).toBeLessThan(10 * attack.rate)
    const b = ocBed.b.peerId.toString()
    for (const honest of [ocBed.a, ocBed.c]) {
      expect(honest.services.dissemination.core.getBehaviourPenalty(b)).toBe(0)
    }
  })
})
