import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { LongCsvHeaderError, parseElapsedTime, readLongCsv, type LongCsvItem } from '../../src/clinical/long-csv.js';
import { manifestSchema, type Manifest } from '../../src/model/manifest.js';

async function loadTinyManifest(): Promise<Manifest> {
  return manifestSchema.parse(
    JSON.parse(await readFile(new URL('../fixtures/tiny-model/manifest.json', import.meta.url), 'utf8')),
  );
}

async function read(rows: string[][]): Promise<LongCsvItem[]> {
  async function* source() {
    for (const r of rows) yield r;
  }
  const out: LongCsvItem[] = [];
  for await (const item of readLongCsv(source(), await loadTinyManifest())) out.push(item);
  return out;
}

test('elapsed times are hh:mm or hours', () => {
  assert.equal(parseElapsedTime('00:00'), 0);
  assert.equal(parseElapsedTime('47:59'), 47 * 60 + 59);
  assert.equal(parseElapsedTime('1.5'), 90);
  assert.equal(parseElapsedTime('3'), 180);
  assert.equal(parseElapsedTime('-1'), undefined);
  assert.equal(parseElapsedTime('1:75'), undefined);
  assert.equal(parseElapsedTime('2026-01-01T00:00'), undefined);
});

test('rows of one id become one patient with hourly rows, descriptors and units', async () => {
  const items = await read([
    ['id', 'time', 'variable', 'value', 'unit'],
    ['a', '00:00', 'Age', '67', ''],
    ['a', '00:00', 'Sex', 'female', ''],
    ['a', '00:00', 'ICUType', '2', ''],
    ['a', '02:10', 'HR', '80', ''],
    // Out of time order on purpose: the 01:50 value is not the last of hour 1.
    ['a', '01:55', 'HR', '95', ''],
    ['a', '01:50', 'HR', '90', ''],
    ['a', '1.25', 'Urine', '30', ''],
    ['a', '01:40', 'Urine', '20', ''],
    ['a', '0.5', 'Temp', '99.5', '[degF]'],
    ['b', '00:30', 'HR', '70', ''],
    ['b', '00:00', 'Gender', '1', ''],
  ]);
  assert.equal(items.length, 2);
  const [a, b] = items;
  assert.ok(a?.ok && b?.ok);
  assert.equal(a.firstRow, 2);
  // 99.5 degF is 37.5 degC: (99.5 - 32) * 5 / 9.
  const [first, ...rest] = a.stay.raw().hours;
  assert.ok(Math.abs((first?.Temp ?? 0) - 37.5) < 1e-9);
  assert.deepEqual(
    { ...a.stay.raw(), hours: rest },
    { id: 'a', age: 67, sex: 'female', icuType: 2, height: null, hours: [{ HR: 95, Urine: 50 }, { HR: 80 }] },
  );
  assert.deepEqual(b.stay.raw(), { id: 'b', age: null, sex: 'male', icuType: null, height: null, hours: [{ HR: 70 }] });
});

test('a bad row fails its id only, naming the row and column', async () => {
  const items = await read([
    ['id', 'time', 'variable', 'value'],
    ['a', '00:10', 'HR', '80'],
    ['b', '00:10', 'SpO2', '97'],
    ['b', 'noon', 'HR', '80'],
    ['b', '00:20', 'HR', 'high'],
    ['c', '00:10', 'HR', '81'],
  ]);
  assert.deepEqual(
    items.map((i) => [i.id, i.ok]),
    [
      ['a', true],
      ['b', false],
      ['c', true],
    ],
  );
  const b = items[1];
  assert.ok(b && !b.ok);
  assert.deepEqual(
    b.details.map((d) => d.path),
    [
      ['row 3', 'variable'],
      ['row 4', 'time'],
      ['row 5', 'value'],
    ],
  );
  assert.match(b.details[0]!.message, /unknown variable "SpO2"/);
});

test('an id whose rows are not contiguous is reported once, at the row where it comes back', async () => {
  const items = await read([
    ['id', 'time', 'variable', 'value'],
    ['a', '00:10', 'HR', '80'],
    ['b', '00:10', 'HR', '81'],
    ['a', '00:20', 'HR', '82'],
    ['a', '00:30', 'HR', '83'],
    ['c', '00:10', 'HR', '84'],
  ]);
  assert.deepEqual(
    items.map((i) => [i.id, i.ok, i.firstRow]),
    [
      ['a', true, 2],
      ['b', true, 3],
      ['a', false, 4],
      ['c', true, 6],
    ],
  );
});

test('a header without the required columns is refused', async () => {
  await assert.rejects(read([['patient', 'time', 'variable', 'value']]), LongCsvHeaderError);
});

test('a unit that changes within a patient is an error, not a silent mix', async () => {
  const items = await read([
    ['id', 'time', 'variable', 'value', 'unit'],
    ['a', '00:10', 'Temp', '37', 'Cel'],
    ['a', '00:20', 'Temp', '99', '[degF]'],
  ]);
  assert.equal(items[0]?.ok, false);
});

test('a value outside its range, a unit not accepted and a descriptor out of range are named by row and column', async () => {
  const items = await read([
    ['id', 'time', 'variable', 'value', 'unit'],
    ['a', '00:00', 'Age', '130', ''],
    ['a', '00:10', 'HR', '80', ''],
    ['a', '00:20', 'HR', '301', ''],
    ['a', '00:30', 'Temp', '37', 'mm[Hg]'],
    ['b', '00:10', 'HR', '80', ''],
  ]);
  const [a, b] = items;
  assert.ok(a && !a.ok && b?.ok);
  assert.deepEqual(
    a.details.map((d) => d.path),
    [
      ['row 2', 'value'],
      ['row 4', 'value'],
      ['row 5', 'unit'],
    ],
  );
  // HR's bounds in the tiny manifest: 0 to 300 /min.
  assert.match(a.details[1]!.message, /outside the plausible range 0 to 300 \/min/);
  assert.match(a.details[2]!.message, /not a UCUM unit convertible to Cel/);
});
