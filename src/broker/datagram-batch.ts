import { DecodeError } from '../common/errors.ts'

/**
 * Many datagrams with their peer addresses packed in one ArrayBuffer, so a UDP thread and
 * the main thread exchange a whole event-loop turn's worth in one transferable message
 * instead of one object per datagram. A record: family (4 or 6), the address (IPv4: 4
 * bytes, big-endian; IPv6: a length byte and its text), the port (u16), the datagram's
 * length (u16) and its bytes.
 */

/** An IPv4 address "a.b.c.d" as an unsigned 32-bit number; -1 when it is not one. */
export function ipv4ToNumber(address: string): number {
  let value = 0
  let part = 0
  let digits = 0
  let dots = 0
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i)
    if (c === 46) {
      if (digits === 0 || part > 255) return -1
      value = value * 256 + part
      part = 0
      digits = 0
      dots++
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48)
      digits++
    } else return -1
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1
  return value * 256 + part
}

/** The dotted text of an IPv4 address given as a number. */
export function numberToIpv4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`
}

/** Bytes a record of `frameLength` bytes takes at most (an IPv6 text address of 45 characters). */
export const MAX_RECORD_OVERHEAD = 1 + 1 + 45 + 2 + 2

/** Appends datagram records to a buffer of fixed capacity. */
export class DatagramBatchWriter {
  private readonly capacity: number
  private readonly buffer: Uint8Array
  private readonly view: DataView
  private length = 0
  private records = 0

  constructor(capacity: number) {
    this.capacity = capacity
    this.buffer = new Uint8Array(capacity)
    this.view = new DataView(this.buffer.buffer)
  }

  /** Records written since the last {@link take}. */
  get count(): number {
    return this.records
  }

  /** Bytes written since the last {@link take}. */
  get bytes(): number {
    return this.length
  }

  /**
   * Appends one datagram from or to `address` (`ip` is its {@link ipv4ToNumber}, -1 for
   * IPv6) and `port`; false when it does not fit (take the batch, then add again).
   */
  add(ip: number, address: string, port: number, frame: Uint8Array): boolean {
    const addressBytes = ip >= 0 ? 4 : 1 + address.length
    const need = 1 + addressBytes + 4 + frame.length
    if (this.length + need > this.capacity) return false
    let at = this.length
    if (ip >= 0) {
      this.buffer[at++] = 4
      this.view.setUint32(at, ip)
      at += 4
    } else {
      this.buffer[at++] = 6
      this.buffer[at++] = address.length
      for (let i = 0; i < address.length; i++) this.buffer[at++] = address.charCodeAt(i)
    }
    this.view.setUint16(at, port)
    this.view.setUint16(at + 2, frame.length)
    this.buffer.set(frame, at + 4)
    this.length = at + 4 + frame.length
    this.records++
    return true
  }

  /** A copy of the records written so far, as an ArrayBuffer to transfer; the writer starts over. */
  take(): ArrayBuffer | undefined {
    if (this.records === 0) return undefined
    const out = this.buffer.buffer.slice(0, this.length) as ArrayBuffer
    this.length = 0
    this.records = 0
    return out
  }
}

/** Receives one record: `ip` is -1 for an IPv6 `address` (its text); `frame` views the batch. */
export type DatagramRecordHandler = (
  ip: number,
  address: string,
  port: number,
  frame: Uint8Array,
) => void

/**
 * Calls `fn` for every record of `batch` in order; returns how many. Throws
 * {@link DecodeError} on a truncated or malformed record (batches come from this process's
 * own threads).
 */
export function readDatagramBatch(batch: ArrayBuffer, fn: DatagramRecordHandler): number {
  let n = 0
  readDatagramRecords(batch, 0, Number.POSITIVE_INFINITY, (ip, address, port, frame) => {
    n++
    fn(ip, address, port, frame)
  })
  return n
}

/**
 * Calls `fn` for at most `max` records of `batch` from byte offset `at` (a record's start);
 * returns the offset after the last one read, to go on from later.
 */
export function readDatagramRecords(
  batch: ArrayBuffer,
  at: number,
  max: number,
  fn: DatagramRecordHandler,
): number {
  const bytes = new Uint8Array(batch)
  const view = new DataView(batch)
  let n = 0
  while (at < bytes.length && n < max) {
    const family = bytes[at++]
    let ip = -1
    let address = ''
    if (family === 4) {
      if (at + 4 > bytes.length) throw new DecodeError('truncated datagram record')
      ip = view.getUint32(at)
      at += 4
    } else if (family === 6) {
      const len = bytes[at++]
      if (len === undefined || at + len > bytes.length)
        throw new DecodeError('truncated datagram record')
      address = String.fromCharCode(...bytes.subarray(at, at + len))
      at += len
    } else throw new DecodeError(`datagram record of family ${family}`)
    if (at + 4 > bytes.length) throw new DecodeError('truncated datagram record')
    const port = view.getUint16(at)
    const len = view.getUint16(at + 2)
    at += 4
    if (at + len > bytes.length) throw new DecodeError('truncated datagram record')
    n++
    fn(ip, address, port, bytes.subarray(at, at + len))
    at += len
  }
  return at
}
