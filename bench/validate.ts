/**
 * Whole `validate` and `score` runs on one seeded synthetic cohort; target: validate >= 80% of
 * score's stays per second. Alone: node --import tsx bench/validate.ts [--stays 100000] [--rounds 1]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeCohort } from './cli-stream.js';
import { benchModelDir } from './http.js';
import { seededRandom } from '../src/evaluation/random.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface ValidateBenchResult {
  stays: number;
  fixtureModel: boolean;
  /** Stays per second of each round's whole run (process start to exit), alternately. */
  score: number[];
  validate: number[];
}

async function wallSeconds(args: string[]): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, [join(ROOT, 'bin/icu-mortality.js'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr += d;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`icu-mortality ${args[0]} failed (exit ${code}): ${stderr.slice(-2000)}`);
  return (performance.now() - started) / 1000;
}

export async function measureValidate(opts: { stays?: number; rounds?: number } = {}): Promise<ValidateBenchResult> {
  const stays = opts.stays ?? 100_000;
  const models = await benchModelDir();
  const modelDir = join(models.dir, 'icu-mortality');
  const work = await mkdtemp(join(tmpdir(), 'bench-validate-'));
  try {
    const input = join(work, 'cohort.ndjson');
    await writeCohort(input, stays, 48);
    const random = seededRandom(2012);
    const rows = Array.from({ length: stays }, (_, i) => `stay-${i},${random.next() < 0.14 ? 1 : 0}`);
    const outcomes = join(work, 'outcomes.csv');
    await writeFile(outcomes, `RecordID,In-hospital_death\n${rows.join('\n')}\n`);
    const common = ['--format', 'ndjson', '--input', input, '--model-dir', modelDir];
    const result: ValidateBenchResult = { stays, fixtureModel: models.fixture, score: [], validate: [] };
    for (let round = 0; round < (opts.rounds ?? 1); round++) {
      const out = join(work, 'scores.csv');
      result.score.push(stays / (await wallSeconds(['score', ...common, '--output', out, '--overwrite', '-q'])));
      const report = join(work, 'report');
      result.validate.push(
        stays / (await wallSeconds(['validate', ...common, '--outcomes', outcomes, '--report', report, '-q'])),
      );
    }
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const fmt = (n: number): string => n.toLocaleString('en-US', { maximumFractionDigits: 0 });

export function formatValidate(r: ValidateBenchResult): string {
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const share = mean(r.validate) / mean(r.score);
  return (
    `site validation (${fmt(r.stays)} synthetic 48-hour stays, whole runs${r.fixtureModel ? ', TINY FIXTURE MODEL' : ''}):\n` +
    `  CLI score    ${r.score.map(fmt).join(' / ')} stays/s\n` +
    `  CLI validate ${r.validate.map(fmt).join(' / ')} stays/s (statistics, bootstrap and both reports included)\n` +
    `  [${share >= 0.8 ? 'PASS' : 'MISS'}] validate at ${(100 * share).toFixed(1)}% of score (>= 80%)\n`
  );
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { stays: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '1' } },
  });
  process.stderr.write(
    `machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), node ${process.version}\n`,
  );
  process.stdout.write(
    formatValidate(await measureValidate({ stays: Number(values.stays), rounds: Number(values.rounds) })),
  );
}
