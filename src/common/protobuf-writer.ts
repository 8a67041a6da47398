/**
 * A protobuf writer with protons-runtime's chained calls (`w.uint32(tag).bytes(b)`, `fork` /
 * `ldelim` around a sub-message) that writes straight into one reused buffer, so that an
 * encoding allocates only its result. protons-runtime's writer allocates an object per
 * field and per sub-message: a simulated node sends a control frame per peer it grafts or
 * gossips to at every heartbeat, and those objects were a seventh of a large simulation's
 * garbage.
 *
 * Output is canonical (every varint in its shortest form), byte for byte what protons-runtime
 * writes: a sub-message's length is written once its end is known, in one byte reserved at
 * `fork`, its body moved along when the length needs more.
 */
export class ProtobufWriter {
  private buf: Uint8Array
  private pos = 0
  /** Positions of the open sub-messages' reserved length bytes (the first `depth` entries). */
  private readonly open: number[] = []
  private depth = 0

  constructor(initialBytes = 1024) {
    this.buf = new Uint8Array(Math.min(initialBytes, KEPT_BYTES))
  }

  /** Starts a new encoding (forgets the last one). */
  reset(): this {
    this.pos = 0
    this.depth = 0
    return this
  }

  /** A varint of an unsigned 32-bit value. */
  uint32(value: number): this {
    this.room(5)
    let v = value >>> 0
    const buf = this.buf
    while (v > 127) {
      buf[this.pos++] = (v & 127) | 128
      v >>>= 7
    }
    buf[this.pos++] = v
    return this
  }

  /** A varint of a non-negative integer up to 2^53 − 1. */
  uint64Number(value: number): this {
    this.room(10)
    let v = value
    const buf = this.buf
    while (v > 127) {
      buf[this.pos++] = (v % 128) | 128
      v = Math.floor(v / 128)
    }
    buf[this.pos++] = v
    return this
  }

  /** A bool (a one-byte varint). */
  bool(value: boolean): this {
    this.room(1)
    this.buf[this.pos++] = value ? 1 : 0
    return this
  }

  /** Length-delimited bytes. */
  bytes(value: Uint8Array): this {
    this.uint32(value.length)
    this.room(value.length)
    this.buf.set(value, this.pos)
    this.pos += value.length
    return this
  }

  /** A length-delimited UTF-8 string. */
  string(value: string): this {
    this.fork()
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    this.room(3 * value.length)
    const buf = this.buf
    const start = this.pos
    // ASCII (topics usually are) byte by byte; anything else through the encoder.
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i)
      if (c > 127) {
        this.pos = start + UTF8.encodeInto(value, buf.subarray(start)).written
        return this.ldelim()
      }
      buf[this.pos++] = c
    }
    return this.ldelim()
  }

  /** Opens a sub-message: what follows, up to {@link ldelim}, is written as one length-delimited field. */
  fork(): this {
    this.room(1)
    // Written by index: the list keeps its room from one encoding to the next.
    this.open[this.depth++] = this.pos
    this.pos++
    return this
  }

  /** Closes the innermost sub-message: writes its length before it. */
  ldelim(): this {
    if (this.depth === 0) throw new RangeError('ldelim without fork')
    const at = this.open[--this.depth]
    const length = this.pos - at - 1
    const extra = varintBytes(length) - 1
    if (extra > 0) {
      this.room(extra)
      this.buf.copyWithin(at + 1 + extra, at + 1, this.pos)
      this.pos += extra
    }
    let v = length
    let i = at
    while (v > 127) {
      this.buf[i++] = (v & 127) | 128
      v >>>= 7
    }
    this.buf[i] = v
    return this
  }

  /** The encoding so far, copied out (the writer's buffer is reused). */
  finish(): Uint8Array {
    if (this.depth > 0) throw new RangeError('sub-message not closed')
    const out = this.buf.slice(0, this.pos)
    // A large message's room is not kept for the small frames that follow.
    if (this.buf.length > KEPT_BYTES) this.buf = new Uint8Array(KEPT_BYTES)
    return out
  }

  /** Makes room for `n` more bytes. */
  private room(n: number): void {
    const need = this.pos + n
    if (need <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < need) size *= 2
    const grown = new Uint8Array(size)
    grown.set(this.buf.subarray(0, this.pos))
    this.buf = grown
  }
}

const UTF8 = new TextEncoder()

/** Most room a writer keeps between encodings. */
const KEPT_BYTES = 64 * 1024

/** Bytes of the varint of `n` (a length: below 2^32). */
function varintBytes(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5
}
