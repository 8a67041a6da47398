/**
 * A small, fast, seeded pseudo-random generator (sfc32, seeded through splitmix32).
 * Same seed, same sequence, on every machine: the simulator's determinism rests on it.
 */
export class Prng {
  private a: number
  private b: number
  private c: number
  private d: number

  /** Seeds from a number or a string (hashed). */
  constructor(seed: number | string) {
    let s = typeof seed === 'number' ? seed >>> 0 : hashString(seed)
    const next = () => {
      s = (s + 0x9e3779b9) | 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = next()
    this.b = next()
    this.c = next()
    this.d = next()
    for (let i = 0; i < 12; i++) this.nextU32()
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  /** A uniformly distributed number in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296
  }

  /** A uniformly distributed integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** An exponentially distributed number with the given mean. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next())
  }

  /** A standard normal number (mean 0, variance 1), by the Box–Muller transform. */
  normal(): number {
    const u = 1 - this.next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next())
  }

  /** A new generator whose sequence depends on this one's seed and `label` only. */
  fork(label: string | number): Prng {
    return new Prng(hashString(`${this.a}:${this.b}:${this.c}:${this.d}:${label}`))
  }

  /** Shuffles `items` in place (Fisher-Yates). */
  shuffle<T>(items: T[] | Int32Array): void {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const t = items[i]
      items[i] = items[j]
      items[j] = t
    }
  }
}

/** FNV-1a over the string's UTF-16 code units. */
export function hashString(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}
