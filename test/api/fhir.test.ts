import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { physionetRecordToPatient } from '../../src/clinical/physionet.js';
import { buildTestApp, loadTinyManifest, ROOT } from '../helper.js';
import {
  entry,
  LOINC,
  observation,
  readRecord,
  recordToBundle,
  type Json,
} from '../fixtures/fhir/physionet-to-fhir.js';
import { r4Errors } from '../fhir/r4-schema.js';

const RECORDS = join(ROOT, 'test', 'fixtures', 'fhir', 'records');
const ADMISSION = new Date('2026-03-13T06:30:00Z');
const NOW = new Date('2026-03-15T06:30:00Z');
const URL = '/fhir/RiskAssessment/$predict';
const FHIR_JSON = 'application/fhir+json';

async function appAt(t: TestContext) {
  return buildTestApp(t, { deps: { now: () => NOW } });
}

async function post(app: Awaited<ReturnType<typeof appAt>>['app'], body: unknown, contentType = FHIR_JSON) {
  return app.inject({
    method: 'POST',
    url: URL,
    headers: { 'content-type': contentType },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

interface RiskAssessmentBody {
  resourceType: string;
  status: string;
  subject: { reference: string };
  encounter?: { reference: string };
  occurrenceDateTime: string;
  method: { coding: Array<{ code: string; version: string }> };
  basis: Array<{ reference: string }>;
  prediction: Array<{
    outcome: { text: string };
    probabilityDecimal: number;
    qualitativeRisk: { coding: Array<{ code: string }> };
  }>;
  contained?: Array<{
    resourceType: string;
    id: string;
    issue: Array<{ severity: string; diagnostics: string; expression?: string[] }>;
  }>;
  extension?: Array<{ url: string; valueReference: { reference: string } }>;
}

describe('POST /fhir/RiskAssessment/$predict', () => {
  test('Bundles converted from challenge records give the same probability as /v1/predict on the same records', async (t) => {
    const { app } = await appAt(t);
    const manifest = await loadTinyManifest();
    for (const file of ['stay-a.txt', 'stay-b.txt', 'stay-c.txt']) {
      const text = await readFile(join(RECORDS, file), 'utf8');
      const v1 = await app.inject({
        method: 'POST',
        url: '/v1/predict',
        payload: { patients: [physionetRecordToPatient(text, manifest)] },
      });
      assert.equal(v1.statusCode, 200, v1.body);
      const expected = (v1.json() as { results: Array<{ probability: number }> }).results[0]?.probability as number;
      const res = await post(app, recordToBundle(text, manifest, { admission: ADMISSION, predictionTime: NOW }));
      assert.equal(res.statusCode, 200, res.body);
      const ra = res.json() as RiskAssessmentBody;
      assert.equal(ra.prediction[0]?.probabilityDecimal, expected, file);
    }
  });

  test('the RiskAssessment validates against the official FHIR R4 JSON schema and carries what the issue asks for', async (t) => {
    const { app } = await appAt(t);
    const manifest = await loadTinyManifest();
    const text = await readFile(join(RECORDS, 'stay-c.txt'), 'utf8');
    const res = await post(app, recordToBundle(text, manifest, { admission: ADMISSION, predictionTime: NOW }));
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /^application\/fhir\+json/);
    const ra = res.json() as RiskAssessmentBody;
    assert.deepEqual(r4Errors(ra), []);
    assert.equal(ra.resourceType, 'RiskAssessment');
    assert.equal(ra.status, 'final');
    assert.deepEqual(ra.subject, { reference: 'Patient/p1' });
    assert.deepEqual(ra.encounter, { reference: 'Encounter/e1' });
    // No predictionTime and no Encounter end: the stay is scored as of its latest observation.
    const latest = Math.max(...readRecord(text).observations.map((o) => o.minutes));
    assert.equal(ra.occurrenceDateTime, new Date(ADMISSION.getTime() + latest * 60_000).toISOString());
    assert.equal(ra.method.coding[0]?.code, manifest.name);
    assert.equal(ra.method.coding[0]?.version, manifest.version);
    assert.equal(ra.prediction[0]?.outcome.text, 'in-hospital death');
    const p = ra.prediction[0]?.probabilityDecimal as number;
    assert.ok(p > 0 && p < 1);
    assert.ok(['low', 'moderate', 'high'].includes(ra.prediction[0]?.qualitativeRisk.coding[0]?.code as string));
    // Basis: the Patient, the Encounter and observations actually in the bundle.
    const refs = ra.basis.map((b) => b.reference);
    assert.equal(refs[0], 'Patient/p1');
    assert.equal(refs[1], 'Encounter/e1');
    assert.ok(refs.length > 20 && refs.slice(2).every((r) => /^Observation\/o\d+$/.test(r)));
    // stay-c's impossible heart rate is not in the basis but in the contained OperationOutcome.
    const warnings = ra.contained?.find((c) => c.resourceType === 'OperationOutcome');
    assert.ok(warnings);
    assert.equal(ra.extension?.[0]?.valueReference.reference, `#${warnings.id}`);
    const hr = warnings.issue.find((i) => i.diagnostics.startsWith('HR not used: outside the plausible range'));
    assert.ok(hr);
    const path = /^Bundle\.entry\[(\d+)\]/.exec(hr.expression?.[0] ?? '');
    const bundle = recordToBundle(text, manifest, { admission: ADMISSION, predictionTime: NOW }) as {
      entry: Array<{ resource: { id: string } }>;
    };
    const badId = bundle.entry[Number(path?.[1])]?.resource.id;
    assert.ok(badId && !refs.includes(`Observation/${badId}`));
  });

  test('a Parameters resource carrying the Bundle and a predictionTime is accepted', async (t) => {
    const { app } = await appAt(t);
    const manifest = await loadTinyManifest();
    const text = await readFile(join(RECORDS, 'stay-c.txt'), 'utf8');
    const at = new Date('2026-03-14T06:30:00Z');
    const body = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'bundle', resource: recordToBundle(text, manifest, { admission: ADMISSION, predictionTime: at }) },
        { name: 'predictionTime', valueDateTime: at.toISOString() },
      ],
    };
    const res = await post(app, body);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((res.json() as RiskAssessmentBody).occurrenceDateTime, at.toISOString());
  });

  test('plain application/json is accepted too', async (t) => {
    const { app } = await appAt(t);
    const body = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        entry({ resourceType: 'Patient', id: 'p1', birthDate: '1950-05-05' }),
        entry(observation('o1', [{ system: LOINC, code: '8867-4' }], 88, '/min', '2026-03-15T01:00:00Z')),
      ],
    };
    const res = await post(app, body, 'application/json');
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(r4Errors(res.json()), []);
  });

  test('a body over FHIR_BODY_LIMIT_BYTES is 413 with an OperationOutcome', async (t) => {
    const { app } = await buildTestApp(t, { env: { FHIR_BODY_LIMIT_BYTES: '2048' }, deps: { now: () => NOW } });
    const entries = Array.from({ length: 40 }, (_, i) =>
      entry(observation(`o${i}`, [{ system: LOINC, code: '8867-4' }], 80, '/min', '2026-03-15T01:00:00Z')),
    );
    const res = await post(
      app,
      { resourceType: 'Bundle', type: 'collection', entry: entries },
      'application/fhir+json; charset=utf-8',
    );
    assert.equal(res.statusCode, 413);
    assert.equal((res.json() as { resourceType: string }).resourceType, 'OperationOutcome');
  });

  const badBodies: Array<[string, string | Json, number, RegExp]> = [
    ['a body that is not JSON', '{"resourceType": "Bundle", ', 400, /not valid JSON/],
    [
      'a resource that is neither Bundle nor Parameters',
      { resourceType: 'Observation', status: 'final' },
      400,
      /resourceType/,
    ],
    [
      'a Bundle whose entry is not an array',
      { resourceType: 'Bundle', type: 'collection', entry: { resource: {} } },
      400,
      /entry/,
    ],
    ['a Bundle of an unknown type', { resourceType: 'Bundle', type: 'stack', entry: [] }, 400, /type/],
    [
      'a Bundle without a Patient',
      {
        resourceType: 'Bundle',
        type: 'collection',
        entry: [entry(observation('o1', [{ system: LOINC, code: '8867-4' }], 88, '/min', '2026-03-15T01:00:00Z'))],
      },
      422,
      /Patient resource is required/,
    ],
    [
      'a Bundle whose only observation has an unknown code',
      {
        resourceType: 'Bundle',
        type: 'collection',
        entry: [
          entry({ resourceType: 'Patient', id: 'p1' }),
          entry(observation('o1', [{ system: LOINC, code: '718-7' }], 12, 'g/dL', '2026-03-15T01:00:00Z')),
        ],
      },
      422,
      /no usable Observation/,
    ],
    [
      'a Bundle with a repeated fullUrl',
      {
        resourceType: 'Bundle',
        type: 'collection',
        entry: [entry({ resourceType: 'Patient', id: 'p1' }), entry({ resourceType: 'Patient', id: 'p1' })],
      },
      400,
      /fullUrl/,
    ],
    [
      'a patient younger than the model allows',
      {
        resourceType: 'Bundle',
        type: 'collection',
        entry: [
          entry({ resourceType: 'Patient', id: 'p1', birthDate: '2020-01-01' }),
          entry(observation('o1', [{ system: LOINC, code: '8867-4' }], 88, '/min', '2026-03-15T01:00:00Z')),
        ],
      },
      422,
      /outside the range this model was built for/,
    ],
  ];
  for (const [what, body, status, message] of badBodies) {
    test(`${what} answers ${status} with an OperationOutcome saying so`, async (t) => {
      const { app } = await appAt(t);
      const res = await post(app, body);
      assert.equal(res.statusCode, status, res.body);
      assert.match(String(res.headers['content-type']), /^application\/fhir\+json/);
      const outcome = res.json() as { resourceType: string; issue: Array<{ severity: string; diagnostics: string }> };
      assert.equal(outcome.resourceType, 'OperationOutcome');
      assert.deepEqual(r4Errors(outcome), []);
      assert.ok(
        outcome.issue.some((i) => i.severity === 'error' && message.test(i.diagnostics)),
        JSON.stringify(outcome.issue),
      );
    });
  }

  test('the unknown-code outcome names the code and where it is, and wrong units are listed as warnings', async (t) => {
    const { app } = await appAt(t);
    const body = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        entry({ resourceType: 'Patient', id: 'p1', birthDate: '1950-05-05' }),
        entry(observation('o1', [{ system: LOINC, code: '8867-4' }], 88, '/min', '2026-03-15T01:00:00Z')),
        entry(observation('o2', [{ system: LOINC, code: '2160-0' }], 90, 'mL', '2026-03-15T01:00:00Z')),
        entry(observation('o3', [{ system: LOINC, code: '718-7' }], 12, 'g/dL', '2026-03-15T01:00:00Z')),
      ],
    };
    const res = await post(app, body);
    assert.equal(res.statusCode, 200, res.body);
    const ra = res.json() as RiskAssessmentBody;
    const issues = ra.contained?.[0]?.issue ?? [];
    assert.ok(
      issues.some(
        (i) =>
          i.severity === 'warning' &&
          i.diagnostics.includes('unit "mL" cannot be converted to mg/dL for Creatinine') &&
          i.expression?.[0] === 'Bundle.entry[2].resource.valueQuantity.code',
      ),
      JSON.stringify(issues),
    );
    assert.ok(
      issues.some(
        (i) =>
          i.severity === 'warning' &&
          i.diagnostics.includes('LOINC 718-7') &&
          i.expression?.[0] === 'Bundle.entry[3].resource.code',
      ),
      JSON.stringify(issues),
    );
    assert.deepEqual(
      ra.basis.map((b) => b.reference),
      ['Patient/p1', 'Observation/o1'],
    );
  });

  test('every scoring call writes one audit line with counts only', async (t) => {
    const { app, logs } = await appAt(t);
    const body = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        entry({ resourceType: 'Patient', id: 'secret-patient-id', birthDate: '1950-05-05' }),
        entry(observation('o1', [{ system: LOINC, code: '8867-4' }], 88, '/min', '2026-03-15T01:00:00Z')),
      ],
    };
    const res = await post(app, {
      ...body,
      entry: body.entry.map((e) => ({
        ...e,
        resource: { ...(e.resource as Json), subject: { reference: 'Patient/secret-patient-id' } },
      })),
    });
    assert.equal(res.statusCode, 200, res.body);
    const audit = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.audit === true);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.route, URL);
    assert.equal(audit[0]?.patientCount, 1);
    assert.equal(audit[0]?.status, 200);
    assert.equal(audit[0]?.outcome, 'success');
    assert.ok(!logs.text().includes('secret-patient-id'), 'no patient identifier in any log line');
  });
});
