import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import { SERVICE_ID } from '../../src/fhir/cds.js';
import { recordToBundle, type Json } from '../fixtures/fhir/physionet-to-fhir.js';
import { buildTestApp, loadTinyManifest, ROOT } from '../helper.js';

/**
 * Property-based fuzzing of the FHIR operation and the CDS Hooks service (fast-check, fixed
 * seeds): FHIR-shaped bodies with wrong types, unknown codes and units, bad dates and
 * non-finite values never produce a 5xx; FHIR errors come back as OperationOutcome.
 */

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';

const junk = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.string({ maxLength: 12 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
);
const code = fc.oneof(
  fc.constantFrom('8867-4', '8478-0', '9279-1', '8310-5', '2524-7', '2708-6', '59408-5', '29463-7', '8302-2', '0000-0'),
  fc.string({ maxLength: 8 }),
);
const unit = fc.oneof(fc.constantFrom('/min', 'mm[Hg]', 'Cel', '[degF]', 'mmol/L', '%', 'kg', 'cm', 'x'), junk);
const date = fc.oneof(
  fc
    .date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2020-01-04T00:00:00Z'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc.constantFrom('2020-01-01', '2020-13-45T99:99:99Z', 'yesterday', ''),
  junk,
);
const observation = fc.record(
  {
    resourceType: fc.oneof(fc.constant('Observation'), junk),
    id: fc.string({ maxLength: 6 }),
    status: fc.oneof(fc.constantFrom('final', 'amended', 'entered-in-error', 'preliminary'), junk),
    category: fc.oneof(
      fc.constant([
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] },
      ]),
      junk,
    ),
    code: fc.oneof(
      fc.record({
        coding: fc.array(fc.record({ system: fc.oneof(fc.constantFrom(LOINC, UCUM), junk), code }), { maxLength: 2 }),
      }),
      junk,
    ),
    subject: fc.oneof(fc.constant({ reference: 'Patient/p1' }), junk),
    effectiveDateTime: date,
    valueQuantity: fc.oneof(
      fc.record({
        value: fc.oneof(fc.double({ min: -1e6, max: 1e6, noNaN: true }), junk),
        unit,
        system: fc.oneof(fc.constant(UCUM), junk),
        code: unit,
      }),
      junk,
    ),
    component: fc.oneof(
      fc.array(
        fc.record({
          code: fc.record({ coding: fc.array(fc.record({ system: fc.constant(LOINC), code }), { maxLength: 1 }) }),
          valueQuantity: fc.record({ value: junk, code: unit }),
        }),
        { maxLength: 2 },
      ),
      junk,
    ),
  },
  { requiredKeys: [] },
);
const patient = fc.record(
  {
    resourceType: fc.constant('Patient'),
    id: fc.constant('p1'),
    gender: fc.oneof(fc.constantFrom('female', 'male', 'unknown'), junk),
    birthDate: date,
  },
  { requiredKeys: ['resourceType'] },
);
const bundle = fc.record(
  {
    resourceType: fc.oneof(fc.constantFrom('Bundle', 'Parameters'), junk),
    type: fc.oneof(fc.constantFrom('collection', 'searchset', 'transaction'), junk),
    entry: fc.oneof(
      fc.array(
        fc.record(
          { fullUrl: fc.oneof(fc.webUrl(), junk), resource: fc.oneof(observation, patient, junk) },
          { requiredKeys: [] },
        ),
        { maxLength: 12 },
      ),
      junk,
    ),
    parameter: fc.oneof(
      fc.array(fc.record({ name: fc.string({ maxLength: 8 }), resource: fc.oneof(bundle0(), junk) }), { maxLength: 2 }),
      junk,
    ),
  },
  { requiredKeys: [] },
);

/** A small non-recursive Bundle for Parameters.parameter[].resource. */
function bundle0() {
  return fc.record({
    resourceType: fc.constant('Bundle'),
    type: fc.constant('collection'),
    entry: fc.array(fc.record({ resource: observation }), { maxLength: 4 }),
  });
}

/** Sets (or with value undefined, deletes) a dotted path inside a resource. */
function mutate(target: Json, path: string, value: unknown): void {
  const keys = path.split('.');
  let node: unknown = target;
  for (const k of keys.slice(0, -1)) {
    if (node === null || typeof node !== 'object') return;
    node = (node as Record<string, unknown>)[k];
  }
  if (node === null || typeof node !== 'object') return;
  const last = keys.at(-1) ?? '';
  if (value === undefined) delete (node as Record<string, unknown>)[last];
  else (node as Record<string, unknown>)[last] = value;
}

const mutation = fc.record({
  entry: fc.nat(),
  path: fc.constantFrom(
    'valueQuantity.value',
    'valueQuantity.code',
    'valueQuantity.system',
    'code.coding.0.code',
    'code.coding.0.system',
    'effectiveDateTime',
    'status',
    'resourceType',
    'subject',
    'birthDate',
    'gender',
    'period.start',
    'component',
  ),
  value: fc.oneof(junk, fc.constant(undefined)),
});

describe('fuzzing the FHIR and CDS Hooks endpoints', { timeout: 300_000 }, () => {
  it('never answers 5xx to mutations of a valid Bundle, and still scores the ones that stay valid', async (t) => {
    const { app } = await buildTestApp(t);
    const manifest = await loadTinyManifest();
    const text = await readFile(`${ROOT}/test/fixtures/fhir/records/stay-a.txt`, 'utf8');
    const base = recordToBundle(text, manifest, {
      admission: new Date('2020-01-01T08:00:00Z'),
      predictionTime: new Date('2020-01-02T20:00:00Z'),
    });
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { maxLength: 4 }), async (mutations) => {
        const bundleCopy = structuredClone(base) as Json & { entry: Array<{ resource: Json }> };
        for (const m of mutations) {
          const e = bundleCopy.entry[m.entry % bundleCopy.entry.length];
          if (e) mutate(e.resource, m.path, m.value);
        }
        const res = await app.inject({
          method: 'POST',
          url: '/fhir/RiskAssessment/$predict',
          headers: { 'content-type': 'application/fhir+json' },
          payload: JSON.stringify(bundleCopy),
        });
        assert.ok(
          res.statusCode < 500,
          `${res.statusCode} after ${JSON.stringify(mutations)}: ${res.body.slice(0, 300)}`,
        );
        const out = JSON.parse(res.body) as { resourceType?: string };
        assert.equal(
          out.resourceType,
          res.statusCode >= 400 ? 'OperationOutcome' : 'RiskAssessment',
          res.body.slice(0, 300),
        );
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      }),
      { numRuns: 500, seed: 13 },
    );
    t.diagnostic(`statuses: ${JSON.stringify([...statuses])}`);
    assert.ok(
      (statuses.get(200) ?? 0) > 0 && [...statuses.keys()].some((s) => s >= 400),
      `statuses seen: ${JSON.stringify([...statuses])}`,
    );
  });

  it('never answers 5xx to FHIR-shaped bodies, and errs with an OperationOutcome', async (t) => {
    const { app } = await buildTestApp(t);
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fc.oneof(bundle, fc.jsonValue()), async (body) => {
        const res = await app.inject({
          method: 'POST',
          url: '/fhir/RiskAssessment/$predict',
          headers: { 'content-type': 'application/fhir+json' },
          payload: JSON.stringify(body),
        });
        assert.ok(
          res.statusCode < 500,
          `${res.statusCode} for ${JSON.stringify(body).slice(0, 300)}: ${res.body.slice(0, 300)}`,
        );
        const out = JSON.parse(res.body) as { resourceType?: string };
        if (res.statusCode >= 400) assert.equal(out.resourceType, 'OperationOutcome', res.body.slice(0, 300));
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      }),
      { numRuns: 800, seed: 5 },
    );
    t.diagnostic(`statuses: ${JSON.stringify([...statuses])}`);
  });

  it('never answers 5xx to CDS Hooks calls with malformed context and prefetch', async (t) => {
    const { app } = await buildTestApp(t);
    const statuses = new Map<number, number>();
    const call = fc.record(
      {
        hook: fc.oneof(fc.constant('patient-view'), junk),
        hookInstance: fc.oneof(fc.uuid(), junk),
        fhirServer: fc.oneof(fc.constant('https://ehr.example.org/fhir'), junk),
        context: fc.oneof(
          fc.record(
            { userId: fc.constant('Practitioner/1'), patientId: fc.oneof(fc.constant('p1'), junk), encounterId: junk },
            { requiredKeys: [] },
          ),
          junk,
        ),
        prefetch: fc.oneof(
          fc.dictionary(
            fc.constantFrom('patient', 'vitals', 'labs', 'encounter', 'other'),
            fc.oneof(bundle, patient, junk),
            { maxKeys: 4 },
          ),
          junk,
        ),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(call, async (body) => {
        const res = await app.inject({
          method: 'POST',
          url: `/cds-services/${SERVICE_ID}`,
          payload: body as Record<string, unknown>,
        });
        assert.ok(
          res.statusCode < 500,
          `${res.statusCode} for ${JSON.stringify(body).slice(0, 300)}: ${res.body.slice(0, 300)}`,
        );
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      }),
      { numRuns: 400, seed: 9 },
    );
    t.diagnostic(`statuses: ${JSON.stringify([...statuses])}`);
  });
});
