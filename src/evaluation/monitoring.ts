import { auroc, bootstrapAuroc, calibrationIntercept, logisticRecalibration, rank, thresholdTable } from './metrics.js';
import { BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, MIN_EVENTS } from './report.js';

/**
 * Live performance: the validation report's statistics (metrics.ts, one implementation each) on
 * the pairs of a recent window (a prediction and the outcome that arrived for it), overall and
 * per model version and input profile. Below the validation minimum of deaths and survivors the
 * outcome-based figures are null with the reason: less data never earns a figure.
 */

/** One prediction joined to its patient's outcome. */
export interface Pair {
  probability: number;
  died: 0 | 1;
  version: string;
  profile: string;
}

export interface Figures {
  n: number;
  deaths: number;
  /** Predictions in the window whose patient has no outcome (yet). */
  unlabelled: number;
  auroc: number | null;
  aurocCi95: [number, number] | null;
  calibration: { interceptInTheLarge: number | null; slope: number | null };
  observedExpected: number | null;
  /** Share of the pairs at or above the alert threshold. */
  flaggedShare: number | null;
  sensitivity: number | null;
  ppv: number | null;
  /** Why the outcome-based figures are null; null when they are given. */
  withheld: string | null;
}

export interface MonitoringFigures {
  overall: Figures;
  byVersion: Array<Figures & { version: string }>;
  byProfile: Array<Figures & { profile: string }>;
}

export interface Unlabelled {
  version: string;
  profile: string;
  count: number;
}

export const MIN_DEATHS = MIN_EVENTS;
export const MIN_SURVIVORS = MIN_EVENTS;

export function figures(pairs: readonly Pair[], unlabelled: number, threshold: number | null): Figures {
  const probabilities = Float64Array.from(pairs, (p) => p.probability);
  const outcomes = Uint8Array.from(pairs, (p) => p.died);
  const r = rank({ probabilities, outcomes });
  const survivors = r.negatives;
  const flagged = threshold !== null && r.n > 0 ? thresholdTable(r, [threshold])[0] : undefined;
  const base = {
    n: r.n,
    deaths: r.positives,
    unlabelled,
    flaggedShare: flagged?.flaggedShare ?? null,
  };
  if (r.positives < MIN_DEATHS || survivors < MIN_SURVIVORS)
    return {
      ...base,
      auroc: null,
      aurocCi95: null,
      calibration: { interceptInTheLarge: null, slope: null },
      observedExpected: null,
      sensitivity: null,
      ppv: null,
      withheld: `${r.positives} deaths and ${survivors} survivors: at least ${MIN_DEATHS} of each are needed (the validation report's minimum)`,
    };
  let expected = 0;
  for (const p of probabilities) expected += p;
  const data = { probabilities, outcomes };
  return {
    ...base,
    auroc: auroc(r),
    aurocCi95: bootstrapAuroc(r, { resamples: BOOTSTRAP_RESAMPLES, seed: BOOTSTRAP_SEED }).aurocCi95,
    calibration: {
      interceptInTheLarge: calibrationIntercept(data),
      slope: logisticRecalibration(data)?.slope ?? null,
    },
    observedExpected: expected > 0 ? r.positives / expected : null,
    sensitivity: flagged?.sensitivity ?? null,
    ppv: flagged?.ppv ?? null,
    withheld: null,
  };
}

function groupBy<K extends 'version' | 'profile'>(pairs: readonly Pair[], unlabelled: readonly Unlabelled[], key: K) {
  const names = [...new Set([...pairs.map((p) => p[key]), ...unlabelled.map((u) => u[key])])].sort();
  return names.map((name) => ({
    name,
    pairs: pairs.filter((p) => p[key] === name),
    unlabelled: unlabelled.filter((u) => u[key] === name).reduce((s, u) => s + u.count, 0),
  }));
}

/** The figures of the window's pairs; `threshold` is the alert policy's (null: no flagged figures). */
export function monitoringFigures(
  pairs: readonly Pair[],
  unlabelled: readonly Unlabelled[],
  threshold: number | null,
): MonitoringFigures {
  const total = unlabelled.reduce((s, u) => s + u.count, 0);
  return {
    overall: figures(pairs, total, threshold),
    byVersion: groupBy(pairs, unlabelled, 'version').map((g) => ({
      version: g.name,
      ...figures(g.pairs, g.unlabelled, threshold),
    })),
    byProfile: groupBy(pairs, unlabelled, 'profile').map((g) => ({
      profile: g.name,
      ...figures(g.pairs, g.unlabelled, threshold),
    })),
  };
}
