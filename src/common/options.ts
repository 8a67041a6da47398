/**
 * Merges user options over defaults, skipping keys whose value is `undefined` (so
 * `{ limit: undefined }` keeps the default instead of erasing it).
 */
export function withDefaults<T extends object>(
  defaults: Required<T>,
  options: Partial<T> = {},
): Required<T> {
  const out = { ...defaults }
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) (out as Record<string, unknown>)[key] = value
  }
  return out
}
