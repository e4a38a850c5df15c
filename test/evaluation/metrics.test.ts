import assert from 'node:assert/strict';
import { test } from 'node:test';
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
  thresholdForShare,
  thresholdTable,
  treatAllNetBenefit,
} from '../../src/evaluation/metrics.js';
import { seededRandom } from '../../src/evaluation/random.js';

// Figures computed by hand; the scikit-learn comparison is training/tests/test_evaluation_parity.py.
const close = (actual: number | null, expected: number, tol = 1e-12): void => {
  assert.ok(actual !== null && Math.abs(actual - expected) <= tol, `${actual} is not ${expected}`);
};
const fourStays = { probabilities: [0.1, 0.4, 0.35, 0.8], outcomes: [0, 0, 1, 1] };

test('AUROC counts the pairs a death outranks: 3 of 4 for the scikit-learn example', () => {
  close(auroc(rank(fourStays)), 0.75);
});

test('AUROC counts a tie between a death and a survivor as one half', () => {
  // Deaths 0.5 and 0.8, survivors 0.5 and 0.2: 0.8 beats both, 0.5 ties one and beats one: 3.5 of 4.
  close(auroc(rank({ probabilities: [0.5, 0.5, 0.2, 0.8], outcomes: [1, 0, 0, 1] })), 0.875);
});

test('AUROC is null when one class is absent', () => {
  assert.equal(auroc(rank({ probabilities: [0.1, 0.2], outcomes: [0, 0] })), null);
});

test('average precision sums recall gained times precision: 0.5 x 1 + 0.5 x 2/3', () => {
  close(averagePrecision(rank(fourStays)), 0.5 + 0.5 * (2 / 3));
});

test('the Brier score is the mean squared difference', () => {
  close(brier(fourStays), (0.01 + 0.16 + 0.4225 + 0.04) / 4);
});

test('ECE weighs each tenth of risk by its stays', () => {
  const data = { probabilities: [0.05, 0.15, 0.12, 0.95, 1], outcomes: [0, 1, 0, 1, 1] };
  // Bins: {0.05} |0.05-0|; {0.15, 0.12} |0.135-0.5|; {0.95, 1} (1 in the last bin) |0.975-1|.
  close(expectedCalibrationError(data), (0.05 + 2 * 0.365 + 2 * 0.025) / 5);
});

test('calibration-in-the-large is the logit of the observed rate minus that of a constant prediction', () => {
  const data = { probabilities: [0.2, 0.2, 0.2, 0.2], outcomes: [1, 0, 0, 0] };
  close(calibrationIntercept(data), Math.log(4 / 3), 1e-10);
});

test('the logistic recalibration of two risk levels passes through both observed rates', () => {
  const probabilities = [...Array(10).fill(0.2), ...Array(10).fill(0.5)];
  const outcomes = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0];
  const fit = logisticRecalibration({ probabilities, outcomes });
  // a + b logit(0.5) = logit(0.6); a + b logit(0.2) = logit(0.3).
  const a = Math.log(0.6 / 0.4);
  const b = (Math.log(0.3 / 0.7) - a) / Math.log(0.2 / 0.8);
  close(fit?.intercept ?? null, a, 1e-9);
  close(fit?.slope ?? null, b, 1e-9);
});

test('the recalibration does not converge with perfectly separated outcomes', () => {
  assert.equal(logisticRecalibration({ probabilities: [0.1, 0.2, 0.8, 0.9], outcomes: [0, 0, 1, 1] }), null);
});

test('risk groups split the sorted stays as numpy.array_split: the first n mod 10 one larger', () => {
  const probabilities = Array.from({ length: 12 }, (_, i) => i / 12);
  const outcomes = probabilities.map((_, i) => (i >= 10 ? 1 : 0));
  const groups = riskGroups(rank({ probabilities, outcomes }));
  assert.deepEqual(
    groups.map((g) => g.n),
    [2, 2, 1, 1, 1, 1, 1, 1, 1, 1],
  );
  close(groups[0]?.predicted ?? null, (0 + 1 / 12) / 2);
  assert.equal(groups[9]?.observed, 1);
  assert.equal(groups[0]?.observed, 0);
});

test('a threshold flags stays at or above it, with the confusion figures and net benefit', () => {
  const [row] = thresholdTable(rank(fourStays), [0.35]);
  // Flagged 0.35 (death), 0.4 (survivor), 0.8 (death): TP 2, FP 1, FN 0, TN 1.
  assert.deepEqual(
    { ...row, netBenefit: undefined },
    {
      threshold: 0.35,
      flaggedShare: 0.75,
      sensitivity: 1,
      specificity: 0.5,
      ppv: 2 / 3,
      npv: 1,
      nne: 1.5,
      netBenefit: undefined,
    },
  );
  close(row?.netBenefit ?? null, 2 / 4 - (1 / 4) * (0.35 / 0.65));
  close(treatAllNetBenefit(rank(fourStays), 0.35), 0.5 - 0.5 * (0.35 / 0.65));
});

test('a threshold above every probability flags nobody: no PPV, no NNE, net benefit 0', () => {
  const [row] = thresholdTable(rank(fourStays), [0.9]);
  assert.equal(row?.flaggedShare, 0);
  assert.equal(row?.ppv, null);
  assert.equal(row?.nne, null);
  assert.equal(row?.netBenefit, 0);
});

test('the threshold for a target share flags at most that share, never splitting tied stays', () => {
  const r = rank({
    probabilities: [0.1, 0.2, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
    outcomes: [0, 0, 1, 0, 0, 1, 0, 1, 1, 1],
  });
  // 10 stays: 10% is 1 stay (0.95); 25% is 2.5, so 2 (0.9 and up); 85% is 8.5, but the two
  // stays at 0.2 would make 9, so 7 (0.3 and up); 5% is half a stay: no threshold flags so few.
  assert.equal(thresholdForShare(r, 0.1), 0.95);
  assert.equal(thresholdForShare(r, 0.25), 0.9);
  assert.equal(thresholdForShare(r, 0.85), 0.3);
  assert.equal(thresholdForShare(r, 0.05), null);
  assert.equal(thresholdForShare(r, 1), 0.1);
});

test('the bootstrap interval is the same for the same seed and brackets the AUROC', () => {
  const random = seededRandom(7);
  const probabilities: number[] = [];
  const outcomes: number[] = [];
  for (let i = 0; i < 400; i++) {
    const p = random.next();
    probabilities.push(p);
    outcomes.push(random.next() < p ? 1 : 0);
  }
  const r = rank({ probabilities, outcomes });
  const a = bootstrapAuroc(r, { resamples: 300, seed: 1 }).aurocCi95;
  const b = bootstrapAuroc(r, { resamples: 300, seed: 1 }).aurocCi95;
  const c = bootstrapAuroc(r, { resamples: 300, seed: 2 }).aurocCi95;
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const point = auroc(r) as number;
  assert.ok(a !== null && a[0] < point && point < a[1] && a[1] - a[0] < 0.2, `${a} around ${point}`);
});

test('perfectly separated stays have the interval [1, 1]; one class only has none', () => {
  const r = rank({ probabilities: [0.1, 0.2, 0.8, 0.9], outcomes: [0, 0, 1, 1] });
  assert.deepEqual(bootstrapAuroc(r, { resamples: 50, seed: 1 }).aurocCi95, [1, 1]);
  assert.equal(
    bootstrapAuroc(rank({ probabilities: [0.1], outcomes: [1] }), { resamples: 5, seed: 1 }).aurocCi95,
    null,
  );
});

test('a probability outside [0, 1] or an outcome other than 0 or 1 is refused', () => {
  assert.throws(() => rank({ probabilities: [1.2], outcomes: [0] }), /not in \[0, 1\]/);
  assert.throws(() => rank({ probabilities: [0.2], outcomes: [2] }), /not 0 or 1/);
});
