import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { monitoringPairs } from '../../src/store/monitoring.js';
import { insertPredictions, type PredictionRow } from '../../src/store/predictions.js';
import { startRetention } from '../../src/store/retention.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { openStore, type Store } from '../../src/store/store.js';
import { BACKENDS, storeConfig, type Backend } from './backends.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 5, 1);
const DAYS = 30;
// 2026-05-02T00:00Z: rows at it are kept, rows 1 ms before it are deleted.
const CUTOFF = NOW - DAYS * DAY;

const row = (id: string, at: number, subjectKey: string | null = null, probability = 0.2): PredictionRow => ({
  id,
  at,
  subjectKey,
  route: 'predict',
  modelName: 'icu-mortality',
  modelVersion: '1.0.0',
  probability,
  inputProfile: null,
  hoursUsed: 4,
  tier: 'moderate',
  silent: false,
});

async function open(t: TestContext, backend: Backend): Promise<Store> {
  const store = openStore(await storeConfig(t, backend));
  t.after(() => store.close());
  await store.ready();
  return store;
}

/** One sweep at NOW with a 30-day retention; returns what it logged. */
async function sweep(store: Store): Promise<{ infos: object[]; warns: object[] }> {
  const infos: object[] = [];
  const warns: object[] = [];
  const stop = startRetention(store.client, {
    days: DAYS,
    ready: () => store.ready(),
    now: () => NOW,
    log: { info: (obj) => infos.push(obj), warn: (obj) => warns.push(obj) },
  });
  await stop();
  return { infos, warns };
}

const keys = async (client: SqlClient, table: string): Promise<string[]> =>
  (await client.all<{ subject_key: string }>(`SELECT subject_key FROM ${table} ORDER BY subject_key`)).map(
    (r) => r.subject_key,
  );

for (const { backend, skip } of BACKENDS) {
  test(
    `${backend}: the retention sweep deletes predictions older than the retention, keeps the rest`,
    { skip },
    async (t) => {
      const store = await open(t, backend);
      await insertPredictions(store.client, [row('old', CUTOFF - 1), row('edge', CUTOFF), row('new', CUTOFF + 1)]);
      const { infos, warns } = await sweep(store);
      const left = await store.client.all<{ id: string }>('SELECT id FROM predictions ORDER BY at');
      assert.deepEqual(
        left.map((r) => r.id),
        ['edge', 'new'],
      );
      assert.deepEqual(infos, [{ deleted: { predictions: 1, outcomes: 0, alertStates: 0 }, retentionDays: DAYS }]);
      assert.deepEqual(warns, []);
    },
  );

  test(
    `${backend}: the retention sweep deletes outcomes known before the retention, whenever they were recorded`,
    { skip },
    async (t) => {
      const store = await open(t, backend);
      // [subject, at, recorded_at]: 'late' was known before the cutoff but imported yesterday.
      const outcomes: Array<[string, number, number]> = [
        ['old', CUTOFF - 1, CUTOFF - 1],
        ['late', CUTOFF - 1, NOW - DAY],
        ['edge', CUTOFF, CUTOFF],
        ['new', CUTOFF + 1, NOW - 40 * DAY],
      ];
      for (const [key, at, recordedAt] of outcomes)
        await store.client.run('INSERT INTO outcomes (subject_key, died, at, recorded_at) VALUES ($1, 1, $2, $3)', [
          key,
          at,
          recordedAt,
        ]);
      const { infos } = await sweep(store);
      assert.deepEqual(await keys(store.client, 'outcomes'), ['edge', 'new']);
      assert.deepEqual(infos, [{ deleted: { predictions: 0, outcomes: 2, alertStates: 0 }, retentionDays: DAYS }]);
    },
  );

  test(
    `${backend}: the retention sweep deletes last alerts shown before the retention, keeps the rest`,
    { skip },
    async (t) => {
      const store = await open(t, backend);
      for (const [key, at] of [
        ['old', CUTOFF - 1],
        ['edge', CUTOFF],
        ['new', CUTOFF + 1],
      ] as const)
        await store.client.run('INSERT INTO alert_state (subject_key, tier, probability, at) VALUES ($1, $2, $3, $4)', [
          key,
          'high',
          0.5,
          at,
        ]);
      const { infos } = await sweep(store);
      assert.deepEqual(await keys(store.client, 'alert_state'), ['edge', 'new']);
      assert.deepEqual(infos, [{ deleted: { predictions: 0, outcomes: 0, alertStates: 1 }, retentionDays: DAYS }]);
    },
  );

  test(`${backend}: a sweep that deletes nothing logs nothing`, { skip }, async (t) => {
    const store = await open(t, backend);
    await insertPredictions(store.client, [row('new', CUTOFF)]);
    assert.deepEqual(await sweep(store), { infos: [], warns: [] });
  });

  test(
    `${backend}: the sweep leaves the monitoring pairs of a window inside the retention as they were`,
    { skip },
    async (t) => {
      const store = await open(t, backend);
      await insertPredictions(store.client, [
        // a: predicted and known inside the window: the one pair.
        row('a1', CUTOFF + HOUR, 'a', 0.3),
        // b: predicted and known before it: both deleted, never counted.
        row('b1', CUTOFF - 2 * HOUR, 'b', 0.5),
        // c: the outcome's prediction is before the window (deleted), a later one is not labelled by it.
        row('c1', CUTOFF - 2 * HOUR, 'c', 0.6),
        row('c2', CUTOFF + 3 * HOUR, 'c', 0.7),
        // d and an anonymous result: no outcome, unlabelled.
        row('d1', CUTOFF + HOUR, 'd', 0.1),
        row('n1', CUTOFF + HOUR, null, 0.1),
      ]);
      for (const [key, died, at] of [
        ['a', 1, CUTOFF + 2 * HOUR],
        ['b', 0, CUTOFF - HOUR],
        ['c', 0, CUTOFF + HOUR],
      ] as const)
        await store.client.run('INSERT INTO outcomes (subject_key, died, at, recorded_at) VALUES ($1, $2, $3, $3)', [
          key,
          died,
          at,
        ]);
      // By hand: a's pair; d1 and n1 unlabelled; c2 has an outcome (c's), so it is not unlabelled.
      const expected = {
        pairs: [{ probability: 0.3, died: 1, version: '1.0.0', profile: 'none' }],
        unlabelled: [{ version: '1.0.0', profile: 'none', count: 2 }],
      };
      assert.deepEqual(await monitoringPairs(store.client, CUTOFF), expected);
      const { infos } = await sweep(store);
      assert.deepEqual(infos, [{ deleted: { predictions: 2, outcomes: 1, alertStates: 0 }, retentionDays: DAYS }]);
      assert.deepEqual(await monitoringPairs(store.client, CUTOFF), expected);
    },
  );

  test(`${backend}: the outcome and alert tables have the sweep's indexes on at`, { skip }, async (t) => {
    const store = await open(t, backend);
    const sql =
      backend === 'sqlite'
        ? "SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ('outcomes_at', 'alert_state_at') ORDER BY name"
        : "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema() AND indexname IN ('outcomes_at', 'alert_state_at') ORDER BY indexname";
    const names = (await store.client.all<{ name: string }>(sql)).map((r) => r.name);
    assert.deepEqual(names, ['alert_state_at', 'outcomes_at']);
  });
}
