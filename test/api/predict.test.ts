import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTestApp, gatedEngine, samplePatient } from '../helper.js';
import { buildBatch, reference } from '../inference/helpers.js';

interface Result {
  index: number;
  id?: string;
  probability: number;
  model: { name: string; version: string };
  hoursUsed: number;
  truncated: boolean;
  missingThroughout: string[];
}
interface ErrorEntry {
  index: number;
  id?: string;
  error: { error: string; message: string; details: Array<{ path: string; message: string }> };
}
interface PredictBody {
  model: { name: string; version: string };
  results: Array<Result | ErrorEntry>;
}

test('one patient gets a probability in (0, 1), the model, the hours used and the inputs missing throughout', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients: [{ id: 'bed-3', hours: [{ HR: 90, MAP: 70 }, { HR: 95 }] }] },
  });
  assert.equal(res.statusCode, 200);
  const body = res.json<PredictBody>();
  assert.deepEqual(body.model, { name: 'icu-mortality', version: '0.0.0-tiny' });
  const r = body.results[0] as Result;
  assert.equal(r.index, 0);
  assert.equal(r.id, 'bed-3');
  assert.ok(r.probability > 0 && r.probability < 1);
  assert.equal(r.hoursUsed, 2);
  assert.equal(r.truncated, false);
  assert.ok(r.missingThroughout.includes('Lactate') && !r.missingThroughout.includes('HR'));
  assert.ok(res.headers['x-request-id']);
});

test('a stay longer than maxHours is scored on its last 48 hours and says so', async (t) => {
  const { app } = await buildTestApp(t);
  const long = samplePatient(60, 7);
  const last48 = { ...long, hours: (long.hours as unknown[]).slice(12) };
  const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [long, last48] } });
  const [a, b] = res.json<PredictBody>().results as Result[];
  assert.equal(a!.hoursUsed, 48);
  assert.equal(a!.truncated, true);
  assert.equal(b!.truncated, false);
  assert.equal(a!.probability, b!.probability);
});

test('each stay of a mixed-length batch (1..48 hours) gets the probability it gets alone, within 1e-6', async (t) => {
  const { app } = await buildTestApp(t, { env: { MAX_BATCH_SIZE: '64', MAX_QUEUE_DELAY_MS: '50' } });
  const lengths = Array.from({ length: 48 }, (_, i) => ((i * 29) % 48) + 1); // 1..48, shuffled
  const patients = lengths.map((len, i) => samplePatient(len, 100 + i));
  const together = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients } });
  assert.equal(together.statusCode, 200);
  const batched = (together.json<PredictBody>().results as Result[]).map((r) => r.probability);
  for (let i = 0; i < patients.length; i++) {
    const alone = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [patients[i]] } });
    const p = (alone.json<PredictBody>().results[0] as Result).probability;
    assert.ok(Math.abs(p - batched[i]!) <= 1e-6, `stay ${i} (${lengths[i]} h): alone ${p}, batched ${batched[i]}`);
  }
  // The batch was really scored together: at least one engine batch held all 48 stays.
  const metrics = await app.inject({ method: 'GET', url: '/metrics' });
  const bucket = (le: string): number =>
    Number(
      new RegExp(`engine_batch_size_bucket\\{le="${le}",model="icu-mortality",version="0.0.0-tiny"\\} (\\d+)`).exec(
        metrics.body,
      )?.[1],
    );
  // Batch sizes are whole numbers, the bucket bounds half-way between them: 33..64 stays.
  assert.ok(bucket('64.5') - bucket('32.5') >= 1, metrics.body.slice(0, 200));
});

test('the served model reproduces PyTorch pack_padded_sequence probabilities (reference from training/)', async (t) => {
  const { app } = await buildTestApp(t);
  const ref = reference();
  const model = app.models.active!;
  const n = ref.stays.length;
  const out = await model.engine.run(buildBatch(ref.stays, ref.maxHours));
  let worst = 0;
  for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(out[i]! - ref.probability[i]!));
  assert.ok(worst <= 1e-5, `max |ORT - PyTorch| = ${worst}`);
});

test('one invalid patient among valid ones is reported in its entry without failing the others', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: {
      patients: [samplePatient(3, 1, 'ok-1'), { id: 'bad-1', hours: [{ HR: 900 }, { Foo: 1 }] }, samplePatient(4, 2)],
    },
  });
  assert.equal(res.statusCode, 200);
  const [a, b, c] = res.json<PredictBody>().results;
  assert.ok('probability' in a! && 'probability' in c!);
  const err = b as ErrorEntry;
  assert.equal(err.index, 1);
  assert.equal(err.id, 'bad-1');
  assert.equal(err.error.error, 'validation_failed');
  assert.deepEqual(
    err.error.details.map((d) => d.path),
    ['hours.1.Foo', 'hours.0.HR'],
  );
});

test('when every patient is invalid the answer is 400 with the path of every offending field', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: {
      patients: [
        { hours: [] },
        { hours: [{ HR: 'fast' }] },
        { units: { Temp: 'mm[Hg]' }, hours: [{}, {}, { SpO2: 95 }] },
        'not an object',
      ],
    },
  });
  assert.equal(res.statusCode, 400);
  const body = res.json<{ error: string; message: string; details: Array<{ path: string }> }>();
  assert.equal(body.error, 'validation_failed');
  assert.deepEqual(body.details.map((d) => d.path).sort(), [
    'patients.0.hours',
    'patients.1.hours.0.HR',
    'patients.2.hours.2.SpO2',
    'patients.2.units.Temp',
    'patients.3',
  ]);
});

test('a structurally unusable body is a 400 in the common error shape', async (t) => {
  const { app } = await buildTestApp(t, { env: { MAX_PATIENTS_PER_REQUEST: '2' } });
  const cases: Array<[unknown, string]> = [
    [{}, 'patients'],
    [{ patients: [] }, 'patients'],
    [{ patients: 'all' }, 'patients'],
    [{ patients: [{ hours: [{}] }, { hours: [{}] }, { hours: [{}] }] }, 'patients'],
    [{ patients: [{ hours: [{}] }], extra: 1 }, ''],
    [[1, 2], ''],
  ];
  for (const [payload, path] of cases) {
    const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: payload as object });
    assert.equal(res.statusCode, 400, JSON.stringify(payload));
    const body = res.json<{ error: string; message: string; details: Array<{ path: string }> }>();
    assert.equal(body.error, 'validation_failed');
    assert.equal(typeof body.message, 'string');
    assert.ok(body.details.length >= 1 && body.details[0]!.path === path, JSON.stringify(body));
  }
});

test('invalid JSON is a 400 that does not echo the body', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    headers: { 'content-type': 'application/json' },
    payload: '{"patients": [{"id": "SECRET-77", "hours": [{"HR": 8',
  });
  assert.equal(res.statusCode, 400);
  assert.equal(res.json<{ error: string }>().error, 'invalid_json');
  assert.ok(!res.body.includes('SECRET-77'));
});

test('asking for a model or version that is not served is a 404', async (t) => {
  const { app } = await buildTestApp(t);
  const wrongVersion = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { version: '9.9.9', patients: [samplePatient(2)] },
  });
  assert.equal(wrongVersion.statusCode, 404);
  assert.equal(wrongVersion.json<{ error: string }>().error, 'model_not_found');
  const wrongName = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { model: 'sepsis', patients: [samplePatient(2)] },
  });
  assert.equal(wrongName.statusCode, 404);
  const right = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { model: 'icu-mortality', version: '0.0.0-tiny', patients: [samplePatient(2)] },
  });
  assert.equal(right.statusCode, 200);
});

test('a request larger than one caller may ever queue is a 413 naming the settings, without Retry-After', async (t) => {
  // MAX_QUEUE_SIZE 6 x the default CALLER_QUEUE_SHARE 0.5: 3 stays per caller, for good.
  const { app } = await buildTestApp(t, { env: { MAX_QUEUE_SIZE: '6' } });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients: [1, 2, 3, 4].map((i) => samplePatient(2, i)) },
  });
  assert.equal(res.statusCode, 413, res.body);
  const body = res.json<{ error: string; message: string }>();
  assert.equal(body.error, 'request_too_large');
  assert.match(
    body.message,
    /needs 4 engine rows; one caller may queue at most 3 \(MAX_QUEUE_SIZE x CALLER_QUEUE_SHARE\)/,
  );
  assert.match(body.message, /POST \/v1\/predict\/stream/);
  assert.equal(res.headers['retry-after'], undefined);
  const metrics = await app.inject({ method: 'GET', url: '/metrics' });
  assert.match(metrics.body, /rejected_requests_total\{reason="too_large"\} 1/);
});

test('concurrent requests beyond the queue bound get 503 with Retry-After while the admitted ones are scored', async (t) => {
  // The real engine, held at a gate: nothing can finish until it opens, so the queue bound
  // (2 batches in flight of <= 2 stays, plus 4 queued stays) admits at most 4 of the 8 requests.
  const gated = gatedEngine();
  const open = gated.open;
  const { app } = await buildTestApp(t, {
    env: { MAX_QUEUE_SIZE: '4', MAX_BATCH_SIZE: '2' },
    deps: { factories: gated.factories },
  });
  let settled = 0;
  const responses = Array.from({ length: 8 }, (_, i) =>
    app
      .inject({
        method: 'POST',
        url: '/v1/predict',
        payload: { patients: [samplePatient(3, i), samplePatient(3, i + 50)] },
      })
      .then((r) => {
        if (++settled === 4) open();
        return r;
      }),
  );
  const done = await Promise.all(responses);
  const refused = done.filter((r) => r.statusCode === 503);
  const scored = done.filter((r) => r.statusCode === 200);
  assert.ok(refused.length >= 4, done.map((r) => r.statusCode).join(','));
  assert.equal(refused.length + scored.length, 8);
  assert.ok(scored.length >= 1);
  for (const r of refused) {
    assert.equal(r.json<{ error: string }>().error, 'queue_full');
    assert.ok(Number(r.headers['retry-after']) >= 1);
  }
});

test('a request that times out answers 503 with Retry-After and leaves no work in the queue', async (t) => {
  const gated = gatedEngine();
  const { app } = await buildTestApp(t, {
    env: { REQUEST_TIMEOUT_MS: '50', MAX_BATCH_SIZE: '2' },
    deps: { factories: gated.factories },
  });
  t.after(() => gated.open());
  // The first batch holds the engine; the other stays wait in the queue until the timeout fires.
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients: [1, 2, 3, 4, 5, 6].map((i) => samplePatient(3, i)) },
  });
  assert.equal(res.statusCode, 503);
  assert.equal(res.json<{ error: string }>().error, 'timeout');
  assert.ok(res.headers['retry-after']);
  const batcher = app.models.active!.batcher;
  assert.equal(batcher.depth, 0);
  gated.open();
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  assert.match(metrics, /rejected_requests_total\{reason="timeout"\} 1/);
  assert.match(metrics, /batcher_queue_depth\{model="icu-mortality",version="0.0.0-tiny"\} 0/);
});

test('a stay sent in degF, mg/dL lactate and percent FiO2 (declared in units) scores as the same stay in canonical units', async (t) => {
  const { app } = await buildTestApp(t);
  const canonical = {
    age: 66,
    hours: [
      { Temp: 38.5, Lactate: 2.0, FiO2: 0.5, HR: 101 },
      { Temp: 37.0, HR: 95 },
    ],
  };
  const alternative = {
    age: 66,
    units: { Temp: '[degF]', Lactate: 'mg/dL', FiO2: '%' },
    hours: [
      { Temp: 101.3, Lactate: 2.0 / 0.11101243339253998, FiO2: 50, HR: 101 },
      { Temp: 98.6, HR: 95 },
    ],
  };
  const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [canonical, alternative] } });
  const [a, b] = res.json<PredictBody>().results as Result[];
  assert.ok(Math.abs(a!.probability - b!.probability) <= 1e-6, `${a!.probability} vs ${b!.probability}`);
});

test('the static weight counts as an hour-0 Weight observation', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: {
      patients: [
        { weight: 92, hours: [{ HR: 88 }, { HR: 90 }] },
        { hours: [{ HR: 88, Weight: 92 }, { HR: 90 }] },
        { hours: [{ HR: 88 }, { HR: 90 }] },
      ],
    },
  });
  const [withStatic, withRow, without] = res.json<PredictBody>().results as Result[];
  assert.equal(withStatic!.probability, withRow!.probability);
  assert.notEqual(withStatic!.probability, without!.probability);
  assert.ok(!withStatic!.missingThroughout.includes('Weight'));
});

test('a body over the configured limit is a 413 in the common error shape', async (t) => {
  const { app } = await buildTestApp(t, { env: { BODY_LIMIT_BYTES: '2048' } });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients: [1, 2, 3, 4].map((i) => samplePatient(48, i)) },
  });
  assert.equal(res.statusCode, 413);
  assert.equal(res.json<{ error: string }>().error, 'body_too_large');
});
