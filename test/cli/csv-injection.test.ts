import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parse } from 'csv-parse/sync';
import { formatRows } from '../../src/cli/output.js';
import { runScore, type ScoreCommandOptions } from '../../src/cli/score.js';
import { makeModelRoot, samplePatient } from '../helper.js';

/**
 * Cells a spreadsheet would run as formulas (OWASP, "CSV Injection": cells beginning with =, +, -, @, tab, CR or LF)
 * are written with a leading single quote and quoted per RFC 4180; every expected cell below is written by hand.
 */

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icu-csv-injection-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function score(t: TestContext, opts: Omit<ScoreCommandOptions, 'modelDir'>) {
  const modelRoot = await makeModelRoot(t);
  return runScore({ quiet: true, modelDir: join(modelRoot, 'icu-mortality'), threads: 1, ...opts });
}

interface ErrorLine {
  id: string;
  error: string;
  message: string;
}

async function errorLines(path: string): Promise<ErrorLine[]> {
  return (await readFile(path, 'utf8'))
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as ErrorLine);
}

test('ids that begin with a formula trigger are written with a leading quote and read back by --resume', async (t) => {
  const dir = await tempDir(t);
  const ids = [
    "=cmd|' /C calc'!A0",
    '+1+2',
    '-2+3',
    '@SUM(A1:A2)',
    // OWASP's two examples of a trigger followed by a quote, a separator and another formula.
    '=1+2";=1+2',
    `=1+2'" ;,=1+2`,
    "'already quoted",
    'plain-7',
  ];
  await writeFile(join(dir, 'in.ndjson'), ids.map((id, i) => JSON.stringify(samplePatient(3, i + 1, id))).join('\n'));
  const input = join(dir, 'in.ndjson');
  const output = join(dir, 'out.csv');
  const first = await score(t, { format: 'ndjson', input, output });
  assert.equal(first.exitCode, 0);
  const text = await readFile(output, 'utf8');
  // The escaped outputs of OWASP's table, byte for byte.
  assert.ok(text.includes(`\n"'=1+2"";=1+2",`), text);
  assert.ok(text.includes(`\n"'=1+2'"" ;,=1+2",`), text);
  const cells = (parse(text) as string[][]).slice(1).map((r) => r[0]);
  assert.deepEqual(cells, [
    "'=cmd|' /C calc'!A0",
    "'+1+2",
    "'-2+3",
    "'@SUM(A1:A2)",
    `'=1+2";=1+2`,
    `'=1+2'" ;,=1+2`,
    "''already quoted",
    'plain-7',
  ]);
  const again = await score(t, { format: 'ndjson', input, output, resume: true });
  assert.deepEqual([again.scored, again.skipped], [0, ids.length]);
  assert.equal(await readFile(output, 'utf8'), text);
});

test('model name, version and profile cells are neutralised too, for every OWASP trigger', () => {
  const triggers = ['=', '+', '-', '@', '\t', '\r', '\n'];
  const rows = triggers.map((c, i) => ({
    id: `r${i}`,
    result: {
      probability: 0.5,
      model: { name: `${c}name`, version: `${c}1.0.0` },
      hoursUsed: 2,
      truncated: false,
      missingThroughout: [],
      inputProfile: { scenario: `${c}full`, label: 'full', heldOutAuroc: 0.8 },
    },
  }));
  const back = parse(formatRows('csv', rows)) as string[][];
  assert.deepEqual(
    back.map((r) => [r[2], r[3], r[6]]),
    [
      ["'=name", "'=1.0.0", "'=full"],
      ["'+name", "'+1.0.0", "'+full"],
      ["'-name", "'-1.0.0", "'-full"],
      ["'@name", "'@1.0.0", "'@full"],
      ["'\tname", "'\t1.0.0", "'\tfull"],
      ["'\rname", "'\r1.0.0", "'\rfull"],
      ["'\nname", "'\n1.0.0", "'\nfull"],
    ],
  );
  // Numbers are not text: a probability is written as it is.
  assert.deepEqual(
    back.map((r) => r[1]),
    triggers.map(() => '0.5'),
  );
});

test('long-form CSV ids that differ only by a leading tab or CR stay two records, each refused', async (t) => {
  const dir = await tempDir(t);
  const input = join(dir, 'in.csv');
  await writeFile(
    input,
    [
      'id,time,variable,value',
      '"\t=1+1",00:00,Age,60',
      '"\t=1+1",00:30,HR,80',
      '"\r=1+1",00:00,Age,61',
      '"\r=1+1",00:30,HR,81',
      '"=1+1",00:30,HR,82',
      '" padded",00:30,HR,83',
      'ok,00:30,HR,84',
      '',
    ].join('\n'),
  );
  const output = join(dir, 'out.csv');
  const summary = await score(t, { format: 'csv', input, output });
  assert.equal(summary.exitCode, 1);
  const scored = (parse(await readFile(output, 'utf8')) as string[][]).slice(1).map((r) => r[0]);
  assert.deepEqual(scored, ["'=1+1", 'ok']);
  const errors = await errorLines(`${output}.errors.ndjson`);
  assert.deepEqual(
    errors.map((e) => [e.id, e.error]),
    [
      ['\t=1+1', 'invalid_id'],
      ['\r=1+1', 'invalid_id'],
      [' padded', 'invalid_id'],
    ],
  );
  assert.match(errors[0]?.message ?? '', /control character/);
  assert.match(errors[2]?.message ?? '', /whitespace/);
});

test('NDJSON ids with whitespace at an end or a control character are refused one by one', async (t) => {
  const dir = await tempDir(t);
  const input = join(dir, 'in.ndjson');
  const ids = ['a ', ' a', 'a', 'a\u0000b', 'b\u0085'];
  await writeFile(input, ids.map((id, i) => JSON.stringify(samplePatient(2, i + 1, id))).join('\n'));
  const output = join(dir, 'out.ndjson');
  const summary = await score(t, { format: 'ndjson', input, output });
  assert.deepEqual([summary.scored, summary.failed], [1, 4]);
  const errors = await errorLines(`${output}.errors.ndjson`);
  assert.deepEqual(
    errors.map((e) => e.id),
    ['a ', ' a', 'a\u0000b', 'b\u0085'],
  );
});
