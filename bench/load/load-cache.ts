/**
 * Pre-computed client load for the Chop Chop broker (as Chop Chop's evaluation does it):
 * every client's signed submission is computed once and cached on disk, so the processes
 * that replay it spend no CPU on ed25519 signing while the broker and servers are measured.
 *
 * What is cached and what is not:
 * - client key material: derived from the seed (so a cache can be checked against it); the
 *   cache holds each key set's public keys and BLS proof of possession;
 * - submissions (id, sequence, payload, ed25519 signature): the expensive part, cached;
 * - BLS shares: NOT cacheable. A share signs the batch's Merkle root, which commits to
 *   whichever entries the broker happened to pool together (a timing accident of UDP
 *   arrival), so it cannot be known before the broker flushes. Replaying processes sign
 *   roots live with the pre-loaded keys, one BLS signature per key set per batch (ids
 *   share key sets, see {@link LoadSpec.keySets}).
 *
 * Each client id submits one message, at sequence 1: a precomputed signature fixes the
 * sequence number, and a live client's next sequence number depends on the raise of the
 * batch that carried its previous message (client.ts continues above every raise it
 * co-signed), which cannot be known in advance. Sequence 1 is always within the broker's
 * raise bound (height + 1), so every replayed submission is legitimate.
 *
 * File format (all integers little-endian):
 *   magic "CMLOAD01" ‖ u32 header length ‖ header (JSON: {@link LoadSpec} + frameBytes)
 *   ‖ keySets × (ed25519 public 32 ‖ BLS public 48 ‖ proof of possession 96)
 *   ‖ clients × submission frame (frameBytes each, id order)
 *   ‖ sha256 of everything before (32)
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { logger } from '@libp2p/logger'
import { Directory } from '../../src/broker/directory.ts'
import { batchRootInput, submissionInput } from '../../src/broker/signing.ts'
import { encodeSubmission } from '../../src/broker/wire.ts'
import { ConsensusMulticastError } from '../../src/common/errors.ts'
import { BlsKeyPair } from '../../src/crypto/bls.ts'
import { Ed25519KeyPair } from '../../src/crypto/ed25519.ts'

const log = logger('consensus-multicast:bench:load-cache')

const MAGIC = Buffer.from('CMLOAD01')
const VERSION = 1
const KEY_RECORD = 32 + 48 + 96
const CHECKSUM = 32
/** Largest header accepted (it is a few hundred bytes of JSON). */
const MAX_HEADER = 4096
/** Largest cache accepted on load, in clients (a bound for the decoder). */
export const MAX_LOAD_CLIENTS = 1 << 22

/** The cache folder (ignored by git). */
export const LOAD_CACHE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '.cache')

/** What a load is made of; a cache file is keyed by all of it. */
export interface LoadSpec {
  /** Seed every key is derived from (any string). */
  seed: string
  /** Client ids 0 … clients − 1, one submission each. */
  clients: number
  /**
   * Distinct key sets (ed25519 + BLS) shared by the ids: id i uses set i mod keySets. The
   * broker and servers do the same work per id (every signature is checked, every share
   * decoded and summed, every key in the aggregate); only the replaying processes sign
   * fewer roots (one per key set per batch).
   */
  keySets: number
  /** Payload bytes per message (≥ 4: the id is written in the first 4 bytes). */
  payloadBytes: number
}

/** Why a cache was refused. */
export type LoadCacheFault = 'missing' | 'corrupt' | 'mismatch'

/** A cache file that cannot be used: missing, corrupt (bad structure or checksum) or built for another spec. */
export class LoadCacheError extends ConsensusMulticastError {
  /** What is wrong with it. */
  readonly fault: LoadCacheFault

  constructor(fault: LoadCacheFault, message: string) {
    super('ERR_DECODE', `load cache ${fault}: ${message}`)
    this.fault = fault
  }
}

/** One key set's secrets, derived from the seed. */
export interface LoadKeySet {
  /** Signs submissions. */
  ed25519: Ed25519KeyPair
  /** Signs batch roots. */
  bls: BlsKeyPair
}

/** What a key set registers in the directory (public parts only). */
export interface LoadRegistration {
  /** Raw ed25519 public key. */
  ed25519: Uint8Array
  /** Compressed BLS public key. */
  bls: Uint8Array
  /** BLS proof of possession. */
  proofOfPossession: Uint8Array
}

/** A loaded (or freshly generated) load. */
export interface Load {
  /** What it was built from. */
  spec: LoadSpec
  /** Public keys of every key set. */
  registrations: LoadRegistration[]
  /** Bytes of each submission frame. */
  frameBytes: number
  /** Every submission frame, back to back, in id order. */
  frames: Uint8Array
}

function checkSpec(spec: LoadSpec): void {
  const ok =
    Number.isSafeInteger(spec.clients) &&
    spec.clients >= 1 &&
    spec.clients <= MAX_LOAD_CLIENTS &&
    Number.isSafeInteger(spec.keySets) &&
    spec.keySets >= 1 &&
    spec.keySets <= spec.clients &&
    Number.isSafeInteger(spec.payloadBytes) &&
    spec.payloadBytes >= 4 &&
    spec.payloadBytes <= 256 &&
    typeof spec.seed === 'string' &&
    spec.seed.length > 0 &&
    spec.seed.length <= 256
  if (!ok) throw new LoadCacheError('mismatch', `invalid load spec ${JSON.stringify(spec)}`)
}

function derive(seed: string, label: string, index: number): Uint8Array {
  return createHash('sha256').update(`cm/bench/load/${label}\0${seed}\0${index}`).digest()
}

/** Derives key set `k` of `seed` (deterministic: any process can rebuild the same keys). */
export function deriveKeySet(seed: string, k: number): LoadKeySet {
  return {
    ed25519: new Ed25519KeyPair(derive(seed, 'ed25519', k)),
    bls: BlsKeyPair.generate(derive(seed, 'bls', k)),
  }
}

/** Derives server `i`'s ed25519 key pair from `seed`. */
export function deriveServerKey(seed: string, i: number): Ed25519KeyPair {
  return new Ed25519KeyPair(derive(seed, 'server', i))
}

/** The payload of client `id`: its id in the first 4 bytes, zeros after. */
export function loadPayload(id: number, payloadBytes: number): Uint8Array {
  const p = new Uint8Array(payloadBytes)
  new DataView(p.buffer).setUint32(0, id, true)
  return p
}

/** True when `payload` is {@link loadPayload}(id, payloadBytes) (without allocating). */
export function isLoadPayload(id: number, payload: Uint8Array, payloadBytes: number): boolean {
  if (payload.length !== payloadBytes) return false
  const head = payload[0] | (payload[1] << 8) | (payload[2] << 16) | (payload[3] << 24)
  if (head >>> 0 !== id) return false
  for (let i = 4; i < payloadBytes; i++) if (payload[i] !== 0) return false
  return true
}

/** The submission frame of client `id` in `load` (a view, not a copy). */
export function loadFrame(load: Load, id: number): Uint8Array {
  return load.frames.subarray(id * load.frameBytes, (id + 1) * load.frameBytes)
}

/** The cache file of `spec` under `dir`. */
export function loadCachePath(spec: LoadSpec, dir = LOAD_CACHE_DIR): string {
  const seed = createHash('sha256').update(spec.seed).digest('hex').slice(0, 16)
  return join(
    dir,
    `load-v${VERSION}-${seed}-${spec.clients}c-${spec.keySets}k-${spec.payloadBytes}b.bin`,
  )
}

/** Signs every client's submission (the expensive step: one ed25519 signature per id). */
export function generateLoad(spec: LoadSpec): Load {
  checkSpec(spec)
  const sets = Array.from({ length: spec.keySets }, (_, k) => deriveKeySet(spec.seed, k))
  const registrations = sets.map((s) => ({
    ed25519: s.ed25519.publicKey,
    bls: s.bls.publicKey,
    proofOfPossession: s.bls.proofOfPossession,
  }))
  let frames: Uint8Array | undefined
  let frameBytes = 0
  for (let id = 0; id < spec.clients; id++) {
    const payload = loadPayload(id, spec.payloadBytes)
    const signature = sets[id % spec.keySets].ed25519.sign(submissionInput(id, 1, payload))
    const frame = encodeSubmission({ id, sequence: 1, payload, signature })
    if (frames === undefined) {
      frameBytes = frame.length
      frames = new Uint8Array(frameBytes * spec.clients)
    }
    if (frame.length !== frameBytes) throw new Error('submission frames differ in length')
    frames.set(frame, id * frameBytes)
  }
  return { spec: { ...spec }, registrations, frameBytes, frames: frames! }
}

/** Serialises a load to the cache format (see the module comment). */
export function encodeLoad(load: Load): Uint8Array {
  const header = Buffer.from(
    JSON.stringify({ version: VERSION, ...load.spec, frameBytes: load.frameBytes }),
  )
  const body = Buffer.alloc(
    MAGIC.length + 4 + header.length + load.registrations.length * KEY_RECORD + load.frames.length,
  )
  let o = MAGIC.copy(body, 0)
  o = body.writeUInt32LE(header.length, o)
  o += header.copy(body, o)
  for (const r of load.registrations) {
    body.set(r.ed25519, o)
    body.set(r.bls, o + 32)
    body.set(r.proofOfPossession, o + 80)
    o += KEY_RECORD
  }
  body.set(load.frames, o)
  const sum = createHash('sha256').update(body).digest()
  return Buffer.concat([body, sum])
}

/**
 * Decodes a cache file and checks it is the load of `spec`: structure, checksum, header
 * and the public keys derived from the seed. Throws {@link LoadCacheError}.
 */
export function decodeLoad(bytes: Uint8Array, spec: LoadSpec): Load {
  checkSpec(spec)
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const minimum = MAGIC.length + 4 + CHECKSUM
  if (buf.length < minimum || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new LoadCacheError('corrupt', 'not a load cache (bad magic)')
  }
  const body = buf.subarray(0, buf.length - CHECKSUM)
  const sum = createHash('sha256').update(body).digest()
  if (!sum.equals(buf.subarray(buf.length - CHECKSUM))) {
    throw new LoadCacheError('corrupt', 'checksum does not match')
  }
  const headerLength = buf.readUInt32LE(MAGIC.length)
  if (headerLength > MAX_HEADER || MAGIC.length + 4 + headerLength > body.length) {
    throw new LoadCacheError('corrupt', `header of ${headerLength} bytes`)
  }
  let header: Record<string, unknown>
  try {
    header = JSON.parse(body.toString('utf8', MAGIC.length + 4, MAGIC.length + 4 + headerLength))
  } catch {
    throw new LoadCacheError('corrupt', 'header is not JSON')
  }
  for (const [k, v] of Object.entries({ version: VERSION, ...spec })) {
    if (header[k] !== v) {
      throw new LoadCacheError('mismatch', `${k} is ${String(header[k])}, expected ${v}`)
    }
  }
  const frameBytes = header.frameBytes
  if (!Number.isSafeInteger(frameBytes) || (frameBytes as number) < 1) {
    throw new LoadCacheError('corrupt', `frameBytes ${String(frameBytes)}`)
  }
  let o = MAGIC.length + 4 + headerLength
  const expected = o + spec.keySets * KEY_RECORD + spec.clients * (frameBytes as number)
  if (body.length !== expected) {
    throw new LoadCacheError('corrupt', `${body.length} bytes, expected ${expected}`)
  }
  const registrations: LoadRegistration[] = []
  for (let k = 0; k < spec.keySets; k++) {
    registrations.push({
      ed25519: body.subarray(o, o + 32),
      bls: body.subarray(o + 32, o + 80),
      proofOfPossession: body.subarray(o + 80, o + KEY_RECORD),
    })
    o += KEY_RECORD
  }
  // The replayers sign with keys derived from the seed: every key set must be theirs.
  for (let k = 0; k < spec.keySets; k++) {
    const derived = deriveKeySet(spec.seed, k)
    if (
      !Buffer.from(derived.ed25519.publicKey).equals(registrations[k].ed25519) ||
      !Buffer.from(derived.bls.publicKey).equals(registrations[k].bls)
    ) {
      throw new LoadCacheError('mismatch', `key set ${k} is not derived from this seed`)
    }
  }
  return {
    spec: { ...spec },
    registrations,
    frameBytes: frameBytes as number,
    frames: body.subarray(o),
  }
}

/** Reads and checks the cache of `spec`; throws {@link LoadCacheError} (fault 'missing' when absent). */
export function readLoad(spec: LoadSpec, dir = LOAD_CACHE_DIR): Load {
  const path = loadCachePath(spec, dir)
  if (!existsSync(path)) throw new LoadCacheError('missing', path)
  return decodeLoad(readFileSync(path), spec)
}

/** Writes `load` to its cache file atomically (rename); returns the path. */
export function writeLoad(load: Load, dir = LOAD_CACHE_DIR): string {
  const path = loadCachePath(load.spec, dir)
  mkdirSync(dir, { recursive: true })
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, encodeLoad(load))
  renameSync(tmp, path)
  return path
}

/** What {@link loadOrGenerate} did. */
export interface LoadResult {
  /** The load. */
  load: Load
  /** Its cache file. */
  path: string
  /** Why it was (re)generated; undefined when the cache was used. */
  regenerated?: LoadCacheError
}

/** Loads the cache of `spec`, or generates and writes it when it is missing, corrupt or mismatched. */
export function loadOrGenerate(spec: LoadSpec, dir = LOAD_CACHE_DIR): LoadResult {
  const path = loadCachePath(spec, dir)
  try {
    return { load: readLoad(spec, dir), path }
  } catch (err) {
    if (!(err instanceof LoadCacheError)) throw err
    log('regenerating %s: %s', path, err.message)
    const load = generateLoad(spec)
    writeLoad(load, dir)
    return { load, path, regenerated: err }
  }
}

/** A directory registering `load.spec.clients` ids, id i with key set i mod keySets. */
export function loadDirectory(
  spec: LoadSpec,
  registrations: readonly LoadRegistration[],
): Directory {
  const directory = new Directory()
  for (let id = 0; id < spec.clients; id++) directory.register(registrations[id % spec.keySets])
  return directory
}

/** The BLS share a client of key set `k` sends for `root` (what a replaying process signs). */
export function loadShare(keySet: LoadKeySet, root: Uint8Array): Uint8Array {
  return keySet.bls.signShare(batchRootInput(root))
}
