import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/**
 * The alert policy (ALERT_POLICY): which tier a probability falls in, the CDS card indicator of
 * each tier, and when a new card for the same patient is suppressed. Tier names are the HL7
 * risk-probability codes the RiskAssessment's qualitativeRisk uses, so a card and a
 * RiskAssessment give one judgement. Pure: the file is read by src/config.ts.
 */

export const TIER_NAMES = ['low', 'moderate', 'high'] as const;
export type TierName = (typeof TIER_NAMES)[number];
export const INDICATORS = ['info', 'warning', 'critical'] as const;
export type Indicator = (typeof INDICATORS)[number];

const tierSchema = z.strictObject({
  name: z.enum(TIER_NAMES),
  /** The tier holds probabilities >= from (up to the next tier's from). */
  from: z.number().min(0).max(1),
  indicator: z.enum(INDICATORS),
});

const suppressionSchema = z.strictObject({
  /** No new card at the same or a lower tier within this many hours of the last card ... */
  hours: z
    .number()
    .positive()
    .max(24 * 366),
  /** ... unless the probability rose by at least this many percentage points since that card. */
  minRisePoints: z.number().positive().max(100),
});

export const alertPolicySchema = z
  .strictObject({
    tiers: z.array(tierSchema).length(TIER_NAMES.length),
    suppression: suppressionSchema.nullable().default(null),
  })
  .superRefine((policy, ctx) => {
    policy.tiers.forEach((tier, i) => {
      if (tier.name !== TIER_NAMES[i])
        ctx.addIssue({
          code: 'custom',
          path: ['tiers', i, 'name'],
          message: `must be "${TIER_NAMES[i]}" (tiers low, moderate, high in that order)`,
        });
      if (i === 0 && tier.from !== 0)
        ctx.addIssue({
          code: 'custom',
          path: ['tiers', 0, 'from'],
          message: 'must be 0: every probability needs a tier',
        });
      const before = policy.tiers[i - 1];
      if (before && !(tier.from > before.from))
        ctx.addIssue({
          code: 'custom',
          path: ['tiers', i, 'from'],
          message: `must be greater than tier ${before.name}'s from (${before.from})`,
        });
    });
  });

export type AlertPolicy = z.output<typeof alertPolicySchema>;
export type AlertTier = AlertPolicy['tiers'][number];

/** Today's behaviour: low/moderate/high from the two RISK_*_THRESHOLD values, info/warning/critical, no suppression. */
export function defaultAlertPolicy(thresholds: { moderate: number; high: number }): AlertPolicy {
  return {
    tiers: [
      { name: 'low', from: 0, indicator: 'info' },
      { name: 'moderate', from: thresholds.moderate, indicator: 'warning' },
      { name: 'high', from: thresholds.high, indicator: 'critical' },
    ],
    suppression: null,
  };
}

export class AlertPolicyError extends Error {
  override readonly name = 'AlertPolicyError';
}

/** Parses a policy file's text (JSON, or YAML, of which JSON is a subset); errors name the field. */
export function parseAlertPolicy(text: string, source: string): AlertPolicy {
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 0 });
  } catch (error) {
    throw new AlertPolicyError(
      `${source}: not YAML or JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const parsed = alertPolicySchema.safeParse(raw);
  if (!parsed.success)
    throw new AlertPolicyError(
      `${source}: invalid alert policy:\n  ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('\n  ')}`,
    );
  return parsed.data;
}

/** The tier of a probability: the highest whose `from` it reaches. */
export function tierOf(policy: AlertPolicy, probability: number): AlertTier {
  for (let i = policy.tiers.length - 1; i > 0; i--) {
    const tier = policy.tiers[i] as AlertTier;
    if (probability >= tier.from) return tier;
  }
  return policy.tiers[0] as AlertTier;
}

export function tierRank(tier: TierName): number {
  return TIER_NAMES.indexOf(tier);
}

/**
 * The threshold at which a stay counts as flagged (monitoring's flaggedShare, sensitivity, ppv):
 * the lowest tier whose card is more than information.
 */
export function alertThreshold(policy: AlertPolicy): number | null {
  return policy.tiers.find((t) => t.indicator !== 'info')?.from ?? null;
}

/** The last card shown for a patient. */
export interface LastAlert {
  tier: TierName;
  probability: number;
  /** Epoch milliseconds. */
  at: number;
}

/** Probabilities differ in floating point (0.35 - 0.25 < 0.1): a rise this close to the bound counts. */
const RISE_TOLERANCE = 1e-9;

/**
 * Whether a new card is suppressed: within `hours` of the last card shown, at the same or a lower
 * tier, and the probability not risen by `minRisePoints` since it. Without suppression, never.
 */
export function isSuppressed(policy: AlertPolicy, last: LastAlert | undefined, next: LastAlert): boolean {
  const rule = policy.suppression;
  if (!rule || !last) return false;
  if (next.at - last.at >= rule.hours * 3_600_000) return false;
  if (tierRank(next.tier) > tierRank(last.tier)) return false;
  return next.probability - last.probability < rule.minRisePoints / 100 - RISE_TOLERANCE;
}

/** The RiskAssessment's qualitativeRisk bands of a policy: where its moderate and high tiers start. */
export function policyThresholds(policy: AlertPolicy): { moderate: number; high: number } {
  const from = (name: TierName) => (policy.tiers.find((t) => t.name === name) as AlertTier).from;
  return { moderate: from('moderate'), high: from('high') };
}
