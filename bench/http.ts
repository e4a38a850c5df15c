/**
 * End-to-end HTTP benchmarks against a real server process on 127.0.0.1 (src/server.ts in a
 * child process, driven by autocannon from this one). Used by bench/index.ts; runnable alone:
 * `node --import tsx bench/http.ts`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { predictBody } from './payload.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface RunningServer {
  url: string;
  apiKey: string;
  /** The server process (bench/cli-stream.ts reads its peak RSS from /proc). */
  pid: number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * The models root the server reads: models/ once TRAIN's model is there, else a temporary
 * root holding the tiny test fixture (the figures then describe the tiny model: say so).
 */
export async function benchModelDir(): Promise<{ dir: string; fixture: boolean }> {
  const real = join(ROOT, 'models');
  if (hasModel(join(real, 'icu-mortality'))) return { dir: real, fixture: false };
  const dir = await mkdtemp(join(tmpdir(), 'bench-models-'));
  await mkdir(join(dir, 'icu-mortality'));
  await symlink(join(ROOT, 'test', 'fixtures', 'tiny-model'), join(dir, 'icu-mortality', '0.0.0-tiny'), 'dir');
  return { dir, fixture: true };
}

/** Starts src/server.ts with the given environment, resolves once /health/ready answers 200. */
export async function startServer(
  env: Record<string, string> = {},
  readyTimeoutMs = 60_000,
  nodeArgs: string[] = [],
  entry = 'src/server.ts',
): Promise<RunningServer> {
  const port = await freePort();
  const models = env.MODEL_DIR ? { dir: env.MODEL_DIR } : await benchModelDir();
  // The prediction store of a bench server is its own: a run must not fill the checkout's ./data.
  const dataDir = env.DATA_DIR === undefined ? await mkdtemp(join(tmpdir(), 'bench-store-')) : undefined;
  const apiKey = randomBytes(24).toString('hex');
  const hash = createHash('sha256').update(apiKey).digest('hex');
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', entry], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      MODEL_DIR: models.dir,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      API_KEY_HASHES: `bench:${hash}:predict models:read`,
      RATE_LIMIT_MAX: '0',
      // The load generator shares the machine: do not shed load on event-loop lag.
      MAX_EVENT_LOOP_DELAY_MS: '0',
      ...(dataDir === undefined ? {} : { DATA_DIR: dataDir }),
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = once(child, 'exit');
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
      throw new Error(`server exited with code ${child.exitCode} before it was ready`);
    }
    try {
      const res = await fetch(`${url}/health/ready`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
      throw new Error('server was not ready in time');
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url,
    apiKey,
    pid: child.pid ?? -1,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface LoadResult {
  connections: number;
  seconds: number;
  requestsPerSecond: number;
  staysPerSecond: number;
  latencyMs: { p50: number; p99: number; mean: number };
  non2xx: number;
  errors: number;
}

/** POST /v1/predict with one fixed body from `connections` clients for `seconds`. */
export async function loadPredict(
  server: RunningServer,
  opts: { body: string; staysPerRequest: number; connections: number; seconds: number },
): Promise<LoadResult> {
  const result = await autocannon({
    url: `${server.url}/v1/predict`,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': server.apiKey },
    body: opts.body,
    connections: opts.connections,
    duration: opts.seconds,
    pipelining: 1,
    timeout: 30,
  });
  const ok = result['2xx'];
  const seconds = result.duration;
  return {
    connections: opts.connections,
    seconds,
    requestsPerSecond: ok / seconds,
    staysPerSecond: (ok * opts.staysPerRequest) / seconds,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.average },
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

export interface HttpBenchOptions {
  /** Raw engine throughput now (bench/engine.ts probeRawEngine), taken just before and after the batch measurement. */
  probe?: () => Promise<number>;
  seconds?: number;
  batchStays?: number;
  hours?: number;
  env?: Record<string, string>;
}

export interface HttpBenchResult {
  batch: LoadResult;
  /** The raw engine just before and just after the batch measurement (with a probe). */
  batchRaw?: { before: number; after: number };
  single1: LoadResult;
  single64: LoadResult;
  single64NoBatching: LoadResult;
  /** The same 64 single-stay clients against bench/bare-server.ts: HTTP + JSON alone. */
  single64Bare: LoadResult;
}

/** The three HTTP measurements, each on a fresh server (maxBatchSize=1 for the no-batching baseline). */
export async function measureHttp(opts: HttpBenchOptions = {}): Promise<HttpBenchResult> {
  const seconds = opts.seconds ?? 10;
  const batchStays = opts.batchStays ?? 256;
  const hours = opts.hours ?? 48;
  const batchBody = predictBody(batchStays, hours, 1);
  const singleBody = predictBody(1, hours, 7);

  const server = await startServer(opts.env);
  let batch: LoadResult;
  let batchRaw: HttpBenchResult['batchRaw'];
  let single1: LoadResult;
  let single64: LoadResult;
  try {
    // Warm-up: JIT, worker, buffers.
    await loadPredict(server, { body: batchBody, staysPerRequest: batchStays, connections: 2, seconds: 2 });
    const before = await opts.probe?.();
    batch = await loadPredict(server, { body: batchBody, staysPerRequest: batchStays, connections: 2, seconds });
    const after = await opts.probe?.();
    if (before !== undefined && after !== undefined) batchRaw = { before, after };
    single1 = await loadPredict(server, { body: singleBody, staysPerRequest: 1, connections: 1, seconds });
    single64 = await loadPredict(server, { body: singleBody, staysPerRequest: 1, connections: 64, seconds });
  } finally {
    await server.stop();
  }
  const unbatched = await startServer({ ...opts.env, MAX_BATCH_SIZE: '1' });
  let single64NoBatching: LoadResult;
  try {
    await loadPredict(unbatched, { body: singleBody, staysPerRequest: 1, connections: 8, seconds: 2 });
    single64NoBatching = await loadPredict(unbatched, {
      body: singleBody,
      staysPerRequest: 1,
      connections: 64,
      seconds,
    });
  } finally {
    await unbatched.stop();
  }
  const bare = await startServer({}, 60_000, [], 'bench/bare-server.ts');
  let single64Bare: LoadResult;
  try {
    await loadPredict(bare, { body: singleBody, staysPerRequest: 1, connections: 8, seconds: 2 });
    single64Bare = await loadPredict(bare, { body: singleBody, staysPerRequest: 1, connections: 64, seconds });
  } finally {
    await bare.stop();
  }
  return {
    batch,
    ...(batchRaw === undefined ? {} : { batchRaw }),
    single1,
    single64,
    single64NoBatching,
    single64Bare,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const result = await measureHttp({ seconds: Number(process.env.BENCH_SECONDS ?? 10) });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

/** True when some version folder holds both manifest.json and model.onnx (a model being written does not count). */
function hasModel(dir: string): boolean {
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some(
    (v) => existsSync(join(dir, v, 'manifest.json')) && existsSync(join(dir, v, 'model.onnx')),
  );
}
