import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import type { Artifact } from '../../src/common/artifact.ts'
import { InvalidParametersError } from '../../src/common/errors.ts'
import { contentMessageId, messageIdKey } from '../../src/common/message-id.ts'
import { Ed25519PeerSignatures } from '../../src/crypto/peer-signatures.ts'
import { decodeRpMessage, encodeRpMessage, type RpMessage } from '../../src/rp/codec.ts'
import type { RpMember } from '../../src/rp/member.ts'
import {
  checkPublished,
  type PublishedFields,
  publishSigningBytes,
  signPublished,
} from '../../src/rp/publisher-auth.ts'
import type { ReplicationPoint } from '../../src/rp/replication-point.ts'
import { type SimCore, Simulation } from '../../src/sim/network.ts'
import { Prng } from '../../src/sim/prng.ts'
import { buildRpNetwork, createRpCore, type RpSimOptions } from '../../src/sim/rp-strategy.ts'
import { rpTestScenario } from './fixtures/sim-scenario.ts'

const TOPIC = 'blocks'

describe('publisher signatures on libp2p identities', () => {
  it('verifies a publisher by its peer id, and refuses altered, re-attributed or unsigned messages', async () => {
    const alice = await generateKeyPair('Ed25519')
    const mallory = await generateKeyPair('Ed25519')
    const aliceId = peerIdFromPrivateKey(alice).toString()
    const sigA = new Ed25519PeerSignatures(alice)
    const sigM = new Ed25519PeerSignatures(mallory)
    const data = new TextEncoder().encode('block 1')
    const id = contentMessageId(TOPIC, data)
    const m: PublishedFields = {
      id,
      topic: TOPIC,
      class: 'consensus',
      data,
      signature: signPublished(sigA, id, 'consensus'),
    }
    expect(m.signature.length).toBe(64)
    // Anyone checks it against the peer id alone.
    expect(checkPublished(sigM, m, aliceId)).toBeUndefined()
    // Altered payload with the old id: the id no longer matches.
    const altered = Uint8Array.from(data)
    altered[0] ^= 1
    expect(checkPublished(sigM, { ...m, data: altered }, aliceId)).toBe('bad-message-id')
    // Altered payload with a recomputed id: the signature no longer matches.
    const alteredId = contentMessageId(TOPIC, altered)
    expect(checkPublished(sigM, { ...m, data: altered, id: alteredId }, aliceId)).toBe(
      'bad-signature',
    )
    // Another class, another topic: not what was signed.
    expect(checkPublished(sigM, { ...m, class: 'ingress' }, aliceId)).toBe('bad-signature')
    const otherTopicId = contentMessageId('votes', data)
    expect(checkPublished(sigM, { ...m, topic: 'votes', id: otherTopicId }, aliceId)).toBe(
      'bad-signature',
    )
    // Mallory signs in Alice's name: refused; stripped signature: refused.
    const forged = { ...m, signature: signPublished(sigM, id, 'consensus') }
    expect(checkPublished(sigA, forged, aliceId)).toBe('bad-signature')
    expect(checkPublished(sigA, { ...m, signature: new Uint8Array(0) }, aliceId)).toBe('unsigned')
    // A publisher name that is no Ed25519 peer id verifies nothing.
    expect(checkPublished(sigA, m, 'not-a-peer-id')).toBe('bad-signature')
    // Without signatures only the id is checked.
    expect(checkPublished(undefined, { ...m, signature: new Uint8Array(0) }, aliceId)).toBe(
      undefined,
    )
    // The signed bytes are domain-separated, class and id included.
    const signed = publishSigningBytes(id, 'consensus')
    expect(new TextDecoder().decode(signed.subarray(0, 33))).toBe(
      'consensus-multicast/rp/1 publish\n',
    )
    expect(signed.subarray(34)).toEqual(id)
  })

  it('refuses an identity that is not Ed25519, with a typed error', async () => {
    const k = await generateKeyPair('secp256k1')
    expect(() => new Ed25519PeerSignatures(k)).toThrow(InvalidParametersError)
  })
})

/**
 * A simulated RP network with real keys where RP `bad` does not check signatures and
 * tampers with what it is given: every Data frame's payload is altered (its id recomputed,
 * so only the signature can tell), and with the first one it also makes up two messages of
 * its own in a member's name, one signed with its own key, one unsigned, and forwards them
 * over the backbone as if it were their origin.
 */
function tamperingNetwork() {
  const sc = rpTestScenario({ nodes: 60 })
  const opts: RpSimOptions = { multicast: true, rp: { tree: 'source' } }
  const net = buildRpNetwork(sc, new Prng(sc.seed), opts)
  const bad = net.firstRp
  const badName = `n${bad}`
  const keyring = net.keyring!
  let forged = false
  const forgeries: string[] = []
  const tamper = (peer: string, m: RpMessage, deliver: (peer: string, m: RpMessage) => void) => {
    if (m.type !== 'data') return deliver(peer, m)
    const data = Uint8Array.from(m.data)
    data[data.length - 1] ^= 0xff
    deliver(peer, { ...m, data, id: contentMessageId(m.topic, data) })
    if (forged) return
    forged = true
    const victim = m.publisher
    for (const signed of [true, false]) {
      const fake = new TextEncoder().encode(`forged in ${victim}'s name, signed: ${signed}`)
      const id = contentMessageId(m.topic, fake)
      forgeries.push(messageIdKey(id))
      deliver(peer, {
        ...m,
        id,
        data: fake,
        originRp: badName,
        signature: signed
          ? signPublished(keyring.forNode(badName), id, m.class)
          : m.signature.subarray(0, 0),
      })
    }
  }
  const sim = new Simulation<SimCore>(
    { seed: sc.seed, graph: net.graph, latency: net.latency, uploadBps: net.uploadBps },
    (env, i) => {
      if (i !== bad) return createRpCore(env, i, net, opts)
      // The tampering RP: no keyring, so it checks nothing and passes its forgeries on.
      const core = createRpCore(env, i, { ...net, keyring: undefined }, opts)
      const receive = core.receive.bind(core)
      core.receive = (peer, frame) =>
        tamper(peer, decodeRpMessage(frame), (p, m) => receive(p, encodeRpMessage(m)))
      return core
    },
  )
  const delivered = Array.from({ length: net.graph.n }, () => [] as Artifact[])
  const rejectedSlots = new Map<number, number>()
  sim.observe((i, core) => {
    if (i < net.firstRp) core.subscribe(TOPIC)
    core.on('artifact', (a) => delivered[i].push(a))
    ;(core as RpMember).on('multicast-lost', (e) => {
      if (e.reason === 'rejected') rejectedSlots.set(i, (rejectedSlots.get(i) ?? 0) + 1)
    })
  })
  sim.start()
  return { net, sim, bad, badName, delivered, forgeries, rejectedSlots }
}

describe('an RP that alters or forges messages (simulated, real Ed25519 signatures)', () => {
  it('is caught by members (unicast and multicast) and RPs; honest messages all reach honest members', async () => {
    const { net, sim, badName, delivered, forgeries, rejectedSlots } = tamperingNetwork()
    sim.run({ until: 3_000 })
    const member = (i: number) => sim.core(i) as RpMember
    const honest: number[] = []
    const victims: number[] = []
    for (let i = 0; i < net.firstRp; i++) (member(i).rp === badName ? victims : honest).push(i)
    expect(victims.length).toBeGreaterThan(0)
    // Members of the tampering RP are served by multicast (the LAN path is checked too).
    expect(victims.some((i) => member(i).multicastState(TOPIC) === 'multicast')).toBe(true)
    const published: Array<{ key: string; origin: number; data: Uint8Array }> = []
    for (let k = 0; k < 20; k++) {
      const origin = honest[k % honest.length]
      const data = new Uint8Array(256)
      new DataView(data.buffer).setUint32(0, k)
      sim.at(3_000 + k * 20, () => {
        void sim
          .core(origin)
          .publish(TOPIC, data)
          .then((r) => published.push({ key: messageIdKey(r.id), origin, data }))
      })
    }
    sim.run({ until: 8_000 })
    await Promise.resolve()
    expect(published.length).toBe(20)
    const honestKeys = new Map(published.map((p) => [p.key, p]))
    // Nobody delivered anything but an honest message, byte for byte.
    for (let i = 0; i < net.graph.n; i++) {
      for (const a of delivered[i]) {
        const p = honestKeys.get(messageIdKey(a.id))
        expect(p, `node ${i} delivered a message nobody published`).toBeDefined()
        expect(Buffer.from(a.data).equals(Buffer.from(p!.data))).toBe(true)
      }
    }
    // Every honest member got every honest message exactly once.
    for (const i of honest) {
      const got = delivered[i].map((a) => messageIdKey(a.id))
      const want = published.filter((p) => p.origin !== i).map((p) => p.key)
      expect(got.sort()).toEqual(want.sort())
    }
    // The tampering RP's members delivered nothing, and counted every refusal against it.
    let badSignature = 0
    let unsigned = 0
    for (const i of victims) {
      expect(delivered[i]).toEqual([])
      const s = member(i).stats()
      badSignature += s.invalid['bad-signature'] ?? 0
      unsigned += s.invalid.unsigned ?? 0
      expect(Object.keys(s.invalidByPeer)).toEqual([badName])
    }
    // A multicast slot whose message failed the checks is reported lost (and asked for over
    // the session): each victim on multicast reported every altered message and forgery.
    for (const i of victims) {
      if (member(i).multicastState(TOPIC) !== 'multicast') continue
      expect(rejectedSlots.get(i), `member ${i}`).toBeGreaterThanOrEqual(20)
    }
    expect([...rejectedSlots.keys()].every((i) => victims.includes(i))).toBe(true)
    // Each victim refused the altered copy of each message it got from its RP, and the forgery.
    expect(badSignature).toBeGreaterThanOrEqual(victims.length * 20)
    expect(unsigned).toBeGreaterThanOrEqual(victims.length)
    // The honest RPs refused the forgeries it forwarded (and the altered copies it offered
    // them in repair digests), all counted against it.
    expect(forgeries.length).toBe(2)
    const refused = { 'bad-signature': 0, unsigned: 0, byBad: 0 }
    for (let r = net.firstRp; r < net.graph.n; r++) {
      if (`n${r}` === badName) continue
      const s = (sim.core(r) as ReplicationPoint).stats()
      refused['bad-signature'] += s.invalid['bad-signature'] ?? 0
      refused.unsigned += s.invalid.unsigned ?? 0
      refused.byBad += s.invalidByPeer[badName] ?? 0
      expect(Object.keys(s.invalidByPeer).filter((p) => p !== badName)).toEqual([])
    }
    expect(refused['bad-signature']).toBeGreaterThanOrEqual(1)
    expect(refused.unsigned).toBeGreaterThanOrEqual(1)
    expect(refused.byBad).toBe(refused['bad-signature'] + refused.unsigned)
  })
})
