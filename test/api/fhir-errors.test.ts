import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { buildTestApp } from '../helper.js';
import { r4Errors } from '../fhir/r4-schema.js';

/**
 * Everything under /fhir answers FHIR: the CapabilityStatement at /metadata, and every error
 * (401, 403, 404, 413, 415, 429) as an OperationOutcome that the official R4 JSON schema accepts.
 */

const KEY = 'fhir-reader-key-0123456789';
const NO_SCOPE_KEY = 'models-only-key-0123456789';
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const env = {
  AUTH_DISABLED: 'false',
  API_KEY_HASHES: `ehr:${sha(KEY)}:predict,reader:${sha(NO_SCOPE_KEY)}:models:read`,
  FHIR_BODY_LIMIT_BYTES: '2048',
};
const URL = '/fhir/RiskAssessment/$predict';

function assertOutcome(
  res: { statusCode: number; headers: Record<string, unknown>; body: string },
  status: number,
  code: string,
): void {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/fhir\+json/);
  const body = JSON.parse(res.body) as { resourceType: string; issue: Array<{ code: string }> };
  assert.equal(body.resourceType, 'OperationOutcome');
  assert.deepEqual(r4Errors(body), []);
  assert.equal(body.issue[0]?.code, code);
}

describe('FHIR conventions under /fhir', () => {
  test('GET /fhir/metadata is a valid R4 CapabilityStatement naming the $predict operation, with no credential', async (t) => {
    const { app } = await buildTestApp(t, { env });
    const res = await app.inject({ method: 'GET', url: '/fhir/metadata' });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /^application\/fhir\+json/);
    const cs = res.json() as {
      resourceType: string;
      fhirVersion: string;
      rest: Array<{
        mode: string;
        resource: Array<{ type: string; operation: Array<{ name: string }> }>;
        security: { service: Array<{ coding: Array<{ code: string }> }> };
      }>;
    };
    // The validator's schema is R4's 4.0.0 release, whose fhirVersion list predates 4.0.1 (the
    // current R4, https://hl7.org/fhir/R4/): that one finding is the schema's age, not the resource.
    assert.deepEqual(
      r4Errors(cs).filter((e) => !e.startsWith('/fhirVersion must be equal to one of the allowed values')),
      [],
    );
    assert.equal(cs.resourceType, 'CapabilityStatement');
    assert.equal(cs.fhirVersion, '4.0.1');
    assert.equal(cs.rest[0]?.mode, 'server');
    assert.deepEqual(
      cs.rest[0]?.resource.map((r) => [r.type, r.operation.map((o) => o.name)]),
      [['RiskAssessment', ['predict']]],
    );
    assert.equal(cs.rest[0]?.security.service[0]?.coding[0]?.code, 'OAuth');
  });

  test('401, 403 and 404 are OperationOutcomes; the Bearer challenge is kept', async (t) => {
    const { app } = await buildTestApp(t, { env });
    const body = JSON.stringify({ resourceType: 'Bundle', type: 'collection', entry: [] });
    const noCredential = await app.inject({
      method: 'POST',
      url: URL,
      headers: { 'content-type': 'application/fhir+json' },
      payload: body,
    });
    assertOutcome(noCredential, 401, 'login');
    assert.equal(noCredential.headers['www-authenticate'], 'Bearer realm="icu-mortality"');
    assertOutcome(
      await app.inject({
        method: 'POST',
        url: URL,
        headers: { 'content-type': 'application/fhir+json', 'x-api-key': NO_SCOPE_KEY },
        payload: body,
      }),
      403,
      'forbidden',
    );
    assertOutcome(
      await app.inject({ method: 'GET', url: '/fhir/Patient/123', headers: { 'x-api-key': KEY } }),
      404,
      'not-found',
    );
    assertOutcome(await app.inject({ method: 'GET', url: '/fhir/Patient/123' }), 401, 'login');
  });

  test('413, 415 and 429 are OperationOutcomes', async (t) => {
    const { app } = await buildTestApp(t, { env: { ...env, RATE_LIMIT_MAX: '2' } });
    const headers = { 'content-type': 'application/fhir+json', 'x-api-key': KEY };
    assertOutcome(
      await app.inject({
        method: 'POST',
        url: URL,
        headers,
        payload: JSON.stringify({ resourceType: 'Bundle', type: 'collection', entry: [], pad: 'x'.repeat(4096) }),
      }),
      413,
      'too-costly',
    );
    assertOutcome(
      await app.inject({
        method: 'POST',
        url: URL,
        headers: { ...headers, 'content-type': 'text/plain' },
        payload: 'hello',
      }),
      415,
      'not-supported',
    );
    // Public routes are not counted: the two refusals above used the budget.
    await app.inject({ method: 'GET', url: '/fhir/metadata', headers });
    const limited = await app.inject({ method: 'POST', url: URL, headers, payload: '{}' });
    assertOutcome(limited, 429, 'throttled');
    assert.ok(Number(limited.headers['retry-after']) >= 1);
  });
});
