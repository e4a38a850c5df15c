import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { buildProgram } from '../../src/cli/main.js';
import { readOutcomes } from '../../src/cli/outcomes.js';
import { runScore } from '../../src/cli/score.js';
import { runValidate } from '../../src/cli/validate.js';
import { ScoreCommandError } from '../../src/cli/score.js';
import { makeModelRoot, samplePatient } from '../helper.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icu-validate-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function outcomeFile(t: TestContext, text: string): Promise<string> {
  const path = join(await tempDir(t), 'outcomes.csv');
  await writeFile(path, text);
  return path;
}

test("PhysioNet's outcome file reads as it is: the first column is the id, In-hospital_death the outcome", async (t) => {
  const path = await outcomeFile(
    t,
    'RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n132539,6,1,5,-1,0\n132540,16,8,8,-1,1\n',
  );
  assert.deepEqual(
    [...(await readOutcomes(path))],
    [
      ['132539', 0],
      ['132540', 1],
    ],
  );
});

test('true/false outcomes and named id and outcome columns are read', async (t) => {
  const path = await outcomeFile(t, 'site,stay,died\nx,a,true\nx,b,FALSE\n');
  assert.deepEqual(
    [...(await readOutcomes(path, { idColumn: 'stay', outcomeColumn: 'died' }))],
    [
      ['a', 1],
      ['b', 0],
    ],
  );
});

test('a bad outcome value is an error naming its line', async (t) => {
  const path = await outcomeFile(t, 'id,In-hospital_death\na,0\nb,yes\n');
  await assert.rejects(readOutcomes(path), /line 3: In-hospital_death is "yes", not 0, 1, true or false/);
});

test('an empty outcome value is an error naming its line', async (t) => {
  const path = await outcomeFile(t, 'id,In-hospital_death\na,\n');
  await assert.rejects(readOutcomes(path), /line 2: In-hospital_death is ""/);
});

test('a repeated id is an error naming both lines', async (t) => {
  const path = await outcomeFile(t, 'id,In-hospital_death\na,0\nb,1\na,1\n');
  await assert.rejects(readOutcomes(path), /line 4: the same id as line 2/);
});

test('a missing outcome column is an error naming the column', async (t) => {
  const path = await outcomeFile(t, 'id,died\na,0\n');
  await assert.rejects(readOutcomes(path), /no column In-hospital_death in the header/);
});

/** Pairs a death outranks, ties one half: the definition, independent of src/evaluation's sweep. */
function pairwiseAuroc(p: number[], y: number[]): number {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < p.length; i++)
    for (let j = 0; j < p.length; j++)
      if (y[i] === 1 && y[j] === 0) {
        pairs++;
        wins += (p[i] as number) > (p[j] as number) ? 1 : p[i] === p[j] ? 0.5 : 0;
      }
  return wins / pairs;
}

test('validate scores as score does, joins the outcomes, counts ids on one side and writes both reports', async (t) => {
  const dir = await tempDir(t);
  const modelDir = join(await makeModelRoot(t), 'icu-mortality');
  const input = join(dir, 'cohort.ndjson');
  const ids = Array.from({ length: 150 }, (_, i) => `s${i}`);
  await writeFile(input, ids.map((id, i) => JSON.stringify(samplePatient(2 + (i % 20), i + 1, id))).join('\n'));
  // Scores from `score`, then outcomes that follow them loosely, so the AUROC is neither 0.5 nor 1.
  const scores = join(dir, 'scores.ndjson');
  await runScore({ format: 'ndjson', input, output: scores, modelDir, quiet: true, workers: 1 });
  const scored = new Map(
    (await readFile(scores, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; probability: number })
      .map((r) => [r.id, r.probability]),
  );
  const sorted = [...scored.values()].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] as number;
  const died = (id: string, i: number): number => ((scored.get(id) as number) > median !== (i % 5 === 0) ? 1 : 0);
  // Stay s0 has no outcome; one outcome (x1) has no stay.
  const lines = ids.slice(1).map((id, k) => `${id},${died(id, k + 1)}`);
  const outcomes = join(dir, 'outcomes.csv');
  await writeFile(outcomes, `id,In-hospital_death\n${lines.join('\n')}\nx1,0\n`);

  const reportDir = join(dir, 'report');
  const report = await runValidate({ format: 'ndjson', input, outcomes, report: reportDir, modelDir, quiet: true });
  assert.deepEqual(report.unmatched, { recordsWithoutOutcome: 1, outcomesWithoutRecord: 1 });
  const p = ids.slice(1).map((id) => scored.get(id) as number);
  const y = ids.slice(1).map((id, k) => died(id, k + 1));
  assert.equal(report.n, 149);
  assert.equal(
    report.deaths,
    y.reduce((a, b) => a + b, 0),
  );
  assert.ok(Math.abs((report.auroc as number) - pairwiseAuroc(p, y)) < 1e-12);
  assert.deepEqual(report.model, { name: 'icu-mortality', version: '0.0.0-tiny' });
  // Fewer than 100 deaths: the warning cites its source.
  assert.ok(report.warnings.some((w) => /fewer than 100/.test(w) && /Collins GS/.test(w)));
  const json = JSON.parse(await readFile(join(reportDir, 'report.json'), 'utf8')) as Record<string, unknown>;
  for (const key of ['model', 'n', 'deaths', 'auroc', 'aurocCi95', 'auprc', 'brier', 'calibration', 'thresholds'])
    assert.ok(key in json, key);
  for (const key of ['subgroups', 'development', 'unmatched', 'warnings', 'thresholdsForShare'])
    assert.ok(key in json, key);
  // Each suggested threshold flags at most its target share, and the next lower probability would flag more.
  assert.deepEqual(
    report.thresholdsForShare.map((s) => s.targetShare),
    [0.05, 0.1, 0.15, 0.2, 0.3],
  );
  for (const s of report.thresholdsForShare) {
    const t = s.threshold as number;
    const flagged = p.filter((v) => v >= t).length;
    assert.ok(flagged <= s.targetShare * 149, `${s.targetShare}: ${flagged} flagged`);
    assert.equal(s.flaggedShare, flagged / 149);
    const below = Math.max(...p.filter((v) => v < t));
    assert.ok(p.filter((v) => v >= below).length > s.targetShare * 149, `${s.targetShare}: not the lowest`);
  }
  assert.deepEqual([...new Set(report.subgroups.map((s) => s.by))], ['icuType', 'ageBand', 'sex', 'inputProfile']);
  const sexes = report.subgroups.filter((s) => s.by === 'sex');
  assert.equal(
    sexes.reduce((a, s) => a + s.n, 0),
    149,
  );
  const html = await readFile(join(reportDir, 'report.html'), 'utf8');
  assert.equal((html.match(/<figure data-chart=/g) ?? []).length, 6);
  assert.match(html, /<h2>Thresholds for a share of stays flagged<\/h2>/);
  // Nothing is fetched when the file is opened: no http(s) URL in src or href attributes, no script from elsewhere.
  assert.doesNotMatch(html, /\s(src|href|xlink:href)\s*=\s*["']?\s*(https?:)?\/\//i);
  assert.doesNotMatch(html, /<script[^>]*\ssrc=/i);
  assert.doesNotMatch(html, /@import|url\(\s*["']?https?:/i);
});

test('validate with an outcome file that has a bad line fails before scoring, naming the line', async (t) => {
  const dir = await tempDir(t);
  const outcomes = join(dir, 'o.csv');
  await writeFile(outcomes, 'id,In-hospital_death\na,2\n');
  await assert.rejects(
    runValidate({ format: 'ndjson', input: join(dir, 'none.ndjson'), outcomes, report: dir, quiet: true }),
    (error: unknown) => error instanceof ScoreCommandError && /line 2/.test(error.message),
  );
});

test('icu-mortality --help lists validate and recalibrate with their flags', () => {
  const program = buildProgram();
  assert.match(program.helpInformation(), /validate \[options\][\s\S]*recalibrate \[options\]/);
  const validate = program.commands.find((c) => c.name() === 'validate');
  const recalibrate = program.commands.find((c) => c.name() === 'recalibrate');
  for (const flag of [
    '--input',
    '--format',
    '--outcomes',
    '--report',
    '--id-column',
    '--outcome-column',
    '--model-dir',
  ])
    assert.ok(
      validate?.options.some((o) => o.long === flag),
      `validate ${flag}`,
    );
  for (const flag of ['--version', '--from', '--method', '--outcomes', '--model-dir'])
    assert.ok(
      recalibrate?.options.some((o) => o.long === flag),
      `recalibrate ${flag}`,
    );
});

test('validate refuses a cohort whose ids match no outcome, rather than writing an empty report', async (t) => {
  const dir = await tempDir(t);
  const modelDir = join(await makeModelRoot(t), 'icu-mortality');
  const input = join(dir, 'c.ndjson');
  await writeFile(input, JSON.stringify(samplePatient(3, 1, 'a')));
  const outcomes = join(dir, 'o.csv');
  await writeFile(outcomes, 'id,In-hospital_death\nb,1\n');
  await assert.rejects(
    runValidate({ format: 'ndjson', input, outcomes, report: join(dir, 'r'), modelDir, quiet: true }),
    /no stay has both a scored record and an outcome \(0 records could not be scored; 1 scored records without outcome, 1 outcomes without record\)/,
  );
});
