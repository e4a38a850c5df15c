import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runOutcomesImport } from '../../src/cli/outcomes-import.js';
import { insertPredictions } from '../../src/store/predictions.js';
import { toStoreConfig } from '../../src/store/config.js';
import { openStore } from '../../src/store/store.js';
import { outcomeOf } from '../../src/store/outcomes.js';

const SITE_KEY = 'k'.repeat(40);

async function dataDir(t: import('node:test').TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icu-outcomes-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function storeAt(dir: string) {
  return openStore(
    toStoreConfig({
      DATA_DIR: dir,
      DATABASE_URL: undefined,
      SITE_ID_KEY: SITE_KEY,
      STORE_BUFFER_ROWS: 10,
      STORE_BATCH_ROWS: 10,
      PREDICTION_RETENTION_DAYS: 365,
    }),
  );
}

describe('icu-mortality outcomes import', () => {
  it('stores the file validate reads, joins predictions, and leaves a second import unchanged', async (t) => {
    const dir = await dataDir(t);
    const before = storeAt(dir);
    await before.ready();
    const at = Date.UTC(2026, 0, 1);
    await insertPredictions(before.client, [
      {
        id: 'p1',
        at,
        subjectKey: before.subjectKey('132539'),
        route: 'cli',
        modelName: 'icu-mortality',
        modelVersion: '1.0.0',
        probability: 0.1,
        inputProfile: null,
        hoursUsed: 6,
        tier: 'low',
        silent: false,
      },
    ]);
    await before.close();
    const file = join(dir, 'Outcomes-a.txt');
    // PhysioNet 2012's Outcomes-a.txt layout: RecordID first, In-hospital_death among the columns.
    await writeFile(
      file,
      'RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n132539,6,1,5,-1,0\n132540,16,8,8,-1,1\n',
    );
    const env = { DATA_DIR: dir, SITE_ID_KEY: SITE_KEY };
    const now = new Date(at + 86_400_000);
    const first = await runOutcomesImport({ input: file, quiet: true }, env, now);
    assert.deepEqual(first, { stored: 2, updated: 0, unchanged: 0, unmatched: 1 });
    // A day later: without a time column the first import's time stands, so nothing changes.
    const again = await runOutcomesImport({ input: file, quiet: true }, env, new Date(now.getTime() + 86_400_000));
    assert.deepEqual(again, { stored: 0, updated: 0, unchanged: 2, unmatched: 1 });

    const after = storeAt(dir);
    t.after(() => after.close());
    await after.ready();
    assert.deepEqual(await outcomeOf(after.client, after.subjectKey('132540')), {
      subjectKey: after.subjectKey('132540'),
      died: true,
      at: now.getTime(),
    });
    // The raw ids are nowhere in the database's files (its write-ahead log included).
    for (const name of (await readdir(dir)).filter((f) => f.startsWith('predictions.sqlite'))) {
      const bytes = await readFile(join(dir, name));
      assert.equal(bytes.includes('132539'), false, name);
      assert.equal(bytes.includes('132540'), false, name);
    }
  });

  it('takes each outcome time from --at-column and refuses a time without an offset, naming the line', async (t) => {
    const dir = await dataDir(t);
    const file = join(dir, 'outcomes.csv');
    await writeFile(file, 'id,In-hospital_death,known\na,1,2026-01-02T03:04:05Z\nb,0,2026-01-02T03:04:05\n');
    await assert.rejects(
      runOutcomesImport({ input: file, atColumn: 'known', quiet: true }, { DATA_DIR: dir, SITE_ID_KEY: SITE_KEY }),
      /outcomes\.csv line 3: known is "2026-01-02T03:04:05", not an ISO 8601 time with an offset/,
    );
    await writeFile(file, 'id,In-hospital_death,known\na,1,2026-01-02T03:04:05+01:00\n');
    const summary = await runOutcomesImport(
      { input: file, atColumn: 'known', quiet: true },
      { DATA_DIR: dir, SITE_ID_KEY: SITE_KEY },
    );
    assert.deepEqual(summary, { stored: 1, updated: 0, unchanged: 0, unmatched: 1 });
    const store = storeAt(dir);
    t.after(() => store.close());
    await store.ready();
    assert.equal((await outcomeOf(store.client, store.subjectKey('a')))?.at, Date.UTC(2026, 0, 2, 2, 4, 5));
  });
});
