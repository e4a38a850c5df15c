import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';
import { defaultEngineThreads } from '../src/inference/engine.js';
import { ROOT } from './helper.js';

test('engine layout: one single-threaded session per core by default on the CPU', () => {
  assert.deepEqual(defaultEngineThreads(2), { workers: 2, intraOpThreads: 1 });
  assert.deepEqual(defaultEngineThreads(4), { workers: 4, intraOpThreads: 1 });
  // One event loop cannot feed more: bigger hosts run more processes.
  assert.deepEqual(defaultEngineThreads(16), { workers: 4, intraOpThreads: 1 });
  assert.deepEqual(defaultEngineThreads(1), { workers: 1, intraOpThreads: 1 });
});

test('engine layout: a process allowed one CPU starts one single-threaded session', () => {
  // taskset (util-linux) pins the child to CPU 0: os.availableParallelism() reads the affinity mask.
  const script = `import { loadConfig } from './src/config.ts';
    const c = loadConfig({});
    console.log(JSON.stringify({ engineWorkers: c.engineWorkers, intraOpThreads: c.intraOpThreads }));`;
  const out = execFileSync(
    'taskset',
    ['-c', '0', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
  assert.deepEqual(JSON.parse(out), { engineWorkers: 1, intraOpThreads: 1 });
});

test('defaults, as documented in README and src/config.ts', () => {
  const c = loadConfig({});
  assert.equal(c.port, 3000);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.modelDir, 'models');
  assert.equal(c.modelName, 'icu-mortality');
  assert.equal(c.modelVersion, 'latest');
  assert.deepEqual(c.providers, ['cpu']);
  assert.equal(c.maxBatchSize, 64);
  assert.equal(c.maxQueueDelayMs, 2);
  assert.equal(c.maxQueueSize, 16384);
  assert.equal(c.callerQueueShare, 0.5);
  assert.equal(c.maxPatientsPerRequest, 4096);
  // 16 MiB = 16 x 1,048,576 bytes; 256 MiB and 64 MiB likewise.
  assert.equal(c.streamMaxLineBytes, 16777216);
  assert.equal(c.streamMaxBufferedBytes, 268435456);
  assert.equal(c.bodyLimitBytes, 67108864);
  assert.equal(c.requestTimeoutMs, 30000);
  assert.equal(c.keepAliveTimeoutMs, 5000);
  assert.equal(c.headersTimeoutMs, 10000);
  assert.equal(c.shutdownGraceMs, 30000);
});

test('engine layout: one session when a GPU provider comes first, and explicit settings win', () => {
  assert.equal(loadConfig({ EXECUTION_PROVIDERS: 'webgpu,cpu' }).engineWorkers, 1);
  assert.equal(loadConfig({ EXECUTION_PROVIDERS: 'cuda' }).engineWorkers, 1);
  // The CPU first: the CPU default, as with no setting.
  assert.equal(loadConfig({ EXECUTION_PROVIDERS: 'cpu,webgpu' }).engineWorkers, loadConfig({}).engineWorkers);
  const pinned = loadConfig({ ENGINE_WORKERS: '3', INTRA_OP_THREADS: '2', EXECUTION_PROVIDERS: 'webgpu' });
  assert.equal(pinned.engineWorkers, 3);
  assert.equal(pinned.intraOpThreads, 2);
});

test('engine layout: a bad worker count is refused naming the variable', () => {
  assert.throws(
    () => loadConfig({ ENGINE_WORKERS: '0' }),
    (error: unknown) => error instanceof ConfigError && /ENGINE_WORKERS/.test(error.message),
  );
});
