/**
 * Cohort re-scoring throughput: the `score` CLI and `POST /v1/predict/stream`, each over the
 * same NDJSON file of synthetic 48-hour stays (100,000 by default), next to the raw engine's
 * throughput measured in the same run with the same engine layout, and each path's peak
 * resident memory. Target: both paths >= 80% of the raw engine, peak RSS < 500 MB.
 *
 * Called by bench/index.ts (measureCliAndStream) or alone:
 *   node --import tsx bench/cli-stream.ts [--stays 100000] [--hours 48]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultModelPath, measureEngineThroughput, probeRawEngine } from './engine.js';
import { benchModelDir, startServer } from './http.js';
import { syntheticPatient } from './payload.js';
import { defaultEngineThreads } from '../src/inference/engine.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface CliStreamBenchOptions {
  stays?: number;
  hours?: number;
  /** Engine batch sizes of the raw measurement; the best of them is the reference. */
  rawBatchSizes?: number[];
  /** A models root holding icu-mortality/<version>/ (default: the project's models/, else the tiny fixture). */
  modelsRoot?: string;
}

export interface PathResult {
  stays: number;
  /** From the first record read to the last result written (start-up and model loading excluded). */
  seconds: number;
  staysPerSecond: number;
  /** Whole run including process start-up and model loading. */
  wallSeconds: number;
  peakRssMiB: number;
}

export interface CliStreamBenchResult {
  stays: number;
  hours: number;
  fixtureModel: boolean;
  inputMiB: number;
  raw: { staysPerSecond: number; batchSize: number; workers: number; intraOpThreads: number; provider: string };
  /** Engine layout of the CLI and the streaming server (their defaults). */
  pipeline: { workers: number; intraOpThreads: number };
  cli: PathResult;
  stream: PathResult;
  /** The raw engine again just after the CLI and just after the stream (the drift check). */
  rawAfter: { cli: number; stream: number };
}

/** Writes `stays` NDJSON patients (64 distinct stays, each line its own id), honouring backpressure. */
export async function writeCohort(path: string, stays: number, hours: number): Promise<number> {
  const templates = Array.from({ length: 64 }, (_, i) => syntheticPatient(hours, 1000 + i));
  const out = createWriteStream(path);
  let bytes = 0;
  let chunk = '';
  for (let i = 0; i < stays; i++) {
    chunk += `${JSON.stringify({ id: `stay-${i}`, ...templates[i % templates.length] })}\n`;
    if (chunk.length > 1 << 20 || i === stays - 1) {
      bytes += Buffer.byteLength(chunk);
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end();
  await once(out, 'finish');
  return bytes;
}

async function latestModelPath(modelDir: string): Promise<string> {
  const { readdir } = await import('node:fs/promises');
  const { compareSemver } = await import('../src/model/semver.js');
  const versions = (await readdir(modelDir)).sort(compareSemver);
  return join(modelDir, versions.at(-1)!, 'model.onnx');
}

/** Peak resident set of a live process (Linux /proc), in MiB. */
async function peakRssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

async function runCli(input: string, output: string, modelDir: string): Promise<PathResult> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin/icu-mortality.js'),
      'score',
      '--format',
      'ndjson',
      '--input',
      input,
      '--output',
      output,
      '--model-dir',
      modelDir,
      '--overwrite',
    ],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr += d;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  const wallSeconds = (performance.now() - started) / 1000;
  // Not a terminal: the CLI prints one summary line with its own timing and peak RSS.
  const m =
    /scored (\d+) records? .* in ([\d.]+) s \(\d+ records\/s; model loaded in [\d.]+ s; peak RSS (\d+) MiB\)/.exec(
      stderr,
    );
  if (code !== 0 || !m) throw new Error(`the CLI failed (exit ${code}): ${stderr.slice(-2000)}`);
  const stays = Number(m[1]);
  const seconds = Number(m[2]);
  return { stays, seconds, staysPerSecond: stays / seconds, wallSeconds, peakRssMiB: Number(m[3]) };
}

async function runStream(input: string, modelsRoot: string): Promise<PathResult> {
  // The server's default engine layout, which is also the CLI's (defaultEngineThreads()).
  const server = await startServer({ MODEL_DIR: modelsRoot });
  try {
    const started = performance.now();
    let lines = 0;
    let errors = 0;
    await new Promise<void>((resolveDone, rejectRun) => {
      // Say how far the stream got: a failure after minutes is otherwise hard to place.
      const reject = (error: Error): void =>
        rejectRun(
          new Error(
            `the stream failed after ${lines} lines and ${((performance.now() - started) / 1000).toFixed(1)} s: ${error.message}`,
          ),
        );
      const url = new URL('/v1/predict/stream', server.url);
      const req = request(
        url,
        { method: 'POST', headers: { 'content-type': 'application/x-ndjson', 'x-api-key': server.apiKey } },
        (res) => {
          if (res.statusCode !== 200) reject(new Error(`stream answered ${res.statusCode}`));
          res.on('aborted', () => reject(new Error('the server aborted the response')));
          // Count answers without parsing them: the client shares the CPU with the server.
          res.on('data', (chunk: Buffer) => {
            for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) lines++;
            if (chunk.includes('"error":{')) errors++;
          });
          res.on('end', resolveDone);
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      createReadStream(input, { highWaterMark: 256 * 1024 }).pipe(req);
    });
    const seconds = (performance.now() - started) / 1000;
    if (errors > 0) throw new Error('the stream answered errors for some lines');
    const peakRssMiB = await peakRssOf(server.pid);
    return { stays: lines, seconds, staysPerSecond: lines / seconds, wallSeconds: seconds, peakRssMiB };
  } finally {
    await server.stop();
  }
}

export async function measureCliAndStream(opts: CliStreamBenchOptions = {}): Promise<CliStreamBenchResult> {
  const stays = opts.stays ?? 100_000;
  const hours = opts.hours ?? 48;
  // The reference is the engine's best, whatever batch size gives it (the pipelines' batch
  // size is theirs to choose): 24 to 64 were the fastest on the 2-core machine, 512 the old CLI default.
  const rawBatchSizes = opts.rawBatchSizes ?? [24, 32, 64, 512];
  const models =
    opts.modelsRoot === undefined ? await benchModelDir() : { dir: resolve(opts.modelsRoot), fixture: false };
  const work = await mkdtemp(join(tmpdir(), 'bench-cohort-'));
  try {
    const input = join(work, 'cohort.ndjson');
    const bytes = await writeCohort(input, stays, hours);
    const modelDir = join(models.dir, 'icu-mortality');
    // The reference is the engine at its best layout (every core), not the pipelines' layout.
    const engine = await measureEngineThroughput({
      modelPath: models.fixture
        ? join(ROOT, 'test/fixtures/tiny-model/model.onnx')
        : opts.modelsRoot === undefined
          ? defaultModelPath()
          : await latestModelPath(modelDir),
      batchSizes: rawBatchSizes,
      hours,
      minSeconds: 3,
      latencyRuns: 1,
    });
    const row = engine.throughput.reduce((best, r) => (r.staysPerSecond > best.staysPerSecond ? r : best));
    const probe = (): Promise<number> => probeRawEngine({ modelPath: engine.modelPath, hours });
    const cli = await runCli(input, join(work, 'scores.csv'), modelDir);
    const rawAfterCli = await probe();
    const stream = await runStream(input, models.dir);
    const rawAfterStream = await probe();
    return {
      stays,
      hours,
      fixtureModel: models.fixture,
      inputMiB: bytes / 2 ** 20,
      raw: {
        staysPerSecond: row.staysPerSecond,
        batchSize: row.batchSize,
        workers: engine.workers,
        intraOpThreads: engine.intraOpThreads,
        provider: engine.provider,
      },
      pipeline: defaultEngineThreads(),
      cli,
      stream,
      rawAfter: { cli: rawAfterCli, stream: rawAfterStream },
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** A path's share of the mean of the raw engine measured just before and just after it. */
export function bracketed(staysPerSecond: number, before: number, after: number): string {
  return `${fmt((100 * staysPerSecond) / ((before + after) / 2), 1)}% of ${fmt(before)}..${fmt(after)}`;
}

/** The report block bench/index.ts prints. */
export function formatCliStream(r: CliStreamBenchResult, bestRawOfRun = 0): string {
  // The reference: the best raw figure of the whole run (bench/index.ts measures the engine too).
  const raw = Math.max(r.raw.staysPerSecond, bestRawOfRun);
  const pct = (x: number): string => `${fmt((x / raw) * 100, 1)}%`;
  const check = (ok: boolean): string => (ok ? 'PASS' : 'MISS');
  const path = (label: string, p: PathResult): string =>
    `  ${label.padEnd(30)} ${fmt(p.staysPerSecond).padStart(8)} stays/s  ${pct(p.staysPerSecond).padStart(6)} of raw  (${fmt(p.stays)} stays in ${fmt(p.seconds, 1)} s; whole run ${fmt(p.wallSeconds, 1)} s)  peak RSS ${fmt(p.peakRssMiB)} MiB\n`;
  return (
    `cohort re-scoring (${fmt(r.stays)} synthetic ${r.hours}-hour stays, ${fmt(r.inputMiB)} MiB of NDJSON${r.fixtureModel ? ', TINY FIXTURE MODEL' : ''}):\n` +
    `  ${'raw engine, best: batch '.concat(String(r.raw.batchSize)).padEnd(30)} ${fmt(r.raw.staysPerSecond).padStart(8)} stays/s  (${r.raw.provider}, ${r.raw.workers} worker x ${r.raw.intraOpThreads} threads)\n` +
    (raw > r.raw.staysPerSecond
      ? `  (share of raw against the best raw engine figure of this run: ${fmt(raw)} stays/s)\n`
      : '') +
    `  (CLI and stream: their default engine, ${r.pipeline.workers} worker(s) x ${r.pipeline.intraOpThreads} intra-op thread(s), sharing the cores with reading, parsing and validation)\n` +
    path('CLI score --format ndjson', r.cli) +
    path('POST /v1/predict/stream', r.stream) +
    `  (against the raw engine measured just before and just after each, for the drift: CLI ${bracketed(r.cli.staysPerSecond, r.raw.staysPerSecond, r.rawAfter.cli)}, stream ${bracketed(r.stream.staysPerSecond, r.rawAfter.cli, r.rawAfter.stream)})\n` +
    `  [${check(r.cli.staysPerSecond >= 0.8 * raw)}] CLI >= 80% of raw engine\n` +
    `  [${check(r.stream.staysPerSecond >= 0.8 * raw)}] stream >= 80% of raw engine\n` +
    `  [${check(r.cli.peakRssMiB * 2 ** 20 < 500e6 && r.stream.peakRssMiB * 2 ** 20 < 500e6)}] peak RSS < 500 MB (CLI ${fmt(r.cli.peakRssMiB)} MiB, server ${fmt(r.stream.peakRssMiB)} MiB)\n`
  );
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      stays: { type: 'string', default: '100000' },
      hours: { type: 'string', default: '48' },
      models: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  process.stderr.write(
    `machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), node ${process.version}\n`,
  );
  const result = await measureCliAndStream({
    stays: Number(values.stays),
    hours: Number(values.hours),
    ...(values.models === undefined ? {} : { modelsRoot: values.models }),
  });
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : formatCliStream(result));
}
