import { RPC } from '@libp2p/gossipsub/message'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DecodeError } from '../../src/common/errors.ts'
import {
  DEFAULT_RPC_LIMITS,
  decodeRpc,
  emptyControl,
  encodeRpc,
  idAt,
  idCountOf,
  type Rpc,
  signingBytes,
} from '../../src/gossip/rpc-codec.ts'

const bytes = (max = 40) => fc.uint8Array({ maxLength: max })
const topic = fc.string({ maxLength: 20 })

const rpcArb: fc.Arbitrary<Rpc> = fc.record({
  subscriptions: fc.array(fc.record({ subscribe: fc.boolean(), topic }), { maxLength: 4 }),
  messages: fc.array(
    fc.record(
      {
        from: bytes(),
        data: bytes(200),
        seqno: bytes(8),
        topic: topic.filter((t) => t !== ''),
        signature: bytes(64),
        key: bytes(36),
      },
      { requiredKeys: ['topic'] },
    ),
    { maxLength: 4 },
  ),
  control: fc.option(
    fc.record({
      ihave: fc.array(
        fc.record({ topicID: topic, messageIDs: fc.array(bytes(), { maxLength: 5 }) }),
        {
          maxLength: 3,
        },
      ),
      iwant: fc.array(fc.record({ messageIDs: fc.array(bytes(), { maxLength: 5 }) }), {
        maxLength: 3,
      }),
      graft: fc.array(fc.record({ topicID: topic }), { maxLength: 3 }),
      prune: fc.array(
        fc.record(
          {
            topicID: topic,
            peers: fc.array(fc.record({ peerID: bytes(), signedPeerRecord: bytes() }), {
              maxLength: 3,
            }),
            backoff: fc.nat({ max: 1_000_000 }),
          },
          { requiredKeys: ['topicID', 'peers'] },
        ),
        { maxLength: 3 },
      ),
      idontwant: fc.array(fc.record({ messageIDs: fc.array(bytes(), { maxLength: 5 }) }), {
        maxLength: 3,
      }),
    }),
    { nil: undefined },
  ),
}) as fc.Arbitrary<Rpc>

/** Drops empty control (it is not encoded) so that roundtrips compare equal. */
function normalise(rpc: Rpc): Rpc {
  const c = rpc.control
  const empty =
    c === undefined ||
    c.ihave.length + c.iwant.length + c.graft.length + c.prune.length + c.idontwant.length === 0
  return {
    subscriptions: rpc.subscriptions,
    messages: rpc.messages,
    ...(empty ? {} : { control: c }),
  }
}

function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? Array.from(x) : x)))
}

describe('gossipsub RPC codec', () => {
  it('roundtrips every RPC', () => {
    fc.assert(
      fc.property(rpcArb, (rpc) => {
        const decoded = decodeRpc(encodeRpc(rpc))
        expect(plain(decoded)).toEqual(plain(normalise(rpc)))
      }),
    )
  })

  it('keeps a topic that starts with U+FEFF apart from the one without it', () => {
    // TextDecoder strips a leading byte-order mark unless told not to.
    const subscriptions = ['\ufeffvotes', 'votes'].map((topic) => ({ subscribe: true, topic }))
    expect(decodeRpc(encodeRpc({ subscriptions, messages: [] })).subscriptions).toEqual(
      subscriptions,
    )
  })

  it('skips fields a newer peer adds', () => {
    fc.assert(
      fc.property(rpcArb, (rpc) => {
        // Field 15 (bytes) and field 14 (varint) are unknown to this schema.
        const extra = Uint8Array.from([0x7a, 0x02, 0xaa, 0xbb, 0x70, 0x2a])
        const frame = encodeRpc(rpc)
        expect(normalise(decodeRpc(Uint8Array.from([...frame, ...extra])))).toEqual(normalise(rpc))
      }),
    )
  })

  it('is wire-compatible with the stock gossipsub protobuf in both directions', () => {
    fc.assert(
      fc.property(rpcArb, (rpc) => {
        const ours = encodeRpc(rpc)
        const stock = RPC.decode(ours)
        expect(stock.subscriptions.map((s) => [s.subscribe, s.topic])).toEqual(
          rpc.subscriptions.map((s) => [s.subscribe, s.topic]),
        )
        expect(stock.messages.length).toBe(rpc.messages.length)
        const theirs = RPC.encode(stock)
        const back = decodeRpc(theirs)
        expect(plain(back)).toEqual(plain(normalise(rpc)))
        // Both write present fields in number order: byte for byte the same frame.
        expect(theirs).toEqual(ours)
      }),
    )
  })

  it('decodes an IDONTWANT that stock gossipsub encoded', () => {
    const id = new Uint8Array([1, 2, 3])
    const frame = RPC.encode({
      subscriptions: [],
      messages: [],
      control: { ihave: [], iwant: [], graft: [], prune: [], idontwant: [{ messageIDs: [id] }] },
    })
    expect(decodeRpc(frame).control?.idontwant[0].messageIDs[0]).toEqual(id)
  })

  it('never throws anything but DecodeError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (buf) => {
        try {
          decodeRpc(buf)
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
        }
      }),
      { numRuns: 3000 },
    )
  })

  it('never throws anything but DecodeError on mutated valid frames', () => {
    fc.assert(
      fc.property(rpcArb, fc.nat(), fc.nat({ max: 255 }), (rpc, pos, value) => {
        const frame = encodeRpc(rpc)
        if (frame.length === 0) return
        frame[pos % frame.length] = value
        try {
          decodeRpc(frame)
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('reads ids one at a time exactly as the whole list, on valid and mutated frames', () => {
    fc.assert(
      fc.property(rpcArb, fc.nat(), fc.nat({ max: 255 }), (rpc, pos, value) => {
        const frame = encodeRpc(rpc)
        if (frame.length > 0) frame[pos % frame.length] = value
        let decoded: Rpc
        try {
          decoded = decodeRpc(frame)
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
          return
        }
        const c = decoded.control
        if (c === undefined) return
        for (const e of [...c.ihave, ...c.iwant, ...c.idontwant]) {
          // One at a time first (nothing built yet), then the whole list.
          const one = Array.from({ length: idCountOf(e) }, (_, i) => idAt(e, i))
          expect(one).toEqual(e.messageIDs)
          expect(idCountOf(e)).toBe(e.messageIDs.length)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('reads one id of a 5,000-id entry as a view into the frame, and the entry as a plain one', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => new Uint8Array([i >> 8, i & 255, 7]))
    const frame = encodeRpc({
      subscriptions: [],
      messages: [],
      control: { ...emptyControl(), ihave: [{ topicID: 't', messageIDs: ids }] },
    })
    const ih = decodeRpc(frame).control!.ihave[0]
    expect(idCountOf(ih)).toBe(5000)
    const id = idAt(ih, 4321)
    expect(id).toEqual(ids[4321])
    // A view into the frame, not a copy.
    expect(id.buffer).toBe(frame.buffer)
    // The entry still reads, compares and sets as a plain one.
    expect(ih).toEqual({ topicID: 't', messageIDs: ids })
    ih.messageIDs = ids.slice(0, 2)
    expect(idCountOf(ih)).toBe(2)
    expect(idAt(ih, 1)).toEqual(ids[1])
  })

  it('rejects frames over each limit', () => {
    const ids = Array.from({ length: 11 }, (_, i) => new Uint8Array([i]))
    const limits = {
      ...DEFAULT_RPC_LIMITS,
      maxIHaveIds: 10,
      maxIWantIds: 10,
      maxIDontWantIds: 10,
      maxSubscriptions: 10,
      maxMessages: 10,
      maxControlTopics: 10,
    }
    const withControl = (c: Partial<ReturnType<typeof emptyControl>>): Rpc => ({
      subscriptions: [],
      messages: [],
      control: { ...emptyControl(), ...c },
    })
    const cases: Rpc[] = [
      withControl({ ihave: [{ topicID: 't', messageIDs: ids }] }),
      withControl({ iwant: [{ messageIDs: ids }] }),
      withControl({ idontwant: [{ messageIDs: ids.slice(0, 6) }, { messageIDs: ids.slice(6) }] }),
      withControl({ graft: ids.map((_, i) => ({ topicID: `t${i}` })) }),
      {
        subscriptions: ids.map((_, i) => ({ subscribe: true, topic: `t${i}` })),
        messages: [],
      },
      { subscriptions: [], messages: ids.map((d) => ({ topic: 't', data: d })) },
    ]
    for (const rpc of cases) {
      const frame = encodeRpc(rpc)
      expect(() => decodeRpc(frame, limits)).toThrow(DecodeError)
      expect(() => decodeRpc(frame)).not.toThrow()
    }
    const big: Rpc = { subscriptions: [], messages: [{ topic: 't', data: new Uint8Array(2000) }] }
    expect(() => decodeRpc(encodeRpc(big), { ...limits, maxFrameBytes: 1000 })).toThrow(DecodeError)
  })

  it('signs the message fields without signature and key', () => {
    const m = {
      from: new Uint8Array([1]),
      data: new Uint8Array([2]),
      seqno: new Uint8Array(8),
      topic: 't',
      signature: new Uint8Array([9]),
      key: new Uint8Array([8]),
    }
    const prefix = new TextEncoder().encode('libp2p-pubsub:')
    const signed = signingBytes(m)
    expect(signed.subarray(0, prefix.length)).toEqual(prefix)
    expect(signed.subarray(prefix.length)).toEqual(
      RPC.Message.encode({ ...m, signature: undefined, key: undefined }),
    )
  })
})
