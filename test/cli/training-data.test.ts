import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { runScore, type ScoreCommandOptions } from '../../src/cli/score.js';
import { addVersion, makeModelRoot, samplePatient } from '../helper.js';

/**
 * A model version whose split file lists some of the scored RecordIDs: the summary counts them
 * and stderr says that their scores are not held out.
 */

const DATASET = 'PhysioNet/Computing in Cardiology Challenge 2012, sets a and c';

/** A PhysioNet 2012 record (challenge format) with a few vitals. */
function record(id: string): string {
  return [
    'Time,Parameter,Value',
    `00:00,RecordID,${id}`,
    '00:00,Age,64',
    '00:00,Gender,0',
    '00:00,Height,-1',
    '00:00,ICUType,2',
    '00:00,Weight,-1',
    '00:30,HR,88',
    '01:10,HR,92',
    '01:10,MAP,75',
    '',
  ].join('\n');
}

/** The tiny model, copied, with a split file of one train, one validation and one test stay. */
async function modelWithSplit(t: TestContext, trainingRecords: number): Promise<string> {
  const root = await makeModelRoot(t, {});
  const dir = await addVersion(root, '0.0.1-split', { copy: true });
  const manifestPath = join(dir, 'manifest.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { provenance: Record<string, unknown> };
  manifest.provenance = {
    ...manifest.provenance,
    dataset: DATASET,
    trainingRecords,
    splits: { train: 1, validation: 1, test: 1, file: 'split.json' },
  };
  await writeFile(manifestPath, JSON.stringify(manifest));
  await writeFile(
    join(dir, 'split.json'),
    JSON.stringify({ train: ['140501'], validation: ['140502'], test: ['140503'] }),
  );
  return join(root, 'icu-mortality');
}

async function scoreCapturing(opts: ScoreCommandOptions) {
  let stderr = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      stderr += chunk.toString('utf8');
      done();
    },
  });
  const summary = await runScore({ threads: 1, ...opts, stderr: sink as unknown as NodeJS.WriteStream });
  return { summary, stderr };
}

async function physionetDir(t: TestContext, ids: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icu-training-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'set'));
  for (const id of ids) await writeFile(join(dir, 'set', `${id}.txt`), record(id));
  return dir;
}

test('scoring stays the model was trained or tuned on warns that their scores are not held out', async (t) => {
  const dir = await physionetDir(t, ['140501', '140502', '140503', '150000']);
  // trainingRecords 1: the networks were fitted on train and tuned on validation; the test stay is held out.
  const { summary, stderr } = await scoreCapturing({
    modelDir: await modelWithSplit(t, 1),
    format: 'physionet2012',
    input: join(dir, 'set'),
    output: join(dir, 'out.csv'),
  });
  assert.equal(summary.scored, 4);
  assert.equal(summary.trainingOverlap, 2);
  assert.ok(
    stderr.includes(
      `warning: 2 of 4 scored records are stays icu-mortality 0.0.1-split was trained or tuned on (split.json: ${DATASET}): their scores are not held out, and an AUROC computed from them overstates`,
    ),
    stderr,
  );
});

test('when the shipped networks were refit on every stay, test stays count too', async (t) => {
  const dir = await physionetDir(t, ['140501', '140502', '140503', '150000']);
  const { summary, stderr } = await scoreCapturing({
    modelDir: await modelWithSplit(t, 3),
    format: 'physionet2012',
    input: join(dir, 'set'),
    output: join(dir, 'out.csv'),
  });
  assert.equal(summary.trainingOverlap, 3);
  assert.match(stderr, /warning: 3 of 4 scored records are stays/);
});

test('ids from another format are said to match, not to be those stays; no overlap, no warning', async (t) => {
  const dir = await physionetDir(t, []);
  const input = join(dir, 'in.ndjson');
  await writeFile(input, ['140501', 'bed-7'].map((id, i) => JSON.stringify(samplePatient(2, i + 1, id))).join('\n'));
  const modelDir = await modelWithSplit(t, 3);
  const matching = await scoreCapturing({ modelDir, format: 'ndjson', input, output: join(dir, 'a.csv') });
  assert.equal(matching.summary.trainingOverlap, 1);
  assert.match(
    matching.stderr,
    /1 of 2 scored records have the ids of stays .*; if they are those stays, their scores/,
  );

  await writeFile(input, JSON.stringify(samplePatient(2, 1, 'bed-7')));
  const other = await scoreCapturing({ modelDir, format: 'ndjson', input, output: join(dir, 'b.csv') });
  assert.equal(other.summary.trainingOverlap, 0);
  assert.doesNotMatch(other.stderr, /trained or tuned/);
});
