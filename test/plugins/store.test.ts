import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { openStore } from '../../src/store/store.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import type { StoreConfig } from '../../src/store/config.js';
import { buildTestApp, loadTinyManifest, makeModelRoot, ROOT, samplePatient } from '../helper.js';
import { recordToBundle, type Json } from '../fixtures/fhir/physionet-to-fhir.js';
import { BACKENDS, TEST_SITE_KEY, storeConfig } from '../store/backends.js';

/** The store variables that point an app at `config`'s location. */
function storeEnv(config: StoreConfig): Record<string, string> {
  return {
    DATA_DIR: config.dataDir,
    ...(config.databaseUrl ? { DATABASE_URL: config.databaseUrl, SITE_ID_KEY: TEST_SITE_KEY } : {}),
  };
}

/** Every cell of every table the store holds, as text. */
async function everyCell(client: SqlClient): Promise<string[]> {
  const tables =
    client.dialect === 'sqlite'
      ? await client.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
      : await client.all<{ name: string }>(
          'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()',
        );
  const cells: string[] = [];
  for (const { name } of tables) {
    for (const row of await client.all(`SELECT * FROM ${name}`)) cells.push(...Object.values(row).map(String));
  }
  return cells;
}

async function rowsOf(t: TestContext, config: StoreConfig) {
  const store = openStore(config);
  t.after(() => store.close());
  await store.ready();
  return store;
}

// Values no model output, hour count or time could equal by chance.
const PATIENT = {
  id: 'MRN-00731942',
  age: 67,
  hours: [
    { HR: 117.3, MAP: 61.7, Temp: 38.61 },
    { HR: 121.9, Lactate: 4.37 },
  ],
};
const VALUES = ['117.3', '61.7', '38.61', '121.9', '4.37'];

for (const { backend, skip } of BACKENDS) {
  test(
    `${backend}: /v1/predict results are recorded under an HMAC: no raw id and no measured value in any table`,
    { skip },
    async (t) => {
      const config = await storeConfig(t, backend);
      const { app } = await buildTestApp(t, { env: storeEnv(config) });
      const res = await app.inject({
        method: 'POST',
        url: '/v1/predict',
        payload: { patients: [PATIENT, { hours: [{ HR: 80 }] }] },
      });
      assert.equal(res.statusCode, 200);
      const [scored, anonymous] = res.json<{ results: Array<{ probability: number }> }>().results;
      await app.recorder.flushed();
      const store = await rowsOf(t, config);
      const rows = await store.client.all<{
        subject_key: string | null;
        route: string;
        probability: number;
        hours_used: number;
      }>('SELECT subject_key, route, probability, hours_used FROM predictions ORDER BY hours_used DESC');
      assert.deepEqual(
        rows.map((r) => [r.subject_key, r.route, Number(r.probability), Number(r.hours_used)]),
        [
          [store.subjectKey(PATIENT.id), 'predict', scored?.probability, 2],
          [null, 'predict', anonymous?.probability, 1],
        ],
      );
      const cells = await everyCell(store.client);
      assert.ok(cells.length > 0);
      for (const cell of cells) {
        assert.ok(!cell.includes(PATIENT.id) && !cell.includes('00731942'), `the raw id is in the store: ${cell}`);
        for (const v of VALUES) assert.ok(!cell.includes(v), `measured value ${v} is in the store: ${cell}`);
      }
    },
  );

  test(
    `${backend}: a restarted service keeps the rows, and results buffered at shutdown are written`,
    { skip },
    async (t) => {
      const config = await storeConfig(t, backend);
      const modelRoot = await makeModelRoot(t);
      const first = await buildTestApp(t, { env: storeEnv(config), modelRoot });
      await first.app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [PATIENT] } });
      // No flushed() here: close() must write what is still buffered.
      await first.app.close();
      const second = await buildTestApp(t, { env: storeEnv(config), modelRoot });
      await second.app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [PATIENT] } });
      await second.app.close();
      const store = await rowsOf(t, config);
      const n = await store.client.get<{ n: number }>('SELECT COUNT(*) AS n FROM predictions WHERE subject_key = $1', [
        store.subjectKey(PATIENT.id),
      ]);
      assert.equal(Number(n?.n), 2);
    },
  );
}

test('a store that is down leaves the service ready and scoring; /health/ready says so', async (t) => {
  const config = await storeConfig(t, 'sqlite', {
    databaseUrl: 'postgres://nobody:nothing@127.0.0.1:1/none',
    siteIdKey: TEST_SITE_KEY,
  });
  const store = openStore(config, { retryMs: 10 });
  const { app, logs } = await buildTestApp(t, { deps: { store } });
  const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [PATIENT] } });
  assert.equal(res.statusCode, 200);
  assert.equal(app.recorder.pending, 1);
  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  assert.equal(ready.statusCode, 200);
  assert.deepEqual(ready.json<{ store: unknown }>().store, { backend: 'postgres', status: 'down' });
  assert.doesNotMatch(logs.text(), /MRN-00731942/);
});

test('results of the stream and of FHIR $predict are recorded under their routes', async (t) => {
  const config = await storeConfig(t, 'sqlite');
  const now = new Date('2026-03-15T06:30:00Z');
  const { app } = await buildTestApp(t, { env: storeEnv(config), deps: { now: () => now } });
  const lines = [samplePatient(3, 1, 'stream-a'), samplePatient(4, 2, 'stream-b')];
  const stream = await app.inject({
    method: 'POST',
    url: '/v1/predict/stream',
    headers: { 'content-type': 'application/x-ndjson' },
    payload: lines.map((l) => JSON.stringify(l)).join('\n'),
  });
  assert.equal(stream.statusCode, 200);
  const text = await readFile(join(ROOT, 'test', 'fixtures', 'fhir', 'records', 'stay-c.txt'), 'utf8');
  const bundle = recordToBundle(text, await loadTinyManifest(), {
    admission: new Date('2026-03-13T06:30:00Z'),
    predictionTime: now,
  });
  const fhir = await app.inject({
    method: 'POST',
    url: '/fhir/RiskAssessment/$predict',
    headers: { 'content-type': 'application/fhir+json' },
    payload: JSON.stringify(bundle),
  });
  assert.equal(fhir.statusCode, 200, fhir.body);
  await app.recorder.flushed();
  const store = await rowsOf(t, config);
  const rows = await store.client.all<{ route: string; subject_key: string | null; hours_used: number }>(
    "SELECT route, subject_key, hours_used FROM predictions WHERE route = 'stream' ORDER BY hours_used",
  );
  assert.deepEqual(
    rows.map((r) => [r.route, r.subject_key, Number(r.hours_used)]),
    [
      ['stream', store.subjectKey('stream-a'), 3],
      ['stream', store.subjectKey('stream-b'), 4],
    ],
  );
  const fhirRows = await store.client.get<{ n: number }>("SELECT COUNT(*) AS n FROM predictions WHERE route = 'fhir'");
  assert.equal(Number(fhirRows?.n), 1);
});

/**
 * stay-c as the resources an EHR holds for Patient `id`, admitted 49 hours before now: the store
 * stamps a result with the real clock, and an outcome joins only predictions at or before its time.
 */
async function stayOf(id: string): Promise<Json[]> {
  const text = await readFile(join(ROOT, 'test', 'fixtures', 'fhir', 'records', 'stay-c.txt'), 'utf8');
  const now = Date.now();
  const bundle = recordToBundle(text, await loadTinyManifest(), {
    admission: new Date(now - 49 * 3_600_000),
    predictionTime: new Date(now),
  }) as { entry: Array<{ resource: Json }> };
  const resources = bundle.entry.map((e) => e.resource);
  return JSON.parse(
    JSON.stringify(resources).replaceAll('"p1"', JSON.stringify(id)).replaceAll('Patient/p1', `Patient/${id}`),
  ) as Json[];
}

/** POST /v1/outcomes of a death, now, for each of `ids`. */
async function postOutcomes(app: Awaited<ReturnType<typeof buildTestApp>>['app'], ids: string[]) {
  const at = new Date().toISOString();
  const res = await app.inject({
    method: 'POST',
    url: '/v1/outcomes',
    payload: { outcomes: ids.map((id) => ({ id, died: true, at })) },
  });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{ stored: number; unmatched: number; failed: number }>();
}

const FHIR_ID = 'MRN-00815263';

/** The one prediction of `route` is stored under FHIR_ID's HMAC, and an outcome posted for that id joins it. */
async function assertRecordedUnderPatientId(
  t: TestContext,
  app: Awaited<ReturnType<typeof buildTestApp>>['app'],
  config: StoreConfig,
  route: string,
): Promise<void> {
  await app.recorder.flushed();
  const store = await rowsOf(t, config);
  const rows = await store.client.all<{ route: string; subject_key: string | null }>(
    'SELECT route, subject_key FROM predictions',
  );
  assert.deepEqual(
    rows.map((r) => [r.route, r.subject_key]),
    [[route, store.subjectKey(FHIR_ID)]],
  );
  const joined = await postOutcomes(app, [FHIR_ID, 'never-scored']);
  assert.deepEqual([joined.stored, joined.unmatched, joined.failed], [2, 1, 0]);
}

for (const { backend, skip } of BACKENDS) {
  test(
    `${backend}: a FHIR $predict result is recorded under its Patient id: an outcome posted for that id joins it`,
    { skip },
    async (t) => {
      const config = await storeConfig(t, backend);
      const { app, logs } = await buildTestApp(t, { env: storeEnv(config) });
      const fhir = await app.inject({
        method: 'POST',
        url: '/fhir/RiskAssessment/$predict',
        headers: { 'content-type': 'application/fhir+json' },
        payload: JSON.stringify({
          resourceType: 'Bundle',
          type: 'collection',
          entry: (await stayOf(FHIR_ID)).map((resource) => ({ resource })),
        }),
      });
      assert.equal(fhir.statusCode, 200, fhir.body);
      await assertRecordedUnderPatientId(t, app, config, 'fhir');
      assert.doesNotMatch(logs.text(), /00815263/);
    },
  );

  test(
    `${backend}: a CDS Hooks result is recorded under context.patientId: an outcome posted for that id joins it`,
    { skip },
    async (t) => {
      const config = await storeConfig(t, backend);
      const { app, logs } = await buildTestApp(t, { env: storeEnv(config) });
      const resources = await stayOf(FHIR_ID);
      const category = (r: Json): string =>
        (r.category as Array<{ coding: Array<{ code: string }> }> | undefined)?.[0]?.coding[0]?.code ?? '';
      const searchset = (wanted: string): Json => ({
        resourceType: 'Bundle',
        type: 'searchset',
        entry: resources
          .filter((r) => r.resourceType === 'Observation' && category(r) === wanted)
          .map((resource) => ({ resource })),
      });
      const cds = await app.inject({
        method: 'POST',
        url: '/cds-services/icu-mortality',
        payload: {
          hook: 'patient-view',
          hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
          context: { userId: 'Practitioner/123', patientId: FHIR_ID },
          prefetch: {
            patient: resources.find((r) => r.resourceType === 'Patient'),
            vitals: searchset('vital-signs'),
            labs: searchset('laboratory'),
          },
        },
      });
      assert.equal(cds.statusCode, 200, cds.body);
      assert.equal(cds.json<{ cards: unknown[] }>().cards.length, 1);
      await assertRecordedUnderPatientId(t, app, config, 'cds');
      assert.doesNotMatch(logs.text(), /00815263/);
    },
  );
}
