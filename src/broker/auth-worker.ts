/**
 * Worker thread body of {@link WorkerAuthenticator}: verifies bursts of submission
 * signatures with node:crypto. Messages: `{ type: 'keys', from, keys }` appends raw
 * ed25519 public keys (32 bytes each) for ids from `from` on and answers `{ ready: n }`;
 * `{ type: 'verify', job, data,
 * limits }` verifies the u16-length-prefixed submission frames in `data` and replies
 * `{ job, verdicts }` (1 = valid).
 */
import type { KeyObject } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import { importEd25519PublicKey, verifyEd25519Prepared } from '../crypto/ed25519.ts'
import type { BrokerLimits } from './params.ts'
import { submissionInput } from './signing.ts'
import { decodeSubmission } from './wire.ts'

type Message =
  | { type: 'keys'; from: number; keys: Uint8Array }
  | { type: 'verify'; job: number; data: Uint8Array; limits: BrokerLimits }

const prepared: (KeyObject | undefined)[] = []
const byBytes = new Map<string, KeyObject | undefined>()

parentPort!.on('message', (m: Message) => {
  if (m.type === 'keys') {
    // Import every key now, as the main thread's directory does at registration, so that
    // verifying never pays for an import (~80 µs) on the hot path.
    for (let i = 0; i * 32 < m.keys.length; i++) {
      const raw = m.keys.subarray(i * 32, i * 32 + 32)
      const hex = Buffer.from(raw).toString('hex')
      if (!byBytes.has(hex)) byBytes.set(hex, importEd25519PublicKey(raw))
      prepared[m.from + i] = byBytes.get(hex)
    }
    parentPort!.postMessage({ ready: m.from + m.keys.length / 32 })
    return
  }
  const { data } = m
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const verdicts: number[] = []
  for (let off = 0; off + 2 <= data.length; ) {
    const len = view.getUint16(off, true)
    const frame = data.subarray(off + 2, off + 2 + len)
    off += 2 + len
    let ok = false
    try {
      const s = decodeSubmission(frame, m.limits)
      const k = prepared[s.id]
      ok =
        k !== undefined &&
        verifyEd25519Prepared(k, submissionInput(s.id, s.sequence, s.payload), s.signature)
    } catch {
      ok = false
    }
    verdicts.push(ok ? 1 : 0)
  }
  const out = Uint8Array.from(verdicts)
  parentPort!.postMessage({ job: m.job, verdicts: out }, [out.buffer])
})
