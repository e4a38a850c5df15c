import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { monitoringFigures, type Pair } from '../../src/evaluation/monitoring.js';
import { monitoringPairs } from '../../src/store/monitoring.js';
import { upsertOutcomes, type OutcomeRow } from '../../src/store/outcomes.js';
import { insertPredictions, type PredictionRow } from '../../src/store/predictions.js';
import { BACKENDS, openBackend } from './backends.js';
import { assertFiguresMatch, sklearnFigures } from './sklearn-figures.js';

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
      const ref = sklearnFigures(data.pairs, THRESHOLD);
      assertFiguresMatch(figures.overall, ref.overall as Record<string, number>, 'overall');
      const total = [...data.unlabelled.values()].reduce((a, b) => a + b, 0);
      assert.equal(figures.overall.unlabelled, total);
      for (const v of figures.byVersion)
        assertFiguresMatch(v, ref[`version:${v.version}`] as Record<string, number>, v.version);
      const compared = figures.byProfile.filter((p) => ref[`profile:${p.profile}`]);
      assert.deepEqual(
        compared.map((p) => p.profile),
        ['full', 'vitals'],
      );
      for (const p of compared) assertFiguresMatch(p, ref[`profile:${p.profile}`] as Record<string, number>, p.profile);
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
