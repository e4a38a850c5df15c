import assert from 'node:assert/strict';
import { test } from 'node:test';
import { r4Errors } from '../fhir/r4-schema.js';
import { buildTestApp, samplePatient, postFhirPredict } from '../helper.js';

/** What a first-time caller reads when a request is refused: the limit, the setting, the way on. */

interface ErrorBody {
  error: string;
  message: string;
  details: Array<{ path: string; message: string }>;
}

test('a body over BODY_LIMIT_BYTES is a 413 that names the limit in bytes and MiB and the setting', async (t) => {
  const { app } = await buildTestApp(t, { env: { BODY_LIMIT_BYTES: String(2 * 1024 * 1024) } });
  const payload = JSON.stringify({ patients: [{ id: 'x'.repeat(3 * 1024 * 1024), hours: [{ HR: 80 }] }] });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    headers: { 'content-type': 'application/json' },
    payload,
  });
  assert.equal(res.statusCode, 413);
  const body = res.json<ErrorBody>();
  assert.equal(body.error, 'body_too_large');
  assert.match(body.message, /2097152 bytes/);
  assert.match(body.message, /2 MiB/);
  assert.match(body.message, /BODY_LIMIT_BYTES/);
});

test('a CDS Hooks body over FHIR_BODY_LIMIT_BYTES is a 413 that names that setting', async (t) => {
  const { app } = await buildTestApp(t, { env: { FHIR_BODY_LIMIT_BYTES: '65536' } });
  const payload = JSON.stringify({
    hook: 'patient-view',
    hookInstance: 'x'.repeat(70_000),
    context: { patientId: 'p1' },
  });
  const res = await app.inject({
    method: 'POST',
    url: '/cds-services/icu-mortality',
    headers: { 'content-type': 'application/json' },
    payload,
  });
  assert.equal(res.statusCode, 413);
  assert.match(res.json<ErrorBody>().message, /65536 bytes \(64 KiB\).*FHIR_BODY_LIMIT_BYTES/);
  const fhir = await postFhirPredict(app, { resourceType: 'Bundle', type: 'collection', id: 'x'.repeat(70_000) });
  assert.equal(fhir.statusCode, 413);
  assert.match(fhir.body, /65536 bytes \(64 KiB\).*FHIR_BODY_LIMIT_BYTES/);
});

test('more than MAX_PATIENTS_PER_REQUEST patients is a 400 naming the setting and the stream route', async (t) => {
  const { app } = await buildTestApp(t);
  const patient = samplePatient(1, 1);
  // 4,096 is the documented default (README, Configuration).
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients: Array.from({ length: 4097 }, () => patient) },
  });
  assert.equal(res.statusCode, 400);
  const body = res.json<ErrorBody>();
  for (const text of [body.message, body.details[0]?.message ?? '']) {
    assert.match(text, /4096/);
    assert.match(text, /MAX_PATIENTS_PER_REQUEST/);
    assert.match(text, /POST \/v1\/predict\/stream/);
  }
  assert.equal(body.details[0]?.path, 'patients');
});

test('GET /v1/predict is a 405 whose Allow header names POST', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/v1/predict?x=1' });
  assert.equal(res.statusCode, 405);
  assert.equal(res.headers.allow, 'POST');
  const body = res.json<ErrorBody>();
  assert.equal(body.error, 'method_not_allowed');
  assert.deepEqual(body.details, []);
});

test('a wrong method on a route with a parameter, or on a GET route, is a 405 that allows GET and HEAD', async (t) => {
  const { app } = await buildTestApp(t);
  for (const [method, url] of [
    ['POST', '/v1/models/0.0.0-tiny/card'],
    ['DELETE', '/v1/models'],
    ['PUT', '/health/live'],
  ] as const) {
    const res = await app.inject({ method, url });
    assert.equal(res.statusCode, 405, `${method} ${url}`);
    assert.equal(res.headers.allow, 'GET, HEAD', `${method} ${url}`);
  }
});

test('under /fhir a wrong method is a 405 OperationOutcome, valid R4, with Allow', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/fhir/RiskAssessment/$predict' });
  assert.equal(res.statusCode, 405);
  assert.equal(res.headers.allow, 'POST');
  const outcome = res.json<{ resourceType: string; issue: Array<{ code: string }> }>();
  assert.equal(outcome.resourceType, 'OperationOutcome');
  assert.equal(outcome.issue[0]?.code, 'not-supported');
  assert.deepEqual(r4Errors(outcome), []);
  assert.equal((await app.inject({ method: 'GET', url: '/fhir/Patient/123' })).statusCode, 404);
});

test('a path with no route is still a 404, CORS preflight route or not', async (t) => {
  const { app } = await buildTestApp(t, { env: { CDS_CORS_ORIGINS: '*' } });
  for (const method of ['GET', 'POST'] as const) {
    const res = await app.inject({ method, url: '/v2/nothing' });
    assert.equal(res.statusCode, 404);
    assert.equal(res.headers.allow, undefined);
    assert.equal(res.json<ErrorBody>().error, 'not_found');
  }
});

test('unknown paths and wrong methods are rate limited like routes', async (t) => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_MAX: '2' } });
  const codes = [];
  for (const url of ['/v2/nothing', '/v2/nothing', '/v2/nothing', '/v1/predict'])
    codes.push((await app.inject({ method: 'GET', url })).statusCode);
  assert.deepEqual(codes, [404, 404, 429, 429]);
});
