import { defaultAlertPolicy, tierOf } from '../clinical/alert-policy.js';

/**
 * Risk bands from configurable probability thresholds: the RiskAssessment's qualitativeRisk
 * (low/moderate/high from the HL7 risk-probability code system). They are the alert policy's
 * tiers (src/config.ts derives them from ALERT_POLICY), whose indicators the CDS card shows, so
 * a clinician sees one judgement in both places.
 */

export interface RiskThresholds {
  /** probability >= moderate -> moderate (card: warning) */
  moderate: number;
  /** probability >= high -> high (card: critical) */
  high: number;
}

export type RiskBand = 'low' | 'moderate' | 'high';

/** The band of the default alert policy on these thresholds (src/clinical/alert-policy.ts: one rule for both). */
export function riskBand(probability: number, t: RiskThresholds): RiskBand {
  return tierOf(defaultAlertPolicy(t), probability).name;
}
