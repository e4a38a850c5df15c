import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StayBuilder, patientJson } from '../../src/clinical/stay.js';
import type { Manifest } from '../../src/model/manifest.js';
import { loadTinyManifest } from '../helper.js';

// Every expected value below is worked out by hand from the tiny model's manifest
// (test/fixtures/tiny-model/manifest.json): HR /min 0-300 (last), Urine mL 0-10000 (sum),
// Temp Cel 25-45 ([degF] accepted), Weight kg 20-400 (the static weight variable), Age 15-110.

const at = (row: number, column: string): Array<string | number> => [`row ${row}`, column];

function column(manifest: Manifest, name: string): number {
  return manifest.variables.findIndex((v) => v.name === name);
}

function cell(manifest: Manifest, values: Float64Array, hour: number, name: string): number {
  return values[hour * manifest.variables.length + column(manifest, name)] as number;
}

test('values in a named unit are converted to the canonical one before the range check', async () => {
  const manifest = await loadTinyManifest();
  const stay = new StayBuilder(manifest, { outOfRange: 'reject', locate: at });
  assert.equal(stay.unit('Temp', '[degF]', 1), true);
  // (98.6 - 32) * 5 / 9 = 37; 113 degF = 45 degC (the upper bound, inclusive).
  stay.add(0, 'Temp', 98.6, 2);
  stay.add(1, 'Temp', 113, 3);
  const built = stay.build();
  assert.ok(built.ok);
  assert.ok(Math.abs(cell(manifest, built.patient.values, 0, 'Temp') - 37) < 1e-9);
  assert.ok(Math.abs(cell(manifest, built.patient.values, 1, 'Temp') - 45) < 1e-9);
});

test('an hour keeps the last value by order (ties: the later arrival) and sums urine', async () => {
  const manifest = await loadTinyManifest();
  const stay = new StayBuilder(manifest, { outOfRange: 'reject' });
  // Orders are minutes: 01:50, 01:55, 01:40, then a second 01:55 arriving later.
  stay.add(1, 'HR', 90, -1, 110);
  stay.add(1, 'HR', 95, -1, 115);
  stay.add(1, 'HR', 80, -1, 100);
  stay.add(1, 'HR', 97, -1, 115);
  stay.add(1, 'Urine', 20);
  stay.add(1, 'Urine', 30);
  const built = stay.build();
  assert.ok(built.ok);
  assert.equal(built.patient.hoursReceived, 2);
  assert.deepEqual(patientJson(manifest, built.patient).hours, [{}, { HR: 97, Urine: 50 }]);
});

test('a value outside its range fails the stay at the place the reader names', async () => {
  const manifest = await loadTinyManifest();
  const stay = new StayBuilder(manifest, { outOfRange: 'reject', locate: at });
  stay.add(0, 'HR', 80, 2);
  stay.add(0, 'HR', 301, 3);
  stay.add(0, 'SpO2', 97, 4);
  const built = stay.build();
  assert.ok(!built.ok);
  assert.deepEqual(
    built.issues.map((i) => i.path),
    [at(3, 'value'), at(4, 'variable')],
  );
  assert.match(built.issues[0]!.message, /outside the plausible range 0 to 300 \/min/);
  assert.match(built.issues[1]!.message, /SaO2/);
});

test('a dropping builder leaves an impossible value out and notes where it was', async () => {
  const manifest = await loadTinyManifest();
  const stay = new StayBuilder(manifest, { outOfRange: 'drop', locate: at });
  stay.add(0, 'HR', 80, 2);
  stay.add(0, 'HR', 301, 3);
  stay.add(0, 'Foo', 1, 4);
  const built = stay.build();
  assert.ok(built.ok);
  assert.equal(cell(manifest, built.patient.values, 0, 'HR'), 80);
  assert.deepEqual(
    built.dropped.map((d) => d.path),
    [at(3, 'value')],
  );
});

test('descriptors come by the manifest name or the API field, as codes or labels', async () => {
  const manifest = await loadTinyManifest();
  const stay = new StayBuilder(manifest, { outOfRange: 'reject', locate: at });
  assert.equal(stay.descriptor('Gender', 0, 2), true);
  assert.equal(stay.descriptor('ICUType', '3', 3), true);
  assert.equal(stay.descriptor('age', '67', 4), true);
  assert.equal(stay.descriptor('Height', 172, 5), true);
  assert.equal(stay.descriptor('HR', 80, 6), false);
  stay.add(0, 'HR', 80);
  const built = stay.build();
  assert.ok(built.ok);
  const { sex, icuType, age, height } = built.patient;
  assert.deepEqual({ sex, icuType, age, height }, { sex: 'female', icuType: 3, age: 67, height: 172 });
});

test('a descriptor the manifest does not accept fails the stay (reject) or is unknown (drop)', async () => {
  const manifest = await loadTinyManifest();
  const strict = new StayBuilder(manifest, { outOfRange: 'reject', locate: at });
  strict.descriptor('Age', 130, 2);
  strict.descriptor('Sex', 'unknown', 3);
  strict.descriptor('ICUType', 7, 4);
  const refused = strict.build();
  assert.ok(!refused.ok);
  assert.deepEqual(
    refused.issues.map((i) => i.path),
    [at(2, 'value'), at(3, 'value'), at(4, 'value')],
  );
  const lenient = new StayBuilder(manifest, { outOfRange: 'drop', locate: at });
  lenient.descriptor('Age', 130, 2);
  const kept = lenient.build();
  assert.ok(kept.ok);
  assert.equal(kept.patient.age, null);
});

test('the admission weight is hour 0 of the weight series when that hour has none, in the unit named', async () => {
  const manifest = await loadTinyManifest();
  const stay = new StayBuilder(manifest, { outOfRange: 'reject' });
  stay.unit('Weight', '[lb_av]');
  stay.header.weight = 176;
  stay.add(1, 'HR', 80);
  const built = stay.build();
  assert.ok(built.ok);
  // 176 lb x 0.45359237 kg/lb (the international avoirdupois pound) = 79.83225712 kg.
  assert.ok(Math.abs(cell(manifest, built.patient.values, 0, 'Weight') - 79.83225712) < 1e-6);
  assert.equal(built.patient.observed[column(manifest, 'Weight')], 1);
});

test("a stay longer than the model's hours is cut to its last maxHours, and none may pass 8,784 hours", async () => {
  const manifest = await loadTinyManifest();
  const stay = new StayBuilder(manifest, { outOfRange: 'reject', locate: at });
  stay.add(0, 'HR', 70);
  stay.add(59, 'HR', 80);
  const built = stay.build();
  assert.ok(built.ok);
  assert.equal(built.patient.hoursReceived, 60);
  assert.equal(built.patient.hoursUsed, 48);
  assert.equal(cell(manifest, built.patient.values, 47, 'HR'), 80);
  stay.add(8784, 'HR', 80, 9);
  const late = stay.build();
  assert.ok(!late.ok);
  assert.deepEqual(late.issues[0]?.path, at(9, 'time'));
});
