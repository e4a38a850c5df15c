import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { monitoringFigures, type Figures, type Pair } from '../../src/evaluation/monitoring.js';
import { monitoringPairs } from '../../src/store/monitoring.js';
import { upsertOutcomes, type OutcomeRow } from '../../src/store/outcomes.js';
import { insertPredictions, type PredictionRow } from '../../src/store/predictions.js';
import { BACKENDS, openBackend } from './each-backend.js';

/**
 * Live monitoring's figures on a synthetic cohort in the store, against scikit-learn and numpy
 * on the pairs this test builds itself (each outcome's latest prediction at or before it, in the window).
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 5, 1);
const SINCE = NOW - 30 * DAY;
const THRESHOLD = 0.3;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Cohort {
  predictions: PredictionRow[];
  outcomes: OutcomeRow[];
  /** The pairs worked out here, and the unlabelled predictions per version/profile. */
  pairs: Pair[];
  unlabelled: Map<string, number>;
}

function cohort(): Cohort {
  const random = mulberry32(42);
  const predictions: PredictionRow[] = [];
  const outcomes: OutcomeRow[] = [];
  const pairs: Pair[] = [];
  const unlabelled = new Map<string, number>();
  let rowId = 0;
  const row = (
    subject: string | null,
    at: number,
    p: number,
    version: string,
    profile: string | null,
  ): PredictionRow => ({
    id: `r${rowId++}`,
    at,
    subjectKey: subject,
    route: 'predict',
    modelName: 'icu-mortality',
    modelVersion: version,
    probability: p,
    inputProfile: profile,
    hoursUsed: 6,
    tier: 'low',
    silent: false,
  });
  for (let s = 0; s < 1200; s++) {
    const subject = `k${s}`;
    const version = s % 2 === 0 ? '1.0.0' : '2.0.0';
    const profile = s % 40 === 0 ? null : s % 3 === 0 ? 'vitals' : 'full';
    const start = NOW - 25 * DAY + Math.floor(random() * 20 * DAY);
    // Two to four predictions an hour apart; the outcome comes after the last or between them.
    const count = 2 + Math.floor(random() * 3);
    const rows: PredictionRow[] = [];
    for (let k = 0; k < count; k++) {
      const p = Math.min(0.98, Math.max(0.01, random() ** 1.6));
      rows.push(row(subject, start + k * HOUR, Math.round(p * 1e6) / 1e6, version, profile));
    }
    predictions.push(...rows);
    const at = s % 7 === 0 ? start + (count - 1.5) * HOUR : start + (count + 24) * HOUR;
    const latest = rows.filter((r) => r.at <= at).at(-1) as PredictionRow;
    if (s % 11 === 0) {
      const key = `${version}|${profile ?? 'none'}`;
      unlabelled.set(key, (unlabelled.get(key) ?? 0) + rows.length);
      continue; // no outcome yet
    }
    const died = random() < latest.probability ? 1 : 0;
    outcomes.push({ subjectKey: subject, died: died === 1, at });
    pairs.push({ probability: latest.probability, died, version, profile: profile ?? 'none' });
  }
  // Outside the window: an old prediction with its outcome, and an old unlabelled one.
  predictions.push(
    row('old', SINCE - DAY, 0.9, '1.0.0', 'full'),
    row('old-unlabelled', SINCE - DAY, 0.5, '1.0.0', 'full'),
  );
  outcomes.push({ subjectKey: 'old', died: true, at: SINCE - DAY + HOUR });
  // An outcome whose only prediction is later: unmatched, in no pair. A prediction without an id: unlabelled.
  predictions.push(row('late', NOW - DAY, 0.2, '1.0.0', 'full'), row(null, NOW - DAY, 0.2, '2.0.0', 'vitals'));
  outcomes.push({ subjectKey: 'late', died: false, at: NOW - 2 * DAY });
  unlabelled.set('2.0.0|vitals', (unlabelled.get('2.0.0|vitals') ?? 0) + 1);
  return { predictions, outcomes, pairs, unlabelled };
}

const PYTHON = `
import json, sys
import numpy as np
from scipy.optimize import brentq
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
pairs = json.load(sys.stdin)
def figures(rows):
    p = np.array([r["probability"] for r in rows]); y = np.array([r["died"] for r in rows])
    z = np.log(p / (1 - p))
    fit = LogisticRegression(penalty=None, tol=1e-10, max_iter=1000).fit(z.reshape(-1, 1), y)
    intercept = brentq(lambda a: np.sum(y - 1 / (1 + np.exp(-(a + z)))), -5, 5, xtol=1e-14)
    flagged = p >= ${THRESHOLD}
    return {"n": int(len(y)), "deaths": int(y.sum()), "auroc": roc_auc_score(y, p),
            "slope": float(fit.coef_[0][0]), "intercept": float(intercept),
            "oe": float(y.sum() / p.sum()), "flaggedShare": float(flagged.mean()),
            "sensitivity": float((flagged & (y == 1)).sum() / (y == 1).sum()),
            "ppv": float((flagged & (y == 1)).sum() / flagged.sum())}
out = {"overall": figures(pairs)}
for key in ("version", "profile"):
    for g in sorted(set(r[key] for r in pairs)):
        rows = [r for r in pairs if r[key] == g]
        if sum(r["died"] for r in rows) >= 100 and sum(1 - r["died"] for r in rows) >= 100:
            out[key + ":" + g] = figures(rows)
print(json.dumps(out))
`;

function reference(pairs: readonly Pair[]): Record<string, Record<string, number>> {
  const run = spawnSync('/usr/bin/python3', ['-c', PYTHON], { input: JSON.stringify(pairs), encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as Record<string, Record<string, number>>;
}

function assertClose(actual: number | null, expected: number, what: string, tolerance = 1e-6): void {
  assert.ok(actual !== null && Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected}`);
}

function compare(f: Figures, ref: Record<string, number>, what: string): void {
  assert.equal(f.n, ref.n, `${what} n`);
  assert.equal(f.deaths, ref.deaths, `${what} deaths`);
  assert.equal(f.withheld, null, `${what} withheld`);
  assertClose(f.auroc, ref.auroc as number, `${what} auroc`, 1e-12);
  assertClose(f.calibration.slope, ref.slope as number, `${what} slope`, 1e-5);
  assertClose(f.calibration.interceptInTheLarge, ref.intercept as number, `${what} intercept`, 1e-8);
  assertClose(f.observedExpected, ref.oe as number, `${what} O/E`, 1e-12);
  assertClose(f.flaggedShare, ref.flaggedShare as number, `${what} flagged share`, 1e-12);
  assertClose(f.sensitivity, ref.sensitivity as number, `${what} sensitivity`, 1e-12);
  assertClose(f.ppv, ref.ppv as number, `${what} ppv`, 1e-12);
  const [low, high] = f.aurocCi95 ?? [NaN, NaN];
  assert.ok(low < (f.auroc as number) && (f.auroc as number) < high && high - low < 0.2, `${what} CI ${low}-${high}`);
}

for (const { backend, skip } of BACKENDS) {
  describe(`live monitoring figures on ${backend}`, { skip }, () => {
    it('joins each outcome to its latest prediction in the window and matches scikit-learn on those pairs', async (t) => {
      const client = await openBackend(t, backend);
      const data = cohort();
      await insertPredictions(client, data.predictions);
      await upsertOutcomes(client, data.outcomes, NOW);
      const read = await monitoringPairs(client, SINCE);
      const key = (p: Pair) => `${p.version}|${p.profile}|${p.probability}|${p.died}`;
      assert.deepEqual(read.pairs.map(key).sort(), data.pairs.map(key).sort());
      assert.deepEqual(
        Object.fromEntries(read.unlabelled.map((u) => [`${u.version}|${u.profile}`, u.count])),
        Object.fromEntries(data.unlabelled),
      );

      const figures = monitoringFigures(read.pairs, read.unlabelled, THRESHOLD);
      const ref = reference(data.pairs);
      compare(figures.overall, ref.overall as Record<string, number>, 'overall');
      const total = [...data.unlabelled.values()].reduce((a, b) => a + b, 0);
      assert.equal(figures.overall.unlabelled, total);
      for (const v of figures.byVersion) compare(v, ref[`version:${v.version}`] as Record<string, number>, v.version);
      const compared = figures.byProfile.filter((p) => ref[`profile:${p.profile}`]);
      assert.deepEqual(
        compared.map((p) => p.profile),
        ['full', 'vitals'],
      );
      for (const p of compared) compare(p, ref[`profile:${p.profile}`] as Record<string, number>, p.profile);
      // 30 stays without a profile: too few deaths and survivors for any outcome-based figure.
      const none = figures.byProfile.find((p) => p.profile === 'none');
      assert.ok(none && none.n > 0 && none.n < 40);
      assert.equal(none.auroc, null);
      assert.equal(none.aurocCi95, null);
      assert.equal(none.observedExpected, null);
      assert.equal(none.ppv, null);
      assert.match(none.withheld ?? '', /at least 100 of each/);
    });
  });
}
