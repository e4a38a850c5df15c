import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { runScore } from '../../src/cli/score.js';
import { buildTestApp, loadTinyManifest, makeModelRoot, ROOT, postFhirPredict } from '../helper.js';
import { entry, LOINC, observation, recordToBundle, type Json } from '../fixtures/fhir/physionet-to-fhir.js';
import { r4Errors } from '../fhir/r4-schema.js';

/**
 * Every entry point names the profile a stay's inputs cover, with 1.6.0's held-out AUROC. Expected
 * by hand from its coverage rules (test/clinical/input-profile.test.ts lists them): 48 hours of
 * monitor vitals and weight (6 of 8 variables over 48 h) are `vitals`; with 9 routine labs at hour 3
 * (15 of 26) `vitals-routine-labs`, and with GCS and three blood gases too (19 of 37) `full`; six
 * hours of 9 variables `first-6h`. The newcomer's two stays (one heart rate; two hours of vitals
 * and GCS) cover no profile: `sparse`, no figure.
 */

const MONITOR = { HR: 90, NIMAP: 70, RespRate: 20, Temp: 37.2, SaO2: 96 };
const LABS = { Na: 139, K: 4.1, BUN: 20, Creatinine: 1.1, Glucose: 120, HCO3: 24, HCT: 33, Platelets: 210, WBC: 9 };
const base = { age: 70, sex: 'male', icuType: 3, weight: 80 };
const PATIENTS = [
  { ...base, id: 'monitor', hours: Array.from({ length: 48 }, () => MONITOR) },
  { ...base, id: 'labs', hours: Array.from({ length: 48 }, (_, h) => (h === 3 ? { ...MONITOR, ...LABS } : MONITOR)) },
  {
    ...base,
    id: 'full',
    hours: Array.from({ length: 48 }, (_, h) =>
      h === 3 ? { ...MONITOR, ...LABS, GCS: 14, PaO2: 90, PaCO2: 40, pH: 7.4 } : MONITOR,
    ),
  },
  { ...base, id: 'first6', hours: Array.from({ length: 6 }, () => ({ ...MONITOR, GCS: 10, PaO2: 90, Lactate: 2 })) },
  { age: 70, sex: 'male', icuType: 3, id: 'one-heart-rate', hours: [{ HR: 88 }] },
  { ...base, id: 'two-hours', hours: [0, 1].map(() => ({ ...MONITOR, GCS: 9 })) },
];
const EXPECTED: Record<string, [string, number | null]> = {
  monitor: ['vitals', 0.792],
  labs: ['vitals-routine-labs', 0.828],
  full: ['full', 0.863],
  first6: ['first-6h', 0.807],
  'one-heart-rate': ['sparse', null],
  'two-hours': ['sparse', null],
};
type Profiled = { id: string; inputProfile: { scenario: string; label: string; heldOutAuroc: number | null } };
const named = (rows: Profiled[]): Record<string, [string, number | null]> =>
  Object.fromEntries(rows.map((r) => [r.id, [r.inputProfile.scenario, r.inputProfile.heldOutAuroc]]));
const release = (t: TestContext): Promise<string> =>
  makeModelRoot(t, { '1.6.0': { from: join(ROOT, 'models', 'icu-mortality', '1.6.0') } });

describe('input profile', () => {
  test('POST /v1/predict and the NDJSON stream name the profile each stay covers', async (t) => {
    const { app } = await buildTestApp(t, { modelRoot: await release(t) });
    const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: PATIENTS } });
    assert.equal(res.statusCode, 200, res.body);
    const results = (res.json() as { results: Profiled[] }).results;
    assert.deepEqual(named(results), EXPECTED);
    assert.equal(
      results.find((r) => r.id === 'two-hours')?.inputProfile.label,
      'inputs sparser than every validated profile (fewer variables or hours)',
    );
    const stream = await app.inject({
      method: 'POST',
      url: '/v1/predict/stream',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: PATIENTS.map((p) => JSON.stringify(p)).join('\n'),
    });
    const lines = stream.body
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Profiled);
    assert.deepEqual(named(lines), EXPECTED);
  });

  test('a model without coverage rules makes no reliability statement', async (t) => {
    const { app } = await buildTestApp(t);
    const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: PATIENTS } });
    assert.equal(res.statusCode, 200, res.body);
    for (const r of (res.json() as { results: Array<Record<string, unknown>> }).results)
      assert.equal(r.inputProfile, undefined);
  });

  test('the FHIR RiskAssessment carries the profile as an extension and a note; the CDS card says it in words', async (t) => {
    const now = new Date('2026-03-15T06:30:00Z');
    const { app } = await buildTestApp(t, { deps: { now: () => now }, modelRoot: await release(t) });
    const vitals = (id: string, code: string, value: number, unit: string, at: string): Json =>
      observation(id, [{ system: LOINC, code }], value, unit, at, 'vital-signs');
    const patient = { resourceType: 'Patient', id: 'p1', birthDate: '1950-05-05', gender: 'male' };
    // Three values over three hours: sparser than every profile.
    const observations = [
      vitals('o1', '8867-4', 92, '/min', '2026-03-15T01:00:00Z'),
      vitals('o2', '9279-1', 22, '/min', '2026-03-15T02:00:00Z'),
      vitals('o3', '8310-5', 37.4, 'Cel', '2026-03-15T03:00:00Z'),
    ].map((o) => ({ ...o, subject: { reference: 'Patient/p1' } }));
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [patient, ...observations].map((r) => entry(r)),
    };
    const res = await postFhirPredict(app, bundle);
    assert.equal(res.statusCode, 200, res.body);
    const ra = res.json() as {
      extension: Array<{ url: string; extension?: Array<{ url: string; valueCode?: string; valueDecimal?: number }> }>;
      note: Array<{ text: string }>;
    };
    assert.deepEqual(r4Errors(ra), []);
    const profile = ra.extension.find((e) => e.url.endsWith(':input-profile'));
    assert.deepEqual(profile?.extension, [{ url: 'scenario', valueCode: 'sparse' }]);
    const sparseNote =
      "Scored on inputs sparser than every validated profile (fewer variables or hours); on such stays the model's held-out AUROC is not evaluated for this model.";
    assert.ok(
      ra.note.some((n) => n.text === sparseNote),
      JSON.stringify(ra.note),
    );
    const hook = {
      hook: 'patient-view',
      hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
      context: { patientId: 'p1' },
      prefetch: {
        patient,
        vitals: { resourceType: 'Bundle', type: 'searchset', entry: observations.map((resource) => ({ resource })) },
        labs: { resourceType: 'Bundle', type: 'searchset', entry: [] },
      },
    };
    // stay-a: 48 hours with GCS and blood gases, a full record.
    const full = recordToBundle(
      await readFile(join(ROOT, 'test', 'fixtures', 'fhir', 'records', 'stay-a.txt'), 'utf8'),
      await loadTinyManifest(),
      { admission: new Date('2026-03-13T06:30:00Z'), predictionTime: now },
    );
    const fullRa = await postFhirPredict(app, full);
    const fullProfile = (fullRa.json() as typeof ra).extension.find((e) => e.url.endsWith(':input-profile'));
    assert.deepEqual(fullProfile?.extension, [
      { url: 'scenario', valueCode: 'full' },
      { url: 'heldOutAuroc', valueDecimal: 0.863 },
    ]);
    const card = await app.inject({ method: 'POST', url: '/cds-services/icu-mortality', payload: hook });
    assert.equal(card.statusCode, 200, card.body);
    assert.ok(
      ((card.json() as { cards: Array<{ detail: string }> }).cards[0]?.detail ?? '').includes(sparseNote),
      card.body,
    );
  });

  test('the CLI writes the profile and its figure in NDJSON and CSV output', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'profile-cli-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const modelRoot = await release(t);
    await writeFile(join(dir, 'in.ndjson'), PATIENTS.map((p) => JSON.stringify(p)).join('\n'));
    const common = {
      format: 'ndjson' as const,
      input: join(dir, 'in.ndjson'),
      quiet: true,
      modelDir: join(modelRoot, 'icu-mortality'),
      threads: 1,
    };
    await runScore({ ...common, output: join(dir, 'out.ndjson'), outputFormat: 'ndjson' });
    const rows = (await readFile(join(dir, 'out.ndjson'), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Profiled);
    assert.deepEqual(named(rows), EXPECTED);
    await runScore({ ...common, output: join(dir, 'out.csv') });
    const [header, ...csv] = (await readFile(join(dir, 'out.csv'), 'utf8')).trimEnd().split('\n');
    assert.equal(header, 'id,probability,model_name,model_version,hours_used,truncated,input_profile,held_out_auroc');
    assert.deepEqual(
      Object.fromEntries(csv.map((l) => l.split(',')).map((c) => [c[0], [c[6], c[7] === '' ? null : Number(c[7])]])),
      EXPECTED,
    );
  });
});
