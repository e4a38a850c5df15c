import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runScore } from '../../src/cli/score.js';
import { inputProfile } from '../../src/clinical/input-profile.js';
import { buildTestApp, loadTinyManifest, makeModelRoot, ROOT } from '../helper.js';
import { entry, LOINC, observation, recordToBundle, type Json } from '../fixtures/fhir/physionet-to-fhir.js';
import { r4Errors } from '../fhir/r4-schema.js';

/**
 * Every entry point names the scenario a stay's inputs match. Expected by hand from the
 * definitions: monitor vitals only is `vitals`, plus sodium `vitals-routine-labs`, a GCS makes a
 * full record, whose first 6 hours are `first-6h`.
 */

const vitalsOnly = {
  id: 'monitor',
  age: 70,
  sex: 'male',
  icuType: 3,
  weight: 80,
  hours: Array.from({ length: 10 }, (_, h) => ({ HR: 90 + h, NIMAP: 70, RespRate: 20, Temp: 37.2, SaO2: 96 })),
};
const withSodium = {
  ...vitalsOnly,
  id: 'labs',
  hours: vitalsOnly.hours.map((r, h) => (h === 3 ? { ...r, Na: 139 } : r)),
};
const fullShort = { ...vitalsOnly, id: 'short', hours: vitalsOnly.hours.slice(0, 5).map((r) => ({ ...r, GCS: 9 })) };
const fullLong = {
  ...vitalsOnly,
  id: 'long',
  hours: Array.from({ length: 30 }, () => ({ HR: 100, GCS: 12, PaO2: 80 })),
};
const EXPECTED: Record<string, string> = {
  monitor: 'vitals',
  labs: 'vitals-routine-labs',
  short: 'first-6h',
  long: 'full',
};
const PATIENTS = [vitalsOnly, withSodium, fullShort, fullLong];

describe('input profile', () => {
  test('the first scenario covering the variables present and the hours used', async () => {
    const manifest = await loadTinyManifest();
    const all = manifest.variables.map((v) => v.name);
    const missingBut = (present: string[]): string[] => all.filter((n) => !present.includes(n));
    assert.equal(inputProfile(manifest, missingBut(['HR', 'NIMAP', 'Weight']), 48)?.scenario, 'vitals');
    assert.equal(inputProfile(manifest, missingBut(['HR', 'Creatinine']), 48)?.scenario, 'vitals-routine-labs');
    assert.equal(inputProfile(manifest, missingBut(['HR', 'PaO2']), 6)?.scenario, 'first-6h');
    assert.equal(inputProfile(manifest, missingBut(['HR', 'PaO2']), 7)?.scenario, 'first-12h');
    assert.equal(inputProfile(manifest, missingBut(['HR', 'PaO2']), 24)?.scenario, 'first-24h');
    assert.equal(inputProfile(manifest, missingBut(['HR', 'PaO2']), 25)?.scenario, 'full');
    // An unevaluated model says so: no AUROC to lean on.
    assert.equal(inputProfile(manifest, missingBut(['HR']), 3)?.heldOutAuroc, null);
    assert.equal(inputProfile({ ...manifest, scenarios: undefined }, [], 3), undefined);
  });

  test("POST /v1/predict and the NDJSON stream name each stay's scenario", async (t) => {
    const { app } = await buildTestApp(t);
    const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: PATIENTS } });
    assert.equal(res.statusCode, 200, res.body);
    for (const r of (
      res.json() as { results: Array<{ id: string; inputProfile: { scenario: string; heldOutAuroc: null } }> }
    ).results) {
      assert.equal(r.inputProfile.scenario, EXPECTED[r.id], r.id);
      assert.equal(r.inputProfile.heldOutAuroc, null);
    }
    const stream = await app.inject({
      method: 'POST',
      url: '/v1/predict/stream',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: PATIENTS.map((p) => JSON.stringify(p)).join('\n'),
    });
    const lines = stream.body
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; inputProfile: { scenario: string } });
    assert.deepEqual(Object.fromEntries(lines.map((l) => [l.id, l.inputProfile.scenario])), EXPECTED);
  });

  test('the FHIR RiskAssessment carries the profile as an extension and a note; the CDS card says it in words', async (t) => {
    const now = new Date('2026-03-15T06:30:00Z');
    const { app } = await buildTestApp(t, { deps: { now: () => now } });
    const vitals = (id: string, code: string, value: number, unit: string, at: string): Json =>
      observation(id, [{ system: LOINC, code }], value, unit, at, 'vital-signs');
    const patient = { resourceType: 'Patient', id: 'p1', birthDate: '1950-05-05', gender: 'male' };
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
    const res = await app.inject({
      method: 'POST',
      url: '/fhir/RiskAssessment/$predict',
      headers: { 'content-type': 'application/fhir+json' },
      payload: JSON.stringify(bundle),
    });
    assert.equal(res.statusCode, 200, res.body);
    const ra = res.json() as {
      extension: Array<{ url: string; extension?: Array<{ url: string; valueCode?: string }> }>;
      note: Array<{ text: string }>;
    };
    assert.deepEqual(r4Errors(ra), []);
    const profile = ra.extension.find((e) => e.url.endsWith(':input-profile'));
    assert.deepEqual(profile?.extension, [{ url: 'scenario', valueCode: 'vitals' }]);
    assert.ok(
      ra.note.some((n) =>
        /^Scored on bedside vital signs .*held-out AUROC is not evaluated for this model\.$/.test(n.text),
      ),
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
    const manifest = await loadTinyManifest();
    const full = recordToBundle(
      await readFile(join(ROOT, 'test', 'fixtures', 'fhir', 'records', 'stay-a.txt'), 'utf8'),
      manifest,
      { admission: new Date('2026-03-13T06:30:00Z'), predictionTime: now },
    );
    const fullRa = await app.inject({
      method: 'POST',
      url: '/fhir/RiskAssessment/$predict',
      headers: { 'content-type': 'application/fhir+json' },
      payload: JSON.stringify(full),
    });
    const fullProfile = (fullRa.json() as typeof ra).extension.find((e) => e.url.endsWith(':input-profile'));
    assert.deepEqual(fullProfile?.extension, [{ url: 'scenario', valueCode: 'full' }]);
    const card = await app.inject({ method: 'POST', url: '/cds-services/icu-mortality', payload: hook });
    assert.equal(card.statusCode, 200, card.body);
    assert.match(
      (card.json() as { cards: Array<{ detail: string }> }).cards[0]?.detail ?? '',
      /Scored on bedside vital signs \(HR, SaO2, MAP or NIMAP/,
    );
  });

  test('the CLI writes the scenario in NDJSON and CSV output', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'profile-cli-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const modelRoot = await makeModelRoot(t);
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
      .map((l) => JSON.parse(l) as { id: string; inputProfile: { scenario: string } });
    assert.deepEqual(Object.fromEntries(rows.map((r) => [r.id, r.inputProfile.scenario])), EXPECTED);
    await runScore({ ...common, output: join(dir, 'out.csv') });
    const [header, ...csv] = (await readFile(join(dir, 'out.csv'), 'utf8')).trimEnd().split('\n');
    assert.equal(header, 'id,probability,model_name,model_version,hours_used,truncated,input_profile,held_out_auroc');
    assert.deepEqual(Object.fromEntries(csv.map((l) => l.split(',')).map((c) => [c[0], c[6]])), EXPECTED);
  });
});
