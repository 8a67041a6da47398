import { Uint8ArrayList } from 'uint8arraylist'
import { ByteWriter } from './binary.ts'
import { DecodeError, MessageTooLargeError } from './errors.ts'

/** Prefixes `frame` with its length as an unsigned varint: the framing of libp2p streams, and of the broker's TCP links. */
export function encodeLengthPrefixed(frame: Uint8Array): Uint8Array {
  return new ByteWriter(frame.length + 5).varint(frame.length).raw(frame).finish()
}

/**
 * Splits a byte stream into varint-length-prefixed frames, incrementally. A declared length
 * above `maxFrameBytes` throws {@link MessageTooLargeError} before any of it is buffered;
 * a varint longer than 5 bytes throws {@link DecodeError}.
 */
export class LengthPrefixedDecoder {
  private readonly buffer = new Uint8ArrayList()
  private readonly maxFrameBytes: number

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes
  }

  /** Bytes buffered that do not form a whole frame yet. */
  get buffered(): number {
    return this.buffer.byteLength
  }

  /** Appends `chunk` and returns every frame now complete. */
  push(chunk: Uint8Array | Uint8ArrayList): Uint8Array[] {
    this.buffer.append(chunk)
    const frames: Uint8Array[] = []
    for (;;) {
      const header = this.readLength()
      if (header === undefined) break
      const [length, headerBytes] = header
      if (this.buffer.byteLength < headerBytes + length) break
      frames.push(this.buffer.subarray(headerBytes, headerBytes + length))
      this.buffer.consume(headerBytes + length)
    }
    return frames
  }

  private readLength(): [number, number] | undefined {
    let value = 0
    let scale = 1
    const n = this.buffer.byteLength
    for (let i = 0; i < 5; i++) {
      if (i >= n) return undefined
      const b = this.buffer.get(i)
      value += (b & 0x7f) * scale
      if ((b & 0x80) === 0) {
        if (value > this.maxFrameBytes) throw new MessageTooLargeError(value, this.maxFrameBytes)
        return [value, i + 1]
      }
      scale *= 0x80
    }
    throw new DecodeError('length prefix longer than 5 bytes')
  }
}
