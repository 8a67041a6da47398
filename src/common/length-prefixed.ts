import { Uint8ArrayList } from 'uint8arraylist'
import { ByteWriter } from './binary.ts'
import { DecodeError, MessageTooLargeError } from './errors.ts'

/** Prefixes `frame` with its length as an unsigned varint: the framing of libp2p streams, and of the broker's TCP links. */
export function encodeLengthPrefixed(frame: Uint8Array): Uint8Array {
  return new ByteWriter(frame.length + 5).varint(frame.length).raw(frame).finish()
}

/**
 * Looks at the first bytes of a frame still arriving; false refuses the frame (its first
 * bytes alone prove it bad), before the rest of it is buffered.
 */
export type FramePrefixInspector = (prefix: Uint8Array, frameLength: number) => boolean

/** Bytes of a frame buffered before its first inspection; each later one waits for 4× more. */
export const FIRST_INSPECTION_BYTES = 64 * 1024

/** A frame refused by the inspector of a {@link LengthPrefixedDecoder} from its first bytes. */
export class FrameRefusedError extends DecodeError {
  /** The frame's declared length, in bytes. */
  readonly frameLength: number

  constructor(frameLength: number, inspectedBytes: number) {
    super(`frame of ${frameLength} bytes refused after its first ${inspectedBytes} bytes`)
    this.frameLength = frameLength
  }
}

/**
 * Splits a byte stream into varint-length-prefixed frames, incrementally. A declared length
 * above `maxFrameBytes` throws {@link MessageTooLargeError} before any of it is buffered;
 * a varint longer than 5 bytes throws {@link DecodeError}. With an `inspect` function, a
 * frame longer than {@link FIRST_INSPECTION_BYTES} is shown to it as it arrives (at 64 KiB,
 * 256 KiB, 1 MiB...), and {@link FrameRefusedError} is thrown as soon as it refuses it: a
 * large hostile frame costs a prefix of it, not its whole length.
 */
export class LengthPrefixedDecoder {
  private readonly buffer = new Uint8ArrayList()
  private readonly maxFrameBytes: number
  private readonly inspect: FramePrefixInspector | undefined
  /** Buffered bytes of the current frame that trigger its next inspection. */
  private nextInspection = FIRST_INSPECTION_BYTES

  constructor(maxFrameBytes: number, inspect?: FramePrefixInspector) {
    this.maxFrameBytes = maxFrameBytes
    this.inspect = inspect
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
      const have = this.buffer.byteLength - headerBytes
      if (have < length) {
        this.inspectPrefix(headerBytes, have, length)
        break
      }
      frames.push(this.buffer.subarray(headerBytes, headerBytes + length))
      this.buffer.consume(headerBytes + length)
      this.nextInspection = FIRST_INSPECTION_BYTES
    }
    return frames
  }

  private inspectPrefix(headerBytes: number, have: number, length: number): void {
    if (this.inspect === undefined || have < this.nextInspection) return
    while (this.nextInspection <= have) this.nextInspection *= 4
    if (!this.inspect(this.buffer.subarray(headerBytes, headerBytes + have), length)) {
      throw new FrameRefusedError(length, have)
    }
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
