import type { KeyObject } from 'node:crypto'
import type { ByteReader, ByteWriter } from '../common/binary.ts'
import { DecodeError } from '../common/errors.ts'
import { ED25519_SIGNATURE_LENGTH, verifyEd25519Prepared } from '../crypto/ed25519.ts'
import { MERKLE_HASH_LENGTH } from '../crypto/merkle.ts'
import { deliveryInput } from './signing.ts'

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

/**
 * A height certified by f+1 servers: their delivery shards on (slot, root). A batch's raise
 * may not exceed `slot + 1`, and each ordered batch takes a new slot, so a Byzantine broker
 * cannot push a client's sequence number far ahead (exhausting its sequence space). Slot 0
 * is the genesis height and needs no shards.
 */
export interface HeightCertificate {
  /** The certified slot. */
  slot: number
  /** Root of the batch delivered in that slot (absent for slot 0). */
  root?: Uint8Array
  /** The delivery shards. */
  shards: Shard[]
}

/** Writes varint slot and, when above 0, the root and the shards. */
export function writeHeight(w: ByteWriter, h: HeightCertificate): void {
  w.varint(h.slot)
  if (h.slot > 0) {
    w.raw(h.root!)
    writeShards(w, h.shards)
  }
}

/** Reads what {@link writeHeight} wrote. */
export function readHeight(r: ByteReader, maxServers: number): HeightCertificate {
  const slot = r.varint()
  if (slot === 0) return { slot, shards: [] }
  const root = r.raw(MERKLE_HASH_LENGTH)
  return { slot, root, shards: readShards(r, maxServers) }
}

/** True when `h` is genesis or carries f+1 valid delivery shards. */
export function verifyHeight(
  h: HeightCertificate,
  serverKeys: readonly KeyObject[],
  threshold: number,
): boolean {
  if (h.slot === 0) return true
  return verifyCertificate(h.shards, deliveryInput(h.slot, h.root!), serverKeys, threshold)
}
