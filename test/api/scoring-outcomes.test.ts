import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { ScoredEvent, UnscoredEvent } from '../../src/scoring/observer.js';
import { buildTestApp, oneWorkerEngine, samplePatient } from '../helper.js';

/**
 * One outcome rule on every route: a patient that cannot be read or validated is `invalid`, a
 * valid one the model gives no usable probability for is `failed`; the registered observers
 * and predictions_total say the same.
 */

const NDJSON = { 'content-type': 'application/x-ndjson' };

/** The tiny fixture's engine; once `poison.on`, every output is NaN (as an overflow in a graph would give). */
async function appWithPoison(t: TestContext): Promise<{ app: FastifyInstance; poison: { on: boolean } }> {
  const poison = { on: false };
  const { app } = await buildTestApp(t, {
    deps: {
      factories: {
        createEngine: async (files) => {
          const engine = await oneWorkerEngine(files);
          return {
            provider: engine.provider,
            close: () => engine.close(),
            run: async (batch) => {
              const out = await engine.run(batch);
              return poison.on ? new Float32Array(out.length).fill(Number.NaN) : out;
            },
          };
        },
      },
    },
  });
  return { app, poison };
}

async function predictionsTotal(app: FastifyInstance): Promise<Record<string, number>> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  const counts: Record<string, number> = {};
  // A series at 0 counts nothing: only outcomes that happened are compared.
  for (const m of text.matchAll(/^predictions_total\{[^}]*outcome="(\w+)"\} (\d+)$/gm))
    if (Number(m[2]) > 0) counts[m[1] as string] = (counts[m[1] as string] ?? 0) + Number(m[2]);
  return counts;
}

test('a valid stay without a usable probability is counted failed on /v1/predict and on the stream alike', async (t) => {
  const { app, poison } = await appWithPoison(t);
  poison.on = true;
  const predict = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients: [samplePatient(4, 1, 'a')] },
  });
  assert.equal(predict.statusCode, 200, predict.body);
  assert.equal(predict.json().results[0].error.error, 'inference_failed');
  assert.deepEqual(await predictionsTotal(app), { failed: 1 });

  const stream = await app.inject({
    method: 'POST',
    url: '/v1/predict/stream',
    headers: NDJSON,
    payload: `${JSON.stringify(samplePatient(4, 2, 'b'))}\n`,
  });
  assert.equal(stream.statusCode, 200, stream.body);
  assert.equal(JSON.parse(stream.body.trim()).error.error, 'inference_failed');
  assert.deepEqual(await predictionsTotal(app), { failed: 2 });
});

test('every route reports each patient to the registered observers, under its own name, ids kept raw', async (t) => {
  const { app } = await appWithPoison(t);
  const events: Array<ScoredEvent | UnscoredEvent> = [];
  app.observers.add({ scored: (e) => events.push(e), unscored: (e) => events.push(e) });
  const invalid = { ...samplePatient(2, 3, 'bad'), hours: [{ HR: 'fast' }] };

  const predict = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients: [samplePatient(3, 1, 'p-1'), invalid, samplePatient(5, 2, 'p-3')] },
  });
  assert.equal(predict.statusCode, 200, predict.body);
  const stream = await app.inject({
    method: 'POST',
    url: '/v1/predict/stream',
    headers: NDJSON,
    payload: [JSON.stringify(samplePatient(3, 4, 's-1')), '{not json', JSON.stringify(invalid)].join('\n'),
  });
  assert.equal(stream.statusCode, 200, stream.body);

  const seen = events.map((e) => ('result' in e ? `${e.route} scored ${e.id ?? '-'}` : `${e.route} ${e.outcome}`));
  assert.deepEqual(seen, [
    'predict scored p-1',
    'predict invalid',
    'predict scored p-3',
    'stream scored s-1',
    'stream invalid',
    'stream invalid',
  ]);
  // The event carries what the client was answered.
  const answered = predict.json().results as Array<{ id?: string; probability?: number }>;
  const first = events[0] as ScoredEvent;
  assert.equal(first.result.probability, answered[0]?.probability);
  assert.deepEqual(first.model, predict.json().model);
  assert.deepEqual(await predictionsTotal(app), { scored: 3, invalid: 3 });
});
