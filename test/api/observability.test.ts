import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTestApp, samplePatient } from '../helper.js';

test('GET /metrics exposes request, engine, queue, rejection, probability and process metrics', async (t) => {
  const { app } = await buildTestApp(t, { env: { MAX_QUEUE_SIZE: '8' } });
  await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients: [samplePatient(5, 1), samplePatient(9, 2)] },
  });
  await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients: Array.from({ length: 9 }, (_, i) => samplePatient(2, i)) },
  });
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /text\/plain/);
  const text = res.body;
  const expected = [
    /http_requests_total\{method="POST",route="\/v1\/predict",status="200"\} 1/,
    /http_requests_total\{method="POST",route="\/v1\/predict",status="413"\} 1/,
    /http_request_duration_seconds_bucket\{le="[^"]+",method="POST",route="\/v1\/predict",status="200"\} 1/,
    /engine_batch_size_count\{model="icu-mortality",version="0.0.0-tiny"\} [1-9]/,
    /engine_batch_duration_seconds_count\{model="icu-mortality",version="0.0.0-tiny"\} [1-9]/,
    /batcher_queue_depth\{model="icu-mortality",version="0.0.0-tiny"\} 0/,
    /batcher_queue_wait_seconds_count\{model="icu-mortality",version="0.0.0-tiny"\} 1/,
    /rejected_requests_total\{reason="too_large"\} 1/,
    /prediction_probability_count\{model="icu-mortality",version="0.0.0-tiny"\} 2/,
    /model_info\{model="icu-mortality",version="0.0.0-tiny",provider="cpu"\} 1/,
    /process_cpu_user_seconds_total/,
    /nodejs_eventloop_lag_seconds/,
  ];
  for (const re of expected) assert.match(text, re);
});

test('metric labels carry the route template, never the raw URL', async (t) => {
  const { app } = await buildTestApp(t);
  await app.inject({ method: 'GET', url: '/health/live?patient=SECRET-PATIENT-9' });
  await app.inject({ method: 'GET', url: '/no/such/PATIENT-8812' });
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  assert.match(text, /http_requests_total\{method="GET",route="\/health\/live",status="200"\} 1/);
  assert.match(text, /http_requests_total\{method="GET",route="unmatched",status="404"\} 1/);
  assert.ok(!text.includes('SECRET-PATIENT-9'));
  assert.ok(!text.includes('PATIENT-8812'));
});

test('logs carry request ids but never patient ids, measurement values or bodies', async (t) => {
  const { app, logs } = await buildTestApp(t, { env: { LOG_LEVEL: 'trace' } });
  const id = 'PATIENT-ID-4242';
  const value = 123.4567;
  await app.inject({
    method: 'POST',
    url: '/v1/predict?mrn=MRN-SECRET-1',
    payload: { patients: [{ id, age: 61.25, hours: [{ HR: value, MAP: 77.777 }] }] },
  });
  await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients: [{ id, hours: [{ HR: 999.125, Secretvar: 1 }] }] },
  });
  await app.inject({
    method: 'POST',
    url: '/v1/predict',
    headers: { 'content-type': 'application/json', authorization: 'Bearer TOKEN-XYZ' },
    payload: `{"patients":[{"id":"${id}","hours":[{"HR":${value}`,
  });
  const text = logs.text();
  assert.ok(logs.lines.length > 0);
  for (const secret of [id, String(value), '61.25', '77.777', '999.125', 'MRN-SECRET-1', 'TOKEN-XYZ']) {
    assert.ok(!text.includes(secret), `logs contain ${secret}`);
  }
  const completed = logs.lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === 'request completed');
  assert.equal(completed.length, 3);
  for (const line of completed) assert.equal(typeof line.reqId, 'string');
});

test('health: live always, ready once the model is loaded and warmed up', async (t) => {
  const { app } = await buildTestApp(t);
  const live = await app.inject({ method: 'GET', url: '/health/live' });
  assert.equal(live.statusCode, 200);
  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  assert.equal(ready.statusCode, 200);
  assert.deepEqual(ready.json(), {
    status: 'ready',
    model: { name: 'icu-mortality', version: '0.0.0-tiny', provider: 'cpu' },
    store: { backend: 'sqlite', status: 'up' },
  });
});

test('GET /v1/models describes features with units and bounds, provenance, metrics and the execution provider', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/v1/models' });
  assert.equal(res.statusCode, 200);
  const body = res.json<{
    models: Array<
      Record<string, unknown> & {
        features: Array<{
          name: string;
          unit: string;
          bounds: { min: number; max: number };
          alternativeUnits: string[];
        }>;
      }
    >;
    available: string[];
  }>();
  const m = body.models[0]!;
  assert.equal(m.version, '0.0.0-tiny');
  assert.equal(m.executionProvider, 'cpu');
  assert.equal(m.bootstrap, true);
  const hr = m.features.find((f) => f.name === 'HR')!;
  assert.equal(hr.unit, '/min');
  assert.deepEqual(hr.bounds, { min: 0, max: 300 });
  assert.deepEqual(m.features.find((f) => f.name === 'Temp')!.alternativeUnits, ['[degF]']);
  assert.ok(typeof m.provenance === 'object' && typeof m.metrics === 'object');
  assert.deepEqual(body.available, ['0.0.0-tiny']);
});

test('unknown routes answer 404 in the common error shape', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/v2/nothing' });
  assert.equal(res.statusCode, 404);
  assert.deepEqual(Object.keys(res.json()).sort(), ['details', 'error', 'message']);
});

test('closing the app drains in-flight predictions before the engine stops', async (t) => {
  const { app } = await buildTestApp(t, { env: { MAX_BATCH_SIZE: '4' } });
  let settled = 0;
  const inflight = Array.from({ length: 10 }, (_, i) =>
    app
      .inject({
        method: 'POST',
        url: '/v1/predict',
        payload: { patients: [samplePatient(10, i), samplePatient(20, i + 1)] },
      })
      .finally(() => settled++),
  );
  // Close only once every request holds the model (it has been submitted) or has finished.
  const model = app.models.active!;
  while (model.leases + settled < 10) await new Promise((resolve) => setImmediate(resolve));
  const closing = app.close();
  const done = await Promise.all(inflight);
  await closing;
  for (const r of done) assert.equal(r.statusCode, 200, r.body);
  assert.equal(app.models.ready, false);
  // The batcher takes nothing once drained.
  await assert.rejects(
    model.batcher.submit([]).then(() =>
      model.batcher.submit([
        {
          age: null,
          sex: null,
          icuType: null,
          height: null,
          hoursReceived: 1,
          hoursUsed: 1,
          values: new Float64Array(model.manifest.variables.length).fill(Number.NaN),
          observed: new Uint8Array(model.manifest.variables.length),
        },
      ]),
    ),
    { name: 'BatcherDrainingError' },
  );
});
