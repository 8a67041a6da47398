/**
 * The cost of RP publisher signatures (issue 10 item 4): every publisher signs what it
 * publishes with its Ed25519 identity key, and every RP and member verifies each new
 * message once before forwarding or delivering it.
 *
 * Measured in one process, on 256-byte consensus messages:
 *  - signatures made and verified per CPU second (`Ed25519PeerSignatures`, the libp2p driver's
 *    implementation: node:crypto with prepared keys), against the check every receiver did
 *    before (the content id recomputed from topic and payload) as the baseline;
 *  - the cost of a publisher's first message (its key imported from the peer id);
 *  - bytes a signature adds to each frame kind and to a multicast datagram.
 *
 * Usage: npm run bench -- rp-signatures [--messages N]
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { contentMessageId } from '../src/common/message-id.ts'
import { Ed25519PeerSignatures } from '../src/crypto/peer-signatures.ts'
import { encodeRpMessage, type RpMessage } from '../src/rp/codec.ts'
import { DATAGRAM_OVERHEAD } from '../src/rp/multicast/datagram-codec.ts'
import { checkPublished, type PublishedFields, signPublished } from '../src/rp/publisher-auth.ts'
import { printTable, type Row, writeResults } from './report.ts'

const i = process.argv.indexOf('--messages')
const N = i >= 0 ? Number(process.argv[i + 1]) : 20_000
const BYTES = 256
const TOPIC = 'blocks'

const publisherKey = await generateKeyPair('Ed25519')
const publisher = peerIdFromPrivateKey(publisherKey).toString()
const signer = new Ed25519PeerSignatures(publisherKey)
const verifier = new Ed25519PeerSignatures(await generateKeyPair('Ed25519'))

const messages: PublishedFields[] = []
for (let k = 0; k < N; k++) {
  const data = new Uint8Array(BYTES)
  new DataView(data.buffer).setUint32(0, k)
  messages.push({
    id: contentMessageId(TOPIC, data),
    topic: TOPIC,
    class: 'consensus',
    data,
    signature: new Uint8Array(0),
  })
}

/** CPU seconds this process has used (the machine is shared: wall time would count waits). */
const cpuSeconds = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** Runs `fn` over every message; returns operations per CPU second (best of 3 passes). */
function rate(fn: (m: PublishedFields) => void): number {
  let best = 0
  for (let pass = 0; pass < 3; pass++) {
    const t0 = cpuSeconds()
    for (const m of messages) fn(m)
    best = Math.max(best, N / (cpuSeconds() - t0))
  }
  return best
}

// Baseline: the content-id check every receiver made before signatures.
let failures = 0
const idCheckPerS = rate((m) => {
  if (checkPublished(undefined, m, publisher) !== undefined) failures++
})
const signPerS = rate((m) => {
  m.signature = signPublished(signer, m.id, m.class)
})
const verifyPerS = rate((m) => {
  if (checkPublished(verifier, m, publisher) !== undefined) failures++
})
if (failures > 0) throw new Error(`${failures} honest messages failed their check`)

// A publisher's first message: its key is imported from the peer id (then cached).
const fresh = await Promise.all(Array.from({ length: 200 }, () => generateKeyPair('Ed25519')))
const firstSigned = fresh.map((k) => {
  const m = messages[0]
  const s = new Ed25519PeerSignatures(k)
  return {
    peer: peerIdFromPrivateKey(k).toString(),
    m: { ...m, signature: signPublished(s, m.id, m.class) },
  }
})
const cold = new Ed25519PeerSignatures(await generateKeyPair('Ed25519'))
const t0 = cpuSeconds()
for (const f of firstSigned) {
  if (checkPublished(cold, f.m, f.peer) !== undefined) throw new Error('a fresh publisher failed')
}
const firstMessageUs = ((cpuSeconds() - t0) * 1e6) / firstSigned.length

// Bytes on the wire, with and without the signature.
const m0 = messages[0]
const frames: Array<[string, (signature: Uint8Array) => RpMessage]> = [
  ['publish', (signature) => ({ type: 'publish', ...m0, quorum: false, surplus: 0, signature })],
  ['deliver', (signature) => ({ type: 'deliver', ...m0, publisher, quorum: false, signature })],
  [
    'data',
    (signature) => ({
      type: 'data',
      ...m0,
      originRp: publisher,
      publisher,
      quorum: false,
      surplus: 0,
      signature,
    }),
  ],
]
const sizeRows: Row[] = frames.map(([kind, frame]) => {
  const without = encodeRpMessage(frame(new Uint8Array(0))).length
  const withSig = encodeRpMessage(frame(m0.signature)).length
  return {
    frame: kind,
    'bytes unsigned': without,
    'bytes signed': withSig,
    'added bytes': withSig - without,
    'added %': ((withSig - without) / without) * 100,
  }
})
// A multicast datagram carries the encoded Deliver (one fragment at this size).
const deliver = sizeRows[1]
sizeRows.push({
  frame: 'multicast datagram (Deliver)',
  'bytes unsigned': (deliver['bytes unsigned'] as number) + DATAGRAM_OVERHEAD,
  'bytes signed': (deliver['bytes signed'] as number) + DATAGRAM_OVERHEAD,
  'added bytes': deliver['added bytes'],
  'added %':
    ((deliver['added bytes'] as number) /
      ((deliver['bytes unsigned'] as number) + DATAGRAM_OVERHEAD)) *
    100,
})

const costRows: Row[] = [
  {
    operation: 'content-id check (before signatures)',
    'per s': idCheckPerS,
    'us each': 1e6 / idCheckPerS,
  },
  { operation: 'sign (publisher)', 'per s': signPerS, 'us each': 1e6 / signPerS },
  { operation: 'id check + verify (RP, member)', 'per s': verifyPerS, 'us each': 1e6 / verifyPerS },
  {
    operation: "a publisher's first message (key import)",
    'per s': 1e6 / firstMessageUs,
    'us each': firstMessageUs,
  },
]
console.log(`${N} messages of ${BYTES} B, Ed25519 through node:crypto, per CPU second of one core`)
printTable('cost per message', costRows)
console.log(`verify / id-check time ratio: ${(idCheckPerS / verifyPerS).toFixed(1)}×`)
printTable('bytes a signature adds', sizeRows)
writeResults('rp-signatures', {
  messages: N,
  messageBytes: BYTES,
  idCheckPerSecond: idCheckPerS,
  signPerSecond: signPerS,
  verifyPerSecond: verifyPerS,
  verifyOverIdCheckTimeRatio: idCheckPerS / verifyPerS,
  firstMessageMicroseconds: firstMessageUs,
  frameBytes: sizeRows,
})
