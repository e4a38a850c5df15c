import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Job } from 'kubernetes-models/batch/v1/Job';
import { tinyModelRoot } from '../../scripts/server-process.js';
import { readYaml, repoPath } from './files.js';

/**
 * Runs the Indexed Job of deploy/kubernetes/job-score-cohort.yaml as Kubernetes would, on
 * this machine: for every completion index, the container's exact command and arguments,
 * with $(SHARD_INDEX) expanded and /data pointing at a temporary folder (plus --model-dir to
 * the tiny fixture model: the image's bundled model is not needed to test the wiring).
 * Together the pods must score every record of the cohort exactly once.
 */

function physionetRecord(id: number, seed: number): string {
  const lines = [
    'Time,Parameter,Value',
    `00:00,RecordID,${id}`,
    `00:00,Age,${40 + (seed % 50)}`,
    `00:00,Gender,${seed % 2}`,
    '00:00,ICUType,3',
  ];
  for (let h = 0; h < 1 + (seed % 7); h++) {
    lines.push(`0${h}:15,HR,${70 + ((seed * 7 + h * 3) % 50)}`, `0${h}:40,NIMAP,${65 + ((seed + h) % 30)}`);
  }
  return `${lines.join('\n')}\n`;
}

function run(command: string[], args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const [bin, ...rest] = command;
    const child = spawn(bin === 'node' ? process.execPath : (bin ?? ''), [...rest, ...args], {
      cwd: repoPath(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('deploy/kubernetes/job-score-cohort.yaml, run locally', { timeout: 180_000 }, () => {
  it('scores every record exactly once across the indexed pods', async (t) => {
    const job = readYaml<Job>('deploy', 'kubernetes', 'job-score-cohort.yaml');
    const n = job.spec?.completions ?? 0;
    const container = job.spec?.template.spec?.containers[0];
    assert.ok(container?.command && container.args && n > 1);
    const indexVar = container.env?.find((e) => e.valueFrom?.fieldRef)?.name ?? 'SHARD_INDEX';

    const data = await mkdtemp(join(tmpdir(), 'icu-job-'));
    t.after(() => rm(data, { recursive: true, force: true }));
    const models = await tinyModelRoot();
    t.after(() => models.cleanup());
    const ids = Array.from({ length: 11 }, (_, i) => 150_001 + i);
    await mkdir(join(data, 'cohort'));
    for (const [i, id] of ids.entries()) await writeFile(join(data, 'cohort', `${id}.txt`), physionetRecord(id, i + 1));

    const results = await Promise.all(
      Array.from({ length: n }, async (_, index) => {
        const args = container.args!.map((a) =>
          a.replaceAll(`$(${indexVar})`, String(index)).replace(/^\/data(?=\/|$)/, data),
        );
        return run(container.command!, [...args, '--model-dir', join(models.root, 'icu-mortality')]);
      }),
    );
    for (const r of results) assert.equal(r.code, 0, r.output);

    const scored: string[] = [];
    for (let index = 0; index < n; index++) {
      const out = container
        .args!.find((a) => a.includes(`$(${indexVar})`) && a.startsWith('/data'))!
        .replaceAll(`$(${indexVar})`, String(index))
        .replace(/^\/data/, data);
      const rows = (await readFile(out, 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { id: string; probability: number });
      for (const row of rows) {
        assert.ok(row.probability > 0 && row.probability < 1);
        scored.push(String(row.id));
      }
    }
    assert.deepEqual(scored.sort(), ids.map(String).sort());
  });
});
