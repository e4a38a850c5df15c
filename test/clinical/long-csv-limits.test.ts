import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readLongCsv, type LongCsvItem, type OversizedRecord } from '../../src/clinical/long-csv.js';
import { loadTinyManifest } from '../helper.js';

/** Time and size bounds of the long-form CSV reader (issue 27, finding 4 and 8). */

async function read(
  rows: AsyncIterable<string[] | OversizedRecord> | Array<string[] | OversizedRecord>,
): Promise<LongCsvItem[]> {
  async function* source() {
    for await (const r of rows) yield r;
  }
  const out: LongCsvItem[] = [];
  for await (const item of readLongCsv(source(), await loadTinyManifest())) out.push(item);
  return out;
}

const HEADER = ['id', 'time', 'variable', 'value'];

test('a time beyond 8,784 hours fails its id naming the row, without building the hours; the next id is read', async () => {
  const items = await read([
    HEADER,
    ['a', '00:10', 'HR', '80'],
    ['a', '100000000', 'HR', '81'],
    ['b', '00:20', 'HR', '70'],
  ]);
  assert.equal(items.length, 2);
  const [a, b] = items;
  assert.ok(a && !a.ok);
  assert.deepEqual(a.details, [
    { path: ['row 3', 'time'], message: 'time "100000000" is after the longest stay read, 8784 hours' },
  ]);
  assert.ok(b?.ok);
  assert.deepEqual(b.stay.raw().hours, [{ HR: 70 }]);
});

test('the last hour read is hour 8,783: 8783:59 is read, 8784:00 is refused', async () => {
  const [ok] = await read([HEADER, ['a', '8783:59', 'HR', '80']]);
  assert.ok(ok?.ok);
  assert.equal(ok.stay.patient.hoursReceived, 8784);
  const [refused] = await read([HEADER, ['a', '8784:00', 'HR', '80']]);
  assert.ok(refused && !refused.ok);
});

test('200,000 rows of one id give the hourly rows computed by hand (last value by time, urine summed)', async () => {
  // Pair k (0-based): HR k % 250 and Urine 1 mL, both at minute k % 2880 (48 hours), in file order:
  // each minute is seen ~35 times, and the last HR of hour h is that of the largest k with
  // k % 2880 = 60h + 59.
  const N = 100_000;
  async function* rows(): AsyncGenerator<string[]> {
    yield HEADER;
    for (let k = 0; k < N; k++) {
      const minute = k % 2880;
      const time = `${Math.floor(minute / 60)}:${String(minute % 60).padStart(2, '0')}`;
      yield ['a', time, 'HR', String(k % 250)];
      yield ['a', time, 'Urine', '1'];
    }
  }
  const [a] = await read(rows());
  assert.ok(a?.ok);
  const hours = a.stay.raw().hours;
  assert.equal(hours.length, 48);
  for (let h = 0; h < 48; h++) {
    const minute = 60 * h + 59;
    const lastK = minute + 2880 * Math.floor((N - 1 - minute) / 2880);
    // Rows with k % 2880 in [60h, 60h + 59]: 60 minutes, each seen floor((N - 1 - m) / 2880) + 1 times.
    let urine = 0;
    for (let m = 60 * h; m < 60 * h + 60; m++) urine += Math.floor((N - 1 - m) / 2880) + 1;
    assert.deepEqual(hours[h], { HR: lastK % 250, Urine: urine }, `hour ${h}`);
  }
});

test('a record skipped as too long fails the id it starts with; other ids are read', async () => {
  const items = await read([
    HEADER,
    ['a', '00:10', 'HR', '80'],
    {
      oversized: true,
      message: 'the record is longer than 1024 bytes (--max-record-bytes)',
      excerpt: 'a,00:20,HR,"xxxx',
    },
    ['a', '00:30', 'HR', '82'],
    { oversized: true, message: 'the record is longer than 1024 bytes (--max-record-bytes)', excerpt: '"b' },
    ['c', '00:20', 'HR', '70'],
  ]);
  assert.deepEqual(
    items.map((i) => [i.ok, i.id, i.firstRow]),
    [
      [false, undefined, 5],
      [false, 'a', 2],
      [true, 'c', 6],
    ],
  );
  const [skipped, a] = items;
  assert.ok(a && !a.ok && skipped && !skipped.ok);
  assert.deepEqual(a.details, [
    { path: ['row 3'], message: 'the record is longer than 1024 bytes (--max-record-bytes)' },
  ]);
  assert.deepEqual(skipped.details, [
    { path: ['row 5', 'record'], message: 'the record is longer than 1024 bytes (--max-record-bytes)' },
  ]);
});

test('a long field is quoted in a report by its first characters only', async () => {
  const [a] = await read([HEADER, ['a', '00:10', 'HR', 'x'.repeat(100_000)]]);
  assert.ok(a && !a.ok);
  assert.deepEqual(a.details, [
    { path: ['row 2', 'value'], message: `value "${'x'.repeat(64)}…" of HR is not a number` },
  ]);
});
