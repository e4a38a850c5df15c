import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, test } from 'node:test';
import { BuiltStay, StayBuilder } from '../../src/clinical/stay.js';
import { manifestSchema } from '../../src/model/manifest.js';
import {
  createPatientValidator,
  missingThroughout,
  type PatientValidator,
  type ValidationOutcome,
} from '../../src/clinical/validate.js';
import type { ValidPatient } from '../../src/clinical/types.js';
import { hourRows, loadTinyManifest } from '../helper.js';

let validator: PatientValidator;
before(async () => {
  validator = createPatientValidator(await loadTinyManifest());
});

function valid(outcome: ValidationOutcome): ValidPatient {
  if (!outcome.ok) assert.fail(`expected valid, got ${JSON.stringify(outcome.issues)}`);
  return outcome.patient;
}

const rowsOf = (p: ValidPatient): Array<Record<string, number | null>> => hourRows(validator.manifest, p);

function issues(outcome: ValidationOutcome): Array<{ path: string; message: string }> {
  if (outcome.ok) assert.fail('expected the patient to be invalid');
  return outcome.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

test('a patient with missing and null values is valid and every value keeps its canonical unit', () => {
  const p = valid(
    validator.validate({ id: 'a', age: 70, sex: 'male', icuType: 2, hours: [{ HR: 80, MAP: null }, {}] }),
  );
  assert.equal(p.id, 'a');
  assert.equal(rowsOf(p).length, 2);
  assert.equal(rowsOf(p)[0]?.HR, 80);
  assert.equal(rowsOf(p)[0]?.MAP, null);
  assert.equal(rowsOf(p)[1]?.HR, null);
  assert.equal(p.hoursReceived, 2);
});

test('an unknown measurement name is reported at its own path', () => {
  const found = issues(validator.validate({ hours: [{ HR: 80 }, { Foo: 1 }] }));
  assert.deepEqual(
    found.map((i) => i.path),
    ['hours.1.Foo'],
  );
  assert.match(found[0]!.message, /unknown measurement "Foo"/);
});

test('SpO2 is rejected with a message that says to send arterial saturation as SaO2', () => {
  const found = issues(validator.validate({ hours: [{ SpO2: 97 }] }));
  assert.deepEqual(
    found.map((i) => i.path),
    ['hours.0.SpO2'],
  );
  assert.match(found[0]!.message, /SaO2/);
});

test('a wrong type is reported with the path of the field', () => {
  const found = issues(validator.validate({ age: 'old', hours: [{ HR: '80' }] }));
  assert.deepEqual(found.map((i) => i.path).sort(), ['age', 'hours.0.HR']);
});

test('non-finite numbers are rejected', () => {
  const found = issues(validator.validate({ hours: [{ HR: Number.POSITIVE_INFINITY, MAP: Number.NaN }] }));
  assert.deepEqual(found.map((i) => i.path).sort(), ['hours.0.HR', 'hours.0.MAP']);
});

test('physiologically impossible values are rejected; the bounds themselves are accepted', () => {
  assert.deepEqual(
    issues(validator.validate({ hours: [{ HR: 301, SaO2: 101, Temp: 24.9 }] }))
      .map((i) => i.path)
      .sort(),
    ['hours.0.HR', 'hours.0.SaO2', 'hours.0.Temp'],
  );
  valid(
    validator.validate({
      hours: [
        { HR: 300, SaO2: 100, Temp: 25 },
        { HR: 0, SaO2: 20, Temp: 45 },
      ],
    }),
  );
});

test('the error message never repeats the offending value', () => {
  const found = issues(validator.validate({ hours: [{ HR: 123456.789 }] }));
  assert.ok(!found[0]!.message.includes('123456'));
});

test('empty hours is rejected', () => {
  assert.deepEqual(
    issues(validator.validate({ hours: [] })).map((i) => i.path),
    ['hours'],
  );
  assert.deepEqual(
    issues(validator.validate({})).map((i) => i.path),
    ['hours'],
  );
});

test('temperature in degF is converted when the request says so, and only then', () => {
  const p = valid(validator.validate({ units: { Temp: '[degF]' }, hours: [{ Temp: 98.6 }] }));
  assert.ok(Math.abs((rowsOf(p)[0]?.Temp ?? 0) - 37) < 1e-9);
  // Without the unit, 98.6 is read as degC and is out of bounds.
  assert.deepEqual(
    issues(validator.validate({ hours: [{ Temp: 98.6 }] })).map((i) => i.path),
    ['hours.0.Temp'],
  );
});

test('bounds are checked after conversion to the canonical unit', () => {
  // 200 degF = 93.3 degC: outside 25..45 degC, though 200 is a plausible-looking number.
  const found = issues(validator.validate({ units: { Temp: '[degF]' }, hours: [{ Temp: 200 }] }));
  assert.deepEqual(
    found.map((i) => i.path),
    ['hours.0.Temp'],
  );
  assert.match(found[0]!.message, /after unit conversion/);
});

test('lactate in mg/dL and FiO2 in percent are converted (mmol/L = mg/dL x 0.111; fraction = % / 100)', () => {
  const p = valid(validator.validate({ units: { Lactate: 'mg/dL', FiO2: '%' }, hours: [{ Lactate: 18, FiO2: 40 }] }));
  assert.ok(Math.abs((rowsOf(p)[0]?.Lactate ?? 0) - 18 * 0.11101243339253998) < 1e-9);
  assert.ok(Math.abs((rowsOf(p)[0]?.FiO2 ?? 0) - 0.4) < 1e-12);
});

test('a unit not convertible to the canonical one, or units for an unknown variable, are rejected at units.<name>', () => {
  const found = issues(validator.validate({ units: { Temp: 'mm[Hg]', Foo: 'mg' }, hours: [{ Temp: 37 }] }));
  assert.deepEqual(found.map((i) => i.path).sort(), ['units.Foo', 'units.Temp']);
});

test('static descriptors out of bounds or of the wrong kind are rejected', () => {
  const found = issues(validator.validate({ age: 5, height: 400, sex: 'x', icuType: 7, weight: 900, hours: [{}] }));
  assert.deepEqual(found.map((i) => i.path).sort(), ['age', 'height', 'icuType', 'sex', 'weight']);
});

test('unknown top-level fields are rejected', () => {
  assert.deepEqual(
    issues(validator.validate({ hours: [{}], bloodType: 'A' })).map((i) => i.path),
    ['bloodType'],
  );
});

test('every offending field is reported at once', () => {
  const found = issues(validator.validate({ age: 3, hours: [{ HR: -1 }, { Foo: 2, MAP: 'x' }] }));
  assert.deepEqual(found.map((i) => i.path).sort(), ['age', 'hours.0.HR', 'hours.1.Foo', 'hours.1.MAP']);
});

test('static weight becomes a Weight observation at hour 0 when the first row has none', () => {
  const p = valid(validator.validate({ weight: 80, hours: [{ HR: 70 }, { HR: 72 }] }));
  assert.equal(rowsOf(p)[0]?.Weight, 80);
  assert.equal(rowsOf(p)[1]?.Weight, null);
  const q = valid(validator.validate({ weight: 80, hours: [{ Weight: 81 }] }));
  assert.equal(rowsOf(q)[0]?.Weight, 81);
  const lb = valid(validator.validate({ weight: 176, units: { Weight: '[lb_av]' }, hours: [{}] }));
  assert.ok(Math.abs((rowsOf(lb)[0]?.Weight ?? 0) - 176 * 0.45359237) < 1e-9);
});

test('stays longer than maxHours keep their last maxHours rows', () => {
  const hours = Array.from({ length: 50 }, (_, t) => ({ HR: 60 + t }));
  const p = valid(validator.validate({ hours }));
  assert.equal(rowsOf(p).length, 48);
  assert.equal(p.hoursReceived, 50);
  assert.equal(rowsOf(p)[0]?.HR, 62);
  assert.equal(rowsOf(p)[47]?.HR, 109);
});

test('missingThroughout lists the variables never observed in the hours used', () => {
  const p = valid(validator.validate({ hours: [{ HR: 80 }, { MAP: 70 }] }));
  const missing = missingThroughout(validator.manifest, p);
  assert.ok(!missing.includes('HR') && !missing.includes('MAP'));
  assert.ok(missing.includes('Lactate'));
  assert.equal(missing.length, validator.manifest.variables.length - 2);
});

test('the fast path and the full zod schema agree on which patients are valid (property test)', async () => {
  const fc = await import('fast-check');
  const names = validator.manifest.variables.map((v) => v.name);
  const value = fc.oneof(
    fc.constant(null),
    fc.double({ min: -50, max: 500, noNaN: true }),
    fc.integer({ min: -5, max: 400 }),
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, '12', true, {}, []),
  );
  const key = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...names) },
    { weight: 1, arbitrary: fc.constantFrom('SpO2', 'hr', 'Foo', '__proto__', 'constructor') },
  );
  const row = fc.oneof(
    { weight: 10, arbitrary: fc.dictionary(key, value, { maxKeys: 6 }) },
    { weight: 1, arbitrary: fc.constantFrom(null, 3, [], 'row') },
  );
  const units = fc.option(
    fc.dictionary(
      fc.constantFrom('Temp', 'Lactate', 'FiO2', 'HR', 'Foo', 'Weight'),
      fc.constantFrom('[degF]', 'mg/dL', '%', 'Cel', '/min', 'K', '[lb_av]', 'kg'),
      { maxKeys: 2 },
    ),
    { nil: undefined },
  );
  const patient = fc.record(
    {
      id: fc.string({ maxLength: 4 }),
      age: fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 130 })),
      sex: fc.constantFrom('female', 'male', null, 'x'),
      icuType: fc.constantFrom(1, 2, 3, 4, 5, null),
      weight: fc.oneof(fc.constant(null), fc.double({ min: 0, max: 600, noNaN: true })),
      units,
      hours: fc.array(row, { minLength: 0, maxLength: 5 }),
    },
    { requiredKeys: ['hours'] },
  );
  fc.assert(
    fc.property(patient, (p) => {
      const fast = validator.validate(p).ok;
      const full = validator.schema.safeParse(p).success;
      return fast === full;
    }),
    { numRuns: 3000, seed: 20261125 },
  );
});

test('a stay built by another reader for a hybrid model is refused at noteEmbedding unless its embedding has the model’s size', async () => {
  const raw: unknown = JSON.parse(await readFile('test/fixtures/tiny-hybrid-model/manifest.json', 'utf8'));
  const manifest = manifestSchema.parse(raw);
  const hybrid = createPatientValidator(manifest);
  const dimension = manifest.noteEmbedding?.dimension ?? assert.fail('the fixture is a hybrid model');
  const built = (noteEmbedding?: number[]): BuiltStay => {
    const stay = new StayBuilder(manifest, { outOfRange: 'drop' });
    const v = manifest.variables[0] as (typeof manifest.variables)[number];
    stay.add(0, v.name, (v.bounds.min + v.bounds.max) / 2);
    stay.header.noteEmbedding = noteEmbedding;
    const outcome = stay.build();
    if (!outcome.ok) assert.fail(JSON.stringify(outcome.issues));
    return new BuiltStay(manifest, outcome.patient);
  };
  // As FHIR, a PhysioNet record or a CSV without a noteEmbedding row builds it: no embedding.
  assert.deepEqual(issues(hybrid.validate(built())), [
    {
      path: 'noteEmbedding',
      message: `model ${manifest.name} ${manifest.version} needs noteEmbedding: ${dimension} numbers from ${manifest.noteEmbedding?.encoder}`,
    },
  ]);
  assert.deepEqual(
    issues(hybrid.validate(built(new Array<number>(dimension + 1).fill(0)))).map((i) => i.path),
    ['noteEmbedding'],
  );
  assert.match(
    issues(hybrid.validate(built([0.5])))[0]?.message ?? '',
    new RegExp(`has 1 numbers; .* needs ${dimension}`),
  );
  assert.equal(valid(hybrid.validate(built(new Array<number>(dimension).fill(0)))).noteEmbedding?.length, dimension);
});
