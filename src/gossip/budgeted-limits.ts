import type { PeerKey } from '../common/artifact.ts'
import type { BudgetKind, PeerBudgets } from './peer-budget.ts'
import { RpcLimitError, type RpcLimits } from './rpc-codec.ts'

/** The decode limits on ids that a peer's id budgets tighten, and the budget of each. */
const ID_BUDGETS = [
  ['maxIHaveIds', 'ihave'],
  ['maxIWantIds', 'iwant'],
  ['maxIDontWantIds', 'idontwant'],
] as const satisfies readonly (readonly [keyof RpcLimits, BudgetKind])[]

/**
 * Decode limits within a peer's remaining id budgets: a frame holding more IHAVE, IWANT or
 * IDONTWANT ids than the peer may still spend is over budget whatever else it holds, so its
 * decoding stops at the first id beyond, instead of reading up to 5,000 ids first only to
 * drop them (a flooding peer's frames then cost next to nothing until it is cut off).
 *
 * Each limit is the remaining budget rounded up to a power of two (never above the frame
 * limit): crossing it proves the frame over budget, and the exact check stays the budget's
 * own after decoding. The rounding bounds the distinct limit objects (about 14 values each),
 * which are kept and reused, so a shared decoder (the simulator's) still matches them by
 * identity.
 */
export class BudgetedLimits {
  private readonly base: RpcLimits
  private readonly budgets: PeerBudgets
  private tightened: Map<string, RpcLimits> | undefined = undefined

  constructor(base: RpcLimits, budgets: PeerBudgets) {
    this.base = base
    this.budgets = budgets
  }

  /** The limits to decode `peer`'s next frame with: the base ones while its budgets cover them. */
  of(peer: PeerKey): RpcLimits {
    let key = ''
    let tight = false
    for (const [limit, kind] of ID_BUDGETS) {
      const cap = roundedCap(this.budgets.remaining(peer, kind), this.base[limit])
      if (cap < this.base[limit]) tight = true
      key += `${cap},`
    }
    if (!tight) return this.base
    this.tightened ??= new Map()
    let limits = this.tightened.get(key)
    if (limits === undefined) {
      const [ihave, iwant, idontwant] = key.split(',').map(Number)
      limits = { ...this.base, maxIHaveIds: ihave, maxIWantIds: iwant, maxIDontWantIds: idontwant }
      this.tightened.set(key, limits)
    }
    return limits
  }

  /**
   * The budget a decoding error with `limits` shows the peer past: a tightened id limit was
   * crossed. Undefined for any other error (a malformed frame).
   */
  overBudget(err: unknown, limits: RpcLimits): BudgetKind | undefined {
    if (limits === this.base || !(err instanceof RpcLimitError)) return undefined
    for (const [limit, kind] of ID_BUDGETS) {
      if (err.limit === limit && limits[limit] < this.base[limit]) return kind
    }
    return undefined
  }
}

/** `remaining` rounded up to a power of two, at most `limit` (0 when nothing is left). */
function roundedCap(remaining: number, limit: number): number {
  if (remaining >= limit) return limit
  if (remaining < 1) return 0
  return Math.min(limit, 2 ** Math.ceil(Math.log2(remaining)))
}
