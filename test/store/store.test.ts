import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { migrate, type Migration } from '../../src/store/migrate.js';
import { migrations } from '../../src/store/migrations.js';
import { openStore } from '../../src/store/store.js';
import { toSqlite } from '../../src/store/sqlite-host.js';
import { BACKENDS, TEST_SITE_KEY, storeConfig } from './backends.js';

test('$n placeholders become ? with the values in the order they appear', () => {
  assert.deepEqual(toSqlite('SELECT $2, $1, $2', ['a', 'b']), { sql: 'SELECT ?, ?, ?', values: ['b', 'a', 'b'] });
  assert.deepEqual(toSqlite('SELECT $1', [true]).values, [1]);
  assert.throws(() => toSqlite('SELECT $2', ['a']), /\$2 has no value/);
});

for (const { backend, skip } of BACKENDS) {
  test(`${backend}: migrations apply once; a second run applies nothing`, { skip }, async (t) => {
    const store = openStore(await storeConfig(t, backend));
    t.after(() => store.close());
    await store.ready();
    assert.deepEqual(await migrate(store.client, migrations), []);
    const rows = await store.client.all<{ version: number; name: string }>(
      'SELECT version, name FROM schema_migrations ORDER BY version',
    );
    assert.deepEqual(
      rows.map((r) => [r.version, r.name]),
      migrations.map((m) => [m.version, m.name]),
    );
  });

  test(
    `${backend}: two stores migrating the same database at once both succeed, each step once`,
    { skip },
    async (t) => {
      const config = await storeConfig(t, backend);
      const extra: Migration[] = [
        ...migrations,
        { version: migrations.length + 1, name: 'probe', up: ['CREATE TABLE probe (n BIGINT NOT NULL)'] },
      ];
      const a = openStore(config, { migrations: extra });
      const b = openStore(config, { migrations: extra });
      t.after(() => Promise.all([a.close(), b.close()]));
      await Promise.all([a.ready(), b.ready()]);
      const count = await a.client.get<{ n: number }>('SELECT COUNT(*) AS n FROM schema_migrations');
      assert.equal(Number(count?.n), extra.length);
    },
  );

  test(`${backend}: a failing statement rolls the whole transaction back`, { skip }, async (t) => {
    const store = openStore(await storeConfig(t, backend));
    t.after(() => store.close());
    await store.ready();
    await store.client.run('CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)');
    await assert.rejects(
      store.client.transaction(async (tx) => {
        await tx.run('INSERT INTO kv (k, v) VALUES ($1, $2)', ['a', 1]);
        await tx.run('INSERT INTO kv (k, v) VALUES ($1, $2)', ['a', 2]);
      }),
    );
    assert.equal(await store.client.get('SELECT * FROM kv'), undefined);
    const inserted = await store.client.transaction(async (tx) => {
      await tx.run('INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING', ['b', 2 ** 41]);
      return tx.all<{ k: string; v: number }>('SELECT k, v FROM kv');
    });
    // BIGINT epoch milliseconds come back as numbers on both engines.
    assert.deepEqual(inserted, [{ k: 'b', v: 2 ** 41 }]);
  });

  test(
    `${backend}: a store opened again on the same location keeps its rows and its subject keys`,
    { skip },
    async (t) => {
      const config = await storeConfig(t, backend);
      const first = openStore(config);
      await first.ready();
      await first.client.run('CREATE TABLE kept (k TEXT NOT NULL)');
      await first.client.run('INSERT INTO kept (k) VALUES ($1)', [first.subjectKey('patient-1')]);
      await first.close();
      const second = openStore(config);
      t.after(() => second.close());
      await second.ready();
      const row = await second.client.get<{ k: string }>('SELECT k FROM kept');
      assert.equal(row?.k, second.subjectKey('patient-1'));
    },
  );
}

test('subject keys are HMAC-SHA256 of the id under SITE_ID_KEY', async (t) => {
  const store = openStore(await storeConfig(t, 'sqlite', { siteIdKey: TEST_SITE_KEY }));
  t.after(() => store.close());
  // Reference: RFC 2104 HMAC as computed by node:crypto directly, hex encoded.
  const expected = createHmac('sha256', Buffer.from(TEST_SITE_KEY)).update('MRN-0042').digest('hex');
  assert.equal(store.subjectKey('MRN-0042'), expected);
  assert.notEqual(store.subjectKey('MRN-0043'), expected);
});

test('without SITE_ID_KEY, SQLite generates a 0600 key file once and reuses it', async (t) => {
  const config = await storeConfig(t, 'sqlite');
  const first = openStore(config);
  const key = first.subjectKey('x');
  await first.close();
  const file = join(config.dataDir, 'site-key');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const secret = (await readFile(file, 'utf8')).trim();
  assert.ok(Buffer.byteLength(secret) >= 32);
  assert.equal(key, createHmac('sha256', Buffer.from(secret)).update('x').digest('hex'));
  const second = openStore(config);
  t.after(() => second.close());
  assert.equal(second.subjectKey('x'), key);
});

test('a PostgreSQL that is down at start: ready() waits, health says down, close() stops retrying', async (t) => {
  const config = await storeConfig(t, 'sqlite', {
    databaseUrl: 'postgres://nobody:nothing@127.0.0.1:1/none',
    siteIdKey: TEST_SITE_KEY,
  });
  const warnings: string[] = [];
  const store = openStore(config, { retryMs: 5, log: { info: () => undefined, warn: (_, msg) => warnings.push(msg) } });
  let settled = false;
  const ready = store.ready().then(
    () => (settled = true),
    () => (settled = true),
  );
  while (warnings.length < 2) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(settled, false);
  assert.deepEqual(await store.health(), { backend: 'postgres', status: 'down' });
  await store.close();
  await ready;
  assert.match(warnings[0] as string, /store not ready: retrying/);
});
