import assert from 'node:assert/strict';
import { test } from 'node:test';
import helmet from '@fastify/helmet';
import Fastify from 'fastify';
import { buildTestApp, samplePatient } from '../helper.js';

/**
 * The service sets @fastify/helmet's headers from a constant taken at start-up
 * (src/plugins/external/helmet.ts). The reference is @fastify/helmet itself, registered
 * globally on a plain Fastify instance.
 */
async function helmetReference(options: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const ref = Fastify();
  await ref.register(helmet, { ...options, global: true });
  ref.get('/', async () => ({}));
  const res = await ref.inject({ method: 'GET', url: '/' });
  await ref.close();
  const {
    'content-type': _type,
    'content-length': _length,
    date: _date,
    connection: _connection,
    ...headers
  } = res.headers;
  return headers;
}

// Over plain HTTP (every inject is), without upgrade-insecure-requests, as helmet's own option gives it.
const PLAIN = { contentSecurityPolicy: { directives: { 'upgrade-insecure-requests': null } } };

test('the CSP upgrades insecure requests only over TLS, so /docs works over plain HTTP at any host', async () => {
  const secure = await helmetReference();
  const plain = await helmetReference(PLAIN);
  assert.match(String(secure['content-security-policy']), /upgrade-insecure-requests/);
  assert.doesNotMatch(String(plain['content-security-policy']), /upgrade-insecure-requests/);
});

test('every kind of response carries exactly the headers @fastify/helmet gives', async (t) => {
  const expected = await helmetReference(PLAIN);
  assert.ok(Object.keys(expected).length >= 10 && expected['content-security-policy']);
  const { app } = await buildTestApp(t);
  const responses = [
    await app.inject({ method: 'GET', url: '/health/live' }),
    await app.inject({ method: 'GET', url: '/no/such/route' }),
    await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [samplePatient(3, 1)] } }),
    await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [] } }),
  ];
  for (const res of responses) {
    for (const [name, value] of Object.entries(expected))
      assert.equal(res.headers[name], value, `${res.statusCode} ${name}`);
    assert.equal(res.headers['x-powered-by'], undefined);
  }
});
