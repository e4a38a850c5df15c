import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EngineRunError, type EngineBatch } from '../../src/inference/engine.js';
import type { ModelEngine, ModelFiles } from '../../src/model/repository.js';
import { buildTestApp, oneWorkerEngine, samplePatient } from '../helper.js';

/**
 * An engine failure on one batch fails only the requests in that batch, with a 500 that says
 * the inference failed, and the engine keeps serving the next batches. The real engine (tiny
 * model, worker thread) is wrapped so that any batch holding a stay of exactly POISON_HOURS
 * hours fails, as a corrupt tensor or a runtime fault would.
 */

const POISON_HOURS = 13;

function poisonedEngineFactory(runs: { failed: number; ok: number }) {
  return async (files: ModelFiles): Promise<ModelEngine> => {
    const real = await oneWorkerEngine(files);
    return {
      get provider() {
        return real.provider;
      },
      async run(batch: EngineBatch): Promise<Float32Array> {
        if (batch.lengths.includes(POISON_HOURS)) {
          runs.failed++;
          throw new EngineRunError('injected fault: batch rejected by the engine');
        }
        runs.ok++;
        return real.run(batch);
      },
      close: () => real.close(),
    };
  };
}

interface ErrorBody {
  error: string;
  message: string;
  details: unknown[];
}

describe('engine errors are isolated to their batch', () => {
  it('fails the poisoned batch with a 500 naming the inference failure, while concurrent batches succeed', async (t) => {
    const runs = { failed: 0, ok: 0 };
    // One stay per batch: each request below is its own batch, whatever the timing.
    const { app, logs } = await buildTestApp(t, {
      env: { MAX_BATCH_SIZE: '1' },
      deps: { factories: { createEngine: poisonedEngineFactory(runs) } },
    });
    const post = (hours: number, seed: number) =>
      app.inject({
        method: 'POST',
        url: '/v1/predict',
        payload: { patients: [samplePatient(hours, seed, `stay-${seed}`)] },
      });

    const [before, poisoned, during] = await Promise.all([post(5, 1), post(POISON_HOURS, 2), post(7, 3)]);
    assert.equal(before.statusCode, 200, before.body);
    assert.equal(during.statusCode, 200, during.body);

    assert.equal(poisoned.statusCode, 500);
    const body = poisoned.json<ErrorBody>();
    assert.equal(typeof body.error, 'string');
    assert.ok(Array.isArray(body.details));
    // "500s that say so": the client learns that inference failed, not just "internal error".
    assert.match(
      `${body.error} ${body.message}`,
      /inference|engine|batch/i,
      `500 body does not say the inference failed: ${poisoned.body}`,
    );
    // The engine's own message is for the server log, not the client.
    assert.doesNotMatch(poisoned.body, /injected fault/);
    assert.match(logs.text(), /injected fault/);
    assert.equal(runs.failed, 1);

    // The next batch on the same engine succeeds.
    const after = await post(6, 4);
    assert.equal(after.statusCode, 200, after.body);
    const result = after.json<{ results: Array<{ id: string; probability: number }> }>().results[0];
    assert.equal(result?.id, 'stay-4');
    assert.ok(result && result.probability > 0 && result.probability < 1);
  });

  it('fails every request whose stays shared the poisoned batch, and only those', async (t) => {
    const runs = { failed: 0, ok: 0 };
    const { app } = await buildTestApp(t, {
      env: { MAX_BATCH_SIZE: '1' },
      deps: { factories: { createEngine: poisonedEngineFactory(runs) } },
    });
    // A request with a healthy and a poisoned stay: with one stay per batch, its poisoned
    // batch fails and the request, which needs both, fails as a whole.
    const mixed = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: { patients: [samplePatient(4, 10, 'healthy'), samplePatient(POISON_HOURS, 11, 'poisoned')] },
    });
    assert.equal(mixed.statusCode, 500);
    const next = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: { patients: [samplePatient(4, 10, 'healthy'), samplePatient(9, 12, 'other')] },
    });
    assert.equal(next.statusCode, 200, next.body);
    assert.deepEqual(
      next.json<{ results: Array<{ id: string }> }>().results.map((r) => r.id),
      ['healthy', 'other'],
    );
  });
});
