import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import {
  createPatientValidator,
  missingThroughout,
  ScannedPatient,
  type PatientValidator,
} from '../../src/clinical/validate.js';
import type { ValidPatient } from '../../src/clinical/types.js';
import { syntheticPatient } from '../../bench/payload.js';
import { hourRows, loadTinyManifest } from '../helper.js';

/**
 * The scanner (src/clinical/scan.ts) must give, for every text it accepts, what JSON.parse
 * followed by the validator gives; anything it does not accept goes that ordinary way. The
 * reference here is always JSON.parse + validate() on the same text.
 */

let validator: PatientValidator;
before(async () => {
  validator = createPatientValidator(await loadTinyManifest());
});

function reference(text: string): ValidPatient | undefined {
  const outcome = validator.validate(JSON.parse(text));
  return outcome.ok ? outcome.patient : undefined;
}

/** Every field of two valid patients, dense values compared with Object.is (NaN, -0). */
function assertSamePatient(actual: ValidPatient, expected: ValidPatient): void {
  assert.equal(actual.id, expected.id);
  assert.equal(actual.age, expected.age);
  assert.equal(actual.sex, expected.sex);
  assert.equal(actual.icuType, expected.icuType);
  assert.equal(actual.height, expected.height);
  assert.equal(actual.hoursReceived, expected.hoursReceived);
  assert.equal(actual.hoursUsed, expected.hoursUsed);
  assert.equal(actual.values.length, expected.values.length);
  for (let i = 0; i < expected.values.length; i++) {
    if (!Object.is(actual.values[i], expected.values[i]))
      assert.fail(`value ${i}: ${actual.values[i]} != ${expected.values[i]}`);
  }
  assert.deepEqual(hourRows(validator.manifest, actual), hourRows(validator.manifest, expected));
  // Reference: the variables with no value in any row of the hours used, read from the row objects.
  const names = validator.manifest.variables.map((v) => v.name);
  const unobserved = names.filter((name) => hourRows(validator.manifest, expected).every((row) => row[name] === null));
  assert.deepEqual(missingThroughout(validator.manifest, actual), unobserved);
}

function scanned(text: string): ValidPatient | undefined {
  const s = validator.scanText(Buffer.from(text));
  if (s === undefined) return undefined;
  const outcome = validator.validate(s);
  assert.ok(outcome.ok, 'a scanned patient is valid for its own manifest');
  return outcome.patient;
}

test('the benchmark payloads take the scanner, and give what JSON.parse + validate give', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const text = JSON.stringify({ id: `stay-${seed}`, ...syntheticPatient(1 + (seed % 60), seed) });
    const fast = scanned(text);
    assert.ok(fast, `seed ${seed} should take the scanner`);
    assertSamePatient(fast, reference(text)!);
  }
});

test('whitespace, key order, nulls, empty rows, long stays and -0 are read as JSON.parse reads them', () => {
  const hours = Array.from({ length: 60 }, (_, t) =>
    t % 5 === 0 ? {} : { HR: 60 + t, MAP: t % 3 === 0 ? null : 70.5, Temp: 36.6 },
  );
  const texts = [
    JSON.stringify({ hours, age: 70, sex: 'female', icuType: 3, height: 170.2, weight: 80, id: 'x' }),
    JSON.stringify({ id: 'y', weight: null, hours: [{ HR: -0, Weight: 81 }] }, null, 2),
    ' \t\r\n{ "hours" : [ { "HR" : 1e2 , "Temp" : 3.7E+1 } ] , "age" : null , "sex" : null , "icuType" : null } \n',
    JSON.stringify({ weight: 80, hours: [{ HR: 70 }, { HR: 72 }] }),
  ];
  for (const text of texts) {
    const fast = scanned(text);
    assert.ok(fast, text);
    assertSamePatient(fast, reference(text)!);
  }
});

test('numbers in every JSON form give the double JSON.parse gives', () => {
  // ALT accepts 1 to 50,000, so the values below exercise the number reader, not the bounds.
  const forms = [
    '1',
    '1.0',
    '1.5',
    '49999.99999999999',
    '12345.678901234567',
    '0.1e1',
    '1e4',
    '1E4',
    '1e+4',
    '123456789012345e-10',
    '1234567890123456789e-15',
    '3.000000000000001',
    '2.675',
    '1.0000000000000002',
    '10000000000000000000000e-18',
    '4.35',
    '100.5e-1',
    '5e-0',
    '0.000000000000000000000000000001e31',
    // More than 22 decimals, and a fraction's leading zeros (not significant digits).
    '1.0000000000000000000000000',
    '2.50000000000000000000000',
    '1.000000000000000000000001',
    '1.00012',
    '1.000000000000001',
  ];
  let state = 7;
  for (let i = 0; i < 2000; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const v = 1 + (state / 2 ** 32) * 49_000;
    forms.push(String(v), v.toFixed(state % 7), v.toExponential(state % 17), v.toPrecision(1 + (state % 17)));
  }
  for (const form of forms) {
    const text = `{"hours":[{"ALT":${form}}]}`;
    const ref = reference(text);
    const fast = scanned(text);
    if (ref === undefined) {
      assert.equal(fast, undefined, form);
      continue;
    }
    assert.ok(fast, `${form} should take the scanner`);
    assert.ok(
      Object.is(fast.values[validator.manifest.variables.findIndex((v) => v.name === 'ALT')], JSON.parse(form)),
      form,
    );
  }
});

test('small numbers with more than 22 decimals give the double JSON.parse gives', () => {
  const hr = validator.manifest.variables.findIndex((v) => v.name === 'HR');
  for (const form of [
    '0.0000000000000000000000012',
    '0.00000000000000000000000000000000000001',
    '0.0000000000000000000001',
    '0.000000000000000000000012345678901234',
  ]) {
    const fast = scanned(`{"hours":[{"HR":${form}}]}`);
    assert.ok(fast, `${form} should take the scanner`);
    assert.ok(Object.is(fast.values[hr], JSON.parse(form)), form);
  }
});

test('ids outside ASCII, and bytes that are not UTF-8, are read as JSON.parse reads the decoded text', () => {
  for (const id of ['Zoë', '患者-42', 'a😀b', 'é'.repeat(128), 'é'.repeat(200)]) {
    const text = JSON.stringify({ id, hours: [{ HR: 80 }] });
    const fast = validator.scanText(Buffer.from(text));
    assert.equal(reference(text)?.id, id);
    // The scanner counts an id's bytes against the 256-character limit, so it leaves longer ones to the ordinary path.
    if (Buffer.byteLength(id) <= 256) assert.equal(fast?.patient.id, id);
    else assert.equal(fast, undefined);
  }
  const bytes = Buffer.concat([
    Buffer.from('{"id":"a'),
    Buffer.from([0xff, 0xc3]),
    Buffer.from('","hours":[{"HR":80}]}'),
  ]);
  const fast = validator.scanText(bytes);
  assert.ok(fast);
  assert.equal(fast.patient.id, reference(bytes.toString('utf8'))?.id);
  assert.equal(fast.patient.id, 'a\ufffd\ufffd');
});

test('what the scanner does not take goes the ordinary way, which reports it', () => {
  const texts = [
    '{"hours":[]}',
    '{"hours":[{"HR":80}],"units":{"Temp":"[degF]"}}',
    '{"hours":[{"HR":80,"HR":81}]}',
    '{"hours":[{"HR":80}],"age":70,"age":71}',
    '{"hours":[{"HR":"80"}]}',
    '{"hours":[{"HR":1e999}]}',
    '{"hours":[{"HR":-1}]}',
    '{"hours":[{"SpO2":97}]}',
    '{"hours":[{"HR":80}],"id":"a\\"b"}',
    '{"hours":[{"HR":80}],"sex":"other"}',
    '{"hours":[{"HR":80}],"icuType":5}',
    '{"hours":[{"HR":80}],"age":3}',
    '{"hours":[{"HR":80}],"weight":1000}',
    '{"hours":[{"HR":80}],"extra":1}',
    '{"hours":[{"HR":80}]} x',
    '{"hours":[{"HR":80},]}',
    '{"hours":[{"HR":01}]}',
    '{"hours":[{"HR":.5}]}',
    '{"hours":[{"HR":80.}]}',
    '{"hours":[{"HR":8e}]}',
    '{"hours":[{"HR":8e+}]}',
    '{"hours":[{"HR":-}]}',
    '{"hours":[{"HR":+80}]}',
    '{"hours":[{"HR":-.5}]}',
    '{"hours":[{"HR":8.e1}]}',
    '{"hours":[null]}',
    '{"hours":[{"HR":80}]',
    `{"hours":[{"HR":80}],"id":"${'x'.repeat(257)}"}`,
    '{"__proto__":{"x":1},"hours":[{}]}',
  ];
  for (const text of texts) assert.equal(validator.scanText(Buffer.from(text)), undefined, text);
});

test('the scanner and JSON.parse + validate agree on random patients, and the scanner takes most valid ones (property test)', async () => {
  const fc = await import('fast-check');
  const variables = validator.manifest.variables;
  // Mostly in-bounds values (so that most patients are valid), with some out of bounds, of another type, or unknown
  // names.
  const cell = fc.tuple(
    fc.integer({ min: 0, max: variables.length + 1 }),
    fc.double({ min: -0.1, max: 1.1, noNaN: true }),
    fc.integer({ min: 0, max: 40 }),
  );
  const row = fc.oneof(
    {
      weight: 30,
      arbitrary: fc.array(cell, { maxLength: 6 }).map((cells) => {
        const out: Record<string, unknown> = {};
        for (const [j, f, kind] of cells) {
          const v = variables[j];
          const name = v ? v.name : j === variables.length ? 'SpO2' : '__proto__';
          const inBounds = v ? v.bounds.min + Math.min(1, Math.max(0, f)) * (v.bounds.max - v.bounds.min) : f;
          out[name] =
            kind === 0
              ? null
              : kind === 1
                ? '12'
                : kind === 2
                  ? v
                    ? v.bounds.min + f * (v.bounds.max - v.bounds.min)
                    : f
                  : kind < 10
                    ? Math.round(inBounds)
                    : inBounds;
        }
        return out;
      }),
    },
    { weight: 1, arbitrary: fc.constantFrom(null, 3, [], 'row') },
  );
  const patient = fc.record(
    {
      id: fc.string({ maxLength: 4 }),
      age: fc.oneof(
        fc.constant(null),
        fc.integer({ min: 10, max: 115 }),
        fc.double({ min: 10, max: 115, noNaN: true }),
      ),
      sex: fc.constantFrom('female', 'male', null, 'female', 'male', 'x'),
      icuType: fc.constantFrom(1, 2, 3, 4, 1, 2, 3, 4, 5, null, 2.5),
      height: fc.oneof(fc.constant(null), fc.double({ min: 90, max: 260, noNaN: true })),
      weight: fc.oneof(fc.constant(null), fc.double({ min: 0, max: 450, noNaN: true })),
      units: fc.constantFrom(undefined, undefined, undefined, { Temp: 'Cel' }),
      hours: fc.array(row, { minLength: 0, maxLength: 6 }),
    },
    { requiredKeys: ['hours'] },
  );
  const space = fc.constantFrom(undefined, 0, 1, '\t');
  let validCount = 0;
  let scannedCount = 0;
  fc.assert(
    fc.property(patient, space, (p, indent) => {
      const text = JSON.stringify(p, null, indent);
      const ref = reference(text);
      const fast = validator.scanText(Buffer.from(text));
      if (ref !== undefined) validCount++;
      if (fast === undefined) return true;
      scannedCount++;
      if (ref === undefined) return false;
      assertSamePatient(validator.validate(fast).ok ? fast.patient : assert.fail('not ok'), ref);
      return true;
    }),
    { numRuns: 3000, seed: 20261201 },
  );
  // The scanner leaves `units` and escaped ids to the ordinary path; most valid patients have neither.
  assert.ok(
    validCount > 300 && scannedCount > validCount / 2,
    `scanned ${scannedCount} of ${validCount} valid patients`,
  );
});

test('a scanned patient given to another manifest is parsed from its text and validated there', async () => {
  const text = JSON.stringify({ id: 'p', hours: [{ HR: 80 }] });
  const s = validator.scanText(Buffer.from(text));
  assert.ok(s instanceof ScannedPatient);
  const other = createPatientValidator({ ...validator.manifest, version: 'other' });
  const outcome = other.validate(s);
  assert.ok(outcome.ok);
  assertSamePatient(outcome.patient, reference(text)!);
  assert.deepEqual(s.raw(), JSON.parse(text));
});

test('scanTextAt reads a patient inside a larger text and says where it ends', () => {
  const patientText = JSON.stringify({ id: 'q', hours: [{ HR: 81 }] });
  const body = `{"patients":[${patientText},{}]}`;
  const at = body.indexOf(patientText);
  const result = validator.scanTextAt(Buffer.from(body), Buffer.byteLength(body.slice(0, at)));
  assert.ok(result);
  assert.equal(result.end, at + patientText.length);
  assert.deepEqual(result.scanned.raw(), JSON.parse(patientText));
  assertSamePatient(result.scanned.patient, reference(patientText)!);
});
