// The hand-written RP codec checked against rp.proto, byte for byte: protons generates a
// codec from the .proto at test time, and random messages cross between the two.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { generate } from 'protons'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DecodeError } from '../../src/common/errors.ts'
import {
  DEFAULT_RP_CODEC_LIMITS,
  decodeRpMessage,
  encodeRpMessage,
  MCAST_KEY_BYTES,
  MCAST_NONCE_BYTES,
  type RpMessage,
  type RpMessageType,
} from '../../src/rp/codec.ts'

const PROTO = new URL('../../src/rp/rp.proto', import.meta.url)

interface ProtonsCodec {
  encode(obj: unknown): Uint8Array
  decode(buf: Uint8Array): Record<string, unknown>
}
type Generated = Record<string, ProtonsCodec>

let dir = ''
let pb: Generated

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rp-proto-'))
  // protons 9 reads each part of a dotted package name as a message and fails on it; the
  // package name is not on the wire, so the copy it compiles drops that line only.
  const proto = (await readFile(PROTO, 'utf8')).replace(/^package [\w.]+;$/m, '')
  expect(proto).not.toMatch(/^package /m)
  await writeFile(join(dir, 'rp.proto'), proto)
  await generate(join(dir, 'rp.proto'), { output: dir, strict: true })
  pb = (await import(join(dir, 'rp.ts'))) as Generated
})

afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true })
})

// ---- mapping between RpMessage and the generated types -----------------------------------

/** The .proto message of each body, and of the messages nested in repeated fields. */
const BODY: Record<RpMessageType, string> = {
  register: 'Register',
  heartbeat: 'Heartbeat',
  leave: 'Leave',
  publish: 'Publish',
  ack: 'Ack',
  registered: 'Registered',
  deliver: 'Deliver',
  quorum: 'Quorum',
  hello: 'Hello',
  data: 'Data',
  delivered: 'Delivered',
  digest: 'Digest',
  nack: 'Nack',
  'mcast-group': 'McastGroup',
  'mcast-nack': 'McastNack',
  'mcast-gone': 'McastGone',
  'mcast-probe': 'McastProbe',
  'mcast-probe-result': 'McastProbeResult',
  'mcast-datagram': 'McastDatagram',
}
const NESTED: Record<string, Record<string, string>> = {
  Registered: { groups: 'McastGroup' },
  McastNack: { entries: 'McastNackEntry' },
  Hello: { states: 'LinkState' },
  LinkState: { links: 'Link', counts: 'TopicCount' },
  Delivered: { counts: 'DeliveredCount' },
}

/**
 * Our value as the generated codec holds it. Which fields are 64-bit comes from the schema
 * itself: protons decodes an empty message to its defaults, `0n` for every 64-bit field.
 */
function toProto(message: string, value: Record<string, unknown>): Record<string, unknown> {
  const defaults = pb[message].decode(new Uint8Array(0))
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) {
    if (key === 'type') continue
    expect(Object.keys(defaults), `${message}.${key} is in rp.proto`).toContain(key)
    const nested = NESTED[message]?.[key]
    if (nested !== undefined) {
      out[key] = (v as Record<string, unknown>[]).map((e) => toProto(nested, e))
    } else if (key === 'class') out[key] = v === 'consensus' ? 0 : 1
    else if (typeof defaults[key] === 'bigint') out[key] = BigInt(v as number)
    else out[key] = v
  }
  return out
}

/** A decoded generated value in our terms: 64-bit numbers as numbers, classes named. */
function fromProto(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value)
  if (value instanceof Uint8Array) return Uint8Array.from(value)
  if (Array.isArray(value)) return value.map(fromProto)
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue
      out[k] = k === 'class' ? (v === 0 ? 'consensus' : 'ingress') : fromProto(v)
    }
    return out
  }
  return value
}

/** The frame's oneof field of a body type ('mcast-group' → 'mcastGroup'). */
const oneofField = (type: string) => type.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())

/** The body as rp.proto lays it out: a group announce is the McastGroup itself. */
const body = (m: RpMessage) => (m.type === 'mcast-group' ? m.group : m) as Record<string, unknown>

const protoFrame = (m: RpMessage) => ({
  version: 1,
  [oneofField(m.type)]: toProto(BODY[m.type], body(m)),
})

// ---- random messages -----------------------------------------------------------------------

// Widths as rp.proto declares them: a codec that narrows a uint64 or widens a uint32 fails.
const u32 = fc.nat({ max: 0xffffffff })
const u64 = fc.maxSafeNat()
const text = (maxLength: number) => fc.string({ unit: 'binary', maxLength })
const name = (maxLength: number) => fc.string({ unit: 'binary', minLength: 1, maxLength })
// The decoder refuses an empty id, topic or peer where the protocol needs one (proto3 cannot
// say so); those refusals are checked below.
const id = fc.uint8Array({ minLength: 1, maxLength: DEFAULT_RP_CODEC_LIMITS.maxIdBytes })
const anyId = fc.uint8Array({ maxLength: DEFAULT_RP_CODEC_LIMITS.maxIdBytes })
const ids = fc.array(anyId, { maxLength: 8 })
const topics = fc.array(text(20), { maxLength: 6 })
const payload = fc.uint8Array({ maxLength: 300 })
const cls = fc.constantFrom('consensus' as const, 'ingress' as const)
const signature = fc.uint8Array({ maxLength: DEFAULT_RP_CODEC_LIMITS.maxSignatureBytes })
// -0 is a default value for both codecs, so neither sends it: it comes back as 0.
const double = fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => (v === 0 ? 0 : v))
const positive = fc.integer({ min: 1, max: 0xffffffff })
// A multicast group announce as the decoder accepts it: every field set, a 32-byte key.
const group = fc.record({
  topic: name(20),
  group: name(15),
  port: fc.integer({ min: 1, max: 0xffff }),
  keyId: u32,
  key: fc.uint8Array({ minLength: MCAST_KEY_BYTES, maxLength: MCAST_KEY_BYTES }),
  nextSeq: positive,
  source: name(15),
  maxDatagramBytes: fc.integer({ min: 1, max: DEFAULT_RP_CODEC_LIMITS.maxDatagramBytes }),
  maxFragments: fc.integer({ min: 1, max: DEFAULT_RP_CODEC_LIMITS.maxFragments }),
})
const tagged = <T extends RpMessageType, R>(type: T, a: fc.Arbitrary<R>) =>
  a.map((r) => ({ type, ...r }) as Extract<RpMessage, { type: T }>)

const ARBITRARY: { [T in RpMessageType]: fc.Arbitrary<Extract<RpMessage, { type: T }>> } = {
  register: tagged('register', fc.record({ topics, leaseMs: u32, resume: fc.boolean() })),
  heartbeat: tagged('heartbeat', fc.record({ seq: u64 })),
  leave: tagged('leave', fc.record({ topics })),
  publish: tagged(
    'publish',
    fc.record({
      id,
      topic: name(20),
      class: cls,
      data: payload,
      quorum: fc.boolean(),
      surplus: u32,
      signature,
    }),
  ),
  ack: tagged('ack', fc.record({ ids, heartbeat: u64, known: fc.boolean(), sent: u64 })),
  registered: tagged(
    'registered',
    fc.record({ topics, leaseMs: u32, groups: fc.array(group, { maxLength: 3 }) }),
  ),
  deliver: tagged(
    'deliver',
    fc.record({
      id,
      topic: name(20),
      class: cls,
      data: payload,
      publisher: text(20),
      quorum: fc.boolean(),
      signature,
    }),
  ),
  quorum: tagged('quorum', fc.record({ id, count: u32, members: u32 })),
  hello: tagged(
    'hello',
    fc.record({
      probe: double,
      echo: double,
      echoDelay: double,
      states: fc.array(
        fc.record({
          origin: name(20),
          seq: u64,
          links: fc.array(fc.record({ peer: name(20), costUs: u32 }), { maxLength: 4 }),
          counts: fc.array(fc.record({ topic: text(20), members: u32 }), { maxLength: 4 }),
        }),
        { maxLength: 4 },
      ),
      sent: u64,
    }),
  ),
  data: tagged(
    'data',
    fc.record({
      id,
      topic: name(20),
      class: cls,
      data: payload,
      originRp: name(20),
      publisher: text(20),
      quorum: fc.boolean(),
      surplus: u32,
      signature,
    }),
  ),
  delivered: tagged(
    'delivered',
    fc.record({ counts: fc.array(fc.record({ id, count: u32 }), { maxLength: 6 }) }),
  ),
  digest: tagged('digest', fc.record({ ids })),
  nack: tagged('nack', fc.record({ ids, recent: u32, upto: u64 })),
  'mcast-group': tagged('mcast-group', fc.record({ group })),
  'mcast-nack': tagged(
    'mcast-nack',
    fc.record({
      topic: name(20),
      entries: fc.array(
        fc.record({
          seq: positive,
          fragments: fc.array(fc.nat({ max: DEFAULT_RP_CODEC_LIMITS.maxFragments - 1 }), {
            maxLength: 8,
          }),
        }),
        { maxLength: 8 },
      ),
    }),
  ),
  'mcast-gone': tagged(
    'mcast-gone',
    fc.record({ topic: name(20), seqs: fc.array(u32, { maxLength: 8 }) }),
  ),
  'mcast-probe': tagged(
    'mcast-probe',
    fc.record({
      topic: name(20),
      nonce: fc.uint8Array({ minLength: MCAST_NONCE_BYTES, maxLength: MCAST_NONCE_BYTES }),
    }),
  ),
  'mcast-probe-result': tagged(
    'mcast-probe-result',
    fc.record({ topic: name(20), reaches: fc.boolean() }),
  ),
  'mcast-datagram': tagged(
    'mcast-datagram',
    fc.record({
      datagram: fc.uint8Array({
        minLength: 1,
        maxLength: DEFAULT_RP_CODEC_LIMITS.maxDatagramBytes,
      }),
    }),
  ),
}

// ---- the checks --------------------------------------------------------------------------

describe('rp codec against rp.proto', () => {
  it('rp.proto declares exactly the message types the codec speaks', () => {
    const generated = Object.keys(pb).sort()
    const nested = Object.values(NESTED).flatMap((fields) => Object.values(fields))
    expect(generated).toEqual([...new Set(['Frame', ...Object.values(BODY), ...nested])].sort())
    const frameFields = Object.keys(pb.Frame.decode(new Uint8Array(0)))
    // Unset oneof members decode as absent; the frame's only singular field is the version.
    expect(frameFields).toEqual(['version'])
  })

  for (const type of Object.keys(ARBITRARY) as RpMessageType[]) {
    it(`${type}: same fields and the same bytes both ways`, () => {
      fc.assert(
        fc.property(ARBITRARY[type] as fc.Arbitrary<RpMessage>, (m) => {
          const ours = encodeRpMessage(m)
          // our encoder -> the schema's decoder: the same fields
          const seen = pb.Frame.decode(ours)
          expect(fromProto(seen)).toEqual(fromProto(protoFrame(m)))
          // the schema's encoder -> our decoder: the same message
          const theirs = pb.Frame.encode(protoFrame(m))
          expect(decodeRpMessage(theirs)).toEqual(m)
          // Both write fields in number order and leave defaults out: the same bytes.
          expect(ours).toEqual(theirs)
        }),
        { numRuns: 200 },
      )
    })
  }

  it('refuses, with DecodeError, what the schema allows but the protocol does not', () => {
    const blank = new Uint8Array(0)
    const refused: Array<[string, object]> = [
      ['publish without an id', { publish: { topic: 't', id: blank } }],
      ['deliver without a topic', { deliver: { id: Uint8Array.of(1), topic: '' } }],
      ['data without an origin RP', { data: { id: Uint8Array.of(1), topic: 't', originRp: '' } }],
      ['quorum without an id', { quorum: { id: blank } }],
      ['a link state without an origin', { hello: { states: [{ origin: '' }] } }],
      ['a link without a peer', { hello: { states: [{ origin: 'a', links: [{ peer: '' }] }] } }],
      ['a delivered count without an id', { delivered: { counts: [{ id: blank }] } }],
      [
        'a signature over 64 bytes',
        { deliver: { id: Uint8Array.of(1), topic: 't', signature: new Uint8Array(65) } },
      ],
      ['an unknown artifact class', { publish: { id: Uint8Array.of(1), topic: 't', class: 2 } }],
      ['version 2', { version: 2, heartbeat: {} }],
      ['a frame without a body', {}],
    ]
    for (const [what, frame] of refused) {
      const bytes = pb.Frame.encode(fillDefaults({ version: 1, ...frame }))
      expect(() => decodeRpMessage(bytes), what).toThrow(DecodeError)
    }
  })
})

/** Completes a partial frame with the generated defaults so that protons can encode it. */
function fillDefaults(frame: Record<string, unknown>): Record<string, unknown> {
  const fill = (message: string, v: Record<string, unknown>): Record<string, unknown> => {
    const out = { ...pb[message].decode(new Uint8Array(0)), ...v }
    for (const [key, nested] of Object.entries(NESTED[message] ?? {})) {
      out[key] = ((out[key] ?? []) as Record<string, unknown>[]).map((e) => fill(nested, e))
    }
    return out
  }
  const out: Record<string, unknown> = { version: frame.version }
  for (const [type, message] of Object.entries(BODY)) {
    if (frame[type] !== undefined) out[type] = fill(message, frame[type] as Record<string, unknown>)
  }
  return out
}
