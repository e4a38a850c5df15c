import assert from 'node:assert/strict';
import { test } from 'node:test';
import { insertPredictions, type PredictionRow } from '../../src/store/predictions.js';
import { startRetention } from '../../src/store/retention.js';
import { openStore } from '../../src/store/store.js';
import { BACKENDS, storeConfig } from './backends.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1);

const row = (id: string, at: number): PredictionRow => ({
  id,
  at,
  subjectKey: null,
  route: 'predict',
  modelName: 'icu-mortality',
  modelVersion: '1.0.0',
  probability: 0.2,
  inputProfile: null,
  hoursUsed: 4,
  tier: 'moderate',
  silent: false,
});

for (const { backend, skip } of BACKENDS) {
  test(
    `${backend}: the retention sweep deletes predictions older than the retention, keeps the rest`,
    { skip },
    async (t) => {
      const store = openStore(await storeConfig(t, backend));
      t.after(() => store.close());
      await store.ready();
      await insertPredictions(store.client, [
        row('old', NOW - 31 * DAY),
        row('edge', NOW - 30 * DAY),
        row('new', NOW - 29 * DAY),
      ]);
      const infos: object[] = [];
      const stop = startRetention(store.client, {
        days: 30,
        ready: () => store.ready(),
        now: () => NOW,
        log: { info: (obj) => infos.push(obj), warn: () => undefined },
      });
      await stop();
      const left = await store.client.all<{ id: string }>('SELECT id FROM predictions ORDER BY at');
      assert.deepEqual(
        left.map((r) => r.id),
        ['edge', 'new'],
      );
      assert.deepEqual(infos, [{ deleted: 1, retentionDays: 30 }]);
    },
  );
}
