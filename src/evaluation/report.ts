import {
  auroc,
  averagePrecision,
  bootstrapAuroc,
  brier,
  calibrationIntercept,
  expectedCalibrationError,
  logisticRecalibration,
  rank,
  riskGroups,
  rocPoints,
  thresholdTable,
  thresholdForShare,
  tprAt,
  treatAllNetBenefit,
  type Labelled,
  type RiskGroup,
  type ThresholdRow,
} from './metrics.js';
import type { Manifest } from '../model/manifest.js';

/**
 * The validation report of a cohort (report.json of `icu-mortality validate`): the key names
 * are a contract other tools read (issue 29). Built from probabilities, outcomes and each
 * stay's subgroup labels; no I/O.
 */

/** Rules of thumb for a validation cohort: at least 100 events and 100 non-events, ideally 200 events. */
export const MIN_EVENTS = 100;
export const IDEAL_EVENTS = 200;
export const EVENTS_SOURCE =
  'Collins GS, Ogundimu EO, Altman DG. Sample size considerations for the external validation of a multivariable prognostic model: a resampling study. Stat Med 2016;35:214-226 ("a minimum of 100 events and ideally 200"); the rule of thumb of at least 100 events and 100 non-events as stated by Snell KIE, ..., Riley RD, J Clin Epidemiol 2021;135:79-89';

export const BOOTSTRAP_RESAMPLES = 1000;
/** Each subgroup's interval: fewer resamples, since each split of the cohort costs a whole bootstrap. */
export const SUBGROUP_RESAMPLES = 200;
export const BOOTSTRAP_SEED = 20120;
/** Thresholds of the table: 0.05 to 0.95 by 0.05, plus the manifest's decision threshold. */
export const THRESHOLD_GRID = Array.from({ length: 19 }, (_, i) => Math.round((i + 1) * 5) / 100);
/** The decision curve's thresholds: 0.01 to 0.60 by 0.01 (net benefit is rarely of interest above). */
const DECISION_GRID = Array.from({ length: 60 }, (_, i) => (i + 1) / 100);
const FPR_GRID = Array.from({ length: 101 }, (_, i) => i / 100);
const DISTRIBUTION_BINS = 20;
/** Shares of stays a unit may choose to have flagged (the alert workload), for suggested thresholds. */
export const FLAGGED_SHARE_TARGETS = [0.05, 0.1, 0.15, 0.2, 0.3];

export interface Subgroup {
  by: string;
  group: string;
  n: number;
  deaths: number;
  auroc: number | null;
  aurocCi95: [number, number] | null;
  /** Observed deaths over the sum of predicted risks. */
  observedExpected: number | null;
}

export interface ValidationReport {
  model: { name: string; version: string };
  n: number;
  deaths: number;
  auroc: number | null;
  aurocCi95: [number, number] | null;
  auprc: number | null;
  brier: number | null;
  calibration: {
    interceptInTheLarge: number | null;
    slope: number | null;
    ece: number | null;
    deciles: RiskGroup[];
  };
  decisionThreshold: number;
  thresholds: ThresholdRow[];
  /**
   * For each target share of stays flagged, the lowest threshold that flags at most that share
   * on this cohort, and its figures there; threshold null when no threshold does.
   */
  thresholdsForShare: Array<{
    targetShare: number;
    threshold: number | null;
    flaggedShare: number | null;
    sensitivity: number | null;
    ppv: number | null;
  }>;
  subgroups: Subgroup[];
  development: { auroc: number; aurocCi95: [number, number] | null } | null;
  unmatched: { recordsWithoutOutcome: number; outcomesWithoutRecord: number };
  warnings: string[];
  method: {
    bootstrap: { resamples: number; subgroupResamples: number; seed: number; stratified: true; interval: 'percentile' };
    eceBins: number;
    flaggedWhen: 'probability >= threshold';
  };
  /** The figures' curves, for report.html. */
  curves: {
    roc: { fpr: number[]; tpr: number[]; tprLow: number[]; tprHigh: number[] };
    decision: Array<{ threshold: number; model: number; treatAll: number }>;
    distribution: Array<{ from: number; to: number; deaths: number; survivors: number }>;
  };
}

/** One way to split the cohort: each stay's group label, in stay order; `order` lists groups in report order. */
export interface Grouping {
  by: string;
  labels: readonly string[];
  order?: readonly string[];
}

export interface ReportInput extends Labelled {
  model: { name: string; version: string };
  decisionThreshold: number;
  groupings: readonly Grouping[];
  development: ValidationReport['development'];
  unmatched: ValidationReport['unmatched'];
  /** Warnings of the caller (e.g. records that could not be scored). */
  warnings?: readonly string[];
  resamples?: number;
  subgroupResamples?: number;
  seed?: number;
}

function sampleSizeWarnings(n: number, deaths: number): string[] {
  const survivors = n - deaths;
  const out: string[] = [];
  if (deaths < MIN_EVENTS || survivors < MIN_EVENTS)
    out.push(
      `${deaths} deaths and ${survivors} survivors: fewer than ${MIN_EVENTS} of either make these figures imprecise, calibration most (${EVENTS_SOURCE})`,
    );
  else if (deaths < IDEAL_EVENTS)
    out.push(
      `${deaths} deaths: ${IDEAL_EVENTS} or more are advised for precise calibration figures (${EVENTS_SOURCE})`,
    );
  return out;
}

function subgroups(data: Labelled, groupings: readonly Grouping[], resamples: number, seed: number): Subgroup[] {
  const out: Subgroup[] = [];
  for (const { by, labels, order } of groupings) {
    const members = new Map<string, number[]>();
    labels.forEach((label, i) => {
      let list = members.get(label);
      if (!list) members.set(label, (list = []));
      list.push(i);
    });
    const names = [...members.keys()].sort((a, b) => {
      const ia = order?.indexOf(a) ?? -1;
      const ib = order?.indexOf(b) ?? -1;
      return (ia === -1 ? Infinity : ia) - (ib === -1 ? Infinity : ib) || a.localeCompare(b);
    });
    for (const group of names) {
      const idx = members.get(group) as number[];
      const p = Float64Array.from(idx, (i) => data.probabilities[i] as number);
      const y = Uint8Array.from(idx, (i) => data.outcomes[i] as number);
      const r = rank({ probabilities: p, outcomes: y });
      let expected = 0;
      for (const v of p) expected += v;
      out.push({
        by,
        group,
        n: r.n,
        deaths: r.positives,
        auroc: auroc(r),
        aurocCi95: bootstrapAuroc(r, { resamples, seed }).aurocCi95,
        observedExpected: expected > 0 ? r.positives / expected : null,
      });
    }
  }
  return out;
}

function distribution(data: Labelled): ValidationReport['curves']['distribution'] {
  const bins = Array.from({ length: DISTRIBUTION_BINS }, (_, b) => ({
    from: b / DISTRIBUTION_BINS,
    to: (b + 1) / DISTRIBUTION_BINS,
    deaths: 0,
    survivors: 0,
  }));
  for (let i = 0; i < data.probabilities.length; i++) {
    const b = Math.min(Math.floor((data.probabilities[i] as number) * DISTRIBUTION_BINS), DISTRIBUTION_BINS - 1);
    const bin = bins[b] as (typeof bins)[number];
    if (data.outcomes[i] === 1) bin.deaths++;
    else bin.survivors++;
  }
  return bins;
}

/** The model card's held-out figures (manifest metrics.heldOut), when the model has them. */
export function developmentFigures(manifest: Manifest): ValidationReport['development'] {
  const heldOut = manifest.metrics.heldOut as { auroc?: unknown; aurocCi95?: unknown } | undefined;
  if (typeof heldOut?.auroc !== 'number') return null;
  const ci = heldOut.aurocCi95;
  const pair =
    Array.isArray(ci) && ci.length === 2 && ci.every((v) => typeof v === 'number') ? (ci as [number, number]) : null;
  return { auroc: heldOut.auroc, aurocCi95: pair };
}

export function validationReport(input: ReportInput): ValidationReport {
  const resamples = input.resamples ?? BOOTSTRAP_RESAMPLES;
  const subgroupResamples = input.subgroupResamples ?? SUBGROUP_RESAMPLES;
  const seed = input.seed ?? BOOTSTRAP_SEED;
  const r = rank(input);
  const boot = bootstrapAuroc(r, { resamples, seed, fprGrid: FPR_GRID });
  const fit = logisticRecalibration(input);
  const thresholds = [...new Set([...THRESHOLD_GRID, input.decisionThreshold])].sort((a, b) => a - b);
  const roc = tprAt(rocPoints(r), FPR_GRID);
  return {
    model: input.model,
    n: r.n,
    deaths: r.positives,
    auroc: auroc(r),
    aurocCi95: boot.aurocCi95,
    auprc: averagePrecision(r),
    brier: r.n > 0 ? brier(input) : null,
    calibration: {
      interceptInTheLarge: calibrationIntercept(input),
      slope: fit?.slope ?? null,
      ece: r.n > 0 ? expectedCalibrationError(input, 10) : null,
      deciles: riskGroups(r, 10),
    },
    decisionThreshold: input.decisionThreshold,
    thresholds: thresholdTable(r, thresholds),
    thresholdsForShare: FLAGGED_SHARE_TARGETS.map((targetShare) => {
      const threshold = thresholdForShare(r, targetShare);
      const row = threshold === null ? undefined : thresholdTable(r, [threshold])[0];
      return {
        targetShare,
        threshold,
        flaggedShare: row?.flaggedShare ?? null,
        sensitivity: row?.sensitivity ?? null,
        ppv: row?.ppv ?? null,
      };
    }),
    subgroups: subgroups(input, input.groupings, subgroupResamples, seed),
    development: input.development,
    unmatched: input.unmatched,
    warnings: [...(input.warnings ?? []), ...sampleSizeWarnings(r.n, r.positives)],
    method: {
      bootstrap: { resamples, subgroupResamples, seed, stratified: true, interval: 'percentile' },
      eceBins: 10,
      flaggedWhen: 'probability >= threshold',
    },
    curves: {
      roc: {
        fpr: FPR_GRID,
        tpr: roc,
        tprLow: boot.band?.low ?? [],
        tprHigh: boot.band?.high ?? [],
      },
      decision: thresholdTable(r, DECISION_GRID).map(({ threshold, netBenefit }) => ({
        threshold,
        model: netBenefit,
        treatAll: treatAllNetBenefit(r, threshold),
      })),
      distribution: distribution(input),
    },
  };
}
