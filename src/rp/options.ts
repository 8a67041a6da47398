import { InvalidParametersError } from '../common/errors.ts'

/**
 * Merges `given` over `defaults`, ignoring undefined values, and checks that every option is
 * a positive number (all numeric options of this strategy are sizes, counts or durations).
 */
export function resolveOptions<T extends Record<string, number>>(
  what: string,
  defaults: T,
  given: Partial<Record<keyof T, number | undefined>>,
): T {
  const out = { ...defaults }
  for (const [k, v] of Object.entries(given)) {
    if (v === undefined) continue
    if (!(k in defaults)) throw new InvalidParametersError(`unknown ${what} option ${k}`)
    ;(out as Record<string, number>)[k] = v
  }
  for (const [k, v] of Object.entries(out)) {
    if (!(typeof v === 'number' && v > 0)) {
      throw new InvalidParametersError(`${what} option ${k} must be a positive number, got ${v}`)
    }
  }
  return out
}
