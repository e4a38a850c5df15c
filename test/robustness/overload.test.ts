import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EngineBatch } from '../../src/inference/engine.js';
import type { ModelEngine, ModelFiles } from '../../src/model/repository.js';
import { buildTestApp, oneWorkerEngine, samplePatient } from '../helper.js';

/**
 * Overload, deterministically: the real engine is held behind a gate, so the batcher's small
 * queue fills and further requests must be refused with 503 + Retry-After (never a 5xx of
 * another kind, never a hang); once the gate opens every accepted request is answered and
 * the service takes new work again. The timing-based version of this is `npm run soak`.
 */

function gatedEngineFactory(gate: Promise<void>) {
  return async (files: ModelFiles): Promise<ModelEngine> => {
    const real = await oneWorkerEngine(files);
    let warm = false;
    return {
      get provider() {
        return real.provider;
      },
      async run(batch: EngineBatch): Promise<Float32Array> {
        // The repository warms the model up before serving: let that run through.
        if (warm) await gate;
        warm = true;
        return real.run(batch);
      },
      close: () => real.close(),
    };
  };
}

describe('overload', { timeout: 60_000 }, () => {
  it('refuses work beyond the queue with 503 + Retry-After, answers what it accepted, then recovers', async (t) => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { app } = await buildTestApp(t, {
      env: { MAX_BATCH_SIZE: '2', MAX_QUEUE_SIZE: '4' },
      deps: { factories: { createEngine: gatedEngineFactory(gate) } },
    });
    const post = (seed: number) =>
      app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [samplePatient(6, seed, `s${seed}`)] } });

    const inflight = Array.from({ length: 24 }, (_, i) => post(i + 1));
    // Wait for the first refusal (the queue is full), then let the engine run.
    await Promise.any(
      inflight.map(async (p) => ((await p).statusCode === 503 ? undefined : Promise.reject(new Error('not a 503')))),
    );
    open();
    const answers = await Promise.all(inflight);

    const statuses = answers.map((a) => a.statusCode);
    assert.ok(
      statuses.every((s) => s === 200 || s === 503),
      `unexpected statuses ${statuses.join(',')}`,
    );
    const refused = answers.filter((a) => a.statusCode === 503);
    const accepted = answers.filter((a) => a.statusCode === 200);
    assert.ok(refused.length > 0 && accepted.length > 0, `200s ${accepted.length}, 503s ${refused.length}`);
    // Bounded queue: 4 queued plus the batches the engine holds; the rest is refused.
    assert.ok(accepted.length <= 4 + 2 * 3, `${accepted.length} accepted with a queue of 4`);
    for (const r of refused) {
      const retryAfter = Number(r.headers['retry-after']);
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After "${r.headers['retry-after']}"`);
      const body = r.json<{ error: string; message: string; details: unknown[] }>();
      assert.equal(body.error, 'queue_full');
      assert.ok(Array.isArray(body.details));
    }
    for (const a of accepted) assert.equal(a.json<{ results: unknown[] }>().results.length, 1);

    // Recovered: new work is accepted and the refusals were counted.
    const after = await post(100);
    assert.equal(after.statusCode, 200, after.body);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const counted = Number(/^rejected_requests_total\{reason="queue_full"\} (\d+)/m.exec(metrics)?.[1]);
    assert.equal(counted, refused.length);
  });
});
