import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.js';

const KEY = 'k'.repeat(32);

test('store defaults: SQLite in ./data, 100000 buffered rows, batches of 500, 365 days kept', () => {
  assert.deepEqual(loadConfig({}).store, {
    dataDir: './data',
    databaseUrl: undefined,
    siteIdKey: undefined,
    bufferRows: 100_000,
    batchRows: 500,
    retentionDays: 365,
  });
});

test('store variables are read as given', () => {
  const c = loadConfig({
    DATA_DIR: '/var/lib/icu',
    DATABASE_URL: 'postgres://u:p@db:5432/icu',
    SITE_ID_KEY: KEY,
    STORE_BUFFER_ROWS: '50',
    STORE_BATCH_ROWS: '7',
    PREDICTION_RETENTION_DAYS: '30',
  }).store;
  assert.deepEqual(c, {
    dataDir: '/var/lib/icu',
    databaseUrl: 'postgres://u:p@db:5432/icu',
    siteIdKey: KEY,
    bufferRows: 50,
    batchRows: 7,
    retentionDays: 30,
  });
});

test('DATABASE_URL without SITE_ID_KEY is refused: replicas must hash ids alike', () => {
  assert.throws(
    () => loadConfig({ DATABASE_URL: 'postgres://db/icu' }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /SITE_ID_KEY: required with DATABASE_URL/);
      return true;
    },
  );
});

test('a SITE_ID_KEY under 32 bytes, a non-postgres URL and a zero buffer are refused by name', () => {
  assert.throws(() => loadConfig({ SITE_ID_KEY: 'short' }), /SITE_ID_KEY: at least 32 bytes/);
  assert.throws(() => loadConfig({ DATABASE_URL: 'mysql://db/icu', SITE_ID_KEY: KEY }), /DATABASE_URL: a postgres/);
  assert.throws(() => loadConfig({ STORE_BUFFER_ROWS: '0' }), /STORE_BUFFER_ROWS/);
  assert.throws(() => loadConfig({ PREDICTION_RETENTION_DAYS: '0' }), /PREDICTION_RETENTION_DAYS/);
});
