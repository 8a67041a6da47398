/**
 * Run by entry-points.test.ts in a fresh Node process: records every module the given entry
 * point resolves (through `import` or `require`, native addons' JS wrappers included), imports
 * it, and prints `{ loaded, exports }` as JSON: the resolved URLs and the runtime export names.
 *
 *   node test/package/load-probe.ts src/gossip/index.ts
 */
import { registerHooks } from 'node:module'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const entry = process.argv[2]
if (entry === undefined) throw new Error('usage: load-probe.ts ENTRY')

const loaded = new Set<string>()
registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context)
    loaded.add(result.url)
    return result
  },
})

const namespace: Record<string, unknown> = await import(pathToFileURL(resolve(entry)).href)
process.stdout.write(
  JSON.stringify({ loaded: [...loaded].sort(), exports: Object.keys(namespace).sort() }),
)
