import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runScore } from '../../src/cli/score.js';
import { makeModelRoot } from '../helper.js';
import { FORGED_MARKER, FORGING_UNIT, LIBRARY_MARKER, recordStdout, THROWING_UNIT } from '../fixtures/hostile-units.js';

/** A CSV field, quoted as RFC 4180 says (the forging unit holds line breaks and double quotes). */
const field = (text: string): string => `"${text.replaceAll('"', '""')}"`;

test('hostile units in the long-form CSV unit column fail their ids at their row, Temp named, and nothing is printed', async (t) => {
  const modelRoot = await makeModelRoot(t);
  const dir = await mkdtemp(join(tmpdir(), 'icu-cli-units-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const csv = [
    'id,time,variable,value,unit',
    `long,00:10,Temp,37,${'{}'.repeat(100)}`,
    'long,00:20,HR,80,',
    `forging,00:10,Temp,37,${field(FORGING_UNIT)}`,
    'forging,00:20,HR,80,',
    `throwing,00:10,Temp,37,${THROWING_UNIT}`,
    'throwing,00:20,HR,80,',
    'fine,00:10,Temp,98.6,[degF]',
    'fine,00:20,HR,80,',
  ].join('\n');
  await writeFile(join(dir, 'cohort.csv'), csv + '\n');
  const out = recordStdout();
  const summary = await runScore({
    quiet: true,
    modelDir: join(modelRoot, 'icu-mortality'),
    threads: 1,
    format: 'csv',
    input: join(dir, 'cohort.csv'),
    output: join(dir, 'out.csv'),
  }).finally(out.stop);
  assert.equal(summary.exitCode, 1);
  assert.deepEqual([summary.scored, summary.failed], [1, 3]);
  const report = (await readFile(join(dir, 'out.csv.errors.ndjson'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: string; details: Array<{ path: string; message: string }> });
  assert.deepEqual(
    report.map((r) => [r.id, r.details.map((d) => [d.path, d.message.split(': ').slice(0, 2).join(': ')])]),
    [
      // CSV rows counted from the header as row 1; the row names the line, the message the variable.
      ['long', [['row 2.unit', 'unit not accepted for Temp: unit string longer than 64 characters']]],
      ['forging', [['row 4.unit', 'unit not accepted for Temp: unit string longer than 64 characters']]],
      [
        'throwing',
        [['row 6.unit', 'unit not accepted for Temp: not a UCUM unit convertible to Cel (e.g. Cel, [degF])']],
      ],
    ],
  );
  const printed = out.text();
  assert.ok(!printed.includes(LIBRARY_MARKER) && !printed.includes(FORGED_MARKER), 'the library printed nothing');
});
