/**
 * Every store test runs on both backends: SQLite in a temporary DATA_DIR, and PostgreSQL at
 * TEST_DATABASE_URL (.ci/run starts a cluster and sets it) in a schema of its own, dropped after.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import pg from 'pg';
import type { StoreConfig } from '../../src/store/config.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { openStore } from '../../src/store/store.js';

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL;
export const PG_SKIP = TEST_DATABASE_URL
  ? false
  : 'TEST_DATABASE_URL is unset: PostgreSQL tests need a server (.ci/run starts one and sets it)';

export type Backend = 'sqlite' | 'postgres';

export const BACKENDS: Array<{ backend: Backend; skip: string | false }> = [
  { backend: 'sqlite', skip: false },
  { backend: 'postgres', skip: PG_SKIP },
];

export const TEST_SITE_KEY = 'a-test-site-key-of-at-least-32-bytes!';

/** `url` with its connections' search_path and application_name set to `schema`. */
export function withSchema(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  u.searchParams.set('application_name', schema);
  return u.toString();
}

/** A fresh empty store location on `backend`, removed after the test. */
export async function storeConfig(
  t: TestContext,
  backend: Backend,
  overrides: Partial<StoreConfig> = {},
): Promise<StoreConfig> {
  const dataDir = await mkdtemp(join(tmpdir(), 'icu-store-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  let databaseUrl: string | undefined;
  if (backend === 'postgres') {
    const schema = `t_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    t.after(async () => {
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    });
    databaseUrl = withSchema(TEST_DATABASE_URL as string, schema);
  }
  return {
    dataDir,
    databaseUrl,
    siteIdKey: backend === 'postgres' ? TEST_SITE_KEY : undefined,
    bufferRows: 1000,
    batchRows: 100,
    retentionDays: 365,
    ...overrides,
  };
}

/** The client of a fresh store on `backend`, its migrations applied; closed when the test ends. */
export async function openBackend(t: TestContext, backend: Backend): Promise<SqlClient> {
  const store = openStore(await storeConfig(t, backend));
  t.after(() => store.close());
  await store.ready();
  return store.client;
}
