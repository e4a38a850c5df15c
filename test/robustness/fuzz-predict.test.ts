import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { buildTestApp, loadTinyManifest } from '../helper.js';

/**
 * Property-based fuzzing of POST /v1/predict (fast-check, fixed seeds so runs are
 * reproducible): thousands of malformed bodies never produce a 5xx, every refusal has the
 * one error shape with JSON paths, and accepted bodies answer one result per patient. A
 * marker planted in ids and strings must never reach the logs (no patient data in logs).
 */

const MARK = 'FUZZMARK';

interface ErrorShape {
  error: string;
  message: string;
  details: Array<{ path: string; message: string }>;
}

function assertErrorShape(status: number, text: string): void {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`status ${status} with a non-JSON body: ${text.slice(0, 200)}`);
  }
  const b = body as ErrorShape;
  assert.equal(typeof b.error, 'string', `no error code: ${text.slice(0, 300)}`);
  assert.equal(typeof b.message, 'string');
  assert.ok(Array.isArray(b.details), 'details must be an array');
  for (const d of b.details) {
    assert.equal(typeof d.path, 'string');
    assert.equal(typeof d.message, 'string');
  }
}

async function check(
  app: FastifyInstance,
  payload: string,
  contentType = 'application/json',
  patientCount?: number,
): Promise<number> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    headers: { 'content-type': contentType },
    payload,
  });
  assert.ok(
    res.statusCode < 500,
    `5xx (${res.statusCode}) for body ${payload.slice(0, 300)}: ${res.body.slice(0, 300)}`,
  );
  if (res.statusCode === 200) {
    const body = res.json<{ results: Array<{ index: number; probability?: number; error?: ErrorShape }> }>();
    if (patientCount !== undefined) assert.equal(body.results.length, patientCount);
    for (const r of body.results) {
      if (r.error) assertErrorShape(200, JSON.stringify(r.error));
      else assert.ok(typeof r.probability === 'number' && r.probability >= 0 && r.probability <= 1, JSON.stringify(r));
    }
  } else {
    assertErrorShape(res.statusCode, res.body);
  }
  return res.statusCode;
}

describe('fuzzing POST /v1/predict', { timeout: 300_000 }, () => {
  it('never answers 5xx to arbitrary JSON values', async (t) => {
    const { app } = await buildTestApp(t);
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        await check(app, JSON.stringify(value));
      }),
      { numRuns: 1000, seed: 20261125 },
    );
  });

  it('never answers 5xx to patients with wrong types, unknown names, out-of-range and non-finite values', async (t) => {
    const { app, logs } = await buildTestApp(t);
    const manifest = await loadTinyManifest();
    const names = manifest.variables.map((v) => v.name);
    const junk = fc.oneof(
      fc.double(),
      fc.double({ min: -1e12, max: 1e12 }),
      fc.integer(),
      fc.constantFrom(0, -1, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 5e-324),
      fc.string().map((s) => `${MARK}${s}`),
      fc.boolean(),
      fc.constant(null),
      fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e999', ''),
      fc.array(fc.integer(), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
    );
    const row = fc.dictionary(
      fc.oneof(
        fc.constantFrom(...names),
        fc.string({ maxLength: 8 }),
        fc.constantFrom('__proto__', 'constructor', 'SpO2'),
      ),
      junk,
      { maxKeys: 6 },
    );
    const patient = fc.record(
      {
        id: fc.oneof(
          fc.string({ maxLength: 12 }).map((s) => `${MARK}${s}`),
          fc.integer(),
          fc.constant(null),
        ),
        age: junk,
        sex: fc.oneof(fc.constantFrom('female', 'male', 'F', 'other', ''), junk),
        icuType: fc.oneof(fc.integer({ min: -2, max: 6 }), junk),
        height: junk,
        weight: junk,
        units: fc.oneof(
          fc.dictionary(fc.constantFrom(...names, 'Nope'), fc.constantFrom('[degF]', 'Cel', 'mg/dL', 'x', '')),
          junk,
        ),
        hours: fc.oneof(fc.array(row, { maxLength: 60 }), junk),
      },
      { requiredKeys: [] },
    );
    // Valid stays (values inside the manifest's bounds) mixed in, so that partly valid batches
    // are scored and answered 200 with per-patient errors.
    const inBounds = fc.oneof(
      ...manifest.variables
        .filter((v) => v.bounds && Number.isFinite(v.bounds.min) && Number.isFinite(v.bounds.max))
        .map((v) =>
          fc.record({ [v.name]: fc.double({ min: v.bounds?.min ?? 0, max: v.bounds?.max ?? 1, noNaN: true }) }),
        ),
    );
    const validPatient = fc.record({
      id: fc.string({ maxLength: 12 }).map((s) => `${MARK}${s}`),
      age: fc.integer({ min: 18, max: 100 }),
      sex: fc.constantFrom('female', 'male'),
      icuType: fc.constantFrom(1, 2, 3, 4),
      hours: fc.array(inBounds, { minLength: 1, maxLength: 60 }),
    });
    const envelope = fc.record(
      {
        patients: fc.oneof(fc.array(fc.oneof(validPatient, patient, junk), { maxLength: 6 }), junk),
        model: fc.oneof(fc.constantFrom('icu-mortality', 'nope', ''), junk),
        version: fc.oneof(fc.constantFrom('0.0.0-tiny', 'latest', '9.9.9'), junk),
      },
      { requiredKeys: [] },
    );
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(envelope, async (body) => {
        const patients = (body as { patients?: unknown }).patients;
        const status = await check(
          app,
          JSON.stringify(body),
          'application/json',
          Array.isArray(patients) ? patients.length : undefined,
        );
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }),
      { numRuns: 2000, seed: 42 },
    );
    // Not vacuous: the generator reaches both refusals and partly valid batches that are scored.
    assert.ok(
      (statuses.get(400) ?? 0) > 0 && (statuses.get(200) ?? 0) > 0,
      `statuses seen: ${JSON.stringify([...statuses])}`,
    );
    assert.ok(!logs.text().includes(MARK), 'a value from a request body reached the logs');
  });

  it('never answers 5xx to malformed JSON text', async (t) => {
    const { app } = await buildTestApp(t);
    const valid = JSON.stringify({
      patients: [{ age: 70, sex: 'male', icuType: 3, hours: [{ HR: 90, MAP: 70 }, { HR: 95 }] }],
    });
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      // Truncated or corrupted valid bodies.
      fc.nat({ max: valid.length - 1 }).map((n) => valid.slice(0, n)),
      fc
        .tuple(fc.nat({ max: valid.length - 1 }), fc.string({ minLength: 1, maxLength: 3 }))
        .map(([n, s]) => valid.slice(0, n) + s + valid.slice(n + 1)),
      fc.constantFrom(
        '{"patients": [',
        '{"patients": NaN}',
        '{"__proto__": {"polluted": 1}, "patients": []}',
        '{"patients": [{"hours": [{"HR": 1e999}]}]}',
        '\u0000',
        '[]',
        'null',
      ),
    );
    await fc.assert(
      fc.asyncProperty(text, async (payload) => {
        await check(app, payload);
      }),
      { numRuns: 1000, seed: 7 },
    );
  });

  it('never answers 5xx on the NDJSON stream, and answers each line with a result or an error', async (t) => {
    const { app } = await buildTestApp(t);
    const good = JSON.stringify({
      id: `${MARK}ok`,
      age: 60,
      sex: 'female',
      icuType: 2,
      hours: [{ HR: 88 }, { HR: 91, MAP: 70 }],
    });
    const line = fc.oneof(
      fc.constant(good),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 80 }).filter((s) => !s.includes('\n')),
      fc.nat({ max: good.length - 1 }).map((n) => good.slice(0, n)),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 8 }), async (lines) => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/predict/stream',
          headers: { 'content-type': 'application/x-ndjson' },
          payload: lines.join('\n'),
        });
        assert.ok(res.statusCode < 500, `${res.statusCode}: ${res.body.slice(0, 300)}`);
        if (res.statusCode !== 200) {
          assertErrorShape(res.statusCode, res.body);
          return;
        }
        for (const out of res.body.split('\n').filter(Boolean)) {
          const o = JSON.parse(out) as { line?: number; probability?: number; error?: ErrorShape };
          assert.ok(
            typeof o.probability === 'number' || (o.error && typeof o.error.error === 'string'),
            out.slice(0, 200),
          );
        }
      }),
      { numRuns: 400, seed: 11 },
    );
  });

  it('refuses other media types with a 4xx in the error shape', async (t) => {
    const { app } = await buildTestApp(t);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          'text/plain',
          'application/xml',
          'multipart/form-data; boundary=x',
          'application/x-www-form-urlencoded',
          'application/octet-stream',
        ),
        fc.string({ maxLength: 50 }),
        async (type, payload) => {
          const res = await app.inject({
            method: 'POST',
            url: '/v1/predict',
            headers: { 'content-type': type },
            payload,
          });
          assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${type}: ${res.statusCode}`);
          assertErrorShape(res.statusCode, res.body);
        },
      ),
      { numRuns: 100, seed: 3 },
    );
  });
});
