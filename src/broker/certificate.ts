import type { KeyObject } from 'node:crypto'
import type { ByteReader, ByteWriter } from '../core/binary.ts'
import { DecodeError } from '../core/errors.ts'
import { ED25519_SIGNATURE_LENGTH, verifyEd25519Prepared } from '../crypto/ed25519.ts'

/** One server's ed25519 signature (a witness or delivery shard). */
export interface Shard {
  /** The server's index in the server list. */
  server: number
  /** Its 64-byte ed25519 signature. */
  signature: Uint8Array
}

/** Writes shards as u8 count ‖ (u8 server ‖ 64-byte signature)*. */
export function writeShards(w: ByteWriter, shards: readonly Shard[]): void {
  w.u8(shards.length)
  for (const s of shards) w.u8(s.server).raw(s.signature)
}

/** Reads what {@link writeShards} wrote; at most `maxServers` shards. */
export function readShards(r: ByteReader, maxServers: number): Shard[] {
  const k = r.u8()
  if (k > maxServers) throw new DecodeError(`${k} shards exceed ${maxServers} servers`)
  const out: Shard[] = []
  for (let i = 0; i < k; i++)
    out.push({ server: r.u8(), signature: r.raw(ED25519_SIGNATURE_LENGTH) })
  return out
}

/**
 * True when at least `threshold` DISTINCT known servers signed `input` validly. Shards from
 * unknown or repeated servers do not count (one server cannot fill a certificate alone).
 */
export function verifyCertificate(
  shards: readonly Shard[],
  input: Uint8Array,
  serverKeys: readonly KeyObject[],
  threshold: number,
): boolean {
  const seen = new Set<number>()
  for (const s of shards) {
    if (seen.has(s.server) || s.server >= serverKeys.length) continue
    if (verifyEd25519Prepared(serverKeys[s.server], input, s.signature)) seen.add(s.server)
    if (seen.size >= threshold) return true
  }
  return false
}
