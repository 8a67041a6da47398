import { describe, expect, it } from 'vitest'
import { contentMessageId } from '../../src/common/message-id.ts'
import { resolveGossipParams } from '../../src/gossip/params.ts'
import {
  decodeRpc,
  emptyControl,
  encodeRpc,
  type Rpc,
  type RpcLimits,
  type RpcMessage,
} from '../../src/gossip/rpc-codec.ts'
import { gossipStrategy } from '../../src/sim/gossip-strategy.ts'
import { runScenario, type Scenario } from '../../src/sim/scenario.ts'
import { sharedRpcCodec } from '../../src/sim/shared-codec.ts'

const LIMITS: RpcLimits = resolveGossipParams().rpcLimits

function message(fill: number, bytes = 4096): RpcMessage {
  return { topic: 't', data: new Uint8Array(bytes).fill(fill) }
}

function only(m: RpcMessage): Rpc {
  return { subscriptions: [], messages: [m] }
}

describe('shared RPC codec', () => {
  it('encodes a message once however often it is sent, with the bytes encodeRpc gives', () => {
    const codec = sharedRpcCodec()
    const m = message(1)
    const a = codec.encodeRpc(only(m))
    expect(codec.encodeRpc(only(m))).toBe(a)
    expect(a).toEqual(encodeRpc(only(m)))
    // Another message with the same content is another frame.
    expect(codec.encodeRpc(only(message(1)))).not.toBe(a)
  })

  it('relays a received message in the frame it arrived in', () => {
    const codec = sharedRpcCodec()
    const frame = encodeRpc(only(message(2)))
    const rpc = codec.decodeRpc(frame, LIMITS, { fields: 0 })
    // Every receiver of that frame gets the same decoding, and relays the same buffer.
    expect(codec.decodeRpc(frame, { ...LIMITS }, { fields: 0 })).toBe(rpc)
    const relayed = codec.encodeRpc(only(rpc.messages[0]))
    expect(relayed).toBe(frame)
    expect(rpc.messages[0].data?.buffer).toBe(frame.buffer)
  })

  it('does not relay a received frame that re-encodes to other bytes', () => {
    const codec = sharedRpcCodec()
    const clean = encodeRpc(only(message(3)))
    // An unknown field after the message: decodes to the same RPC, but is two bytes longer.
    const padded = new Uint8Array([...clean, (15 << 3) | 0, 1])
    const rpc = codec.decodeRpc(padded, LIMITS, { fields: 0 })
    expect(rpc).toEqual(decodeRpc(clean, LIMITS, { fields: 0 }))
    const relayed = codec.encodeRpc(only(rpc.messages[0]))
    expect(relayed).not.toBe(padded)
    expect(relayed).toEqual(clean)
  })

  it('encodes frames that carry more than one message, or control, anew each time', () => {
    const codec = sharedRpcCodec()
    const m = message(4)
    const graft = { ...emptyControl(), graft: [{ topicID: 't' }] }
    const withControl: Rpc = { subscriptions: [], messages: [m], control: graft }
    const a = codec.encodeRpc(withControl)
    expect(codec.encodeRpc(withControl)).not.toBe(a)
    expect(a).toEqual(encodeRpc(withControl))
    const two: Rpc = { subscriptions: [], messages: [m, message(5)] }
    expect(codec.encodeRpc(two)).toEqual(encodeRpc(two))
    expect(codec.encodeRpc(two)).not.toBe(codec.encodeRpc(two))
  })

  it('gives identical heartbeat IHAVEs one frame, with the bytes encodeRpc gives', () => {
    const codec = sharedRpcCodec()
    const ihave = (fill: number): Rpc => ({
      subscriptions: [],
      messages: [],
      control: {
        ...emptyControl(),
        ihave: [{ topicID: 't', messageIDs: [new Uint8Array(20).fill(fill)] }],
      },
    })
    const a = codec.encodeRpc(ihave(7))
    // Equal ids in other arrays (each peer's IHAVE is its own list): the same frame.
    expect(codec.encodeRpc(ihave(7))).toBe(a)
    expect(a).toEqual(encodeRpc(ihave(7)))
    const b = codec.encodeRpc(ihave(8))
    expect(b).not.toBe(a)
    expect(b).toEqual(encodeRpc(ihave(8)))
    // One decoding for all its receivers.
    const rpc = codec.decodeRpc(a, LIMITS, { fields: 0 })
    expect(codec.decodeRpc(a, LIMITS, { fields: 0 })).toBe(rpc)
    expect(rpc).toEqual(decodeRpc(a, LIMITS, { fields: 0 }))
  })

  it('gives a control frame the frame of a recent one with the same bytes', () => {
    const codec = sharedRpcCodec()
    const graft = (topic: string): Rpc => {
      const control = { ...emptyControl(), graft: [{ topicID: topic }] }
      return { subscriptions: [], messages: [], control }
    }
    const a = codec.encodeRpc(graft('t'))
    const b = codec.encodeRpc(graft('u'))
    expect(b).not.toBe(a)
    expect(codec.encodeRpc(graft('t'))).toBe(a)
    expect(codec.encodeRpc(graft('u'))).toBe(b)
    expect(a).toEqual(encodeRpc(graft('t')))
    // Past the last few control frames, the same bytes are a new frame.
    for (let i = 0; i < 16; i++) codec.encodeRpc(graft(`v${i}`))
    const again = codec.encodeRpc(graft('t'))
    expect(again).not.toBe(a)
    expect(again).toEqual(a)
  })

  it('computes a message id once per message', () => {
    const codec = sharedRpcCodec()
    let calls = 0
    const id = codec.messageId((m) => {
      calls++
      return contentMessageId(m.topic, m.data ?? new Uint8Array(0))
    })
    const m = message(6)
    expect(id(m)).toEqual(contentMessageId('t', m.data!))
    expect(id(m)).toBe(id(m))
    expect(calls).toBe(1)
    id(message(6))
    expect(calls).toBe(2)
  })

  it('leaves a gossip run exactly as the unshared codec runs it', async () => {
    const scenario: Scenario = {
      name: 'codec',
      description: 'shared codec against the plain one',
      nodes: 60,
      topology: 'random-regular',
      degree: 12,
      latencyMs: 15,
      bandwidth: 20e6,
      loss: 0.01,
      messages: 4,
      messageBytes: 20_000,
      class: 'consensus',
      intervalMs: 700,
      warmupMs: 3_000,
      drainMs: 3_000,
      seed: 7,
    }
    for (const profile of ['stock', 'optimized'] as const) {
      const shared = await runScenario(scenario, gossipStrategy(profile, 'shared'))
      const plain = await runScenario(scenario, gossipStrategy(profile, 'plain', {}, false))
      expect(shared.summary.deliveryRatio).toBeGreaterThan(0.9)
      expect(shared.summary).toEqual(plain.summary)
      expect(shared.events).toBe(plain.events)
    }
  })
})
