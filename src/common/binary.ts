import { DecodeError } from './errors.ts'

/**
 * A growable little-endian byte writer for this project's compact binary frames
 * (flooding, UDP datagrams). Protobuf frames use protons-runtime instead.
 */
export class ByteWriter {
  private buf: Uint8Array
  private view: DataView
  private pos = 0

  constructor(initialCapacity = 64) {
    this.buf = new Uint8Array(initialCapacity)
    this.view = new DataView(this.buf.buffer)
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos
  }

  /** Writes one byte. */
  u8(v: number): this {
    this.reserve(1)
    this.buf[this.pos++] = v
    return this
  }

  /** Writes a 16-bit unsigned integer. */
  u16(v: number): this {
    this.reserve(2)
    this.view.setUint16(this.pos, v, true)
    this.pos += 2
    return this
  }

  /** Writes a 32-bit unsigned integer. */
  u32(v: number): this {
    this.reserve(4)
    this.view.setUint32(this.pos, v, true)
    this.pos += 4
    return this
  }

  /** Writes a 64-bit unsigned integer. */
  u64(v: bigint): this {
    this.reserve(8)
    this.view.setBigUint64(this.pos, v, true)
    this.pos += 8
    return this
  }

  /** Writes an unsigned LEB128 varint (up to 2^53 - 1). */
  varint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`)
    while (v >= 0x80) {
      this.u8((v % 0x80) | 0x80)
      v = Math.floor(v / 0x80)
    }
    return this.u8(v)
  }

  /** Writes raw bytes. */
  raw(bytes: Uint8Array): this {
    this.reserve(bytes.length)
    this.buf.set(bytes, this.pos)
    this.pos += bytes.length
    return this
  }

  /** Writes a varint length followed by the bytes. */
  bytes(bytes: Uint8Array): this {
    return this.varint(bytes.length).raw(bytes)
  }

  /** Writes a varint length followed by the UTF-8 string. */
  string(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8'))
  }

  /** The bytes written, as a view of the internal buffer. */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos)
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n))
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }
}

/**
 * Reads what {@link ByteWriter} wrote. Every read is bounds-checked and throws
 * {@link DecodeError} on truncated or oversized input, never a RangeError.
 */
export class ByteReader {
  private readonly buf: Uint8Array
  private readonly view: DataView
  private pos = 0

  constructor(buf: Uint8Array) {
    this.buf = buf
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.buf.length - this.pos
  }

  /** Reads one byte. */
  u8(): number {
    this.need(1)
    return this.buf[this.pos++]
  }

  /** Reads a 16-bit unsigned integer. */
  u16(): number {
    this.need(2)
    const v = this.view.getUint16(this.pos, true)
    this.pos += 2
    return v
  }

  /** Reads a 32-bit unsigned integer. */
  u32(): number {
    this.need(4)
    const v = this.view.getUint32(this.pos, true)
    this.pos += 4
    return v
  }

  /** Reads a 64-bit unsigned integer. */
  u64(): bigint {
    this.need(8)
    const v = this.view.getBigUint64(this.pos, true)
    this.pos += 8
    return v
  }

  /** Reads a varint; rejects values above `max`. */
  varint(max = Number.MAX_SAFE_INTEGER): number {
    let result = 0
    let scale = 1
    for (let i = 0; i < 8; i++) {
      const b = this.u8()
      result += (b & 0x7f) * scale
      if ((b & 0x80) === 0) {
        if (result > max) throw new DecodeError(`varint ${result} exceeds limit ${max}`)
        return result
      }
      scale *= 0x80
    }
    throw new DecodeError('varint too long')
  }

  /** Reads `n` raw bytes (a view, not a copy). */
  raw(n: number): Uint8Array {
    this.need(n)
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  /** Reads a varint length (at most `maxLength`) and that many bytes. */
  bytes(maxLength: number): Uint8Array {
    return this.raw(this.varint(maxLength))
  }

  /** Reads a length-prefixed UTF-8 string of at most `maxLength` bytes. */
  string(maxLength: number): string {
    const b = this.bytes(maxLength)
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8')
  }

  /** Throws unless every byte was read. */
  end(): void {
    if (this.remaining !== 0) throw new DecodeError(`${this.remaining} trailing bytes`)
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new DecodeError(
        `truncated: need ${n} bytes at offset ${this.pos} of ${this.buf.length}`,
      )
    }
  }
}
