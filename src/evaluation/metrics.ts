import { seededRandom } from './random.js';

/**
 * The figures of a validation: discrimination, calibration and clinical usefulness of predicted
 * probabilities against observed 0/1 outcomes. Pure functions over arrays; every figure is
 * checked against scikit-learn and numpy in training/tests/test_evaluation_parity.py.
 */

/** Probabilities and their outcomes (1 = died), the same length. */
export interface Labelled {
  probabilities: ArrayLike<number>;
  outcomes: ArrayLike<number>;
}

/** The cohort sorted by probability, ascending, with its tie groups (stays of equal probability). */
export interface Ranked {
  n: number;
  positives: number;
  negatives: number;
  /** Sorted probabilities and outcomes. */
  p: Float64Array;
  y: Uint8Array;
  /** End (exclusive) of each tie group in the sorted arrays, ascending. */
  groupEnds: Uint32Array;
}

export function rank(data: Labelled): Ranked {
  const n = data.probabilities.length;
  if (data.outcomes.length !== n) throw new RangeError('probabilities and outcomes differ in length');
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    order[i] = i;
    const p = data.probabilities[i] as number;
    if (!(p >= 0 && p <= 1)) throw new RangeError(`probability ${i} is not in [0, 1]`);
    const y = data.outcomes[i];
    if (y !== 0 && y !== 1) throw new RangeError(`outcome ${i} is not 0 or 1`);
  }
  const probs = data.probabilities;
  // A stable order (ties by input position), as numpy's argsort(kind="stable").
  order.sort((a, b) => (probs[a] as number) - (probs[b] as number) || a - b);
  const p = new Float64Array(n);
  const y = new Uint8Array(n);
  let positives = 0;
  const ends: number[] = [];
  for (let k = 0; k < n; k++) {
    const i = order[k] as number;
    p[k] = probs[i] as number;
    y[k] = data.outcomes[i] as number;
    positives += y[k] as number;
    if (k > 0 && p[k] !== p[k - 1]) ends.push(k);
  }
  if (n > 0) ends.push(n);
  return { n, positives, negatives: n - positives, p, y, groupEnds: Uint32Array.from(ends) };
}

/**
 * AUROC as the Mann-Whitney statistic: the chance that a death's probability exceeds a
 * survivor's, ties counted one half; null when one class is absent.
 */
export function auroc(r: Ranked): number | null {
  if (r.positives === 0 || r.negatives === 0) return null;
  let below = 0;
  let pairs = 0;
  let start = 0;
  for (let g = 0; g < r.groupEnds.length; g++) {
    const end = r.groupEnds[g] as number;
    let gp = 0;
    for (let k = start; k < end; k++) gp += r.y[k] as number;
    const gn = end - start - gp;
    pairs += gp * (below + 0.5 * gn);
    below += gn;
    start = end;
  }
  return pairs / (r.positives * r.negatives);
}

/** The ROC curve's points, from the highest threshold down: one per tie group, starting at (0, 0). */
export function rocPoints(r: Ranked, weights?: ArrayLike<number>): { fpr: number[]; tpr: number[] } {
  const fpr = [0];
  const tpr = [0];
  let tp = 0;
  let fp = 0;
  let totalP = 0;
  let totalN = 0;
  for (let k = 0; k < r.n; k++) {
    const w = weights ? (weights[k] as number) : 1;
    if (r.y[k] === 1) totalP += w;
    else totalN += w;
  }
  for (let g = r.groupEnds.length - 1; g >= 0; g--) {
    const end = r.groupEnds[g] as number;
    const start = g === 0 ? 0 : (r.groupEnds[g - 1] as number);
    for (let k = start; k < end; k++) {
      const w = weights ? (weights[k] as number) : 1;
      if (r.y[k] === 1) tp += w;
      else fp += w;
    }
    fpr.push(totalN > 0 ? fp / totalN : 0);
    tpr.push(totalP > 0 ? tp / totalP : 0);
  }
  return { fpr, tpr };
}

/** The ROC polyline's sensitivity at each false-positive rate of `grid` (ascending), by linear interpolation. */
export function tprAt(points: { fpr: number[]; tpr: number[] }, grid: readonly number[]): number[] {
  const out = new Array<number>(grid.length).fill(1);
  let g = 0;
  for (let k = 1; k < points.fpr.length && g < grid.length; k++) {
    const f0 = points.fpr[k - 1] as number;
    const f1 = points.fpr[k] as number;
    const t0 = points.tpr[k - 1] as number;
    const t1 = points.tpr[k] as number;
    while (g < grid.length && (grid[g] as number) < f1) {
      const f = grid[g] as number;
      out[g] = f1 === f0 ? t1 : t0 + ((t1 - t0) * (f - f0)) / (f1 - f0);
      g++;
    }
  }
  return out;
}

/** The q-quantile of sorted values, linear between order statistics (numpy's default, Hyndman-Fan type 7). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const m = sorted.length;
  if (m === 0) return Number.NaN;
  const h = (m - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, m - 1);
  return (sorted[lo] as number) + (h - lo) * ((sorted[hi] as number) - (sorted[lo] as number));
}

export interface BootstrapOptions {
  resamples: number;
  seed: number;
  /** False-positive rates at which to give the ROC curve's pointwise band. */
  fprGrid?: readonly number[];
}

export interface BootstrapResult {
  aurocCi95: [number, number] | null;
  /** Pointwise 2.5% and 97.5% sensitivity at each fprGrid value. */
  band?: { low: number[]; high: number[] };
}

/**
 * Percentile bootstrap of the AUROC, stratified: each resample draws as many deaths from the
 * deaths and as many survivors from the survivors as the cohort has, so every resample has both
 * (as pROC's ci.auc does by default; Robin et al., BMC Bioinformatics 2011).
 */
export function bootstrapAuroc(r: Ranked, opts: BootstrapOptions): BootstrapResult {
  if (r.positives === 0 || r.negatives === 0 || opts.resamples < 1) return { aurocCi95: null };
  const random = seededRandom(opts.seed);
  const { n, positives, negatives, y } = r;
  const posAt = new Uint32Array(positives);
  const negAt = new Uint32Array(negatives);
  for (let k = 0, i = 0, j = 0; k < n; k++) {
    if (y[k] === 1) posAt[i++] = k;
    else negAt[j++] = k;
  }
  // Where each tie group starts in the sorted arrays, so one sweep per resample needs no lookups.
  const startsGroup = new Uint8Array(n);
  startsGroup[0] = 1;
  for (const end of r.groupEnds) if (end < n) startsGroup[end] = 1;
  const weights = new Uint32Array(n);
  const aurocs = new Float64Array(opts.resamples);
  const grid = opts.fprGrid ?? [];
  const bands = grid.map(() => new Float64Array(opts.resamples));
  const tprs = new Float64Array(grid.length);
  const draws = new Uint32Array(n);
  for (let b = 0; b < opts.resamples; b++) {
    weights.fill(0);
    random.fill(draws);
    // A 32-bit draw d picks floor(d * m / 2^32) of m: uniform to within m / 2^32.
    for (let i = 0; i < positives; i++) {
      const k = posAt[Math.floor(((draws[i] as number) * positives) / 4294967296)] as number;
      weights[k] = (weights[k] as number) + 1;
    }
    for (let i = 0; i < negatives; i++) {
      const k = negAt[Math.floor(((draws[positives + i] as number) * negatives) / 4294967296)] as number;
      weights[k] = (weights[k] as number) + 1;
    }
    // From the highest probability down: deaths above each survivor, ties one half; and the
    // ROC polyline's sensitivity at each grid false-positive rate (as tprAt does).
    let tp = 0;
    let fp = 0;
    let gp = 0;
    let gn = 0;
    let pairs = 0;
    let g = 0;
    let f0 = 0;
    let t0 = 0;
    tprs.fill(1);
    for (let k = n - 1; k >= 0; k--) {
      const w = weights[k] as number;
      if (y[k] === 1) gp += w;
      else gn += w;
      if (startsGroup[k] === 1) {
        pairs += gn * (tp + 0.5 * gp);
        tp += gp;
        fp += gn;
        gp = 0;
        gn = 0;
        const f1 = fp / negatives;
        const t1 = tp / positives;
        while (g < grid.length && (grid[g] as number) < f1) {
          const f = grid[g] as number;
          tprs[g++] = f1 === f0 ? t1 : t0 + ((t1 - t0) * (f - f0)) / (f1 - f0);
        }
        f0 = f1;
        t0 = t1;
      }
    }
    aurocs[b] = pairs / (positives * negatives);
    for (let j = 0; j < grid.length; j++) (bands[j] as Float64Array)[b] = tprs[j] as number;
  }
  aurocs.sort();
  const result: BootstrapResult = { aurocCi95: [quantile(aurocs, 0.025), quantile(aurocs, 0.975)] };
  if (opts.fprGrid) {
    const low: number[] = [];
    const high: number[] = [];
    for (const values of bands) {
      values.sort();
      low.push(quantile(values, 0.025));
      high.push(quantile(values, 0.975));
    }
    result.band = { low, high };
  }
  return result;
}

/**
 * Average precision as scikit-learn's average_precision_score defines it: the sum over
 * thresholds (each distinct probability, highest first) of the gain in recall times the
 * precision there. Null without deaths.
 */
export function averagePrecision(r: Ranked): number | null {
  if (r.positives === 0) return null;
  let tp = 0;
  let fp = 0;
  let ap = 0;
  for (let g = r.groupEnds.length - 1; g >= 0; g--) {
    const end = r.groupEnds[g] as number;
    const start = g === 0 ? 0 : (r.groupEnds[g - 1] as number);
    let gp = 0;
    for (let k = start; k < end; k++) gp += r.y[k] as number;
    tp += gp;
    fp += end - start - gp;
    if (gp > 0) ap += (gp / r.positives) * (tp / (tp + fp));
  }
  return ap;
}

export function brier(data: Labelled): number {
  const n = data.probabilities.length;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const d = (data.probabilities[i] as number) - (data.outcomes[i] as number);
    sum += d * d;
  }
  return n === 0 ? Number.NaN : sum / n;
}

/** Probabilities of exactly 0 or 1 have no logit: they are clipped this far inside (0, 1). */
export const LOGIT_CLIP = 1e-12;

export function logit(p: number): number {
  const q = Math.min(Math.max(p, LOGIT_CLIP), 1 - LOGIT_CLIP);
  return Math.log(q / (1 - q));
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

const MAX_ITERATIONS = 100;
const TOLERANCE = 1e-12;

/**
 * Calibration-in-the-large: the intercept a of logit P(death) = a + logit(p), the slope fixed at
 * 1 (an offset); 0 when the mean risk is right (Van Calster et al., J Clin Epidemiol 2016;74:167).
 * Newton's method; null when one class is absent or it does not converge.
 */
export function calibrationIntercept(data: Labelled): number | null {
  const n = data.probabilities.length;
  const offset = new Float64Array(n);
  for (let i = 0; i < n; i++) offset[i] = logit(data.probabilities[i] as number);
  let a = 0;
  for (let it = 0; it < MAX_ITERATIONS; it++) {
    let gradient = 0;
    let information = 0;
    for (let i = 0; i < n; i++) {
      const mu = sigmoid(a + (offset[i] as number));
      gradient += (data.outcomes[i] as number) - mu;
      information += mu * (1 - mu);
    }
    if (!(information > 0)) return null;
    const step = gradient / information;
    a += step;
    if (!Number.isFinite(a)) return null;
    if (Math.abs(step) < TOLERANCE * (1 + Math.abs(a))) return a;
  }
  return null;
}

/**
 * The logistic regression logit P(death) = a + b logit(p), by iteratively reweighted least
 * squares: b is the calibration slope (1 ideal, < 1 predictions too extreme). Null when it does
 * not converge (one class only, or perfect separation).
 */
export function logisticRecalibration(data: Labelled): { intercept: number; slope: number } | null {
  const n = data.probabilities.length;
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = logit(data.probabilities[i] as number);
  let a = 0;
  let b = 1;
  for (let it = 0; it < MAX_ITERATIONS; it++) {
    let g0 = 0;
    let g1 = 0;
    let h00 = 0;
    let h01 = 0;
    let h11 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[i] as number;
      const mu = sigmoid(a + b * xi);
      const r = (data.outcomes[i] as number) - mu;
      const w = mu * (1 - mu);
      g0 += r;
      g1 += r * xi;
      h00 += w;
      h01 += w * xi;
      h11 += w * xi * xi;
    }
    const det = h00 * h11 - h01 * h01;
    if (!(det > 0)) return null;
    const da = (h11 * g0 - h01 * g1) / det;
    const db = (h00 * g1 - h01 * g0) / det;
    a += da;
    b += db;
    if (!Number.isFinite(a) || !Number.isFinite(b)) return null;
    if (Math.abs(da) < TOLERANCE * (1 + Math.abs(a)) && Math.abs(db) < TOLERANCE * (1 + Math.abs(b)))
      return { intercept: a, slope: b };
  }
  return null;
}

/** Expected calibration error over `bins` equal-width bins of predicted risk (p = 1 in the last). */
export function expectedCalibrationError(data: Labelled, bins = 10): number {
  const n = data.probabilities.length;
  const count = new Float64Array(bins);
  const sumP = new Float64Array(bins);
  const sumY = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const p = data.probabilities[i] as number;
    const b = Math.min(Math.floor(p * bins), bins - 1);
    count[b] = (count[b] as number) + 1;
    sumP[b] = (sumP[b] as number) + p;
    sumY[b] = (sumY[b] as number) + (data.outcomes[i] as number);
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) {
    const c = count[b] as number;
    if (c > 0) ece += (c / n) * Math.abs((sumP[b] as number) / c - (sumY[b] as number) / c);
  }
  return ece;
}

export interface RiskGroup {
  predicted: number;
  observed: number;
  n: number;
}

/**
 * Stays in `groups` groups of rising predicted risk, as numpy's array_split of the stable sort
 * (the first n mod groups hold one stay more): mean predicted risk, observed death rate, size.
 */
export function riskGroups(r: Ranked, groups = 10): RiskGroup[] {
  const out: RiskGroup[] = [];
  const base = Math.floor(r.n / groups);
  const extra = r.n % groups;
  let start = 0;
  for (let g = 0; g < groups; g++) {
    const size = base + (g < extra ? 1 : 0);
    if (size === 0) continue;
    let sp = 0;
    let sy = 0;
    for (let k = start; k < start + size; k++) {
      sp += r.p[k] as number;
      sy += r.y[k] as number;
    }
    out.push({ predicted: sp / size, observed: sy / size, n: size });
    start += size;
  }
  return out;
}

export interface ThresholdRow {
  threshold: number;
  flaggedShare: number;
  sensitivity: number | null;
  specificity: number | null;
  ppv: number | null;
  npv: number | null;
  /** Number needed to evaluate: stays flagged per death among them (1 / ppv). */
  nne: number | null;
  /** Vickers and Elkin, Med Decis Making 2006;26:565: TP/n - FP/n * t / (1 - t). */
  netBenefit: number;
}

/** Each threshold's confusion figures, a stay flagged when its probability is >= the threshold. */
export function thresholdTable(r: Ranked, thresholds: readonly number[]): ThresholdRow[] {
  return thresholds.map((t) => {
    // First sorted position with p >= t: everything from there on is flagged.
    let lo = 0;
    let hi = r.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((r.p[mid] as number) >= t) hi = mid;
      else lo = mid + 1;
    }
    let tp = 0;
    for (let k = lo; k < r.n; k++) tp += r.y[k] as number;
    const flagged = r.n - lo;
    const fp = flagged - tp;
    const fn = r.positives - tp;
    const tn = r.negatives - fp;
    const ppv = flagged > 0 ? tp / flagged : null;
    return {
      threshold: t,
      flaggedShare: r.n > 0 ? flagged / r.n : 0,
      sensitivity: r.positives > 0 ? tp / r.positives : null,
      specificity: r.negatives > 0 ? tn / r.negatives : null,
      ppv,
      npv: tn + fn > 0 ? tn / (tn + fn) : null,
      nne: ppv !== null && ppv > 0 ? 1 / ppv : null,
      netBenefit: r.n > 0 ? tp / r.n - (fp / r.n) * (t / (1 - t)) : 0,
    };
  });
}

/**
 * The lowest threshold that flags at most `share` of the stays (flagged when p >= threshold): one
 * of the cohort's probabilities, so that ties are never split; null when its highest flags more.
 */
export function thresholdForShare(r: Ranked, share: number): number | null {
  const most = share * r.n;
  let best: number | null = null;
  for (let g = r.groupEnds.length - 1; g >= 0; g--) {
    const start = g === 0 ? 0 : (r.groupEnds[g - 1] as number);
    if (r.n - start > most) break;
    best = r.p[start] as number;
  }
  return best;
}

/** Net benefit of treating every stay as flagged, at threshold t. */
export function treatAllNetBenefit(r: Ranked, t: number): number {
  const prevalence = r.n > 0 ? r.positives / r.n : 0;
  return prevalence - (1 - prevalence) * (t / (1 - t));
}
