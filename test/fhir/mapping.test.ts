import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { physionetRecordToPatient } from '../../src/clinical/physionet.js';
import { gatherResources } from '../../src/fhir/gather.js';
import { mapToPatientInput } from '../../src/fhir/mapping.js';
import { FhirInputError } from '../../src/fhir/outcome.js';
import { VENTILATOR_OBSERVATION_CODES } from '../../src/fhir/codes.js';
import { loadTinyManifest, ROOT } from '../helper.js';
import { entry, LOINC, observation, recordToBundle, type Json } from '../fixtures/fhir/physionet-to-fhir.js';

const RECORDS = join(ROOT, 'test', 'fixtures', 'fhir', 'records');
const ADMISSION = new Date('2026-03-13T06:30:00Z');
const AT = new Date('2026-03-15T06:30:00Z');

async function record(file: string): Promise<string> {
  return readFile(join(RECORDS, file), 'utf8');
}

function minimalBundle(observations: Json[], extra: Json[] = []): Json {
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: [
      entry({ resourceType: 'Patient', id: 'p1', birthDate: '1960-01-01', gender: 'female' }),
      ...extra,
      ...observations.map(entry),
    ],
  };
}

describe('FHIR Bundle -> patient input', () => {
  for (const file of ['stay-a.txt', 'stay-b.txt', 'stay-c.txt']) {
    test(`${file}: the Bundle gives exactly the hourly rows and descriptors the challenge record parser gives`, async () => {
      const manifest = await loadTinyManifest();
      const text = await record(file);
      const expected = physionetRecordToPatient(text, manifest);
      const mapped = mapToPatientInput(
        gatherResources(recordToBundle(text, manifest, { admission: ADMISSION, predictionTime: AT })),
        { manifest, predictionTime: AT },
      );
      assert.deepEqual(mapped.stay.raw().hours, expected.hours);
      assert.equal(mapped.stay.raw().age, expected.age);
      assert.equal(mapped.stay.raw().sex, expected.sex);
      assert.equal(mapped.stay.raw().icuType, expected.icuType);
      assert.equal(mapped.stay.raw().height, expected.height);
      assert.equal(mapped.timeZeroSource, 'encounter');
    });
  }

  test('the order of the Bundle does not matter (a searchset comes newest first)', async () => {
    const manifest = await loadTinyManifest();
    const text = await record('stay-b.txt');
    const bundle = recordToBundle(text, manifest, { admission: ADMISSION, predictionTime: AT });
    const reversed = { ...bundle, type: 'searchset', entry: [...(bundle.entry as Json[])].reverse() };
    const a = mapToPatientInput(gatherResources(bundle), { manifest, predictionTime: AT });
    const b = mapToPatientInput(gatherResources(reversed), { manifest, predictionTime: AT });
    assert.deepEqual(b.stay.raw().hours, a.stay.raw().hours);
  });

  test('several values of one hour: the latest in time is kept, whatever the order of the entries', async () => {
    const manifest = await loadTinyManifest();
    const newestFirst = minimalBundle([
      observation('late', [{ system: LOINC, code: '8867-4' }], 100, '/min', '2026-03-15T01:50:00Z'),
      observation('early', [{ system: LOINC, code: '8867-4' }], 80, '/min', '2026-03-15T01:10:00Z'),
    ]);
    assert.deepEqual(
      mapToPatientInput(gatherResources(newestFirst), { manifest, predictionTime: AT }).stay.raw().hours,
      [{ HR: 100 }],
    );
  });

  test('the impossible heart rate of the record is listed as a warning and not used', async () => {
    const manifest = await loadTinyManifest();
    const mapped = mapToPatientInput(
      gatherResources(
        recordToBundle(await record('stay-c.txt'), manifest, { admission: ADMISSION, predictionTime: AT }),
      ),
      { manifest, predictionTime: AT },
    );
    const issue = mapped.issues.find((i) => i.message.startsWith('HR not used: outside the plausible range'));
    assert.ok(issue, JSON.stringify(mapped.issues));
    assert.equal(issue.severity, 'warning');
    assert.match(issue.expression?.[0] ?? '', /^Bundle\.entry\[\d+\]\.resource\.valueQuantity\.value$/);
    assert.ok(!mapped.issues.some((i) => i.message.includes('999')), 'values never appear in messages');
  });

  test('age is completed years at the prediction time', async () => {
    const manifest = await loadTinyManifest();
    const bundle = (birthDate: string): Json => ({
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        entry({ resourceType: 'Patient', id: 'p1', birthDate }),
        entry(observation('o1', [{ system: LOINC, code: '8867-4' }], 80, '/min', '2026-03-15T05:00:00Z')),
      ],
    });
    assert.equal(
      mapToPatientInput(gatherResources(bundle('1960-03-15')), { manifest, predictionTime: AT }).stay.raw().age,
      66,
    );
    assert.equal(
      mapToPatientInput(gatherResources(bundle('1960-03-16')), { manifest, predictionTime: AT }).stay.raw().age,
      65,
    );
    assert.equal(
      mapToPatientInput(gatherResources(bundle('1960')), { manifest, predictionTime: AT }).stay.raw().age,
      66,
    );
  });

  test('without an Encounter, time zero is the earliest usable observation', async () => {
    const manifest = await loadTinyManifest();
    const mapped = mapToPatientInput(
      gatherResources(
        minimalBundle([
          observation('o1', [{ system: LOINC, code: '8867-4' }], 80, '/min', '2026-03-14T10:20:00Z'),
          observation('o2', [{ system: LOINC, code: '8867-4' }], 90, '/min', '2026-03-14T12:10:00Z'),
        ]),
      ),
      { manifest, predictionTime: AT },
    );
    assert.equal(mapped.timeZeroSource, 'earliest-observation');
    assert.equal(mapped.timeZero.toISOString(), '2026-03-14T10:20:00.000Z');
    // 10:20 -> hour 0; 12:10 is 110 minutes later -> hour 1.
    assert.deepEqual(mapped.stay.raw().hours, [{ HR: 80 }, { HR: 90 }]);
  });

  test('observations before the ICU admission or after the prediction time are warned about and not used', async () => {
    const manifest = await loadTinyManifest();
    const encounter = entry({
      resourceType: 'Encounter',
      id: 'e1',
      status: 'in-progress',
      class: { code: 'IMP' },
      subject: { reference: 'Patient/p1' },
      period: { start: '2026-03-14T00:00:00Z' },
    });
    const mapped = mapToPatientInput(
      gatherResources(
        minimalBundle(
          [
            observation('early', [{ system: LOINC, code: '8867-4' }], 80, '/min', '2026-03-13T23:00:00Z'),
            observation('in', [{ system: LOINC, code: '8867-4' }], 90, '/min', '2026-03-14T02:30:00+01:00'),
            observation('late', [{ system: LOINC, code: '8867-4' }], 70, '/min', '2026-03-16T00:00:00Z'),
          ],
          [encounter],
        ),
      ),
      { manifest, predictionTime: AT },
    );
    // 02:30+01:00 is 01:30Z: hour 1 after admission at 00:00Z.
    assert.deepEqual(mapped.stay.raw().hours, [{}, { HR: 90 }]);
    assert.ok(
      mapped.issues.some(
        (i) => i.message.includes('before the ICU admission') && i.expression?.[0] === 'Bundle.entry[2].resource',
      ),
    );
    assert.ok(
      mapped.issues.some(
        (i) => i.message.includes('after the prediction time') && i.expression?.[0] === 'Bundle.entry[4].resource',
      ),
    );
    assert.deepEqual(mapped.basis, ['Patient/p1', 'Encounter/e1', 'Observation/in']);
  });

  test('a blood pressure panel is read component by component, as the non-invasive series without a method coding', async () => {
    const manifest = await loadTinyManifest();
    const panel: Json = {
      resourceType: 'Observation',
      id: 'bp',
      status: 'final',
      code: { coding: [{ system: LOINC, code: '85354-9', display: 'Blood pressure panel' }] },
      subject: { reference: 'Patient/p1' },
      effectiveDateTime: '2026-03-15T01:00:00Z',
      component: [
        {
          code: { coding: [{ system: LOINC, code: '8480-6' }] },
          valueQuantity: { value: 120, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
        },
        {
          code: { coding: [{ system: LOINC, code: '8462-4' }] },
          valueQuantity: { value: 70, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
        },
      ],
    };
    const mapped = mapToPatientInput(gatherResources(minimalBundle([panel])), { manifest, predictionTime: AT });
    assert.deepEqual(mapped.stay.raw().hours, [{ NISysABP: 120, NIDiasABP: 70 }]);
    // Nothing is refused; the answer says which variable each method-less code was read as.
    assert.deepEqual(
      mapped.issues.map((i) => [i.severity, i.message.split(':')[0], i.expression]),
      [
        ['information', 'LOINC 8480-6 names no method', ['Bundle.entry[1].resource.component[0].code']],
        ['information', 'LOINC 8462-4 names no method', ['Bundle.entry[1].resource.component[1].code']],
      ],
    );
  });

  test('unknown codes, pulse oximetry, unconvertible units and non-UCUM units are each reported and not used', async () => {
    const manifest = await loadTinyManifest();
    const t = '2026-03-15T01:00:00Z';
    const mapped = mapToPatientInput(
      gatherResources(
        minimalBundle([
          observation('hr', [{ system: LOINC, code: '8867-4' }], 80, '/min', t),
          observation('hb', [{ system: LOINC, code: '718-7' }], 12, 'g/dL', t),
          observation(
            'spo2',
            [
              { system: LOINC, code: '59408-5' },
              { system: LOINC, code: '2708-6' },
            ],
            97,
            '%',
            t,
          ),
          observation('temp', [{ system: LOINC, code: '8310-5' }], 310, 'mL', t),
          {
            ...observation('rr', [{ system: LOINC, code: '9279-1' }], 18, '/min', t),
            valueQuantity: { value: 18, unit: 'breaths/min' },
          },
          observation('tempf', [{ system: LOINC, code: '8310-5' }], 98.6, '[degF]', t),
          observation('lact', [{ system: LOINC, code: '2524-7' }], 18, 'mg/dL', t),
        ]),
      ),
      { manifest, predictionTime: AT },
    );
    const row = mapped.stay.raw().hours[0] as Record<string, number>;
    assert.equal(row.HR, 80);
    assert.ok(Math.abs((row.Temp as number) - 37) < 1e-9, 'degF converted through the manifest');
    assert.ok(
      Math.abs((row.Lactate as number) - 18 * 0.11101243339253998) < 1e-12,
      'lactate mg/dL converted through the manifest',
    );
    assert.equal(row.SaO2, undefined, 'pulse oximetry is not arterial saturation');
    assert.equal(row.RespRate, undefined);
    const messages = mapped.issues.map((i) => `${i.expression?.[0]}: ${i.message}`);
    assert.ok(
      messages.some((m) => m.startsWith('Bundle.entry[2].resource.code') && m.includes('LOINC 718-7 is not an input')),
      messages.join('\n'),
    );
    assert.ok(
      messages.some((m) => m.startsWith('Bundle.entry[3].resource.code') && m.includes('pulse-oximetry')),
      messages.join('\n'),
    );
    assert.ok(
      messages.some(
        (m) =>
          m.startsWith('Bundle.entry[4].resource.valueQuantity.code') &&
          m.includes('unit "mL" cannot be converted to Cel for Temp'),
      ),
      messages.join('\n'),
    );
    assert.ok(
      messages.some((m) => m.startsWith('Bundle.entry[5].resource.valueQuantity') && m.includes('no UCUM code')),
      messages.join('\n'),
    );
    assert.deepEqual(mapped.basis, ['Patient/p1', 'Observation/hr', 'Observation/tempf', 'Observation/lact']);
  });

  test('UCUM annotations carry no meaning: {beats}/min is /min and {score} is 1', async () => {
    const manifest = await loadTinyManifest();
    const t = '2026-03-15T01:00:00Z';
    const mapped = mapToPatientInput(
      gatherResources(
        minimalBundle([
          observation('hr', [{ system: LOINC, code: '8867-4' }], 80, '{beats}/min', t),
          observation('gcs', [{ system: LOINC, code: '9269-2' }], 9, '1', t),
        ]),
      ),
      { manifest, predictionTime: AT },
    );
    assert.deepEqual(mapped.stay.raw().hours, [{ HR: 80, GCS: 9 }]);
  });

  test('a Bundle with no usable observation cannot be scored (422), with every warning listed', async () => {
    const manifest = await loadTinyManifest();
    assert.throws(
      () =>
        mapToPatientInput(
          gatherResources(
            minimalBundle([observation('hb', [{ system: LOINC, code: '718-7' }], 12, 'g/dL', '2026-03-15T01:00:00Z')]),
          ),
          { manifest, predictionTime: AT },
        ),
      (e: unknown) =>
        e instanceof FhirInputError && e.statusCode === 422 && e.issues.some((i) => i.message.includes('718-7')),
    );
  });

  test('two patients in one Bundle are refused (400); none is 422', async () => {
    const manifest = await loadTinyManifest();
    const two = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [entry({ resourceType: 'Patient', id: 'p1' }), entry({ resourceType: 'Patient', id: 'p2' })],
    };
    assert.throws(
      () => mapToPatientInput(gatherResources(two), { manifest, predictionTime: AT }),
      (e: unknown) => e instanceof FhirInputError && e.statusCode === 400,
    );
    const none = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [entry(observation('o', [{ system: LOINC, code: '8867-4' }], 80, '/min', '2026-03-15T01:00:00Z'))],
    };
    assert.throws(
      () => mapToPatientInput(gatherResources(none), { manifest, predictionTime: AT }),
      (e: unknown) => e instanceof FhirInputError && e.statusCode === 422,
    );
  });

  test('an observation of another patient is not used', async () => {
    const manifest = await loadTinyManifest();
    const other = {
      ...observation('o2', [{ system: LOINC, code: '8867-4' }], 120, '/min', '2026-03-15T01:30:00Z'),
      subject: { reference: 'Patient/someone-else' },
    };
    const mapped = mapToPatientInput(
      gatherResources(
        minimalBundle([
          observation('o1', [{ system: LOINC, code: '8867-4' }], 80, '/min', '2026-03-15T01:00:00Z'),
          other,
        ]),
      ),
      { manifest, predictionTime: AT },
    );
    assert.deepEqual(mapped.stay.raw().hours, [{ HR: 80 }]);
    assert.ok(mapped.issues.some((i) => i.message.includes('subject is not the Patient')));
  });

  test('a dateTime without a time zone is not a usable time', async () => {
    const manifest = await loadTinyManifest();
    const mapped = mapToPatientInput(
      gatherResources(
        minimalBundle([
          observation('o1', [{ system: LOINC, code: '8867-4' }], 80, '/min', '2026-03-15T01:00:00Z'),
          observation('o2', [{ system: LOINC, code: '8867-4' }], 90, '/min', '2026-03-15T01:30:00'),
        ]),
      ),
      { manifest, predictionTime: AT },
    );
    assert.deepEqual(mapped.stay.raw().hours, [{ HR: 80 }]);
    assert.ok(
      mapped.issues.some(
        (i) => i.message.includes('time zone') && i.expression?.[0] === 'Bundle.entry[2].resource.effectiveDateTime',
      ),
    );
  });
});

describe('the prediction time when the request gives none', () => {
  const NOW = new Date('2026-12-05T12:00:00Z');
  const hr = (id: string, at: string): Json => observation(id, [{ system: LOINC, code: '8867-4' }], 90, '/min', at);

  test('an old Bundle is scored as of its latest observation, with the age then and a warning without dates', async () => {
    const manifest = await loadTinyManifest();
    // Born 1950-06-01: 69 on 2020-05-01, 76 on the wall clock's day.
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        entry({ resourceType: 'Patient', id: 'p1', birthDate: '1950-06-01', gender: 'male' }),
        entry(hr('a', '2020-05-01T08:10:00Z')),
        entry(hr('b', '2020-05-01T11:40:00Z')),
      ],
    };
    const mapped = mapToPatientInput(gatherResources(bundle), { manifest, now: NOW, staleAfterHours: 24 });
    assert.equal(mapped.predictionTime.toISOString(), '2020-05-01T11:40:00.000Z');
    assert.equal(mapped.predictionTimeSource, 'latest-observation');
    assert.equal(mapped.stay.raw().age, 69);
    const stale = mapped.issues.find((i) => /the data end/.test(i.message));
    assert.ok(stale, JSON.stringify(mapped.issues));
    assert.match(stale.message, /2409 days before now \(more than the 24-hour window\)/);
    assert.doesNotMatch(stale.message, /2020|05-01/);
  });

  test("the Encounter's end wins over the latest observation; later observations are not used", async () => {
    const manifest = await loadTinyManifest();
    const encounter = {
      resourceType: 'Encounter',
      id: 'e1',
      status: 'finished',
      class: { code: 'IMP' },
      period: { start: '2026-12-04T00:00:00Z', end: '2026-12-04T20:00:00Z' },
    };
    const bundle = minimalBundle(
      [hr('a', '2026-12-04T02:00:00Z'), hr('b', '2026-12-04T22:00:00Z')],
      [entry(encounter)],
    );
    const mapped = mapToPatientInput(gatherResources(bundle), { manifest, now: NOW, staleAfterHours: 24 });
    assert.equal(mapped.predictionTime.toISOString(), '2026-12-04T20:00:00.000Z');
    assert.equal(mapped.predictionTimeSource, 'encounter-end');
    assert.deepEqual(mapped.stay.raw().hours.length, 3);
    assert.ok(mapped.issues.some((i) => /observed after the prediction time/.test(i.message)));
    assert.ok(!mapped.issues.some((i) => /the data end/.test(i.message)), '16 hours old is inside the window');
  });

  test('fresh data get no warning; a given predictionTime is kept as given', async () => {
    const manifest = await loadTinyManifest();
    const bundle = minimalBundle([hr('a', '2026-12-05T10:00:00Z')]);
    const fresh = mapToPatientInput(gatherResources(bundle), { manifest, now: NOW, staleAfterHours: 24 });
    assert.equal(fresh.predictionTime.toISOString(), '2026-12-05T10:00:00.000Z');
    assert.ok(!fresh.issues.some((i) => /the data end/.test(i.message)));
    const given = mapToPatientInput(gatherResources(bundle), {
      manifest,
      now: NOW,
      staleAfterHours: 24,
      predictionTime: new Date('2026-12-05T11:00:00Z'),
    });
    assert.equal(given.predictionTimeSource, 'given');
    assert.equal(given.predictionTime.toISOString(), '2026-12-05T11:00:00.000Z');
  });
});

describe('public codes for the invasive pressures and for mechanical ventilation', () => {
  const AT2 = new Date('2026-12-05T12:00:00Z');

  test('LOINC 76215-3, 76213-8 and 76214-6 are the invasive SysABP, DiasABP and MAP; the generic codes stay non-invasive', async () => {
    const manifest = await loadTinyManifest();
    const at = '2026-12-05T10:30:00Z';
    const bundle = minimalBundle([
      observation('s', [{ system: LOINC, code: '76215-3' }], 120, 'mm[Hg]', at),
      observation('d', [{ system: LOINC, code: '76213-8' }], 60, 'mm[Hg]', at),
      observation('m', [{ system: LOINC, code: '76214-6' }], 80, 'mm[Hg]', at),
      observation('n', [{ system: LOINC, code: '8478-0' }], 75, 'mm[Hg]', at),
    ]);
    const mapped = mapToPatientInput(gatherResources(bundle), { manifest, predictionTime: AT2 });
    assert.deepEqual(mapped.stay.raw().hours, [{ SysABP: 120, DiasABP: 60, MAP: 80, NIMAP: 75 }]);
  });

  test('every LOINC code the service reads has a valid check digit (LOINC mod 10, computed here)', async () => {
    const manifest = await loadTinyManifest();
    // LOINC Users' Guide, appendix "Calculating Mod 10 check digits".
    const checkDigit = (digits: string): number => {
      const fromRight = [...digits].reverse();
      const odd = fromRight
        .filter((_, i) => i % 2 === 0)
        .reverse()
        .join('');
      const even = fromRight
        .filter((_, i) => i % 2 === 1)
        .reverse()
        .join('');
      const sum = [...`${even}${Number(odd) * 2}`].reduce((s, d) => s + Number(d), 0);
      return (10 - (sum % 10)) % 10;
    };
    assert.equal(checkDigit('12345'), 5, "the guide's own example");
    const codes = [...manifest.variables.flatMap((v) => v.loinc), ...VENTILATOR_OBSERVATION_CODES];
    for (const code of codes) {
      const [digits, check] = code.split('-');
      assert.equal(checkDigit(digits as string), Number(check), code);
    }
  });

  test('a ventilator-setting Observation (HL7 SANER "Ventilator Observations") marks its hour MechVent = 1', async () => {
    const manifest = await loadTinyManifest();
    const bundle = minimalBundle([
      observation('hr', [{ system: LOINC, code: '8867-4' }], 88, '/min', '2026-12-05T08:15:00Z'),
      observation('peep', [{ system: LOINC, code: '20077-4' }], 5, 'cm[H2O]', '2026-12-05T09:20:00Z'),
      observation('hr2', [{ system: LOINC, code: '8867-4' }], 92, '/min', '2026-12-05T10:15:00Z'),
    ]);
    const mapped = mapToPatientInput(gatherResources(bundle), { manifest, predictionTime: AT2 });
    assert.deepEqual(mapped.stay.raw().hours, [{ HR: 88 }, { MechVent: 1 }, { HR: 92 }]);
    assert.ok(
      !mapped.issues.some((i) => i.expression?.some((e) => e.includes('entry[2]'))),
      JSON.stringify(mapped.issues),
    );
  });
});

test('SI units and their LOINC codes, as European EHRs send them, map to the canonical values computed by hand', async () => {
  const manifest = await loadTinyManifest();
  const t = '2026-12-05T10:30:00Z';
  const bundle = minimalBundle([
    observation('crea', [{ system: LOINC, code: '14682-9' }], 88.4, 'umol/L', t),
    observation('glu', [{ system: LOINC, code: '14749-6' }], 5.5, 'mmol/L', t),
    observation('urea', [{ system: LOINC, code: '22664-7' }], 10, 'mmol/L', t),
    observation('bili', [{ system: LOINC, code: '14631-6' }], 17.1, 'umol/L', t),
    observation('alb', [{ system: LOINC, code: '1751-7' }], 35, 'g/L', t),
    observation('na', [{ system: LOINC, code: '2951-2' }], 140, 'meq/L', t),
    observation('k', [{ system: LOINC, code: '2823-3' }], 4.2, 'meq/L', t),
    observation('hco3', [{ system: LOINC, code: '1963-8' }], 24, 'meq/L', t),
  ]);
  const mapped = mapToPatientInput(gatherResources(bundle), {
    manifest,
    predictionTime: new Date('2026-12-05T12:00:00Z'),
  });
  const row = mapped.stay.raw().hours[0] as Record<string, number>;
  const expected: Record<string, number> = {
    Creatinine: (88.4 * 113.12) / 10_000,
    Glucose: (5.5 * 180.156) / 10,
    BUN: (10 * 28.0134) / 10,
    Bilirubin: (17.1 * 584.66) / 10_000,
    Albumin: 3.5,
    Na: 140,
    K: 4.2,
    HCO3: 24,
  };
  for (const [name, value] of Object.entries(expected))
    assert.ok(Math.abs((row[name] as number) - value) <= 1e-9 * value, `${name}: ${row[name]} vs ${value}`);
  assert.equal(mapped.issues.filter((i) => i.severity === 'warning').length, 0, JSON.stringify(mapped.issues));
});
