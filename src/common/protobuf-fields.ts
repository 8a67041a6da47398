import type { Reader } from 'protons-runtime'
import { DecodeError } from './errors.ts'

/** Protobuf wire types (groups, 3 and 4, are refused). */
export const VARINT = 0
export const FIXED64 = 1
export const LEN = 2
export const FIXED32 = 5

/**
 * Reads the fields of one message ending at `end`, calling `on` with each field number and
 * wire type; a field `on` returns false for is unknown and skipped, so a newer peer may add
 * fields. Throws {@link DecodeError} for field number 0, groups and any field that overruns
 * `end`. Shared by the hand-written codecs, which read with protons-runtime's reader.
 */
export function readFields(
  r: Reader,
  end: number,
  on: (field: number, wireType: number) => boolean,
): void {
  while (r.pos < end) {
    const key = r.uint32()
    const field = key >>> 3
    const wireType = key & 7
    if (field === 0) throw new DecodeError('field number 0')
    if (!on(field, wireType)) skipField(r, wireType, end)
    if (r.pos > end) throw new DecodeError('field overruns its enclosing message')
  }
}

/** Throws {@link DecodeError} unless a field has the wire type its schema gives it. */
export function expectWireType(wireType: number, wanted: number, what = 'field'): void {
  if (wireType !== wanted) throw new DecodeError(`${what}: wire type ${wireType}, want ${wanted}`)
}

function skipField(r: Reader, wireType: number, end: number): void {
  switch (wireType) {
    case VARINT:
      r.skip()
      return
    case FIXED64:
      r.pos += 8
      return
    case LEN: {
      const n = r.uint32()
      if (n > end - r.pos) throw new DecodeError('skipped field overruns its enclosing message')
      r.pos += n
      return
    }
    case FIXED32:
      r.pos += 4
      return
    default:
      throw new DecodeError(`unsupported wire type ${wireType}`)
  }
}
