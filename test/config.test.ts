import assert from 'node:assert/strict';
import { usableCores } from '../src/inference/cpu-budget.js';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';
import { defaultEngineThreads } from '../src/inference/engine.js';

test('engine layout: one single-threaded session per core by default on the CPU', () => {
  assert.deepEqual(defaultEngineThreads(2), { workers: 2, intraOpThreads: 1 });
  assert.deepEqual(defaultEngineThreads(4), { workers: 4, intraOpThreads: 1 });
  // One event loop cannot feed more: bigger hosts run more processes.
  assert.deepEqual(defaultEngineThreads(16), { workers: 4, intraOpThreads: 1 });
  assert.deepEqual(defaultEngineThreads(1), { workers: 1, intraOpThreads: 1 });
  const config = loadConfig({});
  assert.equal(config.engineWorkers, Math.min(usableCores(), 4));
  assert.equal(config.intraOpThreads, 1);
});

test('engine layout: one session when a GPU provider comes first, and explicit settings win', () => {
  assert.equal(loadConfig({ EXECUTION_PROVIDERS: 'webgpu,cpu' }).engineWorkers, 1);
  assert.equal(loadConfig({ EXECUTION_PROVIDERS: 'cuda' }).engineWorkers, 1);
  assert.equal(loadConfig({ EXECUTION_PROVIDERS: 'cpu,webgpu' }).engineWorkers, Math.min(usableCores(), 4));
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
