import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { buildProgram } from '../../src/cli/main.js';
import { runScore } from '../../src/cli/score.js';
import { makeModelRoot, samplePatient } from '../helper.js';

test('`score --help` names exactly the columns of the CSV file the command writes', async (t) => {
  const score = buildProgram().commands.find((c) => c.name() === 'score');
  assert.ok(score);
  // As printed: commander wraps lines at spaces, never inside the comma-separated list.
  const help = score.helpInformation().replace(/\s+/g, ' ');
  const listed = /CSV \(([^;) ]+)/.exec(help)?.[1]?.split(',');
  assert.ok(listed, help);

  const dir = await mkdtemp(join(tmpdir(), 'icu-help-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const modelRoot = await makeModelRoot(t);
  await writeFile(join(dir, 'in.ndjson'), JSON.stringify(samplePatient(3, 1, 'p1')));
  await runScore({
    quiet: true,
    threads: 1,
    modelDir: join(modelRoot, 'icu-mortality'),
    format: 'ndjson',
    input: join(dir, 'in.ndjson'),
    output: join(dir, 'out.csv'),
  });
  const [header, row] = parse(await readFile(join(dir, 'out.csv'), 'utf8')) as string[][];
  assert.deepEqual(listed, header);
  assert.equal(row?.length, listed.length);
});
