import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { outcomeOf, upsertOutcomes } from '../../src/store/outcomes.js';
import { insertPredictions, type PredictionRow } from '../../src/store/predictions.js';
import { BACKENDS, openBackend } from './backends.js';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

function prediction(id: string, subjectKey: string | null, at: number, probability = 0.2): PredictionRow {
  return {
    id,
    at,
    subjectKey,
    route: 'predict',
    modelName: 'icu-mortality',
    modelVersion: '1.0.0',
    probability,
    inputProfile: 'vitals',
    hoursUsed: 6,
    tier: 'moderate',
    silent: false,
  };
}

for (const { backend, skip } of BACKENDS) {
  describe(`outcomes on ${backend}`, { skip }, () => {
    it('stores a new outcome, leaves a repeat unchanged and updates a changed one', async (t) => {
      const client = await openBackend(t, backend);
      await insertPredictions(client, [prediction('p1', 'k1', T0)]);
      const first = await upsertOutcomes(
        client,
        [{ subjectKey: 'k1', died: true, at: T0 + 48 * HOUR }],
        T0 + 50 * HOUR,
      );
      assert.deepEqual(first, [{ status: 'stored', matched: true }]);
      const repeat = await upsertOutcomes(
        client,
        [{ subjectKey: 'k1', died: true, at: T0 + 48 * HOUR }],
        T0 + 51 * HOUR,
      );
      assert.deepEqual(repeat, [{ status: 'unchanged', matched: true }]);
      const changed = await upsertOutcomes(
        client,
        [{ subjectKey: 'k1', died: false, at: T0 + 48 * HOUR }],
        T0 + 52 * HOUR,
      );
      assert.deepEqual(changed, [{ status: 'updated', matched: true }]);
      assert.deepEqual(await outcomeOf(client, 'k1'), { subjectKey: 'k1', died: false, at: T0 + 48 * HOUR });
      const moved = await upsertOutcomes(
        client,
        [{ subjectKey: 'k1', died: false, at: T0 + 49 * HOUR }],
        T0 + 53 * HOUR,
      );
      assert.deepEqual(moved, [{ status: 'updated', matched: true }]);
    });

    it('keeps the stored time of an outcome given without one', async (t) => {
      const client = await openBackend(t, backend);
      assert.deepEqual(await upsertOutcomes(client, [{ subjectKey: 'k1', died: true }], T0), [
        { status: 'stored', matched: false },
      ]);
      assert.deepEqual(await upsertOutcomes(client, [{ subjectKey: 'k1', died: true }], T0 + HOUR), [
        { status: 'unchanged', matched: false },
      ]);
      assert.deepEqual(await upsertOutcomes(client, [{ subjectKey: 'k1', died: false }], T0 + 2 * HOUR), [
        { status: 'updated', matched: false },
      ]);
      assert.deepEqual(await outcomeOf(client, 'k1'), { subjectKey: 'k1', died: false, at: T0 });
    });

    it('counts an outcome unmatched when its subject has no prediction at or before its time', async (t) => {
      const client = await openBackend(t, backend);
      await insertPredictions(client, [prediction('p1', 'k1', T0 + 10 * HOUR), prediction('p2', null, T0)]);
      const written = await upsertOutcomes(
        client,
        [
          { subjectKey: 'k1', died: false, at: T0 + 9 * HOUR }, // its only prediction is later
          { subjectKey: 'k2', died: true, at: T0 + 20 * HOUR }, // never predicted
          { subjectKey: 'k1', died: false, at: T0 + 10 * HOUR }, // the same subject again, now at the prediction's time
        ],
        T0 + 21 * HOUR,
      );
      assert.deepEqual(written, [
        { status: 'stored', matched: false },
        { status: 'stored', matched: false },
        { status: 'updated', matched: true },
      ]);
    });

    it('keeps order and repeats across a call of more than a thousand outcomes', async (t) => {
      const client = await openBackend(t, backend);
      await insertPredictions(client, [prediction('p1', 'c700', T0)]);
      const rows = Array.from({ length: 1000 }, (_, i) => ({ subjectKey: `c${i}`, died: false, at: T0 + HOUR }));
      rows.push({ subjectKey: 'c0', died: true, at: T0 + HOUR }, { subjectKey: 'c700', died: false, at: T0 + HOUR });
      const written = await upsertOutcomes(client, rows, T0 + 2 * HOUR);
      assert.equal(written.length, 1002);
      assert.deepEqual(written[700], { status: 'stored', matched: true });
      assert.deepEqual(written[999], { status: 'stored', matched: false });
      assert.deepEqual(written[1000], { status: 'updated', matched: false });
      assert.deepEqual(written[1001], { status: 'unchanged', matched: true });
      assert.deepEqual(await outcomeOf(client, 'c0'), { subjectKey: 'c0', died: true, at: T0 + HOUR });
    });
  });
}
