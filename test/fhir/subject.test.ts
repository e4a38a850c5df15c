import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gatherResources } from '../../src/fhir/gather.js';
import { mapToPatientInput } from '../../src/fhir/mapping.js';
import { FhirInputError } from '../../src/fhir/outcome.js';
import { loadTinyManifest } from '../helper.js';
import { entry, LOINC, observation, VARIABLE_SYSTEM, type Json } from '../fixtures/fhir/physionet-to-fhir.js';

/**
 * Whose data are scored, and which values: Observations count only when their subject is
 * exactly the request's Patient (R4 references, resolved as the Bundle rules say), contradictory
 * values at one instant are not guessed between, and a Period that ends before it starts is no time.
 */

const AT = new Date('2026-03-15T06:30:00Z');
const PATIENT = { resourceType: 'Patient', id: 'p1', birthDate: '1960-01-01', gender: 'female' };
const hr = (id: string, value: number, at: string): Json =>
  observation(id, [{ system: LOINC, code: '8867-4' }], value, '/min', at);

function bundle(entries: Json[]): Json {
  return { resourceType: 'Bundle', type: 'collection', entry: entries };
}

function withSubject(obs: Json, reference: string | undefined): Json {
  const copy = { ...obs };
  if (reference === undefined) delete copy.subject;
  else copy.subject = { reference };
  return copy;
}

describe('Observations count only for the Patient of the request', () => {
  test("another server's Patient/p1 and subject-less Observations are not used; each reason is reported with its count", async () => {
    const manifest = await loadTinyManifest();
    const mapped = mapToPatientInput(
      gatherResources(
        bundle([
          entry(PATIENT),
          entry(hr('own', 80, '2026-03-15T01:00:00Z')),
          entry(withSubject(hr('x1', 150, '2026-03-15T01:30:00Z'), 'http://other.example/fhir/Patient/p1')),
          entry(withSubject(hr('x2', 155, '2026-03-15T01:40:00Z'), 'https://other.example/fhir/Patient/p1')),
          entry(withSubject(hr('x3', 40, '2026-03-15T01:50:00Z'), undefined)),
          // The same patient, as an absolute URL on the Patient's own server: used.
          entry(withSubject(hr('abs', 90, '2026-03-15T02:10:00Z'), 'https://ehr.example.org/fhir/Patient/p1')),
        ]),
      ),
      { manifest, predictionTime: AT },
    );
    // Time zero is the first usable value (01:00); 02:10 is in hour 1.
    assert.deepEqual(mapped.stay.raw().hours, [{ HR: 80 }, { HR: 90 }]);
    assert.equal(mapped.otherSubjects, 3);
    const other = mapped.issues.find((i) => i.message.includes('subject is not the Patient in the request'));
    assert.equal(other?.severity, 'warning');
    assert.match(other?.message ?? '', /\(2 occurrences\)$/);
    assert.deepEqual(other?.expression, ['Bundle.entry[2].resource.subject', 'Bundle.entry[3].resource.subject']);
    const none = mapped.issues.find((i) => i.message.includes('no subject.reference'));
    assert.deepEqual(none?.expression, ['Bundle.entry[4].resource.subject']);
    // Issues are logged as well as returned: no references and no values in them.
    assert.doesNotMatch(JSON.stringify(mapped.issues), /other\.example|150|155/);
  });

  test("a relative Patient/p1 inside another server's entry is that server's patient", async () => {
    const manifest = await loadTinyManifest();
    const foreign = {
      fullUrl: 'http://other.example/fhir/Observation/f1',
      resource: hr('f1', 150, '2026-03-15T01:30:00Z'),
    };
    const mapped = mapToPatientInput(
      gatherResources(bundle([entry(PATIENT), entry(hr('own', 80, '2026-03-15T01:00:00Z')), foreign])),
      { manifest, predictionTime: AT },
    );
    assert.deepEqual(mapped.stay.raw().hours, [{ HR: 80 }]);
    assert.equal(mapped.otherSubjects, 1);
  });

  test('a Patient known only by its urn:uuid fullUrl is matched by that fullUrl alone', async () => {
    const manifest = await loadTinyManifest();
    const uuid = 'urn:uuid:2f6a1c3e-8d7b-4f3a-9c1e-5b4d3a2f1e0d';
    const { id: _id, ...anonymous } = PATIENT;
    const mapped = mapToPatientInput(
      gatherResources(
        bundle([
          { fullUrl: uuid, resource: anonymous },
          { resource: withSubject(hr('a', 80, '2026-03-15T01:00:00Z'), uuid) },
          { resource: withSubject(hr('b', 150, '2026-03-15T01:30:00Z'), 'Patient/p1') },
        ]),
      ),
      { manifest, predictionTime: AT },
    );
    assert.deepEqual(mapped.stay.raw().hours, [{ HR: 80 }]);
    assert.equal(mapped.otherSubjects, 1);
  });

  test('a Patient with neither id nor fullUrl is refused with a 400 naming Patient.id', async () => {
    const manifest = await loadTinyManifest();
    const { id: _id, ...anonymous } = PATIENT;
    assert.throws(
      () =>
        mapToPatientInput(
          gatherResources(bundle([{ resource: anonymous }, { resource: hr('a', 80, '2026-03-15T01:00:00Z') }])),
          { manifest, predictionTime: AT },
        ),
      (e: unknown) =>
        e instanceof FhirInputError &&
        e.statusCode === 400 &&
        e.issues.some((i) => i.expression?.includes('Bundle.entry[0].resource.id') && /Patient\.id/.test(i.message)),
    );
  });
});

describe('values that cannot both be true', () => {
  test('different values of one variable at one instant: none is used, and a warning locates them', async () => {
    const manifest = await loadTinyManifest();
    const at = '2026-03-15T01:10:00Z';
    const urine = (id: string, value: number): Json =>
      observation(id, [{ system: LOINC, code: '9187-6' }], value, 'mL', at);
    const mapped = mapToPatientInput(
      gatherResources(
        bundle([
          entry(PATIENT),
          entry(hr('a', 70, '2026-03-15T00:10:00Z')),
          // The same value twice (e.g. one Observation in two searches): no contradiction.
          entry(hr('a2', 70, '2026-03-15T00:10:00Z')),
          entry(hr('b', 80, at)),
          entry(hr('c', 140, at)),
          entry(observation('r', [{ system: LOINC, code: '9279-1' }], 20, '/min', at)),
          // Two outputs at one instant add up (urine is summed), as in training.
          entry(urine('u1', 100)),
          entry(urine('u2', 50)),
        ]),
      ),
      { manifest, predictionTime: AT },
    );
    assert.deepEqual(mapped.stay.raw().hours, [{ HR: 70 }, { RespRate: 20, Urine: 150 }]);
    const warnings = mapped.issues.filter((i) => i.severity === 'warning');
    assert.equal(warnings.length, 1, JSON.stringify(mapped.issues));
    assert.match(warnings[0]?.message ?? '', /^HR not used at one instant/);
    assert.deepEqual(warnings[0]?.expression, ['Bundle.entry[3].resource', 'Bundle.entry[4].resource']);
  });

  test('an effectivePeriod that ends before it starts is no time: the Observation is not used, and the warning locates it', async () => {
    const manifest = await loadTinyManifest();
    const period = (id: string, value: number, start: string, end: string): Json => {
      const { effectiveDateTime: _e, ...rest } = hr(id, value, start);
      return { ...rest, effectivePeriod: { start, end } };
    };
    const mapped = mapToPatientInput(
      gatherResources(
        bundle([
          entry(PATIENT),
          entry(hr('a', 70, '2026-03-15T00:10:00Z')),
          entry(period('ok', 100, '2026-03-15T00:20:00Z', '2026-03-15T00:40:00Z')),
          entry(period('inverted', 130, '2026-03-15T01:40:00Z', '2026-03-15T00:50:00Z')),
        ]),
      ),
      { manifest, predictionTime: AT },
    );
    assert.deepEqual(mapped.stay.raw().hours, [{ HR: 100 }]);
    const inverted = mapped.issues.find((i) => /effectivePeriod\.end is before effectivePeriod\.start/.test(i.message));
    assert.equal(inverted?.severity, 'warning');
    assert.match(inverted?.message ?? '', /^Observation not used/);
    assert.deepEqual(inverted?.expression, ['Bundle.entry[3].resource.effectivePeriod']);
  });
});

describe('the generic mean pressure, LOINC 8478-0', () => {
  const at = '2026-03-15T01:00:00Z';
  const map = (id: string, codings: Json[]): Json => observation(id, codings, 75, 'mm[Hg]', at, 'vital-signs');

  test('without a method it is read as the non-invasive NIMAP, and the answer says so', async () => {
    const manifest = await loadTinyManifest();
    const mapped = mapToPatientInput(
      gatherResources(bundle([entry(PATIENT), entry(map('m', [{ system: LOINC, code: '8478-0' }]))])),
      { manifest, predictionTime: AT },
    );
    assert.deepEqual(mapped.stay.raw().hours, [{ NIMAP: 75 }]);
    assert.deepEqual(mapped.issues, [
      {
        severity: 'information',
        code: 'informational',
        message: `LOINC 8478-0 names no method: read as NIMAP, the non-invasive (cuff) series; add a coding ${VARIABLE_SYSTEM}|MAP when it comes from an arterial line`,
        expression: ['Bundle.entry[1].resource.code'],
      },
    ]);
  });

  test('beside the invasive 76214-6 of the same concept, or with the variable coding, it is the invasive MAP', async () => {
    const manifest = await loadTinyManifest();
    for (const extra of [
      { system: LOINC, code: '76214-6' },
      { system: VARIABLE_SYSTEM, code: 'MAP' },
    ]) {
      const mapped = mapToPatientInput(
        gatherResources(bundle([entry(PATIENT), entry(map('m', [{ system: LOINC, code: '8478-0' }, extra]))])),
        { manifest, predictionTime: AT },
      );
      assert.deepEqual(mapped.stay.raw().hours, [{ MAP: 75 }], extra.code);
      assert.deepEqual(mapped.issues, [], extra.code);
    }
  });
});
