/**
 * The SQLite client runs its connection in a worker thread: these tests hold it to the same
 * answers as a synchronous connection (values, error codes, rollback), and check what the thread
 * adds: the event loop runs during a write, a dead worker fails calls instead of hanging them,
 * and nothing keeps the process alive.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { migrate } from '../../src/store/migrate.js';
import { migrations } from '../../src/store/migrations.js';
import { insertPredictions, type PredictionRow } from '../../src/store/predictions.js';
import { PredictionRecorder, recorderMetrics } from '../../src/store/recorder.js';
import { WORKER_EXITED, openSqlite, type SqliteOptions } from '../../src/store/sqlite.js';
import { openBackend } from './backends.js';
import { CRASH_SQL } from './fixtures/crashing-sqlite-worker.js';

async function fileClient(t: TestContext, options: SqliteOptions = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'icu-sqlite-'));
  const client = openSqlite(join(dir, 'db.sqlite'), options);
  t.after(async () => {
    await client.close();
    await rm(dir, { recursive: true, force: true });
  });
  return client;
}

test('a failing statement in a transaction rejects with its SQLite code and rolls the transaction back', async (t) => {
  const client = await fileClient(t);
  await client.run('CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
  await client.run('INSERT INTO kv (k, v) VALUES ($1, $2)', ['kept', 1]);
  await assert.rejects(
    client.transaction(async (tx) => {
      await tx.run('INSERT INTO kv (k, v) VALUES ($1, $2)', ['new', 2]);
      await tx.run('UPDATE kv SET v = $1 WHERE k = $2', [10, 'kept']);
      await tx.run('INSERT INTO kv (k, v) VALUES ($1, $2)', ['new', 3]);
    }),
    { code: 'SQLITE_CONSTRAINT_PRIMARYKEY', message: /UNIQUE constraint failed: kv\.k/ },
  );
  assert.deepEqual(await client.all('SELECT k, v FROM kv'), [{ k: 'kept', v: 1 }]);
  await assert.rejects(client.run('INSERT INTO kv (k, v) VALUES ($1, NULL)', ['x']), {
    code: 'SQLITE_CONSTRAINT_NOTNULL',
  });
  await assert.rejects(client.all('SELEC 1'), { code: 'SQLITE_ERROR', message: /syntax error/ });
  // The connection is usable after each failure.
  assert.deepEqual(await client.get('SELECT COUNT(*) AS n FROM kv'), { n: 1 });
});

test('values cross the thread unchanged: integers to 2^53, doubles, null, text, BLOBs as Buffers', async (t) => {
  const client = await fileClient(t);
  await client.run('CREATE TABLE v (i BIGINT, d DOUBLE PRECISION, s TEXT, f INTEGER)');
  const text = 'é 漢字 \u{1F600} \'"$1';
  await client.run('INSERT INTO v (i, d, s, f) VALUES ($1, $2, $3, $4), ($5, $6, $7, $8)', [
    Number.MAX_SAFE_INTEGER,
    0.1,
    text,
    true,
    -1_767_225_600_000n,
    5e-324,
    null,
    false,
  ]);
  assert.deepEqual(await client.all('SELECT i, d, s, f FROM v ORDER BY i'), [
    { i: -1_767_225_600_000, d: 5e-324, s: null, f: 0 },
    { i: 9_007_199_254_740_991, d: 0.1, s: text, f: 1 },
  ]);
  const blob = await client.get<{ b: unknown }>("SELECT X'00ff10' AS b");
  assert.ok(Buffer.isBuffer(blob?.b));
  assert.deepEqual([...(blob?.b as Buffer)], [0x00, 0xff, 0x10]);
});

test("':memory:' opens a private database in the worker", async (t) => {
  const client = openSqlite(':memory:');
  t.after(() => client.close());
  await client.run('CREATE TABLE m (n INTEGER)');
  await client.transaction((tx) => tx.run('INSERT INTO m (n) VALUES ($1), ($2)', [1, 2]));
  assert.deepEqual(await client.get('SELECT SUM(n) AS total FROM m'), { total: 3 });
});

test('the event loop turns while a large write runs: a setImmediate queued with it runs before it is done', async (t) => {
  const client = await openBackend(t, 'sqlite');
  const rows: PredictionRow[] = Array.from({ length: 5000 }, (_, i) => ({
    id: `row-${i}`,
    at: Date.UTC(2026, 0, 1) + i,
    subjectKey: `subject-${i % 97}`,
    route: 'predict',
    modelName: 'icu-mortality',
    modelVersion: '0.0.0-tiny',
    probability: i / 5000,
    inputProfile: null,
    hoursUsed: 48,
    tier: 'low',
    silent: false,
  }));
  const events: string[] = [];
  await client.transaction(async (tx) => {
    setImmediate(() => events.push('setImmediate ran'));
    await insertPredictions(tx, rows);
    events.push('rows inserted');
  });
  events.push('committed');
  assert.deepEqual(events, ['setImmediate ran', 'rows inserted', 'committed']);
  assert.deepEqual(await client.get('SELECT COUNT(*) AS n FROM predictions'), { n: 5000 });
});

// The timeout turns a hang (a call left waiting on a dead worker) into a failure.
test(
  'a worker that dies fails the calls waiting on it and every later one until it is replaced, without hanging',
  { timeout: 20_000 },
  async (t) => {
    const client = await fileClient(t, {
      workerUrl: new URL('./fixtures/crashing-sqlite-worker.ts', import.meta.url),
      restartIntervalMs: 3_600_000,
    });
    await client.run('CREATE TABLE c (n INTEGER)');
    const transaction = client.transaction(async (tx) => {
      await tx.run('INSERT INTO c (n) VALUES ($1)', [1]);
      await tx.run(CRASH_SQL);
    });
    const queued = client.get('SELECT COUNT(*) AS n FROM c');
    const exited = { code: WORKER_EXITED, message: /the SQLite worker stopped \(exit code 70\)/ };
    await assert.rejects(transaction, exited);
    await assert.rejects(queued, exited);
    await assert.rejects(client.run('INSERT INTO c (n) VALUES ($1)', [2]), exited);
    await assert.rejects(
      client.transaction((tx) => tx.run('INSERT INTO c (n) VALUES ($1)', [3])),
      exited,
    );
  },
);

test('a crashed worker is replaced at the next call: committed rows are there, the crashed transaction is not', async (t) => {
  const crashes: string[] = [];
  const client = await fileClient(t, {
    workerUrl: new URL('./fixtures/crashing-sqlite-worker.ts', import.meta.url),
    restartIntervalMs: 0,
    onWorkerCrash: (why) => crashes.push(why),
  });
  await client.run('CREATE TABLE c (n INTEGER)');
  await client.run('INSERT INTO c (n) VALUES ($1)', [1]);
  await assert.rejects(
    client.transaction(async (tx) => {
      await tx.run('INSERT INTO c (n) VALUES ($1)', [2]);
      await tx.run(CRASH_SQL);
    }),
    { code: WORKER_EXITED },
  );
  assert.deepEqual(await client.all('SELECT n FROM c ORDER BY n'), [{ n: 1 }]);
  await client.transaction((tx) => tx.run('INSERT INTO c (n) VALUES ($1)', [3]));
  assert.deepEqual(await client.all('SELECT n FROM c ORDER BY n'), [{ n: 1 }, { n: 3 }]);
  assert.deepEqual(crashes, ['the SQLite worker stopped (exit code 70)']);
});

test(
  'a parameter that cannot be sent is refused without its value, and the store goes on',
  { timeout: 20_000 },
  async (t) => {
    const client = await fileClient(t);
    await client.run('CREATE TABLE c (n INTEGER)');
    const secret = () => 'patient 4711';
    await assert.rejects(client.run('INSERT INTO c (n) VALUES ($1)', [secret as unknown as number]), (error: Error) => {
      assert.ok(!error.message.includes('4711'), error.message);
      return true;
    });
    await client.run('INSERT INTO c (n) VALUES ($1)', [5]);
    assert.deepEqual(await client.all('SELECT n FROM c'), [{ n: 5 }]);
  },
);

test(
  'the recorder counts a dead worker as a failed write and drops its rows at shutdown',
  { timeout: 20_000 },
  async (t) => {
    const client = await fileClient(t, {
      workerUrl: new URL('./fixtures/crashing-sqlite-worker.ts', import.meta.url),
      restartIntervalMs: 3_600_000,
    });
    await migrate(client, migrations);
    await assert.rejects(client.run(CRASH_SQL), { code: WORKER_EXITED });
    const registry = new Registry();
    const reports: boolean[] = [];
    const recorder = new PredictionRecorder({
      store: { client, subjectKey: (id) => id, ready: async () => undefined, report: (ok) => reports.push(ok) },
      tierOf: () => 'low',
      bufferRows: 10,
      batchRows: 10,
      metrics: recorderMetrics(registry),
      retryMs: 1,
      maxRetryMs: 5,
    });
    const value = async (name: string): Promise<number> =>
      (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? NaN;
    recorder.scored({
      route: 'predict',
      result: {
        probability: 0.1,
        model: { name: 'icu-mortality', version: '0.0.0-tiny' },
        hoursUsed: 12,
        truncated: false,
        missingThroughout: [],
      },
      model: { name: 'icu-mortality', version: '0.0.0-tiny' },
      at: new Date(Date.UTC(2026, 0, 1)),
    });
    while ((await value('prediction_store_write_failures_total')) < 2) await new Promise((r) => setImmediate(r));
    assert.equal(reports[0], false);
    assert.equal(await recorder.close(0), 1);
    assert.equal(await value('prediction_store_dropped_total'), 1);
    assert.equal(await value('prediction_store_written_total'), 0);
  },
);

test('an open or closed SQLite store does not keep the process alive', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'icu-sqlite-'));
  try {
    const script = `
      import { openSqlite } from ${JSON.stringify(new URL('../../src/store/sqlite.ts', import.meta.url).href)};
      const closed = openSqlite(${JSON.stringify(join(dir, 'a.sqlite'))});
      const open = openSqlite(${JSON.stringify(join(dir, 'b.sqlite'))});
      openSqlite(${JSON.stringify(join(dir, 'c.sqlite'))}); // never used
      await closed.run('CREATE TABLE a (n INTEGER)');
      await open.run('CREATE TABLE b (n INTEGER)');
      await closed.close();
      console.log('done');`;
    // A kept-alive process never exits: the timeout turns that hang into a failure.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { timeout: 30_000 },
    );
    assert.equal(stdout.trim(), 'done');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
