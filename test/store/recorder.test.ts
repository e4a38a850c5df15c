import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import pg from 'pg';
import { Registry } from 'prom-client';
import type { PredictionResult } from '../../src/clinical/types.js';
import { PredictionRecorder, recorderMetrics, type ScoredPrediction } from '../../src/store/recorder.js';
import { openStore, type Store } from '../../src/store/store.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { BACKENDS, TEST_DATABASE_URL, storeConfig, type Backend } from './backends.js';

const result = (probability: number, hoursUsed = 12): PredictionResult => ({
  probability,
  model: { name: 'icu-mortality', version: '0.0.0-tiny' },
  hoursUsed,
  truncated: false,
  missingThroughout: [],
  inputProfile: { scenario: 'full', label: 'Full', heldOutAuroc: null },
});

const event = (i: number, id?: string): ScoredPrediction => ({
  route: 'predict',
  ...(id === undefined ? {} : { id }),
  result: result(i / 1000),
  model: { name: 'icu-mortality', version: '0.0.0-tiny' },
  at: new Date(Date.UTC(2026, 0, 1) + i * 1000),
});

async function openTestStore(t: TestContext, backend: Backend): Promise<Store> {
  const store = openStore(await storeConfig(t, backend));
  t.after(() => store.close());
  await store.ready();
  return store;
}

function recorderOn(
  store: Pick<Store, 'client' | 'subjectKey' | 'ready' | 'report'>,
  options: { bufferRows?: number; batchRows?: number; warnings?: Array<{ obj: object; msg: string }> } = {},
) {
  const registry = new Registry();
  const metrics = recorderMetrics(registry);
  const recorder = new PredictionRecorder({
    store,
    tierOf: (p) => (p >= 0.4 ? 'high' : p >= 0.15 ? 'moderate' : 'low'),
    bufferRows: options.bufferRows ?? 1000,
    batchRows: options.batchRows ?? 100,
    metrics,
    retryMs: 1,
    maxRetryMs: 5,
    log: { info: () => undefined, warn: (obj, msg) => options.warnings?.push({ obj, msg }) },
  });
  const value = async (name: string): Promise<number> =>
    (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? NaN;
  return { recorder, value };
}

/** `client` whose transactions fail while `down()` says so, counting the attempts. */
function flaky(client: SqlClient, down: () => boolean): SqlClient & { attempts: number } {
  const wrapped = {
    ...client,
    attempts: 0,
    transaction: async <T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> => {
      wrapped.attempts++;
      if (down()) throw new Error('connection refused (simulated outage)');
      return client.transaction(fn);
    },
  };
  return wrapped;
}

const count = async (client: SqlClient): Promise<number> =>
  Number((await client.get<{ n: number }>('SELECT COUNT(*) AS n FROM predictions'))?.n);

for (const { backend, skip } of BACKENDS) {
  test(
    `${backend}: 250 results are written in 3 transactions of at most 100 rows, with what was scored`,
    { skip },
    async (t) => {
      const store = await openTestStore(t, backend);
      const client = flaky(store.client, () => false);
      const { recorder, value } = recorderOn({ ...store, client, ready: store.ready, report: store.report });
      for (let i = 0; i < 250; i++) recorder.scored(event(i, i === 7 ? 'MRN-7' : undefined));
      await recorder.flushed();
      assert.equal(client.attempts, 3);
      assert.equal(await count(store.client), 250);
      assert.equal(await value('prediction_store_written_total'), 250);
      assert.equal(await value('prediction_store_buffered_rows'), 0);
      const row = await store.client.get('SELECT * FROM predictions WHERE subject_key = $1', [
        store.subjectKey('MRN-7'),
      ]);
      assert.deepEqual(
        { ...row, id: undefined },
        {
          id: undefined,
          at: Date.UTC(2026, 0, 1) + 7000,
          subject_key: store.subjectKey('MRN-7'),
          route: 'predict',
          model_name: 'icu-mortality',
          model_version: '0.0.0-tiny',
          probability: 0.007,
          input_profile: 'full',
          hours_used: 12,
          tier: 'low',
          silent: 0,
        },
      );
      // Without an id, the subject key is null; tiers follow the injected thresholds.
      const tiers = await store.client.all<{ tier: string; n: number }>(
        'SELECT tier, COUNT(*) AS n FROM predictions WHERE subject_key IS NULL GROUP BY tier ORDER BY tier',
      );
      // p = i/1000: below 0.15 low (150, less the one with an id), then moderate up to 0.249.
      assert.deepEqual(
        tiers.map((r) => [r.tier, Number(r.n)]),
        [
          ['low', 149],
          ['moderate', 100],
        ],
      );
    },
  );

  test(`${backend}: rows written while the store is down land after it comes back`, { skip }, async (t) => {
    const store = await openTestStore(t, backend);
    let down = true;
    const client = flaky(store.client, () => down);
    const { recorder, value } = recorderOn({ ...store, client, ready: store.ready, report: store.report });
    for (let i = 0; i < 50; i++) recorder.scored(event(i));
    while (client.attempts < 3) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.equal(await count(store.client), 0);
    assert.equal(recorder.pending, 50);
    down = false;
    await recorder.flushed();
    assert.equal(await count(store.client), 50);
    assert.ok((await value('prediction_store_write_failures_total')) >= 3);
    assert.equal(await value('prediction_store_dropped_total'), 0);
  });

  test(
    `${backend}: a full buffer drops new results, counts them and logs without patient data`,
    { skip },
    async (t) => {
      const store = await openTestStore(t, backend);
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const warnings: Array<{ obj: object; msg: string }> = [];
      const { recorder, value } = recorderOn(
        { client: store.client, subjectKey: store.subjectKey, report: store.report, ready: () => gate },
        { bufferRows: 5, warnings },
      );
      for (let i = 0; i < 8; i++) recorder.scored(event(i, `MRN-${i}`));
      assert.equal(recorder.pending, 5);
      assert.equal(await value('prediction_store_dropped_total'), 3);
      assert.equal(warnings.length, 1, 'one warn line per interval, not one per row');
      assert.match(warnings[0]?.msg ?? '', /buffer is full/);
      assert.doesNotMatch(JSON.stringify(warnings), /MRN|0\.00[5-7]/);
      open();
      await recorder.flushed();
      assert.equal(await count(store.client), 5);
    },
  );

  test(
    `${backend}: close() writes what is buffered; a store down past the grace counts the rest lost`,
    { skip },
    async (t) => {
      const store = await openTestStore(t, backend);
      const first = recorderOn(store);
      for (let i = 0; i < 20; i++) first.recorder.scored(event(i));
      assert.equal(await first.recorder.close(1000), 0);
      assert.equal(await count(store.client), 20);
      const down = flaky(store.client, () => true);
      const second = recorderOn({ ...store, client: down, ready: store.ready, report: store.report });
      for (let i = 0; i < 4; i++) second.recorder.scored(event(100 + i));
      assert.equal(await second.recorder.close(20), 4);
      assert.equal(await second.value('prediction_store_dropped_total'), 4);
      assert.equal(await count(store.client), 20);
    },
  );
}

test(
  'postgres: connections killed by the server are replaced and queued rows still land',
  { skip: TEST_DATABASE_URL ? false : 'TEST_DATABASE_URL is unset' },
  async (t) => {
    const store = await openTestStore(t, 'postgres');
    const { recorder } = recorderOn(store, { batchRows: 10 });
    for (let i = 0; i < 30; i++) recorder.scored(event(i));
    await recorder.flushed();
    // pg_terminate_backend: what a server restart or a failover does to the pool's open connections.
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    // The test's connections carry its schema as application_name (backends.ts): only they are killed.
    const schema = (await store.client.get<{ s: string }>('SELECT current_schema() AS s'))?.s;
    const killed = await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
      [schema],
    );
    await admin.end();
    assert.ok(killed.rowCount !== null && killed.rowCount > 0);
    for (let i = 30; i < 60; i++) recorder.scored(event(i));
    await recorder.flushed();
    assert.equal(await count(store.client), 60);
  },
);
