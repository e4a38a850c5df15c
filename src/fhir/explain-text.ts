import type { Contribution, TrajectoryPoint } from '../clinical/types.js';

/** The explanation in a clinician's words, for the CDS card and the RiskAssessment's notes. */

/** Hours back the trend compares with (or the first hour of a shorter stay). */
const TREND_HOURS = 6;

export function percent(p: number): string {
  if (p < 0.01) return '<1%';
  if (p > 0.99) return '>99%';
  return `${Math.round(p * 100)}%`;
}

/** "Risk rising: 12% 6 hours ago, 34% now." or undefined for a one-hour stay. */
export function trendText(trajectory: readonly TrajectoryPoint[]): string | undefined {
  const now = trajectory.at(-1);
  if (now === undefined || trajectory.length < 2) return undefined;
  const then = trajectory[Math.max(0, trajectory.length - 1 - TREND_HOURS)] as TrajectoryPoint;
  const hoursAgo = now.hour - then.hour;
  const change = Math.round((now.probability - then.probability) * 100);
  const direction = change >= 2 ? 'rising' : change <= -2 ? 'falling' : 'stable';
  const ago = hoursAgo === 1 ? '1 hour ago' : `${hoursAgo} hours ago`;
  return `Risk ${direction}: ${percent(then.probability)} ${ago}, ${percent(now.probability)} now.`;
}

/** "Lactate +9 points, GCS +6, MAP +4" for the first `n` contributions. */
export function topContributionsText(contributions: readonly Contribution[], n = 3): string | undefined {
  const top = contributions.slice(0, n);
  if (top.length === 0) return undefined;
  return top.map((c, i) => `${c.variable} ${points(c.effect)}${i === 0 ? ' points' : ''}`).join(', ');
}

function points(effect: number): string {
  const value = Math.abs(effect * 100);
  const shown = value >= 1 ? String(Math.round(value)) : value.toFixed(1);
  return `${effect < 0 ? '−' : '+'}${shown}`;
}

/** The trend and the largest contributions as sentences, for the CDS card and the RiskAssessment's notes. */
export function explanationSentences(explanation: {
  trajectory?: readonly TrajectoryPoint[];
  contributions?: readonly Contribution[];
}): string[] {
  const trend = explanation.trajectory ? trendText(explanation.trajectory) : undefined;
  const drivers = explanation.contributions ? topContributionsText(explanation.contributions) : undefined;
  return [
    ...(trend ? [trend] : []),
    ...(drivers ? [`Largest contributions: ${drivers} (${CONTRIBUTION_MEANING}).`] : []),
  ];
}

/** What a contribution means, said once wherever contributions are shown. */
export const CONTRIBUTION_MEANING =
  'each is the change in this probability when that measurement is left out of the whole stay: an association in this model, not a cause';
