import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import {
  countEncounters,
  deleteEncounter,
  deleteIdleEncounters,
  encountersTable,
  readEncounter,
  saveEncounter,
  type EncounterRecord,
} from '../../src/store/encounters.js';
import { openStore } from '../../src/store/store.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { BACKENDS, storeConfig, type Backend } from './backends.js';

async function client(t: TestContext, backend: Backend): Promise<SqlClient> {
  const store = openStore(await storeConfig(t, backend), { migrations: [{ version: 1, ...encountersTable }] });
  t.after(() => store.close());
  await store.ready();
  return store.client;
}

function record(key: string, revision: number, updatedAt: number): EncounterRecord {
  return {
    key,
    modelName: 'icu-mortality',
    modelVersion: '1.6.0',
    header: { age: 70, sex: 'female', icuType: 3, height: null, weight: 81.5, admittedAt: 1_700_000_000_000 },
    hours: {
      '0': { HR: { value: 88 } },
      '3': {
        Urine: {
          value: 150,
          parts: [
            [1, 100],
            [2, 50],
          ],
        },
      },
    },
    lastHour: 3,
    state: revision > 1 ? 'opaque-state' : null,
    stateHour: revision > 1 ? 3 : null,
    revision,
    createdAt: 1_700_000_000_000,
    updatedAt,
  };
}

for (const { backend, skip } of BACKENDS) {
  describe(`encounters on ${backend}`, { skip }, () => {
    it('reads back what was saved, field for field', async (t) => {
      const sql = await client(t, backend);
      const saved = record('k1', 1, 5);
      assert.equal(await saveEncounter(sql, saved, undefined), true);
      assert.deepEqual(await readEncounter(sql, 'k1'), saved);
      assert.equal(await readEncounter(sql, 'k2'), undefined);
    });

    it('lets only one of two writers of the same revision save', async (t) => {
      const sql = await client(t, backend);
      assert.equal(await saveEncounter(sql, record('k1', 1, 5), undefined), true);
      // A second first contact of the same encounter lost the race.
      assert.equal(await saveEncounter(sql, record('k1', 1, 6), undefined), false);
      assert.equal(await saveEncounter(sql, record('k1', 2, 7), 1), true);
      // Another writer that had read revision 1 too.
      assert.equal(await saveEncounter(sql, record('k1', 2, 8), 1), false);
      const now = await readEncounter(sql, 'k1');
      assert.equal(now?.revision, 2);
      assert.equal(now?.updatedAt, 7);
      assert.equal(now?.state, 'opaque-state');
    });

    it('deletes one encounter, and the idle ones by their last update', async (t) => {
      const sql = await client(t, backend);
      await saveEncounter(sql, record('old', 1, 100), undefined);
      await saveEncounter(sql, record('new', 1, 200), undefined);
      await saveEncounter(sql, record('gone', 1, 300), undefined);
      assert.equal(await countEncounters(sql), 3);
      assert.equal(await deleteEncounter(sql, 'gone'), true);
      assert.equal(await deleteEncounter(sql, 'gone'), false);
      assert.equal(await deleteIdleEncounters(sql, 200), 1);
      assert.equal(await readEncounter(sql, 'old'), undefined);
      assert.equal((await readEncounter(sql, 'new'))?.key, 'new');
      assert.equal(await countEncounters(sql), 1);
    });
  });
}
