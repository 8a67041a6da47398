import type { MessageId } from '../common/message-id.ts'
import type { MessageIdFn } from '../gossip/index.ts'
import type { RpcDecoder, RpcEncoder } from '../gossip/router.ts'
import {
  type DecodeWork,
  decodeRpc,
  encodeRpc,
  isControlEmpty,
  isOneCopyEmpty,
  type Rpc,
  type RpcIHave,
  type RpcLimits,
  type RpcMessage,
} from '../gossip/rpc-codec.ts'

/** Control frames remembered to be given again when the same bytes are encoded. */
const RECENT_CONTROL_FRAMES = 8

/** One frame's decoding, kept while the frame is in flight. */
interface Decoded {
  limits: RpcLimits
  rpc: Rpc
  fields: number
}

/** The codec the simulated routers of one strategy share. */
export interface SharedRpcCodec {
  /** Decodes a frame once however many nodes receive it. */
  decodeRpc: RpcDecoder
  /** Encodes a message frame once however many nodes relay the message. */
  encodeRpc: RpcEncoder
  /** `msgIdFn`, computed once per decoded message instead of once per received copy. */
  messageId(msgIdFn: MessageIdFn): MessageIdFn
}

/** True when `a` and `b` set the same limits. */
function sameLimits(a: RpcLimits, b: RpcLimits): boolean {
  if (a === b) return true
  for (const k of Object.keys(a) as (keyof RpcLimits)[]) if (a[k] !== b[k]) return false
  return true
}

/** The one message of `rpc` when that is all it carries (a relayed or requested message). */
function soleMessage(rpc: Rpc): RpcMessage | undefined {
  return rpc.messages.length === 1 &&
    rpc.subscriptions.length === 0 &&
    isControlEmpty(rpc.control) &&
    isOneCopyEmpty(rpc.oneCopy)
    ? rpc.messages[0]
    : undefined
}

/** The one IHAVE entry of `rpc` when that is all it carries (heartbeat gossip to one peer). */
function soleIHave(rpc: Rpc): RpcIHave | undefined {
  const c = rpc.control
  return c !== undefined &&
    c.ihave.length === 1 &&
    c.iwant.length === 0 &&
    c.graft.length === 0 &&
    c.prune.length === 0 &&
    c.idontwant.length === 0 &&
    c.extensions === undefined &&
    rpc.messages.length === 0 &&
    rpc.subscriptions.length === 0 &&
    isOneCopyEmpty(rpc.oneCopy)
    ? c.ihave[0]
    : undefined
}

/** True when `a` and `b` list ids of the same bytes, in the same order. */
function sameIds(a: Uint8Array[], b: Uint8Array[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !sameBytes(a[i], b[i])) return false
  return true
}

/** True when `a` and `b` hold the same bytes. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * A codec that lets every simulated node share one buffer per message. Why: a router
 * relays a message by encoding it again, and a 150 KB block relayed by 13,000 nodes would
 * otherwise be 13,000 buffers of 150 KB, each hashed for its id by each receiver.
 *
 * - Decoding: a router encodes a frame once and sends that same `Uint8Array` to every
 *   peer, so the frame's identity keys the cache (a `WeakMap`: an entry goes with its
 *   frame). Receivers share the decoded RPC, which the router never changes, and each sees
 *   the same field count in `work` as a decoding of its own would give. A frame that fails
 *   to decode is decoded again by every receiver, as it would be without the cache.
 * - Encoding: a frame that carries one message and nothing else is remembered under that
 *   message object (the decoded one, shared by its receivers, or the one a router encoded).
 *   Encoding that same message alone again returns the remembered frame, which holds the
 *   bytes {@link encodeRpc} would give: a received frame is remembered only after its own
 *   encoding was checked to match it byte for byte. A message's payload is a view into its
 *   frame, so every node's message cache, send queue and events in flight hold that one
 *   buffer.
 * - Heartbeat gossip: a node sends the same IHAVE (one topic, the same ids) to each of the
 *   peers it gossips to, each in a frame of its own. A frame that carries one IHAVE entry and
 *   nothing else is compared with the last such frame encoded (topic and ids byte for byte),
 *   and is that frame when they match: encoded once, and decoded once for all its receivers.
 * - Other control frames (no message): a GRAFT, a PRUNE in reply, an IWANT or IDONTWANT of a
 *   message often holds the same bytes as one of the last few encoded (by this node or
 *   another): it is then that earlier frame, decoded once for all their receivers.
 * - Message ids: remembered per message object, so a content id (a hash of the payload) is
 *   computed once per message, not once per copy received.
 */
export function sharedRpcCodec(): SharedRpcCodec {
  const decoded = new WeakMap<Uint8Array, Decoded>()
  const frameOf = new WeakMap<RpcMessage, Uint8Array>()
  // Each router holds its own copy of its limits: equal ones map to one object, so that a
  // cached decoding is checked against the receiver's limits by identity.
  const canonical = new WeakMap<RpcLimits, RpcLimits>()
  const distinct: RpcLimits[] = []
  // The last frame that carried one IHAVE entry alone, and that entry.
  let lastIHave: { entry: RpcIHave; frame: Uint8Array } | undefined
  // The last control frames encoded (a ring), and where the next one goes.
  const recent: Uint8Array[] = []
  let nextRecent = 0
  /** `frame`, or an earlier recent control frame that holds the same bytes. */
  const recentFrame = (frame: Uint8Array): Uint8Array => {
    for (let i = 0; i < recent.length; i++) if (sameBytes(recent[i], frame)) return recent[i]
    recent[nextRecent] = frame
    nextRecent = (nextRecent + 1) % RECENT_CONTROL_FRAMES
    return frame
  }
  const canonicalOf = (limits: RpcLimits): RpcLimits => {
    let c = canonical.get(limits)
    if (c === undefined) {
      c = distinct.find((d) => sameLimits(d, limits))
      if (c === undefined) {
        c = limits
        distinct.push(c)
      }
      canonical.set(limits, c)
    }
    return c
  }
  return {
    decodeRpc: (frame: Uint8Array, limits: RpcLimits, work: DecodeWork): Rpc => {
      const same = canonicalOf(limits)
      const hit = decoded.get(frame)
      if (hit !== undefined && hit.limits === same) {
        work.fields = hit.fields
        return hit.rpc
      }
      const rpc = decodeRpc(frame, limits, work)
      decoded.set(frame, { limits: same, rpc, fields: work.fields })
      const m = soleMessage(rpc)
      if (m !== undefined && sameBytes(encodeRpc(rpc), frame)) frameOf.set(m, frame)
      return rpc
    },
    encodeRpc: (rpc: Rpc): Uint8Array => {
      const m = soleMessage(rpc)
      if (m === undefined) {
        if (rpc.messages.length > 0) return encodeRpc(rpc)
        const ihave = soleIHave(rpc)
        if (ihave === undefined) return recentFrame(encodeRpc(rpc))
        const last = lastIHave
        if (
          last !== undefined &&
          last.entry.topicID === ihave.topicID &&
          sameIds(last.entry.messageIDs, ihave.messageIDs)
        ) {
          return last.frame
        }
        const frame = encodeRpc(rpc)
        lastIHave = { entry: { topicID: ihave.topicID, messageIDs: [...ihave.messageIDs] }, frame }
        return frame
      }
      let frame = frameOf.get(m)
      if (frame === undefined) {
        frame = encodeRpc(rpc)
        frameOf.set(m, frame)
      }
      return frame
    },
    messageId: (msgIdFn: MessageIdFn): MessageIdFn => {
      const ids = new WeakMap<RpcMessage, MessageId>()
      return (m) => {
        let id = ids.get(m)
        if (id === undefined) {
          id = msgIdFn(m)
          ids.set(m, id)
        }
        return id
      }
    },
  }
}
