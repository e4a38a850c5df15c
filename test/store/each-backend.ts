/** A migrated store on each backend (test/store/backends.ts), for the feature tables' tests. */
import type { TestContext } from 'node:test';
import type { SqlClient } from '../../src/store/sql-client.js';
import { openStore } from '../../src/store/store.js';
import { storeConfig, type Backend } from './backends.js';

export { BACKENDS } from './backends.js';

/** The client of a fresh store on `backend`, its migrations applied; closed when the test ends. */
export async function openBackend(t: TestContext, backend: Backend): Promise<SqlClient> {
  const store = openStore(await storeConfig(t, backend));
  t.after(() => store.close());
  await store.ready();
  return store.client;
}
