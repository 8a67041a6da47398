import type { RpcDecoder } from '../gossip/router.ts'
import { type DecodeWork, decodeRpc, type Rpc, type RpcLimits } from '../gossip/rpc-codec.ts'

/** One frame's decoding, kept while the frame is in flight. */
interface Decoded {
  limits: RpcLimits
  rpc: Rpc
  fields: number
}

/** True when `a` and `b` set the same limits. */
function sameLimits(a: RpcLimits, b: RpcLimits): boolean {
  if (a === b) return true
  for (const k of Object.keys(a) as (keyof RpcLimits)[]) if (a[k] !== b[k]) return false
  return true
}

/**
 * A decoder that decodes a frame once however many simulated peers receive it. A router
 * encodes a message or its hello once and sends that same `Uint8Array` to every peer, so the
 * frame's identity keys the cache (a `WeakMap`: an entry goes when the frame is no longer in
 * flight). Receivers share the decoded RPC, which the router never changes, and each sees
 * the same field count in `work` as a decoding of its own would give. A frame that fails to
 * decode is decoded again by every receiver, as it would be without the cache.
 */
export function sharedRpcDecoder(): RpcDecoder {
  const cache = new WeakMap<Uint8Array, Decoded>()
  // Each router holds its own copy of its limits: equal ones map to one object, so that a
  // cached decoding is checked against the receiver's limits by identity.
  const canonical = new WeakMap<RpcLimits, RpcLimits>()
  const distinct: RpcLimits[] = []
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
  return (frame: Uint8Array, limits: RpcLimits, work: DecodeWork): Rpc => {
    const same = canonicalOf(limits)
    const hit = cache.get(frame)
    if (hit !== undefined && hit.limits === same) {
      work.fields = hit.fields
      return hit.rpc
    }
    const rpc = decodeRpc(frame, limits, work)
    cache.set(frame, { limits: same, rpc, fields: work.fields })
    return rpc
  }
}
