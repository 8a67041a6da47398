import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runEndToEnd } from '../../bench/load/e2e-run.ts'
import {
  deriveKeySet,
  encodeLoad,
  isLoadPayload,
  LoadCacheError,
  type LoadSpec,
  loadCachePath,
  loadDirectory,
  loadFrame,
  loadOrGenerate,
  loadPayload,
  readLoad,
} from '../../bench/load/load-cache.ts'
import { brokerLimits } from '../../src/broker/params.ts'
import { batchRootInput, submissionInput } from '../../src/broker/signing.ts'
import { decodeSubmission } from '../../src/broker/wire.ts'
import { blsVerify } from '../../src/crypto/bls.ts'
import { verifyEd25519Prepared } from '../../src/crypto/ed25519.ts'

const dir = mkdtempSync(join(tmpdir(), 'cm-load-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const spec: LoadSpec = { seed: 'load-test', clients: 64, keySets: 8, payloadBytes: 8 }

function expectFault(fn: () => unknown, fault: string, message: RegExp): void {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(LoadCacheError)
    expect((err as LoadCacheError).fault).toBe(fault)
    expect((err as Error).message).toMatch(message)
    return
  }
  expect.fail(`expected a ${fault} LoadCacheError`)
}

describe('pre-computed load cache', () => {
  it('generates once, round-trips through the file, and every signature verifies', () => {
    const first = loadOrGenerate(spec, dir)
    expect(first.regenerated?.fault).toBe('missing')
    const again = loadOrGenerate(spec, dir)
    expect(again.regenerated).toBeUndefined()
    expect(Buffer.from(encodeLoad(again.load)).equals(Buffer.from(encodeLoad(first.load)))).toBe(
      true,
    )
    // Registration checks every BLS proof of possession.
    const directory = loadDirectory(spec, again.load.registrations)
    expect(directory.size).toBe(spec.clients)
    const limits = brokerLimits()
    const root = new Uint8Array(32).fill(7)
    for (let id = 0; id < spec.clients; id++) {
      const s = decodeSubmission(loadFrame(again.load, id), limits)
      expect(s.id).toBe(id)
      expect(s.sequence).toBe(1)
      expect(Buffer.from(s.payload).equals(loadPayload(id, spec.payloadBytes))).toBe(true)
      expect(isLoadPayload(id, s.payload, spec.payloadBytes)).toBe(true)
      expect(isLoadPayload(id + 1, s.payload, spec.payloadBytes)).toBe(false)
      const input = submissionInput(id, s.sequence, s.payload)
      expect(verifyEd25519Prepared(directory.ed25519Key(id), input, s.signature)).toBe(true)
    }
    // The secrets the replayers derive match the cached public keys.
    for (let k = 0; k < spec.keySets; k++) {
      const sig = deriveKeySet(spec.seed, k).bls.sign(batchRootInput(root))
      expect(blsVerify(directory.blsKey(k), batchRootInput(root), sig)).toBe(true)
    }
  })

  it('rejects a corrupt cache with a clear error and regenerates it', () => {
    loadOrGenerate(spec, dir)
    const path = loadCachePath(spec, dir)
    const good = readFileSync(path)
    const flipped = Buffer.from(good)
    flipped[Math.floor(flipped.length / 2)] ^= 1
    writeFileSync(path, flipped)
    expectFault(() => readLoad(spec, dir), 'corrupt', /checksum/)
    const r = loadOrGenerate(spec, dir)
    expect(r.regenerated?.fault).toBe('corrupt')
    expect(readFileSync(path).equals(good)).toBe(true)

    writeFileSync(path, good.subarray(0, 100))
    expectFault(() => readLoad(spec, dir), 'corrupt', /checksum|magic/)
    writeFileSync(path, Buffer.from('not a cache at all, just some text'))
    expectFault(() => readLoad(spec, dir), 'corrupt', /magic/)
    expect(loadOrGenerate(spec, dir).regenerated?.fault).toBe('corrupt')
    expect(readLoad(spec, dir).spec).toEqual(spec)
  })

  it('rejects a cache built for another seed or size and regenerates it', () => {
    loadOrGenerate(spec, dir)
    for (const other of [
      { ...spec, seed: 'another-seed' },
      { ...spec, clients: 65 },
      { ...spec, keySets: 4 },
    ]) {
      copyFileSync(loadCachePath(spec, dir), loadCachePath(other, dir))
      expectFault(() => readLoad(other, dir), 'mismatch', /expected/)
      const r = loadOrGenerate(other, dir)
      expect(r.regenerated?.fault).toBe('mismatch')
      expect(readLoad(other, dir).spec).toEqual(other)
    }
    // A well-formed cache (valid checksum) whose keys are not the seed's.
    const { load } = loadOrGenerate(spec, dir)
    const registrations = [...load.registrations]
    registrations[3] = { ...registrations[3], ed25519: deriveKeySet('other', 3).ed25519.publicKey }
    writeFileSync(loadCachePath(spec, dir), encodeLoad({ ...load, registrations }))
    expectFault(() => readLoad(spec, dir), 'mismatch', /key set 3/)
    expect(loadOrGenerate(spec, dir).regenerated?.fault).toBe('mismatch')
    expectFault(() => readLoad({ ...spec, seed: 'never-written' }, dir), 'missing', /load-v1/)
  })
})

describe('replay against a real broker and servers (separate processes, loopback)', () => {
  it('delivers every replayed message exactly once at every server', async () => {
    const messages = 300
    const r = await runEndToEnd({
      spec: { seed: 'load-replay-test', clients: messages, keySets: 8, payloadBytes: 8 },
      ratePerSecond: 1000,
      loadProcesses: 1,
      cacheDir: dir,
      drainMs: 30_000,
    })
    expect(r.perServer).toHaveLength(4)
    for (const s of r.perServer) {
      expect(s).toMatchObject({ delivered: messages, lost: 0, deliveredTwice: 0, wrongPayload: 0 })
    }
    expect(r.certified).toBe(messages)
    expect(r.refused).toBe(0)
    // Every entry was co-signed with a real share unless it became a straggler.
    expect(r.shares).toBeGreaterThanOrEqual(messages - r.broker.stragglers)
    expect(r.broker.badShares).toBe(0)
  }, 120_000)
})
