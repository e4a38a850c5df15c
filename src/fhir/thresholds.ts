/**
 * Risk bands from configurable probability thresholds. The same two thresholds give the
 * RiskAssessment's qualitativeRisk (low/moderate/high from the HL7 risk-probability code
 * system) and the CDS Hooks card indicator (info/warning/critical), so a clinician sees one
 * judgement in both places.
 */

export interface RiskThresholds {
  /** probability >= moderate -> moderate (card: warning) */
  moderate: number;
  /** probability >= high -> high (card: critical) */
  high: number;
}

export type RiskBand = 'low' | 'moderate' | 'high';

export function riskBand(probability: number, t: RiskThresholds): RiskBand {
  if (probability >= t.high) return 'high';
  if (probability >= t.moderate) return 'moderate';
  return 'low';
}

export function cardIndicator(band: RiskBand): 'info' | 'warning' | 'critical' {
  return band === 'high' ? 'critical' : band === 'moderate' ? 'warning' : 'info';
}
