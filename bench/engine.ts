/**
 * Raw engine throughput and latency, before HTTP and validation (`node --import tsx
 * bench/engine.ts --help`). Inputs are synthetic: the graph's cost (its input tensor, then the
 * recurrent layers) depends on batch, hours and sizes, not on the values.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compareSemver } from '../src/model/semver.js';
import { Batcher } from '../src/inference/batcher.js';
import type { InputNames } from '../src/inference/protocol.js';
import {
  type EngineBatch,
  type ProviderName,
  allocatorOf,
  createEngine,
  defaultEngineThreads,
} from '../src/inference/engine.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TINY_MODEL = join(ROOT, 'test/fixtures/tiny-model/model.onnx');

export interface EngineBenchOptions {
  /** model.onnx; default: the highest version under models/icu-mortality/, else the tiny test model. */
  modelPath?: string;
  batchSizes?: number[];
  /** Hours of every stay (the tensor's time dimension). */
  hours?: number;
  workers?: number;
  intraOpThreads?: number;
  allowSpinning?: boolean;
  providers?: ProviderName[];
  /** Least time spent timing each batch size. */
  minSeconds?: number;
  /** Single-stay runs timed for the latency percentiles. */
  latencyRuns?: number;
}

export interface ThroughputRow {
  batchSize: number;
  runs: number;
  msPerBatch: number;
  staysPerSecond: number;
  /** Why this size could not be measured (staysPerSecond is NaN then). */
  error?: string;
}

export interface EngineBenchResult {
  modelPath: string;
  provider: string;
  nVariables: number;
  hours: number;
  workers: number;
  intraOpThreads: number;
  allowSpinning: boolean;
  throughput: ThroughputRow[];
  /** engine.run() of one stay, round trip through the worker. */
  singleStayMs: { p50: number; p99: number; mean: number };
}

export interface ModelInfo {
  modelPath: string;
  inputNames: InputNames;
  outputName: string;
  nVariables: number;
  nStatics: number;
  maxHours: number;
}

/** The highest version of each architecture under models/icu-mortality/ (manifest architecture.type). */
export function modelPathsByArchitecture(): Map<string, { version: string; modelPath: string }> {
  const dir = join(ROOT, 'models/icu-mortality');
  const out = new Map<string, { version: string; modelPath: string }>();
  if (!existsSync(dir)) return out;
  for (const version of readdirSync(dir).sort(compareSemver)) {
    const manifestPath = join(dir, version, 'manifest.json');
    if (!existsSync(manifestPath) || !existsSync(join(dir, version, 'model.onnx'))) continue;
    const type =
      (JSON.parse(readFileSync(manifestPath, 'utf8')) as { architecture?: { type?: string } }).architecture?.type ??
      'unknown';
    out.set(type, { version, modelPath: join(dir, version, 'model.onnx') });
  }
  return out;
}

export function defaultModelPath(): string {
  const dir = join(ROOT, 'models/icu-mortality');
  if (existsSync(dir)) {
    const versions = readdirSync(dir)
      .filter((v) => existsSync(join(dir, v, 'model.onnx')))
      .sort(compareSemver);
    const latest = versions.at(-1);
    if (latest !== undefined) return join(dir, latest, 'model.onnx');
  }
  return TINY_MODEL;
}

/** Names and sizes from the manifest beside the model. */
export function describeModel(modelPath: string): ModelInfo {
  const manifestPath = join(modelPath, '..', 'manifest.json');
  if (!existsSync(manifestPath)) throw new Error(`no manifest.json beside ${modelPath}`);
  const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    onnx: { inputs: InputNames; output: string };
    variables: unknown[];
    statics: unknown[];
    maxHours: number;
  };
  return {
    modelPath,
    inputNames: m.onnx.inputs,
    outputName: m.onnx.output,
    nVariables: m.variables.length,
    nStatics: m.statics.length,
    maxHours: m.maxHours,
  };
}

/** Hourly values from a small deterministic generator (no Math.random: runs repeat), two in three not measured. */
export function syntheticValues(n: number, seed = 1): Float64Array {
  const out = new Float64Array(n);
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 1) / 4294967297;
  };
  for (let i = 0; i < n; i++) out[i] = next() < 2 / 3 ? NaN : 80 + 20 * (next() - 0.5);
  return out;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

function batchOf(
  template: Float64Array,
  batch: number,
  hours: number,
  model: ModelInfo,
  allocate?: (length: number) => Float64Array,
): EngineBatch {
  // run() takes ownership of the buffers, so every run gets its own copy: in the buffers the
  // workers hand back when the engine offers them, as the service's batch building does, so
  // that the measurement does not pay for faulting in a fresh tensor per run.
  const { nVariables, nStatics } = model;
  const values = allocate?.(batch * hours * nVariables) ?? new Float64Array(batch * hours * nVariables);
  for (let off = 0; off < values.length; off += template.length)
    values.set(template.subarray(0, Math.min(template.length, values.length - off)), off);
  const statics = new Float64Array(batch * nStatics).fill(1);
  return { values, statics, lengths: new Int32Array(batch).fill(hours), batch, time: hours, nVariables, nStatics };
}

/** The model and the engine in the layout the options ask for (defaults: the service's). */
async function openBenchEngine(opts: EngineBenchOptions) {
  const model = describeModel(opts.modelPath ?? defaultModelPath());
  const defaults = defaultEngineThreads();
  const workers = opts.workers ?? defaults.workers;
  const intraOpThreads = opts.intraOpThreads ?? defaults.intraOpThreads;
  const allowSpinning = opts.allowSpinning ?? false;
  const engine = await createEngine({
    modelPath: model.modelPath,
    inputNames: model.inputNames,
    outputName: model.outputName,
    providers: opts.providers ?? ['cpu'],
    intraOpThreads,
    workers,
    allowSpinning,
  });
  return { model, hours: opts.hours ?? model.maxHours, workers, intraOpThreads, allowSpinning, engine };
}

export async function measureEngineThroughput(opts: EngineBenchOptions = {}): Promise<EngineBenchResult> {
  const { model, hours, workers, intraOpThreads, allowSpinning, engine } = await openBenchEngine(opts);
  const minSeconds = opts.minSeconds ?? 2;
  const allocate = allocatorOf(engine);
  try {
    const template = syntheticValues(64 * hours * model.nVariables);
    const throughput: ThroughputRow[] = [];
    async function timeBatchSize(size: number): Promise<ThroughputRow> {
      for (let w = 0; w < 2; w++) await engine.run(batchOf(template, size, hours, model));
      // Keep every worker busy all the time: two runs in flight per worker (the engine hands a
      // worker its next run while one is running, src/inference/engine.ts), and a new run
      // submitted as each one finishes, so that no worker waits for another between rounds.
      // Inputs are built ahead, outside the timed part.
      const ready = Array.from({ length: 4 * workers }, () => batchOf(template, size, hours, model));
      let runs = 0;
      const t0 = performance.now();
      let elapsed = 0;
      await new Promise<void>((resolve, reject) => {
        let inFlight = 0;
        let stopping = false;
        const submit = (): void => {
          const batch = ready.pop() ?? batchOf(template, size, hours, model, allocate);
          inFlight++;
          engine.run(batch).then(() => {
            inFlight--;
            runs++;
            elapsed = performance.now() - t0;
            if (elapsed >= minSeconds * 1000 && runs >= 3) stopping = true;
            if (!stopping) {
              submit();
              // Refill the spare inputs while the workers run.
              if (ready.length < 2 * workers) ready.push(batchOf(template, size, hours, model, allocate));
            } else if (inFlight === 0) resolve();
          }, reject);
        };
        for (let i = 0; i < 2 * workers; i++) submit();
      });
      return {
        batchSize: size,
        runs,
        msPerBatch: (elapsed / runs) * workers,
        staysPerSecond: (runs * size) / (elapsed / 1000),
      };
    }

    for (const size of opts.batchSizes ?? [1, 64, 512, 4096]) {
      try {
        throughput.push(await timeBatchSize(size));
      } catch (error) {
        // A size the device cannot hold (e.g. a WebGPU buffer limit) should not hide the others.
        const reason = error instanceof Error ? error.message : String(error);
        throughput.push({
          batchSize: size,
          runs: 0,
          msPerBatch: Number.NaN,
          staysPerSecond: Number.NaN,
          error: reason,
        });
      }
    }

    const latencies: number[] = [];
    const single = (): EngineBatch => batchOf(template, 1, hours, model);
    for (let w = 0; w < 20; w++) await engine.run(single());
    for (let i = 0; i < (opts.latencyRuns ?? 500); i++) {
      const b = single();
      const t0 = performance.now();
      await engine.run(b);
      latencies.push(performance.now() - t0);
    }
    latencies.sort((a, b) => a - b);
    return {
      modelPath: model.modelPath,
      provider: engine.provider,
      nVariables: model.nVariables,
      hours,
      workers,
      intraOpThreads,
      allowSpinning,
      throughput,
      singleStayMs: {
        p50: percentile(latencies, 0.5),
        p99: percentile(latencies, 0.99),
        mean: latencies.reduce((a, b) => a + b, 0) / latencies.length,
      },
    };
  } finally {
    await engine.close();
  }
}

/**
 * The raw engine's throughput right now, in the default layout at the batch sizes that win
 * (the best of 24, 32 and 64): taken just before and just after a pipeline is measured, so that
 * its share can be read against the engine of the same minutes (the machine's speed drifts).
 */
export async function probeRawEngine(opts: Pick<EngineBenchOptions, 'modelPath' | 'hours'> = {}): Promise<number> {
  const result = await measureEngineThroughput({ ...opts, batchSizes: [24, 32, 64], minSeconds: 2, latencyRuns: 1 });
  return Math.max(...result.throughput.map((r) => r.staysPerSecond));
}

export interface BatcherBenchOptions extends Omit<EngineBenchOptions, 'batchSizes' | 'latencyRuns'> {
  /** Clients, each submitting one stay, waiting for it, and submitting the next. */
  clients?: number;
  maxBatchSize?: number;
  maxQueueDelayMs?: number;
  seconds?: number;
}

export interface BatcherBenchResult {
  provider: string;
  workers: number;
  intraOpThreads: number;
  allowSpinning: boolean;
  clients: number;
  maxBatchSize: number;
  maxQueueDelayMs: number;
  staysPerSecond: number;
  latencyMs: { p50: number; p99: number };
  meanBatchSize: number;
}

/** Throughput through the dynamic batcher with many concurrent single-stay requests: the service's inference path. */
export async function measureBatcherThroughput(opts: BatcherBenchOptions = {}): Promise<BatcherBenchResult> {
  const { model, hours, workers, intraOpThreads, allowSpinning, engine } = await openBenchEngine(opts);
  const clients = opts.clients ?? 256;
  const maxBatchSize = opts.maxBatchSize ?? 256;
  const maxQueueDelayMs = opts.maxQueueDelayMs ?? 2;
  const template = syntheticValues(hours * model.nVariables);
  let batches = 0;
  let batchedStays = 0;
  const batcher = new Batcher<number>({
    engine,
    // Building a tensor is part of the path measured here, as it is in the service.
    buildBatch: (stays) => batchOf(template, stays.length, hours, model),
    maxBatchSize,
    maxQueueDelayMs,
    maxQueueSize: clients * 2,
    lengthOf: () => hours,
    observer: {
      batchRun: (size) => {
        batches++;
        batchedStays += size;
      },
    },
  });
  try {
    const latencies: number[] = [];
    const deadline = performance.now() + (opts.seconds ?? 5) * 1000;
    let done = 0;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < deadline) {
          const t0 = performance.now();
          await batcher.submit([0]);
          latencies.push(performance.now() - t0);
          done++;
        }
      }),
    );
    const seconds = (opts.seconds ?? 5) + Math.max(0, (performance.now() - deadline) / 1000);
    latencies.sort((a, b) => a - b);
    return {
      provider: engine.provider,
      workers,
      intraOpThreads,
      allowSpinning,
      clients,
      maxBatchSize,
      maxQueueDelayMs,
      staysPerSecond: done / seconds,
      latencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) },
      meanBatchSize: batches === 0 ? 0 : batchedStays / batches,
    };
  } finally {
    await batcher.drain();
    await engine.close();
  }
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function printEngine(r: EngineBenchResult): void {
  console.log(
    `\nengine: ${r.modelPath}\nprovider ${r.provider}, ${r.workers} worker(s) x ${r.intraOpThreads} intra-op thread(s), spinning ${r.allowSpinning ? 'on' : 'off'}, ${r.hours}-hour stays, ${r.nVariables} variables`,
  );
  console.log('| batch | runs | ms/batch | stays/s |\n| ---: | ---: | ---: | ---: |');
  for (const row of r.throughput) {
    if (row.error !== undefined) console.log(`| ${row.batchSize} | failed: ${row.error} | | |`);
    else console.log(`| ${row.batchSize} | ${row.runs} | ${fmt(row.msPerBatch, 2)} | ${fmt(row.staysPerSecond)} |`);
  }
  console.log(
    `single stay: p50 ${fmt(r.singleStayMs.p50, 3)} ms, p99 ${fmt(r.singleStayMs.p99, 3)} ms, mean ${fmt(r.singleStayMs.mean, 3)} ms`,
  );
}

function printBatcher(r: BatcherBenchResult): void {
  console.log(
    `batcher: ${r.workers}x${r.intraOpThreads} spin ${r.allowSpinning ? 'on' : 'off'}, ${r.clients} clients, maxBatch ${r.maxBatchSize}, delay ${r.maxQueueDelayMs} ms: ` +
      `${fmt(r.staysPerSecond)} stays/s, latency p50 ${fmt(r.latencyMs.p50, 1)} ms p99 ${fmt(r.latencyMs.p99, 1)} ms, mean batch ${fmt(r.meanBatchSize, 1)}`,
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      batch: { type: 'string', default: '1,64,512,4096' },
      hours: { type: 'string' },
      workers: { type: 'string' },
      threads: { type: 'string' },
      spin: { type: 'boolean', default: false },
      providers: { type: 'string', default: 'cpu' },
      seconds: { type: 'string', default: '2' },
      compare: { type: 'boolean', default: false },
      batcher: { type: 'boolean', default: false },
      clients: { type: 'string', default: '256' },
      'max-batch': { type: 'string', default: '256' },
      delay: { type: 'string', default: '2' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(`usage: node --import tsx bench/engine.ts [options]
  --model PATH        model.onnx (default: latest models/icu-mortality/<version>/, else the tiny test model)
  --batch 1,64,...    batch sizes (default 1,64,512,4096)
  --hours N           stay length (default: the manifest's maxHours)
  --workers N --threads N --spin   engine layout (default ${JSON.stringify(defaultEngineThreads())}, spinning off)
  --providers a,b     execution providers in preference order (cpu, webgpu, cuda)
  --seconds S         least time per batch size (default 2)
  --compare           engine layouts side by side (1x cores, spin on/off, cores x 1)
  --batcher           also measure through the dynamic batcher with --clients concurrent single-stay requests
                      (--max-batch, default 256, and --delay ms, default 2, as MAX_BATCH_SIZE and MAX_QUEUE_DELAY_MS)
  --json              print JSON instead of tables`);
    return;
  }
  const base: EngineBenchOptions = {
    modelPath: values.model === undefined ? defaultModelPath() : resolve(values.model),
    batchSizes: values.batch.split(',').map(Number),
    minSeconds: Number(values.seconds),
    providers: values.providers.split(',') as ProviderName[],
    allowSpinning: values.spin,
    ...(values.hours === undefined ? {} : { hours: Number(values.hours) }),
    ...(values.workers === undefined ? {} : { workers: Number(values.workers) }),
    ...(values.threads === undefined ? {} : { intraOpThreads: Number(values.threads) }),
  };
  const cores = availableParallelism();
  console.error(`machine: ${cores} cores (${cpus()[0]?.model ?? 'unknown CPU'}), node ${process.version}`);
  const layouts: EngineBenchOptions[] = values.compare
    ? [
        { workers: 1, intraOpThreads: cores, allowSpinning: false },
        { workers: 1, intraOpThreads: cores, allowSpinning: true },
        { workers: cores, intraOpThreads: 1, allowSpinning: false },
        { workers: 1, intraOpThreads: 1, allowSpinning: false },
      ]
    : [{}];
  const results: Array<EngineBenchResult | BatcherBenchResult> = [];
  for (const layout of layouts) {
    const r = await measureEngineThroughput({ ...base, ...layout });
    results.push(r);
    if (!values.json) printEngine(r);
    if (values.batcher) {
      const b = await measureBatcherThroughput({
        ...base,
        ...layout,
        clients: Number(values.clients),
        maxBatchSize: Number(values['max-batch']),
        maxQueueDelayMs: Number(values.delay),
        seconds: Number(values.seconds) * 2,
      });
      results.push(b);
      if (!values.json) printBatcher(b);
    }
  }
  if (values.json) console.log(JSON.stringify(results, null, 2));
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
