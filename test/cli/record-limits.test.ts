import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { runScore, type ScoreCommandOptions } from '../../src/cli/score.js';
import { makeModelRoot, samplePatient } from '../helper.js';

/** Records too long or too late are reported in the errors file (bounded), and the run goes on (issue 27). */

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icu-cli-limits-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function score(modelRoot: string, opts: Omit<ScoreCommandOptions, 'modelDir'>) {
  return runScore({ quiet: true, modelDir: join(modelRoot, 'icu-mortality'), threads: 1, ...opts });
}

async function scoredIds(path: string): Promise<string[]> {
  const [, ...lines] = (await readFile(path, 'utf8')).trim().split('\n');
  return lines.map((l) => l.split(',')[0] as string);
}

async function report(path: string): Promise<Array<Record<string, unknown>>> {
  return (await readFile(path, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('a long-form CSV time of 100000000 hours fails its id naming the row; the other ids are scored, exit 1', async (t) => {
  const modelRoot = await makeModelRoot(t);
  const dir = await tempDir(t);
  await writeFile(
    join(dir, 'cohort.csv'),
    ['id,time,variable,value', 'a,00:10,HR,80', 'b,00:10,HR,80', 'b,100000000,HR,81', 'c,01:10,HR,90', ''].join('\n'),
  );
  const summary = await score(modelRoot, {
    format: 'csv',
    input: join(dir, 'cohort.csv'),
    output: join(dir, 'out.csv'),
  });
  assert.equal(summary.exitCode, 1);
  assert.deepEqual(await scoredIds(join(dir, 'out.csv')), ['a', 'c']);
  const [b] = await report(join(dir, 'out.csv.errors.ndjson'));
  assert.equal(b?.id, 'b');
  assert.equal(b?.line, 3);
  assert.deepEqual(b?.details, [
    { path: 'row 4.time', message: 'time "100000000" is after the longest stay read, 8784 hours' },
  ]);
});

test('a CSV field over --max-record-bytes is reported with a bounded excerpt and not read; the run goes on', async (t) => {
  const modelRoot = await makeModelRoot(t);
  const dir = await tempDir(t);
  const huge = 'x'.repeat(4 * 1024 * 1024);
  await writeFile(
    join(dir, 'cohort.csv'),
    ['id,time,variable,value', 'a,00:10,HR,80', `b,00:10,HR,"${huge}"`, 'b,00:20,HR,70', 'c,01:10,HR,90', ''].join(
      '\n',
    ),
  );
  const summary = await score(modelRoot, {
    format: 'csv',
    input: join(dir, 'cohort.csv'),
    output: join(dir, 'out.csv'),
    maxRecordBytes: 64 * 1024,
  });
  assert.equal(summary.exitCode, 1);
  assert.deepEqual(await scoredIds(join(dir, 'out.csv')), ['a', 'c']);
  const errors = join(dir, 'out.csv.errors.ndjson');
  // An excerpt of the record's first 120 bytes and the message: far below the 4 MiB field.
  assert.ok((await stat(errors)).size < 1024, `errors file of ${(await stat(errors)).size} bytes`);
  const [b] = await report(errors);
  assert.equal(b?.id, 'b');
  const [detail] = b?.details as Array<{ path: string; message: string }>;
  assert.equal(detail?.path, 'row 3');
  assert.match(
    detail?.message ?? '',
    /^the record is longer than 65536 bytes \(--max-record-bytes\) and was not read; it starts "b,00:10,HR,\\"x{100,}/,
  );
});

test('an NDJSON line over --max-record-bytes is reported naming the flag; the next lines are scored', async (t) => {
  const modelRoot = await makeModelRoot(t);
  const dir = await tempDir(t);
  const long = { ...samplePatient(2, 3, 'long'), note: 'y'.repeat(8192) };
  await writeFile(
    join(dir, 'cohort.ndjson'),
    [samplePatient(2, 1, 'a'), long, samplePatient(2, 2, 'b')].map((p) => JSON.stringify(p)).join('\n'),
  );
  const summary = await score(modelRoot, {
    format: 'ndjson',
    input: join(dir, 'cohort.ndjson'),
    output: join(dir, 'out.csv'),
    maxRecordBytes: 4096,
  });
  assert.equal(summary.exitCode, 1);
  assert.deepEqual(await scoredIds(join(dir, 'out.csv')), ['a', 'b']);
  assert.deepEqual(
    (await report(join(dir, 'out.csv.errors.ndjson'))).map((r) => [r.line, r.error, r.message]),
    [[2, 'line_too_long', 'line 2 is longer than 4096 bytes (--max-record-bytes)']],
  );
});

test('a PhysioNet file over --max-record-bytes is reported unread; the other records are scored', async (t) => {
  const modelRoot = await makeModelRoot(t);
  const dir = await tempDir(t);
  const records = join(dir, 'records');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(records);
  await writeFile(join(records, '1.txt'), 'Time,Parameter,Value\n00:00,RecordID,1\n00:10,HR,80\n');
  await writeFile(join(records, '2.txt'), `Time,Parameter,Value\n00:00,RecordID,2\n${'00:10,HR,80\n'.repeat(1000)}`);
  const summary = await score(modelRoot, {
    format: 'physionet2012',
    input: records,
    output: join(dir, 'out.csv'),
    maxRecordBytes: 4096,
  });
  assert.equal(summary.exitCode, 1);
  assert.deepEqual(await scoredIds(join(dir, 'out.csv')), ['1']);
  const [two] = await report(join(dir, 'out.csv.errors.ndjson'));
  assert.equal(two?.id, '2');
  assert.equal(two?.error, 'record_too_long');
  assert.match(String(two?.message), /longer than 4096 bytes \(--max-record-bytes\)/);
});
