import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { create as createTar } from 'tar';
import { parseShard } from '../../src/cli/shard.js';
import { runScore, ScoreCommandError, type ScoreCommandOptions } from '../../src/cli/score.js';
import { physionetRecordToPatient } from '../../src/clinical/physionet.js';
import { buildTestApp, loadTinyManifest, makeModelRoot, ROOT, samplePatient } from '../helper.js';

const run = promisify(execFile);

/**
 * Two records in the challenge format and, written by hand from the rules in
 * models/README.md, the same stays as /v1/predict patients: the CLI must give the API's
 * probabilities for them.
 */
const RECORDS: Record<string, string> = {
  '140501': `Time,Parameter,Value
00:00,RecordID,140501
00:00,Age,64
00:00,Gender,0
00:00,Height,165.1
00:00,ICUType,2
00:00,Weight,70
00:12,HR,88
00:40,HR,92
00:40,NIMAP,75
00:45,Urine,120
00:59,Urine,80
01:05,Temp,98.6
01:30,HR,101
02:10,FiO2,40
02:10,pH,7.31
03:15,Lactate,2.4
03:15,HR,0
`,
  '140502': `Time,Parameter,Value
00:00,RecordID,140502
00:00,Age,80
00:00,Gender,1
00:00,Height,-1
00:00,ICUType,-1
00:00,Weight,-1
00:30,GCS,14
01:00,GCS,9
01:00,MAP,0
01:20,SysABP,140
05:59,WBC,12.5
`,
};

const API_PATIENTS = [
  {
    id: '140501',
    age: 64,
    sex: 'female',
    height: 165.1,
    icuType: 2,
    hours: [
      { HR: 92, NIMAP: 75, Urine: 200, Weight: 70 },
      { HR: 101, Temp: 37 },
      { FiO2: 0.4, pH: 7.31 },
      { Lactate: 2.4, HR: 0 },
    ],
  },
  { id: '140502', age: 80, sex: 'male', hours: [{ GCS: 14 }, { GCS: 9, SysABP: 140 }, {}, {}, {}, { WBC: 12.5 }] },
];

/** The same two stays in long-form CSV, rows shuffled in time within each id. */
const LONG_CSV = `id,time,variable,value,unit
140501,00:00,Age,64,
140501,00:00,Sex,female,
140501,00:00,Height,165.1,
140501,00:00,ICUType,2,
140501,00:00,Weight,70,
140501,01:30,HR,101,
140501,00:12,HR,88,
140501,00:40,HR,92,
140501,00:40,NIMAP,75,
140501,00:45,Urine,120,
140501,00:59,Urine,80,
140501,1.0833,Temp,98.6,[degF]
140501,02:10,FiO2,40,%
140501,02:10,pH,7.31,
140501,03:15,Lactate,2.4,
140501,03:15,HR,0,
140502,00:00,Age,80,
140502,00:00,Gender,1,
140502,00:30,GCS,14,
140502,01:00,GCS,9,
140502,01:20,SysABP,140,
140502,05:59,WBC,12.5,
`;

interface Row {
  id: string;
  probability: number;
  model_name: string;
  model_version: string;
  hours_used: string;
  truncated: string;
}

function parseCsv(text: string): Row[] {
  const [header, ...lines] = text.trim().split('\n');
  assert.equal(header, 'id,probability,model_name,model_version,hours_used,truncated,input_profile,held_out_auroc');
  return lines.map((line) => {
    const [id, probability, model_name, model_version, hours_used, truncated] = line.split(',');
    return {
      id: id!,
      probability: Number(probability),
      model_name: model_name!,
      model_version: model_version!,
      hours_used: hours_used!,
      truncated: truncated!,
    };
  });
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icu-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function apiProbabilities(t: TestContext, modelRoot: string, patients: unknown[]): Promise<Map<string, number>> {
  const { app } = await buildTestApp(t, { modelRoot });
  const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients } });
  assert.equal(res.statusCode, 200, res.body);
  return new Map((res.json().results as Array<{ id: string; probability: number }>).map((r) => [r.id, r.probability]));
}

function score(modelRoot: string, opts: Omit<ScoreCommandOptions, 'modelDir'>) {
  return runScore({ quiet: true, modelDir: join(modelRoot, 'icu-mortality'), threads: 1, ...opts });
}

function assertSameProbabilities(rows: Row[], reference: Map<string, number>): void {
  assert.deepEqual(rows.map((r) => r.id).sort(), [...reference.keys()].sort());
  for (const row of rows) {
    // Engine batches of other sizes may differ in the last float32 bits.
    assert.ok(
      Math.abs(row.probability - reference.get(row.id)!) < 1e-6,
      `${row.id}: CLI ${row.probability} vs API ${reference.get(row.id)}`,
    );
  }
}

test('physionet2012 records (directory or .tar.gz) score as the API scores the same stays', async (t) => {
  const modelRoot = await makeModelRoot(t);
  const dir = await tempDir(t);
  await mkdir(join(dir, 'set-x'));
  for (const [id, text] of Object.entries(RECORDS)) await writeFile(join(dir, 'set-x', `${id}.txt`), text);
  await createTar({ gzip: true, file: join(dir, 'set-x.tar.gz'), cwd: dir }, ['set-x']);
  const reference = await apiProbabilities(t, modelRoot, API_PATIENTS);

  const fromDir = await score(modelRoot, {
    format: 'physionet2012',
    input: join(dir, 'set-x'),
    output: join(dir, 'dir.csv'),
  });
  assert.equal(fromDir.exitCode, 0);
  assert.equal(fromDir.scored, 2);
  const rows = parseCsv(await readFile(join(dir, 'dir.csv'), 'utf8'));
  assertSameProbabilities(rows, reference);
  assert.deepEqual(
    rows.map((r) => [r.id, r.model_name, r.model_version, r.hours_used]),
    [
      ['140501', 'icu-mortality', '0.0.0-tiny', '4'],
      ['140502', 'icu-mortality', '0.0.0-tiny', '6'],
    ],
  );

  const fromTar = await score(modelRoot, {
    format: 'physionet2012',
    input: join(dir, 'set-x.tar.gz'),
    output: join(dir, 'tar.csv'),
  });
  assert.equal(fromTar.exitCode, 0);
  assert.deepEqual(parseCsv(await readFile(join(dir, 'tar.csv'), 'utf8')), rows);
});

test('long-form CSV scores as the API scores the same stays', async (t) => {
  const modelRoot = await makeModelRoot(t);
  const dir = await tempDir(t);
  await writeFile(join(dir, 'cohort.csv'), LONG_CSV);
  const reference = await apiProbabilities(t, modelRoot, API_PATIENTS);
  const summary = await score(modelRoot, {
    format: 'csv',
    input: join(dir, 'cohort.csv'),
    output: join(dir, 'out.csv'),
  });
  assert.equal(summary.exitCode, 0);
  assertSameProbabilities(parseCsv(await readFile(join(dir, 'out.csv'), 'utf8')), reference);
});

test('NDJSON in, NDJSON out: API patients give API results, model named on every row', async (t) => {
  const modelRoot = await makeModelRoot(t);
  const dir = await tempDir(t);
  await writeFile(join(dir, 'cohort.ndjson'), API_PATIENTS.map((p) => JSON.stringify(p)).join('\n'));
  const reference = await apiProbabilities(t, modelRoot, API_PATIENTS);
  const summary = await score(modelRoot, {
    format: 'ndjson',
    input: join(dir, 'cohort.ndjson'),
    output: join(dir, 'out.ndjson'),
  });
  assert.equal(summary.exitCode, 0);
  const rows = (await readFile(join(dir, 'out.ndjson'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: string; probability: number; model: unknown; missingThroughout: string[] });
  assert.deepEqual(
    rows.map((r) => r.model),
    [
      { name: 'icu-mortality', version: '0.0.0-tiny' },
      { name: 'icu-mortality', version: '0.0.0-tiny' },
    ],
  );
  assert.ok(rows[1]!.missingThroughout.includes('HR'));
  for (const r of rows) assert.ok(Math.abs(r.probability - reference.get(r.id)!) < 1e-6);
});

test('a record that cannot be scored goes to the error report, the others are scored, and the exit code is 1', async (t) => {
  const modelRoot = await makeModelRoot(t);
  const dir = await tempDir(t);
  const bad = { ...samplePatient(3, 9, 'bad'), hours: [{ HR: 80 }, { HR: 1000 }] };
  const lines = [
    JSON.stringify(samplePatient(4, 1, 'good1')),
    '{not json',
    JSON.stringify(bad),
    JSON.stringify(samplePatient(2, 2)),
  ];
  await writeFile(join(dir, 'cohort.ndjson'), lines.join('\n'));
  const summary = await score(modelRoot, {
    format: 'ndjson',
    input: join(dir, 'cohort.ndjson'),
    output: join(dir, 'out.csv'),
  });
  assert.equal(summary.exitCode, 1);
  assert.deepEqual([summary.scored, summary.failed], [2, 2]);
  // A patient without an id is named by its line.
  assert.deepEqual(
    parseCsv(await readFile(join(dir, 'out.csv'), 'utf8')).map((r) => r.id),
    ['good1', 'line-4'],
  );
  const report = (await readFile(join(dir, 'out.csv.errors.ndjson'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    report.map((r) => [r.id, r.line, r.error]),
    [
      ['line-2', 2, 'invalid_json'],
      ['bad', 3, 'validation_failed'],
    ],
  );
  assert.deepEqual(
    (report[1]!.details as Array<{ path: string }>).map((d) => d.path),
    ['hours.1.HR'],
  );
  // Patient values never reach the report.
  assert.doesNotMatch(JSON.stringify(report), /1000|not json/);
});

test('shards together, and a resumed interrupted run, give exactly the rows of a full run', async (t) => {
  const modelRoot = await makeModelRoot(t);
  const dir = await tempDir(t);
  const patients = Array.from({ length: 45 }, (_, i) => samplePatient(1 + (i % 7), 500 + i, `s${i}`));
  await writeFile(join(dir, 'cohort.ndjson'), patients.map((p) => JSON.stringify(p)).join('\n') + '\n');
  const input = join(dir, 'cohort.ndjson');
  const base = { format: 'ndjson' as const, input, batchSize: 4 };

  await score(modelRoot, { ...base, output: join(dir, 'full.csv') });
  const full = parseCsv(await readFile(join(dir, 'full.csv'), 'utf8'));
  assert.equal(full.length, 45);

  const sharded: Row[] = [];
  for (let i = 0; i < 3; i++) {
    const out = join(dir, `shard-${i}.csv`);
    const summary = await score(modelRoot, { ...base, output: out, shard: parseShard(`${i}/3`) });
    // The rule, restated: the first 32 bits of the id's SHA-256, modulo N.
    assert.equal(
      summary.scored,
      patients.filter((p) => createHash('sha256').update(String(p.id)).digest().readUInt32BE(0) % 3 === i).length,
    );
    sharded.push(...parseCsv(await readFile(out, 'utf8')));
  }
  const byId = (a: Row, b: Row): number => a.id.localeCompare(b.id);
  assert.deepEqual([...sharded].sort(byId), [...full].sort(byId));

  // Interrupted: the signal has fired, so the run stops after its first batch.
  const out = join(dir, 'resumed.csv');
  const stopped = await score(modelRoot, { ...base, output: out, signal: AbortSignal.abort() });
  assert.equal(stopped.exitCode, 130);
  assert.ok(stopped.scored > 0 && stopped.scored < 45);
  // A kill in the middle of a write leaves half a row behind.
  await writeFile(out, (await readFile(out, 'utf8')) + 's99,0.12', { flag: 'w' });
  const resumed = await score(modelRoot, { ...base, output: out, resume: true });
  assert.equal(resumed.exitCode, 0);
  assert.equal(resumed.skipped, stopped.scored);
  assert.equal(resumed.scored, 45 - stopped.scored);
  assert.deepEqual(parseCsv(await readFile(out, 'utf8')).sort(byId), [...full].sort(byId));
});

test('a record lands in the same shard from a directory, a tarball and shuffled NDJSON of the same records', async (t) => {
  const modelRoot = await makeModelRoot(t);
  const dir = await tempDir(t);
  const manifest = await loadTinyManifest();
  const ids = Array.from({ length: 30 }, (_, i) => String(150000 + i * 7));
  const records = ids.map(
    (id, i) =>
      `Time,Parameter,Value\n00:00,RecordID,${id}\n00:00,Age,${40 + i}\n00:00,Gender,${i % 2}\n00:00,ICUType,${1 + (i % 4)}\n00:10,HR,${70 + i}\n01:20,MAP,${60 + i}\n`,
  );
  await mkdir(join(dir, 'records'));
  for (const [i, text] of records.entries()) await writeFile(join(dir, 'records', `${ids[i]}.txt`), text);
  await createTar({ gzip: true, file: join(dir, 'records.tar.gz'), cwd: dir }, ['records']);
  // Reversed and interleaved: position in the input must not matter.
  const order = records.map((_, i) => i).sort((a, b) => (a % 3) - (b % 3) || b - a);
  await writeFile(
    join(dir, 'records.ndjson'),
    order.map((i) => JSON.stringify(physionetRecordToPatient(records[i] as string, manifest, ids[i]))).join('\n'),
  );
  const forms = [
    { format: 'physionet2012' as const, input: join(dir, 'records') },
    { format: 'physionet2012' as const, input: join(dir, 'records.tar.gz') },
    { format: 'ndjson' as const, input: join(dir, 'records.ndjson') },
  ];
  const seen: string[] = [];
  for (let i = 0; i < 3; i++) {
    const sets = [];
    for (const [k, form] of forms.entries()) {
      const out = join(dir, `shard-${i}-${k}.csv`);
      await score(modelRoot, { ...form, output: out, shard: parseShard(`${i}/3`) });
      sets.push(
        parseCsv(await readFile(out, 'utf8'))
          .map((r) => r.id)
          .sort(),
      );
    }
    assert.deepEqual(sets[1], sets[0], `shard ${i}: tarball vs directory`);
    assert.deepEqual(sets[2], sets[0], `shard ${i}: NDJSON vs directory`);
    seen.push(...(sets[0] ?? []));
  }
  assert.deepEqual(seen.sort(), [...ids].sort(), 'the shards cover every record once');
  // Resuming a directory run's output from the tarball adds nothing twice.
  const out = join(dir, 'mixed.csv');
  await score(modelRoot, { ...forms[0]!, output: out, shard: parseShard('0/3') });
  await score(modelRoot, { ...forms[1]!, output: out, shard: parseShard('0/3'), resume: true });
  const rows = parseCsv(await readFile(out, 'utf8')).map((r) => r.id);
  assert.equal(new Set(rows).size, rows.length);
});

test('an existing output is neither overwritten nor appended to without --overwrite or --resume', async (t) => {
  const modelRoot = await makeModelRoot(t);
  const dir = await tempDir(t);
  await writeFile(join(dir, 'in.ndjson'), JSON.stringify(samplePatient(2, 1, 'a')));
  await writeFile(join(dir, 'out.csv'), 'precious\n');
  await assert.rejects(
    score(modelRoot, { format: 'ndjson', input: join(dir, 'in.ndjson'), output: join(dir, 'out.csv') }),
    ScoreCommandError,
  );
  assert.equal(await readFile(join(dir, 'out.csv'), 'utf8'), 'precious\n');
});

test('the installed command runs from bin/ without a build step', async (t) => {
  const modelRoot = await makeModelRoot(t);
  const dir = await tempDir(t);
  await mkdir(join(dir, 'records'));
  for (const [id, text] of Object.entries(RECORDS)) await writeFile(join(dir, 'records', `${id}.txt`), text);
  const args = [
    'score',
    '--format',
    'physionet2012',
    '--input',
    join(dir, 'records'),
    '--output',
    join(dir, 'scores.csv'),
    '--model-dir',
    join(modelRoot, 'icu-mortality'),
    '--threads',
    '1',
  ];
  const { stderr } = await run(process.execPath, [join(ROOT, 'bin', 'icu-mortality.js'), ...args], { cwd: dir });
  // Not a terminal: no progress bar, one summary line.
  assert.match(stderr, /^scored 2 records with icu-mortality 0\.0\.0-tiny in [\d.]+ s/);
  assert.equal(parseCsv(await readFile(join(dir, 'scores.csv'), 'utf8')).length, 2);
  const failed = await run(process.execPath, [join(ROOT, 'bin', 'icu-mortality.js'), ...args], { cwd: dir }).catch(
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal((failed as { code: number }).code, 2);
  assert.match((failed as { stderr: string }).stderr, /exists: use --resume/);
});
