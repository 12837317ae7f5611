/**
 * The hostile corpus as data: one module per family, each producing named cases with the answer they must
 * get, so that counts per family can be reported and every case runs against every entry point.
 */
import { algCases } from './alg.js'
import { claimCases } from './claims.js'
import { assertionCases, type ConfusionMaterial, confusionCases } from './confusion.js'
import type { CorpusContext, Family, HostileCase } from './context.js'
import { controlCases, formatCases } from './format.js'
import { keyCases } from './keys.js'

export { controlCases }
export type { ConfusionMaterial }
export * from './context.js'

/** Every family's cases, in report order. */
export function hostileCorpus(
  ctx: CorpusContext,
  material: ConfusionMaterial,
): Record<Family, HostileCase[]> {
  return {
    alg: algCases(ctx),
    keys: keyCases(ctx),
    claims: claimCases(ctx),
    format: formatCases(ctx),
    confusion: confusionCases(ctx, material),
    assertions: assertionCases(ctx, material),
  }
}
